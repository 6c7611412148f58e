/* backend-opencl.c: the OpenCL backend: device memory, transfers, and every op of struct
 * tensor_backend_ops as kernels of the .cl files in runtime/src/kernels, with the CPU backend's
 * semantics (it is tested op by op against it). Tensors live in device buffers for the
 * whole training step; only what download() is asked for (the loss and metrics) comes
 * back.
 *
 * Two instances share everything but the device they accept: tensor_backend_opencl
 * ("opencl" by name: any OpenCL device, GPUs first, so pocl works) and
 * tensor__backend_opencl_gpu (what "gpu" and "auto" open: GPU or accelerator devices
 * only, CPU-type devices too with DLC_OPENCL_ALLOW_CPU=1).
 *
 * Memory grows as tensors are allocated (nothing is reserved up front);
 * DLC_GPU_MEMORY_LIMIT (the gpu_memory_limit hyperparameter) caps the total. */
#ifdef TENSOR_WITH_OPENCL

#    include <errno.h>
#    include <limits.h>
#    include <string.h>

#    include "backend-opencl.h"

#    define ELEMENTWISE_WG 64

static const char *const kernel_names[_OCL_K_MAX] = {
        [OCL_K_GEMM_TILED] = "gemm_tiled",
        [OCL_K_GEMM_PACK] = "gemm_pack",
        [OCL_K_GEMM_DIRECT] = "gemm_direct",
        [OCL_K_BIAS_ACT] = "bias_act",
        [OCL_K_BIAS_SOFTMAX] = "bias_softmax",
        [OCL_K_ACT_BACKWARD] = "act_backward",
        [OCL_K_SOFTMAX_BACKWARD] = "softmax_backward",
        [OCL_K_DROPOUT] = "dropout",
        [OCL_K_MUL] = "mul",
        [OCL_K_GATHER] = "gather",
        [OCL_K_SUM_ROWS] = "sum_rows",
        [OCL_K_LOSS_ROWS] = "loss_rows",
        [OCL_K_LOSS_REDUCE] = "loss_reduce",
        [OCL_K_SGD] = "sgd_step",
        [OCL_K_ADAM] = "adam_step",
};

/* ---- memory -------------------------------------------------------------------------- */

static int over_limit(struct ocl_ctx *c, size_t bytes, const char *what, struct dlc_error **err)
{
    char b[32], used[32], lim[32];
    dlc_format_size(bytes, b, sizeof(b));
    dlc_format_size(c->mem_used, used, sizeof(used));
    if (bytes > c->info.max_alloc)
        return dlc_error_set(err, ENOMEM,
                             "%s: %s in one buffer is more than '%s' allows in one allocation "
                             "(%s)",
                             what, b, c->info.name,
                             dlc_format_size(c->info.max_alloc, lim, sizeof(lim)));
    if (c->mem_limit != 0 && c->mem_used + bytes > c->mem_limit)
        return dlc_error_set(err, ENOMEM,
                             "%s: allocating %s on '%s' would exceed gpu_memory_limit=%s (%s "
                             "in use); raise gpu_memory_limit or lower batch_size",
                             what, b, c->info.name, dlc_format_size(c->mem_limit, lim, sizeof(lim)),
                             used);
    if (c->mem_used + bytes > c->info.global_mem)
        return dlc_error_set(err, ENOMEM,
                             "%s: allocating %s would exceed the memory of '%s' (%s, %s in "
                             "use); lower batch_size",
                             what, b, c->info.name,
                             dlc_format_size(c->info.global_mem, lim, sizeof(lim)), used);
    return 0;
}

