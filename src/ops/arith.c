/* arith.c: element-wise arithmetic with PyTorch broadcasting (add, sub, mul, div), scalar ops,
 * exp / log / clamp, and sum / mean reductions, forward and backward on the CPU.
 *
 * Binary ops walk the output in fixed chunks (OpenMP over chunks, each writing its own slice of
 * the output). The gradient of an expanded operand is first formed at the output's shape, then
 * summed over the expanded dims in double, one destination element per iteration: no atomics,
 * and every result is the same for any thread count. Whole-tensor sums add fixed-size chunks in
 * double and the chunk sums in order, so they too do not depend on the thread count.
 */
#include "arith.h"
#include "vmath.h"
#include "../core/profile.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PAR_MIN 32768          /* elements below which a loop stays serial */
#define WALK_CHUNK 16384       /* output elements per task of a broadcast walk */
#define SUM_CHUNK 8192         /* elements per partial sum of sum_all */
#define RED_BLOCK 64           /* inner positions per task of a dim reduction */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ------------------------------------------------------------------ broadcast plan */

/* Appends one output dim (size > 1) with operand strides s_a, s_b, merging it into the previous
 * dim when both operands walk the pair as one contiguous (or wholly expanded) run. */
static void plan_push(BroadcastPlan *p, int64_t size, int64_t s_a, int64_t s_b) {
    int k = p->ndim - 1;
    if (k >= 0 && p->sa[k] == s_a * size && p->sb[k] == s_b * size) {
        p->shape[k] *= size;
        p->sa[k] = s_a;
        p->sb[k] = s_b;
        return;
    }
    p->shape[++k] = size;
    p->sa[k] = s_a;
    p->sb[k] = s_b;
    p->ndim = k + 1;
}

int broadcast_plan(BroadcastPlan *p, int *out_ndim, int *out_shape, int ndim_a, const int *shape_a, int ndim_b,
                   const int *shape_b) {
    int nd = ndim_a > ndim_b ? ndim_a : ndim_b;
    if (nd > TENSOR_MAX_DIMS) return -1;
    int64_t da[TENSOR_MAX_DIMS], db[TENSOR_MAX_DIMS], stra[TENSOR_MAX_DIMS], strb[TENSOR_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        int ia = i - (nd - ndim_a), ib = i - (nd - ndim_b);
        da[i] = ia >= 0 ? shape_a[ia] : 1;
        db[i] = ib >= 0 ? shape_b[ib] : 1;
        if (da[i] != db[i] && da[i] != 1 && db[i] != 1) return -1;
        out_shape[i] = (int)(da[i] == 1 ? db[i] : da[i]);
    }
    *out_ndim = nd;
    int64_t ra = 1, rb = 1;
    for (int i = nd - 1; i >= 0; i--) {
        stra[i] = ra;
        strb[i] = rb;
        ra *= da[i];
        rb *= db[i];
    }
    memset(p, 0, sizeof *p);
    p->n = 1;
    for (int i = 0; i < nd; i++) {
        p->n *= out_shape[i];
        if (out_shape[i] == 1) continue;
        plan_push(p, out_shape[i], da[i] == 1 ? 0 : stra[i], db[i] == 1 ? 0 : strb[i]);
    }
    if (p->ndim == 0) {
        p->ndim = 1;
        p->shape[0] = 1;
    }
    p->na = ra;
    p->nb = rb;
    return 0;
}

/* ------------------------------------------------------------------ broadcast walk */

/* One run of a walk: k consecutive output elements from position pos; the operands start at ia,
 * ib and step by the innermost strides (0 or 1). */
typedef void (*RunFn)(void *ctx, int64_t pos, int64_t ia, int64_t ib, int64_t k);

