/* publish-relay.c: one thread with an epoll loop copies bytes between each host-side
 * connection and its container-side twin, in both directions, passing half-closes on
 * (shutdown(SHUT_WR) once one side ended and its bytes are delivered). Edge-triggered:
 * any event on either socket of a pair pumps both directions until the kernel says
 * EAGAIN, so nothing waits on a notification that will not come. */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "publish.h"

#define RELAY_BUF   (32u << 10)
#define MAX_EVENTS  64
#define MAX_RELAYED 4096

enum { CLIENT, UPSTREAM };

struct pipe_buf {
    char data[RELAY_BUF];
    size_t off, len;
    bool eof;  /* the reading side ended */
    bool shut; /* ... and the writing side was shut down after the last byte */
};

struct conn;
struct conn_end {
    struct conn *conn;
};

struct conn {
    int fd[2];             /* CLIENT, UPSTREAM */
    bool connected;        /* the upstream connect finished */
    bool dead;             /* closed; freed after the current batch of events */
    struct pipe_buf to[2]; /* to[UPSTREAM]: client -> upstream; to[CLIENT]: the reverse */
    struct conn_end end[2];
    struct conn *prev, *next; /* all connections, under relay.lock */
    struct conn *next_dead;
};

/* Connections are handed to the thread through pending, and only the thread registers
 * them with epoll: it may close a connection on its first event, which must not race
 * with the registration of its other socket. */
struct publish_relay {
    int epfd;
    int wakefd; /* an eventfd: new connections pending, or stop */
    pthread_t thread;
    pthread_mutex_t lock;
    struct conn *pending; /* under lock */
    bool stopping;        /* under lock */
    struct conn *conns;   /* the relay thread's; n under lock */
    size_t n;
};

/* ---- one connection ------------------------------------------------------------------- */

static void conn_close(struct publish_relay *r, struct conn *c, struct conn **graveyard)
{
    if (c->dead)
        return;
    c->dead = true;
    for (int i = 0; i < 2; i++)
        close(c->fd[i]); /* removes it from the epoll set too */
    if (c->prev)
        c->prev->next = c->next;
    else
        r->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_lock(&r->lock);
    r->n--;
    pthread_mutex_unlock(&r->lock);
    c->next_dead = *graveyard;
    *graveyard = c;
}

