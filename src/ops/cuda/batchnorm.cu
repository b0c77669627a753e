/* batchnorm.cu: the CUDA twins of src/ops/batchnorm.c: per-channel reductions in double (one
 * block per channel, as the CPU sums each channel in double), element-wise passes per (n, c). */
#include "cuda_ops.h"
#include "launch.cuh"

/* block c: mean and biased variance of channel c over (N, S) */
__global__ static void k_bn_stats(float *mean, float *var, const float *inp, int N, int C, int S) {
    __shared__ double red[THREADS];
    int c = blockIdx.x;
    int64_t M = (int64_t)N * S;
    double sum = 0.0;
    for (int64_t e = threadIdx.x; e < M; e += blockDim.x) sum += inp[((e / S) * C + c) * (int64_t)S + e % S];
    float m = (float)(block_sum(sum, red) / (double)M);
    double sq = 0.0;
    for (int64_t e = threadIdx.x; e < M; e += blockDim.x) {
        float d = inp[((e / S) * C + c) * (int64_t)S + e % S] - m;
        sq += d * d;
    }
    double v = block_sum(sq, red);
    if (threadIdx.x == 0) {
        mean[c] = m;
        var[c] = (float)(v / (double)M);
    }
}

__global__ static void k_bn_fwd(float *out, const float *inp, const float *mean, const float *var,
                                const float *gamma, const float *beta, int N, int C, int S, float eps) {
    GRID_STRIDE(e, (int64_t)N * C * S) {
        int c = (int)((e / S) % C);
        float r = (float)(1.0 / sqrt((double)var[c] + (double)eps));
        float alpha = r * (gamma ? gamma[c] : 1.0f);
        float shift = (beta ? beta[c] : 0.0f) - mean[c] * alpha;
        out[e] = inp[e] * alpha + shift;
    }
}

__global__ static void k_bn_rstd(float *rstd, const float *var, int C, float eps) {
    GRID_STRIDE(c, C) rstd[c] = (float)(1.0 / sqrt((double)var[c] + (double)eps));
}

/* block c: sum(dy) and dot(x - mean, dy), then the per-channel updates */
__global__ static void k_bn_bwd_sums(float *dgamma, float *dbeta, double *sums, const float *dout, const float *inp,
                                     const float *mean, const float *rstd, int N, int C, int S) {
    __shared__ double red[THREADS];
    int c = blockIdx.x;
    int64_t M = (int64_t)N * S;
    float m = mean[c];
    double s = 0.0, d = 0.0;
    for (int64_t e = threadIdx.x; e < M; e += blockDim.x) {
        int64_t off = ((e / S) * C + c) * (int64_t)S + e % S;
        float dy = dout[off];
        s += dy;
        d += (double)(inp[off] - m) * dy;
    }
    s = block_sum(s, red);
    d = block_sum(d, red);
    if (threadIdx.x == 0) {
        sums[2 * c] = s;
        sums[2 * c + 1] = d;
        if (dgamma) dgamma[c] += (float)(d * rstd[c]);
        if (dbeta) dbeta[c] += (float)s;
    }
}

__global__ static void k_bn_bwd_dx(float *dinp, const float *dout, const double *sums, const float *mean, const float *rstd,
                                   const float *inp, const float *gamma, int N, int C, int S, int train) {
    int64_t M = (int64_t)N * S;
    GRID_STRIDE(e, (int64_t)N * C * S) {
        int c = (int)((e / S) % C);
        float r = rstd[c], w = gamma ? gamma[c] : 1.0f;
        float k = train ? (float)sums[2 * c + 1] * r * r / (float)M : 0.0f;
        float gm = train ? (float)(sums[2 * c] / (double)M) : 0.0f;
        dinp[e] += (dout[e] - gm - (inp[e] - mean[c]) * k) * (r * w);
    }
}

/* batchnorm_backward_sums: dinp through the statistics of Mg elements (the sums `all`) */
__global__ static void k_bn_bwd_dx_sums(float *dinp, const float *dout, const double *all, int64_t Mg, const float *mean,
                                        const float *rstd, const float *inp, const float *gamma, int N, int C, int S) {
    GRID_STRIDE(e, (int64_t)N * C * S) {
        int c = (int)((e / S) % C);
        float r = rstd[c], w = gamma ? gamma[c] : 1.0f;
        float k = (float)all[2 * c + 1] * r * r / (float)Mg;
        float gm = (float)(all[2 * c] / (double)Mg);
        dinp[e] += (dout[e] - gm - (inp[e] - mean[c]) * k) * (r * w);
    }
}

