/* tensor.h: the native tensor runtime that runs inside dlc's images: f32 tensors on a
 * backend (CPU/OpenBLAS; room for OpenCL), Keras-style Sequential models, npy/CSV readers,
 * safetensors weights, training with checkpoints, prediction, and SageMaker's contract.
 *
 * Usage (train a model described in Keras JSON on npy data, save it):
 *
 *     struct dlc_error *err = NULL;
 *     struct tensor_array x = {0}, y = {0};
 *     if (tensor_npy_read("train.npy", &x, &err) < 0 || tensor_npy_read("labels.npy", &y, &err) <
 * 0) goto fail; struct tensor_model *m = NULL; json_auto_t *j = dlc_json_load_file("model.json", 1
 * << 20, &err); if (j == NULL || tensor_model_from_json(j, &m, &err) < 0 || tensor_model_build(m,
 * x.cols, 42, &err) < 0) goto fail; struct tensor_backend *be = NULL; tensor_backend_open("cpu", 2,
 * &be, &err); struct tensor_trainer *tr = NULL; struct tensor_train_config cfg = {.batch_size =
 * 128, .seed = 42, .shuffle = true}; tensor_trainer_new(be, m, &x, &y, &cfg, &tr, &err); for (int e
 * = 0; e < 10; e++) { struct tensor_metrics s; tensor_trainer_run_epoch(tr, NULL, NULL, NULL, &s,
 * &err);   // 1: epoch done
 *     }
 *     tensor_trainer_sync_model(tr, &err);          // device weights -> m
 *     tensor_model_save(m, "model-dir", &err);      // model.json + model.safetensors
 *     tensor_trainer_free(tr); tensor_backend_close(be); tensor_model_free(m);
 *
 * Errors follow common.h: int functions return <0 and set *err once; callers wrap.
 * Memory for a training step is planned once by tensor_trainer_new(): no allocation per
 * batch. Same seed, same data and the same thread count give bit-identical weights.
 */
#ifndef DLC_TENSOR_H
#define DLC_TENSOR_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "common.h"

/* ---- tensors ------------------------------------------------------------------------ */

#define TENSOR_MAX_DIMS 4
/* Cap on elements of any array read from outside (npy, CSV, safetensors): 16 GiB of f32. */
#define TENSOR_MAX_ELEMENTS (1ULL << 32)

/* A view of f32 data in a backend's memory. ne[0] is the outermost dimension (rows, as in
 * numpy); nb[] are strides in elements. Ops treat a tensor as a matrix of ne[0] rows by the
 * product of the other dimensions. A tensor never owns its memory. */
struct tensor {
    void *mem;     /* from ops->alloc (or ops->wrap); backend-specific */
    size_t offset; /* in elements, from the start of mem */
    int ndim;
    int64_t ne[TENSOR_MAX_DIMS];
    int64_t nb[TENSOR_MAX_DIMS];
};

/* A contiguous rows x cols matrix view at element offset off of mem. */
struct tensor tensor_2d(void *mem, size_t off, int64_t rows, int64_t cols);
int64_t tensor_nelem(const struct tensor *t);
int64_t tensor_rows(const struct tensor *t);
int64_t tensor_cols(const struct tensor *t); /* product of ne[1..] */
bool tensor_is_contiguous(const struct tensor *t);
/* The same view restricted to rows [row0, row0 + n). */
struct tensor tensor_rows_view(const struct tensor *t, int64_t row0, int64_t n);

/* ---- backends ----------------------------------------------------------------------- */

enum tensor_act {
    TENSOR_ACT_LINEAR,
    TENSOR_ACT_RELU,
    TENSOR_ACT_SIGMOID,
    TENSOR_ACT_TANH,
    TENSOR_ACT_SOFTMAX,
    TENSOR_ACT_GELU,
    _TENSOR_ACT_MAX
};

enum tensor_loss {
    TENSOR_LOSS_MSE,
    TENSOR_LOSS_MAE,
    TENSOR_LOSS_BINARY_CROSSENTROPY,
    TENSOR_LOSS_CATEGORICAL_CROSSENTROPY,
    TENSOR_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
    _TENSOR_LOSS_MAX
};

/* Metrics as computed; "accuracy" in a compile block resolves to one of the first three the
 * way Keras does (tensor_metric_resolve). */
enum tensor_metric {
    TENSOR_METRIC_BINARY_ACCURACY,
    TENSOR_METRIC_CATEGORICAL_ACCURACY,
    TENSOR_METRIC_SPARSE_CATEGORICAL_ACCURACY,
    TENSOR_METRIC_MAE,
    TENSOR_METRIC_ACCURACY, /* unresolved "accuracy" */
    _TENSOR_METRIC_MAX
};
#define TENSOR_MAX_METRICS 4

