/* test_publish.c: -p parsing and listening, and the forwarding path (namespace helper +
 * relay) against an echo server in a real separate user + network namespace. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "unit.h"
#include "../../../runner/src/publish.h"

#define N_CLIENTS 50

/* ---- -p values ------------------------------------------------------------------------- */

static void add_ok(const char *arg, const char *want_host_prefix, uint16_t want_container)
{
    struct dlc_error *err = NULL;
    struct runner_ports *p = runner_ports_new();
    if (runner_ports_add(p, arg, &err) < 0)
        fail_msg("-p %s: %s", arg, err->msg);
    assert_int_equal(runner_ports_count(p), 1);
    const char *host = runner_ports_host(p, 0);
    if (strncmp(host, want_host_prefix, strlen(want_host_prefix)) != 0)
        fail_msg("-p %s: bound %s, want %s...", arg, host, want_host_prefix);
    assert_true(runner_ports_host_port(p, 0) > 0);
    assert_int_equal(runner_ports_container_port(p, 0), want_container);
    runner_ports_free(p);
}

static void add_bad(const char *arg, int code, const char *want)
{
    struct dlc_error *err = NULL;
    struct runner_ports *p = runner_ports_new();
    assert_dlc_error(runner_ports_add(p, arg, &err), &err, code, want);
    assert_int_equal(runner_ports_count(p), 0);
    runner_ports_free(p);
}

static void test_publish__parse(void **state)
{
    (void)state;
    add_ok("0:8080", "127.0.0.1:", 8080);
    add_ok("8080", "127.0.0.1:", 8080);
    add_ok("127.0.0.1:0:80/tcp", "127.0.0.1:", 80);
    add_ok("127.0.0.1::81", "127.0.0.1:", 81);
    add_ok("0.0.0.0:0:9000", "0.0.0.0:", 9000);
    add_ok("[::1]:0:8080", "[::1]:", 8080);
    add_bad("8080:8080/udp", EINVAL, "only tcp");
    add_bad("x:8080", EINVAL, "'x' is not a port number");
    add_bad("1:2:3:4", EINVAL, "IPv6 address goes in brackets");
    add_bad("localhost:0:80", EINVAL, "'localhost' is not an IP address");
    add_bad("0:0", EINVAL, "'0' is not a port number (1-65535)");
    add_bad("0:70000", EINVAL, "not a port number");
    add_bad("[::1:0:80", EINVAL, "expected [ADDR]:HOSTPORT:CONTAINERPORT");
}

static void test_publish__busy_port(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    struct runner_ports *p = runner_ports_new();
    assert_int_equal(runner_ports_add(p, "0:80", &err), 0);
    char arg[32];
    snprintf(arg, sizeof(arg), "%u:80", runner_ports_host_port(p, 0));
    struct runner_ports *q = runner_ports_new();
    assert_dlc_error(runner_ports_add(q, arg, &err), &err, EADDRINUSE, "publish 127.0.0.1:");
    runner_ports_free(q);
    runner_ports_free(p);
}

/* ---- forwarding ------------------------------------------------------------------------ */

/* The echo server: in a new user + network namespace, answers each connection with
 * "echo:" + everything it read until the client's half-close. */
static void echo_main(int report)
{
    if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0)
        _exit(10);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        _exit(11);
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
        _exit(12);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 128) < 0 ||
        getsockname(l, (struct sockaddr *)&sa, &len) < 0)
        _exit(13);
    uint16_t port = ntohs(sa.sin_port);
    if (write(report, &port, sizeof(port)) != sizeof(port))
        _exit(14);
    for (;;) {
        int c = accept(l, NULL, NULL);
        if (c < 0)
            continue;
        char buf[4096] = "echo:";
        size_t n = 5;
        ssize_t r;
        while (n < sizeof(buf) && (r = read(c, buf + n, sizeof(buf) - n)) > 0)
            n += (size_t)r;
        if (write(c, buf, n) < 0)
            _exit(15);
        close(c);
    }
}

struct netns_fixture {
    pid_t pid;
    uint16_t port; /* the echo server's, inside */
    int netns;
    struct publish_dialer dialer;
    struct publish_relay *relay;
    int listener; /* "host side" */
    uint16_t host_port;
};

