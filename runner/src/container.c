/* container.c: `dlc run` on the host side: image -> layers -> process config -> the
 * container's directory -> cgroup -> clone into namespaces -> monitor -> result. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "runner-internal.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* ---- the process: args, env, user, cwd, hostname --------------------------------------- */

static void env_set(char ***env, const char *kv)
{
    size_t klen = strcspn(kv, "=");
    for (size_t i = 0; *env && (*env)[i]; i++) {
        if (strncmp((*env)[i], kv, klen) == 0 && (*env)[i][klen] == '=') {
            free((*env)[i]);
            (*env)[i] = xstrdup(kv);
            return;
        }
    }
    *env = dlc_strv_push(*env, kv);
}

/* docker: args = Entrypoint + Cmd; a COMMAND replaces Cmd; --entrypoint replaces the
 * Entrypoint and drops the image's Cmd. */
int runner_build_args(const struct runner_spec *spec, const struct oci_image_config *cfg,
                      char ***ret, struct dlc_error **err)
{
    char *const *entry = spec->entrypoint_set ? spec->entrypoint : cfg->config.entrypoint;
    char *const *cmd = spec->cmd ? spec->cmd : spec->entrypoint_set ? NULL : cfg->config.cmd;
    char **args = xcalloc(1, sizeof(char *));
    for (size_t i = 0; entry && entry[i]; i++)
        if (!(i == 0 && spec->entrypoint_set && entry[i][0] == '\0'))
            args = dlc_strv_push(args, entry[i]);
    for (size_t i = 0; cmd && cmd[i]; i++)
        args = dlc_strv_push(args, cmd[i]);
    if (args[0] == NULL) {
        free(args);
        return dlc_error_set(err, EINVAL,
                             "no command: the image has no Entrypoint or Cmd; "
                             "give one after the image name");
    }
    *ret = args;
    return 0;
}

/* The network interface SageMaker code should use: lo without a network, else the host's
 * default route. */
