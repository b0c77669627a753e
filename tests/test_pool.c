/* test_pool.c: max and average pooling against PyTorch fixtures, finite differences, the
 * first-maximum rule on ties, padding as -inf, thread-count determinism, and bit-for-bit agreement
 * of the row-vectorised kernels with one-window-at-a-time loops (PyTorch's CPU order) on random
 * geometries with ties, NaN and -inf. */
#include "test.h"
#include "../src/ops/pool.h"
#include "../src/ops/shape.h"

#include <stdlib.h>
#include <string.h>

typedef struct PoolArgs {
    int kernel, stride, pad, count_include_pad;
} PoolArgs;

static Tensor *fwd_max(Tape *tp, Tensor **in, void *ctx) {
    const PoolArgs *a = ctx;
    return op_maxpool2d(tp, in[0], a->kernel, a->stride, a->pad);
}
static Tensor *fwd_avg(Tape *tp, Tensor **in, void *ctx) {
    const PoolArgs *a = ctx;
    return op_avgpool2d(tp, in[0], a->kernel, a->stride, a->pad, a->count_include_pad);
}

/* Forward and backward of one fixture case against PyTorch. */
static void value_case(SafeTensors *fx, const char *name, GradcheckFn fn) {
    char k[128];
    float args[4];
    snprintf(k, sizeof k, "%s.args", name);
    if (st_read_f32(fx, k, args, 4)) FAIL("%s", err_msg());
    PoolArgs a = {(int)args[0], (int)args[1], (int)args[2], (int)args[3]};
    snprintf(k, sizeof k, "%s.in0", name);
    Tensor *x = fixture_tensor(fx, k, 1);
    snprintf(k, sizeof k, "%s.out", name);
    Tensor *want = fixture_tensor(fx, k, 0);
    snprintf(k, sizeof k, "%s.gout", name);
    Tensor *gout = fixture_tensor(fx, k, 0);
    snprintf(k, sizeof k, "%s.grad0", name);
    Tensor *gwant = fixture_tensor(fx, k, 0);
    Tape tp;
    tape_init(&tp);
    Tensor *y = fn(&tp, &x, &a);
    snprintf(k, sizeof k, "%s forward", name);
    if (EXPECT(tensor_same_shape(y, want), "%s: shape", k)) {
        expect_close(k, y->data, want->data, want->n, 1e-6);
        const float *seed = gout->data;
        tape_backward_seeded(&tp, 1, &y, &seed);
        snprintf(k, sizeof k, "%s grad of input", name);
        expect_close(k, x->grad, gwant->data, gwant->n, 1e-6);
    }
    tape_free(&tp);
    tensor_free(x);
    tensor_free(want);
    tensor_free(gout);
    tensor_free(gwant);
}

static void value_tests(void) {
    SafeTensors *fx = fixture_open("pool");
    if (!fx) return;
    const char *max_cases[] = {"max_3s2", "max_3s2p1", "max_2s2", "max_ties", "max_neg_pad"};
    const char *avg_cases[] = {"avg_3s1p1", "avg_3s1p1_nopad", "avg_8", "avg_8_floor", "avg_3s2p1_nopad", "avg_4s3p2"};
    for (size_t i = 0; i < sizeof max_cases / sizeof max_cases[0]; i++) value_case(fx, max_cases[i], fwd_max);
    for (size_t i = 0; i < sizeof avg_cases / sizeof avg_cases[0]; i++) value_case(fx, avg_cases[i], fwd_avg);
    fixture_close(fx);
}

/* x (n): a random permutation of (i - n/2) * spacing: distinct values, no ties within 2h */
static void fill_distinct(float *x, int64_t n, float spacing, uint64_t seed) {
    Rng r;
    rng_init(&r, seed);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(i - n / 2) * spacing;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = rng_below(&r, (uint32_t)(i + 1));
        float t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
}

static void grad_case(const char *name, GradcheckFn fn, PoolArgs a, int N, int C, int H, int W, uint64_t seed) {
    Tensor *x = tensor_alloc(4, (int[]){N, C, H, W}, 1);
    if (fn == fwd_max) fill_distinct(x->data, x->n, 0.05f, seed);   /* spacing 0.05 > 2h = 0.02 */
    else fill_uniform(x->data, x->n, -1, 1, seed);
    gradcheck(name, fn, 1, &x, &a, &(GradcheckOpts){.max_elems = -1});
    tensor_free(x);
}

