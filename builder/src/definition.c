/* definition.c: images/<name>.json -> struct bdef. Every key is checked here (unknown keys,
 * types, paths, templates); whether copied files exist is checked when the layers are
 * planned (closure.c), for the variants being built. The format is documented in README
 * ("build" section). */
#include <errno.h>
#include <string.h>

#include "builder-internal.h"

#define MAX_DEFINITION_SIZE (1u << 20)
#define MAX_VERSION_FILE    4096

static const char *const top_keys[] = {
        "name",    "version",  "version_file", "os",      "job",        "title", "description",
        "source",  "from",     "device",       "backend", "entrypoint", "cmd",   "working_dir",
        "user",    "env",      "labels",       "tags",    "base",       "copy",  "libraries",
        "busybox", "variants", "comment",      NULL};
static const char *const layer_keys[] = {"copy", "libraries", "busybox", "comment", NULL};
static const char *const variant_keys[] = {"device",    "backend", "env",     "labels", "copy",
                                           "libraries", "busybox", "comment", NULL};
static const char *const copy_keys[] = {"src",      "dst",    "content", "dir",     "symlink",
                                        "whiteout", "opaque", "mode",    "closure", NULL};
static const char *const busybox_keys[] = {"src", "dst", "applets", NULL};

static void layer_spec_release(struct blayer_spec *l)
{
    for (size_t i = 0; i < l->n_copies; i++) {
        struct bcopy *c = &l->copies[i];
        free(c->where);
        free(c->src);
        free(c->dst);
        free(c->content);
        free(c->link);
    }
    free(l->copies);
    free(l->where);
    dlc_strv_free(l->libraries);
    free(l->busybox);
    free(l->busybox_dst);
    dlc_strv_free(l->applets);
    memset(l, 0, sizeof(*l));
}

void bdef_free(struct bdef *d)
{
    if (d == NULL)
        return;
    char **strs[] = {&d->path, &d->dir,    &d->file_name, &d->name,        &d->version,
                     &d->os,   &d->job,    &d->title,     &d->description, &d->source,
                     &d->from, &d->device, &d->backend,   &d->working_dir, &d->user};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(strs); i++)
        free(*strs[i]);
    dlc_strv_free(d->entrypoint);
    dlc_strv_free(d->cmd);
    dlc_strv_free(d->env);
    dlc_strv_free(d->tags);
    oci_map_release(&d->labels);
    layer_spec_release(&d->base);
    layer_spec_release(&d->layer);
    for (size_t i = 0; i < d->n_variants; i++) {
        struct bvariant *v = &d->variants[i];
        free(v->name);
        free(v->device);
        free(v->backend);
        dlc_strv_free(v->env);
        oci_map_release(&v->labels);
        layer_spec_release(&v->layer);
    }
    free(d->variants);
    free(d);
}

/* ---- small validators ---------------------------------------------------------------- */

static bool is_label_word(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' ||
              *p == '_'))
            return false;
    return s[0] != '.' && s[0] != '-';
}

static bool is_version(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == '_' || *p == '+'))
            return false;
    return true;
}

