/* cuda_ops.h: the CUDA twins of the CPU kernels of src/ops (issue 9, first part).
 *
 * Each function has the signature and the contract of its CPU kernel (src/ops/<family>.h) with a
 * `_cuda` suffix: every pointer is device memory (cu_alloc), outputs first, backward adds (+=)
 * into the gradients it is given and skips NULL ones. They run on the backend's stream
 * (cu_stream) and return without synchronising. tests/cuda/test_cuda_ops.c checks each against
 * its CPU kernel on random inputs and states the relative error per op.
 *
 * Covered so far: activation (relu, leaky relu, tanh, sigmoid, GLU), arith (scale, exp),
 * batchnorm (stats, forward, backward), softmax, linear and batched matmul (cuBLAS), conv2d
 * (cuDNN). Not yet: the tape-level ops on device tensors, pooling, resampling, shape ops, LSTM,
 * embedding, losses, the fused ops (see docs/CUDA.md).
 */
#ifndef ATTNGAN_CUDA_OPS_H
#define ATTNGAN_CUDA_OPS_H

#include <stdint.h>

#include "../conv2d.h"

#ifdef __cplusplus
extern "C" {
#endif

/* activation */
void relu_forward_cuda(float *out, const float *inp, int64_t n);
void relu_backward_cuda(float *dinp, const float *dout, const float *out, int64_t n);
void leaky_relu_forward_cuda(float *out, const float *inp, float slope, int64_t n);
void leaky_relu_backward_cuda(float *dinp, const float *dout, const float *inp, float slope, int64_t n);
void tanh_forward_cuda(float *out, const float *inp, int64_t n);
void tanh_backward_cuda(float *dinp, const float *dout, const float *out, int64_t n);
void sigmoid_forward_cuda(float *out, const float *inp, int64_t n);
void sigmoid_backward_cuda(float *dinp, const float *dout, const float *out, int64_t n);
void glu_forward_cuda(float *out, const float *inp, int64_t outer, int C, int64_t inner);
void glu_backward_cuda(float *dinp, const float *dout, const float *inp, int64_t outer, int C, int64_t inner);

/* arith */
void scale_forward_cuda(float *out, const float *inp, float s, int64_t n);
void scale_backward_cuda(float *dinp, const float *dout, float s, int64_t n);
void exp_forward_cuda(float *out, const float *inp, int64_t n);
void exp_backward_cuda(float *dinp, const float *dout, const float *out, int64_t n);

/* softmax over the last dimension (no mask yet) */
void softmax_forward_cuda(float *out, const float *inp, int64_t N, int C);
void softmax_backward_cuda(float *dinp, const float *dout, const float *out, int64_t N, int C);

/* batchnorm: the kernels of src/ops/batchnorm.h (inp (N, C, S)); mean, var, rstd on the device */
void batchnorm_stats_cuda(float *mean, float *var, const float *inp, int N, int C, int S);
void batchnorm_forward_cuda(float *out, float *rstd, const float *inp, const float *mean, const float *var,
                            const float *gamma, const float *beta, int N, int C, int S, float eps);
void batchnorm_backward_cuda(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *mean,
                             const float *rstd, const float *inp, const float *gamma, int N, int C, int S, int train);

/* linear: out (N, O) = inp (N, I) . W^T (O, I) + b (O); cuBLAS, fp32 (no TF32) */
void linear_forward_cuda(float *out, const float *inp, const float *weight, const float *bias, int N, int I, int O);
void linear_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, int N, int I, int O);

/* conv2d through cuDNN, the shapes of src/ops/conv2d.h; the workspace from cu_alloc */
void conv2d_forward_cuda(float *out, const float *inp, const float *weight, const float *bias, const Conv2dShape *s);
void conv2d_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, const Conv2dShape *s);

#ifdef __cplusplus
}
#endif

#endif
