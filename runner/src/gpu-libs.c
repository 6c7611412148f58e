/* gpu-libs.c: finding host libraries the way the dynamic loader does, but inside a driver
 * root, and their closures for injection into a container. The ld.so.cache and ELF
 * readers and the search order after the run paths are common's (dlc_ldcache_*, dlc_elf_*),
 * shared with the builder's image closures. */
#include <elf.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "gpu.h"

#define MAX_CLOSURE 512

bool gpu_lib_is_libc(const char *soname)
{
    static const char *const libc[] = {
            "libc.so.",
            "libm.so.",
            "libmvec.so.",
            "libpthread.so.",
            "libdl.so.",
            "librt.so.",
            "libutil.so.",
            "libresolv.so.",
            "libanl.so.",
            "libnsl.so.",
            "libBrokenLocale.so.",
            "libc_malloc_debug.so.",
            "libthread_db.so.",
            "ld-linux",
            "ld64.so.",
    };
    for (size_t i = 0; i < DLC_ARRAY_SIZE(libc); i++)
        if (dlc_startswith(soname, libc[i]))
            return true;
    return false;
}

/* Why e is not a shared object ld.so would load into this process, or NULL. */
static const char *not_native(const struct dlc_elf *e)
{
    if (e == NULL)
        return "not an ELF file";
    if (e->elf_class != DLC_ELF_CLASS || e->machine != DLC_ELF_MACHINE)
        return "not a shared object for this machine";
    if (!e->dynamic)
        return "no dynamic section (a static binary?)";
    return NULL;
}

/* Reads a shared object of this process's ABI: EINVAL for anything else (not ELF, another
 * class or machine, no dynamic section). */
static int read_native(const char *path, struct dlc_elf **ret, struct dlc_error **err)
{
    _cleanup_(dlc_elf_freep) struct dlc_elf *e = NULL;
    if (dlc_elf_read(path, &e, err) < 0)
        return -1;
    const char *why = not_native(e);
    if (why != NULL) {
        dlc_error_set(err, EINVAL, "%s: %s", path, why);
        return -1; /* spelt out: *ret is set on every path that returns 0 */
    }
    *ret = TAKE_PTR(e);
    return 0;
}

/* The real file of path-as-seen-from-root, if it is a shared object of our ABI. */
static char *usable_lib(const char *root, const char *path)
{
    _cleanup_free_ char *host = NULL;
    _cleanup_error_ struct dlc_error *e = NULL;
    if (dlc_path_resolve_in_root(root, path, &host, &e) < 0)
        return NULL;
    struct stat st;
    if (stat(host, &st) < 0 || !S_ISREG(st.st_mode))
        return NULL;
    _cleanup_(dlc_elf_freep) struct dlc_elf *elf = NULL;
    if (read_native(host, &elf, &e) < 0)
        return NULL;
    return TAKE_PTR(host);
}

static char *try_in_root(const char *path, void *root)
{
    return usable_lib(root, path);
}

static char *find_in_dirs(const char *root, const char *const *dirs, const char *name)
{
    for (size_t i = 0; dirs && dirs[i]; i++) {
        _cleanup_free_ char *p = dlc_path_join(dirs[i], name);
        char *found = usable_lib(root, p);
        if (found)
            return found;
    }
    return NULL;
}

char *gpu_lib_find(const struct dlc_ldcache *c, const char *root, const char *name)
{
    if (name[0] == '/')
        return usable_lib(root, name);
    if (strchr(name, '/') != NULL)
        return NULL;
    return dlc_ldcache_search(c, name, try_in_root, (void *)root);
}

void gpu_libs_free(struct gpu_lib *libs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(libs[i].host_path);
        free(libs[i].soname);
        free(libs[i].alias);
    }
    free(libs);
}

struct closure {
    const struct dlc_ldcache *cache;
    const char *root;
    struct gpu_lib *libs;
    size_t n;
    char **seen; /* sonames and asked names already handled */
};

/* Run path entries of the object at host_path, with $ORIGIN expanded to its directory as
 * seen from inside root (and $LIB, $PLATFORM as ld.so does). */
static char **expand_runpath(const struct closure *cl, const char *host_path, char **runpath)
{
    size_t rootlen = strcmp(cl->root, "/") == 0 ? 0 : strlen(cl->root);
    _cleanup_free_ char *dir = dlc_path_dirname(host_path + rootlen);
    char **out = NULL;
    for (size_t i = 0; runpath && runpath[i]; i++) {
        _cleanup_free_ char *p = dlc_elf_expand_dst(runpath[i], dir);
        out = dlc_strv_push(out, p);
    }
    return out;
}

static int closure_add(struct closure *cl, const char *host_path, const char *asked, const char *by,
                       struct dlc_error **err);

static int closure_need(struct closure *cl, const char *name, char **runpath, const char *by,
                        struct dlc_error **err)
{
    if (gpu_lib_is_libc(name) || dlc_strv_contains(cl->seen, name))
        return 0;
    _cleanup_free_ char *host = find_in_dirs(cl->root, (const char *const *)runpath, name);
    if (host == NULL)
        host = gpu_lib_find(cl->cache, cl->root, name);
    if (host == NULL)
        return dlc_error_set(err, ENOENT, "%s (needed by %s) not found", name, by);
    return closure_add(cl, host, name, by, err);
}

static int closure_add(struct closure *cl, const char *host_path, const char *asked, const char *by,
                       struct dlc_error **err)
{
    _cleanup_(dlc_elf_freep) struct dlc_elf *elf = NULL;
    if (read_native(host_path, &elf, err) < 0)
        return dlc_error_wrap(err, "%s", by);
    const char *soname = elf->soname ? elf->soname : dlc_path_basename(host_path);
    cl->seen = dlc_strv_push(cl->seen, asked);
    if (dlc_strv_contains(cl->seen, soname) && strcmp(soname, asked) != 0)
        return 0; /* known under its soname already (another alias) */
    cl->seen = dlc_strv_push(cl->seen, soname);
    if (cl->n >= MAX_CLOSURE)
        return dlc_error_set(err, E2BIG, "more than %d libraries needed", MAX_CLOSURE);
    cl->libs = xrealloc(cl->libs, (cl->n + 1) * sizeof(*cl->libs));
    cl->libs[cl->n++] = (struct gpu_lib){
            .host_path = xstrdup(host_path),
            .soname = xstrdup(soname),
            .alias = strcmp(soname, asked) != 0 ? xstrdup(asked) : NULL,
    };
    /* As ld.so: DT_RPATH is ignored when DT_RUNPATH is present. */
    _cleanup_strv_ char **runpath =
            expand_runpath(cl, host_path, elf->runpath ? elf->runpath : elf->rpath);
    int r = 0;
    for (size_t i = 0; r == 0 && elf->needed && elf->needed[i]; i++)
        r = closure_need(cl, elf->needed[i], runpath, soname, err);
    return r;
}

int gpu_lib_closure(const struct dlc_ldcache *c, const char *root, const char *host_path,
                    const char *asked_name, struct gpu_lib **ret, size_t *ret_n,
                    struct dlc_error **err)
{
    struct closure cl = {.cache = c, .root = root};
    const char *asked = asked_name ? dlc_path_basename(asked_name) : dlc_path_basename(host_path);
    int r = closure_add(&cl, host_path, asked, asked, err);
    dlc_strv_free(cl.seen);
    if (r < 0) {
        gpu_libs_free(cl.libs, cl.n);
        return -1;
    }
    *ret = cl.libs;
    *ret_n = cl.n;
    return 0;
}
