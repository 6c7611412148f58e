/* Layer unpacking: overlay form, apply form (whiteout oracle of oci-specs.md §1.8),
 * diff_id verification and refusal of entries that would escape the destination. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "unit.h"

#include "../../../runner/src/runner-internal.h"

struct tent {
    const char *name;
    char type;        /* f file, d dir, l symlink, h hardlink */
    const char *data; /* content, or link target */
    int mode;
};

/* Writes entries as an uncompressed pax tar into memory. */
static char *tar_bytes(const struct tent *ents, size_t n, size_t *ret_len)
{
    size_t cap = 1 << 20;
    char *buf = xmalloc(cap);
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    assert_int_equal(archive_write_open_memory(a, buf, cap, ret_len), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, ents[i].name);
        archive_entry_set_mtime(e, 1000000, 0);
        archive_entry_set_perm(e, ents[i].mode ? ents[i].mode : 0644);
        size_t len = 0;
        switch (ents[i].type) {
        case 'd':
            archive_entry_set_filetype(e, AE_IFDIR);
            break;
        case 'l':
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, ents[i].data);
            break;
        case 'h':
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, ents[i].data);
            break;
        default:
            archive_entry_set_filetype(e, AE_IFREG);
            len = ents[i].data ? strlen(ents[i].data) : 0;
            archive_entry_set_size(e, (la_int64_t)len);
        }
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (len)
            assert_int_equal(archive_write_data(a, ents[i].data, len), (la_ssize_t)len);
        archive_entry_free(e);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    return buf;
}

/* Writes the tar (gzip-compressed if asked) to dir/name; returns its path and diff_id. */
static char *write_layer(const char *dir, const char *name, const struct tent *ents, size_t n,
                         bool gzip, char diff_id[OCI_DIGEST_BUFSZ])
{
    size_t len = 0;
    _cleanup_free_ char *tar = tar_bytes(ents, n, &len);
    oci_digest_buf(tar, len, diff_id);
    char *path = dlc_path_join(dir, name);
    struct archive *a = archive_write_new();
    archive_write_set_format_raw(a);
    if (gzip)
        archive_write_add_filter_gzip(a);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_pathname(e, "data");
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    assert_int_equal(archive_write_data(a, tar, len), (la_ssize_t)len);
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
    return path;
}

static char *mkdir_in(const char *dir, const char *name)
{
    char *p = dlc_path_join(dir, name);
    assert_int_equal(mkdir(p, 0755), 0);
    return p;
}

