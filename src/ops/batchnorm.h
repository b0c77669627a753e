/* batchnorm.h: batch normalisation over dim 1 (PyTorch BatchNorm1d/2d), train and eval modes.
 * Tape-level ops return a new tensor on the tape and record their backward; see src/ops/README.md
 * for the op contract. */
#ifndef ATTNGAN_OPS_BATCHNORM_H
#define ATTNGAN_OPS_BATCHNORM_H

#include "../core/core.h"

/* x (N, C) or (N, C, L) or (N, C, H, W); gamma, beta (C) or NULL (affine=False).
 * train != 0: normalise with the batch statistics (biased variance) and, when running_mean and
 *   running_var are given, update them: rm = (1-m) rm + m mean, rv = (1-m) rv + m var * M/(M-1)
 *   (M = elements per channel), and ++*num_batches_tracked when it is not NULL.
 *   The backward goes through the batch mean and variance.
 * train == 0: y = (x - rm) / sqrt(rv + eps) * gamma + beta; running stats required. */
Tensor *op_batchnorm(Tape *tp, Tensor *x, Tensor *gamma, Tensor *beta, Tensor *running_mean,
                     Tensor *running_var, int64_t *num_batches_tracked, int train, float momentum, float eps);

#endif
