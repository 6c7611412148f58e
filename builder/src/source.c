/* source.c: where a build's timestamp, revision and OS label come from.
 *
 * The timestamp is SOURCE_DATE_EPOCH (reproducible-builds.org) when set, else the commit
 * time of the last commit of the git checkout holding the definition, else 0: never the
 * current time, so two builds of the same inputs are byte-identical.
 */
#include <errno.h>
#include <string.h>

#include "builder-internal.h"

#define GIT_OUTPUT_MAX 4096

void bsource_release(struct bsource *s)
{
    free(s->revision);
    free(s->remote);
    memset(s, 0, sizeof(*s));
}

/* Runs git -C dir ARGS; NULL when git is missing or says no (not a checkout). */
static char *git_output(const char *dir, const char *a1, const char *a2, const char *a3)
{
    const char *argv[] = {"git", "-C", dir, a1, a2, a3, NULL};
    _cleanup_error_ struct dlc_error *e = NULL;
    _cleanup_free_ char *out = NULL;
    size_t len = 0;
    int st = dlc_spawn_capture(argv, true, GIT_OUTPUT_MAX, &out, &len, &e);
    if (st != 0)
        return NULL;
    out[strcspn(out, "\n")] = '\0';
    return out[0] ? TAKE_PTR(out) : NULL;
}

static int epoch_from_env(const char *s, int64_t *ret, struct dlc_error **err)
{
    if (dlc_parse_i64(s, "SOURCE_DATE_EPOCH", ret, err) < 0)
        return -1;
    if (*ret < 0 || *ret > 253402300799) /* 9999-12-31 */
        return dlc_error_set(err, EINVAL, "SOURCE_DATE_EPOCH: %s is out of range", s);
    return 0;
}

int bsource_read(const char *dir, struct bsource *ret, struct dlc_error **err)
{
    struct bsource s = {0, NULL, NULL};
    _cleanup_free_ char *log = git_output(dir, "log", "-1", "--format=%H %ct");
    if (log != NULL) {
        char *sp = strchr(log, ' ');
        int64_t t = 0;
        _cleanup_error_ struct dlc_error *e = NULL;
        if (sp != NULL && sp - log == 40 && dlc_parse_i64(sp + 1, NULL, &t, &e) == 0) {
            s.revision = xstrndup(log, 40);
            s.epoch = t;
        }
        s.remote = git_output(dir, "remote", "get-url", "origin");
    }
    const char *env = getenv("SOURCE_DATE_EPOCH");
    if (env != NULL && env[0] != '\0' && epoch_from_env(env, &s.epoch, err) < 0) {
        bsource_release(&s);
        return -1;
    }
    *ret = s;
    return 0;
}

/* One KEY=value line of os-release, unquoted. NULL when absent. */
static char *os_release_value(const char *buf, const char *key)
{
    size_t klen = strlen(key);
    for (const char *line = buf; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, key, klen) != 0 || line[klen] != '=')
            continue;
        const char *v = line + klen + 1;
        size_t len = strcspn(v, "\n");
        if (len >= 2 && (v[0] == '"' || v[0] == '\'') && v[len - 1] == v[0]) {
            v++;
            len -= 2;
        }
        return xstrndup(v, len);
    }
    return NULL;
}

int bsource_os_label(const char *path, char **ret, struct dlc_error **err)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (dlc_read_file(path, 1 << 16, &buf, &len, err) < 0)
        return dlc_error_wrap(err, "os label");
    _cleanup_free_ char *id = os_release_value(buf, "ID");
    _cleanup_free_ char *ver = os_release_value(buf, "VERSION_ID");
    if (id == NULL || id[0] == '\0')
        return dlc_error_set(err, EINVAL, "os label: %s has no ID", path);
    struct dlc_strbuf sb = DLC_STRBUF_INIT;
    dlc_strbuf_append(&sb, id);
    if (ver)
        dlc_strbuf_append(&sb, ver);
    char *label = dlc_strbuf_detach(&sb, NULL);
    for (char *p = label; *p; p++) {
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
        else if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' ||
                   *p == '_'))
            *p = '-';
    }
    *ret = label;
    return 0;
}
