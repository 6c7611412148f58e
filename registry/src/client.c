/* client.c: one registry connection for one repository (libcurl): scheme probing (HTTPS,
 * plain HTTP for localhost or --insecure), authentication (basic, bearer tokens fetched on a
 * challenge), requests with streamed bodies and retries with backoff. */
#include <errno.h>
#include <string.h>

#include <curl/curl.h>

#include "registry-internal.h"

#define DEFAULT_BODY_MAX (4u << 20)
#define MAX_BACKOFF_MS   5000

struct rclient {
    char *registry; /* "host[:port]" */
    char *repo;
    char *base; /* "https://host[:port]" */
    bool push;
    struct registry_client_options opts;
    struct rcreds creds;
    bool plain_http_ok;
    CURLSH *share;
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
    pthread_mutex_t lock; /* auth, progress */
    char *authorization;  /* the header value we send, or NULL */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
}

void registry_client_options_init(struct registry_client_options *o)
{
    memset(o, 0, sizeof(*o));
    o->parallel = 4;
    o->chunk_size = 64u << 20;
    o->retries = 4;
}

void rresp_release(struct rresp *r)
{
    free(r->location);
    free(r->content_type);
    free(r->docker_digest);
    free(r->www_authenticate);
    free(r->range);
    free(r->link);
    dlc_strbuf_release(&r->body);
    memset(r, 0, sizeof(*r));
}

const char *rclient_base(const struct rclient *c)
{
    return c->base;
}

const char *rclient_repo(const struct rclient *c)
{
    return c->repo;
}

const char *rclient_registry(const struct rclient *c)
{
    return c->registry;
}

const struct registry_client_options *rclient_options(const struct rclient *c)
{
    return &c->opts;
}

void rclient_progress(struct rclient *c, const char *digest, enum registry_blob_state state,
                      uint64_t done, uint64_t total)
{
    const struct registry_progress *p = c->opts.progress;
    if (p == NULL || p->blob == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    p->blob(p->userdata, digest, state, done, total);
    pthread_mutex_unlock(&c->lock);
}

/* ---- one transfer ------------------------------------------------------------------------ */

struct xfer {
    struct rclient *c;
    const struct rrequest *rq;
    struct rresp *resp;
    uint64_t body_pos;
    int sink_error;
    struct timespec last_progress;
};

static char *header_value(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);
    if (len <= n + 1 || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return NULL;
    const char *v = line + n + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    return xstrndup(v, (size_t)(end - v));
}

static void set_field(char **field, char *value)
{
    if (value) {
        free(*field);
        *field = value;
    }
}

static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;
    struct rresp *r = x->resp;
    if (len > 5 && strncmp(buf, "HTTP/", 5) == 0) { /* a new response (after 100, redirect) */
        long status = 0;
        const char *sp = memchr(buf, ' ', len);
        if (sp)
            status = strtol(sp + 1, NULL, 10);
        rresp_release(r);
        r->status = status;
        return len;
    }
    set_field(&r->location, header_value(buf, len, "Location"));
    set_field(&r->content_type, header_value(buf, len, "Content-Type"));
    set_field(&r->docker_digest, header_value(buf, len, "Docker-Content-Digest"));
    set_field(&r->www_authenticate, header_value(buf, len, "WWW-Authenticate"));
    set_field(&r->range, header_value(buf, len, "Range"));
    set_field(&r->link, header_value(buf, len, "Link"));
    _cleanup_free_ char *cl = header_value(buf, len, "Content-Length");
    if (cl && dlc_parse_u64(cl, NULL, &r->content_length, NULL) == 0)
        r->has_content_length = true;
    return len;
}

