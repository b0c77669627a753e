/* test_discriminator.c: D_NET64/128/256 and discriminator_loss against the PyTorch reference
 * dumps (gan_step), staged as DUMP_FORMAT.md suggests:
 *  (1) the D step from batch.imgs<i>, out.fake_imgs<i>, out.sent_emb: the five head outputs,
 *      errD<i>, and every grad.netD<i>.*;
 *  (2) Adam on those gradients vs the weights in after.netD<i>.*;
 *  (3) the D part of the G step (D after its step, on the fakes): g_cond, g_uncond, g_loss<i>,
 *      then the BN running stats and num_batches_tracked after all D calls of the iteration;
 * plus (4) a finite-difference gradcheck of a tiny D_NET64 and (5) nn_load error messages. */
#include "test.h"
#include "../src/nn/discriminator.h"
#include "../src/nn/load.h"
#include "../src/train/optim.h"

#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- dump helpers */

static Tensor *dump_tensor(SafeTensors *st, const char *fmt, const char *net, const char *what) {
    char k[256];
    snprintf(k, sizeof k, fmt, net, what);
    return fixture_tensor(st, k, 0);
}

/* expected value of entry e after the iteration: after.<net>.<key> if stored, else param.<net>.<key> */
static void read_after_f32(SafeTensors *st, const char *net, const ParamEntry *e, float *dst) {
    char k[256];
    snprintf(k, sizeof k, "after.%s.%s", net, e->name);
    if (!st_find(st, k)) snprintf(k, sizeof k, "param.%s.%s", net, e->name);
    if (st_read_f32(st, k, dst, e->t.n)) FAIL("%s", err_msg());
}

static int64_t read_i64_scalar(SafeTensors *st, const char *stage, const char *net, const char *key) {
    char k[256];
    int64_t v;
    snprintf(k, sizeof k, "%s.%s.%s", stage, net, key);
    if (!st_find(st, k)) snprintf(k, sizeof k, "param.%s.%s", net, key);
    if (st_read_i64(st, k, &v, 1)) FAIL("%s", err_msg());
    return v;
}

/* compares a probability vector or loss with out.<name>, records the rel err in *worst */
static void expect_out(SafeTensors *st, const char *net, const char *name, const Tensor *got, double tol, double *worst) {
    char k[256];
    if (net) snprintf(k, sizeof k, "out.%s.%s", net, name);
    else snprintf(k, sizeof k, "out.%s", name);
    Tensor *want = fixture_tensor(st, k, 0);
    EXPECT(got->n == want->n, "%s: %lld elements, dump has %lld", k, (long long)got->n, (long long)want->n);
    if (got->n == want->n) {
        double r = rel_err(got->data, want->data, want->n, NULL);
        if (r > *worst) *worst = r;
        expect_close(k, got->data, want->data, want->n, tol);
    }
    tensor_free(want);
}

/* ---------------------------------------------------------------- stages */

/* Gradient tolerance per tensor. Most agree to ~1e-6, but a LeakyReLU input that is ~1e-7 from 0
 * may land on the other side of the kink in fp32 (gan_b2_small_cm netD1: one element of
 * img_code_s16.6's BN output on a real image, -3.3e-8 in float64 and +1.8e-7 here), which moves
 * every gradient below it by up to ~1e-3. The median is held to 1e-5. */
