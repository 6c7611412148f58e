/* build.c: builder_build. Two phases: plan (read the definition, find every file and
 * library, hash them, compute layer keys, tags, labels) touching nothing in the store;
 * then write (layers from the cache or freshly written, configs, manifests, tags). */
#include <errno.h>
#include <string.h>

#include "builder-internal.h"

struct lplan {
    char *name;
    struct btree *raw;
    char key[OCI_DIGEST_BUFSZ];
    struct lplan *below; /* the layer under it in this build, or NULL */
    bool on_from;        /* directly on the from-image's layers */
    char *created_by;
    char *comment;
    bool done;
    struct builder_layer_info info;
    char media_type[64];
    struct btree *final; /* the entries written, once computed */
    struct btree *after; /* everything up to and including this layer, once computed */
};

struct iplan {
    const struct bvariant *variant; /* NULL without variants */
    struct lplan *layers[2];
    size_t n_layers;
    char **refs; /* "name:tag" */
    char **env;
    struct oci_map labels;
};

struct bctx {
    const struct builder_options *o;
    const char *root;
    struct bdef *def;
    struct bsource src;
    struct bresolver *res;
    char *os;
    char *version;
    char created[32];
    struct oci_store *store;
    struct oci_image *from;
    struct btree *from_tree;
    struct btree *hashes; /* host file -> digest, for files in several layers */
    struct lplan *lp[64];
    size_t n_lp;
    struct iplan *images;
    size_t n_images;
};

static void lplan_free(struct lplan *l)
{
    free(l->name);
    btree_free(l->raw);
    free(l->created_by);
    free(l->comment);
    free(l->info.name);
    btree_free(l->final);
    btree_free(l->after);
    free(l);
}

static void ctx_release(struct bctx *c)
{
    for (size_t i = 0; i < c->n_images; i++) {
        dlc_strv_free(c->images[i].refs);
        dlc_strv_free(c->images[i].env);
        oci_map_release(&c->images[i].labels);
    }
    free(c->images);
    for (size_t i = 0; i < c->n_lp; i++)
        lplan_free(c->lp[i]);
    bdef_free(c->def);
    bsource_release(&c->src);
    bresolver_free(c->res);
    free(c->os);
    free(c->version);
    oci_image_free(c->from);
    btree_free(c->from_tree);
    btree_free(c->hashes);
    oci_store_free(c->store);
}

/* ---- plan: what to build -------------------------------------------------------------- */

static int select_variants(struct bctx *c, struct dlc_error **err)
{
    const char *want = c->o->variant;
    struct bdef *d = c->def;
    bool all = want == NULL || strcmp(want, "all") == 0;
    if (d->n_variants == 0) {
        if (!all)
            return dlc_error_set(err, EINVAL, "unknown variant '%s': %s has no variants", want,
                                 d->path);
        c->images = xcalloc(1, sizeof(*c->images));
        c->n_images = 1;
        return 0;
    }
    c->images = xcalloc(d->n_variants, sizeof(*c->images));
    for (size_t i = 0; i < d->n_variants; i++)
        if (all || strcmp(d->variants[i].name, want) == 0)
            c->images[c->n_images++].variant = &d->variants[i];
    if (c->n_images > 0)
        return 0;
    struct dlc_strbuf names = DLC_STRBUF_INIT;
    for (size_t i = 0; i < d->n_variants; i++)
        dlc_strbuf_appendf(&names, "%s%s", i ? ", " : "", d->variants[i].name);
    _cleanup_free_ char *list = dlc_strbuf_detach(&names, NULL);
    return dlc_error_set(err, EINVAL, "unknown variant '%s' (%s has: %s, all)", want, d->path,
                         list);
}

/* Whether ref names a registry: then a missing image can be fetched. */
static bool ref_is_remote(const char *ref)
{
    _cleanup_(oci_ref_freep) struct oci_ref *r = NULL;
    _cleanup_error_ struct dlc_error *e = NULL;
    return oci_ref_parse(ref, &r, &e) == 0 && r->registry != NULL;
}

static int fetch_from(struct bctx *c, struct dlc_error **err)
{
    if (c->store == NULL && oci_store_open(c->root, &c->store, err) < 0)
        return -1;
    if (c->o->fetch(c->store, c->def->from, c->o->fetch_userdata, err) < 0)
        return -1;
    return oci_store_load_image(c->store, c->def->from, &c->from, err);
}

