/* test_model.c: Keras model JSON in and out, the hyperparameter short form, whole-model
 * gradients against finite differences, seeded reproducibility, checkpoint resume, and
 * save/load/predict. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "unit.h"
#include "tensor.h"

#define DENSE(name, units, act)                                                              \
    "{\"class_name\": \"Dense\", \"config\": {\"name\": \"" name "\", \"trainable\": true, " \
    "\"dtype\": \"float32\", \"units\": " #units ", \"activation\": \"" act "\", "           \
    "\"use_bias\": true, \"kernel_initializer\": {\"class_name\": \"GlorotUniform\", "       \
    "\"config\": {\"seed\": null}}, \"bias_initializer\": {\"class_name\": \"Zeros\", "      \
    "\"config\": {}}, \"kernel_regularizer\": null, \"bias_regularizer\": null, "            \
    "\"activity_regularizer\": null, \"kernel_constraint\": null, \"bias_constraint\": null}}"

/* What tf.keras 2.13's model.to_json() writes, plus a compile block. */
static const char *keras2 =
        "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"sequential\", \"layers\": ["
        "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 4], "
        "\"dtype\": \"float32\", \"sparse\": false, \"ragged\": false, \"name\": "
        "\"input_1\"}}, " DENSE(
                "dense", 8,
                "relu") ", "
                        "{\"class_name\": \"Dropout\", \"config\": {\"name\": \"dropout\", "
                        "\"trainable\": true, "
                        "\"dtype\": \"float32\", \"rate\": 0.2, \"noise_shape\": null, \"seed\": "
                        "null}}, " DENSE(
                                "dense_1", 3,
                                "softmax") "]}, \"keras_version\": \"2.13.1\", "
                                           "\"backend\": \"tensorflow\", \"compile\": {\"loss\": "
                                           "\"sparse_categorical_crossentropy\", "
                                           "\"optimizer\": {\"class_name\": \"SGD\", \"config\": "
                                           "{\"learning_rate\": 0.05, "
                                           "\"momentum\": 0.9, \"nesterov\": true}}, \"metrics\": "
                                           "[\"accuracy\"]}}";

static struct tensor_model *parse(const char *s, struct dlc_error **err)
{
    json_auto_t *j = json_loads(s, 0, NULL);
    assert_non_null(j);
    struct tensor_model *m = NULL;
    if (tensor_model_from_json(j, &m, err) < 0)
        return NULL;
    return m;
}

static void test_model__keras_json(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    _cleanup_(tensor_model_freep) struct tensor_model *m = parse(keras2, &err);
    assert_non_null(m);
    assert_int_equal(m->input_dim, 4);
    assert_int_equal(m->n_layers, 3);
    assert_string_equal(m->layers[1].name, "dropout");
    assert_true(m->layers[1].rate == 0.2f);
    assert_int_equal(m->layers[2].act, TENSOR_ACT_SOFTMAX);
    assert_int_equal(m->compile.loss, TENSOR_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY);
    assert_int_equal(m->compile.optimizer.kind, TENSOR_OPT_SGD);
    assert_true(m->compile.optimizer.nesterov);
    assert_true(m->compile.optimizer.learning_rate == 0.05);
    assert_int_equal(m->compile.n_metrics, 1);
    /* to_json feeds from_json: same model, same bytes */
    json_auto_t *out = tensor_model_to_json(m);
    _cleanup_free_ char *s1 = dlc_json_dumps(out, NULL);
    _cleanup_(tensor_model_freep) struct tensor_model *m2 = parse(s1, &err);
    assert_non_null(m2);
    json_auto_t *out2 = tensor_model_to_json(m2);
    _cleanup_free_ char *s2 = dlc_json_dumps(out2, NULL);
    assert_string_equal(s1, s2);

    /* Keras 3: batch_shape, DTypePolicy objects, module keys, compile_config */
    _cleanup_(tensor_model_freep) struct tensor_model *k3 = parse(
            "{\"module\": \"keras\", \"class_name\": \"Sequential\", \"config\": {\"name\": "
            "\"seq\", \"layers\": [{\"module\": \"keras.layers\", \"class_name\": \"InputLayer\", "
            "\"config\": {\"batch_shape\": [null, 28, 28], \"dtype\": \"float32\", \"name\": "
            "\"input_layer\"}}, {\"class_name\": \"Flatten\", \"config\": {\"name\": "
            "\"flatten\"}}, "
            "{\"class_name\": \"Dense\", \"config\": {\"name\": \"dense\", \"units\": 10, "
            "\"activation\": \"gelu\", \"dtype\": {\"module\": \"keras\", \"class_name\": "
            "\"DTypePolicy\", \"config\": {\"name\": \"float32\"}}, \"kernel_initializer\": "
            "{\"module\": \"keras.initializers\", \"class_name\": \"HeNormal\", \"config\": "
            "{\"seed\": null}}}}]}, \"compile_config\": {\"loss\": {\"class_name\": "
            "\"MeanSquaredError\", \"config\": {}}, \"optimizer\": \"adam\", \"metrics\": "
            "[[\"mae\"]]}}",
            &err);
    if (k3 == NULL) {
        fail_msg("%s", err->msg);
        return;
    }
    assert_int_equal(k3->input_dim, 784);
    assert_int_equal(k3->layers[1].kernel_init, TENSOR_INIT_HE_NORMAL);
    assert_int_equal(k3->compile.loss, TENSOR_LOSS_MSE);
    assert_int_equal(k3->compile.metrics[0], TENSOR_METRIC_MAE);
}

