/* diffaug.cu: the CUDA twins of src/ops/diffaug.c (DiffAugment's colour, translation, cutout).
 *
 * The draws p (B DiffAugSample) are HOST memory, as diffaug_draw writes them and op_diffaug keeps
 * its copy on the tape: each call copies them to a device block with cudaMemcpyAsync from pageable
 * memory (the bytes are staged before it returns, so the caller may change p at once; no
 * synchronisation). Images and gradients are device memory.
 *
 * Per sample, the CPU's passes with its formulas and operation order (explicit __fmul_rn /
 * __fadd_rn: the CPU build, -std=c11, contracts no FMA): the per-pixel channel sums in float, one
 * thread per pixel, channel 0 first; the image means in double (one block per sample, a fixed
 * tree order where the CPU sums in sequence: equal to the last bits of a double, so the float
 * mean nearly always has the CPU's bits). */
#include "cuda_ops.h"
#include "launch.cuh"

#define MUL __fmul_rn
#define ADD __fadd_rn
#define SUB __fsub_rn

__device__ static inline int in_cutout_(const DiffAugSample *s, int i, int j) {
    return i >= s->cy0 && i < s->cy1 && j >= s->cx0 && j < s->cx1;
}

/* col (B, C, P) = brightness and saturation of inp, per pixel over the channels */
__global__ static void k_color(float *col, const float *inp, const DiffAugSample *ps, int B, int C, int64_t P) {
    GRID_STRIDE(e, (int64_t)B * P) {
        int64_t b = e / P, q = e % P;
        const DiffAugSample *s = &ps[b];
        const float *x = inp + b * C * P + q;
        float *o = col + b * C * P + q;
        float m = 0.0f;
        for (int c = 0; c < C; c++) m = ADD(m, ADD(x[c * P], s->brightness));
        m /= (float)C;
        for (int c = 0; c < C; c++) o[c * P] = ADD(MUL(SUB(ADD(x[c * P], s->brightness), m), s->saturation), m);
    }
}

/* mean[b] = (float)(sum of v[b] (n floats) in double / n): one block per sample */
__global__ static void k_sample_mean(float *mean, const float *v, int64_t n) {
    __shared__ double red[THREADS];
    const float *x = v + blockIdx.x * n;
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += x[i];
    s = block_sum(s, red);
    if (threadIdx.x == 0) mean[blockIdx.x] = (float)(s / (double)n);
}

/* out = cutout(translate(contrast(col))) */
__global__ static void k_contrast_shift(float *out, const float *col, const float *mean, const DiffAugSample *ps, int B,
                                        int C, int H, int W) {
    int64_t P = (int64_t)H * W, CP = C * P;
    GRID_STRIDE(e, (int64_t)B * CP) {
        int64_t b = e / CP, q = e % P, cbase = e - q;
        int i = (int)(q / W), j = (int)(q % W);
        const DiffAugSample *s = &ps[b];
        int si = i + s->dy, sj = j + s->dx;
        float v = 0.0f;
        if (si >= 0 && si < H && sj >= 0 && sj < W) {
            float m = mean[b];
            v = ADD(MUL(SUB(col[cbase + (int64_t)si * W + sj], m), s->contrast), m);
        }
        out[e] = in_cutout_(s, i, j) ? 0.0f : v;
    }
}

/* g (B, C, P) = the transposed translation and cutout of dout: g at (si, sj) takes dout at
 * (si - dy, sj - dx) when that is inside the image and outside the cutout (0 + it, as the CPU adds
 * it into zeros) */
__global__ static void k_unshift(float *g, const float *dout, const DiffAugSample *ps, int B, int C, int H, int W) {
    int64_t P = (int64_t)H * W, CP = C * P;
    GRID_STRIDE(e, (int64_t)B * CP) {
        int64_t b = e / CP, q = e % P, cbase = e - q;
        int si = (int)(q / W), sj = (int)(q % W);
        const DiffAugSample *s = &ps[b];
        int i = si - s->dy, j = sj - s->dx;
        float v = 0.0f;
        if (i >= 0 && i < H && j >= 0 && j < W && !in_cutout_(s, i, j)) v = 0.0f + dout[cbase + (int64_t)i * W + j];
        g[e] = v;
    }
}

/* dinp (B, C, P) += the saturation adjoint of the contrast adjoint of g, per pixel */
__global__ static void k_color_bwd(float *dinp, const float *g, const float *gmean, const DiffAugSample *ps, int B, int C,
                                   int64_t P) {
    GRID_STRIDE(e, (int64_t)B * P) {
        int64_t b = e / P, q = e % P;
        const DiffAugSample *s = &ps[b];
        const float *x = g + b * C * P + q;
        float *d = dinp + b * C * P + q;
        float gm = gmean[b], k = s->contrast, k1 = 1.0f - s->contrast, sat = s->saturation, sat1 = 1.0f - s->saturation;
        float m = 0.0f;
        for (int c = 0; c < C; c++) m = ADD(m, ADD(MUL(k, x[c * P]), MUL(k1, gm)));
        m /= (float)C;
        for (int c = 0; c < C; c++) {
            float gc = ADD(MUL(k, x[c * P]), MUL(k1, gm));
            d[c * P] = ADD(d[c * P], ADD(MUL(sat, gc), MUL(sat1, m)));
        }
    }
}

/* a device copy of the host draws (freed by the caller after its kernels, on the same stream) */
static DiffAugSample *draws_to_device(const DiffAugSample *p, int B) {
    DiffAugSample *d = (DiffAugSample *)cu_alloc((size_t)B * sizeof *d);
    CU_CHECK(cudaMemcpyAsync(d, p, (size_t)B * sizeof *d, cudaMemcpyHostToDevice, (cudaStream_t)cu_stream()));
    return d;
}

extern "C" {
void diffaug_forward_cuda(float *out, const float *inp, const DiffAugSample *p, int B, int C, int H, int W) {
    int64_t P = (int64_t)H * W, n = (int64_t)B * C * P;
    if (n <= 0) return;
    DiffAugSample *dp = draws_to_device(p, B);
    float *col = (float *)cu_alloc((size_t)n * sizeof(float)), *mean = (float *)cu_alloc((size_t)B * sizeof(float));
    LAUNCH(k_color, (int64_t)B * P, col, inp, dp, B, C, P);
    k_sample_mean<<<(unsigned)B, THREADS, 0, (cudaStream_t)cu_stream()>>>(mean, col, C * P);
    CU_CHECK(cudaGetLastError());
    LAUNCH(k_contrast_shift, n, out, col, mean, dp, B, C, H, W);
    cu_free(col), cu_free(mean), cu_free(dp); /* one stream: a later user runs after these kernels */
}

void diffaug_backward_cuda(float *dinp, const float *dout, const DiffAugSample *p, int B, int C, int H, int W) {
    int64_t P = (int64_t)H * W, n = (int64_t)B * C * P;
    if (!dinp || n <= 0) return;
    DiffAugSample *dp = draws_to_device(p, B);
    float *g = (float *)cu_alloc((size_t)n * sizeof(float)), *gm = (float *)cu_alloc((size_t)B * sizeof(float));
    LAUNCH(k_unshift, n, g, dout, dp, B, C, H, W);
    k_sample_mean<<<(unsigned)B, THREADS, 0, (cudaStream_t)cu_stream()>>>(gm, g, C * P);
    CU_CHECK(cudaGetLastError());
    LAUNCH(k_color_bwd, (int64_t)B * P, dinp, g, gm, dp, B, C, P);
    cu_free(g), cu_free(gm), cu_free(dp);
}
}
