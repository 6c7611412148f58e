/* tensor.c: tensor views over backend memory and host arrays. */
#include <errno.h>
#include <string.h>

#include "tensor-internal.h"

struct tensor tensor_2d(void *mem, size_t off, int64_t rows, int64_t cols)
{
    struct tensor t = {.mem = mem, .offset = off, .ndim = 2};
    t.ne[0] = rows;
    t.ne[1] = cols;
    t.nb[0] = cols;
    t.nb[1] = 1;
    return t;
}

int64_t tensor_rows(const struct tensor *t)
{
    return t->ndim > 0 ? t->ne[0] : 1;
}

int64_t tensor_cols(const struct tensor *t)
{
    int64_t n = 1;
    for (int i = 1; i < t->ndim; i++)
        n *= t->ne[i];
    return n;
}

int64_t tensor_nelem(const struct tensor *t)
{
    return tensor_rows(t) * tensor_cols(t);
}

bool tensor_is_contiguous(const struct tensor *t)
{
    int64_t want = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->ne[i] != 1 && t->nb[i] != want)
            return false;
        want *= t->ne[i];
    }
    return true;
}

struct tensor tensor_rows_view(const struct tensor *t, int64_t row0, int64_t n)
{
    DLC_ASSERT(row0 >= 0 && n >= 0 && row0 + n <= tensor_rows(t));
    struct tensor v = *t;
    v.offset += (size_t)(row0 * t->nb[0]);
    v.ne[0] = n;
    return v;
}

void tensor_array_release(struct tensor_array *a)
{
    if (a == NULL)
        return;
    if (a->owned)
        free(a->data);
    *a = (struct tensor_array){0};
}

int tensor_array_alloc(struct tensor_array *a, int64_t rows, int64_t cols, struct dlc_error **err)
{
    size_t n = 0, bytes = 0;
    if (rows < 0 || cols < 0 || !dlc_size_mul((size_t)rows, (size_t)cols, &n) ||
        n > TENSOR_MAX_ELEMENTS || !dlc_size_mul(n, sizeof(float), &bytes))
        return dlc_error_set(err, EFBIG, "%lld x %lld is too large (limit %llu elements)",
                             (long long)rows, (long long)cols,
                             (unsigned long long)TENSOR_MAX_ELEMENTS);
    float *data = malloc(bytes ? bytes : 1);
    if (data == NULL)
        return dlc_error_set(err, ENOMEM, "allocate %lld x %lld floats: out of memory",
                             (long long)rows, (long long)cols);
    *a = (struct tensor_array){.rows = rows, .cols = cols, .data = data, .ndim = 2, .owned = true};
    a->shape[0] = rows;
    a->shape[1] = cols;
    return 0;
}

struct tensor_array tensor_array_view(const struct tensor_array *a, int64_t row0, int64_t n)
{
    DLC_ASSERT(row0 >= 0 && n >= 0 && row0 + n <= a->rows);
    struct tensor_array v = *a;
    v.data = a->data + row0 * a->cols;
    v.rows = n;
    v.shape[0] = n;
    v.owned = false;
    return v;
}
