/* norm.h: L2 norm along a dimension and cosine similarity (AttnGAN's form).
 * Tape-level ops return a new tensor on the tape and record their backward; see src/ops/README.md
 * for the op contract. */
#ifndef ATTNGAN_OPS_NORM_H
#define ATTNGAN_OPS_NORM_H

#include "../core/core.h"

/* torch.norm(x, 2, dim, keepdim); the gradient at a zero vector is 0, as PyTorch. */
Tensor *op_l2norm(Tape *tp, Tensor *x, int dim, int keepdim);
/* sum(a*b, dim) / max(||a|| * ||b||, eps), dim removed (AttnGAN cosine_similarity; same as
 * F.cosine_similarity). */
Tensor *op_cosine_similarity(Tape *tp, Tensor *a, Tensor *b, int dim, float eps);

/* ---- Kernels. A reduction over one dim views the input as (OUTER, D, INNER) and the result as
 * (OUTER, INNER); sums run in double. Backward adds (+=) into the gradients it is given and
 * skips NULL ones. */

/* out (OUTER, INNER) = sqrt(sum_d inp (OUTER, D, INNER)^2) */
void l2norm_forward(float *out, const float *inp, int64_t OUTER, int64_t D, int64_t INNER);
/* dinp (OUTER, D, INNER) += inp * (dout (OUTER, INNER) / out (OUTER, INNER)), 0 where out == 0 */
void l2norm_backward(float *dinp, const float *dout, const float *out, const float *inp, int64_t OUTER, int64_t D,
                     int64_t INNER);

/* out (OUTER, INNER) = w12 / max(w1 * w2, eps) with w12 = sum_d a*b, w1 = ||a||, w2 = ||b|| over D
 * of a, b (OUTER, D, INNER). The saved w12, w1, w2 (OUTER, INNER) are written unless NULL. */
void cosine_forward(float *out, float *w12, float *w1, float *w2, const float *a, const float *b, int64_t OUTER,
                    int64_t D, int64_t INNER, float eps);
/* da, db (OUTER, D, INNER) += gradients of out given dout (OUTER, INNER) and the saved w12, w1, w2;
 * where w1 * w2 < eps the denominator is the constant eps. */
void cosine_backward(float *da, float *db, const float *dout, const float *w12, const float *w1, const float *w2,
                     const float *a, const float *b, int64_t OUTER, int64_t D, int64_t INNER, float eps);


/* ---- CUDA twins (src/ops/cuda/norm.cu, built by `make CUDA=1`): the contracts above over device
 * pointers, on the backend's stream (cu_stream), without synchronising. */
void l2norm_forward_cuda(float *out, const float *inp, int64_t OUTER, int64_t D, int64_t INNER);
void l2norm_backward_cuda(float *dinp, const float *dout, const float *out, const float *inp, int64_t OUTER, int64_t D,
                          int64_t INNER);
void cosine_forward_cuda(float *out, float *w12, float *w1, float *w2, const float *a, const float *b, int64_t OUTER,
                         int64_t D, int64_t INNER, float eps);
void cosine_backward_cuda(float *da, float *db, const float *dout, const float *w12, const float *w1, const float *w2,
                          const float *a, const float *b, int64_t OUTER, int64_t D, int64_t INNER, float eps);

#endif
