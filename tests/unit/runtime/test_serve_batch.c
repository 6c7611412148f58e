/* test_serve_batch.c: the batcher coalesces queued requests into one predict call, gives
 * every request exactly its own rows of the result, and plans the model only once. */
#include <errno.h>
#include <math.h>
#include <semaphore.h>
#include <string.h>

#include "unit.h"
#include "../../../runtime/src/serve.h"

#define N_JOBS 20

static const char model_json[] =
        "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"t\", \"layers\": ["
        "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 3]}},"
        "{\"class_name\": \"Dense\", \"config\": {\"units\": 8, \"activation\": \"relu\"}},"
        "{\"class_name\": \"Dense\", \"config\": {\"units\": 2, \"activation\": \"softmax\"}}]}}";

struct fixture {
    struct tensor_backend *be;
    struct tensor_model *m;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    struct dlc_error *err = NULL;
    json_auto_t *j = dlc_json_loadb(model_json, strlen(model_json), "model", &err);
    if (j == NULL || tensor_model_from_json(j, &f->m, &err) < 0 ||
        tensor_model_build(f->m, 3, 7, &err) < 0 || tensor_backend_open("cpu", 1, &f->be, &err) < 0)
        fail_msg("setup: %s", err->msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tensor_backend_close(f->be);
    tensor_model_free(f->m);
    free(f);
    return 0;
}

struct waiter {
    struct serve_job job;
    sem_t done;
    sem_t *hold;    /* when set, the batcher thread waits on it inside done() ... */
    sem_t *entered; /* ... after posting this */
};

static void on_done(struct serve_job *job)
{
    struct waiter *w = job->data;
    if (w->hold) {
        sem_post(w->entered);
        sem_wait(w->hold);
    }
    sem_post(&w->done);
}

static void make_job(struct waiter *w, int64_t rows, int seed)
{
    struct dlc_error *err = NULL;
    memset(w, 0, sizeof(*w));
    sem_init(&w->done, 0, 0);
    assert_int_equal(tensor_array_alloc(&w->job.x, rows, 3, &err), 0);
    for (int64_t i = 0; i < rows * 3; i++)
        w->job.x.data[i] = (float)((seed * 31 + i * 7) % 13) / 13.0f - 0.5f;
    w->job.done = on_done;
    w->job.data = w;
}

/* The job's result equals a prediction of its rows alone. */
static void check_job(struct fixture *f, struct waiter *w)
{
    struct dlc_error *err = NULL;
    struct tensor_array want = {0};
    assert_int_equal(w->job.rc, 0);
    assert_int_equal(tensor_predict(f->be, f->m, &w->job.x, 1024, &want, &err), 0);
    assert_int_equal(w->job.y.rows, w->job.x.rows);
    assert_int_equal(w->job.y.cols, 2);
    for (int64_t i = 0; i < want.rows * want.cols; i++)
        assert_true(fabsf(w->job.y.data[i] - want.data[i]) <= 1e-6f);
    tensor_array_release(&want);
    tensor_array_release(&w->job.x);
    tensor_array_release(&w->job.y);
    sem_destroy(&w->done);
}

static void test_serve_batch__coalesces_queued_jobs(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    struct serve_batcher *b = NULL;
    assert_int_equal(serve_batcher_new(f->be, f->m, 1024, &b, &err), 0);
    static struct waiter w[N_JOBS];
    sem_t hold, entered;
    sem_init(&hold, 0, 0);
    sem_init(&entered, 0, 0);
    /* Job 0 holds the batcher thread until jobs 1.. are queued: they must go in one call. */
    make_job(&w[0], 1, 0);
    w[0].hold = &hold;
    w[0].entered = &entered;
    serve_batcher_submit(b, &w[0].job);
    sem_wait(&entered);
    for (int i = 1; i < N_JOBS; i++) {
        make_job(&w[i], 1 + i % 4, i);
        serve_batcher_submit(b, &w[i].job);
    }
    sem_post(&hold);
    for (int i = 0; i < N_JOBS; i++)
        sem_wait(&w[i].done);
    uint64_t calls = 0, rows = 0, jobs = 0, want_rows = 1;
    for (int i = 1; i < N_JOBS; i++)
        want_rows += (uint64_t)(1 + i % 4);
    serve_batcher_stats(b, &calls, &rows, &jobs);
    assert_int_equal(calls, 2);
    assert_int_equal(rows, want_rows);
    assert_int_equal(jobs, N_JOBS);
    for (int i = 0; i < N_JOBS; i++)
        check_job(f, &w[i]);
    serve_batcher_free(b);
    sem_destroy(&hold);
    sem_destroy(&entered);
}

static void test_serve_batch__max_rows_splits_calls(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    struct serve_batcher *b = NULL;
    assert_int_equal(serve_batcher_new(f->be, f->m, 5, &b, &err), 0);
    static struct waiter w[4];
    sem_t hold, entered;
    sem_init(&hold, 0, 0);
    sem_init(&entered, 0, 0);
    make_job(&w[0], 1, 0);
    w[0].hold = &hold;
    w[0].entered = &entered;
    serve_batcher_submit(b, &w[0].job);
    sem_wait(&entered);
    make_job(&w[1], 3, 1); /* 3 + 3 > 5: two calls */
    make_job(&w[2], 3, 2);
    make_job(&w[3], 12, 3); /* larger than max_rows: runs alone */
    for (int i = 1; i < 4; i++)
        serve_batcher_submit(b, &w[i].job);
    sem_post(&hold);
    for (int i = 0; i < 4; i++)
        sem_wait(&w[i].done);
    uint64_t calls = 0, rows = 0, jobs = 0;
    serve_batcher_stats(b, &calls, &rows, &jobs);
    assert_int_equal(calls, 4);
    assert_int_equal(rows, 19);
    assert_int_equal(jobs, 4);
    for (int i = 0; i < 4; i++)
        check_job(f, &w[i]);
    serve_batcher_free(b);
    sem_destroy(&hold);
    sem_destroy(&entered);
}

static void test_serve_batch__bad_rows_fail_the_job(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    struct serve_batcher *b = NULL;
    assert_int_equal(serve_batcher_new(f->be, f->m, 64, &b, &err), 0);
    struct waiter w;
    make_job(&w, 2, 0);
    w.job.x.cols = 2; /* the HTTP layer checks this; the batcher must still not crash */
    serve_batcher_submit(b, &w.job);
    sem_wait(&w.done);
    assert_true(w.job.rc < 0);
    assert_non_null(w.job.err);
    assert_non_null(strstr(w.job.err->msg, "expects 3 input features"));
    dlc_error_free(&w.job.err);
    tensor_array_release(&w.job.x);
    serve_batcher_free(b);
}

/* The CPU backend with its allocations counted. */
static int backend_allocs;
static struct tensor_backend_ops counting_ops;

static void *counting_alloc(struct tensor_backend *b, size_t bytes, struct dlc_error **err)
{
    backend_allocs++;
    return tensor_backend_cpu.alloc(b, bytes, err);
}

/* The model is planned (backend memory, weights uploaded) once when the batcher starts,
 * not per call: a stream of requests, one larger than max_rows among them, allocates
 * nothing more on the backend. */
static void test_serve_batch__plans_the_model_once(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    counting_ops = tensor_backend_cpu;
    counting_ops.alloc = counting_alloc;
    struct tensor_backend cbe = *f->be;
    cbe.ops = &counting_ops;
    struct serve_batcher *b = NULL;
    assert_int_equal(serve_batcher_new(&cbe, f->m, 4, &b, &err), 0);
    assert_int_equal(backend_allocs, 1);
    static struct waiter w[10];
    for (int i = 0; i < 10; i++) {
        make_job(&w[i], i == 5 ? 11 : 1 + i % 4, i);
        serve_batcher_submit(b, &w[i].job);
        sem_wait(&w[i].done);
        check_job(f, &w[i]);
    }
    uint64_t calls = 0, rows = 0, jobs = 0;
    serve_batcher_stats(b, &calls, &rows, &jobs);
    assert_int_equal(calls, 10); /* the warm-up pass is not counted */
    assert_int_equal(backend_allocs, 1);
    serve_batcher_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_serve_batch__coalesces_queued_jobs, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_serve_batch__max_rows_splits_calls, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_serve_batch__bad_rows_fail_the_job, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_serve_batch__plans_the_model_once, setup,
                                            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
