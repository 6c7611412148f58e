/* cmd-registry.c: `dlc registry serve|gc`, `dlc push`, `dlc pull`, `dlc login`, `dlc logout`. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <time.h>

#include "cli.h"
#include "registry.h"

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
    cli_set_progname("registry serve", argv);
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if ((c == 'h' || c == '?' || c == ':') && cli_common_opt_done(&registry_cmd, c, &r))
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
    if (access_log == NULL || dlc_streq(access_log, "-")) {
        o.access_log = stderr;
    } else if (!dlc_streq(access_log, "none")) {
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
    cli_set_progname("registry gc", argv);
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == OPT_REG_ROOT)
            root_opt = optarg;
        else if (c == OPT_DRY_RUN)
            dry_run = true;
        else if (cli_common_opt_done(&registry_cmd, c, &r))
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

/* ---- progress ---------------------------------------------------------------------------- */

struct progress_line {
    char digest[20]; /* 12 hex chars */
    enum registry_blob_state state;
    uint64_t done, total;
};

struct progress_view {
    bool push;
    struct progress_line *lines;
    size_t n, drawn;
    struct timespec last;
};

static const char *state_text(const struct progress_view *v, enum registry_blob_state s)
{
    switch (s) {
    case REGISTRY_BLOB_WAITING:
        return "Waiting";
    case REGISTRY_BLOB_EXISTS:
        return "Already exists";
    case REGISTRY_BLOB_MOUNTED:
        return "Mounted from another repository";
    case REGISTRY_BLOB_TRANSFER:
        return v->push ? "Pushing" : "Pulling";
    case REGISTRY_BLOB_DONE:
        return v->push ? "Pushed" : "Pulled";
    case REGISTRY_BLOB_RETRY:
        return "Retrying";
    }
    return "";
}

static void progress_draw(struct progress_view *v)
{
    if (v->drawn > 0)
        fprintf(stderr, "\033[%zuA", v->drawn);
    for (size_t i = 0; i < v->n; i++) {
        const struct progress_line *l = &v->lines[i];
        fprintf(stderr, "\r\033[K%s: %s", l->digest, state_text(v, l->state));
        if (l->state == REGISTRY_BLOB_TRANSFER && l->total > 0) {
            char a[32], b[32];
            fprintf(stderr, " %s / %s (%d%%)", dlc_format_size(l->done, a, sizeof(a)),
                    dlc_format_size(l->total, b, sizeof(b)), (int)(l->done * 100 / l->total));
        }
        fputc('\n', stderr);
    }
    v->drawn = v->n;
    fflush(stderr);
}

static void on_blob(void *ud, const char *digest, enum registry_blob_state state, uint64_t done,
                    uint64_t total)
{
    struct progress_view *v = ud;
    const char *hex = dlc_startswith(digest, "sha256:") ? digest + 7 : digest;
    struct progress_line *l = NULL;
    for (size_t i = 0; i < v->n && l == NULL; i++)
        if (strncmp(v->lines[i].digest, hex, 12) == 0)
            l = &v->lines[i];
    if (l == NULL) {
        v->lines = xrealloc(v->lines, (v->n + 1) * sizeof(*v->lines));
        l = &v->lines[v->n++];
        snprintf(l->digest, sizeof(l->digest), "%.12s", hex);
    }
    bool changed = l->state != state;
    l->state = state;
    l->done = done;
    l->total = total;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (now.tv_sec - v->last.tv_sec) * 1000 + (now.tv_nsec - v->last.tv_nsec) / 1000000;
    if (changed || ms >= 100) {
        v->last = now;
        progress_draw(v);
    }
}

/* ---- push / pull ------------------------------------------------------------------------- */

enum { OPT_INSECURE = 0x3000, OPT_PARALLEL, OPT_CHUNK, OPT_AUTH_FILE, OPT_PASSWORD_STDIN };

#define TRANSFER_LONGOPTS                                                               \
    {"insecure", no_argument, NULL, OPT_INSECURE},                                      \
            {"parallel", required_argument, NULL, OPT_PARALLEL},                        \
            {"chunk-size", required_argument, NULL, OPT_CHUNK},                         \
            {"auth-file", required_argument, NULL, OPT_AUTH_FILE}, CLI_COMMON_LONGOPTS, \
    {                                                                                   \
        NULL, 0, NULL, 0                                                                \
    }

#define TRANSFER_HELP                                                                            \
    "Options:\n"                                                                                 \
    "  --insecure          allow plain HTTP and unverified TLS (always allowed for localhost)\n" \
    "  --parallel N        blobs transferred at once (default 4)\n"                              \
    "  --chunk-size SIZE   blobs larger than this are uploaded in chunks (default 64MiB)\n"      \
    "  --auth-file FILE    credentials (default ~/.config/dlc/auth.json; or set\n"               \
    "                      DLC_REGISTRY_USER and DLC_REGISTRY_PASSWORD)\n"

