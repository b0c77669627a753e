/* test_damsm.c: the DAMSM words and sentence losses (src/nn/damsm.c) against the PyTorch reference:
 *  1. the class mask on constructed class lists;
 *  2. the reference dumps (damsm_small, damsm_small_drop, gan_b1_small, gan_b3_small): sims and the
 *     four losses, and for the damsm dumps d(w_loss0 + w_loss1) / d(region, words_emb);
 *  3. tests/fixtures/damsm.safetensors (gen_damsm.py, B = 6, repeated classes and no mask):
 *     forward and backward of both losses;
 *  4. finite-difference gradchecks of both losses on tiny inputs, with and without a mask;
 *  5. damsm_words_score (the host score of `attngan eval`) against words_loss's sims / gamma3 for
 *     every image-text pair, captions of several lengths, and a changed word must change it. */
#include "test.h"
#include "../src/nn/damsm.h"

#include <string.h>

/* ---------------------------------------------------------------- 1. class mask */

static void test_class_mask(void) {
    Tape tp;
    tape_init(&tp);
    const int64_t ids[6] = {3, 5, 3, 2, 3, 5};
    uint8_t *m = damsm_class_mask(&tp, ids, 6);
    int bad = 0, ones = 0;
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++) {
            int want = i != j && ids[i] == ids[j];
            bad += m[i * 6 + j] != want;
            ones += m[i * 6 + j];
        }
    EXPECT(bad == 0 && ones == 8, "class mask {3,5,3,2,3,5}: %d wrong entries, %d set (want 8)", bad, ones);
    const int64_t distinct[4] = {1, 2, 3, 4};
    m = damsm_class_mask(&tp, distinct, 4);
    ones = 0;
    for (int k = 0; k < 16; k++) ones += m[k];
    EXPECT(ones == 0, "class mask of distinct classes: %d entries set", ones);
    const int64_t same[3] = {7, 7, 7};
    m = damsm_class_mask(&tp, same, 3);
    bad = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) bad += m[i * 3 + j] != (i != j);
    EXPECT(bad == 0, "class mask of one class: %d wrong entries (the diagonal stays unmasked)", bad);
    EXPECT(damsm_class_mask(&tp, NULL, 4) == NULL, "class mask of NULL ids is NULL");
    tape_free(&tp);
}

/* ---------------------------------------------------------------- shared comparison */

typedef struct Expected {
    const float *words_sims, *sent_sims;   /* (B, B) with -inf; NULL: not compared */
    float w0, w1, s0, s1;
} Expected;

static void expect_scalar(const char *what, const Tensor *got, float want, double tol) {
    expect_close(what, got->data, &want, 1, tol);
}

static void compare_forward(const char *name, const DamsmLoss *w, const DamsmLoss *s, const Expected *e, int B) {
    char k[160];
    if (e->words_sims) {
        snprintf(k, sizeof k, "%s words_sims", name);
        expect_close(k, w->sims->data, e->words_sims, (int64_t)B * B, 2e-6);
    }
    if (e->sent_sims) {
        snprintf(k, sizeof k, "%s sent_sims", name);
        expect_close(k, s->sims->data, e->sent_sims, (int64_t)B * B, 2e-6);
    }
    snprintf(k, sizeof k, "%s w_loss0", name);
    expect_scalar(k, w->loss0, e->w0, 1e-5);
    snprintf(k, sizeof k, "%s w_loss1", name);
    expect_scalar(k, w->loss1, e->w1, 1e-5);
    snprintf(k, sizeof k, "%s s_loss0", name);
    expect_scalar(k, s->loss0, e->s0, 1e-5);
    snprintf(k, sizeof k, "%s s_loss1", name);
    expect_scalar(k, s->loss1, e->s1, 1e-5);
    const float got[4] = {w->loss0->data[0], w->loss1->data[0], s->loss0->data[0], s->loss1->data[0]};
    const float want[4] = {e->w0, e->w1, e->s0, e->s1};
    double worst = 0;
    for (int i = 0; i < 4; i++) worst = fmax(worst, fabs((double)got[i] - want[i]) / fmax(fabs((double)want[i]), 1e-12));
    printf("  %-40s max rel %.2e  (w0 %.6f w1 %.6f s0 %.6f s1 %.6f)\n", "losses", worst, got[0], got[1], got[2], got[3]);
}

/* Seeds loss0 with 1 and loss1 with a1 and runs backward. */
static void backward_pair(Tape *tp, const DamsmLoss *l, float a1) {
    Tensor *outs[2] = {l->loss0, l->loss1};
    const float one = 1.0f;
    const float *seeds[2] = {&one, &a1};
    tape_backward_seeded(tp, 2, outs, seeds);
}

