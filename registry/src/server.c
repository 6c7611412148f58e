/* server.c: the libmicrohttpd daemon: options, start/stop, the per-request life cycle
 * (begin -> body chunks -> done -> completed), auth, responses and the access log. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <string.h>

#include "registry-internal.h"

#define CONNECTION_MEMORY (1u << 20) /* per connection: bigger reads, fewer writes */

void registry_server_options_init(struct registry_server_options *o)
{
    memset(o, 0, sizeof(*o));
    o->listen = "127.0.0.1:5000";
    o->realm = "dlc-registry";
    o->max_manifest_size = OCI_MAX_MANIFEST_SIZE;
    o->max_blob_size = 64ull << 30;
    o->max_connections = 256;
    o->max_uploads = 1024;
    o->timeout_s = 120;
    o->upload_expiry_s = 3600;
}

/* ---- responses ------------------------------------------------------------------------- */

static void set_resp(struct rreq *r, unsigned status, struct MHD_Response *resp)
{
    if (r->resp)
        MHD_destroy_response(r->resp);
    r->resp = resp;
    r->status = status;
}

void resp_buffer(struct rreq *r, unsigned status, char *data, size_t len, const char *content_type)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    DLC_ASSERT(resp != NULL);
    set_resp(r, status, resp);
    r->resp_bytes = len;
    if (content_type)
        MHD_add_response_header(resp, "Content-Type", content_type);
}

void resp_empty(struct rreq *r, unsigned status)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    DLC_ASSERT(resp != NULL);
    set_resp(r, status, resp);
    r->resp_bytes = 0;
}

void resp_json(struct rreq *r, unsigned status, const json_t *j, const char *content_type)
{
    size_t len = 0;
    char *s = dlc_json_dumps(j, &len);
    resp_buffer(r, status, s, len, content_type ? content_type : "application/json");
}

void resp_fd(struct rreq *r, unsigned status, int fd, uint64_t offset, uint64_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64(len, fd, offset);
    DLC_ASSERT(resp != NULL);
    set_resp(r, status, resp);
    r->resp_bytes = r->method == RM_HEAD ? 0 : len;
}

void resp_error(struct rreq *r, unsigned status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    json_auto_t *j = json_pack("{s:[{s:s,s:s}]}", "errors", "code", code, "message", msg);
    resp_json(r, status, j, NULL);
    if (status == 401)
        resp_header(r, "WWW-Authenticate", "Basic realm=\"%s\"", r->srv->realm);
}

void resp_header(struct rreq *r, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *v = xvasprintf(fmt, ap);
    va_end(ap);
    DLC_ASSERT(r->resp != NULL);
    MHD_add_response_header(r->resp, name, v);
}

const char *req_header(struct rreq *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *req_query(struct rreq *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct query_collect {
    const char *name;
    char **v;
};

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    struct query_collect *qc = cls;
    if (strcmp(key, qc->name) == 0)
        qc->v = dlc_strv_push(qc->v, value ? value : "");
    return MHD_YES;
}

char **req_query_all(struct rreq *r, const char *name)
{
    struct query_collect qc = {name, xcalloc(1, sizeof(char *))};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_arg, &qc);
    return qc.v;
}

bool req_refuse_write(struct rreq *r)
{
    if (!r->srv->opts.read_only)
        return false;
    resp_error(r, 405, "UNSUPPORTED", "this registry is read-only");
    return true;
}

/* ---- the request life cycle ------------------------------------------------------------- */

