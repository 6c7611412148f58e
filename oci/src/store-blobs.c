/* store-blobs.c: content-addressed blobs under blobs/sha256/: verified while written, made
 * visible only by an atomic rename, verified again when read. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "oci-internal.h"

struct oci_blob_writer {
    struct oci_store *store;
    int fd;
    char *tmp_path; /* NULL once renamed into place */
    struct oci_digester *digester;
    char expected[OCI_DIGEST_BUFSZ]; /* "" when unknown */
    int64_t expected_size;           /* < 0 when unknown */
    bool failed;
};

char *oci_store_blob_path(const struct oci_store *s, const char *digest)
{
    if (oci_digest_validate(digest, NULL) < 0)
        return NULL;
    return dlc_path_join(s->blobs_dir, oci_digest_hex(digest));
}

bool oci_store_blob_exists(struct oci_store *s, const char *digest)
{
    _cleanup_free_ char *path = oci_store_blob_path(s, digest);
    struct stat st;
    return path != NULL && lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The temp file is created under a shared store lock and flocked before that lock is
 * released, so gc (which holds the lock exclusively) can tell a live writer's temp file
 * (locked) from one a crashed writer left behind (not locked). */
static int create_temp(struct oci_store *s, struct oci_blob_writer *w, struct dlc_error **err)
{
    _cleanup_close_ int lock = dlc_lock_path(s->lock_path, false, err);
    if (lock < 0)
        return -1;
    _cleanup_free_ char *tmpl = xasprintf("%s/" OCI_BLOB_TMP_PREFIX "blob-XXXXXX", s->blobs_dir);
    int fd = mkostemp(tmpl, O_CLOEXEC);
    if (fd < 0)
        return dlc_error_set_errno(err, errno, "create temporary blob in %s", s->blobs_dir);
    if (fchmod(fd, 0644) < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        close(fd);
        unlink(tmpl);
        return dlc_error_set_errno(err, e, "prepare %s", tmpl);
    }
    w->fd = fd;
    w->tmp_path = TAKE_PTR(tmpl);
    return 0;
}

int oci_store_blob_writer_new(struct oci_store *s, const char *expected_digest,
                              int64_t expected_size, struct oci_blob_writer **ret,
                              struct dlc_error **err)
{
    if (expected_digest != NULL && oci_digest_validate(expected_digest, err) < 0)
        return -1;
    if (oci_store_lease(s, err) < 0) /* before the blob exists: gc must not take it */
        return -1;
    _cleanup_(oci_blob_writer_freep) struct oci_blob_writer *w = xcalloc(1, sizeof(*w));
    w->store = s;
    w->fd = -1;
    w->expected_size = expected_size;
    if (expected_digest != NULL)
        snprintf(w->expected, sizeof(w->expected), "%s", expected_digest);
    if (create_temp(s, w, err) < 0)
        return -1;
    w->digester = oci_digester_new();
    *ret = TAKE_PTR(w);
    return 0;
}

int oci_blob_writer_write(struct oci_blob_writer *w, const void *data, size_t len,
                          struct dlc_error **err)
{
    if (w->failed)
        return dlc_error_set(err, EIO, "write blob: an earlier write failed");
    uint64_t have = oci_digester_size(w->digester);
    if (w->expected_size >= 0 && (uint64_t)w->expected_size - have < len) {
        w->failed = true;
        return dlc_error_set(err, EBADMSG, "blob %s is larger than the expected %" PRId64 " bytes",
                             w->expected[0] ? w->expected : "", w->expected_size);
    }
    oci_digester_update(w->digester, data, len);
    if (dlc_write_all(w->fd, data, len, err) < 0) {
        w->failed = true;
        return dlc_error_wrap(err, "write %s", w->tmp_path);
    }
    return 0;
}

/* Size and digest of what was written, checked against what the caller expected. */
static int writer_check(struct oci_blob_writer *w, char digest[OCI_DIGEST_BUFSZ],
                        struct dlc_error **err)
{
    uint64_t size = oci_digester_size(w->digester);
    oci_digester_final(w->digester, digest);
    if (w->expected_size >= 0 && size != (uint64_t)w->expected_size)
        return dlc_error_set(err, EBADMSG, "blob %s has %" PRIu64 " bytes, expected %" PRId64,
                             w->expected[0] ? w->expected : digest, size, w->expected_size);
    if (w->expected[0] != '\0' && strcmp(w->expected, digest) != 0)
        return dlc_error_set(err, EBADMSG, "blob content hashes to %s, expected %s", digest,
                             w->expected);
    return 0;
}

int oci_blob_writer_commit(struct oci_blob_writer *w, char ret_digest[OCI_DIGEST_BUFSZ],
                           uint64_t *ret_size, struct dlc_error **err)
{
    _cleanup_(oci_blob_writer_freep) struct oci_blob_writer *owned = w;
    if (w->failed)
        return dlc_error_set(err, EIO, "commit blob: an earlier write failed");
    char digest[OCI_DIGEST_BUFSZ];
    if (writer_check(w, digest, err) < 0)
        return -1;
    if (fsync(w->fd) < 0)
        return dlc_error_set_errno(err, errno, "fsync %s", w->tmp_path);
    _cleanup_free_ char *path = oci_store_blob_path(w->store, digest);
    struct stat st;
    /* Same digest, same bytes: an existing blob is kept and the temp file dropped. */
    if (!(lstat(path, &st) == 0 && S_ISREG(st.st_mode))) {
        if (rename(w->tmp_path, path) < 0)
            return dlc_error_set_errno(err, errno, "store blob %s", digest);
        free(w->tmp_path);
        w->tmp_path = NULL; /* renamed: nothing to unlink */
        if (dlc_fsync_dir(w->store->blobs_dir, err) < 0)
            return -1;
    }
    if (ret_digest)
        memcpy(ret_digest, digest, OCI_DIGEST_BUFSZ);
    if (ret_size)
        *ret_size = oci_digester_size(w->digester);
    return 0;
}

void oci_blob_writer_free(struct oci_blob_writer *w)
{
    if (w == NULL)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp_path) {
        unlink(w->tmp_path);
        free(w->tmp_path);
    }
    oci_digester_free(w->digester);
    free(w);
}

