/* seccomp.c: a filter equivalent to docker's default seccomp profile (moby
 * profiles/seccomp/default.json): EPERM for everything but an allow list, with the
 * capability-dependent groups, the clone namespace-flag check, socket(AF_VSOCK) and the
 * personality() values. The same rules are compiled with libseccomp for `dlc run`
 * (and cached as BPF under DLC_ROOT/cache/seccomp, keyed by the capability set, since
 * compiling takes milliseconds) and written as OCI JSON for export-bundle. */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include "runner-internal.h"

/* Bump when the rules change: it is part of the cache key. */
#define PROFILE_VERSION "moby-default-2024.1"

static const char *const allow_always[] = {
        "accept",
        "accept4",
        "access",
        "adjtimex",
        "alarm",
        "bind",
        "brk",
        "capget",
        "capset",
        "chdir",
        "chmod",
        "chown",
        "chown32",
        "clock_adjtime",
        "clock_adjtime64",
        "clock_getres",
        "clock_getres_time64",
        "clock_gettime",
        "clock_gettime64",
        "clock_nanosleep",
        "clock_nanosleep_time64",
        "close",
        "close_range",
        "connect",
        "copy_file_range",
        "creat",
        "dup",
        "dup2",
        "dup3",
        "epoll_create",
        "epoll_create1",
        "epoll_ctl",
        "epoll_ctl_old",
        "epoll_pwait",
        "epoll_pwait2",
        "epoll_wait",
        "epoll_wait_old",
        "eventfd",
        "eventfd2",
        "execve",
        "execveat",
        "exit",
        "exit_group",
        "faccessat",
        "faccessat2",
        "fadvise64",
        "fadvise64_64",
        "fallocate",
        "fanotify_mark",
        "fchdir",
        "fchmod",
        "fchmodat",
        "fchown",
        "fchown32",
        "fchownat",
        "fcntl",
        "fcntl64",
        "fdatasync",
        "fgetxattr",
        "flistxattr",
        "flock",
        "fork",
        "fremovexattr",
        "fsetxattr",
        "fstat",
        "fstat64",
        "fstatat64",
        "fstatfs",
        "fstatfs64",
        "fsync",
        "ftruncate",
        "ftruncate64",
        "futex",
        "futex_time64",
        "futex_waitv",
        "futimesat",
        "getcpu",
        "getcwd",
        "getdents",
        "getdents64",
        "getegid",
        "getegid32",
        "geteuid",
        "geteuid32",
        "getgid",
        "getgid32",
        "getgroups",
        "getgroups32",
        "getitimer",
        "getpeername",
        "getpgid",
        "getpgrp",
        "getpid",
        "getppid",
        "getpriority",
        "getrandom",
        "getresgid",
        "getresgid32",
        "getresuid",
        "getresuid32",
        "getrlimit",
        "get_robust_list",
        "getrusage",
        "getsid",
        "getsockname",
        "getsockopt",
        "get_thread_area",
        "gettid",
        "gettimeofday",
        "getuid",
        "getuid32",
        "getxattr",
        "inotify_add_watch",
        "inotify_init",
        "inotify_init1",
        "inotify_rm_watch",
        "io_cancel",
        "ioctl",
        "io_destroy",
        "io_getevents",
        "io_pgetevents",
        "io_pgetevents_time64",
        "ioprio_get",
        "ioprio_set",
        "io_setup",
        "io_submit",
        "io_uring_enter",
        "io_uring_register",
        "io_uring_setup",
        "ipc",
        "kill",
        "landlock_add_rule",
        "landlock_create_ruleset",
        "landlock_restrict_self",
        "lchown",
        "lchown32",
        "lgetxattr",
        "link",
        "linkat",
        "listen",
        "listxattr",
        "llistxattr",
        "_llseek",
        "lremovexattr",
        "lseek",
        "lsetxattr",
        "lstat",
        "lstat64",
        "madvise",
        "membarrier",
        "memfd_create",
        "memfd_secret",
        "mincore",
        "mkdir",
        "mkdirat",
        "mknod",
        "mknodat",
        "mlock",
        "mlock2",
        "mlockall",
        "mmap",
        "mmap2",
        "mprotect",
        "mq_getsetattr",
        "mq_notify",
        "mq_open",
        "mq_timedreceive",
        "mq_timedreceive_time64",
        "mq_timedsend",
        "mq_timedsend_time64",
        "mq_unlink",
        "mremap",
        "msgctl",
        "msgget",
        "msgrcv",
        "msgsnd",
        "msync",
        "munlock",
        "munlockall",
        "munmap",
        "name_to_handle_at",
        "nanosleep",
        "newfstatat",
        "_newselect",
        "open",
        "openat",
        "openat2",
        "pause",
        "pidfd_open",
        "pidfd_send_signal",
        "pipe",
        "pipe2",
        "pkey_alloc",
        "pkey_free",
        "pkey_mprotect",
        "poll",
        "ppoll",
        "ppoll_time64",
        "prctl",
        "pread64",
        "preadv",
        "preadv2",
        "prlimit64",
        "process_mrelease",
        "pselect6",
        "pselect6_time64",
        "pwrite64",
        "pwritev",
        "pwritev2",
        "read",
        "readahead",
        "readlink",
        "readlinkat",
        "readv",
        "recv",
        "recvfrom",
        "recvmmsg",
        "recvmmsg_time64",
        "recvmsg",
        "remap_file_pages",
        "removexattr",
        "rename",
        "renameat",
        "renameat2",
        "restart_syscall",
        "rmdir",
        "rseq",
        "rt_sigaction",
        "rt_sigpending",
        "rt_sigprocmask",
        "rt_sigqueueinfo",
        "rt_sigreturn",
        "rt_sigsuspend",
        "rt_sigtimedwait",
        "rt_sigtimedwait_time64",
        "rt_tgsigqueueinfo",
        "sched_getaffinity",
        "sched_getattr",
        "sched_getparam",
        "sched_get_priority_max",
        "sched_get_priority_min",
        "sched_getscheduler",
        "sched_rr_get_interval",
        "sched_rr_get_interval_time64",
        "sched_setaffinity",
        "sched_setattr",
        "sched_setparam",
        "sched_setscheduler",
        "sched_yield",
        "seccomp",
        "select",
        "semctl",
        "semget",
        "semop",
        "semtimedop",
        "semtimedop_time64",
        "send",
        "sendfile",
        "sendfile64",
        "sendmmsg",
        "sendmsg",
        "sendto",
        "setfsgid",
        "setfsgid32",
        "setfsuid",
        "setfsuid32",
        "setgid",
        "setgid32",
        "setgroups",
        "setgroups32",
        "setitimer",
        "setpgid",
        "setpriority",
        "setregid",
        "setregid32",
        "setresgid",
        "setresgid32",
        "setresuid",
        "setresuid32",
        "setreuid",
        "setreuid32",
        "setrlimit",
        "set_robust_list",
        "setsid",
        "setsockopt",
        "set_thread_area",
        "set_tid_address",
        "setuid",
        "setuid32",
        "setxattr",
        "shmat",
        "shmctl",
        "shmdt",
        "shmget",
        "shutdown",
        "sigaltstack",
        "signalfd",
        "signalfd4",
        "sigprocmask",
        "sigreturn",
        "socketcall",
        "socketpair",
        "splice",
        "stat",
        "stat64",
        "statfs",
        "statfs64",
        "statx",
        "symlink",
        "symlinkat",
        "sync",
        "sync_file_range",
        "syncfs",
        "sysinfo",
        "tee",
        "tgkill",
        "time",
        "timer_create",
        "timer_delete",
        "timer_getoverrun",
        "timer_gettime",
        "timer_gettime64",
        "timer_settime",
        "timer_settime64",
        "timerfd_create",
        "timerfd_gettime",
        "timerfd_gettime64",
        "timerfd_settime",
        "timerfd_settime64",
        "times",
        "tkill",
        "truncate",
        "truncate64",
        "ugetrlimit",
        "umask",
        "uname",
        "unlink",
        "unlinkat",
        "utime",
        "utimensat",
        "utimensat_time64",
        "utimes",
        "vfork",
        "vmsplice",
        "wait4",
        "waitid",
        "waitpid",
        "write",
        "writev",
        /* minKernel 4.8: ptrace no longer bypasses seccomp */
        "process_vm_readv",
        "process_vm_writev",
        "ptrace",
#if defined(__x86_64__)
        "arch_prctl",
        "modify_ldt",
#elif defined(__aarch64__)
        "arm_fadvise64_64",
        "arm_sync_file_range",
        "sync_file_range2",
        "breakpoint",
        "cacheflush",
        "set_tls",
#endif
        NULL,
};

