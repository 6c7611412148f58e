/* gpu-opencl.c: OpenCL vendor ICDs. The ICD loader in the image (ocl-icd) dlopens the
 * library named by the first line of each /etc/OpenCL/vendors/<name>.icd; the container
 * gets that library with its DT_NEEDED closure bound read-only into GPU_LIB_DIR, the data
 * directories the vendor keeps beside it, and a .icd file naming the library's absolute
 * path there. */
#include <errno.h>
#include <string.h>

#include "gpu.h"

#define VENDORS_DIR  "/etc/OpenCL/vendors"
#define MAX_ICD_FILE 4096

bool gpu_icd_is_nvidia(const struct gpu_icd *icd)
{
    return dlc_startswith(dlc_path_basename(icd->library), "libnvidia-opencl.so") != NULL;
}

/* "libpocl.so.2" -> "pocl". */
static char *lib_stem(const char *soname)
{
    const char *s = dlc_startswith(soname, "lib");
    s = s ? s : soname;
    const char *dot = strstr(s, ".so");
    return dot && dot > s ? xstrndup(s, (size_t)(dot - s)) : NULL;
}

/* A vendor's private directories, found by the library's name: <libdir>/<stem> (pocl's
 * device modules) and /usr/share/<stem> (pocl's kernel library and headers). pocl locates
 * both relative to its own file, which GPU_LIB_DIR keeps valid. */
static void find_data_dirs(const struct gpu_host *h, struct gpu_icd *icd)
{
    _cleanup_free_ char *stem = lib_stem(icd->libs[0].soname);
    if (stem == NULL)
        return;
    _cleanup_free_ char *libdir = dlc_path_dirname(icd->lib_path);
    _cleanup_free_ char *private = dlc_path_join(libdir, stem);
    if (dlc_is_dir(private)) {
        _cleanup_free_ char *dst = dlc_path_join(GPU_LIB_DIR, stem);
        icd->data_dirs = dlc_strv_push(icd->data_dirs, private);
        icd->data_dests = dlc_strv_push(icd->data_dests, dst);
    }
    _cleanup_free_ char *share_rel = dlc_path_join("/usr/share", stem);
    _cleanup_free_ char *share = dlc_path_join(h->root, share_rel);
    if (dlc_is_dir(share)) {
        icd->data_dirs = dlc_strv_push(icd->data_dirs, share);
        icd->data_dests = dlc_strv_push(icd->data_dests, share_rel);
    }
}

static void resolve_icd(struct gpu_host *h, struct gpu_icd *icd)
{
    icd->lib_path = gpu_lib_find(h->ldcache, h->root, icd->library);
    if (icd->lib_path == NULL) {
        icd->problem = xasprintf("library %s not found", icd->library);
        return;
    }
    if (gpu_icd_is_nvidia(icd))
        return; /* comes with the NVIDIA driver libraries, matched to its version */
    _cleanup_error_ struct dlc_error *e = NULL;
    if (gpu_lib_closure(h->ldcache, h->root, icd->lib_path, icd->library, &icd->libs, &icd->n_libs,
                        &e) < 0) {
        icd->problem = xstrdup(e->msg);
        return;
    }
    find_data_dirs(h, icd);
    _cleanup_free_ char *stem = lib_stem(icd->libs[0].soname);
    if (dlc_streq(stem, "pocl"))
        gpu_pocl_discover(h, icd);
}

static void add_icd(struct gpu_host *h, const char *dir, const char *file)
{
    _cleanup_free_ char *path = dlc_path_join(dir, file);
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    _cleanup_error_ struct dlc_error *e = NULL;
    if (dlc_read_file(path, MAX_ICD_FILE, &buf, &len, &e) < 0) {
        gpu_host_warn(h, "OpenCL ICD %s: %s", path, e->msg);
        return;
    }
    const char *lib = buf + strspn(buf, " \t\r\n");
    size_t n = strcspn(lib, "\r\n");
    while (n > 0 && (lib[n - 1] == ' ' || lib[n - 1] == '\t'))
        n--;
    if (n == 0 || memchr(lib, '\0', n) != NULL) {
        gpu_host_warn(h, "OpenCL ICD %s names no library", path);
        return;
    }
    h->icds = xrealloc(h->icds, (h->n_icds + 1) * sizeof(*h->icds));
    struct gpu_icd *icd = &h->icds[h->n_icds++];
    *icd = (struct gpu_icd){
            .name = xstrndup(file, strlen(file) - strlen(".icd")),
            .file = TAKE_PTR(path),
            .library = xstrndup(lib, n),
    };
    resolve_icd(h, icd);
    if (icd->problem)
        gpu_host_warn(h, "OpenCL ICD %s: %s", icd->file, icd->problem);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int gpu_opencl_discover(struct gpu_host *h, struct dlc_error **err)
{
    (void)err;
    _cleanup_free_ char *dir = dlc_path_join(h->root, VENDORS_DIR);
    _cleanup_dir_ DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    _cleanup_strv_ char **names = NULL;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' && dlc_endswith(de->d_name, ".icd"))
            names = dlc_strv_push(names, de->d_name);
    if (names == NULL)
        return 0;
    qsort(names, dlc_strv_len(names), sizeof(*names), name_cmp);
    for (size_t i = 0; names[i]; i++)
        add_icd(h, dir, names[i]);
    return 0;
}

int gpu_opencl_plan_icd(struct gpu_plan *p, const struct gpu_host *h, const struct gpu_icd *icd,
                        struct dlc_error **err)
{
    if (icd->problem || gpu_icd_is_nvidia(icd))
        return 0;
    if (gpu_plan_add_libs(p, icd->libs, icd->n_libs, err) < 0)
        return dlc_error_wrap(err, "OpenCL ICD %s", icd->file);
    for (size_t j = 0; icd->data_dirs && icd->data_dirs[j]; j++)
        if (gpu_plan_add_bind(p, icd->data_dirs[j], icd->data_dests[j], err) < 0)
            return dlc_error_wrap(err, "OpenCL ICD %s", icd->file);
    if (icd->toolchain && gpu_pocl_plan(p, err) < 0)
        return -1;
    _cleanup_free_ char *path = xasprintf(VENDORS_DIR "/%s.icd", icd->name);
    if (p->for_cdi) {
        /* A CDI spec cannot write files: the host's .icd is mounted; a library it names by
         * absolute path is mounted at that path too. */
        if (icd->library[0] == '/' && gpu_plan_add_bind(p, icd->lib_path, icd->library, err) < 0)
            return -1;
        return gpu_plan_add_bind(p, icd->file, path, err);
    }
    (void)h;
    _cleanup_free_ char *content =
            xasprintf("%s/%s\n", GPU_LIB_DIR, dlc_path_basename(icd->library));
    return gpu_plan_add_file(p, path, content, err);
}
