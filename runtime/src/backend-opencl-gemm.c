/* backend-opencl-gemm.c: SGEMM on the OpenCL device: choosing between the tiled ("indirect")
 * kernel with its packing pre-pass and the direct kernel (kernels/gemm.cl), and their
 * parameters: defaults per device type, overridable at run time as CLBlast's are
 * (DLC_OPENCL_GEMM="MWG=128,NWG=128,KWG=16,MDIMC=16,NDIMC=16,VWM=4,VWN=4,MIN_INDIRECT=384"). */
#ifdef TENSOR_WITH_OPENCL

#    include <errno.h>
#    include <limits.h>
#    include <string.h>

#    include "backend-opencl.h"

#    define PACK_TILE 16

/* GPUs and accelerators: 128 x 128 tiles of C, 8 x 8 outputs per work-item (CLBlast's
 * tuned results for recent NVIDIA and AMD parts are of this shape). */
static const struct ocl_gemm_params gpu_defaults = {
        .mwg = 128,
        .nwg = 128,
        .kwg = 16,
        .mdimc = 16,
        .ndimc = 16,
        .vwm = 4,
        .vwn = 4,
        .wgd = 32,
        .mdimcd = 16,
        .ndimcd = 16,
        .kwgd = 16,
        .min_indirect = 384,
};

/* CPU devices (pocl): work-items become iterations of loops in one thread, so few and fat
 * ones do best; measured on pocl 3.1 with bench/gpu (8 x 8 work-items per group: 2 to 10
 * times slower than these). */
static const struct ocl_gemm_params cpu_defaults = {
        .mwg = 32,
        .nwg = 64,
        .kwg = 16,
        .mdimc = 2,
        .ndimc = 4,
        .vwm = 4,
        .vwn = 4,
        .wgd = 32,
        .mdimcd = 4,
        .ndimcd = 4,
        .kwgd = 16,
        .min_indirect = 256,
};

static const struct {
    const char *name;
    size_t offset;
} param_names[] = {
#    define P(n, f)                                \
        {                                          \
            n, offsetof(struct ocl_gemm_params, f) \
        }
        P("MWG", mwg),       P("NWG", nwg),       P("KWG", kwg),   P("MDIMC", mdimc),
        P("NDIMC", ndimc),   P("VWM", vwm),       P("VWN", vwn),   P("WGD", wgd),
        P("MDIMCD", mdimcd), P("NDIMCD", ndimcd), P("KWGD", kwgd), P("MIN_INDIRECT", min_indirect),
#    undef P
};

static int *param_field(struct ocl_gemm_params *p, const char *name, size_t len)
{
    for (size_t i = 0; i < DLC_ARRAY_SIZE(param_names); i++)
        if (strlen(param_names[i].name) == len && strncmp(param_names[i].name, name, len) == 0)
            return (int *)((char *)p + param_names[i].offset);
    return NULL;
}

/* "MWG=64,NWG=64": each name=value pair sets one parameter. */
static int parse_overrides(const char *s, struct ocl_gemm_params *p, struct dlc_error **err)
{
    while (*s != '\0') {
        size_t len = strcspn(s, ",");
        _cleanup_free_ char *item = xstrndup(s, len);
        char *eq = strchr(item, '=');
        int *field = eq ? param_field(p, item, (size_t)(eq - item)) : NULL;
        if (field == NULL)
            return dlc_error_set(err, EINVAL,
                                 "DLC_OPENCL_GEMM: '%s' is not <parameter>=<value> with a "
                                 "parameter of MWG NWG KWG MDIMC NDIMC VWM VWN WGD MDIMCD "
                                 "NDIMCD KWGD MIN_INDIRECT",
                                 item);
        if (dlc_parse_int(eq + 1, item, 0, 1 << 16, field, err) < 0)
            return dlc_error_wrap(err, "DLC_OPENCL_GEMM");
        s += len + (s[len] == ',');
    }
    return 0;
}

static bool vector_width_ok(int v)
{
    return v == 1 || v == 2 || v == 4 || v == 8;
}

static int check_params(const struct ocl_gemm_params *p, struct dlc_error **err)
{
    const char *bad = NULL;
    if (p->mwg <= 0 || p->nwg <= 0 || p->kwg <= 0 || p->mdimc <= 0 || p->ndimc <= 0 ||
        p->wgd <= 0 || p->mdimcd <= 0 || p->ndimcd <= 0 || p->kwgd <= 0)
        bad = "every tile size must be positive";
    else if (p->mwg % p->mdimc != 0 || p->nwg % p->ndimc != 0)
        bad = "MWG must be a multiple of MDIMC and NWG of NDIMC";
    else if (!vector_width_ok(p->vwm) || !vector_width_ok(p->vwn))
        bad = "VWM and VWN must be 1, 2, 4 or 8";
    else if (p->mwg % p->vwm != 0 || p->nwg % p->vwn != 0)
        bad = "MWG must be a multiple of VWM and NWG of VWN";
    else if (p->wgd % p->mdimcd != 0 || p->wgd % p->ndimcd != 0)
        bad = "WGD must be a multiple of MDIMCD and NDIMCD";
    if (bad != NULL)
        return dlc_error_set(err, EINVAL, "DLC_OPENCL_GEMM: %s", bad);
    return 0;
}