#define GRAD_TOL 2e-3

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* (1) the D step: outputs, errD and gradients. Leaves the gradients in d->ps.grads. */
static void check_d_step(SafeTensors *st, DNet *d, const char *net, int i, Tensor *real, Tensor *fake, Tensor *sent) {
    Tape tp;
    tape_init(&tp);
    paramset_zero_grad(&d->ps);
    DLossOut o = discriminator_loss(&tp, d, real, fake, sent);
    double worst = 0;
    expect_out(st, net, "cond_real", o.cond_real, 1e-5, &worst);
    expect_out(st, net, "cond_fake", o.cond_fake, 1e-5, &worst);
    expect_out(st, net, "cond_wrong", o.cond_wrong, 1e-5, &worst);
    expect_out(st, net, "uncond_real", o.uncond_real, 1e-5, &worst);
    expect_out(st, net, "uncond_fake", o.uncond_fake, 1e-5, &worst);
    char k[64];
    snprintf(k, sizeof k, "errD%d", i);
    double werr = 0;
    expect_out(st, NULL, k, o.loss, 1e-5, &werr);
    tape_backward(&tp, o.loss);
    double gworst = 0, *rels = xmalloc((size_t)d->ps.n * sizeof(double));
    int nrel = 0;
    const char *gkey = "";
    for (int j = 0; j < d->ps.n; j++) {
        ParamEntry *e = d->ps.entries[j];
        if (e->kind != PARAM_WEIGHT) continue;
        Tensor *g = dump_tensor(st, "grad.%s.%s", net, e->name);
        snprintf(k, sizeof k, "grad.%s.%s", net, e->name);
        double r = rel_err(e->t.grad, g->data, g->n, NULL);
        rels[nrel++] = r;
        if (r > gworst) { gworst = r; gkey = e->name; }
        expect_close(k, e->t.grad, g->data, g->n, GRAD_TOL);
        tensor_free(g);
    }
    qsort(rels, (size_t)nrel, sizeof *rels, cmp_double);
    double median = rels[nrel / 2];
    EXPECT(median <= 1e-5, "%s grads: median rel err %.3g over %d tensors, tolerance 1e-5", net, median, nrel);
    free(rels);
    printf("  %s D step: head outputs rel err <= %.2g, errD rel err %.2g, grads median rel err %.2g, worst %.2g (%s)\n", net,
           worst, werr, median, gworst, gkey);
    tape_free(&tp);
}

/* (2) one Adam step on the gradients of (1) vs after.<net>.* (weights only). Adam's first step
 * is ~ -lr sign(g), so an element whose gradient sign is noise may differ by up to 2 lr. */
static void check_adam(SafeTensors *st, DNet *d, const char *net, const ModelConfig *cfg) {
    Adam a;
    adam_init(&a, &d->ps, cfg->d_lr, cfg->beta1, cfg->beta2, 1e-8f);
    adam_step(&a);
    adam_free(&a);
    double max_abs = 0;
    int64_t n = 0, n_off = 0;
    for (int j = 0; j < d->ps.n; j++) {
        ParamEntry *e = d->ps.entries[j];
        if (e->kind != PARAM_WEIGHT) continue;
        float *want = xmalloc((size_t)e->t.n * sizeof(float));
        read_after_f32(st, net, e, want);
        for (int64_t q = 0; q < e->t.n; q++) {
            double diff = fabs((double)e->t.data[q] - want[q]);
            if (diff > max_abs) max_abs = diff;
            n_off += diff > 1e-3 * cfg->d_lr;
        }
        n += e->t.n;
        free(want);
    }
    printf("  %s Adam: max abs diff %.3g (= %.3g lr), %lld of %lld weights off by more than lr/1000\n", net, max_abs,
           max_abs / cfg->d_lr, (long long)n_off, (long long)n);
    EXPECT(max_abs <= 2.0 * cfg->d_lr * 1.01, "%s Adam: max abs diff %.3g exceeds 2 lr = %.3g", net, max_abs, 2.0 * cfg->d_lr);
    EXPECT(n_off * 1000 <= n, "%s Adam: %lld of %lld weights differ by more than lr/1000 (more than 0.1%%)", net,
           (long long)n_off, (long long)n);
}

