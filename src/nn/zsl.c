/* zsl.c: the GAZSL generator (inside the text encoder) and discriminator of the seed
 * (zsl/models.py, the reference's ZSLG/ZSLD); see zsl.h. */
#include "zsl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZSL_G_SLOPE 0.01f /* nn.LeakyReLU() default */

void zsl_g_init(ZslG *g, ParamSet *ps, const char *prefix, const ModelConfig *cfg) {
    CHECK(cfg->embedding_dim > 0 && cfg->zsl_rdc > 0 && cfg->zsl_z > 0 && cfg->zsl_h > 0,
          "zsl_g_init: sizes E=%d RDC=%d Z=%d H=%d must be positive", cfg->embedding_dim, cfg->zsl_rdc, cfg->zsl_z,
          cfg->zsl_h);
    char n[NAME_MAX_LEN];
    /* module registration order = state_dict order: rdc_text, then main.0, main.2 */
    linear_layer_init(&g->rdc_text, ps, pname(n, "%s.rdc_text", prefix), cfg->embedding_dim, cfg->zsl_rdc, 1);
    linear_layer_init(&g->main0, ps, pname(n, "%s.main.0", prefix), cfg->zsl_z + cfg->zsl_rdc, cfg->zsl_h, 1);
    linear_layer_init(&g->main2, ps, pname(n, "%s.main.2", prefix), cfg->zsl_h, cfg->embedding_dim, 1);
    g->z_dim = cfg->zsl_z;
}

Tensor *zsl_g_forward(Tape *tp, const ZslG *g, Tensor *c, Tensor *z) {
    char s1[64], s2[64];
    CHECK(c && z && c->ndim == 2 && z->ndim == 2 && c->shape[0] == z->shape[0] && z->shape[1] == g->z_dim,
          "zsl_g: c %s and z %s must be (B, E) and (B, %d)", c ? tensor_shape_str(c, s1, sizeof s1) : "NULL",
          z ? tensor_shape_str(z, s2, sizeof s2) : "NULL", g->z_dim);
    Tensor *rdc = linear_layer_forward(tp, &g->rdc_text, c);           /* (B, RDC) */
    Tensor *zc = op_concat(tp, 2, (Tensor *[]){z, rdc}, 1);            /* (B, Z + RDC) */
    Tensor *h = op_leaky_relu(tp, linear_layer_forward(tp, &g->main0, zc), ZSL_G_SLOPE); /* (B, H) */
    return op_tanh(tp, linear_layer_forward(tp, &g->main2, h));        /* (B, E) */
}

void zsl_d_init(ZslD *d, const ModelConfig *cfg) { zsl_d_init_named(d, cfg, "zsl_d"); }

void zsl_d_init_named(ZslD *d, const ModelConfig *cfg, const char *name) {
    CHECK(cfg->embedding_dim > 0 && cfg->zsl_h > 0 && cfg->num_classes > 0,
          "zsl_d_init: sizes E=%d H=%d K=%d must be positive", cfg->embedding_dim, cfg->zsl_h, cfg->num_classes);
    d->cfg = *cfg;
    paramset_init(&d->ps, name);
    linear_layer_init(&d->shared0, &d->ps, "D_shared.0", cfg->embedding_dim, cfg->zsl_h, 1);
    linear_layer_init(&d->gan, &d->ps, "D_gan", cfg->zsl_h, 1, 1);
    linear_layer_init(&d->aux, &d->ps, "D_aux", cfg->zsl_h, cfg->num_classes, 1);
    paramset_finalize(&d->ps);
}

void zsl_d_free(ZslD *d) { paramset_free(&d->ps); }

