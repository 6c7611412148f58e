/* backend-opencl-device.c: finding an OpenCL device and proving it works, one stage at a
 * time, so that a failure says which stage failed: the ICD files the loader reads, the
 * platforms, a device of an accepted type, the context, the kernel build (with its log),
 * and a self-test kernel run in a child process (pocl without `ld`, for one, aborts the
 * process on the first kernel launch; the child takes that abort instead of us). Also the
 * device listing of `tensor devices`. */
#ifdef TENSOR_WITH_OPENCL

#    include <dlfcn.h>
#    include <errno.h>
#    include <fcntl.h>
#    include <poll.h>
#    include <signal.h>
#    include <string.h>
#    include <sys/mman.h>
#    include <sys/stat.h>
#    include <sys/wait.h>
#    include <time.h>

#    include "backend-opencl.h"

#    define ETC_OPENCL_VENDORS "/etc/OpenCL/vendors"
#    define BUILD_LOG_MAX      8192
#    define SELFTEST_TIMEOUT_S 120
#    define SELFTEST_N         256
#    define STDERR_TAIL        600
#    ifndef CL_PLATFORM_NOT_FOUND_KHR
#        define CL_PLATFORM_NOT_FOUND_KHR -1001
#    endif

/* ---- errors -------------------------------------------------------------------------- */

static const struct {
    cl_int code;
    const char *name;
} cl_errors[] = {
        {CL_DEVICE_NOT_FOUND, "CL_DEVICE_NOT_FOUND"},
        {CL_DEVICE_NOT_AVAILABLE, "CL_DEVICE_NOT_AVAILABLE"},
        {CL_COMPILER_NOT_AVAILABLE, "CL_COMPILER_NOT_AVAILABLE"},
        {CL_MEM_OBJECT_ALLOCATION_FAILURE, "CL_MEM_OBJECT_ALLOCATION_FAILURE"},
        {CL_OUT_OF_RESOURCES, "CL_OUT_OF_RESOURCES"},
        {CL_OUT_OF_HOST_MEMORY, "CL_OUT_OF_HOST_MEMORY"},
        {CL_BUILD_PROGRAM_FAILURE, "CL_BUILD_PROGRAM_FAILURE"},
        {CL_MAP_FAILURE, "CL_MAP_FAILURE"},
        {CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST,
         "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST"},
        {CL_LINK_PROGRAM_FAILURE, "CL_LINK_PROGRAM_FAILURE"},
        {CL_INVALID_VALUE, "CL_INVALID_VALUE"},
        {CL_INVALID_DEVICE_TYPE, "CL_INVALID_DEVICE_TYPE"},
        {CL_INVALID_PLATFORM, "CL_INVALID_PLATFORM"},
        {CL_INVALID_DEVICE, "CL_INVALID_DEVICE"},
        {CL_INVALID_CONTEXT, "CL_INVALID_CONTEXT"},
        {CL_INVALID_COMMAND_QUEUE, "CL_INVALID_COMMAND_QUEUE"},
        {CL_INVALID_MEM_OBJECT, "CL_INVALID_MEM_OBJECT"},
        {CL_INVALID_BUILD_OPTIONS, "CL_INVALID_BUILD_OPTIONS"},
        {CL_INVALID_PROGRAM, "CL_INVALID_PROGRAM"},
        {CL_INVALID_PROGRAM_EXECUTABLE, "CL_INVALID_PROGRAM_EXECUTABLE"},
        {CL_INVALID_KERNEL_NAME, "CL_INVALID_KERNEL_NAME"},
        {CL_INVALID_KERNEL, "CL_INVALID_KERNEL"},
        {CL_INVALID_ARG_INDEX, "CL_INVALID_ARG_INDEX"},
        {CL_INVALID_ARG_VALUE, "CL_INVALID_ARG_VALUE"},
        {CL_INVALID_ARG_SIZE, "CL_INVALID_ARG_SIZE"},
        {CL_INVALID_KERNEL_ARGS, "CL_INVALID_KERNEL_ARGS"},
        {CL_INVALID_WORK_DIMENSION, "CL_INVALID_WORK_DIMENSION"},
        {CL_INVALID_WORK_GROUP_SIZE, "CL_INVALID_WORK_GROUP_SIZE"},
        {CL_INVALID_WORK_ITEM_SIZE, "CL_INVALID_WORK_ITEM_SIZE"},
        {CL_INVALID_GLOBAL_OFFSET, "CL_INVALID_GLOBAL_OFFSET"},
        {CL_INVALID_EVENT_WAIT_LIST, "CL_INVALID_EVENT_WAIT_LIST"},
        {CL_INVALID_OPERATION, "CL_INVALID_OPERATION"},
        {CL_INVALID_BUFFER_SIZE, "CL_INVALID_BUFFER_SIZE"},
        {CL_INVALID_GLOBAL_WORK_SIZE, "CL_INVALID_GLOBAL_WORK_SIZE"},
        {CL_PLATFORM_NOT_FOUND_KHR, "CL_PLATFORM_NOT_FOUND_KHR"},
};

