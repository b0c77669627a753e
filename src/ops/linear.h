/* linear.h: fully connected layer, y = x W^T + b (PyTorch nn.Linear).
 * Tape-level ops return a new tensor on the tape and record their backward; see src/ops/README.md
 * for the op contract. */
#ifndef ATTNGAN_OPS_LINEAR_H
#define ATTNGAN_OPS_LINEAR_H

#include "../core/core.h"

/* x (..., IN), w (OUT, IN), b (OUT) or NULL -> (..., OUT) */
Tensor *op_linear(Tape *tp, Tensor *x, Tensor *w, Tensor *b);

/* Kernels. out (N, OUT), inp (N, IN), weight (OUT, IN), bias (OUT) or NULL. */
void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int IN, int OUT);
void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int IN, int OUT);


/* ---- CUDA twins (src/ops/cuda/linear.cu, built by `make CUDA=1`): the contracts above over device
 * pointers, on the backend's stream (cu_stream), without synchronising. */
void linear_forward_cuda(float *out, const float *inp, const float *weight, const float *bias, int N, int I, int O);
void linear_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, int N, int I, int O);

#endif