static void grad_tests(void) {
    grad_case("maxpool 3/2/0", fwd_max, (PoolArgs){3, 2, 0, 1}, 2, 2, 9, 9, 61);
    grad_case("maxpool 3/2/1", fwd_max, (PoolArgs){3, 2, 1, 1}, 1, 2, 7, 8, 62);
    grad_case("maxpool 2/1/1", fwd_max, (PoolArgs){2, 1, 1, 1}, 1, 1, 5, 6, 63);
    grad_case("avgpool 3/1/1 include pad", fwd_avg, (PoolArgs){3, 1, 1, 1}, 1, 2, 6, 7, 64);
    grad_case("avgpool 3/1/1 exclude pad", fwd_avg, (PoolArgs){3, 1, 1, 0}, 1, 2, 6, 7, 65);
    grad_case("avgpool 8", fwd_avg, (PoolArgs){8, 8, 0, 1}, 2, 1, 8, 8, 66);
    grad_case("avgpool 3/2/1 exclude pad", fwd_avg, (PoolArgs){3, 2, 1, 0}, 1, 1, 7, 8, 67);
}

/* Constant negative input: every window is one big tie and padding (-inf) never wins, so each
 * output's gradient lands on its window's first in-image element (PyTorch's rule). */
static void tie_tests(void) {
    const int H = 5, W = 6, k = 3, s = 2, p = 1;
    const int OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
    Tensor *x = tensor_alloc(4, (int[]){1, 1, H, W}, 1);
    for (int64_t i = 0; i < x->n; i++) x->data[i] = -2.0f;
    Tape tp;
    tape_init(&tp);
    Tensor *y = op_maxpool2d(&tp, x, k, s, p);
    int all_m2 = 1;
    for (int64_t i = 0; i < y->n; i++) all_m2 &= y->data[i] == -2.0f;
    EXPECT(all_m2, "maxpool of a constant -2 with padding: every output is -2 (padding is -inf)");
    float *g = xmalloc((size_t)y->n * sizeof(float)), *want = xcalloc((size_t)x->n, sizeof(float));
    for (int oy = 0; oy < OH; oy++)
        for (int ox = 0; ox < OW; ox++) {
            g[oy * OW + ox] = (float)(1 + oy * OW + ox);   /* distinct, so a wrong target shows */
            int y0 = oy * s - p < 0 ? 0 : oy * s - p, x0 = ox * s - p < 0 ? 0 : ox * s - p;
            want[y0 * W + x0] += g[oy * OW + ox];
        }
    const float *seed = g;
    tape_backward_seeded(&tp, 1, &y, &seed);
    expect_close("maxpool ties: gradient goes to the first maximum", x->grad, want, x->n, 0);
    free(g);
    free(want);
    tape_free(&tp);
    tensor_free(x);
}

/* no grad mode: nothing recorded (and no indices kept) */
static void no_grad_tests(void) {
    Tensor *x = tensor_alloc(4, (int[]){1, 2, 6, 6}, 1);
    fill_uniform(x->data, x->n, -1, 1, 70);
    Tape tp;
    tape_init(&tp);
    tape_no_grad_begin(&tp);
    Tensor *y = op_avgpool2d(&tp, op_maxpool2d(&tp, x, 3, 2, 1), 2, 1, 0, 0);
    tape_no_grad_end(&tp);
    EXPECT(tp.n_nodes == 0 && !y->requires_grad && y->shape[2] == 2 && y->shape[3] == 2,
           "pooling under no-grad: %d nodes, output (%d, %d)", tp.n_nodes, y->shape[2], y->shape[3]);
    tape_free(&tp);
    tensor_free(x);
}