static int open_from(struct bctx *c, struct dlc_error **err)
{
    const char *from = c->def->from;
    bool fetchable = c->o->fetch != NULL && ref_is_remote(from);
    _cleanup_free_ char *index = xasprintf("%s/images/index.json", c->root);
    int rc = -1;
    struct dlc_error *e = NULL;
    if (!dlc_path_exists(index)) /* don't create a store just to find it empty */
        dlc_error_set(&e, ENOENT, "image '%s' not found (no store at %s)", from, c->root);
    else if (oci_store_open(c->root, &c->store, &e) == 0)
        rc = oci_store_load_image(c->store, from, &c->from, &e);
    if (rc < 0 && e != NULL && e->code == ENOENT && fetchable) {
        dlc_error_free(&e);
        rc = fetch_from(c, &e);
    }
    if (rc < 0) {
        dlc_error_move(err, &e);
        return dlc_error_wrap(err, "%s: from", c->def->path);
    }
    return 0;
}

static const char *from_label(const struct bctx *c, const char *key)
{
    return c->from ? oci_map_get(&c->from->config->config.labels, key) : NULL;
}

static int resolve_identity(struct bctx *c, struct dlc_error **err)
{
    const struct bdef *d = c->def;
    if (d->os && strcmp(d->os, "auto") != 0)
        c->os = xstrdup(d->os);
    else if (d->os == NULL && from_label(c, "dev.dlc.os"))
        c->os = xstrdup(from_label(c, "dev.dlc.os"));
    else if (bsource_os_label("/etc/os-release", &c->os, err) < 0)
        return -1;
    const char *v = d->version ? d->version : from_label(c, "org.opencontainers.image.version");
    if (v == NULL)
        return dlc_error_set(err, EINVAL,
                             "%s: no 'version', and '%s' has no "
                             "org.opencontainers.image.version label",
                             d->path, d->from);
    c->version = xstrdup(v);
    dlc_format_rfc3339(c->src.epoch, c->created, sizeof(c->created));
    return 0;
}

static int plan_layer(struct bctx *c, const struct blayer_spec *spec, const char *name,
                      struct lplan *below, struct lplan **ret, struct dlc_error **err)
{
    if (c->n_lp == DLC_ARRAY_SIZE(c->lp))
        return dlc_error_set(err, E2BIG, "%s: too many variants", c->def->path);
    struct lplan *l = xcalloc(1, sizeof(*l));
    c->lp[c->n_lp++] = l;
    l->name = xstrdup(name);
    l->below = below;
    l->on_from = below == NULL && c->from != NULL;
    l->raw = btree_new();
    bresolver_reset(c->res);
    if (bspec_add(c->res, l->raw, spec, err) < 0 ||
        btree_hash_files_memo(l->raw, c->hashes, err) < 0)
        return dlc_error_wrap(err, "%s", c->def->path);
    _cleanup_free_ char *salt = xasprintf(
            "%s level=%d epoch=%lld below=%s from=%s", bcompress_media_type(c->o->compression),
            bcompress_default_level(c->o->compression), (long long)c->src.epoch,
            below ? below->key : "-", l->on_from ? c->from->desc.digest : "-");
    btree_key(l->raw, salt, l->key);
    l->created_by = xasprintf("dlc build %s: %s", c->def->file_name, name);
    *ret = l;
    return 0;
}

/* A library the base layer carries for the variants that none of them needs is dead
 * weight in every image: say so. */
static void check_base_libraries(const struct bctx *c, char *const *needed)
{
    char *const *libs = c->def->base.libraries;
    for (size_t i = 0; libs && i < dlc_strv_len(libs); i++)
        if (!dlc_strv_contains(needed, libs[i]))
            dlc_warn("%s: base.libraries[%zu]: no variant built needs %s", c->def->path, i,
                     libs[i]);
}

