/* gpu.h: what the GPU passthrough files of the runner share (issue 7). Not installed.
 *
 *     gpu-libs.c    libraries found inside the driver root, their closures
 *     gpu.c         host discovery, --gpus selection, the injection plan
 *     gpu-nvidia.c  NVIDIA: /proc/driver/nvidia, nodes, version-matched driver libraries
 *     gpu-amd.c     AMD: /dev/kfd and the render nodes
 *     gpu-opencl.c  vendor ICDs from /etc/OpenCL/vendors with their library closures
 *     cdi.c         CDI specs (/etc/cdi, /var/run/cdi): loading, edits, generation
 *     gpu-apply.c   copying a plan into a runner_spec
 *
 * Discovery never touches the host outside the driver root ("/" unless --driver-root or
 * DLC_DRIVER_ROOT say otherwise), so tests build a fake root with fake nodes, a real
 * ld.so.cache and stub libraries. Everything discovered is a host path under that root;
 * everything the plan names on the container side is resolved by the runner inside the
 * container's root. */
#ifndef DLC_RUNNER_GPU_H
#define DLC_RUNNER_GPU_H

#include <sys/stat.h>

#include "runner.h"

/* Where injected libraries go inside the container (put on LD_LIBRARY_PATH), so the
 * container's own ld.so.cache is never rewritten (no ldconfig run inside the container). */
#define GPU_LIB_DIR "/usr/lib/dlc-gpu"

/* Linker scripts and static pieces for pocl's kernel linking (gpu-pocl.c). */
#define GPU_LD_DIR GPU_LIB_DIR "/ld"

#define NVIDIA_MAJOR      195
#define NVIDIA_CTL_MINOR  255
#define DRM_MAJOR         226
#define DRM_RENDER_MINOR0 128

/* ---- gpu-libs.c (the ld.so.cache and ELF readers are common's) ------------------- */

/* Libraries of the C library itself: never injected (they must match the container's
 * dynamic loader). */
bool gpu_lib_is_libc(const char *soname);

/* Finds a library by name as the dynamic loader would, but inside root: through the ld
 * cache (exact key), then the default directories. Returns the host path of the real file
 * (symlinks resolved inside root), NULL when not found or not of this ABI. */
char *gpu_lib_find(const struct dlc_ldcache *c, const char *root, const char *name);

/* One library of a closure: the real file on the host and the names the container needs
 * (the soname, and the name it was asked by when different). */
struct gpu_lib {
    char *host_path;
    char *soname;
    char *alias; /* NULL or the requested name when it differs from soname */
};
/* The closure of host_path (itself first), following DT_NEEDED through the ld cache, the
 * default directories and DT_RUNPATH/DT_RPATH ($ORIGIN expanded inside root), skipping
 * the C library. ENOENT naming the missing soname and who needs it. */
int gpu_lib_closure(const struct dlc_ldcache *c, const char *root, const char *host_path,
                    const char *asked_name, struct gpu_lib **ret, size_t *ret_n,
                    struct dlc_error **err);
void gpu_libs_free(struct gpu_lib *libs, size_t n);

/* ---- discovery (gpu.c, gpu-nvidia.c, gpu-amd.c, gpu-opencl.c) --------------------- */

/* stat(2) of host device nodes; a test replaces it to fake character devices. */
extern int (*gpu_stat_node)(const char *path, struct stat *st);

struct gpu_dev {
    char *vendor; /* "nvidia" or "amd" */
    char *model;  /* may be NULL */
    char *uuid;   /* "GPU-..." (NVIDIA) or NULL */
    char *bus_id; /* "0000:3b:00.0" or NULL */
    char *node;   /* its per-GPU node inside the driver root's /dev: "/dev/nvidia0" */
    unsigned major, minor;
};

