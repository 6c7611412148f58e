#include <errno.h>
#include <string.h>

#include "unit.h"
#include "../../../builder/src/builder-internal.h"

static void add(struct btree *t, const char *path, enum bnode_type type, const char *extra)
{
    struct bnode n = {.path = (char *)path,
                      .type = type,
                      .mode = type == BN_DIR ? 0755 : 0644,
                      .where = (char *)"test"};
    if (type == BN_FILE) {
        n.data = (char *)(extra ? extra : "");
        n.size = strlen(n.data);
    } else if (type == BN_SYMLINK) {
        n.link = (char *)extra;
    }
    struct dlc_error *err = NULL;
    assert_int_equal(btree_add(t, &n, &err), 0);
}

static char *paths(const struct btree *t)
{
    size_t n = 0;
    _cleanup_free_ struct bnode **v = btree_sorted(t, &n);
    struct dlc_strbuf sb = DLC_STRBUF_INIT;
    for (size_t i = 0; i < n; i++)
        dlc_strbuf_appendf(&sb, "%s%s%s%s", i ? " " : "", v[i]->type == BN_WHITEOUT ? "-" : "",
                           v[i]->path, v[i]->type == BN_DIR ? "/" : "");
    return dlc_strbuf_detach(&sb, NULL);
}

static void test_tree__order(void **state)
{
    (void)state;
    _cleanup_(btree_freep) struct btree *t = btree_new();
    add(t, "a.txt", BN_FILE, NULL);
    add(t, "a/x", BN_FILE, NULL);
    add(t, "a-b", BN_FILE, NULL);
    add(t, "a/b", BN_FILE, NULL);
    add(t, "a/zz", BN_WHITEOUT, NULL);
    add(t, "a/-", BN_FILE, NULL);
    _cleanup_free_ char *p = paths(t);
    /* parents first, then component by component; whiteouts first in their directory */
    assert_string_equal(p, "a/ -a/zz a/- a/b a/x a-b a.txt");
}

static void test_tree__conflicts(void **state)
{
    (void)state;
    _cleanup_(btree_freep) struct btree *t = btree_new();
    struct dlc_error *err = NULL;
    add(t, "etc", BN_FILE, "x");
    struct bnode n = {.path = (char *)"etc/passwd",
                      .type = BN_FILE,
                      .data = (char *)"",
                      .where = (char *)"copy[1]"};
    assert_dlc_error(btree_add(t, &n, &err), &err, EEXIST,
                     "copy[1]: '/etc' is already a file (from test)");
    add(t, "etc", BN_FILE, "x"); /* the same again: fine */
    struct bnode other = {.path = (char *)"etc",
                          .type = BN_FILE,
                          .data = (char *)"y",
                          .size = 1,
                          .mode = 0644,
                          .where = (char *)"copy[2]"};
    assert_dlc_error(btree_add(t, &other, &err), &err, EEXIST, "copy[2]: '/etc' is already");
    /* an explicit directory wins over an implicit one; two explicit ones must agree */
    add(t, "tmp/x", BN_FILE, NULL);
    assert_true(btree_get(t, "tmp")->implicit);
    struct bnode tmp = {
            .path = (char *)"tmp", .type = BN_DIR, .mode = 01777, .where = (char *)"copy[3]"};
    assert_int_equal(btree_add(t, &tmp, &err), 0);
    assert_false(btree_get(t, "tmp")->implicit);
    assert_int_equal(btree_get(t, "tmp")->mode, 01777);
    tmp.mode = 0755;
    assert_dlc_error(btree_add(t, &tmp, &err), &err, EEXIST,
                     "directory '/tmp' is also given by copy[3] with other attributes");
}

