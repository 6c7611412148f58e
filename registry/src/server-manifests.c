/* server-manifests.c: GET/HEAD/PUT/DELETE of /v2/<name>/manifests/<tag|digest>. Manifests are
 * stored byte-for-byte with their Content-Type; a PUT is refused when a blob (or, for an
 * index, a manifest) it references is not in the repository. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "registry-internal.h"

#define MAX_STORED_MANIFEST (64u << 20)

static bool ref_is_digest(const char *ref)
{
    return strchr(ref, ':') != NULL;
}

static void manifest_get(struct rreq *r)
{
    _cleanup_error_ struct dlc_error *err = NULL;
    struct rstore *st = r->srv->st;
    if (ref_is_digest(r->ref) && oci_digest_validate(r->ref, &err) < 0) {
        resp_error(r, 400, "DIGEST_INVALID", "%s", err->msg);
        return;
    }
    if (!ref_is_digest(r->ref) && !oci_tag_is_valid(r->ref)) {
        resp_error(r, 404, "MANIFEST_UNKNOWN", "manifest '%s' is unknown (invalid tag)", r->ref);
        return;
    }
    if (!rstore_repo_exists(st, r->name)) {
        resp_error(r, 404, "NAME_UNKNOWN", "repository %s is unknown", r->name);
        return;
    }
    char digest[OCI_DIGEST_BUFSZ];
    struct rmanifest m = {0};
    if (rstore_manifest_resolve(st, r->name, r->ref, digest, &err) < 0 ||
        rstore_manifest_read(st, r->name, digest, MAX_STORED_MANIFEST, &m, &err) < 0) {
        if (err->code == ENOENT)
            resp_error(r, 404, "MANIFEST_UNKNOWN", "%s", err->msg);
        else
            resp_error(r, 500, "UNKNOWN", "%s", err->msg);
        return;
    }
    resp_buffer(r, 200, TAKE_PTR(m.data), m.len, m.media_type);
    resp_header(r, "Docker-Content-Digest", "%s", digest);
    resp_header(r, "ETag", "\"%s\"", digest);
    rmanifest_release(&m);
}

static int manifest_body(struct rreq *r, const char *data, size_t len)
{
    if (r->body.len + len > r->srv->opts.max_manifest_size) {
        resp_error(r, 413, "MANIFEST_INVALID", "manifest larger than %" PRIu64 " bytes",
                   r->srv->opts.max_manifest_size);
        return -1;
    }
    dlc_strbuf_append_len(&r->body, data, len);
    return 0;
}

static bool is_manifest_type(const char *mt)
{
    return mt && (oci_media_type_is_manifest(mt) || oci_media_type_is_index(mt));
}

/* The manifest's media type: the Content-Type (parameters dropped) when it is a manifest
 * type, else the body's mediaType; the two must agree when both are given. */
static char *media_type(struct rreq *r, const json_t *j)
{
    const char *ct = req_header(r, "Content-Type");
    _cleanup_free_ char *header = ct ? xstrndup(ct, strcspn(ct, "; \t")) : NULL;
    json_t *field = json_object_get(j, "mediaType");
    const char *body = json_string_value(field);
    if (field && body == NULL) {
        resp_error(r, 400, "MANIFEST_INVALID", "mediaType must be a string");
        return NULL;
    }
    if (is_manifest_type(header) && body && strcmp(header, body) != 0) {
        resp_error(r, 400, "MANIFEST_INVALID", "mediaType '%s' does not match Content-Type '%s'",
                   body, header);
        return NULL;
    }
    const char *mt = is_manifest_type(header) ? header : body;
    if (!is_manifest_type(mt)) {
        resp_error(r, 400, "MANIFEST_INVALID", "unsupported manifest media type '%s'",
                   mt ? mt : "(none)");
        return NULL;
    }
    return xstrdup(mt);
}

static json_t *map_to_json(const struct oci_map *m)
{
    json_t *o = json_object();
    for (size_t i = 0; i < m->n; i++)
        json_object_set_new(o, m->keys[i], json_string(m->values[i]));
    return o;
}

