/* test_ops.c: every backend op against a naive double-precision reference, and every op's
 * gradient against central finite differences of its own forward. Runs on every backend
 * compiled in (the CPU one here; a GPU build adds its own), as ggml's test-backend-ops. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "unit.h"
#include "../../../runtime/src/tensor-internal.h"

static struct tensor_backend *be;

static uint64_t rng_state = 12345;
static float frand(float lo, float hi)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (hi - lo) * (float)((rng_state >> 40) / (double)(1 << 24));
}

static void fill(float *v, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        v[i] = frand(lo, hi);
}

/* A rows x cols tensor on the backend, initialised from host (or zeros). */
static struct tensor dev(int64_t rows, int64_t cols, const float *host)
{
    struct dlc_error *err = NULL;
    void *mem = be->ops->alloc(be, (size_t)(rows * cols) * sizeof(float), &err);
    assert_non_null(mem);
    struct tensor t = tensor_2d(mem, 0, rows, cols);
    if (host != NULL)
        assert_int_equal(be->ops->upload(be, &t, host, &err), 0);
    return t;
}

static void get(const struct tensor *t, float *host)
{
    struct dlc_error *err = NULL;
    assert_int_equal(be->ops->download(be, t, host, &err), 0);
}

static void release(struct tensor *t)
{
    be->ops->free(be, t->mem);
}

static void assert_close(const float *got, const double *want, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++) {
        double d = fabs(got[i] - want[i]);
        if (d > tol * (1 + fabs(want[i])))
            fail_msg("element %zu: got %.7g, want %.7g (tolerance %g)", i, (double)got[i], want[i],
                     tol);
    }
}

static int setup(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    if (tensor_backend_open("cpu", 2, &be, &err) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tensor_backend_close(be);
    return 0;
}

/* ---- gemm -------------------------------------------------------------------------- */

static void gemm_case(bool ta, bool tb, int64_t m, int64_t n, int64_t k)
{
    float *a = malloc(sizeof(float) * (size_t)(m * k)),
          *b = malloc(sizeof(float) * (size_t)(k * n));
    float *c = malloc(sizeof(float) * (size_t)(m * n)),
          *got = malloc(sizeof(float) * (size_t)(m * n));
    double *want = malloc(sizeof(double) * (size_t)(m * n));
    fill(a, (size_t)(m * k), -1, 1);
    fill(b, (size_t)(k * n), -1, 1);
    fill(c, (size_t)(m * n), -1, 1);
    /* a is stored m x k (or k x m when transposed), b k x n (or n x k). */
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++)
                s += (double)(ta ? a[p * m + i] : a[i * k + p]) *
                     (tb ? b[j * k + p] : b[p * n + j]);
            want[i * n + j] = 0.5 * s + 0.25 * c[i * n + j];
        }
    struct tensor ta_ = dev(ta ? k : m, ta ? m : k, a), tb_ = dev(tb ? n : k, tb ? k : n, b);
    struct tensor tc = dev(m, n, c);
    struct dlc_error *err = NULL;
    assert_int_equal(be->ops->gemm(be, ta, tb, 0.5f, &ta_, &tb_, 0.25f, &tc, &err), 0);
    get(&tc, got);
    assert_close(got, want, (size_t)(m * n), 1e-5);
    release(&ta_), release(&tb_), release(&tc);
    free(a), free(b), free(c), free(got), free(want);
}

static void test_ops__gemm(void **state)
{
    (void)state;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            gemm_case(ta, tb, 7, 5, 3);
            gemm_case(ta, tb, 64, 33, 130);
            gemm_case(ta, tb, 1, 1, 1);
        }
}

/* ---- activations ------------------------------------------------------------------- */

static double ref_act(enum tensor_act a, double x)
{
    switch (a) {
    case TENSOR_ACT_RELU:
        return x > 0 ? x : 0;
    case TENSOR_ACT_SIGMOID:
        return 1 / (1 + exp(-x));
    case TENSOR_ACT_TANH:
        return tanh(x);
    case TENSOR_ACT_GELU:
        return 0.5 * x * (1 + erf(x / sqrt(2)));
    default:
        return x;
    }
}

