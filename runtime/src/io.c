/* io.c: whole-file reads that see through gzip. zlib (not libarchive) does the gunzip
 * because the tensor program ships in images with a size budget: zlib is ~100 KB and
 * already in every base image, libarchive would pull in half a dozen codecs. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "tensor-internal.h"

static int too_big(const char *path, bool plain, size_t max, struct dlc_error **err)
{
    if (plain)
        return dlc_error_set(err, EFBIG, "read %s: larger than %zu bytes", path, max);
    return dlc_error_set(err, EFBIG, "%s: uncompressed data is larger than %zu bytes", path, max);
}

/* zlib reports a stream cut short as Z_BUF_ERROR and lets reads end "normally": *zerr says. */
static int read_error(gzFile gz, const char *path, bool plain, struct dlc_error **err)
{
    int zerr = 0;
    const char *msg = gzerror(gz, &zerr);
    if (plain && zerr == Z_ERRNO)
        return dlc_error_set_errno(err, errno, "read %s", path);
    return dlc_error_set(err, EPROTO, "%s: gzip: %s", path, msg ? msg : "read error");
}

/* Reads gz to its end into a buffer of cap bytes at first, grown as needed. gzread copies
 * plain data through as it is (reading straight into buf for large requests). */
static int gz_read_all(gzFile gz, const char *path, bool plain, size_t cap, size_t max,
                       char **ret_buf, size_t *ret_len, struct dlc_error **err)
{
    size_t len = 0;
    _cleanup_free_ char *buf = xmalloc(cap + 1);
    for (;;) {
        if (len == cap) {
            if (cap >= max + 1)
                return too_big(path, plain, max, err);
            cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            buf = xrealloc(buf, cap + 1);
        }
        unsigned want = cap - len > (1u << 30) ? (1u << 30) : (unsigned)(cap - len);
        int n = gzread(gz, buf + len, want);
        if (n < 0 || (n == 0 && !gzeof(gz)))
            return read_error(gz, path, plain, err);
        if (n == 0)
            break;
        len += (size_t)n;
    }
    int zerr = Z_OK;
    gzerror(gz, &zerr);
    if (zerr != Z_OK)
        return read_error(gz, path, plain, err);
    if (len > max)
        return too_big(path, plain, max, err);
    buf[len] = '\0';
    *ret_buf = TAKE_PTR(buf);
    *ret_len = len;
    return 0;
}

/* The path is opened once and the gzip magic sniffed from that same stream (zlib's
 * gzdirect), so a pipe or FIFO (`--input <(zcat x.npy.gz)`) loses nothing to the sniff. */
int tensor_read_maybe_gz(const char *path, size_t max, char **ret_buf, size_t *ret_len,
                         struct dlc_error **err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dlc_error_set_errno(err, errno, "read %s", path);
    struct stat st;
    int e = fstat(fd, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
    if (e != 0) {
        close(fd);
        return dlc_error_set_errno(err, e, "read %s", path);
    }
    gzFile gz = gzdopen(fd, "rb"); /* owns fd from here */
    if (gz == NULL) {
        close(fd);
        return dlc_error_set(err, ENOMEM, "read %s: out of memory", path);
    }
    gzbuffer(gz, 1 << 18);
    bool plain = gzdirect(gz) != 0; /* reads the first bytes to tell */
    int r;
    if (plain && S_ISREG(st.st_mode) && (uint64_t)st.st_size > max)
        r = too_big(path, plain, max, err);
    else
        r = gz_read_all(gz, path, plain,
                        plain && S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : (size_t)1 << 20,
                        max, ret_buf, ret_len, err);
    gzclose(gz);
    return r;
}

bool tensor__is_npy(const void *buf, size_t len)
{
    return len >= 6 && memcmp(buf, "\x93NUMPY", 6) == 0;
}
