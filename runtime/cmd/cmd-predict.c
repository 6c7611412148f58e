/* cmd-predict.c: `tensor predict`, `tensor evaluate` and `tensor devices`: a saved model
 * (model.json + model.safetensors) on files, and what the runtime can run on. */
#include <errno.h>
#include <getopt.h>
#include <string.h>

#include "tensor-cmd.h"

struct run_opts {
    const char *model_dir;
    const char *input;
    const char *output;
    const char *channel;
    const char *device;
    int64_t batch;
    int64_t threads;
    bool json;
};

enum { OPT_JSON = 0x100 };

static const struct option long_opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"input", required_argument, NULL, 'i'},
        {"output", required_argument, NULL, 'o'},
        {"channel", required_argument, NULL, 'c'},
        {"batch-size", required_argument, NULL, 'b'},
        {"device", required_argument, NULL, 'd'},
        {"threads", required_argument, NULL, 't'},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
};

/* 0, 1 after --help, 2 on a usage error (already printed). */
static int parse_opts(const char *cmd, const char *usage, int argc, char **argv, struct run_opts *o)
{
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:i:o:c:b:d:t:h", long_opts, NULL)) != -1) {
        int r = 0;
        switch (c) {
        case 'm':
            o->model_dir = optarg;
            break;
        case 'i':
            o->input = optarg;
            break;
        case 'o':
            o->output = optarg;
            break;
        case 'c':
            o->channel = optarg;
            break;
        case 'd':
            o->device = optarg;
            break;
        case 'b':
            r = cmd_parse_count(cmd, "--batch-size", optarg, 1 << 24, &o->batch);
            break;
        case 't':
            r = cmd_parse_count(cmd, "--threads", optarg, 1024, &o->threads);
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return 1;
        default:
            return cmd_usage_error(cmd, "invalid option");
        }
        if (r != 0)
            return r;
    }
    if (optind < argc)
        return cmd_usage_error(cmd, "unexpected argument");
    return 0;
}

static const char predict_usage[] =
        "Usage: tensor predict [--model DIR] --input FILE [--output FILE] [--batch-size N]\n"
        "                      [--device cpu|gpu|auto] [--threads N]\n\n"
        "Runs the model saved in DIR (default $SAGEMAKER_BASE_DIR/model, or /opt/ml/model)\n"
        "on FILE: .npy (any numeric dtype) or CSV without a label column, either gzip'd.\n"
        "Writes one row of outputs per input row to FILE (.npy as '<f4', anything else as\n"
        "CSV), or as CSV to standard output when --output is missing or '-'.\n";

/* .npy by its magic, anything else as CSV (features only), gzip'd or not. */
static int read_input(const char *path, struct tensor_array *ret, struct dlc_error **err)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (tensor_read_maybe_gz(path, (size_t)TENSOR_MAX_ELEMENTS * 8, &buf, &len, err) < 0)
        return -1;
    if (len >= 6 && memcmp(buf, "\x93NUMPY", 6) == 0)
        return tensor_npy_parse(buf, len, path, ret, err);
    return tensor_csv_parse(buf, len, path, false, ret, NULL, err);
}

static int write_output(const char *path, const struct tensor_array *y, struct dlc_error **err)
{
    if (path == NULL || strcmp(path, "-") == 0) {
        for (int64_t i = 0; i < y->rows; i++)
            for (int64_t j = 0; j < y->cols; j++)
                printf("%.9g%c", (double)y->data[i * y->cols + j], j + 1 < y->cols ? ',' : '\n');
        return fflush(stdout) == 0 ? 0 : dlc_error_set_errno(err, errno, "write output");
    }
    if (dlc_endswith(path, ".npy"))
        return tensor_npy_write(path, y, err);
    return tensor_csv_write(path, y, err);
}

static char *default_model_dir(void)
{
    return dlc_path_join(tensor_sm_base_dir(), "model");
}

int cmd_predict(int argc, char **argv)
{
    struct run_opts o = {.device = tensor_device_default(), .batch = 1024};
    int r = parse_opts("predict", predict_usage, argc, argv, &o);
    if (r != 0)
        return r == 1 ? 0 : r;
    if (o.input == NULL)
        return cmd_usage_error("predict", "--input is required");
    _cleanup_free_ char *dir = o.model_dir ? xstrdup(o.model_dir) : default_model_dir();
    _cleanup_error_ struct dlc_error *err = NULL;
    _cleanup_(tensor_model_freep) struct tensor_model *m = NULL;
    struct tensor_backend *be = NULL;
    struct tensor_array x = {0}, y = {0};
    r = tensor_model_load(dir, &m, &err);
    if (r == 0)
        r = read_input(o.input, &x, &err);
    if (r == 0)
        r = tensor_backend_open(o.device, (int)o.threads, &be, &err);
    if (r == 0)
        r = tensor_predict(be, m, &x, o.batch, &y, &err);
    if (r == 0)
        r = write_output(o.output, &y, &err);
    tensor_backend_close(be);
    tensor_array_release(&x);
    tensor_array_release(&y);
    return r < 0 ? cmd_fail("predict", &err) : 0;
}

