/* test_hparams.c: hyperparameter decoding as sagemaker-training-toolkit does it, the typed
 * getters, and the SageMaker config files. */
#include <errno.h>
#include <string.h>

#include "unit.h"
#include "tensor.h"

static void test_hparams__decode_table(void **state)
{
    (void)state;
    static const struct {
        const char *raw;
        const char *want; /* the decoded value, as compact JSON */
    } cases[] = {
            {"10", "10"},
            {"0.001", "0.001"},
            {"\"adam\"", "\"adam\""},
            {"adam", "\"adam\""},
            {"[256, 128]", "[256,128]"},
            {"true", "true"},
            {"True", "\"True\""}, /* not JSON: json.loads fails, the raw string stays */
            {"{\"a\": 1}", "{\"a\":1}"},
            {"\"[64, 32]\"", "\"[64, 32]\""},
            {"", "\"\""},
            {"null", "null"},
            {"1e-3", "0.001"},
            {"[1, 2", "\"[1, 2\""},
    };
    for (size_t i = 0; i < DLC_ARRAY_SIZE(cases); i++) {
        json_auto_t *v = tensor_hparam_decode(cases[i].raw);
        _cleanup_free_ char *s = dlc_json_dumps(v, NULL);
        if (strcmp(s, cases[i].want) != 0)
            fail_msg("decode(%s) = %s, want %s", cases[i].raw, s, cases[i].want);
    }
}

static struct tensor_hparams *load(const char *json)
{
    struct dlc_error *err = NULL;
    json_auto_t *j = json_loads(json, 0, NULL);
    assert_non_null(j);
    struct tensor_hparams *hp = NULL;
    assert_int_equal(tensor_hparams_from_json(j, &hp, &err), 0);
    return hp;
}

static void test_hparams__typed_getters(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    _cleanup_(tensor_hparams_freep) struct tensor_hparams *hp = load(
            "{\"epochs\": \"10\", \"batch_size\": \"\\\"32\\\"\", \"learning_rate\": \"1e-3\","
            " \"optimizer\": \"\\\"adam\\\"\", \"hidden_units\": \"[256, 128]\","
            " \"shuffle\": \"false\", \"raw\": 7, \"units_csv\": \"64,32\","
            " \"sagemaker_program\": \"\\\"train.py\\\"\", \"bad\": \"ten\", \"typo\": \"1\"}");
    int64_t n = 0;
    assert_int_equal(tensor_hparams_int(hp, "epochs", 1, 100, &n, &err), 0);
    assert_int_equal(n, 10);
    assert_int_equal(tensor_hparams_int(hp, "batch_size", 1, 100, &n, &err), 0);
    assert_int_equal(n, 32);
    assert_int_equal(tensor_hparams_int(hp, "raw", 1, 100, &n, &err), 0);
    assert_int_equal(n, 7);
    double d = 0;
    assert_int_equal(tensor_hparams_double(hp, "learning_rate", &d, &err), 0);
    assert_true(d == 1e-3);
    const char *s = NULL;
    assert_int_equal(tensor_hparams_string(hp, "optimizer", &s, &err), 0);
    assert_string_equal(s, "adam");
    bool b = true;
    assert_int_equal(tensor_hparams_bool(hp, "shuffle", &b, &err), 0);
    assert_false(b);
    int64_t *list = NULL;
    size_t len = 0;
    assert_int_equal(tensor_hparams_int_list(hp, "hidden_units", &list, &len, &err), 0);
    assert_int_equal(len, 2), assert_int_equal(list[0], 256), assert_int_equal(list[1], 128);
    free(list);
    assert_int_equal(tensor_hparams_int_list(hp, "units_csv", &list, &len, &err), 0);
    assert_int_equal(len, 2), assert_int_equal(list[1], 32);
    free(list);
    /* missing: untouched */
    n = 99;
    assert_int_equal(tensor_hparams_int(hp, "missing", 1, 100, &n, &err), 0);
    assert_int_equal(n, 99);
    assert_false(tensor_hparams_has(hp, "sagemaker_program"));
    assert_dlc_error(tensor_hparams_int(hp, "bad", 1, 100, &n, &err), &err, EINVAL,
                     "hyperparameter bad: \"ten\" is not an integer");
    assert_dlc_error(tensor_hparams_int(hp, "epochs", 1, 5, &n, &err), &err, ERANGE,
                     "hyperparameter epochs: 10 is out of range [1, 5]");
    assert_dlc_error(tensor_hparams_bool(hp, "bad", &b, &err), &err, EINVAL,
                     "hyperparameter bad: \"ten\" is not true or false");
    assert_dlc_error(tensor_hparams_int_list(hp, "bad", &list, &len, &err), &err, EINVAL,
                     "is not a list of positive integers");
    _cleanup_strv_ char **unused = tensor_hparams_unused(hp);
    assert_int_equal(dlc_strv_len(unused), 1);
    assert_string_equal(unused[0], "typo");
}

