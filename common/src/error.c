/* error.c: the one error type (struct dlc_error) and assertions. */
#include <errno.h>
#include <string.h>

#include "common.h"

void dlc__assert_fail(const char *expr, const char *file, int line, const char *func)
{
    fprintf(stderr, "%s: assertion failed: %s (%s:%d, %s)\n", dlc_log_progname(), expr, file, line,
            func);
    abort();
}

static int error_setv(struct dlc_error **err, int code, bool with_errno, const char *fmt,
                      va_list ap)
{
    if (err == NULL || *err != NULL)
        return -1;
    char *msg = xvasprintf(fmt, ap);
    if (with_errno) {
        char *full = xasprintf("%s: %s", msg, strerror(code));
        free(msg);
        msg = full;
    }
    struct dlc_error *e = xmalloc(sizeof(*e));
    e->code = code;
    e->msg = msg;
    *err = e;
    return -1;
}

int dlc_error_set(struct dlc_error **err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_setv(err, code, false, fmt, ap);
    va_end(ap);
    return -1;
}

int dlc_error_set_errno(struct dlc_error **err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_setv(err, code, true, fmt, ap);
    va_end(ap);
    return -1;
}

int dlc_error_wrap(struct dlc_error **err, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    char *ctx = xvasprintf(fmt, ap);
    va_end(ap);
    if (*err == NULL) {
        dlc_error_set(err, EIO, "%s", ctx);
        free(ctx);
        return -1;
    }
    char *full = xasprintf("%s: %s", ctx, (*err)->msg);
    free(ctx);
    free((*err)->msg);
    (*err)->msg = full;
    return -1;
}

void dlc_error_free(struct dlc_error **err)
{
    if (err == NULL || *err == NULL)
        return;
    free((*err)->msg);
    free(*err);
    *err = NULL;
}

int dlc_error_move(struct dlc_error **dst, struct dlc_error **src)
{
    if (dst != NULL && *dst == NULL) {
        *dst = *src;
        *src = NULL;
    } else {
        dlc_error_free(src);
    }
    return -1;
}
