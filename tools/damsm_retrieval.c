/* damsm_retrieval: how well a DAMSM (an evaluator directory, or a pretraining run's directory)
 * matches the unseen test classes' real photos with their captions, by each of its two scores:
 *  - sentence: the cosine of the sentence code and the image's global code (AttnGAN's R-precision);
 *  - words: the DAMSM's word-region score, R(Q, D) = log sum_words exp(gamma2 cos(word, context))
 *    (AttnGAN Eq. 10, the score its word loss is trained on);
 *  - sum: both, each times gamma3 (the two logits the DAMSM's losses are trained on, added).
 * From the cached trunk features of the test photos (CACHE/test_trunk.safetensors of a pretraining
 * with EXTRA.CACHE_TRUNK_FEATURES, at the size the DAMSM was trained at), every photo with its first
 * caption, in a seeded shuffle cut into folds of 100 (pretraining's held-out retrieval):
 *  - text-to-image top-1: each caption against its fold's 100 photos (pretraining's "retrieval
 *    top-1"; chance 0.01);
 *  - image-to-text top-1: each photo against its fold's 100 captions, those of its own class other
 *    than its own left out (R-precision's choice of mismatches, with candidates from the fold;
 *    chance about 1/(folds' candidates), printed).
 * usage: damsm_retrieval DAMSM_DIR TEST_TRUNK_CACHE DATA_BIRDS_DIR [SEED]
 * prints one markdown row per score. */
#include "../src/data/cub.h"
#include "../src/eval/evaluator.h"
#include "../src/io/safetensors.h"
#include "../src/nn/damsm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FOLD 100

