/* oci.h: the content-addressed core: digests, references, OCI manifests/indexes/configs,
 * and the image store (an OCI image layout at $DLC_ROOT/images).
 *
 * Usage:
 *
 *     struct dlc_error *err = NULL;
 *     _cleanup_(oci_store_freep) struct oci_store *s = NULL;
 *     if (oci_store_open(oci_default_root(), &s, &err) < 0) ...
 *
 *     // write a blob (verified while written; atomic)
 *     char digest[OCI_DIGEST_BUFSZ];
 *     oci_store_blob_put(s, data, len, NULL, digest, &err);
 *
 *     // load an image by tag or digest, verified
 *     _cleanup_(oci_image_freep) struct oci_image *img = NULL;
 *     oci_store_load_image(s, "tensor-runtime:1.0.0-cpu", &img, &err);
 *     img->config->config.entrypoint ...
 *
 *     // tag it
 *     oci_store_tag(s, "tensor-runtime:latest", &img->desc, &err);
 *
 * Error codes: ENOENT (no such blob/tag), EINVAL (malformed input: digest, reference,
 * JSON), EBADMSG (content does not match its digest or size), EIO/errno for filesystem
 * failures. Every message names what was wrong and where.
 */
#ifndef DLC_OCI_H
#define DLC_OCI_H

#include "common.h"

/* ---- media types -------------------------------------------------------------------- */

#define OCI_MT_LAYOUT_HEADER "application/vnd.oci.layout.header.v1+json"
#define OCI_MT_INDEX         "application/vnd.oci.image.index.v1+json"
#define OCI_MT_MANIFEST      "application/vnd.oci.image.manifest.v1+json"
#define OCI_MT_CONFIG        "application/vnd.oci.image.config.v1+json"
#define OCI_MT_LAYER_TAR     "application/vnd.oci.image.layer.v1.tar"
#define OCI_MT_LAYER_GZIP    "application/vnd.oci.image.layer.v1.tar+gzip"
#define OCI_MT_LAYER_ZSTD    "application/vnd.oci.image.layer.v1.tar+zstd"
#define OCI_MT_EMPTY         "application/vnd.oci.empty.v1+json"
#define DOCKER_MT_MANIFEST   "application/vnd.docker.distribution.manifest.v2+json"
#define DOCKER_MT_LIST       "application/vnd.docker.distribution.manifest.list.v2+json"
#define DOCKER_MT_CONFIG     "application/vnd.docker.container.image.v1+json"
#define DOCKER_MT_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"

#define OCI_ANNOTATION_REF_NAME "org.opencontainers.image.ref.name"

/* Caps on untrusted sizes. */
#define OCI_MAX_MANIFEST_SIZE (4u << 20)
#define OCI_MAX_CONFIG_SIZE   (8u << 20)

/* True for the OCI manifest and Docker schema2 manifest types. */
bool oci_media_type_is_manifest(const char *mt);
/* True for the OCI index and Docker manifest list types. */
bool oci_media_type_is_index(const char *mt);
/* Layer compression from its media type: "tar", "gzip", "zstd", or NULL when unknown. */
const char *oci_media_type_layer_compression(const char *mt);

/* ---- digests ------------------------------------------------------------------------ */

#define OCI_DIGEST_BUFSZ 72 /* "sha256:" + 64 hex + NUL */

/* Only sha256 is supported: "sha256:" + 64 lowercase hex. EINVAL with the reason
 * ("digest 'sha256:AB..': uppercase hex is not allowed"). */
int oci_digest_validate(const char *digest, struct dlc_error **err);
/* The hex part (borrowed) of a valid digest. */
const char *oci_digest_hex(const char *digest);
void oci_digest_buf(const void *data, size_t len, char out[OCI_DIGEST_BUFSZ]);
int oci_digest_file(const char *path, char out[OCI_DIGEST_BUFSZ], uint64_t *ret_size,
                    struct dlc_error **err);

/* Streaming sha256 (OpenSSL EVP). */
struct oci_digester;
struct oci_digester *oci_digester_new(void);
void oci_digester_update(struct oci_digester *d, const void *data, size_t len);
/* Writes "sha256:<hex>"; the digester can't be updated afterwards. */
void oci_digester_final(struct oci_digester *d, char out[OCI_DIGEST_BUFSZ]);
uint64_t oci_digester_size(const struct oci_digester *d); /* bytes fed so far */
void oci_digester_free(struct oci_digester *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct oci_digester *, oci_digester_free)

/* ---- references --------------------------------------------------------------------- */

/* [host[:port]/]name[:tag][@digest]. The first component is a registry host when it has a
 * '.' or ':' or is "localhost". name follows the distribution-spec grammar (lowercase),
 * tag [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}. With neither tag nor digest, tag = "latest". */