static bool is_env_name(const char *s, size_t len)
{
    if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

/* An optional string key, copied. */
static int get_str(const json_t *o, const char *key, const char *what, char **ret,
                   struct dlc_error **err)
{
    const char *s = NULL;
    if (dlc_json_get_string(o, key, false, what, &s, err) < 0)
        return -1;
    if (s != NULL && s[0] == '\0')
        return dlc_error_set(err, EINVAL, "%s: '%s' must not be empty", what, key);
    *ret = s ? xstrdup(s) : NULL;
    return 0;
}

static int get_label_word(const json_t *o, const char *key, const char *what, char **ret,
                          struct dlc_error **err)
{
    if (get_str(o, key, what, ret, err) < 0)
        return -1;
    if (*ret != NULL && !is_label_word(*ret))
        return dlc_error_set(err, EINVAL, "%s: '%s' value '%s' must be lowercase [a-z0-9._-]", what,
                             key, *ret);
    return 0;
}

/* "0755" -> 0755; JSON has no octal numbers, so modes are strings. */
static int parse_mode(const char *s, const char *what, int *ret, struct dlc_error **err)
{
    char *end = NULL;
    errno = 0;
    long m = strtol(s, &end, 8);
    if (s[0] == '\0' || *end != '\0' || errno != 0 || m < 0 || m > 07777)
        return dlc_error_set(err, EINVAL, "%s: 'mode' must be an octal string like \"0755\"", what);
    *ret = (int)m;
    return 0;
}

static int get_env(const json_t *o, const char *what, char ***ret, struct dlc_error **err)
{
    _cleanup_strv_ char **env = NULL;
    if (dlc_json_get_strv(o, "env", false, what, &env, err) < 0)
        return -1;
    for (size_t i = 0; env && env[i]; i++) {
        const char *eq = strchr(env[i], '=');
        if (eq == NULL || !is_env_name(env[i], (size_t)(eq - env[i])))
            return dlc_error_set(err, EINVAL, "%s: env[%zu]: '%s' is not NAME=VALUE", what, i,
                                 env[i]);
        for (size_t k = 0; k < i; k++)
            if (strncmp(env[k], env[i], (size_t)(eq - env[i]) + 1) == 0)
                return dlc_error_set(err, EINVAL, "%s: env[%zu]: '%.*s' is set twice", what, i,
                                     (int)(eq - env[i]), env[i]);
    }
    *ret = TAKE_PTR(env);
    return 0;
}

static int get_labels(const json_t *o, const char *what, struct oci_map *ret,
                      struct dlc_error **err)
{
    json_t *labels = NULL;
    if (dlc_json_get_object(o, "labels", false, what, &labels, err) < 0)
        return -1;
    const char *k;
    json_t *v;
    json_object_foreach(labels, k, v) {
        if (!json_is_string(v))
            return dlc_error_set(err, EINVAL, "%s: labels: '%s' must be a string", what, k);
        if (k[0] == '\0')
            return dlc_error_set(err, EINVAL, "%s: labels: empty label name", what);
        oci_map_set(ret, k, json_string_value(v));
    }
    return 0;
}

char **benv_merge(char *const *base, char *const *add)
{
    char **out = dlc_strv_copy(base);
    for (size_t i = 0; add && add[i]; i++) {
        size_t nlen = strcspn(add[i], "=") + 1;
        bool replaced = false;
        for (size_t k = 0; out && out[k] && !replaced; k++) {
            if (strncmp(out[k], add[i], nlen) == 0) {
                free(out[k]);
                out[k] = xstrdup(add[i]);
                replaced = true;
            }
        }
        if (!replaced)
            out = dlc_strv_push(out, add[i]);
    }
    return out;
}

/* ---- paths --------------------------------------------------------------------------- */

/* "{build}/runtime/cpu/tensor" -> "<build_dir>/runtime/cpu/tensor"; relative results are
 * relative to the definition's directory. */
static int expand_src(const char *src, const char *def_dir, const char *build_dir, const char *what,
                      char **ret, struct dlc_error **err)
{
    struct dlc_strbuf sb = DLC_STRBUF_INIT;
    bool from_build = false;
    for (const char *p = src; *p;) {
        if (*p == '{' || *p == '}') {
            if (dlc_startswith(p, "{build}") == NULL) {
                dlc_strbuf_release(&sb);
                return dlc_error_set(err, EINVAL,
                                     "%s: 'src' '%s': unknown placeholder (only {build} is "
                                     "known)",
                                     what, src);
            }
            dlc_strbuf_append(&sb, build_dir);
            from_build = from_build || p == src;
            p += strlen("{build}");
        } else {
            dlc_strbuf_appendc(&sb, *p++);
        }
    }
    _cleanup_free_ char *s = dlc_strbuf_detach(&sb, NULL);
    if (s[0] == '\0')
        return dlc_error_set(err, EINVAL, "%s: 'src' must not be empty", what);
    /* {build} is relative to the current directory (like make's BUILD), everything else
     * to the definition. */
    if (s[0] == '/' || from_build)
        *ret = TAKE_PTR(s);
    else
        *ret = dlc_path_join(def_dir, s);
    return 0;
}

/* An absolute image path -> normalised relative form; "/" and ".wh." names are refused. */
static int parse_dst(const char *dst, const char *what, char **ret, struct dlc_error **err)
{
    if (dst[0] != '/')
        return dlc_error_set(err, EINVAL, "%s: 'dst' '%s' must be an absolute path", what, dst);
    _cleanup_free_ char *norm = NULL;
    if (dlc_path_normalize_relative(dst, &norm, err) < 0)
        return dlc_error_wrap(err, "%s: 'dst'", what);
    if (strcmp(norm, ".") == 0)
        return dlc_error_set(err, EINVAL, "%s: 'dst' must not be '/'", what);
    for (const char *c = norm; c != NULL; c = strchr(c, '/') ? strchr(c, '/') + 1 : NULL)
        if (dlc_startswith(c, ".wh.") != NULL)
            return dlc_error_set(err, EINVAL,
                                 "%s: 'dst' '%s': names starting with '.wh.' are reserved for "
                                 "whiteouts (use \"whiteout\": true)",
                                 what, dst);
    *ret = TAKE_PTR(norm);
    return 0;
}

/* ---- copy entries ------------------------------------------------------------------- */

struct load_ctx {
    const char *dir;
    const char *build_dir;
};

static int copy_kind(const json_t *e, const char *what, enum bcopy_kind *ret,
                     struct dlc_error **err)
{
    static const char *const kinds[] = {"src", "content", "dir", "symlink", "whiteout", "opaque"};
    int found = -1, count = 0;
    for (size_t i = 0; i < DLC_ARRAY_SIZE(kinds); i++) {
        if (json_object_get(e, kinds[i]) != NULL) {
            found = (int)i;
            count++;
        }
    }
    if (count != 1)
        return dlc_error_set(err, EINVAL,
                             "%s: needs exactly one of 'src', 'content', 'dir', 'symlink', "
                             "'whiteout', 'opaque'",
                             what);
    *ret = (enum bcopy_kind)found;
    if (*ret == BCOPY_DIR || *ret == BCOPY_WHITEOUT || *ret == BCOPY_OPAQUE) {
        if (!json_is_true(json_object_get(e, kinds[found])))
            return dlc_error_set(err, EINVAL, "%s: '%s' must be true", what, kinds[found]);
    }
    return 0;
}

static int copy_options(const json_t *e, struct bcopy *c, struct dlc_error **err)
{
    const char *mode = NULL;
    if (dlc_json_get_string(e, "mode", false, c->where, &mode, err) < 0)
        return -1;
    if (mode != NULL) {
        if (c->kind != BCOPY_SRC && c->kind != BCOPY_CONTENT && c->kind != BCOPY_DIR &&
            c->kind != BCOPY_OPAQUE)
            return dlc_error_set(err, EINVAL, "%s: 'mode' does not apply here", c->where);
        if (parse_mode(mode, c->where, &c->mode, err) < 0)
            return -1;
    }
    c->closure = c->kind == BCOPY_SRC;
    if (json_object_get(e, "closure") != NULL) {
        if (c->kind != BCOPY_SRC)
            return dlc_error_set(err, EINVAL, "%s: 'closure' applies to 'src' only", c->where);
        if (dlc_json_get_bool(e, "closure", true, c->where, &c->closure, err) < 0)
            return -1;
    }
    return 0;
}

static int parse_copy(const json_t *e, const struct load_ctx *lc, struct bcopy *c,
                      struct dlc_error **err)
{
    if (!json_is_object(e))
        return dlc_error_set(err, EINVAL, "%s: must be an object", c->where);
    if (dlc_json_check_keys(e, copy_keys, c->where, err) < 0 ||
        copy_kind(e, c->where, &c->kind, err) < 0)
        return -1;
    const char *dst = NULL, *s = NULL;
    if (dlc_json_get_string(e, "dst", true, c->where, &dst, err) < 0 ||
        parse_dst(dst, c->where, &c->dst, err) < 0)
        return -1;
    c->mode = -1;
    switch (c->kind) {
    case BCOPY_SRC:
        if (dlc_json_get_string(e, "src", true, c->where, &s, err) < 0 ||
            expand_src(s, lc->dir, lc->build_dir, c->where, &c->src, err) < 0)
            return -1;
        break;
    case BCOPY_CONTENT:
        if (dlc_json_get_string(e, "content", true, c->where, &s, err) < 0)
            return -1;
        c->content = xstrdup(s);
        c->content_len = strlen(s);
        break;
    case BCOPY_SYMLINK:
        if (dlc_json_get_string(e, "symlink", true, c->where, &s, err) < 0)
            return -1;
        if (s[0] == '\0')
            return dlc_error_set(err, EINVAL, "%s: 'symlink' must not be empty", c->where);
        c->link = xstrdup(s);
        break;
    default:
        break;
    }
    return copy_options(e, c, err);
}

/* ---- layers and variants -------------------------------------------------------------- */

static int parse_busybox(const json_t *o, struct blayer_spec *l, const struct load_ctx *lc,
                         struct dlc_error **err)
{
    json_t *bb = NULL;
    if (dlc_json_get_object(o, "busybox", false, l->where[0] ? l->where : "definition", &bb, err) <
        0)
        return -1;
    if (bb == NULL)
        return 0;
    _cleanup_free_ char *what = xasprintf("%s%sbusybox", l->where, l->where[0] ? "." : "");
    const char *src = NULL, *dst = "/bin/busybox";
    if (dlc_json_check_keys(bb, busybox_keys, what, err) < 0 ||
        dlc_json_get_string(bb, "src", true, what, &src, err) < 0 ||
        dlc_json_get_string(bb, "dst", false, what, &dst, err) < 0 ||
        dlc_json_get_strv(bb, "applets", false, what, &l->applets, err) < 0)
        return -1;
    if (expand_src(src, lc->dir, lc->build_dir, what, &l->busybox, err) < 0 ||
        parse_dst(dst, what, &l->busybox_dst, err) < 0)
        return -1;
    for (size_t i = 0; l->applets && l->applets[i]; i++) {
        const char *a = l->applets[i];
        if (a[0] == '\0' || strchr(a, '/') || strcmp(a, ".") == 0 || strcmp(a, "..") == 0 ||
            dlc_startswith(a, ".wh.") != NULL)
            return dlc_error_set(err, EINVAL, "%s: applets[%zu]: '%s' is not a file name", what, i,
                                 a);
    }
    return 0;
}

static int parse_layer(const json_t *o, const char *where, const struct load_ctx *lc,
                       struct blayer_spec *l, struct dlc_error **err)
{
    l->where = xstrdup(where);
    const char *what = where[0] ? where : "definition";
    json_t *copy = NULL;
    if (dlc_json_get_array(o, "copy", false, what, &copy, err) < 0 ||
        dlc_json_get_strv(o, "libraries", false, what, &l->libraries, err) < 0 ||
        parse_busybox(o, l, lc, err) < 0)
        return -1;
    for (size_t i = 0; l->libraries && l->libraries[i]; i++)
        if (l->libraries[i][0] == '\0')
            return dlc_error_set(err, EINVAL, "%s: libraries[%zu] is empty", what, i);
    size_t n = json_array_size(copy);
    l->copies = xcalloc(n ? n : 1, sizeof(*l->copies));
    for (size_t i = 0; i < n; i++) {
        struct bcopy *c = &l->copies[i];
        l->n_copies = i + 1;
        c->where = xasprintf("%s%scopy[%zu]", where, where[0] ? "." : "", i);
        if (parse_copy(json_array_get(copy, i), lc, c, err) < 0)
            return -1;
    }
    l->present = l->n_copies > 0 || l->libraries != NULL || l->busybox != NULL;
    return 0;
}

static int parse_variant(const char *name, const json_t *o, const struct load_ctx *lc,
                         struct bvariant *v, struct dlc_error **err)
{
    _cleanup_free_ char *where = xasprintf("variants.%s", name);
    v->name = xstrdup(name);
    if (!is_label_word(name))
        return dlc_error_set(err, EINVAL, "variants: name '%s' must be lowercase [a-z0-9._-]",
                             name);
    if (!json_is_object(o))
        return dlc_error_set(err, EINVAL, "%s: must be an object", where);
    if (dlc_json_check_keys(o, variant_keys, where, err) < 0 ||
        get_label_word(o, "device", where, &v->device, err) < 0 ||
        get_label_word(o, "backend", where, &v->backend, err) < 0 ||
        get_env(o, where, &v->env, err) < 0 || get_labels(o, where, &v->labels, err) < 0 ||
        parse_layer(o, where, lc, &v->layer, err) < 0)
        return -1;
    if (v->device == NULL)
        v->device = xstrdup(name);
    return 0;
}

static int parse_variants(const json_t *root, const struct load_ctx *lc, struct bdef *d,
                          struct dlc_error **err)
{
    json_t *vs = NULL;
    if (dlc_json_get_object(root, "variants", false, "definition", &vs, err) < 0)
        return -1;
    if (vs == NULL)
        return 0;
    if (json_object_size(vs) == 0)
        return dlc_error_set(err, EINVAL, "variants: must name at least one variant");
    d->variants = xcalloc(json_object_size(vs), sizeof(*d->variants));
    const char *name;
    json_t *v;
    json_object_foreach(vs, name, v) {
        if (parse_variant(name, v, lc, &d->variants[d->n_variants++], err) < 0)
            return -1;
    }
    return 0;
}

/* ---- top level ---------------------------------------------------------------------- */

static int read_version_file(const char *path, const char *what, char **ret, struct dlc_error **err)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (dlc_read_file(path, MAX_VERSION_FILE, &buf, &len, err) < 0)
        return dlc_error_wrap(err, "%s: 'version_file'", what);
    buf[strcspn(buf, "\r\n")] = '\0';
    if (!is_version(buf))
        return dlc_error_set(err, EINVAL, "%s: 'version_file' %s: '%s' is not a version", what,
                             path, buf);
    *ret = TAKE_PTR(buf);
    return 0;
}

