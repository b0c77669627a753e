/* shape.c: shape ops on the CPU: concat, slice, repeat, broadcast_to, transpose, reshape.
 *
 * Every op materialises a new contiguous tensor (no views), and every backward adds (+=) into
 * the input gradient. repeat and broadcast_to share one "expand" engine: the output is the input
 * with some size-1 dims stretched; backward sums over the stretched dims. The engine merges
 * adjacent dims of the same kind first, and its backward gathers per input element (the sum
 * order is fixed, so results do not depend on scheduling).
 */
#include "shape.h"
#include "../core/profile.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Below this many elements a kernel runs on one thread. */
#define SHAPE_PAR_MIN 32768
/* repeat works on 2 dims per input dim. */
#define XDIMS (2 * TENSOR_MAX_DIMS)
/* Accumulator width of the expand backward. */
#define XCHUNK 256

/* ---------------------------------------------------------------- concat */

void concat_forward(float *out, const float *const *inps, const int *sizes, int n, int64_t outer, int64_t inner) {
    int64_t row = 0;
    for (int i = 0; i < n; i++) row += (int64_t)sizes[i] * inner;
#pragma omp parallel for schedule(static) if (outer * row > SHAPE_PAR_MIN)
    for (int64_t o = 0; o < outer; o++) {
        float *dst = out + o * row;
        for (int i = 0; i < n; i++) {
            int64_t len = (int64_t)sizes[i] * inner;
            if (len > 0) memcpy(dst, inps[i] + o * len, (size_t)len * sizeof(float));
            dst += len;
        }
    }
}

/* Parallel over outer rows only: the same tensor may appear twice among the inputs. */
void concat_backward(float *const *dinps, const float *dout, const int *sizes, int n, int64_t outer, int64_t inner) {
    int64_t row = 0;
    for (int i = 0; i < n; i++) row += (int64_t)sizes[i] * inner;
#pragma omp parallel for schedule(static) if (outer * row > SHAPE_PAR_MIN)
    for (int64_t o = 0; o < outer; o++) {
        const float *src = dout + o * row;
        for (int i = 0; i < n; i++) {
            int64_t len = (int64_t)sizes[i] * inner;
            if (dinps[i]) {
                float *dst = dinps[i] + o * len;
                for (int64_t j = 0; j < len; j++) dst[j] += src[j];
            }
            src += len;
        }
    }
}

/* ---------------------------------------------------------------- slice */

void slice_forward(float *out, const float *inp, int64_t outer, int size, int start, int len, int64_t inner) {
    int64_t olen = (int64_t)len * inner;
    if (olen == 0) return;
#pragma omp parallel for schedule(static) if (outer * olen > SHAPE_PAR_MIN)
    for (int64_t o = 0; o < outer; o++)
        memcpy(out + o * olen, inp + (o * size + start) * inner, (size_t)olen * sizeof(float));
}

void slice_backward(float *dinp, const float *dout, int64_t outer, int size, int start, int len, int64_t inner) {
    int64_t olen = (int64_t)len * inner;
#pragma omp parallel for schedule(static) if (outer * olen > SHAPE_PAR_MIN)
    for (int64_t o = 0; o < outer; o++) {
        float *dst = dinp + (o * size + start) * inner;
        const float *src = dout + o * olen;
        for (int64_t j = 0; j < olen; j++) dst[j] += src[j];
    }
}

/* ---------------------------------------------------------------- expand engine */

/* The output dims after dropping size-1 dims and merging neighbours of the same kind. */
typedef struct ExpandPlan {
    int m;                     /* number of merged dims (>= 1) */
    int64_t size[XDIMS];       /* output size of each merged dim */
    int kept[XDIMS];           /* 1: the input has this dim, 0: stretched from size 1 */
    int64_t ostride[XDIMS];    /* output strides */
    int64_t istride[XDIMS];    /* input strides (0 for stretched dims) */
    int64_t n_out, n_in;
} ExpandPlan;

