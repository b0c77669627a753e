/* embedding.h: embedding lookup (PyTorch nn.Embedding without padding_idx: dense gradient).
 * Tape-level ops return a new tensor on the tape and record their backward; see src/ops/README.md
 * for the op contract. */
#ifndef ATTNGAN_OPS_EMBEDDING_H
#define ATTNGAN_OPS_EMBEDDING_H

#include "../core/core.h"

/* ids (B, T) int64 in [0, V), w (V, D) -> (B, T, D). Out-of-range ids are a fatal error. */
Tensor *op_embedding(Tape *tp, const int64_t *ids, int B, int T, Tensor *w);

#endif
