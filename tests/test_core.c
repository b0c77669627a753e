/* test_core.c: the engine core: tape semantics (accumulation, detach, no_grad, frozen
 * parameters), the tensor pool and tensor lifetimes on a tape, arena, parameter sets and the RNG. */
#include "test.h"
#include "../src/core/env.h"
#include "../src/core/mempool.h"
#include "../src/core/threads.h"
#include "../src/ops/activation.h"
#include "../src/ops/arith.h"
#include "../src/ops/linear.h"

#include <stdint.h>
#include <stdlib.h>
#include <omp.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double sum_abs(const float *x, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabs(x[i]);
    return s;
}

/* Two linear layers in two parameter sets: y = W2 (W1 x + b1). */
typedef struct {
    ParamSet a, b;
    Tensor *w1, *b1, *w2;
} Net;

static void net_init(Net *n) {
    paramset_init(&n->a, "a");
    n->w1 = PARAM(&n->a, "fc.weight", 4, 3);
    n->b1 = PARAM(&n->a, "fc.bias", 4);
    paramset_finalize(&n->a);
    paramset_init(&n->b, "b");
    n->w2 = PARAM(&n->b, "out.weight", 2, 4);
    paramset_finalize(&n->b);
    fill_uniform(n->a.values, n->a.n_values, -1, 1, 11);
    fill_uniform(n->b.values, n->b.n_values, -1, 1, 12);
}

static Tensor *net_forward(Tape *tp, Net *n, Tensor *x) {
    return op_linear(tp, op_linear(tp, x, n->w1, n->b1), n->w2, NULL);
}

static void test_accumulate(void) {
    Net n;
    net_init(&n);
    Tape tp;
    tape_init(&tp);
    Tensor *x = tape_leaf(&tp, 2, (int[]){5, 3});
    fill_uniform(x->data, x->n, -1, 1, 3);
    Tensor *y = net_forward(&tp, &n, x);
    float *seed = tape_alloc(&tp, (size_t)y->n * sizeof(float));
    fill_uniform(seed, y->n, -1, 1, 4);
    const float *s = seed;
    tape_backward_seeded(&tp, 1, &y, &s);
    float *g1 = xmalloc((size_t)n.a.n_values * sizeof(float)), *gx = xmalloc((size_t)x->n * sizeof(float));
    memcpy(g1, n.a.grads, (size_t)n.a.n_values * sizeof(float));
    memcpy(gx, x->grad, (size_t)x->n * sizeof(float));
    EXPECT(sum_abs(g1, n.a.n_values) > 0, "first backward gave zero gradients");
    tape_backward_seeded(&tp, 1, &y, &s);
    double worst = 0;
    for (int64_t i = 0; i < n.a.n_values; i++) worst = fmax(worst, fabs(n.a.grads[i] - 2 * g1[i]));
    for (int64_t i = 0; i < x->n; i++) worst = fmax(worst, fabs(x->grad[i] - 2 * gx[i]));
    EXPECT(worst < 1e-5, "two backward passes accumulate (max deviation from 2x: %.3g)", worst);
    paramset_zero_grad(&n.a);
    EXPECT(sum_abs(n.a.grads, n.a.n_values) == 0, "paramset_zero_grad");
    free(g1);
    free(gx);
    tape_free(&tp);
    paramset_free(&n.a);
    paramset_free(&n.b);
}

static void test_detach_and_no_grad(void) {
    Net n;
    net_init(&n);
    Tape tp;
    tape_init(&tp);
    Tensor *x = tape_leaf(&tp, 2, (int[]){5, 3});
    fill_uniform(x->data, x->n, -1, 1, 5);
    /* detach: nothing flows into the first layer or x */
    Tensor *h = op_linear(&tp, x, n.w1, n.b1);
    Tensor *y = op_linear(&tp, tape_detach(&tp, h), n.w2, NULL);
    float seed[10];
    fill_uniform(seed, 10, -1, 1, 6);
    const float *s = seed;
    tape_backward_seeded(&tp, 1, &y, &s);
    EXPECT(sum_abs(n.a.grads, n.a.n_values) == 0, "detach: first layer received a gradient");
    EXPECT(sum_abs(x->grad, x->n) == 0, "detach: input received a gradient");
    EXPECT(sum_abs(n.b.grads, n.b.n_values) > 0, "detach: layer after the cut got no gradient");
    /* no_grad: nothing recorded, outputs do not require grad */
    int before = tp.n_nodes;
    tape_no_grad_begin(&tp);
    Tensor *z = net_forward(&tp, &n, x);
    tape_no_grad_end(&tp);
    EXPECT(tp.n_nodes == before, "no_grad recorded %d nodes", tp.n_nodes - before);
    EXPECT(!z->requires_grad, "no_grad output requires grad");
    /* the same values as with grad */
    Tensor *z2 = net_forward(&tp, &n, x);
    double mx;
    EXPECT(rel_err(z->data, z2->data, z->n, &mx) == 0, "no_grad forward differs from grad forward");
    tape_free(&tp);
    paramset_free(&n.a);
    paramset_free(&n.b);
}

