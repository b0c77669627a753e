/* test_cuda_norm.c: the CUDA twins of src/ops/norm.c against the CPU kernels on seeded random inputs
 * (make test-cuda; built only with CUDA=1): the L2 norm and the cosine similarity over
 * (OUTER, D, INNER) views that take both the thread-per-output and the block-per-output paths,
 * with zero vectors among the inputs. The backward twins get the CPU's saved values, so they are
 * checked element-wise; gradients start from random values (backward adds), and each backward
 * also runs with NULL gradients. Bounds: TOL_RED for the forward sums, TOL_EW for the backward.
 * Without a CUDA device it skips visibly. */
#include "cuda_test.h"
#include "../../src/ops/norm.h"
#include "../../src/ops/cuda/cuda_ops.h"

static float *copy_of(const float *h, int64_t n) {
    float *c = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    memcpy(c, h, (size_t)n * sizeof(float));
    return c;
}

/* zeroes the vector along D at output positions k = 0 and k = 3 (where they exist) */
static void zero_vectors(float *x, int64_t OUTER, int64_t D, int64_t INNER) {
    for (int64_t k = 0; k < OUTER * INNER && k <= 3; k += 3) {
        int64_t o = k / INNER, i = k % INNER;
        for (int64_t d = 0; d < D; d++) x[(o * D + d) * INNER + i] = 0.0f;
    }
}

static void l2norm_case(int64_t OUTER, int64_t D, int64_t INNER, uint64_t seed) {
    int64_t n = OUTER * D * INNER, m = OUTER * INNER;
    float *x = rnd(n, -1, 1, seed), *dy = rnd(m, -1, 1, seed + 1), *dx0 = rnd(n, -1, 1, seed + 2);
    zero_vectors(x, OUTER, D, INNER);
    float *y = xmalloc((size_t)m * sizeof(float)), *dx = copy_of(dx0, n);
    l2norm_forward(y, x, OUTER, D, INNER);
    l2norm_backward(dx, dy, y, x, OUTER, D, INNER);
    float *dX = up(x, n), *dY = cu_alloc((size_t)m * sizeof(float)), *dYc = up(y, m), *dDy = up(dy, m);
    float *dDx = up(dx0, n);
    l2norm_forward_cuda(dY, dX, OUTER, D, INNER);
    l2norm_backward_cuda(dDx, dDy, dYc, dX, OUTER, D, INNER);
    l2norm_backward_cuda(NULL, dDy, dYc, dX, OUTER, D, INNER); /* skipped */
    char w[96];
    snprintf(w, sizeof w, "l2norm (%lld,%lld,%lld) fwd", (long long)OUTER, (long long)D, (long long)INNER);
    check(w, dY, y, m, TOL_RED);
    snprintf(w, sizeof w, "l2norm (%lld,%lld,%lld) bwd (added)", (long long)OUTER, (long long)D, (long long)INNER);
    check(w, dDx, dx, n, TOL_EW);
    cu_free(dX), cu_free(dYc), cu_free(dDy);
    free(x), free(dy), free(dx0), free(y), free(dx);
}

