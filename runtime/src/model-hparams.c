/* model-hparams.c: models and compile settings from hyperparameters. The short form
 * (hidden_units=[256,128] activation=relu output_units=10 loss=... optimizer=adam
 * learning_rate=0.001) builds a whole model; the same compile keys override a model.json's
 * compile block, so a job can change the learning rate without editing the model. */
#include <errno.h>
#include <string.h>

#include "tensor-internal.h"

static bool is_crossentropy(enum tensor_loss l)
{
    return l == TENSOR_LOSS_BINARY_CROSSENTROPY || l == TENSOR_LOSS_CATEGORICAL_CROSSENTROPY ||
           l == TENSOR_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY;
}

static int hp_loss(struct tensor_hparams *hp, bool *found, enum tensor_loss *ret,
                   struct dlc_error **err)
{
    const char *s = NULL;
    if (tensor_hparams_string(hp, "loss", &s, err) < 0)
        return -1;
    *found = s != NULL;
    if (s != NULL && tensor_loss_parse(s, ret, err) < 0)
        return dlc_error_wrap(err, "hyperparameter loss");
    return 0;
}

/* metrics: "accuracy", ["accuracy", "mae"] or "accuracy,mae". */
static int hp_metrics(struct tensor_hparams *hp, struct tensor_compile *c, struct dlc_error **err)
{
    json_t *v = tensor_hparams_json(hp, "metrics");
    if (v == NULL)
        return 0;
    c->n_metrics = 0;
    _cleanup_strv_ char **names = NULL;
    if (json_is_string(v)) {
        _cleanup_free_ char *copy = xstrdup(json_string_value(v));
        char *save = NULL;
        for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
            names = dlc_strv_push(names, t);
    } else {
        json_auto_t *wrap = json_pack("{s:O}", "metrics", v);
        if (dlc_json_get_strv(wrap, "metrics", true, "hyperparameter", &names, err) < 0)
            return -1;
    }
    for (size_t i = 0; names != NULL && names[i] != NULL; i++) {
        enum tensor_metric m;
        if (tensor_metric_parse(names[i], &m, err) < 0)
            return dlc_error_wrap(err, "hyperparameter metrics");
        if (c->n_metrics == TENSOR_MAX_METRICS)
            return dlc_error_set(err, EINVAL, "hyperparameter metrics: more than %d",
                                 TENSOR_MAX_METRICS);
        c->metrics[c->n_metrics++] = m;
    }
    return 0;
}

static int hp_optimizer(struct tensor_hparams *hp, struct tensor_optimizer *o,
                        struct dlc_error **err)
{
    json_t *v = tensor_hparams_json(hp, "optimizer");
    if (v != NULL && tensor_optimizer_from_json(v, o, err) < 0)
        return dlc_error_wrap(err, "hyperparameter optimizer");
    struct tensor_optimizer n = *o;
    if (tensor_hparams_double(hp, "learning_rate", &n.learning_rate, err) < 0 ||
        tensor_hparams_double(hp, "momentum", &n.momentum, err) < 0 ||
        tensor_hparams_bool(hp, "nesterov", &n.nesterov, err) < 0 ||
        tensor_hparams_double(hp, "beta_1", &n.beta_1, err) < 0 ||
        tensor_hparams_double(hp, "beta_2", &n.beta_2, err) < 0 ||
        tensor_hparams_double(hp, "epsilon", &n.epsilon, err) < 0)
        return -1;
    if (!(n.learning_rate > 0) || n.momentum < 0 || n.momentum >= 1 || n.beta_1 < 0 ||
        n.beta_1 >= 1 || n.beta_2 < 0 || n.beta_2 >= 1 || !(n.epsilon > 0))
        return dlc_error_set(err, EINVAL,
                             "hyperparameters: learning_rate and epsilon must be > 0, "
                             "momentum, beta_1 and beta_2 in [0, 1)");
    *o = n;
    return 0;
}

int tensor_model_apply_hparams(struct tensor_model *m, struct tensor_hparams *hp,
                               struct dlc_error **err)
{
    struct tensor_compile c = m->compile;
    if (!c.set)
        tensor_optimizer_defaults(TENSOR_OPT_ADAM, &c.optimizer);
    bool have_loss = false;
    if (hp_loss(hp, &have_loss, &c.loss, err) < 0 || hp_optimizer(hp, &c.optimizer, err) < 0)
        return -1;
    if (!c.set && !have_loss)
        return dlc_error_set(err, EINVAL,
                             "no loss: set the loss hyperparameter (e.g. "
                             "loss=sparse_categorical_crossentropy) or a compile block in "
                             "model.json");
    if (!c.set && is_crossentropy(c.loss))
        c.metrics[c.n_metrics++] = TENSOR_METRIC_ACCURACY;
    if (hp_metrics(hp, &c, err) < 0)
        return -1;
    c.set = true;
    m->compile = c;
    return 0;
}

