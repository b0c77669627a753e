/* test_shape.c: shape ops (concat, slice, repeat, broadcast_to, transpose, reshape) against
 * PyTorch fixtures, finite-difference gradchecks over every input, naive references on sizes
 * large enough for the OpenMP paths, and the CHECK messages on bad shapes. */
#include "test.h"
#include "../src/ops/shape.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Arguments of one shape op. */
typedef struct ShapeArgs {
    int n;                          /* concat: number of inputs */
    int dim, start, end;            /* concat, slice; transpose uses dim and start as d0, d1 */
    int ndim, shape[TENSOR_MAX_DIMS]; /* broadcast_to, reshape target; repeat reps in shape */
} ShapeArgs;

static Tensor *fwd_concat(Tape *tp, Tensor **in, void *ctx) {
    const ShapeArgs *a = ctx;
    return op_concat(tp, a->n, in, a->dim);
}
static Tensor *fwd_slice(Tape *tp, Tensor **in, void *ctx) {
    const ShapeArgs *a = ctx;
    return op_slice(tp, in[0], a->dim, a->start, a->end);
}
static Tensor *fwd_repeat(Tape *tp, Tensor **in, void *ctx) { return op_repeat(tp, in[0], ((const ShapeArgs *)ctx)->shape); }
static Tensor *fwd_broadcast(Tape *tp, Tensor **in, void *ctx) {
    const ShapeArgs *a = ctx;
    return op_broadcast_to(tp, in[0], a->ndim, a->shape);
}
static Tensor *fwd_transpose(Tape *tp, Tensor **in, void *ctx) {
    const ShapeArgs *a = ctx;
    return op_transpose(tp, in[0], a->dim, a->start);
}
static Tensor *fwd_reshape(Tape *tp, Tensor **in, void *ctx) {
    const ShapeArgs *a = ctx;
    return op_reshape(tp, in[0], a->ndim, a->shape);
}

/* ---------------------------------------------------------------- fixtures */

#define MAX_IN 64

/* Forward vs <name>.out, backward seeded with <name>.gout vs <name>.grad<i> for every input
 * that has one (inputs without a .grad key are loaded without requires_grad). */
static void value_case(SafeTensors *fx, const char *name, GradcheckFn fn, ShapeArgs *args) {
    char k[128], what[160];
    Tensor *in[MAX_IN];
    int n = 0;
    for (; n < MAX_IN; n++) {
        snprintf(k, sizeof k, "%s.in%d", name, n);
        if (!fixture_has(fx, k)) break;
        char kg[128];
        snprintf(kg, sizeof kg, "%s.grad%d", name, n);
        in[n] = fixture_tensor(fx, k, fixture_has(fx, kg));
    }
    if (args->n == 0) args->n = n;
    snprintf(k, sizeof k, "%s.out", name);
    Tensor *want = fixture_tensor(fx, k, 0);
    snprintf(k, sizeof k, "%s.gout", name);
    Tensor *gout = fixture_tensor(fx, k, 0);
    Tape tp;
    tape_init(&tp);
    Tensor *y = fn(&tp, in, args);
    snprintf(what, sizeof what, "%s forward", name);
    char s1[96], s2[96];
    if (EXPECT(tensor_same_shape(y, want), "%s: shape %s, want %s", what, tensor_shape_str(y, s1, sizeof s1),
               tensor_shape_str(want, s2, sizeof s2)))
        expect_close(what, y->data, want->data, want->n, 1e-6);
    const float *seed = gout->data;
    tape_backward_seeded(&tp, 1, &y, &seed);
    for (int i = 0; i < n; i++) {
        if (!in[i]->requires_grad) continue;
        snprintf(k, sizeof k, "%s.grad%d", name, i);
        Tensor *g = fixture_tensor(fx, k, 0);
        snprintf(what, sizeof what, "%s grad of input %d", name, i);
        expect_close(what, in[i]->grad, g->data, g->n, 1e-6);
        tensor_free(g);
    }
    tape_free(&tp);
    for (int i = 0; i < n; i++) tensor_free(in[i]);
    tensor_free(want);
    tensor_free(gout);
}