static enum rmethod parse_method(const char *m)
{
    static const char *const names[] = {"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(names); i++)
        if (strcmp(m, names[i]) == 0)
            return (enum rmethod)i;
    return RM_OTHER;
}

static bool authenticate(struct rreq *r)
{
    if (r->srv->htpasswd == NULL)
        return true;
    if (htpasswd_check(r->srv->htpasswd, req_header(r, "Authorization"), &r->user))
        return true;
    resp_error(r, 401, "UNAUTHORIZED", "authentication required");
    return false;
}

static void base_begin(struct rreq *r)
{
    if (r->method != RM_GET && r->method != RM_HEAD) {
        resp_error(r, 405, "UNSUPPORTED", "method not allowed");
        return;
    }
    resp_buffer(r, 200, xstrdup("{}"), 2, "application/json");
}

static void request_begin(struct rreq *r)
{
    if (!authenticate(r) || route_parse(r) < 0)
        return;
    switch (r->route) {
    case RR_BASE:
        base_begin(r);
        break;
    case RR_CATALOG:
        catalog_begin(r);
        break;
    case RR_BLOB:
        blobs_begin(r);
        break;
    case RR_UPLOAD_NEW:
    case RR_UPLOAD:
        uploads_begin(r);
        break;
    case RR_MANIFEST:
        manifests_begin(r);
        break;
    case RR_TAGS:
        tags_begin(r);
        break;
    case RR_REFERRERS:
        referrers_begin(r);
        break;
    case RR_NONE:
        resp_error(r, 404, "NAME_UNKNOWN", "no such endpoint");
        break;
    }
}

/* Gives the request's upload session back: the client may send its next request on that
 * session as soon as it reads this response, before MHD reports completion. */
static void put_upload(struct rreq *r)
{
    if (r->upload == NULL)
        return;
    if (r->drop_upload)
        upload_drop(&r->srv->uploads, r->upload);
    else
        upload_release(&r->srv->uploads, r->upload);
    r->upload = NULL;
}

static enum MHD_Result queue(struct rreq *r)
{
    put_upload(r);
    if (r->resp == NULL)
        resp_error(r, 500, "UNKNOWN", "the request produced no response");
    MHD_add_response_header(r->resp, "Docker-Distribution-API-Version", "registry/2.0");
    if (r->method == RM_HEAD)
        r->resp_bytes = 0;
    enum MHD_Result q = MHD_queue_response(r->conn, r->status, r->resp);
    MHD_destroy_response(r->resp);
    r->resp = NULL;
    return q;
}

static bool request_has_body(struct rreq *r)
{
    const char *cl = req_header(r, "Content-Length");
    return req_header(r, "Transfer-Encoding") != NULL || (cl != NULL && strcmp(cl, "0") != 0);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    struct rreq *r = *con_cls;
    if (!r->began) {
        r->began = true;
        r->conn = conn;
        r->method = parse_method(method);
        r->method_str = xstrdup(method);
        r->path = xstrdup(url);
        request_begin(r);
        /* An answer ready before a body arrived goes out at once (MHD then closes the
         * connection instead of reading the body); otherwise MHD calls again. */
        if (r->on_done == NULL && request_has_body(r))
            return queue(r);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (!r->discard && r->on_body && r->on_body(r, upload_data, *upload_data_size) < 0)
            r->discard = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!r->discard && r->on_done)
        r->on_done(r);
    return queue(r);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)conn;
    struct rreq *r = xcalloc(1, sizeof(*r));
    r->srv = cls;
    r->url = xstrdup(uri);
    clock_gettime(CLOCK_MONOTONIC, &r->start);
    return r;
}