/* flags: CL_MEM_* plus, with host set, the pointer's contents become the buffer's. */
static struct ocl_buf *buf_create(struct ocl_ctx *c, size_t bytes, cl_mem_flags flags, void *host,
                                  const char *what, struct dlc_error **err)
{
    bytes = (bytes + 3) / 4 * 4;
    if (bytes == 0)
        bytes = 4;
    if (over_limit(c, bytes, what, err) < 0)
        return NULL;
    cl_int rc = CL_SUCCESS;
    cl_mem m = clCreateBuffer(c->context, flags, bytes, host, &rc);
    if (m == NULL) {
        char b[32];
        tensor__ocl_fail(err, rc, "%s: allocating %s on '%s'", what,
                         dlc_format_size(bytes, b, sizeof(b)), c->info.name);
        return NULL;
    }
    /* Drivers allocate lazily; touching the buffer now makes an out-of-memory show here,
     * with a name, rather than in some later kernel. */
    const cl_float zero = 0;
    if (host == NULL)
        rc = clEnqueueFillBuffer(c->queue, m, &zero, sizeof(zero), 0, bytes, 0, NULL, NULL);
    if (rc == CL_SUCCESS)
        rc = clFinish(c->queue);
    if (rc != CL_SUCCESS) {
        clReleaseMemObject(m);
        char b[32];
        tensor__ocl_fail(err, rc, "%s: allocating %s on '%s'", what,
                         dlc_format_size(bytes, b, sizeof(b)), c->info.name);
        return NULL;
    }
    struct ocl_buf *buf = xmalloc(sizeof(*buf));
    *buf = (struct ocl_buf){.mem = m, .bytes = bytes};
    c->mem_used += bytes;
    if (c->mem_used > c->mem_peak)
        c->mem_peak = c->mem_used;
    return buf;
}

struct ocl_buf *tensor__ocl_buf_new(struct ocl_ctx *c, size_t bytes, const char *what,
                                    struct dlc_error **err)
{
    return buf_create(c, bytes, CL_MEM_READ_WRITE, NULL, what, err);
}

void tensor__ocl_buf_free(struct ocl_ctx *c, struct ocl_buf *b)
{
    if (b == NULL)
        return;
    clReleaseMemObject(b->mem);
    c->mem_used -= b->bytes;
    free(b);
}

int tensor__ocl_scratch(struct ocl_ctx *c, struct ocl_buf **slot, size_t bytes, const char *what,
                        struct dlc_error **err)
{
    if (*slot != NULL && (*slot)->bytes >= bytes)
        return 0;
    tensor__ocl_buf_free(c, TAKE_PTR(*slot));
    *slot = tensor__ocl_buf_new(c, bytes, what, err);
    return *slot != NULL ? 0 : -1;
}