/* Ops a backend may be asked about through ops->supports. */
enum tensor_op {
    TENSOR_OP_GATHER,
    TENSOR_OP_GEMM,
    TENSOR_OP_BIAS_ACT,
    TENSOR_OP_ACT_BACKWARD,
    TENSOR_OP_SUM_ROWS,
    TENSOR_OP_LOSS,
    TENSOR_OP_DROPOUT,
    TENSOR_OP_MUL,
    TENSOR_OP_SGD,
    TENSOR_OP_ADAM,
    _TENSOR_OP_MAX
};

/* One batch's loss: forward value and, when grad is set, dL/d(output) (or dL/d(pre-
 * activation) when fused: softmax + categorical cross-entropy, sigmoid + binary
 * cross-entropy), already divided by the batch size like Keras' mean reduction.
 * out receives 1 + n_metrics floats: the loss summed over the batch's rows and each
 * metric summed over rows (the caller divides by the rows seen). */
struct tensor_loss_args {
    enum tensor_loss loss;
    bool fused;
    const struct tensor *y;      /* network output (after the output activation), B x k */
    const struct tensor *target; /* B x k, or B x 1 class indices for sparse */
    struct tensor *grad;         /* B x k or NULL */
    struct tensor *out;          /* 1 + n_metrics floats */
    int n_metrics;
    enum tensor_metric metrics[TENSOR_MAX_METRICS];
};

struct tensor_sgd_args {
    float lr, momentum;
    bool nesterov;
};

/* lr_t already includes Adam's bias correction for this step (Keras' formula:
 * lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)). */
struct tensor_adam_args {
    float lr_t, beta_1, beta_2, epsilon;
};

struct tensor_backend;

/* A backend: one static const instance per implementation (tensor_backend_cpu; a build with
 * TENSOR_WITH_OPENCL adds tensor_backend_opencl). Every op returns 0, or <0 with *err set
 * (a CPU op cannot fail, an OpenCL enqueue can). Ops may run asynchronously: results are
 * visible to download() and after sync(). Optional members may be NULL. */
struct tensor_backend_ops {
    const char *name;
    const char *description;
    int (*init)(struct tensor_backend *be, struct dlc_error **err);
    void (*fini)(struct tensor_backend *be);
    /* Appends human-readable lines about devices, libraries and threads (tensor devices). */
    void (*describe)(struct tensor_backend *be, struct dlc_strbuf *out);
    /* Whether op can run on tensor t (shape limits, layout); asked once when memory is
     * planned, never per batch. */
    bool (*supports)(const struct tensor_backend *be, enum tensor_op op, const struct tensor *t);

    void *(*alloc)(struct tensor_backend *be, size_t bytes, struct dlc_error **err);
    void (*free)(struct tensor_backend *be, void *mem);
    /* Optional: memory aliasing n bytes of host memory the caller keeps alive (CPU: the
     * pointer itself), so large read-only datasets are not copied. */
    void *(*wrap)(struct tensor_backend *be, float *host, size_t bytes, struct dlc_error **err);
    /* Optional: releases what wrap returned (the host memory stays the caller's). */
    void (*unwrap)(struct tensor_backend *be, void *mem);
    int (*upload)(struct tensor_backend *be, const struct tensor *dst, const float *src,
                  struct dlc_error **err);
    int (*download)(struct tensor_backend *be, const struct tensor *src, float *dst,
                    struct dlc_error **err);
    int (*sync)(struct tensor_backend *be, struct dlc_error **err);

