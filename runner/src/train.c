/* train.c: `dlc train`, SageMaker's estimator.fit() on one machine: run the image's
 * `train` with model and output directories, then pack model.tar.gz and output.tar.gz
 * (libarchive) and read the failure reason the container left in /opt/ml/output/failure. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "runner-internal.h"

#define FAILURE_MAX 1024 /* what SageMaker shows of the failure file */

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of a directory, sorted (reproducible archives). */
static char **sorted_entries(const char *dir)
{
    _cleanup_dir_ DIR *d = opendir(dir);
    char **names = xcalloc(1, sizeof(char *));
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            names = dlc_strv_push(names, de->d_name);
    qsort(names, dlc_strv_len(names), sizeof(char *), cmp_names);
    return names;
}

static int add_file_data(struct archive *a, const char *path, struct dlc_error **err)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return dlc_error_set_errno(err, errno, "pack %s", path);
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        if (archive_write_data(a, buf, (size_t)n) != n)
            return dlc_error_set(err, EIO, "pack %s: %s", path, archive_error_string(a));
    return n < 0 ? dlc_error_set_errno(err, errno, "pack %s", path) : 0;
}

/* Adds dir's tree under the archive path prefix ("" for the top). */
static int add_tree(struct archive *a, const char *dir, const char *prefix, int depth,
                    struct dlc_error **err)
{
    if (depth > 128)
        return dlc_error_set(err, ELOOP, "pack %s: too deep", dir);
    _cleanup_strv_ char **names = sorted_entries(dir);
    for (size_t i = 0; names[i]; i++) {
        _cleanup_free_ char *path = dlc_path_join(dir, names[i]);
        _cleanup_free_ char *name =
                *prefix ? xasprintf("%s/%s", prefix, names[i]) : xstrdup(names[i]);
        struct stat st;
        if (lstat(path, &st) < 0)
            return dlc_error_set_errno(err, errno, "pack %s", path);
        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
            continue; /* sockets, fifos, devices: not artifacts */
        struct archive_entry *e = archive_entry_new();
        archive_entry_copy_stat(e, &st);
        _cleanup_free_ char *ename = S_ISDIR(st.st_mode) ? xasprintf("%s/", name) : NULL;
        archive_entry_set_pathname(e, ename ? ename : name);
        char target[4096];
        ssize_t tl = S_ISLNK(st.st_mode) ? readlink(path, target, sizeof(target) - 1) : -1;
        if (tl >= 0) {
            target[tl] = '\0';
            archive_entry_set_symlink(e, target);
        }
        int r = archive_write_header(a, e) == ARCHIVE_OK ? 0 : -1;
        archive_entry_free(e);
        if (r < 0)
            return dlc_error_set(err, EIO, "pack %s: %s", path, archive_error_string(a));
        if (S_ISREG(st.st_mode) && add_file_data(a, path, err) < 0)
            return -1;
        if (S_ISDIR(st.st_mode) && add_tree(a, path, name, depth + 1, err) < 0)
            return -1;
    }
    return 0;
}

/* dest = tar.gz of dir's contents, written atomically. */
int runner_pack_dir(const char *dir, const char *dest, struct dlc_error **err)
{
    _cleanup_free_ char *tmp = xasprintf("%s.tmp", dest);
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_add_filter_gzip(a);
    int r = archive_write_open_filename(a, tmp) == ARCHIVE_OK
                    ? 0
                    : dlc_error_set(err, EIO, "write %s: %s", tmp, archive_error_string(a));
    if (r == 0)
        r = add_tree(a, dir, "", 0, err);
    if (archive_write_close(a) != ARCHIVE_OK && r == 0)
        r = dlc_error_set(err, EIO, "write %s: %s", tmp, archive_error_string(a));
    archive_write_free(a);
    if (r == 0 && rename(tmp, dest) < 0)
        r = dlc_error_set_errno(err, errno, "write %s", dest);
    if (r < 0)
        unlink(tmp);
    return r;
}

static char *read_failure(const char *output_dir)
{
    _cleanup_free_ char *p = dlc_path_join(output_dir, "failure");
    _cleanup_close_ int fd = open(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return NULL;
    char *buf = xmalloc(FAILURE_MAX + 1);
    ssize_t n = read(fd, buf, FAILURE_MAX);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* A host directory for /opt/ml/<what>: the one given, or a fresh one under scratch. */
static int artifact_dir(char **slot, const char *scratch, const char *what, bool *made,
                        struct dlc_error **err)
{
    *made = *slot == NULL;
    if (!*made)
        return 0;
    *slot = dlc_path_join(scratch, what);
    if (mkdir(*slot, 0755) < 0)
        return dlc_error_set_errno(err, errno, "create %s", *slot);
    return 0;
}

static int pack_results(struct runner_spec *spec, const char *out, struct runner_result *res,
                        struct dlc_error **err)
{
    _cleanup_free_ char *model = dlc_path_join(out, "model.tar.gz");
    _cleanup_free_ char *output = dlc_path_join(out, "output.tar.gz");
    res->failure = read_failure(spec->sm.output_dir);
    if (runner_pack_dir(spec->sm.model_dir, model, err) < 0 ||
        runner_pack_dir(spec->sm.output_dir, output, err) < 0)
        return -1;
    struct stat st; /* the artifacts belong to whoever owns the output directory */
    if (runner_privileged() && stat(out, &st) == 0 && st.st_uid != 0 &&
        (chown(model, st.st_uid, st.st_gid) < 0 || chown(output, st.st_uid, st.st_gid) < 0))
        dlc_debug("chown artifacts: %s, ignoring", strerror(errno));
    return 0;
}

int runner_train(const char *root, struct runner_spec *spec, const char *out_dir,
                 struct runner_result *res, struct dlc_error **err)
{
    memset(res, 0, sizeof(*res));
    res->exit_code = RUNNER_EXIT_FAILED;
    if (spec->detach)
        return dlc_error_set(err, EINVAL, "-d: a training job runs in the foreground");
    if (dlc_mkdir_p(out_dir, 0755, err) < 0)
        return dlc_error_wrap(err, "--output");
    _cleanup_free_ char *out = realpath(out_dir, NULL);
    _cleanup_free_ char *scratch = out ? xasprintf("%s/.dlc-train-XXXXXX", out) : NULL;
    if (out == NULL || mkdtemp(scratch) == NULL)
        return dlc_error_set_errno(err, errno, "--output %s", out_dir);
    bool made_model = false, made_output = false;
    int r = artifact_dir(&spec->sm.model_dir, scratch, "model", &made_model, err);
    if (r == 0)
        r = artifact_dir(&spec->sm.output_dir, scratch, "output", &made_output, err);
    if (r == 0 && spec->cmd == NULL)
        spec->cmd = dlc_strv_push(NULL, "train"); /* how SageMaker starts a training image */
    spec->training = true;
    if (r == 0)
        r = runner_run(root, spec, res, err);
    if (r == 0)
        r = pack_results(spec, out, res, err);
    struct dlc_error *e2 = NULL;
    if (runner_rm_tree(scratch, &e2) < 0) {
        dlc_warn("%s", e2->msg);
        dlc_error_free(&e2);
    }
    if (made_model) {
        free(spec->sm.model_dir);
        spec->sm.model_dir = NULL;
    }
    if (made_output) {
        free(spec->sm.output_dir);
        spec->sm.output_dir = NULL;
    }
    return r;
}