static void json_fails(const char *s, const char *want)
{
    struct dlc_error *err = NULL;
    struct tensor_model *m = NULL;
    json_auto_t *j = json_loads(s, 0, NULL);
    assert_non_null(j);
    assert_dlc_error(tensor_model_from_json(j, &m, &err), &err, EINVAL, want);
    assert_null(m);
}

#define SEQ(layers) "{\"class_name\": \"Sequential\", \"config\": {\"layers\": [" layers "]}}"

static void test_model__keras_json_errors(void **state)
{
    (void)state;
    json_fails(SEQ("{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"conv2d\"}}"),
               "layer 0 ('conv2d'): unsupported layer type 'Conv2D' (supported: InputLayer, "
               "Dense, Dropout, Activation, Flatten)");
    json_fails(SEQ(DENSE("dense", 3, "swish")),
               "layer 0 ('dense'): unknown activation 'swish' (supported: relu, sigmoid, tanh, "
               "softmax, linear, gelu)");
    json_fails(SEQ("{\"class_name\": \"Dense\", \"config\": {\"name\": \"d\", \"units\": 3, "
                   "\"kernel_regularizer\": {\"class_name\": \"L2\"}}}"),
               "layer 0 ('d'): kernel_regularizer is not supported");
    json_fails(SEQ("{\"class_name\": \"Dense\", \"config\": {\"units\": 3, "
                   "\"kernel_initializer\": \"orthogonal\"}}"),
               "layer 0: unknown initializer 'orthogonal'");
    json_fails(
            SEQ("{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 2, "
                "3]}}, {\"class_name\": \"Dense\", \"config\": {\"name\": \"d\", \"units\": 3}}"),
            "layer 1 ('d'): Dense on a 2-dimensional input is not supported (add a Flatten "
            "layer before it)");
    json_fails(SEQ("{\"class_name\": \"Dense\", \"config\": {\"name\": \"d\", \"units\": 3}}, "
                   "{\"class_name\": \"Dense\", \"config\": {\"name\": \"d\", \"units\": 3}}"),
               "two layers are named 'd'");
    json_fails(SEQ("{\"class_name\": \"Dense\", \"config\": {\"units\": 3, \"dtype\": "
                   "\"float16\"}}"),
               "layer 0: dtype float16 is not supported (float32 only)");
    json_fails("{\"class_name\": \"Functional\", \"config\": {}}",
               "model: only Sequential models are supported (got Functional)");
    json_fails("{\"class_name\": \"Sequential\", \"config\": {\"layers\": []}, \"compile\": "
               "{\"loss\": \"hinge\"}}",
               "compile: unknown loss 'hinge'");
    json_fails("{\"class_name\": \"Sequential\", \"config\": {\"layers\": []}, \"compile\": "
               "{\"loss\": \"mse\", \"optimizer\": \"rmsprop\"}}",
               "compile: unknown optimizer 'rmsprop' (supported: sgd, adam)");
    json_fails("{\"class_name\": \"Sequential\", \"config\": {\"layers\": []}, \"compile\": "
               "{\"loss\": {\"class_name\": \"CategoricalCrossentropy\", \"config\": "
               "{\"from_logits\": true}}}}",
               "compile: loss from_logits=true is not supported");
}