static void test_frozen(void) {
    Net n;
    net_init(&n);
    Tape tp;
    tape_init(&tp);
    Tensor *x = tape_leaf(&tp, 2, (int[]){5, 3});
    fill_uniform(x->data, x->n, -1, 1, 7);
    float seed[10];
    fill_uniform(seed, 10, -1, 1, 8);
    const float *s = seed;
    Tensor *y = net_forward(&tp, &n, x);
    tape_backward_seeded(&tp, 1, &y, &s);
    float gx_ref[15];
    memcpy(gx_ref, x->grad, sizeof gx_ref);
    /* freeze the second module: input gradients must be the same, its weights untouched */
    tape_reset(&tp);
    paramset_zero_grad(&n.a);
    paramset_zero_grad(&n.b);
    paramset_set_frozen(&n.b, 1);
    x = tape_leaf(&tp, 2, (int[]){5, 3});
    fill_uniform(x->data, x->n, -1, 1, 7);
    y = net_forward(&tp, &n, x);
    EXPECT(y->requires_grad, "output of a frozen module fed by a trainable one requires grad");
    tape_backward_seeded(&tp, 1, &y, &s);
    double mx;
    EXPECT(sum_abs(n.b.grads, n.b.n_values) == 0, "frozen module's weight gradients were written");
    EXPECT(rel_err(x->grad, gx_ref, 15, &mx) < 1e-6, "frozen module changed the input gradient (max %.3g)", mx);
    EXPECT(sum_abs(n.a.grads, n.a.n_values) > 0, "module before a frozen one got no gradient");
    /* everything frozen and no input grad: nothing is recorded */
    paramset_set_frozen(&n.a, 1);
    int before = tp.n_nodes;
    Tensor *c = tape_new(&tp, 2, (int[]){5, 3});
    memcpy(c->data, x->data, sizeof(float) * 15);
    Tensor *yc = net_forward(&tp, &n, c);
    EXPECT(tp.n_nodes == before && !yc->requires_grad, "all-frozen graph was recorded");
    tape_free(&tp);
    paramset_free(&n.a);
    paramset_free(&n.b);
}

static void test_arena(void) {
    Arena a;
    arena_init(&a, 1 << 20);
    int misaligned = 0;
    for (int i = 0; i < 100; i++) {
        void *p = arena_alloc(&a, 100000 + (size_t)i);
        misaligned += ((uintptr_t)p % 64) != 0;
        memset(p, i, 100000);
    }
    EXPECT(misaligned == 0, "arena: %d misaligned allocations", misaligned);
    size_t hw = a.high_water;
    EXPECT(a.n_chunks > 1, "arena grew by chunks (%d)", a.n_chunks);
    EXPECT(hw >= 100 * 100000, "arena high water %zu", hw);
    arena_reset(&a);
    EXPECT(a.n_chunks == 1 && a.capacity >= hw, "arena reset folds chunks into one of the high-water size");
    size_t cap = a.capacity;
    for (int i = 0; i < 100; i++) arena_alloc(&a, 100000 + (size_t)i);
    EXPECT(a.capacity == cap, "second step of the same size grew the arena (%zu -> %zu)", cap, a.capacity);
    arena_free(&a);
}

