/* cmd-serve.c: `dlc serve IMAGE --model-dir DIR|--model FILE.tar.gz [-p ...]`: runs the
 * image's `serve` (SageMaker's inference contract) in a container with its own network,
 * publishes its port on the host, prints the URL once GET /ping answers 200, then follows
 * the server's log until Ctrl-C or SIGTERM, which stop and remove the container. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "cli-gpu.h"
#include "cli.h"
#include "runner.h"

#define DEFAULT_PUBLISH         "127.0.0.1:8080:8080"
#define DEFAULT_STARTUP_TIMEOUT 60
#define PROBE_INTERVAL_MS       100
#define LOG_TAIL_LINES          20

enum {
    OPT_MODEL_DIR = 0x3000,
    OPT_MODEL,
    OPT_STARTUP_TIMEOUT,
    OPT_NAME,
    OPT_ENV_FILE,
    OPT_CPUS,
    OPT_STOP_TIMEOUT,
};

struct serve_opts {
    struct runner_spec *spec;
    struct cli_gpu_opts gpu;
    struct runner_ports *ports;
    const char *model_dir;
    const char *model_tarball;
    int startup_timeout;
};

/* What is running, for the cleanup. */
struct serving {
    const char *root;
    const char *image;
    char id[65];
    char *url_host; /* "127.0.0.1:8080" */
    char *unpacked; /* the model tarball's directory */
    int stop_timeout;
    pid_t follower; /* the process copying the log to stderr */
};

/* ---- options ----------------------------------------------------------------------------- */

static int set_model_dir(struct serve_opts *o, const char *dir, struct dlc_error **err)
{
    _cleanup_free_ char *p = realpath(dir, NULL);
    if (p == NULL)
        return dlc_error_set_errno(err, errno, "--model-dir %s", dir);
    if (!dlc_is_dir(p))
        return dlc_error_set(err, EINVAL, "--model-dir %s: not a directory", dir);
    runner_spec_add_bind(o->spec, p, "/opt/ml/model", true);
    return 0;
}

static int serve_opt(struct serve_opts *o, int c, const char *arg, struct dlc_error **err)
{
    struct runner_spec *spec = o->spec;
    uint64_t mem = 0;
    switch (c) {
    case 'p':
        return runner_ports_add(o->ports, arg, err);
    case OPT_MODEL_DIR:
        o->model_dir = arg;
        return 0;
    case OPT_MODEL:
        o->model_tarball = arg;
        return 0;
    case OPT_STARTUP_TIMEOUT:
        return dlc_parse_int(arg, "--startup-timeout", 1, 86400, &o->startup_timeout, err);
    case 'e':
        runner_spec_add_env(spec, arg);
        return 0;
    case OPT_ENV_FILE:
        return runner_spec_load_env_file(spec, arg, err);
    case OPT_NAME:
        free(spec->name);
        spec->name = xstrdup(arg);
        return 0;
    case 'm':
        if (dlc_parse_size(arg, "--memory", &mem, err) < 0)
            return -1;
        spec->memory = mem;
        return 0;
    case OPT_CPUS:
        return runner_parse_cpus(arg, &spec->cpu_milli, err);
    case OPT_STOP_TIMEOUT:
        return dlc_parse_int(arg, "--stop-timeout", 0, 86400, &spec->stop_timeout, err);
    }
    return dlc_error_set(err, EINVAL, "unknown option");
}

/* After the options: IMAGE [ARG...] (ARGs go to the image's `serve`), the model, ports. */
static int finish_opts(const struct cli_command *cmd, struct serve_opts *o, int argc, char **argv,
                       struct dlc_error **err)
{
    if (optind >= argc)
        return cli_usage_error(cmd, "no image given");
    if ((o->model_dir != NULL) == (o->model_tarball != NULL))
        return cli_usage_error(cmd, "give the model with --model-dir DIR or --model FILE.tar.gz");
    free(o->spec->image);
    o->spec->image = xstrdup(argv[optind++]);
    o->spec->cmd = dlc_strv_push(NULL, "serve");
    for (int i = optind; i < argc; i++)
        o->spec->cmd = dlc_strv_push(o->spec->cmd, argv[i]);
    if (runner_ports_count(o->ports) == 0 && runner_ports_add(o->ports, DEFAULT_PUBLISH, err) < 0)
        return -1;
    if ((o->model_dir && set_model_dir(o, o->model_dir, err) < 0) ||
        cli_gpu_apply(&o->gpu, o->spec, err) < 0 || runner_ports_attach(o->ports, o->spec, err) < 0)
        return -1;
    return 0;
}

