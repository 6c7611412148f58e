/* gpu.c: GPU passthrough: host discovery under a driver root, --gpus selection, and the
 * plan (nodes, read-only library binds, .icd files, env) a container gets. The vendor
 * parts are in gpu-nvidia.c, gpu-amd.c and gpu-opencl.c, CDI in cdi.c. */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/sysmacros.h>

#include "gpu.h"

static int default_stat_node(const char *path, struct stat *st)
{
    return stat(path, st);
}

int (*gpu_stat_node)(const char *path, struct stat *st) = default_stat_node;

/* ---- the host -------------------------------------------------------------------------- */

int gpu_driver_root(const char *root, char **ret, struct dlc_error **err)
{
    if (root == NULL || *root == '\0')
        root = getenv("DLC_DRIVER_ROOT");
    if (root == NULL || *root == '\0')
        root = "/";
    if (root[0] != '/')
        return dlc_error_set(err, EINVAL, "driver root '%s' is not an absolute path", root);
    if (!dlc_is_dir(root))
        return dlc_error_set(err, EINVAL, "driver root '%s' is not a directory", root);
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/')
        n--;
    *ret = xstrndup(root, n);
    return 0;
}

void gpu_host_warn(struct gpu_host *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    dlc_debug("gpu: %s", msg);
    h->warnings = dlc_strv_push(h->warnings, msg);
}

char *gpu_read_host_file(const struct gpu_host *h, const char *rel)
{
    _cleanup_free_ char *path = dlc_path_join(h->root, rel);
    _cleanup_error_ struct dlc_error *e = NULL;
    char *buf = NULL;
    size_t len = 0;
    if (dlc_read_file(path, 1 << 20, &buf, &len, &e) < 0)
        return NULL;
    return buf;
}

unsigned gpu_proc_devices_major(const struct gpu_host *h, const char *name)
{
    _cleanup_free_ char *devices = gpu_read_host_file(h, "/proc/devices");
    if (devices == NULL)
        return 0;
    /* "Character devices:" lines "%3d %s", then "Block devices:". */
    const char *p = strstr(devices, "Character devices:");
    const char *end = strstr(devices, "Block devices:");
    for (p = p ? strchr(p, '\n') : NULL; p && (end == NULL || p < end); p = strchr(p, '\n')) {
        p++;
        unsigned major = 0;
        char dev[64];
        if (sscanf(p, "%u %63s", &major, dev) == 2 && strcmp(dev, name) == 0)
            return major;
    }
    return 0;
}

void gpu_host_free(struct gpu_host *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->n_gpus; i++) {
        free(h->gpus[i].vendor);
        free(h->gpus[i].model);
        free(h->gpus[i].uuid);
        free(h->gpus[i].bus_id);
        free(h->gpus[i].node);
    }
    free(h->gpus);
    for (size_t i = 0; i < h->n_icds; i++) {
        struct gpu_icd *icd = &h->icds[i];
        free(icd->name);
        free(icd->file);
        free(icd->library);
        free(icd->lib_path);
        free(icd->problem);
        gpu_libs_free(icd->libs, icd->n_libs);
        dlc_strv_free(icd->data_dirs);
        dlc_strv_free(icd->data_dests);
    }
    free(h->icds);
    dlc_ldcache_free(h->ldcache);
    free(h->nv_version);
    dlc_strv_free(h->warnings);
    free(h->root);
    free(h);
}

int gpu_host_discover(const char *root, struct gpu_host **ret, struct dlc_error **err)
{
    _cleanup_(gpu_host_freep) struct gpu_host *h = xcalloc(1, sizeof(*h));
    if (gpu_driver_root(root, &h->root, err) < 0)
        return -1;
    _cleanup_free_ char *cache = dlc_path_join(h->root, "/etc/ld.so.cache");
    if (dlc_ldcache_load(cache, DLC_LDCACHE_NATIVE, &h->ldcache, err) < 0 ||
        gpu_nvidia_discover(h, err) < 0 || gpu_amd_discover(h, err) < 0 ||
        gpu_opencl_discover(h, err) < 0)
        return dlc_error_wrap(err, "discover GPUs under %s", h->root);
    *ret = TAKE_PTR(h);
    return 0;
}

