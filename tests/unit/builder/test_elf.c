#include <elf.h>
#include <errno.h>
#include <string.h>

#include "unit.h"
#include "../../../builder/src/builder-internal.h"

/* This test program itself is a dynamically linked ELF with libc and cmocka. */
static void test_elf__self(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    _cleanup_free_ char *self = realpath("/proc/self/exe", NULL);
    _cleanup_(belf_freep) struct belf *e = NULL;
    assert_int_equal(belf_read(self, &e, &err), 0);
    assert_non_null(e);
    assert_int_equal(e->elf_class, sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32);
    assert_non_null(e->interp);
    assert_true(e->interp[0] == '/');
    assert_true(dlc_strv_contains(e->needed, "libc.so.6"));
    assert_true(dlc_strv_contains(e->needed, "libcmocka.so.0"));
    assert_true(belf_matches(self, e->elf_class, e->machine));
    assert_false(belf_matches(self, e->elf_class, e->machine + 1));
}

static void test_elf__not_elf(void **state)
{
    (void)state;
    char *dir = unit_tmpdir();
    struct dlc_error *err = NULL;
    _cleanup_free_ char *p = dlc_path_join(dir, "script");
    assert_int_equal(dlc_write_file_atomic(p, "#!/bin/sh\n", 10, 0755, &err), 0);
    struct belf *e = (struct belf *)1;
    assert_int_equal(belf_read(p, &e, &err), 0);
    assert_null(e);
    _cleanup_free_ char *empty = dlc_path_join(dir, "empty");
    assert_int_equal(dlc_write_file_atomic(empty, "", 0, 0644, &err), 0);
    e = (struct belf *)1;
    assert_int_equal(belf_read(empty, &e, &err), 0);
    assert_null(e);
    assert_false(belf_matches(p, ELFCLASS64, EM_X86_64));
    unit_tmpdir_free(dir);
}

/* A 64-bit header with a program header table where the test says. */
static void write_elf(const char *path, uint64_t phoff, uint16_t phnum, const Elf64_Phdr *ph,
                      size_t nph, size_t total)
{
    _cleanup_free_ unsigned char *buf = xcalloc(1, total);
    Elf64_Ehdr h;
    memset(&h, 0, sizeof(h));
    memcpy(h.e_ident, ELFMAG, SELFMAG);
    h.e_ident[EI_CLASS] = ELFCLASS64;
    h.e_ident[EI_DATA] = ELFDATA2LSB;
    h.e_ident[EI_VERSION] = EV_CURRENT;
    h.e_type = ET_DYN;
    h.e_machine = EM_X86_64;
    h.e_phoff = phoff;
    h.e_phentsize = sizeof(Elf64_Phdr);
    h.e_phnum = phnum;
    memcpy(buf, &h, sizeof(h));
    if (nph)
        memcpy(buf + sizeof(h), ph, nph * sizeof(*ph));
    struct dlc_error *err = NULL;
    assert_int_equal(dlc_write_file_atomic(path, buf, total, 0644, &err), 0);
}

static void test_elf__malformed(void **state)
{
    (void)state;
    char *dir = unit_tmpdir();
    _cleanup_free_ char *p = dlc_path_join(dir, "bad.so");
    struct dlc_error *err = NULL;
    struct belf *e = NULL;

    /* program header table past the end of the file */
    write_elf(p, 1 << 20, 2, NULL, 0, sizeof(Elf64_Ehdr));
    assert_dlc_error(belf_read(p, &e, &err), &err, EINVAL,
                     "malformed ELF: program header table lies outside the file");

    /* PT_DYNAMIC pointing outside the file */
    Elf64_Phdr dyn = {.p_type = PT_DYNAMIC, .p_offset = 1 << 30, .p_filesz = 64};
    write_elf(p, sizeof(Elf64_Ehdr), 1, &dyn, 1, 4096);
    assert_dlc_error(belf_read(p, &e, &err), &err, EINVAL,
                     "malformed ELF: PT_DYNAMIC lies outside the file");

    /* DT_NEEDED with no DT_STRTAB */
    Elf64_Phdr ph[2] = {{.p_type = PT_DYNAMIC, .p_offset = 1024, .p_filesz = 32}};
    write_elf(p, sizeof(Elf64_Ehdr), 1, ph, 1, 4096);
    {
        Elf64_Dyn d[2] = {{.d_tag = DT_NEEDED, .d_un.d_val = 1}, {.d_tag = DT_NULL}};
        FILE *fp = fopen(p, "r+");
        assert_non_null(fp);
        fseek(fp, 1024, SEEK_SET);
        fwrite(d, sizeof(d), 1, fp);
        fclose(fp);
    }
    assert_dlc_error(belf_read(p, &e, &err), &err, EINVAL,
                     "malformed ELF: PT_DYNAMIC lacks a usable DT_STRTAB/DT_STRSZ");

    /* PT_INTERP that is not an absolute path */
    Elf64_Phdr in = {.p_type = PT_INTERP, .p_offset = 512, .p_filesz = 4};
    write_elf(p, sizeof(Elf64_Ehdr), 1, &in, 1, 4096);
    assert_dlc_error(belf_read(p, &e, &err), &err, EINVAL,
                     "malformed ELF: PT_INTERP is not an absolute path");

    /* a truncated header after a valid magic */
    assert_int_equal(dlc_write_file_atomic(p, ELFMAG "\002\001\001", 7 + 0, 0644, &err), 0);
    assert_int_equal(belf_read(p, &e, &err), 0); /* shorter than e_ident: not ELF */
    unsigned char ident[20] = {0x7f, 'E', 'L', 'F', ELFCLASS64, ELFDATA2LSB, 1};
    assert_int_equal(dlc_write_file_atomic(p, ident, sizeof(ident), 0644, &err), 0);
    assert_dlc_error(belf_read(p, &e, &err), &err, EINVAL,
                     "malformed ELF: ELF header lies outside the file");
    ident[EI_CLASS] = 7;
    assert_int_equal(dlc_write_file_atomic(p, ident, sizeof(ident), 0644, &err), 0);
    assert_dlc_error(belf_read(p, &e, &err), &err, EINVAL, "malformed ELF: unknown ELF class");
    unit_tmpdir_free(dir);
}

