/* builder-internal.h: what the builder's source files share.
 *
 * definition.c  images/<name>.json -> struct bdef (validated)
 * template.c    tag templates "{version}-{device}"
 * source.c      SOURCE_DATE_EPOCH / git commit time and revision, os-release
 * closure.c     host files and their shared-library closure into a tree (ELF headers and
 *               the host's /etc/ld.so.cache read by common's dlc_elf_* / dlc_ldcache_*)
 * spec.c        a definition's layer (copy entries, libraries, busybox) into a tree
 * tree.c        a layer's entries (path -> node), finalising against lower layers
 * lower.c       the tree of an image's layers read back from the store
 * compress.c    gzip (parallel, deterministic) and zstd streams
 * layer.c       reproducible tar (libarchive) -> compressor -> store blob
 * cache.c       $DLC_ROOT/build-cache: layer inputs -> layer blob
 * image.c       image config, manifest, tags
 * build.c       builder_build: plan, then write
 * history.c     builder_history
 */
#ifndef DLC_BUILDER_INTERNAL_H
#define DLC_BUILDER_INTERNAL_H

#include <sys/stat.h>

#include "builder.h"

/* ---- definition.c ------------------------------------------------------------------ */

enum bcopy_kind {
    BCOPY_SRC,
    BCOPY_CONTENT,
    BCOPY_DIR,
    BCOPY_SYMLINK,
    BCOPY_WHITEOUT,
    BCOPY_OPAQUE
};

struct bcopy {
    enum bcopy_kind kind;
    char *where;   /* "variants.cpu.copy[0]" */
    char *src;     /* BCOPY_SRC: host path, {build} expanded, relative to the definition */
    char *dst;     /* image path, normalised and relative: "usr/bin/tensor" */
    char *content; /* BCOPY_CONTENT */
    size_t content_len;
    char *link;   /* BCOPY_SYMLINK target, verbatim */
    int mode;     /* permission bits, -1 for the default */
    bool closure; /* BCOPY_SRC of an ELF file: add its shared libraries */
};

/* The contents of one layer. */
struct blayer_spec {
    bool present;
    char *where; /* "base", "variants.cpu", "" (top level) */
    struct bcopy *copies;
    size_t n_copies;
    char **libraries;  /* sonames, with their closure */
    char *busybox;     /* host path of a (static) busybox, or NULL */
    char *busybox_dst; /* "bin/busybox" */
    char **applets;    /* symlinks to busybox beside it */
};

struct bvariant {
    char *name;
    char *device;
    char *backend; /* may be NULL */
    char **env;    /* "K=V", may be NULL */
    struct oci_map labels;
    struct blayer_spec layer;
};

struct bdef {
    char *path;      /* as given */
    char *dir;       /* its directory: relative paths in it start here */
    char *file_name; /* its basename, for history records */
    char *name;
    char *version;     /* NULL: from the from-image's label */
    char *os;          /* NULL or "auto": from /etc/os-release (or the from-image) */
    char *job;         /* may be NULL */
    char *title;       /* may be NULL */
    char *description; /* may be NULL */
    char *source;      /* may be NULL */
    char *from;        /* base image reference, or NULL */
    char *device;      /* for a definition without variants; may be NULL */
    char *backend;
    char **entrypoint; /* NULL when not given */
    bool has_entrypoint;
    char **cmd;
    bool has_cmd;
    char *working_dir;
    char *user;
    char **env; /* "K=V" */
    struct oci_map labels;
    char **tags;              /* templates */
    struct blayer_spec base;  /* shared by every variant */
    struct blayer_spec layer; /* the image's own layer when there are no variants */
    struct bvariant *variants;
    size_t n_variants;
};

/* Reads and validates a definition. build_dir is what {build} expands to. Errors are
 * EINVAL "<key path>: <why>" (the caller prefixes the file name), or ENOENT/EIO for the
 * file itself and for version_file. Does not look at copied files (see closure.c). */
int bdef_load(const char *path, const char *build_dir, struct bdef **ret, struct dlc_error **err);
void bdef_free(struct bdef *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct bdef *, bdef_free)

/* Env merging: entries of add override entries of base with the same name; new names are
 * appended. Returns a new vector. */
char **benv_merge(char *const *base, char *const *add);

/* ---- template.c -------------------------------------------------------------------- */

struct btemplate_vars {
    const char *name;
    const char *version;
    const char *device;
    const char *backend;
    const char *os;
    const char *variant;
    const char *job;
    const char *arch;
};
/* EINVAL "<what>: unknown field '{x}' in '<tmpl>' (fields: ...)" or an unbalanced brace. */
int btemplate_check(const char *tmpl, const char *what, struct dlc_error **err);
/* Expands tmpl; EINVAL when a field it uses has no value, or the result is not a valid
 * tag. */
int btemplate_expand(const char *tmpl, const struct btemplate_vars *v, const char *what, char **ret,
                     struct dlc_error **err);

/* ---- source.c ---------------------------------------------------------------------- */

