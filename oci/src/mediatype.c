/* mediatype.c: which media types are manifests, indexes and layers (OCI and Docker). */
#include <string.h>

#include "oci-internal.h"

bool oci_media_type_is_manifest(const char *mt)
{
    return dlc_streq(mt, OCI_MT_MANIFEST) || dlc_streq(mt, DOCKER_MT_MANIFEST);
}

bool oci_media_type_is_index(const char *mt)
{
    return dlc_streq(mt, OCI_MT_INDEX) || dlc_streq(mt, DOCKER_MT_LIST);
}

const char *oci_media_type_layer_compression(const char *mt)
{
    static const struct {
        const char *mt;
        const char *compression;
    } layers[] = {
            {OCI_MT_LAYER_TAR, "tar"},
            {OCI_MT_LAYER_GZIP, "gzip"},
            {OCI_MT_LAYER_ZSTD, "zstd"},
            {DOCKER_MT_LAYER_GZIP, "gzip"},
            {"application/vnd.oci.image.layer.nondistributable.v1.tar", "tar"},
            {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "gzip"},
            {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", "zstd"},
            {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "gzip"},
    };
    for (size_t i = 0; mt != NULL && i < DLC_ARRAY_SIZE(layers); i++)
        if (strcmp(mt, layers[i].mt) == 0)
            return layers[i].compression;
    return NULL;
}

/* One side of type/subtype: [A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}. */
static bool media_type_part_is_valid(const char *s, size_t n)
{
    if (n == 0 || n > 127)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || strchr("!#$&^_.+-", c) == NULL))
            return false;
    }
    return true;
}

bool oci__media_type_is_valid(const char *mt)
{
    const char *slash = mt ? strchr(mt, '/') : NULL;
    if (slash == NULL)
        return false;
    return media_type_part_is_valid(mt, (size_t)(slash - mt)) &&
           media_type_part_is_valid(slash + 1, strlen(slash + 1));
}