/* Calls run over the whole output, in runs along the innermost dim, OpenMP over fixed chunks. */
static void walk(const BroadcastPlan *p, RunFn run, void *ctx) {
    const int nd = p->ndim;
    const int64_t n = p->n, nchunks = (n + WALK_CHUNK - 1) / WALK_CHUNK;
#pragma omp parallel for schedule(static) if (nchunks > 1)
    for (int64_t c = 0; c < nchunks; c++) {
        int64_t lo = c * WALK_CHUNK, hi = min64(lo + WALK_CHUNK, n), idx[TENSOR_MAX_DIMS], ia = 0, ib = 0, rem = lo;
        for (int d = nd - 1; d >= 0; d--) {
            idx[d] = rem % p->shape[d];
            rem /= p->shape[d];
            ia += idx[d] * p->sa[d];
            ib += idx[d] * p->sb[d];
        }
        for (int64_t pos = lo; pos < hi;) {
            int64_t k = min64(p->shape[nd - 1] - idx[nd - 1], hi - pos);
            run(ctx, pos, ia, ib, k);
            pos += k;
            idx[nd - 1] += k;
            ia += k * p->sa[nd - 1];
            ib += k * p->sb[nd - 1];
            for (int d = nd - 1; d > 0 && idx[d] == p->shape[d]; d--) {
                ia += p->sa[d - 1] - idx[d] * p->sa[d];
                ib += p->sb[d - 1] - idx[d] * p->sb[d];
                idx[d] = 0;
                idx[d - 1]++;
            }
        }
    }
}

/* The element loop of a run, specialised on which operands advance (innermost strides 0 / 1).
 * X and Y name the current elements of a and b inside EXPR; DST is the output slot. */
#define RUN_ELEMS(XV, YV, DST, EXPR) \
    for (int64_t j = 0; j < k; j++) { float X = (XV), Y = (YV); (void)X; (void)Y; DST = EXPR; }
#define RUN_LOOP(DST, EXPR)                                               \
    do {                                                                  \
        if (c->sa && c->sb) RUN_ELEMS(pa[j], pb[j], DST, EXPR)            \
        else if (c->sa) RUN_ELEMS(pa[j], pb[0], DST, EXPR)                \
        else if (c->sb) RUN_ELEMS(pa[0], pb[j], DST, EXPR)                \
        else RUN_ELEMS(pa[0], pb[0], DST, EXPR)                           \
    } while (0)

typedef struct RunCtx {
    float *dst;                 /* output (forward) or out-shaped gradient buffer (backward) */
    const float *dout, *a, *b;
    int64_t sa, sb;             /* innermost strides */
    BinaryOp op;
    int which;                  /* backward: 0 = gradient of a, 1 = of b */
} RunCtx;

static void forward_run(void *ctx, int64_t pos, int64_t ia, int64_t ib, int64_t k) {
    const RunCtx *c = ctx;
    const float *pa = c->a + ia, *pb = c->b + ib;
    float *o = c->dst + pos;
    switch (c->op) {
    case BINARY_ADD: RUN_LOOP(o[j], X + Y); break;
    case BINARY_SUB: RUN_LOOP(o[j], X - Y); break;
    case BINARY_MUL: RUN_LOOP(o[j], X * Y); break;
    case BINARY_DIV: RUN_LOOP(o[j], X / Y); break;
    }
}

void binary_forward(float *out, const float *a, const float *b, const BroadcastPlan *p, BinaryOp op) {
    RunCtx c = {out, NULL, a, b, p->sa[p->ndim - 1], p->sb[p->ndim - 1], op, 0};
    walk(p, forward_run, &c);
}

/* dst (out-shaped) += dout * d out / d(operand) for mul and div, as PyTorch forms them. */
static void grad_run(void *ctx, int64_t pos, int64_t ia, int64_t ib, int64_t k) {
    const RunCtx *c = ctx;
    const float *pa = c->a + ia, *pb = c->b + ib, *g = c->dout + pos;
    float *o = c->dst + pos;
    if (c->op == BINARY_MUL && c->which == 0) RUN_LOOP(o[j], o[j] + g[j] * Y);
    else if (c->op == BINARY_MUL) RUN_LOOP(o[j], o[j] + g[j] * X);
    else if (c->which == 0) RUN_LOOP(o[j], o[j] + g[j] / Y);
    else RUN_LOOP(o[j], o[j] - g[j] * ((X / Y) / Y));
}