static int setup(void **state)
{
    struct netns_fixture *f = xcalloc(1, sizeof(*f));
    int p[2];
    assert_int_equal(pipe(p), 0);
    f->pid = fork();
    if (f->pid == 0)
        echo_main(p[1]);
    close(p[1]);
    if (read(p[0], &f->port, sizeof(f->port)) != sizeof(f->port))
        fail_msg("the echo server did not start (no unprivileged user namespaces?)");
    close(p[0]);
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)f->pid);
    f->netns = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(f->netns >= 0);
    publish_dialer_init(&f->dialer);
    struct dlc_error *err = NULL;
    if (publish_dialer_start(&f->dialer, f->netns, &err) < 0 ||
        publish_relay_new(&f->relay, &err) < 0)
        fail_msg("%s", err->msg);
    f->listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(f->listener, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(f->listener, 256), 0);
    assert_int_equal(getsockname(f->listener, (struct sockaddr *)&sa, &len), 0);
    f->host_port = ntohs(sa.sin_port);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct netns_fixture *f = *state;
    publish_relay_free(f->relay);
    publish_dialer_stop(&f->dialer);
    kill(f->pid, SIGKILL);
    waitpid(f->pid, NULL, 0);
    close(f->netns);
    close(f->listener);
    free(f);
    return 0;
}

static int connect_host(struct netns_fixture *f)
{
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(f->host_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return c;
}

/* Accepts one host connection and relays it to port inside the namespace. */
static void forward_one(struct netns_fixture *f, uint16_t port)
{
    struct dlc_error *err = NULL;
    int host = accept4(f->listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    assert_true(host >= 0);
    int up = -1;
    if (publish_dialer_dial(&f->dialer, port, &up, &err) < 0 ||
        publish_relay_add(f->relay, host, up, &err) < 0)
        fail_msg("%s", err->msg);
}

static char *read_all(int fd)
{
    struct dlc_strbuf sb = DLC_STRBUF_INIT;
    char buf[512];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        dlc_strbuf_append_len(&sb, buf, (size_t)n);
    return dlc_strbuf_detach(&sb, NULL);
}

static void test_publish__relays_into_the_namespace(void **state)
{
    struct netns_fixture *f = *state;
    int clients[N_CLIENTS];
    for (int i = 0; i < N_CLIENTS; i++) {
        clients[i] = connect_host(f);
        forward_one(f, f->port);
        char msg[32];
        int n = snprintf(msg, sizeof(msg), "hello %d", i);
        assert_int_equal(write(clients[i], msg, (size_t)n), n);
        shutdown(clients[i], SHUT_WR); /* the half-close must reach the server */
    }
    for (int i = 0; i < N_CLIENTS; i++) {
        char want[32];
        snprintf(want, sizeof(want), "echo:hello %d", i);
        char *got = read_all(clients[i]);
        assert_string_equal(got, want);
        free(got);
        close(clients[i]);
    }
    for (int i = 0; i < 100 && publish_relay_count(f->relay) > 0; i++)
        usleep(10000);
    assert_int_equal(publish_relay_count(f->relay), 0);
}

static void test_publish__refused_inside_closes_the_client(void **state)
{
    struct netns_fixture *f = *state;
    /* Nothing listens on port+1 inside the namespace (only the echo server exists there). */
    uint16_t closed_port = (uint16_t)(f->port == 65535 ? 1 : f->port + 1);
    int c = connect_host(f);
    forward_one(f, closed_port);
    char *got = read_all(c);
    assert_string_equal(got, "");
    free(got);
    close(c);
}

static void test_publish__needs_the_namespace_fd(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    struct publish_dialer d;
    publish_dialer_init(&d);
    assert_dlc_error(publish_dialer_start(&d, -1, &err), &err, EBADF,
                     "the container's network namespace");
    assert_int_equal(d.pid, 0);
    pthread_mutex_destroy(&d.lock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_publish__parse),
            cmocka_unit_test(test_publish__busy_port),
            cmocka_unit_test_setup_teardown(test_publish__relays_into_the_namespace, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_publish__refused_inside_closes_the_client, setup,
                                            teardown),
            cmocka_unit_test(test_publish__needs_the_namespace_fd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
