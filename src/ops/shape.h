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

#endif
