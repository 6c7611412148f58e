/* closure.c: host files into a layer tree, with the shared libraries ELF files need.
 *
 * Libraries are found the way ld.so finds them (DT_RPATH of the object and of the
 * executable when there is no DT_RUNPATH, DT_RUNPATH, the host's ld.so.cache, the default
 * directories), reading headers only. A library found in a default directory goes to the
 * same path in the image with the symlinks leading to it reproduced (/lib -> usr/lib,
 * libz.so.1 -> libz.so.1.2.13, Debian's /etc/alternatives), so the image's loader finds it
 * without an ld.so.cache; one found elsewhere through the cache is put in /usr/lib/<triplet>;
 * one found through an $ORIGIN run path goes to the same place relative to its user.
 */
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "builder-internal.h"

#define MAX_SYMLINK_FOLLOW 40
#define MAX_DIR_ENTRIES    200000

/* The default directories as the error messages name them (the lib64 ones are tried too,
 * for hosts laid out that way). */
#define DEFAULT_DIRS "/lib/" DLC_MULTIARCH ", /usr/lib/" DLC_MULTIARCH ", /lib, /usr/lib"

struct elf_memo {
    char *path;
    struct dlc_elf *elf; /* NULL: not ELF */
};

struct bresolver {
    struct dlc_ldcache *cache;
    char *cache_path;
    struct elf_memo *memo;
    size_t n_memo;
    char **visited; /* image paths whose closure was added */
    char **seen;    /* every DT_NEEDED name met since the last bresolver_take_seen */
};

int bresolver_new(const char *ldcache_path, struct bresolver **ret, struct dlc_error **err)
{
    struct bresolver *r = xcalloc(1, sizeof(*r));
    r->cache_path = xstrdup(ldcache_path ? ldcache_path : "/etc/ld.so.cache");
    if (dlc_ldcache_load(r->cache_path, 0, &r->cache, err) < 0) {
        bresolver_free(r);
        return -1;
    }
    *ret = r;
    return 0;
}

void bresolver_free(struct bresolver *r)
{
    if (r == NULL)
        return;
    dlc_ldcache_free(r->cache);
    free(r->cache_path);
    for (size_t i = 0; i < r->n_memo; i++) {
        free(r->memo[i].path);
        dlc_elf_free(r->memo[i].elf);
    }
    free(r->memo);
    dlc_strv_free(r->visited);
    dlc_strv_free(r->seen);
    free(r);
}

/* Parsed ELF of a host file (realpath), memoised; *ret NULL for non-ELF. Borrowed. */
static int elf_of(struct bresolver *r, const char *path, const struct dlc_elf **ret,
                  struct dlc_error **err)
{
    for (size_t i = 0; i < r->n_memo; i++) {
        if (strcmp(r->memo[i].path, path) == 0) {
            *ret = r->memo[i].elf;
            return 0;
        }
    }
    struct dlc_elf *e = NULL;
    if (dlc_elf_read(path, &e, err) < 0)
        return -1;
    r->memo = xrealloc(r->memo, (r->n_memo + 1) * sizeof(*r->memo));
    r->memo[r->n_memo++] = (struct elf_memo){xstrdup(path), e};
    *ret = e;
    return 0;
}

static unsigned normal_mode(mode_t m)
{
    return (m & 0111) ? 0755 : 0644;
}

static char *image_rel(const char *abs)
{
    while (*abs == '/')
        abs++;
    return xstrdup(abs);
}

/* ---- reproducing a host path: symlinks along the way, then the file ------------------ */

static int add_symlink(struct btree *t, const char *abs, const char *target, const char *where,
                       struct dlc_error **err)
{
    _cleanup_free_ char *rel = image_rel(abs);
    struct bnode n = {
            .type = BN_SYMLINK, .path = rel, .link = (char *)target, .where = (char *)where};
    return btree_add(t, &n, err);
}

static int add_host_file(struct btree *t, const char *host_real, const char *image_abs, int mode,
                         const char *where, struct dlc_error **err)
{
    struct stat st;
    if (stat(host_real, &st) < 0)
        return dlc_error_set_errno(err, errno, "%s: %s", where, host_real);
    if (!S_ISREG(st.st_mode))
        return dlc_error_set(err, EINVAL, "%s: %s is not a regular file", where, host_real);
    _cleanup_free_ char *rel = image_rel(image_abs);
    struct bnode n = {.type = BN_FILE,
                      .path = rel,
                      .src = (char *)host_real,
                      .mode = mode >= 0 ? (unsigned)mode : normal_mode(st.st_mode),
                      .size = (uint64_t)st.st_size,
                      .where = (char *)where};
    return btree_add(t, &n, err);
}

/* The next path after meeting symlink prefix -> target, with rest still to walk. */
static char *follow(const char *prefix_dir, const char *target, const char *rest)
{
    _cleanup_free_ char *joined =
            target[0] == '/' ? xasprintf("%s%s%s", target, *rest ? "/" : "", rest)
                             : xasprintf("%s/%s%s%s", prefix_dir, target, *rest ? "/" : "", rest);
    _cleanup_free_ char *norm = bpath_normalize_clamped(joined);
    return xasprintf("/%s", norm);
}

