/* cdi.c: the Container Device Interface (cncf-tags/container-device-interface, spec up to
 * 1.1.0): vendor specs in /etc/cdi and /var/run/cdi describe devices by fully-qualified
 * name (vendor.com/class=name) and the container edits each needs. Specs are validated
 * strictly (unknown keys, a cdiVersion older than the fields used); device nodes, bind
 * mounts and env are applied natively, hooks only where dlc can do their job itself
 * (nvidia-cdi-hook update-ldcache -> LD_LIBRARY_PATH, create-symlinks -> a second mount).
 * Unknown device names are errors, never skipped. */
#include <errno.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "gpu.h"

#define MAX_SPEC_SIZE (4u << 20)

struct cdi_node {
    char *path, *host_path, *permissions;
    char type; /* 0 when not given */
    bool has_rdev, has_mode, has_owner;
    unsigned major, minor;
    mode_t mode;
};

struct cdi_mount {
    char *host_path, *container_path, *type;
    char **options;
};

struct cdi_hook {
    char *name, *path;
    char **args;
};

struct cdi_edits {
    char **env;
    struct cdi_node *nodes;
    size_t n_nodes;
    struct cdi_mount *mounts;
    size_t n_mounts;
    struct cdi_hook *hooks;
    size_t n_hooks;
    const char *unsupported; /* a field dlc cannot apply (additionalGids, ...), or NULL */
};

struct cdi_device {
    char *name;
    struct cdi_edits edits;
};

struct cdi_spec {
    char *file;
    char *kind;
    int priority; /* index of its directory: higher wins */
    struct cdi_device *devices;
    size_t n_devices;
    struct cdi_edits edits;
};

struct cdi_registry {
    struct cdi_spec *specs;
    size_t n_specs;
    char **problems; /* "<file>: <why>" for specs that could not be used */
    char **names;    /* every fully-qualified device name, parallel to files */
    char **files;
};

/* ---- names ------------------------------------------------------------------------------ */

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* s[0..n) starts and ends with an alphanumeric (a letter first when letter_first) and has
 * only alphanumerics and chars of extra between. */
static bool valid_label(const char *s, size_t n, bool letter_first, const char *extra)
{
    if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
        return false;
    if (letter_first && s[0] >= '0' && s[0] <= '9')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && strchr(extra, s[i]) == NULL)
            return false;
    return true;
}

static bool valid_kind(const char *kind)
{
    const char *slash = strchr(kind, '/');
    if (slash == NULL)
        return false;
    return valid_label(kind, (size_t)(slash - kind), true, "-_.") &&
           valid_label(slash + 1, strlen(slash + 1), true, "-_.");
}

static bool valid_device_name(const char *name)
{
    return valid_label(name, strlen(name), false, "-_.:");
}

bool cdi_is_qualified_name(const char *name)
{
    const char *eq = strchr(name, '=');
    if (eq == NULL || name[0] == '/')
        return false;
    _cleanup_free_ char *kind = xstrndup(name, (size_t)(eq - name));
    return valid_kind(kind) && valid_device_name(eq + 1);
}

char **cdi_spec_dirs(void)
{
    const char *env = getenv("DLC_CDI_SPEC_DIRS");
    const char *list = env && *env ? env : "/etc/cdi:/var/run/cdi";
    char **dirs = NULL;
    for (const char *p = list; p;) {
        const char *colon = strchr(p, ':');
        _cleanup_free_ char *one = colon ? xstrndup(p, (size_t)(colon - p)) : xstrdup(p);
        if (*one)
            dirs = dlc_strv_push(dirs, one);
        p = colon ? colon + 1 : NULL;
    }
    return dirs;
}

/* ---- versions ----------------------------------------------------------------------------- */

/* "0.5.0" -> 500, "1.1.0" -> 10100; -1 for a version this reader does not know. */
static int version_code(const char *v)
{
    static const char *const known[] = {"0.3.0", "0.4.0", "0.5.0", "0.6.0",
                                        "0.7.0", "0.8.0", "1.0.0", "1.1.0"};
    static const int codes[] = {300, 400, 500, 600, 700, 800, 10000, 10100};
    if (v[0] == 'v')
        v++;
    for (size_t i = 0; i < DLC_ARRAY_SIZE(known); i++)
        if (strcmp(v, known[i]) == 0)
            return codes[i];
    return -1;
}

