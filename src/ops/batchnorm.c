/* batchnorm.c: batch normalisation over dim 1 (nn.BatchNorm1d / nn.BatchNorm2d), train and eval
 * modes, forward and backward on the CPU.
 *
 * Every input is viewed as (N, C, S) with S the product of the spatial dims (1 for (N, C)); a
 * channel's M = N * S elements are strided by C * S. The arithmetic follows PyTorch's CPU kernels:
 * per-channel sums accumulate in double, the output is x * alpha + shift with
 * alpha = rstd * gamma and shift = beta - mean * alpha, and the train-mode backward is
 * dx = (dy - mean(dy) - (x - mean) * dot(x - mean, dy) * rstd^2 / M) * rstd * gamma.
 * All loops run OpenMP-parallel over channels, each channel summed by one thread in a fixed order.
 */
#include "batchnorm.h"
#include "../core/profile.h"
#include "../core/device.h"
#include "../core/dist.h"

#include <math.h>
#include <stdlib.h>

/* Parallelise only when the work pays for the thread start-up. */
#define BN_PAR_MIN 32768

/* mean (C), var (C) <- per-channel batch mean and biased variance of inp (N, C, S) */
void batchnorm_stats(float *mean, float *var, const float *inp, int N, int C, int S) {
    int64_t M = (int64_t)N * S;
#pragma omp parallel for schedule(static) if ((int64_t)C * M > BN_PAR_MIN)
    for (int c = 0; c < C; c++) {
        double sum = 0.0;
        for (int n = 0; n < N; n++) {
            const float *x = inp + ((int64_t)n * C + c) * S; // (S)
            double part = 0.0;
#pragma omp simd reduction(+ : part)
            for (int i = 0; i < S; i++) part += x[i];
            sum += part;
        }
        float m = (float)(sum / (double)M);
        double sq = 0.0;
        for (int n = 0; n < N; n++) {
            const float *x = inp + ((int64_t)n * C + c) * S; // (S)
            double part = 0.0;
#pragma omp simd reduction(+ : part)
            for (int i = 0; i < S; i++) {
                float d = x[i] - m;
                part += d * d;
            }
            sq += part;
        }
        mean[c] = m;
        var[c] = (float)(sq / (double)M);
    }
}

/* running_mean (C), running_var (C) (either may be NULL) <- momentum update from mean, var (C) */
void batchnorm_update_running(float *running_mean, float *running_var, const float *mean, const float *var, int C,
                              int64_t M, float momentum) {
    double unbias = M > 1 ? (double)M / (double)(M - 1) : 1.0;
    for (int c = 0; c < C; c++) {
        if (running_mean) running_mean[c] = momentum * mean[c] + (1.0f - momentum) * running_mean[c];
        if (running_var)
            running_var[c] = (float)(momentum * ((double)var[c] * unbias) + (1.0f - momentum) * running_var[c]);
    }
}

/* out (N, C, S) = inp (N, C, S) * alpha + shift per channel; rstd (C) <- 1 / sqrt(var + eps) */
/* channel c's rstd = 1 / sqrt(var + eps); the output is x * alpha + shift */
static inline float channel_factors(float *alpha, float *shift, const float *mean, const float *var,
                                    const float *gamma, const float *beta, int c, float eps) {
    float r = (float)(1.0 / sqrt((double)var[c] + (double)eps));
    *alpha = r * (gamma ? gamma[c] : 1.0f);
    *shift = (beta ? beta[c] : 0.0f) - mean[c] * *alpha;
    return r;
}

void batchnorm_factors(float *alpha, float *shift, float *rstd, const float *mean, const float *var, const float *gamma,
                       const float *beta, int C, float eps) {
    for (int c = 0; c < C; c++) {
        float r = channel_factors(&alpha[c], &shift[c], mean, var, gamma, beta, c, eps);
        if (rstd) rstd[c] = r;
    }
}

