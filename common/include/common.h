/* common.h: the helpers every dlc component uses (the tensor runtime included).
 *
 * Usage:
 *
 *     int load(const char *path, struct dlc_error **err)
 *     {
 *         _cleanup_free_ char *buf = NULL;
 *         size_t len = 0;
 *         if (dlc_read_file(path, 1 << 20, &buf, &len, err) < 0)
 *             return dlc_error_wrap(err, "load %s", path);
 *         json_auto_t *j = dlc_json_loadb(buf, len, path, err);
 *         if (j == NULL)
 *             return -1;
 *         ...
 *     }
 *
 *     struct dlc_error *err = NULL;
 *     if (load("x.json", &err) < 0) {
 *         fprintf(stderr, "dlc: %s\n", err->msg);   // "load x.json: x.json:3:7: ..."
 *         dlc_error_free(&err);
 *     }
 *
 * Errors: functions return int (<0 on failure) or a pointer (NULL on failure) and set
 * *err exactly once at the point of failure; callers add context with dlc_error_wrap().
 * Functions named x* (xmalloc, xstrdup, xasprintf) abort on out-of-memory: they are for
 * small internal allocations only; sizes from outside go through dlc_size_mul/add first.
 */
#ifndef DLC_COMMON_H
#define DLC_COMMON_H

#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include <jansson.h>

/* ---- attributes, assertions ------------------------------------------------------- */

#define DLC_PRINTF(a, b)  __attribute__((format(printf, a, b)))
#define DLC_NORETURN      __attribute__((noreturn))
#define DLC_UNUSED        __attribute__((unused))
#define DLC_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

DLC_NORETURN void dlc__assert_fail(const char *expr, const char *file, int line, const char *func);

/* Always on (unlike assert()): for programming errors only, never for input. */
#define DLC_ASSERT(expr)                                           \
    do {                                                           \
        if (__builtin_expect(!(expr), 0))                          \
            dlc__assert_fail(#expr, __FILE__, __LINE__, __func__); \
    } while (0)

/* ---- errors ------------------------------------------------------------------------ */

struct dlc_error {
    int code;  /* an errno value: ENOENT, EEXIST, EINVAL, EPROTO, EIO, ... */
    char *msg; /* one line, no trailing newline, no "dlc: " prefix */
};

/* Sets *err (which must be NULL: a pending error is never overwritten; if it is not NULL the
 * new message is dropped) and returns -1. err may be NULL to discard. */
int dlc_error_set(struct dlc_error **err, int code, const char *fmt, ...) DLC_PRINTF(3, 4);
/* Like dlc_error_set, appending ": <strerror(code)>". */
int dlc_error_set_errno(struct dlc_error **err, int code, const char *fmt, ...) DLC_PRINTF(3, 4);
/* Prefixes context to a pending error: "<context>: <old msg>". Returns -1. If *err is NULL
 * (a callee failed without setting one) an EIO error with just the context is created. */
int dlc_error_wrap(struct dlc_error **err, const char *fmt, ...) DLC_PRINTF(2, 3);
/* NULL-safe; frees and resets *err. */
void dlc_error_free(struct dlc_error **err);
/* Moves *src into *dst (dst must be empty); returns -1. */
int dlc_error_move(struct dlc_error **dst, struct dlc_error **src);

/* ---- cleanup ----------------------------------------------------------------------- */

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void dlc_freep(void *p)
{
    free(*(void **)p);
}
static inline void dlc_closep(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}
static inline void dlc_fclosep(FILE **f)
{
    if (*f != NULL)
        fclose(*f);
}
static inline void dlc_closedirp(DIR **d)
{
    if (*d != NULL)
        closedir(*d);
}
static inline void dlc_error_freep(struct dlc_error **e)
{
    dlc_error_free(e);
}
void dlc_strv_free(char **v);
static inline void dlc_strv_freep(char ***v)
{
    dlc_strv_free(*v);
}

#define _cleanup_free_   _cleanup_(dlc_freep)
#define _cleanup_close_  _cleanup_(dlc_closep)
#define _cleanup_fclose_ _cleanup_(dlc_fclosep)
#define _cleanup_dir_    _cleanup_(dlc_closedirp)
#define _cleanup_error_  _cleanup_(dlc_error_freep)
#define _cleanup_strv_   _cleanup_(dlc_strv_freep)

/* DEFINE_TRIVIAL_CLEANUP_FUNC(struct oci_manifest *, oci_manifest_free) defines
 * oci_manifest_freep() for use as _cleanup_(oci_manifest_freep). */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)    \
    static inline DLC_UNUSED void func##p(type *p) \
    {                                              \
        if (*p)                                    \
            func(*p);                              \
    }

