#include <errno.h>
#include <string.h>

#include "unit.h"
#include "oci.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

/* Canonical (compact, sorted) documents: parse + to_json must give the same bytes back. */
static const char manifest_json[] =
        "{\"annotations\":{\"a\":\"1\",\"org.opencontainers.image.created\":\"2024-01-01T00:00:"
        "00Z\"},"
        "\"config\":{\"digest\":\"" D1 "\",\"mediaType\":\"" OCI_MT_CONFIG "\",\"size\":7},"
        "\"layers\":[{\"annotations\":{\"k\":\"v\"},\"digest\":\"" D2
        "\",\"mediaType\":\"" OCI_MT_LAYER_GZIP "\",\"size\":100},"
        "{\"digest\":\"" D3 "\",\"mediaType\":\"" OCI_MT_LAYER_ZSTD
        "\",\"size\":0,\"urls\":[\"https://example.com/x\"]}],"
        "\"mediaType\":\"" OCI_MT_MANIFEST "\",\"schemaVersion\":2,"
        "\"subject\":{\"digest\":\"" D3 "\",\"mediaType\":\"" OCI_MT_MANIFEST "\",\"size\":9}}";

static const char index_json[] =
        "{\"manifests\":[{\"digest\":\"" D1 "\",\"mediaType\":\"" OCI_MT_MANIFEST
        "\",\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"},"
        "\"size\":500},{\"annotations\":{\"org.opencontainers.image.ref.name\":\"a:b\"},"
        "\"artifactType\":\"application/vnd.example+json\",\"digest\":\"" D2
        "\",\"mediaType\":\"" OCI_MT_MANIFEST "\",\"size\":1}],"
        "\"mediaType\":\"" OCI_MT_INDEX "\",\"schemaVersion\":2}";

static const char config_json[] =
        "{\"architecture\":\"amd64\",\"author\":\"dlc\",\"config\":{\"Cmd\":[\"train\"],"
        "\"Entrypoint\":[\"/usr/bin/tensor\"],\"Env\":[\"PATH=/bin\",\"A=\"],"
        "\"ExposedPorts\":{\"8080/tcp\":{}},\"Labels\":{\"com.example.x\":\"y\"},"
        "\"StopSignal\":\"SIGTERM\",\"User\":\"1000:1000\",\"Volumes\":{\"/opt/ml\":{}},"
        "\"WorkingDir\":\"/opt/ml/code\"},\"created\":\"1970-01-01T00:00:00Z\","
        "\"history\":[{\"created\":\"1970-01-01T00:00:00Z\",\"created_by\":\"dlc build\"},"
        "{\"comment\":\"c\",\"created\":\"1970-01-01T00:00:00Z\",\"empty_layer\":true}],"
        "\"os\":\"linux\",\"rootfs\":{\"diff_ids\":[\"" D1 "\"],\"type\":\"layers\"},"
        "\"variant\":\"v8\"}";

static void test_documents__manifest_round_trip(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    _cleanup_(oci_manifest_freep) struct oci_manifest *m = NULL;
    assert_int_equal(oci_manifest_parse(manifest_json, strlen(manifest_json), "m", &m, &err), 0);
    assert_int_equal(oci_manifest_validate(m, &err), 0);
    assert_int_equal(m->n_layers, 2);
    assert_string_equal(m->layers[1].urls[0], "https://example.com/x");
    assert_string_equal(oci_map_get(&m->layers[0].annotations, "k"), "v");
    assert_int_equal(m->config.size, 7);
    assert_non_null(m->subject);
    json_auto_t *j = oci_manifest_to_json(m);
    _cleanup_free_ char *out = dlc_json_dumps(j, NULL);
    assert_string_equal(out, manifest_json);
}