/* dst (operand) += scale * src (p->n) summed over the dims where the operand's stride st is 0.
 * One destination element per iteration; the sum over the expanded dims runs in double. */
static void reduce_to(float *dst, const float *src, const int64_t *st, const BroadcastPlan *p, float scale) {
    int64_t ks[TENSOR_MAX_DIMS], kstr[TENSOR_MAX_DIMS], rs[TENSOR_MAX_DIMS], rstr[TENSOR_MAX_DIMS], os = 1, m = 1;
    int nk = 0, nr = 0;
    for (int d = p->ndim - 1; d >= 0; d--) {
        if (st[d] != 0) { ks[nk] = p->shape[d]; kstr[nk++] = os; m *= p->shape[d]; }
        else { rs[nr] = p->shape[d]; rstr[nr++] = os; }
        os *= p->shape[d];
    }
    /* ks / rs run innermost first; rs[0] is the innermost expanded dim */
#pragma omp parallel for schedule(static) if (p->n > PAR_MIN && m > 1)
    for (int64_t j = 0; j < m; j++) {
        int64_t base = 0, rem = j, idx[TENSOR_MAX_DIMS] = {0}, off = 0;
        for (int q = 0; q < nk; q++) { base += (rem % ks[q]) * kstr[q]; rem /= ks[q]; }
        double acc = 0;
        for (;;) {
            const float *s = src + base + off;
            for (int64_t t = 0; t < rs[0]; t++) acc += s[t * rstr[0]];
            int q = 1;
            for (; q < nr; q++) {
                off += rstr[q];
                if (++idx[q] < rs[q]) break;
                off -= idx[q] * rstr[q];
                idx[q] = 0;
            }
            if (q >= nr) break;
        }
        dst[j] += scale * (float)acc;
    }
}

/* dx (n) += sign * dout (n) */
static void add_signed(float *dx, const float *dout, float sign, int64_t n) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) dx[i] += sign * dout[i];
}

/* Adds the gradient of one operand (which: 0 = a, 1 = b) into dx, NULL skipped. */
static void binary_grad_operand(float *dx, int which, const float *dout, const float *a, const float *b,
                                const BroadcastPlan *p, BinaryOp op) {
    if (!dx) return;
    const int64_t *st = which ? p->sb : p->sa;
    int expanded = (which ? p->nb : p->na) != p->n;
    if (op == BINARY_ADD || op == BINARY_SUB) {
        float sign = (op == BINARY_SUB && which) ? -1.0f : 1.0f;
        if (expanded) reduce_to(dx, dout, st, p, sign);
        else add_signed(dx, dout, sign, p->n);
        return;
    }
    float *buf = expanded ? xcalloc((size_t)p->n, sizeof(float)) : dx;
    RunCtx c = {buf, dout, a, b, p->sa[p->ndim - 1], p->sb[p->ndim - 1], op, which};
    walk(p, grad_run, &c);
    if (expanded) {
        reduce_to(dx, buf, st, p, 1.0f);
        free(buf);
    }
}

void binary_backward(float *da, float *db, const float *dout, const float *a, const float *b, const BroadcastPlan *p,
                     BinaryOp op) {
    if (p->n == 0) return;
    binary_grad_operand(da, 0, dout, a, b, p, op);
    binary_grad_operand(db, 1, dout, a, b, p, op);
}

/* ------------------------------------------------------------------ scalar and unary kernels */

void scale_forward(float *out, const float *inp, float s, int64_t n) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = s * inp[i];
}

void scale_backward(float *dinp, const float *dout, float s, int64_t n) {
    if (dinp) add_signed(dinp, dout, s, n);
}

