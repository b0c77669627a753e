/* activation.c: relu, relu's gate, leaky relu, tanh, sigmoid and GLU, forward and backward on the CPU.
 *
 * Formulas and operation order follow PyTorch's CPU kernels (sigmoid = 1 / (1 + exp(-x)),
 * tanh' = 1 - y^2, sigmoid' = (1 - y) * y), so results agree to a few ulps. Element-wise loops
 * split the index range across OpenMP threads (disjoint writes, deterministic).
 */
#include "activation.h"
#include "../core/profile.h"
#include "vmath.h"

#include <math.h>

/* element counts below this run on one thread; the vectorised kernels work in blocks of ACT_BLOCK */
#define ACT_PAR_MIN 32768
#define ACT_BLOCK 4096


/* ---------------------------------------------------------------- relu */
/* out (n) = max(inp, 0); NaN stays NaN */
void relu_forward(float *out, const float *inp, int64_t n) {
#pragma omp parallel for schedule(static) if (n > ACT_PAR_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = (inp[i] > 0.0f || isnan(inp[i])) ? inp[i] : 0.0f;
}

/* dinp (n) += dout where out > 0 (gradient 0 at exactly 0) */
void relu_backward(float *dinp, const float *dout, const float *out, int64_t n) {
    if (!dinp) return;
#pragma omp parallel for schedule(static) if (n > ACT_PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        if (!(out[i] <= 0.0f)) dinp[i] += dout[i];
}

/* ---------------------------------------------------------------- leaky relu */
/* out (n) = inp > 0 ? inp : inp * slope */
void leaky_relu_forward(float *out, const float *inp, float slope, int64_t n) {
#pragma omp parallel for schedule(static) if (n > ACT_PAR_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : inp[i] * slope;
}

/* dinp (n) += inp > 0 ? dout : dout * slope (slope at exactly 0) */
void leaky_relu_backward(float *dinp, const float *dout, const float *inp, float slope, int64_t n) {
    if (!dinp) return;
#pragma omp parallel for schedule(static) if (n > ACT_PAR_MIN)
    for (int64_t i = 0; i < n; i++) dinp[i] += inp[i] > 0.0f ? dout[i] : dout[i] * slope;
}

/* ---------------------------------------------------------------- relu gate */
void relu_gate_forward(float *out, const float *g, const float *h, int64_t n) {
#pragma omp parallel for schedule(static) if (n > ACT_PAR_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = h[i] > 0.0f ? g[i] : 0.0f;
}

void relu_gate_backward(float *dg, const float *dout, const float *h, int64_t n) {
    if (!dg) return;
#pragma omp parallel for schedule(static) if (n > ACT_PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        if (h[i] > 0.0f) dg[i] += dout[i];
}

/* ---------------------------------------------------------------- tanh */
/* out (n) = tanh(inp) */
void tanh_forward(float *out, const float *inp, int64_t n) {
    int64_t nb = (n + ACT_BLOCK - 1) / ACT_BLOCK;
#pragma omp parallel for schedule(static) if (n > ACT_PAR_MIN)
    for (int64_t k = 0; k < nb; k++) {
        int64_t i0 = k * ACT_BLOCK, len = n - i0 < ACT_BLOCK ? n - i0 : ACT_BLOCK;
        vtanh(out + i0, inp + i0, len);
    }
}

/* dinp (n) += dout * (1 - out^2) */
void tanh_backward(float *dinp, const float *dout, const float *out, int64_t n) {
    if (!dinp) return;
#pragma omp parallel for schedule(static) if (n > ACT_PAR_MIN)
    for (int64_t i = 0; i < n; i++) dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
}

/* ---------------------------------------------------------------- sigmoid */
/* out (n) = 1 / (1 + exp(-inp)) */
void sigmoid_forward(float *out, const float *inp, int64_t n) {
    int64_t nb = (n + ACT_BLOCK - 1) / ACT_BLOCK;
#pragma omp parallel for schedule(static) if (n > ACT_PAR_MIN)
    for (int64_t k = 0; k < nb; k++) {
        int64_t i0 = k * ACT_BLOCK, len = n - i0 < ACT_BLOCK ? n - i0 : ACT_BLOCK;
        vsigmoid(out + i0, inp + i0, len);
    }
}

/* dinp (n) += dout * (1 - out) * out */
void sigmoid_backward(float *dinp, const float *dout, const float *out, int64_t n) {
    if (!dinp) return;
#pragma omp parallel for schedule(static) if (n > ACT_PAR_MIN)
    for (int64_t i = 0; i < n; i++) dinp[i] += dout[i] * (1.0f - out[i]) * out[i];
}

