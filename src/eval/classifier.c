/* classifier.c: the linear classifier of `attngan eval`; see classifier.h. */
#include "classifier.h"
#include "../core/core.h"
#include "../io/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

void classifier_split(const int *cls, int n, uint64_t seed, unsigned char *heldout) {
    int *idx = xmalloc((size_t)(n ? n : 1) * sizeof(int));
    memset(heldout, 0, (size_t)n);
    for (int i = 0; i < n; i++) {
        int first = 1;
        for (int j = 0; j < i && first; j++) first = cls[j] != cls[i];
        if (!first) continue;
        int m = 0;
        for (int j = i; j < n; j++)
            if (cls[j] == cls[i]) idx[m++] = j;
        Rng r;
        rng_init(&r, seed * 1000003ull + (uint64_t)(int64_t)cls[i]);
        for (int k = m - 1; k > 0; k--) {
            int j = (int)rng_below(&r, (uint32_t)k + 1), t = idx[k];
            idx[k] = idx[j];
            idx[j] = t;
        }
        int h = (int)floor(CLF_HELDOUT * m + 0.5);
        if (m >= 2) h = h < 1 ? 1 : h > m - 1 ? m - 1 : h;
        else h = 0;
        for (int k = 0; k < h; k++) heldout[idx[k]] = 1;
    }
    free(idx);
}

void classifier_init(Classifier *c, const int *classes, int C, int D) {
    memset(c, 0, sizeof *c);
    c->C = C;
    c->D = D;
    c->classes = xmalloc((size_t)C * sizeof(int));
    memcpy(c->classes, classes, (size_t)C * sizeof(int));
    qsort(c->classes, (size_t)C, sizeof(int), cmp_int);
    c->w = xcalloc((size_t)C * D, sizeof(double));
    c->b = xcalloc((size_t)C, sizeof(double));
    c->mean = xcalloc((size_t)D, sizeof(double));
    c->std = xmalloc((size_t)D * sizeof(double));
    for (int k = 0; k < D; k++) c->std[k] = 1;
    c->iterations = CLF_ITERATIONS;
    c->lr = CLF_LR;
    c->l2 = CLF_L2;
    snprintf(c->tight_pad, sizeof c->tight_pad, "none");
}

void classifier_free(Classifier *c) {
    free(c->w);
    free(c->b);
    free(c->mean);
    free(c->std);
    free(c->classes);
    free(c->train_photos);
    free(c->heldout_photos);
    memset(c, 0, sizeof *c);
}

int classifier_class_index(const Classifier *c, int class_id) {
    const int *p = bsearch(&class_id, c->classes, (size_t)c->C, sizeof(int), cmp_int);
    return p ? (int)(p - c->classes) : -1;
}

/* softmax of row i's logits: p (C); returns -log p[y] when y >= 0 */
static double logits_softmax(const Classifier *c, const double *z, double *p, int y) {
    double mx = -INFINITY;
    for (int k = 0; k < c->C; k++) {
        const double *w = c->w + (size_t)k * c->D;
        double s = c->b[k];
        for (int j = 0; j < c->D; j++) s += w[j] * z[j];
        p[k] = s;
        if (s > mx) mx = s;
    }
    double sum = 0;
    for (int k = 0; k < c->C; k++) sum += (p[k] = exp(p[k] - mx));
    for (int k = 0; k < c->C; k++) p[k] /= sum;
    return y >= 0 ? -(log(p[y] > 0 ? p[y] : 1e-300)) : 0;
}