/* G-step D part on the fakes: g_cond, g_uncond and g_loss = BCE(g_cond, 1) + BCE(g_uncond, 1). */
static void g_step_d(SafeTensors *st, DNet *d, const char *net, int i, Tensor *fake, Tensor *sent, double tol,
                     const char *label) {
    Tape tp;
    tape_init(&tp);
    tape_no_grad_begin(&tp);
    Tensor *feat = dnet_forward(&tp, d, fake);
    Tensor *pc = dnet_cond(&tp, d, feat, sent), *pu = dnet_uncond(&tp, d, feat);
    Tensor *ones = TNEW(&tp, (int)pc->n);
    for (int64_t q = 0; q < ones->n; q++) ones->data[q] = 1.0f;
    Tensor *g = op_add(&tp, op_bce(&tp, pc, ones), op_bce(&tp, pu, ones));
    tape_no_grad_end(&tp);
    double worst = 0, lerr = 0;
    char k[64];
    snprintf(k, sizeof k, "g_loss%d", i);
    expect_out(st, net, "g_cond", pc, tol, &worst);
    expect_out(st, net, "g_uncond", pu, tol, &worst);
    expect_out(st, NULL, k, g, tol, &lerr);
    printf("  %s G step (%s): g_cond/g_uncond rel err <= %.2g, g_loss rel err %.2g\n", net, label, worst, lerr);
    tape_free(&tp);
}

/* Running stats and num_batches_tracked vs after.<net>.*: trunk BNs +3, COND jointConv BN +4. */
static void check_bn_stats(SafeTensors *st, DNet *d, const char *net) {
    double worst = 0;
    for (int j = 0; j < d->ps.n; j++) {
        ParamEntry *e = d->ps.entries[j];
        if (e->kind == PARAM_BUFFER) {
            float *want = xmalloc((size_t)e->t.n * sizeof(float));
            read_after_f32(st, net, e, want);
            char k[256];
            snprintf(k, sizeof k, "after.%s.%s", net, e->name);
            double r = rel_err(e->t.data, want, e->t.n, NULL);
            if (r > worst) worst = r;
            expect_close(k, e->t.data, want, e->t.n, 1e-5);
            free(want);
        } else if (e->kind == PARAM_BUFFER_I64) {
            int64_t before = read_i64_scalar(st, "param", net, e->name), after = read_i64_scalar(st, "after", net, e->name);
            int64_t inc = strncmp(e->name, "COND_DNET.", 10) == 0 ? 4 : 3;
            EXPECT(after == before + inc, "%s.%s: dump goes %lld -> %lld, expected +%lld", net, e->name, (long long)before,
                   (long long)after, (long long)inc);
            EXPECT(e->ival == after, "%s.%s: num_batches_tracked %lld, dump %lld", net, e->name, (long long)e->ival,
                   (long long)after);
        }
    }
    printf("  %s BN running stats: worst rel err %.2g\n", net, worst);
}

/* Saves / restores every buffer of the set (running stats and num_batches_tracked). */
typedef struct BufSnap {
    float *f;
    int64_t *iv;
} BufSnap;

static BufSnap buf_save(const ParamSet *ps) {
    BufSnap s = {xmalloc((size_t)(ps->n_buffers + 1) * sizeof(float)), xmalloc((size_t)ps->n * sizeof(int64_t))};
    memcpy(s.f, ps->buffers, (size_t)ps->n_buffers * sizeof(float));
    for (int j = 0; j < ps->n; j++) s.iv[j] = ps->entries[j]->ival;
    return s;
}

static void buf_restore(ParamSet *ps, BufSnap s) {
    memcpy(ps->buffers, s.f, (size_t)ps->n_buffers * sizeof(float));
    for (int j = 0; j < ps->n; j++) ps->entries[j]->ival = s.iv[j];
    free(s.f);
    free(s.iv);
}

static void load_after_weights(SafeTensors *st, DNet *d, const char *net) {
    for (int j = 0; j < d->ps.n; j++) {
        ParamEntry *e = d->ps.entries[j];
        if (e->kind == PARAM_WEIGHT) read_after_f32(st, net, e, e->t.data);
    }
}

