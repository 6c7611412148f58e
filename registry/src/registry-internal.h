/* registry-internal.h: what the server files (server*.c, storage*.c, auth.c, gc.c) and the
 * client files (client*.c) share. Not installed; see registry.h for the public API. */
#ifndef DLC_REGISTRY_INTERNAL_H
#define DLC_REGISTRY_INTERNAL_H

#include <pthread.h>
#include <time.h>

#include <microhttpd.h>

#include "registry.h"

#define REGISTRY_MAX_NAME 255   /* host + "/" + name is capped at 255 by clients */
#define REGISTRY_MAX_LIST 10000 /* largest page of tags/catalog/referrers */

/* ---- storage (storage.c, storage-manifests.c) ------------------------------------------ *
 *
 *   <root>/blobs/sha256/<hex[0:2]>/<hex>                          content, shared
 *   <root>/repositories/<name>/_layers/sha256/<hex>                 blob visible in <name>
 *   <root>/repositories/<name>/_manifests/revisions/sha256/<hex>    manifest in <name>;
 *                                                                   holds its Content-Type
 *   <root>/repositories/<name>/_manifests/tags/<tag>                holds the digest
 *   <root>/repositories/<name>/_referrers/sha256/<subject hex>/<hex>  referrer descriptor
 *   <root>/_uploads/<id>                                            upload in progress
 *
 * Names, tags and digests are validated against their grammars before any path is built from
 * them; name components cannot start with '_', so the _-directories never clash with nested
 * repositories. Every file is written atomically (temp + fsync + rename). */
struct rstore {
    char *root;
    char *blobs_dir;
    char *repos_dir;
    char *uploads_dir;
    int lock_fd;               /* flock, exclusive: one server or one gc */
    pthread_mutex_t meta_lock; /* manifest/tag mutations within one server */
};

/* Creates the layout and locks root for this process: EBUSY when a server or a gc (gc says
 * which is asking) holds it. */
int rstore_open(const char *root, bool gc, struct rstore **ret, struct dlc_error **err);
void rstore_free(struct rstore *st);
/* Removes every file under _uploads (leftovers of a run that died). */
int rstore_clear_uploads(struct rstore *st, struct dlc_error **err);

char *rstore_blob_path(const struct rstore *st, const char *digest);
char *rstore_repo_path(const struct rstore *st, const char *name, const char *sub);
bool rstore_repo_exists(const struct rstore *st, const char *name);
bool rstore_blob_exists(const struct rstore *st, const char *digest);
bool rstore_blob_linked(const struct rstore *st, const char *name, const char *digest);
int rstore_blob_link(struct rstore *st, const char *name, const char *digest,
                     struct dlc_error **err);
/* ENOENT when name has no link to digest. */
int rstore_blob_unlink(struct rstore *st, const char *name, const char *digest,
                       struct dlc_error **err);
/* Opens a blob visible in name: ENOENT when it is not. */
int rstore_blob_open(const struct rstore *st, const char *name, const char *digest, int *ret_fd,
                     uint64_t *ret_size, struct dlc_error **err);
/* Makes the verified temp file tmp_path (open as fd) the blob digest: fsync + rename, or
 * unlink when the blob exists already (content-addressed: same bytes). */
int rstore_blob_commit(struct rstore *st, int fd, const char *tmp_path, const char *digest,
                       struct dlc_error **err);

/* A manifest as it is stored. */
struct rmanifest {
    char digest[OCI_DIGEST_BUFSZ];
    char *media_type;
    char *data;
    size_t len;
    char *subject;      /* subject digest, or NULL */
    json_t *descriptor; /* its referrer descriptor (when subject), owned */
};
void rmanifest_release(struct rmanifest *m);

/* Stores m in name (blob + revision + referrer entry) and points each tag at it. */
int rstore_manifest_put(struct rstore *st, const char *name, const struct rmanifest *m,
                        char *const *tags, struct dlc_error **err);
/* A tag or digest to the digest of a manifest in name; ENOENT when unknown. */
int rstore_manifest_resolve(struct rstore *st, const char *name, const char *ref,
                            char ret[OCI_DIGEST_BUFSZ], struct dlc_error **err);
/* Reads a manifest of name (digest must be known there): media type + bytes. */
int rstore_manifest_read(struct rstore *st, const char *name, const char *digest, size_t max,
                         struct rmanifest *ret, struct dlc_error **err);
/* Removes the revision, every tag pointing at it and its referrer entry. ENOENT. */
int rstore_manifest_delete(struct rstore *st, const char *name, const char *digest,
                           struct dlc_error **err);
