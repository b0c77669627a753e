/* test_ca_net.c: AttnGAN's CA_NET + noise option of G (cfg.ca_net, src/nn/generator.c) and its
 * KL term in the G loss (src/train/gan_step.c):
 *  (1) config: defaults (off, Z_DIM 100) and the JSON keys CA_NET / Z_DIM;
 *  (2) state_dict keys: ca_net.fc.{weight,bias} first, then the seed's keys in order, with
 *      h_net1.fc.0.weight (ngf*32, C + Z); output shapes; mu/logvar NULL without ca_net;
 *  (3) PyTorch (tests/fixtures/gen_ca_net.py, a 1-stage AttnGAN G_NET with given z, eps, train
 *      mode): image, mu, logvar, KL, BN running stats, gradients of sum(img * gout) + KL w.r.t.
 *      sent_emb and every weight, and the KL term's own gradients;
 *  (4) finite-difference gradchecks of the KL term and of CA_NET through G;
 *  (5) noise from an Rng: deterministic for a seed, z drawn before eps, the seed's model draws
 *      nothing and is bit-identical to gnet_forward; gnet_forward / a NULL rng abort clearly;
 *  (6) gan_step with ca_net on a reference dump's networks: errG_total = (the seed's sum) + KL,
 *      CA_NET gets gradients and an EMA copy. */
#include "test.h"
#include "../src/nn/generator.h"
#include "../src/nn/load.h"
#include "../src/train/gan_step.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define FWD_TOL 1e-5
#define GRAD_TOL 1e-4

static Tensor *param(GNet *g, const char *key) {
    ParamEntry *e = paramset_find(&g->ps, key);
    CHECK(e, "no parameter %s", key);
    return &e->t;
}

static int shape_is(const Tensor *t, int ndim, const int *shape) {
    if (!t || t->ndim != ndim) return 0;
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] != shape[i]) return 0;
    return 1;
}
#define SHAPE_IS(t, ...) shape_is((t), NDIMS(__VA_ARGS__), (int[]){__VA_ARGS__})

/* E = 6, C = 5, Z = 3 (all different, so a mixed-up size shows), gf 2, one ResBlock */
static void tiny_config(ModelConfig *cfg, int ca_net, GVariant v) {
    model_config_default(cfg);
    cfg->gf_dim = 2;
    cfg->embedding_dim = 6;
    cfg->condition_dim = ca_net ? 5 : 6;
    cfg->z_dim = 3;
    cfg->r_num = 1;
    cfg->ca_net = ca_net;
    cfg->g_variant = v;
}

/* As test_generator.c: weights uniform in +-sqrt(3 / fan_in), BN gammas and running variances in
 * [0.5, 1.5), biases and running means in [-0.2, 0.2). */
static void random_weights(ParamSet *ps, uint64_t seed) {
    for (int i = 0; i < ps->n; i++) {
        ParamEntry *e = ps->entries[i];
        if (e->kind == PARAM_BUFFER_I64) continue;
        const char *dot = strrchr(e->name, '.');
        float lo = -0.2f, hi = 0.2f;
        if (e->t.ndim >= 2) {
            hi = sqrtf(3.0f / (float)tensor_span(&e->t, 1, e->t.ndim));
            lo = -hi;
        } else if (strcmp(dot, ".weight") == 0 || strcmp(dot, ".running_var") == 0) {
            lo = 0.5f;
            hi = 1.5f;
        }
        fill_uniform(e->t.data, e->t.n, lo, hi, seed + (uint64_t)i);
    }
}

