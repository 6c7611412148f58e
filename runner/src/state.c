/* state.c: containers/<id>/: state.json, the lock that tells a live container from a dead
 * one, and the commands that work on containers (ps, logs, stop, rm).
 *
 * The process that monitors a container holds an exclusive flock on its directory for the
 * container's whole life; anyone who can take the lock knows no monitor is left, so state
 * that still says "running" is stale (its dlc was killed) and is cleaned up. The monitor
 * writes "exited" before it reaps the container's init, so while state.json says
 * "running" the pid in it cannot have been reused. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "runner-internal.h"

#define STATE_MAX (1u << 20)

static char *containers_dir(const char *root)
{
    return dlc_path_join(root, "containers");
}

static bool is_id(const char *s)
{
    size_t n = strlen(s);
    return n == 64 && strspn(s, "0123456789abcdef") == 64;
}

static void new_id(char id[65])
{
    unsigned char raw[32];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        for (size_t i = 0; i < sizeof(raw); i++)
            raw[i] = (unsigned char)((ts.tv_nsec >> (i % 8)) ^ (getpid() * 31 + (int)i));
    }
    dlc_hex_encode(raw, sizeof(raw), id);
}

/* ---- reading state ------------------------------------------------------------------- */

void runner_info_release(struct runner_info *in)
{
    free(in->name);
    free(in->image);
    dlc_strv_free(in->command);
    memset(in, 0, sizeof(*in));
}

void runner_infos_free(struct runner_info *infos, size_t n)
{
    for (size_t i = 0; i < n; i++)
        runner_info_release(&infos[i]);
    free(infos);
}

struct state_extra {
    bool remove;
    char **cgroups;
};

static int read_state(const char *dir, struct runner_info *in, struct state_extra *x,
                      struct dlc_error **err)
{
    _cleanup_free_ char *p = dlc_path_join(dir, "state.json");
    json_auto_t *j = dlc_json_load_file(p, STATE_MAX, err);
    if (j == NULL)
        return -1;
    const char *id = NULL, *name = NULL, *image = NULL, *state = NULL;
    int64_t pid = 0, code = -1;
    if (dlc_json_get_string(j, "id", true, p, &id, err) < 0 ||
        dlc_json_get_string(j, "name", false, p, &name, err) < 0 ||
        dlc_json_get_string(j, "image", false, p, &image, err) < 0 ||
        dlc_json_get_string(j, "state", true, p, &state, err) < 0 ||
        dlc_json_get_int(j, "pid", false, p, &pid, err) < 0 ||
        dlc_json_get_int(j, "exit_code", false, p, &code, err) < 0 ||
        dlc_json_get_int(j, "created", false, p, &in->created, err) < 0 ||
        dlc_json_get_int(j, "finished", false, p, &in->finished, err) < 0 ||
        dlc_json_get_bool(j, "detached", false, p, &in->detached, err) < 0 ||
        dlc_json_get_strv(j, "command", false, p, &in->command, err) < 0)
        return -1;
    snprintf(in->id, sizeof(in->id), "%s", id);
    in->name = name ? xstrdup(name) : NULL;
    in->image = xstrdup(image ? image : "");
    in->state = strcmp(state, "running") == 0 ? RUNNER_STATE_RUNNING : RUNNER_STATE_EXITED;
    in->pid = (pid_t)pid;
    in->exit_code = (int)code;
    if (x) {
        x->remove = false;
        dlc_json_get_bool(j, "remove", false, p, &x->remove, NULL);
        x->cgroups = NULL;
        dlc_json_get_strv(j, "cgroups", false, p, &x->cgroups, NULL);
    }
    return 0;
}

/* Opens containers/<name> and tries to lock it: 1 when locked by us (no monitor), 0 when
 * a monitor holds it, -1 on error. */
static int try_lock(const char *dir, int how, int *ret_fd)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (flock(fd, how | LOCK_NB) == 0) {
        *ret_fd = fd;
        return 1;
    }
    int e = errno;
    close(fd);
    errno = e;
    return e == EWOULDBLOCK ? 0 : -1;
}

