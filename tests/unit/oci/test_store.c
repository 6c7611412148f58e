#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "oci-unit.h"

/* Stores a one-layer image (uncompressed tar media type, so diff_id = layer digest) for arch
 * and returns its manifest descriptor. */
static void make_image(struct oci_store *s, const char *layer, const char *arch,
                       struct oci_descriptor *ret)
{
    struct dlc_error *err = NULL;
    char ld[OCI_DIGEST_BUFSZ], cd[OCI_DIGEST_BUFSZ];
    assert_int_equal(oci_store_blob_put(s, layer, strlen(layer), NULL, ld, &err), 0);
    _cleanup_free_ char *config = xasprintf(
            "{\"architecture\":\"%s\",\"os\":\"linux\",\"created\":\"2024-05-01T10:00:00Z\","
            "\"config\":{\"Cmd\":[\"/bin/sh\"]},\"rootfs\":{\"type\":\"layers\","
            "\"diff_ids\":[\"%s\"]}}",
            arch, ld);
    assert_int_equal(oci_store_blob_put(s, config, strlen(config), NULL, cd, &err), 0);
    _cleanup_free_ char *manifest = xasprintf(
            "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_MANIFEST "\",\"config\":{"
            "\"mediaType\":\"" OCI_MT_CONFIG "\",\"digest\":\"%s\",\"size\":%zu},\"layers\":[{"
            "\"mediaType\":\"" OCI_MT_LAYER_TAR "\",\"digest\":\"%s\",\"size\":%zu}]}",
            cd, strlen(config), ld, strlen(layer));
    if (oci_store_put_manifest(s, manifest, strlen(manifest), NULL, ret, &err) < 0)
        fail_msg("put_manifest: %s", err->msg);
}

static size_t count_temp_files(struct oci_store *s)
{
    _cleanup_free_ char *dir = dlc_path_join(oci_store_layout_dir(s), "blobs/sha256");
    _cleanup_dir_ DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += dlc_startswith(de->d_name, ".tmp-") != NULL;
    return n;
}

static void test_store__open_creates_layout(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    assert_string_equal(oci_store_root(f->s), f->dir);
    _cleanup_free_ char *want_layout = dlc_path_join(f->dir, "images");
    assert_string_equal(oci_store_layout_dir(f->s), want_layout);
    _cleanup_free_ char *hdr = dlc_path_join(want_layout, "oci-layout");
    _cleanup_free_ char *buf = NULL;
    assert_int_equal(dlc_read_file(hdr, 4096, &buf, NULL, &err), 0);
    assert_string_equal(buf, "{\"imageLayoutVersion\":\"1.0.0\"}");
    _cleanup_free_ char *ixp = dlc_path_join(want_layout, "index.json");
    _cleanup_free_ char *ix = NULL;
    assert_int_equal(dlc_read_file(ixp, 4096, &ix, NULL, &err), 0);
    assert_string_equal(ix, "{\"manifests\":[],\"mediaType\":\"" OCI_MT_INDEX
                            "\",\"schemaVersion\":2}");
    struct oci_store *again = NULL;
    assert_int_equal(oci_store_open(f->dir, &again, &err), 0);
    oci_store_free(again);
}

static void test_store__open_rejects_bad_layout(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    struct oci_store *s = NULL;
    _cleanup_free_ char *ixp = dlc_path_join(oci_store_layout_dir(f->s), "index.json");
    assert_int_equal(dlc_write_file_atomic(ixp, "{\"schemaVersion\":2,", 19, 0644, &err), 0);
    _cleanup_free_ char *want = xasprintf("%s:1:", ixp);
    assert_dlc_error(oci_store_open(f->dir, &s, &err), &err, EINVAL, want);
    assert_int_equal(dlc_write_file_atomic(ixp, "{\"schemaVersion\":2}", 19, 0644, &err), 0);
    _cleanup_free_ char *want2 = xasprintf("%s: index: missing required 'manifests'", ixp);
    assert_dlc_error(oci_store_open(f->dir, &s, &err), &err, EINVAL, want2);

    _cleanup_free_ char *hdr = dlc_path_join(oci_store_layout_dir(f->s), "oci-layout");
    const char *v2 = "{\"imageLayoutVersion\":\"2.0.0\"}";
    assert_int_equal(dlc_write_file_atomic(hdr, v2, strlen(v2), 0644, &err), 0);
    _cleanup_free_ char *want3 = xasprintf("%s: imageLayoutVersion is '2.0.0', want '1.0.0'", hdr);
    assert_dlc_error(oci_store_open(f->dir, &s, &err), &err, EINVAL, want3);
}