/* ---------------------------------------------------------------- (1) config */
static void config_case(void) {
    ModelConfig c;
    model_config_default(&c);
    EXPECT(c.ca_net == 0 && c.z_dim == 100, "defaults: ca_net %d (want 0), z_dim %d (want 100)", c.ca_net, c.z_dim);
    int rc = model_config_from_json(&c, "{\"CA_NET\": true, \"Z_DIM\": 7}");
    EXPECT(rc == 0 && c.ca_net == 1 && c.z_dim == 7, "CA_NET true, Z_DIM 7: rc %d, ca_net %d, z_dim %d", rc, c.ca_net, c.z_dim);
    rc = model_config_from_json(&c, "{\"CA_NET\": 0}");
    EXPECT(rc == 0 && c.ca_net == 0 && c.z_dim == 7, "CA_NET 0: rc %d, ca_net %d, z_dim %d kept", rc, c.ca_net, c.z_dim);
    rc = model_config_from_json(&c, "{\"CA_NET\": 1}");
    EXPECT(rc == 0 && c.ca_net == 1, "CA_NET 1: rc %d, ca_net %d", rc, c.ca_net);
    rc = model_config_from_json(&c, "{\"Z_DIM\": \"many\"}");
    EXPECT(rc == -1 && strstr(err_msg(), "Z_DIM"), "Z_DIM \"many\": rc %d, message '%s'", rc, rc ? err_msg() : "");
    /* found by fuzzing: huge numbers were cast to int (undefined), duplicates silently ignored */
    rc = model_config_from_json(&c, "{\"GF_DIM\": 1e300}");
    EXPECT(rc == -1 && strstr(err_msg(), "GF_DIM") && strstr(err_msg(), "from -2147483648 to 2147483647"),
           "GF_DIM 1e300: rc %d, message '%s'", rc, rc ? err_msg() : "");
    rc = model_config_from_json(&c, "{\"Z_DIM\": 2147483648}");
    EXPECT(rc == -1 && strstr(err_msg(), "Z_DIM"), "Z_DIM 2^31: rc %d, message '%s'", rc, rc ? err_msg() : "");
    rc = model_config_from_json(&c, "{\"G_LR\": 1e300}");
    EXPECT(rc == -1 && strstr(err_msg(), "G_LR") && strstr(err_msg(), "float"), "G_LR 1e300: rc %d, message '%s'", rc,
           rc ? err_msg() : "");
    rc = model_config_from_json(&c, "{\"BETAS\": [0.5, -1e300]}");
    EXPECT(rc == -1 && strstr(err_msg(), "BETAS[1]"), "BETAS -1e300: rc %d, message '%s'", rc, rc ? err_msg() : "");
    rc = model_config_from_json(&c, "{\"Z_DIM\": 5, \"Z_DIM\": 6}");
    EXPECT(rc == -1 && strstr(err_msg(), "duplicate key \"Z_DIM\""), "Z_DIM twice: rc %d, message '%s'", rc, rc ? err_msg() : "");
    EXPECT(c.z_dim == 7, "z_dim kept after the errors: %d", c.z_dim);
}

/* ---------------------------------------------------------------- (2) keys and shapes */
static void key_case(void) {
    for (int dcgan = 0; dcgan <= 1; dcgan++)
        for (int branch = 1; branch <= 3; branch++) {
            ModelConfig on, off;
            GVariant v = dcgan ? G_VARIANT_DCGAN : G_VARIANT_NET;
            tiny_config(&on, 1, v);
            tiny_config(&off, 0, v);
            GNet a, b;
            gnet_init(&a, &on, branch);
            gnet_init(&b, &off, branch);
            const char *what = dcgan ? "G_DCGAN" : "G_NET";
            int ok = EXPECT(a.ps.n == b.ps.n + 2, "%s branch %d with CA_NET: %d entries, want %d + 2", what, branch, a.ps.n, b.ps.n);
            ok = ok && EXPECT(strcmp(a.ps.entries[0]->name, "ca_net.fc.weight") == 0 &&
                                  strcmp(a.ps.entries[1]->name, "ca_net.fc.bias") == 0,
                              "%s branch %d: first keys %s, %s (want ca_net.fc.weight, ca_net.fc.bias)", what, branch,
                              a.ps.entries[0]->name, a.ps.entries[1]->name);
            int bad = -1;
            for (int i = 0; ok && bad < 0 && i < b.ps.n; i++)
                if (strcmp(a.ps.entries[i + 2]->name, b.ps.entries[i]->name) != 0) bad = i;
            if (ok)
                EXPECT(bad < 0, "%s branch %d: key %d is %s, the seed's order has %s", what, branch, bad + 2,
                       bad >= 0 ? a.ps.entries[bad + 2]->name : "", bad >= 0 ? b.ps.entries[bad]->name : "");
            EXPECT(SHAPE_IS(param(&a, "ca_net.fc.weight"), 20, 6) && SHAPE_IS(param(&a, "ca_net.fc.bias"), 20) &&
                       SHAPE_IS(param(&a, "h_net1.fc.0.weight"), 32 * 32, 5 + 3) &&
                       SHAPE_IS(param(&b, "h_net1.fc.0.weight"), 32 * 32, 6),
                   "%s branch %d: ca_net.fc (4C, E) = (20, 6), h_net1.fc.0 (ngf*32, C+Z) = (1024, 8)", what, branch);
            EXPECT(param(&a, "ca_net.fc.weight")->requires_grad && param(&a, "ca_net.fc.bias")->requires_grad,
                   "%s: CA_NET weights are trainable", what);
            gnet_free(&a);
            gnet_free(&b);
        }
}

