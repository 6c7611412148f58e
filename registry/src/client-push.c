/* client-push.c: `dlc push`: the blobs of an image (HEAD to skip those the registry has,
 * cross-repository mount, monolithic or chunked upload, a bounded pool of threads), then the
 * manifest (for an index: every child manifest first, the index last). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>

#include "registry-internal.h"

struct push {
    struct rclient *c;
    struct oci_store *s;
    struct registry_transfer_stats *stats;
    pthread_mutex_t lock; /* stats */
};

static void count(struct push *p, size_t *field, uint64_t bytes)
{
    pthread_mutex_lock(&p->lock);
    (*field)++;
    p->stats->bytes += bytes;
    pthread_mutex_unlock(&p->lock);
}

static char *blob_url(struct rclient *c, const char *digest)
{
    return xasprintf("/v2/%s/blobs/%s", rclient_repo(c), digest);
}

static char *with_digest(const char *location, const char *digest)
{
    return xasprintf("%s%cdigest=%s", location, strchr(location, '?') ? '&' : '?', digest);
}

/* HEAD: 1 when the registry has the blob, 0 when not. */
static int blob_exists(struct rclient *c, const struct oci_descriptor *d, struct dlc_error **err)
{
    _cleanup_free_ char *url = blob_url(c, d->digest);
    struct rrequest rq = {.method = "HEAD", .url = url};
    _cleanup_(rresp_release) struct rresp resp = {0};
    if (rclient_do(c, &rq, &resp, err) < 0)
        return -1;
    if (resp.status == 200)
        return 1;
    if (resp.status == 404)
        return 0;
    return rclient_status_error(c, &resp, err);
}

/* POST an upload (or a mount from `from`): 1 when mounted, 0 with *ret_location. */
static int start_upload(struct rclient *c, const char *digest, const char *from,
                        char **ret_location, struct dlc_error **err)
{
    _cleanup_free_ char *url = from ? xasprintf("/v2/%s/blobs/uploads/?mount=%s&from=%s",
                                                rclient_repo(c), digest, from)
                                    : xasprintf("/v2/%s/blobs/uploads/", rclient_repo(c));
    struct rrequest rq = {.method = "POST", .url = url};
    _cleanup_(rresp_release) struct rresp resp = {0};
    if (rclient_do(c, &rq, &resp, err) < 0)
        return -1;
    if (from && resp.status == 201)
        return 1;
    if (resp.status != 202 || resp.location == NULL)
        return rclient_status_error(c, &resp, err);
    *ret_location = TAKE_PTR(resp.location);
    return 0;
}

/* PATCH chunks with Content-Range; the returned Location of each is used for the next. */
static int send_chunks(struct rclient *c, const struct oci_descriptor *d, struct rbody *body,
                       char **location, struct dlc_error **err)
{
    uint64_t chunk = rclient_options(c)->chunk_size, size = (uint64_t)d->size;
    for (uint64_t off = 0; off < size; off += chunk) {
        uint64_t n = size - off < chunk ? size - off : chunk;
        _cleanup_free_ char *range =
                xasprintf("Content-Range: %" PRIu64 "-%" PRIu64, off, off + n - 1);
        const char *hdrs[] = {"Content-Type: application/octet-stream", range, NULL};
        body->offset = off;
        body->size = n;
        struct rrequest rq = {.method = "PATCH",
                              .url = *location,
                              .headers = hdrs,
                              .body = body,
                              .digest = d->digest,
                              .progress_base = off,
                              .progress_total = size,
                              .no_retry = true};
        _cleanup_(rresp_release) struct rresp resp = {0};
        if (rclient_do(c, &rq, &resp, err) < 0)
            return -1;
        if (resp.status != 202)
            return rclient_status_error(c, &resp, err);
        if (resp.location) {
            free(*location);
            *location = TAKE_PTR(resp.location);
        }
    }
    return 0;
}

/* Sends the blob's bytes to an upload session and finishes it. 5xx and transport failures
 * set *transient so the caller starts over with a new session. */
