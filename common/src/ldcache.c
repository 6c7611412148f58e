/* ldcache.c: an /etc/ld.so.cache, as glibc's dl-cache.c reads it: the
 * "glibc-ld.so.cache1.1" format, alone (glibc >= 2.32 default) or after an old
 * "ld.so-1.7.0" table. Strings of the new format are offsets from its header. And where
 * ld.so looks after the cache: its default directories. */
#include <errno.h>
#include <string.h>

#include "common.h"

#define OLD_MAGIC        "ld.so-1.7.0"
#define NEW_MAGIC        "glibc-ld.so.cache1.1"
#define NEW_HEADER_SIZE  48
#define NEW_ENTRY_SIZE   24
#define OLD_ENTRY_SIZE   12
#define MAX_LDCACHE_SIZE (64u << 20)

/* glibc's ldconfig.h: the library type and the architecture bits of an entry's flags. */
#define FLAG_TYPE_MASK     0x00ff
#define FLAG_REQUIRED_MASK 0xff00

static const char *const default_dirs[] = {"/lib/" DLC_MULTIARCH,
                                           "/usr/lib/" DLC_MULTIARCH,
                                           "/lib",
                                           "/usr/lib",
                                           "/lib64",
                                           "/usr/lib64",
                                           NULL};

struct ldentry {
    const char *key;
    const char *value;
};

struct dlc_ldcache {
    char *buf;
    size_t len;
    struct ldentry *entries;
    size_t n;
};

void dlc_ldcache_free(struct dlc_ldcache *c)
{
    if (c == NULL)
        return;
    free(c->buf);
    free(c->entries);
    free(c);
}

size_t dlc_ldcache_count(const struct dlc_ldcache *c)
{
    return c->n;
}

static uint32_t u32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static uint64_t u64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* Offset of the new-format header: 0, or after an old-format table. */
static int find_new_header(const struct dlc_ldcache *c, const char *path, size_t *ret,
                           struct dlc_error **err)
{
    if (c->len >= NEW_HEADER_SIZE && memcmp(c->buf, NEW_MAGIC, strlen(NEW_MAGIC)) == 0) {
        *ret = 0;
        return 0;
    }
    if (c->len < 16 || memcmp(c->buf, OLD_MAGIC, strlen(OLD_MAGIC)) != 0)
        return dlc_error_set(err, EINVAL, "%s: not an ld.so.cache file", path);
    uint64_t nold = u32(c->buf + 12);
    uint64_t off = 16 + nold * OLD_ENTRY_SIZE;
    off = (off + 7) & ~(uint64_t)7;
    if (off + NEW_HEADER_SIZE > c->len || memcmp(c->buf + off, NEW_MAGIC, strlen(NEW_MAGIC)) != 0)
        return dlc_error_set(err, EINVAL, "%s: old-format ld.so.cache without a new table", path);
    *ret = (size_t)off;
    return 0;
}

static const char *cache_string(const struct dlc_ldcache *c, size_t base, uint32_t off)
{
    if ((uint64_t)base + off >= c->len)
        return NULL;
    const char *s = c->buf + base + off;
    return memchr(s, '\0', c->len - (base + off)) ? s : NULL;
}

/* Whether an entry is one to keep: never a CPU-specific build in a glibc-hwcaps
 * subdirectory, and with DLC_LDCACHE_NATIVE only this host's ABI (i386 compat libraries
 * on x86_64 are not). */
static bool wanted(const char *e, const char *value, unsigned flags)
{
    if (u64(e + 16) != 0 || strstr(value, "/glibc-hwcaps/") != NULL)
        return false;
    if (!(flags & DLC_LDCACHE_NATIVE))
        return true;
    uint32_t f = u32(e);
    return (f & FLAG_TYPE_MASK) == (DLC_LDCACHE_FLAGS & FLAG_TYPE_MASK) &&
           (f & FLAG_REQUIRED_MASK) == (DLC_LDCACHE_FLAGS & FLAG_REQUIRED_MASK);
}

static int parse(struct dlc_ldcache *c, const char *path, unsigned flags, struct dlc_error **err)
{
    size_t base = 0;
    if (find_new_header(c, path, &base, err) < 0)
        return -1;
    uint64_t nlibs = u32(c->buf + base + 20);
    if (base + NEW_HEADER_SIZE + nlibs * NEW_ENTRY_SIZE > c->len)
        return dlc_error_set(err, EINVAL, "%s: truncated ld.so.cache (%llu entries)", path,
                             (unsigned long long)nlibs);
    c->entries = xcalloc(nlibs ? nlibs : 1, sizeof(*c->entries));
    for (uint64_t i = 0; i < nlibs; i++) {
        const char *e = c->buf + base + NEW_HEADER_SIZE + i * NEW_ENTRY_SIZE;
        const char *key = cache_string(c, base, u32(e + 4));
        const char *value = cache_string(c, base, u32(e + 8));
        if (key == NULL || value == NULL)
            return dlc_error_set(err, EINVAL, "%s: entry %llu points outside the file", path,
                                 (unsigned long long)i);
        if (wanted(e, value, flags))
            c->entries[c->n++] = (struct ldentry){key, value};
    }
    return 0;
}

int dlc_ldcache_load(const char *path, unsigned flags, struct dlc_ldcache **ret,
                     struct dlc_error **err)
{
    struct dlc_ldcache *c = xcalloc(1, sizeof(*c));
    _cleanup_error_ struct dlc_error *e = NULL;
    if (dlc_read_file(path, MAX_LDCACHE_SIZE, &c->buf, &c->len, &e) < 0) {
        if (e->code != ENOENT) {
            dlc_ldcache_free(c);
            return dlc_error_move(err, &e);
        }
        *ret = c; /* no cache: only the default directories are searched */
        return 0;
    }
    if (parse(c, path, flags, err) < 0) {
        dlc_ldcache_free(c);
        return -1;
    }
    *ret = c;
    return 0;
}

const char *dlc_ldcache_lookup(const struct dlc_ldcache *c, const char *soname, size_t *iter)
{
    for (size_t i = *iter; i < c->n; i++) {
        if (strcmp(c->entries[i].key, soname) == 0) {
            *iter = i + 1;
            return c->entries[i].value;
        }
    }
    *iter = c->n;
    return NULL;
}

const char *dlc_ldcache_next(const struct dlc_ldcache *c, const char *prefix, size_t *iter,
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

bool dlc_ldcache_is_default_dir(const char *dir)
{
    for (size_t i = 0; default_dirs[i]; i++)
        if (strcmp(default_dirs[i], dir) == 0)
            return true;
    return false;
}

char *dlc_ldcache_search(const struct dlc_ldcache *c, const char *name, dlc_ldcache_try_fn try_path,
                         void *data)
{
    size_t iter = 0;
    for (const char *p; c && (p = dlc_ldcache_lookup(c, name, &iter)) != NULL;) {
        char *found = try_path(p, data);
        if (found)
            return found;
    }
    for (size_t i = 0; default_dirs[i]; i++) {
        _cleanup_free_ char *p = dlc_path_join(default_dirs[i], name);
        char *found = try_path(p, data);
        if (found)
            return found;
    }
    return NULL;
}