static int plan_layers(struct bctx *c, struct dlc_error **err)
{
    struct lplan *base = NULL;
    if (c->def->base.present && plan_layer(c, &c->def->base, "base", NULL, &base, err) < 0)
        return -1;
    dlc_strv_free(bresolver_take_seen(c->res));
    for (size_t i = 0; i < c->n_images; i++) {
        struct iplan *ip = &c->images[i];
        if (base)
            ip->layers[ip->n_layers++] = base;
        const struct blayer_spec *spec = ip->variant ? &ip->variant->layer : &c->def->layer;
        const char *name = ip->variant ? ip->variant->name : "copy";
        struct lplan *own = NULL;
        if (spec->present && plan_layer(c, spec, name, base, &own, err) < 0)
            return -1;
        if (own)
            ip->layers[ip->n_layers++] = own;
        if (ip->n_layers == 0 && c->from == NULL)
            return dlc_error_set(err, EINVAL, "%s: image '%s' would have no layer", c->def->path,
                                 name);
    }
    _cleanup_strv_ char **needed = bresolver_take_seen(c->res);
    if (c->def->n_variants > 0)
        check_base_libraries(c, needed);
    return 0;
}

/* ---- plan: tags, labels, environment --------------------------------------------------------- */

static void fill_vars(const struct bctx *c, const struct iplan *ip, struct btemplate_vars *v)
{
    const struct bvariant *var = ip->variant;
    *v = (struct btemplate_vars){
            .name = c->def->name,
            .version = c->version,
            .device = var              ? var->device
                      : c->def->device ? c->def->device
                                       : from_label(c, "dev.dlc.device"),
            .backend = var               ? var->backend
                       : c->def->backend ? c->def->backend
                                         : from_label(c, "dev.dlc.backend"),
            .os = c->os,
            .variant = var ? var->name : NULL,
            .job = c->def->job ? c->def->job : from_label(c, "dev.dlc.job"),
            .arch = oci_host_arch(),
    };
}

/* "tmpl" -> "name:tag"; an extra tag may name its repository: "repo:tmpl". */
static int expand_ref(const struct bctx *c, const struct btemplate_vars *v, const char *tmpl,
                      const char *what, char **ret, struct dlc_error **err)
{
    const char *colon = strrchr(tmpl, ':');
    _cleanup_free_ char *repo =
            colon ? xstrndup(tmpl, (size_t)(colon - tmpl)) : xstrdup(c->def->name);
    if (colon && !oci_name_is_valid(repo))
        return dlc_error_set(err, EINVAL, "%s: '%s' is not a valid repository name", what, repo);
    _cleanup_free_ char *tag = NULL;
    if (btemplate_expand(colon ? colon + 1 : tmpl, v, what, &tag, err) < 0)
        return -1;
    *ret = xasprintf("%s:%s", repo, tag);
    return 0;
}

static int plan_refs(struct bctx *c, struct iplan *ip, struct dlc_error **err)
{
    struct btemplate_vars v;
    fill_vars(c, ip, &v);
    char *const *lists[] = {c->def->tags, c->o->extra_tags};
    for (size_t l = 0; l < DLC_ARRAY_SIZE(lists); l++) {
        for (size_t i = 0; lists[l] && lists[l][i]; i++) {
            _cleanup_free_ char *what = l == 0 ? xasprintf("%s: tags[%zu]", c->def->path, i)
                                               : xasprintf("--tag '%s'", lists[l][i]);
            _cleanup_free_ char *ref = NULL;
            if (expand_ref(c, &v, lists[l][i], what, &ref, err) < 0)
                return -1;
            if (!dlc_strv_contains(ip->refs, ref))
                ip->refs = dlc_strv_push(ip->refs, ref);
        }
    }
    for (size_t k = 0; ip->refs && ip->refs[k]; k++)
        for (const struct iplan *o = c->images; o < ip; o++)
            if (dlc_strv_contains(o->refs, ip->refs[k]))
                return dlc_error_set(err, EINVAL,
                                     "tag '%s' would name both the %s and the %s image: add "
                                     "{variant} or {device} to the template",
                                     ip->refs[k], o->variant ? o->variant->name : "",
                                     ip->variant ? ip->variant->name : "");
    return 0;
}

static void set_label(struct oci_map *m, const char *k, const char *v)
{
    if (v != NULL)
        oci_map_set(m, k, v);
}

