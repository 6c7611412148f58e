/* main.c: `dlc` entry point: global options and the subcommand table. */
#include <errno.h>
#include <string.h>

#include "cli.h"
#include "oci.h"

#ifndef DLC_VERSION
#    define DLC_VERSION "0.0.0"
#endif

struct cli_global cli_global;

/* Each subcommand lives in its own cli/cmd-*.c file. They are declared weak so that a
 * build without a component still links and says so clearly instead of failing. */
#define CLI_DECLARE(fn) extern int fn(int argc, char **argv) __attribute__((weak))
CLI_DECLARE(cmd_images);
CLI_DECLARE(cmd_inspect);
CLI_DECLARE(cmd_tag);
CLI_DECLARE(cmd_rmi);
CLI_DECLARE(cmd_prune);
CLI_DECLARE(cmd_build);
CLI_DECLARE(cmd_history);
CLI_DECLARE(cmd_run);
CLI_DECLARE(cmd_train);
CLI_DECLARE(cmd_serve);
CLI_DECLARE(cmd_ps);
CLI_DECLARE(cmd_logs);
CLI_DECLARE(cmd_stop);
CLI_DECLARE(cmd_rm);
CLI_DECLARE(cmd_export_bundle);
CLI_DECLARE(cmd_registry);
CLI_DECLARE(cmd_push);
CLI_DECLARE(cmd_pull);
CLI_DECLARE(cmd_login);
CLI_DECLARE(cmd_logout);
CLI_DECLARE(cmd_info);
CLI_DECLARE(cmd_cdi);
static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

/* The options dlc run and dlc train share (after their own first lines). */
#define RUN_COMMON_HELP                                                                      \
    "      --rm                 remove the container when it exits\n"                        \
    "      --name NAME          name the container (unique)\n"                               \
    "  -i                       accepted: stdin always passes through\n"                     \
    "  -t                       refused: no terminals (stdin/stdout/stderr pass through)\n"  \
    "  -e, --env K=V            environment variable (K alone: the caller's value)\n"        \
    "      --env-file FILE      K=V lines, '#' comments (K alone: the caller's value)\n"     \
    "  -u, --user USER[:GROUP]  name or id, resolved in the image's /etc/passwd and\n"       \
    "                           /etc/group (default: the image's User)\n"                    \
    "  -w, --workdir DIR        working directory, absolute (created if missing)\n"          \
    "      --entrypoint CMD     replace the image's Entrypoint (and drop its Cmd)\n"         \
    "      --hostname NAME      default: the short id (algo-1 for dlc train)\n"              \
    "Isolation:\n"                                                                           \
    "      --network none|host  loopback only (default) or the host's network (--net)\n"     \
    "  -p, --publish [ADDR:]HOSTPORT:CONTAINERPORT\n"                                        \
    "                           relay a host port into the container's network (ADDR\n"      \
    "                           127.0.0.1 unless given, [::1] for IPv6; HOSTPORT 0, or\n"    \
    "                           CONTAINERPORT alone, picks a free one; repeatable)\n"        \
    "      --read-only          read-only root filesystem with a tmpfs /tmp\n"               \
    "      --userns             a user namespace; always when not run as root (the\n"        \
    "                           caller is root inside). As root: root's id mapping\n"        \
    "                           copied into it (podman's keep-id): ids keep their host\n"    \
    "                           meaning, capabilities count inside only (no mknod,\n"        \
    "                           device nodes are bound from the host)\n"                     \
    "      --cap-add CAP        add to docker's default capabilities (ALL: every one)\n"     \
    "      --cap-drop CAP       drop from them (ALL: every one)\n"                           \
    "      --security-opt seccomp=unconfined  no seccomp filter\n"                           \
    "      --security-opt no-new-privileges   accepted (always on)\n"                        \
    "Limits:\n"                                                                              \
    "  -m, --memory SIZE        memory limit (64m, 1g); an OOM kill is reported\n"           \
    "      --cpus N             CPU limit (1.5)\n"                                           \
    "      --pids-limit N       process limit\n"                                             \
    "      --ulimit NAME=SOFT[:HARD]  rlimit, never above the caller's hard limit\n"         \
    "      --stop-timeout S     seconds from the stop signal to SIGKILL (10); dlc stop\n"    \
    "                           without -t waits this long too\n"                            \
    "      --timeout S          stop the container after S seconds\n"                        \
    "Mounts and the SageMaker contract:\n"                                                   \
    "  -v, --volume SRC:DST[:ro|:rw]  bind mount (DST resolved inside the container)\n"      \
    "      --channel NAME=DIR   /opt/ml/input/data/NAME, read-only (repeatable)\n"           \
    "      --model-dir DIR      /opt/ml/model, read-write\n"                                 \
    "      --output-dir DIR     /opt/ml/output, read-write\n"                                \
    "      --code DIR           /opt/ml/code, read-only\n"                                   \
    "      --checkpoint-dir DIR /opt/ml/checkpoints, read-write\n"                           \
    "      --hp K=V             hyperparameter (JSON keeps its type, else a string)\n"       \
    "      --hyperparameters FILE  hyperparameters as a JSON object\n"                       \
    "GPUs and devices (dlc info lists what this host has):\n"                                \
    "      --gpus all|N[,M]|none  pass GPUs (index, GPU-UUID or PCI bus id) with their\n"    \
    "                           driver libraries and the host's OpenCL ICDs\n"               \
    "      --device PATH[:CPATH]  pass a device node (or every node under a directory)\n"    \
    "      --device VENDOR/CLASS=NAME  a CDI device (specs in /etc/cdi, /var/run/cdi)\n"     \
    "      --driver-root DIR    where to find GPU drivers (default $DLC_DRIVER_ROOT or /)\n" \
    "Other:\n"                                                                               \
    "      --root DIR           the store (default $DLC_ROOT)\n"                             \
    "  -h, --help               this text"

