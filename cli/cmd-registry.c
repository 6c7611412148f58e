/* cmd-registry.c: `dlc registry serve|gc`, `dlc push`, `dlc pull`, `dlc login`, `dlc logout`. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <time.h>

#include "cli.h"
#include "registry.h"

/* getopt names argv[0] in its messages: "dlc registry serve", not "serve". */
static void set_progname(const char *name, char **argv)
{
    static char prog[64];
    snprintf(prog, sizeof(prog), "dlc %s", name);
    argv[0] = prog;
}

static bool common_opt(const struct cli_command *cmd, int c, int *ret)
{
    bool done = false;
    int r = cli_common_opt(cmd, c, &done);
    if (r < 0) {
        *ret = cli_usage_error(cmd, "unsupported option");
        return true;
    }
    *ret = r;
    return done;
}

/* ---- registry serve ---------------------------------------------------------------------- */

enum {
    OPT_LISTEN = 0x2000,
    OPT_HTPASSWD,
    OPT_REALM,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_READ_ONLY,
    OPT_MAX_MANIFEST,
    OPT_MAX_BLOB,
    OPT_MAX_CONN,
    OPT_MAX_UPLOADS,
    OPT_TIMEOUT,
    OPT_UPLOAD_EXPIRY,
    OPT_ACCESS_LOG,
    OPT_DRY_RUN,
    OPT_REG_ROOT,
};

static const struct cli_command registry_cmd = {
        "registry",
        NULL,
        "dlc registry serve [--root DIR] [--listen HOST:PORT] [--htpasswd FILE] "
        "[--tls-cert FILE --tls-key FILE] [--read-only] [OPTIONS]\n"
        "       dlc registry gc [--root DIR] [--dry-run]",
        "Run a local OCI distribution registry, or garbage-collect one",
        "Options (serve):\n"
        "  --root DIR              registry storage (default: <store root>/registry)\n"
        "  --listen HOST:PORT      address to serve on (default 127.0.0.1:5000; :PORT = all)\n"
        "  --htpasswd FILE         require basic auth against bcrypt entries (htpasswd -B)\n"
        "  --realm NAME            the WWW-Authenticate realm (default dlc-registry)\n"
        "  --tls-cert FILE         serve HTTPS with this PEM certificate ...\n"
        "  --tls-key FILE          ... and key\n"
        "  --read-only             refuse every write with 405\n"
        "  --max-manifest-size N   413 above it (default 4MiB)\n"
        "  --max-blob-size N       413 above it (default 64GiB)\n"
        "  --max-connections N     concurrent connections (default 256)\n"
        "  --max-uploads N         open upload sessions (default 1024)\n"
        "  --timeout SECONDS       idle connection timeout (default 120)\n"
        "  --upload-expiry SECONDS drop uploads idle this long (default 3600)\n"
        "  --access-log FILE|-|none  request log (default - = stderr)\n"
        "Options (gc):\n"
        "  --root DIR              registry storage\n"
        "  --dry-run               report what would be removed\n",
};

static int parse_size_opt(const char *s, const char *what, uint64_t *ret)
{
    struct dlc_error *err = NULL;
    if (dlc_parse_size(s, what, ret, &err) < 0) {
        cli_usage_error(&registry_cmd, "%s", err->msg);
        dlc_error_free(&err);
        return -1;
    }
    return 0;
}

static int parse_uint_opt(const char *s, const char *what, unsigned *ret)
{
    struct dlc_error *err = NULL;
    int v = 0;
    if (dlc_parse_int(s, what, 1, 1 << 30, &v, &err) < 0) {
        cli_usage_error(&registry_cmd, "%s", err->msg);
        dlc_error_free(&err);
        return -1;
    }
    *ret = (unsigned)v;
    return 0;
}

/* Returns -1 after a usage error. */
static int serve_opt(int c, struct registry_server_options *o, const char **access_log)
{
    switch (c) {
    case OPT_REG_ROOT:
        o->root = optarg;
        return 0;
    case OPT_LISTEN:
        o->listen = optarg;
        return 0;
    case OPT_HTPASSWD:
        o->htpasswd = optarg;
        return 0;
    case OPT_REALM:
        o->realm = optarg;
        return 0;
    case OPT_TLS_CERT:
        o->tls_cert = optarg;
        return 0;
    case OPT_TLS_KEY:
        o->tls_key = optarg;
        return 0;
    case OPT_READ_ONLY:
        o->read_only = true;
        return 0;
    case OPT_ACCESS_LOG:
        *access_log = optarg;
        return 0;
    case OPT_MAX_MANIFEST:
        return parse_size_opt(optarg, "--max-manifest-size", &o->max_manifest_size);
    case OPT_MAX_BLOB:
        return parse_size_opt(optarg, "--max-blob-size", &o->max_blob_size);
    case OPT_MAX_CONN:
        return parse_uint_opt(optarg, "--max-connections", &o->max_connections);
    case OPT_MAX_UPLOADS:
        return parse_uint_opt(optarg, "--max-uploads", &o->max_uploads);
    case OPT_TIMEOUT:
        return parse_uint_opt(optarg, "--timeout", &o->timeout_s);
    case OPT_UPLOAD_EXPIRY:
        return parse_uint_opt(optarg, "--upload-expiry", &o->upload_expiry_s);
    default:
        cli_usage_error(&registry_cmd, "unsupported option");
        return -1;
    }
}

