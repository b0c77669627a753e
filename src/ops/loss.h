/* loss.h: losses: BCE on probabilities, BCE with logits, cross entropy with -inf logits (means).
 * Tape-level ops return a new tensor on the tape and record their backward; see src/ops/README.md
 * for the op contract. */
#ifndef ATTNGAN_OPS_LOSS_H
#define ATTNGAN_OPS_LOSS_H

#include "../core/core.h"

/* nn.BCELoss: -mean(y log p + (1-y) log(1-p)), each log clamped at -100; y is a constant
 * tensor of the shape of p. */
Tensor *op_bce(Tape *tp, Tensor *p, const Tensor *y);
/* nn.BCEWithLogitsLoss, mean, in the stable form. */
Tensor *op_bce_logits(Tape *tp, Tensor *x, const Tensor *y);
/* F.cross_entropy(x, t), mean over N rows; x (N, C) may hold -inf (those classes get
 * probability 0); targets t[i] in [0, C) must have finite logits. */
Tensor *op_cross_entropy(Tape *tp, Tensor *x, const int64_t *targets);

#endif
