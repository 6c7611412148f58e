/* test_opencl.c: the OpenCL backend against the CPU backend, op by op (as ggml's
 * test-backend-ops compares every backend with the CPU one), then whole training runs, the
 * memory limit and device selection. Runs on whatever OpenCL device is here: pocl on the
 * build machines (which is why device=opencl is used: pocl is a CPU-type device).
 *
 * Error bounds, stated per check as the largest allowed
 *     max_i |opencl_i - cpu_i| / max(|cpu_i|, 1)          ("relative, absolute below 1")
 * except for GEMM, whose error is measured against the size of the result:
 *     max_i |opencl_i - cpu_i| / max_i |cpu_i|             ("norm-wise")
 * because both sides round K products in different orders. Every op that involves no
 * transcendental function and no reordered sum (dropout, mul, gather, sgd, adam) must match
 * bit for bit. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "unit.h"
#include "backend-opencl.h"

/* Bounds (see the header). OpenCL allows exp 3 ulp, tanh 5 ulp, erf 16 ulp against glibc's
 * ~1 ulp, so activations differ in the last bits; GEMM accumulates K terms in another
 * order (and with FMA); losses sum rows in another order. */
#define BOUND_GEMM     1e-5
#define BOUND_ACT      4e-6
#define BOUND_SUM_ROWS 2e-6
#define BOUND_LOSS     2e-6
#define BOUND_EXACT    0.0
#define BOUND_TRAIN    1e-4

static struct tensor_backend *cpu, *ocl;

static uint64_t rng_state = 0x1234567;
static float frand(float lo, float hi)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (hi - lo) * (float)((rng_state >> 40) / (double)(1 << 24));
}

static float *randv(size_t n, float lo, float hi)
{
    float *v = xmalloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++)
        v[i] = frand(lo, hi);
    return v;
}

/* The same rows x cols data on both backends, at element offset off of a larger buffer (so
 * offsets are exercised too). */
struct pair {
    struct tensor c, g;
};

static struct tensor on(struct tensor_backend *be, int64_t rows, int64_t cols, size_t off,
                        const float *host)
{
    struct dlc_error *err = NULL;
    void *mem = be->ops->alloc(be, (off + (size_t)(rows * cols)) * sizeof(float), &err);
    if (mem == NULL)
        fail_msg("alloc: %s", err->msg);
    struct tensor t = tensor_2d(mem, off, rows, cols);
    if (host != NULL && be->ops->upload(be, &t, host, &err) < 0)
        fail_msg("upload: %s", err->msg);
    return t;
}

static struct pair pair_new(int64_t rows, int64_t cols, size_t off, const float *host)
{
    return (struct pair){on(cpu, rows, cols, off, host), on(ocl, rows, cols, off, host)};
}

static void pair_free(struct pair *p)
{
    cpu->ops->free(cpu, p->c.mem);
    ocl->ops->free(ocl, p->g.mem);
}

static float *fetch(struct tensor_backend *be, const struct tensor *t)
{
    struct dlc_error *err = NULL;
    float *v = xmalloc((size_t)(tensor_nelem(t) ? tensor_nelem(t) : 1) * sizeof(float));
    if (be->ops->download(be, t, v, &err) < 0)
        fail_msg("download: %s", err->msg);
    return v;
}

/* The error of the OpenCL result against the CPU one (see the header); norm-wise or not. */
static double pair_error(const struct pair *p, bool normwise)
{
    _cleanup_free_ float *c = fetch(cpu, &p->c), *g = fetch(ocl, &p->g);
    size_t n = (size_t)tensor_nelem(&p->c);
    double scale = 0, worst = 0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(c[i]));
    for (size_t i = 0; i < n; i++) {
        if (isnan(c[i]) != isnan(g[i]))
            return INFINITY;
        double d = fabs((double)g[i] - c[i]);
        double e = d / (normwise ? fmax(scale, 1e-30) : fmax(fabs(c[i]), 1.0));
        worst = fmax(worst, e);
    }
    return worst;
}

static void check(const struct pair *p, bool normwise, double bound, const char *what)
{
    double e = pair_error(p, normwise);
    if (e > bound)
        fail_msg("%s: opencl differs from cpu by %.3g (bound %.1g)", what, e, bound);
}