static void remove_cgroups(char **paths)
{
    for (size_t i = 0; paths && paths[i]; i++)
        if (rmdir(paths[i]) < 0 && errno != ENOENT)
            dlc_debug("stale cgroup %s: %s, ignoring", paths[i], strerror(errno));
}

/* ---- writing state ---------------------------------------------------------------- */

static int write_state_json(const char *dir, const json_t *j, struct dlc_error **err)
{
    size_t len = 0;
    _cleanup_free_ char *s = dlc_json_dumps(j, &len);
    _cleanup_free_ char *tmp = dlc_path_join(dir, ".state.json.tmp");
    _cleanup_free_ char *dst = dlc_path_join(dir, "state.json");
    /* no fsync: the state of a container does not outlive a crash of the machine */
    _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || dlc_write_all(fd, s, len, err) < 0 || rename(tmp, dst) < 0)
        return err && *err ? -1 : dlc_error_set_errno(err, errno, "write %s", dst);
    return 0;
}

int runner_state_write(const char *root, const struct runner_container *ct, const char *state,
                       int exit_code, struct dlc_error **err)
{
    (void)root;
    json_auto_t *j = json_object();
    json_object_set_new(j, "id", json_string(ct->cfg.id));
    if (ct->name)
        json_object_set_new(j, "name", json_string(ct->name));
    json_object_set_new(j, "image", json_string(ct->spec->image));
    json_object_set_new(j, "command", dlc_json_from_strv(ct->command));
    json_object_set_new(j, "created", json_integer(ct->created));
    json_object_set_new(j, "state", json_string(state));
    if (strcmp(state, "exited") == 0) {
        json_object_set_new(j, "exit_code", json_integer(exit_code));
        json_object_set_new(j, "finished", json_integer((json_int_t)time(NULL)));
    } else {
        json_object_set_new(j, "pid", json_integer(ct->pid));
    }
    json_object_set_new(j, "stop_signal", json_integer(ct->stop_signal));
    json_object_set_new(j, "stop_timeout", json_integer(ct->spec->stop_timeout));
    json_object_set_new(j, "detached", json_boolean(ct->detached));
    json_object_set_new(j, "remove", json_boolean(ct->spec->remove));
    json_t *cg = json_array();
    for (int c = 0; c < CG_MAX; c++)
        if (ct->cg.paths[c])
            json_array_append_new(cg, json_string(ct->cg.paths[c]));
    json_object_set_new(j, "cgroups", cg);
    return write_state_json(ct->cfg.dir, j, err);
}

/* The name must be unique among existing containers (checked under a lock). */
static int check_name(const char *root, const char *name, struct dlc_error **err)
{
    struct runner_info *infos = NULL;
    size_t n = 0;
    if (runner_list(root, true, &infos, &n, err) < 0)
        return -1;
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++)
        if (infos[i].name && strcmp(infos[i].name, name) == 0)
            r = dlc_error_set(err, EEXIST,
                              "the name '%s' is in use by container %.12s (dlc rm it first)", name,
                              infos[i].id);
    runner_infos_free(infos, n);
    return r;
}

/* containers/<id>, created under a temporary name and locked before it gets its real one,
 * so a concurrent cleanup never takes it for the remains of a dead dlc. */
static int create_locked(const char *cdir, struct runner_container *ct, struct dlc_error **err)
{
    new_id(ct->cfg.id);
    _cleanup_free_ char *tmp = xasprintf("%s/.new-%s", cdir, ct->cfg.id);
    _cleanup_free_ char *dir = dlc_path_join(cdir, ct->cfg.id);
    if (mkdir(tmp, 0700) < 0)
        return dlc_error_set_errno(err, errno, "create %s", tmp);
    int fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || flock(fd, LOCK_EX) < 0 || rename(tmp, dir) < 0) {
        dlc_error_set_errno(err, errno, "create %s", dir);
        if (fd >= 0)
            close(fd);
        struct dlc_error *e2 = NULL;
        if (runner_rm_tree(tmp, &e2) < 0)
            dlc_error_free(&e2);
        return -1;
    }
    ct->lockfd = fd;
    ct->cfg.dir = TAKE_PTR(dir);
    return 0;
}

