/* model-json.c: models described the Keras way. Reads what tf.keras' model.to_json() writes
 * (Keras 2 and 3 spellings: batch_input_shape/batch_shape, DTypePolicy objects, nested
 * initializer objects), a compile block {"optimizer", "loss", "metrics"} beside it (or the
 * "training_config" Keras saves), and the short form built from hyperparameters alone.
 * Writes the same format back, so a saved model.json can be read by this file again. */
#include <errno.h>
#include <string.h>

#include "tensor-internal.h"

struct parse_ctx {
    struct tensor_model *m;
    int input_rank; /* non-batch dimensions of the declared input */
    int counts[4];  /* per layer kind, for Keras-style default names */
    struct dlc_error **err;
};

static const char *const kind_names[] = {"dense", "dropout", "activation", "flatten"};

/* ---- pieces of a layer config ------------------------------------------------------- */

static int read_shape(const json_t *shape, bool with_batch, struct parse_ctx *c, const char *what)
{
    size_t i;
    json_t *d;
    int64_t prod = 1;
    int rank = 0;
    json_array_foreach(shape, i, d) {
        if (with_batch && i == 0)
            continue;
        if (!json_is_integer(d) || json_integer_value(d) <= 0)
            return dlc_error_set(c->err, EINVAL, "%s: input shape must be positive integers", what);
        prod *= json_integer_value(d);
        rank++;
    }
    if (rank == 0)
        return dlc_error_set(c->err, EINVAL, "%s: empty input shape", what);
    c->m->input_dim = prod;
    c->input_rank = rank;
    return 0;
}

/* batch_input_shape (Keras 2), batch_shape (Keras 3) or input_shape, when present. */
static int read_input_shape(const json_t *cfg, struct parse_ctx *c, const char *what)
{
    json_t *s;
    if ((s = json_object_get(cfg, "batch_input_shape")) != NULL && json_is_array(s))
        return read_shape(s, true, c, what);
    if ((s = json_object_get(cfg, "batch_shape")) != NULL && json_is_array(s))
        return read_shape(s, true, c, what);
    if ((s = json_object_get(cfg, "input_shape")) != NULL && json_is_array(s))
        return read_shape(s, false, c, what);
    return 0;
}

static int check_common(const json_t *cfg, const char *what, struct dlc_error **err)
{
    if (json_is_false(json_object_get(cfg, "trainable")))
        return dlc_error_set(err, EINVAL, "%s: trainable=false is not supported", what);
    json_t *dt = json_object_get(cfg, "dtype");
    if (json_is_object(dt)) /* Keras 3: {"class_name": "DTypePolicy", "config": {"name"}} */
        dt = json_object_get(json_object_get(dt, "config"), "name");
    if (dt != NULL && !json_is_null(dt) && !dlc_streq(json_string_value(dt), "float32"))
        return dlc_error_set(err, EINVAL, "%s: dtype %s is not supported (float32 only)", what,
                             json_is_string(dt) ? json_string_value(dt) : "?");
    return 0;
}

static int read_activation(const json_t *cfg, const char *what, enum tensor_act *ret,
                           struct dlc_error **err)
{
    json_t *a = json_object_get(cfg, "activation");
    if (a != NULL && !json_is_null(a) && !json_is_string(a))
        return dlc_error_set(err, EINVAL, "%s: activation must be a name", what);
    if (tensor_act_parse(json_string_value(a), ret, err) < 0)
        return dlc_error_wrap(err, "%s", what);
    return 0;
}

static int read_dense(const json_t *cfg, struct tensor_layer *l, const char *what,
                      struct dlc_error **err)
{
    static const char *const must_be_null[] = {"kernel_regularizer",   "bias_regularizer",
                                               "activity_regularizer", "kernel_constraint",
                                               "bias_constraint",      "lora_rank"};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(must_be_null); i++) {
        json_t *v = json_object_get(cfg, must_be_null[i]);
        if (v != NULL && !json_is_null(v))
            return dlc_error_set(err, EINVAL, "%s: %s is not supported", what, must_be_null[i]);
    }
    int64_t units = 0;
    if (dlc_json_get_int(cfg, "units", true, what, &units, err) < 0)
        return -1;
    if (units <= 0 || units > (1 << 24))
        return dlc_error_set(err, EINVAL, "%s: units must be in [1, %d]", what, 1 << 24);
    l->units = units;
    l->use_bias = true;
    l->kernel_init = TENSOR_INIT_GLOROT_UNIFORM;
    l->bias_init = TENSOR_INIT_ZEROS;
    json_t *ki = json_object_get(cfg, "kernel_initializer");
    json_t *bi = json_object_get(cfg, "bias_initializer");
    if (dlc_json_get_bool(cfg, "use_bias", false, what, &l->use_bias, err) < 0 ||
        read_activation(cfg, what, &l->act, err) < 0 ||
        (ki != NULL && tensor__init_from_json(ki, what, &l->kernel_init, err) < 0) ||
        (bi != NULL && tensor__init_from_json(bi, what, &l->bias_init, err) < 0))
        return -1;
    return 0;
}

