/* CDI: names, strict spec validation, edits applied to the plan, spec directory priority,
 * and `dlc cdi generate` read back by the same loader. */
#include "gpu_fixture.h"

static char *root; /* fake driver root: nodes and libraries the specs point at */
static char *dirs; /* two spec directories: dirs/etc (low priority), dirs/run */

static int setup(void **state)
{
    (void)state;
    root = fx_root();
    dirs = unit_tmpdir();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unit_tmpdir_free(root);
    unit_tmpdir_free(dirs);
    return 0;
}

/* Empties both spec dirs and points DLC_CDI_SPEC_DIRS at them. */
static int reset_dirs(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    _cleanup_free_ char *etc = dlc_path_join(dirs, "etc");
    _cleanup_free_ char *run = dlc_path_join(dirs, "run");
    if (dlc_rm_rf(etc, &err) < 0 || dlc_rm_rf(run, &err) < 0)
        return -1;
    fx_mkdir(dirs, "etc");
    fx_mkdir(dirs, "run");
    _cleanup_free_ char *env = xasprintf("%s:%s", etc, run);
    setenv("DLC_CDI_SPEC_DIRS", env, 1);
    return 0;
}

/* Writes a spec; %R in text becomes the fake root. */
static void spec(const char *rel, const char *text)
{
    _cleanup_strbuf_ struct dlc_strbuf sb = DLC_STRBUF_INIT;
    for (const char *p = text; *p; p++) {
        if (p[0] == '%' && p[1] == 'R') {
            dlc_strbuf_append(&sb, root);
            p++;
        } else {
            dlc_strbuf_appendc(&sb, *p);
        }
    }
    fx_write(dirs, rel, dlc_strbuf_str(&sb));
}

static int build(struct gpu_plan *p, const char *name, struct dlc_error **err)
{
    char *devices[] = {(char *)name, NULL};
    struct runner_gpu_request req = {.devices = devices, .driver_root = root};
    *p = (struct gpu_plan){0};
    return gpu_plan_build(p, &req, err);
}

static const char vendor_spec[] =
        "{\"cdiVersion\":\"0.6.0\",\"kind\":\"vendor.com/gpu\","
        "\"annotations\":{\"a\":\"b\"},"
        "\"containerEdits\":{\"env\":[\"VENDOR=1\"],"
        "  \"deviceNodes\":[{\"path\":\"/dev/nvidiactl\",\"hostPath\":\"%R/dev/nvidiactl\"}],"
        "  \"mounts\":[{\"hostPath\":\"%R" FX_LIBDIR "/libcuda.so.999.88.77\","
        "    \"containerPath\":\"/usr/lib/x86_64-linux-gnu/libcuda.so.999.88.77\","
        "    \"options\":[\"ro\",\"nosuid\",\"nodev\",\"bind\"]}],"
        "  \"hooks\":[{\"hookName\":\"createContainer\",\"path\":\"/usr/bin/nvidia-cdi-hook\","
        "    \"args\":[\"nvidia-cdi-hook\",\"create-symlinks\",\"--link\","
        "      \"libcuda.so.999.88.77::/usr/lib/x86_64-linux-gnu/libcuda.so.1\"]},"
        "   {\"hookName\":\"createContainer\",\"path\":\"/usr/bin/nvidia-cdi-hook\","
        "    \"args\":[\"nvidia-cdi-hook\",\"update-ldcache\",\"--folder\","
        "      \"/usr/lib/x86_64-linux-gnu\"]}]},"
        "\"devices\":["
        " {\"name\":\"0\",\"containerEdits\":{\"deviceNodes\":["
        "   {\"path\":\"/dev/nvidia0\",\"hostPath\":\"%R/dev/nvidia0\"}]}},"
        " {\"name\":\"ro1\",\"containerEdits\":{\"deviceNodes\":["
        "   {\"path\":\"/dev/nvidia1\",\"hostPath\":\"%R/dev/nvidia1\",\"permissions\":\"m\"}]}}"
        "]}";

