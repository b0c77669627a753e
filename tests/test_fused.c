/* test_fused.c: the fused ops against the ops they stand for. conv2d_bn_relu_frozen must give the
 * same bits as conv2d -> batchnorm (eval) -> relu, forward and input gradient, on both convolution
 * paths; a finite-difference gradcheck of its input gradient; and it keeps fewer tensors alive.
 * upsample2x_conv2d against upsample_nearest2x -> conv2d, with one chunk and with several. */
#include "test.h"
#include "../src/core/mempool.h"
#include "../src/ops/activation.h"
#include "../src/ops/batchnorm.h"
#include "../src/ops/conv2d.h"
#include "../src/ops/fused.h"
#include "../src/ops/resample.h"

#include <stdlib.h>
#include <string.h>

typedef struct Case {
    int N, C, H, W, O, KH, KW, sh, sw, ph, pw;
} Case;

typedef struct Frozen {
    Tensor *w, *gamma, *beta, *rm, *rv;
    const Case *c;
} Frozen;

static void frozen_init(Frozen *f, const Case *c, uint64_t seed) {
    f->c = c;
    f->w = tensor_alloc(4, (int[]){c->O, c->C, c->KH, c->KW}, false);
    f->gamma = tensor_alloc(1, (int[]){c->O}, false);
    f->beta = tensor_alloc(1, (int[]){c->O}, false);
    f->rm = tensor_alloc(1, (int[]){c->O}, false);
    f->rv = tensor_alloc(1, (int[]){c->O}, false);
    fill_uniform(f->w->data, f->w->n, -0.3f, 0.3f, seed);
    fill_uniform(f->gamma->data, c->O, 0.5f, 1.5f, seed + 1);
    fill_uniform(f->beta->data, c->O, -0.2f, 0.2f, seed + 2);
    fill_uniform(f->rm->data, c->O, -0.1f, 0.1f, seed + 3);
    fill_uniform(f->rv->data, c->O, 0.5f, 2.0f, seed + 4);
}

static void frozen_free(Frozen *f) {
    tensor_free(f->w);
    tensor_free(f->gamma);
    tensor_free(f->beta);
    tensor_free(f->rm);
    tensor_free(f->rv);
}

static Tensor *fused(Tape *tp, Tensor *x, const Frozen *f) {
    const Case *c = f->c;
    return op_conv2d_bn_relu_frozen(tp, x, f->w, c->sh, c->sw, c->ph, c->pw, f->gamma, f->beta, f->rm, f->rv, 1e-3f, 0);
}

static Tensor *unfused(Tape *tp, Tensor *x, const Frozen *f) {
    const Case *c = f->c;
    Tensor *y = op_conv2d(tp, x, f->w, NULL, c->sh, c->sw, c->ph, c->pw);
    y = op_batchnorm(tp, y, f->gamma, f->beta, f->rm, f->rv, NULL, 0, 0.1f, 1e-3f);
    return op_relu(tp, y);
}

/* in: x, then the frozen w, gamma, beta, running mean and variance (inputs, so that they move to a
 * device with x) */
static Tensor *gc_fused(Tape *tp, Tensor **in, void *ctx) {
    const Case *c = ((const Frozen *)ctx)->c;
    return op_conv2d_bn_relu_frozen(tp, in[0], in[1], c->sh, c->sw, c->ph, c->pw, in[2], in[3], in[4], in[5], 1e-3f, 0);
}

static int64_t count_diff(const float *a, const float *b, int64_t n) {
    int64_t d = 0;
    for (int64_t i = 0; i < n; i++) d += memcmp(a + i, b + i, sizeof(float)) != 0;
    return d;
}

