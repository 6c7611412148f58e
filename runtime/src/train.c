/* train.c: the trainer. tensor__trainer_plan() lays every tensor a training step touches
 * (parameters, gradients, optimizer slots, activations, the batch, two ping-pong gradient
 * buffers) into one backend allocation, once; a step then only runs ops on views of it.
 * All parameters sit in one vector and all gradients in another with the same layout, so
 * the optimizer updates the whole model in one call.
 *
 * Reproducibility: the shuffle order of epoch e is drawn from (seed, e) and dropout masks
 * from (seed, step, layer), so a run resumed from a checkpoint at any batch boundary
 * replays exactly what an uninterrupted run does. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "tensor-internal.h"

#define STREAM_SHUFFLE (1ULL << 40)

/* ---- memory plan ----------------------------------------------------------------------- */

static size_t take(size_t *at, size_t n)
{
    size_t off = *at;
    *at += (n + 15) & ~(size_t)15; /* 64-byte aligned views */
    return off;
}

static void layout_params(struct tensor_trainer *tr, void *arena, size_t *at)
{
    size_t p = take(at, tr->n_params), g = 0;
    tr->params = tensor_2d(arena, p, 1, (int64_t)tr->n_params);
    if (tr->train) {
        g = take(at, tr->n_params);
        tr->grads = tensor_2d(arena, g, 1, (int64_t)tr->n_params);
        const struct tensor_optimizer *o = &tr->m->compile.optimizer;
        if (o->kind == TENSOR_OPT_ADAM || o->momentum > 0)
            tr->slot1 = tensor_2d(arena, take(at, tr->n_params), 1, (int64_t)tr->n_params);
        if (o->kind == TENSOR_OPT_ADAM)
            tr->slot2 = tensor_2d(arena, take(at, tr->n_params), 1, (int64_t)tr->n_params);
    }
    size_t off = 0;
    for (size_t i = 0; i < tr->n_layers; i++) {
        struct plan_layer *pl = &tr->pl[i];
        const struct tensor_layer *l = pl->l;
        if (!tensor__layer_has_weights(l))
            continue;
        pl->w = tensor_2d(arena, p + off, l->in, l->units);
        pl->gw = tensor_2d(arena, g + off, l->in, l->units);
        off += (size_t)(l->in * l->units);
        if (l->use_bias) {
            pl->b = tensor_2d(arena, p + off, 1, l->units);
            pl->gb = tensor_2d(arena, g + off, 1, l->units);
            off += (size_t)l->units;
        }
    }
}

/* Assigns every view; with arena NULL it only measures. Returns the floats needed. */
static size_t layout(struct tensor_trainer *tr, void *arena)
{
    size_t at = 0;
    int64_t B = tr->batch, maxw = tr->m->input_dim;
    layout_params(tr, arena, &at);
    tr->input = tensor_2d(arena, take(&at, (size_t)(B * tr->m->input_dim)), B, tr->m->input_dim);
    if (tr->tcols > 0)
        tr->target = tensor_2d(arena, take(&at, (size_t)(B * tr->tcols)), B, tr->tcols);
    for (size_t i = 0; i < tr->n_layers; i++) {
        struct plan_layer *pl = &tr->pl[i];
        const struct tensor_layer *l = pl->l;
        bool dropout = l->kind == TENSOR_LAYER_DROPOUT && tr->train && l->rate > 0;
        pl->has_out =
                l->kind == TENSOR_LAYER_DENSE || l->kind == TENSOR_LAYER_ACTIVATION || dropout;
        pl->has_aux = dropout || (pl->has_out && l->act == TENSOR_ACT_GELU &&
                                  l->kind != TENSOR_LAYER_DROPOUT && tr->train);
        if (pl->has_out)
            pl->out = tensor_2d(arena, take(&at, (size_t)(B * l->units)), B, l->units);
        if (pl->has_aux)
            pl->aux = tensor_2d(arena, take(&at, (size_t)(B * l->units)), B, l->units);
        maxw = l->units > maxw ? l->units : maxw;
    }
    if (tr->train) {
        tr->delta[0] = tensor_2d(arena, take(&at, (size_t)(B * maxw)), B, maxw);
        tr->delta[1] = tensor_2d(arena, take(&at, (size_t)(B * maxw)), B, maxw);
    }
    tr->loss_out = tensor_2d(arena, take(&at, 1 + TENSOR_MAX_METRICS), 1, 1 + TENSOR_MAX_METRICS);
    return at;
}