    /* dst row i = src row rows[i], for i < tensor_rows(dst). */
    int (*gather)(struct tensor_backend *be, const struct tensor *src, const int64_t *rows,
                  struct tensor *dst, struct dlc_error **err);
    /* c = alpha * op(a) * op(b) + beta * c, op = transpose when trans_* is set. */
    int (*gemm)(struct tensor_backend *be, bool trans_a, bool trans_b, float alpha,
                const struct tensor *a, const struct tensor *b, float beta, struct tensor *c,
                struct dlc_error **err);
    /* Fused: y = act(x + bias) row-wise; x may be y (in place), bias may be NULL. pre, when
     * set, receives x + bias before the activation (the GELU gradient needs it). */
    int (*bias_act)(struct tensor_backend *be, const struct tensor *x, struct tensor *y,
                    const struct tensor *bias, enum tensor_act act, struct tensor *pre,
                    struct dlc_error **err);
    /* In place: grad = dL/dy on entry, dL/d(pre-activation) on return. y is the activation's
     * output, pre its input (only read for GELU). */
    int (*act_backward)(struct tensor_backend *be, enum tensor_act act, const struct tensor *y,
                        const struct tensor *pre, struct tensor *grad, struct dlc_error **err);
    /* out[j] = beta * out[j] + sum_i x[i][j] (bias gradients). */
    int (*sum_rows)(struct tensor_backend *be, const struct tensor *x, float beta,
                    struct tensor *out, struct dlc_error **err);
    int (*loss)(struct tensor_backend *be, const struct tensor_loss_args *args,
                struct dlc_error **err);
    /* Inverted dropout: mask[i] = keep ? 1/(1-rate) : 0 from a counter-based generator
     * keyed by (seed, stream, i); y = x * mask. */
    int (*dropout)(struct tensor_backend *be, const struct tensor *x, struct tensor *y,
                   struct tensor *mask, float rate, uint64_t seed, uint64_t stream,
                   struct dlc_error **err);
    /* y *= m elementwise. */
    int (*mul)(struct tensor_backend *be, struct tensor *y, const struct tensor *m,
               struct dlc_error **err);
    int (*sgd_step)(struct tensor_backend *be, struct tensor *w, const struct tensor *g,
                    struct tensor *velocity, const struct tensor_sgd_args *a,
                    struct dlc_error **err);
    int (*adam_step)(struct tensor_backend *be, struct tensor *w, const struct tensor *g,
                     struct tensor *m, struct tensor *v, const struct tensor_adam_args *a,
                     struct dlc_error **err);
};

struct tensor_backend {
    const struct tensor_backend_ops *ops;
    void *ctx;   /* the backend's own state */
    int threads; /* worker threads for host-side compute (OpenBLAS) */
};

extern const struct tensor_backend_ops tensor_backend_cpu;

/* The backends compiled in, NULL-terminated, in order of preference for "auto". */
const struct tensor_backend_ops *const *tensor_backend_list(void);
/* Opens a backend by name ("cpu", "opencl"), or by device kind: "cpu", "gpu" (the GPU
 * backend; ENODEV when none is compiled in or no device answers), "auto" (GPU when
 * one works, else CPU: the choice is logged). threads <= 0 means every available CPU
 * (the affinity mask, lowered by a cgroup CPU quota). */
int tensor_backend_open(const char *name, int threads, struct tensor_backend **ret,
                        struct dlc_error **err);
void tensor_backend_close(struct tensor_backend *be);
/* The device a command uses when no flag or hyperparameter names one: $DLC_DEVICE when set
 * (cpu, gpu, auto, opencl), else "auto". Borrowed. */
const char *tensor_device_default(void);
/* EINVAL "<what>: the <backend> backend does not support <op> on a R x C tensor". */
int tensor_backend_check(const struct tensor_backend *be, enum tensor_op op, const struct tensor *t,
                         const char *what, struct dlc_error **err);
const char *tensor_op_name(enum tensor_op op);

/* ---- names -------------------------------------------------------------------------- */

const char *tensor_act_name(enum tensor_act a);
/* Keras names ("relu", "softmax", "linear", ...; NULL or "" is linear). EINVAL on unknown. */
int tensor_act_parse(const char *s, enum tensor_act *ret, struct dlc_error **err);
const char *tensor_loss_name(enum tensor_loss l);
/* Keras names and aliases ("mse", "mean_squared_error", "categorical_crossentropy", ...). */
int tensor_loss_parse(const char *s, enum tensor_loss *ret, struct dlc_error **err);
/* The output activation a loss implies when none is given (short form). */
enum tensor_act tensor_loss_default_activation(enum tensor_loss l);
const char *tensor_metric_name(enum tensor_metric m); /* Keras' key: "accuracy", "mae" */
int tensor_metric_parse(const char *s, enum tensor_metric *ret, struct dlc_error **err);
/* Keras' choice for "accuracy": binary when the loss is binary cross-entropy or the model
 * has one output, sparse categorical for sparse labels, else categorical. */
enum tensor_metric tensor_metric_resolve(enum tensor_metric m, enum tensor_loss l, int64_t outputs);

/* ---- host arrays and readers -------------------------------------------------------- */

/* A rows x cols f32 matrix in host memory. Arrays with more than two dimensions are
 * flattened to rows x (product of the rest); shape[] keeps the original. */
struct tensor_array {
    int64_t rows, cols;
    float *data;
    int ndim;
    int64_t shape[8];
    bool owned; /* data is freed by tensor_array_release */
};

