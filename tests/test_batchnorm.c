/* test_batchnorm.c: batchnorm (train and eval modes) against PyTorch's nn.BatchNorm1d/2d fixtures
 * (output, running statistics, num_batches_tracked, dx/dgamma/dbeta), finite-difference
 * gradchecks in both modes, frozen gamma/beta, and thread-count independence. */
#include "test.h"
#include "../src/ops/batchnorm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-5

/* ---------------------------------------------------------------- PyTorch value cases */

static Tensor *fx_get(SafeTensors *fx, const char *name, const char *what, int with_grad) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", name, what);
    return fixture_tensor(fx, k, with_grad);
}

static float fx_cfg(SafeTensors *fx, const char *name, const char *what) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", name, what);
    return fixture_scalar(fx, k);
}

static int64_t fx_nbt(SafeTensors *fx, const char *name, const char *what) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", name, what);
    int64_t n, *v = fixture_i64(fx, k, &n);
    int64_t r = v[0];
    free(v);
    return r;
}

/* Compares got with the fixture tensor <name>.<what>. */
static void expect_fx(SafeTensors *fx, const char *name, const char *what, const float *got) {
    char msg[160];
    Tensor *want = fx_get(fx, name, what, 0);
    snprintf(msg, sizeof msg, "batchnorm %s %s", name, what);
    expect_close(msg, got, want->data, want->n, TOL);
    tensor_free(want);
}

/* One fixture case: forward, running statistics, then backward seeded with gout.
 * frozen: gamma and beta do not require grad (dx must still match, their grads stay zero). */
static void value_case(SafeTensors *fx, const char *name, int frozen) {
    int train = fx_cfg(fx, name, "train") != 0, affine = fx_cfg(fx, name, "affine") != 0;
    int track = fx_cfg(fx, name, "track") != 0;
    float eps = fx_cfg(fx, name, "eps"), momentum = fx_cfg(fx, name, "momentum");
    Tensor *x = fx_get(fx, name, "x", 1);
    Tensor *gamma = affine ? fx_get(fx, name, "gamma", 1) : NULL, *beta = affine ? fx_get(fx, name, "beta", 1) : NULL;
    Tensor *rm = track ? fx_get(fx, name, "rm0", 0) : NULL, *rv = track ? fx_get(fx, name, "rv0", 0) : NULL;
    int64_t nbt = track ? fx_nbt(fx, name, "nbt0") : 0;
    if (frozen && affine) gamma->requires_grad = beta->requires_grad = false;
    Tensor *gout = fx_get(fx, name, "gout", 0);

    Tape tp;
    tape_init(&tp);
    Tensor *y = op_batchnorm(&tp, x, gamma, beta, rm, rv, track ? &nbt : NULL, train, momentum, eps);
    char msg[160];
    snprintf(msg, sizeof msg, "batchnorm %s%s", name, frozen ? " (frozen gamma/beta)" : "");
    EXPECT(tensor_same_shape(y, x), "%s: output shape", msg);
    expect_fx(fx, name, "out", y->data);
    if (track) {
        expect_fx(fx, name, "rm1", rm->data);
        expect_fx(fx, name, "rv1", rv->data);
        int64_t want = fx_nbt(fx, name, "nbt1");
        EXPECT(nbt == want, "%s: num_batches_tracked %lld, want %lld", msg, (long long)nbt, (long long)want);
    }
    const float *seed = gout->data;
    tape_backward_seeded(&tp, 1, &y, &seed);
    expect_fx(fx, name, "gx", x->grad);
    if (affine && !frozen) {
        expect_fx(fx, name, "ggamma", gamma->grad);
        expect_fx(fx, name, "gbeta", beta->grad);
    }
    if (affine && frozen) {
        int64_t touched = 0;
        for (int64_t i = 0; i < gamma->n; i++) touched += (gamma->grad[i] != 0.0f) + (beta->grad[i] != 0.0f);
        EXPECT(touched == 0, "%s: %lld frozen gradient elements written", msg, (long long)touched);
    }
    tape_free(&tp);
    Tensor *all[] = {x, gamma, beta, rm, rv, gout};
    for (int i = 0; i < 6; i++) tensor_free(all[i]);
}

