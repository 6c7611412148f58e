/* cmd-images.c: `dlc images|inspect|tag|rmi|prune`: the image store from the command line. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "oci.h"

/* Parses options for a command that has none of its own. */
static int parse_no_options(const struct cli_command *cmd, int argc, char **argv, bool *done)
{
    static const struct option opts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    int c, r = 0;
    cli_set_progname(cmd->name, argv);
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_common_opt_done(cmd, c, &r)) {
            *done = true;
            return r;
        }
    }
    return 0;
}

static int open_store(const char *what, struct oci_store **ret)
{
    _cleanup_free_ char *root = cli_root();
    struct dlc_error *err = NULL;
    if (oci_store_open(root, ret, &err) < 0)
        return cli_fail(what, &err);
    return 0;
}

/* ---- images ------------------------------------------------------------------------- */

struct image_row {
    char *repo;
    char *tag;
    char digest[OCI_DIGEST_BUFSZ];
    bool have_size;
    uint64_t size; /* config + layers, as stored (compressed) */
    char *created; /* RFC 3339 from the config, or NULL */
};

static void rows_free(struct image_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].repo);
        free(rows[i].tag);
        free(rows[i].created);
    }
    free(rows);
}

/* "host:5000/a/b:t" -> "host:5000/a/b" + "t"; a name without a tag gets "<none>". */
static void split_ref_name(const char *ref_name, char **repo, char **tag)
{
    if (ref_name == NULL) {
        *repo = xstrdup("<none>");
        *tag = xstrdup("<none>");
        return;
    }
    const char *slash = strrchr(ref_name, '/');
    const char *colon = strrchr(ref_name, ':');
    if (colon == NULL || (slash != NULL && colon < slash)) {
        *repo = xstrdup(ref_name);
        *tag = xstrdup("<none>");
        return;
    }
    *repo = xstrndup(ref_name, (size_t)(colon - ref_name));
    *tag = xstrdup(colon + 1);
}

static void row_fill(struct oci_store *s, const struct oci_store_entry *e, struct image_row *row)
{
    split_ref_name(e->ref_name, &row->repo, &row->tag);
    memcpy(row->digest, e->desc.digest, OCI_DIGEST_BUFSZ);
    struct dlc_error *err = NULL;
    _cleanup_(oci_image_freep) struct oci_image *img = NULL;
    if (oci_store_load_image_desc(s, &e->desc, &img, &err) < 0) {
        dlc_warn("%s: %s", e->ref_name ? e->ref_name : e->desc.digest, err->msg);
        dlc_error_free(&err);
        return;
    }
    row->have_size = true;
    row->size = (uint64_t)img->manifest->config.size;
    for (size_t i = 0; i < img->manifest->n_layers; i++)
        row->size += (uint64_t)img->manifest->layers[i].size;
    row->created = img->config->created ? xstrdup(img->config->created) : NULL;
}

static int row_cmp(const void *a, const void *b)
{
    const struct image_row *x = a, *y = b;
    int c = strcmp(x->repo, y->repo);
    return c != 0 ? c : strcmp(x->tag, y->tag);
}

