/* bench_mlp.c: `make bench-runtime`. Trains the MLP 784-256-128-10 (ReLU, softmax, sparse
 * categorical cross-entropy, Adam, batch 128) on synthetic 60000 x 784 f32 data with 10
 * classes for 3 epochs, and sets the seconds per epoch against two bounds measured in the
 * same run with the same OpenBLAS and thread count:
 *   - sgemm peak: a 1024^3 sgemm, what the BLAS reaches on large square matrices;
 *   - shape bound: the same GEMMs a training step runs (forward, weight and input
 *     gradients, at batch 128), timed alone: no other work could be faster than these.
 * Prints "RESULT s_per_epoch=... gflops=..." for bench/runtime/run.sh. */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "tensor.h"
#include "../synthetic.h"

struct opts {
    int64_t rows, features, classes, batch, epochs, threads;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct gemm_shape {
    bool ta, tb;
    int m, n, k;
};

/* Best-of-reps seconds for one pass over shapes. */
static double time_gemms(const struct gemm_shape *s, size_t n, int reps)
{
    size_t max = 0;
    for (size_t i = 0; i < n; i++) {
        size_t a = (size_t)s[i].m * (size_t)s[i].k, b = (size_t)s[i].k * (size_t)s[i].n;
        size_t c = (size_t)s[i].m * (size_t)s[i].n;
        max = a > max ? a : max, max = b > max ? b : max, max = c > max ? c : max;
    }
    float *a = calloc(max, sizeof(float)), *b = calloc(max, sizeof(float));
    float *c = calloc(max, sizeof(float));
    for (size_t i = 0; i < max; i++)
        a[i] = b[i] = 0.001f * (float)(i % 1000);
    double best = INFINITY;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (size_t i = 0; i < n; i++)
            cblas_sgemm(CblasRowMajor, s[i].ta ? CblasTrans : CblasNoTrans,
                        s[i].tb ? CblasTrans : CblasNoTrans, s[i].m, s[i].n, s[i].k, 1.0f, a,
                        s[i].ta ? s[i].m : s[i].k, b, s[i].tb ? s[i].k : s[i].n, 0.0f, c, s[i].n);
        double t = now() - t0;
        best = t < best ? t : best;
    }
    free(a), free(b), free(c);
    return best;
}

static double gemm_flops(const struct gemm_shape *s, size_t n)
{
    double f = 0;
    for (size_t i = 0; i < n; i++)
        f += 2.0 * s[i].m * s[i].n * s[i].k;
    return f;
}

/* The GEMMs of one training step of 784-256-128-10 at batch B, as train.c issues them. */
static size_t step_shapes(int B, struct gemm_shape *s)
{
    const int w[] = {784, 256, 128, 10};
    size_t n = 0;
    for (int l = 0; l < 3; l++) /* forward: X(B x in) W(in x out) */
        s[n++] = (struct gemm_shape){false, false, B, w[l + 1], w[l]};
    for (int l = 2; l >= 0; l--) {
        s[n++] = (struct gemm_shape){true, false, w[l], w[l + 1], B}; /* dW = X^T dY */
        if (l > 0)
            s[n++] = (struct gemm_shape){false, true, B, w[l], w[l + 1]}; /* dX = dY W^T */
    }
    return n;
}

static struct tensor_model *build_model(const struct opts *o)
{
    static const char *json =
            "{\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
            "{\"class_name\": \"Dense\", \"config\": {\"units\": 256, \"activation\": \"relu\"}},"
            "{\"class_name\": \"Dense\", \"config\": {\"units\": 128, \"activation\": \"relu\"}},"
            "{\"class_name\": \"Dense\", \"config\": {\"units\": 10, \"activation\": "
            "\"softmax\"}}]}, \"compile\": {\"loss\": \"sparse_categorical_crossentropy\", "
            "\"optimizer\": \"adam\", \"metrics\": [\"accuracy\"]}}";
    struct dlc_error *err = NULL;
    json_auto_t *j = json_loads(json, 0, NULL);
    struct tensor_model *m = NULL;
    if (tensor_model_from_json(j, &m, &err) < 0 ||
        tensor_model_build(m, o->features, 42, &err) < 0) {
        fprintf(stderr, "bench: %s\n", err->msg);
        exit(1);
    }
    return m;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        struct dlc_error *err = NULL;
        int64_t *dst = strcmp(argv[i], "--rows") == 0      ? &o->rows
                       : strcmp(argv[i], "--epochs") == 0  ? &o->epochs
                       : strcmp(argv[i], "--threads") == 0 ? &o->threads
                       : strcmp(argv[i], "--batch") == 0   ? &o->batch
                                                           : NULL;
        if (dst == NULL || dlc_parse_i64(argv[i + 1], argv[i], dst, &err) < 0 || *dst <= 0) {
            fprintf(stderr, "usage: bench_mlp [--rows N] [--epochs N] [--threads N] [--batch N]\n");
            exit(2);
        }
    }
}