const char *tensor__ocl_strerror(cl_int code, char *buf, size_t len)
{
    for (size_t i = 0; i < DLC_ARRAY_SIZE(cl_errors); i++)
        if (cl_errors[i].code == code)
            return cl_errors[i].name;
    snprintf(buf, len, "CL error %d", (int)code);
    return buf;
}

static int errno_of(cl_int code)
{
    switch (code) {
    case CL_OUT_OF_HOST_MEMORY:
    case CL_MEM_OBJECT_ALLOCATION_FAILURE:
    case CL_INVALID_BUFFER_SIZE:
        return ENOMEM;
    case CL_DEVICE_NOT_FOUND:
    case CL_DEVICE_NOT_AVAILABLE:
    case CL_PLATFORM_NOT_FOUND_KHR:
        return ENODEV;
    default:
        return EIO;
    }
}

int tensor__ocl_fail(struct dlc_error **err, cl_int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *what = xvasprintf(fmt, ap);
    va_end(ap);
    char buf[32];
    return dlc_error_set(err, errno_of(code), "%s: %s (%d)", what,
                         tensor__ocl_strerror(code, buf, sizeof(buf)), (int)code);
}

/* ---- queries ------------------------------------------------------------------------- */

static bool ocl_used; /* this process has called into OpenCL: no self-test child after */

void tensor__ocl_mark_used(void)
{
    ocl_used = true;
}

static char *device_string(cl_device_id d, cl_device_info what)
{
    size_t n = 0;
    if (clGetDeviceInfo(d, what, 0, NULL, &n) != CL_SUCCESS || n == 0)
        return xstrdup("?");
    char *s = xcalloc(1, n + 1);
    if (clGetDeviceInfo(d, what, n, s, NULL) != CL_SUCCESS)
        s[0] = '\0';
    return s;
}

static char *platform_string(cl_platform_id p, cl_platform_info what)
{
    size_t n = 0;
    if (clGetPlatformInfo(p, what, 0, NULL, &n) != CL_SUCCESS || n == 0)
        return xstrdup("?");
    char *s = xcalloc(1, n + 1);
    if (clGetPlatformInfo(p, what, n, s, NULL) != CL_SUCCESS)
        s[0] = '\0';
    return s;
}

#    define DEVICE_VALUE(d, what, var) (void)clGetDeviceInfo((d), (what), sizeof(var), &(var), NULL)

static void device_info(cl_platform_id p, cl_device_id d, int pi, int di,
                        struct ocl_device_info *info)
{
    *info = (struct ocl_device_info){.platform_index = pi, .device_index = di};
    info->platform_name = platform_string(p, CL_PLATFORM_NAME);
    info->platform_version = platform_string(p, CL_PLATFORM_VERSION);
    info->name = device_string(d, CL_DEVICE_NAME);
    info->vendor = device_string(d, CL_DEVICE_VENDOR);
    info->version = device_string(d, CL_DEVICE_VERSION);
    info->driver = device_string(d, CL_DRIVER_VERSION);
    info->c_version = device_string(d, CL_DEVICE_OPENCL_C_VERSION);
    DEVICE_VALUE(d, CL_DEVICE_TYPE, info->type);
    DEVICE_VALUE(d, CL_DEVICE_GLOBAL_MEM_SIZE, info->global_mem);
    DEVICE_VALUE(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, info->max_alloc);
    DEVICE_VALUE(d, CL_DEVICE_LOCAL_MEM_SIZE, info->local_mem);
    DEVICE_VALUE(d, CL_DEVICE_MAX_COMPUTE_UNITS, info->compute_units);
    DEVICE_VALUE(d, CL_DEVICE_MAX_CLOCK_FREQUENCY, info->clock_mhz);
    DEVICE_VALUE(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, info->max_wg);
    cl_bool available = CL_FALSE, compiler = CL_FALSE;
    DEVICE_VALUE(d, CL_DEVICE_AVAILABLE, available);
    DEVICE_VALUE(d, CL_DEVICE_COMPILER_AVAILABLE, compiler);
    info->available = available, info->compiler = compiler;
    _cleanup_free_ char *ext = device_string(d, CL_DEVICE_EXTENSIONS);
    info->fp64 = strstr(ext, "cl_khr_fp64") != NULL;
    cl_device_fp_config fp = 0;
    DEVICE_VALUE(d, CL_DEVICE_SINGLE_FP_CONFIG, fp);
    info->exact_div_sqrt = (fp & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT) != 0;
}

void tensor__ocl_device_info_release(struct ocl_device_info *info)
{
    if (info == NULL)
        return;
    free(info->platform_name);
    free(info->platform_version);
    free(info->name);
    free(info->vendor);
    free(info->version);
    free(info->driver);
    free(info->c_version);
    *info = (struct ocl_device_info){0};
}

