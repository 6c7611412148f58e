/* runner.h: run images from the store in Linux namespaces, with the SageMaker training
 * contract (/opt/ml/...), docker's default confinement, cgroup limits, and the commands
 * around containers (ps, logs, stop, rm, export-bundle).
 *
 * Usage:
 *
 *     struct runner_spec *spec = runner_spec_new("tensor-runtime:1.0.0-cpu");
 *     struct dlc_error *err = NULL;
 *     spec->cmd = dlc_strv_push(NULL, "train");
 *     if (runner_spec_add_channel(spec, "training=/data/train", &err) < 0 ||   // EINVAL/ENOENT
 *         runner_spec_add_hp(spec, "optimizer=adam", &err) < 0)  // "\"adam\"" in the file
 *         ...
 *     spec->sm.model_dir = xstrdup("/tmp/model");
 *     spec->memory = 256 << 20;
 *
 *     struct runner_result res;
 *     if (runner_run(root, spec, &res, &err) < 0) {
 *         fprintf(stderr, "dlc: run: %s\n", err->msg);    // res.exit_code is 125, 126 or 127
 *         ...
 *     }
 *     // res.exit_code: the container's status (128+N for signal N); res.oom, res.timed_out
 *     runner_result_release(&res);
 *     runner_spec_free(spec);
 *
 * Layout under DLC_ROOT: layers/sha256/<hex>/ holds each layer unpacked once (verified
 * against its diff_id, whiteouts converted to overlayfs form); cache/seccomp/ the compiled
 * filters; containers/<id>/ a container's state.json (and log with detach). The writable
 * layer (overlay upper/work) is a tmpfs mounted over containers/<id> inside the container's
 * own mount namespace: it is gone when the container ends.
 *
 * A container: overlayfs root (image layers + per-container upper), namespaces mount, pid,
 * uts, ipc, net (none unless RUNNER_NET_HOST), cgroup and, when not root or asked, user;
 * pivot_root, fresh /proc, minimal /dev, read-only /sys, masked /proc paths; docker's
 * default capabilities, no_new_privs, a seccomp filter equivalent to docker's default
 * profile; a small init as pid 1 that forwards signals and reaps zombies.
 *
 * Errors: EINVAL for bad input (flags, hyperparameters, channel dirs), ENOENT for an
 * unknown image or container, EBUSY for a running container, EPROTO for a failure
 * inside the container's setup, EIO/errno for the rest. Messages name the thing.
 */
#ifndef DLC_RUNNER_H
#define DLC_RUNNER_H

#include <signal.h>
#include <sys/resource.h>

#include "common.h"

/* Exit codes (docker's convention) for failures before the container's command ran. */
#define RUNNER_EXIT_FAILED         125 /* dlc itself failed */
#define RUNNER_EXIT_NOT_EXECUTABLE 126 /* the command exists but cannot be executed */
#define RUNNER_EXIT_NOT_FOUND      127 /* the command was not found */

/* ---- the container spec: everything `dlc run` takes --------------------------------- */

enum runner_network {
    RUNNER_NET_NONE, /* a new network namespace with only loopback (the default) */
    RUNNER_NET_HOST, /* the host's network namespace */
};

/* A bind mount: -v SRC:DST[:ro], channels, the model dir, and (issue 7) read-only driver
 * libraries. The destination is resolved inside the container's root: a symlink in the
 * image can never redirect it to the host. */
struct runner_bind {
    char *source;      /* host path, absolute */
    char *destination; /* path inside the container, absolute */
    bool readonly;
};

/* A device node made available in the container's /dev (issue 7: GPUs). With host_path
 * the host node is bind-mounted; otherwise (real root only) it is created with mknod. */
struct runner_device {
    char *path;      /* in the container: "/dev/nvidia0" */
    char *host_path; /* may be NULL */
    char type;       /* 'c' or 'b' */
    unsigned major, minor;
    mode_t mode;    /* permission bits, e.g. 0666 */
    char access[4]; /* device cgroup access, "rwm" when empty (issue 7: CDI permissions) */
};

/* A small file written into the container before it starts (issue 7: OpenCL .icd files). */
struct runner_file {
    char *path; /* in the container, absolute */
    char *content;
    size_t len;
    mode_t mode;
};

/* --ulimit NAME=SOFT[:HARD]; never raised above the caller's hard limit. */
struct runner_rlimit {
    int resource; /* RLIMIT_NOFILE, ... */
    rlim_t soft, hard;
};