#define TAKE_PTR(p)                 \
    ({                              \
        __typeof__(p) _take_ = (p); \
        (p) = NULL;                 \
        _take_;                     \
    })
#define TAKE_FD(fd)           \
    ({                        \
        int _take_fd_ = (fd); \
        (fd) = -1;            \
        _take_fd_;            \
    })

/* ---- allocation (abort on OOM; small internal sizes only) ------------------------- */

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) DLC_PRINTF(1, 2);
char *xvasprintf(const char *fmt, va_list ap) DLC_PRINTF(1, 0);

/* Overflow-checked arithmetic: false on overflow, *ret untouched. */
bool dlc_size_mul(size_t a, size_t b, size_t *ret);
bool dlc_size_add(size_t a, size_t b, size_t *ret);

/* ---- logging ----------------------------------------------------------------------- */

enum dlc_log_level { DLC_LOG_ERROR, DLC_LOG_WARN, DLC_LOG_INFO, DLC_LOG_DEBUG };

typedef void (*dlc_log_fn)(enum dlc_log_level level, const char *msg, void *userdata);

/* The default sink writes "<progname>: [level: ]msg\n" to stderr for levels <= the
 * current level (INFO unless DLC_LOG_LEVEL / dlc_log_set_level say otherwise). */
void dlc_log_set_handler(dlc_log_fn fn, void *userdata);
void dlc_log_set_level(enum dlc_log_level level);
enum dlc_log_level dlc_log_get_level(void);
void dlc_log_set_progname(const char *name);
const char *dlc_log_progname(void);
/* Parses "error|warn|info|debug"; -1 for anything else. */
int dlc_log_level_parse(const char *s);
void dlc_log(enum dlc_log_level level, const char *fmt, ...) DLC_PRINTF(2, 3);
#define dlc_debug(...) dlc_log(DLC_LOG_DEBUG, __VA_ARGS__)
#define dlc_info(...)  dlc_log(DLC_LOG_INFO, __VA_ARGS__)
#define dlc_warn(...)  dlc_log(DLC_LOG_WARN, __VA_ARGS__)

/* ---- checked parsing ---------------------------------------------------------------- */

/* Whole-string decimal parsers: no sign for u64, no whitespace, no trailing junk, range
 * checked. EINVAL with "'<s>' is not ..." on failure; ret untouched. what names the value
 * in the message ("--pids-limit"), may be NULL. */
int dlc_parse_u64(const char *s, const char *what, uint64_t *ret, struct dlc_error **err);
int dlc_parse_i64(const char *s, const char *what, int64_t *ret, struct dlc_error **err);
int dlc_parse_int(const char *s, const char *what, int min, int max, int *ret,
                  struct dlc_error **err);
/* A finite double ("0.001", "1e-3"). */
int dlc_parse_double(const char *s, const char *what, double *ret, struct dlc_error **err);
/* Sizes: "1024", "64k", "64m", "256MiB", "4MB", "1.5g": k/m/g/t suffixes are binary
 * (1024-based), as docker's --memory does. */
int dlc_parse_size(const char *s, const char *what, uint64_t *ret, struct dlc_error **err);
/* "true/false/1/0/yes/no/on/off" (case-insensitive). */
int dlc_parse_bool(const char *s, const char *what, bool *ret, struct dlc_error **err);
/* "1.5 MB" style, into buf. */
const char *dlc_format_size(uint64_t n, char *buf, size_t len);

/* ---- strings ------------------------------------------------------------------------ */