static void plan_labels(struct bctx *c, struct iplan *ip)
{
    const struct bdef *d = c->def;
    struct btemplate_vars v;
    fill_vars(c, ip, &v);
    struct oci_map *m = &ip->labels;
    if (c->from)
        for (size_t i = 0; i < c->from->config->config.labels.n; i++)
            oci_map_set(m, c->from->config->config.labels.keys[i],
                        c->from->config->config.labels.values[i]);
    set_label(m, "org.opencontainers.image.version", c->version);
    set_label(m, "org.opencontainers.image.revision", c->src.revision);
    set_label(m, "org.opencontainers.image.created", c->created);
    set_label(m, "org.opencontainers.image.source", d->source ? d->source : c->src.remote);
    set_label(m, "org.opencontainers.image.title", d->title ? d->title : d->name);
    set_label(m, "org.opencontainers.image.description", d->description);
    set_label(m, "dev.dlc.device", v.device);
    set_label(m, "dev.dlc.backend", v.backend);
    set_label(m, "dev.dlc.job", v.job);
    set_label(m, "dev.dlc.os", c->os);
    for (size_t i = 0; i < d->labels.n; i++)
        oci_map_set(m, d->labels.keys[i], d->labels.values[i]);
    for (size_t i = 0; ip->variant && i < ip->variant->labels.n; i++)
        oci_map_set(m, ip->variant->labels.keys[i], ip->variant->labels.values[i]);
}

static int plan_images(struct bctx *c, struct dlc_error **err)
{
    for (size_t i = 0; i < c->n_images; i++) {
        struct iplan *ip = &c->images[i];
        if (plan_refs(c, ip, err) < 0)
            return -1;
        plan_labels(c, ip);
        _cleanup_strv_ char **env =
                benv_merge(c->from ? c->from->config->config.env : NULL, c->def->env);
        ip->env = benv_merge(env, ip->variant ? ip->variant->env : NULL);
    }
    return 0;
}

static int plan(struct bctx *c, struct dlc_error **err)
{
    const char *build_dir = c->o->build_dir ? c->o->build_dir : getenv("DLC_BUILD");
    if (bdef_load(c->o->definition, build_dir && build_dir[0] ? build_dir : "build", &c->def, err) <
                0 ||
        select_variants(c, err) < 0 || bsource_read(c->def->dir, &c->src, err) < 0)
        return -1;
    if (c->def->from && open_from(c, err) < 0)
        return -1;
    if (resolve_identity(c, err) < 0 || bresolver_new(NULL, &c->res, err) < 0)
        return -1;
    c->hashes = btree_new();
    /* tags first: a bad template is reported before files are looked at */
    return plan_images(c, err) < 0 ? -1 : plan_layers(c, err);
}

/* ---- write ------------------------------------------------------------------------------ */

static void emit(const struct bctx *c, enum builder_event_kind kind, const struct lplan *l)
{
    if (c->o->progress == NULL)
        return;
    struct builder_event ev = {
            .kind = kind, .layer = l->name, .bytes_total = btree_tar_estimate(l->raw)};
    if (kind == BUILDER_EVENT_LAYER_DONE) {
        ev.bytes_out = l->info.size;
        ev.cached = l->info.cached;
        ev.digest = l->info.digest;
        ev.bytes_in = ev.bytes_total;
    }
    c->o->progress(&ev, c->o->userdata);
}

static int tree_after(struct bctx *c, struct lplan *l, const struct btree **ret,
                      struct dlc_error **err);

/* The tree below layer l: the layer under it, the from-image, or nothing. */
static int tree_below(struct bctx *c, struct lplan *l, const struct btree **ret,
                      struct dlc_error **err)
{
    if (l->below != NULL)
        return tree_after(c, l->below, ret, err);
    if (!l->on_from) {
        *ret = NULL;
        return 0;
    }
    if (c->from_tree == NULL) {
        struct btree *t = btree_new();
        if (blower_read_layers(c->store, c->from->manifest->layers, c->from->manifest->n_layers, t,
                               err) < 0) {
            btree_free(t);
            return dlc_error_wrap(err, "from image %s", c->def->from);
        }
        c->from_tree = t;
    }
    *ret = c->from_tree;
    return 0;
}

static int final_of(struct bctx *c, struct lplan *l, const struct btree **ret,
                    struct dlc_error **err)
{
    const struct btree *lower = NULL;
    if (l->final == NULL &&
        (tree_below(c, l, &lower, err) < 0 || btree_finalize(l->raw, lower, &l->final, err) < 0))
        return -1;
    *ret = l->final;
    return 0;
}

static int tree_after(struct bctx *c, struct lplan *l, const struct btree **ret,
                      struct dlc_error **err)
{
    const struct btree *lower = NULL, *final = NULL;
    if (l->after == NULL) {
        if (tree_below(c, l, &lower, err) < 0 || final_of(c, l, &final, err) < 0)
            return -1;
        struct btree *t = btree_new();
        if ((lower && btree_apply(t, lower, err) < 0) || btree_apply(t, final, err) < 0) {
            btree_free(t);
            return -1;
        }
        l->after = t;
    }
    *ret = l->after;
    return 0;
}

