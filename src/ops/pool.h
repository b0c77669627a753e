/* pool.h: 2-d max and average pooling (square kernels, floor mode).
 * Tape-level ops return a new tensor on the tape and record their backward; see src/ops/README.md
 * for the op contract. */
#ifndef ATTNGAN_OPS_POOL_H
#define ATTNGAN_OPS_POOL_H

#include "../core/core.h"

/* x (N, C, H, W); padding counts as -inf. Gradient ties go to the first maximum in row-major
 * window order. */
Tensor *op_maxpool2d(Tape *tp, Tensor *x, int kernel, int stride, int pad);
/* count_include_pad != 0 divides by kernel*kernel always (PyTorch default); otherwise by the
 * number of in-image elements of the window. */
Tensor *op_avgpool2d(Tape *tp, Tensor *x, int kernel, int stride, int pad, int count_include_pad);

#endif
