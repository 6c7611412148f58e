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

/* The contents of hyperparameters.json, resourceconfig.json and inputdataconfig.json
 * (in that order, as runner_sm_config_names lists them). Caller frees each. */
#define RUNNER_SM_CONFIG_FILES 3
void runner_sm_config_files(const struct runner_sagemaker *sm, const char *nic,
                            char *ret[RUNNER_SM_CONFIG_FILES]);
/* The SM_* variables ("SM_HOSTS=[\"algo-1\"]", ...) sorted by name, as the training
 * toolkit's Environment.to_env_vars() renders them; env is the container's environment
 * so far (SAGEMAKER_PROGRAM, TRAINING_JOB_NAME, ... are read from it). */
char **runner_sm_env(const struct runner_sagemaker *sm, char *const *env, const char *nic,
                     int num_cpus);

/* ---- caps.c --------------------------------------------------------------------------- */

/* The highest capability this kernel knows. */
int runner_cap_last(void);
/* docker's default set, less --cap-drop, plus --cap-add (EINVAL for unknown names). */
int runner_caps_compute(const struct runner_spec *spec, uint64_t *ret, struct dlc_error **err);
/* "CAP_CHOWN", ... for the set. Caller frees. */
char **runner_caps_names(uint64_t caps);
/* Drops everything outside caps from the bounding set, clears ambient capabilities. */
int runner_caps_drop_bounding(uint64_t caps, struct dlc_error **err);
/* Permitted and effective: caps for uid 0, none for other users; inheritable: none. */
int runner_caps_apply(uint64_t caps, uid_t uid, struct dlc_error **err);

/* ---- seccomp.c ----------------------------------------------------------------------- */

struct runner_bpf {
    char *prog; /* struct sock_filter[] */
    size_t len; /* bytes */
};
/* The compiled filter for caps (from the cache under root/cache/seccomp when there). */
int runner_seccomp_prepare(const char *root, uint64_t caps, struct runner_bpf *ret,
                           struct dlc_error **err);
/* Installs it (no_new_privs must be set). -1 with errno. Async-signal-safe. */
int runner_seccomp_load(const struct runner_bpf *bpf);
void runner_bpf_release(struct runner_bpf *bpf);
/* The profile as an OCI runtime-spec linux.seccomp object. */
json_t *runner_seccomp_oci_json(uint64_t caps);

/* ---- cgroups.c ---------------------------------------------------------------------- */

enum { CG_MEMORY, CG_CPU, CG_PIDS, CG_MAX };

struct runner_cgroup {
    int version;         /* 0: none (no limits asked), 1 or 2 */
    char *paths[CG_MAX]; /* v1: one directory per controller used; v2: paths[0] */
};
/* Creates the container's cgroup with spec's limits (nothing when there are none).
 * ENOTSUP/EACCES with a hint when limits cannot be applied. */
int runner_cgroup_create(const struct runner_spec *spec, const char *id, struct runner_cgroup *cg,
                         struct dlc_error **err);
int runner_cgroup_attach(const struct runner_cgroup *cg, pid_t pid, struct dlc_error **err);
bool runner_cgroup_oom_killed(const struct runner_cgroup *cg);
/* The cgroup this process is in (from /proc/self/cgroup) for a v1 controller ("memory",
 * also found in a joint "cpu,cpuacct" hierarchy), or v2 ("" controller); "/" when unknown.
 * Caller frees. */
char *runner_cgroup_own(const char *controller);
/* Kills leftovers, removes the directories, frees the paths. */
void runner_cgroup_destroy(struct runner_cgroup *cg);

/* ---- devcgroup.c (issue 7): the device cgroup ------------------------------------------ */

struct runner_devcgroup {
    int version;  /* 0: none (rootless), 1 or 2 */
    char *path;   /* v1: the container's devices cgroup; v2: the cgroup the program is on */
    bool own_dir; /* path was created here (attach the pid to it, remove it at the end) */
    int prog_fd;  /* v2: the attached BPF program, -1 otherwise */
};
/* Allows the container docker's default devices and spec->devices only, before its init
 * runs: call after runner_cgroup_create (cg may be version 0) and before the child goes
 * on; attach its pid like runner_cgroup_attach; destroy after it ended. Nothing (an info
 * line) when not real root. */
int runner_devcgroup_create(const struct runner_spec *spec, const char *id,
                            const struct runner_cgroup *cg, struct runner_devcgroup *dc,
                            struct dlc_error **err);
int runner_devcgroup_attach(const struct runner_devcgroup *dc, pid_t pid, struct dlc_error **err);
void runner_devcgroup_destroy(struct runner_devcgroup *dc);
/* The v2 program for spec, attached to the cgroup directory cgroup_fd (for tests). */
int runner_devcgroup_bpf_attach(int cgroup_fd, const struct runner_spec *spec, int *ret_prog,
                                struct dlc_error **err);

/* ---- user.c ---------------------------------------------------------------------------- */

#define RUNNER_MAX_GROUPS 64

struct runner_user {
    uid_t uid;
    gid_t gid;
    gid_t groups[RUNNER_MAX_GROUPS]; /* supplementary */
    size_t n_groups;
    char *home;
    char *name; /* NULL for a uid without a passwd entry */
};
/* Resolves "name", "uid", "uid:gid", "name:group" against /etc/passwd and /etc/group of
 * root (NULL: the current root, after pivot_root; else a rootfs on the host, read with
 * symlinks resolved inside it). EINVAL for unknown names. */
int runner_user_resolve(const char *root, const char *spec, struct runner_user *u,
                        struct dlc_error **err);
void runner_user_release(struct runner_user *u);

/* ---- the container being started: what the host prepares for the child ---------------- */