static void check_one_d(SafeTensors *st, const ModelConfig *cfg, int i, Tensor *sent) {
    char net[16], prefix[32];
    snprintf(net, sizeof net, "netD%d", i);
    snprintf(prefix, sizeof prefix, "param.%s.", net);
    DNet d;
    dnet_init(&d, cfg, 64 << i, net);
    LoadReport rep;
    int rc = nn_load(&d.ps, st, prefix, 0, &rep);
    if (!EXPECT(rc == 0, "%s load: %s", net, rc ? err_msg() : "")) { dnet_free(&d); return; }
    EXPECT(nn_load_check_complete(&d.ps, net) == 0, "%s: every key loaded", net);
    char k[64];
    snprintf(k, sizeof k, "batch.imgs%d", i);
    Tensor *real = fixture_tensor(st, k, 0);                   /* (B, 3, S, S) */
    snprintf(k, sizeof k, "out.fake_imgs%d", i);
    Tensor *fake = fixture_tensor(st, k, 0);                   /* (B, 3, S, S) */
    check_d_step(st, &d, net, i, real, fake, sent);
    check_adam(st, &d, net, cfg);
    /* G step with our own updated weights (loose: they carry Adam's sign noise), then with the
     * dump's updated weights, which also gives the last running-stat update */
    BufSnap snap = buf_save(&d.ps);
    g_step_d(st, &d, net, i, fake, sent, 1e-3, "own Adam weights");
    buf_restore(&d.ps, snap);
    load_after_weights(st, &d, net);
    g_step_d(st, &d, net, i, fake, sent, 1e-5, "after.* weights");
    check_bn_stats(st, &d, net);
    tensor_free(real);
    tensor_free(fake);
    dnet_free(&d);
}

static void check_dump(const char *name) {
    SafeTensors *st = dump_open(name);
    if (!st) return;
    ModelConfig cfg;
    dump_config(st, &cfg);
    int branch = 0;
    while (branch < 3) {
        char k[64];
        snprintf(k, sizeof k, "param.netD%d.img_code_s16.0.weight", branch);
        if (!st_find(st, k)) break;
        branch++;
    }
    printf("%s: %d discriminators, E=%d df=%d\n", name, branch, cfg.embedding_dim, cfg.df_dim);
    EXPECT(branch >= 1, "%s: no netD in the dump", name);
    Tensor *sent = fixture_tensor(st, "out.sent_emb", 0);
    for (int i = 0; i < branch; i++) check_one_d(st, &cfg, i, sent);
    tensor_free(sent);
    st_close(st);
    free(st);
}

/* ---------------------------------------------------------------- (4) gradcheck */

typedef struct TinyCtx {
    DNet *d;
    Tensor *fake;
} TinyCtx;

static Tensor *fwd_tiny(Tape *tp, Tensor **in, void *ctx) {
    TinyCtx *c = ctx;
    return discriminator_loss(tp, c->d, in[0], c->fake, in[1]).loss;
}

static Tensor *fwd_trunk(Tape *tp, Tensor **in, void *ctx) {
    TinyCtx *c = ctx;
    return dnet_forward(tp, c->d, in[0]);
}

static Tensor *fwd_heads(Tape *tp, Tensor **in, void *ctx) {
    TinyCtx *c = ctx;
    Tensor *hs[2] = {dnet_cond(tp, c->d, in[0], in[1]), dnet_uncond(tp, c->d, in[0])};
    return op_concat(tp, 2, hs, 0);
}

/* Finite differences across a LeakyReLU kink are wrong by O(1), and in fp32 through ten layers a
 * step small enough to dodge them drowns in rounding. So the tiny D is set up with few
 * pre-activations near 0 (a few percent stay negative): positive images and mostly positive
 * first-conv weights, BN gains in [0.5, 1] and biases in [1, 2]. */