static void fixture_cases(void) {
    SafeTensors *fx = fixture_open("shape");
    if (!fx) return;
    value_case(fx, "concat3", fwd_concat, &(ShapeArgs){.dim = 1});
    value_case(fx, "concat_partial", fwd_concat, &(ShapeArgs){.dim = -1});
    value_case(fx, "concat48", fwd_concat, &(ShapeArgs){.dim = 0});
    value_case(fx, "slice_mid", fwd_slice, &(ShapeArgs){.dim = 1, .start = 2, .end = 5});
    value_case(fx, "slice_neg", fwd_slice, &(ShapeArgs){.dim = -1, .start = -3, .end = 5});
    value_case(fx, "repeat", fwd_repeat, &(ShapeArgs){.shape = {2, 1, 3}});
    value_case(fx, "broadcast", fwd_broadcast, &(ShapeArgs){.ndim = 4, .shape = {2, 3, 4, 5}});
    value_case(fx, "broadcast_last", fwd_broadcast, &(ShapeArgs){.ndim = 2, .shape = {-1, 6}});
    value_case(fx, "transpose", fwd_transpose, &(ShapeArgs){.dim = 1, .start = 3});
    value_case(fx, "transpose6", fwd_transpose, &(ShapeArgs){.dim = 5, .start = 0});
    value_case(fx, "reshape", fwd_reshape, &(ShapeArgs){.ndim = 2, .shape = {6, -1}});
    fixture_close(fx);
}

/* ---------------------------------------------------------------- gradchecks */

static Tensor *rand_leaf(int ndim, const int *shape, uint64_t seed) {
    Tensor *t = tensor_alloc(ndim, shape, 1);
    fill_uniform(t->data, t->n, -1, 1, seed);
    return t;
}
#define RAND_LEAF(seed, ...) rand_leaf(NDIMS(__VA_ARGS__), (int[]){__VA_ARGS__}, (seed))

static void check1(const char *name, GradcheckFn fn, Tensor *x, ShapeArgs a) {
    Tensor *in[1] = {x};
    gradcheck(name, fn, 1, in, &a, NULL);
    tensor_free(x);
}