static void tiny_inputs(Tensor **sent, Tensor **words, uint8_t *mask, int E) {
    const int B = 3, L = 5, lens[3] = {5, 4, 3};
    *sent = tensor_alloc(2, (int[]){B, E}, 1);
    *words = tensor_alloc(3, (int[]){B, 6, L}, 1);
    fill_uniform((*sent)->data, (*sent)->n, -1, 1, 11);
    fill_uniform((*words)->data, (*words)->n, -1, 1, 12);
    (*sent)->name = "sent_emb";
    (*words)->name = "words_emb";
    for (int b = 0; b < B; b++)
        for (int t = 0; t < L; t++) mask[b * L + t] = t >= lens[b];
}

static void shape_case(void) {
    for (int dcgan = 0; dcgan <= 1; dcgan++) {
        ModelConfig cfg;
        tiny_config(&cfg, 1, dcgan ? G_VARIANT_DCGAN : G_VARIANT_NET);
        GNet g;
        gnet_init(&g, &cfg, 2);
        random_weights(&g.ps, 30);
        Tensor *sent, *words;
        uint8_t mask[15];
        tiny_inputs(&sent, &words, mask, 6);
        Rng rng;
        rng_init(&rng, 3);
        Tape tp;
        tape_init(&tp);
        GNetOut o = gnet_forward_noise(&tp, &g, sent, words, mask, NULL, NULL, &rng);
        char s1[64], s2[64];
        const char *what = dcgan ? "G_DCGAN" : "G_NET";
        EXPECT(SHAPE_IS(o.mu, 3, 5) && SHAPE_IS(o.logvar, 3, 5), "%s: mu %s, logvar %s, want (3, 5)", what,
               o.mu ? tensor_shape_str(o.mu, s1, sizeof s1) : "NULL", o.logvar ? tensor_shape_str(o.logvar, s2, sizeof s2) : "NULL");
        if (dcgan)
            EXPECT(o.n_imgs == 1 && SHAPE_IS(o.imgs[0], 3, 3, 128, 128) && o.n_att == 1, "G_DCGAN: one (3, 3, 128, 128) image");
        else
            EXPECT(o.n_imgs == 2 && SHAPE_IS(o.imgs[0], 3, 3, 64, 64) && SHAPE_IS(o.imgs[1], 3, 3, 128, 128) && o.n_att == 1 &&
                       SHAPE_IS(o.att[0], 3, 5, 64, 64),
                   "G_NET: images (3, 3, 64, 64), (3, 3, 128, 128), att (3, 5, 64, 64)");
        EXPECT(rng.offset == (uint64_t)3 * (3 + 5), "%s: the forward drew B * (Z + C) = 24 normals (offset %llu)", what,
               (unsigned long long)rng.offset);
        tape_free(&tp);
        tensor_free(sent);
        tensor_free(words);
        gnet_free(&g);
    }
}

/* ---------------------------------------------------------------- (3) PyTorch */
static double close_to(SafeTensors *st, const char *key, const float *got, int64_t n, double tol, const char *what) {
    Tensor *want = fixture_tensor(st, key, 0);
    double r = 1e30;
    if (EXPECT(want->n == n, "%s: %lld elements, fixture %s has %lld", what, (long long)n, key, (long long)want->n)) {
        r = rel_err(got, want->data, n, NULL);
        char w[256];
        snprintf(w, sizeof w, "%s (%s)", what, key);
        expect_close(w, got, want->data, n, tol);
    }
    tensor_free(want);
    return r;
}

static void fixture_config(ModelConfig *cfg) {
    model_config_default(cfg);
    cfg->embedding_dim = 8;
    cfg->condition_dim = 8;
    cfg->z_dim = 4;
    cfg->gf_dim = 1;
    cfg->ca_net = 1;
}

