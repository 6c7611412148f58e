/* progress.c: Keras-style training output. On a terminal a progress bar is redrawn within
 * each epoch (at most ten times a second); always, one line per epoch, the format
 * SageMaker metric definitions and log scrapers already match for Keras jobs. */
#include <string.h>
#include <time.h>

#include "tensor-cmd.h"

#define BAR_WIDTH 30

double progress_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void progress_format_metrics(const struct tensor_metrics *m, const char *prefix,
                             struct dlc_strbuf *out)
{
    dlc_strbuf_appendf(out, "%sloss: %.4f", prefix, m->loss);
    for (int i = 0; i < m->n_metrics; i++)
        dlc_strbuf_appendf(out, " - %s%s: %.4f", prefix, tensor_metric_name(m->metrics[i]),
                           m->values[i]);
}

void progress_start(struct progress *p)
{
    p->start = progress_now();
    p->last = 0;
}

void progress_batch(int64_t batch, int64_t n_batches, const struct tensor_metrics *m,
                    void *userdata)
{
    struct progress *p = userdata;
    double now = progress_now();
    if (!p->tty || (now - p->last < 0.1 && batch < n_batches))
        return;
    p->last = now;
    int done = (int)(BAR_WIDTH * batch / n_batches);
    char bar[BAR_WIDTH + 1];
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < done ? '=' : i == done ? '>' : '.';
    bar[BAR_WIDTH] = '\0';
    double eta = (now - p->start) / (double)batch * (double)(n_batches - batch);
    _cleanup_strbuf_ struct dlc_strbuf sb = DLC_STRBUF_INIT;
    int w = snprintf(NULL, 0, "%lld", (long long)n_batches);
    dlc_strbuf_appendf(&sb, "\r%*lld/%lld [%s] - ETA: %.0fs - ", w, (long long)batch,
                       (long long)n_batches, bar, eta);
    progress_format_metrics(m, "", &sb);
    fputs(dlc_strbuf_str(&sb), stdout);
    fflush(stdout);
}

void progress_epoch_line(struct progress *p, int epoch, int epochs, double seconds,
                         const struct tensor_metrics *m, const struct tensor_metrics *val)
{
    _cleanup_strbuf_ struct dlc_strbuf sb = DLC_STRBUF_INIT;
    if (p->tty)
        dlc_strbuf_append(&sb, "\r\033[K");
    dlc_strbuf_appendf(&sb, "Epoch %d/%d - %.2fs - ", epoch, epochs, seconds);
    progress_format_metrics(m, "", &sb);
    if (val != NULL) {
        dlc_strbuf_append(&sb, " - ");
        progress_format_metrics(val, "val_", &sb);
    }
    dlc_strbuf_appendc(&sb, '\n');
    fputs(dlc_strbuf_str(&sb), stdout);
    fflush(stdout);
}