static int read_dropout(const json_t *cfg, struct tensor_layer *l, const char *what,
                        struct dlc_error **err)
{
    double rate = 0;
    if (dlc_json_get_number(cfg, "rate", true, what, &rate, err) < 0)
        return -1;
    if (rate < 0 || rate >= 1)
        return dlc_error_set(err, EINVAL, "%s: rate must be in [0, 1)", what);
    json_t *ns = json_object_get(cfg, "noise_shape");
    if (ns != NULL && !json_is_null(ns))
        return dlc_error_set(err, EINVAL, "%s: noise_shape is not supported", what);
    l->rate = (float)rate;
    return 0;
}

/* ---- layers ----------------------------------------------------------------------------- */

static int layer_kind(const char *cls, enum tensor_layer_kind *ret)
{
    static const struct {
        const char *name;
        enum tensor_layer_kind kind;
    } kinds[] = {{"Dense", TENSOR_LAYER_DENSE},
                 {"Dropout", TENSOR_LAYER_DROPOUT},
                 {"Activation", TENSOR_LAYER_ACTIVATION},
                 {"Flatten", TENSOR_LAYER_FLATTEN}};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(kinds); i++) {
        if (strcmp(cls, kinds[i].name) == 0) {
            *ret = kinds[i].kind;
            return 0;
        }
    }
    return -1;
}

static char *default_name(struct parse_ctx *c, enum tensor_layer_kind k)
{
    int n = c->counts[k]++;
    return n == 0 ? xstrdup(kind_names[k]) : xasprintf("%s_%d", kind_names[k], n);
}

static int parse_layer(const json_t *lj, size_t index, struct parse_ctx *c)
{
    const char *cls = NULL, *name = NULL;
    json_t *cfg = NULL;
    _cleanup_free_ char *what = xasprintf("layer %zu", index);
    if (dlc_json_get_string(lj, "class_name", true, what, &cls, c->err) < 0 ||
        dlc_json_get_object(lj, "config", true, what, &cfg, c->err) < 0 ||
        dlc_json_get_string(cfg, "name", false, what, &name, c->err) < 0)
        return -1;
    if (name != NULL) {
        free(what);
        what = xasprintf("layer %zu ('%s')", index, name);
    }
    if (strcmp(cls, "InputLayer") == 0) {
        if (c->m->n_layers > 0)
            return dlc_error_set(c->err, EINVAL, "%s: InputLayer must come first", what);
        return read_input_shape(cfg, c, what);
    }
    enum tensor_layer_kind kind;
    if (layer_kind(cls, &kind) < 0)
        return dlc_error_set(c->err, EINVAL,
                             "%s: unsupported layer type '%s' (supported: InputLayer, Dense, "
                             "Dropout, Activation, Flatten)",
                             what, cls);
    struct tensor_layer *l = &c->m->layers[c->m->n_layers];
    *l = (struct tensor_layer){.kind = kind};
    int r = check_common(cfg, what, c->err);
    if (r == 0 && c->m->n_layers == 0)
        r = read_input_shape(cfg, c, what);
    if (r == 0 && kind == TENSOR_LAYER_DENSE) {
        if (c->input_rank > 1)
            return dlc_error_set(c->err, EINVAL,
                                 "%s: Dense on a %d-dimensional input is not supported (add a "
                                 "Flatten layer before it)",
                                 what, c->input_rank);
        r = read_dense(cfg, l, what, c->err);
    } else if (r == 0 && kind == TENSOR_LAYER_DROPOUT) {
        r = read_dropout(cfg, l, what, c->err);
    } else if (r == 0 && kind == TENSOR_LAYER_ACTIVATION) {
        r = read_activation(cfg, what, &l->act, c->err);
    } else if (r == 0 && kind == TENSOR_LAYER_FLATTEN) {
        c->input_rank = 1;
    }
    if (r < 0)
        return -1;
    l->name = name ? xstrdup(name) : default_name(c, kind);
    c->m->n_layers++;
    return 0;
}

static int check_unique_names(const struct tensor_model *m, struct dlc_error **err)
{
    for (size_t i = 0; i < m->n_layers; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->layers[i].name, m->layers[j].name) == 0)
                return dlc_error_set(err, EINVAL, "two layers are named '%s'", m->layers[i].name);
    return 0;
}

/* ---- compile ------------------------------------------------------------------------ */

