/* cmd-run.c: `dlc run|train|ps|logs|stop|rm|export-bundle`: containers from the command
 * line. Flag errors of run and train are one line and exit 125, as docker's. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "cli-gpu.h"
#include "cli.h"
#include "runner.h"

enum {
    OPT_RM = 0x2000,
    OPT_NAME,
    OPT_ENV_FILE,
    OPT_ENTRYPOINT,
    OPT_HOSTNAME,
    OPT_NETWORK,
    OPT_READ_ONLY,
    OPT_USERNS,
    OPT_CAP_ADD,
    OPT_CAP_DROP,
    OPT_SECURITY_OPT,
    OPT_CPUS,
    OPT_PIDS_LIMIT,
    OPT_STOP_TIMEOUT,
    OPT_TIMEOUT,
    OPT_ULIMIT,
    OPT_CHANNEL,
    OPT_MODEL_DIR,
    OPT_OUTPUT_DIR,
    OPT_CODE,
    OPT_CHECKPOINT_DIR,
    OPT_HP,
    OPT_HP_FILE,
    OPT_OUTPUT,
};

#define RUN_SHORTOPTS "+hdite:u:w:m:v:p:"
#define RUN_LONGOPTS                                                                               \
    CLI_COMMON_LONGOPTS, {"detach", no_argument, NULL, 'd'}, {"rm", no_argument, NULL, OPT_RM},    \
            {"name", required_argument, NULL, OPT_NAME}, {"env", required_argument, NULL, 'e'},    \
            {"env-file", required_argument, NULL, OPT_ENV_FILE},                                   \
            {"user", required_argument, NULL, 'u'}, {"workdir", required_argument, NULL, 'w'},     \
            {"entrypoint", required_argument, NULL, OPT_ENTRYPOINT},                               \
            {"hostname", required_argument, NULL, OPT_HOSTNAME},                                   \
            {"network", required_argument, NULL, OPT_NETWORK},                                     \
            {"net", required_argument, NULL, OPT_NETWORK},                                         \
            {"read-only", no_argument, NULL, OPT_READ_ONLY},                                       \
            {"userns", no_argument, NULL, OPT_USERNS},                                             \
            {"cap-add", required_argument, NULL, OPT_CAP_ADD},                                     \
            {"cap-drop", required_argument, NULL, OPT_CAP_DROP},                                   \
            {"security-opt", required_argument, NULL, OPT_SECURITY_OPT},                           \
            {"memory", required_argument, NULL, 'm'}, {"cpus", required_argument, NULL, OPT_CPUS}, \
            {"pids-limit", required_argument, NULL, OPT_PIDS_LIMIT},                               \
            {"stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT},                           \
            {"timeout", required_argument, NULL, OPT_TIMEOUT},                                     \
            {"ulimit", required_argument, NULL, OPT_ULIMIT},                                       \
            {"volume", required_argument, NULL, 'v'},                                              \
            {"channel", required_argument, NULL, OPT_CHANNEL},                                     \
            {"model-dir", required_argument, NULL, OPT_MODEL_DIR},                                 \
            {"output-dir", required_argument, NULL, OPT_OUTPUT_DIR},                               \
            {"code", required_argument, NULL, OPT_CODE},                                           \
            {"checkpoint-dir", required_argument, NULL, OPT_CHECKPOINT_DIR},                       \
            {"hp", required_argument, NULL, OPT_HP},                                               \
            {"hyperparameters", required_argument, NULL, OPT_HP_FILE},                             \
            {"publish", required_argument, NULL, 'p'}, CLI_GPU_LONGOPTS

struct run_opts {
    struct runner_spec *spec;
    struct cli_gpu_opts gpu;
    const char *output;         /* train: --output */
    struct runner_ports *ports; /* -p (runner/src/publish.c) */
};

/* A host directory for an /opt/ml mount: must exist. */
static int host_dir(const char *flag, const char *arg, char **slot, struct dlc_error **err)
{
    char *p = realpath(arg, NULL);
    if (p == NULL)
        return dlc_error_set_errno(err, errno, "%s %s", flag, arg);
    if (!dlc_is_dir(p)) {
        free(p);
        return dlc_error_set(err, EINVAL, "%s %s: not a directory", flag, arg);
    }
    free(*slot);
    *slot = p;
    return 0;
}