static size_t on_write(char *buf, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;
    const struct rsink *sink = x->rq->sink;
    if (sink && x->resp->status >= 200 && x->resp->status < 300) {
        if (sink->write(sink->ud, buf, len) < 0) {
            x->sink_error = 1;
            return 0; /* aborts the transfer */
        }
        return len;
    }
    size_t max = x->rq->body_max ? x->rq->body_max : DEFAULT_BODY_MAX;
    if (x->resp->body.len + len <= max)
        dlc_strbuf_append_len(&x->resp->body, buf, len);
    return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    struct rbody *b = x->rq->body;
    size_t want = size * n;
    uint64_t total = b->fd >= 0 ? b->size : b->len;
    if (x->body_pos >= total)
        return 0;
    if (want > total - x->body_pos)
        want = (size_t)(total - x->body_pos);
    if (b->fd >= 0) {
        ssize_t got = pread(b->fd, buf, want, (off_t)(b->offset + x->body_pos));
        if (got <= 0)
            return CURL_READFUNC_ABORT;
        want = (size_t)got;
    } else {
        memcpy(buf, (const char *)b->data + x->body_pos, want);
    }
    uint64_t at = (b->fd >= 0 ? b->offset : 0) + x->body_pos;
    if (b->dig && at + want > b->hashed) {
        size_t skip = b->hashed > at ? (size_t)(b->hashed - at) : 0;
        oci_digester_update(b->dig, buf + skip, want - skip);
        b->hashed = at + want;
    }
    x->body_pos += want;
    return want;
}

/* curl rewinds the body when it resends a request on a fresh connection. */
static int on_seek(void *ud, curl_off_t offset, int origin)
{
    struct xfer *x = ud;
    const struct rbody *b = x->rq->body;
    uint64_t total = b->fd >= 0 ? b->size : b->len;
    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > total)
        return CURL_SEEKFUNC_CANTSEEK;
    x->body_pos = (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal;
    (void)ultotal;
    struct xfer *x = ud;
    if (x->rq->digest == NULL)
        return 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (now.tv_sec - x->last_progress.tv_sec) * 1000 +
              (now.tv_nsec - x->last_progress.tv_nsec) / 1000000;
    if (ms < 100)
        return 0;
    x->last_progress = now;
    uint64_t done = x->rq->progress_base + (uint64_t)(x->rq->body ? ulnow : dlnow);
    rclient_progress(x->c, x->rq->digest, REGISTRY_BLOB_TRANSFER, done, x->rq->progress_total);
    return 0;
}

static char *full_url(const struct rclient *c, const char *url)
{
    if (dlc_startswith(url, "http://") || dlc_startswith(url, "https://"))
        return xstrdup(url);
    return xasprintf("%s%s%s", c->base, url[0] == '/' ? "" : "/", url);
}

static struct curl_slist *build_headers(struct rclient *c, const struct rrequest *rq)
{
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    pthread_mutex_lock(&c->lock);
    if (c->authorization) {
        _cleanup_free_ char *a = xasprintf("Authorization: %s", c->authorization);
        h = curl_slist_append(h, a);
    }
    pthread_mutex_unlock(&c->lock);
    for (size_t i = 0; rq->headers && rq->headers[i]; i++)
        h = curl_slist_append(h, rq->headers[i]);
    return h;
}

static void setup_method(CURL *e, const struct rrequest *rq, struct xfer *x)
{
    if (strcmp(rq->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(rq->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq->method);
    }
    bool sends = strcmp(rq->method, "PUT") == 0 || strcmp(rq->method, "POST") == 0 ||
                 strcmp(rq->method, "PATCH") == 0;
    if (sends) {
        const struct rbody *b = rq->body;
        curl_off_t size = b == NULL ? 0 : (curl_off_t)(b->fd >= 0 ? b->size : b->len);
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, size);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, b ? on_read : NULL);
        curl_easy_setopt(e, CURLOPT_READDATA, x);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, b ? on_seek : NULL);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, x);
        curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 2L << 20);
    }
    if (strcmp(rq->method, "GET") == 0 || strcmp(rq->method, "HEAD") == 0)
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
}

static void setup_easy(CURL *e, struct rclient *c, const char *url, struct curl_slist *h,
                       struct xfer *x, char *errbuf)
{
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_SHARE, c->share);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 120L);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 512L << 10);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "dlc-registry-client");
    rclient_tls_setup(e, c->opts.insecure);
}

