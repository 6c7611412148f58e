/* ld.so.cache files: hand-made ones (hwcaps and foreign-ABI entries, both formats, damage),
 * one written by the real ldconfig for a root of gcc-built libraries, the host's own; and
 * the search order after the run paths (cache, then the default directories). */
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "unit.h"

static void put32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

/* A foreign ABI's ldconfig flags: i386 libc6 on 64-bit hosts, x86-64 on i386. */
#define FOREIGN_FLAGS (DLC_LDCACHE_FLAGS == 0x0003 ? 0x0303u : 0x0003u)

struct ent {
    const char *key, *value;
    uint64_t hwcap;
    uint32_t flags;
};

/* A new-format cache table at buf (entries, then their strings, offsets from buf); returns
 * its length. */
static size_t make_table(unsigned char *buf, const struct ent *e, size_t n)
{
    static const char magic[] = "glibc-ld.so.cache1.1"; /* 20 bytes, no NUL in the file */
    memcpy(buf, magic, sizeof(magic) - 1);
    put32(buf + 20, (uint32_t)n);
    size_t str = 48 + n * 24;
    for (size_t i = 0; i < n; i++) {
        unsigned char *ent = buf + 48 + i * 24;
        put32(ent, e[i].flags);
        const char *kv[2] = {e[i].key, e[i].value};
        for (int k = 0; k < 2; k++) {
            put32(ent + 4 + 4 * k, (uint32_t)str);
            memcpy(buf + str, kv[k], strlen(kv[k]) + 1);
            str += strlen(kv[k]) + 1;
        }
        memcpy(ent + 16, &e[i].hwcap, 8);
    }
    return str;
}

static const struct ent ents[] = {
        {"libfoo.so.1", "/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libfoo.so.1", 1ull << 62,
         DLC_LDCACHE_FLAGS},
        {"libfoo.so.1", "/lib/x86_64-linux-gnu/libfoo.so.1", 0, DLC_LDCACHE_FLAGS},
        {"libfoo.so.1", "/lib32/libfoo.so.1", 0, FOREIGN_FLAGS},
        {"libbar.so.2", "/opt/x/libbar.so.2", 0, DLC_LDCACHE_FLAGS},
};

/* ents written to dir/ld.so.cache and loaded with flags. */
static struct dlc_ldcache *load_ents(const char *dir, unsigned flags)
{
    _cleanup_free_ char *p = dlc_path_join(dir, "ld.so.cache");
    unsigned char buf[4096] = {0};
    size_t len = make_table(buf, ents, DLC_ARRAY_SIZE(ents));
    struct dlc_error *err = NULL;
    assert_int_equal(dlc_write_file_atomic(p, buf, len, 0644, &err), 0);
    struct dlc_ldcache *c = NULL;
    assert_int_equal(dlc_ldcache_load(p, flags, &c, &err), 0);
    return c;
}

static void test_ldcache__entries(void **state)
{
    (void)state;
    char *dir = unit_tmpdir();
    _cleanup_(dlc_ldcache_freep) struct dlc_ldcache *c = load_ents(dir, 0);
    assert_int_equal(dlc_ldcache_count(c), 3); /* the hwcaps entry is skipped */
    size_t it = 0;
    assert_string_equal(dlc_ldcache_lookup(c, "libfoo.so.1", &it),
                        "/lib/x86_64-linux-gnu/libfoo.so.1");
    assert_string_equal(dlc_ldcache_lookup(c, "libfoo.so.1", &it), "/lib32/libfoo.so.1");
    assert_null(dlc_ldcache_lookup(c, "libfoo.so.1", &it));
    it = 0;
    assert_null(dlc_ldcache_lookup(c, "libfoo.so", &it)); /* exact keys only */
    it = 0;
    assert_null(dlc_ldcache_lookup(c, "libnone.so", &it));

    /* by prefix, with the key */
    it = 0;
    const char *key = NULL;
    assert_string_equal(dlc_ldcache_next(c, "lib", &it, &key), "/lib/x86_64-linux-gnu/libfoo.so.1");
    assert_string_equal(key, "libfoo.so.1");
    assert_string_equal(dlc_ldcache_next(c, "lib", &it, NULL), "/lib32/libfoo.so.1");
    assert_string_equal(dlc_ldcache_next(c, "lib", &it, &key), "/opt/x/libbar.so.2");
    assert_string_equal(key, "libbar.so.2");
    assert_null(dlc_ldcache_next(c, "lib", &it, &key));

    /* this host's ABI only: the foreign entry goes too */
    _cleanup_(dlc_ldcache_freep) struct dlc_ldcache *native = load_ents(dir, DLC_LDCACHE_NATIVE);
    assert_int_equal(dlc_ldcache_count(native), 2);
    it = 0;
    assert_string_equal(dlc_ldcache_lookup(native, "libfoo.so.1", &it),
                        "/lib/x86_64-linux-gnu/libfoo.so.1");
    assert_null(dlc_ldcache_lookup(native, "libfoo.so.1", &it));
    unit_tmpdir_free(dir);
}

