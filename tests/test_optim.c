/* test_optim.c: Adam, clip_grad_norm and EMA against PyTorch (tests/fixtures/gen_optim.py). */
#include "test.h"
#include "../src/train/optim.h"

#include <math.h>
#include <string.h>

#define NP 3
static const int SHAPES[NP][3] = {{6, 5, 0}, {5, 0, 0}, {3, 2, 2}};
static const int NDIM[NP] = {2, 1, 3};

static void build(ParamSet *ps, const char *name) {
    paramset_init(ps, name);
    for (int i = 0; i < NP; i++) {
        char k[16];
        snprintf(k, sizeof k, "p%d", i);
        paramset_add(ps, k, PARAM_WEIGHT, NDIM[i], SHAPES[i]);
    }
    paramset_finalize(ps);
}

static void load(SafeTensors *fx, const char *fmt, int t, ParamSet *ps, int into_grad) {
    for (int i = 0; i < NP; i++) {
        char k[64];
        if (t >= 0) snprintf(k, sizeof k, fmt, t, i); else snprintf(k, sizeof k, fmt, i);
        Tensor *src = fixture_tensor(fx, k, 0);
        Tensor *dst = &ps->entries[i]->t;
        CHECK(src->n == dst->n, "fixture %s size", k);
        memcpy(into_grad ? dst->grad : dst->data, src->data, (size_t)src->n * sizeof(float));
        tensor_free(src);
    }
}

static void compare(SafeTensors *fx, const char *fmt, int t, ParamSet *ps, int from_grad, const char *what, double tol) {
    for (int i = 0; i < NP; i++) {
        char k[64], msg[96];
        if (t >= 0) snprintf(k, sizeof k, fmt, t, i); else snprintf(k, sizeof k, fmt, i);
        Tensor *want = fixture_tensor(fx, k, 0);
        Tensor *got = &ps->entries[i]->t;
        snprintf(msg, sizeof msg, "%s (%s)", what, k);
        expect_close(msg, from_grad ? got->grad : got->data, want->data, want->n, tol);
        tensor_free(want);
    }
}

int main(void) {
    test_begin("test_optim");
    SafeTensors *fx = fixture_open("optim");
    if (!fx) return test_end();
    ParamSet ps;
    build(&ps, "net");
    load(fx, "adam.p%d.init", -1, &ps, 0);
    Adam adam;
    adam_init(&adam, &ps, 2e-3f, 0.5f, 0.999f, 1e-8f);
    for (int t = 0; t < 3; t++) {
        load(fx, "adam.step%d.g%d", t, &ps, 1);
        adam_step(&adam);
        compare(fx, "adam.step%d.p%d", t, &ps, 0, "adam step", 1e-6);
    }
    EXPECT(adam.step == 3, "adam step count %lld", (long long)adam.step);
    /* a frozen weight is skipped */
    float before = ps.entries[1]->t.data[0];
    ps.entries[1]->t.requires_grad = false;
    adam_step(&adam);
    EXPECT(ps.entries[1]->t.data[0] == before, "adam moved a frozen weight");
    adam_free(&adam);

    /* a parameter group: weights named with the prefix learn at lr * scale. Two Adams from the same
     * state and gradients: with scale s the prefixed weight's update is s times the plain one's
     * (Adam's update is linear in lr), the others' the same bits */
    {
        ParamSet a1, a2;
        build(&a1, "g1");
        build(&a2, "g2");
        load(fx, "adam.p%d.init", -1, &a1, 0);
        load(fx, "adam.p%d.init", -1, &a2, 0);
        Adam o1, o2;
        adam_init(&o1, &a1, 2e-3f, 0.5f, 0.999f, 1e-8f);
        adam_init(&o2, &a2, 2e-3f, 0.5f, 0.999f, 1e-8f);
        adam_set_prefix_scale(&o2, "p1", 0.25f);
        float p0[5];
        memcpy(p0, a1.entries[1]->t.data, sizeof p0);
        load(fx, "adam.step%d.g%d", 0, &a1, 1);
        load(fx, "adam.step%d.g%d", 0, &a2, 1);
        adam_step(&o1);
        adam_step(&o2);
        int same = 1;
        for (int i = 0; i < NP; i++)
            if (i != 1) same &= !memcmp(a1.entries[i]->t.data, a2.entries[i]->t.data, (size_t)a1.entries[i]->t.n * sizeof(float));
        double worst = 0;
        for (int j = 0; j < 5; j++) {
            double d1 = a1.entries[1]->t.data[j] - p0[j], d2 = a2.entries[1]->t.data[j] - p0[j];
            double e = fabs(d2 - 0.25 * d1) / (fabs(d1) + 1e-12);
            worst = e > worst ? e : worst;
        }
        EXPECT(same, "adam prefix scale: the weights without the prefix move as without a group");
        EXPECT(worst < 1e-3, "adam prefix scale 0.25: the prefixed weight's update / the plain one's is off by %.3g relative", worst);
        adam_free(&o1);
        adam_free(&o2);
        paramset_free(&a1);
        paramset_free(&a2);
    }

    const char *cases[2] = {"clip", "noclip"};
    for (int c = 0; c < 2; c++) {
        ParamSet q;
        build(&q, cases[c]);
        char fmt[32], key[32];
        snprintf(fmt, sizeof fmt, "%s.g%%d", cases[c]);
        load(fx, fmt, -1, &q, 1);
        ParamSet *sets[1] = {&q};
        float total = clip_grad_norm_sets(sets, 1, 0.25f);
        snprintf(key, sizeof key, "%s.total", cases[c]);
        float want = fixture_scalar(fx, key);
        EXPECT(fabsf(total - want) <= 1e-6f * fabsf(want), "%s: total norm %.9g, PyTorch %.9g", cases[c], total, want);
        snprintf(fmt, sizeof fmt, "%s.out%%d", cases[c]);
        compare(fx, fmt, -1, &q, 1, cases[c], 1e-6);
        paramset_free(&q);
    }

    ParamSet ema, cur;
    build(&ema, "ema");
    build(&cur, "cur");
    load(fx, "adam.step%d.p%d", 2, &ema, 0); /* the EMA starts from the params after the Adam steps */
    for (int t = 0; t < 3; t++) {
        load(fx, "ema.step%d.p%d", t, &cur, 0);
        ema_update(&ema, &cur, 0.999f);
    }
    compare(fx, "ema.out%d", -1, &ema, 0, "ema", 1e-7);
    paramset_free(&ema);
    paramset_free(&cur);
    paramset_free(&ps);
    fixture_close(fx);
    return test_end();
}