static bool is_whiteout(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

static char *read_str(const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    struct dlc_error *err = NULL;
    if (dlc_read_file(path, 1 << 16, &buf, &len, &err) < 0) {
        dlc_error_free(&err);
        return NULL;
    }
    return buf;
}

static const struct tent L1[] = {
        {"a/", 'd', NULL, 0755},
        {"a/x", 'f', "x", 0},
        {"a/b/", 'd', NULL, 0755},
        {"a/b/y", 'f', "y", 0},
        {"c/", 'd', NULL, 0755},
        {"c/z", 'f', "z", 0},
        {"f", 'f', "f", 0},
        {"bin/", 'd', NULL, 0755},
        {"bin/busybox", 'f', "bb", 0755},
        {"bin/sh", 'l', "busybox"},
        {"bin/ln", 'h', "bin/busybox"},
};
static const struct tent L2[] = {
        {".wh.f", 'f', NULL, 0},
        {"a/.wh..wh..opq", 'f', NULL, 0},
        {"a/new", 'f', "new", 0},
        {"c/.wh.z", 'f', NULL, 0},
};

static void test_layers__overlay_form(void **state)
{
    (void)state;
    char *tmp = unit_tmpdir();
    struct dlc_error *err = NULL;
    char d1[OCI_DIGEST_BUFSZ], d2[OCI_DIGEST_BUFSZ];
    _cleanup_free_ char *b1 = write_layer(tmp, "l1.tar.gz", L1, DLC_ARRAY_SIZE(L1), true, d1);
    _cleanup_free_ char *b2 = write_layer(tmp, "l2.tar", L2, DLC_ARRAY_SIZE(L2), false, d2);
    _cleanup_free_ char *o1 = mkdir_in(tmp, "o1");
    _cleanup_free_ char *o2 = mkdir_in(tmp, "o2");
    struct layer_unpack_opts opts = {LAYER_MODE_OVERLAY, runner_privileged(), NULL, 0};
    assert_int_equal(runner_layer_unpack(b1, d1, o1, &opts, &err), 0);
    assert_int_equal(runner_layer_unpack(b2, d2, o2, &opts, &err), 0);

    _cleanup_free_ char *x = dlc_path_join(o1, "a/x");
    _cleanup_free_ char *xs = read_str(x);
    assert_string_equal(xs, "x");
    _cleanup_free_ char *bb = dlc_path_join(o1, "bin/busybox");
    _cleanup_free_ char *ln = dlc_path_join(o1, "bin/ln");
    struct stat st, st2;
    assert_int_equal(stat(bb, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);
    assert_int_equal(stat(ln, &st2), 0);
    assert_int_equal(st.st_ino, st2.st_ino); /* a real hardlink */
    _cleanup_free_ char *sh = dlc_path_join(o1, "bin/sh");
    char target[64] = "";
    assert_int_equal(readlink(sh, target, sizeof(target) - 1), 7);
    assert_string_equal(target, "busybox");

    _cleanup_free_ char *wf = dlc_path_join(o2, "f");
    _cleanup_free_ char *wz = dlc_path_join(o2, "c/z");
    assert_true(is_whiteout(wf));
    assert_true(is_whiteout(wz));
    _cleanup_free_ char *a = dlc_path_join(o2, "a");
    char v[4] = "";
    assert_int_equal(getxattr(a, "user.overlay.opaque", v, sizeof(v)), 1);
    assert_int_equal(v[0], 'y');
    _cleanup_free_ char *nw = dlc_path_join(o2, "a/new");
    assert_true(dlc_path_exists(nw));
    unit_tmpdir_free(tmp);
}

/* find-style listing of a tree, sorted, for comparisons. */
static void list_tree(const char *root, const char *rel, struct dlc_strbuf *out)
{
    _cleanup_free_ char *p = dlc_path_join(root, rel);
    DIR *d = opendir(p);
    assert_non_null(d);
    char **names = NULL;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            names = dlc_strv_push(names, de->d_name);
    closedir(d);
    if (names == NULL) /* an empty directory */
        return;
    size_t n = dlc_strv_len(names);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(names[i], names[j]) > 0) {
                char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *r = *rel ? xasprintf("%s/%s", rel, names[i]) : xstrdup(names[i]);
        _cleanup_free_ char *full = dlc_path_join(root, r);
        struct stat st;
        assert_int_equal(lstat(full, &st), 0);
        dlc_strbuf_appendf(out, "%s%s ", r, S_ISDIR(st.st_mode) ? "/" : "");
        if (S_ISDIR(st.st_mode))
            list_tree(root, r, out);
    }
    dlc_strv_free(names);
}

static void test_layers__apply_whiteout_oracle(void **state)
{
    (void)state;
    char *tmp = unit_tmpdir();
    struct dlc_error *err = NULL;
    char d1[OCI_DIGEST_BUFSZ], d2[OCI_DIGEST_BUFSZ];
    static const struct tent l1[] = {
            {"a/x", 'f', "x"}, {"a/b/y", 'f', "y"}, {"c/z", 'f', "z"}, {"f", 'f', "f"}};
    _cleanup_free_ char *b1 = write_layer(tmp, "l1.tar", l1, DLC_ARRAY_SIZE(l1), false, d1);
    _cleanup_free_ char *b2 = write_layer(tmp, "l2.tar", L2, DLC_ARRAY_SIZE(L2), true, d2);
    _cleanup_free_ char *root = mkdir_in(tmp, "rootfs");
    struct layer_unpack_opts opts = {LAYER_MODE_APPLY, runner_privileged(), NULL, 0};
    assert_int_equal(runner_layer_unpack(b1, d1, root, &opts, &err), 0);
    assert_int_equal(runner_layer_unpack(b2, d2, root, &opts, &err), 0);
    _cleanup_strbuf_ struct dlc_strbuf sb = DLC_STRBUF_INIT;
    list_tree(root, "", &sb);
    assert_string_equal(dlc_strbuf_str(&sb), "a/ a/new c/ ");
    unit_tmpdir_free(tmp);
}

static void test_layers__same_layer_entry_beats_its_whiteout(void **state)
{
    (void)state;
    char *tmp = unit_tmpdir();
    struct dlc_error *err = NULL;
    char d[OCI_DIGEST_BUFSZ];
    static const struct tent l[] = {
            {"k", 'f', "kept"}, {".wh.k", 'f', NULL}, {".wh.j", 'f', NULL}, {"j", 'f', "j2"}};
    _cleanup_free_ char *b = write_layer(tmp, "l.tar", l, DLC_ARRAY_SIZE(l), false, d);
    _cleanup_free_ char *o = mkdir_in(tmp, "o");
    struct layer_unpack_opts opts = {LAYER_MODE_OVERLAY, runner_privileged(), NULL, 0};
    assert_int_equal(runner_layer_unpack(b, d, o, &opts, &err), 0);
    _cleanup_free_ char *k = dlc_path_join(o, "k");
    _cleanup_free_ char *j = dlc_path_join(o, "j");
    _cleanup_free_ char *ks = read_str(k);
    _cleanup_free_ char *js = read_str(j);
    assert_string_equal(ks, "kept");
    assert_string_equal(js, "j2");
    unit_tmpdir_free(tmp);
}

static void test_layers__diff_id_mismatch(void **state)
{
    (void)state;
    char *tmp = unit_tmpdir();
    struct dlc_error *err = NULL;
    char d[OCI_DIGEST_BUFSZ];
    _cleanup_free_ char *b = write_layer(tmp, "l.tar.gz", L1, DLC_ARRAY_SIZE(L1), true, d);
    _cleanup_free_ char *o = mkdir_in(tmp, "o");
    struct layer_unpack_opts opts = {LAYER_MODE_OVERLAY, runner_privileged(), NULL, 0};
    const char *wrong = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    assert_dlc_error(runner_layer_unpack(b, wrong, o, &opts, &err), &err, EBADMSG,
                     "content hashes to");
    unit_tmpdir_free(tmp);
}

/* The entry must be refused and nothing may appear outside the destination. */
static void expect_refused(const struct tent *ents, size_t n, enum layer_mode mode,
                           const char *want)
{
    char *tmp = unit_tmpdir();
    struct dlc_error *err = NULL;
    char d[OCI_DIGEST_BUFSZ];
    _cleanup_free_ char *b = write_layer(tmp, "evil.tar", ents, n, false, d);
    _cleanup_free_ char *o = mkdir_in(tmp, "deep");
    _cleanup_free_ char *o2 = mkdir_in(o, "dest");
    struct layer_unpack_opts opts = {mode, runner_privileged(), NULL, 0};
    assert_dlc_error(runner_layer_unpack(b, d, o2, &opts, &err), &err, EINVAL, want);
    _cleanup_free_ char *escaped = dlc_path_join(tmp, "pwned");
    _cleanup_free_ char *escaped2 = dlc_path_join(o, "pwned");
    assert_false(dlc_path_exists(escaped));
    assert_false(dlc_path_exists(escaped2));
    unit_tmpdir_free(tmp);
}

static void test_layers__refuses_escapes(void **state)
{
    (void)state;
    static const struct tent dotdot[] = {{"../pwned", 'f', "x"}};
    expect_refused(dotdot, 1, LAYER_MODE_OVERLAY, "contains '..'");
    static const struct tent dotdot2[] = {{"a/../../pwned", 'f', "x"}};
    expect_refused(dotdot2, 1, LAYER_MODE_APPLY, "contains '..'");
    static const struct tent abs[] = {{"/pwned", 'f', "x"}};
    expect_refused(abs, 1, LAYER_MODE_APPLY, "absolute path");
    /* a symlink to the outside, then a file through it */
    static const struct tent via_link[] = {{"esc", 'l', "../.."}, {"esc/pwned", 'f', "x"}};
    expect_refused(via_link, 2, LAYER_MODE_OVERLAY, "esc");
    static const struct tent hard[] = {{"h", 'h', "../../pwned"}};
    expect_refused(hard, 1, LAYER_MODE_OVERLAY, "contains '..'");
}

/* Apply mode follows symlinks the way the container will see them: inside the root. */
static void test_layers__apply_symlink_stays_inside(void **state)
{
    (void)state;
    char *tmp = unit_tmpdir();
    struct dlc_error *err = NULL;
    char d[OCI_DIGEST_BUFSZ];
    _cleanup_free_ char *host = xasprintf("%s/hostdir", tmp);
    assert_int_equal(mkdir(host, 0755), 0);
    struct tent ents[] = {{"esc", 'l', host},
                          {"esc/pwned", 'f', "x"},
                          {"up", 'l', "../../.."},
                          {"up/pwned2", 'f', "y"}};
    _cleanup_free_ char *b = write_layer(tmp, "l.tar", ents, DLC_ARRAY_SIZE(ents), false, d);
    _cleanup_free_ char *root = mkdir_in(tmp, "rootfs");
    struct layer_unpack_opts opts = {LAYER_MODE_APPLY, runner_privileged(), NULL, 0};
    if (runner_layer_unpack(b, d, root, &opts, &err) < 0)
        fail_msg("%s", err->msg);
    _cleanup_free_ char *bad = dlc_path_join(host, "pwned");
    assert_false(dlc_path_exists(bad));
    _cleanup_free_ char *inside = xasprintf("%s%s/pwned", root, host);
    assert_true(dlc_path_exists(inside));
    _cleanup_free_ char *inside2 = dlc_path_join(root, "pwned2");
    assert_true(dlc_path_exists(inside2));
    unit_tmpdir_free(tmp);
}

static void test_layers__lower_symlink_parent_refused(void **state)
{
    (void)state;
    char *tmp = unit_tmpdir();
    struct dlc_error *err = NULL;
    char d[OCI_DIGEST_BUFSZ];
    _cleanup_free_ char *lower = mkdir_in(tmp, "lower");
    _cleanup_free_ char *lnk = dlc_path_join(lower, "lib");
    assert_int_equal(symlink("usr/lib", lnk), 0);
    static const struct tent ents[] = {{"lib/libx.so", 'f', "x"}};
    _cleanup_free_ char *b = write_layer(tmp, "l.tar", ents, 1, false, d);
    _cleanup_free_ char *o = mkdir_in(tmp, "o");
    char *lowers[] = {lower, NULL};
    struct layer_unpack_opts opts = {LAYER_MODE_OVERLAY, runner_privileged(), lowers, 1};
    assert_dlc_error(runner_layer_unpack(b, d, o, &opts, &err), &err, EINVAL,
                     "symlink in a lower layer");
    unit_tmpdir_free(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_layers__overlay_form),
            cmocka_unit_test(test_layers__apply_whiteout_oracle),
            cmocka_unit_test(test_layers__same_layer_entry_beats_its_whiteout),
            cmocka_unit_test(test_layers__diff_id_mismatch),
            cmocka_unit_test(test_layers__refuses_escapes),
            cmocka_unit_test(test_layers__apply_symlink_stays_inside),
            cmocka_unit_test(test_layers__lower_symlink_parent_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
