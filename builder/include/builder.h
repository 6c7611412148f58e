/* builder.h: `dlc build`: image definitions (images/<name>.json) -> reproducible, tagged OCI
 * images in the store, and `dlc history`.
 *
 * Usage:
 *
 *     struct builder_options o = BUILDER_OPTIONS_INIT;
 *     o.definition = "images/tensor-runtime.json";
 *     o.variant = "cpu";                          // NULL or "all": every variant
 *     struct dlc_error *err = NULL;
 *     _cleanup_(builder_result_freep) struct builder_result *r = NULL;
 *     if (builder_build(oci_default_root(), &o, &r, &err) < 0)
 *         ...  // "images/x.json: variants.cpu.copy[0].src: build/...: No such file ..."
 *     for (size_t i = 0; i < r->n_images; i++)
 *         printf("%s %s\n", r->images[i].tags[0], r->images[i].manifest_digest);
 *
 *     _cleanup_(oci_store_freep) struct oci_store *s = ...;
 *     struct builder_history_entry *h = NULL;
 *     size_t n = 0;
 *     builder_history(s, "tensor-runtime:cpu", &h, &n, &err);
 *     builder_history_free(h, n);
 *
 * A build validates the whole definition, finds every file and shared library, computes
 * the tags and only then opens the store: a bad definition leaves the store untouched.
 * Layers are tar streams with sorted entries, uid/gid 0, mtime SOURCE_DATE_EPOCH (default:
 * the definition's last git commit time) and no atime/ctime, gzip'd without name/mtime (or
 * zstd): the same inputs give the same digests. A layer whose inputs did not change comes
 * from $DLC_ROOT/build-cache/.
 */
#ifndef DLC_BUILDER_H
#define DLC_BUILDER_H

#include "common.h"
#include "oci.h"

enum builder_compression { BUILDER_COMPRESS_GZIP, BUILDER_COMPRESS_ZSTD };

/* "gzip" | "zstd" -> enum; EINVAL naming the value otherwise. */
int builder_compression_parse(const char *s, enum builder_compression *ret, struct dlc_error **err);

enum builder_event_kind {
    BUILDER_EVENT_LAYER_START,    /* a layer is about to be written (or taken from cache) */
    BUILDER_EVENT_LAYER_PROGRESS, /* bytes_in/bytes_out moved (a few times per second) */
    BUILDER_EVENT_LAYER_DONE,     /* digest, bytes_out and cached are final */
};

struct builder_event {
    enum builder_event_kind kind;
    const char *layer;    /* "base", "cpu", ... */
    uint64_t bytes_in;    /* uncompressed tar bytes written so far */
    uint64_t bytes_total; /* uncompressed tar bytes expected (approximate) */
    uint64_t bytes_out;   /* compressed bytes so far */
    bool cached;          /* LAYER_DONE: taken from the build cache */
    const char *digest;   /* LAYER_DONE: the layer blob's digest */
};
typedef void (*builder_progress_fn)(const struct builder_event *ev, void *userdata);

/* Brings the image ref ("host[:port]/name:tag") into store s under that same name: how a
 * definition builds "from" a registry image the store lacks (the CLI pulls it). */
typedef int (*builder_fetch_fn)(struct oci_store *s, const char *ref, void *userdata,
                                struct dlc_error **err);

struct builder_options {
    const char *definition;  /* path of the definition file */
    const char *build_dir;   /* what {build} expands to; NULL: $DLC_BUILD, else "build" */
    const char *variant;     /* one variant's name; NULL or "all" for every variant */
    char *const *extra_tags; /* NULL-terminated tag templates added to every image; may be NULL */
    enum builder_compression compression;
    bool no_cache;                /* rebuild every layer (the result still refreshes the cache) */
    builder_progress_fn progress; /* may be NULL */
    void *userdata;
    builder_fetch_fn fetch; /* may be NULL: a "from" image must then be in the store */
    void *fetch_userdata;
};
#define BUILDER_OPTIONS_INIT                                                         \
    {                                                                                \
        NULL, NULL, NULL, NULL, BUILDER_COMPRESS_GZIP, false, NULL, NULL, NULL, NULL \
    }

struct builder_layer_info {
    char *name;                     /* "base", "cpu", or the from-image's "from" */
    char digest[OCI_DIGEST_BUFSZ];  /* blob digest (compressed) */
    char diff_id[OCI_DIGEST_BUFSZ]; /* sha256 of the uncompressed tar */
    uint64_t size;                  /* compressed bytes */
    bool cached;                    /* from the build cache (or a layer built earlier) */
    bool inherited;                 /* a layer of the "from" image */
};

struct builder_image_info {
    char *variant; /* NULL for a definition without variants */
    char **tags;   /* "name:tag", NULL-terminated */
    char manifest_digest[OCI_DIGEST_BUFSZ];
    uint64_t size; /* config + layers, compressed bytes (as dlc images) */
    struct builder_layer_info *layers;
    size_t n_layers;
};

struct builder_result {
    char *name; /* the repository name */
    struct builder_image_info *images;
    size_t n_images;
};
void builder_result_free(struct builder_result *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct builder_result *, builder_result_free)

/* Builds the images of o->definition into the store at root (created if missing), tags
 * them and returns what was built (caller frees). Errors name the definition, the key and
 * the path involved; EINVAL for a bad definition, ENOENT for a missing file, library or
 * from-image. Nothing is written to the store before the definition is fully validated. */
int builder_build(const char *root, const struct builder_options *o, struct builder_result **ret,
                  struct dlc_error **err);

/* One entry per history record of the image's config, newest last; layers without a
 * history record (foreign images) get an entry with created_by NULL. */
struct builder_history_entry {
    char *created;    /* RFC 3339, may be NULL */
    char *created_by; /* may be NULL */
    char *comment;    /* may be NULL */
    bool empty_layer;
    char digest[OCI_DIGEST_BUFSZ]; /* "" for an empty layer */
    int64_t size;                  /* compressed bytes, 0 for an empty layer */
};
/* ENOENT for an unknown ref, EBADMSG for a corrupt image. */
int builder_history(struct oci_store *s, const char *ref, struct builder_history_entry **ret,
                    size_t *ret_n, struct dlc_error **err);
void builder_history_free(struct builder_history_entry *h, size_t n);

#endif