static void gradchecks(void) {
    Tensor *c[3] = {RAND_LEAF(1, 2, 3, 4), RAND_LEAF(2, 2, 1, 4), RAND_LEAF(3, 2, 5, 4)};
    gradcheck("concat dim 1", fwd_concat, 3, c, &(ShapeArgs){.n = 3, .dim = 1}, NULL);
    /* only the middle input requires grad; a frozen one keeps its (zeroed) buffer untouched */
    c[0]->requires_grad = false;
    memset(c[0]->grad, 0, (size_t)c[0]->n * sizeof(float));
    c[2]->requires_grad = false;
    gradcheck("concat partial grad", fwd_concat, 3, c, &(ShapeArgs){.n = 3, .dim = -2}, NULL);
    int64_t touched = 0;
    for (int64_t i = 0; i < c[0]->n; i++) touched += c[0]->grad[i] != 0.0f;
    EXPECT(touched == 0, "concat: frozen input got %lld gradient elements", (long long)touched);
    for (int i = 0; i < 3; i++) tensor_free(c[i]);

    /* the same tensor twice: gradients of both uses add up */
    Tensor *x = RAND_LEAF(4, 3, 2);
    Tensor *xx[2] = {x, x};
    gradcheck("concat x with itself", fwd_concat, 2, xx, &(ShapeArgs){.n = 2, .dim = 0}, NULL);
    tensor_free(x);

    Tensor *many[48];
    for (int i = 0; i < 48; i++) many[i] = RAND_LEAF(100 + i, 2, 1, 3);
    gradcheck("concat 48 pieces", fwd_concat, 48, many, &(ShapeArgs){.n = 48, .dim = 1}, &(GradcheckOpts){.max_elems = 8});
    for (int i = 0; i < 48; i++) tensor_free(many[i]);

    check1("slice dim 1", fwd_slice, RAND_LEAF(5, 3, 7, 4), (ShapeArgs){.dim = 1, .start = 2, .end = 5});
    check1("slice dim 0", fwd_slice, RAND_LEAF(6, 5, 3), (ShapeArgs){.dim = 0, .start = 1, .end = -1});
    check1("repeat (2, 1, 3)", fwd_repeat, RAND_LEAF(7, 2, 3, 4), (ShapeArgs){.shape = {2, 1, 3}});
    check1("repeat size-1 dims", fwd_repeat, RAND_LEAF(8, 1, 3, 1), (ShapeArgs){.shape = {3, 2, 4}});
    check1("broadcast (3,1,5)->(2,3,4,5)", fwd_broadcast, RAND_LEAF(9, 3, 1, 5), (ShapeArgs){.ndim = 4, .shape = {2, 3, 4, 5}});
    check1("broadcast last dim", fwd_broadcast, RAND_LEAF(10, 4, 1), (ShapeArgs){.ndim = 3, .shape = {2, 4, 7}});
    check1("transpose(1, 3)", fwd_transpose, RAND_LEAF(11, 2, 3, 4, 5), (ShapeArgs){.dim = 1, .start = 3});
    check1("transpose(-1, 0) 6-d", fwd_transpose, RAND_LEAF(12, 2, 1, 3, 2, 2, 3), (ShapeArgs){.dim = -1, .start = 0});
    check1("transpose(1, 1)", fwd_transpose, RAND_LEAF(13, 2, 3, 4), (ShapeArgs){.dim = 1, .start = 1});
    check1("reshape", fwd_reshape, RAND_LEAF(14, 2, 3, 4), (ShapeArgs){.ndim = 3, .shape = {4, -1, 2}});
}

/* ---------------------------------------------------------------- naive references (OpenMP paths) */

/* Row-major offset of idx in shape, with stride 0 where shape is 1 and the index is not (broadcast). */
static int64_t bcast_offset(int nd, const int *idx, const int *shape) {
    int64_t off = 0;
    for (int k = 0; k < nd; k++) off = off * shape[k] + (shape[k] == 1 ? 0 : idx[k]);
    return off;
}

static void unravel(int64_t i, int nd, const int *shape, int *idx) {
    for (int k = nd - 1; k >= 0; k--) {
        idx[k] = (int)(i % shape[k]);
        i /= shape[k];
    }
}

/* Large broadcast and repeat: forward exact, backward vs double sums. */
static void large_expand(void) {
    int in_shape[4] = {1, 40, 1, 30}, out_shape[4] = {8, 40, 5, 30}, idx[4];
    Tensor *x = rand_leaf(4, in_shape, 21);
    Tape tp;
    tape_init(&tp);
    Tensor *y = op_broadcast_to(&tp, x, 4, out_shape);
    float *gout = xmalloc((size_t)y->n * sizeof(float));
    fill_uniform(gout, y->n, -1, 1, 22);
    int64_t bad = 0;
    double *ref = xcalloc((size_t)x->n, sizeof(double));
    for (int64_t i = 0; i < y->n; i++) {
        unravel(i, 4, out_shape, idx);
        int64_t j = bcast_offset(4, idx, in_shape);
        bad += y->data[i] != x->data[j];
        ref[j] += gout[i];
    }
    EXPECT(bad == 0, "large broadcast forward: %lld wrong elements", (long long)bad);
    const float *seed = gout;
    tape_backward_seeded(&tp, 1, &y, &seed);
    double worst = 0;
    for (int64_t j = 0; j < x->n; j++) worst = fmax(worst, fabs(x->grad[j] - ref[j]));
    EXPECT(worst < 1e-4, "large broadcast backward: max abs err %.3g", worst);
    free(gout);
    free(ref);

    /* repeat (3, 40, 2, 30) -> reps (2, 1, 5, 3) */
    tape_reset(&tp);
    Tensor *r = RAND_LEAF(23, 3, 40, 2, 30);
    memset(r->grad, 0, (size_t)r->n * sizeof(float));
    int reps[4] = {2, 1, 5, 3}, rs[4];
    for (int k = 0; k < 4; k++) rs[k] = r->shape[k] * reps[k];
    y = op_repeat(&tp, r, reps);
    gout = xmalloc((size_t)y->n * sizeof(float));
    fill_uniform(gout, y->n, -1, 1, 24);
    ref = xcalloc((size_t)r->n, sizeof(double));
    bad = 0;
    for (int64_t i = 0; i < y->n; i++) {
        unravel(i, 4, rs, idx);
        int64_t j = 0;
        for (int k = 0; k < 4; k++) j = j * r->shape[k] + idx[k] % r->shape[k];
        bad += y->data[i] != r->data[j];
        ref[j] += gout[i];
    }
    EXPECT(bad == 0, "large repeat forward: %lld wrong elements", (long long)bad);
    seed = gout;
    tape_backward_seeded(&tp, 1, &y, &seed);
    worst = 0;
    for (int64_t j = 0; j < r->n; j++) worst = fmax(worst, fabs(r->grad[j] - ref[j]));
    EXPECT(worst < 1e-4, "large repeat backward: max abs err %.3g", worst);
    free(gout);
    free(ref);
    tape_free(&tp);
    tensor_free(x);
    tensor_free(r);
}

