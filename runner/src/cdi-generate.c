/* cdi-generate.c: `dlc cdi generate`: a CDI spec describing what this host offers, built
 * from the same plans `dlc run --gpus` uses: one device per GPU (by index, and by UUID when
 * it has one), one per usable OpenCL ICD ("opencl-<name>"), and "all". A CDI spec cannot
 * write files, so ICDs are passed as mounts of the host's .icd files (they name their
 * library, which LD_LIBRARY_PATH finds in GPU_LIB_DIR). */
#include <errno.h>
#include <string.h>

#include "gpu.h"

#define CDI_VERSION "0.5.0" /* device names starting with a digit, deviceNodes hostPath */

static json_t *plan_edits(const struct gpu_plan *p)
{
    json_t *nodes = json_array();
    for (size_t i = 0; i < p->n_devices; i++) {
        const struct runner_device *d = &p->devices[i];
        json_t *n = json_pack("{s:s}", "path", d->path);
        if (d->host_path && strcmp(d->host_path, d->path) != 0)
            json_object_set_new(n, "hostPath", json_string(d->host_path));
        json_array_append_new(nodes, n);
    }
    json_t *mounts = json_array();
    for (size_t i = 0; i < p->n_binds; i++) {
        const struct runner_bind *b = &p->binds[i];
        json_array_append_new(mounts,
                              json_pack("{s:s, s:s, s:[s,s,s,s]}", "hostPath", b->source,
                                        "containerPath", b->destination, "options",
                                        b->readonly ? "ro" : "rw", "nosuid", "nodev", "bind"));
    }
    json_t *edits = json_object();
    if (p->env)
        json_object_set_new(edits, "env", dlc_json_from_strv(p->env));
    if (json_array_size(nodes) > 0)
        json_object_set(edits, "deviceNodes", nodes);
    if (json_array_size(mounts) > 0)
        json_object_set(edits, "mounts", mounts);
    json_decref(nodes);
    json_decref(mounts);
    return edits;
}

static void add_device(json_t *devices, const char *name, const struct gpu_plan *p)
{
    json_array_append_new(devices,
                          json_pack("{s:s, s:o}", "name", name, "containerEdits", plan_edits(p)));
}

/* A CDI device name from an ICD file name: [A-Za-z0-9_.:-], alphanumeric at both ends. */
static char *icd_device_name(const char *icd)
{
    char *name = xasprintf("opencl-%s", icd);
    for (char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              strchr("_.:-", *c)))
            *c = '-';
    size_t n = strlen(name);
    while (n > 0 && strchr("_.:-", name[n - 1]))
        name[--n] = '\0';
    return name;
}

static int add_gpu_device(json_t *devices, const struct gpu_host *h, size_t i, const char *aux_dir,
                          bool *libs, struct dlc_error **err)
{
    struct gpu_plan p = {.for_cdi = true, .aux_dir = aux_dir};
    _cleanup_free_ bool *sel = xcalloc(h->n_gpus, sizeof(bool));
    sel[i] = true;
    if (gpu_nvidia_plan(&p, h, sel, err) < 0 || gpu_amd_plan(&p, h, sel, err) < 0) {
        gpu_plan_release(&p);
        return dlc_error_wrap(err, "GPU %zu", i);
    }
    _cleanup_free_ char *index = xasprintf("%zu", i);
    add_device(devices, index, &p);
    if (h->gpus[i].uuid)
        add_device(devices, h->gpus[i].uuid, &p);
    *libs |= p.lib_dirs != NULL;
    gpu_plan_release(&p);
    return 0;
}

static int add_icd_device(json_t *devices, const struct gpu_host *h, const struct gpu_icd *icd,
                          const char *aux_dir, bool *libs, struct dlc_error **err)
{
    struct gpu_plan p = {.for_cdi = true, .aux_dir = aux_dir};
    if (gpu_opencl_plan_icd(&p, h, icd, err) < 0) {
        gpu_plan_release(&p);
        return -1;
    }
    _cleanup_free_ char *name = icd_device_name(icd->name);
    add_device(devices, name, &p);
    *libs |= p.lib_dirs != NULL;
    gpu_plan_release(&p);
    return 0;
}

static int add_all_device(json_t *devices, const struct gpu_host *h, const char *aux_dir,
                          struct dlc_error **err)
{
    struct gpu_plan p = {.for_cdi = true, .aux_dir = aux_dir};
    _cleanup_free_ bool *sel = xcalloc(h->n_gpus + 1, sizeof(bool));
    for (size_t i = 0; i < h->n_gpus; i++)
        sel[i] = true;
    int r = gpu_nvidia_plan(&p, h, sel, err) < 0 || gpu_amd_plan(&p, h, sel, err) < 0 ? -1 : 0;
    for (size_t i = 0; r == 0 && i < h->n_icds; i++)
        r = gpu_opencl_plan_icd(&p, h, &h->icds[i], err);
    if (r == 0)
        add_device(devices, "all", &p);
    gpu_plan_release(&p);
    return r;
}

int cdi_generate(const struct gpu_host *h, const char *kind, const char *aux_dir, char **ret_json,
                 struct dlc_error **err)
{
    _cleanup_free_ char *probe = xasprintf("%s=all", kind);
    if (!cdi_is_qualified_name(probe))
        return dlc_error_set(err, EINVAL, "invalid CDI kind '%s' (want vendor.com/class)", kind);
    json_auto_t *devices = json_array();
    bool libs = false;
    for (size_t i = 0; i < h->n_gpus; i++)
        if (add_gpu_device(devices, h, i, aux_dir, &libs, err) < 0)
            return -1;
    for (size_t i = 0; i < h->n_icds; i++)
        if (h->icds[i].problem == NULL && !gpu_icd_is_nvidia(&h->icds[i]) &&
            add_icd_device(devices, h, &h->icds[i], aux_dir, &libs, err) < 0)
            return -1;
    if (json_array_size(devices) == 0)
        return dlc_error_set(err, ENODEV, "no GPU and no usable OpenCL ICD under %s", h->root);
    if (add_all_device(devices, h, aux_dir, err) < 0)
        return -1;
    json_auto_t *spec = json_pack("{s:s, s:s, s:O}", "cdiVersion", CDI_VERSION, "kind", kind,
                                  "devices", devices);
    if (libs)
        json_object_set_new(spec, "containerEdits",
                            json_pack("{s:[s]}", "env", "LD_LIBRARY_PATH=" GPU_LIB_DIR));
    *ret_json = dlc_json_dumps_pretty(spec);
    return 0;
}
