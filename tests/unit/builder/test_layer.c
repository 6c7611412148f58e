#include <errno.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#include "unit.h"
#include "../../../builder/src/builder-internal.h"

#define EPOCH 1700000000

static int collect(void *ctx, const void *data, size_t len, struct dlc_error **err)
{
    (void)err;
    dlc_strbuf_append_len(ctx, data, len);
    return 0;
}

struct fixture {
    char *dir;
    char *file;
    struct btree *t;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    f->dir = unit_tmpdir();
    f->file = dlc_path_join(f->dir, "blob");
    struct dlc_error *err = NULL;
    if (dlc_write_file_atomic(f->file, "0123456789", 10, 0600, &err) < 0)
        return -1;
    f->t = btree_new();
    struct bnode nodes[] = {
            {.path = (char *)"usr/bin/tool",
             .type = BN_FILE,
             .mode = 0755,
             .src = f->file,
             .size = 10},
            {.path = (char *)"etc/motd",
             .type = BN_FILE,
             .mode = 0644,
             .data = (char *)"hi\n",
             .size = 3},
            {.path = (char *)"bin/sh", .type = BN_SYMLINK, .link = (char *)"busybox"},
            {.path = (char *)"tmp", .type = BN_DIR, .mode = 01777},
            {.path = (char *)"a", .type = BN_DIR, .mode = 0755, .opaque = true},
            {.path = (char *)"a/new", .type = BN_FILE, .mode = 0644, .data = (char *)"", .size = 0},
            {.path = (char *)"old", .type = BN_WHITEOUT},
    };
    for (size_t i = 0; i < DLC_ARRAY_SIZE(nodes); i++)
        if (btree_add(f->t, &nodes[i], &err) < 0)
            return -1;
    if (btree_hash_files(f->t, &err) < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    btree_free(f->t);
    unit_tmpdir_free(f->dir);
    free(f->file);
    free(f);
    return 0;
}

static char *tar_of(const struct btree *t, size_t *len)
{
    struct dlc_strbuf sb = DLC_STRBUF_INIT;
    struct dlc_error *err = NULL;
    assert_int_equal(blayer_write_tar(t, EPOCH, collect, &sb, &err), 0);
    return dlc_strbuf_detach(&sb, len);
}

static void test_layer__reproducible(void **state)
{
    struct fixture *f = *state;
    size_t n1 = 0, n2 = 0;
    _cleanup_free_ char *a = tar_of(f->t, &n1);
    _cleanup_free_ char *b = tar_of(f->t, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    assert_int_equal(n1 % 512, 0);
}

static void test_layer__entries(void **state)
{
    struct fixture *f = *state;
    size_t n = 0;
    _cleanup_free_ char *tar = tar_of(f->t, &n);
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_memory(a, tar, n), ARCHIVE_OK);
    /* whiteouts first in their directory (the root too), parents before children */
    static const char *const want[] = {".wh.old", "a/",     "a/.wh..wh..opq", "a/new",
                                       "bin/",    "bin/sh", "etc/",           "etc/motd",
                                       "tmp/",    "usr/",   "usr/bin/",       "usr/bin/tool"};
    size_t i = 0;
    struct archive_entry *e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        assert_true(i < DLC_ARRAY_SIZE(want));
        assert_string_equal(archive_entry_pathname(e), want[i]);
        assert_int_equal(archive_entry_uid(e), 0);
        assert_int_equal(archive_entry_gid(e), 0);
        assert_true(archive_entry_uname(e) == NULL || archive_entry_uname(e)[0] == 0);
        assert_int_equal(archive_entry_mtime(e), EPOCH);
        assert_false(archive_entry_atime_is_set(e));
        assert_false(archive_entry_ctime_is_set(e));
        if (strcmp(want[i], "tmp/") == 0)
            assert_int_equal(archive_entry_perm(e), 01777);
        if (strcmp(want[i], "bin/sh") == 0)
            assert_string_equal(archive_entry_symlink(e), "busybox");
        if (strcmp(want[i], "usr/bin/tool") == 0) {
            char buf[16] = {0};
            assert_int_equal(archive_read_data(a, buf, sizeof(buf)), 10);
            assert_string_equal(buf, "0123456789");
            assert_int_equal(archive_entry_perm(e), 0755);
        }
        i++;
    }
    assert_int_equal(i, DLC_ARRAY_SIZE(want));
    archive_read_free(a);
}

/* A file that changes between hashing and writing must not end up in a layer whose cache
 * key says something else. */
static void test_layer__changed_file(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    assert_int_equal(dlc_write_file_atomic(f->file, "0123456780", 10, 0600, &err), 0);
    struct dlc_strbuf sb = DLC_STRBUF_INIT;
    _cleanup_free_ char *want = xasprintf("%s changed while the layer was being written", f->file);
    assert_dlc_error(blayer_write_tar(f->t, EPOCH, collect, &sb, &err), &err, EIO, want);
    dlc_strbuf_release(&sb);
    assert_int_equal(dlc_write_file_atomic(f->file, "0123456789x", 11, 0600, &err), 0);
    assert_dlc_error(blayer_write_tar(f->t, EPOCH, collect, &sb, &err), &err, EIO, want);
    dlc_strbuf_release(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_layer__reproducible, setup, teardown),
            cmocka_unit_test_setup_teardown(test_layer__entries, setup, teardown),
            cmocka_unit_test_setup_teardown(test_layer__changed_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
