/* spec.c: what one layer of a definition asks for (copy entries, libraries by soname,
 * busybox with its applet links) -> the entries of a layer tree. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "builder-internal.h"

#define MAX_DIR_ENTRIES 200000

struct dir_walk {
    struct btree *t;
    const char *where;
    size_t count;
};

static int walk_entry(struct dir_walk *w, const char *host, const char *dst,
                      struct dlc_error **err);

static int walk_dir(struct dir_walk *w, const char *host, const char *dst, struct dlc_error **err)
{
    _cleanup_dir_ DIR *d = opendir(host);
    if (d == NULL)
        return dlc_error_set_errno(err, errno, "%s: %s", w->where, host);
    for (struct dirent *de; (errno = 0, de = readdir(d)) != NULL;) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (dlc_startswith(de->d_name, ".wh.") != NULL)
            return dlc_error_set(err, EINVAL,
                                 "%s: %s/%s: names starting with '.wh.' are "
                                 "reserved for whiteouts",
                                 w->where, host, de->d_name);
        if (++w->count > MAX_DIR_ENTRIES)
            return dlc_error_set(err, EFBIG, "%s: %s has more than %d entries", w->where, host,
                                 MAX_DIR_ENTRIES);
        _cleanup_free_ char *h = dlc_path_join(host, de->d_name);
        _cleanup_free_ char *i = xasprintf("%s/%s", dst, de->d_name);
        if (walk_entry(w, h, i, err) < 0)
            return -1;
    }
    if (errno != 0)
        return dlc_error_set_errno(err, errno, "%s: read %s", w->where, host);
    return 0;
}

static int walk_entry(struct dir_walk *w, const char *host, const char *dst, struct dlc_error **err)
{
    struct stat st;
    if (lstat(host, &st) < 0)
        return dlc_error_set_errno(err, errno, "%s: %s", w->where, host);
    struct bnode n = {.path = (char *)dst, .where = (char *)w->where};
    if (S_ISDIR(st.st_mode)) {
        n.type = BN_DIR;
        n.mode = 0755;
        if (btree_add(w->t, &n, err) < 0)
            return -1;
        return walk_dir(w, host, dst, err);
    }
    if (S_ISREG(st.st_mode)) {
        n.type = BN_FILE;
        n.src = (char *)host;
        n.size = (uint64_t)st.st_size;
        n.mode = (st.st_mode & 0111) ? 0755 : 0644;
        return btree_add(w->t, &n, err);
    }
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t len = readlink(host, target, sizeof(target) - 1);
        if (len <= 0)
            return dlc_error_set_errno(err, len < 0 ? errno : EINVAL, "%s: readlink %s", w->where,
                                       host);
        target[len] = '\0';
        n.type = BN_SYMLINK;
        n.link = target;
        return btree_add(w->t, &n, err);
    }
    return dlc_error_set(err, EINVAL,
                         "%s: %s: unsupported file type (only files, directories and "
                         "symlinks are copied)",
                         w->where, host);
}

int bspec_add_dir(struct btree *t, const char *host, const char *dst, const char *where,
                  struct dlc_error **err)
{
    struct dir_walk w = {t, where, 0};
    return walk_entry(&w, host, dst, err);
}

static int add_src(struct bresolver *r, struct btree *t, const struct bcopy *c,
                   struct dlc_error **err)
{
    struct stat st;
    if (stat(c->src, &st) < 0)
        return dlc_error_set_errno(err, errno, "%s: 'src' %s", c->where, c->src);
    if (S_ISDIR(st.st_mode)) {
        if (c->mode >= 0)
            return dlc_error_set(err, EINVAL,
                                 "%s: 'mode' applies to a file, and 'src' %s is a "
                                 "directory",
                                 c->where, c->src);
        return bspec_add_dir(t, c->src, c->dst, c->where, err);
    }
    return bclosure_add_file(r, t, c->src, c->dst, c->mode, c->closure, c->where, err);
}

static int add_copy(struct bresolver *r, struct btree *t, const struct bcopy *c,
                    struct dlc_error **err)
{
    struct bnode n = {.path = c->dst, .where = c->where};
    switch (c->kind) {
    case BCOPY_SRC:
        return add_src(r, t, c, err);
    case BCOPY_CONTENT:
        n.type = BN_FILE;
        n.data = c->content;
        n.size = c->content_len;
        n.mode = c->mode >= 0 ? (unsigned)c->mode : 0644;
        break;
    case BCOPY_DIR:
    case BCOPY_OPAQUE:
        n.type = BN_DIR;
        n.mode = c->mode >= 0 ? (unsigned)c->mode : 0755;
        n.opaque = c->kind == BCOPY_OPAQUE;
        break;
    case BCOPY_SYMLINK:
        n.type = BN_SYMLINK;
        n.link = c->link;
        break;
    case BCOPY_WHITEOUT:
        n.type = BN_WHITEOUT;
        break;
    }
    return btree_add(t, &n, err);
}

static int add_busybox(struct bresolver *r, struct btree *t, const struct blayer_spec *spec,
                       struct dlc_error **err)
{
    _cleanup_free_ char *where = xasprintf("%s%sbusybox", spec->where, spec->where[0] ? "." : "");
    struct stat st;
    if (stat(spec->busybox, &st) < 0)
        return dlc_error_set_errno(err, errno, "%s: 'src' %s", where, spec->busybox);
    if (bclosure_add_file(r, t, spec->busybox, spec->busybox_dst, 0755, true, where, err) < 0)
        return -1;
    _cleanup_free_ char *dir = dlc_path_dirname(spec->busybox_dst);
    const char *base = dlc_path_basename(spec->busybox_dst);
    for (size_t i = 0; spec->applets && spec->applets[i]; i++) {
        if (strcmp(spec->applets[i], base) == 0)
            continue;
        _cleanup_free_ char *p = strcmp(dir, ".") == 0 ? xstrdup(spec->applets[i])
                                                       : dlc_path_join(dir, spec->applets[i]);
        struct bnode n = {.type = BN_SYMLINK, .path = p, .link = (char *)base, .where = where};
        if (btree_add(t, &n, err) < 0)
            return -1;
    }
    return 0;
}

int bspec_add(struct bresolver *r, struct btree *t, const struct blayer_spec *spec,
              struct dlc_error **err)
{
    for (size_t i = 0; i < spec->n_copies; i++)
        if (add_copy(r, t, &spec->copies[i], err) < 0)
            return -1;
    for (size_t i = 0; spec->libraries && spec->libraries[i]; i++) {
        _cleanup_free_ char *where =
                xasprintf("%s%slibraries[%zu]", spec->where, spec->where[0] ? "." : "", i);
        if (bclosure_add_library(r, t, spec->libraries[i], where, err) < 0)
            return -1;
    }
    if (spec->busybox != NULL && add_busybox(r, t, spec, err) < 0)
        return -1;
    return 0;
}
