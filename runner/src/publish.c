/* publish.c: -p [ADDR:]HOSTPORT:CONTAINERPORT. dlc listens on the host (127.0.0.1 unless
 * ADDR says otherwise) and, for each connection it accepts, opens one to
 * 127.0.0.1:CONTAINERPORT inside the container's network namespace and relays between
 * the two. No bridge, veth or iptables: it works the same as root and rootless. The
 * listeners are opened when the flag is parsed (a busy port fails before the container
 * starts); the relay thread and the namespace helper start with the first connection, in
 * whichever process runs the container's loop (the foreground dlc or the -d monitor). */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "publish.h"

struct published {
    struct runner_ports *ports;
    int fd;     /* listening */
    char *host; /* "127.0.0.1:8080", "[::1]:8080": as bound */
    uint16_t host_port, container_port;
};

struct runner_ports {
    struct published **v;
    size_t n;
    struct publish_dialer dialer;
    pid_t dialer_for; /* the container init the dialer joined */
    struct publish_relay *relay;
    bool warned;
};

struct runner_ports *runner_ports_new(void)
{
    struct runner_ports *p = xcalloc(1, sizeof(*p));
    publish_dialer_init(&p->dialer);
    return p;
}

/* ---- parsing --------------------------------------------------------------------------- */

struct publish_arg {
    char *addr; /* numeric host address */
    uint16_t host_port, container_port;
};

static int parse_port(const char *s, size_t len, int min, const char *arg, uint16_t *ret,
                      struct dlc_error **err)
{
    _cleanup_free_ char *p = xstrndup(s, len);
    int v = 0;
    if (dlc_parse_int(p, NULL, min, 65535, &v, NULL) < 0)
        return dlc_error_set(err, EINVAL, "-p %s: '%s' is not a port number (%d-65535)", arg, p,
                             min);
    *ret = (uint16_t)v;
    return 0;
}

/* The address part: "" (127.0.0.1), "0.0.0.0", "::1" given as "[::1]". */
static int parse_addr(const char *s, size_t len, const char *arg, char **ret,
                      struct dlc_error **err)
{
    if (len == 0) {
        *ret = xstrdup("127.0.0.1");
        return 0;
    }
    if (s[0] == '[') {
        if (len < 3 || s[len - 1] != ']')
            return dlc_error_set(err, EINVAL, "-p %s: an IPv6 address goes in brackets", arg);
        s++;
        len -= 2;
    }
    _cleanup_free_ char *a = xstrndup(s, len);
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, a, buf) != 1 && inet_pton(AF_INET6, a, buf) != 1)
        return dlc_error_set(err, EINVAL, "-p %s: '%s' is not an IP address", arg, a);
    *ret = TAKE_PTR(a);
    return 0;
}

/* Splits "[ADDR:]HOSTPORT:CONTAINERPORT" (ADDR "[v6]" in brackets) or "CONTAINERPORT". */
static int parse_fields(const char *arg, char *s, const char **addr, size_t *addr_len,
                        const char **host, const char **container, struct dlc_error **err)
{
    *addr = "";
    *addr_len = 0;
    *host = NULL;
    *container = s;
    if (s[0] == '[') {
        char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return dlc_error_set(err, EINVAL, "-p %s: expected [ADDR]:HOSTPORT:CONTAINERPORT", arg);
        *addr = s;
        *addr_len = (size_t)(close + 1 - s);
        s = close + 2;
    }
    char *colon = strchr(s, ':');
    if (colon && strchr(colon + 1, ':')) { /* ADDR:HOSTPORT:CONTAINERPORT */
        if (*addr_len)
            return dlc_error_set(err, EINVAL, "-p %s: too many ':'", arg);
        *addr = s;
        *addr_len = (size_t)(colon - s);
        s = colon + 1;
        colon = strchr(s, ':');
        if (strchr(colon + 1, ':'))
            return dlc_error_set(err, EINVAL, "-p %s: an IPv6 address goes in brackets", arg);
    }
    if (colon) {
        *colon = '\0';
        *host = s;
        *container = colon + 1;
    } else if (*addr_len) {
        return dlc_error_set(err, EINVAL, "-p %s: expected [ADDR]:HOSTPORT:CONTAINERPORT", arg);
    } else {
        *container = s;
    }
    return 0;
}

static int parse_arg(const char *arg, struct publish_arg *ret, struct dlc_error **err)
{
    _cleanup_free_ char *s = xstrdup(arg);
    char *slash = strchr(s, '/');
    if (slash) {
        if (strcmp(slash, "/tcp") != 0)
            return dlc_error_set(err, EINVAL, "-p %s: only tcp ports can be published", arg);
        *slash = '\0';
    }
    const char *addr = NULL, *host = NULL, *container = NULL;
    size_t addr_len = 0;
    if (parse_fields(arg, s, &addr, &addr_len, &host, &container, err) < 0 ||
        parse_port(container, strlen(container), 1, arg, &ret->container_port, err) < 0)
        return -1;
    ret->host_port = 0; /* CONTAINERPORT alone: any free host port */
    if (host && host[0] && parse_port(host, strlen(host), 0, arg, &ret->host_port, err) < 0)
        return -1;
    return parse_addr(addr, addr_len, arg, &ret->addr, err);
}

/* ---- listening ------------------------------------------------------------------------- */