static char *network_interface(const struct runner_spec *spec)
{
    if (spec->network == RUNNER_NET_NONE)
        return xstrdup("lo");
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    struct dlc_error *e = NULL;
    if (dlc_read_file("/proc/net/route", 1 << 20, &buf, &len, &e) < 0) {
        dlc_error_free(&e);
        return xstrdup("eth0");
    }
    for (char *line = strchr(buf, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        char ifname[32], dest[16];
        if (sscanf(line + 1, "%31s %15s", ifname, dest) == 2 && strcmp(dest, "00000000") == 0)
            return xstrdup(ifname);
    }
    return xstrdup("eth0");
}

/* multiprocessing.cpu_count(), which SM_NUM_CPUS reports */
static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static char **build_env(const struct runner_spec *spec, const struct oci_image_config *cfg,
                        const struct container_config *c)
{
    char **env = xcalloc(1, sizeof(char *));
    env_set(&env, DEFAULT_PATH);
    _cleanup_free_ char *host = xasprintf("HOSTNAME=%s", c->hostname);
    env_set(&env, host);
    for (size_t i = 0; cfg->config.env && cfg->config.env[i]; i++)
        env_set(&env, cfg->config.env[i]);
    _cleanup_free_ char *job = spec->name ? xasprintf("TRAINING_JOB_NAME=%s", spec->name)
                                          : xasprintf("TRAINING_JOB_NAME=dlc-%.12s", c->id);
    env_set(&env, job);
    /* the toolkit reads SAGEMAKER_PROGRAM and friends from the final environment */
    _cleanup_strv_ char **probe = dlc_strv_copy(env);
    for (size_t i = 0; spec->env && spec->env[i]; i++)
        env_set(&probe, spec->env[i]);
    _cleanup_free_ char *nic = network_interface(spec);
    _cleanup_strv_ char **sm = runner_sm_env(&spec->sm, probe, nic, online_cpus());
    for (size_t i = 0; sm[i]; i++)
        env_set(&env, sm[i]);
    for (size_t i = 0; spec->env && spec->env[i]; i++)
        env_set(&env, spec->env[i]);
    return env;
}

static int parse_stop_signal(const char *s)
{
    static const struct {
        const char *name;
        int sig;
    } names[] = {{"TERM", SIGTERM}, {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
                 {"HUP", SIGHUP},   {"USR1", SIGUSR1}, {"USR2", SIGUSR2}};
    if (s == NULL || *s == '\0')
        return SIGTERM;
    const char *n = dlc_startswith(s, "SIG") ? s + 3 : s;
    for (size_t i = 0; i < DLC_ARRAY_SIZE(names); i++)
        if (strcmp(n, names[i].name) == 0)
            return names[i].sig;
    int v = (int)strtol(s, NULL, 10);
    return v > 0 && v < NSIG ? v : SIGTERM;
}

/* ---- the upper layer: files the container starts with --------------------------------- */

static void upper_add(struct container_config *c, const char *path, char *content, mode_t mode)
{
    c->upper_entries =
            xrealloc(c->upper_entries, (c->n_upper_entries + 1) * sizeof(*c->upper_entries));
    c->upper_entries[c->n_upper_entries++] = (struct upper_entry){xstrdup(path), content, mode};
}

static void etc_files(struct container_config *c)
{
    const struct runner_spec *spec = c->spec;
    _cleanup_strbuf_ struct dlc_strbuf hosts = DLC_STRBUF_INIT;
    _cleanup_free_ char *host_hosts = NULL;
    size_t len = 0;
    struct dlc_error *e = NULL;
    if (spec->network == RUNNER_NET_HOST &&
        dlc_read_file("/etc/hosts", 1 << 20, &host_hosts, &len, &e) == 0)
        dlc_strbuf_append(&hosts, host_hosts);
    else
        dlc_strbuf_append(&hosts, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
                                  "ip6-loopback\n");
    dlc_error_free(&e);
    /* algo-1 must resolve (the toolkit and MPI look the hosts up) */
    dlc_strbuf_appendf(&hosts, "127.0.0.1\t%s%s\n", c->hostname,
                       strcmp(c->hostname, "algo-1") ? " algo-1" : "");
    upper_add(c, "etc", NULL, 0755);
    upper_add(c, "etc/hostname", xasprintf("%s\n", c->hostname), 0644);
    upper_add(c, "etc/hosts", dlc_strbuf_detach(&hosts, NULL), 0644);
    _cleanup_free_ char *resolv = NULL;
    if (spec->network == RUNNER_NET_HOST &&
        dlc_read_file("/etc/resolv.conf", 1 << 20, &resolv, &len, &e) == 0)
        upper_add(c, "etc/resolv.conf", TAKE_PTR(resolv), 0644);
    dlc_error_free(&e);
}

/* /opt/ml as SageMaker lays it out; these real directories in the upper layer also shadow
 * anything the image has at those paths. */
static int opt_ml(struct container_config *c, struct dlc_error **err)
{
    static const char *const dirs[] = {"opt",
                                       "opt/ml",
                                       "opt/ml/input",
                                       "opt/ml/input/config",
                                       "opt/ml/input/data",
                                       "opt/ml/model",
                                       "opt/ml/output",
                                       "opt/ml/output/data",
                                       "opt/ml/code"};
    static const char *const names[RUNNER_SM_CONFIG_FILES] = {
            "opt/ml/input/config/hyperparameters.json", "opt/ml/input/config/resourceconfig.json",
            "opt/ml/input/config/inputdataconfig.json"};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(dirs); i++)
        upper_add(c, dirs[i], NULL, 0755);
    _cleanup_free_ char *nic = network_interface(c->spec);
    char *files[RUNNER_SM_CONFIG_FILES];
    runner_sm_config_files(&c->spec->sm, nic, files);
    for (size_t i = 0; i < RUNNER_SM_CONFIG_FILES; i++)
        upper_add(c, names[i], files[i], 0644);
    if (c->spec->sm.output_dir) { /* SM_OUTPUT_DATA_DIR must exist in the mounted dir too */
        _cleanup_free_ char *d = dlc_path_join(c->spec->sm.output_dir, "data");
        if (mkdir(d, 0755) < 0 && errno != EEXIST)
            return dlc_error_set_errno(err, errno, "create %s", d);
    }
    return 0;
}

/* ---- preparing and starting ------------------------------------------------------------ */

static void container_init(struct runner_container *ct, const struct runner_spec *spec,
                           const char *root)
{
    memset(ct, 0, sizeof(*ct));
    ct->spec = spec;
    ct->cfg.spec = spec;
    ct->cfg.root = root;
    ct->lockfd = ct->pidfd = ct->netns_fd = ct->sync_wr = ct->err_rd = -1;
    ct->cfg.sync_fd = ct->cfg.err_fd = -1;
    ct->dev.prog_fd = -1;
    ct->detached = spec->detach;
}

static void container_release(struct runner_container *ct)
{
    struct container_config *c = &ct->cfg;
    free(c->dir);
    free(c->rootfs);
    free(c->upper);
    free(c->work);
    dlc_strv_free(c->lowers);
    dlc_strv_free(c->args);
    dlc_strv_free(c->env);
    free(c->cwd);
    free(c->user);
    free(c->hostname);
    runner_bpf_release(&c->bpf);
    for (size_t i = 0; i < c->n_upper_entries; i++) {
        free(c->upper_entries[i].path);
        free(c->upper_entries[i].content);
    }
    free(c->upper_entries);
    free(ct->name);
    dlc_strv_free(ct->command);
    int *fds[] = {&ct->lockfd, &ct->pidfd, &ct->netns_fd, &ct->sync_wr, &ct->err_rd};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(fds); i++)
        if (*fds[i] >= 0) {
            close(*fds[i]);
            *fds[i] = -1;
        }
}