/* ---------------------------------------------------------------- GLU */
/* out (outer, C, inner) = inp[:, :C] * sigmoid(inp[:, C:]), inp (outer, 2C, inner) */
void glu_forward(float *out, const float *inp, int64_t outer, int C, int64_t inner) {
    int64_t half = (int64_t)C * inner, per = (half + ACT_BLOCK - 1) / ACT_BLOCK; /* blocks per row */
#pragma omp parallel for schedule(static) if (outer * half > ACT_PAR_MIN)
    for (int64_t k = 0; k < outer * per; k++) {
        int64_t o = k / per, j0 = (k % per) * ACT_BLOCK, len = half - j0 < ACT_BLOCK ? half - j0 : ACT_BLOCK;
        const float *a = inp + o * 2 * half, *b = a + half;  // (C, inner) each
        vglu(out + o * half + j0, a + j0, b + j0, len);      // (C, inner)
    }
}

/* In place: buf (outer, 2C, inner) -> its first outer * C * inner values hold the result. Rows run
 * in order (row o's result overwrites row o/2's input, already consumed), blocks within a row in
 * parallel. */
static void glu_forward_inplace(float *buf, int64_t outer, int C, int64_t inner) {
    int64_t half = (int64_t)C * inner, per = (half + ACT_BLOCK - 1) / ACT_BLOCK;
    for (int64_t o = 0; o < outer; o++) {
        const float *a = buf + o * 2 * half, *b = a + half;
        float *y = buf + o * half;
#pragma omp parallel for schedule(static) if (half > ACT_PAR_MIN)
        for (int64_t k = 0; k < per; k++) {
            int64_t j0 = k * ACT_BLOCK, len = half - j0 < ACT_BLOCK ? half - j0 : ACT_BLOCK;
            vglu(y + j0, a + j0, b + j0, len); /* y + j0 <= a + j0: an element is read before it is overwritten */
        }
    }
}

/* dinp (outer, 2C, inner): da += dout * s, db += (1 - s) * s * a * dout with s = sigmoid(b);
 * dout (outer, C, inner), inp (outer, 2C, inner) */
void glu_backward(float *dinp, const float *dout, const float *inp, int64_t outer, int C, int64_t inner) {
    if (!dinp) return;
    int64_t half = (int64_t)C * inner, per = (half + ACT_BLOCK - 1) / ACT_BLOCK; /* blocks per row */
#pragma omp parallel for schedule(static) if (outer * half > ACT_PAR_MIN)
    for (int64_t k = 0; k < outer * per; k++) {
        int64_t o = k / per, j0 = (k % per) * ACT_BLOCK, len = half - j0 < ACT_BLOCK ? half - j0 : ACT_BLOCK;
        const float *a = inp + o * 2 * half + j0, *b = a + half;  // (len) each
        const float *g = dout + o * half + j0;                    // (len)
        float *da = dinp + o * 2 * half + j0, *db = da + half;    // (len) each
        float s[ACT_BLOCK];
        vsigmoid(s, b, len);
        for (int64_t j = 0; j < len; j++) {
            da[j] += s[j] * g[j];
            db[j] += (1.0f - s[j]) * s[j] * a[j] * g[j];
        }
    }
}

/* ---------------------------------------------------------------- tape-level ops */
static Tensor *new_like(Tape *tp, const Tensor *x) { return tape_new(tp, x->ndim, x->shape); }

static void relu_bwd(Node *nd) {
    Tensor *x = nd->in[0], *y = nd->out[0];
    KERNEL(nd->tape->device, relu_backward, tensor_grad_or_null(x), y->grad, y->data, y->n);
}

Tensor *op_relu(Tape *tp, Tensor *x) {
    PROFILE_OP_BEGIN();
    CHECK(x != NULL, "relu: NULL input");
    const float *xd = x->data;
    Tensor *y = tape_out_like(tp, x, tape_would_record(tp, 1, &x)); /* may be x's buffer */
    KERNEL(tp->device, relu_forward, y->data, xd, y->n);
    Tensor *in[] = {x}, *out[] = {y};
    TAPE_RECORD(tp, "relu", relu_bwd, in, out);
    return y;
}

static void relu_gate_bwd(Node *nd) {
    Tensor *h = nd->in[0], *g = nd->in[1], *y = nd->out[0];
    KERNEL(nd->tape->device, relu_gate_backward, tensor_grad_or_null(g), y->grad, h->data, y->n);
}

Tensor *op_relu_gate(Tape *tp, Tensor *h, Tensor *g) {
    PROFILE_OP_BEGIN();
    CHECK(h != NULL && g != NULL, "relu_gate: NULL input");
    CHECK(tensor_same_shape(h, g), "relu_gate: h and g differ in shape");
    Tensor *y = new_like(tp, g);
    KERNEL(tp->device, relu_gate_forward, y->data, g->data, h->data, y->n);
    Tensor *in[] = {h, g}, *out[] = {y};
    TAPE_RECORD(tp, "relu_gate", relu_gate_bwd, in, out);
    return y;
}

