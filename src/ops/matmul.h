/* matmul.h: batched matrix product through BLAS.
 * Tape-level ops return a new tensor on the tape and record their backward; see src/ops/README.md
 * for the op contract. */
#ifndef ATTNGAN_OPS_MATMUL_H
#define ATTNGAN_OPS_MATMUL_H

#include "../core/core.h"

/* a (B, M, K) (or (B, K, M) if trans_a), b (B, K, N) (or (B, N, K) if trans_b) -> (B, M, N).
 * 2-d a and b are a batch of one and give a 2-d result. */
Tensor *op_bmm(Tape *tp, Tensor *a, Tensor *b, int trans_a, int trans_b);

#endif
