/* oci-internal.h: what the oci/ sources share and nobody else sees. */
#ifndef DLC_OCI_INTERNAL_H
#define DLC_OCI_INTERNAL_H

#include <sys/types.h>

#include "oci.h"

struct oci_store {
    char *root;         /* DLC_ROOT */
    char *layout;       /* DLC_ROOT/images */
    char *blobs_dir;    /* DLC_ROOT/images/blobs/sha256 */
    char *index_path;   /* DLC_ROOT/images/index.json */
    char *lock_path;    /* DLC_ROOT/images.lock */
    char *gc_lock_path; /* DLC_ROOT/images.gc.lock: writers' leases (shared), gc (exclusive) */
    /* The writer lease (store-lease.c), under that file's process-wide mutex. */
    int lease_fd; /* holds a shared flock on gc_lock_path; -1 when no lease */
    dev_t lease_dev;
    ino_t lease_ino;
    struct oci_store *lease_next; /* the process's stores that hold a lease */
};

/* Cap on index.json: it lists tags, not content. */
#define OCI_MAX_INDEX_SIZE (64u << 20)
/* Temp files in blobs/sha256 start with this; gc removes the ones nobody holds. */
#define OCI_BLOB_TMP_PREFIX ".tmp-"

/* RFC 6838 media type grammar (image-spec defs-descriptor.json). */
bool oci__media_type_is_valid(const char *mt);

/* Descriptor arrays and optional parts. */
void oci__descriptors_free(struct oci_descriptor *d, size_t n);
int oci__descriptors_from_json(const json_t *arr, const char *what, struct oci_descriptor **ret,
                               size_t *ret_n, struct dlc_error **err);
json_t *oci__descriptors_to_json(const struct oci_descriptor *d, size_t n);
int oci__descriptor_opt_from_json(const json_t *obj, const char *key, const char *what,
                                  struct oci_descriptor **ret, struct dlc_error **err);
int oci__descriptor_validate(const struct oci_descriptor *d, const char *what,
                             struct dlc_error **err);

/* Annotations/labels: a JSON object of strings <-> struct oci_map. */
int oci__map_from_json(const json_t *obj, const char *key, const char *what, struct oci_map *ret,
                       struct dlc_error **err);
json_t *oci__map_to_json(const struct oci_map *m);
void oci__map_copy(struct oci_map *dst, const struct oci_map *src);

/* Object keys of {"k":{}, ...} as a vector (ExposedPorts, Volumes). */
int oci__keyset_from_json(const json_t *obj, const char *key, const char *what, char ***ret,
                          struct dlc_error **err);

/* index.json, read and written whole. read validates and names the file in errors. */
int oci__store_read_index(struct oci_store *s, struct oci_index **ret, struct dlc_error **err);
int oci__store_write_index(struct oci_store *s, const struct oci_index *ix, struct dlc_error **err);

/* The gc side of the writer lease (store-lease.c): releases s's own lease, then takes
 * gc_lock_path exclusively within wait_ms (< 0: however long it takes) and returns the fd
 * holding it. EBUSY when the wait runs out, or at once when another store object of this
 * process holds a lease on the same root (waiting would wait on ourselves). */
int oci__store_gc_lock(struct oci_store *s, int wait_ms, struct dlc_error **err);

/* A copy of the ref.name annotation's value, or NULL. */
const char *oci__descriptor_ref_name(const struct oci_descriptor *d);

#endif
