/* sagemaker.c: the SageMaker training contract: channels, hyperparameters as the SDK
 * encodes them, the /opt/ml/input/config files and the SM_* environment exactly as the
 * training toolkit (sagemaker_training.environment / mapping) renders it. */
#include <errno.h>
#include <ctype.h>
#include <fcntl.h>
#include <string.h>

#include "runner-internal.h"

#define SM_HOST "algo-1"

/* ---- channels and hyperparameters (flag parsing) ---------------------------------- */

static bool channel_name_valid(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
            return false;
    return true;
}

int runner_spec_add_channel(struct runner_spec *spec, const char *arg, struct dlc_error **err)
{
    const char *eq = strchr(arg, '=');
    if (eq == NULL || eq[1] == '\0')
        return dlc_error_set(err, EINVAL, "--channel '%s': expected NAME=DIR", arg);
    size_t n = (size_t)(eq - arg);
    if (!channel_name_valid(arg, n))
        return dlc_error_set(err, EINVAL, "--channel '%s': the name must be 1-64 of [A-Za-z0-9._-]",
                             arg);
    _cleanup_free_ char *name = xstrndup(arg, n);
    for (size_t i = 0; i < spec->sm.n_channels; i++)
        if (strcmp(spec->sm.channels[i].name, name) == 0)
            return dlc_error_set(err, EINVAL, "--channel: '%s' given twice", name);
    _cleanup_free_ char *dir = realpath(eq + 1, NULL);
    if (dir == NULL)
        return dlc_error_set_errno(err, errno, "--channel %s: %s", name, eq + 1);
    if (!dlc_is_dir(dir))
        return dlc_error_set(err, EINVAL, "--channel %s: %s is not a directory", name, eq + 1);
    spec->sm.channels =
            xrealloc(spec->sm.channels, (spec->sm.n_channels + 1) * sizeof(*spec->sm.channels));
    spec->sm.channels[spec->sm.n_channels++] =
            (struct runner_channel){TAKE_PTR(name), TAKE_PTR(dir)};
    return 0;
}

static void set_hp(struct runner_sagemaker *sm, const char *key, char *encoded)
{
    for (size_t i = 0; i < sm->n_hps; i++) {
        if (strcmp(sm->hp_keys[i], key) == 0) {
            free(sm->hp_values[i]);
            sm->hp_values[i] = encoded;
            return;
        }
    }
    sm->hp_keys = xrealloc(sm->hp_keys, (sm->n_hps + 1) * sizeof(char *));
    sm->hp_values = xrealloc(sm->hp_values, (sm->n_hps + 1) * sizeof(char *));
    sm->hp_keys[sm->n_hps] = xstrdup(key);
    sm->hp_values[sm->n_hps++] = encoded;
}

int runner_spec_add_hp(struct runner_spec *spec, const char *arg, struct dlc_error **err)
{
    const char *eq = strchr(arg, '=');
    if (eq == NULL || eq == arg)
        return dlc_error_set(err, EINVAL, "--hp '%s': expected KEY=VALUE", arg);
    _cleanup_free_ char *key = xstrndup(arg, (size_t)(eq - arg));
    /* A value that parses as JSON is that JSON value (10, 0.1, true, [1, 2], "quoted");
     * anything else is a string, as if passed to the SDK as a Python str. */
    json_t *v = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
    if (v == NULL)
        v = json_string(eq + 1);
    if (v == NULL)
        return dlc_error_set(err, EINVAL, "--hp %s: the value is not valid UTF-8", key);
    set_hp(&spec->sm, key, runner_py_json(v, false, false));
    json_decref(v);
    return 0;
}

int runner_spec_load_hp_file(struct runner_spec *spec, const char *path, struct dlc_error **err)
{
    json_auto_t *j = dlc_json_load_file(path, 4u << 20, err);
    if (j == NULL)
        return dlc_error_wrap(err, "--hyperparameters");
    if (!json_is_object(j))
        return dlc_error_set(err, EINVAL, "--hyperparameters %s: expected a JSON object", path);
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) {
        set_hp(&spec->sm, k, runner_py_json(v, false, false));
    }
    return 0;
}

/* ---- /opt/ml/input/config ------------------------------------------------------------ */

static json_t *resource_config(const char *nic)
{
    return json_pack("{s:s, s:[s], s:s}", "current_host", SM_HOST, "hosts", SM_HOST,
                     "network_interface_name", nic);
}

