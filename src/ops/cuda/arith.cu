/* arith.cu and softmax: the CUDA twins of scale, exp (src/ops/arith.c) and softmax (src/ops/softmax.c). */
#include "cuda_ops.h"
#include "launch.cuh"

__global__ static void k_scale_fwd(float *out, const float *inp, float s, int64_t n) { GRID_STRIDE(i, n) out[i] = s * inp[i]; }
__global__ static void k_scale_bwd(float *dinp, const float *dout, float s, int64_t n) { GRID_STRIDE(i, n) dinp[i] += s * dout[i]; }
__global__ static void k_exp_fwd(float *out, const float *inp, int64_t n) { GRID_STRIDE(i, n) out[i] = expf(inp[i]); }
__global__ static void k_exp_bwd(float *dinp, const float *dout, const float *out, int64_t n) {
    GRID_STRIDE(i, n) dinp[i] += dout[i] * out[i];
}

/* one block per row: max, sum of exp, normalise (the CPU kernel's order of operations) */
__global__ static void k_softmax_fwd(float *out, const float *inp, int C) {
    __shared__ float red[THREADS];
    const float *x = inp + (int64_t)blockIdx.x * C;
    float *y = out + (int64_t)blockIdx.x * C;
    float m = -INFINITY;
    for (int c = threadIdx.x; c < C; c += blockDim.x) m = fmaxf(m, x[c]);
    red[threadIdx.x] = m;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) red[threadIdx.x] = fmaxf(red[threadIdx.x], red[threadIdx.x + s]);
        __syncthreads();
    }
    m = red[0];
    __syncthreads();
    float sum = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float e = expf(x[c] - m);
        y[c] = e;
        sum += e;
    }
    float inv = 1.0f / block_sum(sum, red);
    for (int c = threadIdx.x; c < C; c += blockDim.x) y[c] *= inv;
}

__global__ static void k_softmax_bwd(float *dinp, const float *dout, const float *out, int C) {
    __shared__ float red[THREADS];
    const float *y = out + (int64_t)blockIdx.x * C, *g = dout + (int64_t)blockIdx.x * C;
    float *dx = dinp + (int64_t)blockIdx.x * C;
    float dot = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) dot += y[c] * g[c];
    float d = block_sum(dot, red);
    for (int c = threadIdx.x; c < C; c += blockDim.x) dx[c] += y[c] * (g[c] - d);
}

extern "C" {
void scale_forward_cuda(float *out, const float *inp, float s, int64_t n) { LAUNCH(k_scale_fwd, n, out, inp, s, n); }
void scale_backward_cuda(float *dinp, const float *dout, float s, int64_t n) {
    if (dinp) LAUNCH(k_scale_bwd, n, dinp, dout, s, n);
}
void exp_forward_cuda(float *out, const float *inp, int64_t n) { LAUNCH(k_exp_fwd, n, out, inp, n); }
void exp_backward_cuda(float *dinp, const float *dout, const float *out, int64_t n) {
    if (dinp) LAUNCH(k_exp_bwd, n, dinp, dout, out, n);
}
void softmax_forward_cuda(float *out, const float *inp, int64_t N, int C) {
    if (N > 0) k_softmax_fwd<<<(unsigned)N, THREADS, 0, (cudaStream_t)cu_stream()>>>(out, inp, C);
    CU_CHECK(cudaGetLastError());
}
void softmax_backward_cuda(float *dinp, const float *dout, const float *out, int64_t N, int C) {
    if (dinp && N > 0) k_softmax_bwd<<<(unsigned)N, THREADS, 0, (cudaStream_t)cu_stream()>>>(dinp, dout, out, C);
    CU_CHECK(cudaGetLastError());
}
}
