/* image.c: an image's config and manifest from its layers and settings, stored as blobs,
 * and its tags. Both documents are serialised compact with sorted keys, so the same
 * inputs give the same digests. */
#include <errno.h>
#include <string.h>

#include "builder-internal.h"

static void history_push(struct oci_image_config *c, const char *created, const char *by,
                         const char *comment, bool empty)
{
    c->history = xrealloc(c->history, (c->n_history + 1) * sizeof(*c->history));
    c->history[c->n_history++] = (struct oci_history){.created = xstrdup(created),
                                                      .created_by = by ? xstrdup(by) : NULL,
                                                      .comment = comment ? xstrdup(comment) : NULL,
                                                      .empty_layer = empty};
}

/* The from-image's history, one record per layer as Docker and umoci expect; a foreign
 * image whose history does not match its layers gets plain records instead. */
static void inherit_history(struct oci_image_config *c, const struct oci_image *from,
                            const char *created)
{
    const struct oci_image_config *fc = from->config;
    size_t non_empty = 0;
    for (size_t i = 0; i < fc->n_history; i++)
        non_empty += !fc->history[i].empty_layer;
    if (non_empty != from->manifest->n_layers) {
        for (size_t i = 0; i < from->manifest->n_layers; i++)
            history_push(c, fc->created ? fc->created : created, NULL, NULL, false);
        return;
    }
    for (size_t i = 0; i < fc->n_history; i++) {
        const struct oci_history *h = &fc->history[i];
        /* umoci stat crashes on a record without created: always give one */
        history_push(c, h->created ? h->created : created, h->created_by, h->comment,
                     h->empty_layer);
        if (h->author)
            c->history[c->n_history - 1].author = xstrdup(h->author);
    }
}

static struct oci_image_config *make_config(const struct bimage_spec *sp)
{
    struct oci_image_config *c = xcalloc(1, sizeof(*c));
    c->created = xstrdup(sp->created);
    c->architecture = xstrdup(oci_host_arch());
    c->os = xstrdup("linux");
    c->rootfs_type = xstrdup("layers");
    c->config.env = dlc_strv_copy(sp->env);
    c->config.entrypoint = dlc_strv_copy(sp->entrypoint);
    c->config.cmd = dlc_strv_copy(sp->cmd);
    c->config.working_dir = sp->working_dir ? xstrdup(sp->working_dir) : NULL;
    c->config.user = sp->user ? xstrdup(sp->user) : NULL;
    for (size_t i = 0; i < sp->labels->n; i++)
        oci_map_set(&c->config.labels, sp->labels->keys[i], sp->labels->values[i]);
    if (sp->from != NULL) {
        const struct oci_image_config *fc = sp->from->config;
        c->config.stop_signal = fc->config.stop_signal ? xstrdup(fc->config.stop_signal) : NULL;
        c->config.exposed_ports = dlc_strv_copy(fc->config.exposed_ports);
        c->config.volumes = dlc_strv_copy(fc->config.volumes);
        c->diff_ids = dlc_strv_copy(fc->diff_ids);
        c->n_diff_ids = fc->n_diff_ids;
        inherit_history(c, sp->from, sp->created);
    }
    for (size_t i = 0; i < sp->n_layers; i++) {
        c->diff_ids = dlc_strv_push(c->diff_ids, sp->layers[i].diff_id);
        c->n_diff_ids++;
        history_push(c, sp->created, sp->layers[i].created_by, sp->layers[i].comment, false);
    }
    return c;
}

static void layer_desc(struct oci_descriptor *d, const char *mt, const char *digest, int64_t size)
{
    memset(d, 0, sizeof(*d));
    d->media_type = xstrdup(mt);
    snprintf(d->digest, sizeof(d->digest), "%s", digest);
    d->size = size;
}

static struct oci_manifest *make_manifest(const struct bimage_spec *sp, const char *cfg_digest,
                                          size_t cfg_len)
{
    struct oci_manifest *m = xcalloc(1, sizeof(*m));
    m->schema_version = 2;
    m->media_type = xstrdup(OCI_MT_MANIFEST);
    layer_desc(&m->config, OCI_MT_CONFIG, cfg_digest, (int64_t)cfg_len);
    size_t n_from = sp->from ? sp->from->manifest->n_layers : 0;
    m->layers = xcalloc(n_from + sp->n_layers + 1, sizeof(*m->layers));
    for (size_t i = 0; i < n_from; i++) {
        const struct oci_descriptor *f = &sp->from->manifest->layers[i];
        layer_desc(&m->layers[m->n_layers++], f->media_type, f->digest, f->size);
    }
    for (size_t i = 0; i < sp->n_layers; i++)
        layer_desc(&m->layers[m->n_layers++], sp->layers[i].media_type, sp->layers[i].digest,
                   (int64_t)sp->layers[i].size);
    if (sp->from != NULL) {
        oci_map_set(&m->annotations, "org.opencontainers.image.base.name", sp->from_ref);
        oci_map_set(&m->annotations, "org.opencontainers.image.base.digest", sp->from->desc.digest);
    }
    return m;
}

int bimage_store(struct oci_store *s, const struct bimage_spec *sp, struct oci_descriptor *ret,
                 uint64_t *ret_size, struct dlc_error **err)
{
    _cleanup_(oci_image_config_freep) struct oci_image_config *c = make_config(sp);
    if (oci_image_config_validate(c, err) < 0)
        return -1;
    json_auto_t *cj = oci_image_config_to_json(c);
    size_t cfg_len = 0;
    _cleanup_free_ char *cfg = dlc_json_dumps(cj, &cfg_len);
    char cfg_digest[OCI_DIGEST_BUFSZ];
    if (oci_store_blob_put(s, cfg, cfg_len, NULL, cfg_digest, err) < 0)
        return dlc_error_wrap(err, "store config");
    _cleanup_(oci_manifest_freep) struct oci_manifest *m = make_manifest(sp, cfg_digest, cfg_len);
    json_auto_t *mj = oci_manifest_to_json(m);
    size_t man_len = 0;
    _cleanup_free_ char *man = dlc_json_dumps(mj, &man_len);
    if (oci_store_put_manifest(s, man, man_len, OCI_MT_MANIFEST, ret, err) < 0)
        return dlc_error_wrap(err, "store manifest");
    uint64_t total = cfg_len; /* what `dlc images` counts: config + layers */
    for (size_t i = 0; i < m->n_layers; i++)
        total += (uint64_t)m->layers[i].size;
    *ret_size = total;
    return 0;
}

int bimage_tag(struct oci_store *s, char *const *refs, const struct oci_descriptor *d,
               struct dlc_error **err)
{
    for (size_t i = 0; refs && refs[i]; i++) {
        struct oci_descriptor cur;
        memset(&cur, 0, sizeof(cur));
        _cleanup_error_ struct dlc_error *e = NULL;
        /* retagging what is already tagged would rewrite index.json for nothing */
        bool same =
                oci_store_resolve(s, refs[i], &cur, &e) == 0 && strcmp(cur.digest, d->digest) == 0;
        if (e == NULL)
            oci_descriptor_release(&cur);
        if (!same && oci_store_tag(s, refs[i], d, err) < 0)
            return dlc_error_wrap(err, "tag %s", refs[i]);
    }
    return 0;
}
