/* publish-dial.c: opens TCP connections inside a container's network namespace from a
 * helper process that joined it (and its user namespace, for rootless containers), and
 * passes them back with SCM_RIGHTS. The helper is forked from a possibly multithreaded
 * process, so between fork and _exit it makes system calls only. */
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "publish.h"

#define HELPER_FD 3

/* Helper -> us: 0 or an errno value, with the socket attached when 0. The first message,
 * sent unasked, says whether joining the namespaces worked (step says which failed). */
struct dial_reply {
    int32_t error;
    int32_t step; /* 0: none, 1: user namespace, 2: network namespace */
};

void publish_dialer_init(struct publish_dialer *d)
{
    d->pid = 0;
    d->sock = -1;
    pthread_mutex_init(&d->lock, NULL);
}

/* ---- the helper (after fork: system calls only) ---------------------------------------- */

static void send_reply(int sock, int error, int step, int fd)
{
    struct dial_reply rep = {.error = error, .step = step};
    struct iovec iov = {.iov_base = &rep, .iov_len = sizeof(rep)};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u = {{0}};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        msg.msg_control = u.buf;
        msg.msg_controllen = sizeof(u.buf);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    }
    while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR) {
    }
}

static int dial_loopback(uint16_t port, int *ret_fd)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        return e;
    }
    *ret_fd = fd;
    return 0;
}

DLC_NORETURN static void helper_main(int sock, int userns, int netns, pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) /* the parent died before prctl */
        _exit(1);
    if (userns >= 0 && setns(userns, CLONE_NEWUSER) < 0) {
        send_reply(sock, errno, 1, -1);
        _exit(1);
    }
    if (setns(netns, CLONE_NEWNET) < 0) {
        send_reply(sock, errno, 2, -1);
        _exit(1);
    }
    if (sock != HELPER_FD && dup2(sock, HELPER_FD) < 0)
        _exit(1);
    close_range(HELPER_FD + 1, ~0U, 0); /* listeners, relays: none of the helper's business */
    send_reply(HELPER_FD, 0, 0, -1);
    for (;;) {
        uint16_t port = 0;
        ssize_t n = recv(HELPER_FD, &port, sizeof(port), 0);
        if (n == 0)
            _exit(0); /* our parent closed its end */
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof(port))
            _exit(1);
        int fd = -1;
        int e = dial_loopback(port, &fd);
        send_reply(HELPER_FD, e, 0, fd);
        if (fd >= 0)
            close(fd);
    }
}

/* ---- our side ------------------------------------------------------------------------ */

/* Receives one reply, and the fd that comes with it (or -1). */
static int recv_reply(int sock, struct dial_reply *rep, int *ret_fd)
{
    struct iovec iov = {.iov_base = rep, .iov_len = sizeof(*rep)};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = u.buf,
                         .msg_controllen = sizeof(u.buf)};
    ssize_t n;
    while ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
    }
    *ret_fd = -1;
    struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
    if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
        memcpy(ret_fd, CMSG_DATA(cm), sizeof(int));
    if (n < 0)
        return -errno;
    return n == (ssize_t)sizeof(*rep) ? 0 : -EPROTO;
}

/* The user namespace owning netns when it is not ours (rootless: the container's), -2 when
 * it is ours, -1 on error. NS_GET_USERNS needs no access to the container's processes. */
static int owning_userns(int netns, struct dlc_error **err)
{
    int fd = ioctl(netns, NS_GET_USERNS);
    if (fd < 0)
        return dlc_error_set_errno(err, errno, "find the network namespace's user namespace");
    struct stat theirs, ours;
    if (fstat(fd, &theirs) < 0 || stat("/proc/self/ns/user", &ours) < 0) {
        int e = errno;
        close(fd);
        return dlc_error_set_errno(err, e, "stat the user namespaces");
    }
    if (theirs.st_ino == ours.st_ino && theirs.st_dev == ours.st_dev) {
        close(fd);
        return -2; /* the same: nothing to join */
    }
    return fd;
}

static int wait_ready(struct publish_dialer *d, struct dlc_error **err)
{
    struct dial_reply rep = {0};
    int fd = -1;
    int r = recv_reply(d->sock, &rep, &fd);
    if (fd >= 0)
        close(fd);
    if (r < 0)
        return dlc_error_set_errno(err, -r, "the namespace helper did not start");
    if (rep.error != 0)
        return dlc_error_set_errno(err, rep.error, "join the container's %s namespace",
                                   rep.step == 1 ? "user" : "network");
    return 0;
}

int publish_dialer_start(struct publish_dialer *d, int netns_fd, struct dlc_error **err)
{
    DLC_ASSERT(d->pid == 0);
    _cleanup_close_ int netns = fcntl(netns_fd, F_DUPFD_CLOEXEC, 3);
    if (netns < 0)
        return dlc_error_set_errno(err, errno, "the container's network namespace");
    _cleanup_close_ int userns = owning_userns(netns, err);
    if (userns == -1)
        return -1;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return dlc_error_set_errno(err, errno, "socketpair");
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0)
        helper_main(sv[1], userns >= 0 ? userns : -1, netns, parent);
    int e = errno;
    close(sv[1]);
    if (child < 0) {
        close(sv[0]);
        return dlc_error_set_errno(err, e, "fork the namespace helper");
    }
    d->pid = child;
    d->sock = sv[0];
    if (wait_ready(d, err) < 0) {
        publish_dialer_stop(d);
        return -1;
    }
    return 0;
}

int publish_dialer_dial(struct publish_dialer *d, uint16_t port, int *ret_fd,
                        struct dlc_error **err)
{
    pthread_mutex_lock(&d->lock);
    struct dial_reply rep = {0};
    int fd = -1, r = -EPIPE;
    if (d->sock >= 0 && send(d->sock, &port, sizeof(port), MSG_NOSIGNAL) == sizeof(port))
        r = recv_reply(d->sock, &rep, &fd);
    pthread_mutex_unlock(&d->lock);
    if (r < 0)
        return dlc_error_set_errno(err, -r, "the namespace helper is gone");
    if (rep.error != 0 || fd < 0) {
        if (fd >= 0)
            close(fd);
        return dlc_error_set_errno(err, rep.error ? rep.error : EPROTO,
                                   "connect to port %u in the container", port);
    }
    *ret_fd = fd;
    return 0;
}

void publish_dialer_stop(struct publish_dialer *d)
{
    if (d->sock >= 0)
        close(d->sock);
    d->sock = -1;
    if (d->pid > 0) {
        kill(d->pid, SIGKILL);
        while (waitpid(d->pid, NULL, 0) < 0 && errno == EINTR) {
        }
    }
    d->pid = 0;
}
