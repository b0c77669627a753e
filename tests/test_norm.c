/* test_norm.c: l2norm and cosine_similarity against PyTorch fixtures (including zero vectors and
 * the eps clamp), x / ||x||.clamp(min=eps) built from norm and arith ops, finite-difference
 * gradchecks over every input, and thread-count independence on a larger tensor. */
#include "test.h"
#include "../src/ops/arith.h"
#include "../src/ops/norm.h"

#include <stdlib.h>
#include <string.h>

/* Op parameters of a case (read from the fixture's <name>.dim, .keepdim, .eps). */
typedef struct Params {
    int dim, keepdim;
    float eps;
} Params;

static Tensor *f_l2norm(Tape *tp, Tensor **in, void *c) {
    const Params *p = c;
    return op_l2norm(tp, in[0], p->dim, p->keepdim);
}
static Tensor *f_cosine(Tape *tp, Tensor **in, void *c) {
    const Params *p = c;
    return op_cosine_similarity(tp, in[0], in[1], p->dim, p->eps);
}
static Tensor *f_cosine_self(Tape *tp, Tensor **in, void *c) {
    const Params *p = c;
    return op_cosine_similarity(tp, in[0], in[0], p->dim, p->eps);
}
/* x / ||x||_dim.clamp(min=eps), the norm kept as a size-1 dim and broadcast back */
static Tensor *f_div_norm(Tape *tp, Tensor **in, void *c) {
    const Params *p = c;
    return op_div(tp, in[0], op_clamp(tp, op_l2norm(tp, in[0], p->dim, 1), p->eps, INFINITY));
}

typedef struct Case {
    const char *name;
    GradcheckFn fn;
    int n_in;
} Case;

static const Case CASES[] = {
    {"l2_d1", f_l2norm, 1},         {"l2_d2k", f_l2norm, 1},   {"l2_d1k", f_l2norm, 1},
    {"l2_dneg", f_l2norm, 1},       {"l2_zero", f_l2norm, 1},  {"cos_nc", f_cosine, 2},
    {"cos_nct", f_cosine, 2},       {"cos_clamped", f_cosine, 2},
    {"div_norm", f_div_norm, 1},
};

static float param_or(SafeTensors *fx, const char *name, const char *key, float dflt) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", name, key);
    return fixture_has(fx, k) ? fixture_scalar(fx, k) : dflt;
}

/* Forward against <name>.out, then backward seeded with <name>.gout against every <name>.grad<i>. */
static void value_case(SafeTensors *fx, const Case *c) {
    char k[128];
    Tensor *in[2] = {NULL, NULL};
    for (int i = 0; i < c->n_in; i++) {
        snprintf(k, sizeof k, "%s.in%d", c->name, i);
        in[i] = fixture_tensor(fx, k, 1);
    }
    Params p = {(int)param_or(fx, c->name, "dim", 1), (int)param_or(fx, c->name, "keepdim", 0),
                param_or(fx, c->name, "eps", 1e-8f)};
    snprintf(k, sizeof k, "%s.out", c->name);
    Tensor *want = fixture_tensor(fx, k, 0);
    snprintf(k, sizeof k, "%s.gout", c->name);
    Tensor *gout = fixture_tensor(fx, k, 0);
    Tape tp;
    tape_init(&tp);
    Tensor *y = c->fn(&tp, in, &p);
    char a[64], b[64];
    EXPECT(tensor_same_shape(y, want), "%s: output shape %s, PyTorch %s", c->name, tensor_shape_str(y, a, sizeof a),
           tensor_shape_str(want, b, sizeof b));
    snprintf(k, sizeof k, "%s forward", c->name);
    if (y->n == want->n) expect_close(k, y->data, want->data, want->n, 1e-5);
    const float *seed = gout->data;
    tape_backward_seeded(&tp, 1, &y, &seed);
    for (int i = 0; i < c->n_in; i++) {
        snprintf(k, sizeof k, "%s.grad%d", c->name, i);
        Tensor *g = fixture_tensor(fx, k, 0);
        snprintf(k, sizeof k, "%s grad of input %d", c->name, i);
        expect_close(k, in[i]->grad, g->data, g->n, 1e-5);
        tensor_free(g);
    }
    tape_free(&tp);
    for (int i = 0; i < 2; i++) tensor_free(in[i]);
    tensor_free(want);
    tensor_free(gout);
}

/* ------------------------------------------------------------------ gradchecks */

static Tensor *leaf(int ndim, const int *shape, uint64_t seed) {
    Tensor *t = tensor_alloc(ndim, shape, 1);
    fill_uniform(t->data, t->n, -1, 1, seed);
    return t;
}
#define LEAF(seed, ...) leaf(NDIMS(__VA_ARGS__), (int[]){__VA_ARGS__}, (seed))

static void check(const char *name, GradcheckFn fn, Tensor *a, Tensor *b, Params p) {
    Tensor *in[2] = {a, b};
    gradcheck(name, fn, b ? 2 : 1, in, &p, NULL);
    tensor_free(a);
    tensor_free(b);
}

/* Scales the vectors (positions over dim 1 of a (N, C, T) tensor) at n = row, t = col by f. */
static void scale_vector(Tensor *x, int row, int col, float f) {
    int C = x->shape[1], T = x->ndim > 2 ? x->shape[2] : 1;
    for (int c = 0; c < C; c++) x->data[((int64_t)row * C + c) * T + col] *= f;
}

