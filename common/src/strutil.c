/* strutil.c: string helpers, string vectors and the growable string buffer. */
#include <string.h>
#include <time.h>

#include "common.h"

const char *dlc_startswith(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

bool dlc_endswith(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

void dlc_hex_encode(const unsigned char *in, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 0xf];
    }
    out[2 * len] = '\0';
}

void dlc_strv_free(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

size_t dlc_strv_len(char *const *v)
{
    size_t n = 0;
    while (v != NULL && v[n] != NULL)
        n++;
    return n;
}

char **dlc_strv_push(char **v, const char *s)
{
    size_t n = dlc_strv_len(v);
    v = xrealloc(v, (n + 2) * sizeof(*v));
    v[n] = xstrdup(s);
    v[n + 1] = NULL;
    return v;
}

char **dlc_strv_copy(char *const *v)
{
    size_t n = dlc_strv_len(v);
    char **r = xcalloc(n + 1, sizeof(*r));
    for (size_t i = 0; i < n; i++)
        r[i] = xstrdup(v[i]);
    return r;
}

bool dlc_strv_contains(char *const *v, const char *s)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

size_t dlc_strv_bsearch(char *const *v, size_t n, const char *key, bool *found)
{
    size_t lo = 0, hi = n;
    *found = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(v[mid], key);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const char *dlc_format_rfc3339(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

static void strbuf_grow(struct dlc_strbuf *sb, size_t extra)
{
    size_t need = 0;
    if (!dlc_size_add(sb->len, extra, &need) || !dlc_size_add(need, 1, &need))
        abort();
    if (need <= sb->cap)
        return;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < need)
        cap *= 2;
    sb->buf = xrealloc(sb->buf, cap);
    sb->cap = cap;
}

void dlc_strbuf_append_len(struct dlc_strbuf *sb, const void *data, size_t len)
{
    strbuf_grow(sb, len);
    if (len > 0)
        memcpy(sb->buf + sb->len, data, len);
    sb->len += len;
    sb->buf[sb->len] = '\0';
}

void dlc_strbuf_append(struct dlc_strbuf *sb, const char *s)
{
    dlc_strbuf_append_len(sb, s, strlen(s));
}

void dlc_strbuf_appendc(struct dlc_strbuf *sb, char c)
{
    dlc_strbuf_append_len(sb, &c, 1);
}

void dlc_strbuf_appendf(struct dlc_strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = xvasprintf(fmt, ap);
    va_end(ap);
    dlc_strbuf_append(sb, s);
    free(s);
}

void dlc_strbuf_reset(struct dlc_strbuf *sb)
{
    sb->len = 0;
    if (sb->buf)
        sb->buf[0] = '\0';
}

char *dlc_strbuf_detach(struct dlc_strbuf *sb, size_t *ret_len)
{
    char *r = sb->buf ? sb->buf : xstrdup("");
    if (ret_len)
        *ret_len = sb->len;
    sb->buf = NULL;
    sb->len = sb->cap = 0;
    return r;
}

void dlc_strbuf_release(struct dlc_strbuf *sb)
{
    free(sb->buf);
    sb->buf = NULL;
    sb->len = sb->cap = 0;
}
