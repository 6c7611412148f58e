/* Unit tests: the registry's storage (links, manifests, tags, referrers, catalog), upload
 * sessions, garbage collection and the client's mount hints. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "unit.h"

#include "../../../registry/src/registry-internal.h"

struct fixture {
    char *dir;
    struct rstore *st;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    f->dir = unit_tmpdir();
    struct dlc_error *err = NULL;
    if (rstore_open(f->dir, false, &f->st, &err) < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    rstore_free(f->st);
    unit_tmpdir_free(f->dir);
    free(f);
    return 0;
}

/* Uploads data to name through a session, as a PUT would. */
static void put_blob(struct upload_table *t, struct rstore *st, const char *name, const char *data,
                     char digest[OCI_DIGEST_BUFSZ])
{
    struct dlc_error *err = NULL;
    struct upload *u = NULL;
    oci_digest_buf(data, strlen(data), digest);
    assert_int_equal(upload_new(t, st, name, &u, &err), 0);
    assert_int_equal(upload_append(u, data, strlen(data), &err), 0);
    assert_int_equal(upload_finish(t, st, u, digest, &err), 0);
}

static void test_storage__uploads(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    struct upload_table t;
    assert_int_equal(uploads_init(&t, 2, 3600, &err), 0);
    struct upload *u = NULL, *u2 = NULL, *u3 = NULL;
    assert_int_equal(upload_new(&t, f->st, "a", &u, &err), 0);
    assert_int_equal(upload_append(u, "hel", 3, &err), 0);
    upload_release(&t, u);
    /* a session is found by id and repository, one request at a time */
    assert_dlc_error(upload_acquire(&t, "b", u->id, &u2, &err), &err, ENOENT, "unknown");
    assert_dlc_error(upload_acquire(&t, "a", "../../etc", &u2, &err), &err, ENOENT, "unknown");
    assert_int_equal(upload_acquire(&t, "a", u->id, &u2, &err), 0);
    assert_ptr_equal(u, u2);
    assert_dlc_error(upload_acquire(&t, "a", u->id, &u3, &err), &err, EBUSY, "busy");
    assert_int_equal(upload_append(u, "lo", 2, &err), 0);
    assert_int_equal(u->size, 5);
    assert_int_equal(upload_new(&t, f->st, "a", &u2, &err), 0);
    assert_dlc_error(upload_new(&t, f->st, "a", &u3, &err), &err, EAGAIN, "too many uploads");
    upload_drop(&t, u2);
    /* a wrong digest stores nothing and ends the session */
    char wrong[OCI_DIGEST_BUFSZ];
    oci_digest_buf("other", 5, wrong);
    assert_dlc_error(upload_finish(&t, f->st, u, wrong, &err), &err, EBADMSG,
                     "upload of 5 bytes hashes to sha256:2cf24dba");
    assert_false(rstore_blob_exists(f->st, wrong));
    char hello[OCI_DIGEST_BUFSZ];
    oci_digest_buf("hello", 5, hello);
    assert_false(rstore_blob_exists(f->st, hello));
    assert_int_equal(t.n, 0);
    put_blob(&t, f->st, "a", "hello", hello);
    assert_true(rstore_blob_linked(f->st, "a", hello));
    assert_false(rstore_blob_linked(f->st, "b", hello));
    int fd = -1;
    uint64_t size = 0;
    assert_int_equal(rstore_blob_open(f->st, "a", hello, &fd, &size, &err), 0);
    assert_int_equal(size, 5);
    close(fd);
    /* another repository sees it only through a link (a mount) */
    assert_dlc_error(rstore_blob_open(f->st, "b", hello, &fd, &size, &err), &err, ENOENT,
                     "not in repository b");
    assert_int_equal(rstore_blob_link(f->st, "b", hello, &err), 0);
    assert_int_equal(rstore_blob_unlink(f->st, "a", hello, &err), 0);
    assert_dlc_error(rstore_blob_unlink(f->st, "a", hello, &err), &err, ENOENT, "not in");
    assert_true(rstore_blob_exists(f->st, hello));
    uploads_destroy(&t);
    _cleanup_dir_ DIR *d = opendir(f->st->uploads_dir);
    int entries = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        entries += de->d_name[0] != '.';
    assert_int_equal(entries, 0);
}

static void test_storage__upload_expiry(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    struct upload_table t;
    assert_int_equal(uploads_init(&t, 8, 1, &err), 0);
    struct upload *u = NULL;
    assert_int_equal(upload_new(&t, f->st, "a", &u, &err), 0);
    char id[40];
    snprintf(id, sizeof(id), "%s", u->id);
    upload_release(&t, u);
    sleep(2);
    assert_dlc_error(upload_acquire(&t, "a", id, &u, &err), &err, ENOENT, "unknown");
    uploads_destroy(&t);
}