static void test_store__blob_put_get(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    char d[OCI_DIGEST_BUFSZ], want[OCI_DIGEST_BUFSZ];
    oci_digest_buf("hello", 5, want);
    assert_false(oci_store_blob_exists(f->s, want));
    assert_int_equal(oci_store_blob_put(f->s, "hello", 5, want, d, &err), 0);
    assert_string_equal(d, want);
    assert_true(oci_store_blob_exists(f->s, d));
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    assert_int_equal(oci_store_blob_read(f->s, d, 100, &buf, &len, &err), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "hello", 5);
    uint64_t size = 0;
    assert_int_equal(oci_store_blob_size(f->s, d, &size, &err), 0);
    assert_int_equal(size, 5);
    assert_int_equal(oci_store_blob_verify(f->s, d, &err), 0);
    _cleanup_free_ char *path = oci_store_blob_path(f->s, d);
    _cleanup_free_ char *want_path =
            xasprintf("%s/images/blobs/sha256/%s", f->dir, oci_digest_hex(d));
    assert_string_equal(path, want_path);
    assert_null(oci_store_blob_path(f->s, "sha256:../../x"));
    /* again: kept, not rewritten */
    assert_int_equal(oci_store_blob_put(f->s, "hello", 5, NULL, d, &err), 0);
    char *b2 = NULL;
    assert_dlc_error(oci_store_blob_read(f->s, d, 4, &b2, &len, &err), &err, EFBIG,
                     "more than the 4 allowed");
    char other[OCI_DIGEST_BUFSZ];
    oci_digest_buf("other", 5, other);
    _cleanup_free_ char *m = xasprintf("blob %s is not in the store", other);
    assert_dlc_error(oci_store_blob_read(f->s, other, 100, &b2, &len, &err), &err, ENOENT, m);
    assert_dlc_error(oci_store_blob_put(f->s, "x", 1, "sha256:nope", d, &err), &err, EINVAL,
                     "digest 'sha256:nope'");
}

static void test_store__blob_put_mismatch_stores_nothing(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    char want[OCI_DIGEST_BUFSZ], d[OCI_DIGEST_BUFSZ];
    oci_digest_buf("expected", 8, want);
    assert_dlc_error(oci_store_blob_put(f->s, "actual", 6, want, d, &err), &err, EBADMSG,
                     "blob content hashes to sha256:");
    assert_false(oci_store_blob_exists(f->s, want));

    /* streaming: the digest is checked at commit */
    struct oci_blob_writer *w = NULL;
    assert_int_equal(oci_store_blob_writer_new(f->s, want, -1, &w, &err), 0);
    assert_int_equal(oci_blob_writer_write(w, "act", 3, &err), 0);
    assert_int_equal(oci_blob_writer_write(w, "ual", 3, &err), 0);
    _cleanup_free_ char *m = xasprintf(", expected %s", want);
    assert_dlc_error(oci_blob_writer_commit(w, d, NULL, &err), &err, EBADMSG, m);
    assert_false(oci_store_blob_exists(f->s, want));
    oci_digest_buf("actual", 6, d);
    assert_false(oci_store_blob_exists(f->s, d));

    /* size: too much fails at write, too little at commit */
    assert_int_equal(oci_store_blob_writer_new(f->s, NULL, 4, &w, &err), 0);
    assert_dlc_error(oci_blob_writer_write(w, "12345", 5, &err), &err, EBADMSG,
                     "larger than the expected 4 bytes");
    assert_dlc_error(oci_blob_writer_commit(w, d, NULL, &err), &err, EIO, "earlier write failed");
    assert_int_equal(oci_store_blob_writer_new(f->s, NULL, 4, &w, &err), 0);
    assert_int_equal(oci_blob_writer_write(w, "123", 3, &err), 0);
    assert_dlc_error(oci_blob_writer_commit(w, d, NULL, &err), &err, EBADMSG,
                     "has 3 bytes, expected 4");
    oci_digest_buf("123", 3, d);
    assert_false(oci_store_blob_exists(f->s, d));
    assert_int_equal(count_temp_files(f->s), 0);

    /* the happy path of the streaming writer */
    assert_int_equal(oci_store_blob_writer_new(f->s, NULL, 4, &w, &err), 0);
    assert_int_equal(oci_blob_writer_write(w, "12", 2, &err), 0);
    assert_int_equal(oci_blob_writer_write(w, "34", 2, &err), 0);
    uint64_t size = 0;
    assert_int_equal(oci_blob_writer_commit(w, d, &size, &err), 0);
    assert_int_equal(size, 4);
    assert_true(oci_store_blob_exists(f->s, d));
    assert_int_equal(count_temp_files(f->s), 0);
}