/* The referrers API's descriptor of this manifest. */
static json_t *referrer_descriptor(const struct rmanifest *m, const char *artifact_type,
                                   const struct oci_map *annotations)
{
    json_t *d = json_pack("{s:s,s:s,s:I}", "mediaType", m->media_type, "digest", m->digest, "size",
                          (json_int_t)m->len);
    if (artifact_type)
        json_object_set_new(d, "artifactType", json_string(artifact_type));
    if (annotations->n > 0)
        json_object_set_new(d, "annotations", map_to_json(annotations));
    return d;
}

static bool blob_present(struct rreq *r, const struct oci_descriptor *d)
{
    /* foreign layers (urls) live elsewhere */
    return (d->urls && d->urls[0]) || rstore_blob_linked(r->srv->st, r->name, d->digest);
}

static int check_image(struct rreq *r, struct rmanifest *m)
{
    _cleanup_error_ struct dlc_error *err = NULL;
    _cleanup_(oci_manifest_freep) struct oci_manifest *man = NULL;
    if (oci_manifest_parse(m->data, m->len, "manifest", &man, &err) < 0) {
        resp_error(r, 400, "MANIFEST_INVALID", "%s", err->msg);
        return -1;
    }
    const struct oci_descriptor *missing = blob_present(r, &man->config) ? NULL : &man->config;
    for (size_t i = 0; i < man->n_layers && missing == NULL; i++)
        if (!blob_present(r, &man->layers[i]))
            missing = &man->layers[i];
    if (missing) {
        resp_error(r, 400, "MANIFEST_BLOB_UNKNOWN", "blob %s is not in repository %s",
                   missing->digest, r->name);
        return -1;
    }
    if (man->subject) {
        m->subject = xstrdup(man->subject->digest);
        const char *at = man->artifact_type ? man->artifact_type : man->config.media_type;
        m->descriptor = referrer_descriptor(m, at, &man->annotations);
    }
    return 0;
}

static int check_index(struct rreq *r, struct rmanifest *m)
{
    _cleanup_error_ struct dlc_error *err = NULL;
    _cleanup_(oci_index_freep) struct oci_index *ix = NULL;
    if (oci_index_parse(m->data, m->len, "index", &ix, &err) < 0) {
        resp_error(r, 400, "MANIFEST_INVALID", "%s", err->msg);
        return -1;
    }
    for (size_t i = 0; i < ix->n_manifests; i++) {
        char d[OCI_DIGEST_BUFSZ];
        if (rstore_manifest_resolve(r->srv->st, r->name, ix->manifests[i].digest, d, NULL) < 0) {
            resp_error(r, 400, "MANIFEST_BLOB_UNKNOWN", "manifest %s is not in repository %s",
                       ix->manifests[i].digest, r->name);
            return -1;
        }
    }
    if (ix->subject) {
        m->subject = xstrdup(ix->subject->digest);
        m->descriptor = referrer_descriptor(m, ix->artifact_type, &ix->annotations);
    }
    return 0;
}

/* The tags a PUT names: the reference when it is a tag, and every ?tag=. */
static char **put_tags(struct rreq *r)
{
    char **tags = req_query_all(r, "tag");
    for (size_t i = 0; tags[i]; i++) {
        if (!oci_tag_is_valid(tags[i])) {
            resp_error(r, 400, "TAG_INVALID", "invalid tag '%s'", tags[i]);
            dlc_strv_free(tags);
            return NULL;
        }
    }
    if (!ref_is_digest(r->ref))
        tags = dlc_strv_push(tags, r->ref);
    return tags;
}

