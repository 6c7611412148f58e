/* loss.cl: one batch's loss, its gradient and the metrics, in two kernels: loss_rows (one
 * work-item per row, the formulas of row_loss/row_metric in losses.c, computed in `real`,
 * double when the device has it) writes per-row values to a scratch matrix, and
 * loss_reduce adds its columns into the 1 + n_metrics floats of out. Only those floats
 * ever travel back to the host. */
#pragma OPENCL FP_CONTRACT OFF

#ifdef TENSOR_FP64
#    define KERAS_EPSILON 1e-7
#else
#    define KERAS_EPSILON 1e-7f /* no double literals where doubles do not exist */
#endif

real clip_prob(const real p)
{
    return p < KERAS_EPSILON ? KERAS_EPSILON : p > 1 - KERAS_EPSILON ? 1 - KERAS_EPSILON : p;
}

int argmax_row(__global const float *v, const int n)
{
    int best = 0;
    for (int j = 1; j < n; j++)
        if (v[j] > v[best])
            best = j;
    return best;
}

/* Keras normalises categorical outputs to sum 1 before clipping. */
real categorical_row(const int sparse, const int fused, __global const float *y,
                     __global const float *t, __global float *g, const int k, const real s)
{
    real l = 0, sum = 0, tsum = 0;
    for (int j = 0; j < k; j++)
        sum += y[j];
    for (int j = 0; j < k; j++) {
        const real tj = sparse ? (real)(j == (long)t[0]) : (real)t[j];
        tsum += tj;
        if (tj != 0)
            l -= tj * log(clip_prob(y[j] / sum));
    }
    for (int j = 0; g && j < k; j++) {
        const real tj = sparse ? (real)(j == (long)t[0]) : (real)t[j];
        if (fused)
            g[j] = (float)(((real)y[j] * tsum - tj) * s);
        else
            g[j] = (float)((tsum / sum - tj / clip_prob(y[j])) * s);
    }
    return l;
}

real row_loss(const int loss, const int fused, __global const float *y, __global const float *t,
              __global float *g, const int k, const real s)
{
    real l = 0;
    if (loss == LOSS_MSE) {
        for (int j = 0; j < k; j++) {
            const real d = (real)y[j] - t[j];
            l += d * d;
            if (g)
                g[j] = (float)(2 * d * s / (real)k);
        }
        return l / (real)k;
    }
    if (loss == LOSS_MAE) {
        for (int j = 0; j < k; j++) {
            const real d = (real)y[j] - t[j];
            l += fabs(d);
            if (g)
                g[j] = (float)((d > 0 ? 1 : d < 0 ? -1 : 0) * s / (real)k);
        }
        return l / (real)k;
    }
    if (loss == LOSS_BINARY_CROSSENTROPY) {
        for (int j = 0; j < k; j++) {
            const real p = clip_prob(y[j]);
            l -= t[j] * log(p + KERAS_EPSILON) + (1 - t[j]) * log(1 - p + KERAS_EPSILON);
            if (g && fused)
                g[j] = (float)(((real)y[j] - t[j]) * s / (real)k);
            else if (g)
                g[j] = (float)((-t[j] / (p + KERAS_EPSILON) +
                                (1 - t[j]) / (1 - p + KERAS_EPSILON)) *
                               s / (real)k);
        }
        return l / (real)k;
    }
    return categorical_row(loss == LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, fused, y, t, g, k, s);
}

real row_metric(const int metric, __global const float *y, __global const float *t,
                const int k, const int tcols)
{
    real v = 0;
    if (metric == METRIC_BINARY_ACCURACY) {
        for (int j = 0; j < k; j++)
            v += (y[j] > 0.5f) == (t[tcols == 1 ? 0 : j] > 0.5f);
        return v / (real)k;
    }
    if (metric == METRIC_CATEGORICAL_ACCURACY)
        return argmax_row(y, k) == argmax_row(t, tcols);
    if (metric == METRIC_SPARSE_CATEGORICAL_ACCURACY)
        return argmax_row(y, k) == (long)t[0];
    for (int j = 0; j < k; j++) /* METRIC_MAE */
        v += fabs((real)y[j] - t[tcols == 1 ? 0 : j]);
    return v / (real)k;
}

/* part[r][0] = row r's loss, part[r][1 + m] = its metric m; g (when has_grad) as in
 * struct tensor_loss_args, already divided by the batch size. */
__kernel void loss_rows(const int loss, const int fused, const int rows, const int k,
                        const int tcols, __global const float *y, const ulong y_off,
                        __global const float *t, const ulong t_off, __global float *g,
                        const ulong g_off, const int has_grad, __global float *part,
                        const int n_metrics, const int metric0, const int metric1,
                        const int metric2, const int metric3)
{
    const int r = get_global_id(0);
    if (r >= rows)
        return;
    const real s = (real)1 / (real)rows;
    __global const float *yr = y + y_off + (size_t)r * k;
    __global const float *tr = t + t_off + (size_t)r * tcols;
    __global float *gr = has_grad ? g + g_off + (size_t)r * k : 0;
    __global float *pr = part + (size_t)r * (1 + n_metrics);
    pr[0] = (float)row_loss(loss, fused, yr, tr, gr, k, s);
    const int metrics[4] = {metric0, metric1, metric2, metric3};
    for (int m = 0; m < n_metrics; m++)
        pr[1 + m] = (float)row_metric(metrics[m], yr, tr, k, tcols);
}

#define LR_WG 64

/* out[c] = sum over rows of part[r][c], c < width: one work-group. */
__kernel __attribute__((reqd_work_group_size(LR_WG, 1, 1))) void
loss_reduce(__global const float *part, const int rows, const int width, __global float *out,
            const ulong o_off)
{
    __local real sh[LR_WG];
    const int l = get_local_id(0);
    for (int c = 0; c < width; c++) {
        real s = 0;
        for (int r = l; r < rows; r += LR_WG)
            s += part[(size_t)r * width + c];
        sh[l] = s;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int step = LR_WG / 2; step > 0; step >>= 1) {
            if (l < step)
                sh[l] += sh[l + step];
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        if (l == 0)
            out[o_off + c] = (float)sh[0];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}