/* in_shape[k] is 1 or out_shape[k] (checked by the callers). */
static void expand_plan(ExpandPlan *p, int nd, const int *out_shape, const int *in_shape) {
    p->m = 0;
    for (int k = 0; k < nd; k++) {
        if (out_shape[k] == 1) continue;
        int kept = in_shape[k] != 1;
        if (p->m > 0 && p->kept[p->m - 1] == kept) {
            p->size[p->m - 1] *= out_shape[k];
        } else {
            p->size[p->m] = out_shape[k];
            p->kept[p->m] = kept;
            p->m++;
        }
    }
    if (p->m == 0) {
        p->size[0] = 1;
        p->kept[0] = 1;
        p->m = 1;
    }
    p->n_out = p->n_in = 1;
    for (int k = p->m - 1; k >= 0; k--) {
        p->ostride[k] = p->n_out;
        p->istride[k] = p->kept[k] ? p->n_in : 0;
        p->n_out *= p->size[k];
        if (p->kept[k]) p->n_in *= p->size[k];
    }
}

/* out (n_out) = inp (n_in) stretched; one output row (last merged dim) per iteration. */
static void expand_forward(float *out, const float *inp, const ExpandPlan *p) {
    if (p->n_out == 0) return;
    int m = p->m, last_kept = p->kept[m - 1];
    int64_t L = p->size[m - 1], rows = p->n_out / L;
#pragma omp parallel for schedule(static) if (p->n_out > SHAPE_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t rem = r, ioff = 0;
        for (int k = m - 2; k >= 0; k--) {
            ioff += (rem % p->size[k]) * p->istride[k];
            rem /= p->size[k];
        }
        float *dst = out + r * L;
        if (last_kept) {
            memcpy(dst, inp + ioff, (size_t)L * sizeof(float));
        } else {
            float v = inp[ioff];
            for (int64_t j = 0; j < L; j++) dst[j] = v;
        }
    }
}

/* Output offset of index i over the dims listed in dims[0..nd) (row-major among them). */
static int64_t unravel_offset(int64_t i, const ExpandPlan *p, const int *dims, int nd) {
    int64_t off = 0;
    for (int k = nd - 1; k >= 0; k--) {
        int d = dims[k];
        off += (i % p->size[d]) * p->ostride[d];
        i /= p->size[d];
    }
    return off;
}

/* dinp (n_in) += dout (n_out) summed over the stretched dims. Each iteration owns a run of
 * `inner` input elements and gathers every output position that maps onto it, in output order. */
static void expand_backward(float *dinp, const float *dout, const ExpandPlan *p) {
    if (p->n_out == 0) return;
    int m = p->m, kd[XDIMS], ed[XDIMS], nk = 0, ne = 0;
    for (int k = 0; k < m - 1; k++) {
        if (p->kept[k]) kd[nk++] = k;
        else ed[ne++] = k;
    }
    int64_t inner = p->kept[m - 1] ? p->size[m - 1] : 1;  /* contiguous input run */
    int64_t trail = p->kept[m - 1] ? 1 : p->size[m - 1];  /* contiguous stretched run */
    int64_t rows = p->n_in / inner, combos = 1;
    for (int k = 0; k < ne; k++) combos *= p->size[ed[k]];
#pragma omp parallel for schedule(static) if (p->n_out > SHAPE_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t base = unravel_offset(r, p, kd, nk);
        for (int64_t j0 = 0; j0 < inner; j0 += XCHUNK) {
            int64_t jn = inner - j0 < XCHUNK ? inner - j0 : XCHUNK;
            float acc[XCHUNK];
            for (int64_t j = 0; j < jn; j++) acc[j] = 0.0f;
            for (int64_t c = 0; c < combos; c++) {
                const float *src = dout + base + unravel_offset(c, p, ed, ne) + j0;
                if (trail > 1) {
                    for (int64_t t = 0; t < trail; t++) acc[0] += src[t];
                } else {
                    for (int64_t j = 0; j < jn; j++) acc[j] += src[j];
                }
            }
            float *dst = dinp + r * inner + j0;
            for (int64_t j = 0; j < jn; j++) dst[j] += acc[j];
        }
    }
}

