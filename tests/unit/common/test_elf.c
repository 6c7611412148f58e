/* ELF headers read like ld.so reads them: this test program itself, shared objects built
 * by gcc, hand-made malformed files; and the run path tokens. */
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "unit.h"

/* A shared object built by gcc: soname, -l libraries from dir, extra linker flags. */
static void build_so(const char *dir, const char *name, const char *soname, const char *lib,
                     const char *ldflag)
{
    _cleanup_free_ char *src = dlc_path_join(dir, "stub.c");
    _cleanup_free_ char *out = dlc_path_join(dir, name);
    _cleanup_free_ char *so = xasprintf("-Wl,-soname,%s", soname);
    _cleanup_free_ char *L = xasprintf("-L%s", dir);
    struct dlc_error *err = NULL;
    static const char stub[] = "int stub_fn(void) { return 100; }\n";
    assert_int_equal(dlc_write_file_atomic(src, stub, strlen(stub), 0644, &err), 0);
    const char *argv[12] = {"gcc", "-shared", "-fPIC", "-o", out, so, src, L, "-Wl,--no-as-needed"};
    size_t n = 9;
    if (lib)
        argv[n++] = lib;
    if (ldflag)
        argv[n++] = ldflag;
    argv[n] = NULL;
    if (dlc_spawn_wait(argv, false, &err) != 0)
        fail_msg("gcc %s failed", name);
}

/* This test program itself is a dynamically linked ELF with libc and cmocka. */
static void test_elf__self(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    _cleanup_free_ char *self = realpath("/proc/self/exe", NULL);
    _cleanup_(dlc_elf_freep) struct dlc_elf *e = NULL;
    assert_int_equal(dlc_elf_read(self, &e, &err), 0);
    assert_non_null(e);
    assert_int_equal(e->elf_class, DLC_ELF_CLASS);
    assert_int_equal(e->machine, DLC_ELF_MACHINE);
    assert_true(e->dynamic);
    assert_non_null(e->interp);
    assert_true(e->interp[0] == '/');
    assert_true(dlc_strv_contains(e->needed, "libc.so.6"));
    assert_true(dlc_strv_contains(e->needed, "libcmocka.so.0"));
    assert_true(dlc_elf_matches(self, e->elf_class, e->machine));
    assert_false(dlc_elf_matches(self, e->elf_class, e->machine + 1));
}

/* gcc's shared objects: DT_SONAME and DT_NEEDED; DT_RPATH and DT_RUNPATH kept apart (ld.so
 * ignores DT_RPATH when DT_RUNPATH is there, so callers must tell them apart). */
static void test_elf__shared_objects(void **state)
{
    (void)state;
    char *dir = unit_tmpdir();
    build_so(dir, "libdep.so.2.0.0", "libdep.so.2", NULL, NULL);
    _cleanup_free_ char *dep = dlc_path_join(dir, "libdep.so.2.0.0");
    _cleanup_free_ char *link = dlc_path_join(dir, "libdep.so");
    assert_int_equal(symlink("libdep.so.2.0.0", link), 0);
    build_so(dir, "librun.so", "librun.so.1", "-ldep",
             "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib::/opt/x");
    build_so(dir, "librp.so", "librp.so.1", "-ldep", "-Wl,--disable-new-dtags,-rpath,/opt/y");
    struct dlc_error *err = NULL;

    _cleanup_(dlc_elf_freep) struct dlc_elf *d = NULL;
    assert_int_equal(dlc_elf_read(dep, &d, &err), 0);
    assert_string_equal(d->soname, "libdep.so.2");
    assert_true(d->dynamic);
    assert_null(d->interp);
    assert_null(d->rpath);
    assert_null(d->runpath);

    _cleanup_free_ char *run = dlc_path_join(dir, "librun.so");
    _cleanup_(dlc_elf_freep) struct dlc_elf *r = NULL;
    assert_int_equal(dlc_elf_read(run, &r, &err), 0);
    assert_string_equal(r->soname, "librun.so.1");
    assert_true(dlc_strv_contains(r->needed, "libdep.so.2"));
    assert_true(dlc_strv_contains(r->needed, "libc.so.6"));
    assert_null(r->rpath);
    assert_int_equal(dlc_strv_len(r->runpath), 2); /* the empty entry is dropped */
    assert_string_equal(r->runpath[0], "$ORIGIN/../lib");
    assert_string_equal(r->runpath[1], "/opt/x");

    _cleanup_free_ char *rp = dlc_path_join(dir, "librp.so");
    _cleanup_(dlc_elf_freep) struct dlc_elf *o = NULL;
    assert_int_equal(dlc_elf_read(rp, &o, &err), 0);
    assert_null(o->runpath);
    assert_int_equal(dlc_strv_len(o->rpath), 1);
    assert_string_equal(o->rpath[0], "/opt/y");
    unit_tmpdir_free(dir);
}

