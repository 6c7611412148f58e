/* backend.c: the compiled-in backends and choosing one by name or device kind. A build
 * with TENSOR_WITH_OPENCL adds tensor_backend_opencl (backend-opencl.c) to the list; the
 * CPU backend is always there as the reference. Nothing falls back silently: "gpu" fails
 * when no GPU backend works, and "auto" says which one it took. */
#include <errno.h>
#include <string.h>

#include "tensor-internal.h"

#ifdef TENSOR_WITH_OPENCL
extern const struct tensor_backend_ops tensor_backend_opencl;
/* What "gpu" and "auto" open: the OpenCL backend limited to GPU/accelerator devices. */
extern const struct tensor_backend_ops tensor__backend_opencl_gpu;
#endif

static const struct tensor_backend_ops *const backends[] = {
#ifdef TENSOR_WITH_OPENCL
        &tensor_backend_opencl,
#endif
        &tensor_backend_cpu,
        NULL,
};

const struct tensor_backend_ops *const *tensor_backend_list(void)
{
    return backends;
}

static const char *const op_names[_TENSOR_OP_MAX] = {
        [TENSOR_OP_GATHER] = "gather",     [TENSOR_OP_GEMM] = "gemm",
        [TENSOR_OP_BIAS_ACT] = "bias_act", [TENSOR_OP_ACT_BACKWARD] = "act_backward",
        [TENSOR_OP_SUM_ROWS] = "sum_rows", [TENSOR_OP_LOSS] = "loss",
        [TENSOR_OP_DROPOUT] = "dropout",   [TENSOR_OP_MUL] = "mul",
        [TENSOR_OP_SGD] = "sgd_step",      [TENSOR_OP_ADAM] = "adam_step",
};

const char *tensor_op_name(enum tensor_op op)
{
    return (unsigned)op < _TENSOR_OP_MAX ? op_names[op] : "?";
}

/* Up to two numbers from a small file (cgroup knobs); how many were read, 0 when the file is
 * missing or does not start with a number. */
static int read_longs(const char *root, const char *name, long *a, long *b)
{
    _cleanup_free_ char *path = dlc_path_join(root, name);
    _cleanup_free_ char *text = NULL;
    if (dlc_read_file(path, 4096, &text, NULL, NULL) < 0)
        return 0;
    int n = sscanf(text, "%ld %ld", a, b);
    return n < 0 ? 0 : n;
}

int tensor__cgroup_cpu_limit(const char *root)
{
    long quota = -1, period = 0, unused = 0;
    /* cgroup v2: "max 100000" or "150000 100000"; else v1's two files */
    if (read_longs(root, "cpu.max", &quota, &period) != 2 &&
        (read_longs(root, "cpu/cpu.cfs_quota_us", &quota, &unused) < 1 ||
         read_longs(root, "cpu/cpu.cfs_period_us", &period, &unused) < 1))
        return 0;
    if (quota <= 0 || period <= 0)
        return 0;
    long cpus = (quota + period - 1) / period;
    return cpus > 1024 ? 1024 : (int)cpus;
}

/* The CPUs we may run on, lowered by a cgroup CPU quota (docker --cpus and the like):
 * more OpenBLAS threads than the quota lets run only spin and wait for each other. */
static int default_threads(void)
{
    int n = dlc_cpu_count();
    int limit = tensor__cgroup_cpu_limit("/sys/fs/cgroup");
    return limit > 0 && limit < n ? limit : n;
}

static int open_ops(const struct tensor_backend_ops *ops, int threads, struct tensor_backend **ret,
                    struct dlc_error **err)
{
    struct tensor_backend *be = xcalloc(1, sizeof(*be));
    be->ops = ops;
    be->threads = threads > 0 ? threads : default_threads();
    if (ops->init != NULL && ops->init(be, err) < 0) {
        free(be);
        return dlc_error_wrap(err, "%s backend", ops->name);
    }
    *ret = be;
    return 0;
}

/* The first non-CPU backend that initialises. */
static int open_gpu(int threads, struct tensor_backend **ret, struct dlc_error **err)
{
    for (size_t i = 0; backends[i] != NULL; i++) {
        if (backends[i] == &tensor_backend_cpu)
            continue;
#ifdef TENSOR_WITH_OPENCL
        if (backends[i] == &tensor_backend_opencl)
            return open_ops(&tensor__backend_opencl_gpu, threads, ret, err);
#endif
        return open_ops(backends[i], threads, ret, err);
    }
    return dlc_error_set(err, ENODEV,
                         "no GPU backend: this tensor was built for CPU only (use a gpu image)");
}

int tensor_backend_open(const char *name, int threads, struct tensor_backend **ret,
                        struct dlc_error **err)
{
    if (dlc_streq(name, "gpu")) /* the stage that failed follows, e.g. "...: ICD: ..." */
        return open_gpu(threads, ret, err) < 0 ? dlc_error_wrap(err, "device gpu: no GPU") : 0;
    if (dlc_streq(name, "auto")) {
        if (backends[0] == &tensor_backend_cpu) /* a CPU-only build: nothing to choose */
            return open_ops(&tensor_backend_cpu, threads, ret, err);
        _cleanup_error_ struct dlc_error *gpu_err = NULL;
        if (open_gpu(threads, ret, &gpu_err) == 0)
            return 0;
        dlc_info("device auto: %s; using cpu", gpu_err->msg);
        return open_ops(&tensor_backend_cpu, threads, ret, err);
    }
    for (size_t i = 0; backends[i] != NULL; i++)
        if (dlc_streq(name, backends[i]->name))
            return open_ops(backends[i], threads, ret, err);
    _cleanup_strbuf_ struct dlc_strbuf names = DLC_STRBUF_INIT;
    for (size_t i = 0; backends[i] != NULL; i++)
        dlc_strbuf_appendf(&names, "%s, ", backends[i]->name);
    return dlc_error_set(err, EINVAL, "unknown device or backend '%s' (available: %sgpu, auto)",
                         name ? name : "", dlc_strbuf_str(&names));
}

void tensor_backend_close(struct tensor_backend *be)
{
    if (be == NULL)
        return;
    if (be->ops->fini != NULL)
        be->ops->fini(be);
    free(be);
}

int tensor_backend_check(const struct tensor_backend *be, enum tensor_op op, const struct tensor *t,
                         const char *what, struct dlc_error **err)
{
    if (be->ops->supports(be, op, t))
        return 0;
    return dlc_error_set(err, EINVAL,
                         "%s: the %s backend does not support %s on a %lld x %lld tensor", what,
                         be->ops->name, tensor_op_name(op), (long long)tensor_rows(t),
                         (long long)tensor_cols(t));
}

const char *tensor_device_default(void)
{
    const char *d = getenv("DLC_DEVICE");
    return d && d[0] ? d : "auto";
}
