/* cmd-build.c: `dlc build` (image definitions -> tagged images) and `dlc history`. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "builder.h"
#include "cli.h"
#include "registry.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- build ---------------------------------------------------------------------------- */

struct progress {
    double started;
};

/* One line per layer on stderr when it is a terminal, redrawn while the layer is written. */
static void on_progress(const struct builder_event *ev, void *userdata)
{
    struct progress *p = userdata;
    char in[32], total[32], out[32];
    switch (ev->kind) {
    case BUILDER_EVENT_LAYER_START:
        p->started = now_s();
        fprintf(stderr, "layer %s: ...", ev->layer);
        break;
    case BUILDER_EVENT_LAYER_PROGRESS:
        fprintf(stderr, "\r\033[Klayer %s: %s of ~%s -> %s", ev->layer,
                dlc_format_size(ev->bytes_in, in, sizeof(in)),
                dlc_format_size(ev->bytes_total, total, sizeof(total)),
                dlc_format_size(ev->bytes_out, out, sizeof(out)));
        break;
    case BUILDER_EVENT_LAYER_DONE:
        fprintf(stderr, "\r\033[Klayer %s: %s %s in %.2fs\n", ev->layer,
                dlc_format_size(ev->bytes_out, out, sizeof(out)), ev->cached ? "cached" : "written",
                now_s() - p->started);
        break;
    }
    fflush(stderr);
}

static void print_image(const struct builder_result *r, const struct builder_image_info *im)
{
    char sz[32];
    printf("%s:", im->variant ? im->variant : r->name);
    for (size_t i = 0; im->tags && im->tags[i]; i++)
        printf(" %s", im->tags[i]);
    printf("\n  manifest  %s\n", im->manifest_digest);
    printf("  size      %s (%llu bytes compressed)\n", dlc_format_size(im->size, sz, sizeof(sz)),
           (unsigned long long)im->size);
    for (size_t i = 0; i < im->n_layers; i++) {
        const struct builder_layer_info *l = &im->layers[i];
        printf("  layer     %-8s %s  %9s  %s\n", l->name, l->digest,
               dlc_format_size(l->size, sz, sizeof(sz)),
               l->inherited ? "inherited"
               : l->cached  ? "cached"
                            : "built");
    }
}

/* A definition's "from" naming a registry image the store lacks: pull it first. */
static int fetch_from(struct oci_store *s, const char *ref, void *userdata, struct dlc_error **err)
{
    const bool *insecure = userdata;
    struct registry_client_options o;
    registry_client_options_init(&o);
    o.insecure = *insecure;
    struct registry_transfer_stats st;
    if (cli_global.tty)
        fprintf(stderr, "pulling %s\n", ref);
    return registry_pull(s, ref, NULL, &o, &st, err);
}

enum { OPT_VARIANT = 0x100, OPT_COMPRESS, OPT_NO_CACHE, OPT_BUILD_DIR, OPT_INSECURE };

