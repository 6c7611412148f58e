/* serve-codec.c: /invocations bodies in and out: media types, Accept negotiation, and the
 * JSON, CSV and npy codecs (SageMaker's inference toolkit supports the same three). */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "serve.h"

#define MAX_ACCEPT_RANGES 32

static const char *const mimes[_SERVE_TYPE_MAX] = {
        [SERVE_JSON] = "application/json",
        [SERVE_CSV] = "text/csv",
        [SERVE_NPY] = "application/x-npy",
};

const char *serve_type_mime(enum serve_type t)
{
    DLC_ASSERT(t >= 0 && t < _SERVE_TYPE_MAX);
    return mimes[t];
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* The media range at s (up to ';' or ','), trimmed, as [*ret_s, *ret_s + *ret_len). */
static const char *media_range(const char *s, const char **ret_s, size_t *ret_len)
{
    while (is_space(*s))
        s++;
    const char *e = s;
    while (*e && *e != ';' && *e != ',')
        e++;
    const char *t = e;
    while (t > s && is_space(t[-1]))
        t--;
    *ret_s = s;
    *ret_len = (size_t)(t - s);
    return e;
}

static int type_of(const char *s, size_t len)
{
    for (int t = 0; t < _SERVE_TYPE_MAX; t++)
        if (strlen(mimes[t]) == len && strncasecmp(s, mimes[t], len) == 0)
            return t;
    return -1;
}

int serve_content_type(const char *header, enum serve_type *ret)
{
    if (header == NULL) {
        *ret = SERVE_JSON;
        return 0;
    }
    const char *s = NULL;
    size_t len = 0;
    media_range(header, &s, &len);
    if (len == 0) {
        *ret = SERVE_JSON;
        return 0;
    }
    int t = type_of(s, len);
    if (t < 0)
        return -1;
    *ret = (enum serve_type)t;
    return 0;
}

/* Parses the parameters after a media range up to the next ',' for q; returns the end. */
static const char *range_quality(const char *p, double *ret_q)
{
    *ret_q = 1.0;
    while (*p == ';') {
        p++;
        while (is_space(*p))
            p++;
        const char *e = p;
        while (*e && *e != ';' && *e != ',')
            e++;
        if ((p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            char buf[16] = "";
            size_t n = (size_t)(e - p - 2);
            if (n < sizeof(buf)) {
                memcpy(buf, p + 2, n);
                buf[n] = '\0';
                char *stop = NULL;
                double q = strtod(buf, &stop);
                while (stop && is_space(*stop))
                    stop++;
                *ret_q = (stop && *stop == '\0' && q >= 0 && q <= 1) ? q : 0;
            }
        }
        p = e;
    }
    return p;
}

/* Which of our types a range names: a type, or the default for a wildcard; -1 for none. */
static int range_type(const char *s, size_t len, enum serve_type def)
{
    if (len == 3 && strncmp(s, "*/*", 3) == 0)
        return (int)def;
    if (len == 13 && strncasecmp(s, "application/*", 13) == 0)
        return def == SERVE_CSV ? SERVE_JSON : (int)def;
    if (len == 6 && strncasecmp(s, "text/*", 6) == 0)
        return SERVE_CSV;
    return type_of(s, len);
}

int serve_accept(const char *header, enum serve_type def, enum serve_type *ret)
{
    if (header == NULL || header[0] == '\0') {
        *ret = def;
        return 0;
    }
    int best = -1;
    double best_q = 0;
    const char *p = header;
    for (int i = 0; *p && i < MAX_ACCEPT_RANGES; i++) {
        const char *s = NULL;
        size_t len = 0;
        double q = 1;
        p = range_quality(media_range(p, &s, &len), &q);
        int t = range_type(s, len, def);
        if (t >= 0 && q > best_q) {
            best = t;
            best_q = q;
        }
        if (*p == ',')
            p++;
    }
    if (best < 0)
        return -1;
    *ret = (enum serve_type)best;
    return 0;
}

/* ---- decoding -------------------------------------------------------------------------- */

/* The numbers of a JSON row (a list, or {"features": [...]}) into out[0..cols). */
static int json_row(const json_t *row, int64_t r, int64_t cols, float *out, struct dlc_error **err)
{
    if (json_is_object(row)) {
        json_t *f = json_object_get(row, "features");
        if (!json_is_array(f))
            return dlc_error_set(err, EINVAL, "row %lld: an object row needs a 'features' list",
                                 (long long)r + 1);
        row = f;
    }
    if (!json_is_array(row))
        return dlc_error_set(err, EINVAL, "row %lld: expected a list of numbers", (long long)r + 1);
    if ((int64_t)json_array_size(row) != cols)
        return dlc_error_set(err, EINVAL,
                             "row %lld has %zu values, row 1 has %lld: every row needs the "
                             "same number of features",
                             (long long)r + 1, json_array_size(row), (long long)cols);
    for (int64_t j = 0; j < cols; j++) {
        json_t *v = json_array_get(row, (size_t)j);
        if (!json_is_number(v))
            return dlc_error_set(err, EINVAL, "row %lld, column %lld: expected a number",
                                 (long long)r + 1, (long long)j + 1);
        out[j] = (float)json_number_value(v);
    }
    return 0;
}

static int64_t row_width(const json_t *row)
{
    if (json_is_object(row))
        row = json_object_get(row, "features");
    return json_is_array(row) ? (int64_t)json_array_size(row) : -1;
}

/* A flat list of numbers: one row, or one row per value for a one-feature model. */
static int json_flat(const json_t *list, int64_t input_dim, struct tensor_array *ret,
                     struct dlc_error **err)
{
    int64_t n = (int64_t)json_array_size(list);
    int64_t rows = input_dim == 1 ? n : 1, cols = input_dim == 1 ? 1 : n;
    if (tensor_array_alloc(ret, rows, cols, err) < 0)
        return -1;
    for (int64_t i = 0; i < n; i++) {
        json_t *v = json_array_get(list, (size_t)i);
        if (!json_is_number(v)) {
            tensor_array_release(ret);
            return dlc_error_set(err, EINVAL, "value %lld: expected a number", (long long)i + 1);
        }
        ret->data[i] = (float)json_number_value(v);
    }
    return 0;
}

static int json_rows(const json_t *list, int64_t input_dim, struct tensor_array *ret,
                     struct dlc_error **err)
{
    int64_t rows = (int64_t)json_array_size(list);
    if (rows == 0)
        return dlc_error_set(err, EINVAL, "the request has no rows");
    json_t *first = json_array_get(list, 0);
    if (json_is_number(first))
        return json_flat(list, input_dim, ret, err);
    int64_t cols = row_width(first);
    if (cols < 0)
        return json_row(first, 0, 0, NULL, err); /* says what is wrong with it */
    struct tensor_array a = {0};
    if (tensor_array_alloc(&a, rows, cols, err) < 0)
        return -1;
    for (int64_t i = 0; i < rows; i++) {
        if (json_row(json_array_get(list, (size_t)i), i, cols, a.data + i * cols, err) < 0) {
            tensor_array_release(&a);
            return -1;
        }
    }
    *ret = a;
    return 0;
}

static int decode_json(const char *body, size_t len, int64_t input_dim, struct tensor_array *ret,
                       struct dlc_error **err)
{
    /* One row of a one-feature model as [[x]] is fine here too: only flat lists are
     * ambiguous, and the fast path takes none. */
    if (serve_json_fast(body, len, ret) == 0)
        return 0;
    json_auto_t *j = dlc_json_loadb(body, len, "JSON body", err);
    if (j == NULL)
        return -1;
    json_t *list = j;
    if (json_is_object(j)) {
        list = json_object_get(j, "instances");
        if (!json_is_array(list))
            return dlc_error_set(err, EINVAL,
                                 "expected {\"instances\": [[...], ...]} or a list of rows");
    }
    if (!json_is_array(list))
        return dlc_error_set(err, EINVAL,
                             "expected {\"instances\": [[...], ...]} or a list of rows");
    return json_rows(list, input_dim, ret, err);
}

static int decode_npy(const char *body, size_t len, int64_t input_dim, struct tensor_array *ret,
                      struct dlc_error **err)
{
    struct tensor_array a = {0};
    if (tensor_npy_parse(body, len, "npy body", &a, err) < 0)
        return -1;
    if (a.ndim <= 1 && input_dim != 1) { /* a 1-D array (or a scalar) is one row */
        a.cols = a.rows * a.cols;
        a.rows = 1;
    }
    if (a.rows == 0) {
        tensor_array_release(&a);
        return dlc_error_set(err, EINVAL, "the request has no rows");
    }
    *ret = a;
    return 0;
}

int serve_decode(enum serve_type t, const char *body, size_t len, int64_t input_dim,
                 struct tensor_array *ret, struct dlc_error **err)
{
    switch (t) {
    case SERVE_JSON:
        return decode_json(body, len, input_dim, ret, err);
    case SERVE_CSV:
        if (len == 0)
            return dlc_error_set(err, EINVAL, "the request has no rows");
        return tensor_csv_parse(body, len, "CSV body", false, ret, NULL, err);
    case SERVE_NPY:
        return decode_npy(body, len, input_dim, ret, err);
    default:
        DLC_ASSERT(!"unknown serve_type");
    }
    return -1;
}

/* ---- encoding -------------------------------------------------------------------------- */

/* %.9g round-trips every f32 (what tensor predict writes). strfromf skips printf's format
 * parsing, a fifth of the cost of a 100-row answer. */
static void append_number(struct dlc_strbuf *out, float v)
{
    char buf[32];
    int n = strfromf(buf, sizeof(buf), "%.9g", v);
    dlc_strbuf_append_len(out, buf, (size_t)n);
}

/* JSON has no NaN or Infinity: those become null. */
static void append_json_number(struct dlc_strbuf *out, float v)
{
    if (!isfinite(v)) {
        dlc_strbuf_append(out, "null");
        return;
    }
    append_number(out, v);
}

static void encode_json(const struct tensor_array *y, struct dlc_strbuf *out)
{
    dlc_strbuf_append(out, "{\"predictions\":[");
    for (int64_t i = 0; i < y->rows; i++) {
        dlc_strbuf_append(out, i ? ",[" : "[");
        for (int64_t j = 0; j < y->cols; j++) {
            if (j)
                dlc_strbuf_appendc(out, ',');
            append_json_number(out, y->data[i * y->cols + j]);
        }
        dlc_strbuf_appendc(out, ']');
    }
    dlc_strbuf_append(out, "]}");
}

static void encode_csv(const struct tensor_array *y, struct dlc_strbuf *out)
{
    for (int64_t i = 0; i < y->rows; i++) {
        for (int64_t j = 0; j < y->cols; j++) {
            if (j)
                dlc_strbuf_appendc(out, ',');
            append_number(out, y->data[i * y->cols + j]);
        }
        dlc_strbuf_appendc(out, '\n');
    }
}

/* Version 1 .npy, '<f4', C order, header padded so the data starts at a multiple of 64. */
static void encode_npy(const struct tensor_array *y, struct dlc_strbuf *out)
{
    char dict[128];
    int dlen = snprintf(dict, sizeof(dict),
                        "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                        (long long)y->rows, (long long)y->cols);
    size_t total = ((size_t)dlen + 1 + 10 + 63) / 64 * 64;
    size_t hlen = total - 10;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);
    dlc_strbuf_append_len(out, pre, sizeof(pre));
    dlc_strbuf_append_len(out, dict, (size_t)dlen);
    for (size_t i = 10 + (size_t)dlen; i + 1 < total; i++)
        dlc_strbuf_appendc(out, ' ');
    dlc_strbuf_appendc(out, '\n');
    /* x86-64 and arm64 are little-endian, as '<f4' says. */
    dlc_strbuf_append_len(out, y->data, (size_t)(y->rows * y->cols) * sizeof(float));
}

void serve_encode(enum serve_type t, const struct tensor_array *y, struct dlc_strbuf *out)
{
    switch (t) {
    case SERVE_JSON:
        encode_json(y, out);
        break;
    case SERVE_CSV:
        encode_csv(y, out);
        break;
    case SERVE_NPY:
        encode_npy(y, out);
        break;
    default:
        DLC_ASSERT(!"unknown serve_type");
    }
}

char *serve_error_json(const char *msg, size_t *ret_len)
{
    json_auto_t *j = json_pack("{s:s}", "error", msg);
    if (j == NULL) /* msg was not UTF-8 (it quotes the request) */
        j = json_pack("{s:s}", "error", "malformed request");
    return dlc_json_dumps(j, ret_len);
}