int rstore_tag_delete(struct rstore *st, const char *name, const char *tag, struct dlc_error **err);
/* Sorted (strcmp) tags of name; ENOENT when the repository is unknown. */
int rstore_tags(struct rstore *st, const char *name, char ***ret, struct dlc_error **err);
/* Sorted repository names. */
int rstore_catalog(struct rstore *st, char ***ret, struct dlc_error **err);
/* The referrer descriptors of digest in name (a JSON array, possibly empty), filtered by
 * artifact_type when not NULL. */
int rstore_referrers(struct rstore *st, const char *name, const char *digest,
                     const char *artifact_type, json_t **ret, struct dlc_error **err);
/* Every manifest digest stored in name (for gc). */
int rstore_revisions(struct rstore *st, const char *name, char ***ret, struct dlc_error **err);

/* ---- auth (auth.c) ---------------------------------------------------------------------- */

struct htpasswd;
/* Loads "user:$2y$..." lines; only bcrypt entries are accepted (EINVAL naming the line). */
int htpasswd_load(const char *path, struct htpasswd **ret, struct dlc_error **err);
void htpasswd_free(struct htpasswd *h);
/* Checks an "Authorization" header value ("Basic base64(user:pass)"); on success returns
 * true and the user name in ret_user (caller frees). Thread-safe; caches successes. */
bool htpasswd_check(struct htpasswd *h, const char *authorization, char **ret_user);
/* Standard base64 (with padding). */
char *registry_base64_encode(const void *data, size_t len);
/* Decodes standard base64; NULL when malformed. ret_len excludes the NUL it appends. */
char *registry_base64_decode(const char *s, size_t *ret_len);

/* ---- upload sessions (upload-sessions.c)
 * --------------------------------------------------------- */

struct upload {
    char id[33]; /* 32 hex chars */
    char *repo;
    char *path; /* <root>/_uploads/<id> */
    int fd;
    uint64_t size; /* bytes received so far */
    struct oci_digester *dig;
    time_t touched;
    bool busy; /* a request is working on it */
    struct upload *next;
};

struct upload_table {
    pthread_mutex_t lock;
    pthread_cond_t wake; /* the reaper's sleep; signalled on stop */
    struct upload *head;
    size_t n;
    size_t max;
    unsigned expiry_s;
    bool stopping;
    pthread_t reaper;
    bool reaper_started;
};

int uploads_init(struct upload_table *t, size_t max, unsigned expiry_s, struct dlc_error **err);
/* Stops the reaper, removes every session and its file. */
void uploads_destroy(struct upload_table *t);
/* A new busy session for repo. EAGAIN when max sessions are open. */
int upload_new(struct upload_table *t, struct rstore *st, const char *repo, struct upload **ret,
               struct dlc_error **err);
/* Takes a session for a request: ENOENT unknown (or another repo), EBUSY when in use. */
int upload_acquire(struct upload_table *t, const char *repo, const char *id, struct upload **ret,
                   struct dlc_error **err);
void upload_release(struct upload_table *t, struct upload *u);
/* Removes the session and its file. */
void upload_drop(struct upload_table *t, struct upload *u);
int upload_append(struct upload *u, const void *data, size_t len, struct dlc_error **err);
/* Verifies the content against digest (EBADMSG on mismatch), commits the blob, links it
 * in the session's repository and drops the session (also on failure). */
int upload_finish(struct upload_table *t, struct rstore *st, struct upload *u, const char *digest,
                  struct dlc_error **err);

/* ---- the server (server.c and server-*.c) ------------------------------------------------ */

struct registry_server {
    struct registry_server_options opts;
    char *root;
    char *realm;
    struct rstore *st;
    struct htpasswd *htpasswd;
    struct upload_table uploads;
    struct MHD_Daemon *daemon;
    char *tls_cert_pem;
    char *tls_key_pem;
    pthread_mutex_t log_lock;
    unsigned port;
};

enum rmethod { RM_GET, RM_HEAD, RM_PUT, RM_POST, RM_PATCH, RM_DELETE, RM_OTHER };

enum rroute {
    RR_NONE,
    RR_BASE,       /* /v2/ */
    RR_CATALOG,    /* /v2/_catalog */
    RR_BLOB,       /* /v2/<name>/blobs/<digest> */
    RR_MANIFEST,   /* /v2/<name>/manifests/<ref> */
    RR_TAGS,       /* /v2/<name>/tags/list */
    RR_REFERRERS,  /* /v2/<name>/referrers/<digest> */
    RR_UPLOAD_NEW, /* /v2/<name>/blobs/uploads/ */
    RR_UPLOAD,     /* /v2/<name>/blobs/uploads/<id> */
};

struct rreq;
typedef int (*rreq_body_fn)(struct rreq *r, const char *data, size_t len);
typedef void (*rreq_done_fn)(struct rreq *r);

