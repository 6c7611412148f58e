/* common.cl: definitions every kernel file of the OpenCL backend shares. The host builds
 * the program from all files concatenated (see runtime/opencl.mk) with -D options for the
 * enum values of tensor.h (ACT_*, LOSS_*, METRIC_*), the GEMM parameters, and TENSOR_FP64
 * when the device has cl_khr_fp64, so losses accumulate in double like the CPU backend. */
#ifdef TENSOR_FP64
#    pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double real;
#else
typedef float real;
#endif

#define CAT(a, b)  a##b
#define XCAT(a, b) CAT(a, b)

/* The same function as tensor__mix64() in tensor-internal.h: splitmix64's finaliser over
 * (key, counter), so dropout masks are identical on every backend. */
ulong mix64(ulong key, ulong counter)
{
    ulong z = key + 0x9e3779b97f4a7c15UL * (counter + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9UL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebUL;
    return z ^ (z >> 31);
}
