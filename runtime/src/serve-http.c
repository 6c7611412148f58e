/* serve-http.c: SageMaker's inference HTTP contract on libmicrohttpd: GET /ping,
 * POST /invocations, GET /execution-parameters. A pool of MHD threads (one per CPU) reads
 * and decodes requests; an /invocations request is then suspended while the batcher
 * predicts, and resumed to encode and send its answer, so no HTTP thread ever waits on a
 * prediction and concurrent requests share predict calls. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "serve.h"

#define CONNECTION_LIMIT 1024
#define IDLE_TIMEOUT_S   60
#define STOP_GRACE_MS    10000

struct serve_server {
    struct serve_http_config cfg;
    struct MHD_Daemon *daemon;
    int port;
    _Atomic(struct serve_batcher *) batcher; /* NULL until the model is loaded */
    int64_t input_dim;
    atomic_int suspended; /* requests waiting on the batcher */
    atomic_int active;    /* requests begun and not completed */
};

enum route { ROUTE_NONE, ROUTE_PING, ROUTE_INVOCATIONS, ROUTE_EXECUTION_PARAMETERS };
enum stage { STAGE_NEW, STAGE_BODY, STAGE_PREDICTING, STAGE_ANSWERED };

struct sreq {
    struct serve_server *srv;
    struct MHD_Connection *conn;
    struct timespec start;
    char *url;
    char method[16];
    enum route route;
    enum stage stage;
    enum serve_type in, out;
    struct dlc_strbuf body;
    bool too_large;
    struct serve_job job;
    unsigned status;
    size_t resp_bytes;
    int64_t rows;
};

/* ---- responses ------------------------------------------------------------------------- */

static enum MHD_Result answer(struct sreq *r, unsigned status, char *data, size_t len,
                              const char *content_type)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    DLC_ASSERT(resp != NULL);
    if (content_type)
        MHD_add_response_header(resp, "Content-Type", content_type);
    if (status == 405)
        MHD_add_response_header(resp, "Allow", r->route == ROUTE_INVOCATIONS ? "POST" : "GET");
    r->status = status;
    r->resp_bytes = len;
    r->stage = STAGE_ANSWERED;
    enum MHD_Result q = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return q;
}

static enum MHD_Result answer_error(struct sreq *r, unsigned status, const char *fmt, ...)
        DLC_PRINTF(3, 4);
static enum MHD_Result answer_error(struct sreq *r, unsigned status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    size_t len = 0;
    char *body = serve_error_json(msg, &len);
    return answer(r, status, body, len, "application/json");
}

static enum MHD_Result answer_empty(struct sreq *r, unsigned status)
{
    return answer(r, status, NULL, 0, NULL);
}

/* ---- routes ---------------------------------------------------------------------------- */

static enum route route_of(const char *url)
{
    if (strcmp(url, "/ping") == 0)
        return ROUTE_PING;
    if (strcmp(url, "/invocations") == 0)
        return ROUTE_INVOCATIONS;
    if (strcmp(url, "/execution-parameters") == 0)
        return ROUTE_EXECUTION_PARAMETERS;
    return ROUTE_NONE;
}

static bool is_get(const struct sreq *r)
{
    return strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
}

static enum MHD_Result ping(struct sreq *r)
{
    if (!is_get(r))
        return answer_error(r, 405, "/ping takes GET");
    if (atomic_load(&r->srv->batcher) == NULL)
        return answer_error(r, 503, "the model is still loading");
    return answer_empty(r, 200);
}

static enum MHD_Result execution_parameters(struct sreq *r)
{
    if (!is_get(r))
        return answer_error(r, 405, "/execution-parameters takes GET");
    const struct serve_http_config *c = &r->srv->cfg;
    char *body = xasprintf("{\"BatchStrategy\":\"MULTI_RECORD\",\"MaxConcurrentTransforms\":%d,"
                           "\"MaxPayloadInMB\":%zu}",
                           c->max_concurrent, c->max_payload >> 20);
    return answer(r, 200, body, strlen(body), "application/json");
}