int classifier_train(Classifier *c, const float *x, const int *y, int n, double *loss_out) {
    const int C = c->C, D = c->D;
    if (n < 1) return err_set("classifier_train: no training rows");
    int *yi = xmalloc((size_t)n * sizeof(int)), *count = xcalloc((size_t)C, sizeof(int));
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        yi[i] = classifier_class_index(c, y[i]);
        if (yi[i] < 0) rc = err_set("classifier_train: row %d has class %d, not one of the classifier's %d", i, y[i], C);
        else count[yi[i]]++;
        for (int k = 0; k < D && !rc; k++)
            if (!isfinite(x[(size_t)i * D + k])) rc = err_set("classifier_train: feature row %d column %d is %g", i, k, (double)x[(size_t)i * D + k]);
    }
    for (int k = 0; k < C && !rc; k++)
        if (!count[k]) rc = err_set("classifier_train: class %d has no training photo", c->classes[k]);
    free(count);
    if (rc) { free(yi); return rc; }
    /* standardisation */
#pragma omp parallel for schedule(static)
    for (int k = 0; k < D; k++) {
        double s = 0, s2 = 0;
        for (int i = 0; i < n; i++) s += x[(size_t)i * D + k];
        double m = s / n;
        for (int i = 0; i < n; i++) {
            double e = x[(size_t)i * D + k] - m;
            s2 += e * e;
        }
        double sd = sqrt(s2 / n);
        c->mean[k] = m;
        c->std[k] = sd < 1e-6 ? 1.0 : sd;
    }
    double *z = xmalloc((size_t)n * D * sizeof(double));
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        for (int k = 0; k < D; k++) z[(size_t)i * D + k] = (x[(size_t)i * D + k] - c->mean[k]) / c->std[k];
    memset(c->w, 0, (size_t)C * D * sizeof(double));
    memset(c->b, 0, (size_t)C * sizeof(double));
    double *r = xmalloc((size_t)n * C * sizeof(double)), *li = xmalloc((size_t)n * sizeof(double));
    double *gw = xmalloc((size_t)C * D * sizeof(double)), *gb = xmalloc((size_t)C * sizeof(double));
    double *mw = xcalloc((size_t)C * D, sizeof(double)), *vw = xcalloc((size_t)C * D, sizeof(double));
    double *mb = xcalloc((size_t)C, sizeof(double)), *vb = xcalloc((size_t)C, sizeof(double));
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    double loss = 0;
    for (int it = 1; it <= c->iterations + 1; it++) {
#pragma omp parallel for schedule(static)
        for (int i = 0; i < n; i++) {
            double *p = r + (size_t)i * C;
            li[i] = logits_softmax(c, z + (size_t)i * D, p, yi[i]);
            p[yi[i]] -= 1.0;
            for (int k = 0; k < C; k++) p[k] /= n;
        }
        double reg = 0;
        loss = 0;
        for (int i = 0; i < n; i++) loss += li[i];
        for (size_t j = 0; j < (size_t)C * D; j++) reg += c->w[j] * c->w[j];
        loss = loss / n + 0.5 * c->l2 * reg;
        if (it > c->iterations) break; /* the loss of the final weights */
#pragma omp parallel for schedule(static)
        for (int k = 0; k < C; k++) {
            double *g = gw + (size_t)k * D;
            const double *w = c->w + (size_t)k * D;
            for (int j = 0; j < D; j++) g[j] = c->l2 * w[j];
            double sb = 0;
            for (int i = 0; i < n; i++) {
                double rik = r[(size_t)i * C + k];
                const double *zi = z + (size_t)i * D;
                for (int j = 0; j < D; j++) g[j] += rik * zi[j];
                sb += rik;
            }
            gb[k] = sb;
        }
        double c1 = 1.0 - pow(b1, it), c2 = 1.0 - pow(b2, it);
#pragma omp parallel for schedule(static)
        for (int64_t j = 0; j < (int64_t)C * D; j++) {
            mw[j] = b1 * mw[j] + (1 - b1) * gw[j];
            vw[j] = b2 * vw[j] + (1 - b2) * gw[j] * gw[j];
            c->w[j] -= c->lr * (mw[j] / c1) / (sqrt(vw[j] / c2) + eps);
        }
        for (int k = 0; k < C; k++) {
            mb[k] = b1 * mb[k] + (1 - b1) * gb[k];
            vb[k] = b2 * vb[k] + (1 - b2) * gb[k] * gb[k];
            c->b[k] -= c->lr * (mb[k] / c1) / (sqrt(vb[k] / c2) + eps);
        }
    }
    if (loss_out) *loss_out = loss;
    free(yi);
    free(z);
    free(r);
    free(li);
    free(gw);
    free(gb);
    free(mw);
    free(vw);
    free(mb);
    free(vb);
    return 0;
}

