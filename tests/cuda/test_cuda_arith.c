/* test_cuda_arith.c: the CUDA twins of src/ops/arith.c against the CPU kernels on seeded random
 * inputs (make test-cuda; built only with CUDA=1): scalar and unary ops, broadcast binary ops over
 * the shapes the networks use, dim reductions and whole-tensor sums. Gradients start from random
 * values (backward adds), and each backward also runs with NULL gradients. Bounds: TOL_EW for
 * element-wise results, TOL_RED where the twin sums in another order. Without a CUDA device it
 * skips visibly. */
#include "cuda_test.h"
#include "../../src/ops/arith.h"
#include "../../src/ops/cuda/cuda_ops.h"

#include <math.h>

static float *dalloc(int64_t n) { return cu_alloc((size_t)(n > 0 ? n : 1) * sizeof(float)); }
static float *copy_of(const float *h, int64_t n) {
    float *c = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    memcpy(c, h, (size_t)n * sizeof(float));
    return c;
}

/* ------------------------------------------------------------------ unary and scalar ops */

typedef void (*Unary)(float *, const float *, int64_t);
typedef void (*UnaryBwd)(float *, const float *, const float *, int64_t);

/* forward y = f(x) and backward dx += g(dy, saved) where saved is x or y; x in [lo, hi) */
static void unary_case(const char *name, Unary cpu_f, Unary gpu_f, UnaryBwd cpu_b, UnaryBwd gpu_b, int saved_is_out,
                       float lo, float hi, uint64_t seed) {
    int64_t n = 100003;
    float *x = rnd(n, lo, hi, seed), *dy = rnd(n, -1, 1, seed + 1), *dx0 = rnd(n, -1, 1, seed + 2);
    float *y = xmalloc((size_t)n * sizeof(float)), *dx = copy_of(dx0, n);
    cpu_f(y, x, n);
    cpu_b(dx, dy, saved_is_out ? y : x, n);
    cpu_b(NULL, dy, saved_is_out ? y : x, n);
    float *dX = up(x, n), *dY = dalloc(n), *dDy = up(dy, n), *dDx = up(dx0, n);
    gpu_f(dY, dX, n);
    gpu_b(dDx, dDy, saved_is_out ? dY : dX, n);
    gpu_b(NULL, dDy, saved_is_out ? dY : dX, n); /* skipped */
    char w[80];
    snprintf(w, sizeof w, "%s forward", name);
    check(w, dY, y, n, TOL_EW);
    snprintf(w, sizeof w, "%s backward (added; NULL skipped)", name);
    check(w, dDx, dx, n, TOL_EW);
    cu_free(dX), cu_free(dDy);
    free(x), free(dy), free(dx0), free(y), free(dx);
}

static void scale_f(float *o, const float *i, int64_t n) { scale_forward(o, i, 0.7f, n); }
static void scale_fg(float *o, const float *i, int64_t n) { scale_forward_cuda(o, i, 0.7f, n); }
static void scale_b(float *d, const float *g, const float *x, int64_t n) { (void)x, scale_backward(d, g, 0.7f, n); }
static void scale_bg(float *d, const float *g, const float *x, int64_t n) { (void)x, scale_backward_cuda(d, g, 0.7f, n); }
static void adds_f(float *o, const float *i, int64_t n) { add_scalar_forward(o, i, -1.3f, n); }
static void adds_fg(float *o, const float *i, int64_t n) { add_scalar_forward_cuda(o, i, -1.3f, n); }
static void adds_b(float *d, const float *g, const float *x, int64_t n) { (void)x, add_scalar_backward(d, g, n); }
static void adds_bg(float *d, const float *g, const float *x, int64_t n) { (void)x, add_scalar_backward_cuda(d, g, n); }