static int parse_int_flag(const char *flag, const char *arg, int min, int *ret,
                          struct dlc_error **err)
{
    return dlc_parse_int(arg, flag, min, 1 << 30, ret, err);
}

static int set_network(struct runner_spec *spec, const char *arg, struct dlc_error **err)
{
    if (strcmp(arg, "none") == 0)
        spec->network = RUNNER_NET_NONE;
    else if (strcmp(arg, "host") == 0)
        spec->network = RUNNER_NET_HOST;
    else
        return dlc_error_set(err, EINVAL, "--network '%s': expected none or host", arg);
    return 0;
}

static int set_security_opt(struct runner_spec *spec, const char *arg, struct dlc_error **err)
{
    if (strcmp(arg, "seccomp=unconfined") == 0 || strcmp(arg, "seccomp:unconfined") == 0) {
        spec->seccomp_unconfined = true;
        return 0;
    }
    if (strcmp(arg, "no-new-privileges") == 0 || strcmp(arg, "no-new-privileges=true") == 0)
        return 0; /* always on */
    return dlc_error_set(err, EINVAL,
                         "--security-opt '%s': only seccomp=unconfined is "
                         "supported",
                         arg);
}

static int opt_process(struct run_opts *o, int c, const char *arg, struct dlc_error **err)
{
    struct runner_spec *spec = o->spec;
    switch (c) {
    case 'd':
        spec->detach = true;
        return 0;
    case 'i':
        return 0; /* stdin is always passed through */
    case 't':
        return dlc_error_set(err, EINVAL,
                             "-t: terminals are not supported; stdin, stdout and "
                             "stderr are passed through as they are");
    case OPT_RM:
        spec->remove = true;
        return 0;
    case OPT_NAME:
        free(spec->name);
        spec->name = xstrdup(arg);
        return 0;
    case 'e':
        if (strchr(arg, '=') == NULL) { /* docker: a bare name takes the caller's value */
            const char *v = getenv(arg);
            if (v) {
                _cleanup_free_ char *kv = xasprintf("%s=%s", arg, v);
                runner_spec_add_env(spec, kv);
            }
            return 0;
        }
        runner_spec_add_env(spec, arg);
        return 0;
    case OPT_ENV_FILE:
        return runner_spec_load_env_file(spec, arg, err);
    case 'u':
        free(spec->user);
        spec->user = xstrdup(arg);
        return 0;
    case 'w':
        if (arg[0] != '/')
            return dlc_error_set(err, EINVAL, "--workdir '%s': must be absolute", arg);
        free(spec->workdir);
        spec->workdir = xstrdup(arg);
        return 0;
    case OPT_ENTRYPOINT:
        dlc_strv_free(spec->entrypoint);
        spec->entrypoint = dlc_strv_push(NULL, arg);
        spec->entrypoint_set = true;
        return 0;
    case OPT_HOSTNAME:
        free(spec->hostname);
        spec->hostname = xstrdup(arg);
        return 0;
    default:
        return 1;
    }
}

static int opt_confinement(struct run_opts *o, int c, const char *arg, struct dlc_error **err)
{
    struct runner_spec *spec = o->spec;
    switch (c) {
    case OPT_NETWORK:
        return set_network(spec, arg, err);
    case OPT_READ_ONLY:
        spec->read_only = true;
        return 0;
    case OPT_USERNS:
        spec->userns = true;
        return 0;
    case OPT_CAP_ADD:
        spec->cap_add = dlc_strv_push(spec->cap_add, arg);
        return 0;
    case OPT_CAP_DROP:
        spec->cap_drop = dlc_strv_push(spec->cap_drop, arg);
        return 0;
    case OPT_SECURITY_OPT:
        return set_security_opt(spec, arg, err);
    case 'm':
        return dlc_parse_size(arg, "--memory", &spec->memory, err);
    case OPT_CPUS:
        return runner_parse_cpus(arg, &spec->cpu_milli, err);
    case OPT_PIDS_LIMIT: {
        int v;
        int r = dlc_parse_int(arg, "--pids-limit", 1, 1 << 22, &v, err);
        spec->pids_limit = v;
        return r;
    }
    case OPT_STOP_TIMEOUT:
        return parse_int_flag("--stop-timeout", arg, 0, &spec->stop_timeout, err);
    case OPT_TIMEOUT:
        return parse_int_flag("--timeout", arg, 1, &spec->timeout, err);
    case OPT_ULIMIT:
        return runner_spec_parse_ulimit(spec, arg, err);
    case 'v':
        return runner_spec_parse_volume(spec, arg, err);
    default:
        return 1;
    }
}