void tensor_array_release(struct tensor_array *a); /* NULL-safe; resets *a */
/* Allocates rows x cols (ENOMEM, EFBIG past TENSOR_MAX_ELEMENTS). */
int tensor_array_alloc(struct tensor_array *a, int64_t rows, int64_t cols, struct dlc_error **err);
/* A borrowed view of rows [row0, row0 + n). */
struct tensor_array tensor_array_view(const struct tensor_array *a, int64_t row0, int64_t n);

/* .npy (format versions 1, 2, 3), plain or gzip'd (detected by magic, not by name); dtypes
 * f4 f8 i1 i2 i4 i8 u1 u2 u4 b1 of either byte order are converted to f32. Errors name the
 * file: EINVAL for malformed headers, fortran_order, object and unsupported dtypes;
 * EPROTO for truncated data; EFBIG past TENSOR_MAX_ELEMENTS. */
int tensor_npy_read(const char *path, struct tensor_array *ret, struct dlc_error **err);
int tensor_npy_parse(const void *buf, size_t len, const char *what, struct tensor_array *ret,
                     struct dlc_error **err);
/* Writes a '<f4' .npy (version 1) of shape (rows, cols) atomically. */
int tensor_npy_write(const char *path, const struct tensor_array *a, struct dlc_error **err);

/* CSV, plain or gzip'd. A first line that is not all numbers is a header and skipped.
 * With label_first, column 0 goes to *ret_y (rows x 1) and the rest to *ret_x (SageMaker's
 * built-in-algorithm convention); otherwise every column goes to *ret_x and ret_y may be
 * NULL. Errors read "<file>:<line>: ...". */
int tensor_csv_read(const char *path, bool label_first, struct tensor_array *ret_x,
                    struct tensor_array *ret_y, struct dlc_error **err);
int tensor_csv_parse(const char *buf, size_t len, const char *what, bool label_first,
                     struct tensor_array *ret_x, struct tensor_array *ret_y,
                     struct dlc_error **err);
/* One row per line, "%.9g" values separated by commas, atomically. */
int tensor_csv_write(const char *path, const struct tensor_array *a, struct dlc_error **err);

/* Reads a whole file, gunzipping it when it starts with the gzip magic. EFBIG past max. */
int tensor_read_maybe_gz(const char *path, size_t max, char **ret_buf, size_t *ret_len,
                         struct dlc_error **err);

/* A channel directory: train.npy + labels.npy (also <channel>.npy, x.npy/y.npy, and their
 * .gz), or every *.csv / *.csv.gz in it (sorted, label first). Row counts must match. */
int tensor_channel_load(const char *dir, const char *channel, struct tensor_array *ret_x,
                        struct tensor_array *ret_y, struct dlc_error **err);

/* ---- safetensors -------------------------------------------------------------------- */

struct tensor_st_entry {
    const char *name;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    const float *data;
};

/* Writes F32 tensors (sorted by name, 8-byte aligned header) and optional string
 * metadata (a JSON object of strings; may be NULL) atomically. */
int tensor_safetensors_write(const char *path, const struct tensor_st_entry *entries, size_t n,
                             const json_t *metadata, struct dlc_error **err);

struct tensor_safetensors; /* a parsed file held in memory */
/* Validates the header (size cap, JSON, dtypes, shapes against data_offsets, offsets
 * inside the file and covering the data exactly). EINVAL/EPROTO name the file. */
int tensor_safetensors_open(const char *path, struct tensor_safetensors **ret,
                            struct dlc_error **err);
void tensor_safetensors_free(struct tensor_safetensors *st);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct tensor_safetensors *, tensor_safetensors_free)
/* Copies tensor name into out (exactly count floats); ENOENT if absent, EINVAL when its
 * element count differs. */
int tensor_safetensors_get(const struct tensor_safetensors *st, const char *name, float *out,
                           size_t count, struct dlc_error **err);
/* Borrowed metadata string, or NULL. */
const char *tensor_safetensors_meta(const struct tensor_safetensors *st, const char *key);
size_t tensor_safetensors_count(const struct tensor_safetensors *st);

/* ---- hyperparameters ---------------------------------------------------------------- */

/* Decodes one hyperparameters.json value the way sagemaker-training-toolkit does:
 * json.loads, and the raw string when that fails. "10" -> 10, "\"adam\"" -> "adam",
 * "[256, 128]" -> [256, 128], "true" -> true, "adam" -> "adam". New reference. */
json_t *tensor_hparam_decode(const char *raw);

