#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>

#include "oci-unit.h"

static void put(struct oci_store *s, const char *data, char d[OCI_DIGEST_BUFSZ])
{
    struct dlc_error *err = NULL;
    if (oci_store_blob_put(s, data, strlen(data), NULL, d, &err) < 0)
        fail_msg("put: %s", err->msg);
}

/* An image with the given layers (uncompressed tar type: diff_id = digest) and n_diff_ids
 * diff_ids in its config (normally n_layers). */
static void make_image_n(struct oci_store *s, const char *const *layers, size_t n_layers,
                         size_t n_diff_ids, const char *arch, struct oci_descriptor *ret,
                         char config_digest[OCI_DIGEST_BUFSZ])
{
    struct dlc_error *err = NULL;
    struct dlc_strbuf ids = DLC_STRBUF_INIT, descs = DLC_STRBUF_INIT;
    for (size_t i = 0; i < n_layers; i++) {
        char d[OCI_DIGEST_BUFSZ];
        put(s, layers[i], d);
        if (i < n_diff_ids)
            dlc_strbuf_appendf(&ids, "%s\"%s\"", i ? "," : "", d);
        dlc_strbuf_appendf(
                &descs, "%s{\"mediaType\":\"" OCI_MT_LAYER_TAR "\",\"digest\":\"%s\",\"size\":%zu}",
                i ? "," : "", d, strlen(layers[i]));
    }
    _cleanup_free_ char *config = xasprintf(
            "{\"architecture\":\"%s\",\"os\":\"linux\",\"config\":{\"Entrypoint\":[\"/bin/x\"]},"
            "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[%s]}}",
            arch, dlc_strbuf_str(&ids));
    char cd[OCI_DIGEST_BUFSZ];
    put(s, config, cd);
    _cleanup_free_ char *manifest =
            xasprintf("{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_MANIFEST "\",\"config\":{"
                      "\"mediaType\":\"" OCI_MT_CONFIG "\",\"digest\":\"%s\",\"size\":%zu},"
                      "\"layers\":[%s]}",
                      cd, strlen(config), dlc_strbuf_str(&descs));
    if (oci_store_put_manifest(s, manifest, strlen(manifest), NULL, ret, &err) < 0)
        fail_msg("put_manifest: %s", err->msg);
    if (config_digest)
        memcpy(config_digest, cd, OCI_DIGEST_BUFSZ);
    dlc_strbuf_release(&ids);
    dlc_strbuf_release(&descs);
}

static void make_image(struct oci_store *s, const char *layer, const char *arch,
                       struct oci_descriptor *ret, char config_digest[OCI_DIGEST_BUFSZ])
{
    make_image_n(s, &layer, 1, 1, arch, ret, config_digest);
}

static void test_image__load_verified(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    struct oci_descriptor m = {0};
    char cd[OCI_DIGEST_BUFSZ];
    make_image(f->s, "layer", oci_host_arch(), &m, cd);
    assert_int_equal(oci_store_tag(f->s, "img:1", &m, &err), 0);
    _cleanup_(oci_image_freep) struct oci_image *img = NULL;
    if (oci_store_load_image(f->s, "img:1", &img, &err) < 0)
        fail_msg("%s", err->msg);
    assert_string_equal(img->desc.digest, m.digest);
    assert_string_equal(img->manifest->config.digest, cd);
    assert_string_equal(img->config->config.entrypoint[0], "/bin/x");
    char d[OCI_DIGEST_BUFSZ];
    oci_digest_buf(img->manifest_raw, img->manifest_len, d);
    assert_string_equal(d, m.digest);
    oci_digest_buf(img->config_raw, img->config_len, d);
    assert_string_equal(d, cd);

    /* corrupt the config: loading fails naming it */
    _cleanup_free_ char *path = oci_store_blob_path(f->s, cd);
    _cleanup_close_ int fd = open(path, O_WRONLY);
    assert_int_equal(pwrite(fd, "[", 1, 0), 1);
    struct oci_image *bad = NULL;
    _cleanup_free_ char *want = xasprintf("image 'img:1': blob %s is corrupt", cd);
    assert_dlc_error(oci_store_load_image(f->s, "img:1", &bad, &err), &err, EBADMSG, want);
    assert_dlc_error(oci_store_load_image(f->s, "img:2", &bad, &err), &err, ENOENT,
                     "image 'img:2' not found");
    oci_descriptor_release(&m);
}

static void test_image__diff_ids_must_match_layers(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    struct oci_descriptor m = {0};
    const char *layers[] = {"l1", "l2"};
    make_image_n(f->s, layers, 2, 1, oci_host_arch(), &m, NULL);
    assert_int_equal(oci_store_tag(f->s, "img:1", &m, &err), 0);
    struct oci_image *img = NULL;
    assert_dlc_error(oci_store_load_image(f->s, "img:1", &img, &err), &err, EINVAL,
                     "has 1 diff_ids but manifest");
    oci_descriptor_release(&m);
}

