/* test_text_encoder.c: the text encoder (RNN_ENCODER + ZSL G) and ZSL D against the PyTorch
 * reference dumps (eval forward of a sample dump; train forward, seeded backward, gradient
 * clipping and the second call with updated weights of the DAMSM dumps, with and without
 * dropout masks; ZSL D outputs and gradients), plus load errors, key order, gradchecks and
 * captions of any length order. */
#include "test.h"
#include "../src/nn/load.h"
#include "../src/nn/text_encoder.h"
#include "../src/nn/zsl.h"
#include "../src/train/optim.h"

#include <string.h>
#include <unistd.h>

#define TOL_FWD 1e-5
#define TOL_GRAD 1e-4

/* worst norm-relative errors measured against the dumps, printed at the end */
static double worst_fwd, worst_grad;

static void check_close(const char *what, const float *got, const float *want, int64_t n, double tol, double *worst) {
    double mx, r = rel_err(got, want, n, &mx);
    if (r > *worst) *worst = r;
    expect_close(what, got, want, n, tol);
}

/* Compares got with the dump tensor `key` (shape, then values). */
static void expect_dump(SafeTensors *st, const char *key, const Tensor *got, double tol, double *worst) {
    Tensor *want = fixture_tensor(st, key, 0);
    char a[64], b[64];
    if (EXPECT(tensor_same_shape(got, want), "%s: shape %s, dump %s", key, tensor_shape_str(got, a, sizeof a),
               tensor_shape_str(want, b, sizeof b)))
        check_close(key, got->data, want->data, want->n, tol, worst);
    tensor_free(want);
}

typedef struct Batch {
    int64_t *captions;  /* (B, T) */
    int *lens;          /* (B) */
    int64_t *class_ids; /* (B), 1-based */
    int B;
} Batch;

static Batch batch_load(SafeTensors *st) {
    Batch b;
    int64_t n, *l = fixture_i64(st, "batch.cap_lens", &n);
    b.B = (int)n;
    b.lens = xmalloc((size_t)n * sizeof(int));
    for (int64_t i = 0; i < n; i++) b.lens[i] = (int)l[i];
    free(l);
    b.captions = fixture_i64(st, "batch.captions", NULL);
    b.class_ids = fixture_i64(st, "batch.class_ids", NULL);
    return b;
}

static void batch_free(Batch *b) {
    free(b->captions);
    free(b->lens);
    free(b->class_ids);
}

static int load_net(ParamSet *ps, SafeTensors *st, const char *prefix, int flags) {
    int rc = nn_load(ps, st, prefix, flags, NULL);
    return EXPECT(rc == 0, "nn_load %s from %s: %s", ps->name, prefix, rc ? err_msg() : "");
}

/* Optional dump tensor (NULL if absent). */
static Tensor *maybe_tensor(SafeTensors *st, const char *key) {
    return fixture_has(st, key) ? fixture_tensor(st, key, 0) : NULL;
}

/* ---------------------------------------------------------------- eval (sample dump) */
static void test_eval_dump(const char *name) {
    SafeTensors *st = dump_open(name);
    if (!st) return;
    ModelConfig cfg;
    dump_config(st, &cfg);
    TextEncoder te;
    text_encoder_init(&te, &cfg);
    EXPECT(te.train == 0, "text_encoder_init starts in eval mode");
    if (load_net(&te.ps, st, "param.text_encoder.", 0)) {
        Batch b = batch_load(st);
        Tensor *z = fixture_tensor(st, "noise.zsl_z.0", 0);
        Tape tp;
        tape_init(&tp);
        tape_no_grad_begin(&tp);
        /* rng NULL: nothing may be drawn in eval mode with z given */
        TextEncoderOut o = text_encoder_forward(&tp, &te, b.captions, b.lens, b.B, z, NULL, NULL);
        tape_no_grad_end(&tp);
        EXPECT(o.drop_mask == NULL, "%s: no dropout mask in eval mode", name);
        expect_dump(st, "out.sent_lstm", o.sent_lstm, TOL_FWD, &worst_fwd);
        expect_dump(st, "out.words_emb", o.words_emb, TOL_FWD, &worst_fwd);
        expect_dump(st, "out.sent_emb", o.sent_emb, TOL_FWD, &worst_fwd);
        tape_free(&tp);
        tensor_free(z);
        batch_free(&b);
    }
    text_encoder_free(&te);
    st_close(st);
    free(st);
}