int runner_state_create(const char *root, struct runner_container *ct, struct dlc_error **err)
{
    _cleanup_free_ char *cdir = containers_dir(root);
    if (mkdir(cdir, 0700) < 0 && errno != EEXIST && dlc_mkdir_p(cdir, 0700, err) < 0)
        return -1;
    if (ct->name == NULL)
        return create_locked(cdir, ct, err);
    /* a name is checked and reserved (state.json written) under one lock */
    _cleanup_free_ char *lp = dlc_path_join(cdir, ".names.lock");
    int names = dlc_lock_path(lp, true, err);
    if (names < 0)
        return -1;
    int r = check_name(root, ct->name, err);
    if (r == 0)
        r = create_locked(cdir, ct, err);
    if (r == 0)
        r = runner_state_write(root, ct, "created", 0, err);
    close(names);
    return r;
}

void runner_state_remove(struct runner_container *ct)
{
    struct dlc_error *err = NULL;
    if (ct->cfg.dir && runner_rm_tree(ct->cfg.dir, &err) < 0) {
        dlc_warn("remove container %.12s: %s", ct->cfg.id, err->msg);
        dlc_error_free(&err);
    }
    if (ct->lockfd >= 0)
        close(ct->lockfd);
    ct->lockfd = -1;
}

/* ---- scanning ------------------------------------------------------------------------ */

/* A container nobody monitors: remove it (--rm, or never started), or record that it
 * ended without a known exit code. Called with its lock held. */
static void cleanup_dead(const char *dir, struct runner_info *in, bool have_state,
                         struct state_extra *x)
{
    struct dlc_error *err = NULL;
    remove_cgroups(x->cgroups);
    if (!have_state || x->remove) {
        if (runner_rm_tree(dir, &err) < 0)
            dlc_error_free(&err);
        in->id[0] = '\0'; /* gone */
        return;
    }
    _cleanup_free_ char *p = dlc_path_join(dir, "state.json");
    json_auto_t *j = dlc_json_load_file(p, STATE_MAX, &err);
    if (j == NULL) {
        dlc_error_free(&err);
        return;
    }
    json_object_set_new(j, "state", json_string("exited"));
    json_object_set_new(j, "exit_code", json_integer(-1));
    json_object_set_new(j, "finished", json_integer((json_int_t)time(NULL)));
    json_object_del(j, "pid");
    if (write_state_json(dir, j, &err) < 0)
        dlc_error_free(&err);
    in->state = RUNNER_STATE_EXITED;
    in->exit_code = -1;
}

/* Reads one container, cleaning it up if it is stale. 1 when *in is filled. */
static int scan_one(const char *cdir, const char *name, struct runner_info *in)
{
    _cleanup_free_ char *dir = dlc_path_join(cdir, name);
    int fd = -1;
    /* shared first: another scanner or `dlc rm` may hold it for a moment; a monitor
     * holds it exclusively for the container's whole life */
    int locked = try_lock(dir, LOCK_SH, &fd);
    if (locked < 0)
        return 0;
    if (dlc_startswith(name, ".new-")) {
        struct dlc_error *err = NULL;
        if (locked && flock(fd, LOCK_EX | LOCK_NB) == 0 && runner_rm_tree(dir, &err) < 0)
            dlc_error_free(&err); /* a creation that died */
        if (fd >= 0)
            close(fd);
        return 0;
    }
    struct state_extra x = {0};
    struct dlc_error *err = NULL;
    bool have = read_state(dir, in, &x, &err) == 0;
    dlc_error_free(&err);
    if (!have)
        snprintf(in->id, sizeof(in->id), "%s", name);
    if (locked && (!have || in->state == RUNNER_STATE_RUNNING) &&
        flock(fd, LOCK_EX | LOCK_NB) == 0) /* no monitor, and no one else cleaning it */
        cleanup_dead(dir, in, have, &x);
    dlc_strv_free(x.cgroups);
    if (fd >= 0)
        close(fd);
    if (in->id[0] == '\0' || !have) {
        runner_info_release(in);
        return 0;
    }
    return 1;
}

static int cmp_created(const void *a, const void *b)
{
    const struct runner_info *x = a, *y = b;
    return x->created < y->created ? -1 : x->created > y->created;
}

