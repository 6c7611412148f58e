/* layers.c: unpacking OCI layer tarballs (libarchive) into overlayfs lower layers or onto
 * a flat rootfs, verifying each layer's diff_id on the way.
 *
 * Every path is resolved with openat2(2) against the destination root: in overlay mode no
 * symlink may be traversed at all, in apply mode symlinks resolve as if the destination
 * were "/" (RESOLVE_IN_ROOT), so no entry can ever write outside the destination. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "runner-internal.h"

#define WH_PREFIX     ".wh."
#define WH_OPAQUE     ".wh..wh..opq"
#define COPY_BUF_SIZE (256 * 1024)

/* ---- a set of the paths the current layer created (apply mode) -------------------- */

struct path_set {
    char **slots;
    size_t cap, n;
};

static uint64_t path_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static bool path_set_contains(const struct path_set *set, const char *p)
{
    if (set->cap == 0)
        return false;
    for (size_t i = path_hash(p) & (set->cap - 1);; i = (i + 1) & (set->cap - 1)) {
        if (set->slots[i] == NULL)
            return false;
        if (strcmp(set->slots[i], p) == 0)
            return true;
    }
}

static void path_set_insert_slot(char **slots, size_t cap, char *p)
{
    size_t i = path_hash(p) & (cap - 1);
    while (slots[i] != NULL)
        i = (i + 1) & (cap - 1);
    slots[i] = p;
}

static void path_set_add(struct path_set *set, const char *p)
{
    if (path_set_contains(set, p))
        return;
    if ((set->n + 1) * 2 > set->cap) {
        size_t ncap = set->cap ? set->cap * 2 : 256;
        char **ns = xcalloc(ncap, sizeof(*ns));
        for (size_t i = 0; i < set->cap; i++)
            if (set->slots[i])
                path_set_insert_slot(ns, ncap, set->slots[i]);
        free(set->slots);
        set->slots = ns;
        set->cap = ncap;
    }
    path_set_insert_slot(set->slots, set->cap, xstrdup(p));
    set->n++;
}

static void path_set_release(struct path_set *set)
{
    for (size_t i = 0; i < set->cap; i++)
        free(set->slots[i]);
    free(set->slots);
    *set = (struct path_set){0};
}

/* ---- the unpacker --------------------------------------------------------------------- */

struct dir_time {
    char *path;
    mode_t mode;
    struct timespec mtime;
};

struct unpacker {
    const struct layer_unpack_opts *opts;
    const char *blob; /* for messages */
    const char *dest;
    int rootfd;
    uint64_t resolve; /* RESOLVE_* flags for every lookup */
    struct path_set created;
    struct dir_time *dir_times;
    size_t n_dir_times;
    char *buf;
    /* the raw (decompressed) stream, hashed as the tar reader pulls it */
    struct archive *raw;
    struct oci_digester *digest;
    bool raw_eof;
    char *rawbuf;
};

static int openat2_dir(struct unpacker *u, const char *rel)
{
    struct open_how how = {
            .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
            .resolve = u->resolve,
    };
    if (strcmp(rel, ".") == 0)
        return fcntl(u->rootfd, F_DUPFD_CLOEXEC, 3);
    return (int)syscall(SYS_openat2, u->rootfd, rel, &how, sizeof(how));
}

/* "/proc/self/fd/N/name" (or "/proc/self/fd/N" for name NULL): for the calls that have
 * no *at() form (lsetxattr). */
static char *fd_path(int fd, const char *name)
{
    return name ? xasprintf("/proc/self/fd/%d/%s", fd, name) : xasprintf("/proc/self/fd/%d", fd);
}

/* Refuses names that could leave the root and returns the normalised relative path. */
static int entry_name(struct unpacker *u, const char *name, const char *what, char **ret,
                      struct dlc_error **err)
{
    if (name == NULL || *name == '\0')
        return dlc_error_set(err, EINVAL, "layer %s: %s with an empty name", u->blob, what);
    if (name[0] == '/')
        return dlc_error_set(err, EINVAL, "layer %s: %s '%s' is an absolute path", u->blob, what,
                             name);
    for (const char *p = name; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return dlc_error_set(err, EINVAL, "layer %s: %s '%s' contains '..'", u->blob, what,
                                 name);
        p += n;
        while (*p == '/')
            p++;
    }
    return dlc_path_normalize_relative(name, ret, err);
}

