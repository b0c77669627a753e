/* softmax.c: softmax over the last dimension (F.softmax(x, -1)) with a byte mask and -inf
 * entries, and masked_fill (Tensor.masked_fill), forward and backward on the CPU.
 *
 * The exponentials are vmath's vexp (within 2 ulp of expf), the row sum is in double.
 * Masked entries and entries equal to -inf get probability 0 and no gradient. A row with no
 * unmasked entry gives zeros where PyTorch would give NaN (exp(-inf - -inf)), so an attention
 * over an all-padding sequence stays finite.
 */
#include "softmax.h"
#include "../core/profile.h"
#include "vmath.h"

#include <math.h>
#include <string.h>

static inline int sm_masked(const float *row, const uint8_t *mrow, int c) {
    return (mrow && mrow[c]) || row[c] == -INFINITY;
}

/* One row: out (C) = softmax of inp (C) over entries that are not masked. */
static void softmax_row(float *out, const float *inp, const uint8_t *mrow, int C) {
    float mx = -INFINITY;
    int any = 0;
    for (int c = 0; c < C; c++)
        if (!sm_masked(inp, mrow, c)) {
            any = 1;
            if (inp[c] > mx || isnan(inp[c])) mx = inp[c];
        }
    if (!any) {
        memset(out, 0, (size_t)C * sizeof(float));
        return;
    }
    /* exp(-inf) = 0 for the masked entries; vexp does the row 16 lanes at a time */
    for (int c = 0; c < C; c++) out[c] = sm_masked(inp, mrow, c) ? -INFINITY : inp[c] - mx;
    vexp(out, out, C);
    double sum = 0;
    for (int c = 0; c < C; c++) sum += out[c];
    float inv = (float)(1.0 / sum);
    for (int c = 0; c < C; c++) out[c] *= inv;
}

/* out (N, C) = softmax over C of inp (N, C); mask (N, C) or NULL */
void softmax_forward(float *out, const float *inp, const uint8_t *mask, int64_t N, int C) {
#pragma omp parallel for schedule(static) if (N * C > 32768)
    for (int64_t n = 0; n < N; n++)
        softmax_row(out + n * C, inp + n * C, mask ? mask + n * C : NULL, C);
}

/* dinp (N, C) += out * (dout - <out, dout>) row by row */
void softmax_backward(float *dinp, const float *dout, const float *out, int64_t N, int C) {
    if (!dinp) return;
#pragma omp parallel for schedule(static) if (N * C > 32768)
    for (int64_t n = 0; n < N; n++) {
        const float *y = out + n * C, *g = dout + n * C;
        float *dx = dinp + n * C;
        double dot = 0;
        for (int c = 0; c < C; c++) dot += (double)y[c] * g[c];
        float d = (float)dot;
        for (int c = 0; c < C; c++) dx[c] += y[c] * (g[c] - d);
    }
}

/* out (n) = mask ? value : inp */
void masked_fill_forward(float *out, const float *inp, const uint8_t *mask, float value, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) out[i] = mask[i] ? value : inp[i];
}

/* dinp (n) += mask ? 0 : dout */
void masked_fill_backward(float *dinp, const float *dout, const uint8_t *mask, int64_t n) {
    if (!dinp) return;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++)
        if (!mask[i]) dinp[i] += dout[i];
}

/* ---------------------------------------------------------------- tape ops */
static void softmax_bwd(Node *nd) {
    Tensor *x = nd->in[0], *y = nd->out[0];
    int C = x->ndim ? x->shape[x->ndim - 1] : 1;
    KERNEL(nd->tape->device, softmax_backward, tensor_grad_or_null(x), y->grad, y->data, x->n / C, C);
}

Tensor *op_softmax(Tape *tp, Tensor *x, const uint8_t *mask) {
    PROFILE_OP_BEGIN();
    CHECK(x->ndim >= 1, "softmax: input must have at least 1 dimension, got %d", x->ndim);
    int C = x->shape[x->ndim - 1];
    CHECK(C > 0 || x->n == 0, "softmax: empty last dimension");
    Tensor *y = tape_new(tp, x->ndim, x->shape);
    const uint8_t *dmask = tape_dev_copy(tp, mask, (size_t)x->n); /* mask itself on the CPU */
    if (x->n) KERNEL(tp->device, softmax_forward, y->data, x->data, dmask, x->n / C, C);
    /* backward needs only the output: masked entries are 0 there */
    Tensor *in[] = {x}, *out[] = {y};
    tape_node_input_unused(TAPE_RECORD(tp, "softmax", softmax_bwd, in, out), 0);
    return y;
}

static void masked_fill_bwd(Node *nd) {
    Tensor *x = nd->in[0], *y = nd->out[0];
    KERNEL(nd->tape->device, masked_fill_backward, tensor_grad_or_null(x), y->grad, (const uint8_t *)nd->ctx, x->n);
}

Tensor *op_masked_fill(Tape *tp, Tensor *x, const uint8_t *mask, float value) {
    PROFILE_OP_BEGIN();
    CHECK(mask != NULL, "masked_fill: mask is NULL");
    Tensor *y = tape_new(tp, x->ndim, x->shape);
    const uint8_t *dmask = tape_dev_copy(tp, mask, (size_t)x->n); /* mask itself on the CPU */
    KERNEL(tp->device, masked_fill_forward, y->data, x->data, dmask, value, x->n);
    Tensor *in[] = {x}, *out[] = {y};
    Node *nd = TAPE_RECORD(tp, "masked_fill", masked_fill_bwd, in, out);
    if (nd) { /* the caller's mask may be gone by backward: keep a copy */
        if (tp->device == DEVICE_CPU) {
            uint8_t *m = tape_alloc(tp, (size_t)(x->n ? x->n : 1));
            if (x->n) memcpy(m, mask, (size_t)x->n);
            nd->ctx = m;
        } else {
            nd->ctx = (void *)dmask; /* the tape's own copy already */
        }
        tape_node_data_unused(nd);
    }
    return y;
}
