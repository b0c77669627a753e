/* damsm_step.h: one DAMSM + ZSL pretraining iteration (the seed's pretrain_DAMSM.py), as the
 * training program and `attngan parity` run it.
 *
 *  pass 1: region, code = IE(imgs) (train-mode trunk BN); words, sent = TE(captions, z0, mask0);
 *          loss = ((w0 + w1) + (s0 + s1)) + ZSL_LAMBDA * g_loss,
 *          g_loss = ((BCEL(D(code), r) + BCEL(D(sent), r)) + CE(Dcls(code), y)) + CE(Dcls(sent), y)
 *          with r = the "real" ZSL label (0 in the seed); backward; clip the text encoder's
 *          gradients to RNN_GRAD_CLIP; Adam (ENCODER_LR) on the text encoder and the image
 *          encoder's emb layers.
 *  pass 2: the ZSL D step. The seed re-runs both encoders with the updated weights, a new z and a
 *          new dropout mask (a second trunk BN update); we do the same but without building a
 *          graph through them (the seed's gradients there are discarded: same numbers, less work):
 *          d_loss = ((BCEL(D(code'), r) + BCEL(D(sent'), 1-r)) + CE(.., y)) + CE(.., y); Adam on D.
 * The ZSL D gets no gradient in pass 1 (the seed computes and discards it).
 * Options (src/nn/zsl.h, docs/ZSL_VARIANTS.md): ZSL.ADV_LOSS wgan_gp (GAZSL's WGAN-GP: critic
 * scores in place of the BCE terms, a gradient penalty in pass 2), ZSL.CRITIC_STEPS (ZSL D updates
 * per step) and ZSL.PIVOT_LAMBDA (GAZSL's visual pivot in g_loss). */
#ifndef ATTNGAN_DAMSM_STEP_H
#define ATTNGAN_DAMSM_STEP_H

#include "../nn/damsm.h"
#include "../nn/image_encoder.h"
#include "../nn/text_encoder.h"
#include "../nn/zsl.h"
#include "optim.h"

typedef struct DamsmTrainer {
    ModelConfig cfg;
    TextEncoder *te;
    ImageEncoder *ie;
    ZslD *zd;
    Adam opt_te, opt_ie, opt_zd;  /* opt_te and opt_ie together are the seed's one encoder optimizer */
    ZslD *zdw;                    /* ZSL.WORD_LEVEL: the word-level ZSL D (damsm_trainer_set_word_d), or NULL */
    Adam opt_zdw;
    Rng *word_rng;                /* ZSL.WORD_LEVEL: draws pass 1's region rows (damsm_pass1 sets it
                                     from its rng; a program calling damsm_losses itself sets it) */
    Tape tape[2];                 /* pass 1 and pass 2; their tensors live until the next step */
    int keep_grads;               /* 0 (default): damsm_step releases the text encoder's and ZSL D's
                                     gradients after their updates; 1: they stay readable */
} DamsmTrainer;

typedef struct DamsmBatch {
    Tensor *imgs;                 /* (B, 3, S, S) in [-1, 1] */
    const int64_t *captions;      /* (B, WORDS_NUM), sorted by length, descending */
    const int *cap_lens;          /* (B) */
    const int64_t *class_ids;     /* (B) 1-based */
    int B;
} DamsmBatch;

/* Optional injected noise (PyTorch dumps); NULL entries are drawn from the Rng. */
typedef struct DamsmNoise {
    const Tensor *zsl_z[2];
    const Tensor *drop_mask[2];
} DamsmNoise;

typedef struct DamsmPass1 {
    ImageEncoderOut img;
    TextEncoderOut txt;
    DamsmLoss w, s;
    Tensor *pred_sent, *cls_sent, *pred_emb, *cls_emb;  /* ZSL D on code ("sent") and on sent_emb ("emb") */
    Tensor *g_terms[4];           /* adv_sent, adv_emb, cls_sent, cls_emb */
    Tensor *pivot;                /* the visual pivot (ZSL.PIVOT_LAMBDA > 0), unweighted; or NULL */
    Tensor *word_g_loss;          /* ZSL.WORD_LEVEL: the word-level pair's part of g_loss; or NULL */
    Tensor *g_loss, *loss;
    float clip_total_norm;
} DamsmPass1;

typedef struct DamsmPass2 {
    ImageEncoderOut img;
    TextEncoderOut txt;
    Tensor *pred_sent, *cls_sent, *pred_emb, *cls_emb;
    Tensor *d_terms[4];
    Tensor *gp;                   /* the gradient penalty (ZSL.ADV_LOSS wgan_gp), unweighted; or NULL */
    Tensor *word_d_loss;          /* ZSL.WORD_LEVEL: the word-level ZSL D's loss (not in d_loss); or NULL */
    Tensor *d_loss;
} DamsmPass2;

