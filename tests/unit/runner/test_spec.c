/* Flag parsers of the container spec and user lookup in an image's /etc. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "unit.h"

#include "../../../runner/src/runner-internal.h"

static void test_spec__volume(void **state)
{
    (void)state;
    _cleanup_(runner_spec_freep) struct runner_spec *spec = runner_spec_new("x");
    struct dlc_error *err = NULL;
    assert_int_equal(runner_spec_parse_volume(spec, "/tmp:/data", &err), 0);
    assert_int_equal(runner_spec_parse_volume(spec, "/tmp:/ro:ro", &err), 0);
    assert_int_equal(spec->n_binds, 2);
    assert_string_equal(spec->binds[0].destination, "/data");
    assert_false(spec->binds[0].readonly);
    assert_true(spec->binds[1].readonly);
    assert_dlc_error(runner_spec_parse_volume(spec, "/tmp:rel", &err), &err, EINVAL,
                     "DST must be an absolute path");
    assert_dlc_error(runner_spec_parse_volume(spec, "/tmp:/a:rx", &err), &err, EINVAL,
                     "expected SRC:DST[:ro|rw]");
    assert_dlc_error(runner_spec_parse_volume(spec, "/nonexistent-dlc:/a", &err), &err, ENOENT,
                     "/nonexistent-dlc");
}

static void test_spec__env_file(void **state)
{
    (void)state;
    char *dir = unit_tmpdir();
    _cleanup_free_ char *p = dlc_path_join(dir, "env");
    const char *text = "# comment\n\nA=1\n  B=two words\r\nDLC_UNIT_FROM_CALLER\nC=\n";
    struct dlc_error *err = NULL;
    assert_int_equal(dlc_write_file_atomic(p, text, strlen(text), 0644, &err), 0);
    setenv("DLC_UNIT_FROM_CALLER", "x", 1);
    _cleanup_(runner_spec_freep) struct runner_spec *spec = runner_spec_new("x");
    assert_int_equal(runner_spec_load_env_file(spec, p, &err), 0);
    assert_int_equal(dlc_strv_len(spec->env), 4);
    assert_string_equal(spec->env[0], "A=1");
    assert_string_equal(spec->env[1], "B=two words");
    assert_string_equal(spec->env[2], "DLC_UNIT_FROM_CALLER=x");
    assert_string_equal(spec->env[3], "C=");
    const char *bad = "OK=1\nNOT VALID=2\n";
    assert_int_equal(dlc_write_file_atomic(p, bad, strlen(bad), 0644, &err), 0);
    assert_dlc_error(runner_spec_load_env_file(spec, p, &err), &err, EINVAL, ":2: 'NOT VALID=2'");
    unit_tmpdir_free(dir);
}

static void test_spec__ulimit_and_cpus(void **state)
{
    (void)state;
    _cleanup_(runner_spec_freep) struct runner_spec *spec = runner_spec_new("x");
    struct dlc_error *err = NULL;
    assert_int_equal(runner_spec_parse_ulimit(spec, "nofile=1024:4096", &err), 0);
    assert_int_equal(runner_spec_parse_ulimit(spec, "core=unlimited", &err), 0);
    assert_int_equal(spec->n_rlimits, 2);
    assert_int_equal(spec->rlimits[0].resource, RLIMIT_NOFILE);
    assert_int_equal(spec->rlimits[0].soft, 1024);
    assert_int_equal(spec->rlimits[0].hard, 4096);
    assert_true(spec->rlimits[1].soft == RLIM_INFINITY);
    assert_dlc_error(runner_spec_parse_ulimit(spec, "files=1", &err), &err, EINVAL, "NAME=SOFT");
    assert_dlc_error(runner_spec_parse_ulimit(spec, "nofile=10:5", &err), &err, EINVAL,
                     "soft limit above the hard limit");
    uint64_t m = 0;
    assert_int_equal(runner_parse_cpus("1.5", &m, &err), 0);
    assert_int_equal(m, 1500);
    assert_int_equal(runner_parse_cpus("0.0001", &m, &err), 0);
    assert_int_equal(m, 1);
    assert_dlc_error(runner_parse_cpus("0", &m, &err), &err, EINVAL, "above 0");
    assert_dlc_error(runner_parse_cpus("many", &m, &err), &err, EINVAL, "--cpus");
}

static void write_etc(const char *root, const char *name, const char *text)
{
    struct dlc_error *err = NULL;
    _cleanup_free_ char *etc = dlc_path_join(root, "etc");
    assert_int_equal(dlc_mkdir_p(etc, 0755, &err), 0);
    _cleanup_free_ char *p = dlc_path_join(etc, name);
    assert_int_equal(dlc_write_file_atomic(p, text, strlen(text), 0644, &err), 0);
}

static void test_spec__user_lookup(void **state)
{
    (void)state;
    char *root = unit_tmpdir();
    write_etc(root, "passwd",
              "root:x:0:0:root:/root:/bin/sh\n# c\napp:x:1000:1000::/home/app:/bin/sh\n");
    write_etc(root, "group", "root:x:0:\napp:x:1000:\nstaff:x:50:other,app\nvideo:x:44:app\n");
    struct dlc_error *err = NULL;
    struct runner_user u;
    assert_int_equal(runner_user_resolve(root, "app", &u, &err), 0);
    assert_int_equal(u.uid, 1000);
    assert_int_equal(u.gid, 1000);
    assert_string_equal(u.home, "/home/app");
    assert_int_equal(u.n_groups, 2);
    assert_int_equal(u.groups[0], 50);
    assert_int_equal(u.groups[1], 44);
    runner_user_release(&u);
    assert_int_equal(runner_user_resolve(root, "1234:staff", &u, &err), 0);
    assert_int_equal(u.uid, 1234);
    assert_int_equal(u.gid, 50);
    assert_string_equal(u.home, "/");
    runner_user_release(&u);
    assert_int_equal(runner_user_resolve(root, NULL, &u, &err), 0);
    assert_int_equal(u.uid, 0);
    assert_string_equal(u.home, "/root");
    runner_user_release(&u);
    assert_dlc_error(runner_user_resolve(root, "nosuch", &u, &err), &err, EINVAL,
                     "unable to find user nosuch");
    assert_dlc_error(runner_user_resolve(root, "app:nogroup", &u, &err), &err, EINVAL,
                     "unable to find group nogroup");
    unit_tmpdir_free(root);
}

/* An image whose /etc/passwd is an absolute symlink reads its own file, not the host's. */
static void test_spec__user_lookup_stays_in_root(void **state)
{
    (void)state;
    char *root = unit_tmpdir();
    write_etc(root, "real-passwd", "evil:x:4242:4242::/:/bin/sh\n");
    _cleanup_free_ char *link = dlc_path_join(root, "etc/passwd");
    assert_int_equal(symlink("/etc/real-passwd", link), 0);
    struct dlc_error *err = NULL;
    struct runner_user u;
    assert_int_equal(runner_user_resolve(root, "evil", &u, &err), 0);
    assert_int_equal(u.uid, 4242);
    runner_user_release(&u);
    /* the host's root user is not visible through the link */
    assert_dlc_error(runner_user_resolve(root, "root", &u, &err), &err, EINVAL,
                     "unable to find user root");
    unit_tmpdir_free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_spec__volume),
            cmocka_unit_test(test_spec__env_file),
            cmocka_unit_test(test_spec__ulimit_and_cpus),
            cmocka_unit_test(test_spec__user_lookup),
            cmocka_unit_test(test_spec__user_lookup_stays_in_root),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
