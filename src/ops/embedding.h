/* embedding.h: embedding lookup (PyTorch nn.Embedding without padding_idx: dense gradient).
 * Tape-level ops return a new tensor on the tape and record their backward; see src/ops/README.md
 * for the op contract. */
#ifndef ATTNGAN_OPS_EMBEDDING_H
#define ATTNGAN_OPS_EMBEDDING_H

#include "../core/core.h"

/* ids (B, T) int64 in [0, V), w (V, D) -> (B, T, D). Out-of-range ids are a fatal error. */
Tensor *op_embedding(Tape *tp, const int64_t *ids, int B, int T, Tensor *w);

/* Kernels. out (N, D) = weight[ids] with ids (N) in [0, V) (checked by the op), weight (V, D). */
void embedding_forward(float *out, const int64_t *ids, const float *weight, int64_t N, int D);
/* dweight (V, D) += scatter-add of dout (N, D) by ids (N); repeated ids accumulate in id order. */
void embedding_backward(float *dweight, const float *dout, const int64_t *ids, int64_t N, int D);


/* ---- CUDA twins (src/ops/cuda/embedding.cu, built by `make CUDA=1`): the contracts above over device
 * pointers (ids too: device int64), on the backend's stream (cu_stream), without synchronising.
 * Backward: one thread per column, ids in order (no atomics, bitwise deterministic, the CPU's bits). */
void embedding_forward_cuda(float *out, const int64_t *ids, const float *weight, int64_t N, int D);
void embedding_backward_cuda(float *dweight, const float *dout, const int64_t *ids, int64_t N, int D);

#endif
