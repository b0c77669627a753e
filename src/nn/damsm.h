/* damsm.h: the DAMSM matching losses of AttnGAN (src/miscc/losses.py): words_loss (word-region
 * attention, Eq. 7-10) and sent_loss (cosine of the global codes), both cross-entropies in both
 * directions with the same-class mask. */
#ifndef ATTNGAN_DAMSM_H
#define ATTNGAN_DAMSM_H

#include "config.h"
#include "layers.h"

/* m[i*B + j] = class_ids[i] == class_ids[j] && i != j (B*B bytes on the tape); NULL ids: NULL */
uint8_t *damsm_class_mask(Tape *tp, const int64_t *class_ids, int B);

typedef struct DamsmLoss {
    Tensor *loss0, *loss1;       /* CE(sims, arange B), CE(sims^T, arange B) */
    Tensor *sims;                /* (B, B) after *gamma3 and the mask; rows = images */
} DamsmLoss;

/* region (B, E, H, W) image region features, words_emb (B, E, L), cap_lens[B] (<= L);
 * class_ids NULL: no mask. words_loss uses gamma1, gamma2, gamma3 of cfg. */
DamsmLoss damsm_words_loss(Tape *tp, const ModelConfig *cfg, Tensor *region, Tensor *words_emb, const int *cap_lens,
                           const int64_t *class_ids, int B);
/* code (B, E), sent_emb (B, E): s = code.sent^T / max(|code| |sent|^T, 1e-8) * gamma3 */
DamsmLoss damsm_sent_loss(Tape *tp, const ModelConfig *cfg, Tensor *code, Tensor *sent_emb, const int64_t *class_ids, int B);

/* The word-region score of one image and one text on the host, without a tape, for evaluation:
 * R(Q, D) = log sum_t exp(gamma2 cos(word_t, context_t)) (AttnGAN Eq. 10), the context of word t
 * the regions weighted by func_attention's two softmaxes (over the words, then of gamma1 x the
 * scores over the regions), as damsm_words_loss computes it (its sims are gamma3 x this).
 * region (E, S) row-major (S = H W, an image's emb_features), words (E, n) with row stride ldw
 * (>= n: a text's first n columns of its (E, L) words_emb). Every sum is in double, in a fixed
 * order: the same bits for any thread count. */
double damsm_words_score(const ModelConfig *cfg, const float *region, int E, int S, const float *words, int ldw, int n);

#endif