static struct tensor_hparams *hparams(const char *json)
{
    struct dlc_error *err = NULL;
    json_auto_t *j = json_loads(json, 0, NULL);
    struct tensor_hparams *hp = NULL;
    assert_int_equal(tensor_hparams_from_json(j, &hp, &err), 0);
    return hp;
}

static void test_model__short_form(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    _cleanup_(tensor_hparams_freep) struct tensor_hparams *hp =
            hparams("{\"hidden_units\": \"[8, 4]\", \"activation\": \"\\\"tanh\\\"\", \"dropout\": "
                    "\"0.1\", \"loss\": \"sparse_categorical_crossentropy\", \"learning_rate\": "
                    "\"0.01\"}");
    _cleanup_(tensor_model_freep) struct tensor_model *m = NULL;
    assert_int_equal(tensor_model_from_hparams(hp, 1, 2, &m, &err), 0);
    assert_int_equal(m->n_layers, 5);
    assert_string_equal(m->layers[0].name, "dense");
    assert_int_equal(m->layers[0].act, TENSOR_ACT_TANH);
    assert_int_equal(m->layers[1].kind, TENSOR_LAYER_DROPOUT);
    assert_string_equal(m->layers[4].name, "dense_2");
    assert_int_equal(m->layers[4].units, 3); /* max label 2 -> 3 classes */
    assert_int_equal(m->layers[4].act, TENSOR_ACT_SOFTMAX);
    assert_int_equal(m->compile.optimizer.kind, TENSOR_OPT_ADAM);
    assert_true(m->compile.optimizer.learning_rate == 0.01);
    assert_int_equal(m->compile.n_metrics, 1);
    assert_int_equal(m->compile.metrics[0], TENSOR_METRIC_ACCURACY);

    _cleanup_(tensor_hparams_freep) struct tensor_hparams *bce =
            hparams("{\"loss\": \"binary_crossentropy\", \"output_units\": \"1\"}");
    _cleanup_(tensor_model_freep) struct tensor_model *b = NULL;
    assert_int_equal(tensor_model_from_hparams(bce, 1, 1, &b, &err), 0);
    assert_int_equal(b->layers[b->n_layers - 1].act, TENSOR_ACT_SIGMOID);
    assert_int_equal(b->layers[0].units, 64); /* default hidden_units */

    _cleanup_(tensor_hparams_freep) struct tensor_hparams *noloss = hparams("{}");
    struct tensor_model *n = NULL;
    assert_dlc_error(tensor_model_from_hparams(noloss, 1, 1, &n, &err), &err, EINVAL,
                     "no loss: set the loss hyperparameter");
    _cleanup_(tensor_hparams_freep) struct tensor_hparams *badact =
            hparams("{\"loss\": \"mse\", \"activation\": \"swish\"}");
    assert_dlc_error(tensor_model_from_hparams(badact, 1, 1, &n, &err), &err, EINVAL,
                     "hyperparameters: unknown activation 'swish'");

    /* hyperparameters override a compile block */
    _cleanup_(tensor_model_freep) struct tensor_model *k = parse(keras2, &err);
    _cleanup_(tensor_hparams_freep) struct tensor_hparams *ov =
            hparams("{\"optimizer\": \"adam\", \"learning_rate\": \"0.002\"}");
    assert_int_equal(tensor_model_apply_hparams(k, ov, &err), 0);
    assert_int_equal(k->compile.optimizer.kind, TENSOR_OPT_ADAM);
    assert_true(k->compile.optimizer.learning_rate == 0.002);
    assert_int_equal(k->compile.loss, TENSOR_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY);
}

/* ---- training ------------------------------------------------------------------------ */

static struct tensor_backend *be;

static int setup(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    return tensor_backend_open("cpu", 2, &be, &err);
}

static int teardown(void **state)
{
    (void)state;
    tensor_backend_close(be);
    return 0;
}

/* rows x cols features in [-1, 1] and a label per row (class of the largest of the first
 * classes features, or its one-hot / value when onehot). */
