/* test_cuda_loss.c: the CUDA twins of src/ops/loss.c against the CPU kernels on seeded random inputs
 * (make test-cuda; built only with CUDA=1): BCE (with probabilities at 0 and 1, where the logs are
 * clamped at -100), BCE with logits, and cross entropy with -inf logits. The loss and its incoming
 * gradient are one device float; gradients start from random values (backward adds), and each
 * backward also runs with a NULL gradient. Bounds: TOL_RED for the losses and the saved row
 * logsumexp (sums in another order), TOL_EW for the element-wise gradients. Without a CUDA device
 * it skips visibly. */
#include "cuda_test.h"
#include "../../src/ops/loss.h"
#include "../../src/ops/cuda/cuda_ops.h"

#include <math.h>

typedef void (*LossFwd)(float *, const float *, const float *, int64_t);
typedef void (*LossBwd)(float *, const float *, const float *, const float *, int64_t);

/* loss of x (n) against y (n), x in [lo, hi); edges: some x at exactly 0 and 1 */
static void pair_loss_case(const char *name, LossFwd cf, LossFwd gf, LossBwd cb, LossBwd gb, int64_t n, float lo,
                           float hi, int edges, uint64_t seed) {
    float *x = rnd(n, lo, hi, seed), *y = rnd(n, 0, 1, seed + 1), *dout = rnd(1, 0.5f, 2, seed + 2);
    float *dx0 = rnd(n, -1, 1, seed + 3), *dx = xmalloc((size_t)n * sizeof(float)), l, l2;
    if (edges) {
        for (int64_t i = 0; i < n; i += 53) x[i] = 0.0f;
        for (int64_t i = 26; i < n; i += 59) x[i] = 1.0f;
        for (int64_t i = 0; i < n; i += 7) y[i] = (float)(i & 1); /* hard labels too */
    }
    memcpy(dx, dx0, (size_t)n * sizeof(float));
    cf(&l, x, y, n);
    cb(dx, dout, x, y, n);
    float *dX = up(x, n), *dYt = up(y, n), *dDout = up(dout, 1), *dDx = up(dx0, n);
    float *dL = cu_alloc(sizeof(float)), *dL2 = cu_alloc(sizeof(float));
    gf(dL, dX, dYt, n);
    gf(dL2, dX, dYt, n);
    gb(dDx, dDout, dX, dYt, n);
    gb(NULL, dDout, dX, dYt, n); /* skipped */
    float l1;
    cu_download(&l1, dL, sizeof l1);
    cu_download(&l2, dL2, sizeof l2);
    EXPECT(memcmp(&l1, &l2, sizeof l1) == 0, "%s (%lld): same bits twice", name, (long long)n);
    char w[96];
    snprintf(w, sizeof w, "%s (%lld) loss", name, (long long)n), check(w, dL, &l, 1, TOL_RED);
    snprintf(w, sizeof w, "%s (%lld) grad (added)", name, (long long)n), check(w, dDx, dx, n, TOL_EW);
    cu_free(dX), cu_free(dYt), cu_free(dDout), cu_free(dL2);
    free(x), free(y), free(dout), free(dx0), free(dx);
}

/* cross entropy over (N, C) with about 10% -inf logits (never at a target) */
static void cross_entropy_case(int N, int C, uint64_t seed) {
    int64_t n = (int64_t)N * C;
    float *x = rnd(n, -6, 6, seed), *u = rnd(n, 0, 1, seed + 1), *t01 = rnd(N, 0, 1, seed + 2);
    float *dout = rnd(1, 0.5f, 2, seed + 3), *dx0 = rnd(n, -1, 1, seed + 4), *dx = xmalloc((size_t)n * sizeof(float));
    int64_t *t = xmalloc((size_t)N * sizeof(int64_t));
    for (int i = 0; i < N; i++) {
        t[i] = (int64_t)(t01[i] * C);
        if (t[i] >= C) t[i] = C - 1;
    }
    for (int64_t e = 0; e < n; e++)
        if (u[e] < 0.1f && e % C != t[e / C]) x[e] = -INFINITY;
    double *lse = xmalloc((size_t)N * sizeof(double));
    float l;
    memcpy(dx, dx0, (size_t)n * sizeof(float));
    cross_entropy_forward(&l, lse, x, t, N, C);
    cross_entropy_backward(dx, dout, lse, x, t, N, C);
    float *dX = up(x, n), *dDout = up(dout, 1), *dDx = up(dx0, n), *dL = cu_alloc(sizeof(float));
    double *dLse = cu_alloc((size_t)N * sizeof(double));
    int64_t *dT = cu_alloc((size_t)N * sizeof(int64_t));
    cu_upload(dT, t, (size_t)N * sizeof(int64_t));
    cross_entropy_forward_cuda(dL, dLse, dX, dT, N, C);
    cross_entropy_backward_cuda(dDx, dDout, dLse, dX, dT, N, C);
    cross_entropy_backward_cuda(NULL, dDout, dLse, dX, dT, N, C);
    double *glse = xmalloc((size_t)N * sizeof(double));
    cu_download(glse, dLse, (size_t)N * sizeof(double));
    float *flse = xmalloc((size_t)N * sizeof(float)), *fglse = xmalloc((size_t)N * sizeof(float));
    for (int i = 0; i < N; i++) flse[i] = (float)lse[i], fglse[i] = (float)glse[i];
    char w[96];
    snprintf(w, sizeof w, "cross_entropy (%d,%d) loss", N, C), check(w, dL, &l, 1, TOL_RED);
    snprintf(w, sizeof w, "cross_entropy (%d,%d) lse", N, C), check(w, up(fglse, N), flse, N, TOL_RED);
    snprintf(w, sizeof w, "cross_entropy (%d,%d) grad (added)", N, C), check(w, dDx, dx, n, TOL_EW);
    cu_free(dX), cu_free(dDout), cu_free(dLse), cu_free(dT);
    free(x), free(u), free(t01), free(dout), free(dx0), free(dx), free(t), free(lse), free(glse), free(flse), free(fglse);
}

int main(void) {
    if (!cuda_test_begin("test_cuda_loss")) return test_end();
    pair_loss_case("bce", bce_forward, bce_forward_cuda, bce_backward, bce_backward_cuda, 10007, 0.001f, 0.999f, 1, 1);
    pair_loss_case("bce", bce_forward, bce_forward_cuda, bce_backward, bce_backward_cuda, 1000003, 0.01f, 0.99f, 0, 11);
    pair_loss_case("bce", bce_forward, bce_forward_cuda, bce_backward, bce_backward_cuda, 13, 0.01f, 0.99f, 0, 21);
    pair_loss_case("bce_logits", bce_logits_forward, bce_logits_forward_cuda, bce_logits_backward,
                   bce_logits_backward_cuda, 10007, -8, 8, 0, 31);
    pair_loss_case("bce_logits", bce_logits_forward, bce_logits_forward_cuda, bce_logits_backward,
                   bce_logits_backward_cuda, 1000003, -30, 30, 0, 41);
    cross_entropy_case(37, 289, 51);  /* the DAMSM sentence loss's shape class: batch x batch, with masks */
    cross_entropy_case(300, 18, 61);
    cross_entropy_case(5, 1000, 71);
    cross_entropy_case(1, 1, 81);
    CuStats st = cu_stats();
    printf("  device memory: peak live %.1f MiB, %zu cudaMalloc calls\n", st.peak_live / 1048576.0, st.n_malloc);
    EXPECT(st.live == 0, "every device block was freed (%zu bytes live)", st.live);
    return test_end();
}
