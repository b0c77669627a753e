/* linear.c: fully connected layer (nn.Linear), forward and backward on the CPU.
 *
 * The op-family template: raw kernels first (outputs, then inputs, weights, sizes; backward
 * adds into the gradients it is given and skips NULL ones), then the tape-level op that
 * allocates, calls the kernel and records the backward.
 */
#include "linear.h"
#include "../core/profile.h"

#include <cblas.h>

/* out (N, OUT) = inp (N, IN) . weight (OUT, IN)^T + bias (OUT) */
void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int IN, int OUT) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OUT, IN, 1.0f, inp, IN, weight, IN, 0.0f, out, OUT);
    if (bias) {
#pragma omp parallel for schedule(static) if ((int64_t)N * OUT > 65536)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OUT; o++) out[(int64_t)n * OUT + o] += bias[o];
    }
}

/* dinp (N, IN) += dout . weight; dweight (OUT, IN) += dout^T . inp; dbias (OUT) += sum_n dout */
void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int IN, int OUT) {
    if (dinp) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IN, OUT, 1.0f, dout, OUT, weight, IN, 1.0f, dinp, IN);
    if (dweight) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OUT, IN, N, 1.0f, dout, OUT, inp, IN, 1.0f, dweight, IN);
    if (dbias) {
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OUT; o++) dbias[o] += dout[(int64_t)n * OUT + o];
    }
}

static void linear_bwd(Node *nd) {
    Tensor *x = nd->in[0], *w = nd->in[1], *b = nd->in[2], *y = nd->out[0];
    int IN = w->shape[1], OUT = w->shape[0];
    int N = (int)(x->n / IN);
    KERNEL(nd->tape->device, linear_backward, tensor_grad_or_null(x), tensor_grad_or_null(w), tensor_grad_or_null(b), y->grad, x->data,
                    w->data, N, IN, OUT);
}

Tensor *op_linear(Tape *tp, Tensor *x, Tensor *w, Tensor *b) {
    PROFILE_OP_BEGIN();
    CHECK(w->ndim == 2 && x->ndim >= 1, "linear: weight must be 2-d");
    int IN = w->shape[1], OUT = w->shape[0];
    CHECK(x->shape[x->ndim - 1] == IN, "linear: input has %d features, weight expects %d", x->shape[x->ndim - 1], IN);
    CHECK(!b || (b->ndim == 1 && b->shape[0] == OUT), "linear: bias shape");
    int shape[TENSOR_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
    shape[x->ndim - 1] = OUT;
    Tensor *y = tape_new(tp, x->ndim, shape);
    int N = (int)(x->n / IN);
    KERNEL(tp->device, linear_forward, y->data, x->data, w->data, b ? b->data : NULL, N, IN, OUT);
    Tensor *in[] = {x, w, b}, *out[] = {y};
    TAPE_RECORD(tp, "linear", linear_bwd, in, out);
    return y;
}