int tensor__ocl_gemm_params(const struct ocl_device_info *info, struct ocl_gemm_params *ret,
                            struct dlc_error **err)
{
    struct ocl_gemm_params p = info->type & CL_DEVICE_TYPE_CPU ? cpu_defaults : gpu_defaults;
    const char *env = getenv("DLC_OPENCL_GEMM");
    if (env != NULL && parse_overrides(env, &p, err) < 0)
        return -1;
    if (check_params(&p, err) < 0)
        return -1;
    *ret = p;
    return 0;
}

void tensor__ocl_gemm_options(const struct ocl_gemm_params *p, struct dlc_strbuf *out)
{
    dlc_strbuf_appendf(out, " -DMWG=%d -DNWG=%d -DKWG=%d -DMDIMC=%d -DNDIMC=%d -DVWM=%d -DVWN=%d",
                       p->mwg, p->nwg, p->kwg, p->mdimc, p->ndimc, p->vwm, p->vwn);
    dlc_strbuf_appendf(out, " -DWGD=%d -DMDIMCD=%d -DNDIMCD=%d -DKWGD=%d", p->wgd, p->mdimcd,
                       p->ndimcd, p->kwgd);
}

static bool kernel_fits(struct ocl_ctx *c, cl_kernel k, size_t threads, const char *name)
{
    size_t wg = 0;
    cl_ulong local = 0;
    if (clGetKernelWorkGroupInfo(k, c->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof(wg), &wg, NULL) !=
                CL_SUCCESS ||
        clGetKernelWorkGroupInfo(k, c->device, CL_KERNEL_LOCAL_MEM_SIZE, sizeof(local), &local,
                                 NULL) != CL_SUCCESS)
        return false;
    if (wg >= threads && local <= c->info.local_mem)
        return true;
    dlc_warn("opencl: %s needs %zu work-items and %llu bytes of local memory; '%s' allows %zu "
             "and %llu",
             name, threads, (unsigned long long)local, c->info.name, wg,
             (unsigned long long)c->info.local_mem);
    return false;
}

int tensor__ocl_gemm_prepare(struct ocl_ctx *c, struct dlc_error **err)
{
    const struct ocl_gemm_params *p = &c->gemm;
    if (!kernel_fits(c, c->k[OCL_K_GEMM_DIRECT], (size_t)p->mdimcd * (size_t)p->ndimcd,
                     "gemm_direct"))
        return dlc_error_set(err, EINVAL,
                             "kernel build: gemm_direct with WGD=%d MDIMCD=%d NDIMCD=%d does not "
                             "fit '%s'; set smaller ones in DLC_OPENCL_GEMM",
                             p->wgd, p->mdimcd, p->ndimcd, c->info.name);
    c->tiled = kernel_fits(c, c->k[OCL_K_GEMM_TILED], (size_t)p->mdimc * (size_t)p->ndimc,
                           "gemm_tiled");
    return 0;
}

static int64_t round_up(int64_t x, int64_t to)
{
    return (x + to - 1) / to * to;
}

static int gemm_direct(struct ocl_ctx *c, bool trans_a, bool trans_b, float alpha,
                       const struct tensor *a, const struct tensor *b, float beta,
                       struct tensor *ct, int m, int n, int k, struct dlc_error **err)
{
    const struct ocl_gemm_params *p = &c->gemm;
    int lda = (int)tensor_cols(a), ldb = (int)tensor_cols(b);
    size_t groups_n = (size_t)((n + p->wgd - 1) / p->wgd);
    size_t groups_m = (size_t)((m + p->wgd - 1) / p->wgd);
    size_t global[2] = {groups_n * (size_t)p->ndimcd, groups_m * (size_t)p->mdimcd};
    size_t local[2] = {(size_t)p->ndimcd, (size_t)p->mdimcd};
    return OCL_LAUNCH(c, OCL_K_GEMM_DIRECT, 2, global, local, err, OCL_INT(m), OCL_INT(n),
                      OCL_INT(k), OCL_FLOAT(alpha), OCL_FLOAT(beta), OCL_TENSOR(a),
                      OCL_INT(trans_a ? 1 : lda), OCL_INT(trans_a ? lda : 1), OCL_TENSOR(b),
                      OCL_INT(trans_b ? 1 : ldb), OCL_INT(trans_b ? ldb : 1), OCL_TENSOR(ct),
                      OCL_INT(n));
}