/* ---- the plan ---------------------------------------------------------------------------- */

void gpu_plan_release(struct gpu_plan *p)
{
    for (size_t i = 0; i < p->n_devices; i++) {
        free(p->devices[i].path);
        free(p->devices[i].host_path);
    }
    free(p->devices);
    for (size_t i = 0; i < p->n_binds; i++) {
        free(p->binds[i].source);
        free(p->binds[i].destination);
    }
    free(p->binds);
    for (size_t i = 0; i < p->n_files; i++) {
        free(p->files[i].path);
        free(p->files[i].content);
    }
    free(p->files);
    dlc_strv_free(p->env);
    dlc_strv_free(p->lib_dirs);
    *p = (struct gpu_plan){0};
}

int gpu_plan_add_device(struct gpu_plan *p, const struct runner_device *d, struct dlc_error **err)
{
    for (size_t i = 0; i < p->n_devices; i++) {
        const struct runner_device *o = &p->devices[i];
        if (strcmp(o->path, d->path) != 0)
            continue;
        if (o->type == d->type && o->major == d->major && o->minor == d->minor)
            return 0;
        return dlc_error_set(err, EINVAL, "device %s requested as %c %u:%u and %c %u:%u", d->path,
                             o->type, o->major, o->minor, d->type, d->major, d->minor);
    }
    p->devices = xrealloc(p->devices, (p->n_devices + 1) * sizeof(*p->devices));
    struct runner_device *n = &p->devices[p->n_devices++];
    *n = *d;
    n->path = xstrdup(d->path);
    n->host_path = d->host_path ? xstrdup(d->host_path) : NULL;
    return 0;
}

int gpu_plan_add_mount(struct gpu_plan *p, const char *host, const char *container, bool readonly,
                       struct dlc_error **err)
{
    for (size_t i = 0; i < p->n_binds; i++) {
        struct runner_bind *b = &p->binds[i];
        if (strcmp(b->destination, container) != 0)
            continue;
        if (strcmp(b->source, host) == 0) {
            b->readonly &= readonly;
            return 0;
        }
        return dlc_error_set(err, EINVAL, "%s would be both %s and %s", container, b->source, host);
    }
    p->binds = xrealloc(p->binds, (p->n_binds + 1) * sizeof(*p->binds));
    p->binds[p->n_binds++] = (struct runner_bind){
            .source = xstrdup(host), .destination = xstrdup(container), .readonly = readonly};
    return 0;
}

int gpu_plan_add_bind(struct gpu_plan *p, const char *host, const char *container,
                      struct dlc_error **err)
{
    return gpu_plan_add_mount(p, host, container, true, err);
}

/* A CDI spec cannot write files: the file is written on the host into aux_dir (named after
 * its container path) and mounted read-only. */
static int cdi_file(struct gpu_plan *p, const char *path, const char *content,
                    struct dlc_error **err)
{
    if (p->aux_dir == NULL) {
        dlc_warn("gpu: %s is left out of the CDI spec (give --output to write it beside)", path);
        return 0;
    }
    _cleanup_free_ char *name = xstrdup(path + strspn(path, "/"));
    for (char *c = name; *c; c++)
        *c = *c == '/' ? '_' : *c;
    _cleanup_free_ char *host = dlc_path_join(p->aux_dir, name);
    if (dlc_mkdir_p(p->aux_dir, 0755, err) < 0 ||
        dlc_write_file_atomic(host, content, strlen(content), 0644, err) < 0)
        return -1;
    return gpu_plan_add_bind(p, host, path, err);
}

