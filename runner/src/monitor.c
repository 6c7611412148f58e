/* monitor.c: the run loop of a container's monitor: setup errors from the child, signals
 * to forward, --timeout and --stop-timeout timers, extra poll sources (port publishing),
 * until the container's init exits. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

#include "runner-internal.h"

enum { P_SIGNAL, P_CHILD, P_SETUP, P_TIMER, P_FIXED };

struct loop {
    struct runner_container *ct;
    struct run_outcome *o;
    int sigfd, timerfd;
    bool kill_armed; /* the timer now means SIGKILL */
    bool started;
    struct dlc_strbuf setup; /* what the child reported */
};

static void arm(struct loop *l, int seconds)
{
    struct itimerspec its = {.it_value = {seconds > 0 ? seconds : 0, seconds > 0 ? 0 : 1}};
    timerfd_settime(l->timerfd, 0, &its, NULL);
}

/* The stop sequence: the stop signal now, SIGKILL after --stop-timeout. */
static void begin_stop(struct loop *l, int sig)
{
    struct runner_container *ct = l->ct;
    if (ct->stopping) {
        kill(ct->pid, SIGKILL); /* asked twice: no more waiting */
        return;
    }
    ct->stopping = true;
    kill(ct->pid, sig);
    l->kill_armed = true;
    arm(l, ct->spec->stop_timeout);
}

static void on_signal(struct loop *l)
{
    struct signalfd_siginfo si;
    while (read(l->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        int sig = (int)si.ssi_signo;
        if (sig == SIGINT || sig == SIGTERM)
            begin_stop(l, sig);
        else
            kill(l->ct->pid, sig);
    }
}

static void on_timer(struct loop *l)
{
    uint64_t n;
    if (read(l->timerfd, &n, sizeof(n)) < 0)
        return;
    if (l->kill_armed) {
        kill(l->ct->pid, SIGKILL);
        return;
    }
    l->ct->timed_out = true; /* --timeout: SageMaker's MaxRuntimeInSeconds */
    begin_stop(l, l->ct->stop_signal);
}

/* 1 when the setup pipe reached EOF. */
static int on_setup(struct loop *l, struct dlc_error **err)
{
    char buf[4096];
    ssize_t n = read(l->ct->err_rd, buf, sizeof(buf));
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 0 : 1;
    if (n > 0) {
        dlc_strbuf_append_len(&l->setup, buf, (size_t)n);
        return 0;
    }
    close(l->ct->err_rd);
    l->ct->err_rd = -1;
    if (l->setup.len == 0 && !l->started) {
        /* every copy closed without a word: the command was exec'd */
        l->started = true;
        if (l->ct->notify_fd >= 0) { /* -d: the dlc waiting for us can return */
            _cleanup_free_ char *msg = xasprintf("S%s", l->ct->cfg.id);
            if (write(l->ct->notify_fd, msg, strlen(msg)) < 0)
                dlc_debug("notify: %s", strerror(errno));
            close(l->ct->notify_fd);
            l->ct->notify_fd = -1;
        }
        const struct runner_hooks *h = &l->ct->spec->hooks;
        if (h->started && h->started(l->ct, h->data, err) < 0)
            begin_stop(l, SIGKILL);
    }
    return 1;
}

static void parse_setup(struct loop *l)
{
    if (l->setup.len == 0)
        return;
    const char *s = dlc_strbuf_str(&l->setup);
    char *end = NULL;
    long code = strtol(s, &end, 10);
    l->o->setup_code = code >= 1 && code <= 255 ? (int)code : RUNNER_EXIT_FAILED;
    l->o->setup_msg = xstrdup(end && *end == ' ' ? end + 1 : s);
}

/* After init exited: what the child still had to say (the pipe closes with it). */
static void drain_setup(struct loop *l)
{
    while (l->ct->err_rd >= 0) {
        struct pollfd p = {l->ct->err_rd, POLLIN, 0};
        if (poll(&p, 1, 2000) <= 0 || on_setup(l, NULL) == 1)
            break;
    }
}

static int collect(struct loop *l)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    /* WNOWAIT: init stays a zombie (its pid not reusable) until the state says exited */
    while (waitid(P_PIDFD, (id_t)l->ct->pidfd, &si, WEXITED | WNOWAIT) < 0) {
        if (errno != EINTR)
            return -1;
    }
    l->o->exited = true;
    l->o->status = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
    l->o->init_signal = si.si_code == CLD_EXITED ? 0 : si.si_status;
    return 0;
}

