#include <elf.h>
#include <errno.h>
#include <string.h>

#include "unit.h"
#include "../../../builder/src/builder-internal.h"

/* A minimal 64-bit ELF of this host's machine: one PT_LOAD over the whole file (vaddr ==
 * offset), a PT_DYNAMIC with DT_NEEDED entries, an optional DT_RUNPATH, and the strings. */
static void write_elf(const char *path, const char *const *needed, const char *runpath)
{
    _cleanup_free_ char *self = realpath("/proc/self/exe", NULL);
    struct dlc_error *err = NULL;
    _cleanup_(dlc_elf_freep) struct dlc_elf *me = NULL;
    assert_int_equal(dlc_elf_read(self, &me, &err), 0);

    unsigned char buf[4096];
    memset(buf, 0, sizeof(buf));
    const size_t dyn_off = 512, str_off = 1024;
    size_t str_len = 1;
    Elf64_Dyn dyn[16];
    size_t nd = 0;
    for (size_t i = 0; needed && needed[i]; i++) {
        dyn[nd++] = (Elf64_Dyn){.d_tag = DT_NEEDED, .d_un.d_val = str_len};
        memcpy(buf + str_off + str_len, needed[i], strlen(needed[i]) + 1);
        str_len += strlen(needed[i]) + 1;
    }
    if (runpath) {
        dyn[nd++] = (Elf64_Dyn){.d_tag = DT_RUNPATH, .d_un.d_val = str_len};
        memcpy(buf + str_off + str_len, runpath, strlen(runpath) + 1);
        str_len += strlen(runpath) + 1;
    }
    dyn[nd++] = (Elf64_Dyn){.d_tag = DT_STRTAB, .d_un.d_ptr = str_off};
    dyn[nd++] = (Elf64_Dyn){.d_tag = DT_STRSZ, .d_un.d_val = str_len};
    dyn[nd++] = (Elf64_Dyn){.d_tag = DT_NULL};
    memcpy(buf + dyn_off, dyn, nd * sizeof(*dyn));

    Elf64_Ehdr h;
    memset(&h, 0, sizeof(h));
    memcpy(h.e_ident, ELFMAG, SELFMAG);
    h.e_ident[EI_CLASS] = ELFCLASS64;
    h.e_ident[EI_DATA] = ELFDATA2LSB;
    h.e_ident[EI_VERSION] = EV_CURRENT;
    h.e_type = ET_DYN;
    h.e_machine = (Elf64_Half)me->machine;
    h.e_phoff = sizeof(h);
    h.e_phentsize = sizeof(Elf64_Phdr);
    h.e_phnum = 2;
    memcpy(buf, &h, sizeof(h));
    Elf64_Phdr ph[2] = {
            {.p_type = PT_LOAD, .p_offset = 0, .p_vaddr = 0, .p_filesz = sizeof(buf)},
            {.p_type = PT_DYNAMIC,
             .p_offset = dyn_off,
             .p_vaddr = dyn_off,
             .p_filesz = nd * sizeof(Elf64_Dyn)},
    };
    memcpy(buf + sizeof(h), ph, sizeof(ph));
    assert_int_equal(dlc_write_file_atomic(path, buf, sizeof(buf), 0755, &err), 0);
}

static void mkdirs(const char *p)
{
    struct dlc_error *err = NULL;
    assert_int_equal(dlc_mkdir_p(p, 0755, &err), 0);
}

