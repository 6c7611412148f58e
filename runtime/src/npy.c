/* npy.c: numpy's .npy format (versions 1.0, 2.0, 3.0), read into f32 and written as '<f4'.
 *
 * The header is a Python dict literal, {'descr': '<f4', 'fortran_order': False,
 * 'shape': (3, 4), }, parsed here by a small strict parser: it accepts what numpy writes
 * and rejects anything else with the reason, never guessing. */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "tensor-internal.h"

#define NPY_MAX_HEADER (1 << 20)
#define NPY_MAX_FILE   ((size_t)TENSOR_MAX_ELEMENTS * 8 + NPY_MAX_HEADER)

enum npy_kind { NPY_FLOAT, NPY_INT, NPY_UINT, NPY_BOOL };

struct npy_header {
    enum npy_kind kind;
    int size; /* bytes per element */
    bool big_endian;
    bool fortran;
    int ndim;
    int64_t shape[8];
    char descr[32];
};

struct cursor {
    const char *p, *end;
    const char *what;
    struct dlc_error **err;
};

static int bad(struct cursor *c, const char *why)
{
    return dlc_error_set(c->err, EINVAL, "%s: bad header: %s", c->what, why);
}

static void skip_ws(struct cursor *c)
{
    while (c->p < c->end && isspace((unsigned char)*c->p))
        c->p++;
}

static bool eat(struct cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

/* A Python string literal in single or double quotes, no escapes (numpy writes none). */
static int parse_str(struct cursor *c, char *out, size_t outlen)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return bad(c, "expected a string");
    char q = *c->p++;
    const char *s = c->p;
    while (c->p < c->end && *c->p != q)
        c->p++;
    if (c->p >= c->end || (size_t)(c->p - s) >= outlen)
        return bad(c, "unterminated or overlong string");
    memcpy(out, s, (size_t)(c->p - s));
    out[c->p - s] = '\0';
    c->p++;
    return 0;
}

static int parse_bool(struct cursor *c, bool *ret)
{
    skip_ws(c);
    size_t left = (size_t)(c->end - c->p);
    if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
        *ret = true;
        c->p += 4;
    } else if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
        *ret = false;
        c->p += 5;
    } else {
        return bad(c, "fortran_order must be True or False");
    }
    return 0;
}

static int parse_dim(struct cursor *c, int64_t *ret)
{
    skip_ws(c);
    int64_t v = 0;
    const char *s = c->p;
    while (c->p < c->end && isdigit((unsigned char)*c->p)) {
        if (v > (INT64_MAX - 9) / 10)
            return bad(c, "shape dimension too large");
        v = v * 10 + (*c->p++ - '0');
    }
    if (c->p == s)
        return bad(c, "shape must be a tuple of non-negative integers");
    if (c->p < c->end && *c->p == 'L') /* Python 2's long suffix */
        c->p++;
    *ret = v;
    return 0;
}

static int parse_shape(struct cursor *c, struct npy_header *h)
{
    if (!eat(c, '('))
        return bad(c, "shape must be a tuple");
    h->ndim = 0;
    while (!eat(c, ')')) {
        if (h->ndim == (int)DLC_ARRAY_SIZE(h->shape))
            return bad(c, "more than 8 dimensions");
        if (parse_dim(c, &h->shape[h->ndim++]) < 0)
            return -1;
        if (!eat(c, ',')) {
            if (!eat(c, ')'))
                return bad(c, "shape tuple is not closed");
            break;
        }
    }
    return 0;
}

static int parse_descr(const char *d, struct npy_header *h, const char *what,
                       struct dlc_error **err)
{
    snprintf(h->descr, sizeof(h->descr), "%s", d);
    if (strcmp(d, "|O") == 0 || strcmp(d, "O") == 0)
        return dlc_error_set(err, EINVAL,
                             "%s: object arrays ('|O') cannot be read: they hold pickled "
                             "Python objects",
                             what);
    const char *t = d;
    if (*t == '<' || *t == '>' || *t == '|' || *t == '=')
        h->big_endian = *t++ == '>';
    static const struct {
        const char *code;
        enum npy_kind kind;
        int size;
    } ok[] = {{"f4", NPY_FLOAT, 4}, {"f8", NPY_FLOAT, 8}, {"i1", NPY_INT, 1},  {"i2", NPY_INT, 2},
              {"i4", NPY_INT, 4},   {"i8", NPY_INT, 8},   {"u1", NPY_UINT, 1}, {"u2", NPY_UINT, 2},
              {"u4", NPY_UINT, 4},  {"b1", NPY_BOOL, 1}};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(ok); i++) {
        if (strcmp(t, ok[i].code) == 0) {
            h->kind = ok[i].kind;
            h->size = ok[i].size;
            return 0;
        }
    }
    return dlc_error_set(err, EINVAL,
                         "%s: unsupported dtype '%s' (supported: f4 f8 i1 i2 i4 i8 u1 u2 u4 b1)",
                         what, d);
}