/* clamp with values exactly at the bounds (the gradient passes there) and one open side */
static void clamp_case(float lo, float hi) {
    int64_t n = 65537;
    float *x = rnd(n, -3, 3, 40), *dy = rnd(n, -1, 1, 41), *dx0 = rnd(n, -1, 1, 42);
    for (int64_t i = 0; i < n; i += 97) x[i] = isfinite(lo) ? lo : -1e30f;
    for (int64_t i = 50; i < n; i += 101) x[i] = isfinite(hi) ? hi : 1e30f;
    float *y = xmalloc((size_t)n * sizeof(float)), *dx = copy_of(dx0, n);
    clamp_forward(y, x, lo, hi, n);
    clamp_backward(dx, dy, x, lo, hi, n);
    float *dX = up(x, n), *dY = dalloc(n), *dDy = up(dy, n), *dDx = up(dx0, n);
    clamp_forward_cuda(dY, dX, lo, hi, n);
    clamp_backward_cuda(dDx, dDy, dX, lo, hi, n);
    clamp_backward_cuda(NULL, dDy, dX, lo, hi, n);
    char w[80];
    snprintf(w, sizeof w, "clamp [%g, %g] forward", lo, hi), check(w, dY, y, n, TOL_EW);
    snprintf(w, sizeof w, "clamp [%g, %g] backward (added)", lo, hi), check(w, dDx, dx, n, TOL_EW);
    cu_free(dX), cu_free(dDy);
    free(x), free(dy), free(dx0), free(y), free(dx);
}

/* ------------------------------------------------------------------ broadcast binary ops */

static const char *const op_names[] = {"add", "sub", "mul", "div"};

/* a (shape_a) OP b (shape_b), every op: forward, both gradients added, then each with the other NULL */
static void binary_case(int nda, const int *sa, int ndb, const int *sb, uint64_t seed) {
    BroadcastPlan p;
    int ndo, so[TENSOR_MAX_DIMS];
    EXPECT(broadcast_plan(&p, &ndo, so, nda, sa, ndb, sb) == 0, "shapes broadcast");
    char desc[96];
    int len = snprintf(desc, sizeof desc, "(");
    for (int i = 0; i < nda; i++) len += snprintf(desc + len, sizeof desc - len, "%s%d", i ? "," : "", sa[i]);
    len += snprintf(desc + len, sizeof desc - len, ")x(");
    for (int i = 0; i < ndb; i++) len += snprintf(desc + len, sizeof desc - len, "%s%d", i ? "," : "", sb[i]);
    snprintf(desc + len, sizeof desc - len, ")");
    int64_t n = p.n, na = p.na, nb = p.nb;
    double tol_a = na != n ? TOL_RED : TOL_EW, tol_b = nb != n ? TOL_RED : TOL_EW;
    float *a = rnd(na, -2, 2, seed), *b = rnd(nb, 0.5f, 2, seed + 1), *dy = rnd(n, -1, 1, seed + 2);
    for (int64_t i = 0; i < nb; i += 3) b[i] = -b[i]; /* away from 0 for div, both signs */
    float *da0 = rnd(na, -1, 1, seed + 3), *db0 = rnd(nb, -1, 1, seed + 4);
    float *dA = up(a, na), *dB = up(b, nb), *dDy = up(dy, n);
    for (int op = BINARY_ADD; op <= BINARY_DIV; op++) {
        float *y = xmalloc((size_t)n * sizeof(float)), *da = copy_of(da0, na), *db = copy_of(db0, nb);
        float *da1 = copy_of(da0, na), *db1 = copy_of(db0, nb);
        binary_forward(y, a, b, &p, (BinaryOp)op);
        binary_backward(da, db, dy, a, b, &p, (BinaryOp)op);
        binary_backward(da1, NULL, dy, a, b, &p, (BinaryOp)op);
        binary_backward(NULL, db1, dy, a, b, &p, (BinaryOp)op);
        float *dY = dalloc(n), *dDa = up(da0, na), *dDb = up(db0, nb), *dDa1 = up(da0, na), *dDb1 = up(db0, nb);
        binary_forward_cuda(dY, dA, dB, &p, (BinaryOp)op);
        binary_backward_cuda(dDa, dDb, dDy, dA, dB, &p, (BinaryOp)op);
        binary_backward_cuda(dDa1, NULL, dDy, dA, dB, &p, (BinaryOp)op);
        binary_backward_cuda(NULL, dDb1, dDy, dA, dB, &p, (BinaryOp)op);
        char w[160];
        snprintf(w, sizeof w, "%s %s fwd", op_names[op], desc), check(w, dY, y, n, TOL_EW);
        snprintf(w, sizeof w, "%s %s da (added)", op_names[op], desc), check(w, dDa, da, na, tol_a);
        snprintf(w, sizeof w, "%s %s db (added)", op_names[op], desc), check(w, dDb, db, nb, tol_b);
        snprintf(w, sizeof w, "%s %s da, db NULL", op_names[op], desc), check(w, dDa1, da1, na, tol_a);
        snprintf(w, sizeof w, "%s %s db, da NULL", op_names[op], desc), check(w, dDb1, db1, nb, tol_b);
        free(y), free(da), free(db), free(da1), free(db1);
    }
    cu_free(dA), cu_free(dB), cu_free(dDy);
    free(a), free(b), free(dy), free(da0), free(db0);
}

