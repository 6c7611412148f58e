/* log.c: logging through a pluggable sink; the default writes to stderr. */
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "common.h"

static void stderr_sink(enum dlc_log_level level, const char *msg, void *userdata);

static dlc_log_fn sink = stderr_sink;
static void *sink_data;
static int cur_level = -1;
static const char *progname = "dlc";

static void stderr_sink(enum dlc_log_level level, const char *msg, void *userdata)
{
    (void)userdata;
    static const char *const names[] = {"error: ", "warning: ", "", "debug: "};
    fprintf(stderr, "%s: %s%s\n", progname, names[level], msg);
}

int dlc_log_level_parse(const char *s)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (size_t i = 0; s != NULL && i < DLC_ARRAY_SIZE(names); i++)
        if (strcasecmp(s, names[i]) == 0)
            return (int)i;
    return -1;
}

enum dlc_log_level dlc_log_get_level(void)
{
    if (cur_level < 0) {
        int l = dlc_log_level_parse(getenv("DLC_LOG_LEVEL"));
        cur_level = l < 0 ? DLC_LOG_INFO : l;
    }
    return (enum dlc_log_level)cur_level;
}

void dlc_log_set_level(enum dlc_log_level level)
{
    cur_level = (int)level;
}

void dlc_log_set_handler(dlc_log_fn fn, void *userdata)
{
    sink = fn ? fn : stderr_sink;
    sink_data = fn ? userdata : NULL;
}

void dlc_log_set_progname(const char *name)
{
    progname = name;
}

const char *dlc_log_progname(void)
{
    return progname;
}

void dlc_log(enum dlc_log_level level, const char *fmt, ...)
{
    if ((int)level > (int)dlc_log_get_level())
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    sink(level, msg, sink_data);
    free(msg);
}