/* same bits on 1 and 2 threads for sizes above the OpenMP cutoff */
static void determinism_tests(void) {
    const int NC = 9, H = 64, W = 64, k = 3, s = 2, p = 1, OH = 32, OW = 32;
    int64_t nin = (int64_t)NC * H * W, nout = (int64_t)NC * OH * OW;
    float *x = xmalloc(nin * sizeof(float)), *g = xmalloc(nout * sizeof(float));
    fill_uniform(x, nin, -1, 1, 71);
    fill_uniform(g, nout, -1, 1, 72);
    float *ym[2], *ya[2], *dm[2], *da[2];
    int32_t *idx = xmalloc(nout * sizeof(int32_t));
    for (int t = 0; t < 2; t++) {
        threads_set(t + 1);
        ym[t] = xmalloc(nout * sizeof(float));
        ya[t] = xmalloc(nout * sizeof(float));
        dm[t] = xcalloc(nin, sizeof(float));
        da[t] = xcalloc(nin, sizeof(float));
        maxpool2d_forward(ym[t], idx, x, NC, H, W, k, s, p);
        maxpool2d_backward(dm[t], g, idx, NC, H, W, k, s, p);
        avgpool2d_forward(ya[t], x, NC, H, W, k, s, p, 0);
        avgpool2d_backward(da[t], g, NC, H, W, k, s, p, 0);
    }
    threads_set(0);
    EXPECT(!memcmp(ym[0], ym[1], nout * sizeof(float)) && !memcmp(dm[0], dm[1], nin * sizeof(float)),
           "maxpool differs between 1 and 2 threads");
    EXPECT(!memcmp(ya[0], ya[1], nout * sizeof(float)) && !memcmp(da[0], da[1], nin * sizeof(float)),
           "avgpool differs between 1 and 2 threads");
    for (int t = 0; t < 2; t++) {
        free(ym[t]);
        free(ya[t]);
        free(dm[t]);
        free(da[t]);
    }
    free(idx);
    free(x);
    free(g);
}

/* ---------------------------------------------------------------- the one-window-at-a-time loops */

static int ref_size(int in, int k, int s, int p) { return (in + 2 * p - k) / s + 1; }

typedef struct RefWin {
    int y0, y1, x0, x1, padded;
} RefWin;

static RefWin ref_win(int oy, int ox, int H, int W, int k, int s, int p) {
    int y0 = oy * s - p, x0 = ox * s - p;
    int y1 = y0 + k < H + p ? y0 + k : H + p, x1 = x0 + k < W + p ? x0 + k : W + p;
    RefWin w = {y0 < 0 ? 0 : y0, y1 < H ? y1 : H, x0 < 0 ? 0 : x0, x1 < W ? x1 : W, (y1 - y0) * (x1 - x0)};
    return w;
}

static void ref_max(float *out, int32_t *idx, const float *src, int H, int W, int k, int s, int p) {
    int OH = ref_size(H, k, s, p), OW = ref_size(W, k, s, p);
    for (int oy = 0; oy < OH; oy++)
        for (int ox = 0; ox < OW; ox++) {
            RefWin w = ref_win(oy, ox, H, W, k, s, p);
            int best = w.y0 * W + w.x0;
            float m = -INFINITY;
            for (int y = w.y0; y < w.y1; y++)
                for (int x = w.x0; x < w.x1; x++) {
                    float v = src[y * W + x];
                    if (v > m || isnan(v)) {
                        m = v;
                        best = y * W + x;
                    }
                }
            out[oy * OW + ox] = m;
            idx[oy * OW + ox] = best;
        }
}

static float ref_div(const RefWin *w, int cip) { return (float)(cip ? w->padded : (w->y1 - w->y0) * (w->x1 - w->x0)); }

static void ref_avg(float *out, const float *src, int H, int W, int k, int s, int p, int cip) {
    int OH = ref_size(H, k, s, p), OW = ref_size(W, k, s, p);
    for (int oy = 0; oy < OH; oy++)
        for (int ox = 0; ox < OW; ox++) {
            RefWin w = ref_win(oy, ox, H, W, k, s, p);
            float sum = 0.0f;
            for (int y = w.y0; y < w.y1; y++)
                for (int x = w.x0; x < w.x1; x++) sum += src[y * W + x];
            out[oy * OW + ox] = sum / ref_div(&w, cip);
        }
}

static void ref_avg_backward(float *d, const float *g, int H, int W, int k, int s, int p, int cip) {
    int OH = ref_size(H, k, s, p), OW = ref_size(W, k, s, p);
    for (int oy = 0; oy < OH; oy++)
        for (int ox = 0; ox < OW; ox++) {
            RefWin w = ref_win(oy, ox, H, W, k, s, p);
            float delta = g[oy * OW + ox] / ref_div(&w, cip);
            for (int y = w.y0; y < w.y1; y++)
                for (int x = w.x0; x < w.x1; x++) d[y * W + x] += delta;
        }
}