/* A manifest referencing config and layer (digests), optionally with a subject. */
static void make_manifest(struct rmanifest *m, const char *config, const char *layer,
                          const char *subject)
{
    memset(m, 0, sizeof(*m));
    m->data = xasprintf("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"%s\",\"digest\":\"%s\","
                        "\"size\":1},\"layers\":[{\"mediaType\":\"%s\",\"digest\":\"%s\","
                        "\"size\":1}]%s%s%s}",
                        OCI_MT_CONFIG, config, OCI_MT_LAYER_GZIP, layer,
                        subject ? ",\"subject\":{\"mediaType\":\"" OCI_MT_MANIFEST
                                  "\",\"size\":1,\"digest\":\""
                                : "",
                        subject ? subject : "", subject ? "\"}" : "");
    m->len = strlen(m->data);
    oci_digest_buf(m->data, m->len, m->digest);
    m->media_type = xstrdup(OCI_MT_MANIFEST);
    if (subject) {
        m->subject = xstrdup(subject);
        m->descriptor = json_pack("{s:s,s:s,s:i,s:s}", "mediaType", OCI_MT_MANIFEST, "digest",
                                  m->digest, "size", (int)m->len, "artifactType", "x/y");
    }
}

static void test_storage__manifests_and_tags(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    char cfg[OCI_DIGEST_BUFSZ], layer[OCI_DIGEST_BUFSZ], d[OCI_DIGEST_BUFSZ];
    oci_digest_buf("c", 1, cfg);
    oci_digest_buf("l", 1, layer);
    struct rmanifest m, ref;
    make_manifest(&m, cfg, layer, NULL);
    make_manifest(&ref, cfg, layer, m.digest);
    char t1[] = "v1", t2[] = "latest", t3[] = "1.0";
    char *tags[] = {t1, t2, t3, NULL};
    assert_int_equal(rstore_manifest_put(f->st, "r/x", &m, tags, &err), 0);
    assert_int_equal(rstore_manifest_put(f->st, "r/x", &ref, NULL, &err), 0);
    assert_int_equal(rstore_manifest_resolve(f->st, "r/x", "latest", d, &err), 0);
    assert_string_equal(d, m.digest);
    assert_int_equal(rstore_manifest_resolve(f->st, "r/x", m.digest, d, &err), 0);
    assert_dlc_error(rstore_manifest_resolve(f->st, "r/x", "nope", d, &err), &err, ENOENT,
                     "manifest r/x:nope is unknown");
    assert_dlc_error(rstore_manifest_resolve(f->st, "r/y", m.digest, d, &err), &err, ENOENT,
                     "unknown");
    struct rmanifest back;
    assert_int_equal(rstore_manifest_read(f->st, "r/x", m.digest, 1 << 20, &back, &err), 0);
    assert_int_equal(back.len, m.len);
    assert_memory_equal(back.data, m.data, m.len);
    assert_string_equal(back.media_type, OCI_MT_MANIFEST);
    rmanifest_release(&back);
    char **v = NULL;
    assert_int_equal(rstore_tags(f->st, "r/x", &v, &err), 0);
    assert_int_equal(dlc_strv_len(v), 3);
    assert_string_equal(v[0], "1.0"); /* strcmp order */
    assert_string_equal(v[1], "latest");
    assert_string_equal(v[2], "v1");
    dlc_strv_free(v);
    assert_dlc_error(rstore_tags(f->st, "nothere", &v, &err), &err, ENOENT, "unknown");
    /* referrers, with and without a filter */
    json_t *refs = NULL;
    assert_int_equal(rstore_referrers(f->st, "r/x", m.digest, NULL, &refs, &err), 0);
    assert_int_equal(json_array_size(refs), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(refs, 0), "digest")),
                        ref.digest);
    json_decref(refs);
    assert_int_equal(rstore_referrers(f->st, "r/x", m.digest, "other", &refs, &err), 0);
    assert_int_equal(json_array_size(refs), 0);
    json_decref(refs);
    /* deleting a tag keeps the manifest; deleting the manifest drops every tag */
    assert_int_equal(rstore_tag_delete(f->st, "r/x", "v1", &err), 0);
    assert_dlc_error(rstore_tag_delete(f->st, "r/x", "v1", &err), &err, ENOENT, "unknown");
    assert_int_equal(rstore_manifest_delete(f->st, "r/x", m.digest, &err), 0);
    assert_int_equal(rstore_tags(f->st, "r/x", &v, &err), 0);
    assert_int_equal(dlc_strv_len(v), 0);
    dlc_strv_free(v);
    assert_dlc_error(rstore_manifest_delete(f->st, "r/x", m.digest, &err), &err, ENOENT, "");
    /* deleting the referrer removes its entry */
    assert_int_equal(rstore_manifest_delete(f->st, "r/x", ref.digest, &err), 0);
    assert_int_equal(rstore_referrers(f->st, "r/x", m.digest, NULL, &refs, &err), 0);
    assert_int_equal(json_array_size(refs), 0);
    json_decref(refs);
    rmanifest_release(&m);
    rmanifest_release(&ref);
}

