/* Library lookup inside a driver root (through an ld.so.cache written by the real ldconfig,
 * or the default directories) and closures of real shared objects (the C library left
 * out, run paths with $ORIGIN inside the root). The cache and ELF readers themselves are
 * tested in tests/unit/common. */
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

/* The root's ld.so.cache, as gpu_host_discover loads it. */
static int load_cache(const char *r, struct dlc_ldcache **ret)
{
    _cleanup_free_ char *path = dlc_path_join(r, "/etc/ld.so.cache");
    struct dlc_error *err = NULL;
    int rc = dlc_ldcache_load(path, DLC_LDCACHE_NATIVE, ret, &err);
    dlc_error_free(&err);
    return rc;
}

/* Through the root's cache: the host path of the real file, symlinks resolved in the root. */
static void test_gpu_libs__find_through_cache(void **state)
{
    (void)state;
    struct dlc_ldcache *c = NULL;
    assert_int_equal(load_cache(root, &c), 0);
    _cleanup_free_ char *found = gpu_lib_find(c, root, "libfakedep.so.2");
    _cleanup_free_ char *want = dlc_path_join(root, FX_LIBDIR "/libfakedep.so.2.0.0");
    assert_string_equal(found, want);
    _cleanup_free_ char *abs = gpu_lib_find(c, root, FX_LIBDIR "/libfakedep.so.2");
    assert_string_equal(abs, want);
    assert_null(gpu_lib_find(c, root, "libnope.so.1"));
    assert_null(gpu_lib_find(c, root, "sub/libfakedep.so.2")); /* relative paths: never */
    dlc_ldcache_free(c);
}

/* No ld.so.cache in the root: the default directories are still searched; a file there that
 * is not a shared object is passed over, and a closure refuses it. */
static void test_gpu_libs__find_without_cache(void **state)
{
    (void)state;
    _cleanup_(fx_tmpdir_freep) char *r = unit_tmpdir();
    fx_lib(r, FX_LIBDIR "/libonly.so.1", "libonly.so.1", NULL);
    fx_write(r, "/usr/lib/libtext.so.1", "not a library\n");
    struct dlc_ldcache *c = NULL;
    assert_int_equal(load_cache(r, &c), 0);
    _cleanup_free_ char *found = gpu_lib_find(c, r, "libonly.so.1");
    _cleanup_free_ char *want = dlc_path_join(r, FX_LIBDIR "/libonly.so.1");
    assert_string_equal(found, want);
    assert_null(gpu_lib_find(c, r, "libtext.so.1"));
    _cleanup_free_ char *txt = dlc_path_join(r, "/usr/lib/libtext.so.1");
    struct gpu_lib *libs = NULL;
    size_t n = 0;
    struct dlc_error *err = NULL;
    assert_dlc_error(gpu_lib_closure(c, r, txt, NULL, &libs, &n, &err), &err, EINVAL,
                     "libtext.so.1: not an ELF file");
    dlc_ldcache_free(c);
}

/* A vendor library outside the cache that finds its dependency through DT_RUNPATH
 * $ORIGIN/../dep, expanded inside the root. */
static void test_gpu_libs__closure_runpath_origin(void **state)
{
    (void)state;
    _cleanup_(fx_tmpdir_freep) char *r = unit_tmpdir();
    fx_lib(r, "/opt/v/dep/libvdep.so", "libvdep.so.1", NULL);
    fx_symlink(r, "/opt/v/dep/libvdep.so.1", "libvdep.so");
    _cleanup_free_ char *dep = dlc_path_join(r, "/opt/v/dep");
    _cleanup_free_ char *flags =
            xasprintf("-L%s -lvdep -Wl,--enable-new-dtags,-rpath,$ORIGIN/../dep", dep);
    fx_lib(r, "/opt/v/lib/libv.so.1", "libv.so.1", flags);
    struct dlc_ldcache *c = NULL;
    assert_int_equal(load_cache(r, &c), 0);
    _cleanup_free_ char *lib = dlc_path_join(r, "/opt/v/lib/libv.so.1");
    struct gpu_lib *libs = NULL;
    size_t n = 0;
    struct dlc_error *err = NULL;
    assert_int_equal(gpu_lib_closure(c, r, lib, NULL, &libs, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(libs[0].soname, "libv.so.1");
    assert_string_equal(libs[1].soname, "libvdep.so.1");
    _cleanup_free_ char *want = dlc_path_join(r, "/opt/v/dep/libvdep.so");
    assert_string_equal(libs[1].host_path, want);
    gpu_libs_free(libs, n);
    dlc_ldcache_free(c);
}

static void test_gpu_libs__closure_skips_libc(void **state)
{
    (void)state;
    struct dlc_ldcache *c = NULL;
    struct dlc_error *err = NULL;
    assert_int_equal(load_cache(root, &c), 0);
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
    dlc_ldcache_free(c);
}

static void test_gpu_libs__closure_missing_dependency(void **state)
{
    (void)state;
    _cleanup_free_ char *dep = dlc_path_join(root, FX_LIBDIR "/libfakedep.so.2.0.0");
    _cleanup_free_ char *moved = dlc_path_join(root, "/dep.moved");
    assert_int_equal(rename(dep, moved), 0);
    struct dlc_ldcache *c = NULL;
    struct dlc_error *err = NULL;
    assert_int_equal(load_cache(root, &c), 0);
    _cleanup_free_ char *lib = dlc_path_join(root, FX_LIBDIR "/libneedsmissing.so.1");
    struct gpu_lib *libs = NULL;
    size_t n = 0;
    assert_dlc_error(gpu_lib_closure(c, root, lib, NULL, &libs, &n, &err), &err, ENOENT,
                     "libfakedep.so.2 (needed by libneedsmissing.so.1) not found");
    dlc_ldcache_free(c);
    assert_int_equal(rename(moved, dep), 0);
}

static void test_gpu_libs__libc_names(void **state)
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
static void test_gpu_libs__host_pocl_closure(void **state)
{
    (void)state;
    struct dlc_ldcache *c = NULL;
    struct dlc_error *err = NULL;
    assert_int_equal(dlc_ldcache_load("/etc/ld.so.cache", DLC_LDCACHE_NATIVE, &c, &err), 0);
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
    dlc_ldcache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_gpu_libs__find_through_cache),
            cmocka_unit_test(test_gpu_libs__find_without_cache),
            cmocka_unit_test(test_gpu_libs__closure_runpath_origin),
            cmocka_unit_test(test_gpu_libs__closure_skips_libc),
            cmocka_unit_test(test_gpu_libs__closure_missing_dependency),
            cmocka_unit_test(test_gpu_libs__libc_names),
            cmocka_unit_test(test_gpu_libs__host_pocl_closure),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