static inline bool dlc_streq(const char *a, const char *b)
{
    return a != NULL && b != NULL && __builtin_strcmp(a, b) == 0;
}
/* Returns a pointer just past prefix when s starts with it, else NULL. */
const char *dlc_startswith(const char *s, const char *prefix);
bool dlc_endswith(const char *s, const char *suffix);
/* Lowercase hex of len bytes into out (2*len+1 bytes). */
void dlc_hex_encode(const unsigned char *in, size_t len, char *out);
/* NULL-terminated string vectors. */
size_t dlc_strv_len(char *const *v);
char **dlc_strv_push(char **v, const char *s); /* copies s; returns the new vector */
char **dlc_strv_copy(char *const *v);
bool dlc_strv_contains(char *const *v, const char *s);
/* Binary search of key in the first n strings of v, sorted by strcmp: the index of key, or
 * of where it would be inserted; *found says which. */
size_t dlc_strv_bsearch(char *const *v, size_t n, const char *key, bool *found);
/* "2026-11-22T02:35:55Z" for t (UTC), into buf (>= 21 bytes). */
const char *dlc_format_rfc3339(int64_t t, char *buf, size_t len);

struct dlc_strbuf {
    char *buf; /* always NUL-terminated once anything was appended; NULL when empty */
    size_t len;
    size_t cap;
};
#define DLC_STRBUF_INIT \
    {                   \
        NULL, 0, 0      \
    }
void dlc_strbuf_append(struct dlc_strbuf *sb, const char *s);
void dlc_strbuf_append_len(struct dlc_strbuf *sb, const void *data, size_t len);
void dlc_strbuf_appendf(struct dlc_strbuf *sb, const char *fmt, ...) DLC_PRINTF(2, 3);
void dlc_strbuf_appendc(struct dlc_strbuf *sb, char c);
void dlc_strbuf_reset(struct dlc_strbuf *sb);
/* Returns the buffer (never NULL: "" when empty) and leaves sb empty; caller frees. */
char *dlc_strbuf_detach(struct dlc_strbuf *sb, size_t *ret_len);
void dlc_strbuf_release(struct dlc_strbuf *sb);
static inline const char *dlc_strbuf_str(const struct dlc_strbuf *sb)
{
    return sb->buf ? sb->buf : "";
}
#define _cleanup_strbuf_ _cleanup_(dlc_strbuf_release)

/* ---- paths -------------------------------------------------------------------------- */

/* "a" + "b" -> "a/b" without doubled slashes; b may start with '/'. */
char *dlc_path_join(const char *a, const char *b);
/* Lexically normalises a path inside a root: drops ".", empty and leading "/" components,
 * resolves "..": EINVAL when ".." would climb above the top ("../x", "a/../../x").
 * "" or "/" gives ".". Used for tar entry names and registry paths. */
int dlc_path_normalize_relative(const char *path, char **ret, struct dlc_error **err);
/* Resolves path (absolute or relative, as seen from inside the root) to a host path under
 * root, following symlinks as if root were "/" (an absolute symlink target or ".." can never
 * leave root: securejoin semantics). The last component need not exist. ELOOP after 40
 * links. The result is root + "/" + the resolved relative path. */
int dlc_path_resolve_in_root(const char *root, const char *path, char **ret,
                             struct dlc_error **err);
/* Returns the last component (borrowed pointer into path). */
const char *dlc_path_basename(const char *path);
/* Returns a copy of everything before the last component ("." if none). */
char *dlc_path_dirname(const char *path);

/* ---- files -------------------------------------------------------------------------- */

/* mkdir -p; existing directories are fine. */
int dlc_mkdir_p(const char *path, mode_t mode, struct dlc_error **err);
/* rm -rf that never crosses into another mount and never follows symlinks; a missing path
 * is success. */
int dlc_rm_rf(const char *path, struct dlc_error **err);
/* Reads a whole file; EFBIG when it is larger than max. The buffer is NUL-terminated. */
int dlc_read_file(const char *path, size_t max, char **ret_buf, size_t *ret_len,
                  struct dlc_error **err);
