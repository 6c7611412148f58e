/* GPU passthrough plans on a fake driver root (gpu-passthrough.md §4.1): what --gpus and
 * --device put into a container, computed without a GPU. */
#include "gpu_fixture.h"

static char *root;

static int setup(void **state)
{
    (void)state;
    root = fx_root();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unit_tmpdir_free(root);
    return 0;
}

static int plan(struct gpu_plan *p, const char *gpus, const char *device, struct dlc_error **err)
{
    char *devices[] = {(char *)device, NULL};
    struct runner_gpu_request req = {
            .gpus = gpus, .devices = device ? devices : NULL, .driver_root = root};
    *p = (struct gpu_plan){0};
    return gpu_plan_build(p, &req, err);
}

static void assert_node(const struct gpu_plan *p, const char *path, unsigned major, unsigned minor)
{
    const struct runner_device *d = fx_plan_device(p, path);
    if (d == NULL) {
        fail_msg("no device %s in the plan", path);
        return;
    }
    assert_int_equal(d->type, 'c');
    assert_int_equal(d->major, major);
    assert_int_equal(d->minor, minor);
    _cleanup_free_ char *host = dlc_path_join(root, path);
    assert_string_equal(d->host_path, host);
}

static void test_gpu__select_0_yields_ctl_and_nvidia0_only(void **state)
{
    (void)state;
    struct gpu_plan p;
    struct dlc_error *err = NULL;
    assert_int_equal(plan(&p, "0", NULL, &err), 0);
    assert_node(&p, "/dev/nvidiactl", 195, 255);
    assert_node(&p, "/dev/nvidia0", 195, 0); /* bus 0000:3b:00.0 sorts first */
    assert_null(fx_plan_device(&p, "/dev/nvidia1"));
    assert_int_equal(p.num_gpus, 1);
    gpu_plan_release(&p);
}

static void test_gpu__uvm_major_from_proc_devices(void **state)
{
    (void)state;
    struct gpu_plan p;
    struct dlc_error *err = NULL;
    assert_int_equal(plan(&p, "0", NULL, &err), 0);
    assert_node(&p, "/dev/nvidia-uvm", 235, 0);
    assert_node(&p, "/dev/nvidia-uvm-tools", 235, 1);
    gpu_plan_release(&p);

    /* Without nvidia-uvm loaded: no uvm nodes, and no failure. */
    fx_write(root, "/proc/devices", "Character devices:\n195 nvidia\n\nBlock devices:\n");
    assert_int_equal(plan(&p, "0", NULL, &err), 0);
    assert_null(fx_plan_device(&p, "/dev/nvidia-uvm"));
    gpu_plan_release(&p);
    fx_write(root, "/proc/devices", fx_proc_devices);
}

static void test_gpu__libraries_match_the_driver_version(void **state)
{
    (void)state;
    struct gpu_plan p;
    struct dlc_error *err = NULL;
    assert_int_equal(plan(&p, "0", NULL, &err), 0);
    static const char *const want[] = {"libcuda.so.1", "libcuda.so.999.88.77", "libcuda.so",
                                       "libnvidia-ml.so.1", "libnvidia-opencl.so.1"};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(want); i++) {
        _cleanup_free_ char *dst = dlc_path_join(GPU_LIB_DIR, want[i]);
        const struct runner_bind *b = fx_plan_bind(&p, dst);
        if (b == NULL) {
            fail_msg("%s is not bound", dst);
            return;
        }
        assert_true(dlc_endswith(b->source, ".so.999.88.77"));
    }
    /* libnvidia-cfg.so.999.00.00 is another driver's: skipped. */
    assert_null(fx_plan_bind(&p, GPU_LIB_DIR "/libnvidia-cfg.so.1"));
    assert_non_null(fx_plan_bind(&p, "/usr/bin/nvidia-smi"));
    /* Every mount is read-only (the runner adds nosuid,nodev to all binds). */
    for (size_t i = 0; i < p.n_binds; i++)
        assert_true(p.binds[i].readonly);
    gpu_plan_release(&p);
}