static void count(struct dlc_strbuf *sb, size_t n, const char *one, const char *many)
{
    if (n > 0)
        dlc_strbuf_appendf(sb, "%s%zu %s", sb->len ? ", " : "", n, n == 1 ? one : many);
}

/* "3 files (38.9 MB), 2 directories, 1 symlink": what a written layer holds. */
static char *layer_comment(const struct btree *t)
{
    size_t n = 0, k[4] = {0, 0, 0, 0};
    uint64_t bytes = 0;
    _cleanup_free_ struct bnode **v = btree_sorted(t, &n);
    for (size_t i = 0; i < n; i++) {
        k[v[i]->type]++;
        bytes += v[i]->type == BN_FILE ? v[i]->size : 0;
    }
    char sz[32];
    struct dlc_strbuf sb = DLC_STRBUF_INIT;
    count(&sb, k[BN_FILE], "file", "files");
    if (k[BN_FILE])
        dlc_strbuf_appendf(&sb, " (%s)", dlc_format_size(bytes, sz, sizeof(sz)));
    count(&sb, k[BN_DIR], "directory", "directories");
    count(&sb, k[BN_SYMLINK], "symlink", "symlinks");
    count(&sb, k[BN_WHITEOUT], "whiteout", "whiteouts");
    if (sb.len == 0)
        dlc_strbuf_append(&sb, "empty");
    return dlc_strbuf_detach(&sb, NULL);
}

static int write_layer(struct bctx *c, struct lplan *l, struct dlc_error **err)
{
    const struct btree *final = NULL;
    if (final_of(c, l, &final, err) < 0)
        return dlc_error_wrap(err, "layer %s", l->name);
    struct blayer_write_opts wo = {c->src.epoch, c->o->compression, l->name, c->o->progress,
                                   c->o->userdata};
    struct blayer_out out;
    if (blayer_write(c->store, final, &wo, &out, err) < 0)
        return dlc_error_wrap(err, "layer %s", l->name);
    struct bcache_entry ce;
    memset(&ce, 0, sizeof(ce));
    memcpy(ce.digest, out.digest, sizeof(ce.digest));
    memcpy(ce.diff_id, out.diff_id, sizeof(ce.diff_id));
    ce.size = out.size;
    snprintf(ce.media_type, sizeof(ce.media_type), "%s", bcompress_media_type(c->o->compression));
    _cleanup_free_ char *comment = layer_comment(final);
    snprintf(ce.comment, sizeof(ce.comment), "%s", comment);
    if (bcache_store(c->store, l->key, &ce, err) < 0)
        return -1;
    l->comment = xstrdup(ce.comment);
    memcpy(l->info.digest, out.digest, sizeof(out.digest));
    memcpy(l->info.diff_id, out.diff_id, sizeof(out.diff_id));
    l->info.size = out.size;
    return 0;
}

static int build_layer(struct bctx *c, struct lplan *l, struct dlc_error **err)
{
    if (l->done)
        return 0;
    emit(c, BUILDER_EVENT_LAYER_START, l);
    l->info.name = xstrdup(l->name);
    snprintf(l->media_type, sizeof(l->media_type), "%s", bcompress_media_type(c->o->compression));
    struct bcache_entry ce;
    if (!c->o->no_cache && bcache_lookup(c->store, l->key, &ce) == 1) {
        memcpy(l->info.digest, ce.digest, sizeof(ce.digest));
        memcpy(l->info.diff_id, ce.diff_id, sizeof(ce.diff_id));
        l->info.size = ce.size;
        l->info.cached = true;
        l->comment = xstrdup(ce.comment);
    } else if (write_layer(c, l, err) < 0) {
        return -1;
    }
    l->done = true;
    emit(c, BUILDER_EVENT_LAYER_DONE, l);
    return 0;
}

static void info_layer(struct builder_layer_info *dst, const struct builder_layer_info *src)
{
    *dst = *src;
    dst->name = xstrdup(src->name);
}

