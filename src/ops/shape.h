/* shape.h: shape ops: concat, slice, repeat, broadcast, transpose, reshape (all materialise).
 * Tape-level ops return a new tensor on the tape and record their backward; see src/ops/README.md
 * for the op contract. */
#ifndef ATTNGAN_OPS_SHAPE_H
#define ATTNGAN_OPS_SHAPE_H

#include "../core/core.h"

/* Concatenate n tensors along dim; all other dims equal. */
Tensor *op_concat(Tape *tp, int n, Tensor *const *xs, int dim);
/* x[..., start:end, ...] along dim (negative dim counts from the end). */
Tensor *op_slice(Tape *tp, Tensor *x, int dim, int start, int end);
/* torch.Tensor.repeat: reps has x->ndim entries; out dim d = x dim d * reps[d]. */
Tensor *op_repeat(Tape *tp, Tensor *x, const int *reps);
/* numpy/PyTorch broadcasting of x to shape (ndim >= x->ndim, aligned at the end; x dims of
 * size 1 are expanded). Backward sums over the expanded dims. */
Tensor *op_broadcast_to(Tape *tp, Tensor *x, int ndim, const int *shape);
/* Swaps dims d0 and d1. */
Tensor *op_transpose(Tape *tp, Tensor *x, int d0, int d1);
/* Same elements, new shape; one entry may be -1. */
Tensor *op_reshape(Tape *tp, Tensor *x, int ndim, const int *shape);
#define OP_RESHAPE(tp, x, ...) op_reshape((tp), (x), NDIMS(__VA_ARGS__), (int[]){__VA_ARGS__})

/* Kernels. Backward kernels add (+=) into the gradient they are given. For concat and slice,
 * outer = product of the dims before `dim`, inner = product of the dims after it. */
/* out (outer, sum_i sizes[i], inner) = [inps[0] | inps[1] | ...], inps[i] (outer, sizes[i], inner). */
void concat_forward(float *out, const float *const *inps, const int *sizes, int n, int64_t outer, int64_t inner);
/* dinps[i] (outer, sizes[i], inner) += its part of dout (outer, sum_i sizes[i], inner); NULL entries skipped. */
void concat_backward(float *const *dinps, const float *dout, const int *sizes, int n, int64_t outer, int64_t inner);
/* out (outer, len, inner) = inp (outer, size, inner)[:, start:start+len, :]. */
void slice_forward(float *out, const float *inp, int64_t outer, int size, int start, int len, int64_t inner);
/* dinp (outer, size, inner)[:, start:start+len, :] += dout (outer, len, inner). */
void slice_backward(float *dinp, const float *dout, int64_t outer, int size, int start, int len, int64_t inner);
/* out (in_shape[0]*reps[0], ..., in_shape[ndim-1]*reps[ndim-1]) = inp (in_shape) tiled. */
void repeat_forward(float *out, const float *inp, int ndim, const int *in_shape, const int *reps);
/* dinp (in_shape) += sum over the tiles of dout (in_shape[d]*reps[d] ...). */
void repeat_backward(float *dinp, const float *dout, int ndim, const int *in_shape, const int *reps);
/* out (out_shape) = inp (in_shape) expanded; in_shape has ndim entries (pad with leading 1s),
 * each 1 or equal to out_shape's. */
void broadcast_forward(float *out, const float *inp, int ndim, const int *out_shape, const int *in_shape);
/* dinp (in_shape) += dout (out_shape) summed over the expanded dims. */
void broadcast_backward(float *dinp, const float *dout, int ndim, const int *out_shape, const int *in_shape);
/* out (A, Q, M, P, C) = inp (A, P, M, Q, C) with the P and Q axes swapped. */
void transpose_forward(float *out, const float *inp, int64_t A, int P, int64_t M, int Q, int64_t C);
/* dinp (A, P, M, Q, C) += dout (A, Q, M, P, C) with the axes swapped back. */
void transpose_backward(float *dinp, const float *dout, int64_t A, int P, int64_t M, int Q, int64_t C);
/* out (n) = inp (n). */
void reshape_forward(float *out, const float *inp, int64_t n);
/* dinp (n) += dout (n). */
void reshape_backward(float *dinp, const float *dout, int64_t n);

/* nChw16c (Tensor.blocked, C % 16 == 0) -> the same (N, C, H, W) values in NCHW; the gradient
 * flows back into the blocked layout. */
Tensor *op_unblock16(Tape *tp, Tensor *x);


/* ---- CUDA twins (src/ops/cuda/shape.cu, built by `make CUDA=1`): the kernels above over device
 * float pointers, on the backend's stream (cu_stream), without synchronising; bitwise deterministic.
 * Host memory: concat's inps / dinps (host arrays of device pointers) and sizes, repeat's in_shape
 * and reps, broadcast's out_shape and in_shape. A NULL gradient is skipped. No unblock16 twin. */
void concat_forward_cuda(float *out, const float *const *inps /* host */, const int *sizes /* host */, int n,
                         int64_t outer, int64_t inner);
void concat_backward_cuda(float *const *dinps /* host */, const float *dout, const int *sizes /* host */, int n,
                          int64_t outer, int64_t inner);
void slice_forward_cuda(float *out, const float *inp, int64_t outer, int size, int start, int len, int64_t inner);
void slice_backward_cuda(float *dinp, const float *dout, int64_t outer, int size, int start, int len, int64_t inner);
void repeat_forward_cuda(float *out, const float *inp, int ndim, const int *in_shape /* host */, const int *reps /* host */);
void repeat_backward_cuda(float *dinp, const float *dout, int ndim, const int *in_shape /* host */,
                          const int *reps /* host */);
void broadcast_forward_cuda(float *out, const float *inp, int ndim, const int *out_shape /* host */,
                            const int *in_shape /* host */);
void broadcast_backward_cuda(float *dinp, const float *dout, int ndim, const int *out_shape /* host */,
                             const int *in_shape /* host */);
void transpose_forward_cuda(float *out, const float *inp, int64_t A, int P, int64_t M, int Q, int64_t C);
void transpose_backward_cuda(float *dinp, const float *dout, int64_t A, int P, int64_t M, int Q, int64_t C);
void reshape_forward_cuda(float *out, const float *inp, int64_t n);
void reshape_backward_cuda(float *dinp, const float *dout, int64_t n);

#endif