static void case_equal(const Case *c, const char *impl) {
    Frozen f;
    frozen_init(&f, c, 7);
    Tensor *x1 = tensor_alloc(4, (int[]){c->N, c->C, c->H, c->W}, true);
    Tensor *x2 = tensor_alloc(4, (int[]){c->N, c->C, c->H, c->W}, true);
    fill_uniform(x1->data, x1->n, -1, 1, 3);
    memcpy(x2->data, x1->data, (size_t)x1->n * sizeof(float));
    Tape t1, t2;
    tape_init(&t1);
    tape_init(&t2);
    Tensor *y1 = fused(&t1, x1, &f), *y2 = unfused(&t2, x2, &f);
    EXPECT(tensor_same_shape(y1, y2), "%s (%d,%d,%d,%d)*(%d,%d,%d,%d): output shape", impl, c->N, c->C, c->H, c->W, c->O,
           c->C, c->KH, c->KW);
    int64_t df = count_diff(y1->data, y2->data, y1->n);
    EXPECT(df == 0, "%s (%d,%d,%d,%d)*(%d,%d,%d,%d): %lld of %lld forward values differ from conv2d -> batchnorm -> relu",
           impl, c->N, c->C, c->H, c->W, c->O, c->C, c->KH, c->KW, (long long)df, (long long)y1->n);
    int64_t pos = 0;
    for (int64_t i = 0; i < y1->n; i++) pos += y1->data[i] > 0;
    EXPECT(pos > y1->n / 10 && pos < y1->n * 9 / 10, "%s: relu active on %lld of %lld (a case that tests the mask)", impl,
           (long long)pos, (long long)y1->n);
    float *seed = xmalloc((size_t)y1->n * sizeof(float));
    fill_uniform(seed, y1->n, -1, 1, 9);
    const float *s = seed;
    tape_backward_seeded(&t1, 1, &y1, &s);
    tape_backward_seeded(&t2, 1, &y2, &s);
    int64_t db = count_diff(x1->grad, x2->grad, x1->n);
    EXPECT(db == 0, "%s (%d,%d,%d,%d): %lld of %lld input-gradient values differ from the unfused ops", impl, c->N, c->C,
           c->H, c->W, (long long)db, (long long)x1->n);
    EXPECT(t1.n_nodes == 1 && t2.n_nodes == 3, "%s: one node instead of three (%d, %d)", impl, t1.n_nodes, t2.n_nodes);
    free(seed);
    tape_free(&t1);
    tape_free(&t2);
    tensor_free(x1);
    tensor_free(x2);
    frozen_free(&f);
}

/* nChw16c: the fused op with a blocked output (from an NCHW or a blocked input) against the
 * NCHW op, forward and input gradient. The convolution is then oneDNN's with no reorder; 3x3 ones
 * run the same kernel (same bits expected but not required), 1x1 ones a blocked kernel instead of
 * the GEMM one: within 1e-5. */
static void case_blocked(const Case *c) {
    Frozen f;
    frozen_init(&f, c, 11);
    int S = c->H * c->W;
    Tensor *x1 = tensor_alloc(4, (int[]){c->N, c->C, c->H, c->W}, true);
    Tensor *x2 = tensor_alloc(4, (int[]){c->N, c->C, c->H, c->W}, true);
    fill_uniform(x1->data, x1->n, -1, 1, 13);
    int in_blk = c->C % 16 == 0;
    if (in_blk) to_blocked16(x2->data, x1->data, c->N, c->C, S);
    else memcpy(x2->data, x1->data, (size_t)x1->n * sizeof(float));
    x2->blocked = in_blk;
    Tape t1, t2;
    tape_init(&t1);
    tape_init(&t2);
    const Case *k = f.c;
    Tensor *y1 = op_conv2d_bn_relu_frozen(&t1, x1, f.w, k->sh, k->sw, k->ph, k->pw, f.gamma, f.beta, f.rm, f.rv, 1e-3f, 0);
    Tensor *y2 = op_conv2d_bn_relu_frozen(&t2, x2, f.w, k->sh, k->sw, k->ph, k->pw, f.gamma, f.beta, f.rm, f.rv, 1e-3f, 1);
    int OS = y1->shape[2] * y1->shape[3];
    float *y2p = xmalloc((size_t)y1->n * sizeof(float)), *gb = xmalloc((size_t)y1->n * sizeof(float));
    float *g = xmalloc((size_t)y1->n * sizeof(float)), *dx2 = xmalloc((size_t)x1->n * sizeof(float));
    from_blocked16(y2p, y2->data, c->N, c->O, OS);
    char what[128];
    snprintf(what, sizeof what, "conv2d_bn_relu_frozen nChw16c output, %s input (%d,%d,%d,%d)*(%d,%d,%d,%d): forward",
             in_blk ? "nChw16c" : "NCHW", c->N, c->C, c->H, c->W, c->O, c->C, c->KH, c->KW);
    EXPECT(y2->blocked, "%s: the output is marked nChw16c", what);
    expect_close(what, y2p, y1->data, y1->n, 1e-5);
    fill_uniform(g, y1->n, -1, 1, 17);
    to_blocked16(gb, g, c->N, c->O, OS);
    const float *s1 = g, *s2 = gb;
    tape_backward_seeded(&t1, 1, &y1, &s1);
    tape_backward_seeded(&t2, 1, &y2, &s2);
    if (in_blk) from_blocked16(dx2, x2->grad, c->N, c->C, S);
    else memcpy(dx2, x2->grad, (size_t)x1->n * sizeof(float));
    snprintf(what, sizeof what, "conv2d_bn_relu_frozen nChw16c output, %s input (%d,%d,%d,%d): input gradient",
             in_blk ? "nChw16c" : "NCHW", c->N, c->C, c->H, c->W);
    expect_close(what, dx2, x1->grad, x1->n, 1e-5);
    free(y2p), free(gb), free(g), free(dx2);
    tape_free(&t1);
    tape_free(&t2);
    tensor_free(x1);
    tensor_free(x2);
    frozen_free(&f);
}

