#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "unit.h"

static void test_path__join(void **state)
{
    (void)state;
    static const char *const cases[][3] = {
            {"a", "b", "a/b"}, {"a/", "/b", "a/b"},         {"/", "etc", "/etc"},
            {"/r", "", "/r"},  {"/r//", "//x/y", "/r/x/y"},
    };
    for (size_t i = 0; i < DLC_ARRAY_SIZE(cases); i++) {
        _cleanup_free_ char *p = dlc_path_join(cases[i][0], cases[i][1]);
        assert_string_equal(p, cases[i][2]);
    }
}

static void test_path__normalize(void **state)
{
    (void)state;
    static const char *const ok[][2] = {
            {"a/b/../c", "a/c"}, {"./a//b/", "a/b"}, {"/etc/passwd", "etc/passwd"},
            {"", "."},           {"a/..", "."},      {"a/./b/./", "a/b"},
    };
    struct dlc_error *err = NULL;
    for (size_t i = 0; i < DLC_ARRAY_SIZE(ok); i++) {
        _cleanup_free_ char *p = NULL;
        assert_int_equal(dlc_path_normalize_relative(ok[i][0], &p, &err), 0);
        assert_string_equal(p, ok[i][1]);
    }
    char *p = NULL;
    assert_dlc_error(dlc_path_normalize_relative("../../etc/x", &p, &err), &err, EINVAL,
                     "path '../../etc/x' escapes its root");
    assert_dlc_error(dlc_path_normalize_relative("a/../../x", &p, &err), &err, EINVAL, "escapes");
    assert_null(p);
}

static void test_path__resolve_in_root(void **state)
{
    (void)state;
    char *root = unit_tmpdir();
    struct dlc_error *err = NULL;
    _cleanup_free_ char *etc = dlc_path_join(root, "etc");
    _cleanup_free_ char *data = dlc_path_join(root, "data/real");
    assert_int_equal(dlc_mkdir_p(etc, 0755, &err), 0);
    assert_int_equal(dlc_mkdir_p(data, 0755, &err), 0);
    _cleanup_free_ char *l1 = dlc_path_join(root, "abs");
    _cleanup_free_ char *l2 = dlc_path_join(root, "up");
    _cleanup_free_ char *l3 = dlc_path_join(root, "data/rel");
    _cleanup_free_ char *l4 = dlc_path_join(root, "loop");
    assert_int_equal(symlink("/etc", l1), 0);           /* absolute: means <root>/etc */
    assert_int_equal(symlink("../../../../..", l2), 0); /* climbs: clamps at root */
    assert_int_equal(symlink("real", l3), 0);
    assert_int_equal(symlink("loop", l4), 0);

    static const char *const cases[][2] = {
            {"/abs/passwd", "etc/passwd"},
            {"up/etc", "etc"},
            {"/data/rel/x", "data/real/x"},
            {"../../..", ""},
            {"/", ""},
            {"new/dir/file", "new/dir/file"},
            {"up/abs/../data", "data"},
    };
    for (size_t i = 0; i < DLC_ARRAY_SIZE(cases); i++) {
        _cleanup_free_ char *got = NULL;
        _cleanup_free_ char *want =
                cases[i][1][0] ? dlc_path_join(root, cases[i][1]) : xstrdup(root);
        assert_int_equal(dlc_path_resolve_in_root(root, cases[i][0], &got, &err), 0);
        assert_string_equal(got, want);
    }
    char *got = NULL;
    assert_dlc_error(dlc_path_resolve_in_root(root, "/loop/x", &got, &err), &err, ELOOP,
                     "too many symlinks");
    unit_tmpdir_free(root);
}

static void test_path__basename_dirname(void **state)
{
    (void)state;
    assert_string_equal(dlc_path_basename("/a/b/c"), "c");
    assert_string_equal(dlc_path_basename("c"), "c");
    _cleanup_free_ char *d1 = dlc_path_dirname("/a/b/c");
    _cleanup_free_ char *d2 = dlc_path_dirname("c");
    _cleanup_free_ char *d3 = dlc_path_dirname("/c");
    assert_string_equal(d1, "/a/b");
    assert_string_equal(d2, ".");
    assert_string_equal(d3, "/");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_path__join),
            cmocka_unit_test(test_path__normalize),
            cmocka_unit_test(test_path__resolve_in_root),
            cmocka_unit_test(test_path__basename_dirname),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
