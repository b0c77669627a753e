/* generator.c: G_NET (1..3 stages) and G_DCGAN of the seed on the tape; see generator.h.
 * Parameters are registered in the seed's state_dict order: h_net1, img_net1, h_net2, img_net2,
 * h_net3, img_net3 (G_DCGAN: h_net1, h_net2, h_net3, img_net), each module's parameters before
 * its buffers (BN: weight, bias, running_mean, running_var, num_batches_tracked); with cfg.ca_net,
 * ca_net.fc.{weight,bias} come first (AttnGAN's G_NET.__init__ creates self.ca_net first). */
#include "generator.h"
#include "../ops/fused.h"

#include <stdlib.h>
#include <string.h>

#define BN_EPS 1e-5f

/* up_block: nearest x2, conv3x3 (cin -> 2 cout, no bias) as <p>.1, BN(2 cout) as <p>.2, GLU */
typedef struct UpBlock {
    Conv2dLayer conv;
    BatchNormLayer bn;
} UpBlock;

/* ResBlock: x + BN4(conv3(GLU(BN1(conv0(x))))) as <p>.block.{0,1,3,4} */
typedef struct ResBlock {
    Conv2dLayer conv0, conv3;
    BatchNormLayer bn1, bn4;
} ResBlock;

/* INIT_STAGE_G: fc.0 Linear(E -> ngf*4*4*2, no bias), fc.1 BatchNorm1d, GLU, upsample1..4 */
typedef struct InitStage {
    int ngf;                     /* 16 g */
    LinearLayer fc;
    BatchNormLayer fc_bn;
    UpBlock up[4];
} InitStage;

/* NEXT_STAGE_G: att.conv_context (1x1, E -> g), residual.<r>, upsample (2g -> g) */
typedef struct NextStage {
    Conv2dLayer conv_context;
    ResBlock *res;               /* r_num blocks */
    int r_num;
    UpBlock up;
} NextStage;

/* CA_NET: fc Linear(E -> 4C, bias) + GLU -> (mu, logvar) */
typedef struct CaNet {
    LinearLayer fc;
    int c_dim;
} CaNet;

struct GNetImpl {
    CaNet ca;                    /* only with cfg.ca_net */
    InitStage s1;
    NextStage next[2];           /* h_net2, h_net3 */
    Conv2dLayer img[3];          /* img_net{k}.img.0; G_DCGAN: img[0] is img_net.img.0 */
};

/* ---------------------------------------------------------------- construction */
static void up_block_init(UpBlock *u, ParamSet *ps, const char *prefix, int cin, int cout) {
    char n[NAME_MAX_LEN];
    conv2d_layer_init(&u->conv, ps, pname(n, "%s.1", prefix), cin, 2 * cout, 3, 3, 1, 1, 1, 0);
    batchnorm_layer_init(&u->bn, ps, pname(n, "%s.2", prefix), 2 * cout, BN_EPS);
}

static void res_block_init(ResBlock *r, ParamSet *ps, const char *prefix, int c) {
    char n[NAME_MAX_LEN];
    conv2d_layer_init(&r->conv0, ps, pname(n, "%s.block.0", prefix), c, 2 * c, 3, 3, 1, 1, 1, 0);
    batchnorm_layer_init(&r->bn1, ps, pname(n, "%s.block.1", prefix), 2 * c, BN_EPS);
    conv2d_layer_init(&r->conv3, ps, pname(n, "%s.block.3", prefix), c, c, 3, 3, 1, 1, 1, 0);
    batchnorm_layer_init(&r->bn4, ps, pname(n, "%s.block.4", prefix), c, BN_EPS);
}

