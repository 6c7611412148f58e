/* cmd-gpu.c: `dlc info` (GPUs, OpenCL ICDs and CDI devices of this host), `dlc cdi
 * generate|list`, and the --gpus/--device/--driver-root options of `dlc run|train`. */
#include <errno.h>
#include <string.h>

#include "cli-gpu.h"

/* ---- the run/train options ------------------------------------------------------------- */

bool cli_gpu_opt(struct cli_gpu_opts *o, int c, const char *arg)
{
    switch (c) {
    case CLI_OPT_GPUS:
        o->gpus = arg;
        return true;
    case CLI_OPT_DEVICE:
        o->devices = dlc_strv_push(o->devices, arg);
        return true;
    case CLI_OPT_DRIVER_ROOT:
        o->driver_root = arg;
        return true;
    default:
        return false;
    }
}

int cli_gpu_apply(const struct cli_gpu_opts *o, struct runner_spec *spec, struct dlc_error **err)
{
    struct runner_gpu_request req = {
            .gpus = o->gpus, .devices = o->devices, .driver_root = o->driver_root};
    return runner_gpu_apply(spec, &req, err);
}

void cli_gpu_opts_release(struct cli_gpu_opts *o)
{
    dlc_strv_free(o->devices);
    *o = (struct cli_gpu_opts){0};
}

/* ---- shared option handling ------------------------------------------------------------ */

#define OPT_FORMAT 0x4710
#define OPT_OUTPUT 0x4711
#define OPT_KIND   0x4712

struct info_opts {
    const char *driver_root;
    const char *format; /* "table" or "json" */
    const char *output;
    const char *kind;
};

/* Parses argv; returns -1 to go on, else the exit code to return now. */
static int parse_opts(const struct cli_command *cmd, int argc, char **argv, struct info_opts *o)
{
    static const struct option opts[] = {
            {"driver-root", required_argument, NULL, CLI_OPT_DRIVER_ROOT},
            {"format", required_argument, NULL, OPT_FORMAT},
            {"output", required_argument, NULL, OPT_OUTPUT},
            {"kind", required_argument, NULL, OPT_KIND},
            CLI_COMMON_LONGOPTS,
            {NULL, 0, NULL, 0}};
    cli_set_progname(cmd->name, argv);
    int c, r = 0;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        if (c == CLI_OPT_DRIVER_ROOT)
            o->driver_root = optarg;
        else if (c == OPT_FORMAT)
            o->format = optarg;
        else if (c == OPT_OUTPUT || c == 'o')
            o->output = optarg;
        else if (c == OPT_KIND)
            o->kind = optarg;
        else if (cli_common_opt_done(cmd, c, &r))
            return r;
    }
    if (o->format && strcmp(o->format, "table") != 0 && strcmp(o->format, "json") != 0)
        return cli_usage_error(cmd, "--format must be table or json");
    return -1;
}

/* ---- dlc info ------------------------------------------------------------------------------ */

static const char *or_dash(const char *s)
{
    return s && *s ? s : "-";
}

static void print_gpus(const struct runner_host_info *info)
{
    printf("NVIDIA driver: %s\n", info->nvidia_version ? info->nvidia_version : "none");
    if (info->n_gpus == 0) {
        printf("GPUs: none\n");
        return;
    }
    printf("GPUs:\n  %-5s  %-6s  %-28s  %-40s  %-14s  %s\n", "INDEX", "VENDOR", "MODEL", "UUID",
           "BUS", "NODE");
    for (size_t i = 0; i < info->n_gpus; i++) {
        const struct runner_gpu_info *g = &info->gpus[i];
        printf("  %-5zu  %-6s  %-28s  %-40s  %-14s  %s\n", i, g->vendor, or_dash(g->model),
               or_dash(g->uuid), or_dash(g->bus_id), g->node);
    }
}