static const char *version_name(int code)
{
    switch (code) {
    case 400:
        return "0.4.0";
    case 500:
        return "0.5.0";
    case 600:
        return "0.6.0";
    case 700:
        return "0.7.0";
    case 10100:
        return "1.1.0";
    default:
        return "0.3.0";
    }
}

static void need_version(int *min, int code)
{
    if (code > *min)
        *min = code;
}

/* ---- parsing ------------------------------------------------------------------------------- */

static void edits_release(struct cdi_edits *e)
{
    dlc_strv_free(e->env);
    for (size_t i = 0; i < e->n_nodes; i++) {
        free(e->nodes[i].path);
        free(e->nodes[i].host_path);
        free(e->nodes[i].permissions);
    }
    free(e->nodes);
    for (size_t i = 0; i < e->n_mounts; i++) {
        free(e->mounts[i].host_path);
        free(e->mounts[i].container_path);
        free(e->mounts[i].type);
        dlc_strv_free(e->mounts[i].options);
    }
    free(e->mounts);
    for (size_t i = 0; i < e->n_hooks; i++) {
        free(e->hooks[i].name);
        free(e->hooks[i].path);
        dlc_strv_free(e->hooks[i].args);
    }
    free(e->hooks);
}

static int get_uint(const json_t *o, const char *key, const char *what, unsigned max, bool *present,
                    unsigned *ret, struct dlc_error **err)
{
    int64_t v = -1;
    if (dlc_json_get_int(o, key, false, what, &v, err) < 0)
        return -1;
    if (json_object_get(o, key) == NULL)
        return 0;
    if (v < 0 || (uint64_t)v > max)
        return dlc_error_set(err, EINVAL, "%s: '%s' out of range", what, key);
    *present = true;
    *ret = (unsigned)v;
    return 0;
}

static int parse_node(const json_t *o, const char *what, struct cdi_node *n, int *min_version,
                      struct dlc_error **err)
{
    static const char *const keys[] = {"path",     "hostPath",    "type", "major", "minor",
                                       "fileMode", "permissions", "uid",  "gid",   NULL};
    const char *path = NULL, *host = NULL, *type = NULL, *perms = NULL;
    bool has_minor = false, has_uid = false, has_gid = false;
    unsigned mode = 0, ignored = 0;
    if (!json_is_object(o))
        return dlc_error_set(err, EINVAL, "%s must be an object", what);
    if (dlc_json_check_keys(o, keys, what, err) < 0 ||
        dlc_json_get_string(o, "path", true, what, &path, err) < 0 ||
        dlc_json_get_string(o, "hostPath", false, what, &host, err) < 0 ||
        dlc_json_get_string(o, "type", false, what, &type, err) < 0 ||
        dlc_json_get_string(o, "permissions", false, what, &perms, err) < 0 ||
        get_uint(o, "major", what, 0xfff, &n->has_rdev, &n->major, err) < 0 ||
        get_uint(o, "minor", what, 0xfffff, &has_minor, &n->minor, err) < 0 ||
        get_uint(o, "fileMode", what, 07777, &n->has_mode, &mode, err) < 0 ||
        get_uint(o, "uid", what, UINT32_MAX, &has_uid, &ignored, err) < 0 ||
        get_uint(o, "gid", what, UINT32_MAX, &has_gid, &ignored, err) < 0)
        return -1;
    if (path[0] != '/' || (host && host[0] != '/'))
        return dlc_error_set(err, EINVAL, "%s: paths must be absolute", what);
    if (type && strcmp(type, "c") != 0 && strcmp(type, "u") != 0 && strcmp(type, "b") != 0)
        return dlc_error_set(err, EINVAL, "%s: device type '%s' is not supported", what, type);
    if (perms && (perms[0] == '\0' || strlen(perms) > 3 || strspn(perms, "rwm") != strlen(perms)))
        return dlc_error_set(err, EINVAL, "%s: bad permissions '%s'", what, perms);
    if (n->has_rdev != has_minor)
        return dlc_error_set(err, EINVAL, "%s: major and minor go together", what);
    if (host)
        need_version(min_version, 500);
    n->path = xstrdup(path);
    n->host_path = host ? xstrdup(host) : NULL;
    n->permissions = perms ? xstrdup(perms) : NULL;
    n->type = type ? (type[0] == 'u' ? 'c' : type[0]) : 0;
    n->mode = mode;
    n->has_owner = has_uid || has_gid;
    return 0;
}

