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

#endif
