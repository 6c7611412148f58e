/* gpu_fixture.h: a fake driver root for the GPU passthrough tests (gpu-passthrough.md §4.1):
 * /proc/devices, /proc/driver/nvidia (version 999.88.77, two GPUs), device "nodes" that are
 * regular files holding "c MAJOR MINOR" (gpu_stat_node is replaced to read them), stub
 * driver libraries compiled with gcc, a real ld.so.cache made by `ldconfig -r`, and OpenCL
 * ICDs (one with a dependency closure and data dirs, NVIDIA's, one broken). */
#ifndef DLC_TEST_GPU_FIXTURE_H
#define DLC_TEST_GPU_FIXTURE_H

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "unit.h"

#include "../../../runner/src/gpu.h"

#define FX_LIBDIR "/usr/lib/x86_64-linux-gnu"

static DLC_UNUSED void fx_write(const char *root, const char *rel, const char *content)
{
    _cleanup_free_ char *path = dlc_path_join(root, rel);
    _cleanup_free_ char *dir = dlc_path_dirname(path);
    struct dlc_error *err = NULL;
    if (dlc_mkdir_p(dir, 0755, &err) < 0 ||
        dlc_write_file_atomic(path, content, strlen(content), 0644, &err) < 0)
        fail_msg("fixture %s: %s", rel, err ? err->msg : "?");
}

static DLC_UNUSED void fx_mkdir(const char *root, const char *rel)
{
    _cleanup_free_ char *path = dlc_path_join(root, rel);
    struct dlc_error *err = NULL;
    if (dlc_mkdir_p(path, 0755, &err) < 0)
        fail_msg("fixture %s: %s", rel, err ? err->msg : "?");
}

/* A fake node: a regular file the fake stat reads. */
static DLC_UNUSED void fx_node(const char *root, const char *rel, char type, unsigned major,
                               unsigned minor)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%c %u %u\n", type, major, minor);
    fx_write(root, rel, buf);
}

static DLC_UNUSED int fx_stat_node(const char *path, struct stat *st)
{
    if (stat(path, st) < 0)
        return -1;
    if (!S_ISREG(st->st_mode))
        return 0;
    FILE *f = fopen(path, "re");
    char type = 0;
    unsigned ma = 0, mi = 0;
    int n = f ? fscanf(f, "%c %u %u", &type, &ma, &mi) : 0;
    if (f)
        fclose(f);
    if (n != 3)
        return 0; /* a plain file stays a plain file */
    st->st_mode = (mode_t)((type == 'b' ? S_IFBLK : S_IFCHR) | 0666);
    st->st_rdev = makedev(ma, mi);
    return 0;
}

