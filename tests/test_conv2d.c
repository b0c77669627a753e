/* test_conv2d.c: conv2d forward/backward against PyTorch fixtures, finite differences, frozen
 * inputs, chunked im2col against unchunked, and identical results with 1 and 2 threads. */
#include "test.h"
#include "../src/ops/conv2d.h"

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
        GradcheckOpts o = {0, 0, -1, 0}; /* every element */
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

/* Runs the kernels on s: returns [out | dx | dw | db] (malloc'ed), gradients of a fixed gout. */
static float *run_kernels(const Conv2dShape *s, int64_t *total) {
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
    size_t n_scratch = conv2d_scratch_floats(s);
    float *scratch = n_scratch ? xmalloc(n_scratch * sizeof(float)) : NULL;
    conv2d_forward(res, x, w, b, s, scratch);
    conv2d_backward(res + ny, res + ny + nx, res + ny + nx + nw, gout, x, w, s, scratch);
    free(scratch);
    free(x);
    free(w);
    free(b);
    free(gout);
    return res;
}

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

/* Bitwise identical results with 1 and 2 threads (OpenMP loops and OpenBLAS both threaded). */
static void thread_tests(void) {
    Conv2dShape shapes[] = {
        conv2d_shape(3, 8, 19, 23, 12, 3, 3, 1, 1, 1, 1),  /* one chunk of 3 images */
        conv2d_shape(2, 24, 19, 23, 32, 3, 3, 1, 1, 1, 1), /* image slices (max_cols below) */
        conv2d_shape(2, 16, 20, 20, 24, 4, 4, 2, 2, 1, 1),
        conv2d_shape(3, 32, 20, 20, 40, 1, 1, 1, 1, 0, 0), /* 1x1: no unrolling */
    };
    shapes[1].max_cols = 300;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int64_t n1, n2;
        threads_set(1);
        float *r1 = run_kernels(&shapes[i], &n1);
        threads_set(2);
        float *r2 = run_kernels(&shapes[i], &n2);
        EXPECT(n1 == n2 && memcmp(r1, r2, (size_t)n1 * sizeof(float)) == 0,
               "conv2d shape %zu: 1 and 2 threads give identical outputs and gradients", i);
        free(r1);
        free(r2);
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

int main(void) {
    test_begin("test_conv2d");
    value_tests();
    gradcheck_tests();
    frozen_tests();
    chunk_tests();
    thread_tests();
    no_grad_test();
    return test_end();
}
