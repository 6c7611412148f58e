/* history.c: builder_history: an image's history records matched with its layers. */
#include <errno.h>
#include <string.h>

#include "builder-internal.h"

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

void builder_history_free(struct builder_history_entry *h, size_t n)
{
    for (size_t i = 0; h && i < n; i++) {
        free(h[i].created);
        free(h[i].created_by);
        free(h[i].comment);
    }
    free(h);
}

static void set_layer(struct builder_history_entry *e, const struct oci_descriptor *d)
{
    snprintf(e->digest, sizeof(e->digest), "%s", d->digest);
    e->size = d->size;
}

int builder_history(struct oci_store *s, const char *ref, struct builder_history_entry **ret,
                    size_t *ret_n, struct dlc_error **err)
{
    _cleanup_(oci_image_freep) struct oci_image *img = NULL;
    if (oci_store_load_image(s, ref, &img, err) < 0)
        return -1;
    const struct oci_image_config *c = img->config;
    const struct oci_manifest *m = img->manifest;
    struct builder_history_entry *h = xcalloc(c->n_history + m->n_layers + 1, sizeof(*h));
    size_t n = 0, layer = 0;
    for (size_t i = 0; i < c->n_history; i++) {
        struct builder_history_entry *e = &h[n++];
        e->created = dup_or_null(c->history[i].created);
        e->created_by = dup_or_null(c->history[i].created_by);
        e->comment = dup_or_null(c->history[i].comment);
        e->empty_layer = c->history[i].empty_layer;
        if (!e->empty_layer && layer < m->n_layers)
            set_layer(e, &m->layers[layer++]);
    }
    for (; layer < m->n_layers; layer++) /* layers the history does not describe */
        set_layer(&h[n++], &m->layers[layer]);
    *ret = h;
    *ret_n = n;
    return 0;
}