/* Asks the backend, once, whether it can run every op on the planned shapes. */
static int check_support(struct tensor_trainer *tr, struct dlc_error **err)
{
    const struct tensor_backend *be = tr->be;
    if (tensor_backend_check(be, TENSOR_OP_GATHER, &tr->input, "batch", err) < 0)
        return -1;
    for (size_t i = 0; i < tr->n_layers; i++) {
        const struct plan_layer *pl = &tr->pl[i];
        if (!pl->has_out)
            continue;
        enum tensor_op op = pl->l->kind == TENSOR_LAYER_DENSE     ? TENSOR_OP_GEMM
                            : pl->l->kind == TENSOR_LAYER_DROPOUT ? TENSOR_OP_DROPOUT
                                                                  : TENSOR_OP_BIAS_ACT;
        if (tensor_backend_check(be, op, &pl->out, pl->l->name, err) < 0 ||
            (op == TENSOR_OP_GEMM && tensor_backend_check(be, op, &pl->w, pl->l->name, err) < 0))
            return -1;
    }
    if (!tr->train)
        return 0;
    enum tensor_op step =
            tr->m->compile.optimizer.kind == TENSOR_OPT_ADAM ? TENSOR_OP_ADAM : TENSOR_OP_SGD;
    return tensor_backend_check(be, step, &tr->params, "parameters", err);
}

static int upload_weights(struct tensor_trainer *tr, struct dlc_error **err)
{
    for (size_t i = 0; i < tr->n_layers; i++) {
        const struct plan_layer *pl = &tr->pl[i];
        if (!tensor__layer_has_weights(pl->l))
            continue;
        if (tr->be->ops->upload(tr->be, &pl->w, pl->l->kernel, err) < 0 ||
            (pl->l->use_bias && tr->be->ops->upload(tr->be, &pl->b, pl->l->bias, err) < 0))
            return -1;
    }
    return 0;
}

static void resolve_compile(struct tensor_trainer *tr)
{
    const struct tensor_compile *c = &tr->m->compile;
    int64_t outputs = tensor_model_outputs(tr->m);
    tr->loss = c->loss;
    tr->n_metrics = c->n_metrics;
    for (int i = 0; i < c->n_metrics; i++)
        tr->metrics[i] = tensor_metric_resolve(c->metrics[i], c->loss, outputs);
    const struct tensor_layer *last = &tr->m->layers[tr->m->n_layers - 1];
    bool act_layer = last->kind == TENSOR_LAYER_DENSE || last->kind == TENSOR_LAYER_ACTIVATION;
    tr->fused = act_layer &&
                ((last->act == TENSOR_ACT_SOFTMAX &&
                  (c->loss == TENSOR_LOSS_CATEGORICAL_CROSSENTROPY ||
                   c->loss == TENSOR_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY)) ||
                 (last->act == TENSOR_ACT_SIGMOID && c->loss == TENSOR_LOSS_BINARY_CROSSENTROPY));
}

int tensor__trainer_plan(struct tensor_backend *be, const struct tensor_model *m, int64_t batch,
                         int64_t tcols, bool train, struct tensor_trainer **ret,
                         struct dlc_error **err)
{
    if (m->input_dim <= 0 || m->n_layers == 0)
        return dlc_error_set(err, EINVAL, "the model is not built");
    if (batch <= 0 || batch > (1 << 24))
        return dlc_error_set(err, EINVAL, "batch size %lld is out of range [1, %d]",
                             (long long)batch, 1 << 24);
    _cleanup_(tensor_trainer_freep) struct tensor_trainer *tr = xcalloc(1, sizeof(*tr));
    tr->be = be;
    tr->m = m;
    tr->train = train;
    tr->batch = batch;
    tr->tcols = tcols;
    tr->n_layers = m->n_layers;
    tr->n_params = tensor_model_param_count(m);
    tr->pl = xcalloc(m->n_layers, sizeof(*tr->pl));
    tr->first_weighted = -1;
    for (size_t i = 0; i < m->n_layers; i++) {
        tr->pl[i].l = &m->layers[i];
        if (tr->first_weighted < 0 && tensor__layer_has_weights(&m->layers[i]))
            tr->first_weighted = (ssize_t)i;
    }
    if (train && tr->first_weighted < 0)
        return dlc_error_set(err, EINVAL, "the model has no trainable layer");
    if (train)
        resolve_compile(tr);
    size_t floats = layout(tr, NULL), bytes = 0;
    if (!dlc_size_mul(floats, sizeof(float), &bytes))
        return dlc_error_set(err, EFBIG, "the model is too large");
    tr->arena = be->ops->alloc(be, bytes, err);
    if (tr->arena == NULL)
        return dlc_error_wrap(err, "plan memory for batch size %lld", (long long)batch);
    layout(tr, tr->arena);
    if (check_support(tr, err) < 0 || upload_weights(tr, err) < 0)
        return -1;
    *ret = TAKE_PTR(tr);
    return 0;
}

