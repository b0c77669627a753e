/* text_encoder.h: RNN_ENCODER of the seed with its embedded ZSL G (zsl/models.py):
 * embedding -> dropout -> bidirectional LSTM over packed lengths -> words_emb, and
 * sent = ZSL_G([h_fwd, h_rev], z) as the sentence code.
 * state_dict keys: encoder.weight, rnn.{weight,bias}_{ih,hh}_l0{,_reverse}, zsl_g.rdc_text.*,
 * zsl_g.main.0.*, zsl_g.main.2.* (and zsl_gw.* of the same shapes with ZSL.WORD_LEVEL) */
#ifndef ATTNGAN_TEXT_ENCODER_H
#define ATTNGAN_TEXT_ENCODER_H

#include "config.h"
#include "layers.h"
#include "zsl.h"

typedef struct TextEncoder {
    ModelConfig cfg;
    ParamSet ps;                 /* name "text_encoder" */
    Tensor *embedding;           /* (N_WORDS, WORD_DIM) encoder.weight */
    LstmWeights fwd, rev;        /* rnn.*_l0 and rnn.*_l0_reverse, hidden E/2 */
    ZslG zsl_g;                  /* zsl_g.* */
    ZslG zsl_gw;                 /* zsl_gw.*: the word-level ZSL G (cfg.zsl_word only) */
    int train;                   /* dropout on (train mode) */
} TextEncoder;

typedef struct TextEncoderOut {
    Tensor *words_emb;           /* (B, E, L), L = max(cap_lens); zero past each length. With
                                    cfg.zsl_word, the word codes ZSL_GW(word, z_w) */
    Tensor *words_lstm;          /* (B, E, L): the bi-LSTM's words (= words_emb without zsl_word) */
    Tensor *sent_lstm;           /* (B, E) = [h_fwd(n_b - 1), h_rev(0)] */
    Tensor *sent_emb;            /* (B, E) = ZSL_G(sent_lstm, z) */
    Tensor *drop_mask;           /* (B, T, W) multiplier applied (train mode with dropout), else NULL */
} TextEncoderOut;

/* Registers every tensor in state_dict order and finalizes the set; starts in eval mode (train = 0). */
void text_encoder_init(TextEncoder *te, const ModelConfig *cfg);
void text_encoder_free(TextEncoder *te);
/* The sentence code from the LSTM's code (B, E) and ZSL G's noise (B, Z): ZSL G's output, or the
 * LSTM's code itself with cfg.sent_lstm (EXTRA.SENT_CODE 'lstm'), or their sum with
 * cfg.zsl_residual (ZSL.RESIDUAL). */
Tensor *text_encoder_sent_code(Tape *tp, TextEncoder *te, Tensor *sent_lstm, Tensor *z);
/* captions (B, T) int64 token ids (T = WORDS_NUM, 0-padded), cap_lens[B] in 1..T.
 * With cfg.zsl_word (ZSL.WORD_LEVEL) every word of the bi-LSTM goes through the word-level ZSL G
 * with noise z_w (B * L, Z) ~ N(0, Z_STD^2) drawn from rng after the dropout mask and before the
 * sentence noise, or zero noise (the code's mean) when rng is NULL (generation, fixed samples).
 * z (B, ZSL_Z): ZSL G's noise, or NULL to draw it from rng (standard normal).
 * drop_mask (B, T, W): the dropout multiplier to apply in train mode (PyTorch dumps), or NULL
 * to draw it from rng with p = RNN_DROP. In eval mode there is no dropout. */
TextEncoderOut text_encoder_forward(Tape *tp, TextEncoder *te, const int64_t *captions, const int *cap_lens, int B,
                                    const Tensor *z, const Tensor *drop_mask, Rng *rng);

#endif
