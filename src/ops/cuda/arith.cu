/* arith.cu: the CUDA twins of src/ops/arith.c: broadcast binary ops, scalar and unary ops, and the
 * dim / whole-tensor reductions.
 *
 * Binary forward: one thread per output element, its operand offsets from the plan (passed to the
 * kernel by value). Binary backward: a non-expanded operand's gradient is element-wise; an expanded
 * operand's is summed over its expanded dims in double, each term formed in fp32 as the CPU forms
 * it in its out-shaped buffer (no buffer here: the term is computed where it is summed).
 * Reductions run one thread per output (a serial loop in double) when the reduced extent is short
 * or the reads are coalesced that way, else one block per output (block_sum's fixed tree, in
 * double); the choice depends only on the shapes, and no float atomics are used, so results are
 * bitwise the same run to run. Whole-tensor sums: fixed per-block partials in double (the block
 * count depends only on n), then one block adds them. */
#include "cuda_ops.h"
#include "launch.cuh"

#include <string.h>

/* ------------------------------------------------------------------ scalar and unary kernels */

__global__ static void k_scale_fwd(float *out, const float *inp, float s, int64_t n) { GRID_STRIDE(i, n) out[i] = s * inp[i]; }
__global__ static void k_scale_bwd(float *dinp, const float *dout, float s, int64_t n) { GRID_STRIDE(i, n) dinp[i] += s * dout[i]; }
__global__ static void k_exp_fwd(float *out, const float *inp, int64_t n) { GRID_STRIDE(i, n) out[i] = expf(inp[i]); }
__global__ static void k_exp_bwd(float *dinp, const float *dout, const float *out, int64_t n) {
    GRID_STRIDE(i, n) dinp[i] += dout[i] * out[i];
}
__global__ static void k_add_scalar_fwd(float *out, const float *inp, float s, int64_t n) { GRID_STRIDE(i, n) out[i] = inp[i] + s; }
__global__ static void k_add_bwd(float *dinp, const float *dout, int64_t n) { GRID_STRIDE(i, n) dinp[i] += dout[i]; }
__global__ static void k_log_fwd(float *out, const float *inp, int64_t n) { GRID_STRIDE(i, n) out[i] = logf(inp[i]); }
__global__ static void k_log_bwd(float *dinp, const float *dout, const float *inp, int64_t n) {
    GRID_STRIDE(i, n) dinp[i] += dout[i] / inp[i];
}
__global__ static void k_clamp_fwd(float *out, const float *inp, float lo, float hi, int64_t n) {
    GRID_STRIDE(i, n) {
        float v = inp[i]; /* comparisons are false for NaN, which passes through */
        out[i] = v < lo ? lo : (v > hi ? hi : v);
    }
}
__global__ static void k_clamp_bwd(float *dinp, const float *dout, const float *inp, float lo, float hi, int64_t n) {
    GRID_STRIDE(i, n) if (inp[i] >= lo && inp[i] <= hi) dinp[i] += dout[i];
}

/* ------------------------------------------------------------------ broadcast binary ops */

/* offsets into a and b of output position pos */
__device__ static inline void plan_offsets(const BroadcastPlan &p, int64_t pos, int64_t *ia, int64_t *ib) {
    int64_t a = 0, b = 0;
    for (int d = p.ndim - 1; d >= 0; d--) {
        int64_t s = p.shape[d], q = pos / s, i = pos - q * s;
        a += i * p.sa[d];
        b += i * p.sb[d];
        pos = q;
    }
    *ia = a;
    *ib = b;
}

__device__ static inline float binary_apply(BinaryOp op, float X, float Y) {
    switch (op) {
    case BINARY_ADD: return X + Y;
    case BINARY_SUB: return X - Y;
    case BINARY_MUL: return X * Y;
    default: return X / Y;
    }
}

__global__ static void k_binary_fwd(float *out, const float *a, const float *b, BroadcastPlan p, BinaryOp op) {
    GRID_STRIDE(pos, p.n) {
        int64_t ia, ib;
        plan_offsets(p, pos, &ia, &ib);
        out[pos] = binary_apply(op, a[ia], b[ib]);
    }
}

/* The term the CPU writes into its out-shaped gradient buffer at pos (before the sum over the
 * expanded dims): dout itself for add / sub (the sign is applied after the sum), else as
 * arith.c's grad_run forms it. */