static void test_gpu__opencl_icds_with_closure_and_file(void **state)
{
    (void)state;
    struct gpu_plan p;
    struct dlc_error *err = NULL;
    assert_int_equal(plan(&p, "0", NULL, &err), 0);
    const struct runner_file *nv = fx_plan_file(&p, "/etc/OpenCL/vendors/nvidia.icd");
    assert_non_null(nv);
    assert_string_equal(nv->content, GPU_LIB_DIR "/libnvidia-opencl.so.1\n");
    const struct runner_file *fake = fx_plan_file(&p, "/etc/OpenCL/vendors/fake.icd");
    assert_non_null(fake);
    assert_string_equal(fake->content, GPU_LIB_DIR "/libfakecl.so.1.4.0\n");
    assert_null(fx_plan_file(&p, "/etc/OpenCL/vendors/broken.icd"));
    assert_non_null(fx_plan_bind(&p, GPU_LIB_DIR "/libfakecl.so.1"));
    assert_non_null(fx_plan_bind(&p, GPU_LIB_DIR "/libfakecl.so.1.4.0"));
    const struct runner_bind *dep = fx_plan_bind(&p, GPU_LIB_DIR "/libfakedep.so.2");
    assert_non_null(dep);
    assert_true(dlc_endswith(dep->source, FX_LIBDIR "/libfakedep.so.2.0.0"));
    assert_null(fx_plan_bind(&p, GPU_LIB_DIR "/libc.so.6"));
    assert_non_null(fx_plan_bind(&p, GPU_LIB_DIR "/fakecl"));
    assert_non_null(fx_plan_bind(&p, "/usr/share/fakecl"));
    assert_string_equal(fx_plan_env(&p, "LD_LIBRARY_PATH"), GPU_LIB_DIR);
    gpu_plan_release(&p);
}

static void test_gpu__select_by_uuid_bus_id_and_all(void **state)
{
    (void)state;
    struct gpu_plan p;
    struct dlc_error *err = NULL;
    static const char *const second[] = {"1", "gpu-bbbbbbbb-0000-0000-0000-000000000001",
                                         "0000:86:00.0", "86:00.0", "device=1"};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(second); i++) {
        assert_int_equal(plan(&p, second[i], NULL, &err), 0);
        assert_node(&p, "/dev/nvidia1", 195, 1);
        assert_null(fx_plan_device(&p, "/dev/nvidia0"));
        gpu_plan_release(&p);
    }
    assert_int_equal(plan(&p, "all", NULL, &err), 0);
    assert_node(&p, "/dev/nvidia0", 195, 0);
    assert_node(&p, "/dev/nvidia1", 195, 1);
    assert_int_equal(p.num_gpus, 2);
    gpu_plan_release(&p);
    assert_int_equal(plan(&p, "0,1", NULL, &err), 0);
    assert_int_equal(p.num_gpus, 2);
    gpu_plan_release(&p);
}

static void test_gpu__unknown_selector_is_an_error(void **state)
{
    (void)state;
    struct gpu_plan p;
    struct dlc_error *err = NULL;
    assert_dlc_error(plan(&p, "2", NULL, &err), &err, EINVAL,
                     "--gpus 2: unknown GPU '2': this host has 2 GPUs");
    gpu_plan_release(&p);
    assert_dlc_error(plan(&p, "0,GPU-nope", NULL, &err), &err, EINVAL, "unknown GPU 'GPU-nope'");
    gpu_plan_release(&p);
    assert_dlc_error(plan(&p, "", NULL, &err), &err, EINVAL, "empty GPU list");
    gpu_plan_release(&p);
}

static void test_gpu__none_injects_nothing(void **state)
{
    (void)state;
    struct gpu_plan p;
    struct dlc_error *err = NULL;
    assert_int_equal(plan(&p, "none", NULL, &err), 0);
    assert_int_equal(p.n_devices + p.n_binds + p.n_files, 0);
    assert_null(p.env);
    assert_int_equal(p.num_gpus, 0);
    gpu_plan_release(&p);
}

