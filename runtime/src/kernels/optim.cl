/* optim.cl: optimizer steps over the flat parameter vector, with the update formulas and
 * operation order of tensor__cpu_sgd / tensor__cpu_adam (optimizers.c). No FMA contraction
 * and (when the device allows) correctly rounded division and sqrt, so a step gives the
 * CPU backend's bits. */
#pragma OPENCL FP_CONTRACT OFF

#define SGD_PLAIN    0
#define SGD_MOMENTUM 1
#define SGD_NESTEROV 2

__kernel void sgd_step(__global float *w, const ulong w_off, __global const float *g,
                       const ulong g_off, __global float *vel, const ulong v_off,
                       const int mode, const float lr, const float mom, const int n)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    w += w_off;
    const float gi = g[g_off + i];
    if (mode == SGD_PLAIN) {
        w[i] -= lr * gi;
        return;
    }
    vel += v_off;
    vel[i] = mom * vel[i] - lr * gi;
    if (mode == SGD_NESTEROV)
        w[i] += mom * vel[i] - lr * gi;
    else
        w[i] += vel[i];
}

/* c1 = 1 - beta_1, c2 = 1 - beta_2 (in float, as the CPU computes them); lr_t includes the
 * bias correction for this step. */
__kernel void adam_step(__global float *w, const ulong w_off, __global const float *g,
                        const ulong g_off, __global float *m, const ulong m_off,
                        __global float *v, const ulong v_off, const float lr_t, const float c1,
                        const float c2, const float eps, const int n)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const float gi = g[g_off + i];
    float mi = m[m_off + i], vi = v[v_off + i];
    mi += (gi - mi) * c1;
    vi += (gi * gi - vi) * c2;
    m[m_off + i] = mi;
    v[v_off + i] = vi;
    w[w_off + i] -= (mi * lr_t) / (sqrt(vi) + eps);
}
