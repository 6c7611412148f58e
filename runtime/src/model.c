/* model.c: a Sequential model's lifetime: building it for an input width (resolving layer
 * widths, initialising weights), counting parameters, and saving/loading it as
 * model.json + model.safetensors. */
#include <errno.h>
#include <string.h>

#include "tensor-internal.h"

#define MODEL_JSON_MAX (16 << 20)

void tensor_model_free(struct tensor_model *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_layers; i++) {
        free(m->layers[i].name);
        free(m->layers[i].kernel);
        free(m->layers[i].bias);
    }
    free(m->layers);
    free(m->name);
    free(m);
}

int64_t tensor_model_outputs(const struct tensor_model *m)
{
    return m->n_layers ? m->layers[m->n_layers - 1].units : m->input_dim;
}

size_t tensor_model_param_count(const struct tensor_model *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_layers; i++) {
        const struct tensor_layer *l = &m->layers[i];
        if (tensor__layer_has_weights(l))
            n += (size_t)(l->in * l->units) + (l->use_bias ? (size_t)l->units : 0);
    }
    return n;
}

static int alloc_weights(struct tensor_layer *l, struct dlc_error **err)
{
    size_t n = 0;
    if (!dlc_size_mul((size_t)l->in, (size_t)l->units, &n) || n > TENSOR_MAX_ELEMENTS)
        return dlc_error_set(err, EFBIG, "layer '%s': %lld x %lld weights are too many", l->name,
                             (long long)l->in, (long long)l->units);
    l->kernel = calloc(n ? n : 1, sizeof(float));
    l->bias = l->use_bias ? calloc((size_t)l->units, sizeof(float)) : NULL;
    if (l->kernel == NULL || (l->use_bias && l->bias == NULL))
        return dlc_error_set(err, ENOMEM, "layer '%s': out of memory", l->name);
    return 0;
}

int tensor_model_build(struct tensor_model *m, int64_t input_dim, uint64_t seed,
                       struct dlc_error **err)
{
    if (m->input_dim != 0 && m->input_dim != input_dim)
        return dlc_error_set(err, EINVAL,
                             "the model expects %lld input features, the data has %lld",
                             (long long)m->input_dim, (long long)input_dim);
    if (m->n_layers == 0)
        return dlc_error_set(err, EINVAL, "the model has no layers");
    m->input_dim = input_dim;
    int64_t width = input_dim;
    for (size_t i = 0; i < m->n_layers; i++) {
        struct tensor_layer *l = &m->layers[i];
        l->in = width;
        if (!tensor__layer_has_weights(l)) {
            l->units = width;
            continue;
        }
        width = l->units;
        if (l->kernel != NULL)
            continue; /* loaded */
        if (alloc_weights(l, err) < 0)
            return -1;
        tensor__layer_init_weights(l, seed, i);
    }
    return 0;
}

static char *weight_name(const struct tensor_layer *l, bool bias)
{
    return xasprintf("%s/%s", l->name, bias ? "bias" : "kernel");
}

/* The safetensors entries of every weight, layer order, kernel then bias. */
static size_t weight_entries(const struct tensor_model *m, struct tensor_st_entry *e)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_layers; i++) {
        const struct tensor_layer *l = &m->layers[i];
        if (!tensor__layer_has_weights(l))
            continue;
        e[n++] = (struct tensor_st_entry){.name = weight_name(l, false),
                                          .ndim = 2,
                                          .shape = {l->in, l->units},
                                          .data = l->kernel};
        if (l->use_bias)
            e[n++] = (struct tensor_st_entry){
                    .name = weight_name(l, true), .ndim = 1, .shape = {l->units}, .data = l->bias};
    }
    return n;
}

int tensor_model_save(const struct tensor_model *m, const char *dir, struct dlc_error **err)
{
    _cleanup_free_ struct tensor_st_entry *e = xcalloc(2 * m->n_layers + 1, sizeof(*e));
    size_t n = weight_entries(m, e);
    _cleanup_free_ char *st_path = dlc_path_join(dir, "model.safetensors");
    _cleanup_free_ char *json_path = dlc_path_join(dir, "model.json");
    json_auto_t *meta = json_pack("{s:s}", "format", "pt");
    json_auto_t *j = tensor_model_to_json(m);
    int r = dlc_mkdir_p(dir, 0755, err);
    if (r == 0)
        r = tensor_safetensors_write(st_path, e, n, meta, err);
    if (r == 0)
        r = dlc_json_write_file_atomic(json_path, j, err);
    for (size_t i = 0; i < n; i++)
        free((char *)e[i].name);
    return r < 0 ? dlc_error_wrap(err, "save model to %s", dir) : 0;
}

static int load_weight(const struct tensor_safetensors *st, const struct tensor_layer *l, bool bias,
                       struct dlc_error **err)
{
    _cleanup_free_ char *name = weight_name(l, bias);
    return tensor_safetensors_get(st, name, bias ? l->bias : l->kernel,
                                  (size_t)(bias ? l->units : l->in * l->units), err);
}

int tensor_model_load(const char *dir, struct tensor_model **ret, struct dlc_error **err)
{
    _cleanup_free_ char *json_path = dlc_path_join(dir, "model.json");
    _cleanup_free_ char *st_path = dlc_path_join(dir, "model.safetensors");
    _cleanup_(tensor_model_freep) struct tensor_model *m = NULL;
    _cleanup_(tensor_safetensors_freep) struct tensor_safetensors *st = NULL;
    json_auto_t *j = dlc_json_load_file(json_path, MODEL_JSON_MAX, err);
    if (j == NULL || tensor_model_from_json(j, &m, err) < 0)
        return dlc_error_wrap(err, "load model from %s", dir);
    if (m->input_dim == 0)
        return dlc_error_set(err, EINVAL, "load model from %s: model.json has no input shape", dir);
    if (tensor_model_build(m, m->input_dim, 0, err) < 0 ||
        tensor_safetensors_open(st_path, &st, err) < 0)
        return dlc_error_wrap(err, "load model from %s", dir);
    /* Every layer's weights must be in the file, each of the right size. */
    for (size_t i = 0; i < m->n_layers; i++) {
        struct tensor_layer *l = &m->layers[i];
        if (!tensor__layer_has_weights(l))
            continue;
        if (load_weight(st, l, false, err) < 0 ||
            (l->use_bias && load_weight(st, l, true, err) < 0))
            return dlc_error_wrap(err, "load model from %s", dir);
    }
    *ret = TAKE_PTR(m);
    return 0;
}