static void test_store__corrupted_blob_detected(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    char d[OCI_DIGEST_BUFSZ];
    assert_int_equal(oci_store_blob_put(f->s, "good content", 12, NULL, d, &err), 0);
    _cleanup_free_ char *path = oci_store_blob_path(f->s, d);
    _cleanup_close_ int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "B", 1, 0), 1); /* one flipped byte, same size */
    char *buf = NULL;
    size_t len = 0;
    _cleanup_free_ char *want = xasprintf("blob %s is corrupt: content hashes to sha256:", d);
    assert_dlc_error(oci_store_blob_read(f->s, d, 100, &buf, &len, &err), &err, EBADMSG, want);
    assert_dlc_error(oci_store_blob_verify(f->s, d, &err), &err, EBADMSG, want);
}

/* A writer that dies after writing everything but before the rename (kill -9): nothing is
 * visible under the digest name, and gc later removes the orphaned temp file. */
static void test_store__interrupted_write_leaves_no_blob(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    const char *data = "content of a blob whose writer crashed";
    char d[OCI_DIGEST_BUFSZ];
    oci_digest_buf(data, strlen(data), d);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct oci_blob_writer *w = NULL;
        if (oci_store_blob_writer_new(f->s, d, (int64_t)strlen(data), &w, NULL) < 0 ||
            oci_blob_writer_write(w, data, strlen(data), NULL) < 0)
            _exit(1);
        raise(SIGKILL); /* between write and commit's rename */
        _exit(2);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_false(oci_store_blob_exists(f->s, d));
    _cleanup_free_ char *path = oci_store_blob_path(f->s, d);
    assert_false(dlc_path_exists(path));
    assert_int_equal(count_temp_files(f->s), 1);

    /* a live writer's temp file survives gc; the dead one's does not */
    struct oci_blob_writer *live = NULL;
    assert_int_equal(oci_store_blob_writer_new(f->s, NULL, -1, &live, &err), 0);
    assert_int_equal(oci_blob_writer_write(live, "xy", 2, &err), 0);
    size_t blobs = 99;
    uint64_t bytes = 0;
    assert_int_equal(oci_store_gc(f->s, &blobs, &bytes, &err), 0);
    assert_int_equal(blobs, 0);
    assert_int_equal(bytes, strlen(data));
    assert_int_equal(count_temp_files(f->s), 1);
    char ld[OCI_DIGEST_BUFSZ];
    assert_int_equal(oci_blob_writer_commit(live, ld, NULL, &err), 0);
    assert_int_equal(count_temp_files(f->s), 0);
}

/* The rename itself fails (a directory squats the digest name): the error is reported, no
 * blob appears and the temp file is gone. */
static void test_store__failed_rename_leaves_no_blob(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    char d[OCI_DIGEST_BUFSZ];
    oci_digest_buf("squatted", 8, d);
    _cleanup_free_ char *path = oci_store_blob_path(f->s, d);
    _cleanup_free_ char *inner = dlc_path_join(path, "x");
    assert_int_equal(dlc_mkdir_p(inner, 0755, &err), 0);
    _cleanup_free_ char *want = xasprintf("store blob %s", d);
    assert_dlc_error(oci_store_blob_put(f->s, "squatted", 8, NULL, NULL, &err), &err, EISDIR, want);
    assert_false(oci_store_blob_exists(f->s, d));
    assert_int_equal(count_temp_files(f->s), 0);
}

