/* store-lease.c: the writer lease that keeps gc from deleting blobs a build or pull stored
 * but has not tagged yet (until the tag, nothing in index.json reaches them).
 *
 * Writers hold a shared flock on $DLC_ROOT/images.gc.lock from their first blob until their
 * tag; gc takes it exclusively, so it runs only while no writer is between the two. flock
 * locks belong to an open file description, so a second open in the same process conflicts
 * with the first: gc checks the process's own leases (a list under a mutex) and refuses at
 * once instead of waiting on itself. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "oci-internal.h"

#define GC_POLL_MS 50

static pthread_mutex_t lease_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct oci_store *leases; /* stores holding a lease, linked by lease_next */

static int lease_take(struct oci_store *s, struct dlc_error **err)
{
    int fd = dlc_lock_path(s->gc_lock_path, false, err);
    if (fd < 0)
        return dlc_error_wrap(err, "writer lease on the store at %s", s->root);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return dlc_error_set_errno(err, e, "stat %s", s->gc_lock_path);
    }
    s->lease_fd = fd;
    s->lease_dev = st.st_dev;
    s->lease_ino = st.st_ino;
    s->lease_next = leases;
    leases = s;
    return 0;
}

int oci_store_lease(struct oci_store *s, struct dlc_error **err)
{
    pthread_mutex_lock(&lease_mutex);
    int r = s->lease_fd >= 0 ? 0 : lease_take(s, err);
    pthread_mutex_unlock(&lease_mutex);
    return r;
}

void oci_store_lease_release(struct oci_store *s)
{
    pthread_mutex_lock(&lease_mutex);
    if (s->lease_fd >= 0) {
        for (struct oci_store **p = &leases; *p != NULL; p = &(*p)->lease_next) {
            if (*p == s) {
                *p = s->lease_next;
                break;
            }
        }
        s->lease_next = NULL;
        close(s->lease_fd);
        s->lease_fd = -1;
    }
    pthread_mutex_unlock(&lease_mutex);
}

/* Whether a store object of this process holds a lease on the lock file st describes. */
static bool leased_here(const struct stat *st)
{
    bool found = false;
    pthread_mutex_lock(&lease_mutex);
    for (const struct oci_store *p = leases; p != NULL && !found; p = p->lease_next)
        found = p->lease_dev == st->st_dev && p->lease_ino == st->st_ino;
    pthread_mutex_unlock(&lease_mutex);
    return found;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int busy_error(bool here, int wait_ms, struct dlc_error **err)
{
    if (here)
        return dlc_error_set(err, EBUSY,
                             "this process is writing to the store (blobs it stored are not "
                             "tagged yet)");
    return dlc_error_set(err, EBUSY,
                         "another dlc process is writing to the store (a build or pull whose "
                         "image is not tagged yet); gave up after %d.%d s, try again when it "
                         "is done",
                         wait_ms / 1000, wait_ms % 1000 / 100);
}

/* Polls rather than blocks so that the wait is bounded; writers never hold the lease while
 * waiting for something gc holds, so this cannot deadlock between processes. */
static int lock_exclusive(int fd, const struct stat *st, const char *path, int wait_ms,
                          struct dlc_error **err)
{
    int64_t deadline = now_ms() + wait_ms;
    bool told = false;
    for (;;) {
        if (leased_here(st))
            return busy_error(true, wait_ms, err);
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK)
            return dlc_error_set_errno(err, errno, "lock %s", path);
        if (wait_ms >= 0 && now_ms() >= deadline)
            return busy_error(false, wait_ms, err);
        if (!told)
            dlc_info("waiting for another dlc process that is writing to the store");
        told = true;
        struct timespec ts = {0, GC_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int oci__store_gc_lock(struct oci_store *s, int wait_ms, struct dlc_error **err)
{
    oci_store_lease_release(s);
    _cleanup_close_ int fd = open(s->gc_lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return dlc_error_set_errno(err, errno, "open lock %s", s->gc_lock_path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return dlc_error_set_errno(err, errno, "stat %s", s->gc_lock_path);
    if (lock_exclusive(fd, &st, s->gc_lock_path, wait_ms, err) < 0)
        return -1;
    return TAKE_FD(fd);
}