struct oci_ref {
    char *registry; /* "localhost:5000", or NULL */
    char *name;     /* "a/b" */
    char *tag;      /* NULL only when a digest is given without a tag */
    char *digest;   /* NULL when none */
};
/* EINVAL with the reason: "invalid reference 'A:b': repository name must be lowercase". */
int oci_ref_parse(const char *s, struct oci_ref **ret, struct dlc_error **err);
void oci_ref_free(struct oci_ref *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct oci_ref *, oci_ref_free)
/* "registry/name:tag@digest" with the parts present. Caller frees. */
char *oci_ref_format(const struct oci_ref *r);
/* The store's ref.name for it: "[registry/]name:tag" (NULL when no tag). Caller frees. */
char *oci_ref_store_name(const struct oci_ref *r);
/* Grammar checks on their own (for the registry's path parsing). */
bool oci_name_is_valid(const char *name);
bool oci_tag_is_valid(const char *tag);

/* ---- typed documents ------------------------------------------------------------------ */

/* A string map kept sorted by key (annotations, labels). */
struct oci_map {
    size_t n;
    char **keys;
    char **values;
};
const char *oci_map_get(const struct oci_map *m, const char *key);
void oci_map_set(struct oci_map *m, const char *key, const char *value); /* copies */
void oci_map_remove(struct oci_map *m, const char *key);
void oci_map_release(struct oci_map *m);

struct oci_platform {
    char *architecture;
    char *os;
    char *variant; /* may be NULL */
};

struct oci_descriptor {
    char *media_type;
    char digest[OCI_DIGEST_BUFSZ];
    int64_t size;
    char *artifact_type;           /* may be NULL */
    struct oci_platform *platform; /* may be NULL */
    struct oci_map annotations;
    char **urls; /* may be NULL */
};
/* Frees the members and zeroes *d (the struct itself is the caller's). */
void oci_descriptor_release(struct oci_descriptor *d);
/* Deep copy; *dst is overwritten, not released first. */
void oci_descriptor_copy(struct oci_descriptor *dst, const struct oci_descriptor *src);
/* what names the descriptor in errors ("manifest: layers[2]"). The digest must be a valid
 * sha256 digest and size >= 0 (EINVAL); platform, annotations and urls are optional. */
int oci_descriptor_from_json(const json_t *j, const char *what, struct oci_descriptor *ret,
                             struct dlc_error **err);
json_t *oci_descriptor_to_json(const struct oci_descriptor *d);

struct oci_manifest {
    int schema_version;
    char *media_type; /* may be NULL (then the transport's Content-Type says) */
    char *artifact_type;
    struct oci_descriptor config;
    struct oci_descriptor *layers;
    size_t n_layers;
    struct oci_descriptor *subject; /* may be NULL */
    struct oci_map annotations;
};

struct oci_index {
    int schema_version;
    char *media_type;
    char *artifact_type;
    struct oci_descriptor *manifests;
    size_t n_manifests;
    struct oci_descriptor *subject;
    struct oci_map annotations;
};

struct oci_history {
    char *created;
    char *created_by;
    char *author;
    char *comment;
    bool empty_layer;
};

struct oci_image_config {
    char *created;
    char *author;
    char *architecture;
    char *os;
    char *variant;
    struct {
        char *user;
        char **env;        /* NULL when absent */
        char **entrypoint; /* NULL when absent */
        char **cmd;        /* NULL when absent */
        char *working_dir;
        char *stop_signal;
        char **exposed_ports; /* "8080/tcp" */
        char **volumes;
        struct oci_map labels;
    } config;
    char *rootfs_type;
    char **diff_ids;
    size_t n_diff_ids;
    struct oci_history *history;
    size_t n_history;
};

/* _from_json: unknown fields ignored, Docker media types accepted, types checked; EINVAL
 * naming the field ("manifest: layers[2]: 'digest' must be a string").
 * _parse: the same from raw bytes (JSON_REJECT_DUPLICATES); what names the source.
 * _to_json: the canonical form (write with dlc_json_dumps: compact, sorted keys).
 * _validate: the invariants of reference/oci-specs.md §1.9 that the document alone shows
 * (schemaVersion 2, descriptor media types and digests, rootfs.type "layers", ...). */
int oci_manifest_from_json(const json_t *j, struct oci_manifest **ret, struct dlc_error **err);
int oci_manifest_parse(const char *buf, size_t len, const char *what, struct oci_manifest **ret,
                       struct dlc_error **err);
json_t *oci_manifest_to_json(const struct oci_manifest *m);
int oci_manifest_validate(const struct oci_manifest *m, struct dlc_error **err);
void oci_manifest_free(struct oci_manifest *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct oci_manifest *, oci_manifest_free)

