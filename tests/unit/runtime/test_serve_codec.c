/* test_serve_codec.c: /invocations media types, Accept negotiation and the codecs. */
#include <errno.h>
#include <string.h>

#include "unit.h"
#include "../../../runtime/src/serve.h"

static void test_serve_codec__content_type(void **state)
{
    (void)state;
    enum serve_type t = _SERVE_TYPE_MAX;
    assert_int_equal(serve_content_type(NULL, &t), 0);
    assert_int_equal(t, SERVE_JSON);
    assert_int_equal(serve_content_type("text/csv; charset=utf-8", &t), 0);
    assert_int_equal(t, SERVE_CSV);
    assert_int_equal(serve_content_type("Application/X-NPY", &t), 0);
    assert_int_equal(t, SERVE_NPY);
    assert_int_equal(serve_content_type(" application/json ", &t), 0);
    assert_int_equal(t, SERVE_JSON);
    assert_int_equal(serve_content_type("application/x-www-form-urlencoded", &t), -1);
    assert_int_equal(serve_content_type("text/csvx", &t), -1);
    assert_int_equal(serve_content_type("image/png", &t), -1);
}

static void test_serve_codec__accept(void **state)
{
    (void)state;
    enum serve_type t = _SERVE_TYPE_MAX;
    assert_int_equal(serve_accept(NULL, SERVE_JSON, &t), 0);
    assert_int_equal(t, SERVE_JSON);
    assert_int_equal(serve_accept("*/*", SERVE_CSV, &t), 0);
    assert_int_equal(t, SERVE_CSV);
    assert_int_equal(serve_accept("text/csv", SERVE_JSON, &t), 0);
    assert_int_equal(t, SERVE_CSV);
    assert_int_equal(serve_accept("application/x-npy;q=0.5, text/csv;q=0.9", SERVE_JSON, &t), 0);
    assert_int_equal(t, SERVE_CSV);
    assert_int_equal(serve_accept("image/png, application/x-npy", SERVE_JSON, &t), 0);
    assert_int_equal(t, SERVE_NPY);
    assert_int_equal(serve_accept("text/html, application/*;q=0.1", SERVE_JSON, &t), 0);
    assert_int_equal(t, SERVE_JSON);
    assert_int_equal(serve_accept("text/*", SERVE_JSON, &t), 0);
    assert_int_equal(t, SERVE_CSV);
    assert_int_equal(serve_accept("image/png", SERVE_JSON, &t), -1);
    assert_int_equal(serve_accept("text/csv;q=0", SERVE_JSON, &t), -1);
}

static void decode_ok(enum serve_type type, const char *body, int64_t dim, int64_t rows,
                      int64_t cols, const float *want)
{
    struct dlc_error *err = NULL;
    struct tensor_array a = {0};
    if (serve_decode(type, body, strlen(body), dim, &a, &err) < 0)
        fail_msg("decode '%s': %s", body, err->msg);
    assert_int_equal(a.rows, rows);
    assert_int_equal(a.cols, cols);
    for (int64_t i = 0; i < rows * cols; i++)
        assert_true(a.data[i] == want[i]);
    tensor_array_release(&a);
}

static void decode_bad(enum serve_type type, const char *body, int64_t dim, const char *want)
{
    struct dlc_error *err = NULL;
    struct tensor_array a = {0};
    assert_dlc_error(serve_decode(type, body, strlen(body), dim, &a, &err), &err, EINVAL, want);
    assert_null(a.data);
}

static void test_serve_codec__json(void **state)
{
    (void)state;
    const float two_rows[] = {1, 2, 3.5f, -4};
    decode_ok(SERVE_JSON, "{\"instances\": [[1, 2], [3.5, -4]]}", 2, 2, 2, two_rows);
    decode_ok(SERVE_JSON, "[[1, 2], [3.5, -4]]", 2, 2, 2, two_rows);
    decode_ok(SERVE_JSON, "{\"instances\": [{\"features\": [1, 2]}, {\"features\": [3.5, -4]}]}", 2,
              2, 2, two_rows);
    decode_ok(SERVE_JSON, "[1, 2, 3.5, -4]", 4, 1, 4, two_rows); /* flat: one row */
    decode_ok(SERVE_JSON, "[1, 2, 3.5, -4]", 1, 4, 1, two_rows); /* one feature: a column */
    decode_bad(SERVE_JSON, "[[1, 2], [3]]", 2, "row 2 has 1 values, row 1 has 2");
    decode_bad(SERVE_JSON, "[[1, \"x\"]]", 2, "row 1, column 2: expected a number");
    decode_bad(SERVE_JSON, "{\"inputs\": [[1]]}", 1, "{\"instances\": [[...], ...]}");
    decode_bad(SERVE_JSON, "[]", 1, "no rows");
    decode_bad(SERVE_JSON, "[[1, 2]", 2, "JSON body:");
    decode_bad(SERVE_JSON, "\"text\"", 2, "JSON body:1:");
    decode_bad(SERVE_JSON, "{\"instances\": 3}", 2, "or a list of rows");
    decode_bad(SERVE_JSON, "[[1], 2]", 1, "row 2: expected a list of numbers");
    decode_bad(SERVE_JSON, "[{\"f\": [1]}]", 1, "needs a 'features' list");
    decode_bad(SERVE_JSON, "[1, null]", 2, "value 2: expected a number");
}

