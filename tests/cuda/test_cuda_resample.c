/* test_cuda_resample.c: the CUDA twins of src/ops/resample.c (nearest x2 upsampling, bilinear
 * resizing with align_corners False and True, forward and backward) against the CPU kernels on
 * seeded random inputs (make test-cuda; built only with CUDA=1). The twins compute the taps and
 * the fused multiply-adds of the CPU kernels and add each gradient contribution in the CPU's
 * order, so the bound is TOL_EW (the bits are expected to match). Shapes include the networks':
 * G's 64 -> 128 and 128 -> 256 upsampling, the Inception trunk's 299 px resize of 64/128/256 px
 * images (both corner modes), odd up/down sizes, one axis kept, the identity and a 1x1 output.
 * Backward gradients start from random values (the += contract); a NULL gradient is skipped.
 * Without a CUDA device it skips visibly. */
#include "cuda_test.h"
#include "../../src/ops/resample.h"
#include "../../src/ops/cuda/cuda_ops.h"

static void nearest_case(int64_t NC, int H, int W) {
    int64_t nx = NC * H * W, ny = 4 * nx;
    float *x = rnd(nx, -2, 2, 201), *dy = rnd(ny, -1, 1, 202), *dx = rnd(nx, -1, 1, 203);
    float *y = xmalloc((size_t)ny * sizeof(float));
    float *dX = up(x, nx), *dDy = up(dy, ny), *dDx = up(dx, nx), *dY = cu_alloc((size_t)ny * sizeof(float));
    upsample_nearest2x_forward(y, x, NC, H, W);
    upsample_nearest2x_backward(dx, dy, NC, H, W);
    upsample_nearest2x_forward_cuda(dY, dX, NC, H, W);
    upsample_nearest2x_backward_cuda(dDx, dDy, NC, H, W);
    upsample_nearest2x_backward_cuda(NULL, dDy, NC, H, W); /* skipped */
    char w[128];
    snprintf(w, sizeof w, "upsample_nearest2x (%lld,%d,%d) fwd", (long long)NC, H, W), check(w, dY, y, ny, TOL_EW);
    snprintf(w, sizeof w, "upsample_nearest2x (%lld,%d,%d) dx (added)", (long long)NC, H, W), check(w, dDx, dx, nx, TOL_EW);
    cu_free(dX), cu_free(dDy);
    free(x), free(dy), free(dx), free(y);
}

/* ac < 0: the plain resize_bilinear_{forward,backward} entry points (align_corners False) */
static void bilinear_case(int64_t NC, int H, int W, int OH, int OW, int ac) {
    int64_t nx = NC * H * W, ny = NC * OH * OW;
    float *x = rnd(nx, -2, 2, 211), *dy = rnd(ny, -1, 1, 212), *dx = rnd(nx, -1, 1, 213);
    float *y = xmalloc((size_t)ny * sizeof(float));
    float *dX = up(x, nx), *dDy = up(dy, ny), *dDx = up(dx, nx), *dY = cu_alloc((size_t)ny * sizeof(float));
    if (ac < 0) {
        resize_bilinear_forward(y, x, NC, H, W, OH, OW);
        resize_bilinear_backward(dx, dy, NC, H, W, OH, OW);
        resize_bilinear_forward_cuda(dY, dX, NC, H, W, OH, OW);
        resize_bilinear_backward_cuda(dDx, dDy, NC, H, W, OH, OW);
        resize_bilinear_backward_cuda(NULL, dDy, NC, H, W, OH, OW); /* skipped */
    } else {
        resize_bilinear_ac_forward(y, x, NC, H, W, OH, OW, ac);
        resize_bilinear_ac_backward(dx, dy, NC, H, W, OH, OW, ac);
        resize_bilinear_ac_forward_cuda(dY, dX, NC, H, W, OH, OW, ac);
        resize_bilinear_ac_backward_cuda(dDx, dDy, NC, H, W, OH, OW, ac);
        resize_bilinear_ac_backward_cuda(NULL, dDy, NC, H, W, OH, OW, ac); /* skipped */
    }
    char w[128], v[160];
    snprintf(w, sizeof w, "bilinear ac%d (%lld,%d,%d)->(%d,%d)", ac < 0 ? 0 : ac, (long long)NC, H, W, OH, OW);
    snprintf(v, sizeof v, "%s fwd", w), check(v, dY, y, ny, TOL_EW);
    snprintf(v, sizeof v, "%s dx (added)", w), check(v, dDx, dx, nx, TOL_EW);
    cu_free(dX), cu_free(dDy);
    free(x), free(dy), free(dx), free(y);
}

int main(void) {
    if (!cuda_test_begin("test_cuda_resample")) return test_end();
    nearest_case(4 * 32, 64, 64);   /* G: 64 -> 128 */
    nearest_case(2 * 16, 128, 128); /* G: 128 -> 256 */
    nearest_case(5, 7, 9);
    nearest_case(3, 1, 1);
    for (int ac = -1; ac <= 1; ac++) {
        bilinear_case(2 * 3, 64, 64, 299, 299, ac); /* the Inception trunk's input resize */
        bilinear_case(2 * 3, 128, 128, 299, 299, ac);
        bilinear_case(2 * 3, 256, 256, 299, 299, ac);
        bilinear_case(4, 17, 13, 31, 8, ac);        /* up along one axis, down along the other */
        bilinear_case(3, 50, 45, 9, 11, ac);        /* down (taps skip inputs) */
        bilinear_case(2, 10, 20, 10, 7, ac);        /* one axis kept */
        bilinear_case(2, 9, 9, 9, 9, ac);           /* identity: a copy, backward an add */
        bilinear_case(2, 30, 40, 1, 1, ac);         /* 1x1 output */
        bilinear_case(3, 1, 5, 6, 1, ac);           /* from a single row */
    }
    CuStats st = cu_stats();
    printf("  device memory: peak live %.1f MiB, %zu cudaMalloc calls\n", st.peak_live / 1048576.0, st.n_malloc);
    EXPECT(st.live == 0, "every device block was freed (%zu bytes live)", st.live);
    return test_end();
}
