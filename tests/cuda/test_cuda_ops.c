/* test_cuda_ops.c: every CUDA kernel of src/ops/cuda against its CPU kernel on random inputs (make
 * test-cuda; built only with CUDA=1). Each case prints the norm-relative error it saw; the bound is
 * 1e-5 for element-wise kernels (the same formulas in fp32) and 1e-4 for the reductions, matrix
 * products and convolutions (other summation orders). Without a CUDA device it skips visibly. */
#include "cuda_test.h"
#include "../../src/ops/activation.h"
#include "../../src/ops/batchnorm.h"
#include "../../src/ops/conv2d.h"
#include "../../src/ops/linear.h"
#include "../../src/ops/cuda/cuda_ops.h"

typedef void (*Unary)(float *, const float *, int64_t);
typedef void (*UnaryBwd)(float *, const float *, const float *, int64_t);

/* forward y = f(x) and backward dx += g(dy, saved) where saved is x or y */
static void unary_case(const char *name, Unary cpu_f, Unary gpu_f, UnaryBwd cpu_b, UnaryBwd gpu_b, int saved_is_out) {
    int64_t n = 100003;
    float *x = rnd(n, -3, 3, 1), *dy = rnd(n, -1, 1, 2), *dx0 = rnd(n, -1, 1, 3);
    float *y = xmalloc((size_t)n * sizeof(float)), *dx = xmalloc((size_t)n * sizeof(float));
    cpu_f(y, x, n);
    memcpy(dx, dx0, (size_t)n * sizeof(float));
    cpu_b(dx, dy, saved_is_out ? y : x, n);
    float *dX = up(x, n), *dY = cu_alloc((size_t)n * sizeof(float)), *dDy = up(dy, n), *dDx = up(dx0, n);
    gpu_f(dY, dX, n);
    gpu_b(dDx, dDy, saved_is_out ? dY : dX, n);
    char w[64];
    snprintf(w, sizeof w, "%s forward", name);
    check(w, dY, y, n, TOL_EW);
    snprintf(w, sizeof w, "%s backward (added into a gradient)", name);
    check(w, dDx, dx, n, TOL_EW);
    cu_free(dX);
    cu_free(dDy);
    free(x), free(dy), free(dx0), free(y), free(dx);
}

static float slope = 0.2f;
static void lrelu_f(float *o, const float *i, int64_t n) { leaky_relu_forward(o, i, slope, n); }
static void lrelu_fg(float *o, const float *i, int64_t n) { leaky_relu_forward_cuda(o, i, slope, n); }
static void lrelu_b(float *d, const float *g, const float *x, int64_t n) { leaky_relu_backward(d, g, x, slope, n); }
static void lrelu_bg(float *d, const float *g, const float *x, int64_t n) { leaky_relu_backward_cuda(d, g, x, slope, n); }

static void glu_case(void) {
    int64_t outer = 3, inner = 1000;
    int C = 17;
    int64_t nin = outer * 2 * C * inner, nout = outer * C * inner;
    float *x = rnd(nin, -3, 3, 4), *dy = rnd(nout, -1, 1, 5), *dx0 = rnd(nin, -1, 1, 6);
    float *y = xmalloc((size_t)nout * sizeof(float)), *dx = xmalloc((size_t)nin * sizeof(float));
    glu_forward(y, x, outer, C, inner);
    memcpy(dx, dx0, (size_t)nin * sizeof(float));
    glu_backward(dx, dy, x, outer, C, inner);
    float *dX = up(x, nin), *dY = cu_alloc((size_t)nout * sizeof(float)), *dDy = up(dy, nout), *dDx = up(dx0, nin);
    glu_forward_cuda(dY, dX, outer, C, inner);
    glu_backward_cuda(dDx, dDy, dX, outer, C, inner);
    check("glu forward", dY, y, nout, TOL_EW);
    check("glu backward", dDx, dx, nin, TOL_EW);
    cu_free(dX), cu_free(dDy);
    free(x), free(dy), free(dx0), free(y), free(dx);
}

