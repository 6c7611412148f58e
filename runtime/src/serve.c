/* serve.c: `tensor serve`: options from SageMaker's environment, the model (loaded after
 * the port is open, so /ping can say 503 meanwhile), and the server's life cycle. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "serve.h"

#define DEFAULT_PORT       8080
#define DEFAULT_PAYLOAD_MB 6
#define MAX_PAYLOAD_MB     1024
#define DEFAULT_BATCH_ROWS 1024
#define MODEL_TARBALL      "model.tar.gz"

struct tensor_server {
    struct tensor_serve_options opts;
    struct serve_server *http;
    struct tensor_backend *be;
    struct tensor_model *model;
    struct serve_batcher *batcher;
    char *unpacked; /* the temp dir model.tar.gz went to, removed at stop */
};

/* ---- options ---------------------------------------------------------------------------- */

static int env_int(const char *name, int min, int max, int *ret, struct dlc_error **err)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0')
        return 0;
    return dlc_parse_int(v, name, min, max, ret, err);
}

int tensor_serve_options_init(struct tensor_serve_options *o, struct dlc_error **err)
{
    *o = (struct tensor_serve_options){
            .device = tensor_device_default(),
            .bind_addr = "0.0.0.0",
            .port = DEFAULT_PORT,
            .threads = dlc_cpu_count(),
            .max_payload = (size_t)DEFAULT_PAYLOAD_MB << 20,
            .default_accept = "application/json",
            .max_batch_rows = DEFAULT_BATCH_ROWS,
            .access_log = true,
    };
    int mb = DEFAULT_PAYLOAD_MB;
    if (env_int("SAGEMAKER_BIND_TO_PORT", 1, 65535, &o->port, err) < 0 ||
        env_int("SAGEMAKER_MAX_PAYLOAD_IN_MB", 1, MAX_PAYLOAD_MB, &mb, err) < 0 ||
        env_int("SAGEMAKER_MODEL_SERVER_WORKERS", 1, 1024, &o->threads, err) < 0)
        return -1;
    o->max_payload = (size_t)mb << 20;
    const char *accept = getenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT");
    if (accept && accept[0])
        o->default_accept = accept;
    return 0;
}

/* ---- the model -------------------------------------------------------------------------- */