__device__ static inline float grad_term(const BroadcastPlan &p, BinaryOp op, int which, const float *dout,
                                         const float *a, const float *b, int64_t pos) {
    float g = dout[pos];
    if (op == BINARY_ADD || op == BINARY_SUB) return g;
    int64_t ia, ib;
    plan_offsets(p, pos, &ia, &ib);
    float X = a[ia], Y = b[ib];
    if (op == BINARY_MUL) return which == 0 ? g * Y : g * X;
    return which == 0 ? g / Y : 0.0f - g * ((X / Y) / Y);
}

/* dx (p.n) += sign * term, the operand not expanded (its layout is the output's) */
__global__ static void k_binary_grad_ew(float *dx, const float *dout, const float *a, const float *b, BroadcastPlan p,
                                        BinaryOp op, int which, float sign) {
    GRID_STRIDE(pos, p.n) {
        if (op == BINARY_ADD || op == BINARY_SUB) dx[pos] += sign * dout[pos];
        else dx[pos] = dx[pos] + grad_term(p, op, which, dout, a, b, pos);
    }
}

/* The operand's kept dims (stride != 0) and expanded dims (stride 0), innermost first, with their
 * strides in the output; m destination elements (the operand's size), R terms summed for each. */
struct RedPlan {
    int nk, nr;
    int64_t ks[TENSOR_MAX_DIMS], kstr[TENSOR_MAX_DIMS], rs[TENSOR_MAX_DIMS], rstr[TENSOR_MAX_DIMS];
    int64_t m, R;
};

static RedPlan red_plan(const BroadcastPlan *p, const int64_t *st) {
    RedPlan r;
    memset(&r, 0, sizeof r);
    int64_t os = 1;
    r.m = 1;
    r.R = 1;
    for (int d = p->ndim - 1; d >= 0; d--) {
        if (st[d] != 0) {
            r.ks[r.nk] = p->shape[d];
            r.kstr[r.nk++] = os;
            r.m *= p->shape[d];
        } else {
            r.rs[r.nr] = p->shape[d];
            r.rstr[r.nr++] = os;
            r.R *= p->shape[d];
        }
        os *= p->shape[d];
    }
    return r;
}

/* output position of destination j's first term */
__device__ static inline int64_t red_base(const RedPlan &r, int64_t j) {
    int64_t base = 0;
    for (int q = 0; q < r.nk; q++) {
        int64_t s = r.ks[q], t = j / s;
        base += (j - t * s) * r.kstr[q];
        j = t;
    }
    return base;
}

/* output offset of term t (0 <= t < R) from its destination's base */
__device__ static inline int64_t red_off(const RedPlan &r, int64_t t) {
    int64_t off = 0;
    for (int q = 0; q < r.nr; q++) {
        int64_t s = r.rs[q], u = t / s;
        off += (t - u * s) * r.rstr[q];
        t = u;
    }
    return off;
}

/* one thread per destination: dx[j] += scale * (float)(sum of its R terms in double) */
__global__ static void k_binary_grad_red_thread(float *dx, const float *dout, const float *a, const float *b,
                                                BroadcastPlan p, RedPlan r, BinaryOp op, int which, float scale) {
    GRID_STRIDE(j, r.m) {
        int64_t base = red_base(r, j);
        double acc = 0.0;
        for (int64_t t = 0; t < r.R; t++) acc += grad_term(p, op, which, dout, a, b, base + red_off(r, t));
        dx[j] += scale * (float)acc;
    }
}

/* one block per destination j = blockIdx.x */
__global__ static void k_binary_grad_red_block(float *dx, const float *dout, const float *a, const float *b,
                                               BroadcastPlan p, RedPlan r, BinaryOp op, int which, float scale) {
    __shared__ double red[THREADS];
    int64_t j = blockIdx.x, base = red_base(r, j);
    double acc = 0.0;
    for (int64_t t = threadIdx.x; t < r.R; t += blockDim.x) acc += grad_term(p, op, which, dout, a, b, base + red_off(r, t));
    acc = block_sum(acc, red);
    if (threadIdx.x == 0) dx[j] += scale * (float)acc;
}