/* ---------------------------------------------------------------- DAMSM dumps (train mode) */
/* Text encoder call k (0 or 1) with the dump's noise; compares the outputs (suffix "" or ".1"). */
static TextEncoderOut damsm_call(Tape *tp, SafeTensors *st, TextEncoder *te, const Batch *b, int k) {
    char kz[64], km[64], ks[64];
    snprintf(kz, sizeof kz, "noise.zsl_z.%d", k);
    snprintf(km, sizeof km, "noise.dropout_mask.%d", k);
    Tensor *z = fixture_tensor(st, kz, 0), *mask = maybe_tensor(st, km);
    EXPECT(!mask == (te->cfg.rnn_drop == 0.0f), "%s: dropout mask %d present iff RNN_DROP > 0", st->path, k);
    TextEncoderOut o = text_encoder_forward(tp, te, b->captions, b->lens, b->B, z, mask, NULL);
    if (mask) {
        EXPECT(o.drop_mask && o.drop_mask->n == mask->n && !memcmp(o.drop_mask->data, mask->data, mask->n * sizeof(float)),
               "call %d: drop_mask reports the mask applied", k);
    } else {
        EXPECT(o.drop_mask == NULL, "call %d: no dropout, no drop_mask", k);
    }
    const char *sfx = k ? ".1" : "";
    snprintf(ks, sizeof ks, "out.sent_lstm%s", sfx);
    expect_dump(st, ks, o.sent_lstm, TOL_FWD, &worst_fwd);
    snprintf(ks, sizeof ks, "out.words_emb%s", sfx);
    expect_dump(st, ks, o.words_emb, TOL_FWD, &worst_fwd);
    snprintf(ks, sizeof ks, "out.sent_emb%s", sfx);
    expect_dump(st, ks, o.sent_emb, TOL_FWD, &worst_fwd);
    tensor_free(z);
    tensor_free(mask);
    return o;
}

/* Backward seeded with d loss / d (words_emb, sent_emb), then clip_grad_norm: grad.text_encoder.* */
static void damsm_backward(Tape *tp, SafeTensors *st, TextEncoder *te, TextEncoderOut *o) {
    Tensor *dw = fixture_tensor(st, "out.dwords_emb", 0), *ds = fixture_tensor(st, "out.dsent_emb", 0);
    if (EXPECT(tensor_same_shape(dw, o->words_emb) && tensor_same_shape(ds, o->sent_emb), "seed gradient shapes")) {
        paramset_zero_grad(&te->ps);
        Tensor *outs[] = {o->words_emb, o->sent_emb};
        const float *seeds[] = {dw->data, ds->data};
        tape_backward_seeded(tp, 2, outs, seeds);
        ParamSet *sets[] = {&te->ps};
        float total = clip_grad_norm_sets(sets, 1, te->cfg.rnn_grad_clip);
        float want = fixture_scalar(st, "out.clip_total_norm");
        check_close("out.clip_total_norm", &total, &want, 1, TOL_GRAD, &worst_grad);
        char k[256];
        int n_grads = 0;
        for (int i = 0; i < te->ps.n; i++) {
            ParamEntry *e = te->ps.entries[i];
            snprintf(k, sizeof k, "grad.text_encoder.%s", e->name);
            if (!EXPECT(fixture_has(st, k), "dump has %s", k)) continue;
            Tensor *g = fixture_tensor(st, k, 0);
            if (EXPECT(g->n == e->t.n, "%s: %lld elements, dump %lld", k, (long long)e->t.n, (long long)g->n))
                check_close(k, e->t.grad, g->data, g->n, TOL_GRAD, &worst_grad);
            tensor_free(g);
            n_grads++;
        }
        EXPECT(n_grads == 15, "15 text encoder gradients, got %d", n_grads);
    }
    tensor_free(dw);
    tensor_free(ds);
}