static int run_loop(struct loop *l, struct pollfd *fds, size_t n, struct dlc_error **err)
{
    const struct runner_spec *spec = l->ct->spec;
    for (;;) {
        fds[P_SETUP].fd = l->ct->err_rd;
        if (l->ct->stop_asked && !l->ct->stopping)
            begin_stop(l, l->ct->stop_signal);
        if (poll(fds, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            return dlc_error_set_errno(err, errno, "poll");
        }
        if (fds[P_SETUP].revents)
            on_setup(l, err);
        if (fds[P_SIGNAL].revents)
            on_signal(l);
        if (fds[P_TIMER].revents)
            on_timer(l);
        for (size_t i = P_FIXED; i < n; i++) {
            const struct runner_poll_source *src = &spec->polls[i - P_FIXED];
            if (fds[i].revents && src->cb(l->ct, fds[i].fd, fds[i].revents, src->data) < 0)
                begin_stop(l, l->ct->stop_signal);
        }
        if (fds[P_CHILD].revents)
            return collect(l) < 0 ? dlc_error_set_errno(err, errno, "wait for the container") : 0;
    }
}

int runner_monitor(struct runner_container *ct, struct run_outcome *o, struct dlc_error **err)
{
    sigset_t set;
    runner_signals_forwarded(&set);
    struct loop l = {ct, o, signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK),
                     timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)};
    memset(o, 0, sizeof(*o));
    if (l.sigfd < 0 || l.timerfd < 0) {
        dlc_error_set_errno(err, errno, "signalfd/timerfd");
        kill(ct->pid, SIGKILL);
    } else if (ct->spec->timeout > 0) {
        arm(&l, ct->spec->timeout);
    }
    size_t n = P_FIXED + ct->spec->n_polls;
    _cleanup_free_ struct pollfd *fds = xcalloc(n, sizeof(*fds));
    fds[P_SIGNAL] = (struct pollfd){l.sigfd, POLLIN, 0};
    fds[P_CHILD] = (struct pollfd){ct->pidfd, POLLIN, 0};
    fds[P_SETUP] = (struct pollfd){ct->err_rd, POLLIN, 0};
    fds[P_TIMER] = (struct pollfd){l.timerfd, POLLIN, 0};
    for (size_t i = P_FIXED; i < n; i++)
        fds[i] = (struct pollfd){ct->spec->polls[i - P_FIXED].fd,
                                 ct->spec->polls[i - P_FIXED].events, 0};
    int r = err && *err ? -1 : run_loop(&l, fds, n, err);
    if (r == 0 || o->exited) {
        drain_setup(&l);
        parse_setup(&l);
    }
    o->started = l.started && o->setup_code == 0;
    if (l.sigfd >= 0)
        close(l.sigfd);
    if (l.timerfd >= 0)
        close(l.timerfd);
    dlc_strbuf_release(&l.setup);
    return r;
}

void runner_container_stop(struct runner_container *c)
{
    c->stop_asked = true;
}

pid_t runner_container_pid(const struct runner_container *c)
{
    return c->pid;
}

int runner_container_netns_fd(const struct runner_container *c)
{
    return c->netns_fd;
}

const char *runner_container_id(const struct runner_container *c)
{
    return c->cfg.id;
}
