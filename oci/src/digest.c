/* digest.c: sha256 digests (OpenSSL EVP), streaming and one-shot, and their validation. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include <openssl/evp.h>

#include "oci-internal.h"

#define SHA256_PREFIX "sha256:"
#define SHA256_HEX    64

struct oci_digester {
    EVP_MD_CTX *ctx;
    uint64_t size;
    bool finalized;
};

struct oci_digester *oci_digester_new(void)
{
    struct oci_digester *d = xcalloc(1, sizeof(*d));
    d->ctx = EVP_MD_CTX_new();
    if (d->ctx == NULL || EVP_DigestInit_ex(d->ctx, EVP_sha256(), NULL) != 1)
        abort(); /* only fails on OOM */
    return d;
}

void oci_digester_update(struct oci_digester *d, const void *data, size_t len)
{
    DLC_ASSERT(!d->finalized);
    if (len == 0)
        return;
    if (EVP_DigestUpdate(d->ctx, data, len) != 1)
        abort();
    d->size += len;
}

void oci_digester_final(struct oci_digester *d, char out[OCI_DIGEST_BUFSZ])
{
    DLC_ASSERT(!d->finalized);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(d->ctx, md, &n) != 1 || n != SHA256_HEX / 2)
        abort();
    d->finalized = true;
    char hex[SHA256_HEX + 1];
    dlc_hex_encode(md, n, hex);
    snprintf(out, OCI_DIGEST_BUFSZ, SHA256_PREFIX "%s", hex);
}

uint64_t oci_digester_size(const struct oci_digester *d)
{
    return d->size;
}

void oci_digester_free(struct oci_digester *d)
{
    if (d == NULL)
        return;
    EVP_MD_CTX_free(d->ctx);
    free(d);
}

void oci_digest_buf(const void *data, size_t len, char out[OCI_DIGEST_BUFSZ])
{
    _cleanup_(oci_digester_freep) struct oci_digester *d = oci_digester_new();
    oci_digester_update(d, data, len);
    oci_digester_final(d, out);
}

int oci_digest_file(const char *path, char out[OCI_DIGEST_BUFSZ], uint64_t *ret_size,
                    struct dlc_error **err)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dlc_error_set_errno(err, errno, "open %s", path);
    _cleanup_(oci_digester_freep) struct oci_digester *d = oci_digester_new();
    _cleanup_free_ char *buf = xmalloc(1 << 16);
    for (;;) {
        ssize_t n = read(fd, buf, 1 << 16);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return dlc_error_set_errno(err, errno, "read %s", path);
        }
        if (n == 0)
            break;
        oci_digester_update(d, buf, (size_t)n);
    }
    if (ret_size)
        *ret_size = oci_digester_size(d);
    oci_digester_final(d, out);
    return 0;
}

/* The reason a digest is not "sha256:" + 64 lowercase hex, or NULL when it is. */
static const char *digest_problem(const char *digest, char *buf, size_t len)
{
    const char *colon = strchr(digest, ':');
    if (*digest == '\0')
        return "digest is empty";
    if (colon == NULL)
        return "missing algorithm (want sha256:<64 hex digits>)";
    if (colon == digest)
        return "algorithm is empty";
    if ((size_t)(colon - digest) != strlen("sha256") || strncmp(digest, "sha256", 6) != 0) {
        snprintf(buf, len, "unsupported algorithm '%.*s' (only sha256 is supported)",
                 (int)(colon - digest) > 32 ? 32 : (int)(colon - digest), digest);
        return buf;
    }
    const char *hex = colon + 1;
    size_t n = strlen(hex);
    for (size_t i = 0; i < n; i++) {
        char c = hex[i];
        if (c >= 'A' && c <= 'F')
            return "uppercase hex is not allowed";
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            if (c >= ' ' && c < 0x7f)
                snprintf(buf, len, "'%c' is not a hex digit", c);
            else
                snprintf(buf, len, "byte 0x%02x is not a hex digit", (unsigned char)c);
            return buf;
        }
    }
    if (n != SHA256_HEX) {
        snprintf(buf, len, "sha256 needs 64 hex digits, got %zu", n);
        return buf;
    }
    return NULL;
}

int oci_digest_validate(const char *digest, struct dlc_error **err)
{
    char buf[96];
    const char *why = digest_problem(digest, buf, sizeof(buf));
    if (why == NULL)
        return 0;
    /* Untrusted input may be long: quote at most 80 characters of it. */
    size_t n = strlen(digest);
    return dlc_error_set(err, EINVAL, "digest '%.80s%s': %s", digest, n > 80 ? "..." : "", why);
}

const char *oci_digest_hex(const char *digest)
{
    const char *colon = strchr(digest, ':');
    return colon ? colon + 1 : digest;
}
