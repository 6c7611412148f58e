/* index.c: image indexes (OCI and Docker manifest lists), to and from JSON, and validation.
 * The store's index.json is one too. */
#include <errno.h>
#include <string.h>

#include "oci-internal.h"

void oci_index_free(struct oci_index *ix)
{
    if (ix == NULL)
        return;
    free(ix->media_type);
    free(ix->artifact_type);
    oci__descriptors_free(ix->manifests, ix->n_manifests);
    if (ix->subject)
        oci_descriptor_release(ix->subject);
    free(ix->subject);
    oci_map_release(&ix->annotations);
    free(ix);
}

int oci_index_from_json(const json_t *j, struct oci_index **ret, struct dlc_error **err)
{
    _cleanup_(oci_index_freep) struct oci_index *ix = xcalloc(1, sizeof(*ix));
    if (!json_is_object(j))
        return dlc_error_set(err, EINVAL, "index: must be an object");
    int64_t schema = 0;
    const char *mt = NULL, *at = NULL;
    json_t *manifests = NULL;
    if (dlc_json_get_int(j, "schemaVersion", true, "index", &schema, err) < 0 ||
        dlc_json_get_string(j, "mediaType", false, "index", &mt, err) < 0 ||
        dlc_json_get_string(j, "artifactType", false, "index", &at, err) < 0 ||
        dlc_json_get_array(j, "manifests", true, "index", &manifests, err) < 0)
        return -1;
    ix->schema_version = schema < INT32_MIN || schema > INT32_MAX ? -1 : (int)schema;
    ix->media_type = mt ? xstrdup(mt) : NULL;
    ix->artifact_type = at ? xstrdup(at) : NULL;
    if (oci__descriptors_from_json(manifests, "index: manifests", &ix->manifests, &ix->n_manifests,
                                   err) < 0 ||
        oci__descriptor_opt_from_json(j, "subject", "index", &ix->subject, err) < 0 ||
        oci__map_from_json(j, "annotations", "index", &ix->annotations, err) < 0)
        return -1;
    *ret = TAKE_PTR(ix);
    return 0;
}

int oci_index_parse(const char *buf, size_t len, const char *what, struct oci_index **ret,
                    struct dlc_error **err)
{
    json_auto_t *j = dlc_json_loadb(buf, len, what, err);
    if (j == NULL)
        return -1;
    if (oci_index_from_json(j, ret, err) < 0)
        return dlc_error_wrap(err, "%s", what);
    return 0;
}

json_t *oci_index_to_json(const struct oci_index *ix)
{
    json_t *j = json_pack("{s:i,s:o}", "schemaVersion", ix->schema_version, "manifests",
                          oci__descriptors_to_json(ix->manifests, ix->n_manifests));
    if (ix->media_type)
        json_object_set_new(j, "mediaType", json_string(ix->media_type));
    if (ix->artifact_type)
        json_object_set_new(j, "artifactType", json_string(ix->artifact_type));
    if (ix->subject)
        json_object_set_new(j, "subject", oci_descriptor_to_json(ix->subject));
    if (ix->annotations.n > 0)
        json_object_set_new(j, "annotations", oci__map_to_json(&ix->annotations));
    return j;
}

int oci_index_validate(const struct oci_index *ix, struct dlc_error **err)
{
    if (ix->schema_version != 2)
        return dlc_error_set(err, EINVAL, "index: schemaVersion is %d, want 2", ix->schema_version);
    if (ix->media_type && !oci_media_type_is_index(ix->media_type))
        return dlc_error_set(err, EINVAL, "index: mediaType '%s' is not an image index type",
                             ix->media_type);
    if (ix->artifact_type && !oci__media_type_is_valid(ix->artifact_type))
        return dlc_error_set(err, EINVAL, "index: artifactType '%s' is not a valid media type",
                             ix->artifact_type);
    for (size_t i = 0; i < ix->n_manifests; i++) {
        char what[48];
        snprintf(what, sizeof(what), "index: manifests[%zu]", i);
        if (oci__descriptor_validate(&ix->manifests[i], what, err) < 0)
            return -1;
    }
    if (ix->subject && oci__descriptor_validate(ix->subject, "index: subject", err) < 0)
        return -1;
    return 0;
}