/* the block-per-destination reduction of an expanded operand's gradient gives the same bits twice */
static void binary_determinism(void) {
    int sa[] = {16, 64, 8, 8}, sb[] = {1, 64, 1, 1};
    BroadcastPlan p;
    int ndo, so[TENSOR_MAX_DIMS];
    broadcast_plan(&p, &ndo, so, 4, sa, 4, sb);
    float *a = rnd(p.na, -2, 2, 60), *b = rnd(p.nb, 0.5f, 2, 61), *dy = rnd(p.n, -1, 1, 62);
    float *dA = up(a, p.na), *dB = up(b, p.nb), *dDy = up(dy, p.n), *g[2];
    float *h[2] = {xmalloc((size_t)p.nb * sizeof(float)), xmalloc((size_t)p.nb * sizeof(float))};
    for (int r = 0; r < 2; r++) {
        g[r] = dalloc(p.nb);
        cu_memset0(g[r], (size_t)p.nb * sizeof(float));
        binary_backward_cuda(NULL, g[r], dDy, dA, dB, &p, BINARY_MUL);
        cu_download(h[r], g[r], (size_t)p.nb * sizeof(float));
        cu_free(g[r]);
    }
    EXPECT(memcmp(h[0], h[1], (size_t)p.nb * sizeof(float)) == 0, "mul db over (16,64,8,8)x(1,64,1,1): same bits twice");
    cu_free(dA), cu_free(dB), cu_free(dDy);
    free(a), free(b), free(dy), free(h[0]), free(h[1]);
}

/* ------------------------------------------------------------------ reductions */

static void reduce_case(int64_t OUTER, int64_t D, int64_t INNER, int mean) {
    int64_t n = OUTER * D * INNER, m = OUTER * INNER;
    float *x = rnd(n, -1, 2, 70 + D), *dy = rnd(m, -1, 1, 71), *dx0 = rnd(n, -1, 1, 72);
    float *y = xmalloc((size_t)m * sizeof(float)), *dx = copy_of(dx0, n);
    (mean ? mean_forward : sum_forward)(y, x, OUTER, D, INNER);
    (mean ? mean_backward : sum_backward)(dx, dy, OUTER, D, INNER);
    float *dX = up(x, n), *dY = dalloc(m), *dDy = up(dy, m), *dDx = up(dx0, n);
    (mean ? mean_forward_cuda : sum_forward_cuda)(dY, dX, OUTER, D, INNER);
    (mean ? mean_backward_cuda : sum_backward_cuda)(dDx, dDy, OUTER, D, INNER);
    (mean ? mean_backward_cuda : sum_backward_cuda)(NULL, dDy, OUTER, D, INNER);
    char w[96];
    const char *nm = mean ? "mean" : "sum";
    snprintf(w, sizeof w, "%s (%lld,%lld,%lld) fwd", nm, (long long)OUTER, (long long)D, (long long)INNER);
    check(w, dY, y, m, TOL_RED);
    snprintf(w, sizeof w, "%s (%lld,%lld,%lld) bwd (added)", nm, (long long)OUTER, (long long)D, (long long)INNER);
    check(w, dDx, dx, n, TOL_EW);
    cu_free(dX), cu_free(dDy);
    free(x), free(dy), free(dx0), free(y), free(dx);
}

