/* util.c: small helpers the runner's files share: privilege checks, tree removal. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "runner-internal.h"

/* Real root in the initial user namespace: the only case where chown to arbitrary ids,
 * device nodes and trusted.* xattrs work. */
bool runner_privileged(void)
{
    static int cached = -1;
    if (cached < 0) {
        char buf[128] = "";
        int fd = open("/proc/self/uid_map", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
        if (fd >= 0)
            close(fd);
        unsigned long a = 1, b = 1, c = 0;
        bool initial = n > 0 && sscanf(buf, "%lu %lu %lu", &a, &b, &c) == 3 && a == 0 && b == 0 &&
                       c == 4294967295ul;
        cached = geteuid() == 0 && initial;
    }
    return cached;
}

/* Gives the owner rwx on every directory under fd (recursively, without following). */
static void open_up_dirs(int fd)
{
    int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    _cleanup_dir_ DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (d == NULL) {
        if (dfd >= 0)
            close(dfd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_type != DT_DIR || strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (fchmodat(dirfd(d), de->d_name, 0700, 0) < 0)
            continue;
        int cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cfd >= 0) {
            open_up_dirs(cfd);
            close(cfd);
        }
    }
}

int runner_rm_tree(const char *path, struct dlc_error **err)
{
    struct dlc_error *first = NULL;
    if (dlc_rm_rf(path, &first) == 0)
        return 0;
    if (first->code != EACCES && first->code != EPERM)
        return dlc_error_move(err, &first);
    dlc_error_free(&first);
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && chmod(path, 0700) == 0) {
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            open_up_dirs(fd);
            close(fd);
        }
    }
    return dlc_rm_rf(path, err);
}