/* Takes the networks (not owned); sets their modes and trainable parts for pretraining. */
void damsm_trainer_init(DamsmTrainer *t, TextEncoder *te, ImageEncoder *ie, ZslD *zd, const ModelConfig *cfg);
void damsm_trainer_free(DamsmTrainer *t);
/* ZSL.WORD_LEVEL: adds the word-level ZSL D (not owned) and its optimizer. The seed's design 2:
 * in pass 1, g_loss gains the word-level pair's G side (zsl.h) with the region features as real
 * and the word codes as fake, one region of its image drawn per word (word_rows); in pass 2 the
 * word-level ZSL D is trained on the same rows, detached, in the same backward as ZSL D. */
void damsm_trainer_set_word_d(DamsmTrainer *t, ZslD *zdw);
/* Moves the encoders, ZSL D, their optimizer states and the tapes to device dev (the CPU
 * included); as gan_trainer_to_device. */
void damsm_trainer_to_device(DamsmTrainer *t, int dev);

/* The stages (parity replays them one by one, feeding each with the reference's tensors): */
/* The encoders of pass 1 on tp: fills out->img and out->txt. */
void damsm_encode(DamsmTrainer *t, Tape *tp, const DamsmBatch *b, const DamsmNoise *noise, Rng *rng, DamsmPass1 *out);
/* The pass-1 losses from the encoder outputs (any tensors) on tp: fills w, s, the ZSL terms, loss.
 * The ZSL D is used frozen (no gradient). */
void damsm_losses(DamsmTrainer *t, Tape *tp, Tensor *region, Tensor *code, Tensor *words_emb, Tensor *sent_emb,
                  const DamsmBatch *b, DamsmPass1 *out);
/* Clips the text encoder's gradients (returns the norm before clipping). */
float damsm_clip(DamsmTrainer *t);
/* pass 1 forward and backward on tape[0] (reset first); gradients clipped; no optimizer step. */
void damsm_pass1(DamsmTrainer *t, const DamsmBatch *b, const DamsmNoise *noise, Rng *rng, DamsmPass1 *out);
/* The same without the clipping (gradient accumulation clips the lanes' mean). */
void damsm_pass1_backward(DamsmTrainer *t, const DamsmBatch *b, const DamsmNoise *noise, Rng *rng, DamsmPass1 *out);
/* Adam on the text encoder and the image encoder's emb layers. */
void damsm_encoder_update(DamsmTrainer *t);
/* The encoders of pass 2 on tp, without a graph: fills out->img and out->txt. */
void damsm_encode2(DamsmTrainer *t, Tape *tp, const DamsmBatch *b, const DamsmNoise *noise, Rng *rng, DamsmPass2 *out);
/* The ZSL D loss on (code, sent_emb) on tp, and its backward into the zeroed ZSL D gradients.
 * rng: the gradient penalty's interpolation weights (ZSL.ADV_LOSS wgan_gp; may be NULL otherwise). */
void damsm_zsl_d_backward(DamsmTrainer *t, Tape *tp, Tensor *code, Tensor *sent_emb, const DamsmBatch *b, Rng *rng,
                          DamsmPass2 *out);
/* The ZSL D's updates of one step: damsm_zsl_d_backward and Adam, ZSL.CRITIC_STEPS times. The
 * first uses (code, sent_emb); each later one the same image codes and the text codes encoded
 * again without a graph (fresh ZSL G noise and dropout from rng), as GAZSL's critic sees new
 * samples of its generator (GAZSL also draws a new batch of features; we keep the step's batch,
 * whose image codes need the trunk). `out` holds the first critic step's terms; each later one
 * runs on a tape of its own, freed after its update. */
void damsm_zsl_d_steps(DamsmTrainer *t, Tape *tp, Tensor *code, Tensor *sent_emb, const DamsmBatch *b, Rng *rng, DamsmPass2 *out);
/* damsm_zsl_d_steps over the lanes of gradient accumulation (EXTRA.GRAD_ACCUM, lanes.h; L knows
 * the ZSL D(s)): each critic step runs the backward of every lane j (on tp[j], with out[j]'s codes
 * from damsm_encode2, its batch b[j] and its stream rng[j]), then one update on the lanes' mean
 * gradient. With one lane it is damsm_zsl_d_steps. */
struct Lanes;
void damsm_zsl_d_steps_lanes(DamsmTrainer *t, struct Lanes *L, Tape *const *tp, const DamsmBatch *b, Rng *rng, DamsmPass2 *out);
/* pass 2 on tape[1] (reset first): forward, backward into the ZSL D only, no optimizer step (one
 * critic step: damsm_step runs ZSL.CRITIC_STEPS of them, with their updates). */
void damsm_pass2(DamsmTrainer *t, const DamsmBatch *b, const DamsmNoise *noise, Rng *rng, DamsmPass2 *out);
/* Adam on the ZSL D. */
void damsm_zsl_d_update(DamsmTrainer *t);

/* The whole iteration. */
void damsm_step(DamsmTrainer *t, const DamsmBatch *b, const DamsmNoise *noise, Rng *rng, DamsmPass1 *p1, DamsmPass2 *p2);

#endif