/* ldconfig's compat format: an old "ld.so-1.7.0" table, then the new one at the next 8-byte
 * boundary; only the new one is read. */
static void test_ldcache__old_format_prefix(void **state)
{
    (void)state;
    char *dir = unit_tmpdir();
    _cleanup_free_ char *p = dlc_path_join(dir, "ld.so.cache");
    unsigned char buf[4096] = {0};
    static const char old_magic[] = "ld.so-1.7.0";
    memcpy(buf, old_magic, sizeof(old_magic) - 1);
    put32(buf + 12, 1); /* one old entry: 16 + 12 = 28, aligned to 32 */
    size_t len = 32 + make_table(buf + 32, ents + 1, 1);
    struct dlc_error *err = NULL;
    assert_int_equal(dlc_write_file_atomic(p, buf, len, 0644, &err), 0);
    _cleanup_(dlc_ldcache_freep) struct dlc_ldcache *c = NULL;
    assert_int_equal(dlc_ldcache_load(p, 0, &c, &err), 0);
    size_t it = 0;
    assert_string_equal(dlc_ldcache_lookup(c, "libfoo.so.1", &it),
                        "/lib/x86_64-linux-gnu/libfoo.so.1");
    /* the old table alone */
    assert_int_equal(dlc_write_file_atomic(p, buf, 28, 0644, &err), 0);
    struct dlc_ldcache *bad = NULL;
    assert_dlc_error(dlc_ldcache_load(p, 0, &bad, &err), &err, EINVAL,
                     "old-format ld.so.cache without a new table");
    unit_tmpdir_free(dir);
}

static void test_ldcache__damaged(void **state)
{
    (void)state;
    char *dir = unit_tmpdir();
    _cleanup_free_ char *p = dlc_path_join(dir, "ld.so.cache");
    unsigned char buf[4096] = {0};
    size_t len = make_table(buf, ents, DLC_ARRAY_SIZE(ents));
    struct dlc_error *err = NULL;
    struct dlc_ldcache *bad = NULL;
    /* a string offset past the end of the file */
    put32(buf + 48 + 3 * 24 + 8, 100000);
    assert_int_equal(dlc_write_file_atomic(p, buf, len, 0644, &err), 0);
    assert_dlc_error(dlc_ldcache_load(p, 0, &bad, &err), &err, EINVAL,
                     "entry 3 points outside the file");
    /* more entries than the file holds */
    put32(buf + 20, 1000);
    assert_int_equal(dlc_write_file_atomic(p, buf, len, 0644, &err), 0);
    assert_dlc_error(dlc_ldcache_load(p, 0, &bad, &err), &err, EINVAL, "truncated ld.so.cache");
    /* a header alone claiming a huge count */
    char trunc[64] = "glibc-ld.so.cache1.1";
    trunc[20] = (char)0xff;
    trunc[21] = (char)0xff;
    assert_int_equal(dlc_write_file_atomic(p, trunc, sizeof(trunc), 0644, &err), 0);
    assert_dlc_error(dlc_ldcache_load(p, DLC_LDCACHE_NATIVE, &bad, &err), &err, EINVAL,
                     "truncated ld.so.cache (65535 entries)");
    assert_int_equal(dlc_write_file_atomic(p, "junk", 4, 0644, &err), 0);
    assert_dlc_error(dlc_ldcache_load(p, 0, &bad, &err), &err, EINVAL, "not an ld.so.cache file");
    const char text[] = "this is not a cache file at all";
    assert_int_equal(dlc_write_file_atomic(p, text, strlen(text), 0644, &err), 0);
    assert_dlc_error(dlc_ldcache_load(p, 0, &bad, &err), &err, EINVAL, "not an ld.so.cache file");
    /* no cache at all: fine, nothing in it */
    _cleanup_free_ char *none = dlc_path_join(dir, "none");
    _cleanup_(dlc_ldcache_freep) struct dlc_ldcache *empty = NULL;
    assert_int_equal(dlc_ldcache_load(none, 0, &empty, &err), 0);
    assert_int_equal(dlc_ldcache_count(empty), 0);
    size_t it = 0;
    assert_null(dlc_ldcache_next(empty, "lib", &it, NULL));
    unit_tmpdir_free(dir);
}

