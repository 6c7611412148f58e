#include <errno.h>
#include <string.h>

#include "unit.h"
#include "../../../builder/src/builder-internal.h"

struct fixture {
    char *dir;
    char *path;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    f->dir = unit_tmpdir();
    f->path = dlc_path_join(f->dir, "def.json");
    _cleanup_free_ char *vf = dlc_path_join(f->dir, "VERSION");
    struct dlc_error *err = NULL;
    if (dlc_write_file_atomic(vf, "2.5.1\n", 6, 0644, &err) < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    unit_tmpdir_free(f->dir);
    free(f->path);
    free(f);
    return 0;
}

static void write_def(const struct fixture *f, const char *json)
{
    struct dlc_error *err = NULL;
    assert_int_equal(dlc_write_file_atomic(f->path, json, strlen(json), 0644, &err), 0);
}

static const char good[] =
        "{\"name\": \"tensor-runtime\", \"version_file\": \"VERSION\", \"os\": \"auto\","
        " \"entrypoint\": [\"/usr/bin/tensor\"], \"cmd\": [\"train\"],"
        " \"env\": [\"PATH=/usr/bin:/bin\", \"LANG=C.UTF-8\"],"
        " \"labels\": {\"a\": \"b\"},"
        " \"tags\": [\"{version}-{device}-{backend}-{os}\", \"{device}\"],"
        " \"base\": {\"libraries\": [\"libc.so.6\"],"
        "           \"busybox\": {\"src\": \"/bin/busybox\", \"applets\": [\"sh\", \"ls\"]},"
        "           \"copy\": [{\"dst\": \"/tmp\", \"dir\": true, \"mode\": \"1777\"},"
        "                      {\"dst\": \"/etc/passwd\", \"content\": "
        "\"root:x:0:0::/:/bin/sh\\n\"},"
        "                      {\"dst\": \"//opt/./ml/../ml/code/\", \"dir\": true}]},"
        " \"variants\": {"
        "   \"cpu\": {\"backend\": \"openblas\","
        "            \"copy\": [{\"src\": \"{build}/runtime/cpu/tensor\", \"dst\": "
        "\"/usr/bin/tensor\","
        "                        \"mode\": \"0755\"}]},"
        "   \"gpu\": {\"device\": \"gpu\", \"backend\": \"opencl\", \"env\": [\"X=1\"],"
        "            \"copy\": [{\"src\": \"model\", \"dst\": \"/opt/ml/code\"},"
        "                       {\"dst\": \"/old\", \"whiteout\": true},"
        "                       {\"dst\": \"/a\", \"opaque\": true},"
        "                       {\"dst\": \"/bin/x\", \"symlink\": \"busybox\"}]}}}";

static void test_definition__valid(void **state)
{
    struct fixture *f = *state;
    write_def(f, good);
    struct dlc_error *err = NULL;
    _cleanup_(bdef_freep) struct bdef *d = NULL;
    assert_int_equal(bdef_load(f->path, "out/b", &d, &err), 0);
    assert_string_equal(d->name, "tensor-runtime");
    assert_string_equal(d->version, "2.5.1");
    assert_string_equal(d->file_name, "def.json");
    assert_string_equal(d->entrypoint[0], "/usr/bin/tensor");
    assert_true(d->has_entrypoint && d->has_cmd);
    assert_string_equal(d->env[1], "LANG=C.UTF-8");
    assert_string_equal(oci_map_get(&d->labels, "a"), "b");
    assert_int_equal(dlc_strv_len(d->tags), 2);
    assert_true(d->base.present);
    assert_string_equal(d->base.libraries[0], "libc.so.6");
    assert_string_equal(d->base.busybox, "/bin/busybox");
    assert_string_equal(d->base.busybox_dst, "bin/busybox");
    assert_int_equal(d->base.copies[0].kind, BCOPY_DIR);
    assert_int_equal(d->base.copies[0].mode, 01777);
    assert_string_equal(d->base.copies[0].dst, "tmp");
    assert_int_equal(d->base.copies[1].kind, BCOPY_CONTENT);
    assert_string_equal(d->base.copies[2].dst, "opt/ml/code");
    assert_int_equal(d->n_variants, 2);
    const struct bvariant *cpu = &d->variants[0], *gpu = &d->variants[1];
    assert_string_equal(cpu->name, "cpu");
    assert_string_equal(cpu->device, "cpu"); /* defaults to the variant's name */
    assert_string_equal(cpu->layer.copies[0].src, "out/b/runtime/cpu/tensor");
    assert_string_equal(cpu->layer.copies[0].where, "variants.cpu.copy[0]");
    assert_true(cpu->layer.copies[0].closure);
    _cleanup_free_ char *model = dlc_path_join(f->dir, "model");
    assert_string_equal(gpu->layer.copies[0].src, model); /* relative to the definition */
    assert_int_equal(gpu->layer.copies[1].kind, BCOPY_WHITEOUT);
    assert_int_equal(gpu->layer.copies[2].kind, BCOPY_OPAQUE);
    assert_string_equal(gpu->layer.copies[3].link, "busybox");
    assert_string_equal(gpu->env[0], "X=1");
}

struct bad_case {
    const char *json;
    int code;
    const char *msg;
};

static void test_definition__errors(void **state)
{
    struct fixture *f = *state;
    static const struct bad_case cases[] = {
            {"{\"name\": \"x\", \"version\": \"1\", \"flavor\": 1, \"copy\": []}", EINVAL,
             "def.json: definition: unknown key 'flavor'"},
            {"{\"name\": \"x\", \"version\": \"1\", \"variants\": {\"cpu\": {\"fo\": 1}}}", EINVAL,
             "def.json: variants.cpu: unknown key 'fo'"},
            {"{\"name\": \"x\", \"version\": \"1\", \"copy\": [{\"source\": \"a\", \"dst\": "
             "\"/a\"}]}",
             EINVAL, "def.json: copy[0]: unknown key 'source'"},
            {"{\"name\": \"x\", \"version\": \"1\", \"copy\": [{\"src\": \"a\", \"content\": \"b\","
             " \"dst\": \"/a\"}]}",
             EINVAL,
             "copy[0]: needs exactly one of 'src', 'content', 'dir', 'symlink', 'whiteout', "
             "'opaque'"},
            {"{\"name\": \"x\", \"version\": \"1\", \"copy\": [{\"src\": \"a\", \"dst\": \"a\"}]}",
             EINVAL, "copy[0]: 'dst' 'a' must be an absolute path"},
            {"{\"name\": \"x\", \"version\": \"1\", \"copy\": [{\"src\": \"a\", \"dst\": "
             "\"/../..\"}]}",
             EINVAL, "copy[0]: 'dst': path '/../..' escapes its root"},
            {"{\"name\": \"x\", \"version\": \"1\", \"copy\": [{\"src\": \"a\", \"dst\": "
             "\"/.wh.a\"}]}",
             EINVAL, "reserved for whiteouts"},
            {"{\"name\": \"x\", \"version\": \"1\", \"tags\": [\"a\", \"{version}-{flavour}\"],"
             " \"copy\": [{\"src\": \"a\", \"dst\": \"/a\"}]}",
             EINVAL, "def.json: tags[1]: unknown field '{flavour}' in '{version}-{flavour}'"},
            {"{\"name\": \"x\", \"version\": \"1\", \"copy\": [{\"dst\": \"/a\", \"dir\": true,"
             " \"mode\": \"999\"}]}",
             EINVAL, "copy[0]: 'mode' must be an octal string like \"0755\""},
            {"{\"name\": \"x\", \"copy\": [{\"dst\": \"/a\", \"dir\": true}]}", EINVAL,
             "definition: needs 'version' or 'version_file'"},
            {"{\"name\": \"x\", \"version_file\": \"NOPE\", \"copy\": []}", ENOENT,
             "definition: 'version_file'"},
            {"{\"name\": \"X\", \"version\": \"1\", \"copy\": []}", EINVAL,
             "definition: 'name' 'X' is not a valid repository name"},
            {"{\"version\": \"1\", \"copy\": []}", EINVAL, "definition: missing required 'name'"},
            {"{\"name\": \"x\", \"version\": \"1\", \"env\": [\"NOEQUALS\"], \"copy\": []}", EINVAL,
             "definition: env[0]: 'NOEQUALS' is not NAME=VALUE"},
            {"{\"name\": \"x\", \"version\": \"1\", \"env\": [\"A=1\", \"A=2\"], \"copy\": []}",
             EINVAL, "definition: env[1]: 'A' is set twice"},
            {"{\"name\": \"x\", \"version\": \"1\", \"copy\": [{\"src\": \"{buidl}/a\","
             " \"dst\": \"/a\"}]}",
             EINVAL, "copy[0]: 'src' '{buidl}/a': unknown placeholder (only {build} is known)"},
            {"{\"name\": \"x\", \"version\": \"1\", \"copy\": [{\"dst\": \"/a\", \"dir\": true}],"
             " \"variants\": {\"cpu\": {}}}",
             EINVAL,
             "top-level 'copy', 'libraries' and 'busybox' are for definitions without "
             "variants"},
            {"{\"name\": \"x\", \"version\": \"1\"}", EINVAL, "definition: no layer"},
            {"{\"name\": \"x\", \"version\": \"1\", \"variants\": {\"Cpu\": {}}}", EINVAL,
             "variants: name 'Cpu' must be lowercase"},
            {"{\"name\": \"x\", \"version\": \"1\", \"busybox\": {\"src\": \"/bin/busybox\","
             " \"applets\": [\"a/b\"]}}",
             EINVAL, "busybox: applets[0]: 'a/b' is not a file name"},
            {"{\"name\": \"x\",", EINVAL, "def.json:1:"},
    };
    for (size_t i = 0; i < DLC_ARRAY_SIZE(cases); i++) {
        write_def(f, cases[i].json);
        struct dlc_error *err = NULL;
        struct bdef *d = NULL;
        int rc = bdef_load(f->path, "build", &d, &err);
        if (rc == 0)
            fail_msg("case %zu loaded: %s", i, cases[i].json);
        assert_dlc_error(rc, &err, cases[i].code, cases[i].msg);
        assert_null(d);
    }
}

static void test_definition__missing_file(void **state)
{
    struct fixture *f = *state;
    _cleanup_free_ char *p = dlc_path_join(f->dir, "nope.json");
    struct dlc_error *err = NULL;
    struct bdef *d = NULL;
    assert_dlc_error(bdef_load(p, "build", &d, &err), &err, ENOENT, "nope.json");
}

static void test_definition__env_merge(void **state)
{
    (void)state;
    char b0[] = "PATH=/bin", b1[] = "A=1", a0[] = "A=2", a1[] = "B=3";
    char *base[] = {b0, b1, NULL};
    char *add[] = {a0, a1, NULL};
    _cleanup_strv_ char **m = benv_merge(base, add);
    assert_int_equal(dlc_strv_len(m), 3);
    assert_string_equal(m[0], "PATH=/bin");
    assert_string_equal(m[1], "A=2");
    assert_string_equal(m[2], "B=3");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_definition__valid, setup, teardown),
            cmocka_unit_test_setup_teardown(test_definition__errors, setup, teardown),
            cmocka_unit_test_setup_teardown(test_definition__missing_file, setup, teardown),
            cmocka_unit_test(test_definition__env_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
