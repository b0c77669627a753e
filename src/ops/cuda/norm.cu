/* norm.cu: the CUDA twins of src/ops/norm.c: the L2 norm along a dim and AttnGAN's cosine
 * similarity, forward and backward, over the (OUTER, D, INNER) view.
 *
 * Forward sums run in double, as the CPU's: one thread per output (a serial loop over D, reads
 * coalesced along INNER) or, for a long D with a short INNER or few outputs, one block per output
 * (block_sum's fixed tree). The choice depends only on the shapes and no float atomics are used,
 * so results are bitwise the same run to run. Backward is element-wise over the input. */
#include "cuda_ops.h"
#include "launch.cuh"

/* one block per output where D is long and a thread per output would be slow or uncoalesced */
static int block_per_output(int64_t OUTER, int64_t D, int64_t INNER) {
    return D >= 128 && (INNER < 32 || OUTER * INNER < 4096);
}

/* ------------------------------------------------------------------ l2norm */

__global__ static void k_l2norm_thread(float *out, const float *inp, int64_t OUTER, int64_t D, int64_t INNER) {
    GRID_STRIDE(k, OUTER * INNER) {
        int64_t o = k / INNER, i = k - o * INNER;
        const float *x = inp + o * D * INNER + i;
        double acc = 0.0;
        for (int64_t d = 0; d < D; d++) acc += (double)x[d * INNER] * x[d * INNER];
        out[k] = (float)sqrt(acc);
    }
}

__global__ static void k_l2norm_block(float *out, const float *inp, int64_t D, int64_t INNER) {
    __shared__ double red[THREADS];
    int64_t k = blockIdx.x, o = k / INNER, i = k - o * INNER;
    const float *x = inp + o * D * INNER + i;
    double acc = 0.0;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) acc += (double)x[d * INNER] * x[d * INNER];
    acc = block_sum(acc, red);
    if (threadIdx.x == 0) out[k] = (float)sqrt(acc);
}

__global__ static void k_l2norm_bwd(float *dinp, const float *dout, const float *out, const float *inp, int64_t D,
                                    int64_t INNER, int64_t n) {
    GRID_STRIDE(e, n) {
        int64_t r = e / INNER, i = e - r * INNER, k = (r / D) * INNER + i;
        float s = out[k] == 0.0f ? 0.0f : dout[k] / out[k];
        dinp[e] += inp[e] * s;
    }
}

/* ------------------------------------------------------------------ cosine */

/* the clamped denominator max(w1 * w2, eps), formed in float as PyTorch does */
__device__ static inline float cosine_den(float w1, float w2, float eps) {
    float p = w1 * w2;
    return p < eps ? eps : p;
}

__device__ static inline void cosine_store(float *out, float *w12, float *w1, float *w2, int64_t k, double sab,
                                           double saa, double sbb, float eps) {
    float f12 = (float)sab, f1 = (float)sqrt(saa), f2 = (float)sqrt(sbb);
    out[k] = f12 / cosine_den(f1, f2, eps);
    if (w12) w12[k] = f12;
    if (w1) w1[k] = f1;
    if (w2) w2[k] = f2;
}

__global__ static void k_cosine_thread(float *out, float *w12, float *w1, float *w2, const float *a, const float *b,
                                       int64_t OUTER, int64_t D, int64_t INNER, float eps) {
    GRID_STRIDE(k, OUTER * INNER) {
        int64_t o = k / INNER, i = k - o * INNER, base = o * D * INNER + i;
        double sab = 0.0, saa = 0.0, sbb = 0.0;
        for (int64_t d = 0; d < D; d++) {
            double u = a[base + d * INNER], v = b[base + d * INNER];
            sab += u * v;
            saa += u * u;
            sbb += v * v;
        }
        cosine_store(out, w12, w1, w2, k, sab, saa, sbb, eps);
    }
}

