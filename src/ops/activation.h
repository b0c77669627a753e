/* activation.h: element-wise activations: relu, leaky relu, tanh, sigmoid, and GLU.
 * Tape-level ops return a new tensor on the tape and record their backward; see src/ops/README.md
 * for the op contract. */
#ifndef ATTNGAN_OPS_ACTIVATION_H
#define ATTNGAN_OPS_ACTIVATION_H

#include "../core/core.h"

/* derivative at exactly 0: relu 0, leaky relu `slope` (as PyTorch) */
Tensor *op_relu(Tape *tp, Tensor *x);
Tensor *op_leaky_relu(Tape *tp, Tensor *x, float slope);
Tensor *op_tanh(Tape *tp, Tensor *x);
Tensor *op_sigmoid(Tape *tp, Tensor *x);
/* GLU along `dim` (size 2C): first half * sigmoid(second half) -> size C along dim. */
Tensor *op_glu(Tape *tp, Tensor *x, int dim);
/* relu's gate as a differentiable op: out = g where h > 0, else 0 (h and g of one shape). It is
 * relu's backward written forward (PyTorch's threshold_backward): the gradient flows to g only, as
 * in PyTorch's double backward through a relu (the gate is piecewise constant in h). Input
 * gradients of a ReLU network built from it can themselves be differentiated: the gradient
 * penalty of a WGAN-GP critic (src/nn/zsl.c). */
Tensor *op_relu_gate(Tape *tp, Tensor *h, Tensor *g);

/* Kernels. All element-wise buffers are (n); NaN propagates as in PyTorch.
 * relu/tanh/sigmoid backward read the saved output `out`, leaky relu backward the input. */
void relu_forward(float *out, const float *inp, int64_t n);
void relu_backward(float *dinp, const float *dout, const float *out, int64_t n);
void leaky_relu_forward(float *out, const float *inp, float slope, int64_t n);
void leaky_relu_backward(float *dinp, const float *dout, const float *inp, float slope, int64_t n);
/* out (n) = h > 0 ? g : 0 (a NaN h gates to 0, as PyTorch's threshold_backward); dg (n) += h > 0 ? dout : 0 */
void relu_gate_forward(float *out, const float *g, const float *h, int64_t n);
void relu_gate_backward(float *dg, const float *dout, const float *h, int64_t n);
void tanh_forward(float *out, const float *inp, int64_t n);
void tanh_backward(float *dinp, const float *dout, const float *out, int64_t n);
void sigmoid_forward(float *out, const float *inp, int64_t n);
void sigmoid_backward(float *dinp, const float *dout, const float *out, int64_t n);
/* GLU over a tensor viewed as (outer, 2C, inner): out (outer, C, inner), inp (outer, 2C, inner),
 * out = a * sigmoid(b) with a = inp[:, :C], b = inp[:, C:]. */
void glu_forward(float *out, const float *inp, int64_t outer, int C, int64_t inner);
/* dinp (outer, 2C, inner) += d/dinp; dout (outer, C, inner), inp (outer, 2C, inner) */
void glu_backward(float *dinp, const float *dout, const float *inp, int64_t outer, int C, int64_t inner);


/* ---- CUDA twins (src/ops/cuda/activation.cu, built by `make CUDA=1`): the contracts above over device
 * pointers, on the backend's stream (cu_stream), without synchronising. */
void relu_forward_cuda(float *out, const float *inp, int64_t n);
void relu_backward_cuda(float *dinp, const float *dout, const float *out, int64_t n);
void leaky_relu_forward_cuda(float *out, const float *inp, float slope, int64_t n);
void leaky_relu_backward_cuda(float *dinp, const float *dout, const float *inp, float slope, int64_t n);
void relu_gate_forward_cuda(float *out, const float *g, const float *h, int64_t n);
void relu_gate_backward_cuda(float *dg, const float *dout, const float *h, int64_t n);
void tanh_forward_cuda(float *out, const float *inp, int64_t n);
void tanh_backward_cuda(float *dinp, const float *dout, const float *out, int64_t n);
void sigmoid_forward_cuda(float *out, const float *inp, int64_t n);
void sigmoid_backward_cuda(float *dinp, const float *dout, const float *out, int64_t n);
void glu_forward_cuda(float *out, const float *inp, int64_t outer, int C, int64_t inner);
void glu_backward_cuda(float *dinp, const float *dout, const float *inp, int64_t outer, int C, int64_t inner);

#endif