void add_scalar_forward(float *out, const float *inp, float s, int64_t n) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = inp[i] + s;
}

void add_scalar_backward(float *dinp, const float *dout, int64_t n) {
    if (dinp) add_signed(dinp, dout, 1.0f, n);
}

void exp_forward(float *out, const float *inp, int64_t n) {
    int64_t nb = (n + 4095) / 4096;
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t k = 0; k < nb; k++) vexp(out + k * 4096, inp + k * 4096, n - k * 4096 < 4096 ? n - k * 4096 : 4096);
}

void exp_backward(float *dinp, const float *dout, const float *out, int64_t n) {
    if (!dinp) return;
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) dinp[i] += dout[i] * out[i];
}

void log_forward(float *out, const float *inp, int64_t n) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = logf(inp[i]);
}

void log_backward(float *dinp, const float *dout, const float *inp, int64_t n) {
    if (!dinp) return;
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) dinp[i] += dout[i] / inp[i];
}

void clamp_forward(float *out, const float *inp, float lo, float hi, int64_t n) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float v = inp[i]; /* comparisons are false for NaN, which passes through */
        out[i] = v < lo ? lo : (v > hi ? hi : v);
    }
}

void clamp_backward(float *dinp, const float *dout, const float *inp, float lo, float hi, int64_t n) {
    if (!dinp) return;
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        if (inp[i] >= lo && inp[i] <= hi) dinp[i] += dout[i];
}

/* ------------------------------------------------------------------ reduction kernels */

/* out (OUTER, INNER) = sum_d inp (OUTER, D, INNER) / div, in double; OpenMP over (row, block). */
static void reduce_dim_forward(float *out, const float *inp, int64_t OUTER, int64_t D, int64_t INNER, double div) {
    int64_t nblk = (INNER + RED_BLOCK - 1) / RED_BLOCK, ntask = OUTER * nblk;
#pragma omp parallel for schedule(static) if (OUTER * D * INNER > PAR_MIN)
    for (int64_t t = 0; t < ntask; t++) {
        int64_t o = t / nblk, i0 = (t % nblk) * RED_BLOCK, m = min64(RED_BLOCK, INNER - i0);
        double acc[RED_BLOCK] = {0};
        const float *src = inp + o * D * INNER + i0;
        for (int64_t d = 0; d < D; d++)
            for (int64_t j = 0; j < m; j++) acc[j] += src[d * INNER + j];
        for (int64_t j = 0; j < m; j++) out[o * INNER + i0 + j] = (float)(acc[j] / div);
    }
}

/* dinp (OUTER, D, INNER) += dout (OUTER, INNER) / div */
static void reduce_dim_backward(float *dinp, const float *dout, int64_t OUTER, int64_t D, int64_t INNER, float div) {
    if (!dinp) return;
#pragma omp parallel for schedule(static) if (OUTER * D * INNER > PAR_MIN)
    for (int64_t r = 0; r < OUTER * D; r++) {
        float *dst = dinp + r * INNER;
        const float *src = dout + (r / D) * INNER;
        for (int64_t i = 0; i < INNER; i++) dst[i] += src[i] / div;
    }
}

void sum_forward(float *out, const float *inp, int64_t OUTER, int64_t D, int64_t INNER) {
    reduce_dim_forward(out, inp, OUTER, D, INNER, 1.0);
}

void sum_backward(float *dinp, const float *dout, int64_t OUTER, int64_t D, int64_t INNER) {
    reduce_dim_backward(dinp, dout, OUTER, D, INNER, 1.0f);
}

void mean_forward(float *out, const float *inp, int64_t OUTER, int64_t D, int64_t INNER) {
    reduce_dim_forward(out, inp, OUTER, D, INNER, (double)D);
}

