/* test_conv2d.c: conv2d forward/backward against PyTorch fixtures, finite differences and frozen
 * inputs, run once per implementation (im2col + OpenBLAS, then oneDNN); for im2col, chunked against
 * unchunked and identical results with 1 and 2 threads; for oneDNN, agreement with im2col (gradients
 * added into non-zero buffers, every NULL combination), identical results run to run at 1 and 2
 * threads, and several threads running convolutions at once. */
#include "test.h"
#include "../src/core/mempool.h"
#include "../src/ops/conv2d.h"

#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct ConvCfg {
    int stride_h, stride_w, pad_h, pad_w;
} ConvCfg;

static Tensor *fwd_conv(Tape *tp, Tensor **in, void *ctx) {
    const ConvCfg *c = ctx;
    return op_conv2d(tp, in[0], in[1], in[2], c->stride_h, c->stride_w, c->pad_h, c->pad_w);
}

/* ---------------------------------------------------------------- PyTorch values */

static void value_case(SafeTensors *fx, const char *name) {
    char k[128];
    snprintf(k, sizeof k, "%s.cfg", name);
    int64_t n_cfg, *cfg = fixture_i64(fx, k, &n_cfg);
    CHECK(n_cfg == 4, "fixture %s: cfg has %lld values", name, (long long)n_cfg);
    ConvCfg c = {(int)cfg[0], (int)cfg[1], (int)cfg[2], (int)cfg[3]};
    free(cfg);
    snprintf(k, sizeof k, "%s.in2", name);
    int n_in = fixture_has(fx, k) ? 3 : 2;
    Tensor *in[3] = {NULL, NULL, NULL};
    for (int i = 0; i < n_in; i++) {
        snprintf(k, sizeof k, "%s.in%d", name, i);
        in[i] = fixture_tensor(fx, k, 1);
    }
    snprintf(k, sizeof k, "%s.out", name);
    Tensor *want = fixture_tensor(fx, k, 0);
    snprintf(k, sizeof k, "%s.gout", name);
    Tensor *gout = fixture_tensor(fx, k, 0);
    Tape tp;
    tape_init(&tp);
    Tensor *y = fwd_conv(&tp, in, &c);
    snprintf(k, sizeof k, "conv2d %s forward", name);
    if (EXPECT(tensor_same_shape(y, want), "%s: shape", k)) {
        expect_close(k, y->data, want->data, want->n, 1e-5);
        const float *seed = gout->data;
        tape_backward_seeded(&tp, 1, &y, &seed);
        for (int i = 0; i < n_in; i++) {
            snprintf(k, sizeof k, "%s.grad%d", name, i);
            Tensor *g = fixture_tensor(fx, k, 0);
            snprintf(k, sizeof k, "conv2d %s grad of input %d", name, i);
            expect_close(k, in[i]->grad, g->data, g->n, 1e-5);
            tensor_free(g);
        }
    }
    tape_free(&tp);
    for (int i = 0; i < 3; i++) tensor_free(in[i]);
    tensor_free(want);
    tensor_free(gout);
}

static void value_tests(void) {
    static const char *names[] = {"k3", "k3_nopad", "k3s2", "k4s2", "k4s4", "k1", "k1_nobias",
                                  "k1s2", "k1x7", "k7x1", "k5", "asym", "asym2", "wide"};
    SafeTensors *fx = fixture_open("conv2d");
    if (!fx) return;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) value_case(fx, names[i]);
    fixture_close(fx);
}

/* ---------------------------------------------------------------- finite differences */

typedef struct ConvCase {
    const char *name;
    int N, C, H, W, O, KH, KW;
    ConvCfg cfg;
    int bias;
} ConvCase;

/* Heap leaves x, w and b (NULL without bias) filled with fixed random values. */
static void make_inputs(const ConvCase *c, Tensor **in, uint64_t seed) {
    in[0] = tensor_alloc(4, (int[]){c->N, c->C, c->H, c->W}, 1);
    in[1] = tensor_alloc(4, (int[]){c->O, c->C, c->KH, c->KW}, 1);
    in[2] = c->bias ? tensor_alloc(1, (int[]){c->O}, 1) : NULL;
    for (int i = 0; i < 3; i++)
        if (in[i]) fill_uniform(in[i]->data, in[i]->n, -1, 1, seed + (uint64_t)i);
}

static void free_inputs(Tensor **in) {
    for (int i = 0; i < 3; i++) tensor_free(in[i]);
}

