/* Library lookup inside a driver root: ld.so.cache written by the real ldconfig, ELF
 * dynamic sections of real shared objects, closures (the C library left out). */
#include "gpu_fixture.h"

static char *root;

static int setup(void **state)
{
    (void)state;
    root = fx_root();
    fx_lib(root, FX_LIBDIR "/libneedsmissing.so.1", "libneedsmissing.so.1", "-lfakedep");
    fx_ldconfig(root);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unit_tmpdir_free(root);
    return 0;
}

static void test_gpu_ldcache__real_ldconfig_cache(void **state)
{
    (void)state;
    struct gpu_ldcache *c = NULL;
    struct dlc_error *err = NULL;
    assert_int_equal(gpu_ldcache_load(root, &c, &err), 0);
    size_t iter = 0;
    const char *key = NULL;
    const char *v = gpu_ldcache_next(c, "libcuda.so", &iter, &key);
    assert_non_null(v);
    assert_string_equal(key, "libcuda.so.1");
    assert_string_equal(v, FX_LIBDIR "/libcuda.so.1"); /* ldconfig made the soname link */
    assert_null(gpu_ldcache_next(c, "libcuda.so", &iter, &key));
    _cleanup_free_ char *found = gpu_lib_find(c, root, "libfakedep.so.2");
    _cleanup_free_ char *want = dlc_path_join(root, FX_LIBDIR "/libfakedep.so.2.0.0");
    assert_string_equal(found, want);
    assert_null(gpu_lib_find(c, root, "libnope.so.1"));
    gpu_ldcache_free(c);
}

static void test_gpu_ldcache__missing_and_corrupt_cache(void **state)
{
    (void)state;
    _cleanup_(fx_tmpdir_freep) char *r = unit_tmpdir();
    struct gpu_ldcache *c = NULL;
    struct dlc_error *err = NULL;
    assert_int_equal(gpu_ldcache_load(r, &c, &err), 0); /* none: default dirs only */
    size_t iter = 0;
    assert_null(gpu_ldcache_next(c, "lib", &iter, NULL));
    gpu_ldcache_free(c);
    fx_write(r, "/etc/ld.so.cache", "this is not a cache file at all");
    assert_dlc_error(gpu_ldcache_load(r, &c, &err), &err, EINVAL, "not an ld.so.cache");
    char trunc[64] = "glibc-ld.so.cache1.1";
    trunc[20] = (char)0xff; /* nlibs = huge */
    trunc[21] = (char)0xff;
    _cleanup_free_ char *p = dlc_path_join(r, "/etc/ld.so.cache");
    assert_int_equal(dlc_write_file_atomic(p, trunc, sizeof(trunc), 0644, &err), 0);
    assert_dlc_error(gpu_ldcache_load(r, &c, &err), &err, EINVAL, "truncated");
}

static void test_gpu_ldcache__elf_dynamic_section(void **state)
{
    (void)state;
    _cleanup_free_ char *lib = dlc_path_join(root, FX_LIBDIR "/libfakecl.so.1.4.0");
    struct gpu_elf e = {0};
    struct dlc_error *err = NULL;
    assert_int_equal(gpu_elf_read(lib, &e, &err), 0);
    assert_string_equal(e.soname, "libfakecl.so.1");
    assert_true(dlc_strv_contains(e.needed, "libfakedep.so.2"));
    assert_true(dlc_strv_contains(e.needed, "libc.so.6"));
    gpu_elf_release(&e);
    _cleanup_free_ char *txt = dlc_path_join(root, "/proc/devices");
    assert_dlc_error(gpu_elf_read(txt, &e, &err), &err, EINVAL, "not an ELF file");
    assert_dlc_error(gpu_elf_read("/nonexistent.so", &e, &err), &err, ENOENT, "open");
}