static const char *type_name(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU)
        return "GPU";
    if (t & CL_DEVICE_TYPE_ACCELERATOR)
        return "accelerator";
    if (t & CL_DEVICE_TYPE_CPU)
        return "CPU";
    return "custom";
}

/* ---- the ICD stage: which vendor files the loader (ocl-icd) reads ---------------------- */

/* ocl-icd's rules (doc/libOpenCL.7): OCL_ICD_VENDORS is a directory, one .icd file, or a
 * library; else OPENCL_VENDOR_PATH, else /etc/OpenCL/vendors. */
static void icd_location(const char **ret_dir, const char **ret_file, const char **ret_lib,
                         const char **ret_from)
{
    const char *v = getenv("OCL_ICD_VENDORS");
    *ret_dir = *ret_file = *ret_lib = NULL;
    if (v != NULL && *v != '\0') {
        *ret_from = " (from OCL_ICD_VENDORS)";
        if (dlc_is_dir(v))
            *ret_dir = v;
        else if (dlc_endswith(v, ".icd"))
            *ret_file = v;
        else
            *ret_lib = v;
        return;
    }
    v = getenv("OPENCL_VENDOR_PATH");
    *ret_from = v != NULL && *v != '\0' ? " (from OPENCL_VENDOR_PATH)" : "";
    *ret_dir = v != NULL && *v != '\0' ? v : ETC_OPENCL_VENDORS;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The .icd files the loader would read, sorted (full paths). */
static char **icd_files(const char *dir, const char *file)
{
    char **v = NULL;
    if (file != NULL)
        return dlc_path_exists(file) ? dlc_strv_push(NULL, file) : NULL;
    _cleanup_dir_ DIR *d = opendir(dir);
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
        if (dlc_endswith(e->d_name, ".icd")) {
            _cleanup_free_ char *p = dlc_path_join(dir, e->d_name);
            v = dlc_strv_push(v, p);
        }
    }
    if (v != NULL)
        qsort(v, dlc_strv_len(v), sizeof(*v), cmp_str);
    return v;
}

/* The library an .icd file names: its first line. */
static char *icd_library(const char *path)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    struct dlc_error *e = NULL;
    if (dlc_read_file(path, 4096, &buf, &len, &e) < 0) {
        dlc_error_free(&e);
        return xstrdup("(unreadable)");
    }
    return xstrndup(buf, strcspn(buf, "\r\n"));
}

/* "pocl.icd -> libpocl.so.2.10.0" for each file, with whether the library loads when
 * check is set (dlopen: only on the error path, it runs the library's constructors). */
static void icd_describe(struct dlc_strbuf *out, char *const *files, bool check)
{
    for (size_t i = 0; files != NULL && files[i] != NULL; i++) {
        _cleanup_free_ char *lib = icd_library(files[i]);
        dlc_strbuf_appendf(out, "%s%s -> %s", i ? ", " : "", dlc_path_basename(files[i]), lib);
        if (!check)
            continue;
        void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
        if (h == NULL) {
            const char *why = dlerror();
            dlc_strbuf_appendf(out, " (cannot be loaded: %s)", why ? why : "?");
        } else {
            dlc_strbuf_append(out, " (loads, but offers no platform)");
            dlclose(h);
        }
    }
}

static int no_platform(cl_int rc, struct dlc_error **err)
{
    const char *dir, *file, *lib, *from;
    icd_location(&dir, &file, &lib, &from);
    char buf[32];
    const char *code = tensor__ocl_strerror(rc, buf, sizeof(buf));
    if (lib != NULL)
        return dlc_error_set(err, ENODEV,
                             "platform: the OpenCL loader found no platform (%s) in the "
                             "library %s named by OCL_ICD_VENDORS",
                             code, lib);
    _cleanup_strv_ char **files = icd_files(dir, file);
    if (files == NULL)
        return dlc_error_set(err, ENODEV,
                             "ICD: no OpenCL driver is installed: no *.icd file in %s%s (in a "
                             "container, `dlc run --gpus` passes the host's GPU and its "
                             "OpenCL driver through)",
                             file ? file : dir, from);
    _cleanup_strbuf_ struct dlc_strbuf sb = DLC_STRBUF_INIT;
    icd_describe(&sb, files, true);
    return dlc_error_set(err, ENODEV,
                         "platform: the OpenCL loader found no platform (%s); ICD files in "
                         "%s%s: %s",
                         code, file ? file : dir, from, dlc_strbuf_str(&sb));
}

/* ---- platforms and devices ----------------------------------------------------------- */