void zsl_d_forward(Tape *tp, ZslD *d, Tensor *x, Tensor **pred, Tensor **cls) {
    char s1[64];
    CHECK(x && x->ndim == 2 && x->shape[1] == d->cfg.embedding_dim, "zsl_d: x %s must be (B, %d)",
          x ? tensor_shape_str(x, s1, sizeof s1) : "NULL", d->cfg.embedding_dim);
    CHECK(pred && cls, "zsl_d: pred and cls must not be NULL");
    Tensor *h = op_relu(tp, linear_layer_forward(tp, &d->shared0, x)); /* (B, H) */
    *pred = linear_layer_forward(tp, &d->gan, h);                      /* (B, 1) */
    *cls = linear_layer_forward(tp, &d->aux, h);                       /* (B, K) */
}

/* ---------------------------------------------------------------- the ZSL pair's losses */
static Tensor *label_tensor(Tape *tp, int B, float v) {
    Tensor *y = TNEW(tp, B, 1);
    tensor_fill(y, v);
    return y;
}

static Tensor *neg_mean(Tape *tp, Tensor *x) { return op_scale(tp, op_mean_all(tp, x), -1.0f); }

static Tensor *sum4(Tape *tp, Tensor *const t[4]) { return op_add(tp, op_add(tp, op_add(tp, t[0], t[1]), t[2]), t[3]); }

static void pair_forward(Tape *tp, ZslD *d, Tensor *real, const int64_t *y_real, Tensor *fake, const int64_t *y_fake,
                         ZslTerms *o) {
    char s1[64], s2[64];
    CHECK(real && fake && real->ndim == 2 && fake->ndim == 2 && real->shape[1] == fake->shape[1],
          "zsl pair loss: real %s and fake %s must be (N, E) and (M, E)", real ? tensor_shape_str(real, s1, sizeof s1) : "NULL",
          fake ? tensor_shape_str(fake, s2, sizeof s2) : "NULL");
    zsl_d_forward(tp, d, real, &o->pred_img, &o->cls_img);
    zsl_d_forward(tp, d, fake, &o->pred_text, &o->cls_text);
    o->terms[2] = op_cross_entropy(tp, o->cls_img, y_real);
    o->terms[3] = op_cross_entropy(tp, o->cls_text, y_fake);
    o->extra = NULL;
}

void zsl_pair_g_loss_sets(Tape *tp, ZslD *d, const ModelConfig *cfg, Tensor *real, const int64_t *y_real, const int64_t *ids_real,
                          Tensor *fake, const int64_t *y_fake, const int64_t *ids_fake, ZslTerms *o) {
    pair_forward(tp, d, real, y_real, fake, y_fake, o);
    if (cfg->zsl_wgan) {
        /* GAZSL's generator loss, -mean D(fake): the image codes are the critic's real side and
         * get no adversarial term (pushing both up has no bound: both codes ran away together) */
        o->terms[0] = op_scale(tp, op_mean_all(tp, o->pred_img), 0.0f);
        o->terms[1] = neg_mean(tp, o->pred_text);
    } else {
        float r = cfg->zsl_fix_labels ? 1.0f : 0.0f; /* both codes want the image ("real") label */
        o->terms[0] = op_bce_logits(tp, o->pred_img, label_tensor(tp, real->shape[0], r));
        o->terms[1] = op_bce_logits(tp, o->pred_text, label_tensor(tp, fake->shape[0], r));
    }
    o->loss = sum4(tp, o->terms);
    if (cfg->zsl_pivot_lambda > 0.0f) {
        CHECK(ids_real && ids_fake, "zsl_pair_g_loss: the visual pivot needs the class ids");
        o->extra = zsl_visual_pivot_sets(tp, fake, ids_fake, real, ids_real);
        o->loss = op_add(tp, o->loss, op_scale(tp, o->extra, cfg->zsl_pivot_lambda));
    }
}

void zsl_pair_g_loss(Tape *tp, ZslD *d, const ModelConfig *cfg, Tensor *code, Tensor *sent, const int64_t *y,
                     const int64_t *class_ids, ZslTerms *o) {
    char s1[64], s2[64];
    CHECK(code && sent && tensor_same_shape(code, sent), "zsl pair loss: code %s and sent %s must be one (B, E)",
          code ? tensor_shape_str(code, s1, sizeof s1) : "NULL", sent ? tensor_shape_str(sent, s2, sizeof s2) : "NULL");
    zsl_pair_g_loss_sets(tp, d, cfg, code, y, class_ids, sent, y, class_ids, o);
}

