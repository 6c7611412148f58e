/* spec.c: the container spec: construction, adders and the parsers for flags with syntax. */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/resource.h>

#include "runner-internal.h"

struct runner_spec *runner_spec_new(const char *image)
{
    struct runner_spec *spec = xcalloc(1, sizeof(*spec));
    spec->image = xstrdup(image);
    spec->stop_timeout = 10;
    return spec;
}

static void binds_free(struct runner_bind *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(b[i].source);
        free(b[i].destination);
    }
    free(b);
}

static void sagemaker_release(struct runner_sagemaker *sm)
{
    for (size_t i = 0; i < sm->n_channels; i++) {
        free(sm->channels[i].name);
        free(sm->channels[i].dir);
    }
    free(sm->channels);
    for (size_t i = 0; i < sm->n_hps; i++) {
        free(sm->hp_keys[i]);
        free(sm->hp_values[i]);
    }
    free(sm->hp_keys);
    free(sm->hp_values);
    free(sm->model_dir);
    free(sm->output_dir);
    free(sm->code_dir);
    free(sm->checkpoint_dir);
}

void runner_spec_free(struct runner_spec *spec)
{
    if (spec == NULL)
        return;
    free(spec->image);
    free(spec->name);
    dlc_strv_free(spec->cmd);
    dlc_strv_free(spec->entrypoint);
    dlc_strv_free(spec->env);
    free(spec->user);
    free(spec->workdir);
    free(spec->hostname);
    dlc_strv_free(spec->cap_add);
    dlc_strv_free(spec->cap_drop);
    free(spec->rlimits);
    binds_free(spec->binds, spec->n_binds);
    for (size_t i = 0; i < spec->n_devices; i++) {
        free(spec->devices[i].path);
        free(spec->devices[i].host_path);
    }
    free(spec->devices);
    for (size_t i = 0; i < spec->n_files; i++) {
        free(spec->files[i].path);
        free(spec->files[i].content);
    }
    free(spec->files);
    sagemaker_release(&spec->sm);
    free(spec->polls);
    free(spec);
}

void runner_spec_add_bind(struct runner_spec *spec, const char *source, const char *destination,
                          bool readonly)
{
    spec->binds = xrealloc(spec->binds, (spec->n_binds + 1) * sizeof(*spec->binds));
    spec->binds[spec->n_binds++] =
            (struct runner_bind){xstrdup(source), xstrdup(destination), readonly};
}

void runner_spec_add_device(struct runner_spec *spec, const struct runner_device *dev)
{
    spec->devices = xrealloc(spec->devices, (spec->n_devices + 1) * sizeof(*spec->devices));
    struct runner_device *d = &spec->devices[spec->n_devices++];
    *d = *dev;
    d->path = xstrdup(dev->path);
    d->host_path = dev->host_path ? xstrdup(dev->host_path) : NULL;
}

void runner_spec_add_file(struct runner_spec *spec, const char *path, const void *content,
                          size_t len, mode_t mode)
{
    spec->files = xrealloc(spec->files, (spec->n_files + 1) * sizeof(*spec->files));
    char *copy = xmalloc(len + 1);
    memcpy(copy, content, len);
    copy[len] = '\0';
    spec->files[spec->n_files++] = (struct runner_file){xstrdup(path), copy, len, mode};
}

void runner_spec_add_env(struct runner_spec *spec, const char *kv)
{
    spec->env = dlc_strv_push(spec->env, kv);
}

void runner_spec_add_poll(struct runner_spec *spec, const struct runner_poll_source *src)
{
    spec->polls = xrealloc(spec->polls, (spec->n_polls + 1) * sizeof(*spec->polls));
    spec->polls[spec->n_polls++] = *src;
}

int runner_spec_parse_volume(struct runner_spec *spec, const char *arg, struct dlc_error **err)
{
    _cleanup_strv_ char **parts = NULL;
    for (const char *p = arg;;) {
        const char *c = strchr(p, ':');
        _cleanup_free_ char *part = c ? xstrndup(p, (size_t)(c - p)) : xstrdup(p);
        parts = dlc_strv_push(parts, part);
        if (c == NULL)
            break;
        p = c + 1;
    }
    size_t n = dlc_strv_len(parts);
    bool ro = false;
    if (n == 3 && (strcmp(parts[2], "ro") == 0 || strcmp(parts[2], "rw") == 0))
        ro = strcmp(parts[2], "ro") == 0;
    else if (n != 2)
        return dlc_error_set(err, EINVAL, "-v '%s': expected SRC:DST[:ro|rw]", arg);
    if (parts[0][0] == '\0' || parts[1][0] != '/')
        return dlc_error_set(err, EINVAL, "-v '%s': DST must be an absolute path", arg);
    _cleanup_free_ char *src = realpath(parts[0], NULL);
    if (src == NULL)
        return dlc_error_set_errno(err, errno, "-v %s", parts[0]);
    runner_spec_add_bind(spec, src, parts[1], ro);
    return 0;
}