/* conv2d_bn_train_relu_nograd against conv2d -> batchnorm (train) -> relu without gradients: the
 * output and the updated running statistics, NCHW (the same bits) and nChw16c (within 1e-5), from
 * a plain and from a donated input. */
static void case_train(const Case *c, int blocked, int donate) {
    Frozen f1, f2;
    frozen_init(&f1, c, 23);
    frozen_init(&f2, c, 23);
    int64_t nbt1 = 3, nbt2 = 3;
    Tensor *x = tensor_alloc(4, (int[]){c->N, c->C, c->H, c->W}, false);
    fill_uniform(x->data, x->n, -1, 1, 29);
    Tape t1, t2;
    tape_init(&t1);
    tape_init(&t2);
    Tensor *y1 = op_conv2d(&t1, x, f1.w, NULL, c->sh, c->sw, c->ph, c->pw);
    y1 = op_relu(&t1, op_batchnorm(&t1, y1, f1.gamma, f1.beta, f1.rm, f1.rv, &nbt1, 1, 0.1f, 1e-3f));
    Tensor *x2 = x;
    if (donate) { /* a tape copy the op may overwrite */
        x2 = TNEW(&t2, c->N, c->C, c->H, c->W);
        memcpy(x2->data, x->data, (size_t)x->n * sizeof(float));
        tape_donate(x2);
    }
    Tensor *y2 = op_conv2d_bn_train_relu_nograd(&t2, x2, f2.w, c->sh, c->sw, c->ph, c->pw, f2.gamma, f2.beta, f2.rm,
                                                f2.rv, &nbt2, 0.1f, 1e-3f, blocked);
    int OS = y1->shape[2] * y1->shape[3];
    float *y2p = xmalloc((size_t)y1->n * sizeof(float));
    if (blocked) from_blocked16(y2p, y2->data, c->N, c->O, OS);
    else memcpy(y2p, y2->data, (size_t)y1->n * sizeof(float));
    char what[160];
    snprintf(what, sizeof what, "conv2d_bn_train_relu_nograd %s%s (%d,%d,%d,%d)*(%d,%d,%d,%d)",
             blocked ? "nChw16c" : "NCHW", donate ? ", donated input" : "", c->N, c->C, c->H, c->W, c->O, c->C, c->KH,
             c->KW);
    EXPECT(y2->blocked == blocked && tensor_same_shape(y1, y2) && t2.n_nodes == 0 && nbt2 == 4,
           "%s: layout, shape, no node, num_batches_tracked 4 (got %lld)", what, (long long)nbt2);
    if (blocked) {
        expect_close(what, y2p, y1->data, y1->n, 1e-5);
        expect_close(what, f2.rm->data, f1.rm->data, c->O, 1e-6);
        expect_close(what, f2.rv->data, f1.rv->data, c->O, 1e-6);
    } else {
        EXPECT(memcmp(y2p, y1->data, (size_t)y1->n * sizeof(float)) == 0 &&
                   memcmp(f2.rm->data, f1.rm->data, (size_t)c->O * sizeof(float)) == 0 &&
                   memcmp(f2.rv->data, f1.rv->data, (size_t)c->O * sizeof(float)) == 0,
               "%s: the output and running statistics have the three ops' bits", what);
    }
    if (donate && c->O * OS <= c->C * c->H * c->W && !mempool_stats().malloc_mode)
        EXPECT(x2->data == NULL, "%s: the output took the donated input's buffer", what);
    free(y2p);
    tape_free(&t1);
    tape_free(&t2);
    tensor_free(x);
    frozen_free(&f1);
    frozen_free(&f2);
}