static void die(const char *what) {
    fprintf(stderr, "damsm_retrieval: %s: %s\n", what, err_msg());
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: damsm_retrieval DAMSM_DIR TEST_TRUNK_CACHE DATA_BIRDS_DIR [SEED]\n");
        return 2;
    }
    uint64_t seed = argc == 5 ? strtoull(argv[4], NULL, 10) : 2024;
    Evaluator ev;
    if (evaluator_load(&ev, argv[1], NULL)) die(argv[1]);
    Cub cub;
    if (cub_open(&cub, argv[3])) die(argv[3]);
    SafeTensors st;
    if (st_open(&st, argv[2])) die(argv[2]);
    const StTensor *tm = st_find(&st, "mixed"), *tpool = st_find(&st, "pool"), *ti = st_find(&st, "image_index");
    if (!tm || !tpool || !ti || tm->ndim != 4 || tpool->ndim != 2) {
        fprintf(stderr, "damsm_retrieval: %s: expected image_index, mixed (N, 768, 17, 17) and pool (N, 2048)\n", argv[2]);
        return 2;
    }
    int n = (int)ti->shape[0], C = (int)tm->shape[1], H = (int)tm->shape[2], W = (int)tm->shape[3], P = (int)tpool->shape[1];
    int64_t *index = xmalloc((size_t)n * sizeof(int64_t));
    if (st_read_i64(&st, "image_index", index, n)) die(argv[2]);
    float *mixed = xmalloc((size_t)n * C * H * W * sizeof(float)), *pool = xmalloc((size_t)n * P * sizeof(float));
    if (st_read_f32(&st, "mixed", mixed, (int64_t)n * C * H * W) || st_read_f32(&st, "pool", pool, (int64_t)n * P)) die(argv[2]);
    st_close(&st);
    const ModelConfig *mc = &ev.mc;
    int T = mc->words_num;
    /* the photos in a seeded order */
    int *order = xmalloc((size_t)n * sizeof(int)), *cls = xmalloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) {
        if (index[i] < 0 || index[i] >= cub.test.n) { fprintf(stderr, "damsm_retrieval: image_index %lld out of the test split\n", (long long)index[i]); return 2; }
        cls[i] = cub.test.images[index[i]].class_id;
        order[i] = i;
    }
    Rng rng;
    rng_init(&rng, seed);
    for (int i = n - 1; i > 0; i--) {
        float u;
        rng_uniform(&rng, &u, 1);
        int j = (int)(u * (float)(i + 1));
        if (j > i) j = i;
        int t = order[i];
        order[i] = order[j], order[j] = t;
    }
    /* per fold: the three score matrices (rows images, columns captions) */
    int nf = n / FOLD;
    long t2i[3] = {0}, i2t[3] = {0}, i2t_cands = 0, total = 0;
    int64_t *caps = xcalloc((size_t)FOLD * T, sizeof(int64_t));
    int lens[FOLD];
    float *sims = xmalloc((size_t)3 * FOLD * FOLD * sizeof(float));
    Tape tp;
    tape_init(&tp);
    for (int f = 0; f < nf; f++) {
        tape_reset(&tp);
        tape_no_grad_begin(&tp);
        Tensor *m = TNEW(&tp, FOLD, C, H, W), *p = TNEW(&tp, FOLD, P);
        memset(caps, 0, (size_t)FOLD * T * sizeof(int64_t));
        for (int j = 0; j < FOLD; j++) {
            int i = order[f * FOLD + j];
            memcpy(m->data + (size_t)j * C * H * W, mixed + (size_t)i * C * H * W, (size_t)C * H * W * sizeof(float));
            memcpy(p->data + (size_t)j * P, pool + (size_t)i * P, (size_t)P * sizeof(float));
            const CubImage *im = &cub.test.images[index[i]];
            char *text = vocab_decode(&cub.vocab, im->caps[0], im->cap_len[0]);
            int64_t *ids = NULL;
            char *unk = NULL;
            int k = vocab_encode(&ev.vocab, text, &ids, &unk);
            lens[j] = k > T ? T : k > 0 ? k : 1;
            for (int t = 0; t < lens[j] && k > 0; t++) caps[(size_t)j * T + t] = ids[t];
            free(ids);
            free(unk);
            free(text);
        }
        Tensor *region = conv2d_layer_forward(&tp, &ev.ie.emb_features, m);
        Tensor *code = image_encoder_code(&tp, &ev.ie, m, p);
        Tensor *z = TNEW(&tp, FOLD, mc->zsl_z);
        tensor_fill(z, 0.0f);
        TextEncoderOut o = text_encoder_forward(&tp, &ev.te, caps, lens, FOLD, z, NULL, NULL);
        DamsmLoss w = damsm_words_loss(&tp, mc, region, o.words_emb, lens, NULL, FOLD);
        DamsmLoss s = damsm_sent_loss(&tp, mc, code, o.sent_emb, NULL, FOLD);
        tensor_download(s.sims, sims);
        tensor_download(w.sims, sims + FOLD * FOLD);
        tape_no_grad_end(&tp);
        for (int k = 0; k < FOLD * FOLD; k++) sims[2 * FOLD * FOLD + k] = sims[k] + sims[FOLD * FOLD + k];
        for (int q = 0; q < 3; q++) {
            const float *S = sims + (size_t)q * FOLD * FOLD;
            for (int j = 0; j < FOLD; j++) { /* caption j against the fold's photos */
                int best = 0;
                for (int i = 1; i < FOLD; i++)
                    if (S[i * FOLD + j] > S[best * FOLD + j]) best = i;
                t2i[q] += best == j;
            }
            for (int i = 0; i < FOLD; i++) { /* photo i against its own and other classes' captions */
                int ci = cls[order[f * FOLD + i]], best = i;
                for (int j = 0; j < FOLD; j++) {
                    if (j == i || cls[order[f * FOLD + j]] == ci) continue;
                    if (q == 0) i2t_cands++;
                    if (S[i * FOLD + j] > S[i * FOLD + best]) best = j;
                }
                i2t[q] += best == i;
            }
        }
        total += FOLD;
    }
    tape_free(&tp);
    const char *names[3] = {"sentence (cosine of the global codes)", "words (word-region, Eq. 10)", "sum (both logits x gamma3)"};
    printf("| score | text-to-image top-1 | image-to-text top-1 |\n|---|---:|---:|\n");
    for (int q = 0; q < 3; q++) printf("| %s | %.3f | %.3f |\n", names[q], (double)t2i[q] / total, (double)i2t[q] / total);
    printf("(%s: %ld test photos in %d folds of %d, seed %llu; text-to-image chance %.3f; image-to-text chance %.3f, %.1f "
           "mismatched captions per photo)\n",
           argv[1], total, nf, FOLD, (unsigned long long)seed, 1.0 / FOLD, 1.0 / (1.0 + (double)i2t_cands / total),
           (double)i2t_cands / total);
    return 0;
}