static int get_platforms(cl_platform_id **ret, cl_uint *ret_n, struct dlc_error **err)
{
    tensor__ocl_mark_used();
    cl_uint n = 0;
    cl_int rc = clGetPlatformIDs(0, NULL, &n);
    if (rc == CL_PLATFORM_NOT_FOUND_KHR || (rc == CL_SUCCESS && n == 0))
        return no_platform(CL_PLATFORM_NOT_FOUND_KHR, err);
    if (rc != CL_SUCCESS)
        return tensor__ocl_fail(err, rc, "platform: clGetPlatformIDs");
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of handles */
    cl_platform_id *p = xcalloc(n, sizeof(*p));
    rc = clGetPlatformIDs(n, p, &n);
    if (rc != CL_SUCCESS) {
        free(p);
        return tensor__ocl_fail(err, rc, "platform: clGetPlatformIDs");
    }
    *ret = p;
    *ret_n = n;
    return 0;
}

/* Every device of platform p (none is not an error here). */
static cl_device_id *get_devices(cl_platform_id p, cl_uint *ret_n)
{
    cl_uint n = 0;
    *ret_n = 0;
    if (clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 0, NULL, &n) != CL_SUCCESS || n == 0)
        return NULL;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of handles */
    cl_device_id *d = xcalloc(n, sizeof(*d));
    if (clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, n, d, &n) != CL_SUCCESS) {
        free(d);
        return NULL;
    }
    *ret_n = n;
    return d;
}

bool tensor__ocl_env_flag(const char *name)
{
    const char *v = getenv(name);
    bool on = false;
    struct dlc_error *e = NULL;
    if (v != NULL && *v != '\0' && dlc_parse_bool(v, name, &on, &e) < 0) {
        dlc_warn("%s, ignoring", e->msg);
        dlc_error_free(&e);
    }
    return on;
}

/* Lower is better; -1: not acceptable. */
static int type_rank(cl_device_type t, bool gpu_only)
{
    if (t & CL_DEVICE_TYPE_GPU)
        return 0;
    if (t & CL_DEVICE_TYPE_ACCELERATOR)
        return 1;
    if (gpu_only && !tensor__ocl_env_flag("DLC_OPENCL_ALLOW_CPU"))
        return -1;
    return t & CL_DEVICE_TYPE_CPU ? 2 : 3;
}

/* A candidate seen while choosing. */
struct seen {
    cl_platform_id platform;
    cl_device_id device;
    struct ocl_device_info info;
    int rank;
};

static void seen_free(struct seen *s, size_t n)
{
    for (size_t i = 0; s != NULL && i < n; i++)
        tensor__ocl_device_info_release(&s[i].info);
    free(s);
}

static struct seen *collect(cl_platform_id *plats, cl_uint np, bool gpu_only, size_t *ret_n)
{
    struct seen *s = NULL;
    size_t n = 0;
    for (cl_uint p = 0; p < np; p++) {
        cl_uint nd = 0;
        _cleanup_free_ cl_device_id *devs = get_devices(plats[p], &nd);
        for (cl_uint d = 0; d < nd; d++) {
            s = xrealloc(s, (n + 1) * sizeof(*s));
            s[n].platform = plats[p];
            s[n].device = devs[d];
            device_info(plats[p], devs[d], (int)p, (int)d, &s[n].info);
            s[n].rank = type_rank(s[n].info.type, gpu_only);
            n++;
        }
    }
    *ret_n = n;
    return s;
}

/* DLC_OPENCL_DEVICE=P.D: -1 when unset, else the index into s (EINVAL when malformed or
 * absent). */
static int requested(const struct seen *s, size_t n, ssize_t *ret, struct dlc_error **err)
{
    const char *v = getenv("DLC_OPENCL_DEVICE");
    *ret = -1;
    if (v == NULL || *v == '\0')
        return 0;
    const char *dot = strchr(v, '.');
    _cleanup_free_ char *ps = dot ? xstrndup(v, (size_t)(dot - v)) : NULL;
    int pi = 0, di = 0;
    if (dot == NULL || dlc_parse_int(ps, "DLC_OPENCL_DEVICE platform", 0, 1 << 16, &pi, err) < 0 ||
        dlc_parse_int(dot + 1, "DLC_OPENCL_DEVICE device", 0, 1 << 16, &di, err) < 0) {
        dlc_error_free(err);
        return dlc_error_set(err, EINVAL,
                             "device: DLC_OPENCL_DEVICE='%s' is not <platform>.<device> (as "
                             "`tensor devices` numbers them, e.g. 0.0)",
                             v);
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i].info.platform_index == pi && s[i].info.device_index == di) {
            *ret = (ssize_t)i;
            return 0;
        }
    }
    return dlc_error_set(err, ENODEV, "device: DLC_OPENCL_DEVICE=%s: no such OpenCL device", v);
}

static bool usable(const struct seen *s)
{
    return s->rank >= 0 && s->info.available && s->info.compiler;
}

