/* lower.c: what an image's layers add up to, read back from the store (tar, tar+gzip or
 * tar+zstd): the tree an extension layer is finalised against. Whiteouts and opaque
 * directories are applied as an OCI consumer applies them; file contents are hashed so
 * that entries identical to the lower layers can be left out. */
#include <errno.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#include "builder-internal.h"

static int hash_data(struct archive *a, const char *name, char out[OCI_DIGEST_BUFSZ],
                     uint64_t *ret_size, struct dlc_error **err)
{
    _cleanup_(oci_digester_freep) struct oci_digester *d = oci_digester_new();
    const void *buf;
    size_t len;
    la_int64_t off;
    int rc;
    while ((rc = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK)
        oci_digester_update(d, buf, len);
    if (rc != ARCHIVE_EOF)
        return dlc_error_set(err, EIO, "%s: %s", name, archive_error_string(a));
    *ret_size = oci_digester_size(d);
    oci_digester_final(d, out);
    return 0;
}

/* A hard link: a file with its target's content. */
static int hardlink_node(const struct btree *layer, const struct btree *t, const char *target,
                         struct bnode *n, struct dlc_error **err)
{
    _cleanup_free_ char *norm = bpath_normalize_clamped(target);
    const struct bnode *tn = btree_get(layer, norm);
    if (tn == NULL)
        tn = btree_get(t, norm);
    if (tn == NULL || tn->type != BN_FILE)
        return dlc_error_set(err, EINVAL, "hard link '%s' -> '%s': no such file before it", n->path,
                             target);
    n->type = BN_FILE;
    n->size = tn->size;
    memcpy(n->hash, tn->hash, sizeof(n->hash));
    return 0;
}

static int entry_node(struct archive *a, struct archive_entry *e, const struct btree *layer,
                      const struct btree *t, struct bnode *n, struct dlc_error **err)
{
    n->mode = archive_entry_perm(e) & 07777;
    const char *hl = archive_entry_hardlink(e);
    if (hl != NULL)
        return hardlink_node(layer, t, hl, n, err);
    switch (archive_entry_filetype(e)) {
    case AE_IFDIR:
        n->type = BN_DIR;
        return 0;
    case AE_IFLNK:
        n->type = BN_SYMLINK;
        n->link = (char *)(archive_entry_symlink(e) ? archive_entry_symlink(e) : "");
        return 0;
    case AE_IFREG:
        n->type = BN_FILE;
        return hash_data(a, n->path, n->hash, &n->size, err);
    default: /* devices, fifos: never identical to anything we write */
        n->type = BN_FILE;
        return 0;
    }
}

/* Records one tar entry in the layer's own tree. */
static int add_entry(struct archive *a, struct archive_entry *e, struct btree *layer,
                     const struct btree *t, struct dlc_error **err)
{
    _cleanup_free_ char *path = bpath_normalize_clamped(archive_entry_pathname(e));
    if (path[0] == '\0')
        return 0; /* "./" */
    _cleanup_free_ char *dir = dlc_path_dirname(path);
    const char *base = dlc_path_basename(path);
    const char *parent = strcmp(dir, ".") == 0 ? NULL : dir;
    if (strcmp(base, ".wh..wh..opq") == 0) {
        if (parent == NULL)
            return 0; /* an opaque root: nothing below the layer to hide in our model */
        struct bnode *d = btree_get(layer, parent);
        if (d != NULL && d->type == BN_DIR) {
            d->opaque = true;
            d->implicit = false;
            return 0;
        }
        struct bnode n = {.path = (char *)parent, .type = BN_DIR, .mode = 0755, .opaque = true};
        return btree_add(layer, &n, err);
    }
    struct bnode n = {.path = path};
    const char *wh = dlc_startswith(base, ".wh.");
    _cleanup_free_ char *target = NULL;
    if (wh != NULL) {
        if (*wh == '\0')
            return dlc_error_set(err, EINVAL, "invalid whiteout '%s'", path);
        target = parent ? xasprintf("%s/%s", parent, wh) : xstrdup(wh);
        if (btree_get(layer, target) != NULL)
            return 0; /* a layer's whiteouts never hide its own entries */
        n.path = target;
        n.type = BN_WHITEOUT;
    } else if (entry_node(a, e, layer, t, &n, err) < 0) {
        return -1;
    }
    btree_remove(layer, n.path); /* a later entry replaces an earlier one */
    return btree_add(layer, &n, err);
}

static int read_layer(const char *blob, struct btree *t, struct dlc_error **err)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_zstd(a);
    archive_read_support_format_tar(a);
    _cleanup_(btree_freep) struct btree *layer = btree_new();
    int rc = -1;
    if (archive_read_open_filename(a, blob, 1 << 16) != ARCHIVE_OK) {
        dlc_error_set(err, EIO, "%s: %s", blob, archive_error_string(a));
        goto out;
    }
    for (;;) {
        struct archive_entry *e = NULL;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            dlc_error_set(err, EIO, "%s: %s", blob, archive_error_string(a));
            goto out;
        }
        if (add_entry(a, e, layer, t, err) < 0) {
            dlc_error_wrap(err, "%s", blob);
            goto out;
        }
    }
    rc = btree_apply(t, layer, err);
out:
    archive_read_free(a);
    return rc;
}

int blower_read_layers(struct oci_store *s, const struct oci_descriptor *layers, size_t n,
                       struct btree *t, struct dlc_error **err)
{
    for (size_t i = 0; i < n; i++) {
        const char *comp = oci_media_type_layer_compression(layers[i].media_type);
        if (comp == NULL)
            return dlc_error_set(err, EINVAL, "layer %s: unsupported media type '%s'",
                                 layers[i].digest, layers[i].media_type);
        _cleanup_free_ char *blob = oci_store_blob_path(s, layers[i].digest);
        if (read_layer(blob, t, err) < 0)
            return dlc_error_wrap(err, "read layer %s", layers[i].digest);
    }
    return 0;
}