static void leaky_relu_bwd(Node *nd) {
    Tensor *x = nd->in[0], *y = nd->out[0];
    float slope = *(const float *)nd->ctx;
    KERNEL(nd->tape->device, leaky_relu_backward, tensor_grad_or_null(x), y->grad, x->data, slope, x->n);
}

Tensor *op_leaky_relu(Tape *tp, Tensor *x, float slope) {
    PROFILE_OP_BEGIN();
    CHECK(x != NULL, "leaky_relu: NULL input");
    CHECK(isfinite(slope), "leaky_relu: slope %g is not finite", slope);
    const float *xd = x->data;
    Tensor *y = tape_out_like(tp, x, tape_would_record(tp, 1, &x)); /* may be x's buffer */
    KERNEL(tp->device, leaky_relu_forward, y->data, xd, slope, y->n);
    Tensor *in[] = {x}, *out[] = {y};
    Node *nd = TAPE_RECORD(tp, "leaky_relu", leaky_relu_bwd, in, out);
    if (nd) {
        float *ctx = tape_alloc(tp, sizeof *ctx);
        *ctx = slope;
        nd->ctx = ctx;
    }
    return y;
}

static void tanh_bwd(Node *nd) {
    Tensor *x = nd->in[0], *y = nd->out[0];
    KERNEL(nd->tape->device, tanh_backward, tensor_grad_or_null(x), y->grad, y->data, y->n);
}

Tensor *op_tanh(Tape *tp, Tensor *x) {
    PROFILE_OP_BEGIN();
    CHECK(x != NULL, "tanh: NULL input");
    Tensor *y = new_like(tp, x);
    KERNEL(tp->device, tanh_forward, y->data, x->data, x->n);
    Tensor *in[] = {x}, *out[] = {y};
    TAPE_RECORD(tp, "tanh", tanh_bwd, in, out);
    return y;
}

static void sigmoid_bwd(Node *nd) {
    Tensor *x = nd->in[0], *y = nd->out[0];
    KERNEL(nd->tape->device, sigmoid_backward, tensor_grad_or_null(x), y->grad, y->data, y->n);
}

Tensor *op_sigmoid(Tape *tp, Tensor *x) {
    PROFILE_OP_BEGIN();
    CHECK(x != NULL, "sigmoid: NULL input");
    Tensor *y = new_like(tp, x);
    KERNEL(tp->device, sigmoid_forward, y->data, x->data, x->n);
    Tensor *in[] = {x}, *out[] = {y};
    TAPE_RECORD(tp, "sigmoid", sigmoid_bwd, in, out);
    return y;
}

/* GLU's view of x as (outer, 2C, inner) around dimension d (already non-negative). */
typedef struct GluView {
    int64_t outer, inner;
    int C;
} GluView;

static GluView glu_view(const Tensor *x, int d) {
    GluView v = {tensor_span(x, 0, d), tensor_span(x, d + 1, x->ndim), x->shape[d] / 2};
    return v;
}

static void glu_bwd(Node *nd) {
    Tensor *x = nd->in[0], *y = nd->out[0];
    GluView v = glu_view(x, *(const int *)nd->ctx);
    KERNEL(nd->tape->device, glu_backward, tensor_grad_or_null(x), y->grad, x->data, v.outer, v.C, v.inner);
}

Tensor *op_glu(Tape *tp, Tensor *x, int dim) {
    PROFILE_OP_BEGIN();
    char buf[64];
    CHECK(x != NULL && x->ndim >= 1, "glu: needs an input with at least one dimension");
    int d = dim < 0 ? dim + x->ndim : dim;
    CHECK(d >= 0 && d < x->ndim, "glu: dim %d out of range for shape %s", dim, tensor_shape_str(x, buf, sizeof buf));
    CHECK(x->shape[d] % 2 == 0, "glu: dim %d of shape %s must have even size", dim, tensor_shape_str(x, buf, sizeof buf));
    int shape[TENSOR_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
    shape[d] /= 2;
    GluView v = glu_view(x, d);
    const float *xd = x->data;
    /* may be x's buffer on the CPU (the in-place kernel has no device twin) */
    Tensor *y = tp->device == DEVICE_CPU ? tape_out_shaped(tp, x, tape_would_record(tp, 1, &x), x->ndim, shape)
                                         : tape_new(tp, x->ndim, shape);
    if (y->data == xd) {
        glu_forward_inplace(y->data, v.outer, v.C, v.inner);
        tape_shrink(y);
    } else {
        KERNEL(tp->device, glu_forward, y->data, xd, v.outer, v.C, v.inner);
    }
    Tensor *in[] = {x}, *out[] = {y};
    Node *nd = TAPE_RECORD(tp, "glu", glu_bwd, in, out);
    if (nd) {
        int *ctx = tape_alloc(tp, sizeof *ctx);
        *ctx = d;
        nd->ctx = ctx;
    }
    return y;
}