int runner_list(const char *root, bool all, struct runner_info **ret, size_t *ret_n,
                struct dlc_error **err)
{
    _cleanup_free_ char *cdir = containers_dir(root);
    _cleanup_dir_ DIR *d = opendir(cdir);
    struct runner_info *out = NULL;
    size_t n = 0;
    if (d == NULL && errno != ENOENT)
        return dlc_error_set_errno(err, errno, "read %s", cdir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (!is_id(de->d_name) && !dlc_startswith(de->d_name, ".new-"))
            continue;
        struct runner_info in = {0};
        if (scan_one(cdir, de->d_name, &in) <= 0)
            continue;
        if (!all && in.state != RUNNER_STATE_RUNNING) {
            runner_info_release(&in);
            continue;
        }
        out = xrealloc(out, (n + 1) * sizeof(*out));
        out[n++] = in;
    }
    if (n > 1)
        qsort(out, n, sizeof(*out), cmp_created);
    *ret = out;
    *ret_n = n;
    return 0;
}

void runner_state_cleanup_stale(const char *root)
{
    struct runner_info *infos = NULL;
    size_t n = 0;
    struct dlc_error *err = NULL;
    if (runner_list(root, false, &infos, &n, &err) < 0)
        dlc_error_free(&err);
    runner_infos_free(infos, n);
}

int runner_find(const char *root, const char *id_or_name, struct runner_info *ret,
                struct dlc_error **err)
{
    struct runner_info *infos = NULL;
    size_t n = 0;
    if (runner_list(root, true, &infos, &n, err) < 0)
        return -1;
    ssize_t found = -1;
    size_t matches = 0, len = strlen(id_or_name);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(infos[i].id, id_or_name) == 0 ||
            (infos[i].name && strcmp(infos[i].name, id_or_name) == 0)) {
            found = (ssize_t)i;
            matches = 1;
            break;
        }
        if (len > 0 && strncmp(infos[i].id, id_or_name, len) == 0) {
            found = (ssize_t)i;
            matches++;
        }
    }
    int r = 0;
    if (matches == 0)
        r = dlc_error_set(err, ENOENT, "no such container: %s", id_or_name);
    else if (matches > 1)
        r = dlc_error_set(err, EINVAL, "'%s' matches more than one container", id_or_name);
    else {
        *ret = infos[found];
        memset(&infos[found], 0, sizeof(infos[found]));
    }
    runner_infos_free(infos, n);
    return r;
}

/* ---- logs, stop, rm ------------------------------------------------------------------ */

static bool monitor_alive(const char *dir)
{
    int fd = -1;
    int r = try_lock(dir, LOCK_SH, &fd);
    if (fd >= 0)
        close(fd);
    return r == 0;
}

static void sleep_ms(long ms)
{
    nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

int runner_logs(const char *root, const char *id_or_name, bool follow, int out,
                struct dlc_error **err)
{
    struct runner_info in;
    if (runner_find(root, id_or_name, &in, err) < 0)
        return -1;
    _cleanup_free_ char *dir = xasprintf("%s/containers/%s", root, in.id);
    bool detached = in.detached;
    runner_info_release(&in);
    if (!detached)
        return dlc_error_set(err, EINVAL,
                             "container %.12s ran in the foreground: its output went to the "
                             "terminal (use dlc run -d to keep a log)",
                             id_or_name);
    _cleanup_free_ char *log = dlc_path_join(dir, "log");
    _cleanup_close_ int fd = open(log, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dlc_error_set_errno(err, errno, "read %s", log);
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return dlc_error_set_errno(err, errno, "read %s", log);
        if (n > 0) {
            if (dlc_write_all(out, buf, (size_t)n, err) < 0)
                return -1;
            continue;
        }
        if (!follow)
            return 0;
        bool alive = monitor_alive(dir);
        /* one more read after the end, for what was written just before it */
        if (!alive && (n = read(fd, buf, sizeof(buf))) <= 0)
            return 0;
        if (n > 0 && dlc_write_all(out, buf, (size_t)n, err) < 0)
            return -1;
        if (n <= 0)
            sleep_ms(100);
    }
}

/* Waits (bounded) until the container's monitor finished and released its lock. */
static void wait_monitor(const char *dir, long timeout_ms)
{
    for (long waited = 0; waited < timeout_ms && monitor_alive(dir); waited += 10)
        sleep_ms(10);
}

/* A pidfd of the container's init, valid only while state.json still says running
 * (the monitor writes "exited" before it reaps, so the pid was not reused). */
static int open_init(const char *root, const char *id, pid_t pid)
{
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0)
        return -1;
    _cleanup_free_ char *dir = xasprintf("%s/containers/%s", root, id);
    struct runner_info again = {0};
    struct dlc_error *err = NULL;
    bool running = read_state(dir, &again, NULL, &err) == 0 &&
                   again.state == RUNNER_STATE_RUNNING && again.pid == pid;
    dlc_error_free(&err);
    runner_info_release(&again);
    if (!running) {
        close(pidfd);
        return -1;
    }
    return pidfd;
}

