/* layer.c: a layer tree -> a reproducible tar stream (libarchive, pax where needed) ->
 * the compressor -> a blob in the store, hashing the tar for the diff_id on the way.
 *
 * Reproducible means: entries in btree_sorted order, uid/gid 0 with no user/group names,
 * every mtime = the build's epoch, no atime/ctime, modes as the tree says; file contents
 * re-hashed while written and checked against the hash the layer's cache key used.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include <archive.h>
#include <archive_entry.h>

#include "builder-internal.h"

#define READ_CHUNK     (256u << 10)
#define PROGRESS_EVERY (4u << 20)

struct tar_ctx {
    struct oci_digester *diff;
    bsink_fn sink;
    void *sink_ctx;
    uint64_t tar_bytes;
    struct dlc_error *err; /* what the sink said, kept past libarchive */
    /* progress */
    const struct blayer_write_opts *o;
    uint64_t total;
    uint64_t next_report;
    const uint64_t *bytes_out;
};

static void report(struct tar_ctx *c, enum builder_event_kind kind)
{
    if (c->o == NULL || c->o->progress == NULL)
        return;
    struct builder_event ev = {.kind = kind,
                               .layer = c->o->name,
                               .bytes_in = c->tar_bytes,
                               .bytes_total = c->total,
                               .bytes_out = c->bytes_out ? *c->bytes_out : 0};
    c->o->progress(&ev, c->o->userdata);
}

static la_ssize_t tar_write_cb(struct archive *a, void *ctx, const void *buf, size_t len)
{
    struct tar_ctx *c = ctx;
    oci_digester_update(c->diff, buf, len);
    if (c->sink(c->sink_ctx, buf, len, &c->err) < 0) {
        archive_set_error(a, EIO, "%s", c->err ? c->err->msg : "write failed");
        return -1;
    }
    c->tar_bytes += len;
    if (c->tar_bytes >= c->next_report) {
        c->next_report = c->tar_bytes + PROGRESS_EVERY;
        report(c, BUILDER_EVENT_LAYER_PROGRESS);
    }
    return (la_ssize_t)len;
}

static int archive_fail(struct archive *a, struct tar_ctx *c, const char *what,
                        struct dlc_error **err)
{
    if (c->err != NULL)
        return dlc_error_move(err, &c->err);
    return dlc_error_set(err, EIO, "tar: %s: %s", what, archive_error_string(a));
}

