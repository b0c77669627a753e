/* test_zsl.c: the ZSL pair's losses (src/nn/zsl.c) and their options (docs/ZSL_VARIANTS.md):
 *  (1) PyTorch (tests/fixtures/gen_zsl.py, formulas of GAZSL's train_CUB.py): the critic's loss
 *      (ZSL.ADV_LOSS wgan_gp: Wasserstein terms, class terms, GP_LAMBDA * the gradient penalty
 *      through PyTorch's double backward) and the seed's BCE loss, with their gradients in every
 *      weight of ZSL D; the generator's side of both (with PIVOT_LAMBDA * the visual pivot), with
 *      their gradients in the image and text codes; the penalty and the pivot alone;
 *  (2) finite-difference gradchecks of the penalty (in D's weights and biases), the pivot (in
 *      both codes: the image codes' gradient is 0), and both sides' WGAN-GP losses;
 *      The same losses on sets of their own sizes (the word-level pair of ZSL.WORD_LEVEL: 9 region
 *      rows, 5 word rows, the penalty on paired rows, the pivot over the classes in both);
 *  (3) the config keys: defaults (the seed's), --set, the values refused, the model config;
 *  (4) ZSL.WORD_LEVEL's text encoder: zsl_gw.* registered after zsl_g.*, word codes (B, E, L) zero
 *      past each length, the LSTM's words kept in words_lstm, zero noise without an Rng
 *      (deterministic), noise from an Rng, and finite differences of the word codes in zsl_gw's
 *      weights and in the word embeddings;
 *  (5) ZSL.GAN_PHASE's step (src/train/zsl_gan.c) on tiny networks with a random trunk: ZSL D and
 *      ZSL G (zsl_g.* only) change, the rest of the text encoder does not, both are frozen again
 *      after it, the same seeds give the same bits, and WGAN-GP reports its penalty. */
#include "test.h"
#include "../src/nn/load.h"
#include "../src/nn/text_encoder.h"
#include "../src/nn/zsl.h"
#include "../src/nn/train_config.h"
#include "../src/train/zsl_gan.h"

#include <math.h>
#include <string.h>

#define TOL 1e-5

static Tensor *param(ZslD *d, const char *key) {
    ParamEntry *e = paramset_find(&d->ps, key);
    CHECK(e, "no parameter %s", key);
    return &e->t;
}

/* uniform weights in +-0.8 and biases in +-0.3, seeded */
static void random_weights(ParamSet *ps, uint64_t seed) {
    for (int i = 0; i < ps->n; i++) {
        Tensor *t = &ps->entries[i]->t;
        float r = t->ndim >= 2 ? 0.8f : 0.3f;
        fill_uniform(t->data, t->n, -r, r, seed + (uint64_t)i);
    }
}

static const char *const KEYS[6] = {"D_shared.0.weight", "D_shared.0.bias", "D_gan.weight", "D_gan.bias", "D_aux.weight", "D_aux.bias"};

static void tiny_config(ModelConfig *cfg) {
    model_config_default(cfg);
    cfg->embedding_dim = 6;
    cfg->zsl_h = 5;
    cfg->num_classes = 4;
}

static void close_to(SafeTensors *st, const char *key, const float *got, int64_t n, const char *what) {
    Tensor *want = fixture_tensor(st, key, 0);
    if (EXPECT(want->n == n, "%s: %lld elements, fixture %s has %lld", what, (long long)n, key, (long long)want->n)) {
        char w[256];
        snprintf(w, sizeof w, "%s (%s)", what, key);
        expect_close(w, got, want->data, n, TOL);
    }
    tensor_free(want);
}

static void scalar_close(SafeTensors *st, const char *key, const Tensor *t, const char *what) {
    if (EXPECT(t != NULL, "%s: no tensor", what)) close_to(st, key, t->data, 1, what);
}