static void test_elf__not_elf(void **state)
{
    (void)state;
    char *dir = unit_tmpdir();
    struct dlc_error *err = NULL;
    _cleanup_free_ char *p = dlc_path_join(dir, "script");
    assert_int_equal(dlc_write_file_atomic(p, "#!/bin/sh\n", 10, 0755, &err), 0);
    struct dlc_elf *e = (struct dlc_elf *)1;
    assert_int_equal(dlc_elf_read(p, &e, &err), 0);
    assert_null(e);
    _cleanup_free_ char *empty = dlc_path_join(dir, "empty");
    assert_int_equal(dlc_write_file_atomic(empty, "", 0, 0644, &err), 0);
    e = (struct dlc_elf *)1;
    assert_int_equal(dlc_elf_read(empty, &e, &err), 0);
    assert_null(e);
    assert_false(dlc_elf_matches(p, ELFCLASS64, EM_X86_64));
    _cleanup_free_ char *missing = dlc_path_join(dir, "nonexistent.so");
    assert_dlc_error(dlc_elf_read(missing, &e, &err), &err, ENOENT, "nonexistent.so");
    assert_false(dlc_elf_matches(missing, ELFCLASS64, EM_X86_64));
    assert_dlc_error(dlc_elf_read(dir, &e, &err), &err, EINVAL, "not a regular file");
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

/* Without PT_DYNAMIC: read fine, nothing needed, not dynamic (a static program). */
static void test_elf__static(void **state)
{
    (void)state;
    char *dir = unit_tmpdir();
    _cleanup_free_ char *p = dlc_path_join(dir, "static");
    Elf64_Phdr load = {.p_type = PT_LOAD, .p_offset = 0, .p_filesz = 4096};
    write_elf(p, sizeof(Elf64_Ehdr), 1, &load, 1, 4096);
    struct dlc_error *err = NULL;
    _cleanup_(dlc_elf_freep) struct dlc_elf *e = NULL;
    assert_int_equal(dlc_elf_read(p, &e, &err), 0);
    assert_non_null(e);
    assert_false(e->dynamic);
    assert_null(e->interp);
    assert_null(e->needed);
    assert_null(e->soname);
    assert_int_equal(e->elf_class, ELFCLASS64);
    assert_int_equal(e->machine, EM_X86_64);
    unit_tmpdir_free(dir);
}

static void test_elf__malformed(void **state)
{
    (void)state;
    char *dir = unit_tmpdir();
    _cleanup_free_ char *p = dlc_path_join(dir, "bad.so");
    struct dlc_error *err = NULL;
    struct dlc_elf *e = NULL;

    /* program header table past the end of the file */
    write_elf(p, 1 << 20, 2, NULL, 0, sizeof(Elf64_Ehdr));
    assert_dlc_error(dlc_elf_read(p, &e, &err), &err, EINVAL,
                     "malformed ELF: program header table lies outside the file");

    /* PT_DYNAMIC pointing outside the file */
    Elf64_Phdr dyn = {.p_type = PT_DYNAMIC, .p_offset = 1 << 30, .p_filesz = 64};
    write_elf(p, sizeof(Elf64_Ehdr), 1, &dyn, 1, 4096);
    assert_dlc_error(dlc_elf_read(p, &e, &err), &err, EINVAL,
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
    assert_dlc_error(dlc_elf_read(p, &e, &err), &err, EINVAL,
                     "malformed ELF: PT_DYNAMIC lacks a usable DT_STRTAB/DT_STRSZ");

    /* PT_INTERP that is not an absolute path */
    Elf64_Phdr in = {.p_type = PT_INTERP, .p_offset = 512, .p_filesz = 4};
    write_elf(p, sizeof(Elf64_Ehdr), 1, &in, 1, 4096);
    assert_dlc_error(dlc_elf_read(p, &e, &err), &err, EINVAL,
                     "malformed ELF: PT_INTERP is not an absolute path");

    /* a truncated header after a valid magic */
    assert_int_equal(dlc_write_file_atomic(p, ELFMAG "\002\001\001", 7 + 0, 0644, &err), 0);
    assert_int_equal(dlc_elf_read(p, &e, &err), 0); /* shorter than e_ident: not ELF */
    unsigned char ident[20] = {0x7f, 'E', 'L', 'F', ELFCLASS64, ELFDATA2LSB, 1};
    assert_int_equal(dlc_write_file_atomic(p, ident, sizeof(ident), 0644, &err), 0);
    assert_dlc_error(dlc_elf_read(p, &e, &err), &err, EINVAL,
                     "malformed ELF: ELF header lies outside the file");
    ident[EI_CLASS] = 7;
    assert_int_equal(dlc_write_file_atomic(p, ident, sizeof(ident), 0644, &err), 0);
    assert_dlc_error(dlc_elf_read(p, &e, &err), &err, EINVAL, "malformed ELF: unknown ELF class");
    unit_tmpdir_free(dir);
}

static void test_elf__expand_dst(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
            {"$ORIGIN/../lib", "/o/dir/../lib"},
            {"${ORIGIN}/x", "/o/dir/x"},
            {"/a/$ORIGIN", "/a//o/dir"},
            {"/usr/$LIB/x", "/usr/lib/" DLC_MULTIARCH "/x"},
            {"/opt/${PLATFORM}", "/opt/" DLC_LD_PLATFORM},
            {"/opt/$FOO/${ORIGINAL}", "/opt/$FOO/${ORIGINAL}"},
            {"/plain/dir", "/plain/dir"},
            {"", ""},
    };
    for (size_t i = 0; i < DLC_ARRAY_SIZE(cases); i++) {
        _cleanup_free_ char *got = dlc_elf_expand_dst(cases[i][0], "/o/dir");
        assert_string_equal(got, cases[i][1]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_elf__self),      cmocka_unit_test(test_elf__shared_objects),
            cmocka_unit_test(test_elf__not_elf),   cmocka_unit_test(test_elf__static),
            cmocka_unit_test(test_elf__malformed), cmocka_unit_test(test_elf__expand_dst),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