/* The image, its layers and everything computed from its config. */
static int load_image(struct runner_container *ct, const char *root, struct oci_image **ret,
                      struct dlc_error **err)
{
    const struct runner_spec *spec = ct->spec;
    _cleanup_(oci_store_freep) struct oci_store *s = NULL;
    if (oci_store_open(root, &s, err) < 0)
        return -1;
    if (oci_store_load_image(s, spec->image, ret, err) < 0) {
        if ((*err)->code == ENOENT) {
            char *msg = xasprintf("%s; dlc images lists local images, dlc pull fetches one",
                                  (*err)->msg);
            free((*err)->msg);
            (*err)->msg = msg;
        }
        return -1;
    }
    if (runner_layers_prepare(s, *ret, &ct->cfg.lowers, err) < 0)
        return dlc_error_wrap(err, "image '%s'", spec->image);
    return 0;
}

static int prepare(struct runner_container *ct, const char *root, struct dlc_error **err)
{
    const struct runner_spec *spec = ct->spec;
    struct container_config *c = &ct->cfg;
    _cleanup_(oci_image_freep) struct oci_image *img = NULL;
    if (runner_caps_compute(spec, &c->caps, err) < 0 || load_image(ct, root, &img, err) < 0)
        return -1;
    const struct oci_image_config *cfg = img->config;
    if (runner_build_args(spec, cfg, &c->args, err) < 0)
        return -1;
    if (!spec->seccomp_unconfined && runner_seccomp_prepare(root, c->caps, &c->bpf, err) < 0)
        return -1;
    c->userns = spec->userns || !runner_privileged();
    c->netns = spec->network == RUNNER_NET_NONE;
    c->pdeathsig = true;
    ct->name = spec->name ? xstrdup(spec->name) : NULL;
    ct->command = dlc_strv_copy(c->args);
    ct->created = (int64_t)time(NULL);
    ct->stop_signal = parse_stop_signal(cfg->config.stop_signal);
    if (runner_state_create(root, ct, err) < 0)
        return -1;
    c->rootfs = dlc_path_join(c->dir, "rootfs");
    c->upper = dlc_path_join(c->dir, "upper");
    c->work = dlc_path_join(c->dir, "work");
    c->hostname = spec->hostname   ? xstrdup(spec->hostname)
                  : spec->training ? xstrdup("algo-1")
                                   : xstrndup(c->id, 12);
    c->env = build_env(spec, cfg, c);
    const char *wd = spec->workdir ? spec->workdir : cfg->config.working_dir;
    c->cwd = wd && *wd ? xstrdup(wd) : NULL;
    const char *user = spec->user ? spec->user : cfg->config.user;
    c->user = user && *user ? xstrdup(user) : NULL;
    etc_files(c);
    if (opt_ml(c, err) < 0)
        return -1;
    return 0;
}

