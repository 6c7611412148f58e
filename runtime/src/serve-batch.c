/* serve-batch.c: coalesces the rows of concurrent /invocations requests into one
 * tensor_predict() call. The HTTP threads decode and queue; one thread per backend takes
 * every queued job (up to max_rows), predicts them together and hands each its rows. No
 * timer: a call starts as soon as the previous one ended, so a lone request waits for
 * nothing, and under load each call carries everything that arrived during the last one. */
#include <errno.h>
#include <string.h>

#include "serve.h"

struct serve_batcher {
    struct tensor_backend *be;
    const struct tensor_model *m;
    int64_t max_rows;
    int64_t outputs;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct serve_job *head, *tail; /* under lock */
    bool stopping;                 /* under lock */
    uint64_t calls, rows, jobs;    /* under lock */
    struct tensor_array x;         /* the batcher thread's concatenation buffer */
};

static void finish(struct serve_job *job)
{
    job->done(job); /* the job may be gone once this returns */
}

/* Fails every job of the list with the message of err. */
static void fail_all(struct serve_job *jobs, const struct dlc_error *err)
{
    while (jobs) {
        struct serve_job *next = jobs->next;
        jobs->rc = -1;
        dlc_error_set(&jobs->err, err ? err->code : EIO, "%s",
                      err ? err->msg : "prediction failed");
        finish(jobs);
        jobs = next;
    }
}

/* Gathers the jobs' rows into b->x (grown as needed). */
static int gather(struct serve_batcher *b, struct serve_job *jobs, int64_t rows,
                  struct dlc_error **err)
{
    int64_t cols = jobs->x.cols;
    if (b->x.data == NULL || b->x.rows * b->x.cols < rows * cols) {
        tensor_array_release(&b->x);
        if (tensor_array_alloc(&b->x, rows, cols, err) < 0)
            return -1;
    }
    b->x.rows = rows;
    b->x.cols = cols;
    b->x.shape[0] = rows;
    b->x.shape[1] = cols;
    int64_t at = 0;
    for (struct serve_job *j = jobs; j; j = j->next) {
        memcpy(b->x.data + at * cols, j->x.data, (size_t)(j->x.rows * cols) * sizeof(float));
        at += j->x.rows;
    }
    return 0;
}

/* Hands each job its share of y. */
static int scatter(const struct tensor_array *y, struct serve_job *jobs, struct dlc_error **err)
{
    int64_t at = 0;
    for (struct serve_job *j = jobs; j; j = j->next) {
        if (tensor_array_alloc(&j->y, j->x.rows, y->cols, err) < 0)
            return -1;
        memcpy(j->y.data, y->data + at * y->cols, (size_t)(j->x.rows * y->cols) * sizeof(float));
        at += j->x.rows;
    }
    return 0;
}

static void run_batch(struct serve_batcher *b, struct serve_job *jobs, int64_t rows)
{
    _cleanup_error_ struct dlc_error *err = NULL;
    int64_t chunk = rows < b->max_rows ? rows : b->max_rows;
    if (jobs->next == NULL) { /* one request: predict straight from its rows */
        jobs->rc = tensor_predict(b->be, b->m, &jobs->x, chunk, &jobs->y, &jobs->err);
        finish(jobs);
        return;
    }
    struct tensor_array y = {0};
    if (gather(b, jobs, rows, &err) < 0 ||
        tensor_predict(b->be, b->m, &b->x, chunk, &y, &err) < 0 || scatter(&y, jobs, &err) < 0) {
        tensor_array_release(&y);
        for (struct serve_job *j = jobs; j; j = j->next)
            tensor_array_release(&j->y);
        fail_all(jobs, err);
        return;
    }
    tensor_array_release(&y);
    while (jobs) {
        struct serve_job *next = jobs->next;
        jobs->rc = 0;
        finish(jobs);
        jobs = next;
    }
}

/* Takes the first job and those after it that fit in max_rows; called under lock. */
static struct serve_job *take(struct serve_batcher *b, int64_t *ret_rows)
{
    struct serve_job *first = b->head, *last = first;
    int64_t rows = first->x.rows;
    b->jobs++;
    while (last->next && rows + last->next->x.rows <= b->max_rows) {
        last = last->next;
        rows += last->x.rows;
        b->jobs++;
    }
    b->head = last->next;
    if (b->head == NULL)
        b->tail = NULL;
    last->next = NULL;
    *ret_rows = rows;
    return first;
}

static void *batcher_main(void *arg)
{
    struct serve_batcher *b = arg;
    pthread_mutex_lock(&b->lock);
    for (;;) {
        while (b->head == NULL && !b->stopping)
            pthread_cond_wait(&b->cond, &b->lock);
        if (b->head == NULL)
            break; /* stopping, and everything queued is done */
        int64_t rows = 0;
        struct serve_job *jobs = take(b, &rows);
        b->calls++;
        b->rows += (uint64_t)rows;
        pthread_mutex_unlock(&b->lock);
        run_batch(b, jobs, rows);
        pthread_mutex_lock(&b->lock);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

int serve_batcher_new(struct tensor_backend *be, const struct tensor_model *m, int64_t max_rows,
                      struct serve_batcher **ret, struct dlc_error **err)
{
    struct serve_batcher *b = xcalloc(1, sizeof(*b));
    b->be = be;
    b->m = m;
    b->max_rows = max_rows > 0 ? max_rows : 1;
    b->outputs = tensor_model_outputs(m);
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    int rc = pthread_create(&b->thread, NULL, batcher_main, b);
    if (rc != 0) {
        pthread_cond_destroy(&b->cond);
        pthread_mutex_destroy(&b->lock);
        free(b);
        return dlc_error_set_errno(err, rc, "start the prediction thread");
    }
    *ret = b;
    return 0;
}

void serve_batcher_submit(struct serve_batcher *b, struct serve_job *job)
{
    job->next = NULL;
    job->rc = 0;
    pthread_mutex_lock(&b->lock);
    if (b->stopping) {
        pthread_mutex_unlock(&b->lock);
        job->rc = dlc_error_set(&job->err, ESHUTDOWN, "the server is shutting down");
        finish(job);
        return;
    }
    if (b->tail)
        b->tail->next = job;
    else
        b->head = job;
    b->tail = job;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

void serve_batcher_stats(struct serve_batcher *b, uint64_t *ret_calls, uint64_t *ret_rows,
                         uint64_t *ret_jobs)
{
    pthread_mutex_lock(&b->lock);
    *ret_calls = b->calls;
    *ret_rows = b->rows;
    *ret_jobs = b->jobs;
    pthread_mutex_unlock(&b->lock);
}

void serve_batcher_free(struct serve_batcher *b)
{
    if (b == NULL)
        return;
    pthread_mutex_lock(&b->lock);
    b->stopping = true;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
    pthread_join(b->thread, NULL);
    tensor_array_release(&b->x);
    pthread_cond_destroy(&b->cond);
    pthread_mutex_destroy(&b->lock);
    free(b);
}