static void init_stage_init(InitStage *s, ParamSet *ps, int ngf, int in_dim) {
    char n[NAME_MAX_LEN];
    s->ngf = ngf;
    linear_layer_init(&s->fc, ps, "h_net1.fc.0", in_dim, ngf * 4 * 4 * 2, 0);
    batchnorm_layer_init(&s->fc_bn, ps, "h_net1.fc.1", ngf * 4 * 4 * 2, BN_EPS);
    for (int i = 0; i < 4; i++)
        up_block_init(&s->up[i], ps, pname(n, "h_net1.upsample%d", i + 1), ngf >> i, ngf >> (i + 1));
}

static void next_stage_init(NextStage *s, ParamSet *ps, int k, int g, int e, int r_num) {
    char n[NAME_MAX_LEN], p[NAME_MAX_LEN];
    conv2d_layer_init(&s->conv_context, ps, pname(n, "h_net%d.att.conv_context", k), e, g, 1, 1, 1, 0, 0, 0);
    s->r_num = r_num;
    s->res = xcalloc((size_t)(r_num > 0 ? r_num : 1), sizeof *s->res);
    for (int r = 0; r < r_num; r++) res_block_init(&s->res[r], ps, pname(p, "h_net%d.residual.%d", k, r), 2 * g);
    up_block_init(&s->up, ps, pname(n, "h_net%d.upsample", k), 2 * g, g);
}

static void img_head_init(Conv2dLayer *c, ParamSet *ps, const char *prefix, int g) {
    char n[NAME_MAX_LEN];
    conv2d_layer_init(c, ps, pname(n, "%s.img.0", prefix), g, 3, 3, 3, 1, 1, 1, 0);
}

void gnet_init(GNet *g, const ModelConfig *cfg, int branch) {
    CHECK(branch >= 1 && branch <= 3, "gnet_init: branch %d (must be 1, 2 or 3)", branch);
    CHECK(cfg->gf_dim > 0 && cfg->embedding_dim > 0 && cfg->condition_dim > 0 && cfg->r_num >= 0,
          "gnet_init: bad sizes gf_dim %d, embedding_dim %d, condition_dim %d, r_num %d", cfg->gf_dim,
          cfg->embedding_dim, cfg->condition_dim, cfg->r_num);
    CHECK(!cfg->ca_net || cfg->z_dim > 0, "gnet_init: CA_NET needs Z_DIM > 0 (got %d)", cfg->z_dim);
    g->cfg = *cfg;
    g->cfg.ca_net = cfg->ca_net != 0;
    g->branch = branch;
    g->train = 1; /* nn.Module default */
    g->impl = xcalloc(1, sizeof *g->impl);
    paramset_init(&g->ps, "netG");
    GNetImpl *m = g->impl;
    int gf = cfg->gf_dim, dcgan = cfg->g_variant == G_VARIANT_DCGAN;
    char n[NAME_MAX_LEN];
    if (g->cfg.ca_net) {
        m->ca.c_dim = cfg->condition_dim;
        linear_layer_init(&m->ca.fc, &g->ps, "ca_net.fc", cfg->embedding_dim, 4 * cfg->condition_dim, 1);
    }
    init_stage_init(&m->s1, &g->ps, 16 * gf, cfg->condition_dim + (g->cfg.ca_net ? cfg->z_dim : 0));
    if (!dcgan) img_head_init(&m->img[0], &g->ps, "img_net1", gf);
    for (int k = 2; k <= branch; k++) {
        next_stage_init(&m->next[k - 2], &g->ps, k, gf, cfg->embedding_dim, cfg->r_num);
        if (!dcgan) img_head_init(&m->img[k - 1], &g->ps, pname(n, "img_net%d", k), gf);
    }
    if (dcgan) img_head_init(&m->img[0], &g->ps, "img_net", gf);
    paramset_finalize(&g->ps);
}

void gnet_free(GNet *g) {
    if (!g) return;
    if (g->impl) {
        for (int k = 0; k < 2; k++) free(g->impl->next[k].res);
        free(g->impl);
    }
    paramset_free(&g->ps);
    g->impl = NULL;
}

