/* map.c: the sorted string map behind annotations and labels. */
#include <errno.h>
#include <string.h>

#include "oci-internal.h"

/* Index of key, or of where it would be inserted (*found tells which). */
static size_t map_find(const struct oci_map *m, const char *key, bool *found)
{
    return dlc_strv_bsearch(m->keys, m->n, key, found);
}

const char *oci_map_get(const struct oci_map *m, const char *key)
{
    bool found = false;
    size_t i = map_find(m, key, &found);
    return found ? m->values[i] : NULL;
}

void oci_map_set(struct oci_map *m, const char *key, const char *value)
{
    bool found = false;
    size_t i = map_find(m, key, &found);
    if (found) {
        char *v = xstrdup(value);
        free(m->values[i]);
        m->values[i] = v;
        return;
    }
    m->keys = xrealloc(m->keys, (m->n + 1) * sizeof(*m->keys));
    m->values = xrealloc(m->values, (m->n + 1) * sizeof(*m->values));
    memmove(m->keys + i + 1, m->keys + i, (m->n - i) * sizeof(*m->keys));
    memmove(m->values + i + 1, m->values + i, (m->n - i) * sizeof(*m->values));
    m->keys[i] = xstrdup(key);
    m->values[i] = xstrdup(value);
    m->n++;
}

void oci_map_remove(struct oci_map *m, const char *key)
{
    bool found = false;
    size_t i = map_find(m, key, &found);
    if (!found)
        return;
    free(m->keys[i]);
    free(m->values[i]);
    memmove(m->keys + i, m->keys + i + 1, (m->n - i - 1) * sizeof(*m->keys));
    memmove(m->values + i, m->values + i + 1, (m->n - i - 1) * sizeof(*m->values));
    m->n--;
}

void oci_map_release(struct oci_map *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->keys[i]);
        free(m->values[i]);
    }
    free(m->keys);
    free(m->values);
    m->n = 0;
    m->keys = m->values = NULL;
}

void oci__map_copy(struct oci_map *dst, const struct oci_map *src)
{
    *dst = (struct oci_map){0};
    if (src->n == 0)
        return;
    dst->keys = xcalloc(src->n, sizeof(*dst->keys));
    dst->values = xcalloc(src->n, sizeof(*dst->values));
    for (size_t i = 0; i < src->n; i++) {
        dst->keys[i] = xstrdup(src->keys[i]);
        dst->values[i] = xstrdup(src->values[i]);
    }
    dst->n = src->n;
}

int oci__map_from_json(const json_t *obj, const char *key, const char *what, struct oci_map *ret,
                       struct dlc_error **err)
{
    json_t *o = NULL;
    if (dlc_json_get_object(obj, key, false, what, &o, err) < 0)
        return -1;
    struct oci_map m = {0};
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (!json_is_string(v)) {
            oci_map_release(&m);
            return dlc_error_set(err, EINVAL, "%s: %s['%s'] must be a string", what, key, k);
        }
        oci_map_set(&m, k, json_string_value(v));
    }
    *ret = m;
    return 0;
}

json_t *oci__map_to_json(const struct oci_map *m)
{
    json_t *o = json_object();
    for (size_t i = 0; i < m->n; i++)
        json_object_set_new(o, m->keys[i], json_string(m->values[i]));
    return o;
}

int oci__keyset_from_json(const json_t *obj, const char *key, const char *what, char ***ret,
                          struct dlc_error **err)
{
    json_t *o = NULL;
    if (dlc_json_get_object(obj, key, false, what, &o, err) < 0)
        return -1;
    if (o == NULL)
        return 0;
    char **v = xcalloc(1, sizeof(*v));
    const char *k;
    json_t *val;
    json_object_foreach(o, k, val) {
        v = dlc_strv_push(v, k);
    }
    *ret = v;
    return 0;
}