static void test_storage__catalog_and_lock(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    char d[OCI_DIGEST_BUFSZ];
    oci_digest_buf("x", 1, d);
    static const char *const repos[] = {"b", "a/c", "a", "a/b/c", "z_z"};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(repos); i++)
        assert_int_equal(rstore_blob_link(f->st, repos[i], d, &err), 0);
    char **v = NULL;
    assert_int_equal(rstore_catalog(f->st, &v, &err), 0);
    assert_int_equal(dlc_strv_len(v), 5);
    static const char *const want[] = {"a", "a/b/c", "a/c", "b", "z_z"};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(want); i++)
        assert_string_equal(v[i], want[i]);
    dlc_strv_free(v);
    /* gc needs the root to itself */
    struct registry_gc_stats gs;
    assert_dlc_error(registry_gc(f->dir, false, &gs, &err), &err, EBUSY,
                     "in use by a running server");
}

static void test_storage__gc(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    struct upload_table t;
    assert_int_equal(uploads_init(&t, 8, 3600, &err), 0);
    char cfg[OCI_DIGEST_BUFSZ], layer[OCI_DIGEST_BUFSZ], stray[OCI_DIGEST_BUFSZ];
    put_blob(&t, f->st, "g", "config", cfg);
    put_blob(&t, f->st, "g", "layer", layer);
    put_blob(&t, f->st, "g", "stray bytes", stray);
    uploads_destroy(&t);
    struct rmanifest m;
    make_manifest(&m, cfg, layer, NULL);
    char t1[] = "v1";
    char *tags[] = {t1, NULL};
    assert_int_equal(rstore_manifest_put(f->st, "g", &m, tags, &err), 0);
    rstore_free(f->st);
    f->st = NULL;
    struct registry_gc_stats gs;
    assert_int_equal(registry_gc(f->dir, true, &gs, &err), 0);
    assert_int_equal(gs.blobs_removed, 1);
    assert_int_equal(gs.bytes_removed, strlen("stray bytes"));
    assert_int_equal(registry_gc(f->dir, false, &gs, &err), 0);
    assert_int_equal(gs.blobs_removed, 1);
    assert_int_equal(gs.blobs_kept, 3); /* manifest, config, layer */
    assert_int_equal(gs.links_removed, 1);
    assert_int_equal(rstore_open(f->dir, false, &f->st, &err), 0);
    assert_false(rstore_blob_exists(f->st, stray));
    assert_false(rstore_blob_linked(f->st, "g", stray));
    assert_true(rstore_blob_exists(f->st, layer));
    assert_true(rstore_blob_exists(f->st, m.digest));
    rmanifest_release(&m);
}

static void test_storage__mount_hints(void **state)
{
    struct fixture *f = *state;
    char d[OCI_DIGEST_BUFSZ], e[OCI_DIGEST_BUFSZ];
    oci_digest_buf("a", 1, d);
    oci_digest_buf("b", 1, e);
    assert_null(blobcache_lookup(f->dir, "h:5000", d, "x"));
    blobcache_record(f->dir, "h:5000", d, "one");
    blobcache_record(f->dir, "h:5000", d, "two");
    blobcache_record(f->dir, "h:5000", e, "three");
    blobcache_record(f->dir, "other:1", d, "four");
    _cleanup_free_ char *a = blobcache_lookup(f->dir, "h:5000", d, "x");
    assert_string_equal(a, "two"); /* the latest */
    _cleanup_free_ char *b = blobcache_lookup(f->dir, "h:5000", d, "two");
    assert_string_equal(b, "one"); /* never the repository being pushed to */
    _cleanup_free_ char *c = blobcache_lookup(f->dir, "other:1", d, "x");
    assert_string_equal(c, "four");
    _cleanup_free_ char *path = dlc_path_join(f->dir, "registry-blobs/h:5000");
    assert_true(dlc_path_exists(path));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_storage__uploads, setup, teardown),
            cmocka_unit_test_setup_teardown(test_storage__upload_expiry, setup, teardown),
            cmocka_unit_test_setup_teardown(test_storage__manifests_and_tags, setup, teardown),
            cmocka_unit_test_setup_teardown(test_storage__catalog_and_lock, setup, teardown),
            cmocka_unit_test_setup_teardown(test_storage__gc, setup, teardown),
            cmocka_unit_test_setup_teardown(test_storage__mount_hints, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