int tensor__ocl_launch(struct ocl_ctx *c, enum ocl_kernel k, cl_uint dims, const size_t *global,
                       const size_t *local, const struct ocl_arg *args, size_t n_args,
                       struct dlc_error **err)
{
    cl_kernel kern = c->k[k];
    for (cl_uint d = 0; d < dims; d++)
        if (global[d] == 0) /* an empty tensor: nothing to do (and OpenCL 1.2 refuses it) */
            return 0;
    for (size_t i = 0; i < n_args; i++) {
        cl_int rc =
                clSetKernelArg(kern, (cl_uint)i, args[i].size, args[i].null ? NULL : &args[i].v);
        if (rc != CL_SUCCESS)
            return tensor__ocl_fail(err, rc, "%s: argument %zu", kernel_names[k], i);
    }
    size_t g[3];
    for (cl_uint d = 0; d < dims; d++)
        g[d] = (global[d] + local[d] - 1) / local[d] * local[d];
    cl_int rc = clEnqueueNDRangeKernel(c->queue, kern, dims, NULL, g, local, 0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return tensor__ocl_fail(err, rc, "%s: enqueue on '%s'", kernel_names[k], c->info.name);
    return 0;
}

/* One work-item per element (or per row), ELEMENTWISE_WG to a work-group. */
#    define LAUNCH_1D(c, k, n, err, ...)                                                    \
        OCL_LAUNCH((c), (k), 1, (size_t[]){(size_t)(n)}, (size_t[]){ELEMENTWISE_WG}, (err), \
                   __VA_ARGS__)

/* ---- init ---------------------------------------------------------------------------- */

static void ocl_fini(struct tensor_backend *be)
{
    struct ocl_ctx *c = be->ctx;
    if (c == NULL)
        return;
    if (c->queue != NULL)
        clFinish(c->queue);
    tensor__ocl_buf_free(c, c->pack_a);
    tensor__ocl_buf_free(c, c->pack_b);
    tensor__ocl_buf_free(c, c->index);
    tensor__ocl_buf_free(c, c->loss_part);
    for (int i = 0; i < _OCL_K_MAX; i++)
        if (c->k[i] != NULL)
            clReleaseKernel(c->k[i]);
    if (c->program != NULL)
        clReleaseProgram(c->program);
    if (c->queue != NULL)
        clReleaseCommandQueue(c->queue);
    if (c->context != NULL)
        clReleaseContext(c->context);
    tensor__ocl_device_info_release(&c->info);
    free(c);
    be->ctx = NULL;
}

static int memory_limit(uint64_t *ret, struct dlc_error **err)
{
    const char *v = getenv("DLC_GPU_MEMORY_LIMIT");
    *ret = 0;
    if (v == NULL || *v == '\0')
        return 0;
    if (dlc_parse_size(v, "gpu_memory_limit (DLC_GPU_MEMORY_LIMIT)", ret, err) < 0)
        return -1;
    return 0;
}

/* The enum values of tensor.h, so the kernels cannot drift from them. */
static void enum_options(struct dlc_strbuf *o)
{
    dlc_strbuf_appendf(o, " -DACT_LINEAR=%d -DACT_RELU=%d -DACT_SIGMOID=%d -DACT_TANH=%d",
                       TENSOR_ACT_LINEAR, TENSOR_ACT_RELU, TENSOR_ACT_SIGMOID, TENSOR_ACT_TANH);
    dlc_strbuf_appendf(o, " -DACT_SOFTMAX=%d -DACT_GELU=%d", TENSOR_ACT_SOFTMAX, TENSOR_ACT_GELU);
    dlc_strbuf_appendf(o, " -DLOSS_MSE=%d -DLOSS_MAE=%d -DLOSS_BINARY_CROSSENTROPY=%d",
                       TENSOR_LOSS_MSE, TENSOR_LOSS_MAE, TENSOR_LOSS_BINARY_CROSSENTROPY);
    dlc_strbuf_appendf(o, " -DLOSS_CATEGORICAL_CROSSENTROPY=%d",
                       TENSOR_LOSS_CATEGORICAL_CROSSENTROPY);
    dlc_strbuf_appendf(o, " -DLOSS_SPARSE_CATEGORICAL_CROSSENTROPY=%d",
                       TENSOR_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY);
    dlc_strbuf_appendf(o, " -DMETRIC_BINARY_ACCURACY=%d -DMETRIC_CATEGORICAL_ACCURACY=%d",
                       TENSOR_METRIC_BINARY_ACCURACY, TENSOR_METRIC_CATEGORICAL_ACCURACY);
    dlc_strbuf_appendf(o, " -DMETRIC_SPARSE_CATEGORICAL_ACCURACY=%d -DMETRIC_MAE=%d",
                       TENSOR_METRIC_SPARSE_CATEGORICAL_ACCURACY, TENSOR_METRIC_MAE);
}

static int build_program(struct ocl_ctx *c, struct dlc_error **err)
{
    _cleanup_strbuf_ struct dlc_strbuf opts = DLC_STRBUF_INIT;
    /* DLC_OPENCL_NO_FP64=1: the build a device without doubles would have (for tests). */
    if (c->info.fp64 && !tensor__ocl_env_flag("DLC_OPENCL_NO_FP64"))
        dlc_strbuf_append(&opts, " -DTENSOR_FP64");
    if (c->info.exact_div_sqrt)
        dlc_strbuf_append(&opts, " -cl-fp32-correctly-rounded-divide-sqrt");
    enum_options(&opts);
    tensor__ocl_gemm_options(&c->gemm, &opts);
    if (tensor__ocl_build(c, tensor__ocl_program_src, tensor__ocl_program_len,
                          dlc_strbuf_str(&opts), &c->program, err) < 0)
        return -1;
    for (int i = 0; i < _OCL_K_MAX; i++) {
        cl_int rc = CL_SUCCESS;
        c->k[i] = clCreateKernel(c->program, kernel_names[i], &rc);
        if (c->k[i] == NULL)
            return tensor__ocl_fail(err, rc, "kernel build: clCreateKernel %s", kernel_names[i]);
    }
    return tensor__ocl_gemm_prepare(c, err);
}

static int init_device(struct tensor_backend *be, bool gpu_only, struct dlc_error **err)
{
    uint64_t limit = 0;
    if (memory_limit(&limit, err) < 0 || tensor__ocl_selftest(gpu_only, err) < 0)
        return -1;
    struct ocl_ctx *c = xcalloc(1, sizeof(*c));
    be->ctx = c;
    c->mem_limit = limit;
    if (tensor__ocl_choose(gpu_only, &c->platform, &c->device, &c->info, err) < 0 ||
        tensor__ocl_gemm_params(&c->info, &c->gemm, err) < 0 ||
        tensor__ocl_open_context(c, err) < 0 || build_program(c, err) < 0) {
        ocl_fini(be);
        return -1;
    }
    char mem[32];
    dlc_info("opencl: using device %d.%d '%s' (%s, %s, driver %s, %u compute units, %s)",
             c->info.platform_index, c->info.device_index, c->info.name,
             c->info.type & CL_DEVICE_TYPE_GPU   ? "GPU"
             : c->info.type & CL_DEVICE_TYPE_CPU ? "CPU"
                                                 : "accelerator",
             c->info.platform_name, c->info.driver, c->info.compute_units,
             dlc_format_size(c->info.global_mem, mem, sizeof(mem)));
    return 0;
}

static int ocl_init_any(struct tensor_backend *be, struct dlc_error **err)
{
    return init_device(be, false, err);
}

static int ocl_init_gpu(struct tensor_backend *be, struct dlc_error **err)
{
    return init_device(be, true, err);
}

static void ocl_describe(struct tensor_backend *be, struct dlc_strbuf *out)
{
    struct ocl_ctx *c = be->ctx;
    if (c != NULL) {
        const struct ocl_gemm_params *g = &c->gemm;
        char used[32], peak[32], lim[32];
        dlc_strbuf_appendf(out, "  device: %d.%d %s on %s, driver %s\n", c->info.platform_index,
                           c->info.device_index, c->info.name, c->info.platform_name,
                           c->info.driver);
        dlc_strbuf_appendf(out, "  memory: %s in use, %s peak, limit %s\n",
                           dlc_format_size(c->mem_used, used, sizeof(used)),
                           dlc_format_size(c->mem_peak, peak, sizeof(peak)),
                           c->mem_limit ? dlc_format_size(c->mem_limit, lim, sizeof(lim))
                                        : "none (gpu_memory_limit unset)");
        dlc_strbuf_appendf(out,
                           "  sgemm: tiled %s MWG=%d NWG=%d KWG=%d MDIMC=%d NDIMC=%d VWM=%d "
                           "VWN=%d from %d^3; direct WGD=%d MDIMCD=%d NDIMCD=%d KWGD=%d\n",
                           c->tiled ? "on" : "off (does not fit the device)", g->mwg, g->nwg,
                           g->kwg, g->mdimc, g->ndimc, g->vwm, g->vwn, g->min_indirect, g->wgd,
                           g->mdimcd, g->ndimcd, g->kwgd);
    }
    tensor__ocl_list(out, c != NULL ? c->device : NULL);
}

static bool ocl_supports(const struct tensor_backend *be, enum tensor_op op, const struct tensor *t)
{
    (void)be;
    /* Kernels index with int inside a tensor. */
    return tensor_is_contiguous(t) && tensor_nelem(t) <= INT_MAX && (unsigned)op < _TENSOR_OP_MAX;
}

/* ---- memory ops ---------------------------------------------------------------------- */

static void *ocl_alloc(struct tensor_backend *be, size_t bytes, struct dlc_error **err)
{
    return tensor__ocl_buf_new(ocl_ctx(be), bytes, "allocate device memory", err);
}

static void ocl_free(struct tensor_backend *be, void *mem)
{
    tensor__ocl_buf_free(ocl_ctx(be), mem);
}

static int ocl_upload(struct tensor_backend *be, const struct tensor *dst, const float *src,
                      struct dlc_error **err)
{
    struct ocl_ctx *c = ocl_ctx(be);
    size_t n = (size_t)tensor_nelem(dst) * sizeof(float);
    if (n == 0)
        return 0;
    cl_int rc = clEnqueueWriteBuffer(c->queue, ocl_mem_of(dst), CL_TRUE,
                                     dst->offset * sizeof(float), n, src, 0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return tensor__ocl_fail(err, rc, "upload %zu bytes to '%s'", n, c->info.name);
    return 0;
}

static int ocl_download(struct tensor_backend *be, const struct tensor *src, float *dst,
                        struct dlc_error **err)
{
    struct ocl_ctx *c = ocl_ctx(be);
    size_t n = (size_t)tensor_nelem(src) * sizeof(float);
    if (n == 0)
        return 0;
    cl_int rc = clEnqueueReadBuffer(c->queue, ocl_mem_of(src), CL_TRUE, src->offset * sizeof(float),
                                    n, dst, 0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return tensor__ocl_fail(err, rc, "download %zu bytes from '%s'", n, c->info.name);
    return 0;
}

static int ocl_sync(struct tensor_backend *be, struct dlc_error **err)
{
    struct ocl_ctx *c = ocl_ctx(be);
    cl_int rc = clFinish(c->queue);
    if (rc != CL_SUCCESS)
        return tensor__ocl_fail(err, rc, "wait for '%s'", c->info.name);
    return 0;
}

/* ---- ops ----------------------------------------------------------------------------- */

static int ocl_gather(struct tensor_backend *be, const struct tensor *src, const int64_t *rows,
                      struct tensor *dst, struct dlc_error **err)
{
    struct ocl_ctx *c = ocl_ctx(be);
    int64_t n = tensor_rows(dst), cols = tensor_cols(dst), limit = tensor_rows(src);
    DLC_ASSERT(cols == tensor_cols(src));
    for (int64_t i = 0; i < n; i++)
        if (rows[i] < 0 || rows[i] >= limit)
            return dlc_error_set(err, EINVAL, "gather: row %lld is outside 0..%lld",
                                 (long long)rows[i], (long long)limit - 1);
    size_t bytes = (size_t)n * sizeof(cl_long);
    if (n == 0)
        return 0;
    if (tensor__ocl_scratch(c, &c->index, bytes, "gather indices", err) < 0)
        return -1;
    cl_int rc =
            clEnqueueWriteBuffer(c->queue, c->index->mem, CL_TRUE, 0, bytes, rows, 0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return tensor__ocl_fail(err, rc, "gather: upload indices");
    return LAUNCH_1D(c, OCL_K_GATHER, n * cols, err, OCL_TENSOR(src), OCL_MEM(c->index->mem),
                     OCL_TENSOR(dst), OCL_INT((int)(n * cols)), OCL_INT((int)cols));
}

static int ocl_bias_act(struct tensor_backend *be, const struct tensor *x, struct tensor *y,
                        const struct tensor *bias, enum tensor_act act, struct tensor *pre,
                        struct dlc_error **err)
{
    struct ocl_ctx *c = ocl_ctx(be);
    int rows = (int)tensor_rows(y), cols = (int)tensor_cols(y);
    if (act == TENSOR_ACT_SOFTMAX)
        return LAUNCH_1D(c, OCL_K_BIAS_SOFTMAX, rows, err, OCL_TENSOR(x), OCL_TENSOR(y),
                         OCL_OPT_TENSOR(bias), OCL_INT(bias != NULL), OCL_OPT_TENSOR(pre),
                         OCL_INT(pre != NULL), OCL_INT(rows), OCL_INT(cols));
    return LAUNCH_1D(c, OCL_K_BIAS_ACT, rows * cols, err, OCL_TENSOR(x), OCL_TENSOR(y),
                     OCL_OPT_TENSOR(bias), OCL_INT(bias != NULL), OCL_OPT_TENSOR(pre),
                     OCL_INT(pre != NULL), OCL_INT(rows * cols), OCL_INT(cols), OCL_INT((int)act));
}

static int ocl_act_backward(struct tensor_backend *be, enum tensor_act act, const struct tensor *y,
                            const struct tensor *pre, struct tensor *grad, struct dlc_error **err)
{
    struct ocl_ctx *c = ocl_ctx(be);
    int rows = (int)tensor_rows(grad), cols = (int)tensor_cols(grad);
    if (act == TENSOR_ACT_LINEAR)
        return 0;
    if (act == TENSOR_ACT_SOFTMAX)
        return LAUNCH_1D(c, OCL_K_SOFTMAX_BACKWARD, rows, err, OCL_TENSOR(y), OCL_TENSOR(grad),
                         OCL_INT(rows), OCL_INT(cols));
    DLC_ASSERT(act != TENSOR_ACT_GELU || pre != NULL);
    return LAUNCH_1D(c, OCL_K_ACT_BACKWARD, rows * cols, err, OCL_INT((int)act), OCL_TENSOR(y),
                     OCL_OPT_TENSOR(pre), OCL_TENSOR(grad), OCL_INT(rows * cols));
}

static int ocl_sum_rows(struct tensor_backend *be, const struct tensor *x, float beta,
                        struct tensor *out, struct dlc_error **err)
{
    struct ocl_ctx *c = ocl_ctx(be);
    int rows = (int)tensor_rows(x), cols = (int)tensor_cols(x);
    size_t global[2] = {(size_t)cols, 16}, local[2] = {16, 16}; /* SR_COLS, SR_LANES */
    return OCL_LAUNCH(c, OCL_K_SUM_ROWS, 2, global, local, err, OCL_TENSOR(x), OCL_INT(rows),
                      OCL_INT(cols), OCL_FLOAT(beta), OCL_TENSOR(out));
}

static int ocl_loss(struct tensor_backend *be, const struct tensor_loss_args *a,
                    struct dlc_error **err)
{
    struct ocl_ctx *c = ocl_ctx(be);
    int rows = (int)tensor_rows(a->y), k = (int)tensor_cols(a->y);
    int width = 1 + a->n_metrics;
    DLC_ASSERT(a->n_metrics >= 0 && a->n_metrics <= TENSOR_MAX_METRICS);
    int m[TENSOR_MAX_METRICS] = {0};
    for (int i = 0; i < a->n_metrics; i++)
        m[i] = (int)a->metrics[i];
    if (tensor__ocl_scratch(c, &c->loss_part, (size_t)rows * (size_t)width * sizeof(float),
                            "loss rows", err) < 0)
        return -1;
    /* rows == 0 still runs the reduction: out becomes zeros, as on the CPU. */
    if (rows > 0 &&
        LAUNCH_1D(c, OCL_K_LOSS_ROWS, rows, err, OCL_INT((int)a->loss), OCL_INT(a->fused),
                  OCL_INT(rows), OCL_INT(k), OCL_INT((int)tensor_cols(a->target)), OCL_TENSOR(a->y),
                  OCL_TENSOR(a->target), OCL_OPT_TENSOR(a->grad), OCL_INT(a->grad != NULL),
                  OCL_MEM(c->loss_part->mem), OCL_INT(a->n_metrics), OCL_INT(m[0]), OCL_INT(m[1]),
                  OCL_INT(m[2]), OCL_INT(m[3])) < 0)
        return -1;
    return OCL_LAUNCH(c, OCL_K_LOSS_REDUCE, 1, (size_t[]){64}, (size_t[]){64}, err,
                      OCL_MEM(c->loss_part->mem), OCL_INT(rows), OCL_INT(width),
                      OCL_TENSOR(a->out));
}

static int ocl_dropout(struct tensor_backend *be, const struct tensor *x, struct tensor *y,
                       struct tensor *mask, float rate, uint64_t seed, uint64_t stream,
                       struct dlc_error **err)
{
    struct ocl_ctx *c = ocl_ctx(be);
    int n = (int)tensor_nelem(y);
    /* The same numbers backend-cpu.c derives. */
    const float scale = 1.0f / (1.0f - rate);
    const uint32_t threshold = (uint32_t)((double)rate * (1 << 24));
    return LAUNCH_1D(c, OCL_K_DROPOUT, n, err, OCL_TENSOR(x), OCL_TENSOR(y), OCL_TENSOR(mask),
                     OCL_ULONG(tensor__mix64(seed, stream)), OCL_UINT(threshold), OCL_FLOAT(scale),
                     OCL_INT(n));
}

static int ocl_mul(struct tensor_backend *be, struct tensor *y, const struct tensor *m,
                   struct dlc_error **err)
{
    int n = (int)tensor_nelem(y);
    return LAUNCH_1D(ocl_ctx(be), OCL_K_MUL, n, err, OCL_TENSOR(y), OCL_TENSOR(m), OCL_INT(n));
}

static int ocl_sgd_step(struct tensor_backend *be, struct tensor *w, const struct tensor *g,
                        struct tensor *velocity, const struct tensor_sgd_args *a,
                        struct dlc_error **err)
{
    int n = (int)tensor_nelem(w);
    int mode = velocity == NULL ? 0 : a->nesterov ? 2 : 1; /* SGD_* in optim.cl */
    return LAUNCH_1D(ocl_ctx(be), OCL_K_SGD, n, err, OCL_TENSOR(w), OCL_TENSOR(g),
                     OCL_OPT_TENSOR(velocity), OCL_INT(mode), OCL_FLOAT(a->lr),
                     OCL_FLOAT(a->momentum), OCL_INT(n));
}

static int ocl_adam_step(struct tensor_backend *be, struct tensor *w, const struct tensor *g,
                         struct tensor *m, struct tensor *v, const struct tensor_adam_args *a,
                         struct dlc_error **err)
{
    int n = (int)tensor_nelem(w);
    return LAUNCH_1D(ocl_ctx(be), OCL_K_ADAM, n, err, OCL_TENSOR(w), OCL_TENSOR(g), OCL_TENSOR(m),
                     OCL_TENSOR(v), OCL_FLOAT(a->lr_t), OCL_FLOAT(1.0f - a->beta_1),
                     OCL_FLOAT(1.0f - a->beta_2), OCL_FLOAT(a->epsilon), OCL_INT(n));
}

/* No wrap: a device needs its own copy of the data anyway, and callers never free what wrap
 * returns (on the CPU it is their own memory), so alloc + upload it is. */
#    define OCL_OPS_COMMON                                                                      \
        .name = "opencl", .fini = ocl_fini, .describe = ocl_describe, .supports = ocl_supports, \
        .alloc = ocl_alloc, .free = ocl_free, .wrap = NULL, .upload = ocl_upload,               \
        .download = ocl_download, .sync = ocl_sync, .gather = ocl_gather,                       \
        .gemm = tensor__ocl_gemm, .bias_act = ocl_bias_act, .act_backward = ocl_act_backward,   \
        .sum_rows = ocl_sum_rows, .loss = ocl_loss, .dropout = ocl_dropout, .mul = ocl_mul,     \
        .sgd_step = ocl_sgd_step, .adam_step = ocl_adam_step

const struct tensor_backend_ops tensor_backend_opencl = {
        OCL_OPS_COMMON,
        .description = "OpenCL device (GPU first; any type, pocl included), tiled SGEMM",
        .init = ocl_init_any,
};

const struct tensor_backend_ops tensor__backend_opencl_gpu = {
        OCL_OPS_COMMON,
        .description = "OpenCL GPU or accelerator (CPU-type devices with DLC_OPENCL_ALLOW_CPU=1)",
        .init = ocl_init_gpu,
};

#endif /* TENSOR_WITH_OPENCL */
