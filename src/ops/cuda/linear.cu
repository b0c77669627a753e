/* linear.cu: the CUDA twin of src/ops/linear.c through cuBLAS, row-major operands seen as
 * column-major transposes. The math mode is the shared handle's (cu_cublas, set by cuda_rt.cu):
 * fp32 with CUBLAS_DEFAULT_MATH by default, TF32 tensor cores under ATTNGAN_CUDA_MATH=tf32
 * (cu_math_tf32). The bias gradient's column sums are this file's kernel, fp32 in either mode. */
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

__global__ static void k_add_bias(float *out, const float *bias, int64_t N, int O) {
    GRID_STRIDE(e, N * O) out[e] += bias[e % O];
}

/* dbias (O) += column sums of dout (N, O): one thread per column */
__global__ static void k_bias_grad(float *dbias, const float *dout, int64_t N, int O) {
    GRID_STRIDE(o, (int64_t)O) {
        double s = 0.0;
        for (int64_t n = 0; n < N; n++) s += dout[n * O + o];
        dbias[o] += (float)s;
    }
}

extern "C" {
void linear_forward_cuda(float *out, const float *inp, const float *weight, const float *bias, int N, int I, int O) {
    cublasHandle_t h = (cublasHandle_t)cu_cublas();
    const float one = 1.0f, zero = 0.0f;
    /* out^T (O x N) = W (O x I) . inp^T (I x N) */
    CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, O, N, I, &one, weight, I, inp, I, &zero, out, O));
    if (bias) LAUNCH(k_add_bias, (int64_t)N * O, out, bias, (int64_t)N, O);
}

void linear_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, int N, int I, int O) {
    cublasHandle_t h = (cublasHandle_t)cu_cublas();
    const float one = 1.0f;
    /* dinp^T (I x N) += W^T (I x O) . dout^T (O x N) */
    if (dinp) CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, I, N, O, &one, weight, I, dout, O, &one, dinp, I));
    /* dW^T (I x O) += inp^T (I x N) . dout (N x O) */
    if (dweight) CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, I, O, N, &one, inp, I, dout, O, &one, dweight, I));
    if (dbias) LAUNCH(k_bias_grad, (int64_t)O, dbias, dout, (int64_t)N, O);
}
}