static int parse_dict(struct cursor *c, struct npy_header *h)
{
    bool seen[3] = {false, false, false};
    char key[32], descr[32];
    if (!eat(c, '{'))
        return bad(c, "expected '{'");
    while (!eat(c, '}')) {
        if (parse_str(c, key, sizeof(key)) < 0)
            return -1;
        if (!eat(c, ':'))
            return bad(c, "expected ':'");
        int r;
        if (strcmp(key, "descr") == 0) {
            skip_ws(c);
            if (c->p < c->end && *c->p == '[')
                return bad(c, "structured dtypes are not supported");
            r = parse_str(c, descr, sizeof(descr)), seen[0] = true;
        } else if (strcmp(key, "fortran_order") == 0) {
            r = parse_bool(c, &h->fortran), seen[1] = true;
        } else if (strcmp(key, "shape") == 0) {
            r = parse_shape(c, h), seen[2] = true;
        } else {
            return dlc_error_set(c->err, EINVAL, "%s: bad header: unexpected key '%s'", c->what,
                                 key);
        }
        if (r < 0)
            return -1;
        if (!eat(c, ',') && !eat(c, '}'))
            return bad(c, "expected ',' or '}'");
        else if (c->p[-1] == '}')
            break;
    }
    if (!seen[0] || !seen[1] || !seen[2])
        return bad(c, "needs 'descr', 'fortran_order' and 'shape'");
    return parse_descr(descr, h, c->what, c->err);
}

/* Reads magic, version and header; *ret_data_off is where the array data starts. */
static int parse_preamble(const unsigned char *b, size_t len, const char *what,
                          struct npy_header *h, size_t *ret_data_off, struct dlc_error **err)
{
    if (!tensor__is_npy(b, len))
        return dlc_error_set(err, EINVAL, "%s: not a .npy file (no \\x93NUMPY magic)", what);
    if (len < 10)
        return dlc_error_set(err, EPROTO, "%s: truncated header", what);
    int major = b[6], minor = b[7];
    size_t hlen, hoff;
    if (major == 1) {
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
        hoff = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12)
            return dlc_error_set(err, EPROTO, "%s: truncated header", what);
        hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        hoff = 12;
    } else {
        return dlc_error_set(err, EINVAL, "%s: unsupported .npy format version %d.%d", what, major,
                             minor);
    }
    if (hlen > NPY_MAX_HEADER)
        return dlc_error_set(err, EINVAL, "%s: header of %zu bytes is too large", what, hlen);
    if (hoff + hlen > len)
        return dlc_error_set(err, EPROTO, "%s: truncated header (%zu of %zu bytes)", what,
                             len - hoff, hlen);
    struct cursor c = {(const char *)b + hoff, (const char *)b + hoff + hlen, what, err};
    *h = (struct npy_header){0};
    if (parse_dict(&c, h) < 0)
        return -1;
    skip_ws(&c);
    if (c.p != c.end)
        return bad(&c, "junk after the dict");
    if (h->fortran)
        return dlc_error_set(err, EINVAL,
                             "%s: fortran_order arrays are not supported: save a C-ordered "
                             "array (np.ascontiguousarray)",
                             what);
    *ret_data_off = hoff + hlen;
    return 0;
}

static void shape_str(const struct npy_header *h, char *buf, size_t len)
{
    size_t o = (size_t)snprintf(buf, len, "(");
    for (int i = 0; i < h->ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? ", " : "", (long long)h->shape[i]);
    if (o < len)
        snprintf(buf + o, len - o, "%s)", h->ndim == 1 ? "," : "");
}

static uint64_t load_uint(const unsigned char *p, int size, bool big)
{
    uint64_t v = 0;
    for (int i = 0; i < size; i++)
        v |= (uint64_t)p[big ? size - 1 - i : i] << (8 * i);
    return v;
}