static void gradcheck_tests(void) {
    static const ConvCase cases[] = {
        {"3x3 pad 1", 2, 2, 5, 6, 3, 3, 3, {1, 1, 1, 1}, 1},
        {"4x4 stride 2 pad 1", 2, 2, 6, 8, 3, 4, 4, {2, 2, 1, 1}, 0},
        {"4x4 stride 4", 2, 2, 8, 4, 2, 4, 4, {4, 4, 0, 0}, 1},
        {"1x1", 2, 3, 4, 5, 4, 1, 1, {1, 1, 0, 0}, 1},
        {"1x7 pad (0,3)", 2, 2, 3, 8, 2, 1, 7, {1, 1, 0, 3}, 1},
        {"7x1 pad (3,0)", 2, 2, 8, 3, 2, 7, 1, {1, 1, 3, 0}, 0},
        {"3x2 stride (2,1) pad (1,0)", 2, 2, 7, 5, 3, 3, 2, {2, 1, 1, 0}, 1},
        {"5x5 pad 2 stride 2", 2, 1, 6, 7, 2, 5, 5, {2, 2, 2, 2}, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Tensor *in[3];
        make_inputs(&cases[i], in, 100 + 10 * i);
        char name[96];
        snprintf(name, sizeof name, "conv2d %s", cases[i].name);
        GradcheckOpts o = {.max_elems = -1}; /* every element */
        gradcheck(name, fwd_conv, 3, in, (void *)&cases[i].cfg, &o);
        free_inputs(in);
    }
}

/* w (or x) frozen: the other gradients still match finite differences, the frozen one is untouched. */
static void frozen_tests(void) {
    static const ConvCase c = {"frozen", 2, 2, 5, 6, 3, 3, 3, {2, 1, 1, 1}, 1};
    for (int frozen = 0; frozen < 2; frozen++) {
        Tensor *in[3];
        make_inputs(&c, in, 300);
        Tensor *f = in[frozen];
        f->requires_grad = false;
        gradcheck(frozen ? "conv2d frozen weight" : "conv2d frozen input", fwd_conv, 3, in, (void *)&c.cfg, NULL);
        int64_t touched = 0;
        for (int64_t i = 0; i < f->n; i++) touched += f->grad[i] != 0.0f;
        EXPECT(touched == 0, "conv2d frozen %s: %lld gradient elements written", frozen ? "weight" : "input",
               (long long)touched);
        free_inputs(in);
    }
}

/* ---------------------------------------------------------------- kernels: chunks and threads */

/* Runs the kernels on s: returns [out | dx | dw | db] (malloc'ed), gradients of a fixed gout.
 * want: bit 0 dx, bit 1 dw, bit 2 db (the others are passed as NULL and stay 0); prefill: the
 * gradients start from fixed random values instead of 0 (backward adds). */
static float *run_kernels_opt(const Conv2dShape *s, int64_t *total, int want, int prefill) {
    int64_t nx = (int64_t)s->N * s->C * s->H * s->W, nw = (int64_t)s->O * s->C * s->KH * s->KW;
    int64_t ny = (int64_t)s->N * s->O * s->OH * s->OW;
    float *x = xmalloc((size_t)nx * sizeof(float)), *w = xmalloc((size_t)nw * sizeof(float));
    float *b = xmalloc((size_t)s->O * sizeof(float)), *gout = xmalloc((size_t)ny * sizeof(float));
    fill_uniform(x, nx, -1, 1, 11);
    fill_uniform(w, nw, -1, 1, 12);
    fill_uniform(b, s->O, -1, 1, 13);
    fill_uniform(gout, ny, -1, 1, 14);
    *total = ny + nx + nw + s->O;
    float *res = xcalloc((size_t)*total, sizeof(float));
    float *dx = res + ny, *dw = dx + nx, *db = dw + nw;
    if (prefill) {
        if (want & 1) fill_uniform(dx, nx, -1, 1, 15);
        if (want & 2) fill_uniform(dw, nw, -1, 1, 16);
        if (want & 4) fill_uniform(db, s->O, -1, 1, 17);
    }
    size_t n_scratch = conv2d_scratch_floats(s);
    float *scratch = n_scratch ? xmalloc(n_scratch * sizeof(float)) : NULL;
    conv2d_forward(res, x, w, b, s, scratch);
    conv2d_backward(want & 1 ? dx : NULL, want & 2 ? dw : NULL, want & 4 ? db : NULL, gout, x, w, s, scratch);
    free(scratch);
    free(x);
    free(w);
    free(b);
    free(gout);
    return res;
}

static float *run_kernels(const Conv2dShape *s, int64_t *total) { return run_kernels_opt(s, total, 7, 0); }

/* Small max_cols (image slices, groups with a remainder) gives the default's values. */
static void chunk_tests(void) {
    Conv2dShape s = conv2d_shape(3, 3, 9, 11, 5, 3, 3, 1, 1, 1, 1);
    int P = s.OH * s.OW;
    int64_t n_ref, n;
    float *ref = run_kernels(&s, &n_ref);
    EXPECT(s.max_cols >= 3 * P, "conv2d default chunk holds the whole small batch (%d cols)", s.max_cols);
    int lowered[] = {7, 64, P - 1, P, 2 * P + 1};
    for (size_t i = 0; i < sizeof lowered / sizeof lowered[0]; i++) {
        s.max_cols = lowered[i];
        float *got = run_kernels(&s, &n);
        char what[64];
        snprintf(what, sizeof what, "conv2d max_cols %d vs one chunk", lowered[i]);
        expect_close(what, got, ref, n_ref, 1e-6);
        free(got);
    }
    free(ref);
    /* the scratch stays bounded for a large layer (N=8, C=64, 3x3, 128x128, O=64) */
    Conv2dShape big = conv2d_shape(8, 64, 128, 128, 64, 3, 3, 1, 1, 1, 1);
    size_t fl = conv2d_scratch_floats(&big);
    EXPECT(fl > 0 && fl <= (1u << 20), "conv2d scratch for a 8x64x128x128 3x3 layer: %zu floats", fl);
    Conv2dShape pw = conv2d_shape(8, 64, 128, 128, 64, 1, 1, 1, 1, 0, 0);
    EXPECT(conv2d_scratch_floats(&pw) == 0, "conv2d 1x1 needs no scratch");
}

/* Shapes for the kernel-level tests: small ones, and ones above the size where the oneDNN path
 * runs multi-threaded and the im2col GEMMs split into tiles. */
static int kernel_shapes(Conv2dShape *shapes) {
    int n = 0;
    shapes[n++] = conv2d_shape(3, 8, 19, 23, 12, 3, 3, 1, 1, 1, 1);  /* one chunk of 3 images */
    shapes[n] = conv2d_shape(2, 24, 19, 23, 32, 3, 3, 1, 1, 1, 1);   /* image slices (max_cols below) */
    shapes[n++].max_cols = 300;
    shapes[n++] = conv2d_shape(2, 16, 20, 20, 24, 4, 4, 2, 2, 1, 1);
    shapes[n++] = conv2d_shape(3, 32, 20, 20, 40, 1, 1, 1, 1, 0, 0); /* 1x1: no unrolling */
    shapes[n++] = conv2d_shape(4, 32, 35, 35, 48, 3, 3, 1, 1, 1, 1); /* 7 M multiply-adds */
    shapes[n++] = conv2d_shape(2, 3, 67, 61, 32, 3, 3, 2, 2, 0, 0);  /* 3 input channels, stride 2 */
    shapes[n++] = conv2d_shape(2, 64, 17, 17, 64, 1, 7, 1, 1, 0, 3);
    shapes[n++] = conv2d_shape(2, 96, 17, 17, 80, 1, 1, 1, 1, 0, 0);
    shapes[n++] = conv2d_shape(2, 32, 21, 37, 3, 3, 3, 1, 1, 1, 1);  /* 3 outputs: the narrow kernel's forward */
    shapes[n++] = conv2d_shape(1, 1, 5, 7, 1, 3, 3, 1, 1, 1, 1);     /* narrow, narrower than a vector */
    shapes[n++] = conv2d_shape(3, 5, 16, 32, 4, 3, 3, 1, 1, 1, 1);   /* narrow, whole vectors */
    return n;
}
#define MAX_SHAPES 16

/* im2col: bitwise identical results with 1 and 2 threads (OpenMP loops and OpenBLAS both threaded). */
static void thread_tests(void) {
    Conv2dShape shapes[MAX_SHAPES];
    int n = kernel_shapes(shapes);
    for (int i = 0; i < n; i++) {
        int64_t n1, n2;
        threads_set(1);
        float *r1 = run_kernels(&shapes[i], &n1);
        threads_set(2);
        float *r2 = run_kernels(&shapes[i], &n2);
        EXPECT(n1 == n2 && memcmp(r1, r2, (size_t)n1 * sizeof(float)) == 0,
               "conv2d im2col shape %d: 1 and 2 threads give identical outputs and gradients", i);
        free(r1);
        free(r2);
    }
    threads_set(0);
}

/* oneDNN against im2col on the kernel shapes: forward, and every combination of requested
 * gradients added into buffers that already hold values. */
static void dnnl_vs_im2col_tests(void) {
    Conv2dShape shapes[MAX_SHAPES];
    int n = kernel_shapes(shapes);
    for (int i = 0; i < n; i++)
        for (int want = 0; want < 8; want++) {
            int64_t n1, n2;
            conv2d_set_impl(CONV2D_IM2COL);
            float *ref = run_kernels_opt(&shapes[i], &n1, want, 1);
            conv2d_set_impl(CONV2D_DNNL);
            float *got = run_kernels_opt(&shapes[i], &n2, want, 1);
            char what[96];
            snprintf(what, sizeof what, "conv2d oneDNN vs im2col, shape %d, gradients %d%d%d", i, want & 1,
                     (want >> 1) & 1, (want >> 2) & 1);
            expect_close(what, got, ref, n1, 1e-5);
            free(ref);
            free(got);
        }
}

/* bf16 operands (fp32 accumulation): the forward, input gradient, weight gradient and bias
 * gradient each within 1e-2 norm-relative of fp32 (the tolerance docs/PERFORMANCE.md states), and
 * not equal to fp32 (bf16 is really used: at least 1e-5 apart). The result is added into
 * prefilled gradients, as in fp32. */
static void dnnl_bf16_tests(void) {
    Conv2dShape shapes[MAX_SHAPES];
    int n = kernel_shapes(shapes);
    double worst[4] = {0, 0, 0, 0};
    for (int i = 0; i < n; i++) {
        int64_t n1, n2;
        conv2d_set_precision(CONV2D_FP32);
        float *ref = run_kernels_opt(&shapes[i], &n1, 7, 1);
        conv2d_set_precision(CONV2D_BF16);
        float *got = run_kernels_opt(&shapes[i], &n2, 7, 1);
        conv2d_set_precision(CONV2D_FP32);
        const Conv2dShape *c = &shapes[i];
        int64_t ny = (int64_t)c->N * c->O * c->OH * c->OW, nx = (int64_t)c->N * c->C * c->H * c->W;
        int64_t nw = (int64_t)c->O * c->C * c->KH * c->KW;
        int64_t off[4] = {0, ny, ny + nx, ny + nx + nw}, len[4] = {ny, nx, nw, c->O};
        const char *part[4] = {"forward", "input gradient", "weight gradient", "bias gradient"};
        for (int k = 0; k < 4; k++) {
            double mx, r = rel_err(got + off[k], ref + off[k], len[k], &mx);
            if (r > worst[k]) worst[k] = r;
            EXPECT(r <= 1e-2 && (k == 3 || r >= 1e-5), "conv2d bf16 vs fp32, shape %d (%d,%d,%d,%d)*(%d,%d,%d,%d), %s: "
                   "norm-relative error %.3g (want 1e-5..1e-2)", i, c->N, c->C, c->H, c->W, c->O, c->C, c->KH, c->KW,
                   part[k], r);
        }
        free(ref);
        free(got);
    }
    printf("conv2d bf16 vs fp32, worst norm-relative error over %d shapes: forward %.2e, input gradient %.2e, weight "
           "gradient %.2e, bias gradient %.2e\n", n, worst[0], worst[1], worst[2], worst[3]);
}

/* conv2d_backward_data_set writes every element of the input gradient (the buffer starts as NaN)
 * with the bits conv2d_backward adds into zeros, on the kernel shapes, blocked ones and a Winograd
 * one, for the current implementation. */
static void backward_data_set_tests(const char *impl) {
    Conv2dShape shapes[MAX_SHAPES + 2];
    int n = kernel_shapes(shapes);
    shapes[n++] = conv2d_shape(2, 64, 20, 20, 64, 3, 3, 1, 1, 1, 1);
    if (conv2d_get_impl() == CONV2D_DNNL) {
        shapes[n] = conv2d_shape(2, 32, 9, 9, 48, 3, 3, 1, 1, 1, 1);
        shapes[n].in_blocked = shapes[n].out_blocked = 1;
        n++;
    }
    for (int i = 0; i < n; i++) {
        const Conv2dShape *c = &shapes[i];
        int64_t nx = (int64_t)c->N * c->C * c->H * c->W, ny = (int64_t)c->N * c->O * c->OH * c->OW;
        int64_t nw = (int64_t)c->O * c->C * c->KH * c->KW;
        float *dy = xmalloc((size_t)ny * sizeof(float)), *w = xmalloc((size_t)nw * sizeof(float));
        float *want = xcalloc((size_t)nx, sizeof(float)), *got = xmalloc((size_t)nx * sizeof(float));
        fill_uniform(dy, ny, -1, 1, 600 + i);
        fill_uniform(w, nw, -0.5f, 0.5f, 700 + i);
        for (int64_t e = 0; e < nx; e++) got[e] = NAN;
        size_t ns = conv2d_scratch_floats(c);
        float *scratch = ns ? xmalloc(ns * sizeof(float)) : NULL;
        conv2d_backward(want, NULL, NULL, dy, NULL, w, c, scratch);
        conv2d_backward_data_set(got, dy, w, c, scratch);
        EXPECT(memcmp(got, want, (size_t)nx * sizeof(float)) == 0, "conv2d_backward_data_set (%s), shape %d%s: the "
               "bits of conv2d_backward into zeros, every element written", impl, i, c->in_blocked ? " (nChw16c)" : "");
        free(dy), free(w), free(want), free(got), free(scratch);
    }
}

/* Winograd F(4x4, 3x3) where wino_mode picks it (32+ channels, 16x16+ outputs): the forward and
 * every gradient within 1e-5 norm-relative of the direct algorithm (docs/PERFORMANCE.md), and not
 * bitwise equal to it (Winograd really runs), with gradients added into prefilled buffers. */
static int c_fwd_wino(const Conv2dShape *s) {
    conv2d_set_algo(CONV2D_WINOGRAD);
    int w = conv2d_uses_winograd(s);
    return w;
}

static void dnnl_winograd_tests(void) {
    Conv2dShape shapes[] = {
        conv2d_shape(2, 64, 20, 20, 64, 3, 3, 1, 1, 1, 1),
        conv2d_shape(1, 64, 35, 35, 96, 3, 3, 1, 1, 1, 1),
        conv2d_shape(2, 80, 18, 18, 64, 3, 3, 1, 1, 0, 0),
        conv2d_shape(1, 128, 32, 32, 128, 3, 3, 1, 1, 1, 1),
        conv2d_shape(2, 32, 18, 18, 48, 3, 3, 1, 1, 0, 0), /* 32 channels: the forward in one call */
    };
    int n = (int)(sizeof shapes / sizeof shapes[0]);
    double worst[4] = {0, 0, 0, 0};
    conv2d_set_algo(CONV2D_WINOGRAD);
    if (!conv2d_uses_winograd(&shapes[0])) {
        test_skip("conv2d Winograd: oneDNN has no Winograd kernel on this CPU (it needs AVX-512)");
        return;
    }
    /* the forward with 32-63 channels: only when the whole batch runs in one call (its NCHW copies
     * and scratchpad within the chunk budget of 16 MB; the large one needs 28 MB for the copies) */
    Conv2dShape small = conv2d_shape(2, 32, 20, 20, 64, 3, 3, 1, 1, 1, 1), tiny = conv2d_shape(2, 64, 4, 4, 64, 3, 3, 1, 1, 1, 1);
    Conv2dShape large = conv2d_shape(8, 32, 96, 96, 64, 3, 3, 1, 1, 1, 1), narrow = conv2d_shape(2, 16, 20, 20, 64, 3, 3, 1, 1, 1, 1);
    EXPECT(conv2d_uses_winograd(&small), "conv2d Winograd: the forward of a small 32-channel batch in one call");
    EXPECT(!conv2d_uses_winograd(&large), "conv2d Winograd: no forward of 32 channels in batch chunks");
    EXPECT(!conv2d_uses_winograd(&tiny) && !conv2d_uses_winograd(&narrow), "conv2d Winograd: no forward below 32 channels or 16x16");
    conv2d_set_algo(CONV2D_DIRECT);
    EXPECT(!conv2d_uses_winograd(&shapes[0]), "conv2d Winograd: off with CONV2D_DIRECT");
    for (int i = 0; i < n; i++) {
        int64_t n1, n2;
        conv2d_set_algo(CONV2D_DIRECT);
        float *ref = run_kernels_opt(&shapes[i], &n1, 7, 1);
        conv2d_set_algo(CONV2D_WINOGRAD);
        float *got = run_kernels_opt(&shapes[i], &n2, 7, 1);
        const Conv2dShape *c = &shapes[i];
        int64_t ny = (int64_t)c->N * c->O * c->OH * c->OW, nx = (int64_t)c->N * c->C * c->H * c->W;
        int64_t nw = (int64_t)c->O * c->C * c->KH * c->KW;
        int64_t off[4] = {0, ny, ny + nx, ny + nx + nw}, len[4] = {ny, nx, nw, c->O};
        const char *part[4] = {"forward", "input gradient", "weight gradient", "bias gradient"};
        int fwd_wino = c_fwd_wino(&shapes[i]);
        EXPECT(n1 == n2 && (memcmp(ref, got, (size_t)ny * sizeof(float)) != 0) == fwd_wino,
               "conv2d Winograd, shape %d: the forward differs from direct in some bit exactly when Winograd runs it", i);
        EXPECT(memcmp(ref + ny, got + ny, (size_t)nx * sizeof(float)) != 0,
               "conv2d Winograd, shape %d: the input gradient differs from direct in some bit (Winograd ran)", i);
        for (int k = 0; k < 4; k++) {
            double mx, r = rel_err(got + off[k], ref + off[k], len[k], &mx);
            if (r > worst[k]) worst[k] = r;
            EXPECT(r <= 1e-5, "conv2d Winograd vs direct, shape %d (%d,%d,%d,%d)*(%d,%d,3,3), %s: norm-relative "
                   "error %.3g (want <= 1e-5)", i, c->N, c->C, c->H, c->W, c->O, c->C, part[k], r);
        }
        free(ref);
        free(got);
    }
    printf("conv2d Winograd vs direct, worst norm-relative error over %d shapes: forward %.2e, input gradient %.2e, "
           "weight gradient %.2e, bias gradient %.2e\n", n, worst[0], worst[1], worst[2], worst[3]);
}

/* oneDNN: the same bits run to run at a fixed thread count. Whether 1 and 2 threads agree is
 * printed, not required (oneDNN's reductions may split by thread count). */
static void dnnl_determinism_tests(void) {
    Conv2dShape shapes[MAX_SHAPES];
    int n = kernel_shapes(shapes), same_12 = 0;
    for (int i = 0; i < n; i++) {
        float *r[2][2];
        int64_t m = 0;
        for (int t = 0; t < 2; t++) {
            threads_set(t + 1);
            for (int k = 0; k < 2; k++) r[t][k] = run_kernels(&shapes[i], &m);
            EXPECT(memcmp(r[t][0], r[t][1], (size_t)m * sizeof(float)) == 0,
                   "conv2d oneDNN shape %d: two runs with %d thread(s) give identical bits", i, t + 1);
        }
        same_12 += memcmp(r[0][0], r[1][0], (size_t)m * sizeof(float)) == 0;
        for (int t = 0; t < 2; t++)
            for (int k = 0; k < 2; k++) free(r[t][k]);
    }
    threads_set(0);
    printf("note: conv2d oneDNN: %d of %d shapes give the same bits with 1 and 2 threads\n", same_12, n);
}

/* Several threads (as the HTTP server's workers) run convolutions at once: each gets the bits the
 * same computation gives alone. */
typedef struct ConcArgs {
    const Conv2dShape *shapes;
    int n, nthr, ok;
    float **want;
} ConcArgs;

static void *conc_worker(void *p) {
    ConcArgs *a = p;
    omp_set_num_threads(a->nthr);
    a->ok = 1;
    for (int rep = 0; rep < 3; rep++)
        for (int i = 0; i < a->n; i++) {
            int64_t m;
            float *got = run_kernels(&a->shapes[i], &m);
            a->ok &= memcmp(got, a->want[i], (size_t)m * sizeof(float)) == 0;
            free(got);
        }
    return NULL;
}

static void dnnl_concurrency_tests(void) {
    Conv2dShape shapes[MAX_SHAPES];
    int n = kernel_shapes(shapes);
    for (int nthr = 1; nthr <= 2; nthr++) {
        threads_set(nthr);
        float *want[MAX_SHAPES];
        for (int i = 0; i < n; i++) {
            int64_t m;
            want[i] = run_kernels(&shapes[i], &m);
        }
        enum { NW = 4 };
        pthread_t th[NW];
        ConcArgs args[NW];
        for (int t = 0; t < NW; t++) {
            args[t] = (ConcArgs){shapes, n, nthr, 0, want};
            CHECK(pthread_create(&th[t], NULL, conc_worker, &args[t]) == 0, "pthread_create");
        }
        int ok = 1;
        for (int t = 0; t < NW; t++) {
            pthread_join(th[t], NULL);
            ok &= args[t].ok;
        }
        EXPECT(ok, "conv2d oneDNN: %d threads running convolutions at once (%d OpenMP threads each) get the "
               "serial bits", NW, nthr);
        for (int i = 0; i < n; i++) free(want[i]);
    }
    threads_set(0);
}

/* Under no_grad nothing is recorded and the values are unchanged. */
static void no_grad_test(void) {
    static const ConvCase c = {"nograd", 2, 2, 5, 6, 3, 3, 3, {1, 1, 1, 1}, 1};
    Tensor *in[3];
    make_inputs(&c, in, 500);
    Tape tp;
    tape_init(&tp);
    Tensor *y1 = fwd_conv(&tp, in, (void *)&c.cfg);
    tape_no_grad_begin(&tp);
    Tensor *y2 = fwd_conv(&tp, in, (void *)&c.cfg);
    tape_no_grad_end(&tp);
    EXPECT(tp.n_nodes == 1 && y1->requires_grad && !y2->requires_grad, "conv2d: no node recorded under no_grad");
    EXPECT(memcmp(y1->data, y2->data, (size_t)y1->n * sizeof(float)) == 0, "conv2d: same values under no_grad");
    tape_free(&tp);
    free_inputs(in);
}

/* Without gradients a donated input is overwritten by the output (conv2d_forward_over): the same
 * values as a plain convolution, for a growing output (from the last chunk down), a shrinking one
 * (from the first up) and a batch large enough for several chunks; a growing output keeps the
 * input's buffer when the block can grow (it is the pool's last one here). */
static void over_test(void) {
    struct { int N, C, H, W, O, k, stride, pad; } cs[] = {
        {3, 4, 9, 9, 8, 3, 1, 1},   /* grows 2x */
        {3, 8, 9, 9, 3, 3, 2, 0},   /* shrinks */
        {6, 16, 96, 96, 32, 3, 1, 1}, /* 18 MB of activations per image: one image per chunk, grows */
    };
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        Tensor *w = tensor_alloc(4, (int[]){cs[k].O, cs[k].C, cs[k].k, cs[k].k}, false);
        Tensor *b = tensor_alloc(1, (int[]){cs[k].O}, false);
        fill_uniform(w->data, w->n, -0.3f, 0.3f, 61);
        fill_uniform(b->data, b->n, -0.3f, 0.3f, 62);
        Tape tp;
        tape_init(&tp);
        tape_no_grad_begin(&tp);
        Tensor *x1 = TNEW(&tp, cs[k].N, cs[k].C, cs[k].H, cs[k].W);
        fill_uniform(x1->data, x1->n, -1, 1, 63);
        Tensor *want = op_conv2d(&tp, x1, w, b, cs[k].stride, cs[k].stride, cs[k].pad, cs[k].pad);
        Tensor *x2 = TNEW(&tp, cs[k].N, cs[k].C, cs[k].H, cs[k].W); /* the pool's last block */
        memcpy(x2->data, x1->data, (size_t)x1->n * sizeof(float));
        float *buf = x2->data;
        Tensor *got = op_conv2d(&tp, tape_donate(x2), w, b, cs[k].stride, cs[k].stride, cs[k].pad, cs[k].pad);
        tape_no_grad_end(&tp);
        char what[96];
        snprintf(what, sizeof what, "conv2d over its donated input, case %zu (%s)", k,
                 conv2d_get_impl() == CONV2D_DNNL ? "oneDNN" : "im2col");
        EXPECT(tensor_same_shape(got, want), "%s: the output's shape", what);
        if (!mempool_stats().malloc_mode || got->n <= x1->n) /* ATTNGAN_POOL=malloc blocks cannot grow */
            EXPECT(got->data == buf && x2->data == NULL, "%s: the output took the input's buffer", what);
        else
            EXPECT(got->data != buf && x2->data == buf, "%s: no room to grow: a new output, the input untouched", what);
        expect_close(what, got->data, want->data, want->n, 1e-6);
        tape_free(&tp);
        tensor_free(w);
        tensor_free(b);
    }
}