int gpu_plan_add_file(struct gpu_plan *p, const char *path, const char *content,
                      struct dlc_error **err)
{
    if (p->for_cdi)
        return cdi_file(p, path, content, err);
    for (size_t i = 0; i < p->n_files; i++) {
        if (strcmp(p->files[i].path, path) != 0)
            continue;
        if (strcmp(p->files[i].content, content) == 0)
            return 0;
        return dlc_error_set(err, EINVAL, "%s requested twice with different content", path);
    }
    p->files = xrealloc(p->files, (p->n_files + 1) * sizeof(*p->files));
    p->files[p->n_files++] = (struct runner_file){.path = xstrdup(path),
                                                  .content = xstrdup(content),
                                                  .len = strlen(content),
                                                  .mode = 0644};
    return 0;
}

void gpu_plan_add_env(struct gpu_plan *p, const char *kv)
{
    if (!dlc_strv_contains(p->env, kv))
        p->env = dlc_strv_push(p->env, kv);
}

void gpu_plan_add_lib_dir(struct gpu_plan *p, const char *dir)
{
    if (!dlc_strv_contains(p->lib_dirs, dir))
        p->lib_dirs = dlc_strv_push(p->lib_dirs, dir);
}

int gpu_plan_add_libs(struct gpu_plan *p, const struct gpu_lib *libs, size_t n,
                      struct dlc_error **err)
{
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *dst = dlc_path_join(GPU_LIB_DIR, libs[i].soname);
        if (gpu_plan_add_bind(p, libs[i].host_path, dst, err) < 0)
            return -1;
        if (libs[i].alias) {
            _cleanup_free_ char *alias = dlc_path_join(GPU_LIB_DIR, libs[i].alias);
            if (gpu_plan_add_bind(p, libs[i].host_path, alias, err) < 0)
                return -1;
        }
    }
    if (n > 0)
        gpu_plan_add_lib_dir(p, GPU_LIB_DIR);
    return 0;
}

int gpu_plan_add_node(struct gpu_plan *p, const char *host_path, const char *cpath,
                      unsigned want_major, unsigned want_minor, struct dlc_error **err)
{
    struct stat st;
    if (gpu_stat_node(host_path, &st) < 0)
        return dlc_error_set_errno(err, errno, "device node %s", host_path);
    if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
        return dlc_error_set(err, EINVAL, "%s is not a device node", host_path);
    unsigned major = major(st.st_rdev), minor = minor(st.st_rdev);
    /* As libnvidia-container: a node that is not the device the driver reported is refused
     * rather than passed through under the wrong name. */
    if (want_major != 0 && (major != want_major || minor != want_minor))
        return dlc_error_set(err, EINVAL, "invalid device node %s: %u:%u, expected %u:%u",
                             host_path, major, minor, want_major, want_minor);
    struct runner_device d = {
            .path = (char *)cpath,
            .host_path = (char *)host_path,
            .type = S_ISCHR(st.st_mode) ? 'c' : 'b',
            .major = major,
            .minor = minor,
            .mode = st.st_mode & 07777,
    };
    return gpu_plan_add_device(p, &d, err);
}

/* ---- --gpus ------------------------------------------------------------------------- */

static int select_token(const struct gpu_host *h, const char *tok, bool *sel,
                        struct dlc_error **err)
{
    uint64_t idx;
    _cleanup_error_ struct dlc_error *e = NULL;
    if (dlc_parse_u64(tok, NULL, &idx, &e) == 0) {
        if (idx >= h->n_gpus)
            return dlc_error_set(err, EINVAL, "unknown GPU '%s': this host has %zu GPU%s", tok,
                                 h->n_gpus, h->n_gpus == 1 ? "" : "s");
        sel[idx] = true;
        return 0;
    }
    for (size_t i = 0; i < h->n_gpus; i++) {
        const struct gpu_dev *g = &h->gpus[i];
        /* A bus id may be given without its PCI domain ("3b:00.0"). */
        size_t bl = g->bus_id ? strlen(g->bus_id) : 0, tl = strlen(tok);
        if ((g->uuid && strcasecmp(g->uuid, tok) == 0) ||
            (g->bus_id && strcasecmp(g->bus_id, tok) == 0) ||
            (bl > tl && tl >= 7 && g->bus_id[bl - tl - 1] == ':' &&
             strcasecmp(g->bus_id + bl - tl, tok) == 0)) {
            sel[i] = true;
            return 0;
        }
    }
    return dlc_error_set(err, EINVAL, "unknown GPU '%s'", tok);
}