void rclient_tls_setup(void *easy, bool insecure)
{
    CURL *e = easy;
    if (insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    /* OpenSSL's convention for a private CA bundle; libcurl itself does not read it */
    const char *ca = getenv("SSL_CERT_FILE");
    if (ca && ca[0])
        curl_easy_setopt(e, CURLOPT_CAINFO, ca);
}

/* One attempt. Returns the CURLcode; errbuf has the text. */
static CURLcode perform_once(struct rclient *c, const struct rrequest *rq, struct rresp *resp,
                             char *errbuf, int *sink_error)
{
    _cleanup_free_ char *url = full_url(c, rq->url);
    struct curl_slist *h = build_headers(c, rq);
    struct xfer x = {.c = c, .rq = rq, .resp = resp};
    clock_gettime(CLOCK_MONOTONIC, &x.last_progress);
    rresp_release(resp);
    CURL *e = curl_easy_init();
    DLC_ASSERT(e != NULL);
    errbuf[0] = '\0';
    setup_easy(e, c, url, h, &x, errbuf);
    setup_method(e, rq, &x);
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status)
        resp->status = status;
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    *sink_error = x.sink_error;
    for (size_t n = strlen(errbuf); n > 0 && (errbuf[n - 1] == ' ' || errbuf[n - 1] == '\n');)
        errbuf[--n] = '\0';
    return rc;
}

static bool retryable_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
        return true;
    default:
        return false;
    }
}

