/* test_softmax.c: softmax (with byte masks and -inf entries) and masked_fill against PyTorch
 * fixtures, the fully masked row (zeros here, NaN in PyTorch), and finite differences. */
#include "test.h"
#include "../src/ops/softmax.h"

#include <stdlib.h>
#include <string.h>

/* x->n mask bytes from a fixture's bool tensor (malloc'ed) */
static uint8_t *fixture_mask(SafeTensors *fx, const char *key, int64_t n) {
    int64_t m;
    int64_t *v = fixture_i64(fx, key, &m);
    CHECK(m == n, "fixture mask %s has %lld elements, want %lld", key, (long long)m, (long long)n);
    uint8_t *mask = xmalloc((size_t)n);
    for (int64_t i = 0; i < n; i++) mask[i] = v[i] != 0;
    free(v);
    return mask;
}

typedef enum { MODE_SOFTMAX, MODE_SOFTMAX_MASK, MODE_FILL_INF_SOFTMAX, MODE_FILL } Mode;

typedef struct Ctx {
    Mode mode;
    const uint8_t *mask;
    float value;
} Ctx;

static Tensor *fwd(Tape *tp, Tensor **in, void *vctx) {
    const Ctx *c = vctx;
    switch (c->mode) {
    case MODE_SOFTMAX: return op_softmax(tp, in[0], NULL);
    case MODE_SOFTMAX_MASK: return op_softmax(tp, in[0], c->mask);
    case MODE_FILL_INF_SOFTMAX: return op_softmax(tp, op_masked_fill(tp, in[0], c->mask, -INFINITY), NULL);
    case MODE_FILL: return op_masked_fill(tp, in[0], c->mask, c->value);
    }
    return NULL;
}

/* forward vs <name>.out, backward seeded with <name>.gout vs <name>.grad0 */
static void value_case(SafeTensors *fx, const char *name, const Ctx *c, const char *label) {
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
    Tensor *y = fwd(&tp, &x, (void *)c);
    snprintf(k, sizeof k, "%s %s forward", label, name);
    EXPECT(tensor_same_shape(y, want), "%s: shape", k);
    expect_close(k, y->data, want->data, want->n, 1e-5);
    const float *seed = gout->data;
    tape_backward_seeded(&tp, 1, &y, &seed);
    snprintf(k, sizeof k, "%s %s grad", label, name);
    expect_close(k, x->grad, gwant->data, gwant->n, 1e-5);
    tape_free(&tp);
    tensor_free(x);
    tensor_free(want);
    tensor_free(gout);
    tensor_free(gwant);
}

static void fixture_tests(void) {
    SafeTensors *fx = fixture_open("softmax");
    if (!fx) return;
    Ctx plain = {MODE_SOFTMAX, NULL, 0};
    value_case(fx, "plain", &plain, "softmax");
    value_case(fx, "wide", &plain, "softmax");
    const StTensor *a = st_find(fx, "attn.in0");
    CHECK(a, "fixture softmax: attn.in0 missing");
    uint8_t *m = fixture_mask(fx, "attn.mask", a->numel);
    Ctx bymask = {MODE_SOFTMAX_MASK, m, 0}, byinf = {MODE_FILL_INF_SOFTMAX, m, 0};
    value_case(fx, "attn", &bymask, "softmax(mask)");
    value_case(fx, "attn", &byinf, "softmax(masked_fill -inf)");
    free(m);
    const StTensor *f = st_find(fx, "fill.in0");
    CHECK(f, "fixture softmax: fill.in0 missing");
    m = fixture_mask(fx, "fill.mask", f->numel);
    Ctx fill = {MODE_FILL, m, 0.25f};
    value_case(fx, "fill", &fill, "masked_fill");
    free(m);
    fixture_close(fx);
}

/* Rows fully masked (by mask, or by -inf values) give zeros and no gradient; other rows are a
 * proper distribution; a partially -inf row gives 0 at the -inf entries. */
static void masked_rows(void) {
    enum { N = 4, C = 5 };
    Tensor *x = tensor_alloc(2, (int[]){N, C}, 1);
    fill_uniform(x->data, x->n, -2, 2, 7);
    uint8_t mask[N * C] = {0};
    for (int c = 0; c < C; c++) mask[1 * C + c] = 1;        /* row 1: fully masked */
    for (int c = 0; c < C; c++) x->data[2 * C + c] = -INFINITY; /* row 2: all -inf */
    x->data[3 * C + 1] = -INFINITY;                          /* row 3: one -inf entry */
    mask[0 * C + 4] = 1;                                     /* row 0: one masked entry */
    Tape tp;
    tape_init(&tp);
    Tensor *y = op_softmax(&tp, x, mask);
    int finite = 1;
    for (int64_t i = 0; i < y->n; i++) finite &= isfinite(y->data[i]);
    EXPECT(finite, "masked softmax: all outputs finite");
    for (int r = 0; r < N; r++) {
        double s = 0;
        for (int c = 0; c < C; c++) s += y->data[r * C + c];
        double want = (r == 1 || r == 2) ? 0.0 : 1.0;
        EXPECT(fabs(s - want) < 1e-6, "masked softmax row %d sums to %g, want %g", r, s, want);
    }
    EXPECT(y->data[0 * C + 4] == 0.0f && y->data[3 * C + 1] == 0.0f, "masked and -inf entries give exactly 0");
    float gout[N * C];
    fill_uniform(gout, N * C, -1, 1, 8);
    const float *seed = gout;
    tape_backward_seeded(&tp, 1, &y, &seed);
    int zero = 1;
    for (int c = 0; c < C; c++) zero &= x->grad[1 * C + c] == 0.0f && x->grad[2 * C + c] == 0.0f;
    zero &= x->grad[0 * C + 4] == 0.0f && x->grad[3 * C + 1] == 0.0f;
    EXPECT(zero, "masked softmax: masked entries and fully masked rows get no gradient");
    tape_free(&tp);
    tensor_free(x);
}

static void gradchecks(void) {
    Tensor *x = tensor_alloc(3, (int[]){3, 4, 9}, 1);
    fill_uniform(x->data, x->n, -3, 3, 11);
    Ctx plain = {MODE_SOFTMAX, NULL, 0};
    gradcheck("softmax", fwd, 1, &x, &plain, NULL);
    /* an attention-style mask: trailing positions of each row, and one fully masked row */
    uint8_t *m = xcalloc((size_t)x->n, 1);
    for (int r = 0; r < 12; r++)
        for (int c = 0; c < 9; c++) m[r * 9 + c] = c >= 9 - (r % 5) || r == 6;
    Ctx bymask = {MODE_SOFTMAX_MASK, m, 0}, byinf = {MODE_FILL_INF_SOFTMAX, m, 0}, fill = {MODE_FILL, m, -2.5f};
    gradcheck("softmax mask", fwd, 1, &x, &bymask, NULL);
    gradcheck("softmax after masked_fill -inf", fwd, 1, &x, &byinf, NULL);
    gradcheck("masked_fill", fwd, 1, &x, &fill, NULL);
    free(m);
    tensor_free(x);
}

int main(void) {
    test_begin("test_softmax");
    fixture_tests();
    masked_rows();
    gradchecks();
    return test_end();
}
