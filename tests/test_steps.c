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
    tensor_copy(t, h); /* onto the tape's device */
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
    float *vals = xmalloc((size_t)(ps->n_values ? ps->n_values : 1) * sizeof(float)); /* wherever the set lives */
    device_download(ps->device, vals, ps->values, (size_t)ps->n_values * sizeof(float));
    for (int i = 0; i < ps->n; i++) {
        const ParamEntry *e = ps->entries[i];
        if (e->kind != PARAM_WEIGHT) continue;
        snprintf(k, sizeof k, "%s.%s.%s", prefix, net, e->name);
        if (!st_find(st, k)) snprintf(k, sizeof k, "param.%s.%s", net, e->name);
        if (!st_find(st, k)) continue;
        Tensor *w = fixture_tensor(st, k, 0);
        for (int64_t j = 0; j < w->n; j++) {
            double d = (double)vals[e->offset + j] - w->data[j];
            num += d * d;
            den += (double)w->data[j] * w->data[j];
        }
        tensor_free(w);
    }
    free(vals);
    return sqrt(num) / fmax(sqrt(den), 1e-30);
}

/* ATTNGAN_TEST_DEVICE=cuda|hostdev: the reference comparisons run there (the GPU device check,
 * scripts/device_check_cuda.sh), with the CPU's tolerances. Default: the CPU. */