/* a side's loss and four terms against <side>_<mode>.loss / .term<i> */
static void side_close(SafeTensors *st, const char *side, const char *mode, const char *what, const ZslTerms *z) {
    char k[128], w[128];
    snprintf(k, sizeof k, "%s_%s.loss", side, mode);
    snprintf(w, sizeof w, "%s (%s) loss", what, mode);
    scalar_close(st, k, z->loss, w);
    for (int i = 0; i < 4; i++) {
        snprintf(k, sizeof k, "%s_%s.term%d", side, mode, i);
        snprintf(w, sizeof w, "%s (%s) term %d", what, mode, i);
        scalar_close(st, k, z->terms[i], w);
    }
}

/* ---------------------------------------------------------------- (1) PyTorch */
static void fixture_cases(void) {
    SafeTensors *st = fixture_open("zsl");
    if (!st) return;
    ModelConfig cfg;
    tiny_config(&cfg);
    cfg.zsl_gp_lambda = fixture_scalar(st, "cfg.gp_lambda");
    ZslD d;
    zsl_d_init(&d, &cfg);
    int rc = nn_load(&d.ps, st, "param.", 0, NULL);
    EXPECT(rc == 0, "nn_load param.*: %s", rc ? err_msg() : "");
    int64_t B;
    int64_t *ids = fixture_i64(st, "in.class_ids", &B);
    int64_t y[16];
    for (int i = 0; i < B; i++) y[i] = ids[i] - 1;
    char k[128], w[128];
    for (int wgan = 1; wgan >= 0; wgan--) {
        const char *mode = wgan ? "wgan" : "bce";
        cfg.zsl_wgan = wgan;
        cfg.zsl_pivot_lambda = wgan ? fixture_scalar(st, "cfg.pivot_lambda") : 0.0f;
        /* the critic's side: gradients in D's weights */
        Tensor *code = fixture_tensor(st, "in.code", 0), *sent = fixture_tensor(st, "in.sent", 0);
        Tensor *alpha = fixture_tensor(st, "in.alpha", 0);
        Tape tp;
        tape_init(&tp);
        paramset_set_frozen(&d.ps, 0);
        paramset_zero_grad(&d.ps);
        ZslTerms z;
        zsl_pair_d_loss(&tp, &d, &cfg, code, sent, y, wgan ? alpha : NULL, &z);
        side_close(st, "d", mode, "critic side", &z);
        if (wgan) scalar_close(st, "d_wgan.gp", z.extra, "critic side gradient penalty");
        else EXPECT(z.extra == NULL, "critic side (bce): no penalty");
        tape_backward(&tp, z.loss);
        for (int i = 0; i < 6; i++) {
            snprintf(k, sizeof k, "d_%s.grad.%s", mode, KEYS[i]);
            snprintf(w, sizeof w, "critic side (%s) grad", mode);
            Tensor *p = param(&d, KEYS[i]);
            if (wgan && i == 3) /* -1 + 1: 0 in PyTorch's float64, rounding here */
                EXPECT(fabsf(p->grad[0]) <= 1e-6f, "critic side (wgan) grad of D_gan.bias %g, want 0", p->grad[0]);
            else close_to(st, k, p->grad, p->n, w);
        }
        tape_free(&tp);
        /* the generator's side: D frozen, gradients in the codes */
        tensor_free(code);
        tensor_free(sent);
        code = fixture_tensor(st, "in.code", 1), sent = fixture_tensor(st, "in.sent", 1);
        tape_init(&tp);
        paramset_set_frozen(&d.ps, 1);
        zsl_pair_g_loss(&tp, &d, &cfg, code, sent, y, ids, &z);
        side_close(st, "g", mode, "generator side", &z);
        if (wgan) scalar_close(st, "g_wgan.pivot", z.extra, "generator side visual pivot");
        else EXPECT(z.extra == NULL, "generator side (bce, PIVOT_LAMBDA 0): no pivot");
        tape_backward(&tp, z.loss);
        snprintf(k, sizeof k, "g_%s.grad.code", mode);
        snprintf(w, sizeof w, "generator side (%s) grad of the image codes", mode);
        close_to(st, k, code->grad, code->n, w);
        snprintf(k, sizeof k, "g_%s.grad.sent", mode);
        snprintf(w, sizeof w, "generator side (%s) grad of the text codes", mode);
        close_to(st, k, sent->grad, sent->n, w);
        tape_free(&tp);
        tensor_free(code);
        tensor_free(sent);
        tensor_free(alpha);
    }
    /* the penalty alone, and the pivot alone */
    {
        Tensor *code = fixture_tensor(st, "in.code", 0), *sent = fixture_tensor(st, "in.sent", 0), *alpha = fixture_tensor(st, "in.alpha", 0);
        Tape tp;
        tape_init(&tp);
        paramset_set_frozen(&d.ps, 0);
        paramset_zero_grad(&d.ps);
        Tensor *gp = zsl_d_gradient_penalty(&tp, &d, code, sent, alpha);
        scalar_close(st, "gp.value", gp, "gradient penalty");
        tape_backward(&tp, gp);
        for (int i = 0; i < 6; i++) {
            snprintf(k, sizeof k, "gp.grad.%s", KEYS[i]);
            Tensor *p = param(&d, KEYS[i]);
            close_to(st, k, p->grad, p->n, "gradient penalty's grad");
        }
        tape_free(&tp);
        tensor_free(code);
        tensor_free(sent);
        code = fixture_tensor(st, "in.code", 1), sent = fixture_tensor(st, "in.sent", 1);
        tape_init(&tp);
        Tensor *pv = zsl_visual_pivot(&tp, sent, code, ids, (int)B);
        scalar_close(st, "pivot.value", pv, "visual pivot");
        tape_backward(&tp, pv);
        close_to(st, "pivot.grad.sent", sent->grad, sent->n, "visual pivot's grad of the text codes");
        int nz = 0;
        for (int64_t i = 0; code->grad && i < code->n; i++) nz += code->grad[i] != 0.0f;
        EXPECT(nz == 0, "visual pivot: the image codes are its target (detached): %d nonzero gradients", nz);
        tape_free(&tp);
        tensor_free(code);
        tensor_free(sent);
        tensor_free(alpha);
    }
    /* sets of their own sizes: the word-level pair */
    {
        Tensor *real = fixture_tensor(st, "sets.real", 0), *fake = fixture_tensor(st, "sets.fake", 0);
        Tensor *alpha = fixture_tensor(st, "sets.alpha", 0);
        int64_t N, M, np;
        int64_t *ir = fixture_i64(st, "sets.ids_real", &N), *ifk = fixture_i64(st, "sets.ids_fake", &M), *pair = fixture_i64(st, "sets.pair", &np);
        int64_t yr[16], yf[16];
        for (int i = 0; i < N; i++) yr[i] = ir[i] - 1;
        for (int i = 0; i < M; i++) yf[i] = ifk[i] - 1;
        cfg.zsl_wgan = 1;
        cfg.zsl_pivot_lambda = fixture_scalar(st, "cfg.pivot_lambda");
        Tape tp;
        tape_init(&tp);
        Tensor *gp_real = TNEW(&tp, (int)M, 6);
        for (int i = 0; i < M; i++) memcpy(gp_real->data + i * 6, real->data + pair[i] * 6, 6 * sizeof(float));
        paramset_set_frozen(&d.ps, 0);
        paramset_zero_grad(&d.ps);
        ZslTerms z;
        zsl_pair_d_loss_sets(&tp, &d, &cfg, real, yr, fake, yf, gp_real, alpha, &z);
        scalar_close(st, "sets_d.loss", z.loss, "critic side on sets (wgan_gp) loss");
        tape_backward(&tp, z.loss);
        for (int i = 0; i < 6; i++) {
            snprintf(k, sizeof k, "sets_d.grad.%s", KEYS[i]);
            Tensor *p = param(&d, KEYS[i]);
            if (i == 3) EXPECT(fabsf(p->grad[0]) <= 1e-6f, "critic side on sets: grad of D_gan.bias %g, want 0", p->grad[0]);
            else close_to(st, k, p->grad, p->n, "critic side on sets grad");
        }
        tape_free(&tp);
        tensor_free(real);
        tensor_free(fake);
        real = fixture_tensor(st, "sets.real", 1), fake = fixture_tensor(st, "sets.fake", 1);
        tape_init(&tp);
        paramset_set_frozen(&d.ps, 1);
        zsl_pair_g_loss_sets(&tp, &d, &cfg, real, yr, ir, fake, yf, ifk, &z);
        scalar_close(st, "sets_g.loss", z.loss, "generator side on sets (wgan_gp + pivot) loss");
        tape_backward(&tp, z.loss);
        close_to(st, "sets_g.grad.real", real->grad, real->n, "generator side on sets: grad of the real rows");
        close_to(st, "sets_g.grad.fake", fake->grad, fake->n, "generator side on sets: grad of the fake rows");
        tape_free(&tp);
        tensor_free(real);
        tensor_free(fake);
        tensor_free(alpha);
        free(ir);
        free(ifk);
        free(pair);
    }
    free(ids);
    zsl_d_free(&d);
    fixture_close(st);
}

