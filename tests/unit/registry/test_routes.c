/* Unit tests: request path routing and Range parsing of the registry server. */
#include <errno.h>
#include <string.h>

#include "unit.h"

#include "../../../registry/src/registry-internal.h"

struct route_case {
    const char *path;
    enum route_status status;
    enum rroute route;
    const char *name;
    const char *ref;
};

static void test_routes__split(void **state)
{
    (void)state;
    static const struct route_case cases[] = {
            {"/v2/", ROUTE_OK, RR_BASE, NULL, NULL},
            {"/v2", ROUTE_OK, RR_BASE, NULL, NULL},
            {"/v2/_catalog", ROUTE_OK, RR_CATALOG, NULL, NULL},
            {"/v2/foo/manifests/latest", ROUTE_OK, RR_MANIFEST, "foo", "latest"},
            {"/v2/a/b/c/manifests/sha256:ab", ROUTE_OK, RR_MANIFEST, "a/b/c", "sha256:ab"},
            {"/v2/foo/blobs/sha256:00", ROUTE_OK, RR_BLOB, "foo", "sha256:00"},
            {"/v2/foo/blobs/uploads/", ROUTE_OK, RR_UPLOAD_NEW, "foo", ""},
            {"/v2/foo/blobs/uploads", ROUTE_OK, RR_UPLOAD_NEW, "foo", ""},
            {"/v2/foo/blobs/uploads/abc", ROUTE_OK, RR_UPLOAD, "foo", "abc"},
            {"/v2/foo/tags/list", ROUTE_OK, RR_TAGS, "foo", "list"},
            {"/v2/foo/referrers/sha256:1", ROUTE_OK, RR_REFERRERS, "foo", "sha256:1"},
            /* names may contain the endpoint words */
            {"/v2/blobs/blobs/uploads/", ROUTE_OK, RR_UPLOAD_NEW, "blobs", ""},
            {"/v2/x/manifests/y/manifests/z", ROUTE_OK, RR_MANIFEST, "x/manifests/y", "z"},
            {"/v2/tags/tags/list", ROUTE_OK, RR_TAGS, "tags", "list"},
            {"/v2/blobs/uploads/", ROUTE_UNKNOWN, RR_NONE, NULL, NULL},
            {"/v3/foo/manifests/x", ROUTE_UNKNOWN, RR_NONE, NULL, NULL},
            {"/v2/foo", ROUTE_UNKNOWN, RR_NONE, NULL, NULL},
            {"/v2/foo/bar", ROUTE_UNKNOWN, RR_NONE, NULL, NULL},
            {"/v2/foo/tags/list/", ROUTE_UNKNOWN, RR_NONE, NULL, NULL},
            /* what decoded traversal attempts look like */
            {"/v2/../../etc/manifests/x", ROUTE_BAD_NAME, RR_MANIFEST, NULL, NULL},
            {"/v2//etc/manifests/x", ROUTE_BAD_NAME, RR_MANIFEST, NULL, NULL},
            {"/v2/Foo/manifests/x", ROUTE_BAD_NAME, RR_MANIFEST, NULL, NULL},
            {"/v2/_uploads/blobs/uploads/", ROUTE_BAD_NAME, RR_UPLOAD_NEW, NULL, NULL},
            {"/v2/a/../b/blobs/sha256:00", ROUTE_BAD_NAME, RR_BLOB, NULL, NULL},
    };
    for (size_t i = 0; i < DLC_ARRAY_SIZE(cases); i++) {
        const struct route_case *c = &cases[i];
        enum rroute route;
        _cleanup_free_ char *name = NULL, *ref = NULL;
        enum route_status st = route_split(c->path, &route, &name, &ref);
        if (st != c->status || route != c->route)
            fail_msg("%s: status %d route %d, want %d %d", c->path, st, route, c->status, c->route);
        if (c->name)
            assert_string_equal(name, c->name);
        if (c->ref)
            assert_string_equal(ref, c->ref);
        if (st != ROUTE_OK)
            assert_null(name);
    }
}

static void test_routes__long_values(void **state)
{
    (void)state;
    char path[1024];
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    snprintf(path, sizeof(path), "/v2/%s/manifests/latest", longname);
    enum rroute route;
    char *name = NULL, *ref = NULL;
    assert_int_equal(route_split(path, &route, &name, &ref), ROUTE_BAD_NAME);
    char longref[400];
    memset(longref, 't', sizeof(longref) - 1);
    longref[sizeof(longref) - 1] = '\0';
    snprintf(path, sizeof(path), "/v2/foo/manifests/%s", longref);
    assert_int_equal(route_split(path, &route, &name, &ref), ROUTE_BAD_REF);
    assert_null(name);
}

struct range_case {
    const char *header;
    uint64_t size;
    enum range_result want;
    uint64_t start, len;
};

static void test_routes__range(void **state)
{
    (void)state;
    /* the conformance suite's cases on a 2048-byte blob, and edge cases */
    static const struct range_case cases[] = {
            {"bytes=500-1499", 2048, RANGE_OK, 500, 1000},
            {"bytes=500-", 2048, RANGE_OK, 500, 1548},
            {"bytes=-500", 2048, RANGE_OK, 1548, 500},
            {"bytes=2000-5000", 2048, RANGE_OK, 2000, 48},
            {"bytes=0-0", 2048, RANGE_OK, 0, 1},
            {"bytes=-5000", 2048, RANGE_OK, 0, 2048},
            {"bytes=500-0", 2048, RANGE_BAD, 0, 0},
            {"bytes=2048-", 2048, RANGE_BAD, 0, 0},
            {"bytes=-0", 2048, RANGE_BAD, 0, 0},
            {"bytes=0-", 0, RANGE_BAD, 0, 0},
            {"bytes=a-b", 2048, RANGE_BAD, 0, 0},
            {"bytes=1", 2048, RANGE_BAD, 0, 0},
            {"bytes=0-1,5-6", 2048, RANGE_NONE, 0, 0},
            {"items=0-1", 2048, RANGE_NONE, 0, 0},
            {NULL, 2048, RANGE_NONE, 0, 0},
    };
    for (size_t i = 0; i < DLC_ARRAY_SIZE(cases); i++) {
        const struct range_case *c = &cases[i];
        uint64_t start = 0, len = 0;
        enum range_result r = blob_range_parse(c->header, c->size, &start, &len);
        if (r != c->want)
            fail_msg("%s: %d, want %d", c->header ? c->header : "(null)", r, c->want);
        if (r == RANGE_OK) {
            assert_int_equal(start, c->start);
            assert_int_equal(len, c->len);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_routes__split),
            cmocka_unit_test(test_routes__long_values),
            cmocka_unit_test(test_routes__range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