/* Puts host path abs at the same path in the image: every symlink met on the way becomes
 * a symlink entry, the file at the end a file entry. *ret_real gets the file's real path. */
static int install_host_path(struct btree *t, const char *abs, const char *where, char **ret_real,
                             struct dlc_error **err)
{
    _cleanup_free_ char *path = xstrdup(abs);
    for (int follows = 0; follows <= MAX_SYMLINK_FOLLOW; follows++) {
        const char *p = path + 1;
        _cleanup_free_ char *cur = xstrdup("");
        bool restarted = false;
        while (*p && !restarted) {
            size_t len = strcspn(p, "/");
            _cleanup_free_ char *next = xasprintf("%s/%.*s", cur, (int)len, p);
            const char *rest = p[len] ? p + len + 1 : "";
            struct stat st;
            if (lstat(next, &st) < 0)
                return dlc_error_set_errno(err, errno, "%s: %s", where, next);
            if (S_ISLNK(st.st_mode)) {
                char target[PATH_MAX];
                ssize_t n = readlink(next, target, sizeof(target) - 1);
                if (n <= 0)
                    return dlc_error_set_errno(err, n < 0 ? errno : EINVAL, "%s: readlink %s",
                                               where, next);
                target[n] = '\0';
                if (add_symlink(t, next, target, where, err) < 0)
                    return -1;
                char *np = follow(cur[0] ? cur : "/", target, rest);
                free(path);
                path = np;
                restarted = true;
            } else if (*rest == '\0') {
                if (add_host_file(t, next, next, -1, where, err) < 0)
                    return -1;
                *ret_real = TAKE_PTR(next);
                return 0;
            } else {
                free(cur);
                cur = TAKE_PTR(next);
                p = rest;
            }
        }
        if (!restarted)
            break;
    }
    dlc_error_set(err, ELOOP, "%s: %s: too many levels of symbolic links", where, abs);
    return -1; /* spelt out: *ret_real is set on every path that returns 0 */
}

/* ---- finding libraries ------------------------------------------------------------------ */

struct object {
    const char *host_real;  /* the object's real path on the host */
    const char *image_real; /* where it is in the image */
    const struct dlc_elf *elf;
};

struct found {
    char *host;     /* the path the library was found at on the host */
    char *image;    /* where it goes in the image */
    bool replicate; /* image == host path: reproduce the symlinks */
};

static bool try_runpath(char *const *dirs, const struct object *o, const char *name,
                        struct found *f)
{
    if (dirs == NULL)
        return false;
    _cleanup_free_ char *host_origin = dlc_path_dirname(o->host_real);
    _cleanup_free_ char *image_origin = dlc_path_dirname(o->image_real);
    for (size_t i = 0; dirs && dirs[i]; i++) {
        _cleanup_free_ char *hd = dlc_elf_expand_dst(dirs[i], host_origin);
        _cleanup_free_ char *cand = dlc_path_join(hd, name);
        if (hd[0] != '/' || !dlc_elf_matches(cand, o->elf->elf_class, o->elf->machine))
            continue;
        _cleanup_free_ char *id = dlc_elf_expand_dst(dirs[i], image_origin);
        _cleanup_free_ char *image = dlc_path_join(id, name);
        _cleanup_free_ char *norm = bpath_normalize_clamped(image);
        f->host = TAKE_PTR(cand);
        f->image = xasprintf("/%s", norm);
        f->replicate = strcmp(f->host, f->image) == 0;
        return true;
    }
    return false;
}

/* A candidate from the cache or a default directory, if ld.so would load it for o. */
static char *try_abi(const char *path, void *data)
{
    const struct dlc_elf *e = data;
    return dlc_elf_matches(path, e->elf_class, e->machine) ? xstrdup(path) : NULL;
}

static bool try_cache_and_defaults(struct bresolver *r, const struct object *o, const char *name,
                                   struct found *f)
{
    f->host = dlc_ldcache_search(r->cache, name, try_abi, (void *)o->elf);
    if (f->host == NULL)
        return false;
    _cleanup_free_ char *dir = dlc_path_dirname(f->host);
    f->replicate = dlc_ldcache_is_default_dir(dir);
    f->image = f->replicate ? xstrdup(f->host) : xasprintf("/usr/lib/" DLC_MULTIARCH "/%s", name);
    return true;
}