static void pytorch_case(void) {
    SafeTensors *st = fixture_open("ca_net");
    if (!st) return;
    ModelConfig cfg;
    fixture_config(&cfg);
    GNet g;
    gnet_init(&g, &cfg, 1);
    int rc = nn_load(&g.ps, st, "param.", LOAD_IGNORE_UNEXPECTED, NULL);
    EXPECT(rc == 0, "nn_load param.*: %s", rc ? err_msg() : "");
    g.train = 1;
    paramset_zero_grad(&g.ps);
    Tensor *sent = fixture_tensor(st, "in.sent_emb", 1), *z = fixture_tensor(st, "in.z", 0), *eps = fixture_tensor(st, "in.eps", 0);
    Tape tp;
    tape_init(&tp);
    GNetOut o = gnet_forward_noise(&tp, &g, sent, NULL, NULL, z, eps, NULL);
    Tensor *kl = gnet_kl_loss(&tp, o.mu, o.logvar);
    double worst = 0;
    worst = fmax(worst, close_to(st, "out.img", o.imgs[0]->data, o.imgs[0]->n, FWD_TOL, "64px image"));
    worst = fmax(worst, close_to(st, "out.mu", o.mu->data, o.mu->n, FWD_TOL, "mu"));
    worst = fmax(worst, close_to(st, "out.logvar", o.logvar->data, o.logvar->n, FWD_TOL, "logvar"));
    worst = fmax(worst, close_to(st, "out.kl", kl->data, 1, FWD_TOL, "KL"));
    EXPECT(kl->ndim == 0, "KL is 0-d (ndim %d)", kl->ndim);
    /* BN running statistics after the train-mode forward */
    char k[256];
    int n_stats = 0;
    for (int i = 0; i < g.ps.n; i++) {
        ParamEntry *e = g.ps.entries[i];
        snprintf(k, sizeof k, "after.%s", e->name);
        if (e->kind == PARAM_BUFFER_I64) {
            int64_t want;
            if (st_read_i64(st, k, &want, 1)) FAIL("%s", err_msg());
            EXPECT(e->ival == want, "%s: %lld, want %lld", e->name, (long long)e->ival, (long long)want);
            n_stats++;
        } else if (e->kind == PARAM_BUFFER) {
            worst = fmax(worst, close_to(st, k, e->t.data, e->t.n, FWD_TOL, e->name));
            n_stats++;
        }
    }
    printf("  PyTorch forward: image, mu, logvar, KL %.7g and %d BN buffers, worst rel err %.3g\n", kl->data[0], n_stats, worst);
    /* backward of sum(img * gout) + KL, gout[i] = sin(0.37 i + 0.1) */
    float *gout = xmalloc((size_t)o.imgs[0]->n * sizeof(float));
    for (int64_t i = 0; i < o.imgs[0]->n; i++) gout[i] = (float)sin(0.37 * (double)i + 0.1);
    const float one = 1.0f;
    Tensor *outs[2] = {o.imgs[0], kl};
    const float *seeds[2] = {gout, &one};
    tape_backward_seeded(&tp, 2, outs, seeds);
    double gw = close_to(st, "grad.sent_emb", sent->grad, sent->n, GRAD_TOL, "d sent_emb");
    const char *gw_name = "sent_emb";
    int n_grads = 1;
    for (int i = 0; i < g.ps.n; i++) {
        ParamEntry *e = g.ps.entries[i];
        if (e->kind != PARAM_WEIGHT) continue;
        snprintf(k, sizeof k, "grad.%s", e->name);
        double r = close_to(st, k, e->t.grad, e->t.n, GRAD_TOL, k);
        if (r > gw) { gw = r; gw_name = e->name; }
        n_grads++;
    }
    printf("  PyTorch backward: %d gradients, worst rel err %.3g (%s)\n", n_grads, gw, gw_name);
    free(gout);
    /* the KL term alone: gradients w.r.t. sent_emb and CA_NET */
    tape_reset(&tp);
    paramset_zero_grad(&g.ps);
    memset(sent->grad, 0, (size_t)sent->n * sizeof(float));
    g.train = 0; /* (mu, logvar do not depend on BN) */
    o = gnet_forward_noise(&tp, &g, sent, NULL, NULL, z, eps, NULL);
    kl = gnet_kl_loss(&tp, o.mu, o.logvar);
    tape_backward(&tp, kl);
    double r1 = close_to(st, "kl_grad.sent_emb", sent->grad, sent->n, GRAD_TOL, "KL: d sent_emb");
    double r2 = close_to(st, "kl_grad.ca_net.fc.weight", param(&g, "ca_net.fc.weight")->grad,
                         param(&g, "ca_net.fc.weight")->n, GRAD_TOL, "KL: d ca_net.fc.weight");
    double r3 = close_to(st, "kl_grad.ca_net.fc.bias", param(&g, "ca_net.fc.bias")->grad,
                         param(&g, "ca_net.fc.bias")->n, GRAD_TOL, "KL: d ca_net.fc.bias");
    const float *hw = param(&g, "h_net1.fc.0.weight")->grad;
    double h_abs = 0;
    for (int64_t i = 0; i < param(&g, "h_net1.fc.0.weight")->n; i++) h_abs += fabs(hw[i]);
    EXPECT(h_abs == 0, "KL alone gives h_net1 no gradient (sum |g| %.3g)", h_abs);
    printf("  KL term alone: gradients rel err %.3g, %.3g, %.3g\n", r1, r2, r3);
    tape_free(&tp);
    tensor_free(sent);
    tensor_free(z);
    tensor_free(eps);
    gnet_free(&g);
    fixture_close(st);
}

