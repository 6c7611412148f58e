/* namespaces.c: creating the container's namespaces (clone3), the user namespace maps,
 * and the loopback interface of a new network namespace. */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "runner-internal.h"

pid_t runner_clone(const struct container_config *c, int *ret_pidfd, struct dlc_error **err)
{
    uint64_t flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_PIDFD;
    if (c->netns)
        flags |= CLONE_NEWNET;
    if (c->userns)
        flags |= CLONE_NEWUSER;
    /* Without a cgroup of its own the container's cgroup namespace starts here; with one,
     * the child unshares it once it has been moved into that cgroup. */
    if (!c->cgroupns)
        flags |= CLONE_NEWCGROUP;
    int pidfd = -1;
    struct clone_args args = {
            .flags = flags,
            .pidfd = (uint64_t)(uintptr_t)&pidfd,
            .exit_signal = SIGCHLD,
    };
    long pid = syscall(SYS_clone3, &args, sizeof(args));
    if (pid < 0) {
        if (errno == EPERM || errno == ENOSPC || errno == EUSERS)
            return dlc_error_set_errno(err, errno, "create namespaces%s",
                                       c->userns ? " (user namespaces disabled?)" : "");
        return dlc_error_set_errno(err, errno, "create namespaces");
    }
    if (pid == 0)
        return 0;
    *ret_pidfd = pidfd;
    return (pid_t)pid;
}

static int write_proc(pid_t pid, const char *file, const char *data, struct dlc_error **err)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, data, strlen(data)) < 0)
        return dlc_error_set_errno(err, errno, "user namespace: write '%s' to %s", data, path);
    return 0;
}

int runner_userns_map(pid_t pid, struct dlc_error **err)
{
    char map[64];
    if (runner_privileged()) {
        /* root asking for --userns: podman's keep-id for root, which copies the caller's
         * mapping (all of it, in the initial namespace) into the new namespace. The caller
         * is root inside as rootless, ids keep their meaning on the host (the layers'
         * owners, the files written to mounts), and the container's capabilities count
         * only inside its own namespaces: no mknod, raw I/O or modules, even with
         * --cap-add. */
        snprintf(map, sizeof(map), "0 0 4294967295\n");
        if (write_proc(pid, "uid_map", map, err) < 0 || write_proc(pid, "gid_map", map, err) < 0)
            return -1;
        return 0;
    }
    /* Without privileges the caller can map itself only: it becomes root inside, so files
     * the container writes to bind mounts belong to the caller. */
    snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)geteuid());
    if (write_proc(pid, "uid_map", map, err) < 0 || write_proc(pid, "setgroups", "deny", err) < 0)
        return -1;
    snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)getegid());
    return write_proc(pid, "gid_map", map, err);
}

int runner_netns_loopback_up(struct dlc_error **err)
{
    _cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, "lo", 3);
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        return dlc_error_set_errno(err, errno, "loopback");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
        return dlc_error_set_errno(err, errno, "bring up loopback");
    return 0;
}
