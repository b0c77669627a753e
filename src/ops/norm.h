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

#endif
