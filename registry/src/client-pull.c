/* client-pull.c: `dlc pull`: the manifest (an index resolves to its linux/<host arch>
 * entry), then the blobs the store lacks, fetched by a bounded pool of threads and each
 * verified (size and digest) before it becomes visible; the tag is written last. */
#include <errno.h>
#include <string.h>

#include "registry-internal.h"

#define ACCEPT \
    "Accept: " OCI_MT_MANIFEST ", " OCI_MT_INDEX ", " DOCKER_MT_MANIFEST ", " DOCKER_MT_LIST

struct pull {
    struct rclient *c;
    struct oci_store *s;
    struct registry_transfer_stats *stats;
    pthread_mutex_t lock; /* stats */
};

/* A fetched manifest: raw bytes, their digest and media type. */
struct fetched {
    char *raw;
    size_t len;
    char digest[OCI_DIGEST_BUFSZ];
    char *media_type;
};

static void fetched_release(struct fetched *f)
{
    free(f->raw);
    free(f->media_type);
    memset(f, 0, sizeof(*f));
}

static char *manifest_media_type(const struct rresp *resp, const char *raw, size_t len)
{
    if (resp->content_type) {
        _cleanup_free_ char *ct = xstrndup(resp->content_type, strcspn(resp->content_type, "; "));
        if (oci_media_type_is_manifest(ct) || oci_media_type_is_index(ct))
            return TAKE_PTR(ct);
    }
    json_auto_t *j = json_loadb(raw, len, 0, NULL);
    const char *mt = json_string_value(json_object_get(j, "mediaType"));
    return mt ? xstrdup(mt) : NULL;
}

static int get_manifest(struct rclient *c, const char *ref, struct fetched *ret,
                        struct dlc_error **err)
{
    _cleanup_free_ char *url = xasprintf("/v2/%s/manifests/%s", rclient_repo(c), ref);
    const char *hdrs[] = {ACCEPT, NULL};
    struct rrequest rq = {
            .method = "GET", .url = url, .headers = hdrs, .body_max = OCI_MAX_MANIFEST_SIZE};
    _cleanup_(rresp_release) struct rresp resp = {0};
    if (rclient_do(c, &rq, &resp, err) < 0)
        return -1;
    if (resp.status != 200)
        return rclient_status_error(c, &resp, err);
    if (resp.has_content_length && resp.content_length > OCI_MAX_MANIFEST_SIZE)
        return dlc_error_set(err, EFBIG, "manifest %s is larger than %u bytes", ref,
                             OCI_MAX_MANIFEST_SIZE);
    memset(ret, 0, sizeof(*ret));
    ret->len = resp.body.len;
    ret->raw = dlc_strbuf_detach(&resp.body, NULL);
    oci_digest_buf(ret->raw, ret->len, ret->digest);
    const char *want = strchr(ref, ':') ? ref : resp.docker_digest;
    if (want && strcmp(want, ret->digest) != 0) {
        fetched_release(ret);
        return dlc_error_set(err, EBADMSG, "manifest %s hashes to %s, not %s", ref, ret->digest,
                             want);
    }
    ret->media_type = manifest_media_type(&resp, ret->raw, ret->len);
    if (ret->media_type == NULL) {
        fetched_release(ret);
        return dlc_error_set(err, EPROTO, "manifest %s has no media type", ref);
    }
    return 0;
}

/* ---- blobs ------------------------------------------------------------------------------- */

struct blob_sink {
    struct oci_store *s;
    const struct oci_descriptor *d;
    struct oci_blob_writer *w;
    struct dlc_error *err;
};

static int sink_write(void *ud, const void *data, size_t len)
{
    struct blob_sink *b = ud;
    return oci_blob_writer_write(b->w, data, len, &b->err);
}

static int sink_reset(void *ud, struct dlc_error **err)
{
    struct blob_sink *b = ud;
    oci_blob_writer_free(b->w);
    b->w = NULL;
    dlc_error_free(&b->err);
    return oci_store_blob_writer_new(b->s, b->d->digest, b->d->size, &b->w, err);
}

static int fetch_blob(struct pull *p, const struct oci_descriptor *d, struct dlc_error **err)
{
    struct rclient *c = p->c;
    uint64_t size = (uint64_t)d->size;
    struct blob_sink b = {.s = p->s, .d = d};
    if (oci_store_blob_writer_new(p->s, d->digest, d->size, &b.w, err) < 0)
        return -1;
    _cleanup_free_ char *url = xasprintf("/v2/%s/blobs/%s", rclient_repo(c), d->digest);
    struct rsink sink = {.write = sink_write, .reset = sink_reset, .ud = &b};
    struct rrequest rq = {.method = "GET",
                          .url = url,
                          .sink = &sink,
                          .digest = d->digest,
                          .progress_total = size};
    _cleanup_(rresp_release) struct rresp resp = {0};
    rclient_progress(c, d->digest, REGISTRY_BLOB_TRANSFER, 0, size);
    int r = rclient_do(c, &rq, &resp, err);
    if (r < 0 && b.err) {
        dlc_error_free(err);
        dlc_error_move(err, &b.err);
    } else if (r == 0 && resp.status != 200) {
        r = rclient_status_error(c, &resp, err);
    }
    if (r < 0) {
        oci_blob_writer_free(b.w);
        dlc_error_free(&b.err);
        return -1;
    }
    /* the writer checks size and digest; a mismatch leaves nothing behind */
    return oci_blob_writer_commit(b.w, NULL, NULL, err);
}

