/* The SageMaker contract: Python-exact JSON, hyperparameter encoding, SM_* variables. */
#include <errno.h>
#include <string.h>

#include "unit.h"

#include "../../../runner/src/runner-internal.h"

static void expect_py_json(json_t *v, bool compact, const char *want)
{
    _cleanup_free_ char *got = runner_py_json(v, compact, true);
    assert_string_equal(got, want);
    json_decref(v);
}

static void test_sagemaker__python_float_repr(void **state)
{
    (void)state;
    static const struct {
        double x;
        const char *want;
    } cases[] = {
            {0.001, "0.001"},
            {1e-05, "1e-05"},
            {0.0001, "0.0001"},
            {1e16, "1e+16"},
            {1e15, "1000000000000000.0"},
            {123.0, "123.0"},
            {0.1, "0.1"},
            {-2.5, "-2.5"},
            {1.5e300, "1.5e+300"},
            {0.0, "0.0"},
            {1.0 / 3, "0.3333333333333333"},
            {123456.789, "123456.789"},
            {2.5e-7, "2.5e-07"},
    };
    for (size_t i = 0; i < DLC_ARRAY_SIZE(cases); i++)
        expect_py_json(json_real(cases[i].x), true, cases[i].want);
}

static void test_sagemaker__python_json_layout(void **state)
{
    (void)state;
    expect_py_json(json_pack("{s:i, s:[i,i], s:s}", "b", 1, "a", 64, 32, "c", "x"), true,
                   "{\"a\":[64,32],\"b\":1,\"c\":\"x\"}");
    expect_py_json(json_pack("[i, {s:b}]", 1, "k", 1), false, "[1, {\"k\": true}]");
    expect_py_json(json_string("caf\xc3\xa9 \x01\"\\\n/"), true,
                   "\"caf\\u00e9 \\u0001\\\"\\\\\\n/\"");
    expect_py_json(json_string("\xf0\x9f\x98\x80"), true, "\"\\ud83d\\ude00\"");
    expect_py_json(json_null(), true, "null");
}

static void test_sagemaker__cmd_arg_is_python_str(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        const char *want;
    } cases[] = {
            {"\"adam\"", "adam"},
            {"10", "10"},
            {"true", "True"},
            {"null", ""},
            {"[\"a\", 1, null, false]", "['a', 1, None, False]"},
            {"{\"b\": 2, \"a\": \"x\"}", "a=x,b=2"},
            {"[\"it's\"]", "[\"it's\"]"},
            {"1e-3", "0.001"},
    };
    for (size_t i = 0; i < DLC_ARRAY_SIZE(cases); i++) {
        json_auto_t *v = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        _cleanup_free_ char *got = runner_py_cmd_arg(v);
        assert_string_equal(got, cases[i].want);
    }
}

static const char *hp_value(const struct runner_spec *spec, const char *key)
{
    for (size_t i = 0; i < spec->sm.n_hps; i++)
        if (strcmp(spec->sm.hp_keys[i], key) == 0)
            return spec->sm.hp_values[i];
    return NULL;
}

static void test_sagemaker__hp_encoding_like_the_sdk(void **state)
{
    (void)state;
    _cleanup_(runner_spec_freep) struct runner_spec *spec = runner_spec_new("x");
    struct dlc_error *err = NULL;
    const char *args[] = {"epochs=10",    "optimizer=adam", "layers=[64,32]", "lr=1e-3",
                          "use_amp=true", "name=\"10\"",    "empty=",         "epochs=12"};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(args); i++)
        assert_int_equal(runner_spec_add_hp(spec, args[i], &err), 0);
    assert_int_equal(spec->sm.n_hps, 7);
    assert_string_equal(hp_value(spec, "epochs"), "12");
    assert_string_equal(hp_value(spec, "optimizer"), "\"adam\"");
    assert_string_equal(hp_value(spec, "layers"), "[64, 32]");
    assert_string_equal(hp_value(spec, "lr"), "0.001");
    assert_string_equal(hp_value(spec, "use_amp"), "true");
    assert_string_equal(hp_value(spec, "name"), "\"10\"");
    assert_string_equal(hp_value(spec, "empty"), "\"\"");
    assert_dlc_error(runner_spec_add_hp(spec, "=3", &err), &err, EINVAL, "expected KEY=VALUE");
    assert_dlc_error(runner_spec_add_hp(spec, "novalue", &err), &err, EINVAL, "KEY=VALUE");
}

static const char *env_value(char **env, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; env[i]; i++)
        if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
            return env[i] + n + 1;
    return NULL;
}

