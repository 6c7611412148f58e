/* test_readers.c: .npy, CSV (both optionally gzip'd), channel directories and safetensors:
 * valid files of every supported kind, and malformed ones with the exact error. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "unit.h"
#include "tensor.h"

/* A .npy image: magic, version, header dict padded to 64 bytes, then data. */
static char *npy_bytes(int major, const char *dict, const void *data, size_t nbytes,
                       size_t *ret_len)
{
    size_t pre = major == 1 ? 10 : 12;
    size_t hlen = (strlen(dict) + 1 + pre + 63) / 64 * 64 - pre;
    size_t len = pre + hlen + nbytes;
    char *b = xcalloc(1, len + 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (char)major;
    b[7] = 0;
    for (size_t i = 0; i < pre - 8; i++)
        b[8 + i] = (char)((hlen >> (8 * i)) & 0xff);
    memset(b + pre, ' ', hlen);
    memcpy(b + pre, dict, strlen(dict));
    b[pre + hlen - 1] = '\n';
    memcpy(b + pre + hlen, data, nbytes);
    *ret_len = len;
    return b;
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    struct dlc_error *err = NULL;
    assert_int_equal(dlc_write_file_atomic(path, data, len, 0644, &err), 0);
}

static void write_gz(const char *path, const void *data, size_t len)
{
    gzFile gz = gzopen(path, "wb");
    assert_non_null(gz);
    assert_int_equal(gzwrite(gz, data, (unsigned)len), (int)len);
    assert_int_equal(gzclose(gz), Z_OK);
}

static void parse_ok(int major, const char *dict, const void *data, size_t n,
                     struct tensor_array *a)
{
    struct dlc_error *err = NULL;
    size_t len = 0;
    _cleanup_free_ char *b = npy_bytes(major, dict, data, n, &len);
    if (tensor_npy_parse(b, len, "x.npy", a, &err) < 0)
        fail_msg("%s", err->msg);
}

static void test_readers__npy_versions_and_shapes(void **state)
{
    (void)state;
    const float f[6] = {1, 2, 3, 4, 5, 6.5f};
    struct tensor_array a = {0};
    for (int major = 1; major <= 3; major++) {
        parse_ok(major, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f, sizeof(f),
                 &a);
        assert_int_equal(a.rows, 2);
        assert_int_equal(a.cols, 3);
        assert_memory_equal(a.data, f, sizeof(f));
        tensor_array_release(&a);
    }
    parse_ok(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", f, sizeof(f), &a);
    assert_int_equal(a.rows, 6), assert_int_equal(a.cols, 1), assert_int_equal(a.ndim, 1);
    tensor_array_release(&a);
    parse_ok(1, "{'shape': (3, 1, 2), 'fortran_order': False, 'descr': '<f4'}", f, sizeof(f), &a);
    assert_int_equal(a.rows, 3), assert_int_equal(a.cols, 2), assert_int_equal(a.ndim, 3);
    tensor_array_release(&a);
    parse_ok(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", f, 4, &a);
    assert_int_equal(a.rows, 1), assert_int_equal(a.cols, 1);
    tensor_array_release(&a);
}

static void test_readers__npy_dtypes(void **state)
{
    (void)state;
    struct tensor_array a = {0};
    static const double f8[] = {1.5, -2.25};
    static const int8_t i1[] = {-3, 127};
    static const int16_t i2[] = {-300, 3};
    static const int32_t i4[] = {-70000, 7};
    static const int64_t i8[] = {-5, 1LL << 40};
    static const uint8_t u1[] = {200, 0};
    static const uint16_t u2[] = {60000, 1};
    static const uint32_t u4[] = {4000000000u, 2};
    static const uint8_t b1[] = {1, 0};
    static const unsigned char be4[] = {0x3f, 0xc0, 0, 0, 0xc0, 0x10, 0, 0}; /* 1.5, -2.25 */
    static const struct {
        const char *descr;
        const void *data;
        size_t n;
        float want[2];
    } cases[] = {
            {"<f8", f8, sizeof(f8), {1.5f, -2.25f}},
            {"|i1", i1, sizeof(i1), {-3, 127}},
            {"<i2", i2, sizeof(i2), {-300, 3}},
            {"<i4", i4, sizeof(i4), {-70000, 7}},
            {"<i8", i8, sizeof(i8), {-5, 1099511627776.0f}},
            {"|u1", u1, sizeof(u1), {200, 0}},
            {"<u2", u2, sizeof(u2), {60000, 1}},
            {"<u4", u4, sizeof(u4), {4e9f, 2}},
            {"|b1", b1, sizeof(b1), {1, 0}},
            {">f4", be4, sizeof(be4), {1.5f, -2.25f}},
    };
    for (size_t i = 0; i < DLC_ARRAY_SIZE(cases); i++) {
        char dict[128];
        snprintf(dict, sizeof(dict), "{'descr': '%s', 'fortran_order': False, 'shape': (2,), }",
                 cases[i].descr);
        parse_ok(1, dict, cases[i].data, cases[i].n, &a);
        assert_int_equal(a.rows, 2);
        if (a.data[0] != cases[i].want[0] || a.data[1] != cases[i].want[1])
            fail_msg("%s: got %g %g", cases[i].descr, (double)a.data[0], (double)a.data[1]);
        tensor_array_release(&a);
    }
}

static void npy_fails(int major, const char *dict, size_t nbytes, size_t cut, int code,
                      const char *want)
{
    static const float zeros[64];
    struct dlc_error *err = NULL;
    struct tensor_array a = {0};
    size_t len = 0;
    _cleanup_free_ char *b = npy_bytes(major, dict, zeros, nbytes, &len);
    assert_dlc_error(tensor_npy_parse(b, len - cut, "x.npy", &a, &err), &err, code, want);
    assert_null(a.data);
}

static void test_readers__npy_malformed(void **state)
{
    (void)state;
    const char *ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    npy_fails(1, ok, 24, 4, EPROTO,
              "x.npy: truncated data: shape (2, 3) of <f4 needs 24 bytes, found 20");
    npy_fails(1, ok, 0, 100, EPROTO, "x.npy: truncated header (18 of 118 bytes)");
    npy_fails(4, ok, 24, 0, EINVAL, "x.npy: unsupported .npy format version 4.0");
    npy_fails(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 16, 0, EINVAL,
              "x.npy: unsupported dtype '<c8' (supported: f4 f8 i1 i2 i4 i8 u1 u2 u4 b1)");
    npy_fails(1, "{'descr': '<u8', 'fortran_order': False, 'shape': (2,), }", 16, 0, EINVAL,
              "x.npy: unsupported dtype '<u8'");
    npy_fails(1, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 16, 0, EINVAL,
              "x.npy: object arrays ('|O') cannot be read: they hold pickled Python objects");
    npy_fails(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24, 0, EINVAL,
              "x.npy: fortran_order arrays are not supported: save a C-ordered array "
              "(np.ascontiguousarray)");
    npy_fails(1, "{'descr': '<f4', 'fortran_order': False}", 0, 0, EINVAL,
              "x.npy: bad header: needs 'descr', 'fortran_order' and 'shape'");
    npy_fails(1, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,)}", 8, 0, EINVAL,
              "x.npy: bad header: fortran_order must be True or False");
    npy_fails(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", 8, 0, EINVAL,
              "x.npy: bad header: shape must be a tuple of non-negative integers");
    npy_fails(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8, 0, EINVAL,
              "x.npy: bad header: structured dtypes are not supported");
    npy_fails(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8, 0, EINVAL,
              "x.npy: bad header: unexpected key 'x'");
    struct dlc_error *err = NULL;
    struct tensor_array a = {0};
    assert_dlc_error(tensor_npy_parse("PK\x03\x04 not npy", 14, "x.npy", &a, &err), &err, EINVAL,
                     "x.npy: not a .npy file (no \\x93NUMPY magic)");
}

static void test_readers__npy_gzip_and_round_trip(void **state)
{
    (void)state;
    _cleanup_free_ char *dir = unit_tmpdir();
    _cleanup_free_ char *gz = dlc_path_join(dir, "x.npy.gz");
    _cleanup_free_ char *cut = dlc_path_join(dir, "cut.npy.gz");
    _cleanup_free_ char *out = dlc_path_join(dir, "out.npy");
    const float f[4] = {1, -2, 3, 4};
    size_t len = 0;
    _cleanup_free_ char *b = npy_bytes(
            1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", f, sizeof(f), &len);
    write_gz(gz, b, len);
    struct dlc_error *err = NULL;
    struct tensor_array a = {0};
    assert_int_equal(tensor_npy_read(gz, &a, &err), 0);
    assert_memory_equal(a.data, f, sizeof(f));
    assert_int_equal(tensor_npy_write(out, &a, &err), 0);
    tensor_array_release(&a);
    assert_int_equal(tensor_npy_read(out, &a, &err), 0);
    assert_int_equal(a.rows, 2), assert_int_equal(a.cols, 2);
    assert_memory_equal(a.data, f, sizeof(f));
    tensor_array_release(&a);
    /* numpy's layout: data starts at a multiple of 64, header ends in '\n' */
    _cleanup_free_ char *raw = NULL;
    size_t rlen = 0;
    assert_int_equal(dlc_read_file(out, 1 << 20, &raw, &rlen, &err), 0);
    assert_int_equal((rlen - sizeof(f)) % 64, 0);
    assert_int_equal(raw[rlen - sizeof(f) - 1], '\n');
    /* a truncated gzip stream is an error, not a short array */
    _cleanup_free_ char *z = NULL;
    size_t zlen = 0;
    assert_int_equal(dlc_read_file(gz, 1 << 20, &z, &zlen, &err), 0);
    write_bytes(cut, z, zlen - 12);
    assert_dlc_error(tensor_npy_read(cut, &a, &err), &err, EPROTO, "cut.npy.gz: gzip: ");
    unit_tmpdir_free(TAKE_PTR(dir));
}

/* Feeds data into the FIFO at path once, as `<(cat x.npy)` does: one writer, one pass. */
static pid_t fifo_writer(const char *path, const void *data, size_t len)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        _exit(fd >= 0 && write(fd, data, len) == (ssize_t)len ? 0 : 1);
    }
    return pid;
}