struct bsource {
    int64_t epoch;  /* SOURCE_DATE_EPOCH, else the last commit time, else 0 */
    char *revision; /* git HEAD commit, or NULL */
    char *remote;   /* git remote origin URL, or NULL */
};
int bsource_read(const char *dir, struct bsource *ret, struct dlc_error **err);
void bsource_release(struct bsource *s);
/* "debian12" from os-release's ID and VERSION_ID. */
int bsource_os_label(const char *os_release_path, char **ret, struct dlc_error **err);

/* ---- tree.c ------------------------------------------------------------------------ */

enum bnode_type { BN_FILE, BN_DIR, BN_SYMLINK, BN_WHITEOUT };

struct bnode {
    char *path; /* relative, normalised: "usr/bin/tensor" */
    enum bnode_type type;
    unsigned mode; /* permission bits */
    bool implicit; /* BN_DIR: a parent nobody asked for */
    bool opaque;   /* BN_DIR: hides what lower layers have below it */
    char *src;     /* BN_FILE: host file read when the layer is written */
    char *data;    /* BN_FILE: inline content (when src is NULL) */
    uint64_t size;
    char *link;                  /* BN_SYMLINK target */
    char hash[OCI_DIGEST_BUFSZ]; /* BN_FILE: content digest, "" until known */
    char *where;                 /* what asked for it, for messages; may be NULL */
};

struct btree;
struct btree *btree_new(void);
void btree_free(struct btree *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct btree *, btree_free)
size_t btree_count(const struct btree *t);
struct bnode *btree_get(const struct btree *t, const char *path);
/* Adds a copy of n (strings duplicated) and its missing parents as implicit directories.
 * Adding what is already there is fine when both are directories (an explicit one wins)
 * or identical; anything else is EEXIST "<n.where>: '/<path>' is already provided by
 * <other.where>". */
int btree_add(struct btree *t, const struct bnode *n, struct dlc_error **err);
/* Lexical normalisation where ".." at the top stays at the top (as inside a container's
 * root): "/a/../../b" -> "b". Relative result without leading '/'; "" for the root. */
char *bpath_normalize_clamped(const char *path);
/* Removes path and everything below it. */
void btree_remove(struct btree *t, const char *path);
/* Removes everything below path (not path itself). */
void btree_remove_children(struct btree *t, const char *path);
/* The nodes in tar order: parents first, then by path component, whiteouts of a
 * directory before its other entries. Borrowed pointers; caller frees the array. */
struct bnode **btree_sorted(const struct btree *t, size_t *ret_n);
/* Hashes every BN_FILE node's content (src read in full; size checked against a fresh
 * stat). */
int btree_hash_files(struct btree *t, struct dlc_error **err);
/* The same, remembering digests by source path in memo (a tree used as a map from host
 * path to digest), so a file in several layers' inputs is read once per build. */
int btree_hash_files_memo(struct btree *t, struct btree *memo, struct dlc_error **err);
/* The layer's input key: sha256 over every node's path, type, mode, size, content hash
 * and link, plus salt (compression, epoch, the lower layers' identity). */
void btree_key(const struct btree *t, const char *salt, char out[OCI_DIGEST_BUFSZ]);
/* Sum of file sizes plus headers: what the tar stream will roughly weigh. */
uint64_t btree_tar_estimate(const struct btree *t);
/* The layer as it will be written on top of lower: explicit entries resolved through
 * symlinks of lower (and of the layer itself) in their parent directories, implicit
 * parents only where lower lacks the directory, entries identical to lower's dropped.
 * lower may be NULL. */
int btree_finalize(const struct btree *raw, const struct btree *lower, struct btree **ret,
                   struct dlc_error **err);
/* Applies a layer's entries onto t as an OCI consumer would: opaque directories and
 * whiteouts first, then the entries (a directory onto a directory changes attributes). */
int btree_apply(struct btree *t, const struct btree *layer, struct dlc_error **err);

/* ---- closure.c --------------------------------------------------------------------- */

struct bresolver;
/* ld.so.cache at ldcache_path (NULL: /etc/ld.so.cache). */
int bresolver_new(const char *ldcache_path, struct bresolver **ret, struct dlc_error **err);
void bresolver_free(struct bresolver *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct bresolver *, bresolver_free)
/* The sonames every closure walked since the last call asked for (DT_NEEDED), caller
 * frees; the list starts empty again. */
char **bresolver_take_seen(struct bresolver *r);
/* Forgets which closures were walked: the next layer gets its complete closure. */
void bresolver_reset(struct bresolver *r);
/* Adds the host file host (symlinks followed) at image path dst; when closure and it is an
 * ELF file, also its interpreter and every shared library it needs, recursively, at the
 * paths the host's loader finds them (symlinks along the way reproduced). */
int bclosure_add_file(struct bresolver *r, struct btree *t, const char *host, const char *dst,
                      int mode, bool closure, const char *where, struct dlc_error **err);
/* Adds a shared library by soname (looked up like ld.so does) and its closure. */
int bclosure_add_library(struct bresolver *r, struct btree *t, const char *soname,
                         const char *where, struct dlc_error **err);

