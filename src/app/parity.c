/* parity.c: `attngan parity DUMP`: replays one iteration of the PyTorch reference
 * (ref_attngan.py --dump-safetensors) on our networks and compares every out.*, grad.*, after.*
 * and ema.* tensor of the dump (../shared/reference/DUMP_FORMAT.md).
 *
 * sample      TE (eval) with noise.zsl_z.0, then G (eval) from the dump's sent/words embeddings.
 * damsm_step  in stages, each fed with the dump's upstream tensors: a the encoders; b the losses
 *             from the dump's encoder outputs -> d loss / d outputs; c the encoders' backward fed the
 *             dump's d outputs, then the clip; d the encoder Adam step fed the dump's gradients;
 *             e pass 2's encoders from the dump's updated weights; f the ZSL D step on the dump's
 *             pass-2 codes and its Adam step. Trunk BN running stats after both passes.
 * gan_step    in the stages of DUMP_FORMAT.md, each fed with the dump's upstream tensors:
 *             1 TE; 2 G forward (train); 3 D steps on the dump's fakes, each Adam step fed the
 *             dump's grad.netD<i>; 4 the G-step losses with the dump's updated D weights on the
 *             dump's fakes -> dfake; 5 G's backward fed the dump's dfake -> grad.netG; 6 Adam and
 *             EMA fed grad.netG. The end-to-end G gradient (our own dfake through G) is reported,
 *             not gated.
 *
 * On a device (`--device cuda|hostdev`, or ATTNGAN_DEVICE; src/core/device.h) the networks are
 * loaded from the dump on the CPU and moved to the device (the trainers' *_to_device,
 * paramset_to_device) before the replay; the dump's tensors fed to them are uploaded onto the
 * device's tapes, and every comparison downloads what it compares (compare_ex reads host memory).
 * The tolerances are the CPU's on every device. On hostdev they have to be: it runs the CPU's
 * kernels (the convolutions in NCHW, as a device composes them, where the CPU's default is
 * oneDNN's blocked trunk: no tensor's error to the reference moves by more than 0.1 of its
 * tolerance, and with ATTNGAN_CONV=im2col both print the same errors; tests/parity/run_parity.sh
 * replays every dump there). On CUDA the kernels are fp32 throughout (cuBLAS and cuDNN without
 * TF32: src/ops/cuda): only their summation orders differ from the CPU's, as the CPU's differ from
 * PyTorch's, so the same tolerances are expected to hold; not yet measured on a GPU (a run there
 * that needs a wider one should widen it here and in the help text, with the numbers).
 */
