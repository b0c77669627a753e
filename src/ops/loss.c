/* loss.c: mean losses on the CPU: nn.BCELoss (logs clamped at -100), nn.BCEWithLogitsLoss
 * (stable form) and F.cross_entropy with -inf logits (the DAMSM loss masks classes that way).
 *
 * Each op returns a 0-d tensor. Forward sums run serially in double (losses are small), so the
 * value does not depend on the thread count. Gradients follow PyTorch 1.13's formulas, including
 * BCE's max((1-p) p, 1e-12) denominator, which is not the derivative of the clamped loss.
 */
#include "loss.h"
#include "../core/profile.h"

#include <math.h>
#include <string.h>

#define BCE_EPS 1e-12f
#define BCE_LOG_MIN -100.0

/* ---------------------------------------------------------------- kernels */
void bce_forward(float *out, const float *p, const float *y, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        /* clamp at -100 as PyTorch, letting NaN through (fmax would turn NaN into -100) */
        double lp = log((double)p[i]), l1p = log1p(-(double)p[i]);
        lp = lp < BCE_LOG_MIN ? BCE_LOG_MIN : lp;
        l1p = l1p < BCE_LOG_MIN ? BCE_LOG_MIN : l1p;
        s += ((double)y[i] - 1.0) * l1p - (double)y[i] * lp;
    }
    out[0] = (float)(s / (double)n);
}

void bce_backward(float *dp, const float *dout, const float *p, const float *y, int64_t n) {
    if (!dp) return;
    float g = dout[0], fn = (float)n;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float den = fmaxf((1.0f - p[i]) * p[i], BCE_EPS);
        dp[i] += g * (p[i] - y[i]) / den / fn;
    }
}

void bce_logits_forward(float *out, const float *x, const float *y, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        double xi = x[i], m = fmax(-xi, 0.0);
        s += (1.0 - (double)y[i]) * xi + m + log(exp(-m) + exp(-xi - m));
    }
    out[0] = (float)(s / (double)n);
}

void bce_logits_backward(float *dx, const float *dout, const float *x, const float *y, int64_t n) {
    if (!dx) return;
    float g = dout[0], fn = (float)n;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float sig = 1.0f / (1.0f + expf(-x[i]));
        dx[i] += (sig - y[i]) * g / fn;
    }
}

/* logsumexp of one row (C) in double; -inf entries contribute 0; an all -inf row gives -inf */
static double row_logsumexp(const float *row, int C) {
    float mx = -INFINITY;
    for (int c = 0; c < C; c++)
        if (row[c] > mx || isnan(row[c])) mx = row[c];
    if (mx == -INFINITY) return -INFINITY;
    double s = 0;
    for (int c = 0; c < C; c++) s += exp((double)row[c] - mx);
    return mx + log(s);
}

void cross_entropy_forward(float *out, double *lse, const float *inp, const int64_t *targets, int N, int C) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C > 32768)
    for (int i = 0; i < N; i++) lse[i] = row_logsumexp(inp + (int64_t)i * C, C);
    double s = 0;
    for (int i = 0; i < N; i++) s += lse[i] - inp[(int64_t)i * C + targets[i]];
    out[0] = (float)(s / (double)N);
}

void cross_entropy_backward(float *dinp, const float *dout, const double *lse, const float *inp,
                            const int64_t *targets, int N, int C) {
    if (!dinp) return;
    float gn = dout[0] / (float)N;
#pragma omp parallel for schedule(static) if ((int64_t)N * C > 32768)
    for (int i = 0; i < N; i++) {
        const float *row = inp + (int64_t)i * C;
        float *d = dinp + (int64_t)i * C;
        for (int c = 0; c < C; c++) d[c] += gn * (float)exp((double)row[c] - lse[i]); /* exp(-inf) = 0 */
        d[targets[i]] -= gn;
    }
}

/* ---------------------------------------------------------------- tape ops */
static Tensor *loss_scalar(Tape *tp) { return tape_new(tp, 0, NULL); }

static void check_pair(const char *op, const Tensor *a, const Tensor *b) {
    char s1[64], s2[64];
    CHECK(tensor_same_shape(a, b), "%s: input %s and target %s differ", op, tensor_shape_str(a, s1, sizeof s1),
          tensor_shape_str(b, s2, sizeof s2));
    CHECK(a->n > 0, "%s: empty input", op);
}

/* the target tensor is not an input of the node (it gets no gradient); ctx keeps its data */
static void bce_bwd(Node *nd) {
    Tensor *p = nd->in[0], *l = nd->out[0];
    KERNEL(nd->tape->device, bce_backward, tensor_grad_or_null(p), l->grad, p->data, (const float *)nd->ctx, p->n);
}

static void bce_logits_bwd(Node *nd) {
    Tensor *x = nd->in[0], *l = nd->out[0];
    KERNEL(nd->tape->device, bce_logits_backward, tensor_grad_or_null(x), l->grad, x->data, (const float *)nd->ctx, x->n);
}

