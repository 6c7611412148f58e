/* runner-internal.h: what the runner's source files share. Not installed, not stable. */
#ifndef DLC_RUNNER_INTERNAL_H
#define DLC_RUNNER_INTERNAL_H

#include <sys/types.h>

#include "oci.h"
#include "runner.h"

#ifndef UNITTEST
#    define UNITTEST static
#endif

/* ---- layers.c: unpacking layer tarballs -------------------------------------------- */

enum layer_mode {
    /* Into an empty directory that becomes an overlayfs lower layer: whiteouts become
     * 0:0 character devices, opaque dirs get the overlay.opaque xattr, and no path may
     * go through a symlink. */
    LAYER_MODE_OVERLAY,
    /* Onto a rootfs holding the layers below (export-bundle): whiteouts delete, paths
     * resolve through symlinks but never leave the root. */
    LAYER_MODE_APPLY,
};

struct layer_unpack_opts {
    enum layer_mode mode;
    bool privileged; /* chown, device nodes and trusted.* xattrs (real root) */
    /* OVERLAY: the already unpacked layers below, topmost first, to refuse a path whose
     * implicit parent is a symlink there (it would silently shadow it). May be empty. */
    char *const *lower_dirs;
    size_t n_lower;
};

/* Unpacks the (optionally gzip/zstd compressed) tar blob into dest_dir, verifying that
 * sha256 of the uncompressed stream is diff_id (unless diff_id is NULL). EBADMSG on a
 * mismatch, EINVAL for a malicious or malformed entry (absolute name, "..", a path through
 * a symlink, a hardlink outside the layer); dest_dir is then left half-filled: callers
 * unpack into a temporary directory. */
int runner_layer_unpack(const char *blob_path, const char *diff_id, const char *dest_dir,
                        const struct layer_unpack_opts *opts, struct dlc_error **err);

/* Makes sure every layer of img is unpacked under <root>/layers/sha256/<hex> (verified,
 * atomically renamed into place, at most once across concurrent dlc processes). Returns
 * the directories bottom layer first. */
int runner_layers_prepare(struct oci_store *s, const struct oci_image *img, char ***ret_dirs,
                          struct dlc_error **err);

/* ---- util.c ------------------------------------------------------------------------ */

/* Real root in the initial user namespace (chown, mknod, trusted.* xattrs work). */
bool runner_privileged(void);

/* rm -rf that also copes with directories the owner made unwritable (overlay's work/work
 * is mode 000, container processes chmod things): retries after making dirs 0700. */
int runner_rm_tree(const char *path, struct dlc_error **err);

#endif
