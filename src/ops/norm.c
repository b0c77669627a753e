/* norm.c: L2 norm along a dim (torch.norm(x, 2, dim, keepdim)) and AttnGAN's cosine similarity,
 * forward and backward on the CPU.
 *
 * Both view their input as (OUTER, D, INNER) and reduce over D. OpenMP runs over tasks of one
 * outer row and a block of RED_BLOCK inner positions; each task owns its slice of the output in
 * forward and of the input gradients in backward, so there are no atomics and results do not
 * depend on the thread count. Sums run in double.
 */
#include "norm.h"
#include "../core/profile.h"

#include <math.h>

#define PAR_MIN 32768          /* elements below which a loop stays serial */
#define RED_BLOCK 64           /* inner positions per task */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ------------------------------------------------------------------ kernels */

void l2norm_forward(float *out, const float *inp, int64_t OUTER, int64_t D, int64_t INNER) {
    int64_t nblk = (INNER + RED_BLOCK - 1) / RED_BLOCK, ntask = OUTER * nblk;
#pragma omp parallel for schedule(static) if (OUTER * D * INNER > PAR_MIN)
    for (int64_t t = 0; t < ntask; t++) {
        int64_t o = t / nblk, i0 = (t % nblk) * RED_BLOCK, m = min64(RED_BLOCK, INNER - i0);
        double acc[RED_BLOCK] = {0};
        const float *x = inp + o * D * INNER + i0;
        for (int64_t d = 0; d < D; d++)
            for (int64_t j = 0; j < m; j++) acc[j] += (double)x[d * INNER + j] * x[d * INNER + j];
        for (int64_t j = 0; j < m; j++) out[o * INNER + i0 + j] = (float)sqrt(acc[j]);
    }
}

void l2norm_backward(float *dinp, const float *dout, const float *out, const float *inp, int64_t OUTER, int64_t D,
                     int64_t INNER) {
    if (!dinp) return;
#pragma omp parallel for schedule(static) if (OUTER * D * INNER > PAR_MIN)
    for (int64_t r = 0; r < OUTER * D; r++) {
        int64_t o = r / D;
        const float *g = dout + o * INNER, *nrm = out + o * INNER, *x = inp + r * INNER;
        float *dx = dinp + r * INNER;
        for (int64_t i = 0; i < INNER; i++) {
            float s = nrm[i] == 0.0f ? 0.0f : g[i] / nrm[i];
            dx[i] += x[i] * s;
        }
    }
}

/* The clamped denominator max(w1 * w2, eps), formed in float as PyTorch does. */
static float cosine_den(float w1, float w2, float eps) {
    float p = w1 * w2;
    return p < eps ? eps : p;
}

void cosine_forward(float *out, float *w12, float *w1, float *w2, const float *a, const float *b, int64_t OUTER,
                    int64_t D, int64_t INNER, float eps) {
    int64_t nblk = (INNER + RED_BLOCK - 1) / RED_BLOCK, ntask = OUTER * nblk;
#pragma omp parallel for schedule(static) if (OUTER * D * INNER > PAR_MIN)
    for (int64_t t = 0; t < ntask; t++) {
        int64_t o = t / nblk, i0 = (t % nblk) * RED_BLOCK, m = min64(RED_BLOCK, INNER - i0);
        double sab[RED_BLOCK] = {0}, saa[RED_BLOCK] = {0}, sbb[RED_BLOCK] = {0};
        const float *x = a + o * D * INNER + i0, *y = b + o * D * INNER + i0;
        for (int64_t d = 0; d < D; d++)
            for (int64_t j = 0; j < m; j++) {
                double u = x[d * INNER + j], v = y[d * INNER + j];
                sab[j] += u * v;
                saa[j] += u * u;
                sbb[j] += v * v;
            }
        for (int64_t j = 0; j < m; j++) {
            int64_t k = o * INNER + i0 + j;
            float f12 = (float)sab[j], f1 = (float)sqrt(saa[j]), f2 = (float)sqrt(sbb[j]);
            out[k] = f12 / cosine_den(f1, f2, eps);
            if (w12) w12[k] = f12;
            if (w1) w1[k] = f1;
            if (w2) w2[k] = f2;
        }
    }
}

/* Per-position coefficients of the cosine gradient: d out / d a = cb * b + ca * a and
 * d out / d b = cb * a + cc * b, all times dout. */
typedef struct CosineCoef {
    float cb, ca, cc;
} CosineCoef;

static CosineCoef cosine_coef(float g, float f12, float f1, float f2, float eps) {
    float den = cosine_den(f1, f2, eps);
    /* denominator gradient, zero where the clamp holds it at eps (PyTorch passes at p >= eps) */
    float gden = f1 * f2 >= eps ? -g * ((f12 / den) / den) : 0.0f;
    CosineCoef c = {g / den, 0.0f, 0.0f};
    if (f1 > 0.0f) c.ca = gden * f2 / f1;   /* norm gradient x / ||x||, 0 at a zero vector */
    if (f2 > 0.0f) c.cc = gden * f1 / f2;
    return c;
}

