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
} Adam;

void adam_init(Adam *a, ParamSet *ps, float lr, float beta1, float beta2, float eps);
void adam_free(Adam *a);
/* Weights whose names start with prefix (e.g. "zsl_g.") learn at lr * scale (a parameter group
 * with its own learning rate, as PyTorch's param_groups). */
void adam_set_prefix_scale(Adam *a, const char *prefix, float scale);
/* One step over every weight of the set that requires grad (frozen weights are skipped, as
 * PyTorch skips parameters without a gradient):
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
 * with the scalar factors computed in double and applied in float, as PyTorch. */
void adam_step(Adam *a);

/* torch.nn.utils.clip_grad_norm_(params, max_norm) over the gradients of n tensors:
 * total = ||(||g_k||_2)_k||_2, coef = min(1, max_norm * (1/(total + 1e-6))), every gradient
 * multiplied by coef (even when coef is 1). Returns total. */
float clip_grad_norm(Tensor *const *ts, int n, float max_norm);
/* The same over every weight of the given sets that requires grad. */
float clip_grad_norm_sets(ParamSet *const *sets, int n_sets, float max_norm);

/* ema = decay * ema + (1 - decay) * p for every weight (buffers are not averaged). */
void ema_update(ParamSet *ema, const ParamSet *ps, float decay);

#endif