/* Overlay mode: a parent directory the tar does not list would be created as a real
 * directory, which would hide a symlink of the same name in a lower layer (docker would
 * have followed it). Refuse rather than build a different filesystem. */
static int check_lower_symlink(struct unpacker *u, const char *rel, struct dlc_error **err)
{
    for (size_t i = 0; i < u->opts->n_lower; i++) {
        _cleanup_free_ char *p = dlc_path_join(u->opts->lower_dirs[i], rel);
        struct stat st;
        if (lstat(p, &st) < 0)
            continue;
        if (S_ISLNK(st.st_mode))
            return dlc_error_set(err, EINVAL,
                                 "layer %s: '%s' is a symlink in a lower layer and this layer "
                                 "puts files under it without listing the directory",
                                 u->blob, rel);
        return 0;
    }
    return 0;
}

static int lookup_error(struct unpacker *u, const char *rel, struct dlc_error **err)
{
    if (errno == ELOOP || errno == EXDEV)
        return dlc_error_set(err, EINVAL, "layer %s: path '%s' goes through a symlink", u->blob,
                             rel);
    if (errno == ENOTDIR)
        return dlc_error_set(err, EINVAL, "layer %s: '%s' is not a directory", u->blob, rel);
    return dlc_error_set_errno(err, errno, "layer %s: parent '%s'", u->blob, rel);
}

static int create_missing(struct unpacker *u, const char *rel, struct dlc_error **err)
{
    _cleanup_free_ char *prefix = xstrdup(rel);
    for (char *slash = prefix;; slash++) {
        slash = strchr(slash, '/');
        if (slash)
            *slash = '\0';
        _cleanup_close_ int pfd = openat2_dir(u, prefix);
        if (pfd < 0 && errno != ENOENT)
            return lookup_error(u, prefix, err);
        if (pfd < 0) {
            if (check_lower_symlink(u, prefix, err) < 0)
                return -1;
            _cleanup_free_ char *dir = dlc_path_dirname(prefix);
            _cleanup_close_ int dfd = openat2_dir(u, dir);
            if (dfd < 0 || (mkdirat(dfd, dlc_path_basename(prefix), 0755) < 0 && errno != EEXIST))
                return dlc_error_set_errno(err, errno, "layer %s: create '%s'", u->blob, prefix);
        }
        if (slash == NULL)
            return 0;
        *slash = '/';
    }
}

/* Opens the directory rel (creating missing components as 0755 directories). */
static int ensure_dir(struct unpacker *u, const char *rel, struct dlc_error **err)
{
    int fd = openat2_dir(u, rel);
    if (fd >= 0)
        return fd;
    if (errno != ENOENT)
        return lookup_error(u, rel, err);
    if (u->opts->mode == LAYER_MODE_APPLY) {
        /* Resolve like the container would (a dangling symlink's target is created);
         * the result is free of symlinks, so mkdir -p stays inside. */
        _cleanup_free_ char *host = NULL;
        if (dlc_path_resolve_in_root(u->dest, rel, &host, err) < 0 ||
            dlc_mkdir_p(host, 0755, err) < 0)
            return dlc_error_wrap(err, "layer %s", u->blob);
    } else if (create_missing(u, rel, err) < 0) {
        return -1;
    }
    fd = openat2_dir(u, rel);
    if (fd < 0)
        return lookup_error(u, rel, err);
    return fd;
}

/* Removes name under dirfd, recursively for directories, never following symlinks. */
static int remove_at(int parent, const char *name)
{
    if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -1;
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    _cleanup_dir_ DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (remove_at(dirfd(d), de->d_name) < 0)
            return -1;
    }
    return unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : -1;
}

/* ---- whiteouts -------------------------------------------------------------------- */

