/* cmd-train.c: `tensor train`, what SageMaker runs as `docker run IMAGE train`: reads
 * /opt/ml/input (config and channels), trains, writes /opt/ml/model, metrics to
 * /opt/ml/output/data/metrics.json, a checkpoint per epoch to /opt/ml/checkpoints, and on
 * failure the reason to /opt/ml/output/failure with exit 1. SIGTERM (docker stop) lets the
 * current batch finish, writes a checkpoint and exits 143; a rerun resumes from it. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <sys/random.h>

#include "tensor-cmd.h"

#define EXIT_TERMINATED 143 /* 128 + SIGTERM, what docker reports for a stopped job */

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

struct job {
    struct tensor_sm_env *env;
    int64_t epochs, batch, threads;
    uint64_t seed;
    bool seed_given, shuffle;
    double validation_split;
    const char *device;
    struct tensor_array x, y;   /* the training channel as read */
    struct tensor_array vx, vy; /* the validation channel as read */
    struct tensor_array tx, ty; /* what is trained on (views of x, y) */
    struct tensor_array ex, ey; /* what is validated on (views), rows == 0: none */
    struct tensor_model *model;
    struct tensor_backend *be;
    struct tensor_trainer *tr;
    char *checkpoint;
    json_t *history; /* Keras' History.history: {"loss": [...], "val_loss": [...], ...} */
};

static void job_release(struct job *j)
{
    tensor_trainer_free(j->tr);
    tensor_backend_close(j->be);
    tensor_model_free(j->model);
    tensor_array_release(&j->x), tensor_array_release(&j->y);
    tensor_array_release(&j->vx), tensor_array_release(&j->vy);
    tensor_sm_env_free(j->env);
    free(j->checkpoint);
    json_decref(j->history);
}

/* ---- configuration ---------------------------------------------------------------------- */

/* The gpu_memory_limit hyperparameter ("4g", "512MiB") caps what the OpenCL backend
 * allocates; the backend reads it from DLC_GPU_MEMORY_LIMIT, so checked here and exported. */
static int set_gpu_memory_limit(struct tensor_hparams *hp, struct dlc_error **err)
{
    json_t *v = tensor_hparams_json(hp, "gpu_memory_limit");
    uint64_t bytes = 0;
    if (v == NULL)
        return 0;
    _cleanup_free_ char *text = json_is_integer(v) ? xasprintf("%" JSON_INTEGER_FORMAT,
                                                              json_integer_value(v))
                                : json_is_string(v) ? xstrdup(json_string_value(v))
                                                    : NULL;
    if (text == NULL)
        return dlc_error_set(err, EINVAL,
                             "hyperparameter gpu_memory_limit: must be a size like 4g or 512MiB");
    if (dlc_parse_size(text, "hyperparameter gpu_memory_limit", &bytes, err) < 0)
        return -1;
    if (setenv("DLC_GPU_MEMORY_LIMIT", text, 1) < 0)
        return dlc_error_set_errno(err, errno, "set DLC_GPU_MEMORY_LIMIT");
    return 0;
}

static int read_options(struct job *j, struct dlc_error **err)
{
    struct tensor_hparams *hp = j->env->hp;
    int64_t seed = 0;
    j->epochs = 1, j->batch = 32, j->shuffle = true, j->device = tensor_device_default();
    if (tensor_hparams_int(hp, "epochs", 1, 1000000, &j->epochs, err) < 0 ||
        tensor_hparams_int(hp, "batch_size", 1, 1 << 24, &j->batch, err) < 0 ||
        tensor_hparams_int(hp, "threads", 1, 1024, &j->threads, err) < 0 ||
        tensor_hparams_int(hp, "seed", 0, INT64_MAX, &seed, err) < 0 ||
        tensor_hparams_bool(hp, "shuffle", &j->shuffle, err) < 0 ||
        tensor_hparams_double(hp, "validation_split", &j->validation_split, err) < 0 ||
        tensor_hparams_string(hp, "device", &j->device, err) < 0)
        return -1;
    if (set_gpu_memory_limit(hp, err) < 0)
        return -1;
    if (j->validation_split < 0 || j->validation_split >= 1)
        return dlc_error_set(err, EINVAL, "hyperparameter validation_split: must be in [0, 1)");
    j->seed_given = tensor_hparams_has(hp, "seed");
    j->seed = (uint64_t)seed;
    return 0;
}