/* The help texts live beside the table so `dlc --help` is one place to read. */
static const struct cli_command commands[] = {
        {"images", cmd_images, "dlc images [--format table|json] [--digests]",
         "List images in the local store",
         "Options:\n"
         "  --format table|json  table (default): REPOSITORY TAG DIGEST SIZE CREATED, with SIZE\n"
         "                       the config and compressed layers; json: an array of objects\n"
         "                       with the full digest, size in bytes and creation time\n"
         "  --digests            show full digests in the table\n"
         "  --root DIR           store root\n"},
        {"inspect", cmd_inspect, "dlc inspect REF", "Show an image's manifest and config as JSON",
         "Prints {\"Digest\", \"Manifest\", \"Config\"} as stored. REF is name[:tag],\n"
         "name@DIGEST, a digest or a unique prefix (>= 4 hex digits) of one. An index\n"
         "resolves to its linux manifest for this host's architecture.\n\n"
         "Options:\n"
         "  --root DIR  store root\n"},
        {"tag", cmd_tag, "dlc tag SOURCE TARGET", "Give an image another name:tag",
         "TARGET is [registry/]name[:tag] (tag defaults to latest); an existing TARGET is\n"
         "moved.\n\n"
         "Options:\n"
         "  --root DIR  store root\n"},
        {"rmi", cmd_rmi, "dlc rmi REF...", "Remove image tags from the store",
         "A name[:tag] removes that tag; a digest or ID prefix removes every tag of that\n"
         "image. Blobs stay until 'dlc prune'. Exits 1 if any REF failed.\n\n"
         "Options:\n"
         "  --root DIR  store root\n"},
        {"prune", cmd_prune, "dlc prune [--wait SECONDS]",
         "Remove blobs no tag references; print what was freed",
         "Removes blobs no tag reaches (through indexes, manifests, configs, layers and\n"
         "subjects) and temp files of interrupted writes. Blobs that a 'dlc build' or\n"
         "'dlc pull' into the same store has written but not tagged yet are never removed:\n"
         "prune waits for such a writer to tag, and fails (exit 1, nothing removed) if one\n"
         "is still writing after the wait.\n\n"
         "Options:\n"
         "  --wait SECONDS  how long to wait for a build or pull (default 10; 0: not at all)\n"
         "  --root DIR      store root\n"},
        {"build", cmd_build,
         "dlc build [-f DEFINITION.json] [--variant cpu|gpu|all] [--tag EXTRA] "
         "[--compress gzip|zstd] [--no-cache] [--build-dir DIR] [--insecure]",
         "Build tagged OCI images from an image definition",
         "Options:\n"
         "  -f, --file FILE        the image definition (default images/tensor-runtime.json)\n"
         "      --variant NAME     build one variant (cpu, gpu, ...) or all (default)\n"
         "  -t, --tag TEMPLATE     another tag for every image built, e.g. 'rc1-{device}'\n"
         "                         or 'myrepo:{version}' (repeatable)\n"
         "      --compress ALG     gzip (default) or zstd\n"
         "      --no-cache         write every layer again instead of using the build cache\n"
         "      --build-dir DIR    what {build} means in the definition (default $DLC_BUILD,\n"
         "                         else ./build)\n"
         "      --insecure         plain HTTP / unverified TLS when pulling a \"from\" image\n"
         "                         the store lacks (loopback registries need no flag)\n"
         "      --root DIR         the store (default $DLC_ROOT)\n"},
        {"history", cmd_history, "dlc history [--format table|json] [--no-trunc] REF",
         "List an image's layers",
         "Options:\n"
         "      --format table|json  output format (default table)\n"
         "      --no-trunc           full layer digests\n"
         "      --root DIR           the store (default $DLC_ROOT)\n"},
        {"run", cmd_run, "dlc run [OPTIONS] IMAGE [COMMAND [ARG...]]",
         "Run a command in a new container",
         "Every run gets SageMaker's /opt/ml/input/config files and SM_* environment.\n"
         "Exit status: the container's; 125 when dlc failed, 126/127 when the command\n"
         "cannot be run or is not found, 128+N when it was killed by signal N.\n"
         "\n"
         "Process:\n"
         "  -d, --detach             run in the background; output goes to the log (dlc "
         "logs)\n" RUN_COMMON_HELP},
        {"train", cmd_train,
         "dlc train [OPTIONS] IMAGE --channel NAME=DIR --output DIR [--hp K=V...]",
         "Run a SageMaker-style training job and pack model.tar.gz",
         "Runs IMAGE's `train` (or COMMAND; hostname algo-1), then packs /opt/ml/model\n"
         "into DIR/model.tar.gz and /opt/ml/output into DIR/output.tar.gz and shows the\n"
         "failure reason the job left in /opt/ml/output/failure. Options may follow\n"
         "IMAGE. Exit status as for dlc run.\n"
         "\n"
         "Training:\n"
         "      --output DIR         where model.tar.gz and output.tar.gz go (required)\n"
         "  -d, --detach             refused: a training job runs in the foreground\n"
         "Process:\n" RUN_COMMON_HELP},
        {"serve", cmd_serve,
         "dlc serve [OPTIONS] IMAGE --model-dir DIR|--model FILE.tar.gz [ARG...]",
         "Serve a model over SageMaker's /ping and /invocations",
         "Runs IMAGE's `serve` in a container with its own network, the model at\n"
         "/opt/ml/model (read-only), publishes its port, prints the URL once GET /ping\n"
         "answers 200 and follows the server's log; Ctrl-C or SIGTERM stops and removes it.\n\n"
         "Options:\n"
         "  --model-dir DIR         the model: model.json + model.safetensors\n"
         "  --model FILE.tar.gz     the model as `dlc train` packs it (unpacked on the host)\n"
         "  -p, --publish [ADDR:]HOSTPORT:CONTAINERPORT\n"
         "                          publish a port (default 127.0.0.1:8080:8080; ADDR\n"
         "                          127.0.0.1 unless given; HOSTPORT 0 picks a free one)\n"
         "  --startup-timeout S     give up when /ping is not 200 after S seconds (60),\n"
         "                          showing the container's last log lines\n"
         "  -e, --env K=V           environment (SAGEMAKER_MAX_PAYLOAD_IN_MB, ...)\n"
         "  --env-file FILE         K=V lines\n"
         "  --name NAME             name the container\n"
         "  -m, --memory SIZE       memory limit\n"
         "  --cpus N                CPU limit\n"
         "  --stop-timeout S        seconds between SIGTERM and SIGKILL when stopping (10)\n"
         "  --gpus, --device, --driver-root   GPUs, as for dlc run\n"
         "  --root DIR              store root\n"},
        {"ps", cmd_ps, "dlc ps [-a]", "List containers",
         "Options:\n"
         "  -a, --all   also the containers that exited\n"
         "  --root DIR  store root\n"},
        {"logs", cmd_logs, "dlc logs [-f] CONTAINER", "Print a container's output",
         "The output of a container started with -d (CONTAINER: id, id prefix or name).\n\n"
         "Options:\n"
         "  -f, --follow  keep printing until the container ends\n"
         "  --root DIR    store root\n"},
        {"stop", cmd_stop, "dlc stop [-t SECONDS] CONTAINER...", "Stop running containers",
         "Sends the image's stop signal (SIGTERM), then SIGKILL after the timeout.\n\n"
         "Options:\n"
         "  -t, --time SECONDS  seconds to wait before SIGKILL (default: the container's\n"
         "                      --stop-timeout, 10 unless set)\n"
         "  --root DIR          store root\n"},
        {"rm", cmd_rm, "dlc rm [-f] CONTAINER...", "Remove stopped containers",
         "Options:\n"
         "  -f, --force  kill a running container first\n"
         "  --root DIR   store root\n"},
        {"export-bundle", cmd_export_bundle,
         "dlc export-bundle [OPTIONS] IMAGE DIR [COMMAND [ARG...]]",
         "Write an OCI runtime bundle (config.json + rootfs) for runc/crun",
         "DIR/rootfs gets the image's layers (whiteouts applied, diff_ids verified) and\n"
         "DIR/config.json the process, namespaces, capabilities, masked paths and seccomp\n"
         "profile dlc run would use: `runc run -b DIR ID` runs it unchanged. Takes the\n"
         "process options of dlc run (-e, --env-file, -u, -w, --entrypoint, --hostname,\n"
         "--network, --read-only, --cap-add, --cap-drop, --security-opt).\n"},
        {"registry", cmd_registry, "dlc registry serve|gc [OPTIONS]",
         "Run a local OCI distribution registry, or garbage-collect one", NULL},
        {"push", cmd_push, "dlc push [--insecure] LOCAL_REF [REMOTE_REF]",
         "Push an image to a registry", NULL},
        {"pull", cmd_pull, "dlc pull [--insecure] REMOTE_REF [LOCAL_REF]",
         "Pull an image from a registry into the store", NULL},
        {"login", cmd_login, "dlc login [-u USER] [--password-stdin] REGISTRY",
         "Store credentials for a registry", NULL},
        {"logout", cmd_logout, "dlc logout REGISTRY", "Remove stored credentials", NULL},
        {"info", cmd_info, "dlc info [--format table|json] [--driver-root DIR]",
         "Show GPUs, OpenCL ICDs and CDI devices on this host",
         "Options:\n"
         "  --format table|json  table (default) or a JSON object\n"
         "  --driver-root DIR    look for drivers under DIR (default $DLC_DRIVER_ROOT or /)\n"},
        {"cdi", cmd_cdi,
         "dlc cdi generate [--output FILE] [--kind VENDOR/CLASS] [--driver-root DIR] | "
         "dlc cdi list [--format table|json]",
         "Write a CDI spec for this host's GPUs and OpenCL ICDs, or list CDI devices",
         "generate: a device per GPU (index and UUID), per usable OpenCL ICD (opencl-NAME)\n"
         "and 'all', of kind dlc.local/gpu unless --kind says otherwise; to stdout unless\n"
         "--output FILE (files the spec mounts are written into FILE's name with .d).\n"
         "list: the devices of the specs in /etc/cdi and /var/run/cdi ($DLC_CDI_SPEC_DIRS).\n"},
        {"version", cmd_version, "dlc version", "Print the version", NULL},
        {"help", cmd_help, "dlc help [COMMAND]", "Show help for dlc or a command", NULL},
};

