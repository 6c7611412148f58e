/* serve.c: what `dlc serve` needs around runner_run: a model.tar.gz unpacked on the host
 * (tensor links no archive library, so the container gets a plain directory), a readiness
 * probe of SageMaker's GET /ping through the published port, and the tail of a detached
 * container's log for when it never gets ready. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "runner-internal.h"

#define PROBE_MAX_ANSWER 512
#define LOG_TAIL_MAX     (1u << 20)

/* ---- the model tarball ------------------------------------------------------------------ */

int runner_model_unpack(const char *tarball, char **ret_dir, struct dlc_error **err)
{
    if (!dlc_path_exists(tarball))
        return dlc_error_set(err, ENOENT, "--model %s: no such file", tarball);
    const char *tmp = getenv("TMPDIR");
    _cleanup_free_ char *dir = xasprintf("%s/dlc-model-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        return dlc_error_set_errno(err, errno, "create a directory for %s", tarball);
    /* Readable by the container's root even when it is an unprivileged id. */
    struct layer_unpack_opts opts = {.mode = LAYER_MODE_APPLY, .privileged = false};
    _cleanup_free_ char *json = dlc_path_join(dir, "model.json");
    int r = chmod(dir, 0755) < 0 ? dlc_error_set_errno(err, errno, "chmod %s", dir) : 0;
    if (r == 0 && runner_layer_unpack(tarball, NULL, dir, &opts, err) < 0)
        r = dlc_error_wrap(err, "unpack %s", tarball);
    if (r == 0 && !dlc_path_exists(json))
        r = dlc_error_set(err, EINVAL,
                          "%s holds no model.json at its top (a model.tar.gz as `dlc train` "
                          "writes it has model.json and model.safetensors there)",
                          tarball);
    if (r < 0) {
        struct dlc_error *ignored = NULL;
        if (runner_rm_tree(dir, &ignored) < 0)
            dlc_error_free(&ignored);
        return -1;
    }
    *ret_dir = TAKE_PTR(dir);
    return 0;
}

/* ---- /ping ------------------------------------------------------------------------------- */

/* "127.0.0.1:8080" or "[::1]:8080" as runner_ports_host() writes them. */
static int parse_host_port(const char *hp, struct sockaddr_storage *ss, socklen_t *len)
{
    const char *colon = strrchr(hp, ':');
    if (colon == NULL)
        return -1;
    int port = 0;
    if (dlc_parse_int(colon + 1, NULL, 1, 65535, &port, NULL) < 0)
        return -1;
    memset(ss, 0, sizeof(*ss));
    if (hp[0] == '[') {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        _cleanup_free_ char *a = xstrndup(hp + 1, (size_t)(colon - hp - 2));
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*s6);
        return inet_pton(AF_INET6, a, &s6->sin6_addr) == 1 ? 0 : -1;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    _cleanup_free_ char *a = xstrndup(hp, (size_t)(colon - hp));
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    *len = sizeof(*s4);
    /* A server published on 0.0.0.0 answers on loopback too. */
    if (strcmp(a, "0.0.0.0") == 0)
        return inet_pton(AF_INET, "127.0.0.1", &s4->sin_addr) == 1 ? 0 : -1;
    return inet_pton(AF_INET, a, &s4->sin_addr) == 1 ? 0 : -1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for fd to be ready for events until deadline; 0 on timeout. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        return r;
    }
}

/* Sends the request and reads until the status line is complete or the peer closes. */
static int exchange(int fd, const char *path, int64_t deadline, char *buf, size_t cap,
                    size_t *ret_len)
{
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
    if (n < 0 || (size_t)n >= sizeof(req))
        return -EINVAL;
    if (wait_fd(fd, POLLOUT, deadline) <= 0)
        return -ETIMEDOUT;
    int soerr = 0;
    socklen_t slen = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) < 0 || soerr != 0)
        return -(soerr ? soerr : errno);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
        return -errno;
    size_t len = 0;
    while (len + 1 < cap && memchr(buf, '\n', len) == NULL) {
        if (wait_fd(fd, POLLIN, deadline) <= 0)
            return -ETIMEDOUT;
        ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break; /* closed: the relay found nothing listening in the container (yet) */
        len += (size_t)r;
    }
    buf[len] = '\0';
    *ret_len = len;
    return 0;
}

int runner_http_status(const char *host_port, const char *path, int timeout_ms, int *ret_status,
                       struct dlc_error **err)
{
    struct sockaddr_storage ss;
    socklen_t slen = 0;
    if (parse_host_port(host_port, &ss, &slen) < 0)
        return dlc_error_set(err, EINVAL, "'%s' is not ADDRESS:PORT", host_port);
    _cleanup_close_ int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return dlc_error_set_errno(err, errno, "socket");
    if (connect(fd, (struct sockaddr *)&ss, slen) < 0 && errno != EINPROGRESS)
        return dlc_error_set_errno(err, errno, "connect to %s", host_port);
    char buf[PROBE_MAX_ANSWER];
    size_t len = 0;
    int r = exchange(fd, path, now_ms() + timeout_ms, buf, sizeof(buf), &len);
    if (r < 0)
        return dlc_error_set_errno(err, -r, "GET http://%s%s", host_port, path);
    int status = 0;
    if (len > 0 && sscanf(buf, "HTTP/%*d.%*d %3d", &status) != 1)
        return dlc_error_set(err, EPROTO, "GET http://%s%s: not an HTTP answer", host_port, path);
    *ret_status = status;
    return 0;
}

/* ---- the log's tail ------------------------------------------------------------------------ */

int runner_log_tail(const char *root, const char *id, size_t lines, char **ret,
                    struct dlc_error **err)
{
    _cleanup_close_ int fd = memfd_create("dlc-log", MFD_CLOEXEC);
    if (fd < 0)
        return dlc_error_set_errno(err, errno, "memfd_create");
    if (runner_logs(root, id, false, fd, err) < 0)
        return -1;
    off_t size = lseek(fd, 0, SEEK_END);
    size_t want = size > (off_t)LOG_TAIL_MAX ? LOG_TAIL_MAX : (size_t)size;
    _cleanup_free_ char *buf = xmalloc(want + 1);
    ssize_t n = pread(fd, buf, want, size - (off_t)want);
    if (n < 0)
        return dlc_error_set_errno(err, errno, "read the log");
    buf[n] = '\0';
    size_t len = (size_t)n;
    while (len > 0 && buf[len - 1] == '\n')
        buf[--len] = '\0';
    const char *start = buf + len;
    for (size_t seen = 0; start > buf && seen < lines; start--)
        if (start[-1] == '\n' && ++seen == lines)
            break;
    *ret = xstrdup(start);
    return 0;
}