static int parse_mount(const json_t *o, const char *what, struct cdi_mount *m, int *min_version,
                       struct dlc_error **err)
{
    static const char *const keys[] = {"hostPath", "containerPath", "options", "type", NULL};
    const char *host = NULL, *cont = NULL, *type = NULL;
    if (!json_is_object(o))
        return dlc_error_set(err, EINVAL, "%s must be an object", what);
    if (dlc_json_check_keys(o, keys, what, err) < 0 ||
        dlc_json_get_string(o, "hostPath", true, what, &host, err) < 0 ||
        dlc_json_get_string(o, "containerPath", true, what, &cont, err) < 0 ||
        dlc_json_get_string(o, "type", false, what, &type, err) < 0 ||
        dlc_json_get_strv(o, "options", false, what, &m->options, err) < 0)
        return -1;
    if (type)
        need_version(min_version, 400);
    m->host_path = xstrdup(host);
    m->container_path = xstrdup(cont);
    m->type = type ? xstrdup(type) : NULL;
    return 0;
}

static int parse_hook(const json_t *o, const char *what, struct cdi_hook *h, struct dlc_error **err)
{
    static const char *const keys[] = {"hookName", "path", "args", "env", "timeout", NULL};
    static const char *const names[] = {"prestart",       "createRuntime", "createContainer",
                                        "startContainer", "poststart",     "poststop"};
    const char *name = NULL, *path = NULL;
    if (!json_is_object(o))
        return dlc_error_set(err, EINVAL, "%s must be an object", what);
    if (dlc_json_check_keys(o, keys, what, err) < 0 ||
        dlc_json_get_string(o, "hookName", true, what, &name, err) < 0 ||
        dlc_json_get_string(o, "path", true, what, &path, err) < 0 ||
        dlc_json_get_strv(o, "args", false, what, &h->args, err) < 0)
        return -1;
    bool known = false;
    for (size_t i = 0; i < DLC_ARRAY_SIZE(names); i++)
        known |= strcmp(name, names[i]) == 0;
    if (!known)
        return dlc_error_set(err, EINVAL, "%s: unknown hookName '%s'", what, name);
    h->name = xstrdup(name);
    h->path = xstrdup(path);
    return 0;
}

/* Parses array key of o with fn into *items (elements of size sz). */
static int parse_array(const json_t *o, const char *key, const char *what, void **items, size_t *n,
                       size_t sz, int *min_version,
                       int (*fn)(const json_t *, const char *, void *, int *, struct dlc_error **),
                       struct dlc_error **err)
{
    json_t *arr = NULL;
    if (dlc_json_get_array(o, key, false, what, &arr, err) < 0)
        return -1;
    size_t count = arr ? json_array_size(arr) : 0;
    *items = xcalloc(count ? count : 1, sz);
    for (size_t i = 0; i < count; i++) {
        _cleanup_free_ char *w = xasprintf("%s.%s[%zu]", what, key, i);
        if (fn(json_array_get(arr, i), w, (char *)*items + i * sz, min_version, err) < 0)
            return -1;
        (*n)++;
    }
    return 0;
}

static int node_fn(const json_t *o, const char *w, void *item, int *v, struct dlc_error **err)
{
    return parse_node(o, w, item, v, err);
}

static int mount_fn(const json_t *o, const char *w, void *item, int *v, struct dlc_error **err)
{
    return parse_mount(o, w, item, v, err);
}

static int hook_fn(const json_t *o, const char *w, void *item, int *v, struct dlc_error **err)
{
    (void)v;
    return parse_hook(o, w, item, err);
}

static int check_env(char **env, const char *what, struct dlc_error **err)
{
    for (size_t i = 0; env && env[i]; i++) {
        const char *eq = strchr(env[i], '=');
        if (eq == NULL || eq == env[i])
            return dlc_error_set(err, EINVAL, "%s: env entry '%s' is not KEY=VALUE", what, env[i]);
    }
    return 0;
}