/* One blob, unless the store has it (an rclient_blob_fn: data is the struct pull). */
static int pull_blob(void *data, const struct oci_descriptor *d, struct dlc_error **err)
{
    struct pull *p = data;
    uint64_t size = (uint64_t)d->size;
    bool have = oci_store_blob_exists(p->s, d->digest);
    if (!have && fetch_blob(p, d, err) < 0)
        return -1;
    rclient_progress(p->c, d->digest, have ? REGISTRY_BLOB_EXISTS : REGISTRY_BLOB_DONE, size, size);
    blobcache_record(oci_store_root(p->s), rclient_registry(p->c), d->digest, rclient_repo(p->c));
    pthread_mutex_lock(&p->lock);
    if (have) {
        p->stats->skipped++;
    } else {
        p->stats->transferred++;
        p->stats->bytes += size;
    }
    pthread_mutex_unlock(&p->lock);
    return 0;
}

static int pull_blobs(struct pull *p, const struct oci_manifest *m, struct dlc_error **err)
{
    size_t n = 0;
    _cleanup_free_ const struct oci_descriptor **v = rclient_manifest_blobs(m, &n);
    p->stats->blobs = n;
    return rclient_each_blob(p->c, v, n, pull_blob, p, "blob", err);
}

/* ---- the image --------------------------------------------------------------------------- */

/* The linux/<host arch> entry of an index. */
static int pick_platform(const struct fetched *f, char ret[OCI_DIGEST_BUFSZ],
                         struct dlc_error **err)
{
    _cleanup_(oci_index_freep) struct oci_index *ix = NULL;
    if (oci_index_parse(f->raw, f->len, "index", &ix, err) < 0)
        return -1;
    const char *arch = oci_host_arch();
    for (size_t i = 0; i < ix->n_manifests; i++) {
        const struct oci_platform *pl = ix->manifests[i].platform;
        if (pl && dlc_streq(pl->os, "linux") && dlc_streq(pl->architecture, arch) &&
            oci_media_type_is_manifest(ix->manifests[i].media_type)) {
            memcpy(ret, ix->manifests[i].digest, OCI_DIGEST_BUFSZ);
            return 0;
        }
    }
    return dlc_error_set(err, ENOENT, "index %s has no linux/%s image", f->digest, arch);
}

static int do_pull(struct oci_store *s, const struct oci_ref *remote, const char *local_name,
                   const struct registry_client_options *o, struct registry_transfer_stats *st,
                   struct dlc_error **err)
{
    _cleanup_(rclient_freep) struct rclient *c = NULL;
    if (rclient_new(remote->registry, remote->name, false, o, &c, err) < 0)
        return -1;
    _cleanup_(fetched_release) struct fetched f = {0};
    if (get_manifest(c, remote->digest ? remote->digest : remote->tag, &f, err) < 0)
        return -1;
    if (oci_media_type_is_index(f.media_type)) {
        char child[OCI_DIGEST_BUFSZ];
        if (pick_platform(&f, child, err) < 0)
            return -1;
        fetched_release(&f);
        if (get_manifest(c, child, &f, err) < 0)
            return -1;
    }
    _cleanup_(oci_manifest_freep) struct oci_manifest *m = NULL;
    if (!oci_media_type_is_manifest(f.media_type))
        return dlc_error_set(err, EPROTO, "manifest %s: unsupported type '%s'", f.digest,
                             f.media_type);
    if (oci_manifest_parse(f.raw, f.len, "manifest", &m, err) < 0)
        return -1;
    /* Before pull_blobs skips the layers the store has: gc must leave them until the tag. */
    if (oci_store_lease(s, err) < 0)
        return -1;
    struct pull p = {.c = c, .s = s, .stats = st};
    pthread_mutex_init(&p.lock, NULL);
    int r = pull_blobs(&p, m, err);
    pthread_mutex_destroy(&p.lock);
    if (r < 0 || oci_store_blob_put(s, f.raw, f.len, f.digest, NULL, err) < 0)
        return -1;
    struct oci_descriptor desc = {.media_type = f.media_type, .size = (int64_t)f.len};
    memcpy(desc.digest, f.digest, sizeof(desc.digest));
    if (oci_store_tag(s, local_name, &desc, err) < 0)
        return -1;
    snprintf(st->digest, sizeof(st->digest), "%s", f.digest);
    return 0;
}

int registry_pull(struct oci_store *s, const char *remote_ref, const char *local_ref,
                  const struct registry_client_options *o, struct registry_transfer_stats *ret,
                  struct dlc_error **err)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    _cleanup_(oci_ref_freep) struct oci_ref *remote = NULL;
    if (oci_ref_parse(remote_ref, &remote, err) < 0)
        return dlc_error_wrap(err, "pull");
    if (remote->registry == NULL)
        return dlc_error_set(err, EINVAL,
                             "pull: '%s' names no registry (expected HOST[:PORT]/NAME[:TAG])",
                             remote_ref);
    _cleanup_free_ char *name = local_ref ? xstrdup(local_ref) : oci_ref_store_name(remote);
    if (name == NULL)
        return dlc_error_set(err, EINVAL,
                             "pull %s: a pull by digest needs a LOCAL_REF to tag it as",
                             remote_ref);
    struct registry_transfer_stats st = {0};
    if (do_pull(s, remote, name, o, &st, err) < 0)
        return dlc_error_wrap(err, "pull %s", remote_ref);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    st.seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (ret)
        *ret = st;
    return 0;
}
