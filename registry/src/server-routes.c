/* server-routes.c: maps a decoded request path to an endpoint, a repository name and the
 * last component. Names are validated here, before any handler builds a path from them. */
#include <string.h>

#include "registry-internal.h"

#define MAX_REF 256

/* Splits "<prefix>/<last>" at the last '/'; false when there is none. */
static bool split_last(const char *s, size_t len, size_t *ret_prefix_len, const char **ret_last)
{
    for (size_t i = len; i > 0; i--) {
        if (s[i - 1] == '/') {
            *ret_prefix_len = i - 1;
            *ret_last = s + i;
            return true;
        }
    }
    return false;
}

static bool component_is(const char *s, size_t len, const char *word)
{
    size_t n = strlen(word);
    if (len < n || strncmp(s + len - n, word, n) != 0)
        return false;
    return len == n || s[len - n - 1] == '/';
}

/* rest = "<name>/<kind>/<last>" (or "<name>/blobs/uploads/<id>", "<name>/tags/list"). */
static enum rroute classify(const char *rest, size_t *ret_name_len, const char **ret_last,
                            size_t *ret_last_len)
{
    size_t len = strlen(rest), p1 = 0, p2 = 0;
    const char *last = NULL, *kind = NULL;
    if (!split_last(rest, len, &p1, &last) || !split_last(rest, p1, &p2, &kind))
        return RR_NONE;
    size_t kind_len = p1 - p2 - 1;
    *ret_last = last;
    *ret_last_len = len - p1 - 1;
    *ret_name_len = p2;
    if (kind_len == 4 && strncmp(kind, "tags", 4) == 0 && strcmp(last, "list") == 0)
        return RR_TAGS;
    if (kind_len == 9 && strncmp(kind, "manifests", 9) == 0)
        return RR_MANIFEST;
    if (kind_len == 9 && strncmp(kind, "referrers", 9) == 0)
        return RR_REFERRERS;
    if (kind_len == 7 && strncmp(kind, "uploads", 7) == 0 && component_is(rest, p2, "blobs")) {
        *ret_name_len = p2 >= 6 ? p2 - 6 : 0;
        if (p2 < 6)
            return RR_NONE;
        return *ret_last_len == 0 ? RR_UPLOAD_NEW : RR_UPLOAD;
    }
    if (kind_len == 5 && strncmp(kind, "blobs", 5) == 0)
        return strcmp(last, "uploads") == 0 ? RR_UPLOAD_NEW : RR_BLOB;
    return RR_NONE;
}

enum route_status route_split(const char *path, enum rroute *route, char **ret_name, char **ret_ref)
{
    *route = RR_NONE;
    *ret_name = *ret_ref = NULL;
    const char *rest = dlc_startswith(path, "/v2/");
    if (rest == NULL || rest[0] == '\0' || strcmp(rest, "_catalog") == 0) {
        if (rest == NULL && strcmp(path, "/v2") != 0)
            return ROUTE_UNKNOWN;
        *route = rest && rest[0] ? RR_CATALOG : RR_BASE;
        return ROUTE_OK;
    }
    size_t name_len = 0, last_len = 0;
    const char *last = NULL;
    *route = classify(rest, &name_len, &last, &last_len);
    if (*route == RR_NONE)
        return ROUTE_UNKNOWN;
    _cleanup_free_ char *name = xstrndup(rest, name_len);
    if (name_len == 0 || name_len > REGISTRY_MAX_NAME || !oci_name_is_valid(name))
        return ROUTE_BAD_NAME;
    if (last_len > MAX_REF)
        return ROUTE_BAD_REF;
    *ret_name = TAKE_PTR(name);
    *ret_ref = xstrdup(*route == RR_UPLOAD_NEW ? "" : last);
    return ROUTE_OK;
}

int route_parse(struct rreq *r)
{
    switch (route_split(r->path, &r->route, &r->name, &r->ref)) {
    case ROUTE_OK:
        return 0;
    case ROUTE_UNKNOWN:
        resp_error(r, 404, "NAME_UNKNOWN", "no such endpoint");
        return -1;
    case ROUTE_BAD_NAME:
        resp_error(r, 400, "NAME_INVALID", "invalid repository name");
        return -1;
    case ROUTE_BAD_REF:
        resp_error(r, 404, r->route == RR_MANIFEST ? "MANIFEST_UNKNOWN" : "BLOB_UNKNOWN",
                   "reference too long");
        return -1;
    }
    return -1;
}