static void binary_grad_operand_cuda(float *dx, int which, const float *dout, const float *a, const float *b,
                                     const BroadcastPlan *p, BinaryOp op) {
    if (!dx) return;
    const int64_t *st = which ? p->sb : p->sa;
    int expanded = (which ? p->nb : p->na) != p->n;
    float sign = (op == BINARY_SUB && which) ? -1.0f : 1.0f;
    if (!expanded) {
        LAUNCH(k_binary_grad_ew, p->n, dx, dout, a, b, *p, op, which, sign);
        return;
    }
    RedPlan r = red_plan(p, st);
    float scale = (op == BINARY_ADD || op == BINARY_SUB) ? sign : 1.0f;
    /* a block per destination where each sums many terms and the innermost output dim is expanded
     * (a block's reads are contiguous) or there are few destinations; else a thread per
     * destination (neighbouring threads read neighbouring elements) */
    int block = r.R >= 128 && ((r.nr > 0 && r.rstr[0] == 1) || r.m < 4096);
    if (block) {
        k_binary_grad_red_block<<<(unsigned)r.m, THREADS, 0, (cudaStream_t)cu_stream()>>>(dx, dout, a, b, *p, r, op,
                                                                                       which, scale);
        CU_CHECK(cudaGetLastError());
    } else {
        LAUNCH(k_binary_grad_red_thread, r.m, dx, dout, a, b, *p, r, op, which, scale);
    }
}

/* ------------------------------------------------------------------ reductions */

/* out (OUTER, INNER) = (float)(sum_d inp (OUTER, D, INNER) in double / div): one thread per output */
__global__ static void k_reduce_dim_thread(float *out, const float *inp, int64_t OUTER, int64_t D, int64_t INNER,
                                           double div) {
    GRID_STRIDE(k, OUTER * INNER) {
        int64_t o = k / INNER, i = k - o * INNER;
        const float *src = inp + o * D * INNER + i;
        double acc = 0.0;
        for (int64_t d = 0; d < D; d++) acc += src[d * INNER];
        out[k] = (float)(acc / div);
    }
}

/* the same, one block per output k = blockIdx.x */
__global__ static void k_reduce_dim_block(float *out, const float *inp, int64_t D, int64_t INNER, double div) {
    __shared__ double red[THREADS];
    int64_t k = blockIdx.x, o = k / INNER, i = k - o * INNER;
    const float *src = inp + o * D * INNER + i;
    double acc = 0.0;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) acc += src[d * INNER];
    acc = block_sum(acc, red);
    if (threadIdx.x == 0) out[k] = (float)(acc / div);
}

static void reduce_dim_forward_cuda(float *out, const float *inp, int64_t OUTER, int64_t D, int64_t INNER, double div) {
    int64_t nout = OUTER * INNER;
    if (nout <= 0) return;
    if (D >= 128 && (INNER < 32 || nout < 4096)) {
        k_reduce_dim_block<<<(unsigned)nout, THREADS, 0, (cudaStream_t)cu_stream()>>>(out, inp, D, INNER, div);
        CU_CHECK(cudaGetLastError());
    } else {
        LAUNCH(k_reduce_dim_thread, nout, out, inp, OUTER, D, INNER, div);
    }
}

/* dinp (OUTER, D, INNER) += dout (OUTER, INNER) / div */
__global__ static void k_reduce_dim_bwd(float *dinp, const float *dout, int64_t D, int64_t INNER, int64_t n, float div) {
    GRID_STRIDE(e, n) {
        int64_t r = e / INNER, i = e - r * INNER;
        dinp[e] += dout[(r / D) * INNER + i] / div;
    }
}

/* Whole-tensor sums: block b sums elements b*THREADS + t + k*gridDim*THREADS in double, its
 * partial to part[b]; then one block adds the partials. */
#define SUM_MAX_BLOCKS 1024
static unsigned sum_blocks(int64_t n) {
    int64_t b = (n + 16 * THREADS - 1) / (16 * THREADS); /* about 16 elements per thread */
    return (unsigned)(b < 1 ? 1 : (b > SUM_MAX_BLOCKS ? SUM_MAX_BLOCKS : b));
}

__global__ static void k_sum_partial(double *part, const float *inp, int64_t n) {
    __shared__ double red[THREADS];
    double acc = 0.0;
    GRID_STRIDE(i, n) acc += inp[i];
    acc = block_sum(acc, red);
    if (threadIdx.x == 0) part[blockIdx.x] = acc;
}

__global__ static void k_sum_finish(float *out, const double *part, int nb, double div) {
    __shared__ double red[THREADS];
    double acc = 0.0;
    for (int i = threadIdx.x; i < nb; i += blockDim.x) acc += part[i];
    acc = block_sum(acc, red);
    if (threadIdx.x == 0) out[0] = (float)(acc / div);
}

static void sum_all_cuda(float *out, const float *inp, int64_t n, double div) {
    cudaStream_t s = (cudaStream_t)cu_stream();
    unsigned nb = sum_blocks(n);
    double *part = (double *)cu_alloc(nb * sizeof(double));
    k_sum_partial<<<nb, THREADS, 0, s>>>(part, inp, n);
    CU_CHECK(cudaGetLastError());
    k_sum_finish<<<1, THREADS, 0, s>>>(out, part, (int)nb, div);
    CU_CHECK(cudaGetLastError());
    cu_free(part); /* one stream: a later user of the block runs after these kernels */
}