static void test_params(void) {
    ParamSet ps;
    paramset_init(&ps, "net");
    Tensor *w = PARAM(&ps, "conv.weight", 4, 3, 3, 3);
    Tensor *rm = BUFFER(&ps, "bn.running_mean", 4);
    int64_t *nbt = paramset_add_i64(&ps, "bn.num_batches_tracked");
    Tensor *g = PARAM(&ps, "bn.weight", 4);
    paramset_finalize(&ps);
    EXPECT(ps.n_values == 4 * 27 + 4 && ps.n_buffers == 4, "paramset sizes %lld %lld", (long long)ps.n_values, (long long)ps.n_buffers);
    EXPECT(w->data == ps.values && g->data == ps.values + 108 && g->grad == ps.grads + 108, "contiguous weight layout");
    EXPECT(rm->data == ps.buffers && !rm->requires_grad && rm->grad == NULL, "buffers have no gradients");
    EXPECT(w->requires_grad && w->is_leaf, "weights are leaves requiring grad");
    EXPECT(paramset_find(&ps, "bn.weight") && paramset_find(&ps, "bn.weight")->kind == PARAM_WEIGHT, "find by state_dict key");
    EXPECT(paramset_find(&ps, "nope") == NULL, "find of an absent key");
    *nbt = 3;
    ParamSet cp;
    paramset_init(&cp, "copy");
    PARAM(&cp, "conv.weight", 4, 3, 3, 3);
    BUFFER(&cp, "bn.running_mean", 4);
    paramset_add_i64(&cp, "bn.num_batches_tracked");
    PARAM(&cp, "bn.weight", 4);
    paramset_finalize(&cp);
    fill_uniform(ps.values, ps.n_values, -1, 1, 1);
    paramset_copy(&cp, &ps);
    EXPECT(memcmp(cp.values, ps.values, (size_t)ps.n_values * 4) == 0 && cp.entries[2]->ival == 3, "paramset_copy");
    paramset_free(&cp);
    paramset_free(&ps);
}

static void test_rng(void) {
    const int64_t n = 300000;
    float *a = xmalloc(n * sizeof(float)), *b = xmalloc(n * sizeof(float));
    Rng r;
    /* same seed, 1 vs 2 threads: same bits */
    threads_set(1);
    rng_init(&r, 42);
    rng_normal(&r, a, n, 0, 1);
    threads_set(2);
    rng_init(&r, 42);
    rng_normal(&r, b, n, 0, 1);
    EXPECT(memcmp(a, b, n * sizeof(float)) == 0, "rng_normal differs between 1 and 2 threads");
    threads_set(1);
    rng_init(&r, 42);
    rng_uniform(&r, a, n);
    threads_set(2);
    rng_init(&r, 42);
    rng_uniform(&r, b, n / 3);                 /* the same stream drawn in two pieces */
    rng_uniform(&r, b + n / 3, n - n / 3);
    EXPECT(memcmp(a, b, n * sizeof(float)) == 0, "rng_uniform differs between threads or chunkings");
    threads_set(0);
    double s = 0, lo = 1, hi = 0;
    for (int64_t i = 0; i < n; i++) { s += a[i]; lo = fmin(lo, a[i]); hi = fmax(hi, a[i]); }
    EXPECT(lo >= 0 && hi < 1 && fabs(s / n - 0.5) < 0.005, "uniform: range [%g, %g], mean %g", lo, hi, s / n);
    rng_init(&r, 43);
    rng_normal(&r, b, n, 2, 3);
    double m = 0, v = 0;
    for (int64_t i = 0; i < n; i++) m += b[i];
    m /= n;
    for (int64_t i = 0; i < n; i++) v += (b[i] - m) * (b[i] - m);
    v /= n;
    EXPECT(fabs(m - 2) < 0.03 && fabs(sqrt(v) - 3) < 0.03, "normal(2, 3): mean %g std %g", m, sqrt(v));
    rng_init(&r, 44);
    float c[4], d[4];
    rng_uniform(&r, c, 4);
    rng_init(&r, 45);
    rng_uniform(&r, d, 4);
    EXPECT(memcmp(c, d, sizeof c) != 0, "different seeds give the same numbers");
    int counts[3] = {0, 0, 0};
    for (int i = 0; i < 3000; i++) counts[rng_below(&r, 3)]++;
    EXPECT(counts[0] > 900 && counts[1] > 900 && counts[2] > 900, "rng_below(3) counts %d %d %d", counts[0], counts[1], counts[2]);
    free(a);
    free(b);
}

