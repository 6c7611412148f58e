/* tensor-internal.h: what runtime/src files share and the public header does not show:
 * the seeded generators and the CPU reference kernels the CPU backend is made of. */
#ifndef DLC_TENSOR_INTERNAL_H
#define DLC_TENSOR_INTERNAL_H

#include "tensor.h"

/* ---- random numbers (rng.c) ---------------------------------------------------------- */

/* xoshiro256** seeded through splitmix64: one independent stream per (seed, stream). */
struct tensor_rng {
    uint64_t s[4];
};

void tensor__rng_seed(struct tensor_rng *r, uint64_t seed, uint64_t stream);
uint64_t tensor__rng_next(struct tensor_rng *r);
/* Uniform in [0, 1) with 53 bits. */
double tensor__rng_uniform(struct tensor_rng *r);
/* Standard normal (Box-Muller, both values used alternately is not needed: one per call). */
double tensor__rng_normal(struct tensor_rng *r);
/* Uniform integer in [0, n), unbiased. */
uint64_t tensor__rng_below(struct tensor_rng *r, uint64_t n);
/* A stateless mix of (key, counter): counter-based randomness for dropout masks, so the
 * mask of element i does not depend on how the work is split. */
static inline uint64_t tensor__mix64(uint64_t key, uint64_t counter)
{
    uint64_t z = key + 0x9e3779b97f4a7c15ULL * (counter + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* ---- CPU kernels (activations.c, losses.c, optimizers.c) ------------------------------ */

/* The hot elementwise loops are compiled for AVX-512, AVX2 and baseline x86-64 and the
 * clone for this CPU is picked at load time: an image runs on whatever CPU its host has.
 * AVX-512 has FMA instructions: fp-contract=off keeps a*b+c as two roundings in every
 * clone, so results do not depend on which one runs (nor on the build's flags). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#    define TENSOR_KERNEL \
        __attribute__((target_clones("avx512f", "avx2", "default"), optimize("fp-contract=off")))
#elif defined(__x86_64__)
#    define TENSOR_KERNEL __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#    define TENSOR_KERNEL
#endif

/* All operate on contiguous row-major rows x cols matrices. */
void tensor__cpu_bias_act(const float *x, float *y, const float *bias, float *pre, int64_t rows,
                          int64_t cols, enum tensor_act act);
void tensor__cpu_act_backward(enum tensor_act act, const float *y, const float *pre, float *g,
                              int64_t rows, int64_t cols);
/* Loss (and gradient when g != NULL) of one batch; see struct tensor_loss_args. tcols is
 * the target's width (1 for sparse labels). */
void tensor__cpu_loss(const struct tensor_loss_args *a, const float *y, const float *t, float *g,
                      float *out, int64_t rows, int64_t cols, int64_t tcols);
void tensor__cpu_sgd(float *w, const float *g, float *vel, size_t n,
                     const struct tensor_sgd_args *a);
void tensor__cpu_adam(float *w, const float *g, float *m, float *v, size_t n,
                      const struct tensor_adam_args *a);

/* ---- backends (backend.c) ----------------------------------------------------------------- */

/* CPUs a cgroup CPU quota under root (/sys/fs/cgroup: v2 cpu.max, or v1 cpu/cpu.cfs_*)
 * allows, rounded up; 0 when there is no quota. */
int tensor__cgroup_cpu_limit(const char *root);

/* ---- gzip-aware whole-file reads (io.c) ------------------------------------------------ */

/* True when the bytes start like a .npy file. */
bool tensor__is_npy(const void *buf, size_t len);

/* ---- models (model.c) ------------------------------------------------------------------ */

bool tensor__layer_has_weights(const struct tensor_layer *l);
/* Fills a freshly built layer's weights from its initializers. */
void tensor__layer_init_weights(struct tensor_layer *l, uint64_t seed, size_t index);
const char *tensor__init_name(enum tensor_init i);
/* "glorot_uniform", "GlorotUniform", {"class_name": "HeNormal", ...}; what names the layer. */
int tensor__init_from_json(const json_t *j, const char *what, enum tensor_init *ret,
                           struct dlc_error **err);

/* ---- the trainer's memory plan (train.c; predict.c and checkpoint.c use it) ---------- */

struct plan_layer {
    const struct tensor_layer *l;
    struct tensor out; /* B x units: this layer's output (aliases the input for identity) */
    struct tensor aux; /* B x units: GELU pre-activation, or the Dropout mask */
    bool has_out, has_aux;
    struct tensor w, b, gw, gb; /* Dense: views into the parameter and gradient vectors */
    struct tensor in_v, out_v;  /* this layer's input and output in the last forward pass */
};

struct tensor_trainer {
    struct tensor_backend *be;
    const struct tensor_model *m;
    struct tensor_model *model_out; /* where sync_model writes; NULL for prediction */
    struct tensor_train_config cfg;
    bool train;    /* gradients and optimizer state planned */
    int64_t batch; /* rows per batch */
    struct plan_layer *pl;
    size_t n_layers;
    ssize_t first_weighted; /* no input gradient is needed before this layer */
    void *arena;            /* every tensor below lives in this one allocation */
    size_t n_params;
    struct tensor params, grads, slot1, slot2; /* optimizer slots: Adam m/v, SGD velocity */
    struct tensor input, target, delta[2], loss_out;

    /* compile settings, resolved */
    enum tensor_loss loss;
    bool fused;
    int n_metrics;
    enum tensor_metric metrics[TENSOR_MAX_METRICS];
    int64_t tcols; /* target width */

    /* the bound training data */
    void *x_mem, *y_mem;
    bool data_wrapped; /* x_mem/y_mem alias host memory: not freed */
    struct tensor x_all, y_all;
    int64_t rows;
    int64_t *perm; /* rows, planned once */

    struct tensor_train_position pos;
};

/* Plans memory for batch rows (train: with gradients and optimizer state) and uploads m's
 * weights. tcols is the target width (0 without targets). */
int tensor__trainer_plan(struct tensor_backend *be, const struct tensor_model *m, int64_t batch,
                         int64_t tcols, bool train, struct tensor_trainer **ret,
                         struct dlc_error **err);
/* Forward pass over the first n rows of tr->input; *ret_out is the output view. */
int tensor__trainer_forward(struct tensor_trainer *tr, int64_t n, bool training,
                            const struct tensor **ret_out, struct dlc_error **err);

#endif