#include "app.h"
#include "../io/safetensors.h"
#include "../nn/load.h"
#include "../train/damsm_step.h"
#include "../train/gan_step.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Bad input (files, flags): a message and exit status 2, never an abort. */
static void die(const char *fmt, ...) ATTR_PRINTF(1, 2) ATTR_NORETURN;
static void die(const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "attngan parity: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

typedef struct Parity {
    SafeTensors st;
    double tol_fwd, tol_grad, tol_trunk_grad;
    char trunk_grad_key[64];  /* out.dfake_imgs<last>: its gradient comes back through the trunk */
    uint8_t *seen;           /* per dump tensor */
    int n, over, missing, verbose;
    ModelConfig cfg;
    const char *mode;
    int B;
    int dev;                 /* DeviceKind of the replay (device_current()) */
    const double *terms;     /* for the next comparison: the sums of |terms| of a reduction (or NULL) */
    int64_t n_terms;
    int n_cancel;            /* comparisons gated against the sums of |terms| (cancellation) */
} Parity;

/* ------------------------------------------------------------------ the cancellation-aware gate
 * A bias gradient of batch norm sums dout over N x H x W positions (262,144 for G's last stage at
 * 256 px). When those terms nearly cancel, the sum is small next to its terms, and an error that is
 * small next to the terms (the upstream gradients' own error, rounding) is large next to the sum:
 * at seed 64458 grad.netG.h_net3.residual.1.block.4.bias had norm 0.22 against 55 for the weight
 * beside it, and rel 1.6e-3. So such a reduction is judged against the sums of its absolute terms
 * (sum |dout| per channel, reported by batchnorm_backward through batchnorm_terms_probe), which is
 * the scale its error is made on: rel = ||ours - ref|| / max(||ref||, ||sum |terms| ||). On the
 * CUDA device (whose kernels do not report terms) the plain relative error stays. */
typedef struct TermsEntry {
    const float *dbeta;
    int C;
    double *sum;
} TermsEntry;
static TermsEntry *g_terms;
static int g_n_terms;

static void terms_probe(const float *dbeta, const double *abs_terms, int C) {
    for (int i = 0; i < g_n_terms; i++)
        if (g_terms[i].dbeta == dbeta && g_terms[i].C == C) {
            for (int c = 0; c < C; c++) g_terms[i].sum[c] += abs_terms[c];
            return;
        }
    g_terms = xrealloc(g_terms, (size_t)(g_n_terms + 1) * sizeof *g_terms);
    TermsEntry *e = &g_terms[g_n_terms++];
    e->dbeta = dbeta;
    e->C = C;
    e->sum = xmalloc((size_t)C * sizeof(double));
    memcpy(e->sum, abs_terms, (size_t)C * sizeof(double));
}

/* Forgets the terms seen so far (before a backward whose gradients are then compared). */
static void terms_clear(void) {
    for (int i = 0; i < g_n_terms; i++) free(g_terms[i].sum);
    free(g_terms);
    g_terms = NULL;
    g_n_terms = 0;
}

static const TermsEntry *terms_of(const float *grad, int64_t n) {
    for (int i = 0; i < g_n_terms; i++)
        if (g_terms[i].dbeta == grad && g_terms[i].C == n) return &g_terms[i];
    return NULL;
}

/* ------------------------------------------------------------------ comparisons */
static int st_index(const Parity *p, const char *key) {
    for (int i = 0; i < p->st.n; i++)
        if (!strcmp(p->st.tensors[i].name, key)) return i;
    return -1;
}

static int is_grad_key(const char *key) {
    if (!strncmp(key, "out.d_loss", 10)) return 0; /* the ZSL D's losses, not gradients */
    return !strncmp(key, "grad.", 5) || !strncmp(key, "out.dfake", 9) || !strncmp(key, "out.dregion", 11) ||
           !strncmp(key, "out.dcnn", 8) || !strncmp(key, "out.dwords", 10) || !strncmp(key, "out.dsent", 9) ||
           !strcmp(key, "out.clip_total_norm");
}

/* n floats of `data`, which lives on device dev, readable on the host: `data` itself on the CPU,
 * else a downloaded copy that *owned holds (free it). */
static const float *host_floats(const float *data, int64_t n, int dev, float **owned) {
    *owned = NULL;
    if (dev == DEVICE_CPU || !data) return data;
    *owned = xmalloc((size_t)(n ? n : 1) * sizeof(float));
    device_download(dev, *owned, data, (size_t)n * sizeof(float));
    return *owned;
}

/* Compares `data` (n floats of host memory) with dump tensor `key`. gated = 0 reports without counting. */
static void compare_ex(Parity *p, const char *key, const float *data, int64_t n, int gated, const char *label) {
    int idx = st_index(p, key);
    if (idx < 0) {
        if (gated) printf("%-58s  (not in the dump)\n", key);
        return;
    }
    const StTensor *t = &p->st.tensors[idx];
    char shape[64];
    int k = snprintf(shape, sizeof shape, "(");
    for (int d = 0; d < t->ndim && k < (int)sizeof shape; d++) k += snprintf(shape + k, sizeof shape - k, d ? ",%lld" : "%lld", (long long)t->shape[d]);
    snprintf(shape + k, sizeof shape - k, ")");
    if (t->numel != n) {
        printf("%-58s %-18s  SIZE MISMATCH: ours %lld elements\n", key, shape, (long long)n);
        if (gated) { p->seen[idx] = 1; p->n++; p->over++; }
        return;
    }
    float *want = xmalloc((size_t)(n ? n : 1) * sizeof(float));
    if (st_read_f32(&p->st, key, want, n)) die("%s", err_msg());
    double num = 0, den = 0, mx = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)data[i] - want[i];
        if (isinf(data[i]) && isinf(want[i]) && (data[i] > 0) == (want[i] > 0)) d = 0; /* masked -inf entries */
        if (isnan(d)) d = INFINITY;
        num += d * d;
        if (isfinite(want[i])) den += (double)want[i] * want[i];
        mx = fmax(mx, fabs(d));
    }
    free(want);
    double rel = den > 0 ? sqrt(num) / sqrt(den) : sqrt(num);
    int cancel = 0;
    if (p->terms && p->n_terms == n) { /* a reduction: judged against its terms (above) */
        double tt = 0;
        for (int64_t i = 0; i < n; i++) tt += p->terms[i] * p->terms[i];
        if (tt > den) {
            double rel_t = sqrt(num) / sqrt(tt);
            cancel = rel_t < rel;
            if (cancel) rel = rel_t;
        }
    }
    double tol = (t->dtype == ST_I64)                 ? 0.0
                 : !strcmp(key, p->trunk_grad_key)   ? p->tol_trunk_grad
                 : is_grad_key(key)                  ? p->tol_grad
                                                     : p->tol_fwd;
    int bad = !(rel <= tol);
    if (gated) {
        p->seen[idx] = 1;
        p->n++;
        p->over += bad;
        p->n_cancel += cancel;
    }
    if (bad || p->verbose || !gated)
        printf("%-58s %-18s max_abs %.3e  rel %.3e%s%s%s\n", key, shape, mx, rel, cancel ? " (of the sum of |terms|)" : "",
               !gated ? "  (reported, not gated)" : bad ? "  OVER" : "", label ? label : "");
}

/* compare_ex of `data` (n floats on device dev: downloaded first when it is not the CPU). */
static void compare_on(Parity *p, const char *key, const float *data, int64_t n, int dev, int gated, const char *label) {
    float *owned;
    const float *h = host_floats(data, n, dev, &owned);
    compare_ex(p, key, h, n, gated, label);
    free(owned);
}

static void compare(Parity *p, const char *key, const Tensor *t) {
    CHECK(t, "parity: no tensor for %s", key);
    compare_on(p, key, t->data, t->n, t->device, 1, NULL);
}

static void comparef(Parity *p, const char *key, const char *fmt_arg, const Tensor *t) {
    char k[256];
    snprintf(k, sizeof k, key, fmt_arg);
    compare(p, k, t);
}

static void compare_scalar(Parity *p, const char *key, float v) { compare_ex(p, key, &v, 1, 1, NULL); }

static void compare_grad(Parity *p, const char *key, const Tensor *t) {
    CHECK(t->grad, "parity: %s has no gradient", key);
    compare_on(p, key, t->grad, t->n, t->device, 1, NULL);
}