static int parse_edits(const json_t *o, const char *what, struct cdi_edits *e, int *min_version,
                       struct dlc_error **err)
{
    static const char *const keys[] = {"env",      "deviceNodes",    "hooks",      "mounts",
                                       "intelRdt", "additionalGids", "netDevices", NULL};
    if (o == NULL)
        return 0;
    if (!json_is_object(o))
        return dlc_error_set(err, EINVAL, "%s must be an object", what);
    if (dlc_json_check_keys(o, keys, what, err) < 0 ||
        dlc_json_get_strv(o, "env", false, what, &e->env, err) < 0 ||
        check_env(e->env, what, err) < 0 ||
        parse_array(o, "deviceNodes", what, (void **)&e->nodes, &e->n_nodes, sizeof(*e->nodes),
                    min_version, node_fn, err) < 0 ||
        parse_array(o, "mounts", what, (void **)&e->mounts, &e->n_mounts, sizeof(*e->mounts),
                    min_version, mount_fn, err) < 0 ||
        parse_array(o, "hooks", what, (void **)&e->hooks, &e->n_hooks, sizeof(*e->hooks),
                    min_version, hook_fn, err) < 0)
        return -1;
    if (json_object_get(o, "intelRdt")) {
        need_version(min_version, 700);
        e->unsupported = "intelRdt";
    }
    if (json_array_size(json_object_get(o, "additionalGids")) > 0) {
        need_version(min_version, 700);
        e->unsupported = "additionalGids";
    }
    if (json_array_size(json_object_get(o, "netDevices")) > 0) {
        need_version(min_version, 10100);
        e->unsupported = "netDevices";
    }
    return 0;
}

static void spec_release(struct cdi_spec *s)
{
    free(s->file);
    free(s->kind);
    for (size_t i = 0; i < s->n_devices; i++) {
        free(s->devices[i].name);
        edits_release(&s->devices[i].edits);
    }
    free(s->devices);
    edits_release(&s->edits);
}

static int parse_device(const json_t *o, const char *what, void *item, int *min_version,
                        struct dlc_error **err)
{
    static const char *const keys[] = {"name", "annotations", "containerEdits", NULL};
    struct cdi_device *d = item;
    const char *name = NULL;
    json_t *edits = NULL;
    if (!json_is_object(o))
        return dlc_error_set(err, EINVAL, "%s must be an object", what);
    if (dlc_json_check_keys(o, keys, what, err) < 0 ||
        dlc_json_get_string(o, "name", true, what, &name, err) < 0 ||
        dlc_json_get_object(o, "containerEdits", true, what, &edits, err) < 0)
        return -1;
    if (!valid_device_name(name))
        return dlc_error_set(err, EINVAL, "%s: invalid device name '%s'", what, name);
    if (name[0] >= '0' && name[0] <= '9')
        need_version(min_version, 500);
    if (json_object_size(json_object_get(o, "annotations")) > 0)
        need_version(min_version, 600);
    d->name = xstrdup(name);
    _cleanup_free_ char *w = xasprintf("%s.containerEdits", what);
    return parse_edits(edits, w, &d->edits, min_version, err);
}

static int parse_spec_json(const json_t *j, const char *file, struct cdi_spec *s,
                           struct dlc_error **err)
{
    static const char *const keys[] = {"cdiVersion", "kind",           "annotations",
                                       "devices",    "containerEdits", NULL};
    const char *version = NULL, *kind = NULL;
    json_t *edits = NULL;
    int min_version = 300;
    if (!json_is_object(j))
        return dlc_error_set(err, EINVAL, "%s: not a JSON object", file);
    if (dlc_json_get_string(j, "kind", true, file, &kind, err) < 0)
        return -1;
    s->kind = xstrdup(kind); /* known even when the rest is broken, for error messages */
    if (dlc_json_check_keys(j, keys, file, err) < 0 ||
        dlc_json_get_string(j, "cdiVersion", true, file, &version, err) < 0 ||
        dlc_json_get_object(j, "containerEdits", false, file, &edits, err) < 0)
        return -1;
    int code = version_code(version);
    if (code < 0)
        return dlc_error_set(err, EINVAL, "%s: unsupported cdiVersion '%s'", file, version);
    if (!valid_kind(kind))
        return dlc_error_set(err, EINVAL, "%s: invalid kind '%s'", file, kind);
    if (strchr(strchr(kind, '/'), '.') != NULL)
        need_version(&min_version, 600);
    if (json_object_size(json_object_get(j, "annotations")) > 0)
        need_version(&min_version, 600);
    if (parse_array(j, "devices", file, (void **)&s->devices, &s->n_devices, sizeof(*s->devices),
                    &min_version, parse_device, err) < 0 ||
        parse_edits(edits, file, &s->edits, &min_version, err) < 0)
        return -1;
    if (s->n_devices == 0)
        return dlc_error_set(err, EINVAL, "%s: no devices", file);
    if (min_version > code)
        return dlc_error_set(err, EINVAL, "%s: cdiVersion %s, but its fields need %s", file,
                             version, version_name(min_version));
    return 0;
}

