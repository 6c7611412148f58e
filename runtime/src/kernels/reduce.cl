/* reduce.cl: column sums (bias gradients): out[j] = beta * out[j] + sum_i x[i][j]. A
 * work-group covers SR_COLS columns with SR_LANES lanes; each lane sums every SR_LANES-th
 * row (contiguous reads across the columns), then the lanes are added in local memory. */
#pragma OPENCL FP_CONTRACT OFF

#define SR_COLS  16
#define SR_LANES 16

__kernel __attribute__((reqd_work_group_size(SR_COLS, SR_LANES, 1))) void
sum_rows(__global const float *x, const ulong x_off, const int rows, const int cols,
         const float beta, __global float *out, const ulong o_off)
{
    __local float sh[SR_LANES][SR_COLS];
    const int jl = get_local_id(0), lane = get_local_id(1);
    const int j = get_group_id(0) * SR_COLS + jl;
    x += x_off;
    float s = 0.0f;
    if (j < cols)
        for (int i = lane; i < rows; i += SR_LANES)
            s += x[(size_t)i * cols + j];
    sh[lane][jl] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int step = SR_LANES / 2; step > 0; step >>= 1) {
        if (lane < step)
            sh[lane][jl] += sh[lane + step][jl];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lane == 0 && j < cols)
        out[o_off + j] = out[o_off + j] * beta + sh[0][jl];
}