static int none_usable(const struct seen *s, size_t n, bool gpu_only, struct dlc_error **err)
{
    _cleanup_strbuf_ struct dlc_strbuf sb = DLC_STRBUF_INIT;
    for (size_t i = 0; i < n; i++)
        dlc_strbuf_appendf(&sb, "%s'%s' (%s%s) on '%s'", i ? ", " : "", s[i].info.name,
                           type_name(s[i].info.type),
                           !s[i].info.available  ? ", not available"
                           : !s[i].info.compiler ? ", no compiler"
                                                 : "",
                           s[i].info.platform_name);
    if (gpu_only)
        return dlc_error_set(err, ENODEV,
                             "device: no usable OpenCL device of type GPU or accelerator "
                             "(found: %s); to train on a CPU OpenCL device such as pocl, set "
                             "DLC_OPENCL_ALLOW_CPU=1 or use device=opencl",
                             dlc_strbuf_str(&sb));
    return dlc_error_set(err, ENODEV, "device: no usable OpenCL device (found: %s)",
                         dlc_strbuf_str(&sb));
}

/* Why a vendor's platform may see no device: its device nodes are missing or not
 * openable (not passed into the container, not allowed by the device cgroup, or not in the
 * node's group). Appends "; /dev/nvidiactl: No such file or directory" and the like. */
static void node_hints(struct dlc_strbuf *sb, const char *platform)
{
    static const struct {
        const char *vendor;
        const char *nodes[3];
    } vendors[] = {
            {"NVIDIA", {"/dev/nvidiactl", "/dev/nvidia0", "/dev/nvidia-uvm"}},
            {"AMD", {"/dev/kfd", "/dev/dri/renderD128", NULL}},
            {"Intel", {"/dev/dri/renderD128", NULL, NULL}},
    };
    for (size_t v = 0; v < DLC_ARRAY_SIZE(vendors); v++) {
        if (strstr(platform, vendors[v].vendor) == NULL)
            continue;
        for (size_t i = 0; i < 3 && vendors[v].nodes[i] != NULL; i++) {
            int fd = open(vendors[v].nodes[i], O_RDWR | O_CLOEXEC | O_NOCTTY);
            if (fd < 0)
                dlc_strbuf_appendf(sb, "; %s: %m", vendors[v].nodes[i]);
            else
                close(fd);
        }
    }
}

static int no_devices(cl_platform_id *plats, cl_uint np, struct dlc_error **err)
{
    _cleanup_strbuf_ struct dlc_strbuf sb = DLC_STRBUF_INIT;
    bool pocl = false;
    for (cl_uint p = 0; p < np; p++) {
        _cleanup_free_ char *name = platform_string(plats[p], CL_PLATFORM_NAME);
        dlc_strbuf_appendf(&sb, "%s'%s'", p ? ", " : "", name);
        pocl |= strstr(name, "Portable Computing Language") != NULL;
        node_hints(&sb, name);
    }
    return dlc_error_set(err, ENODEV, "device: the OpenCL platforms report no device at all: %s%s",
                         dlc_strbuf_str(&sb),
                         pocl ? " (pocl reports none when its kernel cache directory is not "
                                "writable: set POCL_CACHE_DIR to a writable directory)"
                              : "");
}

/* The best usable device: the requested one, else the lowest rank (GPUs first). */
static ssize_t pick(const struct seen *s, size_t n)
{
    ssize_t best = -1;
    for (size_t i = 0; i < n; i++)
        if (usable(&s[i]) && (best < 0 || s[i].rank < s[best].rank))
            best = (ssize_t)i;
    return best;
}

int tensor__ocl_choose(bool gpu_only, cl_platform_id *ret_platform, cl_device_id *ret_device,
                       struct ocl_device_info *ret_info, struct dlc_error **err)
{
    _cleanup_free_ cl_platform_id *plats = NULL;
    cl_uint np = 0;
    if (get_platforms(&plats, &np, err) < 0)
        return -1;
    size_t n = 0;
    struct seen *s = collect(plats, np, gpu_only, &n);
    ssize_t i = -1;
    int r = 0;
    if (n == 0)
        r = no_devices(plats, np, err);
    else if (requested(s, n, &i, err) < 0)
        r = -1;
    else if (i >= 0)
        r = usable(&s[i]) ? 0 : none_usable(&s[i], 1, gpu_only, err);
    else if ((i = pick(s, n)) < 0)
        r = none_usable(s, n, gpu_only, err);
    if (r == 0) {
        *ret_platform = s[i].platform;
        *ret_device = s[i].device;
        *ret_info = s[i].info;
        s[i].info = (struct ocl_device_info){0};
    }
    seen_free(s, n);
    return r;
}

/* ---- context and program ------------------------------------------------------------- */

