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

#endif