/* ---- ld.so.cache ------------------------------------------------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

/* A new-format cache: entries (key, value, hwcap), strings after them. */
static size_t make_cache(unsigned char *buf, const char *const (*e)[2], const uint64_t *hwcap,
                         size_t n)
{
    memset(buf, 0, 4096);
    static const char magic[] = "glibc-ld.so.cache1.1"; /* 20 bytes, no NUL in the file */
    memcpy(buf, magic, sizeof(magic) - 1);
    put32(buf + 20, (uint32_t)n);
    size_t str = 48 + n * 24;
    for (size_t i = 0; i < n; i++) {
        unsigned char *ent = buf + 48 + i * 24;
        put32(ent, 0x0303);
        for (int k = 0; k < 2; k++) {
            put32(ent + 4 + 4 * k, (uint32_t)str);
            memcpy(buf + str, e[i][k], strlen(e[i][k]) + 1);
            str += strlen(e[i][k]) + 1;
        }
        memcpy(ent + 16, &hwcap[i], 8);
    }
    return str;
}

static void test_elf__ldcache(void **state)
{
    (void)state;
    char *dir = unit_tmpdir();
    _cleanup_free_ char *p = dlc_path_join(dir, "ld.so.cache");
    static const char *const ents[][2] = {
            {"libfoo.so.1", "/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libfoo.so.1"},
            {"libfoo.so.1", "/lib/x86_64-linux-gnu/libfoo.so.1"},
            {"libfoo.so.1", "/lib32/libfoo.so.1"},
            {"libbar.so.2", "/opt/x/libbar.so.2"},
    };
    static const uint64_t hw[] = {1ull << 62, 0, 0, 0};
    unsigned char buf[4096];
    size_t len = make_cache(buf, ents, hw, 4);
    struct dlc_error *err = NULL;
    assert_int_equal(dlc_write_file_atomic(p, buf, len, 0644, &err), 0);
    _cleanup_(bldcache_freep) struct bldcache *c = NULL;
    assert_int_equal(bldcache_load(p, &c, &err), 0);
    assert_int_equal(bldcache_count(c), 3); /* the hwcaps entry is skipped */
    size_t it = 0;
    assert_string_equal(bldcache_lookup(c, "libfoo.so.1", &it),
                        "/lib/x86_64-linux-gnu/libfoo.so.1");
    assert_string_equal(bldcache_lookup(c, "libfoo.so.1", &it), "/lib32/libfoo.so.1");
    assert_null(bldcache_lookup(c, "libfoo.so.1", &it));
    it = 0;
    assert_null(bldcache_lookup(c, "libnone.so", &it));

    /* a string offset past the end of the file */
    put32(buf + 48 + 3 * 24 + 8, 100000);
    assert_int_equal(dlc_write_file_atomic(p, buf, len, 0644, &err), 0);
    struct bldcache *bad = NULL;
    assert_dlc_error(bldcache_load(p, &bad, &err), &err, EINVAL, "entry 3 points outside the file");
    /* more entries than the file holds */
    put32(buf + 20, 1000);
    assert_int_equal(dlc_write_file_atomic(p, buf, len, 0644, &err), 0);
    assert_dlc_error(bldcache_load(p, &bad, &err), &err, EINVAL, "truncated ld.so.cache");
    assert_int_equal(dlc_write_file_atomic(p, "junk", 4, 0644, &err), 0);
    assert_dlc_error(bldcache_load(p, &bad, &err), &err, EINVAL, "not an ld.so.cache file");
    /* no cache at all: fine, nothing in it */
    _cleanup_free_ char *none = dlc_path_join(dir, "none");
    _cleanup_(bldcache_freep) struct bldcache *empty = NULL;
    assert_int_equal(bldcache_load(none, &empty, &err), 0);
    assert_int_equal(bldcache_count(empty), 0);
    unit_tmpdir_free(dir);
}

/* The host's own cache knows where libc.so.6 is, and that file is ELF. */
static void test_elf__host_ldcache(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    _cleanup_(bldcache_freep) struct bldcache *c = NULL;
    assert_int_equal(bldcache_load("/etc/ld.so.cache", &c, &err), 0);
    assert_true(bldcache_count(c) > 0);
    _cleanup_free_ char *self = realpath("/proc/self/exe", NULL);
    _cleanup_(belf_freep) struct belf *me = NULL;
    assert_int_equal(belf_read(self, &me, &err), 0);
    size_t it = 0;
    bool found = false;
    for (const char *p; (p = bldcache_lookup(c, "libc.so.6", &it)) != NULL;)
        found |= belf_matches(p, me->elf_class, me->machine);
    assert_true(found);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_elf__self),         cmocka_unit_test(test_elf__not_elf),
            cmocka_unit_test(test_elf__malformed),    cmocka_unit_test(test_elf__ldcache),
            cmocka_unit_test(test_elf__host_ldcache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
