/* server-referrers.c: GET /v2/<name>/referrers/<digest>[?artifactType=]: an image index of
 * the manifests whose subject is <digest>. Never 404: no referrers is an empty index. */
#include <string.h>

#include "registry-internal.h"

void referrers_begin(struct rreq *r)
{
    if (r->method != RM_GET && r->method != RM_HEAD) {
        resp_error(r, 405, "UNSUPPORTED", "method not allowed");
        return;
    }
    _cleanup_error_ struct dlc_error *err = NULL;
    if (oci_digest_validate(r->ref, &err) < 0) {
        resp_error(r, 400, "DIGEST_INVALID", "%s", err->msg);
        return;
    }
    const char *filter = req_query(r, "artifactType");
    if (filter && filter[0] == '\0')
        filter = NULL;
    json_t *manifests = NULL;
    if (rstore_referrers(r->srv->st, r->name, r->ref, filter, &manifests, &err) < 0) {
        resp_error(r, 500, "UNKNOWN", "%s", err->msg);
        return;
    }
    json_auto_t *ix = json_pack("{s:i,s:s,s:o}", "schemaVersion", 2, "mediaType", OCI_MT_INDEX,
                                "manifests", manifests);
    resp_json(r, 200, ix, OCI_MT_INDEX);
    if (filter)
        resp_header(r, "OCI-Filters-Applied", "artifactType");
}
