/* storage-manifests.c: manifests (stored byte-for-byte with their Content-Type), tags,
 * referrer entries and the repository catalog. */
#include <errno.h>
#include <string.h>

#include "registry-internal.h"

#define MAX_MEDIA_TYPE 256

void rmanifest_release(struct rmanifest *m)
{
    free(m->media_type);
    free(m->data);
    free(m->subject);
    json_decref(m->descriptor);
    memset(m, 0, sizeof(*m));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dir not starting with '.' (temp files), sorted. A missing dir is ENOENT. */
static int read_names(const char *dir, char ***ret, struct dlc_error **err)
{
    _cleanup_dir_ DIR *d = opendir(dir);
    if (d == NULL)
        return dlc_error_set_errno(err, errno, "read %s", dir);
    char **v = xcalloc(1, sizeof(char *));
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            v = dlc_strv_push(v, de->d_name);
    qsort(v, dlc_strv_len(v), sizeof(char *), cmp_str);
    *ret = v;
    return 0;
}

static char *revision_path(const struct rstore *st, const char *name, const char *digest)
{
    _cleanup_free_ char *sub = xasprintf("_manifests/revisions/sha256/%s", oci_digest_hex(digest));
    return rstore_repo_path(st, name, sub);
}

static char *tag_path(const struct rstore *st, const char *name, const char *tag)
{
    DLC_ASSERT(oci_tag_is_valid(tag));
    _cleanup_free_ char *sub = xasprintf("_manifests/tags/%s", tag);
    return rstore_repo_path(st, name, sub);
}

static char *referrer_path(const struct rstore *st, const char *name, const char *subject,
                           const char *digest)
{
    _cleanup_free_ char *sub = xasprintf("_referrers/sha256/%s%s%s", oci_digest_hex(subject),
                                         digest ? "/" : "", digest ? oci_digest_hex(digest) : "");
    return rstore_repo_path(st, name, sub);
}

/* Writes data to path atomically, creating the parent directory. */
static int put_file(const char *path, const void *data, size_t len, struct dlc_error **err)
{
    _cleanup_free_ char *dir = dlc_path_dirname(path);
    if (dlc_mkdir_p(dir, 0755, err) < 0)
        return -1;
    return dlc_write_file_atomic(path, data, len, 0644, err);
}

static int manifest_put_locked(struct rstore *st, const char *name, const struct rmanifest *m,
                               char *const *tags, struct dlc_error **err)
{
    _cleanup_free_ char *blob = rstore_blob_path(st, m->digest);
    if (!dlc_path_exists(blob) && put_file(blob, m->data, m->len, err) < 0)
        return -1;
    _cleanup_free_ char *rev = revision_path(st, name, m->digest);
    if (put_file(rev, m->media_type, strlen(m->media_type), err) < 0)
        return -1;
    if (m->subject) {
        _cleanup_free_ char *rp = referrer_path(st, name, m->subject, m->digest);
        size_t len = 0;
        _cleanup_free_ char *desc = dlc_json_dumps(m->descriptor, &len);
        if (put_file(rp, desc, len, err) < 0)
            return -1;
    }
    for (size_t i = 0; tags && tags[i]; i++) {
        _cleanup_free_ char *tp = tag_path(st, name, tags[i]);
        if (put_file(tp, m->digest, strlen(m->digest), err) < 0)
            return -1;
    }
    return 0;
}

int rstore_manifest_put(struct rstore *st, const char *name, const struct rmanifest *m,
                        char *const *tags, struct dlc_error **err)
{
    pthread_mutex_lock(&st->meta_lock);
    int r = manifest_put_locked(st, name, m, tags, err);
    pthread_mutex_unlock(&st->meta_lock);
    if (r < 0)
        return dlc_error_wrap(err, "store manifest %s in %s", m->digest, name);
    return 0;
}

/* The digest a tag file holds. */
static int read_tag(const struct rstore *st, const char *name, const char *tag,
                    char ret[OCI_DIGEST_BUFSZ], struct dlc_error **err)
{
    _cleanup_free_ char *tp = tag_path(st, name, tag);
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (dlc_read_file(tp, OCI_DIGEST_BUFSZ, &buf, &len, NULL) < 0)
        return dlc_error_set(err, ENOENT, "manifest %s:%s is unknown", name, tag);
    if (oci_digest_validate(buf, NULL) < 0)
        return dlc_error_set(err, EIO, "tag file %s is corrupt", tp);
    memcpy(ret, buf, len + 1);
    return 0;
}

int rstore_manifest_resolve(struct rstore *st, const char *name, const char *ref,
                            char ret[OCI_DIGEST_BUFSZ], struct dlc_error **err)
{
    char digest[OCI_DIGEST_BUFSZ];
    if (strchr(ref, ':') != NULL) {
        if (oci_digest_validate(ref, err) < 0)
            return -1;
        snprintf(digest, sizeof(digest), "%s", ref);
    } else {
        if (!oci_tag_is_valid(ref))
            return dlc_error_set(err, EINVAL, "invalid tag '%s'", ref);
        if (read_tag(st, name, ref, digest, err) < 0)
            return -1;
    }
    _cleanup_free_ char *rev = revision_path(st, name, digest);
    if (!dlc_path_exists(rev))
        return dlc_error_set(err, ENOENT, "manifest %s@%s is unknown", name, digest);
    memcpy(ret, digest, sizeof(digest));
    return 0;
}

int rstore_manifest_read(struct rstore *st, const char *name, const char *digest, size_t max,
                         struct rmanifest *ret, struct dlc_error **err)
{
    _cleanup_free_ char *rev = revision_path(st, name, digest);
    _cleanup_free_ char *mt = NULL;
    if (dlc_read_file(rev, MAX_MEDIA_TYPE, &mt, NULL, NULL) < 0)
        return dlc_error_set(err, ENOENT, "manifest %s@%s is unknown", name, digest);
    _cleanup_free_ char *blob = rstore_blob_path(st, digest);
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    if (dlc_read_file(blob, max, &data, &len, err) < 0)
        return dlc_error_wrap(err, "manifest %s@%s", name, digest);
    char actual[OCI_DIGEST_BUFSZ];
    oci_digest_buf(data, len, actual);
    if (strcmp(actual, digest) != 0)
        return dlc_error_set(err, EIO, "manifest %s@%s is corrupt on disk", name, digest);
    memset(ret, 0, sizeof(*ret));
    snprintf(ret->digest, sizeof(ret->digest), "%s", digest);
    ret->media_type = TAKE_PTR(mt);
    ret->data = TAKE_PTR(data);
    ret->len = len;
    return 0;
}

/* The subject digest a stored manifest names, or NULL. */
static char *stored_subject(const struct rstore *st, const char *digest)
{
    _cleanup_free_ char *blob = rstore_blob_path(st, digest);
    json_auto_t *j = dlc_json_load_file(blob, OCI_MAX_MANIFEST_SIZE * 4ul, NULL);
    json_t *subject = json_object_get(j, "subject");
    const char *d = json_string_value(json_object_get(subject, "digest"));
    if (d == NULL || oci_digest_validate(d, NULL) < 0)
        return NULL;
    return xstrdup(d);
}

static void untag_digest(const struct rstore *st, const char *name, const char *digest)
{
    _cleanup_free_ char *dir = rstore_repo_path(st, name, "_manifests/tags");
    _cleanup_strv_ char **tags = NULL;
    if (read_names(dir, &tags, NULL) < 0)
        return;
    for (size_t i = 0; tags[i]; i++) {
        char cur[OCI_DIGEST_BUFSZ];
        if (!oci_tag_is_valid(tags[i]) || read_tag(st, name, tags[i], cur, NULL) < 0)
            continue;
        if (strcmp(cur, digest) == 0) {
            _cleanup_free_ char *tp = tag_path(st, name, tags[i]);
            unlink(tp);
        }
    }
}

static int manifest_delete_locked(struct rstore *st, const char *name, const char *digest,
                                  struct dlc_error **err)
{
    _cleanup_free_ char *rev = revision_path(st, name, digest);
    if (!dlc_path_exists(rev))
        return dlc_error_set(err, ENOENT, "manifest %s@%s is unknown", name, digest);
    _cleanup_free_ char *subject = stored_subject(st, digest);
    if (subject) {
        _cleanup_free_ char *rp = referrer_path(st, name, subject, digest);
        unlink(rp);
    }
    untag_digest(st, name, digest);
    if (unlink(rev) < 0)
        return dlc_error_set_errno(err, errno, "unlink %s", rev);
    return 0;
}

int rstore_manifest_delete(struct rstore *st, const char *name, const char *digest,
                           struct dlc_error **err)
{
    pthread_mutex_lock(&st->meta_lock);
    int r = manifest_delete_locked(st, name, digest, err);
    pthread_mutex_unlock(&st->meta_lock);
    return r;
}

int rstore_tag_delete(struct rstore *st, const char *name, const char *tag, struct dlc_error **err)
{
    _cleanup_free_ char *tp = tag_path(st, name, tag);
    pthread_mutex_lock(&st->meta_lock);
    int r = unlink(tp);
    int e = errno;
    pthread_mutex_unlock(&st->meta_lock);
    if (r < 0 && e == ENOENT)
        return dlc_error_set(err, ENOENT, "manifest %s:%s is unknown", name, tag);
    if (r < 0)
        return dlc_error_set_errno(err, e, "unlink %s", tp);
    return 0;
}

int rstore_tags(struct rstore *st, const char *name, char ***ret, struct dlc_error **err)
{
    if (!rstore_repo_exists(st, name))
        return dlc_error_set(err, ENOENT, "repository %s is unknown", name);
    _cleanup_free_ char *dir = rstore_repo_path(st, name, "_manifests/tags");
    _cleanup_strv_ char **names = NULL;
    if (read_names(dir, &names, NULL) < 0) {
        *ret = xcalloc(1, sizeof(char *));
        return 0;
    }
    char **v = xcalloc(1, sizeof(char *));
    for (size_t i = 0; names[i]; i++)
        if (oci_tag_is_valid(names[i]))
            v = dlc_strv_push(v, names[i]);
    *ret = v;
    return 0;
}

/* Appends every repository under dir (relative name prefix) to *v. depth bounds the walk. */
static void catalog_walk(const char *dir, const char *prefix, int depth, char ***v)
{
    _cleanup_strv_ char **names = NULL;
    if (depth > REGISTRY_MAX_NAME / 2 || read_names(dir, &names, NULL) < 0)
        return;
    bool is_repo = false;
    for (size_t i = 0; names[i]; i++)
        is_repo |= strcmp(names[i], "_manifests") == 0 || strcmp(names[i], "_layers") == 0;
    if (is_repo && prefix[0] != '\0')
        *v = dlc_strv_push(*v, prefix);
    for (size_t i = 0; names[i]; i++) {
        if (names[i][0] == '_')
            continue;
        _cleanup_free_ char *sub = dlc_path_join(dir, names[i]);
        _cleanup_free_ char *name =
                prefix[0] ? xasprintf("%s/%s", prefix, names[i]) : xstrdup(names[i]);
        if (dlc_is_dir(sub) && oci_name_is_valid(name))
            catalog_walk(sub, name, depth + 1, v);
    }
}

int rstore_catalog(struct rstore *st, char ***ret, struct dlc_error **err)
{
    (void)err;
    char **v = xcalloc(1, sizeof(char *));
    catalog_walk(st->repos_dir, "", 0, &v);
    qsort(v, dlc_strv_len(v), sizeof(char *), cmp_str);
    *ret = v;
    return 0;
}

int rstore_referrers(struct rstore *st, const char *name, const char *digest,
                     const char *artifact_type, json_t **ret, struct dlc_error **err)
{
    (void)err;
    json_t *arr = json_array();
    _cleanup_free_ char *dir = referrer_path(st, name, digest, NULL);
    _cleanup_strv_ char **names = NULL;
    if (read_names(dir, &names, NULL) == 0) {
        for (size_t i = 0; names[i]; i++) {
            _cleanup_free_ char *p = dlc_path_join(dir, names[i]);
            json_t *desc = dlc_json_load_file(p, 1 << 20, NULL);
            const char *at = json_string_value(json_object_get(desc, "artifactType"));
            if (desc && (artifact_type == NULL || dlc_streq(at, artifact_type)))
                json_array_append(arr, desc);
            json_decref(desc);
        }
    }
    *ret = arr;
    return 0;
}

int rstore_revisions(struct rstore *st, const char *name, char ***ret, struct dlc_error **err)
{
    _cleanup_free_ char *dir = rstore_repo_path(st, name, "_manifests/revisions/sha256");
    _cleanup_strv_ char **names = NULL;
    _cleanup_error_ struct dlc_error *e = NULL;
    if (read_names(dir, &names, &e) < 0) {
        if (e->code != ENOENT)
            return dlc_error_move(err, &e);
    }
    if (names == NULL)
        names = xcalloc(1, sizeof(char *));
    char **v = xcalloc(1, sizeof(char *));
    for (size_t i = 0; names[i]; i++) {
        _cleanup_free_ char *d = xasprintf("sha256:%s", names[i]);
        if (oci_digest_validate(d, NULL) == 0)
            v = dlc_strv_push(v, d);
    }
    *ret = v;
    return 0;
}
