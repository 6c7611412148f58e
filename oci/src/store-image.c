/* store-image.c: whole images: loading (index -> host platform manifest -> config, every
 * digest verified) and storing a serialised manifest or index. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "oci-internal.h"

#define MAX_INDEX_DEPTH 4

void oci_image_free(struct oci_image *img)
{
    if (img == NULL)
        return;
    oci_descriptor_release(&img->desc);
    oci_manifest_free(img->manifest);
    free(img->manifest_raw);
    oci_image_config_free(img->config);
    free(img->config_raw);
    free(img);
}

/* Reads a blob a descriptor points at: digest verified, size checked against it. */
static int read_described(struct oci_store *s, const struct oci_descriptor *d, size_t max,
                          char **ret_buf, size_t *ret_len, struct dlc_error **err)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (oci_store_blob_read(s, d->digest, max, &buf, &len, err) < 0)
        return -1;
    if ((int64_t)len != d->size)
        return dlc_error_set(err, EBADMSG, "blob %s has %zu bytes, its descriptor says %" PRId64,
                             d->digest, len, d->size);
    *ret_buf = TAKE_PTR(buf);
    *ret_len = len;
    return 0;
}

static bool platform_matches(const struct oci_descriptor *d)
{
    return d->platform != NULL && dlc_streq(d->platform->os, "linux") &&
           dlc_streq(d->platform->architecture, oci_host_arch());
}

/* The entry of an index for linux/<host arch>; an index with a single entry and no platform
 * information (as some tools write) gives that entry. */
static int index_pick(const struct oci_index *ix, const char *digest, struct oci_descriptor *ret,
                      struct dlc_error **err)
{
    for (size_t i = 0; i < ix->n_manifests; i++) {
        if (platform_matches(&ix->manifests[i])) {
            oci_descriptor_copy(ret, &ix->manifests[i]);
            return 0;
        }
    }
    if (ix->n_manifests == 1 && ix->manifests[0].platform == NULL) {
        oci_descriptor_copy(ret, &ix->manifests[0]);
        return 0;
    }
    return dlc_error_set(err, ENOENT, "index %s has no manifest for linux/%s", digest,
                         oci_host_arch());
}

/* Follows indexes down to the host platform's manifest descriptor. */
static int pick_manifest(struct oci_store *s, const struct oci_descriptor *desc, int depth,
                         struct oci_descriptor *ret, struct dlc_error **err)
{
    if (oci_media_type_is_manifest(desc->media_type)) {
        oci_descriptor_copy(ret, desc);
        return 0;
    }
    if (!oci_media_type_is_index(desc->media_type))
        return dlc_error_set(err, EINVAL, "%s: media type '%s' is not an image manifest or index",
                             desc->digest, desc->media_type ? desc->media_type : "");
    if (depth >= MAX_INDEX_DEPTH)
        return dlc_error_set(err, EINVAL, "%s: indexes nested more than %d deep", desc->digest,
                             MAX_INDEX_DEPTH);
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    _cleanup_(oci_index_freep) struct oci_index *ix = NULL;
    if (read_described(s, desc, OCI_MAX_MANIFEST_SIZE, &buf, &len, err) < 0 ||
        oci_index_parse(buf, len, desc->digest, &ix, err) < 0)
        return -1;
    if (oci_index_validate(ix, err) < 0)
        return dlc_error_wrap(err, "%s", desc->digest);
    struct oci_descriptor child = {0};
    if (index_pick(ix, desc->digest, &child, err) < 0)
        return -1;
    int r = pick_manifest(s, &child, depth + 1, ret, err);
    oci_descriptor_release(&child);
    return r;
}

static int load_manifest(struct oci_store *s, struct oci_image *img, struct dlc_error **err)
{
    if (read_described(s, &img->desc, OCI_MAX_MANIFEST_SIZE, &img->manifest_raw, &img->manifest_len,
                       err) < 0 ||
        oci_manifest_parse(img->manifest_raw, img->manifest_len, img->desc.digest, &img->manifest,
                           err) < 0)
        return -1;
    if (oci_manifest_validate(img->manifest, err) < 0)
        return dlc_error_wrap(err, "%s", img->desc.digest);
    const char *cmt = img->manifest->config.media_type;
    if (!dlc_streq(cmt, OCI_MT_CONFIG) && !dlc_streq(cmt, DOCKER_MT_CONFIG))
        return dlc_error_set(err, EINVAL,
                             "manifest %s: config media type '%s' is not an image config",
                             img->desc.digest, cmt);
    return 0;
}