static int parse_version(const json_t *root, const struct load_ctx *lc, struct bdef *d,
                         struct dlc_error **err)
{
    const char *vf = NULL;
    if (get_str(root, "version", "definition", &d->version, err) < 0 ||
        dlc_json_get_string(root, "version_file", false, "definition", &vf, err) < 0)
        return -1;
    if (d->version && vf)
        return dlc_error_set(err, EINVAL,
                             "definition: 'version' and 'version_file' exclude "
                             "each other");
    if (d->version && !is_version(d->version))
        return dlc_error_set(err, EINVAL, "definition: 'version' '%s' is not a version",
                             d->version);
    if (vf) {
        _cleanup_free_ char *p = vf[0] == '/' ? xstrdup(vf) : dlc_path_join(lc->dir, vf);
        return read_version_file(p, "definition", &d->version, err);
    }
    return 0;
}

static int parse_process(const json_t *root, struct bdef *d, struct dlc_error **err)
{
    const char *w = "definition";
    if (dlc_json_get_strv(root, "entrypoint", false, w, &d->entrypoint, err) < 0 ||
        dlc_json_get_strv(root, "cmd", false, w, &d->cmd, err) < 0 ||
        get_str(root, "working_dir", w, &d->working_dir, err) < 0 ||
        get_str(root, "user", w, &d->user, err) < 0 || get_env(root, w, &d->env, err) < 0 ||
        get_labels(root, w, &d->labels, err) < 0)
        return -1;
    d->has_entrypoint = json_object_get(root, "entrypoint") != NULL;
    d->has_cmd = json_object_get(root, "cmd") != NULL;
    if (d->working_dir && d->working_dir[0] != '/')
        return dlc_error_set(err, EINVAL, "definition: 'working_dir' must be an absolute path");
    return 0;
}

