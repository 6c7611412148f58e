/* tensor-cmd.h: what the files of the `tensor` program share. The program parses
 * arguments, prints, and maps errors to exit codes; libruntime does the work. */
#ifndef DLC_TENSOR_CMD_H
#define DLC_TENSOR_CMD_H

#include "tensor.h"

#ifndef TENSOR_VERSION
#    define TENSOR_VERSION "0.0.0"
#endif

int cmd_train(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_evaluate(int argc, char **argv);
int cmd_devices(int argc, char **argv);

/* Prints "tensor: <cmd>: <msg>" to stderr, frees *err, returns 1. */
int cmd_fail(const char *cmd, struct dlc_error **err);
/* Prints "tensor: <cmd>: <msg>" and "Try 'tensor <cmd> --help'", returns 2. */
int cmd_usage_error(const char *cmd, const char *msg);
/* Positive int option values ("--batch-size"). */
int cmd_parse_count(const char *cmd, const char *opt, const char *arg, int64_t max, int64_t *ret);

/* ---- Keras-style output (progress.c) -------------------------------------------------- */

/* "loss: 0.3412 - accuracy: 0.8801" (with prefix "val_" names "val_loss: ..."). */
void progress_format_metrics(const struct tensor_metrics *m, const char *prefix,
                             struct dlc_strbuf *out);

struct progress {
    bool tty;     /* draw the in-epoch bar (stdout is a terminal) */
    double start; /* epoch start, seconds */
    double last;  /* last redraw */
};

double progress_now(void);
void progress_start(struct progress *p);
/* A tensor_batch_fn: redraws "  120/469 [=====>....] - ETA: 3s - loss: ..." on a tty. */
void progress_batch(int64_t batch, int64_t n_batches, const struct tensor_metrics *m,
                    void *userdata);
/* Clears the bar; prints "Epoch 3/10 - 1.21s - loss: ... - val_loss: ...". */
void progress_epoch_line(struct progress *p, int epoch, int epochs, double seconds,
                         const struct tensor_metrics *m, const struct tensor_metrics *val);

#endif