int tensor__ocl_open_context(struct ocl_ctx *c, struct dlc_error **err)
{
    cl_int rc = CL_SUCCESS;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)c->platform, 0};
    c->context = clCreateContext(props, 1, &c->device, NULL, NULL, &rc);
    if (c->context == NULL)
        return tensor__ocl_fail(err, rc, "context: clCreateContext on '%s'", c->info.name);
    c->queue = clCreateCommandQueue(c->context, c->device, 0, &rc);
    if (c->queue == NULL)
        return tensor__ocl_fail(err, rc, "context: clCreateCommandQueue on '%s'", c->info.name);
    return 0;
}

static char *build_log(cl_program p, cl_device_id d)
{
    size_t n = 0;
    if (clGetProgramBuildInfo(p, d, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) != CL_SUCCESS || n == 0)
        return xstrdup("");
    char *log = xcalloc(1, n + 1);
    if (clGetProgramBuildInfo(p, d, CL_PROGRAM_BUILD_LOG, n, log, NULL) != CL_SUCCESS)
        log[0] = '\0';
    if (strlen(log) > BUILD_LOG_MAX)
        memcpy(log + BUILD_LOG_MAX - 4, "...", 4);
    return log;
}

int tensor__ocl_build(struct ocl_ctx *c, const char *src, size_t len, const char *options,
                      cl_program *ret, struct dlc_error **err)
{
    cl_int rc = CL_SUCCESS;
    cl_program p = clCreateProgramWithSource(c->context, 1, &src, &len, &rc);
    if (p == NULL)
        return tensor__ocl_fail(err, rc, "kernel build: clCreateProgramWithSource");
    rc = clBuildProgram(p, 1, &c->device, options, NULL, NULL);
    _cleanup_free_ char *log = build_log(p, c->device);
    if (rc != CL_SUCCESS) {
        clReleaseProgram(p);
        char buf[32];
        return dlc_error_set(err, EINVAL,
                             "kernel build: clBuildProgram for '%s' failed: %s (%d); build "
                             "log:\n%s",
                             c->info.name, tensor__ocl_strerror(rc, buf, sizeof(buf)), (int)rc,
                             *log ? log : "(empty)");
    }
    if (log[strspn(log, " \t\r\n")] != '\0')
        dlc_debug("opencl: build log for '%s':\n%s", c->info.name, log);
    *ret = p;
    return 0;
}

/* ---- the self-test ------------------------------------------------------------------- */

static int selftest_kernel(struct ocl_ctx *c, cl_kernel k, struct dlc_error **err)
{
    float host[SELFTEST_N], want[SELFTEST_N];
    for (int i = 0; i < SELFTEST_N; i++)
        host[i] = (float)i * 0.5f;
    for (int i = 0; i < SELFTEST_N; i++)
        want[i] = 3.0f * host[i / 64 * 64 + 63 - i % 64] + (float)i;
    cl_int rc = CL_SUCCESS;
    cl_mem m = clCreateBuffer(c->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof(host),
                              host, &rc);
    if (m == NULL)
        return tensor__ocl_fail(err, rc, "self-test: clCreateBuffer");
    float a = 3.0f;
    size_t global = SELFTEST_N, local = 64;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): cl_mem is a handle, passed by value */
    if ((rc = clSetKernelArg(k, 0, sizeof(m), &m)) != CL_SUCCESS ||
        (rc = clSetKernelArg(k, 1, sizeof(a), &a)) != CL_SUCCESS ||
        (rc = clEnqueueNDRangeKernel(c->queue, k, 1, NULL, &global, &local, 0, NULL, NULL)) !=
                CL_SUCCESS ||
        (rc = clEnqueueReadBuffer(c->queue, m, CL_TRUE, 0, sizeof(host), host, 0, NULL, NULL)) !=
                CL_SUCCESS) {
        clReleaseMemObject(m);
        return tensor__ocl_fail(err, rc, "self-test: running the test kernel on '%s'",
                                c->info.name);
    }
    clReleaseMemObject(m);
    for (int i = 0; i < SELFTEST_N; i++)
        if (host[i] != want[i])
            return dlc_error_set(err, EIO,
                                 "self-test: the test kernel computed wrong results on '%s' "
                                 "(element %d: %g, want %g)",
                                 c->info.name, i, (double)host[i], (double)want[i]);
    return 0;
}

/* Chooses the device and runs the self-test kernel on it in this process. report, when
 * >= 0, receives "device <name>" once the device is known (for the parent). */
