/* gemm.cl: C = alpha * op(A) * op(B) + beta * C for row-major f32 matrices, after CLBlast's
 * Xgemm (CNugteren/CLBlast: src/kernels/level3/xgemm_part*.opencl, doc/details_gemm.md).
 *
 * Two paths, chosen by the host:
 * - gemm_tiled, the "indirect" kernel: operands in k-major layout (A as K x M, B as K x N,
 *   sizes multiples of the tiles), so every load from global memory is a contiguous vector.
 *   gemm_pack rearranges (transposes, zero-pads) an operand into that layout when it is not
 *   already so: O(n^2) work that pays off only for large products.
 * - gemm_direct: reads A and B in place with any transpose, edge checks on every load; for
 *   small and odd shapes, where packing would cost more than it saves.
 *
 * Parameters, given as -D options (CLBlast's names):
 *   MWG, NWG, KWG   the tile of C one work-group computes (MWG x NWG) and its K step
 *   MDIMC, NDIMC    work-items per work-group along M and N; each computes a register tile
 *                   of MWI = MWG / MDIMC by NWI = NWG / NDIMC outputs of C
 *   VWM, VWN        vector width (1, 2, 4, 8) of the A and B loads into local memory
 *   WGD, MDIMCD, NDIMCD, KWGD   the same for the direct kernel (square WGD x WGD tile)
 * A work-item's outputs are strided by MDIMC / NDIMC (CLBlast's STRM = STRN = 1), so that
 * neighbouring work-items read neighbouring local memory words and store contiguously. */
#pragma OPENCL FP_CONTRACT ON

#define MWI     (MWG / MDIMC)
#define NWI     (NWG / NDIMC)
#define THREADS (MDIMC * NDIMC)

#if VWM == 1
#    define LOAD_A(p)        (*(p))
#    define STORE_A(v, p)    (*(p) = (v))
typedef float floatA;
#else
#    define LOAD_A(p)        XCAT(vload, VWM)(0, p)
#    define STORE_A(v, p)    XCAT(vstore, VWM)(v, 0, p)
typedef XCAT(float, VWM) floatA;
#endif
#if VWN == 1
#    define LOAD_B(p)        (*(p))
#    define STORE_B(v, p)    (*(p) = (v))
typedef float floatB;
#else
#    define LOAD_B(p)        XCAT(vload, VWN)(0, p)
#    define STORE_B(v, p)    XCAT(vstore, VWN)(v, 0, p)
typedef XCAT(float, VWN) floatB;
#endif

/* One work-group: a MWG x NWG tile of C. Ap is Kp x Mp and Bp is Kp x Np (row-major, the
 * padding zero); K is a multiple of KWG; C is M x N with row stride ldc, written with edge
 * checks (the padding of Ap/Bp produces values that are dropped there). */