/* ---------------------------------------------------------------- (2) gradchecks */
typedef struct Ctx {
    ZslD *d;
    ModelConfig *cfg;
    Tensor *code, *sent, *alpha;
    const int64_t *y, *ids;
    int B;
    int n_in; /* fwd_g: 1 (text codes) or 2 (image codes, text codes) */
} Ctx;

/* in[0..5]: D's weights (the penalty is a function of them; code, sent, alpha fixed) */
static Tensor *fwd_gp(Tape *tp, Tensor **in, void *vc) {
    Ctx *c = vc;
    return OP_RESHAPE(tp, zsl_d_gradient_penalty(tp, c->d, c->code, c->sent, c->alpha), 1);
}

static Tensor *fwd_pivot(Tape *tp, Tensor **in, void *vc) {
    Ctx *c = vc;
    return OP_RESHAPE(tp, zsl_visual_pivot(tp, in[0], c->code, c->ids, c->B), 1);
}

/* in: (text codes) with the image codes fixed, or (image codes, text codes) */
static Tensor *fwd_g(Tape *tp, Tensor **in, void *vc) {
    Ctx *c = vc;
    ZslTerms z;
    zsl_pair_g_loss(tp, c->d, c->cfg, c->n_in == 2 ? in[0] : c->code, c->n_in == 2 ? in[1] : in[0], c->y, c->ids, &z);
    return OP_RESHAPE(tp, z.loss, 1);
}