struct runner_channel {
    char *name; /* "training": [A-Za-z0-9_.-]+ */
    char *dir;  /* host directory, mounted read-only at /opt/ml/input/data/<name> */
};

/* The SageMaker side of a run: channels, the /opt/ml dirs, hyperparameters. */
struct runner_sagemaker {
    struct runner_channel *channels;
    size_t n_channels;
    char *model_dir;      /* host dir -> /opt/ml/model (rw), or NULL */
    char *output_dir;     /* host dir -> /opt/ml/output (rw), or NULL */
    char *code_dir;       /* host dir -> /opt/ml/code (ro), or NULL */
    char *checkpoint_dir; /* host dir -> /opt/ml/checkpoints (rw), or NULL */
    /* hyperparameters.json, values already encoded as the SDK writes them ("10",
     * "\"adam\""): use runner_spec_add_hp / runner_spec_load_hp_file. */
    char **hp_keys;
    char **hp_values;
    size_t n_hps;
    int num_gpus; /* SM_NUM_GPUS (issue 7 fills it) */
};

struct runner_container; /* a running container, as seen by hooks */

/* Extension points for later features (issue 8: `dlc serve` and -p port publishing). They
 * run in the process that monitors the container (the foreground dlc, or the background
 * monitor with detach). */
struct runner_hooks {
    /* Called once the container's command has started. <0 stops the container. */
    int (*started)(struct runner_container *c, void *data, struct dlc_error **err);
    /* Called after the container ended (its namespaces are gone). */
    void (*stopped)(struct runner_container *c, void *data);
    void *data;
};

/* An extra file descriptor the run loop polls; cb returns <0 to stop the container. */
struct runner_poll_source {
    int fd;
    short events;
    int (*cb)(struct runner_container *c, int fd, short revents, void *data);
    void *data;
};

struct runner_spec {
    char *image;       /* reference in the store */
    char *name;        /* --name (unique), or NULL */
    char **cmd;        /* replaces the image's Cmd when not NULL */
    char **entrypoint; /* replaces the image's Entrypoint when entrypoint_set */
    bool entrypoint_set;
    char **env;     /* "K=V", after the image's env (later entries win) */
    char *user;     /* "name", "uid", "uid:gid", "name:group"; NULL: the image's */
    char *workdir;  /* NULL: the image's, else "/" */
    char *hostname; /* NULL: the short id ("algo-1" when training) */
    bool training;  /* `dlc train`: hostname algo-1 */
    enum runner_network network;
    bool read_only; /* read-only root, tmpfs /tmp */
    bool remove;    /* --rm */
    bool detach;    /* -d: run in the background, output to containers/<id>/log */
    bool userns;    /* --userns (implied when not root) */
    bool seccomp_unconfined;
    char **cap_add; /* "NET_ADMIN", "CAP_NET_ADMIN" or "ALL" */
    char **cap_drop;
    uint64_t memory;    /* bytes, 0: no limit */
    uint64_t cpu_milli; /* --cpus 1.5 -> 1500, 0: no limit */
    int64_t pids_limit; /* 0: no limit */
    int stop_timeout;   /* seconds between the stop signal and SIGKILL (default 10) */
    int timeout;        /* maximum run time in seconds, 0: none */
    struct runner_rlimit *rlimits;
    size_t n_rlimits;
    struct runner_bind *binds;
    size_t n_binds;
    struct runner_device *devices;
    size_t n_devices;
    struct runner_file *files;
    size_t n_files;
    struct runner_sagemaker sm;
    struct runner_poll_source *polls;
    size_t n_polls;
    struct runner_hooks hooks;
};

/* A spec for image (copied) with the defaults. Never NULL. */
struct runner_spec *runner_spec_new(const char *image);
void runner_spec_free(struct runner_spec *spec);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct runner_spec *, runner_spec_free)

/* Adders copy their arguments. */
void runner_spec_add_bind(struct runner_spec *spec, const char *source, const char *destination,
                          bool readonly);
void runner_spec_add_device(struct runner_spec *spec, const struct runner_device *dev);
void runner_spec_add_file(struct runner_spec *spec, const char *path, const void *content,
                          size_t len, mode_t mode);
void runner_spec_add_env(struct runner_spec *spec, const char *kv);
void runner_spec_add_poll(struct runner_spec *spec, const struct runner_poll_source *src);

