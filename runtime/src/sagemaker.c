/* sagemaker.c: SageMaker's training contract as seen from inside the container: the /opt/ml
 * tree (or $SAGEMAKER_BASE_DIR's, as sagemaker-training-toolkit allows), its three config
 * files, channels, and the failure file. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "tensor-internal.h"

#define CONFIG_MAX         (16 << 20)
#define FAILURE_MAX_LENGTH 1024 /* what SageMaker shows as FailureReason */

const char *tensor_sm_base_dir(void)
{
    const char *b = getenv("SAGEMAKER_BASE_DIR");
    return b != NULL && *b != '\0' ? b : "/opt/ml";
}

void tensor_sm_env_free(struct tensor_sm_env *env)
{
    if (env == NULL)
        return;
    free(env->base);
    free(env->model_dir);
    free(env->output_dir);
    free(env->output_data_dir);
    free(env->failure_path);
    free(env->checkpoint_dir);
    free(env->code_dir);
    free(env->data_dir);
    free(env->config_dir);
    dlc_strv_free(env->channels);
    free(env->current_host);
    tensor_hparams_free(env->hp);
    free(env);
}

/* A config file; *ret stays NULL (and it is no error) when the file does not exist. */
static int load_optional(const char *dir, const char *name, json_t **ret, struct dlc_error **err)
{
    _cleanup_free_ char *path = dlc_path_join(dir, name);
    *ret = NULL;
    if (!dlc_path_exists(path))
        return 0;
    json_t *j = dlc_json_load_file(path, CONFIG_MAX, err);
    if (j == NULL)
        return -1;
    if (!json_is_object(j)) {
        json_decref(j);
        return dlc_error_set(err, EINVAL, "%s: must be a JSON object", path);
    }
    *ret = j;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Channels from inputdataconfig.json, or the directories under input/data. */
static int read_channels(struct tensor_sm_env *env, struct dlc_error **err)
{
    json_auto_t *idc = NULL;
    if (load_optional(env->config_dir, "inputdataconfig.json", &idc, err) < 0)
        return -1;
    env->channels = xcalloc(1, sizeof(char *));
    const char *name;
    json_t *v;
    json_object_foreach(idc, name, v) {
        if (dlc_streq(json_string_value(json_object_get(v, "TrainingInputMode")), "Pipe"))
            return dlc_error_set(err, EINVAL,
                                 "channel %s: Pipe input mode is not supported (use File)", name);
        env->channels = dlc_strv_push(env->channels, name);
    }
    _cleanup_dir_ DIR *d = idc == NULL ? opendir(env->data_dir) : NULL;
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        _cleanup_free_ char *p = dlc_path_join(env->data_dir, de->d_name);
        if (de->d_name[0] != '.' && dlc_is_dir(p))
            env->channels = dlc_strv_push(env->channels, de->d_name);
    }
    qsort(env->channels, dlc_strv_len(env->channels), sizeof(char *), cmp_str);
    return 0;
}

static int read_resources(struct tensor_sm_env *env, struct dlc_error **err)
{
    json_auto_t *rc = NULL;
    if (load_optional(env->config_dir, "resourceconfig.json", &rc, err) < 0)
        return -1;
    const char *host = "algo-1";
    _cleanup_free_ char *what = dlc_path_join(env->config_dir, "resourceconfig.json");
    if (rc != NULL && dlc_json_get_string(rc, "current_host", false, what, &host, err) < 0)
        return -1;
    env->current_host = xstrdup(host);
    json_t *hosts = json_object_get(rc, "hosts");
    env->n_hosts = json_is_array(hosts) && json_array_size(hosts) > 0 ? json_array_size(hosts) : 1;
    return 0;
}

int tensor_sm_env_load(const char *base, struct tensor_sm_env **ret, struct dlc_error **err)
{
    _cleanup_(tensor_sm_env_freep) struct tensor_sm_env *env = xcalloc(1, sizeof(*env));
    env->base = xstrdup(base ? base : tensor_sm_base_dir());
    env->model_dir = dlc_path_join(env->base, "model");
    env->output_dir = dlc_path_join(env->base, "output");
    env->output_data_dir = dlc_path_join(env->base, "output/data");
    env->failure_path = dlc_path_join(env->base, "output/failure");
    env->checkpoint_dir = dlc_path_join(env->base, "checkpoints");
    env->code_dir = dlc_path_join(env->base, "code");
    env->data_dir = dlc_path_join(env->base, "input/data");
    env->config_dir = dlc_path_join(env->base, "input/config");
    _cleanup_free_ char *hp_path = dlc_path_join(env->config_dir, "hyperparameters.json");
    if (tensor_hparams_load(hp_path, &env->hp, err) < 0 || read_channels(env, err) < 0 ||
        read_resources(env, err) < 0)
        return -1;
    *ret = TAKE_PTR(env);
    return 0;
}

int tensor_sm_channel(const struct tensor_sm_env *env, const char *const *names, char **ret_name,
                      char **ret_dir, struct dlc_error **err)
{
    for (size_t i = 0; names[i] != NULL; i++) {
        if (!dlc_strv_contains(env->channels, names[i]))
            continue;
        char *dir = dlc_path_join(env->data_dir, names[i]);
        if (!dlc_is_dir(dir)) {
            dlc_error_set(err, ENOENT, "channel %s: %s is not a directory", names[i], dir);
            free(dir);
            return -1;
        }
        *ret_name = xstrdup(names[i]);
        *ret_dir = dir;
        return 0;
    }
    *ret_name = NULL;
    *ret_dir = NULL;
    return 0;
}

int tensor_sm_write_failure(const char *base, const char *msg, struct dlc_error **err)
{
    _cleanup_free_ char *dir = dlc_path_join(base, "output");
    _cleanup_free_ char *path = dlc_path_join(dir, "failure");
    if (dlc_mkdir_p(dir, 0755, err) < 0)
        return -1;
    /* O_EXCL: a reason the user's code wrote first is kept, as the toolkit does. */
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno == EEXIST ? 0 : dlc_error_set_errno(err, errno, "create %s", path);
    size_t len = strlen(msg);
    if (len > FAILURE_MAX_LENGTH - 1)
        len = FAILURE_MAX_LENGTH - 1;
    if (dlc_write_all(fd, msg, len, err) < 0 || dlc_write_all(fd, "\n", 1, err) < 0)
        return -1;
    return 0;
}
