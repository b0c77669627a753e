/* generator.h: G_NET of the seed (src/model.py) for 1, 2 or 3 stages, and the G_DCGAN variant.
 *  ca_net (only with cfg.ca_net, AttnGAN's CA_NET, registered first): fc = Linear(E, 4C, bias)
 *         + GLU -> (B, 2C); mu = [:, :C], logvar = [:, C:]; c_code = eps * exp(0.5 logvar) + mu,
 *         eps ~ N(0, 1) (B, C). h_net1 then takes cat(c_code, z) (B, C + Z_DIM), z ~ N(0, 1).
 *  h_net1 INIT_STAGE_G: fc = Linear(E, 16g*4*4*2, no bias) + BatchNorm1d + GLU -> (B, 16g, 4, 4),
 *         then upsample1..4 = [nearest x2, conv3x3 (-> 2 cout, no bias), BN, GLU] -> (B, g, 64, 64).
 *         The seed's INIT_STAGE_G takes only the sentence code (no noise, no CA_NET); with
 *         cfg.ca_net its input is cat(c_code, z) and fc is Linear(C + Z_DIM, ...) (AttnGAN).
 *  h_net2/3 NEXT_STAGE_G: att (GlobalAttentionGeneral: conv_context 1x1 E -> g on the words,
 *         softmax over words with the padding mask), residual = R_NUM ResBlocks on cat(h, c)
 *         (2g channels), upsample = up_block(2g -> g).
 *  img_net{k}: conv3x3(g -> 3, no bias) + Tanh.
 * G_DCGAN: the same stages with one image head `img_net` after the last stage.
 * Mask: the seed applies mask.repeat(queryL, 1), i.e. mask[row % B] to row b*qL+q (another
 * sample's padding when B > 1); cfg.correct_mask applies mask[b]. */
#ifndef ATTNGAN_GENERATOR_H
#define ATTNGAN_GENERATOR_H

#include "config.h"
#include "layers.h"

typedef struct GNetImpl GNetImpl; /* layers, defined in generator.c */

typedef struct GNet {
    ModelConfig cfg;
    ParamSet ps;                 /* name "netG" */
    int branch;                  /* stages, 1..3 */
    GNetImpl *impl;
    int train;                   /* BN batch statistics + running-stat updates */
} GNet;

typedef struct GNetOut {
    int n_imgs, n_att;
    Tensor *imgs[3];             /* (B, 3, 64*2^i, 64*2^i); G_DCGAN: one image, the last stage's */
    Tensor *att[2];              /* (B, L, 64*2^k, 64*2^k): word attention of stage k+2 */
    Tensor *mu, *logvar;         /* (B, C) of CA_NET; NULL for the seed's model (ca_net == 0) */
} GNetOut;

void gnet_init(GNet *g, const ModelConfig *cfg, int branch);
void gnet_free(GNet *g);
/* sent_emb (B, E) (the seed's model: (B, CONDITION_DIM), equal to E in its configs), words_emb
 * (B, E, L), mask (B*L bytes, 1 = padding word). With cfg.ca_net: z (B, Z_DIM) and eps
 * (B, CONDITION_DIM) are copied as constants (no gradient), or drawn standard normal from rng
 * when NULL, z before eps (AttnGAN draws the noise before netG runs CA_NET). Without ca_net, z,
 * eps and rng are ignored (nothing is drawn) and the result is that of the seed's G. */
GNetOut gnet_forward_noise(Tape *tp, GNet *g, Tensor *sent_emb, Tensor *words_emb, const uint8_t *mask,
                           const Tensor *z, const Tensor *eps, Rng *rng);
/* gnet_forward_noise with z = eps = rng = NULL: only for the seed's model (a CHECK fails when
 * cfg.ca_net is on, which needs noise). */
GNetOut gnet_forward(Tape *tp, GNet *g, Tensor *sent_emb, Tensor *words_emb, const uint8_t *mask);
/* AttnGAN's KL_loss (miscc/losses.py): -0.5 * mean(1 + logvar - mu^2 - exp(logvar)) over all
 * B*C elements, computed in its order (((-(mu^2 + exp(logvar))) + 1) + logvar). 0-d. */
Tensor *gnet_kl_loss(Tape *tp, Tensor *mu, Tensor *logvar);

#endif