/* after.<net>.<key> / grad.<net>.<key> / ema.<net>.<key> for every entry of ps present in the dump. */
static void compare_params(Parity *p, const char *prefix, const ParamSet *ps, int grads, int weights_only, int buffers_only) {
    char key[512];
    for (int i = 0; i < ps->n; i++) {
        const ParamEntry *e = ps->entries[i];
        if (weights_only && e->kind != PARAM_WEIGHT) continue;
        if (buffers_only && e->kind == PARAM_WEIGHT) continue;
        snprintf(key, sizeof key, "%s%s", prefix, e->name);
        if (st_index(p, key) < 0) continue;
        if (e->kind == PARAM_BUFFER_I64) {
            float v = (float)e->ival;
            compare_ex(p, key, &v, 1, 1, NULL);
        } else {
            const TermsEntry *te = grads ? terms_of(e->t.grad, e->t.n) : NULL; /* the kernel's dbeta pointer */
            p->terms = te ? te->sum : NULL;
            p->n_terms = te ? te->C : 0;
            compare_on(p, key, grads ? e->t.grad : e->t.data, e->t.n, e->t.device, 1, NULL);
            p->terms = NULL;
            p->n_terms = 0;
        }
    }
}

/* ------------------------------------------------------------------ dump access */
/* Reads dump tensor `key` (n floats) into dst, which lives on device dev (through a host copy
 * when that is not the CPU). */
static void read_f32_on(Parity *p, const char *key, float *dst, int64_t n, int dev) {
    if (dev == DEVICE_CPU) {
        if (st_read_f32(&p->st, key, dst, n)) die("%s", err_msg());
        return;
    }
    float *h = xmalloc((size_t)(n ? n : 1) * sizeof(float));
    if (st_read_f32(&p->st, key, h, n)) die("%s", err_msg());
    device_upload(dev, dst, h, (size_t)n * sizeof(float));
    free(h);
}

/* A tensor of tp (on tp's device) holding dump tensor `key`. */
static Tensor *dump_tensor(Parity *p, Tape *tp, const char *key) {
    const StTensor *t = st_find(&p->st, key);
    if (!t) die("%s: the dump has no tensor '%s'", p->st.path, key);
    int shape[TENSOR_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) shape[i] = (int)t->shape[i];
    Tensor *x = tape_new(tp, t->ndim, shape);
    read_f32_on(p, key, x->data, x->n, x->device);
    return x;
}

/* Dump tensor `key` as a host array of `n` floats (the caller frees it): the seeds of
 * tape_backward_seeded are host memory on every device. */
static float *dump_host(Parity *p, const char *key, int64_t n) {
    const StTensor *t = st_find(&p->st, key);
    if (!t) die("%s: the dump has no tensor '%s'", p->st.path, key);
    if (t->numel != n) die("%s: '%s' has %lld elements, expected %lld", p->st.path, key, (long long)t->numel, (long long)n);
    float *h = xmalloc((size_t)(n ? n : 1) * sizeof(float));
    if (st_read_f32(&p->st, key, h, n)) die("%s", err_msg());
    return h;
}

static Tensor *dump_tensor_opt(Parity *p, Tape *tp, const char *key) {
    return st_find(&p->st, key) ? dump_tensor(p, tp, key) : NULL;
}

/* A leaf that requires grad, holding a dump tensor (to collect d loss / d it). */
static Tensor *dump_leaf(Parity *p, Tape *tp, const char *key) {
    Tensor *x = dump_tensor(p, tp, key);
    Tensor *l = tape_leaf(tp, x->ndim, x->shape);
    tensor_copy(l, x); /* on the tape's device */
    return l;
}

static int64_t *dump_i64(Parity *p, const char *key, int64_t *n) {
    const StTensor *t = st_find(&p->st, key);
    if (!t) die("%s: the dump has no tensor '%s'", p->st.path, key);
    int64_t *v = xmalloc((size_t)(t->numel ? t->numel : 1) * sizeof(int64_t));
    if (st_read_i64(&p->st, key, v, t->numel)) die("%s", err_msg());
    if (n) *n = t->numel;
    return v;
}

/* Copies tensors `<prefix><key>` of the dump into ps's gradients (grads = 1) or values. */
static void load_from_dump(Parity *p, ParamSet *ps, const char *prefix, int grads, int weights_only) {
    char key[512];
    for (int i = 0; i < ps->n; i++) {
        ParamEntry *e = ps->entries[i];
        if (e->kind != PARAM_WEIGHT && (grads || weights_only)) continue;
        snprintf(key, sizeof key, "%s%s", prefix, e->name);
        if (!st_find(&p->st, key)) continue;
        if (e->kind == PARAM_BUFFER_I64) {
            if (st_read_i64(&p->st, key, &e->ival, 1)) die("%s", err_msg());
        } else {
            read_f32_on(p, key, grads ? e->t.grad : e->t.data, e->t.n, e->t.device);
        }
    }
}

static void load_net(Parity *p, ParamSet *ps, const char *net, int flags) {
    char prefix[128];
    snprintf(prefix, sizeof prefix, "param.%s.", net);
    if (nn_load(ps, &p->st, prefix, flags, NULL)) die("%s", err_msg());
}

