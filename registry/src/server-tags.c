/* server-tags.c: GET /v2/<name>/tags/list and /v2/_catalog, paginated with n and last and a
 * Link header to the next page. */
#include <errno.h>
#include <string.h>

#include "registry-internal.h"

/* Answers {key_name: name?, key: [page]} for the sorted list all; path is the endpoint for
 * the Link header. */
static void paginate(struct rreq *r, char *const *all, const char *key, const char *path)
{
    const char *n_arg = req_query(r, "n"), *last = req_query(r, "last");
    uint64_t n = REGISTRY_MAX_LIST;
    if (n_arg && dlc_parse_u64(n_arg, NULL, &n, NULL) < 0) {
        resp_error(r, 400, "PAGINATION_NUMBER_INVALID", "n='%s' is not a number", n_arg);
        return;
    }
    if (n > REGISTRY_MAX_LIST)
        n = REGISTRY_MAX_LIST;
    size_t i = 0, total = dlc_strv_len(all);
    while (last && i < total && strcmp(all[i], last) <= 0)
        i++;
    json_auto_t *arr = json_array();
    for (; i < total && json_array_size(arr) < n; i++)
        json_array_append_new(arr, json_string(all[i]));
    json_auto_t *j = json_object();
    if (r->name)
        json_object_set_new(j, "name", json_string(r->name));
    json_object_set(j, key, arr);
    resp_json(r, 200, j, NULL);
    size_t shown = json_array_size(arr);
    if (i < total && shown > 0) {
        const char *lastshown = json_string_value(json_array_get(arr, shown - 1));
        resp_header(r, "Link", "<%s?last=%s&n=%zu>; rel=\"next\"", path, lastshown, (size_t)n);
    }
}

void tags_begin(struct rreq *r)
{
    if (r->method != RM_GET && r->method != RM_HEAD) {
        resp_error(r, 405, "UNSUPPORTED", "method not allowed");
        return;
    }
    _cleanup_error_ struct dlc_error *err = NULL;
    _cleanup_strv_ char **tags = NULL;
    if (rstore_tags(r->srv->st, r->name, &tags, &err) < 0) {
        if (err->code == ENOENT)
            resp_error(r, 404, "NAME_UNKNOWN", "%s", err->msg);
        else
            resp_error(r, 500, "UNKNOWN", "%s", err->msg);
        return;
    }
    _cleanup_free_ char *path = xasprintf("/v2/%s/tags/list", r->name);
    paginate(r, tags, "tags", path);
}

void catalog_begin(struct rreq *r)
{
    if (r->method != RM_GET && r->method != RM_HEAD) {
        resp_error(r, 405, "UNSUPPORTED", "method not allowed");
        return;
    }
    _cleanup_error_ struct dlc_error *err = NULL;
    _cleanup_strv_ char **repos = NULL;
    if (rstore_catalog(r->srv->st, &repos, &err) < 0) {
        resp_error(r, 500, "UNKNOWN", "%s", err->msg);
        return;
    }
    paginate(r, repos, "repositories", "/v2/_catalog");
}
