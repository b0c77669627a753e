/* zsl_variants: measures a DAMSM + ZSL pretraining run on the unseen test classes, for the comparison
 * of the ZSL designs and losses in docs/ZSL_VARIANTS.md (issue 18). From the run's encoders and its
 * cached trunk features of the test photos (RUN/cache/test_trunk.safetensors, written by a
 * pretraining with EXTRA.CACHE_TRUNK_FEATURES):
 *  - text-to-real-image retrieval top-1: each test photo's first caption against the photos of its
 *    fold of 100 (a seeded shuffle; chance 0.01), by the cosine of the sentence code and the image
 *    code. With k = 1, 3, 10 non-visual Wikipedia sentences (label 0) of the caption's class added,
 *    the sentence code is the run's sentence code (ZSL G at zero noise, or the LSTM code with
 *    EXTRA.SENT_CODE lstm) of the mean LSTM code of the caption and the k sentences: the seed's
 *    design 3 (ZSL on the mean sentence embedding) applied to a noisy document, with no selection;
 *  - GAZSL's zero-shot top-1: every test photo assigned to the nearest class prototype (cosine)
 *    among the classes with photos, a prototype being the sentence code of the mean LSTM code of the
 *    class's Wikipedia article (all its sentences) or of its test captions (chance 1 / classes).
 * Texts are their first TEXT.WORDS_NUM known words; ZSL G's noise (sentence and words) is zero.
 * usage: zsl_variants RUN DATA_BIRDS_DIR WIKIPEDIA_DIR [SEED]
 * prints one markdown row: | run | steps | top-1 k=0 | k=1 | k=3 | k=10 | zero-shot wiki | captions | */
#include "../src/data/cub.h"
#include "../src/data/text.h"
#include "../src/data/wikipedia.h"
#include "../src/io/safetensors.h"
#include "../src/nn/image_encoder.h"
#include "../src/nn/load.h"
#include "../src/nn/text_encoder.h"
#include "../src/train/checkpoint.h"
#include "../src/nn/train_config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 48
#define FOLD 100

static void die(const char *what) {
    fprintf(stderr, "zsl_variants: %s: %s\n", what, err_msg());
    exit(2);
}

typedef struct Enc {
    TextEncoder te;
    ModelConfig mc;
    const Vocab *vocab;
} Enc;

/* LSTM codes (n, E) of n texts (their first WORDS_NUM known words); known[i] = 0 for a text with none */
static void lstm_codes(Enc *x, char *const *texts, int n, float *out, int *known) {
    int T = x->mc.words_num, E = x->mc.embedding_dim;
    int64_t *caps = xcalloc((size_t)BATCH * T, sizeof(int64_t));
    int lens[BATCH];
    Tape tp;
    tape_init(&tp);
    for (int i0 = 0; i0 < n; i0 += BATCH) {
        int b = n - i0 < BATCH ? n - i0 : BATCH;
        memset(caps, 0, (size_t)BATCH * T * sizeof(int64_t));
        for (int j = 0; j < b; j++) {
            int64_t *ids = NULL;
            char *unk = NULL;
            int m = vocab_encode(x->vocab, texts[i0 + j], &ids, &unk);
            known[i0 + j] = m > 0;
            lens[j] = m > T ? T : m > 0 ? m : 1;
            for (int t = 0; t < lens[j] && m > 0; t++) caps[(size_t)j * T + t] = ids[t];
            free(ids);
            free(unk);
        }
        tape_reset(&tp);
        tape_no_grad_begin(&tp);
        Tensor *z = TNEW(&tp, b, x->mc.zsl_z);
        tensor_fill(z, 0.0f);
        TextEncoderOut o = text_encoder_forward(&tp, &x->te, caps, lens, b, z, NULL, NULL);
        tape_no_grad_end(&tp);
        tensor_download(o.sent_lstm, out + (size_t)i0 * E);
    }
    tape_free(&tp);
    free(caps);
}

