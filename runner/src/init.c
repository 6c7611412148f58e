/* init.c: the container side of a run. The cloned child finishes the setup that must
 * happen inside the namespaces (mounts, hostname, loopback, user lookup), forks the
 * command, and stays as pid 1: it forwards signals to the command, reaps orphans, and
 * exits with the command's status when it ends (which ends the pid namespace).
 *
 * The command's process drops to the container's confinement just before execve: rlimits,
 * user and groups, capabilities, no_new_privs, the seccomp filter. Any failure before the
 * exec is reported over err_fd as "<exit code> <message>". */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "runner-internal.h"

#define DEFAULT_PATH   "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define DEFAULT_NOFILE 1048576

static const int forwarded_signals[] = {SIGINT,  SIGTERM, SIGHUP,   SIGQUIT,
                                        SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT};

void runner_signals_forwarded(sigset_t *set)
{
    sigemptyset(set);
    for (size_t i = 0; i < DLC_ARRAY_SIZE(forwarded_signals); i++)
        sigaddset(set, forwarded_signals[i]);
}

static DLC_NORETURN void fail(const struct container_config *c, int code, struct dlc_error **err)
{
    char buf[4000];
    int n = snprintf(buf, sizeof(buf), "%d %s", code, err && *err ? (*err)->msg : "failed");
    if (n > (int)sizeof(buf) - 1)
        n = (int)sizeof(buf) - 1;
    if (write(c->err_fd, buf, (size_t)n) < 0) {
        /* nobody to tell: the monitor is gone */
    }
    _exit(code);
}

static const char *env_lookup(char *const *env, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
            return env[i] + n + 1;
    return NULL;
}

/* The exit code for an execve failure: 127 when nothing is there, 126 otherwise. */
static int exec_code(int e)
{
    return e == ENOENT || e == ENOTDIR ? RUNNER_EXIT_NOT_FOUND : RUNNER_EXIT_NOT_EXECUTABLE;
}

/* execvp with the container's PATH; returns only on failure, with the exit code for it
 * (err says why). */
static int exec_command(char *const *args, char *const *env, struct dlc_error **err)
{
    const char *cmd = args[0];
    if (strchr(cmd, '/')) {
        execve(cmd, args, env);
        int e = errno;
        dlc_error_set_errno(err, e, "exec %s", cmd);
        return exec_code(e);
    }
    const char *path = env_lookup(env, "PATH");
    bool denied = false;
    for (const char *p = path ? path : DEFAULT_PATH; *p;) {
        size_t n = strcspn(p, ":");
        _cleanup_free_ char *full = xasprintf("%.*s/%s", (int)n ? (int)n : 1, n ? p : ".", cmd);
        execve(full, args, env);
        int e = errno;
        if (e != EACCES && e != ENOENT && e != ENOTDIR) {
            dlc_error_set_errno(err, e, "exec %s", full);
            return exec_code(e);
        }
        denied |= e == EACCES;
        p += n + (p[n] == ':');
    }
    if (denied) {
        dlc_error_set(err, EACCES, "exec %s: permission denied", cmd);
        return RUNNER_EXIT_NOT_EXECUTABLE;
    }
    dlc_error_set(err, ENOENT, "exec %s: executable file not found in $PATH", cmd);
    return RUNNER_EXIT_NOT_FOUND;
}

/* Our own limits are the ceiling: nothing is raised above the caller's hard limit
 * (podman fails on exactly that when the caller's limit is lower than its default). */
static void set_rlimit(int resource, rlim_t soft, rlim_t hard)
{
    struct rlimit cur;
    if (getrlimit(resource, &cur) < 0)
        return;
    if (hard > cur.rlim_max)
        hard = cur.rlim_max;
    if (soft > hard)
        soft = hard;
    struct rlimit rl = {soft, hard};
    if (setrlimit(resource, &rl) < 0)
        dlc_debug("setrlimit %d: %s, ignoring", resource, strerror(errno));
}

static void apply_rlimits(const struct runner_spec *spec)
{
    set_rlimit(RLIMIT_NOFILE, DEFAULT_NOFILE, DEFAULT_NOFILE);
    for (size_t i = 0; i < spec->n_rlimits; i++)
        set_rlimit(spec->rlimits[i].resource, spec->rlimits[i].soft, spec->rlimits[i].hard);
}

static int switch_user(const struct container_config *c, const struct runner_user *u,
                       struct dlc_error **err)
{
    /* a rootless user namespace denies setgroups (and has one group anyway) */
    if (!(c->userns && !runner_privileged()) && setgroups(u->n_groups, u->groups) < 0)
        return dlc_error_set_errno(err, errno, "setgroups");
    if (setresgid(u->gid, u->gid, u->gid) < 0 || setresuid(u->uid, u->uid, u->uid) < 0) {
        if (errno == EINVAL)
            return dlc_error_set(err, EINVAL,
                                 "user %u:%u is not mapped in the user namespace (a rootless "
                                 "container has only root)",
                                 (unsigned)u->uid, (unsigned)u->gid);
        return dlc_error_set_errno(err, errno, "switch to user %u", (unsigned)u->uid);
    }
    return 0;
}

