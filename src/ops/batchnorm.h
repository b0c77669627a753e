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
/* Synchronised batch statistics (PyTorch's SyncBatchNorm; EXTRA.SYNC_BN) for the data-parallel
 * ranks (core/dist.h): while on, a train-mode op_batchnorm normalises with the mean and variance of
 * the ranks' batches together (their per-channel sums allreduced), updates the running statistics
 * with them (M = all ranks' elements), and its backward takes dx through them (the sums of dy and
 * (x - mean) dy allreduced); dgamma and dbeta stay this rank's, as the optimizer averages them. A
 * no-op in one process. Process-wide; the training programs set it. */
void batchnorm_set_sync(int on);
int batchnorm_get_sync(void);

/* Kernels. Every x-shaped buffer is (N, C, S) with S the product of the spatial dims (1 for (N, C)). */
/* mean (C), var (C) <- the batch mean and biased variance of inp (N, C, S) per channel (double sums). */
void batchnorm_stats(float *mean, float *var, const float *inp, int N, int C, int S);
/* running_mean (C), running_var (C) <- (1-m) * running + m * batch, the variance made unbiased with
 * M/(M-1); mean, var (C) from batchnorm_stats, M = N * S elements per channel. */
void batchnorm_update_running(float *running_mean, float *running_var, const float *mean, const float *var, int C,
                              int64_t M, float momentum);
/* out (N, C, S) = (inp - mean) * rstd * gamma + beta; rstd (C) <- 1 / sqrt(var + eps) (saved for backward);
 * inp (N, C, S); mean, var (C): batch or running statistics; gamma, beta (C) or NULL. */
/* alpha, shift (C) <- batchnorm_forward's per-channel factors (out = x * alpha + shift), rstd (C)
 * or NULL <- 1 / sqrt(var + eps); gamma / beta NULL mean 1 / 0. */
void batchnorm_factors(float *alpha, float *shift, float *rstd, const float *mean, const float *var, const float *gamma,
                       const float *beta, int C, float eps);
void batchnorm_forward(float *out, float *rstd, const float *inp, const float *mean, const float *var,
                       const float *gamma, const float *beta, int N, int C, int S, float eps);
/* The terms probe of `attngan parity` (its cancellation-aware gate, src/app/parity.c): when set,
 * batchnorm_backward also gives, for the dbeta it adds to, the per-channel sums of |dout| over
 * (N, S): the absolute terms of that reduction. One caller at a time (parity is single-threaded
 * outside the kernels); NULL (the default) costs nothing. */
typedef void (*BnTermsProbe)(const float *dbeta, const double *abs_terms, int C);
extern BnTermsProbe batchnorm_terms_probe;
/* dinp (N, C, S), dgamma (C), dbeta (C) += gradients (each skipped when NULL); dout (N, C, S);
 * mean, rstd (C) as used by the forward; inp (N, C, S); gamma (C) or NULL.
 * train != 0: through the batch mean and variance; train == 0: the per-channel affine map only. */
void batchnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *mean,
                        const float *rstd, const float *inp, const float *gamma, int N, int C, int S, int train);
/* sums (2C, double) <- per channel c: sums[2c] = sum(dout), sums[2c+1] = dot(inp - mean, dout). */
void batchnorm_sums(double *sums, const float *dout, const float *inp, const float *mean, int N, int C, int S);
/* The train-mode backward with given sums: dgamma, dbeta (each skipped when NULL) += from `mine`
 * (batchnorm_sums of this batch); dinp += through the statistics of Mg elements whose sums are
 * `all` (several ranks' batches: SyncBatchNorm). With all = mine and Mg = N * S it is
 * batchnorm_backward's train mode. */
void batchnorm_backward_sums(float *dinp, float *dgamma, float *dbeta, const double *mine, const double *all, int64_t Mg,
                             const float *dout, const float *mean, const float *rstd, const float *inp, const float *gamma,
                             int N, int C, int S);


/* ---- CUDA twins (src/ops/cuda/batchnorm.cu, built by `make CUDA=1`): the contracts above over device
 * pointers, on the backend's stream (cu_stream), without synchronising. */
void batchnorm_stats_cuda(float *mean, float *var, const float *inp, int N, int C, int S);
void batchnorm_forward_cuda(float *out, float *rstd, const float *inp, const float *mean, const float *var,
                            const float *gamma, const float *beta, int N, int C, int S, float eps);
void batchnorm_backward_cuda(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *mean,
                             const float *rstd, const float *inp, const float *gamma, int N, int C, int S, int train);
void batchnorm_update_running_cuda(float *running_mean, float *running_var, const float *mean, const float *var, int C,
                                   int64_t M, float momentum);
void batchnorm_sums_cuda(double *sums, const float *dout, const float *inp, const float *mean, int N, int C, int S);
void batchnorm_backward_sums_cuda(float *dinp, float *dgamma, float *dbeta, const double *mine, const double *all, int64_t Mg,
                                  const float *dout, const float *mean, const float *rstd, const float *inp, const float *gamma,
                                  int N, int C, int S);

#endif
