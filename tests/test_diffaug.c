/* test_diffaug.c: DiffAugment (src/ops/diffaug.c) against PyTorch (tests/fixtures/gen_diffaug.py:
 * the formulas of DiffAugment-pytorch with the draws given), finite differences, the policy parser
 * and the draws' ranges. */
#include "test.h"
#include "../src/ops/diffaug.h"

#include <string.h>

static void params_from(const Tensor *t, DiffAugSample *p) {
    for (int b = 0; b < t->shape[0]; b++) {
        const float *r = t->data + b * 9;
        p[b] = (DiffAugSample){r[0], r[1], r[2], (int)r[3], (int)r[4], (int)r[5], (int)r[6], (int)r[7], (int)r[8]};
    }
}

static void against_pytorch(SafeTensors *fx, const char *name) {
    char k[64];
    snprintf(k, sizeof k, "%s.in0", name);
    Tensor *x = fixture_tensor(fx, k, 1);
    snprintf(k, sizeof k, "%s.params", name);
    Tensor *pt = fixture_tensor(fx, k, 0);
    snprintf(k, sizeof k, "%s.out", name);
    Tensor *want = fixture_tensor(fx, k, 0);
    snprintf(k, sizeof k, "%s.gout", name);
    Tensor *gout = fixture_tensor(fx, k, 0);
    snprintf(k, sizeof k, "%s.grad0", name);
    Tensor *gwant = fixture_tensor(fx, k, 0);
    DiffAugSample p[8];
    params_from(pt, p);
    Tape tp;
    tape_init(&tp);
    Tensor *y = op_diffaug(&tp, x, p);
    char what[96];
    snprintf(what, sizeof what, "diffaug %s forward vs PyTorch", name);
    expect_close(what, y->data, want->data, want->n, 1e-5);
    const float *seed = gout->data;
    tape_backward_seeded(&tp, 1, &y, &seed);
    snprintf(what, sizeof what, "diffaug %s input gradient vs PyTorch", name);
    expect_close(what, x->grad, gwant->data, gwant->n, 1e-5);
    tape_free(&tp);
    tensor_free(x);
    tensor_free(pt);
    tensor_free(want);
    tensor_free(gout);
    tensor_free(gwant);
}

static Tensor *fwd(Tape *tp, Tensor **in, void *ctx) { return op_diffaug(tp, in[0], (const DiffAugSample *)ctx); }

static void gradients(void) {
    Tensor *x = tensor_alloc(4, (int[]){4, 3, 9, 7}, 1);
    fill_uniform(x->data, x->n, -1, 1, 3);
    DiffAugSample p[4];
    Rng r;
    rng_init(&r, 12);
    diffaug_draw(p, 4, 9, 7, DIFFAUG_COLOR | DIFFAUG_TRANSLATION | DIFFAUG_CUTOUT, &r);
    gradcheck("diffaug", fwd, 1, &x, p, &(GradcheckOpts){.max_elems = -1});
    tensor_free(x);
}

static void policy_and_draws(void) {
    int pol = -1;
    EXPECT(diffaug_parse_policy("", &pol) == 0 && pol == 0, "'' is no augmentation");
    EXPECT(diffaug_parse_policy("none", &pol) == 0 && pol == 0, "'none' is no augmentation");
    EXPECT(diffaug_parse_policy("color,translation,cutout", &pol) == 0 && pol == (DIFFAUG_COLOR | DIFFAUG_TRANSLATION | DIFFAUG_CUTOUT),
           "the full policy");
    EXPECT(diffaug_parse_policy("translation", &pol) == 0 && pol == DIFFAUG_TRANSLATION, "translation only");
    EXPECT(diffaug_parse_policy("color,flip", &pol) == -1 && strstr(err_msg(), "'flip'"), "unknown part: %s", err_msg());
    EXPECT(diffaug_parse_policy("color,", &pol) == -1 && strstr(err_msg(), "comma"), "trailing comma: %s", err_msg());
    enum { N = 4000 };
    static DiffAugSample p[N];
    Rng r;
    rng_init(&r, 7);
    diffaug_draw(p, N, 64, 64, DIFFAUG_COLOR | DIFFAUG_TRANSLATION | DIFFAUG_CUTOUT, &r);
    int ok = 1, min_dx = 99, max_dx = -99, full_cut = 0;
    double bsum = 0;
    for (int i = 0; i < N; i++) {
        ok &= p[i].brightness >= -0.5f && p[i].brightness < 0.5f && p[i].saturation >= 0 && p[i].saturation < 2 && p[i].contrast >= 0.5f &&
              p[i].contrast < 1.5f && abs(p[i].dx) <= 8 && abs(p[i].dy) <= 8 && p[i].cx0 >= 0 && p[i].cx1 <= 64 && p[i].cy0 >= 0 &&
              p[i].cy1 <= 64 && p[i].cx1 - p[i].cx0 <= 32 && p[i].cx1 > p[i].cx0;
        min_dx = p[i].dx < min_dx ? p[i].dx : min_dx;
        max_dx = p[i].dx > max_dx ? p[i].dx : max_dx;
        full_cut += p[i].cx1 - p[i].cx0 == 32 && p[i].cy1 - p[i].cy0 == 32;
        bsum += p[i].brightness;
    }
    EXPECT(ok, "draws inside DiffAugment's ranges");
    EXPECT(min_dx == -8 && max_dx == 8, "64 px shifts span [-8, 8] (%d..%d)", min_dx, max_dx);
    EXPECT(full_cut > N / 4 && full_cut < N, "cutouts of 32x32, clipped at the edges (%d of %d whole)", full_cut, N);
    EXPECT(fabs(bsum / N) < 0.02, "brightness mean %.4f", bsum / N);
    diffaug_draw(p, 1, 64, 64, 0, &r);
    EXPECT(p[0].brightness == 0 && p[0].saturation == 1 && p[0].contrast == 1 && p[0].dx == 0 && p[0].cx1 <= p[0].cx0, "policy 0: identity");
}

int main(void) {
    test_begin("test_diffaug");
    policy_and_draws();
    gradients();
    SafeTensors *fx = fixture_open("diffaug");
    if (fx) {
        against_pytorch(fx, "small");
        against_pytorch(fx, "s64");
        fixture_close(fx);
    }
    return test_end();
}