void batchnorm_forward(float *out, float *rstd, const float *inp, const float *mean, const float *var,
                       const float *gamma, const float *beta, int N, int C, int S, float eps) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C * S > BN_PAR_MIN)
    for (int c = 0; c < C; c++) {
        float alpha, shift;
        float r = channel_factors(&alpha, &shift, mean, var, gamma, beta, c, eps);
        if (rstd) rstd[c] = r;
        for (int n = 0; n < N; n++) {
            int64_t off = ((int64_t)n * C + c) * S;
            for (int i = 0; i < S; i++) out[off + i] = inp[off + i] * alpha + shift;
        }
    }
}

/* sum (dy) and dot (x - mean, dy) over one channel's M elements, in double */
static void channel_sums(double *sum_dy, double *dot, const float *dout, const float *inp, float mean, int N, int C,
                         int S, int c) {
    double s = 0.0, d = 0.0;
    for (int n = 0; n < N; n++) {
        int64_t off = ((int64_t)n * C + c) * S;
        double ps = 0.0, pd = 0.0;
#pragma omp simd reduction(+ : ps, pd)
        for (int i = 0; i < S; i++) {
            float dy = dout[off + i];
            ps += dy;
            pd += (double)(inp[off + i] - mean) * dy;
        }
        s += ps;
        d += pd;
    }
    *sum_dy = s;
    *dot = d;
}

BnTermsProbe batchnorm_terms_probe = NULL;

/* dinp (N, C, S), dgamma (C), dbeta (C) += gradients of out = (inp - mean) * rstd * gamma + beta */
void batchnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *mean,
                        const float *rstd, const float *inp, const float *gamma, int N, int C, int S, int train) {
    int64_t M = (int64_t)N * S;
    BnTermsProbe probe = batchnorm_terms_probe;
    double *terms = probe && dbeta ? xcalloc((size_t)C, sizeof(double)) : NULL;
#pragma omp parallel for schedule(static) if ((int64_t)C * M > BN_PAR_MIN)
    for (int c = 0; c < C; c++) {
        double sum_dy, dot;
        float m = mean[c], r = rstd[c], w = gamma ? gamma[c] : 1.0f;
        channel_sums(&sum_dy, &dot, dout, inp, m, N, C, S, c);
        if (terms) {
            double a = 0;
            for (int n = 0; n < N; n++)
                for (int i = 0; i < S; i++) a += fabs((double)dout[((int64_t)n * C + c) * S + i]);
            terms[c] = a;
        }
        if (dgamma) dgamma[c] += (float)(dot * r);
        if (dbeta) dbeta[c] += (float)sum_dy;
        if (!dinp) continue;
        /* train: project out the components through the batch mean (gm) and variance (k) */
        float k = train ? (float)dot * r * r / (float)M : 0.0f;
        float gm = train ? (float)(sum_dy / (double)M) : 0.0f;
        float scale = r * w;
        for (int n = 0; n < N; n++) {
            int64_t off = ((int64_t)n * C + c) * S;
            for (int i = 0; i < S; i++)
                dinp[off + i] += (dout[off + i] - gm - (inp[off + i] - m) * k) * scale;
        }
    }
    if (terms) {
        probe(dbeta, terms, C);
        free(terms);
    }
}

/* sums (2C) <- per channel sum(dy) and dot(x - mean, dy), in double (channel_sums) */
void batchnorm_sums(double *sums, const float *dout, const float *inp, const float *mean, int N, int C, int S) {
#pragma omp parallel for schedule(static) if ((int64_t)C * N * S > BN_PAR_MIN)
    for (int c = 0; c < C; c++) channel_sums(&sums[2 * c], &sums[2 * c + 1], dout, inp, mean[c], N, C, S, c);
}

/* batchnorm_backward (train) with the channel sums given: dgamma, dbeta from this process's sums
 * `mine`, dinp through the mean and variance of Mg elements whose sums are `all` */
void batchnorm_backward_sums(float *dinp, float *dgamma, float *dbeta, const double *mine, const double *all, int64_t Mg,
                             const float *dout, const float *mean, const float *rstd, const float *inp, const float *gamma,
                             int N, int C, int S) {
#pragma omp parallel for schedule(static) if ((int64_t)C * N * S > BN_PAR_MIN)
    for (int c = 0; c < C; c++) {
        float m = mean[c], r = rstd[c], w = gamma ? gamma[c] : 1.0f;
        if (dgamma) dgamma[c] += (float)(mine[2 * c + 1] * r);
        if (dbeta) dbeta[c] += (float)mine[2 * c];
        if (!dinp) continue;
        float k = (float)all[2 * c + 1] * r * r / (float)Mg;
        float gm = (float)(all[2 * c] / (double)Mg);
        float scale = r * w;
        for (int n = 0; n < N; n++) {
            int64_t off = ((int64_t)n * C + c) * S;
            for (int i = 0; i < S; i++) dinp[off + i] += (dout[off + i] - gm - (inp[off + i] - m) * k) * scale;
        }
    }
}

