/* The device cgroup against the real kernel (root only; no GPU needed): fake NVIDIA nodes
 * made with mknod (195:N, no driver behind them). A process in the container's cgroup
 * opening an allowed node gets ENXIO (the cgroup let it through, no driver answered); a
 * node that is not allowed, or allowed for mknod only, gets EPERM. Both the v1 allow-list
 * and the v2 eBPF program are exercised when the host has them. */
#include <fcntl.h>
#include <sys/statfs.h>
#include <sys/wait.h>

#include "gpu_fixture.h"

#include "../../../runner/src/runner-internal.h"

#define CGROUP2_MAGIC 0x63677270

static char *tmp;

static int setup(void **state)
{
    (void)state;
    tmp = unit_tmpdir();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unit_tmpdir_free(tmp);
    return 0;
}

static void require_root(void)
{
    if (!runner_privileged())
        skip(); /* mknod and cgroups need real root: covered by the privileged CI run */
}

static char *make_node(const char *name, unsigned major, unsigned minor)
{
    char *p = dlc_path_join(tmp, name);
    unlink(p);
    if (mknod(p, S_IFCHR | 0666, makedev(major, minor)) < 0)
        fail_msg("mknod %s: %s", p, strerror(errno));
    return p;
}

/* The spec the container would have: 195:0 rw, 195:1 mknod only. */
static void add_devices(struct runner_spec *spec)
{
    struct runner_device d0 = {
            .path = (char *)"/dev/nvidia0", .type = 'c', .major = 195, .minor = 0};
    struct runner_device d1 = {
            .path = (char *)"/dev/nvidia1", .type = 'c', .major = 195, .minor = 1, .access = "m"};
    runner_spec_add_device(spec, &d0);
    runner_spec_add_device(spec, &d1);
}

/* errno of open(O_RDWR), 0 on success, as the child reports it. */
static int child_open(int go, const char *path)
{
    char c;
    if (read(go, &c, 1) != 1)
        _exit(99);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        _exit(0);
    }
    _exit(errno);
}

/* Runs open(path) in a child that attach() moves into the cgroup first. */
static int open_in_cgroup(const char *path, int (*attach)(pid_t, void *), void *data)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[1]);
        child_open(p[0], path);
    }
    close(p[0]);
    int r = attach(pid, data);
    if (write(p[1], "x", 1) != 1)
        r = -1;
    close(p[1]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(r, 0);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void expect_results(int (*attach)(pid_t, void *), void *data)
{
    _cleanup_free_ char *n0 = make_node("nvidia0", 195, 0);
    _cleanup_free_ char *n1 = make_node("nvidia1", 195, 1);
    _cleanup_free_ char *n2 = make_node("nvidia2", 195, 2);
    _cleanup_free_ char *null = make_node("null", 1, 3);
    assert_int_equal(open_in_cgroup(n0, attach, data), ENXIO); /* allowed, no driver */
    assert_int_equal(open_in_cgroup(n1, attach, data), EPERM); /* mknod only */
    assert_int_equal(open_in_cgroup(n2, attach, data), EPERM); /* not allowed */
    assert_int_equal(open_in_cgroup(null, attach, data), 0);   /* docker's defaults */
}

static int attach_devcgroup(pid_t pid, void *data)
{
    struct dlc_error *err = NULL;
    if (runner_devcgroup_attach(data, pid, &err) < 0) {
        print_error("%s\n", err->msg);
        dlc_error_free(&err);
        return -1;
    }
    return 0;
}

static void test_gpu_devcgroup__v1_allow_list(void **state)
{
    (void)state;
    require_root();
    struct statfs sf;
    if (!dlc_is_dir("/sys/fs/cgroup/devices") ||
        (statfs("/sys/fs/cgroup", &sf) == 0 && sf.f_type == CGROUP2_MAGIC))
        skip(); /* a cgroup v2 host: see the BPF test */
    struct runner_spec *spec = runner_spec_new("x");
    add_devices(spec);
    struct runner_cgroup cg = {0};
    struct runner_devcgroup dc;
    struct dlc_error *err = NULL;
    if (runner_devcgroup_create(spec, "unit-v1", &cg, &dc, &err) < 0)
        fail_msg("%s", err ? err->msg : "?");
    assert_int_equal(dc.version, 1);
    _cleanup_free_ char *list = NULL;
    size_t len = 0;
    _cleanup_free_ char *lp = dlc_path_join(dc.path, "devices.list");
    assert_int_equal(dlc_read_file(lp, 1 << 16, &list, &len, &err), 0);
    assert_non_null(strstr(list, "c 195:0 rwm\n"));
    assert_non_null(strstr(list, "c 195:1 m\n"));
    assert_null(strstr(list, "a *:* rwm"));
    expect_results(attach_devcgroup, &dc);
    runner_devcgroup_destroy(&dc);
    assert_false(dlc_path_exists(lp));
    runner_spec_free(spec);
}

struct v2_cgroup {
    char *dir;
};

static int attach_v2(pid_t pid, void *data)
{
    struct v2_cgroup *v = data;
    _cleanup_free_ char *procs = dlc_path_join(v->dir, "cgroup.procs");
    _cleanup_free_ char *s = xasprintf("%d", (int)pid);
    FILE *f = fopen(procs, "we");
    if (f == NULL)
        return -1;
    int r = fputs(s, f) < 0 ? -1 : 0;
    return fclose(f) == 0 ? r : -1;
}

static const char *cgroup2_mount(void)
{
    struct statfs sf;
    if (statfs("/sys/fs/cgroup", &sf) == 0 && sf.f_type == CGROUP2_MAGIC)
        return "/sys/fs/cgroup";
    if (statfs("/sys/fs/cgroup/unified", &sf) == 0 && sf.f_type == CGROUP2_MAGIC)
        return "/sys/fs/cgroup/unified";
    return NULL;
}

static void test_gpu_devcgroup__v2_bpf_program(void **state)
{
    (void)state;
    require_root();
    const char *mnt = cgroup2_mount();
    if (mnt == NULL)
        skip();
    struct v2_cgroup v = {.dir = xasprintf("%s/dlc-unit-%d", mnt, (int)getpid())};
    assert_int_equal(mkdir(v.dir, 0755), 0);
    struct runner_spec *spec = runner_spec_new("x");
    add_devices(spec);
    int cgfd = open(v.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(cgfd >= 0);
    int prog = -1;
    struct dlc_error *err = NULL;
    if (runner_devcgroup_bpf_attach(cgfd, spec, &prog, &err) < 0)
        fail_msg("%s", err ? err->msg : "?");
    expect_results(attach_v2, &v);
    close(prog);
    close(cgfd);
    assert_int_equal(rmdir(v.dir), 0);
    free(v.dir);
    runner_spec_free(spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_gpu_devcgroup__v1_allow_list),
            cmocka_unit_test(test_gpu_devcgroup__v2_bpf_program),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