static void test_cdi__names(void **state)
{
    (void)state;
    assert_true(cdi_is_qualified_name("nvidia.com/gpu=0"));
    assert_true(cdi_is_qualified_name("vendor.com/class=GPU-abc:1"));
    assert_true(cdi_is_qualified_name("dlc.local/gpu=all"));
    assert_false(cdi_is_qualified_name("/dev/nvidia0"));
    assert_false(cdi_is_qualified_name("/dev/x=y"));
    assert_false(cdi_is_qualified_name("nvidia.com/gpu"));
    assert_false(cdi_is_qualified_name("gpu=0"));
    assert_false(cdi_is_qualified_name("nvidia.com/gpu="));
    assert_false(cdi_is_qualified_name("nvidia.com/gpu=-x"));
    assert_false(cdi_is_qualified_name("nvidia.com/g/pu=0"));
}

static void test_cdi__edits_applied(void **state)
{
    (void)state;
    spec("run/vendor.json", vendor_spec);
    struct gpu_plan p;
    struct dlc_error *err = NULL;
    assert_int_equal(build(&p, "vendor.com/gpu=0", &err), 0);
    const struct runner_device *ctl = fx_plan_device(&p, "/dev/nvidiactl");
    assert_non_null(ctl);
    assert_int_equal(ctl->major, 195);
    assert_int_equal(ctl->minor, 255);
    assert_non_null(fx_plan_device(&p, "/dev/nvidia0"));
    assert_null(fx_plan_device(&p, "/dev/nvidia1"));
    assert_string_equal(fx_plan_env(&p, "VENDOR"), "1");
    const struct runner_bind *b =
            fx_plan_bind(&p, "/usr/lib/x86_64-linux-gnu/libcuda.so.999.88.77");
    assert_non_null(b);
    assert_true(b->readonly);
    /* create-symlinks: the same file at the link; update-ldcache: LD_LIBRARY_PATH. */
    assert_non_null(fx_plan_bind(&p, "/usr/lib/x86_64-linux-gnu/libcuda.so.1"));
    assert_string_equal(fx_plan_env(&p, "LD_LIBRARY_PATH"), "/usr/lib/x86_64-linux-gnu");
    assert_int_equal(p.num_gpus, 1);
    gpu_plan_release(&p);
}

static void test_cdi__permissions_reach_the_device_cgroup(void **state)
{
    (void)state;
    spec("run/vendor.json", vendor_spec);
    struct gpu_plan p = {0};
    struct dlc_error *err = NULL;
    _cleanup_strv_ char **d = cdi_spec_dirs();
    struct cdi_registry *r = NULL;
    assert_int_equal(cdi_registry_load(d, &r, &err), 0);
    char *names[] = {(char *)"vendor.com/gpu=0", (char *)"vendor.com/gpu=ro1", NULL};
    assert_int_equal(cdi_plan(&p, r, names, &err), 0);
    const struct runner_device *one = fx_plan_device(&p, "/dev/nvidia1");
    assert_non_null(one);
    assert_string_equal(one->access, "m");
    assert_string_equal(fx_plan_device(&p, "/dev/nvidia0")->access, "");
    /* spec-level edits once for the two devices: one VENDOR=1 */
    assert_int_equal(dlc_strv_len(p.env), 1);
    gpu_plan_release(&p);
    cdi_registry_free(r);
}

static void test_cdi__unknown_device(void **state)
{
    (void)state;
    spec("run/vendor.json", vendor_spec);
    struct gpu_plan p;
    struct dlc_error *err = NULL;
    assert_dlc_error(build(&p, "vendor.com/gpu=7", &err), &err, ENOENT,
                     "unknown CDI device 'vendor.com/gpu=7' (specs read from ");
    gpu_plan_release(&p);
    assert_dlc_error(build(&p, "other.com/gpu=0", &err), &err, ENOENT,
                     "unknown CDI device 'other.com/gpu=0'");
    gpu_plan_release(&p);
}

