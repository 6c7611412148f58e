/* gpu-amd.c: AMD GPUs as ROCm's docs pass them to containers: /dev/kfd (the compute
 * interface all GPUs share, dynamic major) plus one DRM render node per GPU
 * (/dev/dri/renderD<128+i>, major 226). ROCm's user space ships in the image; only the
 * kernel driver is on the host, so no libraries are injected here. */
#include <errno.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "gpu.h"

#define AMD_PCI_VENDOR "0x1002"

static char *sysfs_attr(const struct gpu_host *h, const char *node, const char *attr)
{
    _cleanup_free_ char *rel = xasprintf("/sys/class/drm/%s/device/%s", node, attr);
    char *v = gpu_read_host_file(h, rel);
    if (v)
        v[strcspn(v, "\n")] = '\0';
    return v;
}

/* The PCI address the render node's sysfs device links to, NULL if unknown. */
static char *sysfs_bus_id(const struct gpu_host *h, const char *node)
{
    _cleanup_free_ char *rel = xasprintf("/sys/class/drm/%s/device", node);
    _cleanup_free_ char *path = dlc_path_join(h->root, rel);
    char target[4096];
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n <= 0)
        return NULL;
    target[n] = '\0';
    return xstrdup(dlc_path_basename(target));
}

static int render_cmp(const void *a, const void *b)
{
    unsigned x = ((const struct gpu_dev *)a)->minor, y = ((const struct gpu_dev *)b)->minor;
    return (x > y) - (x < y);
}

static void add_render_node(struct gpu_host *h, const char *name)
{
    _cleanup_free_ char *rel = xasprintf("/dev/dri/%s", name);
    _cleanup_free_ char *path = dlc_path_join(h->root, rel);
    struct stat st;
    if (gpu_stat_node(path, &st) < 0 || !S_ISCHR(st.st_mode))
        return;
    /* Render nodes of other vendors (an NVIDIA or Intel GPU) are not AMD GPUs; without
     * sysfs (a bare driver root) /dev/kfd's presence decides. */
    _cleanup_free_ char *vendor = sysfs_attr(h, name, "vendor");
    if (vendor && strcmp(vendor, AMD_PCI_VENDOR) != 0)
        return;
    h->gpus = xrealloc(h->gpus, (h->n_gpus + 1) * sizeof(*h->gpus));
    h->gpus[h->n_gpus++] = (struct gpu_dev){
            .vendor = xstrdup("amd"),
            .model = sysfs_attr(h, name, "product_name"),
            .bus_id = sysfs_bus_id(h, name),
            .node = TAKE_PTR(rel),
            .major = major(st.st_rdev),
            .minor = minor(st.st_rdev),
    };
}

int gpu_amd_discover(struct gpu_host *h, struct dlc_error **err)
{
    (void)err;
    _cleanup_free_ char *kfd = dlc_path_join(h->root, "/dev/kfd");
    struct stat st;
    if (gpu_stat_node(kfd, &st) < 0 || !S_ISCHR(st.st_mode))
        return 0; /* no amdgpu compute driver */
    h->kfd_major = major(st.st_rdev);
    _cleanup_free_ char *dri = dlc_path_join(h->root, "/dev/dri");
    _cleanup_dir_ DIR *d = opendir(dri);
    if (d == NULL) {
        gpu_host_warn(h, "/dev/kfd but no /dev/dri: no AMD GPU can be passed through");
        return 0;
    }
    size_t first = h->n_gpus;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (dlc_startswith(de->d_name, "renderD"))
            add_render_node(h, de->d_name);
    qsort(h->gpus + first, h->n_gpus - first, sizeof(*h->gpus), render_cmp);
    return 0;
}

int gpu_amd_plan(struct gpu_plan *p, const struct gpu_host *h, const bool *sel,
                 struct dlc_error **err)
{
    bool any = false;
    for (size_t i = 0; i < h->n_gpus; i++)
        any |= sel[i] && strcmp(h->gpus[i].vendor, "amd") == 0;
    if (!any)
        return 0;
    _cleanup_free_ char *kfd = dlc_path_join(h->root, "/dev/kfd");
    if (gpu_plan_add_node(p, kfd, "/dev/kfd", 0, 0, err) < 0)
        return dlc_error_wrap(err, "AMD");
    for (size_t i = 0; i < h->n_gpus; i++) {
        const struct gpu_dev *g = &h->gpus[i];
        if (!sel[i] || strcmp(g->vendor, "amd") != 0)
            continue;
        _cleanup_free_ char *node = dlc_path_join(h->root, g->node);
        if (gpu_plan_add_node(p, node, g->node, g->major, g->minor, err) < 0)
            return dlc_error_wrap(err, "AMD");
    }
    return 0;
}