/* copy of a target tensor's data for backward, on the tape's device: the caller may reuse its
 * buffer before backward */
static void *save_copy(Tape *tp, const void *src, size_t bytes) {
    void *m = tape_dev_alloc(tp, bytes ? bytes : 1);
    device_copy(tp->device, m, src, bytes);
    return m;
}

/* the same for an array in host memory (class targets) */
static const void *save_host_copy(Tape *tp, const void *host, size_t bytes) {
    if (tp->device != DEVICE_CPU) return tape_dev_copy(tp, host, bytes);
    void *m = tape_alloc(tp, bytes ? bytes : 1);
    if (bytes) memcpy(m, host, bytes);
    return m;
}

Tensor *op_bce(Tape *tp, Tensor *p, const Tensor *y) {
    PROFILE_OP_BEGIN();
    check_pair("bce", p, y);
    /* Out of [0, 1] is a bug upstream (p comes from a sigmoid). NaN is let through, unlike
     * PyTorch, so that a diverging run yields a NaN loss the training loop reports by name. */
    for (int64_t i = 0; i < (tp->device == DEVICE_CPU ? p->n : 0); i++) /* (read on the host: the CPU's check) */
        CHECK(!(p->data[i] < 0.0f || p->data[i] > 1.0f || y->data[i] < 0.0f || y->data[i] > 1.0f),
              "bce: element %lld has input %g and target %g; both must be in [0, 1]", (long long)i, (double)p->data[i],
              (double)y->data[i]);
    Tensor *l = loss_scalar(tp);
    KERNEL(tp->device, bce_forward, l->data, p->data, y->data, p->n);
    Tensor *in[] = {p}, *out[] = {l};
    Node *nd = TAPE_RECORD(tp, "bce", bce_bwd, in, out);
    if (nd) nd->ctx = save_copy(tp, y->data, (size_t)y->n * sizeof(float));
    return l;
}

Tensor *op_bce_logits(Tape *tp, Tensor *x, const Tensor *y) {
    PROFILE_OP_BEGIN();
    check_pair("bce_logits", x, y);
    Tensor *l = loss_scalar(tp);
    KERNEL(tp->device, bce_logits_forward, l->data, x->data, y->data, x->n);
    Tensor *in[] = {x}, *out[] = {l};
    Node *nd = TAPE_RECORD(tp, "bce_logits", bce_logits_bwd, in, out);
    if (nd) nd->ctx = save_copy(tp, y->data, (size_t)y->n * sizeof(float));
    return l;
}

typedef struct CeCtx {
    double *lse;       /* (N) row logsumexp */
    int64_t *targets;  /* (N) copy */
} CeCtx;

static void cross_entropy_bwd(Node *nd) {
    Tensor *x = nd->in[0], *l = nd->out[0];
    const CeCtx *c = nd->ctx;
    KERNEL(nd->tape->device, cross_entropy_backward, tensor_grad_or_null(x), l->grad, c->lse, x->data, c->targets, x->shape[0], x->shape[1]);
}

Tensor *op_cross_entropy(Tape *tp, Tensor *x, const int64_t *targets) {
    PROFILE_OP_BEGIN();
    char s[64];
    CHECK(x->ndim == 2, "cross_entropy: logits must be 2-d (N, C), got %s", tensor_shape_str(x, s, sizeof s));
    int N = x->shape[0], C = x->shape[1];
    CHECK(N > 0 && C > 0, "cross_entropy: empty logits %s", tensor_shape_str(x, s, sizeof s));
    for (int i = 0; i < N; i++) {
        CHECK(targets[i] >= 0 && targets[i] < C, "cross_entropy: target %lld of row %d out of range for C = %d",
              (long long)targets[i], i, C);
        CHECK(tp->device != DEVICE_CPU || x->data[(int64_t)i * C + targets[i]] != -INFINITY, /* (the CPU's check) */ "cross_entropy: row %d has a -inf logit at its target %lld",
              i, (long long)targets[i]);
    }
    Tensor *l = loss_scalar(tp);
    double *lse = tape_dev_alloc(tp, (size_t)N * sizeof(double));
    const int64_t *tg = save_host_copy(tp, targets, (size_t)N * sizeof(int64_t)); /* backward reads it too */
    KERNEL(tp->device, cross_entropy_forward, l->data, lse, x->data, tg, N, C);
    Tensor *in[] = {x}, *out[] = {l};
    Node *nd = TAPE_RECORD(tp, "cross_entropy", cross_entropy_bwd, in, out);
    if (nd) {
        CeCtx *c = tape_alloc(tp, sizeof *c);
        c->lse = lse;
        c->targets = (int64_t *)tg;
        nd->ctx = c;
    }
    return l;
}
