/* bench_gpu.c: `make bench-gpu` (bench/gpu/run.sh runs it). Two measurements, each on the
 * OpenCL device beside the CPU backend (OpenBLAS) of the same build:
 *
 *   bench_gpu gemm [--sizes 256,512,...] [--budget S]
 *       square SGEMM C = A B with the operands resident on the device (no transfers timed),
 *       best of several runs after a warm-up (which pays for kernel compilation). A size is
 *       skipped when the previous one suggests it would take more than S seconds (pocl, a
 *       CPU device, is two orders of magnitude slower than a GPU).
 *   bench_gpu train [--rows N] [--epochs N] [--batch N]
 *       bench-runtime's workload: the MLP 784-256-128-10 (ReLU, softmax, sparse categorical
 *       cross-entropy, Adam, batch 128) on synthetic data, seconds per epoch.
 *
 * Lines starting with "GEMM " and "TRAIN " are for run.sh. */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "tensor.h"
#include "../synthetic.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, struct dlc_error *err)
{
    fprintf(stderr, "bench_gpu: %s: %s\n", what, err ? err->msg : "failed");
    exit(1);
}

static struct tensor_backend *open_backend(const char *name)
{
    struct dlc_error *err = NULL;
    struct tensor_backend *be = NULL;
    if (tensor_backend_open(name, 0, &be, &err) < 0)
        die(name, err);
    return be;
}

/* ---- gemm ---------------------------------------------------------------------------- */

struct gemm_run {
    struct tensor_backend *be;
    struct tensor a, b, c;
};

static void gemm_setup(struct gemm_run *r, int n, const float *host)
{
    struct dlc_error *err = NULL;
    struct tensor *t[3] = {&r->a, &r->b, &r->c};
    for (int i = 0; i < 3; i++) {
        void *mem = r->be->ops->alloc(r->be, (size_t)n * (size_t)n * sizeof(float), &err);
        if (mem == NULL)
            die("alloc", err);
        *t[i] = tensor_2d(mem, 0, n, n);
        if (r->be->ops->upload(r->be, t[i], host, &err) < 0)
            die("upload", err);
    }
}

static void gemm_teardown(struct gemm_run *r)
{
    r->be->ops->free(r->be, r->a.mem);
    r->be->ops->free(r->be, r->b.mem);
    r->be->ops->free(r->be, r->c.mem);
}

/* Seconds of one GEMM (synchronised). */
static double gemm_once(struct gemm_run *r)
{
    struct dlc_error *err = NULL;
    double t0 = now();
    if (r->be->ops->gemm(r->be, false, false, 1.0f, &r->a, &r->b, 0.0f, &r->c, &err) < 0 ||
        r->be->ops->sync(r->be, &err) < 0)
        die("gemm", err);
    return now() - t0;
}

/* Best GFLOP/s over runs that fill about budget/4 seconds (at least 2 runs). */
static double gemm_gflops(struct tensor_backend *be, int n, const float *host, double budget,
                          double *ret_first)
{
    struct gemm_run r = {.be = be};
    gemm_setup(&r, n, host);
    double first = gemm_once(&r), best = INFINITY, spent = 0;
    for (int i = 0; i < 2 || (spent < budget / 4 && i < 20); i++) {
        double t = gemm_once(&r);
        spent += t;
        best = fmin(best, t);
    }
    gemm_teardown(&r);
    *ret_first = first;
    return 2.0 * n * (double)n * n / best * 1e-9;
}

static int parse_sizes(const char *s, int *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        size_t len = strcspn(s, ",");
        _cleanup_free_ char *item = xstrndup(s, len);
        struct dlc_error *err = NULL;
        if (dlc_parse_int(item, "--sizes", 1, 16384, &out[n++], &err) < 0)
            die("--sizes", err);
        s += len + (s[len] == ',');
    }
    return n;
}

static int cmd_gemm(int argc, char **argv)
{
    int sizes[16] = {256, 512, 1024, 2048, 4096}, n_sizes = 5;
    double budget = 30;
    for (int i = 1; i + 1 < argc; i += 2) {
        struct dlc_error *err = NULL;
        if (strcmp(argv[i], "--sizes") == 0)
            n_sizes = parse_sizes(argv[i + 1], sizes, 16);
        else if (strcmp(argv[i], "--budget") != 0 ||
                 dlc_parse_double(argv[i + 1], "--budget", &budget, &err) < 0)
            die("usage: bench_gpu gemm [--sizes 256,512,...] [--budget SECONDS]", err);
    }
    struct tensor_backend *ocl = open_backend("opencl"), *cpu = open_backend("cpu");
    printf("%6s  %14s  %14s  %s\n", "n", "opencl GFLOP/s", "openblas GFLOP/s", "");
    double prev = 0;
    int prev_n = 0;
    for (int i = 0; i < n_sizes; i++) {
        int n = sizes[i];
        /* Both the first (compiling) and the timed runs scale with n^3 from the last size. */
        double estimate = prev_n ? prev * pow((double)n / prev_n, 3) * 4 : 0;
        if (estimate > budget) {
            printf("%6d  %14s  %14s  skipped: about %.0f s on this device (--budget %.0f)\n", n,
                   "-", "-", estimate, budget);
            printf("GEMM n=%d opencl=skipped\n", n);
            continue;
        }
        float *host = malloc((size_t)n * (size_t)n * sizeof(float));
        for (size_t j = 0; j < (size_t)n * (size_t)n; j++)
            host[j] = (float)(j % 17) * 0.01f - 0.08f;
        double first = 0, first_cpu = 0;
        double g = gemm_gflops(ocl, n, host, budget, &first);
        double b = gemm_gflops(cpu, n, host, budget, &first_cpu);
        free(host);
        prev = 2.0 * n * (double)n * n / (g * 1e9), prev_n = n;
        printf("%6d  %14.1f  %14.1f  (first opencl call %.2f s)\n", n, g, b, first);
        printf("GEMM n=%d opencl=%.2f openblas=%.2f\n", n, g, b);
        fflush(stdout);
    }
    _cleanup_strbuf_ struct dlc_strbuf sb = DLC_STRBUF_INIT;
    ocl->ops->describe(ocl, &sb);
    printf("opencl backend:\n%s", dlc_strbuf_str(&sb));
    tensor_backend_close(ocl);
    tensor_backend_close(cpu);
    return 0;
}