static void ref_bias_act(enum tensor_act a, const float *x, const float *bias, double *y,
                         int64_t rows, int64_t cols)
{
    for (int64_t i = 0; i < rows; i++) {
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < cols; j++) {
            double v = (double)x[i * cols + j] + (bias ? bias[j] : 0);
            y[i * cols + j] = a == TENSOR_ACT_SOFTMAX ? v : ref_act(a, v);
            mx = v > mx ? v : mx;
        }
        if (a != TENSOR_ACT_SOFTMAX)
            continue;
        for (int64_t j = 0; j < cols; j++)
            sum += exp(y[i * cols + j] - mx);
        for (int64_t j = 0; j < cols; j++)
            y[i * cols + j] = exp(y[i * cols + j] - mx) / sum;
    }
}

/* Inputs kept away from 0 so relu's kink does not meet a finite difference. */
static void fill_away_from_zero(float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float f = frand(0.1f, 2.0f);
        v[i] = frand(0, 1) < 0.5f ? -f : f;
    }
}

static void test_ops__bias_act_forward(void **state)
{
    (void)state;
    enum { R = 9, C = 13 };
    float x[R * C], bias[C], got[R * C], pre[R * C];
    double want[R * C];
    for (int a = 0; a < _TENSOR_ACT_MAX; a++) {
        fill(x, R * C, -4, 4);
        fill(bias, C, -1, 1);
        ref_bias_act(a, x, bias, want, R, C);
        struct tensor tx = dev(R, C, x), tb = dev(1, C, bias), ty = dev(R, C, NULL),
                      tp = dev(R, C, NULL);
        struct dlc_error *err = NULL;
        assert_int_equal(be->ops->bias_act(be, &tx, &ty, &tb, a, &tp, &err), 0);
        get(&ty, got);
        assert_close(got, want, R * C, 1e-5);
        get(&tp, pre);
        for (int i = 0; i < R * C; i++)
            assert_float_equal(pre[i], x[i] + bias[i % C], 1e-6);
        /* in place, no bias */
        ref_bias_act(a, x, NULL, want, R, C);
        assert_int_equal(be->ops->bias_act(be, &tx, &tx, NULL, a, NULL, &err), 0);
        get(&tx, got);
        assert_close(got, want, R * C, 1e-5);
        release(&tx), release(&tb), release(&ty), release(&tp);
    }
}

/* sum(r * act(x)) for upstream gradient r, in float through the op itself. */
static double act_objective(enum tensor_act a, const float *x, const float *r, int n, int cols)
{
    float y[64];
    struct tensor tx = dev(n / cols, cols, x), ty = dev(n / cols, cols, NULL);
    struct dlc_error *err = NULL;
    assert_int_equal(be->ops->bias_act(be, &tx, &ty, NULL, a, NULL, &err), 0);
    get(&ty, y);
    release(&tx), release(&ty);
    double s = 0;
    for (int i = 0; i < n; i++)
        s += (double)r[i] * y[i];
    return s;
}

static void test_ops__act_backward_vs_finite_differences(void **state)
{
    (void)state;
    enum { R = 3, C = 5, N = R * C };
    float x[N], r[N], y[N], g[N];
    for (int a = 0; a < _TENSOR_ACT_MAX; a++) {
        fill_away_from_zero(x, N);
        fill(r, N, -1, 1);
        struct tensor tx = dev(R, C, x), ty = dev(R, C, NULL), tpre = dev(R, C, NULL),
                      tg = dev(R, C, r);
        struct dlc_error *err = NULL;
        assert_int_equal(be->ops->bias_act(be, &tx, &ty, NULL, a, &tpre, &err), 0);
        assert_int_equal(be->ops->act_backward(be, a, &ty, &tpre, &tg, &err), 0);
        get(&tg, g);
        get(&ty, y);
        for (int i = 0; i < N; i++) {
            float xp[N], xm[N];
            const float h = 1e-2f;
            memcpy(xp, x, sizeof(x)), memcpy(xm, x, sizeof(x));
            xp[i] += h, xm[i] -= h;
            double fd = (act_objective(a, xp, r, N, C) - act_objective(a, xm, r, N, C)) / (2 * h);
            if (fabs(fd - g[i]) > 2e-3 + 1e-2 * fabs(fd))
                fail_msg("%s: d/dx[%d]: analytic %.6g, finite differences %.6g", tensor_act_name(a),
                         i, (double)g[i], fd);
        }
        release(&tx), release(&ty), release(&tpre), release(&tg);
    }
}

/* ---- losses ----------------------------------------------------------------------------- */

struct loss_case {
    enum tensor_loss loss;
    enum tensor_act act; /* applied to z before the loss: LINEAR = the loss sees z itself */
    bool fused;
    int tcols; /* 1 for sparse */
};