void classifier_probs(const Classifier *c, const float *x, int n, double *p) {
    const int D = c->D;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        double *z = xmalloc((size_t)D * sizeof(double));
        for (int k = 0; k < D; k++) z[k] = (x[(size_t)i * D + k] - c->mean[k]) / c->std[k];
        logits_softmax(c, z, p + (size_t)i * c->C, -1);
        free(z);
    }
}

int classifier_top1(const Classifier *c, const double *p) {
    int best = 0;
    for (int k = 1; k < c->C; k++)
        if (p[k] > p[best]) best = k;
    return c->classes[best];
}

int classifier_save(const Classifier *c, const char *path) {
    StWriter *w = st_writer_new();
    const int C = c->C, D = c->D;
    float *tmp = xmalloc((size_t)C * D * sizeof(float));
    int64_t sh2[2] = {C, D}, shc[1] = {C}, shd[1] = {D};
    for (size_t j = 0; j < (size_t)C * D; j++) tmp[j] = (float)c->w[j];
    st_writer_add(w, "weight", ST_F32, 2, sh2, tmp);
    for (int k = 0; k < C; k++) tmp[k] = (float)c->b[k];
    st_writer_add(w, "bias", ST_F32, 1, shc, tmp);
    for (int k = 0; k < D; k++) tmp[k] = (float)c->mean[k];
    st_writer_add(w, "feature_mean", ST_F32, 1, shd, tmp);
    for (int k = 0; k < D; k++) tmp[k] = (float)c->std[k];
    st_writer_add(w, "feature_std", ST_F32, 1, shd, tmp);
    int32_t *cl = xmalloc((size_t)C * sizeof(int32_t));
    for (int k = 0; k < C; k++) cl[k] = c->classes[k];
    st_writer_add(w, "classes", ST_I32, 1, shc, cl);
    free(tmp);
    free(cl);
    char buf[64];
    st_writer_meta(w, "format", CLF_FORMAT);
    st_writer_meta(w, "features", "trunk pool (2048) and the spatial mean of Mixed_6e (768), standardised by feature_mean, feature_std");
    snprintf(buf, sizeof buf, "%d", c->image_size);
    st_writer_meta(w, "image_size", buf);
    st_writer_meta(w, "tight_crop_pad", c->tight_pad);
    st_writer_meta(w, "trunk", c->trunk);
    st_writer_meta(w, "trunk_hash", c->trunk_hash);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)c->seed);
    st_writer_meta(w, "seed", buf);
    snprintf(buf, sizeof buf, "%d", c->iterations);
    st_writer_meta(w, "iterations", buf);
    snprintf(buf, sizeof buf, "%.17g", c->lr);
    st_writer_meta(w, "lr", buf);
    snprintf(buf, sizeof buf, "%.17g", c->l2);
    st_writer_meta(w, "l2", buf);
    snprintf(buf, sizeof buf, "%.6f", c->train_acc);
    st_writer_meta(w, "train_accuracy", buf);
    snprintf(buf, sizeof buf, "%.6f", c->heldout_acc);
    st_writer_meta(w, "heldout_accuracy", buf);
    st_writer_meta(w, "train_photos", c->train_photos ? c->train_photos : "");
    st_writer_meta(w, "heldout_photos", c->heldout_photos ? c->heldout_photos : "");
    int rc = st_writer_write(w, path);
    st_writer_free(w);
    return rc;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; s && *s; s++) n += *s == '\n';
    return n;
}