void tensor_trainer_free(struct tensor_trainer *tr)
{
    if (tr == NULL)
        return;
    if (tr->arena != NULL)
        tr->be->ops->free(tr->be, tr->arena);
    void (*release)(struct tensor_backend *, void *) =
            tr->data_wrapped ? tr->be->ops->unwrap : tr->be->ops->free;
    if (release != NULL && tr->x_mem != NULL)
        release(tr->be, tr->x_mem);
    if (release != NULL && tr->y_mem != NULL)
        release(tr->be, tr->y_mem);
    free(tr->perm);
    free(tr->pl);
    free(tr);
}

/* ---- data ------------------------------------------------------------------------------ */

static int check_labels(const struct tensor_trainer *tr, const struct tensor_array *y,
                        const char *what, struct dlc_error **err)
{
    int64_t k = tensor_model_outputs(tr->m);
    bool sparse = tr->loss == TENSOR_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY;
    for (int i = 0; i < tr->n_metrics; i++)
        sparse = sparse || tr->metrics[i] == TENSOR_METRIC_SPARSE_CATEGORICAL_ACCURACY;
    if (!sparse) {
        if (y->cols != k && y->cols != 1)
            return dlc_error_set(err, EINVAL,
                                 "%s: labels have %lld columns, the model has %lld outputs", what,
                                 (long long)y->cols, (long long)k);
        if (y->cols != k && tr->loss != TENSOR_LOSS_MSE && tr->loss != TENSOR_LOSS_MAE)
            return dlc_error_set(err, EINVAL,
                                 "%s: loss %s needs %lld label columns (one-hot), the labels have "
                                 "%lld (use sparse_categorical_crossentropy for class indices)",
                                 what, tensor_loss_name(tr->loss), (long long)k,
                                 (long long)y->cols);
        return 0;
    }
    if (y->cols != 1)
        return dlc_error_set(err, EINVAL,
                             "%s: sparse labels must be one class index per row, the labels have "
                             "%lld columns",
                             what, (long long)y->cols);
    for (int64_t i = 0; i < y->rows; i++) {
        float v = y->data[i];
        if (!(v >= 0) || v >= (float)k || v != floorf(v))
            return dlc_error_set(err, EINVAL,
                                 "%s: label row %lld is %g, not a class index in [0, %lld)", what,
                                 (long long)i, (double)v, (long long)k);
    }
    return 0;
}

static int check_data(const struct tensor_trainer *tr, const struct tensor_array *x,
                      const struct tensor_array *y, const char *what, struct dlc_error **err)
{
    if (x->rows == 0)
        return dlc_error_set(err, EINVAL, "%s is empty", what);
    if (x->cols != tr->m->input_dim)
        return dlc_error_set(err, EINVAL, "the model expects %lld input features, %s has %lld",
                             (long long)tr->m->input_dim, what, (long long)x->cols);
    if (y->rows != x->rows)
        return dlc_error_set(err, EINVAL, "%s: %lld feature rows but %lld label rows", what,
                             (long long)x->rows, (long long)y->rows);
    if (y->cols != tr->tcols)
        return dlc_error_set(err, EINVAL, "%s: labels have %lld columns, expected %lld", what,
                             (long long)y->cols, (long long)tr->tcols);
    return check_labels(tr, y, what, err);
}

