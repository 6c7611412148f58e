/* io.c: whole-file reads that see through gzip. zlib (not libarchive) does the gunzip
 * because the tensor program ships in images with a size budget: zlib is ~100 KB and
 * already in every base image, libarchive would pull in half a dozen codecs. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <zlib.h>

#include "tensor-internal.h"

static bool starts_with_gzip_magic(const char *path)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    unsigned char magic[2];
    return fd >= 0 && read(fd, magic, 2) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
}

static int gz_read_all(const char *path, size_t max, char **ret_buf, size_t *ret_len,
                       struct dlc_error **err)
{
    gzFile gz = gzopen(path, "rb");
    if (gz == NULL)
        return dlc_error_set_errno(err, errno ? errno : ENOMEM, "open %s", path);
    gzbuffer(gz, 1 << 18);
    size_t cap = 1 << 20, len = 0;
    char *buf = xmalloc(cap + 1);
    for (;;) {
        if (len == cap) {
            if (cap >= max + 1) {
                free(buf);
                gzclose(gz);
                return dlc_error_set(err, EFBIG, "%s: uncompressed data is larger than %zu bytes",
                                     path, max);
            }
            cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            buf = xrealloc(buf, cap + 1);
        }
        unsigned want = cap - len > (1u << 30) ? (1u << 30) : (unsigned)(cap - len);
        int n = gzread(gz, buf + len, want);
        if (n < 0 || (n == 0 && !gzeof(gz))) {
            int zerr = 0;
            const char *msg = gzerror(gz, &zerr);
            dlc_error_set(err, EPROTO, "%s: gzip: %s", path, msg ? msg : "read error");
            free(buf);
            gzclose(gz);
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    /* zlib reports a stream cut short as Z_BUF_ERROR and lets reads end "normally". */
    int zerr = Z_OK;
    const char *msg = gzerror(gz, &zerr);
    if (zerr != Z_OK) {
        dlc_error_set(err, EPROTO, "%s: gzip: %s", path, msg);
        free(buf);
        gzclose(gz);
        return -1;
    }
    gzclose(gz);
    if (len > max) {
        free(buf);
        return dlc_error_set(err, EFBIG, "%s: uncompressed data is larger than %zu bytes", path,
                             max);
    }
    buf[len] = '\0';
    *ret_buf = buf;
    *ret_len = len;
    return 0;
}

int tensor_read_maybe_gz(const char *path, size_t max, char **ret_buf, size_t *ret_len,
                         struct dlc_error **err)
{
    if (starts_with_gzip_magic(path))
        return gz_read_all(path, max, ret_buf, ret_len, err);
    return dlc_read_file(path, max, ret_buf, ret_len, err);
}

bool tensor__is_npy(const void *buf, size_t len)
{
    return len >= 6 && memcmp(buf, "\x93NUMPY", 6) == 0;
}
