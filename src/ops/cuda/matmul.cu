/* matmul.cu: the CUDA twin of src/ops/matmul.c's kernels: the batched product, forward and
 * backward, each as one cuBLAS strided-batched SGEMM over the whole batch, row-major operands seen
 * as column-major transposes. The math mode is the shared handle's (cu_cublas, set by cuda_rt.cu):
 * fp32 with CUBLAS_DEFAULT_MATH by default (no TF32), TF32 tensor cores under ATTNGAN_CUDA_MATH=tf32
 * (cu_math_tf32). The gradients are added with beta = 1. bmm_set_impl / bmm_clear_cache concern
 * the CPU only. */
#include "cuda_ops.h"
#include "launch.cuh"

#include <cublas_v2.h>
#include <stdio.h>
#include <stdlib.h>

#define CUBLAS_CHECK(call)                                                                        \
    do {                                                                                          \
        cublasStatus_t st_ = (call);                                                              \
        if (st_ != CUBLAS_STATUS_SUCCESS) {                                                       \
            fprintf(stderr, "%s:%d: %s failed: cuBLAS status %d\n", __FILE__, __LINE__, #call, (int)st_); \
            abort();                                                                              \
        }                                                                                         \
    } while (0)

/* For each of B entries: z (m, n) = beta z + op(x) (m, k) . op(y) (k, n), row-major; x stored
 * (m, k), or (k, m) if tx; y stored (k, n), or (n, k) if ty; entries sx, sy, sz floats apart.
 * Column-major, that is z^T (n x m) = op(y)^T . op(x)^T: matmul.c's gemm over the batch. */
static void gemm_batched(int tx, int ty, int m, int n, int k, const float *x, int64_t sx, const float *y, int64_t sy,
                         float beta, float *z, int64_t sz, int B) {
    if (B <= 0 || m <= 0 || n <= 0) return;
    if (k <= 0) {
        if (beta == 0.0f) cu_memset0(z, (size_t)B * (size_t)sz * sizeof(float));
        return;
    }
    cublasHandle_t h = (cublasHandle_t)cu_cublas();
    const float one = 1.0f;
    CUBLAS_CHECK(cublasSgemmStridedBatched(h, ty ? CUBLAS_OP_T : CUBLAS_OP_N, tx ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k,
                                           &one, y, ty ? k : n, (long long)sy, x, tx ? m : k, (long long)sx, &beta, z,
                                           n, (long long)sz, B));
}

extern "C" {
void bmm_forward_cuda(float *out, const float *a, const float *b, int B, int M, int N, int K, int trans_a, int trans_b) {
    int64_t sa = (int64_t)M * K, sb = (int64_t)K * N, so = (int64_t)M * N;
    gemm_batched(trans_a, trans_b, M, N, K, a, sa, b, sb, 0.0f, out, so, B);
}

void bmm_backward_cuda(float *da, float *db, const float *dout, const float *a, const float *b, int B, int M, int N,
                       int K, int trans_a, int trans_b) {
    int ta = !!trans_a, tb = !!trans_b;
    int64_t sa = (int64_t)M * K, sb = (int64_t)K * N, so = (int64_t)M * N;
    /* matmul.c's bmm_backward_one over the whole batch; da and db may be the same buffer (bmm(x, x)):
     * the products run one after the other on the stream */
    if (da) {
        if (!ta) gemm_batched(0, !tb, M, K, N, dout, so, b, sb, 1.0f, da, sa, B); /* da (M, K) += dout . op(b)^T */
        else gemm_batched(tb, 1, K, M, N, b, sb, dout, so, 1.0f, da, sa, B);      /* da (K, M) += op(b) . dout^T */
    }
    if (db) {
        if (!tb) gemm_batched(!ta, 0, K, N, M, a, sa, dout, so, 1.0f, db, sb, B); /* db (K, N) += op(a)^T . dout */
        else gemm_batched(1, ta, N, K, M, dout, so, a, sa, 1.0f, db, sb, B);      /* db (N, K) += dout^T . op(a) */
    }
}
}