static void load_image_encoder(Parity *p, ImageEncoder *ie, const char *trunk_path) {
    char path[1024];
    if (!trunk_path) {
        const char *tf = st_meta(&p->st, "trunk_file");
        if (!tf) die("%s: the dump names no trunk file and stores no trunk; pass --trunk FILE", p->st.path);
        const char *slash = strrchr(p->st.path, '/');
        snprintf(path, sizeof path, "%.*s%s", slash ? (int)(slash - p->st.path + 1) : 0, p->st.path, tf);
        trunk_path = path;
    }
    int inline_trunk = st_find(&p->st, "param.image_encoder.Conv2d_1a_3x3.conv.weight") != NULL;
    if (!inline_trunk) {
        SafeTensors tr;
        if (st_open(&tr, trunk_path)) die("%s", err_msg());
        const char *want = st_meta(&p->st, "trunk_keys");
        if (want && atoi(want) != tr.n)
            die("%s: the dump expects a trunk of %s tensors, this file has %d", trunk_path, want, tr.n);
        if (nn_load(&ie->ps, &tr, "", LOAD_PARTIAL | LOAD_IGNORE_UNEXPECTED | LOAD_NBT_OPTIONAL, NULL)) die("%s", err_msg());
        st_close(&tr);
    }
    load_net(p, &ie->ps, "image_encoder", LOAD_PARTIAL);
    if (nn_load_check_complete(&ie->ps, p->st.path)) die("%s", err_msg());
}

/* ------------------------------------------------------------------ batch */
typedef struct Batch {
    int64_t *captions, *class_ids;
    int *cap_lens;
    int B, T;
} Batch;

static void read_batch(Parity *p, Batch *b) {
    int64_t n, nl;
    b->captions = dump_i64(p, "batch.captions", &n);
    int64_t *lens = dump_i64(p, "batch.cap_lens", &nl);
    b->class_ids = dump_i64(p, "batch.class_ids", NULL);
    b->B = (int)nl;
    b->T = (int)(n / nl);
    b->cap_lens = xmalloc((size_t)b->B * sizeof(int));
    for (int i = 0; i < b->B; i++) b->cap_lens[i] = (int)lens[i];
    free(lens);
    CHECK(b->T == p->cfg.words_num, "parity: captions of width %d, config WORDS_NUM %d", b->T, p->cfg.words_num);
}

static void free_batch(Batch *b) {
    free(b->captions);
    free(b->class_ids);
    free(b->cap_lens);
}

/* ------------------------------------------------------------------ modes */
static void compare_text(Parity *p, const TextEncoderOut *o, const char *suffix) {
    char k[64];
    snprintf(k, sizeof k, "out.sent_lstm%s", suffix);
    compare(p, k, o->sent_lstm);
    snprintf(k, sizeof k, "out.words_emb%s", suffix);
    compare(p, k, o->words_emb);
    snprintf(k, sizeof k, "out.sent_emb%s", suffix);
    compare(p, k, o->sent_emb);
}

static void compare_gen(Parity *p, const GNetOut *g) {
    char k[64];
    for (int i = 0; i < g->n_imgs; i++) {
        snprintf(k, sizeof k, "out.fake_imgs%d", i);
        compare(p, k, g->imgs[i]);
    }
    for (int i = 0; i < g->n_att; i++) {
        snprintf(k, sizeof k, "out.att_maps%d", i);
        compare(p, k, g->att[i]);
    }
}

static void run_sample(Parity *p, int branch) {
    Batch b;
    read_batch(p, &b);
    TextEncoder te;
    GNet g;
    text_encoder_init(&te, &p->cfg);
    gnet_init(&g, &p->cfg, branch);
    load_net(p, &te.ps, "text_encoder", 0);
    load_net(p, &g.ps, "netG", 0);
    te.train = 0;
    g.train = 0;
    paramset_to_device(&te.ps, p->dev); /* loaded on the CPU, replayed on the device */
    paramset_to_device(&g.ps, p->dev);
    Tape tp;
    tape_init_on(&tp, p->dev);
    tape_no_grad_begin(&tp);
    Tensor *z = dump_tensor(p, &tp, "noise.zsl_z.0");
    TextEncoderOut to = text_encoder_forward(&tp, &te, b.captions, b.cap_lens, b.B, z, NULL, NULL);
    compare_text(p, &to, "");
    Tensor *sent = dump_tensor(p, &tp, "out.sent_emb"), *words = dump_tensor(p, &tp, "out.words_emb");
    uint8_t *mask = gan_word_mask(&tp, b.captions, b.B, b.T, words->shape[2]);
    GNetOut go = gnet_forward(&tp, &g, sent, words, mask);
    compare_gen(p, &go);
    tape_no_grad_end(&tp);
    tape_free(&tp);
    text_encoder_free(&te);
    gnet_free(&g);
    free_batch(&b);
}

