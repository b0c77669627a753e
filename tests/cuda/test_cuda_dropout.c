/* test_cuda_dropout.c: the CUDA twins of src/ops/dropout.c's kernels (the mask from given
 * uniforms, forward, backward) against the CPU kernels on seeded random inputs (make test-cuda;
 * built only with CUDA=1). Element-wise with the CPU's operations, so the bound is TOL_EW (the bits
 * are expected to match); the masks must be equal element for element. The input gradient starts
 * from random values (the += contract); a NULL gradient is skipped. Without a CUDA device it skips
 * visibly. */
#include "cuda_test.h"
#include "../../src/ops/dropout.h"
#include "../../src/ops/cuda/cuda_ops.h"

static void dropout_case(int64_t n, float p, int in_place) {
    float *u = rnd(n, 0, 1, 500), *x = rnd(n, -2, 2, 501), *dy = rnd(n, -1, 1, 502), *dx = rnd(n, -1, 1, 503);
    float *mask = xmalloc((size_t)n * sizeof(float)), *y = xmalloc((size_t)n * sizeof(float));
    float *gmask = xmalloc((size_t)n * sizeof(float));
    float *dU = up(u, n), *dX = up(x, n), *dDy = up(dy, n), *dDx = up(dx, n), *dY = cu_alloc((size_t)n * sizeof(float));
    float *dM = in_place ? dU : cu_alloc((size_t)n * sizeof(float));
    dropout_make_mask(mask, u, p, n);
    dropout_forward(y, x, mask, n);
    dropout_backward(dx, dy, mask, n);
    dropout_make_mask_cuda(dM, dU, p, n);
    dropout_forward_cuda(dY, dX, dM, n);
    dropout_backward_cuda(dDx, dDy, dM, n);
    dropout_backward_cuda(NULL, dDy, dM, n); /* skipped */
    cu_download(gmask, dM, (size_t)n * sizeof(float));
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += gmask[i] != mask[i];
    char w[128];
    snprintf(w, sizeof w, "dropout p %.2f%s n %lld", (double)p, in_place ? " (mask in place)" : "", (long long)n);
    printf("  %-40s mask mismatches %lld of %lld\n", w, (long long)bad, (long long)n);
    EXPECT(bad == 0, "%s: %lld mask values differ from the CPU's", w, (long long)bad);
    char v[160];
    snprintf(v, sizeof v, "%s fwd", w), check(v, dY, y, n, TOL_EW);
    snprintf(v, sizeof v, "%s dx (added)", w), check(v, dDx, dx, n, TOL_EW);
    if (!in_place) cu_free(dM);
    cu_free(dU), cu_free(dX), cu_free(dDy);
    free(u), free(x), free(dy), free(dx), free(mask), free(y), free(gmask);
}

int main(void) {
    if (!cuda_test_begin("test_cuda_dropout")) return test_end();
    dropout_case(100003, 0.5f, 0);
    dropout_case(100003, 0.3f, 1);
    dropout_case(4099, 0.1f, 0);
    dropout_case(4099, 1.0f, 0); /* every element dropped */
    dropout_case(777, 0.0f, 1);  /* every element kept, scale 1 */
    CuStats st = cu_stats();
    printf("  device memory: peak live %.1f MiB, %zu cudaMalloc calls\n", st.peak_live / 1048576.0, st.n_malloc);
    EXPECT(st.live == 0, "every device block was freed (%zu bytes live)", st.live);
    return test_end();
}
