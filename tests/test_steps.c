/* test_steps.c: the two whole training iterations (damsm_step, gan_step) as the training programs
 * call them, end to end on the reference dumps. `attngan parity` checks every tensor stage by
 * stage; this checks that the composed steps give the same losses and updated weights (loosely:
 * Adam's first step is ~ -lr * sign(g), so elements whose gradient is noise may move the other
 * way), and that a second iteration runs. */
#include "test.h"
#include "../src/nn/load.h"
#include "../src/train/damsm_step.h"
#include "../src/train/gan_step.h"

#include <string.h>

static Tensor *dump_t(SafeTensors *st, Tape *tp, const char *key) {
    Tensor *h = fixture_tensor(st, key, 0);
    Tensor *t = tape_new(tp, h->ndim, h->shape);
    memcpy(t->data, h->data, (size_t)h->n * sizeof(float));
    tensor_free(h);
    return t;
}

static float scalar(SafeTensors *st, const char *key) { return fixture_scalar(st, key); }

static void load(ParamSet *ps, SafeTensors *st, const char *net) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "param.%s.", net);
    if (nn_load(ps, st, prefix, 0, NULL)) FAIL("%s", err_msg());
}

static void load_trunk(ImageEncoder *ie, SafeTensors *st) {
    const char *trunk = dump_file("trunk.safetensors");
    CHECK(trunk, "trunk file missing next to the dumps");
    SafeTensors tr;
    if (st_open(&tr, trunk)) FAIL("%s", err_msg());
    if (nn_load(&ie->ps, &tr, "", LOAD_PARTIAL | LOAD_IGNORE_UNEXPECTED, NULL)) FAIL("%s", err_msg());
    st_close(&tr);
    if (nn_load(&ie->ps, st, "param.image_encoder.", LOAD_PARTIAL, NULL)) FAIL("%s", err_msg());
    if (nn_load_check_complete(&ie->ps, "test")) FAIL("%s", err_msg());
}

/* Norm-relative distance of every weight of ps to after.<net>.* (or param.* when unchanged). */
static double prefixed_err(const ParamSet *ps, SafeTensors *st, const char *net, const char *prefix) {
    double num = 0, den = 0;
    char k[512];
    for (int i = 0; i < ps->n; i++) {
        const ParamEntry *e = ps->entries[i];
        if (e->kind != PARAM_WEIGHT) continue;
        snprintf(k, sizeof k, "%s.%s.%s", prefix, net, e->name);
        if (!st_find(st, k)) snprintf(k, sizeof k, "param.%s.%s", net, e->name);
        if (!st_find(st, k)) continue;
        Tensor *w = fixture_tensor(st, k, 0);
        for (int64_t j = 0; j < w->n; j++) {
            double d = (double)e->t.data[j] - w->data[j];
            num += d * d;
            den += (double)w->data[j] * w->data[j];
        }
        tensor_free(w);
    }
    return sqrt(num) / fmax(sqrt(den), 1e-30);
}

static double after_err(const ParamSet *ps, SafeTensors *st, const char *net) { return prefixed_err(ps, st, net, "after"); }

typedef struct { int64_t *captions, *class_ids; int *lens; int B; } Caps;

static void read_caps(SafeTensors *st, Caps *c) {
    int64_t n, nb;
    c->captions = fixture_i64(st, "batch.captions", &n);
    int64_t *l = fixture_i64(st, "batch.cap_lens", &nb);
    c->class_ids = fixture_i64(st, "batch.class_ids", NULL);
    c->B = (int)nb;
    c->lens = xmalloc((size_t)nb * sizeof(int));
    for (int i = 0; i < c->B; i++) c->lens[i] = (int)l[i];
    free(l);
}

static void free_caps(Caps *c) {
    free(c->captions);
    free(c->class_ids);
    free(c->lens);
}