const struct cli_command *cli_command_find(const char *name)
{
    for (size_t i = 0; i < DLC_ARRAY_SIZE(commands); i++)
        if (strcmp(commands[i].name, name) == 0 && commands[i].fn != NULL)
            return &commands[i];
    return NULL;
}

static void print_usage(FILE *f)
{
    fprintf(f, "Usage: dlc [--root DIR] [--log-level LEVEL] COMMAND [ARGS...]\n\n"
               "Build, run and ship deep-learning container images on one machine.\n\n"
               "Commands:\n");
    for (size_t i = 0; i < DLC_ARRAY_SIZE(commands); i++)
        if (commands[i].fn != NULL)
            fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nGlobal options:\n"
               "  --root DIR         store root (default: $DLC_ROOT, /var/lib/dlc as root,\n"
               "                     else $XDG_DATA_HOME/dlc)\n"
               "  --log-level LEVEL  error, warn, info (default) or debug\n"
               "  --version          print the version\n\n"
               "Run 'dlc COMMAND --help' for a command's options.\n");
}

/* A command's option list, ending in exactly one newline whatever its text ends with. */
static void print_help_text(const struct cli_command *c)
{
    if (c->help == NULL)
        return;
    size_t n = strlen(c->help);
    printf("\n%s%s", c->help, n > 0 && c->help[n - 1] == '\n' ? "" : "\n");
}

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("dlc %s\n", DLC_VERSION);
    return 0;
}

