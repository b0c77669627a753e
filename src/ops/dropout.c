/* dropout.c: inverted dropout (F.dropout in train mode), forward and backward on the CPU.
 *
 * The keep mask comes from the counter-based Rng (one uniform per element: keep if u >= p), so
 * the same seed and offset give the same mask for any thread count. op_dropout_mask replays a
 * given multiplier tensor, e.g. one stored in a PyTorch dump (PyTorch computes x * mask too).
 */
#include "dropout.h"

#include <stdlib.h>
#include "../core/profile.h"

#include <string.h>

/* mask (n) = uniform (n) >= p ? 1/(1-p) : 0 */
void dropout_make_mask(float *mask, const float *uniform, float p, int64_t n) {
    float scale = p < 1.0f ? (float)(1.0 / (1.0 - (double)p)) : 0.0f;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) mask[i] = uniform[i] >= p ? scale : 0.0f;
}

/* out (n) = inp (n) * mask (n) */
void dropout_forward(float *out, const float *inp, const float *mask, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) out[i] = inp[i] * mask[i];
}

/* dinp (n) += dout (n) * mask (n) */
void dropout_backward(float *dinp, const float *dout, const float *mask, int64_t n) {
    if (!dinp) return;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) dinp[i] += dout[i] * mask[i];
}

/* ---------------------------------------------------------------- tape ops */
static void dropout_bwd(Node *nd) {
    Tensor *x = nd->in[0], *y = nd->out[0];
    KERNEL(nd->tape->device, dropout_backward, tensor_grad_or_null(x), y->grad, (const float *)nd->ctx, x->n);
}

/* y = x * mask; backward reads the mask from ctx: the arena mask itself (owned), or a copy of
 * a caller's mask that might be freed or reused before backward. */
static Tensor *dropout_apply(Tape *tp, Tensor *x, const float *mask, int mask_on_tape, const char *name) {
    Tensor *y = tape_new(tp, x->ndim, x->shape);
    KERNEL(tp->device, dropout_forward, y->data, x->data, mask, x->n);
    Tensor *in[] = {x}, *out[] = {y};
    Node *nd = TAPE_RECORD(tp, name, dropout_bwd, in, out);
    if (nd && mask_on_tape) {
        nd->ctx = (void *)mask;
    } else if (nd) {
        float *m = tape_dev_alloc(tp, (size_t)(x->n ? x->n : 1) * sizeof(float));
        device_copy(tp->device, m, mask, (size_t)x->n * sizeof(float));
        nd->ctx = m;
    }
    return y;
}

Tensor *op_dropout(Tape *tp, Tensor *x, float p, Rng *rng, Tensor **mask_out) {
    CHECK(p >= 0.0f && p <= 1.0f, "dropout: p = %g is not in [0, 1]", (double)p);
    if (p == 0.0f) { /* identity: no random numbers drawn */
        if (mask_out) {
            Tensor *ones = tape_new(tp, x->ndim, x->shape);
            tensor_fill(ones, 1.0f);
            *mask_out = ones;
        }
        return x;
    }
    CHECK(rng != NULL, "dropout: p = %g needs an Rng", (double)p);
    PROFILE_OP_BEGIN();
    Tensor *mask = tape_new(tp, x->ndim, x->shape);
    if (tp->device == DEVICE_CPU) {
        rng_uniform(rng, mask->data, mask->n);
    } else { /* the same stream of numbers, drawn on the host */
        float *u = xmalloc((size_t)(mask->n ? mask->n : 1) * sizeof(float));
        rng_uniform(rng, u, mask->n);
        tensor_upload(mask, u);
        free(u);
    }
    KERNEL(tp->device, dropout_make_mask, mask->data, mask->data, p, mask->n);
    if (mask_out) *mask_out = mask;
    return dropout_apply(tp, x, mask->data, 1, "dropout");
}

Tensor *op_dropout_mask(Tape *tp, Tensor *x, const Tensor *mask) {
    PROFILE_OP_BEGIN();
    char a[64], b[64];
    CHECK(tensor_same_shape(x, mask), "dropout_mask: input %s and mask %s differ", tensor_shape_str(x, a, sizeof a),
          tensor_shape_str(mask, b, sizeof b));
    return dropout_apply(tp, x, mask->data, 0, "dropout_mask");
}
