/* csv.c: numeric CSV in and out. SageMaker's built-in algorithms read training CSV with
 * the label in the first column and no header; we also skip one header line, recognised
 * by a field that is not a number. Blank lines are ignored; every other line must have the
 * same number of columns. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "tensor-internal.h"

#define CSV_MAX_FILE ((size_t)TENSOR_MAX_ELEMENTS * 4)
#define CSV_MAX_COLS 1000000

struct csv_state {
    const char *what;
    size_t line;
    int64_t cols;   /* 0 until the first data line */
    bool seen_line; /* a non-blank line was read: no header after it */
    float *vals;
    size_t n, cap;
    struct dlc_error **err;
};

static const char *trim(const char *s, const char **end)
{
    while (s < *end && (*s == ' ' || *s == '\t'))
        s++;
    while (*end > s && ((*end)[-1] == ' ' || (*end)[-1] == '\t' || (*end)[-1] == '\r'))
        (*end)--;
    if (*end - s >= 2 && *s == '"' && (*end)[-1] == '"') {
        s++;
        (*end)--;
    }
    return s;
}

/* 0 and *ret on success; 1 when the field is not a finite number. */
static int parse_field(const char *s, const char *end, float *ret)
{
    char buf[64];
    s = trim(s, &end);
    size_t len = (size_t)(end - s);
    if (len == 0 || len >= sizeof(buf))
        return 1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *stop = NULL;
    errno = 0;
    float v = strtof(buf, &stop);
    if (*stop != '\0' || !isfinite(v))
        return 1;
    *ret = v;
    return 0;
}

static int64_t count_fields(const char *s, const char *end)
{
    int64_t n = 1;
    for (; s < end; s++)
        n += *s == ',';
    return n;
}

static void push(struct csv_state *st, float v)
{
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 4096;
        st->vals = xrealloc(st->vals, st->cap * sizeof(float));
    }
    st->vals[st->n++] = v;
}

/* One non-blank line; returns 1 for a header line that was skipped. */
static int parse_line(struct csv_state *st, const char *s, const char *end)
{
    int64_t nf = count_fields(s, end);
    if (st->cols == 0 && nf > CSV_MAX_COLS)
        return dlc_error_set(st->err, EFBIG, "%s:%zu: more than %d columns", st->what, st->line,
                             CSV_MAX_COLS);
    if (st->cols != 0 && nf != st->cols)
        return dlc_error_set(st->err, EINVAL, "%s:%zu: expected %lld columns, found %lld", st->what,
                             st->line, (long long)st->cols, (long long)nf);
    size_t start = st->n;
    for (int64_t col = 0; col < nf; col++) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *fend = comma ? comma : end;
        float v = 0;
        if (parse_field(s, fend, &v) != 0) {
            if (!st->seen_line) { /* a header */
                st->seen_line = true;
                st->n = start;
                return 1;
            }
            const char *t = trim(s, &fend);
            return dlc_error_set(st->err, EINVAL, "%s:%zu: column %lld: '%.*s' is not a number",
                                 st->what, st->line, (long long)col + 1,
                                 (int)(fend - t > 40 ? 40 : fend - t), t);
        }
        push(st, v);
        s = fend + 1;
    }
    st->seen_line = true;
    st->cols = nf;
    return 0;
}

/* Splits the values into x (and y from column 0 when label_first). */
static int split(struct csv_state *st, bool label_first, struct tensor_array *ret_x,
                 struct tensor_array *ret_y)
{
    int64_t rows = st->cols ? (int64_t)(st->n / (size_t)st->cols) : 0;
    int64_t xcols = st->cols - (label_first ? 1 : 0);
    if (rows == 0)
        return dlc_error_set(st->err, EINVAL, "%s: no data rows", st->what);
    if (label_first && st->cols < 2)
        return dlc_error_set(st->err, EINVAL,
                             "%s: needs a label column and at least one feature column", st->what);
    struct tensor_array x = {0}, y = {0};
    if (tensor_array_alloc(&x, rows, xcols, st->err) < 0 ||
        (label_first && tensor_array_alloc(&y, rows, 1, st->err) < 0)) {
        tensor_array_release(&x);
        return dlc_error_wrap(st->err, "%s", st->what);
    }
    for (int64_t i = 0; i < rows; i++) {
        const float *row = st->vals + i * st->cols;
        if (label_first)
            y.data[i] = row[0];
        memcpy(x.data + i * xcols, row + (label_first ? 1 : 0), (size_t)xcols * sizeof(float));
    }
    *ret_x = x;
    if (label_first)
        *ret_y = y;
    return 0;
}

int tensor_csv_parse(const char *buf, size_t len, const char *what, bool label_first,
                     struct tensor_array *ret_x, struct tensor_array *ret_y, struct dlc_error **err)
{
    struct csv_state st = {.what = what, .err = err};
    const char *p = buf, *end = buf + len;
    int r = 0;
    while (p < end && r >= 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *lend = nl ? nl : end;
        st.line++;
        const char *t = lend;
        const char *s = trim(p, &t);
        if (s < t)
            r = parse_line(&st, p, lend);
        p = lend + 1;
    }
    if (r >= 0)
        r = split(&st, label_first, ret_x, ret_y);
    free(st.vals);
    return r < 0 ? -1 : 0;
}

int tensor_csv_read(const char *path, bool label_first, struct tensor_array *ret_x,
                    struct tensor_array *ret_y, struct dlc_error **err)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (tensor_read_maybe_gz(path, CSV_MAX_FILE, &buf, &len, err) < 0)
        return -1;
    return tensor_csv_parse(buf, len, path, label_first, ret_x, ret_y, err);
}

int tensor_csv_write(const char *path, const struct tensor_array *a, struct dlc_error **err)
{
    _cleanup_strbuf_ struct dlc_strbuf sb = DLC_STRBUF_INIT;
    for (int64_t i = 0; i < a->rows; i++) {
        for (int64_t j = 0; j < a->cols; j++)
            dlc_strbuf_appendf(&sb, "%s%.9g", j ? "," : "", (double)a->data[i * a->cols + j]);
        dlc_strbuf_appendc(&sb, '\n');
    }
    if (dlc_write_file_atomic(path, dlc_strbuf_str(&sb), sb.len, 0644, err) < 0)
        return dlc_error_wrap(err, "write %s", path);
    return 0;
}