static char *format_host(const struct sockaddr_storage *ss)
{
    char a[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
        return xasprintf("[%s]:%u", a, ntohs(s6->sin6_port));
    }
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
    return xasprintf("%s:%u", a, ntohs(s4->sin_port));
}

static int resolve(const struct publish_arg *pa, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, pa->addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(pa->host_port);
        *len = sizeof(*s4);
        return AF_INET;
    }
    DLC_ASSERT(inet_pton(AF_INET6, pa->addr, &s6->sin6_addr) == 1);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(pa->host_port);
    *len = sizeof(*s6);
    return AF_INET6;
}

static int listen_on(const struct publish_arg *pa, struct published *pub, struct dlc_error **err)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    int family = resolve(pa, &ss, &len);
    _cleanup_free_ char *want = format_host(&ss);
    _cleanup_close_ int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, SOMAXCONN) < 0)
        return dlc_error_set_errno(err, errno, "publish %s", want);
    len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return dlc_error_set_errno(err, errno, "publish %s", want);
    pub->host = format_host(&ss);
    pub->host_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                    : ((struct sockaddr_in *)&ss)->sin_port);
    pub->container_port = pa->container_port;
    pub->fd = TAKE_FD(fd);
    return 0;
}

int runner_ports_add(struct runner_ports *p, const char *arg, struct dlc_error **err)
{
    struct publish_arg pa = {0};
    if (parse_arg(arg, &pa, err) < 0)
        return -1;
    struct published *pub = xcalloc(1, sizeof(*pub));
    pub->ports = p;
    int r = listen_on(&pa, pub, err);
    free(pa.addr);
    if (r < 0) {
        free(pub);
        return -1;
    }
    p->v = xrealloc(p->v, (p->n + 1) * sizeof(struct published *));
    p->v[p->n++] = pub;
    return 0;
}

size_t runner_ports_count(const struct runner_ports *p)
{
    return p ? p->n : 0;
}

const char *runner_ports_host(const struct runner_ports *p, size_t i)
{
    DLC_ASSERT(i < p->n);
    return p->v[i]->host;
}

uint16_t runner_ports_host_port(const struct runner_ports *p, size_t i)
{
    DLC_ASSERT(i < p->n);
    return p->v[i]->host_port;
}

uint16_t runner_ports_container_port(const struct runner_ports *p, size_t i)
{
    DLC_ASSERT(i < p->n);
    return p->v[i]->container_port;
}

/* ---- forwarding ------------------------------------------------------------------------ */

/* The relay thread and the namespace helper, started for container c on first use. */
static int ensure_started(struct runner_ports *p, struct runner_container *c,
                          struct dlc_error **err)
{
    if (p->relay == NULL && publish_relay_new(&p->relay, err) < 0)
        return -1;
    pid_t pid = runner_container_pid(c);
    if (p->dialer.pid != 0 && p->dialer_for == pid)
        return 0;
    publish_dialer_stop(&p->dialer);
    if (publish_dialer_start(&p->dialer, runner_container_netns_fd(c), err) < 0)
        return -1;
    p->dialer_for = pid;
    return 0;
}

static void forward(struct published *pub, struct runner_container *c, int client)
{
    struct runner_ports *p = pub->ports;
    _cleanup_error_ struct dlc_error *err = NULL;
    int upstream = -1;
    if (ensure_started(p, c, &err) < 0) {
        if (!p->warned)
            dlc_warn("publish %s: %s", pub->host, err->msg);
        p->warned = true;
        close(client);
        return;
    }
    if (publish_dialer_dial(&p->dialer, pub->container_port, &upstream, &err) < 0) {
        dlc_debug("publish %s: %s", pub->host, err->msg);
        if (err->code == EPIPE || err->code == ECONNRESET)
            publish_dialer_stop(&p->dialer); /* the helper died: a new one next time */
        close(client);
        return;
    }
    if (publish_relay_add(p->relay, client, upstream, &err) < 0)
        dlc_debug("publish %s: %s", pub->host, err->msg);
}

static int on_accept(struct runner_container *c, int fd, short revents, void *data)
{
    (void)revents;
    for (;;) {
        int client = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (client < 0 && errno == EINTR)
            continue;
        if (client < 0)
            return 0; /* EAGAIN: all taken; anything else: the next poll retries */
        forward(data, c, client);
    }
}

int runner_ports_attach(struct runner_ports *p, struct runner_spec *spec, struct dlc_error **err)
{
    if (p == NULL || p->n == 0)
        return 0;
    if (spec->network == RUNNER_NET_HOST)
        return dlc_error_set(err, EINVAL,
                             "-p publishes ports of a container's own network; with --network "
                             "host its ports are the host's already");
    for (size_t i = 0; i < p->n; i++) {
        struct runner_poll_source src = {
                .fd = p->v[i]->fd, .events = POLLIN, .cb = on_accept, .data = p->v[i]};
        runner_spec_add_poll(spec, &src);
    }
    return 0;
}

size_t runner_ports_connections(const struct runner_ports *p)
{
    return p && p->relay ? publish_relay_count(p->relay) : 0;
}

void runner_ports_free(struct runner_ports *p)
{
    if (p == NULL)
        return;
    publish_relay_free(p->relay);
    publish_dialer_stop(&p->dialer);
    pthread_mutex_destroy(&p->dialer.lock);
    for (size_t i = 0; i < p->n; i++) {
        close(p->v[i]->fd);
        free(p->v[i]->host);
        free(p->v[i]);
    }
    free(p->v);
    free(p);
}