/* A directory (content NULL) or file the writable layer starts with. */
struct upper_entry {
    char *path; /* relative to the container's root: "etc/hosts" */
    char *content;
    mode_t mode;
};

struct container_config {
    const struct runner_spec *spec;
    char id[65];
    const char *root;   /* DLC_ROOT */
    char *dir;          /* containers/<id> */
    char *rootfs;       /* dir/rootfs: the overlay mount point */
    char *upper, *work; /* in a tmpfs the child mounts on dir, in its own namespace */
    struct upper_entry *upper_entries; /* written into upper before the overlay is mounted */
    size_t n_upper_entries;
    char **lowers;  /* layer directories, bottom first */
    bool userns;    /* a new user namespace (rootless or --userns) */
    bool netns;     /* a new network namespace */
    bool cgroupns;  /* unshare the cgroup namespace once placed in the cgroup */
    bool pdeathsig; /* die with the monitor */
    char **args;    /* entrypoint + cmd */
    char **env;
    char *cwd;
    char *user; /* unresolved: resolved inside the container */
    char *hostname;
    uint64_t caps;
    struct runner_bpf bpf; /* empty: --security-opt seccomp=unconfined */
    int sync_fd;           /* the child reads one byte to go on (EOF: the monitor died) */
    int err_fd;            /* the child reports setup failures here (CLOEXEC) */
};

/* A container as its monitor (the foreground dlc, or the background one with -d) sees it;
 * the public opaque type handed to hooks. */
struct runner_container {
    struct container_config cfg;
    const struct runner_spec *spec;
    char *name;
    char **command; /* for ps */
    int64_t created;
    int lockfd; /* flock on containers/<id>, held for the container's whole life */
    pid_t pid;  /* init, as seen from the host */
    int pidfd;
    int netns_fd;
    int sync_wr, err_rd;
    struct runner_cgroup cg;
    struct runner_devcgroup dev; /* issue 7: devcgroup.c */
    int stop_signal;
    bool detached;
    bool stopping; /* the stop signal was sent, SIGKILL follows after stop_timeout */
    bool timed_out;
    bool stop_asked; /* runner_container_stop() from a hook */
    int notify_fd;   /* -d: tells the waiting dlc "S<id>" or "E<code> <message>" */
};

/* monitor.c: runs the loop until the container's init exits (leaving it unreaped). */
struct run_outcome {
    bool started;    /* the command was exec'd */
    bool exited;     /* init ended: status is valid */
    int status;      /* init's exit code, or 128+N when it was killed by signal N */
    int init_signal; /* N when init itself was killed */
    int setup_code;  /* 0, or 125/126/127 when the child reported setup_msg */
    char *setup_msg;
};
int runner_monitor(struct runner_container *ct, struct run_outcome *o, struct dlc_error **err);

/* init.c: the signals dlc forwards to the container (and blocks while monitoring). */
void runner_signals_forwarded(sigset_t *set);

/* container.c: docker's rule: args = Entrypoint + Cmd; a COMMAND replaces Cmd;
 * --entrypoint replaces the Entrypoint and drops the image's Cmd. EINVAL when empty. */
int runner_build_args(const struct runner_spec *spec, const struct oci_image_config *cfg,
                      char ***ret, struct dlc_error **err);
/* mounts.c: docker's masked and read-only paths (NULL-terminated). */
extern const char *const runner_masked_paths[];
extern const char *const runner_readonly_paths[];

/* mounts.c: everything between the new mount namespace and pivot_root; leaves the process
 * in the container's root. */
int runner_mounts_setup(const struct container_config *c, struct dlc_error **err);

/* init.c: the container side. Never returns: reports a setup failure on err_fd as
 * "<exit code> <message>" and exits; otherwise becomes pid 1 and exits with the command's
 * status (128+N for signal N). */
DLC_NORETURN void runner_container_main(struct container_config *c);

/* namespaces.c */
/* clone3 into new namespaces (fork semantics); ret_pidfd gets a pidfd of the child. */
pid_t runner_clone(const struct container_config *c, int *ret_pidfd, struct dlc_error **err);
/* Writes the uid/gid maps of a child in a new user namespace: the caller becomes root
 * inside (rootless: its one id; root with --userns: the identity map of all ids). */
int runner_userns_map(pid_t pid, struct dlc_error **err);
/* Brings up lo in the current (new) network namespace. */
int runner_netns_loopback_up(struct dlc_error **err);

/* ---- state.c: containers/<id>/ ------------------------------------------------------------ */

/* Creates containers/<id> (locked, name reserved) for ct; fills ct->cfg.id/dir. */
int runner_state_create(const char *root, struct runner_container *ct, struct dlc_error **err);
/* Writes state.json ("running" or "exited"). */
int runner_state_write(const char *root, const struct runner_container *ct, const char *state,
                       int exit_code, struct dlc_error **err);
/* Removes containers/<id> of a container this process created (unlocks it). */
void runner_state_remove(struct runner_container *ct);
/* Cleans up after dlc processes that were killed (see runner_list). */
void runner_state_cleanup_stale(const char *root);

/* ---- train.c --------------------------------------------------------------------------- */

/* dest = a gzip tar of dir's contents (sorted), written atomically. */
int runner_pack_dir(const char *dir, const char *dest, struct dlc_error **err);

/* ---- util.c ------------------------------------------------------------------------ */

/* Real root in the initial user namespace (chown, mknod, trusted.* xattrs work). */
bool runner_privileged(void);

/* rm -rf that also copes with directories the owner made unwritable (overlay's work/work
 * is mode 000, container processes chmod things): retries after making dirs 0700. */
int runner_rm_tree(const char *path, struct dlc_error **err);

#endif