/* Writes data to path atomically: temp file in the same directory, fsync, rename, fsync
 * of the directory. Either the old or the new content is visible, never a mix. */
int dlc_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                          struct dlc_error **err);
/* fsync a directory (after a rename into it). */
int dlc_fsync_dir(const char *dir, struct dlc_error **err);
/* Writes all len bytes (retrying short writes and EINTR). */
int dlc_write_all(int fd, const void *data, size_t len, struct dlc_error **err);
/* Copies a regular file (content and mode) to dst atomically. */
int dlc_copy_file(const char *src, const char *dst, struct dlc_error **err);
bool dlc_path_exists(const char *path);
bool dlc_is_dir(const char *path);

/* A file written under a temporary name and renamed into place on commit. Until commit,
 * nothing exists under the final name. abort (or the cleanup) unlinks the temp file. */
struct dlc_atomic_file {
    int fd;
    char *tmp_path;
    char *path;
};
#define DLC_ATOMIC_FILE_INIT \
    {                        \
        -1, NULL, NULL       \
    }
int dlc_atomic_file_open(struct dlc_atomic_file *af, const char *path, mode_t mode,
                         struct dlc_error **err);
/* fsync, rename over path, fsync the directory; releases af. */
int dlc_atomic_file_commit(struct dlc_atomic_file *af, struct dlc_error **err);
/* Unlinks the temp file and releases af; safe on an unopened or committed af. */
void dlc_atomic_file_abort(struct dlc_atomic_file *af);
#define _cleanup_atomic_file_ _cleanup_(dlc_atomic_file_abort)

/* An exclusive (or shared) flock on path (created 0644 if missing); blocks until taken.
 * Returns the fd holding the lock; closing it releases the lock. */
int dlc_lock_path(const char *path, bool exclusive, struct dlc_error **err);

/* ---- processes ---------------------------------------------------------------------- */

/* Runs argv (argv[0] looked up in PATH), waits, returns its exit status (0..255), or 128+N
 * when killed by signal N; -1 with err if it could not be started. stdout/stderr are
 * inherited unless quiet, in which case they go to /dev/null. */
int dlc_spawn_wait(const char *const argv[], bool quiet, struct dlc_error **err);

/* Number of CPUs this process may run on (sched_getaffinity), at least 1. */
int dlc_cpu_count(void);

/* ---- JSON (jansson) ---------------------------------------------------------------- */

/* Parses with JSON_REJECT_DUPLICATES; errors read "<what>:<line>:<col>: <jansson text>". */
json_t *dlc_json_loadb(const char *buf, size_t len, const char *what, struct dlc_error **err);
json_t *dlc_json_load_file(const char *path, size_t max, struct dlc_error **err);
/* Compact, sorted keys: reproducible bytes. Caller frees. */
char *dlc_json_dumps(const json_t *j, size_t *ret_len);
/* Pretty (indent 2, sorted keys, trailing newline) for humans. */
char *dlc_json_dumps_pretty(const json_t *j);
int dlc_json_write_file_atomic(const char *path, const json_t *j, struct dlc_error **err);

/* Typed getters: "what" names the object in errors ("manifest", "config.rootfs").
 * Missing optional keys leave *ret untouched and return 0; a missing required key or the
 * wrong type is EINVAL "<what>: '<key>' must be a <type>". */
int dlc_json_get_string(const json_t *obj, const char *key, bool required, const char *what,
                        const char **ret, struct dlc_error **err);
int dlc_json_get_int(const json_t *obj, const char *key, bool required, const char *what,
                     int64_t *ret, struct dlc_error **err);
int dlc_json_get_bool(const json_t *obj, const char *key, bool required, const char *what,
                      bool *ret, struct dlc_error **err);
int dlc_json_get_number(const json_t *obj, const char *key, bool required, const char *what,
                        double *ret, struct dlc_error **err);
int dlc_json_get_object(const json_t *obj, const char *key, bool required, const char *what,
                        json_t **ret, struct dlc_error **err);
int dlc_json_get_array(const json_t *obj, const char *key, bool required, const char *what,
                       json_t **ret, struct dlc_error **err);