static void cosine_case(int64_t OUTER, int64_t D, int64_t INNER, float eps, uint64_t seed) {
    int64_t n = OUTER * D * INNER, m = OUTER * INNER;
    float *a = rnd(n, -1, 1, seed), *b = rnd(n, -1, 1, seed + 1), *dy = rnd(m, -1, 1, seed + 2);
    float *da0 = rnd(n, -1, 1, seed + 3), *db0 = rnd(n, -1, 1, seed + 4);
    zero_vectors(b, OUTER, D, INNER);
    if (m > 1) /* b parallel to a at position 1 */
        for (int64_t d = 0; d < D; d++) {
            int64_t o = 1 / INNER, i = 1 % INNER, e = (o * D + d) * INNER + i;
            b[e] = 2.0f * a[e];
        }
    size_t mb = (size_t)m * sizeof(float);
    float *y = xmalloc(mb), *w12 = xmalloc(mb), *w1 = xmalloc(mb), *w2 = xmalloc(mb);
    float *da = copy_of(da0, n), *db = copy_of(db0, n), *da1 = copy_of(da0, n), *db1 = copy_of(db0, n);
    cosine_forward(y, w12, w1, w2, a, b, OUTER, D, INNER, eps);
    cosine_backward(da, db, dy, w12, w1, w2, a, b, OUTER, D, INNER, eps);
    cosine_backward(da1, NULL, dy, w12, w1, w2, a, b, OUTER, D, INNER, eps);
    cosine_backward(NULL, db1, dy, w12, w1, w2, a, b, OUTER, D, INNER, eps);
    float *dA = up(a, n), *dB = up(b, n), *dDy = up(dy, m);
    float *dY = cu_alloc(mb), *dY2 = cu_alloc(mb), *dW12 = cu_alloc(mb), *dW1 = cu_alloc(mb), *dW2 = cu_alloc(mb);
    float *cW12 = up(w12, m), *cW1 = up(w1, m), *cW2 = up(w2, m);
    float *dDa = up(da0, n), *dDb = up(db0, n), *dDa1 = up(da0, n), *dDb1 = up(db0, n);
    cosine_forward_cuda(dY, dW12, dW1, dW2, dA, dB, OUTER, D, INNER, eps);
    cosine_forward_cuda(dY2, NULL, NULL, NULL, dA, dB, OUTER, D, INNER, eps); /* saved values not wanted */
    cosine_backward_cuda(dDa, dDb, dDy, cW12, cW1, cW2, dA, dB, OUTER, D, INNER, eps);
    cosine_backward_cuda(dDa1, NULL, dDy, cW12, cW1, cW2, dA, dB, OUTER, D, INNER, eps);
    cosine_backward_cuda(NULL, dDb1, dDy, cW12, cW1, cW2, dA, dB, OUTER, D, INNER, eps);
    cosine_backward_cuda(NULL, NULL, dDy, cW12, cW1, cW2, dA, dB, OUTER, D, INNER, eps);
    char w[112], s[48];
    snprintf(s, sizeof s, "(%lld,%lld,%lld)", (long long)OUTER, (long long)D, (long long)INNER);
    snprintf(w, sizeof w, "cosine %s fwd", s), check(w, dY, y, m, TOL_RED);
    snprintf(w, sizeof w, "cosine %s fwd, no saved values", s), check(w, dY2, y, m, TOL_RED);
    snprintf(w, sizeof w, "cosine %s w12", s), check(w, dW12, w12, m, TOL_RED);
    snprintf(w, sizeof w, "cosine %s w1", s), check(w, dW1, w1, m, TOL_RED);
    snprintf(w, sizeof w, "cosine %s w2", s), check(w, dW2, w2, m, TOL_RED);
    snprintf(w, sizeof w, "cosine %s da (added)", s), check(w, dDa, da, n, TOL_EW);
    snprintf(w, sizeof w, "cosine %s db (added)", s), check(w, dDb, db, n, TOL_EW);
    snprintf(w, sizeof w, "cosine %s da, db NULL", s), check(w, dDa1, da1, n, TOL_EW);
    snprintf(w, sizeof w, "cosine %s db, da NULL", s), check(w, dDb1, db1, n, TOL_EW);
    cu_free(dA), cu_free(dB), cu_free(dDy), cu_free(cW12), cu_free(cW1), cu_free(cW2);
    free(a), free(b), free(dy), free(da0), free(db0), free(y), free(w12), free(w1), free(w2);
    free(da), free(db), free(da1), free(db1);
}

int main(void) {
    if (!cuda_test_begin("test_cuda_norm")) return test_end();
    l2norm_case(5, 33, 17, 1);     /* thread per output */
    l2norm_case(64, 256, 1, 11);   /* block per output: rows of 256 */
    l2norm_case(3, 256, 289, 21);  /* block per output: few outputs */
    l2norm_case(2, 300, 2500, 31); /* thread per output: coalesced along INNER */
    l2norm_case(7, 1, 3, 41);
    cosine_case(48, 256, 1, 1e-8f, 51);  /* DAMSM sentence vectors (B, D) along D */
    cosine_case(12, 256, 18, 1e-8f, 61); /* word features (B, D, T) along D */
    cosine_case(4, 17, 300, 1e-8f, 71);  /* thread per output */
    cosine_case(3, 40, 5000, 1e-8f, 81); /* thread per output, many outputs */
    cosine_case(6, 9, 4, 0.5f, 91);      /* a large eps: the clamp holds for many positions */
    CuStats st = cu_stats();
    printf("  device memory: peak live %.1f MiB, %zu cudaMalloc calls\n", st.peak_live / 1048576.0, st.n_malloc);
    EXPECT(st.live == 0, "every device block was freed (%zu bytes live)", st.live);
    return test_end();
}