static int opt_sagemaker(struct run_opts *o, int c, const char *arg, struct dlc_error **err)
{
    struct runner_spec *spec = o->spec;
    switch (c) {
    case OPT_CHANNEL:
        return runner_spec_add_channel(spec, arg, err);
    case OPT_MODEL_DIR:
        return host_dir("--model-dir", arg, &spec->sm.model_dir, err);
    case OPT_OUTPUT_DIR:
        return host_dir("--output-dir", arg, &spec->sm.output_dir, err);
    case OPT_CODE:
        return host_dir("--code", arg, &spec->sm.code_dir, err);
    case OPT_CHECKPOINT_DIR:
        return host_dir("--checkpoint-dir", arg, &spec->sm.checkpoint_dir, err);
    case OPT_HP:
        return runner_spec_add_hp(spec, arg, err);
    case OPT_HP_FILE:
        return runner_spec_load_hp_file(spec, arg, err);
    case OPT_OUTPUT:
        o->output = arg;
        return 0;
    default:
        return 1;
    }
}

/* One line, exit 125: docker's convention for `run` (the container's codes are its own). */
static int run_fail(const char *what, struct dlc_error **err, int code)
{
    fprintf(stderr, "dlc: %s: %s\n", what, err && *err ? (*err)->msg : "failed");
    dlc_error_free(err);
    return code;
}

/* Parses run/train options and the IMAGE [COMMAND...] that follow. Returns -1 to go on,
 * else the exit code to return now. */
static int parse_run(const struct cli_command *cmd, int argc, char **argv, struct run_opts *o)
{
    /* run and train fail like docker run (125); export-bundle like any other command */
    int fail_code = strcmp(cmd->name, "export-bundle") == 0 ? CLI_EXIT_FAIL : RUNNER_EXIT_FAILED;
    static const struct option opts[] = {
            RUN_LONGOPTS, {"output", required_argument, NULL, OPT_OUTPUT}, {NULL, 0, NULL, 0}};
    struct dlc_error *err = NULL;
    int c;
    opterr = 0;
    o->spec = runner_spec_new("");
    /* `dlc train IMG --channel ...` as the issue writes it: train's command is fixed, so its
     * options may follow the image (GNU permutation; `--` ends them). run and export-bundle
     * stop at the image, since what follows is the container's command line. */
    const char *shortopts = strcmp(cmd->name, "train") == 0 ? RUN_SHORTOPTS + 1 : RUN_SHORTOPTS;
    while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
        if (c == 'h') {
            bool done = false;
            return cli_common_opt(cmd, c, &done);
        }
        if (c == CLI_OPT_ROOT) {
            cli_global.root = optarg;
            continue;
        }
        if (c == '?' || c == ':') {
            const char *p = optopt > 0 && optopt < 0x100 ? strchr(RUN_SHORTOPTS + 1, optopt) : NULL;
            bool missing = optopt >= 0x1000 || (p && p[1] == ':');
            dlc_error_set(&err, EINVAL, "%s '%s'", missing ? "missing value for" : "unknown option",
                          argv[optind - 1]);
            return run_fail(cmd->name, &err, fail_code);
        }
        if (cli_gpu_opt(&o->gpu, c, optarg))
            continue;
        if (c == 'p') {
            o->ports = o->ports ? o->ports : runner_ports_new();
            if (runner_ports_add(o->ports, optarg, &err) < 0)
                return run_fail(cmd->name, &err, fail_code);
            continue;
        }
        if (c == OPT_OUTPUT && strcmp(cmd->name, "train") != 0) {
            dlc_error_set(&err, EINVAL, "unknown option '--output' (did you mean --output-dir?)");
            return run_fail(cmd->name, &err, fail_code);
        }
        int r = opt_process(o, c, optarg, &err);
        if (r == 1)
            r = opt_confinement(o, c, optarg, &err);
        if (r == 1)
            r = opt_sagemaker(o, c, optarg, &err);
        if (r != 0)
            return run_fail(cmd->name, &err, fail_code);
    }
    if (optind >= argc) {
        dlc_error_set(&err, EINVAL, "no image given (usage: %s)", cmd->usage);
        return run_fail(cmd->name, &err, fail_code);
    }
    free(o->spec->image);
    o->spec->image = xstrdup(argv[optind++]);
    for (int i = optind; i < argc; i++)
        o->spec->cmd = dlc_strv_push(o->spec->cmd, argv[i]);
    if (cli_gpu_apply(&o->gpu, o->spec, &err) < 0 ||
        runner_ports_attach(o->ports, o->spec, &err) < 0)
        return run_fail(cmd->name, &err, fail_code);
    return -1;
}