static int *lens_from_i64(const int64_t *v, int B) {
    int *lens = xmalloc((size_t)B * sizeof(int));
    for (int i = 0; i < B; i++) lens[i] = (int)v[i];
    return lens;
}

static void report(const char *what, const float *got, const float *want, int64_t n) {
    double mx, r = rel_err(got, want, n, &mx);
    printf("  %-40s rel %.2e  max abs %.2e\n", what, r, mx);
}

/* ---------------------------------------------------------------- 2. reference dumps */

static float dump_scalar(SafeTensors *st, const char *key) { return fixture_scalar(st, key); }

static void dump_case(const char *dump, int has_grads) {
    SafeTensors *st = dump_open(dump);
    if (!st) return;
    ModelConfig cfg;
    dump_config(st, &cfg);
    Tensor *region = fixture_tensor(st, "out.region_features", 1), *words = fixture_tensor(st, "out.words_emb", 1);
    Tensor *code = fixture_tensor(st, "out.cnn_code", 1), *sent = fixture_tensor(st, "out.sent_emb", 1);
    Tensor *wsims = fixture_tensor(st, "out.words_sims", 0), *ssims = fixture_tensor(st, "out.sent_sims", 0);
    int64_t B64, nc;
    int64_t *lens64 = fixture_i64(st, "batch.cap_lens", &B64), *ids = fixture_i64(st, "batch.class_ids", &nc);
    int B = (int)B64, *lens = lens_from_i64(lens64, B);
    CHECK(nc == B && region->shape[0] == B, "%s: batch sizes disagree", dump);
    Expected e = {wsims->data, ssims->data, dump_scalar(st, "out.w_loss0"), dump_scalar(st, "out.w_loss1"),
                  dump_scalar(st, "out.s_loss0"), dump_scalar(st, "out.s_loss1")};
    Tape tp;
    tape_init(&tp);
    DamsmLoss w = damsm_words_loss(&tp, &cfg, region, words, lens, ids, B);
    DamsmLoss s = damsm_sent_loss(&tp, &cfg, code, sent, ids, B);
    int masked = 0;
    for (int k = 0; k < B * B; k++) masked += isinf(wsims->data[k]) != 0;
    printf("%s: B=%d E=%d L=%d, %d masked pairs\n", dump, B, words->shape[1], words->shape[2], masked);
    compare_forward(dump, &w, &s, &e, B);
    report("words_sims", w.sims->data, wsims->data, wsims->n);
    report("sent_sims", s.sims->data, ssims->data, ssims->n);
    if (fixture_has(st, "out.w_loss")) {   /* gan_step: the seed's x LAMBDA log values */
        char k[128];
        float wl = (w.loss0->data[0] + w.loss1->data[0]) * cfg.lambda;
        float sl = (s.loss0->data[0] + s.loss1->data[0]) * cfg.lambda;
        snprintf(k, sizeof k, "%s w_loss (x LAMBDA)", dump);
        expect_close(k, &wl, (float[]){dump_scalar(st, "out.w_loss")}, 1, 1e-5);
        snprintf(k, sizeof k, "%s s_loss (x LAMBDA)", dump);
        expect_close(k, &sl, (float[]){dump_scalar(st, "out.s_loss")}, 1, 1e-5);
    }
    if (has_grads) {
        backward_pair(&tp, &w, 1.0f);
        Tensor *dreg = fixture_tensor(st, "out.dregion_features", 0), *dw = fixture_tensor(st, "out.dwords_emb", 0);
        char k[128];
        snprintf(k, sizeof k, "%s d(w0+w1)/d region_features", dump);
        expect_close(k, region->grad, dreg->data, dreg->n, 1e-4);
        report("d region_features", region->grad, dreg->data, dreg->n);
        snprintf(k, sizeof k, "%s d(w0+w1)/d words_emb", dump);
        expect_close(k, words->grad, dw->data, dw->n, 1e-4);
        report("d words_emb", words->grad, dw->data, dw->n);
        tensor_free(dreg);
        tensor_free(dw);
    }
    tape_free(&tp);
    Tensor *all[] = {region, words, code, sent, wsims, ssims};
    for (int i = 0; i < 6; i++) tensor_free(all[i]);
    free(lens64);
    free(ids);
    free(lens);
    fixture_close(st);
}

/* ---------------------------------------------------------------- 3. constructed fixture */