/* Parsers for the flags that carry syntax; EINVAL naming the flag on bad input. */
/* -v SRC:DST[:ro|:rw]; SRC must exist. */
int runner_spec_parse_volume(struct runner_spec *spec, const char *arg, struct dlc_error **err);
/* --channel NAME=DIR; DIR must be a directory, NAME unique. */
int runner_spec_add_channel(struct runner_spec *spec, const char *arg, struct dlc_error **err);
/* --env-file FILE: K=V lines, '#' comments, a bare K takes the caller's value. */
int runner_spec_load_env_file(struct runner_spec *spec, const char *path, struct dlc_error **err);
/* --ulimit nofile=1024[:4096]. */
int runner_spec_parse_ulimit(struct runner_spec *spec, const char *arg, struct dlc_error **err);
/* --hp K=V: V that is JSON (10, 0.1, true, [1,2], "x") is kept as that JSON value, anything
 * else is a string; stored as the SDK writes it (json.dumps of the value). */
int runner_spec_add_hp(struct runner_spec *spec, const char *arg, struct dlc_error **err);
/* --hyperparameters FILE.json: an object of typed values, as passed to an Estimator. */
int runner_spec_load_hp_file(struct runner_spec *spec, const char *path, struct dlc_error **err);
/* --cpus 1.5 -> 1500. */
int runner_parse_cpus(const char *s, uint64_t *ret_milli, struct dlc_error **err);

/* ---- running ---------------------------------------------------------------------- */

struct runner_result {
    char id[65];     /* the container's id (64 hex) */
    int exit_code;   /* 0..255: the container's, 128+N for signal N, or RUNNER_EXIT_* */
    int signal;      /* the signal that ended the command, 0 if it exited */
    bool oom;        /* killed by the memory cgroup's OOM killer */
    uint64_t memory; /* the limit, for the OOM message */
    bool timed_out;  /* stopped because --timeout passed */
    char *failure;   /* `dlc train`: the first 1024 chars of /opt/ml/output/failure */
};
void runner_result_release(struct runner_result *res);

/* Runs spec->image. Returns 0 when the container ran (res describes how it ended; with
 * spec->detach, once it started), -1 with err when it could not be run; then
 * res->exit_code is 125, or 126/127 when the command could not be executed. Nothing is
 * left in containers/ after a failure. */
int runner_run(const char *root, struct runner_spec *spec, struct runner_result *res,
               struct dlc_error **err);

/* `dlc train`: runs spec (cmd defaults to "train", hostname algo-1) with model and output
 * dirs under a scratch dir, then packs out_dir/model.tar.gz and out_dir/output.tar.gz and
 * reads the failure reason into res->failure. Same return convention as runner_run. */
int runner_train(const char *root, struct runner_spec *spec, const char *out_dir,
                 struct runner_result *res, struct dlc_error **err);

/* For hooks and poll sources: the container's init as seen from the host, and an fd of its
 * network namespace (owned by the container; valid until it ends, as root and rootless:
 * it is opened right after clone, before the init stops being dumpable). */
pid_t runner_container_pid(const struct runner_container *c);
int runner_container_netns_fd(const struct runner_container *c);
const char *runner_container_id(const struct runner_container *c);
/* Asks the run loop to stop the container (stop signal, then SIGKILL after the timeout). */
void runner_container_stop(struct runner_container *c);

/* ---- containers ------------------------------------------------------------------- */

enum runner_state { RUNNER_STATE_RUNNING, RUNNER_STATE_EXITED };

struct runner_info {
    char id[65];
    char *name;
    char *image;
    char **command;
    enum runner_state state;
    int exit_code;    /* valid when exited; -1 if unknown (its monitor was killed) */
    int64_t created;  /* unix seconds */
    int64_t finished; /* unix seconds, 0 while running */
    pid_t pid;        /* init's host pid while running */
    bool detached;    /* output went to the log */
};
/* Frees what one runner_info holds (runner_find's result) and zeroes it; the struct itself
 * is the caller's. */
void runner_info_release(struct runner_info *in);
/* Frees an array of n (runner_list's result). */
void runner_infos_free(struct runner_info *infos, size_t n);

/* Lists containers (running only unless all), oldest first. Cleans up stale state left by a
 * dlc that was killed (removes --rm containers, marks the others exited). */
int runner_list(const char *root, bool all, struct runner_info **ret, size_t *ret_n,
                struct dlc_error **err);
