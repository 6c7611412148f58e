/* selftest.cl: run once at startup, in a child process, before the backend is used: it
 * proves the driver can compile, link and run a kernel with local memory and a barrier and
 * that the numbers come back right. A broken driver (pocl without `ld`, a driver that does
 * not match the kernel module) then fails with a clear error instead of an abort later. */
__kernel __attribute__((reqd_work_group_size(64, 1, 1))) void selftest(__global float *x,
                                                                      const float a)
{
    __local float sh[64];
    const int i = get_global_id(0), l = get_local_id(0);
    sh[l] = x[i];
    barrier(CLK_LOCAL_MEM_FENCE);
    x[i] = a * sh[63 - l] + (float)i;
}