static const struct cli_command push_cmd = {
        "push", NULL, "dlc push [--insecure] LOCAL_REF [REMOTE_REF]",
        "Push an image to a registry (REMOTE_REF: HOST[:PORT]/NAME[:TAG]; default LOCAL_REF)",
        TRANSFER_HELP};
static const struct cli_command pull_cmd = {
        "pull", NULL, "dlc pull [--insecure] REMOTE_REF [LOCAL_REF]",
        "Pull an image from a registry into the store (tagged REMOTE_REF unless LOCAL_REF)",
        TRANSFER_HELP};

/* Parses the transfer options; returns -1 to continue, else the exit code. */
static int transfer_opts(const struct cli_command *cmd, int argc, char **argv,
                         struct registry_client_options *o)
{
    static const struct option opts[] = {TRANSFER_LONGOPTS};
    int c, r = 0;
    struct dlc_error *err = NULL;
    cli_set_progname(cmd->name, argv);
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int v = 0;
        switch (c) {
        case OPT_INSECURE:
            o->insecure = true;
            break;
        case OPT_AUTH_FILE:
            o->auth_file = optarg;
            break;
        case OPT_PARALLEL:
            if (dlc_parse_int(optarg, "--parallel", 1, 32, &v, &err) < 0) {
                r = cli_usage_error(cmd, "%s", err->msg);
                dlc_error_free(&err);
                return r;
            }
            o->parallel = (unsigned)v;
            break;
        case OPT_CHUNK:
            if (dlc_parse_size(optarg, "--chunk-size", &o->chunk_size, &err) < 0 ||
                o->chunk_size == 0) {
                r = cli_usage_error(cmd, "%s", err ? err->msg : "--chunk-size must be > 0");
                dlc_error_free(&err);
                return r;
            }
            break;
        default:
            if (cli_common_opt_done(cmd, c, &r))
                return r;
        }
    }
    return -1;
}

static void print_summary(const char *verb, const char *ref, const char *as,
                          const struct registry_transfer_stats *st, bool push)
{
    char size[32], rate[32];
    double secs = st->seconds > 0 ? st->seconds : 1e-9;
    printf("%s %s%s%s %s: %zu blobs (%zu %s, %zu already there", verb, ref, as ? " as " : "",
           as ? as : "", st->digest, st->blobs, st->transferred, push ? "sent" : "fetched",
           st->skipped);
    if (push)
        printf(", %zu mounted", st->mounted);
    printf("), %s in %.2f s (%s/s)\n", dlc_format_size(st->bytes, size, sizeof(size)), st->seconds,
           dlc_format_size((uint64_t)((double)st->bytes / secs), rate, sizeof(rate)));
}

static int transfer(bool push, int argc, char **argv)
{
    const struct cli_command *cmd = push ? &push_cmd : &pull_cmd;
    struct registry_client_options o;
    registry_client_options_init(&o);
    int r = transfer_opts(cmd, argc, argv, &o);
    if (r >= 0)
        return r;
    if (argc - optind < 1 || argc - optind > 2)
        return cli_usage_error(cmd, "expected %s",
                               push ? "LOCAL_REF [REMOTE_REF]" : "REMOTE_REF [LOCAL_REF]");
    const char *a = argv[optind], *b = argc - optind == 2 ? argv[optind + 1] : NULL;
    struct progress_view view = {.push = push};
    struct registry_progress prog = {on_blob, &view};
    if (cli_global.tty)
        o.progress = &prog;
    signal(SIGPIPE, SIG_IGN);
    _cleanup_free_ char *root = cli_root();
    _cleanup_(oci_store_freep) struct oci_store *s = NULL;
    struct dlc_error *err = NULL;
    struct registry_transfer_stats st;
    if (oci_store_open(root, &s, &err) < 0)
        r = cli_fail(cmd->name, &err);
    else if ((push ? registry_push(s, a, b, &o, &st, &err)
                   : registry_pull(s, a, b, &o, &st, &err)) < 0)
        r = cli_fail(NULL, &err);
    else {
        print_summary(push ? "pushed" : "pulled", push ? (b ? b : a) : a, push ? NULL : b, &st,
                      push);
        r = 0;
    }
    free(view.lines);
    return r;
}

int cmd_push(int argc, char **argv);
int cmd_push(int argc, char **argv)
{
    return transfer(true, argc, argv);
}

int cmd_pull(int argc, char **argv);
int cmd_pull(int argc, char **argv)
{
    return transfer(false, argc, argv);
}