static Tensor *fwd_d(Tape *tp, Tensor **in, void *vc) {
    Ctx *c = vc;
    ZslTerms z;
    zsl_pair_d_loss(tp, c->d, c->cfg, c->code, c->sent, c->y, c->alpha, &z);
    return OP_RESHAPE(tp, z.loss, 1);
}

static void gradcheck_cases(void) {
    ModelConfig cfg;
    tiny_config(&cfg);
    cfg.zsl_wgan = 1;
    cfg.zsl_pivot_lambda = 0.7f;
    cfg.zsl_gp_lambda = 3.0f;
    ZslD d;
    zsl_d_init(&d, &cfg);
    random_weights(&d.ps, 61);
    enum { B = 9 };
    const int64_t ids[B] = {2, 4, 2, 1, 4, 4, 3, 1, 2};
    int64_t y[B];
    for (int i = 0; i < B; i++) y[i] = ids[i] - 1;
    Tensor *code = tensor_alloc(2, (int[]){B, 6}, 1), *sent = tensor_alloc(2, (int[]){B, 6}, 1), *alpha = tensor_alloc(2, (int[]){B, 1}, 0);
    fill_uniform(code->data, code->n, -1.5f, 1.5f, 62);
    fill_uniform(sent->data, sent->n, -1, 1, 63);
    fill_uniform(alpha->data, alpha->n, 0, 1, 64);
    code->name = "code";
    sent->name = "sent";
    Ctx c = {&d, &cfg, code, sent, alpha, y, ids, B, 1};
    GradcheckOpts opts = {.h = 1e-3, .tol = 1e-2, .max_elems = -1, .seed = 65, .move_sets = {&d.ps},
                          .move_tensors = {code, sent, alpha}};
    Tensor *w[6];
    for (int i = 0; i < 6; i++) w[i] = param(&d, KEYS[i]);
    paramset_set_frozen(&d.ps, 0);
    gradcheck("gradient penalty in D's weights", fwd_gp, 6, w, &c, &opts);
    /* D_gan.bias (w[3]) is left out of the critic loss's check: its gradient is -1 + 1 = 0 up to
     * rounding, which no relative error can judge */
    Tensor *wd[5] = {w[0], w[1], w[2], w[4], w[5]};
    gradcheck("critic loss (wgan_gp) in D's weights", fwd_d, 5, wd, &c, &opts);
    paramset_set_frozen(&d.ps, 1);
    /* the pivot's image codes are a target (detached): a finite difference in them is not its
     * gradient, so with the pivot on only the text codes are checked (test (1) checks the 0) */
    GradcheckOpts o2 = {.h = 1e-3, .tol = 1e-2, .max_elems = -1, .seed = 66, .move_sets = {&d.ps}, .move_tensors = {code}};
    gradcheck("visual pivot in the text codes", fwd_pivot, 1, &sent, &c, &o2);
    gradcheck("generator side (wgan_gp + pivot) in the text codes", fwd_g, 1, &sent, &c, &o2);
    cfg.zsl_wgan = 0;
    gradcheck("generator side (bce + pivot) in the text codes", fwd_g, 1, &sent, &c, &o2);
    cfg.zsl_pivot_lambda = 0.0f;
    GradcheckOpts o3 = {.h = 1e-3, .tol = 1e-2, .max_elems = -1, .seed = 67, .move_sets = {&d.ps}};
    Tensor *gin[2] = {code, sent};
    c.n_in = 2;
    gradcheck("generator side (bce) in (image codes, text codes)", fwd_g, 2, gin, &c, &o3);
    cfg.zsl_wgan = 1;
    gradcheck("generator side (wgan_gp) in (image codes, text codes)", fwd_g, 2, gin, &c, &o3);
    tensor_free(code);
    tensor_free(sent);
    tensor_free(alpha);
    zsl_d_free(&d);
}

