/* storage.c: the registry's on-disk layout: content-addressed blobs shared by every
 * repository, per-repository links, the upload area, the root lock. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "registry-internal.h"

static int open_layout(struct rstore *st, bool gc, struct dlc_error **err)
{
    const char *const dirs[] = {st->blobs_dir, st->repos_dir, st->uploads_dir};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(dirs); i++)
        if (dlc_mkdir_p(dirs[i], 0755, err) < 0)
            return -1;
    _cleanup_free_ char *lock = dlc_path_join(st->root, ".lock");
    st->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (st->lock_fd < 0)
        return dlc_error_set_errno(err, errno, "open %s", lock);
    /* One process at a time: a server owns the upload area (it clears it on start) */
    if (flock(st->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            return dlc_error_set(err, EBUSY, "registry root %s is in use%s", st->root,
                                 gc ? " by a running server; stop it first"
                                    : " by another server or by garbage collection");
        return dlc_error_set_errno(err, errno, "lock %s", lock);
    }
    return 0;
}

int rstore_open(const char *root, bool gc, struct rstore **ret, struct dlc_error **err)
{
    if (dlc_mkdir_p(root, 0755, err) < 0)
        return dlc_error_wrap(err, "registry root");
    struct rstore *st = xcalloc(1, sizeof(*st));
    st->root = xstrdup(root);
    st->blobs_dir = dlc_path_join(root, "blobs/sha256");
    st->repos_dir = dlc_path_join(root, "repositories");
    st->uploads_dir = dlc_path_join(root, "_uploads");
    st->lock_fd = -1;
    pthread_mutex_init(&st->meta_lock, NULL);
    if (open_layout(st, gc, err) < 0) {
        rstore_free(st);
        return -1;
    }
    *ret = st;
    return 0;
}

void rstore_free(struct rstore *st)
{
    if (st == NULL)
        return;
    if (st->lock_fd >= 0)
        close(st->lock_fd);
    pthread_mutex_destroy(&st->meta_lock);
    free(st->root);
    free(st->blobs_dir);
    free(st->repos_dir);
    free(st->uploads_dir);
    free(st);
}

int rstore_clear_uploads(struct rstore *st, struct dlc_error **err)
{
    if (dlc_rm_rf(st->uploads_dir, err) < 0 || dlc_mkdir_p(st->uploads_dir, 0755, err) < 0)
        return dlc_error_wrap(err, "clear uploads");
    return 0;
}

char *rstore_blob_path(const struct rstore *st, const char *digest)
{
    const char *hex = oci_digest_hex(digest);
    return xasprintf("%s/%.2s/%s", st->blobs_dir, hex, hex);
}

char *rstore_repo_path(const struct rstore *st, const char *name, const char *sub)
{
    DLC_ASSERT(oci_name_is_valid(name));
    return xasprintf("%s/%s/%s", st->repos_dir, name, sub);
}

static char *link_path(const struct rstore *st, const char *name, const char *digest)
{
    _cleanup_free_ char *sub = xasprintf("_layers/sha256/%s", oci_digest_hex(digest));
    return rstore_repo_path(st, name, sub);
}

bool rstore_repo_exists(const struct rstore *st, const char *name)
{
    _cleanup_free_ char *m = rstore_repo_path(st, name, "_manifests");
    _cleanup_free_ char *l = rstore_repo_path(st, name, "_layers");
    return dlc_is_dir(m) || dlc_is_dir(l);
}

bool rstore_blob_exists(const struct rstore *st, const char *digest)
{
    _cleanup_free_ char *p = rstore_blob_path(st, digest);
    return dlc_path_exists(p);
}

bool rstore_blob_linked(const struct rstore *st, const char *name, const char *digest)
{
    _cleanup_free_ char *p = link_path(st, name, digest);
    return dlc_path_exists(p);
}

int rstore_blob_link(struct rstore *st, const char *name, const char *digest,
                     struct dlc_error **err)
{
    _cleanup_free_ char *p = link_path(st, name, digest);
    if (dlc_path_exists(p))
        return 0;
    _cleanup_free_ char *dir = dlc_path_dirname(p);
    if (dlc_mkdir_p(dir, 0755, err) < 0 ||
        dlc_write_file_atomic(p, digest, strlen(digest), 0644, err) < 0)
        return dlc_error_wrap(err, "link blob %s into %s", digest, name);
    return 0;
}

int rstore_blob_unlink(struct rstore *st, const char *name, const char *digest,
                       struct dlc_error **err)
{
    _cleanup_free_ char *p = link_path(st, name, digest);
    if (unlink(p) < 0) {
        if (errno == ENOENT)
            return dlc_error_set(err, ENOENT, "blob %s is not in repository %s", digest, name);
        return dlc_error_set_errno(err, errno, "unlink %s", p);
    }
    return 0;
}

int rstore_blob_open(const struct rstore *st, const char *name, const char *digest, int *ret_fd,
                     uint64_t *ret_size, struct dlc_error **err)
{
    if (!rstore_blob_linked(st, name, digest))
        return dlc_error_set(err, ENOENT, "blob %s is not in repository %s", digest, name);
    _cleanup_free_ char *p = rstore_blob_path(st, digest);
    int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return dlc_error_set(err, ENOENT, "blob %s is not in repository %s", digest, name);
        return dlc_error_set_errno(err, errno, "open %s", p);
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return dlc_error_set(err, EIO, "blob %s: not a regular file", digest);
    }
    *ret_fd = fd;
    *ret_size = (uint64_t)sb.st_size;
    return 0;
}

int rstore_blob_commit(struct rstore *st, int fd, const char *tmp_path, const char *digest,
                       struct dlc_error **err)
{
    _cleanup_free_ char *dst = rstore_blob_path(st, digest);
    if (dlc_path_exists(dst)) {
        unlink(tmp_path);
        return 0;
    }
    if (fdatasync(fd) < 0)
        return dlc_error_set_errno(err, errno, "fsync upload of %s", digest);
    _cleanup_free_ char *dir = dlc_path_dirname(dst);
    if (dlc_mkdir_p(dir, 0755, err) < 0)
        return -1;
    /* Another session may have committed the same digest meanwhile: the bytes are equal,
     * so replacing is harmless. */
    if (rename(tmp_path, dst) < 0)
        return dlc_error_set_errno(err, errno, "rename %s to %s", tmp_path, dst);
    return dlc_fsync_dir(dir, err);
}
