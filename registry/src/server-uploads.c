/* server-uploads.c: blob pushes: POST (session, monolithic ?digest=, ?mount=&from=),
 * PATCH (chunked with Content-Range, or streamed), PUT ?digest= (finish), GET (status),
 * DELETE (cancel). Bodies stream to the session file with incremental hashing. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "registry-internal.h"

char *upload_location(const char *name, const char *id)
{
    return xasprintf("/v2/%s/blobs/uploads/%s", name, id);
}

void resp_upload_headers(struct rreq *r, const struct upload *u)
{
    _cleanup_free_ char *loc = upload_location(r->name, u->id);
    resp_header(r, "Location", "%s", loc);
    resp_header(r, "Range", "0-%" PRIu64, u->size ? u->size - 1 : 0);
    resp_header(r, "Docker-Upload-UUID", "%s", u->id);
}

static void resp_blob_created(struct rreq *r, const char *digest)
{
    resp_empty(r, 201);
    resp_header(r, "Location", "/v2/%s/blobs/%s", r->name, digest);
    resp_header(r, "Docker-Content-Digest", "%s", digest);
}

static int body_append(struct rreq *r, const char *data, size_t len)
{
    _cleanup_error_ struct dlc_error *err = NULL;
    uint64_t total = r->upload->size + len;
    if (total > r->srv->opts.max_blob_size) {
        resp_error(r, 413, "SIZE_INVALID", "blob larger than %" PRIu64 " bytes",
                   r->srv->opts.max_blob_size);
        r->drop_upload = true;
        return -1;
    }
    if (upload_append(r->upload, data, len, &err) < 0) {
        dlc_warn("%s", err->msg);
        resp_error(r, 500, "UNKNOWN", "%s", err->msg);
        r->drop_upload = true;
        return -1;
    }
    r->body_len += len;
    return 0;
}

/* Content-Length when given, else 0 (a chunked body is checked as it arrives). */
static uint64_t content_length(struct rreq *r)
{
    uint64_t n = 0;
    const char *h = req_header(r, "Content-Length");
    if (h && dlc_parse_u64(h, NULL, &n, NULL) < 0)
        n = 0;
    return n;
}

/* Checks Content-Range ("a-b", or "bytes a-b/total") against the session: the chunk must
 * start where the upload ends (416 otherwise). Responds and returns -1 on a bad one. */
static int check_content_range(struct rreq *r)
{
    const char *h = req_header(r, "Content-Range");
    if (h == NULL)
        return 0;
    const char *s = dlc_startswith(h, "bytes ") ? h + 6 : h;
    unsigned long long a = 0, b = 0;
    int used = 0;
    bool ok = sscanf(s, "%llu-%llu%n", &a, &b, &used) == 2 && s[0] != '-' &&
              (s[used] == '\0' || s[used] == '/') && b >= a;
    if (!ok || a != r->upload->size) {
        resp_error(r, 416, "BLOB_UPLOAD_INVALID",
                   "Content-Range '%s' does not continue the upload at byte %" PRIu64, h,
                   r->upload->size);
        resp_upload_headers(r, r->upload);
        return -1;
    }
    uint64_t cl = content_length(r);
    if (req_header(r, "Content-Length") && cl != b - a + 1) {
        resp_error(r, 400, "SIZE_INVALID", "Content-Range '%s' but Content-Length %" PRIu64, h, cl);
        return -1;
    }
    r->has_expect_len = true;
    r->expect_len = b - a + 1;
    return 0;
}

static bool body_len_ok(struct rreq *r)
{
    if (!r->has_expect_len || r->body_len == r->expect_len)
        return true;
    resp_error(r, 400, "SIZE_INVALID", "chunk declared %" PRIu64 " bytes, %" PRIu64 " arrived",
               r->expect_len, r->body_len);
    return false;
}

static void session_done(struct rreq *r)
{
    if (!body_len_ok(r))
        return;
    resp_empty(r, 202);
    resp_upload_headers(r, r->upload);
}

static void finish_done(struct rreq *r)
{
    if (!body_len_ok(r)) {
        r->drop_upload = true;
        return;
    }
    _cleanup_error_ struct dlc_error *err = NULL;
    struct upload *u = TAKE_PTR(r->upload);
    if (upload_finish(&r->srv->uploads, r->srv->st, u, r->digest, &err) < 0) {
        if (err->code == EBADMSG)
            resp_error(r, 400, "DIGEST_INVALID", "%s", err->msg);
        else
            resp_error(r, 500, "UNKNOWN", "%s", err->msg);
        return;
    }
    resp_blob_created(r, r->digest);
}

