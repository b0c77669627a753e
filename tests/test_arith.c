/* test_arith.c: arith ops (broadcasting add/sub/mul/div, scalar ops, exp/log/clamp, sum/mean)
 * against PyTorch fixtures, finite-difference gradchecks over every input, a naive reference and
 * thread-count independence on tensors large enough to take the OpenMP paths. */
#include "test.h"
#include "../src/ops/arith.h"

#include <stdlib.h>
#include <string.h>

/* Op parameters of a case (read from the fixture's <name>.dim, .keepdim, .s, .lo, .hi). */
typedef struct Params {
    int dim, keepdim;
    float s, lo, hi;
} Params;

static Tensor *f_add(Tape *tp, Tensor **in, void *c) { return op_add(tp, in[0], in[1]); }
static Tensor *f_sub(Tape *tp, Tensor **in, void *c) { return op_sub(tp, in[0], in[1]); }
static Tensor *f_mul(Tape *tp, Tensor **in, void *c) { return op_mul(tp, in[0], in[1]); }
static Tensor *f_div(Tape *tp, Tensor **in, void *c) { return op_div(tp, in[0], in[1]); }
static Tensor *f_mul_self(Tape *tp, Tensor **in, void *c) { return op_mul(tp, in[0], in[0]); }
static Tensor *f_add_self(Tape *tp, Tensor **in, void *c) { return op_add(tp, in[0], in[0]); }
static Tensor *f_scale(Tape *tp, Tensor **in, void *c) { return op_scale(tp, in[0], ((Params *)c)->s); }
static Tensor *f_add_scalar(Tape *tp, Tensor **in, void *c) { return op_add_scalar(tp, in[0], ((Params *)c)->s); }
static Tensor *f_exp(Tape *tp, Tensor **in, void *c) { return op_exp(tp, in[0]); }
static Tensor *f_log(Tape *tp, Tensor **in, void *c) { return op_log(tp, in[0]); }
static Tensor *f_clamp(Tape *tp, Tensor **in, void *c) {
    const Params *p = c;
    return op_clamp(tp, in[0], p->lo, p->hi);
}
static Tensor *f_sum(Tape *tp, Tensor **in, void *c) {
    const Params *p = c;
    return op_sum(tp, in[0], p->dim, p->keepdim);
}
static Tensor *f_mean(Tape *tp, Tensor **in, void *c) {
    const Params *p = c;
    return op_mean(tp, in[0], p->dim, p->keepdim);
}
static Tensor *f_sum_all(Tape *tp, Tensor **in, void *c) { return op_sum_all(tp, in[0]); }
static Tensor *f_mean_all(Tape *tp, Tensor **in, void *c) { return op_mean_all(tp, in[0]); }

typedef struct Case {
    const char *name;
    GradcheckFn fn;
    int n_in;
} Case;

static const Case CASES[] = {
    {"add_bcast", f_add, 2},   {"add_0d", f_add, 2},         {"sub_bcast", f_sub, 2}, {"sub_outer", f_sub, 2},
    {"mul_outer", f_mul, 2},   {"mul_bcast", f_mul, 2},      {"mul_same", f_mul, 2},  {"mul_self", f_mul_self, 1},
    {"div_bcast", f_div, 2},   {"div_rows", f_div, 2},       {"div_same", f_div, 2},  {"scale", f_scale, 1},
    {"add_scalar", f_add_scalar, 1}, {"exp", f_exp, 1},      {"log", f_log, 1},       {"clamp", f_clamp, 1},
    {"clamp_min", f_clamp, 1}, {"sum_d1", f_sum, 1},         {"sum_d1k", f_sum, 1},   {"sum_dneg", f_sum, 1},
    {"sum_d0", f_sum, 1},      {"mean_d1", f_mean, 1},       {"mean_d1k", f_mean, 1}, {"mean_d2", f_mean, 1},
    {"sum_all", f_sum_all, 1}, {"mean_all", f_mean_all, 1},
};

static float param_or(SafeTensors *fx, const char *name, const char *key, float dflt) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", name, key);
    return fixture_has(fx, k) ? fixture_scalar(fx, k) : dflt;
}

static Params read_params(SafeTensors *fx, const char *name) {
    Params p = {(int)param_or(fx, name, "dim", 0), (int)param_or(fx, name, "keepdim", 0), param_or(fx, name, "s", 0),
                param_or(fx, name, "lo", 0), param_or(fx, name, "hi", 0)};
    return p;
}

