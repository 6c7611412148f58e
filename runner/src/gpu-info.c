/* gpu-info.c: `dlc info` and `dlc cdi generate`: discovery results turned into the public
 * structs of runner.h, and the generated CDI spec. */
#include <string.h>

#include "gpu.h"

#define DEFAULT_CDI_KIND "dlc.local/gpu"

void runner_host_info_free(struct runner_host_info *info)
{
    if (info == NULL)
        return;
    for (size_t i = 0; i < info->n_gpus; i++) {
        free(info->gpus[i].vendor);
        free(info->gpus[i].model);
        free(info->gpus[i].uuid);
        free(info->gpus[i].bus_id);
        free(info->gpus[i].node);
    }
    free(info->gpus);
    for (size_t i = 0; i < info->n_icds; i++) {
        free(info->icds[i].name);
        free(info->icds[i].file);
        free(info->icds[i].library);
        free(info->icds[i].lib_path);
        free(info->icds[i].problem);
    }
    free(info->icds);
    for (size_t i = 0; i < info->n_cdi; i++) {
        free(info->cdi[i].name);
        free(info->cdi[i].spec);
    }
    free(info->cdi);
    dlc_strv_free(info->cdi_dirs);
    dlc_strv_free(info->warnings);
    dlc_strv_free(info->cdi_problems);
    free(info->driver_root);
    free(info->nvidia_version);
    free(info);
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void copy_host(struct runner_host_info *info, const struct gpu_host *h)
{
    info->driver_root = xstrdup(h->root);
    info->nvidia_version = dup_or_null(h->nv_version);
    info->gpus = xcalloc(h->n_gpus + 1, sizeof(*info->gpus));
    for (size_t i = 0; i < h->n_gpus; i++) {
        const struct gpu_dev *g = &h->gpus[i];
        info->gpus[info->n_gpus++] = (struct runner_gpu_info){
                .vendor = xstrdup(g->vendor),
                .model = dup_or_null(g->model),
                .uuid = dup_or_null(g->uuid),
                .bus_id = dup_or_null(g->bus_id),
                .node = xstrdup(g->node),
        };
    }
    info->icds = xcalloc(h->n_icds + 1, sizeof(*info->icds));
    for (size_t i = 0; i < h->n_icds; i++) {
        const struct gpu_icd *c = &h->icds[i];
        info->icds[info->n_icds++] = (struct runner_icd_info){
                .name = xstrdup(c->name),
                .file = xstrdup(c->file),
                .library = xstrdup(c->library),
                .lib_path = dup_or_null(c->lib_path),
                .n_libs = c->n_libs,
                .problem = dup_or_null(c->problem),
        };
    }
    info->warnings = dlc_strv_copy(h->warnings);
}

static int copy_cdi(struct runner_host_info *info, struct dlc_error **err)
{
    info->cdi_dirs = cdi_spec_dirs();
    _cleanup_(cdi_registry_freep) struct cdi_registry *r = NULL;
    if (cdi_registry_load(info->cdi_dirs, &r, err) < 0)
        return -1;
    const char **names = NULL, **files = NULL;
    size_t n = cdi_registry_devices(r, &names, &files);
    info->cdi = xcalloc(n + 1, sizeof(*info->cdi));
    for (size_t i = 0; i < n; i++)
        info->cdi[info->n_cdi++] =
                (struct runner_cdi_info){.name = xstrdup(names[i]), .spec = xstrdup(files[i])};
    info->cdi_problems = dlc_strv_copy(cdi_registry_problems(r));
    return 0;
}

int runner_host_info(const char *driver_root, struct runner_host_info **ret, struct dlc_error **err)
{
    _cleanup_(gpu_host_freep) struct gpu_host *h = NULL;
    if (gpu_host_discover(driver_root, &h, err) < 0)
        return -1;
    _cleanup_(runner_host_info_freep) struct runner_host_info *info = xcalloc(1, sizeof(*info));
    copy_host(info, h);
    if (copy_cdi(info, err) < 0)
        return -1;
    *ret = TAKE_PTR(info);
    return 0;
}

int runner_cdi_generate(const char *driver_root, const char *kind, const char *aux_dir,
                        char **ret_json, struct dlc_error **err)
{
    _cleanup_(gpu_host_freep) struct gpu_host *h = NULL;
    if (gpu_host_discover(driver_root, &h, err) < 0)
        return -1;
    return cdi_generate(h, kind ? kind : DEFAULT_CDI_KIND, aux_dir, ret_json, err);
}
