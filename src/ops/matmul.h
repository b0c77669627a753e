/* matmul.h: batched matrix product through BLAS.
 * Tape-level ops return a new tensor on the tape and record their backward; see src/ops/README.md
 * for the op contract. */
#ifndef ATTNGAN_OPS_MATMUL_H
#define ATTNGAN_OPS_MATMUL_H

#include "../core/core.h"

/* a (B, M, K) (or (B, K, M) if trans_a), b (B, K, N) (or (B, N, K) if trans_b) -> (B, M, N).
 * 2-d a and b are a batch of one and give a 2-d result. */
Tensor *op_bmm(Tape *tp, Tensor *a, Tensor *b, int trans_a, int trans_b);

/* Kernels. out (B, M, N) = op(a) . op(b), with a (B, M, K) or (B, K, M) if trans_a and
 * b (B, K, N) or (B, N, K) if trans_b. */
void bmm_forward(float *out, const float *a, const float *b, int B, int M, int N, int K, int trans_a, int trans_b);
/* da (shape of a) += dout . op(b)^T (transposed back if trans_a); db (shape of b) += op(a)^T . dout
 * (transposed back if trans_b); dout (B, M, N); NULL gradients are skipped. */
void bmm_backward(float *da, float *db, const float *dout, const float *a, const float *b, int B, int M, int N, int K,
                  int trans_a, int trans_b);

#endif