/* Random kernels 1..8, strides 1..4, every legal padding, planes from the kernel size up; inputs
 * with ties, NaN and -inf (max) or finite values (average); gradients added into non-zero buffers. */
static void reference_tests(void) {
    Rng r;
    rng_init(&r, 80);
    int bad_max = 0, bad_avg = 0, bad_avg_bwd = 0, bad_max_bwd = 0, cases = 400;
    /* first the Inception geometries (3x3 stride 2 unpadded, 3x3 stride 1 padded 1), then random ones */
    static const int fixed[][4] = {{3, 2, 0, 17}, {3, 2, 0, 35}, {3, 2, 0, 8}, {3, 1, 1, 8}, {3, 1, 1, 17}, {3, 1, 1, 3}};
    const int n_fixed = (int)(sizeof fixed / sizeof fixed[0]);
    for (int t = 0; t < cases; t++) {
        int k = 1 + (int)rng_below(&r, 8), s = 1 + (int)rng_below(&r, 4), p = (int)rng_below(&r, (uint32_t)(k / 2 + 1));
        int H = k + (int)rng_below(&r, 24), W = k + (int)rng_below(&r, 24), NC = 1 + (int)rng_below(&r, 3);
        if (t % 7 == 0) H = k; /* a single output row */
        if (t < 2 * n_fixed) { /* each fixed geometry square and with one more column */
            k = fixed[t / 2][0], s = fixed[t / 2][1], p = fixed[t / 2][2], H = fixed[t / 2][3], W = H + t % 2;
        }
        int OH = ref_size(H, k, s, p), OW = ref_size(W, k, s, p);
        int64_t ni = (int64_t)NC * H * W, no = (int64_t)NC * OH * OW;
        float *x = xmalloc((size_t)ni * sizeof(float)), *g = xmalloc((size_t)no * sizeof(float));
        float *o1 = xmalloc((size_t)no * sizeof(float)), *o2 = xmalloc((size_t)no * sizeof(float));
        int32_t *i1 = xmalloc((size_t)no * sizeof(int32_t)), *i2 = xmalloc((size_t)no * sizeof(int32_t));
        float *d1 = xmalloc((size_t)ni * sizeof(float)), *d2 = xmalloc((size_t)ni * sizeof(float));
        fill_uniform(x, ni, -1, 1, 1000 + t);
        fill_uniform(g, no, -1, 1, 2000 + t);
        for (int64_t i = 0; i < ni; i++) {
            uint32_t u = rng_below(&r, 20);
            if (u == 0) x[i] = NAN;
            else if (u == 1) x[i] = -INFINITY;
            else if (u < 6) x[i] = 0.5f; /* ties */
        }
        for (int c = 0; c < NC; c++) ref_max(o1 + c * OH * OW, i1 + c * OH * OW, x + c * H * W, H, W, k, s, p);
        maxpool2d_forward(o2, i2, x, NC, H, W, k, s, p);
        bad_max += memcmp(o1, o2, (size_t)no * sizeof(float)) || memcmp(i1, i2, (size_t)no * sizeof(int32_t));
        maxpool2d_forward(o2, NULL, x, NC, H, W, k, s, p);
        bad_max += memcmp(o1, o2, (size_t)no * sizeof(float)) != 0;
        fill_uniform(d1, ni, -1, 1, 3000 + t);
        memcpy(d2, d1, (size_t)ni * sizeof(float));
        for (int c = 0; c < NC; c++)
            for (int o = 0; o < OH * OW; o++) d1[c * H * W + i1[c * OH * OW + o]] += g[c * OH * OW + o];
        maxpool2d_backward(d2, g, i2, NC, H, W, k, s, p);
        bad_max_bwd += memcmp(d1, d2, (size_t)ni * sizeof(float)) != 0;
        for (int64_t i = 0; i < ni; i++)
            if (!isfinite(x[i])) x[i] = 0.25f;
        for (int cip = 0; cip < 2; cip++) {
            for (int c = 0; c < NC; c++) ref_avg(o1 + c * OH * OW, x + c * H * W, H, W, k, s, p, cip);
            avgpool2d_forward(o2, x, NC, H, W, k, s, p, cip);
            bad_avg += memcmp(o1, o2, (size_t)no * sizeof(float)) != 0;
            fill_uniform(d1, ni, -1, 1, 4000 + t);
            memcpy(d2, d1, (size_t)ni * sizeof(float));
            for (int c = 0; c < NC; c++) ref_avg_backward(d1 + c * H * W, g + c * OH * OW, H, W, k, s, p, cip);
            avgpool2d_backward(d2, g, NC, H, W, k, s, p, cip);
            bad_avg_bwd += memcmp(d1, d2, (size_t)ni * sizeof(float)) != 0;
        }
        free(x), free(g), free(o1), free(o2), free(i1), free(i2), free(d1), free(d2);
    }
    EXPECT(bad_max == 0, "maxpool forward (values, indices) bitwise as one window at a time: %d of %d differ", bad_max,
           2 * cases);
    EXPECT(bad_max_bwd == 0, "maxpool backward bitwise as the reference: %d of %d differ", bad_max_bwd, cases);
    EXPECT(bad_avg == 0, "avgpool forward bitwise as one window at a time: %d of %d differ", bad_avg, 2 * cases);
    EXPECT(bad_avg_bwd == 0, "avgpool backward bitwise as one window at a time: %d of %d differ", bad_avg_bwd, 2 * cases);
}

