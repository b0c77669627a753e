/* dropout.h: inverted dropout (train mode), with the mask drawn from an Rng or given.
 * Tape-level ops return a new tensor on the tape and record their backward; see src/ops/README.md
 * for the op contract. */
#ifndef ATTNGAN_OPS_DROPOUT_H
#define ATTNGAN_OPS_DROPOUT_H

#include "../core/core.h"

/* Keeps each element with probability 1-p and scales it by 1/(1-p); p = 0 returns x itself.
 * If mask_out is not NULL it receives the multiplier tensor (values 0 or 1/(1-p)). */
Tensor *op_dropout(Tape *tp, Tensor *x, float p, Rng *rng, Tensor **mask_out);
/* out = x * mask with a given multiplier (e.g. a mask from a PyTorch dump); mask gets no gradient. */
Tensor *op_dropout_mask(Tape *tp, Tensor *x, const Tensor *mask);

/* Kernels. mask (n) = uniform (n) >= p ? 1/(1-p) : 0 (p = 1 gives zeros). */
void dropout_make_mask(float *mask, const float *uniform, float p, int64_t n);
/* out (n) = inp (n) * mask (n) */
void dropout_forward(float *out, const float *inp, const float *mask, int64_t n);
/* dinp (n) += dout (n) * mask (n) */
void dropout_backward(float *dinp, const float *dout, const float *mask, int64_t n);


/* ---- CUDA twins (src/ops/cuda/dropout.cu, built by `make CUDA=1`): the contracts above over device
 * pointers, on the backend's stream (cu_stream), without synchronising. The uniforms are the
 * caller's (device memory; mask may be uniform itself). */
void dropout_make_mask_cuda(float *mask, const float *uniform, float p, int64_t n);
void dropout_forward_cuda(float *out, const float *inp, const float *mask, int64_t n);
void dropout_backward_cuda(float *dinp, const float *dout, const float *mask, int64_t n);

#endif
