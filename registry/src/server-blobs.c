/* server-blobs.c: GET/HEAD (with Range) and DELETE of /v2/<name>/blobs/<digest>. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "registry-internal.h"

/* One "bytes=a-b", "bytes=a-" or "bytes=-n" range of a blob of size bytes (RFC 9110).
 * Lists of ranges are not supported and are answered with the whole blob. */
enum range_result blob_range_parse(const char *h, uint64_t size, uint64_t *ret_start,
                                   uint64_t *ret_len)
{
    const char *spec = h ? dlc_startswith(h, "bytes=") : NULL;
    if (spec == NULL || strchr(spec, ',') != NULL)
        return RANGE_NONE;
    const char *dash = strchr(spec, '-');
    if (dash == NULL)
        return RANGE_BAD;
    _cleanup_free_ char *a = xstrndup(spec, (size_t)(dash - spec));
    const char *b = dash + 1;
    uint64_t start = 0, end = 0;
    if (a[0] == '\0') { /* suffix: the last n bytes */
        uint64_t n = 0;
        if (dlc_parse_u64(b, NULL, &n, NULL) < 0 || n == 0 || size == 0)
            return RANGE_BAD;
        start = n >= size ? 0 : size - n;
        end = size - 1;
    } else {
        if (dlc_parse_u64(a, NULL, &start, NULL) < 0)
            return RANGE_BAD;
        if (b[0] == '\0')
            end = size ? size - 1 : 0;
        else if (dlc_parse_u64(b, NULL, &end, NULL) < 0 || end < start)
            return RANGE_BAD;
        if (start >= size)
            return RANGE_BAD;
        if (end >= size)
            end = size - 1;
    }
    *ret_start = start;
    *ret_len = end - start + 1;
    return RANGE_OK;
}

static void blob_get(struct rreq *r)
{
    _cleanup_error_ struct dlc_error *err = NULL;
    int fd = -1;
    uint64_t size = 0;
    if (rstore_blob_open(r->srv->st, r->name, r->ref, &fd, &size, &err) < 0) {
        if (err->code == ENOENT)
            resp_error(r, 404, "BLOB_UNKNOWN", "%s", err->msg);
        else
            resp_error(r, 500, "UNKNOWN", "%s", err->msg);
        return;
    }
    uint64_t start = 0, len = size;
    enum range_result rr = blob_range_parse(req_header(r, "Range"), size, &start, &len);
    if (rr == RANGE_BAD) {
        close(fd);
        /* OCI defines no code for this; distribution's */
        resp_error(r, 416, "RANGE_INVALID", "range '%s' not satisfiable for %" PRIu64 " bytes",
                   req_header(r, "Range"), size);
        resp_header(r, "Content-Range", "bytes */%" PRIu64, size);
        return;
    }
    resp_fd(r, rr == RANGE_OK ? 206 : 200, fd, start, len);
    if (rr == RANGE_OK)
        resp_header(r, "Content-Range", "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, start,
                    start + len - 1, size);
    resp_header(r, "Content-Type", "application/octet-stream");
    resp_header(r, "Docker-Content-Digest", "%s", r->ref);
    resp_header(r, "ETag", "\"%s\"", r->ref);
    resp_header(r, "Accept-Ranges", "bytes");
    resp_header(r, "Cache-Control", "max-age=31536000");
}

static void blob_delete(struct rreq *r)
{
    if (req_refuse_write(r))
        return;
    _cleanup_error_ struct dlc_error *err = NULL;
    if (rstore_blob_unlink(r->srv->st, r->name, r->ref, &err) < 0) {
        if (err->code == ENOENT)
            resp_error(r, 404, "BLOB_UNKNOWN", "%s", err->msg);
        else
            resp_error(r, 500, "UNKNOWN", "%s", err->msg);
        return;
    }
    resp_empty(r, 202);
}

void blobs_begin(struct rreq *r)
{
    if (r->method != RM_GET && r->method != RM_HEAD && r->method != RM_DELETE) {
        resp_error(r, 405, "UNSUPPORTED", "method not allowed on a blob");
        return;
    }
    _cleanup_error_ struct dlc_error *err = NULL;
    if (oci_digest_validate(r->ref, &err) < 0) {
        resp_error(r, 400, "DIGEST_INVALID", "%s", err->msg);
        return;
    }
    if (r->method == RM_DELETE)
        blob_delete(r);
    else
        blob_get(r);
}