int oci_store_blob_put(struct oci_store *s, const void *data, size_t len,
                       const char *expected_digest, char ret_digest[OCI_DIGEST_BUFSZ],
                       struct dlc_error **err)
{
    if (expected_digest != NULL && oci_digest_validate(expected_digest, err) < 0)
        return -1;
    char digest[OCI_DIGEST_BUFSZ];
    oci_digest_buf(data, len, digest);
    if (expected_digest != NULL && strcmp(digest, expected_digest) != 0)
        return dlc_error_set(err, EBADMSG, "blob content hashes to %s, expected %s", digest,
                             expected_digest);
    /* Also when the blob is there: the caller is about to reference it, gc must keep it. */
    if (oci_store_lease(s, err) < 0)
        return -1;
    if (!oci_store_blob_exists(s, digest)) {
        _cleanup_(oci_blob_writer_freep) struct oci_blob_writer *w = NULL;
        if (oci_store_blob_writer_new(s, digest, (int64_t)len, &w, err) < 0 ||
            oci_blob_writer_write(w, data, len, err) < 0 ||
            oci_blob_writer_commit(TAKE_PTR(w), NULL, NULL, err) < 0)
            return -1;
    }
    if (ret_digest)
        memcpy(ret_digest, digest, OCI_DIGEST_BUFSZ);
    return 0;
}

/* ENOENT "blob sha256:.. is not in the store" rather than a path and strerror. */
static int blob_stat(struct oci_store *s, const char *digest, char **ret_path, struct stat *st,
                     struct dlc_error **err)
{
    if (oci_digest_validate(digest, err) < 0)
        return -1;
    _cleanup_free_ char *path = oci_store_blob_path(s, digest);
    if (lstat(path, st) < 0) {
        if (errno == ENOENT)
            return dlc_error_set(err, ENOENT, "blob %s is not in the store", digest);
        return dlc_error_set_errno(err, errno, "blob %s: stat %s", digest, path);
    }
    if (!S_ISREG(st->st_mode))
        return dlc_error_set(err, EBADMSG, "blob %s: %s is not a regular file", digest, path);
    if (ret_path)
        *ret_path = TAKE_PTR(path);
    return 0;
}

int oci_store_blob_read(struct oci_store *s, const char *digest, size_t max, char **ret_buf,
                        size_t *ret_len, struct dlc_error **err)
{
    _cleanup_free_ char *path = NULL;
    struct stat st;
    if (blob_stat(s, digest, &path, &st, err) < 0)
        return -1;
    if ((uint64_t)st.st_size > max)
        return dlc_error_set(err, EFBIG, "blob %s has %" PRIu64 " bytes, more than the %zu allowed",
                             digest, (uint64_t)st.st_size, max);
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (dlc_read_file(path, max, &buf, &len, err) < 0)
        return dlc_error_wrap(err, "blob %s", digest);
    char actual[OCI_DIGEST_BUFSZ];
    oci_digest_buf(buf, len, actual);
    if (strcmp(actual, digest) != 0)
        return dlc_error_set(err, EBADMSG, "blob %s is corrupt: content hashes to %s", digest,
                             actual);
    *ret_buf = TAKE_PTR(buf);
    if (ret_len)
        *ret_len = len;
    return 0;
}

int oci_store_blob_verify(struct oci_store *s, const char *digest, struct dlc_error **err)
{
    _cleanup_free_ char *path = NULL;
    struct stat st;
    if (blob_stat(s, digest, &path, &st, err) < 0)
        return -1;
    char actual[OCI_DIGEST_BUFSZ];
    if (oci_digest_file(path, actual, NULL, err) < 0)
        return dlc_error_wrap(err, "blob %s", digest);
    if (strcmp(actual, digest) != 0)
        return dlc_error_set(err, EBADMSG, "blob %s is corrupt: content hashes to %s", digest,
                             actual);
    return 0;
}

int oci_store_blob_size(struct oci_store *s, const char *digest, uint64_t *ret,
                        struct dlc_error **err)
{
    struct stat st;
    if (blob_stat(s, digest, NULL, &st, err) < 0)
        return -1;
    *ret = (uint64_t)st.st_size;
    return 0;
}
