/* matmul.h: batched matrix product through oneDNN's matmul (or OpenBLAS).
 * Tape-level ops return a new tensor on the tape and record their backward; see src/ops/README.md
 * for the op contract. */
#ifndef ATTNGAN_OPS_MATMUL_H
#define ATTNGAN_OPS_MATMUL_H

#include "../core/core.h"

/* a (B, M, K) (or (B, K, M) if trans_a), b (B, K, N) (or (B, N, K) if trans_b) -> (B, M, N).
 * 2-d a and b are a batch of one and give a 2-d result. */
Tensor *op_bmm(Tape *tp, Tensor *a, Tensor *b, int trans_a, int trans_b);

/* The implementation for the whole process: oneDNN (default) or OpenBLAS (ATTNGAN_BMM=blas, and
 * the fallback where oneDNN has no primitive). Both are deterministic at a fixed thread count. */
typedef enum BmmImpl { BMM_DNNL = 0, BMM_BLAS = 1 } BmmImpl;
BmmImpl bmm_get_impl(void);
void bmm_set_impl(BmmImpl impl);
/* Drops the cached oneDNN primitives (no product may run meanwhile). */
void bmm_clear_cache(void);

/* Kernels. out (B, M, N) = op(a) . op(b), with a (B, M, K) or (B, K, M) if trans_a and
 * b (B, K, N) or (B, N, K) if trans_b. */
void bmm_forward(float *out, const float *a, const float *b, int B, int M, int N, int K, int trans_a, int trans_b);
/* da (shape of a) += dout . op(b)^T (transposed back if trans_a); db (shape of b) += op(a)^T . dout
 * (transposed back if trans_b); dout (B, M, N); NULL gradients are skipped. */
void bmm_backward(float *da, float *db, const float *dout, const float *a, const float *b, int B, int M, int N, int K,
                  int trans_a, int trans_b);


/* ---- CUDA twins (src/ops/cuda/matmul.cu, built by `make CUDA=1`): the contracts above over device
 * pointers, on the backend's stream (cu_stream), without synchronising; one cuBLAS strided-batched
 * SGEMM per product (fp32, no TF32). bmm_set_impl / bmm_clear_cache have no twin. */
void bmm_forward_cuda(float *out, const float *a, const float *b, int B, int M, int N, int K, int trans_a, int trans_b);
void bmm_backward_cuda(float *da, float *db, const float *dout, const float *a, const float *b, int B, int M, int N,
                       int K, int trans_a, int trans_b);

#endif
