#include <errno.h>
#include <string.h>

#include "unit.h"
#include "oci.h"

#define D "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void test_reference__valid(void **state)
{
    (void)state;
    static const struct {
        const char *in, *registry, *name, *tag, *digest, *formatted;
    } cases[] = {
            {"busybox", NULL, "busybox", "latest", NULL, "busybox:latest"},
            {"a:t", NULL, "a", "t", NULL, "a:t"},
            {"localhost:5000/a/b:t", "localhost:5000", "a/b", "t", NULL, NULL},
            {"localhost/a", "localhost", "a", "latest", NULL, "localhost/a:latest"},
            {"registry.example.com/team/img:1.0", "registry.example.com", "team/img", "1.0", NULL,
             NULL},
            {"127.0.0.1:5000/x", "127.0.0.1:5000", "x", "latest", NULL, "127.0.0.1:5000/x:latest"},
            {"[::1]:5000/x:y", "[::1]:5000", "x", "y", NULL, NULL},
            {"a:t@" D, NULL, "a", "t", D, NULL},
            {"a@" D, NULL, "a", NULL, D, NULL},
            {"tensor-runtime:1.0.0-cpu", NULL, "tensor-runtime", "1.0.0-cpu", NULL, NULL},
            {"x/a.b_c__d---e/f:_T.x-Y", NULL, "x/a.b_c__d---e/f", "_T.x-Y", NULL, NULL},
            {"team/img", NULL, "team/img", "latest", NULL, "team/img:latest"},
            /* "localhost:5000" alone is a name and a tag, as docker reads it */
            {"localhost:5000", NULL, "localhost", "5000", NULL, NULL},
    };
    for (size_t i = 0; i < DLC_ARRAY_SIZE(cases); i++) {
        struct dlc_error *err = NULL;
        _cleanup_(oci_ref_freep) struct oci_ref *r = NULL;
        if (oci_ref_parse(cases[i].in, &r, &err) < 0)
            fail_msg("%s: %s", cases[i].in, err->msg);
        if (cases[i].registry)
            assert_string_equal(r->registry, cases[i].registry);
        else
            assert_null(r->registry);
        assert_string_equal(r->name, cases[i].name);
        if (cases[i].tag)
            assert_string_equal(r->tag, cases[i].tag);
        else
            assert_null(r->tag);
        if (cases[i].digest)
            assert_string_equal(r->digest, cases[i].digest);
        else
            assert_null(r->digest);
        _cleanup_free_ char *f = oci_ref_format(r);
        assert_string_equal(f, cases[i].formatted ? cases[i].formatted : cases[i].in);
    }
}

static void test_reference__invalid(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
            {"", "invalid reference '': reference is empty"},
            {"A:b", "invalid reference 'A:b': repository name must be lowercase"},
            {"My/app", "repository name must be lowercase"},
            {"a b", "invalid reference 'a b': repository name contains invalid character ' '"},
            {"a!b:t", "repository name contains invalid character '!'"},
            {":t", "invalid reference ':t': repository name is empty"},
            {"a//b", "repository name has an empty path component"},
            {"a/", "repository name has an empty path component"},
            {"-a", "repository name component '-a' must start and end with a letter or digit"},
            {"a.", "repository name component 'a.' must start and end with a letter or digit"},
            {"a..b", "repository name component 'a..b' has an invalid separator '..'"},
            {"a___b", "has an invalid separator '___'"},
            {"a-_b", "has an invalid separator '-_'"},
            {"a:", "invalid reference 'a:': tag is empty"},
            {"a:-t", "tag '-t' must start with a letter, digit or '_'"},
            {"a:.t", "tag '.t' must start with a letter, digit or '_'"},
            {"a:t+1", "tag 't+1' contains invalid character '+'"},
            {"a@sha256:abc", "invalid reference 'a@sha256:abc': digest 'sha256:abc': sha256 "
                             "needs 64 hex digits, got 3"},
            {"a@", "digest '': digest is empty"},
            {"a@md5:abc", "unsupported algorithm 'md5'"},
            {"local_host:5000/a", "registry host 'local_host:5000' is invalid"},
            {"localhost:99999/a", "registry port '99999' is not a number from 1 to 65535"},
            {"localhost:/a", "registry port '' is not a number from 1 to 65535"},
            {"-bad.com/a", "registry host '-bad.com' is invalid"},
            {"host.com/A", "repository name must be lowercase"},
    };
    for (size_t i = 0; i < DLC_ARRAY_SIZE(cases); i++) {
        struct dlc_error *err = NULL;
        struct oci_ref *r = NULL;
        if (oci_ref_parse(cases[i].in, &r, &err) == 0)
            fail_msg("'%s' parsed but should not", cases[i].in);
        assert_null(r);
        if (strstr(err->msg, cases[i].want) == NULL)
            fail_msg("'%s': error '%s' lacks '%s'", cases[i].in, err->msg, cases[i].want);
        assert_int_equal(err->code, EINVAL);
        dlc_error_free(&err);
    }
}

