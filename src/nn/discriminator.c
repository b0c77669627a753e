/* discriminator.c: D_NET64 / D_NET128 / D_NET256 of the seed (image trunk, conditional and
 * unconditional logit heads) and its discriminator_loss; see discriminator.h.
 *
 * Parameters are registered in PyTorch's state_dict order: the trunk blocks (img_code_s16,
 * then img_code_s32[_1] or img_code_s32, img_code_s64, img_code_s64_1, img_code_s64_2), then
 * UNCOND_DNET, then COND_DNET. The trunk blocks are also applied in that order. */
#include "discriminator.h"

#include <stdlib.h>
#include <string.h>

#define D_LRELU_SLOPE 0.2f
#define D_BN_EPS 1e-5f
#define D_MAX_BLOCKS 8

/* conv (no bias) [+ BN] + LeakyReLU(0.2): one stage of the image trunk */
typedef struct DBlock {
    Conv2dLayer conv;
    BatchNormLayer bn;
    int has_bn;
} DBlock;

struct DNetImpl {
    DBlock blocks[D_MAX_BLOCKS];    /* trunk, in forward (= registration) order */
    int n_blocks;
    Conv2dLayer uncond_out;         /* UNCOND_DNET.outlogits.0: 8ndf -> 1, 4x4 s4, bias */
    Conv2dLayer joint_conv;         /* COND_DNET.jointConv.0: 8ndf + E -> 8ndf, 3x3 p1 */
    BatchNormLayer joint_bn;        /* COND_DNET.jointConv.1 */
    Conv2dLayer cond_out;           /* COND_DNET.outlogits.0 */
};

/* Registers `<prefix>.<conv_idx>` (conv k x k, stride, pad, no bias) and, if bn_idx >= 0,
 * `<prefix>.<bn_idx>` (BatchNorm2d). */
static void add_block(DNetImpl *im, ParamSet *ps, const char *prefix, int conv_idx, int bn_idx, int cin, int cout,
                      int k, int stride, int pad) {
    CHECK(im->n_blocks < D_MAX_BLOCKS, "discriminator: more than %d trunk blocks", D_MAX_BLOCKS);
    DBlock *b = &im->blocks[im->n_blocks++];
    char n[NAME_MAX_LEN];
    conv2d_layer_init(&b->conv, ps, pname(n, "%s.%d", prefix, conv_idx), cin, cout, k, k, stride, pad, pad, 0);
    b->has_bn = bn_idx >= 0;
    if (b->has_bn) batchnorm_layer_init(&b->bn, ps, pname(n, "%s.%d", prefix, bn_idx), cout, D_BN_EPS);
}

/* nn.Sequential(Conv2d(cin, cout, 4, 2, 1, bias=False), BatchNorm2d(cout), LeakyReLU) */
static void add_down_block(DNetImpl *im, ParamSet *ps, const char *prefix, int cin, int cout) {
    add_block(im, ps, prefix, 0, 1, cin, cout, 4, 2, 1);
}

/* nn.Sequential(conv3x3(cin, cout), BatchNorm2d(cout), LeakyReLU) */
static void add_block3x3(DNetImpl *im, ParamSet *ps, const char *prefix, int cin, int cout) {
    add_block(im, ps, prefix, 0, 1, cin, cout, 3, 1, 1);
}

/* encode_image_by_16times: (B, 3, S, S) -> (B, 8ndf, S/16, S/16) */
static void add_s16(DNetImpl *im, ParamSet *ps, int ndf) {
    add_block(im, ps, "img_code_s16", 0, -1, 3, ndf, 4, 2, 1);
    add_block(im, ps, "img_code_s16", 2, 3, ndf, ndf * 2, 4, 2, 1);
    add_block(im, ps, "img_code_s16", 5, 6, ndf * 2, ndf * 4, 4, 2, 1);
    add_block(im, ps, "img_code_s16", 8, 9, ndf * 4, ndf * 8, 4, 2, 1);
}

/* PyTorch's BatchNorm defaults (weight 1, running_var 1, the rest 0) after finalize. */
static void bn_defaults(BatchNormLayer *bn) {
    for (int64_t i = 0; i < bn->weight->n; i++) {
        bn->weight->data[i] = 1.0f;
        bn->running_var->data[i] = 1.0f;
    }
}