/* Large transpose, concat of x with itself and slice: forward and backward exact. */
static void large_copies(void) {
    Tape tp;
    tape_init(&tp);
    Tensor *x = RAND_LEAF(31, 4, 30, 5, 70);
    Tensor *y = op_transpose(&tp, x, 1, 3); /* (4, 70, 5, 30) */
    int64_t bad = 0;
    for (int a = 0; a < 4; a++)
        for (int i = 0; i < 30; i++)
            for (int m = 0; m < 5; m++)
                for (int j = 0; j < 70; j++)
                    bad += y->data[((a * 70 + j) * 5 + m) * 30 + i] != x->data[((a * 30 + i) * 5 + m) * 70 + j];
    EXPECT(bad == 0, "large transpose forward: %lld wrong elements", (long long)bad);
    /* backward of y = transpose(x) seeded with y itself gives x back */
    const float *seed = y->data;
    tape_backward_seeded(&tp, 1, &y, &seed);
    bad = 0;
    for (int64_t i = 0; i < x->n; i++) bad += x->grad[i] != x->data[i];
    EXPECT(bad == 0, "large transpose backward: %lld wrong elements", (long long)bad);

    /* concat(x, x) along dim 1 then the second half sliced out: grad of x = 2 * seed half */
    tape_reset(&tp);
    memset(x->grad, 0, (size_t)x->n * sizeof(float));
    Tensor *xs[2] = {x, x};
    Tensor *c = op_concat(&tp, 2, xs, 1);        /* (4, 60, 5, 70) */
    Tensor *s = op_slice(&tp, c, 1, 15, 45);     /* x[:, 15:30] and x[:, 0:15] */
    bad = 0;
    for (int a = 0; a < 4; a++)
        for (int i = 0; i < 30; i++) {
            int src = (i + 15) % 30;
            bad += memcmp(s->data + (int64_t)(a * 30 + i) * 350, x->data + (int64_t)(a * 30 + src) * 350, 350 * sizeof(float)) != 0;
        }
    EXPECT(bad == 0, "large concat+slice forward: %lld wrong rows", (long long)bad);
    float *ones = xmalloc((size_t)s->n * sizeof(float));
    for (int64_t i = 0; i < s->n; i++) ones[i] = 1.0f;
    seed = ones;
    tape_backward_seeded(&tp, 1, &s, &seed);
    bad = 0;
    for (int64_t i = 0; i < x->n; i++) bad += x->grad[i] != 1.0f;
    EXPECT(bad == 0, "large concat+slice backward: %lld elements differ from 1", (long long)bad);
    free(ones);
    tape_free(&tp);
    tensor_free(x);
}

