/* bundle.c: `dlc export-bundle`: an OCI runtime bundle (config.json + rootfs/) that runc
 * and crun run unchanged, with the process, namespaces, capabilities, masked paths and
 * seccomp profile `dlc run` uses (oci-specs.md §6, image config -> runtime config §1.10). */
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "runner-internal.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static bool env_has(char *const *env, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
            return true;
    return false;
}

static char **bundle_env(const struct runner_spec *spec, const struct oci_image_config *cfg,
                         const char *hostname, const struct runner_user *u)
{
    char **env = NULL;
    char *const *layers[] = {cfg->config.env, spec->env};
    if (!env_has(cfg->config.env, "PATH"))
        env = dlc_strv_push(env, DEFAULT_PATH);
    _cleanup_free_ char *h = xasprintf("HOSTNAME=%s", hostname);
    env = dlc_strv_push(env, h);
    for (size_t l = 0; l < DLC_ARRAY_SIZE(layers); l++)
        for (size_t i = 0; layers[l] && layers[l][i]; i++)
            env = dlc_strv_push(env, layers[l][i]);
    if (!env_has(env, "HOME")) {
        _cleanup_free_ char *home = xasprintf("HOME=%s", u->home ? u->home : "/");
        env = dlc_strv_push(env, home);
    }
    return env;
}

static json_t *process_json(char **args, char **env, const char *cwd, const struct runner_user *u,
                            uint64_t caps)
{
    json_t *gids = json_array();
    for (size_t i = 0; i < u->n_groups; i++)
        json_array_append_new(gids, json_integer(u->groups[i]));
    _cleanup_strv_ char **names = runner_caps_names(caps);
    /* like dlc run: a non-root user starts without effective capabilities */
    json_t *capabilities =
            json_pack("{s:o, s:o, s:o}", "bounding", dlc_json_from_strv(names), "effective",
                      u->uid == 0 ? dlc_json_from_strv(names) : json_array(), "permitted",
                      u->uid == 0 ? dlc_json_from_strv(names) : json_array());
    struct rlimit rl = {1048576, 1048576}, cur;
    if (getrlimit(RLIMIT_NOFILE, &cur) == 0 && cur.rlim_max < rl.rlim_max)
        rl.rlim_cur = rl.rlim_max = cur.rlim_max;
    return json_pack("{s:b, s:{s:i, s:i, s:o}, s:o, s:o, s:s, s:o, s:b, s:[{s:s, s:I, s:I}]}",
                     "terminal", 0, "user", "uid", (int)u->uid, "gid", (int)u->gid,
                     "additionalGids", gids, "args", dlc_json_from_strv(args), "env",
                     dlc_json_from_strv(env), "cwd", cwd, "capabilities", capabilities,
                     "noNewPrivileges", 1, "rlimits", "type", "RLIMIT_NOFILE", "hard",
                     (json_int_t)rl.rlim_max, "soft", (json_int_t)rl.rlim_cur);
}

static json_t *mount_json(const char *dst, const char *type, const char *src, const char *opts)
{
    json_t *o = json_array();
    for (const char *p = opts; *p;) {
        size_t n = strcspn(p, ",");
        json_array_append_new(o, json_stringn(p, n));
        p += n + (p[n] == ',');
    }
    return json_pack("{s:s, s:s, s:s, s:o}", "destination", dst, "type", type, "source", src,
                     "options", o);
}

static json_t *mounts_json(const struct runner_spec *spec, bool rootless)
{
    json_t *m = json_array();
    json_array_append_new(m, mount_json("/proc", "proc", "proc", "nosuid,noexec,nodev"));
    json_array_append_new(
            m, mount_json("/dev", "tmpfs", "tmpfs", "nosuid,strictatime,mode=755,size=65536k"));
    json_array_append_new(m, mount_json("/dev/pts", "devpts", "devpts",
                                        rootless ? "nosuid,noexec,newinstance,ptmxmode=0666,"
                                                   "mode=0620"
                                                 : "nosuid,noexec,newinstance,ptmxmode=0666,"
                                                   "mode=0620,gid=5"));
    json_array_append_new(
            m, mount_json("/dev/shm", "tmpfs", "shm", "nosuid,noexec,nodev,mode=1777,size=65536k"));
    json_array_append_new(m, mount_json("/dev/mqueue", "mqueue", "mqueue", "nosuid,noexec,nodev"));
    if (rootless && spec->network == RUNNER_NET_HOST)
        json_array_append_new(m,
                              mount_json("/sys", "none", "/sys", "rbind,nosuid,noexec,nodev,ro"));
    else
        json_array_append_new(m, mount_json("/sys", "sysfs", "sysfs", "nosuid,noexec,nodev,ro"));
    if (spec->read_only)
        json_array_append_new(m, mount_json("/tmp", "tmpfs", "tmpfs", "nosuid,nodev,mode=1777"));
    return m;
}