static void test_gpu__wrong_node_is_refused(void **state)
{
    (void)state;
    struct gpu_plan p;
    struct dlc_error *err = NULL;
    fx_node(root, "/dev/nvidia0", 'c', 195, 7);
    assert_dlc_error(plan(&p, "0", NULL, &err), &err, EINVAL, "invalid device node " /* path */);
    gpu_plan_release(&p);
    fx_write(root, "/dev/nvidia0", "not a node");
    assert_dlc_error(plan(&p, "0", NULL, &err), &err, EINVAL, "is not a device node");
    gpu_plan_release(&p);
    fx_node(root, "/dev/nvidia0", 'c', 195, 0);
}

static void test_gpu__missing_libcuda_is_an_error(void **state)
{
    (void)state;
    _cleanup_free_ char *lib = dlc_path_join(root, FX_LIBDIR "/libcuda.so.999.88.77");
    _cleanup_free_ char *moved = dlc_path_join(root, "/libcuda.moved");
    assert_int_equal(rename(lib, moved), 0);
    struct gpu_plan p;
    struct dlc_error *err = NULL;
    assert_dlc_error(plan(&p, "0", NULL, &err), &err, ENOENT, "libcuda.so.999.88.77 is not in");
    gpu_plan_release(&p);
    assert_int_equal(rename(moved, lib), 0);
}

static void test_gpu__device_paths(void **state)
{
    (void)state;
    struct gpu_plan p;
    struct dlc_error *err = NULL;
    assert_int_equal(plan(&p, NULL, "/dev/nvidia1", &err), 0);
    assert_node(&p, "/dev/nvidia1", 195, 1);
    assert_int_equal(p.n_devices, 1);
    assert_int_equal(p.n_binds, 0);
    assert_int_equal(p.num_gpus, 1);
    gpu_plan_release(&p);

    assert_int_equal(plan(&p, NULL, "/dev/nvidia1:/dev/gpu", &err), 0);
    assert_non_null(fx_plan_device(&p, "/dev/gpu"));
    gpu_plan_release(&p);

    fx_node(root, "/dev/dri/renderD128", 'c', 226, 128);
    fx_node(root, "/dev/dri/card0", 'c', 226, 0);
    assert_int_equal(plan(&p, NULL, "/dev/dri", &err), 0);
    assert_int_equal(p.n_devices, 2);
    assert_non_null(fx_plan_device(&p, "/dev/dri/renderD128"));
    gpu_plan_release(&p);

    assert_dlc_error(plan(&p, NULL, "/dev/nope", &err), &err, ENOENT, "--device");
    gpu_plan_release(&p);
    assert_dlc_error(plan(&p, NULL, "/proc/devices", &err), &err, EINVAL, "is not a device node");
    gpu_plan_release(&p);
    assert_dlc_error(plan(&p, NULL, "/dev/nvidia0:/dev/x:r", &err), &err, EINVAL,
                     "only HOST[:CONTAINER]");
    gpu_plan_release(&p);
    assert_dlc_error(plan(&p, NULL, "dev/nvidia0", &err), &err, EINVAL, "must be absolute");
    gpu_plan_release(&p);
}

static void test_gpu__host_discovery(void **state)
{
    (void)state;
    struct gpu_host *h = NULL;
    struct dlc_error *err = NULL;
    assert_int_equal(gpu_host_discover(root, &h, &err), 0);
    assert_string_equal(h->nv_version, "999.88.77");
    assert_int_equal(h->uvm_major, 235);
    assert_int_equal(h->n_gpus, 2);
    assert_string_equal(h->gpus[0].bus_id, "0000:3b:00.0");
    assert_string_equal(h->gpus[0].model, "Tesla T4");
    assert_string_equal(h->gpus[1].uuid, "GPU-bbbbbbbb-0000-0000-0000-000000000001");
    assert_int_equal(h->n_icds, 3); /* broken, fake, nvidia: by name */
    assert_string_equal(h->icds[0].name, "broken");
    assert_non_null(h->icds[0].problem);
    assert_string_equal(h->icds[0].problem, "library libmissing.so.1 not found");
    assert_null(h->icds[1].problem);
    assert_int_equal(h->icds[1].n_libs, 2);
    assert_true(gpu_icd_is_nvidia(&h->icds[2]));
    gpu_host_free(h);
}

