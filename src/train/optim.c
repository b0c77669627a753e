/* optim.c: Adam, gradient-norm clipping and EMA; see optim.h. */
#include "optim.h"
#include "../core/dist.h"

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

void adam_to_device(Adam *a, int dev) {
    if (a->device == dev) return;
    if (a->device != DEVICE_CPU && dev != DEVICE_CPU) adam_to_device(a, DEVICE_CPU);
    a->m = device_move(a->m, (size_t)a->ps->n_values * sizeof(float), a->device, dev);
    a->v = device_move(a->v, (size_t)a->ps->n_values * sizeof(float), a->device, dev);
    a->device = dev;
}

void adam_set_prefix_scale(Adam *a, const char *prefix, float scale) {
    CHECK(strlen(prefix) < sizeof a->scale_prefix, "adam_set_prefix_scale: prefix '%s' is too long", prefix);
    snprintf(a->scale_prefix, sizeof a->scale_prefix, "%s", prefix);
    a->prefix_scale = scale;
}

void adam_free(Adam *a) {
    if (a->device != DEVICE_CPU) {
        device_free(a->device, a->m);
        device_free(a->device, a->v);
    } else {
        free(a->m);
        free(a->v);
    }
    memset(a, 0, sizeof *a);
}

/* m, v, p, g: (n,) */
void adam_kernel(float *p, float *m, float *v, const float *g, int64_t n, float b1, float one_m_b1, float b2,
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
    CHECK(a->device == ps->device, "adam_step: the state of %s is on %s, its parameters on %s (adam_to_device)", ps->name,
          device_name(a->device), device_name(ps->device));
    dist_sync_grads(ps);   /* data-parallel: the ranks' mean gradient (a no-op in one process) */
    dist_sync_buffers(ps); /* and rank 0's running statistics (core/dist.h) */
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
        KERNEL(ps->device, adam_kernel, ps->values + o, a->m + o, a->v + o, (const float *)ps->grads + o, e->t.n, a->beta1,
               one_m_b1, a->beta2, one_m_b2, pl && !strncmp(e->name, a->scale_prefix, pl) ? scaled_step : step_size,
               bc2_sqrt, a->eps, a->weight_decay);
    }
}

/* out[0] = the sum of x[i]^2 (n), in double, in order */
void sumsq(double *out, const float *x, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    out[0] = s;
}

/* total_coef[0] = the norm of the n per-tensor norms sqrt(sumsq[k]) (each a float32 tensor in
 * PyTorch), total_coef[1] = min(1, (1 / (total + 1e-6)) * max_norm) */
void clip_grad_coef(float *total_coef, const double *sq, int n, float max_norm) {
    double total2 = 0;
    for (int k = 0; k < n; k++) {
        float norm_k = (float)sqrt(sq[k]);
        total2 += (double)norm_k * norm_k;
    }
    float total = (float)sqrt(total2);
    float coef = (1.0f / (total + 1e-6f)) * max_norm;
    if (coef > 1.0f) coef = 1.0f;
    total_coef[0] = total;
    total_coef[1] = coef;
}

/* g (n) *= coef[0] */
void clip_grad_scale(float *g, const float *coef, int64_t n) {
    float c = coef[0];
    for (int64_t i = 0; i < n; i++) g[i] *= c;
}

float clip_grad_norm(Tensor *const *ts, int n, float max_norm) {
    int dev = DEVICE_CPU, m = 0;
    for (int k = 0; k < n; k++)
        if (ts[k]->grad) {
            CHECK(m == 0 || ts[k]->device == dev, "clip_grad_norm: gradients on %s and %s", device_name(dev), device_name(ts[k]->device));
            dev = ts[k]->device;
            m++;
        }
    /* the per-tensor sums and the two scalars: host arrays on the CPU, device scratch elsewhere */
    double *sq = dev == DEVICE_CPU ? xmalloc((size_t)(m ? m : 1) * sizeof(double)) : device_alloc(dev, (size_t)(m ? m : 1) * sizeof(double));
    float tc_host[2], *tc = dev == DEVICE_CPU ? tc_host : device_alloc(dev, 2 * sizeof(float));
    for (int k = 0, j = 0; k < n; k++)
        if (ts[k]->grad) {
            double *sj = sq + j++;
            KERNEL(dev, sumsq, sj, (const float *)ts[k]->grad, ts[k]->n);
        }
    KERNEL(dev, clip_grad_coef, tc, (const double *)sq, m, max_norm);
    for (int k = 0; k < n; k++)
        if (ts[k]->grad) KERNEL(dev, clip_grad_scale, ts[k]->grad, (const float *)tc + 1, ts[k]->n);
    if (dev != DEVICE_CPU) {
        device_download(dev, tc_host, tc, 2 * sizeof(float));
        device_free(dev, tc);
        device_free(dev, sq);
    } else {
        free(sq);
    }
    return tc_host[0];
}

float clip_grad_norm_sets(ParamSet *const *sets, int n_sets, float max_norm) {
    int n = 0;
    for (int s = 0; s < n_sets; s++) {
        dist_sync_grads(sets[s]); /* clip the ranks' mean gradient, as one process would */
        n += sets[s]->n;
    }
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

/* ema (n) = ema * decay + (1 - decay) * p, the factor computed in double and applied in float */
void ema_kernel(float *ema, const float *p, int64_t n, float decay) {
    float keep = decay, take = (float)(1.0 - (double)decay);
#pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) ema[i] = ema[i] * keep + take * p[i];
}

void ema_update(ParamSet *ema, const ParamSet *ps, float decay) {
    CHECK(ema->n_values == ps->n_values, "ema_update: %s and %s differ in size", ema->name, ps->name);
    CHECK(ema->device == ps->device, "ema_update: %s is on %s, %s on %s", ema->name, device_name(ema->device), ps->name,
          device_name(ps->device));
    KERNEL(ps->device, ema_kernel, ema->values, (const float *)ps->values, ps->n_values, decay);
}
