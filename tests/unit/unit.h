/* unit.h: what every cmocka test file includes. */
#ifndef DLC_UNIT_H
#define DLC_UNIT_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common.h"

/* Asserts that an int-returning call failed with code and a message containing want. */
#define assert_dlc_error(call, errp, want_code, want_substr)                  \
    do {                                                                      \
        assert_true((call) < 0);                                              \
        assert_non_null(*(errp));                                             \
        if (strstr((*(errp))->msg, (want_substr)) == NULL)                    \
            fail_msg("error '%s' lacks '%s'", (*(errp))->msg, (want_substr)); \
        assert_int_equal((*(errp))->code, (want_code));                       \
        dlc_error_free(errp);                                                 \
    } while (0)

/* A fresh temporary directory (removed by unit_tmpdir_free). */
static inline char *unit_tmpdir(void)
{
    char *t = xstrdup("/tmp/dlc-unit-XXXXXX");
    if (mkdtemp(t) == NULL)
        abort();
    return t;
}

static inline void unit_tmpdir_free(char *t)
{
    struct dlc_error *err = NULL;
    if (t && dlc_rm_rf(t, &err) < 0)
        dlc_error_free(&err);
    free(t);
}
#endif