struct gpu_icd {
    char *name;           /* "pocl" for pocl.icd */
    char *file;           /* host path of the .icd file */
    char *library;        /* its first line, as written: "libpocl.so.2.10.0" or an absolute path */
    char *lib_path;       /* host path of the library (resolved), NULL when not found */
    char *problem;        /* why it cannot be injected (missing library or dependency), or NULL */
    struct gpu_lib *libs; /* closure, the library first */
    size_t n_libs;
    char **data_dirs;  /* host dirs the vendor library reads beside itself (pocl's) */
    char **data_dests; /* where each goes in the container */
    bool toolchain;    /* pocl: its linker is among the data (gpu-pocl.c) */
};

struct gpu_host {
    char *root;                  /* driver root, without trailing slash ("/" for the host) */
    struct dlc_ldcache *ldcache; /* <root>/etc/ld.so.cache, this ABI's entries */
    /* NVIDIA */
    char *nv_version;   /* kernel module version from proc/driver/nvidia/version, or NULL */
    unsigned uvm_major; /* "nvidia-uvm" in proc/devices, 0 if absent */
    /* AMD */
    unsigned kfd_major; /* from dev/kfd, 0 if absent */
    /* every GPU: NVIDIA (PCI order) then AMD (render node order); index = position */
    struct gpu_dev *gpus;
    size_t n_gpus;
    struct gpu_icd *icds; /* sorted by file name */
    size_t n_icds;
    char **warnings; /* things that looked wrong (for dlc info and the debug log) */
};

/* The driver root: root if not NULL, else $DLC_DRIVER_ROOT, else "/". EINVAL when it is
 * not an absolute path to a directory. */
int gpu_driver_root(const char *root, char **ret, struct dlc_error **err);
int gpu_host_discover(const char *root, struct gpu_host **ret, struct dlc_error **err);
void gpu_host_free(struct gpu_host *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gpu_host *, gpu_host_free)
void gpu_host_warn(struct gpu_host *h, const char *fmt, ...) DLC_PRINTF(2, 3);

int gpu_nvidia_discover(struct gpu_host *h, struct dlc_error **err);
int gpu_amd_discover(struct gpu_host *h, struct dlc_error **err);
int gpu_opencl_discover(struct gpu_host *h, struct dlc_error **err);

/* Reads a small text file under the host root ("proc/devices"); NULL if missing. */
char *gpu_read_host_file(const struct gpu_host *h, const char *rel);
/* The major of a character driver named name in root/proc/devices, 0 if absent. */
unsigned gpu_proc_devices_major(const struct gpu_host *h, const char *name);

/* ---- the plan: what a container gets ------------------------------------------------ */

struct gpu_plan {
    struct runner_device *devices;
    size_t n_devices;
    struct runner_bind *binds; /* libraries and data, read-only */
    size_t n_binds;
    struct runner_file *files; /* .icd files */
    size_t n_files;
    char **env;      /* "K=V" */
    char **lib_dirs; /* container dirs for LD_LIBRARY_PATH, in order */
    int num_gpus;    /* SM_NUM_GPUS: the per-GPU nodes (/dev/nvidiaN, /dev/dri/renderDN) */
    bool for_cdi;    /* building a CDI spec: no files (mount the host's .icd instead) */
    /* for_cdi: where files the spec needs are written on the host (then mounted); NULL:
     * such files are left out with a warning. */
    const char *aux_dir;
};

void gpu_plan_release(struct gpu_plan *p);
/* Adders refuse conflicts (EINVAL: one container path, two different sources) and skip
 * exact duplicates. */
int gpu_plan_add_device(struct gpu_plan *p, const struct runner_device *d, struct dlc_error **err);
int gpu_plan_add_mount(struct gpu_plan *p, const char *host, const char *container, bool readonly,
                       struct dlc_error **err);
/* A read-only mount. */
int gpu_plan_add_bind(struct gpu_plan *p, const char *host, const char *container,
                      struct dlc_error **err);
int gpu_plan_add_file(struct gpu_plan *p, const char *path, const char *content,
                      struct dlc_error **err);
void gpu_plan_add_env(struct gpu_plan *p, const char *kv);
void gpu_plan_add_lib_dir(struct gpu_plan *p, const char *dir);
/* Binds a closure into GPU_LIB_DIR (each library under its soname and alias). */
int gpu_plan_add_libs(struct gpu_plan *p, const struct gpu_lib *libs, size_t n,
                      struct dlc_error **err);

