/* template.c: tag templates: "{version}-{device}-{backend}-{os}" -> "1.0.0-cpu-openblas-debian12".
 *
 * Fields: name version major minor patch device backend os variant job arch. major, minor
 * and patch are the first, second and the rest of the dot-separated version.
 */
#include <errno.h>
#include <string.h>

#include "builder-internal.h"

static const char *const fields[] = {"name",    "version", "major",   "minor", "patch", "device",
                                     "backend", "os",      "variant", "job",   "arch",  NULL};
#define FIELD_LIST "name, version, major, minor, patch, device, backend, os, variant, job, arch"

static bool field_known(const char *f, size_t len)
{
    for (size_t i = 0; fields[i] != NULL; i++)
        if (strlen(fields[i]) == len && strncmp(fields[i], f, len) == 0)
            return true;
    return false;
}

/* Calls fn for each literal run and each field of tmpl. */
typedef int (*part_fn)(const char *s, size_t len, bool field, void *ctx, struct dlc_error **err);

static int walk(const char *tmpl, const char *what, part_fn fn, void *ctx, struct dlc_error **err)
{
    const char *p = tmpl;
    while (*p) {
        const char *open = strchr(p, '{');
        const char *close = strchr(p, '}');
        if (close != NULL && (open == NULL || close < open))
            return dlc_error_set(err, EINVAL, "%s: unbalanced '}' in '%s'", what, tmpl);
        if (open == NULL)
            return fn(p, strlen(p), false, ctx, err);
        if (open > p && fn(p, (size_t)(open - p), false, ctx, err) < 0)
            return -1;
        const char *end = strchr(open + 1, '}');
        const char *next_open = strchr(open + 1, '{');
        if (end == NULL || (next_open != NULL && next_open < end))
            return dlc_error_set(err, EINVAL, "%s: unbalanced '{' in '%s'", what, tmpl);
        size_t len = (size_t)(end - open - 1);
        if (!field_known(open + 1, len))
            return dlc_error_set(err, EINVAL, "%s: unknown field '{%.*s}' in '%s' (fields: %s)",
                                 what, (int)len, open + 1, tmpl, FIELD_LIST);
        if (fn(open + 1, len, true, ctx, err) < 0)
            return -1;
        p = end + 1;
    }
    return 0;
}

static int check_part(const char *s, size_t len, bool field, void *ctx, struct dlc_error **err)
{
    (void)s, (void)len, (void)field, (void)ctx, (void)err;
    return 0;
}

int btemplate_check(const char *tmpl, const char *what, struct dlc_error **err)
{
    if (tmpl[0] == '\0')
        return dlc_error_set(err, EINVAL, "%s: empty tag template", what);
    return walk(tmpl, what, check_part, NULL, err);
}

struct expand_ctx {
    const struct btemplate_vars *v;
    const char *what;
    const char *tmpl;
    struct dlc_strbuf out;
};

/* The n-th dot-separated component of version (n = 2: everything from the third on). */
static char *version_part(const char *version, int n)
{
    const char *p = version;
    for (int i = 0; i < n; i++) {
        p = strchr(p, '.');
        if (p == NULL)
            return NULL;
        p++;
    }
    size_t len = n == 2 ? strlen(p) : strcspn(p, ".");
    return len == 0 ? NULL : xstrndup(p, len);
}

static char *field_value(const struct btemplate_vars *v, const char *f)
{
    const char *plain[][2] = {{"name", v->name},     {"version", v->version},
                              {"device", v->device}, {"backend", v->backend},
                              {"os", v->os},         {"variant", v->variant},
                              {"job", v->job},       {"arch", v->arch}};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(plain); i++)
        if (strcmp(plain[i][0], f) == 0)
            return plain[i][1] ? xstrdup(plain[i][1]) : NULL;
    if (v->version == NULL)
        return NULL;
    int n = strcmp(f, "major") == 0 ? 0 : strcmp(f, "minor") == 0 ? 1 : 2;
    return version_part(v->version, n);
}

static int expand_part(const char *s, size_t len, bool field, void *ctx, struct dlc_error **err)
{
    struct expand_ctx *c = ctx;
    if (!field) {
        dlc_strbuf_append_len(&c->out, s, len);
        return 0;
    }
    _cleanup_free_ char *name = xstrndup(s, len);
    _cleanup_free_ char *value = field_value(c->v, name);
    if (value == NULL || value[0] == '\0') {
        if (c->v->version && (strcmp(name, "minor") == 0 || strcmp(name, "patch") == 0))
            return dlc_error_set(err, EINVAL, "%s: '%s' uses {%s}, but version '%s' has no %s part",
                                 c->what, c->tmpl, name, c->v->version, name);
        return dlc_error_set(err, EINVAL, "%s: '%s' uses {%s}, which this image does not define",
                             c->what, c->tmpl, name);
    }
    dlc_strbuf_append(&c->out, value);
    return 0;
}

int btemplate_expand(const char *tmpl, const struct btemplate_vars *v, const char *what, char **ret,
                     struct dlc_error **err)
{
    struct expand_ctx c = {v, what, tmpl, DLC_STRBUF_INIT};
    if (walk(tmpl, what, expand_part, &c, err) < 0) {
        dlc_strbuf_release(&c.out);
        return -1;
    }
    _cleanup_free_ char *tag = dlc_strbuf_detach(&c.out, NULL);
    if (!oci_tag_is_valid(tag))
        return dlc_error_set(err, EINVAL,
                             "%s: '%s' gives '%s', which is not a valid tag "
                             "([A-Za-z0-9_][A-Za-z0-9._-]{0,127})",
                             what, tmpl, tag);
    *ret = TAKE_PTR(tag);
    return 0;
}