__global__ static void k_cosine_block(float *out, float *w12, float *w1, float *w2, const float *a, const float *b,
                                      int64_t D, int64_t INNER, float eps) {
    __shared__ double red[THREADS];
    int64_t k = blockIdx.x, o = k / INNER, i = k - o * INNER, base = o * D * INNER + i;
    double sab = 0.0, saa = 0.0, sbb = 0.0;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
        double u = a[base + d * INNER], v = b[base + d * INNER];
        sab += u * v;
        saa += u * u;
        sbb += v * v;
    }
    sab = block_sum(sab, red);
    saa = block_sum(saa, red);
    sbb = block_sum(sbb, red);
    if (threadIdx.x == 0) cosine_store(out, w12, w1, w2, k, sab, saa, sbb, eps);
}

/* d out / d a = cb * b + ca * a and d out / d b = cb * a + cc * b, all times dout (norm.c's cosine_coef) */
__global__ static void k_cosine_bwd(float *da, float *db, const float *dout, const float *w12, const float *w1,
                                    const float *w2, const float *a, const float *b, int64_t D, int64_t INNER,
                                    int64_t n, float eps) {
    GRID_STRIDE(e, n) {
        int64_t r = e / INNER, i = e - r * INNER, k = (r / D) * INNER + i;
        float g = dout[k], f12 = w12[k], f1 = w1[k], f2 = w2[k];
        float den = cosine_den(f1, f2, eps);
        /* denominator gradient, zero where the clamp holds it at eps (PyTorch passes at p >= eps) */
        float gden = f1 * f2 >= eps ? -g * ((f12 / den) / den) : 0.0f;
        float cb = g / den, ca = 0.0f, cc = 0.0f;
        if (f1 > 0.0f) ca = gden * f2 / f1; /* norm gradient x / ||x||, 0 at a zero vector */
        if (f2 > 0.0f) cc = gden * f1 / f2;
        float x = a[e], y = b[e];
        if (da) da[e] += cb * y + ca * x;
        if (db) db[e] += cb * x + cc * y;
    }
}

extern "C" {
void l2norm_forward_cuda(float *out, const float *inp, int64_t OUTER, int64_t D, int64_t INNER) {
    int64_t nout = OUTER * INNER;
    if (nout <= 0) return;
    if (block_per_output(OUTER, D, INNER)) {
        k_l2norm_block<<<(unsigned)nout, THREADS, 0, (cudaStream_t)cu_stream()>>>(out, inp, D, INNER);
        CU_CHECK(cudaGetLastError());
    } else {
        LAUNCH(k_l2norm_thread, nout, out, inp, OUTER, D, INNER);
    }
}

void l2norm_backward_cuda(float *dinp, const float *dout, const float *out, const float *inp, int64_t OUTER, int64_t D,
                          int64_t INNER) {
    if (dinp) LAUNCH(k_l2norm_bwd, OUTER * D * INNER, dinp, dout, out, inp, D, INNER, OUTER * D * INNER);
}

void cosine_forward_cuda(float *out, float *w12, float *w1, float *w2, const float *a, const float *b, int64_t OUTER,
                         int64_t D, int64_t INNER, float eps) {
    int64_t nout = OUTER * INNER;
    if (nout <= 0) return;
    if (block_per_output(OUTER, D, INNER)) {
        k_cosine_block<<<(unsigned)nout, THREADS, 0, (cudaStream_t)cu_stream()>>>(out, w12, w1, w2, a, b, D, INNER, eps);
        CU_CHECK(cudaGetLastError());
    } else {
        LAUNCH(k_cosine_thread, nout, out, w12, w1, w2, a, b, OUTER, D, INNER, eps);
    }
}

void cosine_backward_cuda(float *da, float *db, const float *dout, const float *w12, const float *w1, const float *w2,
                          const float *a, const float *b, int64_t OUTER, int64_t D, int64_t INNER, float eps) {
    if (!da && !db) return;
    LAUNCH(k_cosine_bwd, OUTER * D * INNER, da, db, dout, w12, w1, w2, a, b, D, INNER, OUTER * D * INNER, eps);
}
}
