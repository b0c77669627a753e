/* test_cuda_matmul.c: the CUDA twin of src/ops/matmul.c's kernels (cuBLAS strided-batched SGEMM)
 * against the CPU kernels on seeded random inputs (make test-cuda; built only with CUDA=1): every
 * transpose combination over the model's skinny shapes, a batch of one, an empty inner dim, and
 * bmm(x, x^T) with one gradient buffer for both operands. Gradients start from random values
 * (backward adds), and backward also runs with each gradient NULL. Bound: TOL_RED (other
 * summation orders). Without a CUDA device it skips visibly. */
#include "cuda_test.h"
#include "../../src/ops/matmul.h"
#include "../../src/ops/cuda/cuda_ops.h"

static float *copy_of(const float *h, int64_t n) {
    float *c = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    memcpy(c, h, (size_t)n * sizeof(float));
    return c;
}

static void bmm_case(int B, int M, int N, int K, int ta, int tb, uint64_t seed) {
    int64_t na = (int64_t)B * M * K, nb = (int64_t)B * K * N, no = (int64_t)B * M * N;
    float *a = rnd(na, -1, 1, seed), *b = rnd(nb, -1, 1, seed + 1), *dy = rnd(no, -1, 1, seed + 2);
    float *da0 = rnd(na, -1, 1, seed + 3), *db0 = rnd(nb, -1, 1, seed + 4), *y = xmalloc((size_t)(no > 0 ? no : 1) * sizeof(float));
    float *da = copy_of(da0, na), *db = copy_of(db0, nb), *da1 = copy_of(da0, na), *db1 = copy_of(db0, nb);
    bmm_forward(y, a, b, B, M, N, K, ta, tb);
    bmm_backward(da, db, dy, a, b, B, M, N, K, ta, tb);
    bmm_backward(da1, NULL, dy, a, b, B, M, N, K, ta, tb);
    bmm_backward(NULL, db1, dy, a, b, B, M, N, K, ta, tb);
    float *junk = rnd(no, -9, 9, seed + 5); /* the forward overwrites whatever is in its output */
    float *dA = up(a, na), *dB = up(b, nb), *dDy = up(dy, no), *dY = up(junk, no);
    float *dDa = up(da0, na), *dDb = up(db0, nb), *dDa1 = up(da0, na), *dDb1 = up(db0, nb);
    bmm_forward_cuda(dY, dA, dB, B, M, N, K, ta, tb);
    bmm_backward_cuda(dDa, dDb, dDy, dA, dB, B, M, N, K, ta, tb);
    bmm_backward_cuda(dDa1, NULL, dDy, dA, dB, B, M, N, K, ta, tb);
    bmm_backward_cuda(NULL, dDb1, dDy, dA, dB, B, M, N, K, ta, tb);
    bmm_backward_cuda(NULL, NULL, dDy, dA, dB, B, M, N, K, ta, tb);
    char w[112], s[64];
    snprintf(s, sizeof s, "B%d %dx%dx%d ta%d tb%d", B, M, N, K, ta, tb);
    snprintf(w, sizeof w, "bmm %s fwd", s), check(w, dY, y, no, TOL_RED);
    snprintf(w, sizeof w, "bmm %s da (added)", s), check(w, dDa, da, na, TOL_RED);
    snprintf(w, sizeof w, "bmm %s db (added)", s), check(w, dDb, db, nb, TOL_RED);
    snprintf(w, sizeof w, "bmm %s da, db NULL", s), check(w, dDa1, da1, na, TOL_RED);
    snprintf(w, sizeof w, "bmm %s db, da NULL", s), check(w, dDb1, db1, nb, TOL_RED);
    cu_free(dA), cu_free(dB), cu_free(dDy);
    free(a), free(b), free(dy), free(da0), free(db0), free(y), free(junk), free(da), free(db), free(da1), free(db1);
}

/* y = x . x^T (B, M, M) from x (B, M, K): a and b the same tensor, one gradient buffer for both */
static void bmm_gram_case(int B, int M, int K, uint64_t seed) {
    int64_t nx = (int64_t)B * M * K, no = (int64_t)B * M * M;
    float *x = rnd(nx, -1, 1, seed), *dy = rnd(no, -1, 1, seed + 1), *dx0 = rnd(nx, -1, 1, seed + 2);
    float *y = xmalloc((size_t)no * sizeof(float)), *dx = copy_of(dx0, nx);
    bmm_forward(y, x, x, B, M, M, K, 0, 1);
    bmm_backward(dx, dx, dy, x, x, B, M, M, K, 0, 1);
    float *dX = up(x, nx), *dDy = up(dy, no), *dY = cu_alloc((size_t)no * sizeof(float)), *dDx = up(dx0, nx);
    bmm_forward_cuda(dY, dX, dX, B, M, M, K, 0, 1);
    bmm_backward_cuda(dDx, dDx, dDy, dX, dX, B, M, M, K, 0, 1);
    char w[96];
    snprintf(w, sizeof w, "bmm gram B%d %dx%d fwd", B, M, K), check(w, dY, y, no, TOL_RED);
    snprintf(w, sizeof w, "bmm gram B%d %dx%d dx (one buffer, added)", B, M, K), check(w, dDx, dx, nx, TOL_RED);
    cu_free(dX), cu_free(dDy);
    free(x), free(dy), free(dx0), free(y), free(dx);
}

int main(void) {
    if (!cuda_test_begin("test_cuda_matmul")) return test_end();
    for (int ta = 0; ta <= 1; ta++)
        for (int tb = 0; tb <= 1; tb++) {
            bmm_case(3, 37, 18, 33, ta, tb, 1 + 10 * (2 * ta + tb));    /* odd sizes */
            bmm_case(4, 289, 18, 32, ta, tb, 100 + 10 * (2 * ta + tb)); /* G's attention: (B, HW, T) x (B, T, D) */
            bmm_case(1, 65, 129, 257, ta, tb, 200 + 10 * (2 * ta + tb)); /* a 2-d product */
        }
    bmm_case(6, 18, 289, 256, 1, 0, 300); /* the DAMSM words loss: words^T . region features */
    bmm_case(2, 5, 7, 0, 0, 0, 310);      /* an empty inner dim: zeros, gradients untouched */
    bmm_case(5, 1, 1, 300, 0, 1, 320);    /* dot products */
    bmm_gram_case(3, 17, 29, 400);
    CuStats st = cu_stats();
    printf("  device memory: peak live %.1f MiB, %zu cudaMalloc calls\n", st.peak_live / 1048576.0, st.n_malloc);
    EXPECT(st.live == 0, "every device block was freed (%zu bytes live)", st.live);
    return test_end();
}