/* The container's stop signal (the image's StopSignal) and, when *timeout is negative, its
 * --stop-timeout (docker's `stop` without -t); SIGTERM and 10 s when state.json lacks them. */
static int stop_settings(const char *dir, int *timeout)
{
    _cleanup_free_ char *p = dlc_path_join(dir, "state.json");
    struct dlc_error *err = NULL;
    json_auto_t *j = dlc_json_load_file(p, STATE_MAX, &err);
    int64_t sig = SIGTERM, t = 10;
    if (j == NULL || dlc_json_get_int(j, "stop_signal", false, p, &sig, &err) < 0 || sig <= 0 ||
        sig >= NSIG)
        sig = SIGTERM;
    dlc_error_free(&err);
    if (j == NULL || dlc_json_get_int(j, "stop_timeout", false, p, &t, &err) < 0 || t < 0 ||
        t > INT_MAX)
        t = 10;
    dlc_error_free(&err);
    if (*timeout < 0)
        *timeout = (int)t;
    return (int)sig;
}

int runner_stop(const char *root, const char *id_or_name, int timeout, struct dlc_error **err)
{
    struct runner_info in;
    if (runner_find(root, id_or_name, &in, err) < 0)
        return -1;
    _cleanup_free_ char *dir = xasprintf("%s/containers/%s", root, in.id);
    int pidfd =
            in.state == RUNNER_STATE_RUNNING && in.pid > 0 ? open_init(root, in.id, in.pid) : -1;
    runner_info_release(&in);
    if (pidfd < 0)
        return 0; /* not running (any more) */
    int sig = stop_settings(dir, &timeout);
    if (timeout == 0)
        sig = SIGKILL;
    int r = 0;
    if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 && errno != ESRCH)
        r = dlc_error_set_errno(err, errno, "stop %s", id_or_name);
    struct pollfd p = {pidfd, POLLIN, 0};
    if (r == 0 && sig != SIGKILL && poll(&p, 1, timeout * 1000) == 0)
        syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    close(pidfd);
    wait_monitor(dir, 10000);
    return r;
}

int runner_remove(const char *root, const char *id_or_name, bool force, struct dlc_error **err)
{
    struct runner_info in;
    if (runner_find(root, id_or_name, &in, err) < 0)
        return -1;
    _cleanup_free_ char *dir = xasprintf("%s/containers/%s", root, in.id);
    bool running = in.state == RUNNER_STATE_RUNNING;
    runner_info_release(&in);
    if (running && !force)
        return dlc_error_set(err, EBUSY, "container %s is running: stop it first (or use rm -f)",
                             id_or_name);
    if (running && runner_stop(root, id_or_name, 0, err) < 0)
        return -1;
    int fd = -1;
    for (int i = 0; i < 200 && try_lock(dir, LOCK_EX, &fd) == 0; i++)
        sleep_ms(10); /* a concurrent `dlc ps` looks at it for a moment */
    if (fd < 0)
        return dlc_error_set(err, EBUSY, "container %s is still running", id_or_name);
    struct runner_info st = {0};
    struct state_extra x = {0};
    struct dlc_error *e2 = NULL;
    if (read_state(dir, &st, &x, &e2) < 0)
        dlc_error_free(&e2);
    remove_cgroups(x.cgroups);
    dlc_strv_free(x.cgroups);
    runner_info_release(&st);
    int r = runner_rm_tree(dir, err);
    close(fd);
    return r;
}