static json_t *input_data_config(const struct runner_sagemaker *sm)
{
    json_t *o = json_object();
    for (size_t i = 0; i < sm->n_channels; i++)
        json_object_set_new(o, sm->channels[i].name,
                            json_pack("{s:s, s:s, s:s}", "TrainingInputMode", "File",
                                      "S3DistributionType", "FullyReplicated", "RecordWrapperType",
                                      "None"));
    return o;
}

void runner_sm_config_files(const struct runner_sagemaker *sm, const char *nic,
                            char *ret[RUNNER_SM_CONFIG_FILES])
{
    json_auto_t *hps = json_object();
    for (size_t i = 0; i < sm->n_hps; i++)
        json_object_set_new(hps, sm->hp_keys[i], json_string(sm->hp_values[i]));
    json_auto_t *rc = resource_config(nic);
    json_auto_t *idc = input_data_config(sm);
    ret[0] = dlc_json_dumps(hps, NULL);
    ret[1] = dlc_json_dumps(rc, NULL);
    ret[2] = dlc_json_dumps(idc, NULL);
}

/* ---- the SM_* environment ------------------------------------------------------------ */

/* params.SAGEMAKER_HYPERPARAMETERS: split off the user's hyperparameters with "sagemaker_*" */
static const char *const sagemaker_hp_names[] = {
        "sagemaker_program",
        "sagemaker_submit_directory",
        "sagemaker_enable_cloudwatch_metrics",
        "sagemaker_region",
        "sagemaker_container_log_level",
        "sagemaker_job_name",
        "default_user_module_name",
        "_tuning_objective_metric",
        "sagemaker_s3_output",
};

/* additional framework parameters that put the current group into distribution */
static const char *const distribution_flags[] = {
        "sagemaker_mpi_enabled",
        "sagemaker_parameter_server_enabled",
        "sagemaker_distributed_dataparallel_enabled",
        "sagemaker_pytorch_ddp_enabled",
        "sagemaker_pytorch_xla_multi_worker_enabled",
        "sagemaker_multi_worker_mirrored_strategy_enabled",
        "sagemaker_torch_distributed_enabled",
};

static bool is_sagemaker_hp_name(const char *k)
{
    for (size_t i = 0; i < DLC_ARRAY_SIZE(sagemaker_hp_names); i++)
        if (strcmp(k, sagemaker_hp_names[i]) == 0)
            return true;
    return false;
}

static bool py_truthy(const json_t *v)
{
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_TRUE:
        return true;
    case JSON_INTEGER:
        return json_integer_value(v) != 0;
    case JSON_REAL:
        return json_real_value(v) != 0;
    case JSON_STRING:
        return json_string_length(v) > 0;
    case JSON_ARRAY:
        return json_array_size(v) > 0;
    case JSON_OBJECT:
        return json_object_size(v) > 0;
    default:
        return false;
    }
}