void dnet_init(DNet *d, const ModelConfig *cfg, int size, const char *name) {
    CHECK(size == 64 || size == 128 || size == 256, "dnet_init: size %d (must be 64, 128 or 256)", size);
    CHECK(cfg->df_dim > 0 && cfg->embedding_dim > 0, "dnet_init: df_dim %d, embedding_dim %d must be positive",
          cfg->df_dim, cfg->embedding_dim);
    memset(d, 0, sizeof *d);
    d->cfg = *cfg;
    d->size = size;
    d->train = 1;
    d->impl = xcalloc(1, sizeof *d->impl);
    DNetImpl *im = d->impl;
    ParamSet *ps = &d->ps;
    paramset_init(ps, name ? name : "netD");
    int ndf = cfg->df_dim, nef = cfg->embedding_dim;
    add_s16(im, ps, ndf);
    if (size >= 128) add_down_block(im, ps, "img_code_s32", ndf * 8, ndf * 16);
    if (size == 128) add_block3x3(im, ps, "img_code_s32_1", ndf * 16, ndf * 8);
    if (size == 256) {
        add_down_block(im, ps, "img_code_s64", ndf * 16, ndf * 32);
        add_block3x3(im, ps, "img_code_s64_1", ndf * 32, ndf * 16);
        add_block3x3(im, ps, "img_code_s64_2", ndf * 16, ndf * 8);
    }
    conv2d_layer_init(&im->uncond_out, ps, "UNCOND_DNET.outlogits.0", ndf * 8, 1, 4, 4, 4, 0, 0, 1);
    conv2d_layer_init(&im->joint_conv, ps, "COND_DNET.jointConv.0", ndf * 8 + nef, ndf * 8, 3, 3, 1, 1, 1, 0);
    batchnorm_layer_init(&im->joint_bn, ps, "COND_DNET.jointConv.1", ndf * 8, D_BN_EPS);
    conv2d_layer_init(&im->cond_out, ps, "COND_DNET.outlogits.0", ndf * 8, 1, 4, 4, 4, 0, 0, 1);
    paramset_finalize(ps);
    for (int i = 0; i < im->n_blocks; i++)
        if (im->blocks[i].has_bn) bn_defaults(&im->blocks[i].bn);
    bn_defaults(&im->joint_bn);
}

void dnet_free(DNet *d) {
    if (!d) return;
    paramset_free(&d->ps);
    free(d->impl);
    d->impl = NULL;
}

static Tensor *block_forward(Tape *tp, DBlock *b, Tensor *x, int train) {
    int m = tape_mark(tp); /* each step frees the last one's output unless a node saved it (tape.h) */
    Tensor *h = conv2d_layer_forward(tp, &b->conv, x);                     /* (B, cout, H', W') */
    if (b->has_bn) h = tape_release1(tp, m, batchnorm_layer_forward(tp, &b->bn, tape_donate(h), train));
    return tape_release1(tp, m, op_leaky_relu(tp, tape_donate(h), D_LRELU_SLOPE));
}

Tensor *dnet_forward(Tape *tp, DNet *d, Tensor *x) {
    char s[64];
    CHECK(x->ndim == 4 && x->shape[1] == 3 && x->shape[2] == d->size && x->shape[3] == d->size,
          "%s forward: input %s, expected (B, 3, %d, %d)", d->ps.name, tensor_shape_str(x, s, sizeof s), d->size, d->size);
    Tensor *h = x;                                                          /* (B, 3, S, S) */
    int m = tape_mark(tp);
    for (int i = 0; i < d->impl->n_blocks; i++) h = tape_release1(tp, m, block_forward(tp, &d->impl->blocks[i], h, d->train));
    return h;                                                               /* (B, 8ndf, 4, 4) */
}

/* h (B, 8ndf, 4, 4) as the heads expect it */
static void check_code(const DNet *d, const Tensor *h, const char *what) {
    char s[64];
    CHECK(h->ndim == 4 && h->shape[1] == d->cfg.df_dim * 8 && h->shape[2] == 4 && h->shape[3] == 4,
          "%s %s: image code %s, expected (B, %d, 4, 4)", d->ps.name, what, tensor_shape_str(h, s, sizeof s),
          d->cfg.df_dim * 8);
}

/* outlogits: conv4x4 s4 (+bias) -> (B, 1, 1, 1), sigmoid, view(-1) -> (B) */
static Tensor *out_logits(Tape *tp, const Conv2dLayer *l, Tensor *h) {
    Tensor *p = op_sigmoid(tp, conv2d_layer_forward(tp, l, h));             /* (B, 1, 1, 1) */
    return OP_RESHAPE(tp, p, -1);
}