/* 0 to go on; else the exit code (after printing). */
static int parse_serve(int argc, char **argv, struct serve_opts *o)
{
    const struct cli_command *cmd = cli_command_find("serve");
    static const struct option opts[] = {
            CLI_COMMON_LONGOPTS,
            {"publish", required_argument, NULL, 'p'},
            {"model-dir", required_argument, NULL, OPT_MODEL_DIR},
            {"model", required_argument, NULL, OPT_MODEL},
            {"startup-timeout", required_argument, NULL, OPT_STARTUP_TIMEOUT},
            {"env", required_argument, NULL, 'e'},
            {"env-file", required_argument, NULL, OPT_ENV_FILE},
            {"name", required_argument, NULL, OPT_NAME},
            {"memory", required_argument, NULL, 'm'},
            {"cpus", required_argument, NULL, OPT_CPUS},
            {"stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT},
            CLI_GPU_LONGOPTS,
            {NULL, 0, NULL, 0},
    };
    _cleanup_error_ struct dlc_error *err = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "hp:e:m:", opts, NULL)) != -1) {
        bool done = false;
        int r = cli_common_opt(cmd, c, &done);
        if (done)
            return r;
        if (r == 0 || cli_gpu_opt(&o->gpu, c, optarg))
            continue;
        if (serve_opt(o, c, optarg, &err) < 0)
            return cli_fail("serve", &err);
    }
    int r = finish_opts(cmd, o, argc, argv, &err);
    if (r < 0)
        return cli_fail("serve", &err);
    return r;
}

/* ---- readiness ------------------------------------------------------------------------- */

static void print_log_tail(const struct serving *s)
{
    _cleanup_error_ struct dlc_error *err = NULL;
    _cleanup_free_ char *tail = NULL;
    if (runner_log_tail(s->root, s->id, LOG_TAIL_LINES, &tail, &err) < 0) {
        fprintf(stderr, "dlc: serve: its log: %s\n", err->msg);
        return;
    }
    if (tail[0] == '\0') {
        fprintf(stderr, "dlc: serve: the container wrote nothing\n");
        return;
    }
    fprintf(stderr, "dlc: serve: the container's last log lines:\n");
    for (char *line = tail, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        fprintf(stderr, "    %s\n", line);
    }
}

/* The container's exit code when it is no longer running, else -1. */
static int exited_code(const struct serving *s)
{
    struct runner_info in;
    _cleanup_error_ struct dlc_error *err = NULL;
    if (runner_find(s->root, s->id, &in, &err) < 0)
        return 255; /* gone: removed behind our back */
    int code = in.state == RUNNER_STATE_EXITED ? (in.exit_code >= 0 ? in.exit_code : 255) : -1;
    runner_info_release(&in);
    return code;
}

/* Waits for a stop signal up to ms; the signal or 0. */
static int take_signal(const sigset_t *set, int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    int sig = sigtimedwait(set, NULL, &ts);
    return sig > 0 ? sig : 0;
}

/* 0 once /ping answers 200; else prints why not and returns 1. */
static int wait_ready(struct serving *s, const sigset_t *sigs, int timeout_s)
{
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int status = 0;
        _cleanup_error_ struct dlc_error *err = NULL;
        if (runner_http_status(s->url_host, "/ping", 1000, &status, &err) == 0 && status == 200)
            return 0;
        int code = exited_code(s);
        if (code >= 0) {
            fprintf(stderr,
                    "dlc: serve: %s: the container exited with code %d before /ping "
                    "answered 200\n",
                    s->image, code);
            print_log_tail(s);
            return 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec >= timeout_s) {
            fprintf(stderr, "dlc: serve: %s: /ping did not answer 200 within %d s (last: %s)\n",
                    s->image, timeout_s,
                    err      ? err->msg
                    : status ? "another status"
                             : "no answer");
            print_log_tail(s);
            return 1;
        }
        int sig = take_signal(sigs, PROBE_INTERVAL_MS);
        if (sig) {
            fprintf(stderr, "dlc: serve: %s before the server was ready\n", strsignal(sig));
            return 1;
        }
    }
}