/* ZSL D on the dump's cnn_code and sent_emb (pass suffix "" or ".1") -> zsl_pred_*; with
 * grads != 0 also d_loss and its gradients grad.zsl_d.* (the ZSL D step of pass .1). */
static void damsm_zsl_d(SafeTensors *st, ZslD *d, const Batch *b, const char *sfx, int grads) {
    char k1[64], k2[64];
    snprintf(k1, sizeof k1, "out.cnn_code%s", sfx);
    snprintf(k2, sizeof k2, "out.sent_emb%s", sfx);
    Tensor *cnn = fixture_tensor(st, k1, 0), *sent = fixture_tensor(st, k2, 0);
    Tape tp;
    tape_init(&tp);
    Tensor *p_s, *c_s, *p_e, *c_e;
    zsl_d_forward(&tp, d, cnn, &p_s, &c_s);
    zsl_d_forward(&tp, d, sent, &p_e, &c_e);
    const char *names[] = {"zsl_pred_by_sent", "zsl_pred_class_by_sent", "zsl_pred_by_emb", "zsl_pred_class_by_emb"};
    Tensor *got[] = {p_s, c_s, p_e, c_e};
    for (int i = 0; i < 4; i++) {
        snprintf(k1, sizeof k1, "out.%s%s", names[i], sfx);
        expect_dump(st, k1, got[i], TOL_FWD, &worst_fwd);
    }
    if (grads) {
        /* d_loss = ((BCEL(p_s, 0) + BCEL(p_e, 1)) + CE(c_s, y)) + CE(c_e, y), y = class_ids - 1 */
        int64_t *y = xmalloc((size_t)b->B * sizeof(int64_t));
        for (int i = 0; i < b->B; i++) y[i] = b->class_ids[i] - 1;
        Tensor *zeros = TZEROS(&tp, b->B, 1), *ones = TNEW(&tp, b->B, 1);
        for (int i = 0; i < b->B; i++) ones->data[i] = 1.0f;
        Tensor *loss = op_add(&tp, op_bce_logits(&tp, p_s, zeros), op_bce_logits(&tp, p_e, ones));
        loss = op_add(&tp, op_add(&tp, loss, op_cross_entropy(&tp, c_s, y)), op_cross_entropy(&tp, c_e, y));
        float want = fixture_scalar(st, "out.d_loss");
        check_close("out.d_loss", loss->data, &want, 1, TOL_FWD, &worst_fwd);
        paramset_zero_grad(&d->ps);
        tape_backward(&tp, loss);
        for (int i = 0; i < d->ps.n; i++) {
            ParamEntry *e = d->ps.entries[i];
            snprintf(k1, sizeof k1, "grad.zsl_d.%s", e->name);
            Tensor *g = fixture_tensor(st, k1, 0);
            if (EXPECT(g->n == e->t.n, "%s: size", k1)) check_close(k1, e->t.grad, g->data, g->n, TOL_GRAD, &worst_grad);
            tensor_free(g);
        }
        free(y);
    }
    tape_free(&tp);
    tensor_free(cnn);
    tensor_free(sent);
}

static void test_damsm_dump(const char *name) {
    SafeTensors *st = dump_open(name);
    if (!st) return;
    ModelConfig cfg;
    dump_config(st, &cfg);
    TextEncoder te;
    text_encoder_init(&te, &cfg);
    ZslD d;
    zsl_d_init(&d, &cfg);
    Batch b = batch_load(st);
    if (load_net(&te.ps, st, "param.text_encoder.", 0) && load_net(&d.ps, st, "param.zsl_d.", 0)) {
        te.train = 1;
        Tape tp;
        tape_init(&tp);
        TextEncoderOut o = damsm_call(&tp, st, &te, &b, 0);
        damsm_backward(&tp, st, &te, &o);
        damsm_zsl_d(st, &d, &b, "", 0);
        /* second call: the updated weights (after.* where they changed), the noise of call 1 */
        tape_reset(&tp);
        if (load_net(&te.ps, st, "after.text_encoder.", LOAD_PARTIAL)) damsm_call(&tp, st, &te, &b, 1);
        damsm_zsl_d(st, &d, &b, ".1", 1);
        tape_free(&tp);
    }
    batch_free(&b);
    zsl_d_free(&d);
    text_encoder_free(&te);
    st_close(st);
    free(st);
}