static void test_cdi__invalid_specs_are_named(void **state)
{
    (void)state;
    struct gpu_plan p;
    struct dlc_error *err = NULL;
    spec("etc/bad.json", "{\"cdiVersion\":\"0.5.0\",\"kind\":\"bad.com/x\",\"devices\":"
                         "[{\"name\":\"a\",\"containerEdits\":{}}],\"surprise\":1}");
    assert_dlc_error(build(&p, "bad.com/x=a", &err), &err, ENOENT, "unknown key 'surprise'");
    gpu_plan_release(&p);
    /* hostPath needs 0.5.0 */
    spec("etc/bad.json", "{\"cdiVersion\":\"0.3.0\",\"kind\":\"bad.com/x\",\"devices\":"
                         "[{\"name\":\"a\",\"containerEdits\":{\"deviceNodes\":"
                         "[{\"path\":\"/dev/x\",\"hostPath\":\"/dev/null\"}]}}]}");
    assert_dlc_error(build(&p, "bad.com/x=a", &err), &err, ENOENT,
                     "cdiVersion 0.3.0, but its fields need 0.5.0");
    gpu_plan_release(&p);
    spec("etc/bad.json", "{\"cdiVersion\":\"9.9.9\",\"kind\":\"bad.com/x\",\"devices\":[]}");
    assert_dlc_error(build(&p, "bad.com/x=a", &err), &err, ENOENT,
                     "unsupported cdiVersion '9.9.9'");
    gpu_plan_release(&p);
    spec("etc/bad.json", "{\"cdiVersion\":\"0.5.0\",\"kind\":\"bad.com/x\",");
    assert_dlc_error(build(&p, "bad.com/x=a", &err), &err, ENOENT, "bad.json");
    gpu_plan_release(&p);
    spec("etc/bad.yaml", "cdiVersion: 0.5.0\n");
    _cleanup_strv_ char **d = cdi_spec_dirs();
    struct cdi_registry *r = NULL;
    assert_int_equal(cdi_registry_load(d, &r, &err), 0);
    bool yaml = false;
    for (char **q = cdi_registry_problems(r); q && *q; q++)
        yaml |= strstr(*q, "bad.yaml: YAML specs are not supported") != NULL;
    assert_true(yaml);
    cdi_registry_free(r);
}

static void test_cdi__host_paths_are_checked(void **state)
{
    (void)state;
    spec("etc/m.json", "{\"cdiVersion\":\"0.7.0\",\"kind\":\"m.com/x\",\"devices\":"
                       "[{\"name\":\"a\",\"containerEdits\":{\"mounts\":[{\"hostPath\":"
                       "\"/nonexistent/libstale.so\",\"containerPath\":\"/lib/x.so\"}]}},"
                       " {\"name\":\"n\",\"containerEdits\":{\"deviceNodes\":"
                       "   [{\"path\":\"/dev/renderD129\"}]}},"
                       " {\"name\":\"g\",\"containerEdits\":{\"additionalGids\":[44]}}]}");
    struct gpu_plan p;
    struct dlc_error *err = NULL;
    assert_dlc_error(build(&p, "m.com/x=a", &err), &err, ENOENT,
                     "/etc/m.json): mount /lib/x.so: host path /nonexistent/libstale.so "
                     "does not exist");
    gpu_plan_release(&p);
    assert_dlc_error(build(&p, "m.com/x=n", &err), &err, ENOENT, "CDI host device /dev/renderD129");
    gpu_plan_release(&p);
    assert_dlc_error(build(&p, "m.com/x=g", &err), &err, EINVAL, "'additionalGids'");
    gpu_plan_release(&p);
}

static void test_cdi__priority_and_conflicts(void **state)
{
    (void)state;
    static const char one[] = "{\"cdiVersion\":\"0.5.0\",\"kind\":\"p.com/x\",\"devices\":"
                              "[{\"name\":\"a\",\"containerEdits\":{\"env\":[\"WHO=%s\"]}}]}";
    _cleanup_free_ char *low = xasprintf(one, "etc");
    _cleanup_free_ char *high = xasprintf(one, "run");
    spec("etc/p.json", low);
    spec("run/p.json", high);
    struct gpu_plan p;
    struct dlc_error *err = NULL;
    assert_int_equal(build(&p, "p.com/x=a", &err), 0);
    assert_string_equal(fx_plan_env(&p, "WHO"), "run"); /* /var/run/cdi wins */
    gpu_plan_release(&p);
    spec("run/p2.json", high);
    assert_dlc_error(build(&p, "p.com/x=a", &err), &err, EINVAL, "is defined by both");
    gpu_plan_release(&p);
}

/* dlc cdi generate on the fake root, read back: every GPU by index and UUID, the usable
 * ICD, "all" — and "all" passes what --gpus all passes. */
