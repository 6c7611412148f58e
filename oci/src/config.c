/* config.c: image configs (OCI and Docker), to and from JSON, and validation. */
#include <errno.h>
#include <string.h>

#include "oci-internal.h"

void oci_image_config_free(struct oci_image_config *c)
{
    if (c == NULL)
        return;
    free(c->created);
    free(c->author);
    free(c->architecture);
    free(c->os);
    free(c->variant);
    free(c->config.user);
    dlc_strv_free(c->config.env);
    dlc_strv_free(c->config.entrypoint);
    dlc_strv_free(c->config.cmd);
    free(c->config.working_dir);
    free(c->config.stop_signal);
    dlc_strv_free(c->config.exposed_ports);
    dlc_strv_free(c->config.volumes);
    oci_map_release(&c->config.labels);
    free(c->rootfs_type);
    dlc_strv_free(c->diff_ids);
    for (size_t i = 0; i < c->n_history; i++) {
        free(c->history[i].created);
        free(c->history[i].created_by);
        free(c->history[i].author);
        free(c->history[i].comment);
    }
    free(c->history);
    free(c);
}

/* An optional string member: copied into *ret when present and not null. */
static int get_str(const json_t *obj, const char *key, bool required, const char *what, char **ret,
                   struct dlc_error **err)
{
    const char *s = NULL;
    if (dlc_json_get_string(obj, key, required, what, &s, err) < 0)
        return -1;
    if (s != NULL)
        *ret = xstrdup(s);
    return 0;
}

static int exec_config_from_json(const json_t *j, struct oci_image_config *c,
                                 struct dlc_error **err)
{
    json_t *o = NULL;
    if (dlc_json_get_object(j, "config", false, "config", &o, err) < 0)
        return -1;
    if (o == NULL)
        return 0;
    const char *w = "config: config";
    if (get_str(o, "User", false, w, &c->config.user, err) < 0 ||
        dlc_json_get_strv(o, "Env", false, w, &c->config.env, err) < 0 ||
        dlc_json_get_strv(o, "Entrypoint", false, w, &c->config.entrypoint, err) < 0 ||
        dlc_json_get_strv(o, "Cmd", false, w, &c->config.cmd, err) < 0 ||
        get_str(o, "WorkingDir", false, w, &c->config.working_dir, err) < 0 ||
        get_str(o, "StopSignal", false, w, &c->config.stop_signal, err) < 0 ||
        oci__keyset_from_json(o, "ExposedPorts", w, &c->config.exposed_ports, err) < 0 ||
        oci__keyset_from_json(o, "Volumes", w, &c->config.volumes, err) < 0 ||
        oci__map_from_json(o, "Labels", w, &c->config.labels, err) < 0)
        return -1;
    return 0;
}

static int rootfs_from_json(const json_t *j, struct oci_image_config *c, struct dlc_error **err)
{
    json_t *o = NULL, *ids = NULL;
    if (dlc_json_get_object(j, "rootfs", true, "config", &o, err) < 0 ||
        get_str(o, "type", true, "config: rootfs", &c->rootfs_type, err) < 0 ||
        dlc_json_get_array(o, "diff_ids", true, "config: rootfs", &ids, err) < 0)
        return -1;
    c->n_diff_ids = json_array_size(ids);
    c->diff_ids = xcalloc(c->n_diff_ids + 1, sizeof(char *));
    for (size_t i = 0; i < c->n_diff_ids; i++) {
        json_t *e = json_array_get(ids, i);
        if (!json_is_string(e))
            return dlc_error_set(err, EINVAL, "config: rootfs.diff_ids[%zu] must be a string", i);
        if (oci_digest_validate(json_string_value(e), err) < 0)
            return dlc_error_wrap(err, "config: rootfs.diff_ids[%zu]", i);
        c->diff_ids[i] = xstrdup(json_string_value(e));
    }
    return 0;
}

static int history_from_json(const json_t *j, struct oci_image_config *c, struct dlc_error **err)
{
    json_t *arr = NULL;
    if (dlc_json_get_array(j, "history", false, "config", &arr, err) < 0)
        return -1;
    size_t n = json_array_size(arr);
    if (n == 0)
        return 0;
    c->history = xcalloc(n, sizeof(*c->history));
    for (size_t i = 0; i < n; i++) {
        json_t *h = json_array_get(arr, i);
        char w[48];
        snprintf(w, sizeof(w), "config: history[%zu]", i);
        c->n_history = i + 1; /* so a failure frees what was read */
        if (!json_is_object(h))
            return dlc_error_set(err, EINVAL, "%s: must be an object", w);
        struct oci_history *e = &c->history[i];
        if (get_str(h, "created", false, w, &e->created, err) < 0 ||
            get_str(h, "created_by", false, w, &e->created_by, err) < 0 ||
            get_str(h, "author", false, w, &e->author, err) < 0 ||
            get_str(h, "comment", false, w, &e->comment, err) < 0 ||
            dlc_json_get_bool(h, "empty_layer", false, w, &e->empty_layer, err) < 0)
            return -1;
    }
    return 0;
}

