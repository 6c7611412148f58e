/* elementwise.cl: activations (forward fused with the bias add, backward in place),
 * dropout, elementwise multiply and row gather. The formulas and the order of operations
 * are those of runtime/src/activations.c and backend-cpu.c, and no FMA contraction is
 * allowed here, so results match the CPU backend to the last bit where the OpenCL
 * built-ins (exp, tanh, erf) are as exact as glibc's. Tensors are passed as a buffer and
 * an element offset; one work-item per element, or per row for softmax. */
#pragma OPENCL FP_CONTRACT OFF

float act_forward(const float x, const int act)
{
    switch (act) {
    case ACT_RELU:
        return x > 0.0f ? x : 0.0f;
    case ACT_SIGMOID:
        return 1.0f / (1.0f + exp(-x));
    case ACT_TANH:
        return tanh(x);
    case ACT_GELU:
        return 0.5f * x * (1.0f + erf(x * M_SQRT1_2_F));
    default:
        return x;
    }
}

/* y = act(x + bias) for every activation but softmax; x may be y; pre (when set) gets
 * x + bias. */
__kernel void bias_act(__global const float *x, const ulong x_off, __global float *y,
                       const ulong y_off, __global const float *bias, const ulong b_off,
                       const int has_bias, __global float *pre, const ulong p_off,
                       const int has_pre, const int n, const int cols, const int act)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    float v = x[x_off + i];
    if (has_bias)
        v += bias[b_off + i % cols];
    if (has_pre)
        pre[p_off + i] = v;
    y[y_off + i] = act_forward(v, act);
}

/* Softmax over each row of x + bias into y (one work-item per row). */
__kernel void bias_softmax(__global const float *x, const ulong x_off, __global float *y,
                           const ulong y_off, __global const float *bias, const ulong b_off,
                           const int has_bias, __global float *pre, const ulong p_off,
                           const int has_pre, const int rows, const int cols)
{
    const int r = get_global_id(0);
    if (r >= rows)
        return;
    __global const float *xr = x + x_off + (size_t)r * cols;
    __global float *row = y + y_off + (size_t)r * cols;
    for (int j = 0; j < cols; j++)
        row[j] = has_bias ? xr[j] + bias[b_off + j] : xr[j];
    if (has_pre)
        for (int j = 0; j < cols; j++)
            pre[p_off + (size_t)r * cols + j] = row[j];
    float mx = row[0];
    for (int j = 1; j < cols; j++)
        mx = row[j] > mx ? row[j] : mx;
    float sum = 0.0f;
    for (int j = 0; j < cols; j++) {
        row[j] = exp(row[j] - mx);
        sum += row[j];
    }
    const float inv = 1.0f / sum;
    for (int j = 0; j < cols; j++)
        row[j] *= inv;
}

/* g = dL/dy on entry, dL/d(pre-activation) on return; every activation but softmax. */
__kernel void act_backward(const int act, __global const float *y, const ulong y_off,
                           __global const float *pre, const ulong p_off,
                           __global float *g, const ulong g_off, const int n)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    g += g_off;
    const float yi = y[y_off + i];
    switch (act) {
    case ACT_RELU:
        g[i] = yi > 0.0f ? g[i] : 0.0f;
        break;
    case ACT_SIGMOID:
        g[i] *= yi * (1.0f - yi);
        break;
    case ACT_TANH:
        g[i] *= 1.0f - yi * yi;
        break;
    case ACT_GELU: {
        const float x = pre[p_off + i];
        const float inv_sqrt_2pi = 0.3989422804014327f;
        const float cdf = 0.5f * (1.0f + erf(x * M_SQRT1_2_F));
        const float pdf = inv_sqrt_2pi * exp(-0.5f * x * x);
        g[i] *= cdf + x * pdf;
        break;
    }
    default:
        break;
    }
}

__kernel void softmax_backward(__global const float *y, const ulong y_off, __global float *g,
                               const ulong g_off, const int rows, const int cols)
{
    const int r = get_global_id(0);
    if (r >= rows)
        return;
    __global const float *yr = y + y_off + (size_t)r * cols;
    __global float *gr = g + g_off + (size_t)r * cols;
    float dot = 0.0f;
    for (int j = 0; j < cols; j++)
        dot += gr[j] * yr[j];
    for (int j = 0; j < cols; j++)
        gr[j] = yr[j] * (gr[j] - dot);
}

/* Inverted dropout, y = x * mask: key = mix64(seed, stream) and threshold = rate * 2^24
 * come from the host, computed exactly as backend-cpu.c does. */
__kernel void dropout(__global const float *x, const ulong x_off, __global float *y,
                      const ulong y_off, __global float *mask, const ulong m_off,
                      const ulong key, const uint threshold, const float scale, const int n)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const uint u = (uint)(mix64(key, (ulong)i) >> 40);
    const float m = u >= threshold ? scale : 0.0f;
    mask[m_off + i] = m;
    y[y_off + i] = x[x_off + i] * m;
}

__kernel void mul(__global float *y, const ulong y_off, __global const float *m,
                  const ulong m_off, const int n)
{
    const int i = get_global_id(0);
    if (i < n)
        y[y_off + i] *= m[m_off + i];
}

/* dst row i = src row rows[i]; the host checked every index against src's rows. */
__kernel void gather(__global const float *src, const ulong s_off, __global const long *rows,
                     __global float *dst, const ulong d_off, const int n, const int cols)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const int r = i / cols, j = i % cols;
    dst[d_off + i] = src[s_off + (ulong)rows[r] * (ulong)cols + j];
}