/* dgamma, dbeta += from this batch's sums */
__global__ static void k_bn_bwd_params(float *dgamma, float *dbeta, const double *mine, const float *rstd, int C) {
    GRID_STRIDE(c, (int64_t)C) {
        if (dgamma) dgamma[c] += (float)(mine[2 * c + 1] * rstd[c]);
        if (dbeta) dbeta[c] += (float)mine[2 * c];
    }
}

/* batchnorm_update_running's arithmetic: the mean in float, the variance in double with the
 * float product (1 - momentum) * running_var added, then rounded to float */
__global__ static void k_bn_update_running(float *running_mean, float *running_var, const float *mean, const float *var,
                                           int C, double unbias, float momentum) {
    GRID_STRIDE(c, (int64_t)C) {
        float keep = 1.0f - momentum;
        if (running_mean) running_mean[c] = __fadd_rn(__fmul_rn(momentum, mean[c]), __fmul_rn(keep, running_mean[c]));
        if (running_var)
            running_var[c] = (float)__dadd_rn(__dmul_rn((double)momentum, __dmul_rn((double)var[c], unbias)),
                                              (double)__fmul_rn(keep, running_var[c]));
    }
}

extern "C" {
void batchnorm_stats_cuda(float *mean, float *var, const float *inp, int N, int C, int S) {
    if (C > 0) k_bn_stats<<<(unsigned)C, THREADS, 0, (cudaStream_t)cu_stream()>>>(mean, var, inp, N, C, S);
    CU_CHECK(cudaGetLastError());
}

void batchnorm_forward_cuda(float *out, float *rstd, const float *inp, const float *mean, const float *var,
                            const float *gamma, const float *beta, int N, int C, int S, float eps) {
    LAUNCH(k_bn_fwd, (int64_t)N * C * S, out, inp, mean, var, gamma, beta, N, C, S, eps);
    if (rstd) LAUNCH(k_bn_rstd, C, rstd, var, C, eps);
}

void batchnorm_backward_cuda(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *mean,
                             const float *rstd, const float *inp, const float *gamma, int N, int C, int S, int train) {
    if (C <= 0) return;
    double *sums = (double *)cu_alloc((size_t)2 * C * sizeof(double));
    k_bn_bwd_sums<<<(unsigned)C, THREADS, 0, (cudaStream_t)cu_stream()>>>(dgamma, dbeta, sums, dout, inp, mean, rstd, N, C, S);
    CU_CHECK(cudaGetLastError());
    if (dinp) LAUNCH(k_bn_bwd_dx, (int64_t)N * C * S, dinp, dout, sums, mean, rstd, inp, gamma, N, C, S, train);
    cu_free(sums); /* one stream: a later user of the block runs after these kernels */
}

void batchnorm_sums_cuda(double *sums, const float *dout, const float *inp, const float *mean, int N, int C, int S) {
    /* k_bn_bwd_sums without the parameter gradients (its rstd is then unread) */
    if (C > 0) k_bn_bwd_sums<<<(unsigned)C, THREADS, 0, (cudaStream_t)cu_stream()>>>(NULL, NULL, sums, dout, inp, mean, mean, N, C, S);
    CU_CHECK(cudaGetLastError());
}

void batchnorm_backward_sums_cuda(float *dinp, float *dgamma, float *dbeta, const double *mine, const double *all, int64_t Mg,
                                  const float *dout, const float *mean, const float *rstd, const float *inp, const float *gamma,
                                  int N, int C, int S) {
    if (C <= 0) return;
    if (dgamma || dbeta) LAUNCH(k_bn_bwd_params, (int64_t)C, dgamma, dbeta, mine, rstd, C);
    if (dinp) LAUNCH(k_bn_bwd_dx_sums, (int64_t)N * C * S, dinp, dout, all, Mg, mean, rstd, inp, gamma, N, C, S);
}

void batchnorm_update_running_cuda(float *running_mean, float *running_var, const float *mean, const float *var, int C,
                                   int64_t M, float momentum) {
    double unbias = M > 1 ? (double)M / (double)(M - 1) : 1.0;
    if (running_mean || running_var)
        LAUNCH(k_bn_update_running, (int64_t)C, running_mean, running_var, mean, var, C, unbias, momentum);
}
}