static void make_data(int64_t rows, int64_t cols, int classes, bool onehot, struct tensor_array *x,
                      struct tensor_array *y)
{
    struct dlc_error *err = NULL;
    uint64_t s = 99;
    assert_int_equal(tensor_array_alloc(x, rows, cols, &err), 0);
    assert_int_equal(tensor_array_alloc(y, rows, onehot ? classes : 1, &err), 0);
    for (int64_t i = 0; i < rows * cols; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x->data[i] = (float)((s >> 40) / (double)(1 << 24)) * 2 - 1;
    }
    for (int64_t i = 0; i < rows; i++) {
        int best = 0;
        for (int c = 1; c < classes; c++)
            if (x->data[i * cols + c] > x->data[i * cols + best])
                best = c;
        for (int c = 0; onehot && c < classes; c++)
            y->data[i * classes + c] = c == best;
        if (!onehot)
            y->data[i] = (float)best;
    }
}

static struct tensor_model *built(const char *json, int64_t input, uint64_t seed)
{
    struct dlc_error *err = NULL;
    struct tensor_model *m = parse(json, &err);
    if (m == NULL || tensor_model_build(m, input, seed, &err) < 0)
        fail_msg("%s", err->msg);
    return m;
}

#define COMPILED(layers, compile)                                        \
    "{\"class_name\": \"Sequential\", \"config\": {\"layers\": [" layers \
    "]}, \"compile\": " compile "}"

static void gradient_check(const char *json, int classes, bool onehot)
{
    struct dlc_error *err = NULL;
    struct tensor_array x = {0}, y = {0};
    make_data(6, 5, classes, onehot, &x, &y);
    _cleanup_(tensor_model_freep) struct tensor_model *m = built(json, 5, 3);
    struct tensor_train_config cfg = {.batch_size = 6, .seed = 1};
    _cleanup_(tensor_trainer_freep) struct tensor_trainer *tr = NULL;
    if (tensor_trainer_new(be, m, &x, &y, &cfg, &tr, &err) < 0)
        fail_msg("%s", err->msg);
    size_t n = tensor_trainer_param_count(tr);
    float *p = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
    double loss = 0, lp = 0, lm = 0;
    assert_int_equal(tensor_trainer_gradients(tr, 0, 6, &loss, &err), 0);
    assert_int_equal(tensor_trainer_get_params(tr, p, &err), 0);
    assert_int_equal(tensor_trainer_get_grads(tr, g, &err), 0);
    for (size_t i = 0; i < n; i++) {
        const float h = 1e-2f, orig = p[i];
        p[i] = orig + h;
        tensor_trainer_set_params(tr, p, &err);
        tensor_trainer_gradients(tr, 0, 6, &lp, &err);
        p[i] = orig - h;
        tensor_trainer_set_params(tr, p, &err);
        tensor_trainer_gradients(tr, 0, 6, &lm, &err);
        p[i] = orig;
        double fd = (lp - lm) / (2 * h);
        if (fabs(fd - g[i]) > 1e-3 + 2e-2 * fabs(fd))
            fail_msg("parameter %zu: analytic %.6g, finite differences %.6g", i, (double)g[i], fd);
    }
    free(p), free(g);
    tensor_array_release(&x), tensor_array_release(&y);
}

static void test_model__gradients_vs_finite_differences(void **state)
{
    (void)state;
    /* fused softmax + cross-entropy through tanh and GELU */
    gradient_check(
            COMPILED(DENSE("a", 6, "tanh") "," DENSE("b", 4, "gelu") "," DENSE("c", 3, "softmax"),
                     "{\"loss\": \"sparse_categorical_crossentropy\"}"),
            3, false);
    /* sigmoid + binary cross-entropy, a separate Activation layer, no bias */
    gradient_check(COMPILED("{\"class_name\": \"Dense\", \"config\": {\"name\": \"a\", \"units\": "
                            "4, \"use_bias\": false}}, {\"class_name\": \"Activation\", "
                            "\"config\": {\"activation\": \"sigmoid\"}}," DENSE("b", 2, "sigmoid"),
                            "{\"loss\": \"binary_crossentropy\"}"),
                   2, true);
    /* mse through a dropout mask (fixed while the step does not advance) */
    gradient_check(COMPILED(DENSE("a", 7, "tanh") ", {\"class_name\": \"Dropout\", \"config\": "
                                                  "{\"rate\": 0.5}}," DENSE("b", 3, "linear"),
                            "{\"loss\": \"mse\"}"),
                   3, true);
    /* categorical cross-entropy without the fused path (softmax in its own layer after a
     * linear Dense is still fused; sigmoid outputs are not) */
    gradient_check(COMPILED(DENSE("a", 5, "tanh") "," DENSE("b", 3, "sigmoid"),
                            "{\"loss\": \"categorical_crossentropy\"}"),
                   3, true);
}

