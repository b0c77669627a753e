/* optim.c: Adam, gradient-norm clipping and EMA; see optim.h. */
#include "optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void adam_init(Adam *a, ParamSet *ps, float lr, float beta1, float beta2, float eps) {
    CHECK(ps->finalized, "adam_init: paramset %s not finalized", ps->name);
    memset(a, 0, sizeof *a);
    a->ps = ps;
    a->lr = lr;
    a->beta1 = beta1;
    a->beta2 = beta2;
    a->eps = eps;
    a->m = xcalloc((size_t)ps->n_values, sizeof(float));
    a->v = xcalloc((size_t)ps->n_values, sizeof(float));
}

void adam_set_prefix_scale(Adam *a, const char *prefix, float scale) {
    CHECK(strlen(prefix) < sizeof a->scale_prefix, "adam_set_prefix_scale: prefix '%s' is too long", prefix);
    snprintf(a->scale_prefix, sizeof a->scale_prefix, "%s", prefix);
    a->prefix_scale = scale;
}

void adam_free(Adam *a) {
    free(a->m);
    free(a->v);
    memset(a, 0, sizeof *a);
}

/* m, v, p, g: (n,) */
static void adam_kernel(float *p, float *m, float *v, const float *g, int64_t n, float b1, float one_m_b1, float b2,
                        float one_m_b2, float step_size, float bc2_sqrt, float eps, float wd) {
#pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) {
        float gi = wd != 0.0f ? g[i] + wd * p[i] : g[i];
        m[i] = m[i] * b1 + one_m_b1 * gi;
        v[i] = v[i] * b2 + one_m_b2 * gi * gi;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] = p[i] + (-step_size) * (m[i] / denom);
    }
}

void adam_step(Adam *a) {
    ParamSet *ps = a->ps;
    CHECK(ps->grads || !ps->n_values, "adam_step: %s has no gradients (released; run a backward after paramset_zero_grad)",
          ps->name);
    a->step++;
    double bc1 = 1.0 - pow((double)a->beta1, (double)a->step);
    double bc2 = 1.0 - pow((double)a->beta2, (double)a->step);
    float step_size = (float)((double)a->lr / bc1);
    float scaled_step = (float)((double)a->lr * (double)a->prefix_scale / bc1);
    size_t pl = strlen(a->scale_prefix);
    float bc2_sqrt = (float)sqrt(bc2);
    float one_m_b1 = (float)(1.0 - (double)a->beta1), one_m_b2 = (float)(1.0 - (double)a->beta2);
    for (int i = 0; i < ps->n; i++) {
        ParamEntry *e = ps->entries[i];
        if (e->kind != PARAM_WEIGHT || !e->t.requires_grad) continue;
        int64_t o = e->offset;
        adam_kernel(ps->values + o, a->m + o, a->v + o, ps->grads + o, e->t.n, a->beta1, one_m_b1, a->beta2, one_m_b2,
                    pl && !strncmp(e->name, a->scale_prefix, pl) ? scaled_step : step_size, bc2_sqrt, a->eps, a->weight_decay);
    }
}

float clip_grad_norm(Tensor *const *ts, int n, float max_norm) {
    double total2 = 0;
    for (int k = 0; k < n; k++) {
        const Tensor *t = ts[k];
        if (!t->grad) continue;
        double s = 0;
        for (int64_t i = 0; i < t->n; i++) s += (double)t->grad[i] * t->grad[i];
        float norm_k = (float)sqrt(s); /* each norm is a float32 tensor in PyTorch */
        total2 += (double)norm_k * norm_k;
    }
    float total = (float)sqrt(total2);
    float coef = (1.0f / (total + 1e-6f)) * max_norm;
    if (coef > 1.0f) coef = 1.0f;
    for (int k = 0; k < n; k++) {
        const Tensor *t = ts[k];
        if (!t->grad) continue;
        for (int64_t i = 0; i < t->n; i++) t->grad[i] *= coef;
    }
    return total;
}

float clip_grad_norm_sets(ParamSet *const *sets, int n_sets, float max_norm) {
    int n = 0;
    for (int s = 0; s < n_sets; s++) n += sets[s]->n;
    Tensor **ts = xmalloc((size_t)(n ? n : 1) * sizeof *ts);
    int k = 0;
    for (int s = 0; s < n_sets; s++)
        for (int i = 0; i < sets[s]->n; i++) {
            ParamEntry *e = sets[s]->entries[i];
            if (e->kind == PARAM_WEIGHT && e->t.requires_grad) ts[k++] = &e->t;
        }
    float total = clip_grad_norm(ts, k, max_norm);
    free(ts);
    return total;
}

void ema_update(ParamSet *ema, const ParamSet *ps, float decay) {
    CHECK(ema->n_values == ps->n_values, "ema_update: %s and %s differ in size", ema->name, ps->name);
    float keep = decay, take = (float)(1.0 - (double)decay);
    float *e = ema->values;
    const float *p = ps->values;
    int64_t n = ps->n_values;
#pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) e[i] = e[i] * keep + take * p[i];
}
