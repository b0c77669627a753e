/* test_dropout.c: inverted dropout: the kept fraction, the 1/(1-p) scale, reproducibility from
 * the seed (and independence of the thread count), gradient = mask * gout, p = 0 as identity,
 * p = 1, the given-mask variant, and finite differences. */
#include "test.h"
#include "../src/ops/dropout.h"

#include <stdlib.h>
#include <string.h>

typedef struct Ctx {
    float p;
    uint64_t seed;
    const Tensor *mask; /* op_dropout_mask when not NULL */
    int mask_in1;       /* op_dropout_mask with the second input as the mask (it moves to a device with it) */
} Ctx;

/* a fresh Rng per call, so that the forward is a pure function of the input */
static Tensor *fwd(Tape *tp, Tensor **in, void *vctx) {
    const Ctx *c = vctx;
    if (c->mask_in1) return op_dropout_mask(tp, in[0], in[1]);
    if (c->mask) return op_dropout_mask(tp, in[0], c->mask);
    Rng r;
    rng_init(&r, c->seed);
    return op_dropout(tp, in[0], c->p, &r, NULL);
}

static void statistics(void) {
    enum { N = 200000 };
    const float p = 0.3f, scale = (float)(1.0 / (1.0 - 0.3f));
    Tensor *x = tensor_alloc(2, (int[]){400, N / 400}, 1);
    fill_uniform(x->data, x->n, -2, 2, 1);
    Tape tp;
    tape_init(&tp);
    Rng r;
    rng_init(&r, 42);
    Tensor *mask = NULL;
    Tensor *y = op_dropout(&tp, x, p, &r, &mask);
    EXPECT(mask && tensor_same_shape(mask, x) && tensor_same_shape(y, x), "dropout: output and mask shapes");
    EXPECT(r.offset == (uint64_t)N, "dropout draws one uniform per element (offset %llu)", (unsigned long long)r.offset);
    int64_t kept = 0, bad_val = 0, bad_mask = 0;
    for (int64_t i = 0; i < x->n; i++) {
        int k = mask->data[i] != 0.0f;
        kept += k;
        bad_mask += k ? mask->data[i] != scale : 0;
        bad_val += y->data[i] != (k ? x->data[i] * scale : 0.0f);
    }
    double frac = (double)kept / N; /* std of the fraction: sqrt(p (1-p) / N) ~ 0.001 */
    EXPECT(fabs(frac - (1 - p)) < 0.005, "dropout p %.1f: kept fraction %.4f, want %.4f", (double)p, frac, 1 - (double)p);
    EXPECT(bad_mask == 0, "dropout: %lld mask values differ from 1/(1-p) = %g", (long long)bad_mask, (double)scale);
    EXPECT(bad_val == 0, "dropout: %lld outputs differ from x/(1-p) or 0", (long long)bad_val);
    /* gradient = mask * gout exactly */
    float *gout = xmalloc((size_t)N * sizeof(float));
    fill_uniform(gout, N, -1, 1, 2);
    const float *seed = gout;
    tape_backward_seeded(&tp, 1, &y, &seed);
    int64_t bad_grad = 0;
    for (int64_t i = 0; i < x->n; i++) bad_grad += x->grad[i] != gout[i] * mask->data[i];
    EXPECT(bad_grad == 0, "dropout: %lld gradient elements differ from mask * gout", (long long)bad_grad);
    /* same seed: same mask, also with one thread; another seed: another mask */
    float *m1 = xmalloc((size_t)N * sizeof(float));
    memcpy(m1, mask->data, (size_t)N * sizeof(float));
    threads_set(1);
    rng_init(&r, 42);
    op_dropout(&tp, x, p, &r, &mask);
    EXPECT(memcmp(m1, mask->data, (size_t)N * sizeof(float)) == 0, "dropout: same seed, one thread: same mask");
    threads_set(0);
    rng_init(&r, 43);
    op_dropout(&tp, x, p, &r, &mask);
    EXPECT(memcmp(m1, mask->data, (size_t)N * sizeof(float)) != 0, "dropout: another seed: another mask");
    free(m1);
    free(gout);
    tape_free(&tp);
    tensor_free(x);
}

static void edge_probabilities(void) {
    Tensor *x = tensor_alloc(2, (int[]){3, 5}, 1);
    fill_uniform(x->data, x->n, -1, 1, 3);
    Tape tp;
    tape_init(&tp);
    Rng r;
    rng_init(&r, 9);
    Tensor *mask = NULL;
    Tensor *y = op_dropout(&tp, x, 0.0f, &r, &mask);
    EXPECT(y == x, "dropout p = 0 returns the input itself");
    EXPECT(r.offset == 0, "dropout p = 0 draws no random numbers");
    int ones = mask != NULL;
    for (int64_t i = 0; ones && i < mask->n; i++) ones &= mask->data[i] == 1.0f;
    EXPECT(ones, "dropout p = 0: the mask is all ones");
    EXPECT(op_dropout(&tp, x, 0.0f, NULL, NULL) == x, "dropout p = 0 needs no Rng");
    y = op_dropout(&tp, x, 1.0f, &r, NULL);
    int zeros = 1;
    for (int64_t i = 0; i < y->n; i++) zeros &= y->data[i] == 0.0f;
    EXPECT(zeros, "dropout p = 1 gives zeros");
    tape_free(&tp);
    tensor_free(x);
}

/* op_dropout_mask with a PyTorch-style multiplier (0 or 1/(1-p)); the caller's mask may be
 * overwritten after the forward without changing the gradient. */
static void given_mask(void) {
    Tensor *x = tensor_alloc(3, (int[]){2, 3, 4}, 1);
    Tensor *mask = tensor_alloc(3, (int[]){2, 3, 4}, 0);
    fill_uniform(x->data, x->n, -1, 1, 4);
    for (int64_t i = 0; i < mask->n; i++) mask->data[i] = (i * 7 % 5) < 2 ? 0.0f : 2.0f; /* p = 0.5 */
    Tape tp;
    tape_init(&tp);
    Tensor *y = op_dropout_mask(&tp, x, mask);
    int ok = 1;
    for (int64_t i = 0; i < x->n; i++) ok &= y->data[i] == x->data[i] * mask->data[i];
    EXPECT(ok, "dropout_mask: out = x * mask");
    float *saved = xmalloc((size_t)mask->n * sizeof(float)), gout[24];
    memcpy(saved, mask->data, (size_t)mask->n * sizeof(float));
    for (int64_t i = 0; i < mask->n; i++) mask->data[i] = -5.0f;
    fill_uniform(gout, 24, -1, 1, 5);
    const float *seed = gout;
    tape_backward_seeded(&tp, 1, &y, &seed);
    ok = 1;
    for (int64_t i = 0; i < x->n; i++) ok &= x->grad[i] == gout[i] * saved[i];
    EXPECT(ok, "dropout_mask: gradient = mask (as given at forward) * gout");
    memcpy(mask->data, saved, (size_t)mask->n * sizeof(float));
    free(saved);
    tape_free(&tp);
    Ctx c = {0, 0, NULL, 1};
    gradcheck("dropout_mask", fwd, 2, (Tensor *[]){x, mask}, &c, NULL);
    Ctx d = {0.4f, 77, NULL, 0};
    gradcheck("dropout", fwd, 1, &x, &d, NULL);
    tensor_free(x);
    tensor_free(mask);
}

int main(void) {
    test_begin("test_dropout");
    statistics();
    edge_probabilities();
    given_mask();
    return test_end();
}
