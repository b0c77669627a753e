/* image_encoder.c: the seed's CNN_ENCODER (see image_encoder.h): bilinear resize to 299, the
 * torchvision Inception-v3 trunk up to Mixed_7c (frozen; BN in train or eval mode), region
 * features emb_features(Mixed_6e) and the global code emb_cnn_code(avg_pool(Mixed_7c, 8)).
 *
 * Every BasicConv2d is conv (no bias) -> BatchNorm2d(eps 1e-3) -> ReLU, registered under
 * "<part>.<branch>.conv.weight" and "<part>.<branch>.bn.{weight, bias, running_mean,
 * running_var, num_batches_tracked}", parts and branches in torchvision's module order, so the
 * ParamSet's order is PyTorch's state_dict order.
 *
 * The 3x3 average pool in front of every A/C/E branch_pool counts the padding (torchvision's
 * F.avg_pool2d(x, 3, 1, 1)) or, in the Keras convention, excludes it (AveragePooling2D 'same');
 * `cip` below is that count_include_pad flag. */
#include "image_encoder.h"
#include "../core/env.h"
#include "../ops/conv2d.h"
#include "../ops/fused.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define TRUNK_SIZE 299           /* input side of the trunk */
#define TRUNK_BN_EPS 1e-3f
#define FEATURES_CH 768          /* Mixed_6e channels (17 x 17) */
#define POOL_CH 2048             /* Mixed_7c channels (8 x 8) */

/* torchvision's top-level Inception parts, in state_dict order */
static const char *const INCEPTION_PARTS[] = {"Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1",
                                              "Conv2d_4a_3x3", "Mixed_5b",      "Mixed_5c",      "Mixed_5d",
                                              "Mixed_6a",      "Mixed_6b",      "Mixed_6c",      "Mixed_6d",
                                              "Mixed_6e",      "Mixed_7a",      "Mixed_7b",      "Mixed_7c"};
#define N_PARTS ((int)(sizeof INCEPTION_PARTS / sizeof INCEPTION_PARTS[0]))

/* ---------------------------------------------------------------- BasicConv2d */

typedef struct BasicConv {
    Conv2dLayer conv;            /* <prefix>.conv.weight (O, C, KH, KW), no bias */
    BatchNormLayer bn;           /* <prefix>.bn.*, eps 1e-3 */
} BasicConv;

/* Kernel kh x kw, stride, padding (pad_h, pad_w); registers "<part>.<name>.conv" and ".bn". */
static void basic_init(BasicConv *b, ParamSet *ps, const char *part, const char *name, int cin, int cout, int kh,
                       int kw, int stride, int pad_h, int pad_w) {
    char prefix[NAME_MAX_LEN], n[NAME_MAX_LEN];
    if (name) pname(prefix, "%s.%s", part, name);
    else pname(prefix, "%s", part);
    conv2d_layer_init(&b->conv, ps, pname(n, "%s.conv", prefix), cin, cout, kh, kw, stride, pad_h, pad_w, 0);
    batchnorm_layer_init(&b->bn, ps, pname(n, "%s.bn", prefix), cout, TRUNK_BN_EPS);
}

static _Atomic int g_blocked = -1;

void image_encoder_set_blocked_layout(int on) { atomic_store(&g_blocked, on ? 1 : 0); }

/* ATTNGAN_TRUNK_LAYOUT=blocked (default) | nchw; NCHW on a device (oneDNN's layout is the CPU's) */
static int blocked_layout(const Tape *tp) {
    if (tp->device != DEVICE_CPU) return 0;
    int v = env_switch(&g_blocked, "ATTNGAN_TRUNK_LAYOUT", (const char *[]){"nchw", "blocked"}, 2, 1);
    return v && conv2d_get_impl() == CONV2D_DNNL;
}

/* The fused path: frozen, eval-mode batch norm (the trunk in the GAN step and at evaluation). */
static int fused_path(const BasicConv *b, int train) {
    return !train && !b->conv.weight->requires_grad && !b->bn.weight->requires_grad && !b->bn.bias->requires_grad;
}

