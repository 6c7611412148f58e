/* devcgroup.c: the device cgroup (issue 7): a container may use docker's default devices
 * (null, zero, full, random, urandom, tty, console, ptmx, pts; mknod of anything) plus the
 * nodes of spec->devices, nothing else. It is in place before the container's init runs:
 * cgroup v1 through devices.deny/devices.allow of a devices cgroup of its own, cgroup v2
 * through a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the container's cgroup (as
 * crun does: the rules are ours from the start, nothing patched in later).
 *
 * Only real root can do either; rootless containers rely on the nodes' permissions. */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>

#include "gpu.h"
#include "runner-internal.h"

#ifndef CGROUP2_SUPER_MAGIC
#    define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define CG_ROOT   "/sys/fs/cgroup"
#define WILDCARD  (-1)
#define MAX_RULES 4096

struct dev_rule {
    int64_t major, minor; /* WILDCARD for any */
    unsigned access;      /* BPF_DEVCG_ACC_* bits */
    char type;            /* 'c', 'b' or 'a' (both) */
};

static const struct dev_rule default_rules[] = {
        {.type = 'c', .major = WILDCARD, .minor = WILDCARD, .access = BPF_DEVCG_ACC_MKNOD},
        {.type = 'b', .major = WILDCARD, .minor = WILDCARD, .access = BPF_DEVCG_ACC_MKNOD},
        {.type = 'c', .major = 1, .minor = 3, .access = 7},          /* null */
        {.type = 'c', .major = 1, .minor = 5, .access = 7},          /* zero */
        {.type = 'c', .major = 1, .minor = 7, .access = 7},          /* full */
        {.type = 'c', .major = 1, .minor = 8, .access = 7},          /* random */
        {.type = 'c', .major = 1, .minor = 9, .access = 7},          /* urandom */
        {.type = 'c', .major = 5, .minor = 0, .access = 7},          /* tty */
        {.type = 'c', .major = 5, .minor = 1, .access = 7},          /* console */
        {.type = 'c', .major = 5, .minor = 2, .access = 7},          /* ptmx */
        {.type = 'c', .major = 136, .minor = WILDCARD, .access = 7}, /* pts/N */
};

static unsigned parse_access(const char *a)
{
    if (a == NULL || *a == '\0')
        return 7;
    unsigned bits = 0;
    bits |= strchr(a, 'm') ? BPF_DEVCG_ACC_MKNOD : 0;
    bits |= strchr(a, 'r') ? BPF_DEVCG_ACC_READ : 0;
    bits |= strchr(a, 'w') ? BPF_DEVCG_ACC_WRITE : 0;
    return bits;
}

/* The default rules, then one per device of spec. */
static struct dev_rule *collect_rules(const struct runner_spec *spec, size_t *ret_n)
{
    size_t n = DLC_ARRAY_SIZE(default_rules) + spec->n_devices;
    struct dev_rule *rules = xcalloc(n, sizeof(*rules));
    memcpy(rules, default_rules, sizeof(default_rules));
    for (size_t i = 0; i < spec->n_devices; i++) {
        const struct runner_device *d = &spec->devices[i];
        rules[DLC_ARRAY_SIZE(default_rules) + i] = (struct dev_rule){
                .type = d->type == 'b' ? 'b' : 'c',
                .major = d->major,
                .minor = d->minor,
                .access = parse_access(d->access),
        };
    }
    *ret_n = n;
    return rules;
}

/* "c 195:0 rw" as devices.allow takes it. */
static void format_rule(const struct dev_rule *r, char *buf, size_t len)
{
    char ma[24] = "*", mi[24] = "*", acc[4] = "";
    if (r->major != WILDCARD)
        snprintf(ma, sizeof(ma), "%lld", (long long)r->major);
    if (r->minor != WILDCARD)
        snprintf(mi, sizeof(mi), "%lld", (long long)r->minor);
    size_t k = 0;
    if (r->access & BPF_DEVCG_ACC_READ)
        acc[k++] = 'r';
    if (r->access & BPF_DEVCG_ACC_WRITE)
        acc[k++] = 'w';
    if (r->access & BPF_DEVCG_ACC_MKNOD)
        acc[k++] = 'm';
    snprintf(buf, len, "%c %s:%s %s", r->type, ma, mi, acc);
}

/* ---- cgroup v2: the eBPF program ------------------------------------------------------ */

struct prog {
    struct bpf_insn *insns;
    size_t n, cap;
};

static size_t emit(struct prog *p, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 64;
        p->insns = xrealloc(p->insns, p->cap * sizeof(*p->insns));
    }
    p->insns[p->n] =
            (struct bpf_insn){.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm};
    return p->n++;
}

