/* test_cuda_ops.c: every CUDA kernel of src/ops/cuda against its CPU kernel on random inputs (make
 * test-cuda; built only with CUDA=1). Each case prints the norm-relative error it saw; the bound is
 * 1e-5 for element-wise kernels (the same formulas in fp32) and 1e-4 for the reductions, matrix
 * products and convolutions (other summation orders). Without a CUDA device it skips visibly.
 *
 * The convolutions' plan cache (src/ops/cuda/conv2d.cu): a convolution run twice gives the same bits
 * (the second run is a cache hit), several shapes interleaved (one pair differs only in stride and
 * padding) make one plan per shape and direction and keep their results, and all of it again with
 * ATTNGAN_CUDNN_AUTOTUNE's timed choice (cu_conv_set_autotune). The math mode: the fp32 cases run in
 * fp32 whatever ATTNGAN_CUDA_MATH says (cu_set_math_tf32(0)); then linear and convolutions in TF32
 * (cu_set_math_tf32(1)) within TOL_TF32 = 1e-2 norm-relative of the CPU's fp32 (TF32 keeps 10 of
 * fp32's 23 mantissa bits: about 5e-4 relative per rounded operand, sums of random signs stay well
 * below 1e-2), with plans of their own. ATTNGAN_CUDA_MATH=bf16 is refused with its reason (checked
 * here too, in a child process, without a GPU). */
#include "cuda_test.h"
#include "../../src/ops/activation.h"
#include "../../src/ops/batchnorm.h"
#include "../../src/ops/conv2d.h"
#include "../../src/ops/linear.h"
#include "../../src/ops/cuda/cuda_ops.h"

#include <sys/wait.h>
#include <unistd.h>

#define TOL_TF32 1e-2

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
/* relu's gate: out = h > 0 ? g : 0 and dg += h > 0 ? dout : 0, with zeros among the gates */
static void gate_case(void) {
    int64_t n = 100003;
    float *h = rnd(n, -3, 3, 7), *g = rnd(n, -1, 1, 8), *dy = rnd(n, -1, 1, 9), *dg0 = rnd(n, -1, 1, 10);
    for (int64_t i = 0; i < n; i += 97) h[i] = 0.0f;
    float *y = xmalloc((size_t)n * sizeof(float)), *dg = xmalloc((size_t)n * sizeof(float));
    relu_gate_forward(y, g, h, n);
    memcpy(dg, dg0, (size_t)n * sizeof(float));
    relu_gate_backward(dg, dy, h, n);
    float *dH = up(h, n), *dG = up(g, n), *dDy = up(dy, n), *dDg = up(dg0, n), *dY = cu_alloc((size_t)n * sizeof(float));
    relu_gate_forward_cuda(dY, dG, dH, n);
    relu_gate_backward_cuda(dDg, dDy, dH, n);
    check("relu_gate forward", dY, y, n, TOL_EW);
    check("relu_gate backward (added into a gradient)", dDg, dg, n, TOL_EW);
    cu_free(dH), cu_free(dG), cu_free(dDy);
    free(h), free(g), free(dy), free(dg0), free(y), free(dg);
}

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
    if (train) { /* SyncBatchNorm's kernels: the sums, and the backward through twice them (two ranks of this batch) */
        double *sums = xmalloc((size_t)2 * C * sizeof(double)), *all = xmalloc((size_t)2 * C * sizeof(double));
        double *hs = xmalloc((size_t)2 * C * sizeof(double));
        batchnorm_sums(sums, dy, x, mean, N, C, S);
        for (int k = 0; k < 2 * C; k++) all[k] = 2.0 * sums[k];
        float *dx2 = xcalloc((size_t)n, sizeof(float)), *dg2 = xcalloc(C, sizeof(float)), *db2 = xcalloc(C, sizeof(float));
        batchnorm_backward_sums(dx2, dg2, db2, sums, all, 2 * (int64_t)N * S, dy, mean, rstd, x, g, N, C, S);
        double *dSums = cu_alloc((size_t)2 * C * sizeof(double)), *dAll = cu_alloc((size_t)2 * C * sizeof(double));
        batchnorm_sums_cuda(dSums, dDy, dX, dMean, N, C, S);
        cu_download(hs, dSums, (size_t)2 * C * sizeof(double));
        double err = 0;
        for (int k = 0; k < 2 * C; k++) err = fmax(err, fabs(hs[k] - sums[k]) / (fabs(sums[k]) + 1.0));
        EXPECT(err < TOL_RED, "batchnorm_sums: CUDA against the CPU, max rel err %.2e", err);
        cu_upload(dAll, all, (size_t)2 * C * sizeof(double));
        float *dDx2 = cu_alloc((size_t)n * sizeof(float)), *dDg2 = cu_alloc(C * sizeof(float)), *dDb2 = cu_alloc(C * sizeof(float));
        cu_memset0(dDx2, (size_t)n * sizeof(float)), cu_memset0(dDg2, C * sizeof(float)), cu_memset0(dDb2, C * sizeof(float));
        batchnorm_backward_sums_cuda(dDx2, dDg2, dDb2, dSums, dAll, 2 * (int64_t)N * S, dDy, dMean, dRstd, dX, dG, N, C, S);
        check("batchnorm_backward_sums dx", dDx2, dx2, n, TOL_RED);
        check("batchnorm_backward_sums dgamma", dDg2, dg2, C, TOL_RED);
        check("batchnorm_backward_sums dbeta", dDb2, db2, C, TOL_RED);
        cu_free(dSums), cu_free(dAll);
        free(sums), free(all), free(hs), free(dx2), free(dg2), free(db2);
    }
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

