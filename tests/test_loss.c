/* test_loss.c: BCE (with the -100 log clamp at p = 0 and 1), BCE with logits and cross entropy
 * (with DAMSM-style -inf masked logits) against PyTorch fixtures: the 0-d loss and the gradient
 * of the loss; finite differences; the 0-d result shape and thread-count independence. */
#include "test.h"
#include "../src/ops/loss.h"
#include "../src/ops/softmax.h"

#include <stdlib.h>
#include <string.h>

typedef enum { L_BCE, L_BCE_LOGITS, L_CE, L_CE_MASKED } Kind;

typedef struct Ctx {
    Kind kind;
    const Tensor *y;        /* BCE targets; NULL: the second input (so that it moves to a device with it) */
    const int64_t *targets; /* cross-entropy targets */
    const uint8_t *mask;    /* L_CE_MASKED: masked_fill(-inf) before the loss */
} Ctx;

static Tensor *fwd(Tape *tp, Tensor **in, void *vctx) {
    const Ctx *c = vctx;
    switch (c->kind) {
    case L_BCE: return op_bce(tp, in[0], c->y ? c->y : in[1]);
    case L_BCE_LOGITS: return op_bce_logits(tp, in[0], c->y ? c->y : in[1]);
    case L_CE: return op_cross_entropy(tp, in[0], c->targets);
    case L_CE_MASKED: return op_cross_entropy(tp, op_masked_fill(tp, in[0], c->mask, -INFINITY), c->targets);
    }
    return NULL;
}

/* loss vs <name>.out and d loss / d input vs <name>.grad0 (tape_backward seeds 1) */
static void value_case(SafeTensors *fx, const char *name, Kind kind, const char *mask_key) {
    char k[128];
    snprintf(k, sizeof k, "%s.in0", name);
    Tensor *x = fixture_tensor(fx, k, 1);
    Ctx c = {kind, NULL, NULL, NULL};
    Tensor *y = NULL;
    int64_t *t = NULL, *mv = NULL;
    uint8_t *mask = NULL;
    snprintf(k, sizeof k, "%s.in1", name);
    if (kind == L_BCE || kind == L_BCE_LOGITS) c.y = y = fixture_tensor(fx, k, 0);
    else c.targets = t = fixture_i64(fx, k, NULL);
    if (mask_key) {
        int64_t m;
        mv = fixture_i64(fx, mask_key, &m);
        CHECK(m == x->n, "fixture mask %s: %lld elements", mask_key, (long long)m);
        mask = xmalloc((size_t)m);
        for (int64_t i = 0; i < m; i++) mask[i] = mv[i] != 0;
        c.mask = mask;
    }
    snprintf(k, sizeof k, "%s.out", name);
    Tensor *want = fixture_tensor(fx, k, 0);
    snprintf(k, sizeof k, "%s.grad0", name);
    Tensor *gwant = fixture_tensor(fx, k, 0);
    Tape tp;
    tape_init(&tp);
    Tensor *l = fwd(&tp, &x, &c);
    EXPECT(l->ndim == 0 && l->n == 1, "loss %s: 0-d result", name);
    snprintf(k, sizeof k, "loss %s value", name);
    expect_close(k, l->data, want->data, 1, 1e-5);
    tape_backward(&tp, l);
    snprintf(k, sizeof k, "loss %s grad", name);
    expect_close(k, x->grad, gwant->data, gwant->n, 1e-5);
    int finite = 1;
    for (int64_t i = 0; i < x->n; i++) finite &= isfinite(x->grad[i]);
    EXPECT(finite, "loss %s: finite gradient", name);
    tape_free(&tp);
    tensor_free(x);
    tensor_free(y);
    tensor_free(want);
    tensor_free(gwant);
    free(t);
    free(mv);
    free(mask);
}

static void fixture_tests(void) {
    SafeTensors *fx = fixture_open("loss");
    if (!fx) return;
    value_case(fx, "bce", L_BCE, NULL);
    value_case(fx, "bce_edge", L_BCE, NULL);
    value_case(fx, "bce_mix", L_BCE, NULL);
    value_case(fx, "bce_logits", L_BCE_LOGITS, NULL);
    value_case(fx, "ce", L_CE, NULL);
    value_case(fx, "damsm", L_CE_MASKED, "damsm.mask");
    value_case(fx, "damsm_t", L_CE_MASKED, "damsm.mask");
    fixture_close(fx);
}

