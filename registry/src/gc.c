/* gc.c: `dlc registry gc`: offline mark (every manifest of every repository, its config and
 * layers, an index's manifests) and sweep (blobs nothing marked, their repository links,
 * leftover uploads). Holds the root's lock exclusively, so no server runs meanwhile. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "registry-internal.h"

struct marks {
    char **v;
    size_t n, cap;
};

static void mark(struct marks *m, const char *digest)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->v = xrealloc(m->v, m->cap * sizeof(char *));
    }
    m->v[m->n++] = xstrdup(digest);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool marked(const struct marks *m, const char *digest)
{
    return m->n > 0 && bsearch(&digest, m->v, m->n, sizeof(char *), cmp_str) != NULL;
}

static void marks_release(struct marks *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->v[i]);
    free(m->v);
}

static int mark_manifest(struct rstore *st, const char *repo, const char *digest, struct marks *m,
                         struct dlc_error **err)
{
    struct rmanifest rm = {0};
    if (rstore_manifest_read(st, repo, digest, 64u << 20, &rm, err) < 0)
        return -1;
    mark(m, digest);
    int r = 0;
    if (oci_media_type_is_index(rm.media_type)) {
        _cleanup_(oci_index_freep) struct oci_index *ix = NULL;
        r = oci_index_parse(rm.data, rm.len, digest, &ix, err);
        for (size_t i = 0; r == 0 && i < ix->n_manifests; i++)
            mark(m, ix->manifests[i].digest);
    } else {
        _cleanup_(oci_manifest_freep) struct oci_manifest *man = NULL;
        r = oci_manifest_parse(rm.data, rm.len, digest, &man, err);
        if (r == 0)
            mark(m, man->config.digest);
        for (size_t i = 0; r == 0 && i < man->n_layers; i++)
            mark(m, man->layers[i].digest);
    }
    rmanifest_release(&rm);
    return r;
}

static int mark_all(struct rstore *st, char *const *repos, struct marks *m, struct dlc_error **err)
{
    for (size_t i = 0; repos[i]; i++) {
        _cleanup_strv_ char **revs = NULL;
        if (rstore_revisions(st, repos[i], &revs, err) < 0)
            return dlc_error_wrap(err, "repository %s", repos[i]);
        for (size_t k = 0; revs[k]; k++)
            if (mark_manifest(st, repos[i], revs[k], m, err) < 0)
                return dlc_error_wrap(err, "repository %s", repos[i]);
    }
    if (m->n > 0)
        qsort(m->v, m->n, sizeof(char *), cmp_str);
    return 0;
}

static int sweep_dir(const char *dir, const struct marks *m, bool dry_run,
                     struct registry_gc_stats *s, struct dlc_error **err)
{
    _cleanup_dir_ DIR *d = opendir(dir);
    if (d == NULL)
        return dlc_error_set_errno(err, errno, "read %s", dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        _cleanup_free_ char *p = dlc_path_join(dir, de->d_name);
        _cleanup_free_ char *digest = xasprintf("sha256:%s", de->d_name);
        bool tmp = de->d_name[0] == '.';
        if (!tmp && (oci_digest_validate(digest, NULL) < 0 || marked(m, digest))) {
            s->blobs_kept++;
            continue;
        }
        struct stat sb;
        if (lstat(p, &sb) == 0 && !tmp) {
            s->blobs_removed++;
            s->bytes_removed += (uint64_t)sb.st_size;
        }
        if (!dry_run && unlink(p) < 0 && errno != ENOENT)
            return dlc_error_set_errno(err, errno, "remove %s", p);
    }
    return 0;
}

static int sweep_blobs(struct rstore *st, const struct marks *m, bool dry_run,
                       struct registry_gc_stats *s, struct dlc_error **err)
{
    _cleanup_dir_ DIR *d = opendir(st->blobs_dir);
    if (d == NULL)
        return dlc_error_set_errno(err, errno, "read %s", st->blobs_dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strlen(de->d_name) != 2 || de->d_name[0] == '.') /* not "..": only <hex[0:2]> */
            continue;
        _cleanup_free_ char *sub = dlc_path_join(st->blobs_dir, de->d_name);
        if (sweep_dir(sub, m, dry_run, s, err) < 0)
            return -1;
    }
    return 0;
}

/* Removes repository links to blobs that are gone. */
static void sweep_links(struct rstore *st, char *const *repos, const struct marks *m, bool dry_run,
                        struct registry_gc_stats *s)
{
    for (size_t i = 0; repos[i]; i++) {
        _cleanup_free_ char *dir = rstore_repo_path(st, repos[i], "_layers/sha256");
        _cleanup_dir_ DIR *d = opendir(dir);
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL) {
            _cleanup_free_ char *digest = xasprintf("sha256:%s", de->d_name);
            if (oci_digest_validate(digest, NULL) < 0 || marked(m, digest))
                continue;
            s->links_removed++;
            if (!dry_run)
                rstore_blob_unlink(st, repos[i], digest, NULL);
        }
    }
}

int registry_gc(const char *root, bool dry_run, struct registry_gc_stats *ret,
                struct dlc_error **err)
{
    struct rstore *st = NULL;
    if (rstore_open(root, true, &st, err) < 0)
        return dlc_error_wrap(err, "registry gc");
    struct registry_gc_stats s = {0};
    struct marks m = {0};
    _cleanup_strv_ char **repos = NULL;
    int r = rstore_catalog(st, &repos, err);
    if (r == 0)
        r = mark_all(st, repos, &m, err);
    if (r == 0)
        r = sweep_blobs(st, &m, dry_run, &s, err);
    if (r == 0) {
        sweep_links(st, repos, &m, dry_run, &s);
        if (!dry_run)
            r = rstore_clear_uploads(st, err);
    }
    marks_release(&m);
    rstore_free(st);
    if (r < 0)
        return dlc_error_wrap(err, "registry gc");
    *ret = s;
    return 0;
}
