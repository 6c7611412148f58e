/* serve-cmd.c: the `tensor serve` command: what SageMaker runs as `docker run IMAGE serve`.
 * Arguments are optional (SageMaker passes none); the environment configures the rest. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <string.h>

#include "serve.h"

static const char usage[] =
        "Usage: tensor serve [--model-dir DIR] [--port N] [--bind ADDR] [--device cpu|gpu|auto]\n"
        "                    [--threads N] [--no-access-log]\n"
        "\n"
        "Serves the model in DIR (default $SAGEMAKER_BASE_DIR/model or /opt/ml/model:\n"
        "model.json + model.safetensors, or a model.tar.gz holding them) over HTTP:\n"
        "  GET  /ping                  200 once the model is loaded, 503 before\n"
        "  POST /invocations           application/json, text/csv or application/x-npy in;\n"
        "                              the Accept type out (default application/json)\n"
        "  GET  /execution-parameters  batch transform settings\n"
        "\n"
        "Environment: SAGEMAKER_BIND_TO_PORT (8080), SAGEMAKER_MAX_PAYLOAD_IN_MB (6),\n"
        "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, SAGEMAKER_MODEL_SERVER_WORKERS (HTTP threads,\n"
        "default: the CPUs), DLC_DEVICE (auto, cpu, gpu).\n";

enum { OPT_BIND = 0x100, OPT_DEVICE, OPT_THREADS, OPT_NO_ACCESS_LOG };

static int fail(const char *what, struct dlc_error **err)
{
    fprintf(stderr, "tensor: serve: %s%s%s\n", what ? what : "", what ? ": " : "",
            *err ? (*err)->msg : "unknown error");
    dlc_error_free(err);
    return 1;
}

/* 0, 1 when --help was printed, 2 on a usage error. */
static int parse_args(int argc, char **argv, struct tensor_serve_options *o, struct dlc_error **err)
{
    static const struct option longopts[] = {
            {"model-dir", required_argument, NULL, 'm'},
            {"port", required_argument, NULL, 'p'},
            {"bind", required_argument, NULL, OPT_BIND},
            {"device", required_argument, NULL, OPT_DEVICE},
            {"threads", required_argument, NULL, OPT_THREADS},
            {"no-access-log", no_argument, NULL, OPT_NO_ACCESS_LOG},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
    };
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+m:p:h", longopts, NULL)) != -1) {
        int r = 0;
        switch (c) {
        case 'm':
            o->model_dir = optarg;
            break;
        case 'p':
            r = dlc_parse_int(optarg, "--port", 0, 65535, &o->port, err);
            break;
        case OPT_BIND:
            o->bind_addr = optarg;
            break;
        case OPT_DEVICE:
            o->device = optarg;
            break;
        case OPT_THREADS:
            r = dlc_parse_int(optarg, "--threads", 1, 1024, &o->threads, err);
            break;
        case OPT_NO_ACCESS_LOG:
            o->access_log = false;
            break;
        case 'h':
            fputs(usage, stdout);
            return 1;
        default:
            fputs(usage, stderr);
            return 2;
        }
        if (r < 0)
            return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "tensor: serve: unexpected argument '%s'\n%s", argv[optind], usage);
        return 2;
    }
    return 0;
}

/* A handler, not a blocked signal and sigwait: OpenBLAS starts its threads in a library
 * constructor, before main, with every signal unblocked, and a process-wide SIGTERM may be
 * delivered to any of them. Whichever thread runs the handler, the main thread hears it
 * through the pipe. */
static int stop_pipe[2] = {-1, -1};

static void on_stop_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t w = write(stop_pipe[1], &b, 1);
    (void)w; /* a full pipe already holds a stop request */
    errno = saved;
}

static int catch_stop_signals(struct dlc_error **err)
{
    if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return dlc_error_set_errno(err, errno, "pipe");
    struct sigaction sa = {.sa_handler = on_stop_signal, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static int wait_for_stop_signal(void)
{
    struct pollfd p = {.fd = stop_pipe[0], .events = POLLIN};
    unsigned char b = 0;
    while (poll(&p, 1, -1) < 0 || read(stop_pipe[0], &b, 1) != 1) {
    }
    return b;
}

static void log_ready(struct tensor_server *s)
{
    const struct tensor_model *m = tensor_server_model(s);
    dlc_info("ready: model '%s' (%lld inputs -> %lld outputs, %zu parameters) on the %s backend",
             m->name ? m->name : "model", (long long)m->input_dim,
             (long long)tensor_model_outputs(m), tensor_model_param_count(m),
             tensor_server_backend(s));
}

int tensor_serve_main(int argc, char **argv)
{
    _cleanup_error_ struct dlc_error *err = NULL;
    struct tensor_serve_options o;
    if (tensor_serve_options_init(&o, &err) < 0)
        return fail(NULL, &err);
    int pr = parse_args(argc, argv, &o, &err);
    if (pr != 0)
        return pr < 0 ? fail(NULL, &err) : pr - 1;

    if (catch_stop_signals(&err) < 0)
        return fail(NULL, &err);
    struct tensor_server *s = NULL;
    if (tensor_server_start(&o, &s, &err) < 0)
        return fail(NULL, &err);
    dlc_info("listening on %s:%d (%d HTTP threads); loading the model", o.bind_addr,
             tensor_server_port(s), o.threads);
    if (tensor_server_load(s, &err) < 0) {
        tensor_server_stop(s);
        return fail(NULL, &err);
    }
    log_ready(s);
    int sig = wait_for_stop_signal();
    uint64_t calls = 0, rows = 0, requests = 0;
    tensor_server_stats(s, &calls, &rows, &requests);
    dlc_info("%s: stopping; %" PRIu64 " requests (%" PRIu64 " rows) were answered in %" PRIu64
             " predict calls",
             strsignal(sig), requests, rows, calls);
    tensor_server_stop(s);
    return 0;
}