/* ---------------------------------------------------------------- (3) config */
static void config_cases(void) {
    TrainConfig tc;
    train_config_default(&tc);
    ModelConfig m;
    train_config_to_model(&tc, &m);
    EXPECT(!strcmp(tc.zsl.adv_loss, "bce") && tc.zsl.critic_steps == 1 && tc.zsl.gp_lambda == 10.0 && tc.zsl.pivot_lambda == 0.0,
           "defaults: ZSL.ADV_LOSS '%s', CRITIC_STEPS %d, GP_LAMBDA %g, PIVOT_LAMBDA %g (want the seed's bce, 1, GAZSL's 10, 0)",
           tc.zsl.adv_loss, tc.zsl.critic_steps, tc.zsl.gp_lambda, tc.zsl.pivot_lambda);
    EXPECT(!m.zsl_wgan && m.zsl_critic_steps == 1 && m.zsl_pivot_lambda == 0.0f, "defaults reach the model config as the seed's");
    int rc = train_config_set(&tc, "ZSL.ADV_LOSS=wgan_gp") | train_config_set(&tc, "ZSL.CRITIC_STEPS=5") |
             train_config_set(&tc, "ZSL.GP_LAMBDA=2.5") | train_config_set(&tc, "ZSL.PIVOT_LAMBDA=1");
    EXPECT(rc == 0, "--set of the four keys: %s", rc ? err_msg() : "");
    train_config_to_model(&tc, &m);
    EXPECT(m.zsl_wgan == 1 && m.zsl_critic_steps == 5 && m.zsl_gp_lambda == 2.5f && m.zsl_pivot_lambda == 1.0f,
           "--set values reach the model config: wgan %d, critic steps %d, gp %g, pivot %g", m.zsl_wgan, m.zsl_critic_steps,
           m.zsl_gp_lambda, m.zsl_pivot_lambda);
    TrainConfig base;
    train_config_default(&base);
    const char *diff = train_config_encoder_diff(&tc, &base);
    EXPECT(diff && !strcmp(diff, "ZSL.ADV_LOSS"), "a GAN on encoders pretrained with another ZSL.ADV_LOSS is an encoder mismatch (%s)",
           diff ? diff : "none");
    const char *bad[] = {"ZSL.ADV_LOSS=wgan", "ZSL.CRITIC_STEPS=0", "ZSL.GP_LAMBDA=-1", "ZSL.PIVOT_LAMBDA=nan"};
    for (int i = 0; i < 4; i++) {
        TrainConfig t2;
        train_config_default(&t2);
        int r = train_config_set(&t2, bad[i]);
        EXPECT(r != 0 && strstr(err_msg(), "ZSL."), "--set %s refused naming the key (%s)", bad[i], r ? err_msg() : "accepted");
    }
}