static void run_damsm(Parity *p, const char *trunk) {
    Batch b;
    read_batch(p, &b);
    TextEncoder te;
    ImageEncoder ie;
    ZslD zd;
    text_encoder_init(&te, &p->cfg);
    image_encoder_init(&ie, &p->cfg);
    zsl_d_init(&zd, &p->cfg);
    load_net(p, &te.ps, "text_encoder", 0);
    load_image_encoder(p, &ie, trunk);
    load_net(p, &zd.ps, "zsl_d", 0);
    DamsmTrainer t;
    damsm_trainer_init(&t, &te, &ie, &zd, &p->cfg);
    if (p->dev != DEVICE_CPU) damsm_trainer_to_device(&t, p->dev); /* loaded on the CPU, replayed on the device */
    Tape io;
    tape_init_on(&io, p->dev);
    DamsmBatch db = {dump_tensor(p, &io, "batch.imgs0"), b.captions, b.cap_lens, b.class_ids, b.B};
    DamsmNoise nz = {{dump_tensor(p, &io, "noise.zsl_z.0"), dump_tensor(p, &io, "noise.zsl_z.1")},
                     {dump_tensor_opt(p, &io, "noise.dropout_mask.0"), dump_tensor_opt(p, &io, "noise.dropout_mask.1")}};
    if (p->cfg.rnn_drop > 0 && !nz.drop_mask[0]) die("%s: RNN_DROP > 0 but no noise.dropout_mask.*", p->st.path);

    /* pass 1, stage a: the encoders */
    DamsmPass1 o;
    memset(&o, 0, sizeof o);
    Tape *te_tp = &t.tape[0];
    tape_reset(te_tp);
    paramset_zero_grad(&te.ps);
    paramset_zero_grad(&ie.ps);
    terms_clear();
    damsm_encode(&t, te_tp, &db, &nz, NULL, &o);
    compare(p, "out.trunk_pool", o.img.trunk_pool);
    compare(p, "out.region_features", o.img.region);
    compare(p, "out.cnn_code", o.img.code);
    compare_text(p, &o.txt, "");
    /* stage b: the losses from the dump's encoder outputs (leaves: their gradients are d loss / d out) */
    Tape lt;
    tape_init_on(&lt, p->dev);
    Tensor *region = dump_leaf(p, &lt, "out.region_features"), *code = dump_leaf(p, &lt, "out.cnn_code");
    Tensor *words = dump_leaf(p, &lt, "out.words_emb"), *sent = dump_leaf(p, &lt, "out.sent_emb");
    DamsmPass1 l;
    memset(&l, 0, sizeof l);
    damsm_losses(&t, &lt, region, code, words, sent, &db, &l);
    tape_backward(&lt, l.loss);
    compare(p, "out.words_sims", l.w.sims);
    compare(p, "out.sent_sims", l.s.sims);
    compare(p, "out.w_loss0", l.w.loss0);
    compare(p, "out.w_loss1", l.w.loss1);
    compare(p, "out.s_loss0", l.s.loss0);
    compare(p, "out.s_loss1", l.s.loss1);
    compare(p, "out.zsl_pred_by_sent", l.pred_sent);
    compare(p, "out.zsl_pred_class_by_sent", l.cls_sent);
    compare(p, "out.zsl_pred_by_emb", l.pred_emb);
    compare(p, "out.zsl_pred_class_by_emb", l.cls_emb);
    const char *gt[4] = {"out.g_loss_adv_sent", "out.g_loss_adv_emb", "out.g_loss_cls_sent", "out.g_loss_cls_emb"};
    for (int i = 0; i < 4; i++) compare(p, gt[i], l.g_terms[i]);
    compare(p, "out.g_loss", l.g_loss);
    compare(p, "out.loss", l.loss);
    compare_grad(p, "out.dregion_features", region);
    compare_grad(p, "out.dcnn_code", code);
    compare_grad(p, "out.dwords_emb", words);
    compare_grad(p, "out.dsent_emb", sent);
    /* stage c: the encoders' backward fed with the dump's d loss / d outputs, then the clip */
    Tensor *outs[4] = {o.img.region, o.img.code, o.txt.words_emb, o.txt.sent_emb};
    const char *dkeys[4] = {"out.dregion_features", "out.dcnn_code", "out.dwords_emb", "out.dsent_emb"};
    float *seeds[4];
    for (int i = 0; i < 4; i++) seeds[i] = dump_host(p, dkeys[i], outs[i]->n);
    tape_backward_seeded(te_tp, 4, outs, (const float *const *)seeds);
    for (int i = 0; i < 4; i++) free(seeds[i]);
    compare_scalar(p, "out.clip_total_norm", damsm_clip(&t));
    compare_params(p, "grad.text_encoder.", &te.ps, 1, 1, 0);
    compare_params(p, "grad.image_encoder.", &ie.ps, 1, 1, 0);

    /* the encoder Adam step, fed with the dump's gradients */
    load_from_dump(p, &te.ps, "grad.text_encoder.", 1, 1);
    load_from_dump(p, &ie.ps, "grad.image_encoder.", 1, 1);
    damsm_encoder_update(&t);
    compare_params(p, "after.text_encoder.", &te.ps, 0, 1, 0);
    compare_params(p, "after.image_encoder.", &ie.ps, 0, 1, 0);

    /* pass 2: the encoders from the dump's updated weights, then the ZSL D step on the dump's codes */
    load_from_dump(p, &te.ps, "after.text_encoder.", 0, 1);
    load_from_dump(p, &ie.ps, "after.image_encoder.", 0, 1);
    DamsmPass2 o2;
    memset(&o2, 0, sizeof o2);
    tape_reset(&t.tape[1]);
    damsm_encode2(&t, &t.tape[1], &db, &nz, NULL, &o2);
    compare(p, "out.trunk_pool.1", o2.img.trunk_pool);
    compare(p, "out.cnn_code.1", o2.img.code);
    compare_text(p, &o2.txt, ".1");
    damsm_zsl_d_backward(&t, &t.tape[1], dump_tensor(p, &lt, "out.cnn_code.1"), dump_tensor(p, &lt, "out.sent_emb.1"), &db, NULL, &o2);
    compare(p, "out.zsl_pred_by_sent.1", o2.pred_sent);
    compare(p, "out.zsl_pred_class_by_sent.1", o2.cls_sent);
    compare(p, "out.zsl_pred_by_emb.1", o2.pred_emb);
    compare(p, "out.zsl_pred_class_by_emb.1", o2.cls_emb);
    const char *dt[4] = {"out.d_loss_adv_sent", "out.d_loss_adv_emb", "out.d_loss_cls_sent", "out.d_loss_cls_emb"};
    for (int i = 0; i < 4; i++) compare(p, dt[i], o2.d_terms[i]);
    compare(p, "out.d_loss", o2.d_loss);
    compare_params(p, "grad.zsl_d.", &zd.ps, 1, 1, 0);
    compare_params(p, "after.image_encoder.", &ie.ps, 0, 0, 1); /* trunk BN running stats after both passes */
    load_from_dump(p, &zd.ps, "grad.zsl_d.", 1, 1);
    damsm_zsl_d_update(&t);
    compare_params(p, "after.zsl_d.", &zd.ps, 0, 1, 0);

    /* end to end (reported, not gated): our own pass 1 from the original weights is not replayed
     * here, since the weights have moved; the gated stages above cover every tensor. */
    tape_free(&lt);
    if (p->dev != DEVICE_CPU) damsm_trainer_to_device(&t, DEVICE_CPU);
    damsm_trainer_free(&t);
    tape_free(&io);
    text_encoder_free(&te);
    image_encoder_free(&ie);
    zsl_d_free(&zd);
    free_batch(&b);
}