static void print_icds(const struct runner_host_info *info)
{
    if (info->n_icds == 0) {
        printf("OpenCL ICDs: none\n");
        return;
    }
    printf("OpenCL ICDs:\n");
    for (size_t i = 0; i < info->n_icds; i++) {
        const struct runner_icd_info *c = &info->icds[i];
        printf("  %-10s %s -> %s", c->name, c->library, or_dash(c->lib_path));
        if (c->problem)
            printf(" (unusable: %s)\n", c->problem);
        else if (c->n_libs)
            printf(" (%zu librar%s)\n", c->n_libs, c->n_libs == 1 ? "y" : "ies");
        else
            printf(" (with the NVIDIA driver)\n");
    }
}

static void print_cdi(const struct runner_host_info *info)
{
    _cleanup_strbuf_ struct dlc_strbuf dirs = DLC_STRBUF_INIT;
    for (size_t i = 0; info->cdi_dirs && info->cdi_dirs[i]; i++)
        dlc_strbuf_appendf(&dirs, "%s%s", i ? ", " : "", info->cdi_dirs[i]);
    if (info->n_cdi == 0) {
        printf("CDI devices (%s): none\n", dlc_strbuf_str(&dirs));
        return;
    }
    printf("CDI devices (%s):\n", dlc_strbuf_str(&dirs));
    for (size_t i = 0; i < info->n_cdi; i++)
        printf("  %-40s %s\n", info->cdi[i].name, info->cdi[i].spec);
}

static void print_info_table(const struct runner_host_info *info)
{
    printf("Driver root: %s\n", info->driver_root);
    print_gpus(info);
    print_icds(info);
    print_cdi(info);
    for (size_t i = 0; info->cdi_problems && info->cdi_problems[i]; i++)
        printf("  unusable: %s\n", info->cdi_problems[i]);
    for (size_t i = 0; info->warnings && info->warnings[i]; i++)
        printf("%s  %s\n", i ? "" : "Warnings:\n", info->warnings[i]);
}

static json_t *json_str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static void print_info_json(const struct runner_host_info *info)
{
    json_auto_t *gpus = json_array(), *icds = json_array(), *cdi = json_array();
    for (size_t i = 0; i < info->n_gpus; i++) {
        const struct runner_gpu_info *g = &info->gpus[i];
        json_array_append_new(gpus,
                              json_pack("{s:I, s:s, s:o, s:o, s:o, s:s}", "index", (json_int_t)i,
                                        "vendor", g->vendor, "model", json_str_or_null(g->model),
                                        "uuid", json_str_or_null(g->uuid), "bus_id",
                                        json_str_or_null(g->bus_id), "node", g->node));
    }
    for (size_t i = 0; i < info->n_icds; i++) {
        const struct runner_icd_info *c = &info->icds[i];
        json_array_append_new(icds, json_pack("{s:s, s:s, s:s, s:o, s:I, s:o}", "name", c->name,
                                              "file", c->file, "library", c->library,
                                              "library_path", json_str_or_null(c->lib_path),
                                              "libraries", (json_int_t)c->n_libs, "problem",
                                              json_str_or_null(c->problem)));
    }
    for (size_t i = 0; i < info->n_cdi; i++)
        json_array_append_new(
                cdi, json_pack("{s:s, s:s}", "name", info->cdi[i].name, "spec", info->cdi[i].spec));
    json_auto_t *o =
            json_pack("{s:s, s:o, s:O, s:O, s:o, s:O, s:o}", "driver_root", info->driver_root,
                      "nvidia_driver", json_str_or_null(info->nvidia_version), "gpus", gpus,
                      "opencl_icds", icds, "cdi_spec_dirs", dlc_json_from_strv(info->cdi_dirs),
                      "cdi_devices", cdi, "warnings", dlc_json_from_strv(info->warnings));
    json_object_set_new(o, "cdi_problems", dlc_json_from_strv(info->cdi_problems));
    _cleanup_free_ char *s = dlc_json_dumps_pretty(o);
    fputs(s, stdout);
}

int cmd_info(int argc, char **argv);
int cmd_info(int argc, char **argv)
{
    const struct cli_command *cmd = cli_command_find("info");
    struct info_opts o = {0};
    int r = parse_opts(cmd, argc, argv, &o);
    if (r >= 0)
        return r;
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (o.output || o.kind)
        return cli_usage_error(cmd, "--output and --kind belong to 'dlc cdi generate'");
    struct dlc_error *err = NULL;
    _cleanup_(runner_host_info_freep) struct runner_host_info *info = NULL;
    if (runner_host_info(o.driver_root, &info, &err) < 0)
        return cli_fail("info", &err);
    if (o.format && strcmp(o.format, "json") == 0)
        print_info_json(info);
    else
        print_info_table(info);
    return 0;
}