/* ?digest= into r->digest; responds 400 when missing or malformed. */
static int take_digest(struct rreq *r)
{
    const char *d = req_query(r, "digest");
    _cleanup_error_ struct dlc_error *err = NULL;
    if (d == NULL) {
        resp_error(r, 400, "DIGEST_INVALID", "the digest parameter is missing");
        return -1;
    }
    if (oci_digest_validate(d, &err) < 0) {
        resp_error(r, 400, "DIGEST_INVALID", "%s", err->msg);
        return -1;
    }
    snprintf(r->digest, sizeof(r->digest), "%s", d);
    return 0;
}

/* ?mount=<digest>&from=<repo>: a link, no data. True when it answered 201. */
static bool try_mount(struct rreq *r, const char *digest)
{
    const char *from = req_query(r, "from");
    if (oci_digest_validate(digest, NULL) < 0)
        return false;
    struct rstore *st = r->srv->st;
    bool here = rstore_blob_linked(st, r->name, digest);
    bool there = from && rstore_blob_linked(st, from, digest) && rstore_blob_exists(st, digest);
    if (!here && !there)
        return false;
    _cleanup_error_ struct dlc_error *err = NULL;
    if (!here && rstore_blob_link(st, r->name, digest, &err) < 0) {
        resp_error(r, 500, "UNKNOWN", "%s", err->msg);
        return true;
    }
    resp_blob_created(r, digest);
    return true;
}

static void post_begin(struct rreq *r)
{
    const char *mount = req_query(r, "mount"), *from = req_query(r, "from");
    if (from && (strlen(from) > REGISTRY_MAX_NAME || !oci_name_is_valid(from))) {
        resp_error(r, 400, "NAME_INVALID", "invalid repository name in from=");
        return;
    }
    if (mount && try_mount(r, mount))
        return;
    bool monolithic = !mount && req_query(r, "digest") != NULL;
    if (monolithic && take_digest(r) < 0)
        return;
    if (content_length(r) > r->srv->opts.max_blob_size) {
        resp_error(r, 413, "SIZE_INVALID", "blob larger than %" PRIu64 " bytes",
                   r->srv->opts.max_blob_size);
        return;
    }
    _cleanup_error_ struct dlc_error *err = NULL;
    if (upload_new(&r->srv->uploads, r->srv->st, r->name, &r->upload, &err) < 0) {
        if (err->code == EAGAIN) {
            resp_error(r, 429, "TOOMANYREQUESTS", "%s", err->msg);
            resp_header(r, "Retry-After", "10");
        } else {
            resp_error(r, 500, "UNKNOWN", "%s", err->msg);
        }
        return;
    }
    r->on_body = body_append;
    r->drop_upload = monolithic;
    r->on_done = monolithic ? finish_done : session_done;
}

static void session_begin(struct rreq *r)
{
    _cleanup_error_ struct dlc_error *err = NULL;
    if (upload_acquire(&r->srv->uploads, r->name, r->ref, &r->upload, &err) < 0) {
        if (err->code == EBUSY)
            resp_error(r, 416, "BLOB_UPLOAD_INVALID", "%s", err->msg);
        else
            resp_error(r, 404, "BLOB_UPLOAD_UNKNOWN", "%s", err->msg);
        return;
    }
    switch (r->method) {
    case RM_GET:
    case RM_HEAD:
        resp_empty(r, 204);
        resp_upload_headers(r, r->upload);
        return;
    case RM_DELETE:
        r->drop_upload = true;
        resp_empty(r, 204);
        return;
    case RM_PATCH:
    case RM_PUT:
        if (req_refuse_write(r) || (r->method == RM_PUT && take_digest(r) < 0) ||
            check_content_range(r) < 0)
            return;
        r->on_body = body_append;
        r->on_done = r->method == RM_PUT ? finish_done : session_done;
        return;
    default:
        resp_error(r, 405, "UNSUPPORTED", "method not allowed on an upload");
        return;
    }
}

void uploads_begin(struct rreq *r)
{
    if (r->route == RR_UPLOAD) {
        session_begin(r);
        return;
    }
    if (r->method != RM_POST) {
        resp_error(r, 405, "UNSUPPORTED", "method not allowed");
        return;
    }
    if (!req_refuse_write(r))
        post_begin(r);
}