/* ---------------------------------------------------------------- small random networks */
static void small_config(ModelConfig *cfg) {
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
}

static void test_key_order(void) {
    ModelConfig cfg;
    small_config(&cfg);
    TextEncoder te;
    text_encoder_init(&te, &cfg);
    const char *want[] = {"encoder.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0",
                          "rnn.weight_ih_l0_reverse", "rnn.weight_hh_l0_reverse", "rnn.bias_ih_l0_reverse",
                          "rnn.bias_hh_l0_reverse", "zsl_g.rdc_text.weight", "zsl_g.rdc_text.bias", "zsl_g.main.0.weight",
                          "zsl_g.main.0.bias", "zsl_g.main.2.weight", "zsl_g.main.2.bias"};
    int nw = (int)(sizeof want / sizeof want[0]);
    if (EXPECT(te.ps.n == nw, "text encoder: %d tensors, want %d", te.ps.n, nw))
        for (int i = 0; i < nw; i++)
            EXPECT(!strcmp(te.ps.entries[i]->name, want[i]), "text encoder key %d: %s, want %s", i, te.ps.entries[i]->name,
                   want[i]);
    EXPECT(te.ps.n_values == 20 * 6 + 2 * (16 * 6 + 16 * 4 + 2 * 16) + (5 * 8 + 5) + (9 * (3 + 5) + 9) + (8 * 9 + 8),
           "text encoder: %lld values", (long long)te.ps.n_values);
    ZslD d;
    zsl_d_init(&d, &cfg);
    const char *wd[] = {"D_shared.0.weight", "D_shared.0.bias", "D_gan.weight", "D_gan.bias", "D_aux.weight", "D_aux.bias"};
    if (EXPECT(d.ps.n == 6, "zsl_d: %d tensors, want 6", d.ps.n))
        for (int i = 0; i < 6; i++)
            EXPECT(!strcmp(d.ps.entries[i]->name, wd[i]), "zsl_d key %d: %s, want %s", i, d.ps.entries[i]->name, wd[i]);
    zsl_d_free(&d);
    text_encoder_free(&te);
}

/* Writes ps under prefix into path, leaving out `skip`, giving `bad` a wrong shape and adding
 * `<prefix>extra.weight`. */
static void write_broken(const ParamSet *ps, const char *prefix, const char *skip, const char *bad, const char *path) {
    StWriter *w = st_writer_new();
    char k[256];
    float junk[3] = {1, 2, 3};
    for (int i = 0; i < ps->n; i++) {
        const ParamEntry *e = ps->entries[i];
        snprintf(k, sizeof k, "%s%s", prefix, e->name);
        if (!strcmp(e->name, skip)) continue;
        if (!strcmp(e->name, bad)) st_writer_add_f32(w, k, 2, (int[]){1, 3}, junk);
        else st_writer_add_f32(w, k, e->t.ndim, e->t.shape, e->t.data);
    }
    snprintf(k, sizeof k, "%sextra.weight", prefix);
    st_writer_add_f32(w, k, 1, (int[]){3}, junk);
    if (st_writer_write(w, path)) FAIL("%s", err_msg());
    st_writer_free(w);
}

