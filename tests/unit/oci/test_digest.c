#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include <openssl/evp.h>

#include "unit.h"
#include "oci.h"

#define EMPTY_SHA256 "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ABC_SHA256   "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void test_digest__vectors(void **state)
{
    (void)state;
    char d[OCI_DIGEST_BUFSZ];
    oci_digest_buf("", 0, d);
    assert_string_equal(d, EMPTY_SHA256);
    oci_digest_buf("abc", 3, d);
    assert_string_equal(d, ABC_SHA256);
    assert_string_equal(oci_digest_hex(d), ABC_SHA256 + 7);
}

/* 1 MiB of patterned bytes, streamed in odd-sized chunks, against OpenSSL's one-shot. */
static void test_digest__streaming_matches_one_shot(void **state)
{
    (void)state;
    size_t n = 1 << 20;
    _cleanup_free_ unsigned char *buf = xmalloc(n);
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)(i * 31 + (i >> 8));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    assert_int_equal(EVP_Digest(buf, n, md, &mdlen, EVP_sha256(), NULL), 1);
    char want[OCI_DIGEST_BUFSZ] = "sha256:";
    dlc_hex_encode(md, mdlen, want + 7);

    _cleanup_(oci_digester_freep) struct oci_digester *dg = oci_digester_new();
    for (size_t off = 0; off < n;) {
        size_t chunk = off % 7919 + 1;
        if (chunk > n - off)
            chunk = n - off;
        oci_digester_update(dg, buf + off, chunk);
        off += chunk;
    }
    assert_int_equal(oci_digester_size(dg), n);
    char got[OCI_DIGEST_BUFSZ];
    oci_digester_final(dg, got);
    assert_string_equal(got, want);
    oci_digest_buf(buf, n, got);
    assert_string_equal(got, want);
}

static void test_digest__file(void **state)
{
    (void)state;
    char *dir = unit_tmpdir();
    _cleanup_free_ char *path = dlc_path_join(dir, "f");
    struct dlc_error *err = NULL;
    assert_int_equal(dlc_write_file_atomic(path, "abc", 3, 0644, &err), 0);
    char d[OCI_DIGEST_BUFSZ];
    uint64_t size = 0;
    assert_int_equal(oci_digest_file(path, d, &size, &err), 0);
    assert_string_equal(d, ABC_SHA256);
    assert_int_equal(size, 3);
    _cleanup_free_ char *missing = dlc_path_join(dir, "missing");
    assert_dlc_error(oci_digest_file(missing, d, NULL, &err), &err, ENOENT, "missing");
    unit_tmpdir_free(dir);
}

static void test_digest__validate(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *want; /* NULL: valid */
    } cases[] = {
            {EMPTY_SHA256, NULL},
            {"", "digest '': digest is empty"},
            {"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
             "missing algorithm (want sha256:<64 hex digits>)"},
            {":abc", "digest ':abc': algorithm is empty"},
            {"sha512:abcd", "digest 'sha512:abcd': unsupported algorithm 'sha512' (only sha256 "
                            "is supported)"},
            {"SHA256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
             "unsupported algorithm 'SHA256'"},
            {"sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
             "uppercase hex is not allowed"},
            {"sha256:abc", "digest 'sha256:abc': sha256 needs 64 hex digits, got 3"},
            {"sha256:", "sha256 needs 64 hex digits, got 0"},
            {"sha256:zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
             "'z' is not a hex digit"},
            {"sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0",
             "sha256 needs 64 hex digits, got 65"},
            {"sha256:../../etc/passwd", "'.' is not a hex digit"},
            {"sha256:ab\ncd", "byte 0x0a is not a hex digit"},
    };
    for (size_t i = 0; i < DLC_ARRAY_SIZE(cases); i++) {
        struct dlc_error *err = NULL;
        if (cases[i].want == NULL) {
            assert_int_equal(oci_digest_validate(cases[i].in, &err), 0);
            continue;
        }
        assert_dlc_error(oci_digest_validate(cases[i].in, &err), &err, EINVAL, cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_digest__vectors),
            cmocka_unit_test(test_digest__streaming_matches_one_shot),
            cmocka_unit_test(test_digest__file),
            cmocka_unit_test(test_digest__validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