/* x (B, C, H, W) -> relu(bn(conv(x))) (B, O, OH, OW) */
static Tensor *basic_fwd(Tape *tp, BasicConv *b, Tensor *x, int train) {
    const Conv2dLayer *c = &b->conv;
    if (fused_path(b, train))
        /* one fused op, same bits, and only the relu's pass bits are kept for backward; in nChw16c
         * (no layout conversion around oneDNN's convolutions) unless ATTNGAN_TRUNK_LAYOUT=nchw */
        return op_conv2d_bn_relu_frozen(tp, x, c->weight, c->stride_h, c->stride_w, c->pad_h, c->pad_w, b->bn.weight,
                                        b->bn.bias, b->bn.running_mean, b->bn.running_var, b->bn.eps,
                                        blocked_layout(tp) && c->weight->shape[0] % 16 == 0);
    Tensor *in[] = {x, c->weight, b->bn.weight, b->bn.bias};
    if (train && !tape_would_record(tp, 4, in))
        /* train-mode batch norm with no gradient through this layer (the DAMSM step's frozen trunk):
         * one pass for the statistics, one for normalise + relu, over a donated input when given;
         * nChw16c as above */
        return op_conv2d_bn_train_relu_nograd(tp, x, c->weight, c->stride_h, c->stride_w, c->pad_h, c->pad_w,
                                              b->bn.weight, b->bn.bias, b->bn.running_mean, b->bn.running_var,
                                              b->bn.num_batches_tracked, b->bn.momentum, b->bn.eps,
                                              blocked_layout(tp) && c->weight->shape[0] % 16 == 0);
    if (x->blocked) x = op_unblock16(tp, x); /* the unfused ops take NCHW */
    int m = tape_mark(tp); /* each step frees the last one's output unless a node saved it (tape.h) */
    Tensor *y = tape_donate(conv2d_layer_forward(tp, &b->conv, x)); /* in place when nothing is recorded */
    y = tape_donate(tape_release1(tp, m, batchnorm_layer_forward(tp, &b->bn, y, train)));
    return tape_release1(tp, m, op_relu(tp, y));
}

/* the avg_pool2d(3, 1, 1) (count_include_pad = cip) in front of every A/C/E branch_pool */
static Tensor *pool_branch(Tape *tp, BasicConv *b, Tensor *x, int train, int cip) {
    int m = tape_mark(tp);
    return tape_release1(tp, m, basic_fwd(tp, b, op_avgpool2d(tp, x, 3, 1, 1, cip), train));
}

static Tensor *max_pool_3s2(Tape *tp, Tensor *x) { return op_maxpool2d(tp, x, 3, 2, 0); }

static Tensor *cat_channels(Tape *tp, int n, Tensor *const *xs) { return op_concat(tp, n, xs, 1); }

/* ---------------------------------------------------------------- InceptionA (35 x 35) */

typedef struct InceptionA {
    BasicConv b1x1, b5x5_1, b5x5_2, b3dbl_1, b3dbl_2, b3dbl_3, pool;
} InceptionA;