/* ---- spec.c ------------------------------------------------------------------------ */

/* Adds a host directory recursively at dst (relative image path): directories, files
 * (modes normalised to 0755/0644), symlinks kept as they are; no closure. */
int bspec_add_dir(struct btree *t, const char *host, const char *dst, const char *where,
                  struct dlc_error **err);
/* Adds everything a layer spec asks for: copy entries, libraries, busybox and applets. A
 * missing src is ENOENT naming the entry and the path. */
int bspec_add(struct bresolver *r, struct btree *t, const struct blayer_spec *spec,
              struct dlc_error **err);

/* ---- compress.c -------------------------------------------------------------------- */

typedef int (*bsink_fn)(void *ctx, const void *data, size_t len, struct dlc_error **err);
struct bcompress;
/* A compressed stream into sink. gzip: deflate in independent 1 MiB blocks (pigz's
 * scheme: each block primed with the previous 32 KiB) on up to threads threads, one gzip
 * member with mtime 0 and no name: the bytes depend only on the input and the level.
 * zstd: libzstd's multithreaded mode, whose output does not depend on the thread count. */
int bcompress_new(enum builder_compression c, int level, int threads, bsink_fn sink, void *ctx,
                  struct bcompress **ret, struct dlc_error **err);
int bcompress_write(struct bcompress *z, const void *data, size_t len, struct dlc_error **err);
int bcompress_finish(struct bcompress *z, struct dlc_error **err);
void bcompress_free(struct bcompress *z);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct bcompress *, bcompress_free)
const char *bcompress_media_type(enum builder_compression c);
int bcompress_default_level(enum builder_compression c);

/* ---- layer.c ----------------------------------------------------------------------- */

struct blayer_write_opts {
    int64_t epoch;
    enum builder_compression compression;
    const char *name; /* for progress */
    builder_progress_fn progress;
    void *userdata;
};
struct blayer_out {
    char digest[OCI_DIGEST_BUFSZ];
    char diff_id[OCI_DIGEST_BUFSZ];
    uint64_t size;     /* compressed */
    uint64_t tar_size; /* uncompressed */
};
/* Writes the layer's nodes (tar order) as a reproducible tar stream, compressed, into the
 * store. File contents are re-hashed while written: EIO when a file changed since its
 * hash was taken. */
int blayer_write(struct oci_store *s, const struct btree *layer, const struct blayer_write_opts *o,
                 struct blayer_out *ret, struct dlc_error **err);
/* Writes the tar stream alone (uncompressed) to sink: for tests and the zstd checker. */
int blayer_write_tar(const struct btree *layer, int64_t epoch, bsink_fn sink, void *ctx,
                     struct dlc_error **err);

/* ---- lower.c ----------------------------------------------------------------------- */

/* Reads the layers (tar, gzip or zstd) of an image and applies them in order onto t, file
 * contents hashed: what a container of that image starts with. */
int blower_read_layers(struct oci_store *s, const struct oci_descriptor *layers, size_t n,
                       struct btree *t, struct dlc_error **err);

/* ---- cache.c ----------------------------------------------------------------------- */

struct bcache_entry {
    char digest[OCI_DIGEST_BUFSZ];
    char diff_id[OCI_DIGEST_BUFSZ];
    uint64_t size;
    char media_type[64];
    char comment[256]; /* what the layer holds, for its history record */
};
/* 1 and *ret on a hit whose blob is still stored; 0 on a miss (a missing, unreadable or
 * stale entry is a miss). */
int bcache_lookup(struct oci_store *s, const char *key, struct bcache_entry *ret);
int bcache_store(struct oci_store *s, const char *key, const struct bcache_entry *e,
                 struct dlc_error **err);

/* ---- image.c ----------------------------------------------------------------------- */

struct bimage_layer {
    const char *digest;
    const char *diff_id;
    const char *media_type;
    uint64_t size;
    const char *created_by;
    const char *comment;
};

/* Everything an image's config and manifest say, merged already (from-image settings,
 * definition, variant). */
struct bimage_spec {
    const struct oci_image *from; /* NULL: from scratch */
    const char *from_ref;
    const char *created; /* RFC 3339 */
    char *const *env;
    char *const *entrypoint;
    char *const *cmd;
    const char *working_dir;
    const char *user;
    const struct oci_map *labels;
    const struct bimage_layer *layers; /* ours, on top of the from-image's */
    size_t n_layers;
};
/* Stores the config and the manifest; *ret is the manifest's descriptor (caller releases),
 * *ret_size config + every layer (as `dlc images` counts). */
int bimage_store(struct oci_store *s, const struct bimage_spec *sp, struct oci_descriptor *ret,
                 uint64_t *ret_size, struct dlc_error **err);
/* Points every "name:tag" of refs at d (skipping those that already point there). */
int bimage_tag(struct oci_store *s, char *const *refs, const struct oci_descriptor *d,
               struct dlc_error **err);

#endif
