/* checkpoint.c: training checkpoints as one safetensors file: the parameter vector, the
 * optimizer slots, and in its metadata the position (epoch, batch, step, running sums),
 * the configuration it belongs to and the caller's own state. Written atomically, so a
 * kill at any moment leaves the previous checkpoint or the new one. Restoring all of it
 * makes a resumed run continue bit-identically. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "tensor-internal.h"

#define CHECKPOINT_FORMAT "dlc-tensor-checkpoint/1"
#define CHECKPOINT_SLOTS  3

/* What must match for a checkpoint to be resumed by this trainer, with how to say it. */
static json_t *config_json(const struct tensor_trainer *tr)
{
    json_auto_t *model = tensor_model_to_json(tr->m);
    _cleanup_free_ char *ms = dlc_json_dumps(model, NULL);
    char seed[24];
    snprintf(seed, sizeof(seed), "%" PRIu64, tr->cfg.seed);
    return json_pack("{s:s, s:I, s:I, s:b, s:s}", "model", ms, "batch_size",
                     (json_int_t)tr->cfg.batch_size, "rows", (json_int_t)tr->rows, "shuffle",
                     tr->cfg.shuffle, "seed", seed);
}

static json_t *position_json(const struct tensor_train_position *p)
{
    json_t *sums = json_array();
    for (size_t i = 0; i < DLC_ARRAY_SIZE(p->sums); i++) {
        json_t *v = json_real(p->sums[i]); /* NULL for NaN/inf (a diverged loss) */
        json_array_append_new(sums, v ? v : json_null());
    }
    return json_pack("{s:i, s:I, s:I, s:I, s:o}", "epoch", p->epoch, "batch", (json_int_t)p->batch,
                     "step", (json_int_t)p->step, "rows", (json_int_t)p->rows, "sums", sums);
}

/* The parameter vector and the optimizer slots this trainer has. */
static size_t slots(struct tensor_trainer *tr, struct tensor *ret[CHECKPOINT_SLOTS],
                    const char *names[CHECKPOINT_SLOTS])
{
    size_t n = 0;
    ret[n] = &tr->params, names[n++] = "params";
    if (tr->slot1.mem != NULL)
        ret[n] = &tr->slot1, names[n++] = "optimizer/slot1";
    if (tr->slot2.mem != NULL)
        ret[n] = &tr->slot2, names[n++] = "optimizer/slot2";
    return n;
}

static json_t *metadata_json(struct tensor_trainer *tr, const json_t *state)
{
    json_auto_t *cfg = config_json(tr);
    json_auto_t *pos = position_json(&tr->pos);
    _cleanup_free_ char *cs = dlc_json_dumps(cfg, NULL);
    _cleanup_free_ char *ps = dlc_json_dumps(pos, NULL);
    _cleanup_free_ char *ss = dlc_json_dumps(state ? state : json_null(), NULL);
    return json_pack("{s:s, s:s, s:s, s:s}", "format", CHECKPOINT_FORMAT, "config", cs, "position",
                     ps, "state", ss);
}

int tensor_checkpoint_save(struct tensor_trainer *tr, const char *path, const json_t *state,
                           struct dlc_error **err)
{
    struct tensor *t[CHECKPOINT_SLOTS];
    const char *names[CHECKPOINT_SLOTS];
    size_t n = slots(tr, t, names);
    struct tensor_st_entry e[CHECKPOINT_SLOTS];
    float *host[CHECKPOINT_SLOTS] = {NULL};
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        host[i] = xmalloc((tr->n_params ? tr->n_params : 1) * sizeof(float));
        r = tr->be->ops->download(tr->be, t[i], host[i], err);
        e[i] = (struct tensor_st_entry){
                .name = names[i], .ndim = 1, .shape = {(int64_t)tr->n_params}, .data = host[i]};
    }
    json_auto_t *meta = metadata_json(tr, state);
    if (r == 0)
        r = tensor_safetensors_write(path, e, n, meta, err);
    for (size_t i = 0; i < n; i++)
        free(host[i]);
    return r < 0 ? dlc_error_wrap(err, "write checkpoint") : 0;
}

static json_t *meta_json(const struct tensor_safetensors *st, const char *key, const char *path,
                         struct dlc_error **err)
{
    const char *s = tensor_safetensors_meta(st, key);
    if (s == NULL) {
        dlc_error_set(err, EINVAL, "%s: not a checkpoint (no '%s' metadata)", path, key);
        return NULL;
    }
    return dlc_json_loadb(s, strlen(s), path, err);
}