static void inception_a_init(InceptionA *m, ParamSet *ps, const char *p, int cin, int pool_features) {
    basic_init(&m->b1x1, ps, p, "branch1x1", cin, 64, 1, 1, 1, 0, 0);
    basic_init(&m->b5x5_1, ps, p, "branch5x5_1", cin, 48, 1, 1, 1, 0, 0);
    basic_init(&m->b5x5_2, ps, p, "branch5x5_2", 48, 64, 5, 5, 1, 2, 2);
    basic_init(&m->b3dbl_1, ps, p, "branch3x3dbl_1", cin, 64, 1, 1, 1, 0, 0);
    basic_init(&m->b3dbl_2, ps, p, "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
    basic_init(&m->b3dbl_3, ps, p, "branch3x3dbl_3", 96, 96, 3, 3, 1, 1, 1);
    basic_init(&m->pool, ps, p, "branch_pool", cin, pool_features, 1, 1, 1, 0, 0);
}

/* x (B, cin, 35, 35) -> (B, 64 + 64 + 96 + pool_features, 35, 35) */
static Tensor *inception_a_fwd(Tape *tp, InceptionA *m, Tensor *x, int t, int cip) {
    int mark = tape_mark(tp);
    Tensor *b5 = basic_fwd(tp, &m->b5x5_2, basic_fwd(tp, &m->b5x5_1, x, t), t);
    Tensor *bd = basic_fwd(tp, &m->b3dbl_1, x, t);
    bd = basic_fwd(tp, &m->b3dbl_3, basic_fwd(tp, &m->b3dbl_2, bd, t), t);
    Tensor *parts[] = {basic_fwd(tp, &m->b1x1, x, t), b5, bd, pool_branch(tp, &m->pool, x, t, cip)};
    return tape_release1(tp, mark, cat_channels(tp, 4, parts));
}

/* ---------------------------------------------------------------- InceptionB (35 -> 17) */

typedef struct InceptionB {
    BasicConv b3x3, b3dbl_1, b3dbl_2, b3dbl_3;
} InceptionB;

static void inception_b_init(InceptionB *m, ParamSet *ps, const char *p, int cin) {
    basic_init(&m->b3x3, ps, p, "branch3x3", cin, 384, 3, 3, 2, 0, 0);
    basic_init(&m->b3dbl_1, ps, p, "branch3x3dbl_1", cin, 64, 1, 1, 1, 0, 0);
    basic_init(&m->b3dbl_2, ps, p, "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
    basic_init(&m->b3dbl_3, ps, p, "branch3x3dbl_3", 96, 96, 3, 3, 2, 0, 0);
}

/* x (B, cin, 35, 35) -> (B, 384 + 96 + cin, 17, 17) */
static Tensor *inception_b_fwd(Tape *tp, InceptionB *m, Tensor *x, int t) {
    int mark = tape_mark(tp);
    Tensor *b3 = basic_fwd(tp, &m->b3x3, x, t);
    Tensor *bd = basic_fwd(tp, &m->b3dbl_1, x, t);
    bd = basic_fwd(tp, &m->b3dbl_3, basic_fwd(tp, &m->b3dbl_2, bd, t), t);
    Tensor *parts[] = {b3, bd, max_pool_3s2(tp, x)};
    return tape_release1(tp, mark, cat_channels(tp, 3, parts));
}

/* ---------------------------------------------------------------- InceptionC (17 x 17) */

typedef struct InceptionC {
    BasicConv b1x1, b7_1, b7_2, b7_3, b7dbl_1, b7dbl_2, b7dbl_3, b7dbl_4, b7dbl_5, pool;
} InceptionC;

static void inception_c_init(InceptionC *m, ParamSet *ps, const char *p, int cin, int c7) {
    basic_init(&m->b1x1, ps, p, "branch1x1", cin, 192, 1, 1, 1, 0, 0);
    basic_init(&m->b7_1, ps, p, "branch7x7_1", cin, c7, 1, 1, 1, 0, 0);
    basic_init(&m->b7_2, ps, p, "branch7x7_2", c7, c7, 1, 7, 1, 0, 3);
    basic_init(&m->b7_3, ps, p, "branch7x7_3", c7, 192, 7, 1, 1, 3, 0);
    basic_init(&m->b7dbl_1, ps, p, "branch7x7dbl_1", cin, c7, 1, 1, 1, 0, 0);
    basic_init(&m->b7dbl_2, ps, p, "branch7x7dbl_2", c7, c7, 7, 1, 1, 3, 0);
    basic_init(&m->b7dbl_3, ps, p, "branch7x7dbl_3", c7, c7, 1, 7, 1, 0, 3);
    basic_init(&m->b7dbl_4, ps, p, "branch7x7dbl_4", c7, c7, 7, 1, 1, 3, 0);
    basic_init(&m->b7dbl_5, ps, p, "branch7x7dbl_5", c7, 192, 1, 7, 1, 0, 3);
    basic_init(&m->pool, ps, p, "branch_pool", cin, 192, 1, 1, 1, 0, 0);
}

/* x (B, 768, 17, 17) -> (B, 768, 17, 17) */
static Tensor *inception_c_fwd(Tape *tp, InceptionC *m, Tensor *x, int t, int cip) {
    int mark = tape_mark(tp);
    Tensor *b7 = basic_fwd(tp, &m->b7_1, x, t);
    b7 = basic_fwd(tp, &m->b7_3, basic_fwd(tp, &m->b7_2, b7, t), t);
    Tensor *bd = basic_fwd(tp, &m->b7dbl_1, x, t);
    bd = basic_fwd(tp, &m->b7dbl_3, basic_fwd(tp, &m->b7dbl_2, bd, t), t);
    bd = basic_fwd(tp, &m->b7dbl_5, basic_fwd(tp, &m->b7dbl_4, bd, t), t);
    Tensor *bp = pool_branch(tp, &m->pool, x, t, cip);
    Tensor *parts[] = {basic_fwd(tp, &m->b1x1, x, t), b7, bd, bp};
    return tape_release1(tp, mark, cat_channels(tp, 4, parts));
}

/* ---------------------------------------------------------------- InceptionD (17 -> 8) */

typedef struct InceptionD {
    BasicConv b3_1, b3_2, b7x3_1, b7x3_2, b7x3_3, b7x3_4;
} InceptionD;

static void inception_d_init(InceptionD *m, ParamSet *ps, const char *p, int cin) {
    basic_init(&m->b3_1, ps, p, "branch3x3_1", cin, 192, 1, 1, 1, 0, 0);
    basic_init(&m->b3_2, ps, p, "branch3x3_2", 192, 320, 3, 3, 2, 0, 0);
    basic_init(&m->b7x3_1, ps, p, "branch7x7x3_1", cin, 192, 1, 1, 1, 0, 0);
    basic_init(&m->b7x3_2, ps, p, "branch7x7x3_2", 192, 192, 1, 7, 1, 0, 3);
    basic_init(&m->b7x3_3, ps, p, "branch7x7x3_3", 192, 192, 7, 1, 1, 3, 0);
    basic_init(&m->b7x3_4, ps, p, "branch7x7x3_4", 192, 192, 3, 3, 2, 0, 0);
}

/* x (B, 768, 17, 17) -> (B, 320 + 192 + 768, 8, 8) */
static Tensor *inception_d_fwd(Tape *tp, InceptionD *m, Tensor *x, int t) {
    int mark = tape_mark(tp);
    Tensor *b3 = basic_fwd(tp, &m->b3_2, basic_fwd(tp, &m->b3_1, x, t), t);
    Tensor *b7 = basic_fwd(tp, &m->b7x3_2, basic_fwd(tp, &m->b7x3_1, x, t), t);
    b7 = basic_fwd(tp, &m->b7x3_4, basic_fwd(tp, &m->b7x3_3, b7, t), t);
    Tensor *parts[] = {b3, b7, max_pool_3s2(tp, x)};
    return tape_release1(tp, mark, cat_channels(tp, 3, parts));
}

/* ---------------------------------------------------------------- InceptionE (8 x 8) */

typedef struct InceptionE {
    BasicConv b1x1, b3_1, b3_2a, b3_2b, b3dbl_1, b3dbl_2, b3dbl_3a, b3dbl_3b, pool;
} InceptionE;

static void inception_e_init(InceptionE *m, ParamSet *ps, const char *p, int cin) {
    basic_init(&m->b1x1, ps, p, "branch1x1", cin, 320, 1, 1, 1, 0, 0);
    basic_init(&m->b3_1, ps, p, "branch3x3_1", cin, 384, 1, 1, 1, 0, 0);
    basic_init(&m->b3_2a, ps, p, "branch3x3_2a", 384, 384, 1, 3, 1, 0, 1);
    basic_init(&m->b3_2b, ps, p, "branch3x3_2b", 384, 384, 3, 1, 1, 1, 0);
    basic_init(&m->b3dbl_1, ps, p, "branch3x3dbl_1", cin, 448, 1, 1, 1, 0, 0);
    basic_init(&m->b3dbl_2, ps, p, "branch3x3dbl_2", 448, 384, 3, 3, 1, 1, 1);
    basic_init(&m->b3dbl_3a, ps, p, "branch3x3dbl_3a", 384, 384, 1, 3, 1, 0, 1);
    basic_init(&m->b3dbl_3b, ps, p, "branch3x3dbl_3b", 384, 384, 3, 1, 1, 1, 0);
    basic_init(&m->pool, ps, p, "branch_pool", cin, 192, 1, 1, 1, 0, 0);
}

/* x (B, cin, 8, 8) -> (B, 320 + 768 + 768 + 192 = 2048, 8, 8) */
static Tensor *inception_e_fwd(Tape *tp, InceptionE *m, Tensor *x, int t, int cip) {
    int mark = tape_mark(tp);
    Tensor *b3 = basic_fwd(tp, &m->b3_1, x, t);
    Tensor *b3_parts[] = {basic_fwd(tp, &m->b3_2a, b3, t), basic_fwd(tp, &m->b3_2b, b3, t)};
    b3 = cat_channels(tp, 2, b3_parts);
    Tensor *bd = basic_fwd(tp, &m->b3dbl_2, basic_fwd(tp, &m->b3dbl_1, x, t), t);
    Tensor *bd_parts[] = {basic_fwd(tp, &m->b3dbl_3a, bd, t), basic_fwd(tp, &m->b3dbl_3b, bd, t)};
    bd = cat_channels(tp, 2, bd_parts);
    Tensor *bp = pool_branch(tp, &m->pool, x, t, cip);
    Tensor *parts[] = {basic_fwd(tp, &m->b1x1, x, t), b3, bd, bp};
    return tape_release1(tp, mark, cat_channels(tp, 4, parts));
}

/* ---------------------------------------------------------------- the trunk */

struct InceptionTrunk {
    BasicConv c1a, c2a, c2b, c3b, c4a;
    InceptionA m5b, m5c, m5d;
    InceptionB m6a;
    InceptionC m6b, m6c, m6d, m6e;
    InceptionD m7a;
    InceptionE m7b, m7c;
};

/* Registers every trunk tensor in torchvision's state_dict order. */
static void trunk_init(InceptionTrunk *t, ParamSet *ps) {
    basic_init(&t->c1a, ps, "Conv2d_1a_3x3", NULL, 3, 32, 3, 3, 2, 0, 0);
    basic_init(&t->c2a, ps, "Conv2d_2a_3x3", NULL, 32, 32, 3, 3, 1, 0, 0);
    basic_init(&t->c2b, ps, "Conv2d_2b_3x3", NULL, 32, 64, 3, 3, 1, 1, 1);
    basic_init(&t->c3b, ps, "Conv2d_3b_1x1", NULL, 64, 80, 1, 1, 1, 0, 0);
    basic_init(&t->c4a, ps, "Conv2d_4a_3x3", NULL, 80, 192, 3, 3, 1, 0, 0);
    inception_a_init(&t->m5b, ps, "Mixed_5b", 192, 32);
    inception_a_init(&t->m5c, ps, "Mixed_5c", 256, 64);
    inception_a_init(&t->m5d, ps, "Mixed_5d", 288, 64);
    inception_b_init(&t->m6a, ps, "Mixed_6a", 288);
    inception_c_init(&t->m6b, ps, "Mixed_6b", 768, 128);
    inception_c_init(&t->m6c, ps, "Mixed_6c", 768, 160);
    inception_c_init(&t->m6d, ps, "Mixed_6d", 768, 160);
    inception_c_init(&t->m6e, ps, "Mixed_6e", 768, 192);
    inception_d_init(&t->m7a, ps, "Mixed_7a", 768);
    inception_e_init(&t->m7b, ps, "Mixed_7b", 1280);
    inception_e_init(&t->m7c, ps, "Mixed_7c", 2048);
}

/* x (B, 3, 299, 299) -> Mixed_6e (B, 768, 17, 17) into *features; returns Mixed_7c (B, 2048, 8, 8).
 * cip: count_include_pad of the branch average pools. */
static Tensor *trunk_forward(Tape *tp, InceptionTrunk *t, Tensor *x, int train, int cip, Tensor **features) {
    int mark = tape_mark(tp);
    Tensor *feat = NULL;
    /* after each stage only its output (and Mixed_6e) lives on, unless a node saved it (tape.h);
     * the stem's convolutions get their input donated: without gradients they write over it */
#define STAGE(expr) (x = (expr), tape_release(tp, mark, 2, (Tensor *[]){x, feat}))
    STAGE(basic_fwd(tp, &t->c1a, x, train));           /* (B, 32, 149, 149) */
    STAGE(basic_fwd(tp, &t->c2a, tape_donate(x), train));           /* (B, 32, 147, 147) */
    STAGE(basic_fwd(tp, &t->c2b, tape_donate(x), train));           /* (B, 64, 147, 147) */
    STAGE(max_pool_3s2(tp, x));                        /* (B, 64, 73, 73) */
    STAGE(basic_fwd(tp, &t->c3b, tape_donate(x), train));           /* (B, 80, 73, 73) */
    STAGE(basic_fwd(tp, &t->c4a, tape_donate(x), train));           /* (B, 192, 71, 71) */
    STAGE(max_pool_3s2(tp, x));                        /* (B, 192, 35, 35) */
    STAGE(inception_a_fwd(tp, &t->m5b, x, train, cip)); /* (B, 256, 35, 35) */
    STAGE(inception_a_fwd(tp, &t->m5c, x, train, cip)); /* (B, 288, 35, 35) */
    STAGE(inception_a_fwd(tp, &t->m5d, x, train, cip)); /* (B, 288, 35, 35) */
    STAGE(inception_b_fwd(tp, &t->m6a, x, train));     /* (B, 768, 17, 17) */
    STAGE(inception_c_fwd(tp, &t->m6b, x, train, cip));
    STAGE(inception_c_fwd(tp, &t->m6c, x, train, cip));
    STAGE(inception_c_fwd(tp, &t->m6d, x, train, cip));
    STAGE(inception_c_fwd(tp, &t->m6e, x, train, cip)); /* (B, 768, 17, 17) */
    *features = feat = x;
    STAGE(inception_d_fwd(tp, &t->m7a, x, train));     /* (B, 1280, 8, 8) */
    STAGE(inception_e_fwd(tp, &t->m7b, x, train, cip)); /* (B, 2048, 8, 8) */
    STAGE(inception_e_fwd(tp, &t->m7c, x, train, cip)); /* (B, 2048, 8, 8) */
#undef STAGE
    if (feat->blocked) *features = op_unblock16(tp, feat); /* back to NCHW for the heads */
    return x->blocked ? op_unblock16(tp, x) : x;
}

/* ---------------------------------------------------------------- the encoder */

int image_encoder_is_trunk_key(const char *key) {
    CHECK(key != NULL, "image_encoder_is_trunk_key: NULL key");
    size_t len = strcspn(key, ".");
    for (int i = 0; i < N_PARTS; i++)
        if (strlen(INCEPTION_PARTS[i]) == len && strncmp(key, INCEPTION_PARTS[i], len) == 0) return 1;
    return 0;
}

void image_encoder_set_trainable(ImageEncoder *ie, int heads_trainable) {
    CHECK(ie->ps.finalized, "image_encoder_set_trainable: encoder not initialised");
    for (int i = 0; i < ie->ps.n; i++) {
        ParamEntry *e = ie->ps.entries[i];
        if (e->kind != PARAM_WEIGHT) continue;
        e->t.requires_grad = heads_trainable && !image_encoder_is_trunk_key(e->name);
    }
    ie->ps.frozen = !heads_trainable;
}

void image_encoder_pin_trunk(ImageEncoder *ie, int on) {
    CHECK(ie->ps.finalized, "image_encoder_pin_trunk: encoder not initialised");
    if (ie->ps.device != DEVICE_CPU) { /* oneDNN's reordered copies are a CPU matter: remembered only */
        ie->trunk_pinned = on != 0;
        return;
    }
    for (int i = 0; i < ie->ps.n; i++) {
        ParamEntry *e = ie->ps.entries[i];
        if (e->kind != PARAM_WEIGHT || e->t.ndim != 4 || !image_encoder_is_trunk_key(e->name)) continue;
        if (on) conv2d_pin_weights(e->t.data, (size_t)shape_numel(e->t.ndim, e->t.shape));
        else conv2d_unpin_weights(e->t.data);
    }
    ie->trunk_pinned = on != 0;
}

void image_encoder_init(ImageEncoder *ie, const ModelConfig *cfg) {
    CHECK(cfg->embedding_dim > 0, "image_encoder_init: EMBEDDING_DIM %d must be positive", cfg->embedding_dim);
    memset(ie, 0, sizeof *ie);
    ie->cfg = *cfg;
    paramset_init(&ie->ps, "image_encoder");
    ie->trunk = xcalloc(1, sizeof *ie->trunk);
    trunk_init(ie->trunk, &ie->ps);
    int E = cfg->embedding_dim;
    conv2d_layer_init(&ie->emb_features, &ie->ps, "emb_features", FEATURES_CH, E, 1, 1, 1, 0, 0, 0);
    linear_layer_init(&ie->emb_cnn_code, &ie->ps, "emb_cnn_code", cfg->image_code_mixed ? FEATURES_CH : POOL_CH, E, 1);
    paramset_finalize(&ie->ps);
    image_encoder_set_trainable(ie, 1);
    ie->train = 0;
    ie->convention = INCEPTION_TORCHVISION;
}

void image_encoder_free(ImageEncoder *ie) {
    if (!ie) return;
    if (ie->trunk_pinned) image_encoder_pin_trunk(ie, 0);
    paramset_free(&ie->ps);
    free(ie->trunk);
    ie->trunk = NULL;
}

/* imgs (B, 3, S, S) in [-1, 1] -> the trunk's input (B, 3, 299, 299) in the encoder's convention */
static Tensor *trunk_input(Tape *tp, const ImageEncoder *ie, Tensor *imgs) {
    int same = imgs->shape[2] == TRUNK_SIZE && imgs->shape[3] == TRUNK_SIZE;
    if (ie->convention == INCEPTION_KERAS) {
        Tensor *x = op_scale(tp, op_add_scalar(tp, imgs, 1.0f), 0.5f);   /* (x + 1) / 2 in [0, 1] */
        return same ? x : op_resize_bilinear_ac(tp, x, TRUNK_SIZE, TRUNK_SIZE, 1);
    }
    /* 299 is an exact copy: skipped */
    return same ? imgs : op_resize_bilinear(tp, imgs, TRUNK_SIZE, TRUNK_SIZE);
}

ImageEncoderOut image_encoder_forward(Tape *tp, ImageEncoder *ie, Tensor *imgs) {
    char buf[64];
    CHECK(ie->trunk != NULL, "image_encoder_forward: encoder not initialised");
    CHECK(imgs->ndim == 4 && imgs->shape[1] == 3 && imgs->shape[0] > 0,
          "image_encoder_forward: images %s must be (B, 3, S, S)", tensor_shape_str(imgs, buf, sizeof buf));
    int B = imgs->shape[0];
    CHECK(ie->convention == INCEPTION_TORCHVISION || ie->convention == INCEPTION_KERAS,
          "image_encoder_forward: unknown convention %d", (int)ie->convention);
    int mark = tape_mark(tp);
    Tensor *x = trunk_input(tp, ie, imgs);           /* (B, 3, 299, 299) */
    Tensor *features = NULL;
    int cip = ie->convention == INCEPTION_TORCHVISION;
    Tensor *top = trunk_forward(tp, ie->trunk, x, ie->train, cip, &features);
    tape_release(tp, mark, 2, (Tensor *[]){top, features}); /* the resized input, unless a node saved it */
    Tensor *pool = op_avgpool2d(tp, top, 8, 8, 0, 1); /* (B, 2048, 1, 1) */
    ImageEncoderOut out;
    out.trunk_pool = OP_RESHAPE(tp, pool, B, POOL_CH);                        /* (B, 2048) */
    out.mixed_6e = features;                                                  /* (B, 768, 17, 17) */
    out.region = conv2d_layer_forward(tp, &ie->emb_features, features);       /* (B, E, 17, 17) */
    out.code = image_encoder_code(tp, ie, features, out.trunk_pool);          /* (B, E) */
    return out;
}

Tensor *image_encoder_code(Tape *tp, ImageEncoder *ie, Tensor *mixed_6e, Tensor *pool) {
    if (!ie->cfg.image_code_mixed) return linear_layer_forward(tp, &ie->emb_cnn_code, pool);
    int B = mixed_6e->shape[0];
    Tensor *m = op_avgpool2d(tp, mixed_6e, mixed_6e->shape[2], mixed_6e->shape[2], 0, 1); /* (B, 768, 1, 1) */
    return linear_layer_forward(tp, &ie->emb_cnn_code, OP_RESHAPE(tp, m, B, FEATURES_CH));
}