struct tensor_hparams;
/* From the object in hyperparameters.json (string values decoded; non-string values kept);
 * keys starting with "sagemaker_" are framework parameters and are dropped. */
int tensor_hparams_from_json(const json_t *obj, struct tensor_hparams **ret,
                             struct dlc_error **err);
/* A missing file is an empty set. */
int tensor_hparams_load(const char *path, struct tensor_hparams **ret, struct dlc_error **err);
/* "key=value" pairs (values decoded the same way), for the command line. */
int tensor_hparams_set(struct tensor_hparams *hp, const char *key, const char *raw);
void tensor_hparams_free(struct tensor_hparams *hp);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct tensor_hparams *, tensor_hparams_free)
bool tensor_hparams_has(struct tensor_hparams *hp, const char *key);
/* Typed getters: a missing key leaves *ret untouched and returns 0. Numbers given as JSON
 * strings ("\"10\"") are accepted; EINVAL "hyperparameter <key>: ..." otherwise. */
int tensor_hparams_int(struct tensor_hparams *hp, const char *key, int64_t min, int64_t max,
                       int64_t *ret, struct dlc_error **err);
int tensor_hparams_double(struct tensor_hparams *hp, const char *key, double *ret,
                          struct dlc_error **err);
int tensor_hparams_bool(struct tensor_hparams *hp, const char *key, bool *ret,
                        struct dlc_error **err);
/* Borrowed string. */
int tensor_hparams_string(struct tensor_hparams *hp, const char *key, const char **ret,
                          struct dlc_error **err);
/* A list of positive integers ("[256, 128]", "256", "256,128"); *ret is malloc'd. */
int tensor_hparams_int_list(struct tensor_hparams *hp, const char *key, int64_t **ret,
                            size_t *ret_n, struct dlc_error **err);
/* The decoded JSON value (borrowed), NULL when absent. Marks the key used. */
json_t *tensor_hparams_json(struct tensor_hparams *hp, const char *key);
/* Keys no getter asked for (to warn about typos); NULL-terminated, caller frees. */
char **tensor_hparams_unused(const struct tensor_hparams *hp);

/* ---- models ------------------------------------------------------------------------- */

enum tensor_layer_kind {
    TENSOR_LAYER_DENSE,
    TENSOR_LAYER_DROPOUT,
    TENSOR_LAYER_ACTIVATION,
    TENSOR_LAYER_FLATTEN,
};

enum tensor_init {
    TENSOR_INIT_GLOROT_UNIFORM,
    TENSOR_INIT_GLOROT_NORMAL,
    TENSOR_INIT_HE_NORMAL,
    TENSOR_INIT_HE_UNIFORM,
    TENSOR_INIT_ZEROS,
    TENSOR_INIT_ONES,
    _TENSOR_INIT_MAX
};

struct tensor_layer {
    enum tensor_layer_kind kind;
    char *name;
    enum tensor_act act; /* Dense, Activation */
    int64_t in, units;   /* widths; units == in for layers without weights */
    bool use_bias;
    enum tensor_init kernel_init, bias_init;
    float rate;    /* Dropout */
    float *kernel; /* in x units, row-major (Keras' layout); NULL until built */
    float *bias;   /* units, or NULL */
};

enum tensor_optimizer_kind { TENSOR_OPT_SGD, TENSOR_OPT_ADAM };

struct tensor_optimizer {
    enum tensor_optimizer_kind kind;
    double learning_rate;
    double momentum; /* sgd */
    bool nesterov;   /* sgd */
    double beta_1, beta_2, epsilon;
};

struct tensor_compile {
    bool set; /* a compile block was given */
    enum tensor_loss loss;
    struct tensor_optimizer optimizer;
    int n_metrics;
    enum tensor_metric metrics[TENSOR_MAX_METRICS]; /* as written ("accuracy" unresolved) */
};

struct tensor_model {
    char *name;
    int64_t input_dim; /* 0 until known (from the JSON or the data) */
    size_t n_layers;
    struct tensor_layer *layers;
    struct tensor_compile compile;
};

/* Keras defaults: adam(0.001, 0.9, 0.999, 1e-7) or sgd(0.01, momentum 0). */
void tensor_optimizer_defaults(enum tensor_optimizer_kind kind, struct tensor_optimizer *ret);
/* "adam", "sgd", or {"class_name": "Adam", "config": {...}}. */
int tensor_optimizer_from_json(const json_t *j, struct tensor_optimizer *ret,
                               struct dlc_error **err);

