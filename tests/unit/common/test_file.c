#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "unit.h"

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void test_file__atomic_write_and_read(void **state)
{
    (void)state;
    char *dir = unit_tmpdir();
    struct dlc_error *err = NULL;
    _cleanup_free_ char *p = dlc_path_join(dir, "f.json");
    assert_int_equal(dlc_write_file_atomic(p, "hello", 5, 0600, &err), 0);
    assert_int_equal(dlc_write_file_atomic(p, "bye", 3, 0600, &err), 0);
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    assert_int_equal(dlc_read_file(p, 100, &buf, &len, &err), 0);
    assert_int_equal(len, 3);
    assert_string_equal(buf, "bye");
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(count_entries(dir), 1); /* no temp files left */
    char *b2 = NULL;
    assert_dlc_error(dlc_read_file(p, 2, &b2, &len, &err), &err, EFBIG, "larger than 2 bytes");
    _cleanup_free_ char *missing = dlc_path_join(dir, "nope");
    assert_dlc_error(dlc_read_file(missing, 2, &b2, &len, &err), &err, ENOENT,
                     "No such file or directory");
    unit_tmpdir_free(dir);
}

static void test_file__atomic_abort_leaves_nothing(void **state)
{
    (void)state;
    char *dir = unit_tmpdir();
    struct dlc_error *err = NULL;
    _cleanup_free_ char *p = dlc_path_join(dir, "blob");
    {
        _cleanup_atomic_file_ struct dlc_atomic_file af = DLC_ATOMIC_FILE_INIT;
        assert_int_equal(dlc_atomic_file_open(&af, p, 0644, &err), 0);
        assert_int_equal(dlc_write_all(af.fd, "partial", 7, &err), 0);
        /* leaves scope without commit: the failure between write and rename */
    }
    assert_false(dlc_path_exists(p));
    assert_int_equal(count_entries(dir), 0);
    unit_tmpdir_free(dir);
}

static void test_file__mkdir_rm(void **state)
{
    (void)state;
    char *dir = unit_tmpdir();
    struct dlc_error *err = NULL;
    _cleanup_free_ char *deep = dlc_path_join(dir, "a/b/c/d");
    assert_int_equal(dlc_mkdir_p(deep, 0755, &err), 0);
    assert_int_equal(dlc_mkdir_p(deep, 0755, &err), 0);
    _cleanup_free_ char *f = dlc_path_join(dir, "a/b/file");
    assert_int_equal(dlc_write_file_atomic(f, "x", 1, 0644, &err), 0);
    assert_dlc_error(dlc_mkdir_p(f, 0755, &err), &err, ENOTDIR, "not a directory");
    /* a symlink out of the tree must not be followed by rm -rf */
    char *outside = unit_tmpdir();
    _cleanup_free_ char *keep = dlc_path_join(outside, "keep");
    assert_int_equal(dlc_write_file_atomic(keep, "k", 1, 0644, &err), 0);
    _cleanup_free_ char *link = dlc_path_join(dir, "a/link");
    assert_int_equal(symlink(outside, link), 0);
    _cleanup_free_ char *a = dlc_path_join(dir, "a");
    assert_int_equal(dlc_rm_rf(a, &err), 0);
    assert_false(dlc_path_exists(a));
    assert_true(dlc_path_exists(keep));
    assert_int_equal(dlc_rm_rf(a, &err), 0); /* missing is fine */
    unit_tmpdir_free(outside);
    unit_tmpdir_free(dir);
}

static void test_file__lock_serialises(void **state)
{
    (void)state;
    char *dir = unit_tmpdir();
    struct dlc_error *err = NULL;
    _cleanup_free_ char *lock = dlc_path_join(dir, "lock");
    _cleanup_free_ char *counter = dlc_path_join(dir, "n");
    assert_int_equal(dlc_write_file_atomic(counter, "0", 1, 0644, &err), 0);
    /* two processes do 200 read-modify-write increments each under the lock */
    for (int k = 0; k < 2; k++) {
        if (fork() == 0) {
            for (int i = 0; i < 200; i++) {
                int fd = dlc_lock_path(lock, true, NULL);
                char *b = NULL;
                dlc_read_file(counter, 64, &b, NULL, NULL);
                char nb[32];
                int len = snprintf(nb, sizeof(nb), "%ld", strtol(b, NULL, 10) + 1);
                dlc_write_file_atomic(counter, nb, (size_t)len, 0644, NULL);
                free(b);
                close(fd);
            }
            _exit(0);
        }
    }
    int st;
    while (wait(&st) > 0)
        assert_int_equal(st, 0);
    _cleanup_free_ char *b = NULL;
    assert_int_equal(dlc_read_file(counter, 64, &b, NULL, &err), 0);
    assert_string_equal(b, "400");
    unit_tmpdir_free(dir);
}

static void test_file__spawn(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    const char *t[] = {"true", NULL};
    const char *f[] = {"sh", "-c", "exit 3", NULL};
    const char *k[] = {"sh", "-c", "kill -9 $$", NULL};
    const char *n[] = {"/nonexistent/prog", NULL};
    assert_int_equal(dlc_spawn_wait(t, true, &err), 0);
    assert_int_equal(dlc_spawn_wait(f, true, &err), 3);
    assert_int_equal(dlc_spawn_wait(k, true, &err), 137);
    assert_dlc_error(dlc_spawn_wait(n, true, &err), &err, ENOENT, "run /nonexistent/prog");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_file__atomic_write_and_read),
            cmocka_unit_test(test_file__atomic_abort_leaves_nothing),
            cmocka_unit_test(test_file__mkdir_rm),
            cmocka_unit_test(test_file__lock_serialises),
            cmocka_unit_test(test_file__spawn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