static int parse_tags(const json_t *root, struct bdef *d, struct dlc_error **err)
{
    if (dlc_json_get_strv(root, "tags", false, "definition", &d->tags, err) < 0)
        return -1;
    if (d->tags == NULL)
        d->tags = dlc_strv_push(NULL, "latest");
    for (size_t i = 0; d->tags[i]; i++) {
        _cleanup_free_ char *what = xasprintf("tags[%zu]", i);
        if (btemplate_check(d->tags[i], what, err) < 0)
            return -1;
    }
    return 0;
}

static int parse_identity(const json_t *root, struct bdef *d, struct dlc_error **err)
{
    const char *w = "definition";
    if (get_str(root, "name", w, &d->name, err) < 0 || get_str(root, "os", w, &d->os, err) < 0 ||
        get_label_word(root, "job", w, &d->job, err) < 0 ||
        get_str(root, "title", w, &d->title, err) < 0 ||
        get_str(root, "description", w, &d->description, err) < 0 ||
        get_str(root, "source", w, &d->source, err) < 0 ||
        get_str(root, "from", w, &d->from, err) < 0 ||
        get_label_word(root, "device", w, &d->device, err) < 0 ||
        get_label_word(root, "backend", w, &d->backend, err) < 0)
        return -1;
    if (d->name == NULL)
        return dlc_error_set(err, EINVAL, "definition: missing required 'name'");
    if (!oci_name_is_valid(d->name))
        return dlc_error_set(err, EINVAL,
                             "definition: 'name' '%s' is not a valid repository name "
                             "(lowercase [a-z0-9._/-])",
                             d->name);
    if (d->os && strcmp(d->os, "auto") != 0 && !is_label_word(d->os))
        return dlc_error_set(err, EINVAL,
                             "definition: 'os' '%s' must be \"auto\" or lowercase [a-z0-9._-]",
                             d->os);
    return 0;
}