static void reduce_all_case(int64_t n, int mean) {
    float *x = rnd(n, -1, 2, 80 + n), *dy = rnd(1, -1, 1, 81), *dx0 = rnd(n, -1, 1, 82);
    float y, *dx = copy_of(dx0, n);
    (mean ? mean_all_forward : sum_all_forward)(&y, x, n);
    (mean ? mean_all_backward : sum_all_backward)(dx, dy, n);
    float *dX = up(x, n), *dY = dalloc(1), *dY2 = dalloc(1), *dDy = up(dy, 1), *dDx = up(dx0, n);
    (mean ? mean_all_forward_cuda : sum_all_forward_cuda)(dY, dX, n);
    (mean ? mean_all_forward_cuda : sum_all_forward_cuda)(dY2, dX, n);
    (mean ? mean_all_backward_cuda : sum_all_backward_cuda)(dDx, dDy, n);
    (mean ? mean_all_backward_cuda : sum_all_backward_cuda)(NULL, dDy, n);
    float r1, r2;
    cu_download(&r1, dY, sizeof r1);
    cu_download(&r2, dY2, sizeof r2);
    const char *nm = mean ? "mean_all" : "sum_all";
    EXPECT(memcmp(&r1, &r2, sizeof r1) == 0, "%s (%lld): same bits twice", nm, (long long)n);
    char w[96];
    snprintf(w, sizeof w, "%s (%lld) fwd", nm, (long long)n), check(w, dY, &y, 1, TOL_RED);
    snprintf(w, sizeof w, "%s (%lld) bwd (added)", nm, (long long)n), check(w, dDx, dx, n, TOL_EW);
    cu_free(dX), cu_free(dY2), cu_free(dDy);
    free(x), free(dy), free(dx0), free(dx);
}

int main(void) {
    if (!cuda_test_begin("test_cuda_arith")) return test_end();
    unary_case("scale", scale_f, scale_fg, scale_b, scale_bg, 0, -3, 3, 1);
    unary_case("add_scalar", adds_f, adds_fg, adds_b, adds_bg, 0, -3, 3, 4);
    unary_case("exp", exp_forward, exp_forward_cuda, exp_backward, exp_backward_cuda, 1, -3, 3, 7);
    unary_case("log", log_forward, log_forward_cuda, log_backward, log_backward_cuda, 0, 0.01f, 5, 10);
    clamp_case(-1.0f, 0.5f);
    clamp_case(1e-8f, INFINITY);
    clamp_case(-INFINITY, 0.0f);

    /* the networks' shapes: per-channel (B,C,H,W)x(1,C,1,1), attention (B,T,D)x(B,1,D), a row
     * vector, an expanded left operand, an outer product, a 0-d operand, equal shapes; the long
     * reductions take the block-per-destination path */
    int s1[] = {3, 17, 9, 11}, s1b[] = {1, 17, 1, 1};
    binary_case(4, s1, 4, s1b, 100);
    binary_case(4, s1b, 4, s1, 110);
    int s2[] = {5, 18, 33}, s2b[] = {5, 1, 33};
    binary_case(3, s2, 3, s2b, 120);
    binary_case(3, s2b, 3, s2, 130);
    int s3[] = {7, 13}, s3b[] = {13};
    binary_case(2, s3, 1, s3b, 140);
    int s4[] = {7, 1}, s4b[] = {1, 13};
    binary_case(2, s4, 2, s4b, 150);
    int s5[] = {2, 3, 5}, s5b[] = {1};
    binary_case(3, s5, 0, s5b, 160);
    int s6[] = {37, 29};
    binary_case(2, s6, 2, s6, 170);
    int s7[] = {16, 64, 8, 8}, s7b[] = {1, 64, 1, 1};
    binary_case(4, s7, 4, s7b, 180);
    int s8[] = {200, 50}, s8b[] = {1, 50};
    binary_case(2, s8, 2, s8b, 190);
    int s9[] = {130, 4100}, s9b[] = {4100};
    binary_case(2, s9, 1, s9b, 200);
    int s10[] = {4, 1, 6, 1}, s10b[] = {3, 5, 1};
    binary_case(4, s10, 3, s10b, 210);
    binary_determinism();

    reduce_case(5, 19, 33, 0);
    reduce_case(5, 19, 33, 1);
    reduce_case(7, 300, 1, 0);
    reduce_case(7, 300, 1, 1);
    reduce_case(3, 200, 2000, 1);
    reduce_case(2, 500, 40, 0);
    reduce_case(1, 1, 17, 1);
    reduce_all_case(17, 0);
    reduce_all_case(1000003, 0);
    reduce_all_case(1000003, 1);
    reduce_all_case(4099, 1);

    CuStats st = cu_stats();
    printf("  device memory: peak live %.1f MiB, %zu cudaMalloc calls\n", st.peak_live / 1048576.0, st.n_malloc);
    EXPECT(st.live == 0, "every device block was freed (%zu bytes live)", st.live);
    return test_end();
}