/* One request: created on the first access-handler call, freed on completion. */
struct rreq {
    struct registry_server *srv;
    struct MHD_Connection *conn;
    enum rmethod method;
    char *method_str;
    char *url;  /* as sent (for the log) */
    char *path; /* percent-decoded, without the query */
    enum rroute route;
    char *name; /* repository, validated */
    char *ref;  /* the last path component (digest, tag, upload id) */
    char *user;
    struct timespec start;
    bool began;

    /* body: on_body is fed every chunk, on_done produces the response at the end */
    rreq_body_fn on_body;
    rreq_done_fn on_done;
    bool discard;           /* an error response is ready; drop the rest of the body */
    struct dlc_strbuf body; /* buffered bodies (manifests) */
    uint64_t body_max;
    uint64_t body_len;
    struct upload *upload; /* the session this request holds */
    bool drop_upload;      /* a monolithic POST: the session is private */
    bool has_expect_len;   /* Content-Range declared the chunk's length */
    uint64_t expect_len;
    char digest[OCI_DIGEST_BUFSZ]; /* ?digest= of a finishing upload */

    struct MHD_Response *resp;
    unsigned status;
    uint64_t resp_bytes;
};

/* server-routes.c: splits a decoded path into the endpoint, the repository name (validated)
 * and the last component. */
enum route_status { ROUTE_OK, ROUTE_UNKNOWN, ROUTE_BAD_NAME, ROUTE_BAD_REF };
enum route_status route_split(const char *path, enum rroute *route, char **ret_name,
                              char **ret_ref);
/* route_split for a request, answering 400/404 for bad paths. */
int route_parse(struct rreq *r);

/* Responses (server.c). Each replaces any response the request had. */
void resp_error(struct rreq *r, unsigned status, const char *code, const char *fmt, ...)
        DLC_PRINTF(4, 5);
void resp_empty(struct rreq *r, unsigned status);
void resp_json(struct rreq *r, unsigned status, const json_t *j, const char *content_type);
/* Takes data (freed by MHD). */
void resp_buffer(struct rreq *r, unsigned status, char *data, size_t len, const char *content_type);
/* Takes fd; sendfile when not TLS. */
void resp_fd(struct rreq *r, unsigned status, int fd, uint64_t offset, uint64_t len);
void resp_header(struct rreq *r, const char *name, const char *fmt, ...) DLC_PRINTF(3, 4);
/* The value of a request header / query argument, or NULL. */
const char *req_header(struct rreq *r, const char *name);
const char *req_query(struct rreq *r, const char *name);
/* Every value of a repeated query argument (?tag=a&tag=b). */
char **req_query_all(struct rreq *r, const char *name);
/* A write on a read-only registry: answers 405 and returns true. */
bool req_refuse_write(struct rreq *r);

/* Handlers: begin is called once the headers are in; it either responds at once or sets
 * on_body/on_done. */
void blobs_begin(struct rreq *r);
void uploads_begin(struct rreq *r);
void manifests_begin(struct rreq *r);
void tags_begin(struct rreq *r);
void catalog_begin(struct rreq *r);
void referrers_begin(struct rreq *r);

/* server-blobs.c: one "bytes=a-b" | "bytes=a-" | "bytes=-n" range of a size-byte blob. */
enum range_result { RANGE_NONE, RANGE_OK, RANGE_BAD };
enum range_result blob_range_parse(const char *header, uint64_t size, uint64_t *ret_start,
                                   uint64_t *ret_len);

/* "/v2/<name>/blobs/uploads/<id>" */
char *upload_location(const char *name, const char *id);
/* Adds Location and Range ("0-<last>") for u. */
void resp_upload_headers(struct rreq *r, const struct upload *u);

/* ---- client (client*.c) ----------------------------------------------------------------- */

struct rclient;

/* A registry connection for one repository: scheme probing, auth, retries. */
int rclient_new(const char *registry, const char *repo, bool push,
                const struct registry_client_options *o, struct rclient **ret,
                struct dlc_error **err);
void rclient_free(struct rclient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rclient *, rclient_free)

/* A response as the client sees it. */
struct rresp {
    long status;
    char *location;
    char *content_type;
    char *docker_digest;
    char *www_authenticate;
    char *range;
    char *link;
    uint64_t content_length;
    bool has_content_length;
    struct dlc_strbuf body; /* bodies without a sink, capped */
};
void rresp_release(struct rresp *r);

