/* ldcache.c: the host's /etc/ld.so.cache, as glibc's dl-cache.c reads it: the
 * "glibc-ld.so.cache1.1" format, alone (glibc >= 2.32 default) or after an old
 * "ld.so-1.7.0" table. Strings of the new format are offsets from its header. */
#include <errno.h>
#include <string.h>

#include "builder-internal.h"

#define OLD_MAGIC        "ld.so-1.7.0"
#define NEW_MAGIC        "glibc-ld.so.cache1.1"
#define NEW_HEADER_SIZE  48
#define NEW_ENTRY_SIZE   24
#define OLD_ENTRY_SIZE   12
#define MAX_LDCACHE_SIZE (64u << 20)

struct bldentry {
    const char *key;
    const char *value;
};

struct bldcache {
    char *buf;
    size_t len;
    struct bldentry *entries;
    size_t n;
};

void bldcache_free(struct bldcache *c)
{
    if (c == NULL)
        return;
    free(c->buf);
    free(c->entries);
    free(c);
}

size_t bldcache_count(const struct bldcache *c)
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
static int find_new_header(const struct bldcache *c, const char *path, size_t *ret,
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

static const char *cache_string(const struct bldcache *c, size_t base, uint32_t off)
{
    if ((uint64_t)base + off >= c->len)
        return NULL;
    const char *s = c->buf + base + off;
    return memchr(s, '\0', c->len - (base + off)) ? s : NULL;
}

static int parse(struct bldcache *c, const char *path, struct dlc_error **err)
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
        /* Libraries in glibc-hwcaps subdirectories are CPU-specific builds: the image must
         * run on other CPUs too, so only the baseline ones are used. */
        if (u64(e + 16) != 0 || strstr(value, "/glibc-hwcaps/") != NULL)
            continue;
        c->entries[c->n++] = (struct bldentry){key, value};
    }
    return 0;
}

int bldcache_load(const char *path, struct bldcache **ret, struct dlc_error **err)
{
    struct bldcache *c = xcalloc(1, sizeof(*c));
    _cleanup_error_ struct dlc_error *e = NULL;
    if (dlc_read_file(path, MAX_LDCACHE_SIZE, &c->buf, &c->len, &e) < 0) {
        if (e->code != ENOENT) {
            bldcache_free(c);
            return dlc_error_move(err, &e);
        }
        *ret = c; /* no cache: only the default directories are searched */
        return 0;
    }
    if (parse(c, path, err) < 0) {
        bldcache_free(c);
        return -1;
    }
    *ret = c;
    return 0;
}

const char *bldcache_lookup(const struct bldcache *c, const char *soname, size_t *iter)
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
