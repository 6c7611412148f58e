/* store-index.c: tags in index.json (org.opencontainers.image.ref.name = "name:tag"):
 * listing, resolving references, tagging and untagging under the store lock. */
#include <errno.h>
#include <string.h>

#include "oci-internal.h"

void oci_store_entries_free(struct oci_store_entry *e, size_t n)
{
    for (size_t i = 0; e != NULL && i < n; i++) {
        free(e[i].ref_name);
        oci_descriptor_release(&e[i].desc);
    }
    free(e);
}

int oci_store_list(struct oci_store *s, struct oci_store_entry **ret, size_t *ret_n,
                   struct dlc_error **err)
{
    _cleanup_(oci_index_freep) struct oci_index *ix = NULL;
    if (oci__store_read_index(s, &ix, err) < 0)
        return -1;
    struct oci_store_entry *e = xcalloc(ix->n_manifests ? ix->n_manifests : 1, sizeof(*e));
    for (size_t i = 0; i < ix->n_manifests; i++) {
        const char *name = oci__descriptor_ref_name(&ix->manifests[i]);
        e[i].ref_name = name ? xstrdup(name) : NULL;
        oci_descriptor_copy(&e[i].desc, &ix->manifests[i]);
    }
    *ret = e;
    *ret_n = ix->n_manifests;
    return 0;
}

static ssize_t find_name(const struct oci_index *ix, const char *name)
{
    for (size_t i = 0; name != NULL && i < ix->n_manifests; i++)
        if (dlc_streq(oci__descriptor_ref_name(&ix->manifests[i]), name))
            return (ssize_t)i;
    return -1;
}

static ssize_t find_digest(const struct oci_index *ix, const char *digest)
{
    for (size_t i = 0; i < ix->n_manifests; i++)
        if (strcmp(ix->manifests[i].digest, digest) == 0)
            return (ssize_t)i;
    return -1;
}

static void index_remove(struct oci_index *ix, size_t i)
{
    oci_descriptor_release(&ix->manifests[i]);
    memmove(ix->manifests + i, ix->manifests + i + 1,
            (ix->n_manifests - i - 1) * sizeof(*ix->manifests));
    ix->n_manifests--;
}

/* "name" -> "name:latest", "host:5000/a:t" stays; EINVAL for a digest or a bad reference. */
static char *normalize_tag(const char *ref_name, struct dlc_error **err)
{
    _cleanup_(oci_ref_freep) struct oci_ref *r = NULL;
    if (oci_ref_parse(ref_name, &r, err) < 0)
        return NULL;
    if (r->digest != NULL) {
        dlc_error_set(err, EINVAL, "invalid tag '%s': a tag cannot contain a digest", ref_name);
        return NULL;
    }
    return oci_ref_store_name(r);
}

/* A manifest or index blob that no index.json entry names: its descriptor from its bytes. */
static int describe_blob(struct oci_store *s, const char *digest, struct oci_descriptor *ret,
                         struct dlc_error **err)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (oci_store_blob_read(s, digest, OCI_MAX_MANIFEST_SIZE, &buf, &len, err) < 0)
        return -1;
    json_auto_t *j = dlc_json_loadb(buf, len, digest, err);
    if (j == NULL)
        return -1;
    const char *mt = NULL;
    if (dlc_json_get_string(j, "mediaType", false, digest, &mt, err) < 0)
        return -1;
    if (mt == NULL)
        mt = json_object_get(j, "manifests") ? OCI_MT_INDEX : OCI_MT_MANIFEST;
    if (!oci_media_type_is_manifest(mt) && !oci_media_type_is_index(mt))
        return dlc_error_set(err, EINVAL, "blob %s is a '%s', not an image manifest or index",
                             digest, mt);
    *ret = (struct oci_descriptor){.media_type = xstrdup(mt), .size = (int64_t)len};
    snprintf(ret->digest, sizeof(ret->digest), "%s", digest);
    return 0;
}

static int resolve_digest(struct oci_store *s, const struct oci_index *ix, const char *digest,
                          struct oci_descriptor *ret, struct dlc_error **err)
{
    if (oci_digest_validate(digest, err) < 0)
        return -1;
    ssize_t i = find_digest(ix, digest);
    if (i >= 0) {
        oci_descriptor_copy(ret, &ix->manifests[i]);
        return 0;
    }
    if (!oci_store_blob_exists(s, digest))
        return dlc_error_set(err, ENOENT, "image '%s' not found", digest);
    return describe_blob(s, digest, ret, err);
}

static bool is_hex_prefix(const char *s)
{
    size_t n = strlen(s);
    return n >= 4 && n <= 64 && strspn(s, "0123456789abcdef") == n;
}

/* A unique hex prefix of the digests index.json names; 0 when found, 1 when none. */
static int resolve_prefix(const struct oci_index *ix, const char *prefix,
                          struct oci_descriptor *ret, struct dlc_error **err)
{
    ssize_t found = -1;
    size_t matches = 0;
    for (size_t i = 0; i < ix->n_manifests; i++) {
        const char *hex = oci_digest_hex(ix->manifests[i].digest);
        if (strncmp(hex, prefix, strlen(prefix)) != 0)
            continue;
        if (found < 0 || strcmp(ix->manifests[found].digest, ix->manifests[i].digest) != 0)
            matches++;
        if (found < 0)
            found = (ssize_t)i;
    }
    if (matches > 1)
        return dlc_error_set(err, EINVAL,
                             "image ID prefix '%s' is ambiguous: it matches %zu images", prefix,
                             matches);
    if (found < 0)
        return 1;
    oci_descriptor_copy(ret, &ix->manifests[found]);
    return 0;
}