Tensor *dnet_cond(Tape *tp, DNet *d, Tensor *h, Tensor *cond) {
    char s[64];
    check_code(d, h, "COND_DNET");
    int B = h->shape[0], E = d->cfg.embedding_dim;
    CHECK(cond->ndim == 2 && cond->shape[0] == B && cond->shape[1] == E,
          "%s COND_DNET: condition %s, expected (%d, %d)", d->ps.name, tensor_shape_str(cond, s, sizeof s), B, E);
    Tensor *c = OP_RESHAPE(tp, cond, B, E, 1, 1);                           /* (B, E, 1, 1) */
    c = op_repeat(tp, c, (int[]){1, 1, 4, 4});                              /* (B, E, 4, 4) */
    Tensor *hc = op_concat(tp, 2, (Tensor *[]){h, c}, 1);                   /* (B, 8ndf + E, 4, 4) */
    Tensor *j = conv2d_layer_forward(tp, &d->impl->joint_conv, hc);         /* (B, 8ndf, 4, 4) */
    j = batchnorm_layer_forward(tp, &d->impl->joint_bn, j, d->train);
    j = op_leaky_relu(tp, j, D_LRELU_SLOPE);
    return out_logits(tp, &d->impl->cond_out, j);                           /* (B) */
}

Tensor *dnet_uncond(Tape *tp, DNet *d, Tensor *h) {
    check_code(d, h, "UNCOND_DNET");
    return out_logits(tp, &d->impl->uncond_out, h);                        /* (B) */
}

/* A constant (n) tensor of `value` on the tape: BCE labels. */
static Tensor *labels(Tape *tp, int n, float value) {
    Tensor *y = TNEW(tp, n);
    tensor_fill(y, value);
    return y;
}

static Tensor *bce_const(Tape *tp, Tensor *p, float label) { return op_bce(tp, p, labels(tp, (int)p->n, label)); }

/* x / s with PyTorch's rounding (a true division, not a multiplication by 1/s) */
static Tensor *div_scalar(Tape *tp, Tensor *x, float s) {
    Tensor *c = tape_new(tp, 0, NULL);                                      /* () */
    tensor_fill(c, s);
    return op_div(tp, x, c);
}

DLossOut discriminator_loss(Tape *tp, DNet *d, Tensor *real, Tensor *fake, Tensor *cond) {
    char s1[64], s2[64];
    CHECK(real->ndim == 4 && tensor_same_shape(real, fake), "%s discriminator_loss: real %s and fake %s differ",
          d->ps.name, tensor_shape_str(real, s1, sizeof s1), tensor_shape_str(fake, s2, sizeof s2));
    int B = real->shape[0];
    CHECK(B >= 2, "%s discriminator_loss: batch %d (the wrong pairs need at least 2)", d->ps.name, B);
    Tensor *real_f = dnet_forward(tp, d, real);                             /* (B, 8ndf, 4, 4) */
    Tensor *fake_f = dnet_forward(tp, d, tape_detach(tp, fake));            /* (B, 8ndf, 4, 4) */
    DLossOut o;
    o.cond_real = dnet_cond(tp, d, real_f, cond);                           /* (B) */
    o.cond_fake = dnet_cond(tp, d, fake_f, cond);                           /* (B) */
    o.cond_wrong = dnet_cond(tp, d, op_slice(tp, real_f, 0, 0, B - 1), op_slice(tp, cond, 0, 1, B)); /* (B-1) */
    o.uncond_real = dnet_uncond(tp, d, real_f);                             /* (B) */
    o.uncond_fake = dnet_uncond(tp, d, fake_f);                             /* (B) */
    Tensor *cr = bce_const(tp, o.cond_real, 1.0f), *cf = bce_const(tp, o.cond_fake, 0.0f);
    Tensor *cw = bce_const(tp, o.cond_wrong, 0.0f);
    Tensor *ur = bce_const(tp, o.uncond_real, 1.0f), *uf = bce_const(tp, o.uncond_fake, 0.0f);
    Tensor *real_part = div_scalar(tp, op_add(tp, ur, cr), 2.0f);
    Tensor *fake_part = div_scalar(tp, op_add(tp, op_add(tp, uf, cf), cw), 3.0f);
    o.loss = op_add(tp, real_part, fake_part);                              /* () */
    return o;
}