/* ---------------------------------------------------------------- repeat, broadcast */

/* repeat as an expand over 2 * ndim dims: (1, d0, 1, d1, ...) -> (r0, d0, r1, d1, ...). */
static void repeat_plan(ExpandPlan *p, int ndim, const int *in_shape, const int *reps) {
    int os[XDIMS], is[XDIMS];
    for (int d = 0; d < ndim; d++) {
        os[2 * d] = reps[d];
        is[2 * d] = 1;
        os[2 * d + 1] = is[2 * d + 1] = in_shape[d];
    }
    expand_plan(p, 2 * ndim, os, is);
}

void repeat_forward(float *out, const float *inp, int ndim, const int *in_shape, const int *reps) {
    ExpandPlan p;
    repeat_plan(&p, ndim, in_shape, reps);
    expand_forward(out, inp, &p);
}

void repeat_backward(float *dinp, const float *dout, int ndim, const int *in_shape, const int *reps) {
    ExpandPlan p;
    repeat_plan(&p, ndim, in_shape, reps);
    expand_backward(dinp, dout, &p);
}

void broadcast_forward(float *out, const float *inp, int ndim, const int *out_shape, const int *in_shape) {
    ExpandPlan p;
    expand_plan(&p, ndim, out_shape, in_shape);
    expand_forward(out, inp, &p);
}

void broadcast_backward(float *dinp, const float *dout, int ndim, const int *out_shape, const int *in_shape) {
    ExpandPlan p;
    expand_plan(&p, ndim, out_shape, in_shape);
    expand_backward(dinp, dout, &p);
}

/* ---------------------------------------------------------------- transpose, reshape */

/* dst (A, Q, M, P, C) = (or +=) src (A, P, M, Q, C). Iterations over (a, q) write disjoint rows. */
static void swap_axes(float *dst, const float *src, int64_t A, int64_t P, int64_t M, int64_t Q, int64_t C, int acc) {
    int64_t total = A * P * M * Q * C;
#pragma omp parallel for collapse(2) schedule(static) if (total > SHAPE_PAR_MIN)
    for (int64_t a = 0; a < A; a++)
        for (int64_t q = 0; q < Q; q++)
            for (int64_t mm = 0; mm < M; mm++)
                for (int64_t pp = 0; pp < P; pp++) {
                    float *d = dst + (((a * Q + q) * M + mm) * P + pp) * C;
                    const float *s = src + (((a * P + pp) * M + mm) * Q + q) * C;
                    if (acc) {
                        for (int64_t c = 0; c < C; c++) d[c] += s[c];
                    } else {
                        for (int64_t c = 0; c < C; c++) d[c] = s[c];
                    }
                }
}

void transpose_forward(float *out, const float *inp, int64_t A, int P, int64_t M, int Q, int64_t C) {
    swap_axes(out, inp, A, P, M, Q, C, 0);
}

void transpose_backward(float *dinp, const float *dout, int64_t A, int P, int64_t M, int Q, int64_t C) {
    swap_axes(dinp, dout, A, Q, M, P, C, 1);
}

void reshape_forward(float *out, const float *inp, int64_t n) {
    if (n > 0) memcpy(out, inp, (size_t)n * sizeof(float));
}

void reshape_backward(float *dinp, const float *dout, int64_t n) {
#pragma omp parallel for schedule(static) if (n > SHAPE_PAR_MIN)
    for (int64_t i = 0; i < n; i++) dinp[i] += dout[i];
}

/* ================================================================ tape-level ops */

/* dim in [-ndim, ndim) -> [0, ndim). */
static int norm_dim(const char *op, int dim, int ndim) {
    int d = dim < 0 ? dim + ndim : dim;
    CHECK(d >= 0 && d < ndim, "%s: dim %d out of range for a %d-d tensor", op, dim, ndim);
    return d;
}

static int64_t checked_dim(const char *op, int64_t v) {
    CHECK(v >= 0 && v <= INT_MAX, "%s: output dimension %lld does not fit an int", op, (long long)v);
    return v;
}

