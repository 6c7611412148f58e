/* gpu-nvidia.c: NVIDIA GPUs the way libnvidia-container finds them, without NVML: the
 * kernel module's /proc/driver/nvidia (version, one directory per GPU with its minor),
 * nodes 195:N, the nvidia-uvm major from /proc/devices, and the user-space driver from the
 * ld cache, kept only when its file name carries the kernel module's exact version (the
 * user-space driver must match the kernel module, so it always comes from the host). */
#include <errno.h>
#include <string.h>

#include "gpu.h"

/* src/nvc_info.c utility_libs + compute_libs (capabilities utility,compute). */
static const char *const nvidia_libs[] = {
        "libnvidia-ml.so",
        "libnvidia-cfg.so",
        "libnvidia-nscq.so",
        "libcuda.so",
        "libcudadebugger.so",
        "libnvidia-opencl.so",
        "libnvidia-gpucomp.so",
        "libnvidia-ptxjitcompiler.so",
        "libnvidia-fatbinaryloader.so",
        "libnvidia-allocator.so",
        "libnvidia-compiler.so",
        "libnvidia-pkcs11.so",
        "libnvidia-pkcs11-openssl3.so",
        "libnvidia-nvvm.so",
        "libnvidia-tileiras.so",
};

static const char *const nvidia_bins[] = {
        "nvidia-smi",
        "nvidia-debugdump",
        "nvidia-persistenced",
        "nvidia-cuda-mps-control",
        "nvidia-cuda-mps-server",
};

/* "NVRM version: NVIDIA UNIX x86_64 Kernel Module  570.133.20  Release Build ..." (or
 * "... Open Kernel Module for x86_64  570.133.20 ..."): the first dotted number. */
static char *parse_version(const char *text)
{
    const char *p = strstr(text, "Kernel Module");
    if (p == NULL)
        return NULL;
    const char *eol = strchr(p, '\n');
    while (*p && (eol == NULL || p < eol)) {
        size_t n = strspn(p, "0123456789.");
        if (n > 2 && p[0] != '.' && memchr(p, '.', n) && (p[n] == ' ' || p[n] == '\t'))
            return xstrndup(p, n);
        p += n ? n : 1;
    }
    return NULL;
}

/* One "Key: value" line of proc/driver/nvidia/gpus/<busid>/information. */
static char *info_field(const char *info, const char *key)
{
    for (const char *p = info; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        const char *v = dlc_startswith(p, key);
        if (v == NULL || *v != ':')
            continue;
        v += 1 + strspn(v + 1, " \t");
        size_t n = strcspn(v, "\n");
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        return xstrndup(v, n);
    }
    return NULL;
}

static int gpu_cmp(const void *a, const void *b)
{
    const struct gpu_dev *x = a, *y = b;
    return strcmp(x->bus_id ? x->bus_id : "", y->bus_id ? y->bus_id : "");
}

static void add_gpu(struct gpu_host *h, const char *bus_dir, const char *info)
{
    _cleanup_free_ char *minor_s = info_field(info, "Device Minor");
    uint64_t minor;
    _cleanup_error_ struct dlc_error *e = NULL;
    if (minor_s == NULL || dlc_parse_u64(minor_s, NULL, &minor, &e) < 0 || minor >= 254) {
        gpu_host_warn(h, "NVIDIA GPU %s: no valid 'Device Minor' in its information file", bus_dir);
        return;
    }
    h->gpus = xrealloc(h->gpus, (h->n_gpus + 1) * sizeof(*h->gpus));
    struct gpu_dev *g = &h->gpus[h->n_gpus++];
    char *bus = info_field(info, "Bus Location");
    *g = (struct gpu_dev){
            .vendor = xstrdup("nvidia"),
            .model = info_field(info, "Model"),
            .uuid = info_field(info, "GPU UUID"),
            .bus_id = bus ? bus : xstrdup(bus_dir),
            .node = xasprintf("/dev/nvidia%u", (unsigned)minor),
            .major = NVIDIA_MAJOR,
            .minor = (unsigned)minor,
    };
}

