/* test_state.c: finding containers in containers/<id>/state.json (id, prefix, name,
 * ambiguity), releasing a single result, and the cleanup of state a killed dlc left. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "unit.h"
#include "runner.h"

#define ID_A "aaaa1111bbbb2222cccc3333dddd4444eeee5555ffff6666aaaa7777bbbb8888"
#define ID_B "aaaa9999bbbb2222cccc3333dddd4444eeee5555ffff6666aaaa7777bbbb8888"

/* containers/<id>/state.json with the given state ("exited" or "running"). */
static void write_container(const char *root, const char *id, const char *name, const char *state,
                            bool remove)
{
    _cleanup_free_ char *dir = xasprintf("%s/containers/%s", root, id);
    struct dlc_error *err = NULL;
    assert_int_equal(dlc_mkdir_p(dir, 0700, &err), 0);
    _cleanup_free_ char *json = xasprintf(
            "{\"id\": \"%s\", \"name\": \"%s\", \"image\": \"bb:1\", \"command\": [\"sh\", "
            "\"-c\", \"true\"], \"created\": 1700000000, \"state\": \"%s\", \"exit_code\": 3, "
            "\"finished\": 1700000010, \"pid\": 999999, \"remove\": %s, \"detached\": true}",
            id, name, state, remove ? "true" : "false");
    _cleanup_free_ char *p = dlc_path_join(dir, "state.json");
    if (dlc_write_file_atomic(p, json, strlen(json), 0644, &err) < 0)
        fail_msg("%s", err->msg);
}

static void test_state__find_and_release(void **state)
{
    (void)state;
    char *root = unit_tmpdir();
    write_container(root, ID_A, "first", "exited", false);
    write_container(root, ID_B, "second", "exited", false);
    struct dlc_error *err = NULL;
    struct runner_info in;
    const char *keys[] = {ID_A, "aaaa1", "first"};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(keys); i++) {
        if (runner_find(root, keys[i], &in, &err) < 0)
            fail_msg("%s: %s", keys[i], err->msg);
        assert_string_equal(in.id, ID_A);
        assert_string_equal(in.name, "first");
        assert_string_equal(in.image, "bb:1");
        assert_string_equal(in.command[2], "true");
        assert_int_equal(in.state, RUNNER_STATE_EXITED);
        assert_int_equal(in.exit_code, 3);
        assert_true(in.detached);
        runner_info_release(&in); /* the sanitizer build checks nothing leaks */
        assert_null(in.name);
        assert_null(in.image);
        assert_null(in.command);
        assert_string_equal(in.id, "");
    }
    assert_dlc_error(runner_find(root, "aaaa", &in, &err), &err, EINVAL,
                     "matches more than one container");
    assert_dlc_error(runner_find(root, "nope", &in, &err), &err, ENOENT, "no such container");
    runner_info_release(&(struct runner_info){0}); /* a zeroed one is fine */
    unit_tmpdir_free(root);
}

static void test_state__stale_running_state_is_cleaned_up(void **state)
{
    (void)state;
    char *root = unit_tmpdir();
    /* "running" with no monitor holding the lock: its dlc was killed */
    write_container(root, ID_A, "kept", "running", false);
    write_container(root, ID_B, "gone", "running", true);
    struct dlc_error *err = NULL;
    struct runner_info *infos = NULL;
    size_t n = 0;
    assert_int_equal(runner_list(root, false, &infos, &n, &err), 0);
    assert_int_equal(n, 0); /* neither is running */
    runner_infos_free(infos, n);
    assert_int_equal(runner_list(root, true, &infos, &n, &err), 0);
    assert_int_equal(n, 1); /* the --rm one was removed, the other marked exited */
    assert_string_equal(infos[0].name, "kept");
    assert_int_equal(infos[0].state, RUNNER_STATE_EXITED);
    assert_int_equal(infos[0].exit_code, -1);
    runner_infos_free(infos, n);
    _cleanup_free_ char *gone = xasprintf("%s/containers/%s", root, ID_B);
    struct stat st;
    assert_int_equal(stat(gone, &st), -1);
    unit_tmpdir_free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_state__find_and_release),
            cmocka_unit_test(test_state__stale_running_state_is_cleaned_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
