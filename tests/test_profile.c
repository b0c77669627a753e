/* test_profile.c: the per-op profiler (src/core/profile.h): calls, FLOPs of conv2d / linear / bmm /
 * bilstm equal to their formulas forward and backward (dX and dW counted only when computed),
 * bytes, no accounting when off, no_grad ops still counted, reset, every op hooked (no calls
 * without PROFILE_OP_BEGIN), concurrent threads, and the printed table. */
#include "test.h"
#include "../src/core/profile.h"
#include "../src/ops/ops.h"

#include <pthread.h>
#include <string.h>

static Tensor *leaf(int ndim, const int *shape, int grad, uint64_t seed) {
    Tensor *t = tensor_alloc(ndim, shape, grad);
    fill_uniform(t->data, t->n, -1, 1, seed);
    return t;
}
#define LEAF(grad, seed, ...) leaf(NDIMS(__VA_ARGS__), (int[]){__VA_ARGS__}, (grad), (seed))

static int near(double a, double b) { return fabs(a - b) <= 1e-9 * fmax(1.0, fabs(b)); }

static void test_off(void) {
    profile_enable(0);
    profile_reset();
    Tensor *x = LEAF(1, 1, 5, 7), *w = LEAF(1, 2, 3, 7);
    Tape tp;
    tape_init(&tp);
    Tensor *y = op_linear(&tp, x, w, NULL);
    tape_backward(&tp, op_sum_all(&tp, y));
    ProfileStat f = profile_total(PROFILE_FWD), b = profile_total(PROFILE_BWD);
    EXPECT(f.calls == 0 && b.calls == 0 && f.flops == 0 && b.ms == 0, "off: nothing booked (fwd %lld, bwd %lld calls)",
           (long long)f.calls, (long long)b.calls);
    ProfileRow rows[4];
    EXPECT(profile_rows(rows, 4) == 0, "off: no rows");
    tape_free(&tp);
    tensor_free(x);
    tensor_free(w);
}

static void test_conv2d(void) {
    profile_reset();
    profile_enable(1);
    /* x (2, 3, 8, 8), w (4, 3, 3, 3), pad 1 -> y (2, 4, 8, 8): MACs = y.n * 3*3*3 */
    Tensor *x = LEAF(1, 3, 2, 3, 8, 8), *w = LEAF(1, 4, 4, 3, 3, 3), *bias = LEAF(1, 5, 4);
    Tape tp;
    tape_init(&tp);
    Tensor *y = op_conv2d(&tp, x, w, bias, 1, 1, 1, 1);
    double fwd = 2.0 * (2 * 4 * 8 * 8) * (3 * 3 * 3);
    ProfileStat s = profile_get("conv2d", PROFILE_FWD);
    EXPECT(s.calls == 1, "conv2d forward: 1 call, got %lld", (long long)s.calls);
    EXPECT(near(s.flops, fwd), "conv2d forward FLOPs %.0f, want %.0f", s.flops, fwd);
    EXPECT(near(s.bytes, 4.0 * (x->n + w->n + bias->n + y->n)), "conv2d forward bytes %.0f", s.bytes);
    EXPECT(s.ms > 0, "conv2d forward time %.6f ms > 0", s.ms);
    const float *seed = NULL;
    float *g = xcalloc((size_t)y->n, sizeof(float));
    for (int64_t i = 0; i < y->n; i++) g[i] = 1.0f;
    seed = g;
    tape_backward_seeded(&tp, 1, &y, &seed);
    s = profile_get("conv2d", PROFILE_BWD);
    EXPECT(s.calls == 1 && near(s.flops, 2 * fwd), "conv2d backward with dX and dW: %lld call, %.0f FLOPs, want %.0f",
           (long long)s.calls, s.flops, 2 * fwd);
    EXPECT(near(s.bytes, 4.0 * ((x->n + w->n + bias->n) * 2 + y->n)), "conv2d backward bytes %.0f", s.bytes);
    EXPECT(profile_get("tape_grad_alloc", PROFILE_BWD).calls == 1, "the gradient buffers are booked once per node");
    tape_free(&tp);

    /* frozen weight (no dW) and an input that needs no gradient: only one of the two products */
    w->requires_grad = false;
    profile_reset();
    tape_init(&tp);
    y = op_conv2d(&tp, x, w, NULL, 1, 1, 1, 1);
    tape_backward_seeded(&tp, 1, &y, &seed);
    s = profile_get("conv2d", PROFILE_BWD);
    EXPECT(near(s.flops, fwd), "conv2d backward, frozen weight: %.0f FLOPs, want %.0f (dX only)", s.flops, fwd);
    tape_free(&tp);
    w->requires_grad = true;
    x->requires_grad = false;
    profile_reset();
    tape_init(&tp);
    y = op_conv2d(&tp, x, w, NULL, 1, 1, 1, 1);
    tape_backward_seeded(&tp, 1, &y, &seed);
    s = profile_get("conv2d", PROFILE_BWD);
    EXPECT(near(s.flops, fwd), "conv2d backward, constant input: %.0f FLOPs, want %.0f (dW only)", s.flops, fwd);
    tape_free(&tp);

    /* strided, rectangular kernel: y (2, 4, 4, 3), MACs = y.n * 3 * 3 * 2 */
    profile_reset();
    tape_init(&tp);
    Tensor *w2 = LEAF(0, 6, 4, 3, 3, 2);
    y = op_conv2d(&tp, x, w2, NULL, 2, 3, 1, 0);
    s = profile_get("conv2d", PROFILE_FWD);
    EXPECT(near(s.flops, 2.0 * y->n * 3 * 3 * 2), "conv2d strided forward FLOPs %.0f, want %.0f", s.flops,
           2.0 * y->n * 3 * 3 * 2);
    tape_free(&tp);
    profile_enable(0);
    free(g);
    tensor_free(x);
    tensor_free(w);
    tensor_free(w2);
    tensor_free(bias);
}

