/* relevance_check: how well do the scores gen.c can give a sentence separate visual descriptions
 * from the rest of a noisy document? Measured on the Wikipedia articles' human visual labels
 * (sentences labelled 1 against those labelled 0) of the test classes, and on test captions
 * against test-class Wikipedia sentences labelled 0, as ROC AUC (0.5 = chance).
 * usage: relevance_check MODEL_DIR DATA_BIRDS_DIR WIKIPEDIA_DIR */
#include "../src/data/cub.h"
#include "../src/data/wikipedia.h"
#include "../src/gen/gen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { float s; int pos; } Item;
static int cmp_item(const void *a, const void *b) { float x = ((const Item *)a)->s, y = ((const Item *)b)->s; return (x > y) - (x < y); }
/* Mann-Whitney AUC with ties averaged */
static double auc(Item *it, int n) {
    qsort(it, (size_t)n, sizeof(Item), cmp_item);
    double rank_pos = 0; long npos = 0;
    for (int i = 0; i < n;) {
        int j = i;
        while (j < n && it[j].s == it[i].s) j++;
        double r = 0.5 * (i + j - 1) + 1;
        for (int k = i; k < j; k++) if (it[k].pos) rank_pos += r, npos++;
        i = j;
    }
    long nneg = n - npos;
    return (rank_pos - npos * (npos + 1) / 2.0) / ((double)npos * nneg);
}
static void unit(float *v, int E) { double s = 0; for (int e = 0; e < E; e++) s += (double)v[e] * v[e]; s = sqrt(s); for (int e = 0; e < E && s > 0; e++) v[e] /= (float)s; }
static float dot(const float *a, const float *b, int E) { double s = 0; for (int e = 0; e < E; e++) s += (double)a[e] * b[e]; return (float)s; }

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: relevance_check MODEL_DIR DATA_BIRDS_DIR WIKIPEDIA_DIR\n"); return 2; }
    GenModel m; Cub cub; Wiki w;
    if (gen_model_load(&m, argv[1]) || cub_open(&cub, argv[2]) || wiki_open(&w, argv[3])) { fprintf(stderr, "relevance_check: %s\n", err_msg()); return 2; }
    int E = m.mc.embedding_dim;
    /* is a class a training class? (AttnGAN's split = the easy split) */
    char *is_test = calloc(256, 1);
    for (int i = 0; i < cub.test.n_classes; i++) is_test[cub.test.classes[i]] = 1;
    /* texts: train captions (one per image), wiki sentences; label: 0 caption, 1 wiki */
    int cap = 0, n = 0;
    const char **texts = NULL; int *cls = NULL, *lab = NULL; /* lab: 2 = caption, 1/0 = wiki label, -1 other */
    char **owned = NULL; int n_owned = 0;
    #define PUSH(t, c, l) do { if (n == cap) { cap = cap ? 2 * cap : 1024; texts = realloc(texts, cap * sizeof *texts); cls = realloc(cls, cap * sizeof *cls); lab = realloc(lab, cap * sizeof *lab); } texts[n] = (t); cls[n] = (c); lab[n] = (l); n++; } while (0)
    const CubSplit *sps[2] = {&cub.train, &cub.test};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < sps[s]->n; i++) {
            const CubImage *im = &sps[s]->images[i];
            int k = i % CUB_CAPTIONS_PER_IMAGE;
            char *c = vocab_decode(&cub.vocab, im->caps[k], im->cap_len[k]);
            owned = realloc(owned, (n_owned + 1) * sizeof *owned); owned[n_owned++] = c;
            PUSH(c, im->class_id, 2);
        }
    for (int c = 1; c <= w.n_classes; c++) {
        const WikiClass *wc = wiki_class(&w, c);
        for (int i = 0; i < wc->n; i++)
            PUSH(wc->sentences[i], c, wc->labels[i] == WIKI_LABEL_1 ? 1 : wc->labels[i] == WIKI_LABEL_0 ? 0 : -1);
    }
    float *codes = malloc((size_t)n * E * sizeof(float));
    int *known = malloc((size_t)n * sizeof(int));
    gen_lstm_codes(&m.te, &m.vocab, texts, n, codes, known);
    for (int i = 0; i < n; i++) unit(codes + (size_t)i * E, E);
    /* centroids from training classes only */
    float *cc = calloc(E, sizeof(float)), *cn = calloc(E, sizeof(float));
    int ncc = 0, ncn = 0;
    for (int i = 0; i < n; i++) {
        if (is_test[cls[i]] || !known[i]) continue;
        if (lab[i] == 2) { for (int e = 0; e < E; e++) cc[e] += codes[(size_t)i * E + e]; ncc++; }
        if (lab[i] == 0) { for (int e = 0; e < E; e++) cn[e] += codes[(size_t)i * E + e]; ncn++; }
    }
    unit(cc, E); unit(cn, E);
    printf("centroids from training classes: %d captions, %d Wikipedia sentences labelled 0\n", ncc, ncn);
    const char *names[6] = {"cos(h, captions)", "cos(h, captions) - cos(h, wiki0)", "known-word fraction", "fraction + 0.5 (cos_c - cos_n)", "fraction + 1 (cos_c - cos_n)", "fraction + 2 (cos_c - cos_n)"};
    const float alpha[6] = {0, 0, 0, 0.5f, 1.0f, 2.0f};
    for (int task = 0; task < 2; task++) {
        Item *it = malloc((size_t)n * sizeof(Item));
        for (int sc = 0; sc < 6; sc++) {
            int k = 0, np = 0;
            for (int i = 0; i < n; i++) {
                if (!is_test[cls[i]] || lab[i] < 0) continue;
                int pos;
                if (task == 0) { if (lab[i] == 2) continue; pos = lab[i] == 1; }
                else { if (lab[i] == 1) continue; pos = lab[i] == 2; }
                char **tok; int nt = text_tokenize(texts[i], &tok); text_free_tokens(tok, nt);
                const float *h = codes + (size_t)i * E;
                float frac = nt ? (float)known[i] / nt : 0, diff = dot(h, cc, E) - dot(h, cn, E);
                float s = sc == 0 ? dot(h, cc, E) : sc == 1 ? diff : sc == 2 ? frac : frac + alpha[sc] * diff;
                if (!known[i] && sc != 2) s = -2;
                it[k++] = (Item){s, pos}; np += pos;
            }
            printf("%s: %-34s AUC %.3f  (%d positive, %d negative)\n", task == 0 ? "test-class wiki, label 1 vs 0  " : "test captions vs wiki label 0  ",
                   names[sc], auc(it, k), np, k - np);
        }
        free(it);
    }
    return 0;
}
