/* zsl.h: the GAZSL networks of the seed (zsl/models.py) on sentence embeddings:
 *  ZSL G: sent (E) + z (Z) -> Linear(E, RDC) on sent, cat(z, .) -> Linear(Z+RDC, H) ->
 *         LeakyReLU(0.01) -> Linear(H, E) -> Tanh. Keys <prefix>rdc_text.*, main.0.*, main.2.*.
 *  ZSL D: x (E) -> Linear(E, H) -> ReLU -> D_gan Linear(H, 1) and D_aux Linear(H, K).
 *         Keys D_shared.0.*, D_gan.*, D_aux.* (its own network "zsl_d"). */
#ifndef ATTNGAN_ZSL_H
#define ATTNGAN_ZSL_H

#include "config.h"
#include "layers.h"

typedef struct ZslG {
    LinearLayer rdc_text, main0, main2;
    int z_dim;
} ZslG;

/* Registers the ZSL G inside another net's ParamSet under prefix (e.g. "zsl_g"). */
void zsl_g_init(ZslG *g, ParamSet *ps, const char *prefix, const ModelConfig *cfg);
/* c (B, E), z (B, Z) -> (B, E) */
Tensor *zsl_g_forward(Tape *tp, const ZslG *g, Tensor *c, Tensor *z);

typedef struct ZslD {
    ModelConfig cfg;
    ParamSet ps;                  /* name "zsl_d" */
    LinearLayer shared0, gan, aux;
} ZslD;

void zsl_d_init(ZslD *d, const ModelConfig *cfg);
void zsl_d_free(ZslD *d);
/* x (B, E) -> *pred (B, 1) adversarial logit, *cls (B, K) class logits */
void zsl_d_forward(Tape *tp, ZslD *d, Tensor *x, Tensor **pred, Tensor **cls);

#endif