int oci_index_from_json(const json_t *j, struct oci_index **ret, struct dlc_error **err);
int oci_index_parse(const char *buf, size_t len, const char *what, struct oci_index **ret,
                    struct dlc_error **err);
json_t *oci_index_to_json(const struct oci_index *ix);
int oci_index_validate(const struct oci_index *ix, struct dlc_error **err);
void oci_index_free(struct oci_index *ix);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct oci_index *, oci_index_free)

int oci_image_config_from_json(const json_t *j, struct oci_image_config **ret,
                               struct dlc_error **err);
int oci_image_config_parse(const char *buf, size_t len, const char *what,
                           struct oci_image_config **ret, struct dlc_error **err);
json_t *oci_image_config_to_json(const struct oci_image_config *c);
int oci_image_config_validate(const struct oci_image_config *c, struct dlc_error **err);
void oci_image_config_free(struct oci_image_config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct oci_image_config *, oci_image_config_free)

/* ---- the store ---------------------------------------------------------------------- */

/* DLC_ROOT, else /var/lib/dlc for root, else $XDG_DATA_HOME/dlc or ~/.local/share/dlc.
 * Caller frees. */
char *oci_default_root(void);

struct oci_store;
/* Opens (creating if missing) the store at root: root/images is an OCI image layout
 * (oci-layout, index.json, blobs/sha256/). A layout with another imageLayoutVersion or a
 * malformed index.json is EINVAL naming the file. */
int oci_store_open(const char *root, struct oci_store **ret, struct dlc_error **err);
void oci_store_free(struct oci_store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct oci_store *, oci_store_free)
const char *oci_store_root(const struct oci_store *s);       /* DLC_ROOT */
const char *oci_store_layout_dir(const struct oci_store *s); /* DLC_ROOT/images */

/* Blobs. put verifies the content against expected_digest (when not NULL) while writing and
 * makes it visible under its digest only after fsync+rename: EBADMSG on mismatch, nothing
 * stored. An existing blob is not rewritten. */
int oci_store_blob_put(struct oci_store *s, const void *data, size_t len,
                       const char *expected_digest, char ret_digest[OCI_DIGEST_BUFSZ],
                       struct dlc_error **err);
/* Streaming version: write any number of chunks, then commit (verify + rename) or free
 * (discard). expected_size < 0 means unknown. */
struct oci_blob_writer;
int oci_store_blob_writer_new(struct oci_store *s, const char *expected_digest,
                              int64_t expected_size, struct oci_blob_writer **ret,
                              struct dlc_error **err);
int oci_blob_writer_write(struct oci_blob_writer *w, const void *data, size_t len,
                          struct dlc_error **err);
/* Verifies, renames into place, frees w (also on failure). */
int oci_blob_writer_commit(struct oci_blob_writer *w, char ret_digest[OCI_DIGEST_BUFSZ],
                           uint64_t *ret_size, struct dlc_error **err);
void oci_blob_writer_free(struct oci_blob_writer *w); /* discards if not committed */
DEFINE_TRIVIAL_CLEANUP_FUNC(struct oci_blob_writer *, oci_blob_writer_free)

bool oci_store_blob_exists(struct oci_store *s, const char *digest);
/* Host path of a blob (whether or not it exists); NULL for an invalid digest, so a digest
 * from outside never becomes a path outside blobs/. Caller frees. */
char *oci_store_blob_path(const struct oci_store *s, const char *digest);
/* Reads a whole blob (EFBIG above max) and verifies its digest (EBADMSG: "blob sha256:..
 * is corrupt: content hashes to sha256:.."). */
int oci_store_blob_read(struct oci_store *s, const char *digest, size_t max, char **ret_buf,
                        size_t *ret_len, struct dlc_error **err);
/* Re-hashes a stored blob. */
int oci_store_blob_verify(struct oci_store *s, const char *digest, struct dlc_error **err);
int oci_store_blob_size(struct oci_store *s, const char *digest, uint64_t *ret,
                        struct dlc_error **err);

/* Tags: index.json entries with org.opencontainers.image.ref.name = "name:tag".
 * Every index.json update happens under an exclusive lock ($DLC_ROOT/images.lock) with a
 * re-read, so concurrent dlc processes never lose a tag. */
struct oci_store_entry {
    char *ref_name; /* "name:tag"; NULL for an untagged index entry */
    struct oci_descriptor desc;
};
int oci_store_list(struct oci_store *s, struct oci_store_entry **ret, size_t *ret_n,
                   struct dlc_error **err);
void oci_store_entries_free(struct oci_store_entry *e, size_t n);
/* Resolves "name:tag", "name" (tag latest), "name@sha256:..", "sha256:.." or a unique
 * hex prefix of a manifest digest (>= 4 chars) to the index descriptor. ENOENT when
 * unknown: "image 'x:y' not found"; EINVAL for an invalid reference or an ambiguous prefix.
 * A ref.name other tools wrote verbatim ("v1") matches as is. A digest no entry names
 * resolves when a manifest/index blob of that digest is stored (the name part of
 * name@digest is not checked). ret is caller-owned (oci_descriptor_release). */
