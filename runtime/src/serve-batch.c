/* serve-batch.c: coalesces the rows of concurrent /invocations requests into one
 * prediction. The HTTP threads decode and queue; one thread per backend takes every queued
 * job (up to max_rows), predicts them together and hands each its rows. No timer: a call
 * starts as soon as the previous one ended, so a lone request waits for nothing, and under
 * load each call carries everything that arrived during the last one. The predictor (the
 * model's memory plan and uploaded weights) is made once, here, and used only by that
 * thread, so a call costs the forward pass and nothing else. */
#include <errno.h>
#include <string.h>

#include "serve.h"

struct serve_batcher {
    struct tensor_predictor *pred; /* the batcher thread's (the warm-up pass runs before it) */
    int64_t max_rows;
    int64_t outputs;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct serve_job *head, *tail; /* under lock */
    bool stopping;                 /* under lock */
    uint64_t calls, rows, jobs;    /* under lock */
    struct tensor_array x;         /* the batcher thread's concatenation buffer */
    int64_t x_cap;                 /* floats x.data holds (x.rows shrinks to each batch's) */
    float *y;                      /* and its output buffer, max_rows x outputs */
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

/* Gathers the jobs' rows into b->x (grown when a batch needs more than it ever had). */
static int gather(struct serve_batcher *b, struct serve_job *jobs, int64_t rows,
                  struct dlc_error **err)
{
    int64_t cols = jobs->x.cols;
    if (rows * cols > b->x_cap) {
        tensor_array_release(&b->x);
        if (tensor_array_alloc(&b->x, rows, cols, err) < 0)
            return -1;
        b->x_cap = rows * cols;
    }
    b->x.rows = rows;
    b->x.cols = cols;
    b->x.shape[0] = rows;
    b->x.shape[1] = cols;
    int64_t at = 0;
    for (struct serve_job *j = jobs; j; j = j->next) {
        if (j->x.cols != cols) /* the HTTP layer checks; never read past a job's rows */
            return dlc_error_set(err, EINVAL, "requests of %lld and %lld features in one batch",
                                 (long long)cols, (long long)j->x.cols);
        memcpy(b->x.data + at * cols, j->x.data, (size_t)(j->x.rows * cols) * sizeof(float));
        at += j->x.rows;
    }
    return 0;
}

/* Hands each job its share of b->y. */
static int scatter(const struct serve_batcher *b, struct serve_job *jobs, struct dlc_error **err)
{
    int64_t at = 0;
    for (struct serve_job *j = jobs; j; j = j->next) {
        if (tensor_array_alloc(&j->y, j->x.rows, b->outputs, err) < 0)
            return -1;
        memcpy(j->y.data, b->y + at * b->outputs, (size_t)(j->x.rows * b->outputs) * sizeof(float));
        at += j->x.rows;
    }
    return 0;
}

static void run_batch(struct serve_batcher *b, struct serve_job *jobs, int64_t rows)
{
    _cleanup_error_ struct dlc_error *err = NULL;
    if (jobs->next == NULL) { /* one request (maybe above max_rows): straight from its rows */
        jobs->rc = tensor_predictor_run(b->pred, &jobs->x, &jobs->y, &jobs->err);
        finish(jobs);
        return;
    }
    /* several: take() kept them within max_rows, what b->y holds */
    if (gather(b, jobs, rows, &err) < 0 ||
        tensor_predictor_run_into(b->pred, &b->x, b->y, &err) < 0 || scatter(b, jobs, &err) < 0) {
        for (struct serve_job *j = jobs; j; j = j->next)
            tensor_array_release(&j->y);
        fail_all(jobs, err);
        return;
    }
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

static void batcher_release(struct serve_batcher *b)
{
    tensor_predictor_free(b->pred);
    tensor_array_release(&b->x);
    free(b->y);
    free(b);
}

/* The predictor and both buffers at their full size, then one pass over max_rows rows of
 * zeros: kernels get built and every page touched before the first client's request. */
static int batcher_prepare(struct serve_batcher *b, struct tensor_backend *be,
                           const struct tensor_model *m, struct dlc_error **err)
{
    size_t ny = 0;
    if (tensor_predictor_new(be, m, b->max_rows, &b->pred, err) < 0 ||
        tensor_array_alloc(&b->x, b->max_rows, m->input_dim, err) < 0)
        return -1;
    b->x_cap = b->max_rows * m->input_dim;
    if (!dlc_size_mul((size_t)b->max_rows, (size_t)b->outputs, &ny) ||
        !dlc_size_mul(ny, sizeof(float), &ny))
        return dlc_error_set(err, EFBIG, "%lld rows of %lld outputs", (long long)b->max_rows,
                             (long long)b->outputs);
    b->y = xmalloc(ny);
    memset(b->x.data, 0, (size_t)(b->x.rows * b->x.cols) * sizeof(float));
    return tensor_predictor_run_into(b->pred, &b->x, b->y, err);
}

int serve_batcher_new(struct tensor_backend *be, const struct tensor_model *m, int64_t max_rows,
                      struct serve_batcher **ret, struct dlc_error **err)
{
    struct serve_batcher *b = xcalloc(1, sizeof(*b));
    b->max_rows = max_rows > 0 ? max_rows : 1;
    b->outputs = tensor_model_outputs(m);
    if (batcher_prepare(b, be, m, err) < 0) {
        batcher_release(b);
        return -1;
    }
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    int rc = pthread_create(&b->thread, NULL, batcher_main, b);
    if (rc != 0) {
        pthread_cond_destroy(&b->cond);
        pthread_mutex_destroy(&b->lock);
        batcher_release(b);
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
    pthread_cond_destroy(&b->cond);
    pthread_mutex_destroy(&b->lock);
    batcher_release(b);
}
