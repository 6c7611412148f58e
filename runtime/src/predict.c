/* predict.c: inference with a built model, batch by batch through a forward-only plan. */
#include <errno.h>
#include <string.h>

#include "tensor-internal.h"

int tensor_predict(struct tensor_backend *be, const struct tensor_model *m,
                   const struct tensor_array *x, int64_t batch_size, struct tensor_array *ret,
                   struct dlc_error **err)
{
    if (x->cols != m->input_dim)
        return dlc_error_set(err, EINVAL,
                             "the model expects %lld input features, the input has %lld",
                             (long long)m->input_dim, (long long)x->cols);
    if (x->rows == 0)
        return dlc_error_set(err, EINVAL, "the input has no rows");
    int64_t batch = batch_size < x->rows ? batch_size : x->rows;
    _cleanup_(tensor_trainer_freep) struct tensor_trainer *tr = NULL;
    if (tensor__trainer_plan(be, m, batch, 0, false, &tr, err) < 0)
        return -1;
    struct tensor_array y = {0};
    if (tensor_array_alloc(&y, x->rows, tensor_model_outputs(m), err) < 0)
        return -1;
    for (int64_t row0 = 0; row0 < x->rows; row0 += batch) {
        int64_t n = x->rows - row0 < batch ? x->rows - row0 : batch;
        struct tensor in = tensor_rows_view(&tr->input, 0, n);
        const struct tensor *out = NULL;
        if (be->ops->upload(be, &in, x->data + row0 * x->cols, err) < 0 ||
            tensor__trainer_forward(tr, n, false, &out, err) < 0 ||
            be->ops->download(be, out, y.data + row0 * y.cols, err) < 0) {
            tensor_array_release(&y);
            return dlc_error_wrap(err, "predict rows %lld..%lld", (long long)row0,
                                  (long long)(row0 + n - 1));
        }
    }
    *ret = y;
    return 0;
}
