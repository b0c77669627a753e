/* shape.cu: the CUDA twins of the kernels of src/ops/shape.c: concat, slice, repeat, broadcast,
 * transpose, reshape, forward and backward (unblock16, the nChw16c layout of the CPU's frozen
 * Inception trunk, has no twin: CPU only).
 *
 * Forward passes are gathers, one thread per output element. Backward passes are gathers too, one
 * thread per input-gradient element: concat, slice, transpose and reshape move each gradient
 * element once (dinp += dout); repeat and broadcast go through shape.c's expand engine (the same
 * merged-dims plan, built here on the host) and each thread sums the output positions that map
 * onto its input element from 0 in the CPU's order (stretched dims row-major, then the trailing
 * run), then adds the sum. Every kernel is bitwise deterministic and gives the CPU kernels' bits
 * (no float atomics). The expand backward is serial per input element: a broadcast of few elements
 * to a large output (a bias-like (1, C, 1, 1) -> (N, C, H, W)) has C threads, each summing N*H*W.
 *
 * Host parameters: concat's inps / dinps (host arrays of device pointers) and sizes, repeat's
 * in_shape and reps, broadcast's out_shape and in_shape are read on the host. */
#include "cuda_ops.h"
#include "launch.cuh"

/* ---------------------------------------------------------------- concat, slice */

/* out (outer, row) columns [off, off + len) = inp (outer, len) */
__global__ static void k_concat_part_fwd(float *out, const float *inp, int64_t outer, int64_t len, int64_t row,
                                         int64_t off) {
    GRID_STRIDE(e, outer * len) out[(e / len) * row + off + e % len] = inp[e];
}

/* dinp (outer, len) += dout (outer, row) columns [off, off + len) */
__global__ static void k_concat_part_bwd(float *dinp, const float *dout, int64_t outer, int64_t len, int64_t row,
                                         int64_t off) {
    GRID_STRIDE(e, outer * len) dinp[e] += dout[(e / len) * row + off + e % len];
}

__global__ static void k_slice_fwd(float *out, const float *inp, int64_t outer, int64_t size_inner, int64_t start_inner,
                                   int64_t olen) {
    GRID_STRIDE(e, outer * olen) out[e] = inp[(e / olen) * size_inner + start_inner + e % olen];
}

__global__ static void k_slice_bwd(float *dinp, const float *dout, int64_t outer, int64_t size_inner,
                                   int64_t start_inner, int64_t olen) {
    GRID_STRIDE(e, outer * olen) dinp[(e / olen) * size_inner + start_inner + e % olen] += dout[e];
}

/* ---------------------------------------------------------------- expand engine (shape.c's) */
#define XDIMS (2 * TENSOR_MAX_DIMS)

/* shape.c's ExpandPlan, with what its backward derives (passed to the kernels by value) */
struct XPlan {
    int m;                  /* number of merged dims (>= 1) */
    int64_t size[XDIMS];    /* output size of each merged dim */
    int kept[XDIMS];        /* 1: the input has this dim, 0: stretched from size 1 */
    int64_t ostride[XDIMS]; /* output strides */
    int64_t istride[XDIMS]; /* input strides (0 for stretched dims) */
    int64_t n_out, n_in;
    int kd[XDIMS], ed[XDIMS], nk, ne; /* the kept / stretched dims among the first m - 1 */
    int64_t inner, trail, combos;
};

/* shape.c's expand_plan: drop size-1 output dims, merge neighbours of the same kind */
static void xplan(XPlan *p, int nd, const int *out_shape, const int *in_shape) {
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
    /* expand_backward's split */
    int m = p->m;
    p->nk = p->ne = 0;
    for (int k = 0; k < m - 1; k++) {
        if (p->kept[k]) p->kd[p->nk++] = k;
        else p->ed[p->ne++] = k;
    }
    p->inner = p->kept[m - 1] ? p->size[m - 1] : 1;
    p->trail = p->kept[m - 1] ? 1 : p->size[m - 1];
    p->combos = 1;
    for (int k = 0; k < p->ne; k++) p->combos *= p->size[p->ed[k]];
}