/* r2 = type, r3 = access, r4 = major, r5 = minor; then per rule "if all match: return 1". */
static void emit_rule(struct prog *p, const struct dev_rule *r)
{
    size_t jumps[4], nj = 0;
    if (r->type != 'a')
        jumps[nj++] = emit(p, BPF_JMP | BPF_JNE | BPF_K, 2, 0, 0,
                           r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
    if (r->access != 7) {
        emit(p, BPF_ALU | BPF_MOV | BPF_X, 1, 3, 0, 0);
        emit(p, BPF_ALU | BPF_AND | BPF_K, 1, 0, 0, (int32_t)(~r->access & 7));
        jumps[nj++] = emit(p, BPF_JMP | BPF_JNE | BPF_K, 1, 0, 0, 0);
    }
    if (r->major != WILDCARD)
        jumps[nj++] = emit(p, BPF_JMP | BPF_JNE | BPF_K, 4, 0, 0, (int32_t)r->major);
    if (r->minor != WILDCARD)
        jumps[nj++] = emit(p, BPF_JMP | BPF_JNE | BPF_K, 5, 0, 0, (int32_t)r->minor);
    emit(p, BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1);
    emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    for (size_t i = 0; i < nj; i++)
        p->insns[jumps[i]].off = (int16_t)(p->n - jumps[i] - 1);
}

static void build_program(struct prog *p, const struct dev_rule *rules, size_t n)
{
    emit(p, BPF_LDX | BPF_MEM | BPF_W, 2, 1, offsetof(struct bpf_cgroup_dev_ctx, access_type), 0);
    emit(p, BPF_ALU | BPF_AND | BPF_K, 2, 0, 0, 0xffff);
    emit(p, BPF_LDX | BPF_MEM | BPF_W, 3, 1, offsetof(struct bpf_cgroup_dev_ctx, access_type), 0);
    emit(p, BPF_ALU | BPF_RSH | BPF_K, 3, 0, 0, 16);
    emit(p, BPF_LDX | BPF_MEM | BPF_W, 4, 1, offsetof(struct bpf_cgroup_dev_ctx, major), 0);
    emit(p, BPF_LDX | BPF_MEM | BPF_W, 5, 1, offsetof(struct bpf_cgroup_dev_ctx, minor), 0);
    for (size_t i = 0; i < n; i++)
        emit_rule(p, &rules[i]);
    emit(p, BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0); /* nothing matched: deny */
    emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
}

static int load_program(const struct prog *p, struct dlc_error **err)
{
    static char log[8192];
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insns = (uint64_t)(uintptr_t)p->insns;
    attr.insn_cnt = (uint32_t)p->n;
    attr.license = (uint64_t)(uintptr_t) "Apache";
    attr.log_buf = (uint64_t)(uintptr_t)log;
    attr.log_size = sizeof(log);
    attr.log_level = 1;
    /* Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK. */
    struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
    (void)setrlimit(RLIMIT_MEMLOCK, &rl);
    log[0] = '\0';
    int fd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
    if (fd < 0)
        return dlc_error_set_errno(err, errno, "device cgroup: load the BPF program%s%.200s",
                                   log[0] ? ": " : "", log);
    return fd;
}

int runner_devcgroup_bpf_attach(int cgroup_fd, const struct runner_spec *spec, int *ret_prog,
                                struct dlc_error **err)
{
    size_t n = 0;
    _cleanup_free_ struct dev_rule *rules = collect_rules(spec, &n);
    struct prog p = {0};
    build_program(&p, rules, n);
    int prog = load_program(&p, err);
    free(p.insns);
    if (prog < 0)
        return -1;
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.target_fd = (uint32_t)cgroup_fd;
    attr.attach_bpf_fd = (uint32_t)prog;
    attr.attach_type = BPF_CGROUP_DEVICE;
    attr.attach_flags = BPF_F_ALLOW_MULTI;
    if (syscall(SYS_bpf, BPF_PROG_ATTACH, &attr, sizeof(attr)) < 0) {
        int e = errno;
        close(prog);
        return dlc_error_set_errno(err, e, "device cgroup: attach the BPF program");
    }
    *ret_prog = prog;
    return 0;
}

/* ---- cgroup v1 ---------------------------------------------------------------------------- */

static int write_rule(const char *dir, const char *file, const char *rule, struct dlc_error **err)
{
    _cleanup_free_ char *p = dlc_path_join(dir, file);
    _cleanup_close_ int fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, rule, strlen(rule)) < 0)
        return dlc_error_set_errno(err, errno, "device cgroup: write '%s' to %s", rule, p);
    return 0;
}