static int unpack_tarball(const char *tarball, char **ret_dir, struct dlc_error **err)
{
    const char *tmp = getenv("TMPDIR");
    _cleanup_free_ char *dir = xasprintf("%s/tensor-model-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        return dlc_error_set_errno(err, errno, "create a directory for %s", tarball);
    const char *argv[] = {"tar", "-xzf", tarball, "-C", dir, NULL};
    _cleanup_error_ struct dlc_error *e = NULL;
    int rc = dlc_spawn_wait(argv, false, &e);
    if (rc != 0) {
        struct dlc_error *ignored = NULL;
        dlc_rm_rf(dir, &ignored);
        dlc_error_free(&ignored);
        if (rc < 0)
            return dlc_error_set(err, e->code,
                                 "unpack %s: %s (tensor links no archive library; unpack it "
                                 "first, as `dlc serve --model FILE.tar.gz` does)",
                                 tarball, e->msg);
        return dlc_error_set(err, EINVAL, "unpack %s: tar exited with status %d", tarball, rc);
    }
    *ret_dir = TAKE_PTR(dir);
    return 0;
}

int serve_model_load(const char *dir, struct tensor_model **ret, char **ret_unpacked,
                     struct dlc_error **err)
{
    _cleanup_free_ char *json = dlc_path_join(dir, "model.json");
    _cleanup_free_ char *tarball = dlc_path_join(dir, MODEL_TARBALL);
    _cleanup_free_ char *unpacked = NULL;
    const char *from = dir;
    if (!dlc_path_exists(json) && dlc_path_exists(tarball)) {
        if (unpack_tarball(tarball, &unpacked, err) < 0)
            return -1;
        from = unpacked;
    }
    if (tensor_model_load(from, ret, err) < 0) {
        if (unpacked) {
            struct dlc_error *ignored = NULL;
            dlc_rm_rf(unpacked, &ignored);
            dlc_error_free(&ignored);
            return dlc_error_wrap(err, "%s", tarball);
        }
        return -1;
    }
    if ((*ret)->input_dim <= 0) {
        tensor_model_free(TAKE_PTR(*ret));
        return dlc_error_set(err, EINVAL, "%s: the model does not say how many inputs it takes",
                             dir);
    }
    *ret_unpacked = TAKE_PTR(unpacked);
    return 0;
}

/* ---- the server ------------------------------------------------------------------------- */

int tensor_server_start(const struct tensor_serve_options *o, struct tensor_server **ret,
                        struct dlc_error **err)
{
    enum serve_type accept = SERVE_JSON;
    if (serve_content_type(o->default_accept, &accept) < 0)
        return dlc_error_set(err, EINVAL,
                             "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT '%s': use application/json, "
                             "text/csv or application/x-npy",
                             o->default_accept);
    struct serve_http_config hc = {
            .bind_addr = o->bind_addr,
            .port = o->port,
            .threads = o->threads > 0 ? o->threads : dlc_cpu_count(),
            .max_payload = o->max_payload,
            .default_accept = accept,
            .max_concurrent = o->threads > 0 ? o->threads : dlc_cpu_count(),
            .access_log = o->access_log,
    };
    struct tensor_server *s = xcalloc(1, sizeof(*s));
    s->opts = *o;
    if (serve_server_start(&hc, &s->http, err) < 0) {
        free(s);
        return -1;
    }
    *ret = s;
    return 0;
}

int tensor_server_port(const struct tensor_server *s)
{
    return serve_server_port(s->http);
}

int tensor_server_load(struct tensor_server *s, struct dlc_error **err)
{
    DLC_ASSERT(s->model == NULL);
    _cleanup_free_ char *def =
            s->opts.model_dir ? NULL : dlc_path_join(tensor_sm_base_dir(), "model");
    const char *dir = s->opts.model_dir ? s->opts.model_dir : def;
    if (serve_model_load(dir, &s->model, &s->unpacked, err) < 0)
        return -1; /* "load model from DIR: ..." */
    int threads = dlc_cpu_count();
    /* The batcher plans the model once and warms it up before /ping says yes. */
    if (tensor_backend_open(s->opts.device, threads, &s->be, err) < 0 ||
        serve_batcher_new(s->be, s->model, s->opts.max_batch_rows, &s->batcher, err) < 0)
        return -1;
    serve_server_set_model(s->http, s->batcher, s->model->input_dim);
    return 0;
}

const struct tensor_model *tensor_server_model(const struct tensor_server *s)
{
    return s->model;
}

const char *tensor_server_backend(const struct tensor_server *s)
{
    return s->be ? s->be->ops->name : NULL;
}

void tensor_server_stats(const struct tensor_server *s, uint64_t *ret_calls, uint64_t *ret_rows,
                         uint64_t *ret_requests)
{
    *ret_calls = *ret_rows = *ret_requests = 0;
    if (s->batcher)
        serve_batcher_stats(s->batcher, ret_calls, ret_rows, ret_requests);
}

void tensor_server_stop(struct tensor_server *s)
{
    if (s == NULL)
        return;
    serve_server_stop(s->http); /* answers what is in flight: the batcher still runs */
    serve_batcher_free(s->batcher);
    if (s->be)
        tensor_backend_close(s->be);
    tensor_model_free(s->model);
    if (s->unpacked) {
        struct dlc_error *ignored = NULL;
        dlc_rm_rf(s->unpacked, &ignored);
        dlc_error_free(&ignored);
        free(s->unpacked);
    }
    free(s);
}