/* A root of gcc-built libraries and the cache `ldconfig -r` writes for it. */
static void test_ldcache__real_ldconfig(void **state)
{
    (void)state;
    char *root = unit_tmpdir();
    _cleanup_free_ char *libdir = dlc_path_join(root, "/usr/lib/" DLC_MULTIARCH);
    _cleanup_free_ char *etc = dlc_path_join(root, "/etc");
    struct dlc_error *err = NULL;
    assert_int_equal(dlc_mkdir_p(libdir, 0755, &err), 0);
    assert_int_equal(dlc_mkdir_p(etc, 0755, &err), 0);
    _cleanup_free_ char *src = dlc_path_join(root, "stub.c");
    static const char stub[] = "int stub_fn(void) { return 100; }\n";
    assert_int_equal(dlc_write_file_atomic(src, stub, strlen(stub), 0644, &err), 0);
    static const char *const libs[][2] = {{"libcuda.so.999.88.77", "libcuda.so.1"},
                                          {"libcudadebugger.so.999.88.77", "libcudadebugger.so.1"},
                                          {"libfakedep.so.2.0.0", "libfakedep.so.2"}};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(libs); i++) {
        _cleanup_free_ char *out = dlc_path_join(libdir, libs[i][0]);
        _cleanup_free_ char *so = xasprintf("-Wl,-soname,%s", libs[i][1]);
        const char *argv[] = {"gcc", "-shared", "-fPIC", "-o", out, so, src, NULL};
        assert_int_equal(dlc_spawn_wait(argv, false, &err), 0);
    }
    _cleanup_free_ char *conf = dlc_path_join(etc, "ld.so.conf");
    const char *dirline = "/usr/lib/" DLC_MULTIARCH "\n";
    assert_int_equal(dlc_write_file_atomic(conf, dirline, strlen(dirline), 0644, &err), 0);
    const char *ldconfig[] = {"ldconfig", "-r", root, NULL};
    if (dlc_spawn_wait(ldconfig, false, &err) != 0)
        fail_msg("ldconfig -r %s failed", root);

    _cleanup_free_ char *path = dlc_path_join(root, "/etc/ld.so.cache");
    _cleanup_(dlc_ldcache_freep) struct dlc_ldcache *c = NULL;
    assert_int_equal(dlc_ldcache_load(path, DLC_LDCACHE_NATIVE, &c, &err), 0);
    size_t iter = 0;
    const char *key = NULL;
    const char *v = dlc_ldcache_next(c, "libcuda.so", &iter, &key);
    assert_non_null(v);
    assert_string_equal(key, "libcuda.so.1");
    assert_string_equal(v, "/usr/lib/" DLC_MULTIARCH "/libcuda.so.1"); /* ldconfig's link */
    assert_null(dlc_ldcache_next(c, "libcuda.so", &iter, &key));
    iter = 0;
    assert_string_equal(dlc_ldcache_lookup(c, "libfakedep.so.2", &iter),
                        "/usr/lib/" DLC_MULTIARCH "/libfakedep.so.2");
    unit_tmpdir_free(root);
}