static void expect_load_error(ParamSet *ps, const char *prefix, const char *skip, const char *bad) {
    char path[] = "/tmp/test_text_encoder_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp %s failed", path);
    close(fd);
    write_broken(ps, prefix, skip, bad, path);
    SafeTensors st;
    if (st_open(&st, path)) FAIL("%s", err_msg());
    LoadReport r;
    int rc = nn_load(ps, &st, prefix, 0, &r);
    EXPECT(rc == -1 && r.missing == 1 && r.mis_shaped == 1 && r.unexpected == 1,
           "%s: broken file: rc %d, missing %d, mis-shaped %d, unexpected %d", ps->name, rc, r.missing, r.mis_shaped,
           r.unexpected);
    char k1[128], k2[128], k3[128];
    snprintf(k1, sizeof k1, "%s%s", prefix, skip);
    snprintf(k2, sizeof k2, "%s%s: file (1, 3)", prefix, bad);
    snprintf(k3, sizeof k3, "%sextra.weight", prefix);
    const char *m = err_msg();
    EXPECT(strstr(m, k1) && strstr(m, k2) && strstr(m, k3), "%s: the load error names %s, %s and %s: %s", ps->name, k1, k2, k3,
           m);
    st_close(&st);
    unlink(path);
}

static void test_load_errors(void) {
    ModelConfig cfg;
    small_config(&cfg);
    TextEncoder te;
    text_encoder_init(&te, &cfg);
    expect_load_error(&te.ps, "te.", "rnn.bias_hh_l0_reverse", "zsl_g.main.0.weight");
    ZslD d;
    zsl_d_init(&d, &cfg);
    expect_load_error(&d.ps, "param.zsl_d.", "D_aux.bias", "D_shared.0.weight");
    zsl_d_free(&d);
    text_encoder_free(&te);
}

/* ---- gradchecks */
static Tensor *fwd_zsl_g(Tape *tp, Tensor **in, void *ctx) { return zsl_g_forward(tp, ctx, in[0], in[1]); }

static Tensor *fwd_zsl_d(Tape *tp, Tensor **in, void *ctx) {
    Tensor *pred, *cls;
    zsl_d_forward(tp, ctx, in[0], &pred, &cls);
    return op_concat(tp, 2, (Tensor *[]){pred, cls}, 1); /* (B, 1 + K) */
}

static void test_zsl_gradcheck(void) {
    ModelConfig cfg;
    small_config(&cfg);
    int B = 3, E = cfg.embedding_dim;
    ParamSet ps;
    paramset_init(&ps, "g");
    ZslG g;
    zsl_g_init(&g, &ps, "zsl_g", &cfg);
    paramset_finalize(&ps);
    fill_uniform(ps.values, ps.n_values, -0.5f, 0.5f, 11);
    Tensor *c = tensor_alloc(2, (int[]){B, E}, 1), *z = tensor_alloc(2, (int[]){B, cfg.zsl_z}, 1);
    fill_uniform(c->data, c->n, -1, 1, 12);
    fill_uniform(z->data, z->n, -1, 1, 13);
    GradcheckOpts opts = {1e-3, 1e-2, -1, 0, .move_sets = {&ps}};
    Tensor *gin[] = {c, z, g.rdc_text.weight, g.rdc_text.bias, g.main0.weight, g.main0.bias, g.main2.weight, g.main2.bias};
    gradcheck("zsl_g", fwd_zsl_g, 8, gin, &g, &opts);
    paramset_free(&ps);

    ZslD d;
    zsl_d_init(&d, &cfg);
    fill_uniform(d.ps.values, d.ps.n_values, -0.5f, 0.5f, 14);
    Tensor *din[] = {c, d.shared0.weight, d.shared0.bias, d.gan.weight, d.gan.bias, d.aux.weight, d.aux.bias};
    opts.move_sets[0] = &d.ps;
    gradcheck("zsl_d", fwd_zsl_d, 7, din, &d, &opts);
    zsl_d_free(&d);
    tensor_free(c);
    tensor_free(z);
}

/* ---- captions of any length order */
typedef struct TeCase {
    TextEncoder *te;
    const int64_t *captions;
    const int *lens;
    int B;
    const Tensor *z;
} TeCase;

/* cat(words_emb (B, E*L), sent_emb (B, E)) -> (B, E*L + E) */
static Tensor *fwd_text_encoder(Tape *tp, Tensor **in, void *ctx) {
    const TeCase *k = ctx;
    TextEncoderOut o = text_encoder_forward(tp, k->te, k->captions, k->lens, k->B, k->z, NULL, NULL);
    Tensor *w = OP_RESHAPE(tp, o.words_emb, k->B, -1);
    return op_concat(tp, 2, (Tensor *[]){w, o.sent_emb}, 1);
}

