/* hyperparams.c: hyperparameters as SageMaker delivers them: a JSON object of strings,
 * each possibly JSON-encoded (the Python SDK >= 2.110 writes "\"adam\"" and "[64, 32]").
 * Every value is decoded the way sagemaker-training-toolkit does (json.loads, falling back
 * to the raw string), then read through typed getters that also accept numbers still
 * wrapped in a string, since raw API callers send "10" and SDK users sometimes "\"10\"". */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "tensor-internal.h"

struct tensor_hparams {
    json_t *values; /* key -> decoded value */
    json_t *used;   /* key -> true, for keys a getter asked for */
};

json_t *tensor_hparam_decode(const char *raw)
{
    json_error_t jerr;
    json_t *v = json_loads(raw, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    return v != NULL ? v : json_string_nocheck(raw);
}

static struct tensor_hparams *hparams_new(void)
{
    struct tensor_hparams *hp = xcalloc(1, sizeof(*hp));
    hp->values = json_object();
    hp->used = json_object();
    return hp;
}

void tensor_hparams_free(struct tensor_hparams *hp)
{
    if (hp == NULL)
        return;
    json_decref(hp->values);
    json_decref(hp->used);
    free(hp);
}

int tensor_hparams_set(struct tensor_hparams *hp, const char *key, const char *raw)
{
    return json_object_set_new(hp->values, key, tensor_hparam_decode(raw));
}

int tensor_hparams_from_json(const json_t *obj, struct tensor_hparams **ret, struct dlc_error **err)
{
    if (!json_is_object(obj))
        return dlc_error_set(err, EINVAL, "hyperparameters must be a JSON object");
    struct tensor_hparams *hp = hparams_new();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        if (dlc_startswith(key, "sagemaker_"))
            continue; /* framework parameters, not the user's */
        if (json_is_string(v))
            tensor_hparams_set(hp, key, json_string_value(v));
        else
            json_object_set(hp->values, key, v);
    }
    *ret = hp;
    return 0;
}

int tensor_hparams_load(const char *path, struct tensor_hparams **ret, struct dlc_error **err)
{
    if (!dlc_path_exists(path)) {
        *ret = hparams_new();
        return 0;
    }
    json_auto_t *j = dlc_json_load_file(path, 16 << 20, err);
    if (j == NULL || tensor_hparams_from_json(j, ret, err) < 0)
        return dlc_error_wrap(err, "read hyperparameters");
    return 0;
}

bool tensor_hparams_has(struct tensor_hparams *hp, const char *key)
{
    return json_object_get(hp->values, key) != NULL;
}

json_t *tensor_hparams_json(struct tensor_hparams *hp, const char *key)
{
    json_t *v = json_object_get(hp->values, key);
    if (v != NULL)
        json_object_set_new(hp->used, key, json_true());
    return v;
}

static int bad_value(const char *key, const json_t *v, const char *want, struct dlc_error **err)
{
    _cleanup_free_ char *s = dlc_json_dumps(v, NULL);
    return dlc_error_set(err, EINVAL, "hyperparameter %s: %s is not %s", key, s, want);
}

int tensor_hparams_int(struct tensor_hparams *hp, const char *key, int64_t min, int64_t max,
                       int64_t *ret, struct dlc_error **err)
{
    json_t *v = tensor_hparams_json(hp, key);
    if (v == NULL)
        return 0;
    int64_t n = 0;
    if (json_is_integer(v))
        n = json_integer_value(v);
    else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
             fabs(json_real_value(v)) < 9e15)
        n = (int64_t)json_real_value(v);
    else if (!json_is_string(v) || dlc_parse_i64(json_string_value(v), NULL, &n, NULL) < 0)
        return bad_value(key, v, "an integer", err);
    if (n < min || n > max)
        return dlc_error_set(err, ERANGE, "hyperparameter %s: %lld is out of range [%lld, %lld]",
                             key, (long long)n, (long long)min, (long long)max);
    *ret = n;
    return 0;
}

int tensor_hparams_double(struct tensor_hparams *hp, const char *key, double *ret,
                          struct dlc_error **err)
{
    json_t *v = tensor_hparams_json(hp, key);
    if (v == NULL)
        return 0;
    double d = 0;
    if (json_is_number(v))
        d = json_number_value(v);
    else if (!json_is_string(v) || dlc_parse_double(json_string_value(v), NULL, &d, NULL) < 0)
        return bad_value(key, v, "a number", err);
    *ret = d;
    return 0;
}

int tensor_hparams_bool(struct tensor_hparams *hp, const char *key, bool *ret,
                        struct dlc_error **err)
{
    json_t *v = tensor_hparams_json(hp, key);
    if (v == NULL)
        return 0;
    bool b = false;
    if (json_is_boolean(v))
        b = json_is_true(v);
    else if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1))
        b = json_integer_value(v) == 1;
    else if (!json_is_string(v) || dlc_parse_bool(json_string_value(v), NULL, &b, NULL) < 0)
        return bad_value(key, v, "true or false", err);
    *ret = b;
    return 0;
}

int tensor_hparams_string(struct tensor_hparams *hp, const char *key, const char **ret,
                          struct dlc_error **err)
{
    json_t *v = tensor_hparams_json(hp, key);
    if (v == NULL)
        return 0;
    if (!json_is_string(v))
        return bad_value(key, v, "a string", err);
    *ret = json_string_value(v);
    return 0;
}

static int list_from_json(const char *key, const json_t *v, int64_t **ret, size_t *ret_n,
                          struct dlc_error **err)
{
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        *ret = xmalloc(sizeof(int64_t));
        (*ret)[0] = json_integer_value(v);
        *ret_n = 1;
        return 0;
    }
    if (!json_is_array(v))
        return bad_value(key, v, "a list of positive integers", err);
    size_t n = json_array_size(v), i;
    int64_t *out = xcalloc(n ? n : 1, sizeof(int64_t));
    json_t *e;
    json_array_foreach(v, i, e) {
        if (!json_is_integer(e) || json_integer_value(e) <= 0) {
            free(out);
            return bad_value(key, v, "a list of positive integers", err);
        }
        out[i] = json_integer_value(e);
    }
    *ret = out;
    *ret_n = n;
    return 0;
}

int tensor_hparams_int_list(struct tensor_hparams *hp, const char *key, int64_t **ret,
                            size_t *ret_n, struct dlc_error **err)
{
    json_t *v = tensor_hparams_json(hp, key);
    if (v == NULL)
        return 0;
    if (!json_is_string(v))
        return list_from_json(key, v, ret, ret_n, err);
    /* Encoded twice ("\"[256, 128]\""), or written as "256,128". */
    const char *s = json_string_value(v);
    _cleanup_free_ char *bracketed = s[0] == '[' ? xstrdup(s) : xasprintf("[%s]", s);
    json_auto_t *d = json_loads(bracketed, 0, NULL);
    if (d == NULL)
        return bad_value(key, v, "a list of positive integers", err);
    return list_from_json(key, d, ret, ret_n, err) < 0 ? -1 : 0;
}

char **tensor_hparams_unused(const struct tensor_hparams *hp)
{
    char **v = xcalloc(1, sizeof(char *));
    const char *key;
    json_t *val;
    json_object_foreach(hp->values, key, val) {
        if (json_object_get(hp->used, key) == NULL)
            v = dlc_strv_push(v, key);
    }
    return v;
}
