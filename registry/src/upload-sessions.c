/* upload-sessions.c: upload sessions, kept server-side by id: the data file under _uploads,
 * the running sha256, the size; a reaper thread drops sessions left idle too long. */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>

#include "registry-internal.h"

static void upload_free(struct upload *u)
{
    if (u == NULL)
        return;
    if (u->fd >= 0)
        close(u->fd);
    if (u->path)
        unlink(u->path);
    oci_digester_free(u->dig);
    free(u->repo);
    free(u->path);
    free(u);
}

/* Unlinks u from the list; the caller holds the lock. */
static void unlist(struct upload_table *t, struct upload *u)
{
    for (struct upload **p = &t->head; *p; p = &(*p)->next) {
        if (*p == u) {
            *p = u->next;
            t->n--;
            return;
        }
    }
}

static void *reaper_main(void *arg)
{
    struct upload_table *t = arg;
    unsigned interval = t->expiry_s < 120 ? (t->expiry_s + 1) / 2 : 60;
    pthread_mutex_lock(&t->lock);
    while (!t->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += interval;
        pthread_cond_timedwait(&t->wake, &t->lock, &until);
        time_t now = time(NULL);
        struct upload *expired = NULL;
        for (struct upload **p = &t->head; *p;) {
            struct upload *u = *p;
            if (!u->busy && now - u->touched >= (time_t)t->expiry_s) {
                *p = u->next;
                t->n--;
                u->next = expired;
                expired = u;
            } else {
                p = &u->next;
            }
        }
        pthread_mutex_unlock(&t->lock);
        while (expired) {
            struct upload *next = expired->next;
            dlc_debug("upload %s in %s expired", expired->id, expired->repo);
            upload_free(expired);
            expired = next;
        }
        pthread_mutex_lock(&t->lock);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

int uploads_init(struct upload_table *t, size_t max, unsigned expiry_s, struct dlc_error **err)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&t->wake, &ca);
    pthread_condattr_destroy(&ca);
    t->max = max;
    t->expiry_s = expiry_s ? expiry_s : 1;
    int e = pthread_create(&t->reaper, NULL, reaper_main, t);
    if (e != 0)
        return dlc_error_set_errno(err, e, "start the upload reaper");
    t->reaper_started = true;
    return 0;
}

void uploads_destroy(struct upload_table *t)
{
    pthread_mutex_lock(&t->lock);
    t->stopping = true;
    pthread_cond_broadcast(&t->wake);
    pthread_mutex_unlock(&t->lock);
    if (t->reaper_started)
        pthread_join(t->reaper, NULL);
    while (t->head) {
        struct upload *u = t->head;
        t->head = u->next;
        upload_free(u);
    }
    t->n = 0;
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->lock);
}

int upload_new(struct upload_table *t, struct rstore *st, const char *repo, struct upload **ret,
               struct dlc_error **err)
{
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return dlc_error_set_errno(err, errno, "getrandom");
    struct upload *u = xcalloc(1, sizeof(*u));
    dlc_hex_encode(rnd, sizeof(rnd), u->id);
    u->repo = xstrdup(repo);
    u->path = dlc_path_join(st->uploads_dir, u->id);
    u->fd = open(u->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (u->fd < 0) {
        int e = errno;
        free(u->path);
        u->path = NULL;
        upload_free(u);
        return dlc_error_set_errno(err, e, "create upload file");
    }
    u->dig = oci_digester_new();
    u->busy = true;
    u->touched = time(NULL);
    pthread_mutex_lock(&t->lock);
    if (t->n >= t->max) {
        pthread_mutex_unlock(&t->lock);
        upload_free(u);
        return dlc_error_set(err, EAGAIN, "too many uploads in progress (%zu)", t->max);
    }
    u->next = t->head;
    t->head = u;
    t->n++;
    pthread_mutex_unlock(&t->lock);
    *ret = u;
    return 0;
}

static bool id_is_valid(const char *id)
{
    size_t n = strlen(id);
    return n == 32 && strspn(id, "0123456789abcdef") == n;
}

int upload_acquire(struct upload_table *t, const char *repo, const char *id, struct upload **ret,
                   struct dlc_error **err)
{
    if (!id_is_valid(id))
        return dlc_error_set(err, ENOENT, "upload '%s' is unknown", id);
    pthread_mutex_lock(&t->lock);
    struct upload *u = t->head;
    while (u && !(strcmp(u->id, id) == 0 && strcmp(u->repo, repo) == 0))
        u = u->next;
    int r = 0;
    if (u == NULL)
        r = dlc_error_set(err, ENOENT, "upload %s is unknown in %s", id, repo);
    else if (u->busy)
        r = dlc_error_set(err, EBUSY, "upload %s is busy with another request", id);
    else {
        u->busy = true;
        u->touched = time(NULL);
        *ret = u;
    }
    pthread_mutex_unlock(&t->lock);
    return r;
}

void upload_release(struct upload_table *t, struct upload *u)
{
    pthread_mutex_lock(&t->lock);
    u->busy = false;
    u->touched = time(NULL);
    pthread_mutex_unlock(&t->lock);
}

void upload_drop(struct upload_table *t, struct upload *u)
{
    pthread_mutex_lock(&t->lock);
    unlist(t, u);
    pthread_mutex_unlock(&t->lock);
    upload_free(u);
}

int upload_append(struct upload *u, const void *data, size_t len, struct dlc_error **err)
{
    if (dlc_write_all(u->fd, data, len, err) < 0)
        return dlc_error_wrap(err, "upload %s", u->id);
    oci_digester_update(u->dig, data, len);
    u->size += len;
    return 0;
}

int upload_finish(struct upload_table *t, struct rstore *st, struct upload *u, const char *digest,
                  struct dlc_error **err)
{
    char actual[OCI_DIGEST_BUFSZ];
    oci_digester_final(u->dig, actual);
    int r = 0;
    if (strcmp(actual, digest) != 0)
        r = dlc_error_set(err, EBADMSG, "upload of %" PRIu64 " bytes hashes to %s, not %s", u->size,
                          actual, digest);
    else if (rstore_blob_commit(st, u->fd, u->path, digest, err) < 0 ||
             rstore_blob_link(st, u->repo, digest, err) < 0)
        r = -1;
    upload_drop(t, u);
    return r;
}