int oci_store_resolve(struct oci_store *s, const char *ref, struct oci_descriptor *ret,
                      struct dlc_error **err);
/* Points ref_name ("name:tag"; "name" means name:latest) at desc, replacing a previous entry
 * of that name. desc must be a manifest or index whose blob is stored (ENOENT). */
int oci_store_tag(struct oci_store *s, const char *ref_name, const struct oci_descriptor *desc,
                  struct dlc_error **err);
/* Removes the entry named ref_name; ENOENT if none. Blobs stay until gc. */
int oci_store_untag(struct oci_store *s, const char *ref_name, struct dlc_error **err);
/* Removes every index.json entry pointing at digest (all its tags); ENOENT if none.
 * *ret_names (may be NULL; free with dlc_strv_free) gets the names removed, the digest
 * standing in for an untagged entry. */
int oci_store_untag_digest(struct oci_store *s, const char *digest, char ***ret_names,
                           struct dlc_error **err);
/* The writer lease keeps gc away from blobs a writer stored but has not tagged yet (a build
 * or pull stores layers, config and manifest first and tags last; until then nothing in
 * index.json reaches them). It is a shared flock on $DLC_ROOT/images.gc.lock held by the
 * store object: taken by its first oci_store_blob_put, oci_store_blob_writer_new or
 * oci_store_put_manifest (so every writer has it without asking), released by its next
 * successful oci_store_tag, by oci_store_lease_release or oci_store_free. A writer that
 * reuses blobs it finds already stored (a build-cache hit, a layer a pull already has) takes
 * it with oci_store_lease before it looks. Taking it waits while a gc runs. Thread-safe and
 * idempotent; the fd is close-on-exec (a child forked without exec keeps the lease until it
 * exits). Readers (dlc run) never take it. */
int oci_store_lease(struct oci_store *s, struct dlc_error **err);
void oci_store_lease_release(struct oci_store *s);

/* How long oci_store_gc waits for writers' leases. */
#define OCI_GC_WAIT_MS 10000
/* Removes blobs no index.json entry reaches (through indexes, manifests, configs, layers,
 * subjects) and temp files no live writer holds; reports what was freed (temp files count
 * in bytes, not in blobs). First takes $DLC_ROOT/images.gc.lock exclusively: while another
 * process holds a writer lease it waits up to wait_ms (< 0: without limit), then fails with
 * EBUSY "another dlc process is writing to the store (...)". s's own lease is dropped first
 * (its untagged blobs go like any others); a lease held by another store object of this
 * process is EBUSY at once rather than a wait on itself. Then holds the store lock
 * throughout. Tools that write the layout directly (skopeo into $DLC_ROOT/images) take no
 * lease. A reachable manifest that is corrupt stops gc. oci_store_gc waits OCI_GC_WAIT_MS. */
int oci_store_gc_wait(struct oci_store *s, int wait_ms, size_t *ret_blobs, uint64_t *ret_bytes,
                      struct dlc_error **err);
int oci_store_gc(struct oci_store *s, size_t *ret_blobs, uint64_t *ret_bytes,
                 struct dlc_error **err);

/* A whole image, loaded and verified: the manifest (an index resolves to its linux/<host
 * arch> entry) and its config, with raw bytes kept (digests are over them). */
struct oci_image {
    struct oci_descriptor desc; /* the manifest's descriptor */
    struct oci_manifest *manifest;
    char *manifest_raw;
    size_t manifest_len;
    struct oci_image_config *config;
    char *config_raw;
    size_t config_len;
};
int oci_store_load_image(struct oci_store *s, const char *ref, struct oci_image **ret,
                         struct dlc_error **err);
/* The same from a descriptor (an index.json entry, a resolved ref). */
int oci_store_load_image_desc(struct oci_store *s, const struct oci_descriptor *desc,
                              struct oci_image **ret, struct dlc_error **err);
void oci_image_free(struct oci_image *img);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct oci_image *, oci_image_free)

/* Stores a manifest (or index) the caller serialised, after the blobs it names (config,
 * layers; index entries) were stored: validates it (EINVAL), checks those blobs are present
 * (ENOENT naming the missing one), and returns its descriptor (media_type, or
 * OCI_MT_MANIFEST when NULL; digest and size of manifest_raw) without tagging it. */
int oci_store_put_manifest(struct oci_store *s, const char *manifest_raw, size_t manifest_len,
                           const char *media_type, struct oci_descriptor *ret,
                           struct dlc_error **err);

/* GOARCH name of this host ("amd64", "arm64", ...). */
const char *oci_host_arch(void);

#endif