/* The host's own cache knows where libc.so.6 is, and that file is ELF of our ABI. */
static void test_ldcache__host(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    _cleanup_(dlc_ldcache_freep) struct dlc_ldcache *c = NULL;
    assert_int_equal(dlc_ldcache_load("/etc/ld.so.cache", 0, &c, &err), 0);
    assert_true(dlc_ldcache_count(c) > 0);
    size_t it = 0;
    bool found = false;
    for (const char *p; (p = dlc_ldcache_lookup(c, "libc.so.6", &it)) != NULL;)
        found |= dlc_elf_matches(p, DLC_ELF_CLASS, DLC_ELF_MACHINE);
    assert_true(found);
}

/* dlc_ldcache_search's try function: records each candidate, keeps the one named in data. */
static char **tried;

static char *try_record(const char *path, void *data)
{
    tried = dlc_strv_push(tried, path);
    return data && strcmp(path, data) == 0 ? xstrdup(path) : NULL;
}

static void test_ldcache__search_order(void **state)
{
    (void)state;
    char *dir = unit_tmpdir();
    _cleanup_(dlc_ldcache_freep) struct dlc_ldcache *c = load_ents(dir, 0);

    /* nothing kept: every cache path for the name, then every default directory */
    assert_null(dlc_ldcache_search(c, "libfoo.so.1", try_record, NULL));
    static const char *const want[] = {
            "/lib/x86_64-linux-gnu/libfoo.so.1",
            "/lib32/libfoo.so.1",
            "/lib/" DLC_MULTIARCH "/libfoo.so.1",
            "/usr/lib/" DLC_MULTIARCH "/libfoo.so.1",
            "/lib/libfoo.so.1",
            "/usr/lib/libfoo.so.1",
            "/lib64/libfoo.so.1",
            "/usr/lib64/libfoo.so.1",
    };
    assert_int_equal(dlc_strv_len(tried), DLC_ARRAY_SIZE(want));
    for (size_t i = 0; i < DLC_ARRAY_SIZE(want); i++)
        assert_string_equal(tried[i], want[i]);
    dlc_strv_free(tried);
    tried = NULL;

    /* the first one kept ends the search */
    _cleanup_free_ char *got =
            dlc_ldcache_search(c, "libfoo.so.1", try_record, (void *)"/lib32/libfoo.so.1");
    assert_string_equal(got, "/lib32/libfoo.so.1");
    assert_int_equal(dlc_strv_len(tried), 2);
    dlc_strv_free(tried);
    tried = NULL;

    /* no cache: the default directories only */
    _cleanup_free_ char *d =
            dlc_ldcache_search(NULL, "libbar.so.2", try_record, (void *)"/usr/lib/libbar.so.2");
    assert_string_equal(d, "/usr/lib/libbar.so.2");
    assert_int_equal(dlc_strv_len(tried), 4);
    dlc_strv_free(tried);
    tried = NULL;

    assert_true(dlc_ldcache_is_default_dir("/usr/lib/" DLC_MULTIARCH));
    assert_true(dlc_ldcache_is_default_dir("/lib64"));
    assert_false(dlc_ldcache_is_default_dir("/usr/lib/" DLC_MULTIARCH "/"));
    assert_false(dlc_ldcache_is_default_dir("/opt/x"));
    unit_tmpdir_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_ldcache__entries),
            cmocka_unit_test(test_ldcache__old_format_prefix),
            cmocka_unit_test(test_ldcache__damaged),
            cmocka_unit_test(test_ldcache__real_ldconfig),
            cmocka_unit_test(test_ldcache__host),
            cmocka_unit_test(test_ldcache__search_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