/* the run's sentence codes (n, E) of LSTM codes (n, E), at zero noise; in place */
static void sent_codes(Enc *x, float *codes, int n) {
    int E = x->mc.embedding_dim;
    Tape tp;
    tape_init(&tp);
    for (int i0 = 0; i0 < n; i0 += BATCH) {
        int b = n - i0 < BATCH ? n - i0 : BATCH;
        tape_reset(&tp);
        tape_no_grad_begin(&tp);
        Tensor *h = TNEW(&tp, b, E), *z = TNEW(&tp, b, x->mc.zsl_z);
        tensor_upload(h, codes + (size_t)i0 * E);
        tensor_fill(z, 0.0f);
        Tensor *s = text_encoder_sent_code(&tp, &x->te, h, z);
        tape_no_grad_end(&tp);
        tensor_download(s, codes + (size_t)i0 * E);
    }
    tape_free(&tp);
}

static double cosine(const float *a, const float *b, int E) {
    double d = 0, na = 0, nb = 0;
    for (int e = 0; e < E; e++) d += (double)a[e] * b[e], na += (double)a[e] * a[e], nb += (double)b[e] * b[e];
    return d / fmax(sqrt(na * nb), 1e-8);
}

/* text-to-image top-1 over folds of FOLD (rows i of texts and imgs belong together, order shuffled) */
static double retrieval(const float *txt, const float *img, const int *order, int n, int E) {
    int hits = 0, total = 0;
    for (int f0 = 0; f0 + FOLD <= n; f0 += FOLD)
        for (int i = 0; i < FOLD; i++) {
            const float *s = txt + (size_t)order[f0 + i] * E;
            int best = -1;
            double bv = -2;
            for (int j = 0; j < FOLD; j++) {
                double c = cosine(s, img + (size_t)order[f0 + j] * E, E);
                if (c > bv) bv = c, best = j;
            }
            hits += best == i;
            total++;
        }
    return total ? (double)hits / total : 0.0;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: zsl_variants RUN DATA_BIRDS_DIR WIKIPEDIA_DIR [SEED]\n");
        return 2;
    }
    const char *run = argv[1];
    uint64_t seed = argc == 5 ? strtoull(argv[4], NULL, 10) : 2024;
    char path[4096];
    Cub cub;
    Wiki wiki;
    if (cub_open(&cub, argv[2])) die(argv[2]);
    if (wiki_open(&wiki, argv[3])) die(argv[3]);
    TrainConfig tc;
    train_config_default(&tc);
    snprintf(path, sizeof path, "%s/config.json", run);
    char *json = read_file_all(path, 1 << 20);
    if (!json || train_config_from_json(&tc, json)) die(path);
    free(json);
    Enc x;
    train_config_to_model(&tc, &x.mc);
    Vocab vocab;
    snprintf(path, sizeof path, "%s/vocab.txt", run);
    if (vocab_load(&vocab, path)) die(path);
    x.vocab = &vocab;
    x.mc.n_words = vocab.n;
    text_encoder_init(&x.te, &x.mc);
    snprintf(path, sizeof path, "%s/text_encoder.safetensors", run);
    if (nn_load_file(&x.te.ps, path, 0)) die(path);
    ImageEncoder ie;
    image_encoder_init(&ie, &x.mc);
    snprintf(path, sizeof path, "%s/image_encoder.safetensors", run);
    if (nn_load_file(&ie.ps, path, LOAD_PARTIAL | LOAD_IGNORE_UNEXPECTED | LOAD_NBT_OPTIONAL)) die(path);
    ie.train = 0;
    int E = x.mc.embedding_dim;
    /* the test photos' image codes from the cached trunk features */
    SafeTensors st;
    snprintf(path, sizeof path, "%s/cache/test_trunk.safetensors", run);
    if (st_open(&st, path)) die(path);
    const StTensor *tm = st_find(&st, "mixed"), *tpool = st_find(&st, "pool"), *ti = st_find(&st, "image_index");
    if (!tm || !tpool || !ti || tm->ndim != 4 || tpool->ndim != 2) {
        fprintf(stderr, "zsl_variants: %s: expected image_index, mixed (N, 768, 17, 17) and pool (N, 2048)\n", path);
        return 2;
    }
    int n = (int)ti->shape[0], C = (int)tm->shape[1], H = (int)tm->shape[2], W = (int)tm->shape[3], P = (int)tpool->shape[1];
    int64_t *index = xmalloc((size_t)n * sizeof(int64_t));
    if (st_read_i64(&st, "image_index", index, n)) die(path);
    float *mixed = xmalloc((size_t)n * C * H * W * sizeof(float)), *pool = xmalloc((size_t)n * P * sizeof(float));
    if (st_read_f32(&st, "mixed", mixed, (int64_t)n * C * H * W) || st_read_f32(&st, "pool", pool, (int64_t)n * P)) die(path);
    st_close(&st);
    float *img = xmalloc((size_t)n * E * sizeof(float));
    {
        Tape tp;
        tape_init(&tp);
        for (int i0 = 0; i0 < n; i0 += BATCH) {
            int b = n - i0 < BATCH ? n - i0 : BATCH;
            tape_reset(&tp);
            tape_no_grad_begin(&tp);
            Tensor *m = TNEW(&tp, b, C, H, W), *p = TNEW(&tp, b, P);
            tensor_upload(m, mixed + (size_t)i0 * C * H * W);
            tensor_upload(p, pool + (size_t)i0 * P);
            tensor_download(image_encoder_code(&tp, &ie, m, p), img + (size_t)i0 * E);
            tape_no_grad_end(&tp);
        }
        tape_free(&tp);
    }
    free(mixed);
    free(pool);
    /* captions, classes, and the retrieval order */
    char **cap = xmalloc((size_t)n * sizeof(char *));
    int *cls = xmalloc((size_t)n * sizeof(int)), *order = xmalloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) {
        if (index[i] < 0 || index[i] >= cub.test.n) { fprintf(stderr, "zsl_variants: image_index %lld out of the test split\n", (long long)index[i]); return 2; }
        const CubImage *im = &cub.test.images[index[i]];
        cap[i] = vocab_decode(&cub.vocab, im->caps[0], im->cap_len[0]);
        cls[i] = im->class_id;
        order[i] = i;
    }
    Rng rng;
    rng_init(&rng, seed);
    for (int i = n - 1; i > 0; i--) { /* Fisher-Yates with the seeded stream */
        float u;
        rng_uniform(&rng, &u, 1);
        int j = (int)(u * (float)(i + 1));
        if (j > i) j = i;
        int t = order[i];
        order[i] = order[j], order[j] = t;
    }
    float *cl = xmalloc((size_t)n * E * sizeof(float)), *txt = xmalloc((size_t)n * E * sizeof(float));
    int *known = xmalloc((size_t)n * sizeof(int));
    lstm_codes(&x, cap, n, cl, known);
    const int ks[4] = {0, 1, 3, 10};
    double top1[4];
    for (int q = 0; q < 4; q++) {
        int k = ks[q];
        memcpy(txt, cl, (size_t)n * E * sizeof(float));
        if (k > 0) { /* the caption's code averaged with k non-visual sentences of its class */
            for (int i = 0; i < n; i++) {
                char *const *sents;
                const WikiLabel *lab;
                int ns = wiki_sentences(&wiki, cls[i], &sents);
                if (ns <= 0 || wiki_labels(&wiki, cls[i], &lab) != ns) continue;
                char **pick = xmalloc((size_t)ns * sizeof(char *));
                int np = 0;
                for (int s = 0; s < ns; s++)
                    if (lab[s] == WIKI_LABEL_0) pick[np++] = sents[s];
                Rng r2;
                rng_init(&r2, seed * 1000003ull + (uint64_t)i * 31u + (uint64_t)k);
                int take = np < k ? np : k;
                for (int s = 0; s < take; s++) { /* a seeded choice without replacement */
                    float u;
                    rng_uniform(&r2, &u, 1);
                    int j = s + (int)(u * (float)(np - s));
                    if (j >= np) j = np - 1;
                    char *t = pick[s];
                    pick[s] = pick[j], pick[j] = t;
                }
                float *sc = xmalloc((size_t)(take ? take : 1) * E * sizeof(float));
                int *kn = xmalloc((size_t)(take ? take : 1) * sizeof(int));
                lstm_codes(&x, pick, take, sc, kn);
                int used = 1;
                float *row = txt + (size_t)i * E;
                for (int s = 0; s < take; s++)
                    if (kn[s]) {
                        used++;
                        for (int e = 0; e < E; e++) row[e] += sc[(size_t)s * E + e];
                    }
                for (int e = 0; e < E; e++) row[e] /= (float)used;
                free(sc);
                free(kn);
                free(pick);
            }
        }
        sent_codes(&x, txt, n);
        top1[q] = retrieval(txt, img, order, n, E);
    }
    /* GAZSL's zero-shot: prototypes of the classes with photos */
    int nc = 0, *classes = xmalloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int c = 0; c < nc && !seen; c++) seen = classes[c] == cls[i];
        if (!seen) classes[nc++] = cls[i];
    }
    float *proto = xcalloc((size_t)nc * E, sizeof(float));
    double zsl[2];
    for (int v = 0; v < 2; v++) {
        for (int c = 0; c < nc; c++) {
            char **texts = NULL;
            int nt = 0;
            if (v == 0) {
                char *const *sents;
                nt = wiki_sentences(&wiki, classes[c], &sents);
                if (nt < 0) nt = 0;
                texts = xmalloc((size_t)(nt ? nt : 1) * sizeof(char *));
                for (int s = 0; s < nt; s++) texts[s] = sents[s];
            } else {
                texts = xmalloc((size_t)cub.test.n * CUB_CAPTIONS_PER_IMAGE * sizeof(char *));
                for (int i = 0; i < cub.test.n; i++) {
                    const CubImage *im = &cub.test.images[i];
                    if (im->class_id != classes[c]) continue;
                    for (int k = 0; k < CUB_CAPTIONS_PER_IMAGE; k++)
                        if (im->cap_len[k] > 0) texts[nt++] = vocab_decode(&cub.vocab, im->caps[k], im->cap_len[k]);
                }
            }
            float *codes = xmalloc((size_t)(nt ? nt : 1) * E * sizeof(float));
            int *kn = xmalloc((size_t)(nt ? nt : 1) * sizeof(int)), used = 0;
            lstm_codes(&x, texts, nt, codes, kn);
            double *acc = xcalloc((size_t)E, sizeof(double));
            for (int s = 0; s < nt; s++)
                if (kn[s]) {
                    used++;
                    for (int e = 0; e < E; e++) acc[e] += codes[(size_t)s * E + e];
                }
            for (int e = 0; e < E; e++) proto[(size_t)c * E + e] = used ? (float)(acc[e] / used) : 0.0f;
            if (v == 1)
                for (int s = 0; s < nt; s++) free(texts[s]);
            free(texts);
            free(codes);
            free(kn);
            free(acc);
        }
        sent_codes(&x, proto, nc);
        int hits = 0;
        for (int i = 0; i < n; i++) {
            int best = -1;
            double bv = -2;
            for (int c = 0; c < nc; c++) {
                double s = cosine(img + (size_t)i * E, proto + (size_t)c * E, E);
                if (s > bv) bv = s, best = c;
            }
            hits += classes[best] == cls[i];
        }
        zsl[v] = (double)hits / n;
    }
    long long steps = 0;
    snprintf(path, sizeof path, "%s/checkpoints/latest", run);
    FILE *f = fopen(path, "r");
    char lbuf[256] = "";
    if (f) {
        if (fgets(lbuf, sizeof lbuf, f)) {
            char *p = strstr(lbuf, "step_");
            if (p) steps = atoll(p + 5);
        }
        fclose(f);
    }
    printf("| %s | %lld | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |\n", run, steps, top1[0], top1[1], top1[2], top1[3], zsl[0], zsl[1]);
    printf("(%d test photos of %d classes; retrieval folds of %d, chance %.3f; zero-shot chance %.3f; seed %llu)\n", n, nc, FOLD,
           1.0 / FOLD, 1.0 / nc, (unsigned long long)seed);
    return 0;
}