static void test_documents__manifest_unknown_fields_and_docker(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    const char *in = "{\"schemaVersion\":2,\"mediaType\":\"" DOCKER_MT_MANIFEST "\","
                     "\"newUnspecifiedField\":[1,2],"
                     "\"config\":{\"mediaType\":\"" DOCKER_MT_CONFIG
                     "\",\"size\":2,\"digest\":\"" D1 "\",\"data\":\"e30=\"},"
                     "\"layers\":[{\"mediaType\":\"" DOCKER_MT_LAYER_GZIP "\",\"size\":3,"
                     "\"digest\":\"" D2 "\"}]}";
    _cleanup_(oci_manifest_freep) struct oci_manifest *m = NULL;
    assert_int_equal(oci_manifest_parse(in, strlen(in), "m", &m, &err), 0);
    assert_int_equal(oci_manifest_validate(m, &err), 0);
    assert_string_equal(m->media_type, DOCKER_MT_MANIFEST);
    json_auto_t *j = oci_manifest_to_json(m);
    assert_null(json_object_get(j, "newUnspecifiedField"));
    assert_null(json_object_get(json_object_get(j, "config"), "data"));
    assert_true(oci_media_type_is_manifest(DOCKER_MT_MANIFEST));
    assert_string_equal(oci_media_type_layer_compression(DOCKER_MT_LAYER_GZIP), "gzip");
    assert_string_equal(oci_media_type_layer_compression(OCI_MT_LAYER_ZSTD), "zstd");
    assert_string_equal(oci_media_type_layer_compression(OCI_MT_LAYER_TAR), "tar");
    assert_null(oci_media_type_layer_compression("application/x-foo"));
}

#define CFG      "{\"mediaType\":\"" OCI_MT_CONFIG "\",\"size\":2,\"digest\":\"" D1 "\"}"
#define LAYER(d) "{\"mediaType\":\"" OCI_MT_LAYER_GZIP "\",\"size\":3,\"digest\":" d "}"

static void test_documents__manifest_errors(void **state)
{
    (void)state;
    static const struct {
        const char *json, *want;
        bool parse_ok; /* the error comes from validate */
    } cases[] = {
            {"[]", "m: manifest: must be an object", false},
            {"{\"schemaVersion\":2,\"layers\":[]}", "m: manifest: missing required 'config'",
             false},
            {"{\"schemaVersion\":2,\"config\":" CFG "}", "manifest: missing required 'layers'",
             false},
            {"{\"config\":" CFG ",\"layers\":[]}", "missing required 'schemaVersion'", false},
            {"{\"schemaVersion\":\"2\",\"config\":" CFG ",\"layers\":[]}",
             "manifest: 'schemaVersion' must be an integer", false},
            {"{\"schemaVersion\":2,\"config\":" CFG
             ",\"layers\":[" LAYER("\"" D2 "\"") "," LAYER("\"" D2 "\"") "," LAYER("7") "]}",
             "m: manifest: layers[2]: 'digest' must be a string", false},
            {"{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[" LAYER("\"sha256:abc\"") "]}",
             "manifest: layers[0]: digest 'sha256:abc': sha256 needs 64 hex digits, got 3", false},
            {"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x/y\",\"size\":-1,\"digest\":\"" D1
             "\"},\"layers\":[]}",
             "manifest: config: 'size' must not be negative", false},
            {"{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[],\"annotations\":{\"a\":1}}",
             "manifest: annotations['a'] must be a string", false},
            {"{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[],\"a\":1,\"a\":2}",
             "m:1:", false},
            {"{\"schemaVersion\":1,\"config\":" CFG ",\"layers\":[]}",
             "manifest: schemaVersion is 1, want 2", true},
            {"{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_INDEX "\",\"config\":" CFG
             ",\"layers\":[]}",
             "manifest: mediaType '" OCI_MT_INDEX "' is not an image manifest type", true},
            {"{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[{\"mediaType\":\"nonsense\","
             "\"size\":1,\"digest\":\"" D2 "\"}]}",
             "manifest: layers[0]: mediaType 'nonsense' is not a valid media type", true},
            {"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" OCI_MT_EMPTY
             "\",\"size\":2,\"digest\":\"" D1 "\"},\"layers\":[]}",
             "artifactType must be set when the config is the empty descriptor", true},
    };
    for (size_t i = 0; i < DLC_ARRAY_SIZE(cases); i++) {
        struct dlc_error *err = NULL;
        _cleanup_(oci_manifest_freep) struct oci_manifest *m = NULL;
        int r = oci_manifest_parse(cases[i].json, strlen(cases[i].json), "m", &m, &err);
        if (cases[i].parse_ok) {
            if (r < 0)
                fail_msg("case %zu: %s", i, err->msg);
            r = oci_manifest_validate(m, &err);
        }
        if (r == 0)
            fail_msg("case %zu succeeded, want '%s'", i, cases[i].want);
        if (strstr(err->msg, cases[i].want) == NULL)
            fail_msg("case %zu: error '%s' lacks '%s'", i, err->msg, cases[i].want);
        assert_int_equal(err->code, EINVAL);
        dlc_error_free(&err);
    }
}