/* Seconds since the epoch of an RFC 3339 time ("2024-05-01T10:00:00.5+02:00"); -1 if not. */
static int64_t parse_rfc3339(const char *s)
{
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (p == NULL)
        return -1;
    if (*p == '.')
        p += 1 + strspn(p + 1, "0123456789");
    int64_t t = (int64_t)timegm(&tm);
    if (*p == 'Z' || *p == 'z')
        return p[1] == '\0' ? t : -1;
    int hh = 0, mm = 0;
    char sign = *p;
    if ((sign != '+' && sign != '-') || sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
        return -1;
    int64_t off = (int64_t)hh * 3600 + (int64_t)mm * 60;
    return sign == '+' ? t - off : t + off;
}

/* "3 days ago", as docker images shows it. */
static void format_age(const char *created, char *buf, size_t len)
{
    int64_t t = created ? parse_rfc3339(created) : -1;
    if (t < 0) {
        snprintf(buf, len, "%s", created ? created : "N/A");
        return;
    }
    int64_t d = (int64_t)time(NULL) - t;
    static const struct {
        int64_t limit, unit;
        const char *name;
    } steps[] = {
            {60, 1, "second"},
            {3600, 60, "minute"},
            {86400, 3600, "hour"},
            {14 * 86400, 86400, "day"},
            {60 * 86400, 7 * 86400, "week"},
            {730 * 86400, 30 * 86400, "month"},
            {INT64_MAX, 365 * 86400, "year"},
    };
    if (d < 0) {
        snprintf(buf, len, "in the future");
        return;
    }
    for (size_t i = 0; i < DLC_ARRAY_SIZE(steps); i++) {
        if (d < steps[i].limit) {
            int64_t n = d / steps[i].unit;
            snprintf(buf, len, "%lld %s%s ago", (long long)n, steps[i].name, n == 1 ? "" : "s");
            return;
        }
    }
}

static void print_images_table(const struct image_row *rows, size_t n, bool full)
{
    int wr = (int)strlen("REPOSITORY"), wt = (int)strlen("TAG"), wd = full ? 71 : 12;
    for (size_t i = 0; i < n; i++) {
        int lr = (int)strlen(rows[i].repo), lt = (int)strlen(rows[i].tag);
        wr = lr > wr ? lr : wr;
        wt = lt > wt ? lt : wt;
    }
    printf("%-*s   %-*s   %-*s   %-9s   %s\n", wr, "REPOSITORY", wt, "TAG", wd, "DIGEST", "SIZE",
           "CREATED");
    for (size_t i = 0; i < n; i++) {
        char size[32], age[64];
        if (rows[i].have_size)
            dlc_format_size(rows[i].size, size, sizeof(size));
        else
            snprintf(size, sizeof(size), "?");
        format_age(rows[i].created, age, sizeof(age));
        printf("%-*s   %-*s   %-*.*s   %-9s   %s\n", wr, rows[i].repo, wt, rows[i].tag, wd, wd,
               full ? rows[i].digest : oci_digest_hex(rows[i].digest), size, age);
    }
}

static void print_images_json(const struct image_row *rows, size_t n)
{
    json_auto_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_pack("{s:s,s:s,s:s}", "Repository", rows[i].repo, "Tag", rows[i].tag,
                              "Digest", rows[i].digest);
        json_object_set_new(o, "Size",
                            rows[i].have_size ? json_integer((json_int_t)rows[i].size)
                                              : json_null());
        json_object_set_new(o, "Created",
                            rows[i].created ? json_string(rows[i].created) : json_null());
        json_array_append_new(a, o);
    }
    _cleanup_free_ char *s = dlc_json_dumps_pretty(a);
    fputs(s, stdout);
}

static int images_parse(const struct cli_command *cmd, int argc, char **argv, bool *json,
                        bool *full, bool *done)
{
    static const struct option opts[] = {{"format", required_argument, NULL, 'f'},
                                         {"digests", no_argument, NULL, 'd'},
                                         CLI_COMMON_LONGOPTS,
                                         {NULL, 0, NULL, 0}};
    int c, r = 0;
    cli_set_progname(cmd->name, argv);
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'f' && (strcmp(optarg, "json") == 0 || strcmp(optarg, "table") == 0)) {
            *json = strcmp(optarg, "json") == 0;
        } else if (c == 'f') {
            *done = true;
            return cli_usage_error(cmd, "--format: '%s' is not one of table, json", optarg);
        } else if (c == 'd') {
            *full = true;
        } else if (cli_common_opt_done(cmd, c, &r)) {
            *done = true;
            return r;
        }
    }
    if (optind < argc) {
        *done = true;
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    }
    return 0;
}

