/* test_cuda_pool.c: the CUDA twins of src/ops/pool.c's NCHW kernels (max and average pooling,
 * forward and backward) against the CPU kernels on seeded random inputs (make test-cuda; built
 * only with CUDA=1). The twins visit each window and add each gradient contribution in the CPU's
 * order, so the bound is TOL_EW everywhere (the bits are expected to match) and the argmax indices
 * must be equal. Backward gradients start from random values (the += contract); a NULL gradient
 * must be skipped. The nChw16c kernels are CPU only (tests/test_pool.c). Without a CUDA device it
 * skips visibly. */
#include "cuda_test.h"
#include "../../src/ops/pool.h"
#include "../../src/ops/cuda/cuda_ops.h"

static int out_size(int in, int k, int s, int p) { return (in + 2 * p - k) / s + 1; }

/* values on a 1/4 grid in [-2, 2): many ties inside a window */
static void quantise(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(int)(x[i] * 4.0f) / 4.0f;
}

static void maxpool_case(int64_t NC, int H, int W, int k, int s, int p, int ties) {
    int OH = out_size(H, k, s, p), OW = out_size(W, k, s, p);
    int64_t nx = NC * H * W, ny = NC * OH * OW;
    float *x = rnd(nx, -2, 2, 101), *dy = rnd(ny, -1, 1, 102), *dx = rnd(nx, -1, 1, 103);
    if (ties) quantise(x, nx);
    float *y = xmalloc((size_t)ny * sizeof(float));
    int32_t *idx = xmalloc((size_t)ny * sizeof(int32_t)), *gidx = xmalloc((size_t)ny * sizeof(int32_t));
    float *dX = up(x, nx), *dDy = up(dy, ny), *dDx = up(dx, nx);
    float *dY = cu_alloc((size_t)ny * sizeof(float)), *dY2 = cu_alloc((size_t)ny * sizeof(float));
    int32_t *dIdx = cu_alloc((size_t)ny * sizeof(int32_t));
    maxpool2d_forward(y, idx, x, NC, H, W, k, s, p);
    maxpool2d_backward(dx, dy, idx, NC, H, W, k, s, p);
    maxpool2d_forward_cuda(dY, dIdx, dX, NC, H, W, k, s, p);
    maxpool2d_forward_cuda(dY2, NULL, dX, NC, H, W, k, s, p); /* no argmax wanted */
    maxpool2d_backward_cuda(dDx, dDy, dIdx, NC, H, W, k, s, p);
    maxpool2d_backward_cuda(NULL, dDy, dIdx, NC, H, W, k, s, p); /* a NULL gradient is skipped */
    cu_download(gidx, dIdx, (size_t)ny * sizeof(int32_t));
    int64_t bad = 0;
    for (int64_t i = 0; i < ny; i++) bad += gidx[i] != idx[i];
    char w[128];
    snprintf(w, sizeof w, "maxpool %dx%d s%d p%d (%lld,%d,%d)%s", k, k, s, p, (long long)NC, H, W, ties ? " ties" : "");
    printf("  %-40s argmax mismatches %lld of %lld\n", w, (long long)bad, (long long)ny);
    EXPECT(bad == 0, "%s: %lld argmax indices differ from the CPU's", w, (long long)bad);
    char v[160];
    snprintf(v, sizeof v, "%s fwd", w), check(v, dY, y, ny, TOL_EW);
    snprintf(v, sizeof v, "%s fwd (no idx)", w), check(v, dY2, y, ny, TOL_EW);
    snprintf(v, sizeof v, "%s dx (added)", w), check(v, dDx, dx, nx, TOL_EW);
    cu_free(dX), cu_free(dDy), cu_free(dIdx);
    free(x), free(dy), free(dx), free(y), free(idx), free(gidx);
}

static void avgpool_case(int64_t NC, int H, int W, int k, int s, int p, int cip) {
    int OH = out_size(H, k, s, p), OW = out_size(W, k, s, p);
    int64_t nx = NC * H * W, ny = NC * OH * OW;
    float *x = rnd(nx, -2, 2, 111), *dy = rnd(ny, -1, 1, 112), *dx = rnd(nx, -1, 1, 113);
    float *y = xmalloc((size_t)ny * sizeof(float));
    float *dX = up(x, nx), *dDy = up(dy, ny), *dDx = up(dx, nx), *dY = cu_alloc((size_t)ny * sizeof(float));
    avgpool2d_forward(y, x, NC, H, W, k, s, p, cip);
    avgpool2d_backward(dx, dy, NC, H, W, k, s, p, cip);
    avgpool2d_forward_cuda(dY, dX, NC, H, W, k, s, p, cip);
    avgpool2d_backward_cuda(dDx, dDy, NC, H, W, k, s, p, cip);
    avgpool2d_backward_cuda(NULL, dDy, NC, H, W, k, s, p, cip); /* skipped */
    char w[128], v[160];
    snprintf(w, sizeof w, "avgpool %dx%d s%d p%d cip%d (%lld,%d,%d)", k, k, s, p, cip, (long long)NC, H, W);
    snprintf(v, sizeof v, "%s fwd", w), check(v, dY, y, ny, TOL_EW);
    snprintf(v, sizeof v, "%s dx (added)", w), check(v, dDx, dx, nx, TOL_EW);
    cu_free(dX), cu_free(dDy);
    free(x), free(dy), free(dx), free(y);
}

int main(void) {
    if (!cuda_test_begin("test_cuda_pool")) return test_end();
    /* Inception's 3x3 stride-2 unpadded max (the CPU's k3s2 path), then the generic row path */
    maxpool_case(2 * 64, 147, 147, 3, 2, 0, 0);
    maxpool_case(6, 17, 19, 3, 2, 0, 1);
    maxpool_case(5, 13, 11, 3, 1, 1, 1);
    maxpool_case(7, 16, 15, 2, 2, 0, 0);
    maxpool_case(3, 9, 10, 5, 3, 2, 1);
    maxpool_case(4, 8, 8, 4, 2, 1, 0);
    maxpool_case(3, 1, 7, 3, 2, 1, 0);
    /* Inception's 3x3/1/1 averages (the CPU's flat path), the global 8x8 and 17x17 pools, odd ones */
    avgpool_case(2 * 192, 35, 35, 3, 1, 1, 1);
    avgpool_case(6, 17, 17, 3, 1, 1, 0);
    avgpool_case(5, 9, 12, 5, 1, 2, 1);
    avgpool_case(2 * 2048, 8, 8, 8, 8, 0, 1);
    avgpool_case(2 * 768, 17, 17, 17, 17, 0, 1);
    avgpool_case(3, 13, 11, 3, 2, 1, 0);
    avgpool_case(3, 13, 11, 3, 2, 1, 1);
    avgpool_case(4, 14, 15, 4, 3, 2, 1);
    avgpool_case(4, 14, 15, 4, 3, 2, 0);
    avgpool_case(2, 7, 5, 2, 2, 0, 0);
    CuStats st = cu_stats();
    printf("  device memory: peak live %.1f MiB, %zu cudaMalloc calls\n", st.peak_live / 1048576.0, st.n_malloc);
    EXPECT(st.live == 0, "every device block was freed (%zu bytes live)", st.live);
    return test_end();
}