/* Keras Sequential JSON (what model.to_json() writes: class_name/config, layers InputLayer,
 * Dense, Dropout, Activation, Flatten), optionally with a "compile" block
 * {"optimizer", "loss", "metrics"} (or Keras' saved "training_config"). EINVAL naming the
 * layer for unknown layer types, activations, initializers or unsupported options. */
int tensor_model_from_json(const json_t *j, struct tensor_model **ret, struct dlc_error **err);
/* The short form from hyperparameters: hidden_units, activation, output_units,
 * output_activation (default from the loss), dropout, kernel_initializer, loss, optimizer,
 * learning_rate, momentum, nesterov, metrics. output_units defaults from the labels:
 * label_width columns, or max_label + 1 classes for a sparse loss. */
int tensor_model_from_hparams(struct tensor_hparams *hp, int64_t label_width, double max_label,
                              struct tensor_model **ret, struct dlc_error **err);
/* Hyperparameters override the compile block: loss, optimizer, learning_rate, momentum,
 * nesterov, metrics. EINVAL when no loss is known at all. */
int tensor_model_apply_hparams(struct tensor_model *m, struct tensor_hparams *hp,
                               struct dlc_error **err);
/* Resolves widths for input_dim (EINVAL when the JSON declared another) and initializes
 * weights from seed (each layer its own stream: reproducible). */
int tensor_model_build(struct tensor_model *m, int64_t input_dim, uint64_t seed,
                       struct dlc_error **err);
/* Keras JSON with the compile block (reproducible: feeds tensor_model_from_json). */
json_t *tensor_model_to_json(const struct tensor_model *m);
int64_t tensor_model_outputs(const struct tensor_model *m);
size_t tensor_model_param_count(const struct tensor_model *m);
/* Writes dir/model.json and dir/model.safetensors (tensors "<layer>/kernel",
 * "<layer>/bias"), each atomically. */
int tensor_model_save(const struct tensor_model *m, const char *dir, struct dlc_error **err);
int tensor_model_load(const char *dir, struct tensor_model **ret, struct dlc_error **err);
void tensor_model_free(struct tensor_model *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct tensor_model *, tensor_model_free)

/* ---- training ----------------------------------------------------------------------- */

struct tensor_train_config {
    int64_t batch_size;
    uint64_t seed;
    bool shuffle;
};

/* Loss and metrics averaged over the rows seen. */
struct tensor_metrics {
    double loss;
    int n_metrics;
    enum tensor_metric metrics[TENSOR_MAX_METRICS]; /* resolved */
    double values[TENSOR_MAX_METRICS];
    int64_t rows;
};

/* Where training stands: enough to resume bit-identically. */
struct tensor_train_position {
    int epoch;                           /* epochs completed */
    int64_t batch;                       /* batches of the current epoch done */
    int64_t step;                        /* optimizer steps in total (Adam's t) */
    double sums[1 + TENSOR_MAX_METRICS]; /* the current epoch's loss and metric sums */
    int64_t rows;                        /* the current epoch's rows seen */
};

/* Called after every batch with the running averages of the epoch. */
typedef void (*tensor_batch_fn)(int64_t batch, int64_t n_batches, const struct tensor_metrics *m,
                                void *userdata);

struct tensor_trainer;
/* Plans all memory for batch_size (one allocation on the backend), uploads the model's
 * weights and binds x (rows x input) and y (rows x outputs, or rows x 1 for sparse labels),
 * which the caller keeps alive. The model's compile block gives loss, optimizer, metrics;
 * the model must be built. EINVAL on shape mismatches, with both sides named. */
int tensor_trainer_new(struct tensor_backend *be, struct tensor_model *m,
                       const struct tensor_array *x, const struct tensor_array *y,
                       const struct tensor_train_config *cfg, struct tensor_trainer **ret,
                       struct dlc_error **err);
void tensor_trainer_free(struct tensor_trainer *tr);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct tensor_trainer *, tensor_trainer_free)
int64_t tensor_trainer_batches(const struct tensor_trainer *tr);
/* Runs the rest of the current epoch. When *stop becomes non-zero the batch in progress
 * finishes and the function returns 0 (epoch incomplete); 1 when the epoch completed (then
 * *ret holds its averages and the position moved to the next epoch). */
int tensor_trainer_run_epoch(struct tensor_trainer *tr, const volatile sig_atomic_t *stop,
                             tensor_batch_fn cb, void *userdata, struct tensor_metrics *ret,
                             struct dlc_error **err);
/* Loss and metrics of the current weights on x, y (inference: no dropout). */
int tensor_trainer_evaluate(struct tensor_trainer *tr, const struct tensor_array *x,
                            const struct tensor_array *y, struct tensor_metrics *ret,
                            struct dlc_error **err);