int cmd_images(int argc, char **argv);
int cmd_images(int argc, char **argv)
{
    const struct cli_command *cmd = cli_command_find("images");
    bool json = false, full = false, done = false;
    int r = images_parse(cmd, argc, argv, &json, &full, &done);
    if (done)
        return r;
    _cleanup_(oci_store_freep) struct oci_store *s = NULL;
    if (open_store("images", &s) != 0)
        return CLI_EXIT_FAIL;
    struct dlc_error *err = NULL;
    struct oci_store_entry *e = NULL;
    size_t n = 0;
    if (oci_store_list(s, &e, &n, &err) < 0)
        return cli_fail("images", &err);
    struct image_row *rows = xcalloc(n ? n : 1, sizeof(*rows));
    for (size_t i = 0; i < n; i++)
        row_fill(s, &e[i], &rows[i]);
    oci_store_entries_free(e, n);
    qsort(rows, n, sizeof(*rows), row_cmp);
    if (json)
        print_images_json(rows, n);
    else
        print_images_table(rows, n, full);
    rows_free(rows, n);
    return CLI_EXIT_OK;
}

/* ---- inspect ------------------------------------------------------------------------ */

int cmd_inspect(int argc, char **argv);
int cmd_inspect(int argc, char **argv)
{
    const struct cli_command *cmd = cli_command_find("inspect");
    bool done = false;
    int r = parse_no_options(cmd, argc, argv, &done);
    if (done)
        return r;
    if (argc - optind != 1)
        return cli_usage_error(cmd, "expected exactly one image reference");
    _cleanup_(oci_store_freep) struct oci_store *s = NULL;
    if (open_store("inspect", &s) != 0)
        return CLI_EXIT_FAIL;
    struct dlc_error *err = NULL;
    _cleanup_(oci_image_freep) struct oci_image *img = NULL;
    if (oci_store_load_image(s, argv[optind], &img, &err) < 0)
        return cli_fail("inspect", &err);
    /* The stored documents as they are (unknown fields included), not a re-serialisation. */
    json_auto_t *manifest = dlc_json_loadb(img->manifest_raw, img->manifest_len, "manifest", &err);
    json_auto_t *config =
            manifest ? dlc_json_loadb(img->config_raw, img->config_len, "config", &err) : NULL;
    if (config == NULL)
        return cli_fail("inspect", &err);
    json_auto_t *out = json_pack("{s:s,s:O,s:O}", "Digest", img->desc.digest, "Manifest", manifest,
                                 "Config", config);
    _cleanup_free_ char *text = dlc_json_dumps_pretty(out);
    fputs(text, stdout);
    return CLI_EXIT_OK;
}

/* ---- tag ---------------------------------------------------------------------------- */

int cmd_tag(int argc, char **argv);
int cmd_tag(int argc, char **argv)
{
    const struct cli_command *cmd = cli_command_find("tag");
    bool done = false;
    int r = parse_no_options(cmd, argc, argv, &done);
    if (done)
        return r;
    if (argc - optind != 2)
        return cli_usage_error(cmd, "expected a source and a target reference");
    _cleanup_(oci_store_freep) struct oci_store *s = NULL;
    if (open_store("tag", &s) != 0)
        return CLI_EXIT_FAIL;
    struct dlc_error *err = NULL;
    struct oci_descriptor d = {0};
    if (oci_store_resolve(s, argv[optind], &d, &err) < 0)
        return cli_fail("tag", &err);
    r = oci_store_tag(s, argv[optind + 1], &d, &err);
    oci_descriptor_release(&d);
    return r < 0 ? cli_fail("tag", &err) : CLI_EXIT_OK;
}

/* ---- rmi ---------------------------------------------------------------------------- */

/* Whether ref names the tag ref_name ("app" names "app:latest"), rather than a digest. */
static bool ref_is_tag(const char *ref, const char *ref_name)
{
    if (ref_name == NULL)
        return false;
    if (strcmp(ref, ref_name) == 0)
        return true;
    _cleanup_(oci_ref_freep) struct oci_ref *r = NULL;
    if (oci_ref_parse(ref, &r, NULL) < 0 || r->digest != NULL)
        return false;
    _cleanup_free_ char *name = oci_ref_store_name(r);
    return dlc_streq(name, ref_name);
}