static const char evaluate_usage[] =
        "Usage: tensor evaluate [--model DIR] --channel DIR [--batch-size N] [--json]\n"
        "                       [--device cpu|gpu|auto] [--threads N]\n\n"
        "Prints the loss and metrics of the model saved in DIR (its compile block) on the\n"
        "data in a channel directory (train.npy + labels.npy, or label-first CSV files).\n";

static void print_metrics(const struct tensor_metrics *s, bool json)
{
    if (!json) {
        _cleanup_strbuf_ struct dlc_strbuf sb = DLC_STRBUF_INIT;
        progress_format_metrics(s, "", &sb);
        printf("%s\n", dlc_strbuf_str(&sb));
        return;
    }
    json_auto_t *j = json_pack("{s:f, s:I}", "loss", s->loss, "rows", (json_int_t)s->rows);
    for (int i = 0; i < s->n_metrics; i++)
        json_object_set_new(j, tensor_metric_name(s->metrics[i]), json_real(s->values[i]));
    _cleanup_free_ char *out = dlc_json_dumps(j, NULL);
    printf("%s\n", out);
}

static int evaluate(struct tensor_backend *be, struct tensor_model *m, const struct run_opts *o,
                    struct tensor_metrics *ret, struct dlc_error **err)
{
    struct tensor_array x = {0}, y = {0};
    _cleanup_(tensor_trainer_freep) struct tensor_trainer *tr = NULL;
    struct tensor_train_config cfg = {.batch_size = o->batch};
    int r = tensor_channel_load(o->channel, dlc_path_basename(o->channel), &x, &y, err);
    if (r == 0 && !m->compile.set)
        r = dlc_error_set(err, EINVAL, "model.json has no compile block: its loss is unknown");
    if (r == 0)
        r = tensor_trainer_new(be, m, &x, &y, &cfg, &tr, err);
    if (r == 0)
        r = tensor_trainer_evaluate(tr, &x, &y, ret, err);
    tensor_array_release(&x);
    tensor_array_release(&y);
    return r;
}

int cmd_evaluate(int argc, char **argv)
{
    struct run_opts o = {.device = tensor_device_default(), .batch = 1024};
    int r = parse_opts("evaluate", evaluate_usage, argc, argv, &o);
    if (r != 0)
        return r == 1 ? 0 : r;
    if (o.channel == NULL)
        return cmd_usage_error("evaluate", "--channel is required");
    _cleanup_free_ char *dir = o.model_dir ? xstrdup(o.model_dir) : default_model_dir();
    _cleanup_error_ struct dlc_error *err = NULL;
    _cleanup_(tensor_model_freep) struct tensor_model *m = NULL;
    struct tensor_backend *be = NULL;
    struct tensor_metrics s = {0};
    r = tensor_model_load(dir, &m, &err);
    if (r == 0)
        r = tensor_backend_open(o.device, (int)o.threads, &be, &err);
    if (r == 0)
        r = evaluate(be, m, &o, &s, &err);
    tensor_backend_close(be);
    if (r < 0)
        return cmd_fail("evaluate", &err);
    print_metrics(&s, o.json);
    return 0;
}

int cmd_devices(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("Usage: tensor devices\n\nLists the backends built in and what each sees.\n");
        return 0;
    }
    printf("tensor %s\n", TENSOR_VERSION);
    const struct tensor_backend_ops *const *list = tensor_backend_list();
    for (size_t i = 0; list[i] != NULL; i++) {
        _cleanup_error_ struct dlc_error *err = NULL;
        struct tensor_backend *be = NULL;
        printf("backend %s: %s\n", list[i]->name, list[i]->description);
        if (tensor_backend_open(list[i]->name, 0, &be, &err) < 0) {
            printf("  unavailable: %s\n", err->msg);
            continue;
        }
        _cleanup_strbuf_ struct dlc_strbuf sb = DLC_STRBUF_INIT;
        be->ops->describe(be, &sb);
        fputs(dlc_strbuf_str(&sb), stdout);
        tensor_backend_close(be);
    }
    return 0;
}