/* ---------------------------------------------------------------- (4) word-level text encoder */
static void word_config(ModelConfig *cfg) {
    model_config_default(cfg);
    cfg->embedding_dim = cfg->condition_dim = 8;
    cfg->word_dim = 6;
    cfg->n_words = 20;
    cfg->words_num = 7;
    cfg->zsl_rdc = 5;
    cfg->zsl_z = 3;
    cfg->zsl_h = 9;
    cfg->num_classes = 4;
    cfg->rnn_drop = 0.0f;
    cfg->zsl_word = 1;
}

enum { WB = 3 };
static const int64_t WCAPS[WB * 7] = {3, 5, 7, 2, 9, 11, 4, 6, 8, 10, 1, 0, 0, 0, 12, 13, 0, 0, 0, 0, 0};
static const int WLENS[WB] = {7, 4, 2};

typedef struct WordCtx {
    TextEncoder *te;
    const Tensor *z; /* the sentence noise (B, Z) */
} WordCtx;

/* the word codes with zero noise (no Rng): a function of the weights given as inputs */
static Tensor *fwd_words(Tape *tp, Tensor **in, void *vc) {
    WordCtx *c = vc;
    TextEncoderOut o = text_encoder_forward(tp, c->te, WCAPS, WLENS, WB, c->z, NULL, NULL);
    (void)in;
    return o.words_emb;
}