static void test_documents__index_round_trip(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    _cleanup_(oci_index_freep) struct oci_index *ix = NULL;
    assert_int_equal(oci_index_parse(index_json, strlen(index_json), "ix", &ix, &err), 0);
    assert_int_equal(oci_index_validate(ix, &err), 0);
    assert_int_equal(ix->n_manifests, 2);
    assert_string_equal(ix->manifests[0].platform->variant, "v8");
    assert_string_equal(ix->manifests[1].artifact_type, "application/vnd.example+json");
    json_auto_t *j = oci_index_to_json(ix);
    _cleanup_free_ char *out = dlc_json_dumps(j, NULL);
    assert_string_equal(out, index_json);

    /* a Docker manifest list, with unknown platform fields */
    const char *list = "{\"schemaVersion\":2,\"mediaType\":\"" DOCKER_MT_LIST "\",\"manifests\":["
                       "{\"mediaType\":\"" DOCKER_MT_MANIFEST "\",\"size\":1,\"digest\":\"" D1
                       "\",\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\","
                       "\"os.features\":[\"x\"]}}]}";
    _cleanup_(oci_index_freep) struct oci_index *dl = NULL;
    assert_int_equal(oci_index_parse(list, strlen(list), "list", &dl, &err), 0);
    assert_int_equal(oci_index_validate(dl, &err), 0);
    assert_true(oci_media_type_is_index(dl->media_type));
}

static void test_documents__index_errors(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    struct oci_index *ix = NULL;
    const char *a = "{\"schemaVersion\":2}";
    assert_dlc_error(oci_index_parse(a, strlen(a), "index.json", &ix, &err), &err, EINVAL,
                     "index.json: index: missing required 'manifests'");
    const char *b = "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" OCI_MT_MANIFEST
                    "\",\"size\":1,\"digest\":\"" D1 "\",\"platform\":{\"os\":\"linux\"}}]}";
    assert_dlc_error(oci_index_parse(b, strlen(b), "x", &ix, &err), &err, EINVAL,
                     "index: manifests[0]: platform: missing required 'architecture'");
    const char *c = "{\"schemaVersion\":2,\"manifests\":[";
    assert_dlc_error(oci_index_parse(c, strlen(c), "index.json", &ix, &err), &err, EINVAL,
                     "index.json:1:");
    const char *d = "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_MANIFEST "\",\"manifests\":[]}";
    assert_int_equal(oci_index_parse(d, strlen(d), "x", &ix, &err), 0);
    assert_dlc_error(oci_index_validate(ix, &err), &err, EINVAL,
                     "index: mediaType '" OCI_MT_MANIFEST "' is not an image index type");
    oci_index_free(ix);
}

static void test_documents__config_round_trip(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    _cleanup_(oci_image_config_freep) struct oci_image_config *c = NULL;
    assert_int_equal(oci_image_config_parse(config_json, strlen(config_json), "c", &c, &err), 0);
    assert_int_equal(oci_image_config_validate(c, &err), 0);
    assert_string_equal(c->config.entrypoint[0], "/usr/bin/tensor");
    assert_string_equal(c->config.exposed_ports[0], "8080/tcp");
    assert_string_equal(c->config.volumes[0], "/opt/ml");
    assert_string_equal(oci_map_get(&c->config.labels, "com.example.x"), "y");
    assert_int_equal(c->n_diff_ids, 1);
    assert_null(c->diff_ids[1]);
    assert_int_equal(c->n_history, 2);
    assert_true(c->history[1].empty_layer);
    json_auto_t *j = oci_image_config_to_json(c);
    _cleanup_free_ char *out = dlc_json_dumps(j, NULL);
    assert_string_equal(out, config_json);
}

