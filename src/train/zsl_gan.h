/* zsl_gan.h: the seed's design 4, ZSL in the GAN's training phase (ZSL.GAN_PHASE; the seed's TODO
 * "incorporate ZSL in the training phase, not the pretraining one"; docs/ZSL_VARIANTS.md).
 *
 * In the seed, `attngan train` keeps the text encoder (with ZSL G) and ZSL D frozen: they learn in
 * pretraining only. With ZSL.GAN_PHASE both keep learning. After every GAN step (gan_step), on the
 * step's batch:
 *  1. the text encoder's LSTM codes of the captions (frozen, eval, no graph) and, with fresh noise
 *     z ~ N(0, Z_STD^2) from the step's Rng, ZSL G's text codes; the frozen image encoder's codes of
 *     the real images of the last stage;
 *  2. ZSL D's step: the D side of the ZSL pair (src/nn/zsl.h: BCE or WGAN-GP with its penalty, the
 *     class head) on the real image codes against the text codes (detached); Adam on ZSL D;
 *  3. ZSL G's step: the G side of the ZSL pair (the image codes are real photos: only the text
 *     codes take gradients), times ZSL.LAMBDA; Adam on the text encoder's zsl_g.* only.
 * Both Adams use TRAIN.ENCODER_LR (ZSL G's times ZSL.G_LR_SCALE) and the config's betas. Between
 * steps ZSL D and the text encoder are frozen again, so the GAN step itself is the seed's: G sees
 * the updated ZSL G's codes from the next step on. ZSL.CRITIC_STEPS, the word-level pair and the
 * pivot are pretraining's (not applied here). */
#ifndef ATTNGAN_ZSL_GAN_H
#define ATTNGAN_ZSL_GAN_H

#include "gan_step.h"

typedef struct ZslGan {
    GanTrainer *t;                /* not owned: its text encoder, image encoder and ZSL D */
    Adam opt_zg, opt_zd;          /* ZSL G (the text encoder's zsl_g.* entries), ZSL D */
    Tape tp[2];                   /* the D step, the G step */
    Tape *lane_tp;                /* EXTRA.GRAD_ACCUM: lane j >= 1's two at 2 (j - 1) */
} ZslGan;

typedef struct ZslGanOut {
    float d_loss, g_loss;         /* the D side's loss (with its penalty), the G side's (unweighted) */
    float gp;                     /* the gradient penalty (wgan_gp), else 0 */
} ZslGanOut;

/* Creates the optimizers and hooks z into t (t->zsl_phase: moved with gan_trainer_to_device); after
 * gan_trainer_set_lanes, whose lanes must also know the text encoder and ZSL D. */
void zsl_gan_init(ZslGan *z, GanTrainer *t);
void zsl_gan_free(ZslGan *z);
/* ZSL G's and ZSL D's weights take gradients (on) or none (off, between steps). A checkpoint keeps
 * the Adam moments of the weights that take gradients: save and load with them on. */
void zsl_gan_trainable(ZslGan *z, int on);
/* Moves the optimizer states and the tapes to device dev (the networks move with the trainer). */
void zsl_gan_to_device(ZslGan *z, int dev);
/* One ZSL D step and one ZSL G step on the batch (after gan_step); rng: the step's Rng. */
void zsl_gan_step(ZslGan *z, const GanBatch *b, Rng *rng, ZslGanOut *out);
/* The same over the trainer's lanes (gan_step_lanes): b, rng and out hold one per lane; each
 * update takes the lanes' mean gradient. */
void zsl_gan_step_lanes(ZslGan *z, const GanBatch *b, Rng *rng, ZslGanOut *out);

#endif