/* An array of strings -> a NULL-terminated vector (copied). */
int dlc_json_get_strv(const json_t *obj, const char *key, bool required, const char *what,
                      char ***ret, struct dlc_error **err);
/* The reverse: a new JSON array of v's strings ([] for NULL). */
json_t *dlc_json_from_strv(char *const *v);
/* EINVAL "<what>: unknown key '<k>'" for any key of obj not in allowed (NULL-terminated). */
int dlc_json_check_keys(const json_t *obj, const char *const *allowed, const char *what,
                        struct dlc_error **err);

/* Runs argv (looked up in PATH) with stdin from /dev/null and its stdout captured into
 * *ret_out (NUL-terminated, caller frees; EFBIG past max bytes); stderr is inherited, or
 * /dev/null when quiet. Returns the exit status as dlc_spawn_wait does; *ret_out is set
 * whatever the status. */
int dlc_spawn_capture(const char *const argv[], bool quiet, size_t max, char **ret_out,
                      size_t *ret_len, struct dlc_error **err);

/* ---- ELF and ld.so.cache (elf.c, ldcache.c) ------------------------------------------
 * How the dynamic loader finds shared libraries, read from files only (nothing is run).
 * The builder uses it for image closures, the runner for GPU driver libraries:
 *
 *     _cleanup_(dlc_elf_freep) struct dlc_elf *e = NULL;
 *     _cleanup_(dlc_ldcache_freep) struct dlc_ldcache *c = NULL;
 *     if (dlc_elf_read("/usr/bin/tensor", &e, err) < 0 ||
 *         dlc_ldcache_load("/etc/ld.so.cache", 0, &c, err) < 0)
 *         return -1;
 *     for (size_t i = 0; e && e->needed && e->needed[i]; i++) {
 *         _cleanup_free_ char *lib = dlc_ldcache_search(c, e->needed[i], try_one, e);
 *         ...   // try_one(path, e) keeps a path that dlc_elf_matches() e's class and machine
 *     }
 */

/* This host's ABI as ld.so names it: the multiarch triplet ($LIB is lib/<triplet>), the
 * AT_PLATFORM string ($PLATFORM), the ELF e_machine and class (their values need <elf.h>)
 * and ldconfig's flags for its libraries in ld.so.cache (glibc's ldconfig.h:
 * FLAG_ELF_LIBC6 | the architecture's FLAG_*_LIB64 bits). */
#if defined(__x86_64__)
#    define DLC_MULTIARCH     "x86_64-linux-gnu"
#    define DLC_LD_PLATFORM   "x86_64"
#    define DLC_ELF_MACHINE   EM_X86_64
#    define DLC_LDCACHE_FLAGS 0x0303
#elif defined(__aarch64__)
#    define DLC_MULTIARCH     "aarch64-linux-gnu"
#    define DLC_LD_PLATFORM   "aarch64"
#    define DLC_ELF_MACHINE   EM_AARCH64
#    define DLC_LDCACHE_FLAGS 0x0a03
#elif defined(__i386__)
#    define DLC_MULTIARCH     "i386-linux-gnu"
#    define DLC_LD_PLATFORM   "i686"
#    define DLC_ELF_MACHINE   EM_386
#    define DLC_LDCACHE_FLAGS 0x0003
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#    define DLC_MULTIARCH     "powerpc64le-linux-gnu"
#    define DLC_LD_PLATFORM   "powerpc64le"
#    define DLC_ELF_MACHINE   EM_PPC64
#    define DLC_LDCACHE_FLAGS 0x0503
#elif defined(__s390x__)
#    define DLC_MULTIARCH     "s390x-linux-gnu"
#    define DLC_LD_PLATFORM   "s390x"
#    define DLC_ELF_MACHINE   EM_S390
#    define DLC_LDCACHE_FLAGS 0x0403
#elif defined(__riscv) && __riscv_xlen == 64
#    define DLC_MULTIARCH     "riscv64-linux-gnu"
#    define DLC_LD_PLATFORM   "riscv64"
#    define DLC_ELF_MACHINE   EM_RISCV
#    define DLC_LDCACHE_FLAGS 0x1003
#else
#    error "unknown architecture: add its multiarch triplet"
#endif
#define DLC_ELF_CLASS (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32)