/* A tag untags that name; a digest or ID prefix untags every name of that image. */
static int rmi_one(struct oci_store *s, const char *ref, struct dlc_error **err)
{
    struct oci_descriptor d = {0};
    if (oci_store_resolve(s, ref, &d, err) < 0)
        return -1;
    const char *name = oci_map_get(&d.annotations, OCI_ANNOTATION_REF_NAME);
    int r = 0;
    if (ref_is_tag(ref, name)) {
        r = oci_store_untag(s, name, err);
        if (r == 0)
            printf("Untagged: %s\n", name);
    } else {
        _cleanup_strv_ char **names = NULL;
        r = oci_store_untag_digest(s, d.digest, &names, err);
        for (size_t i = 0; r == 0 && names[i]; i++)
            printf("Untagged: %s\n", names[i]);
    }
    oci_descriptor_release(&d);
    return r;
}

int cmd_rmi(int argc, char **argv);
int cmd_rmi(int argc, char **argv)
{
    const struct cli_command *cmd = cli_command_find("rmi");
    bool done = false;
    int r = parse_no_options(cmd, argc, argv, &done);
    if (done)
        return r;
    if (optind >= argc)
        return cli_usage_error(cmd, "expected at least one image reference");
    _cleanup_(oci_store_freep) struct oci_store *s = NULL;
    if (open_store("rmi", &s) != 0)
        return CLI_EXIT_FAIL;
    int status = CLI_EXIT_OK;
    for (int i = optind; i < argc; i++) {
        struct dlc_error *err = NULL;
        if (rmi_one(s, argv[i], &err) < 0)
            status = cli_fail("rmi", &err);
    }
    return status;
}

/* ---- prune -------------------------------------------------------------------------- */

#define PRUNE_MAX_WAIT_S (24 * 3600)

/* --wait SECONDS: how long to wait for builds and pulls that have not tagged yet. */
static int prune_parse(const struct cli_command *cmd, int argc, char **argv, int *wait_s,
                       bool *done)
{
    static const struct option opts[] = {
            {"wait", required_argument, NULL, 'w'}, CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    int c, r = 0;
    cli_set_progname(cmd->name, argv);
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'w') {
            _cleanup_error_ struct dlc_error *e = NULL;
            if (dlc_parse_int(optarg, "--wait", 0, PRUNE_MAX_WAIT_S, wait_s, &e) < 0) {
                *done = true;
                return cli_usage_error(cmd, "%s", e->msg);
            }
        } else if (cli_common_opt_done(cmd, c, &r)) {
            *done = true;
            return r;
        }
    }
    if (optind < argc) {
        *done = true;
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    }
    return 0;
}

int cmd_prune(int argc, char **argv);
int cmd_prune(int argc, char **argv)
{
    const struct cli_command *cmd = cli_command_find("prune");
    bool done = false;
    int wait_s = OCI_GC_WAIT_MS / 1000;
    int r = prune_parse(cmd, argc, argv, &wait_s, &done);
    if (done)
        return r;
    _cleanup_(oci_store_freep) struct oci_store *s = NULL;
    if (open_store("prune", &s) != 0)
        return CLI_EXIT_FAIL;
    struct dlc_error *err = NULL;
    size_t blobs = 0;
    uint64_t bytes = 0;
    if (oci_store_gc_wait(s, wait_s * 1000, &blobs, &bytes, &err) < 0)
        return cli_fail("prune", &err);
    char size[32];
    printf("Deleted %zu blob%s, freed %s\n", blobs, blobs == 1 ? "" : "s",
           dlc_format_size(bytes, size, sizeof(size)));
    return CLI_EXIT_OK;
}