static void manifest_put_done(struct rreq *r)
{
    _cleanup_error_ struct dlc_error *err = NULL;
    _cleanup_(rmanifest_release) struct rmanifest m = {0};
    m.len = r->body.len;
    m.data = dlc_strbuf_detach(&r->body, NULL);
    json_auto_t *j = dlc_json_loadb(m.data, m.len, "manifest", &err);
    if (j == NULL || !json_is_object(j)) {
        resp_error(r, 400, "MANIFEST_INVALID", "%s", err ? err->msg : "not a JSON object");
        return;
    }
    m.media_type = media_type(r, j);
    if (m.media_type == NULL)
        return;
    oci_digest_buf(m.data, m.len, m.digest);
    if (ref_is_digest(r->ref) && strcmp(r->ref, m.digest) != 0) {
        resp_error(r, 400, "DIGEST_INVALID", "manifest hashes to %s, not %s", m.digest, r->ref);
        return;
    }
    int rc = oci_media_type_is_index(m.media_type) ? check_index(r, &m) : check_image(r, &m);
    _cleanup_strv_ char **tags = rc < 0 ? NULL : put_tags(r);
    if (tags == NULL)
        return;
    if (rstore_manifest_put(r->srv->st, r->name, &m, tags, &err) < 0) {
        resp_error(r, 500, "UNKNOWN", "%s", err->msg);
        return;
    }
    resp_empty(r, 201);
    resp_header(r, "Location", "/v2/%s/manifests/%s", r->name, m.digest);
    resp_header(r, "Docker-Content-Digest", "%s", m.digest);
    if (m.subject)
        resp_header(r, "OCI-Subject", "%s", m.subject);
    for (size_t i = 0; tags[i]; i++)
        resp_header(r, "OCI-Tag", "%s", tags[i]);
}

static void manifest_put_begin(struct rreq *r)
{
    _cleanup_error_ struct dlc_error *err = NULL;
    if (req_refuse_write(r))
        return;
    if (ref_is_digest(r->ref) && oci_digest_validate(r->ref, &err) < 0) {
        resp_error(r, 400, "DIGEST_INVALID", "%s", err->msg);
        return;
    }
    if (!ref_is_digest(r->ref) && !oci_tag_is_valid(r->ref)) {
        resp_error(r, 400, "TAG_INVALID", "invalid tag '%s'", r->ref);
        return;
    }
    const char *cl = req_header(r, "Content-Length");
    uint64_t n = 0;
    if (cl && dlc_parse_u64(cl, NULL, &n, NULL) == 0 && n > r->srv->opts.max_manifest_size) {
        resp_error(r, 413, "MANIFEST_INVALID", "manifest larger than %" PRIu64 " bytes",
                   r->srv->opts.max_manifest_size);
        return;
    }
    r->on_body = manifest_body;
    r->on_done = manifest_put_done;
}

static void manifest_delete(struct rreq *r)
{
    _cleanup_error_ struct dlc_error *err = NULL;
    if (req_refuse_write(r))
        return;
    int rc;
    if (ref_is_digest(r->ref)) {
        if (oci_digest_validate(r->ref, &err) < 0) {
            resp_error(r, 400, "DIGEST_INVALID", "%s", err->msg);
            return;
        }
        rc = rstore_manifest_delete(r->srv->st, r->name, r->ref, &err);
    } else if (oci_tag_is_valid(r->ref)) {
        rc = rstore_tag_delete(r->srv->st, r->name, r->ref, &err);
    } else {
        resp_error(r, 404, "MANIFEST_UNKNOWN", "manifest '%s' is unknown (invalid tag)", r->ref);
        return;
    }
    if (rc < 0) {
        if (err->code == ENOENT)
            resp_error(r, 404, "MANIFEST_UNKNOWN", "%s", err->msg);
        else
            resp_error(r, 500, "UNKNOWN", "%s", err->msg);
        return;
    }
    resp_empty(r, 202);
}

void manifests_begin(struct rreq *r)
{
    switch (r->method) {
    case RM_GET:
    case RM_HEAD:
        manifest_get(r);
        break;
    case RM_PUT:
        manifest_put_begin(r);
        break;
    case RM_DELETE:
        manifest_delete(r);
        break;
    default:
        resp_error(r, 405, "UNSUPPORTED", "method not allowed on a manifest");
        break;
    }
}
