/* text_encoder.c: the seed's RNN_ENCODER (the reference's RNNEncoder) with its ZSL G:
 * embedding -> embedding dropout (train mode) -> bidirectional LSTM over the caption lengths ->
 * words_emb (B, E, L), and sent_emb = ZSL_G(h_n, z); see text_encoder.h. */
#include "text_encoder.h"

#include <stdlib.h>
#include <string.h>

/* rnn.<w>_l0<suffix> of one LSTM direction, in PyTorch's registration order. */
static void lstm_dir_init(LstmWeights *w, ParamSet *ps, const char *suffix, int in, int hid) {
    char n[NAME_MAX_LEN];
    w->w_ih = PARAM(ps, pname(n, "rnn.weight_ih_l0%s", suffix), 4 * hid, in);
    w->w_hh = PARAM(ps, pname(n, "rnn.weight_hh_l0%s", suffix), 4 * hid, hid);
    w->b_ih = PARAM(ps, pname(n, "rnn.bias_ih_l0%s", suffix), 4 * hid);
    w->b_hh = PARAM(ps, pname(n, "rnn.bias_hh_l0%s", suffix), 4 * hid);
}

void text_encoder_init(TextEncoder *te, const ModelConfig *cfg) {
    CHECK(cfg->embedding_dim > 0 && cfg->embedding_dim % 2 == 0,
          "text_encoder_init: EMBEDDING_DIM = %d must be positive and even (bidirectional LSTM)", cfg->embedding_dim);
    CHECK(cfg->n_words > 0 && cfg->word_dim > 0 && cfg->words_num > 0,
          "text_encoder_init: N_WORDS = %d, WORD_DIM = %d, WORDS_NUM = %d must be positive", cfg->n_words,
          cfg->word_dim, cfg->words_num);
    CHECK(cfg->rnn_drop >= 0.0f && cfg->rnn_drop < 1.0f, "text_encoder_init: RNN_DROP = %g not in [0, 1)",
          (double)cfg->rnn_drop);
    memset(te, 0, sizeof *te);
    te->cfg = *cfg;
    paramset_init(&te->ps, "text_encoder");
    int hid = cfg->embedding_dim / 2;
    te->embedding = PARAM(&te->ps, "encoder.weight", cfg->n_words, cfg->word_dim);
    lstm_dir_init(&te->fwd, &te->ps, "", cfg->word_dim, hid);
    lstm_dir_init(&te->rev, &te->ps, "_reverse", cfg->word_dim, hid);
    CHECK(!cfg->no_zsl_g || (cfg->sent_lstm && !cfg->zsl_word),
          "text_encoder_init: a text encoder without ZSL G needs EXTRA.SENT_CODE lstm and no ZSL.WORD_LEVEL");
    if (!cfg->no_zsl_g) zsl_g_init(&te->zsl_g, &te->ps, "zsl_g", cfg);
    if (cfg->zsl_word) zsl_g_init(&te->zsl_gw, &te->ps, "zsl_gw", cfg);
    paramset_finalize(&te->ps);
    te->train = 0;
}

void text_encoder_free(TextEncoder *te) { paramset_free(&te->ps); }

/* A no-gradient copy of x on the tape (so that the caller's const tensor is never written). */
static Tensor *tape_copy(Tape *tp, const Tensor *x) {
    Tensor *y = tape_new(tp, x->ndim, x->shape);
    tensor_copy(y, x); /* (x may be a host tensor: a caller's noise or mask) */
    return y;
}

/* Embedding dropout of train mode. emb (B, T, W). Sets *mask_out to the multiplier used, or NULL. */
static Tensor *embedding_dropout(Tape *tp, const TextEncoder *te, Tensor *emb, const Tensor *drop_mask, Rng *rng,
                                 Tensor **mask_out) {
    *mask_out = NULL;
    if (drop_mask) {
        Tensor *m = tape_copy(tp, drop_mask);
        *mask_out = m;
        return op_dropout_mask(tp, emb, m); /* checks the shape */
    }
    if (te->cfg.rnn_drop == 0.0f) return emb;
    CHECK(rng != NULL, "text_encoder: dropout p = %g in train mode needs an Rng or a drop_mask",
          (double)te->cfg.rnn_drop);
    return op_dropout(tp, emb, te->cfg.rnn_drop, rng, mask_out);
}

