/* cli.h: what the subcommand files of `dlc` share. The CLI parses arguments and calls one
 * library function per subcommand; it is the only place that prints results or exits. */
#ifndef DLC_CLI_H
#define DLC_CLI_H

#include <getopt.h>

#include "common.h"

/* Exit codes of dlc's own commands (dlc run uses the container's, see runner.h). */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };

struct cli_global {
    const char *root; /* --root DIR, or NULL for oci_default_root() */
    bool tty;         /* stderr is a terminal: show progress */
};
extern struct cli_global cli_global;

/* Every subcommand accepts --root DIR and --help: put CLI_COMMON_LONGOPTS in its long
 * options and pass unknown option characters to cli_common_opt(). */
#define CLI_OPT_ROOT 0x1000
#define CLI_COMMON_LONGOPTS                          \
    {"root", required_argument, NULL, CLI_OPT_ROOT}, \
    {                                                \
        "help", no_argument, NULL, 'h'               \
    }

struct cli_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *usage;   /* "dlc images [--format json]" */
    const char *summary; /* one line for `dlc --help` */
    const char *help;    /* the option list for `dlc CMD --help`, may be NULL */
};

/* Handles the shared options: --root, --help (prints usage, returns 0 and sets *done),
 * '?' (bad option: getopt already printed; prints the usage line, returns 2 and sets
 * *done). Returns -1 when the option is not a common one. */
int cli_common_opt(const struct cli_command *cmd, int c, bool *done);
/* cli_common_opt for a getopt loop, with an option character the caller declared but did
 * not handle as a usage error ("unsupported option"). True when the command must return
 * *ret now (--help, a bad option). */
bool cli_common_opt_done(const struct cli_command *cmd, int c, int *ret);
/* getopt names argv[0] in its messages: make that "dlc <name>" ("dlc registry serve"). */
void cli_set_progname(const char *name, char **argv);
/* Prints "dlc <what>: <err->msg>" to stderr, frees err, returns CLI_EXIT_FAIL. */
int cli_fail(const char *what, struct dlc_error **err);
/* Prints "dlc <cmd>: <msg>" and the usage line; returns CLI_EXIT_USAGE. */
int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...) DLC_PRINTF(2, 3);
/* The store root: --root, else oci_default_root(). Caller frees. */
char *cli_root(void);
/* Resets getopt for a subcommand's own argv. */
void cli_getopt_reset(void);

/* Subcommands are defined in cli/cmd-*.c and registered by name in cli/main.c. */
const struct cli_command *cli_command_find(const char *name);

#endif