static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stdout);
        return 0;
    }
    const struct cli_command *c = cli_command_find(argv[1]);
    if (c == NULL) {
        fprintf(stderr, "dlc help: unknown command '%s'\n", argv[1]);
        return CLI_EXIT_USAGE;
    }
    printf("Usage: %s\n\n%s\n", c->usage, c->summary);
    print_help_text(c);
    return 0;
}

int cli_common_opt(const struct cli_command *cmd, int c, bool *done)
{
    switch (c) {
    case CLI_OPT_ROOT:
        cli_global.root = optarg;
        return 0;
    case 'h':
        printf("Usage: %s\n\n%s\n", cmd->usage, cmd->summary);
        print_help_text(cmd);
        *done = true;
        return 0;
    case '?':
    case ':':
        fprintf(stderr, "Usage: %s\n", cmd->usage);
        *done = true;
        return CLI_EXIT_USAGE;
    default:
        return -1;
    }
}

bool cli_common_opt_done(const struct cli_command *cmd, int c, int *ret)
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

void cli_set_progname(const char *name, char **argv)
{
    static char prog[64];
    snprintf(prog, sizeof(prog), "dlc %s", name);
    argv[0] = prog;
}

int cli_fail(const char *what, struct dlc_error **err)
{
    fprintf(stderr, "dlc: %s%s%s\n", what ? what : "", what ? ": " : "",
            (err && *err) ? (*err)->msg : "unknown error");
    dlc_error_free(err);
    return CLI_EXIT_FAIL;
}