typedef struct DimCtx {
    int dim, start;
} DimCtx;

/* ---- concat */

static void concat_bwd(Node *nd) {
    const DimCtx *c = nd->ctx;
    Tensor *y = nd->out[0];
    int n = nd->n_in;
    int *sizes = xmalloc((size_t)n * sizeof(int));
    float **dinps = xmalloc((size_t)n * sizeof(float *));
    for (int i = 0; i < n; i++) {
        sizes[i] = nd->in[i]->shape[c->dim];
        dinps[i] = tensor_grad_or_null(nd->in[i]);
    }
    KERNEL(nd->tape->device, concat_backward, dinps, y->grad, sizes, n, tensor_span(y, 0, c->dim), tensor_span(y, c->dim + 1, y->ndim));
    free(dinps);
    free(sizes);
}

/* Checks that xs[i] matches xs[0] in every dim but d. */
static void concat_check_input(Tensor *const *xs, int i, int d) {
    char s0[96], si[96];
    const Tensor *a = xs[0], *b = xs[i];
    int ok = b->ndim == a->ndim;
    for (int k = 0; ok && k < a->ndim; k++) ok = k == d || a->shape[k] == b->shape[k];
    CHECK(ok, "concat along dim %d: input %d has shape %s, input 0 has shape %s", d, i,
          tensor_shape_str(b, si, sizeof si), tensor_shape_str(a, s0, sizeof s0));
}

Tensor *op_concat(Tape *tp, int n, Tensor *const *xs, int dim) {
    PROFILE_OP_BEGIN();
    CHECK(n >= 1 && xs, "concat: needs at least one input, got %d", n);
    for (int i = 0; i < n; i++) CHECK(xs[i], "concat: input %d of %d is NULL", i, n);
    CHECK(xs[0]->ndim >= 1, "concat: inputs must have at least one dim");
    int d = norm_dim("concat", dim, xs[0]->ndim);
    int shape[TENSOR_MAX_DIMS], *sizes = xmalloc((size_t)n * sizeof(int));
    const float **inps = xmalloc((size_t)n * sizeof(float *));
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        concat_check_input(xs, i, d);
        sizes[i] = xs[i]->shape[d];
        inps[i] = xs[i]->data;
        total += sizes[i];
    }
    memcpy(shape, xs[0]->shape, sizeof shape);
    shape[d] = (int)checked_dim("concat", total);
    /* nChw16c inputs: with every part's channels a multiple of 16, image n's channels [c0, c0 + C_i)
     * are one contiguous run at n * C * H * W + c0 * H * W, as in NCHW, so the same copies concatenate them */
    for (int i = 0; i < n; i++)
        CHECK(xs[i]->blocked == xs[0]->blocked && (!xs[i]->blocked || (d == 1 && xs[i]->shape[1] % 16 == 0)),
              "concat: input %d is %s, input 0 %s (nChw16c inputs concatenate along dim 1, with channels a multiple "
              "of 16)", i, xs[i]->blocked ? "nChw16c" : "NCHW", xs[0]->blocked ? "nChw16c" : "NCHW");
    Tensor *y = tape_new(tp, xs[0]->ndim, shape);
    y->blocked = xs[0]->blocked;
    KERNEL(tp->device, concat_forward, y->data, inps, sizes, n, tensor_span(y, 0, d), tensor_span(y, d + 1, y->ndim));
    free(inps);
    free(sizes);
    Node *nd = tape_record(tp, "concat", concat_bwd, n, xs, 1, &y);
    tape_node_data_unused(nd); /* the shape ops' backward moves gradients only */
    if (nd) {
        DimCtx *c = tape_alloc(tp, sizeof *c);
        c->dim = d;
        c->start = 0;
        nd->ctx = c;
    }
    return y;
}

/* ---- unblock16: nChw16c -> NCHW */