static void test_damsm(const char *name) {
    SafeTensors *st = dump_open(name);
    if (!st || !dump_file("trunk.safetensors")) { fixture_close(st); if (st) test_skip("no trunk file"); return; }
    ModelConfig cfg;
    dump_config(st, &cfg);
    TextEncoder te;
    ImageEncoder ie;
    ZslD zd;
    text_encoder_init(&te, &cfg);
    image_encoder_init(&ie, &cfg);
    zsl_d_init(&zd, &cfg);
    load(&te.ps, st, "text_encoder");
    load_trunk(&ie, st);
    load(&zd.ps, st, "zsl_d");
    DamsmTrainer t;
    damsm_trainer_init(&t, &te, &ie, &zd, &cfg);
    Caps c;
    read_caps(st, &c);
    Tape io;
    tape_init(&io);
    DamsmBatch b = {dump_t(st, &io, "batch.imgs0"), c.captions, c.lens, c.class_ids, c.B};
    DamsmNoise nz = {{dump_t(st, &io, "noise.zsl_z.0"), dump_t(st, &io, "noise.zsl_z.1")}, {NULL, NULL}};
    if (st_find(st, "noise.dropout_mask.0")) {
        nz.drop_mask[0] = dump_t(st, &io, "noise.dropout_mask.0");
        nz.drop_mask[1] = dump_t(st, &io, "noise.dropout_mask.1");
    }
    DamsmPass1 p1;
    DamsmPass2 p2;
    damsm_step(&t, &b, &nz, NULL, &p1, &p2);
    EXPECT(fabsf(p1.loss->data[0] - scalar(st, "out.loss")) <= 1e-4f * fabsf(scalar(st, "out.loss")), "%s: loss %.7g, reference %.7g",
           name, p1.loss->data[0], scalar(st, "out.loss"));
    EXPECT(fabsf(p2.d_loss->data[0] - scalar(st, "out.d_loss")) <= 1e-4f * fabsf(scalar(st, "out.d_loss")),
           "%s: d_loss %.7g, reference %.7g", name, p2.d_loss->data[0], scalar(st, "out.d_loss"));
    EXPECT(fabsf(p1.clip_total_norm - scalar(st, "out.clip_total_norm")) <= 1e-3f * scalar(st, "out.clip_total_norm"),
           "%s: clip norm %.7g, reference %.7g", name, p1.clip_total_norm, scalar(st, "out.clip_total_norm"));
    double e1 = after_err(&te.ps, st, "text_encoder"), e2 = after_err(&ie.ps, st, "image_encoder"), e3 = after_err(&zd.ps, st, "zsl_d");
    EXPECT(e1 < 1e-3 && e2 < 1e-3 && e3 < 1e-3, "%s: weights after the step vs the reference: text %.2e image %.2e zsl_d %.2e", name, e1,
           e2, e3);
    /* a second iteration with noise from an Rng runs and stays finite */
    Rng rng;
    rng_init(&rng, 5);
    damsm_step(&t, &b, NULL, &rng, &p1, &p2);
    EXPECT(isfinite(p1.loss->data[0]) && isfinite(p2.d_loss->data[0]), "%s: second step finite (%g, %g)", name, p1.loss->data[0],
           p2.d_loss->data[0]);
    damsm_trainer_free(&t);
    tape_free(&io);
    text_encoder_free(&te);
    image_encoder_free(&ie);
    zsl_d_free(&zd);
    free_caps(&c);
    fixture_close(st);
}

