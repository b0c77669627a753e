/* gan_step.h: one AttnGAN + ZSL training iteration (the seed's trainer.py), as the training
 * program and `attngan parity` run it.
 *
 *  1. words, sent = TE(captions, z) with the text encoder frozen and in eval mode;
 *     mask = captions == 0 over the first L = max(cap_lens) columns.
 *  2. fakes, atts = G(sent, words, mask) (train mode); with cfg.ca_net (AttnGAN's CA_NET + noise)
 *     G draws z, then eps, from the step's Rng and also returns mu, logvar.
 *  3. per D_i: errD_i = discriminator_loss(D_i, real_i, fake_i (constant), sent); backward; Adam.
 *  4. errG_total = ((g_0 + g_1) + g_2) + (w_loss + s_loss + (adv + cls) * LAMBDA_ZSL) where
 *     g_i = BCE(COND(D_i(fake_i), sent), 1) + BCE(UNCOND(D_i(fake_i)), 1) with the updated D_i,
 *     w/s_loss = LAMBDA * DAMSM losses of IE(fake_last) (frozen, eval) against the text,
 *     adv = BCEL(ZSL_D(code), r), cls = CE(ZSL_D_cls(code), class - 1) (ZSL D frozen, eval).
 *     The D weights get no gradient here (the seed computes and discards them); their BN
 *     running statistics are updated as in the seed.
 *     With cfg.ca_net: errG_total += KL_loss(mu, logvar) (weight 1, added last, as AttnGAN's
 *     trainer does); without it the KL term is absent and the sum is the seed's.
 *  5. backward, Adam on G, then EMA of G's weights.
 * With cfg.diffaug (EXTRA.DIFFAUGMENT, not the seed's), every image a D_i sees in 3. and 4. goes
 * through DiffAugment first, with fresh draws for the real batch, the generated batch and G's
 * loss (drawn from the step's Rng after G's noise); the DAMSM and ZSL terms see G's images as
 * they are.
 * Each stage is a function so that parity can feed each one with the reference's upstream
 * tensors; gan_step() runs them all. */
#ifndef ATTNGAN_GAN_STEP_H
#define ATTNGAN_GAN_STEP_H

#include "../nn/damsm.h"
#include "../ops/diffaug.h"
#include "../nn/discriminator.h"
#include "../nn/generator.h"
#include "../nn/image_encoder.h"
#include "../nn/text_encoder.h"
#include "../nn/zsl.h"
#include "optim.h"

typedef struct GanTrainer {
    ModelConfig cfg;
    TextEncoder *te;
    ImageEncoder *ie;
    ZslD *zd;
    GNet *g;
    DNet *d[3];
    int n_d;                      /* = G's number of images */
    Adam opt_g, opt_d[3];
    ParamSet ema_g;               /* EMA copy of G (weights averaged; buffers copied at init) */
    Tape tp_g;                    /* text encoder, G forward and the G loss (kept until the next step) */
    Tape tp_d[3];                 /* the D steps */
    Tensor *mu, *logvar;          /* CA_NET outputs of the last gan_generate (on tp_g), used by
                                     gan_g_loss's KL term; NULL without ca_net. A caller running
                                     gan_g_loss on another tape sets them to tensors of that tape. */
    const DiffAugSample *aug[3][3]; /* DiffAugment (cfg.diffaug): per D_i the draws for its real
                                     images, its generated images and G's loss through it, set by
                                     gan_step (on tp_g) for the step; NULL: not augmented */
    int keep_grads;               /* 0 (default): gan_step releases G's and the Ds' gradients after
                                     their updates (paramset_release_grads); 1: they stay readable */
    struct ZslGan *zsl_phase;     /* ZSL.GAN_PHASE: ZSL G and ZSL D's training (zsl_gan.h; not
                                     owned, moved with the trainer), or NULL */
    /* EXTRA.GRAD_ACCUM (gan_trainer_set_lanes, lanes.h): each step runs stages 1-4 for every
     * micro-batch, lane after lane; lane j's stages 1, 2 and 4 use its own tape (lane 0's is tp_g)
     * and its own mu, logvar and DiffAugment draws, which gan_lane swaps in */
    struct Lanes *lanes;          /* not owned; NULL: one micro-batch */
    int lane;                     /* the current lane */
    Tape *lane_tp;                /* the tapes of lanes 1.. */
    struct GanLaneState *lane_state; /* each lane's mu, logvar and draws while another is current */
} GanTrainer;

typedef struct GanBatch {
    Tensor *imgs[3];              /* real images, (B, 3, 64*2^i, 64*2^i) */
    const int64_t *captions;      /* (B, WORDS_NUM) sorted by length, descending */
    const int *cap_lens;
    const int64_t *class_ids;     /* 1-based */
    int B;
} GanBatch;

