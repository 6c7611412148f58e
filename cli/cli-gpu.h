/* cli-gpu.h: the GPU options `dlc run` and `dlc train` share (cli/cmd-gpu.c).
 *
 *     static const struct option opts[] = {..., CLI_GPU_LONGOPTS, CLI_COMMON_LONGOPTS, ...};
 *     struct cli_gpu_opts gpu = {0};
 *     while ((c = getopt_long(...)) != -1) {
 *         if (cli_gpu_opt(&gpu, c, optarg))
 *             continue;
 *         ...
 *     }
 *     if (cli_gpu_apply(&gpu, spec, &err) < 0)     // after -e/--env-file were parsed
 *         ...                                      // cli_fail("run", &err)
 *     cli_gpu_opts_release(&gpu);
 */
#ifndef DLC_CLI_GPU_H
#define DLC_CLI_GPU_H

#include "cli.h"
#include "runner.h"

#define CLI_OPT_GPUS        0x4701
#define CLI_OPT_DEVICE      0x4702
#define CLI_OPT_DRIVER_ROOT 0x4703

#define CLI_GPU_LONGOPTS                                            \
    {"gpus", required_argument, NULL, CLI_OPT_GPUS},                \
            {"device", required_argument, NULL, CLI_OPT_DEVICE},    \
    {                                                               \
        "driver-root", required_argument, NULL, CLI_OPT_DRIVER_ROOT \
    }

#define CLI_GPU_HELP                                                                      \
    "  --gpus all|N[,M]|none  pass GPUs (by index, GPU-UUID or PCI bus id) with their\n"  \
    "                         driver libraries and the host's OpenCL ICDs\n"              \
    "  --device PATH[:CPATH]  pass a device node (or every node under a directory)\n"     \
    "  --device VENDOR/CLASS=NAME  pass a CDI device (specs in /etc/cdi, /var/run/cdi)\n" \
    "  --driver-root DIR      where to find GPU drivers (default $DLC_DRIVER_ROOT or /)\n"

struct cli_gpu_opts {
    const char *gpus;
    char **devices;
    const char *driver_root;
};

/* Consumes c when it is one of the GPU options: true then. */
bool cli_gpu_opt(struct cli_gpu_opts *o, int c, const char *arg);
/* runner_gpu_apply with the options given (nothing when none was). */
int cli_gpu_apply(const struct cli_gpu_opts *o, struct runner_spec *spec, struct dlc_error **err);
void cli_gpu_opts_release(struct cli_gpu_opts *o);

#endif