/* dinp (n) += dout[0] / div (div 1: the sum) */
__global__ static void k_all_bwd(float *dinp, const float *dout, int64_t n, float div, int is_mean) {
    float g = is_mean ? dout[0] / div : dout[0];
    GRID_STRIDE(i, n) dinp[i] += g;
}

/* ------------------------------------------------------------------ entry points */

extern "C" {
void binary_forward_cuda(float *out, const float *a, const float *b, const BroadcastPlan *p, BinaryOp op) {
    LAUNCH(k_binary_fwd, p->n, out, a, b, *p, op);
}

void binary_backward_cuda(float *da, float *db, const float *dout, const float *a, const float *b, const BroadcastPlan *p,
                          BinaryOp op) {
    if (p->n == 0) return;
    binary_grad_operand_cuda(da, 0, dout, a, b, p, op);
    binary_grad_operand_cuda(db, 1, dout, a, b, p, op);
}

void scale_forward_cuda(float *out, const float *inp, float s, int64_t n) { LAUNCH(k_scale_fwd, n, out, inp, s, n); }
void scale_backward_cuda(float *dinp, const float *dout, float s, int64_t n) {
    if (dinp) LAUNCH(k_scale_bwd, n, dinp, dout, s, n);
}
void add_scalar_forward_cuda(float *out, const float *inp, float s, int64_t n) {
    LAUNCH(k_add_scalar_fwd, n, out, inp, s, n);
}
void add_scalar_backward_cuda(float *dinp, const float *dout, int64_t n) {
    if (dinp) LAUNCH(k_add_bwd, n, dinp, dout, n);
}
void exp_forward_cuda(float *out, const float *inp, int64_t n) { LAUNCH(k_exp_fwd, n, out, inp, n); }
void exp_backward_cuda(float *dinp, const float *dout, const float *out, int64_t n) {
    if (dinp) LAUNCH(k_exp_bwd, n, dinp, dout, out, n);
}
void log_forward_cuda(float *out, const float *inp, int64_t n) { LAUNCH(k_log_fwd, n, out, inp, n); }
void log_backward_cuda(float *dinp, const float *dout, const float *inp, int64_t n) {
    if (dinp) LAUNCH(k_log_bwd, n, dinp, dout, inp, n);
}
void clamp_forward_cuda(float *out, const float *inp, float lo, float hi, int64_t n) {
    LAUNCH(k_clamp_fwd, n, out, inp, lo, hi, n);
}
void clamp_backward_cuda(float *dinp, const float *dout, const float *inp, float lo, float hi, int64_t n) {
    if (dinp) LAUNCH(k_clamp_bwd, n, dinp, dout, inp, lo, hi, n);
}

void sum_forward_cuda(float *out, const float *inp, int64_t OUTER, int64_t D, int64_t INNER) {
    reduce_dim_forward_cuda(out, inp, OUTER, D, INNER, 1.0);
}
void sum_backward_cuda(float *dinp, const float *dout, int64_t OUTER, int64_t D, int64_t INNER) {
    if (dinp) LAUNCH(k_reduce_dim_bwd, OUTER * D * INNER, dinp, dout, D, INNER, OUTER * D * INNER, 1.0f);
}
void mean_forward_cuda(float *out, const float *inp, int64_t OUTER, int64_t D, int64_t INNER) {
    reduce_dim_forward_cuda(out, inp, OUTER, D, INNER, (double)D);
}
void mean_backward_cuda(float *dinp, const float *dout, int64_t OUTER, int64_t D, int64_t INNER) {
    if (dinp) LAUNCH(k_reduce_dim_bwd, OUTER * D * INNER, dinp, dout, D, INNER, OUTER * D * INNER, (float)D);
}

void sum_all_forward_cuda(float *out, const float *inp, int64_t n) { sum_all_cuda(out, inp, n, 1.0); }
void sum_all_backward_cuda(float *dinp, const float *dout, int64_t n) {
    if (dinp) LAUNCH(k_all_bwd, n, dinp, dout, n, 1.0f, 0);
}
void mean_all_forward_cuda(float *out, const float *inp, int64_t n) { sum_all_cuda(out, inp, n, (double)n); }
void mean_all_backward_cuda(float *dinp, const float *dout, int64_t n) {
    if (dinp) LAUNCH(k_all_bwd, n, dinp, dout, n, (float)n, 1);
}
}
