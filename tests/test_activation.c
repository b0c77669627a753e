/* test_activation.c: relu, leaky relu, tanh, sigmoid and GLU against PyTorch fixtures, finite
 * differences, the PyTorch conventions at the kink (relu'(0) = 0, leaky'(0) = slope), relu's gate
 * (op_relu_gate: values, NaN and 0 gate to 0, finite differences in both inputs), and the
 * accuracy of the vectorised exp / sigmoid / GLU kernels (vmath.h) against libm over a sweep. */
#include "test.h"
#include "../src/core/mempool.h"
#include "../src/ops/activation.h"
#include "../src/ops/arith.h"
#include "../src/ops/vmath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* op arguments carried through gradcheck's ctx */
typedef struct ActArgs {
    float slope;
    int dim;
} ActArgs;

static Tensor *fwd_relu(Tape *tp, Tensor **in, void *ctx) { return op_relu(tp, in[0]); }
static Tensor *fwd_leaky(Tape *tp, Tensor **in, void *ctx) { return op_leaky_relu(tp, in[0], ((ActArgs *)ctx)->slope); }
static Tensor *fwd_tanh(Tape *tp, Tensor **in, void *ctx) { return op_tanh(tp, in[0]); }
static Tensor *fwd_sigmoid(Tape *tp, Tensor **in, void *ctx) { return op_sigmoid(tp, in[0]); }
static Tensor *fwd_glu(Tape *tp, Tensor **in, void *ctx) { return op_glu(tp, in[0], ((ActArgs *)ctx)->dim); }

/* Forward and backward of one fixture case (single input) against PyTorch. */
static void value_case(SafeTensors *fx, const char *name, GradcheckFn fn, void *ctx, double tol) {
    char k[128];
    snprintf(k, sizeof k, "%s.in0", name);
    Tensor *x = fixture_tensor(fx, k, 1);
    snprintf(k, sizeof k, "%s.out", name);
    Tensor *want = fixture_tensor(fx, k, 0);
    snprintf(k, sizeof k, "%s.gout", name);
    Tensor *gout = fixture_tensor(fx, k, 0);
    snprintf(k, sizeof k, "%s.grad0", name);
    Tensor *gwant = fixture_tensor(fx, k, 0);
    Tape tp;
    tape_init(&tp);
    Tensor *y = fn(&tp, &x, ctx);
    snprintf(k, sizeof k, "%s forward", name);
    if (EXPECT(tensor_same_shape(y, want), "%s: shape", k)) {
        expect_close(k, y->data, want->data, want->n, tol);
        const float *seed = gout->data;
        tape_backward_seeded(&tp, 1, &y, &seed);
        snprintf(k, sizeof k, "%s grad of input", name);
        expect_close(k, x->grad, gwant->data, gwant->n, tol);
    }
    tape_free(&tp);
    tensor_free(x);
    tensor_free(want);
    tensor_free(gout);
    tensor_free(gwant);
}

static void value_tests(void) {
    SafeTensors *fx = fixture_open("activation");
    if (!fx) return;
    ActArgs leaky = {fixture_scalar(fx, "leaky.slope"), 0};
    ActArgs glu_c = {0, (int)fixture_scalar(fx, "glu_c.dim")}, glu_last = {0, (int)fixture_scalar(fx, "glu_last.dim")};
    value_case(fx, "relu", fwd_relu, NULL, 1e-6);
    value_case(fx, "leaky", fwd_leaky, &leaky, 1e-6);
    value_case(fx, "tanh", fwd_tanh, NULL, 1e-5);
    value_case(fx, "sigmoid", fwd_sigmoid, NULL, 1e-5);
    value_case(fx, "glu_c", fwd_glu, &glu_c, 1e-5);
    value_case(fx, "glu_last", fwd_glu, &glu_last, 1e-5);
    fixture_close(fx);
}

