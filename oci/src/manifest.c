/* manifest.c: image manifests (OCI and Docker schema 2), to and from JSON, and validation. */
#include <errno.h>
#include <string.h>

#include "oci-internal.h"

void oci_manifest_free(struct oci_manifest *m)
{
    if (m == NULL)
        return;
    free(m->media_type);
    free(m->artifact_type);
    oci_descriptor_release(&m->config);
    oci__descriptors_free(m->layers, m->n_layers);
    if (m->subject)
        oci_descriptor_release(m->subject);
    free(m->subject);
    oci_map_release(&m->annotations);
    free(m);
}

static int manifest_header_from_json(const json_t *j, const char *what, int *ret_schema,
                                     char **ret_mt, char **ret_at, struct dlc_error **err)
{
    int64_t schema = 0;
    const char *mt = NULL, *at = NULL;
    if (!json_is_object(j))
        return dlc_error_set(err, EINVAL, "%s: must be an object", what);
    if (dlc_json_get_int(j, "schemaVersion", true, what, &schema, err) < 0 ||
        dlc_json_get_string(j, "mediaType", false, what, &mt, err) < 0 ||
        dlc_json_get_string(j, "artifactType", false, what, &at, err) < 0)
        return -1;
    *ret_schema = schema < INT32_MIN || schema > INT32_MAX ? -1 : (int)schema;
    *ret_mt = mt ? xstrdup(mt) : NULL;
    *ret_at = at ? xstrdup(at) : NULL;
    return 0;
}

int oci_manifest_from_json(const json_t *j, struct oci_manifest **ret, struct dlc_error **err)
{
    _cleanup_(oci_manifest_freep) struct oci_manifest *m = xcalloc(1, sizeof(*m));
    if (manifest_header_from_json(j, "manifest", &m->schema_version, &m->media_type,
                                  &m->artifact_type, err) < 0)
        return -1;
    json_t *config = NULL, *layers = NULL;
    if (dlc_json_get_object(j, "config", true, "manifest", &config, err) < 0 ||
        oci_descriptor_from_json(config, "manifest: config", &m->config, err) < 0 ||
        dlc_json_get_array(j, "layers", true, "manifest", &layers, err) < 0 ||
        oci__descriptors_from_json(layers, "manifest: layers", &m->layers, &m->n_layers, err) < 0 ||
        oci__descriptor_opt_from_json(j, "subject", "manifest", &m->subject, err) < 0 ||
        oci__map_from_json(j, "annotations", "manifest", &m->annotations, err) < 0)
        return -1;
    *ret = TAKE_PTR(m);
    return 0;
}

int oci_manifest_parse(const char *buf, size_t len, const char *what, struct oci_manifest **ret,
                       struct dlc_error **err)
{
    json_auto_t *j = dlc_json_loadb(buf, len, what, err);
    if (j == NULL)
        return -1;
    if (oci_manifest_from_json(j, ret, err) < 0)
        return dlc_error_wrap(err, "%s", what);
    return 0;
}

json_t *oci_manifest_to_json(const struct oci_manifest *m)
{
    json_t *j = json_pack("{s:i,s:o,s:o}", "schemaVersion", m->schema_version, "config",
                          oci_descriptor_to_json(&m->config), "layers",
                          oci__descriptors_to_json(m->layers, m->n_layers));
    if (m->media_type)
        json_object_set_new(j, "mediaType", json_string(m->media_type));
    if (m->artifact_type)
        json_object_set_new(j, "artifactType", json_string(m->artifact_type));
    if (m->subject)
        json_object_set_new(j, "subject", oci_descriptor_to_json(m->subject));
    if (m->annotations.n > 0)
        json_object_set_new(j, "annotations", oci__map_to_json(&m->annotations));
    return j;
}

int oci_manifest_validate(const struct oci_manifest *m, struct dlc_error **err)
{
    if (m->schema_version != 2)
        return dlc_error_set(err, EINVAL, "manifest: schemaVersion is %d, want 2",
                             m->schema_version);
    if (m->media_type && !oci_media_type_is_manifest(m->media_type))
        return dlc_error_set(err, EINVAL, "manifest: mediaType '%s' is not an image manifest type",
                             m->media_type);
    if (m->artifact_type && !oci__media_type_is_valid(m->artifact_type))
        return dlc_error_set(err, EINVAL, "manifest: artifactType '%s' is not a valid media type",
                             m->artifact_type);
    if (oci__descriptor_validate(&m->config, "manifest: config", err) < 0)
        return -1;
    if (dlc_streq(m->config.media_type, OCI_MT_EMPTY) && m->artifact_type == NULL)
        return dlc_error_set(err, EINVAL,
                             "manifest: artifactType must be set when the config is the empty "
                             "descriptor");
    for (size_t i = 0; i < m->n_layers; i++) {
        char what[48];
        snprintf(what, sizeof(what), "manifest: layers[%zu]", i);
        if (oci__descriptor_validate(&m->layers[i], what, err) < 0)
            return -1;
    }
    if (m->subject && oci__descriptor_validate(m->subject, "manifest: subject", err) < 0)
        return -1;
    return 0;
}
