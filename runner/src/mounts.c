/* mounts.c: the container's filesystem view, built in its new mount namespace before
 * pivot_root: the overlay root, /proc, a minimal /dev, read-only /sys, masked and
 * read-only /proc paths, channels and bind mounts.
 *
 * Every target inside the root is resolved as the container will see it (symlinks in the
 * image resolve inside the root, never to the host), opened with openat2(RESOLVE_IN_ROOT)
 * and mounted through its file descriptor, so what is mounted is exactly what was
 * checked. Bind mounts are cloned with open_tree(), given their flags while detached
 * (mount_setattr) and attached with move_mount(). */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stddef.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include "runner-internal.h"

#define DEV_FLAGS (MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)

struct mctx {
    const struct container_config *c;
    int rootfd; /* the overlay root */
};

const char *const runner_masked_paths[] = {
        "/proc/asound",
        "/proc/acpi",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
        NULL,
};

const char *const runner_readonly_paths[] = {
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
};

static const struct {
    const char *name;
    unsigned major, minor;
} default_devices[] = {
        {"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
        {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
};

static int openat2_in_root(int rootfd, const char *path, int flags)
{
    while (*path == '/')
        path++;
    struct open_how how = {
            .flags = (uint64_t)(flags | O_CLOEXEC),
            .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, rootfd, *path ? path : ".", &how, sizeof(how));
}

/* The common case: the parent exists, create the last component there. */
static int create_in_parent(struct mctx *m, const char *path, bool dir)
{
    _cleanup_free_ char *parent = dlc_path_dirname(path);
    _cleanup_close_ int pfd = openat2_in_root(m->rootfd, parent, O_PATH | O_DIRECTORY);
    if (pfd < 0)
        return -1;
    const char *name = dlc_path_basename(path);
    if (dir)
        return mkdirat(pfd, name, 0755);
    int fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    return fd < 0 ? -1 : close(fd);
}

/* Creates path inside the root (a directory, or an empty file when !dir) unless it exists,
 * and opens it (O_PATH) as the container will see it. */
static int target_open(struct mctx *m, const char *path, bool dir, struct dlc_error **err)
{
    int fd = openat2_in_root(m->rootfd, path, O_PATH);
    if (fd >= 0)
        return fd;
    if (errno == ENOENT && create_in_parent(m, path, dir) == 0 &&
        (fd = openat2_in_root(m->rootfd, path, O_PATH)) >= 0)
        return fd;
    /* a missing parent, or a dangling symlink: resolve the whole path */
    _cleanup_free_ char *host = NULL;
    if (dlc_path_resolve_in_root(m->c->rootfs, path, &host, err) < 0)
        return -1;
    _cleanup_free_ char *parent = dir ? xstrdup(host) : dlc_path_dirname(host);
    if (dlc_mkdir_p(parent, 0755, err) < 0)
        return dlc_error_wrap(err, "mount point %s", path);
    if (!dir) {
        int f = open(host, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (f < 0)
            return dlc_error_set_errno(err, errno, "mount point %s", path);
        close(f);
    }
    fd = openat2_in_root(m->rootfd, path, O_PATH);
    if (fd < 0)
        return dlc_error_set_errno(err, errno, "mount point %s", path);
    return fd;
}

static int mount_on(int fd, const char *src, const char *type, unsigned long flags,
                    const char *data, const char *what, struct dlc_error **err)
{
    char p[64];
    snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
    if (mount(src, p, type, flags, data) < 0)
        return dlc_error_set_errno(err, errno, "mount %s on %s", type ? type : src, what);
    return 0;
}

static int set_attr(int fd, uint64_t attrs, bool recursive, const char *what,
                    struct dlc_error **err)
{
    struct mount_attr a = {.attr_set = attrs};
    if (mount_setattr(fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &a, sizeof(a)) < 0)
        return dlc_error_set_errno(err, errno, "set mount flags of %s", what);
    return 0;
}

/* Bind-mounts host path src (recursively) on dst inside the root with attrs. */
static int bind_at(struct mctx *m, const char *src, const char *dst, uint64_t attrs,
                   struct dlc_error **err)
{
    _cleanup_close_ int tree =
            open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (tree < 0)
        return dlc_error_set_errno(err, errno, "bind %s", src);
    struct stat st;
    if (fstat(tree, &st) < 0)
        return dlc_error_set_errno(err, errno, "bind %s", src);
    if (attrs && set_attr(tree, attrs, true, dst, err) < 0)
        return -1;
    _cleanup_close_ int target = target_open(m, dst, S_ISDIR(st.st_mode), err);
    if (target < 0)
        return -1;
    if (move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        return dlc_error_set_errno(err, errno, "bind %s on %s", src, dst);
    return 0;
}

/* The writable layer: a tmpfs over the container's directory, in the container's mount
 * namespace only. What the container writes outside its bind mounts lives in memory and
 * disappears with it (no directories to create and delete on disk per run, which is slow
 * on filesystems mounted with discard). */
static int scratch(const struct container_config *c, struct dlc_error **err)
{
    if (mount("tmpfs", c->dir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
        return dlc_error_set_errno(err, errno, "mount the writable layer");
    _cleanup_close_ int dfd = open(c->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || mkdirat(dfd, "upper", 0755) < 0 || mkdirat(dfd, "work", 0755) < 0 ||
        mkdirat(dfd, "rootfs", 0755) < 0)
        return dlc_error_set_errno(err, errno, "create the writable layer");
    _cleanup_close_ int up = openat(dfd, "upper", O_PATH | O_DIRECTORY | O_CLOEXEC);
    for (size_t i = 0; up >= 0 && i < c->n_upper_entries; i++) {
        const struct upper_entry *e = &c->upper_entries[i];
        if (e->content == NULL) {
            if (mkdirat(up, e->path, e->mode) < 0 && errno != EEXIST)
                return dlc_error_set_errno(err, errno, "create /%s", e->path);
            continue;
        }
        _cleanup_close_ int fd =
                openat(up, e->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, e->mode);
        if (fd < 0 || dlc_write_all(fd, e->content, strlen(e->content), err) < 0)
            return fd < 0 ? dlc_error_set_errno(err, errno, "create /%s", e->path) : -1;
    }
    return up < 0 ? dlc_error_set_errno(err, errno, "open the writable layer") : 0;
}

static int mount_overlay(const struct container_config *c, struct dlc_error **err)
{
    size_t n = dlc_strv_len(c->lowers);
    if (n == 0)
        return dlc_error_set(err, EINVAL, "the image has no layers");
    /* Short relative lowerdirs (from the layer directory) keep the option string within
     * the page the kernel accepts. */
    _cleanup_free_ char *base = xasprintf("%s/layers/sha256", c->root);
    if (chdir(base) < 0)
        return dlc_error_set_errno(err, errno, "overlay: %s", base);
    _cleanup_strbuf_ struct dlc_strbuf o = DLC_STRBUF_INIT;
    dlc_strbuf_append(&o, "lowerdir=");
    for (size_t i = n; i-- > 0;)
        dlc_strbuf_appendf(&o, "%s%s", i + 1 < n ? ":" : "", dlc_path_basename(c->lowers[i]));
    dlc_strbuf_appendf(&o, ",upperdir=%s,workdir=%s", c->upper, c->work);
    if (c->userns)
        dlc_strbuf_append(&o, ",userxattr"); /* trusted.* is out of reach in a user ns */
    if (o.len >= 4000)
        return dlc_error_set(err, E2BIG, "overlay: %zu layers are too many for one mount", n);
    if (mount("overlay", c->rootfs, "overlay", MS_NODEV, o.buf) < 0)
        return dlc_error_set_errno(err, errno, "mount the overlay root");
    return 0;
}

static int mount_proc(struct mctx *m, struct dlc_error **err)
{
    _cleanup_close_ int fd = target_open(m, "/proc", true, err);
    if (fd < 0)
        return -1;
    return mount_on(fd, "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, "/proc", err);
}

/* A device node under /dev: mknod as real root, else a bind of the host's node. */
static int dev_node(struct mctx *m, const char *path, const char *host_path, char type,
                    unsigned major, unsigned minor, mode_t mode, struct dlc_error **err)
{
    if (m->c->userns || host_path) { /* no mknod in a user namespace */
        _cleanup_free_ char *h = host_path ? xstrdup(host_path) : xstrdup(path);
        return bind_at(m, h, path, 0, err);
    }
    _cleanup_free_ char *dir = dlc_path_dirname(path);
    _cleanup_close_ int dfd = target_open(m, dir, true, err);
    if (dfd < 0)
        return -1;
    const char *name = dlc_path_basename(path);
    mode_t fmt = type == 'b' ? S_IFBLK : S_IFCHR;
    if (mknodat(dfd, name, fmt | (mode & 0777), makedev(major, minor)) < 0 && errno != EEXIST)
        return dlc_error_set_errno(err, errno, "mknod %s", path);
    if (fchmodat(dfd, name, mode & 0777, 0) < 0) /* the umask applied to mknod */
        return dlc_error_set_errno(err, errno, "chmod %s", path);
    return 0;
}

static int dev_submounts(struct mctx *m, struct dlc_error **err)
{
    const char *pts_opts = m->c->userns ? "newinstance,ptmxmode=0666,mode=0620"
                                        : "newinstance,ptmxmode=0666,mode=0620,gid=5";
    _cleanup_close_ int pts = target_open(m, "/dev/pts", true, err);
    if (pts < 0 ||
        mount_on(pts, "devpts", "devpts", MS_NOSUID | MS_NOEXEC, pts_opts, "/dev/pts", err) < 0)
        return -1;
    _cleanup_close_ int shm = target_open(m, "/dev/shm", true, err);
    if (shm < 0 || mount_on(shm, "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                            "mode=1777,size=65536k", "/dev/shm", err) < 0)
        return -1;
    _cleanup_close_ int mq = target_open(m, "/dev/mqueue", true, err);
    if (mq < 0 || mount_on(mq, "mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL,
                           "/dev/mqueue", err) < 0)
        return -1;
    return 0;
}

static int mount_dev(struct mctx *m, struct dlc_error **err)
{
    _cleanup_close_ int fd = target_open(m, "/dev", true, err);
    if (fd < 0 || mount_on(fd, "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k",
                           "/dev", err) < 0)
        return -1;
    _cleanup_close_ int dev = openat2_in_root(m->rootfd, "/dev", O_PATH | O_DIRECTORY);
    if (dev < 0)
        return dlc_error_set_errno(err, errno, "open /dev");
    for (size_t i = 0; i < DLC_ARRAY_SIZE(default_devices); i++) {
        _cleanup_free_ char *p = xasprintf("/dev/%s", default_devices[i].name);
        if (dev_node(m, p, NULL, 'c', default_devices[i].major, default_devices[i].minor, 0666,
                     err) < 0)
            return -1;
    }
    static const char *const links[][2] = {
            {"/proc/self/fd", "fd"},       {"/proc/self/fd/0", "stdin"},
            {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
            {"pts/ptmx", "ptmx"},
    };
    for (size_t i = 0; i < DLC_ARRAY_SIZE(links); i++)
        if (symlinkat(links[i][0], dev, links[i][1]) < 0)
            return dlc_error_set_errno(err, errno, "symlink /dev/%s", links[i][1]);
    if (dev_submounts(m, err) < 0)
        return -1;
    const struct runner_spec *spec = m->c->spec;
    for (size_t i = 0; i < spec->n_devices; i++) {
        const struct runner_device *d = &spec->devices[i];
        if (dev_node(m, d->path, d->host_path, d->type, d->major, d->minor, d->mode, err) < 0)
            return -1;
    }
    /* Read-only: no device node can be created where nodes are usable (every other
     * writable mount is nodev). */
    return set_attr(dev, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, false, "/dev", err);
}

static int mount_sys(struct mctx *m, struct dlc_error **err)
{
    _cleanup_close_ int fd = target_open(m, "/sys", true, err);
    if (fd < 0)
        return -1;
    struct dlc_error *e = NULL;
    if (mount_on(fd, "sysfs", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, "/sys",
                 &e) == 0)
        return 0;
    if (e->code != EPERM)
        return dlc_error_move(err, &e);
    /* sysfs needs a network namespace of our own user namespace: with the host's network
     * in a user namespace, show the host's /sys read-only */
    dlc_error_free(&e);
    return bind_at(m, "/sys", "/sys",
                   MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                   err);
}

static int mask_paths(struct mctx *m, struct dlc_error **err)
{
    for (size_t i = 0; runner_masked_paths[i]; i++) {
        _cleanup_close_ int fd = openat2_in_root(m->rootfd, runner_masked_paths[i], O_PATH);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
            continue; /* not on this kernel */
        if (S_ISDIR(st.st_mode)) {
            if (mount_on(fd, "tmpfs", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL,
                         runner_masked_paths[i], err) < 0)
                return -1;
            continue;
        }
        _cleanup_close_ int null =
                open_tree(AT_FDCWD, "/dev/null", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (null < 0 ||
            move_mount(null, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
            return dlc_error_set_errno(err, errno, "mask %s", runner_masked_paths[i]);
    }
    return 0;
}

static int readonly_proc_paths(struct mctx *m, struct dlc_error **err)
{
    for (size_t i = 0; runner_readonly_paths[i]; i++) {
        _cleanup_close_ int fd = openat2_in_root(m->rootfd, runner_readonly_paths[i], O_PATH);
        if (fd < 0)
            continue;
        _cleanup_close_ int tree = open_tree(
                fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
        if (tree < 0)
            return dlc_error_set_errno(err, errno, "read-only %s", runner_readonly_paths[i]);
        if (set_attr(tree,
                     MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                     true, runner_readonly_paths[i], err) < 0)
            return -1;
        if (move_mount(tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
            return dlc_error_set_errno(err, errno, "read-only %s", runner_readonly_paths[i]);
    }
    return 0;
}

static int bind_user(struct mctx *m, const char *src, const char *dst, bool ro,
                     struct dlc_error **err)
{
    /* nodev everywhere but /dev: a node in a host directory cannot be opened */
    return bind_at(m, src, dst, DEV_FLAGS | (ro ? MOUNT_ATTR_RDONLY : 0), err);
}

static int mount_binds(struct mctx *m, struct dlc_error **err)
{
    const struct runner_spec *spec = m->c->spec;
    const struct runner_sagemaker *sm = &spec->sm;
    for (size_t i = 0; i < sm->n_channels; i++) {
        _cleanup_free_ char *dst = xasprintf("/opt/ml/input/data/%s", sm->channels[i].name);
        if (bind_user(m, sm->channels[i].dir, dst, true, err) < 0)
            return -1;
    }
    static const struct {
        size_t off;
        const char *dst;
        bool ro;
    } dirs[] = {
            {offsetof(struct runner_sagemaker, model_dir), "/opt/ml/model", false},
            {offsetof(struct runner_sagemaker, output_dir), "/opt/ml/output", false},
            {offsetof(struct runner_sagemaker, code_dir), "/opt/ml/code", true},
            {offsetof(struct runner_sagemaker, checkpoint_dir), "/opt/ml/checkpoints", false},
    };
    for (size_t i = 0; i < DLC_ARRAY_SIZE(dirs); i++) {
        const char *src = *(char *const *)((const char *)sm + dirs[i].off);
        if (src && bind_user(m, src, dirs[i].dst, dirs[i].ro, err) < 0)
            return -1;
    }
    for (size_t i = 0; i < spec->n_binds; i++)
        if (bind_user(m, spec->binds[i].source, spec->binds[i].destination, spec->binds[i].readonly,
                      err) < 0)
            return -1;
    return 0;
}

static int write_files(struct mctx *m, struct dlc_error **err)
{
    const struct runner_spec *spec = m->c->spec;
    for (size_t i = 0; i < spec->n_files; i++) {
        const struct runner_file *f = &spec->files[i];
        _cleanup_free_ char *host = NULL;
        if (dlc_path_resolve_in_root(m->c->rootfs, f->path, &host, err) < 0)
            return -1;
        _cleanup_free_ char *dir = dlc_path_dirname(host);
        if (dlc_mkdir_p(dir, 0755, err) < 0)
            return -1;
        _cleanup_close_ int fd =
                open(host, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, f->mode);
        if (fd < 0 || dlc_write_all(fd, f->content, f->len, err) < 0 || fchmod(fd, f->mode) < 0)
            return fd < 0 || !*err ? dlc_error_set_errno(err, errno, "write %s", f->path) : -1;
    }
    return 0;
}

static int pivot(struct mctx *m, struct dlc_error **err)
{
    /* pivot_root(".", ".") stacks the old root under the new one; detaching "." then
     * removes it without needing a directory for it */
    if (fchdir(m->rootfd) < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
        return dlc_error_set_errno(err, errno, "pivot_root");
    if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
        return dlc_error_set_errno(err, errno, "detach the old root");
    return 0;
}

int runner_mounts_setup(const struct container_config *c, struct dlc_error **err)
{
    /* nothing we mount may propagate back to the host */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return dlc_error_set_errno(err, errno, "make mounts private");
    if (scratch(c, err) < 0 || mount_overlay(c, err) < 0)
        return -1;
    struct mctx m = {c, open(c->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC)};
    if (m.rootfd < 0)
        return dlc_error_set_errno(err, errno, "open %s", c->rootfs);
    int r = mount_proc(&m, err);
    if (r == 0)
        r = mount_dev(&m, err);
    if (r == 0)
        r = mount_sys(&m, err);
    if (r == 0)
        r = mask_paths(&m, err);
    if (r == 0)
        r = readonly_proc_paths(&m, err);
    if (r == 0)
        r = mount_binds(&m, err);
    if (r == 0)
        r = write_files(&m, err);
    if (r == 0 && c->cwd) {
        int fd = target_open(&m, c->cwd, true, err); /* docker creates WorkingDir */
        r = fd < 0 ? -1 : close(fd);
    }
    if (r == 0 && c->spec->read_only) {
        _cleanup_close_ int tmp = target_open(&m, "/tmp", true, err);
        r = tmp < 0 ? -1
                    : mount_on(tmp, "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", "/tmp",
                               err);
        if (r == 0)
            r = set_attr(m.rootfd, MOUNT_ATTR_RDONLY, false, "/", err);
    }
    if (r == 0)
        r = pivot(&m, err);
    close(m.rootfd);
    return r;
}