/* Mean loss over rows of act(z) against t, through the loss op. */
static double loss_value(const struct loss_case *lc, const float *z, const float *t, int rows,
                         int cols, float *grad_out)
{
    float metrics[1 + TENSOR_MAX_METRICS];
    struct tensor tz = dev(rows, cols, z), ty = dev(rows, cols, NULL), tt = dev(rows, lc->tcols, t);
    struct tensor tg = dev(rows, cols, NULL), to = dev(1, 1 + TENSOR_MAX_METRICS, NULL);
    struct dlc_error *err = NULL;
    assert_int_equal(be->ops->bias_act(be, &tz, &ty, NULL, lc->act, NULL, &err), 0);
    struct tensor_loss_args a = {.loss = lc->loss,
                                 .fused = lc->fused,
                                 .y = &ty,
                                 .target = &tt,
                                 .grad = grad_out ? &tg : NULL,
                                 .out = &to};
    assert_int_equal(be->ops->loss(be, &a, &err), 0);
    if (grad_out != NULL) {
        get(&tg, grad_out);
        if (!lc->fused) /* chain through the activation to compare against d/dz */
            assert_int_equal(be->ops->act_backward(be, lc->act, &ty, &tz, &tg, &err), 0),
                    get(&tg, grad_out);
    }
    get(&to, metrics);
    release(&tz), release(&ty), release(&tt), release(&tg), release(&to);
    return metrics[0] / rows;
}

static void test_ops__loss_gradients_vs_finite_differences(void **state)
{
    (void)state;
    static const struct loss_case cases[] = {
            {TENSOR_LOSS_MSE, TENSOR_ACT_LINEAR, false, 4},
            {TENSOR_LOSS_MAE, TENSOR_ACT_LINEAR, false, 4},
            {TENSOR_LOSS_BINARY_CROSSENTROPY, TENSOR_ACT_SIGMOID, true, 4},
            {TENSOR_LOSS_BINARY_CROSSENTROPY, TENSOR_ACT_SIGMOID, false, 4},
            {TENSOR_LOSS_CATEGORICAL_CROSSENTROPY, TENSOR_ACT_SOFTMAX, true, 4},
            {TENSOR_LOSS_CATEGORICAL_CROSSENTROPY, TENSOR_ACT_SOFTMAX, false, 4},
            {TENSOR_LOSS_CATEGORICAL_CROSSENTROPY, TENSOR_ACT_SIGMOID, false, 4},
            {TENSOR_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, TENSOR_ACT_SOFTMAX, true, 1},
            {TENSOR_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, TENSOR_ACT_SOFTMAX, false, 1},
            {TENSOR_LOSS_MSE, TENSOR_ACT_TANH, false, 4},
    };
    enum { R = 3, C = 4, N = R * C };
    for (size_t c = 0; c < DLC_ARRAY_SIZE(cases); c++) {
        const struct loss_case *lc = &cases[c];
        float z[N], t[N], g[N];
        fill(z, N, -2, 2);
        for (int i = 0; i < R; i++) {
            int cls = (int)frand(0, C - 0.01f);
            for (int j = 0; j < C; j++)
                t[i * C + j] = lc->loss == TENSOR_LOSS_CATEGORICAL_CROSSENTROPY ? (j == cls)
                               : lc->loss == TENSOR_LOSS_BINARY_CROSSENTROPY ? (frand(0, 1) < 0.5f)
                                                                             : frand(-1, 1);
            if (lc->tcols == 1)
                t[i] = (float)cls;
        }
        loss_value(lc, z, t, R, C, g);
        for (int i = 0; i < N; i++) {
            float zp[N], zm[N];
            const float h = 1e-2f;
            memcpy(zp, z, sizeof(z)), memcpy(zm, z, sizeof(z));
            zp[i] += h, zm[i] -= h;
            double fd = (loss_value(lc, zp, t, R, C, NULL) - loss_value(lc, zm, t, R, C, NULL)) /
                        (2 * h);
            if (fabs(fd - g[i]) > 2e-3 + 2e-2 * fabs(fd))
                fail_msg("case %zu (%s, %s, fused %d): d/dz[%d]: analytic %.6g, finite "
                         "differences %.6g",
                         c, tensor_loss_name(lc->loss), tensor_act_name(lc->act), lc->fused, i,
                         (double)g[i], fd);
        }
    }
}

