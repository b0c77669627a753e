/* softmax.h: softmax over the last dimension with -inf masking, and masked_fill.
 * Tape-level ops return a new tensor on the tape and record their backward; see src/ops/README.md
 * for the op contract. */
#ifndef ATTNGAN_OPS_SOFTMAX_H
#define ATTNGAN_OPS_SOFTMAX_H

#include "../core/core.h"

/* mask: NULL or x->n bytes, 1 = masked (treated as -inf: output 0, no gradient). Entries of x
 * that are already -inf are masked as well. A row masked entirely gives zeros. */
Tensor *op_softmax(Tape *tp, Tensor *x, const uint8_t *mask);
/* out = mask ? value : x (mask: x->n bytes); no gradient flows through masked entries. */
Tensor *op_masked_fill(Tape *tp, Tensor *x, const uint8_t *mask, float value);

/* Kernels. out (N, C), inp (N, C), mask (N, C) bytes or NULL (1 = masked). A row with no
 * unmasked entry gives zeros (PyTorch gives NaN there). */
void softmax_forward(float *out, const float *inp, const uint8_t *mask, int64_t N, int C);
/* dinp (N, C) += out * (dout - sum_c out * dout); out (N, C) is the saved forward output, dout (N, C). */
void softmax_backward(float *dinp, const float *dout, const float *out, int64_t N, int C);
/* out (n) = mask ? value : inp (n); mask (n) bytes. */
void masked_fill_forward(float *out, const float *inp, const uint8_t *mask, float value, int64_t n);
/* dinp (n) += mask ? 0 : dout (n). */
void masked_fill_backward(float *dinp, const float *dout, const uint8_t *mask, int64_t n);


/* ---- CUDA twins (src/ops/cuda/softmax.cu, built by `make CUDA=1`): the contracts above over device
 * pointers, on the backend's stream (cu_stream), without synchronising; the masks are device bytes. */
void softmax_forward_cuda(float *out, const float *inp, const uint8_t *mask, int64_t N, int C);
void softmax_backward_cuda(float *dinp, const float *dout, const float *out, int64_t N, int C);
void masked_fill_forward_cuda(float *out, const float *inp, const uint8_t *mask, float value, int64_t n);
void masked_fill_backward_cuda(float *dinp, const float *dout, const uint8_t *mask, int64_t n);

#endif