static const char *header(struct sreq *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* Everything about an /invocations request that can be refused before its body. */
static enum MHD_Result invocations_begin(struct sreq *r)
{
    if (strcmp(r->method, "POST") != 0)
        return answer_error(r, 405, "/invocations takes POST");
    if (atomic_load(&r->srv->batcher) == NULL)
        return answer_error(r, 503, "the model is still loading");
    const char *ct = header(r, "Content-Type");
    if (serve_content_type(ct, &r->in) < 0)
        return answer_error(r, 415,
                            "unsupported Content-Type '%s': use application/json, text/csv or "
                            "application/x-npy",
                            ct);
    const char *accept = header(r, "Accept");
    if (serve_accept(accept, r->srv->cfg.default_accept, &r->out) < 0)
        return answer_error(r, 406,
                            "cannot answer in '%s': use application/json, text/csv or "
                            "application/x-npy",
                            accept);
    const char *cl = header(r, "Content-Length");
    uint64_t len = 0;
    if (cl && dlc_parse_u64(cl, NULL, &len, NULL) == 0 && len > r->srv->cfg.max_payload)
        return answer_error(r, 413, "the body has %" PRIu64 " bytes, more than the %zu MB limit",
                            len, r->srv->cfg.max_payload >> 20);
    r->stage = STAGE_BODY;
    return MHD_YES;
}

static void body_append(struct sreq *r, const char *data, size_t len)
{
    size_t total = 0;
    if (r->too_large || !dlc_size_add(r->body.len, len, &total) ||
        total > r->srv->cfg.max_payload) {
        r->too_large = true;
        dlc_strbuf_release(&r->body);
        return;
    }
    dlc_strbuf_append_len(&r->body, data, len);
}

/* Runs on the batcher's thread. */
static void job_done(struct serve_job *job)
{
    struct sreq *r = job->data;
    struct serve_server *srv = r->srv;
    MHD_resume_connection(r->conn);
    atomic_fetch_sub(&srv->suspended, 1);
}

/* The whole body is in: decode it, check its shape, hand it to the batcher. */
static enum MHD_Result invocations_submit(struct sreq *r)
{
    if (r->too_large)
        return answer_error(r, 413, "the body is larger than the %zu MB limit",
                            r->srv->cfg.max_payload >> 20);
    struct serve_batcher *b = atomic_load(&r->srv->batcher);
    _cleanup_error_ struct dlc_error *err = NULL;
    const char *body = r->body.buf ? r->body.buf : "";
    if (serve_decode(r->in, body, r->body.len, r->srv->input_dim, &r->job.x, &err) < 0)
        return answer_error(r, 400, "%s", err->msg);
    dlc_strbuf_release(&r->body);
    r->rows = r->job.x.rows;
    if (r->job.x.cols != r->srv->input_dim)
        return answer_error(r, 400, "expected %lld features per row, got %lld",
                            (long long)r->srv->input_dim, (long long)r->job.x.cols);
    r->job.done = job_done;
    r->job.data = r;
    r->stage = STAGE_PREDICTING;
    atomic_fetch_add(&r->srv->suspended, 1);
    MHD_suspend_connection(r->conn); /* before submitting: job_done may run at once */
    serve_batcher_submit(b, &r->job);
    return MHD_YES;
}

static enum MHD_Result invocations_answer(struct sreq *r)
{
    if (r->job.rc < 0)
        return answer_error(r, r->job.err && r->job.err->code == ESHUTDOWN ? 503 : 500,
                            "prediction failed: %s", r->job.err ? r->job.err->msg : "?");
    _cleanup_strbuf_ struct dlc_strbuf out = DLC_STRBUF_INIT;
    serve_encode(r->out, &r->job.y, &out);
    size_t len = 0;
    char *data = dlc_strbuf_detach(&out, &len);
    return answer(r, 200, data, len, serve_type_mime(r->out));
}

/* ---- the request life cycle ------------------------------------------------------------ */

/* Answers the routes that take no body, once the request is complete (answering earlier
 * makes MHD close the connection). */
static enum MHD_Result answer_simple(struct sreq *r)
{
    switch (r->route) {
    case ROUTE_PING:
        return ping(r);
    case ROUTE_EXECUTION_PARAMETERS:
        return execution_parameters(r);
    case ROUTE_INVOCATIONS:
    case ROUTE_NONE:
        break;
    }
    return answer_error(r, 404,
                        "no such endpoint: use /ping, /invocations or "
                        "/execution-parameters");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    (void)url;
    struct sreq *r = *con_cls;
    switch (r->stage) {
    case STAGE_NEW:
        r->conn = conn;
        snprintf(r->method, sizeof(r->method), "%s", method);
        if (r->route == ROUTE_INVOCATIONS)
            return invocations_begin(r); /* refusals go out before the body is read */
        r->stage = STAGE_BODY;
        return MHD_YES;
    case STAGE_BODY:
        if (*upload_data_size > 0) {
            if (r->route == ROUTE_INVOCATIONS)
                body_append(r, upload_data, *upload_data_size);
            *upload_data_size = 0;
            return MHD_YES;
        }
        return r->route == ROUTE_INVOCATIONS ? invocations_submit(r) : answer_simple(r);
    case STAGE_PREDICTING:
        return invocations_answer(r);
    case STAGE_ANSWERED:
        *upload_data_size = 0; /* a body after an early answer: MHD closes the connection */
        return MHD_YES;
    }
    return MHD_NO;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)conn;
    struct sreq *r = xcalloc(1, sizeof(*r));
    r->srv = cls;
    r->url = xstrdup(uri);
    r->route = route_of(uri);
    clock_gettime(CLOCK_MONOTONIC, &r->start);
    atomic_fetch_add(&r->srv->active, 1);
    return r;
}

