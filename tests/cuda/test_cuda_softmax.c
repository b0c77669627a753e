/* test_cuda_softmax.c: the CUDA twins of src/ops/softmax.c against the CPU kernels on seeded random
 * inputs (make test-cuda; built only with CUDA=1): softmax over the last dim with and without a
 * mask (rows masked entirely, -inf entries), and masked_fill. Gradients start from random values
 * (backward adds), and each backward also runs with a NULL gradient. Bounds: TOL_RED for softmax
 * (row sums in another order), TOL_EW for masked_fill. Without a CUDA device it skips visibly. */
#include "cuda_test.h"
#include "../../src/ops/softmax.h"
#include "../../src/ops/cuda/cuda_ops.h"

#include <math.h>

static uint8_t *rnd_mask(int64_t n, float frac, uint64_t seed) {
    float *u = rnd(n, 0, 1, seed);
    uint8_t *m = xmalloc((size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) m[i] = u[i] < frac;
    free(u);
    return m;
}

static uint8_t *up_bytes(const uint8_t *h, int64_t n) {
    uint8_t *d = cu_alloc((size_t)(n > 0 ? n : 1));
    if (n > 0) cu_upload(d, h, (size_t)n);
    return d;
}

/* softmax over C of (N, C); masked: a random mask with rows 0 and 5 masked entirely and some -inf inputs */
static void softmax_case(int64_t N, int C, int masked, uint64_t seed) {
    int64_t n = N * C;
    float *x = rnd(n, -5, 5, seed), *dy = rnd(n, -1, 1, seed + 1), *dx0 = rnd(n, -1, 1, seed + 2);
    uint8_t *m = masked ? rnd_mask(n, 0.3f, seed + 3) : NULL;
    if (masked) {
        for (int c = 0; c < C; c++) m[c] = 1;
        if (N > 5)
            for (int c = 0; c < C; c++) m[5 * C + c] = 0, x[5 * C + c] = -INFINITY;
        for (int64_t i = 7; i < n; i += 11) x[i] = -INFINITY;
    }
    float *y = xmalloc((size_t)n * sizeof(float)), *dx = xmalloc((size_t)n * sizeof(float));
    softmax_forward(y, x, m, N, C);
    memcpy(dx, dx0, (size_t)n * sizeof(float));
    softmax_backward(dx, dy, y, N, C);
    float *dX = up(x, n), *dY = cu_alloc((size_t)n * sizeof(float)), *dDy = up(dy, n), *dDx = up(dx0, n);
    uint8_t *dM = masked ? up_bytes(m, n) : NULL;
    softmax_forward_cuda(dY, dX, dM, N, C);
    softmax_backward_cuda(dDx, dDy, dY, N, C);
    softmax_backward_cuda(NULL, dDy, dY, N, C); /* skipped */
    char w[96];
    const char *k = masked ? "masked" : "no mask";
    snprintf(w, sizeof w, "softmax (%lld,%d) %s forward", (long long)N, C, k), check(w, dY, y, n, TOL_RED);
    snprintf(w, sizeof w, "softmax (%lld,%d) %s backward (added)", (long long)N, C, k), check(w, dDx, dx, n, TOL_RED);
    cu_free(dX), cu_free(dDy), cu_free(dM);
    free(x), free(dy), free(dx0), free(y), free(dx), free(m);
}

/* softmax gives the same bits twice */
static void softmax_determinism(void) {
    int64_t N = 33, C = 1000, n = N * C;
    float *x = rnd(n, -5, 5, 50), *h0 = xmalloc((size_t)n * sizeof(float)), *h1 = xmalloc((size_t)n * sizeof(float));
    float *dX = up(x, n), *dY = cu_alloc((size_t)n * sizeof(float));
    softmax_forward_cuda(dY, dX, NULL, N, (int)C);
    cu_download(h0, dY, (size_t)n * sizeof(float));
    softmax_forward_cuda(dY, dX, NULL, N, (int)C);
    cu_download(h1, dY, (size_t)n * sizeof(float));
    EXPECT(memcmp(h0, h1, (size_t)n * sizeof(float)) == 0, "softmax (33,1000): same bits twice");
    cu_free(dX), cu_free(dY);
    free(x), free(h0), free(h1);
}

static void masked_fill_case(float value) {
    int64_t n = 100003;
    float *x = rnd(n, -3, 3, 60), *dy = rnd(n, -1, 1, 61), *dx0 = rnd(n, -1, 1, 62);
    uint8_t *m = rnd_mask(n, 0.4f, 63);
    float *y = xmalloc((size_t)n * sizeof(float)), *dx = xmalloc((size_t)n * sizeof(float));
    masked_fill_forward(y, x, m, value, n);
    memcpy(dx, dx0, (size_t)n * sizeof(float));
    masked_fill_backward(dx, dy, m, n);
    float *dX = up(x, n), *dY = cu_alloc((size_t)n * sizeof(float)), *dDy = up(dy, n), *dDx = up(dx0, n);
    uint8_t *dM = up_bytes(m, n);
    masked_fill_forward_cuda(dY, dX, dM, value, n);
    masked_fill_backward_cuda(dDx, dDy, dM, n);
    masked_fill_backward_cuda(NULL, dDy, dM, n);
    char w[96];
    snprintf(w, sizeof w, "masked_fill (%g) forward", value), check(w, dY, y, n, TOL_EW);
    snprintf(w, sizeof w, "masked_fill (%g) backward (added)", value), check(w, dDx, dx, n, TOL_EW);
    cu_free(dX), cu_free(dDy), cu_free(dM);
    free(x), free(dy), free(dx0), free(y), free(dx), free(m);
}

int main(void) {
    if (!cuda_test_begin("test_cuda_softmax")) return test_end();
    softmax_case(517, 289, 0, 7);
    softmax_case(517, 289, 1, 17);
    softmax_case(4099, 18, 1, 27); /* G's word attention: rows of 18 words */
    softmax_case(300, 18, 0, 37);
    softmax_case(61, 1000, 1, 47);
    softmax_case(13, 1, 1, 57);
    softmax_determinism();
    masked_fill_case(-INFINITY);
    masked_fill_case(0.5f);
    CuStats st = cu_stats();
    printf("  device memory: peak live %.1f MiB, %zu cudaMalloc calls\n", st.peak_live / 1048576.0, st.n_malloc);
    EXPECT(st.live == 0, "every device block was freed (%zu bytes live)", st.live);
    return test_end();
}
