/* ldcache.c: finding host libraries the way the dynamic loader does, but inside a driver
 * root: the root's /etc/ld.so.cache ("glibc-ld.so.cache1.1", alone or after an old
 * "ld.so-1.7.0" table, as glibc's dl-cache.c reads it), the default directories, and
 * DT_NEEDED/DT_RUNPATH from the ELF dynamic section for closures.
 *
 * (The builder has its own reader of the same formats for image closures; the runner may
 * not link the builder, hence this one. Candidates for a shared common/ module.) */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "gpu.h"

#define OLD_MAGIC        "ld.so-1.7.0"
#define NEW_MAGIC        "glibc-ld.so.cache1.1"
#define NEW_HEADER_SIZE  48
#define NEW_ENTRY_SIZE   24
#define OLD_ENTRY_SIZE   12
#define MAX_LDCACHE_SIZE (64u << 20)
#define MAX_DYNAMIC_SIZE (1u << 20)
#define MAX_STRTAB_SIZE  (64u << 20)
#define MAX_CLOSURE      512

/* glibc's ldconfig.h: the ELF libc6 type and the architecture bits of an entry. */
#define FLAG_TYPE_MASK     0x00ff
#define FLAG_ELF_LIBC6     0x0003
#define FLAG_REQUIRED_MASK 0xff00
#if defined(__x86_64__)
#    define FLAG_ARCH   0x0300
#    define ELF_MACHINE EM_X86_64
#elif defined(__aarch64__)
#    define FLAG_ARCH   0x0a00
#    define ELF_MACHINE EM_AARCH64
#else
#    error "GPU passthrough supports x86_64 and aarch64 hosts"
#endif

struct ldentry {
    const char *key;
    const char *value;
};

struct gpu_ldcache {
    char *buf;
    size_t len;
    struct ldentry *entries;
    size_t n;
};

void gpu_ldcache_free(struct gpu_ldcache *c)
{
    if (c == NULL)
        return;
    free(c->buf);
    free(c->entries);
    free(c);
}