/* One forward + backward pass over rows [row0, row0 + n) of the bound data (n <= batch)
 * without an optimizer step; *ret_loss is the batch's mean loss. Gradients for tests. */
int tensor_trainer_gradients(struct tensor_trainer *tr, int64_t row0, int64_t n, double *ret_loss,
                             struct dlc_error **err);
/* Copies all parameters or their gradients (layer order, kernel then bias) to host. */
size_t tensor_trainer_param_count(const struct tensor_trainer *tr);
int tensor_trainer_get_params(struct tensor_trainer *tr, float *out, struct dlc_error **err);
int tensor_trainer_get_grads(struct tensor_trainer *tr, float *out, struct dlc_error **err);
int tensor_trainer_set_params(struct tensor_trainer *tr, const float *in, struct dlc_error **err);
/* Downloads the weights into the model's host arrays. */
int tensor_trainer_sync_model(struct tensor_trainer *tr, struct dlc_error **err);
const struct tensor_train_position *tensor_trainer_position(const struct tensor_trainer *tr);
/* FLOPs of one pass over n rows (forward + backward GEMMs), for benchmarks. */
double tensor_trainer_flops(const struct tensor_trainer *tr, int64_t rows);

/* Checkpoints: parameters, optimizer state and position in one safetensors file, written
 * atomically. state is caller JSON stored beside (history, seed); it comes back from load.
 * Load checks that the checkpoint was made for the same model and configuration:
 * EINVAL "checkpoint <path> was written for ..." otherwise. */
int tensor_checkpoint_save(struct tensor_trainer *tr, const char *path, const json_t *state,
                           struct dlc_error **err);
int tensor_checkpoint_load(struct tensor_trainer *tr, const char *path, json_t **ret_state,
                           struct dlc_error **err);
/* Reads only the caller state of a checkpoint (to learn its seed before planning). */
int tensor_checkpoint_peek(const char *path, json_t **ret_state, struct dlc_error **err);

/* ---- prediction --------------------------------------------------------------------- */

/* A built model planned once for inference: backend memory for max_rows rows a pass and
 * the weights uploaded at creation, reused by every run (no allocation, no weight upload
 * per call): what `tensor serve` keeps for its batcher.
 *
 *     struct tensor_predictor *p = NULL;
 *     tensor_predictor_new(be, m, 1024, &p, &err);
 *     tensor_predictor_run(p, &x, &y, &err);   // any number of rows, max_rows a pass
 *     tensor_predictor_free(p);
 *
 * be and m are borrowed and must outlive it; later changes to m's weights are not seen.
 * Not thread-safe: one run at a time (serve's batcher thread is its only user). */
struct tensor_predictor;
/* EINVAL for an unbuilt model or max_rows outside [1, 2^24]; backend errors as they come. */
int tensor_predictor_new(struct tensor_backend *be, const struct tensor_model *m, int64_t max_rows,
                         struct tensor_predictor **ret, struct dlc_error **err);
void tensor_predictor_free(struct tensor_predictor *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct tensor_predictor *, tensor_predictor_free)
int64_t tensor_predictor_max_rows(const struct tensor_predictor *p);
/* Writes x->rows x outputs floats to out (the caller's). EINVAL when x has no rows or
 * another feature count than the model takes ("the model expects 4 input features, the
 * input has 3"). */
int tensor_predictor_run_into(struct tensor_predictor *p, const struct tensor_array *x, float *out,
                              struct dlc_error **err);
/* The same into a new rows x outputs array (*ret, released by the caller). */
int tensor_predictor_run(struct tensor_predictor *p, const struct tensor_array *x,
                         struct tensor_array *ret, struct dlc_error **err);

/* One-off: plans a predictor for min(batch_size, rows) rows, runs x, frees it; *ret is
 * rows x outputs. For repeated calls keep a tensor_predictor instead. */
int tensor_predict(struct tensor_backend *be, const struct tensor_model *m,
                   const struct tensor_array *x, int64_t batch_size, struct tensor_array *ret,
                   struct dlc_error **err);

/* ---- SageMaker contract ------------------------------------------------------------- */