/* ---- serving ------------------------------------------------------------------------------ */

/* A child copies the container's log to our stderr until the container ends: a process,
 * so that stopping never waits on a blocked read. It keeps our blocked stop signals, so
 * Ctrl-C (sent to the whole process group) leaves it to print the server's last lines. */
static pid_t follow_log(const struct serving *s)
{
    pid_t pid = fork();
    if (pid == 0) {
        struct dlc_error *err = NULL;
        _exit(runner_logs(s->root, s->id, true, STDERR_FILENO, &err) < 0 ? 1 : 0);
    }
    return pid > 0 ? pid : 0;
}

/* Until a stop signal (0) or the container's own end (1, reported). */
static int serve_until_stopped(struct serving *s, const sigset_t *sigs)
{
    s->follower = follow_log(s);
    for (;;) {
        if (take_signal(sigs, 500))
            return 0;
        int code = exited_code(s);
        if (code >= 0) {
            fprintf(stderr, "dlc: serve: %s: the model server exited with code %d\n", s->image,
                    code);
            return 1;
        }
    }
}

static void cleanup(struct serving *s)
{
    _cleanup_error_ struct dlc_error *err = NULL;
    if (s->id[0] && exited_code(s) < 0 && runner_stop(s->root, s->id, s->stop_timeout, &err) < 0)
        fprintf(stderr, "dlc: serve: stop %.12s: %s\n", s->id, err->msg);
    dlc_error_free(&err);
    if (s->follower > 0) {
        /* the log ends with the container; give the follower a moment to print it all */
        for (int i = 0; i < 20 && waitpid(s->follower, NULL, WNOHANG) == 0; i++)
            nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
        kill(s->follower, SIGKILL);
        waitpid(s->follower, NULL, 0);
    }
    if (s->id[0] && runner_remove(s->root, s->id, true, &err) < 0)
        fprintf(stderr, "dlc: serve: remove %.12s: %s\n", s->id, err->msg);
    dlc_error_free(&err);
    if (s->unpacked && dlc_rm_rf(s->unpacked, &err) < 0)
        fprintf(stderr, "dlc: serve: remove %s: %s\n", s->unpacked, err->msg);
}

/* Starts the container in the background (its monitor relays the published ports). */
static int start(struct serving *s, struct serve_opts *o, struct dlc_error **err)
{
    if (o->model_tarball) {
        if (runner_model_unpack(o->model_tarball, &s->unpacked, err) < 0)
            return -1;
        runner_spec_add_bind(o->spec, s->unpacked, "/opt/ml/model", true);
    }
    o->spec->detach = true;
    s->stop_timeout = o->spec->stop_timeout;
    s->url_host = xstrdup(runner_ports_host(o->ports, 0));
    struct runner_result res;
    int r = runner_run(s->root, o->spec, &res, err);
    if (r == 0)
        snprintf(s->id, sizeof(s->id), "%s", res.id);
    runner_result_release(&res);
    return r;
}

int cmd_serve(int argc, char **argv);
int cmd_serve(int argc, char **argv)
{
    struct serve_opts o = {.spec = runner_spec_new(""),
                           .ports = runner_ports_new(),
                           .startup_timeout = DEFAULT_STARTUP_TIMEOUT};
    _cleanup_free_ char *root = cli_root();
    struct serving s = {.root = root};
    int r = parse_serve(argc, argv, &o);
    if (r == 0) {
        sigset_t sigs;
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGINT);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGHUP);
        sigprocmask(SIG_BLOCK, &sigs, NULL);
        s.image = o.spec->image;
        _cleanup_error_ struct dlc_error *err = NULL;
        if (start(&s, &o, &err) < 0) {
            r = cli_fail("serve", &err);
        } else if ((r = wait_ready(&s, &sigs, o.startup_timeout)) == 0) {
            printf("http://%s\n", s.url_host);
            fflush(stdout);
            fprintf(stderr,
                    "dlc: serving %s in container %.12s at http://%s (POST /invocations); "
                    "Ctrl-C stops it\n",
                    s.image, s.id, s.url_host);
            r = serve_until_stopped(&s, &sigs);
        }
        cleanup(&s);
    }
    runner_ports_free(o.ports);
    cli_gpu_opts_release(&o.gpu);
    runner_spec_free(o.spec);
    free(s.url_host);
    free(s.unpacked);
    return r;
}