/* Synchronised batch statistics (EXTRA.SYNC_BN): off, or on for every train-mode op_batchnorm of
 * this process, whose statistics and backward sums are then summed over the ranks (core/dist.h). */
static int g_sync_bn = 0;
void batchnorm_set_sync(int on) { g_sync_bn = on != 0; }
int batchnorm_get_sync(void) { return g_sync_bn; }

/* What the backward needs besides the inputs: the statistics the forward normalised with. */
typedef struct BatchnormCtx {
    float *mean, *rstd;  // (C), (C): copies, so later running-stat updates do not change them
    int N, C, S, train;
    int64_t sync_M;      // > 0: the statistics were the ranks' (sync_M elements per channel in all)
} BatchnormCtx;

/* n doubles on device dev summed over the ranks, in place (through the host off the CPU) */
static void ranks_sum(int dev, double *x, int n) {
    if (dev == DEVICE_CPU) { dist_sum_double(x, n); return; }
    double *h = xmalloc((size_t)n * sizeof(double));
    device_download(dev, h, x, (size_t)n * sizeof(double));
    dist_sum_double(h, n);
    device_upload(dev, x, h, (size_t)n * sizeof(double));
    free(h);
}

static void batchnorm_bwd(Node *nd) {
    Tensor *x = nd->in[0], *gamma = nd->in[1], *beta = nd->in[2], *y = nd->out[0];
    const BatchnormCtx *cx = nd->ctx;
    int dev = nd->tape->device;
    if (cx->sync_M > 0) { /* SyncBatchNorm: dx through the ranks' statistics; dgamma, dbeta this rank's */
        size_t b = (size_t)2 * cx->C * sizeof(double);
        double *mine = device_alloc(dev, b), *all = device_alloc(dev, b);
        KERNEL(dev, batchnorm_sums, mine, (const float *)y->grad, (const float *)x->data, (const float *)cx->mean, cx->N, cx->C, cx->S);
        device_copy(dev, all, mine, b);
        ranks_sum(dev, all, 2 * cx->C);
        KERNEL(dev, batchnorm_backward_sums, tensor_grad_or_null(x), tensor_grad_or_null(gamma), tensor_grad_or_null(beta),
               (const double *)mine, (const double *)all, cx->sync_M, (const float *)y->grad, (const float *)cx->mean,
               (const float *)cx->rstd, (const float *)x->data, gamma ? (const float *)gamma->data : NULL, cx->N, cx->C, cx->S);
        device_free(dev, mine);
        device_free(dev, all);
        return;
    }
    KERNEL(dev, batchnorm_backward, tensor_grad_or_null(x), tensor_grad_or_null(gamma), tensor_grad_or_null(beta), y->grad,
                       cx->mean, cx->rstd, x->data, gamma ? gamma->data : NULL, cx->N, cx->C, cx->S, cx->train);
}

/* The ranks' mean and biased variance from each rank's (C floats each on device dev, replaced in
 * place), with M elements per channel here; returns the elements per channel in all. */