static void run_opts_release(struct run_opts *o)
{
    runner_spec_free(o->spec);
    cli_gpu_opts_release(&o->gpu);
    runner_ports_free(o->ports);
}

static const char *format_limit(uint64_t n, char *buf, size_t len)
{
    if (n % (1ull << 30) == 0)
        snprintf(buf, len, "%llu GiB", (unsigned long long)(n >> 30));
    else if (n % (1ull << 20) == 0)
        snprintf(buf, len, "%llu MiB", (unsigned long long)(n >> 20));
    else if (n % 1024 == 0)
        snprintf(buf, len, "%llu KiB", (unsigned long long)(n >> 10));
    else
        snprintf(buf, len, "%llu bytes", (unsigned long long)n);
    return buf;
}

/* How the container ended, when it was not its own choice. */
static void report_end(const struct runner_spec *spec, const struct runner_result *res)
{
    char buf[64];
    if (res->oom)
        fprintf(stderr, "dlc: container killed: out of memory (limit %s)\n",
                format_limit(res->memory, buf, sizeof(buf)));
    else if (res->timed_out)
        fprintf(stderr, "dlc: container stopped: it ran longer than --timeout %d s\n",
                spec->timeout);
}

int cmd_run(int argc, char **argv);
int cmd_run(int argc, char **argv)
{
    const struct cli_command *cmd = cli_command_find("run");
    struct run_opts o = {0};
    int r = parse_run(cmd, argc, argv, &o);
    if (r >= 0) {
        run_opts_release(&o);
        return r;
    }
    _cleanup_free_ char *root = cli_root();
    struct runner_result res;
    struct dlc_error *err = NULL;
    if (runner_run(root, o.spec, &res, &err) < 0) {
        r = run_fail("run", &err, res.exit_code);
    } else if (o.spec->detach) {
        printf("%s\n", res.id);
        r = 0;
    } else {
        report_end(o.spec, &res);
        r = res.exit_code;
    }
    runner_result_release(&res);
    run_opts_release(&o);
    return r;
}

/* ---- ps, logs, stop, rm ----------------------------------------------------------------- */

static int parse_simple(const struct cli_command *cmd, int argc, char **argv, const char *shortopts,
                        const struct option *opts, int (*on)(int c, void *data), void *data)
{
    int c;
    opterr = 1;
    while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
        bool done = false;
        int r = cli_common_opt(cmd, c, &done);
        if (done)
            return r;
        if (r < 0 && on(c, data) < 0)
            return cli_usage_error(cmd, "unsupported option");
    }
    return -1;
}

static void format_ago(int64_t t, char *buf, size_t len)
{
    int64_t d = (int64_t)time(NULL) - t;
    if (d < 0)
        d = 0;
    if (d < 60)
        snprintf(buf, len, "%lld seconds", (long long)d);
    else if (d < 3600)
        snprintf(buf, len, "%lld minutes", (long long)(d / 60));
    else if (d < 86400)
        snprintf(buf, len, "%lld hours", (long long)(d / 3600));
    else
        snprintf(buf, len, "%lld days", (long long)(d / 86400));
}