#define RUN(be, call)                                                  \
    do {                                                               \
        struct dlc_error *err_ = NULL;                                 \
        if ((call) < 0)                                                \
            fail_msg("%s: %s: %s", (be)->ops->name, #call, err_->msg); \
    } while (0)
#define ERR (&err_)

static int setup(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    if (tensor_backend_open("cpu", 2, &cpu, &err) < 0 ||
        tensor_backend_open("opencl", 0, &ocl, &err) < 0) {
        fprintf(stderr, "test_opencl: %s\n", err->msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tensor_backend_close(ocl);
    tensor_backend_close(cpu);
    return 0;
}

/* ---- gemm ---------------------------------------------------------------------------- */

static void gemm_case(bool ta, bool tb, int m, int n, int k, float alpha, float beta)
{
    _cleanup_free_ float *a = randv((size_t)m * k, -1, 1), *b = randv((size_t)k * n, -1, 1);
    _cleanup_free_ float *c0 = randv((size_t)m * n, -1, 1);
    if (beta == 0) /* BLAS: with beta 0, C is not read (NaN stays out) */
        for (size_t i = 0; i < (size_t)m * n; i++)
            c0[i] = NAN;
    struct pair pa = pair_new(ta ? k : m, ta ? m : k, 3, a);
    struct pair pb = pair_new(tb ? n : k, tb ? k : n, 5, b);
    struct pair pc = pair_new(m, n, 7, c0);
    RUN(cpu, cpu->ops->gemm(cpu, ta, tb, alpha, &pa.c, &pb.c, beta, &pc.c, ERR));
    RUN(ocl, ocl->ops->gemm(ocl, ta, tb, alpha, &pa.g, &pb.g, beta, &pc.g, ERR));
    char what[96];
    snprintf(what, sizeof(what), "gemm %s%s m=%d n=%d k=%d alpha=%g beta=%g", ta ? "T" : "N",
             tb ? "T" : "N", m, n, k, (double)alpha, (double)beta);
    check(&pc, true, BOUND_GEMM, what);
    pair_free(&pa), pair_free(&pb), pair_free(&pc);
}

/* Small and odd shapes take the direct kernel; the large ones the tiled kernel, with
 * packing (padding, transposes) or, when the layout already fits, without. */
static void test_opencl__gemm_matches_cpu(void **state)
{
    (void)state;
    static const int shapes[][3] = {{1, 1, 1},      {7, 5, 3},       {33, 17, 65},
                                    {1, 300, 200},  {64, 64, 512},   {128, 128, 128},
                                    {130, 257, 70}, {512, 384, 400}, {256, 10, 784}};
    for (size_t s = 0; s < DLC_ARRAY_SIZE(shapes); s++)
        for (int t = 0; t < 4; t++)
            gemm_case(t & 1, t & 2, shapes[s][0], shapes[s][1], shapes[s][2], 1.0f, 0.0f);
    gemm_case(false, true, 200, 150, 100, 0.5f, 0.25f);
    gemm_case(true, false, 9, 11, 13, -2.0f, 1.0f);
    gemm_case(false, false, 4, 4, 0, 1.0f, 0.5f); /* K = 0: C = beta * C */
}

/* The parameters GPUs get by default (and an odd set: vector width 1 and 2, non-square
 * work-groups), run here on whatever device there is, so CI covers those builds too. */
static void test_opencl__gemm_with_other_parameters(void **state)
{
    (void)state;
    static const char *const params[] = {
            "MWG=128,NWG=128,KWG=16,MDIMC=16,NDIMC=16,VWM=4,VWN=4,WGD=32,MDIMCD=16,NDIMCD=16,"
            "MIN_INDIRECT=128",
            "MWG=64,NWG=32,KWG=8,MDIMC=8,NDIMC=16,VWM=2,VWN=1,WGD=16,MDIMCD=8,NDIMCD=4,KWGD=8,"
            "MIN_INDIRECT=1",
    };
    struct tensor_backend *saved = ocl;
    for (size_t i = 0; i < DLC_ARRAY_SIZE(params); i++) {
        struct dlc_error *err = NULL;
        setenv("DLC_OPENCL_GEMM", params[i], 1);
        int r = tensor_backend_open("opencl", 0, &ocl, &err);
        unsetenv("DLC_OPENCL_GEMM");
        if (r < 0)
            fail_msg("%s: %s", params[i], err->msg);
        for (int t = 0; t < 4; t++) {
            gemm_case(t & 1, t & 2, 7, 5, 3, 1.0f, 0.0f);
            gemm_case(t & 1, t & 2, 130, 257, 70, 1.0f, 0.0f);
            gemm_case(t & 1, t & 2, 256, 128, 64, 0.5f, 0.25f);
        }
        tensor_backend_close(ocl);
        ocl = saved;
    }
}

/* ---- activations --------------------------------------------------------------------- */

static void bias_act_case(enum tensor_act act, bool bias, bool pre, bool in_place)
{
    const int rows = 37, cols = act == TENSOR_ACT_SOFTMAX ? 10 : 29;
    _cleanup_free_ float *x = randv((size_t)rows * cols, -4, 4), *bv = randv((size_t)cols, -1, 1);
    struct pair px = pair_new(rows, cols, 1, x), pb = pair_new(1, cols, 2, bv);
    struct pair py = in_place ? px : pair_new(rows, cols, 0, NULL);
    struct pair pp = pair_new(rows, cols, 0, NULL);
    RUN(cpu,
        cpu->ops->bias_act(cpu, &px.c, &py.c, bias ? &pb.c : NULL, act, pre ? &pp.c : NULL, ERR));
    RUN(ocl,
        ocl->ops->bias_act(ocl, &px.g, &py.g, bias ? &pb.g : NULL, act, pre ? &pp.g : NULL, ERR));
    char what[96];
    snprintf(what, sizeof(what), "bias_act %s bias=%d pre=%d in_place=%d", tensor_act_name(act),
             bias, pre, in_place);
    check(&py, false, BOUND_ACT, what);
    if (pre)
        check(&pp, false, BOUND_EXACT, what);
    if (!in_place)
        pair_free(&py);
    pair_free(&px), pair_free(&pb), pair_free(&pp);
}

static void test_opencl__bias_act_matches_cpu(void **state)
{
    (void)state;
    for (int a = 0; a < _TENSOR_ACT_MAX; a++)
        for (int v = 0; v < 8; v++)
            bias_act_case((enum tensor_act)a, v & 1, v & 2, v & 4);
}

static void test_opencl__act_backward_matches_cpu(void **state)
{
    (void)state;
    for (int a = 0; a < _TENSOR_ACT_MAX; a++) {
        enum tensor_act act = (enum tensor_act)a;
        const int rows = 23, cols = 17;
        _cleanup_free_ float *x = randv((size_t)rows * cols, -3, 3);
        _cleanup_free_ float *g = randv((size_t)rows * cols, -1, 1);
        struct pair px = pair_new(rows, cols, 0, x), py = pair_new(rows, cols, 0, NULL);
        struct pair pg = pair_new(rows, cols, 4, g);
        /* y and pre from the CPU forward, uploaded to both, so only backward is compared */
        RUN(cpu, cpu->ops->bias_act(cpu, &px.c, &py.c, NULL, act, NULL, ERR));
        _cleanup_free_ float *y = fetch(cpu, &py.c);
        RUN(ocl, ocl->ops->upload(ocl, &py.g, y, ERR));
        RUN(cpu, cpu->ops->act_backward(cpu, act, &py.c, &px.c, &pg.c, ERR));
        RUN(ocl, ocl->ops->act_backward(ocl, act, &py.g, &px.g, &pg.g, ERR));
        char what[64];
        snprintf(what, sizeof(what), "act_backward %s", tensor_act_name(act));
        check(&pg, false, BOUND_ACT, what);
        pair_free(&px), pair_free(&py), pair_free(&pg);
    }
}

/* ---- reductions and losses ----------------------------------------------------------- */

static void test_opencl__sum_rows_matches_cpu(void **state)
{
    (void)state;
    static const int shapes[][2] = {{1, 1}, {37, 19}, {1000, 3}, {128, 300}};
    for (size_t s = 0; s < DLC_ARRAY_SIZE(shapes); s++) {
        for (int b = 0; b < 2; b++) {
            int rows = shapes[s][0], cols = shapes[s][1];
            _cleanup_free_ float *x = randv((size_t)rows * cols, -1, 1);
            _cleanup_free_ float *o = randv((size_t)cols, -1, 1);
            struct pair px = pair_new(rows, cols, 3, x), po = pair_new(1, cols, 1, o);
            RUN(cpu, cpu->ops->sum_rows(cpu, &px.c, (float)b, &po.c, ERR));
            RUN(ocl, ocl->ops->sum_rows(ocl, &px.g, (float)b, &po.g, ERR));
            check(&po, false, BOUND_SUM_ROWS * sqrt(rows), "sum_rows");
            pair_free(&px), pair_free(&po);
        }
    }
}

/* Outputs like the layer before each loss produces: probabilities, one-hot, labels. */
static void loss_inputs(enum tensor_loss l, int rows, int k, float *y, float *t)
{
    for (int r = 0; r < rows; r++) {
        float *yr = y + (size_t)r * k, sum = 0;
        for (int j = 0; j < k; j++)
            sum += yr[j] = frand(0.01f, 1);
        int cls = (int)frand(0, (float)k - 0.01f);
        for (int j = 0; j < k; j++) {
            if (l == TENSOR_LOSS_CATEGORICAL_CROSSENTROPY ||
                l == TENSOR_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY)
                yr[j] /= sum;
            if (l == TENSOR_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY)
                t[r] = (float)cls;
            else if (l == TENSOR_LOSS_CATEGORICAL_CROSSENTROPY)
                t[(size_t)r * k + j] = j == cls;
            else if (l == TENSOR_LOSS_BINARY_CROSSENTROPY)
                t[(size_t)r * k + j] = frand(0, 1) > 0.5f;
            else
                t[(size_t)r * k + j] = frand(-1, 1);
        }
    }
}

static void loss_case(enum tensor_loss l, bool fused, bool grad, int rows, int k)
{
    int tcols = l == TENSOR_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY ? 1 : k;
    _cleanup_free_ float *y = xmalloc(sizeof(float) * (size_t)rows * k);
    _cleanup_free_ float *t = xmalloc(sizeof(float) * (size_t)rows * tcols);
    loss_inputs(l, rows, k, y, t);
    struct pair py = pair_new(rows, k, 1, y), pt = pair_new(rows, tcols, 2, t);
    struct pair pg = pair_new(rows, k, 3, NULL), po = pair_new(1, 1 + 3, 5, NULL);
    struct tensor_loss_args a = {.loss = l, .fused = fused, .n_metrics = 3};
    a.metrics[0] = tensor_metric_resolve(TENSOR_METRIC_ACCURACY, l, k);
    a.metrics[1] = TENSOR_METRIC_MAE;
    a.metrics[2] = k > 1 ? TENSOR_METRIC_CATEGORICAL_ACCURACY : TENSOR_METRIC_BINARY_ACCURACY;
    if (l == TENSOR_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY)
        a.metrics[1] = a.metrics[2] = TENSOR_METRIC_SPARSE_CATEGORICAL_ACCURACY;
    a.y = &py.c, a.target = &pt.c, a.grad = grad ? &pg.c : NULL, a.out = &po.c;
    RUN(cpu, cpu->ops->loss(cpu, &a, ERR));
    a.y = &py.g, a.target = &pt.g, a.grad = grad ? &pg.g : NULL, a.out = &po.g;
    RUN(ocl, ocl->ops->loss(ocl, &a, ERR));
    char what[96];
    snprintf(what, sizeof(what), "loss %s fused=%d rows=%d k=%d", tensor_loss_name(l), fused, rows,
             k);
    check(&po, false, BOUND_LOSS, what);
    if (grad)
        check(&pg, false, BOUND_LOSS, what);
    pair_free(&py), pair_free(&pt), pair_free(&pg), pair_free(&po);
}

static void test_opencl__losses_and_metrics_match_cpu(void **state)
{
    (void)state;
    for (int l = 0; l < _TENSOR_LOSS_MAX; l++) {
        bool can_fuse = l == TENSOR_LOSS_BINARY_CROSSENTROPY ||
                        l == TENSOR_LOSS_CATEGORICAL_CROSSENTROPY ||
                        l == TENSOR_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY;
        for (int v = 0; v < 4; v++) {
            if ((v & 1) && !can_fuse)
                continue;
            loss_case((enum tensor_loss)l, v & 1, v & 2, 100, 7);
            loss_case((enum tensor_loss)l, v & 1, v & 2, 1, 1);
        }
        loss_case((enum tensor_loss)l, false, true, 0, 3); /* no rows: zeros */
    }
}

/* What a device without fp64 runs: the losses in float (same bound: the per-row values are
 * rounded to float on both sides anyway, only the sums differ). */
static void test_opencl__losses_without_fp64_match_cpu(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    struct tensor_backend *fp64 = ocl, *fp32 = NULL;
    setenv("DLC_OPENCL_NO_FP64", "1", 1);
    int r = tensor_backend_open("opencl", 0, &fp32, &err);
    unsetenv("DLC_OPENCL_NO_FP64");
    if (r < 0)
        fail_msg("%s", err->msg);
    ocl = fp32;
    for (int l = 0; l < _TENSOR_LOSS_MAX; l++)
        for (int v = 0; v < 4; v++)
            loss_case((enum tensor_loss)l, (v & 1) && l != TENSOR_LOSS_MSE && l != TENSOR_LOSS_MAE,
                      v & 2, 100, 7);
    ocl = fp64;
    tensor_backend_close(fp32);
}

/* ---- bit-exact ops ------------------------------------------------------------------- */

static void test_opencl__dropout_and_mul_are_bit_exact(void **state)
{
    (void)state;
    const int rows = 64, cols = 33;
    _cleanup_free_ float *x = randv((size_t)rows * cols, -2, 2);
    for (int in_place = 0; in_place < 2; in_place++) {
        struct pair px = pair_new(rows, cols, 1, x), pm = pair_new(rows, cols, 2, NULL);
        struct pair py = in_place ? px : pair_new(rows, cols, 0, NULL);
        RUN(cpu, cpu->ops->dropout(cpu, &px.c, &py.c, &pm.c, 0.3f, 42, 7, ERR));
        RUN(ocl, ocl->ops->dropout(ocl, &px.g, &py.g, &pm.g, 0.3f, 42, 7, ERR));
        check(&pm, false, BOUND_EXACT, "dropout mask");
        check(&py, false, BOUND_EXACT, "dropout output");
        RUN(cpu, cpu->ops->mul(cpu, &py.c, &pm.c, ERR));
        RUN(ocl, ocl->ops->mul(ocl, &py.g, &pm.g, ERR));
        check(&py, false, BOUND_EXACT, "mul");
        if (!in_place)
            pair_free(&py);
        pair_free(&px), pair_free(&pm);
    }
}

static void test_opencl__gather_is_exact_and_checks_rows(void **state)
{
    (void)state;
    const int rows = 50, cols = 13;
    _cleanup_free_ float *x = randv((size_t)rows * cols, -1, 1);
    int64_t idx[20];
    for (int i = 0; i < 20; i++)
        idx[i] = (i * 7 + 3) % rows;
    struct pair px = pair_new(rows, cols, 4, x), pd = pair_new(20, cols, 6, NULL);
    RUN(cpu, cpu->ops->gather(cpu, &px.c, idx, &pd.c, ERR));
    RUN(ocl, ocl->ops->gather(ocl, &px.g, idx, &pd.g, ERR));
    check(&pd, false, BOUND_EXACT, "gather");
    idx[5] = rows;
    struct dlc_error *err = NULL;
    assert_dlc_error(ocl->ops->gather(ocl, &px.g, idx, &pd.g, &err), &err, EINVAL,
                     "gather: row 50 is outside 0..49");
    pair_free(&px), pair_free(&pd);
}

static void test_opencl__optimizer_steps_are_bit_exact(void **state)
{
    (void)state;
    const int n = 1000;
    _cleanup_free_ float *w = randv(n, -1, 1), *g = randv(n, -1, 1), *m = randv(n, -0.1f, 0.1f);
    _cleanup_free_ float *v = randv(n, 0, 0.01f);
    for (int mode = 0; mode < 3; mode++) {
        struct pair pw = pair_new(1, n, 1, w), pg = pair_new(1, n, 2, g);
        struct pair pv = pair_new(1, n, 3, m);
        struct tensor_sgd_args a = {.lr = 0.01f, .momentum = 0.9f, .nesterov = mode == 2};
        for (int step = 0; step < 3; step++) {
            RUN(cpu, cpu->ops->sgd_step(cpu, &pw.c, &pg.c, mode ? &pv.c : NULL, &a, ERR));
            RUN(ocl, ocl->ops->sgd_step(ocl, &pw.g, &pg.g, mode ? &pv.g : NULL, &a, ERR));
        }
        check(&pw, false, BOUND_EXACT, "sgd weights");
        check(&pv, false, BOUND_EXACT, "sgd velocity");
        pair_free(&pw), pair_free(&pg), pair_free(&pv);
    }
    struct pair pw = pair_new(1, n, 1, w), pg = pair_new(1, n, 2, g);
    struct pair pm = pair_new(1, n, 3, m), pv = pair_new(1, n, 4, v);
    struct tensor_adam_args a = {
            .lr_t = 0.001f, .beta_1 = 0.9f, .beta_2 = 0.999f, .epsilon = 1e-7f};
    for (int step = 0; step < 3; step++) {
        RUN(cpu, cpu->ops->adam_step(cpu, &pw.c, &pg.c, &pm.c, &pv.c, &a, ERR));
        RUN(ocl, ocl->ops->adam_step(ocl, &pw.g, &pg.g, &pm.g, &pv.g, &a, ERR));
    }
    /* exact when the device divides and takes square roots correctly rounded */
    double bound = ocl_ctx(ocl)->info.exact_div_sqrt ? BOUND_EXACT : 1e-6;
    check(&pw, false, bound, "adam weights");
    check(&pm, false, BOUND_EXACT, "adam m");
    check(&pv, false, BOUND_EXACT, "adam v");
    pair_free(&pw), pair_free(&pg), pair_free(&pm), pair_free(&pv);
}

/* ---- training ------------------------------------------------------------------------ */

static struct tensor_model *model(const char *hp_json, int64_t inputs, int64_t label_width,
                                  double max_label)
{
    struct dlc_error *err = NULL;
    json_auto_t *j = json_loads(hp_json, 0, NULL);
    assert_non_null(j);
    _cleanup_(tensor_hparams_freep) struct tensor_hparams *hp = NULL;
    struct tensor_model *m = NULL;
    if (tensor_hparams_from_json(j, &hp, &err) < 0 ||
        tensor_model_from_hparams(hp, label_width, max_label, &m, &err) < 0 ||
        tensor_model_build(m, inputs, 7, &err) < 0)
        fail_msg("model: %s", err->msg);
    return m;
}

enum labels { SPARSE, REGRESSION, ONE_HOT };

/* Inputs, and labels for one of three kinds of problem from a linear score. */
static void make_data(int64_t rows, int64_t inputs, enum labels kind, struct tensor_array *x,
                      struct tensor_array *y)
{
    struct dlc_error *err = NULL;
    int64_t width = kind == SPARSE ? 1 : kind == REGRESSION ? 2 : 3;
    assert_int_equal(tensor_array_alloc(x, rows, inputs, &err), 0);
    assert_int_equal(tensor_array_alloc(y, rows, width, &err), 0);
    for (int64_t r = 0; r < rows; r++) {
        float s = 0, *yr = y->data + r * width;
        for (int64_t c = 0; c < inputs; c++)
            s += (x->data[r * inputs + c] = frand(-1, 1)) * (float)(c % 3 - 1);
        int cls = s > 0.5f ? 2 : s > -0.5f ? 1 : 0;
        if (kind == SPARSE)
            yr[0] = (float)cls;
        else if (kind == REGRESSION)
            yr[0] = s, yr[1] = -0.5f * s;
        else
            yr[0] = cls == 0, yr[1] = cls == 1, yr[2] = cls == 2;
    }
}

/* Trains the same model on the same data on both backends: every epoch's loss and metrics
 * and the final weights must agree. */
static void train_both(const char *hp_json, int64_t rows, int64_t inputs, enum labels kind,
                       int64_t batch, int epochs)
{
    struct tensor_array x = {0}, y = {0};
    struct dlc_error *err = NULL;
    make_data(rows, inputs, kind, &x, &y);
    double max_label = kind == SPARSE ? 2 : 1;
    struct tensor_model *m[2] = {model(hp_json, inputs, y.cols, max_label),
                                 model(hp_json, inputs, y.cols, max_label)};
    struct tensor_backend *be[2] = {cpu, ocl};
    struct tensor_trainer *tr[2] = {NULL, NULL};
    struct tensor_train_config cfg = {.batch_size = batch, .seed = 11, .shuffle = true};
    for (int i = 0; i < 2; i++)
        if (tensor_trainer_new(be[i], m[i], &x, &y, &cfg, &tr[i], &err) < 0)
            fail_msg("trainer on %s: %s", be[i]->ops->name, err->msg);
    for (int e = 0; e < epochs; e++) {
        struct tensor_metrics s[2];
        for (int i = 0; i < 2; i++)
            if (tensor_trainer_run_epoch(tr[i], NULL, NULL, NULL, &s[i], &err) != 1)
                fail_msg("epoch %d on %s: %s", e, be[i]->ops->name, err ? err->msg : "stopped");
        double d = fabs(s[0].loss - s[1].loss) / fmax(fabs(s[0].loss), 1);
        if (d > BOUND_TRAIN)
            fail_msg("epoch %d: loss %.8g on cpu, %.8g on opencl", e, s[0].loss, s[1].loss);
        for (int k = 0; k < s[0].n_metrics; k++)
            assert_true(fabs(s[0].values[k] - s[1].values[k]) <= BOUND_TRAIN);
    }
    size_t n = tensor_trainer_param_count(tr[0]);
    _cleanup_free_ float *p0 = xmalloc(n * sizeof(float)), *p1 = xmalloc(n * sizeof(float));
    assert_int_equal(tensor_trainer_get_params(tr[0], p0, &err), 0);
    assert_int_equal(tensor_trainer_get_params(tr[1], p1, &err), 0);
    for (size_t i = 0; i < n; i++)
        if (fabs(p0[i] - p1[i]) > BOUND_TRAIN * fmax(fabs(p0[i]), 1))
            fail_msg("parameter %zu: %.8g on cpu, %.8g on opencl", i, (double)p0[i], (double)p1[i]);
    for (int i = 0; i < 2; i++)
        tensor_trainer_free(tr[i]), tensor_model_free(m[i]);
    tensor_array_release(&x), tensor_array_release(&y);
}

static void test_opencl__training_matches_cpu(void **state)
{
    (void)state;
    train_both("{\"hidden_units\": \"[32, 16]\", \"activation\": \"relu\", \"dropout\": "
               "\"0.2\", \"loss\": \"sparse_categorical_crossentropy\", \"optimizer\": "
               "\"adam\", \"learning_rate\": \"0.01\"}",
               600, 20, SPARSE, 64, 4);
    train_both("{\"hidden_units\": \"[24]\", \"activation\": \"tanh\", \"loss\": \"mse\", "
               "\"optimizer\": \"sgd\", \"momentum\": \"0.9\", \"nesterov\": \"true\", "
               "\"learning_rate\": \"0.05\", \"metrics\": \"[\\\"mae\\\"]\"}",
               301, 9, REGRESSION, 37, 3);
    train_both("{\"hidden_units\": \"[16]\", \"activation\": \"gelu\", \"loss\": "
               "\"categorical_crossentropy\"}",
               200, 6, ONE_HOT, 50, 2);
}

/* ---- memory, selection, listing ------------------------------------------------------ */

/* Zero rows (a last batch of nothing, an empty prediction) is no error anywhere. */
static void test_opencl__empty_tensors(void **state)
{
    (void)state;
    struct pair x = pair_new(0, 5, 0, NULL), y = pair_new(0, 5, 0, NULL);
    struct pair w = pair_new(5, 3, 0, NULL), o = pair_new(0, 3, 0, NULL);
    float host[1] = {0};
    int64_t idx[1] = {0};
    RUN(ocl, ocl->ops->upload(ocl, &x.g, host, ERR));
    RUN(ocl, ocl->ops->download(ocl, &x.g, host, ERR));
    struct pair src = pair_new(4, 5, 0, NULL);
    RUN(ocl, ocl->ops->gather(ocl, &src.g, idx, &y.g, ERR));
    pair_free(&src);
    for (int a = 0; a < _TENSOR_ACT_MAX; a++) {
        RUN(ocl, ocl->ops->bias_act(ocl, &x.g, &y.g, NULL, (enum tensor_act)a, NULL, ERR));
        RUN(ocl, ocl->ops->act_backward(ocl, (enum tensor_act)a, &y.g, &x.g, &y.g, ERR));
    }
    RUN(ocl, ocl->ops->gemm(ocl, false, false, 1.0f, &x.g, &w.g, 0.0f, &o.g, ERR));
    RUN(ocl, ocl->ops->dropout(ocl, &x.g, &y.g, &y.g, 0.5f, 1, 2, ERR));
    RUN(ocl, ocl->ops->sync(ocl, ERR));
    pair_free(&x), pair_free(&y), pair_free(&w), pair_free(&o);
}

static void test_opencl__memory_limit(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    struct tensor_backend *be = NULL;
    setenv("DLC_GPU_MEMORY_LIMIT", "1m", 1);
    int r = tensor_backend_open("opencl", 0, &be, &err);
    unsetenv("DLC_GPU_MEMORY_LIMIT");
    assert_int_equal(r, 0);
    void *a = be->ops->alloc(be, 512 * 1024, &err);
    assert_non_null(a);
    assert_null(be->ops->alloc(be, 768 * 1024, &err));
    assert_non_null(err);
    assert_int_equal(err->code, ENOMEM);
    if (strstr(err->msg, "would exceed gpu_memory_limit=1.0 MB (524.3 kB in use)") == NULL)
        fail_msg("%s", err->msg);
    dlc_error_free(&err);
    be->ops->free(be, a); /* freed memory counts no more */
    a = be->ops->alloc(be, 768 * 1024, &err);
    assert_non_null(a);
    be->ops->free(be, a);
    tensor_backend_close(be);

    setenv("DLC_GPU_MEMORY_LIMIT", "lots", 1);
    r = tensor_backend_open("opencl", 0, &be, &err);
    unsetenv("DLC_GPU_MEMORY_LIMIT");
    assert_dlc_error(r, &err, EINVAL,
                     "gpu_memory_limit (DLC_GPU_MEMORY_LIMIT): 'lots' is not a size");
}

static void test_opencl__gpu_policy(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    struct tensor_backend *be = NULL;
    bool cpu_type = ocl_ctx(ocl)->info.type & CL_DEVICE_TYPE_CPU;
    unsetenv("DLC_OPENCL_ALLOW_CPU");
    if (cpu_type) { /* pocl: "gpu" must refuse it, naming the stage and the way out */
        assert_dlc_error(tensor_backend_open("gpu", 0, &be, &err), &err, ENODEV,
                         "opencl backend: device: no usable OpenCL device of type GPU or "
                         "accelerator (found: '");
        assert_int_equal(tensor_backend_open("auto", 0, &be, &err), 0);
        assert_ptr_equal(be->ops, &tensor_backend_cpu);
        tensor_backend_close(be);
    }
    setenv("DLC_OPENCL_ALLOW_CPU", "1", 1);
    assert_int_equal(tensor_backend_open("gpu", 0, &be, &err), 0);
    assert_string_equal(be->ops->name, "opencl");
    tensor_backend_close(be);
    unsetenv("DLC_OPENCL_ALLOW_CPU");

    setenv("DLC_OPENCL_DEVICE", "9.9", 1);
    assert_dlc_error(tensor_backend_open("opencl", 0, &be, &err), &err, ENODEV,
                     "device: DLC_OPENCL_DEVICE=9.9: no such OpenCL device");
    setenv("DLC_OPENCL_DEVICE", "first", 1);
    assert_dlc_error(tensor_backend_open("opencl", 0, &be, &err), &err, EINVAL,
                     "DLC_OPENCL_DEVICE='first' is not <platform>.<device>");
    setenv("DLC_OPENCL_DEVICE", "0.0", 1);
    assert_int_equal(tensor_backend_open("opencl", 0, &be, &err), 0);
    tensor_backend_close(be);
    unsetenv("DLC_OPENCL_DEVICE");

    setenv("DLC_OPENCL_GEMM", "MWG=60,MDIMC=8", 1);
    assert_dlc_error(tensor_backend_open("opencl", 0, &be, &err), &err, EINVAL,
                     "DLC_OPENCL_GEMM: MWG must be a multiple of MDIMC");
    setenv("DLC_OPENCL_GEMM", "XYZ=1", 1);
    assert_dlc_error(tensor_backend_open("opencl", 0, &be, &err), &err, EINVAL,
                     "DLC_OPENCL_GEMM: 'XYZ=1' is not <parameter>=<value>");
    unsetenv("DLC_OPENCL_GEMM");
}

static void test_opencl__describe_lists_devices(void **state)
{
    (void)state;
    _cleanup_strbuf_ struct dlc_strbuf sb = DLC_STRBUF_INIT;
    ocl->ops->describe(ocl, &sb);
    const char *s = dlc_strbuf_str(&sb);
    const struct ocl_device_info *i = &ocl_ctx(ocl)->info;
    _cleanup_free_ char *dev =
            xasprintf("    device %d.%d: %s: ", i->platform_index, i->device_index, i->name);
    _cleanup_free_ char *plat =
            xasprintf("  platform %d: %s (", i->platform_index, i->platform_name);
    if (strstr(s, dev) == NULL || strstr(s, plat) == NULL || strstr(s, "[in use]") == NULL ||
        strstr(s, "compute units") == NULL || strstr(s, "  OpenCL ICD files in ") == NULL ||
        strstr(s, "  sgemm: tiled ") == NULL)
        fail_msg("describe:\n%s", s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_opencl__gemm_matches_cpu),
            cmocka_unit_test(test_opencl__gemm_with_other_parameters),
            cmocka_unit_test(test_opencl__bias_act_matches_cpu),
            cmocka_unit_test(test_opencl__act_backward_matches_cpu),
            cmocka_unit_test(test_opencl__sum_rows_matches_cpu),
            cmocka_unit_test(test_opencl__losses_and_metrics_match_cpu),
            cmocka_unit_test(test_opencl__losses_without_fp64_match_cpu),
            cmocka_unit_test(test_opencl__dropout_and_mul_are_bit_exact),
            cmocka_unit_test(test_opencl__gather_is_exact_and_checks_rows),
            cmocka_unit_test(test_opencl__optimizer_steps_are_bit_exact),
            cmocka_unit_test(test_opencl__training_matches_cpu),
            cmocka_unit_test(test_opencl__empty_tensors),
            cmocka_unit_test(test_opencl__memory_limit),
            cmocka_unit_test(test_opencl__gpu_policy),
            cmocka_unit_test(test_opencl__describe_lists_devices),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