/* ---------------------------------------------------------------- graph behaviour */

static void graph_behaviour(void) {
    Tape tp;
    tape_init(&tp);
    Tensor *a = tensor_alloc(2, (int[]){2, 3}, 0), *b = tensor_alloc(2, (int[]){2, 3}, 0);
    Tensor *ab[2] = {a, b};
    Tensor *y = op_concat(&tp, 2, ab, 0);
    EXPECT(!y->requires_grad && tp.n_nodes == 0, "concat of constants is not recorded");
    b->grad = xcalloc(6, sizeof(float));
    b->requires_grad = true;
    tape_no_grad_begin(&tp);
    y = op_reshape(&tp, op_transpose(&tp, op_concat(&tp, 2, ab, 1), 0, 1), 1, (int[]){-1});
    tape_no_grad_end(&tp);
    EXPECT(!y->requires_grad && tp.n_nodes == 0 && y->ndim == 1 && y->shape[0] == 12, "no_grad: nothing recorded");
    y = OP_RESHAPE(&tp, op_concat(&tp, 2, ab, 1), 3, 4);
    EXPECT(y->requires_grad && tp.n_nodes == 2 && y->data != a->data, "reshape materialises a recorded copy");
    tape_free(&tp);
    tensor_free(a);
    tensor_free(b);
}

/* Empty slice concatenated back: x == concat(x[:, :2], x[:, 2:2], x[:, 2:]). */
static Tensor *fwd_empty_pieces(Tape *tp, Tensor **in, void *ctx) {
    Tensor *x = in[0];
    Tensor *parts[3] = {op_slice(tp, x, 1, 0, 2), op_slice(tp, x, 1, 2, 2), op_slice(tp, x, 1, 2, x->shape[1])};
    return op_concat(tp, 3, parts, 1);
}

static void empty_pieces(void) {
    Tensor *x = RAND_LEAF(41, 2, 5, 3);
    Tape tp;
    tape_init(&tp);
    Tensor *y = fwd_empty_pieces(&tp, &x, NULL);
    EXPECT(tensor_same_shape(y, x) && memcmp(y->data, x->data, (size_t)x->n * sizeof(float)) == 0, "empty slice: concat gives x back");
    Tensor *e = op_repeat(&tp, x, (int[]){1, 0, 2});
    EXPECT(e->n == 0 && e->shape[1] == 0 && e->shape[2] == 6, "repeat by 0 gives an empty tensor");
    tape_free(&tp);
    gradcheck("concat with an empty slice", fwd_empty_pieces, 1, &x, NULL, NULL);
    tensor_free(x);
}

/* ---------------------------------------------------------------- CHECK messages */

static void die_concat(void) {
    Tape tp;
    tape_init(&tp);
    Tensor *xs[2] = {TNEW(&tp, 2, 3, 4), TNEW(&tp, 2, 4, 5)};
    op_concat(&tp, 2, xs, 1);
}
static void die_slice(void) {
    Tape tp;
    tape_init(&tp);
    op_slice(&tp, TNEW(&tp, 2, 3), 1, 1, 4);
}
static void die_broadcast(void) {
    Tape tp;
    tape_init(&tp);
    op_broadcast_to(&tp, TNEW(&tp, 3, 2), 2, (int[]){3, 4});
}
static void die_reshape(void) {
    Tape tp;
    tape_init(&tp);
    OP_RESHAPE(&tp, TNEW(&tp, 2, 3), 4, -1);
}
static void die_transpose(void) {
    Tape tp;
    tape_init(&tp);
    op_transpose(&tp, TNEW(&tp, 2, 3), 0, 2);
}