static void linear_case(double tol, const char *tag) {
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
    char w_[96];
    snprintf(w_, sizeof w_, "linear%s forward", tag), check(w_, dY, y, (int64_t)N * O, tol);
    snprintf(w_, sizeof w_, "linear%s dx (added)", tag), check(w_, dDx, dx, (int64_t)N * I, tol);
    snprintf(w_, sizeof w_, "linear%s dweight (added)", tag), check(w_, dDw, dw, (int64_t)O * I, tol);
    snprintf(w_, sizeof w_, "linear%s dbias (added)", tag), check(w_, dDb, db, O, tol);
    cu_free(dX), cu_free(dW), cu_free(dB), cu_free(dDy);
    free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db);
}

static void conv_case_tol(int N, int C, int H, int W, int O, int K, int stride, int pad, int bias, double tol,
                          const char *tag) {
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
    snprintf(w_, sizeof w_, "conv2d%s %dx%d s%d p%d (%d,%d,%d,%d)->%d fwd", tag, K, K, stride, pad, N, C, H, W, O);
    check(w_, dY, y, ny, tol);
    snprintf(w_, sizeof w_, "conv2d%s %dx%d s%d p%d dx (added)", tag, K, K, stride, pad), check(w_, dDx, dx, nx, tol);
    snprintf(w_, sizeof w_, "conv2d%s %dx%d s%d p%d dweight (added)", tag, K, K, stride, pad), check(w_, dDw, dw, nw, tol);
    if (bias) snprintf(w_, sizeof w_, "conv2d%s %dx%d s%d p%d dbias (added)", tag, K, K, stride, pad), check(w_, dDb, db, O, tol);
    else cu_free(dDb);
    /* the input gradient written, not added (a gradient buffer's first contribution) */
    float *dxs = xmalloc((size_t)nx * sizeof(float)), *dDxs = up(dx, nx);
    conv2d_backward_data_set(dxs, dy, w, &s, NULL);
    conv2d_backward_data_set_cuda(dDxs, dDy, dW, &s, NULL);
    snprintf(w_, sizeof w_, "conv2d%s %dx%d s%d p%d dx (written)", tag, K, K, stride, pad), check(w_, dDxs, dxs, nx, tol);
    free(dxs);
    cu_free(dX), cu_free(dW), cu_free(dB), cu_free(dDy);
    free(x), free(w), free(b), free(dy), free(dx), free(dw), free(db), free(y);
}