static int apply_whiteout(struct unpacker *u, int pfd, const char *parent, const char *target,
                          struct dlc_error **err)
{
    if (u->opts->mode == LAYER_MODE_OVERLAY) {
        struct stat st;
        /* An entry this layer already wrote is not hidden by the layer's own whiteout. */
        if (fstatat(pfd, target, &st, AT_SYMLINK_NOFOLLOW) == 0)
            return 0;
        if (mknodat(pfd, target, S_IFCHR | 0000, makedev(0, 0)) < 0)
            return dlc_error_set_errno(err, errno, "layer %s: whiteout '%s/%s'", u->blob, parent,
                                       target);
        return 0;
    }
    _cleanup_free_ char *rel = dlc_path_join(parent, target);
    const char *key = strcmp(parent, ".") == 0 ? target : rel;
    if (path_set_contains(&u->created, key))
        return 0;
    if (remove_at(pfd, target) < 0)
        return dlc_error_set_errno(err, errno, "layer %s: whiteout '%s'", u->blob, key);
    return 0;
}

static int apply_opaque_overlay(struct unpacker *u, int pfd, const char *parent,
                                struct dlc_error **err)
{
    _cleanup_free_ char *p = fd_path(pfd, NULL);
    /* user.* works for unprivileged mounts (overlay's userxattr); root also sets the
     * trusted.* form that a normal mount reads. */
    if (setxattr(p, "user.overlay.opaque", "y", 1, 0) < 0)
        return dlc_error_set_errno(err, errno, "layer %s: mark '%s' opaque", u->blob, parent);
    if (u->opts->privileged && setxattr(p, "trusted.overlay.opaque", "y", 1, 0) < 0)
        return dlc_error_set_errno(err, errno, "layer %s: mark '%s' opaque", u->blob, parent);
    return 0;
}

static int apply_opaque(struct unpacker *u, int pfd, const char *parent, struct dlc_error **err)
{
    if (u->opts->mode == LAYER_MODE_OVERLAY)
        return apply_opaque_overlay(u, pfd, parent, err);
    int fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    _cleanup_dir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return dlc_error_set_errno(err, errno, "layer %s: opaque '%s'", u->blob, parent);
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        _cleanup_free_ char *rel = dlc_path_join(parent, de->d_name);
        const char *key = strcmp(parent, ".") == 0 ? de->d_name : rel;
        if (path_set_contains(&u->created, key))
            continue;
        if (remove_at(dirfd(d), de->d_name) < 0)
            return dlc_error_set_errno(err, errno, "layer %s: opaque '%s'", u->blob, parent);
    }
    return 0;
}

/* ---- entries ---------------------------------------------------------------------- */

static bool xattr_allowed(const struct unpacker *u, const char *name)
{
    /* overlay's own xattrs would let a layer redirect lookups or fake whiteouts */
    if (dlc_startswith(name, "trusted.overlay.") || dlc_startswith(name, "user.overlay."))
        return false;
    if (dlc_startswith(name, "user."))
        return true;
    return u->opts->privileged &&
           (dlc_startswith(name, "trusted.") || dlc_startswith(name, "security."));
}

static void set_xattrs(struct unpacker *u, struct archive_entry *e, int pfd, const char *base)
{
    if (archive_entry_xattr_reset(e) == 0)
        return;
    const char *name;
    const void *val;
    size_t size;
    _cleanup_free_ char *path = fd_path(pfd, base);
    while (archive_entry_xattr_next(e, &name, &val, &size) == ARCHIVE_OK) {
        if (!xattr_allowed(u, name))
            continue;
        if (lsetxattr(path, name, val, size, 0) < 0)
            dlc_debug("layer %s: xattr %s on %s: %s, ignoring", u->blob, name, base,
                      strerror(errno));
    }
}

