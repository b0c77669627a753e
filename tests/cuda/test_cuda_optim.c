/* test_cuda_optim.c: the CUDA twins of src/train/optim.c's loops (src/train/optim_cuda.h) against
 * the CPU functions themselves (make test-cuda; built only with CUDA=1): adam_step over a
 * parameter set with odd-sized weights, a frozen one and a prefix-scaled group, three steps, with
 * and without weight decay, the twin driven with the scalars adam_step computes; clip_grad_norm_sets
 * with a clipping and a non-clipping max_norm; ema_update.
 * Bounds: TOL_EW (1e-5) for Adam's values and moments, the clipped gradients and the EMA (the CPU's
 * arithmetic operation for operation, no FMA contraction, IEEE sqrt and division: expected to be
 * the CPU's bits); the total norm, a double sum in another order rounded to float, within
 * TOL_RED (1e-4). */
#include "cuda_test.h"
#include "../../src/train/optim.h"
#include "../../src/train/optim_cuda.h"

#include <math.h>

#define NP 4
static const int SIZES[NP] = {100003, 517, 33, 4099};
static const char *NAMES[NP] = {"g.w", "g.b", "d.w", "frozen.w"};

static void build(ParamSet *ps, const char *name, uint64_t seed) {
    paramset_init(ps, name);
    for (int i = 0; i < NP; i++) paramset_add(ps, NAMES[i], PARAM_WEIGHT, 1, &SIZES[i]);
    paramset_finalize(ps);
    ps->entries[NP - 1]->t.requires_grad = false;
    fill_uniform(ps->values, ps->n_values, -1, 1, seed);
}

/* the twin of one adam_step: adam_step's host scalars, adam_kernel_cuda per trainable weight */
static void adam_step_dev(Adam *a, float *dv, float *dm, float *dvv, const float *dg) {
    ParamSet *ps = a->ps;
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
        adam_kernel_cuda(dv + o, dm + o, dvv + o, dg + o, e->t.n, a->beta1, one_m_b1, a->beta2, one_m_b2,
                         pl && !strncmp(e->name, a->scale_prefix, pl) ? scaled_step : step_size, bc2_sqrt, a->eps,
                         a->weight_decay);
    }
}

static void adam_case(float wd) {
    ParamSet ps, ref;
    build(&ps, "net", 1);
    build(&ref, "ref", 1); /* the device run's step counter and scalars */
    Adam a, b;
    adam_init(&a, &ps, 2e-4f, 0.5f, 0.999f, 1e-8f);
    adam_init(&b, &ref, 2e-4f, 0.5f, 0.999f, 1e-8f);
    adam_set_prefix_scale(&a, "g.", 0.25f);
    adam_set_prefix_scale(&b, "g.", 0.25f);
    a.weight_decay = b.weight_decay = wd;
    int64_t n = ps.n_values;
    float *dv = up(ps.values, n), *dm = up(a.m, n), *dvv = up(a.v, n), *dg = cu_alloc((size_t)n * sizeof(float));
    for (int t = 0; t < 3; t++) {
        fill_uniform(ps.grads, n, -1e-2f, 1e-2f, 10 + t);
        cu_upload(dg, ps.grads, (size_t)n * sizeof(float));
        adam_step(&a);
        adam_step_dev(&b, dv, dm, dvv, dg);
    }
    char w[64];
    snprintf(w, sizeof w, "adam 3 steps wd=%g values", (double)wd), check(w, dv, ps.values, n, TOL_EW);
    snprintf(w, sizeof w, "adam 3 steps wd=%g exp_avg", (double)wd), check(w, dm, a.m, n, TOL_EW);
    snprintf(w, sizeof w, "adam 3 steps wd=%g exp_avg_sq", (double)wd), check(w, dvv, a.v, n, TOL_EW);
    cu_free(dg);
    adam_free(&a), adam_free(&b);
    paramset_free(&ps), paramset_free(&ref);
}

static void clip_case(float max_norm) {
    ParamSet ps;
    build(&ps, "net", 2);
    int64_t n = ps.n_values;
    fill_uniform(ps.grads, n, -0.1f, 0.1f, 20);
    float *dg = up(ps.grads, n);
    ParamSet *sets[1] = {&ps};
    float total = clip_grad_norm_sets(sets, 1, max_norm);
    double *dS = cu_alloc((size_t)NP * sizeof(double));
    float *dTC = cu_alloc(2 * sizeof(float));
    int k = 0;
    for (int i = 0; i < ps.n; i++) {
        ParamEntry *e = ps.entries[i];
        if (e->kind == PARAM_WEIGHT && e->t.requires_grad) sumsq_cuda(dS + k++, dg + e->offset, e->t.n);
    }
    clip_grad_coef_cuda(dTC, dS, k, max_norm);
    for (int i = 0; i < ps.n; i++) {
        ParamEntry *e = ps.entries[i];
        if (e->kind == PARAM_WEIGHT && e->t.requires_grad) clip_grad_scale_cuda(dg + e->offset, dTC + 1, e->t.n);
    }
    float tc[2];
    cu_download(tc, dTC, sizeof tc);
    double rel = fabs((double)tc[0] - total) / fmax(fabs((double)total), 1e-30);
    printf("  clip_grad_norm max_norm=%-6g total %.9g vs %.9g (rel %.2e), coef %.9g\n", (double)max_norm, (double)tc[0],
           (double)total, rel, (double)tc[1]);
    EXPECT(rel <= TOL_RED, "clip_grad_norm max_norm=%g: total %.9g vs %.9g", (double)max_norm, (double)tc[0], (double)total);
    EXPECT(max_norm < total ? tc[1] < 1.0f : tc[1] == 1.0f, "clip_grad_norm max_norm=%g: coef %g", (double)max_norm,
           (double)tc[1]);
    char w[64];
    snprintf(w, sizeof w, "clip_grad_norm max_norm=%g gradients", (double)max_norm), check(w, dg, ps.grads, n, TOL_EW);
    cu_free(dS), cu_free(dTC);
    paramset_free(&ps);
}

static void ema_case(float decay) {
    ParamSet ps, ema;
    build(&ps, "net", 3);
    build(&ema, "ema", 4);
    int64_t n = ps.n_values;
    float *dE = up(ema.values, n), *dP = up(ps.values, n);
    ema_update(&ema, &ps, decay);
    ema_kernel_cuda(dE, dP, n, decay);
    char w[64];
    snprintf(w, sizeof w, "ema_update decay=%g", (double)decay), check(w, dE, ema.values, n, TOL_EW);
    cu_free(dP);
    paramset_free(&ps), paramset_free(&ema);
}

int main(void) {
    if (!cuda_test_begin("test_cuda_optim")) return test_end();
    adam_case(0.0f);
    adam_case(0.01f);
    clip_case(0.05f);
    clip_case(1e3f);
    ema_case(0.999f);
    ema_case(0.5f);
    CuStats st = cu_stats();
    printf("  device memory: peak live %.1f MiB, %zu cudaMalloc calls\n", st.peak_live / 1048576.0, st.n_malloc);
    EXPECT(st.live == 0, "every device block was freed (%zu bytes live)", st.live);
    return test_end();
}
