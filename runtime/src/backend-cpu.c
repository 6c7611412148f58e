/* backend-cpu.c: the CPU backend: host memory, OpenBLAS cblas_sgemm (with transposes, so
 * no operand is ever copied) and the vectorisable kernels of activations.c, losses.c and
 * optimizers.c. It is the reference every other backend is tested against. */
#include <cblas.h>
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "tensor-internal.h"

#define CPU_ALIGN 64

static inline float *data_of(const struct tensor *t)
{
    return (float *)t->mem + t->offset;
}

static int cpu_init(struct tensor_backend *be, struct dlc_error **err)
{
    (void)err;
    openblas_set_num_threads(be->threads);
    return 0;
}

static void cpu_describe(struct tensor_backend *be, struct dlc_strbuf *out)
{
    dlc_strbuf_appendf(out, "  device: host CPU (%d available)\n", dlc_cpu_count());
    dlc_strbuf_appendf(out, "  blas: %s\n", openblas_get_config());
    dlc_strbuf_appendf(out, "  blas core: %s\n", openblas_get_corename());
    dlc_strbuf_appendf(out, "  threads: %d\n", be->threads);
}

static bool cpu_supports(const struct tensor_backend *be, enum tensor_op op, const struct tensor *t)
{
    (void)be;
    if (!tensor_is_contiguous(t))
        return false;
    /* cblas takes int dimensions. */
    if (op == TENSOR_OP_GEMM)
        return tensor_rows(t) <= INT_MAX && tensor_cols(t) <= INT_MAX;
    return (unsigned)op < _TENSOR_OP_MAX;
}

static void *cpu_alloc(struct tensor_backend *be, size_t bytes, struct dlc_error **err)
{
    (void)be;
    size_t rounded = (bytes + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;
    void *p = aligned_alloc(CPU_ALIGN, rounded ? rounded : CPU_ALIGN);
    if (p == NULL)
        dlc_error_set(err, ENOMEM, "allocate %zu bytes: out of memory", bytes);
    else
        memset(p, 0, rounded);
    return p;
}

static void cpu_free(struct tensor_backend *be, void *mem)
{
    (void)be;
    free(mem);
}

static void *cpu_wrap(struct tensor_backend *be, float *host, size_t bytes, struct dlc_error **err)
{
    (void)be, (void)bytes, (void)err;
    return host;
}

static int cpu_upload(struct tensor_backend *be, const struct tensor *dst, const float *src,
                      struct dlc_error **err)
{
    (void)be, (void)err;
    memcpy(data_of(dst), src, (size_t)tensor_nelem(dst) * sizeof(float));
    return 0;
}

static int cpu_download(struct tensor_backend *be, const struct tensor *src, float *dst,
                        struct dlc_error **err)
{
    (void)be, (void)err;
    memcpy(dst, data_of(src), (size_t)tensor_nelem(src) * sizeof(float));
    return 0;
}

static int cpu_sync(struct tensor_backend *be, struct dlc_error **err)
{
    (void)be, (void)err;
    return 0;
}

static int cpu_gather(struct tensor_backend *be, const struct tensor *src, const int64_t *rows,
                      struct tensor *dst, struct dlc_error **err)
{
    (void)be, (void)err;
    int64_t cols = tensor_cols(dst);
    DLC_ASSERT(cols == tensor_cols(src));
    const float *s = data_of(src);
    float *d = data_of(dst);
    for (int64_t i = 0; i < tensor_rows(dst); i++)
        memcpy(d + i * cols, s + rows[i] * cols, (size_t)cols * sizeof(float));
    return 0;
}

static int cpu_gemm(struct tensor_backend *be, bool trans_a, bool trans_b, float alpha,
                    const struct tensor *a, const struct tensor *b, float beta, struct tensor *c,
                    struct dlc_error **err)
{
    (void)be, (void)err;
    int64_t m = tensor_rows(c), n = tensor_cols(c);
    int64_t k = trans_a ? tensor_rows(a) : tensor_cols(a);
    DLC_ASSERT((trans_a ? tensor_cols(a) : tensor_rows(a)) == m);
    DLC_ASSERT((trans_b ? tensor_cols(b) : tensor_rows(b)) == k);
    DLC_ASSERT((trans_b ? tensor_rows(b) : tensor_cols(b)) == n);
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, alpha, data_of(a),
                (int)tensor_cols(a), data_of(b), (int)tensor_cols(b), beta, data_of(c), (int)n);
    return 0;
}

