/* activations.c: activation names (Keras') and their CPU kernels, forward fused with the
 * bias add so each output is touched once, and backward in place. Loops are written per
 * activation with the switch outside, so the compiler can vectorise them. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "tensor-internal.h"

static const char *const act_names[_TENSOR_ACT_MAX] = {
        [TENSOR_ACT_LINEAR] = "linear",   [TENSOR_ACT_RELU] = "relu",
        [TENSOR_ACT_SIGMOID] = "sigmoid", [TENSOR_ACT_TANH] = "tanh",
        [TENSOR_ACT_SOFTMAX] = "softmax", [TENSOR_ACT_GELU] = "gelu",
};

const char *tensor_act_name(enum tensor_act a)
{
    return (unsigned)a < _TENSOR_ACT_MAX ? act_names[a] : "?";
}

int tensor_act_parse(const char *s, enum tensor_act *ret, struct dlc_error **err)
{
    if (s == NULL || *s == '\0') {
        *ret = TENSOR_ACT_LINEAR;
        return 0;
    }
    for (int i = 0; i < _TENSOR_ACT_MAX; i++) {
        if (strcmp(s, act_names[i]) == 0) {
            *ret = (enum tensor_act)i;
            return 0;
        }
    }
    return dlc_error_set(err, EINVAL,
                         "unknown activation '%s' (supported: relu, sigmoid, tanh, softmax, "
                         "linear, gelu)",
                         s);
}

static void add_bias(const float *x, float *y, const float *restrict bias, int64_t cols)
{
    for (int64_t j = 0; j < cols; j++)
        y[j] = x[j] + bias[j];
}

static void softmax_row(float *y, int64_t cols)
{
    float mx = y[0];
    for (int64_t j = 1; j < cols; j++)
        mx = y[j] > mx ? y[j] : mx;
    float sum = 0;
    for (int64_t j = 0; j < cols; j++) {
        y[j] = expf(y[j] - mx);
        sum += y[j];
    }
    float inv = 1.0f / sum;
    for (int64_t j = 0; j < cols; j++)
        y[j] *= inv;
}

static inline __attribute__((always_inline)) void act_row(float *restrict y, int64_t cols,
                                                          enum tensor_act act)
{
    switch (act) {
    case TENSOR_ACT_LINEAR:
        break;
    case TENSOR_ACT_RELU:
        for (int64_t j = 0; j < cols; j++)
            y[j] = y[j] > 0.0f ? y[j] : 0.0f;
        break;
    case TENSOR_ACT_SIGMOID:
        for (int64_t j = 0; j < cols; j++)
            y[j] = 1.0f / (1.0f + expf(-y[j]));
        break;
    case TENSOR_ACT_TANH:
        for (int64_t j = 0; j < cols; j++)
            y[j] = tanhf(y[j]);
        break;
    case TENSOR_ACT_SOFTMAX:
        softmax_row(y, cols);
        break;
    case TENSOR_ACT_GELU:
        for (int64_t j = 0; j < cols; j++)
            y[j] = 0.5f * y[j] * (1.0f + erff(y[j] * (float)M_SQRT1_2));
        break;
    case _TENSOR_ACT_MAX:
        DLC_ASSERT(!"bad activation");
    }
}

TENSOR_KERNEL void tensor__cpu_bias_act(const float *x, float *y, const float *bias, float *pre,
                                        int64_t rows, int64_t cols, enum tensor_act act)
{
    for (int64_t i = 0; i < rows; i++) {
        float *row = y + i * cols;
        if (bias != NULL)
            add_bias(x + i * cols, row, bias, cols);
        else if (x != y)
            memcpy(row, x + i * cols, (size_t)cols * sizeof(float));
        if (pre != NULL)
            memcpy(pre + i * cols, row, (size_t)cols * sizeof(float));
        act_row(row, cols, act);
    }
}

static void softmax_backward_row(const float *restrict y, float *restrict g, int64_t cols)
{
    float dot = 0;
    for (int64_t j = 0; j < cols; j++)
        dot += g[j] * y[j];
    for (int64_t j = 0; j < cols; j++)
        g[j] = y[j] * (g[j] - dot);
}

static void gelu_backward(const float *restrict x, float *restrict g, int64_t n)
{
    const float inv_sqrt_2pi = 0.3989422804014327f;
    for (int64_t j = 0; j < n; j++) {
        float cdf = 0.5f * (1.0f + erff(x[j] * (float)M_SQRT1_2));
        float pdf = inv_sqrt_2pi * expf(-0.5f * x[j] * x[j]);
        g[j] *= cdf + x[j] * pdf;
    }
}

TENSOR_KERNEL void tensor__cpu_act_backward(enum tensor_act act, const float *y, const float *pre,
                                            float *g, int64_t rows, int64_t cols)
{
    int64_t n = rows * cols;
    switch (act) {
    case TENSOR_ACT_LINEAR:
        break;
    case TENSOR_ACT_RELU:
        for (int64_t i = 0; i < n; i++)
            g[i] = y[i] > 0.0f ? g[i] : 0.0f;
        break;
    case TENSOR_ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            g[i] *= y[i] * (1.0f - y[i]);
        break;
    case TENSOR_ACT_TANH:
        for (int64_t i = 0; i < n; i++)
            g[i] *= 1.0f - y[i] * y[i];
        break;
    case TENSOR_ACT_SOFTMAX:
        for (int64_t i = 0; i < rows; i++)
            softmax_backward_row(y + i * cols, g + i * cols, cols);
        break;
    case TENSOR_ACT_GELU:
        DLC_ASSERT(pre != NULL);
        gelu_backward(pre, g, n);
        break;
    case _TENSOR_ACT_MAX:
        DLC_ASSERT(!"bad activation");
    }
}
