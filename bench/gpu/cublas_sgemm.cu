// cublas_sgemm.cu: cuBLAS SGEMM GFLOP/s for square sizes, the reference bench/gpu/run.sh
// compares our OpenCL kernel with on an NVIDIA machine (nvcc -O2 ... -lcublas). Same
// protocol as bench_gpu: operands resident on the device, one warm-up call, best of runs.
// Prints "CUBLAS n=<n> gflops=<g>" per size given on the command line.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(x)                                                                 \
    do {                                                                         \
        if ((x) != 0) {                                                          \
            fprintf(stderr, "cublas_sgemm: %s failed at line %d\n", #x, __LINE__); \
            exit(1);                                                             \
        }                                                                        \
    } while (0)

int main(int argc, char **argv)
{
    cublasHandle_t h;
    CHECK(cublasCreate(&h));
    cudaEvent_t t0, t1;
    CHECK(cudaEventCreate(&t0));
    CHECK(cudaEventCreate(&t1));
    for (int i = 1; i < argc; i++) {
        int n = atoi(argv[i]);
        size_t bytes = (size_t)n * n * sizeof(float);
        float *a, *b, *c;
        CHECK(cudaMalloc(&a, bytes));
        CHECK(cudaMalloc(&b, bytes));
        CHECK(cudaMalloc(&c, bytes));
        CHECK(cudaMemset(a, 0, bytes));
        CHECK(cudaMemset(b, 0, bytes));
        const float alpha = 1.0f, beta = 0.0f;
        CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a, n, b, n, &beta, c, n));
        CHECK(cudaDeviceSynchronize());
        float best = 1e30f;
        for (int r = 0; r < 10; r++) {
            float ms = 0;
            CHECK(cudaEventRecord(t0));
            CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a, n, b, n, &beta, c,
                              n));
            CHECK(cudaEventRecord(t1));
            CHECK(cudaEventSynchronize(t1));
            CHECK(cudaEventElapsedTime(&ms, t0, t1));
            best = ms < best ? ms : best;
        }
        printf("CUBLAS n=%d gflops=%.2f\n", n, 2.0 * n * (double)n * n / (best * 1e-3) * 1e-9);
        cudaFree(a), cudaFree(b), cudaFree(c);
    }
    cublasDestroy(h);
    return 0;
}