/* The /opt/ml tree (or $SAGEMAKER_BASE_DIR's), with config read. */
struct tensor_sm_env {
    char *base;            /* /opt/ml */
    char *model_dir;       /* base/model */
    char *output_dir;      /* base/output */
    char *output_data_dir; /* base/output/data */
    char *failure_path;    /* base/output/failure */
    char *checkpoint_dir;  /* base/checkpoints */
    char *code_dir;        /* base/code */
    char *data_dir;        /* base/input/data */
    char *config_dir;      /* base/input/config */
    char **channels;       /* from inputdataconfig.json, or the directories in data_dir */
    char *current_host;    /* resourceconfig.json; "algo-1" when absent */
    size_t n_hosts;
    struct tensor_hparams *hp;
};

/* Reads the three config files (each optional: a missing file is empty, a malformed one
 * is EINVAL naming it). base NULL means $SAGEMAKER_BASE_DIR or /opt/ml. */
int tensor_sm_env_load(const char *base, struct tensor_sm_env **ret, struct dlc_error **err);
void tensor_sm_env_free(struct tensor_sm_env *env);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct tensor_sm_env *, tensor_sm_env_free)
/* The first channel of names (NULL-terminated) present in env: its directory, or NULL. A
 * channel listed in inputdataconfig.json whose directory is missing is ENOENT. */
int tensor_sm_channel(const struct tensor_sm_env *env, const char *const *names, char **ret_name,
                      char **ret_dir, struct dlc_error **err);
/* $SAGEMAKER_BASE_DIR, or /opt/ml (borrowed). */
const char *tensor_sm_base_dir(void);
/* Writes msg + "\n" to base/output/failure unless the file exists (the user's reason
 * wins), truncated to SageMaker's 1024 characters. */
int tensor_sm_write_failure(const char *base, const char *msg, struct dlc_error **err);

/* ---- serving: `tensor serve` (runtime/src/serve*.c, issue 8) ------------------------ */

/* SageMaker's inference contract over HTTP (libmicrohttpd): GET /ping (503 until the model
 * is loaded, then 200), POST /invocations (JSON, CSV or npy in; the Accept type out),
 * GET /execution-parameters. Usage:
 *
 *     struct tensor_serve_options o;
 *     tensor_serve_options_init(&o, &err);     // defaults + SAGEMAKER_* environment
 *     struct tensor_server *s = NULL;
 *     tensor_server_start(&o, &s, &err);       // listening: /ping says 503
 *     tensor_server_load(s, &err);             // model loaded: /ping says 200
 *     ...                                       // until a signal
 *     tensor_server_stop(s);                   // answers requests in flight first
 */
struct tensor_serve_options {
    const char *model_dir;      /* NULL: $SAGEMAKER_BASE_DIR/model or /opt/ml/model */
    const char *device;         /* tensor_backend_open() name; $DLC_DEVICE or "auto" */
    const char *bind_addr;      /* IPv4, "0.0.0.0" */
    int port;                   /* $SAGEMAKER_BIND_TO_PORT or 8080; 0 picks a free one */
    int threads;                /* HTTP pool; $SAGEMAKER_MODEL_SERVER_WORKERS or the CPUs */
    size_t max_payload;         /* bytes; $SAGEMAKER_MAX_PAYLOAD_IN_MB (6) MiB */
    const char *default_accept; /* $SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT or JSON */
    int64_t max_batch_rows;     /* rows coalesced into one predict call (1024) */
    bool access_log;            /* one stderr line per request, with its latency */
};
/* Defaults, then the environment; EINVAL naming the variable when one is malformed. */
int tensor_serve_options_init(struct tensor_serve_options *o, struct dlc_error **err);

struct tensor_server;
/* Listens (EADDRINUSE etc. name the address); borrows o's strings until stop. */
int tensor_server_start(const struct tensor_serve_options *o, struct tensor_server **ret,
                        struct dlc_error **err);
int tensor_server_port(const struct tensor_server *s);
/* Loads the model (unpacking a lone model.tar.gz with the image's tar), opens the backend,
 * runs one warm-up prediction, then turns /ping to 200. */
int tensor_server_load(struct tensor_server *s, struct dlc_error **err);
const struct tensor_model *tensor_server_model(const struct tensor_server *s);
const char *tensor_server_backend(const struct tensor_server *s);
/* Predict calls so far, and the rows and /invocations requests they carried: requests per
 * call above 1 is concurrent requests sharing calls. Zeros before the model is loaded. */
void tensor_server_stats(const struct tensor_server *s, uint64_t *ret_calls, uint64_t *ret_rows,
                         uint64_t *ret_requests);
/* Stops accepting, answers the requests in flight, frees. NULL-safe. */
void tensor_server_stop(struct tensor_server *s);
/* The `tensor serve` command (argv[0] is "serve"): runs until SIGTERM/SIGINT; exit code. */
int tensor_serve_main(int argc, char **argv);

#endif