static void batchnorm_case(int train) {
    int N = 6, C = 13, S = 97;
    int64_t n = (int64_t)N * C * S;
    float *x = rnd(n, -2, 3, 10), *g = rnd(C, 0.5f, 1.5f, 11), *b = rnd(C, -0.5f, 0.5f, 12), *dy = rnd(n, -1, 1, 13);
    float *mean = xmalloc(C * sizeof(float)), *var = xmalloc(C * sizeof(float)), *rstd = xmalloc(C * sizeof(float));
    float *y = xmalloc((size_t)n * sizeof(float)), *dx = xcalloc((size_t)n, sizeof(float));
    float *dg = xcalloc(C, sizeof(float)), *db = xcalloc(C, sizeof(float));
    if (train) batchnorm_stats(mean, var, x, N, C, S);
    else fill_uniform(mean, C, -0.2f, 0.2f, 14), fill_uniform(var, C, 0.5f, 2.0f, 15);
    batchnorm_forward(y, rstd, x, mean, var, g, b, N, C, S, 1e-5f);
    batchnorm_backward(dx, dg, db, dy, mean, rstd, x, g, N, C, S, train);
    float *dX = up(x, n), *dG = up(g, C), *dB = up(b, C), *dDy = up(dy, n);
    float *dMean = train ? cu_alloc(C * sizeof(float)) : up(mean, C), *dVar = train ? cu_alloc(C * sizeof(float)) : up(var, C);
    float *dRstd = cu_alloc(C * sizeof(float)), *dY = cu_alloc((size_t)n * sizeof(float));
    float *dDx = cu_alloc((size_t)n * sizeof(float)), *dDg = cu_alloc(C * sizeof(float)), *dDb = cu_alloc(C * sizeof(float));
    cu_memset0(dDx, (size_t)n * sizeof(float)), cu_memset0(dDg, C * sizeof(float)), cu_memset0(dDb, C * sizeof(float));
    if (train) batchnorm_stats_cuda(dMean, dVar, dX, N, C, S);
    batchnorm_forward_cuda(dY, dRstd, dX, dMean, dVar, dG, dB, N, C, S, 1e-5f);
    batchnorm_backward_cuda(dDx, dDg, dDb, dDy, dMean, dRstd, dX, dG, N, C, S, train);
    const char *m = train ? "batchnorm (train)" : "batchnorm (eval)";
    char w[64];
    if (train) {
        snprintf(w, sizeof w, "%s mean", m), check(w, dMean, mean, C, TOL_RED);
        snprintf(w, sizeof w, "%s var", m), check(w, dVar, var, C, TOL_RED);
    } else {
        cu_free(dMean), cu_free(dVar);
    }
    snprintf(w, sizeof w, "%s forward", m), check(w, dY, y, n, TOL_RED);
    snprintf(w, sizeof w, "%s rstd", m), check(w, dRstd, rstd, C, TOL_RED);
    snprintf(w, sizeof w, "%s dx", m), check(w, dDx, dx, n, TOL_RED);
    snprintf(w, sizeof w, "%s dgamma", m), check(w, dDg, dg, C, TOL_RED);
    snprintf(w, sizeof w, "%s dbeta", m), check(w, dDb, db, C, TOL_RED);
    cu_free(dX), cu_free(dG), cu_free(dB), cu_free(dDy);
    free(x), free(g), free(b), free(dy), free(mean), free(var), free(rstd), free(y), free(dx), free(dg), free(db);
}

static void linear_case(void) {
    int N = 37, I = 300, O = 129;
    float *x = rnd((int64_t)N * I, -1, 1, 20), *w = rnd((int64_t)O * I, -0.1f, 0.1f, 21), *b = rnd(O, -1, 1, 22);
    float *dy = rnd((int64_t)N * O, -1, 1, 23);
    float *y = xmalloc((size_t)N * O * sizeof(float)), *dx = rnd((int64_t)N * I, -1, 1, 24);
    float *dw = rnd((int64_t)O * I, -1, 1, 25), *db = rnd(O, -1, 1, 26);
    float *dX = up(x, (int64_t)N * I), *dW = up(w, (int64_t)O * I), *dB = up(b, O), *dDy = up(dy, (int64_t)N * O);
    float *dDx = up(dx, (int64_t)N * I), *dDw = up(dw, (int64_t)O * I), *dDb = up(db, O);
    float *dY = cu_alloc((size_t)N * O * sizeof(float));
    linear_forward(y, x, w, b, N, I, O);
    linear_backward(dx, dw, db, dy, x, w, N, I, O);
    linear_forward_cuda(dY, dX, dW, dB, N, I, O);
    linear_backward_cuda(dDx, dDw, dDb, dDy, dX, dW, N, I, O);
    check("linear forward", dY, y, (int64_t)N * O, TOL_RED);
    check("linear dx (added)", dDx, dx, (int64_t)N * I, TOL_RED);
    check("linear dweight (added)", dDw, dw, (int64_t)O * I, TOL_RED);
    check("linear dbias (added)", dDb, db, O, TOL_RED);
    cu_free(dX), cu_free(dW), cu_free(dB), cu_free(dDy);
    free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db);
}