static int ps_opt(int c, void *data)
{
    if (c != 'a')
        return -1;
    *(bool *)data = true;
    return 0;
}

int cmd_ps(int argc, char **argv);
int cmd_ps(int argc, char **argv)
{
    const struct cli_command *cmd = cli_command_find("ps");
    static const struct option opts[] = {
            CLI_COMMON_LONGOPTS, {"all", no_argument, NULL, 'a'}, {NULL, 0, NULL, 0}};
    bool all = false;
    int r = parse_simple(cmd, argc, argv, "ha", opts, ps_opt, &all);
    if (r >= 0)
        return r;
    _cleanup_free_ char *root = cli_root();
    struct runner_info *infos = NULL;
    size_t n = 0;
    struct dlc_error *err = NULL;
    if (runner_list(root, all, &infos, &n, &err) < 0)
        return cli_fail("ps", &err);
    printf("%-12s  %-28s  %-24s  %-16s  %-26s  %s\n", "CONTAINER ID", "IMAGE", "COMMAND", "CREATED",
           "STATUS", "NAMES");
    for (size_t i = 0; i < n; i++) {
        const struct runner_info *in = &infos[i];
        _cleanup_strbuf_ struct dlc_strbuf cmdline = DLC_STRBUF_INIT;
        for (size_t k = 0; in->command && in->command[k]; k++)
            dlc_strbuf_appendf(&cmdline, "%s%s", k ? " " : "", in->command[k]);
        char created[48], status[64], ago[32];
        format_ago(in->created, ago, sizeof(ago));
        snprintf(created, sizeof(created), "%s ago", ago);
        if (in->state == RUNNER_STATE_RUNNING) {
            format_ago(in->created, ago, sizeof(ago));
            snprintf(status, sizeof(status), "Up %s", ago);
        } else {
            format_ago(in->finished, ago, sizeof(ago));
            snprintf(status, sizeof(status), "Exited (%d) %s ago", in->exit_code, ago);
        }
        char quoted[32];
        snprintf(quoted, sizeof(quoted), "\"%.22s\"", dlc_strbuf_str(&cmdline));
        printf("%-12.12s  %-28.28s  %-24s  %-16s  %-26s  %s\n", in->id, in->image, quoted, created,
               status, in->name ? in->name : "");
    }
    runner_infos_free(infos, n);
    return 0;
}

static int logs_opt(int c, void *data)
{
    if (c != 'f')
        return -1;
    *(bool *)data = true;
    return 0;
}

int cmd_logs(int argc, char **argv);
int cmd_logs(int argc, char **argv)
{
    const struct cli_command *cmd = cli_command_find("logs");
    static const struct option opts[] = {
            CLI_COMMON_LONGOPTS, {"follow", no_argument, NULL, 'f'}, {NULL, 0, NULL, 0}};
    bool follow = false;
    int r = parse_simple(cmd, argc, argv, "hf", opts, logs_opt, &follow);
    if (r >= 0)
        return r;
    if (optind + 1 != argc)
        return cli_usage_error(cmd, "expected one container");
    _cleanup_free_ char *root = cli_root();
    struct dlc_error *err = NULL;
    fflush(stdout);
    if (runner_logs(root, argv[optind], follow, STDOUT_FILENO, &err) < 0)
        return cli_fail("logs", &err);
    return 0;
}

struct stop_args {
    const char *timeout;
};

static int stop_opt(int c, void *data)
{
    if (c != 't')
        return -1;
    ((struct stop_args *)data)->timeout = optarg;
    return 0;
}