/* A host device node at host_path (absolute, already under the root) for container path
 * cpath: EINVAL unless it is a character or block device (and, when want_major is not 0,
 * has exactly that major:minor). */
int gpu_plan_add_node(struct gpu_plan *p, const char *host_path, const char *cpath,
                      unsigned want_major, unsigned want_minor, struct dlc_error **err);

/* Parses --gpus: "all", "none", or a comma list of indexes, GPU UUIDs and PCI bus ids
 * ("device=" prefix allowed). Sets sel[i] for the chosen GPUs of h. EINVAL "unknown GPU
 * 'x'" for a token that names none. *ret_all is set for "all". */
int gpu_select(const struct gpu_host *h, const char *arg, bool *sel, bool *ret_all,
               struct dlc_error **err);

int gpu_nvidia_plan(struct gpu_plan *p, const struct gpu_host *h, const bool *sel,
                    struct dlc_error **err);
int gpu_amd_plan(struct gpu_plan *p, const struct gpu_host *h, const bool *sel,
                 struct dlc_error **err);
/* One ICD (nothing for a broken one or NVIDIA's: gpu_nvidia_plan writes that with the
 * driver's libraries): its libraries, data dirs and a .icd file naming the library's
 * absolute path in the container (with for_cdi, the host's .icd file mounted). */
int gpu_opencl_plan_icd(struct gpu_plan *p, const struct gpu_host *h, const struct gpu_icd *icd,
                        struct dlc_error **err);
/* pocl: the host's linker, GCC runtime dir and libc_nonshared.a into icd's data (a
 * warning when the host lacks them); the plan part writes the linker scripts and sets
 * LIBRARY_PATH. */
void gpu_pocl_discover(struct gpu_host *h, struct gpu_icd *icd);
int gpu_pocl_plan(struct gpu_plan *p, struct dlc_error **err);
/* True for the ICD of NVIDIA's driver (libnvidia-opencl). */
bool gpu_icd_is_nvidia(const struct gpu_icd *icd);
/* --device /dev/X[:/dev/Y]: one node, or every node under a directory (/dev/dri). */
int gpu_plan_device_arg(struct gpu_plan *p, const struct gpu_host *h, const char *arg,
                        struct dlc_error **err);

/* The whole request: --gpus, --device (paths and CDI names). */
int gpu_plan_build(struct gpu_plan *p, const struct runner_gpu_request *req,
                   struct dlc_error **err);

/* ---- cdi.c -------------------------------------------------------------------------- */

struct cdi_registry;

/* The spec directories: $DLC_CDI_SPEC_DIRS (colon list), else /etc/cdi:/var/run/cdi;
 * later directories take priority. */
char **cdi_spec_dirs(void);
/* Loads every .json spec (and notes .yaml and .yml ones, which are not read). A spec
 * that fails validation is kept as an error for the devices of its kind. */
int cdi_registry_load(char *const *dirs, struct cdi_registry **ret, struct dlc_error **err);
void cdi_registry_free(struct cdi_registry *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct cdi_registry *, cdi_registry_free)
/* Each fully-qualified device name with its spec file; problems found while loading. */
size_t cdi_registry_devices(const struct cdi_registry *r, const char ***ret_names,
                            const char ***ret_files);
char **cdi_registry_problems(const struct cdi_registry *r);
/* True when name looks like vendor.com/class=name (so --device knows it is CDI). */
bool cdi_is_qualified_name(const char *name);
/* Applies the edits of the named devices (spec-level edits once per spec). ENOENT
 * "unknown CDI device 'x'", EINVAL for a spec problem, naming the spec file. */
int cdi_plan(struct gpu_plan *p, const struct cdi_registry *r, char *const *names,
             struct dlc_error **err);
/* A spec of kind for what h offers: one device per GPU (by index and UUID), one per
 * usable ICD ("opencl-<name>"), and "all". Pretty JSON, caller frees. */
int cdi_generate(const struct gpu_host *h, const char *kind, const char *aux_dir, char **ret_json,
                 struct dlc_error **err);

#endif