static int selftest_here(bool gpu_only, int report, struct dlc_error **err)
{
    struct ocl_ctx c = {0};
    cl_program prog = NULL;
    cl_kernel k = NULL;
    int r = tensor__ocl_choose(gpu_only, &c.platform, &c.device, &c.info, err);
    if (r == 0 && report >= 0) {
        _cleanup_free_ char *line = xasprintf("device %s\n", c.info.name);
        (void)!write(report, line, strlen(line));
    }
    if (r == 0)
        r = tensor__ocl_open_context(&c, err);
    if (r == 0)
        r = tensor__ocl_build(&c, tensor__ocl_selftest_src, tensor__ocl_selftest_len, "", &prog,
                              err);
    cl_int rc = CL_SUCCESS;
    if (r == 0 && (k = clCreateKernel(prog, "selftest", &rc)) == NULL)
        r = tensor__ocl_fail(err, rc, "self-test: clCreateKernel");
    if (r == 0)
        r = selftest_kernel(&c, k, err);
    if (k != NULL)
        clReleaseKernel(k);
    if (prog != NULL)
        clReleaseProgram(prog);
    if (c.queue != NULL)
        clReleaseCommandQueue(c.queue);
    if (c.context != NULL)
        clReleaseContext(c.context);
    tensor__ocl_device_info_release(&c.info);
    return r;
}

/* The child compiles and links the test kernel afresh: a driver's kernel cache (pocl's
 * kcache, NVIDIA's ComputeCache) would otherwise hide a compiler or linker that no longer
 * works, until the first kernel that is not cached aborts the training. cache_dir, a
 * fresh directory removed afterwards, becomes pocl's cache (may be NULL). */
DLC_NORETURN static void selftest_child(bool gpu_only, int report, int log_fd,
                                        const char *cache_dir)
{
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    if (cache_dir != NULL)
        setenv("POCL_CACHE_DIR", cache_dir, 1);
    setenv("CUDA_CACHE_DISABLE", "1", 1);
    struct dlc_error *e = NULL;
    int r = selftest_here(gpu_only, report, &e);
    _cleanup_free_ char *line = r < 0 ? xasprintf("error %d %s", e->code, e->msg) : xstrdup("ok");
    (void)!write(report, line, strlen(line));
    _exit(r < 0 ? 1 : 0);
}

/* Reads the child's report until EOF or the deadline; false on timeout. */
static bool read_report(int fd, int timeout_s, struct dlc_strbuf *out)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = (long)timeout_s * 1000 -
                    ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0)
            return false;
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0;
        char buf[1024];
        ssize_t got = read(fd, buf, sizeof(buf));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return true;
        dlc_strbuf_append_len(out, buf, (size_t)got);
    }
}

/* The end of what the driver printed, its lines joined with "; ". */
static char *output_tail(int fd)
{
    off_t size = lseek(fd, 0, SEEK_END);
    if (size <= 0)
        return xstrdup("");
    off_t from = size > STDERR_TAIL ? size - STDERR_TAIL : 0;
    char buf[STDERR_TAIL + 1];
    ssize_t n = pread(fd, buf, (size_t)(size - from), from);
    buf[n > 0 ? n : 0] = '\0';
    _cleanup_strbuf_ struct dlc_strbuf sb = DLC_STRBUF_INIT;
    for (char *line = buf; *line != '\0';) {
        size_t len = strcspn(line, "\r\n");
        if (len > 0)
            dlc_strbuf_appendf(&sb, "%s%.*s", sb.len ? "; " : "", (int)len, line);
        line += len + (line[len] != '\0');
    }
    return dlc_strbuf_detach(&sb, NULL);
}

static int child_verdict(int status, const char *report, int log_fd, struct dlc_error **err)
{
    const char *last = strrchr(report, '\n');
    last = last ? last + 1 : report;
    const char *dev = dlc_startswith(report, "device ");
    _cleanup_free_ char *name = dev ? xstrndup(dev, strcspn(dev, "\n")) : xstrdup("the device");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && dlc_streq(last, "ok"))
        return 0;
    const char *msg = dlc_startswith(last, "error ");
    if (WIFEXITED(status) && msg != NULL) {
        char *end = NULL;
        long code = strtol(msg, &end, 10);
        return dlc_error_set(err, (int)code, "%s", end && *end == ' ' ? end + 1 : msg);
    }
    _cleanup_free_ char *tail = output_tail(log_fd);
    if (WIFSIGNALED(status))
        return dlc_error_set(err, EIO,
                             "self-test: the OpenCL driver crashed (signal %d, %s) building or "
                             "running a test kernel on '%s'%s%s",
                             WTERMSIG(status), strsignal(WTERMSIG(status)), name,
                             *tail ? "; it printed: " : "", tail);
    return dlc_error_set(err, EIO, "self-test: the test process exited with status %d%s%s",
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                         *tail ? "; it printed: " : "", tail);
}

/* Waits for the child (killing it past DLC_OPENCL_SELFTEST_TIMEOUT seconds) and judges. */
static int selftest_wait(pid_t pid, int rd, int log_fd, struct dlc_error **err)
{
    _cleanup_strbuf_ struct dlc_strbuf report = DLC_STRBUF_INIT;
    int timeout = SELFTEST_TIMEOUT_S;
    const char *env = getenv("DLC_OPENCL_SELFTEST_TIMEOUT");
    struct dlc_error *e = NULL;
    if (env && dlc_parse_int(env, "DLC_OPENCL_SELFTEST_TIMEOUT", 1, 86400, &timeout, &e) < 0) {
        dlc_warn("%s, ignoring", e->msg);
        dlc_error_free(&e);
    }
    bool done = read_report(rd, timeout, &report);
    if (!done)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!done)
        return dlc_error_set(err, EIO, "self-test: no answer from the OpenCL driver after %d s",
                             timeout);
    return child_verdict(status, dlc_strbuf_str(&report), log_fd, err);
}

