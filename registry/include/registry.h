/* registry.h: an OCI distribution-spec v1.1 registry (server, libmicrohttpd) and the
 * push/pull client (libcurl) that moves images between the local store and any registry.
 *
 * Usage (server):
 *
 *     struct registry_server_options o;
 *     registry_server_options_init(&o);
 *     o.root = "/srv/registry";
 *     o.listen = "127.0.0.1:5000";
 *     struct registry_server *srv = NULL;
 *     if (registry_server_start(&o, &srv, &err) < 0) ...
 *     ... wait for SIGTERM ...
 *     registry_server_stop(srv);     // closes connections, drops upload sessions
 *
 * Usage (client):
 *
 *     struct registry_client_options co;
 *     registry_client_options_init(&co);
 *     struct registry_transfer_stats st;
 *     if (registry_push(store, "tensor-runtime:1.0.0-cpu",
 *                       "localhost:5000/tensor-runtime:1.0.0-cpu", &co, &st, &err) < 0)
 *         ...   // "push localhost:5000/tensor-runtime:1.0.0-cpu: upload blob sha256:..: ..."
 *
 * Errors follow common.h: int <0 / NULL with *err set once. HTTP failures read
 * "registry 127.0.0.1:5000, repository foo: HTTP 401 UNAUTHORIZED: authentication required".
 * The library never prints; progress goes through the registry_progress callback.
 */
#ifndef DLC_REGISTRY_H
#define DLC_REGISTRY_H

#include "oci.h"

/* ---- server ---------------------------------------------------------------------------- */

struct registry_server_options {
    const char *root;     /* storage directory (created if missing) */
    const char *listen;   /* "127.0.0.1:5000", "[::1]:5000", ":5000" (all addresses) */
    const char *htpasswd; /* bcrypt htpasswd file: basic auth on every request; NULL: none */
    const char *realm;    /* WWW-Authenticate realm (default "dlc-registry") */
    const char *tls_cert; /* PEM certificate and key: serve HTTPS (GnuTLS through MHD) */
    const char *tls_key;
    bool read_only;             /* every write answers 405 UNSUPPORTED */
    uint64_t max_manifest_size; /* 413 above it (default 4 MiB) */
    uint64_t max_blob_size;     /* 413 above it (default 64 GiB) */
    unsigned max_connections;   /* concurrent connections (default 256) */
    unsigned max_uploads;       /* open upload sessions; 429 beyond (default 1024) */
    unsigned timeout_s;         /* idle connection timeout (default 120) */
    unsigned upload_expiry_s;   /* an upload untouched this long is dropped (default 3600) */
    FILE *access_log;           /* one line per request, or NULL (caller keeps it open) */
};
void registry_server_options_init(struct registry_server_options *o);

struct registry_server;
/* Opens the storage (removing upload leftovers of a previous run), binds, and serves from
 * internal threads. EADDRINUSE, EINVAL (bad option, unreadable htpasswd/TLS file), ... */
int registry_server_start(const struct registry_server_options *o, struct registry_server **ret,
                          struct dlc_error **err);
/* The bound port (useful with port 0). */
unsigned registry_server_port(const struct registry_server *s);
/* Stops accepting, closes open connections (a request in flight is cut off; an upload in
 * progress leaves nothing behind), discards upload sessions, frees s. NULL-safe. */
void registry_server_stop(struct registry_server *s);

struct registry_gc_stats {
    size_t blobs_removed;
    uint64_t bytes_removed;
    size_t blobs_kept;
    size_t links_removed; /* repository links to removed blobs */
};
/* Offline mark and sweep: every blob no manifest of any repository reaches is removed (with
 * its repository links), and stale upload files. EBUSY when a server holds root. */
int registry_gc(const char *root, bool dry_run, struct registry_gc_stats *ret,
                struct dlc_error **err);

/* ---- client ---------------------------------------------------------------------------- */

enum registry_blob_state {
    REGISTRY_BLOB_WAITING,
    REGISTRY_BLOB_EXISTS,  /* the destination already had it */
    REGISTRY_BLOB_MOUNTED, /* cross-repository mount */
    REGISTRY_BLOB_TRANSFER,
    REGISTRY_BLOB_DONE,
    REGISTRY_BLOB_RETRY, /* a transient failure; starting over */
};

/* Called (serialised, from transfer threads) as blobs progress; done/total in bytes. */
struct registry_progress {
    void (*blob)(void *userdata, const char *digest, enum registry_blob_state state, uint64_t done,
                 uint64_t total);
    void *userdata;
};

struct registry_client_options {
    bool insecure;         /* allow plain HTTP and unverified TLS for any registry */
    unsigned parallel;     /* blob transfers at once (default 4, at most 32) */
    uint64_t chunk_size;   /* uploads larger than this go in PATCH chunks (default 64 MiB) */
    unsigned retries;      /* attempts after the first on connection errors/5xx (default 4) */
    const char *auth_file; /* NULL: registry_auth_file_default() */
    const char *user;      /* NULL: DLC_REGISTRY_USER, else the auth file */
    const char *password;  /* NULL: DLC_REGISTRY_PASSWORD, else the auth file */
    const struct registry_progress *progress; /* may be NULL */
};
void registry_client_options_init(struct registry_client_options *o);

struct registry_transfer_stats {
    char digest[OCI_DIGEST_BUFSZ]; /* the manifest (or index) digest */
    size_t blobs;                  /* blobs the image consists of */
    size_t transferred;            /* blobs sent or received */
    size_t skipped;                /* already present at the destination */
    size_t mounted;                /* cross-repository mounts (push) */
    uint64_t bytes;                /* blob bytes sent or received */
    double seconds;
};

/* Pushes the store image local_ref to remote_ref ("host[:port]/name[:tag|@digest]"; NULL:
 * local_ref itself, which must then name a registry). Blobs first (HEAD to skip, mount,
 * monolithic or chunked upload, in parallel), the manifest last. */
int registry_push(struct oci_store *s, const char *local_ref, const char *remote_ref,
                  const struct registry_client_options *o, struct registry_transfer_stats *ret,
                  struct dlc_error **err);
/* Pulls remote_ref into the store and tags it local_ref (NULL: the remote reference's
 * store name, "host:port/name:tag"). Every blob is verified before it becomes visible; the
 * tag is written last. An index resolves to its linux/<host arch> manifest. */
int registry_pull(struct oci_store *s, const char *remote_ref, const char *local_ref,
                  const struct registry_client_options *o, struct registry_transfer_stats *ret,
                  struct dlc_error **err);

/* $XDG_CONFIG_HOME/dlc/auth.json, else ~/.config/dlc/auth.json. Caller frees. */
char *registry_auth_file_default(void);
/* Checks the credentials against the registry (GET /v2/, basic or bearer) and stores them
 * in the auth file (docker config.json format, mode 0600). EACCES on a 401. */
int registry_login(const char *registry, const char *user, const char *password,
                   const struct registry_client_options *o, struct dlc_error **err);
/* Removes the registry's entry; ENOENT when there was none. */
int registry_logout(const char *registry, const char *auth_file, struct dlc_error **err);

#endif