/* Moves bytes from fd[src] into to[dst] and on to fd[dst] until EAGAIN. <0 on an error. */
static int pump(struct conn *c, int src, int dst)
{
    struct pipe_buf *b = &c->to[dst];
    bool can_write = dst == CLIENT || c->connected;
    for (;;) {
        while (b->off < b->len) {
            if (!can_write)
                return 0;
            ssize_t w = send(c->fd[dst], b->data + b->off, b->len - b->off, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return errno == EAGAIN ? 0 : -1;
            b->off += (size_t)w;
        }
        b->off = b->len = 0;
        if (b->eof) {
            if (!b->shut && can_write) {
                shutdown(c->fd[dst], SHUT_WR);
                b->shut = true;
            }
            return 0;
        }
        ssize_t n = recv(c->fd[src], b->data, sizeof(b->data), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        if (n == 0)
            b->eof = true;
        b->len = (size_t)n;
    }
}

/* The upstream connect has finished when the socket turns writable or errs. */
static int check_connected(struct conn *c, const struct conn_end *e, uint32_t events)
{
    if (c->connected || e != &c->end[UPSTREAM] || !(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
        return 0;
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(c->fd[UPSTREAM], SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr != 0)
        return -1; /* refused: nothing listens on that port in the container (yet) */
    c->connected = true;
    return 0;
}

static void on_event(struct publish_relay *r, struct conn_end *e, uint32_t events,
                     struct conn **graveyard)
{
    struct conn *c = e->conn;
    if (c->dead)
        return;
    if (check_connected(c, e, events) < 0 || pump(c, CLIENT, UPSTREAM) < 0 ||
        pump(c, UPSTREAM, CLIENT) < 0 || (c->to[UPSTREAM].shut && c->to[CLIENT].shut)) {
        conn_close(r, c, graveyard);
    }
}

/* ---- the thread ------------------------------------------------------------------------ */

static int watch(struct publish_relay *r, struct conn *c, int which)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.ptr = &c->end[which]};
    return epoll_ctl(r->epfd, EPOLL_CTL_ADD, c->fd[which], &ev);
}

/* Registers the pending connections; true when asked to stop. */
static bool take_pending(struct publish_relay *r, struct conn **graveyard)
{
    uint64_t v;
    if (read(r->wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        return true;
    pthread_mutex_lock(&r->lock);
    struct conn *list = r->pending;
    r->pending = NULL;
    bool stop = r->stopping;
    pthread_mutex_unlock(&r->lock);
    while (list) {
        struct conn *c = list;
        list = c->next;
        c->prev = NULL;
        c->next = r->conns;
        if (r->conns)
            r->conns->prev = c;
        r->conns = c;
        if (watch(r, c, UPSTREAM) < 0 || watch(r, c, CLIENT) < 0) {
            dlc_debug("publish: watch a connection: %s", strerror(errno));
            conn_close(r, c, graveyard);
        }
    }
    return stop;
}

static void bury(struct conn *graveyard)
{
    while (graveyard) {
        struct conn *next = graveyard->next_dead;
        free(graveyard);
        graveyard = next;
    }
}

static void *relay_main(void *arg)
{
    struct publish_relay *r = arg;
    struct epoll_event ev[MAX_EVENTS];
    bool stop = false;
    while (!stop) {
        int n = epoll_wait(r->epfd, ev, MAX_EVENTS, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        struct conn *graveyard = NULL;
        for (int i = 0; i < n; i++) {
            if (ev[i].data.ptr == NULL)
                stop = take_pending(r, &graveyard);
            else
                on_event(r, ev[i].data.ptr, ev[i].events, &graveyard);
        }
        bury(graveyard);
    }
    return NULL;
}

int publish_relay_new(struct publish_relay **ret, struct dlc_error **err)
{
    struct publish_relay *r = xcalloc(1, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    r->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    int rc = 0;
    if (r->epfd < 0 || r->wakefd < 0 || epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->wakefd, &ev) < 0)
        rc = errno;
    else
        rc = pthread_create(&r->thread, NULL, relay_main, r);
    if (rc != 0) {
        if (r->epfd >= 0)
            close(r->epfd);
        if (r->wakefd >= 0)
            close(r->wakefd);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return dlc_error_set_errno(err, rc, "start the port relay");
    }
    *ret = r;
    return 0;
}

static void wake(struct publish_relay *r)
{
    uint64_t one = 1;
    ssize_t w = write(r->wakefd, &one, sizeof(one));
    (void)w; /* EAGAIN: the counter is already non-zero, the thread wakes anyway */
}

int publish_relay_add(struct publish_relay *r, int client, int upstream, struct dlc_error **err)
{
    pthread_mutex_lock(&r->lock);
    if (r->n >= MAX_RELAYED || r->stopping) {
        bool stopping = r->stopping;
        pthread_mutex_unlock(&r->lock);
        close(client);
        close(upstream);
        if (stopping)
            return dlc_error_set(err, ESHUTDOWN, "the relay is stopping");
        return dlc_error_set(err, EMFILE, "more than %u connections at once", MAX_RELAYED);
    }
    struct conn *c = xcalloc(1, sizeof(*c));
    c->fd[CLIENT] = client;
    c->fd[UPSTREAM] = upstream;
    c->end[CLIENT].conn = c->end[UPSTREAM].conn = c;
    c->next = r->pending;
    r->pending = c;
    r->n++;
    pthread_mutex_unlock(&r->lock);
    wake(r);
    return 0;
}

size_t publish_relay_count(struct publish_relay *r)
{
    pthread_mutex_lock(&r->lock);
    size_t n = r->n;
    pthread_mutex_unlock(&r->lock);
    return n;
}

void publish_relay_free(struct publish_relay *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_mutex_unlock(&r->lock);
    wake(r);
    pthread_join(r->thread, NULL);
    struct conn *graveyard = NULL;
    while (r->pending) { /* added after the thread's last look */
        struct conn *c = r->pending;
        r->pending = c->next;
        c->next = r->conns;
        c->prev = NULL;
        if (r->conns)
            r->conns->prev = c;
        r->conns = c;
    }
    while (r->conns)
        conn_close(r, r->conns, &graveyard);
    bury(graveyard);
    close(r->epfd);
    close(r->wakefd);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