/* Finds a container by id, unique id prefix or name; ENOENT if none, EINVAL if ambiguous.
 * Release *ret with runner_info_release. */
int runner_find(const char *root, const char *id_or_name, struct runner_info *ret,
                struct dlc_error **err);
/* Copies a detached container's log to fd; with follow, until the container ends. EINVAL
 * for a container that ran in the foreground (its output went to the terminal). */
int runner_logs(const char *root, const char *id_or_name, bool follow, int fd,
                struct dlc_error **err);
/* Sends the stop signal, waits up to timeout seconds (negative: the container's
 * --stop-timeout), then SIGKILL; waits for the end. */
int runner_stop(const char *root, const char *id_or_name, int timeout, struct dlc_error **err);
/* Removes a stopped container (EBUSY if running unless force, which kills it first). */
int runner_remove(const char *root, const char *id_or_name, bool force, struct dlc_error **err);

/* Writes an OCI runtime bundle for spec->image into dir (which must not exist or be empty):
 * rootfs/ (layers applied with whiteouts) and config.json with the same process, mounts,
 * namespaces, capabilities, masked paths and seccomp profile as runner_run uses, so
 * runc/crun run it unchanged. Uses image, cmd, entrypoint, env, user, workdir, hostname,
 * network, read_only, cap_add/cap_drop, seccomp_unconfined of spec. */
int runner_export_bundle(const char *root, const struct runner_spec *spec, const char *dir,
                         struct dlc_error **err);

/* ---- GPU passthrough (issue 7: runner/src/gpu*.c, cdi*.c) ------------------------------
 *
 *     struct runner_gpu_request req = {.gpus = "all", .devices = NULL, .driver_root = NULL};
 *     if (runner_gpu_apply(spec, &req, &err) < 0)        // before runner_run()
 *         ...                                            // "--gpus 3: unknown GPU '3' ..."
 *
 * Discovery looks only under the driver root (--driver-root, else $DLC_DRIVER_ROOT, else
 * "/"): NVIDIA (/proc/driver/nvidia, /dev/nvidia*, version-matched driver libraries from
 * its ld.so.cache, nvidia-smi), AMD (/dev/kfd, /dev/dri/renderD*), OpenCL ICDs
 * (/etc/OpenCL/vendors/<name>.icd, each library with its DT_NEEDED closure). CDI specs come
 * from $DLC_CDI_SPEC_DIRS (colon list), else /etc/cdi and /var/run/cdi. GPU selection comes
 * only from the request, never from the image's environment. */

struct runner_gpu_request {
    const char *gpus;        /* --gpus: "all", "none", "0,1", GPU UUIDs, PCI bus ids; NULL */
    char **devices;          /* --device: "/dev/X[:/dev/Y]" or CDI "vendor.com/class=name" */
    const char *driver_root; /* NULL: $DLC_DRIVER_ROOT, else "/" */
};

/* Adds what req asks for to spec: spec->devices (the runner allows each in the device
 * cgroup), read-only binds of the libraries into /usr/lib/dlc-gpu, .icd files, env
 * (LD_LIBRARY_PATH, CDI env) and spec->sm.num_gpus. Nothing when req asks for nothing.
 * EINVAL for a bad selector or --device, ENOENT for an unknown CDI device or a missing
 * required driver piece, ENODEV for --gpus all on a host with nothing to pass. */
int runner_gpu_apply(struct runner_spec *spec, const struct runner_gpu_request *req,
                     struct dlc_error **err);

/* What this host offers (`dlc info`). */
struct runner_gpu_info {
    char *vendor;                /* "nvidia", "amd" */
    char *model, *uuid, *bus_id; /* each may be NULL */
    char *node;                  /* "/dev/nvidia0", "/dev/dri/renderD128" */
};
struct runner_icd_info {
    char *name;     /* "pocl" */
    char *file;     /* host path of the .icd file */
    char *library;  /* as the file names it */
    char *lib_path; /* resolved host path, or NULL */
    size_t n_libs;  /* libraries injected (the closure), 0 for NVIDIA's (driver libraries) */
    char *problem;  /* why it cannot be passed through, or NULL */
};
struct runner_cdi_info {
    char *name; /* "vendor.com/class=name" */
    char *spec; /* the spec file defining it */
};
struct runner_host_info {
    char *driver_root;
    char *nvidia_version;         /* NULL without the NVIDIA kernel module */
    struct runner_gpu_info *gpus; /* index = --gpus index */
    size_t n_gpus;
    struct runner_icd_info *icds;
    size_t n_icds;
    char **cdi_dirs;
    struct runner_cdi_info *cdi;
    size_t n_cdi;
    char **warnings;     /* discovery problems (unreadable files, broken ICDs), or NULL */
    char **cdi_problems; /* specs that could not be used, or NULL */
};
int runner_host_info(const char *driver_root, struct runner_host_info **ret,
                     struct dlc_error **err);
