/* backend-opencl.h: what the files of the OpenCL backend share (backend-opencl.c: the ops
 * table, memory and elementwise ops; backend-opencl-device.c: finding a device, building
 * the program, the self-test, the device listing; backend-opencl-gemm.c: SGEMM).
 *
 * Only compiled with -DTENSOR_WITH_OPENCL (the gpu build, runtime/opencl.mk). The backend
 * keeps one in-order command queue: ops enqueue kernels and return, results reach the host
 * through download() (a blocking read) or after sync(). It is not thread-safe: one thread
 * drives a backend, as the trainer does. */
#ifndef DLC_TENSOR_BACKEND_OPENCL_H
#define DLC_TENSOR_BACKEND_OPENCL_H

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#include "tensor-internal.h"

/* The kernel sources, embedded by runtime/opencl.mk (runtime/src/kernels/embed.sh). */
extern const char tensor__ocl_program_src[];
extern const size_t tensor__ocl_program_len;
extern const char tensor__ocl_selftest_src[];
extern const size_t tensor__ocl_selftest_len;

/* "opencl" by name: any OpenCL device, GPUs first. */
extern const struct tensor_backend_ops tensor_backend_opencl;
/* What "gpu" and "auto" open: GPU or accelerator devices (CPU-type devices only with
 * DLC_OPENCL_ALLOW_CPU=1); the same ops otherwise, also named "opencl". */
extern const struct tensor_backend_ops tensor__backend_opencl_gpu;

enum ocl_kernel {
    OCL_K_GEMM_TILED,
    OCL_K_GEMM_PACK,
    OCL_K_GEMM_DIRECT,
    OCL_K_BIAS_ACT,
    OCL_K_BIAS_SOFTMAX,
    OCL_K_ACT_BACKWARD,
    OCL_K_SOFTMAX_BACKWARD,
    OCL_K_DROPOUT,
    OCL_K_MUL,
    OCL_K_GATHER,
    OCL_K_SUM_ROWS,
    OCL_K_LOSS_ROWS,
    OCL_K_LOSS_REDUCE,
    OCL_K_SGD,
    OCL_K_ADAM,
    _OCL_K_MAX
};

/* SGEMM parameters, CLBlast's names (see kernels/gemm.cl). min_indirect: products with
 * M * N * K below min_indirect^3, or with M or N below the tile, take the direct kernel. */
struct ocl_gemm_params {
    int mwg, nwg, kwg, mdimc, ndimc, vwm, vwn;
    int wgd, mdimcd, ndimcd, kwgd;
    int min_indirect;
};

/* Device memory: what tensor->mem points to for this backend. */
struct ocl_buf {
    cl_mem mem;
    size_t bytes;
};

/* What the listing and the choice need to know about one device. */
struct ocl_device_info {
    int platform_index, device_index;
    char *platform_name, *platform_version;
    char *name, *vendor, *version, *driver, *c_version;
    cl_device_type type;
    cl_ulong global_mem, max_alloc, local_mem;
    cl_uint compute_units, clock_mhz;
    size_t max_wg;
    bool available, compiler, fp64, exact_div_sqrt;
};

struct ocl_ctx {
    cl_platform_id platform;
    cl_device_id device;
    struct ocl_device_info info;
    cl_context context;
    cl_command_queue queue;
    cl_program program;
    cl_kernel k[_OCL_K_MAX];
    struct ocl_gemm_params gemm;
    bool tiled;         /* gemm_tiled runs with these parameters on this device */
    uint64_t mem_limit; /* 0: the device's memory is the limit */
    uint64_t mem_used, mem_peak;
    /* Scratch, grown on first need and kept: GEMM packing, gather indices, loss rows. */
    struct ocl_buf *pack_a, *pack_b, *index, *loss_part;
};

static inline struct ocl_ctx *ocl_ctx(const struct tensor_backend *be)
{
    return be->ctx;
}

/* ---- errors (backend-opencl-device.c) ------------------------------------------------ */

/* "CL_OUT_OF_RESOURCES" for -5, "CL error -1234" for unknown codes. */
const char *tensor__ocl_strerror(cl_int code, char *buf, size_t len);
/* Sets *err to "<what>: CL_XXX (-N)" with an errno code matching the CL error. */
int tensor__ocl_fail(struct dlc_error **err, cl_int code, const char *fmt, ...) DLC_PRINTF(3, 4);

/* ---- devices (backend-opencl-device.c) ----------------------------------------------- */

/* Which devices may be chosen: gpu_only accepts GPU and accelerator types (and CPU types
 * too when DLC_OPENCL_ALLOW_CPU=1); otherwise any type, GPUs first. DLC_OPENCL_DEVICE=P.D
 * picks platform P's device D of the listing. Errors name the stage that failed: "ICD",
 * "platform", "device" (ENODEV). */
int tensor__ocl_choose(bool gpu_only, cl_platform_id *ret_platform, cl_device_id *ret_device,
                       struct ocl_device_info *ret_info, struct dlc_error **err);
void tensor__ocl_device_info_release(struct ocl_device_info *info);
/* Context and in-order queue on the chosen device ("context" stage, EIO). */
int tensor__ocl_open_context(struct ocl_ctx *c, struct dlc_error **err);
/* Builds a program for c's device; the error carries the build log ("kernel build"). */
int tensor__ocl_build(struct ocl_ctx *c, const char *src, size_t len, const char *options,
                      cl_program *ret, struct dlc_error **err);