static void test_gpu__driver_root_from_env(void **state)
{
    (void)state;
    char *r = NULL;
    struct dlc_error *err = NULL;
    setenv("DLC_DRIVER_ROOT", root, 1);
    assert_int_equal(gpu_driver_root(NULL, &r, &err), 0);
    assert_string_equal(r, root);
    free(r);
    setenv("DLC_DRIVER_ROOT", "relative/dir", 1);
    assert_dlc_error(gpu_driver_root(NULL, &r, &err), &err, EINVAL, "not an absolute path");
    unsetenv("DLC_DRIVER_ROOT");
    assert_int_equal(gpu_driver_root(NULL, &r, &err), 0);
    assert_string_equal(r, "/");
    free(r);
    assert_dlc_error(gpu_driver_root("/nonexistent-driver-root", &r, &err), &err, EINVAL,
                     "not a directory");
}

static void test_gpu__all_with_nothing_is_an_error(void **state)
{
    (void)state;
    _cleanup_(fx_tmpdir_freep) char *empty = unit_tmpdir();
    char *devices[] = {NULL};
    struct runner_gpu_request req = {.gpus = "all", .devices = devices, .driver_root = empty};
    struct gpu_plan p = {0};
    struct dlc_error *err = NULL;
    assert_dlc_error(gpu_plan_build(&p, &req, &err), &err, ENODEV,
                     "--gpus all: no GPU and no usable OpenCL ICD under");
    gpu_plan_release(&p);
}

/* AMD: /dev/kfd plus render nodes; a render node of another vendor (sysfs) is skipped. */
static void test_gpu__amd(void **state)
{
    (void)state;
    _cleanup_(fx_tmpdir_freep) char *amd = unit_tmpdir();
    fx_node(amd, "/dev/kfd", 'c', 510, 0);
    fx_node(amd, "/dev/dri/renderD128", 'c', 226, 128);
    fx_node(amd, "/dev/dri/renderD129", 'c', 226, 129);
    fx_write(amd, "/sys/class/drm/renderD128/device/vendor", "0x1002\n");
    fx_write(amd, "/sys/class/drm/renderD129/device/vendor", "0x10de\n");
    struct runner_gpu_request req = {.gpus = "all", .driver_root = amd};
    struct gpu_plan p = {0};
    struct dlc_error *err = NULL;
    assert_int_equal(gpu_plan_build(&p, &req, &err), 0);
    assert_int_equal(p.n_devices, 2);
    const struct runner_device *kfd = fx_plan_device(&p, "/dev/kfd");
    assert_non_null(kfd);
    assert_int_equal(kfd->major, 510);
    assert_non_null(fx_plan_device(&p, "/dev/dri/renderD128"));
    assert_null(fx_plan_device(&p, "/dev/dri/renderD129"));
    assert_int_equal(p.num_gpus, 1);
    assert_int_equal(p.n_binds, 0); /* ROCm's user space is in the image */
    gpu_plan_release(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_gpu__select_0_yields_ctl_and_nvidia0_only),
            cmocka_unit_test(test_gpu__uvm_major_from_proc_devices),
            cmocka_unit_test(test_gpu__libraries_match_the_driver_version),
            cmocka_unit_test(test_gpu__opencl_icds_with_closure_and_file),
            cmocka_unit_test(test_gpu__select_by_uuid_bus_id_and_all),
            cmocka_unit_test(test_gpu__unknown_selector_is_an_error),
            cmocka_unit_test(test_gpu__none_injects_nothing),
            cmocka_unit_test(test_gpu__wrong_node_is_refused),
            cmocka_unit_test(test_gpu__missing_libcuda_is_an_error),
            cmocka_unit_test(test_gpu__device_paths),
            cmocka_unit_test(test_gpu__host_discovery),
            cmocka_unit_test(test_gpu__driver_root_from_env),
            cmocka_unit_test(test_gpu__all_with_nothing_is_an_error),
            cmocka_unit_test(test_gpu__amd),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