static int parse_root(const json_t *root, const struct load_ctx *lc, struct bdef *d,
                      struct dlc_error **err)
{
    if (!json_is_object(root))
        return dlc_error_set(err, EINVAL, "definition: must be a JSON object");
    if (dlc_json_check_keys(root, top_keys, "definition", err) < 0 ||
        parse_identity(root, d, err) < 0 || parse_version(root, lc, d, err) < 0 ||
        parse_process(root, d, err) < 0 || parse_tags(root, d, err) < 0)
        return -1;
    json_t *base = NULL;
    if (dlc_json_get_object(root, "base", false, "definition", &base, err) < 0)
        return -1;
    if (base != NULL) {
        if (dlc_json_check_keys(base, layer_keys, "base", err) < 0 ||
            parse_layer(base, "base", lc, &d->base, err) < 0)
            return -1;
    }
    if (parse_layer(root, "", lc, &d->layer, err) < 0 || parse_variants(root, lc, d, err) < 0)
        return -1;
    if (d->n_variants > 0 && d->layer.present)
        return dlc_error_set(err, EINVAL,
                             "definition: top-level 'copy', 'libraries' and 'busybox' are for "
                             "definitions without variants: put them in 'base' or a variant");
    if (d->n_variants > 0 && (d->device || d->backend))
        return dlc_error_set(err, EINVAL,
                             "definition: 'device' and 'backend' belong to each "
                             "variant when there are variants");
    if (d->version == NULL && d->from == NULL)
        return dlc_error_set(err, EINVAL,
                             "definition: needs 'version' or 'version_file' (only "
                             "an image built 'from' another inherits its version)");
    if (!d->base.present && !d->layer.present && d->n_variants == 0 && d->from == NULL)
        return dlc_error_set(err, EINVAL,
                             "definition: no layer: give 'copy', 'base' or "
                             "'variants'");
    return 0;
}

int bdef_load(const char *path, const char *build_dir, struct bdef **ret, struct dlc_error **err)
{
    json_auto_t *root = dlc_json_load_file(path, MAX_DEFINITION_SIZE, err);
    if (root == NULL)
        return -1;
    _cleanup_(bdef_freep) struct bdef *d = xcalloc(1, sizeof(*d));
    d->path = xstrdup(path);
    d->dir = dlc_path_dirname(path);
    d->file_name = xstrdup(dlc_path_basename(path));
    struct load_ctx lc = {d->dir, build_dir};
    if (parse_root(root, &lc, d, err) < 0)
        return dlc_error_wrap(err, "%s", path);
    *ret = TAKE_PTR(d);
    return 0;
}