static void test_linear_bmm(void) {
    profile_reset();
    profile_enable(1);
    Tensor *x = LEAF(1, 7, 5, 7), *w = LEAF(1, 8, 3, 7), *b = LEAF(1, 9, 3);
    Tensor *p = LEAF(1, 10, 2, 4, 3), *q = LEAF(0, 11, 2, 4, 5); /* bmm(p^T, q): (2, 3, 4) . (2, 4, 5) */
    Tape tp;
    tape_init(&tp);
    Tensor *y = op_linear(&tp, x, w, b);
    Tensor *z = op_bmm(&tp, p, q, 1, 0);
    Tensor *loss = op_add(&tp, op_sum_all(&tp, y), op_sum_all(&tp, z));
    tape_backward(&tp, loss);
    ProfileStat lf = profile_get("linear", PROFILE_FWD), lb = profile_get("linear", PROFILE_BWD);
    EXPECT(lf.calls == 1 && near(lf.flops, 2.0 * 5 * 3 * 7), "linear forward: %lld call, %.0f FLOPs, want 210",
           (long long)lf.calls, lf.flops);
    EXPECT(lb.calls == 1 && near(lb.flops, 2 * 210.0), "linear backward: %.0f FLOPs, want 420", lb.flops);
    ProfileStat bf = profile_get("bmm", PROFILE_FWD), bb = profile_get("bmm", PROFILE_BWD);
    EXPECT(near(bf.flops, 2.0 * 2 * 3 * 4 * 5), "bmm forward FLOPs %.0f, want 240", bf.flops);
    EXPECT(near(bb.flops, 240.0), "bmm backward, one operand needs a gradient: %.0f FLOPs, want 240", bb.flops);
    /* ops without a FLOP formula: counted calls, zero FLOPs */
    ProfileStat sf = profile_get("sum_all", PROFILE_FWD), af = profile_get("add", PROFILE_FWD);
    EXPECT(sf.calls == 2 && sf.flops == 0 && af.calls == 1, "sum_all: %lld calls, add: %lld call, no FLOPs",
           (long long)sf.calls, (long long)af.calls);
    ProfileStat tf = profile_total(PROFILE_FWD);
    EXPECT(tf.calls == 5 && near(tf.flops, 210.0 + 240.0), "forward total: %lld calls, %.0f FLOPs", (long long)tf.calls,
           tf.flops);
    tape_free(&tp);

    /* no_grad: forward ops are still booked, nothing backward */
    profile_reset();
    tape_init(&tp);
    tape_no_grad_begin(&tp);
    op_relu(&tp, op_linear(&tp, x, w, NULL));
    tape_no_grad_end(&tp);
    EXPECT(profile_get("linear", PROFILE_FWD).calls == 1 && profile_get("relu", PROFILE_FWD).calls == 1,
           "no_grad forward ops are counted");
    EXPECT(profile_total(PROFILE_BWD).calls == 0, "no backward booked in no_grad mode");
    tape_free(&tp);

    /* reset forgets everything */
    profile_reset();
    EXPECT(profile_total(PROFILE_FWD).calls == 0, "reset clears the rows");
    profile_enable(0);
    tensor_free(x);
    tensor_free(w);
    tensor_free(b);
    tensor_free(p);
    tensor_free(q);
}