static int load_data(struct job *j, struct dlc_error **err)
{
    static const char *const train_names[] = {"training", "train", NULL};
    static const char *const val_names[] = {"validation", "test", NULL};
    _cleanup_free_ char *tname = NULL, *tdir = NULL, *vname = NULL, *vdir = NULL;
    if (tensor_sm_channel(j->env, train_names, &tname, &tdir, err) < 0 ||
        tensor_sm_channel(j->env, val_names, &vname, &vdir, err) < 0)
        return -1;
    if (tdir == NULL)
        return dlc_error_set(err, ENOENT, "no training channel: expected %s/training (or train)",
                             j->env->data_dir);
    if (tensor_channel_load(tdir, tname, &j->x, &j->y, err) < 0 ||
        (vdir != NULL && tensor_channel_load(vdir, vname, &j->vx, &j->vy, err) < 0))
        return -1;
    if (vdir != NULL) {
        j->tx = tensor_array_view(&j->x, 0, j->x.rows),
        j->ty = tensor_array_view(&j->y, 0, j->y.rows);
        j->ex = tensor_array_view(&j->vx, 0, j->vx.rows),
        j->ey = tensor_array_view(&j->vy, 0, j->vy.rows);
        return 0;
    }
    /* Keras' validation_split: the last fraction of the rows, before any shuffling. */
    int64_t n = (int64_t)((double)j->x.rows * (1.0 - j->validation_split));
    j->tx = tensor_array_view(&j->x, 0, n), j->ty = tensor_array_view(&j->y, 0, n);
    j->ex = tensor_array_view(&j->x, n, j->x.rows - n),
    j->ey = tensor_array_view(&j->y, n, j->y.rows - n);
    if (n == 0)
        return dlc_error_set(err, EINVAL, "validation_split %g leaves no training rows",
                             j->validation_split);
    return 0;
}

static int model_from_json_value(const json_t *v, const char *what, struct tensor_model **ret,
                                 struct dlc_error **err)
{
    json_auto_t *parsed = NULL;
    if (json_is_string(v)) { /* encoded twice: a JSON document inside a string */
        const char *s = json_string_value(v);
        parsed = dlc_json_loadb(s, strlen(s), what, err);
        if (parsed == NULL)
            return -1;
        v = parsed;
    }
    if (tensor_model_from_json(v, ret, err) < 0)
        return dlc_error_wrap(err, "%s", what);
    return 0;
}

/* /opt/ml/code/model.json, else the "model" hyperparameter, else the short form. */
static int load_model(struct job *j, struct dlc_error **err)
{
    struct tensor_hparams *hp = j->env->hp;
    _cleanup_free_ char *path = dlc_path_join(j->env->code_dir, "model.json");
    json_t *hpmodel = tensor_hparams_json(hp, "model");
    int r;
    if (dlc_path_exists(path)) {
        json_auto_t *mj = dlc_json_load_file(path, 16 << 20, err);
        r = mj ? model_from_json_value(mj, path, &j->model, err) : -1;
    } else if (hpmodel != NULL) {
        r = model_from_json_value(hpmodel, "hyperparameter model", &j->model, err);
    } else {
        double max_label = 0;
        for (int64_t i = 0; i < j->y.rows * j->y.cols; i++)
            max_label = j->y.data[i] > max_label ? j->y.data[i] : max_label;
        return tensor_model_from_hparams(hp, j->y.cols, max_label, &j->model, err);
    }
    if (r == 0)
        r = tensor_model_apply_hparams(j->model, hp, err);
    return r;
}

/* ---- checkpoints and history ------------------------------------------------------------ */

static int choose_seed(struct job *j, const json_t *state, struct dlc_error **err)
{
    const char *s = json_string_value(json_object_get(state, "seed"));
    uint64_t saved = 0;
    if (s != NULL && dlc_parse_u64(s, "checkpoint seed", &saved, err) < 0)
        return -1;
    if (!j->seed_given && s != NULL)
        j->seed = saved; /* resuming a run whose seed was drawn at random */
    else if (!j->seed_given && getrandom(&j->seed, sizeof(j->seed), 0) != sizeof(j->seed))
        return dlc_error_set_errno(err, errno, "draw a random seed");
    return 0;
}