/* ---------------------------------------------------------------- forward */
/* x (B, cin, H, W) -> (B, cout, 2H, 2W) */
static Tensor *up_block_forward(Tape *tp, UpBlock *u, Tensor *x, int train) {
    int m = tape_mark(tp); /* each step frees the last one's output unless a node saved it (tape.h) */
    const Conv2dLayer *c = &u->conv; /* conv3x3 stride 1 on the upsampled x, fused (ops/fused.h) */
    Tensor *y = op_upsample2x_conv2d(tp, x, c->weight, c->bias, c->pad_h, c->pad_w);
    y = tape_release1(tp, m, batchnorm_layer_forward(tp, &u->bn, tape_donate(y), train));
    return tape_release1(tp, m, op_glu(tp, tape_donate(y), 1));
}

/* x (B, c, H, W) -> (B, c, H, W) */
static Tensor *res_block_forward(Tape *tp, ResBlock *r, Tensor *x, int train) {
    int m = tape_mark(tp);
    Tensor *y = conv2d_layer_forward(tp, &r->conv0, x);
    y = tape_release1(tp, m, batchnorm_layer_forward(tp, &r->bn1, tape_donate(y), train));
    y = tape_release1(tp, m, op_glu(tp, tape_donate(y), 1));
    y = tape_release1(tp, m, conv2d_layer_forward(tp, &r->conv3, y));
    y = tape_release1(tp, m, batchnorm_layer_forward(tp, &r->bn4, tape_donate(y), train));
    return tape_release1(tp, m, op_add(tp, y, x));
}

/* sent (B, cond) (with CA_NET: cat(c_code, z)) -> h (B, g, 64, 64) */
static Tensor *init_stage_forward(Tape *tp, InitStage *s, Tensor *sent, int train) {
    int B = sent->shape[0];
    Tensor *x = linear_layer_forward(tp, &s->fc, sent);      /* (B, ngf*32) */
    x = batchnorm_layer_forward(tp, &s->fc_bn, x, train);
    x = op_glu(tp, x, 1);                                    /* (B, ngf*16) */
    x = OP_RESHAPE(tp, x, B, s->ngf, 4, 4);
    int m = tape_mark(tp);
    for (int i = 0; i < 4; i++) x = tape_release1(tp, m, up_block_forward(tp, &s->up[i], x, train));
    return x;
}

/* The (B*qL, L) byte mask of the attention rows: row r = b*qL + q gets mask[r % B] (the seed's
 * mask.repeat(qL, 1)) or mask[b] (correct). mask (B, L), 1 = padding. */
static uint8_t *attention_mask(Tape *tp, const uint8_t *mask, int B, int qL, int L, int correct) {
    int64_t rows = (int64_t)B * qL;
    uint8_t *m = tape_alloc(tp, (size_t)(rows * L));
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *src = mask + (correct ? r / qL : r % B) * L;
        for (int l = 0; l < L; l++) m[r * L + l] = src[l] != 0;
    }
    return m;
}

/* GlobalAttentionGeneral: h (B, g, ih, iw), words (B, E, L), mask (B, L) or NULL ->
 * c (B, g, ih, iw); *att_out (B, L, ih, iw), a detached view of the attention. */
static Tensor *attention_forward(Tape *tp, Conv2dLayer *conv_context, Tensor *h, Tensor *words, const uint8_t *mask,
                                 int correct, Tensor **att_out) {
    int B = h->shape[0], g = h->shape[1], ih = h->shape[2], iw = h->shape[3], qL = ih * iw;
    int E = words->shape[1], L = words->shape[2];
    Tensor *s = OP_RESHAPE(tp, words, B, E, L, 1);
    s = conv2d_layer_forward(tp, conv_context, s);           /* (B, g, L, 1) */
    s = OP_RESHAPE(tp, s, B, g, L);                          /* sourceT (B, g, L) */
    Tensor *hq = OP_RESHAPE(tp, h, B, g, qL);                /* (B, g, qL) */
    Tensor *a = op_bmm(tp, hq, s, 1, 0);                     /* (B, qL, L) */
    const uint8_t *m = mask ? attention_mask(tp, mask, B, qL, L, correct) : NULL;
    a = op_softmax(tp, a, m);                                /* softmax over L */
    Tensor *at = op_transpose(tp, a, 1, 2);                  /* (B, L, qL) */
    Tensor *c = op_bmm(tp, s, at, 0, 0);                     /* (B, g, qL) */
    Tensor *view = tape_detach(tp, at);
    tensor_set_shape(view, 4, (int[]){B, L, ih, iw});
    *att_out = view;
    return OP_RESHAPE(tp, c, B, g, ih, iw);
}