static void test_ops__loss_values_and_metrics(void **state)
{
    (void)state;
    /* Two rows, three classes: probabilities and one-hot targets. */
    const float y[] = {0.7f, 0.2f, 0.1f, 0.1f, 0.3f, 0.6f};
    const float onehot[] = {1, 0, 0, 0, 1, 0};
    const float sparse[] = {0, 1};
    float out[1 + TENSOR_MAX_METRICS];
    struct tensor ty = dev(2, 3, y), to = dev(1, 1 + TENSOR_MAX_METRICS, NULL);
    struct tensor th = dev(2, 3, onehot), ts = dev(2, 1, sparse);
    struct dlc_error *err = NULL;
    struct tensor_loss_args a = {
            .loss = TENSOR_LOSS_CATEGORICAL_CROSSENTROPY,
            .y = &ty,
            .target = &th,
            .out = &to,
            .n_metrics = 2,
            .metrics = {TENSOR_METRIC_CATEGORICAL_ACCURACY, TENSOR_METRIC_MAE}};
    assert_int_equal(be->ops->loss(be, &a, &err), 0);
    get(&to, out);
    assert_float_equal(out[0], -log(0.7) - log(0.3), 1e-5);
    assert_float_equal(out[1], 1.0, 1e-6); /* row 0 right, row 1 wrong */
    assert_float_equal(out[2], (0.3 + 0.2 + 0.1) / 3 + (0.1 + 0.7 + 0.6) / 3, 1e-5);
    a.loss = TENSOR_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY;
    a.target = &ts;
    a.n_metrics = 1;
    a.metrics[0] = TENSOR_METRIC_SPARSE_CATEGORICAL_ACCURACY;
    assert_int_equal(be->ops->loss(be, &a, &err), 0);
    get(&to, out);
    assert_float_equal(out[0], -log(0.7) - log(0.3), 1e-5);
    assert_float_equal(out[1], 1.0, 1e-6);
    /* a probability of 0 is clipped to Keras' epsilon, not inf */
    const float zero[] = {0, 1, 0};
    struct tensor tz = dev(1, 3, zero), t1 = dev(1, 3, onehot);
    a = (struct tensor_loss_args){
            .loss = TENSOR_LOSS_CATEGORICAL_CROSSENTROPY, .y = &tz, .target = &t1, .out = &to};
    assert_int_equal(be->ops->loss(be, &a, &err), 0);
    get(&to, out);
    assert_float_equal(out[0], -log(1e-7), 1e-3);
    /* binary accuracy thresholds at 0.5, mse is the mean over outputs */
    const float yb[] = {0.6f, 0.4f}, tb[] = {1, 1};
    struct tensor tyb = dev(1, 2, yb), ttb = dev(1, 2, tb);
    a = (struct tensor_loss_args){.loss = TENSOR_LOSS_MSE,
                                  .y = &tyb,
                                  .target = &ttb,
                                  .out = &to,
                                  .n_metrics = 1,
                                  .metrics = {TENSOR_METRIC_BINARY_ACCURACY}};
    assert_int_equal(be->ops->loss(be, &a, &err), 0);
    get(&to, out);
    assert_float_equal(out[0], (0.16 + 0.36) / 2, 1e-6);
    assert_float_equal(out[1], 0.5, 1e-6);
    release(&ty), release(&to), release(&th), release(&ts), release(&tz), release(&t1);
    release(&tyb), release(&ttb);
}

static void test_ops__metric_resolution_like_keras(void **state)
{
    (void)state;
    assert_int_equal(
            tensor_metric_resolve(TENSOR_METRIC_ACCURACY, TENSOR_LOSS_BINARY_CROSSENTROPY, 3),
            TENSOR_METRIC_BINARY_ACCURACY);
    assert_int_equal(tensor_metric_resolve(TENSOR_METRIC_ACCURACY, TENSOR_LOSS_MSE, 1),
                     TENSOR_METRIC_BINARY_ACCURACY);
    assert_int_equal(tensor_metric_resolve(TENSOR_METRIC_ACCURACY,
                                           TENSOR_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 10),
                     TENSOR_METRIC_SPARSE_CATEGORICAL_ACCURACY);
    assert_int_equal(
            tensor_metric_resolve(TENSOR_METRIC_ACCURACY, TENSOR_LOSS_CATEGORICAL_CROSSENTROPY, 10),
            TENSOR_METRIC_CATEGORICAL_ACCURACY);
    assert_int_equal(tensor_metric_resolve(TENSOR_METRIC_MAE, TENSOR_LOSS_MSE, 10),
                     TENSOR_METRIC_MAE);
}

/* ---- reductions, dropout, gather ---------------------------------------------------- */