static void word_level_cases(void) {
    ModelConfig cfg;
    word_config(&cfg);
    TextEncoder te;
    text_encoder_init(&te, &cfg);
    random_weights(&te.ps, 71);
    int n_g = 0, first_gw = -1, last_g = -1;
    for (int i = 0; i < te.ps.n; i++) {
        const char *nm = te.ps.entries[i]->name;
        if (!strncmp(nm, "zsl_gw.", 7)) { n_g++; if (first_gw < 0) first_gw = i; }
        else if (!strncmp(nm, "zsl_g.", 6)) last_g = i;
    }
    EXPECT(n_g == 6 && first_gw > last_g, "ZSL.WORD_LEVEL: 6 zsl_gw.* tensors after zsl_g.* (%d, first at %d, zsl_g's last at %d)", n_g,
           first_gw, last_g);
    ModelConfig off = cfg;
    off.zsl_word = 0;
    TextEncoder te0;
    text_encoder_init(&te0, &off);
    EXPECT(te0.ps.n == te.ps.n - 6, "without ZSL.WORD_LEVEL no zsl_gw.* (%d tensors against %d)", te0.ps.n, te.ps.n);
    text_encoder_free(&te0);
    Tape tp;
    tape_init(&tp);
    Rng rng;
    rng_init(&rng, 72);
    Tensor *z = tensor_alloc(2, (int[]){WB, 3}, 0);
    fill_uniform(z->data, z->n, -1, 1, 74);
    TextEncoderOut a = text_encoder_forward(&tp, &te, WCAPS, WLENS, WB, z, NULL, NULL);
    TextEncoderOut b = text_encoder_forward(&tp, &te, WCAPS, WLENS, WB, z, NULL, NULL);
    TextEncoderOut c = text_encoder_forward(&tp, &te, WCAPS, WLENS, WB, z, NULL, &rng);
    int L = 7, E = 8, zero_ok = 1, same = 1, lstm_differs = 0, noise_differs = 0;
    EXPECT(a.words_emb->ndim == 3 && a.words_emb->shape[0] == WB && a.words_emb->shape[1] == E && a.words_emb->shape[2] == L,
           "word codes are (B, E, L)");
    for (int bb = 0; bb < WB; bb++)
        for (int e = 0; e < E; e++)
            for (int t = 0; t < L; t++) {
                size_t i = ((size_t)bb * E + e) * L + t;
                if (t >= WLENS[bb]) zero_ok &= a.words_emb->data[i] == 0.0f && c.words_emb->data[i] == 0.0f;
                else {
                    lstm_differs |= a.words_emb->data[i] != a.words_lstm->data[i];
                    noise_differs |= a.words_emb->data[i] != c.words_emb->data[i];
                }
                same &= a.words_emb->data[i] == b.words_emb->data[i];
            }
    EXPECT(zero_ok, "word codes are 0 past each caption's length");
    EXPECT(same, "without an Rng the word codes are deterministic (zero noise)");
    EXPECT(lstm_differs, "the word codes are ZSL G's, not the LSTM's (kept in words_lstm)");
    EXPECT(noise_differs && rng.offset > 0, "with an Rng the word codes take noise");
    tape_free(&tp);
    WordCtx wc = {&te, z};
    Tensor *in[3];
    const char *names[3] = {"zsl_gw.main.0.weight", "zsl_gw.rdc_text.weight", "encoder.weight"};
    for (int i = 0; i < 3; i++) {
        ParamEntry *e = paramset_find(&te.ps, names[i]);
        CHECK(e, "no %s", names[i]);
        in[i] = &e->t;
    }
    paramset_set_frozen(&te.ps, 0);
    GradcheckOpts opts = {.h = 1e-3, .tol = 1e-2, .max_elems = 24, .seed = 73, .move_sets = {&te.ps}, .move_tensors = {z}};
    gradcheck("ZSL.WORD_LEVEL word codes in zsl_gw's weights and the word embeddings", fwd_words, 3, in, &wc, &opts);
    tensor_free(z);
    text_encoder_free(&te);
}

/* ---------------------------------------------------------------- (5) ZSL in the GAN phase */
static uint64_t set_hash(const ParamSet *ps, const char *prefix, int want) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < ps->n; i++) {
        const ParamEntry *e = ps->entries[i];
        if (e->kind != PARAM_WEIGHT || (!strncmp(e->name, prefix, strlen(prefix))) != want) continue;
        const unsigned char *p = (const unsigned char *)e->t.data;
        for (size_t k = 0; k < (size_t)e->t.n * sizeof(float); k++) h = (h ^ p[k]) * 1099511628211ull;
    }
    return h;
}