/* ---- the registry -------------------------------------------------------------------------- */

void cdi_registry_free(struct cdi_registry *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_specs; i++)
        spec_release(&r->specs[i]);
    free(r->specs);
    dlc_strv_free(r->problems);
    dlc_strv_free(r->names);
    dlc_strv_free(r->files);
    free(r);
}

static void add_problem(struct cdi_registry *r, const char *kind, const char *msg)
{
    _cleanup_free_ char *p = kind ? xasprintf("[%s] %s", kind, msg) : xstrdup(msg);
    r->problems = dlc_strv_push(r->problems, p);
    dlc_debug("cdi: %s", p);
}

static void load_spec(struct cdi_registry *r, const char *file, int priority)
{
    _cleanup_error_ struct dlc_error *e = NULL;
    json_t *j = dlc_json_load_file(file, MAX_SPEC_SIZE, &e);
    struct cdi_spec s = {.file = xstrdup(file), .priority = priority};
    if (j == NULL || parse_spec_json(j, file, &s, &e) < 0) {
        add_problem(r, s.kind, e->msg);
        spec_release(&s);
        json_decref(j);
        return;
    }
    json_decref(j);
    r->specs = xrealloc(r->specs, (r->n_specs + 1) * sizeof(*r->specs));
    r->specs[r->n_specs++] = s;
    for (size_t i = 0; i < s.n_devices; i++) {
        _cleanup_free_ char *fq = xasprintf("%s=%s", s.kind, s.devices[i].name);
        r->names = dlc_strv_push(r->names, fq);
        r->files = dlc_strv_push(r->files, file);
    }
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_dir(struct cdi_registry *r, const char *dir, int priority)
{
    _cleanup_dir_ DIR *d = opendir(dir);
    if (d == NULL)
        return;
    _cleanup_strv_ char **files = NULL;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        _cleanup_free_ char *path = dlc_path_join(dir, de->d_name);
        if (dlc_endswith(de->d_name, ".json"))
            files = dlc_strv_push(files, path);
        else if (dlc_endswith(de->d_name, ".yaml") || dlc_endswith(de->d_name, ".yml")) {
            _cleanup_free_ char *msg =
                    xasprintf("%s: YAML specs are not supported (convert it to JSON)", path);
            add_problem(r, NULL, msg);
        }
    }
    if (files == NULL)
        return;
    qsort(files, dlc_strv_len(files), sizeof(*files), str_cmp);
    for (size_t i = 0; files[i]; i++)
        load_spec(r, files[i], priority);
}

int cdi_registry_load(char *const *dirs, struct cdi_registry **ret, struct dlc_error **err)
{
    (void)err;
    struct cdi_registry *r = xcalloc(1, sizeof(*r));
    for (size_t i = 0; dirs && dirs[i]; i++)
        load_dir(r, dirs[i], (int)i);
    *ret = r;
    return 0;
}

size_t cdi_registry_devices(const struct cdi_registry *r, const char ***ret_names,
                            const char ***ret_files)
{
    *ret_names = (const char **)r->names;
    *ret_files = (const char **)r->files;
    return dlc_strv_len(r->names);
}

char **cdi_registry_problems(const struct cdi_registry *r)
{
    return r->problems;
}

/* ---- applying edits ----------------------------------------------------------------------------
 */