static void test_ops__sum_rows(void **state)
{
    (void)state;
    enum { R = 37, C = 11 };
    float x[R * C], o[C], got[C];
    double want[C];
    fill(x, R * C, -1, 1);
    fill(o, C, -1, 1);
    for (int j = 0; j < C; j++) {
        want[j] = 0.5 * o[j];
        for (int i = 0; i < R; i++)
            want[j] += x[i * C + j];
    }
    struct tensor tx = dev(R, C, x), to = dev(1, C, o);
    struct dlc_error *err = NULL;
    assert_int_equal(be->ops->sum_rows(be, &tx, 0.5f, &to, &err), 0);
    get(&to, got);
    assert_close(got, want, C, 1e-5);
    release(&tx), release(&to);
}

static void test_ops__dropout_mask_and_mul(void **state)
{
    (void)state;
    enum { R = 100, C = 100, N = R * C };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    float *m = malloc(N * sizeof(float)), *m2 = malloc(N * sizeof(float));
    fill(x, N, 0.5f, 1);
    struct tensor tx = dev(R, C, x), ty = dev(R, C, NULL), tm = dev(R, C, NULL);
    struct dlc_error *err = NULL;
    assert_int_equal(be->ops->dropout(be, &tx, &ty, &tm, 0.25f, 7, 3, &err), 0);
    get(&ty, y);
    get(&tm, m);
    int kept = 0;
    for (int i = 0; i < N; i++) {
        assert_true(m[i] == 0.0f || fabsf(m[i] - 1.0f / 0.75f) < 1e-6f);
        assert_float_equal(y[i], x[i] * m[i], 1e-6);
        kept += m[i] != 0;
    }
    assert_in_range(kept, N * 0.72, N * 0.78); /* 75% kept, within ~8 sigma */
    /* same (seed, stream): same mask; another stream: another mask */
    assert_int_equal(be->ops->dropout(be, &tx, &ty, &tm, 0.25f, 7, 3, &err), 0);
    get(&tm, m2);
    assert_memory_equal(m, m2, N * sizeof(float));
    assert_int_equal(be->ops->dropout(be, &tx, &ty, &tm, 0.25f, 7, 4, &err), 0);
    get(&tm, m2);
    int differ = 0;
    for (int i = 0; i < N; i++)
        differ += m[i] != m2[i];
    assert_true(differ > 0);
    /* mul applies the mask to a gradient */
    assert_int_equal(be->ops->mul(be, &tx, &tm, &err), 0);
    get(&tx, y);
    for (int i = 0; i < N; i++)
        assert_float_equal(y[i], x[i] * m2[i], 1e-6);
    release(&tx), release(&ty), release(&tm);
    free(x), free(y), free(m), free(m2);
}

static void test_ops__gather(void **state)
{
    (void)state;
    const float src[] = {0, 1, 10, 11, 20, 21, 30, 31};
    const int64_t rows[] = {3, 0, 3};
    float got[6];
    struct tensor ts = dev(4, 2, src), td = dev(3, 2, NULL);
    struct dlc_error *err = NULL;
    assert_int_equal(be->ops->gather(be, &ts, rows, &td, &err), 0);
    get(&td, got);
    const float want[] = {30, 31, 0, 1, 30, 31};
    assert_memory_equal(got, want, sizeof(want));
    release(&ts), release(&td);
}

/* ---- optimizers ------------------------------------------------------------------------- */

static void test_ops__sgd_and_adam_match_keras_formulas(void **state)
{
    (void)state;
    enum { N = 10 };
    float w[N], g[N], s1[N], s2[N], got[N];
    double want[N];
    fill(w, N, -1, 1), fill(g, N, -1, 1), fill(s1, N, -0.1f, 0.1f), fill(s2, N, 0, 0.1f);
    struct dlc_error *err = NULL;
    for (int nesterov = 0; nesterov < 2; nesterov++) {
        struct tensor tw = dev(1, N, w), tg = dev(1, N, g), tv = dev(1, N, s1);
        struct tensor_sgd_args a = {.lr = 0.1f, .momentum = 0.9f, .nesterov = nesterov};
        assert_int_equal(be->ops->sgd_step(be, &tw, &tg, &tv, &a, &err), 0);
        get(&tw, got);
        for (int i = 0; i < N; i++) {
            double v = 0.9 * s1[i] - 0.1 * g[i];
            want[i] = nesterov ? w[i] + 0.9 * v - 0.1 * g[i] : w[i] + v;
        }
        assert_close(got, want, N, 1e-6);
        release(&tw), release(&tg), release(&tv);
    }
    struct tensor tw = dev(1, N, w), tg = dev(1, N, g), tm = dev(1, N, s1), tv = dev(1, N, s2);
    struct tensor_adam_args a = {.lr_t = 0.01f, .beta_1 = 0.9f, .beta_2 = 0.999f, .epsilon = 1e-7f};
    assert_int_equal(be->ops->adam_step(be, &tw, &tg, &tm, &tv, &a, &err), 0);
    get(&tw, got);
    for (int i = 0; i < N; i++) {
        double m = s1[i] + (g[i] - s1[i]) * 0.1, v = s2[i] + ((double)g[i] * g[i] - s2[i]) * 0.001;
        want[i] = w[i] - 0.01 * m / (sqrt(v) + 1e-7);
    }
    assert_close(got, want, N, 1e-5);
    release(&tw), release(&tg), release(&tm), release(&tv);
}