static json_t *checkpoint_state(const struct job *j)
{
    char seed[24];
    snprintf(seed, sizeof(seed), "%" PRIu64, j->seed);
    return json_pack("{s:s, s:O}", "seed", seed, "history", j->history);
}

static void history_add(struct job *j, const char *prefix, const struct tensor_metrics *m)
{
    _cleanup_free_ char *loss = xasprintf("%sloss", prefix);
    json_t *a = json_object_get(j->history, loss);
    if (a == NULL)
        json_object_set_new(j->history, loss, a = json_array());
    json_array_append_new(a, json_real(m->loss));
    for (int i = 0; i < m->n_metrics; i++) {
        _cleanup_free_ char *k = xasprintf("%s%s", prefix, tensor_metric_name(m->metrics[i]));
        if ((a = json_object_get(j->history, k)) == NULL)
            json_object_set_new(j->history, k, a = json_array());
        json_array_append_new(a, json_real(m->values[i]));
    }
}

/* ---- the run ---------------------------------------------------------------------------- */

static int prepare(struct job *j, struct dlc_error **err)
{
    json_auto_t *state = NULL;
    j->checkpoint = dlc_path_join(j->env->checkpoint_dir, "checkpoint.safetensors");
    if (dlc_path_exists(j->checkpoint) && tensor_checkpoint_peek(j->checkpoint, &state, err) < 0)
        return -1;
    struct tensor_train_config cfg = {.batch_size = j->batch, .shuffle = j->shuffle};
    if (choose_seed(j, state, err) < 0 ||
        tensor_model_build(j->model, j->tx.cols, j->seed, err) < 0 ||
        tensor_backend_open(j->device, (int)j->threads, &j->be, err) < 0)
        return -1;
    cfg.seed = j->seed;
    if (tensor_trainer_new(j->be, j->model, &j->tx, &j->ty, &cfg, &j->tr, err) < 0)
        return -1;
    json_decref(state), state = NULL;
    j->history = json_object();
    if (!dlc_path_exists(j->checkpoint))
        return dlc_mkdir_p(j->env->checkpoint_dir, 0755, err);
    if (tensor_checkpoint_load(j->tr, j->checkpoint, &state, err) < 0)
        return -1;
    json_t *h = json_object_get(state, "history");
    if (json_is_object(h))
        json_object_update(j->history, h);
    const struct tensor_train_position *p = tensor_trainer_position(j->tr);
    dlc_info("resuming from %s: epoch %d, batch %lld", j->checkpoint, p->epoch + 1,
             (long long)p->batch + 1);
    return 0;
}

static void describe_run(const struct job *j)
{
    const struct tensor_model *m = j->model;
    _cleanup_strbuf_ struct dlc_strbuf arch = DLC_STRBUF_INIT;
    dlc_strbuf_appendf(&arch, "%lld", (long long)m->input_dim);
    for (size_t i = 0; i < m->n_layers; i++)
        if (m->layers[i].kind == TENSOR_LAYER_DENSE)
            dlc_strbuf_appendf(&arch, "-%lld", (long long)m->layers[i].units);
    dlc_info("training %lld rows (%lld validation) on %s with %d thread%s: model %s, %zu "
             "parameters, %s, %s, batch %lld, %lld epochs, seed %" PRIu64,
             (long long)j->tx.rows, (long long)j->ex.rows, j->be->ops->name, j->be->threads,
             j->be->threads == 1 ? "" : "s", dlc_strbuf_str(&arch), tensor_model_param_count(m),
             m->compile.optimizer.kind == TENSOR_OPT_ADAM ? "adam" : "sgd",
             tensor_loss_name(m->compile.loss), (long long)j->batch, (long long)j->epochs, j->seed);
    if (j->env->n_hosts > 1)
        dlc_warn("resourceconfig.json lists %zu hosts: each trains on its own (no distributed "
                 "training)",
                 j->env->n_hosts);
    _cleanup_strv_ char **unused = tensor_hparams_unused(j->env->hp);
    for (size_t i = 0; unused[i] != NULL; i++)
        dlc_warn("ignoring unknown hyperparameter '%s'", unused[i]);
}