/* ---------------------------------------------------------------- upsample2x_conv2d */

typedef struct UpCase {
    int N, C, H, W, O, bias;
} UpCase;

static Tensor *gc_upconv(Tape *tp, Tensor **in, void *ctx) {
    (void)ctx;
    return op_upsample2x_conv2d(tp, in[0], in[1], in[2], 1, 1);
}

static void upconv_equal(const UpCase *c, const char *impl) {
    Tensor *x[2], *w[2], *b[2] = {NULL, NULL}, *y[2];
    Tape tp[2];
    for (int k = 0; k < 2; k++) {
        x[k] = tensor_alloc(4, (int[]){c->N, c->C, c->H, c->W}, true);
        w[k] = tensor_alloc(4, (int[]){c->O, c->C, 3, 3}, true);
        fill_uniform(x[k]->data, x[k]->n, -1, 1, 31);
        fill_uniform(w[k]->data, w[k]->n, -0.2f, 0.2f, 32);
        if (c->bias) {
            b[k] = tensor_alloc(1, (int[]){c->O}, true);
            fill_uniform(b[k]->data, c->O, -0.5f, 0.5f, 33);
        }
        tape_init(&tp[k]);
    }
    y[0] = op_upsample2x_conv2d(&tp[0], x[0], w[0], b[0], 1, 1);
    y[1] = op_conv2d(&tp[1], op_upsample_nearest2x(&tp[1], x[1]), w[1], b[1], 1, 1, 1, 1);
    char what[128];
    snprintf(what, sizeof what, "%s upsample2x_conv2d (%d,%d,%d,%d)->%d forward", impl, c->N, c->C, c->H, c->W, c->O);
    EXPECT(tensor_same_shape(y[0], y[1]), "%s: shape", what);
    expect_close(what, y[0]->data, y[1]->data, y[0]->n, 1e-6);
    float *seed = xmalloc((size_t)y[0]->n * sizeof(float));
    fill_uniform(seed, y[0]->n, -1, 1, 34);
    const float *sd = seed;
    for (int k = 0; k < 2; k++) tape_backward_seeded(&tp[k], 1, &y[k], &sd);
    snprintf(what, sizeof what, "%s upsample2x_conv2d (%d,%d,%d,%d) input gradient", impl, c->N, c->C, c->H, c->W);
    expect_close(what, x[0]->grad, x[1]->grad, x[0]->n, 1e-5);
    snprintf(what, sizeof what, "%s upsample2x_conv2d (%d,%d,%d,%d) weight gradient", impl, c->N, c->C, c->H, c->W);
    expect_close(what, w[0]->grad, w[1]->grad, w[0]->n, 1e-5);
    if (c->bias) {
        snprintf(what, sizeof what, "%s upsample2x_conv2d (%d,%d,%d,%d) bias gradient", impl, c->N, c->C, c->H, c->W);
        expect_close(what, b[0]->grad, b[1]->grad, c->O, 1e-5);
    }
    free(seed);
    for (int k = 0; k < 2; k++) {
        tape_free(&tp[k]);
        tensor_free(x[k]);
        tensor_free(w[k]);
        tensor_free(b[k]);
    }
}