/* with_ids: pass the case's class ids (for "nomask" they are distinct, so no entry is masked). */
static void fixture_case(SafeTensors *fx, const char *name, int with_ids) {
    char k[160], label[96];
    ModelConfig cfg;
    model_config_default(&cfg);
    cfg.gamma1 = fixture_scalar(fx, "gamma1");
    cfg.gamma2 = fixture_scalar(fx, "gamma2");
    cfg.gamma3 = fixture_scalar(fx, "gamma3");
#define FX(key, g) (snprintf(k, sizeof k, "%s.%s", name, key), fixture_tensor(fx, k, g))
    Tensor *region = FX("region", 1), *words = FX("words", 1), *code = FX("code", 1), *sent = FX("sent", 1);
    Tensor *wsims = FX("words_sims", 0), *ssims = FX("sent_sims", 0);
    Tensor *dregion = FX("dregion", 0), *dwords = FX("dwords", 0), *dcode = FX("dcode", 0), *dsent = FX("dsent", 0);
    Tensor *w0 = FX("w_loss0", 0), *w1 = FX("w_loss1", 0), *s0 = FX("s_loss0", 0), *s1 = FX("s_loss1", 0);
#undef FX
    int64_t B64;
    snprintf(k, sizeof k, "%s.cap_lens", name);
    int64_t *lens64 = fixture_i64(fx, k, &B64);
    snprintf(k, sizeof k, "%s.class_ids", name);
    int64_t *ids = fixture_i64(fx, k, NULL);
    int B = (int)B64, *lens = lens_from_i64(lens64, B);
    snprintf(label, sizeof label, "fixture %s (%s)", name, with_ids ? "class ids" : "NULL ids");
    printf("%s: B=%d\n", label, B);
    Expected e = {wsims->data, ssims->data, w0->data[0], w1->data[0], s0->data[0], s1->data[0]};
    Tape tp;
    tape_init(&tp);
    DamsmLoss w = damsm_words_loss(&tp, &cfg, region, words, lens, with_ids ? ids : NULL, B);
    DamsmLoss s = damsm_sent_loss(&tp, &cfg, code, sent, with_ids ? ids : NULL, B);
    compare_forward(label, &w, &s, &e, B);
    report("words_sims", w.sims->data, wsims->data, wsims->n);
    report("sent_sims", s.sims->data, ssims->data, ssims->n);
    backward_pair(&tp, &w, 0.5f);
    backward_pair(&tp, &s, 0.5f);
    const Tensor *got[4] = {region, words, code, sent}, *want[4] = {dregion, dwords, dcode, dsent};
    const char *gname[4] = {"d region", "d words", "d code", "d sent"};
    for (int i = 0; i < 4; i++) {
        snprintf(k, sizeof k, "%s %s (loss0 + 0.5 loss1)", label, gname[i]);
        expect_close(k, got[i]->grad, want[i]->data, want[i]->n, 1e-4);
        report(gname[i], got[i]->grad, want[i]->data, want[i]->n);
    }
    tape_free(&tp);
    Tensor *all[] = {region, words, code, sent, wsims, ssims, dregion, dwords, dcode, dsent, w0, w1, s0, s1};
    for (int i = 0; i < 14; i++) tensor_free(all[i]);
    free(lens64);
    free(ids);
    free(lens);
}

/* ---------------------------------------------------------------- 4. gradchecks */

typedef struct LossCtx {
    ModelConfig cfg;
    const int *lens;
    const int64_t *ids;   /* NULL: no mask */
    int B;
    int sims;             /* 1: output the sims (no mask only), 0: the two losses */
} LossCtx;

/* (2) = [loss0, loss1], or the (B, B) sims */
static Tensor *pair_or_sims(Tape *tp, DamsmLoss l, int sims) {
    if (sims) return l.sims;
    Tensor *parts[2] = {OP_RESHAPE(tp, l.loss0, 1), OP_RESHAPE(tp, l.loss1, 1)};
    return op_concat(tp, 2, parts, 0);
}

static Tensor *fwd_words(Tape *tp, Tensor **in, void *vctx) {
    LossCtx *c = vctx;
    return pair_or_sims(tp, damsm_words_loss(tp, &c->cfg, in[0], in[1], c->lens, c->ids, c->B), c->sims);
}

static Tensor *fwd_sent(Tape *tp, Tensor **in, void *vctx) {
    LossCtx *c = vctx;
    return pair_or_sims(tp, damsm_sent_loss(tp, &c->cfg, in[0], in[1], c->ids, c->B), c->sims);
}