static int apply_node(struct gpu_plan *p, const struct cdi_node *n, struct dlc_error **err)
{
    const char *host = n->host_path ? n->host_path : n->path;
    struct stat st;
    struct runner_device d = {.path = n->path, .mode = n->has_mode ? n->mode : 0666};
    if (gpu_stat_node(host, &st) == 0) {
        char type = S_ISCHR(st.st_mode) ? 'c' : S_ISBLK(st.st_mode) ? 'b' : 0;
        if (type == 0 || (n->type && n->type != type))
            return dlc_error_set(err, EINVAL, "%s is not a %s device", host,
                                 n->type == 'b' ? "block" : "character");
        if (n->has_rdev && (major(st.st_rdev) != n->major || minor(st.st_rdev) != n->minor))
            return dlc_error_set(err, EINVAL, "%s is %u:%u, the spec says %u:%u", host,
                                 major(st.st_rdev), minor(st.st_rdev), n->major, n->minor);
        d.host_path = (char *)host;
        d.type = type;
        d.major = major(st.st_rdev);
        d.minor = minor(st.st_rdev);
        d.mode = n->has_mode ? n->mode : st.st_mode & 07777;
    } else if (n->type && n->has_rdev) {
        d.type = n->type; /* fully described: created with mknod */
        d.major = n->major;
        d.minor = n->minor;
    } else {
        return dlc_error_set_errno(err, errno, "CDI host device %s", host);
    }
    if (n->permissions) /* validated: one to three of r, w, m */
        snprintf(d.access, sizeof(d.access), "%s", n->permissions);
    if (n->has_owner)
        dlc_warn("cdi: %s: uid/gid are not applied (the node keeps the host's owner)", n->path);
    return gpu_plan_add_device(p, &d, err);
}

static int apply_mount(struct gpu_plan *p, const struct cdi_mount *m, struct dlc_error **err)
{
    if (m->type && strcmp(m->type, "bind") != 0)
        return dlc_error_set(err, EINVAL, "mount %s: type '%s' is not supported (only bind)",
                             m->container_path, m->type);
    if (m->container_path[0] != '/' || m->host_path[0] != '/')
        return dlc_error_set(err, EINVAL, "mount %s: paths must be absolute", m->container_path);
    if (!dlc_path_exists(m->host_path))
        return dlc_error_set(err, ENOENT, "mount %s: host path %s does not exist",
                             m->container_path, m->host_path);
    bool readonly = false;
    for (size_t i = 0; m->options && m->options[i]; i++)
        readonly |= strcmp(m->options[i], "ro") == 0 || strcmp(m->options[i], "readonly") == 0;
    return gpu_plan_add_mount(p, m->host_path, m->container_path, readonly, err);
}

/* nvidia-cdi-hook create-symlinks --link TARGET::LINK: when TARGET is a mounted file, the
 * same host file is mounted at LINK too. */
static void hook_symlink(struct gpu_plan *p, const char *spec)
{
    const char *sep = strstr(spec, "::");
    if (sep == NULL)
        return;
    _cleanup_free_ char *target = xstrndup(spec, (size_t)(sep - spec));
    const char *link = sep + 2;
    _cleanup_free_ char *dir = dlc_path_dirname(link);
    _cleanup_free_ char *abs = target[0] == '/' ? xstrdup(target) : dlc_path_join(dir, target);
    for (size_t i = 0; i < p->n_binds; i++) {
        if (strcmp(p->binds[i].destination, abs) != 0)
            continue;
        _cleanup_free_ char *src = xstrdup(p->binds[i].source);
        _cleanup_error_ struct dlc_error *e = NULL;
        if (gpu_plan_add_bind(p, src, link, &e) < 0)
            dlc_warn("cdi: symlink %s: %s", link, e->msg);
        return;
    }
    dlc_debug("cdi: symlink %s -> %s skipped: target not mounted", link, target);
}

static void apply_hook(struct gpu_plan *p, const struct cdi_hook *h)
{
    const char *base = dlc_path_basename(h->path);
    bool nvidia = strcmp(base, "nvidia-cdi-hook") == 0 || strcmp(base, "nvidia-ctk") == 0;
    const char *cmd = NULL;
    for (size_t i = 1; nvidia && h->args && h->args[i]; i++) {
        if (h->args[i][0] == '-') {
            if (cmd == NULL)
                continue;
            const char *next = h->args[i + 1];
            if (next && strcmp(cmd, "update-ldcache") == 0 && strcmp(h->args[i], "--folder") == 0)
                gpu_plan_add_lib_dir(p, next);
            if (next && strcmp(cmd, "create-symlinks") == 0 && strcmp(h->args[i], "--link") == 0)
                hook_symlink(p, next);
            if (next)
                i++;
        } else if (cmd == NULL && strcmp(h->args[i], "hook") != 0) {
            cmd = h->args[i];
        }
    }
    if (cmd && (strcmp(cmd, "update-ldcache") == 0 || strcmp(cmd, "create-symlinks") == 0))
        return;
    dlc_warn("cdi: %s hook %s%s%s not run (dlc runs no hooks)", h->name, h->path, cmd ? " " : "",
             cmd ? cmd : "");
}