/* The pool: blocks are aligned and disjoint, freed space is reused and coalesced, and the top
 * comes back down once everything is free. */
static void test_mempool(void) {
    MempoolStats s0 = mempool_stats();
    enum { K = 64 };
    unsigned char *p[K];
    for (int i = 0; i < K; i++) {
        p[i] = mempool_alloc((size_t)(1000 + 977 * i));
        memset(p[i], i, (size_t)(1000 + 977 * i));
    }
    int bad = 0;
    for (int i = 0; i < K; i++) {
        bad += ((uintptr_t)p[i] & 63) != 0;
        for (size_t j = 0; j < (size_t)(1000 + 977 * i); j += 97) bad += p[i][j] != (unsigned char)i;
    }
    EXPECT(bad == 0, "pool: %d misaligned or overlapping bytes", bad);
    MempoolStats s1 = mempool_stats();
    EXPECT(s1.live - s0.live >= (size_t)K * 1000, "pool: live bytes grew by %zu", s1.live - s0.live);
    for (int i = 0; i < K; i += 2) mempool_free(p[i]); /* holes */
    void *q = mempool_alloc(1000);                       /* fits the first hole */
    MempoolStats s2 = mempool_stats();
    if (!s2.malloc_mode) EXPECT(s2.top == s1.top, "pool: a small block after frees grew the top (%zu -> %zu)", s1.top, s2.top);
    mempool_free(q);
    for (int i = 1; i < K; i += 2) mempool_free(p[i]);
    MempoolStats s3 = mempool_stats();
    EXPECT(s3.live == s0.live, "pool: live %zu after freeing all, was %zu", s3.live, s0.live);
    if (!s3.malloc_mode)
        EXPECT(s3.top == s0.top && s3.n_free_extents == s0.n_free_extents,
               "pool: freed blocks coalesce back into the top (top %zu vs %zu, %d extents vs %d)", s3.top, s0.top,
               s3.n_free_extents, s0.n_free_extents);
    /* grow in place: the last block grows; a block with a live one after it cannot */
    if (!s3.malloc_mode) {
        unsigned char *g1 = mempool_alloc(1 << 16), *g2 = mempool_alloc(1 << 16);
        memset(g2, 7, 1 << 16);
        EXPECT(mempool_grow(g2, 1 << 18) == 1 && !mempool_grow(g1, 1 << 18), "mempool_grow: the last block grows, a blocked one does not");
        memset(g2, 9, 1 << 18); /* all of the grown block is usable */
        mempool_shrink(g2, 1 << 10);
        size_t live_after = mempool_stats().live;
        mempool_free(g1);
        mempool_free(g2);
        EXPECT(live_after - mempool_stats().live < (1 << 16) + 4096, "mempool_shrink gave the tail back");
        EXPECT(mempool_stats().top == s0.top, "grown and shrunk blocks coalesce back into the top");
    }
    /* small blocks live apart from large ones: a long-lived small block allocated right after a
     * large one does not keep the large one's space resident once it is freed */
    if (!s3.malloc_mode) {
        void *big = mempool_alloc(8 << 20), *small = mempool_alloc(1024);
        mempool_free(big);
        size_t top = mempool_stats().top;
        EXPECT(top - s0.top < (64 << 10), "pool: a small block pinned a freed large one (top grew by %zu bytes)", top - s0.top);
        /* holes: a freed large block is a hole that mempool_has_hole sees, with its size */
        void *a = mempool_alloc(8 << 20), *b = mempool_alloc(1 << 20);
        EXPECT(!mempool_has_hole(4 << 20), "mempool_has_hole: no hole yet");
        mempool_free(a);
        EXPECT(mempool_has_hole(8 << 20) && !mempool_has_hole(9 << 20), "mempool_has_hole: the 8 MiB hole, no larger");
        mempool_free(b);
        mempool_free(small);
        EXPECT(mempool_stats().top == s0.top, "pool: everything coalesces back");
    }
    float *z = mempool_calloc(4096 * sizeof(float));
    EXPECT(sum_abs(z, 4096) == 0, "mempool_calloc zeroes");
    mempool_free(z);
}