static void test_closure__origin_runpath(void **state)
{
    (void)state;
    if (sizeof(void *) != 8)
        skip();
    char *dir = unit_tmpdir();
    _cleanup_free_ char *bin = dlc_path_join(dir, "app/bin");
    _cleanup_free_ char *lib = dlc_path_join(dir, "app/lib");
    mkdirs(bin);
    mkdirs(lib);
    _cleanup_free_ char *main_path = dlc_path_join(bin, "main");
    _cleanup_free_ char *x_path = dlc_path_join(lib, "libx.so.1");
    static const char *const main_needs[] = {"libx.so.1", NULL};
    write_elf(main_path, main_needs, "$ORIGIN/../lib");
    write_elf(x_path, NULL, NULL);

    struct dlc_error *err = NULL;
    _cleanup_(bresolver_freep) struct bresolver *r = NULL;
    _cleanup_(btree_freep) struct btree *t = btree_new();
    assert_int_equal(bresolver_new(NULL, &r, &err), 0);
    assert_int_equal(
            bclosure_add_file(r, t, main_path, "opt/tool/bin/main", -1, true, "copy[0]", &err), 0);
    /* $ORIGIN is where the binary is in the image, not on the host */
    const struct bnode *x = btree_get(t, "opt/tool/lib/libx.so.1");
    assert_non_null(x);
    assert_int_equal(x->type, BN_FILE);
    assert_string_equal(x->src, x_path);
    assert_int_equal(btree_get(t, "opt/tool/bin/main")->mode, 0755);
    assert_int_equal(x->mode, 0755);
    unit_tmpdir_free(dir);
}

static void test_closure__missing_library(void **state)
{
    (void)state;
    if (sizeof(void *) != 8)
        skip();
    char *dir = unit_tmpdir();
    _cleanup_free_ char *p = dlc_path_join(dir, "tool");
    static const char *const needs[] = {"libdoesnotexist-dlc.so.9", NULL};
    write_elf(p, needs, NULL);
    struct dlc_error *err = NULL;
    _cleanup_(bresolver_freep) struct bresolver *r = NULL;
    _cleanup_(btree_freep) struct btree *t = btree_new();
    assert_int_equal(bresolver_new(NULL, &r, &err), 0);
    _cleanup_free_ char *want =
            xasprintf("variants.cpu.copy[0]: %s needs libdoesnotexist-dlc.so.9, "
                      "which is in neither /etc/ld.so.cache nor /lib/",
                      p);
    assert_dlc_error(
            bclosure_add_file(r, t, p, "usr/bin/tool", -1, true, "variants.cpu.copy[0]", &err),
            &err, ENOENT, want);
    /* without the closure the file alone is fine */
    assert_int_equal(bclosure_add_file(r, t, p, "usr/bin/tool", -1, false, "x", &err), 0);
    _cleanup_free_ char *nope = dlc_path_join(dir, "nope");
    assert_dlc_error(bclosure_add_file(r, t, nope, "usr/bin/nope", -1, true, "copy[3]", &err), &err,
                     ENOENT, "copy[3]: 'src' ");
    unit_tmpdir_free(dir);
}

/* Walks the tree like a path lookup inside the image: symlinks followed. */
static const struct bnode *lookup(const struct btree *t, const char *abs)
{
    _cleanup_free_ char *p = bpath_normalize_clamped(abs);
    for (int i = 0; i < 40; i++) {
        char *slash = p;
        const struct bnode *n = NULL;
        for (;;) {
            slash = strchr(slash, '/');
            if (slash)
                *slash = '\0';
            n = btree_get(t, p);
            if (n == NULL)
                return NULL;
            if (n->type == BN_SYMLINK)
                break;
            if (slash == NULL)
                return n;
            *slash++ = '/';
        }
        _cleanup_free_ char *dir = dlc_path_dirname(p);
        _cleanup_free_ char *j =
                n->link[0] == '/'
                        ? xasprintf("%s%s%s", n->link, slash ? "/" : "", slash ? slash + 1 : "")
                        : xasprintf("%s/%s%s%s", dir, n->link, slash ? "/" : "",
                                    slash ? slash + 1 : "");
        free(p);
        p = bpath_normalize_clamped(j);
    }
    return NULL;
}