/* ZSL G's noise (B, Z): a copy of z, or standard normal from rng. */
static Tensor *zsl_noise(Tape *tp, const TextEncoder *te, const Tensor *z, int B, Rng *rng) {
    int Z = te->cfg.zsl_z;
    if (z) {
        char s[64];
        CHECK(z->ndim == 2 && z->shape[0] == B && z->shape[1] == Z, "text_encoder: z %s must be (%d, %d)",
              tensor_shape_str(z, s, sizeof s), B, Z);
        return tape_copy(tp, z);
    }
    CHECK(rng != NULL, "text_encoder: z = NULL needs an Rng to draw ZSL G's noise");
    Tensor *zz = TNEW(tp, B, Z);
    tensor_fill_normal(zz, rng, 0.0f, te->cfg.zsl_z_std); /* std 0: no noise (a deterministic code) */
    return zz;
}

/* ZSL.WORD_LEVEL: seq (B, L, E) -> the word codes (B, E, L), zero past each length */
static Tensor *word_codes(Tape *tp, const TextEncoder *te, Tensor *seq, const int *cap_lens, int B, Rng *rng) {
    int L = seq->shape[1], E = seq->shape[2], Z = te->cfg.zsl_z;
    Tensor *flat = OP_RESHAPE(tp, seq, B * L, E);
    Tensor *zw = TNEW(tp, B * L, Z);
    if (rng) tensor_fill_normal(zw, rng, 0.0f, te->cfg.zsl_z_std);
    else tensor_fill(zw, 0.0f);
    Tensor *w = OP_RESHAPE(tp, zsl_g_forward(tp, &te->zsl_gw, flat, zw), B, L, E);
    float *m = xmalloc((size_t)B * L * sizeof(float));
    for (int b = 0; b < B; b++)
        for (int t = 0; t < L; t++) m[(size_t)b * L + t] = t < cap_lens[b] ? 1.0f : 0.0f;
    Tensor *mask = TNEW(tp, B, L, 1);
    tensor_upload(mask, m);
    free(m);
    return op_transpose(tp, op_mul(tp, w, mask), 1, 2);
}

TextEncoderOut text_encoder_forward(Tape *tp, TextEncoder *te, const int64_t *captions, const int *cap_lens, int B,
                                    const Tensor *z, const Tensor *drop_mask, Rng *rng) {
    CHECK(captions && cap_lens && B > 0, "text_encoder: captions, cap_lens and B = %d > 0 are required", B);
    int T = te->cfg.words_num;
    for (int b = 0; b < B; b++)
        CHECK(cap_lens[b] >= 1 && cap_lens[b] <= T, "text_encoder: cap_lens[%d] = %d not in 1..WORDS_NUM = %d", b,
              cap_lens[b], T);
    TextEncoderOut o = {NULL, NULL, NULL, NULL, NULL};
    Tensor *emb = op_embedding(tp, captions, B, T, te->embedding); /* (B, T, W) */
    if (te->train) emb = embedding_dropout(tp, te, emb, drop_mask, rng, &o.drop_mask);
    Tensor *h_n;                                                    /* (B, E) */
    Tensor *seq = op_bilstm(tp, emb, cap_lens, &te->fwd, &te->rev, &h_n); /* (B, L, E) */
    o.words_emb = op_transpose(tp, seq, 1, 2);                      /* (B, E, L) */
    o.words_lstm = o.words_emb;
    if (te->cfg.zsl_word) o.words_emb = word_codes(tp, te, seq, cap_lens, B, rng);
    o.sent_lstm = h_n;
    if (te->cfg.sent_lstm) { /* EXTRA.SENT_CODE 'lstm': no noise drawn */
        o.sent_emb = h_n;
        return o;
    }
    Tensor *zz = zsl_noise(tp, te, z, B, rng);                      /* (B, Z), drawn after the dropout mask */
    o.sent_emb = zsl_g_forward(tp, &te->zsl_g, h_n, zz);            /* (B, E) */
    if (te->cfg.zsl_residual) o.sent_emb = op_add(tp, h_n, o.sent_emb); /* ZSL.RESIDUAL */
    return o;
}

Tensor *text_encoder_sent_code(Tape *tp, TextEncoder *te, Tensor *sent_lstm, Tensor *z) {
    if (te->cfg.sent_lstm) return sent_lstm;
    Tensor *s = zsl_g_forward(tp, &te->zsl_g, sent_lstm, z);
    return te->cfg.zsl_residual ? op_add(tp, sent_lstm, s) : s;
}