/* Allowed only when the container has the capability. */
static const struct {
    int cap;
    const char *const names[24];
} allow_with_cap[] = {
        {CAP_DAC_READ_SEARCH, {"open_by_handle_at"}},
        {CAP_SYS_ADMIN,
         {"bpf",           "clone",         "clone3",      "fanotify_init",   "fsconfig",
          "fsmount",       "fsopen",        "fspick",      "lookup_dcookie",  "mount",
          "mount_setattr", "move_mount",    "open_tree",   "perf_event_open", "quotactl",
          "quotactl_fd",   "setdomainname", "sethostname", "setns",           "syslog",
          "umount",        "umount2",       "unshare"}},
        {CAP_SYS_BOOT, {"reboot"}},
        {CAP_SYS_CHROOT, {"chroot"}},
        {CAP_SYS_MODULE, {"delete_module", "init_module", "finit_module"}},
        {CAP_SYS_PACCT, {"acct"}},
        {CAP_SYS_PTRACE,
         {"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev",
          "ptrace"}},
        {CAP_SYS_RAWIO, {"iopl", "ioperm"}},
        {CAP_SYS_TIME, {"settimeofday", "stime", "clock_settime", "clock_settime64"}},
        {CAP_SYS_TTY_CONFIG, {"vhangup"}},
        {CAP_SYS_NICE, {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"}},
        {CAP_SYSLOG, {"syslog"}},
        {CAP_BPF, {"bpf"}},
        {CAP_PERFMON, {"perf_event_open"}},
};

#define CLONE_NS_FLAGS 0x7E020000ull /* CLONE_NEW{NS,CGROUP,UTS,IPC,USER,PID,NET} */
#define AF_VSOCK_NR    40
static const uint64_t personality_values[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

/* One rule: allow (or fail with errno) name, when arg[index] op value[, value2] if op. */
struct sc_rule {
    const char *name;
    int errno_ret;        /* 0: allow */
    enum scmp_compare op; /* 0: no argument check */
    unsigned index;
    uint64_t value, value2;
};

/* Calls fn for each rule of the profile given the container's capabilities. */
static int for_each_rule(uint64_t caps, int (*fn)(const struct sc_rule *r, void *data), void *data)
{
    for (size_t i = 0; allow_always[i]; i++)
        if (fn(&(struct sc_rule){allow_always[i], 0, 0, 0, 0, 0}, data) < 0)
            return -1;
    for (size_t g = 0; g < DLC_ARRAY_SIZE(allow_with_cap); g++) {
        if (!(caps & (1ull << allow_with_cap[g].cap)))
            continue;
        for (size_t i = 0; i < 24 && allow_with_cap[g].names[i]; i++)
            if (fn(&(struct sc_rule){allow_with_cap[g].names[i], 0, 0, 0, 0, 0}, data) < 0)
                return -1;
    }
    struct sc_rule socket_rule = {"socket", 0, SCMP_CMP_NE, 0, AF_VSOCK_NR, 0};
    if (fn(&socket_rule, data) < 0)
        return -1;
    for (size_t i = 0; i < DLC_ARRAY_SIZE(personality_values); i++) {
        struct sc_rule r = {"personality", 0, SCMP_CMP_EQ, 0, personality_values[i], 0};
        if (fn(&r, data) < 0)
            return -1;
    }
    if (!(caps & (1ull << CAP_SYS_ADMIN))) {
        /* no new namespaces without CAP_SYS_ADMIN; clone3 hides its flags in memory, so
         * it says ENOSYS and libc falls back to clone */
        struct sc_rule clone_rule = {"clone", 0, SCMP_CMP_MASKED_EQ, 0, CLONE_NS_FLAGS, 0};
        struct sc_rule clone3_rule = {"clone3", ENOSYS, 0, 0, 0, 0};
        if (fn(&clone_rule, data) < 0 || fn(&clone3_rule, data) < 0)
            return -1;
    }
    return 0;
}

static int add_rule_libseccomp(const struct sc_rule *r, void *data)
{
    scmp_filter_ctx ctx = data;
    int nr = seccomp_syscall_resolve_name(r->name);
    if (nr == __NR_SCMP_ERROR)
        return 0; /* not a syscall of this architecture or unknown to this libseccomp */
    uint32_t action = r->errno_ret ? SCMP_ACT_ERRNO((uint32_t)r->errno_ret) : SCMP_ACT_ALLOW;
    int rc;
    if (r->op)
        rc = seccomp_rule_add(ctx, action, nr, 1,
                              (struct scmp_arg_cmp){r->index, r->op, r->value, r->value2});
    else
        rc = seccomp_rule_add(ctx, action, nr, 0);
    /* -EEXIST: listed twice (syslog, ptrace); -EACCES/-EINVAL: not on a sub-arch */
    return rc == 0 || rc == -EEXIST || rc == -EACCES || rc == -EINVAL || rc == -EDOM ? 0 : rc;
}

static int compile(uint64_t caps, char **ret_prog, size_t *ret_len, struct dlc_error **err)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (ctx == NULL)
        return dlc_error_set(err, ENOMEM, "seccomp: cannot create a filter");
#if defined(__x86_64__)
    seccomp_arch_add(ctx, SCMP_ARCH_X86);
    seccomp_arch_add(ctx, SCMP_ARCH_X32);
#elif defined(__aarch64__)
    seccomp_arch_add(ctx, SCMP_ARCH_ARM);
#endif
    int r = for_each_rule(caps, add_rule_libseccomp, ctx);
    int fd = r == 0 ? memfd_create("dlc-seccomp", MFD_CLOEXEC) : -1;
    if (r < 0 || fd < 0 || (r = seccomp_export_bpf(ctx, fd)) < 0) {
        seccomp_release(ctx);
        if (fd >= 0)
            close(fd);
        return dlc_error_set(err, EIO, "seccomp: compile the filter: %s",
                             strerror(r < 0 ? -r : errno));
    }
    seccomp_release(ctx);
    off_t len = lseek(fd, 0, SEEK_END);
    char *prog = len > 0 ? xmalloc((size_t)len) : NULL;
    if (prog == NULL || pread(fd, prog, (size_t)len, 0) != len) {
        free(prog);
        close(fd);
        return dlc_error_set(err, EIO, "seccomp: read the compiled filter");
    }
    close(fd);
    *ret_prog = prog;
    *ret_len = (size_t)len;
    return 0;
}

static bool prog_valid(size_t len)
{
    return len > 0 && len % sizeof(struct sock_filter) == 0 &&
           len / sizeof(struct sock_filter) <= BPF_MAXINSNS;
}

int runner_seccomp_prepare(const char *root, uint64_t caps, struct runner_bpf *ret,
                           struct dlc_error **err)
{
    char key[OCI_DIGEST_BUFSZ];
    _cleanup_free_ char *keysrc =
            xasprintf("%s|%s|%016llx", PROFILE_VERSION, oci_host_arch(), (unsigned long long)caps);
    oci_digest_buf(keysrc, strlen(keysrc), key);
    _cleanup_free_ char *path = xasprintf("%s/cache/seccomp/%.16s.bpf", root, oci_digest_hex(key));
    char *prog = NULL;
    size_t len = 0;
    struct dlc_error *e2 = NULL;
    if (dlc_read_file(path, BPF_MAXINSNS * sizeof(struct sock_filter), &prog, &len, &e2) == 0 &&
        prog_valid(len)) {
        *ret = (struct runner_bpf){prog, len};
        return 0;
    }
    dlc_error_free(&e2);
    free(prog);
    if (compile(caps, &prog, &len, err) < 0)
        return -1;
    if (!prog_valid(len)) {
        free(prog);
        return dlc_error_set(err, EIO, "seccomp: the compiled filter has %zu bytes", len);
    }
    /* the cache is an optimisation: failing to write it is not an error */
    _cleanup_free_ char *dir = dlc_path_dirname(path);
    if (dlc_mkdir_p(dir, 0755, &e2) < 0 || dlc_write_file_atomic(path, prog, len, 0644, &e2) < 0) {
        dlc_debug("seccomp cache: %s, ignoring", e2->msg);
        dlc_error_free(&e2);
    }
    *ret = (struct runner_bpf){prog, len};
    return 0;
}

int runner_seccomp_load(const struct runner_bpf *bpf)
{
    struct sock_fprog fprog = {
            .len = (unsigned short)(bpf->len / sizeof(struct sock_filter)),
            .filter = (struct sock_filter *)bpf->prog,
    };
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog, 0, 0);
}

void runner_bpf_release(struct runner_bpf *bpf)
{
    free(bpf->prog);
    bpf->prog = NULL;
    bpf->len = 0;
}

/* ---- OCI runtime-spec form (export-bundle) ------------------------------------------ */

static const char *op_name(enum scmp_compare op)
{
    switch (op) {
    case SCMP_CMP_NE:
        return "SCMP_CMP_NE";
    case SCMP_CMP_EQ:
        return "SCMP_CMP_EQ";
    case SCMP_CMP_MASKED_EQ:
        return "SCMP_CMP_MASKED_EQ";
    default:
        return "SCMP_CMP_EQ";
    }
}

static int add_rule_json(const struct sc_rule *r, void *data)
{
    json_t *syscalls = data;
    if (seccomp_syscall_resolve_name(r->name) == __NR_SCMP_ERROR)
        return 0;
    json_t *rule = json_pack("{s:[s], s:s}", "names", r->name, "action",
                             r->errno_ret ? "SCMP_ACT_ERRNO" : "SCMP_ACT_ALLOW");
    if (r->errno_ret)
        json_object_set_new(rule, "errnoRet", json_integer(r->errno_ret));
    if (r->op)
        json_object_set_new(rule, "args",
                            json_pack("[{s:i, s:I, s:I, s:s}]", "index", (int)r->index, "value",
                                      (json_int_t)r->value, "valueTwo", (json_int_t)r->value2, "op",
                                      op_name(r->op)));
    json_array_append_new(syscalls, rule);
    return 0;
}

json_t *runner_seccomp_oci_json(uint64_t caps)
{
    json_t *syscalls = json_array();
    for_each_rule(caps, add_rule_json, syscalls);
#if defined(__x86_64__)
    json_t *arches = json_pack("[s,s,s]", "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32");
#elif defined(__aarch64__)
    json_t *arches = json_pack("[s,s]", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM");
#else
    json_t *arches = json_array();
#endif
    return json_pack("{s:s, s:i, s:o, s:o}", "defaultAction", "SCMP_ACT_ERRNO", "defaultErrnoRet",
                     EPERM, "architectures", arches, "syscalls", syscalls);
}