struct dlc_elf {
    int elf_class; /* ELFCLASS32 / ELFCLASS64 */
    int machine;   /* e_machine */
    bool dynamic;  /* has a PT_DYNAMIC segment (a shared object or a dynamic executable) */
    char *interp;  /* PT_INTERP, or NULL (static, or a library) */
    char **needed; /* DT_NEEDED in order, may be NULL */
    char **rpath;  /* DT_RPATH split at ':' (empty entries dropped), may be NULL */
    char **runpath;
    char *soname; /* DT_SONAME, or NULL */
};
/* Parses an ELF file's headers (either class, this host's byte order). *ret = NULL (and
 * 0) when the file is not ELF at all; EINVAL "<path>: malformed ELF: <why>" when it is ELF
 * but inconsistent (every offset and size is checked against the file); errno errors
 * naming path when it cannot be opened or read. Never runs it. */
int dlc_elf_read(const char *path, struct dlc_elf **ret, struct dlc_error **err);
void dlc_elf_free(struct dlc_elf *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct dlc_elf *, dlc_elf_free)
/* True when path is an ELF object of this class and machine (what ld.so accepts). */
bool dlc_elf_matches(const char *path, int elf_class, int machine);
/* A run path entry with ld.so's dynamic string tokens replaced: $ORIGIN (or ${ORIGIN}) by
 * origin, $LIB by lib/DLC_MULTIARCH, $PLATFORM by DLC_LD_PLATFORM. Caller frees. */
char *dlc_elf_expand_dst(const char *entry, const char *origin);

struct dlc_ldcache;
/* dlc_ldcache_load flags: keep only entries of this host's ABI (DLC_LDCACHE_FLAGS), as
 * ld.so does; without it every ABI's entries are kept (the caller checks the ELF). */
#define DLC_LDCACHE_NATIVE 1u
/* Reads an ld.so.cache ("glibc-ld.so.cache1.1", alone or after the old "ld.so-1.7.0"
 * table, as glibc's dl-cache.c does). Entries for CPU-specific builds (glibc-hwcaps) are
 * skipped: what is found must run on other CPUs too. A missing file gives an empty cache;
 * a malformed one is EINVAL naming it. */
int dlc_ldcache_load(const char *path, unsigned flags, struct dlc_ldcache **ret,
                     struct dlc_error **err);
void dlc_ldcache_free(struct dlc_ldcache *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct dlc_ldcache *, dlc_ldcache_free)
size_t dlc_ldcache_count(const struct dlc_ldcache *c);
/* Iterates the paths recorded for soname, in cache order: start with *iter = 0; NULL at
 * the end. Borrowed. */
const char *dlc_ldcache_lookup(const struct dlc_ldcache *c, const char *soname, size_t *iter);
/* Iterates the entries whose key (a soname) starts with prefix: returns the path and, when
 * ret_key is not NULL, the key (both borrowed); NULL at the end. */
const char *dlc_ldcache_next(const struct dlc_ldcache *c, const char *prefix, size_t *iter,
                             const char **ret_key);
/* True for one of ld.so's default directories (see dlc_ldcache_search). */
bool dlc_ldcache_is_default_dir(const char *dir);
/* Judges one candidate path for dlc_ldcache_search: a malloc'd result to stop with, or
 * NULL to go on. */
typedef char *(*dlc_ldcache_try_fn)(const char *path, void *data);
/* Where ld.so looks for a library name after the run paths: each path c records for it
 * (c may be NULL), then the default directories /lib/<triplet>, /usr/lib/<triplet>, /lib,
 * /usr/lib, /lib64, /usr/lib64. Paths are as seen inside the root c describes; try_path
 * decides (ABI check, resolving inside a root). Returns the first result try_path kept,
 * NULL when none. */
char *dlc_ldcache_search(const struct dlc_ldcache *c, const char *name, dlc_ldcache_try_fn try_path,
                         void *data);

#endif
