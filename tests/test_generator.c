/* test_generator.c: G_NET / G_DCGAN (src/nn/generator.c) against the PyTorch reference dumps
 * and finite differences:
 *  (1) sample dumps (eval mode): fake_imgs, att_maps from out.sent_emb / out.words_emb;
 *  (2) gan dumps (train mode): the same, plus BN running stats vs after.netG.*;
 *  (3) G's backward seeded with out.dfake_imgs<i> vs grad.netG.* (DUMP_FORMAT stage 5);
 *  (4) nn_load errors name a missing key; state_dict key order;
 *  (5) G_DCGAN: key names, shapes, gradcheck through a tiny 2-stage net;
 *  (6) gradcheck through a tiny 2-stage G_NET in train mode. */
#include "test.h"
#include "../src/nn/generator.h"
#include "../src/nn/load.h"

#include <string.h>
#include <unistd.h>

#define FWD_TOL 1e-5
/* Per tensor: tensors whose gradient nearly cancels (the last BN bias of a ResBlock, summed over
 * B*H*W before a train-mode BN) differ by up to ~5e-4 between PyTorch fp32 and fp64; ours is as
 * close to fp64 as PyTorch's fp32 is. The median over tensors is held much tighter. */
#define GRAD_TOL 1e-3
#define GRAD_MEDIAN_TOL 2e-5

/* ---------------------------------------------------------------- dump helpers */
typedef struct DumpInputs {
    Tensor *sent, *words;        /* (B, E), (B, E, L) */
    uint8_t *mask;               /* (B, L), captions == 0 over the first L columns */
    int B, L;
} DumpInputs;

static void read_inputs(SafeTensors *st, DumpInputs *in) {
    in->sent = fixture_tensor(st, "out.sent_emb", 0);
    in->words = fixture_tensor(st, "out.words_emb", 0);
    in->B = in->words->shape[0];
    in->L = in->words->shape[2];
    int64_t nc, nl;
    int64_t *caps = fixture_i64(st, "batch.captions", &nc);
    int64_t *lens = fixture_i64(st, "batch.cap_lens", &nl);
    int T = (int)(nc / in->B);
    EXPECT(nl == in->B && lens[0] == in->L, "%s: L = max(cap_lens) = %lld, words_emb width %d", st->path, (long long)lens[0], in->L);
    in->mask = xmalloc((size_t)in->B * in->L);
    for (int b = 0; b < in->B; b++)
        for (int t = 0; t < in->L; t++) in->mask[b * in->L + t] = caps[b * T + t] == 0;
    free(caps);
    free(lens);
}

static void free_inputs(DumpInputs *in) {
    tensor_free(in->sent);
    tensor_free(in->words);
    free(in->mask);
}

/* G with the dump's config and param.netG.* weights. */
static void load_gnet(GNet *g, SafeTensors *st) {
    ModelConfig cfg;
    dump_config(st, &cfg);
    gnet_init(g, &cfg, cfg.branch_num);
    int rc = nn_load(&g->ps, st, "param.netG.", 0, NULL);
    EXPECT(rc == 0, "%s: nn_load netG: %s", st->path, rc ? err_msg() : "");
}

/* out.fake_imgs<i> and out.att_maps<k> */
static double check_outputs(SafeTensors *st, const char *name, const GNetOut *o, int branch) {
    char k[64], what[160];
    double worst = 0;
    EXPECT(o->n_imgs == branch && o->n_att == branch - 1, "%s: %d images, %d att maps for branch %d", name, o->n_imgs,
           o->n_att, branch);
    for (int i = 0; i < o->n_imgs + o->n_att; i++) {
        int is_img = i < o->n_imgs, idx = is_img ? i : i - o->n_imgs;
        const Tensor *got = is_img ? o->imgs[idx] : o->att[idx];
        snprintf(k, sizeof k, is_img ? "out.fake_imgs%d" : "out.att_maps%d", idx);
        Tensor *want = fixture_tensor(st, k, 0);
        snprintf(what, sizeof what, "%s %s", name, k);
        if (EXPECT(tensor_same_shape(got, want), "%s: shape", what)) {
            double r = rel_err(got->data, want->data, want->n, NULL);
            if (r > worst) worst = r;
            expect_close(what, got->data, want->data, want->n, FWD_TOL);
        }
        tensor_free(want);
    }
    return worst;
}

/* Expected value of a buffer after the step: after.netG.<key> if stored, else param.netG.<key>. */
static const char *after_key(SafeTensors *st, const char *key, char *buf, size_t len) {
    snprintf(buf, len, "after.netG.%s", key);
    if (st_find(st, buf)) return buf;
    snprintf(buf, len, "param.netG.%s", key);
    return buf;
}