/* An index (as skopeo may store) resolves to the linux/<host arch> manifest. */
static void test_image__index_picks_host_platform(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    struct oci_descriptor host = {0}, other = {0}, ixd = {0};
    const char *other_arch = strcmp(oci_host_arch(), "arm64") == 0 ? "amd64" : "arm64";
    make_image(f->s, "host layer", oci_host_arch(), &host, NULL);
    make_image(f->s, "other layer", other_arch, &other, NULL);
    _cleanup_free_ char *ix = xasprintf(
            "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_INDEX "\",\"manifests\":["
            "{\"mediaType\":\"" OCI_MT_MANIFEST "\",\"digest\":\"%s\",\"size\":%" PRId64 ","
            "\"platform\":{\"architecture\":\"%s\",\"os\":\"linux\"}},"
            "{\"mediaType\":\"" OCI_MT_MANIFEST "\",\"digest\":\"%s\",\"size\":%" PRId64 ","
            "\"platform\":{\"architecture\":\"%s\",\"os\":\"linux\"}}]}",
            other.digest, other.size, other_arch, host.digest, host.size, oci_host_arch());
    assert_int_equal(oci_store_put_manifest(f->s, ix, strlen(ix), OCI_MT_INDEX, &ixd, &err), 0);
    assert_string_equal(ixd.media_type, OCI_MT_INDEX);
    assert_int_equal(oci_store_tag(f->s, "multi:1", &ixd, &err), 0);
    _cleanup_(oci_image_freep) struct oci_image *img = NULL;
    if (oci_store_load_image(f->s, "multi:1", &img, &err) < 0)
        fail_msg("%s", err->msg);
    assert_string_equal(img->desc.digest, host.digest);
    assert_string_equal(img->config->architecture, oci_host_arch());

    /* an index without the host platform */
    _cleanup_free_ char *ix2 = xasprintf(
            "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" OCI_MT_MANIFEST
            "\",\"digest\":\"%s\",\"size\":%" PRId64 ",\"platform\":{\"architecture\":\"%s\","
            "\"os\":\"linux\"}},{\"mediaType\":\"" OCI_MT_MANIFEST "\",\"digest\":\"%s\","
            "\"size\":%" PRId64 ",\"platform\":{\"architecture\":\"%s\",\"os\":\"windows\"}}]}",
            other.digest, other.size, other_arch, host.digest, host.size, oci_host_arch());
    struct oci_descriptor ixd2 = {0};
    assert_int_equal(oci_store_put_manifest(f->s, ix2, strlen(ix2), OCI_MT_INDEX, &ixd2, &err), 0);
    assert_int_equal(oci_store_tag(f->s, "multi:2", &ixd2, &err), 0);
    struct oci_image *none = NULL;
    _cleanup_free_ char *want = xasprintf("has no manifest for linux/%s", oci_host_arch());
    assert_dlc_error(oci_store_load_image(f->s, "multi:2", &none, &err), &err, ENOENT, want);
    oci_descriptor_release(&host);
    oci_descriptor_release(&other);
    oci_descriptor_release(&ixd);
    oci_descriptor_release(&ixd2);
}

static void test_image__put_manifest_checks(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    char cd[OCI_DIGEST_BUFSZ], missing[OCI_DIGEST_BUFSZ];
    const char *config = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":"
                         "\"layers\",\"diff_ids\":[]}}";
    put(f->s, config, cd);
    oci_digest_buf("never stored", 12, missing);
    _cleanup_free_ char *mf = xasprintf(
            "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" OCI_MT_CONFIG "\",\"digest\":"
            "\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":\"" OCI_MT_LAYER_GZIP "\","
            "\"digest\":\"%s\",\"size\":5}]}",
            cd, strlen(config), missing);
    struct oci_descriptor d = {0};
    _cleanup_free_ char *want = xasprintf("manifest: layer %s is not in the store", missing);
    assert_dlc_error(oci_store_put_manifest(f->s, mf, strlen(mf), NULL, &d, &err), &err, ENOENT,
                     want);
    assert_dlc_error(oci_store_put_manifest(f->s, "{}", 2, NULL, &d, &err), &err, EINVAL,
                     "missing required");
    assert_dlc_error(oci_store_put_manifest(f->s, "{}", 2, "text/plain", &d, &err), &err, EINVAL,
                     "'text/plain' is not an image manifest or index type");
    _cleanup_free_ char *docker =
            xasprintf("{\"schemaVersion\":2,\"mediaType\":\"" DOCKER_MT_MANIFEST "\",\"config\":{"
                      "\"mediaType\":\"" DOCKER_MT_CONFIG "\",\"digest\":\"%s\",\"size\":%zu},"
                      "\"layers\":[]}",
                      cd, strlen(config));
    assert_dlc_error(oci_store_put_manifest(f->s, docker, strlen(docker), NULL, &d, &err), &err,
                     EINVAL, "does not match");
    assert_int_equal(
            oci_store_put_manifest(f->s, docker, strlen(docker), DOCKER_MT_MANIFEST, &d, &err), 0);
    assert_int_equal(oci_store_tag(f->s, "docker:1", &d, &err), 0);
    _cleanup_(oci_image_freep) struct oci_image *img = NULL;
    if (oci_store_load_image(f->s, "docker:1", &img, &err) < 0)
        fail_msg("%s", err->msg);
    assert_int_equal(img->manifest->n_layers, 0);
    oci_descriptor_release(&d);
}

