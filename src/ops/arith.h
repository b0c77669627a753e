/* arith.h: element-wise arithmetic with broadcasting, reductions, exp/log/clamp.
 * Tape-level ops return a new tensor on the tape and record their backward; see src/ops/README.md
 * for the op contract. */
#ifndef ATTNGAN_OPS_ARITH_H
#define ATTNGAN_OPS_ARITH_H

#include "../core/core.h"

/* Binary ops broadcast as PyTorch does (shapes aligned at the end, size-1 dims expand). */
Tensor *op_add(Tape *tp, Tensor *a, Tensor *b);
Tensor *op_sub(Tape *tp, Tensor *a, Tensor *b);
Tensor *op_mul(Tape *tp, Tensor *a, Tensor *b);
Tensor *op_div(Tape *tp, Tensor *a, Tensor *b);
Tensor *op_scale(Tape *tp, Tensor *x, float s);          /* s * x */
Tensor *op_add_scalar(Tape *tp, Tensor *x, float s);     /* x + s */
Tensor *op_exp(Tape *tp, Tensor *x);
Tensor *op_log(Tape *tp, Tensor *x);
/* clamp to [lo, hi] (use -INFINITY / INFINITY for one side); gradient 1 inside, 0 where clamped
 * (PyTorch: at lo <= x <= hi inclusive the gradient passes). */
Tensor *op_clamp(Tape *tp, Tensor *x, float lo, float hi);
/* Reductions over one dim (negative counts from the end) or over everything (0-d result). */
Tensor *op_sum(Tape *tp, Tensor *x, int dim, int keepdim);
Tensor *op_mean(Tape *tp, Tensor *x, int dim, int keepdim);
Tensor *op_sum_all(Tape *tp, Tensor *x);
Tensor *op_mean_all(Tape *tp, Tensor *x);

#endif