static void test_cdi__generate_round_trip(void **state)
{
    (void)state;
    struct gpu_host *h = NULL;
    struct dlc_error *err = NULL;
    assert_int_equal(gpu_host_discover(root, &h, &err), 0);
    _cleanup_free_ char *json = NULL;
    assert_int_equal(cdi_generate(h, "dlc.local/gpu", NULL, &json, &err), 0);
    gpu_host_free(h);
    fx_write(dirs, "run/dlc.json", json);
    _cleanup_strv_ char **d = cdi_spec_dirs();
    struct cdi_registry *r = NULL;
    assert_int_equal(cdi_registry_load(d, &r, &err), 0);
    assert_null(cdi_registry_problems(r));
    const char **names = NULL, **files = NULL;
    size_t n = cdi_registry_devices(r, &names, &files);
    static const char *const want[] = {
            "dlc.local/gpu=0",           "dlc.local/gpu=GPU-aaaaaaaa-0000-0000-0000-000000000000",
            "dlc.local/gpu=1",           "dlc.local/gpu=GPU-bbbbbbbb-0000-0000-0000-000000000001",
            "dlc.local/gpu=opencl-fake", "dlc.local/gpu=all"};
    assert_int_equal(n, DLC_ARRAY_SIZE(want));
    for (size_t i = 0; i < n; i++)
        assert_string_equal(names[i], want[i]);
    cdi_registry_free(r);

    struct gpu_plan viacdi, native;
    assert_int_equal(build(&viacdi, "dlc.local/gpu=all", &err), 0);
    struct runner_gpu_request req = {.gpus = "all", .driver_root = root};
    native = (struct gpu_plan){0};
    assert_int_equal(gpu_plan_build(&native, &req, &err), 0);
    assert_int_equal(viacdi.n_devices, native.n_devices);
    for (size_t i = 0; i < native.n_devices; i++)
        assert_non_null(fx_plan_device(&viacdi, native.devices[i].path));
    for (size_t i = 0; i < native.n_binds; i++)
        assert_non_null(fx_plan_bind(&viacdi, native.binds[i].destination));
    assert_non_null(fx_plan_bind(&viacdi, "/etc/OpenCL/vendors/fake.icd"));
    assert_non_null(fx_plan_bind(&viacdi, "/etc/OpenCL/vendors/nvidia.icd"));
    assert_string_equal(fx_plan_env(&viacdi, "LD_LIBRARY_PATH"), GPU_LIB_DIR);
    assert_int_equal(viacdi.num_gpus, 2);
    gpu_plan_release(&viacdi);
    gpu_plan_release(&native);
}

static void test_cdi__generate_bad_kind_and_empty_host(void **state)
{
    (void)state;
    struct gpu_host *h = NULL;
    struct dlc_error *err = NULL;
    assert_int_equal(gpu_host_discover(root, &h, &err), 0);
    char *json = NULL;
    assert_dlc_error(cdi_generate(h, "nokind", NULL, &json, &err), &err, EINVAL,
                     "invalid CDI kind 'nokind'");
    gpu_host_free(h);
    _cleanup_(fx_tmpdir_freep) char *empty = unit_tmpdir();
    assert_int_equal(gpu_host_discover(empty, &h, &err), 0);
    assert_dlc_error(cdi_generate(h, "dlc.local/gpu", NULL, &json, &err), &err, ENODEV,
                     "no GPU and no usable OpenCL ICD");
    gpu_host_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_cdi__names),
            cmocka_unit_test_setup(test_cdi__edits_applied, reset_dirs),
            cmocka_unit_test_setup(test_cdi__permissions_reach_the_device_cgroup, reset_dirs),
            cmocka_unit_test_setup(test_cdi__unknown_device, reset_dirs),
            cmocka_unit_test_setup(test_cdi__invalid_specs_are_named, reset_dirs),
            cmocka_unit_test_setup(test_cdi__host_paths_are_checked, reset_dirs),
            cmocka_unit_test_setup(test_cdi__priority_and_conflicts, reset_dirs),
            cmocka_unit_test_setup(test_cdi__generate_round_trip, reset_dirs),
            cmocka_unit_test_setup(test_cdi__generate_bad_kind_and_empty_host, reset_dirs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
