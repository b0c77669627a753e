/* test_pool.c: max and average pooling against PyTorch fixtures, finite differences, the
 * first-maximum rule on ties, padding as -inf, and thread-count determinism. */
#include "test.h"
#include "../src/ops/pool.h"

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

int main(void) {
    test_begin("test_pool");
    value_tests();
    grad_tests();
    tie_tests();
    no_grad_tests();
    determinism_tests();
    return test_end();
}