static void run_gan(Parity *p, int branch, const char *trunk) {
    Batch b;
    read_batch(p, &b);
    TextEncoder te;
    ImageEncoder ie;
    ZslD zd;
    GNet g;
    DNet d[3], *dp[3];
    text_encoder_init(&te, &p->cfg);
    image_encoder_init(&ie, &p->cfg);
    zsl_d_init(&zd, &p->cfg);
    gnet_init(&g, &p->cfg, branch);
    load_net(p, &te.ps, "text_encoder", 0);
    load_image_encoder(p, &ie, trunk);
    load_net(p, &zd.ps, "zsl_d", 0);
    load_net(p, &g.ps, "netG", 0);
    char name[32];
    for (int i = 0; i < branch; i++) {
        snprintf(name, sizeof name, "netD%d", i);
        dnet_init(&d[i], &p->cfg, 64 << i, name);
        load_net(p, &d[i].ps, name, 0);
        dp[i] = &d[i];
    }
    GanTrainer t;
    gan_trainer_init(&t, &te, &ie, &zd, &g, dp, &p->cfg);
    /* loaded on the CPU, replayed on the device (the CPU keeps its pinned trunk untouched) */
    if (p->dev != DEVICE_CPU) gan_trainer_to_device(&t, p->dev);
    Tape io, tl;
    tape_init_on(&io, p->dev);
    tape_init_on(&tl, p->dev);
    GanBatch gb = {{NULL, NULL, NULL}, b.captions, b.cap_lens, b.class_ids, b.B};
    for (int i = 0; i < branch; i++) {
        snprintf(name, sizeof name, "batch.imgs%d", i);
        gb.imgs[i] = dump_tensor(p, &io, name);
    }
    GanStepOut o;
    memset(&o, 0, sizeof o);

    /* 1. text encoder */
    gan_text(&t, &gb, dump_tensor(p, &io, "noise.zsl_z.0"), NULL, &o);
    compare_text(p, &o.txt, "");
    /* 2. G forward from the dump's embeddings (train mode) */
    Tensor *sent = dump_tensor(p, &io, "out.sent_emb"), *words = dump_tensor(p, &io, "out.words_emb");
    uint8_t *mask = gan_word_mask(&io, b.captions, b.B, b.T, words->shape[2]);
    gan_generate(&t, sent, words, mask, NULL, &o);
    compare_gen(p, &o.gen);
    compare_params(p, "after.netG.", &g.ps, 0, 0, 1); /* BN running stats: one G forward */
    /* 3. D steps on the dump's fakes */
    Tensor *fakes[3];
    for (int i = 0; i < branch; i++) {
        snprintf(name, sizeof name, "out.fake_imgs%d", i);
        fakes[i] = dump_tensor(p, &io, name);
        DLossOut dl;
        terms_clear();
        gan_d_backward(&t, i, gb.imgs[i], fakes[i], sent, &dl);
        comparef(p, "out.netD%s.cond_real", name + 13, dl.cond_real);
        comparef(p, "out.netD%s.cond_fake", name + 13, dl.cond_fake);
        comparef(p, "out.netD%s.cond_wrong", name + 13, dl.cond_wrong);
        comparef(p, "out.netD%s.uncond_real", name + 13, dl.uncond_real);
        comparef(p, "out.netD%s.uncond_fake", name + 13, dl.uncond_fake);
        comparef(p, "out.errD%s", name + 13, dl.loss);
        char pre[32];
        snprintf(pre, sizeof pre, "grad.netD%d.", i);
        compare_params(p, pre, &d[i].ps, 1, 1, 0);
        /* D's Adam step fed the dump's gradients, as G's (stage 6) and the encoders' are: Adam's
         * first step is about -lr sign(g), so a gradient element that nearly cancels, gated
         * above, could flip its sign and move its weight by 2 lr (4e-4) here; after.* tests the
         * optimizer, grad.* the backward */
        load_from_dump(p, &d[i].ps, pre, 1, 1);
        gan_d_update(&t, i);
        snprintf(pre, sizeof pre, "after.netD%d.", i);
        compare_params(p, pre, &d[i].ps, 0, 1, 0);
        load_from_dump(p, &d[i].ps, pre, 0, 1); /* stage 4 uses the dump's updated D */
    }
    /* 4. the G-step losses on the dump's fakes (as leaves: their gradients are dfake) */
    Tensor *leaves[3];
    for (int i = 0; i < branch; i++) {
        snprintf(name, sizeof name, "out.fake_imgs%d", i);
        leaves[i] = dump_leaf(p, &tl, name);
    }
    GanGLoss gl;
    gan_g_loss(&t, &tl, leaves, words, sent, &gb, &gl);
    tape_backward(&tl, gl.total);
    for (int i = 0; i < branch; i++) {
        snprintf(name, sizeof name, "%d", i);
        comparef(p, "out.netD%s.g_cond", name, gl.g_cond[i]);
        comparef(p, "out.netD%s.g_uncond", name, gl.g_uncond[i]);
        comparef(p, "out.g_loss%s", name, gl.g_loss[i]);
    }
    compare(p, "out.trunk_pool", gl.img.trunk_pool);
    compare(p, "out.region_features", gl.img.region);
    compare(p, "out.cnn_code", gl.img.code);
    compare(p, "out.words_sims", gl.w.sims);
    compare(p, "out.sent_sims", gl.s.sims);
    compare(p, "out.w_loss0", gl.w.loss0);
    compare(p, "out.w_loss1", gl.w.loss1);
    compare(p, "out.s_loss0", gl.s.loss0);
    compare(p, "out.s_loss1", gl.s.loss1);
    compare(p, "out.w_loss", gl.w_loss);
    compare(p, "out.s_loss", gl.s_loss);
    compare(p, "out.zsl_pred", gl.zsl_pred);
    compare(p, "out.zsl_pred_class", gl.zsl_cls);
    compare(p, "out.d_loss_adv", gl.adv);
    compare(p, "out.d_loss_cls", gl.cls);
    compare(p, "out.errG_total", gl.total);
    for (int i = 0; i < branch; i++) {
        snprintf(name, sizeof name, "out.dfake_imgs%d", i);
        compare_grad(p, name, leaves[i]);
        char pre[32];
        snprintf(pre, sizeof pre, "after.netD%d.", i);
        compare_params(p, pre, &d[i].ps, 0, 0, 1); /* BN running stats after all D calls */
    }
    /* 5. G's backward: first our own dfake (end to end, reported), then the dump's (gated) */
    float *seeds[3], *seed_own[3]; /* host arrays on every device */
    for (int i = 0; i < branch; i++) seeds[i] = (float *)host_floats(leaves[i]->grad, leaves[i]->n, leaves[i]->device, &seed_own[i]);
    paramset_zero_grad(&g.ps);
    terms_clear();
    tape_backward_seeded(&t.tp_g, branch, o.gen.imgs, (const float *const *)seeds);
    for (int i = 0; i < branch; i++) free(seed_own[i]);
    char key[512];
    for (int i = 0; i < g.ps.n; i++) {
        const ParamEntry *e = g.ps.entries[i];
        if (e->kind != PARAM_WEIGHT) continue;
        snprintf(key, sizeof key, "grad.netG.%s", e->name);
        compare_on(p, key, e->t.grad, e->t.n, e->t.device, 0, "  [end to end]");
    }
    paramset_zero_grad(&g.ps);
    terms_clear();
    for (int i = 0; i < branch; i++) {
        snprintf(name, sizeof name, "out.dfake_imgs%d", i);
        seeds[i] = dump_host(p, name, o.gen.imgs[i]->n);
    }
    tape_backward_seeded(&t.tp_g, branch, o.gen.imgs, (const float *const *)seeds);
    for (int i = 0; i < branch; i++) free(seeds[i]);
    compare_params(p, "grad.netG.", &g.ps, 1, 1, 0);
    /* 6. Adam and EMA fed the dump's gradients */
    load_from_dump(p, &g.ps, "grad.netG.", 1, 1);
    gan_g_update(&t);
    compare_params(p, "after.netG.", &g.ps, 0, 1, 0);
    compare_params(p, "ema.netG.", &t.ema_g, 0, 1, 0);

    if (p->dev != DEVICE_CPU) gan_trainer_to_device(&t, DEVICE_CPU);
    gan_trainer_free(&t);
    tape_free(&io);
    tape_free(&tl);
    text_encoder_free(&te);
    image_encoder_free(&ie);
    zsl_d_free(&zd);
    gnet_free(&g);
    for (int i = 0; i < branch; i++) dnet_free(&d[i]);
    free_batch(&b);
}