static void write_file(const char *dir, const char *name, const char *content)
{
    struct dlc_error *err = NULL;
    _cleanup_free_ char *p = dlc_path_join(dir, name);
    _cleanup_free_ char *d = dlc_path_dirname(p);
    assert_int_equal(dlc_mkdir_p(d, 0755, &err), 0);
    assert_int_equal(dlc_write_file_atomic(p, content, strlen(content), 0644, &err), 0);
}

static void test_hparams__sagemaker_env(void **state)
{
    (void)state;
    _cleanup_free_ char *base = unit_tmpdir();
    struct dlc_error *err = NULL;
    write_file(base, "input/config/hyperparameters.json", "{\"epochs\": \"3\"}");
    write_file(base, "input/config/inputdataconfig.json",
               "{\"train\": {\"TrainingInputMode\": \"File\"}, \"validation\": {}}");
    write_file(base, "input/config/resourceconfig.json",
               "{\"current_host\": \"algo-2\", \"hosts\": [\"algo-1\", \"algo-2\"]}");
    write_file(base, "input/data/train/x", "");
    _cleanup_(tensor_sm_env_freep) struct tensor_sm_env *env = NULL;
    assert_int_equal(tensor_sm_env_load(base, &env, &err), 0);
    assert_string_equal(env->current_host, "algo-2");
    assert_int_equal(env->n_hosts, 2);
    assert_int_equal(dlc_strv_len(env->channels), 2);
    assert_true(dlc_endswith(env->model_dir, "/model"));
    const char *const train[] = {"training", "train", NULL};
    const char *const val[] = {"validation", "test", NULL};
    _cleanup_free_ char *name = NULL, *dir = NULL;
    assert_int_equal(tensor_sm_channel(env, train, &name, &dir, &err), 0);
    assert_string_equal(name, "train");
    assert_true(dlc_endswith(dir, "/input/data/train"));
    char *vn = NULL, *vd = NULL;
    assert_dlc_error(tensor_sm_channel(env, val, &vn, &vd, &err), &err, ENOENT,
                     "channel validation: ");
    /* the failure file is written once: a reason already there wins */
    assert_int_equal(tensor_sm_write_failure(base, "first", &err), 0);
    assert_int_equal(tensor_sm_write_failure(base, "second", &err), 0);
    _cleanup_free_ char *fp = dlc_path_join(base, "output/failure");
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    assert_int_equal(dlc_read_file(fp, 4096, &buf, &len, &err), 0);
    assert_string_equal(buf, "first\n");
    write_file(base, "input/config/hyperparameters.json", "[1]");
    tensor_sm_env_free(TAKE_PTR(env));
    assert_dlc_error(tensor_sm_env_load(base, &env, &err), &err, EINVAL,
                     "read hyperparameters: hyperparameters must be a JSON object");
    write_file(base, "input/config/hyperparameters.json", "{\"a\": ");
    assert_dlc_error(tensor_sm_env_load(base, &env, &err), &err, EINVAL, "hyperparameters.json:1:");
    unit_tmpdir_free(TAKE_PTR(base));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_hparams__decode_table),
            cmocka_unit_test(test_hparams__typed_getters),
            cmocka_unit_test(test_hparams__sagemaker_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