static int cpu_bias_act(struct tensor_backend *be, const struct tensor *x, struct tensor *y,
                        const struct tensor *bias, enum tensor_act act, struct tensor *pre,
                        struct dlc_error **err)
{
    (void)be, (void)err;
    tensor__cpu_bias_act(data_of(x), data_of(y), bias ? data_of(bias) : NULL,
                         pre ? data_of(pre) : NULL, tensor_rows(y), tensor_cols(y), act);
    return 0;
}

static int cpu_act_backward(struct tensor_backend *be, enum tensor_act act, const struct tensor *y,
                            const struct tensor *pre, struct tensor *grad, struct dlc_error **err)
{
    (void)be, (void)err;
    tensor__cpu_act_backward(act, data_of(y), pre ? data_of(pre) : NULL, data_of(grad),
                             tensor_rows(grad), tensor_cols(grad));
    return 0;
}

TENSOR_KERNEL static int cpu_sum_rows(struct tensor_backend *be, const struct tensor *x, float beta,
                                      struct tensor *out, struct dlc_error **err)
{
    (void)be, (void)err;
    int64_t rows = tensor_rows(x), cols = tensor_cols(x);
    const float *restrict s = data_of(x);
    float *restrict o = data_of(out);
    for (int64_t j = 0; j < cols; j++)
        o[j] *= beta;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            o[j] += s[i * cols + j];
    return 0;
}

static int cpu_loss(struct tensor_backend *be, const struct tensor_loss_args *a,
                    struct dlc_error **err)
{
    (void)be, (void)err;
    tensor__cpu_loss(a, data_of(a->y), data_of(a->target), a->grad ? data_of(a->grad) : NULL,
                     data_of(a->out), tensor_rows(a->y), tensor_cols(a->y), tensor_cols(a->target));
    return 0;
}

static int cpu_dropout(struct tensor_backend *be, const struct tensor *x, struct tensor *y,
                       struct tensor *mask, float rate, uint64_t seed, uint64_t stream,
                       struct dlc_error **err)
{
    (void)be, (void)err;
    int64_t n = tensor_nelem(y);
    const float *xd = data_of(x);
    float *yd = data_of(y), *restrict md = data_of(mask);
    const float scale = 1.0f / (1.0f - rate);
    /* keep when a 24-bit uniform is >= rate */
    const uint32_t threshold = (uint32_t)((double)rate * (1 << 24));
    uint64_t key = tensor__mix64(seed, stream);
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)(tensor__mix64(key, (uint64_t)i) >> 40);
        md[i] = u >= threshold ? scale : 0.0f;
        yd[i] = xd[i] * md[i];
    }
    return 0;
}

TENSOR_KERNEL static int cpu_mul(struct tensor_backend *be, struct tensor *y,
                                 const struct tensor *m, struct dlc_error **err)
{
    (void)be, (void)err;
    int64_t n = tensor_nelem(y);
    float *restrict yd = data_of(y);
    const float *restrict md = data_of(m);
    for (int64_t i = 0; i < n; i++)
        yd[i] *= md[i];
    return 0;
}

static int cpu_sgd_step(struct tensor_backend *be, struct tensor *w, const struct tensor *g,
                        struct tensor *velocity, const struct tensor_sgd_args *a,
                        struct dlc_error **err)
{
    (void)be, (void)err;
    tensor__cpu_sgd(data_of(w), data_of(g), velocity ? data_of(velocity) : NULL,
                    (size_t)tensor_nelem(w), a);
    return 0;
}

static int cpu_adam_step(struct tensor_backend *be, struct tensor *w, const struct tensor *g,
                         struct tensor *m, struct tensor *v, const struct tensor_adam_args *a,
                         struct dlc_error **err)
{
    (void)be, (void)err;
    tensor__cpu_adam(data_of(w), data_of(g), data_of(m), data_of(v), (size_t)tensor_nelem(w), a);
    return 0;
}

const struct tensor_backend_ops tensor_backend_cpu = {
        .name = "cpu",
        .description = "host CPU, OpenBLAS sgemm",
        .init = cpu_init,
        .fini = NULL,
        .describe = cpu_describe,
        .supports = cpu_supports,
        .alloc = cpu_alloc,
        .free = cpu_free,
        .wrap = cpu_wrap,
        .unwrap = NULL, /* wrap aliases the host memory: nothing to release */
        .upload = cpu_upload,
        .download = cpu_download,
        .sync = cpu_sync,
        .gather = cpu_gather,
        .gemm = cpu_gemm,
        .bias_act = cpu_bias_act,
        .act_backward = cpu_act_backward,
        .sum_rows = cpu_sum_rows,
        .loss = cpu_loss,
        .dropout = cpu_dropout,
        .mul = cpu_mul,
        .sgd_step = cpu_sgd_step,
        .adam_step = cpu_adam_step,
};