/* Fresh gradients: a non-leaf's buffer is handed out unwritten; tensor_grad_overwrite reports that
 * once (the caller writes it), tensor_grad_or_null zeroes it first, and a buffer nobody wrote
 * reaches its producer as zeros. */
static void test_fresh_grads(void) {
    Tape tp;
    tape_init(&tp);
    Tensor *x = tape_leaf(&tp, 1, (int[]){4});
    for (int i = 0; i < 4; i++) x->data[i] = (float)i;
    Tensor *y = op_scale(&tp, x, 2.0f);           /* y: two consumers */
    Tensor *z = op_add(&tp, op_scale(&tp, y, 3.0f), op_scale(&tp, y, 5.0f));
    tape_backward(&tp, op_sum_all(&tp, z));
    int ok = 1;
    for (int i = 0; i < 4; i++) ok &= x->grad[i] == 16.0f;
    EXPECT(ok, "fresh gradients: two consumers add up (x->grad = 2 * (3 + 5))");
    Tensor t = {0};
    float buf[3] = {NAN, NAN, NAN};
    t.grad = buf, t.n = 3, t.requires_grad = true, t.grad_fresh = true;
    int set;
    EXPECT(tensor_grad_overwrite(&t, &set) == buf && set == 1 && !t.grad_fresh, "tensor_grad_overwrite: fresh once");
    EXPECT(tensor_grad_overwrite(&t, &set) == buf && set == 0, "tensor_grad_overwrite: then accumulate");
    t.grad_fresh = true;
    EXPECT(tensor_grad_or_null(&t) == buf && buf[0] == 0.0f && buf[2] == 0.0f && !t.grad_fresh,
           "tensor_grad_or_null zeroes a fresh buffer");
    tape_free(&tp);
}

/* Lifetimes: tape_release frees what no node uses, lazily allocated gradients are freed, and
 * tape_backward_release frees large saved tensors while giving the same gradients. */
static void test_lifetimes(void) {
    Tape tp;
    tape_init(&tp);
    /* a scope without gradients: temporaries die, the kept result lives */
    int m = tape_mark(&tp);
    Tensor *a = TZEROS(&tp, 1000), *b = op_scale(&tp, a, 2.0f), *c = op_scale(&tp, b, 3.0f);
    tape_release1(&tp, m, c);
    EXPECT(a->data == NULL && b->data == NULL && c->data != NULL, "tape_release: temporaries freed, the result kept");
    /* donation: in place when nothing is recorded */
    Tensor *d = op_scale(&tp, c, 1.0f);
    float *dd = d->data;
    Tensor *e = op_relu(&tp, tape_donate(d));
    EXPECT(e->data == dd && d->data == NULL, "a donated input without gradients gives its buffer to the output");
    /* with gradients: nothing is freed or overwritten that backward needs */
    Tensor *x = tape_leaf(&tp, 1, (int[]){20000});
    fill_uniform(x->data, x->n, -1, 1, 5);
    m = tape_mark(&tp);
    Tensor *h = op_scale(&tp, x, 2.0f);
    Tensor *r = op_relu(&tp, tape_donate(h));
    EXPECT(r->data != h->data && h->data != NULL, "a recorded op does not take its donated input's buffer");
    Tensor *loss = op_sum_all(&tp, op_mul(&tp, r, r));
    tape_release1(&tp, m, loss);
    EXPECT(h->data != NULL && r->data != NULL, "tape_release keeps tensors that nodes saved");
    tape_backward(&tp, loss);
    EXPECT(h->grad == NULL && r->grad == NULL, "non-leaf gradients are freed after backward");
    float *g1 = xmalloc((size_t)x->n * sizeof(float));
    memcpy(g1, x->grad, (size_t)x->n * sizeof(float));
    double want = 0;
    for (int64_t i = 0; i < x->n; i++) want += fabs(x->data[i] > 0 ? 8.0 * x->data[i] : 0.0);
    EXPECT(fabs(sum_abs(g1, x->n) - want) < 1e-3 * want, "gradient of sum(relu(2x)^2): %.6g, want %.6g", sum_abs(g1, x->n), want);
    memset(x->grad, 0, (size_t)x->n * sizeof(float));
    tape_backward_release(&tp, loss);
    EXPECT(memcmp(g1, x->grad, (size_t)x->n * sizeof(float)) == 0, "tape_backward_release gives the same gradient");
    EXPECT(h->data == NULL && r->data == NULL, "tape_backward_release frees large saved tensors");
    EXPECT(loss->data != NULL && x->data != NULL, "tape_backward_release keeps small tensors and leaves");
    free(g1);
    tape_reset(&tp);
    EXPECT(tp.n_owned == 0, "tape_reset frees every tensor of the tape");
    tape_free(&tp);
}