static void test_gradchecks(void) {
    LossCtx c;
    model_config_default(&c.cfg);
    static const int lens[3] = {3, 2, 1};
    static const int64_t ids3[3] = {4, 9, 4};
    c.lens = lens;
    c.B = 3;
    Tensor *region = tensor_alloc(4, (int[]){3, 4, 3, 3}, 1), *words = tensor_alloc(3, (int[]){3, 4, 3}, 1);
    fill_uniform(region->data, region->n, -1, 1, 11);
    fill_uniform(words->data, words->n, -1, 1, 12);
    for (int b = 0; b < 3; b++)   /* zero padding past each caption, as the text encoder gives */
        for (int e = 0; e < 4; e++)
            for (int t = lens[b]; t < 3; t++) words->data[(b * 4 + e) * 3 + t] = 0.0f;
    region->name = "region";
    words->name = "words_emb";
    Tensor *win[2] = {region, words};
    GradcheckOpts o = {.h = 1e-3, .tol = 1e-2, .max_elems = -1, .seed = 5};
    c.ids = NULL, c.sims = 1;
    gradcheck("words_loss sims, no mask", fwd_words, 2, win, &c, &o);
    c.sims = 0;
    gradcheck("words_loss losses, no mask", fwd_words, 2, win, &c, &o);
    c.ids = ids3;
    gradcheck("words_loss losses, mask {4,9,4}", fwd_words, 2, win, &c, &o);

    static const int64_t ids5[5] = {2, 2, 7, 1, 2};
    Tensor *code = tensor_alloc(2, (int[]){5, 6}, 1), *sent = tensor_alloc(2, (int[]){5, 6}, 1);
    fill_uniform(code->data, code->n, -1, 1, 13);
    fill_uniform(sent->data, sent->n, -1, 1, 14);
    code->name = "cnn_code";
    sent->name = "sent_emb";
    Tensor *sin[2] = {code, sent};
    c.B = 5, c.ids = NULL, c.sims = 1;
    gradcheck("sent_loss sims, no mask", fwd_sent, 2, sin, &c, &o);
    c.sims = 0;
    gradcheck("sent_loss losses, no mask", fwd_sent, 2, sin, &c, &o);
    c.ids = ids5;
    gradcheck("sent_loss losses, mask {2,2,7,1,2}", fwd_sent, 2, sin, &c, &o);
    Tensor *all[] = {region, words, code, sent};
    for (int i = 0; i < 4; i++) tensor_free(all[i]);
}

/* ---------------------------------------------------------------- 5. host word-region score */
static void test_words_score(void) {
    ModelConfig cfg;
    model_config_default(&cfg);
    enum { B = 4, E = 16, H = 5, W = 3, L = 7 };
    static const int lens[B] = {7, 4, 1, 5};
    Tensor *region = tensor_alloc(4, (int[]){B, E, H, W}, 0), *words = tensor_alloc(3, (int[]){B, E, L}, 0);
    fill_uniform(region->data, region->n, -1, 1, 21);
    fill_uniform(words->data, words->n, -1, 1, 22);
    for (int b = 0; b < B; b++)
        for (int e = 0; e < E; e++)
            for (int t = lens[b]; t < L; t++) words->data[(b * E + e) * L + t] = 0.0f;
    Tape tp;
    tape_init(&tp);
    tape_no_grad_begin(&tp);
    DamsmLoss w = damsm_words_loss(&tp, &cfg, region, words, lens, NULL, B);
    double worst = 0;
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++) {
            double got = damsm_words_score(&cfg, region->data + (size_t)i * E * H * W, E, H * W, words->data + (size_t)j * E * L, L, lens[j]);
            double want = w.sims->data[i * B + j] / cfg.gamma3;
            double d = fabs(got - want) / fmax(fabs(want), 1.0);
            if (d > worst) worst = d;
        }
    EXPECT(worst < 1e-5, "damsm_words_score = words_loss sims / gamma3 for all %d pairs (worst rel. difference %.2e)", B * B, worst);
    double s0 = damsm_words_score(&cfg, region->data, E, H * W, words->data, L, lens[0]);
    words->data[2] += 0.5f; /* word 2 of text 0, dimension 0 */
    double s1 = damsm_words_score(&cfg, region->data, E, H * W, words->data, L, lens[0]);
    EXPECT(s1 != s0, "a changed word changes the score (%.9g, %.9g)", s0, s1);
    tape_free(&tp);
    tensor_free(region);
    tensor_free(words);
}

int main(void) {
    test_begin("test_damsm");
    test_words_score();
    test_class_mask();
    dump_case("damsm_small", 1);
    dump_case("damsm_small_drop", 1);
    dump_case("gan_b1_small", 0);
    dump_case("gan_b3_small", 0);
    SafeTensors *fx = fixture_open("damsm");
    if (fx) {
        fixture_case(fx, "rep", 1);
        fixture_case(fx, "nomask", 0);
        fixture_case(fx, "nomask", 1);
        fixture_close(fx);
    }
    test_gradchecks();
    return test_end();
}