static void make_captions(int64_t *captions, const int *lens, int B, int T, int V, uint64_t seed) {
    Rng r;
    rng_init(&r, seed);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) captions[b * T + t] = t < lens[b] ? 1 + (int64_t)rng_below(&r, (uint32_t)(V - 1)) : 0;
}

/* Each row of a batch equals the same caption encoded alone (B = 1); zeros past each length. */
static void check_rows_independent(TextEncoder *te, const int64_t *captions, const int *lens, int B, const Tensor *z,
                                   const char *what) {
    int T = te->cfg.words_num, E = te->cfg.embedding_dim, Z = te->cfg.zsl_z, L = 0;
    for (int b = 0; b < B; b++) L = lens[b] > L ? lens[b] : L;
    Tape tp;
    tape_init(&tp);
    tape_no_grad_begin(&tp);
    TextEncoderOut o = text_encoder_forward(&tp, te, captions, lens, B, z, NULL, NULL);
    EXPECT(o.words_emb->ndim == 3 && o.words_emb->shape[0] == B && o.words_emb->shape[1] == E && o.words_emb->shape[2] == L,
           "%s: words_emb is (B, E, max len = %d)", what, L);
    for (int b = 0; b < B; b++) {
        Tensor *zb = tensor_alloc(2, (int[]){1, Z}, 0);
        memcpy(zb->data, z->data + b * Z, (size_t)Z * sizeof(float));
        TextEncoderOut s = text_encoder_forward(&tp, te, captions + b * T, &lens[b], 1, zb, NULL, NULL);
        char k[128];
        snprintf(k, sizeof k, "%s: row %d sent_lstm", what, b);
        expect_close(k, o.sent_lstm->data + b * E, s.sent_lstm->data, E, 1e-6);
        snprintf(k, sizeof k, "%s: row %d sent_emb", what, b);
        expect_close(k, o.sent_emb->data + b * E, s.sent_emb->data, E, 1e-6);
        int nonzero_pad = 0;
        double worst = 0;
        for (int e = 0; e < E; e++)
            for (int t = 0; t < L; t++) {
                float v = o.words_emb->data[((int64_t)b * E + e) * L + t];
                if (t >= lens[b]) nonzero_pad += v != 0.0f;
                else worst = fmax(worst, fabs(v - s.words_emb->data[e * lens[b] + t]));
            }
        EXPECT(nonzero_pad == 0 && worst <= 1e-6, "%s: row %d words_emb: %d nonzero past length %d, max diff %.3g", what, b,
               nonzero_pad, lens[b], worst);
        tensor_free(zb);
    }
    tape_no_grad_end(&tp);
    tape_free(&tp);
}

static void test_lengths(void) {
    ModelConfig cfg;
    small_config(&cfg);
    TextEncoder te;
    text_encoder_init(&te, &cfg);
    fill_uniform(te.ps.values, te.ps.n_values, -0.5f, 0.5f, 21);
    enum { B = 4 };
    int T = cfg.words_num;
    const int sorted[B] = {7, 5, 3, 1}, unsorted[B] = {2, 6, 4, 6};
    int64_t captions[B * 7];
    Tensor *z = tensor_alloc(2, (int[]){B, cfg.zsl_z}, 0);
    fill_uniform(z->data, z->n, -1, 1, 22);
    make_captions(captions, sorted, B, T, cfg.n_words, 23);
    check_rows_independent(&te, captions, sorted, B, z, "descending lengths");
    make_captions(captions, unsorted, B, T, cfg.n_words, 24);
    check_rows_independent(&te, captions, unsorted, B, z, "unsorted lengths");

    /* the whole encoder's backward with unsorted lengths, every parameter */
    TeCase k = {&te, captions, unsorted, B, z};
    Tensor **in = xmalloc((size_t)te.ps.n * sizeof *in);
    for (int i = 0; i < te.ps.n; i++) in[i] = &te.ps.entries[i]->t;
    GradcheckOpts opts = {1e-3, 1e-2, 64, 0, .move_sets = {&te.ps}, .move_tensors = {z}};
    gradcheck("text_encoder unsorted lengths", fwd_text_encoder, te.ps.n, in, &k, &opts);
    free(in);
    tensor_free(z);
    text_encoder_free(&te);
}

