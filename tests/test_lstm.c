/* test_lstm.c: the bidirectional packed LSTM (op_bilstm) against PyTorch fixtures
 * (tests/fixtures/gen_lstm.py), finite differences over x and all 8 weights, frozen weights,
 * no-grad mode and determinism. */
#include "test.h"
#include "../src/ops/lstm.h"
#include "../src/ops/shape.h"

#include <stdlib.h>
#include <string.h>

#define NIN 9 /* x, then w_ih, w_hh, b_ih, b_hh of the forward and of the reverse direction */
static const char *const IN_NAMES[NIN] = {"x", "f.w_ih", "f.w_hh", "f.b_ih", "f.b_hh",
                                          "r.w_ih", "r.w_hh", "r.b_ih", "r.b_hh"};

/* What the forward wrappers return: out, h_n, or both flattened into one vector. */
enum { RET_OUT, RET_HN, RET_BOTH };
typedef struct Ctx {
    const int *lens;
    int ret;
} Ctx;

static Tensor *run_bilstm(Tape *tp, Tensor **in, const int *lens, Tensor **h_n) {
    LstmWeights f = {in[1], in[2], in[3], in[4]}, r = {in[5], in[6], in[7], in[8]};
    return op_bilstm(tp, in[0], lens, &f, &r, h_n);
}

/* y (na + nb) = [a flattened, b flattened], so one gradcheck sees both outputs (real ops, so that
 * it runs on any device). */
static Tensor *cat2(Tape *tp, Tensor *a, Tensor *b) {
    Tensor *fa = op_reshape(tp, a, 1, (int[]){(int)a->n}), *fb = op_reshape(tp, b, 1, (int[]){(int)b->n});
    return op_concat(tp, 2, (Tensor *[]){fa, fb}, 0);
}

static Tensor *fwd_bilstm(Tape *tp, Tensor **in, void *ctx) {
    const Ctx *c = ctx;
    Tensor *h_n, *y = run_bilstm(tp, in, c->lens, &h_n);
    return c->ret == RET_OUT ? y : c->ret == RET_HN ? h_n : cat2(tp, y, h_n);
}

/* ---------------------------------------------------------------- fixtures */

typedef struct Case {
    Tensor *in[NIN];
    int *lens;
    Tensor *out, *h_n, *gout, *gh_n;
} Case;

static Tensor *fx_get(SafeTensors *fx, const char *name, const char *key, int with_grad) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", name, key);
    return fixture_tensor(fx, k, with_grad);
}

static void case_load(Case *c, SafeTensors *fx, const char *name) {
    for (int i = 0; i < NIN; i++) c->in[i] = fx_get(fx, name, IN_NAMES[i], 1);
    char k[128];
    snprintf(k, sizeof k, "%s.lens", name);
    int64_t n, *l = fixture_i64(fx, k, &n);
    c->lens = xmalloc((size_t)n * sizeof(int));
    for (int64_t b = 0; b < n; b++) c->lens[b] = (int)l[b];
    free(l);
    c->out = fx_get(fx, name, "out", 0);
    c->h_n = fx_get(fx, name, "h_n", 0);
    c->gout = fx_get(fx, name, "gout", 0);
    c->gh_n = fx_get(fx, name, "gh_n", 0);
}

static void case_free(Case *c) {
    for (int i = 0; i < NIN; i++) tensor_free(c->in[i]);
    tensor_free(c->out), tensor_free(c->h_n), tensor_free(c->gout), tensor_free(c->gh_n);
    free(c->lens);
}

static void zero_grads(Case *c) {
    for (int i = 0; i < NIN; i++) memset(c->in[i]->grad, 0, (size_t)c->in[i]->n * sizeof(float));
}

/* Forward, then backward seeded with gout and gh_n; compares values and the gradient of every
 * input that requires grad; inputs that do not must keep a zero gradient buffer. */