void mean_backward(float *dinp, const float *dout, int64_t OUTER, int64_t D, int64_t INNER) {
    reduce_dim_backward(dinp, dout, OUTER, D, INNER, (float)D);
}

/* Sum of x (n) in double: fixed chunks, chunk sums added in order (thread-count independent). */
static double sum_double(const float *x, int64_t n) {
    int64_t nch = (n + SUM_CHUNK - 1) / SUM_CHUNK;
    double s = 0;
    if (nch <= 1) {
        for (int64_t i = 0; i < n; i++) s += x[i];
        return s;
    }
    double *part = xmalloc((size_t)nch * sizeof(double));
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < nch; c++) {
        double acc = 0;
        for (int64_t i = c * SUM_CHUNK, e = min64(i + SUM_CHUNK, n); i < e; i++) acc += x[i];
        part[c] = acc;
    }
    for (int64_t c = 0; c < nch; c++) s += part[c];
    free(part);
    return s;
}

void sum_all_forward(float *out, const float *inp, int64_t n) { out[0] = (float)sum_double(inp, n); }

void sum_all_backward(float *dinp, const float *dout, int64_t n) {
    if (!dinp) return;
    float g = dout[0];
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) dinp[i] += g;
}

void mean_all_forward(float *out, const float *inp, int64_t n) { out[0] = (float)(sum_double(inp, n) / (double)n); }

void mean_all_backward(float *dinp, const float *dout, int64_t n) {
    if (!dinp) return;
    float g = dout[0] / (float)n;
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) dinp[i] += g;
}

/* ------------------------------------------------------------------ tape-level ops */

typedef struct BinaryCtx {
    BroadcastPlan plan;
    BinaryOp op;
} BinaryCtx;

static void binary_bwd(Node *nd) {
    const BinaryCtx *c = nd->ctx;
    Tensor *a = nd->in[0], *b = nd->in[1];
    KERNEL(nd->tape->device, binary_backward, tensor_grad_or_null(a), tensor_grad_or_null(b), nd->out[0]->grad, a->data, b->data, &c->plan,
                    c->op);
}

static Tensor *binary_op(Tape *tp, Tensor *a, Tensor *b, BinaryOp op) {
    PROFILE_OP_BEGIN();
    static const char *const names[] = {"add", "sub", "mul", "div"};
    CHECK(a && b, "%s: NULL input", names[op]);
    BroadcastPlan plan;
    int ndim, shape[TENSOR_MAX_DIMS];
    char sa[64], sb[64];
    CHECK(broadcast_plan(&plan, &ndim, shape, a->ndim, a->shape, b->ndim, b->shape) == 0,
          "%s: shapes %s and %s do not broadcast", names[op], tensor_shape_str(a, sa, sizeof sa),
          tensor_shape_str(b, sb, sizeof sb));
    Tensor *y = tape_new(tp, ndim, shape);
    KERNEL(tp->device, binary_forward, y->data, a->data, b->data, &plan, op);
    Tensor *in[] = {a, b}, *out[] = {y};
    Node *nd = TAPE_RECORD(tp, names[op], binary_bwd, in, out);
    if (nd) {
        BinaryCtx *c = tape_alloc(tp, sizeof *c);
        c->plan = plan;
        c->op = op;
        nd->ctx = c;
    }
    return y;
}

Tensor *op_add(Tape *tp, Tensor *a, Tensor *b) { return binary_op(tp, a, b, BINARY_ADD); }
Tensor *op_sub(Tape *tp, Tensor *a, Tensor *b) { return binary_op(tp, a, b, BINARY_SUB); }
Tensor *op_mul(Tape *tp, Tensor *a, Tensor *b) { return binary_op(tp, a, b, BINARY_MUL); }
Tensor *op_div(Tape *tp, Tensor *a, Tensor *b) { return binary_op(tp, a, b, BINARY_DIV); }