/* h (B, g, H, W) -> (B, g, 2H, 2W); *att (B, L, H, W) */
static Tensor *next_stage_forward(Tape *tp, NextStage *s, Tensor *h, Tensor *words, const uint8_t *mask, int correct,
                                  int train, Tensor **att) {
    int m = tape_mark(tp);
    Tensor *c = attention_forward(tp, &s->conv_context, h, words, mask, correct, att);
    Tensor *hc = tape_release1(tp, m, op_concat(tp, 2, (Tensor *[]){h, c}, 1)); /* (B, 2g, H, W) */
    for (int r = 0; r < s->r_num; r++) hc = tape_release1(tp, m, res_block_forward(tp, &s->res[r], hc, train));
    return tape_release1(tp, m, up_block_forward(tp, &s->up, hc, train));
}

/* h (B, g, S, S) -> (B, 3, S, S) in [-1, 1] */
static Tensor *img_head_forward(Tape *tp, Conv2dLayer *c, Tensor *h) {
    return op_tanh(tp, conv2d_layer_forward(tp, c, h));
}

/* CA_NET: sent (B, E) -> c_code (B, C); *mu, *logvar (B, C). eps (B, C) is a constant. */
static Tensor *ca_net_forward(Tape *tp, CaNet *ca, Tensor *sent, Tensor *eps, Tensor **mu, Tensor **logvar) {
    int C = ca->c_dim;
    Tensor *x = linear_layer_forward(tp, &ca->fc, sent);    /* (B, 4C) */
    x = op_glu(tp, x, 1);                                    /* (B, 2C) */
    *mu = op_slice(tp, x, 1, 0, C);
    *logvar = op_slice(tp, x, 1, C, 2 * C);
    Tensor *std = op_exp(tp, op_scale(tp, *logvar, 0.5f)); /* logvar.mul(0.5).exp_() */
    return op_add(tp, op_mul(tp, eps, std), *mu);            /* eps.mul(std).add_(mu) */
}

Tensor *gnet_kl_loss(Tape *tp, Tensor *mu, Tensor *logvar) {
    char s1[96], s2[96];
    CHECK(mu && logvar && tensor_same_shape(mu, logvar), "gnet_kl_loss: mu %s and logvar %s",
          mu ? tensor_shape_str(mu, s1, sizeof s1) : "NULL", logvar ? tensor_shape_str(logvar, s2, sizeof s2) : "NULL");
    /* KLD_element = mu.pow(2).add_(logvar.exp()).mul_(-1).add_(1).add_(logvar) */
    Tensor *e = op_add(tp, op_mul(tp, mu, mu), op_exp(tp, logvar));
    e = op_add(tp, op_add_scalar(tp, op_scale(tp, e, -1.0f), 1.0f), logvar);
    return op_scale(tp, op_mean_all(tp, e), -0.5f); /* torch.mean(KLD_element).mul_(-0.5) */
}