static void conv_case(int N, int C, int H, int W, int O, int K, int stride, int pad, int bias) {
    conv_case_tol(N, C, H, W, O, K, stride, pad, bias, TOL_RED, "");
}

/* ---- the plan cache */

/* one convolution's inputs on the host and the device, and the CPU's results */
typedef struct ConvIn {
    Conv2dShape s;
    int64_t nx, nw, ny;
    float *x, *w, *b, *dy, *dx0;      /* host */
    float *dX, *dW, *dB, *dDy, *dDx0; /* device copies */
    float *y, *dxs, *dxa, *dw, *db;   /* the CPU's: forward, input gradient written and added onto dx0,
                                         weight and bias gradients added onto zeros */
} ConvIn;

/* the device's results of one pass of every convolution kernel, as ConvIn's CPU results */
typedef struct ConvOut {
    float *y, *dxs, *dxa, *dw, *db;
} ConvOut;

static ConvIn conv_in(int N, int C, int H, int W, int O, int K, int stride, int pad, uint64_t seed) {
    ConvIn c;
    c.s = conv2d_shape(N, C, H, W, O, K, K, stride, stride, pad, pad);
    c.nx = (int64_t)N * C * H * W, c.nw = (int64_t)O * C * K * K, c.ny = (int64_t)N * O * c.s.OH * c.s.OW;
    c.x = rnd(c.nx, -1, 1, seed), c.w = rnd(c.nw, -0.2f, 0.2f, seed + 1), c.b = rnd(O, -1, 1, seed + 2);
    c.dy = rnd(c.ny, -1, 1, seed + 3), c.dx0 = rnd(c.nx, -1, 1, seed + 4);
    c.dX = up(c.x, c.nx), c.dW = up(c.w, c.nw), c.dB = up(c.b, O), c.dDy = up(c.dy, c.ny), c.dDx0 = up(c.dx0, c.nx);
    c.y = xmalloc((size_t)c.ny * sizeof(float)), c.dxs = xmalloc((size_t)c.nx * sizeof(float));
    c.dxa = xmalloc((size_t)c.nx * sizeof(float)), c.dw = xcalloc((size_t)c.nw, sizeof(float));
    c.db = xcalloc((size_t)O, sizeof(float));
    memcpy(c.dxa, c.dx0, (size_t)c.nx * sizeof(float));
    conv2d_forward(c.y, c.x, c.w, c.b, &c.s, NULL);
    conv2d_backward_data_set(c.dxs, c.dy, c.w, &c.s, NULL);
    conv2d_backward(c.dxa, c.dw, c.db, c.dy, c.x, c.w, &c.s, NULL);
    return c;
}

static void conv_in_free(ConvIn *c) {
    cu_free(c->dX), cu_free(c->dW), cu_free(c->dB), cu_free(c->dDy), cu_free(c->dDx0);
    free(c->x), free(c->w), free(c->b), free(c->dy), free(c->dx0);
    free(c->y), free(c->dxs), free(c->dxa), free(c->dw), free(c->db);
}

static ConvOut conv_pass(const ConvIn *c) {
    const Conv2dShape *s = &c->s;
    ConvOut o;
    o.y = cu_alloc((size_t)c->ny * sizeof(float)), o.dxs = cu_alloc((size_t)c->nx * sizeof(float));
    o.dxa = cu_alloc((size_t)c->nx * sizeof(float)), o.dw = cu_alloc((size_t)c->nw * sizeof(float));
    o.db = cu_alloc((size_t)s->O * sizeof(float));
    cu_copy(o.dxa, c->dDx0, (size_t)c->nx * sizeof(float));
    cu_memset0(o.dw, (size_t)c->nw * sizeof(float)), cu_memset0(o.db, (size_t)s->O * sizeof(float));
    conv2d_forward_cuda(o.y, c->dX, c->dW, c->dB, s, NULL);
    conv2d_backward_data_set_cuda(o.dxs, c->dDy, c->dW, s, NULL);
    conv2d_backward_cuda(o.dxa, o.dw, o.db, c->dDy, c->dX, c->dW, s, NULL);
    return o;
}