/* Saves the op's float parameters (scale factor, clamp bounds) in the node, if recorded. */
static void save_params(Tape *tp, Node *nd, float p0, float p1) {
    if (!nd) return;
    float *c = tape_alloc(tp, 2 * sizeof(float));
    c[0] = p0;
    c[1] = p1;
    nd->ctx = c;
}

static void scale_bwd(Node *nd) {
    const float *c = nd->ctx;
    KERNEL(nd->tape->device, scale_backward, tensor_grad_or_null(nd->in[0]), nd->out[0]->grad, c[0], nd->in[0]->n);
}

Tensor *op_scale(Tape *tp, Tensor *x, float s) {
    PROFILE_OP_BEGIN();
    CHECK(x, "scale: NULL input");
    Tensor *y = tape_new(tp, x->ndim, x->shape);
    KERNEL(tp->device, scale_forward, y->data, x->data, s, x->n);
    Tensor *in[] = {x}, *out[] = {y};
    Node *nd = TAPE_RECORD(tp, "scale", scale_bwd, in, out);
    save_params(tp, nd, s, 0.0f);
    tape_node_data_unused(nd); /* dx = s * dy */
    return y;
}

static void add_scalar_bwd(Node *nd) {
    KERNEL(nd->tape->device, add_scalar_backward, tensor_grad_or_null(nd->in[0]), nd->out[0]->grad, nd->in[0]->n);
}

Tensor *op_add_scalar(Tape *tp, Tensor *x, float s) {
    PROFILE_OP_BEGIN();
    CHECK(x, "add_scalar: NULL input");
    Tensor *y = tape_new(tp, x->ndim, x->shape);
    KERNEL(tp->device, add_scalar_forward, y->data, x->data, s, x->n);
    Tensor *in[] = {x}, *out[] = {y};
    TAPE_RECORD(tp, "add_scalar", add_scalar_bwd, in, out);
    return y;
}

static void exp_bwd(Node *nd) {
    Tensor *y = nd->out[0];
    KERNEL(nd->tape->device, exp_backward, tensor_grad_or_null(nd->in[0]), y->grad, y->data, y->n);
}

Tensor *op_exp(Tape *tp, Tensor *x) {
    PROFILE_OP_BEGIN();
    CHECK(x, "exp: NULL input");
    Tensor *y = tape_new(tp, x->ndim, x->shape);
    KERNEL(tp->device, exp_forward, y->data, x->data, x->n);
    Tensor *in[] = {x}, *out[] = {y};
    TAPE_RECORD(tp, "exp", exp_bwd, in, out);
    return y;
}

static void log_bwd(Node *nd) {
    Tensor *x = nd->in[0];
    KERNEL(nd->tape->device, log_backward, tensor_grad_or_null(x), nd->out[0]->grad, x->data, x->n);
}

Tensor *op_log(Tape *tp, Tensor *x) {
    PROFILE_OP_BEGIN();
    CHECK(x, "log: NULL input");
    Tensor *y = tape_new(tp, x->ndim, x->shape);
    KERNEL(tp->device, log_forward, y->data, x->data, x->n);
    Tensor *in[] = {x}, *out[] = {y};
    TAPE_RECORD(tp, "log", log_bwd, in, out);
    return y;
}

static void clamp_bwd(Node *nd) {
    const float *c = nd->ctx;
    Tensor *x = nd->in[0];
    KERNEL(nd->tape->device, clamp_backward, tensor_grad_or_null(x), nd->out[0]->grad, x->data, c[0], c[1], x->n);
}

Tensor *op_clamp(Tape *tp, Tensor *x, float lo, float hi) {
    PROFILE_OP_BEGIN();
    CHECK(x, "clamp: NULL input");
    CHECK(!(lo > hi), "clamp: lower bound %g above upper bound %g", lo, hi);
    Tensor *y = tape_new(tp, x->ndim, x->shape);
    KERNEL(tp->device, clamp_forward, y->data, x->data, lo, hi, x->n);
    Tensor *in[] = {x}, *out[] = {y};
    save_params(tp, TAPE_RECORD(tp, "clamp", clamp_bwd, in, out), lo, hi);
    return y;
}