static void add_layer(struct tensor_model *m, enum tensor_layer_kind kind, const char *name,
                      int64_t units, enum tensor_act act, enum tensor_init kinit, float rate)
{
    m->layers[m->n_layers++] = (struct tensor_layer){.kind = kind,
                                                     .name = xstrdup(name),
                                                     .units = units,
                                                     .act = act,
                                                     .use_bias = true,
                                                     .kernel_init = kinit,
                                                     .bias_init = TENSOR_INIT_ZEROS,
                                                     .rate = rate};
}

struct short_form {
    int64_t *hidden;
    size_t n_hidden;
    enum tensor_act act, out_act;
    enum tensor_init kinit;
    double dropout;
    int64_t outputs;
};

static int read_short_form(struct tensor_hparams *hp, struct short_form *f, struct dlc_error **err)
{
    const char *act = "relu", *out_act = NULL, *kinit = NULL;
    json_t *ki = NULL;
    int64_t *hidden = NULL;
    size_t n_hidden = 0;
    if (tensor_hparams_int_list(hp, "hidden_units", &hidden, &n_hidden, err) < 0)
        return -1;
    if (hidden != NULL) {
        free(f->hidden);
        f->hidden = hidden;
        f->n_hidden = n_hidden;
    }
    if (tensor_hparams_string(hp, "activation", &act, err) < 0 ||
        tensor_hparams_string(hp, "output_activation", &out_act, err) < 0 ||
        tensor_hparams_double(hp, "dropout", &f->dropout, err) < 0 ||
        tensor_hparams_int(hp, "output_units", 1, 1 << 24, &f->outputs, err) < 0 ||
        tensor_hparams_string(hp, "kernel_initializer", &kinit, err) < 0)
        return -1;
    if (tensor_act_parse(act, &f->act, err) < 0 ||
        (out_act != NULL && tensor_act_parse(out_act, &f->out_act, err) < 0))
        return dlc_error_wrap(err, "hyperparameters");
    ki = kinit ? json_string(kinit) : NULL;
    int r = ki ? tensor__init_from_json(ki, "hyperparameter kernel_initializer", &f->kinit, err)
               : 0;
    json_decref(ki);
    if (r < 0)
        return -1;
    if (f->dropout < 0 || f->dropout >= 1)
        return dlc_error_set(err, EINVAL, "hyperparameter dropout: must be in [0, 1)");
    return 0;
}

static int model_from_short_form(struct tensor_hparams *hp, struct short_form *f,
                                 struct tensor_model **ret, struct dlc_error **err)
{
    _cleanup_(tensor_model_freep) struct tensor_model *m = xcalloc(1, sizeof(*m));
    m->name = xstrdup("sequential");
    m->layers = xcalloc(2 * f->n_hidden + 1, sizeof(struct tensor_layer));
    for (size_t i = 0; i < f->n_hidden; i++) {
        _cleanup_free_ char *name = i ? xasprintf("dense_%zu", i) : xstrdup("dense");
        add_layer(m, TENSOR_LAYER_DENSE, name, f->hidden[i], f->act, f->kinit, 0);
        if (f->dropout > 0) {
            _cleanup_free_ char *dn = i ? xasprintf("dropout_%zu", i) : xstrdup("dropout");
            add_layer(m, TENSOR_LAYER_DROPOUT, dn, 0, TENSOR_ACT_LINEAR, f->kinit,
                      (float)f->dropout);
        }
    }
    _cleanup_free_ char *out = f->n_hidden ? xasprintf("dense_%zu", f->n_hidden) : xstrdup("dense");
    add_layer(m, TENSOR_LAYER_DENSE, out, f->outputs, f->out_act, TENSOR_INIT_GLOROT_UNIFORM, 0);
    if (tensor_model_apply_hparams(m, hp, err) < 0)
        return -1;
    *ret = TAKE_PTR(m);
    return 0;
}

int tensor_model_from_hparams(struct tensor_hparams *hp, int64_t label_width, double max_label,
                              struct tensor_model **ret, struct dlc_error **err)
{
    struct short_form f = {.n_hidden = 1, .kinit = TENSOR_INIT_GLOROT_UNIFORM};
    enum tensor_loss loss = TENSOR_LOSS_MSE;
    bool have_loss = false;
    f.hidden = xmalloc(sizeof(int64_t));
    f.hidden[0] = 64;
    if (hp_loss(hp, &have_loss, &loss, err) < 0) {
        free(f.hidden);
        return -1;
    }
    f.out_act = tensor_loss_default_activation(loss);
    f.outputs = loss == TENSOR_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY ? (int64_t)max_label + 1
                                                                    : label_width;
    int r = read_short_form(hp, &f, err);
    if (r == 0)
        r = model_from_short_form(hp, &f, ret, err);
    free(f.hidden);
    return r;
}