static void conv_out_free(ConvOut *o) { cu_free(o->y), cu_free(o->dxs), cu_free(o->dxa), cu_free(o->dw), cu_free(o->db); }

/* as check(), keeping d */
static void near_cpu(const char *what, const float *d, const float *want, int64_t n, double tol) {
    float *got = xmalloc((size_t)n * sizeof(float));
    cu_download(got, d, (size_t)n * sizeof(float));
    double mx, r = rel_err(got, want, n, &mx);
    printf("  %-40s rel err %.2e (max abs %.2e) over %lld\n", what, r, mx, (long long)n);
    EXPECT(r <= tol, "%s: rel err %.3g > %.1g", what, r, tol);
    free(got);
}

static void conv_out_check(const char *what, const ConvIn *c, const ConvOut *o, double tol) {
    char w_[128];
    snprintf(w_, sizeof w_, "%s fwd", what), near_cpu(w_, o->y, c->y, c->ny, tol);
    snprintf(w_, sizeof w_, "%s dx (written)", what), near_cpu(w_, o->dxs, c->dxs, c->nx, tol);
    snprintf(w_, sizeof w_, "%s dx (added)", what), near_cpu(w_, o->dxa, c->dxa, c->nx, tol);
    snprintf(w_, sizeof w_, "%s dweight", what), near_cpu(w_, o->dw, c->dw, c->nw, tol);
    snprintf(w_, sizeof w_, "%s dbias", what), near_cpu(w_, o->db, c->db, c->s.O, tol);
}

/* 1 when the n floats at device a and b have the same bits */
static int same_bits(const float *a, const float *b, int64_t n) {
    size_t bytes = (size_t)n * sizeof(float);
    float *ha = xmalloc(bytes), *hb = xmalloc(bytes);
    cu_download(ha, a, bytes), cu_download(hb, b, bytes);
    int same = memcmp(ha, hb, bytes) == 0;
    free(ha), free(hb);
    return same;
}

/* the bits of two passes agree (deterministic algorithms: the default, see conv2d.cu) */
static void conv_out_same(const char *what, const ConvIn *c, const ConvOut *a, const ConvOut *b) {
    const char *nd = getenv("ATTNGAN_CUDNN_NONDETERMINISTIC");
    if (nd && !strcmp(nd, "1")) {
        printf("  %-40s bits not compared: ATTNGAN_CUDNN_NONDETERMINISTIC=1\n", what);
        return;
    }
    int same = same_bits(a->y, b->y, c->ny) && same_bits(a->dxs, b->dxs, c->nx) && same_bits(a->dxa, b->dxa, c->nx) &&
               same_bits(a->dw, b->dw, c->nw) && same_bits(a->db, b->db, c->s.O);
    printf("  %-40s %s\n", what, same ? "same bits twice" : "BITS DIFFER");
    EXPECT(same, "%s: the same convolution gave other bits (forward, input, weight or bias gradient)", what);
}

/* the same convolution twice: the second pass finds its plans (no new entry) and gives the same bits */
static void conv_repeat_case(const char *tag, double tol) {
    ConvIn c = conv_in(2, 16, 21, 23, 24, 3, 1, 1, 40);
    char what[96];
    snprintf(what, sizeof what, "conv2d%s repeat 3x3 s1 p1", tag);
    ConvOut a = conv_pass(&c);
    size_t e = cu_conv_cache_entries();
    ConvOut b = conv_pass(&c);
    EXPECT(cu_conv_cache_entries() == e, "%s: the second pass made new plans (%zu -> %zu entries)", what, e,
           cu_conv_cache_entries());
    conv_out_check(what, &c, &a, tol);
    conv_out_same(what, &c, &a, &b);
    conv_out_free(&a), conv_out_free(&b);
    conv_in_free(&c);
}