/* ---------------------------------------------------------------- (4) gradchecks */
static Tensor *fwd_kl(Tape *tp, Tensor **in, void *ctx) { return gnet_kl_loss(tp, in[0], in[1]); }

static void kl_gradcheck_case(void) {
    Tensor *mu = tensor_alloc(2, (int[]){3, 5}, 1), *lv = tensor_alloc(2, (int[]){3, 5}, 1);
    fill_uniform(mu->data, mu->n, -1.5f, 1.5f, 41);
    fill_uniform(lv->data, lv->n, -2.0f, 1.0f, 42);
    mu->name = "mu";
    lv->name = "logvar";
    /* value against the formula in double */
    Tape tp;
    tape_init(&tp);
    Tensor *kl = gnet_kl_loss(&tp, mu, lv);
    double s = 0;
    for (int i = 0; i < 15; i++) s += 1 + (double)lv->data[i] - (double)mu->data[i] * mu->data[i] - exp(lv->data[i]);
    double want = -0.5 * s / 15;
    EXPECT(fabs(kl->data[0] - want) <= 1e-6 * fabs(want), "KL %.9g, formula %.9g", kl->data[0], want);
    tape_free(&tp);
    Tensor *in[2] = {mu, lv};
    GradcheckOpts opts = {.h = 1e-3, .tol = 1e-3, .max_elems = -1, .seed = 9};
    gradcheck("KL_loss", fwd_kl, 2, in, NULL, &opts);
    tensor_free(mu);
    tensor_free(lv);
}

typedef struct CaCtx {
    GNet *g;
    const Tensor *z, *eps;
} CaCtx;

/* cat(flat image, mu, logvar, KL): (B * 3 * 64 * 64 + 2 * B * C + 1) */
static Tensor *fwd_ca(Tape *tp, Tensor **in, void *vctx) {
    CaCtx *c = vctx;
    GNetOut o = gnet_forward_noise(tp, c->g, in[0], NULL, NULL, c->z, c->eps, NULL);
    Tensor *kl = OP_RESHAPE(tp, gnet_kl_loss(tp, o.mu, o.logvar), 1);
    Tensor *parts[4] = {OP_RESHAPE(tp, o.imgs[0], -1), OP_RESHAPE(tp, o.mu, -1), OP_RESHAPE(tp, o.logvar, -1), kl};
    return op_concat(tp, 4, parts, 0);
}

static void ca_gradcheck_case(void) {
    ModelConfig cfg;
    tiny_config(&cfg, 1, G_VARIANT_NET);
    GNet g;
    gnet_init(&g, &cfg, 1);
    random_weights(&g.ps, 50);
    g.train = 0;
    Tensor *sent = tensor_alloc(2, (int[]){3, 6}, 1), *z = tensor_alloc(2, (int[]){3, 3}, 0), *eps = tensor_alloc(2, (int[]){3, 5}, 0);
    fill_uniform(sent->data, sent->n, -1, 1, 51);
    sent->name = "sent_emb";
    Rng r;
    rng_init(&r, 52);
    rng_normal(&r, z->data, z->n, 0, 1);
    rng_normal(&r, eps->data, eps->n, 0, 1);
    CaCtx c = {&g, z, eps};
    Tensor *in[4] = {sent, param(&g, "ca_net.fc.weight"), param(&g, "ca_net.fc.bias"), param(&g, "h_net1.fc.0.weight")};
    GradcheckOpts opts = {.h = 1e-2, .tol = 1e-2, .max_elems = 12, .seed = 53, .move_sets = {&c.g->ps},
                          .move_tensors = {(Tensor *)c.z, (Tensor *)c.eps}};
    gradcheck("CA_NET through a 1-stage G (eval) + KL", fwd_ca, 4, in, &c, &opts);
    tensor_free(sent);
    tensor_free(z);
    tensor_free(eps);
    gnet_free(&g);
}

/* ---------------------------------------------------------------- (5) noise, determinism, errors */
static int bits_equal(const Tensor *a, const Tensor *b) {
    return a && b && a->n == b->n && memcmp(a->data, b->data, (size_t)a->n * sizeof(float)) == 0;
}

