/* optim_cuda.h: the CUDA twins of the kernels of src/train/optim.c (adam_kernel, sumsq,
 * clip_grad_coef, clip_grad_scale, ema_kernel; declared in optim.h, which includes this), over
 * device pointers, on the backend's stream (cu_stream), without synchronising; built by `make
 * CUDA=1` (src/ops/cuda/optim.cu), checked by tests/cuda/test_cuda_optim.c against adam_step,
 * clip_grad_norm_sets and ema_update. adam_step, clip_grad_norm and ema_update call them through
 * KERNEL (src/core/device.h) when their sets live on the GPU.
 *
 * Each reproduces the CPU loop's exact arithmetic: the same scalars, the same operation order,
 * every product and sum rounded on its own (__fmul_rn / __fadd_rn: the CPU build, -std=c11,
 * contracts no FMA), IEEE sqrt and division; so given the same inputs, Adam, the clipping scale
 * and the EMA give the CPU's bits, and the gradient norm differs only by the order of its double
 * sum. */
#ifndef ATTNGAN_OPTIM_CUDA_H
#define ATTNGAN_OPTIM_CUDA_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* optim.c:adam_kernel (called by adam_step per weight entry), same parameters: p, m, v, g (n),
 * device. Per element:
 *   gi = wd != 0 ? g + wd * p : g;
 *   m = m * b1 + one_m_b1 * gi;  v = v * b2 + (one_m_b2 * gi) * gi;
 *   denom = sqrtf(v) / bc2_sqrt + eps;  p = p + (-step_size) * (m / denom)
 * with adam_step's host scalars: one_m_b1 = (float)(1 - (double)b1), one_m_b2 likewise,
 * step_size = (float)(lr [* prefix_scale] / bc1) with bc1 = 1 - b1^t in double,
 * bc2_sqrt = (float)sqrt(1 - b2^t) in double. */
void adam_kernel_cuda(float *p, float *m, float *v, const float *g, int64_t n, float b1, float one_m_b1, float b2,
                      float one_m_b2, float step_size, float bc2_sqrt, float eps, float wd);

/* optim.c:clip_grad_norm, its first loop for one tensor: out[0] (device, one double) = sum of
 * (double)x[i] * x[i] over x (n), device. Summed in double in a fixed tree order (the CPU sums in
 * sequence; the terms are exact in double, so the two differ in the last bits of a double). */
void sumsq_cuda(double *out, const float *x, int64_t n);

/* optim.c:clip_grad_norm, between its loops: from sumsq (n doubles, device; one per tensor with a
 * gradient, in the CPU's tensor order) writes total_coef[0] = total, total_coef[1] = coef (device):
 *   norm_k = (float)sqrt(sumsq[k]);  total2 += (double)norm_k * norm_k (k ascending);
 *   total = (float)sqrt(total2);  coef = min(1, (1.0f / (total + 1e-6f)) * max_norm).
 * One thread; n may be 0 (total 0, coef min(1, 1e6 * max_norm)). */
void clip_grad_coef_cuda(float *total_coef, const double *sumsq, int n, float max_norm);

/* optim.c:clip_grad_norm, its last loop for one tensor: g[i] *= coef[0], g (n) and coef device
 * (total_coef + 1 from clip_grad_coef_cuda). */
void clip_grad_scale_cuda(float *g, const float *coef, int64_t n);

/* optim.c:ema_update: ema[i] = ema[i] * keep + take * p[i] over n, device, with keep = decay and
 * take = (float)(1.0 - (double)decay) computed on the host as the CPU does. */
void ema_kernel_cuda(float *ema, const float *p, int64_t n, float decay);

#ifdef __cplusplus
}
#endif

#endif