static void value_case(SafeTensors *fx, const char *name, const char *variant) {
    Case c;
    case_load(&c, fx, name);
    int frozen_w = !strcmp(variant, "frozen weights"), frozen_x = !strcmp(variant, "frozen x");
    for (int i = 0; i < NIN; i++) c.in[i]->requires_grad = i == 0 ? !frozen_x : !frozen_w;
    zero_grads(&c);
    Tape tp;
    tape_init(&tp);
    Tensor *h_n, *y = run_bilstm(&tp, c.in, c.lens, &h_n);
    char k[160];
    EXPECT(tensor_same_shape(y, c.out) && tensor_same_shape(h_n, c.h_n), "bilstm %s: output shapes", name);
    snprintf(k, sizeof k, "bilstm %s (%s) out", name, variant);
    expect_close(k, y->data, c.out->data, c.out->n, 1e-5);
    snprintf(k, sizeof k, "bilstm %s (%s) h_n", name, variant);
    expect_close(k, h_n->data, c.h_n->data, c.h_n->n, 1e-5);
    Tensor *outs[] = {y, h_n};
    const float *seeds[] = {c.gout->data, c.gh_n->data};
    tape_backward_seeded(&tp, 2, outs, seeds);
    for (int i = 0; i < NIN; i++) {
        Tensor *want = fx_get(fx, name, i == 0 ? "grad.x" : (snprintf(k, sizeof k, "grad.%s", IN_NAMES[i]), k), 0);
        char what[160];
        snprintf(what, sizeof what, "bilstm %s (%s) grad %s", name, variant, IN_NAMES[i]);
        if (c.in[i]->requires_grad) {
            expect_close(what, c.in[i]->grad, want->data, want->n, 1e-5);
        } else {
            int64_t touched = 0;
            for (int64_t e = 0; e < c.in[i]->n; e++) touched += c.in[i]->grad[e] != 0.0f;
            EXPECT(touched == 0, "%s: frozen, but %lld gradient elements written", what, (long long)touched);
        }
        tensor_free(want);
    }
    tape_free(&tp);
    case_free(&c);
}

/* ---------------------------------------------------------------- gradcheck and properties */

/* Small random problem: B = 3, T = 5 (> max len), I = 4, H = 3, unsorted lens. */
static void small_inputs(Tensor **in) {
    const int I = 4, H = 3;
    int shapes[NIN][3] = {{3, 5, I}, {4 * H, I}, {4 * H, H}, {4 * H}, {4 * H}, {4 * H, I}, {4 * H, H}, {4 * H}, {4 * H}};
    for (int i = 0; i < NIN; i++) {
        int nd = i == 0 ? 3 : (i % 4 == 3 || i % 4 == 0) ? 1 : 2;
        in[i] = tensor_alloc(nd, shapes[i], 1);
        in[i]->name = IN_NAMES[i];
        fill_uniform(in[i]->data, in[i]->n, i == 0 ? -1.0f : -0.7f, i == 0 ? 1.0f : 0.7f, 10 + (uint64_t)i);
    }
}

static const int SMALL_LENS[3] = {3, 4, 1};

static void gradchecks(void) {
    Tensor *in[NIN];
    small_inputs(in);
    GradcheckOpts o = {.max_elems = -1};
    Ctx both = {SMALL_LENS, RET_BOTH}, out_only = {SMALL_LENS, RET_OUT}, hn_only = {SMALL_LENS, RET_HN};
    gradcheck("bilstm out+h_n", fwd_bilstm, NIN, in, &both, &o);
    gradcheck("bilstm out", fwd_bilstm, NIN, in, &out_only, &o);
    gradcheck("bilstm h_n", fwd_bilstm, NIN, in, &hn_only, &o);
    /* no biases (nn.LSTM(bias=False)) */
    Tensor *saved[4] = {in[3], in[4], in[7], in[8]};
    in[3] = in[4] = in[7] = in[8] = NULL;
    gradcheck("bilstm no bias", fwd_bilstm, NIN, in, &both, &o);
    in[3] = saved[0], in[4] = saved[1], in[7] = saved[2], in[8] = saved[3];
    /* frozen weights: dx still flows, weight gradients untouched */
    for (int i = 1; i < NIN; i++) {
        in[i]->requires_grad = false;
        memset(in[i]->grad, 0, (size_t)in[i]->n * sizeof(float));
    }
    gradcheck("bilstm frozen weights", fwd_bilstm, NIN, in, &both, &o);
    int64_t touched = 0;
    for (int i = 1; i < NIN; i++)
        for (int64_t e = 0; e < in[i]->n; e++) touched += in[i]->grad[e] != 0.0f;
    EXPECT(touched == 0, "bilstm frozen weights: %lld weight gradient elements written", (long long)touched);
    for (int i = 0; i < NIN; i++) tensor_free(in[i]);
}