static void rng_case(void) {
    ModelConfig cfg;
    tiny_config(&cfg, 1, G_VARIANT_NET);
    GNet g;
    gnet_init(&g, &cfg, 2);
    random_weights(&g.ps, 60);
    g.train = 0;
    Tensor *sent, *words;
    uint8_t mask[15];
    tiny_inputs(&sent, &words, mask, 6);
    Tape t1, t2, t3, t4;
    tape_init(&t1);
    tape_init(&t2);
    tape_init(&t3);
    tape_init(&t4);
    Rng r1, r2, r3, r4;
    rng_init(&r1, 77);
    rng_init(&r2, 77);
    rng_init(&r3, 78);
    GNetOut a = gnet_forward_noise(&t1, &g, sent, words, mask, NULL, NULL, &r1);
    GNetOut b = gnet_forward_noise(&t2, &g, sent, words, mask, NULL, NULL, &r2);
    GNetOut c = gnet_forward_noise(&t3, &g, sent, words, mask, NULL, NULL, &r3);
    EXPECT(bits_equal(a.imgs[1], b.imgs[1]) && bits_equal(a.imgs[0], b.imgs[0]) && bits_equal(a.mu, b.mu),
           "the same Rng seed gives bit-identical images");
    EXPECT(!bits_equal(a.imgs[0], c.imgs[0]) && rel_err(a.imgs[0]->data, c.imgs[0]->data, a.imgs[0]->n, NULL) > 1e-3,
           "another seed gives other images");
    EXPECT(bits_equal(a.mu, c.mu) && bits_equal(a.logvar, c.logvar), "mu and logvar do not depend on the noise");
    /* z is drawn first (B x Z), then eps (B x C) */
    rng_init(&r4, 77);
    Tensor *z = tensor_alloc(2, (int[]){3, 3}, 0), *eps = tensor_alloc(2, (int[]){3, 5}, 0);
    rng_normal(&r4, z->data, z->n, 0, 1);
    rng_normal(&r4, eps->data, eps->n, 0, 1);
    GNetOut d = gnet_forward_noise(&t4, &g, sent, words, mask, z, eps, NULL);
    EXPECT(bits_equal(a.imgs[1], d.imgs[1]), "drawing from Rng 77 equals z = its first 9 normals, eps = the next 15");
    EXPECT(r1.offset == r4.offset, "Rng offsets %llu and %llu", (unsigned long long)r1.offset, (unsigned long long)r4.offset);
    /* only one of z / eps given: the other is drawn */
    tape_reset(&t4);
    rng_init(&r4, 77);
    float skip[9];
    rng_normal(&r4, skip, 9, 0, 1); /* the stream then stands where eps starts when z is drawn too */
    GNetOut e = gnet_forward_noise(&t4, &g, sent, words, mask, z, NULL, &r4);
    EXPECT(bits_equal(a.imgs[1], e.imgs[1]), "given z, eps drawn from the Rng");
    tape_free(&t1);
    tape_free(&t2);
    tape_free(&t3);
    tape_free(&t4);
    tensor_free(z);
    tensor_free(eps);
    gnet_free(&g);

    /* the seed's model: gnet_forward_noise ignores z, eps, rng (draws nothing), equals gnet_forward */
    tiny_config(&cfg, 0, G_VARIANT_NET);
    gnet_init(&g, &cfg, 2);
    random_weights(&g.ps, 61);
    g.train = 1;
    Tape s1, s2;
    tape_init(&s1);
    tape_init(&s2);
    ParamSet ps0;
    paramset_init(&ps0, "copy");
    for (int i = 0; i < g.ps.n; i++) {
        const ParamEntry *pe = g.ps.entries[i];
        if (pe->kind == PARAM_BUFFER_I64) paramset_add_i64(&ps0, pe->name);
        else paramset_add(&ps0, pe->name, pe->kind, pe->t.ndim, pe->t.shape);
    }
    paramset_finalize(&ps0);
    paramset_copy(&ps0, &g.ps);
    GNetOut f = gnet_forward(&s1, &g, sent, words, mask);
    paramset_copy(&g.ps, &ps0); /* undo the running-stat update */
    rng_init(&r1, 5);
    GNetOut h = gnet_forward_noise(&s2, &g, sent, words, mask, NULL, NULL, &r1);
    EXPECT(bits_equal(f.imgs[0], h.imgs[0]) && bits_equal(f.imgs[1], h.imgs[1]) && bits_equal(f.att[0], h.att[0]),
           "the seed's model: gnet_forward_noise is bit-identical to gnet_forward");
    EXPECT(r1.offset == 0 && !f.mu && !f.logvar && !h.mu && !h.logvar,
           "the seed's model draws nothing (offset %llu) and has no mu/logvar", (unsigned long long)r1.offset);
    paramset_free(&ps0);
    tape_free(&s1);
    tape_free(&s2);
    tensor_free(sent);
    tensor_free(words);
    gnet_free(&g);
}