static void gradchecks(void) {
    Tensor *p = tensor_alloc(2, (int[]){4, 6}, 1), *y = tensor_alloc(2, (int[]){4, 6}, 0);
    fill_uniform(p->data, p->n, 0.1f, 0.9f, 1);
    fill_uniform(y->data, y->n, 0, 1, 2);
    for (int i = 0; i < 12; i++) y->data[i] = y->data[i] < 0.5f ? 0.0f : 1.0f; /* hard and soft targets */
    Ctx bce = {L_BCE, NULL, NULL, NULL}, bcel = {L_BCE_LOGITS, NULL, NULL, NULL};
    GradcheckOpts small_h = {.h = 1e-3};
    gradcheck("bce", fwd, 2, (Tensor *[]){p, y}, &bce, &small_h);
    Tensor *x = tensor_alloc(2, (int[]){4, 6}, 1);
    fill_uniform(x->data, x->n, -4, 4, 3);
    gradcheck("bce_logits", fwd, 2, (Tensor *[]){x, y}, &bcel, NULL);
    /* cross entropy: plain, and with off-diagonal entries masked to -inf (DAMSM) */
    enum { B = 6 };
    Tensor *s = tensor_alloc(2, (int[]){B, B}, 1);
    fill_uniform(s->data, s->n, -3, 3, 4);
    int64_t t[B] = {0, 1, 2, 3, 4, 5}, t2[B] = {3, 3, 0, 5, 1, 2};
    Ctx ce = {L_CE, NULL, t2, NULL};
    gradcheck("cross_entropy", fwd, 1, &s, &ce, NULL);
    int cls[B] = {0, 1, 0, 2, 1, 0};
    uint8_t mask[B * B];
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++) mask[i * B + j] = i != j && cls[i] == cls[j];
    Ctx cem = {L_CE_MASKED, NULL, t, mask};
    gradcheck("cross_entropy -inf masked", fwd, 1, &s, &cem, NULL);
    tensor_free(p);
    tensor_free(y);
    tensor_free(x);
    tensor_free(s);
}

/* -inf logits get probability 0: exactly zero gradient; a row whose only finite logit is its
 * target contributes 0 to the loss. Also: a large problem (parallel kernels) gives the same
 * bits with one thread. */
static void inf_logits_and_threads(void) {
    Tensor *x = tensor_alloc(2, (int[]){2, 3}, 1);
    float v[6] = {1.0f, -INFINITY, 2.0f, -INFINITY, 0.5f, -INFINITY};
    memcpy(x->data, v, sizeof v);
    int64_t t[2] = {2, 1};
    Tape tp;
    tape_init(&tp);
    Tensor *l = op_cross_entropy(&tp, x, t);
    double want = 0.5 * (log(exp(1.0) + exp(2.0)) - 2.0);
    EXPECT(fabs(l->data[0] - want) < 1e-6, "cross entropy with -inf logits: %g, want %g", (double)l->data[0], want);
    tape_backward(&tp, l);
    EXPECT(x->grad[1] == 0.0f && x->grad[3] == 0.0f && x->grad[4] == 0.0f && x->grad[5] == 0.0f,
           "cross entropy: -inf logits and a certain row get zero gradient");
    tape_free(&tp);
    tensor_free(x);

    enum { N = 300, C = 250 };
    Tensor *z = tensor_alloc(2, (int[]){N, C}, 1);
    fill_uniform(z->data, z->n, -5, 5, 6);
    int64_t *tt = xmalloc(N * sizeof(int64_t));
    for (int i = 0; i < N; i++) tt[i] = (i * 31) % C;
    float loss[2], *g = xmalloc((size_t)2 * N * C * sizeof(float));
    for (int run = 0; run < 2; run++) {
        threads_set(run ? 1 : 0);
        memset(z->grad, 0, (size_t)z->n * sizeof(float));
        tape_init(&tp);
        l = op_cross_entropy(&tp, z, tt);
        loss[run] = l->data[0];
        tape_backward(&tp, l);
        memcpy(g + (size_t)run * N * C, z->grad, (size_t)N * C * sizeof(float));
        tape_free(&tp);
    }
    threads_set(0);
    EXPECT(loss[0] == loss[1] && memcmp(g, g + (size_t)N * C, (size_t)N * C * sizeof(float)) == 0,
           "cross entropy: same loss and gradient bits with 1 and %d threads", threads_get());
    free(g);
    free(tt);
    tensor_free(z);
}

/* A NaN probability (a diverged network) gives a NaN loss instead of aborting. */
static void nan_propagates(void) {
    Tape tp;
    tape_init(&tp);
    Tensor *p = tape_new(&tp, 1, (int[]){3}), *y = tape_new(&tp, 1, (int[]){3});
    p->data[0] = 0.5f; p->data[1] = NAN; p->data[2] = 0.25f;
    y->data[0] = 1.0f; y->data[1] = 0.0f; y->data[2] = 1.0f;
    Tensor *l = op_bce(&tp, p, y);
    EXPECT(isnan(l->data[0]), "bce of a NaN probability is %g, expected NaN", (double)l->data[0]);
    tape_free(&tp);
}

int main(void) {
    test_begin("test_loss");
    nan_propagates();
    fixture_tests();
    gradchecks();
    inf_logits_and_threads();
    return test_end();
}