static char *fresh_cache_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    char *dir = xasprintf("%s/dlc-opencl-selftest-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) != NULL)
        return dir;
    dlc_debug("opencl: self-test: mkdtemp %s: %m, using the driver's cache", dir);
    free(dir);
    return NULL;
}

static int selftest_forked(bool gpu_only, struct dlc_error **err)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return dlc_error_set_errno(err, EIO, "self-test: pipe");
    _cleanup_close_ int rd = pipefd[0], wr = pipefd[1];
    _cleanup_close_ int log_fd = memfd_create("dlc-opencl-selftest", MFD_CLOEXEC);
    if (log_fd < 0)
        return dlc_error_set_errno(err, EIO, "self-test: memfd_create");
    _cleanup_free_ char *cache_dir = fresh_cache_dir();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return dlc_error_set_errno(err, EIO, "self-test: fork");
    if (pid == 0)
        selftest_child(gpu_only, wr, log_fd, cache_dir);
    close(TAKE_FD(wr));
    int r = selftest_wait(pid, rd, log_fd, err);
    struct dlc_error *e = NULL;
    if (cache_dir != NULL && dlc_rm_rf(cache_dir, &e) < 0) {
        dlc_warn("opencl: self-test: %s, ignoring", e->msg);
        dlc_error_free(&e);
    }
    return r;
}

int tensor__ocl_selftest(bool gpu_only, struct dlc_error **err)
{
    if (ocl_used)
        return selftest_here(gpu_only, -1, err);
    return selftest_forked(gpu_only, err);
}

/* ---- the listing --------------------------------------------------------------------- */

static void list_device(struct dlc_strbuf *out, const struct ocl_device_info *i, bool in_use)
{
    char mem[32], alloc[32];
    dlc_strbuf_appendf(out,
                       "    device %d.%d: %s: %s, %s memory (max allocation %s), %u compute "
                       "units, %u MHz, driver %s, %s%s%s\n",
                       i->platform_index, i->device_index, i->name, type_name(i->type),
                       dlc_format_size(i->global_mem, mem, sizeof(mem)),
                       dlc_format_size(i->max_alloc, alloc, sizeof(alloc)), i->compute_units,
                       i->clock_mhz, i->driver, i->c_version, i->fp64 ? ", fp64" : "",
                       in_use ? " [in use]" : "");
}

static void list_icd(struct dlc_strbuf *out)
{
    const char *dir, *file, *lib, *from;
    icd_location(&dir, &file, &lib, &from);
    if (lib != NULL) {
        dlc_strbuf_appendf(out, "  OpenCL ICD: the library %s%s\n", lib, from);
        return;
    }
    _cleanup_strv_ char **files = icd_files(dir, file);
    dlc_strbuf_appendf(out, "  OpenCL ICD files in %s%s: ", file ? file : dir, from);
    if (files == NULL)
        dlc_strbuf_append(out, "none");
    icd_describe(out, files, false);
    dlc_strbuf_append(out, "\n");
}

void tensor__ocl_list(struct dlc_strbuf *out, cl_device_id in_use)
{
    list_icd(out);
    _cleanup_free_ cl_platform_id *plats = NULL;
    cl_uint np = 0;
    struct dlc_error *e = NULL;
    if (get_platforms(&plats, &np, &e) < 0) {
        dlc_strbuf_appendf(out, "  OpenCL platforms: none (%s)\n", e->msg);
        dlc_error_free(&e);
        return;
    }
    for (cl_uint p = 0; p < np; p++) {
        _cleanup_free_ char *name = platform_string(plats[p], CL_PLATFORM_NAME);
        _cleanup_free_ char *vendor = platform_string(plats[p], CL_PLATFORM_VENDOR);
        _cleanup_free_ char *version = platform_string(plats[p], CL_PLATFORM_VERSION);
        dlc_strbuf_appendf(out, "  platform %u: %s (%s), %s\n", p, name, vendor, version);
        cl_uint nd = 0;
        _cleanup_free_ cl_device_id *devs = get_devices(plats[p], &nd);
        if (nd == 0)
            dlc_strbuf_append(out, "    no devices\n");
        for (cl_uint d = 0; d < nd; d++) {
            struct ocl_device_info info;
            device_info(plats[p], devs[d], (int)p, (int)d, &info);
            list_device(out, &info, devs[d] == in_use);
            tensor__ocl_device_info_release(&info);
        }
    }
}

#endif /* TENSOR_WITH_OPENCL */
