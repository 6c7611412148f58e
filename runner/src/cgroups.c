/* cgroups.c: --memory, --cpus and --pids-limit through cgroup v2 when the unified hierarchy
 * has the controllers, else through the v1 controllers (hybrid hosts mount v2 at
 * /sys/fs/cgroup/unified with no controllers). A container gets its own cgroup below the
 * cgroup dlc runs in (v1) or below /sys/fs/cgroup/dlc (v2, where the no-internal-process
 * rule forbids nesting under a cgroup that has processes); it is removed at the end. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>

#include "runner-internal.h"

#ifndef CGROUP2_SUPER_MAGIC
#    define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define CG_ROOT "/sys/fs/cgroup"

static const char *const v1_names[CG_MAX] = {"memory", "cpu", "pids"};
static const char *const v2_names[CG_MAX] = {"memory", "cpu", "pids"};

static bool wanted(const struct runner_spec *spec, int c)
{
    switch (c) {
    case CG_MEMORY:
        return spec->memory > 0;
    case CG_CPU:
        return spec->cpu_milli > 0;
    default:
        return spec->pids_limit > 0;
    }
}

static int write_str(const char *dir, const char *file, const char *val, struct dlc_error **err)
{
    _cleanup_free_ char *p = dlc_path_join(dir, file);
    _cleanup_close_ int fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, val, strlen(val)) < 0)
        return dlc_error_set_errno(err, errno, "cgroup: write '%s' to %s", val, p);
    return 0;
}

char *runner_cgroup_own(const char *controller)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    struct dlc_error *e = NULL;
    if (dlc_read_file("/proc/self/cgroup", 1 << 16, &buf, &len, &e) < 0) {
        dlc_error_free(&e);
        return xstrdup("/");
    }
    for (char *p = buf; p && *p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        char *c1 = strchr(p, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2) {
            *c2 = '\0';
            const char *ctrls = c1 + 1;
            bool match = *controller ? false : *ctrls == '\0';
            for (const char *t = ctrls; *controller && *t;) {
                size_t n = strcspn(t, ",");
                match |= n == strlen(controller) && strncmp(t, controller, n) == 0;
                t += n + (t[n] == ',');
            }
            if (match)
                return xstrdup(c2 + 1);
        }
        p = nl ? nl + 1 : NULL;
    }
    return xstrdup("/");
}

static bool v2_has(const char *dir, const struct runner_spec *spec)
{
    _cleanup_free_ char *p = dlc_path_join(dir, "cgroup.controllers");
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    struct dlc_error *e = NULL;
    if (dlc_read_file(p, 4096, &buf, &len, &e) < 0) {
        dlc_error_free(&e);
        return false;
    }
    for (int c = 0; c < CG_MAX; c++) {
        if (!wanted(spec, c))
            continue;
        bool found = false;
        for (const char *t = buf; *t;) {
            size_t n = strcspn(t, " \n");
            found |= n == strlen(v2_names[c]) && strncmp(t, v2_names[c], n) == 0;
            t += n;
            t += strspn(t, " \n");
        }
        if (!found)
            return false;
    }
    return true;
}

/* The v2 mount with the needed controllers, or NULL (then v1). */
static const char *v2_mount(const struct runner_spec *spec)
{
    struct statfs sf;
    if (statfs(CG_ROOT, &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC)
        return v2_has(CG_ROOT, spec) ? CG_ROOT : NULL;
    if (statfs(CG_ROOT "/unified", &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC &&
        v2_has(CG_ROOT "/unified", spec))
        return CG_ROOT "/unified";
    return NULL;
}

static int v2_enable(const char *dir, const struct runner_spec *spec, struct dlc_error **err)
{
    for (int c = 0; c < CG_MAX; c++) {
        if (!wanted(spec, c))
            continue;
        _cleanup_free_ char *v = xasprintf("+%s", v2_names[c]);
        struct dlc_error *e = NULL;
        if (write_str(dir, "cgroup.subtree_control", v, &e) < 0) {
            int code = e->code;
            dlc_error_move(err, &e);
            return code == EBUSY ? dlc_error_wrap(err, "the cgroup has processes") : -1;
        }
    }
    return 0;
}

static int v2_create(const struct runner_spec *spec, const char *mnt, const char *name,
                     struct runner_cgroup *cg, struct dlc_error **err)
{
    _cleanup_free_ char *parent = NULL;
    if (runner_privileged()) {
        parent = dlc_path_join(mnt, "dlc");
        if ((mkdir(parent, 0755) < 0 && errno != EEXIST) || v2_enable(mnt, spec, err) < 0 ||
            v2_enable(parent, spec, err) < 0)
            return err && *err ? -1 : dlc_error_set_errno(err, errno, "cgroup: %s", parent);
    } else {
        /* a delegated subtree (systemd user@.service): next to our own cgroup */
        _cleanup_free_ char *own = runner_cgroup_own("");
        _cleanup_free_ char *d = dlc_path_dirname(own);
        parent = dlc_path_join(mnt, d);
    }
    cg->version = 2;
    cg->paths[0] = dlc_path_join(parent, name);
    if (mkdir(cg->paths[0], 0755) < 0)
        return dlc_error_set_errno(err, errno, "cgroup: create %s", cg->paths[0]);
    char v[64];
    if (spec->memory) {
        snprintf(v, sizeof(v), "%llu", (unsigned long long)spec->memory);
        if (write_str(cg->paths[0], "memory.max", v, err) < 0)
            return -1;
        struct dlc_error *e = NULL; /* no swap, when swap accounting exists */
        if (write_str(cg->paths[0], "memory.swap.max", "0", &e) < 0)
            dlc_error_free(&e);
    }
    if (spec->cpu_milli) {
        snprintf(v, sizeof(v), "%llu 100000", (unsigned long long)spec->cpu_milli * 100);
        if (write_str(cg->paths[0], "cpu.max", v, err) < 0)
            return -1;
    }
    if (spec->pids_limit) {
        snprintf(v, sizeof(v), "%lld", (long long)spec->pids_limit);
        if (write_str(cg->paths[0], "pids.max", v, err) < 0)
            return -1;
    }
    return 0;
}

static int v1_limits(const struct runner_spec *spec, int c, const char *dir, struct dlc_error **err)
{
    char v[64];
    switch (c) {
    case CG_MEMORY: {
        snprintf(v, sizeof(v), "%llu", (unsigned long long)spec->memory);
        if (write_str(dir, "memory.limit_in_bytes", v, err) < 0)
            return -1;
        _cleanup_free_ char *sw = dlc_path_join(dir, "memory.memsw.limit_in_bytes");
        if (dlc_path_exists(sw) && write_str(dir, "memory.memsw.limit_in_bytes", v, err) < 0)
            return -1;
        return 0;
    }
    case CG_CPU:
        snprintf(v, sizeof(v), "%llu", (unsigned long long)spec->cpu_milli * 100);
        if (write_str(dir, "cpu.cfs_period_us", "100000", err) < 0)
            return -1;
        return write_str(dir, "cpu.cfs_quota_us", v, err);
    default:
        snprintf(v, sizeof(v), "%lld", (long long)spec->pids_limit);
        return write_str(dir, "pids.max", v, err);
    }
}

static int v1_create(const struct runner_spec *spec, const char *name, struct runner_cgroup *cg,
                     struct dlc_error **err)
{
    cg->version = 1;
    for (int c = 0; c < CG_MAX; c++) {
        if (!wanted(spec, c))
            continue;
        _cleanup_free_ char *mnt = dlc_path_join(CG_ROOT, v1_names[c]);
        if (!dlc_is_dir(mnt))
            return dlc_error_set(err, ENOTSUP, "cgroup: no %s controller on this host (%s)",
                                 v1_names[c], mnt);
        _cleanup_free_ char *own = runner_cgroup_own(v1_names[c]);
        _cleanup_free_ char *parent = dlc_path_join(mnt, own);
        cg->paths[c] = dlc_path_join(parent, name);
        if (mkdir(cg->paths[c], 0755) < 0)
            return dlc_error_set_errno(err, errno, "cgroup: create %s", cg->paths[c]);
        if (v1_limits(spec, c, cg->paths[c], err) < 0)
            return -1;
    }
    return 0;
}

int runner_cgroup_create(const struct runner_spec *spec, const char *id, struct runner_cgroup *cg,
                         struct dlc_error **err)
{
    *cg = (struct runner_cgroup){0};
    if (!spec->memory && !spec->cpu_milli && !spec->pids_limit)
        return 0;
    _cleanup_free_ char *name = xasprintf("dlc-%s", id);
    const char *mnt = v2_mount(spec);
    int r = mnt ? v2_create(spec, mnt, name, cg, err) : v1_create(spec, name, cg, err);
    if (r < 0) {
        runner_cgroup_destroy(cg);
        if (err && *err && ((*err)->code == EACCES || (*err)->code == EROFS))
            dlc_error_wrap(err, "limits need a writable cgroup (run as root, or with a "
                                "delegated cgroup v2 subtree)");
        return -1;
    }
    return 0;
}

int runner_cgroup_attach(const struct runner_cgroup *cg, pid_t pid, struct dlc_error **err)
{
    char v[32];
    snprintf(v, sizeof(v), "%d", (int)pid);
    for (int c = 0; c < CG_MAX; c++)
        if (cg->paths[c] && write_str(cg->paths[c], "cgroup.procs", v, err) < 0)
            return -1;
    return 0;
}

/* "oom_kill N" from memory.events (v2) or memory.oom_control (v1). */
bool runner_cgroup_oom_killed(const struct runner_cgroup *cg)
{
    const char *dir = cg->version == 2 ? cg->paths[0] : cg->paths[CG_MEMORY];
    if (dir == NULL)
        return false;
    _cleanup_free_ char *p =
            dlc_path_join(dir, cg->version == 2 ? "memory.events" : "memory.oom_control");
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    struct dlc_error *e = NULL;
    if (dlc_read_file(p, 4096, &buf, &len, &e) < 0) {
        dlc_error_free(&e);
        return false;
    }
    const char *k = strstr(buf, "oom_kill ");
    return k && strtoull(k + 9, NULL, 10) > 0;
}

/* Kills what is left in dir (the container's pid namespace is gone, stragglers are not)
 * and removes it, retrying while the kernel finishes the exits. */
static void remove_cgroup_dir(const char *dir)
{
    for (int attempt = 0; attempt < 200; attempt++) {
        if (rmdir(dir) == 0 || errno == ENOENT)
            return;
        if (errno != EBUSY)
            break;
        _cleanup_free_ char *procs = dlc_path_join(dir, "cgroup.procs");
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        struct dlc_error *e = NULL;
        if (dlc_read_file(procs, 1 << 20, &buf, &len, &e) == 0) {
            for (char *p = buf; *p;) {
                long pid = strtol(p, &p, 10);
                if (pid > 0)
                    kill((pid_t)pid, SIGKILL);
                p += strspn(p, "\n");
                if (*p && (*p < '0' || *p > '9'))
                    break;
            }
        }
        dlc_error_free(&e);
        nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
    }
    dlc_warn("cgroup %s: cannot remove it: %s, ignoring", dir, strerror(errno));
}

void runner_cgroup_destroy(struct runner_cgroup *cg)
{
    for (int c = 0; c < CG_MAX; c++) {
        if (cg->paths[c])
            remove_cgroup_dir(cg->paths[c]);
        free(cg->paths[c]);
        cg->paths[c] = NULL;
    }
    cg->version = 0;
}
