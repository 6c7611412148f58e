#include <errno.h>
#include <string.h>

#include "unit.h"

static void test_spawn_capture__output_and_status(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    _cleanup_free_ char *out = NULL;
    size_t len = 0;
    const char *const echo[] = {"sh", "-c", "printf 'a b\\n'; echo err >&2", NULL};
    assert_int_equal(dlc_spawn_capture(echo, true, 100, &out, &len, &err), 0);
    assert_string_equal(out, "a b\n");
    assert_int_equal(len, 4);
    free(out);
    out = NULL;
    const char *const fail[] = {"sh", "-c", "echo partial; exit 3", NULL};
    assert_int_equal(dlc_spawn_capture(fail, true, 100, &out, &len, &err), 3);
    assert_string_equal(out, "partial\n");
}

static void test_spawn_capture__errors(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    char *out = NULL;
    size_t len = 0;
    const char *const big[] = {"sh", "-c", "yes | head -c 100000", NULL};
    assert_dlc_error(dlc_spawn_capture(big, true, 1000, &out, &len, &err), &err, EFBIG,
                     "output of sh exceeds 1000 bytes");
    assert_null(out);
    const char *const none[] = {"/nonexistent/dlc-no-such-program", NULL};
    assert_dlc_error(dlc_spawn_capture(none, true, 1000, &out, &len, &err), &err, ENOENT,
                     "run /nonexistent/dlc-no-such-program");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_spawn_capture__output_and_status),
            cmocka_unit_test(test_spawn_capture__errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
