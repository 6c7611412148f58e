/* main.c: `tensor`, the entrypoint of dlc's images. SageMaker runs `IMAGE train` and
 * `IMAGE serve`; anything else on the command line is executed as a program, as the AWS
 * DLC entrypoint script does, so `dlc run IMAGE /bin/sh -c ...` works. */
#include <errno.h>
#include <string.h>

#include "tensor-cmd.h"

/* `tensor serve` lives in libruntime's serve*.c; a build without it still links. */
extern int tensor_serve_main(int argc, char **argv) __attribute__((weak));

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
        {"train", cmd_train, "Train on /opt/ml/input/data (SageMaker's training contract)"},
        {"serve", NULL, "Serve /opt/ml/model over HTTP (SageMaker's inference contract)"},
        {"predict", cmd_predict, "Run a saved model on an .npy or .csv file"},
        {"evaluate", cmd_evaluate, "Loss and metrics of a saved model on a channel directory"},
        {"devices", cmd_devices, "List backends, devices, the BLAS library and threads"},
        {"version", cmd_version, "Print the runtime version"},
        {"help", cmd_help, "Show this help"},
};

static int (*command_fn(const struct command *c))(int, char **)
{
    return strcmp(c->name, "serve") == 0 ? tensor_serve_main : c->fn;
}

int cmd_fail(const char *cmd, struct dlc_error **err)
{
    fprintf(stderr, "tensor: %s: %s\n", cmd, *err ? (*err)->msg : "unknown error");
    dlc_error_free(err);
    return 1;
}

int cmd_usage_error(const char *cmd, const char *msg)
{
    fprintf(stderr, "tensor: %s: %s\nTry 'tensor %s --help'.\n", cmd, msg, cmd);
    return 2;
}

int cmd_parse_count(const char *cmd, const char *opt, const char *arg, int64_t max, int64_t *ret)
{
    _cleanup_error_ struct dlc_error *err = NULL;
    uint64_t v = 0;
    if (dlc_parse_u64(arg, opt, &v, &err) < 0 || v == 0 || v > (uint64_t)max) {
        _cleanup_free_ char *msg =
                xasprintf("%s: '%s' is not a count in [1, %lld]", opt, arg, (long long)max);
        return cmd_usage_error(cmd, msg);
    }
    *ret = (int64_t)v;
    return 0;
}

static int cmd_version(int argc, char **argv)
{
    (void)argc, (void)argv;
    printf("%s\n", TENSOR_VERSION);
    return 0;
}

static int cmd_help(int argc, char **argv)
{
    (void)argc, (void)argv;
    printf("Usage: tensor COMMAND [ARG...]\n"
           "       tensor PROGRAM [ARG...]   (anything else is executed)\n\n"
           "The native tensor runtime %s of dlc's images.\n\nCommands:\n",
           TENSOR_VERSION);
    for (size_t i = 0; i < DLC_ARRAY_SIZE(commands); i++)
        if (command_fn(&commands[i]) != NULL)
            printf("  %-10s %s\n", commands[i].name, commands[i].summary);
    printf("\nRun 'tensor COMMAND --help' for a command's options.\n");
    return 0;
}

/* As the DLC entrypoint does (and docker reports): 127 when the program is not found,
 * 126 when it cannot be executed. */
static int exec_program(char **argv)
{
    execvp(argv[0], argv);
    int e = errno;
    fprintf(stderr, "tensor: exec %s: %s\n", argv[0], strerror(e));
    return e == ENOENT || e == ENOTDIR ? 127 : 126;
}

int main(int argc, char **argv)
{
    dlc_log_set_progname("tensor");
    if (argc < 2) {
        cmd_help(0, NULL);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        return cmd_help(argc - 1, argv + 1);
    if (strcmp(name, "--version") == 0)
        return cmd_version(argc - 1, argv + 1);
    for (size_t i = 0; i < DLC_ARRAY_SIZE(commands); i++) {
        int (*fn)(int, char **) = command_fn(&commands[i]);
        if (fn != NULL && strcmp(name, commands[i].name) == 0)
            return fn(argc - 1, argv + 1);
    }
    return exec_program(argv + 1);
}