static void tiny_d_weights(DNet *d) {
    fill_uniform(d->ps.values, d->ps.n_values, -0.5f, 0.5f, 11);
    fill_uniform(paramset_find(&d->ps, "img_code_s16.0.weight")->t.data, 48, -0.1f, 0.5f, 12);
    for (int j = 0; j < d->ps.n; j++) {
        ParamEntry *e = d->ps.entries[j];
        size_t len = strlen(e->name);
        if (len > 13 && strcmp(e->name + len - 13, ".running_mean") == 0) {
            char k[NAME_MAX_LEN];
            snprintf(k, sizeof k, "%.*s.weight", (int)(len - 13), e->name);
            fill_uniform(paramset_find(&d->ps, k)->t.data, e->t.n, 0.5f, 0.8f, 13 + j);
            snprintf(k, sizeof k, "%.*s.bias", (int)(len - 13), e->name);
            fill_uniform(paramset_find(&d->ps, k)->t.data, e->t.n, 1.5f, 2.5f, 14 + j);
        }
    }
}

static void check_gradcheck(void) {
    ModelConfig cfg;
    model_config_default(&cfg);
    cfg.df_dim = 1;
    cfg.embedding_dim = cfg.condition_dim = 2;
    DNet d;
    dnet_init(&d, &cfg, 64, "tinyD");
    tiny_d_weights(&d);
    const int B = 3;
    Tensor *real = tensor_alloc(4, (int[]){B, 3, 64, 64}, 1), *fake = tensor_alloc(4, (int[]){B, 3, 64, 64}, 0);
    Tensor *cond = tensor_alloc(2, (int[]){B, 2}, 1);
    fill_uniform(real->data, real->n, 0, 1, 21);
    fill_uniform(fake->data, fake->n, 0, 1, 22);
    fill_uniform(cond->data, cond->n, -1, 1, 23);
    const char *keys[] = {"img_code_s16.0.weight", "img_code_s16.8.weight", "img_code_s16.9.weight", "img_code_s16.9.bias",
                          "COND_DNET.jointConv.0.weight", "COND_DNET.jointConv.1.weight", "COND_DNET.outlogits.0.bias",
                          "UNCOND_DNET.outlogits.0.weight"};
    enum { NK = sizeof keys / sizeof keys[0] };
    Tensor *in[2 + NK] = {real, cond};
    for (int k = 0; k < NK; k++) {
        ParamEntry *e = paramset_find(&d.ps, keys[k]);
        CHECK(e, "tiny D has no key %s", keys[k]);
        in[2 + k] = &e->t;
    }
    TinyCtx ctx = {&d, fake};
    /* the images and the condition with a larger step (their per-element gradients are small,
     * so a small step drowns in fp32 rounding), then the weights */
    GradcheckOpts o_in = {3e-2, 1e-2, 24, 99, .move_sets = {&d.ps}, .move_tensors = {fake}},
                  o_w = {1e-2, 1e-2, 24, 99, .move_sets = {&d.ps}, .move_tensors = {fake}};
    gradcheck("tiny D_NET64 discriminator_loss (inputs)", fwd_tiny, 2, in, &ctx, &o_in);
    real->requires_grad = cond->requires_grad = false;
    gradcheck("tiny D_NET64 discriminator_loss (weights)", fwd_tiny, 2 + NK, in, &ctx, &o_w);
    real->requires_grad = true;
    gradcheck("tiny D_NET64 trunk (image)", fwd_trunk, 1, in, &ctx, &o_in);
    real->requires_grad = false;
    gradcheck("tiny D_NET64 trunk (weights)", fwd_trunk, 2 + 4, in, &ctx, &o_w); /* keys[0..3]: trunk */
    /* the heads alone on a random image code */
    Tensor *code = tensor_alloc(4, (int[]){B, 8, 4, 4}, 1);
    fill_uniform(code->data, code->n, -1, 1, 24);
    cond->requires_grad = true;
    Tensor *hin[2 + NK];
    memcpy(hin, in, sizeof hin);
    hin[0] = code;
    gradcheck("tiny D_NET64 heads", fwd_heads, 2 + NK, hin, &ctx, &o_w);
    tensor_free(code);
    /* eval mode uses the running stats and leaves them alone */
    d.train = 0;
    int64_t nbt = paramset_find(&d.ps, "img_code_s16.3.num_batches_tracked")->ival;
    Tape tp;
    tape_init(&tp);
    Tensor *h = dnet_forward(&tp, &d, real);
    EXPECT(h->ndim == 4 && h->shape[0] == B && h->shape[1] == 8 && h->shape[2] == 4 && h->shape[3] == 4,
           "tiny D forward: image code shape");
    EXPECT(paramset_find(&d.ps, "img_code_s16.3.num_batches_tracked")->ival == nbt, "eval mode: num_batches_tracked unchanged");
    tape_free(&tp);
    tensor_free(real);
    tensor_free(fake);
    tensor_free(cond);
    dnet_free(&d);
}