static uint32_t u32_at(const char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static uint64_t u64_at(const char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* Offset of the new-format header: 0, or after an old-format table. */
static int find_new_header(const struct gpu_ldcache *c, const char *path, size_t *ret,
                           struct dlc_error **err)
{
    if (c->len >= NEW_HEADER_SIZE && memcmp(c->buf, NEW_MAGIC, strlen(NEW_MAGIC)) == 0) {
        *ret = 0;
        return 0;
    }
    if (c->len < 16 || memcmp(c->buf, OLD_MAGIC, strlen(OLD_MAGIC)) != 0)
        return dlc_error_set(err, EINVAL, "%s: not an ld.so.cache file", path);
    uint64_t off = 16 + (uint64_t)u32_at(c->buf + 12) * OLD_ENTRY_SIZE;
    off = (off + 7) & ~(uint64_t)7;
    if (off + NEW_HEADER_SIZE > c->len || memcmp(c->buf + off, NEW_MAGIC, strlen(NEW_MAGIC)) != 0)
        return dlc_error_set(err, EINVAL, "%s: old-format ld.so.cache is not supported", path);
    *ret = (size_t)off;
    return 0;
}

static const char *cache_string(const struct gpu_ldcache *c, size_t base, uint32_t off)
{
    if ((uint64_t)base + off >= c->len)
        return NULL;
    const char *s = c->buf + base + off;
    return memchr(s, '\0', c->len - (base + off)) ? s : NULL;
}

static int parse(struct gpu_ldcache *c, const char *path, struct dlc_error **err)
{
    size_t base = 0;
    if (find_new_header(c, path, &base, err) < 0)
        return -1;
    uint64_t nlibs = u32_at(c->buf + base + 20);
    if (base + NEW_HEADER_SIZE + nlibs * NEW_ENTRY_SIZE > c->len)
        return dlc_error_set(err, EINVAL, "%s: truncated (%llu entries)", path,
                             (unsigned long long)nlibs);
    c->entries = xcalloc(nlibs ? nlibs : 1, sizeof(*c->entries));
    for (uint64_t i = 0; i < nlibs; i++) {
        const char *e = c->buf + base + NEW_HEADER_SIZE + i * NEW_ENTRY_SIZE;
        int32_t flags = (int32_t)u32_at(e);
        const char *key = cache_string(c, base, u32_at(e + 4));
        const char *value = cache_string(c, base, u32_at(e + 8));
        if (key == NULL || value == NULL)
            return dlc_error_set(err, EINVAL, "%s: entry %llu points outside the file", path,
                                 (unsigned long long)i);
        /* Another ABI (i386 compat libs) or a CPU-specific hwcaps build: not ours. */
        if ((flags & FLAG_TYPE_MASK) != FLAG_ELF_LIBC6 ||
            (flags & FLAG_REQUIRED_MASK) != FLAG_ARCH || u64_at(e + 16) != 0)
            continue;
        c->entries[c->n++] = (struct ldentry){key, value};
    }
    return 0;
}

int gpu_ldcache_load(const char *root, struct gpu_ldcache **ret, struct dlc_error **err)
{
    _cleanup_free_ char *path = dlc_path_join(root, "/etc/ld.so.cache");
    struct gpu_ldcache *c = xcalloc(1, sizeof(*c));
    _cleanup_error_ struct dlc_error *e = NULL;
    if (dlc_read_file(path, MAX_LDCACHE_SIZE, &c->buf, &c->len, &e) < 0) {
        if (e->code != ENOENT) {
            gpu_ldcache_free(c);
            return dlc_error_move(err, &e);
        }
        *ret = c; /* no cache: the default directories only */
        return 0;
    }
    if (parse(c, path, err) < 0) {
        gpu_ldcache_free(c);
        return -1;
    }
    *ret = c;
    return 0;
}

const char *gpu_ldcache_next(const struct gpu_ldcache *c, const char *prefix, size_t *iter,
                             const char **ret_key)
{
    for (size_t i = *iter; i < c->n; i++) {
        if (dlc_startswith(c->entries[i].key, prefix)) {
            *iter = i + 1;
            if (ret_key)
                *ret_key = c->entries[i].key;
            return c->entries[i].value;
        }
    }
    *iter = c->n;
    return NULL;
}

/* ---- ELF ---------------------------------------------------------------------------- */

static int pread_exact(int fd, void *buf, size_t len, uint64_t off, const char *path,
                       struct dlc_error **err)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return dlc_error_set_errno(err, errno, "read %s", path);
        if (n == 0)
            return dlc_error_set(err, EINVAL, "%s: truncated ELF file", path);
        done += (size_t)n;
    }
    return 0;
}

struct elf_layout {
    Elf64_Phdr *phdrs;
    size_t n_phdrs;
    const Elf64_Phdr *dynamic;
};

static int read_headers(int fd, const char *path, struct elf_layout *l, struct dlc_error **err)
{
    Elf64_Ehdr eh;
    if (pread_exact(fd, &eh, sizeof(eh), 0, path, err) < 0)
        return -1;
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
        return dlc_error_set(err, EINVAL, "%s: not an ELF file", path);
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
        eh.e_machine != ELF_MACHINE)
        return dlc_error_set(err, EINVAL, "%s: not a 64-bit shared object for this machine", path);
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 4096)
        return dlc_error_set(err, EINVAL, "%s: bad ELF program headers", path);
    l->n_phdrs = eh.e_phnum;
    l->phdrs = xcalloc(l->n_phdrs, sizeof(Elf64_Phdr));
    if (pread_exact(fd, l->phdrs, l->n_phdrs * sizeof(Elf64_Phdr), eh.e_phoff, path, err) < 0)
        return -1;
    for (size_t i = 0; i < l->n_phdrs; i++)
        if (l->phdrs[i].p_type == PT_DYNAMIC)
            l->dynamic = &l->phdrs[i];
    if (l->dynamic == NULL)
        return dlc_error_set(err, EINVAL, "%s: no dynamic section (a static binary?)", path);
    if (l->dynamic->p_filesz > MAX_DYNAMIC_SIZE)
        return dlc_error_set(err, EINVAL, "%s: dynamic section too large", path);
    return 0;
}