/* shape.c's repeat_plan: (1, d0, 1, d1, ...) -> (r0, d0, r1, d1, ...) */
static void repeat_xplan(XPlan *p, int ndim, const int *in_shape, const int *reps) {
    CHECK(ndim >= 0 && ndim <= TENSOR_MAX_DIMS, "repeat_cuda: %d dims (at most %d)", ndim, TENSOR_MAX_DIMS);
    int os[XDIMS], is[XDIMS];
    for (int d = 0; d < ndim; d++) {
        os[2 * d] = reps[d];
        is[2 * d] = 1;
        os[2 * d + 1] = is[2 * d + 1] = in_shape[d];
    }
    xplan(p, 2 * ndim, os, is);
}

__global__ static void k_expand_fwd(float *out, const float *inp, XPlan p) {
    GRID_STRIDE(e, p.n_out) {
        int64_t rem = e, ioff = 0;
        for (int k = p.m - 1; k >= 0; k--) {
            ioff += (rem % p.size[k]) * p.istride[k];
            rem /= p.size[k];
        }
        out[e] = inp[ioff];
    }
}

/* output offset of index i over the merged dims dims[0..nd) (row-major among them) */
__device__ static int64_t unravel_offset(int64_t i, const XPlan &p, const int *dims, int nd) {
    int64_t off = 0;
    for (int k = nd - 1; k >= 0; k--) {
        int d = dims[k];
        off += (i % p.size[d]) * p.ostride[d];
        i /= p.size[d];
    }
    return off;
}

/* dinp element i += the sum from 0 of the output positions mapping onto it, in expand_backward's order */
__global__ static void k_expand_bwd(float *dinp, const float *dout, XPlan p) {
    GRID_STRIDE(i, p.n_in) {
        int64_t r = i / p.inner, j = i % p.inner;
        const float *base = dout + unravel_offset(r, p, p.kd, p.nk) + j;
        float acc = 0.0f;
        for (int64_t c = 0; c < p.combos; c++) {
            const float *src = base + unravel_offset(c, p, p.ed, p.ne);
            if (p.trail > 1) {
                for (int64_t t = 0; t < p.trail; t++) acc += src[t];
            } else {
                acc += src[0];
            }
        }
        dinp[i] += acc;
    }
}

/* ---------------------------------------------------------------- transpose, reshape */

/* dst (A, Q, M, P, C) = (or +=) src (A, P, M, Q, C): one thread per dst element */
__global__ static void k_swap_axes(float *dst, const float *src, int64_t A, int64_t P, int64_t M, int64_t Q, int64_t C,
                                   int acc) {
    GRID_STRIDE(e, A * Q * M * P * C) {
        int64_t c = e % C, r = e / C;
        int64_t pp = r % P;
        r /= P;
        int64_t mm = r % M;
        r /= M;
        int64_t q = r % Q, a = r / Q;
        float v = src[(((a * P + pp) * M + mm) * Q + q) * C + c];
        if (acc) dst[e] += v;
        else dst[e] = v;
    }
}

__global__ static void k_add(float *dinp, const float *dout, int64_t n) { GRID_STRIDE(i, n) dinp[i] += dout[i]; }

extern "C" {
/* inps: host array (n) of device pointers; sizes: host (n) */
void concat_forward_cuda(float *out, const float *const *inps, const int *sizes, int n, int64_t outer, int64_t inner) {
    int64_t row = 0;
    for (int i = 0; i < n; i++) row += (int64_t)sizes[i] * inner;
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        int64_t len = (int64_t)sizes[i] * inner;
        LAUNCH(k_concat_part_fwd, outer * len, out, inps[i], outer, len, row, off);
        off += len;
    }
}