static int loss_from_json(const json_t *j, enum tensor_loss *ret, struct dlc_error **err)
{
    if (json_is_string(j))
        return tensor_loss_parse(json_string_value(j), ret, err);
    static const struct {
        const char *cls;
        enum tensor_loss loss;
    } classes[] = {{"MeanSquaredError", TENSOR_LOSS_MSE},
                   {"MeanAbsoluteError", TENSOR_LOSS_MAE},
                   {"BinaryCrossentropy", TENSOR_LOSS_BINARY_CROSSENTROPY},
                   {"CategoricalCrossentropy", TENSOR_LOSS_CATEGORICAL_CROSSENTROPY},
                   {"SparseCategoricalCrossentropy", TENSOR_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY}};
    const char *cls = json_string_value(json_object_get(j, "class_name"));
    json_t *cfg = json_object_get(j, "config");
    if (json_is_true(json_object_get(cfg, "from_logits")))
        return dlc_error_set(err, EINVAL,
                             "loss from_logits=true is not supported: give the output layer "
                             "its activation");
    json_t *ls = json_object_get(cfg, "label_smoothing");
    if (ls != NULL && json_number_value(ls) != 0)
        return dlc_error_set(err, EINVAL, "loss label_smoothing is not supported");
    for (size_t i = 0; cls != NULL && i < DLC_ARRAY_SIZE(classes); i++) {
        if (strcmp(cls, classes[i].cls) == 0) {
            *ret = classes[i].loss;
            return 0;
        }
    }
    return tensor_loss_parse(cls, ret, err);
}

static int metric_from_json(const json_t *j, enum tensor_metric *ret, struct dlc_error **err)
{
    static const struct {
        const char *cls;
        enum tensor_metric metric;
    } classes[] = {{"BinaryAccuracy", TENSOR_METRIC_BINARY_ACCURACY},
                   {"CategoricalAccuracy", TENSOR_METRIC_CATEGORICAL_ACCURACY},
                   {"SparseCategoricalAccuracy", TENSOR_METRIC_SPARSE_CATEGORICAL_ACCURACY},
                   {"MeanAbsoluteError", TENSOR_METRIC_MAE}};
    if (json_is_object(j)) {
        const char *cls = json_string_value(json_object_get(j, "class_name"));
        for (size_t i = 0; cls != NULL && i < DLC_ARRAY_SIZE(classes); i++) {
            if (strcmp(cls, classes[i].cls) == 0) {
                *ret = classes[i].metric;
                return 0;
            }
        }
        j = json_object_get(json_object_get(j, "config"), "name");
    }
    return tensor_metric_parse(json_string_value(j), ret, err);
}

static int add_metric(struct tensor_compile *c, const json_t *j, struct dlc_error **err)
{
    if (json_is_array(j)) { /* training_config nests one list per output */
        size_t i;
        json_t *e;
        json_array_foreach(j, i, e) {
            if (add_metric(c, e, err) < 0)
                return -1;
        }
        return 0;
    }
    enum tensor_metric m;
    if (metric_from_json(j, &m, err) < 0)
        return -1;
    for (int i = 0; i < c->n_metrics; i++)
        if (c->metrics[i] == m)
            return 0;
    if (c->n_metrics == TENSOR_MAX_METRICS)
        return dlc_error_set(err, EINVAL, "more than %d metrics", TENSOR_MAX_METRICS);
    c->metrics[c->n_metrics++] = m;
    return 0;
}

/* {"loss", "optimizer", "metrics"} or Keras' training_config (optimizer_config). */
static int parse_compile(const json_t *j, struct tensor_compile *ret, struct dlc_error **err)
{
    struct tensor_compile c = {.set = true};
    tensor_optimizer_defaults(TENSOR_OPT_ADAM, &c.optimizer);
    json_t *loss = json_object_get(j, "loss");
    json_t *opt = json_object_get(j, "optimizer");
    if (opt == NULL)
        opt = json_object_get(j, "optimizer_config");
    json_t *metrics = json_object_get(j, "metrics");
    if (!json_is_object(j) || loss == NULL)
        return dlc_error_set(err, EINVAL, "compile: needs a loss");
    if (loss_from_json(loss, &c.loss, err) < 0 ||
        (opt != NULL && tensor_optimizer_from_json(opt, &c.optimizer, err) < 0) ||
        (metrics != NULL && !json_is_null(metrics) && add_metric(&c, metrics, err) < 0))
        return dlc_error_wrap(err, "compile");
    *ret = c;
    return 0;
}

/* ---- the whole model ------------------------------------------------------------------ */

static int parse_layers(const json_t *layers, struct parse_ctx *c)
{
    if (!json_is_array(layers))
        return dlc_error_set(c->err, EINVAL, "model: config.layers must be a list");
    c->m->layers = xcalloc(json_array_size(layers) + 1, sizeof(struct tensor_layer));
    size_t i;
    json_t *lj;
    json_array_foreach(layers, i, lj) {
        if (parse_layer(lj, i, c) < 0)
            return -1;
    }
    return check_unique_names(c->m, c->err);
}