static json_t *linux_json(const struct runner_spec *spec, uint64_t caps, bool rootless)
{
    json_t *ns = json_pack("[{s:s}, {s:s}, {s:s}, {s:s}, {s:s}]", "type", "pid", "type", "ipc",
                           "type", "uts", "type", "mount", "type", "cgroup");
    if (spec->network == RUNNER_NET_NONE)
        json_array_append_new(ns, json_pack("{s:s}", "type", "network"));
    json_t *l = json_pack("{s:o, s:o, s:o}", "namespaces", ns, "maskedPaths",
                          dlc_json_from_strv((char **)runner_masked_paths), "readonlyPaths",
                          dlc_json_from_strv((char **)runner_readonly_paths));
    if (!spec->seccomp_unconfined)
        json_object_set_new(l, "seccomp", runner_seccomp_oci_json(caps));
    if (rootless) { /* what `runc spec --rootless` writes: the caller is root inside */
        json_array_append_new(ns, json_pack("{s:s}", "type", "user"));
        json_object_set_new(l, "uidMappings",
                            json_pack("[{s:i, s:i, s:i}]", "containerID", 0, "hostID",
                                      (int)geteuid(), "size", 1));
        json_object_set_new(l, "gidMappings",
                            json_pack("[{s:i, s:i, s:i}]", "containerID", 0, "hostID",
                                      (int)getegid(), "size", 1));
    } else {
        json_object_set_new(l, "resources",
                            json_pack("{s:[{s:b, s:s}]}", "devices", "allow", 0, "access", "rwm"));
    }
    return l;
}

/* rootfs/ = the image's layers applied in order, each verified against its diff_id. */
static int apply_layers(const char *root, const char *image, const char *rootfs,
                        struct oci_image **ret_img, struct dlc_error **err)
{
    _cleanup_(oci_store_freep) struct oci_store *s = NULL;
    if (oci_store_open(root, &s, err) < 0 || oci_store_load_image(s, image, ret_img, err) < 0)
        return -1;
    const struct oci_image *img = *ret_img;
    if (img->config->n_diff_ids != img->manifest->n_layers)
        return dlc_error_set(err, EINVAL, "image has %zu layers but %zu diff_ids",
                             img->manifest->n_layers, img->config->n_diff_ids);
    struct layer_unpack_opts opts = {LAYER_MODE_APPLY, runner_privileged(), NULL, 0};
    for (size_t i = 0; i < img->manifest->n_layers; i++) {
        const struct oci_descriptor *d = &img->manifest->layers[i];
        if (oci_media_type_layer_compression(d->media_type) == NULL)
            return dlc_error_set(err, EINVAL, "layer %s: unsupported media type '%s'", d->digest,
                                 d->media_type ? d->media_type : "");
        _cleanup_free_ char *blob = oci_store_blob_path(s, d->digest);
        if (runner_layer_unpack(blob, img->config->diff_ids[i], rootfs, &opts, err) < 0)
            return dlc_error_wrap(err, "layer %zu", i + 1);
    }
    return 0;
}

static int write_config(const struct runner_spec *spec, const char *dir, const char *rootfs,
                        const struct oci_image_config *cfg, uint64_t caps, struct dlc_error **err)
{
    _cleanup_strv_ char **args = NULL;
    if (runner_build_args(spec, cfg, &args, err) < 0)
        return -1;
    struct runner_user u;
    const char *user = spec->user ? spec->user : cfg->config.user;
    if (runner_user_resolve(rootfs, user, &u, err) < 0)
        return dlc_error_wrap(err, "user");
    const char *hostname = spec->hostname ? spec->hostname : "dlc";
    _cleanup_strv_ char **env = bundle_env(spec, cfg, hostname, &u);
    const char *wd = spec->workdir ? spec->workdir : cfg->config.working_dir;
    bool rootless = !runner_privileged();
    json_auto_t *config =
            json_pack("{s:s, s:o, s:{s:s, s:b}, s:s, s:o, s:o}", "ociVersion", "1.0.2", "process",
                      process_json(args, env, wd && *wd ? wd : "/", &u, caps), "root", "path",
                      "rootfs", "readonly", spec->read_only, "hostname", hostname, "mounts",
                      mounts_json(spec, rootless), "linux", linux_json(spec, caps, rootless));
    runner_user_release(&u);
    _cleanup_free_ char *text = dlc_json_dumps_pretty(config);
    _cleanup_free_ char *path = dlc_path_join(dir, "config.json");
    return dlc_write_file_atomic(path, text, strlen(text), 0644, err);
}

static bool dir_empty(const char *dir)
{
    _cleanup_dir_ DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            return false;
    return true;
}

int runner_export_bundle(const char *root, const struct runner_spec *spec, const char *dir,
                         struct dlc_error **err)
{
    uint64_t caps;
    if (runner_caps_compute(spec, &caps, err) < 0)
        return -1;
    bool existed = dlc_path_exists(dir);
    if (existed && (!dlc_is_dir(dir) || !dir_empty(dir)))
        return dlc_error_set(err, EEXIST, "%s exists and is not an empty directory", dir);
    _cleanup_free_ char *rootfs = dlc_path_join(dir, "rootfs");
    if (dlc_mkdir_p(dir, 0755, err) < 0 || dlc_mkdir_p(rootfs, 0755, err) < 0)
        return -1;
    _cleanup_(oci_image_freep) struct oci_image *img = NULL;
    int r = apply_layers(root, spec->image, rootfs, &img, err);
    if (r == 0)
        r = write_config(spec, dir, rootfs, img->config, caps, err);
    if (r < 0) { /* nothing half-written stays behind */
        struct dlc_error *e2 = NULL;
        _cleanup_free_ char *cfg = dlc_path_join(dir, "config.json");
        unlink(cfg);
        if (runner_rm_tree(existed ? rootfs : dir, &e2) < 0)
            dlc_error_free(&e2);
    }
    return r;
}