/* nChw16c input: the same output and input-gradient bits as NCHW, for max and average pools of
 * the trunk's kinds and others (padding, clipped windows, strides, a global pool). */
static void blocked_tests(void) {
    const struct { const char *name; int is_max; PoolArgs a; int H, W; } cs[] = {
        {"max 3/2/0", 1, {3, 2, 0, 1}, 11, 13}, {"max 3/2/1", 1, {3, 2, 1, 1}, 9, 8},
        {"avg 3/1/1 include pad", 0, {3, 1, 1, 1}, 7, 9}, {"avg 3/1/1 exclude pad", 0, {3, 1, 1, 0}, 8, 6},
        {"avg 8/8/0", 0, {8, 8, 0, 1}, 8, 8}, {"avg 3/2/1 exclude pad", 0, {3, 2, 1, 0}, 9, 10},
    };
    const int N = 2, C = 32;
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        int H = cs[k].H, W = cs[k].W, S = H * W;
        Tensor *x = tensor_alloc(4, (int[]){N, C, H, W}, 1), *xb = tensor_alloc(4, (int[]){N, C, H, W}, 1);
        fill_distinct(x->data, x->n, 0.01f, 90 + k);
        x->data[5] = x->data[6]; /* one tie */
        to_blocked16(xb->data, x->data, N, C, S);
        xb->blocked = true;
        Tape tp;
        tape_init(&tp);
        GradcheckFn fn = cs[k].is_max ? fwd_max : fwd_avg;
        Tensor *y = fn(&tp, &x, (void *)&cs[k].a), *yb = fn(&tp, &xb, (void *)&cs[k].a);
        int OS = y->shape[2] * y->shape[3];
        float *yb_plain = xmalloc((size_t)y->n * sizeof(float)), *g = xmalloc((size_t)y->n * sizeof(float));
        float *gb = xmalloc((size_t)y->n * sizeof(float)), *dxb = xmalloc((size_t)x->n * sizeof(float));
        from_blocked16(yb_plain, yb->data, N, C, OS);
        EXPECT(yb->blocked && tensor_same_shape(y, yb) && memcmp(yb_plain, y->data, (size_t)y->n * sizeof(float)) == 0,
               "pool %s: nChw16c output has the NCHW output's bits", cs[k].name);
        fill_uniform(g, y->n, -1, 1, 95 + k);
        to_blocked16(gb, g, N, C, OS);
        const float *seeds[] = {g, gb};
        Tensor *outs[] = {y, yb};
        tape_backward_seeded(&tp, 2, outs, seeds);
        from_blocked16(dxb, xb->grad, N, C, S);
        EXPECT(memcmp(dxb, x->grad, (size_t)x->n * sizeof(float)) == 0, "pool %s: nChw16c input gradient has the "
               "NCHW gradient's bits", cs[k].name);
        free(yb_plain), free(g), free(gb), free(dxb);
        tape_free(&tp);
        tensor_free(x);
        tensor_free(xb);
    }
}