static int load_config(struct oci_store *s, struct oci_image *img, struct dlc_error **err)
{
    const struct oci_descriptor *cd = &img->manifest->config;
    if (read_described(s, cd, OCI_MAX_CONFIG_SIZE, &img->config_raw, &img->config_len, err) < 0 ||
        oci_image_config_parse(img->config_raw, img->config_len, cd->digest, &img->config, err) < 0)
        return -1;
    if (oci_image_config_validate(img->config, err) < 0)
        return dlc_error_wrap(err, "%s", cd->digest);
    if (img->config->n_diff_ids != img->manifest->n_layers)
        return dlc_error_set(
                err, EINVAL, "config %s has %zu diff_ids but manifest %s has %zu layers",
                cd->digest, img->config->n_diff_ids, img->desc.digest, img->manifest->n_layers);
    return 0;
}

int oci_store_load_image_desc(struct oci_store *s, const struct oci_descriptor *desc,
                              struct oci_image **ret, struct dlc_error **err)
{
    _cleanup_(oci_image_freep) struct oci_image *img = xcalloc(1, sizeof(*img));
    if (pick_manifest(s, desc, 0, &img->desc, err) < 0 || load_manifest(s, img, err) < 0 ||
        load_config(s, img, err) < 0)
        return -1;
    *ret = TAKE_PTR(img);
    return 0;
}

int oci_store_load_image(struct oci_store *s, const char *ref, struct oci_image **ret,
                         struct dlc_error **err)
{
    struct oci_descriptor desc = {0};
    if (oci_store_resolve(s, ref, &desc, err) < 0)
        return -1;
    int r = oci_store_load_image_desc(s, &desc, ret, err);
    oci_descriptor_release(&desc);
    if (r < 0)
        return dlc_error_wrap(err, "image '%s'", ref);
    return 0;
}

static int require_blob(struct oci_store *s, const struct oci_descriptor *d, const char *what,
                        struct dlc_error **err)
{
    if (!oci_store_blob_exists(s, d->digest))
        return dlc_error_set(err, ENOENT, "%s %s is not in the store", what, d->digest);
    return 0;
}

/* Every blob a manifest or index names must already be stored (subjects excepted: the spec
 * lets them point at content that arrives later). */
static int check_references(struct oci_store *s, const char *raw, size_t len, const char *mt,
                            struct dlc_error **err)
{
    if (oci_media_type_is_index(mt)) {
        _cleanup_(oci_index_freep) struct oci_index *ix = NULL;
        if (oci_index_parse(raw, len, "index", &ix, err) < 0 || oci_index_validate(ix, err) < 0)
            return -1;
        for (size_t i = 0; i < ix->n_manifests; i++)
            if (require_blob(s, &ix->manifests[i], "index: manifest", err) < 0)
                return -1;
        if (ix->media_type && strcmp(ix->media_type, mt) != 0)
            return dlc_error_set(err, EINVAL, "index: mediaType '%s' does not match '%s'",
                                 ix->media_type, mt);
        return 0;
    }
    _cleanup_(oci_manifest_freep) struct oci_manifest *m = NULL;
    if (oci_manifest_parse(raw, len, "manifest", &m, err) < 0 ||
        oci_manifest_validate(m, err) < 0 ||
        require_blob(s, &m->config, "manifest: config", err) < 0)
        return -1;
    for (size_t i = 0; i < m->n_layers; i++)
        if (require_blob(s, &m->layers[i], "manifest: layer", err) < 0)
            return -1;
    if (m->media_type && strcmp(m->media_type, mt) != 0)
        return dlc_error_set(err, EINVAL, "manifest: mediaType '%s' does not match '%s'",
                             m->media_type, mt);
    return 0;
}

int oci_store_put_manifest(struct oci_store *s, const char *manifest_raw, size_t manifest_len,
                           const char *media_type, struct oci_descriptor *ret,
                           struct dlc_error **err)
{
    const char *mt = media_type ? media_type : OCI_MT_MANIFEST;
    if (!oci_media_type_is_manifest(mt) && !oci_media_type_is_index(mt))
        return dlc_error_set(err, EINVAL, "'%s' is not an image manifest or index type", mt);
    if (manifest_len > OCI_MAX_MANIFEST_SIZE)
        return dlc_error_set(err, EFBIG, "manifest has %zu bytes, more than the %u allowed",
                             manifest_len, OCI_MAX_MANIFEST_SIZE);
    char digest[OCI_DIGEST_BUFSZ];
    /* The lease first: the blobs found present must stay until the caller tags. */
    if (oci_store_lease(s, err) < 0 ||
        check_references(s, manifest_raw, manifest_len, mt, err) < 0 ||
        oci_store_blob_put(s, manifest_raw, manifest_len, NULL, digest, err) < 0)
        return -1;
    *ret = (struct oci_descriptor){.media_type = xstrdup(mt), .size = (int64_t)manifest_len};
    memcpy(ret->digest, digest, OCI_DIGEST_BUFSZ);
    return 0;
}