int classifier_load(Classifier *c, const char *path) {
    memset(c, 0, sizeof *c);
    SafeTensors st;
    if (st_open(&st, path)) return -1;
    int rc = 0;
    const char *fmt = st_meta(&st, "format");
    const StTensor *w = st_find(&st, "weight");
    if (!fmt || strcmp(fmt, CLF_FORMAT)) rc = err_set("%s: metadata \"format\" must be \"%s\"", path, CLF_FORMAT);
    else if (!w || w->ndim != 2 || w->shape[0] < 2 || w->shape[1] != CLF_FEATURES)
        rc = err_set("%s: \"weight\" must be (classes >= 2, %d)", path, CLF_FEATURES);
    if (rc) { st_close(&st); return rc; }
    int C = (int)w->shape[0], D = (int)w->shape[1];
    int64_t *cl = xmalloc((size_t)C * sizeof(int64_t));
    float *tmp = xmalloc((size_t)C * D * sizeof(float));
    if (st_read_i64(&st, "classes", cl, C)) rc = err_prefix("%s: \"classes\" (%d class ids)", path, C);
    int *ci = xmalloc((size_t)C * sizeof(int));
    for (int k = 0; k < C; k++) ci[k] = (int)cl[k];
    classifier_init(c, ci, C, D);
    for (int k = 1; k < C && !rc; k++)
        if (ci[k] <= ci[k - 1]) rc = err_set("%s: \"classes\" must be ascending and distinct", path);
    if (!rc && st_read_f32(&st, "weight", tmp, (int64_t)C * D)) rc = err_prefix("%s: \"weight\"", path);
    for (size_t j = 0; !rc && j < (size_t)C * D; j++) c->w[j] = tmp[j];
    const char *vec[3] = {"bias", "feature_mean", "feature_std"};
    double *dst[3] = {c->b, c->mean, c->std};
    int len[3] = {C, D, D};
    for (int v = 0; v < 3 && !rc; v++) {
        if (st_read_f32(&st, vec[v], tmp, len[v])) rc = err_prefix("%s: \"%s\" (%d values)", path, vec[v], len[v]);
        for (int k = 0; !rc && k < len[v]; k++) {
            dst[v][k] = tmp[k];
            if (!isfinite(tmp[k]) || (v == 2 && !(tmp[k] > 0))) rc = err_set("%s: \"%s\"[%d] is %g", path, vec[v], k, (double)tmp[k]);
        }
    }
    const char *m;
    if (!rc && (!(m = st_meta(&st, "image_size")) || (c->image_size = atoi(m)) < 64))
        rc = err_set("%s: metadata \"image_size\" missing or below 64", path);
    if (!rc) {
        if ((m = st_meta(&st, "tight_crop_pad"))) snprintf(c->tight_pad, sizeof c->tight_pad, "%s", m);
        if ((m = st_meta(&st, "trunk"))) snprintf(c->trunk, sizeof c->trunk, "%s", m);
        if ((m = st_meta(&st, "trunk_hash"))) snprintf(c->trunk_hash, sizeof c->trunk_hash, "%s", m);
        if ((m = st_meta(&st, "seed"))) c->seed = strtoull(m, NULL, 10);
        if ((m = st_meta(&st, "iterations"))) c->iterations = atoi(m);
        if ((m = st_meta(&st, "lr"))) c->lr = atof(m);
        if ((m = st_meta(&st, "l2"))) c->l2 = atof(m);
        if ((m = st_meta(&st, "train_accuracy"))) c->train_acc = atof(m);
        if ((m = st_meta(&st, "heldout_accuracy"))) c->heldout_acc = atof(m);
        c->train_photos = xstrdup((m = st_meta(&st, "train_photos")) ? m : "");
        c->heldout_photos = xstrdup((m = st_meta(&st, "heldout_photos")) ? m : "");
        c->n_train = count_lines(c->train_photos);
        c->n_heldout = count_lines(c->heldout_photos);
    }
    free(cl);
    free(ci);
    free(tmp);
    st_close(&st);
    if (rc) classifier_free(c);
    return rc;
}