/* ---- dlc cdi ------------------------------------------------------------------------------- */

static int cdi_generate(const struct cli_command *cmd, const struct info_opts *o)
{
    if (o->format)
        return cli_usage_error(cmd, "--format belongs to 'dlc cdi list'");
    struct dlc_error *err = NULL;
    _cleanup_free_ char *json = NULL;
    bool to_file = o->output && strcmp(o->output, "-") != 0;
    /* Files the spec mounts that dlc writes: beside it, "dlc.json" -> "dlc.d/". */
    _cleanup_free_ char *aux = NULL;
    if (to_file) {
        size_t n = strlen(o->output);
        if (dlc_endswith(o->output, ".json"))
            n -= strlen(".json");
        aux = xasprintf("%.*s.d", (int)n, o->output);
        if (aux[0] != '/') {
            char cwd[4096];
            if (getcwd(cwd, sizeof(cwd)) == NULL) {
                dlc_error_set_errno(&err, errno, "getcwd");
                return cli_fail("cdi generate", &err);
            }
            char *abs = dlc_path_join(cwd, aux);
            free(aux);
            aux = abs;
        }
    }
    if (runner_cdi_generate(o->driver_root, o->kind, aux, &json, &err) < 0)
        return cli_fail("cdi generate", &err);
    if (!to_file) {
        fputs(json, stdout);
        return 0;
    }
    _cleanup_free_ char *dir = dlc_path_dirname(o->output);
    if (dlc_mkdir_p(dir, 0755, &err) < 0 ||
        dlc_write_file_atomic(o->output, json, strlen(json), 0644, &err) < 0)
        return cli_fail("cdi generate", &err);
    fprintf(stderr, "dlc: wrote %s\n", o->output);
    return 0;
}

static int cdi_list(const struct cli_command *cmd, const struct info_opts *o)
{
    if (o->output || o->kind || o->driver_root)
        return cli_usage_error(cmd, "'dlc cdi list' takes --format only");
    struct dlc_error *err = NULL;
    _cleanup_(runner_host_info_freep) struct runner_host_info *info = NULL;
    /* The driver root does not matter for CDI; "/" always exists. */
    if (runner_host_info("/", &info, &err) < 0)
        return cli_fail("cdi list", &err);
    if (o->format && strcmp(o->format, "json") == 0) {
        json_auto_t *a = json_array();
        for (size_t i = 0; i < info->n_cdi; i++)
            json_array_append_new(a, json_pack("{s:s, s:s}", "name", info->cdi[i].name, "spec",
                                               info->cdi[i].spec));
        _cleanup_free_ char *s = dlc_json_dumps_pretty(a);
        fputs(s, stdout);
        return 0;
    }
    for (size_t i = 0; i < info->n_cdi; i++)
        printf("%s\n", info->cdi[i].name);
    for (size_t i = 0; info->cdi_problems && info->cdi_problems[i]; i++)
        fprintf(stderr, "dlc: cdi: %s\n", info->cdi_problems[i]);
    return 0;
}

int cmd_cdi(int argc, char **argv);
int cmd_cdi(int argc, char **argv)
{
    const struct cli_command *cmd = cli_command_find("cdi");
    struct info_opts o = {0};
    int r = parse_opts(cmd, argc, argv, &o);
    if (r >= 0)
        return r;
    if (optind >= argc)
        return cli_usage_error(cmd, "missing subcommand (generate or list)");
    const char *sub = argv[optind];
    if (optind + 1 < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind + 1]);
    if (strcmp(sub, "generate") == 0)
        return cdi_generate(cmd, &o);
    if (strcmp(sub, "list") == 0)
        return cdi_list(cmd, &o);
    return cli_usage_error(cmd, "unknown subcommand '%s'", sub);
}