/* Where a request body comes from and where a response body goes. */
struct rbody {
    const void *data; /* memory body */
    size_t len;
    int fd; /* or a file range (fd >= 0) */
    uint64_t offset;
    uint64_t size;
    struct oci_digester *dig; /* fed what is sent, when not NULL ... */
    uint64_t hashed;          /* ... once: the file offset it has seen up to (curl rewinds) */
};
struct rsink {
    /* called with each chunk of a 2xx response body; <0 aborts the transfer */
    int (*write)(void *ud, const void *data, size_t len);
    /* called before a retry starts over */
    int (*reset)(void *ud, struct dlc_error **err);
    void *ud;
};

struct rrequest {
    const char *method;
    const char *url;            /* absolute, or a path under the registry ("/v2/...") */
    const char *const *headers; /* NULL-terminated "Name: value" lines, may be NULL */
    struct rbody *body;         /* NULL: no body */
    const struct rsink *sink;   /* NULL: the body is kept in rresp.body (up to body_max) */
    size_t body_max;
    const char *digest;     /* the blob this request is about, for progress */
    uint64_t progress_base; /* bytes of the blob done before this request */
    uint64_t progress_total;
    bool no_retry; /* the caller retries at a higher level */
};

/* Performs a request with auth (basic, or a bearer token fetched on a 401 challenge) and
 * retries (connection errors, 5xx, 429) with backoff. Any HTTP status is success here;
 * transport failures set err. */
int rclient_do(struct rclient *c, const struct rrequest *rq, struct rresp *ret,
               struct dlc_error **err);
/* Sets err for an unexpected status: "registry H, repository R: HTTP 404 BLOB_UNKNOWN: ..." */
int rclient_status_error(struct rclient *c, const struct rresp *resp, struct dlc_error **err);
/* "https://host" or "http://host" as probed. */
const char *rclient_base(const struct rclient *c);
const char *rclient_repo(const struct rclient *c);
const char *rclient_registry(const struct rclient *c);
/* Reports progress (serialised). */
void rclient_progress(struct rclient *c, const char *digest, enum registry_blob_state state,
                      uint64_t done, uint64_t total);
const struct registry_client_options *rclient_options(const struct rclient *c);

/* client-parallel.c */
/* Transfers one blob; called from several threads at once. */
typedef int (*rclient_blob_fn)(void *data, const struct oci_descriptor *d, struct dlc_error **err);
/* Reports each of blobs[0..n) waiting, then runs fn on them with up to the `parallel` option
 * threads (here when none can start). After a failure no new blob starts; the first one
 * is returned wrapped "<what> <digest>". */
int rclient_each_blob(struct rclient *c, const struct oci_descriptor *const *blobs, size_t n,
                      rclient_blob_fn fn, void *data, const char *what, struct dlc_error **err);
/* The config and the layers of m, each digest once, in that order: pointers into m in an
 * array the caller frees. */
const struct oci_descriptor **rclient_manifest_blobs(const struct oci_manifest *m, size_t *ret_n);

/* TLS options of a CURL easy handle: --insecure, SSL_CERT_FILE. */
void rclient_tls_setup(void *easy, bool insecure);
/* The Authorization header value requests carry (NULL: none). Thread-safe. */
char *rclient_authorization(struct rclient *c);
void rclient_set_authorization(struct rclient *c, const char *value);
const struct rcreds *rclient_creds(const struct rclient *c);
/* Scope for a token: "repository:<repo>:pull[,push]". Caller frees. */
char *rclient_scope(const struct rclient *c);

/* client-auth.c */
/* Answers a 401 challenge: basic credentials, or a bearer token fetched from the realm.
 * *changed says whether a retry can succeed. EACCES when the token server refuses. */
int rclient_reauth(struct rclient *c, const char *challenge, bool *changed, struct dlc_error **err);
struct rcreds {
    char *user;
    char *password;
};
void rcreds_release(struct rcreds *c);
/* Credentials for registry: options, then DLC_REGISTRY_USER/PASSWORD, then the auth file.
 * Leaves both NULL when there are none. An auth file readable by group/others is EPERM. */
int rcreds_lookup(const char *registry, const struct registry_client_options *o, struct rcreds *ret,
                  struct dlc_error **err);
/* Parses 'Bearer realm="..",service="..",scope=".."' / 'Basic realm=".."'. */
struct rchallenge {
    char *scheme; /* "basic" or "bearer", lowercased */
    char *realm;
    char *service;
    char *scope;
};
int rchallenge_parse(const char *header, struct rchallenge *ret, struct dlc_error **err);
void rchallenge_release(struct rchallenge *c);

/* The mount hint cache: which repository of a registry a blob was last seen in
 * ($DLC_ROOT/registry-blobs/<registry>). */
char *blobcache_lookup(const char *store_root, const char *registry, const char *digest,
                       const char *not_repo);
void blobcache_record(const char *store_root, const char *registry, const char *digest,
                      const char *repo);

#endif