/* Compiles a stub shared object with soname, linked against needed (-l names). */
static DLC_UNUSED void fx_lib(const char *root, const char *rel, const char *soname,
                              const char *libs)
{
    _cleanup_free_ char *out = dlc_path_join(root, rel);
    _cleanup_free_ char *dir = dlc_path_dirname(out);
    _cleanup_free_ char *src = dlc_path_join(root, "stub.c");
    fx_write(root, "stub.c", "int stub_fn(void) { return 100; }\n");
    _cleanup_free_ char *so = xasprintf("-Wl,-soname,%s", soname);
    _cleanup_free_ char *libdir = dlc_path_join(root, FX_LIBDIR);
    _cleanup_free_ char *L = xasprintf("-L%s", libdir);
    const char *argv[16] = {"gcc", "-shared", "-fPIC", "-o", out, so, src, L, "-Wl,--no-as-needed"};
    size_t n = 9;
    _cleanup_strv_ char **extra = NULL;
    for (const char *p = libs; p && *p;) {
        const char *sp = strchr(p, ' ');
        _cleanup_free_ char *one = sp ? xstrndup(p, (size_t)(sp - p)) : xstrdup(p);
        extra = dlc_strv_push(extra, one);
        p = sp ? sp + 1 : NULL;
    }
    for (size_t i = 0; extra && extra[i] && n < 15; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    struct dlc_error *err = NULL;
    if (dlc_mkdir_p(dir, 0755, &err) < 0 || dlc_spawn_wait(argv, false, &err) != 0)
        fail_msg("fixture: gcc %s failed", rel);
}

static DLC_UNUSED void fx_symlink(const char *root, const char *rel, const char *target)
{
    _cleanup_free_ char *path = dlc_path_join(root, rel);
    if (symlink(target, path) < 0)
        fail_msg("fixture: symlink %s: %s", rel, strerror(errno));
}

static DLC_UNUSED void fx_ldconfig(const char *root)
{
    fx_write(root, "/etc/ld.so.conf", FX_LIBDIR "\n");
    const char *argv[] = {"ldconfig", "-r", root, NULL};
    struct dlc_error *err = NULL;
    if (dlc_spawn_wait(argv, false, &err) != 0)
        fail_msg("fixture: ldconfig -r %s failed", root);
}

static DLC_UNUSED const char fx_proc_devices[] =
        "Character devices:\n  1 mem\n195 nvidia\n235 nvidia-uvm\n"
        "510 kfd\n\nBlock devices:\n  7 loop\n";

static DLC_UNUSED void fx_nvidia_gpu(const char *root, const char *bus, unsigned minor,
                                     const char *uuid)
{
    _cleanup_free_ char *rel = xasprintf("/proc/driver/nvidia/gpus/%s/information", bus);
    _cleanup_free_ char *info = xasprintf("Model: \t\t Tesla T4\nIRQ:   \t\t 36\n"
                                          "GPU UUID: \t %s\nVideo BIOS: \t 90.04.96.00.01\n"
                                          "Bus Type: \t PCIe\nBus Location: \t %s\n"
                                          "Device Minor: \t %u\nGPU Excluded:\t No\n",
                                          uuid, bus, minor);
    fx_write(root, rel, info);
    _cleanup_free_ char *node = xasprintf("/dev/nvidia%u", minor);
    fx_node(root, node, 'c', 195, minor);
}

/* The NVIDIA part: driver 999.88.77 with GPUs 0000:3b:00.0 (minor 0) and 0000:86:00.0
 * (minor 1), uvm major 235, libraries of that version plus libnvidia-cfg of another. */
static DLC_UNUSED void fx_nvidia(const char *root)
{
    fx_write(root, "/proc/devices", fx_proc_devices);
    fx_write(root, "/proc/driver/nvidia/version",
             "NVRM version: NVIDIA UNIX x86_64 Kernel Module  999.88.77  Wed Jan  1 00:00:00 "
             "UTC 2025\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n");
    fx_nvidia_gpu(root, "0000:86:00.0", 1, "GPU-bbbbbbbb-0000-0000-0000-000000000001");
    fx_nvidia_gpu(root, "0000:3b:00.0", 0, "GPU-aaaaaaaa-0000-0000-0000-000000000000");
    fx_node(root, "/dev/nvidiactl", 'c', 195, 255);
    fx_node(root, "/dev/nvidia-uvm", 'c', 235, 0);
    fx_node(root, "/dev/nvidia-uvm-tools", 'c', 235, 1);
    fx_lib(root, FX_LIBDIR "/libcuda.so.999.88.77", "libcuda.so.1", NULL);
    fx_lib(root, FX_LIBDIR "/libnvidia-ml.so.999.88.77", "libnvidia-ml.so.1", NULL);
    fx_lib(root, FX_LIBDIR "/libnvidia-opencl.so.999.88.77", "libnvidia-opencl.so.1", NULL);
    fx_lib(root, FX_LIBDIR "/libnvidia-cfg.so.999.00.00", "libnvidia-cfg.so.1", NULL);
    fx_write(root, "/usr/bin/nvidia-smi", "#!/bin/sh\necho fake\n");
    _cleanup_free_ char *smi = dlc_path_join(root, "/usr/bin/nvidia-smi");
    chmod(smi, 0755);
    fx_write(root, "/etc/OpenCL/vendors/nvidia.icd", "libnvidia-opencl.so.1\n");
}

/* OpenCL: fake.icd -> libfakecl.so.1 (needs libfakedep.so.2, data dirs beside it),
 * broken.icd -> a library that does not exist. */
static DLC_UNUSED void fx_opencl(const char *root)
{
    fx_lib(root, FX_LIBDIR "/libfakedep.so.2.0.0", "libfakedep.so.2", NULL);
    fx_symlink(root, FX_LIBDIR "/libfakedep.so", "libfakedep.so.2.0.0");
    fx_lib(root, FX_LIBDIR "/libfakecl.so.1.4.0", "libfakecl.so.1", "-lfakedep");
    fx_mkdir(root, FX_LIBDIR "/fakecl");
    fx_write(root, "/usr/share/fakecl/kernel.bc", "bitcode");
    fx_write(root, "/etc/OpenCL/vendors/fake.icd", "libfakecl.so.1.4.0\n");
    fx_write(root, "/etc/OpenCL/vendors/broken.icd", "libmissing.so.1\n");
}

/* A whole fake root: NVIDIA + OpenCL, with its ld.so.cache. Caller frees (unit_tmpdir_free). */
static DLC_UNUSED char *fx_root(void)
{
    char *root = unit_tmpdir();
    fx_nvidia(root);
    fx_opencl(root);
    fx_ldconfig(root);
    gpu_stat_node = fx_stat_node;
    return root;
}

static DLC_UNUSED void fx_tmpdir_freep(char **p)
{
    unit_tmpdir_free(*p);
}

/* Plan helpers for assertions. */
static DLC_UNUSED const struct runner_device *fx_plan_device(const struct gpu_plan *p,
                                                             const char *path)
{
    for (size_t i = 0; i < p->n_devices; i++)
        if (strcmp(p->devices[i].path, path) == 0)
            return &p->devices[i];
    return NULL;
}

static DLC_UNUSED const struct runner_bind *fx_plan_bind(const struct gpu_plan *p, const char *dst)
{
    for (size_t i = 0; i < p->n_binds; i++)
        if (strcmp(p->binds[i].destination, dst) == 0)
            return &p->binds[i];
    return NULL;
}

static DLC_UNUSED const struct runner_file *fx_plan_file(const struct gpu_plan *p, const char *path)
{
    for (size_t i = 0; i < p->n_files; i++)
        if (strcmp(p->files[i].path, path) == 0)
            return &p->files[i];
    return NULL;
}

static DLC_UNUSED const char *fx_plan_env(const struct gpu_plan *p, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; p->env && p->env[i]; i++)
        if (strncmp(p->env[i], key, kl) == 0 && p->env[i][kl] == '=')
            return p->env[i] + kl + 1;
    return NULL;
}

#endif
