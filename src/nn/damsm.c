/* damsm.c: the DAMSM matching losses of AttnGAN (the seed's miscc/losses.py), composed from tape
 * ops so that their backward comes for free:
 *  - words_loss: for each text i, its n_i word vectors attend over the regions of every image
 *    (func_attention: softmax over the words, then softmax of gamma1 * scores over the regions),
 *    the cosine of each word with its region context is pooled as log sum exp(gamma2 * cos);
 *  - sent_loss: cosine of the global image code and the sentence embedding;
 * both scaled by gamma3, masked to -inf where two different samples share a class, and scored by
 * cross-entropy in both directions (images -> texts, texts -> images) with targets arange(B). */
#include "damsm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DAMSM_COS_EPS 1e-8f

uint8_t *damsm_class_mask(Tape *tp, const int64_t *class_ids, int B) {
    if (!class_ids) return NULL;
    CHECK(B > 0, "damsm_class_mask: batch %d must be positive", B);
    uint8_t *m = tape_alloc(tp, (size_t)B * (size_t)B);
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++) m[(size_t)i * B + j] = (uint8_t)(i != j && class_ids[i] == class_ids[j]);
    return m;
}

/* sims (B, B) -> the mask, then CE(sims, arange B) and CE(sims^T, arange B). */
static DamsmLoss damsm_finish(Tape *tp, Tensor *sims, const int64_t *class_ids, int B) {
    uint8_t *mask = damsm_class_mask(tp, class_ids, B);
    if (mask) sims = op_masked_fill(tp, sims, mask, -INFINITY);
    int64_t *labels = tape_alloc(tp, (size_t)B * sizeof(int64_t));
    for (int i = 0; i < B; i++) labels[i] = i;
    DamsmLoss r;
    r.sims = sims;
    r.loss0 = op_cross_entropy(tp, sims, labels);
    r.loss1 = op_cross_entropy(tp, op_transpose(tp, sims, 0, 1), labels);
    return r;
}

/* func_attention(word, region, gamma1): word (B, E, n), region (B, E, S) -> context (B, E, n). */
static Tensor *damsm_attention(Tape *tp, Tensor *word, Tensor *region, float gamma1) {
    Tensor *attn = op_bmm(tp, region, word, 1, 0);         /* (B, S, n) = region^T . word */
    attn = op_softmax(tp, attn, NULL);                     /* over the n words (Eq. 8) */
    attn = op_transpose(tp, attn, 1, 2);                   /* (B, n, S) */
    attn = op_softmax(tp, op_scale(tp, attn, gamma1), NULL); /* over the S regions (Eq. 9) */
    return op_bmm(tp, region, attn, 0, 1);                 /* (B, E, n) = region . attn^T */
}

/* Column i of the words sims: log sum_words exp(gamma2 * cos(word, context)), (B, 1). */
static Tensor *damsm_words_column(Tape *tp, const ModelConfig *cfg, Tensor *region, Tensor *words_emb, int i, int n,
                                  int B) {
    Tensor *word = op_slice(tp, words_emb, 0, i, i + 1);               /* (1, E, L) */
    if (n != words_emb->shape[2]) word = op_slice(tp, word, 2, 0, n);  /* (1, E, n) */
    if (B > 1) word = op_repeat(tp, word, (int[]){B, 1, 1});           /* (B, E, n) */
    Tensor *ctx = damsm_attention(tp, word, region, cfg->gamma1);       /* (B, E, n) */
    Tensor *cos = op_cosine_similarity(tp, word, ctx, 1, DAMSM_COS_EPS); /* (B, n) */
    Tensor *e = op_exp(tp, op_scale(tp, cos, cfg->gamma2));             /* (B, n) Eq. 10 */
    return op_log(tp, op_sum(tp, e, 1, 1));                             /* (B, 1) */
}

DamsmLoss damsm_words_loss(Tape *tp, const ModelConfig *cfg, Tensor *region, Tensor *words_emb, const int *cap_lens,
                           const int64_t *class_ids, int B) {
    char s1[64], s2[64];
    CHECK(B > 0 && cap_lens, "damsm_words_loss: batch %d and cap_lens %p", B, (const void *)cap_lens);
    CHECK(region->ndim == 4 && region->shape[0] == B, "damsm_words_loss: region must be (B=%d, E, H, W), got %s", B,
          tensor_shape_str(region, s1, sizeof s1));
    CHECK(words_emb->ndim == 3 && words_emb->shape[0] == B && words_emb->shape[1] == region->shape[1],
          "damsm_words_loss: words_emb must be (B=%d, E, L) with the E of region %s, got %s", B,
          tensor_shape_str(region, s1, sizeof s1), tensor_shape_str(words_emb, s2, sizeof s2));
    int E = region->shape[1], S = region->shape[2] * region->shape[3], L = words_emb->shape[2];
    Tensor *reg = op_reshape(tp, region, 3, (int[]){B, E, S});          /* (B, E, S) */
    Tensor **cols = tape_alloc(tp, (size_t)B * sizeof(Tensor *));
    for (int i = 0; i < B; i++) {
        CHECK(cap_lens[i] >= 1 && cap_lens[i] <= L, "damsm_words_loss: cap_lens[%d] = %d outside [1, L = %d]", i,
              cap_lens[i], L);
        cols[i] = damsm_words_column(tp, cfg, reg, words_emb, i, cap_lens[i], B);
    }
    Tensor *sims = op_concat(tp, B, cols, 1);                           /* (B images, B texts) */
    return damsm_finish(tp, op_scale(tp, sims, cfg->gamma3), class_ids, B);
}

