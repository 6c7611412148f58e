/* reference.c: image references, [host[:port]/]name[:tag][@digest], with the
 * distribution-spec grammars for name and tag (reference/oci-specs.md §2.1). */
#include <errno.h>
#include <string.h>

#include "oci-internal.h"

#define NAME_MAX_LEN 255
#define TAG_MAX_LEN  128

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* A separator between alphanumerics: ".", "_", "__" or one or more "-". */
static bool separator_is_valid(const char *s, size_t n)
{
    if (n == 1)
        return s[0] == '.' || s[0] == '_' || s[0] == '-';
    if (n == 2 && s[0] == '_' && s[1] == '_')
        return true;
    for (size_t i = 0; i < n; i++)
        if (s[i] != '-')
            return false;
    return true;
}

/* component ::= [a-z0-9]+ (separator [a-z0-9]+)*; writes the reason into buf on failure. */
static const char *component_problem(const char *c, size_t n, char *buf, size_t len)
{
    if (n == 0)
        return "repository name has an empty path component";
    if (!is_lower_alnum(c[0]) || !is_lower_alnum(c[n - 1])) {
        snprintf(buf, len,
                 "repository name component '%.*s' must start and end with a letter or digit",
                 (int)n, c);
        return buf;
    }
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && !is_lower_alnum(c[j]))
            j++;
        if (j > i && !separator_is_valid(c + i, j - i)) {
            snprintf(buf, len, "repository name component '%.*s' has an invalid separator '%.*s'",
                     (int)n, c, (int)(j - i), c + i);
            return buf;
        }
        while (j < n && is_lower_alnum(c[j]))
            j++;
        i = j;
    }
    return NULL;
}

static const char *name_problem(const char *name, char *buf, size_t len)
{
    if (*name == '\0')
        return "repository name is empty";
    for (const char *p = name; *p; p++) {
        if (*p >= 'A' && *p <= 'Z')
            return "repository name must be lowercase";
        if (!is_lower_alnum(*p) && strchr("._-/", *p) == NULL) {
            if (*p >= ' ' && *p < 0x7f)
                snprintf(buf, len, "repository name contains invalid character '%c'", *p);
            else
                snprintf(buf, len, "repository name contains invalid byte 0x%02x",
                         (unsigned char)*p);
            return buf;
        }
    }
    if (strlen(name) > NAME_MAX_LEN)
        return "repository name is longer than 255 characters";
    for (const char *c = name;;) {
        const char *slash = strchr(c, '/');
        size_t n = slash ? (size_t)(slash - c) : strlen(c);
        const char *why = component_problem(c, n, buf, len);
        if (why != NULL)
            return why;
        if (slash == NULL)
            return NULL;
        c = slash + 1;
    }
}

static const char *tag_problem(const char *tag, char *buf, size_t len)
{
    size_t n = strlen(tag);
    if (n == 0)
        return "tag is empty";
    if (n > TAG_MAX_LEN)
        return "tag is longer than 128 characters";
    if (!is_alnum(tag[0]) && tag[0] != '_') {
        snprintf(buf, len, "tag '%s' must start with a letter, digit or '_'", tag);
        return buf;
    }
    for (size_t i = 1; i < n; i++) {
        if (!is_alnum(tag[i]) && strchr("._-", tag[i]) == NULL) {
            if (tag[i] >= ' ' && tag[i] < 0x7f)
                snprintf(buf, len, "tag '%s' contains invalid character '%c'", tag, tag[i]);
            else
                snprintf(buf, len, "tag contains invalid byte 0x%02x", (unsigned char)tag[i]);
            return buf;
        }
    }
    return NULL;
}