static const char *mlp =
        COMPILED(DENSE("a", 16, "relu") ", {\"class_name\": \"Dropout\", "
                                        "\"config\": {\"rate\": 0.1}}," DENSE("b", 4, "softmax"),
                 "{\"loss\": \"sparse_categorical_crossentropy\", "
                 "\"metrics\": [\"accuracy\"]}");

/* Trains epochs from scratch; returns the parameters (malloc'd). */
static float *train(uint64_t seed, int epochs, struct tensor_metrics *last)
{
    struct dlc_error *err = NULL;
    struct tensor_array x = {0}, y = {0};
    make_data(200, 6, 4, false, &x, &y);
    _cleanup_(tensor_model_freep) struct tensor_model *m = built(mlp, 6, seed);
    struct tensor_train_config cfg = {.batch_size = 32, .seed = seed, .shuffle = true};
    _cleanup_(tensor_trainer_freep) struct tensor_trainer *tr = NULL;
    assert_int_equal(tensor_trainer_new(be, m, &x, &y, &cfg, &tr, &err), 0);
    for (int e = 0; e < epochs; e++)
        assert_int_equal(tensor_trainer_run_epoch(tr, NULL, NULL, NULL, last, &err), 1);
    float *p = malloc(tensor_trainer_param_count(tr) * sizeof(float));
    assert_int_equal(tensor_trainer_get_params(tr, p, &err), 0);
    tensor_array_release(&x), tensor_array_release(&y);
    return p;
}

static void test_model__seeded_runs_are_bit_identical(void **state)
{
    (void)state;
    size_t n = 6 * 16 + 16 + 16 * 4 + 4;
    struct tensor_metrics m1, m2, m3;
    _cleanup_free_ float *a = train(5, 3, &m1), *b = train(5, 3, &m2), *c = train(6, 3, &m3);
    assert_memory_equal(a, b, n * sizeof(float));
    assert_true(m1.loss == m2.loss && m1.values[0] == m2.values[0]);
    assert_true(memcmp(a, c, n * sizeof(float)) != 0);
    assert_int_equal(m1.metrics[0], TENSOR_METRIC_SPARSE_CATEGORICAL_ACCURACY);
    assert_int_equal(m1.rows, 200);
}

struct stopper {
    volatile sig_atomic_t flag;
    int64_t at;
};

static void stop_at(int64_t batch, int64_t n, const struct tensor_metrics *m, void *ud)
{
    (void)n, (void)m;
    struct stopper *s = ud;
    if (batch == s->at)
        s->flag = 1;
}

