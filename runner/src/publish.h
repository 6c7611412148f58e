/* publish.h: what the port-publishing files share (publish.c: -p parsing, host listeners,
 * accept; publish-dial.c: connections made inside a container's network namespace;
 * publish-relay.c: the thread that copies bytes between the two). Not installed. */
#ifndef DLC_RUNNER_PUBLISH_H
#define DLC_RUNNER_PUBLISH_H

#include <pthread.h>
#include <stdint.h>

#include "runner.h"

/* ---- publish-dial.c ------------------------------------------------------------------ */

/* A helper process inside the container's user (when it has its own) and network
 * namespaces that opens TCP connections there and passes them back over a unix socket.
 * A process, not a thread: a multithreaded process may not join a user namespace, and
 * rootless containers always have one. The sockets it makes stay in the container's
 * network namespace wherever they are used. */
struct publish_dialer {
    pid_t pid; /* 0 until started */
    int sock;  /* our end of the socketpair, -1 until started */
    pthread_mutex_t lock;
};

void publish_dialer_init(struct publish_dialer *d);
/* Forks the helper into a container's network namespace netns_fd (runner_container_netns_fd:
 * the runner opens it before the container's init stops being dumpable, so it is valid
 * rootless too) and the user namespace owning that, when it is not ours. EPERM/EACCES
 * naming the step on failure. */
int publish_dialer_start(struct publish_dialer *d, int netns_fd, struct dlc_error **err);
/* A nonblocking TCP socket connecting (connect may still be in progress) to
 * 127.0.0.1:port in the container. Thread-safe. */
int publish_dialer_dial(struct publish_dialer *d, uint16_t port, int *ret_fd,
                        struct dlc_error **err);
/* Ends the helper (closing our end makes it exit) and reaps it. */
void publish_dialer_stop(struct publish_dialer *d);

/* ---- publish-relay.c ----------------------------------------------------------------- */

struct publish_relay;
/* Starts the relay thread (its epoll loop). */
int publish_relay_new(struct publish_relay **ret, struct dlc_error **err);
/* Relays between client (accepted on the host) and upstream (from the dialer, maybe still
 * connecting) until both sides are done; takes both fds, closing them on failure too. */
int publish_relay_add(struct publish_relay *r, int client, int upstream, struct dlc_error **err);
/* Connections being relayed now. */
size_t publish_relay_count(struct publish_relay *r);
/* Stops the thread and closes every connection. NULL-safe. */
void publish_relay_free(struct publish_relay *r);

#endif