/* File offset of a virtual address, through the PT_LOAD segment holding it. */
static int vaddr_to_offset(const struct elf_layout *l, uint64_t vaddr, uint64_t *ret)
{
    for (size_t i = 0; i < l->n_phdrs; i++) {
        const Elf64_Phdr *ph = &l->phdrs[i];
        if (ph->p_type == PT_LOAD && vaddr >= ph->p_vaddr && vaddr - ph->p_vaddr < ph->p_filesz) {
            *ret = ph->p_offset + (vaddr - ph->p_vaddr);
            return 0;
        }
    }
    return -1;
}

static char *strtab_at(const char *strtab, uint64_t strsz, uint64_t off)
{
    if (off >= strsz || memchr(strtab + off, '\0', strsz - off) == NULL)
        return NULL;
    return xstrdup(strtab + off);
}

static char **split_path_list(const char *s)
{
    char **v = NULL;
    while (s && *s) {
        const char *colon = strchr(s, ':');
        size_t n = colon ? (size_t)(colon - s) : strlen(s);
        if (n > 0) {
            _cleanup_free_ char *one = xstrndup(s, n);
            v = dlc_strv_push(v, one);
        }
        s = colon ? colon + 1 : NULL;
    }
    return v;
}

/* Collects the string entries of the dynamic section dyn[0..n). */
static int collect_dyn(const Elf64_Dyn *dyn, size_t n, const char *strtab, uint64_t strsz,
                       const char *path, struct gpu_elf *ret, struct dlc_error **err)
{
    _cleanup_free_ char *rpath = NULL, *runpath = NULL;
    for (size_t i = 0; i < n && dyn[i].d_tag != DT_NULL; i++) {
        int64_t tag = dyn[i].d_tag;
        if (tag != DT_NEEDED && tag != DT_SONAME && tag != DT_RPATH && tag != DT_RUNPATH)
            continue;
        char *s = strtab_at(strtab, strsz, dyn[i].d_un.d_val);
        if (s == NULL)
            return dlc_error_set(err, EINVAL, "%s: dynamic string outside its table", path);
        if (tag == DT_NEEDED) {
            ret->needed = dlc_strv_push(ret->needed, s);
            free(s);
        } else if (tag == DT_SONAME) {
            free(ret->soname);
            ret->soname = s;
        } else if (tag == DT_RPATH) {
            free(rpath);
            rpath = s;
        } else {
            free(runpath);
            runpath = s;
        }
    }
    /* As ld.so: DT_RPATH is ignored when DT_RUNPATH is present. */
    ret->runpath = split_path_list(runpath ? runpath : rpath);
    return 0;
}

static int read_dynamic(int fd, const char *path, const struct elf_layout *l, struct gpu_elf *ret,
                        struct dlc_error **err)
{
    DLC_ASSERT(l->dynamic != NULL); /* read_headers made sure */
    size_t n = l->dynamic->p_filesz / sizeof(Elf64_Dyn);
    _cleanup_free_ Elf64_Dyn *dyn = xcalloc(n ? n : 1, sizeof(Elf64_Dyn));
    if (pread_exact(fd, dyn, n * sizeof(Elf64_Dyn), l->dynamic->p_offset, path, err) < 0)
        return -1;
    uint64_t strtab_vaddr = 0, strsz = 0;
    bool have_strtab = false;
    for (size_t i = 0; i < n && dyn[i].d_tag != DT_NULL; i++) {
        if (dyn[i].d_tag == DT_STRTAB) {
            strtab_vaddr = dyn[i].d_un.d_ptr;
            have_strtab = true;
        } else if (dyn[i].d_tag == DT_STRSZ) {
            strsz = dyn[i].d_un.d_val;
        }
    }
    uint64_t strtab_off = 0;
    if (!have_strtab || strsz == 0 || strsz > MAX_STRTAB_SIZE ||
        vaddr_to_offset(l, strtab_vaddr, &strtab_off) < 0)
        return dlc_error_set(err, EINVAL, "%s: bad dynamic string table", path);
    _cleanup_free_ char *strtab = xmalloc(strsz);
    if (pread_exact(fd, strtab, strsz, strtab_off, path, err) < 0)
        return -1;
    return collect_dyn(dyn, n, strtab, strsz, path, ret, err);
}

void gpu_elf_release(struct gpu_elf *e)
{
    free(e->soname);
    dlc_strv_free(e->needed);
    dlc_strv_free(e->runpath);
    *e = (struct gpu_elf){0};
}