static void die_blocked_relu(void) { /* a blocked tensor into an op that does not take it */
    Tape tp;
    tape_init(&tp);
    Tensor *x = TNEW(&tp, 1, 16, 2, 2);
    x->blocked = true;
    op_transpose(&tp, x, 2, 3);
}
static void die_blocked_mixed(void) {
    Tape tp;
    tape_init(&tp);
    Tensor *xs[2] = {TNEW(&tp, 1, 16, 2, 2), TNEW(&tp, 1, 16, 2, 2)};
    xs[0]->blocked = true;
    op_concat(&tp, 2, xs, 1);
}

/* nChw16c: concat along channels keeps the layout (the same bits as concatenating NCHW and
 * blocking the result, forward and gradient); unblock16 converts exactly, its gradient too. */
static void blocked_layout(void) {
    const int N = 2, H = 3, W = 5, S = H * W, C0 = 16, C1 = 32, C = C0 + C1;
    Tape tp;
    tape_init(&tp);
    Tensor *a = tape_leaf(&tp, 4, (int[]){N, C0, H, W}), *b = tape_leaf(&tp, 4, (int[]){N, C1, H, W});
    float *pa = xmalloc((size_t)a->n * sizeof(float)), *pb = xmalloc((size_t)b->n * sizeof(float));
    fill_uniform(pa, a->n, -1, 1, 501);
    fill_uniform(pb, b->n, -1, 1, 502);
    to_blocked16(a->data, pa, N, C0, S);
    to_blocked16(b->data, pb, N, C1, S);
    a->blocked = b->blocked = true;
    Tensor *y = op_concat(&tp, 2, (Tensor *[]){a, b}, 1);
    Tensor *u = op_unblock16(&tp, y);
    float *want = xmalloc((size_t)u->n * sizeof(float));
    for (int n = 0; n < N; n++) { /* NCHW concat of the plain inputs */
        memcpy(want + (size_t)n * C * S, pa + (size_t)n * C0 * S, (size_t)C0 * S * sizeof(float));
        memcpy(want + ((size_t)n * C + C0) * S, pb + (size_t)n * C1 * S, (size_t)C1 * S * sizeof(float));
    }
    EXPECT(y->blocked && !u->blocked && memcmp(u->data, want, (size_t)u->n * sizeof(float)) == 0,
           "concat of nChw16c tensors, then unblock16: the NCHW concat's values");
    float *g = xmalloc((size_t)u->n * sizeof(float)), *ga = xmalloc((size_t)a->n * sizeof(float));
    fill_uniform(g, u->n, -1, 1, 503);
    const float *seed = g;
    tape_backward_seeded(&tp, 1, &u, &seed);
    from_blocked16(ga, a->grad, N, C0, S);
    int ok = 1;
    for (int n = 0; n < N; n++) ok &= memcmp(ga + (size_t)n * C0 * S, g + (size_t)n * C * S, (size_t)C0 * S * sizeof(float)) == 0;
    EXPECT(ok, "unblock16 and concat backward: the gradient reaches the first input in its layout");
    free(pa), free(pb), free(want), free(g), free(ga);
    tape_free(&tp);
    expect_death("blocked input to transpose", die_blocked_relu, "op transpose: input 0 is in the blocked nChw16c layout");
    expect_death("blocked and plain concat", die_blocked_mixed, "concat: input 1 is NCHW, input 0 nChw16c");
}

static void check_messages(void) {
    expect_death("concat mismatch", die_concat, "concat along dim 1: input 1 has shape (2, 4, 5), input 0 has shape (2, 3, 4)");
    expect_death("slice range", die_slice, "slice: [1:4] along dim 1 is out of range for shape (2, 3)");
    expect_death("broadcast", die_broadcast, "broadcast_to: (3, 2) cannot expand to size 4 in dim 1");
    expect_death("reshape", die_reshape, "reshape: cannot infer dim 1 of (2, 3)");
    expect_death("transpose", die_transpose, "transpose: dim 2 out of range for a 2-d tensor");
}

int main(void) {
    test_begin("test_shape");
    fixture_cases();
    gradchecks();
    large_expand();
    large_copies();
    graph_behaviour();
    empty_pieces();
    check_messages();
    blocked_layout();
    return test_end();
}
