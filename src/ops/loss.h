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

/* Kernels. Losses are means; sums are accumulated in double. out () is one float; dout () the
 * incoming gradient of the loss. */
/* out () = mean of (y-1) max(log1p(-p), -100) - y max(log p, -100); p (n), y (n). */
void bce_forward(float *out, const float *p, const float *y, int64_t n);
/* dp (n) += dout (p - y) / max((1-p) p, 1e-12) / n (PyTorch 1.13's formula). */
void bce_backward(float *dp, const float *dout, const float *p, const float *y, int64_t n);
/* out () = mean of (1-y) x + m + log(e^-m + e^(-x-m)), m = max(-x, 0); x (n), y (n). */
void bce_logits_forward(float *out, const float *x, const float *y, int64_t n);
/* dx (n) += (sigmoid(x) - y) dout / n */
void bce_logits_backward(float *dx, const float *dout, const float *x, const float *y, int64_t n);
/* out () = mean over rows of lse[i] - inp[i, t[i]]; lse (N) saved row logsumexp; inp (N, C),
 * targets (N) in [0, C) (checked by the op). */
void cross_entropy_forward(float *out, double *lse, const float *inp, const int64_t *targets, int N, int C);
/* dinp (N, C) += dout (softmax(inp) - onehot(targets)) / N; lse (N) from forward. */
void cross_entropy_backward(float *dinp, const float *dout, const double *lse, const float *inp,
                            const int64_t *targets, int N, int C);


/* ---- CUDA twins (src/ops/cuda/loss.cu, built by `make CUDA=1`): the contracts above over device
 * pointers, on the backend's stream (cu_stream), without synchronising: out () and dout () are
 * one device float, lse (N) device doubles, targets (N) device int64. */
void bce_forward_cuda(float *out, const float *p, const float *y, int64_t n);
void bce_backward_cuda(float *dp, const float *dout, const float *p, const float *y, int64_t n);
void bce_logits_forward_cuda(float *out, const float *x, const float *y, int64_t n);
void bce_logits_backward_cuda(float *dx, const float *dout, const float *x, const float *y, int64_t n);
void cross_entropy_forward_cuda(float *out, double *lse, const float *inp, const int64_t *targets, int N, int C);
void cross_entropy_backward_cuda(float *dinp, const float *dout, const double *lse, const float *inp,
                                 const int64_t *targets, int N, int C);

#endif
