/* spawn-capture.c: running a helper program and reading what it prints (git, ...). */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include "common.h"

extern char **environ;

static int read_all(int fd, size_t max, const char *what, struct dlc_strbuf *out,
                    struct dlc_error **err)
{
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return dlc_error_set_errno(err, errno, "read output of %s", what);
        if (n == 0)
            return 0;
        if (out->len + (size_t)n > max)
            return dlc_error_set(err, EFBIG, "output of %s exceeds %zu bytes", what, max);
        dlc_strbuf_append_len(out, buf, (size_t)n);
    }
}

static int wait_child(pid_t pid, const char *what, struct dlc_error **err)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return dlc_error_set_errno(err, errno, "wait for %s", what);
    }
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

int dlc_spawn_capture(const char *const argv[], bool quiet, size_t max, char **ret_out,
                      size_t *ret_len, struct dlc_error **err)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return dlc_error_set_errno(err, errno, "run %s: pipe", argv[0]);
    _cleanup_close_ int rfd = fds[0];
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (quiet)
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int r = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (r != 0)
        return dlc_error_set_errno(err, r, "run %s", argv[0]);
    _cleanup_strbuf_ struct dlc_strbuf out = DLC_STRBUF_INIT;
    struct dlc_error *read_err = NULL;
    read_all(rfd, max, argv[0], &out, &read_err);
    close(TAKE_FD(rfd)); /* a child writing more than max gets EPIPE, not a hang */
    int status = wait_child(pid, argv[0], err);
    if (read_err != NULL)
        return dlc_error_move(err, &read_err);
    if (status < 0)
        return -1;
    *ret_out = dlc_strbuf_detach(&out, ret_len);
    return status;
}