static int write_file_data(struct archive *a, struct tar_ctx *c, const struct bnode *n,
                           struct dlc_error **err)
{
    if (n->src == NULL) {
        if (n->size > 0 && archive_write_data(a, n->data, n->size) != (la_ssize_t)n->size)
            return archive_fail(a, c, n->path, err);
        return 0;
    }
    _cleanup_close_ int fd = open(n->src, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dlc_error_set_errno(err, errno, "%s", n->src);
    _cleanup_(oci_digester_freep) struct oci_digester *d = oci_digester_new();
    _cleanup_free_ char *buf = xmalloc(READ_CHUNK);
    uint64_t done = 0;
    for (;;) {
        ssize_t r = read(fd, buf, READ_CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return dlc_error_set_errno(err, errno, "read %s", n->src);
        if (r == 0 || done + (uint64_t)r > n->size)
            break;
        oci_digester_update(d, buf, (size_t)r);
        if (archive_write_data(a, buf, (size_t)r) != r)
            return archive_fail(a, c, n->path, err);
        done += (uint64_t)r;
    }
    char got[OCI_DIGEST_BUFSZ];
    oci_digester_final(d, got);
    if (done != n->size || (n->hash[0] && strcmp(got, n->hash) != 0))
        return dlc_error_set(err, EIO, "%s changed while the layer was being written", n->src);
    return 0;
}

/* One tar header (and for files, the content). */
static int write_entry(struct archive *a, struct tar_ctx *c, const char *name, mode_t type,
                       const struct bnode *n, int64_t epoch, struct dlc_error **err)
{
    struct archive_entry *e = archive_entry_new2(a);
    archive_entry_copy_pathname(e, name);
    archive_entry_set_filetype(e, (unsigned)type);
    archive_entry_set_perm(e, n ? n->mode : 0644);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_set_mtime(e, epoch, 0);
    bool data = n != NULL && type == AE_IFREG && n->type == BN_FILE;
    archive_entry_set_size(e, data ? (la_int64_t)n->size : 0);
    if (n != NULL && n->type == BN_SYMLINK)
        archive_entry_copy_symlink(e, n->link);
    int rc = archive_write_header(a, e);
    archive_entry_free(e);
    /* ARCHIVE_WARN: a name that is not valid in the locale's charset, written as bytes */
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
        return archive_fail(a, c, name, err);
    return data ? write_file_data(a, c, n, err) : 0;
}

static int write_node(struct archive *a, struct tar_ctx *c, const struct bnode *n, int64_t epoch,
                      struct dlc_error **err)
{
    switch (n->type) {
    case BN_FILE:
        return write_entry(a, c, n->path, AE_IFREG, n, epoch, err);
    case BN_SYMLINK:
        return write_entry(a, c, n->path, AE_IFLNK, n, epoch, err);
    case BN_DIR: {
        _cleanup_free_ char *name = xasprintf("%s/", n->path);
        if (write_entry(a, c, name, AE_IFDIR, n, epoch, err) < 0)
            return -1;
        if (!n->opaque)
            return 0;
        _cleanup_free_ char *marker = xasprintf("%s/.wh..wh..opq", n->path);
        return write_entry(a, c, marker, AE_IFREG, NULL, epoch, err);
    }
    case BN_WHITEOUT: {
        _cleanup_free_ char *dir = dlc_path_dirname(n->path);
        _cleanup_free_ char *name =
                strcmp(dir, ".") == 0 ? xasprintf(".wh.%s", n->path)
                                      : xasprintf("%s/.wh.%s", dir, dlc_path_basename(n->path));
        return write_entry(a, c, name, AE_IFREG, NULL, epoch, err);
    }
    }
    return 0;
}

static int write_tar(const struct btree *layer, int64_t epoch, struct tar_ctx *c,
                     struct dlc_error **err)
{
    struct archive *a = archive_write_new();
    if (a == NULL)
        return dlc_error_set(err, ENOMEM, "tar: archive_write_new");
    int rc = -1;
    size_t n = 0;
    _cleanup_free_ struct bnode **v = btree_sorted(layer, &n);
    /* pax only where ustar cannot say it (long names, large files, non-ASCII names) */
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_open(a, c, NULL, tar_write_cb, NULL) != ARCHIVE_OK) {
        archive_fail(a, c, "open", err);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (write_node(a, c, v[i], epoch, err) < 0)
            goto out;
    if (archive_write_close(a) != ARCHIVE_OK) {
        archive_fail(a, c, "close", err);
        goto out;
    }
    rc = 0;
out:
    archive_write_free(a);
    dlc_error_free(&c->err);
    return rc;
}

int blayer_write_tar(const struct btree *layer, int64_t epoch, bsink_fn sink, void *ctx,
                     struct dlc_error **err)
{
    _cleanup_(oci_digester_freep) struct oci_digester *d = oci_digester_new();
    struct tar_ctx c = {.diff = d, .sink = sink, .sink_ctx = ctx, .next_report = UINT64_MAX};
    return write_tar(layer, epoch, &c, err);
}

/* ---- into the store ---------------------------------------------------------------- */

struct blob_ctx {
    struct oci_blob_writer *w;
    struct bcompress *z;
    uint64_t out;
};

static int blob_sink(void *ctx, const void *data, size_t len, struct dlc_error **err)
{
    struct blob_ctx *b = ctx;
    b->out += len;
    return oci_blob_writer_write(b->w, data, len, err);
}

static int compress_sink(void *ctx, const void *data, size_t len, struct dlc_error **err)
{
    struct blob_ctx *b = ctx;
    return bcompress_write(b->z, data, len, err);
}

int blayer_write(struct oci_store *s, const struct btree *layer, const struct blayer_write_opts *o,
                 struct blayer_out *ret, struct dlc_error **err)
{
    struct blob_ctx b = {NULL, NULL, 0};
    if (oci_store_blob_writer_new(s, NULL, -1, &b.w, err) < 0)
        return -1;
    _cleanup_(oci_blob_writer_freep) struct oci_blob_writer *w = b.w;
    _cleanup_(bcompress_freep) struct bcompress *z = NULL;
    if (bcompress_new(o->compression, bcompress_default_level(o->compression), dlc_cpu_count(),
                      blob_sink, &b, &z, err) < 0)
        return -1;
    b.z = z;
    _cleanup_(oci_digester_freep) struct oci_digester *d = oci_digester_new();
    struct tar_ctx c = {.diff = d,
                        .sink = compress_sink,
                        .sink_ctx = &b,
                        .o = o,
                        .total = btree_tar_estimate(layer),
                        .next_report = 0,
                        .bytes_out = &b.out};
    if (write_tar(layer, o->epoch, &c, err) < 0 || bcompress_finish(z, err) < 0)
        return -1;
    struct blayer_out r;
    memset(&r, 0, sizeof(r));
    oci_digester_final(d, r.diff_id);
    r.tar_size = c.tar_bytes;
    if (oci_blob_writer_commit(TAKE_PTR(w), r.digest, &r.size, err) < 0)
        return -1;
    report(&c, BUILDER_EVENT_LAYER_PROGRESS);
    *ret = r;
    return 0;
}