typedef struct GanGLoss {
    Tensor *g_cond[3], *g_uncond[3], *g_loss[3];
    ImageEncoderOut img;
    DamsmLoss w, s;
    Tensor *w_loss, *s_loss;      /* x LAMBDA */
    Tensor *zsl_pred, *zsl_cls, *adv, *cls;
    Tensor *kl;                   /* KL_loss(mu, logvar) with cfg.ca_net, else NULL */
    Tensor *total;                /* errG_total */
} GanGLoss;

typedef struct GanStepOut {
    TextEncoderOut txt;
    uint8_t *mask;                /* (B, L) */
    GNetOut gen;
    DLossOut d[3];                /* on tp_d[i]: valid until D_i's next backward (another lane's) */
    float d_loss[3];              /* errD_i, kept when the tapes move on */
    GanGLoss g;
} GanStepOut;

/* Takes the networks (not owned); freezes TE, IE, ZSL D (eval), sets G and the Ds to train,
 * creates the optimizers and the EMA copy of G. */
void gan_trainer_init(GanTrainer *t, TextEncoder *te, ImageEncoder *ie, ZslD *zd, GNet *g, DNet *const *d,
                      const ModelConfig *cfg);
void gan_trainer_free(GanTrainer *t);
/* Moves every network, optimizer state, the EMA and the tapes to device dev (DeviceKind, the CPU
 * included): a trainer is built, loaded and resumed on the CPU, moved to its device for the steps,
 * and moved back for a checkpoint. The tapes are reset. The batch's images must be on dev. */
void gan_trainer_to_device(GanTrainer *t, int dev);

/* Stage 1 (on tp_g, reset first): frozen text encoder; z NULL draws from rng. Fills txt, mask. */
void gan_text(GanTrainer *t, const GanBatch *b, const Tensor *z, Rng *rng, GanStepOut *o);
/* (B, L) padding mask of captions (1 = padding), on the tape. */
uint8_t *gan_word_mask(Tape *tp, const int64_t *captions, int B, int T, int L);
/* Stage 2 (on tp_g): G forward; sets t->mu / t->logvar. rng: G's noise with cfg.ca_net (z, then
 * eps; a CHECK fails when it is NULL there); unused (may be NULL) for the seed's model. */
void gan_generate(GanTrainer *t, Tensor *sent_emb, Tensor *words_emb, const uint8_t *mask, Rng *rng, GanStepOut *o);
/* Stage 3 (on tp_d[i], reset first): D_i's loss and backward into D_i's zeroed gradients; no step. */
void gan_d_backward(GanTrainer *t, int i, Tensor *real, Tensor *fake, Tensor *sent_emb, DLossOut *out);
void gan_d_update(GanTrainer *t, int i);
/* Stage 4 (on tp): the G loss from the fakes (any tensors: G's outputs, or leaves); with
 * cfg.ca_net also the KL term of t->mu / t->logvar (which must live on tp). */
void gan_g_loss(GanTrainer *t, Tape *tp, Tensor *const *fakes, Tensor *words_emb, Tensor *sent_emb, const GanBatch *b,
                GanGLoss *out);
/* Stage 5: Adam on G, then the EMA. */
void gan_g_update(GanTrainer *t);

/* The whole iteration. rng: the text encoder's noise when z is NULL, and G's with cfg.ca_net. */
void gan_step(GanTrainer *t, const GanBatch *b, const Tensor *z, Rng *rng, GanStepOut *o);

/* Gradient accumulation (EXTRA.GRAD_ACCUM, lanes.h): L (not owned) holds n lanes and knows G, the
 * Ds (and, with ZSL.GAN_PHASE, the text encoder and ZSL D): the trainer gets a tape per lane. */
void gan_trainer_set_lanes(GanTrainer *t, struct Lanes *L);
/* Makes lane j current (its tape, mu, logvar, draws and batch norm buffers). */
void gan_lane(GanTrainer *t, int j);
/* The tape of the current lane's stages 1, 2 and 4 (tp_g for lane 0). */
Tape *gan_lane_tape(GanTrainer *t);
/* One iteration over the lanes' micro-batches b[0..n), each with its own stream rng[j] and output
 * o[j]: stages 1-2 lane after lane; per D_i its backward for every lane, the lanes' mean gradient,
 * Adam; G's loss and backward for every lane, the mean, Adam and the EMA. With one lane (no
 * lanes set) it is gan_step(t, b, NULL, rng, o). Ends with lane 0 current. */
void gan_step_lanes(GanTrainer *t, const GanBatch *b, Rng *rng, GanStepOut *o);

#endif