static void gan_phase_run(int wgan, uint64_t out[3], float *gp) {
    ModelConfig cfg;
    word_config(&cfg);
    cfg.zsl_word = 0;
    cfg.zsl_wgan = wgan;
    cfg.encoder_lr = 1e-2f;
    TextEncoder te;
    ImageEncoder ie;
    ZslD zd;
    text_encoder_init(&te, &cfg);
    image_encoder_init(&ie, &cfg);
    zsl_d_init(&zd, &cfg);
    random_weights(&te.ps, 81);
    random_weights(&zd.ps, 82);
    for (int i = 0; i < ie.ps.n; i++) { /* small random weights everywhere, BN statistics (0, 1) */
        ParamEntry *e = ie.ps.entries[i];
        if (e->kind == PARAM_BUFFER_I64) continue;
        const char *nm = e->name;
        size_t l = strlen(nm);
        if (l > 12 && !strcmp(nm + l - 12, "running_mean")) fill_uniform(e->t.data, e->t.n, 0, 0, 1);
        else if (l > 11 && !strcmp(nm + l - 11, "running_var")) fill_uniform(e->t.data, e->t.n, 1, 1, 1);
        else fill_uniform(e->t.data, e->t.n, -0.05f, 0.05f, 83 + (uint64_t)i);
    }
    ie.train = 0;
    paramset_set_frozen(&te.ps, 1);
    paramset_set_frozen(&ie.ps, 1);
    paramset_set_frozen(&zd.ps, 1);
    GanTrainer t;
    memset(&t, 0, sizeof t);
    t.cfg = cfg;
    t.te = &te, t.ie = &ie, t.zd = &zd, t.n_d = 1;
    tape_init(&t.tp_g);
    ZslGan z;
    zsl_gan_init(&z, &t);
    Tensor *img = tensor_alloc(4, (int[]){2, 3, 64, 64}, 0);
    fill_uniform(img->data, img->n, -1, 1, 84);
    const int64_t caps[2 * 7] = {3, 5, 7, 2, 0, 0, 0, 9, 11, 0, 0, 0, 0, 0};
    const int lens[2] = {4, 2};
    const int64_t cls[2] = {2, 4};
    GanBatch b = {{img, NULL, NULL}, caps, lens, cls, 2};
    uint64_t zd0 = set_hash(&zd.ps, "", 1), g0 = set_hash(&te.ps, "zsl_g.", 1), rest0 = set_hash(&te.ps, "zsl_g.", 0);
    Rng rng;
    rng_init(&rng, 85);
    ZslGanOut o;
    zsl_gan_step(&z, &b, &rng, &o);
    out[0] = set_hash(&zd.ps, "", 1), out[1] = set_hash(&te.ps, "zsl_g.", 1), out[2] = set_hash(&te.ps, "zsl_g.", 0);
    *gp = o.gp;
    EXPECT(out[0] != zd0 && out[1] != g0 && out[2] == rest0,
           "ZSL.GAN_PHASE (%s): ZSL D changed %d, zsl_g.* changed %d, the rest of the text encoder unchanged %d", wgan ? "wgan_gp" : "bce",
           out[0] != zd0, out[1] != g0, out[2] == rest0);
    int any_grad = 0;
    for (int i = 0; i < te.ps.n; i++) any_grad |= te.ps.entries[i]->kind == PARAM_WEIGHT && te.ps.entries[i]->t.requires_grad;
    for (int i = 0; i < zd.ps.n; i++) any_grad |= zd.ps.entries[i]->kind == PARAM_WEIGHT && zd.ps.entries[i]->t.requires_grad;
    EXPECT(!any_grad, "ZSL.GAN_PHASE: the text encoder and ZSL D are frozen again after the step (the GAN step is the seed's)");
    EXPECT(isfinite(o.d_loss) && isfinite(o.g_loss), "ZSL.GAN_PHASE: finite losses (D %g, G %g)", o.d_loss, o.g_loss);
    zsl_gan_free(&z);
    tape_free(&t.tp_g);
    tensor_free(img);
    text_encoder_free(&te);
    image_encoder_free(&ie);
    zsl_d_free(&zd);
}

static void gan_phase_cases(void) {
    uint64_t a[3], b[3], w[3];
    float gp0, gp1, gpw;
    gan_phase_run(0, a, &gp0);
    gan_phase_run(0, b, &gp1);
    EXPECT(a[0] == b[0] && a[1] == b[1] && a[2] == b[2], "ZSL.GAN_PHASE: the same seeds give the same bits");
    EXPECT(gp0 == 0.0f, "ZSL.GAN_PHASE (bce): no penalty");
    gan_phase_run(1, w, &gpw);
    EXPECT(gpw > 0.0f && isfinite(gpw), "ZSL.GAN_PHASE (wgan_gp): the critic's penalty is reported (%g)", gpw);
}

int main(void) {
    test_begin("test_zsl");
    fixture_cases();
    gradcheck_cases();
    config_cases();
    word_level_cases();
    gan_phase_cases();
    return test_end();
}
