/* layers.c: the layers a model is made of (Dense, Dropout, Activation, Flatten), read from
 * Keras' layer JSON and written back, and Keras' weight initializers. Options we do not
 * implement (regularizers, constraints, frozen layers, other dtypes) are errors naming the
 * layer: ignoring them would silently train a different model. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "tensor-internal.h"

static const struct {
    const char *snake, *camel;
} init_names[_TENSOR_INIT_MAX] = {
        [TENSOR_INIT_GLOROT_UNIFORM] = {"glorot_uniform", "GlorotUniform"},
        [TENSOR_INIT_GLOROT_NORMAL] = {"glorot_normal", "GlorotNormal"},
        [TENSOR_INIT_HE_NORMAL] = {"he_normal", "HeNormal"},
        [TENSOR_INIT_HE_UNIFORM] = {"he_uniform", "HeUniform"},
        [TENSOR_INIT_ZEROS] = {"zeros", "Zeros"},
        [TENSOR_INIT_ONES] = {"ones", "Ones"},
};

const char *tensor__init_name(enum tensor_init i)
{
    return init_names[i].camel;
}

int tensor__init_from_json(const json_t *j, const char *what, enum tensor_init *ret,
                           struct dlc_error **err)
{
    const char *name = json_string_value(j);
    if (json_is_object(j))
        name = json_string_value(json_object_get(j, "class_name"));
    for (int i = 0; name != NULL && i < _TENSOR_INIT_MAX; i++) {
        if (strcmp(name, init_names[i].snake) == 0 || strcmp(name, init_names[i].camel) == 0) {
            *ret = (enum tensor_init)i;
            return 0;
        }
    }
    return dlc_error_set(err, EINVAL,
                         "%s: unknown initializer '%s' (supported: glorot_uniform, "
                         "glorot_normal, he_normal, he_uniform, zeros, ones)",
                         what, name ? name : "?");
}

/* Keras' truncated normal: redraw beyond two standard deviations; the stddev is scaled by
 * 1/0.8796... so the truncated distribution has the variance asked for. */
static float truncated_normal(struct tensor_rng *r, double stddev)
{
    double x;
    do
        x = tensor__rng_normal(r);
    while (fabs(x) > 2.0);
    return (float)(x * stddev / 0.87962566103423978);
}

static void init_values(float *w, size_t n, enum tensor_init init, double fan_in, double fan_out,
                        struct tensor_rng *r)
{
    double limit;
    for (size_t i = 0; i < n; i++) {
        switch (init) {
        case TENSOR_INIT_GLOROT_UNIFORM:
            limit = sqrt(6.0 / (fan_in + fan_out));
            w[i] = (float)((tensor__rng_uniform(r) * 2 - 1) * limit);
            break;
        case TENSOR_INIT_HE_UNIFORM:
            limit = sqrt(6.0 / fan_in);
            w[i] = (float)((tensor__rng_uniform(r) * 2 - 1) * limit);
            break;
        case TENSOR_INIT_GLOROT_NORMAL:
            w[i] = truncated_normal(r, sqrt(2.0 / (fan_in + fan_out)));
            break;
        case TENSOR_INIT_HE_NORMAL:
            w[i] = truncated_normal(r, sqrt(2.0 / fan_in));
            break;
        case TENSOR_INIT_ZEROS:
            w[i] = 0;
            break;
        case TENSOR_INIT_ONES:
            w[i] = 1;
            break;
        case _TENSOR_INIT_MAX:
            DLC_ASSERT(!"bad initializer");
        }
    }
}

void tensor__layer_init_weights(struct tensor_layer *l, uint64_t seed, size_t index)
{
    struct tensor_rng r;
    tensor__rng_seed(&r, seed, 2 * (uint64_t)index);
    init_values(l->kernel, (size_t)(l->in * l->units), l->kernel_init, (double)l->in,
                (double)l->units, &r);
    if (l->bias != NULL) {
        tensor__rng_seed(&r, seed, 2 * (uint64_t)index + 1);
        /* Keras computes the fans of a 1-D shape as (n, n). */
        init_values(l->bias, (size_t)l->units, l->bias_init, (double)l->units, (double)l->units,
                    &r);
    }
}

bool tensor__layer_has_weights(const struct tensor_layer *l)
{
    return l->kind == TENSOR_LAYER_DENSE;
}