DamsmLoss damsm_sent_loss(Tape *tp, const ModelConfig *cfg, Tensor *code, Tensor *sent_emb, const int64_t *class_ids,
                          int B) {
    char s1[64], s2[64];
    CHECK(B > 0 && code->ndim == 2 && code->shape[0] == B && tensor_same_shape(code, sent_emb),
          "damsm_sent_loss: code and sent_emb must both be (B=%d, E), got %s and %s", B,
          tensor_shape_str(code, s1, sizeof s1), tensor_shape_str(sent_emb, s2, sizeof s2));
    Tensor *cn = op_l2norm(tp, code, 1, 1);                             /* (B, 1) */
    Tensor *rn = op_l2norm(tp, sent_emb, 1, 1);                         /* (B, 1) */
    Tensor *s0 = op_bmm(tp, code, sent_emb, 0, 1);                      /* (B, B) */
    Tensor *n0 = op_bmm(tp, cn, rn, 0, 1);                              /* (B, B) */
    n0 = op_clamp(tp, n0, DAMSM_COS_EPS, INFINITY);
    Tensor *sims = op_scale(tp, op_div(tp, s0, n0), cfg->gamma3);
    return damsm_finish(tp, sims, class_ids, B);
}

double damsm_words_score(const ModelConfig *cfg, const float *region, int E, int S, const float *words, int ldw, int n) {
    CHECK(E > 0 && S > 0 && n > 0 && ldw >= n, "damsm_words_score: E %d, S %d, n %d, ldw %d", E, S, n, ldw);
    /* scores a (n, S) = (region^T . words)^T, each a sum over e in order (vectorised over s) */
    double *a = xcalloc((size_t)n * S, sizeof(double)), *p = xmalloc((size_t)S * sizeof(double)), *c = xmalloc((size_t)n * sizeof(double));
    for (int t = 0; t < n; t++) {
        double *at = a + (size_t)t * S;
        for (int e = 0; e < E; e++) {
            const double w = words[(size_t)e * ldw + t];
            const float *r = region + (size_t)e * S;
            for (int s = 0; s < S; s++) at[s] += r[s] * w;
        }
    }
    /* the softmax over the n words of each region (Eq. 8), of the float scores as the op has them */
    for (int s = 0; s < S; s++) {
        double mx = -INFINITY, z = 0;
        for (int t = 0; t < n; t++) {
            double v = (float)a[(size_t)t * S + s];
            a[(size_t)t * S + s] = v;
            mx = fmax(mx, v);
        }
        for (int t = 0; t < n; t++) z += (a[(size_t)t * S + s] = exp(a[(size_t)t * S + s] - mx));
        for (int t = 0; t < n; t++) a[(size_t)t * S + s] /= z;
    }
    for (int t = 0; t < n; t++) {
        /* the softmax of gamma1 x word t's scores over the S regions (Eq. 9), its context, the cosine */
        const double *at = a + (size_t)t * S;
        double mx = -INFINITY, z = 0;
        for (int s = 0; s < S; s++) mx = fmax(mx, cfg->gamma1 * at[s]);
        for (int s = 0; s < S; s++) z += (p[s] = exp(cfg->gamma1 * at[s] - mx));
        for (int s = 0; s < S; s++) p[s] /= z;
        double dot = 0, nw = 0, nc = 0;
        for (int e = 0; e < E; e++) {
            const float *r = region + (size_t)e * S;
            double v = 0;
            for (int s = 0; s < S; s++) v += r[s] * p[s];
            double u = words[(size_t)e * ldw + t];
            dot += u * v, nw += u * u, nc += v * v;
        }
        double den = sqrt(nw) * sqrt(nc);
        c[t] = dot / (den < DAMSM_COS_EPS ? DAMSM_COS_EPS : den);
    }
    /* log sum_t exp(gamma2 cos_t) (Eq. 10) */
    double mx = -INFINITY, score = 0;
    for (int t = 0; t < n; t++) mx = fmax(mx, cfg->gamma2 * c[t]);
    for (int t = 0; t < n; t++) score += exp(cfg->gamma2 * c[t] - mx);
    score = mx + log(score);
    free(a);
    free(p);
    free(c);
    return score;
}
