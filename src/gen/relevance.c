/* relevance.c: the relevance centroids of gen.h, measured on the data; see relevance.h. */
#include "relevance.h"
#include "gen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The normalised mean of the unit LSTM codes of n texts (those with a known word); the count. */
static int mean_code(const TextEncoder *te, const Vocab *v, const char *const *texts, int n, float *out) {
    int E = te->cfg.embedding_dim, used = 0;
    float *codes = xmalloc((size_t)(n ? n : 1) * E * sizeof(float));
    int *known = xmalloc((size_t)(n ? n : 1) * sizeof(int));
    gen_lstm_codes(te, v, texts, n, codes, known);
    double *acc = xcalloc((size_t)E, sizeof(double));
    for (int i = 0; i < n; i++) {
        const float *h = codes + (size_t)i * E;
        double nn = 0;
        for (int e = 0; e < E; e++) nn += (double)h[e] * h[e];
        if (!known[i] || !(nn > 0)) continue;
        nn = sqrt(nn);
        for (int e = 0; e < E; e++) acc[e] += h[e] / nn;
        used++;
    }
    double nn = 0;
    for (int e = 0; e < E; e++) nn += acc[e] * acc[e];
    nn = sqrt(nn);
    for (int e = 0; e < E; e++) out[e] = nn > 0 ? (float)(acc[e] / nn) : 0.0f;
    free(acc);
    free(codes);
    free(known);
    return used;
}

/* gen.h's relevance centroids: one caption per training image (caption i mod 10) and the
 * training classes' Wikipedia sentences labelled 0 (not visual). */
int relevance_centroids(const TextEncoder *te, const Vocab *v, const Cub *cub, const Wiki *w, float *cap, float *noise,
                               int *n_cap, int *n_noise) {
    const CubSplit *sp = &cub->train;
    char **texts = xcalloc((size_t)sp->n, sizeof(char *));
    for (int i = 0; i < sp->n; i++) {
        const CubImage *im = &sp->images[i];
        int k = i % CUB_CAPTIONS_PER_IMAGE;
        texts[i] = vocab_decode(&cub->vocab, im->caps[k], im->cap_len[k]);
    }
    *n_cap = mean_code(te, v, (const char *const *)texts, sp->n, cap);
    for (int i = 0; i < sp->n; i++) free(texts[i]);
    free(texts);
    int nn = 0, capn = 0;
    const char **nz = NULL;
    for (int c = 0; c < sp->n_classes; c++) {
        const char **s0;
        int k = wiki_non_visual(w, sp->classes[c], &s0);
        if (k < 0) { free(nz); return -1; }
        if (nn + k > capn) nz = xrealloc(nz, (size_t)(capn = 2 * (nn + k)) * sizeof(char *));
        memcpy(nz + nn, s0, (size_t)k * sizeof(char *));
        nn += k;
        free(s0);
    }
    *n_noise = mean_code(te, v, nz, nn, noise);
    free(nz);
    if (!*n_cap || !*n_noise) return err_set("no training captions (%d) or no Wikipedia sentences labelled 0 (%d) with known words", *n_cap, *n_noise);
    return 0;
}

/* model.json's "relevance" object (gen.h): the two centroids to 6 digits and their counts. */
void relevance_add_json(cJSON *mj, const float *cap, const float *noise, int E, int n_cap, int n_noise) {
    cJSON *rel = cJSON_AddObjectToObject(mj, "relevance");
    cJSON_AddStringToObject(rel, "score", "known/tokens + cos(h, captions) - cos(h, noise)");
    cJSON_AddNumberToObject(rel, "n_captions", n_cap);
    cJSON_AddNumberToObject(rel, "n_noise", n_noise);
    const float *vecs[2] = {cap, noise};
    const char *keys[2] = {"captions", "noise"};
    for (int k = 0; k < 2; k++) {
        cJSON *arr = cJSON_AddArrayToObject(rel, keys[k]);
        for (int e = 0; e < E; e++) {
            char num[32];
            snprintf(num, sizeof num, "%.6g", (double)vecs[k][e]);
            cJSON_AddItemToArray(arr, cJSON_CreateNumber(strtod(num, NULL)));
        }
    }
}

int relevance_measure(const TextEncoder *te, const Vocab *v, const char *data, const char *wiki_dir, cJSON *mj) {
    Cub cub;
    if (cub_open(&cub, data)) return -1;
    char wbuf[2300];
    if (!wiki_dir) {
        snprintf(wbuf, sizeof wbuf, "%s/../wikipedia", data);
        wiki_dir = wbuf;
    }
    Wiki wiki;
    if (wiki_open(&wiki, wiki_dir)) {
        cub_close(&cub);
        return err_prefix("--wikipedia");
    }
    int E = te->cfg.embedding_dim, n_cap = 0, n_noise = 0;
    float *cap = xmalloc((size_t)E * sizeof(float)), *noise = xmalloc((size_t)E * sizeof(float));
    int rc = relevance_centroids(te, v, &cub, &wiki, cap, noise, &n_cap, &n_noise);
    if (!rc) relevance_add_json(mj, cap, noise, E, n_cap, n_noise);
    free(cap);
    free(noise);
    wiki_close(&wiki);
    cub_close(&cub);
    return rc;
}