/* A constant (B, n) on the tape: a copy of src (shape checked), or standard normal from rng. */
static Tensor *noise_input(Tape *tp, const Tensor *src, Rng *rng, int B, int n, const char *what) {
    char s1[96];
    Tensor *t = TNEW(tp, B, n);
    if (src) {
        CHECK(src->ndim == 2 && src->shape[0] == B && src->shape[1] == n, "gnet_forward_noise: %s %s, expected (%d, %d)",
              what, tensor_shape_str(src, s1, sizeof s1), B, n);
        tensor_copy(t, src);
    } else {
        CHECK(rng, "gnet_forward_noise: CA_NET is on and %s is NULL: it needs an Rng (gnet_forward is only for the "
                   "seed's model; call gnet_forward_noise with z, eps or an Rng)", what);
        tensor_fill_normal(t, rng, 0.0f, 1.0f);
    }
    return t;
}

static void check_inputs(const GNet *g, const Tensor *sent, const Tensor *words) {
    char s1[96], s2[96];
    int in = g->cfg.ca_net ? g->cfg.embedding_dim : g->cfg.condition_dim;
    CHECK(sent->ndim == 2 && sent->shape[1] == in, "gnet_forward: sent_emb %s, expected (B, %d)",
          tensor_shape_str(sent, s1, sizeof s1), in);
    if (g->branch > 1)
        CHECK(words && words->ndim == 3 && words->shape[0] == sent->shape[0] &&
                  words->shape[1] == g->cfg.embedding_dim && words->shape[2] >= 1,
              "gnet_forward: words_emb %s, expected (%d, %d, L) for sent_emb %s",
              words ? tensor_shape_str(words, s2, sizeof s2) : "NULL", sent->shape[0], g->cfg.embedding_dim,
              tensor_shape_str(sent, s1, sizeof s1));
}

GNetOut gnet_forward_noise(Tape *tp, GNet *g, Tensor *sent_emb, Tensor *words_emb, const uint8_t *mask,
                           const Tensor *z, const Tensor *eps, Rng *rng) {
    check_inputs(g, sent_emb, words_emb);
    GNetImpl *m = g->impl;
    int dcgan = g->cfg.g_variant == G_VARIANT_DCGAN, correct = g->cfg.correct_mask;
    GNetOut out = {0};
    Tensor *code = sent_emb;
    if (g->cfg.ca_net) {
        int B = sent_emb->shape[0];
        Tensor *zc = noise_input(tp, z, rng, B, g->cfg.z_dim, "z");
        Tensor *ec = noise_input(tp, eps, rng, B, m->ca.c_dim, "eps");
        Tensor *c_code = ca_net_forward(tp, &m->ca, sent_emb, ec, &out.mu, &out.logvar);
        code = op_concat(tp, 2, (Tensor *[]){c_code, zc}, 1); /* torch.cat((c_code, z_code), 1) */
    }
    int mark = tape_mark(tp);
    Tensor *h = init_stage_forward(tp, &m->s1, code, g->train);
    if (!dcgan) out.imgs[out.n_imgs++] = img_head_forward(tp, &m->img[0], h);
    for (int k = 2; k <= g->branch; k++) {
        /* the last stage's h dies here (unless a node saved it); the images and the code live */
        Tensor *live[3 + 4] = {h, code, out.mu, out.logvar};
        for (int i = 0; i < out.n_imgs; i++) live[4 + i] = out.imgs[i];
        h = next_stage_forward(tp, &m->next[k - 2], h, words_emb, mask, correct, g->train, &out.att[out.n_att++]);
        live[0] = h;
        tape_release(tp, mark, 4 + out.n_imgs, live);
        if (!dcgan) out.imgs[out.n_imgs++] = img_head_forward(tp, &m->img[k - 1], h);
    }
    if (dcgan) out.imgs[out.n_imgs++] = img_head_forward(tp, &m->img[0], h);
    return out;
}

GNetOut gnet_forward(Tape *tp, GNet *g, Tensor *sent_emb, Tensor *words_emb, const uint8_t *mask) {
    CHECK(!g->cfg.ca_net, "gnet_forward: CA_NET is on (cfg.ca_net): use gnet_forward_noise with z/eps or an Rng");
    return gnet_forward_noise(tp, g, sent_emb, words_emb, mask, NULL, NULL, NULL);
}