/* dinps: host array (n) of device pointers, NULL entries skipped; sizes: host (n). The parts run
 * one after another on the stream, so a tensor appearing twice gets its parts in input order. */
void concat_backward_cuda(float *const *dinps, const float *dout, const int *sizes, int n, int64_t outer, int64_t inner) {
    int64_t row = 0;
    for (int i = 0; i < n; i++) row += (int64_t)sizes[i] * inner;
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        int64_t len = (int64_t)sizes[i] * inner;
        if (dinps[i]) LAUNCH(k_concat_part_bwd, outer * len, dinps[i], dout, outer, len, row, off);
        off += len;
    }
}

void slice_forward_cuda(float *out, const float *inp, int64_t outer, int size, int start, int len, int64_t inner) {
    int64_t olen = (int64_t)len * inner;
    LAUNCH(k_slice_fwd, outer * olen, out, inp, outer, (int64_t)size * inner, (int64_t)start * inner, olen);
}

void slice_backward_cuda(float *dinp, const float *dout, int64_t outer, int size, int start, int len, int64_t inner) {
    if (!dinp) return;
    int64_t olen = (int64_t)len * inner;
    LAUNCH(k_slice_bwd, outer * olen, dinp, dout, outer, (int64_t)size * inner, (int64_t)start * inner, olen);
}

/* in_shape, reps: host (ndim) */
void repeat_forward_cuda(float *out, const float *inp, int ndim, const int *in_shape, const int *reps) {
    XPlan p;
    repeat_xplan(&p, ndim, in_shape, reps);
    LAUNCH(k_expand_fwd, p.n_out, out, inp, p);
}

void repeat_backward_cuda(float *dinp, const float *dout, int ndim, const int *in_shape, const int *reps) {
    if (!dinp) return;
    XPlan p;
    repeat_xplan(&p, ndim, in_shape, reps);
    if (p.n_out > 0) LAUNCH(k_expand_bwd, p.n_in, dinp, dout, p);
}

/* out_shape, in_shape: host (ndim) */
void broadcast_forward_cuda(float *out, const float *inp, int ndim, const int *out_shape, const int *in_shape) {
    CHECK(ndim >= 0 && ndim <= XDIMS, "broadcast_cuda: %d dims (at most %d)", ndim, XDIMS);
    XPlan p;
    xplan(&p, ndim, out_shape, in_shape);
    LAUNCH(k_expand_fwd, p.n_out, out, inp, p);
}

void broadcast_backward_cuda(float *dinp, const float *dout, int ndim, const int *out_shape, const int *in_shape) {
    if (!dinp) return;
    CHECK(ndim >= 0 && ndim <= XDIMS, "broadcast_cuda: %d dims (at most %d)", ndim, XDIMS);
    XPlan p;
    xplan(&p, ndim, out_shape, in_shape);
    if (p.n_out > 0) LAUNCH(k_expand_bwd, p.n_in, dinp, dout, p);
}

void transpose_forward_cuda(float *out, const float *inp, int64_t A, int P, int64_t M, int Q, int64_t C) {
    LAUNCH(k_swap_axes, A * P * M * Q * C, out, inp, A, (int64_t)P, M, (int64_t)Q, C, 0);
}

void transpose_backward_cuda(float *dinp, const float *dout, int64_t A, int P, int64_t M, int Q, int64_t C) {
    if (dinp) LAUNCH(k_swap_axes, A * P * M * Q * C, dinp, dout, A, (int64_t)Q, M, (int64_t)P, C, 1);
}

void reshape_forward_cuda(float *out, const float *inp, int64_t n) {
    if (n > 0)
        CU_CHECK(cudaMemcpyAsync(out, inp, (size_t)n * sizeof(float), cudaMemcpyDeviceToDevice, (cudaStream_t)cu_stream()));
}

void reshape_backward_cuda(float *dinp, const float *dout, int64_t n) {
    if (dinp) LAUNCH(k_add, n, dinp, dout, n);
}
}