static DLC_NORETURN void command_main(const struct container_config *c, const struct runner_user *u,
                                      char **env)
{
    struct dlc_error *err = NULL;
    sigset_t none;
    sigemptyset(&none);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL); /* ignored signals would survive execve */
    sigprocmask(SIG_SETMASK, &none, NULL);
    apply_rlimits(c->spec);
    if (runner_caps_drop_bounding(c->caps, &err) < 0 || switch_user(c, u, &err) < 0 ||
        runner_caps_apply(c->caps, u->uid, &err) < 0)
        fail(c, RUNNER_EXIT_FAILED, &err);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        dlc_error_set_errno(&err, errno, "no_new_privs");
        fail(c, RUNNER_EXIT_FAILED, &err);
    }
    const char *cwd = c->cwd ? c->cwd : "/";
    if (chdir(cwd) < 0) {
        dlc_error_set_errno(&err, errno, "chdir to %s", cwd);
        fail(c, RUNNER_EXIT_FAILED, &err);
    }
    syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
    if (c->bpf.prog && runner_seccomp_load(&c->bpf) < 0) {
        dlc_error_set_errno(&err, errno, "load the seccomp filter");
        fail(c, RUNNER_EXIT_FAILED, &err);
    }
    int code = exec_command(c->args, env, &err);
    fail(c, code, &err);
}

static int status_code(int st)
{
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

/* pid 1: forward signals, reap, leave with the command. */
static DLC_NORETURN void init_loop(pid_t command)
{
    syscall(SYS_close_range, 3u, ~0u, 0u);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    cap_t caps = cap_init(); /* only what forwarding needs */
    cap_value_t kill_cap = CAP_KILL;
    cap_set_flag(caps, CAP_PERMITTED, 1, &kill_cap, CAP_SET);
    cap_set_flag(caps, CAP_EFFECTIVE, 1, &kill_cap, CAP_SET);
    cap_set_proc(caps);
    cap_free(caps);
    sigset_t set;
    runner_signals_forwarded(&set);
    sigaddset(&set, SIGCHLD);
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&set, &si);
        if (sig < 0)
            continue;
        if (sig != SIGCHLD) {
            kill(command, sig);
            continue;
        }
        int st;
        pid_t p;
        while ((p = waitpid(-1, &st, WNOHANG)) > 0)
            if (p == command)
                _exit(status_code(st));
    }
}

static char **final_env(const struct container_config *c, const struct runner_user *u)
{
    char **env = dlc_strv_copy(c->env);
    if (env_lookup(env, "HOME") == NULL) {
        _cleanup_free_ char *home = xasprintf("HOME=%s", u->home ? u->home : "/");
        env = dlc_strv_push(env, home);
    }
    return env;
}

void runner_container_main(struct container_config *c)
{
    struct dlc_error *err = NULL;
    if (c->pdeathsig)
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    char go;
    if (read(c->sync_fd, &go, 1) != 1)
        _exit(RUNNER_EXIT_FAILED); /* the monitor died before letting us go */
    if (setsid() < 0)
        dlc_error_set_errno(&err, errno, "setsid");
    if (err == NULL && runner_mounts_setup(c, &err) < 0)
        dlc_error_wrap(&err, "container setup");
    if (err == NULL && sethostname(c->hostname, strlen(c->hostname)) < 0)
        dlc_error_set_errno(&err, errno, "sethostname");
    if (err == NULL && c->netns && runner_netns_loopback_up(&err) < 0)
        dlc_error_wrap(&err, "network");
    struct runner_user u;
    if (err == NULL && runner_user_resolve(NULL, c->user, &u, &err) < 0)
        dlc_error_wrap(&err, "user");
    if (err)
        fail(c, RUNNER_EXIT_FAILED, &err);
    /* the monitor has put us into our cgroups (and says so) before anything of the image
     * runs; the cgroup namespace is rooted there */
    if (read(c->sync_fd, &go, 1) != 1)
        _exit(RUNNER_EXIT_FAILED);
    close(c->sync_fd);
    if (c->cgroupns && unshare(CLONE_NEWCGROUP) < 0) {
        dlc_error_set_errno(&err, errno, "cgroup namespace");
        fail(c, RUNNER_EXIT_FAILED, &err);
    }
    char **env = final_env(c, &u);
    /* SIGCHLD must be pending for sigwaitinfo, not discarded: block it before the fork so
     * a command that exits at once is not missed */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    pid_t command = fork();
    if (command == 0)
        command_main(c, &u, env);
    if (command < 0) {
        dlc_error_set_errno(&err, errno, "fork");
        fail(c, RUNNER_EXIT_FAILED, &err);
    }
    init_loop(command);
}