/* A pool over a non-leaf: its input gradient is fresh, so the blocked backward writes it (set)
 * when it runs first and adds when a second consumer (an average pool, whose backward runs first
 * when it was recorded last) wrote before it. Both orders against NCHW, bitwise. */
static Tensor *pooled_pair(Tape *tp, Tensor *a, Tensor *b, const PoolArgs *pa, int is_max, int second_first, Tensor **z) {
    Tensor *cat = op_concat(tp, 2, (Tensor *[]){a, b}, 1); /* a non-leaf: a fresh gradient */
    Tensor *y = NULL;
    if (!second_first) y = is_max ? op_maxpool2d(tp, cat, pa->kernel, pa->stride, pa->pad)
                                  : op_avgpool2d(tp, cat, pa->kernel, pa->stride, pa->pad, pa->count_include_pad);
    *z = op_avgpool2d(tp, cat, 3, 1, 1, 1);
    if (second_first) y = is_max ? op_maxpool2d(tp, cat, pa->kernel, pa->stride, pa->pad)
                                 : op_avgpool2d(tp, cat, pa->kernel, pa->stride, pa->pad, pa->count_include_pad);
    return y;
}

static void blocked_fresh_tests(void) {
    const struct { const char *name; int is_max; PoolArgs a; int H, W; } cs[] = {
        {"max 3/2/0", 1, {3, 2, 0, 1}, 11, 13}, {"max 3/2/1", 1, {3, 2, 1, 1}, 9, 8},
        {"avg 3/1/1 include pad", 0, {3, 1, 1, 1}, 7, 9}, {"avg 3/2/1 exclude pad", 0, {3, 2, 1, 0}, 9, 10},
    };
    const int N = 2, C = 16;
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++)
        for (int order = 0; order < 2; order++) {
            int H = cs[k].H, W = cs[k].W, S = H * W;
            Tensor *x[2], *xb[2];
            for (int i = 0; i < 2; i++) {
                x[i] = tensor_alloc(4, (int[]){N, C, H, W}, 1), xb[i] = tensor_alloc(4, (int[]){N, C, H, W}, 1);
                fill_distinct(x[i]->data, x[i]->n, 0.01f, 300 + 10 * k + i);
                to_blocked16(xb[i]->data, x[i]->data, N, C, S);
                xb[i]->blocked = true;
            }
            Tape tp;
            tape_init(&tp);
            Tensor *z, *zb;
            Tensor *y = pooled_pair(&tp, x[0], x[1], &cs[k].a, cs[k].is_max, order, &z);
            Tensor *yb = pooled_pair(&tp, xb[0], xb[1], &cs[k].a, cs[k].is_max, order, &zb);
            int OS = y->shape[2] * y->shape[3];
            float *g = xmalloc((size_t)y->n * sizeof(float)), *gb = xmalloc((size_t)y->n * sizeof(float));
            float *h = xmalloc((size_t)z->n * sizeof(float)), *hb = xmalloc((size_t)z->n * sizeof(float));
            fill_uniform(g, y->n, -1, 1, 400 + k);
            fill_uniform(h, z->n, -1, 1, 500 + k);
            to_blocked16(gb, g, N, 2 * C, OS);
            to_blocked16(hb, h, N, 2 * C, S);
            const float *seeds[] = {g, h, gb, hb};
            Tensor *outs[] = {y, z, yb, zb};
            tape_backward_seeded(&tp, 4, outs, seeds);
            int same = 1;
            float *d = xmalloc((size_t)x[0]->n * sizeof(float));
            for (int i = 0; i < 2; i++) {
                from_blocked16(d, xb[i]->grad, N, C, S);
                same &= memcmp(d, x[i]->grad, (size_t)x[i]->n * sizeof(float)) == 0;
            }
            EXPECT(same, "pool %s over a non-leaf nChw16c input (%s): the NCHW gradient's bits", cs[k].name,
                   order ? "added after the second consumer's" : "written first");
            free(g), free(gb), free(h), free(hb), free(d);
            tape_free(&tp);
            for (int i = 0; i < 2; i++) tensor_free(x[i]), tensor_free(xb[i]);
        }
}

int main(void) {
    test_begin("test_pool");
    blocked_tests();
    blocked_fresh_tests();
    value_tests();
    grad_tests();
    tie_tests();
    no_grad_tests();
    determinism_tests();
    reference_tests();
    return test_end();
}