/* several shapes interleaved, three rounds, from an empty cache: one plan per shape and direction
 * (forward, backward data, backward filter, bias), and every round the first round's bits. The
 * first two shapes have the same input, weight and output sizes and differ only in stride and
 * padding: a key that forgot them would run one's plan for the other (and miss the CPU). */
static void conv_interleaved_case(const char *tag, double tol) {
    enum { NS = 4 };
    cu_conv_cache_clear();
    EXPECT(cu_conv_cache_entries() == 0, "cu_conv_cache_clear empties the cache (%zu entries)", cu_conv_cache_entries());
    ConvIn c[NS] = {conv_in(2, 8, 7, 7, 12, 3, 1, 0, 50), conv_in(2, 8, 7, 7, 12, 3, 2, 2, 50),
                    conv_in(3, 16, 16, 16, 8, 1, 1, 0, 52), conv_in(2, 4, 33, 31, 16, 4, 2, 1, 53)};
    EXPECT(c[0].s.OH == c[1].s.OH && c[0].s.OW == c[1].s.OW, "the first two shapes have the same output size");
    ConvOut first[NS];
    char what[96];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < NS; i++) {
            const Conv2dShape *s = &c[i].s;
            snprintf(what, sizeof what, "conv2d%s interleaved %dx%d s%d p%d", tag, s->KH, s->KW, s->stride_h, s->pad_h);
            ConvOut o = conv_pass(&c[i]);
            if (round == 0) {
                conv_out_check(what, &c[i], &o, tol);
                first[i] = o;
            } else {
                if (round == 2) conv_out_same(what, &c[i], &first[i], &o);
                conv_out_free(&o);
            }
        }
        size_t e = cu_conv_cache_entries();
        EXPECT(e == 4 * NS, "conv2d%s interleaved, round %d: %zu plans, want %d (4 directions x %d shapes)", tag, round, e,
               4 * NS, NS);
    }
    printf("  conv2d%s interleaved: %zu plans for %d shapes\n", tag, cu_conv_cache_entries(), NS);
    for (int i = 0; i < NS; i++) conv_out_free(&first[i]), conv_in_free(&c[i]);
}

/* TF32 (cu_set_math_tf32(1), as ATTNGAN_CUDA_MATH=tf32): linear and convolutions within TOL_TF32 of
 * the CPU's fp32, convolutions with plans of their own (the math mode is part of the key) */
static void tf32_case(void) {
    conv_case(2, 3, 17, 19, 8, 3, 1, 1, 1); /* fp32 plans of this shape exist */
    size_t e = cu_conv_cache_entries();
    cu_set_math_tf32(1);
    EXPECT(cu_math_tf32() == 1, "cu_set_math_tf32(1) takes");
    conv_case_tol(2, 3, 17, 19, 8, 3, 1, 1, 1, TOL_TF32, " tf32");
    EXPECT(cu_conv_cache_entries() == e + 4, "the tf32 run of a shape made its own 4 plans (%zu -> %zu entries)", e,
           cu_conv_cache_entries());
    linear_case(TOL_TF32, " tf32");
    conv_case_tol(3, 16, 35, 35, 32, 3, 2, 0, 0, TOL_TF32, " tf32");
    conv_case_tol(2, 64, 17, 17, 48, 1, 1, 0, 1, TOL_TF32, " tf32");
    conv_case_tol(4, 8, 64, 64, 16, 4, 2, 1, 0, TOL_TF32, " tf32");
    conv_repeat_case(" tf32", TOL_TF32);
    cu_set_math_tf32(0);
    EXPECT(cu_math_tf32() == 0, "cu_set_math_tf32(0) takes");
}