/* ---- dropout drawn from the Rng: the mask first, then z; eval draws z only */
static void test_rng_dropout(void) {
    ModelConfig cfg;
    small_config(&cfg);
    cfg.rnn_drop = 0.5f;
    TextEncoder te;
    text_encoder_init(&te, &cfg);
    fill_uniform(te.ps.values, te.ps.n_values, -0.5f, 0.5f, 31);
    enum { B = 3 };
    int T = cfg.words_num, W = cfg.word_dim, Z = cfg.zsl_z;
    const int lens[B] = {6, 7, 2};
    int64_t captions[B * 7];
    make_captions(captions, lens, B, T, cfg.n_words, 32);
    Tape tp;
    tape_init(&tp);
    tape_no_grad_begin(&tp);
    te.train = 1;
    Rng r;
    rng_init(&r, 99);
    TextEncoderOut o = text_encoder_forward(&tp, &te, captions, lens, B, NULL, NULL, &r);
    /* replay: a mask of B*T*W uniforms, then B*Z normals */
    Rng q;
    rng_init(&q, 99);
    Tensor *mask = tensor_alloc(3, (int[]){B, T, W}, 0), *z = tensor_alloc(2, (int[]){B, Z}, 0);
    rng_uniform(&q, mask->data, mask->n);
    dropout_make_mask(mask->data, mask->data, cfg.rnn_drop, mask->n);
    rng_normal(&q, z->data, z->n, 0.0f, 1.0f);
    EXPECT(r.offset == q.offset, "train mode draws the mask and z (offset %llu, want %llu)", (unsigned long long)r.offset,
           (unsigned long long)q.offset);
    int zeros = 0, twos = 0;
    if (EXPECT(o.drop_mask && tensor_same_shape(o.drop_mask, mask), "drawn drop_mask is (B, T, W)")) {
        for (int64_t i = 0; i < mask->n; i++) {
            zeros += o.drop_mask->data[i] == 0.0f;
            twos += o.drop_mask->data[i] == 2.0f;
        }
        EXPECT(zeros + twos == mask->n && zeros > 0 && twos > 0, "mask values 0 or 2 (%d zeros, %d twos of %lld)", zeros, twos,
               (long long)mask->n);
        expect_close("drawn drop_mask replayed", o.drop_mask->data, mask->data, mask->n, 0);
    }
    TextEncoderOut g = text_encoder_forward(&tp, &te, captions, lens, B, z, mask, NULL);
    expect_close("train: drawn noise = given noise (sent_emb)", o.sent_emb->data, g.sent_emb->data, g.sent_emb->n, 0);
    expect_close("train: drawn noise = given noise (words_emb)", o.words_emb->data, g.words_emb->data, g.words_emb->n, 0);
    /* eval: no mask, only z is drawn */
    te.train = 0;
    rng_init(&r, 5);
    TextEncoderOut e = text_encoder_forward(&tp, &te, captions, lens, B, NULL, NULL, &r);
    rng_init(&q, 5);
    rng_normal(&q, z->data, z->n, 0.0f, 1.0f);
    EXPECT(e.drop_mask == NULL && r.offset == q.offset, "eval: no mask, z only drawn");
    TextEncoderOut ez = text_encoder_forward(&tp, &te, captions, lens, B, z, mask, NULL);
    expect_close("eval: drawn z = given z, given mask ignored", e.sent_emb->data, ez.sent_emb->data, ez.sent_emb->n, 0);
    /* ZSL.Z_STD: the noise is std * N(0, 1) from the same stream; 0 is no noise */
    const float stds[2] = {0.0f, 2.5f};
    for (int si = 0; si < 2; si++) {
        te.cfg.zsl_z_std = stds[si];
        rng_init(&r, 5);
        TextEncoderOut es = text_encoder_forward(&tp, &te, captions, lens, B, NULL, NULL, &r);
        Tensor *zs = tensor_alloc(2, (int[]){B, Z}, 0);
        for (int64_t i = 0; i < zs->n; i++) zs->data[i] = stds[si] * z->data[i];
        TextEncoderOut gs = text_encoder_forward(&tp, &te, captions, lens, B, zs, NULL, NULL);
        char what[64];
        snprintf(what, sizeof what, "ZSL.Z_STD %g: drawn noise = std * N(0, 1)", (double)stds[si]);
        expect_close(what, es.sent_emb->data, gs.sent_emb->data, gs.sent_emb->n, 1e-6);
        EXPECT(r.offset == q.offset, "ZSL.Z_STD %g draws as many numbers", (double)stds[si]);
        double diff = 0;
        for (int64_t i = 0; i < es.sent_emb->n; i++) diff += fabs(es.sent_emb->data[i] - e.sent_emb->data[i]);
        EXPECT(diff > 1e-4, "ZSL.Z_STD %g changes the sentence code (|diff| %.3g)", (double)stds[si], diff);
        tensor_free(zs);
    }
    te.cfg.zsl_z_std = 1.0f;
    /* EXTRA.SENT_CODE 'lstm': the sentence code is the LSTM's, no noise drawn */
    te.cfg.sent_lstm = 1;
    rng_init(&r, 5);
    TextEncoderOut el = text_encoder_forward(&tp, &te, captions, lens, B, NULL, NULL, &r);
    EXPECT(r.offset == 0 && el.sent_emb == el.sent_lstm, "SENT_CODE lstm: sent_emb is the LSTM code, no noise drawn (offset %llu)",
           (unsigned long long)r.offset);
    EXPECT(text_encoder_sent_code(&tp, &te, el.sent_lstm, z) == el.sent_lstm, "text_encoder_sent_code follows SENT_CODE lstm");
    te.cfg.sent_lstm = 0;
    Tensor *viaf = text_encoder_sent_code(&tp, &te, el.sent_lstm, z);
    expect_close("text_encoder_sent_code = ZSL G of the LSTM code (the seed)", viaf->data, e.sent_emb->data, viaf->n, 0);
    /* ZSL.RESIDUAL: the LSTM code plus ZSL G's output, in the forward and in text_encoder_sent_code */
    te.cfg.zsl_residual = 1;
    TextEncoderOut er = text_encoder_forward(&tp, &te, captions, lens, B, z, NULL, NULL);
    Tensor *viar = text_encoder_sent_code(&tp, &te, er.sent_lstm, z);
    float *sum = xmalloc((size_t)viaf->n * sizeof(float));
    for (int64_t i = 0; i < viaf->n; i++) sum[i] = el.sent_lstm->data[i] + e.sent_emb->data[i];
    expect_close("ZSL.RESIDUAL: sent_emb = LSTM code + ZSL G", er.sent_emb->data, sum, viaf->n, 1e-6);
    expect_close("ZSL.RESIDUAL: text_encoder_sent_code agrees", viar->data, sum, viaf->n, 1e-6);
    free(sum);
    te.cfg.zsl_residual = 0;
    tape_no_grad_end(&tp);
    tape_free(&tp);
    tensor_free(mask);
    tensor_free(z);
    text_encoder_free(&te);
}

int main(void) {
    test_begin("test_text_encoder");
    test_key_order();
    test_load_errors();
    test_zsl_gradcheck();
    test_lengths();
    test_rng_dropout();
    test_eval_dump("sample_b3_small");
    test_eval_dump("sample_b1_small");
    test_eval_dump("gan_b1_small");
    test_damsm_dump("damsm_small");
    test_damsm_dump("damsm_small_drop");
    printf("test_text_encoder: worst norm-relative error vs the dumps: forward %.3g, gradients %.3g\n", worst_fwd, worst_grad);
    return test_end();
}