static void backoff(unsigned attempt, const struct rresp *resp)
{
    long ms = 200L << (attempt < 5 ? attempt : 5);
    if (ms > MAX_BACKOFF_MS)
        ms = MAX_BACKOFF_MS;
    (void)resp;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int rclient_do(struct rclient *c, const struct rrequest *rq, struct rresp *ret,
               struct dlc_error **err)
{
    char errbuf[CURL_ERROR_SIZE];
    bool reauthed = false;
    unsigned retries = rq->no_retry ? 0 : c->opts.retries;
    for (unsigned attempt = 0;; attempt++) {
        int sink_error = 0;
        CURLcode rc = perform_once(c, rq, ret, errbuf, &sink_error);
        if (sink_error)
            return dlc_error_set(err, EIO, "%s %s: writing the response failed", rq->method,
                                 rq->url);
        bool transient =
                rc != CURLE_OK ? retryable_curl(rc) : (ret->status >= 500 || ret->status == 429);
        if (rc == CURLE_OK && ret->status == 401 && !reauthed && ret->www_authenticate) {
            bool changed = false;
            reauthed = true;
            if (rclient_reauth(c, ret->www_authenticate, &changed, err) < 0)
                return -1;
            if (changed) {
                attempt--;
                continue;
            }
        }
        bool can_retry =
                transient && attempt < retries && (rq->sink == NULL || rq->sink->reset != NULL);
        if (!can_retry) {
            if (rc != CURLE_OK)
                return dlc_error_set(err, rc == CURLE_PEER_FAILED_VERIFICATION ? EPERM : EIO,
                                     "registry %s: %s %s: %s", c->registry, rq->method, rq->url,
                                     errbuf[0] ? errbuf : curl_easy_strerror(rc));
            return 0;
        }
        if (rq->digest)
            rclient_progress(c, rq->digest, REGISTRY_BLOB_RETRY, 0, rq->progress_total);
        backoff(attempt, ret);
        if (rq->sink && rq->sink->reset(rq->sink->ud, err) < 0)
            return -1;
    }
}

int rclient_status_error(struct rclient *c, const struct rresp *resp, struct dlc_error **err)
{
    const char *code = NULL, *msg = NULL;
    json_auto_t *j = NULL;
    if (resp->body.len > 0) {
        j = json_loadb(resp->body.buf, resp->body.len, 0, NULL);
        json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
        code = json_string_value(json_object_get(e0, "code"));
        msg = json_string_value(json_object_get(e0, "message"));
    }
    int e = resp->status == 401   ? EACCES
            : resp->status == 404 ? ENOENT
            : resp->status >= 500 ? EAGAIN
                                  : EPROTO;
    return dlc_error_set(err, e, "registry %s, repository %s: HTTP %ld%s%s%s%s", c->registry,
                         c->repo ? c->repo : "-", resp->status, code ? " " : "", code ? code : "",
                         msg ? ": " : "", msg ? msg : "");
}

/* ---- the connection ---------------------------------------------------------------------- */

char *rclient_authorization(struct rclient *c)
{
    pthread_mutex_lock(&c->lock);
    char *a = c->authorization ? xstrdup(c->authorization) : NULL;
    pthread_mutex_unlock(&c->lock);
    return a;
}

void rclient_set_authorization(struct rclient *c, const char *value)
{
    pthread_mutex_lock(&c->lock);
    free(c->authorization);
    c->authorization = value ? xstrdup(value) : NULL;
    pthread_mutex_unlock(&c->lock);
}

const struct rcreds *rclient_creds(const struct rclient *c)
{
    return &c->creds;
}

char *rclient_scope(const struct rclient *c)
{
    if (c->repo == NULL)
        return NULL;
    return xasprintf("repository:%s:%s", c->repo, c->push ? "pull,push" : "pull");
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
    (void)h;
    (void)access;
    struct rclient *c = ud;
    pthread_mutex_lock(&c->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
    (void)h;
    struct rclient *c = ud;
    pthread_mutex_unlock(&c->share_locks[data]);
}

/* Plain HTTP is always allowed for the loopback registry, as docker does. */
static bool is_loopback(const char *registry)
{
    _cleanup_free_ char *host = NULL;
    if (registry[0] == '[')
        host = xstrndup(registry + 1, strcspn(registry + 1, "]"));
    else
        host = xstrndup(registry, strcspn(registry, ":"));
    return strcmp(host, "localhost") == 0 || dlc_startswith(host, "127.") != NULL ||
           strcmp(host, "::1") == 0;
}

static int probe(struct rclient *c, struct dlc_error **err)
{
    struct rrequest rq = {.method = "GET", .url = "/v2/", .no_retry = c->plain_http_ok};
    _cleanup_(rresp_release) struct rresp resp = {0};
    _cleanup_error_ struct dlc_error *https_err = NULL;
    c->base = xasprintf("https://%s", c->registry);
    if (rclient_do(c, &rq, &resp, &https_err) < 0) {
        if (https_err->code == EPERM) /* it speaks TLS, with a certificate we do not trust */
            return dlc_error_set(err, EPERM,
                                 "%s (use --insecure to skip verification, or point "
                                 "SSL_CERT_FILE at its CA)",
                                 https_err->msg);
        if (!c->plain_http_ok)
            return dlc_error_set(err, https_err->code,
                                 "%s (for a plain-HTTP registry use --insecure)", https_err->msg);
        free(c->base);
        c->base = xasprintf("http://%s", c->registry);
        rq.no_retry = false;
        if (rclient_do(c, &rq, &resp, err) < 0)
            return -1;
    }
    if (resp.status == 200)
        return 0;
    if (resp.status == 401 && c->creds.user == NULL)
        return dlc_error_set(err, EACCES,
                             "registry %s requires authentication: run 'dlc login %s' or set "
                             "DLC_REGISTRY_USER and DLC_REGISTRY_PASSWORD",
                             c->registry, c->registry);
    return rclient_status_error(c, &resp, err);
}

void rclient_free(struct rclient *c)
{
    if (c == NULL)
        return;
    if (c->share)
        curl_share_cleanup(c->share);
    for (size_t i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&c->share_locks[i]);
    pthread_mutex_destroy(&c->lock);
    rcreds_release(&c->creds);
    free(c->registry);
    free(c->repo);
    free(c->base);
    free(c->authorization);
    free(c);
}

int rclient_new(const char *registry, const char *repo, bool push,
                const struct registry_client_options *o, struct rclient **ret,
                struct dlc_error **err)
{
    pthread_once(&curl_once, curl_init_once);
    struct rclient *c = xcalloc(1, sizeof(*c));
    c->registry = xstrdup(registry);
    c->repo = repo ? xstrdup(repo) : NULL;
    c->push = push;
    c->opts = *o;
    if (c->opts.parallel == 0)
        c->opts.parallel = 1;
    if (c->opts.parallel > 32)
        c->opts.parallel = 32;
    if (c->opts.chunk_size == 0)
        c->opts.chunk_size = 64u << 20;
    c->plain_http_ok = o->insecure || is_loopback(registry);
    pthread_mutex_init(&c->lock, NULL);
    for (size_t i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&c->share_locks[i], NULL);
    c->share = curl_share_init();
    curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    if (rcreds_lookup(registry, o, &c->creds, err) < 0 || probe(c, err) < 0) {
        rclient_free(c);
        return -1;
    }
    *ret = c;
    return 0;
}
