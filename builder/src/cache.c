/* cache.c: the build cache, $DLC_ROOT/build-cache/<key>.json: a layer's input key (see
 * btree_key: every entry's path, type, mode, content hash, plus compression, epoch and the
 * layers below) -> the blob that was written for it. An entry is only trusted while its
 * blob is in the store; anything unreadable is a miss, never an error. */
#include <errno.h>
#include <string.h>

#include "builder-internal.h"

static char *entry_path(struct oci_store *s, const char *key)
{
    return xasprintf("%s/build-cache/%s.json", oci_store_root(s), oci_digest_hex(key));
}

static bool copy_digest(const json_t *j, const char *k, char out[OCI_DIGEST_BUFSZ])
{
    const char *v = json_string_value(json_object_get(j, k));
    if (v == NULL || oci_digest_validate(v, NULL) < 0)
        return false;
    snprintf(out, OCI_DIGEST_BUFSZ, "%s", v);
    return true;
}

int bcache_lookup(struct oci_store *s, const char *key, struct bcache_entry *ret)
{
    _cleanup_free_ char *path = entry_path(s, key);
    _cleanup_error_ struct dlc_error *e = NULL;
    json_auto_t *j = dlc_json_load_file(path, 1 << 16, &e);
    if (j == NULL)
        return 0;
    struct bcache_entry c;
    memset(&c, 0, sizeof(c));
    const char *mt = json_string_value(json_object_get(j, "media_type"));
    json_t *size = json_object_get(j, "size");
    if (!copy_digest(j, "digest", c.digest) || !copy_digest(j, "diff_id", c.diff_id) ||
        mt == NULL || strlen(mt) >= sizeof(c.media_type) || !json_is_integer(size) ||
        json_integer_value(size) < 0)
        return 0;
    snprintf(c.media_type, sizeof(c.media_type), "%s", mt);
    const char *comment = json_string_value(json_object_get(j, "comment"));
    if (comment == NULL || strlen(comment) >= sizeof(c.comment))
        return 0;
    snprintf(c.comment, sizeof(c.comment), "%s", comment);
    c.size = (uint64_t)json_integer_value(size);
    uint64_t have = 0;
    if (oci_store_blob_size(s, c.digest, &have, &e) < 0 || have != c.size)
        return 0;
    *ret = c;
    return 1;
}

int bcache_store(struct oci_store *s, const char *key, const struct bcache_entry *e,
                 struct dlc_error **err)
{
    _cleanup_free_ char *dir = xasprintf("%s/build-cache", oci_store_root(s));
    if (dlc_mkdir_p(dir, 0755, err) < 0)
        return dlc_error_wrap(err, "build cache");
    _cleanup_free_ char *path = entry_path(s, key);
    json_auto_t *j = json_pack("{s:s, s:s, s:s, s:I, s:s}", "digest", e->digest, "diff_id",
                               e->diff_id, "media_type", e->media_type, "size", (json_int_t)e->size,
                               "comment", e->comment);
    if (dlc_json_write_file_atomic(path, j, err) < 0)
        return dlc_error_wrap(err, "build cache");
    return 0;
}
