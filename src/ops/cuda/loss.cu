/* loss.cu: the CUDA twins of src/ops/loss.c: nn.BCELoss (logs clamped at -100), nn.BCEWithLogitsLoss
 * and F.cross_entropy with -inf logits, means, forward and backward.
 *
 * The loss (one float) and the incoming gradient dout (one float) are device memory, so a loss
 * never leaves the device. Forward sums run in double, as the CPU's: per-block partials over a
 * fixed split that depends only on n (block_sum's fixed tree), then one block adds them; cross
 * entropy's row logsumexp is one block per row. No float atomics: bitwise the same run to run. */
#include "cuda_ops.h"
#include "launch.cuh"

#define BCE_EPS 1e-12f
#define BCE_LOG_MIN -100.0
#define SUM_MAX_BLOCKS 1024

static unsigned sum_blocks(int64_t n) {
    int64_t b = (n + 16 * THREADS - 1) / (16 * THREADS); /* about 16 elements per thread */
    return (unsigned)(b < 1 ? 1 : (b > SUM_MAX_BLOCKS ? SUM_MAX_BLOCKS : b));
}

/* the terms the CPU kernels sum, in double */
struct BceTerm {
    const float *p, *y;
    __device__ double operator()(int64_t i) const {
        /* clamp at -100 as PyTorch, letting NaN through */
        double lp = log((double)p[i]), l1p = log1p(-(double)p[i]);
        lp = lp < BCE_LOG_MIN ? BCE_LOG_MIN : lp;
        l1p = l1p < BCE_LOG_MIN ? BCE_LOG_MIN : l1p;
        return ((double)y[i] - 1.0) * l1p - (double)y[i] * lp;
    }
};

struct BceLogitsTerm {
    const float *x, *y;
    __device__ double operator()(int64_t i) const {
        double xi = x[i], m = fmax(-xi, 0.0);
        return (1.0 - (double)y[i]) * xi + m + log(exp(-m) + exp(-xi - m));
    }
};

struct CeTerm {
    const double *lse;
    const float *inp;
    const int64_t *targets;
    int C;
    __device__ double operator()(int64_t i) const { return lse[i] - inp[i * C + targets[i]]; }
};

/* part[b] = sum in double of f(i) over block b's elements */
template <typename F> __global__ static void k_term_partial(double *part, F f, int64_t n) {
    __shared__ double red[THREADS];
    double acc = 0.0;
    GRID_STRIDE(i, n) acc += f(i);
    acc = block_sum(acc, red);
    if (threadIdx.x == 0) part[blockIdx.x] = acc;
}

__global__ static void k_mean_finish(float *out, const double *part, int nb, double n) {
    __shared__ double red[THREADS];
    double acc = 0.0;
    for (int i = threadIdx.x; i < nb; i += blockDim.x) acc += part[i];
    acc = block_sum(acc, red);
    if (threadIdx.x == 0) out[0] = (float)(acc / n);
}

/* out[0] = (float)(sum_i f(i) in double / n) */
template <typename F> static void mean_of(float *out, F f, int64_t n) {
    cudaStream_t s = (cudaStream_t)cu_stream();
    unsigned nb = sum_blocks(n);
    double *part = (double *)cu_alloc(nb * sizeof(double));
    k_term_partial<<<nb, THREADS, 0, s>>>(part, f, n);
    CU_CHECK(cudaGetLastError());
    k_mean_finish<<<1, THREADS, 0, s>>>(out, part, (int)nb, (double)n);
    CU_CHECK(cudaGetLastError());
    cu_free(part); /* one stream: a later user of the block runs after these kernels */
}

__global__ static void k_bce_bwd(float *dp, const float *dout, const float *p, const float *y, int64_t n) {
    float g = dout[0], fn = (float)n;
    GRID_STRIDE(i, n) {
        float den = fmaxf((1.0f - p[i]) * p[i], BCE_EPS);
        dp[i] += g * (p[i] - y[i]) / den / fn;
    }
}