static int open_checkpoint(const char *path, struct tensor_safetensors **ret,
                           struct dlc_error **err)
{
    _cleanup_(tensor_safetensors_freep) struct tensor_safetensors *st = NULL;
    if (tensor_safetensors_open(path, &st, err) < 0)
        return -1;
    if (!dlc_streq(tensor_safetensors_meta(st, "format"), CHECKPOINT_FORMAT))
        return dlc_error_set(err, EINVAL, "%s: not a %s file", path, CHECKPOINT_FORMAT);
    *ret = TAKE_PTR(st);
    return 0;
}

int tensor_checkpoint_peek(const char *path, json_t **ret_state, struct dlc_error **err)
{
    _cleanup_(tensor_safetensors_freep) struct tensor_safetensors *st = NULL;
    if (open_checkpoint(path, &st, err) < 0)
        return -1;
    json_t *state = meta_json(st, "state", path, err);
    if (state == NULL)
        return -1;
    *ret_state = state;
    return 0;
}

/* Names the first setting that differs, in the user's terms. */
static int compare_config(const json_t *want, const json_t *have, const char *path,
                          struct dlc_error **err)
{
    static const char *const keys[] = {"model", "batch_size", "rows", "shuffle", "seed"};
    static const char *const what[] = {"a different model or compile settings",
                                       "another batch_size", "another number of training rows",
                                       "another shuffle setting", "another seed"};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(keys); i++) {
        if (!json_equal(json_object_get(want, keys[i]), json_object_get(have, keys[i])))
            return dlc_error_set(err, EINVAL,
                                 "checkpoint %s was written for %s: remove it to start over", path,
                                 what[i]);
    }
    return 0;
}

static int read_position(const json_t *j, struct tensor_train_position *p, const char *path,
                         struct dlc_error **err)
{
    struct tensor_train_position n = {0};
    json_int_t epoch = 0, batch = 0, step = 0, rows = 0;
    json_t *sums = NULL;
    json_error_t jerr;
    if (json_unpack_ex((json_t *)j, &jerr, 0, "{s:I, s:I, s:I, s:I, s:o}", "epoch", &epoch, "batch",
                       &batch, "step", &step, "rows", &rows, "sums", &sums) < 0 ||
        json_array_size(sums) != DLC_ARRAY_SIZE(n.sums) || epoch < 0 || batch < 0 || step < 0)
        return dlc_error_set(err, EINVAL, "%s: bad position metadata", path);
    n.epoch = (int)epoch;
    n.batch = batch;
    n.step = step;
    n.rows = rows;
    for (size_t i = 0; i < DLC_ARRAY_SIZE(n.sums); i++)
        n.sums[i] = json_is_null(json_array_get(sums, i))
                            ? NAN
                            : json_number_value(json_array_get(sums, i));
    *p = n;
    return 0;
}

int tensor_checkpoint_load(struct tensor_trainer *tr, const char *path, json_t **ret_state,
                           struct dlc_error **err)
{
    _cleanup_(tensor_safetensors_freep) struct tensor_safetensors *st = NULL;
    if (open_checkpoint(path, &st, err) < 0)
        return -1;
    json_auto_t *have = meta_json(st, "config", path, err);
    json_auto_t *want = config_json(tr);
    json_auto_t *pos = have ? meta_json(st, "position", path, err) : NULL;
    json_auto_t *state = pos ? meta_json(st, "state", path, err) : NULL;
    struct tensor_train_position p;
    if (state == NULL || compare_config(want, have, path, err) < 0 ||
        read_position(pos, &p, path, err) < 0)
        return -1;
    struct tensor *t[CHECKPOINT_SLOTS];
    const char *names[CHECKPOINT_SLOTS];
    size_t n = slots(tr, t, names);
    _cleanup_free_ float *host = xmalloc((tr->n_params ? tr->n_params : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        if (tensor_safetensors_get(st, names[i], host, tr->n_params, err) < 0 ||
            tr->be->ops->upload(tr->be, t[i], host, err) < 0)
            return -1;
    }
    tr->pos = p;
    *ret_state = TAKE_PTR(state);
    return 0;
}