void runner_host_info_free(struct runner_host_info *info);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct runner_host_info *, runner_host_info_free)

/* `dlc cdi generate`: a CDI spec (pretty JSON, caller frees) of kind (NULL:
 * "dlc.local/gpu") with a device per GPU (index and UUID), per usable OpenCL ICD
 * ("opencl-<name>") and "all". Files the spec needs that the host lacks (pocl's linker
 * scripts) are written into aux_dir and mounted from there (aux_dir NULL: left out, with a
 * warning). ENODEV when the host has nothing to offer. */
int runner_cdi_generate(const char *driver_root, const char *kind, const char *aux_dir,
                        char **ret_json, struct dlc_error **err);

/* ---- published ports: -p (runner/src/publish*.c, issue 8) ---------------------------- */

/* `-p [ADDR:]HOSTPORT:CONTAINERPORT` without bridges or iptables: dlc listens on the host
 * (ADDR defaults to 127.0.0.1; "[::1]" for IPv6; HOSTPORT empty or 0, or CONTAINERPORT
 * alone, picks a free port) and connects each accepted connection to
 * 127.0.0.1:CONTAINERPORT inside the container's network namespace (through a helper
 * process that joined it, and its user namespace when rootless), relaying both ways.
 *
 *     struct runner_ports *ports = runner_ports_new();
 *     if (runner_ports_add(ports, "8080:8080", &err) < 0 ||   // listens now: EADDRINUSE
 *         runner_ports_attach(ports, spec, &err) < 0)        // poll sources for the run loop
 *         ...
 *     printf("%s\n", runner_ports_host(ports, 0));           // "127.0.0.1:8080"
 *     runner_run(root, spec, &res, &err);
 *     runner_ports_free(ports);                               // after runner_run returns
 *
 * The ports must outlive runner_run. With spec->detach the -d monitor (a fork) relays. */
struct runner_ports;
struct runner_ports *runner_ports_new(void);
/* Parses one -p value and listens on it. EINVAL naming the flag, or the bind error. */
int runner_ports_add(struct runner_ports *p, const char *arg, struct dlc_error **err);
/* Adds a poll source per port to spec (EINVAL with --network host). p may be NULL. */
int runner_ports_attach(struct runner_ports *p, struct runner_spec *spec, struct dlc_error **err);
size_t runner_ports_count(const struct runner_ports *p);
/* The i-th port as bound ("127.0.0.1:8080", "[::1]:8080"; borrowed), and its numbers. */
const char *runner_ports_host(const struct runner_ports *p, size_t i);
uint16_t runner_ports_host_port(const struct runner_ports *p, size_t i);
uint16_t runner_ports_container_port(const struct runner_ports *p, size_t i);
/* Connections being relayed now (in this process). */
size_t runner_ports_connections(const struct runner_ports *p);
/* Stops relaying, closes the listeners. NULL-safe. */
void runner_ports_free(struct runner_ports *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct runner_ports *, runner_ports_free)

/* ---- serving helpers (runner/src/serve.c, issue 8: `dlc serve`) ----------------------- */

/* Unpacks a model.tar.gz (as `dlc train` writes it) into a new directory under $TMPDIR
 * (mode 0755, returned; the caller removes it), refusing entries that would leave it.
 * EINVAL when it holds no model.json at its top. */
int runner_model_unpack(const char *tarball, char **ret_dir, struct dlc_error **err);
/* GET path from "ADDR:PORT" (as runner_ports_host() writes it) over HTTP/1.0 within
 * timeout_ms: *ret_status is the status code, or 0 when the connection closed without an
 * answer (nothing listens behind a published port yet). */
int runner_http_status(const char *host_port, const char *path, int timeout_ms, int *ret_status,
                       struct dlc_error **err);
/* The last lines of a detached container's log (caller frees). */
int runner_log_tail(const char *root, const char *id, size_t lines, char **ret,
                    struct dlc_error **err);

#endif
