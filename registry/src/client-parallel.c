/* client-parallel.c: blob transfers for push and pull alike: the blobs an image manifest
 * needs, and a bounded pool of threads. Each thread takes the next blob until none is left
 * or one has failed; the first failure is kept, later ones are dropped (their blobs were
 * started before it was known). */
#include <string.h>

#include "registry-internal.h"

#define MAX_THREADS 32 /* rclient_new caps the parallel option there */

struct pool {
    rclient_blob_fn fn;
    void *data;
    const char *what;
    pthread_mutex_t lock;
    const struct oci_descriptor *const *blobs;
    size_t n, next;
    struct dlc_error *err; /* the first failure */
};

static void *worker(void *arg)
{
    struct pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        bool stop = p->err != NULL || p->next >= p->n;
        const struct oci_descriptor *d = stop ? NULL : p->blobs[p->next++];
        pthread_mutex_unlock(&p->lock);
        if (stop)
            return NULL;
        struct dlc_error *e = NULL;
        if (p->fn(p->data, d, &e) < 0) {
            dlc_error_wrap(&e, "%s %s", p->what, d->digest);
            pthread_mutex_lock(&p->lock);
            if (p->err == NULL)
                p->err = TAKE_PTR(e);
            pthread_mutex_unlock(&p->lock);
            dlc_error_free(&e);
        }
    }
}

int rclient_each_blob(struct rclient *c, const struct oci_descriptor *const *blobs, size_t n,
                      rclient_blob_fn fn, void *data, const char *what, struct dlc_error **err)
{
    for (size_t i = 0; i < n; i++)
        rclient_progress(c, blobs[i]->digest, REGISTRY_BLOB_WAITING, 0, (uint64_t)blobs[i]->size);
    struct pool p = {.fn = fn, .data = data, .what = what, .blobs = blobs, .n = n};
    pthread_mutex_init(&p.lock, NULL);
    size_t nt = rclient_options(c)->parallel;
    if (nt > n)
        nt = n;
    if (nt > MAX_THREADS)
        nt = MAX_THREADS;
    pthread_t th[MAX_THREADS];
    size_t started = 0;
    for (; started < nt; started++)
        if (pthread_create(&th[started], NULL, worker, &p) != 0)
            break;
    if (started == 0)
        worker(&p); /* no thread could start: do the work here */
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&p.lock);
    if (p.err)
        return dlc_error_move(err, &p.err);
    return 0;
}

const struct oci_descriptor **rclient_manifest_blobs(const struct oci_manifest *m, size_t *ret_n)
{
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
    const struct oci_descriptor **v = xcalloc(m->n_layers + 1, sizeof(*v));
    size_t n = 0;
    v[n++] = &m->config;
    for (size_t i = 0; i < m->n_layers; i++) {
        bool dup = false;
        for (size_t k = 0; k < n && !dup; k++)
            dup = strcmp(v[k]->digest, m->layers[i].digest) == 0;
        if (!dup)
            v[n++] = &m->layers[i];
    }
    *ret_n = n;
    return v;
}