/* An operand in k-major layout (kp x xp): the tensor itself when it already is so, else a
 * packed copy in *slot. src(x, k) = t[x * sx + k * sk]. */
struct operand {
    cl_mem mem;
    cl_ulong offset;
};

static int pack(struct ocl_ctx *c, struct ocl_buf **slot, const struct tensor *t, int x, int k,
                int xp, int kp, int sx, int sk, struct operand *ret, struct dlc_error **err)
{
    if (sx == 1 && sk == xp && x == xp && k == kp) {
        *ret = (struct operand){ocl_mem_of(t), t->offset};
        return 0;
    }
    if (tensor__ocl_scratch(c, slot, (size_t)xp * (size_t)kp * sizeof(float), "sgemm packing",
                            err) < 0)
        return -1;
    size_t global[2] = {(size_t)xp, (size_t)kp}, local[2] = {PACK_TILE, PACK_TILE};
    if (OCL_LAUNCH(c, OCL_K_GEMM_PACK, 2, global, local, err, OCL_INT(x), OCL_INT(k), OCL_INT(xp),
                   OCL_INT(kp), OCL_TENSOR(t), OCL_INT(sx), OCL_INT(sk), OCL_MEM((*slot)->mem)) < 0)
        return -1;
    *ret = (struct operand){(*slot)->mem, 0};
    return 0;
}

static int gemm_tiled(struct ocl_ctx *c, bool trans_a, bool trans_b, float alpha,
                      const struct tensor *a, const struct tensor *b, float beta, struct tensor *ct,
                      int m, int n, int k, struct dlc_error **err)
{
    const struct ocl_gemm_params *p = &c->gemm;
    int mp = (int)round_up(m, p->mwg), np = (int)round_up(n, p->nwg);
    int kp = (int)round_up(k, p->kwg);
    int lda = (int)tensor_cols(a), ldb = (int)tensor_cols(b);
    struct operand pa, pb;
    if (pack(c, &c->pack_a, a, m, k, mp, kp, trans_a ? 1 : lda, trans_a ? lda : 1, &pa, err) < 0 ||
        pack(c, &c->pack_b, b, n, k, np, kp, trans_b ? ldb : 1, trans_b ? 1 : ldb, &pb, err) < 0)
        return -1;
    size_t global[2] = {(size_t)(np / p->nwg) * (size_t)p->ndimc,
                        (size_t)(mp / p->mwg) * (size_t)p->mdimc};
    size_t local[2] = {(size_t)p->ndimc, (size_t)p->mdimc};
    return OCL_LAUNCH(c, OCL_K_GEMM_TILED, 2, global, local, err, OCL_INT(m), OCL_INT(n),
                      OCL_INT(kp), OCL_INT(mp), OCL_INT(np), OCL_FLOAT(alpha), OCL_FLOAT(beta),
                      OCL_MEM(pa.mem), OCL_ULONG(pa.offset), OCL_MEM(pb.mem), OCL_ULONG(pb.offset),
                      OCL_TENSOR(ct), OCL_INT(n));
}

/* The tiled kernel pays for its packing only on large products; its padded operands must
 * still be indexable with int. */
static bool want_tiled(const struct ocl_ctx *c, int64_t m, int64_t n, int64_t k)
{
    const struct ocl_gemm_params *p = &c->gemm;
    if (!c->tiled || m < p->mwg || n < p->nwg || k < p->kwg)
        return false;
    double cube = (double)p->min_indirect * p->min_indirect * p->min_indirect;
    if ((double)m * (double)n * (double)k < cube)
        return false;
    int64_t kp = round_up(k, p->kwg);
    return round_up(m, p->mwg) * kp <= INT_MAX && round_up(n, p->nwg) * kp <= INT_MAX;
}

int tensor__ocl_gemm(struct tensor_backend *be, bool trans_a, bool trans_b, float alpha,
                     const struct tensor *a, const struct tensor *b, float beta, struct tensor *c,
                     struct dlc_error **err)
{
    int64_t m = tensor_rows(c), n = tensor_cols(c);
    int64_t k = trans_a ? tensor_rows(a) : tensor_cols(a);
    DLC_ASSERT((trans_a ? tensor_cols(a) : tensor_rows(a)) == m);
    DLC_ASSERT((trans_b ? tensor_cols(b) : tensor_rows(b)) == k);
    DLC_ASSERT((trans_b ? tensor_rows(b) : tensor_cols(b)) == n);
    if (m == 0 || n == 0)
        return 0;
    struct ocl_ctx *ctx = ocl_ctx(be);
    if (want_tiled(ctx, m, n, k))
        return gemm_tiled(ctx, trans_a, trans_b, alpha, a, b, beta, c, (int)m, (int)n, (int)k, err);
    return gemm_direct(ctx, trans_a, trans_b, alpha, a, b, beta, c, (int)m, (int)n, (int)k, err);
}

#endif /* TENSOR_WITH_OPENCL */
