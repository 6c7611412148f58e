/* optimizers.c: SGD (momentum, Nesterov) and Adam with Keras' defaults and update
 * formulas (tf.keras >= 2.11), their configuration in JSON, and the CPU kernels. The
 * trainer keeps all parameters in one contiguous vector, so one call updates the model. */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "tensor-internal.h"

void tensor_optimizer_defaults(enum tensor_optimizer_kind kind, struct tensor_optimizer *ret)
{
    *ret = (struct tensor_optimizer){.kind = kind, .beta_1 = 0.9, .beta_2 = 0.999, .epsilon = 1e-7};
    ret->learning_rate = kind == TENSOR_OPT_ADAM ? 0.001 : 0.01;
}

static int kind_from_name(const char *s, enum tensor_optimizer_kind *ret, struct dlc_error **err)
{
    if (strcasecmp(s, "adam") == 0)
        *ret = TENSOR_OPT_ADAM;
    else if (strcasecmp(s, "sgd") == 0)
        *ret = TENSOR_OPT_SGD;
    else
        return dlc_error_set(err, EINVAL, "unknown optimizer '%s' (supported: sgd, adam)", s);
    return 0;
}

/* Options that would change the update and that we do not implement must not be ignored. */
static int check_unsupported(const json_t *cfg, struct dlc_error **err)
{
    static const char *const must_be_null[] = {"weight_decay", "clipnorm", "clipvalue",
                                               "global_clipnorm", "decay"};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(must_be_null); i++) {
        json_t *v = json_object_get(cfg, must_be_null[i]);
        if (v != NULL && !json_is_null(v) && !(json_is_number(v) && json_number_value(v) == 0))
            return dlc_error_set(err, EINVAL, "optimizer option '%s' is not supported",
                                 must_be_null[i]);
    }
    static const char *const must_be_false[] = {"amsgrad", "use_ema"};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(must_be_false); i++)
        if (json_is_true(json_object_get(cfg, must_be_false[i])))
            return dlc_error_set(err, EINVAL, "optimizer option '%s' is not supported",
                                 must_be_false[i]);
    return 0;
}

static int read_config(const json_t *cfg, struct tensor_optimizer *o, struct dlc_error **err)
{
    const char *what = "optimizer config";
    json_t *lr = json_object_get(cfg, "learning_rate");
    if (lr == NULL)
        lr = json_object_get(cfg, "lr"); /* Keras < 2.3 */
    if (lr != NULL && !json_is_number(lr))
        return dlc_error_set(err, EINVAL,
                             "optimizer learning_rate must be a number (learning rate "
                             "schedules are not supported)");
    if (lr != NULL)
        o->learning_rate = json_number_value(lr);
    if (check_unsupported(cfg, err) < 0 ||
        dlc_json_get_number(cfg, "beta_1", false, what, &o->beta_1, err) < 0 ||
        dlc_json_get_number(cfg, "beta_2", false, what, &o->beta_2, err) < 0 ||
        dlc_json_get_number(cfg, "epsilon", false, what, &o->epsilon, err) < 0 ||
        dlc_json_get_number(cfg, "momentum", false, what, &o->momentum, err) < 0 ||
        dlc_json_get_bool(cfg, "nesterov", false, what, &o->nesterov, err) < 0)
        return -1;
    if (!(o->learning_rate > 0) || o->momentum < 0 || o->momentum >= 1 || o->beta_1 < 0 ||
        o->beta_1 >= 1 || o->beta_2 < 0 || o->beta_2 >= 1 || !(o->epsilon > 0))
        return dlc_error_set(err, EINVAL, "optimizer: parameters out of range");
    return 0;
}

int tensor_optimizer_from_json(const json_t *j, struct tensor_optimizer *ret,
                               struct dlc_error **err)
{
    enum tensor_optimizer_kind kind = TENSOR_OPT_ADAM;
    if (json_is_string(j)) {
        if (kind_from_name(json_string_value(j), &kind, err) < 0)
            return -1;
        tensor_optimizer_defaults(kind, ret);
        return 0;
    }
    if (!json_is_object(j))
        return dlc_error_set(err, EINVAL, "optimizer must be a name or an object");
    const char *cls = NULL;
    json_t *cfg = NULL;
    if (dlc_json_get_string(j, "class_name", true, "optimizer", &cls, err) < 0 ||
        dlc_json_get_object(j, "config", false, "optimizer", &cfg, err) < 0)
        return -1;
    if (kind_from_name(cls, &kind, err) < 0)
        return -1;
    struct tensor_optimizer o;
    tensor_optimizer_defaults(kind, &o);
    if (cfg != NULL && read_config(cfg, &o, err) < 0)
        return -1;
    *ret = o;
    return 0;
}

TENSOR_KERNEL void tensor__cpu_sgd(float *restrict w, const float *restrict g, float *restrict vel,
                                   size_t n, const struct tensor_sgd_args *a)
{
    const float lr = a->lr, mom = a->momentum;
    if (vel == NULL) {
        for (size_t i = 0; i < n; i++)
            w[i] -= lr * g[i];
    } else if (a->nesterov) {
        for (size_t i = 0; i < n; i++) {
            vel[i] = mom * vel[i] - lr * g[i];
            w[i] += mom * vel[i] - lr * g[i];
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            vel[i] = mom * vel[i] - lr * g[i];
            w[i] += vel[i];
        }
    }
}

TENSOR_KERNEL void tensor__cpu_adam(float *restrict w, const float *restrict g, float *restrict m,
                                    float *restrict v, size_t n, const struct tensor_adam_args *a)
{
    const float lr_t = a->lr_t, c1 = 1.0f - a->beta_1, c2 = 1.0f - a->beta_2, eps = a->epsilon;
    for (size_t i = 0; i < n; i++) {
        m[i] += (g[i] - m[i]) * c1;
        v[i] += (g[i] * g[i] - v[i]) * c2;
        w[i] -= (m[i] * lr_t) / (sqrtf(v[i]) + eps);
    }
}