static void test_gpu_ldcache__closure_skips_libc(void **state)
{
    (void)state;
    struct gpu_ldcache *c = NULL;
    struct dlc_error *err = NULL;
    assert_int_equal(gpu_ldcache_load(root, &c, &err), 0);
    _cleanup_free_ char *lib = dlc_path_join(root, FX_LIBDIR "/libfakecl.so.1.4.0");
    struct gpu_lib *libs = NULL;
    size_t n = 0;
    assert_int_equal(gpu_lib_closure(c, root, lib, "libfakecl.so.1.4.0", &libs, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(libs[0].soname, "libfakecl.so.1");
    assert_string_equal(libs[0].alias, "libfakecl.so.1.4.0");
    assert_string_equal(libs[1].soname, "libfakedep.so.2");
    assert_null(libs[1].alias);
    gpu_libs_free(libs, n);
    gpu_ldcache_free(c);
}

static void test_gpu_ldcache__closure_missing_dependency(void **state)
{
    (void)state;
    _cleanup_free_ char *dep = dlc_path_join(root, FX_LIBDIR "/libfakedep.so.2.0.0");
    _cleanup_free_ char *moved = dlc_path_join(root, "/dep.moved");
    assert_int_equal(rename(dep, moved), 0);
    struct gpu_ldcache *c = NULL;
    struct dlc_error *err = NULL;
    assert_int_equal(gpu_ldcache_load(root, &c, &err), 0);
    _cleanup_free_ char *lib = dlc_path_join(root, FX_LIBDIR "/libneedsmissing.so.1");
    struct gpu_lib *libs = NULL;
    size_t n = 0;
    assert_dlc_error(gpu_lib_closure(c, root, lib, NULL, &libs, &n, &err), &err, ENOENT,
                     "libfakedep.so.2 (needed by libneedsmissing.so.1) not found");
    gpu_ldcache_free(c);
    assert_int_equal(rename(moved, dep), 0);
}

static void test_gpu_ldcache__libc_names(void **state)
{
    (void)state;
    assert_true(gpu_lib_is_libc("libc.so.6"));
    assert_true(gpu_lib_is_libc("libm.so.6"));
    assert_true(gpu_lib_is_libc("ld-linux-x86-64.so.2"));
    assert_true(gpu_lib_is_libc("libpthread.so.0"));
    assert_false(gpu_lib_is_libc("libcuda.so.1"));
    assert_false(gpu_lib_is_libc("libcrypt.so.1"));
    assert_false(gpu_lib_is_libc("libstdc++.so.6"));
}

/* The host's own pocl (a real peer, installed by make deps): its closure through the host's
 * ld.so.cache holds LLVM and no C library. */
static void test_gpu_ldcache__host_pocl_closure(void **state)
{
    (void)state;
    struct gpu_ldcache *c = NULL;
    struct dlc_error *err = NULL;
    assert_int_equal(gpu_ldcache_load("/", &c, &err), 0);
    _cleanup_free_ char *pocl = gpu_lib_find(c, "/", "libpocl.so.2");
    if (pocl == NULL)
        fail_msg("libpocl.so.2 is not installed: run `make deps` (pocl-opencl-icd)");
    struct gpu_lib *libs = NULL;
    size_t n = 0;
    assert_int_equal(gpu_lib_closure(c, "/", pocl, "libpocl.so.2", &libs, &n, &err), 0);
    bool llvm = false, libc = false;
    for (size_t i = 0; i < n; i++) {
        llvm |= dlc_startswith(libs[i].soname, "libLLVM") != NULL;
        libc |= gpu_lib_is_libc(libs[i].soname);
    }
    assert_true(llvm);
    assert_false(libc);
    gpu_libs_free(libs, n);
    gpu_ldcache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_gpu_ldcache__real_ldconfig_cache),
            cmocka_unit_test(test_gpu_ldcache__missing_and_corrupt_cache),
            cmocka_unit_test(test_gpu_ldcache__elf_dynamic_section),
            cmocka_unit_test(test_gpu_ldcache__closure_skips_libc),
            cmocka_unit_test(test_gpu_ldcache__closure_missing_dependency),
            cmocka_unit_test(test_gpu_ldcache__libc_names),
            cmocka_unit_test(test_gpu_ldcache__host_pocl_closure),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