static void test_tree__finalize_on_lower(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    _cleanup_(btree_freep) struct btree *lower = btree_new();
    add(lower, "lib", BN_SYMLINK, "usr/lib");
    add(lower, "usr/lib/libc.so", BN_FILE, "libc");
    add(lower, "etc/os-release", BN_FILE, "debian");
    assert_int_equal(btree_hash_files(lower, &err), 0);

    _cleanup_(btree_freep) struct btree *raw = btree_new();
    add(raw, "lib/foo", BN_FILE, "foo");           /* through lower's symlink */
    add(raw, "usr/lib/libc.so", BN_FILE, "libc");  /* identical to lower: dropped */
    add(raw, "etc/os-release", BN_FILE, "ubuntu"); /* different: kept */
    add(raw, "opt/new/x", BN_FILE, "x");           /* new directories: emitted */
    assert_int_equal(btree_hash_files(raw, &err), 0);
    _cleanup_(btree_freep) struct btree *fin = NULL;
    assert_int_equal(btree_finalize(raw, lower, &fin, &err), 0);
    _cleanup_free_ char *p = paths(fin);
    assert_string_equal(p, "etc/os-release opt/ opt/new/ opt/new/x usr/lib/foo");

    /* with nothing below, every parent is written */
    _cleanup_(btree_freep) struct btree *alone = NULL;
    assert_int_equal(btree_finalize(raw, NULL, &alone, &err), 0);
    _cleanup_free_ char *q = paths(alone);
    assert_string_equal(q, "etc/ etc/os-release lib/ lib/foo opt/ opt/new/ opt/new/x usr/ "
                           "usr/lib/ usr/lib/libc.so");
}

/* reference/oci-specs.md §1.8's oracle, applied in memory. */
static void test_tree__apply_whiteouts(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    _cleanup_(btree_freep) struct btree *t = btree_new();
    _cleanup_(btree_freep) struct btree *l1 = btree_new();
    add(l1, "a/x", BN_FILE, NULL);
    add(l1, "a/b/y", BN_FILE, NULL);
    add(l1, "c/z", BN_FILE, NULL);
    add(l1, "f", BN_FILE, NULL);
    _cleanup_(btree_freep) struct btree *l2 = btree_new();
    add(l2, "f", BN_WHITEOUT, NULL);
    struct bnode opq = {.path = (char *)"a", .type = BN_DIR, .mode = 0755, .opaque = true};
    assert_int_equal(btree_add(l2, &opq, &err), 0);
    add(l2, "a/new", BN_FILE, NULL);
    add(l2, "c/z", BN_WHITEOUT, NULL);
    assert_int_equal(btree_apply(t, l1, &err), 0);
    assert_int_equal(btree_apply(t, l2, &err), 0);
    _cleanup_free_ char *p = paths(t);
    assert_string_equal(p, "a/ a/new c/");
}

static void test_tree__normalize_clamped(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
            {"/usr/lib", "usr/lib"}, {"a/../../b", "b"}, {"/..", ""}, {"./a//b/.", "a/b"}};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(cases); i++) {
        _cleanup_free_ char *p = bpath_normalize_clamped(cases[i][0]);
        assert_string_equal(p, cases[i][1]);
    }
}

static void test_tree__key(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    _cleanup_(btree_freep) struct btree *a = btree_new();
    _cleanup_(btree_freep) struct btree *b = btree_new();
    add(a, "x", BN_FILE, "1");
    add(a, "y", BN_FILE, "2");
    add(b, "y", BN_FILE, "2"); /* insertion order does not matter */
    add(b, "x", BN_FILE, "1");
    assert_int_equal(btree_hash_files(a, &err), 0);
    assert_int_equal(btree_hash_files(b, &err), 0);
    char ka[OCI_DIGEST_BUFSZ], kb[OCI_DIGEST_BUFSZ], kc[OCI_DIGEST_BUFSZ];
    btree_key(a, "gzip", ka);
    btree_key(b, "gzip", kb);
    assert_string_equal(ka, kb);
    btree_key(b, "zstd", kc); /* the salt (compression, epoch, below) counts */
    assert_string_not_equal(ka, kc);
    btree_get(b, "x")->mode = 0755; /* so does a mode */
    btree_key(b, "gzip", kc);
    assert_string_not_equal(ka, kc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_tree__order),
            cmocka_unit_test(test_tree__conflicts),
            cmocka_unit_test(test_tree__finalize_on_lower),
            cmocka_unit_test(test_tree__apply_whiteouts),
            cmocka_unit_test(test_tree__normalize_clamped),
            cmocka_unit_test(test_tree__key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