static void test_bilstm(void) {
    const int B = 2, T = 4, IN = 3, H = 5, lens[2] = {4, 2};
    const double steps = 6; /* packed rows: sum of the lengths */
    Tensor *x = LEAF(1, 20, B, T, IN);
    Tensor *wt[8];
    for (int d = 0; d < 2; d++) {
        wt[4 * d + 0] = LEAF(1, 21 + d, 4 * H, IN);
        wt[4 * d + 1] = LEAF(1, 23 + d, 4 * H, H);
        wt[4 * d + 2] = LEAF(1, 25 + d, 4 * H);
        wt[4 * d + 3] = LEAF(1, 27 + d, 4 * H);
    }
    LstmWeights f = {wt[0], wt[1], wt[2], wt[3]}, r = {wt[4], wt[5], wt[6], wt[7]};
    profile_reset();
    profile_enable(1);
    Tape tp;
    tape_init(&tp);
    Tensor *hn;
    Tensor *y = op_bilstm(&tp, x, lens, &f, &r, &hn);
    tape_backward(&tp, op_add(&tp, op_sum_all(&tp, y), op_sum_all(&tp, hn)));
    double fwd = 2.0 * 2 * steps * 4 * H * (IN + H);
    double bwd = 2.0 * 2 * steps * 4 * H * (H + (IN + H) + IN); /* dh, dW, dx (the reference's count) */
    ProfileStat s = profile_get("bilstm", PROFILE_FWD);
    EXPECT(s.calls == 1 && near(s.flops, fwd), "bilstm forward FLOPs %.0f, want %.0f", s.flops, fwd);
    s = profile_get("bilstm", PROFILE_BWD);
    EXPECT(s.calls == 1 && near(s.flops, bwd), "bilstm backward FLOPs %.0f, want %.0f", s.flops, bwd);
    tape_free(&tp);
    profile_enable(0);
    tensor_free(x);
    for (int i = 0; i < 8; i++) tensor_free(wt[i]);
}

/* Every op used by the networks goes through PROFILE_OP_BEGIN: a small net of many op kinds. */
static void test_all_hooked(void) {
    profile_reset();
    profile_enable(1);
    Tensor *x = LEAF(1, 30, 2, 4, 6, 6), *gam = LEAF(1, 31, 4), *bet = LEAF(1, 32, 4);
    Tensor *rm = LEAF(0, 33, 4), *rv = LEAF(0, 34, 4);
    for (int i = 0; i < 4; i++) rv->data[i] = 1.0f;
    int64_t nbt = 0;
    Tape tp;
    tape_init(&tp);
    Tensor *h = op_batchnorm(&tp, x, gam, bet, rm, rv, &nbt, 1, 0.1f, 1e-5f);
    h = op_leaky_relu(&tp, h, 0.2f);
    h = op_upsample_nearest2x(&tp, op_maxpool2d(&tp, h, 2, 2, 0));
    h = op_avgpool2d(&tp, op_resize_bilinear(&tp, h, 8, 8), 2, 2, 0, 1);
    h = op_glu(&tp, op_tanh(&tp, op_sigmoid(&tp, h)), 1);
    Tensor *parts[2] = {h, op_exp(&tp, h)};
    h = op_concat(&tp, 2, parts, 1);
    h = op_transpose(&tp, op_reshape(&tp, h, 2, (int[]){2, 64}), 0, 1);
    h = op_softmax(&tp, op_slice(&tp, h, 0, 0, 32), NULL);
    h = op_log(&tp, op_clamp(&tp, op_scale(&tp, h, 2.0f), 1e-6f, 1.0f));
    Tensor *loss = op_mean_all(&tp, op_mul(&tp, h, op_add_scalar(&tp, h, 1.0f)));
    tape_backward(&tp, loss);
    EXPECT(profile_missing_begin() == 0, "every op call had a PROFILE_OP_BEGIN (%lld without)",
           (long long)profile_missing_begin());
    EXPECT(profile_total(PROFILE_FWD).calls == 21, "21 forward op calls, got %lld", (long long)profile_total(PROFILE_FWD).calls);
    EXPECT(profile_total(PROFILE_FWD).ms > 0 && profile_total(PROFILE_BWD).ms > 0, "time is booked both ways");
    FILE *f = tmpfile();
    if (f) {
        profile_print(f, 1000.0, 1);
        rewind(f);
        char buf[8192];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        EXPECT(strstr(buf, "## profile: forward") && strstr(buf, "batchnorm") && strstr(buf, "all backward ops") &&
                   strstr(buf, "not in ops"),
               "the printed table has both directions, the ops and the rest");
        fclose(f);
    }
    tape_free(&tp);
    profile_enable(0);
    Tensor *ts[] = {x, gam, bet, rm, rv};
    for (int i = 0; i < 5; i++) tensor_free(ts[i]);
}