/* gradcheck of a one-input op on a fresh heap leaf of the given shape */
static void grad_case(const char *name, GradcheckFn fn, void *ctx, int ndim, const int *shape, int away_from_zero, float lo,
                      float hi, uint64_t seed) {
    Tensor *x = tensor_alloc(ndim, shape, 1);
    if (away_from_zero) fill_away_from_zero(x->data, x->n, lo, hi, 0.05f, seed);
    else fill_uniform(x->data, x->n, lo, hi, seed);
    gradcheck(name, fn, 1, &x, ctx, NULL);
    tensor_free(x);
}

static void grad_tests(void) {
    ActArgs leaky = {0.2f, 0}, glu1 = {0, 1}, glu_last = {0, -1}, glu0 = {0, 0};
    grad_case("relu", fwd_relu, NULL, 3, (int[]){2, 3, 7}, 1, -1, 1, 11);
    grad_case("leaky_relu", fwd_leaky, &leaky, 3, (int[]){2, 3, 7}, 1, -1, 1, 12);
    grad_case("tanh", fwd_tanh, NULL, 2, (int[]){5, 9}, 0, -2.5f, 2.5f, 13);
    grad_case("sigmoid", fwd_sigmoid, NULL, 2, (int[]){5, 9}, 0, -4, 4, 14);
    grad_case("glu dim 1", fwd_glu, &glu1, 4, (int[]){2, 6, 3, 2}, 0, -2, 2, 15);
    grad_case("glu dim -1", fwd_glu, &glu_last, 2, (int[]){3, 8}, 0, -2, 2, 16);
    grad_case("glu dim 0", fwd_glu, &glu0, 2, (int[]){4, 5}, 0, -2, 2, 17);
}

/* relu'(0) = 0 and leaky'(0) = slope; NaN passes through both forwards */
static void kink_tests(void) {
    Tensor *x = tensor_alloc(1, (int[]){3}, 1);
    x->data[0] = 0.0f;
    x->data[1] = 1.0f;
    x->data[2] = NAN;
    Tape tp;
    tape_init(&tp);
    Tensor *r = op_relu(&tp, x), *l = op_leaky_relu(&tp, x, 0.25f);
    EXPECT(r->data[0] == 0.0f && r->data[1] == 1.0f && isnan(r->data[2]), "relu forward at 0, 1, NaN: %g %g %g", r->data[0],
           r->data[1], r->data[2]);
    EXPECT(l->data[0] == 0.0f && l->data[1] == 1.0f && isnan(l->data[2]), "leaky relu forward at 0, 1, NaN");
    const float ones[3] = {1, 1, 1};
    const float *seed = ones;
    tape_backward_seeded(&tp, 1, &r, &seed);
    EXPECT(x->grad[0] == 0.0f && x->grad[1] == 1.0f, "relu'(0) = %g (want 0), relu'(1) = %g", x->grad[0], x->grad[1]);
    for (int i = 0; i < 3; i++) x->grad[i] = 0.0f;
    tape_backward_seeded(&tp, 1, &l, &seed);
    EXPECT(x->grad[0] == 0.25f && x->grad[1] == 1.0f, "leaky'(0) = %g (want slope 0.25), leaky'(1) = %g", x->grad[0], x->grad[1]);
    tape_free(&tp);
    tensor_free(x);
}

/* relu's gate: out = g where h > 0; the gradient reaches g through the same gate and h none (its
 * finite difference is 0 away from the kink, which the gradcheck's inputs keep clear of) */
static Tensor *fwd_gate(Tape *tp, Tensor **in, void *ctx) { return op_relu_gate(tp, in[0], in[1]); }