int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    fprintf(stderr, "dlc %s: %s\nUsage: %s\n", cmd->name, msg, cmd->usage);
    return CLI_EXIT_USAGE;
}

char *cli_root(void)
{
    return cli_global.root ? xstrdup(cli_global.root) : oci_default_root();
}

void cli_getopt_reset(void)
{
    optind = 0; /* glibc: 0 re-initialises, also the "+" mode scan */
    opterr = 1;
}

int main(int argc, char **argv)
{
    dlc_log_set_progname("dlc");
    cli_global.tty = isatty(STDERR_FILENO);

    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_usage(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            return cmd_version(0, NULL);
        } else if ((v = dlc_startswith(a, "--root=")) != NULL) {
            cli_global.root = v;
        } else if (strcmp(a, "--root") == 0 && i + 1 < argc) {
            cli_global.root = argv[++i];
        } else if ((v = dlc_startswith(a, "--log-level=")) != NULL ||
                   (strcmp(a, "--log-level") == 0 && i + 1 < argc && (v = argv[++i]))) {
            int l = dlc_log_level_parse(v);
            if (l < 0) {
                fprintf(stderr,
                        "dlc: --log-level: '%s' is not one of error, warn, info, "
                        "debug\n",
                        v);
                return CLI_EXIT_USAGE;
            }
            dlc_log_set_level((enum dlc_log_level)l);
        } else {
            fprintf(stderr,
                    "dlc: unknown option '%s'\n"
                    "Usage: dlc [--root DIR] [--log-level LEVEL] COMMAND [ARGS...]\n",
                    a);
            return CLI_EXIT_USAGE;
        }
    }
    if (i >= argc) {
        print_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const struct cli_command *c = cli_command_find(argv[i]);
    if (c == NULL) {
        bool known = false;
        for (size_t k = 0; k < DLC_ARRAY_SIZE(commands); k++)
            known |= strcmp(commands[k].name, argv[i]) == 0;
        if (known) {
            fprintf(stderr, "dlc: %s: this build of dlc does not include it\n", argv[i]);
            return CLI_EXIT_FAIL;
        }
        fprintf(stderr,
                "dlc: unknown command '%s'\n"
                "Usage: dlc [--root DIR] [--log-level LEVEL] COMMAND [ARGS...]\n"
                "Run 'dlc --help' for the list of commands.\n",
                argv[i]);
        return CLI_EXIT_USAGE;
    }
    cli_getopt_reset();
    return c->fn(argc - i, argv + i);
}