int gpu_elf_read(const char *path, struct gpu_elf *ret, struct dlc_error **err)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dlc_error_set_errno(err, errno, "open %s", path);
    struct elf_layout l = {0};
    struct gpu_elf e = {0};
    int r = read_headers(fd, path, &l, err);
    if (r == 0)
        r = read_dynamic(fd, path, &l, &e, err);
    free(l.phdrs);
    if (r < 0) {
        gpu_elf_release(&e);
        return -1;
    }
    *ret = e;
    return 0;
}

/* ---- lookup and closure --------------------------------------------------------------- */

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
    struct gpu_elf elf = {0};
    if (gpu_elf_read(host, &elf, &e) < 0)
        return NULL;
    gpu_elf_release(&elf);
    return TAKE_PTR(host);
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

char *gpu_lib_find(const struct gpu_ldcache *c, const char *root, const char *name)
{
    if (name[0] == '/')
        return usable_lib(root, name);
    if (strchr(name, '/') != NULL)
        return NULL;
    size_t iter = 0;
    const char *key = NULL, *value;
    while ((value = gpu_ldcache_next(c, name, &iter, &key)) != NULL) {
        if (strcmp(key, name) != 0)
            continue;
        char *found = usable_lib(root, value);
        if (found)
            return found;
    }
    static const char *const defaults[] = {"/lib/" GPU_MULTIARCH,
                                           "/usr/lib/" GPU_MULTIARCH,
                                           "/lib64",
                                           "/usr/lib64",
                                           "/lib",
                                           "/usr/lib",
                                           NULL};
    return find_in_dirs(root, defaults, name);
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
    const struct gpu_ldcache *cache;
    const char *root;
    struct gpu_lib *libs;
    size_t n;
    char **seen; /* sonames and asked names already handled */
};

/* DT_RUNPATH entries of the object at host_path, with $ORIGIN expanded to its directory as
 * seen from inside root. */
static char **expand_runpath(const struct closure *cl, const char *host_path, char **runpath)
{
    size_t rootlen = strcmp(cl->root, "/") == 0 ? 0 : strlen(cl->root);
    _cleanup_free_ char *dir = dlc_path_dirname(host_path + rootlen);
    char **out = NULL;
    for (size_t i = 0; runpath && runpath[i]; i++) {
        const char *rest = dlc_startswith(runpath[i], "$ORIGIN");
        if (rest == NULL)
            rest = dlc_startswith(runpath[i], "${ORIGIN}");
        _cleanup_free_ char *p = rest ? xasprintf("%s%s", dir, rest) : xstrdup(runpath[i]);
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
    struct gpu_elf elf = {0};
    if (gpu_elf_read(host_path, &elf, err) < 0)
        return dlc_error_wrap(err, "%s", by);
    const char *soname = elf.soname ? elf.soname : dlc_path_basename(host_path);
    cl->seen = dlc_strv_push(cl->seen, asked);
    if (dlc_strv_contains(cl->seen, soname) && strcmp(soname, asked) != 0) {
        gpu_elf_release(&elf); /* known under its soname already (another alias) */
        return 0;
    }
    cl->seen = dlc_strv_push(cl->seen, soname);
    if (cl->n >= MAX_CLOSURE) {
        gpu_elf_release(&elf);
        return dlc_error_set(err, E2BIG, "more than %d libraries needed", MAX_CLOSURE);
    }
    cl->libs = xrealloc(cl->libs, (cl->n + 1) * sizeof(*cl->libs));
    cl->libs[cl->n++] = (struct gpu_lib){
            .host_path = xstrdup(host_path),
            .soname = xstrdup(soname),
            .alias = strcmp(soname, asked) != 0 ? xstrdup(asked) : NULL,
    };
    _cleanup_strv_ char **runpath = expand_runpath(cl, host_path, elf.runpath);
    int r = 0;
    for (size_t i = 0; r == 0 && elf.needed && elf.needed[i]; i++)
        r = closure_need(cl, elf.needed[i], runpath, soname, err);
    gpu_elf_release(&elf);
    return r;
}

int gpu_lib_closure(const struct gpu_ldcache *c, const char *root, const char *host_path,
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