void cosine_backward(float *da, float *db, const float *dout, const float *w12, const float *w1, const float *w2,
                     const float *a, const float *b, int64_t OUTER, int64_t D, int64_t INNER, float eps) {
    if (!da && !db) return;
    int64_t nblk = (INNER + RED_BLOCK - 1) / RED_BLOCK, ntask = OUTER * nblk;
#pragma omp parallel for schedule(static) if (OUTER * D * INNER > PAR_MIN)
    for (int64_t t = 0; t < ntask; t++) {
        int64_t o = t / nblk, i0 = (t % nblk) * RED_BLOCK, m = min64(RED_BLOCK, INNER - i0);
        CosineCoef c[RED_BLOCK];
        for (int64_t j = 0; j < m; j++) {
            int64_t k = o * INNER + i0 + j;
            c[j] = cosine_coef(dout[k], w12[k], w1[k], w2[k], eps);
        }
        int64_t base = o * D * INNER + i0;
        for (int64_t d = 0; d < D; d++) {
            int64_t off = base + d * INNER;
            for (int64_t j = 0; j < m; j++) {
                float x = a[off + j], y = b[off + j];
                if (da) da[off + j] += c[j].cb * y + c[j].ca * x;
                if (db) db[off + j] += c[j].cb * x + c[j].cc * y;
            }
        }
    }
}

/* ------------------------------------------------------------------ tape-level ops */

/* Resolves dim (negative from the end) and the (OUTER, D, INNER) view; writes the result shape
 * (dim kept as 1 or removed) into shape / ndim. Returns the resolved dim. */
static int reduce_view(const Tensor *x, int dim, int keepdim, const char *op, int64_t v[3], int *shape, int *ndim) {
    CHECK(x && x->ndim >= 1, "%s: needs a tensor of at least 1 dim", op);
    int d = dim < 0 ? dim + x->ndim : dim;
    CHECK(d >= 0 && d < x->ndim, "%s: dim %d out of range for a %d-d tensor", op, dim, x->ndim);
    *ndim = 0;
    for (int i = 0; i < x->ndim; i++)
        if (i != d) shape[(*ndim)++] = x->shape[i];
        else if (keepdim) shape[(*ndim)++] = 1;
    v[0] = tensor_span(x, 0, d);
    v[1] = x->shape[d];
    v[2] = tensor_span(x, d + 1, x->ndim);
    return d;
}

typedef struct NormCtx {
    int64_t v[3];               /* OUTER, D, INNER */
    float *w12, *w1, *w2;       /* cosine only: saved (OUTER, INNER) */
    float eps;
} NormCtx;

static void l2norm_bwd(Node *nd) {
    const NormCtx *c = nd->ctx;
    Tensor *x = nd->in[0], *y = nd->out[0];
    KERNEL(nd->tape->device, l2norm_backward, tensor_grad_or_null(x), y->grad, y->data, x->data, c->v[0], c->v[1], c->v[2]);
}

Tensor *op_l2norm(Tape *tp, Tensor *x, int dim, int keepdim) {
    PROFILE_OP_BEGIN();
    NormCtx c = {{0}, NULL, NULL, NULL, 0.0f};
    int shape[TENSOR_MAX_DIMS], ndim;
    reduce_view(x, dim, keepdim, "l2norm", c.v, shape, &ndim);
    Tensor *y = tape_new(tp, ndim, shape);
    KERNEL(tp->device, l2norm_forward, y->data, x->data, c.v[0], c.v[1], c.v[2]);
    Tensor *in[] = {x}, *out[] = {y};
    Node *nd = TAPE_RECORD(tp, "l2norm", l2norm_bwd, in, out);
    if (nd) {
        NormCtx *s = tape_alloc(tp, sizeof *s);
        *s = c;
        nd->ctx = s;
    }
    return y;
}

static void cosine_bwd(Node *nd) {
    const NormCtx *c = nd->ctx;
    Tensor *a = nd->in[0], *b = nd->in[1];
    KERNEL(nd->tape->device, cosine_backward, tensor_grad_or_null(a), tensor_grad_or_null(b), nd->out[0]->grad, c->w12, c->w1, c->w2, a->data,
                    b->data, c->v[0], c->v[1], c->v[2], c->eps);
}

Tensor *op_cosine_similarity(Tape *tp, Tensor *a, Tensor *b, int dim, float eps) {
    PROFILE_OP_BEGIN();
    char sa[64], sb[64];
    CHECK(a && b, "cosine_similarity: NULL input");
    CHECK(tensor_same_shape(a, b), "cosine_similarity: shapes %s and %s differ", tensor_shape_str(a, sa, sizeof sa),
          tensor_shape_str(b, sb, sizeof sb));
    CHECK(eps >= 0.0f, "cosine_similarity: eps %g is negative", eps);
    NormCtx c = {{0}, NULL, NULL, NULL, eps};
    int shape[TENSOR_MAX_DIMS], ndim;
    reduce_view(a, dim, 0, "cosine_similarity", c.v, shape, &ndim);
    Tensor *y = tape_new(tp, ndim, shape);
    size_t bytes = (size_t)y->n * sizeof(float);
    c.w12 = tape_dev_alloc(tp, bytes);
    c.w1 = tape_dev_alloc(tp, bytes);
    c.w2 = tape_dev_alloc(tp, bytes);
    KERNEL(tp->device, cosine_forward, y->data, c.w12, c.w1, c.w2, a->data, b->data, c.v[0], c.v[1], c.v[2], eps);
    Tensor *in[] = {a, b}, *out[] = {y};
    Node *nd = TAPE_RECORD(tp, "cosine_similarity", cosine_bwd, in, out);
    if (nd) {
        NormCtx *s = tape_alloc(tp, sizeof *s);
        *s = c;
        nd->ctx = s;
    }
    return y;
}