/* Running statistics are updated in train mode even without a gradient (no_grad, eval pipeline). */
static void no_grad_case(SafeTensors *fx) {
    const char *name = "train2d";
    Tensor *x = fx_get(fx, name, "x", 0), *gamma = fx_get(fx, name, "gamma", 0), *beta = fx_get(fx, name, "beta", 0);
    Tensor *rm = fx_get(fx, name, "rm0", 0), *rv = fx_get(fx, name, "rv0", 0);
    int64_t nbt = fx_nbt(fx, name, "nbt0");
    Tape tp;
    tape_init(&tp);
    tape_no_grad_begin(&tp);
    Tensor *y = op_batchnorm(&tp, x, gamma, beta, rm, rv, &nbt, 1, fx_cfg(fx, name, "momentum"), fx_cfg(fx, name, "eps"));
    tape_no_grad_end(&tp);
    EXPECT(!y->requires_grad && tp.n_nodes == 0, "batchnorm no_grad: nothing recorded");
    expect_fx(fx, name, "out", y->data);
    expect_fx(fx, name, "rm1", rm->data);
    expect_fx(fx, name, "rv1", rv->data);
    EXPECT(nbt == fx_nbt(fx, name, "nbt1"), "batchnorm no_grad: num_batches_tracked %lld", (long long)nbt);
    tape_free(&tp);
    Tensor *all[] = {x, gamma, beta, rm, rv};
    for (int i = 0; i < 5; i++) tensor_free(all[i]);
}

/* ---------------------------------------------------------------- gradchecks */

typedef struct BnCfg {
    int train;
    float eps;
} BnCfg;

/* in: x, gamma, beta, running_mean, running_var (the last two inputs without gradients, left
 * unchanged in train mode because they are not passed) */
static Tensor *fwd_bn(Tape *tp, Tensor **in, void *ctx) {
    const BnCfg *cfg = ctx;
    if (cfg->train) return op_batchnorm(tp, in[0], in[1], in[2], NULL, NULL, NULL, 1, 0.1f, cfg->eps);
    return op_batchnorm(tp, in[0], in[1], in[2], in[3], in[4], NULL, 0, 0.1f, cfg->eps);
}

static void gradcheck_shape(const char *name, int ndim, const int *shape, int train, float eps, uint64_t seed) {
    int C = shape[1];
    Tensor *x = tensor_alloc(ndim, shape, 1), *g = tensor_alloc(1, &C, 1), *b = tensor_alloc(1, &C, 1);
    Tensor *rm = tensor_alloc(1, &C, 0), *rv = tensor_alloc(1, &C, 0);
    fill_uniform(x->data, x->n, -1, 1, seed);
    fill_uniform(g->data, g->n, 0.5f, 1.5f, seed + 1);
    fill_uniform(b->data, b->n, -1, 1, seed + 2);
    fill_uniform(rm->data, rm->n, -0.3f, 0.3f, seed + 3);
    fill_uniform(rv->data, rv->n, 0.5f, 1.5f, seed + 4);
    BnCfg cfg = {train, eps};
    Tensor *in[5] = {x, g, b, rm, rv};
    char k[128];
    gradcheck(name, fwd_bn, 5, in, &cfg, NULL);
    snprintf(k, sizeof k, "%s affine=False", name);
    in[1] = in[2] = NULL;
    gradcheck(k, fwd_bn, 5, in, &cfg, NULL);
    /* frozen gamma/beta: dx still checked, their gradients untouched */
    in[1] = g;
    in[2] = b;
    g->requires_grad = b->requires_grad = false;
    memset(g->grad, 0, (size_t)C * sizeof(float));
    memset(b->grad, 0, (size_t)C * sizeof(float));
    snprintf(k, sizeof k, "%s frozen gamma/beta", name);
    gradcheck(k, fwd_bn, 5, in, &cfg, NULL);
    int64_t touched = 0;
    for (int c = 0; c < C; c++) touched += (g->grad[c] != 0.0f) + (b->grad[c] != 0.0f);
    EXPECT(touched == 0, "%s: %lld frozen gradient elements written", k, (long long)touched);
    Tensor *all[] = {x, g, b, rm, rv};
    for (int i = 0; i < 5; i++) tensor_free(all[i]);
}

/* ---------------------------------------------------------------- determinism across threads */