/* 0 when every epoch ran, 1 when stopped by a signal (a checkpoint was written). */
static int run_epochs(struct job *j, struct dlc_error **err)
{
    struct progress p = {.tty = isatty(STDOUT_FILENO) == 1};
    while (tensor_trainer_position(j->tr)->epoch < j->epochs) {
        int epoch = tensor_trainer_position(j->tr)->epoch + 1;
        struct tensor_metrics m, v;
        progress_start(&p);
        int r = tensor_trainer_run_epoch(j->tr, &stop_requested, progress_batch, &p, &m, err);
        if (r < 0)
            return -1;
        if (r == 1) {
            if (j->ex.rows > 0 && tensor_trainer_evaluate(j->tr, &j->ex, &j->ey, &v, err) < 0)
                return dlc_error_wrap(err, "validation");
            progress_epoch_line(&p, epoch, (int)j->epochs, progress_now() - p.start, &m,
                                j->ex.rows > 0 ? &v : NULL);
            history_add(j, "", &m);
            if (j->ex.rows > 0)
                history_add(j, "val_", &v);
        }
        json_auto_t *state = checkpoint_state(j);
        if (tensor_checkpoint_save(j->tr, j->checkpoint, state, err) < 0)
            return -1;
        if (stop_requested)
            return 1;
    }
    return 0;
}

static int write_results(struct job *j, struct dlc_error **err)
{
    json_t *final = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(j->history, key, v) {
        json_object_set(final, key, json_array_get(v, json_array_size(v) - 1));
    }
    json_auto_t *metrics =
            json_pack("{s:I, s:O, s:o, s:I, s:I}", "epochs", (json_int_t)j->epochs, "history",
                      j->history, "final", final, "train_rows", (json_int_t)j->tx.rows,
                      "validation_rows", (json_int_t)j->ex.rows);
    _cleanup_free_ char *path = dlc_path_join(j->env->output_data_dir, "metrics.json");
    if (tensor_trainer_sync_model(j->tr, err) < 0 ||
        tensor_model_save(j->model, j->env->model_dir, err) < 0 ||
        dlc_mkdir_p(j->env->output_data_dir, 0755, err) < 0 ||
        dlc_json_write_file_atomic(path, metrics, err) < 0)
        return -1;
    dlc_info("saved the model to %s", j->env->model_dir);
    return 0;
}

static int train(struct job *j, struct dlc_error **err)
{
    if (tensor_sm_env_load(NULL, &j->env, err) < 0 || read_options(j, err) < 0 ||
        load_data(j, err) < 0 || load_model(j, err) < 0 || prepare(j, err) < 0)
        return -1;
    describe_run(j);
    int r = stop_requested ? 1 : run_epochs(j, err);
    if (r != 0)
        return r;
    return write_results(j, err);
}

static const char usage[] =
        "Usage: tensor train\n\n"
        "Trains as SageMaker's training contract says, under $SAGEMAKER_BASE_DIR (default\n"
        "/opt/ml): the model from code/model.json (Keras JSON, optionally with a compile\n"
        "block), the 'model' hyperparameter, or the short form (hidden_units, activation,\n"
        "output_units, output_activation, dropout, loss, optimizer, learning_rate, ...); data\n"
        "from the channel input/data/training (or train) and optionally validation (or test).\n"
        "Hyperparameters: epochs, batch_size, learning_rate, seed, shuffle, validation_split,\n"
        "device (cpu|gpu|auto), threads. Writes model/model.json + model/model.safetensors,\n"
        "output/data/metrics.json, checkpoints/checkpoint.safetensors every epoch (a rerun\n"
        "resumes from it), and output/failure on failure (exit 1). SIGTERM: the batch\n"
        "finishes, a checkpoint is written, exit 143.\n";

int cmd_train(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc > 1)
        return cmd_usage_error("train", "unexpected argument (configure with hyperparameters)");
    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    struct job j = {0};
    _cleanup_error_ struct dlc_error *err = NULL;
    int r = train(&j, &err);
    job_release(&j);
    if (r == 1) {
        dlc_info("stopped by a signal: checkpoint written, exiting");
        return EXIT_TERMINATED;
    }
    if (r < 0) {
        _cleanup_error_ struct dlc_error *ferr = NULL;
        if (tensor_sm_write_failure(tensor_sm_base_dir(), err ? err->msg : "unknown error", &ferr) <
            0)
            dlc_warn("%s", ferr->msg);
        return cmd_fail("train", &err);
    }
    return 0;
}
