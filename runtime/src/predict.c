/* predict.c: inference with a built model through a forward-only plan (train.c's memory
 * plan without gradients), made once and reused for every call by a tensor_predictor. */
#include <errno.h>
#include <string.h>

#include "tensor-internal.h"

struct tensor_predictor {
    struct tensor_trainer *tr; /* the plan: weights uploaded, room for tr->batch rows */
    int64_t outputs;
};

int tensor_predictor_new(struct tensor_backend *be, const struct tensor_model *m, int64_t max_rows,
                         struct tensor_predictor **ret, struct dlc_error **err)
{
    _cleanup_(tensor_trainer_freep) struct tensor_trainer *tr = NULL;
    if (tensor__trainer_plan(be, m, max_rows, 0, false, &tr, err) < 0)
        return -1;
    struct tensor_predictor *p = xcalloc(1, sizeof(*p));
    p->tr = TAKE_PTR(tr);
    p->outputs = tensor_model_outputs(m);
    *ret = p;
    return 0;
}

void tensor_predictor_free(struct tensor_predictor *p)
{
    if (p == NULL)
        return;
    tensor_trainer_free(p->tr);
    free(p);
}

int64_t tensor_predictor_max_rows(const struct tensor_predictor *p)
{
    return p->tr->batch;
}

static int check_input(const struct tensor_model *m, const struct tensor_array *x,
                       struct dlc_error **err)
{
    if (x->cols != m->input_dim)
        return dlc_error_set(err, EINVAL,
                             "the model expects %lld input features, the input has %lld",
                             (long long)m->input_dim, (long long)x->cols);
    if (x->rows == 0)
        return dlc_error_set(err, EINVAL, "the input has no rows");
    return 0;
}

int tensor_predictor_run_into(struct tensor_predictor *p, const struct tensor_array *x, float *out,
                              struct dlc_error **err)
{
    struct tensor_trainer *tr = p->tr;
    struct tensor_backend *be = tr->be;
    if (check_input(tr->m, x, err) < 0)
        return -1;
    for (int64_t row0 = 0; row0 < x->rows; row0 += tr->batch) {
        int64_t n = x->rows - row0 < tr->batch ? x->rows - row0 : tr->batch;
        struct tensor in = tensor_rows_view(&tr->input, 0, n);
        const struct tensor *y = NULL;
        if (be->ops->upload(be, &in, x->data + row0 * x->cols, err) < 0 ||
            tensor__trainer_forward(tr, n, false, &y, err) < 0 ||
            be->ops->download(be, y, out + row0 * p->outputs, err) < 0)
            return dlc_error_wrap(err, "predict rows %lld..%lld", (long long)row0,
                                  (long long)(row0 + n - 1));
    }
    return 0;
}

int tensor_predictor_run(struct tensor_predictor *p, const struct tensor_array *x,
                         struct tensor_array *ret, struct dlc_error **err)
{
    if (check_input(p->tr->m, x, err) < 0)
        return -1;
    struct tensor_array y = {0};
    if (tensor_array_alloc(&y, x->rows, p->outputs, err) < 0)
        return -1;
    if (tensor_predictor_run_into(p, x, y.data, err) < 0) {
        tensor_array_release(&y);
        return -1;
    }
    *ret = y;
    return 0;
}

int tensor_predict(struct tensor_backend *be, const struct tensor_model *m,
                   const struct tensor_array *x, int64_t batch_size, struct tensor_array *ret,
                   struct dlc_error **err)
{
    if (check_input(m, x, err) < 0)
        return -1;
    _cleanup_(tensor_predictor_freep) struct tensor_predictor *p = NULL;
    if (tensor_predictor_new(be, m, batch_size < x->rows ? batch_size : x->rows, &p, err) < 0)
        return -1;
    return tensor_predictor_run(p, x, ret, err);
}
