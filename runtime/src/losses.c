/* losses.c: losses and metrics (Keras' names and formulas) and their CPU kernel.
 *
 * Losses take probabilities, as Keras' do by default (from_logits=False): outputs are
 * clipped to [eps, 1 - eps] before the log, so the value never becomes inf. When the output
 * activation and the loss pair up (softmax with categorical cross-entropy, sigmoid with
 * binary cross-entropy) the gradient with respect to the pre-activation is computed
 * directly as y - t, which is exact and cannot overflow, instead of chaining through
 * 1/y. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "tensor-internal.h"

#define KERAS_EPSILON 1e-7

static const struct {
    const char *name;
    enum tensor_loss loss;
} loss_names[] = {
        {"mse", TENSOR_LOSS_MSE},
        {"mean_squared_error", TENSOR_LOSS_MSE},
        {"mae", TENSOR_LOSS_MAE},
        {"mean_absolute_error", TENSOR_LOSS_MAE},
        {"binary_crossentropy", TENSOR_LOSS_BINARY_CROSSENTROPY},
        {"categorical_crossentropy", TENSOR_LOSS_CATEGORICAL_CROSSENTROPY},
        {"sparse_categorical_crossentropy", TENSOR_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY},
};

const char *tensor_loss_name(enum tensor_loss l)
{
    for (size_t i = 0; i < DLC_ARRAY_SIZE(loss_names); i++)
        if (loss_names[i].loss == l)
            return loss_names[i].name;
    return "?";
}

int tensor_loss_parse(const char *s, enum tensor_loss *ret, struct dlc_error **err)
{
    for (size_t i = 0; s != NULL && i < DLC_ARRAY_SIZE(loss_names); i++) {
        if (strcmp(s, loss_names[i].name) == 0) {
            *ret = loss_names[i].loss;
            return 0;
        }
    }
    return dlc_error_set(err, EINVAL,
                         "unknown loss '%s' (supported: mse, mae, binary_crossentropy, "
                         "categorical_crossentropy, sparse_categorical_crossentropy)",
                         s ? s : "");
}

enum tensor_act tensor_loss_default_activation(enum tensor_loss l)
{
    switch (l) {
    case TENSOR_LOSS_CATEGORICAL_CROSSENTROPY:
    case TENSOR_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY:
        return TENSOR_ACT_SOFTMAX;
    case TENSOR_LOSS_BINARY_CROSSENTROPY:
        return TENSOR_ACT_SIGMOID;
    default:
        return TENSOR_ACT_LINEAR;
    }
}

static const struct {
    const char *name;
    enum tensor_metric metric;
} metric_names[] = {
        {"accuracy", TENSOR_METRIC_ACCURACY},
        {"acc", TENSOR_METRIC_ACCURACY},
        {"binary_accuracy", TENSOR_METRIC_BINARY_ACCURACY},
        {"categorical_accuracy", TENSOR_METRIC_CATEGORICAL_ACCURACY},
        {"sparse_categorical_accuracy", TENSOR_METRIC_SPARSE_CATEGORICAL_ACCURACY},
        {"mae", TENSOR_METRIC_MAE},
        {"mean_absolute_error", TENSOR_METRIC_MAE},
};

const char *tensor_metric_name(enum tensor_metric m)
{
    /* Keras logs a resolved "accuracy" under the name the user wrote; so do we. */
    switch (m) {
    case TENSOR_METRIC_ACCURACY:
    case TENSOR_METRIC_BINARY_ACCURACY:
    case TENSOR_METRIC_CATEGORICAL_ACCURACY:
    case TENSOR_METRIC_SPARSE_CATEGORICAL_ACCURACY:
        return "accuracy";
    case TENSOR_METRIC_MAE:
        return "mae";
    default:
        return "?";
    }
}

int tensor_metric_parse(const char *s, enum tensor_metric *ret, struct dlc_error **err)
{
    for (size_t i = 0; s != NULL && i < DLC_ARRAY_SIZE(metric_names); i++) {
        if (strcmp(s, metric_names[i].name) == 0) {
            *ret = metric_names[i].metric;
            return 0;
        }
    }
    return dlc_error_set(err, EINVAL, "unknown metric '%s' (supported: accuracy, mae)", s ? s : "");
}

enum tensor_metric tensor_metric_resolve(enum tensor_metric m, enum tensor_loss l, int64_t outputs)
{
    if (m != TENSOR_METRIC_ACCURACY)
        return m;
    if (l == TENSOR_LOSS_BINARY_CROSSENTROPY || outputs == 1)
        return TENSOR_METRIC_BINARY_ACCURACY;
    if (l == TENSOR_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY)
        return TENSOR_METRIC_SPARSE_CATEGORICAL_ACCURACY;
    return TENSOR_METRIC_CATEGORICAL_ACCURACY;
}