/* Same inputs twice: bitwise equal outputs and gradients; under no-grad: same values, nothing
 * recorded; padding of out is zero and x's steps past lens get no gradient. */
static void properties(void) {
    Tensor *in[NIN];
    small_inputs(in);
    float *first[NIN + 1];
    int same = 1;
    for (int rep = 0; rep < 2; rep++) {
        Tape tp;
        tape_init(&tp);
        for (int i = 0; i < NIN; i++) memset(in[i]->grad, 0, (size_t)in[i]->n * sizeof(float));
        Tensor *h_n, *y = run_bilstm(&tp, in, SMALL_LENS, &h_n);
        Tensor *cat = cat2(&tp, y, h_n);
        float *w = xmalloc((size_t)cat->n * sizeof(float));
        fill_uniform(w, cat->n, -1, 1, 99);
        const float *seed = w;
        tape_backward_seeded(&tp, 1, &cat, &seed);
        for (int i = 0; i <= NIN; i++) {
            const float *v = i < NIN ? in[i]->grad : cat->data;
            int64_t n = i < NIN ? in[i]->n : cat->n;
            if (rep == 0) {
                first[i] = xmalloc((size_t)n * sizeof(float));
                memcpy(first[i], v, (size_t)n * sizeof(float));
            } else {
                same &= memcmp(first[i], v, (size_t)n * sizeof(float)) == 0;
                free(first[i]);
            }
        }
        if (rep == 0) {
            int64_t pad = 0, dpad = 0;
            int Lmax = y->shape[1], H2 = y->shape[2];
            for (int b = 0; b < 3; b++) {
                for (int t = SMALL_LENS[b]; t < Lmax; t++)
                    for (int j = 0; j < H2; j++) pad += y->data[((int64_t)b * Lmax + t) * H2 + j] != 0.0f;
                for (int t = SMALL_LENS[b]; t < in[0]->shape[1]; t++)
                    for (int j = 0; j < in[0]->shape[2]; j++)
                        dpad += in[0]->grad[((int64_t)b * in[0]->shape[1] + t) * in[0]->shape[2] + j] != 0.0f;
            }
            EXPECT(Lmax == 4 && pad == 0, "bilstm: Lmax %d (want 4), %lld nonzero padding outputs", Lmax, (long long)pad);
            EXPECT(dpad == 0, "bilstm: %lld nonzero x gradients past lens", (long long)dpad);
            /* no-grad: nothing recorded, same values */
            int nodes_before = tp.n_nodes;
            tape_no_grad_begin(&tp);
            Tensor *h2, *y2 = run_bilstm(&tp, in, SMALL_LENS, &h2);
            tape_no_grad_end(&tp);
            EXPECT(!y2->requires_grad && !h2->requires_grad && tp.n_nodes == nodes_before, "bilstm no-grad: recorded a node");
            EXPECT(!memcmp(y2->data, y->data, (size_t)y->n * sizeof(float)) &&
                       !memcmp(h2->data, h_n->data, (size_t)h_n->n * sizeof(float)),
                   "bilstm no-grad: values differ from grad mode");
        }
        free(w);
        tape_free(&tp);
    }
    EXPECT(same, "bilstm: two identical runs must give bitwise identical outputs and gradients");
    for (int i = 0; i < NIN; i++) tensor_free(in[i]);
}

int main(void) {
    test_begin("test_lstm");
    SafeTensors *fx = fixture_open("lstm");
    if (fx) {
        value_case(fx, "sorted", "all grads");
        value_case(fx, "unsorted", "all grads");
        value_case(fx, "sorted", "frozen weights");
        value_case(fx, "unsorted", "frozen x");
        fixture_close(fx);
    }
    gradchecks();
    properties();
    return test_end();
}