/* ------------------------------------------------------------------ command */
static void usage(FILE *f) {
    fprintf(f,
            "usage: attngan parity DUMP.safetensors [--trunk FILE] [--tol-fwd 1e-4] [--tol-grad 1e-3]\n"
            "                      [--tol-trunk-grad 3e-2] [--threads N] [--verbose] [--plain]\n"
            "\n"
            "Replays one iteration of the PyTorch reference (ref_attngan.py --dump-safetensors) and\n"
            "compares every out.*, grad.*, after.* and ema.* tensor of the dump. Prints a row per tensor\n"
            "over tolerance (every row with --verbose): name, shape, max abs error, relative error\n"
            "||ours - ref|| / ||ref||; then 'parity: N tensors, M over tolerance, K missing'. Exit status 1\n"
            "if M or K is not 0. Gradients (grad.*, out.d*) use --tol-grad, everything else --tol-fwd,\n"
            "integer buffers must match exactly. gan_step's d errG / d fake_imgs of the last image comes\n"
            "back through the frozen random Inception trunk, whose ReLU kinks make it ill-conditioned: the\n"
            "reference itself is 1e-2 from float64 there and 6e-3 from its own run at another thread count\n"
            "(tests/parity/trunk_grad_floor.py), so it gets --tol-trunk-grad.\n"
            "A batch norm's bias gradient sums dout over every position; where those terms cancel, its\n"
            "error is judged against the sums of their absolute values (per channel), the scale the\n"
            "error is made on, marked '(of the sum of |terms|)' (on the CPU and hostdev; --plain: not).\n"
            "  --trunk FILE   the Inception trunk the dump was made with (default: the dump's trunk_file\n"
            "                 next to it)\n"
            "  --device cpu|cuda|hostdev  where to replay (default: ATTNGAN_DEVICE, else cpu). The\n"
            "                 networks are loaded on the CPU and moved there, the dump's tensors are\n"
            "                 uploaded, every result is downloaded for the comparison. The tolerances are\n"
            "                 the same on every device: hostdev runs the CPU's kernels (convolutions in\n"
            "                 NCHW, not oneDNN's blocked trunk: far inside them), cuda is fp32 throughout\n"
            "                 (cuBLAS and cuDNN without TF32).\n");
}