int oci_store_resolve(struct oci_store *s, const char *ref, struct oci_descriptor *ret,
                      struct dlc_error **err)
{
    _cleanup_(oci_index_freep) struct oci_index *ix = NULL;
    if (oci__store_read_index(s, &ix, err) < 0)
        return -1;
    if (dlc_startswith(ref, "sha256:"))
        return resolve_digest(s, ix, ref, ret, err);
    /* Names other tools wrote as they are (skopeo's oci:DIR:v1 writes "v1"). */
    ssize_t i = find_name(ix, ref);
    if (i >= 0) {
        oci_descriptor_copy(ret, &ix->manifests[i]);
        return 0;
    }
    _cleanup_(oci_ref_freep) struct oci_ref *r = NULL;
    if (oci_ref_parse(ref, &r, err) < 0)
        return -1;
    if (r->digest != NULL)
        return resolve_digest(s, ix, r->digest, ret, err);
    _cleanup_free_ char *name = oci_ref_store_name(r);
    i = find_name(ix, name);
    if (i >= 0) {
        oci_descriptor_copy(ret, &ix->manifests[i]);
        return 0;
    }
    if (is_hex_prefix(ref)) {
        int r2 = resolve_prefix(ix, ref, ret, err);
        if (r2 <= 0)
            return r2;
    }
    return dlc_error_set(err, ENOENT, "image '%s' not found", name);
}

int oci_store_tag(struct oci_store *s, const char *ref_name, const struct oci_descriptor *desc,
                  struct dlc_error **err)
{
    _cleanup_free_ char *name = normalize_tag(ref_name, err);
    if (name == NULL)
        return -1;
    if (!oci_media_type_is_manifest(desc->media_type) && !oci_media_type_is_index(desc->media_type))
        return dlc_error_set(err, EINVAL, "tag %s: '%s' is not an image manifest or index type",
                             name, desc->media_type ? desc->media_type : "");
    if (oci_digest_validate(desc->digest, err) < 0)
        return dlc_error_wrap(err, "tag %s", name);
    if (!oci_store_blob_exists(s, desc->digest))
        return dlc_error_set(err, ENOENT, "tag %s: manifest %s is not in the store", name,
                             desc->digest);
    _cleanup_close_ int lock = dlc_lock_path(s->lock_path, true, err);
    if (lock < 0)
        return -1;
    _cleanup_(oci_index_freep) struct oci_index *ix = NULL;
    if (oci__store_read_index(s, &ix, err) < 0)
        return -1;
    for (ssize_t i; (i = find_name(ix, name)) >= 0;)
        index_remove(ix, (size_t)i);
    ix->manifests = xrealloc(ix->manifests, (ix->n_manifests + 1) * sizeof(*ix->manifests));
    struct oci_descriptor *d = &ix->manifests[ix->n_manifests++];
    oci_descriptor_copy(d, desc);
    oci_map_set(&d->annotations, OCI_ANNOTATION_REF_NAME, name);
    if (oci__store_write_index(s, ix, err) < 0)
        return -1;
    /* Tagged: what this writer stored is reachable now, gc may run. */
    oci_store_lease_release(s);
    return 0;
}

int oci_store_untag(struct oci_store *s, const char *ref_name, struct dlc_error **err)
{
    _cleanup_close_ int lock = dlc_lock_path(s->lock_path, true, err);
    if (lock < 0)
        return -1;
    _cleanup_(oci_index_freep) struct oci_index *ix = NULL;
    if (oci__store_read_index(s, &ix, err) < 0)
        return -1;
    _cleanup_free_ char *name = NULL;
    if (find_name(ix, ref_name) >= 0) {
        name = xstrdup(ref_name);
    } else {
        name = normalize_tag(ref_name, err);
        if (name == NULL)
            return -1;
        if (find_name(ix, name) < 0)
            return dlc_error_set(err, ENOENT, "image '%s' not found", name);
    }
    for (ssize_t i; (i = find_name(ix, name)) >= 0;)
        index_remove(ix, (size_t)i);
    return oci__store_write_index(s, ix, err);
}

int oci_store_untag_digest(struct oci_store *s, const char *digest, char ***ret_names,
                           struct dlc_error **err)
{
    if (oci_digest_validate(digest, err) < 0)
        return -1;
    _cleanup_close_ int lock = dlc_lock_path(s->lock_path, true, err);
    if (lock < 0)
        return -1;
    _cleanup_(oci_index_freep) struct oci_index *ix = NULL;
    if (oci__store_read_index(s, &ix, err) < 0)
        return -1;
    if (find_digest(ix, digest) < 0)
        return dlc_error_set(err, ENOENT, "image '%s' not found", digest);
    _cleanup_strv_ char **names = xcalloc(1, sizeof(char *));
    for (ssize_t i; (i = find_digest(ix, digest)) >= 0;) {
        const char *n = oci__descriptor_ref_name(&ix->manifests[i]);
        names = dlc_strv_push(names, n ? n : digest);
        index_remove(ix, (size_t)i);
    }
    if (oci__store_write_index(s, ix, err) < 0)
        return -1;
    if (ret_names)
        *ret_names = TAKE_PTR(names);
    return 0;
}