static size_t count_blobs(struct oci_store *s)
{
    _cleanup_free_ char *dir = dlc_path_join(oci_store_layout_dir(s), "blobs/sha256");
    _cleanup_dir_ DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    return n;
}

static void test_image__gc(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    struct oci_descriptor a = {0}, b = {0}, ixd = {0}, art = {0};
    const char *la[] = {"shared base", "only in a"};
    const char *lb[] = {"shared base", "only in b"};
    make_image_n(f->s, la, 2, 2, oci_host_arch(), &a, NULL);
    make_image_n(f->s, lb, 2, 2, oci_host_arch(), &b, NULL);
    assert_int_equal(oci_store_tag(f->s, "a:1", &a, &err), 0);
    /* b is reachable only through an index */
    _cleanup_free_ char *ix =
            xasprintf("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" OCI_MT_MANIFEST "\","
                      "\"digest\":\"%s\",\"size\":%" PRId64 "}]}",
                      b.digest, b.size);
    assert_int_equal(oci_store_put_manifest(f->s, ix, strlen(ix), OCI_MT_INDEX, &ixd, &err), 0);
    assert_int_equal(oci_store_tag(f->s, "b:1", &ixd, &err), 0);
    /* an artifact whose subject is a: a's blobs stay reachable through it too */
    char empty[OCI_DIGEST_BUFSZ], orphan[OCI_DIGEST_BUFSZ];
    put(f->s, "{}", empty);
    _cleanup_free_ char *am = xasprintf(
            "{\"schemaVersion\":2,\"artifactType\":\"application/vnd.example+json\",\"config\":{"
            "\"mediaType\":\"" OCI_MT_EMPTY "\",\"digest\":\"%s\",\"size\":2},\"layers\":[],"
            "\"subject\":{\"mediaType\":\"" OCI_MT_MANIFEST "\",\"digest\":\"%s\",\"size\":%" PRId64
            "}}",
            empty, a.digest, a.size);
    assert_int_equal(oci_store_put_manifest(f->s, am, strlen(am), NULL, &art, &err), 0);
    assert_int_equal(oci_store_tag(f->s, "sig:1", &art, &err), 0);
    put(f->s, "nobody points here", orphan);
    /* a: manifest, config, 2 layers; b: manifest, config, 1 own layer; index; artifact +
     * empty config; orphan */
    assert_int_equal(count_blobs(f->s), 4 + 3 + 1 + 2 + 1);

    size_t n = 99;
    uint64_t bytes = 99;
    assert_int_equal(oci_store_gc(f->s, &n, &bytes, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(bytes, strlen("nobody points here"));
    assert_false(oci_store_blob_exists(f->s, orphan));

    assert_int_equal(oci_store_untag(f->s, "a:1", &err), 0);
    assert_int_equal(oci_store_gc(f->s, &n, &bytes, &err), 0);
    assert_int_equal(n, 0); /* sig:1 still reaches a through its subject */
    assert_int_equal(oci_store_untag(f->s, "sig:1", &err), 0);
    assert_int_equal(oci_store_gc(f->s, &n, &bytes, &err), 0);
    /* artifact manifest, empty config, a's manifest, config and own layer */
    assert_int_equal(n, 5);
    assert_true(oci_store_blob_exists(f->s, b.digest));
    _cleanup_(oci_image_freep) struct oci_image *img = NULL;
    if (oci_store_load_image(f->s, "b:1", &img, &err) < 0)
        fail_msg("%s", err->msg);
    for (size_t i = 0; i < img->manifest->n_layers; i++)
        assert_int_equal(oci_store_blob_verify(f->s, img->manifest->layers[i].digest, &err), 0);
    assert_int_equal(count_blobs(f->s), 5);

    /* a corrupt reachable manifest stops gc instead of deleting on a guess */
    _cleanup_free_ char *path = oci_store_blob_path(f->s, ixd.digest);
    _cleanup_close_ int fd = open(path, O_WRONLY);
    assert_int_equal(pwrite(fd, "X", 1, 0), 1);
    assert_dlc_error(oci_store_gc(f->s, &n, &bytes, &err), &err, EBADMSG, "gc: image 'b:1'");
    assert_int_equal(count_blobs(f->s), 5);
    oci_descriptor_release(&a);
    oci_descriptor_release(&b);
    oci_descriptor_release(&ixd);
    oci_descriptor_release(&art);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_image__load_verified, setup, teardown),
            cmocka_unit_test_setup_teardown(test_image__diff_ids_must_match_layers, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_image__index_picks_host_platform, setup, teardown),
            cmocka_unit_test_setup_teardown(test_image__put_manifest_checks, setup, teardown),
            cmocka_unit_test_setup_teardown(test_image__gc, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
