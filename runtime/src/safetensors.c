/* safetensors.c: Hugging Face's safetensors format, F32 only: an 8-byte little-endian
 * header length, a JSON header {"<name>": {"dtype", "shape", "data_offsets": [begin, end]},
 * "__metadata__": {...}}, then the raw data. Reading validates what the reference
 * implementation validates (header cap, offsets inside the buffer and covering it with no
 * gap or overlap, shape matching the byte count), so a damaged file is an error, not
 * garbage weights. */
#include <errno.h>
#include <string.h>

#include "tensor-internal.h"

#define ST_MAX_HEADER (100u << 20) /* the reference implementation's limit */
#define ST_MAX_FILE   ((size_t)TENSOR_MAX_ELEMENTS * 4 + ST_MAX_HEADER)

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian");

struct st_tensor {
    char *name;
    size_t begin, end; /* byte offsets into the data section */
};

struct tensor_safetensors {
    char *path;
    char *buf; /* the whole file */
    const char *data;
    size_t data_len;
    struct st_tensor *tensors;
    size_t n;
    json_t *metadata;
};

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct tensor_st_entry *)a)->name,
                  ((const struct tensor_st_entry *)b)->name);
}

static json_t *shape_json(const struct tensor_st_entry *e, size_t *ret_count)
{
    json_t *shape = json_array();
    size_t count = 1;
    for (int d = 0; d < e->ndim; d++) {
        json_array_append_new(shape, json_integer(e->shape[d]));
        count *= (size_t)e->shape[d];
    }
    *ret_count = count;
    return shape;
}

/* The header JSON, padded with spaces to a multiple of 8 so the data is aligned. */
static char *build_header(const struct tensor_st_entry *sorted, size_t n, const json_t *metadata,
                          size_t *ret_len)
{
    json_auto_t *h = json_object();
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t count = 0;
        json_t *shape = shape_json(&sorted[i], &count);
        size_t end = off + count * sizeof(float);
        json_t *t = json_pack("{s:s, s:o, s:[I,I]}", "dtype", "F32", "shape", shape, "data_offsets",
                              (json_int_t)off, (json_int_t)end);
        json_object_set_new(h, sorted[i].name, t);
        off = end;
    }
    if (metadata != NULL)
        json_object_set(h, "__metadata__", (json_t *)metadata);
    size_t len = 0;
    char *s = dlc_json_dumps(h, &len);
    size_t padded = (len + 7) / 8 * 8;
    s = xrealloc(s, padded + 1);
    memset(s + len, ' ', padded - len);
    s[padded] = '\0';
    *ret_len = padded;
    return s;
}

int tensor_safetensors_write(const char *path, const struct tensor_st_entry *entries, size_t n,
                             const json_t *metadata, struct dlc_error **err)
{
    _cleanup_free_ struct tensor_st_entry *sorted = xcalloc(n ? n : 1, sizeof(*sorted));
    memcpy(sorted, entries, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), cmp_entry);
    for (size_t i = 1; i < n; i++)
        if (strcmp(sorted[i - 1].name, sorted[i].name) == 0)
            return dlc_error_set(err, EINVAL, "write %s: duplicate tensor '%s'", path,
                                 sorted[i].name);
    size_t hlen = 0;
    _cleanup_free_ char *header = build_header(sorted, n, metadata, &hlen);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));

    _cleanup_atomic_file_ struct dlc_atomic_file af = DLC_ATOMIC_FILE_INIT;
    if (dlc_atomic_file_open(&af, path, 0644, err) < 0 || dlc_write_all(af.fd, len8, 8, err) < 0 ||
        dlc_write_all(af.fd, header, hlen, err) < 0)
        return dlc_error_wrap(err, "write %s", path);
    for (size_t i = 0; i < n; i++) {
        size_t count = 1;
        for (int d = 0; d < sorted[i].ndim; d++)
            count *= (size_t)sorted[i].shape[d];
        if (dlc_write_all(af.fd, sorted[i].data, count * sizeof(float), err) < 0)
            return dlc_error_wrap(err, "write %s", path);
    }
    if (dlc_atomic_file_commit(&af, err) < 0)
        return dlc_error_wrap(err, "write %s", path);
    return 0;
}

void tensor_safetensors_free(struct tensor_safetensors *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->n; i++)
        free(st->tensors[i].name);
    free(st->tensors);
    json_decref(st->metadata);
    free(st->buf);
    free(st->path);
    free(st);
}