static void gradchecks(void) {
    check("l2norm (2,5,4) dim 1", f_l2norm, LEAF(1, 2, 5, 4), NULL, (Params){1, 0, 0});
    check("l2norm (2,5,4) dim 2 keepdim", f_l2norm, LEAF(2, 2, 5, 4), NULL, (Params){2, 1, 0});
    check("l2norm (3,6) dim -1", f_l2norm, LEAF(3, 3, 6), NULL, (Params){-1, 0, 0});
    check("l2norm (3,4,2) dim 0", f_l2norm, LEAF(4, 3, 4, 2), NULL, (Params){0, 1, 0});
    check("cosine (5,8) dim 1", f_cosine, LEAF(5, 5, 8), LEAF(6, 5, 8), (Params){1, 0, 1e-8f});
    check("cosine (3,6,5) dim 1", f_cosine, LEAF(7, 3, 6, 5), LEAF(8, 3, 6, 5), (Params){1, 0, 1e-8f});
    /* eps clamp active on three rows (one of a zero) (||a|| ||b|| well below eps), passive on the others */
    Tensor *a = LEAF(10, 6, 4), *b = LEAF(11, 6, 4);
    scale_vector(a, 1, 0, 0.2f);
    scale_vector(b, 1, 0, 0.3f);
    scale_vector(a, 3, 0, 0.1f);
    scale_vector(a, 4, 0, 0.0f);
    check("cosine clamped (6,4)", f_cosine, a, b, (Params){1, 0, 0.2f});
    /* x / ||x||.clamp(min=eps) over dim 1 of (3,5,4): one column with a small norm, one zero */
    Tensor *x = LEAF(12, 3, 5, 4);
    scale_vector(x, 2, 3, 0.05f);
    scale_vector(x, 0, 1, 0.0f);
    check("x / norm(x).clamp(eps)", f_div_norm, x, NULL, (Params){1, 0, 0.1f});
}

/* cos(x, x) is 1 everywhere, so the two gradients (same buffer) must add up to about 0. */
static void test_cosine_self(void) {
    Tensor *x = LEAF(9, 3, 4, 5);
    Params p = {-1, 0, 1e-8f};
    Tape tp;
    tape_init(&tp);
    Tensor *in[1] = {x}, *y = f_cosine_self(&tp, in, &p);
    float g[12];
    fill_uniform(g, 12, -1, 1, 13);
    const float *seed = g;
    tape_backward_seeded(&tp, 1, &y, &seed);
    double dy = 0, dg = 0;
    for (int64_t i = 0; i < y->n; i++) dy = fmax(dy, fabs(y->data[i] - 1.0));
    for (int64_t i = 0; i < x->n; i++) dg = fmax(dg, fabs(x->grad[i]));
    EXPECT(y->n == 12 && dy < 1e-6 && dg < 1e-5, "cosine(x, x): max |y - 1| %.3g, max |grad| %.3g", dy, dg);
    tape_free(&tp);
    tensor_free(x);
}

/* ------------------------------------------------------------------ threads */

/* l2norm over dim 1 and cosine over dim 1 of (16, 64, 50); returns outputs and gradients. */
static float *run_big(Tensor *a, Tensor *b, const float *g) {
    memset(a->grad, 0, (size_t)a->n * sizeof(float));
    memset(b->grad, 0, (size_t)b->n * sizeof(float));
    Tape tp;
    tape_init(&tp);
    Tensor *n = op_l2norm(&tp, a, 1, 0), *c = op_cosine_similarity(&tp, a, b, 1, 1e-8f);
    Tensor *outs[2] = {n, c};
    const float *seeds[2] = {g, g};
    tape_backward_seeded(&tp, 2, outs, seeds);
    int64_t m = n->n, total = 2 * m + 2 * a->n;
    float *r = xmalloc((size_t)total * sizeof(float));
    memcpy(r, n->data, (size_t)m * sizeof(float));
    memcpy(r + m, c->data, (size_t)m * sizeof(float));
    memcpy(r + 2 * m, a->grad, (size_t)a->n * sizeof(float));
    memcpy(r + 2 * m + a->n, b->grad, (size_t)a->n * sizeof(float));
    tape_free(&tp);
    return r;
}

static void test_threads(void) {
    Tensor *a = LEAF(20, 16, 64, 50), *b = LEAF(21, 16, 64, 50);
    float *g = xmalloc(16 * 50 * sizeof(float));
    fill_uniform(g, 16 * 50, -1, 1, 22);
    threads_set(1);
    float *r1 = run_big(a, b, g);
    threads_set(2);
    float *r2 = run_big(a, b, g);
    threads_set(0);
    int64_t total = 2 * 16 * 50 + 2 * a->n;
    EXPECT(!memcmp(r1, r2, (size_t)total * sizeof(float)), "l2norm/cosine: 1 and 2 threads give identical results");
    /* spot check: norm of column (n=3, t=7) in double */
    double s = 0;
    for (int c = 0; c < 64; c++) s += (double)a->data[(3 * 64 + c) * 50 + 7] * a->data[(3 * 64 + c) * 50 + 7];
    float want = (float)sqrt(s);
    expect_close("large l2norm spot value", &r1[3 * 50 + 7], &want, 1, 1e-6);
    free(r1);
    free(r2);
    free(g);
    tensor_free(a);
    tensor_free(b);
}

int main(void) {
    test_begin("test_norm");
    SafeTensors *fx = fixture_open("norm");
    if (fx) {
        for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) value_case(fx, &CASES[i]);
        fixture_close(fx);
    }
    gradchecks();
    test_cosine_self();
    test_threads();
    return test_end();
}
