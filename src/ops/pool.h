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

/* Kernels; NC = N * C image planes (one OpenMP unit each), output (NC, OH, OW) with
 * OH = (H + 2 pad - kernel) / stride + 1 (floor), OW likewise; 0 <= pad <= kernel / 2. */
/* out (NC, OH, OW); idx (NC, OH, OW) or NULL receives each maximum's index y * W + x within
 * its plane (the first one on ties; NaN wins); inp (NC, H, W) */
void maxpool2d_forward(float *out, int32_t *idx, const float *inp, int64_t NC, int H, int W, int kernel, int stride, int pad);
/* dinp (NC, H, W) += dout (NC, OH, OW) routed through idx (NC, OH, OW) */
void maxpool2d_backward(float *dinp, const float *dout, const int32_t *idx, int64_t NC, int H, int W, int kernel,
                        int stride, int pad);
/* out (NC, OH, OW), inp (NC, H, W) */
void avgpool2d_forward(float *out, const float *inp, int64_t NC, int H, int W, int kernel, int stride, int pad,
                       int count_include_pad);
/* dinp (NC, H, W) += dout (NC, OH, OW) / divisor over each window */
void avgpool2d_backward(float *dinp, const float *dout, int64_t NC, int H, int W, int kernel, int stride, int pad,
                        int count_include_pad);


/* ---- CUDA twins (src/ops/cuda/pool.cu, built by `make CUDA=1`): the NCHW kernels above over device
 * pointers (idx too), on the backend's stream (cu_stream), without synchronising; backward gathers
 * per input element (bitwise deterministic, the CPU's bits). The nChw16c (blocked) kernels are CPU only. */
void maxpool2d_forward_cuda(float *out, int32_t *idx, const float *inp, int64_t NC, int H, int W, int kernel, int stride,
                            int pad);
void maxpool2d_backward_cuda(float *dinp, const float *dout, const int32_t *idx, int64_t NC, int H, int W, int kernel,
                             int stride, int pad);
void avgpool2d_forward_cuda(float *out, const float *inp, int64_t NC, int H, int W, int kernel, int stride, int pad,
                            int count_include_pad);
void avgpool2d_backward_cuda(float *dinp, const float *dout, int64_t NC, int H, int W, int kernel, int stride, int pad,
                             int count_include_pad);

#endif