int cmd_stop(int argc, char **argv);
int cmd_stop(int argc, char **argv)
{
    const struct cli_command *cmd = cli_command_find("stop");
    static const struct option opts[] = {CLI_COMMON_LONGOPTS,
                                         {"time", required_argument, NULL, 't'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {NULL, 0, NULL, 0}};
    struct stop_args a = {NULL};
    int r = parse_simple(cmd, argc, argv, "ht:", opts, stop_opt, &a);
    if (r >= 0)
        return r;
    int timeout = -1; /* the container's --stop-timeout, as docker stop */
    struct dlc_error *err = NULL;
    if (a.timeout && dlc_parse_int(a.timeout, "-t", 0, 1 << 20, &timeout, &err) < 0)
        return cli_fail("stop", &err);
    if (optind >= argc)
        return cli_usage_error(cmd, "expected a container");
    _cleanup_free_ char *root = cli_root();
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        if (runner_stop(root, argv[i], timeout, &err) < 0)
            rc = cli_fail("stop", &err);
        else
            printf("%s\n", argv[i]);
    }
    return rc;
}

static int rm_opt(int c, void *data)
{
    if (c != 'f')
        return -1;
    *(bool *)data = true;
    return 0;
}

int cmd_rm(int argc, char **argv);
int cmd_rm(int argc, char **argv)
{
    const struct cli_command *cmd = cli_command_find("rm");
    static const struct option opts[] = {
            CLI_COMMON_LONGOPTS, {"force", no_argument, NULL, 'f'}, {NULL, 0, NULL, 0}};
    bool force = false;
    int r = parse_simple(cmd, argc, argv, "hf", opts, rm_opt, &force);
    if (r >= 0)
        return r;
    if (optind >= argc)
        return cli_usage_error(cmd, "expected a container");
    _cleanup_free_ char *root = cli_root();
    struct dlc_error *err = NULL;
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        if (runner_remove(root, argv[i], force, &err) < 0)
            rc = cli_fail("rm", &err);
        else
            printf("%s\n", argv[i]);
    }
    return rc;
}

/* ---- train, export-bundle ---------------------------------------------------------------- */

int cmd_train(int argc, char **argv);
int cmd_train(int argc, char **argv)
{
    const struct cli_command *cmd = cli_command_find("train");
    struct run_opts o = {0};
    int r = parse_run(cmd, argc, argv, &o);
    if (r >= 0) {
        run_opts_release(&o);
        return r;
    }
    struct dlc_error *err = NULL;
    if (o.output == NULL) {
        dlc_error_set(&err, EINVAL,
                      "--output DIR is required (model.tar.gz and output.tar.gz "
                      "go there)");
        run_opts_release(&o);
        return run_fail("train", &err, RUNNER_EXIT_FAILED);
    }
    _cleanup_free_ char *root = cli_root();
    struct runner_result res;
    if (runner_train(root, o.spec, o.output, &res, &err) < 0) {
        r = run_fail("train", &err, res.exit_code);
    } else {
        report_end(o.spec, &res);
        r = res.exit_code;
        if (r != 0 && res.failure && *res.failure)
            fprintf(stderr, "dlc: train: the job failed (exit %d): %s%s", r, res.failure,
                    res.failure[strlen(res.failure) - 1] == '\n' ? "" : "\n");
        else if (r != 0)
            fprintf(stderr, "dlc: train: the job failed (exit %d) without a failure reason\n", r);
    }
    runner_result_release(&res);
    run_opts_release(&o);
    return r;
}

int cmd_export_bundle(int argc, char **argv);
int cmd_export_bundle(int argc, char **argv)
{
    const struct cli_command *cmd = cli_command_find("export-bundle");
    struct run_opts o = {0};
    int r = parse_run(cmd, argc, argv, &o);
    if (r >= 0) {
        run_opts_release(&o);
        return r;
    }
    if (o.spec->cmd == NULL) {
        run_opts_release(&o);
        return cli_usage_error(cmd, "expected IMAGE DIR");
    }
    /* IMAGE DIR [COMMAND...]: the first word after the image is the bundle directory */
    _cleanup_free_ char *dir = o.spec->cmd[0];
    memmove(o.spec->cmd, o.spec->cmd + 1, dlc_strv_len(o.spec->cmd) * sizeof(char *));
    if (o.spec->cmd[0] == NULL) {
        free(o.spec->cmd);
        o.spec->cmd = NULL;
    }
    _cleanup_free_ char *root = cli_root();
    struct dlc_error *err = NULL;
    r = runner_export_bundle(root, o.spec, dir, &err) < 0 ? cli_fail("export-bundle", &err) : 0;
    run_opts_release(&o);
    return r;
}