static void test_serve_codec__csv(void **state)
{
    (void)state;
    const float two_rows[] = {1, 2, 3.5f, -4};
    decode_ok(SERVE_CSV, "1,2\n3.5,-4\n", 2, 2, 2, two_rows);
    decode_ok(SERVE_CSV, "1,2\r\n3.5,-4", 2, 2, 2, two_rows);
    struct dlc_error *err = NULL;
    struct tensor_array a = {0};
    assert_dlc_error(serve_decode(SERVE_CSV, "1,2\n3\n", 6, 2, &a, &err), &err, EINVAL,
                     "CSV body:2");
    assert_dlc_error(serve_decode(SERVE_CSV, "", 0, 2, &a, &err), &err, EINVAL, "no rows");
}

static void test_serve_codec__npy_roundtrip(void **state)
{
    (void)state;
    struct tensor_array y = {0};
    struct dlc_error *err = NULL;
    assert_int_equal(tensor_array_alloc(&y, 3, 2, &err), 0);
    for (int i = 0; i < 6; i++)
        y.data[i] = (float)i * 0.1f - 0.25f;
    struct dlc_strbuf out = DLC_STRBUF_INIT;
    serve_encode(SERVE_NPY, &y, &out);
    assert_int_equal(out.len % 4, 0);
    assert_int_equal((out.len - 6 * 4) % 64, 0); /* data starts on a 64-byte boundary */
    struct tensor_array back = {0};
    assert_int_equal(serve_decode(SERVE_NPY, out.buf, out.len, 2, &back, &err), 0);
    assert_int_equal(back.rows, 3);
    assert_int_equal(back.cols, 2);
    assert_memory_equal(back.data, y.data, 6 * sizeof(float));
    tensor_array_release(&back);
    dlc_strbuf_release(&out);
    tensor_array_release(&y);
    assert_dlc_error(serve_decode(SERVE_NPY, "\x93NUMPY", 6, 2, &back, &err), &err, EPROTO,
                     "npy body");
}

static void test_serve_codec__npy_1d_is_a_row(void **state)
{
    (void)state;
    struct tensor_array v = {0};
    struct dlc_error *err = NULL;
    assert_int_equal(tensor_array_alloc(&v, 1, 3, &err), 0);
    v.data[0] = 1, v.data[1] = 2, v.data[2] = 3;
    struct dlc_strbuf out = DLC_STRBUF_INIT;
    serve_encode(SERVE_NPY, &v, &out);
    /* Rewrite the shape (1, 3) as (3,) in place: same header length, padded with spaces. */
    char *shape = memmem(out.buf, out.len, "(1, 3)", 6);
    assert_non_null(shape);
    static const char one_d[6] = {'(', '3', ',', ')', ' ', ' '};
    memcpy(shape, one_d, sizeof(one_d));
    struct tensor_array a = {0};
    assert_int_equal(serve_decode(SERVE_NPY, out.buf, out.len, 3, &a, &err), 0);
    assert_int_equal(a.rows, 1);
    assert_int_equal(a.cols, 3);
    tensor_array_release(&a);
    assert_int_equal(serve_decode(SERVE_NPY, out.buf, out.len, 1, &a, &err), 0);
    assert_int_equal(a.rows, 3);
    assert_int_equal(a.cols, 1);
    tensor_array_release(&a);
    dlc_strbuf_release(&out);
    tensor_array_release(&v);
}

