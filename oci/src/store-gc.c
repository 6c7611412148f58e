/* store-gc.c: garbage collection: mark every blob index.json reaches (through indexes,
 * manifests, configs, layers and subjects), sweep the rest and stale temp files. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "oci-internal.h"

#define MAX_DEPTH 8

/* The digests reached so far, kept sorted. */
struct mark_set {
    char **digests;
    size_t n;
};

static void mark_set_release(struct mark_set *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->digests[i]);
    free(m->digests);
}

static size_t mark_find(const struct mark_set *m, const char *digest, bool *found)
{
    return dlc_strv_bsearch(m->digests, m->n, digest, found);
}

/* Adds digest; false when it was already marked. */
static bool mark_add(struct mark_set *m, const char *digest)
{
    bool found = false;
    size_t i = mark_find(m, digest, &found);
    if (found)
        return false;
    m->digests = xrealloc(m->digests, (m->n + 1) * sizeof(*m->digests));
    memmove(m->digests + i + 1, m->digests + i, (m->n - i) * sizeof(*m->digests));
    m->digests[i] = xstrdup(digest);
    m->n++;
    return true;
}

static bool mark_has(const struct mark_set *m, const char *digest)
{
    bool found = false;
    mark_find(m, digest, &found);
    return found;
}

static int mark_desc(struct oci_store *s, struct mark_set *m, const struct oci_descriptor *d,
                     int depth, struct dlc_error **err);

static int mark_children(struct oci_store *s, struct mark_set *m, const char *buf, size_t len,
                         const struct oci_descriptor *d, int depth, struct dlc_error **err)
{
    if (oci_media_type_is_index(d->media_type)) {
        _cleanup_(oci_index_freep) struct oci_index *ix = NULL;
        if (oci_index_parse(buf, len, d->digest, &ix, err) < 0)
            return -1;
        for (size_t i = 0; i < ix->n_manifests; i++)
            if (mark_desc(s, m, &ix->manifests[i], depth + 1, err) < 0)
                return -1;
        return ix->subject ? mark_desc(s, m, ix->subject, depth + 1, err) : 0;
    }
    _cleanup_(oci_manifest_freep) struct oci_manifest *mf = NULL;
    if (oci_manifest_parse(buf, len, d->digest, &mf, err) < 0)
        return -1;
    mark_add(m, mf->config.digest);
    for (size_t i = 0; i < mf->n_layers; i++)
        mark_add(m, mf->layers[i].digest);
    return mf->subject ? mark_desc(s, m, mf->subject, depth + 1, err) : 0;
}

/* A reachable manifest that cannot be read stops gc: deleting on a guess could lose the
 * content of a tagged image. Missing blobs are allowed (the layout spec permits them). */
static int mark_desc(struct oci_store *s, struct mark_set *m, const struct oci_descriptor *d,
                     int depth, struct dlc_error **err)
{
    if (!mark_add(m, d->digest))
        return 0;
    if (!oci_media_type_is_manifest(d->media_type) && !oci_media_type_is_index(d->media_type))
        return 0;
    if (depth > MAX_DEPTH)
        return dlc_error_set(err, EINVAL, "%s: manifests nested more than %d deep", d->digest,
                             MAX_DEPTH);
    if (!oci_store_blob_exists(s, d->digest))
        return 0;
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (oci_store_blob_read(s, d->digest, OCI_MAX_MANIFEST_SIZE, &buf, &len, err) < 0)
        return -1;
    return mark_children(s, m, buf, len, d, depth, err);
}

static bool is_blob_name(const char *name)
{
    return strlen(name) == 64 && strspn(name, "0123456789abcdef") == 64;
}

/* A temp file is stale when no writer holds its flock (see create_temp in store-blobs.c). */
static bool temp_is_stale(int dirfd, const char *name)
{
    _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    return fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0;
}

static int sweep(struct oci_store *s, const struct mark_set *m, size_t *ret_blobs,
                 uint64_t *ret_bytes, struct dlc_error **err)
{
    _cleanup_dir_ DIR *dir = opendir(s->blobs_dir);
    if (dir == NULL)
        return dlc_error_set_errno(err, errno, "gc: open %s", s->blobs_dir);
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        bool blob = is_blob_name(de->d_name);
        if (blob) {
            char digest[OCI_DIGEST_BUFSZ];
            snprintf(digest, sizeof(digest), "sha256:%s", de->d_name);
            if (mark_has(m, digest))
                continue;
        } else if (!dlc_startswith(de->d_name, OCI_BLOB_TMP_PREFIX) ||
                   !temp_is_stale(dirfd(dir), de->d_name)) {
            continue;
        }
        struct stat st;
        if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (unlinkat(dirfd(dir), de->d_name, 0) < 0)
            return dlc_error_set_errno(err, errno, "gc: remove %s/%s", s->blobs_dir, de->d_name);
        *ret_blobs += blob;
        *ret_bytes += (uint64_t)st.st_size;
        dlc_debug("gc: removed %s/%s", s->blobs_dir, de->d_name);
    }
    return dlc_fsync_dir(s->blobs_dir, err);
}

/* index.json temp files: every index writer holds the lock gc holds, so any left is stale. */
static void sweep_index_temps(struct oci_store *s)
{
    _cleanup_dir_ DIR *dir = opendir(s->layout);
    struct dirent *de;
    while (dir != NULL && (de = readdir(dir)) != NULL)
        if (dlc_startswith(de->d_name, ".tmp-index.json-"))
            unlinkat(dirfd(dir), de->d_name, 0);
}

int oci_store_gc(struct oci_store *s, size_t *ret_blobs, uint64_t *ret_bytes,
                 struct dlc_error **err)
{
    return oci_store_gc_wait(s, OCI_GC_WAIT_MS, ret_blobs, ret_bytes, err);
}

int oci_store_gc_wait(struct oci_store *s, int wait_ms, size_t *ret_blobs, uint64_t *ret_bytes,
                      struct dlc_error **err)
{
    /* Writers' leases first (see store-lease.c), then the index lock: the order writers
     * take them in too. */
    _cleanup_close_ int gc_lock = oci__store_gc_lock(s, wait_ms, err);
    if (gc_lock < 0)
        return dlc_error_wrap(err, "gc");
    _cleanup_close_ int lock = dlc_lock_path(s->lock_path, true, err);
    if (lock < 0)
        return -1;
    _cleanup_(oci_index_freep) struct oci_index *ix = NULL;
    if (oci__store_read_index(s, &ix, err) < 0)
        return -1;
    _cleanup_(mark_set_release) struct mark_set m = {0};
    for (size_t i = 0; i < ix->n_manifests; i++) {
        const char *name = oci__descriptor_ref_name(&ix->manifests[i]);
        if (mark_desc(s, &m, &ix->manifests[i], 0, err) < 0)
            return dlc_error_wrap(err, "gc: image '%s'", name ? name : ix->manifests[i].digest);
    }
    size_t blobs = 0;
    uint64_t bytes = 0;
    if (sweep(s, &m, &blobs, &bytes, err) < 0)
        return -1;
    sweep_index_temps(s);
    if (ret_blobs)
        *ret_blobs = blobs;
    if (ret_bytes)
        *ret_bytes = bytes;
    return 0;
}