/* ---- training ------------------------------------------------------------------------ */

struct train_opts {
    int64_t rows, features, classes, batch, epochs;
};

static struct tensor_model *build_model(int64_t features)
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
    if (tensor_model_from_json(j, &m, &err) < 0 || tensor_model_build(m, features, 42, &err) < 0)
        die("model", err);
    return m;
}

/* Seconds per epoch (mean over epochs) and the last epoch's loss. */
static double train_on(const char *backend, const struct train_opts *o,
                       const struct tensor_array *x, const struct tensor_array *y, double *ret_loss,
                       double *ret_gflops)
{
    struct dlc_error *err = NULL;
    struct tensor_backend *be = open_backend(backend);
    struct tensor_model *m = build_model(o->features);
    struct tensor_trainer *tr = NULL;
    struct tensor_train_config cfg = {.batch_size = o->batch, .seed = 1, .shuffle = true};
    if (tensor_trainer_new(be, m, x, y, &cfg, &tr, &err) < 0)
        die("trainer", err);
    double total = 0;
    for (int e = 0; e < o->epochs; e++) {
        struct tensor_metrics s;
        double t0 = now();
        if (tensor_trainer_run_epoch(tr, NULL, NULL, NULL, &s, &err) != 1)
            die("epoch", err);
        double t = now() - t0;
        total += t;
        *ret_loss = s.loss;
        printf("%-8s epoch %d: %.3f s (loss %.5f, accuracy %.4f)\n", backend, e + 1, t, s.loss,
               s.values[0]);
        fflush(stdout);
    }
    double per_epoch = total / (double)o->epochs;
    *ret_gflops = tensor_trainer_flops(tr, o->rows) / per_epoch * 1e-9;
    tensor_trainer_free(tr);
    tensor_model_free(m);
    tensor_backend_close(be);
    return per_epoch;
}

static int cmd_train(int argc, char **argv)
{
    struct train_opts o = {60000, 784, 10, 128, 2};
    for (int i = 1; i + 1 < argc; i += 2) {
        struct dlc_error *err = NULL;
        int64_t *dst = strcmp(argv[i], "--rows") == 0     ? &o.rows
                       : strcmp(argv[i], "--epochs") == 0 ? &o.epochs
                       : strcmp(argv[i], "--batch") == 0  ? &o.batch
                                                          : NULL;
        if (dst == NULL || dlc_parse_i64(argv[i + 1], argv[i], dst, &err) < 0 || *dst <= 0)
            die("usage: bench_gpu train [--rows N] [--epochs N] [--batch N]", err);
    }
    struct tensor_array x = {0}, y = {0};
    synthetic_make_data(o.rows, o.features, o.classes, &x, &y);
    printf("MLP 784-256-128-10, %lld rows, batch %lld, adam, %lld epochs\n", (long long)o.rows,
           (long long)o.batch, (long long)o.epochs);
    double loss_ocl = 0, loss_cpu = 0, gf_ocl = 0, gf_cpu = 0;
    double s_ocl = train_on("opencl", &o, &x, &y, &loss_ocl, &gf_ocl);
    double s_cpu = train_on("cpu", &o, &x, &y, &loss_cpu, &gf_cpu);
    printf("TRAIN backend=opencl s_per_epoch=%.3f gflops=%.2f loss=%.6f\n", s_ocl, gf_ocl,
           loss_ocl);
    printf("TRAIN backend=cpu s_per_epoch=%.3f gflops=%.2f loss=%.6f\n", s_cpu, gf_cpu, loss_cpu);
    tensor_array_release(&x);
    tensor_array_release(&y);
    return 0;
}

int main(int argc, char **argv)
{
    dlc_log_set_progname("bench_gpu");
    if (argc >= 2 && strcmp(argv[1], "gemm") == 0)
        return cmd_gemm(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "train") == 0)
        return cmd_train(argc - 1, argv + 1);
    fprintf(stderr, "usage: bench_gpu gemm|train [options]\n");
    return 2;
}
