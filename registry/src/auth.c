/* auth.c: htpasswd (bcrypt) basic authentication for the server, and base64. */
#include <crypt.h>
#include <errno.h>
#include <string.h>

#include "registry-internal.h"

#define MAX_HTPASSWD  (1u << 20)
#define CACHE_ENTRIES 64
/* Checked against when the user is unknown, so both cases cost one bcrypt. */
#define DUMMY_HASH "$2y$05$Sq36EY20M7gb2pwu1v4y.OGrB.ffReHu6Th7MiyKclaOUtkal.aXO"

struct htpasswd {
    char **users;
    char **hashes;
    size_t n;
    pthread_mutex_t lock;
    /* sha256 of "user\0password" for recent successes: bcrypt costs milliseconds and
     * clients send credentials with every request */
    char cache[CACHE_ENTRIES][OCI_DIGEST_BUFSZ];
    size_t cache_next;
};

static bool is_bcrypt(const char *h)
{
    return (dlc_startswith(h, "$2y$") || dlc_startswith(h, "$2b$") || dlc_startswith(h, "$2a$")) &&
           strlen(h) == 60;
}

static int parse_line(struct htpasswd *h, char *line, const char *path, size_t lineno,
                      struct dlc_error **err)
{
    size_t len = strlen(line);
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
        line[--len] = '\0';
    if (len == 0 || line[0] == '#')
        return 0;
    char *colon = strchr(line, ':');
    if (colon == NULL || colon == line)
        return dlc_error_set(err, EINVAL, "%s:%zu: expected 'user:hash'", path, lineno);
    *colon = '\0';
    if (!is_bcrypt(colon + 1))
        return dlc_error_set(err, EINVAL,
                             "%s:%zu: user '%s': only bcrypt entries are supported "
                             "(create them with 'htpasswd -B')",
                             path, lineno, line);
    h->users = xrealloc(h->users, (h->n + 1) * sizeof(char *));
    h->hashes = xrealloc(h->hashes, (h->n + 1) * sizeof(char *));
    h->users[h->n] = xstrdup(line);
    h->hashes[h->n] = xstrdup(colon + 1);
    h->n++;
    return 0;
}

int htpasswd_load(const char *path, struct htpasswd **ret, struct dlc_error **err)
{
    _cleanup_free_ char *buf = NULL;
    if (dlc_read_file(path, MAX_HTPASSWD, &buf, NULL, err) < 0)
        return dlc_error_wrap(err, "htpasswd");
    struct htpasswd *h = xcalloc(1, sizeof(*h));
    pthread_mutex_init(&h->lock, NULL);
    size_t lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (parse_line(h, line, path, lineno, err) < 0) {
            htpasswd_free(h);
            return -1;
        }
    }
    if (h->n == 0) {
        htpasswd_free(h);
        return dlc_error_set(err, EINVAL, "htpasswd %s: no users", path);
    }
    *ret = h;
    return 0;
}

void htpasswd_free(struct htpasswd *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->n; i++) {
        free(h->users[i]);
        free(h->hashes[i]);
    }
    free(h->users);
    free(h->hashes);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

static bool const_time_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = la != lb;
    for (size_t i = 0; i < la && i < lb; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

static bool bcrypt_matches(const char *password, const char *hash)
{
    struct crypt_data *cd = xcalloc(1, sizeof(*cd));
    const char *out = crypt_r(password, hash, cd);
    bool ok = out != NULL && out[0] != '*' && const_time_eq(out, hash);
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
    return ok;
}

static bool cache_has(struct htpasswd *h, const char *key)
{
    bool hit = false;
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < CACHE_ENTRIES && !hit; i++)
        hit = h->cache[i][0] != '\0' && const_time_eq(h->cache[i], key);
    pthread_mutex_unlock(&h->lock);
    return hit;
}

static void cache_add(struct htpasswd *h, const char *key)
{
    pthread_mutex_lock(&h->lock);
    snprintf(h->cache[h->cache_next], OCI_DIGEST_BUFSZ, "%s", key);
    h->cache_next = (h->cache_next + 1) % CACHE_ENTRIES;
    pthread_mutex_unlock(&h->lock);
}

bool htpasswd_check(struct htpasswd *h, const char *authorization, char **ret_user)
{
    const char *b64 = authorization ? dlc_startswith(authorization, "Basic ") : NULL;
    if (b64 == NULL)
        return false;
    size_t len = 0;
    _cleanup_free_ char *plain = registry_base64_decode(b64, &len);
    char *colon = plain ? memchr(plain, ':', len) : NULL;
    if (colon == NULL || strlen(plain) != len)
        return false;
    *colon = '\0';
    const char *user = plain, *password = colon + 1;
    char key[OCI_DIGEST_BUFSZ];
    oci_digest_buf(plain, len, key); /* "user\0password" */
    const char *hash = NULL;
    for (size_t i = 0; i < h->n && hash == NULL; i++)
        if (strcmp(h->users[i], user) == 0)
            hash = h->hashes[i];
    bool ok = false;
    if (hash == NULL)
        (void)bcrypt_matches(password, DUMMY_HASH); /* same cost as a known user */
    else
        ok = cache_has(h, key) || bcrypt_matches(password, hash);
    _cleanup_free_ char *u = xstrdup(user);
    explicit_bzero(plain, len);
    if (!ok)
        return false;
    cache_add(h, key);
    *ret_user = TAKE_PTR(u);
    return true;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *registry_base64_encode(const void *data, size_t len)
{
    const unsigned char *p = data;
    char *out = xmalloc((len + 2) / 3 * 4 + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        out[o++] = B64[(v >> 18) & 63];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = i + 1 < len ? B64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? B64[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

static int b64_value(char c)
{
    const char *p = c ? strchr(B64, c) : NULL;
    return p ? (int)(p - B64) : -1;
}

char *registry_base64_decode(const char *s, size_t *ret_len)
{
    size_t n = strlen(s);
    if (n % 4 != 0)
        return NULL;
    _cleanup_free_ char *out = xmalloc(n / 4 * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            bool pad = s[i + k] == '=' && i + 4 == n && k >= 2;
            v[k] = pad ? -2 : b64_value(s[i + k]);
            if (v[k] == -1)
                return NULL;
        }
        if (v[2] == -2 && v[3] != -2)
            return NULL;
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
                     (uint32_t)(v[2] < 0 ? 0 : v[2]) << 6 | (uint32_t)(v[3] < 0 ? 0 : v[3]);
        out[o++] = (char)(x >> 16);
        if (v[2] >= 0)
            out[o++] = (char)(x >> 8);
        if (v[3] >= 0)
            out[o++] = (char)x;
    }
    out[o] = '\0';
    *ret_len = o;
    return TAKE_PTR(out);
}