static void discover_gpus(struct gpu_host *h)
{
    _cleanup_free_ char *dir = dlc_path_join(h->root, "/proc/driver/nvidia/gpus");
    _cleanup_dir_ DIR *d = opendir(dir);
    if (d == NULL)
        return;
    size_t first = h->n_gpus;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        _cleanup_free_ char *rel = xasprintf("/proc/driver/nvidia/gpus/%s/information", de->d_name);
        _cleanup_free_ char *info = gpu_read_host_file(h, rel);
        if (info == NULL) {
            gpu_host_warn(h, "NVIDIA GPU %s: cannot read its information file", de->d_name);
            continue;
        }
        add_gpu(h, de->d_name, info);
    }
    /* NVML enumerates by PCI bus id: index N of --gpus is the Nth bus id. */
    qsort(h->gpus + first, h->n_gpus - first, sizeof(*h->gpus), gpu_cmp);
}

int gpu_nvidia_discover(struct gpu_host *h, struct dlc_error **err)
{
    (void)err;
    _cleanup_free_ char *version = gpu_read_host_file(h, "/proc/driver/nvidia/version");
    if (version) {
        h->nv_version = parse_version(version);
        if (h->nv_version == NULL)
            gpu_host_warn(h, "cannot read the NVIDIA driver version from "
                             "/proc/driver/nvidia/version");
    }
    discover_gpus(h);
    if (h->n_gpus > 0 && h->nv_version == NULL && version == NULL)
        gpu_host_warn(h, "NVIDIA GPUs but no /proc/driver/nvidia/version");
    h->uvm_major = gpu_proc_devices_major(h, "nvidia-uvm");
    return 0;
}

/* ---- the plan ------------------------------------------------------------------------ */

static int plan_nodes(struct gpu_plan *p, const struct gpu_host *h, const bool *sel,
                      struct dlc_error **err)
{
    _cleanup_free_ char *ctl = dlc_path_join(h->root, "/dev/nvidiactl");
    if (gpu_plan_add_node(p, ctl, "/dev/nvidiactl", NVIDIA_MAJOR, NVIDIA_CTL_MINOR, err) < 0)
        return -1;
    for (size_t i = 0; i < h->n_gpus; i++) {
        const struct gpu_dev *g = &h->gpus[i];
        if (!sel[i] || strcmp(g->vendor, "nvidia") != 0)
            continue;
        _cleanup_free_ char *node = dlc_path_join(h->root, g->node);
        if (gpu_plan_add_node(p, node, g->node, g->major, g->minor, err) < 0)
            return -1;
    }
    if (h->uvm_major == 0) {
        dlc_warn("gpu: nvidia-uvm is not loaded (no 'nvidia-uvm' in /proc/devices): CUDA "
                 "will not work in the container");
        return 0;
    }
    static const char *const uvm[] = {"/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"};
    for (unsigned m = 0; m < 2; m++) {
        _cleanup_free_ char *node = dlc_path_join(h->root, uvm[m]);
        if (!dlc_path_exists(node)) {
            dlc_warn("gpu: %s is missing on the host (run nvidia-modprobe -u -c=0)", uvm[m]);
            continue;
        }
        if (gpu_plan_add_node(p, node, uvm[m], h->uvm_major, m, err) < 0)
            return -1;
    }
    return 0;
}

/* The driver libraries of prefix whose real file is "<prefix>.<version>". */
static int plan_lib(struct gpu_plan *p, const struct gpu_host *h, const char *prefix,
                    char **ret_soname, struct dlc_error **err)
{
    _cleanup_free_ char *want = xasprintf(".so.%s", h->nv_version);
    _cleanup_strv_ char **done = NULL;
    size_t iter = 0;
    const char *key = NULL, *value;
    while ((value = dlc_ldcache_next(h->ldcache, prefix, &iter, &key)) != NULL) {
        /* Only versioned sonames, each once (a merged /usr lists libraries twice). */
        if (key[strlen(prefix)] != '.' || dlc_strv_contains(done, key))
            continue;
        _cleanup_free_ char *host = NULL;
        _cleanup_error_ struct dlc_error *e = NULL;
        if (dlc_path_resolve_in_root(h->root, value, &host, &e) < 0 || !dlc_path_exists(host))
            continue;
        if (!dlc_endswith(host, want)) {
            dlc_debug("gpu: skipping %s: not version %s", host, h->nv_version);
            continue;
        }
        struct gpu_lib lib = {
                .host_path = host, .soname = (char *)key, .alias = (char *)dlc_path_basename(host)};
        if (gpu_plan_add_libs(p, &lib, 1, err) < 0)
            return -1;
        done = dlc_strv_push(done, key);
        if (ret_soname && *ret_soname == NULL)
            *ret_soname = xstrdup(key);
    }
    return 0;
}