static void test_documents__config_nulls_and_errors(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    /* any OPTIONAL field may be null (config.md) */
    const char *nulls = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":null,"
                        "\"config\":{\"Env\":null,\"Cmd\":null,\"Labels\":null},"
                        "\"history\":null,\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},"
                        "\"docker_only\":{\"x\":1}}";
    _cleanup_(oci_image_config_freep) struct oci_image_config *c = NULL;
    assert_int_equal(oci_image_config_parse(nulls, strlen(nulls), "c", &c, &err), 0);
    assert_int_equal(oci_image_config_validate(c, &err), 0);
    assert_null(c->config.env);
    assert_null(c->created);
    static const struct {
        const char *json, *want;
        bool parse_ok;
    } cases[] = {
            {"{\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
             "config: missing required 'architecture'", false},
            {"{\"architecture\":\"amd64\",\"os\":\"linux\"}", "config: missing required 'rootfs'",
             false},
            {"{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
             "\"diff_ids\":[\"sha256:x\"]}}",
             "config: rootfs.diff_ids[0]: digest 'sha256:x'", false},
            {"{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":\"x\"},"
             "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
             "config: config: 'Cmd' must be an array", false},
            {"{\"architecture\":\"amd64\",\"os\":\"linux\",\"history\":[1],"
             "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
             "config: history[0]: must be an object", false},
            {"{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"tarballs\","
             "\"diff_ids\":[]}}",
             "config: rootfs.type is 'tarballs', want 'layers'", true},
            {"{\"architecture\":\"\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
             "\"diff_ids\":[]}}",
             "config: 'architecture' must not be empty", true},
            {"{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"NOEQUALS\"]},"
             "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
             "config: config.Env[0] 'NOEQUALS' is not KEY=VALUE", true},
    };
    for (size_t i = 0; i < DLC_ARRAY_SIZE(cases); i++) {
        _cleanup_(oci_image_config_freep) struct oci_image_config *cc = NULL;
        int r = oci_image_config_parse(cases[i].json, strlen(cases[i].json), "c", &cc, &err);
        if (cases[i].parse_ok) {
            if (r < 0)
                fail_msg("case %zu: %s", i, err->msg);
            r = oci_image_config_validate(cc, &err);
        }
        if (r == 0)
            fail_msg("case %zu succeeded, want '%s'", i, cases[i].want);
        if (strstr(err->msg, cases[i].want) == NULL)
            fail_msg("case %zu: error '%s' lacks '%s'", i, err->msg, cases[i].want);
        dlc_error_free(&err);
    }
}

static void test_documents__map(void **state)
{
    (void)state;
    struct oci_map m = {0};
    oci_map_set(&m, "b", "2");
    oci_map_set(&m, "a", "1");
    oci_map_set(&m, "c", "3");
    oci_map_set(&m, "b", "two");
    assert_int_equal(m.n, 3);
    assert_string_equal(m.keys[0], "a");
    assert_string_equal(m.keys[1], "b");
    assert_string_equal(m.keys[2], "c");
    assert_string_equal(oci_map_get(&m, "b"), "two");
    assert_null(oci_map_get(&m, "z"));
    oci_map_remove(&m, "b");
    oci_map_remove(&m, "z");
    assert_int_equal(m.n, 2);
    assert_string_equal(m.keys[1], "c");
    oci_map_release(&m);
    assert_int_equal(m.n, 0);
}

static void test_documents__descriptor_copy(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    _cleanup_(oci_index_freep) struct oci_index *ix = NULL;
    assert_int_equal(oci_index_parse(index_json, strlen(index_json), "ix", &ix, &err), 0);
    struct oci_descriptor a = {0};
    oci_descriptor_copy(&a, &ix->manifests[0]);
    json_auto_t *ja = oci_descriptor_to_json(&a);
    json_auto_t *jb = oci_descriptor_to_json(&ix->manifests[0]);
    assert_true(json_equal(ja, jb));
    oci_descriptor_release(&a);
    assert_null(a.media_type);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_documents__manifest_round_trip),
            cmocka_unit_test(test_documents__manifest_unknown_fields_and_docker),
            cmocka_unit_test(test_documents__manifest_errors),
            cmocka_unit_test(test_documents__index_round_trip),
            cmocka_unit_test(test_documents__index_errors),
            cmocka_unit_test(test_documents__config_round_trip),
            cmocka_unit_test(test_documents__config_nulls_and_errors),
            cmocka_unit_test(test_documents__map),
            cmocka_unit_test(test_documents__descriptor_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