static void conv_case(int N, int C, int H, int W, int O, int K, int stride, int pad, int bias) {
    Conv2dShape s = conv2d_shape(N, C, H, W, O, K, K, stride, stride, pad, pad);
    int64_t nx = (int64_t)N * C * H * W, nw = (int64_t)O * C * K * K, ny = (int64_t)N * O * s.OH * s.OW;
    float *x = rnd(nx, -1, 1, 30), *w = rnd(nw, -0.2f, 0.2f, 31), *b = bias ? rnd(O, -1, 1, 32) : NULL;
    float *dy = rnd(ny, -1, 1, 33), *dx = rnd(nx, -1, 1, 34), *dw = rnd(nw, -1, 1, 35), *db = rnd(O, -1, 1, 36);
    float *y = xmalloc((size_t)ny * sizeof(float));
    float *dX = up(x, nx), *dW = up(w, nw), *dB = bias ? up(b, O) : NULL, *dDy = up(dy, ny);
    float *dDx = up(dx, nx), *dDw = up(dw, nw), *dDb = up(db, O), *dY = cu_alloc((size_t)ny * sizeof(float));
    conv2d_forward(y, x, w, b, &s, NULL);
    conv2d_backward(dx, dw, bias ? db : NULL, dy, x, w, &s, NULL);
    conv2d_forward_cuda(dY, dX, dW, dB, &s, NULL);
    conv2d_backward_cuda(dDx, dDw, bias ? dDb : NULL, dDy, dX, dW, &s, NULL);
    char w_[96];
    snprintf(w_, sizeof w_, "conv2d %dx%d s%d p%d (%d,%d,%d,%d)->%d fwd", K, K, stride, pad, N, C, H, W, O);
    check(w_, dY, y, ny, TOL_RED);
    snprintf(w_, sizeof w_, "conv2d %dx%d s%d p%d dx (added)", K, K, stride, pad), check(w_, dDx, dx, nx, TOL_RED);
    snprintf(w_, sizeof w_, "conv2d %dx%d s%d p%d dweight (added)", K, K, stride, pad), check(w_, dDw, dw, nw, TOL_RED);
    if (bias) snprintf(w_, sizeof w_, "conv2d %dx%d s%d p%d dbias (added)", K, K, stride, pad), check(w_, dDb, db, O, TOL_RED);
    else cu_free(dDb);
    /* the input gradient written, not added (a gradient buffer's first contribution) */
    float *dxs = xmalloc((size_t)nx * sizeof(float)), *dDxs = up(dx, nx);
    conv2d_backward_data_set(dxs, dy, w, &s, NULL);
    conv2d_backward_data_set_cuda(dDxs, dDy, dW, &s, NULL);
    snprintf(w_, sizeof w_, "conv2d %dx%d s%d p%d dx (written)", K, K, stride, pad), check(w_, dDxs, dxs, nx, TOL_RED);
    free(dxs);
    cu_free(dX), cu_free(dW), cu_free(dB), cu_free(dDy);
    free(x), free(w), free(b), free(dy), free(dx), free(dw), free(db), free(y);
}

int main(void) {
    if (!cuda_test_begin("test_cuda_ops")) return test_end();
    unary_case("relu", relu_forward, relu_forward_cuda, relu_backward, relu_backward_cuda, 1);
    unary_case("leaky_relu", lrelu_f, lrelu_fg, lrelu_b, lrelu_bg, 0);
    unary_case("tanh", tanh_forward, tanh_forward_cuda, tanh_backward, tanh_backward_cuda, 1);
    unary_case("sigmoid", sigmoid_forward, sigmoid_forward_cuda, sigmoid_backward, sigmoid_backward_cuda, 1);
    glu_case();
    batchnorm_case(1);
    batchnorm_case(0);
    linear_case();
    conv_case(2, 3, 17, 19, 8, 3, 1, 1, 1);
    conv_case(3, 16, 35, 35, 32, 3, 2, 0, 0);
    conv_case(2, 64, 17, 17, 48, 1, 1, 0, 1);
    conv_case(4, 8, 64, 64, 16, 4, 2, 1, 0);
    CuStats st = cu_stats();
    printf("  device memory: peak live %.1f MiB, %zu cudaMalloc calls\n", st.peak_live / 1048576.0, st.n_malloc);
    EXPECT(st.live == 0, "every device block was freed (%zu bytes live)", st.live);
    return test_end();
}
