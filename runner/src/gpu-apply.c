/* gpu-apply.c: runner_gpu_apply: the plan for `dlc run --gpus/--device` copied into a
 * runner_spec (nodes, read-only binds, .icd files, env, SM_NUM_GPUS). */
#include <string.h>

#include "gpu.h"

static void log_plan(const struct gpu_plan *p)
{
    for (size_t i = 0; i < p->n_devices; i++)
        dlc_debug("gpu: device %s (%c %u:%u) from %s", p->devices[i].path, p->devices[i].type,
                  p->devices[i].major, p->devices[i].minor,
                  p->devices[i].host_path ? p->devices[i].host_path : "mknod");
    for (size_t i = 0; i < p->n_binds; i++)
        dlc_debug("gpu: bind %s -> %s%s", p->binds[i].source, p->binds[i].destination,
                  p->binds[i].readonly ? " (ro)" : "");
    for (size_t i = 0; i < p->n_files; i++)
        dlc_debug("gpu: file %s: %s", p->files[i].path, p->files[i].content);
    for (size_t i = 0; p->env && p->env[i]; i++)
        dlc_debug("gpu: env %s", p->env[i]);
}

/* LD_LIBRARY_PATH/LIBRARY_PATH=ours, in front of a value the user gave with -e (kept, not
 * replaced). */
static void add_env(struct runner_spec *spec, const char *kv)
{
    const char *eq = strchr(kv, '=');
    _cleanup_free_ char *key = xstrndup(kv, eq ? (size_t)(eq - kv + 1) : strlen(kv));
    bool path = strcmp(key, "LD_LIBRARY_PATH=") == 0 || strcmp(key, "LIBRARY_PATH=") == 0;
    for (size_t i = 0; path && spec->env && spec->env[i]; i++) {
        const char *theirs = dlc_startswith(spec->env[i], key);
        if (theirs == NULL)
            continue;
        char *merged = *theirs ? xasprintf("%s:%s", kv, theirs) : xstrdup(kv);
        free(spec->env[i]);
        spec->env[i] = merged;
        return;
    }
    runner_spec_add_env(spec, kv);
}

int runner_gpu_apply(struct runner_spec *spec, const struct runner_gpu_request *req,
                     struct dlc_error **err)
{
    if (req->gpus == NULL && (req->devices == NULL || req->devices[0] == NULL))
        return 0;
    struct gpu_plan p = {0};
    if (gpu_plan_build(&p, req, err) < 0) {
        gpu_plan_release(&p);
        return -1;
    }
    log_plan(&p);
    for (size_t i = 0; i < p.n_devices; i++)
        runner_spec_add_device(spec, &p.devices[i]);
    for (size_t i = 0; i < p.n_binds; i++)
        runner_spec_add_bind(spec, p.binds[i].source, p.binds[i].destination, p.binds[i].readonly);
    for (size_t i = 0; i < p.n_files; i++)
        runner_spec_add_file(spec, p.files[i].path, p.files[i].content, p.files[i].len,
                             p.files[i].mode);
    for (size_t i = 0; p.env && p.env[i]; i++)
        add_env(spec, p.env[i]);
    spec->sm.num_gpus = p.num_gpus;
    gpu_plan_release(&p);
    return 0;
}