static void test_store__tag_resolve_untag(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    struct oci_descriptor m = {0}, r = {0};
    make_image(f->s, "layer-a", oci_host_arch(), &m);
    assert_string_equal(m.media_type, OCI_MT_MANIFEST);
    assert_int_equal(oci_store_tag(f->s, "app:1", &m, &err), 0);
    assert_int_equal(oci_store_tag(f->s, "app", &m, &err), 0);
    assert_int_equal(oci_store_tag(f->s, "localhost:5000/team/app:x", &m, &err), 0);

    const char *refs[] = {"app:1", "app", "app:latest", "localhost:5000/team/app:x", m.digest};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(refs); i++) {
        if (oci_store_resolve(f->s, refs[i], &r, &err) < 0)
            fail_msg("%s: %s", refs[i], err->msg);
        assert_string_equal(r.digest, m.digest);
        assert_int_equal(r.size, m.size);
        oci_descriptor_release(&r);
    }
    _cleanup_free_ char *by_digest = xasprintf("app@%s", m.digest);
    assert_int_equal(oci_store_resolve(f->s, by_digest, &r, &err), 0);
    oci_descriptor_release(&r);
    char prefix[13];
    snprintf(prefix, sizeof(prefix), "%.12s", oci_digest_hex(m.digest));
    assert_int_equal(oci_store_resolve(f->s, prefix, &r, &err), 0);
    assert_string_equal(r.digest, m.digest);
    oci_descriptor_release(&r);
    prefix[4] = '\0';
    assert_int_equal(oci_store_resolve(f->s, prefix, &r, &err), 0);
    oci_descriptor_release(&r);

    struct oci_store_entry *e = NULL;
    size_t n = 0;
    assert_int_equal(oci_store_list(f->s, &e, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(e[0].ref_name, "app:1");
    assert_string_equal(e[1].ref_name, "app:latest");
    assert_string_equal(e[2].ref_name, "localhost:5000/team/app:x");
    oci_store_entries_free(e, n);

    /* retagging replaces the entry */
    struct oci_descriptor m2 = {0};
    make_image(f->s, "layer-b", oci_host_arch(), &m2);
    assert_int_equal(oci_store_tag(f->s, "app:1", &m2, &err), 0);
    assert_int_equal(oci_store_resolve(f->s, "app:1", &r, &err), 0);
    assert_string_equal(r.digest, m2.digest);
    assert_string_equal(oci_map_get(&r.annotations, OCI_ANNOTATION_REF_NAME), "app:1");
    oci_descriptor_release(&r);

    assert_int_equal(oci_store_untag(f->s, "app:1", &err), 0);
    assert_dlc_error(oci_store_resolve(f->s, "app:1", &r, &err), &err, ENOENT,
                     "image 'app:1' not found");
    assert_dlc_error(oci_store_untag(f->s, "app:1", &err), &err, ENOENT, "image 'app:1' not found");
    assert_dlc_error(oci_store_resolve(f->s, "nope", &r, &err), &err, ENOENT,
                     "image 'nope:latest' not found");
    assert_dlc_error(oci_store_resolve(f->s, "Bad:x", &r, &err), &err, EINVAL,
                     "invalid reference 'Bad:x': repository name must be lowercase");
    assert_dlc_error(oci_store_tag(f->s, "Bad:x", &m, &err), &err, EINVAL,
                     "repository name must be lowercase");
    assert_dlc_error(oci_store_tag(f->s, by_digest, &m, &err), &err, EINVAL,
                     "a tag cannot contain a digest");
    /* a manifest blob no tag names still resolves by digest */
    assert_int_equal(oci_store_resolve(f->s, m2.digest, &r, &err), 0);
    assert_string_equal(r.media_type, OCI_MT_MANIFEST);
    assert_int_equal(r.size, m2.size);
    oci_descriptor_release(&r);

    struct oci_descriptor ghost = {0};
    oci_descriptor_copy(&ghost, &m);
    oci_digest_buf("not stored", 10, ghost.digest);
    assert_dlc_error(oci_store_tag(f->s, "g:1", &ghost, &err), &err, ENOENT, "is not in the store");
    _cleanup_free_ char *gm = xasprintf("image '%s' not found", ghost.digest);
    assert_dlc_error(oci_store_resolve(f->s, ghost.digest, &r, &err), &err, ENOENT, gm);

    char **names = NULL;
    assert_int_equal(oci_store_untag_digest(f->s, m.digest, &names, &err), 0);
    assert_int_equal(dlc_strv_len(names), 2);
    assert_string_equal(names[0], "app:latest");
    dlc_strv_free(names);
    assert_int_equal(oci_store_list(f->s, &e, &n, &err), 0);
    assert_int_equal(n, 0);
    oci_store_entries_free(e, n);
    assert_dlc_error(oci_store_untag_digest(f->s, m.digest, NULL, &err), &err, ENOENT, "not found");
    oci_descriptor_release(&ghost);
    oci_descriptor_release(&m);
    oci_descriptor_release(&m2);
}

/* index.json written by hand: names other tools use as they are, and an ambiguous prefix. */
static void test_store__resolve_foreign_names_and_prefixes(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    const char *ix = "{\"schemaVersion\":2,\"manifests\":["
                     "{\"mediaType\":\"" OCI_MT_MANIFEST "\",\"size\":1,\"digest\":\"sha256:"
                     "abcd111111111111111111111111111111111111111111111111111111111111\","
                     "\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"}},"
                     "{\"mediaType\":\"" OCI_MT_MANIFEST "\",\"size\":1,\"digest\":\"sha256:"
                     "abcd222222222222222222222222222222222222222222222222222222222222\"}]}";
    _cleanup_free_ char *p = dlc_path_join(oci_store_layout_dir(f->s), "index.json");
    assert_int_equal(dlc_write_file_atomic(p, ix, strlen(ix), 0644, &err), 0);
    struct oci_descriptor r = {0};
    assert_int_equal(oci_store_resolve(f->s, "v1", &r, &err), 0);
    assert_true(dlc_startswith(r.digest, "sha256:abcd1") != NULL);
    oci_descriptor_release(&r);
    assert_dlc_error(oci_store_resolve(f->s, "abcd", &r, &err), &err, EINVAL,
                     "image ID prefix 'abcd' is ambiguous: it matches 2 images");
    assert_int_equal(oci_store_resolve(f->s, "abcd2", &r, &err), 0);
    oci_descriptor_release(&r);
    assert_dlc_error(oci_store_resolve(f->s, "abc", &r, &err), &err, ENOENT,
                     "image 'abc:latest' not found");
    assert_int_equal(oci_store_untag(f->s, "v1", &err), 0);
}