static void test_model__checkpoint_resume_is_bit_identical(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    _cleanup_free_ char *dir = unit_tmpdir();
    _cleanup_free_ char *ck = dlc_path_join(dir, "checkpoint.safetensors");
    struct tensor_metrics want_m, got_m;
    _cleanup_free_ float *want = train(11, 3, &want_m);

    struct tensor_array x = {0}, y = {0};
    make_data(200, 6, 4, false, &x, &y);
    struct tensor_train_config cfg = {.batch_size = 32, .seed = 11, .shuffle = true};
    struct tensor_model *m = built(mlp, 6, 11);
    struct tensor_trainer *tr = NULL;
    assert_int_equal(tensor_trainer_new(be, m, &x, &y, &cfg, &tr, &err), 0);
    struct stopper s = {0, 3};
    assert_int_equal(tensor_trainer_run_epoch(tr, &s.flag, NULL, NULL, &got_m, &err), 1);
    assert_int_equal(tensor_trainer_run_epoch(tr, &s.flag, stop_at, &s, &got_m, &err), 0);
    assert_int_equal(tensor_trainer_position(tr)->batch, 3);
    json_auto_t *st = json_pack("{s:s}", "note", "mid-epoch");
    assert_int_equal(tensor_checkpoint_save(tr, ck, st, &err), 0);
    tensor_trainer_free(tr);
    tensor_model_free(m);

    /* a fresh process: another initialisation, then the checkpoint */
    m = built(mlp, 6, 11);
    assert_int_equal(tensor_trainer_new(be, m, &x, &y, &cfg, &tr, &err), 0);
    json_t *back = NULL;
    assert_int_equal(tensor_checkpoint_load(tr, ck, &back, &err), 0);
    assert_string_equal(json_string_value(json_object_get(back, "note")), "mid-epoch");
    json_decref(back);
    assert_int_equal(tensor_trainer_run_epoch(tr, NULL, NULL, NULL, &got_m, &err), 1);
    assert_int_equal(tensor_trainer_run_epoch(tr, NULL, NULL, NULL, &got_m, &err), 1);
    assert_int_equal(tensor_trainer_position(tr)->epoch, 3);
    float *got = malloc(tensor_trainer_param_count(tr) * sizeof(float));
    assert_int_equal(tensor_trainer_get_params(tr, got, &err), 0);
    assert_memory_equal(got, want, tensor_trainer_param_count(tr) * sizeof(float));
    assert_true(got_m.loss == want_m.loss);
    free(got);
    tensor_trainer_free(tr);

    /* another batch size is another run */
    cfg.batch_size = 16;
    assert_int_equal(tensor_trainer_new(be, m, &x, &y, &cfg, &tr, &err), 0);
    assert_dlc_error(tensor_checkpoint_load(tr, ck, &back, &err), &err, EINVAL,
                     "was written for another batch_size: remove it to start over");
    tensor_trainer_free(tr);
    tensor_model_free(m);
    tensor_array_release(&x), tensor_array_release(&y);
    unit_tmpdir_free(TAKE_PTR(dir));
}

static void test_model__save_load_predict(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    _cleanup_free_ char *dir = unit_tmpdir();
    struct tensor_array x = {0}, y = {0}, p1 = {0}, p2 = {0};
    make_data(50, 6, 4, false, &x, &y);
    _cleanup_(tensor_model_freep) struct tensor_model *m = built(mlp, 6, 2);
    struct tensor_train_config cfg = {.batch_size = 8, .seed = 2, .shuffle = true};
    _cleanup_(tensor_trainer_freep) struct tensor_trainer *tr = NULL;
    struct tensor_metrics met, ev;
    assert_int_equal(tensor_trainer_new(be, m, &x, &y, &cfg, &tr, &err), 0);
    assert_int_equal(tensor_trainer_run_epoch(tr, NULL, NULL, NULL, &met, &err), 1);
    assert_int_equal(tensor_trainer_sync_model(tr, &err), 0);
    assert_int_equal(tensor_model_save(m, dir, &err), 0);
    _cleanup_(tensor_model_freep) struct tensor_model *l = NULL;
    assert_int_equal(tensor_model_load(dir, &l, &err), 0);
    assert_int_equal(tensor_predict(be, m, &x, 7, &p1, &err), 0);
    assert_int_equal(tensor_predict(be, l, &x, 50, &p2, &err), 0);
    assert_int_equal(p1.rows, 50), assert_int_equal(p1.cols, 4);
    assert_memory_equal(p1.data, p2.data, 50 * 4 * sizeof(float));
    for (int i = 0; i < 50; i++) { /* softmax rows */
        double s = 0;
        for (int j = 0; j < 4; j++)
            s += p1.data[i * 4 + j];
        assert_float_equal(s, 1.0, 1e-5);
    }
    /* evaluate agrees with predict */
    assert_int_equal(tensor_trainer_evaluate(tr, &x, &y, &ev, &err), 0);
    double loss = 0;
    for (int i = 0; i < 50; i++)
        loss -= log(p1.data[i * 4 + (int)y.data[i]]);
    assert_float_equal(ev.loss, loss / 50, 1e-5);
    /* a mismatched width is an error naming both sides */
    struct tensor_array bad = {0};
    assert_int_equal(tensor_array_alloc(&bad, 2, 5, &err), 0);
    assert_dlc_error(tensor_predict(be, l, &bad, 8, &p2, &err), &err, EINVAL,
                     "the model expects 6 input features, the input has 5");
    struct tensor_array by = tensor_array_view(&y, 0, 2);
    by.data[0] = 7;
    assert_dlc_error(tensor_trainer_evaluate(tr, &x, &y, &ev, &err), &err, EINVAL,
                     "the evaluation data: label row 0 is 7, not a class index in [0, 4)");
    _cleanup_free_ char *st = dlc_path_join(dir, "model.safetensors");
    assert_int_equal(truncate(st, 100), 0);
    assert_dlc_error(tensor_model_load(dir, &l, &err), &err, EPROTO, "load model from ");
    tensor_array_release(&bad);
    tensor_array_release(&x), tensor_array_release(&y);
    tensor_array_release(&p1), tensor_array_release(&p2);
    unit_tmpdir_free(TAKE_PTR(dir));
}