/* Several threads profiling at once (the server generates from several threads). */
#define N_THREADS 4
#define N_OPS 200
static void *worker(void *arg) {
    Tensor *x = arg;
    Tape tp;
    tape_init(&tp);
    tape_no_grad_begin(&tp);
    for (int i = 0; i < N_OPS; i++) {
        tape_reset(&tp);
        op_relu(&tp, x);
    }
    tape_no_grad_end(&tp);
    tape_free(&tp);
    return NULL;
}

static void test_threads(void) {
    Tensor *x = LEAF(0, 40, 64);
    profile_reset();
    profile_enable(1);
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) pthread_create(&th[i], NULL, worker, x);
    for (int i = 0; i < N_THREADS; i++) pthread_join(th[i], NULL);
    profile_enable(0);
    ProfileStat s = profile_get("relu", PROFILE_FWD);
    EXPECT(s.calls == N_THREADS * N_OPS, "concurrent threads: %lld relu calls, want %d", (long long)s.calls,
           N_THREADS * N_OPS);
    EXPECT(near(s.bytes, (double)N_THREADS * N_OPS * 4 * 128), "concurrent threads: bytes %.0f", s.bytes);
    EXPECT(profile_missing_begin() == 0, "no call without a begin across threads");
    tensor_free(x);
}

/* The detail table: each oneDNN convolution call booked by direction and shape, with its FLOPs;
 * reset forgets it; the printer prints nothing without rows and the keys with them. */
static const ProfileDetail *find_detail(const ProfileDetail *rows, int n, const char *prefix) {
    for (int i = 0; i < n; i++)
        if (!strncmp(rows[i].key, prefix, strlen(prefix))) return &rows[i];
    return NULL;
}

static void test_details(void) {
    Conv2dImpl impl = conv2d_get_impl();
    conv2d_set_impl(CONV2D_DNNL);
    profile_reset();
    FILE *f = tmpfile();
    profile_print_details(f, "none", 1.0, 1, 10);
    EXPECT(ftell(f) == 0, "details: nothing printed without rows");
    profile_enable(1);
    Tensor *x = LEAF(1, 21, 2, 16, 8, 8), *w = LEAF(1, 22, 32, 16, 3, 3);
    Tape tp;
    tape_init(&tp);
    Tensor *y = op_conv2d(&tp, x, w, NULL, 1, 1, 1, 1);
    tape_backward(&tp, op_sum_all(&tp, y));
    profile_enable(0);
    ProfileDetail rows[16];
    int n = profile_details(rows, 16);
    double flops = 2.0 * (2 * 32 * 8 * 8) * (16 * 3 * 3);
    const ProfileDetail *fw = find_detail(rows, n, "fwd 2x16x8x8 3x3/1 ->32");
    const ProfileDetail *bd = find_detail(rows, n, "bwd_data 2x16x8x8 3x3/1 ->32");
    const ProfileDetail *bw = find_detail(rows, n, "bwd_weights 2x16x8x8 3x3/1 ->32");
    EXPECT(n == 3 && fw && bd && bw, "details: one row per direction (%d rows)", n);
    EXPECT(fw && fw->calls == 1 && near(fw->flops, flops) && fw->ms > 0, "details: the forward's call, %.0f FLOPs",
           fw ? fw->flops : 0.0);
    EXPECT(bd && bw && bd->calls == 1 && bw->calls == 1 && near(bd->flops, flops), "details: one call per gradient");
    profile_print_details(f, "convs", 10.0, 1, 2);
    long len = ftell(f);
    char *buf = xcalloc((size_t)len + 1, 1);
    rewind(f);
    EXPECT(fread(buf, 1, (size_t)len, f) == (size_t)len && strstr(buf, "the 2 slowest of 3") && strstr(buf, "->32"),
           "details: the printed table names its rows");
    free(buf);
    fclose(f);
    profile_reset();
    EXPECT(profile_details(rows, 16) == 0, "details: reset forgets them");
    tape_free(&tp);
    tensor_free(x);
    tensor_free(w);
    conv2d_set_impl(impl);
}

int main(void) {
    test_begin("test_profile");
    test_details();
    test_off();
    test_conv2d();
    test_linear_bmm();
    test_bilstm();
    test_all_hooked();
    test_threads();
    test_off(); /* off again after use */
    return test_end();
}