static int parse_build(const struct cli_command *cmd, int argc, char **argv,
                       struct builder_options *o, char ***tags, bool *done)
{
    static const struct option opts[] = {{"file", required_argument, NULL, 'f'},
                                         {"variant", required_argument, NULL, OPT_VARIANT},
                                         {"tag", required_argument, NULL, 't'},
                                         {"compress", required_argument, NULL, OPT_COMPRESS},
                                         {"no-cache", no_argument, NULL, OPT_NO_CACHE},
                                         {"build-dir", required_argument, NULL, OPT_BUILD_DIR},
                                         {"insecure", no_argument, NULL, OPT_INSECURE},
                                         CLI_COMMON_LONGOPTS,
                                         {NULL, 0, NULL, 0}};
    int c, r = 0;
    struct dlc_error *err = NULL;
    while ((c = getopt_long(argc, argv, "f:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            o->definition = optarg;
            break;
        case OPT_VARIANT:
            o->variant = optarg;
            break;
        case 't':
            *tags = dlc_strv_push(*tags, optarg);
            break;
        case OPT_COMPRESS:
            if (builder_compression_parse(optarg, &o->compression, &err) < 0) {
                *done = true;
                r = cli_usage_error(cmd, "--compress: %s", err->msg);
                dlc_error_free(&err);
                return r;
            }
            break;
        case OPT_NO_CACHE:
            o->no_cache = true;
            break;
        case OPT_BUILD_DIR:
            o->build_dir = optarg;
            break;
        case OPT_INSECURE:
            *(bool *)o->fetch_userdata = true;
            break;
        default:
            if (cli_common_opt_done(cmd, c, &r)) {
                *done = true;
                return r;
            }
        }
    }
    if (optind < argc) {
        *done = true;
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    }
    return 0;
}

int cmd_build(int argc, char **argv);
int cmd_build(int argc, char **argv)
{
    const struct cli_command *cmd = cli_command_find("build");
    struct builder_options o = BUILDER_OPTIONS_INIT;
    o.definition = "images/tensor-runtime.json";
    bool insecure = false;
    o.fetch = fetch_from;
    o.fetch_userdata = &insecure;
    _cleanup_strv_ char **tags = NULL;
    bool done = false;
    cli_set_progname(cmd->name, argv);
    int r = parse_build(cmd, argc, argv, &o, &tags, &done);
    if (done)
        return r;
    o.extra_tags = tags;
    struct progress p = {0};
    if (cli_global.tty) {
        o.progress = on_progress;
        o.userdata = &p;
    }
    _cleanup_free_ char *root = cli_root();
    struct dlc_error *err = NULL;
    _cleanup_(builder_result_freep) struct builder_result *res = NULL;
    if (builder_build(root, &o, &res, &err) < 0) {
        if (cli_global.tty)
            fprintf(stderr, "\n");
        return cli_fail("build", &err);
    }
    for (size_t i = 0; i < res->n_images; i++)
        print_image(res, &res->images[i]);
    return 0;
}

/* ---- history -------------------------------------------------------------------------- */

static void print_history_json(const struct builder_history_entry *h, size_t n)
{
    json_auto_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_object();
        if (h[i].created)
            json_object_set_new(e, "created", json_string(h[i].created));
        if (h[i].created_by)
            json_object_set_new(e, "created_by", json_string(h[i].created_by));
        if (h[i].comment)
            json_object_set_new(e, "comment", json_string(h[i].comment));
        json_object_set_new(e, "empty_layer", json_boolean(h[i].empty_layer));
        if (!h[i].empty_layer) {
            json_object_set_new(e, "digest", json_string(h[i].digest));
            json_object_set_new(e, "size", json_integer(h[i].size));
        }
        json_array_append_new(a, e);
    }
    _cleanup_free_ char *s = dlc_json_dumps_pretty(a);
    fputs(s, stdout);
}

/* Newest first, as docker history prints it. */
static void print_history_table(const struct builder_history_entry *h, size_t n, bool no_trunc)
{
    int dw = no_trunc ? 71 : 12;
    printf("%-*s  %-20s  %9s  %s\n", dw, "LAYER", "CREATED", "SIZE", "CREATED BY");
    for (size_t k = n; k-- > 0;) {
        char sz[32];
        const char *d = h[k].empty_layer ? "<empty>" : h[k].digest;
        if (!h[k].empty_layer && !no_trunc)
            d = oci_digest_hex(h[k].digest);
        printf("%-*.*s  %-20s  %9s  %s%s%s%s\n", dw, dw, d, h[k].created ? h[k].created : "?",
               h[k].empty_layer ? "0 B" : dlc_format_size((uint64_t)h[k].size, sz, sizeof(sz)),
               h[k].created_by ? h[k].created_by : "?", h[k].comment ? " (" : "",
               h[k].comment ? h[k].comment : "", h[k].comment ? ")" : "");
    }
}

int cmd_history(int argc, char **argv);
int cmd_history(int argc, char **argv)
{
    const struct cli_command *cmd = cli_command_find("history");
    static const struct option opts[] = {{"format", required_argument, NULL, 'F'},
                                         {"no-trunc", no_argument, NULL, 'T'},
                                         CLI_COMMON_LONGOPTS,
                                         {NULL, 0, NULL, 0}};
    bool json = false, no_trunc = false;
    int c, r = 0;
    cli_set_progname(cmd->name, argv);
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'F' && (strcmp(optarg, "json") == 0 || strcmp(optarg, "table") == 0))
            json = strcmp(optarg, "json") == 0;
        else if (c == 'F')
            return cli_usage_error(cmd, "--format: '%s' is not one of table, json", optarg);
        else if (c == 'T')
            no_trunc = true;
        else if (cli_common_opt_done(cmd, c, &r))
            return r;
    }
    if (argc - optind != 1)
        return cli_usage_error(cmd, "expected one image reference");
    const char *ref = argv[optind];
    _cleanup_free_ char *root = cli_root();
    struct dlc_error *err = NULL;
    _cleanup_(oci_store_freep) struct oci_store *s = NULL;
    struct builder_history_entry *h = NULL;
    size_t n = 0;
    if (oci_store_open(root, &s, &err) < 0 || builder_history(s, ref, &h, &n, &err) < 0)
        return cli_fail("history", &err);
    if (json)
        print_history_json(h, n);
    else
        print_history_table(h, n, no_trunc);
    builder_history_free(h, n);
    return 0;
}