static char *default_registry_root(void)
{
    _cleanup_free_ char *root = cli_root();
    return dlc_path_join(root, "registry");
}

static int serve_run(struct registry_server_options *o)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    /* Blocked before the server threads exist, so they inherit the mask and the signal is
     * taken here by sigwait. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct dlc_error *err = NULL;
    struct registry_server *srv = NULL;
    if (registry_server_start(o, &srv, &err) < 0)
        return cli_fail(NULL, &err);
    fprintf(stderr, "dlc registry: serving %s on %s://%s (port %u)%s\n", o->root,
            o->tls_cert ? "https" : "http", o->listen, registry_server_port(srv),
            o->htpasswd ? " with basic auth" : "");
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "dlc registry: %s, shutting down\n", strsignal(sig));
    registry_server_stop(srv);
    return 0;
}

static int registry_serve(int argc, char **argv)
{
    static const struct option opts[] = {
            {"root", required_argument, NULL, OPT_REG_ROOT},
            {"listen", required_argument, NULL, OPT_LISTEN},
            {"htpasswd", required_argument, NULL, OPT_HTPASSWD},
            {"realm", required_argument, NULL, OPT_REALM},
            {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
            {"tls-key", required_argument, NULL, OPT_TLS_KEY},
            {"read-only", no_argument, NULL, OPT_READ_ONLY},
            {"max-manifest-size", required_argument, NULL, OPT_MAX_MANIFEST},
            {"max-blob-size", required_argument, NULL, OPT_MAX_BLOB},
            {"max-connections", required_argument, NULL, OPT_MAX_CONN},
            {"max-uploads", required_argument, NULL, OPT_MAX_UPLOADS},
            {"timeout", required_argument, NULL, OPT_TIMEOUT},
            {"upload-expiry", required_argument, NULL, OPT_UPLOAD_EXPIRY},
            {"access-log", required_argument, NULL, OPT_ACCESS_LOG},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
    };
    struct registry_server_options o;
    registry_server_options_init(&o);
    const char *access_log = "-";
    int c, r = 0;
    set_progname("registry serve", argv);
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if ((c == 'h' || c == '?' || c == ':') && common_opt(&registry_cmd, c, &r))
            return r;
        if (serve_opt(c, &o, &access_log) < 0)
            return CLI_EXIT_USAGE;
    }
    if (optind != argc)
        return cli_usage_error(&registry_cmd, "unexpected argument '%s'", argv[optind]);
    _cleanup_free_ char *root = o.root ? NULL : default_registry_root();
    if (root)
        o.root = root;
    _cleanup_fclose_ FILE *log = NULL;
    if (strcmp(access_log, "-") == 0) {
        o.access_log = stderr;
    } else if (strcmp(access_log, "none") != 0) {
        log = fopen(access_log, "ae");
        if (log == NULL) {
            struct dlc_error *err = NULL;
            dlc_error_set_errno(&err, errno, "open %s", access_log);
            return cli_fail("registry serve: --access-log", &err);
        }
        o.access_log = log;
    }
    return serve_run(&o);
}

static int registry_gc_cmd(int argc, char **argv)
{
    static const struct option opts[] = {
            {"root", required_argument, NULL, OPT_REG_ROOT},
            {"dry-run", no_argument, NULL, OPT_DRY_RUN},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
    };
    const char *root_opt = NULL;
    bool dry_run = false;
    int c, r = 0;
    set_progname("registry gc", argv);
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == OPT_REG_ROOT)
            root_opt = optarg;
        else if (c == OPT_DRY_RUN)
            dry_run = true;
        else if (common_opt(&registry_cmd, c, &r))
            return r;
    }
    if (optind != argc)
        return cli_usage_error(&registry_cmd, "unexpected argument '%s'", argv[optind]);
    _cleanup_free_ char *root = root_opt ? xstrdup(root_opt) : default_registry_root();
    struct registry_gc_stats st;
    struct dlc_error *err = NULL;
    if (registry_gc(root, dry_run, &st, &err) < 0)
        return cli_fail(NULL, &err);
    char size[32];
    printf("%s %zu blobs (%s), kept %zu, %zu repository links\n",
           dry_run ? "would remove" : "removed", st.blobs_removed,
           dlc_format_size(st.bytes_removed, size, sizeof(size)), st.blobs_kept, st.links_removed);
    return 0;
}

int cmd_registry(int argc, char **argv);
int cmd_registry(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        bool done = false;
        if (argc < 2)
            return cli_usage_error(&registry_cmd, "expected 'serve' or 'gc'");
        cli_common_opt(&registry_cmd, 'h', &done);
        return 0;
    }
    if (strcmp(argv[1], "serve") == 0)
        return registry_serve(argc - 1, argv + 1);
    if (strcmp(argv[1], "gc") == 0)
        return registry_gc_cmd(argc - 1, argv + 1);
    return cli_usage_error(&registry_cmd, "unknown subcommand '%s' (expected serve or gc)",
                           argv[1]);
}
