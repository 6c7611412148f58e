/* json.c: jansson at the edges: strict loads, reproducible dumps, typed getters. */
#include <errno.h>
#include <string.h>

#include "common.h"

json_t *dlc_json_loadb(const char *buf, size_t len, const char *what, struct dlc_error **err)
{
    json_error_t jerr;
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL)
        dlc_error_set(err, EINVAL, "%s:%d:%d: %s", what, jerr.line, jerr.column, jerr.text);
    return j;
}

json_t *dlc_json_load_file(const char *path, size_t max, struct dlc_error **err)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (dlc_read_file(path, max, &buf, &len, err) < 0)
        return NULL;
    return dlc_json_loadb(buf, len, path, err);
}

char *dlc_json_dumps(const json_t *j, size_t *ret_len)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (s == NULL)
        abort();
    if (ret_len)
        *ret_len = strlen(s);
    return s;
}

char *dlc_json_dumps_pretty(const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (s == NULL)
        abort();
    char *r = xasprintf("%s\n", s);
    free(s);
    return r;
}

int dlc_json_write_file_atomic(const char *path, const json_t *j, struct dlc_error **err)
{
    size_t len = 0;
    _cleanup_free_ char *s = dlc_json_dumps(j, &len);
    return dlc_write_file_atomic(path, s, len, 0644, err);
}

static int get_typed(const json_t *obj, const char *key, bool required, const char *what,
                     json_type type, const char *tname, json_t **ret, struct dlc_error **err)
{
    if (!json_is_object(obj))
        return dlc_error_set(err, EINVAL, "%s: must be an object", what);
    json_t *v = json_object_get(obj, key);
    if (v == NULL || (json_is_null(v) && !required)) {
        if (required)
            return dlc_error_set(err, EINVAL, "%s: missing required '%s'", what, key);
        *ret = NULL;
        return 0;
    }
    bool ok = json_typeof(v) == type || (type == JSON_REAL && json_is_integer(v)) ||
              (type == JSON_TRUE && json_is_boolean(v));
    if (!ok)
        return dlc_error_set(err, EINVAL, "%s: '%s' must be %s", what, key, tname);
    *ret = v;
    return 0;
}

int dlc_json_get_string(const json_t *obj, const char *key, bool required, const char *what,
                        const char **ret, struct dlc_error **err)
{
    json_t *v = NULL;
    if (get_typed(obj, key, required, what, JSON_STRING, "a string", &v, err) < 0)
        return -1;
    if (v)
        *ret = json_string_value(v);
    return 0;
}

int dlc_json_get_int(const json_t *obj, const char *key, bool required, const char *what,
                     int64_t *ret, struct dlc_error **err)
{
    json_t *v = NULL;
    if (get_typed(obj, key, required, what, JSON_INTEGER, "an integer", &v, err) < 0)
        return -1;
    if (v)
        *ret = (int64_t)json_integer_value(v);
    return 0;
}

int dlc_json_get_bool(const json_t *obj, const char *key, bool required, const char *what,
                      bool *ret, struct dlc_error **err)
{
    json_t *v = NULL;
    if (get_typed(obj, key, required, what, JSON_TRUE, "a boolean", &v, err) < 0)
        return -1;
    if (v)
        *ret = json_is_true(v);
    return 0;
}

int dlc_json_get_number(const json_t *obj, const char *key, bool required, const char *what,
                        double *ret, struct dlc_error **err)
{
    json_t *v = NULL;
    if (get_typed(obj, key, required, what, JSON_REAL, "a number", &v, err) < 0)
        return -1;
    if (v)
        *ret = json_number_value(v);
    return 0;
}

int dlc_json_get_object(const json_t *obj, const char *key, bool required, const char *what,
                        json_t **ret, struct dlc_error **err)
{
    json_t *v = NULL;
    if (get_typed(obj, key, required, what, JSON_OBJECT, "an object", &v, err) < 0)
        return -1;
    if (v)
        *ret = v;
    return 0;
}

int dlc_json_get_array(const json_t *obj, const char *key, bool required, const char *what,
                       json_t **ret, struct dlc_error **err)
{
    json_t *v = NULL;
    if (get_typed(obj, key, required, what, JSON_ARRAY, "an array", &v, err) < 0)
        return -1;
    if (v)
        *ret = v;
    return 0;
}

int dlc_json_get_strv(const json_t *obj, const char *key, bool required, const char *what,
                      char ***ret, struct dlc_error **err)
{
    json_t *arr = NULL;
    if (dlc_json_get_array(obj, key, required, what, &arr, err) < 0)
        return -1;
    if (arr == NULL)
        return 0;
    _cleanup_strv_ char **v = xcalloc(1, sizeof(char *));
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        if (!json_is_string(e))
            return dlc_error_set(err, EINVAL, "%s: '%s'[%zu] must be a string", what, key, i);
        v = dlc_strv_push(v, json_string_value(e));
    }
    *ret = TAKE_PTR(v);
    return 0;
}

json_t *dlc_json_from_strv(char *const *v)
{
    json_t *a = json_array();
    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

int dlc_json_check_keys(const json_t *obj, const char *const *allowed, const char *what,
                        struct dlc_error **err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        bool ok = false;
        for (size_t i = 0; allowed[i] != NULL && !ok; i++)
            ok = strcmp(allowed[i], key) == 0;
        if (!ok)
            return dlc_error_set(err, EINVAL, "%s: unknown key '%s'", what, key);
    }
    return 0;
}