__kernel __attribute__((reqd_work_group_size(NDIMC, MDIMC, 1))) void
gemm_tiled(const int M, const int N, const int K, const int Mp, const int Np,
           const float alpha, const float beta, __global const float *restrict Ap,
           const ulong a_off, __global const float *restrict Bp, const ulong b_off,
           __global float *C, const ulong c_off, const int ldc)
{
    __local float Alm[KWG * MWG]; /* [k][m] */
    __local float Blm[KWG * NWG]; /* [k][n] */
    const int tn = get_local_id(0), tm = get_local_id(1);
    const int tid = tm * NDIMC + tn;
    const int m0 = get_group_id(1) * MWG, n0 = get_group_id(0) * NWG;
    Ap += a_off;
    Bp += b_off;
    C += c_off;

    float acc[MWI][NWI];
    for (int wm = 0; wm < MWI; wm++)
        for (int wn = 0; wn < NWI; wn++)
            acc[wm][wn] = 0.0f;

    for (int k0 = 0; k0 < K; k0 += KWG) {
        for (int l = tid; l < KWG * MWG / VWM; l += THREADS) {
            const int kk = l / (MWG / VWM), mv = l % (MWG / VWM);
            floatA v = LOAD_A(Ap + (k0 + kk) * Mp + m0 + mv * VWM);
            STORE_A(v, Alm + kk * MWG + mv * VWM);
        }
        for (int l = tid; l < KWG * NWG / VWN; l += THREADS) {
            const int kk = l / (NWG / VWN), nv = l % (NWG / VWN);
            floatB v = LOAD_B(Bp + (k0 + kk) * Np + n0 + nv * VWN);
            STORE_B(v, Blm + kk * NWG + nv * VWN);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
        for (int k = 0; k < KWG; k++) {
            float a[MWI], b[NWI];
            for (int wm = 0; wm < MWI; wm++)
                a[wm] = Alm[k * MWG + tm + wm * MDIMC];
            for (int wn = 0; wn < NWI; wn++)
                b[wn] = Blm[k * NWG + tn + wn * NDIMC];
            for (int wm = 0; wm < MWI; wm++)
                for (int wn = 0; wn < NWI; wn++)
                    acc[wm][wn] += a[wm] * b[wn];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    for (int wm = 0; wm < MWI; wm++) {
        const int m = m0 + tm + wm * MDIMC;
        if (m >= M)
            break;
        for (int wn = 0; wn < NWI; wn++) {
            const int n = n0 + tn + wn * NDIMC;
            if (n >= N)
                break;
            __global float *c = C + m * ldc + n;
            *c = beta == 0.0f ? alpha * acc[wm][wn] : alpha * acc[wm][wn] + beta * *c;
        }
    }
}

/* dst (Kp x Xp, row-major) = an operand in k-major layout: dst[k][x] = src(x, k) for x < X,
 * k < K, zero in the padding. src(x, k) is src[x * sx + k * sk], which covers both
 * transposes. A 16 x 16 tile goes through local memory so that both the reads (along
 * whichever of x, k is contiguous in src) and the writes (along x) are contiguous. */
__kernel __attribute__((reqd_work_group_size(16, 16, 1))) void
gemm_pack(const int X, const int K, const int Xp, const int Kp, __global const float *restrict src,
          const ulong s_off, const int sx, const int sk, __global float *restrict dst)
{
    __local float tile[16][17]; /* [x][k] */
    const int lx = get_local_id(0), ly = get_local_id(1);
    const int x0 = get_group_id(0) * 16, k0 = get_group_id(1) * 16;
    src += s_off;
    if (sk == 1 && sx != 1) {
        const int x = x0 + ly, k = k0 + lx;
        tile[ly][lx] = x < X && k < K ? src[x * sx + k] : 0.0f;
    } else {
        const int x = x0 + lx, k = k0 + ly;
        tile[lx][ly] = x < X && k < K ? src[x * sx + k * sk] : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const int x = x0 + lx, k = k0 + ly;
    if (x < Xp && k < Kp)
        dst[k * Xp + x] = tile[lx][ly];
}

#define MWID     (WGD / MDIMCD)
#define NWID     (WGD / NDIMCD)
#define THREADSD (MDIMCD * NDIMCD)

/* One work-group: a WGD x WGD tile of C, straight from A and B. op(A)(m, k) is
 * A[m * a_sm + k * a_sk] and op(B)(k, n) is B[k * b_sk + n * b_sn]; loads are spread over
 * the work-items along whichever index is contiguous in memory. */
__kernel __attribute__((reqd_work_group_size(NDIMCD, MDIMCD, 1))) void
gemm_direct(const int M, const int N, const int K, const float alpha, const float beta,
            __global const float *restrict A, const ulong a_off, const int a_sm, const int a_sk,
            __global const float *restrict B, const ulong b_off, const int b_sk, const int b_sn,
            __global float *C, const ulong c_off, const int ldc)
{
    __local float Alm[KWGD][WGD + 1]; /* [k][m], padded against bank conflicts */
    __local float Blm[KWGD][WGD + 1]; /* [k][n] */
    const int tn = get_local_id(0), tm = get_local_id(1);
    const int tid = tm * NDIMCD + tn;
    const int m0 = get_group_id(1) * WGD, n0 = get_group_id(0) * WGD;
    A += a_off;
    B += b_off;
    C += c_off;

    float acc[MWID][NWID];
    for (int wm = 0; wm < MWID; wm++)
        for (int wn = 0; wn < NWID; wn++)
            acc[wm][wn] = 0.0f;

    for (int k0 = 0; k0 < K; k0 += KWGD) {
        for (int l = tid; l < WGD * KWGD; l += THREADSD) {
            const int kk = a_sk == 1 ? l % KWGD : l / WGD;
            const int mm = a_sk == 1 ? l / KWGD : l % WGD;
            const int m = m0 + mm, k = k0 + kk;
            Alm[kk][mm] = m < M && k < K ? A[m * a_sm + k * a_sk] : 0.0f;
        }
        for (int l = tid; l < WGD * KWGD; l += THREADSD) {
            const int kk = b_sn == 1 ? l / WGD : l % KWGD;
            const int nn = b_sn == 1 ? l % WGD : l / KWGD;
            const int n = n0 + nn, k = k0 + kk;
            Blm[kk][nn] = n < N && k < K ? B[k * b_sk + n * b_sn] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int k = 0; k < KWGD; k++) {
            float a[MWID], b[NWID];
            for (int wm = 0; wm < MWID; wm++)
                a[wm] = Alm[k][tm + wm * MDIMCD];
            for (int wn = 0; wn < NWID; wn++)
                b[wn] = Blm[k][tn + wn * NDIMCD];
            for (int wm = 0; wm < MWID; wm++)
                for (int wn = 0; wn < NWID; wn++)
                    acc[wm][wn] += a[wm] * b[wn];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    for (int wm = 0; wm < MWID; wm++) {
        const int m = m0 + tm + wm * MDIMCD;
        if (m >= M)
            break;
        for (int wn = 0; wn < NWID; wn++) {
            const int n = n0 + tn + wn * NDIMCD;
            if (n >= N)
                break;
            __global float *c = C + m * ldc + n;
            *c = beta == 0.0f ? alpha * acc[wm][wn] : alpha * acc[wm][wn] + beta * *c;
        }
    }
}