__global__ static void k_bce_logits_bwd(float *dx, const float *dout, const float *x, const float *y, int64_t n) {
    float g = dout[0], fn = (float)n;
    GRID_STRIDE(i, n) {
        float sig = 1.0f / (1.0f + expf(-x[i]));
        dx[i] += (sig - y[i]) * g / fn;
    }
}

/* threads per row: the smallest power of two >= C, 32 at least, THREADS at most */
static unsigned row_threads(int C) {
    unsigned t = 32;
    while (t < THREADS && (int)t < C) t *= 2;
    return t;
}

/* the CPU's running maximum: a NaN wins (and stays), else the larger */
__device__ static inline float nan_max(float m, float v) { return (isnan(m) || !(v > m || isnan(v))) ? m : v; }

/* lse[i] = logsumexp of row i in double (-inf entries add 0; an all -inf row gives -inf): block i */
__global__ static void k_row_lse(double *lse, const float *inp, int C) {
    __shared__ float redf[THREADS];
    __shared__ double red[THREADS];
    const float *row = inp + (int64_t)blockIdx.x * C;
    float mx = -INFINITY;
    for (int c = threadIdx.x; c < C; c += blockDim.x) mx = nan_max(mx, row[c]);
    redf[threadIdx.x] = mx;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) redf[threadIdx.x] = nan_max(redf[threadIdx.x], redf[threadIdx.x + s]);
        __syncthreads();
    }
    mx = redf[0];
    if (mx == -INFINITY) {
        if (threadIdx.x == 0) lse[blockIdx.x] = -INFINITY;
        return;
    }
    double s = 0.0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) s += exp((double)row[c] - mx);
    s = block_sum(s, red);
    if (threadIdx.x == 0) lse[blockIdx.x] = mx + log(s);
}

/* dinp (N, C) += gn exp(inp - lse), then -= gn at the target, gn = dout / N */
__global__ static void k_ce_bwd(float *dinp, const float *dout, const double *lse, const float *inp,
                                const int64_t *targets, int N, int C) {
    float gn = dout[0] / (float)N;
    GRID_STRIDE(e, (int64_t)N * C) {
        int64_t i = e / C, c = e - i * C;
        float d = dinp[e] + gn * (float)exp((double)inp[e] - lse[i]); /* exp(-inf) = 0 */
        if (c == targets[i]) d -= gn;
        dinp[e] = d;
    }
}

extern "C" {
void bce_forward_cuda(float *out, const float *p, const float *y, int64_t n) { mean_of(out, BceTerm{p, y}, n); }

void bce_backward_cuda(float *dp, const float *dout, const float *p, const float *y, int64_t n) {
    if (dp) LAUNCH(k_bce_bwd, n, dp, dout, p, y, n);
}

void bce_logits_forward_cuda(float *out, const float *x, const float *y, int64_t n) {
    mean_of(out, BceLogitsTerm{x, y}, n);
}

void bce_logits_backward_cuda(float *dx, const float *dout, const float *x, const float *y, int64_t n) {
    if (dx) LAUNCH(k_bce_logits_bwd, n, dx, dout, x, y, n);
}

void cross_entropy_forward_cuda(float *out, double *lse, const float *inp, const int64_t *targets, int N, int C) {
    if (N > 0 && C > 0) k_row_lse<<<(unsigned)N, row_threads(C), 0, (cudaStream_t)cu_stream()>>>(lse, inp, C);
    CU_CHECK(cudaGetLastError());
    mean_of(out, CeTerm{lse, inp, targets, C}, (int64_t)N);
}

void cross_entropy_backward_cuda(float *dinp, const float *dout, const double *lse, const float *inp,
                                 const int64_t *targets, int N, int C) {
    if (dinp) LAUNCH(k_ce_bwd, (int64_t)N * C, dinp, dout, lse, inp, targets, N, C);
}
}