static void test_reference__lengths(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    char name[300], tag[140], ref[450];
    memset(name, 'a', 256);
    name[256] = '\0';
    struct oci_ref *r = NULL;
    assert_dlc_error(oci_ref_parse(name, &r, &err), &err, EINVAL,
                     "repository name is longer than 255 characters");
    name[255] = '\0';
    assert_true(oci_name_is_valid(name));
    memset(tag, 't', 129);
    tag[129] = '\0';
    assert_false(oci_tag_is_valid(tag));
    snprintf(ref, sizeof(ref), "a:%s", tag);
    assert_dlc_error(oci_ref_parse(ref, &r, &err), &err, EINVAL,
                     "tag is longer than 128 characters");
    tag[128] = '\0';
    assert_true(oci_tag_is_valid(tag));
    name[250] = '\0';
    snprintf(ref, sizeof(ref), "registry.example.com/%s", name);
    assert_dlc_error(oci_ref_parse(ref, &r, &err), &err, EINVAL,
                     "registry and repository name are longer than 255 characters");
}

static void test_reference__store_name(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    _cleanup_(oci_ref_freep) struct oci_ref *a = NULL;
    _cleanup_(oci_ref_freep) struct oci_ref *b = NULL;
    _cleanup_(oci_ref_freep) struct oci_ref *c = NULL;
    assert_int_equal(oci_ref_parse("localhost:5000/a/b", &a, &err), 0);
    _cleanup_free_ char *na = oci_ref_store_name(a);
    assert_string_equal(na, "localhost:5000/a/b:latest");
    assert_int_equal(oci_ref_parse("x@" D, &b, &err), 0);
    assert_null(oci_ref_store_name(b));
    assert_int_equal(oci_ref_parse("x:1@" D, &c, &err), 0);
    _cleanup_free_ char *nc = oci_ref_store_name(c);
    assert_string_equal(nc, "x:1");
}

static void test_reference__grammar_helpers(void **state)
{
    (void)state;
    assert_true(oci_name_is_valid("library/busybox"));
    assert_true(oci_name_is_valid("a-----b"));
    assert_false(oci_name_is_valid(""));
    assert_false(oci_name_is_valid("a/"));
    assert_false(oci_name_is_valid("UPPER"));
    assert_false(oci_name_is_valid("a:b"));
    assert_true(oci_tag_is_valid("latest"));
    assert_true(oci_tag_is_valid("_x"));
    assert_false(oci_tag_is_valid(""));
    assert_false(oci_tag_is_valid("a/b"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_reference__valid),
            cmocka_unit_test(test_reference__invalid),
            cmocka_unit_test(test_reference__lengths),
            cmocka_unit_test(test_reference__store_name),
            cmocka_unit_test(test_reference__grammar_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