static void test_sagemaker__sm_env(void **state)
{
    (void)state;
    _cleanup_(runner_spec_freep) struct runner_spec *spec = runner_spec_new("x");
    struct dlc_error *err = NULL;
    char *dir = unit_tmpdir();
    _cleanup_free_ char *ch1 = xasprintf("train=%s", dir);
    _cleanup_free_ char *ch2 = xasprintf("test=%s", dir);
    assert_int_equal(runner_spec_add_channel(spec, ch1, &err), 0);
    assert_int_equal(runner_spec_add_channel(spec, ch2, &err), 0);
    const char *hps[] = {"epochs=10",
                         "optimizer=adam",
                         "layers=[64,32]",
                         "sagemaker_program=train.py",
                         "sagemaker_mpi_enabled=true",
                         "learning-rate=0.5"};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(hps); i++)
        assert_int_equal(runner_spec_add_hp(spec, hps[i], &err), 0);
    char p[] = "PATH=/bin", j[] = "TRAINING_JOB_NAME=job-1";
    char *cenv[] = {p, j, NULL};
    _cleanup_strv_ char **env = runner_sm_env(&spec->sm, cenv, "lo", 4);
    assert_string_equal(env_value(env, "SM_HPS"),
                        "{\"epochs\":10,\"layers\":[64,32],\"learning-rate\":0.5,"
                        "\"optimizer\":\"adam\"}");
    assert_string_equal(env_value(env, "SM_HP_OPTIMIZER"), "adam");
    assert_string_equal(env_value(env, "SM_HP_LAYERS"), "[64,32]");
    assert_string_equal(env_value(env, "SM_HP_LEARNING-RATE"), "0.5");
    assert_string_equal(env_value(env, "SM_CHANNELS"), "[\"test\",\"train\"]");
    assert_string_equal(env_value(env, "SM_CHANNEL_TRAIN"), "/opt/ml/input/data/train");
    assert_string_equal(env_value(env, "SM_USER_ARGS"),
                        "[\"--epochs\",\"10\",\"--layers\",\"[64, 32]\",\"--learning-rate\","
                        "\"0.5\",\"--optimizer\",\"adam\"]");
    assert_string_equal(env_value(env, "SM_MODULE_NAME"), "train");
    assert_string_equal(env_value(env, "SM_USER_ENTRY_POINT"), "train.py");
    assert_string_equal(env_value(env, "SM_FRAMEWORK_PARAMS"), "{\"sagemaker_mpi_enabled\":true}");
    assert_string_equal(env_value(env, "SM_DISTRIBUTION_INSTANCE_GROUPS"),
                        "[\"homogeneousCluster\"]");
    assert_string_equal(env_value(env, "SM_HOSTS"), "[\"algo-1\"]");
    assert_string_equal(env_value(env, "SM_CURRENT_HOST"), "algo-1");
    assert_string_equal(env_value(env, "SM_NUM_CPUS"), "4");
    assert_string_equal(env_value(env, "SM_NUM_GPUS"), "0");
    assert_string_equal(env_value(env, "SM_LOG_LEVEL"), "20");
    assert_string_equal(env_value(env, "SM_FRAMEWORK_MODULE"), "");
    assert_string_equal(env_value(env, "SM_NETWORK_INTERFACE_NAME"), "lo");
    assert_string_equal(env_value(env, "SM_RESOURCE_CONFIG"),
                        "{\"current_host\":\"algo-1\",\"hosts\":[\"algo-1\"],"
                        "\"network_interface_name\":\"lo\"}");
    const char *te = env_value(env, "SM_TRAINING_ENV");
    assert_non_null(strstr(te, "\"job_name\":\"job-1\""));
    assert_non_null(strstr(te, "\"is_master\":true"));
    assert_non_null(strstr(te, "\"module_dir\":\"/opt/ml/code\""));
    /* without a program the toolkit writes str(None) */
    _cleanup_(runner_spec_freep) struct runner_spec *bare = runner_spec_new("x");
    _cleanup_strv_ char **env2 = runner_sm_env(&bare->sm, NULL, "eth0", 1);
    assert_string_equal(env_value(env2, "SM_MODULE_NAME"), "None");
    assert_string_equal(env_value(env2, "SM_USER_ENTRY_POINT"), "");
    assert_string_equal(env_value(env2, "SM_HPS"), "{}");
    assert_string_equal(env_value(env2, "SM_CHANNELS"), "[]");
    unit_tmpdir_free(dir);
}

static void test_sagemaker__channel_errors(void **state)
{
    (void)state;
    _cleanup_(runner_spec_freep) struct runner_spec *spec = runner_spec_new("x");
    struct dlc_error *err = NULL;
    assert_dlc_error(runner_spec_add_channel(spec, "train", &err), &err, EINVAL, "NAME=DIR");
    assert_dlc_error(runner_spec_add_channel(spec, "bad/name=/tmp", &err), &err, EINVAL,
                     "[A-Za-z0-9._-]");
    assert_dlc_error(runner_spec_add_channel(spec, "t=/nonexistent-dlc", &err), &err, ENOENT,
                     "/nonexistent-dlc");
    assert_dlc_error(runner_spec_add_channel(spec, "t=/etc/passwd", &err), &err, EINVAL,
                     "not a directory");
    assert_int_equal(runner_spec_add_channel(spec, "t=/tmp", &err), 0);
    assert_dlc_error(runner_spec_add_channel(spec, "t=/tmp", &err), &err, EINVAL, "twice");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_sagemaker__python_float_repr),
            cmocka_unit_test(test_sagemaker__python_json_layout),
            cmocka_unit_test(test_sagemaker__cmd_arg_is_python_str),
            cmocka_unit_test(test_sagemaker__hp_encoding_like_the_sdk),
            cmocka_unit_test(test_sagemaker__sm_env),
            cmocka_unit_test(test_sagemaker__channel_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