static int test_device(void) {
    const char *v = getenv("ATTNGAN_TEST_DEVICE");
    DeviceKind d = DEVICE_CPU;
    if (v && *v) CHECK(device_parse(v, &d) == 0, "ATTNGAN_TEST_DEVICE=%s: expected cpu, hostdev or cuda", v);
    return d;
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
    int dev = test_device();
    damsm_trainer_to_device(&t, dev);
    Caps c;
    read_caps(st, &c);
    Tape io;
    tape_init_on(&io, dev);
    DamsmBatch b = {dump_t(st, &io, "batch.imgs0"), c.captions, c.lens, c.class_ids, c.B};
    DamsmNoise nz = {{dump_t(st, &io, "noise.zsl_z.0"), dump_t(st, &io, "noise.zsl_z.1")}, {NULL, NULL}};
    if (st_find(st, "noise.dropout_mask.0")) {
        nz.drop_mask[0] = dump_t(st, &io, "noise.dropout_mask.0");
        nz.drop_mask[1] = dump_t(st, &io, "noise.dropout_mask.1");
    }
    DamsmPass1 p1;
    DamsmPass2 p2;
    damsm_step(&t, &b, &nz, NULL, &p1, &p2);
    float l1 = tensor_item(p1.loss), l2 = tensor_item(p2.d_loss);
    EXPECT(fabsf(l1 - scalar(st, "out.loss")) <= 1e-4f * fabsf(scalar(st, "out.loss")), "%s on %s: loss %.7g, reference %.7g", name,
           device_name(dev), l1, scalar(st, "out.loss"));
    EXPECT(fabsf(l2 - scalar(st, "out.d_loss")) <= 1e-4f * fabsf(scalar(st, "out.d_loss")),
           "%s on %s: d_loss %.7g, reference %.7g", name, device_name(dev), l2, scalar(st, "out.d_loss"));
    EXPECT(fabsf(p1.clip_total_norm - scalar(st, "out.clip_total_norm")) <= 1e-3f * scalar(st, "out.clip_total_norm"),
           "%s: clip norm %.7g, reference %.7g", name, p1.clip_total_norm, scalar(st, "out.clip_total_norm"));
    double e1 = after_err(&te.ps, st, "text_encoder"), e2 = after_err(&ie.ps, st, "image_encoder"), e3 = after_err(&zd.ps, st, "zsl_d");
    EXPECT(e1 < 1e-3 && e2 < 1e-3 && e3 < 1e-3, "%s: weights after the step vs the reference: text %.2e image %.2e zsl_d %.2e", name, e1,
           e2, e3);
    /* a second iteration with noise from an Rng runs and stays finite */
    Rng rng;
    rng_init(&rng, 5);
    damsm_step(&t, &b, NULL, &rng, &p1, &p2);
    l1 = tensor_item(p1.loss), l2 = tensor_item(p2.d_loss);
    EXPECT(isfinite(l1) && isfinite(l2), "%s: second step finite (%g, %g)", name, l1, l2);
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
    int dev = test_device();
    gan_trainer_to_device(&t, dev);
    Caps c;
    read_caps(st, &c);
    Tape io;
    tape_init_on(&io, dev);
    GanBatch b = {{NULL, NULL, NULL}, c.captions, c.lens, c.class_ids, c.B};
    for (int i = 0; i < branch; i++) {
        snprintf(k, sizeof k, "batch.imgs%d", i);
        b.imgs[i] = dump_t(st, &io, k);
    }
    GanStepOut o;
    gan_step(&t, &b, dump_t(st, &io, "noise.zsl_z.0"), NULL, &o);
    for (int i = 0; i < branch; i++) {
        snprintf(k, sizeof k, "out.errD%d", i);
        float ld = tensor_item(o.d[i].loss);
        EXPECT(fabsf(ld - scalar(st, k)) <= 1e-4f * fabsf(scalar(st, k)), "%s on %s: %s %.7g, reference %.7g", name, device_name(dev), k,
               ld, scalar(st, k));
        snprintf(k, sizeof k, "netD%d", i);
        double e = after_err(&d[i].ps, st, k);
        EXPECT(e < 1e-3, "%s: %s weights after the step: %.2e", name, k, e);
    }
    float ref = scalar(st, "out.errG_total"), lg = tensor_item(o.g.total);
    EXPECT(fabsf(lg - ref) <= 1e-4f * fabsf(ref), "%s on %s: errG_total %.7g, reference %.7g", name, device_name(dev), lg, ref);
    /* G's weights: Adam's sign noise through the random trunk (DUMP_FORMAT: up to 2 lr per element) */
    double eg = after_err(&g.ps, st, "netG"), ee = prefixed_err(&t.ema_g, st, "netG", "ema");
    EXPECT(eg < 2e-2 && ee < 2e-3, "%s: G weights after the step %.2e, EMA %.2e from the reference", name, eg, ee);
    printf("  %s: G after-step distance %.2e, EMA %.2e\n", name, eg, ee);
    Rng rng;
    rng_init(&rng, 9);
    gan_step(&t, &b, NULL, &rng, &o);
    lg = tensor_item(o.g.total);
    EXPECT(isfinite(lg), "%s: second step finite (%g)", name, lg);
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
    lg = tensor_item(o.g.total);
    EXPECT(all_set && isfinite(lg), "%s: DiffAugment step: draws for every D, finite (%g)", name, lg);
    DLossOut d_aug, d_plain;
    Tensor *fake0 = o.gen.imgs[0];
    gan_d_backward(&t, 0, b.imgs[0], fake0, o.txt.sent_emb, &d_aug);
    float la = tensor_item(d_aug.loss);
    const DiffAugSample *saved[3] = {t.aug[0][0], t.aug[0][1], t.aug[0][2]};
    t.aug[0][0] = t.aug[0][1] = NULL;
    gan_d_backward(&t, 0, b.imgs[0], fake0, o.txt.sent_emb, &d_plain);
    float lp = tensor_item(d_plain.loss);
    EXPECT(fabsf(la - lp) > 1e-6f, "%s: D0 sees augmented images (loss %.7g, without %.7g)", name, la, lp);
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

/* ---------------------------------------------------------------- the steps on the host device
 * Two identical trainers from the dump's weights, one on the CPU and one moved to the host device
 * (src/core/device.h), run two steps (the dump's noise, then an Rng's): the losses and every
 * weight, optimizer moment and EMA value after them must be the same bits. The convolutions run
 * im2col on both sides, where the trunk's fused ops and the unfused ops a device composes agree
 * bit for bit (oneDNN's nChw16c trunk is the CPU's only). The guard stops any host access to a
 * device tensor in the step. */

/* 0 on the host device (the same kernels: the same bits); on CUDA (ATTNGAN_TEST_DEVICE=cuda, the
 * GPU check) losses within 1e-4 relative and weights after two steps within 2e-2 norm-relative:
 * the reference comparisons' bounds, Adam's sign noise on tiny gradients included */
static double g_loss_tol, g_weight_tol;

static int same_set(const char *what, const ParamSet *a, const ParamSet *b) {
    ParamSet *d = (ParamSet *)b;
    paramset_to_device(d, DEVICE_CPU);
    if (g_weight_tol > 0) {
        double num = 0, den = 0;
        for (int64_t i = 0; i < a->n_values; i++) {
            double x = (double)d->values[i] - a->values[i];
            num += x * x;
            den += (double)a->values[i] * a->values[i];
        }
        double r = sqrt(num) / fmax(sqrt(den), 1e-30);
        printf("  %s: device vs CPU weights %.2e norm-relative\n", what, r);
        return EXPECT(r <= g_weight_tol, "%s: the device's weights are %.3g from the CPU's (bound %.1g)", what, r, g_weight_tol);
    }
    int same = !memcmp(a->values, d->values, (size_t)a->n_values * sizeof(float)) &&
               (!a->n_buffers || !memcmp(a->buffers, d->buffers, (size_t)a->n_buffers * sizeof(float)));
    int64_t diff = 0;
    for (int64_t i = 0; i < a->n_values; i++) diff += memcmp(a->values + i, d->values + i, sizeof(float)) != 0;
    return EXPECT(same, "%s: the host device's weights and buffers are the CPU's bits (%lld of %lld values differ)", what,
                  (long long)diff, (long long)a->n_values);
}

static void bits_equal(const char *what, float cpu, const Tensor *dev) {
    float v = tensor_item(dev);
    if (g_loss_tol > 0)
        EXPECT(fabsf(v - cpu) <= g_loss_tol * fabsf(cpu), "%s: %.9g on the device, %.9g on the CPU (bound %.1g relative)", what, v, cpu,
               g_loss_tol);
    else
        EXPECT(!memcmp(&cpu, &v, sizeof v), "%s: %.9g on the host device, %.9g on the CPU", what, v, cpu);
}

/* the device of the device-vs-CPU tests: the host device, or ATTNGAN_TEST_DEVICE's (with bounds) */
static int twin_device(void) {
    int d = test_device();
    g_loss_tol = d == DEVICE_CUDA ? 1e-4 : 0;
    g_weight_tol = d == DEVICE_CUDA ? 2e-2 : 0;
    return d == DEVICE_CPU ? DEVICE_HOSTDEV : d;
}

typedef struct DamsmNets {
    TextEncoder te;
    ImageEncoder ie;
    ZslD zd;
    DamsmTrainer t;
} DamsmNets;

static void damsm_nets(DamsmNets *n, SafeTensors *st, const ModelConfig *cfg) {
    text_encoder_init(&n->te, cfg);
    image_encoder_init(&n->ie, cfg);
    zsl_d_init(&n->zd, cfg);
    load(&n->te.ps, st, "text_encoder");
    load_trunk(&n->ie, st);
    load(&n->zd.ps, st, "zsl_d");
    damsm_trainer_init(&n->t, &n->te, &n->ie, &n->zd, cfg);
}

static void damsm_nets_free(DamsmNets *n) {
    damsm_trainer_free(&n->t);
    text_encoder_free(&n->te);
    image_encoder_free(&n->ie);
    zsl_d_free(&n->zd);
}

static void test_damsm_device(const char *name) {
    SafeTensors *st = dump_open(name);
    if (!st || !dump_file("trunk.safetensors")) { fixture_close(st); if (st) test_skip("no trunk file"); return; }
    conv2d_set_impl(CONV2D_IM2COL);
    ModelConfig cfg;
    dump_config(st, &cfg);
    DamsmNets nc, nd;
    damsm_nets(&nc, st, &cfg);
    damsm_nets(&nd, st, &cfg);
    int dev = twin_device();
    damsm_trainer_to_device(&nd.t, dev);
    Caps c;
    read_caps(st, &c);
    Tape ioc, iod;
    tape_init_on(&ioc, DEVICE_CPU);
    tape_init_on(&iod, dev);
    DamsmBatch bc = {dump_t(st, &ioc, "batch.imgs0"), c.captions, c.lens, c.class_ids, c.B}, bd = bc;
    bd.imgs = dump_t(st, &iod, "batch.imgs0");
    DamsmNoise zc = {{dump_t(st, &ioc, "noise.zsl_z.0"), dump_t(st, &ioc, "noise.zsl_z.1")}, {NULL, NULL}};
    DamsmNoise zd = {{dump_t(st, &iod, "noise.zsl_z.0"), dump_t(st, &iod, "noise.zsl_z.1")}, {NULL, NULL}};
    if (st_find(st, "noise.dropout_mask.0")) {
        zc.drop_mask[0] = dump_t(st, &ioc, "noise.dropout_mask.0"), zc.drop_mask[1] = dump_t(st, &ioc, "noise.dropout_mask.1");
        zd.drop_mask[0] = dump_t(st, &iod, "noise.dropout_mask.0"), zd.drop_mask[1] = dump_t(st, &iod, "noise.dropout_mask.1");
    }
    DamsmPass1 p1c, p1d;
    DamsmPass2 p2c, p2d;
    char w[96];
    for (int step = 0; step < 2; step++) {
        Rng rc, rd;
        rng_init(&rc, 5), rng_init(&rd, 5);
        damsm_step(&nc.t, &bc, step ? NULL : &zc, step ? &rc : NULL, &p1c, &p2c);
        damsm_step(&nd.t, &bd, step ? NULL : &zd, step ? &rd : NULL, &p1d, &p2d);
        snprintf(w, sizeof w, "%s on the host device, step %d: loss", name, step + 1);
        bits_equal(w, p1c.loss->data[0], p1d.loss);
        snprintf(w, sizeof w, "%s on the host device, step %d: ZSL D loss", name, step + 1);
        bits_equal(w, p2c.d_loss->data[0], p2d.d_loss);
        EXPECT(g_loss_tol > 0 ? fabsf(p1c.clip_total_norm - p1d.clip_total_norm) <= 1e-3f * p1c.clip_total_norm
                              : p1c.clip_total_norm == p1d.clip_total_norm,
               "%s: clip norm %.9g, CPU %.9g", w, p1d.clip_total_norm, p1c.clip_total_norm);
    }
    damsm_trainer_to_device(&nd.t, DEVICE_CPU);
    same_set("damsm text encoder", &nc.te.ps, &nd.te.ps);
    same_set("damsm image encoder", &nc.ie.ps, &nd.ie.ps);
    same_set("damsm ZSL D", &nc.zd.ps, &nd.zd.ps);
    if (dev == DEVICE_HOSTDEV)
        EXPECT(!memcmp(nc.t.opt_te.m, nd.t.opt_te.m, (size_t)nc.te.ps.n_values * sizeof(float)) &&
                   !memcmp(nc.t.opt_te.v, nd.t.opt_te.v, (size_t)nc.te.ps.n_values * sizeof(float)),
               "%s: the text encoder's Adam moments are the CPU's bits", name);
    tape_free(&ioc), tape_free(&iod);
    damsm_nets_free(&nc), damsm_nets_free(&nd);
    free_caps(&c);
    fixture_close(st);
    conv2d_set_impl(CONV2D_DNNL);
}

typedef struct GanNets {
    TextEncoder te;
    ImageEncoder ie;
    ZslD zd;
    GNet g;
    DNet d[3];
    GanTrainer t;
} GanNets;

static void gan_nets(GanNets *n, SafeTensors *st, const ModelConfig *cfg) {
    text_encoder_init(&n->te, cfg);
    image_encoder_init(&n->ie, cfg);
    zsl_d_init(&n->zd, cfg);
    gnet_init(&n->g, cfg, cfg->branch_num);
    load(&n->te.ps, st, "text_encoder");
    load_trunk(&n->ie, st);
    load(&n->zd.ps, st, "zsl_d");
    load(&n->g.ps, st, "netG");
    DNet *dp[3];
    char k[32];
    for (int i = 0; i < cfg->branch_num; i++) {
        snprintf(k, sizeof k, "netD%d", i);
        dnet_init(&n->d[i], cfg, 64 << i, k);
        load(&n->d[i].ps, st, k);
        dp[i] = &n->d[i];
    }
    gan_trainer_init(&n->t, &n->te, &n->ie, &n->zd, &n->g, dp, cfg);
}

static void gan_nets_free(GanNets *n, int branch) {
    gan_trainer_free(&n->t);
    text_encoder_free(&n->te);
    image_encoder_free(&n->ie);
    zsl_d_free(&n->zd);
    gnet_free(&n->g);
    for (int i = 0; i < branch; i++) dnet_free(&n->d[i]);
}

static void test_gan_device(const char *name, int diffaug) {
    SafeTensors *st = dump_open(name);
    if (!st || !dump_file("trunk.safetensors")) { fixture_close(st); if (st) test_skip("no trunk file"); return; }
    conv2d_set_impl(CONV2D_IM2COL);
    ModelConfig cfg;
    dump_config(st, &cfg);
    if (diffaug) cfg.diffaug = DIFFAUG_COLOR | DIFFAUG_TRANSLATION | DIFFAUG_CUTOUT;
    int branch = cfg.branch_num;
    GanNets *nc = xcalloc(1, sizeof *nc), *nd = xcalloc(1, sizeof *nd);
    gan_nets(nc, st, &cfg);
    gan_nets(nd, st, &cfg);
    int dev = twin_device();
    gan_trainer_to_device(&nd->t, dev);
    Caps c;
    read_caps(st, &c);
    Tape ioc, iod;
    tape_init_on(&ioc, DEVICE_CPU);
    tape_init_on(&iod, dev);
    GanBatch bc = {{NULL, NULL, NULL}, c.captions, c.lens, c.class_ids, c.B}, bd = bc;
    char k[96];
    for (int i = 0; i < branch; i++) {
        snprintf(k, sizeof k, "batch.imgs%d", i);
        bc.imgs[i] = dump_t(st, &ioc, k);
        bd.imgs[i] = dump_t(st, &iod, k);
    }
    Tensor *zc = dump_t(st, &ioc, "noise.zsl_z.0"), *zdv = dump_t(st, &iod, "noise.zsl_z.0");
    GanStepOut oc, od;
    for (int step = 0; step < 2; step++) {
        Rng rc, rd;
        rng_init(&rc, 9), rng_init(&rd, 9);
        gan_step(&nc->t, &bc, step ? NULL : zc, step || diffaug ? &rc : NULL, &oc);
        gan_step(&nd->t, &bd, step ? NULL : zdv, step || diffaug ? &rd : NULL, &od);
        for (int i = 0; i < branch; i++) {
            snprintf(k, sizeof k, "%s%s on the host device, step %d: errD%d", name, diffaug ? " (DiffAugment)" : "", step + 1, i);
            bits_equal(k, oc.d[i].loss->data[0], od.d[i].loss);
        }
        snprintf(k, sizeof k, "%s%s on the host device, step %d: errG_total", name, diffaug ? " (DiffAugment)" : "", step + 1);
        bits_equal(k, oc.g.total->data[0], od.g.total);
    }
    gan_trainer_to_device(&nd->t, DEVICE_CPU);
    same_set("gan G", &nc->g.ps, &nd->g.ps);
    same_set("gan G's EMA", &nc->t.ema_g, &nd->t.ema_g);
    for (int i = 0; i < branch; i++) same_set("gan D", &nc->d[i].ps, &nd->d[i].ps);
    if (dev == DEVICE_HOSTDEV)
        EXPECT(!memcmp(nc->t.opt_g.m, nd->t.opt_g.m, (size_t)nc->g.ps.n_values * sizeof(float)), "%s: G's Adam moments are the CPU's bits",
               name);
    tape_free(&ioc), tape_free(&iod);
    gan_nets_free(nc, branch), gan_nets_free(nd, branch);
    free(nc), free(nd);
    free_caps(&c);
    fixture_close(st);
    conv2d_set_impl(CONV2D_DNNL);
}

int main(void) {
    test_begin("test_steps");
    test_damsm("damsm_small_drop");
    test_gan("gan_b1_small");
    test_gan("gan_b3_small");
    test_damsm_device("damsm_small_drop");
    test_gan_device("gan_b1_small", 1); /* (branch 3 on the host device: attngan parity's replay of gan_b3_small) */
    DevPoolStats dst = device_pool_stats(DEVICE_HOSTDEV);
    EXPECT(dst.live == 0, "every host-device block was freed (%zu bytes live)", dst.live);
    return test_end();
}