/* ATTNGAN_CUDNN_AUTOTUNE=1's timed choice (cu_conv_set_autotune(1)) on new plans: the same checks */
static void autotune_case(void) {
    int was = cu_conv_autotune();
    cu_conv_cache_clear();
    cu_conv_set_autotune(1);
    EXPECT(cu_conv_autotune() == 1, "cu_conv_set_autotune(1) takes");
    conv_case_tol(2, 3, 17, 19, 8, 3, 1, 1, 1, TOL_RED, " autotuned");
    conv_case_tol(3, 16, 35, 35, 32, 3, 2, 0, 0, TOL_RED, " autotuned");
    conv_repeat_case(" autotuned", TOL_RED);
    conv_interleaved_case(" autotuned", TOL_RED);
    cu_set_math_tf32(1);
    conv_case_tol(2, 64, 17, 17, 48, 3, 1, 1, 1, TOL_TF32, " tf32 autotuned");
    conv_repeat_case(" tf32 autotuned", TOL_TF32);
    cu_set_math_tf32(0);
    cu_conv_set_autotune(was);
    cu_conv_cache_clear();
}

/* ATTNGAN_CUDA_MATH=bf16 is refused by cu_available with its reason. In a child, before this
 * process initialises CUDA (the variable is read once): runs without a GPU too. */
static int math_bf16_refused(void) {
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("ATTNGAN_CUDA_MATH", "bf16", 1);
        const char *why = "";
        int ok = cu_available(&why);
        _exit(!ok && strstr(why, "ATTNGAN_CUDA_MATH") && strstr(why, "bf16") ? 0 : 1);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) return 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(void) {
    int bf16_refused = math_bf16_refused();
    test_begin("test_cuda_ops");
    EXPECT(bf16_refused, "ATTNGAN_CUDA_MATH=bf16 is refused by cu_available, naming the variable");
    const char *why = "";
    if (!cu_available(&why)) {
        test_skip("no CUDA device here (%s): every GPU check of test_cuda_ops skipped", why);
        return test_end();
    }
    const char *math = getenv("ATTNGAN_CUDA_MATH");
    int env_tf32 = math && !strcmp(math, "tf32");
    EXPECT(cu_math_tf32() == env_tf32, "ATTNGAN_CUDA_MATH=%s read: cu_math_tf32() = %d", math ? math : "(unset)",
           cu_math_tf32());
    cu_set_math_tf32(0); /* the fp32 cases, whatever the environment says */
    unary_case("relu", relu_forward, relu_forward_cuda, relu_backward, relu_backward_cuda, 1);
    unary_case("leaky_relu", lrelu_f, lrelu_fg, lrelu_b, lrelu_bg, 0);
    unary_case("tanh", tanh_forward, tanh_forward_cuda, tanh_backward, tanh_backward_cuda, 1);
    unary_case("sigmoid", sigmoid_forward, sigmoid_forward_cuda, sigmoid_backward, sigmoid_backward_cuda, 1);
    gate_case();
    glu_case();
    batchnorm_case(1);
    batchnorm_case(0);
    linear_case(TOL_RED, "");
    conv_case(2, 3, 17, 19, 8, 3, 1, 1, 1);
    conv_case(3, 16, 35, 35, 32, 3, 2, 0, 0);
    conv_case(2, 64, 17, 17, 48, 1, 1, 0, 1);
    conv_case(4, 8, 64, 64, 16, 4, 2, 1, 0);
    conv_repeat_case("", TOL_RED);
    conv_interleaved_case("", TOL_RED);
    tf32_case();
    autotune_case();
    cu_set_math_tf32(env_tf32);
    printf("  cuDNN plans cached: %zu (autotune %s)\n", cu_conv_cache_entries(), cu_conv_autotune() ? "on" : "off");
    CuStats st = cu_stats();
    printf("  device memory: peak live %.1f MiB, %zu cudaMalloc calls\n", st.peak_live / 1048576.0, st.n_malloc);
    EXPECT(st.live == 0, "every device block was freed (%zu bytes live)", st.live);
    return test_end();
}
