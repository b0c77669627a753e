/* init.c: weight initialisation as PyTorch and AttnGAN do it; see init.h. */
#include "init.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK (OpenBLAS ships it): QR factorisation and the explicit Q. */
extern void sgeqrf_(const int *m, const int *n, float *a, const int *lda, float *tau, float *work, const int *lwork, int *info);
extern void sorgqr_(const int *m, const int *n, const int *k, float *a, const int *lda, const float *tau, float *work,
                    const int *lwork, int *info);

void init_uniform(Tensor *t, float lo, float hi, Rng *rng) { rng_uniform_range(rng, t->data, t->n, lo, hi); }

void init_orthogonal(Tensor *t, Rng *rng) {
    int rows = t->shape[0], cols = (int)(t->n / rows);
    int m = rows >= cols ? rows : cols, n = rows >= cols ? cols : rows; /* QR of an m x n matrix, m >= n */
    float *a = xmalloc((size_t)m * n * sizeof(float)), *tau = xmalloc((size_t)n * sizeof(float));
    rng_normal(rng, a, (int64_t)m * n, 0.0f, 1.0f);
    int lwork = -1, info = 0;
    float wq;
    sgeqrf_(&m, &n, a, &m, tau, &wq, &lwork, &info);
    lwork = (int)wq + 1;
    float *work = xmalloc((size_t)lwork * sizeof(float));
    sgeqrf_(&m, &n, a, &m, tau, work, &lwork, &info);
    CHECK(info == 0, "orthogonal init: sgeqrf info %d", info);
    float *sign = xmalloc((size_t)n * sizeof(float));
    for (int j = 0; j < n; j++) sign[j] = a[j + (size_t)j * m] < 0 ? -1.0f : 1.0f;
    sorgqr_(&m, &n, &n, a, &m, tau, work, &lwork, &info);
    CHECK(info == 0, "orthogonal init: sorgqr info %d", info);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) a[i + (size_t)j * m] *= sign[j];
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            t->data[(size_t)r * cols + c] = rows >= cols ? a[r + (size_t)c * rows] : a[c + (size_t)r * cols];
    free(a);
    free(tau);
    free(work);
    free(sign);
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* fan_in of the weight that a bias belongs to */
static int fan_in_of(const ParamSet *ps, const char *bias_name) {
    char w[512];
    snprintf(w, sizeof w, "%.*sweight", (int)(strlen(bias_name) - 4), bias_name);
    const ParamEntry *e = paramset_find(ps, w);
    if (!e || e->t.ndim < 2) return 0;
    return (int)(e->t.n / e->t.shape[0]);
}

void init_default(ParamSet *ps, Rng *rng) {
    for (int i = 0; i < ps->n; i++) {
        ParamEntry *e = ps->entries[i];
        Tensor *t = &e->t;
        if (e->kind == PARAM_BUFFER_I64) { e->ival = 0; continue; }
        if (e->kind == PARAM_BUFFER) {
            float v = ends_with(e->name, "running_var") ? 1.0f : 0.0f;
            for (int64_t k = 0; k < t->n; k++) t->data[k] = v;
            continue;
        }
        if (strstr(e->name, "rnn.")) { /* nn.LSTM: U(-1/sqrt(H), 1/sqrt(H)), H = hidden size */
            int H = strstr(e->name, "weight_hh") ? t->shape[1] : t->shape[0] / 4;
            init_uniform(t, -1.0f / sqrtf((float)H), 1.0f / sqrtf((float)H), rng);
        } else if (t->ndim == 1 && ends_with(e->name, "weight")) { /* BatchNorm */
            for (int64_t k = 0; k < t->n; k++) t->data[k] = 1.0f;
        } else if (t->ndim == 1 && ends_with(e->name, "bias")) {
            int fan = fan_in_of(ps, e->name);
            if (fan > 0) init_uniform(t, -1.0f / sqrtf((float)fan), 1.0f / sqrtf((float)fan), rng);
            else memset(t->data, 0, (size_t)t->n * sizeof(float)); /* BatchNorm bias */
        } else if (t->ndim >= 2) { /* Linear, Conv2d, Embedding (N(0,1) in PyTorch; callers override) */
            float b = 1.0f / sqrtf((float)(t->n / t->shape[0]));
            init_uniform(t, -b, b, rng);
        }
    }
}

void init_text_encoder(TextEncoder *te, Rng *rng) {
    init_default(&te->ps, rng);
    init_uniform(te->embedding, -0.1f, 0.1f, rng);
}

void init_image_encoder_heads(ImageEncoder *ie, Rng *rng) {
    init_uniform(ie->emb_features.weight, -0.1f, 0.1f, rng);
    init_uniform(ie->emb_cnn_code.weight, -0.1f, 0.1f, rng);
    float b = 1.0f / sqrtf(2048.0f);
    init_uniform(ie->emb_cnn_code.bias, -b, b, rng);
}

void init_zsl_d(ZslD *zd, Rng *rng) { init_default(&zd->ps, rng); }

void init_attngan(ParamSet *ps, Rng *rng) {
    init_default(ps, rng); /* buffers */
    for (int i = 0; i < ps->n; i++) {
        ParamEntry *e = ps->entries[i];
        if (e->kind != PARAM_WEIGHT) continue;
        Tensor *t = &e->t;
        if (t->ndim >= 2) init_orthogonal(t, rng);
        else if (ends_with(e->name, "bias")) {
            /* Linear biases are zeroed; Conv biases keep PyTorch's default (weights_init leaves them) */
            char w[512];
            snprintf(w, sizeof w, "%.*sweight", (int)(strlen(e->name) - 4), e->name);
            const ParamEntry *we = paramset_find(ps, w);
            if (!we || we->t.ndim == 2) memset(t->data, 0, (size_t)t->n * sizeof(float));
            else if (we->t.ndim != 4) memset(t->data, 0, (size_t)t->n * sizeof(float)); /* BatchNorm bias */
        } else rng_normal(rng, t->data, t->n, 1.0f, 0.02f); /* BatchNorm weight */
    }
}
