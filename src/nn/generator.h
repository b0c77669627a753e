/* generator.h: G_NET of the seed (src/model.py) for 1, 2 or 3 stages, and the G_DCGAN variant.
 *  h_net1 INIT_STAGE_G: fc = Linear(E, 16g*4*4*2, no bias) + BatchNorm1d + GLU -> (B, 16g, 4, 4),
 *         then upsample1..4 = [nearest x2, conv3x3 (-> 2 cout, no bias), BN, GLU] -> (B, g, 64, 64).
 *         The seed's INIT_STAGE_G takes only the sentence code (no noise, no CA_NET).
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
} GNetOut;

void gnet_init(GNet *g, const ModelConfig *cfg, int branch);
void gnet_free(GNet *g);
/* sent_emb (B, E), words_emb (B, E, L), mask (B*L bytes, 1 = padding word) */
GNetOut gnet_forward(Tape *tp, GNet *g, Tensor *sent_emb, Tensor *words_emb, const uint8_t *mask);

#endif
