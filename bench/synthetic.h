/* synthetic.h: the data bench-runtime and bench-gpu train on, one definition so the two
 * benchmarks (and their CPU/OpenCL comparison) see the same rows. x ~ N(0, 1); a row's label
 * is the argmax of a random linear teacher, so the task is learnable and the accuracy
 * printed is a sanity check. Deterministic: a fixed xorshift seed. */
#ifndef DLC_BENCH_SYNTHETIC_H
#define DLC_BENCH_SYNTHETIC_H

#include <cblas.h>
#include <math.h>

#include "tensor.h"

static uint64_t synthetic_rng = 0x9e3779b97f4a7c15ULL;

static inline float synthetic_normal(void)
{
    double u[2];
    for (int i = 0; i < 2; i++) {
        synthetic_rng ^= synthetic_rng << 13, synthetic_rng ^= synthetic_rng >> 7,
                synthetic_rng ^= synthetic_rng << 17;
        u[i] = ((double)(synthetic_rng >> 11) + 0.5) * 0x1.0p-53;
    }
    return (float)(sqrt(-2 * log(u[0])) * cos(2 * M_PI * u[1]));
}

/* Fills x (rows x features) and y (rows x 1); exits with a message when allocation fails. */
static inline void synthetic_make_data(int64_t rows, int64_t features, int64_t classes,
                                       struct tensor_array *x, struct tensor_array *y)
{
    struct dlc_error *err = NULL;
    if (tensor_array_alloc(x, rows, features, &err) < 0 ||
        tensor_array_alloc(y, rows, 1, &err) < 0) {
        fprintf(stderr, "bench: data: %s\n", err->msg);
        exit(1);
    }
    float *teacher = xmalloc(sizeof(float) * (size_t)(features * classes));
    float *logits = xmalloc(sizeof(float) * (size_t)(rows * classes));
    for (int64_t i = 0; i < features * classes; i++)
        teacher[i] = synthetic_normal();
    for (int64_t i = 0; i < rows * features; i++)
        x->data[i] = synthetic_normal();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)classes, (int)features,
                1, x->data, (int)features, teacher, (int)classes, 0, logits, (int)classes);
    for (int64_t i = 0; i < rows; i++) {
        int64_t best = 0;
        for (int64_t c = 1; c < classes; c++)
            if (logits[i * classes + c] > logits[i * classes + best])
                best = c;
        y->data[i] = (float)best;
    }
    free(teacher);
    free(logits);
}
#endif
