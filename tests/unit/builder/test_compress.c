#include <errno.h>
#include <string.h>

#include <zlib.h>
#include <zstd.h>

#include "unit.h"
#include "../../../builder/src/builder-internal.h"

static int collect(void *ctx, const void *data, size_t len, struct dlc_error **err)
{
    (void)err;
    dlc_strbuf_append_len(ctx, data, len);
    return 0;
}

/* ~5.3 MiB: several 1 MiB blocks and a short last one, compressible but not trivially. */
static unsigned char *sample(size_t *ret_len)
{
    size_t len = (5u << 20) + 12345;
    unsigned char *b = xmalloc(len);
    uint32_t x = 12345;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        b[i] = (i % 4096 < 2048) ? (unsigned char)"dlc tensor runtime "[i % 19]
                                 : (unsigned char)(x >> 24) % 7;
    }
    *ret_len = len;
    return b;
}

static char *compress_all(enum builder_compression c, int threads, const unsigned char *in,
                          size_t len, size_t chunk, size_t *ret_len)
{
    struct dlc_strbuf out = DLC_STRBUF_INIT;
    struct dlc_error *err = NULL;
    struct bcompress *z = NULL;
    assert_int_equal(bcompress_new(c, bcompress_default_level(c), threads, collect, &out, &z, &err),
                     0);
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        assert_int_equal(bcompress_write(z, in + off, n, &err), 0);
    }
    assert_int_equal(bcompress_finish(z, &err), 0);
    bcompress_free(z);
    return dlc_strbuf_detach(&out, ret_len);
}

static void gunzip_check(const unsigned char *gz, size_t gz_len, const unsigned char *want,
                         size_t want_len)
{
    z_stream s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(inflateInit2(&s, 16 + 15), Z_OK);
    _cleanup_free_ unsigned char *out = xmalloc(want_len + 16);
    s.next_in = (unsigned char *)gz;
    s.avail_in = (uInt)gz_len;
    s.next_out = out;
    s.avail_out = (uInt)(want_len + 16);
    assert_int_equal(inflate(&s, Z_FINISH), Z_STREAM_END); /* also checks CRC and ISIZE */
    assert_int_equal(s.total_out, want_len);
    assert_int_equal(s.avail_in, 0); /* one member, nothing after it */
    assert_memory_equal(out, want, want_len);
    inflateEnd(&s);
}

static void test_compress__gzip(void **state)
{
    (void)state;
    size_t len = 0, n1 = 0, n4 = 0, nodd = 0;
    _cleanup_free_ unsigned char *in = sample(&len);
    _cleanup_free_ char *g1 = compress_all(BUILDER_COMPRESS_GZIP, 1, in, len, 65536, &n1);
    _cleanup_free_ char *g4 = compress_all(BUILDER_COMPRESS_GZIP, 4, in, len, 65536, &n4);
    _cleanup_free_ char *godd = compress_all(BUILDER_COMPRESS_GZIP, 3, in, len, 777, &nodd);
    /* gzip header: no name, no flags, mtime 0, OS Unix */
    static const unsigned char hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    assert_memory_equal(g1, hdr, sizeof(hdr));
    /* the bytes depend on the input only: not on threads, not on write sizes */
    assert_int_equal(n1, n4);
    assert_memory_equal(g1, g4, n1);
    assert_int_equal(n1, nodd);
    assert_memory_equal(g1, godd, n1);
    assert_true(n1 < len / 2);
    gunzip_check((unsigned char *)g4, n4, in, len);
}

static void test_compress__gzip_empty(void **state)
{
    (void)state;
    size_t n = 0;
    _cleanup_free_ char *g = compress_all(BUILDER_COMPRESS_GZIP, 2, NULL, 0, 1, &n);
    gunzip_check((unsigned char *)g, n, (const unsigned char *)"", 0);
}

static void test_compress__zstd(void **state)
{
    (void)state;
    size_t len = 0, n1 = 0, n3 = 0;
    _cleanup_free_ unsigned char *in = sample(&len);
    _cleanup_free_ char *z1 = compress_all(BUILDER_COMPRESS_ZSTD, 1, in, len, 100000, &n1);
    _cleanup_free_ char *z3 = compress_all(BUILDER_COMPRESS_ZSTD, 3, in, len, 4096, &n3);
    assert_int_equal(n1, n3);
    assert_memory_equal(z1, z3, n1);
    static const unsigned char magic[4] = {0x28, 0xb5, 0x2f, 0xfd};
    assert_memory_equal(z1, magic, 4);
    _cleanup_free_ unsigned char *out = xmalloc(len);
    ZSTD_DCtx *d = ZSTD_createDCtx();
    ZSTD_inBuffer ib = {z1, n1, 0};
    ZSTD_outBuffer ob = {out, len, 0};
    size_t r = ZSTD_decompressStream(d, &ob, &ib);
    ZSTD_freeDCtx(d);
    assert_false(ZSTD_isError(r));
    assert_int_equal(ob.pos, len);
    assert_memory_equal(out, in, len);
}

static void test_compress__parse(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    enum builder_compression c;
    assert_int_equal(builder_compression_parse("zstd", &c, &err), 0);
    assert_int_equal(c, BUILDER_COMPRESS_ZSTD);
    assert_string_equal(bcompress_media_type(c), OCI_MT_LAYER_ZSTD);
    assert_dlc_error(builder_compression_parse("xz", &c, &err), &err, EINVAL,
                     "compression 'xz' is not one of gzip, zstd");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_compress__gzip),
            cmocka_unit_test(test_compress__gzip_empty),
            cmocka_unit_test(test_compress__zstd),
            cmocka_unit_test(test_compress__parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