static int wait_child(struct runner_container *ct)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    while (waitid(P_PIDFD, (id_t)ct->pidfd, &si, WEXITED) < 0 && errno == EINTR)
        ;
    return si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
}

/* Replaces *err with what the (dead) child reported on the setup pipe, if anything. */
static void child_error(struct runner_container *ct, struct dlc_error **err)
{
    char buf[4096];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof(buf) - 1 && (n = read(ct->err_rd, buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    char *msg = strchr(buf, ' ');
    if (len == 0 || msg == NULL || err == NULL)
        return;
    dlc_error_free(err);
    dlc_error_set(err, EPROTO, "%s", msg + 1);
}

static int start(struct runner_container *ct, const char *root, struct dlc_error **err)
{
    struct container_config *c = &ct->cfg;
    /* Device nodes: every writable mount of a container is nodev and /dev is read-only,
     * so without CAP_SYS_ADMIN (which could mount around that) no node it makes can be
     * opened. The device cgroup is for devices passed in (--device, --gpus: their access
     * rules) and for CAP_SYS_ADMIN; skipping it otherwise spares a cgroup attach, which on
     * v1 waits for an RCU grace period. */
    bool device_cgroup = ct->spec->n_devices > 0 || (c->caps & (1ull << CAP_SYS_ADMIN));
    if (runner_cgroup_create(ct->spec, c->id, &ct->cg, err) < 0 ||
        (device_cgroup && runner_devcgroup_create(ct->spec, c->id, &ct->cg, &ct->dev, err) < 0))
        return -1;
    c->cgroupns = ct->cg.version != 0 || ct->dev.version != 0;
    int sync[2], errp[2];
    if (pipe2(sync, O_CLOEXEC) < 0)
        return dlc_error_set_errno(err, errno, "pipe");
    if (pipe2(errp, O_CLOEXEC) < 0) {
        close(sync[0]);
        close(sync[1]);
        return dlc_error_set_errno(err, errno, "pipe");
    }
    c->sync_fd = sync[0];
    c->err_fd = errp[1];
    ct->sync_wr = sync[1];
    ct->err_rd = errp[0];
    pid_t pid = runner_clone(c, &ct->pidfd, err);
    if (pid == 0) {
        close(ct->sync_wr);
        close(ct->err_rd);
        close(ct->lockfd);
        runner_container_main(c);
    }
    close(c->sync_fd);
    close(c->err_fd);
    c->sync_fd = c->err_fd = -1;
    if (pid < 0)
        return -1;
    ct->pid = pid;
    /* The host side's handle on the container's network namespace (port publishing), taken
     * now: once init drops dumpable, a rootless monitor can no longer open its /proc/PID
     * links (the init's memory belongs to our user namespace, where it lacks
     * CAP_SYS_PTRACE). The namespace exists since clone. */
    char ns[64];
    snprintf(ns, sizeof(ns), "/proc/%d/ns/net", (int)pid);
    ct->netns_fd = open(ns, O_RDONLY | O_CLOEXEC);
    if (ct->netns_fd < 0) {
        dlc_error_set_errno(err, errno, "open %s", ns);
        kill(pid, SIGKILL);
        wait_child(ct);
        return -1;
    }
    /* "g": the child sets up its mounts while we move it into its cgroups (on v1 the
     * first write to cgroup.procs waits for an RCU grace period: overlap the two);
     * "c": it may now run the command, confined. */
    if ((c->userns && runner_userns_map(pid, err) < 0) || write(ct->sync_wr, "g", 1) != 1 ||
        runner_cgroup_attach(&ct->cg, pid, err) < 0 ||
        runner_devcgroup_attach(&ct->dev, pid, err) < 0 ||
        runner_state_write(root, ct, "running", 0, err) < 0 || write(ct->sync_wr, "c", 1) != 1) {
        if (!(err && *err))
            dlc_error_set_errno(err, errno, "start the container");
        kill(pid, SIGKILL);
        wait_child(ct);
        child_error(ct, err); /* the child may have failed first: its reason is the real one */
        return -1;
    }
    close(ct->sync_wr);
    ct->sync_wr = -1;
    return 0;
}

/* ---- ending -------------------------------------------------------------------------- */

/* Gives what the container created in a host directory to the directory's owner (real
 * root runs the container as root; SageMaker local mode's root-owned leftovers are a
 * known complaint). Only entries changed since the container started are touched. */
static void chown_new_entries(int dirfd_, uid_t uid, gid_t gid, time_t since, int depth)
{
    int fd = openat(dirfd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    _cleanup_dir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (st.st_ctime >= since && (st.st_uid != uid || st.st_gid != gid) &&
            fchownat(dirfd(d), de->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
            dlc_debug("chown %s: %s, ignoring", de->d_name, strerror(errno));
        if (S_ISDIR(st.st_mode) && depth < 64) {
            int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                chown_new_entries(sub, uid, gid, since, depth + 1);
                close(sub);
            }
        }
    }
}

static void fix_ownership(const struct runner_container *ct)
{
    const struct runner_sagemaker *sm = &ct->spec->sm;
    const char *dirs[] = {sm->model_dir, sm->output_dir, sm->checkpoint_dir};
    if (!runner_privileged()) /* rootless: the caller is root inside, the files are its own */
        return;
    for (size_t i = 0; i < DLC_ARRAY_SIZE(dirs); i++) {
        struct stat st;
        if (dirs[i] == NULL || stat(dirs[i], &st) < 0 || st.st_uid == 0)
            continue;
        int fd = open(dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            chown_new_entries(fd, st.st_uid, st.st_gid, (time_t)ct->created - 1, 0);
            close(fd);
        }
    }
}

static int finish(struct runner_container *ct, const char *root, const struct run_outcome *o,
                  struct runner_result *res, struct dlc_error **err)
{
    const struct runner_spec *spec = ct->spec;
    int r = 0;
    if (o->setup_code) {
        res->exit_code = o->setup_code;
        int code = o->setup_code == RUNNER_EXIT_NOT_FOUND        ? ENOENT
                   : o->setup_code == RUNNER_EXIT_NOT_EXECUTABLE ? EACCES
                                                                 : EPROTO;
        r = dlc_error_set(err, code, "%s", o->setup_msg);
    } else {
        res->exit_code = o->status;
        res->signal = o->init_signal                              ? o->init_signal
                      : o->status > 128 && o->status < 128 + NSIG ? o->status - 128
                                                                  : 0;
    }
    res->oom = runner_cgroup_oom_killed(&ct->cg);
    res->memory = spec->memory;
    res->timed_out = ct->timed_out;
    /* a container whose setup failed leaves nothing behind */
    bool keep = !spec->remove && o->setup_code == 0;
    struct dlc_error *e2 = NULL;
    if (keep && runner_state_write(root, ct, "exited", res->exit_code, &e2) < 0) {
        dlc_warn("%s", e2->msg);
        dlc_error_free(&e2);
    }
    wait_child(ct); /* reap init only now: see state.c */
    runner_cgroup_destroy(&ct->cg);
    runner_devcgroup_destroy(&ct->dev);
    fix_ownership(ct);
    if (spec->hooks.stopped)
        spec->hooks.stopped(ct, spec->hooks.data);
    if (!keep)
        runner_state_remove(ct);
    return r;
}

/* ---- running ------------------------------------------------------------------------- */

static void notify(struct runner_container *ct, const char *fmt, ...) DLC_PRINTF(2, 3);
static void notify(struct runner_container *ct, const char *fmt, ...)
{
    if (ct->notify_fd < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    if (write(ct->notify_fd, msg, strlen(msg)) < 0) {
        /* the dlc that waited for us is gone: nothing to tell */
    }
    close(ct->notify_fd);
    ct->notify_fd = -1;
}

static int open_log(struct runner_container *ct, struct dlc_error **err)
{
    _cleanup_free_ char *p = dlc_path_join(ct->cfg.dir, "log");
    int fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0) {
        if (fd >= 0)
            close(fd);
        return dlc_error_set_errno(err, errno, "open %s", p);
    }
    close(fd);
    return 0;
}

static int run(const char *root, const struct runner_spec *spec, struct runner_result *res,
               int notify_fd, struct dlc_error **err)
{
    sigset_t block, old;
    runner_signals_forwarded(&block);
    sigprocmask(SIG_BLOCK, &block, &old);
    /* a child that died early closes its end of the sync pipe: EPIPE, not a signal */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
    sigaction(SIGPIPE, &ign, &old_pipe);
    runner_state_cleanup_stale(root);
    struct runner_container ct;
    container_init(&ct, spec, root);
    ct.notify_fd = notify_fd;
    int r = prepare(&ct, root, err);
    if (r == 0 && notify_fd >= 0)
        r = open_log(&ct, err);
    if (r == 0)
        r = start(&ct, root, err);
    if (r < 0) {
        runner_cgroup_destroy(&ct.cg);
        runner_devcgroup_destroy(&ct.dev);
        if (ct.cfg.dir)
            runner_state_remove(&ct);
        notify(&ct, "E%d %s", RUNNER_EXIT_FAILED, err && *err ? (*err)->msg : "failed");
    } else {
        snprintf(res->id, sizeof(res->id), "%s", ct.cfg.id);
        struct run_outcome o = {0};
        r = runner_monitor(&ct, &o, err);
        if (r == 0 || o.exited)
            r = finish(&ct, root, &o, res, err);
        if (r < 0)
            notify(&ct, "E%d %s", res->exit_code, err && *err ? (*err)->msg : "failed");
        free(o.setup_msg);
    }
    container_release(&ct);
    sigaction(SIGPIPE, &old_pipe, NULL);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return r;
}

/* -d: a background monitor (double-forked, its own session) runs the container with its
 * output in containers/<id>/log; we return once it says the command started. */
static int run_detached(const char *root, const struct runner_spec *spec, struct runner_result *res,
                        struct dlc_error **err)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return dlc_error_set_errno(err, errno, "pipe");
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        if (setsid() < 0 || fork() != 0)
            _exit(0);
        int null = open("/dev/null", O_RDWR);
        for (int fd = 0; fd < 3 && null >= 0; fd++)
            dup2(null, fd);
        struct runner_result r2 = {0};
        struct dlc_error *e = NULL;
        run(root, spec, &r2, p[1], &e);
        _exit(0);
    }
    close(p[1]);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    char buf[4096];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof(buf) - 1 && (n = read(p[0], buf + len, sizeof(buf) - 1 - len)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(p[0]);
    if (pid < 0)
        return dlc_error_set_errno(err, errno, "fork");
    if (buf[0] == 'S') {
        snprintf(res->id, sizeof(res->id), "%.64s", buf + 1);
        res->exit_code = 0;
        return 0;
    }
    char *msg = NULL;
    long code = buf[0] == 'E' ? strtol(buf + 1, &msg, 10) : RUNNER_EXIT_FAILED;
    res->exit_code = code > 0 && code < 256 ? (int)code : RUNNER_EXIT_FAILED;
    return dlc_error_set(err, EPROTO, "%s",
                         msg && *msg == ' ' ? msg + 1 : "the background monitor died");
}

int runner_run(const char *root, struct runner_spec *spec, struct runner_result *res,
               struct dlc_error **err)
{
    memset(res, 0, sizeof(*res));
    res->exit_code = RUNNER_EXIT_FAILED;
    if (spec->detach)
        return run_detached(root, spec, res, err);
    return run(root, spec, res, -1, err);
}