static void *bind_array(struct tensor_trainer *tr, const struct tensor_array *a, struct tensor *ret,
                        struct dlc_error **err)
{
    const struct tensor_backend_ops *ops = tr->be->ops;
    size_t bytes = (size_t)(a->rows * a->cols) * sizeof(float);
    void *mem = ops->wrap ? ops->wrap(tr->be, a->data, bytes, err) : ops->alloc(tr->be, bytes, err);
    if (mem == NULL)
        return NULL;
    *ret = tensor_2d(mem, 0, a->rows, a->cols);
    if (ops->wrap == NULL && ops->upload(tr->be, ret, a->data, err) < 0) {
        ops->free(tr->be, mem);
        return NULL;
    }
    return mem;
}

int tensor_trainer_new(struct tensor_backend *be, struct tensor_model *m,
                       const struct tensor_array *x, const struct tensor_array *y,
                       const struct tensor_train_config *cfg, struct tensor_trainer **ret,
                       struct dlc_error **err)
{
    if (!m->compile.set)
        return dlc_error_set(err, EINVAL, "the model has no loss and optimizer (compile block)");
    _cleanup_(tensor_trainer_freep) struct tensor_trainer *tr = NULL;
    /* A batch larger than the data is one batch: plan no more rows than there are. */
    int64_t batch = cfg->batch_size < x->rows || x->rows == 0 ? cfg->batch_size : x->rows;
    if (tensor__trainer_plan(be, m, batch, y->cols, true, &tr, err) < 0)
        return -1;
    DLC_ASSERT(tr != NULL);
    if (check_data(tr, x, y, "the training data", err) < 0)
        return -1;
    tr->model_out = m;
    tr->cfg = *cfg;
    tr->rows = x->rows;
    tr->data_wrapped = be->ops->wrap != NULL;
    tr->x_mem = bind_array(tr, x, &tr->x_all, err);
    if (tr->x_mem == NULL)
        return dlc_error_wrap(err, "training data");
    tr->y_mem = bind_array(tr, y, &tr->y_all, err);
    if (tr->y_mem == NULL)
        return dlc_error_wrap(err, "training labels");
    tr->perm = xcalloc((size_t)x->rows, sizeof(int64_t));
    *ret = TAKE_PTR(tr);
    return 0;
}

/* ---- forward and backward ----------------------------------------------------------- */

#define OPS(tr) ((tr)->be->ops)

static int forward_layer(struct tensor_trainer *tr, size_t i, int64_t n, bool training,
                         struct tensor *cur, struct dlc_error **err)
{
    struct plan_layer *pl = &tr->pl[i];
    const struct tensor_layer *l = pl->l;
    struct tensor out = pl->has_out ? tensor_rows_view(&pl->out, 0, n) : *cur;
    struct tensor aux = pl->has_aux ? tensor_rows_view(&pl->aux, 0, n) : out;
    struct tensor_backend *be = tr->be;
    int r = 0;
    switch (l->kind) {
    case TENSOR_LAYER_DENSE:
        r = OPS(tr)->gemm(be, false, false, 1.0f, cur, &pl->w, 0.0f, &out, err);
        if (r == 0)
            r = OPS(tr)->bias_act(be, &out, &out, l->use_bias ? &pl->b : NULL, l->act,
                                  pl->has_aux ? &aux : NULL, err);
        break;
    case TENSOR_LAYER_ACTIVATION:
        r = OPS(tr)->bias_act(be, cur, &out, NULL, l->act, pl->has_aux ? &aux : NULL, err);
        break;
    case TENSOR_LAYER_DROPOUT:
        if (training && pl->has_out)
            r = OPS(tr)->dropout(be, cur, &out, &aux, l->rate, tr->cfg.seed,
                                 (uint64_t)tr->pos.step << 16 | i, err);
        else
            out = *cur; /* inference: identity */
        break;
    case TENSOR_LAYER_FLATTEN:
        break;
    }
    *cur = out;
    return r;
}

int tensor__trainer_forward(struct tensor_trainer *tr, int64_t n, bool training,
                            const struct tensor **ret_out, struct dlc_error **err)
{
    struct tensor cur = tensor_rows_view(&tr->input, 0, n);
    for (size_t i = 0; i < tr->n_layers; i++) {
        tr->pl[i].in_v = cur;
        if (forward_layer(tr, i, n, training, &cur, err) < 0)
            return dlc_error_wrap(err, "layer '%s'", tr->pl[i].l->name);
        tr->pl[i].out_v = cur;
    }
    *ret_out = &tr->pl[tr->n_layers - 1].out_v;
    return 0;
}