/* ---------------------------------------------------------------- pinned weights */

/* forward (with bias) and input gradient (added into zeros) of s with weights w, into res (ny + nx) */
static void fwd_bwd_data(float *res, const Conv2dShape *s, const float *x, const float *w, const float *b,
                         const float *gout) {
    int64_t ny = (int64_t)s->N * s->O * s->OH * s->OW, nx = (int64_t)s->N * s->C * s->H * s->W;
    memset(res + ny, 0, (size_t)nx * sizeof(float));
    conv2d_forward(res, x, w, b, s, NULL);
    conv2d_backward(res + ny, NULL, NULL, gout, x, w, s, NULL);
}

static float *g_pin_w;
static Conv2dShape g_pin_s;
static void die_pinned_write(void) {
    int64_t nx = (int64_t)g_pin_s.N * g_pin_s.C * g_pin_s.H * g_pin_s.W, ny = (int64_t)g_pin_s.N * g_pin_s.O * g_pin_s.OH * g_pin_s.OW;
    float *x = xcalloc((size_t)nx, sizeof(float)), *y = xmalloc((size_t)ny * sizeof(float));
    conv2d_pin_weights(g_pin_w, (size_t)g_pin_s.O * g_pin_s.C * g_pin_s.KH * g_pin_s.KW);
    conv2d_forward(y, x, g_pin_w, NULL, &g_pin_s, NULL); /* makes the copy */
    g_pin_w[0] += 1.0f;                                  /* a write while pinned */
    conv2d_forward(y, x, g_pin_w, NULL, &g_pin_s, NULL);
}