int cmd_parity(int argc, char **argv) {
    Parity p;
    memset(&p, 0, sizeof p);
    p.tol_fwd = 1e-4;
    p.tol_grad = 1e-3;
    p.tol_trunk_grad = 3e-2;
    const char *path = NULL, *trunk = NULL;
    int threads = 0, plain = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) p.verbose = 1;
        else if (!strcmp(a, "--plain")) plain = 1;
        else if (i + 1 < argc && !strcmp(a, "--trunk")) trunk = argv[++i];
        else if (i + 1 < argc && !strcmp(a, "--tol-fwd")) { if (parse_double(argv[++i], &p.tol_fwd, a)) return 2; }
        else if (i + 1 < argc && !strcmp(a, "--tol-grad")) { if (parse_double(argv[++i], &p.tol_grad, a)) return 2; }
        else if (i + 1 < argc && !strcmp(a, "--tol-trunk-grad")) { if (parse_double(argv[++i], &p.tol_trunk_grad, a)) return 2; }
        else if (i + 1 < argc && !strcmp(a, "--threads")) { if (parse_int(argv[++i], &threads, a)) return 2; }
        else if (a[0] == '-') { fprintf(stderr, "attngan parity: unknown option %s (or missing value)\n", a); return 2; }
        else if (!path) path = a;
        else { fprintf(stderr, "attngan parity: one dump at a time (got %s and %s)\n", path, a); return 2; }
    }
    if (!path) { usage(stderr); return 2; }
    threads_set(threads);
    if (!plain) batchnorm_terms_probe = terms_probe;
    if (st_open(&p.st, path)) { fprintf(stderr, "attngan parity: %s\n", err_msg()); return 2; }
    const char *fmt = st_meta(&p.st, "format"), *cfgjs = st_meta(&p.st, "config");
    if (!fmt || strcmp(fmt, "ref_attngan-dump-1") || !cfgjs) {
        fprintf(stderr, "attngan parity: %s: not a ref_attngan dump (metadata format '%s')\n", path, fmt ? fmt : "none");
        st_close(&p.st);
        return 2;
    }
    model_config_default(&p.cfg);
    if (model_config_from_json(&p.cfg, cfgjs)) { fprintf(stderr, "attngan parity: %s: %s\n", path, err_msg()); return 2; }
    cJSON *cj = cJSON_Parse(cfgjs);
    cJSON *m = cJSON_GetObjectItemCaseSensitive(cj, "mode");
    char mode[32];
    snprintf(mode, sizeof mode, "%s", cJSON_IsString(m) ? m->valuestring : "?");
    cJSON_Delete(cj);
    p.seen = xcalloc((size_t)p.st.n + 1, 1);
    p.dev = device_current(); /* --device / ATTNGAN_DEVICE, chosen by main.c */
    printf("parity: %s  mode=%s branch=%d correct_mask=%d threads=%d device=%s\n", path, mode, p.cfg.branch_num,
           p.cfg.correct_mask, threads_get(), device_name(p.dev));
    if (!strcmp(mode, "sample")) run_sample(&p, p.cfg.branch_num);
    else if (!strcmp(mode, "damsm_step")) run_damsm(&p, trunk);
    else if (!strcmp(mode, "gan_step")) {
        snprintf(p.trunk_grad_key, sizeof p.trunk_grad_key, "out.dfake_imgs%d", p.cfg.branch_num - 1);
        run_gan(&p, p.cfg.branch_num, trunk);
    }
    else { fprintf(stderr, "attngan parity: %s: unknown mode '%s'\n", path, mode); return 2; }
    for (int i = 0; i < p.st.n; i++) {
        const char *k = p.st.tensors[i].name;
        int checked = !strncmp(k, "out.", 4) || !strncmp(k, "grad.", 5) || !strncmp(k, "after.", 6) || !strncmp(k, "ema.", 4);
        if (checked && !p.seen[i]) {
            printf("%-58s MISSING (not replayed)\n", k);
            p.missing++;
        }
    }
    printf("parity: tolerances fwd %.0e, grad %.0e, trunk grad %.0e (%s)\n", p.tol_fwd, p.tol_grad, p.tol_trunk_grad,
           p.trunk_grad_key[0] ? p.trunk_grad_key : "none here");
    if (p.n_cancel) printf("parity: %d reductions judged against the sums of their |terms| (cancellation)\n", p.n_cancel);
    printf("parity: %d tensors, %d over tolerance, %d missing\n", p.n, p.over, p.missing);
    batchnorm_terms_probe = NULL;
    terms_clear();
    free(p.seen);
    st_close(&p.st);
    return (p.over || p.missing) ? 1 : 0;
}