static void abort_gnet_forward(void) {
    ModelConfig cfg;
    tiny_config(&cfg, 1, G_VARIANT_NET);
    GNet g;
    gnet_init(&g, &cfg, 1);
    Tensor *sent = tensor_alloc(2, (int[]){2, 6}, 0);
    Tape tp;
    tape_init(&tp);
    gnet_forward(&tp, &g, sent, NULL, NULL);
}

static void abort_null_rng(void) {
    ModelConfig cfg;
    tiny_config(&cfg, 1, G_VARIANT_NET);
    GNet g;
    gnet_init(&g, &cfg, 1);
    Tensor *sent = tensor_alloc(2, (int[]){2, 6}, 0), *z = tensor_alloc(2, (int[]){2, 3}, 0);
    Tape tp;
    tape_init(&tp);
    gnet_forward_noise(&tp, &g, sent, NULL, NULL, z, NULL, NULL); /* eps missing */
}

static void abort_bad_z(void) {
    ModelConfig cfg;
    tiny_config(&cfg, 1, G_VARIANT_NET);
    GNet g;
    gnet_init(&g, &cfg, 1);
    Tensor *sent = tensor_alloc(2, (int[]){2, 6}, 0), *z = tensor_alloc(2, (int[]){2, 4}, 0);
    Tape tp;
    tape_init(&tp);
    gnet_forward_noise(&tp, &g, sent, NULL, NULL, z, NULL, NULL);
}

static void error_case(void) {
    expect_death("gnet_forward with CA_NET", abort_gnet_forward, "gnet_forward_noise");
    expect_death("gnet_forward_noise, CA_NET, eps NULL and no Rng", abort_null_rng, "eps is NULL: it needs an Rng");
    expect_death("gnet_forward_noise, z of the wrong size", abort_bad_z, "z (2, 4), expected (2, 3)");
}

/* ---------------------------------------------------------------- (6) gan_step with CA_NET */
static Tensor *dump_t(SafeTensors *st, Tape *tp, const char *key) {
    Tensor *h = fixture_tensor(st, key, 0);
    Tensor *t = tape_new(tp, h->ndim, h->shape);
    memcpy(t->data, h->data, (size_t)h->n * sizeof(float));
    tensor_free(h);
    return t;
}

static void load(ParamSet *ps, SafeTensors *st, const char *net) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "param.%s.", net);
    if (nn_load(ps, st, prefix, 0, NULL)) FAIL("%s", err_msg());
}