/* Output, running statistics and gradients are bitwise identical with 1 and 2 threads. */
static void thread_case(void) {
    int shape[4] = {4, 16, 24, 24}, C = 16;
    Tensor *x = tensor_alloc(4, shape, 1), *g = tensor_alloc(1, &C, 1), *b = tensor_alloc(1, &C, 1);
    Tensor *rm = tensor_alloc(1, &C, 0), *rv = tensor_alloc(1, &C, 0), *w = tensor_alloc(4, shape, 0);
    fill_uniform(x->data, x->n, -2, 3, 5);
    fill_uniform(g->data, C, 0.5f, 1.5f, 6);
    fill_uniform(b->data, C, -1, 1, 7);
    fill_uniform(w->data, w->n, -1, 1, 8);
    float *res[2][5];
    for (int t = 0; t < 2; t++) {
        threads_set(t + 1);
        memset(rm->data, 0, (size_t)C * sizeof(float));
        for (int c = 0; c < C; c++) rv->data[c] = 1.0f;
        memset(x->grad, 0, (size_t)x->n * sizeof(float));
        memset(g->grad, 0, (size_t)C * sizeof(float));
        memset(b->grad, 0, (size_t)C * sizeof(float));
        Tape tp;
        tape_init(&tp);
        Tensor *y = op_batchnorm(&tp, x, g, b, rm, rv, NULL, 1, 0.1f, 1e-5f);
        const float *seed = w->data;
        tape_backward_seeded(&tp, 1, &y, &seed);
        const float *src[5] = {y->data, rv->data, x->grad, g->grad, b->grad};
        int64_t len[5] = {y->n, C, x->n, C, C};
        for (int i = 0; i < 5; i++) {
            res[t][i] = xmalloc((size_t)len[i] * sizeof(float));
            memcpy(res[t][i], src[i], (size_t)len[i] * sizeof(float));
        }
        tape_free(&tp);
    }
    threads_set(0);
    int64_t len[5] = {x->n, C, x->n, C, C};
    int same = 1;
    for (int i = 0; i < 5; i++) {
        same &= memcmp(res[0][i], res[1][i], (size_t)len[i] * sizeof(float)) == 0;
        free(res[0][i]);
        free(res[1][i]);
    }
    EXPECT(same, "batchnorm: results with 1 and 2 threads differ");
    Tensor *all[] = {x, g, b, rm, rv, w};
    for (int i = 0; i < 6; i++) tensor_free(all[i]);
}

/* batchnorm_terms_probe (attngan parity's cancellation-aware gate): for its dbeta, the sums of
 * |dout| per channel over (N, S), accumulated by the caller; NULL: no call. */
static const float *g_probe_db;
static double g_probe_terms[8];
static int g_probe_calls;
static void probe(const float *dbeta, const double *t, int C) {
    g_probe_db = dbeta;
    for (int c = 0; c < C && c < 8; c++) g_probe_terms[c] = t[c];
    g_probe_calls++;
}

static void terms_probe_case(void) {
    enum { N = 2, C = 3, S = 5 };
    float x[N * C * S], dy[N * C * S], mean[C], rstd[C], g[C] = {1, 2, 3}, dg[C] = {0}, db[C] = {0}, dx[N * C * S] = {0};
    for (int i = 0; i < N * C * S; i++) x[i] = (float)((i * 37) % 11) - 5.0f, dy[i] = (float)((i * 13) % 7) - 3.0f;
    for (int c = 0; c < C; c++) mean[c] = 0.1f * c, rstd[c] = 1.0f + 0.1f * c;
    batchnorm_terms_probe = probe;
    batchnorm_backward(dx, dg, db, dy, mean, rstd, x, g, N, C, S, 1);
    batchnorm_terms_probe = NULL;
    int ok = g_probe_calls == 1 && g_probe_db == db;
    for (int c = 0; c < C; c++) {
        double a = 0, sum = 0;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < S; i++) a += fabs(dy[(n * C + c) * S + i]), sum += dy[(n * C + c) * S + i];
        ok &= fabs(g_probe_terms[c] - a) < 1e-9 && fabs(db[c] - sum) < 1e-4 && a >= fabs(sum);
    }
    EXPECT(ok, "terms probe: one call with dbeta's pointer and sum |dout| per channel (%d calls)", g_probe_calls);
    batchnorm_backward(dx, dg, db, dy, mean, rstd, x, g, N, C, S, 1);
    EXPECT(g_probe_calls == 1, "no probe call once it is NULL");
}

int main(void) {
    test_begin("test_batchnorm");
    terms_probe_case();
    SafeTensors *fx = fixture_open("batchnorm");
    if (fx) {
        const char *cases[] = {"train2d", "train1d_nc", "train1d_ncl", "noaffine", "eps3",
                               "notrack", "eval2d", "eval_eps3", "eval1d"};
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) value_case(fx, cases[i], 0);
        value_case(fx, "train2d", 1);
        value_case(fx, "eval2d", 1);
        no_grad_case(fx);
        fixture_close(fx);
    }
    gradcheck_shape("batchnorm train (N,C,H,W)", 4, (int[]){2, 3, 3, 4}, 1, 1e-5f, 11);
    gradcheck_shape("batchnorm train (N,C,L)", 3, (int[]){3, 4, 5}, 1, 1e-5f, 21);
    gradcheck_shape("batchnorm train (N,C)", 2, (int[]){6, 5}, 1, 1e-3f, 31);
    gradcheck_shape("batchnorm eval (N,C,H,W)", 4, (int[]){2, 3, 3, 4}, 0, 1e-5f, 41);
    gradcheck_shape("batchnorm eval (N,C)", 2, (int[]){6, 5}, 0, 1e-3f, 51);
    thread_case();
    return test_end();
}