/* y (N, C, S) = x (N, C/16, S, 16) */
static void unblock16_forward(float *y, const float *x, int N, int C, int S) {
    int64_t rows = (int64_t)N * (C / 16);
#pragma omp parallel for schedule(static) if (rows * S * 16 > 32768)
    for (int64_t r = 0; r < rows; r++) {
        const float *xb = x + r * S * 16;
        float *yb = y + r * 16 * S; /* channels r*16 .. r*16+15 of one image: 16 rows of S */
        for (int i = 0; i < S; i++)
            for (int l = 0; l < 16; l++) yb[(int64_t)l * S + i] = xb[(int64_t)i * 16 + l];
    }
}

/* dx (N, C/16, S, 16) += dy (N, C, S) */
static void unblock16_backward(float *dx, const float *dy, int N, int C, int S) {
    int64_t rows = (int64_t)N * (C / 16);
#pragma omp parallel for schedule(static) if (rows * S * 16 > 32768)
    for (int64_t r = 0; r < rows; r++) {
        float *xb = dx + r * S * 16;
        const float *yb = dy + r * 16 * S;
        for (int i = 0; i < S; i++)
            for (int l = 0; l < 16; l++) xb[(int64_t)i * 16 + l] += yb[(int64_t)l * S + i];
    }
}

static void unblock16_bwd(Node *nd) {
    Tensor *x = nd->in[0], *y = nd->out[0];
    float *dx = tensor_grad_or_null(x);
    if (dx) unblock16_backward(dx, y->grad, x->shape[0], x->shape[1], x->shape[2] * x->shape[3]);
}

Tensor *op_unblock16(Tape *tp, Tensor *x) {
    PROFILE_OP_BEGIN();
    char b[64];
    CHECK(x && x->blocked && x->ndim == 4 && x->shape[1] % 16 == 0,
          "unblock16: input %s must be an nChw16c (N, C, H, W) tensor", x ? tensor_shape_str(x, b, sizeof b) : "NULL");
    Tensor *y = TNEW(tp, x->shape[0], x->shape[1], x->shape[2], x->shape[3]);
    unblock16_forward(y->data, x->data, x->shape[0], x->shape[1], x->shape[2] * x->shape[3]);
    Tensor *in[] = {x}, *out[] = {y};
    Node *nd = TAPE_RECORD(tp, "unblock16", unblock16_bwd, in, out);
    tape_node_data_unused(nd);
    return y;
}

/* ---- slice */

static void slice_bwd(Node *nd) {
    const DimCtx *c = nd->ctx;
    Tensor *x = nd->in[0], *y = nd->out[0];
    float *dx = tensor_grad_or_null(x);
    if (!dx) return;
    KERNEL(nd->tape->device, slice_backward, dx, y->grad, tensor_span(x, 0, c->dim), x->shape[c->dim], c->start, y->shape[c->dim],
                   tensor_span(x, c->dim + 1, x->ndim));
}