static void access_log(struct rreq *r, struct MHD_Connection *conn, bool ok)
{
    FILE *f = r->srv->opts.access_log;
    if (f == NULL)
        return;
    char host[INET6_ADDRSTRLEN] = "-";
    const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        const void *a = sa->sa_family == AF_INET6
                                ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                                : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
        inet_ntop(sa->sa_family, a, host, sizeof(host));
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double secs =
            (double)(now.tv_sec - r->start.tv_sec) + (double)(now.tv_nsec - r->start.tv_nsec) / 1e9;
    time_t t = time(NULL);
    struct tm tm;
    char when[64];
    strftime(when, sizeof(when), "%d/%b/%Y:%H:%M:%S %z", localtime_r(&t, &tm));
    pthread_mutex_lock(&r->srv->log_lock);
    fprintf(f, "%s - %s [%s] \"%s %s\" %u %" PRIu64 " %.3f%s\n", host, r->user ? r->user : "-",
            when, r->method_str ? r->method_str : "-", r->url ? r->url : "-", r->status,
            r->resp_bytes, secs, ok ? "" : " (aborted)");
    fflush(f);
    pthread_mutex_unlock(&r->srv->log_lock);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    struct rreq *r = *con_cls;
    if (r == NULL)
        return;
    *con_cls = NULL;
    if (r->began)
        access_log(r, conn, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    put_upload(r); /* the request ended before its response was queued */
    if (r->resp)
        MHD_destroy_response(r->resp);
    dlc_strbuf_release(&r->body);
    free(r->method_str);
    free(r->url);
    free(r->path);
    free(r->name);
    free(r->ref);
    free(r->user);
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

/* ---- start / stop ----------------------------------------------------------------------- */

/* "host:port", "[v6]:port" or ":port" into a socket address. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *sslen,
                        struct dlc_error **err)
{
    _cleanup_free_ char *host = NULL;
    const char *port = NULL;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (close == NULL || close[1] != ':')
            return dlc_error_set(err, EINVAL, "--listen '%s': expected [ADDRESS]:PORT", listen);
        host = xstrndup(listen + 1, (size_t)(close - listen - 1));
        port = close + 2;
    } else {
        const char *colon = strrchr(listen, ':');
        if (colon == NULL)
            return dlc_error_set(err, EINVAL, "--listen '%s': expected HOST:PORT", listen);
        host = xstrndup(listen, (size_t)(colon - listen));
        port = colon + 1;
    }
    int p = 0;
    if (dlc_parse_int(port, "--listen port", 0, 65535, &p, err) < 0)
        return -1;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0)
        return dlc_error_set(err, EINVAL, "--listen '%s': %s", listen, gai_strerror(rc));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int load_tls(struct registry_server *s, struct dlc_error **err)
{
    const struct registry_server_options *o = &s->opts;
    if (!o->tls_cert && !o->tls_key)
        return 0;
    if (!o->tls_cert || !o->tls_key)
        return dlc_error_set(err, EINVAL, "--tls-cert and --tls-key go together");
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return dlc_error_set(err, ENOTSUP, "this libmicrohttpd was built without TLS");
    if (dlc_read_file(o->tls_cert, 1 << 20, &s->tls_cert_pem, NULL, err) < 0 ||
        dlc_read_file(o->tls_key, 1 << 20, &s->tls_key_pem, NULL, err) < 0)
        return dlc_error_wrap(err, "TLS");
    return 0;
}

static int start_daemon(struct registry_server *s, struct dlc_error **err)
{
    struct sockaddr_storage ss = {0};
    socklen_t sslen = 0;
    if (parse_listen(s->opts.listen, &ss, &sslen, err) < 0)
        return -1;
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (s->tls_cert_pem)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem tls[] = {
            {MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert_pem},
            {MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key_pem},
            {MHD_OPTION_END, 0, NULL},
    };
    errno = 0;
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                                 (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
                                 (unsigned)s->opts.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
                                 (unsigned)s->opts.timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                 (size_t)CONNECTION_MEMORY, MHD_OPTION_CONNECTION_MEMORY_INCREMENT,
                                 (size_t)(64u << 10), MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                 MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, MHD_OPTION_ARRAY,
                                 s->tls_cert_pem ? tls : tls + 2, MHD_OPTION_END);
    if (s->daemon == NULL) {
        int e = errno ? errno : EIO;
        return dlc_error_set_errno(err, e, "listen on %s", s->opts.listen);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : 0;
    return 0;
}

static int server_setup(struct registry_server *s, struct dlc_error **err)
{
    const struct registry_server_options *o = &s->opts;
    if (o->root == NULL)
        return dlc_error_set(err, EINVAL, "no registry root given");
    if (o->max_connections == 0 || o->max_uploads == 0 || o->timeout_s == 0)
        return dlc_error_set(err, EINVAL, "connection, upload and timeout limits must be > 0");
    if (rstore_open(o->root, false, &s->st, err) < 0 || rstore_clear_uploads(s->st, err) < 0)
        return -1;
    if (o->htpasswd && htpasswd_load(o->htpasswd, &s->htpasswd, err) < 0)
        return -1;
    if (load_tls(s, err) < 0)
        return -1;
    if (uploads_init(&s->uploads, o->max_uploads, o->upload_expiry_s, err) < 0)
        return -1;
    return start_daemon(s, err);
}

int registry_server_start(const struct registry_server_options *o, struct registry_server **ret,
                          struct dlc_error **err)
{
    struct registry_server *s = xcalloc(1, sizeof(*s));
    s->opts = *o;
    s->root = xstrdup(o->root ? o->root : "");
    s->realm = xstrdup(o->realm ? o->realm : "dlc-registry");
    s->opts.root = s->root;
    s->opts.realm = s->realm;
    pthread_mutex_init(&s->log_lock, NULL);
    if (server_setup(s, err) < 0) {
        registry_server_stop(s);
        return dlc_error_wrap(err, "registry serve");
    }
    *ret = s;
    return 0;
}

unsigned registry_server_port(const struct registry_server *s)
{
    return s->port;
}

void registry_server_stop(struct registry_server *s)
{
    if (s == NULL)
        return;
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    if (s->uploads.reaper_started)
        uploads_destroy(&s->uploads);
    rstore_free(s->st);
    htpasswd_free(s->htpasswd);
    if (s->tls_key_pem)
        explicit_bzero(s->tls_key_pem, strlen(s->tls_key_pem));
    free(s->tls_key_pem);
    free(s->tls_cert_pem);
    pthread_mutex_destroy(&s->log_lock);
    free(s->root);
    free(s->realm);
    free(s);
}