static int backward_layer(struct tensor_trainer *tr, size_t i, struct tensor *g, int *cur_delta,
                          struct dlc_error **err)
{
    struct plan_layer *pl = &tr->pl[i];
    const struct tensor_layer *l = pl->l;
    struct tensor_backend *be = tr->be;
    int64_t n = tensor_rows(g);
    bool fused_here = i == tr->n_layers - 1 && tr->fused;
    const struct tensor *aux = pl->has_aux ? &pl->aux : NULL;
    struct tensor auxv = aux ? tensor_rows_view(aux, 0, n) : (struct tensor){0};
    switch (l->kind) {
    case TENSOR_LAYER_ACTIVATION:
        return fused_here
                       ? 0
                       : OPS(tr)->act_backward(be, l->act, &pl->out_v, aux ? &auxv : NULL, g, err);
    case TENSOR_LAYER_DROPOUT:
        return pl->has_out ? OPS(tr)->mul(be, g, &auxv, err) : 0;
    case TENSOR_LAYER_FLATTEN:
        return 0;
    case TENSOR_LAYER_DENSE:
        break;
    }
    if (!fused_here &&
        OPS(tr)->act_backward(be, l->act, &pl->out_v, aux ? &auxv : NULL, g, err) < 0)
        return -1;
    if (OPS(tr)->gemm(be, true, false, 1.0f, &pl->in_v, g, 0.0f, &pl->gw, err) < 0 ||
        (l->use_bias && OPS(tr)->sum_rows(be, g, 0.0f, &pl->gb, err) < 0))
        return -1;
    if ((ssize_t)i == tr->first_weighted)
        return 0; /* nothing upstream has parameters: skip the input gradient */
    *cur_delta ^= 1;
    struct tensor next =
            tensor_2d(tr->delta[*cur_delta].mem, tr->delta[*cur_delta].offset, n, l->in);
    if (OPS(tr)->gemm(be, false, true, 1.0f, g, &pl->w, 0.0f, &next, err) < 0)
        return -1;
    *g = next;
    return 0;
}

/* Loss of the last forward pass over n rows; with grad, backpropagates into tr->grads. */
static int loss_backward(struct tensor_trainer *tr, int64_t n, const struct tensor *out, bool grad,
                         float sums[1 + TENSOR_MAX_METRICS], struct dlc_error **err)
{
    struct tensor target = tensor_rows_view(&tr->target, 0, n);
    struct tensor g = {0};
    if (grad)
        g = tensor_2d(tr->delta[0].mem, tr->delta[0].offset, n, tensor_cols(out));
    struct tensor_loss_args a = {.loss = tr->loss,
                                 .fused = tr->fused,
                                 .y = out,
                                 .target = &target,
                                 .grad = grad ? &g : NULL,
                                 .out = &tr->loss_out,
                                 .n_metrics = tr->n_metrics};
    memcpy(a.metrics, tr->metrics, sizeof(a.metrics));
    if (OPS(tr)->loss(tr->be, &a, err) < 0 ||
        OPS(tr)->download(tr->be, &tr->loss_out, sums, err) < 0)
        return dlc_error_wrap(err, "loss");
    int cur = 0;
    for (ssize_t i = (ssize_t)tr->n_layers - 1; grad && i >= tr->first_weighted; i--)
        if (backward_layer(tr, (size_t)i, &g, &cur, err) < 0)
            return dlc_error_wrap(err, "layer '%s' backward", tr->pl[i].l->name);
    return 0;
}

static int optimizer_step(struct tensor_trainer *tr, struct dlc_error **err)
{
    const struct tensor_optimizer *o = &tr->m->compile.optimizer;
    if (o->kind == TENSOR_OPT_ADAM) {
        double t = (double)(tr->pos.step + 1);
        struct tensor_adam_args a = {
                .lr_t = (float)(o->learning_rate * sqrt(1 - pow(o->beta_2, t)) /
                                (1 - pow(o->beta_1, t))),
                .beta_1 = (float)o->beta_1,
                .beta_2 = (float)o->beta_2,
                .epsilon = (float)o->epsilon};
        return OPS(tr)->adam_step(tr->be, &tr->params, &tr->grads, &tr->slot1, &tr->slot2, &a, err);
    }
    struct tensor_sgd_args a = {
            .lr = (float)o->learning_rate, .momentum = (float)o->momentum, .nesterov = o->nesterov};
    return OPS(tr)->sgd_step(tr->be, &tr->params, &tr->grads, o->momentum > 0 ? &tr->slot1 : NULL,
                             &a, err);
}