/* ---------------------------------------------------------------- (5) loading errors */

/* Writes the tiny D's keys under "x." with `bad_key` given shape (2, 3), loads it back. */
static void check_load_errors(void) {
    ModelConfig cfg;
    model_config_default(&cfg);
    cfg.df_dim = 2;
    cfg.embedding_dim = cfg.condition_dim = 4;
    const char *bad_key = "COND_DNET.jointConv.0.weight";
    for (int size = 64; size <= 256; size *= 2) {
        DNet d;
        dnet_init(&d, &cfg, size, "netD");
        StWriter *w = st_writer_new();
        char key[256], path[256];
        float junk[6] = {0};
        for (int j = 0; j < d.ps.n; j++) {
            ParamEntry *e = d.ps.entries[j];
            snprintf(key, sizeof key, "x.%s", e->name);
            if (strcmp(e->name, bad_key) == 0) {
                st_writer_add_f32(w, key, 2, (int[]){2, 3}, junk);
            } else if (e->kind == PARAM_BUFFER_I64) {
                st_writer_add(w, key, ST_I64, 0, NULL, &e->ival);
            } else {
                st_writer_add_f32(w, key, e->t.ndim, e->t.shape, e->t.data);
            }
        }
        snprintf(path, sizeof path, "/tmp/test_discriminator_%d_%d.safetensors", (int)getpid(), size);
        CHECK(st_writer_write(w, path) == 0, "writing %s: %s", path, err_msg());
        st_writer_free(w);
        SafeTensors st;
        CHECK(st_open(&st, path) == 0, "opening %s: %s", path, err_msg());
        LoadReport rep;
        int rc = nn_load(&d.ps, &st, "x.", 0, &rep);
        EXPECT(rc == -1 && strstr(err_msg(), bad_key) && rep.mis_shaped == 1 && rep.missing == 0 && rep.unexpected == 0,
               "D%d: a mis-shaped %s must be an error naming it (rc %d, message: %s)", size, bad_key, rc, err_msg());
        /* a net of another size reports the trunk keys it lacks or does not know */
        if (size == 64) {
            DNet d2;
            dnet_init(&d2, &cfg, 128, "netD");
            rc = nn_load(&d2.ps, &st, "x.", 0, &rep);
            EXPECT(rc == -1 && strstr(err_msg(), "img_code_s32.0.weight") && rep.missing > 0,
                   "D128 from a D64 file: missing img_code_s32 keys named (message: %s)", err_msg());
            dnet_free(&d2);
        }
        err_clear();
        st_close(&st);
        unlink(path);
        EXPECT(d.ps.n > 0 && strcmp(d.ps.entries[0]->name, "img_code_s16.0.weight") == 0 &&
                   strcmp(d.ps.entries[d.ps.n - 1]->name, "COND_DNET.outlogits.0.bias") == 0,
               "D%d: state_dict order starts at img_code_s16.0.weight and ends at COND_DNET.outlogits.0.bias", size);
        dnet_free(&d);
    }
}

int main(void) {
    test_begin("test_discriminator");
    check_dump("gan_b1_small");
    check_dump("gan_b2_small_cm");
    check_dump("gan_b3_small");
    check_gradcheck();
    check_load_errors();
    return test_end();
}
