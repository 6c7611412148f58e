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

/* ---- pyformat.c: Python's renderings, for the SageMaker contract -------------------- */

/* json.dumps(v) (compact=false: ", " and ": ") or json.dumps(v, separators=(",", ":"));
 * ensure_ascii, floats as Python's repr. Caller frees. */
char *runner_py_json(const json_t *v, bool compact, bool sort_keys);
/* The toolkit's command-line rendering of a hyperparameter value (mapping.to_cmd_args):
 * str(v), "k=v,..." for a dict, "" for None. Caller frees. */
char *runner_py_cmd_arg(const json_t *v);
/* str(v) of the Python value ("None", "True", "['a', 'b']", a str itself). Caller frees. */
char *runner_py_str(const json_t *v);
/* The keys of a JSON object (borrowed), sorted by code point if asked; free the array. */
const char **runner_json_keys(const json_t *obj, bool sort, size_t *ret_n);
/* json.loads(s), falling back to the string itself (environment.read_hyperparameters).
 * Never NULL; caller decrefs. */
json_t *runner_py_json_loads(const char *s);

/* ---- sagemaker.c ------------------------------------------------------------------- */

/* Writes hyperparameters.json, resourceconfig.json and inputdataconfig.json into dir. */
int runner_sm_write_config(const struct runner_sagemaker *sm, const char *dir, const char *nic,
                           struct dlc_error **err);
/* The SM_* variables ("SM_HOSTS=[\"algo-1\"]", ...) sorted by name, as the training
 * toolkit's Environment.to_env_vars() renders them; env is the container's environment
 * so far (SAGEMAKER_PROGRAM, TRAINING_JOB_NAME, ... are read from it). */
char **runner_sm_env(const struct runner_sagemaker *sm, char *const *env, const char *nic,
                     int num_cpus);

/* ---- util.c ------------------------------------------------------------------------ */

/* Real root in the initial user namespace (chown, mknod, trusted.* xattrs work). */
bool runner_privileged(void);

/* rm -rf that also copes with directories the owner made unwritable (overlay's work/work
 * is mode 000, container processes chmod things): retries after making dirs 0700. */
int runner_rm_tree(const char *path, struct dlc_error **err);

#endif