static void gate_tests(void) {
    Tensor *h = tensor_alloc(2, (int[]){3, 7}, 1), *g = tensor_alloc(2, (int[]){3, 7}, 1);
    fill_away_from_zero(h->data, h->n, -1, 1, 0.05f, 31);
    fill_uniform(g->data, g->n, -2, 2, 32);
    h->name = "h";
    g->name = "g";
    Tensor *in[2] = {h, g};
    gradcheck("relu_gate", fwd_gate, 2, in, NULL, NULL);
    /* the values, against the rule, with 0, -0 and NaN among the gates */
    h->data[0] = 0.0f, h->data[1] = -0.0f, h->data[2] = NAN, h->data[3] = 1e-30f;
    Tape tp;
    tape_init(&tp);
    Tensor *y = op_relu_gate(&tp, h, g);
    int bad = 0;
    for (int64_t i = 0; i < y->n; i++) bad += y->data[i] != (h->data[i] > 0.0f ? g->data[i] : 0.0f);
    EXPECT(bad == 0 && y->data[0] == 0.0f && y->data[2] == 0.0f && y->data[3] == g->data[3],
           "relu_gate: %d values differ from h > 0 ? g : 0 (0, NaN gate to 0)", bad);
    EXPECT(tp.n_nodes == 1 && y->requires_grad, "relu_gate records one node");
    tape_free(&tp);
    tensor_free(h);
    tensor_free(g);
}

/* no-grad mode records nothing; an input that does not require grad records nothing either */
static void no_grad_tests(void) {
    Tensor *x = tensor_alloc(2, (int[]){2, 4}, 1);
    fill_uniform(x->data, x->n, -1, 1, 21);
    Tape tp;
    tape_init(&tp);
    tape_no_grad_begin(&tp);
    Tensor *y = op_glu(&tp, op_sigmoid(&tp, op_tanh(&tp, op_leaky_relu(&tp, op_relu(&tp, x), 0.2f))), 1);
    tape_no_grad_end(&tp);
    EXPECT(tp.n_nodes == 0 && !y->requires_grad, "no-grad: %d nodes recorded", tp.n_nodes);
    x->requires_grad = false;
    y = op_relu(&tp, x);
    EXPECT(tp.n_nodes == 0 && !y->requires_grad, "input without grad: %d nodes recorded", tp.n_nodes);
    tape_free(&tp);
    tensor_free(x);
}

/* In place without gradients: a donated input gives its buffer to GLU (shrunk to the result),
 * relu and leaky relu; the values are those of the out-of-place ops. Rows > 1 exercise GLU's
 * row order (row o's result lands on row o/2's input). */
static void in_place_tests(void) {
    Tape tp;
    tape_init(&tp);
    tape_no_grad_begin(&tp);
    Tensor *a = TNEW(&tp, 5, 6, 7, 9), *b = TNEW(&tp, 5, 6, 7, 9);
    fill_uniform(a->data, a->n, -3, 3, 51);
    memcpy(b->data, a->data, (size_t)a->n * sizeof(float));
    Tensor *want = op_glu(&tp, a, 1);
    float *buf = b->data;
    size_t live0 = mempool_stats().live;
    Tensor *got = op_glu(&tp, tape_donate(b), 1);
    size_t live1 = mempool_stats().live;
    EXPECT(got->data == buf && b->data == NULL, "glu in place: the output took the donated buffer");
    EXPECT(got->ndim == 4 && got->shape[1] == 3 && memcmp(got->data, want->data, (size_t)want->n * sizeof(float)) == 0,
           "glu in place: the same values as out of place");
    if (!mempool_stats().malloc_mode)
        EXPECT(live1 + (size_t)want->n * sizeof(float) <= live0 + 64, "glu in place gave the tail back (%zu -> %zu bytes)", live0,
               live1);
    Tensor *r = op_relu(&tp, tape_donate(op_scale(&tp, want, -1.0f)));
    Tensor *l = op_leaky_relu(&tp, tape_donate(op_scale(&tp, want, -1.0f)), 0.2f);
    int bad = 0;
    for (int64_t i = 0; i < want->n; i++) {
        float v = -want->data[i];
        bad += r->data[i] != (v > 0 ? v : 0.0f);
        bad += l->data[i] != (v > 0 ? v : 0.2f * v);
    }
    EXPECT(bad == 0, "relu / leaky relu in place: %d wrong values", bad);
    tape_no_grad_end(&tp);
    tape_free(&tp);
}

