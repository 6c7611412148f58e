/* user.c: --user (or the image's User) resolved against the image's /etc/passwd and
 * /etc/group the way docker does: names must exist, a numeric uid need not. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "runner-internal.h"

#define ETC_MAX (4u << 20)

/* Reads a file of the container's root as seen from inside (the caller has pivoted): a
 * missing file reads as empty; FIFOs and devices are refused, so an image cannot block or
 * feed us. */
static char *read_etc(const char *root, const char *name)
{
    _cleanup_free_ char *path = NULL;
    struct dlc_error *e = NULL;
    if (root && dlc_path_resolve_in_root(root, name, &path, &e) < 0) {
        dlc_error_free(&e);
        return xstrdup("");
    }
    int fd = open(path ? path : name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > ETC_MAX) {
        if (fd >= 0)
            close(fd);
        return xstrdup("");
    }
    char *buf = xmalloc((size_t)st.st_size + 1);
    ssize_t n = read(fd, buf, (size_t)st.st_size);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* Splits the next line into up to max ':'-separated fields (in place). */
static int next_entry(char **cursor, char **fields, int max)
{
    while (*cursor && **cursor) {
        char *line = *cursor;
        char *nl = strchr(line, '\n');
        *cursor = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        if (*line == '\0' || *line == '#')
            continue;
        int n = 0;
        for (char *p = line; n < max;) {
            fields[n++] = p;
            p = strchr(p, ':');
            if (p == NULL)
                break;
            *p++ = '\0';
        }
        return n;
    }
    return 0;
}

static bool parse_id(const char *s, uint32_t *ret)
{
    struct dlc_error *e = NULL;
    uint64_t v;
    if (*s < '0' || *s > '9' || dlc_parse_u64(s, NULL, &v, &e) < 0 || v > UINT32_MAX - 1) {
        dlc_error_free(&e);
        return false;
    }
    *ret = (uint32_t)v;
    return true;
}

/* Finds the passwd entry for a name (or uid when name is NULL). */
static bool find_passwd(const char *root, const char *name, uid_t uid, struct runner_user *u)
{
    _cleanup_free_ char *buf = read_etc(root, "/etc/passwd");
    char *cur = buf, *f[7];
    int n;
    while ((n = next_entry(&cur, f, 7)) > 0) {
        uint32_t id, gid;
        if (n < 7 || !parse_id(f[2], &id) || !parse_id(f[3], &gid))
            continue;
        if (name ? strcmp(f[0], name) == 0 : id == uid) {
            u->uid = id;
            u->gid = gid;
            free(u->home);
            u->home = xstrdup(*f[5] ? f[5] : "/");
            free(u->name);
            u->name = xstrdup(f[0]);
            return true;
        }
    }
    return false;
}

static bool find_group(const char *root, const char *name, gid_t *ret)
{
    _cleanup_free_ char *buf = read_etc(root, "/etc/group");
    char *cur = buf, *f[4];
    int n;
    while ((n = next_entry(&cur, f, 4)) > 0) {
        uint32_t id;
        if (n >= 3 && strcmp(f[0], name) == 0 && parse_id(f[2], &id)) {
            *ret = id;
            return true;
        }
    }
    return false;
}

/* Supplementary groups: every group that lists the user as a member. */
static void member_groups(const char *root, struct runner_user *u)
{
    if (u->name == NULL)
        return;
    _cleanup_free_ char *buf = read_etc(root, "/etc/group");
    char *cur = buf, *f[4];
    int n;
    while ((n = next_entry(&cur, f, 4)) > 0 && u->n_groups < RUNNER_MAX_GROUPS) {
        uint32_t id;
        if (n < 4 || !parse_id(f[2], &id) || id == u->gid)
            continue;
        for (char *m = f[3]; *m;) {
            size_t l = strcspn(m, ",");
            if (l == strlen(u->name) && strncmp(m, u->name, l) == 0) {
                u->groups[u->n_groups++] = id;
                break;
            }
            m += l + (m[l] == ',');
        }
    }
}

int runner_user_resolve(const char *root, const char *spec, struct runner_user *u,
                        struct dlc_error **err)
{
    *u = (struct runner_user){0};
    _cleanup_free_ char *user = xstrdup(spec && *spec ? spec : "0");
    char *group = strchr(user, ':');
    if (group)
        *group++ = '\0';
    uint32_t id;
    if (parse_id(user, &id)) {
        if (!find_passwd(root, NULL, id, u)) {
            u->uid = id;
            u->gid = 0;
            u->home = xstrdup(id == 0 ? "/root" : "/");
        }
    } else if (!find_passwd(root, user, 0, u)) {
        return dlc_error_set(err, EINVAL,
                             "unable to find user %s: no matching entries in passwd file", user);
    }
    if (group && *group) {
        gid_t gid;
        if (parse_id(group, &id))
            gid = id;
        else if (!find_group(root, group, &gid)) {
            runner_user_release(u);
            return dlc_error_set(err, EINVAL,
                                 "unable to find group %s: no matching entries in group file",
                                 group);
        }
        u->gid = gid;
    } else {
        member_groups(root, u);
    }
    return 0;
}

void runner_user_release(struct runner_user *u)
{
    free(u->home);
    free(u->name);
    *u = (struct runner_user){0};
}