Tensor *op_slice(Tape *tp, Tensor *x, int dim, int start, int end) {
    PROFILE_OP_BEGIN();
    CHECK(x->ndim >= 1, "slice: input must have at least one dim");
    int d = norm_dim("slice", dim, x->ndim), size = x->shape[d];
    int s = start < 0 ? start + size : start, e = end < 0 ? end + size : end;
    char buf[96];
    CHECK(s >= 0 && s <= e && e <= size, "slice: [%d:%d] along dim %d is out of range for shape %s", start, end, d,
          tensor_shape_str(x, buf, sizeof buf));
    int shape[TENSOR_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[d] = e - s;
    Tensor *y = tape_new(tp, x->ndim, shape);
    KERNEL(tp->device, slice_forward, y->data, x->data, tensor_span(x, 0, d), size, s, e - s, tensor_span(x, d + 1, x->ndim));
    Tensor *in[] = {x}, *out[] = {y};
    Node *nd = TAPE_RECORD(tp, "slice", slice_bwd, in, out);
    tape_node_data_unused(nd);
    if (nd) {
        DimCtx *c = tape_alloc(tp, sizeof *c);
        c->dim = d;
        c->start = s;
        nd->ctx = c;
    }
    return y;
}

/* ---- repeat */

static void repeat_bwd(Node *nd) {
    Tensor *x = nd->in[0], *y = nd->out[0];
    float *dx = tensor_grad_or_null(x);
    if (dx) KERNEL(nd->tape->device, repeat_backward, dx, y->grad, x->ndim, x->shape, (const int *)nd->ctx);
}

Tensor *op_repeat(Tape *tp, Tensor *x, const int *reps) {
    PROFILE_OP_BEGIN();
    CHECK(reps, "repeat: reps is NULL");
    int shape[TENSOR_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) {
        CHECK(reps[d] >= 0, "repeat: reps[%d] = %d is negative", d, reps[d]);
        shape[d] = (int)checked_dim("repeat", (int64_t)x->shape[d] * reps[d]);
    }
    Tensor *y = tape_new(tp, x->ndim, shape);
    KERNEL(tp->device, repeat_forward, y->data, x->data, x->ndim, x->shape, reps);
    Tensor *in[] = {x}, *out[] = {y};
    Node *nd = TAPE_RECORD(tp, "repeat", repeat_bwd, in, out);
    tape_node_data_unused(nd);
    if (nd) {
        int *r = tape_alloc(tp, TENSOR_MAX_DIMS * sizeof(int));
        for (int d = 0; d < TENSOR_MAX_DIMS; d++) r[d] = d < x->ndim ? reps[d] : 1;
        nd->ctx = r;
    }
    return y;
}

/* ---- broadcast_to */

/* x's shape with leading 1s up to ndim dims. */
static void padded_shape(const Tensor *x, int ndim, int *shape) {
    int lead = ndim - x->ndim;
    for (int k = 0; k < ndim; k++) shape[k] = k < lead ? 1 : x->shape[k - lead];
}

static void broadcast_bwd(Node *nd) {
    Tensor *x = nd->in[0], *y = nd->out[0];
    float *dx = tensor_grad_or_null(x);
    if (!dx) return;
    int in_shape[TENSOR_MAX_DIMS];
    padded_shape(x, y->ndim, in_shape);
    KERNEL(nd->tape->device, broadcast_backward, dx, y->grad, y->ndim, y->shape, in_shape);
}

Tensor *op_broadcast_to(Tape *tp, Tensor *x, int ndim, const int *shape) {
    PROFILE_OP_BEGIN();
    char sx[96];
    CHECK(ndim >= x->ndim && ndim <= TENSOR_MAX_DIMS, "broadcast_to: cannot broadcast %s to %d dims",
          tensor_shape_str(x, sx, sizeof sx), ndim);
    int in_shape[TENSOR_MAX_DIMS], out_shape[TENSOR_MAX_DIMS], lead = ndim - x->ndim;
    padded_shape(x, ndim, in_shape);
    for (int k = 0; k < ndim; k++) {
        out_shape[k] = (shape[k] == -1 && k >= lead) ? in_shape[k] : shape[k];
        CHECK(out_shape[k] >= 0 && (in_shape[k] == 1 || in_shape[k] == out_shape[k]),
              "broadcast_to: %s cannot expand to size %d in dim %d of %d", tensor_shape_str(x, sx, sizeof sx), shape[k],
              k, ndim);
    }
    Tensor *y = tape_new(tp, ndim, out_shape);
    KERNEL(tp->device, broadcast_forward, y->data, x->data, ndim, out_shape, in_shape);
    Tensor *in[] = {x}, *out[] = {y};
    tape_node_data_unused(TAPE_RECORD(tp, "broadcast_to", broadcast_bwd, in, out));
    return y;
}

/* ---- transpose */

/* x viewed as (A, P, M, Q, C) with P = dim lo and Q = dim hi (lo <= hi). */
static void transpose_dims(const Tensor *x, int lo, int hi, int64_t *A, int *P, int64_t *M, int *Q, int64_t *C) {
    *A = tensor_span(x, 0, lo);
    *P = x->shape[lo];
    if (lo == hi) {
        *M = 1;
        *Q = 1;
    } else {
        *M = tensor_span(x, lo + 1, hi);
        *Q = x->shape[hi];
    }
    *C = tensor_span(x, hi + 1, x->ndim);
}

static void transpose_bwd(Node *nd) {
    Tensor *x = nd->in[0], *y = nd->out[0];
    float *dx = tensor_grad_or_null(x);
    if (!dx) return;
    const DimCtx *c = nd->ctx; /* dim = lo, start = hi */
    int64_t A, M, C;
    int P, Q;
    transpose_dims(x, c->dim, c->start, &A, &P, &M, &Q, &C);
    KERNEL(nd->tape->device, transpose_backward, dx, y->grad, A, P, M, Q, C);
}

Tensor *op_transpose(Tape *tp, Tensor *x, int d0, int d1) {
    PROFILE_OP_BEGIN();
    CHECK(x->ndim >= 1, "transpose: input must have at least one dim");
    int a = norm_dim("transpose", d0, x->ndim), b = norm_dim("transpose", d1, x->ndim);
    int lo = a < b ? a : b, hi = a < b ? b : a;
    int shape[TENSOR_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[lo] = x->shape[hi];
    shape[hi] = x->shape[lo];
    Tensor *y = tape_new(tp, x->ndim, shape);
    int64_t A, M, C;
    int P, Q;
    transpose_dims(x, lo, hi, &A, &P, &M, &Q, &C);
    KERNEL(tp->device, transpose_forward, y->data, x->data, A, P, M, Q, C);
    Tensor *in[] = {x}, *out[] = {y};
    Node *nd = TAPE_RECORD(tp, "transpose", transpose_bwd, in, out);
    tape_node_data_unused(nd);
    if (nd) {
        DimCtx *c = tape_alloc(tp, sizeof *c);
        c->dim = lo;
        c->start = hi;
        nd->ctx = c;
    }
    return y;
}

/* ---- reshape */

static void reshape_bwd(Node *nd) {
    Tensor *x = nd->in[0], *y = nd->out[0];
    float *dx = tensor_grad_or_null(x);
    if (dx) KERNEL(nd->tape->device, reshape_backward, dx, y->grad, x->n);
}

Tensor *op_reshape(Tape *tp, Tensor *x, int ndim, const int *shape) {
    PROFILE_OP_BEGIN();
    char sx[96];
    CHECK(ndim >= 0 && ndim <= TENSOR_MAX_DIMS, "reshape: %d dims (at most %d)", ndim, TENSOR_MAX_DIMS);
    int out_shape[TENSOR_MAX_DIMS], infer = -1;
    int64_t known = 1;
    for (int k = 0; k < ndim; k++) {
        out_shape[k] = shape[k];
        if (shape[k] == -1) {
            CHECK(infer < 0, "reshape: more than one -1 in the target shape of %s", tensor_shape_str(x, sx, sizeof sx));
            infer = k;
        } else {
            CHECK(shape[k] >= 0, "reshape: size %d in dim %d", shape[k], k);
            known *= shape[k];
        }
    }
    if (infer >= 0) {
        int divides = known > 0 && x->n % known == 0; /* no '%' inside CHECK: it pastes #cond into the format */
        CHECK(divides, "reshape: cannot infer dim %d of %s: %lld elements over %lld", infer,
              tensor_shape_str(x, sx, sizeof sx), (long long)x->n, (long long)known);
        out_shape[infer] = (int)checked_dim("reshape", x->n / known);
        known *= out_shape[infer];
    }
    CHECK(known == x->n, "reshape: %s has %lld elements, the target shape %lld", tensor_shape_str(x, sx, sizeof sx),
          (long long)x->n, (long long)known);
    Tensor *y = tape_new(tp, ndim, out_shape);
    KERNEL(tp->device, reshape_forward, y->data, x->data, x->n);
    Tensor *in[] = {x}, *out[] = {y};
    tape_node_data_unused(TAPE_RECORD(tp, "reshape", reshape_bwd, in, out));
    return y;
}