static void test_gan(const char *name) {
    SafeTensors *st = dump_open(name);
    if (!st || !dump_file("trunk.safetensors")) { fixture_close(st); if (st) test_skip("no trunk file"); return; }
    ModelConfig cfg;
    dump_config(st, &cfg);
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
    load(&te.ps, st, "text_encoder");
    load_trunk(&ie, st);
    load(&zd.ps, st, "zsl_d");
    load(&g.ps, st, "netG");
    char k[64];
    for (int i = 0; i < branch; i++) {
        snprintf(k, sizeof k, "netD%d", i);
        dnet_init(&d[i], &cfg, 64 << i, k);
        load(&d[i].ps, st, k);
        dp[i] = &d[i];
    }
    GanTrainer t;
    gan_trainer_init(&t, &te, &ie, &zd, &g, dp, &cfg);
    Caps c;
    read_caps(st, &c);
    Tape io;
    tape_init(&io);
    GanBatch b = {{NULL, NULL, NULL}, c.captions, c.lens, c.class_ids, c.B};
    for (int i = 0; i < branch; i++) {
        snprintf(k, sizeof k, "batch.imgs%d", i);
        b.imgs[i] = dump_t(st, &io, k);
    }
    GanStepOut o;
    gan_step(&t, &b, dump_t(st, &io, "noise.zsl_z.0"), NULL, &o);
    for (int i = 0; i < branch; i++) {
        snprintf(k, sizeof k, "out.errD%d", i);
        EXPECT(fabsf(o.d[i].loss->data[0] - scalar(st, k)) <= 1e-4f * fabsf(scalar(st, k)), "%s: %s %.7g, reference %.7g", name, k,
               o.d[i].loss->data[0], scalar(st, k));
        snprintf(k, sizeof k, "netD%d", i);
        double e = after_err(&d[i].ps, st, k);
        EXPECT(e < 1e-3, "%s: %s weights after the step: %.2e", name, k, e);
    }
    float ref = scalar(st, "out.errG_total");
    EXPECT(fabsf(o.g.total->data[0] - ref) <= 1e-4f * fabsf(ref), "%s: errG_total %.7g, reference %.7g", name, o.g.total->data[0], ref);
    /* G's weights: Adam's sign noise through the random trunk (DUMP_FORMAT: up to 2 lr per element) */
    double eg = after_err(&g.ps, st, "netG"), ee = prefixed_err(&t.ema_g, st, "netG", "ema");
    EXPECT(eg < 2e-2 && ee < 2e-3, "%s: G weights after the step %.2e, EMA %.2e from the reference", name, eg, ee);
    printf("  %s: G after-step distance %.2e, EMA %.2e\n", name, eg, ee);
    Rng rng;
    rng_init(&rng, 9);
    gan_step(&t, &b, NULL, &rng, &o);
    EXPECT(isfinite(o.g.total->data[0]), "%s: second step finite (%g)", name, o.g.total->data[0]);
    /* EXTRA.DIFFAUGMENT: the step draws three sets per D after G's noise and every D input goes
     * through them; the same D and G losses without the draws differ */
    t.cfg.diffaug = DIFFAUG_COLOR | DIFFAUG_TRANSLATION | DIFFAUG_CUTOUT;
    Rng ra, rb;
    rng_init(&ra, 11);
    rng_init(&rb, 11);
    gan_step(&t, &b, NULL, &ra, &o);
    t.cfg.diffaug = 0;
    gan_step(&t, &b, NULL, &rb, &o);
    EXPECT(ra.offset > rb.offset, "%s: DiffAugment draws from the step's Rng (offset %llu vs %llu)", name, (unsigned long long)ra.offset,
           (unsigned long long)rb.offset);
    t.cfg.diffaug = DIFFAUG_COLOR | DIFFAUG_TRANSLATION | DIFFAUG_CUTOUT;
    rng_init(&ra, 12);
    gan_step(&t, &b, NULL, &ra, &o);
    int all_set = 1;
    for (int i = 0; i < branch; i++)
        for (int q = 0; q < 3; q++) all_set &= t.aug[i][q] != NULL;
    EXPECT(all_set && isfinite(o.g.total->data[0]), "%s: DiffAugment step: draws for every D, finite (%g)", name, o.g.total->data[0]);
    DLossOut d_aug, d_plain;
    Tensor *fake0 = o.gen.imgs[0];
    gan_d_backward(&t, 0, b.imgs[0], fake0, o.txt.sent_emb, &d_aug);
    float la = d_aug.loss->data[0];
    const DiffAugSample *saved[3] = {t.aug[0][0], t.aug[0][1], t.aug[0][2]};
    t.aug[0][0] = t.aug[0][1] = NULL;
    gan_d_backward(&t, 0, b.imgs[0], fake0, o.txt.sent_emb, &d_plain);
    EXPECT(fabsf(la - d_plain.loss->data[0]) > 1e-6f, "%s: D0 sees augmented images (loss %.7g, without %.7g)", name, la,
           d_plain.loss->data[0]);
    t.aug[0][0] = saved[0];
    t.aug[0][1] = saved[1];
    t.cfg.diffaug = 0;
    gan_trainer_free(&t);
    tape_free(&io);
    text_encoder_free(&te);
    image_encoder_free(&ie);
    zsl_d_free(&zd);
    gnet_free(&g);
    for (int i = 0; i < branch; i++) dnet_free(&d[i]);
    free_caps(&c);
    fixture_close(st);
}

int main(void) {
    test_begin("test_steps");
    test_damsm("damsm_small_drop");
    test_gan("gan_b1_small");
    test_gan("gan_b3_small");
    return test_end();
}
