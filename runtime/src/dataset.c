/* dataset.c: the data in a channel directory. The seeds' convention is train.npy (features)
 * and labels.npy; SageMaker's built-in algorithms use CSV with the label first. Either may
 * be gzip'd. */
#include <errno.h>
#include <string.h>

#include "tensor-internal.h"

/* The first of the names (each also tried with ".gz") that exists in dir, or NULL. */
static char *find_file(const char *dir, const char *const *names)
{
    for (size_t i = 0; names[i] != NULL; i++) {
        for (int gz = 0; gz < 2; gz++) {
            _cleanup_free_ char *name = xasprintf("%s%s", names[i], gz ? ".gz" : "");
            char *p = dlc_path_join(dir, name);
            if (dlc_path_exists(p))
                return p;
            free(p);
        }
    }
    return NULL;
}

static int load_npy_pair(const char *xpath, const char *ypath, struct tensor_array *ret_x,
                         struct tensor_array *ret_y, struct dlc_error **err)
{
    struct tensor_array x = {0}, y = {0};
    if (tensor_npy_read(xpath, &x, err) < 0 || tensor_npy_read(ypath, &y, err) < 0) {
        tensor_array_release(&x);
        return -1;
    }
    if (x.rows != y.rows) {
        dlc_error_set(err, EINVAL, "%s has %lld rows but %s has %lld", dlc_path_basename(xpath),
                      (long long)x.rows, dlc_path_basename(ypath), (long long)y.rows);
        tensor_array_release(&x);
        tensor_array_release(&y);
        return -1;
    }
    *ret_x = x;
    *ret_y = y;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* *.csv and *.csv.gz in dir, sorted. */
static char **csv_files(const char *dir)
{
    char **v = xcalloc(1, sizeof(char *));
    _cleanup_dir_ DIR *d = opendir(dir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (de->d_name[0] != '.' &&
            (dlc_endswith(de->d_name, ".csv") || dlc_endswith(de->d_name, ".csv.gz")))
            v = dlc_strv_push(v, de->d_name);
    }
    qsort(v, dlc_strv_len(v), sizeof(char *), cmp_str);
    return v;
}

/* Appends src's rows to *dst (which may be empty). */
static int append_rows(struct tensor_array *dst, struct tensor_array *src, const char *what,
                       struct dlc_error **err)
{
    if (dst->data == NULL) {
        *dst = *src;
        *src = (struct tensor_array){0};
        return 0;
    }
    if (src->cols != dst->cols)
        return dlc_error_set(err, EINVAL, "%s has %lld columns, the files before it %lld", what,
                             (long long)src->cols + 1, (long long)dst->cols + 1);
    struct tensor_array n = {0};
    if (tensor_array_alloc(&n, dst->rows + src->rows, dst->cols, err) < 0)
        return -1;
    memcpy(n.data, dst->data, (size_t)(dst->rows * dst->cols) * sizeof(float));
    memcpy(n.data + dst->rows * dst->cols, src->data,
           (size_t)(src->rows * src->cols) * sizeof(float));
    tensor_array_release(dst);
    *dst = n;
    return 0;
}

static int load_csvs(const char *dir, char **files, struct tensor_array *ret_x,
                     struct tensor_array *ret_y, struct dlc_error **err)
{
    struct tensor_array x = {0}, y = {0};
    int r = 0;
    for (size_t i = 0; files[i] != NULL && r == 0; i++) {
        _cleanup_free_ char *path = dlc_path_join(dir, files[i]);
        struct tensor_array fx = {0}, fy = {0};
        r = tensor_csv_read(path, true, &fx, &fy, err);
        if (r == 0)
            r = append_rows(&x, &fx, files[i], err);
        if (r == 0)
            r = append_rows(&y, &fy, files[i], err);
        tensor_array_release(&fx);
        tensor_array_release(&fy);
    }
    if (r < 0) {
        tensor_array_release(&x);
        tensor_array_release(&y);
        return -1;
    }
    *ret_x = x;
    *ret_y = y;
    return 0;
}

int tensor_channel_load(const char *dir, const char *channel, struct tensor_array *ret_x,
                        struct tensor_array *ret_y, struct dlc_error **err)
{
    _cleanup_free_ char *own = xasprintf("%s.npy", channel);
    const char *const xnames[] = {own, "train.npy", "x.npy", "data.npy", NULL};
    const char *const ynames[] = {"labels.npy", "y.npy", NULL};
    _cleanup_free_ char *xpath = find_file(dir, xnames);
    _cleanup_free_ char *ypath = find_file(dir, ynames);
    if (!dlc_is_dir(dir))
        return dlc_error_set(err, ENOENT, "channel %s: %s is not a directory", channel, dir);
    if (xpath != NULL && ypath == NULL)
        return dlc_error_set(err, ENOENT, "channel %s: %s has no labels.npy beside it", channel,
                             dlc_path_basename(xpath));
    if (xpath != NULL) {
        if (load_npy_pair(xpath, ypath, ret_x, ret_y, err) < 0)
            return dlc_error_wrap(err, "channel %s", channel);
        return 0;
    }
    _cleanup_strv_ char **csvs = csv_files(dir);
    if (csvs[0] == NULL)
        return dlc_error_set(err, ENOENT,
                             "channel %s: no data in %s (expected train.npy + labels.npy, or "
                             ".csv files with the label in the first column)",
                             channel, dir);
    if (load_csvs(dir, csvs, ret_x, ret_y, err) < 0)
        return dlc_error_wrap(err, "channel %s", channel);
    return 0;
}
