/* file.c: mkdir -p, rm -rf, whole-file reads, atomic writes, locks. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "common.h"

bool dlc_path_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

bool dlc_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int dlc_mkdir_p(const char *path, mode_t mode, struct dlc_error **err)
{
    _cleanup_free_ char *p = xstrdup(path);
    size_t len = strlen(p);
    for (size_t i = 1; i <= len; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char saved = p[i];
        p[i] = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return dlc_error_set_errno(err, errno, "create directory %s", p);
        p[i] = saved;
    }
    if (!dlc_is_dir(path))
        return dlc_error_set(err, ENOTDIR, "create directory %s: not a directory", path);
    return 0;
}

static int rm_rf_at(int dirfd, const char *name, dev_t dev, const char *top, struct dlc_error **err)
{
    _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return dlc_error_set_errno(err, errno, "remove %s: open %s", top, name);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return dlc_error_set_errno(err, errno, "remove %s: stat %s", top, name);
    if (st.st_dev != dev)
        return dlc_error_set(err, EBUSY, "remove %s: %s is a mount point", top, name);
    int fd2 = dup(fd);
    if (fd2 < 0)
        return dlc_error_set_errno(err, errno, "remove %s", top);
    _cleanup_dir_ DIR *d = fdopendir(fd2);
    if (d == NULL) {
        close(fd2);
        return dlc_error_set_errno(err, errno, "remove %s: read %s", top, name);
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat cst;
        if (fstatat(fd, de->d_name, &cst, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT)
                continue;
            return dlc_error_set_errno(err, errno, "remove %s: stat %s", top, de->d_name);
        }
        if (S_ISDIR(cst.st_mode)) {
            if (rm_rf_at(fd, de->d_name, dev, top, err) < 0)
                return -1;
            if (unlinkat(fd, de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                return dlc_error_set_errno(err, errno, "remove %s: rmdir %s", top, de->d_name);
        } else if (unlinkat(fd, de->d_name, 0) < 0 && errno != ENOENT) {
            return dlc_error_set_errno(err, errno, "remove %s: unlink %s", top, de->d_name);
        }
    }
    return 0;
}

int dlc_rm_rf(const char *path, struct dlc_error **err)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        return dlc_error_set_errno(err, errno, "remove %s", path);
    }
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) < 0 && errno != ENOENT)
            return dlc_error_set_errno(err, errno, "remove %s", path);
        return 0;
    }
    if (rm_rf_at(AT_FDCWD, path, st.st_dev, path, err) < 0)
        return -1;
    if (rmdir(path) < 0 && errno != ENOENT)
        return dlc_error_set_errno(err, errno, "remove %s", path);
    return 0;
}

int dlc_read_file(const char *path, size_t max, char **ret_buf, size_t *ret_len,
                  struct dlc_error **err)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dlc_error_set_errno(err, errno, "read %s", path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return dlc_error_set_errno(err, errno, "read %s", path);
    if (S_ISDIR(st.st_mode))
        return dlc_error_set(err, EISDIR, "read %s: is a directory", path);
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max)
        return dlc_error_set(err, EFBIG, "read %s: larger than %zu bytes", path, max);
    size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096;
    _cleanup_free_ char *buf = xmalloc(cap);
    size_t len = 0;
    for (;;) {
        if (len + 1 >= cap) {
            if (cap > max + 1)
                return dlc_error_set(err, EFBIG, "read %s: larger than %zu bytes", path, max);
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return dlc_error_set_errno(err, errno, "read %s", path);
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max)
            return dlc_error_set(err, EFBIG, "read %s: larger than %zu bytes", path, max);
    }
    buf[len] = '\0';
    *ret_buf = TAKE_PTR(buf);
    if (ret_len)
        *ret_len = len;
    return 0;
}

int dlc_write_all(int fd, const void *data, size_t len, struct dlc_error **err)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return dlc_error_set_errno(err, errno, "write");
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int dlc_fsync_dir(const char *dir, struct dlc_error **err)
{
    _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return dlc_error_set_errno(err, errno, "open directory %s", dir);
    if (fsync(fd) < 0 && errno != EINVAL)
        return dlc_error_set_errno(err, errno, "fsync directory %s", dir);
    return 0;
}

int dlc_atomic_file_open(struct dlc_atomic_file *af, const char *path, mode_t mode,
                         struct dlc_error **err)
{
    _cleanup_free_ char *dir = dlc_path_dirname(path);
    _cleanup_free_ char *tmpl = xasprintf("%s/.tmp-%s-XXXXXX", dir, dlc_path_basename(path));
    int fd = mkostemp(tmpl, O_CLOEXEC);
    if (fd < 0)
        return dlc_error_set_errno(err, errno, "create temporary file in %s", dir);
    if (fchmod(fd, mode) < 0) {
        int e = errno;
        close(fd);
        unlink(tmpl);
        return dlc_error_set_errno(err, e, "chmod %s", tmpl);
    }
    af->fd = fd;
    af->tmp_path = TAKE_PTR(tmpl);
    af->path = xstrdup(path);
    return 0;
}

void dlc_atomic_file_abort(struct dlc_atomic_file *af)
{
    if (af->fd >= 0)
        close(af->fd);
    if (af->tmp_path)
        unlink(af->tmp_path);
    free(af->tmp_path);
    free(af->path);
    af->fd = -1;
    af->tmp_path = af->path = NULL;
}

int dlc_atomic_file_commit(struct dlc_atomic_file *af, struct dlc_error **err)
{
    DLC_ASSERT(af->fd >= 0);
    if (fsync(af->fd) < 0) {
        dlc_error_set_errno(err, errno, "fsync %s", af->path);
        dlc_atomic_file_abort(af);
        return -1;
    }
    if (close(af->fd) < 0) {
        af->fd = -1;
        dlc_error_set_errno(err, errno, "close %s", af->path);
        dlc_atomic_file_abort(af);
        return -1;
    }
    af->fd = -1;
    if (rename(af->tmp_path, af->path) < 0) {
        dlc_error_set_errno(err, errno, "rename into %s", af->path);
        dlc_atomic_file_abort(af);
        return -1;
    }
    free(af->tmp_path);
    af->tmp_path = NULL;
    _cleanup_free_ char *dir = dlc_path_dirname(af->path);
    int r = dlc_fsync_dir(dir, err);
    dlc_atomic_file_abort(af);
    return r;
}

int dlc_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                          struct dlc_error **err)
{
    _cleanup_atomic_file_ struct dlc_atomic_file af = DLC_ATOMIC_FILE_INIT;
    if (dlc_atomic_file_open(&af, path, mode, err) < 0)
        return -1;
    if (dlc_write_all(af.fd, data, len, err) < 0)
        return dlc_error_wrap(err, "%s", path);
    return dlc_atomic_file_commit(&af, err);
}

int dlc_copy_file(const char *src, const char *dst, struct dlc_error **err)
{
    _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return dlc_error_set_errno(err, errno, "copy %s", src);
    struct stat st;
    if (fstat(in, &st) < 0)
        return dlc_error_set_errno(err, errno, "copy %s", src);
    _cleanup_atomic_file_ struct dlc_atomic_file af = DLC_ATOMIC_FILE_INIT;
    if (dlc_atomic_file_open(&af, dst, st.st_mode & 07777, err) < 0)
        return -1;
    char buf[65536];
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return dlc_error_set_errno(err, errno, "copy %s: read", src);
        }
        if (n == 0)
            break;
        if (dlc_write_all(af.fd, buf, (size_t)n, err) < 0)
            return dlc_error_wrap(err, "copy %s to %s", src, dst);
    }
    return dlc_atomic_file_commit(&af, err);
}

int dlc_lock_path(const char *path, bool exclusive, struct dlc_error **err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return dlc_error_set_errno(err, errno, "open lock %s", path);
    while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) < 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        close(fd);
        return dlc_error_set_errno(err, e, "lock %s", path);
    }
    return fd;
}