/* host[:port], host being DNS labels, an IPv4 address or a bracketed IPv6 address. */
static const char *registry_problem(const char *reg, char *buf, size_t len)
{
    const char *p = reg;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (close == NULL || close == p + 1)
            goto bad_host;
        for (const char *q = p + 1; q < close; q++)
            if (!((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f') ||
                  (*q >= 'A' && *q <= 'F') || *q == ':' || *q == '.'))
                goto bad_host;
        p = close + 1;
    } else {
        const char *start = p;
        while (is_alnum(*p) || *p == '.' || *p == '-')
            p++;
        if (p == start || *start == '.' || *start == '-' || p[-1] == '.' || p[-1] == '-')
            goto bad_host;
    }
    if (*p == '\0')
        return NULL;
    if (*p != ':')
        goto bad_host;
    uint64_t port = 0;
    if (dlc_parse_u64(p + 1, NULL, &port, NULL) < 0 || port == 0 || port > 65535) {
        snprintf(buf, len, "registry port '%s' is not a number from 1 to 65535", p + 1);
        return buf;
    }
    return NULL;
bad_host:
    snprintf(buf, len, "registry host '%s' is invalid", reg);
    return buf;
}

/* The first path component names a registry when it has a '.' or ':' or is localhost. */
static bool component_is_registry(const char *c, size_t n)
{
    return memchr(c, '.', n) != NULL || memchr(c, ':', n) != NULL ||
           (n == strlen("localhost") && strncmp(c, "localhost", n) == 0);
}

static const char *ref_split(const char *s, struct oci_ref *r, char *buf, size_t len)
{
    if (*s == '\0')
        return "reference is empty";
    const char *at = strchr(s, '@');
    _cleanup_free_ char *rest = at ? xstrndup(s, (size_t)(at - s)) : xstrdup(s);
    if (at != NULL) {
        _cleanup_error_ struct dlc_error *e = NULL;
        if (oci_digest_validate(at + 1, &e) < 0) {
            snprintf(buf, len, "%s", e->msg);
            return buf;
        }
        r->digest = xstrdup(at + 1);
    }
    char *slash = strrchr(rest, '/');
    char *colon = strrchr(rest, ':');
    if (colon != NULL && (slash == NULL || colon > slash)) {
        *colon = '\0';
        r->tag = xstrdup(colon + 1);
    }
    const char *name = rest;
    char *first = strchr(rest, '/');
    if (first != NULL && component_is_registry(rest, (size_t)(first - rest))) {
        r->registry = xstrndup(rest, (size_t)(first - rest));
        name = first + 1;
        const char *why = registry_problem(r->registry, buf, len);
        if (why != NULL)
            return why;
    }
    const char *why = name_problem(name, buf, len);
    if (why != NULL)
        return why;
    if (r->registry && strlen(r->registry) + 1 + strlen(name) > NAME_MAX_LEN)
        return "registry and repository name are longer than 255 characters";
    r->name = xstrdup(name);
    if (r->tag && (why = tag_problem(r->tag, buf, len)) != NULL)
        return why;
    if (r->tag == NULL && r->digest == NULL)
        r->tag = xstrdup("latest");
    return NULL;
}

int oci_ref_parse(const char *s, struct oci_ref **ret, struct dlc_error **err)
{
    char buf[512];
    _cleanup_(oci_ref_freep) struct oci_ref *r = xcalloc(1, sizeof(*r));
    const char *why = ref_split(s, r, buf, sizeof(buf));
    if (why != NULL)
        return dlc_error_set(err, EINVAL, "invalid reference '%.300s%s': %s", s,
                             strlen(s) > 300 ? "..." : "", why);
    *ret = TAKE_PTR(r);
    return 0;
}

void oci_ref_free(struct oci_ref *r)
{
    if (r == NULL)
        return;
    free(r->registry);
    free(r->name);
    free(r->tag);
    free(r->digest);
    free(r);
}

char *oci_ref_format(const struct oci_ref *r)
{
    return xasprintf("%s%s%s%s%s%s%s", r->registry ? r->registry : "", r->registry ? "/" : "",
                     r->name, r->tag ? ":" : "", r->tag ? r->tag : "", r->digest ? "@" : "",
                     r->digest ? r->digest : "");
}

char *oci_ref_store_name(const struct oci_ref *r)
{
    if (r->tag == NULL)
        return NULL;
    return xasprintf("%s%s%s:%s", r->registry ? r->registry : "", r->registry ? "/" : "", r->name,
                     r->tag);
}

bool oci_name_is_valid(const char *name)
{
    char buf[256];
    return name_problem(name, buf, sizeof(buf)) == NULL;
}

bool oci_tag_is_valid(const char *tag)
{
    char buf[256];
    return tag_problem(tag, buf, sizeof(buf)) == NULL;
}