static double clip(double p)
{
    return p < KERAS_EPSILON ? KERAS_EPSILON : p > 1 - KERAS_EPSILON ? 1 - KERAS_EPSILON : p;
}

static int64_t argmax(const float *v, int64_t n)
{
    int64_t best = 0;
    for (int64_t j = 1; j < n; j++)
        if (v[j] > v[best])
            best = j;
    return best;
}

/* One row's loss; g (when set) receives dL/dy or, fused, dL/dz, scaled by s. */
static double row_loss(const struct tensor_loss_args *a, const float *y, const float *t, float *g,
                       int64_t k, double s)
{
    double l = 0;
    switch (a->loss) {
    case TENSOR_LOSS_MSE:
        for (int64_t j = 0; j < k; j++) {
            double d = (double)y[j] - t[j];
            l += d * d;
            if (g)
                g[j] = (float)(2 * d * s / (double)k);
        }
        return l / (double)k;
    case TENSOR_LOSS_MAE:
        for (int64_t j = 0; j < k; j++) {
            double d = (double)y[j] - t[j];
            l += fabs(d);
            if (g)
                g[j] = (float)((d > 0 ? 1 : d < 0 ? -1 : 0) * s / (double)k);
        }
        return l / (double)k;
    case TENSOR_LOSS_BINARY_CROSSENTROPY:
        for (int64_t j = 0; j < k; j++) {
            double p = clip(y[j]);
            l -= t[j] * log(p + KERAS_EPSILON) + (1 - t[j]) * log(1 - p + KERAS_EPSILON);
            if (g && a->fused)
                g[j] = (float)(((double)y[j] - t[j]) * s / (double)k);
            else if (g)
                g[j] = (float)((-t[j] / (p + KERAS_EPSILON) +
                                (1 - t[j]) / (1 - p + KERAS_EPSILON)) *
                               s / (double)k);
        }
        return l / (double)k;
    default:
        break;
    }
    /* Categorical: Keras normalises the outputs to sum 1 before clipping. */
    bool sparse = a->loss == TENSOR_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY;
    double sum = 0, tsum = 0;
    for (int64_t j = 0; j < k; j++)
        sum += y[j];
    for (int64_t j = 0; j < k; j++) {
        double tj = sparse ? (j == (int64_t)t[0]) : t[j];
        tsum += tj;
        if (tj != 0)
            l -= tj * log(clip(y[j] / sum));
    }
    for (int64_t j = 0; g && j < k; j++) {
        double tj = sparse ? (j == (int64_t)t[0]) : t[j];
        if (a->fused)
            g[j] = (float)(((double)y[j] * tsum - tj) * s);
        else
            g[j] = (float)((tsum / sum - tj / clip(y[j])) * s);
    }
    return l;
}

static double row_metric(enum tensor_metric m, const float *y, const float *t, int64_t k,
                         int64_t tcols)
{
    double v = 0;
    switch (m) {
    case TENSOR_METRIC_BINARY_ACCURACY:
        for (int64_t j = 0; j < k; j++)
            v += (y[j] > 0.5f) == (t[tcols == 1 ? 0 : j] > 0.5f);
        return v / (double)k;
    case TENSOR_METRIC_CATEGORICAL_ACCURACY:
        return argmax(y, k) == argmax(t, tcols);
    case TENSOR_METRIC_SPARSE_CATEGORICAL_ACCURACY:
        return argmax(y, k) == (int64_t)t[0];
    case TENSOR_METRIC_MAE:
        for (int64_t j = 0; j < k; j++)
            v += fabs((double)y[j] - t[tcols == 1 ? 0 : j]);
        return v / (double)k;
    default:
        DLC_ASSERT(!"unresolved metric");
    }
}

void tensor__cpu_loss(const struct tensor_loss_args *a, const float *y, const float *t, float *g,
                      float *out, int64_t rows, int64_t cols, int64_t tcols)
{
    double s = rows > 0 ? 1.0 / (double)rows : 0;
    double sums[1 + TENSOR_MAX_METRICS] = {0};
    for (int64_t i = 0; i < rows; i++) {
        const float *yr = y + i * cols, *tr = t + i * tcols;
        sums[0] += row_loss(a, yr, tr, g ? g + i * cols : NULL, cols, s);
        for (int m = 0; m < a->n_metrics; m++)
            sums[1 + m] += row_metric(a->metrics[m], yr, tr, cols, tcols);
    }
    for (int m = 0; m <= a->n_metrics; m++)
        out[m] = (float)sums[m];
}
