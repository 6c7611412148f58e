/* path.c: joining, lexical normalisation, and symlink resolution confined to a root. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"

char *dlc_path_join(const char *a, const char *b)
{
    size_t la = strlen(a);
    while (la > 1 && a[la - 1] == '/')
        la--;
    while (*b == '/')
        b++;
    if (*b == '\0')
        return xstrndup(a, la);
    if (la == 1 && a[0] == '/')
        return xasprintf("/%s", b);
    return xasprintf("%.*s/%s", (int)la, a, b);
}

const char *dlc_path_basename(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

char *dlc_path_dirname(const char *path)
{
    const char *s = strrchr(path, '/');
    if (s == NULL)
        return xstrdup(".");
    if (s == path)
        return xstrdup("/");
    return xstrndup(path, (size_t)(s - path));
}

/* Drops the last component of a relative path held in sb ("a/b" -> "a", "a" -> ""). */
static void strbuf_pop_component(struct dlc_strbuf *sb)
{
    while (sb->len > 0 && sb->buf[sb->len - 1] != '/')
        sb->len--;
    if (sb->len > 0)
        sb->len--;
    if (sb->buf)
        sb->buf[sb->len] = '\0';
}

int dlc_path_normalize_relative(const char *path, char **ret, struct dlc_error **err)
{
    _cleanup_strbuf_ struct dlc_strbuf out = DLC_STRBUF_INIT;
    const char *p = path;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.')) {
            /* skip */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (out.len == 0)
                return dlc_error_set(err, EINVAL, "path '%s' escapes its root", path);
            strbuf_pop_component(&out);
        } else {
            if (out.len > 0)
                dlc_strbuf_appendc(&out, '/');
            dlc_strbuf_append_len(&out, p, n);
        }
        p += n;
        if (*p == '/')
            p++;
    }
    *ret = out.len ? dlc_strbuf_detach(&out, NULL) : xstrdup(".");
    return 0;
}

int dlc_path_resolve_in_root(const char *root, const char *path, char **ret, struct dlc_error **err)
{
    _cleanup_strbuf_ struct dlc_strbuf resolved = DLC_STRBUF_INIT;
    _cleanup_free_ char *todo = xstrdup(path);
    int links = 0;
    const char *p = todo;

    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        const char *next = p + n + (p[n] == '/' ? 1 : 0);
        if (n == 0 || (n == 1 && p[0] == '.')) {
            p = next;
            continue;
        }
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            strbuf_pop_component(&resolved);
            p = next;
            continue;
        }
        size_t keep = resolved.len;
        if (resolved.len > 0)
            dlc_strbuf_appendc(&resolved, '/');
        dlc_strbuf_append_len(&resolved, p, n);
        _cleanup_free_ char *full = dlc_path_join(root, resolved.buf);
        struct stat st;
        if (lstat(full, &st) < 0 || !S_ISLNK(st.st_mode)) {
            /* Missing or not a link: take the component lexically and go on. */
            p = next;
            continue;
        }
        if (++links > 40)
            return dlc_error_set(err, ELOOP, "resolve '%s' in %s: too many symlinks", path, root);
        char target[PATH_MAX];
        ssize_t tl = readlink(full, target, sizeof(target) - 1);
        if (tl < 0)
            return dlc_error_set_errno(err, errno, "resolve '%s': readlink %s", path, full);
        target[tl] = '\0';
        /* Undo the component, then splice the link target in front of the rest. */
        resolved.len = keep;
        resolved.buf[keep] = '\0';
        if (target[0] == '/')
            dlc_strbuf_reset(&resolved);
        char *rest = xasprintf("%s/%s", target, next);
        free(todo);
        todo = rest;
        p = todo;
    }
    *ret = resolved.len ? dlc_path_join(root, resolved.buf) : xstrdup(root);
    return 0;
}