static void test_ops__backend_selection(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    struct tensor_backend *b = NULL;
    assert_int_equal(tensor_backend_open("auto", 1, &b, &err), 0);
    assert_non_null(b);
    tensor_backend_close(b);
    assert_dlc_error(tensor_backend_open("tpu", 1, &b, &err), &err, EINVAL,
                     "unknown device or backend 'tpu' (available: ");
#ifndef TENSOR_WITH_OPENCL
    assert_dlc_error(tensor_backend_open("gpu", 1, &b, &err), &err, ENODEV,
                     "no GPU backend: this tensor was built for CPU only");
#endif
    const struct tensor_backend_ops *const *list = tensor_backend_list();
    assert_non_null(list[0]);
    struct tensor strided = tensor_2d(NULL, 0, 4, 4);
    strided.nb[0] = 8;
    assert_dlc_error(tensor_backend_check(be, TENSOR_OP_GEMM, &strided, "x", &err), &err, EINVAL,
                     "x: the cpu backend does not support gemm on a 4 x 4 tensor");
}

static void write_text(const char *dir, const char *name, const char *text)
{
    struct dlc_error *err = NULL;
    _cleanup_free_ char *p = dlc_path_join(dir, name);
    _cleanup_free_ char *d = dlc_path_dirname(p);
    assert_int_equal(dlc_mkdir_p(d, 0755, &err), 0);
    assert_int_equal(dlc_write_file_atomic(p, text, strlen(text), 0644, &err), 0);
}

/* Default threads follow a container's CPU quota, v2 and v1. */
static void test_ops__cgroup_cpu_quota(void **state)
{
    (void)state;
    _cleanup_free_ char *v2 = unit_tmpdir(), *v1 = unit_tmpdir(), *none = unit_tmpdir();
    write_text(v2, "cpu.max", "150000 100000\n");
    assert_int_equal(tensor__cgroup_cpu_limit(v2), 2);
    write_text(v2, "cpu.max", "max 100000\n");
    assert_int_equal(tensor__cgroup_cpu_limit(v2), 0);
    write_text(v1, "cpu/cpu.cfs_quota_us", "100000\n");
    write_text(v1, "cpu/cpu.cfs_period_us", "100000\n");
    assert_int_equal(tensor__cgroup_cpu_limit(v1), 1);
    write_text(v1, "cpu/cpu.cfs_quota_us", "-1\n");
    assert_int_equal(tensor__cgroup_cpu_limit(v1), 0);
    assert_int_equal(tensor__cgroup_cpu_limit(none), 0);
    unit_tmpdir_free(TAKE_PTR(v2));
    unit_tmpdir_free(TAKE_PTR(v1));
    unit_tmpdir_free(TAKE_PTR(none));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_ops__gemm),
            cmocka_unit_test(test_ops__bias_act_forward),
            cmocka_unit_test(test_ops__act_backward_vs_finite_differences),
            cmocka_unit_test(test_ops__loss_gradients_vs_finite_differences),
            cmocka_unit_test(test_ops__loss_values_and_metrics),
            cmocka_unit_test(test_ops__metric_resolution_like_keras),
            cmocka_unit_test(test_ops__sum_rows),
            cmocka_unit_test(test_ops__dropout_mask_and_mul),
            cmocka_unit_test(test_ops__gather),
            cmocka_unit_test(test_ops__sgd_and_adam_match_keras_formulas),
            cmocka_unit_test(test_ops__backend_selection),
            cmocka_unit_test(test_ops__cgroup_cpu_quota),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