/* Two processes tag 50 names each at once; the lock + re-read means none is lost. */
static void test_store__concurrent_tags(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    struct oci_descriptor m = {0};
    make_image(f->s, "layer-c", oci_host_arch(), &m);
    pid_t pids[2];
    for (int p = 0; p < 2; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] > 0)
            continue;
        struct oci_store *s = NULL;
        if (oci_store_open(f->dir, &s, NULL) < 0)
            _exit(1);
        for (int i = 0; i < 50; i++) {
            char name[32];
            snprintf(name, sizeof(name), "proc%d:tag%d", p, i);
            if (oci_store_tag(s, name, &m, NULL) < 0)
                _exit(2);
        }
        _exit(0);
    }
    for (int p = 0; p < 2; p++) {
        int status = 0;
        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    struct oci_store_entry *e = NULL;
    size_t n = 0;
    assert_int_equal(oci_store_list(f->s, &e, &n, &err), 0);
    assert_int_equal(n, 100);
    for (int p = 0; p < 2; p++) {
        for (int i = 0; i < 50; i++) {
            char name[32];
            snprintf(name, sizeof(name), "proc%d:tag%d", p, i);
            bool found = false;
            for (size_t k = 0; k < n && !found; k++)
                found = dlc_streq(e[k].ref_name, name);
            if (!found)
                fail_msg("%s was lost", name);
        }
    }
    oci_store_entries_free(e, n);
    oci_descriptor_release(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_store__open_creates_layout, setup, teardown),
            cmocka_unit_test_setup_teardown(test_store__open_rejects_bad_layout, setup, teardown),
            cmocka_unit_test_setup_teardown(test_store__blob_put_get, setup, teardown),
            cmocka_unit_test_setup_teardown(test_store__blob_put_mismatch_stores_nothing, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_store__corrupted_blob_detected, setup, teardown),
            cmocka_unit_test_setup_teardown(test_store__interrupted_write_leaves_no_blob, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_store__failed_rename_leaves_no_blob, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_store__tag_resolve_untag, setup, teardown),
            cmocka_unit_test_setup_teardown(test_store__resolve_foreign_names_and_prefixes, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_store__concurrent_tags, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