/* BN running_mean / running_var / num_batches_tracked after one train-mode forward. */
static void check_running_stats(SafeTensors *st, const char *name, GNet *g) {
    char k[256];
    int n_f = 0, n_i = 0;
    double worst = 0;
    for (int i = 0; i < g->ps.n; i++) {
        ParamEntry *e = g->ps.entries[i];
        if (e->kind == PARAM_BUFFER_I64) {
            int64_t want;
            if (st_read_i64(st, after_key(st, e->name, k, sizeof k), &want, 1)) FAIL("%s", err_msg());
            EXPECT(e->ival == want, "%s %s: num_batches_tracked %lld, want %lld", name, e->name, (long long)e->ival,
                   (long long)want);
            n_i++;
        } else if (e->kind == PARAM_BUFFER) {
            Tensor *want = fixture_tensor(st, after_key(st, e->name, k, sizeof k), 0);
            double r = rel_err(e->t.data, want->data, want->n, NULL);
            if (r > worst) worst = r;
            char what[300];
            snprintf(what, sizeof what, "%s running stat %s", name, e->name);
            expect_close(what, e->t.data, want->data, want->n, FWD_TOL);
            tensor_free(want);
            n_f++;
        }
    }
    printf("  %s: %d running stats (worst rel err %.3g), %d num_batches_tracked checked\n", name, n_f, worst, n_i);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Every grad.netG.<key> against the parameter gradients. */
static void check_grads(SafeTensors *st, const char *name, GNet *g) {
    char k[256];
    double errs[256], worst = 0;
    const char *worst_name = "";
    int n = 0;
    for (int i = 0; i < g->ps.n; i++) {
        ParamEntry *e = g->ps.entries[i];
        if (e->kind != PARAM_WEIGHT) continue;
        snprintf(k, sizeof k, "grad.netG.%s", e->name);
        Tensor *want = fixture_tensor(st, k, 0);
        double r = rel_err(e->t.grad, want->data, want->n, NULL);
        char what[300];
        snprintf(what, sizeof what, "%s %s", name, k);
        expect_close(what, e->t.grad, want->data, want->n, GRAD_TOL);
        if (n < 256) errs[n++] = r;
        if (r > worst) { worst = r; worst_name = e->name; }
        tensor_free(want);
    }
    qsort(errs, (size_t)n, sizeof *errs, cmp_double);
    EXPECT(n > 0 && errs[n / 2] <= GRAD_MEDIAN_TOL, "%s: median grad rel err %.3g over %d tensors, tolerance %.1g", name,
           n ? errs[n / 2] : 0.0, n, GRAD_MEDIAN_TOL);
    printf("  %s: %d grad.netG tensors, median rel err %.3g, worst %.3g (%s)\n", name, n, n ? errs[n / 2] : 0.0, worst,
           worst_name);
}

/* ---------------------------------------------------------------- (1) sample dumps, eval mode */
static void sample_case(const char *dump, int flip_mask) {
    SafeTensors *st = dump_open(dump);
    if (!st) return;
    GNet g;
    load_gnet(&g, st);
    g.train = 0;
    if (flip_mask) g.cfg.correct_mask = !g.cfg.correct_mask;
    DumpInputs in;
    read_inputs(st, &in);
    Tape tp;
    tape_init(&tp);
    GNetOut o = gnet_forward(&tp, &g, in.sent, in.words, in.mask);
    if (!flip_mask) {
        double w = check_outputs(st, dump, &o, g.branch);
        printf("  %s (eval, %s mask): worst forward rel err %.3g\n", dump, g.cfg.correct_mask ? "correct" : "seed", w);
    } else {
        /* sensitivity: the other mask must not match the dump's attention */
        Tensor *want = fixture_tensor(st, "out.att_maps0", 0);
        double r = rel_err(o.att[0]->data, want->data, want->n, NULL);
        EXPECT(r > 1e-3, "%s: flipping correct_mask changes att_maps0 (rel err %.3g)", dump, r);
        tensor_free(want);
    }
    tape_free(&tp);
    free_inputs(&in);
    gnet_free(&g);
    fixture_close(st);
}

/* ---------------------------------------------------------------- (2)+(3) gan dumps, train mode */
static void gan_case(const char *dump) {
    SafeTensors *st = dump_open(dump);
    if (!st) return;
    GNet g;
    load_gnet(&g, st);
    g.train = 1;
    paramset_zero_grad(&g.ps);
    DumpInputs in;
    read_inputs(st, &in);
    Tape tp;
    tape_init(&tp);
    GNetOut o = gnet_forward(&tp, &g, in.sent, in.words, in.mask);
    double w = check_outputs(st, dump, &o, g.branch);
    printf("  %s (train, %s mask): worst forward rel err %.3g\n", dump, g.cfg.correct_mask ? "correct" : "seed", w);
    check_running_stats(st, dump, &g);
    Tensor *seeds[3];
    const float *sd[3];
    char k[64];
    for (int i = 0; i < o.n_imgs; i++) {
        snprintf(k, sizeof k, "out.dfake_imgs%d", i);
        seeds[i] = fixture_tensor(st, k, 0);
        EXPECT(tensor_same_shape(seeds[i], o.imgs[i]), "%s: %s shape", dump, k);
        sd[i] = seeds[i]->data;
    }
    tape_backward_seeded(&tp, o.n_imgs, o.imgs, sd);
    check_grads(st, dump, &g);
    for (int i = 0; i < o.n_imgs; i++) tensor_free(seeds[i]);
    tape_free(&tp);
    free_inputs(&in);
    gnet_free(&g);
    fixture_close(st);
}

/* ---------------------------------------------------------------- tiny nets: (4) key order, (5), (6) */
static void tiny_config(ModelConfig *cfg, GVariant v, int correct_mask) {
    model_config_default(cfg);
    cfg->gf_dim = 2;
    cfg->embedding_dim = cfg->condition_dim = 6;
    cfg->r_num = 1;
    cfg->g_variant = v;
    cfg->correct_mask = correct_mask;
}

/* ---------------------------------------------------------------- (4) loading errors, key order */
/* The seed's state_dict order for G_NET with `branch` stages and r_num blocks. */
static int expected_keys(char keys[][96], int branch, int r_num, int dcgan) {
    int n = 0;
    static const char *bn[] = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"};
#define ADD(...) snprintf(keys[n++], 96, __VA_ARGS__)
#define ADD_BN(p) do { for (int q_ = 0; q_ < 5; q_++) ADD("%s.%s", p, bn[q_]); } while (0)
    char p[96];
    ADD("h_net1.fc.0.weight");
    ADD_BN("h_net1.fc.1");
    for (int u = 1; u <= 4; u++) {
        ADD("h_net1.upsample%d.1.weight", u);
        snprintf(p, sizeof p, "h_net1.upsample%d.2", u);
        ADD_BN(p);
    }
    if (!dcgan) ADD("img_net1.img.0.weight");
    for (int k = 2; k <= branch; k++) {
        ADD("h_net%d.att.conv_context.weight", k);
        for (int r = 0; r < r_num; r++) {
            ADD("h_net%d.residual.%d.block.0.weight", k, r);
            snprintf(p, sizeof p, "h_net%d.residual.%d.block.1", k, r);
            ADD_BN(p);
            ADD("h_net%d.residual.%d.block.3.weight", k, r);
            snprintf(p, sizeof p, "h_net%d.residual.%d.block.4", k, r);
            ADD_BN(p);
        }
        ADD("h_net%d.upsample.1.weight", k);
        snprintf(p, sizeof p, "h_net%d.upsample.2", k);
        ADD_BN(p);
        if (!dcgan) ADD("img_net%d.img.0.weight", k);
    }
    if (dcgan) ADD("img_net.img.0.weight");
#undef ADD_BN
#undef ADD
    return n;
}

/* One check: the entries of g's ParamSet are the seed's state_dict keys, in order. */
static void check_key_order(const GNet *g, int dcgan) {
    static char keys[256][96];
    int n = expected_keys(keys, g->branch, g->cfg.r_num, dcgan), bad = -1;
    for (int i = 0; bad < 0 && i < n && i < g->ps.n; i++)
        if (strcmp(g->ps.entries[i]->name, keys[i]) != 0) bad = i;
    EXPECT(g->ps.n == n && bad < 0, "%s branch %d, r_num %d: %d state_dict entries (want %d)%s%s%s%s",
           dcgan ? "G_DCGAN" : "G_NET", g->branch, g->cfg.r_num, g->ps.n, n, bad >= 0 ? ", first difference: " : "",
           bad >= 0 ? g->ps.entries[bad]->name : "", bad >= 0 ? " where the seed has " : "", bad >= 0 ? keys[bad] : "");
}

/* Key order of every variant and branch with 2 ResBlocks (no forward). */
static void key_order_case(void) {
    for (int dcgan = 0; dcgan <= 1; dcgan++)
        for (int branch = 1; branch <= 3; branch++) {
            ModelConfig cfg;
            tiny_config(&cfg, dcgan ? G_VARIANT_DCGAN : G_VARIANT_NET, 0);
            cfg.r_num = 2;
            GNet g;
            gnet_init(&g, &cfg, branch);
            check_key_order(&g, dcgan);
            gnet_free(&g);
        }
}

/* A copy of the dump's param.netG.* without `skip` must fail to load, naming it. */
static void missing_key_case(void) {
    SafeTensors *st = dump_open("gan_b2_small_cm");
    if (!st) return;
    const char *skip = "param.netG.h_net2.residual.0.block.3.weight";
    char path[256];
    snprintf(path, sizeof path, "/tmp/test_generator_%d.safetensors", (int)getpid());
    StWriter *w = st_writer_new();
    for (int i = 0; i < st->n; i++) {
        const StTensor *t = &st->tensors[i];
        if (strncmp(t->name, "param.netG.", 11) != 0 || strcmp(t->name, skip) == 0) continue;
        st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
    }
    EXPECT(st_writer_write(w, path) == 0, "writing %s", path);
    st_writer_free(w);
    SafeTensors part;
    if (EXPECT(st_open(&part, path) == 0, "opening %s", path)) {
        GNet g;
        ModelConfig cfg;
        dump_config(st, &cfg);
        gnet_init(&g, &cfg, cfg.branch_num);
        LoadReport rep;
        int rc = nn_load(&g.ps, &part, "param.netG.", 0, &rep);
        EXPECT(rc == -1 && rep.missing == 1 && strstr(err_msg(), skip) != NULL,
               "nn_load without %s: rc %d, %d missing, message '%s'", skip, rc, rep.missing, err_msg());
        check_key_order(&g, 0);
        gnet_free(&g);
        st_close(&part);
    }
    unlink(path);
    fixture_close(st);
}

/* Random weights: conv and linear weights uniform in +-sqrt(3 / fan_in) (variance-preserving, so
 * nothing saturates), BN gammas and running variances in [0.5, 1.5), BN betas and running means
 * in [-0.2, 0.2). */
static void tiny_weights(GNet *g, uint64_t seed) {
    for (int i = 0; i < g->ps.n; i++) {
        ParamEntry *e = g->ps.entries[i];
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

typedef struct TinyCtx {
    GNet *g;
    const uint8_t *mask;
} TinyCtx;

/* All images of G flattened and concatenated: (B, sum_i 3 S_i^2). */
static Tensor *fwd_gnet(Tape *tp, Tensor **in, void *vctx) {
    TinyCtx *c = vctx;
    GNetOut o = gnet_forward(tp, c->g, in[0], in[1], c->mask);
    if (o.n_imgs == 1) return o.imgs[0];
    Tensor *flat[3];
    for (int i = 0; i < o.n_imgs; i++) flat[i] = OP_RESHAPE(tp, o.imgs[i], o.imgs[i]->shape[0], -1);
    return op_concat(tp, o.n_imgs, flat, 1);
}

/* sent (3, 6), words (3, 6, 5) with caption lengths 5, 4, 3 */
static void tiny_inputs(Tensor **sent, Tensor **words, uint8_t *mask) {
    const int B = 3, L = 5, lens[3] = {5, 4, 3};
    *sent = tensor_alloc(2, (int[]){B, 6}, 1);
    *words = tensor_alloc(3, (int[]){B, 6, L}, 1);
    fill_uniform((*sent)->data, (*sent)->n, -1, 1, 11);
    fill_uniform((*words)->data, (*words)->n, -1, 1, 12);
    (*sent)->name = "sent_emb";
    (*words)->name = "words_emb";
    for (int b = 0; b < B; b++)
        for (int t = 0; t < L; t++) mask[b * L + t] = t >= lens[b];
}

static Tensor *param(GNet *g, const char *key) {
    ParamEntry *e = paramset_find(&g->ps, key);
    CHECK(e, "no parameter %s", key);
    return &e->t;
}

/* (5) G_DCGAN: names, shapes, gradcheck through 2 stages in eval mode with the correct mask */
static void dcgan_case(void) {
    ModelConfig cfg;
    tiny_config(&cfg, G_VARIANT_DCGAN, 1);
    GNet g;
    gnet_init(&g, &cfg, 2);
    check_key_order(&g, 1);
    EXPECT(paramset_find(&g.ps, "img_net.img.0.weight") && !paramset_find(&g.ps, "img_net1.img.0.weight") &&
               !paramset_find(&g.ps, "img_net2.img.0.weight"),
           "G_DCGAN: one image head img_net.img.0.weight");
    tiny_weights(&g, 100);
    g.train = 0;
    Tensor *sent, *words;
    uint8_t mask[15];
    tiny_inputs(&sent, &words, mask);
    Tape tp;
    tape_init(&tp);
    GNetOut o = gnet_forward(&tp, &g, sent, words, mask);
    char s1[64], s2[64];
    EXPECT(o.n_imgs == 1 && o.n_att == 1, "G_DCGAN branch 2: %d images, %d att maps", o.n_imgs, o.n_att);
    EXPECT(o.imgs[0]->ndim == 4 && o.imgs[0]->shape[0] == 3 && o.imgs[0]->shape[1] == 3 && o.imgs[0]->shape[2] == 128 &&
               o.imgs[0]->shape[3] == 128,
           "G_DCGAN image %s, want (3, 3, 128, 128)", tensor_shape_str(o.imgs[0], s1, sizeof s1));
    EXPECT(o.att[0]->ndim == 4 && o.att[0]->shape[0] == 3 && o.att[0]->shape[1] == 5 && o.att[0]->shape[2] == 64 &&
               o.att[0]->shape[3] == 64,
           "G_DCGAN att map %s, want (3, 5, 64, 64)", tensor_shape_str(o.att[0], s2, sizeof s2));
    /* correct mask: sample 2 (length 3) gives words 3, 4 no attention; each pixel's weights sum to 1 */
    const float *a = o.att[0]->data;
    double masked = 0, sum_err = 0;
    for (int q = 0; q < 64 * 64; q++) {
        double s = 0;
        for (int l = 0; l < 5; l++) s += a[(2 * 5 + l) * 4096 + q];
        masked += fabs(a[(2 * 5 + 3) * 4096 + q]) + fabs(a[(2 * 5 + 4) * 4096 + q]);
        sum_err = fmax(sum_err, fabs(s - 1));
    }
    EXPECT(masked == 0 && sum_err < 1e-5, "G_DCGAN correct mask: padded words get %.3g, sums off by %.3g", masked, sum_err);
    tape_free(&tp);
    TinyCtx c = {&g, mask};
    Tensor *in[4] = {sent, words, param(&g, "h_net2.att.conv_context.weight"), param(&g, "img_net.img.0.weight")};
    GradcheckOpts opts = {.h = 1e-2, .tol = 1e-2, .max_elems = 6, .seed = 7, .move_sets = {&c.g->ps}};
    gradcheck("G_DCGAN 2 stages (eval)", fwd_gnet, 4, in, &c, &opts);
    tensor_free(sent);
    tensor_free(words);
    gnet_free(&g);
}

/* (6) G_NET, 2 stages, train mode, the seed's mask (B = 3 does not divide qL = 4096, so rows mix
 * samples). Three stages work too but need h ~ 3e-3: the deeper net's curvature through the
 * B = 3 BatchNorm1d makes h = 1e-2 central differences inaccurate. */
static void gnet_gradcheck_case(void) {
    ModelConfig cfg;
    tiny_config(&cfg, G_VARIANT_NET, 0);
    GNet g;
    gnet_init(&g, &cfg, 2);
    check_key_order(&g, 0);
    tiny_weights(&g, 200);
    g.train = 1;
    Tensor *sent, *words;
    uint8_t mask[15];
    tiny_inputs(&sent, &words, mask);
    TinyCtx c = {&g, mask};
    Tensor *in[4] = {sent, words, param(&g, "h_net2.att.conv_context.weight"), param(&g, "h_net1.fc.0.weight")};
    GradcheckOpts opts = {.h = 1e-2, .tol = 1e-2, .max_elems = 6, .seed = 8, .move_sets = {&c.g->ps}};
    gradcheck("G_NET 2 stages (train, seed mask)", fwd_gnet, 4, in, &c, &opts);
    tensor_free(sent);
    tensor_free(words);
    gnet_free(&g);
}

int main(void) {
    test_begin("test_generator");
    sample_case("sample_b1_small", 0);
    sample_case("sample_b2_small", 0);
    sample_case("sample_b3_small", 0);
    sample_case("sample_b3_small_cm", 0);
    sample_case("sample_b2_small", 1);
    gan_case("gan_b1_small");
    gan_case("gan_b3_small");
    gan_case("gan_b2_small_cm");
    missing_key_case();
    key_order_case();
    dcgan_case();
    gnet_gradcheck_case();
    return test_end();
}
