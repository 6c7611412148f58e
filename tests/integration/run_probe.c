/* run_probe.c: a static program the runner's isolation tests copy into a fixture image.
 * `probe NAME [ARG]` tries one thing a container must not be able to do and prints
 * "blocked: <why>" (exit 0) or "ALLOWED" (exit 1); `probe pids` and `probe netifs` print
 * what the container can see. Built with -static so it needs nothing from the image. */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEYCTL_JOIN_SESSION_KEYRING 1

static int verdict(long r, const char *what)
{
    if (r < 0) {
        printf("blocked: %s: %s\n", what, strerror(errno));
        return 0;
    }
    printf("ALLOWED: %s\n", what);
    return 1;
}

/* Creates a device node in a writable place and tries to read from it. */
static int device(unsigned type, unsigned major, unsigned minor, const char *path)
{
    unlink(path);
    if (mknod(path, type | 0600, makedev(major, minor)) < 0)
        return verdict(-1, "mknod");
    int fd = open(path, O_RDONLY);
    char c;
    long r = fd < 0 ? -1 : read(fd, &c, 1);
    int e = errno;
    unlink(path);
    errno = e;
    return verdict(r, "open/read the new device node");
}

static int read_all(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return verdict(-1, path);
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n <= 0) {
        printf("blocked: %s reads as empty\n", path);
        return 0;
    }
    return verdict(0, path);
}

static int ptrace_init(void)
{
    long r = ptrace(PTRACE_ATTACH, 1, NULL, NULL);
    return verdict(r, "ptrace pid 1");
}

static int list_pids(void)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        if (de->d_name[0] >= '0' && de->d_name[0] <= '9')
            printf("%s\n", de->d_name);
    return 0;
}

static int list_netifs(void)
{
    FILE *f = fopen("/proc/net/dev", "r");
    char line[512];
    for (int i = 0; f && fgets(line, sizeof(line), f); i++) {
        char *colon = strchr(line, ':');
        if (i < 2 || colon == NULL)
            continue;
        *colon = '\0';
        char *name = line;
        while (*name == ' ')
            name++;
        printf("%s\n", name);
    }
    return 0;
}

/* Forks up to n sleeping children; prints how many it got and why it stopped. */
static int fork_many(int n)
{
    pid_t *kids = calloc((size_t)n, sizeof(pid_t));
    int k = 0;
    const char *why = "all of them";
    for (; k < n; k++) {
        pid_t p = fork();
        if (p == 0) {
            pause();
            _exit(0);
        }
        if (p < 0) {
            why = strerror(errno);
            break;
        }
        kids[k] = p;
    }
    printf("forked %d of %d: %s\n", k, n, why);
    for (int i = 0; i < k; i++)
        kill(kids[i], SIGKILL);
    while (wait(NULL) > 0)
        ;
    free(kids);
    return 0;
}

static int write_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    long r = fd < 0 ? -1 : write(fd, "x", 1);
    return verdict(r, path);
}

int main(int argc, char **argv)
{
    const char *t = argc > 1 ? argv[1] : "";
    const char *arg = argc > 2 ? argv[2] : "/tmp/probe-file";
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    if (strcmp(t, "mount") == 0)
        return verdict(mount("none", "/tmp", "tmpfs", 0, NULL), "mount tmpfs");
    if (strcmp(t, "umount") == 0)
        return verdict(umount2("/proc", MNT_DETACH), "umount /proc");
    if (strcmp(t, "unshare") == 0)
        return verdict(unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)") |
               verdict(unshare(CLONE_NEWUSER), "unshare(CLONE_NEWUSER)");
    if (strcmp(t, "ptrace") == 0)
        return ptrace_init();
    if (strcmp(t, "kexec") == 0)
        return verdict(syscall(SYS_kexec_load, 0, 0, NULL, 0), "kexec_load");
    if (strcmp(t, "keyctl") == 0)
        return verdict(syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL), "keyctl");
    if (strcmp(t, "bpf") == 0)
        return verdict(syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr)), "bpf");
    if (strcmp(t, "module") == 0)
        return verdict(syscall(SYS_init_module, NULL, 0, ""), "init_module");
    if (strcmp(t, "sysctl") == 0)
        return write_file("/proc/sys/kernel/hostname");
    if (strcmp(t, "sysrq") == 0)
        return write_file("/proc/sysrq-trigger");
    if (strcmp(t, "kcore") == 0)
        return read_all(access("/proc/kcore", F_OK) == 0 ? "/proc/kcore" : "/proc/keys");
    if (strcmp(t, "mknod") == 0) /* the host's first disk */
        return device(S_IFBLK, 8, 0, arg);
    if (strcmp(t, "hostdev") == 0) /* /dev/mem */
        return device(S_IFCHR, 1, 1, arg);
    if (strcmp(t, "devmknod") == 0)
        return verdict(mknod("/dev/sda", S_IFBLK | 0600, makedev(8, 0)), "mknod in /dev");
    if (strcmp(t, "write") == 0)
        return write_file(arg);
    if (strcmp(t, "fork") == 0)
        return fork_many(argc > 2 ? (int)strtol(argv[2], NULL, 10) : 100);
    if (strcmp(t, "pids") == 0)
        return list_pids();
    if (strcmp(t, "netifs") == 0)
        return list_netifs();
    fprintf(stderr, "usage: probe mount|umount|unshare|ptrace|kexec|keyctl|bpf|module|sysctl|"
                    "sysrq|kcore|mknod|hostdev|devmknod|write PATH|fork N|pids|netifs\n");
    return 2;
}