static int apply_edits(struct gpu_plan *p, const struct cdi_edits *e, struct dlc_error **err)
{
    if (e->unsupported)
        return dlc_error_set(err, EINVAL, "'%s' edits are not supported", e->unsupported);
    for (size_t i = 0; i < e->n_nodes; i++)
        if (apply_node(p, &e->nodes[i], err) < 0)
            return -1;
    for (size_t i = 0; i < e->n_mounts; i++)
        if (apply_mount(p, &e->mounts[i], err) < 0)
            return -1;
    for (size_t i = 0; e->env && e->env[i]; i++)
        gpu_plan_add_env(p, e->env[i]);
    for (size_t i = 0; i < e->n_hooks; i++)
        apply_hook(p, &e->hooks[i]);
    return 0;
}

/* The device kind=name from the highest-priority spec that has it. EINVAL when two specs
 * of that priority both define it. */
static int find_device(const struct cdi_registry *r, const char *kind, const char *name,
                       size_t *ret_spec, size_t *ret_dev, struct dlc_error **err)
{
    int best = -1;
    for (size_t i = 0; i < r->n_specs; i++) {
        const struct cdi_spec *s = &r->specs[i];
        if (strcmp(s->kind, kind) != 0)
            continue;
        for (size_t d = 0; d < s->n_devices; d++) {
            if (strcmp(s->devices[d].name, name) != 0)
                continue;
            if (s->priority == best)
                return dlc_error_set(err, EINVAL, "CDI device '%s=%s' is defined by both %s and %s",
                                     kind, name, r->specs[*ret_spec].file, s->file);
            if (s->priority > best) {
                best = s->priority;
                *ret_spec = i;
                *ret_dev = d;
            }
        }
    }
    return best >= 0 ? 1 : 0;
}

static int unknown_device(const struct cdi_registry *r, const char *fq, const char *kind,
                          struct dlc_error **err)
{
    _cleanup_free_ char *tag = xasprintf("[%s] ", kind);
    for (size_t i = 0; r->problems && r->problems[i]; i++)
        if (dlc_startswith(r->problems[i], tag) || r->problems[i][0] != '[')
            return dlc_error_set(err, ENOENT, "unknown CDI device '%s' (unusable spec: %s)", fq,
                                 r->problems[i]);
    _cleanup_strv_ char **dirs = cdi_spec_dirs();
    _cleanup_strbuf_ struct dlc_strbuf sb = DLC_STRBUF_INIT;
    for (size_t i = 0; dirs && dirs[i]; i++)
        dlc_strbuf_appendf(&sb, "%s%s", i ? ", " : "", dirs[i]);
    return dlc_error_set(err, ENOENT, "unknown CDI device '%s' (specs read from %s)", fq,
                         dlc_strbuf_str(&sb));
}

int cdi_plan(struct gpu_plan *p, const struct cdi_registry *r, char *const *names,
             struct dlc_error **err)
{
    _cleanup_free_ bool *spec_done = xcalloc(r->n_specs + 1, sizeof(bool));
    for (size_t i = 0; names && names[i]; i++) {
        const char *eq = strchr(names[i], '=');
        _cleanup_free_ char *kind = xstrndup(names[i], (size_t)(eq - names[i]));
        size_t si = 0, di = 0;
        int found = find_device(r, kind, eq + 1, &si, &di, err);
        if (found < 0)
            return -1;
        if (found == 0)
            return unknown_device(r, names[i], kind, err);
        const struct cdi_spec *s = &r->specs[si];
        if ((!spec_done[si] && apply_edits(p, &s->edits, err) < 0) ||
            apply_edits(p, &s->devices[di].edits, err) < 0)
            return dlc_error_wrap(err, "CDI device '%s' (%s)", names[i], s->file);
        spec_done[si] = true;
    }
    return 0;
}