static void test_serve_codec__encode_text(void **state)
{
    (void)state;
    struct tensor_array y = {0};
    struct dlc_error *err = NULL;
    assert_int_equal(tensor_array_alloc(&y, 2, 2, &err), 0);
    y.data[0] = 0.1f, y.data[1] = 1, y.data[2] = -2.5f, y.data[3] = 1.0f / 0.0f;
    struct dlc_strbuf out = DLC_STRBUF_INIT;
    serve_encode(SERVE_JSON, &y, &out);
    assert_string_equal(out.buf, "{\"predictions\":[[0.100000001,1],[-2.5,null]]}");
    dlc_strbuf_reset(&out);
    serve_encode(SERVE_CSV, &y, &out);
    assert_string_equal(out.buf, "0.100000001,1\n-2.5,inf\n");
    dlc_strbuf_release(&out);
    tensor_array_release(&y);
    size_t len = 0;
    char *e = serve_error_json("bad \"row\"", &len);
    assert_string_equal(e, "{\"error\":\"bad \\\"row\\\"\"}");
    free(e);
}

static void test_serve_codec__json_fast_path_reads_what_jansson_reads(void **state)
{
    (void)state;
    static const char *const numbers[] = {
            "0",
            "-0",
            "1",
            "-1.5",
            "3.14159265358979",
            "1e-45",
            "1.17549435e-38",
            "3.4028235e38",
            "1e39",
            "123456789012345678",
            "0.1",
            "2.5E+3",
            "-7e-3",
            "1E5",
            "0.30000000000000004",
    };
    struct dlc_strbuf body = DLC_STRBUF_INIT;
    dlc_strbuf_append(&body, " {\"instances\" :\n[");
    for (size_t i = 0; i < DLC_ARRAY_SIZE(numbers); i++)
        dlc_strbuf_appendf(&body, "%s[ %s ,\t%s]", i ? ", " : "", numbers[i], numbers[i]);
    dlc_strbuf_append(&body, "] }\r\n");
    struct tensor_array a = {0};
    assert_int_equal(serve_json_fast(body.buf, body.len, &a), 0);
    assert_int_equal(a.rows, (int64_t)DLC_ARRAY_SIZE(numbers));
    assert_int_equal(a.cols, 2);
    for (size_t i = 0; i < DLC_ARRAY_SIZE(numbers); i++) {
        json_error_t je;
        json_t *j = json_loads(numbers[i], JSON_DECODE_ANY, &je);
        assert_non_null(j);
        float want = (float)json_number_value(j);
        json_decref(j);
        assert_memory_equal(&a.data[2 * i], &want, sizeof(float));
        assert_memory_equal(&a.data[2 * i + 1], &want, sizeof(float));
    }
    tensor_array_release(&a);
    dlc_strbuf_release(&body);
}

static void test_serve_codec__json_fast_path_leaves_the_rest(void **state)
{
    (void)state;
    static const char *const others[] = {
            "[[1, \"x\"]]",
            "[[1e400]]",
            "[[12345678901234567890]]",
            "[[01]]",
            "[[1.]]",
            "[[-]]",
            "[]",
            "[[]]",
            "[[1], [2, 3]]",
            "[[1]] x",
            "[1, 2]",
            "[[1], 2]",
            "{\"instances\": [[1]], \"x\": 1}",
            "{\"inputs\": [[1]]}",
            "[{\"features\": [1]}]",
            "[[1, 2]",
            "[[true]]",
            "[[1,]]",
            "[[+1]]",
            "[[.5]]",
            "[[NaN]]",
    };
    for (size_t i = 0; i < DLC_ARRAY_SIZE(others); i++) {
        struct tensor_array a = {0};
        if (serve_json_fast(others[i], strlen(others[i]), &a) != 1)
            fail_msg("the fast path took %s", others[i]);
        assert_null(a.data);
    }
    struct tensor_array a = {0};
    assert_int_equal(serve_json_fast("{\"instances\":[[1]]}", 19, &a), 0);
    assert_int_equal(a.rows, 1);
    tensor_array_release(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_serve_codec__content_type),
            cmocka_unit_test(test_serve_codec__accept),
            cmocka_unit_test(test_serve_codec__json),
            cmocka_unit_test(test_serve_codec__csv),
            cmocka_unit_test(test_serve_codec__npy_roundtrip),
            cmocka_unit_test(test_serve_codec__npy_1d_is_a_row),
            cmocka_unit_test(test_serve_codec__encode_text),
            cmocka_unit_test(test_serve_codec__json_fast_path_reads_what_jansson_reads),
            cmocka_unit_test(test_serve_codec__json_fast_path_leaves_the_rest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