static int64_t sync_stats(int dev, float *mean, float *var, int C, int64_t M) {
    float *hm = xmalloc((size_t)C * sizeof(float)), *hv = xmalloc((size_t)C * sizeof(float));
    device_download(dev, hm, mean, (size_t)C * sizeof(float));
    device_download(dev, hv, var, (size_t)C * sizeof(float));
    double *s = xmalloc((size_t)(2 * C + 1) * sizeof(double));
    for (int c = 0; c < C; c++) {
        s[c] = (double)hm[c] * (double)M;
        s[C + c] = ((double)hv[c] + (double)hm[c] * hm[c]) * (double)M;
    }
    s[2 * C] = (double)M;
    dist_sum_double(s, 2 * C + 1);
    double Mg = s[2 * C];
    for (int c = 0; c < C; c++) {
        double mu = s[c] / Mg, v = s[C + c] / Mg - mu * mu;
        hm[c] = (float)mu;
        hv[c] = (float)(v > 0 ? v : 0);
    }
    device_upload(dev, mean, hm, (size_t)C * sizeof(float));
    device_upload(dev, var, hv, (size_t)C * sizeof(float));
    free(hm);
    free(hv);
    free(s);
    return (int64_t)Mg;
}

/* CHECKs that t is NULL or a (C) vector. */
static void check_channel_vec(const Tensor *t, int C, const char *what, const Tensor *x) {
    char b1[64], b2[64];
    CHECK(!t || (t->ndim == 1 && t->shape[0] == C), "batchnorm: %s has shape %s, input %s needs (%d)", what,
          t ? tensor_shape_str(t, b1, sizeof b1) : "", tensor_shape_str(x, b2, sizeof b2), C);
}

Tensor *op_batchnorm(Tape *tp, Tensor *x, Tensor *gamma, Tensor *beta, Tensor *running_mean,
                     Tensor *running_var, int64_t *num_batches_tracked, int train, float momentum, float eps) {
    PROFILE_OP_BEGIN();
    char buf[64];
    CHECK(x->ndim >= 2 && x->ndim <= 4, "batchnorm: input %s must be (N, C), (N, C, L) or (N, C, H, W)",
          tensor_shape_str(x, buf, sizeof buf));
    int N = x->shape[0], C = x->shape[1];
    int S = (int)tensor_span(x, 2, x->ndim);
    int64_t M = (int64_t)N * S;
    check_channel_vec(gamma, C, "gamma", x);
    check_channel_vec(beta, C, "beta", x);
    check_channel_vec(running_mean, C, "running_mean", x);
    check_channel_vec(running_var, C, "running_var", x);
    CHECK(eps >= 0.0f, "batchnorm: eps %g must be >= 0", (double)eps);
    BatchnormCtx cx = {tape_dev_alloc(tp, (size_t)C * sizeof(float)), tape_dev_alloc(tp, (size_t)C * sizeof(float)), N, C, S,
                       train != 0, 0};
    float *var = tape_dev_alloc(tp, (size_t)C * sizeof(float)); // (C)
    if (train) {
        CHECK(M > 1, "batchnorm: train mode needs more than 1 value per channel, input %s",
              tensor_shape_str(x, buf, sizeof buf));
        KERNEL(tp->device, batchnorm_stats, cx.mean, var, x->data, N, C, S);
        int64_t Mu = M;
        if (g_sync_bn && dist_size() > 1) Mu = cx.sync_M = sync_stats(tp->device, cx.mean, var, C, M);
        KERNEL(tp->device, batchnorm_update_running, running_mean ? running_mean->data : NULL, running_var ? running_var->data : NULL,
                                 cx.mean, var, C, Mu, momentum);
        if (num_batches_tracked) ++*num_batches_tracked;
    } else {
        CHECK(running_mean && running_var, "batchnorm: eval mode needs running_mean and running_var");
        device_copy(tp->device, cx.mean, running_mean->data, (size_t)C * sizeof(float));
        device_copy(tp->device, var, running_var->data, (size_t)C * sizeof(float));
    }
    const float *xd = x->data;
    Tensor *y = tape_out_like(tp, x, tape_would_record(tp, 3, (Tensor *[]){x, gamma, beta})); /* may be x's buffer */
    KERNEL(tp->device, batchnorm_forward, y->data, cx.rstd, xd, cx.mean, var, gamma ? gamma->data : NULL,
                      beta ? beta->data : NULL, N, C, S, eps);
    Tensor *in[] = {x, gamma, beta}, *out[] = {y};
    Node *nd = TAPE_RECORD(tp, "batchnorm", batchnorm_bwd, in, out);
    if (nd) {
        BatchnormCtx *saved = tape_alloc(tp, sizeof *saved);
        *saved = cx;
        nd->ctx = saved;
    }
    return y;
}
