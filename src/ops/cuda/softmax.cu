/* softmax.cu: the CUDA twins of src/ops/softmax.c: softmax over the last dimension with a byte
 * mask and -inf entries (masked: probability 0, no gradient; a row with nothing unmasked gives
 * zeros), and masked_fill.
 *
 * One block per row (a power of two of threads, 32 to 256, from C only); the row maximum and the
 * sums (in double, as the CPU kernel) are block reductions in a fixed tree order, so a result is
 * bitwise the same run to run. */
#include "cuda_ops.h"
#include "launch.cuh"

/* threads per row: the smallest power of two >= C, 32 at least, THREADS at most */
static unsigned row_threads(int C) {
    unsigned t = 32;
    while (t < THREADS && (int)t < C) t *= 2;
    return t;
}

/* the CPU's running maximum: a NaN wins (and stays), else the larger */
__device__ static inline float nan_max(float m, float v) { return (isnan(m) || !(v > m || isnan(v))) ? m : v; }

/* block-wide nan_max (blockDim.x a power of two <= THREADS); every thread gets the result */
__device__ static float block_nan_max(float v, float *red) {
    red[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) red[threadIdx.x] = nan_max(red[threadIdx.x], red[threadIdx.x + s]);
        __syncthreads();
    }
    float r = red[0];
    __syncthreads();
    return r;
}

__device__ static inline int sm_masked(const float *row, const uint8_t *mrow, int c) {
    return (mrow && mrow[c]) || row[c] == -INFINITY;
}

__global__ static void k_softmax_fwd(float *out, const float *inp, const uint8_t *mask, int C) {
    __shared__ float redf[THREADS];
    __shared__ double red[THREADS];
    int64_t r = blockIdx.x;
    const float *x = inp + r * C;
    const uint8_t *m = mask ? mask + r * C : NULL;
    float *y = out + r * C;
    float mx = -INFINITY;
    for (int c = threadIdx.x; c < C; c += blockDim.x)
        if (!sm_masked(x, m, c)) mx = nan_max(mx, x[c]);
    mx = block_nan_max(mx, redf);
    if (mx == -INFINITY) { /* nothing unmasked (an unmasked entry is never -inf) */
        for (int c = threadIdx.x; c < C; c += blockDim.x) y[c] = 0.0f;
        return;
    }
    double sum = 0.0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float e = sm_masked(x, m, c) ? 0.0f : expf(x[c] - mx);
        y[c] = e;
        sum += e;
    }
    float inv = (float)(1.0 / block_sum(sum, red));
    for (int c = threadIdx.x; c < C; c += blockDim.x) y[c] *= inv;
}

__global__ static void k_softmax_bwd(float *dinp, const float *dout, const float *out, int C) {
    __shared__ double red[THREADS];
    int64_t r = blockIdx.x;
    const float *y = out + r * C, *g = dout + r * C;
    float *dx = dinp + r * C;
    double dot = 0.0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) dot += (double)y[c] * g[c];
    float d = (float)block_sum(dot, red);
    for (int c = threadIdx.x; c < C; c += blockDim.x) dx[c] += y[c] * (g[c] - d);
}

__global__ static void k_masked_fill_fwd(float *out, const float *inp, const uint8_t *mask, float value, int64_t n) {
    GRID_STRIDE(i, n) out[i] = mask[i] ? value : inp[i];
}

__global__ static void k_masked_fill_bwd(float *dinp, const float *dout, const uint8_t *mask, int64_t n) {
    GRID_STRIDE(i, n) if (!mask[i]) dinp[i] += dout[i];
}

extern "C" {
void softmax_forward_cuda(float *out, const float *inp, const uint8_t *mask, int64_t N, int C) {
    if (N > 0 && C > 0) k_softmax_fwd<<<(unsigned)N, row_threads(C), 0, (cudaStream_t)cu_stream()>>>(out, inp, mask, C);
    CU_CHECK(cudaGetLastError());
}

void softmax_backward_cuda(float *dinp, const float *dout, const float *out, int64_t N, int C) {
    if (dinp && N > 0 && C > 0)
        k_softmax_bwd<<<(unsigned)N, row_threads(C), 0, (cudaStream_t)cu_stream()>>>(dinp, dout, out, C);
    CU_CHECK(cudaGetLastError());
}

void masked_fill_forward_cuda(float *out, const float *inp, const uint8_t *mask, float value, int64_t n) {
    LAUNCH(k_masked_fill_fwd, n, out, inp, mask, value, n);
}

void masked_fill_backward_cuda(float *dinp, const float *dout, const uint8_t *mask, int64_t n) {
    if (dinp) LAUNCH(k_masked_fill_bwd, n, dinp, dout, mask, n);
}
}