static int find_library(struct bresolver *r, const struct object *o, const struct object *exe,
                        const char *name, const char *where, struct found *f,
                        struct dlc_error **err)
{
    if (strchr(name, '/') != NULL) {
        if (name[0] != '/') {
            dlc_error_set(err, EINVAL, "%s: %s needs '%s', a relative path", where,
                          o->host_real ? o->host_real : "a library", name);
            return -1;
        }
        f->host = xstrdup(name);
        f->image = xstrdup(name);
        f->replicate = true;
        return 0;
    }
    bool found = false;
    if (o->elf->runpath == NULL) {
        found = try_runpath(o->elf->rpath, o, name, f);
        if (!found && exe && exe->elf->runpath == NULL && exe != o)
            found = try_runpath(exe->elf->rpath, exe, name, f);
    }
    if (!found)
        found = try_runpath(o->elf->runpath, o, name, f);
    if (!found)
        found = try_cache_and_defaults(r, o, name, f);
    if (found)
        return 0;
    if (o->host_real == NULL) /* asked for by name */
        dlc_error_set(err, ENOENT, "%s: %s is in neither %s nor " DEFAULT_DIRS, where, name,
                      r->cache_path);
    else
        dlc_error_set(err, ENOENT, "%s: %s needs %s, which is in neither %s nor " DEFAULT_DIRS,
                      where, o->host_real, name, r->cache_path);
    return -1; /* spelt out: f is filled on every path that returns 0 */
}

/* ---- closure ------------------------------------------------------------------------------ */

static int closure(struct bresolver *r, struct btree *t, const struct object *o,
                   const struct object *exe, const char *where, struct dlc_error **err);

/* Installs a found library and walks its own needs. */
static int install_found(struct bresolver *r, struct btree *t, struct found *f,
                         const struct object *exe, const char *where, struct dlc_error **err)
{
    _cleanup_free_ char *host_real = NULL, *image_real = NULL;
    if (f->replicate) {
        if (install_host_path(t, f->host, where, &host_real, err) < 0 || host_real == NULL)
            return -1;
        image_real = xstrdup(host_real);
    } else {
        host_real = realpath(f->host, NULL);
        if (host_real == NULL)
            return dlc_error_set_errno(err, errno, "%s: %s", where, f->host);
        if (add_host_file(t, host_real, f->image, -1, where, err) < 0)
            return -1;
        image_real = xstrdup(f->image);
    }
    const struct dlc_elf *e = NULL;
    if (elf_of(r, host_real, &e, err) < 0)
        return -1;
    if (e == NULL)
        return dlc_error_set(err, EINVAL, "%s: %s is not an ELF file", where, host_real);
    struct object lib = {host_real, image_real, e};
    return closure(r, t, &lib, exe, where, err);
}

static void found_release(struct found *f)
{
    free(f->host);
    free(f->image);
}

static int closure(struct bresolver *r, struct btree *t, const struct object *o,
                   const struct object *exe, const char *where, struct dlc_error **err)
{
    if (dlc_strv_contains(r->visited, o->image_real))
        return 0;
    r->visited = dlc_strv_push(r->visited, o->image_real);
    if (o->elf->interp != NULL) {
        struct found f = {xstrdup(o->elf->interp), xstrdup(o->elf->interp), true};
        int rc = install_found(r, t, &f, exe, where, err);
        found_release(&f);
        if (rc < 0)
            return dlc_error_wrap(err, "interpreter of %s", o->host_real);
    }
    for (size_t i = 0; o->elf->needed && o->elf->needed[i]; i++) {
        if (!dlc_strv_contains(r->seen, o->elf->needed[i]))
            r->seen = dlc_strv_push(r->seen, o->elf->needed[i]);
        struct found f = {NULL, NULL, false};
        int rc = find_library(r, o, exe, o->elf->needed[i], where, &f, err);
        if (rc == 0)
            rc = install_found(r, t, &f, exe, where, err);
        found_release(&f);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* ---- entry points ----------------------------------------------------------------------- */

char **bresolver_take_seen(struct bresolver *r)
{
    return TAKE_PTR(r->seen);
}

void bresolver_reset(struct bresolver *r)
{
    dlc_strv_free(r->visited);
    r->visited = NULL;
}

int bclosure_add_file(struct bresolver *r, struct btree *t, const char *host, const char *dst,
                      int mode, bool with_closure, const char *where, struct dlc_error **err)
{
    _cleanup_free_ char *real = realpath(host, NULL);
    if (real == NULL)
        return dlc_error_set_errno(err, errno, "%s: 'src' %s", where, host);
    _cleanup_free_ char *abs = xasprintf("/%s", dst);
    if (add_host_file(t, real, abs, mode, where, err) < 0)
        return -1;
    if (!with_closure)
        return 0;
    const struct dlc_elf *e = NULL;
    if (elf_of(r, real, &e, err) < 0)
        return dlc_error_wrap(err, "%s", where);
    if (e == NULL || (e->interp == NULL && e->needed == NULL))
        return 0; /* not ELF, or static */
    struct object o = {real, abs, e};
    return closure(r, t, &o, &o, where, err);
}

int bclosure_add_library(struct bresolver *r, struct btree *t, const char *soname,
                         const char *where, struct dlc_error **err)
{
    /* A library asked for by name is looked up as the loader would for a native object. */
    struct dlc_elf native = {.elf_class = DLC_ELF_CLASS, .machine = DLC_ELF_MACHINE};
    struct object o = {NULL, NULL, &native};
    struct found f = {NULL, NULL, false};
    int rc = find_library(r, &o, NULL, soname, where, &f, err);
    if (rc == 0)
        rc = install_found(r, t, &f, NULL, where, err);
    found_release(&f);
    return rc;
}