int oci_image_config_from_json(const json_t *j, struct oci_image_config **ret,
                               struct dlc_error **err)
{
    _cleanup_(oci_image_config_freep) struct oci_image_config *c = xcalloc(1, sizeof(*c));
    if (!json_is_object(j))
        return dlc_error_set(err, EINVAL, "config: must be an object");
    if (get_str(j, "architecture", true, "config", &c->architecture, err) < 0 ||
        get_str(j, "os", true, "config", &c->os, err) < 0 ||
        get_str(j, "variant", false, "config", &c->variant, err) < 0 ||
        get_str(j, "created", false, "config", &c->created, err) < 0 ||
        get_str(j, "author", false, "config", &c->author, err) < 0 ||
        exec_config_from_json(j, c, err) < 0 || rootfs_from_json(j, c, err) < 0 ||
        history_from_json(j, c, err) < 0)
        return -1;
    *ret = TAKE_PTR(c);
    return 0;
}

int oci_image_config_parse(const char *buf, size_t len, const char *what,
                           struct oci_image_config **ret, struct dlc_error **err)
{
    json_auto_t *j = dlc_json_loadb(buf, len, what, err);
    if (j == NULL)
        return -1;
    if (oci_image_config_from_json(j, ret, err) < 0)
        return dlc_error_wrap(err, "%s", what);
    return 0;
}

static void set_str(json_t *o, const char *key, const char *v)
{
    if (v != NULL)
        json_object_set_new(o, key, json_string(v));
}

static void set_strv(json_t *o, const char *key, char *const *v)
{
    if (v != NULL)
        json_object_set_new(o, key, dlc_json_from_strv(v));
}

static void set_keyset(json_t *o, const char *key, char *const *v)
{
    if (v == NULL)
        return;
    json_t *s = json_object();
    for (size_t i = 0; v[i]; i++)
        json_object_set_new(s, v[i], json_object());
    json_object_set_new(o, key, s);
}

static json_t *exec_config_to_json(const struct oci_image_config *c)
{
    json_t *o = json_object();
    set_str(o, "User", c->config.user);
    set_strv(o, "Env", c->config.env);
    set_strv(o, "Entrypoint", c->config.entrypoint);
    set_strv(o, "Cmd", c->config.cmd);
    set_str(o, "WorkingDir", c->config.working_dir);
    set_str(o, "StopSignal", c->config.stop_signal);
    set_keyset(o, "ExposedPorts", c->config.exposed_ports);
    set_keyset(o, "Volumes", c->config.volumes);
    if (c->config.labels.n > 0)
        json_object_set_new(o, "Labels", oci__map_to_json(&c->config.labels));
    return o;
}

static json_t *history_to_json(const struct oci_history *h)
{
    json_t *o = json_object();
    set_str(o, "created", h->created);
    set_str(o, "created_by", h->created_by);
    set_str(o, "author", h->author);
    set_str(o, "comment", h->comment);
    if (h->empty_layer)
        json_object_set_new(o, "empty_layer", json_true());
    return o;
}

json_t *oci_image_config_to_json(const struct oci_image_config *c)
{
    json_t *j = json_object();
    set_str(j, "architecture", c->architecture);
    set_str(j, "os", c->os);
    set_str(j, "variant", c->variant);
    set_str(j, "created", c->created);
    set_str(j, "author", c->author);
    json_t *exec = exec_config_to_json(c);
    if (json_object_size(exec) > 0)
        json_object_set_new(j, "config", exec);
    else
        json_decref(exec);
    json_t *ids = json_array();
    for (size_t i = 0; i < c->n_diff_ids; i++)
        json_array_append_new(ids, json_string(c->diff_ids[i]));
    json_object_set_new(
            j, "rootfs",
            json_pack("{s:s,s:o}", "type", c->rootfs_type ? c->rootfs_type : "", "diff_ids", ids));
    if (c->n_history > 0) {
        json_t *h = json_array();
        for (size_t i = 0; i < c->n_history; i++)
            json_array_append_new(h, history_to_json(&c->history[i]));
        json_object_set_new(j, "history", h);
    }
    return j;
}

int oci_image_config_validate(const struct oci_image_config *c, struct dlc_error **err)
{
    if (c->architecture == NULL || c->architecture[0] == '\0')
        return dlc_error_set(err, EINVAL, "config: 'architecture' must not be empty");
    if (c->os == NULL || c->os[0] == '\0')
        return dlc_error_set(err, EINVAL, "config: 'os' must not be empty");
    if (!dlc_streq(c->rootfs_type, "layers"))
        return dlc_error_set(err, EINVAL, "config: rootfs.type is '%s', want 'layers'",
                             c->rootfs_type ? c->rootfs_type : "");
    for (size_t i = 0; i < c->n_diff_ids; i++)
        if (oci_digest_validate(c->diff_ids[i], err) < 0)
            return dlc_error_wrap(err, "config: rootfs.diff_ids[%zu]", i);
    for (size_t i = 0; c->config.env && c->config.env[i]; i++)
        if (strchr(c->config.env[i], '=') == NULL || c->config.env[i][0] == '=')
            return dlc_error_set(err, EINVAL, "config: config.Env[%zu] '%s' is not KEY=VALUE", i,
                                 c->config.env[i]);
    return 0;
}
