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
/* The same network under another ParamSet name (the word-level ZSL D: "zsl_dw"). */
void zsl_d_init_named(ZslD *d, const ModelConfig *cfg, const char *name);
void zsl_d_free(ZslD *d);
/* x (B, E) -> *pred (B, 1) adversarial logit, *cls (B, K) class logits */
void zsl_d_forward(Tape *tp, ZslD *d, Tensor *x, Tensor **pred, Tensor **cls);

/* ---- The ZSL pair's losses (docs/ZSL_VARIANTS.md). "Real" are image codes `code` (B, E), "fake"
 * the text codes `sent` (B, E); y (B) the 0-based class targets of the class head.
 *
 * ZSL.ADV_LOSS 'bce' (the seed), with r the "real" label (0 in the seed, 1 with ZSL_FIX_LABELS):
 *   G side: terms = BCEL(D(code), r), BCEL(D(sent), r), CE(Dcls(code), y), CE(Dcls(sent), y)
 *   D side: terms = BCEL(D(code), r), BCEL(D(sent), 1 - r), CE(.., y), CE(.., y)
 * 'wgan_gp' (GAZSL's train_CUB.py; D_gan is a Wasserstein critic, high for image codes):
 *   G side: terms = 0, -mean D(sent), CE(Dcls(code), y), CE(Dcls(sent), y): GAZSL's generator
 *           loss; the image codes are the critic's real side and get no adversarial term (the
 *           first version pushed both, as the seed's BCE does, and with an unbounded critic both
 *           codes ran away together: the encoders' loss reached -1,690 in 300 steps)
 *   D side: terms = -mean D(code), +mean D(sent), CE(.., y), CE(.., y), plus GP_LAMBDA * the
 *           gradient penalty at alpha * code + (1 - alpha) * sent.
 * loss = ((terms[0] + terms[1]) + terms[2]) + terms[3] (+ extra), where extra is, on the G side,
 * PIVOT_LAMBDA * the visual pivot (when PIVOT_LAMBDA > 0, in either mode) and on the D side the
 * weighted gradient penalty (wgan_gp). */
typedef struct ZslTerms {
    Tensor *pred_img, *cls_img, *pred_text, *cls_text; /* D on code, D on sent */
    Tensor *terms[4];
    Tensor *extra;                                     /* pivot (G side) or GP (D side), unweighted; or NULL */
    Tensor *loss;
} ZslTerms;
/* The G side; class_ids (B) 1-based, for the pivot's classes. */
void zsl_pair_g_loss(Tape *tp, ZslD *d, const ModelConfig *cfg, Tensor *code, Tensor *sent, const int64_t *y,
                     const int64_t *class_ids, ZslTerms *o);
/* The D side; alpha (B, 1) in [0, 1] for the gradient penalty (wgan_gp; NULL otherwise). code and
 * sent are used as given: detach them first for a D-only update. */
void zsl_pair_d_loss(Tape *tp, ZslD *d, const ModelConfig *cfg, Tensor *code, Tensor *sent, const int64_t *y, Tensor *alpha,
                     ZslTerms *o);
/* The same with sets of their own sizes: real (N, E) with y_real (N) and class ids ids_real (N),
 * fake (M, E) with y_fake, ids_fake (the word-level pair, ZSL.WORD_LEVEL: region features and word
 * codes). The penalty interpolates fake with gp_real (M, E), real rows paired with fake's. */
void zsl_pair_g_loss_sets(Tape *tp, ZslD *d, const ModelConfig *cfg, Tensor *real, const int64_t *y_real, const int64_t *ids_real,
                          Tensor *fake, const int64_t *y_fake, const int64_t *ids_fake, ZslTerms *o);
void zsl_pair_d_loss_sets(Tape *tp, ZslD *d, const ModelConfig *cfg, Tensor *real, const int64_t *y_real, Tensor *fake,
                          const int64_t *y_fake, Tensor *gp_real, Tensor *alpha, ZslTerms *o);
/* The penalty's interpolation weights: with ZSL.ADV_LOSS wgan_gp, (n, 1) of U[0, 1) drawn from rng
 * (GAZSL's alpha, one per pair); NULL otherwise (nothing drawn). */
Tensor *zsl_gp_alpha(Tape *tp, const ModelConfig *cfg, Rng *rng, int n);
/* WGAN-GP's gradient penalty of the critic head D_gan (GAZSL's calc_gradient_penalty): with
 * x = alpha * real + (1 - alpha) * fake (computed without a graph; alpha (B, 1)), the mean over the
 * batch of (||d D_gan(x) / dx||_2 - 1)^2, unweighted. d D_gan / dx = W0^T (w_gan * [W0 x + b0 > 0])
 * is built from ops (op_relu_gate), so the penalty is differentiable in D_shared.0.weight and
 * D_gan.weight as PyTorch's double backward makes it (the biases' gradients are 0). */
Tensor *zsl_d_gradient_penalty(Tape *tp, ZslD *d, Tensor *real, Tensor *fake, Tensor *alpha);
/* GAZSL's visual pivot regulariser: the mean, over the classes present in the batch (ascending
 * class id), of ||mean of fake over the class - mean of real over the class||_2; real is a target
 * (detached). GAZSL divides the sum by all training classes with batches of 1,000; our batches
 * hold a few dozen of 150 classes, so the mean is over those present. */
Tensor *zsl_visual_pivot(Tape *tp, Tensor *fake, Tensor *real, const int64_t *class_ids, int B);
/* The same over sets of their own sizes (fake (M, E), real (N, E)): the classes present in both. */
Tensor *zsl_visual_pivot_sets(Tape *tp, Tensor *fake, const int64_t *ids_fake, Tensor *real, const int64_t *ids_real);

#endif