/* ---- reductions */

typedef struct ReduceCtx {
    int64_t outer, d, inner;
    int mean;
} ReduceCtx;

static void reduce_dim_bwd(Node *nd) {
    const ReduceCtx *c = nd->ctx;
    float *dx = tensor_grad_or_null(nd->in[0]);
    if (c->mean) KERNEL(nd->tape->device, mean_backward, dx, nd->out[0]->grad, c->outer, c->d, c->inner);
    else KERNEL(nd->tape->device, sum_backward, dx, nd->out[0]->grad, c->outer, c->d, c->inner);
}

static Tensor *reduce_dim_op(Tape *tp, Tensor *x, int dim, int keepdim, int mean) {
    PROFILE_OP_BEGIN();
    const char *name = mean ? "mean" : "sum";
    CHECK(x && x->ndim >= 1, "%s: needs a tensor of at least 1 dim", name);
    int d = dim < 0 ? dim + x->ndim : dim;
    CHECK(d >= 0 && d < x->ndim, "%s: dim %d out of range for a %d-d tensor", name, dim, x->ndim);
    int shape[TENSOR_MAX_DIMS], ndim = 0;
    for (int i = 0; i < x->ndim; i++)
        if (i != d) shape[ndim++] = x->shape[i];
        else if (keepdim) shape[ndim++] = 1;
    ReduceCtx c = {tensor_span(x, 0, d), x->shape[d], tensor_span(x, d + 1, x->ndim), mean};
    Tensor *y = tape_new(tp, ndim, shape);
    if (mean) KERNEL(tp->device, mean_forward, y->data, x->data, c.outer, c.d, c.inner);
    else KERNEL(tp->device, sum_forward, y->data, x->data, c.outer, c.d, c.inner);
    Tensor *in[] = {x}, *out[] = {y};
    Node *nd = TAPE_RECORD(tp, name, reduce_dim_bwd, in, out);
    if (nd) {
        ReduceCtx *s = tape_alloc(tp, sizeof *s);
        *s = c;
        nd->ctx = s;
    }
    return y;
}

Tensor *op_sum(Tape *tp, Tensor *x, int dim, int keepdim) { return reduce_dim_op(tp, x, dim, keepdim, 0); }
Tensor *op_mean(Tape *tp, Tensor *x, int dim, int keepdim) { return reduce_dim_op(tp, x, dim, keepdim, 1); }

static void sum_all_bwd(Node *nd) {
    KERNEL(nd->tape->device, sum_all_backward, tensor_grad_or_null(nd->in[0]), nd->out[0]->grad, nd->in[0]->n);
}

static void mean_all_bwd(Node *nd) {
    KERNEL(nd->tape->device, mean_all_backward, tensor_grad_or_null(nd->in[0]), nd->out[0]->grad, nd->in[0]->n);
}

Tensor *op_sum_all(Tape *tp, Tensor *x) {
    PROFILE_OP_BEGIN();
    CHECK(x, "sum_all: NULL input");
    Tensor *y = tape_new(tp, 0, (int[]){1});
    KERNEL(tp->device, sum_all_forward, y->data, x->data, x->n);
    Tensor *in[] = {x}, *out[] = {y};
    TAPE_RECORD(tp, "sum_all", sum_all_bwd, in, out);
    return y;
}

Tensor *op_mean_all(Tape *tp, Tensor *x) {
    PROFILE_OP_BEGIN();
    CHECK(x, "mean_all: NULL input");
    Tensor *y = tape_new(tp, 0, (int[]){1});
    KERNEL(tp->device, mean_all_forward, y->data, x->data, x->n);
    Tensor *in[] = {x}, *out[] = {y};
    TAPE_RECORD(tp, "mean_all", mean_all_bwd, in, out);
    return y;
}