/* ---- epochs ------------------------------------------------------------------------------ */

static void shuffle_order(struct tensor_trainer *tr)
{
    for (int64_t i = 0; i < tr->rows; i++)
        tr->perm[i] = i;
    if (!tr->cfg.shuffle)
        return;
    struct tensor_rng r;
    tensor__rng_seed(&r, tr->cfg.seed, STREAM_SHUFFLE + (uint64_t)tr->pos.epoch);
    for (int64_t i = tr->rows - 1; i > 0; i--) {
        int64_t j = (int64_t)tensor__rng_below(&r, (uint64_t)i + 1);
        int64_t t = tr->perm[i];
        tr->perm[i] = tr->perm[j];
        tr->perm[j] = t;
    }
}

static void fill_metrics(const struct tensor_trainer *tr, const double *sums, int64_t rows,
                         struct tensor_metrics *ret)
{
    *ret = (struct tensor_metrics){.n_metrics = tr->n_metrics, .rows = rows};
    double d = rows > 0 ? (double)rows : 1;
    ret->loss = sums[0] / d;
    for (int i = 0; i < tr->n_metrics; i++) {
        ret->metrics[i] = tr->metrics[i];
        ret->values[i] = sums[1 + i] / d;
    }
}

/* One optimizer step on the rows perm[row0 .. row0 + n). */
static int train_batch(struct tensor_trainer *tr, int64_t row0, int64_t n,
                       float sums[1 + TENSOR_MAX_METRICS], struct dlc_error **err)
{
    struct tensor in = tensor_rows_view(&tr->input, 0, n);
    struct tensor tg = tensor_rows_view(&tr->target, 0, n);
    const struct tensor *out = NULL;
    if (OPS(tr)->gather(tr->be, &tr->x_all, tr->perm + row0, &in, err) < 0 ||
        OPS(tr)->gather(tr->be, &tr->y_all, tr->perm + row0, &tg, err) < 0 ||
        tensor__trainer_forward(tr, n, true, &out, err) < 0 ||
        loss_backward(tr, n, out, true, sums, err) < 0)
        return -1;
    return optimizer_step(tr, err);
}

int64_t tensor_trainer_batches(const struct tensor_trainer *tr)
{
    return (tr->rows + tr->batch - 1) / tr->batch;
}

int tensor_trainer_run_epoch(struct tensor_trainer *tr, const volatile sig_atomic_t *stop,
                             tensor_batch_fn cb, void *userdata, struct tensor_metrics *ret,
                             struct dlc_error **err)
{
    struct tensor_train_position *pos = &tr->pos;
    int64_t nb = tensor_trainer_batches(tr);
    shuffle_order(tr);
    while (pos->batch < nb) {
        int64_t row0 = pos->batch * tr->batch;
        int64_t n = tr->rows - row0 < tr->batch ? tr->rows - row0 : tr->batch;
        float sums[1 + TENSOR_MAX_METRICS] = {0};
        if (train_batch(tr, row0, n, sums, err) < 0)
            return dlc_error_wrap(err, "epoch %d, batch %lld", pos->epoch + 1,
                                  (long long)pos->batch + 1);
        pos->step++;
        pos->batch++;
        pos->rows += n;
        for (int i = 0; i <= tr->n_metrics; i++)
            pos->sums[i] += sums[i];
        if (cb != NULL) {
            struct tensor_metrics running;
            fill_metrics(tr, pos->sums, pos->rows, &running);
            cb(pos->batch, nb, &running, userdata);
        }
        if (stop != NULL && *stop && pos->batch < nb)
            return 0;
    }
    fill_metrics(tr, pos->sums, pos->rows, ret);
    pos->epoch++;
    pos->batch = 0;
    pos->rows = 0;
    memset(pos->sums, 0, sizeof(pos->sums));
    return 1;
}