int tensor_model_from_json(const json_t *j, struct tensor_model **ret, struct dlc_error **err)
{
    const char *cls = NULL;
    if (dlc_json_get_string(j, "class_name", true, "model", &cls, err) < 0)
        return -1;
    if (strcmp(cls, "Sequential") != 0)
        return dlc_error_set(err, EINVAL, "model: only Sequential models are supported (got %s)",
                             cls);
    json_t *cfg = json_object_get(j, "config");
    /* Keras 2.0 wrote the layer list as the config itself. */
    json_t *layers = json_is_array(cfg) ? cfg : json_object_get(cfg, "layers");
    _cleanup_(tensor_model_freep) struct tensor_model *m = xcalloc(1, sizeof(*m));
    const char *name = json_string_value(json_object_get(cfg, "name"));
    m->name = xstrdup(name ? name : "sequential");
    struct parse_ctx c = {.m = m, .err = err};
    if (parse_layers(layers, &c) < 0)
        return -1;
    /* Ours, Keras 3's saved compile_config, or Keras 2's training_config. */
    json_t *compile = json_object_get(j, "compile");
    if (compile == NULL)
        compile = json_object_get(j, "compile_config");
    if (compile == NULL)
        compile = json_object_get(j, "training_config");
    if (compile != NULL && !json_is_null(compile) && parse_compile(compile, &m->compile, err) < 0)
        return -1;
    *ret = TAKE_PTR(m);
    return 0;
}

static json_t *initializer_json(enum tensor_init i)
{
    return json_pack("{s:s, s:{}}", "class_name", tensor__init_name(i), "config");
}

static json_t *layer_json(const struct tensor_layer *l)
{
    static const char *const classes[] = {"Dense", "Dropout", "Activation", "Flatten"};
    json_t *cfg = json_pack("{s:s, s:b, s:s}", "name", l->name, "trainable", 1, "dtype", "float32");
    switch (l->kind) {
    case TENSOR_LAYER_DENSE:
        json_object_set_new(cfg, "units", json_integer(l->units));
        json_object_set_new(cfg, "use_bias", json_boolean(l->use_bias));
        json_object_set_new(cfg, "kernel_initializer", initializer_json(l->kernel_init));
        json_object_set_new(cfg, "bias_initializer", initializer_json(l->bias_init));
        json_object_set_new(cfg, "activation", json_string(tensor_act_name(l->act)));
        break;
    case TENSOR_LAYER_ACTIVATION:
        json_object_set_new(cfg, "activation", json_string(tensor_act_name(l->act)));
        break;
    case TENSOR_LAYER_DROPOUT:
        json_object_set_new(cfg, "rate", json_real(l->rate));
        break;
    case TENSOR_LAYER_FLATTEN:
        break;
    }
    return json_pack("{s:s, s:o}", "class_name", classes[l->kind], "config", cfg);
}

static json_t *optimizer_json(const struct tensor_optimizer *o)
{
    if (o->kind == TENSOR_OPT_ADAM)
        return json_pack("{s:s, s:{s:f, s:f, s:f, s:f}}", "class_name", "Adam", "config",
                         "learning_rate", o->learning_rate, "beta_1", o->beta_1, "beta_2",
                         o->beta_2, "epsilon", o->epsilon);
    return json_pack("{s:s, s:{s:f, s:f, s:b}}", "class_name", "SGD", "config", "learning_rate",
                     o->learning_rate, "momentum", o->momentum, "nesterov", o->nesterov);
}

json_t *tensor_model_to_json(const struct tensor_model *m)
{
    json_t *layers = json_array();
    if (m->input_dim > 0)
        json_array_append_new(layers,
                              json_pack("{s:s, s:{s:[n,I], s:s, s:s}}", "class_name", "InputLayer",
                                        "config", "batch_input_shape", (json_int_t)m->input_dim,
                                        "dtype", "float32", "name", "input"));
    for (size_t i = 0; i < m->n_layers; i++)
        json_array_append_new(layers, layer_json(&m->layers[i]));
    json_t *j = json_pack("{s:s, s:{s:s, s:o}}", "class_name", "Sequential", "config", "name",
                          m->name, "layers", layers);
    if (m->compile.set) {
        json_t *metrics = json_array();
        for (int i = 0; i < m->compile.n_metrics; i++)
            json_array_append_new(metrics, json_string(tensor_metric_name(m->compile.metrics[i])));
        json_object_set_new(j, "compile",
                            json_pack("{s:s, s:o, s:o}", "loss", tensor_loss_name(m->compile.loss),
                                      "optimizer", optimizer_json(&m->compile.optimizer), "metrics",
                                      metrics));
    }
    return j;
}