/* ---- login / logout ---------------------------------------------------------------------- */

static const struct cli_command login_cmd = {
        "login", NULL, "dlc login [-u USER] [--password-stdin] [--insecure] REGISTRY",
        "Check credentials against a registry and store them (~/.config/dlc/auth.json, 0600)",
        "Options:\n"
        "  -u, --username USER  user name (prompted for on a terminal when missing)\n"
        "  --password-stdin     read the password from standard input\n"
        "  --insecure           allow plain HTTP and unverified TLS\n"
        "  --auth-file FILE     where to store them\n"};
static const struct cli_command logout_cmd = {"logout", NULL,
                                              "dlc logout [--auth-file FILE] REGISTRY",
                                              "Remove the stored credentials of a registry", NULL};

/* A line from f without its newline; NULL at EOF. echo=false turns the terminal's echo off. */
static char *read_secret_line(FILE *f, bool echo)
{
    struct termios old, quiet;
    bool restore = !echo && tcgetattr(fileno(f), &old) == 0;
    if (restore) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fileno(f), TCSAFLUSH, &quiet);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    if (restore) {
        tcsetattr(fileno(f), TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

static int login_credentials(const char **user, char **user_buf, char **password,
                             bool password_stdin)
{
    bool tty = isatty(STDIN_FILENO);
    if (*user == NULL) {
        if (!tty)
            return cli_usage_error(&login_cmd, "no user name: pass -u USER");
        fprintf(stderr, "Username: ");
        *user_buf = read_secret_line(stdin, true);
        *user = *user_buf;
    }
    if (!password_stdin && !tty)
        return cli_usage_error(&login_cmd, "no terminal to ask for the password: use "
                                           "--password-stdin");
    if (!password_stdin)
        fprintf(stderr, "Password: ");
    *password = read_secret_line(stdin, password_stdin);
    if (*user == NULL || (*user)[0] == '\0' || *password == NULL || (*password)[0] == '\0')
        return cli_usage_error(&login_cmd, "empty user name or password");
    return 0;
}

int cmd_login(int argc, char **argv);
int cmd_login(int argc, char **argv)
{
    static const struct option opts[] = {
            {"username", required_argument, NULL, 'u'},
            {"password-stdin", no_argument, NULL, OPT_PASSWORD_STDIN},
            {"insecure", no_argument, NULL, OPT_INSECURE},
            {"auth-file", required_argument, NULL, OPT_AUTH_FILE},
            CLI_COMMON_LONGOPTS,
            {NULL, 0, NULL, 0},
    };
    struct registry_client_options o;
    registry_client_options_init(&o);
    const char *user = NULL;
    bool password_stdin = false;
    int c, r = 0;
    cli_set_progname("login", argv);
    while ((c = getopt_long(argc, argv, "hu:", opts, NULL)) != -1) {
        if (c == 'u')
            user = optarg;
        else if (c == OPT_PASSWORD_STDIN)
            password_stdin = true;
        else if (c == OPT_INSECURE)
            o.insecure = true;
        else if (c == OPT_AUTH_FILE)
            o.auth_file = optarg;
        else if (cli_common_opt_done(&login_cmd, c, &r))
            return r;
    }
    if (argc - optind != 1)
        return cli_usage_error(&login_cmd, "expected REGISTRY");
    _cleanup_free_ char *user_buf = NULL, *password = NULL;
    if ((r = login_credentials(&user, &user_buf, &password, password_stdin)) != 0)
        return r;
    struct dlc_error *err = NULL;
    if (user == NULL || password == NULL)
        return CLI_EXIT_USAGE;
    r = registry_login(argv[optind], user, password, &o, &err);
    explicit_bzero(password, strlen(password));
    if (r < 0)
        return cli_fail(NULL, &err);
    printf("Login Succeeded: %s\n", argv[optind]);
    return 0;
}

int cmd_logout(int argc, char **argv);
int cmd_logout(int argc, char **argv)
{
    static const struct option opts[] = {
            {"auth-file", required_argument, NULL, OPT_AUTH_FILE},
            CLI_COMMON_LONGOPTS,
            {NULL, 0, NULL, 0},
    };
    const char *auth_file = NULL;
    int c, r = 0;
    cli_set_progname("logout", argv);
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == OPT_AUTH_FILE)
            auth_file = optarg;
        else if (cli_common_opt_done(&logout_cmd, c, &r))
            return r;
    }
    if (argc - optind != 1)
        return cli_usage_error(&logout_cmd, "expected REGISTRY");
    struct dlc_error *err = NULL;
    if (registry_logout(argv[optind], auth_file, &err) < 0)
        return cli_fail("logout", &err);
    printf("Removed credentials for %s\n", argv[optind]);
    return 0;
}
