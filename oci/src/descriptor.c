/* descriptor.c: content descriptors and platforms, to and from JSON. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "oci-internal.h"

static void platform_free(struct oci_platform *p)
{
    if (p == NULL)
        return;
    free(p->architecture);
    free(p->os);
    free(p->variant);
    free(p);
}

static struct oci_platform *platform_copy(const struct oci_platform *p)
{
    if (p == NULL)
        return NULL;
    struct oci_platform *c = xcalloc(1, sizeof(*c));
    c->architecture = xstrdup(p->architecture);
    c->os = xstrdup(p->os);
    c->variant = p->variant ? xstrdup(p->variant) : NULL;
    return c;
}

static int platform_from_json(const json_t *obj, const char *what, struct oci_platform **ret,
                              struct dlc_error **err)
{
    json_t *o = NULL;
    if (dlc_json_get_object(obj, "platform", false, what, &o, err) < 0)
        return -1;
    if (o == NULL)
        return 0;
    _cleanup_free_ char *pwhat = xasprintf("%s: platform", what);
    const char *arch = NULL, *os = NULL, *variant = NULL;
    if (dlc_json_get_string(o, "architecture", true, pwhat, &arch, err) < 0 ||
        dlc_json_get_string(o, "os", true, pwhat, &os, err) < 0 ||
        dlc_json_get_string(o, "variant", false, pwhat, &variant, err) < 0)
        return -1;
    struct oci_platform *p = xcalloc(1, sizeof(*p));
    p->architecture = xstrdup(arch);
    p->os = xstrdup(os);
    p->variant = variant ? xstrdup(variant) : NULL;
    *ret = p;
    return 0;
}

void oci_descriptor_release(struct oci_descriptor *d)
{
    if (d == NULL)
        return;
    free(d->media_type);
    free(d->artifact_type);
    platform_free(d->platform);
    oci_map_release(&d->annotations);
    dlc_strv_free(d->urls);
    *d = (struct oci_descriptor){0};
}

void oci_descriptor_copy(struct oci_descriptor *dst, const struct oci_descriptor *src)
{
    *dst = (struct oci_descriptor){0};
    dst->media_type = src->media_type ? xstrdup(src->media_type) : NULL;
    memcpy(dst->digest, src->digest, sizeof(dst->digest));
    dst->size = src->size;
    dst->artifact_type = src->artifact_type ? xstrdup(src->artifact_type) : NULL;
    dst->platform = platform_copy(src->platform);
    oci__map_copy(&dst->annotations, &src->annotations);
    dst->urls = src->urls ? dlc_strv_copy(src->urls) : NULL;
}

static int descriptor_fields_from_json(const json_t *j, const char *what, struct oci_descriptor *d,
                                       struct dlc_error **err)
{
    const char *mt = NULL, *digest = NULL, *at = NULL;
    int64_t size = -1;
    if (dlc_json_get_string(j, "mediaType", true, what, &mt, err) < 0 ||
        dlc_json_get_string(j, "digest", true, what, &digest, err) < 0 ||
        dlc_json_get_int(j, "size", true, what, &size, err) < 0 ||
        dlc_json_get_string(j, "artifactType", false, what, &at, err) < 0)
        return -1;
    if (size < 0)
        return dlc_error_set(err, EINVAL, "%s: 'size' must not be negative", what);
    if (oci_digest_validate(digest, err) < 0)
        return dlc_error_wrap(err, "%s", what);
    d->media_type = xstrdup(mt);
    snprintf(d->digest, sizeof(d->digest), "%s", digest);
    d->size = size;
    d->artifact_type = at ? xstrdup(at) : NULL;
    return 0;
}

int oci_descriptor_from_json(const json_t *j, const char *what, struct oci_descriptor *ret,
                             struct dlc_error **err)
{
    if (!json_is_object(j))
        return dlc_error_set(err, EINVAL, "%s: must be an object", what);
    struct oci_descriptor d = {0};
    if (descriptor_fields_from_json(j, what, &d, err) < 0 ||
        platform_from_json(j, what, &d.platform, err) < 0 ||
        oci__map_from_json(j, "annotations", what, &d.annotations, err) < 0 ||
        dlc_json_get_strv(j, "urls", false, what, &d.urls, err) < 0) {
        oci_descriptor_release(&d);
        return -1;
    }
    *ret = d;
    return 0;
}

json_t *oci_descriptor_to_json(const struct oci_descriptor *d)
{
    json_t *j = json_pack("{s:s,s:s,s:I}", "mediaType", d->media_type ? d->media_type : "",
                          "digest", d->digest, "size", (json_int_t)d->size);
    if (d->artifact_type)
        json_object_set_new(j, "artifactType", json_string(d->artifact_type));
    if (d->platform) {
        json_t *p = json_pack("{s:s,s:s}", "architecture", d->platform->architecture, "os",
                              d->platform->os);
        if (d->platform->variant)
            json_object_set_new(p, "variant", json_string(d->platform->variant));
        json_object_set_new(j, "platform", p);
    }
    if (d->annotations.n > 0)
        json_object_set_new(j, "annotations", oci__map_to_json(&d->annotations));
    if (d->urls)
        json_object_set_new(j, "urls", dlc_json_from_strv(d->urls));
    return j;
}

int oci__descriptor_validate(const struct oci_descriptor *d, const char *what,
                             struct dlc_error **err)
{
    if (!oci__media_type_is_valid(d->media_type))
        return dlc_error_set(err, EINVAL, "%s: mediaType '%s' is not a valid media type", what,
                             d->media_type ? d->media_type : "");
    if (oci_digest_validate(d->digest, err) < 0)
        return dlc_error_wrap(err, "%s", what);
    if (d->size < 0)
        return dlc_error_set(err, EINVAL, "%s: size %" PRId64 " is negative", what, d->size);
    if (d->artifact_type && !oci__media_type_is_valid(d->artifact_type))
        return dlc_error_set(err, EINVAL, "%s: artifactType '%s' is not a valid media type", what,
                             d->artifact_type);
    if (d->platform && (d->platform->architecture[0] == '\0' || d->platform->os[0] == '\0'))
        return dlc_error_set(err, EINVAL, "%s: platform needs an architecture and an os", what);
    return 0;
}

void oci__descriptors_free(struct oci_descriptor *d, size_t n)
{
    for (size_t i = 0; d != NULL && i < n; i++)
        oci_descriptor_release(&d[i]);
    free(d);
}

int oci__descriptors_from_json(const json_t *arr, const char *what, struct oci_descriptor **ret,
                               size_t *ret_n, struct dlc_error **err)
{
    size_t n = json_array_size(arr);
    struct oci_descriptor *d = xcalloc(n ? n : 1, sizeof(*d));
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *w = xasprintf("%s[%zu]", what, i);
        if (oci_descriptor_from_json(json_array_get(arr, i), w, &d[i], err) < 0) {
            oci__descriptors_free(d, i);
            return -1;
        }
    }
    *ret = d;
    *ret_n = n;
    return 0;
}

json_t *oci__descriptors_to_json(const struct oci_descriptor *d, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, oci_descriptor_to_json(&d[i]));
    return a;
}

int oci__descriptor_opt_from_json(const json_t *obj, const char *key, const char *what,
                                  struct oci_descriptor **ret, struct dlc_error **err)
{
    json_t *o = NULL;
    if (dlc_json_get_object(obj, key, false, what, &o, err) < 0)
        return -1;
    if (o == NULL)
        return 0;
    _cleanup_free_ char *w = xasprintf("%s: %s", what, key);
    struct oci_descriptor *d = xcalloc(1, sizeof(*d));
    if (oci_descriptor_from_json(o, w, d, err) < 0) {
        free(d);
        return -1;
    }
    *ret = d;
    return 0;
}

const char *oci__descriptor_ref_name(const struct oci_descriptor *d)
{
    return oci_map_get(&d->annotations, OCI_ANNOTATION_REF_NAME);
}