/* One line per request, written with one write(2) so concurrent lines never interleave:
 * 127.0.0.1 "POST /invocations" 200 1234 rows=100 0.512ms */
static void access_log(struct sreq *r, bool completed)
{
    char host[INET6_ADDRSTRLEN] = "-";
    const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, host,
                  sizeof(host));
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double ms = (double)(now.tv_sec - r->start.tv_sec) * 1e3 +
                (double)(now.tv_nsec - r->start.tv_nsec) / 1e6;
    char line[512];
    int n = snprintf(line, sizeof(line), "%s: %s \"%s %.200s\" %u %zu rows=%" PRId64 " %.3fms%s\n",
                     dlc_log_progname(), host, r->method, r->url, r->status, r->resp_bytes, r->rows,
                     ms, completed ? "" : " (aborted)");
    if (n > 0) {
        ssize_t w = write(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line));
        (void)w; /* a log line lost to a full or closed stderr is not the client's problem */
    }
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    struct serve_server *srv = cls;
    struct sreq *r = *con_cls;
    if (r == NULL)
        return;
    *con_cls = NULL;
    if (srv->cfg.access_log && r->conn)
        access_log(r, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    atomic_fetch_sub(&srv->active, 1);
    tensor_array_release(&r->job.x);
    tensor_array_release(&r->job.y);
    dlc_error_free(&r->job.err);
    dlc_strbuf_release(&r->body);
    free(r->url);
    free(r);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    _cleanup_free_ char *msg = xvasprintf(fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    dlc_debug("microhttpd: %s", msg);
}

/* ---- start / stop ---------------------------------------------------------------------- */

int serve_server_start(const struct serve_http_config *cfg, struct serve_server **ret,
                       struct dlc_error **err)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
    if (inet_pton(AF_INET, cfg->bind_addr, &sa.sin_addr) != 1)
        return dlc_error_set(err, EINVAL, "bind address '%s' is not an IPv4 address",
                             cfg->bind_addr);
    struct serve_server *s = xcalloc(1, sizeof(*s));
    s->cfg = *cfg;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    /* A pool of one is no pool (MHD warns about it): then the polling thread serves. */
    struct MHD_OptionItem pool[] = {
            {MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)cfg->threads, NULL},
            {MHD_OPTION_END, 0, NULL},
    };
    errno = 0;
    s->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
            MHD_OPTION_ARRAY, cfg->threads > 1 ? pool : pool + 1, MHD_OPTION_CONNECTION_LIMIT,
            (unsigned)CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
            MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, MHD_OPTION_END);
    if (s->daemon == NULL) {
        int e = errno ? errno : EADDRINUSE;
        free(s);
        return dlc_error_set_errno(err, e, "listen on %s:%d", cfg->bind_addr, cfg->port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : cfg->port;
    *ret = s;
    return 0;
}

int serve_server_port(const struct serve_server *s)
{
    return s->port;
}

void serve_server_set_model(struct serve_server *s, struct serve_batcher *b, int64_t input_dim)
{
    s->input_dim = input_dim;
    atomic_store(&s->batcher, b); /* publishes input_dim too (seq_cst) */
}

void serve_server_stop(struct serve_server *s)
{
    if (s == NULL)
        return;
    MHD_socket lsock = MHD_quiesce_daemon(s->daemon);
    /* Requests already begun get their answers (docker stop allows 10 s by default). MHD
     * must not be stopped with suspended connections in any case: the batcher, still
     * running, resumes them. */
    for (int waited = 0;
         atomic_load(&s->suspended) > 0 || (atomic_load(&s->active) > 0 && waited < STOP_GRACE_MS);
         waited += 10)
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    MHD_stop_daemon(s->daemon);
    if (lsock != MHD_INVALID_SOCKET)
        close(lsock);
    free(s);
}
