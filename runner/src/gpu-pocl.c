/* gpu-pocl.c: what pocl (the CPU OpenCL driver the tests stand in for a GPU with) needs
 * beyond its library closure. pocl compiles each kernel with its built-in clang and links
 * it with the `ld` it finds in PATH ("ld -shared ... -lm -lgcc -lgcc_s -lc", the GCC
 * installation found by clang's driver); an image with only the ICD loader has neither, and
 * pocl then aborts in its first clBuildProgram. So pocl's "driver" passed to a container is
 * also the host's linker (with its closure), the host's GCC runtime directory, and two tiny
 * linker scripts that resolve -lc and -lm to the container's own C library (the host's
 * scripts name files such as libmvec.so.1 an image need not have). */
#include <string.h>

#include "gpu.h"

static void add_data(struct gpu_icd *icd, const char *host, const char *dest)
{
    icd->data_dirs = dlc_strv_push(icd->data_dirs, host);
    icd->data_dests = dlc_strv_push(icd->data_dests, dest);
}

/* The GCC version directory clang's driver would pick: the highest holding libgcc.a. */
static char *find_gcc_dir(const struct gpu_host *h)
{
    _cleanup_free_ char *base = dlc_path_join(h->root, "/usr/lib/gcc/" DLC_MULTIARCH);
    _cleanup_dir_ DIR *d = opendir(base);
    if (d == NULL)
        return NULL;
    _cleanup_free_ char *best = NULL;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        _cleanup_free_ char *lib = xasprintf("%s/%s/libgcc.a", base, de->d_name);
        if (dlc_path_exists(lib) && (best == NULL || strverscmp(de->d_name, best) > 0)) {
            free(best);
            best = xstrdup(de->d_name);
        }
    }
    return best ? xasprintf("/usr/lib/gcc/" DLC_MULTIARCH "/%s", best) : NULL;
}

static void lib_release(struct gpu_lib *l)
{
    free(l->host_path);
    free(l->soname);
    free(l->alias);
}

/* Moves libs[first..n) that icd does not have yet (by soname) into icd; frees the rest. */
static void merge_libs(struct gpu_icd *icd, struct gpu_lib *libs, size_t n, size_t first)
{
    for (size_t i = 0; i < n; i++) {
        bool have = i < first;
        for (size_t j = 0; j < icd->n_libs && !have; j++)
            have = strcmp(icd->libs[j].soname, libs[i].soname) == 0;
        if (have) {
            lib_release(&libs[i]);
            continue;
        }
        icd->libs = xrealloc(icd->libs, (icd->n_libs + 1) * sizeof(*icd->libs));
        icd->libs[icd->n_libs++] = libs[i];
    }
    free(libs);
}

void gpu_pocl_discover(struct gpu_host *h, struct gpu_icd *icd)
{
    _cleanup_free_ char *ld = NULL, *gcc = find_gcc_dir(h);
    _cleanup_error_ struct dlc_error *e = NULL;
    _cleanup_free_ char *nonshared =
            dlc_path_join(h->root, "/usr/lib/" DLC_MULTIARCH "/libc_nonshared.a");
    if (dlc_path_resolve_in_root(h->root, "/usr/bin/ld", &ld, &e) < 0 || !dlc_path_exists(ld) ||
        gcc == NULL || !dlc_path_exists(nonshared)) {
        gpu_host_warn(h,
                      "OpenCL ICD %s: pocl links kernels with ld, libgcc and libc_nonshared.a "
                      "(binutils, libgcc-dev, libc6-dev), which this host lacks: kernels "
                      "will only build where the image has them",
                      icd->file);
        return;
    }
    struct gpu_lib *libs = NULL;
    size_t n = 0;
    if (gpu_lib_closure(h->ldcache, h->root, ld, "ld", &libs, &n, &e) < 0) {
        gpu_host_warn(h, "OpenCL ICD %s: the linker for pocl: %s", icd->file, e->msg);
        return;
    }
    /* The linker runs from PATH; its libraries go with the others (LD_LIBRARY_PATH). */
    add_data(icd, libs[0].host_path, "/usr/bin/ld");
    merge_libs(icd, libs, n, 1);
    _cleanup_free_ char *gcc_host = dlc_path_join(h->root, gcc);
    add_data(icd, gcc_host, gcc);
    add_data(icd, nonshared, GPU_LD_DIR "/libc_nonshared.a");
    icd->toolchain = true;
}

int gpu_pocl_plan(struct gpu_plan *p, struct dlc_error **err)
{
    /* Found through LIBRARY_PATH, which clang's driver passes to ld after the standard
     * directories: an image's own libc.so/libm.so (libc6-dev) still wins. */
    static const char libc_script[] = "/* dlc: -lc for pocl's kernel linking */\n"
                                      "GROUP ( libc.so.6 libc_nonshared.a )\n";
    static const char libm_script[] = "/* dlc: -lm for pocl's kernel linking */\n"
                                      "GROUP ( libm.so.6 )\n";
    if (gpu_plan_add_file(p, GPU_LD_DIR "/libc.so", libc_script, err) < 0 ||
        gpu_plan_add_file(p, GPU_LD_DIR "/libm.so", libm_script, err) < 0)
        return -1;
    gpu_plan_add_env(p, "LIBRARY_PATH=" GPU_LD_DIR);
    return 0;
}