void zsl_pair_d_loss_sets(Tape *tp, ZslD *d, const ModelConfig *cfg, Tensor *real, const int64_t *y_real, Tensor *fake,
                          const int64_t *y_fake, Tensor *gp_real, Tensor *alpha, ZslTerms *o) {
    pair_forward(tp, d, real, y_real, fake, y_fake, o);
    if (cfg->zsl_wgan) {
        CHECK(alpha != NULL && gp_real != NULL, "zsl_pair_d_loss: ZSL.ADV_LOSS wgan_gp needs the penalty's pairs and alpha");
        o->terms[0] = neg_mean(tp, o->pred_img);
        o->terms[1] = op_mean_all(tp, o->pred_text);
        o->loss = sum4(tp, o->terms);
        o->extra = zsl_d_gradient_penalty(tp, d, gp_real, fake, alpha);
        o->loss = op_add(tp, o->loss, op_scale(tp, o->extra, cfg->zsl_gp_lambda));
    } else {
        float r = cfg->zsl_fix_labels ? 1.0f : 0.0f;
        o->terms[0] = op_bce_logits(tp, o->pred_img, label_tensor(tp, real->shape[0], r));
        o->terms[1] = op_bce_logits(tp, o->pred_text, label_tensor(tp, fake->shape[0], 1.0f - r));
        o->loss = sum4(tp, o->terms);
    }
}

void zsl_pair_d_loss(Tape *tp, ZslD *d, const ModelConfig *cfg, Tensor *code, Tensor *sent, const int64_t *y, Tensor *alpha,
                     ZslTerms *o) {
    char s1[64], s2[64];
    CHECK(code && sent && tensor_same_shape(code, sent), "zsl pair loss: code %s and sent %s must be one (B, E)",
          code ? tensor_shape_str(code, s1, sizeof s1) : "NULL", sent ? tensor_shape_str(sent, s2, sizeof s2) : "NULL");
    zsl_pair_d_loss_sets(tp, d, cfg, code, y, sent, y, code, alpha, o);
}

Tensor *zsl_gp_alpha(Tape *tp, const ModelConfig *cfg, Rng *rng, int n) {
    if (!cfg->zsl_wgan) return NULL;
    CHECK(rng != NULL, "ZSL.ADV_LOSS wgan_gp needs an Rng for the penalty's interpolates");
    float *a = xmalloc((size_t)n * sizeof(float));
    rng_uniform(rng, a, n);
    Tensor *alpha = TNEW(tp, n, 1);
    tensor_upload(alpha, a);
    free(a);
    return alpha;
}