/* A FIFO or pipe can be read only once: the gzip sniff must come from the same stream
 * (it used to open the path twice, losing the first bytes or waiting for a second
 * writer forever; the alarm turns that into a failure). Plain, gzip'd, npy and CSV. */
static void test_readers__fifo_is_read_once(void **state)
{
    (void)state;
    _cleanup_free_ char *dir = unit_tmpdir();
    _cleanup_free_ char *fifo = dlc_path_join(dir, "in");
    _cleanup_free_ char *gzf = dlc_path_join(dir, "x.npy.gz");
    const float f[6] = {1, -2, 3, 4, 5.5f, 6};
    size_t len = 0, zlen = 0;
    _cleanup_free_ char *b = npy_bytes(
            1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", f, sizeof(f), &len);
    struct dlc_error *err = NULL;
    write_gz(gzf, b, len);
    _cleanup_free_ char *z = NULL;
    assert_int_equal(dlc_read_file(gzf, 1 << 20, &z, &zlen, &err), 0);
    const char *csv = "1,-2\n3,4\n5.5,6\n";
    const struct {
        const void *data;
        size_t len;
        bool npy;
    } cases[] = {{b, len, true}, {z, zlen, true}, {csv, strlen(csv), false}};
    assert_int_equal(mkfifo(fifo, 0600), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pid_t pid = fifo_writer(fifo, cases[i].data, cases[i].len);
        struct tensor_array a = {0};
        alarm(20);
        int r = cases[i].npy ? tensor_npy_read(fifo, &a, &err)
                             : tensor_csv_read(fifo, false, &a, NULL, &err);
        alarm(0);
        if (r < 0)
            fail_msg("case %zu: %s", i, err->msg);
        assert_int_equal(a.rows, 3), assert_int_equal(a.cols, 2);
        assert_memory_equal(a.data, f, sizeof(f));
        tensor_array_release(&a);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    /* a directory is refused by name, as before */
    char *buf = NULL;
    assert_dlc_error(tensor_read_maybe_gz(dir, 100, &buf, &len, &err), &err, EISDIR, dir);
    unit_tmpdir_free(TAKE_PTR(dir));
}

static void test_readers__csv(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    struct tensor_array x = {0}, y = {0};
    const char *with_header = "label,a,b\r\n1,0.5,2\r\n\r\n0, 1e-3 ,\"-4\"\r\n";
    assert_int_equal(
            tensor_csv_parse(with_header, strlen(with_header), "x.csv", true, &x, &y, &err), 0);
    assert_int_equal(x.rows, 2), assert_int_equal(x.cols, 2), assert_int_equal(y.cols, 1);
    const float wx[] = {0.5f, 2, 1e-3f, -4}, wy[] = {1, 0};
    assert_memory_equal(x.data, wx, sizeof(wx));
    assert_memory_equal(y.data, wy, sizeof(wy));
    tensor_array_release(&x), tensor_array_release(&y);
    const char *plain = "1,2,3\n4,5,6";
    assert_int_equal(tensor_csv_parse(plain, strlen(plain), "x.csv", false, &x, NULL, &err), 0);
    assert_int_equal(x.rows, 2), assert_int_equal(x.cols, 3);
    tensor_array_release(&x);

    const char *ragged = "1,2,3\n4,5,6\n7,8\n";
    assert_dlc_error(tensor_csv_parse(ragged, strlen(ragged), "x.csv", true, &x, &y, &err), &err,
                     EINVAL, "x.csv:3: expected 3 columns, found 2");
    const char *text = "1,2\n3,abc\n";
    assert_dlc_error(tensor_csv_parse(text, strlen(text), "x.csv", true, &x, &y, &err), &err,
                     EINVAL, "x.csv:2: column 2: 'abc' is not a number");
    const char *nan = "1,2\n3,nan\n";
    assert_dlc_error(tensor_csv_parse(nan, strlen(nan), "x.csv", true, &x, &y, &err), &err, EINVAL,
                     "x.csv:2: column 2: 'nan' is not a number");
    const char *one = "1\n2\n";
    assert_dlc_error(tensor_csv_parse(one, strlen(one), "x.csv", true, &x, &y, &err), &err, EINVAL,
                     "x.csv: needs a label column and at least one feature column");
    assert_dlc_error(tensor_csv_parse("a,b\n", 4, "x.csv", true, &x, &y, &err), &err, EINVAL,
                     "x.csv: no data rows");
    assert_null(x.data);
}

static void write_npy(const char *dir, const char *name, const char *shape, size_t n)
{
    static const float zeros[64];
    char dict[128];
    snprintf(dict, sizeof(dict), "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape);
    size_t len = 0;
    _cleanup_free_ char *b = npy_bytes(1, dict, zeros, n * 4, &len);
    _cleanup_free_ char *p = dlc_path_join(dir, name);
    write_bytes(p, b, len);
}

static void test_readers__channel_directories(void **state)
{
    (void)state;
    _cleanup_free_ char *dir = unit_tmpdir();
    struct dlc_error *err = NULL;
    struct tensor_array x = {0}, y = {0};
    assert_dlc_error(tensor_channel_load(dir, "training", &x, &y, &err), &err, ENOENT,
                     "channel training: no data in ");
    write_npy(dir, "train.npy", "(5, 3)", 15);
    assert_dlc_error(tensor_channel_load(dir, "training", &x, &y, &err), &err, ENOENT,
                     "channel training: train.npy has no labels.npy beside it");
    write_npy(dir, "labels.npy", "(4,)", 4);
    assert_dlc_error(tensor_channel_load(dir, "training", &x, &y, &err), &err, EINVAL,
                     "channel training: train.npy has 5 rows but labels.npy has 4");
    write_npy(dir, "labels.npy", "(5,)", 5);
    assert_int_equal(tensor_channel_load(dir, "training", &x, &y, &err), 0);
    assert_int_equal(x.rows, 5), assert_int_equal(x.cols, 3), assert_int_equal(y.cols, 1);
    tensor_array_release(&x), tensor_array_release(&y);

    /* CSV files are read in name order and concatenated, gzip'd or not */
    _cleanup_free_ char *csvdir = dlc_path_join(dir, "csv");
    _cleanup_free_ char *a = dlc_path_join(csvdir, "a.csv");
    _cleanup_free_ char *b = dlc_path_join(csvdir, "b.csv.gz");
    _cleanup_free_ char *c = dlc_path_join(csvdir, "c.csv");
    assert_int_equal(dlc_mkdir_p(csvdir, 0755, &err), 0);
    write_bytes(a, "0,1,2\n1,3,4\n", 12);
    write_gz(b, "2,5,6\n", 6);
    assert_int_equal(tensor_channel_load(csvdir, "train", &x, &y, &err), 0);
    assert_int_equal(x.rows, 3), assert_int_equal(x.cols, 2);
    const float wy[] = {0, 1, 2}, wx[] = {1, 2, 3, 4, 5, 6};
    assert_memory_equal(y.data, wy, sizeof(wy));
    assert_memory_equal(x.data, wx, sizeof(wx));
    tensor_array_release(&x), tensor_array_release(&y);
    write_bytes(c, "1,2\n", 4);
    assert_dlc_error(tensor_channel_load(csvdir, "train", &x, &y, &err), &err, EINVAL,
                     "channel train: c.csv has 2 columns, the files before it 3");
    unit_tmpdir_free(TAKE_PTR(dir));
}

static void test_readers__safetensors_round_trip(void **state)
{
    (void)state;
    _cleanup_free_ char *dir = unit_tmpdir();
    _cleanup_free_ char *path = dlc_path_join(dir, "m.safetensors");
    const float k[6] = {1, 2, 3, 4, 5, 6}, b[3] = {-1, 0, 1};
    struct tensor_st_entry e[] = {{"dense/kernel", 2, {2, 3}, k}, {"dense/bias", 1, {3}, b}};
    json_auto_t *meta = json_pack("{s:s}", "format", "pt");
    struct dlc_error *err = NULL;
    assert_int_equal(tensor_safetensors_write(path, e, 2, meta, &err), 0);

    /* the layout Python's reader expects: u64 LE length, JSON padded to 8, data */
    _cleanup_free_ char *raw = NULL;
    size_t len = 0;
    assert_int_equal(dlc_read_file(path, 1 << 20, &raw, &len, &err), 0);
    uint64_t hlen = 0;
    memcpy(&hlen, raw, 8);
    assert_int_equal(hlen % 8, 0);
    assert_int_equal(len, 8 + hlen + sizeof(k) + sizeof(b));
    json_auto_t *h = json_loadb(raw + 8, hlen, 0, NULL);
    assert_non_null(h);
    json_t *kj = json_object_get(h, "dense/kernel");
    assert_string_equal(json_string_value(json_object_get(kj, "dtype")), "F32");
    assert_int_equal(json_integer_value(json_array_get(json_object_get(kj, "shape"), 1)), 3);

    _cleanup_(tensor_safetensors_freep) struct tensor_safetensors *st = NULL;
    assert_int_equal(tensor_safetensors_open(path, &st, &err), 0);
    assert_int_equal(tensor_safetensors_count(st), 2);
    assert_string_equal(tensor_safetensors_meta(st, "format"), "pt");
    float got[6];
    assert_int_equal(tensor_safetensors_get(st, "dense/kernel", got, 6, &err), 0);
    assert_memory_equal(got, k, sizeof(k));
    assert_int_equal(tensor_safetensors_get(st, "dense/bias", got, 3, &err), 0);
    assert_memory_equal(got, b, sizeof(b));
    assert_dlc_error(tensor_safetensors_get(st, "dense/bias", got, 4, &err), &err, EINVAL,
                     "tensor 'dense/bias' has 3 values, expected 4");
    assert_dlc_error(tensor_safetensors_get(st, "nope", got, 4, &err), &err, ENOENT,
                     "no tensor 'nope'");
    unit_tmpdir_free(TAKE_PTR(dir));
}

static void st_fails(const char *dir, const char *header, size_t data_len, int code,
                     const char *want)
{
    _cleanup_free_ char *path = dlc_path_join(dir, "bad.safetensors");
    size_t hlen = strlen(header);
    _cleanup_free_ char *b = xcalloc(1, 8 + hlen + data_len);
    for (int i = 0; i < 8; i++)
        b[i] = (char)((hlen >> (8 * i)) & 0xff);
    for (size_t i = 0; i < hlen; i++)
        b[8 + i] = header[i];
    write_bytes(path, b, 8 + hlen + data_len);
    struct dlc_error *err = NULL;
    struct tensor_safetensors *st = NULL;
    assert_dlc_error(tensor_safetensors_open(path, &st, &err), &err, code, want);
    assert_null(st);
}

static void test_readers__safetensors_malformed(void **state)
{
    (void)state;
    _cleanup_free_ char *dir = unit_tmpdir();
    st_fails(dir, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, EINVAL,
             "tensor 'a': data_offsets outside the file");
    st_fails(dir, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, EINVAL,
             "tensor 'a': shape does not match data_offsets");
    st_fails(dir, "{\"a\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", 8, EINVAL,
             "tensor 'a': dtype F16 is not supported (only F32)");
    st_fails(dir, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, EINVAL,
             "tensor 'a' data overlaps or leaves a gap");
    st_fails(dir, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, EINVAL,
             "4 bytes of data after the last tensor");
    st_fails(dir, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, EINVAL,
             "tensor 'a': missing required 'data_offsets'");
    st_fails(dir, "[1, 2]", 0, EINVAL, "header is not a JSON object");
    st_fails(dir, "{\"__metadata__\":{\"x\":1}}", 0, EINVAL, "metadata 'x' is not a string");
    _cleanup_free_ char *path = dlc_path_join(dir, "short.safetensors");
    write_bytes(path, "\x40\x00\x00\x00\x00\x00\x00\x00{}", 10);
    struct dlc_error *err = NULL;
    struct tensor_safetensors *st = NULL;
    assert_dlc_error(tensor_safetensors_open(path, &st, &err), &err, EPROTO,
                     "truncated: header of 64 bytes, file has 10");
    write_bytes(path, "\x00\x00\x00\x00\x00\x00\x01\x00{}", 10);
    assert_dlc_error(tensor_safetensors_open(path, &st, &err), &err, EINVAL,
                     "header length 281474976710656 is too large");
    write_bytes(path, "\x01", 1);
    assert_dlc_error(tensor_safetensors_open(path, &st, &err), &err, EPROTO,
                     "truncated: no header length");
    unit_tmpdir_free(TAKE_PTR(dir));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_readers__npy_versions_and_shapes),
            cmocka_unit_test(test_readers__npy_dtypes),
            cmocka_unit_test(test_readers__npy_malformed),
            cmocka_unit_test(test_readers__npy_gzip_and_round_trip),
            cmocka_unit_test(test_readers__fifo_is_read_once),
            cmocka_unit_test(test_readers__csv),
            cmocka_unit_test(test_readers__channel_directories),
            cmocka_unit_test(test_readers__safetensors_round_trip),
            cmocka_unit_test(test_readers__safetensors_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