static const char *env_get(char *const *env, const char *name)
{
    const char *found = NULL;
    size_t n = strlen(name);
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
            found = env[i] + n + 1;
    return found;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

struct sm_view {
    json_t *user;       /* user hyperparameters, decoded */
    json_t *included;   /* sagemaker_* ones */
    json_t *additional; /* included minus the toolkit's own names */
    json_t *rc, *idc;
    char *const *env;
    const char *nic;
    int num_cpus, num_gpus;
};

static void view_init(struct sm_view *w, const struct runner_sagemaker *sm, char *const *env,
                      const char *nic, int num_cpus)
{
    *w = (struct sm_view){json_object(),         json_object(), json_object(), resource_config(nic),
                          input_data_config(sm), env,           nic,           num_cpus,
                          sm->num_gpus};
    for (size_t i = 0; i < sm->n_hps; i++) {
        const char *k = sm->hp_keys[i];
        json_t *v = runner_py_json_loads(sm->hp_values[i]);
        bool sm_key = is_sagemaker_hp_name(k) || dlc_startswith(k, "sagemaker_");
        if (sm_key && !is_sagemaker_hp_name(k))
            json_object_set(w->additional, k, v);
        json_object_set_new(sm_key ? w->included : w->user, k, v);
    }
}

static void view_release(struct sm_view *w)
{
    json_decref(w->user);
    json_decref(w->included);
    json_decref(w->additional);
    json_decref(w->rc);
    json_decref(w->idc);
}

static json_t *distribution_instance_groups(const struct sm_view *w)
{
    json_t *given = json_object_get(w->additional, "sagemaker_distribution_instance_groups");
    if (given)
        return json_incref(given);
    for (size_t i = 0; i < DLC_ARRAY_SIZE(distribution_flags); i++)
        if (py_truthy(json_object_get(w->additional, distribution_flags[i])))
            return json_pack("[s]", "homogeneousCluster");
    return json_array();
}

/* Environment.module_name: $SAGEMAKER_PROGRAM or str(hp sagemaker_program), less ".py" */
static json_t *module_name(const struct sm_view *w)
{
    const char *prog = env_get(w->env, "SAGEMAKER_PROGRAM");
    _cleanup_free_ char *s = NULL;
    if (prog == NULL) {
        json_t *hp = json_object_get(w->included, "sagemaker_program");
        json_auto_t *none = json_null();
        s = runner_py_str(hp ? hp : none);
        prog = s;
    }
    size_t n = strlen(prog);
    if (n >= 3 && strcmp(prog + n - 3, ".py") == 0)
        return json_stringn(prog, n - 3);
    return json_string(prog);
}

static json_t *user_entry_point(const struct sm_view *w)
{
    const char *prog = env_get(w->env, "SAGEMAKER_PROGRAM");
    if (prog && *prog)
        return json_string(prog);
    json_t *hp = json_object_get(w->included, "sagemaker_program");
    return hp ? json_incref(hp) : json_null();
}

static json_t *module_dir(const struct sm_view *w)
{
    json_t *hp = json_object_get(w->included, "sagemaker_submit_directory");
    if (hp == NULL)
        return json_string("/opt/ml/code");
    _cleanup_free_ char *s = runner_py_str(hp);
    return json_string(s);
}

static json_t *is_modelparallel_enabled(const struct sm_view *w)
{
    const char *mp = env_get(w->env, "SM_HP_MP_PARAMETERS");
    if (mp == NULL)
        return json_null();
    if (*mp == '\0')
        return json_string(""); /* `mp and ...` evaluates to the empty string */
    return json_boolean(strcmp(mp, "{}") != 0);
}

static json_t *channel_dirs(const struct runner_sagemaker *sm)
{
    json_t *o = json_object();
    for (size_t i = 0; i < sm->n_channels; i++)
        json_object_set_new(o, sm->channels[i].name,
                            json_sprintf("/opt/ml/input/data/%s", sm->channels[i].name));
    return o;
}

/* The properties shared by Environment.to_env_vars() and dict(Environment) */
static void put_common(json_t *o, const struct sm_view *w)
{
    json_object_set_new(o, "current_host", json_string(SM_HOST));
    json_object_set_new(o, "current_instance_group", json_string("homogeneousCluster"));
    json_object_set_new(o, "current_instance_group_hosts", json_array());
    json_object_set_new(o, "current_instance_type", json_string("local"));
    json_object_set_new(o, "distribution_instance_groups", distribution_instance_groups(w));
    json_object_set_new(o, "framework_module",
                        str_or_null(env_get(w->env, "SAGEMAKER_TRAINING_MODULE")));
    json_object_set_new(o, "hosts", json_pack("[s]", SM_HOST));
    json_object_set_new(o, "input_config_dir", json_string("/opt/ml/input/config"));
    json_object_set_new(o, "input_data_config", json_incref(w->idc));
    json_object_set_new(o, "input_dir", json_string("/opt/ml/input"));
    json_object_set_new(o, "instance_groups", json_array());
    json_object_set_new(o, "instance_groups_dict", json_object());
    json_object_set_new(o, "is_hetero", json_false());
    json_t *ll = json_object_get(w->included, "sagemaker_container_log_level");
    json_object_set_new(o, "log_level", ll ? json_incref(ll) : json_integer(20));
    json_object_set_new(o, "model_dir", json_string("/opt/ml/model"));
    json_object_set_new(o, "module_dir", module_dir(w));
    json_object_set_new(o, "module_name", module_name(w));
    json_object_set_new(o, "network_interface_name", json_string(w->nic));
    json_object_set_new(o, "num_cpus", json_integer(w->num_cpus));
    json_object_set_new(o, "num_gpus", json_integer(w->num_gpus));
    json_object_set_new(o, "num_neurons", json_integer(0));
    json_object_set_new(o, "output_data_dir", json_string("/opt/ml/output/data"));
    json_object_set_new(o, "output_dir", json_string("/opt/ml/output"));
    json_object_set_new(o, "output_intermediate_dir", json_string("/opt/ml/output/intermediate"));
    json_object_set_new(o, "resource_config", json_incref(w->rc));
    json_object_set_new(o, "user_entry_point", user_entry_point(w));
}

/* dict(Environment()): every property */
static json_t *training_env(const struct runner_sagemaker *sm, const struct sm_view *w)
{
    json_t *o = json_object();
    put_common(o, w);
    json_object_set_new(o, "additional_framework_parameters", json_incref(w->additional));
    json_object_set_new(o, "channel_input_dirs", channel_dirs(sm));
    json_object_set_new(o, "distribution_hosts", json_pack("[s]", SM_HOST));
    json_object_set_new(o, "hyperparameters", json_incref(w->user));
    json_object_set_new(o, "is_master", json_true());
    json_object_set_new(o, "is_modelparallel_enabled", is_modelparallel_enabled(w));
    json_object_set_new(o, "is_smddpmprun_installed", json_false());
    json_object_set_new(o, "job_name", str_or_null(env_get(w->env, "TRAINING_JOB_NAME")));
    json_object_set_new(o, "master_hostname", json_string(SM_HOST));
    return o;
}

/* mapping.to_cmd_args(hyperparameters) */
static json_t *user_args(const json_t *user)
{
    size_t n;
    _cleanup_free_ const char **keys = runner_json_keys(user, true, &n);
    json_t *args = json_array();
    for (size_t i = 0; i < n; i++) {
        size_t kl = strlen(keys[i]);
        json_array_append_new(args, kl == 0   ? json_string("")
                                    : kl == 1 ? json_sprintf("-%s", keys[i])
                                              : json_sprintf("--%s", keys[i]));
        _cleanup_free_ char *val = runner_py_cmd_arg(json_object_get(user, keys[i]));
        json_array_append_new(args, json_string(val));
    }
    return args;
}

static json_t *sorted_channel_names(const struct runner_sagemaker *sm)
{
    json_t *a = json_array();
    for (size_t i = 0; i < sm->n_channels; i++) {
        size_t at = 0;
        while (at < json_array_size(a) &&
               strcmp(json_string_value(json_array_get(a, at)), sm->channels[i].name) < 0)
            at++;
        json_array_insert_new(a, at, json_string(sm->channels[i].name));
    }
    return a;
}

/* Environment.to_env_vars() as a Python dict (key -> value before formatting) */
static json_t *env_map(const struct runner_sagemaker *sm, const struct sm_view *w)
{
    json_t *o = json_object();
    put_common(o, w);
    json_object_set_new(o, "hps", json_incref(w->user));
    json_object_set_new(o, "framework_params", json_incref(w->additional));
    json_object_set_new(o, "channels", sorted_channel_names(sm));
    json_object_set_new(o, "training_env", training_env(sm, w));
    json_object_set_new(o, "user_args", user_args(w->user));
    for (size_t i = 0; i < sm->n_channels; i++) {
        _cleanup_free_ char *k = xasprintf("channel_%s", sm->channels[i].name);
        json_object_set_new(o, k, json_sprintf("/opt/ml/input/data/%s", sm->channels[i].name));
    }
    const char *k;
    json_t *v;
    json_object_foreach(w->user, k, v) {
        _cleanup_free_ char *key = xasprintf("hp_%s", k);
        json_object_set(o, key, v);
    }
    return o;
}

char **runner_sm_env(const struct runner_sagemaker *sm, char *const *env, const char *nic,
                     int num_cpus)
{
    struct sm_view w;
    view_init(&w, sm, env, nic, num_cpus);
    json_auto_t *m = env_map(sm, &w);
    size_t n;
    _cleanup_free_ const char **keys = runner_json_keys(m, true, &n);
    char **out = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(m, keys[i]);
        _cleanup_free_ char *name = xasprintf("SM_%s", keys[i]);
        for (char *p = name; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        /* mapping.to_env_vars: str as is, None as "", the rest compact sorted JSON */
        _cleanup_free_ char *val = json_is_string(v) ? xstrdup(json_string_value(v))
                                   : json_is_null(v) ? xstrdup("")
                                                     : runner_py_json(v, true, true);
        out[i] = xasprintf("%s=%s", name, val);
    }
    view_release(&w);
    return out;
}