static void fill_result(const struct bctx *c, const struct iplan *ip, struct builder_image_info *r)
{
    r->variant = ip->variant ? xstrdup(ip->variant->name) : NULL;
    r->tags = dlc_strv_copy(ip->refs);
    size_t n_from = c->from ? c->from->manifest->n_layers : 0;
    r->layers = xcalloc(n_from + ip->n_layers + 1, sizeof(*r->layers));
    for (size_t i = 0; i < n_from; i++) {
        struct builder_layer_info *li = &r->layers[r->n_layers++];
        const struct oci_descriptor *d = &c->from->manifest->layers[i];
        li->name = xstrdup("from");
        snprintf(li->digest, sizeof(li->digest), "%s", d->digest);
        snprintf(li->diff_id, sizeof(li->diff_id), "%s",
                 i < c->from->config->n_diff_ids ? c->from->config->diff_ids[i] : "");
        li->size = (uint64_t)d->size;
        li->cached = li->inherited = true;
    }
    for (size_t i = 0; i < ip->n_layers; i++)
        info_layer(&r->layers[r->n_layers++], &ip->layers[i]->info);
}

static int write_image(struct bctx *c, const struct iplan *ip, struct builder_image_info *r,
                       struct dlc_error **err)
{
    /* Before the cache lookups: a cached layer must stay until the tag references it. */
    if (oci_store_lease(c->store, err) < 0)
        return -1;
    for (size_t i = 0; i < ip->n_layers; i++)
        if (build_layer(c, ip->layers[i], err) < 0)
            return -1;
    struct bimage_layer layers[2];
    for (size_t i = 0; i < ip->n_layers; i++) {
        const struct lplan *l = ip->layers[i];
        layers[i] = (struct bimage_layer){l->info.digest, l->info.diff_id, l->media_type,
                                          l->info.size,   l->created_by,   l->comment};
    }
    const struct bdef *d = c->def;
    const struct oci_image_config *fc = c->from ? c->from->config : NULL;
    struct bimage_spec sp = {
            .from = c->from,
            .from_ref = d->from,
            .created = c->created,
            .env = ip->env,
            .entrypoint = d->has_entrypoint ? d->entrypoint
                          : fc              ? fc->config.entrypoint
                                            : NULL,
            /* a new entrypoint drops the old image's cmd, as docker does */
            .cmd = d->has_cmd                   ? d->cmd
                   : (fc && !d->has_entrypoint) ? fc->config.cmd
                                                : NULL,
            .working_dir = d->working_dir ? d->working_dir
                           : fc           ? fc->config.working_dir
                                          : NULL,
            .user = d->user ? d->user
                    : fc    ? fc->config.user
                            : NULL,
            .labels = &ip->labels,
            .layers = layers,
            .n_layers = ip->n_layers,
    };
    struct oci_descriptor desc;
    if (bimage_store(c->store, &sp, &desc, &r->size, err) < 0)
        return -1;
    memcpy(r->manifest_digest, desc.digest, sizeof(desc.digest));
    int rc = bimage_tag(c->store, ip->refs, &desc, err);
    oci_descriptor_release(&desc);
    fill_result(c, ip, r);
    return rc;
}

static int execute(struct bctx *c, struct builder_result **ret, struct dlc_error **err)
{
    if (c->store == NULL && oci_store_open(c->root, &c->store, err) < 0)
        return -1;
    _cleanup_(builder_result_freep) struct builder_result *r = xcalloc(1, sizeof(*r));
    r->name = xstrdup(c->def->name);
    r->images = xcalloc(c->n_images, sizeof(*r->images));
    for (size_t i = 0; i < c->n_images; i++) {
        const char *v = c->images[i].variant ? c->images[i].variant->name : c->def->name;
        r->n_images = i + 1;
        if (write_image(c, &c->images[i], &r->images[i], err) < 0)
            return dlc_error_wrap(err, "%s", v);
    }
    *ret = TAKE_PTR(r);
    return 0;
}

int builder_build(const char *root, const struct builder_options *o, struct builder_result **ret,
                  struct dlc_error **err)
{
    struct bctx c;
    memset(&c, 0, sizeof(c));
    c.o = o;
    c.root = root;
    int rc = plan(&c, err);
    if (rc == 0)
        rc = execute(&c, ret, err);
    ctx_release(&c);
    return rc;
}

void builder_result_free(struct builder_result *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_images; i++) {
        struct builder_image_info *im = &r->images[i];
        free(im->variant);
        dlc_strv_free(im->tags);
        for (size_t k = 0; k < im->n_layers; k++)
            free(im->layers[k].name);
        free(im->layers);
    }
    free(r->images);
    free(r->name);
    free(r);
}
