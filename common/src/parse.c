/* parse.c: whole-string, range-checked number, size and bool parsers. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "common.h"

static const char *name_of(const char *what)
{
    return what ? what : "value";
}

int dlc_parse_u64(const char *s, const char *what, uint64_t *ret, struct dlc_error **err)
{
    if (s == NULL || !isdigit((unsigned char)s[0]))
        return dlc_error_set(err, EINVAL, "%s: '%s' is not a non-negative integer", name_of(what),
                             s ? s : "");
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == ERANGE)
        return dlc_error_set(err, ERANGE, "%s: '%s' is too large", name_of(what), s);
    if (*end != '\0')
        return dlc_error_set(err, EINVAL, "%s: '%s' is not a non-negative integer", name_of(what),
                             s);
    *ret = (uint64_t)v;
    return 0;
}

int dlc_parse_i64(const char *s, const char *what, int64_t *ret, struct dlc_error **err)
{
    const char *digits = (s && (s[0] == '-' || s[0] == '+')) ? s + 1 : s;
    if (s == NULL || !isdigit((unsigned char)digits[0]))
        return dlc_error_set(err, EINVAL, "%s: '%s' is not an integer", name_of(what), s ? s : "");
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE)
        return dlc_error_set(err, ERANGE, "%s: '%s' is out of range", name_of(what), s);
    if (*end != '\0')
        return dlc_error_set(err, EINVAL, "%s: '%s' is not an integer", name_of(what), s);
    *ret = (int64_t)v;
    return 0;
}

int dlc_parse_int(const char *s, const char *what, int min, int max, int *ret,
                  struct dlc_error **err)
{
    int64_t v = 0;
    if (dlc_parse_i64(s, what, &v, err) < 0)
        return -1;
    if (v < min || v > max)
        return dlc_error_set(err, ERANGE, "%s: %s is out of range [%d, %d]", name_of(what), s, min,
                             max);
    *ret = (int)v;
    return 0;
}

int dlc_parse_double(const char *s, const char *what, double *ret, struct dlc_error **err)
{
    if (s == NULL || *s == '\0' || isspace((unsigned char)s[0]))
        return dlc_error_set(err, EINVAL, "%s: '%s' is not a number", name_of(what), s ? s : "");
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (*end != '\0' || end == s)
        return dlc_error_set(err, EINVAL, "%s: '%s' is not a number", name_of(what), s);
    if (errno == ERANGE || !isfinite(v))
        return dlc_error_set(err, ERANGE, "%s: '%s' is out of range", name_of(what), s);
    *ret = v;
    return 0;
}

int dlc_parse_size(const char *s, const char *what, uint64_t *ret, struct dlc_error **err)
{
    if (s == NULL || !isdigit((unsigned char)s[0]))
        return dlc_error_set(err, EINVAL, "%s: '%s' is not a size (like 512m, 4MiB, 1g)",
                             name_of(what), s ? s : "");
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (errno == ERANGE || !isfinite(v) || v < 0)
        return dlc_error_set(err, ERANGE, "%s: '%s' is out of range", name_of(what), s);
    static const struct {
        const char *suffix;
        double mult;
    } units[] = {
            {"", 1.0},
            {"b", 1.0},
            {"k", 1024.0},
            {"kb", 1024.0},
            {"kib", 1024.0},
            {"m", 1048576.0},
            {"mb", 1048576.0},
            {"mib", 1048576.0},
            {"g", 1073741824.0},
            {"gb", 1073741824.0},
            {"gib", 1073741824.0},
            {"t", 1099511627776.0},
            {"tb", 1099511627776.0},
            {"tib", 1099511627776.0},
    };
    for (size_t i = 0; i < DLC_ARRAY_SIZE(units); i++) {
        if (strcasecmp(end, units[i].suffix) != 0)
            continue;
        double bytes = v * units[i].mult;
        if (bytes >= 18446744073709551615.0)
            return dlc_error_set(err, ERANGE, "%s: '%s' is too large", name_of(what), s);
        *ret = (uint64_t)bytes;
        return 0;
    }
    return dlc_error_set(err, EINVAL, "%s: '%s' has an unknown unit (use k, m, g, t)",
                         name_of(what), s);
}

int dlc_parse_bool(const char *s, const char *what, bool *ret, struct dlc_error **err)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; s != NULL && i < DLC_ARRAY_SIZE(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *ret = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *ret = false;
            return 0;
        }
    }
    return dlc_error_set(err, EINVAL, "%s: '%s' is not a boolean (true or false)", name_of(what),
                         s ? s : "");
}

const char *dlc_format_size(uint64_t n, char *buf, size_t len)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
    double v = (double)n;
    size_t u = 0;
    while (v >= 1000.0 && u + 1 < DLC_ARRAY_SIZE(units)) {
        v /= 1000.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%" PRIu64 " B", n);
    else
        snprintf(buf, len, "%.1f %s", v, units[u]);
    return buf;
}