int gpu_select(const struct gpu_host *h, const char *arg, bool *sel, bool *ret_all,
               struct dlc_error **err)
{
    const char *list = dlc_startswith(arg, "device=");
    if (list == NULL)
        list = arg;
    *ret_all = false;
    if (strcasecmp(list, "all") == 0) {
        for (size_t i = 0; i < h->n_gpus; i++)
            sel[i] = true;
        *ret_all = true;
        return 0;
    }
    if (strcasecmp(list, "none") == 0)
        return 0;
    if (*list == '\0')
        return dlc_error_set(err, EINVAL, "--gpus: empty GPU list");
    for (const char *tok = list; tok;) {
        const char *comma = strchr(tok, ',');
        _cleanup_free_ char *one = comma ? xstrndup(tok, (size_t)(comma - tok)) : xstrdup(tok);
        if (select_token(h, one, sel, err) < 0)
            return dlc_error_wrap(err, "--gpus %s", arg);
        tok = comma ? comma + 1 : NULL;
    }
    return 0;
}

/* ---- --device /dev/X ----------------------------------------------------------------- */

static int add_node_tree(struct gpu_plan *p, const char *host, const char *cpath, int depth,
                         struct dlc_error **err)
{
    struct stat st;
    if (lstat(host, &st) < 0)
        return dlc_error_set_errno(err, errno, "--device %s", host);
    if (!S_ISDIR(st.st_mode))
        return gpu_plan_add_node(p, host, cpath, 0, 0, err);
    if (depth > 4)
        return 0;
    _cleanup_dir_ DIR *d = opendir(host);
    if (d == NULL)
        return dlc_error_set_errno(err, errno, "--device %s", host);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || de->d_type == DT_LNK)
            continue;
        _cleanup_free_ char *h2 = dlc_path_join(host, de->d_name);
        _cleanup_free_ char *c2 = dlc_path_join(cpath, de->d_name);
        struct stat cst; /* nodes and directories; symlinks were skipped above */
        if (gpu_stat_node(h2, &cst) == 0 &&
            (S_ISCHR(cst.st_mode) || S_ISBLK(cst.st_mode) || S_ISDIR(cst.st_mode)) &&
            add_node_tree(p, h2, c2, depth + 1, err) < 0)
            return -1;
    }
    return 0;
}

int gpu_plan_device_arg(struct gpu_plan *p, const struct gpu_host *h, const char *arg,
                        struct dlc_error **err)
{
    DLC_ASSERT(h != NULL);
    _cleanup_free_ char *src = xstrdup(arg);
    char *dst = strchr(src, ':');
    if (dst)
        *dst++ = '\0';
    if (dst && strchr(dst, ':'))
        return dlc_error_set(err, EINVAL,
                             "--device %s: only HOST[:CONTAINER] is supported (access is rwm)",
                             arg);
    if (src[0] != '/' || (dst && dst[0] != '/'))
        return dlc_error_set(err, EINVAL, "--device %s: paths must be absolute", arg);
    _cleanup_free_ char *host = NULL;
    if (dlc_path_resolve_in_root(h->root, src, &host, err) < 0)
        return dlc_error_wrap(err, "--device %s", arg);
    return add_node_tree(p, host, dst ? dst : src, 0, err);
}

/* ---- the whole request ----------------------------------------------------------------- */