int main(void) {
    test_begin("test_fused");
    const UpCase ups[] = {
        {3, 4, 5, 6, 6, 0},     /* one chunk */
        {2, 3, 4, 4, 5, 1},     /* with a bias */
        {3, 64, 128, 128, 4, 0}, /* 16.8 MB upsampled per image: one image per chunk */
    };
    for (int k = 0; k < 2; k++) {
        conv2d_set_impl(k ? CONV2D_IM2COL : CONV2D_DNNL);
        for (size_t i = 0; i < sizeof ups / sizeof ups[0]; i++)
            if (!(k && i == 2)) upconv_equal(&ups[i], k ? "im2col" : "onednn"); /* the large case once */
    }
    conv2d_set_impl(CONV2D_DNNL);
    {
        Tensor *x = tensor_alloc(4, (int[]){2, 3, 4, 5}, true), *w = tensor_alloc(4, (int[]){4, 3, 3, 3}, true);
        Tensor *b = tensor_alloc(1, (int[]){4}, true);
        fill_uniform(x->data, x->n, -1, 1, 41);
        fill_uniform(w->data, w->n, -0.5f, 0.5f, 42);
        fill_uniform(b->data, 4, -0.5f, 0.5f, 43);
        Tensor *in[3] = {x, w, b};
        GradcheckOpts o = {.h = 1e-2, .tol = 1e-2, .max_elems = -1, .seed = 5};
        gradcheck("upsample2x_conv2d", gc_upconv, 3, in, NULL, &o);
        tensor_free(x);
        tensor_free(w);
        tensor_free(b);
    }
    const Case cases[] = {
        {2, 3, 9, 9, 4, 3, 3, 1, 1, 1, 1},   /* 3x3 same */
        {3, 4, 11, 10, 5, 3, 3, 2, 2, 0, 0}, /* strided, as Conv2d_1a */
        {2, 5, 8, 8, 6, 1, 7, 1, 1, 0, 3},   /* 1x7 */
        {2, 6, 7, 7, 8, 1, 1, 1, 1, 0, 0},   /* 1x1 */
        {40, 8, 24, 24, 16, 3, 3, 1, 1, 1, 1}, /* large enough for batch chunks on the oneDNN path */
    };
    const Conv2dImpl impls[2] = {CONV2D_DNNL, CONV2D_IM2COL};
    const char *names[2] = {"onednn", "im2col"};
    for (int k = 0; k < 2; k++) {
        conv2d_set_impl(impls[k]);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) case_equal(&cases[i], names[k]);
    }
    conv2d_set_impl(CONV2D_DNNL);
    const Case blk[] = {
        {2, 3, 19, 19, 32, 3, 3, 2, 2, 0, 0},   /* NCHW input (3 channels), as Conv2d_1a */
        {2, 32, 12, 12, 64, 3, 3, 1, 1, 1, 1},  /* 3x3 */
        {2, 64, 20, 20, 64, 3, 3, 1, 1, 1, 1},  /* 3x3 with Winograd */
        {2, 48, 9, 9, 32, 1, 1, 1, 1, 0, 0},    /* 1x1 */
        {2, 32, 9, 9, 48, 7, 1, 1, 1, 3, 0},    /* 7x1 */
        {2, 32, 11, 11, 96, 3, 3, 2, 2, 0, 0},  /* strided */
    };
    for (size_t i = 0; i < sizeof blk / sizeof blk[0]; i++) case_blocked(&blk[i]);
    for (size_t i = 0; i < sizeof blk / sizeof blk[0]; i++)
        for (int b = 0; b < 2; b++) case_train(&blk[i], b, (int)(i % 2));
    case_train(&blk[1], 0, 1);

    /* finite differences of the input gradient (inputs away from the relu kink) */
    Frozen f;
    frozen_init(&f, &cases[0], 21);
    Tensor *x = tensor_alloc(4, (int[]){2, 3, 9, 9}, true);
    fill_away_from_zero(x->data, x->n, -1, 1, 0.05f, 5);
    Tensor *in[6] = {x, f.w, f.gamma, f.beta, f.rm, f.rv};
    GradcheckOpts o = {.h = 1e-3, .tol = 2e-2, .max_elems = -1, .seed = 3};
    gradcheck("conv2d_bn_relu_frozen", gc_fused, 6, in, &f, &o);
    tensor_free(x);
    frozen_free(&f);

    /* memory: the fused node keeps its input and output only */
    Frozen g;
    const Case big = {8, 16, 32, 32, 32, 3, 3, 1, 1, 1, 1};
    frozen_init(&g, &big, 11);
    Tensor *xb = tensor_alloc(4, (int[]){8, 16, 32, 32}, true);
    fill_uniform(xb->data, xb->n, -1, 1, 13);
    size_t live[2];
    for (int k = 0; k < 2; k++) {
        Tape tp;
        tape_init(&tp);
        size_t before = mempool_stats().live;
        Tensor *y = k ? unfused(&tp, xb, &g) : fused(&tp, xb, &g);
        (void)y;
        live[k] = mempool_stats().live - before;
        tape_free(&tp);
    }
    size_t ybytes = (size_t)8 * 32 * 32 * 32 * sizeof(float);
    EXPECT(live[0] < ybytes * 3 / 2 && live[1] >= ybytes * 3,
           "tensor memory after the forward: fused %zu bytes (one output), unfused %zu (three), output %zu", live[0],
           live[1], ybytes);
    tensor_free(xb);
    frozen_free(&g);
    return test_end();
}