/* vmath: exp within 2 ulp of expf where expf is normal, expf's special values elsewhere; sigmoid
 * within 4 ulp of the double-precision value where it is normal; GLU = a * sigmoid(b). The sweep
 * has a length that is not a multiple of the vector width (the tail). */
static void vmath_tests(void) {
    int64_t n = 2000003;
    float *x = malloc((size_t)n * sizeof(float)), *y = malloc((size_t)n * sizeof(float));
    float *a = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        x[i] = -110.0f + 220.0f * (float)i / (float)n;
        a[i] = 0.5f + (float)(i % 7);
    }
    x[3] = NAN;
    vexp(y, x, n);
    double worst = 0;
    int64_t special_bad = 0;
    for (int64_t i = 0; i < n; i++) {
        float want = expf(x[i]);
        if (isnan(x[i])) special_bad += !isnan(y[i]);
        else if (isinf(want)) special_bad += !isinf(y[i]);
        else if (want >= 1.17549435e-38f) worst = fmax(worst, fabs((double)y[i] - want) / want / 5.9604645e-8);
        else special_bad += !(y[i] >= 0.0f && y[i] < 1.2e-38f);
    }
    EXPECT(worst <= 2.0, "vexp: %.2f ulp from expf at worst (want <= 2)", worst);
    EXPECT(special_bad == 0, "vexp: %lld NaN / overflow / underflow values unlike expf", (long long)special_bad);
    vsigmoid(y, x, n);
    worst = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(x[i])) continue;
        double want = 1.0 / (1.0 + exp(-(double)x[i]));
        if (want >= 1.17549435e-38) worst = fmax(worst, fabs((double)y[i] - want) / want / 5.9604645e-8);
    }
    EXPECT(worst <= 4.0 && isnan(y[3]), "vsigmoid: %.2f ulp at worst (want <= 4), NaN -> %g", worst, (double)y[3]);
    for (int64_t i = 0; i < n; i++) a[i] = (float)(i - n / 2) * 2.0e-5f; /* -20 .. 20, dense around 0 */
    a[5] = NAN, a[6] = INFINITY, a[7] = -INFINITY, a[8] = 1e-30f, a[9] = -0.0f;
    vtanh(y, a, n);
    worst = 0;
    for (int64_t i = 10; i < n; i++) {
        double want = tanh((double)a[i]);
        if (fabs(want) >= 1.17549435e-38) worst = fmax(worst, fabs((double)y[i] - want) / fabs(want) / 5.9604645e-8);
    }
    EXPECT(worst <= 4.0, "vtanh: %.2f half-ulps from tanh at worst (want <= 4)", worst);
    EXPECT(isnan(y[5]) && y[6] == 1.0f && y[7] == -1.0f && y[8] == 1e-30f && y[9] == 0.0f && signbit(y[9]),
           "vtanh: NaN %g, +inf %g, -inf %g, 1e-30 %g, -0 %g", (double)y[5], (double)y[6], (double)y[7], (double)y[8],
           (double)y[9]);
    printf("vtanh: %.2f half-ulps from tanh at worst\n", worst);
    for (int64_t i = 0; i < n; i++) a[i] = 0.5f + (float)(i % 7);
    vsigmoid(y, x, n);
    float *g = malloc((size_t)n * sizeof(float));
    vglu(g, a, x, n);
    int64_t glu_bad = 0;
    for (int64_t i = 0; i < n; i++)
        if (!isnan(x[i])) glu_bad += fabsf(g[i] - a[i] * y[i]) > 1e-6f * fabsf(a[i] * y[i]);
    EXPECT(glu_bad == 0, "vglu: %lld values differ from a * vsigmoid(b)", (long long)glu_bad);
    free(x);
    free(y);
    free(a);
    free(g);
}

int main(void) {
    test_begin("test_activation");
    value_tests();
    grad_tests();
    gate_tests();
    kink_tests();
    no_grad_tests();
    in_place_tests();
    vmath_tests();
    return test_end();
}
