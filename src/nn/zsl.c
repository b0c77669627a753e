/* zsl.c: the GAZSL generator (inside the text encoder) and discriminator of the seed
 * (zsl/models.py, the reference's ZSLG/ZSLD); see zsl.h. */
#include "zsl.h"

#include <stdio.h>

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

void zsl_d_init(ZslD *d, const ModelConfig *cfg) {
    CHECK(cfg->embedding_dim > 0 && cfg->zsl_h > 0 && cfg->num_classes > 0,
          "zsl_d_init: sizes E=%d H=%d K=%d must be positive", cfg->embedding_dim, cfg->zsl_h, cfg->num_classes);
    d->cfg = *cfg;
    paramset_init(&d->ps, "zsl_d");
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