/* env_switch: the index of the value, the default when unset or empty, the cache (a setter's
 * value wins), and an abort naming the variable and the values allowed. */
static const char *const k_env_values[] = {"red", "green", "blue"};
static void die_env_bad(void) {
    _Atomic int c = ENV_SWITCH_INIT;
    setenv("ATTNGAN_TEST_SWITCH", "purple", 1);
    env_switch(&c, "ATTNGAN_TEST_SWITCH", k_env_values, 3, 0);
}

static void test_env_switch(void) {
    _Atomic int c = ENV_SWITCH_INIT;
    unsetenv("ATTNGAN_TEST_SWITCH");
    EXPECT(env_switch(&c, "ATTNGAN_TEST_SWITCH", k_env_values, 3, 1) == 1, "env_switch: unset gives the default");
    setenv("ATTNGAN_TEST_SWITCH", "blue", 1);
    EXPECT(env_switch(&c, "ATTNGAN_TEST_SWITCH", k_env_values, 3, 1) == 1, "env_switch: the first answer is kept");
    c = ENV_SWITCH_INIT;
    EXPECT(env_switch(&c, "ATTNGAN_TEST_SWITCH", k_env_values, 3, 1) == 2 && c == 2, "env_switch: blue is value 2");
    c = 0; /* a setter */
    EXPECT(env_switch(&c, "ATTNGAN_TEST_SWITCH", k_env_values, 3, 1) == 0, "env_switch: a setter's value wins");
    c = ENV_SWITCH_INIT;
    setenv("ATTNGAN_TEST_SWITCH", "", 1);
    EXPECT(env_switch(&c, "ATTNGAN_TEST_SWITCH", k_env_values, 3, 2) == 2, "env_switch: empty gives the default");
    unsetenv("ATTNGAN_TEST_SWITCH");
    expect_death("env_switch with a bad value", die_env_bad,
                 "ATTNGAN_TEST_SWITCH=purple: expected red, green or blue");
}

/* The load reading (src/core/threads.h): within [1, cores]; with two busy processes per core
 * running, one core free at most, the machine heavily loaded, and the default a thread per core
 * only when the policy is passive. */
static void test_threads_load(void) {
    int cores = omp_get_num_procs(), f = threads_free_cores();
    EXPECT(f >= 1 && f <= cores, "threads_free_cores %d in 1..%d", f, cores);
    int n = 2 * cores;
    pid_t *kids = calloc((size_t)n, sizeof *kids);
    for (int i = 0; i < n; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            for (volatile unsigned long x = 0;; x++) {}
        }
    }
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    int busy_free = threads_free_cores(), heavy = threads_heavily_loaded();
    unsetenv("OMP_WAIT_POLICY");
    int d_spin = threads_default();
    setenv("OMP_WAIT_POLICY", "passive", 1);
    int d_passive = threads_default();
    unsetenv("OMP_WAIT_POLICY");
    for (int i = 0; i < n; i++) kill(kids[i], SIGKILL);
    for (int i = 0; i < n; i++) waitpid(kids[i], NULL, 0);
    free(kids);
    EXPECT(busy_free == 1 && heavy == 1, "with %d busy processes: %d free core(s) (want 1), heavily loaded %d", n, busy_free, heavy);
    EXPECT(d_spin == 1 && d_passive == cores, "default threads when busy: %d spinning (want 1), %d passive (want %d)", d_spin,
           d_passive, cores);
}

int main(void) {
    test_begin("test_core");
    test_threads_load();
    test_env_switch();
    test_accumulate();
    test_detach_and_no_grad();
    test_frozen();
    test_arena();
    test_mempool();
    test_fresh_grads();
    test_lifetimes();
    test_params();
    test_rng();
    return test_end();
}