/* This test binary's own closure, from the host: what the image's loader will need. */
static void test_closure__host_binary(void **state)
{
    (void)state;
    _cleanup_free_ char *self = realpath("/proc/self/exe", NULL);
    struct dlc_error *err = NULL;
    _cleanup_(bresolver_freep) struct bresolver *r = NULL;
    _cleanup_(btree_freep) struct btree *t = btree_new();
    _cleanup_(dlc_elf_freep) struct dlc_elf *me = NULL;
    assert_int_equal(dlc_elf_read(self, &me, &err), 0);
    assert_int_equal(bresolver_new(NULL, &r, &err), 0);
    assert_int_equal(bclosure_add_file(r, t, self, "usr/bin/t", -1, true, "copy[0]", &err), 0);
    /* the interpreter, reachable at the path the binary names */
    const struct bnode *interp = lookup(t, me->interp);
    assert_non_null(interp);
    assert_int_equal(interp->type, BN_FILE);
    _cleanup_free_ char *interp_real = realpath(me->interp, NULL);
    assert_string_equal(interp->src, interp_real);
    /* every DT_NEEDED in a directory the loader searches without a cache */
    for (size_t i = 0; me->needed[i]; i++) {
        bool found = false;
        static const char *const dirs[] = {"/lib/x86_64-linux-gnu",
                                           "/usr/lib/x86_64-linux-gnu",
                                           "/lib/aarch64-linux-gnu",
                                           "/usr/lib/aarch64-linux-gnu",
                                           "/lib",
                                           "/usr/lib",
                                           "/lib64",
                                           "/usr/lib64"};
        for (size_t d = 0; d < DLC_ARRAY_SIZE(dirs) && !found; d++) {
            _cleanup_free_ char *cand = xasprintf("%s/%s", dirs[d], me->needed[i]);
            const struct bnode *n = lookup(t, cand);
            found = n != NULL && n->type == BN_FILE;
        }
        if (!found)
            fail_msg("%s is not in the closure", me->needed[i]);
    }
}

static void test_closure__spec(void **state)
{
    (void)state;
    char *dir = unit_tmpdir();
    _cleanup_free_ char *src = dlc_path_join(dir, "model");
    _cleanup_free_ char *sub = dlc_path_join(src, "sub");
    mkdirs(sub);
    struct dlc_error *err = NULL;
    _cleanup_free_ char *f1 = dlc_path_join(src, "model.json");
    _cleanup_free_ char *f2 = dlc_path_join(sub, "run.sh");
    _cleanup_free_ char *l1 = dlc_path_join(src, "link");
    assert_int_equal(dlc_write_file_atomic(f1, "{}", 2, 0600, &err), 0);
    assert_int_equal(dlc_write_file_atomic(f2, "#!/bin/sh\n", 10, 0700, &err), 0);
    assert_int_equal(symlink("model.json", l1), 0);

    struct bcopy copies[] = {
            {.kind = BCOPY_SRC,
             .where = (char *)"copy[0]",
             .src = src,
             .dst = (char *)"opt/ml/code",
             .mode = -1},
            {.kind = BCOPY_CONTENT,
             .where = (char *)"copy[1]",
             .dst = (char *)"etc/motd",
             .content = (char *)"hi\n",
             .content_len = 3,
             .mode = -1},
            {.kind = BCOPY_WHITEOUT, .where = (char *)"copy[2]", .dst = (char *)"old", .mode = -1},
    };
    struct blayer_spec spec = {.present = true,
                               .where = (char *)"",
                               .copies = copies,
                               .n_copies = DLC_ARRAY_SIZE(copies)};
    _cleanup_(bresolver_freep) struct bresolver *r = NULL;
    _cleanup_(btree_freep) struct btree *t = btree_new();
    assert_int_equal(bresolver_new(NULL, &r, &err), 0);
    assert_int_equal(bspec_add(r, t, &spec, &err), 0);
    assert_int_equal(btree_get(t, "opt/ml/code/model.json")->mode, 0644); /* normalised */
    assert_int_equal(btree_get(t, "opt/ml/code/sub/run.sh")->mode, 0755);
    assert_string_equal(btree_get(t, "opt/ml/code/link")->link, "model.json");
    assert_int_equal(btree_get(t, "opt/ml/code/sub")->type, BN_DIR);
    assert_string_equal(btree_get(t, "etc/motd")->data, "hi\n");
    assert_int_equal(btree_get(t, "old")->type, BN_WHITEOUT);

    copies[0].mode = 0700; /* a mode for a directory: refused */
    _cleanup_(btree_freep) struct btree *t2 = btree_new();
    assert_dlc_error(bspec_add(r, t2, &spec, &err), &err, EINVAL,
                     "copy[0]: 'mode' applies to a file");
    unit_tmpdir_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_closure__origin_runpath),
            cmocka_unit_test(test_closure__missing_library),
            cmocka_unit_test(test_closure__host_binary),
            cmocka_unit_test(test_closure__spec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
