/* bench_predict.c: `make bench-predict`. What one prediction call costs when the model is
 * planned per call (tensor_predict: backend memory and weight upload every time, what
 * `tensor serve` did per batch) against a tensor_predictor planned once and reused (what
 * it does now), for the serving benchmark's model (2-16-16-2, bench-serve / the demo) and
 * the runtime benchmark's MLP (784-256-128-10), at 1 and 100 rows a call, 1 thread (the
 * batcher's call runs on one thread; OpenBLAS may use more: --threads N).
 * Prints microseconds per call (the median of 7 timed runs of --calls calls each). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tensor.h"

#define RUNS 7

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

static void die(struct dlc_error *err)
{
    fprintf(stderr, "bench-predict: %s\n", err ? err->msg : "failed");
    exit(1);
}

static struct tensor_model *build_model(const int64_t *widths, size_t n)
{
    _cleanup_strbuf_ struct dlc_strbuf sb = DLC_STRBUF_INIT;
    dlc_strbuf_appendf(&sb, "{\"class_name\": \"Sequential\", \"config\": {\"layers\": [");
    for (size_t i = 1; i < n; i++)
        dlc_strbuf_appendf(&sb,
                           "%s{\"class_name\": \"Dense\", \"config\": {\"units\": %lld, "
                           "\"activation\": \"%s\"}}",
                           i > 1 ? ", " : "", (long long)widths[i], i + 1 < n ? "relu" : "softmax");
    dlc_strbuf_appendf(&sb, "]}}");
    struct dlc_error *err = NULL;
    json_auto_t *j = dlc_json_loadb(dlc_strbuf_str(&sb), sb.len, "model", &err);
    struct tensor_model *m = NULL;
    if (j == NULL || tensor_model_from_json(j, &m, &err) < 0 ||
        tensor_model_build(m, widths[0], 42, &err) < 0)
        die(err);
    return m;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median over RUNS of the mean microseconds per call. p == NULL: tensor_predict. */
static double time_calls(struct tensor_backend *be, const struct tensor_model *m,
                         struct tensor_predictor *p, const struct tensor_array *x, int calls)
{
    struct dlc_error *err = NULL;
    double t[RUNS];
    for (int r = 0; r < RUNS; r++) {
        double t0 = now_us();
        for (int i = 0; i < calls; i++) {
            struct tensor_array y = {0};
            int rc = p ? tensor_predictor_run(p, x, &y, &err)
                       : tensor_predict(be, m, x, 1024, &y, &err);
            if (rc < 0)
                die(err);
            tensor_array_release(&y);
        }
        t[r] = (now_us() - t0) / calls;
    }
    qsort(t, RUNS, sizeof(t[0]), cmp_double);
    return t[RUNS / 2];
}

static void bench_model(struct tensor_backend *be, const char *name, const int64_t *widths,
                        size_t n, int calls)
{
    struct dlc_error *err = NULL;
    _cleanup_(tensor_model_freep) struct tensor_model *m = build_model(widths, n);
    _cleanup_(tensor_predictor_freep) struct tensor_predictor *p = NULL;
    if (tensor_predictor_new(be, m, 1024, &p, &err) < 0)
        die(err);
    for (int64_t rows = 1; rows <= 100; rows *= 100) {
        struct tensor_array x = {0};
        if (tensor_array_alloc(&x, rows, widths[0], &err) < 0)
            die(err);
        for (int64_t i = 0; i < rows * widths[0]; i++)
            x.data[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
        time_calls(be, m, p, &x, calls / 10 + 1); /* warm both paths up */
        time_calls(be, m, NULL, &x, calls / 10 + 1);
        double per_call = time_calls(be, m, NULL, &x, calls);
        double reused = time_calls(be, m, p, &x, calls);
        printf("%-15s %4lld row(s)  tensor_predict %9.2f us/call  predictor %9.2f us/call  "
               "x%.1f\n",
               name, (long long)rows, per_call, reused, per_call / reused);
        tensor_array_release(&x);
    }
}

int main(int argc, char **argv)
{
    int threads = 1, calls = 2000;
    for (int i = 1; i + 1 < argc; i += 2) {
        struct dlc_error *err = NULL;
        if (strcmp(argv[i], "--threads") == 0 &&
            dlc_parse_int(argv[i + 1], "--threads", 1, 256, &threads, &err) < 0)
            die(err);
        if (strcmp(argv[i], "--calls") == 0 &&
            dlc_parse_int(argv[i + 1], "--calls", 10, 10000000, &calls, &err) < 0)
            die(err);
    }
    struct dlc_error *err = NULL;
    struct tensor_backend *be = NULL;
    if (tensor_backend_open("cpu", threads, &be, &err) < 0)
        die(err);
    static const int64_t serve[] = {2, 16, 16, 2}, mlp[] = {784, 256, 128, 10};
    bench_model(be, "2-16-16-2", serve, 4, calls);
    bench_model(be, "784-256-128-10", mlp, 4, calls / 10);
    printf("(cpu backend, %d thread(s), median of %d runs)\n", threads, RUNS);
    tensor_backend_close(be);
    return 0;
}
