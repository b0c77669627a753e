/* discriminator.h: D_NET64 / D_NET128 / D_NET256 of the seed (b_jcu: conditional and
 * unconditional heads), and the discriminator loss.
 *  img_code_s16: conv4x4 s2 p1 (3 -> ndf, no BN) + LReLU(0.2), then 3 x [conv4x4 s2 p1, BN, LReLU]
 *  128: img_code_s32 (down_block 8ndf -> 16ndf), img_code_s32_1 (block3x3_lrelu 16ndf -> 8ndf)
 *  256: img_code_s32, img_code_s64 (16 -> 32ndf), img_code_s64_1 (32 -> 16), img_code_s64_2 (16 -> 8)
 *  UNCOND_DNET: outlogits.0 conv4x4 s4 (8ndf -> 1, bias) + sigmoid
 *  COND_DNET: jointConv = block3x3_lrelu(8ndf + E -> 8ndf) on cat(h, c repeated 4x4), then outlogits. */
#ifndef ATTNGAN_DISCRIMINATOR_H
#define ATTNGAN_DISCRIMINATOR_H

#include "config.h"
#include "layers.h"

typedef struct DNetImpl DNetImpl; /* layers, defined in discriminator.c */

typedef struct DNet {
    ModelConfig cfg;
    ParamSet ps;                 /* name "netD<i>" */
    int size;                    /* 64, 128 or 256 */
    DNetImpl *impl;
    int train;
} DNet;

void dnet_init(DNet *d, const ModelConfig *cfg, int size, const char *name);
void dnet_free(DNet *d);
/* x (B, 3, size, size) -> image code (B, 8ndf, 4, 4) */
Tensor *dnet_forward(Tape *tp, DNet *d, Tensor *x);
/* (B,) sigmoid probabilities */
Tensor *dnet_cond(Tape *tp, DNet *d, Tensor *h, Tensor *cond /*(B, E)*/);
Tensor *dnet_uncond(Tape *tp, DNet *d, Tensor *h);

typedef struct DLossOut {
    Tensor *loss;                                   /* 0-d errD */
    Tensor *cond_real, *cond_fake, *cond_wrong;     /* (B), (B), (B-1) */
    Tensor *uncond_real, *uncond_fake;              /* (B) */
} DLossOut;
/* The seed's discriminator_loss: real_f = D(real), fake_f = D(fake) (fake is used as a
 * constant: detach it first), cond = sent_emb (B, E);
 * errD = (BCE(ur,1) + BCE(cr,1))/2 + (BCE(uf,0) + BCE(cf,0) + BCE(cw,0))/3,
 * cw = COND(real_f[:B-1], cond[1:]). Calls in the seed's order (BN running stats). */
DLossOut discriminator_loss(Tape *tp, DNet *d, Tensor *real, Tensor *fake, Tensor *cond);

#endif