/* Returns the mean seconds per epoch; *best the fastest epoch (the machine is shared: the
 * fastest epoch is the least disturbed one). */
static double train(const struct opts *o, struct tensor_backend *be, struct tensor_model *m,
                    const struct tensor_array *x, const struct tensor_array *y, double *flops,
                    double *best)
{
    struct dlc_error *err = NULL;
    struct tensor_trainer *tr = NULL;
    struct tensor_train_config cfg = {.batch_size = o->batch, .seed = 1, .shuffle = true};
    if (tensor_trainer_new(be, m, x, y, &cfg, &tr, &err) < 0) {
        fprintf(stderr, "bench: %s\n", err->msg);
        exit(1);
    }
    double total = 0;
    *best = INFINITY;
    for (int e = 0; e < o->epochs; e++) {
        struct tensor_metrics s;
        double t0 = now();
        if (tensor_trainer_run_epoch(tr, NULL, NULL, NULL, &s, &err) < 0) {
            fprintf(stderr, "bench: %s\n", err->msg);
            exit(1);
        }
        double t = now() - t0;
        total += t;
        *best = t < *best ? t : *best;
        printf("epoch %d: %.3f s (loss %.4f, accuracy %.4f)\n", e + 1, t, s.loss, s.values[0]);
    }
    *flops = tensor_trainer_flops(tr, o->rows);
    tensor_trainer_free(tr);
    return total / (double)o->epochs;
}

int main(int argc, char **argv)
{
    struct opts o = {60000, 784, 10, 128, 3, 2};
    parse_args(argc, argv, &o);
    struct dlc_error *err = NULL;
    struct tensor_backend *be = NULL;
    if (tensor_backend_open("cpu", (int)o.threads, &be, &err) < 0) {
        fprintf(stderr, "bench: %s\n", err->msg);
        return 1;
    }
    printf("bench-runtime: synthetic %lldx%lld f32, %lld classes, MLP 784-256-128-10, batch %lld, "
           "adam, %lld epochs, %lld threads\n",
           (long long)o.rows, (long long)o.features, (long long)o.classes, (long long)o.batch,
           (long long)o.epochs, (long long)o.threads);
    printf("openblas: %s (core %s)\n", openblas_get_config(), openblas_get_corename());
    struct gemm_shape big = {false, false, 1024, 1024, 1024}, step[8];
    time_gemms(&big, 1, 2); /* warm up threads and caches */
    double peak = gemm_flops(&big, 1) / time_gemms(&big, 1, 30) / 1e9;
    size_t ns = step_shapes((int)o.batch, step);
    double step_s = time_gemms(step, ns, 200);
    double batches = ceil((double)o.rows / (double)o.batch);
    printf("sgemm peak (1024^3): %.1f GFLOP/s\n", peak);
    printf("sgemm on a training step's shapes: %.1f GFLOP/s (%.3f s of GEMMs per epoch)\n",
           gemm_flops(step, ns) / step_s / 1e9, step_s * batches);

    struct tensor_array x = {0}, y = {0};
    synthetic_make_data(o.rows, o.features, o.classes, &x, &y);
    struct tensor_model *m = build_model(&o);
    double flops = 0, best = 0;
    double mean = train(&o, be, m, &x, &y, &flops, &best);
    /* Measured again after training: the better of the two is the less disturbed one. */
    double again = gemm_flops(&big, 1) / time_gemms(&big, 1, 30) / 1e9;
    if (again > peak) {
        peak = again;
        printf("sgemm peak (1024^3), measured again: %.1f GFLOP/s\n", peak);
    }
    double gflops = flops / best / 1e9;
    printf("tensor: %.3f s/epoch (best; mean %.3f), %.1f GFLOP/s = %.0f%% of the sgemm peak, "
           "%.0f%% of the step-shape bound\n",
           best, mean, gflops, 100 * gflops / peak, 100 * (step_s * batches) / best);
    printf("RESULT s_per_epoch=%.4f gflops=%.2f\n", best, gflops);
    tensor_model_free(m);
    tensor_array_release(&x);
    tensor_array_release(&y);
    tensor_backend_close(be);
    return 0;
}