static int v1_create(const struct runner_spec *spec, const char *name, struct runner_devcgroup *dc,
                     struct dlc_error **err)
{
    _cleanup_free_ char *own = runner_cgroup_own("devices"); /* "/" on most hosts */
    _cleanup_free_ char *parent = dlc_path_join(CG_ROOT "/devices", own);
    dc->version = 1;
    dc->path = dlc_path_join(parent, name);
    if (mkdir(dc->path, 0755) < 0) {
        int e = errno;
        free(TAKE_PTR(dc->path));
        return dlc_error_set_errno(err, e, "device cgroup: create %s/%s", parent, name);
    }
    dc->own_dir = true;
    if (write_rule(dc->path, "devices.deny", "a", err) < 0)
        return -1;
    size_t n = 0;
    _cleanup_free_ struct dev_rule *rules = collect_rules(spec, &n);
    for (size_t i = 0; i < n; i++) {
        char rule[64];
        format_rule(&rules[i], rule, sizeof(rule));
        if (write_rule(dc->path, "devices.allow", rule, err) < 0)
            return -1;
    }
    return 0;
}

/* ---- cgroup v2 ---------------------------------------------------------------------------- */

static int v2_create(const struct runner_spec *spec, const char *name,
                     const struct runner_cgroup *cg, struct runner_devcgroup *dc,
                     struct dlc_error **err)
{
    dc->version = 2;
    if (cg->version == 2) {
        dc->path = xstrdup(cg->paths[0]); /* the container's, with its limits */
    } else {
        _cleanup_free_ char *parent = dlc_path_join(CG_ROOT, "dlc");
        if (mkdir(parent, 0755) < 0 && errno != EEXIST)
            return dlc_error_set_errno(err, errno, "device cgroup: create %s", parent);
        dc->path = dlc_path_join(parent, name);
        if (mkdir(dc->path, 0755) < 0) {
            int e = errno;
            free(TAKE_PTR(dc->path));
            return dlc_error_set_errno(err, e, "device cgroup: create %s/%s", parent, name);
        }
        dc->own_dir = true;
    }
    _cleanup_close_ int fd = open(dc->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return dlc_error_set_errno(err, errno, "device cgroup: open %s", dc->path);
    return runner_devcgroup_bpf_attach(fd, spec, &dc->prog_fd, err);
}

static bool is_cgroup2(const char *path)
{
    struct statfs sf;
    return statfs(path, &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC;
}

int runner_devcgroup_create(const struct runner_spec *spec, const char *id,
                            const struct runner_cgroup *cg, struct runner_devcgroup *dc,
                            struct dlc_error **err)
{
    *dc = (struct runner_devcgroup){.prog_fd = -1};
    if (!runner_privileged()) {
        if (spec->n_devices > 0)
            dlc_info("rootless: no device cgroup; the passed devices' permissions apply");
        return 0;
    }
    _cleanup_free_ char *name = xasprintf("dlc-%s", id);
    int r;
    if (dlc_is_dir(CG_ROOT "/devices") && !is_cgroup2(CG_ROOT))
        r = v1_create(spec, name, dc, err);
    else if (is_cgroup2(CG_ROOT))
        r = v2_create(spec, name, cg, dc, err);
    else
        return dlc_error_set(err, ENOTSUP,
                             "device cgroup: neither a v1 devices controller "
                             "nor cgroup v2 at " CG_ROOT);
    if (r < 0)
        runner_devcgroup_destroy(dc);
    return r;
}

int runner_devcgroup_attach(const struct runner_devcgroup *dc, pid_t pid, struct dlc_error **err)
{
    if (dc->path == NULL || !dc->own_dir)
        return 0; /* none, or the limits cgroup the pid is attached to anyway */
    char v[32];
    snprintf(v, sizeof(v), "%d", (int)pid);
    return write_rule(dc->path, "cgroup.procs", v, err);
}

void runner_devcgroup_destroy(struct runner_devcgroup *dc)
{
    if (dc->version == 2 && dc->prog_fd >= 0) /* a zeroed struct holds no fd */
        close(dc->prog_fd);
    /* The container's processes are gone by now; the kernel may need a moment to finish
     * their exits before the directory can go. */
    for (int i = 0; dc->own_dir && dc->path && i < 200; i++) {
        if (rmdir(dc->path) == 0 || errno == ENOENT)
            break;
        if (errno != EBUSY) {
            dlc_warn("device cgroup %s: %s", dc->path, strerror(errno));
            break;
        }
        nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
    }
    free(dc->path);
    *dc = (struct runner_devcgroup){.prog_fd = -1};
}