/* conv2d_pin_weights: the same bits as unpinned (the copy is the reorder every call would make),
 * in the forward and the input gradient, direct and Winograd; copies made on use and dropped on
 * unpin; pinning again after a write starts over; a write while pinned dies. */
static void dnnl_pin_tests(void) {
    Conv2dShape shapes[] = {
        conv2d_shape(2, 16, 12, 12, 32, 4, 4, 2, 2, 1, 1), /* direct, blocked weights */
        conv2d_shape(2, 64, 20, 20, 64, 3, 3, 1, 1, 1, 1), /* Winograd where the CPU has it */
    };
    EXPECT(conv2d_pinned_bytes() == 0, "pinned weights: none at start");
    for (int i = 0; i < 2; i++) {
        const Conv2dShape *c = &shapes[i];
        int64_t nx = (int64_t)c->N * c->C * c->H * c->W, ny = (int64_t)c->N * c->O * c->OH * c->OW;
        int64_t nw = (int64_t)c->O * c->C * c->KH * c->KW;
        float *x = xmalloc((size_t)nx * sizeof(float)), *w = xmalloc((size_t)nw * sizeof(float));
        float *b = xmalloc((size_t)c->O * sizeof(float)), *gout = xmalloc((size_t)ny * sizeof(float));
        float *want = xmalloc((size_t)(ny + nx) * sizeof(float)), *got = xmalloc((size_t)(ny + nx) * sizeof(float));
        fill_uniform(x, nx, -1, 1, 800 + i);
        fill_uniform(w, nw, -1, 1, 810 + i);
        fill_uniform(b, c->O, -1, 1, 820 + i);
        fill_uniform(gout, ny, -1, 1, 830 + i);
        fwd_bwd_data(want, c, x, w, b, gout);
        conv2d_pin_weights(w, (size_t)nw);
        EXPECT(conv2d_pinned_bytes() == 0, "pinned weights %d: no copy before a convolution uses them", i);
        for (int rep = 0; rep < 2; rep++) { /* the first call makes the copies, the second uses them */
            fwd_bwd_data(got, c, x, w, b, gout);
            EXPECT(memcmp(got, want, (size_t)(ny + nx) * sizeof(float)) == 0,
                   "pinned weights %d, call %d: the bits of the unpinned forward and input gradient", i, rep);
        }
        size_t held = conv2d_pinned_bytes();
        EXPECT(held >= (size_t)nw * sizeof(float) && held <= (size_t)nw * sizeof(float) * 2 * 8,
               "pinned weights %d: copies for the forward and input-gradient layouts (%zu bytes for %lld weights)", i,
               held, (long long)nw);
        /* a write, then pinned again: the new values are used */
        for (int64_t e = 0; e < nw; e++) w[e] *= 0.5f;
        conv2d_pin_weights(w, (size_t)nw);
        EXPECT(conv2d_pinned_bytes() == 0, "pinned weights %d: pinning again drops the copies", i);
        fwd_bwd_data(got, c, x, w, b, gout);
        conv2d_unpin_weights(w);
        fwd_bwd_data(want, c, x, w, b, gout);
        EXPECT(memcmp(got, want, (size_t)(ny + nx) * sizeof(float)) == 0,
               "pinned weights %d: pinned again after a write, the new weights' bits", i);
        EXPECT(conv2d_pinned_bytes() == 0 && conv2d_unpin_weights(w) == 0,
               "pinned weights %d: unpinned, no copies are left and a second unpin finds nothing", i);
        free(x), free(w), free(b), free(gout), free(want), free(got);
    }
    g_pin_s = shapes[0];
    g_pin_w = xmalloc((size_t)g_pin_s.O * g_pin_s.C * g_pin_s.KH * g_pin_s.KW * sizeof(float));
    fill_uniform(g_pin_w, (int64_t)g_pin_s.O * g_pin_s.C * g_pin_s.KH * g_pin_s.KW, -1, 1, 840);
    expect_death("pinned weights written", die_pinned_write, "were written while pinned");
    free(g_pin_w);
}

int main(void) {
    test_begin("test_conv2d");
    /* every op-level test once per implementation */
    for (int impl = 0; impl < 2; impl++) {
        Conv2dImpl im = impl == 0 ? CONV2D_IM2COL : CONV2D_DNNL;
        conv2d_set_impl(im);
        printf("conv2d implementation: %s\n", im == CONV2D_DNNL ? "oneDNN" : "im2col");
        value_tests();
        gradcheck_tests();
        frozen_tests();
        no_grad_test();
        over_test();
        backward_data_set_tests(im == CONV2D_DNNL ? "oneDNN" : "im2col");
        if (im == CONV2D_IM2COL) {
            chunk_tests();
            thread_tests();
        } else {
            dnnl_vs_im2col_tests();
            dnnl_bf16_tests();
            dnnl_winograd_tests();
            dnnl_determinism_tests();
            dnnl_concurrency_tests();
            dnnl_pin_tests();
        }
    }
    conv2d_clear_cache();
    return test_end();
}
