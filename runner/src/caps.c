/* caps.c: capability sets (docker's defaults, --cap-add/--cap-drop) and applying them. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#include "runner-internal.h"

/* moby's oci/caps defaults */
static const cap_value_t default_caps[] = {
        CAP_CHOWN,   CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,
        CAP_MKNOD,   CAP_NET_RAW,      CAP_SETGID,           CAP_SETUID,
        CAP_SETFCAP, CAP_SETPCAP,      CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
        CAP_KILL,    CAP_AUDIT_WRITE,
};

int runner_cap_last(void)
{
    static int last = -1;
    if (last < 0) {
        last = CAP_LAST_CAP;
        char buf[16] = "";
        int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && read(fd, buf, sizeof(buf) - 1) > 0)
            last = (int)strtol(buf, NULL, 10);
        if (fd >= 0)
            close(fd);
        if (last <= 0 || last > 63)
            last = CAP_LAST_CAP;
    }
    return last;
}

static int cap_parse(const char *arg, const char *flag, uint64_t *ret, struct dlc_error **err)
{
    if (strcasecmp(arg, "ALL") == 0) {
        int last = runner_cap_last();
        *ret = last >= 63 ? ~0ull : (1ull << (last + 1)) - 1;
        return 0;
    }
    _cleanup_free_ char *name = dlc_startswith(arg, "CAP_") || dlc_startswith(arg, "cap_")
                                        ? xstrdup(arg)
                                        : xasprintf("cap_%s", arg);
    for (char *p = name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    cap_value_t v;
    if (cap_from_name(name, &v) < 0 || v < 0 || v > runner_cap_last())
        return dlc_error_set(err, EINVAL, "%s '%s': unknown capability", flag, arg);
    *ret = 1ull << v;
    return 0;
}

/* What a container can be given: all capabilities in a user namespace of its own (a new
 * one starts with a full bounding set), else at most our own bounding set (dlc may run
 * somewhere that took some away: docker's default set or ALL must not then fail). */
static uint64_t grantable(const struct runner_spec *spec)
{
    int last = runner_cap_last();
    uint64_t all = last >= 63 ? ~0ull : (1ull << (last + 1)) - 1;
    if (spec->userns || !runner_privileged())
        return all;
    uint64_t have = 0;
    for (int i = 0; i <= last; i++)
        if (prctl(PR_CAPBSET_READ, i, 0, 0, 0) == 1)
            have |= 1ull << i;
    return have;
}

int runner_caps_compute(const struct runner_spec *spec, uint64_t *ret, struct dlc_error **err)
{
    uint64_t caps = 0, can = grantable(spec);
    for (size_t i = 0; i < DLC_ARRAY_SIZE(default_caps); i++)
        caps |= 1ull << default_caps[i];
    for (size_t i = 0; spec->cap_drop && spec->cap_drop[i]; i++) {
        uint64_t c;
        if (cap_parse(spec->cap_drop[i], "--cap-drop", &c, err) < 0)
            return -1;
        caps &= ~c;
    }
    for (size_t i = 0; spec->cap_add && spec->cap_add[i]; i++) {
        uint64_t c;
        if (cap_parse(spec->cap_add[i], "--cap-add", &c, err) < 0)
            return -1;
        if (strcasecmp(spec->cap_add[i], "ALL") != 0 && (c & ~can))
            return dlc_error_set(err, EPERM,
                                 "--cap-add '%s': dlc itself lacks it (not in its bounding set)",
                                 spec->cap_add[i]);
        caps |= c;
    }
    *ret = caps & can;
    return 0;
}

char **runner_caps_names(uint64_t caps)
{
    char **v = xcalloc(1, sizeof(char *));
    for (int c = 0; c <= runner_cap_last(); c++) {
        if (!(caps & (1ull << c)))
            continue;
        char *n = cap_to_name(c);
        _cleanup_free_ char *up = xstrdup(n);
        cap_free(n);
        for (char *p = up; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        v = dlc_strv_push(v, up);
    }
    return v;
}

/* Sets permitted = effective = caps, inheritable = none. */
static int set_proc_caps(uint64_t caps, struct dlc_error **err)
{
    cap_t c = cap_init();
    cap_value_t list[64];
    int n = 0;
    for (int i = 0; i <= runner_cap_last(); i++)
        if (caps & (1ull << i))
            list[n++] = i;
    int r = 0;
    if (n > 0 && (cap_set_flag(c, CAP_PERMITTED, n, list, CAP_SET) < 0 ||
                  cap_set_flag(c, CAP_EFFECTIVE, n, list, CAP_SET) < 0))
        r = dlc_error_set_errno(err, errno, "set capabilities");
    if (r == 0 && cap_set_proc(c) < 0)
        r = dlc_error_set_errno(err, errno, "set capabilities");
    cap_free(c);
    return r;
}

int runner_caps_drop_bounding(uint64_t caps, struct dlc_error **err)
{
    for (int i = 0; i <= runner_cap_last(); i++)
        if (!(caps & (1ull << i)) && prctl(PR_CAPBSET_DROP, i, 0, 0, 0) < 0 && errno != EINVAL)
            return dlc_error_set_errno(err, errno, "drop capability %d from the bounding set", i);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return dlc_error_set_errno(err, errno, "clear ambient capabilities");
    return 0;
}

int runner_caps_apply(uint64_t caps, uid_t uid, struct dlc_error **err)
{
    /* docker: a non-root user starts with no effective capabilities (the bounding set
     * still limits what a setuid binary could gain, and no_new_privs stops even that) */
    return set_proc_caps(uid == 0 ? caps : 0, err);
}