Tensor *zsl_d_gradient_penalty(Tape *tp, ZslD *d, Tensor *real, Tensor *fake, Tensor *alpha) {
    char s1[64], s2[64], s3[64];
    CHECK(real && fake && alpha && tensor_same_shape(real, fake) && real->ndim == 2 && real->shape[1] == d->cfg.embedding_dim &&
              alpha->ndim == 2 && alpha->shape[0] == real->shape[0] && alpha->shape[1] == 1,
          "zsl_d_gradient_penalty: real %s, fake %s must be (B, %d) and alpha %s (B, 1)",
          real ? tensor_shape_str(real, s1, sizeof s1) : "NULL", fake ? tensor_shape_str(fake, s2, sizeof s2) : "NULL",
          d->cfg.embedding_dim, alpha ? tensor_shape_str(alpha, s3, sizeof s3) : "NULL");
    int B = real->shape[0], H = d->cfg.zsl_h;
    /* the interpolates and D's first layer there, as constants: PyTorch's interpolates are a leaf,
     * and the relu's gate is piecewise constant */
    tape_no_grad_begin(tp);
    Tensor *x = op_add(tp, op_mul(tp, alpha, real), op_mul(tp, op_add_scalar(tp, op_scale(tp, alpha, -1.0f), 1.0f), fake));
    Tensor *h = linear_layer_forward(tp, &d->shared0, x); /* (B, H) */
    tape_no_grad_end(tp);
    Tensor *wg = op_broadcast_to(tp, d->gan.weight, 2, (int[]){B, H});           /* (B, H) */
    Tensor *gated = op_relu_gate(tp, h, wg);                                        /* d D_gan / d h */
    Tensor *g = op_linear(tp, gated, op_transpose(tp, d->shared0.weight, 0, 1), NULL); /* (B, E) = d D_gan / dx */
    Tensor *dev = op_add_scalar(tp, op_l2norm(tp, g, 1, 0), -1.0f);                /* (B) */
    return op_mean_all(tp, op_mul(tp, dev, dev));
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* A (nc, n): row c averages the rows of `ids` equal to cls[c] */
static Tensor *class_mean_matrix(Tape *tp, const int64_t *ids, int n, const int64_t *cls, int nc) {
    float *a = xcalloc((size_t)nc * n, sizeof(float));
    for (int c = 0; c < nc; c++) {
        int cnt = 0;
        for (int i = 0; i < n; i++) cnt += ids[i] == cls[c];
        for (int i = 0; i < n; i++)
            if (ids[i] == cls[c]) a[(size_t)c * n + i] = 1.0f / (float)cnt;
    }
    Tensor *A = TNEW(tp, nc, n);
    tensor_upload(A, a);
    free(a);
    return A;
}

Tensor *zsl_visual_pivot_sets(Tape *tp, Tensor *fake, const int64_t *ids_fake, Tensor *real, const int64_t *ids_real) {
    char s1[64], s2[64];
    CHECK(fake && real && fake->ndim == 2 && real->ndim == 2 && fake->shape[1] == real->shape[1] && ids_fake && ids_real,
          "zsl_visual_pivot: fake %s and real %s must be (M, E) and (N, E), with class ids",
          fake ? tensor_shape_str(fake, s1, sizeof s1) : "NULL", real ? tensor_shape_str(real, s2, sizeof s2) : "NULL");
    int nf = fake->shape[0], nr = real->shape[0];
    /* the classes present in both sets, ascending */
    int64_t *cls = xmalloc((size_t)nf * sizeof(int64_t));
    memcpy(cls, ids_fake, (size_t)nf * sizeof(int64_t));
    qsort(cls, (size_t)nf, sizeof(int64_t), cmp_i64);
    int nc = 0;
    for (int i = 0; i < nf; i++) {
        if (i > 0 && cls[i] == cls[i - 1]) continue;
        int in_real = 0;
        for (int k = 0; k < nr && !in_real; k++) in_real = ids_real[k] == cls[i];
        if (in_real) cls[nc++] = cls[i];
    }
    CHECK(nc > 0, "zsl_visual_pivot: no class is present in both sets");
    Tensor *mf = op_linear(tp, class_mean_matrix(tp, ids_fake, nf, cls, nc), op_transpose(tp, fake, 0, 1), NULL);  /* (nc, E) */
    Tensor *mr = op_linear(tp, class_mean_matrix(tp, ids_real, nr, cls, nc), op_transpose(tp, tape_detach(tp, real), 0, 1), NULL);
    free(cls);
    return op_mean_all(tp, op_l2norm(tp, op_sub(tp, mf, mr), 1, 0));
}

Tensor *zsl_visual_pivot(Tape *tp, Tensor *fake, Tensor *real, const int64_t *class_ids, int B) {
    char s1[64], s2[64];
    CHECK(fake && real && tensor_same_shape(fake, real) && fake->ndim == 2 && fake->shape[0] == B && class_ids,
          "zsl_visual_pivot: fake %s and real %s must be one (%d, E), with class ids",
          fake ? tensor_shape_str(fake, s1, sizeof s1) : "NULL", real ? tensor_shape_str(real, s2, sizeof s2) : "NULL", B);
    return zsl_visual_pivot_sets(tp, fake, class_ids, real, class_ids);
}