static int plan_gpus(struct gpu_plan *p, const struct gpu_host *h, const char *arg,
                     struct dlc_error **err)
{
    DLC_ASSERT(h != NULL);
    _cleanup_free_ bool *sel = xcalloc(h->n_gpus + 1, sizeof(bool));
    bool all = false;
    if (gpu_select(h, arg, sel, &all, err) < 0)
        return -1;
    size_t n_sel = 0, n_icds = 0;
    for (size_t i = 0; i < h->n_gpus; i++)
        n_sel += sel[i];
    for (size_t i = 0; i < h->n_icds; i++)
        n_icds += h->icds[i].problem == NULL;
    if (!all && n_sel == 0)
        return 0; /* --gpus none */
    if (all && n_sel == 0 && n_icds == 0)
        return dlc_error_set(err, ENODEV,
                             "--gpus all: no GPU and no usable OpenCL ICD under %s%s%s", h->root,
                             h->warnings ? ": " : "", h->warnings ? h->warnings[0] : "");
    if (gpu_nvidia_plan(p, h, sel, err) < 0 || gpu_amd_plan(p, h, sel, err) < 0)
        return -1;
    for (size_t i = 0; i < h->n_icds; i++)
        if (gpu_opencl_plan_icd(p, h, &h->icds[i], err) < 0)
            return -1;
    return 0;
}

/* A node that stands for one GPU: /dev/nvidiaN or a DRM render node. */
static bool is_gpu_node(const char *path)
{
    const char *n = dlc_startswith(path, "/dev/nvidia");
    if (n && *n && strspn(n, "0123456789") == strlen(n))
        return true;
    n = dlc_startswith(path, "/dev/dri/renderD");
    return n && *n && strspn(n, "0123456789") == strlen(n);
}

/* SM_NUM_GPUS counts the per-GPU nodes, whichever flag brought them; LD_LIBRARY_PATH
 * names the directories of the injected libraries. */
static void plan_finish(struct gpu_plan *p)
{
    p->num_gpus = 0;
    for (size_t i = 0; i < p->n_devices; i++)
        p->num_gpus += is_gpu_node(p->devices[i].path);
    if (p->lib_dirs == NULL)
        return;
    _cleanup_strbuf_ struct dlc_strbuf sb = DLC_STRBUF_INIT;
    dlc_strbuf_append(&sb, "LD_LIBRARY_PATH=");
    for (size_t i = 0; p->lib_dirs[i]; i++)
        dlc_strbuf_appendf(&sb, "%s%s", i ? ":" : "", p->lib_dirs[i]);
    /* A CDI spec's own LD_LIBRARY_PATH is kept, after ours. */
    for (size_t i = 0; p->env && p->env[i]; i++) {
        const char *v = dlc_startswith(p->env[i], "LD_LIBRARY_PATH=");
        if (v == NULL)
            continue;
        if (*v)
            dlc_strbuf_appendf(&sb, ":%s", v);
        free(p->env[i]);
        p->env[i] = dlc_strbuf_detach(&sb, NULL);
        return;
    }
    gpu_plan_add_env(p, sb.buf);
}

int gpu_plan_build(struct gpu_plan *p, const struct runner_gpu_request *req, struct dlc_error **err)
{
    bool want_host = req->gpus != NULL;
    bool want_cdi = false;
    for (size_t i = 0; req->devices && req->devices[i]; i++) {
        bool cdi = cdi_is_qualified_name(req->devices[i]);
        want_cdi |= cdi;
        want_host |= !cdi;
    }
    _cleanup_(gpu_host_freep) struct gpu_host *h = NULL;
    if (want_host && gpu_host_discover(req->driver_root, &h, err) < 0)
        return -1;
    if (req->gpus && plan_gpus(p, h, req->gpus, err) < 0)
        return -1;
    char **cdi_names = NULL;
    for (size_t i = 0; req->devices && req->devices[i]; i++) {
        if (cdi_is_qualified_name(req->devices[i]))
            cdi_names = dlc_strv_push(cdi_names, req->devices[i]);
        else if (gpu_plan_device_arg(p, h, req->devices[i], err) < 0) {
            dlc_strv_free(cdi_names);
            return -1;
        }
    }
    _cleanup_strv_ char **names = cdi_names;
    if (want_cdi) {
        _cleanup_strv_ char **dirs = cdi_spec_dirs();
        _cleanup_(cdi_registry_freep) struct cdi_registry *r = NULL;
        if (cdi_registry_load(dirs, &r, err) < 0 || cdi_plan(p, r, names, err) < 0)
            return -1;
    }
    plan_finish(p);
    return 0;
}
