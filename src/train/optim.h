/* optim.h: Adam exactly as PyTorch's torch.optim.Adam (1.13, single-tensor path), gradient-norm
 * clipping as torch.nn.utils.clip_grad_norm_, and the EMA of a parameter set (AttnGAN's
 * avg_param_G). All work on ParamSets, whose values and gradients are contiguous. */
#ifndef ATTNGAN_OPTIM_H
#define ATTNGAN_OPTIM_H

#include "../core/core.h"

typedef struct Adam {
    ParamSet *ps;
    float lr, beta1, beta2, eps, weight_decay;
    int64_t step;          /* steps taken (PyTorch's state["step"]) */
    float *m, *v;          /* exp_avg, exp_avg_sq: ps->n_values floats each, zero at start */
    char scale_prefix[64]; /* weights whose names start with this learn at lr * prefix_scale */
    float prefix_scale;
    int device;            /* DeviceKind of m and v: their set's (adam_to_device) */
} Adam;

void adam_init(Adam *a, ParamSet *ps, float lr, float beta1, float beta2, float eps);
void adam_free(Adam *a);
/* Moves m and v to device dev (the CPU included), beside the set's parameters (paramset_to_device);
 * checkpoints read and write them on the CPU. */
void adam_to_device(Adam *a, int dev);
/* Weights whose names start with prefix (e.g. "zsl_g.") learn at lr * scale (a parameter group
 * with its own learning rate, as PyTorch's param_groups). */
void adam_set_prefix_scale(Adam *a, const char *prefix, float scale);
/* One step over every weight of the set that requires grad (frozen weights are skipped, as
 * PyTorch skips parameters without a gradient). In a data-parallel run the gradients are first
 * averaged over the ranks and rank 0's buffers sent to all (core/dist.h; no-ops in one process):
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
 * with the scalar factors computed in double and applied in float, as PyTorch. */
void adam_step(Adam *a);

/* torch.nn.utils.clip_grad_norm_(params, max_norm) over the gradients of n tensors:
 * total = ||(||g_k||_2)_k||_2, coef = min(1, max_norm * (1/(total + 1e-6))), every gradient
 * multiplied by coef (even when coef is 1). Returns total. */
float clip_grad_norm(Tensor *const *ts, int n, float max_norm);
/* The same over every weight of the given sets that requires grad (averaged over the ranks first
 * in a data-parallel run, as adam_step). */
float clip_grad_norm_sets(ParamSet *const *sets, int n_sets, float max_norm);

/* ema = decay * ema + (1 - decay) * p for every weight (buffers are not averaged). */
void ema_update(ParamSet *ema, const ParamSet *ps, float decay);

/* ---- kernels (KERNEL dispatch, device.h; the CUDA twins in optim_cuda.h) */
/* p, m, v, g (n): one Adam update with adam_step's scalars */
void adam_kernel(float *p, float *m, float *v, const float *g, int64_t n, float b1, float one_m_b1, float b2,
                 float one_m_b2, float step_size, float bc2_sqrt, float eps, float wd);
/* out[0] = sum of x^2 (n) in double; total_coef (2) = the total norm and the clipping factor from
 * n per-tensor sums; g (n) *= coef[0] */
void sumsq(double *out, const float *x, int64_t n);
void clip_grad_coef(float *total_coef, const double *sq, int n, float max_norm);
void clip_grad_scale(float *g, const float *coef, int64_t n);
/* ema (n) = ema * decay + (1 - decay) * p */
void ema_kernel(float *ema, const float *p, int64_t n, float decay);

#include "optim_cuda.h"

#endif