static bool env_name_valid(const char *s, size_t n)
{
    return n > 0 && memchr(s, '\0', n) == NULL;
}

int runner_spec_load_env_file(struct runner_spec *spec, const char *path, struct dlc_error **err)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (dlc_read_file(path, 1u << 20, &buf, &len, err) < 0)
        return dlc_error_wrap(err, "--env-file");
    int lineno = 0;
    for (char *line = buf, *next; line && *line; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r')
            line[--l] = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        if (*line == '\0' || *line == '#')
            continue;
        char *eq = strchr(line, '=');
        size_t nl = eq ? (size_t)(eq - line) : strlen(line);
        if (!env_name_valid(line, nl) || memchr(line, ' ', nl))
            return dlc_error_set(err, EINVAL, "--env-file %s:%d: '%s' is not NAME=VALUE", path,
                                 lineno, line);
        if (eq) {
            runner_spec_add_env(spec, line);
        } else {
            const char *v = getenv(line); /* docker: a bare name takes the caller's value */
            if (v) {
                _cleanup_free_ char *kv = xasprintf("%s=%s", line, v);
                runner_spec_add_env(spec, kv);
            }
        }
    }
    return 0;
}

static const struct {
    const char *name;
    int resource;
} rlimit_names[] = {
        {"core", RLIMIT_CORE},         {"cpu", RLIMIT_CPU},
        {"data", RLIMIT_DATA},         {"fsize", RLIMIT_FSIZE},
        {"locks", RLIMIT_LOCKS},       {"memlock", RLIMIT_MEMLOCK},
        {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
        {"nofile", RLIMIT_NOFILE},     {"nproc", RLIMIT_NPROC},
        {"rss", RLIMIT_RSS},           {"rtprio", RLIMIT_RTPRIO},
        {"rttime", RLIMIT_RTTIME},     {"sigpending", RLIMIT_SIGPENDING},
        {"stack", RLIMIT_STACK},
};

static int parse_rlim(const char *s, const char *arg, rlim_t *ret, struct dlc_error **err)
{
    if (strcmp(s, "unlimited") == 0 || strcmp(s, "-1") == 0) {
        *ret = RLIM_INFINITY;
        return 0;
    }
    uint64_t v;
    if (dlc_parse_u64(s, NULL, &v, err) < 0)
        return dlc_error_wrap(err, "--ulimit %s", arg);
    *ret = (rlim_t)v;
    return 0;
}

int runner_spec_parse_ulimit(struct runner_spec *spec, const char *arg, struct dlc_error **err)
{
    const char *eq = strchr(arg, '=');
    int resource = -1;
    for (size_t i = 0; eq && i < DLC_ARRAY_SIZE(rlimit_names); i++)
        if (strlen(rlimit_names[i].name) == (size_t)(eq - arg) &&
            strncmp(arg, rlimit_names[i].name, (size_t)(eq - arg)) == 0)
            resource = rlimit_names[i].resource;
    if (resource < 0)
        return dlc_error_set(err, EINVAL,
                             "--ulimit '%s': expected NAME=SOFT[:HARD] with a "
                             "name like nofile, nproc, core, stack",
                             arg);
    _cleanup_free_ char *soft_s = xstrdup(eq + 1);
    char *colon = strchr(soft_s, ':');
    if (colon)
        *colon = '\0';
    struct runner_rlimit rl = {resource, 0, 0};
    if (parse_rlim(soft_s, arg, &rl.soft, err) < 0 ||
        parse_rlim(colon ? colon + 1 : soft_s, arg, &rl.hard, err) < 0)
        return -1;
    if (rl.soft > rl.hard)
        return dlc_error_set(err, EINVAL, "--ulimit '%s': soft limit above the hard limit", arg);
    spec->rlimits = xrealloc(spec->rlimits, (spec->n_rlimits + 1) * sizeof(rl));
    spec->rlimits[spec->n_rlimits++] = rl;
    return 0;
}

int runner_parse_cpus(const char *s, uint64_t *ret_milli, struct dlc_error **err)
{
    double d;
    if (dlc_parse_double(s, "--cpus", &d, err) < 0)
        return -1;
    if (!(d > 0) || d > 4096)
        return dlc_error_set(err, EINVAL, "--cpus '%s': must be a number above 0", s);
    uint64_t m = (uint64_t)llround(d * 1000);
    *ret_milli = m ? m : 1;
    return 0;
}

void runner_result_release(struct runner_result *res)
{
    free(res->failure);
    res->failure = NULL;
}