static int set_attrs(struct unpacker *u, struct archive_entry *e, int pfd, const char *base,
                     const char *rel, struct dlc_error **err)
{
    mode_t type = archive_entry_filetype(e);
    if (u->opts->privileged && fchownat(pfd, base, (uid_t)archive_entry_uid(e),
                                        (gid_t)archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) < 0)
        return dlc_error_set_errno(err, errno, "layer %s: chown '%s'", u->blob, rel);
    set_xattrs(u, e, pfd, base);
    struct timespec ts[2] = {
            {archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
            {archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
    };
    if (type == AE_IFDIR) {
        /* Mode and times of directories are set at the end: a read-only directory must
         * stay writable while the entries under it are unpacked. */
        u->dir_times = xrealloc(u->dir_times, (u->n_dir_times + 1) * sizeof(*u->dir_times));
        u->dir_times[u->n_dir_times++] =
                (struct dir_time){xstrdup(rel), archive_entry_perm(e) & 07777, ts[1]};
        return fchmodat(pfd, base, 0700 | (archive_entry_perm(e) & 07777), 0) < 0
                       ? dlc_error_set_errno(err, errno, "layer %s: chmod '%s'", u->blob, rel)
                       : 0;
    }
    if (type != AE_IFLNK && fchmodat(pfd, base, archive_entry_perm(e) & 07777, 0) < 0)
        return dlc_error_set_errno(err, errno, "layer %s: chmod '%s'", u->blob, rel);
    if (utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return dlc_error_set_errno(err, errno, "layer %s: set times of '%s'", u->blob, rel);
    return 0;
}

static int write_data(struct unpacker *u, struct archive *a, int fd, const char *rel,
                      struct dlc_error **err)
{
    for (;;) {
        const void *buf;
        size_t size;
        la_int64_t off;
        int r = archive_read_data_block(a, &buf, &size, &off);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r != ARCHIVE_OK)
            return dlc_error_set(err, EIO, "layer %s: read '%s': %s", u->blob, rel,
                                 archive_error_string(a));
        for (size_t done = 0; done < size;) {
            ssize_t n = pwrite(fd, (const char *)buf + done, size - done, off + (off_t)done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return dlc_error_set_errno(err, errno, "layer %s: write '%s'", u->blob, rel);
            done += (size_t)n;
        }
    }
}

static int create_file(struct unpacker *u, struct archive *a, struct archive_entry *e, int pfd,
                       const char *base, const char *rel, struct dlc_error **err)
{
    _cleanup_close_ int fd =
            openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return dlc_error_set_errno(err, errno, "layer %s: create '%s'", u->blob, rel);
    if (write_data(u, a, fd, rel, err) < 0)
        return -1;
    /* sparse files: the last hole has no data block */
    if (archive_entry_size_is_set(e) && ftruncate(fd, archive_entry_size(e)) < 0)
        return dlc_error_set_errno(err, errno, "layer %s: size '%s'", u->blob, rel);
    return 0;
}

static int create_hardlink(struct unpacker *u, int pfd, const char *base, const char *rel,
                           const char *target, struct dlc_error **err)
{
    _cleanup_free_ char *trel = NULL;
    if (entry_name(u, target, "hardlink target", &trel, err) < 0)
        return -1;
    _cleanup_free_ char *tdir = dlc_path_dirname(trel);
    const char *tbase = dlc_path_basename(trel);
    _cleanup_close_ int tfd = openat2_dir(u, tdir);
    struct stat st;
    if (tfd < 0 || fstatat(tfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return dlc_error_set(err, EINVAL,
                             "layer %s: hardlink '%s' -> '%s': target is not in "
                             "this layer",
                             u->blob, rel, target);
    if (S_ISDIR(st.st_mode))
        return dlc_error_set(err, EINVAL,
                             "layer %s: hardlink '%s' -> '%s': target is a "
                             "directory",
                             u->blob, rel, target);
    if (linkat(tfd, tbase, pfd, base, 0) < 0)
        return dlc_error_set_errno(err, errno, "layer %s: hardlink '%s'", u->blob, rel);
    return 0;
}

/* Creates the node of entry e (nothing else); 1 when the entry was skipped. */
static int create_node(struct unpacker *u, struct archive *a, struct archive_entry *e, int pfd,
                       const char *base, const char *rel, bool exists, struct dlc_error **err)
{
    mode_t type = archive_entry_filetype(e);
    switch (type) {
    case AE_IFREG:
        return create_file(u, a, e, pfd, base, rel, err);
    case AE_IFDIR:
        if (!exists && mkdirat(pfd, base, 0700) < 0)
            return dlc_error_set_errno(err, errno, "layer %s: mkdir '%s'", u->blob, rel);
        return 0;
    case AE_IFLNK:
        if (symlinkat(archive_entry_symlink(e), pfd, base) < 0)
            return dlc_error_set_errno(err, errno, "layer %s: symlink '%s'", u->blob, rel);
        return 0;
    case AE_IFCHR:
    case AE_IFBLK:
        if (!u->opts->privileged) {
            dlc_debug("layer %s: device node '%s' needs root, skipped", u->blob, rel);
            return 1;
        }
        /* fall through */
    case AE_IFIFO:
        if (mknodat(pfd, base, type | 0600, archive_entry_rdev(e)) < 0)
            return dlc_error_set_errno(err, errno, "layer %s: mknod '%s'", u->blob, rel);
        return 0;
    default:
        dlc_debug("layer %s: '%s' has an unsupported type, skipped", u->blob, rel);
        return 1;
    }
}

static int create_entry(struct unpacker *u, struct archive *a, struct archive_entry *e, int pfd,
                        const char *base, const char *rel, struct dlc_error **err)
{
    const char *hardlink = archive_entry_hardlink(e);
    bool is_dir = archive_entry_filetype(e) == AE_IFDIR && hardlink == NULL;
    struct stat st;
    bool exists = fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0;
    /* Only directory over directory keeps the old node (and takes the new attributes). */
    if (exists && !(is_dir && S_ISDIR(st.st_mode))) {
        if (remove_at(pfd, base) < 0)
            return dlc_error_set_errno(err, errno, "layer %s: replace '%s'", u->blob, rel);
        exists = false;
    }
    if (hardlink)
        return create_hardlink(u, pfd, base, rel, hardlink, err);
    int r = create_node(u, a, e, pfd, base, rel, exists, err);
    if (r != 0)
        return r < 0 ? -1 : 0;
    return set_attrs(u, e, pfd, base, rel, err);
}

static int unpack_entry(struct unpacker *u, struct archive *a, struct archive_entry *e,
                        struct dlc_error **err)
{
    _cleanup_free_ char *rel = NULL;
    if (entry_name(u, archive_entry_pathname(e), "entry", &rel, err) < 0)
        return -1;
    if (strcmp(rel, ".") == 0)
        return 0; /* the root directory itself */
    _cleanup_free_ char *parent = dlc_path_dirname(rel);
    const char *base = dlc_path_basename(rel);
    _cleanup_close_ int pfd = ensure_dir(u, parent, err);
    if (pfd < 0)
        return -1;
    if (strcmp(base, WH_OPAQUE) == 0)
        return apply_opaque(u, pfd, parent, err);
    if (dlc_startswith(base, WH_PREFIX)) {
        if (base[strlen(WH_PREFIX)] == '\0')
            return dlc_error_set(err, EINVAL, "layer %s: invalid whiteout '%s'", u->blob, rel);
        return apply_whiteout(u, pfd, parent, base + strlen(WH_PREFIX), err);
    }
    if (create_entry(u, a, e, pfd, base, rel, err) < 0)
        return -1;
    if (u->opts->mode == LAYER_MODE_APPLY)
        path_set_add(&u->created, rel);
    return 0;
}

/* Directory modes and times, deepest (latest) first so a parent's mode never blocks. */
static int finish_dirs(struct unpacker *u, struct dlc_error **err)
{
    for (size_t i = u->n_dir_times; i-- > 0;) {
        struct dir_time *dt = &u->dir_times[i];
        _cleanup_free_ char *parent = dlc_path_dirname(dt->path);
        _cleanup_close_ int pfd = openat2_dir(u, parent);
        if (pfd < 0)
            return dlc_error_set_errno(err, errno, "layer %s: '%s'", u->blob, dt->path);
        const char *base = dlc_path_basename(dt->path);
        struct stat st;
        if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
            continue; /* replaced by a later entry */
        if (fchmodat(pfd, base, dt->mode, 0) < 0)
            return dlc_error_set_errno(err, errno, "layer %s: chmod '%s'", u->blob, dt->path);
        struct timespec ts[2] = {dt->mtime, dt->mtime};
        if (utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
            return dlc_error_set_errno(err, errno, "layer %s: set times of '%s'", u->blob,
                                       dt->path);
    }
    return 0;
}

/* ---- the stream: decompress (any filter libarchive knows), hash, untar ------------- */

static la_ssize_t raw_read(struct archive *a, void *data, const void **buf)
{
    struct unpacker *u = data;
    if (u->raw_eof)
        return 0;
    la_ssize_t n = archive_read_data(u->raw, u->rawbuf, COPY_BUF_SIZE);
    if (n < 0) {
        if (a != NULL)
            archive_set_error(a, EIO, "%s", archive_error_string(u->raw));
        return -1;
    }
    if (n == 0)
        u->raw_eof = true;
    oci_digester_update(u->digest, u->rawbuf, (size_t)n);
    *buf = u->rawbuf;
    return n;
}

static int open_raw(struct unpacker *u, const char *path, struct dlc_error **err)
{
    u->raw = archive_read_new();
    archive_read_support_filter_all(u->raw);
    archive_read_support_format_raw(u->raw);
    struct archive_entry *e;
    if (archive_read_open_filename(u->raw, path, COPY_BUF_SIZE) != ARCHIVE_OK ||
        archive_read_next_header(u->raw, &e) != ARCHIVE_OK)
        return dlc_error_set(err, EIO, "layer %s: open %s: %s", u->blob, path,
                             archive_error_string(u->raw));
    return 0;
}

static int read_tar(struct unpacker *u, struct dlc_error **err)
{
    struct archive *t = archive_read_new();
    archive_read_support_format_tar(t);
    int r = archive_read_open(t, u, NULL, raw_read, NULL);
    struct archive_entry *e;
    while (r == ARCHIVE_OK && (r = archive_read_next_header(t, &e)) == ARCHIVE_OK) {
        if (unpack_entry(u, t, e, err) < 0) {
            archive_read_free(t);
            return -1;
        }
    }
    if (r != ARCHIVE_EOF) {
        dlc_error_set(err, EINVAL, "layer %s: not a valid tar stream: %s", u->blob,
                      archive_error_string(t));
        archive_read_free(t);
        return -1;
    }
    archive_read_free(t);
    /* hash the rest (the tar's zero padding) so the digest covers the whole stream */
    const void *buf;
    while (!u->raw_eof)
        if (raw_read(NULL, u, &buf) < 0)
            return dlc_error_set(err, EIO, "layer %s: %s", u->blob, archive_error_string(u->raw));
    return 0;
}

static void unpacker_release(struct unpacker *u)
{
    if (u->rootfd >= 0)
        close(u->rootfd);
    path_set_release(&u->created);
    for (size_t i = 0; i < u->n_dir_times; i++)
        free(u->dir_times[i].path);
    free(u->dir_times);
    if (u->raw)
        archive_read_free(u->raw);
    oci_digester_free(u->digest);
    free(u->rawbuf);
}

int runner_layer_unpack(const char *blob_path, const char *diff_id, const char *dest_dir,
                        const struct layer_unpack_opts *opts, struct dlc_error **err)
{
    struct unpacker u = {.opts = opts, .rootfd = -1};
    u.blob = diff_id ? diff_id : blob_path;
    u.dest = dest_dir;
    u.resolve = RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV |
                (opts->mode == LAYER_MODE_OVERLAY ? RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH
                                                  : RESOLVE_IN_ROOT);
    u.rootfd = open(dest_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (u.rootfd < 0) {
        dlc_error_set_errno(err, errno, "unpack into %s", dest_dir);
        unpacker_release(&u);
        return -1;
    }
    u.digest = oci_digester_new();
    u.rawbuf = xmalloc(COPY_BUF_SIZE);
    int r = open_raw(&u, blob_path, err);
    if (r == 0)
        r = read_tar(&u, err);
    if (r == 0)
        r = finish_dirs(&u, err);
    char got[OCI_DIGEST_BUFSZ];
    if (r == 0) {
        oci_digester_final(u.digest, got);
        if (diff_id && strcmp(got, diff_id) != 0)
            r = dlc_error_set(err, EBADMSG,
                              "layer %s: content hashes to %s: corrupt blob or wrong diff_id",
                              diff_id, got);
    }
    unpacker_release(&u);
    return r;
}

/* ---- the layer cache ---------------------------------------------------------------- */

static int unpack_cached(struct oci_store *s, const struct oci_descriptor *layer,
                         const char *diff_id, const char *base, char **below,
                         struct dlc_error **err)
{
    const char *hex = oci_digest_hex(diff_id);
    _cleanup_free_ char *final = dlc_path_join(base, hex);
    _cleanup_free_ char *lock_path = xasprintf("%s/.%s.lock", base, hex);
    _cleanup_close_ int lock = dlc_lock_path(lock_path, true, err);
    if (lock < 0)
        return -1;
    if (dlc_is_dir(final))
        return 0; /* another dlc unpacked it while we waited */
    if (oci_media_type_layer_compression(layer->media_type) == NULL)
        return dlc_error_set(err, EINVAL, "layer %s: unsupported media type '%s'", layer->digest,
                             layer->media_type ? layer->media_type : "");
    _cleanup_free_ char *blob = oci_store_blob_path(s, layer->digest);
    if (!dlc_path_exists(blob))
        return dlc_error_set(err, ENOENT, "layer %s: blob missing from the store", layer->digest);
    /* Under the lock a leftover temp dir can only be from a dlc that crashed. */
    _cleanup_free_ char *tmp = xasprintf("%s/.tmp-%s", base, hex);
    if (runner_rm_tree(tmp, err) < 0)
        return -1;
    if (mkdir(tmp, 0755) < 0)
        return dlc_error_set_errno(err, errno, "create %s", tmp);
    size_t n_below = dlc_strv_len(below);
    _cleanup_free_ char **lower = xcalloc(n_below + 1, sizeof(*lower));
    for (size_t i = 0; i < n_below; i++)
        lower[i] = below[n_below - 1 - i];
    struct layer_unpack_opts opts = {LAYER_MODE_OVERLAY, runner_privileged(), lower, n_below};
    int r = runner_layer_unpack(blob, diff_id, tmp, &opts, err);
    _cleanup_close_ int tfd = r == 0 ? open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    /* Data must be on disk before the name says the layer is complete. */
    if (r == 0 && (tfd < 0 || syncfs(tfd) < 0))
        r = dlc_error_set_errno(err, errno, "sync %s", tmp);
    if (r == 0 && rename(tmp, final) < 0)
        r = dlc_error_set_errno(err, errno, "rename %s", tmp);
    if (r < 0) {
        struct dlc_error *e2 = NULL;
        if (runner_rm_tree(tmp, &e2) < 0)
            dlc_error_free(&e2);
        return -1;
    }
    unlink(lock_path);
    return dlc_fsync_dir(base, err);
}

int runner_layers_prepare(struct oci_store *s, const struct oci_image *img, char ***ret_dirs,
                          struct dlc_error **err)
{
    const struct oci_image_config *cfg = img->config;
    if (cfg->n_diff_ids != img->manifest->n_layers)
        return dlc_error_set(err, EINVAL, "image has %zu layers but %zu diff_ids",
                             img->manifest->n_layers, cfg->n_diff_ids);
    _cleanup_free_ char *base = xasprintf("%s/layers/sha256", oci_store_root(s));
    _cleanup_strv_ char **dirs = xcalloc(1, sizeof(char *));
    bool made_base = false;
    for (size_t i = 0; i < cfg->n_diff_ids; i++) {
        const char *diff_id = cfg->diff_ids[i];
        if (oci_digest_validate(diff_id, err) < 0)
            return dlc_error_wrap(err, "image config: diff_ids[%zu]", i);
        _cleanup_free_ char *dir = dlc_path_join(base, oci_digest_hex(diff_id));
        if (!dlc_is_dir(dir)) {
            if (!made_base && dlc_mkdir_p(base, 0755, err) < 0)
                return -1;
            made_base = true;
            if (unpack_cached(s, &img->manifest->layers[i], diff_id, base, dirs, err) < 0)
                return dlc_error_wrap(err, "unpack layer %zu", i + 1);
        }
        dirs = dlc_strv_push(dirs, dir);
    }
    *ret_dirs = TAKE_PTR(dirs);
    return 0;
}