static int parse_entry(struct tensor_safetensors *st, const char *name, const json_t *v,
                       struct st_tensor *ret, struct dlc_error **err)
{
    const char *dtype = NULL;
    json_t *shape = NULL, *offs = NULL;
    _cleanup_free_ char *what = xasprintf("%s: tensor '%s'", st->path, name);
    if (dlc_json_get_string(v, "dtype", true, what, &dtype, err) < 0 ||
        dlc_json_get_array(v, "shape", true, what, &shape, err) < 0 ||
        dlc_json_get_array(v, "data_offsets", true, what, &offs, err) < 0)
        return -1;
    if (strcmp(dtype, "F32") != 0)
        return dlc_error_set(err, EINVAL, "%s: dtype %s is not supported (only F32)", what, dtype);
    size_t count = 1;
    size_t i;
    json_t *d;
    json_array_foreach(shape, i, d) {
        if (!json_is_integer(d) || json_integer_value(d) < 0 ||
            !dlc_size_mul(count, (size_t)json_integer_value(d), &count))
            return dlc_error_set(err, EINVAL, "%s: bad shape", what);
    }
    json_t *b = json_array_get(offs, 0), *e = json_array_get(offs, 1);
    if (json_array_size(offs) != 2 || !json_is_integer(b) || !json_is_integer(e) ||
        json_integer_value(b) < 0 || json_integer_value(e) < json_integer_value(b) ||
        (uint64_t)json_integer_value(e) > st->data_len)
        return dlc_error_set(err, EINVAL, "%s: data_offsets outside the file", what);
    ret->begin = (size_t)json_integer_value(b);
    ret->end = (size_t)json_integer_value(e);
    if (count > TENSOR_MAX_ELEMENTS || count * sizeof(float) != ret->end - ret->begin)
        return dlc_error_set(err, EINVAL, "%s: shape does not match data_offsets", what);
    ret->name = xstrdup(name);
    return 0;
}

static int cmp_begin(const void *a, const void *b)
{
    const struct st_tensor *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* The tensors must tile the data section exactly. */
static int check_coverage(struct tensor_safetensors *st, struct dlc_error **err)
{
    _cleanup_free_ struct st_tensor *by_off = xcalloc(st->n ? st->n : 1, sizeof(*by_off));
    memcpy(by_off, st->tensors, st->n * sizeof(*by_off));
    qsort(by_off, st->n, sizeof(*by_off), cmp_begin);
    size_t at = 0;
    for (size_t i = 0; i < st->n; i++) {
        if (by_off[i].begin != at)
            return dlc_error_set(err, EINVAL, "%s: tensor '%s' data overlaps or leaves a gap",
                                 st->path, by_off[i].name);
        at = by_off[i].end;
    }
    if (at != st->data_len)
        return dlc_error_set(err, EINVAL, "%s: %zu bytes of data after the last tensor", st->path,
                             st->data_len - at);
    return 0;
}

static int parse_header(struct tensor_safetensors *st, const json_t *h, struct dlc_error **err)
{
    if (!json_is_object(h))
        return dlc_error_set(err, EINVAL, "%s: header is not a JSON object", st->path);
    st->tensors = xcalloc(json_object_size(h) + 1, sizeof(*st->tensors));
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)h, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            const char *mk;
            json_t *mv;
            json_object_foreach(v, mk, mv) {
                if (!json_is_string(mv))
                    return dlc_error_set(err, EINVAL, "%s: metadata '%s' is not a string", st->path,
                                         mk);
            }
            if (!json_is_object(v))
                return dlc_error_set(err, EINVAL, "%s: __metadata__ is not an object", st->path);
            st->metadata = json_incref(v);
            continue;
        }
        if (parse_entry(st, key, v, &st->tensors[st->n], err) < 0)
            return -1;
        st->n++;
    }
    return check_coverage(st, err);
}

int tensor_safetensors_open(const char *path, struct tensor_safetensors **ret,
                            struct dlc_error **err)
{
    _cleanup_(tensor_safetensors_freep) struct tensor_safetensors *st = xcalloc(1, sizeof(*st));
    st->path = xstrdup(path);
    size_t len = 0;
    if (dlc_read_file(path, ST_MAX_FILE, &st->buf, &len, err) < 0)
        return -1;
    if (len < 8)
        return dlc_error_set(err, EPROTO, "%s: truncated: no header length", path);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)(unsigned char)st->buf[i] << (8 * i);
    if (hlen > ST_MAX_HEADER)
        return dlc_error_set(err, EINVAL, "%s: header length %llu is too large", path,
                             (unsigned long long)hlen);
    if (8 + hlen > len)
        return dlc_error_set(err, EPROTO, "%s: truncated: header of %llu bytes, file has %zu", path,
                             (unsigned long long)hlen, len);
    st->data = st->buf + 8 + hlen;
    st->data_len = len - 8 - (size_t)hlen;
    json_auto_t *h = dlc_json_loadb(st->buf + 8, (size_t)hlen, path, err);
    if (h == NULL || parse_header(st, h, err) < 0)
        return -1;
    *ret = TAKE_PTR(st);
    return 0;
}

int tensor_safetensors_get(const struct tensor_safetensors *st, const char *name, float *out,
                           size_t count, struct dlc_error **err)
{
    for (size_t i = 0; i < st->n; i++) {
        if (strcmp(st->tensors[i].name, name) != 0)
            continue;
        size_t have = (st->tensors[i].end - st->tensors[i].begin) / sizeof(float);
        if (have != count)
            return dlc_error_set(err, EINVAL, "%s: tensor '%s' has %zu values, expected %zu",
                                 st->path, name, have, count);
        memcpy(out, st->data + st->tensors[i].begin, count * sizeof(float));
        return 0;
    }
    return dlc_error_set(err, ENOENT, "%s: no tensor '%s'", st->path, name);
}

const char *tensor_safetensors_meta(const struct tensor_safetensors *st, const char *key)
{
    return json_string_value(json_object_get(st->metadata, key));
}

size_t tensor_safetensors_count(const struct tensor_safetensors *st)
{
    return st->n;
}
