/* optim.cu: the CUDA twins of src/train/optim.c's loops (Adam, gradient-norm clipping, EMA);
 * declared in src/train/optim_cuda.h, which says which loop each mirrors and its arithmetic. */
#include "cuda_ops.h"
#include "launch.cuh"
#include "../../train/optim_cuda.h"

#define MUL __fmul_rn
#define ADD __fadd_rn

__global__ static void k_adam(float *p, float *m, float *v, const float *g, int64_t n, float b1, float one_m_b1, float b2,
                              float one_m_b2, float step_size, float bc2_sqrt, float eps, float wd) {
    GRID_STRIDE(i, n) {
        float pi = p[i];
        float gi = wd != 0.0f ? ADD(g[i], MUL(wd, pi)) : g[i];
        float mi = ADD(MUL(m[i], b1), MUL(one_m_b1, gi));
        float vi = ADD(MUL(v[i], b2), MUL(MUL(one_m_b2, gi), gi));
        m[i] = mi;
        v[i] = vi;
        float denom = ADD(__fdiv_rn(sqrtf(vi), bc2_sqrt), eps);
        p[i] = ADD(pi, MUL(-step_size, __fdiv_rn(mi, denom)));
    }
}

/* Blocks of the first pass of sumsq: a function of n only, so the summation order is fixed. */
#define SUMSQ_MAX_BLOCKS 1024

/* part[block] = this block's share (grid-stride) of sum (double)x^2 */
__global__ static void k_sumsq_part(double *part, const float *x, int64_t n) {
    __shared__ double red[THREADS];
    double s = 0.0;
    GRID_STRIDE(i, n) s += (double)x[i] * x[i];
    s = block_sum(s, red);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

/* out[0] = sum of part (np), one block */
__global__ static void k_sumsq_final(double *out, const double *part, int np) {
    __shared__ double red[THREADS];
    double s = 0.0;
    for (int i = threadIdx.x; i < np; i += blockDim.x) s += part[i];
    s = block_sum(s, red);
    if (threadIdx.x == 0) out[0] = s;
}

__global__ static void k_clip_coef(float *total_coef, const double *sumsq, int n, float max_norm) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    double total2 = 0.0;
    for (int k = 0; k < n; k++) {
        float norm_k = (float)sqrt(sumsq[k]);
        total2 = __dadd_rn(total2, __dmul_rn((double)norm_k, (double)norm_k));
    }
    float total = (float)sqrt(total2);
    float coef = MUL(__fdiv_rn(1.0f, ADD(total, 1e-6f)), max_norm);
    if (coef > 1.0f) coef = 1.0f;
    total_coef[0] = total;
    total_coef[1] = coef;
}

__global__ static void k_clip_scale(float *g, const float *coef, int64_t n) {
    float k = coef[0];
    GRID_STRIDE(i, n) g[i] = MUL(g[i], k);
}

__global__ static void k_ema(float *e, const float *p, int64_t n, float keep, float take) {
    GRID_STRIDE(i, n) e[i] = ADD(MUL(e[i], keep), MUL(take, p[i]));
}

extern "C" {
void adam_kernel_cuda(float *p, float *m, float *v, const float *g, int64_t n, float b1, float one_m_b1, float b2,
                      float one_m_b2, float step_size, float bc2_sqrt, float eps, float wd) {
    LAUNCH(k_adam, n, p, m, v, g, n, b1, one_m_b1, b2, one_m_b2, step_size, bc2_sqrt, eps, wd);
}

void sumsq_cuda(double *out, const float *x, int64_t n) {
    cudaStream_t st = (cudaStream_t)cu_stream();
    unsigned nb = blocks_for(n);
    if (nb > SUMSQ_MAX_BLOCKS) nb = SUMSQ_MAX_BLOCKS;
    double *part = (double *)cu_alloc((size_t)nb * sizeof(double));
    k_sumsq_part<<<nb, THREADS, 0, st>>>(part, x, n); /* n == 0: one block writes 0 */
    CU_CHECK(cudaGetLastError());
    k_sumsq_final<<<1, THREADS, 0, st>>>(out, part, (int)nb);
    CU_CHECK(cudaGetLastError());
    cu_free(part); /* one stream: a later user of the block runs after these kernels */
}

void clip_grad_coef_cuda(float *total_coef, const double *sumsq, int n, float max_norm) {
    k_clip_coef<<<1, 32, 0, (cudaStream_t)cu_stream()>>>(total_coef, sumsq, n, max_norm);
    CU_CHECK(cudaGetLastError());
}

void clip_grad_scale_cuda(float *g, const float *coef, int64_t n) { LAUNCH(k_clip_scale, n, g, coef, n); }

void ema_kernel_cuda(float *ema, const float *p, int64_t n, float decay) {
    float keep = decay, take = (float)(1.0 - (double)decay);
    LAUNCH(k_ema, n, ema, p, n, keep, take);
}
}
