/* serve.h: what the files of `tensor serve` share (serve.c, serve-http.c, serve-codec.c,
 * serve-batch.c). Not installed; tests/unit/runtime/test_serve*.c include it.
 *
 * A request's life: serve-http.c reads the body (payload cap), serve-codec.c decodes it by
 * Content-Type into rows, serve-batch.c coalesces the rows of concurrent requests into one
 * run of a tensor_predictor (planned once), serve-codec.c encodes the request's share of the
 * result in the Accept type. Decoding and encoding run on the HTTP thread pool, in parallel; only
 * the predict call itself is one at a time per backend, and it carries every request that arrived
 * while the previous call ran.
 */
#ifndef DLC_TENSOR_SERVE_H
#define DLC_TENSOR_SERVE_H

#include <pthread.h>

#include "tensor-internal.h"

/* ---- media types (serve-codec.c) ----------------------------------------------------- */

enum serve_type { SERVE_JSON, SERVE_CSV, SERVE_NPY, _SERVE_TYPE_MAX };

const char *serve_type_mime(enum serve_type t);
/* The type of a Content-Type header ("text/csv; charset=utf-8" -> SERVE_CSV; parameters
 * and case are ignored). A missing or empty header is JSON. -1 when unsupported. */
int serve_content_type(const char *header, enum serve_type *ret);
/* The best type an Accept header allows (q-values honoured, ties go to the first listed;
 * the wildcards for any type or any application type, and a missing header give def).
 * -1 when none fits. */
int serve_accept(const char *header, enum serve_type def, enum serve_type *ret);

/* Decodes a request body into rows x features. input_dim (the model's features) only
 * settles the ambiguous flat forms: a flat JSON list or a 1-D npy array is one row, unless
 * the model takes exactly one feature, when each value is a row.
 *   JSON: {"instances": [[...], ...]}, a bare list of rows, or rows given as objects
 *         {"features": [...]} (SageMaker's built-in algorithms' form).
 *   CSV:  one row per line (see tensor_csv_parse).
 *   npy:  any numeric dtype tensor_npy_parse reads; more than 2 dimensions are flattened.
 * EINVAL (EPROTO, EFBIG) with a message fit for the client; never an abort. */
int serve_decode(enum serve_type t, const char *body, size_t len, int64_t input_dim,
                 struct tensor_array *ret, struct dlc_error **err);
/* Appends y (rows x outputs) encoded as t: JSON {"predictions": [[...], ...]}, CSV rows of
 * "%.9g" values (exact for f32), npy '<f4' of shape (rows, outputs). */
void serve_encode(enum serve_type t, const struct tensor_array *y, struct dlc_strbuf *out);
/* serve-json.c: {"instances": [[n, ...], ...]} or [[n, ...], ...] of plain numbers, rows of
 * one width, read without a jansson tree: 0 with *ret, 1 when body is anything else (then
 * serve_decode's full parser reads it and words the errors). Same values either way. */
int serve_json_fast(const char *body, size_t len, struct tensor_array *ret);
/* {"error": "<msg>"} */
char *serve_error_json(const char *msg, size_t *ret_len);

/* ---- batching (serve-batch.c) -------------------------------------------------------- */

struct serve_job;
/* Called on the batcher's thread once a job is done (serve-http.c resumes the connection). */
typedef void (*serve_job_done_fn)(struct serve_job *job);

struct serve_job {
    struct tensor_array x; /* rows x input_dim, set by the submitter */
    struct tensor_array y; /* rows x outputs once done (owned; released by the submitter) */
    int rc;                /* 0, or <0 with err */
    struct dlc_error *err;
    serve_job_done_fn done;
    void *data;
    struct serve_job *next; /* queue link, the batcher's */
};

struct serve_batcher;
/* Plans a tensor_predictor for m on be (both borrowed; they outlive the batcher) for
 * max_rows rows, runs one warm-up pass (kernels built, memory touched), then starts the
 * thread that runs predictions: the predictor's only user. max_rows caps the rows coalesced
 * into one call (a single larger request still runs, alone, in passes of max_rows). */
int serve_batcher_new(struct tensor_backend *be, const struct tensor_model *m, int64_t max_rows,
                      struct serve_batcher **ret, struct dlc_error **err);
/* Queues job; job->done is called exactly once, from the batcher's thread (or from here
 * with rc < 0 when the batcher is stopping). */
void serve_batcher_submit(struct serve_batcher *b, struct serve_job *job);
/* Finishes the queued jobs, stops and joins the thread, frees. NULL-safe. */
void serve_batcher_free(struct serve_batcher *b);
/* Prediction calls so far (the warm-up not counted), the rows and the requests (jobs) they
 * carried. */
void serve_batcher_stats(struct serve_batcher *b, uint64_t *ret_calls, uint64_t *ret_rows,
                         uint64_t *ret_jobs);

/* ---- the HTTP server (serve-http.c) -------------------------------------------------- */

struct serve_server;
struct serve_http_config {
    const char *bind_addr; /* "0.0.0.0" */
    int port;              /* 0: an ephemeral port (tests) */
    int threads;           /* the pool */
    size_t max_payload;    /* bytes */
    enum serve_type default_accept;
    int max_concurrent; /* advertised in /execution-parameters */
    bool access_log;
};
/* Listens at once; /ping answers 503 until serve_server_set_model(). */
int serve_server_start(const struct serve_http_config *cfg, struct serve_server **ret,
                       struct dlc_error **err);
int serve_server_port(const struct serve_server *s);
/* From now on /ping is 200 and /invocations predicts through b for a model taking
 * input_dim features (b is borrowed until serve_server_stop). */
void serve_server_set_model(struct serve_server *s, struct serve_batcher *b, int64_t input_dim);
/* Stops accepting, lets requests in flight finish (up to a few seconds), frees. */
void serve_server_stop(struct serve_server *s);

/* ---- model loading (serve.c) --------------------------------------------------------- */

/* Loads dir/model.json + model.safetensors; when dir holds only model.tar.gz, unpacks it
 * first with the image's tar (tensor itself links no archive library) into a fresh
 * directory under $TMPDIR, returned in *ret_unpacked for the caller to remove. */
int serve_model_load(const char *dir, struct tensor_model **ret, char **ret_unpacked,
                     struct dlc_error **err);

#endif