static void gan_step_case(const char *name) {
    SafeTensors *st = dump_open(name);
    if (!st || !dump_file("trunk.safetensors")) { fixture_close(st); if (st) test_skip("no trunk file"); return; }
    ModelConfig cfg;
    dump_config(st, &cfg);
    cfg.ca_net = 1;
    cfg.z_dim = 5;
    int branch = cfg.branch_num;
    TextEncoder te;
    ImageEncoder ie;
    ZslD zd;
    GNet g;
    DNet d[3], *dp[3];
    text_encoder_init(&te, &cfg);
    image_encoder_init(&ie, &cfg);
    zsl_d_init(&zd, &cfg);
    gnet_init(&g, &cfg, branch);
    random_weights(&g.ps, 70);
    load(&te.ps, st, "text_encoder");
    SafeTensors tr;
    if (st_open(&tr, dump_file("trunk.safetensors"))) FAIL("%s", err_msg());
    if (nn_load(&ie.ps, &tr, "", LOAD_PARTIAL | LOAD_IGNORE_UNEXPECTED, NULL)) FAIL("%s", err_msg());
    st_close(&tr);
    if (nn_load(&ie.ps, st, "param.image_encoder.", LOAD_PARTIAL, NULL)) FAIL("%s", err_msg());
    load(&zd.ps, st, "zsl_d");
    char k[64];
    for (int i = 0; i < branch; i++) {
        snprintf(k, sizeof k, "netD%d", i);
        dnet_init(&d[i], &cfg, 64 << i, k);
        load(&d[i].ps, st, k);
        dp[i] = &d[i];
    }
    GanTrainer t;
    gan_trainer_init(&t, &te, &ie, &zd, &g, dp, &cfg);
    t.keep_grads = 1; /* the checks below read G's gradients after gan_step */
    EXPECT(paramset_find(&t.ema_g, "ca_net.fc.weight") && paramset_find(&t.ema_g, "ca_net.fc.bias"), "EMA copy of G has CA_NET");
    int64_t nc, nb;
    int64_t *caps = fixture_i64(st, "batch.captions", &nc), *l = fixture_i64(st, "batch.cap_lens", &nb);
    int64_t *cls = fixture_i64(st, "batch.class_ids", NULL);
    int lens[64];
    CHECK(nb <= 64, "batch %lld", (long long)nb);
    for (int i = 0; i < nb; i++) lens[i] = (int)l[i];
    Tape io;
    tape_init(&io);
    GanBatch b = {{NULL, NULL, NULL}, caps, lens, cls, (int)nb};
    for (int i = 0; i < branch; i++) {
        snprintf(k, sizeof k, "batch.imgs%d", i);
        b.imgs[i] = dump_t(st, &io, k);
    }
    Tensor *w0 = tensor_alloc(2, (int[]){4 * cfg.condition_dim, cfg.embedding_dim}, 0);
    memcpy(w0->data, param(&g, "ca_net.fc.weight")->data, (size_t)w0->n * sizeof(float));
    Rng rng;
    rng_init(&rng, 11);
    GanStepOut o;
    gan_step(&t, &b, dump_t(st, &io, "noise.zsl_z.0"), &rng, &o);
    int B = (int)nb, C = cfg.condition_dim;
    EXPECT(SHAPE_IS(o.gen.mu, B, C) && SHAPE_IS(o.gen.logvar, B, C) && t.mu == o.gen.mu && t.logvar == o.gen.logvar,
           "%s: G's mu/logvar (B, C) kept in the trainer", name);
    EXPECT(rng.offset == (uint64_t)B * (cfg.z_dim + C), "%s: G drew B * (Z + C) normals from the step's Rng (offset %llu)", name,
           (unsigned long long)rng.offset);
    if (EXPECT(o.g.kl != NULL, "%s: GanGLoss.kl is set with CA_NET", name)) {
        double s = 0;
        for (int i = 0; i < B * C; i++) {
            double m = o.gen.mu->data[i], lv = o.gen.logvar->data[i];
            s += 1 + lv - m * m - exp(lv);
        }
        double want = -0.5 * s / (B * C);
        EXPECT(fabs(o.g.kl->data[0] - want) <= 1e-5 * fabs(want) + 1e-7, "%s: kl %.9g, formula %.9g", name, o.g.kl->data[0], want);
        /* errG_total = (the seed's sum, in its order) + kl */
        float gsum = o.g.g_loss[0]->data[0];
        for (int i = 1; i < t.n_d; i++) gsum = gsum + o.g.g_loss[i]->data[0];
        float rhs = (o.g.w_loss->data[0] + o.g.s_loss->data[0]) + cfg.lambda_zsl * (o.g.adv->data[0] + o.g.cls->data[0]);
        float want_total = (gsum + rhs) + o.g.kl->data[0];
        EXPECT(fabsf(o.g.total->data[0] - want_total) <= 1e-6f * fabsf(want_total), "%s: errG_total %.9g = seed sum + KL = %.9g",
               name, o.g.total->data[0], want_total);
        printf("  %s with CA_NET: errG_total %.7g, KL %.7g\n", name, o.g.total->data[0], o.g.kl->data[0]);
    }
    Tensor *gw = param(&g, "ca_net.fc.weight");
    double gabs = 0, moved = 0;
    for (int64_t i = 0; i < gw->n; i++) {
        gabs += fabs(gw->grad[i]);
        moved += fabs(gw->data[i] - w0->data[i]);
        CHECK(isfinite(gw->grad[i]), "non-finite gradient");
    }
    EXPECT(gabs > 0 && moved > 0, "%s: ca_net.fc.weight gets a gradient (sum |g| %.3g) and an Adam step (moved %.3g)", name, gabs, moved);
    /* the next step draws other noise and runs */
    gan_step(&t, &b, NULL, &rng, &o);
    EXPECT(isfinite(o.g.total->data[0]) && o.g.kl && isfinite(o.g.kl->data[0]), "%s: second step finite", name);
    gan_trainer_free(&t);
    tape_free(&io);
    tensor_free(w0);
    free(caps);
    free(l);
    free(cls);
    text_encoder_free(&te);
    image_encoder_free(&ie);
    zsl_d_free(&zd);
    gnet_free(&g);
    for (int i = 0; i < branch; i++) dnet_free(&d[i]);
    fixture_close(st);
}

int main(void) {
    test_begin("test_ca_net");
    config_case();
    key_case();
    shape_case();
    pytorch_case();
    kl_gradcheck_case();
    ca_gradcheck_case();
    rng_case();
    error_case();
    gan_step_case("gan_b1_small");
    return test_end();
}