static float convert(const unsigned char *p, const struct npy_header *h)
{
    uint64_t u = load_uint(p, h->size, h->big_endian);
    switch (h->kind) {
    case NPY_FLOAT:
        if (h->size == 4) {
            uint32_t u32 = (uint32_t)u;
            float f;
            memcpy(&f, &u32, 4);
            return f;
        } else {
            double d;
            memcpy(&d, &u, 8);
            return (float)d;
        }
    case NPY_INT:
        if (h->size < 8 && (u >> (8 * h->size - 1)) & 1) /* sign-extend */
            u |= ~(uint64_t)0 << (8 * h->size);
        return (float)(int64_t)u;
    case NPY_UINT:
        return (float)u;
    case NPY_BOOL:
        return u != 0 ? 1.0f : 0.0f;
    }
    return 0;
}

static void convert_all(const unsigned char *src, const struct npy_header *h, float *dst, size_t n)
{
    if (h->kind == NPY_FLOAT && h->size == 4 && !h->big_endian) {
        memcpy(dst, src, n * 4); /* the common case, and the fast one */
        return;
    }
    for (size_t i = 0; i < n; i++)
        dst[i] = convert(src + i * (size_t)h->size, h);
}

int tensor_npy_parse(const void *buf, size_t len, const char *what, struct tensor_array *ret,
                     struct dlc_error **err)
{
    struct npy_header h = {0};
    size_t off = 0;
    if (parse_preamble(buf, len, what, &h, &off, err) < 0)
        return -1;
    /* Flatten to rows x (product of the other dimensions); a 0-d array is one row. */
    size_t rows = h.ndim > 0 ? (size_t)h.shape[0] : 1, cols = 1, n = 0, bytes = 0;
    bool ok = true;
    for (int i = 1; i < h.ndim; i++)
        ok = ok && dlc_size_mul(cols, (size_t)h.shape[i], &cols);
    if (!ok || !dlc_size_mul(rows, cols, &n) || n > TENSOR_MAX_ELEMENTS ||
        !dlc_size_mul(n, (size_t)h.size, &bytes))
        return dlc_error_set(err, EFBIG, "%s: more than %llu elements", what,
                             (unsigned long long)TENSOR_MAX_ELEMENTS);
    if (len - off < bytes) {
        char shape[160];
        shape_str(&h, shape, sizeof(shape));
        return dlc_error_set(err, EPROTO,
                             "%s: truncated data: shape %s of %s needs %zu bytes, found %zu", what,
                             shape, h.descr, bytes, len - off);
    }
    struct tensor_array a;
    if (tensor_array_alloc(&a, (int64_t)rows, (int64_t)cols, err) < 0)
        return dlc_error_wrap(err, "%s", what);
    convert_all((const unsigned char *)buf + off, &h, a.data, n);
    a.ndim = h.ndim;
    memcpy(a.shape, h.shape, sizeof(a.shape));
    *ret = a;
    return 0;
}

int tensor_npy_read(const char *path, struct tensor_array *ret, struct dlc_error **err)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (tensor_read_maybe_gz(path, NPY_MAX_FILE, &buf, &len, err) < 0)
        return -1;
    return tensor_npy_parse(buf, len, path, ret, err);
}

int tensor_npy_write(const char *path, const struct tensor_array *a, struct dlc_error **err)
{
    char dict[128];
    int dlen = snprintf(dict, sizeof(dict),
                        "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                        (long long)a->rows, (long long)a->cols);
    /* numpy pads so that the data starts on a 64-byte boundary, header ending in '\n'. */
    size_t total = ((size_t)dlen + 1 + 10 + 63) / 64 * 64;
    size_t hlen = total - 10;
    _cleanup_free_ unsigned char *head = xmalloc(total);
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    head[8] = (unsigned char)(hlen & 0xff);
    head[9] = (unsigned char)(hlen >> 8);
    memcpy(head + 10, dict, (size_t)dlen);
    memset(head + 10 + dlen, ' ', hlen - (size_t)dlen - 1);
    head[total - 1] = '\n';

    _cleanup_atomic_file_ struct dlc_atomic_file af = DLC_ATOMIC_FILE_INIT;
    if (dlc_atomic_file_open(&af, path, 0644, err) < 0 ||
        dlc_write_all(af.fd, head, total, err) < 0 ||
        dlc_write_all(af.fd, a->data, (size_t)(a->rows * a->cols) * sizeof(float), err) < 0 ||
        dlc_atomic_file_commit(&af, err) < 0)
        return dlc_error_wrap(err, "write %s", path);
    return 0;
}