/* Forward against <name>.out, then backward seeded with <name>.gout against every <name>.grad<i>. */
static void value_case(SafeTensors *fx, const Case *c) {
    char k[128];
    Tensor *in[2] = {NULL, NULL};
    for (int i = 0; i < c->n_in; i++) {
        snprintf(k, sizeof k, "%s.in%d", c->name, i);
        in[i] = fixture_tensor(fx, k, 1);
    }
    Params p = read_params(fx, c->name);
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

static Tensor *leaf(int ndim, const int *shape, float lo, float hi, uint64_t seed) {
    Tensor *t = tensor_alloc(ndim, shape, 1);
    fill_uniform(t->data, t->n, lo, hi, seed);
    return t;
}
#define LEAF(lo, hi, seed, ...) leaf(NDIMS(__VA_ARGS__), (int[]){__VA_ARGS__}, (lo), (hi), (seed))

static void check2(const char *name, GradcheckFn fn, Tensor *a, Tensor *b, void *ctx) {
    Tensor *in[2] = {a, b};
    gradcheck(name, fn, b ? 2 : 1, in, ctx, NULL);
    tensor_free(a);
    tensor_free(b);
}

static void gradcheck_binary(void) {
    check2("add (2,3,4,5)+(3,1,5)", f_add, LEAF(-1, 1, 1, 2, 3, 4, 5), LEAF(-1, 1, 2, 3, 1, 5), NULL);
    check2("add (3,4)+()", f_add, LEAF(-1, 1, 3, 3, 4), leaf(0, NULL, -1, 1, 4), NULL);
    check2("add 6-d", f_add, LEAF(-1, 1, 5, 2, 1, 3, 1, 2, 1), LEAF(-1, 1, 6, 1, 2, 1, 3, 1, 2), NULL);
    check2("sub (3,1,5)-(2,3,4,5)", f_sub, LEAF(-1, 1, 7, 3, 1, 5), LEAF(-1, 1, 8, 2, 3, 4, 5), NULL);
    check2("sub (4,1)-(1,6)", f_sub, LEAF(-1, 1, 9, 4, 1), LEAF(-1, 1, 10, 1, 6), NULL);
    check2("mul (4,1)*(1,6)", f_mul, LEAF(-1, 1, 11, 4, 1), LEAF(-1, 1, 12, 1, 6), NULL);
    check2("mul (2,3,4,5)*(4,1)", f_mul, LEAF(-1, 1, 13, 2, 3, 4, 5), LEAF(-1, 1, 14, 4, 1), NULL);
    check2("mul (5,7)*(5,7)", f_mul, LEAF(-1, 1, 15, 5, 7), LEAF(-1, 1, 16, 5, 7), NULL);
    check2("mul x*x", f_mul_self, LEAF(-1, 1, 17, 4, 6), NULL, NULL);
    check2("div (3,1,1)/(3,7,1)", f_div, LEAF(-1, 1, 18, 3, 1, 1), LEAF(0.5f, 2, 19, 3, 7, 1), NULL);
    check2("div (3,7,6)/(3,7,1)", f_div, LEAF(-1, 1, 20, 3, 7, 6), LEAF(0.5f, 2, 21, 3, 7, 1), NULL);
    check2("div (4,9)/(4,9)", f_div, LEAF(-1, 1, 22, 4, 9), LEAF(0.5f, 2, 23, 4, 9), NULL);
    check2("add x+x", f_add_self, LEAF(-1, 1, 24, 3, 5), NULL, NULL);
}

/* Uniform in [-1, 1) with every value at least `gap` away from lo and hi. */
static Tensor *leaf_away_from(float lo, float hi, float gap, uint64_t seed, int ndim, const int *shape) {
    Tensor *t = tensor_alloc(ndim, shape, 1);
    Rng r;
    rng_init(&r, seed);
    for (int64_t i = 0; i < t->n; i++) {
        float v;
        do { rng_uniform_range(&r, &v, 1, -1.0f, 1.0f); } while (fabsf(v - lo) < gap || fabsf(v - hi) < gap);
        t->data[i] = v;
    }
    return t;
}

static void gradcheck_unary(void) {
    Params p = {0, 0, -1.7f, 0, 0};
    check2("scale", f_scale, LEAF(-1, 1, 30, 3, 4, 5), NULL, &p);
    p.s = 0.25f;
    check2("add_scalar", f_add_scalar, LEAF(-1, 1, 31, 3, 4, 5), NULL, &p);
    check2("exp", f_exp, LEAF(-2, 2, 32, 3, 4, 5), NULL, NULL);
    check2("log", f_log, LEAF(0.2f, 3, 33, 3, 4, 5), NULL, NULL);
    p.lo = -0.3f;
    p.hi = 0.4f;
    check2("clamp", f_clamp, leaf_away_from(p.lo, p.hi, 0.05f, 34, 3, (int[]){3, 4, 5}), NULL, &p);
    p.lo = 0.1f;
    p.hi = INFINITY;
    check2("clamp min", f_clamp, leaf_away_from(p.lo, p.hi, 0.05f, 35, 3, (int[]){3, 4, 5}), NULL, &p);
    p.lo = -INFINITY;
    p.hi = -0.2f;
    check2("clamp max", f_clamp, leaf_away_from(p.lo, p.hi, 0.05f, 36, 3, (int[]){3, 4, 5}), NULL, &p);
}

static void gradcheck_reduce(void) {
    static const int dims[][2] = {{1, 0}, {1, 1}, {-1, 0}, {0, 1}, {3, 0}};
    for (int i = 0; i < 5; i++) {
        Params p = {dims[i][0], dims[i][1], 0, 0, 0};
        char name[64];
        snprintf(name, sizeof name, "sum dim %d keepdim %d", p.dim, p.keepdim);
        check2(name, f_sum, LEAF(-1, 1, 40 + i, 3, 4, 5, 2), NULL, &p);
        snprintf(name, sizeof name, "mean dim %d keepdim %d", p.dim, p.keepdim);
        check2(name, f_mean, LEAF(-1, 1, 50 + i, 3, 4, 5, 2), NULL, &p);
    }
    check2("sum_all", f_sum_all, LEAF(-1, 1, 60, 3, 4, 5), NULL, NULL);
    check2("mean_all", f_mean_all, LEAF(-1, 1, 61, 3, 4, 5), NULL, NULL);
}

/* ------------------------------------------------------------------ contract checks */

/* A frozen operand gets nothing; the other still gets its gradient. No-grad records nothing. */
static void test_frozen_and_no_grad(void) {
    Tensor *x = LEAF(-1, 1, 70, 4, 6), *b = LEAF(-1, 1, 71, 6);
    b->requires_grad = false;
    Tensor *in[2] = {x, b};
    gradcheck("mul frozen b", f_mul, 2, in, NULL, NULL);
    int64_t touched = 0;
    for (int64_t i = 0; i < b->n; i++) touched += b->grad[i] != 0.0f;
    EXPECT(touched == 0, "frozen operand: %lld gradient elements written", (long long)touched);
    Tape tp;
    tape_init(&tp);
    tape_no_grad_begin(&tp);
    Tensor *y = op_add(&tp, x, x);
    tape_no_grad_end(&tp);
    EXPECT(!y->requires_grad && tp.n_nodes == 0, "no_grad: add recorded a node");
    tape_free(&tp);
    BroadcastPlan p;
    int nd, shape[TENSOR_MAX_DIMS];
    EXPECT(broadcast_plan(&p, &nd, shape, 2, (int[]){2, 3}, 1, (int[]){4}) == -1, "(2,3) and (4) must not broadcast");
    EXPECT(broadcast_plan(&p, &nd, shape, 2, (int[]){4, 1}, 3, (int[]){2, 1, 6}) == 0 && nd == 3 && shape[0] == 2 &&
               shape[1] == 4 && shape[2] == 6,
           "(4,1) and (2,1,6) broadcast to (2,4,6)");
    tensor_free(x);
    tensor_free(b);
}

/* Results of the large case, to compare across thread counts. */
typedef struct Big {
    float *y, *ga, *gb, *s, *tot;
} Big;

static float *copy_of(const float *x, int64_t n) {
    float *c = xmalloc((size_t)n * sizeof(float));
    memcpy(c, x, (size_t)n * sizeof(float));
    return c;
}

/* y = a (8,33,400) * b (33,1); s = sum(a, 1); tot = mean_all(a); backward with fixed seeds. */
static Big run_big(Tensor *a, Tensor *b, const float *gy, const float *gsum) {
    memset(a->grad, 0, (size_t)a->n * sizeof(float));
    memset(b->grad, 0, (size_t)b->n * sizeof(float));
    Tape tp;
    tape_init(&tp);
    Tensor *y = op_mul(&tp, a, b), *s = op_sum(&tp, a, 1, 0), *tot = op_mean_all(&tp, a);
    static const float one = 1.0f;
    Tensor *outs[3] = {y, s, tot};
    const float *seeds[3] = {gy, gsum, &one};
    tape_backward_seeded(&tp, 3, outs, seeds);
    Big r = {copy_of(y->data, y->n), copy_of(a->grad, a->n), copy_of(b->grad, b->n), copy_of(s->data, s->n),
             copy_of(tot->data, 1)};
    tape_free(&tp);
    return r;
}

static void big_free(Big *r) {
    free(r->y);
    free(r->ga);
    free(r->gb);
    free(r->s);
    free(r->tot);
}

static void test_large(void) {
    enum { NI = 8, NJ = 33, NK = 400 };
    Tensor *a = LEAF(-1, 1, 80, NI, NJ, NK), *b = LEAF(-1, 1, 81, NJ, 1);
    float *gy = xmalloc(sizeof(float) * NI * NJ * NK), *gsum = xmalloc(sizeof(float) * NI * NK);
    fill_uniform(gy, (int64_t)NI * NJ * NK, -1, 1, 82);
    fill_uniform(gsum, (int64_t)NI * NK, -1, 1, 83);
    threads_set(1);
    Big r1 = run_big(a, b, gy, gsum);
    threads_set(2);
    Big r2 = run_big(a, b, gy, gsum);
    threads_set(0);
    int64_t n = (int64_t)NI * NJ * NK;
    EXPECT(!memcmp(r1.y, r2.y, n * sizeof(float)) && !memcmp(r1.ga, r2.ga, n * sizeof(float)) &&
               !memcmp(r1.gb, r2.gb, NJ * sizeof(float)) && !memcmp(r1.s, r2.s, (size_t)NI * NK * sizeof(float)) &&
               r1.tot[0] == r2.tot[0],
           "large case: 1 and 2 threads give bitwise identical results");
    /* naive reference in double */
    double *ry = xmalloc(sizeof(double) * n), *rga = xmalloc(sizeof(double) * n), rgb[NJ] = {0}, tot = 0;
    float *fy = xmalloc(sizeof(float) * n), *fga = xmalloc(sizeof(float) * n), fgb[NJ], fs[NI * NK] = {0}, ftot;
    double rs[NI * NK] = {0};
    for (int i = 0; i < NI; i++)
        for (int j = 0; j < NJ; j++)
            for (int k = 0; k < NK; k++) {
                int64_t e = ((int64_t)i * NJ + j) * NK + k;
                double g = gy[e];
                ry[e] = (double)a->data[e] * b->data[j];
                rga[e] = g * b->data[j] + gsum[i * NK + k] + 1.0 / n;
                rgb[j] += g * a->data[e];
                rs[i * NK + k] += a->data[e];
                tot += a->data[e];
            }
    for (int64_t e = 0; e < n; e++) { fy[e] = (float)ry[e]; fga[e] = (float)rga[e]; }
    for (int j = 0; j < NJ; j++) fgb[j] = (float)rgb[j];
    for (int e = 0; e < NI * NK; e++) fs[e] = (float)rs[e];
    ftot = (float)(tot / n);
    expect_close("large mul forward vs naive", r1.y, fy, n, 1e-6);
    expect_close("large grad of a vs naive", r1.ga, fga, n, 1e-6);
    expect_close("large grad of b (sum over expanded dims) vs naive", r1.gb, fgb, NJ, 1e-6);
    expect_close("large sum dim 1 vs naive", r1.s, fs, NI * NK, 1e-6);
    expect_close("large mean_all vs naive", r1.tot, &ftot, 1, 1e-6);
    free(ry); free(rga); free(fy); free(fga); free(gy); free(gsum);
    big_free(&r1);
    big_free(&r2);
    tensor_free(a);
    tensor_free(b);
}

int main(void) {
    test_begin("test_arith");
    SafeTensors *fx = fixture_open("arith");
    if (fx) {
        for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) value_case(fx, &CASES[i]);
        fixture_close(fx);
    }
    gradcheck_binary();
    gradcheck_unary();
    gradcheck_reduce();
    test_frozen_and_no_grad();
    test_large();
    return test_end();
}