int tensor_trainer_evaluate(struct tensor_trainer *tr, const struct tensor_array *x,
                            const struct tensor_array *y, struct tensor_metrics *ret,
                            struct dlc_error **err)
{
    if (check_data(tr, x, y, "the evaluation data", err) < 0)
        return -1;
    double total[1 + TENSOR_MAX_METRICS] = {0};
    for (int64_t row0 = 0; row0 < x->rows; row0 += tr->batch) {
        int64_t n = x->rows - row0 < tr->batch ? x->rows - row0 : tr->batch;
        struct tensor in = tensor_rows_view(&tr->input, 0, n);
        struct tensor tg = tensor_rows_view(&tr->target, 0, n);
        const struct tensor *out = NULL;
        float sums[1 + TENSOR_MAX_METRICS] = {0};
        if (OPS(tr)->upload(tr->be, &in, x->data + row0 * x->cols, err) < 0 ||
            OPS(tr)->upload(tr->be, &tg, y->data + row0 * y->cols, err) < 0 ||
            tensor__trainer_forward(tr, n, false, &out, err) < 0 ||
            loss_backward(tr, n, out, false, sums, err) < 0)
            return dlc_error_wrap(err, "evaluate");
        for (int i = 0; i <= tr->n_metrics; i++)
            total[i] += sums[i];
    }
    fill_metrics(tr, total, x->rows, ret);
    return 0;
}

int tensor_trainer_gradients(struct tensor_trainer *tr, int64_t row0, int64_t n, double *ret_loss,
                             struct dlc_error **err)
{
    DLC_ASSERT(n > 0 && n <= tr->batch && row0 >= 0 && row0 + n <= tr->rows);
    for (int64_t i = 0; i < n; i++)
        tr->perm[i] = row0 + i;
    struct tensor in = tensor_rows_view(&tr->input, 0, n);
    struct tensor tg = tensor_rows_view(&tr->target, 0, n);
    const struct tensor *out = NULL;
    float sums[1 + TENSOR_MAX_METRICS] = {0};
    if (OPS(tr)->gather(tr->be, &tr->x_all, tr->perm, &in, err) < 0 ||
        OPS(tr)->gather(tr->be, &tr->y_all, tr->perm, &tg, err) < 0 ||
        tensor__trainer_forward(tr, n, true, &out, err) < 0 ||
        loss_backward(tr, n, out, true, sums, err) < 0)
        return -1;
    *ret_loss = sums[0] / (double)n;
    return 0;
}

/* ---- parameters ------------------------------------------------------------------------- */

size_t tensor_trainer_param_count(const struct tensor_trainer *tr)
{
    return tr->n_params;
}

int tensor_trainer_get_params(struct tensor_trainer *tr, float *out, struct dlc_error **err)
{
    return OPS(tr)->download(tr->be, &tr->params, out, err);
}

int tensor_trainer_get_grads(struct tensor_trainer *tr, float *out, struct dlc_error **err)
{
    return OPS(tr)->download(tr->be, &tr->grads, out, err);
}

int tensor_trainer_set_params(struct tensor_trainer *tr, const float *in, struct dlc_error **err)
{
    return OPS(tr)->upload(tr->be, &tr->params, in, err);
}

int tensor_trainer_sync_model(struct tensor_trainer *tr, struct dlc_error **err)
{
    DLC_ASSERT(tr->model_out != NULL);
    for (size_t i = 0; i < tr->n_layers; i++) {
        const struct plan_layer *pl = &tr->pl[i];
        struct tensor_layer *l = &tr->model_out->layers[i];
        if (!tensor__layer_has_weights(l))
            continue;
        if (OPS(tr)->download(tr->be, &pl->w, l->kernel, err) < 0 ||
            (l->use_bias && OPS(tr)->download(tr->be, &pl->b, l->bias, err) < 0))
            return dlc_error_wrap(err, "download weights");
    }
    return 0;
}

const struct tensor_train_position *tensor_trainer_position(const struct tensor_trainer *tr)
{
    return &tr->pos;
}

double tensor_trainer_flops(const struct tensor_trainer *tr, int64_t rows)
{
    double per_row = 0;
    for (size_t i = 0; i < tr->n_layers; i++) {
        const struct tensor_layer *l = tr->pl[i].l;
        if (!tensor__layer_has_weights(l))
            continue;
        double mac = 2.0 * (double)l->in * (double)l->units;
        per_row += 2 * mac; /* forward, weight gradient */
        if ((ssize_t)i != tr->first_weighted)
            per_row += mac; /* input gradient */
    }
    return per_row * (double)rows;
}