static int send_blob(struct push *p, const struct oci_descriptor *d, char *location,
                     bool *transient, struct dlc_error **err)
{
    struct rclient *c = p->c;
    _cleanup_free_ char *path = oci_store_blob_path(p->s, d->digest);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dlc_error_set_errno(err, errno, "open %s", path);
    _cleanup_(oci_digester_freep) struct oci_digester *dig = oci_digester_new();
    struct rbody body = {.fd = fd, .size = (uint64_t)d->size, .dig = dig};
    bool chunked = (uint64_t)d->size > rclient_options(c)->chunk_size;
    _cleanup_free_ char *loc = xstrdup(location);
    if (chunked && send_chunks(c, d, &body, &loc, err) < 0) {
        *transient = (*err)->code == EIO || (*err)->code == EAGAIN;
        return -1;
    }
    _cleanup_free_ char *url = with_digest(loc, d->digest);
    const char *hdrs[] = {"Content-Type: application/octet-stream", NULL};
    struct rrequest rq = {.method = "PUT",
                          .url = url,
                          .headers = hdrs,
                          .body = chunked ? NULL : &body,
                          .digest = d->digest,
                          .progress_total = (uint64_t)d->size,
                          .no_retry = true};
    _cleanup_(rresp_release) struct rresp resp = {0};
    if (rclient_do(c, &rq, &resp, err) < 0) {
        *transient = true;
        return -1;
    }
    char sent[OCI_DIGEST_BUFSZ];
    oci_digester_final(dig, sent);
    if (oci_digester_size(dig) == (uint64_t)d->size && strcmp(sent, d->digest) != 0)
        return dlc_error_set(err, EBADMSG, "local blob %s is corrupt: it hashes to %s", d->digest,
                             sent);
    if (resp.status != 201) {
        *transient = resp.status >= 500;
        return rclient_status_error(c, &resp, err);
    }
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int upload_blob(struct push *p, const struct oci_descriptor *d, char *location,
                       struct dlc_error **err)
{
    struct rclient *c = p->c;
    unsigned retries = rclient_options(c)->retries;
    _cleanup_free_ char *loc = location;
    for (unsigned attempt = 0;; attempt++) {
        if (loc == NULL && start_upload(c, d->digest, NULL, &loc, err) < 0)
            return -1;
        bool transient = false;
        _cleanup_error_ struct dlc_error *e = NULL;
        int r = send_blob(p, d, loc, &transient, &e);
        free(loc);
        loc = NULL;
        if (r == 0)
            return 0;
        if (!transient || attempt >= retries)
            return dlc_error_move(err, &e);
        dlc_debug("upload %s: %s; retrying", d->digest, e->msg);
        rclient_progress(c, d->digest, REGISTRY_BLOB_RETRY, 0, (uint64_t)d->size);
        sleep_ms(250L << (attempt < 4 ? attempt : 4));
    }
}

/* One blob, unless the registry has it (an rclient_blob_fn: data is the struct push). */
static int push_blob(void *data, const struct oci_descriptor *d, struct dlc_error **err)
{
    struct push *p = data;
    struct rclient *c = p->c;
    const char *root = oci_store_root(p->s);
    uint64_t size = (uint64_t)d->size;
    int have = blob_exists(c, d, err);
    if (have < 0)
        return -1;
    if (have) {
        rclient_progress(c, d->digest, REGISTRY_BLOB_EXISTS, size, size);
        count(p, &p->stats->skipped, 0);
        blobcache_record(root, rclient_registry(c), d->digest, rclient_repo(c));
        return 0;
    }
    _cleanup_free_ char *from =
            blobcache_lookup(root, rclient_registry(c), d->digest, rclient_repo(c));
    char *location = NULL;
    if (from) {
        int m = start_upload(c, d->digest, from, &location, err);
        if (m < 0)
            return -1;
        if (m == 1) {
            rclient_progress(c, d->digest, REGISTRY_BLOB_MOUNTED, size, size);
            count(p, &p->stats->mounted, 0);
            blobcache_record(root, rclient_registry(c), d->digest, rclient_repo(c));
            return 0;
        }
    }
    rclient_progress(c, d->digest, REGISTRY_BLOB_TRANSFER, 0, size);
    if (upload_blob(p, d, location, err) < 0)
        return -1;
    rclient_progress(c, d->digest, REGISTRY_BLOB_DONE, size, size);
    count(p, &p->stats->transferred, size);
    blobcache_record(root, rclient_registry(c), d->digest, rclient_repo(c));
    return 0;
}

static int put_manifest(struct push *p, const char *raw, size_t len,
                        const struct oci_descriptor *desc, const char *ref, struct dlc_error **err)
{
    struct rclient *c = p->c;
    _cleanup_free_ char *url = xasprintf("/v2/%s/manifests/%s", rclient_repo(c), ref);
    _cleanup_free_ char *ct = xasprintf("Content-Type: %s", desc->media_type);
    const char *hdrs[] = {ct, NULL};
    struct rbody body = {.data = raw, .len = len, .fd = -1};
    struct rrequest rq = {.method = "PUT", .url = url, .headers = hdrs, .body = &body};
    _cleanup_(rresp_release) struct rresp resp = {0};
    if (rclient_do(c, &rq, &resp, err) < 0)
        return dlc_error_wrap(err, "put manifest %s", desc->digest);
    if (resp.status != 201) {
        rclient_status_error(c, &resp, err);
        return dlc_error_wrap(err, "put manifest %s", desc->digest);
    }
    if (resp.docker_digest && strcmp(resp.docker_digest, desc->digest) != 0)
        return dlc_error_set(err, EBADMSG, "registry %s stored manifest %s as %s",
                             rclient_registry(c), desc->digest, resp.docker_digest);
    return 0;
}

static int push_tree(struct push *p, const struct oci_descriptor *desc, const char *ref, int depth,
                     struct dlc_error **err);

static int push_index(struct push *p, const char *raw, size_t len, int depth,
                      struct dlc_error **err)
{
    _cleanup_(oci_index_freep) struct oci_index *ix = NULL;
    if (oci_index_parse(raw, len, "index", &ix, err) < 0)
        return -1;
    for (size_t i = 0; i < ix->n_manifests; i++)
        if (push_tree(p, &ix->manifests[i], ix->manifests[i].digest, depth + 1, err) < 0)
            return -1;
    return 0;
}

static int push_image(struct push *p, const char *raw, size_t len, struct dlc_error **err)
{
    _cleanup_(oci_manifest_freep) struct oci_manifest *m = NULL;
    if (oci_manifest_parse(raw, len, "manifest", &m, err) < 0)
        return -1;
    size_t n = 0;
    _cleanup_free_ const struct oci_descriptor **blobs = rclient_manifest_blobs(m, &n);
    p->stats->blobs += n;
    return rclient_each_blob(p->c, blobs, n, push_blob, p, "upload blob", err);
}

static int push_tree(struct push *p, const struct oci_descriptor *desc, const char *ref, int depth,
                     struct dlc_error **err)
{
    if (depth > 4)
        return dlc_error_set(err, EINVAL, "indexes nested too deep");
    _cleanup_free_ char *raw = NULL;
    size_t len = 0;
    if (oci_store_blob_read(p->s, desc->digest, OCI_MAX_MANIFEST_SIZE, &raw, &len, err) < 0)
        return -1;
    int r = oci_media_type_is_index(desc->media_type) ? push_index(p, raw, len, depth, err)
                                                      : push_image(p, raw, len, err);
    if (r < 0)
        return -1;
    return put_manifest(p, raw, len, desc, ref, err);
}

static double elapsed(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static int do_push(struct oci_store *s, const char *local_ref, const struct oci_ref *remote,
                   const struct registry_client_options *o, struct registry_transfer_stats *st,
                   struct dlc_error **err)
{
    _cleanup_(oci_descriptor_release) struct oci_descriptor desc = {0};
    if (oci_store_resolve(s, local_ref, &desc, err) < 0)
        return -1;
    if (remote->digest && strcmp(remote->digest, desc.digest) != 0)
        return dlc_error_set(err, EINVAL, "%s is %s, not %s", local_ref, desc.digest,
                             remote->digest);
    _cleanup_(rclient_freep) struct rclient *c = NULL;
    if (rclient_new(remote->registry, remote->name, true, o, &c, err) < 0)
        return -1;
    struct push p = {.c = c, .s = s, .stats = st};
    pthread_mutex_init(&p.lock, NULL);
    int r = push_tree(&p, &desc, remote->tag ? remote->tag : desc.digest, 0, err);
    pthread_mutex_destroy(&p.lock);
    snprintf(st->digest, sizeof(st->digest), "%s", desc.digest);
    return r;
}

int registry_push(struct oci_store *s, const char *local_ref, const char *remote_ref,
                  const struct registry_client_options *o, struct registry_transfer_stats *ret,
                  struct dlc_error **err)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const char *target = remote_ref ? remote_ref : local_ref;
    _cleanup_(oci_ref_freep) struct oci_ref *remote = NULL;
    if (oci_ref_parse(target, &remote, err) < 0)
        return dlc_error_wrap(err, "push");
    if (remote->registry == NULL)
        return dlc_error_set(err, EINVAL,
                             "push: '%s' names no registry (expected HOST[:PORT]/NAME[:TAG])",
                             target);
    struct registry_transfer_stats st = {0};
    if (do_push(s, local_ref, remote, o, &st, err) < 0)
        return dlc_error_wrap(err, "push %s", target);
    st.seconds = elapsed(&t0);
    if (ret)
        *ret = st;
    return 0;
}