static int plan_libs(struct gpu_plan *p, const struct gpu_host *h, struct dlc_error **err)
{
    _cleanup_free_ char *cuda = NULL, *opencl = NULL;
    for (size_t i = 0; i < DLC_ARRAY_SIZE(nvidia_libs); i++) {
        char **soname = strcmp(nvidia_libs[i], "libcuda.so") == 0            ? &cuda
                        : strcmp(nvidia_libs[i], "libnvidia-opencl.so") == 0 ? &opencl
                                                                             : NULL;
        if (plan_lib(p, h, nvidia_libs[i], soname, err) < 0)
            return -1;
    }
    if (cuda == NULL)
        return dlc_error_set(err, ENOENT,
                             "NVIDIA driver %s: libcuda.so.%s is not in %s/etc/ld.so.cache",
                             h->nv_version, h->nv_version, strcmp(h->root, "/") ? h->root : "");
    /* "Many applications wrongly assume that libcuda.so exists" (nvc_mount.c). */
    for (size_t i = 0; i < p->n_binds; i++) {
        if (strcmp(p->binds[i].destination, GPU_LIB_DIR "/libcuda.so.1") == 0) {
            _cleanup_free_ char *src = xstrdup(p->binds[i].source);
            if (gpu_plan_add_bind(p, src, GPU_LIB_DIR "/libcuda.so", err) < 0)
                return -1;
            break;
        }
    }
    if (opencl == NULL) {
        dlc_warn("gpu: no libnvidia-opencl.so.%s: no OpenCL on the NVIDIA GPUs", h->nv_version);
        return 0;
    }
    /* The toolkit's --gpus path forgets this file (clinfo: 0 platforms). */
    if (p->for_cdi) {
        /* A CDI spec cannot write it: the host's, if it has one (it names the soname). */
        _cleanup_free_ char *host = dlc_path_join(h->root, "/etc/OpenCL/vendors/nvidia.icd");
        if (dlc_path_exists(host))
            return gpu_plan_add_bind(p, host, "/etc/OpenCL/vendors/nvidia.icd", err);
        dlc_warn("gpu: the host has no /etc/OpenCL/vendors/nvidia.icd: OpenCL on the "
                 "NVIDIA GPUs needs the image to ship it");
        return 0;
    }
    _cleanup_free_ char *icd = xasprintf("%s/%s\n", GPU_LIB_DIR, opencl);
    return gpu_plan_add_file(p, "/etc/OpenCL/vendors/nvidia.icd", icd, err);
}

static int plan_bins(struct gpu_plan *p, const struct gpu_host *h, struct dlc_error **err)
{
    static const char *const dirs[] = {"/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(nvidia_bins); i++) {
        for (size_t d = 0; d < DLC_ARRAY_SIZE(dirs); d++) {
            _cleanup_free_ char *rel = dlc_path_join(dirs[d], nvidia_bins[i]);
            _cleanup_free_ char *host = NULL;
            _cleanup_error_ struct dlc_error *e = NULL;
            if (dlc_path_resolve_in_root(h->root, rel, &host, &e) < 0 || access(host, X_OK) < 0 ||
                dlc_is_dir(host))
                continue;
            _cleanup_free_ char *dst = dlc_path_join("/usr/bin", nvidia_bins[i]);
            if (gpu_plan_add_bind(p, host, dst, err) < 0)
                return -1;
            break;
        }
    }
    return 0;
}

int gpu_nvidia_plan(struct gpu_plan *p, const struct gpu_host *h, const bool *sel,
                    struct dlc_error **err)
{
    bool any = false;
    for (size_t i = 0; i < h->n_gpus; i++)
        any |= sel[i] && strcmp(h->gpus[i].vendor, "nvidia") == 0;
    if (!any)
        return 0;
    if (h->nv_version == NULL)
        return dlc_error_set(err, ENOENT,
                             "NVIDIA GPUs but the driver version is unknown "
                             "(no /proc/driver/nvidia/version)");
    if (plan_nodes(p, h, sel, err) < 0 || plan_libs(p, h, err) < 0 || plan_bins(p, h, err) < 0)
        return dlc_error_wrap(err, "NVIDIA");
    return 0;
}