/* The CPU backend with its allocations counted: a predictor plans once, every run after
 * that allocates nothing on the backend. */
static int backend_allocs;
static struct tensor_backend_ops counting_ops;

static void *counting_alloc(struct tensor_backend *b, size_t bytes, struct dlc_error **err)
{
    backend_allocs++;
    return tensor_backend_cpu.alloc(b, bytes, err);
}

static void assert_rows_equal(const struct tensor_array *a, int64_t row0, const float *b,
                              int64_t rows)
{
    assert_memory_equal(a->data + row0 * a->cols, b, (size_t)(rows * a->cols) * sizeof(float));
}

static void test_model__predictor_plans_once(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    struct tensor_array x = {0}, y = {0}, want = {0}, got = {0};
    make_data(50, 6, 4, false, &x, &y);
    _cleanup_(tensor_model_freep) struct tensor_model *m = built(mlp, 6, 3);
    counting_ops = tensor_backend_cpu;
    counting_ops.alloc = counting_alloc;
    struct tensor_backend cbe = *be;
    cbe.ops = &counting_ops;
    assert_int_equal(tensor_predict(&cbe, m, &x, 8, &want, &err), 0);
    assert_int_equal(backend_allocs, 1); /* the one-off plans its own */

    _cleanup_(tensor_predictor_freep) struct tensor_predictor *p = NULL;
    assert_int_equal(tensor_predictor_new(&cbe, m, 8, &p, &err), 0);
    assert_int_equal(tensor_predictor_max_rows(p), 8);
    /* 50 rows in passes of 8, then smaller inputs: each equals the one-off prediction,
     * nothing of an earlier call shows in a later one */
    for (int round = 0; round < 3; round++) {
        assert_int_equal(tensor_predictor_run(p, &x, &got, &err), 0);
        assert_int_equal(got.rows, 50), assert_int_equal(got.cols, 4);
        assert_rows_equal(&want, 0, got.data, 50);
        tensor_array_release(&got);
        float out[3 * 4];
        struct tensor_array part = tensor_array_view(&x, 47 - round, 3);
        assert_int_equal(tensor_predictor_run_into(p, &part, out, &err), 0);
        assert_rows_equal(&want, 47 - round, out, 3);
    }
    assert_int_equal(backend_allocs, 2);
    /* the weights were uploaded at creation: changing the model later is not seen */
    m->layers[0].kernel[0] += 1.0f;
    assert_int_equal(tensor_predictor_run(p, &x, &got, &err), 0);
    assert_rows_equal(&want, 0, got.data, 50);
    tensor_array_release(&got);
    /* errors */
    struct tensor_array none = tensor_array_view(&x, 0, 0), bad = {0};
    assert_dlc_error(tensor_predictor_run(p, &none, &got, &err), &err, EINVAL,
                     "the input has no rows");
    assert_int_equal(tensor_array_alloc(&bad, 2, 5, &err), 0);
    assert_dlc_error(tensor_predictor_run(p, &bad, &got, &err), &err, EINVAL,
                     "the model expects 6 input features, the input has 5");
    struct tensor_predictor *q = NULL;
    assert_dlc_error(tensor_predictor_new(be, m, 0, &q, &err), &err, EINVAL,
                     "batch size 0 is out of range");
    tensor_array_release(&bad);
    tensor_array_release(&x), tensor_array_release(&y), tensor_array_release(&want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_model__keras_json),
            cmocka_unit_test(test_model__keras_json_errors),
            cmocka_unit_test(test_model__short_form),
            cmocka_unit_test(test_model__gradients_vs_finite_differences),
            cmocka_unit_test(test_model__seeded_runs_are_bit_identical),
            cmocka_unit_test(test_model__checkpoint_resume_is_bit_identical),
            cmocka_unit_test(test_model__save_load_predict),
            cmocka_unit_test(test_model__predictor_plans_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