/* Runs the self-test kernel in a child process (so a driver that aborts cannot take this
 * process down) the first time OpenCL is used in this process, in-process afterwards.
 * "self-test" stage (EIO); errors of the child's earlier stages come back as they are. */
int tensor__ocl_selftest(bool gpu_only, struct dlc_error **err);
/* Whether the environment variable name is set to a true value ("1", "yes", ...). */
bool tensor__ocl_env_flag(const char *name);
/* Marks that this process has called into OpenCL (no self-test child may fork after). */
void tensor__ocl_mark_used(void);
/* Appends every ICD file, platform and device (name, type, memory, compute units, driver
 * version); in_use (may be NULL) is marked. */
void tensor__ocl_list(struct dlc_strbuf *out, cl_device_id in_use);

/* ---- memory (backend-opencl.c) ------------------------------------------------------- */

/* A zeroed buffer of bytes, counted against the memory limit; what names it in errors
 * (ENOMEM "gpu_memory_limit ... exceeded" or the device's limits). */
struct ocl_buf *tensor__ocl_buf_new(struct ocl_ctx *c, size_t bytes, const char *what,
                                    struct dlc_error **err);
void tensor__ocl_buf_free(struct ocl_ctx *c, struct ocl_buf *b);
/* Makes *slot at least bytes large (memory growth: replaced, never shrunk). */
int tensor__ocl_scratch(struct ocl_ctx *c, struct ocl_buf **slot, size_t bytes, const char *what,
                        struct dlc_error **err);
/* One kernel argument, held by value; a NULL buffer when null. */
struct ocl_arg {
    size_t size;
    bool null;
    union {
        cl_int i;
        cl_uint u;
        cl_ulong ul;
        cl_float f;
        cl_mem m;
    } v;
};

static inline struct ocl_arg ocl_arg_int(cl_int v)
{
    return (struct ocl_arg){.size = sizeof(v), .v.i = v};
}

static inline struct ocl_arg ocl_arg_uint(cl_uint v)
{
    return (struct ocl_arg){.size = sizeof(v), .v.u = v};
}

static inline struct ocl_arg ocl_arg_ulong(cl_ulong v)
{
    return (struct ocl_arg){.size = sizeof(v), .v.ul = v};
}

static inline struct ocl_arg ocl_arg_float(cl_float v)
{
    return (struct ocl_arg){.size = sizeof(v), .v.f = v};
}

static inline struct ocl_arg ocl_arg_mem(cl_mem v)
{
    return (struct ocl_arg){.size = sizeof(v), .v.m = v, .null = v == NULL};
}

/* A tensor's buffer and element offset (NULL and 0 for no tensor). */
static inline cl_mem ocl_mem_of(const struct tensor *t)
{
    return t != NULL ? ((const struct ocl_buf *)t->mem)->mem : NULL;
}

static inline cl_ulong ocl_offset_of(const struct tensor *t)
{
    return t != NULL ? t->offset : 0;
}

#define OCL_INT(v)   ocl_arg_int(v)
#define OCL_UINT(v)  ocl_arg_uint(v)
#define OCL_ULONG(v) ocl_arg_ulong(v)
#define OCL_FLOAT(v) ocl_arg_float(v)
#define OCL_MEM(m)   ocl_arg_mem(m)
/* A tensor is two arguments, its buffer and its offset; a NULL tensor passes a NULL buffer. */
#define OCL_TENSOR(t)     ocl_arg_mem(ocl_mem_of(t)), ocl_arg_ulong(ocl_offset_of(t))
#define OCL_OPT_TENSOR(t) OCL_TENSOR(t)

/* Sets the arguments of kernel k and enqueues it over global work-items, each dimension
 * rounded up to a multiple of local (the kernels check their bounds). */
int tensor__ocl_launch(struct ocl_ctx *c, enum ocl_kernel k, cl_uint dims, const size_t *global,
                       const size_t *local, const struct ocl_arg *args, size_t n_args,
                       struct dlc_error **err);
#define OCL_LAUNCH(c, k, dims, global, local, err, ...)                                            \
    tensor__ocl_launch((c), (k), (dims), (global), (local), (const struct ocl_arg[]){__VA_ARGS__}, \
                       sizeof((const struct ocl_arg[]){__VA_ARGS__}) / sizeof(struct ocl_arg),     \
                       (err))

/* ---- GEMM (backend-opencl-gemm.c) ---------------------------------------------------- */

/* Defaults for the device type, overridden by DLC_OPENCL_GEMM="MWG=64,NWG=64,...";
 * EINVAL names a bad or inconsistent parameter. */
int tensor__ocl_gemm_params(const struct ocl_device_info *info, struct ocl_gemm_params *ret,
                            struct dlc_error **err);
/* The -D options that pass p to gemm.cl. */
void tensor__ocl_gemm_options(const struct ocl_gemm_params *p, struct dlc_strbuf *out);
/* After the build: whether the kernels fit the device (work-group size, local memory).
 * The tiled one is left unused when it does not (with a warning); the direct one must. */
int tensor__ocl_gemm_prepare(struct ocl_ctx *c, struct dlc_error **err);
int tensor__ocl_gemm(struct tensor_backend *be, bool trans_a, bool trans_b, float alpha,
                     const struct tensor *a, const struct tensor *b, float beta, struct tensor *c,
                     struct dlc_error **err);

#endif
