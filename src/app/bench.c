/* bench.c: `attngan bench`: the speed of one sample / gan_step / damsm_step iteration at the
 * PyTorch reference's sizes (../shared/reference/ref_attngan.py; docs/PERFORMANCE.md).
 *
 * Same networks, sizes and synthetic batch as the reference's benchmark harness: the seed's
 * config (model_config_default: GF 32, DF 64, E 256, 18 words, 5450 tokens, ...), random weights
 * (AttnGAN's init for G and the Ds, PyTorch's defaults elsewhere), token ids uniform in 1..5449,
 * caption lengths uniform in 5..18 sorted descending (or --cap-lens, e.g. the reference's own),
 * padding 0, class ids in 1..200, images uniform in [-1, 1] at 64/128/256 (gan_step) or
 * --damsm-size (damsm_step, 299). As the reference, BN running statistics that eval mode reads
 * are set from one synthetic batch first (sample: G's; gan_step: the frozen Inception trunk's, on
 * G's train-mode fakes), so random weights keep activations O(1). W warm-up iterations, then K
 * timed ones; FLOPs are counted by the op profiler (src/core/profile.h) during the last warm-up
 * iteration (or during the timed ones with --profile, or one extra untimed iteration when W = 0).
 * The last line is the reference's RESULT line, same keys, same order. */
#include "app.h"
#include "../core/mempool.h"
#include "../core/profile.h"
#include "../ops/conv2d.h"
#include "../nn/init.h"
#include "../train/damsm_step.h"
#include "../train/gan_step.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static const char BENCH_USAGE[] =
    "usage: attngan bench [--mode sample|gan_step|damsm_step] [--branch 1|2|3] [--batch B] [--iters K]\n"
    "                     [--warmup W] [--threads T] [--device D] [--profile] [--seed S] [--damsm-size 299]\n"
    "                     [--cap-lens L1,L2,...] [--correct-mask] [--bf16] [--direct]\n"
    "\n"
    "Times W warm-up then K timed iterations of one mode at the PyTorch reference's sizes with random\n"
    "weights and a synthetic batch (../shared/reference/ref_attngan.py; docs/PERFORMANCE.md), and ends\n"
    "with the reference's line:\n"
    "  RESULT mode=.. device=cpu|cuda|hostdev batch=.. branch=.. threads=.. median_ms=.. min_ms=.. img_s=..\n"
    "         gflop_iter=.. gflops=.. rss_mb=.. cuda_peak_mb=.. precision=fp32|bf16 conv_algo=winograd|direct\n"
    "  --mode          sample (text encoder + G, no grad), gan_step (one AttnGAN+ZSL training\n"
    "                  iteration), damsm_step (one DAMSM+ZSL pretraining iteration); default sample\n"
    "  --branch N      G stages and Ds: 1 (64 px), 2 (128), 3 (256); default 3\n"
    "  --batch B       default 8;  --iters K default 3;  --warmup W default 1\n"
    "  --threads T     OpenMP/OpenBLAS threads (default: the cores free at start: all on an idle machine)\n"
    "  --device D      cpu (default), cuda or hostdev (or ATTNGAN_DEVICE): the networks and the batch\n"
    "                  move there after setup; each timed iteration ends with the device synchronised\n"
    "  --profile       per-op tables (forward and backward apart) over the timed iterations, then the\n"
    "                  slowest oneDNN convolution calls by direction and shape\n"
    "  --cap-lens ...  the B caption lengths (e.g. the '# cap_lens [...]' line the reference prints),\n"
    "                  instead of drawing them uniform in 5..18\n"
    "  --damsm-size S  damsm_step's image size (the encoder resizes to 299; default 299)\n"
    "  --seed S        weights and batch (default 1234)\n"
    "  --correct-mask  G attention with the per-sample word mask (default: the seed's)\n"
    "  --bf16          convolutions with bf16 operands and fp32 accumulation (as ATTNGAN_CONV_PRECISION=bf16;\n"
    "                  docs/PERFORMANCE.md gives its tolerance); default fp32\n"
    "  --direct        no Winograd: every convolution with oneDNN's direct algorithm, as PyTorch (as\n"
    "                  ATTNGAN_CONV_ALGO=direct); default Winograd F(4x4,3x3) for the fp32 3x3 stride-1\n"
    "                  convolutions with 16x16+ outputs and 64+ channels (32+ in the backward and in a\n"
    "                  forward whose whole batch runs in one call; src/ops/conv2d.h)\n";

typedef struct BenchArgs {
    const char *mode;
    int branch, batch, iters, warmup, threads, profile, seed, damsm_size, correct_mask, bf16, direct;
    int cap_lens[64], n_cap_lens;
} BenchArgs;

typedef struct Synth {
    int B, T;
    int64_t *captions, *class_ids;
    int *cap_lens;
    Tensor *imgs[3];   /* 64 << k, k < branch (gan_step) */
    Tensor *dimg;      /* damsm_step's images */
} Synth;

static int cmp_desc(const void *a, const void *b) { return *(const int *)b - *(const int *)a; }

static Tensor *uniform_images(Rng *r, int B, int S) {
    Tensor *t = tensor_alloc(4, (int[]){B, 3, S, S}, false);
    rng_uniform_range(r, t->data, t->n, -1.0f, 1.0f);
    return t;
}

/* The reference's make_batch: lengths uniform in lo..T (lo = min(5, T)) sorted descending, tokens
 * uniform in 1..n_words-1, padding 0, classes in 1..num_classes, images uniform in [-1, 1]. */
static void synth_batch(Synth *s, const ModelConfig *c, int B, int branch, int damsm_size, const int *lens, uint64_t seed) {
    memset(s, 0, sizeof *s);
    Rng r;
    rng_init(&r, seed);
    s->B = B;
    s->T = c->words_num;
    int lo = c->words_num < 5 ? c->words_num : 5;
    s->cap_lens = xmalloc((size_t)B * sizeof(int));
    for (int b = 0; b < B; b++) s->cap_lens[b] = lens ? lens[b] : lo + (int)rng_below(&r, (uint32_t)(c->words_num - lo + 1));
    qsort(s->cap_lens, (size_t)B, sizeof(int), cmp_desc);
    s->captions = xcalloc((size_t)B * s->T, sizeof(int64_t));
    for (int b = 0; b < B; b++)
        for (int t = 0; t < s->cap_lens[b]; t++) s->captions[(size_t)b * s->T + t] = 1 + rng_below(&r, (uint32_t)(c->n_words - 1));
    s->class_ids = xmalloc((size_t)B * sizeof(int64_t));
    for (int b = 0; b < B; b++) s->class_ids[b] = 1 + rng_below(&r, (uint32_t)c->num_classes);
    for (int k = 0; k < branch; k++) s->imgs[k] = uniform_images(&r, B, 64 << k);
    if (damsm_size > 0) s->dimg = uniform_images(&r, B, damsm_size);
}

static void synth_free(Synth *s) {
    free(s->captions);
    free(s->class_ids);
    free(s->cap_lens);
    for (int k = 0; k < 3; k++)
        if (s->imgs[k]) tensor_free(s->imgs[k]);
    if (s->dimg) tensor_free(s->dimg);
}

/* Reference's calibrate_bn for a net whose BN layers all have momentum 0.1: with the running
 * buffers zeroed, one train-mode forward leaves momentum x the batch statistics in them. */
static void bn_from_zero(ParamSet *ps) { memset(ps->buffers, 0, (size_t)ps->n_buffers * sizeof(float)); }
static void bn_unscale(ParamSet *ps) {
    for (int64_t j = 0; j < ps->n_buffers; j++) ps->buffers[j] /= 0.1f;
}

/* Sets G's (sample) or the trunk's (gan_step) BN running statistics as the reference does, from a
 * batch of max(B, 8) synthetic captions. */
static void calibrate(TextEncoder *te, GNet *g, ImageEncoder *ie, const ModelConfig *c, int B, int branch, uint64_t seed) {
    Synth cb;
    synth_batch(&cb, c, B > 8 ? B : 8, 0, 0, NULL, seed);
    Rng r;
    rng_init(&r, seed + 1);
    Tape tp;
    tape_init_on(&tp, DEVICE_CPU); /* before the nets move to their device */
    tape_no_grad_begin(&tp);
    te->train = 0;
    TextEncoderOut to = text_encoder_forward(&tp, te, cb.captions, cb.cap_lens, cb.B, NULL, NULL, &r);
    uint8_t *mask = gan_word_mask(&tp, cb.captions, cb.B, cb.T, to.words_emb->shape[2]);
    if (!ie) bn_from_zero(&g->ps);
    g->train = 1;
    GNetOut go = gnet_forward(&tp, g, to.sent_emb, to.words_emb, mask);
    if (!ie) {
        bn_unscale(&g->ps);
        g->train = 0;
    } else {
        bn_from_zero(&ie->ps);
        ie->train = 1;
        image_encoder_forward(&tp, ie, go.imgs[branch - 1]);
        ie->train = 0;
        bn_unscale(&ie->ps);
    }
    tape_no_grad_end(&tp);
    tape_free(&tp);
    synth_free(&cb);
}

static int64_t count_params(const ParamSet *ps, const char *prefix, int trunk) {
    int64_t n = 0;
    for (int i = 0; i < ps->n; i++) {
        const ParamEntry *e = ps->entries[i];
        if (e->kind != PARAM_WEIGHT) continue;
        if (prefix && strncmp(e->name, prefix, strlen(prefix))) continue;
        if (trunk >= 0 && image_encoder_is_trunk_key(e->name) != trunk) continue;
        n += e->t.n;
    }
    return n;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int parse_lens(const char *s, BenchArgs *a) {
    a->n_cap_lens = 0;
    const char *p = s;
    while (*p) {
        if (*p == '[' || *p == ']' || *p == ',' || *p == ' ') { p++; continue; }
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || a->n_cap_lens == 64) {
            fprintf(stderr, "attngan bench: --cap-lens: '%s' is not a list of up to 64 integers\n", s);
            return -1;
        }
        a->cap_lens[a->n_cap_lens++] = (int)v;
        p = end;
    }
    return 0;
}

typedef struct Nets {
    ModelConfig cfg;
    TextEncoder te;
    ImageEncoder ie;
    ZslD zd;
    GNet g;
    DNet d[3], *dp[3];
    int has_ie, has_g, n_d;
    GanTrainer gt;
    DamsmTrainer dt;
    Tape tp;           /* sample */
    Synth s;
    GanBatch gb;
    DamsmBatch db;
    Rng rng;
} Nets;

static int mode_id(const char *m) { return !strcmp(m, "sample") ? 0 : !strcmp(m, "gan_step") ? 1 : !strcmp(m, "damsm_step") ? 2 : -1; }

static void setup(Nets *n, const BenchArgs *a, int mode) {
    memset(n, 0, sizeof *n);
    model_config_default(&n->cfg);
    ModelConfig *c = &n->cfg;
    c->branch_num = a->branch;
    c->correct_mask = a->correct_mask;
    Rng init;
    rng_init(&init, (uint64_t)a->seed);
    text_encoder_init(&n->te, c);
    init_text_encoder(&n->te, &init);
    if (mode != 0) {
        image_encoder_init(&n->ie, c);
        init_default(&n->ie.ps, &init);
        init_image_encoder_heads(&n->ie, &init);
        zsl_d_init(&n->zd, c);
        init_zsl_d(&n->zd, &init);
        n->has_ie = 1;
    }
    if (mode != 2) {
        gnet_init(&n->g, c, a->branch);
        init_attngan(&n->g.ps, &init);
        n->has_g = 1;
    }
    if (mode == 1) {
        char name[16];
        n->n_d = a->branch;
        for (int i = 0; i < n->n_d; i++) {
            snprintf(name, sizeof name, "netD%d", i);
            dnet_init(&n->d[i], c, 64 << i, name);
            init_attngan(&n->d[i].ps, &init);
            n->dp[i] = &n->d[i];
        }
    }
    synth_batch(&n->s, c, a->batch, mode == 1 ? a->branch : 0, mode == 2 ? a->damsm_size : 0,
                a->n_cap_lens ? a->cap_lens : NULL, (uint64_t)a->seed + 1);
    if (mode != 2) calibrate(&n->te, &n->g, mode == 1 ? &n->ie : NULL, c, a->batch, a->branch, (uint64_t)a->seed + 7);
    rng_init(&n->rng, (uint64_t)a->seed + 2);
    int dev = device_current(); /* --device: the nets and the batch move there */
    for (int k = 0; k < 3; k++)
        if (n->s.imgs[k]) tensor_to_device(n->s.imgs[k], dev);
    if (n->s.dimg) tensor_to_device(n->s.dimg, dev);
    if (mode == 0) {
        n->te.train = 0;
        n->g.train = 0;
        paramset_to_device(&n->te.ps, dev);
        paramset_to_device(&n->g.ps, dev);
        tape_init_on(&n->tp, dev);
    } else if (mode == 1) {
        gan_trainer_init(&n->gt, &n->te, &n->ie, &n->zd, &n->g, n->dp, c);
        gan_trainer_to_device(&n->gt, dev);
        n->gb = (GanBatch){{n->s.imgs[0], n->s.imgs[1], n->s.imgs[2]}, n->s.captions, n->s.cap_lens, n->s.class_ids, n->s.B};
    } else {
        damsm_trainer_init(&n->dt, &n->te, &n->ie, &n->zd, c);
        damsm_trainer_to_device(&n->dt, dev);
        n->db = (DamsmBatch){n->s.dimg, n->s.captions, n->s.cap_lens, n->s.class_ids, n->s.B};
    }
}

static void teardown(Nets *n, int mode) {
    if (mode == 0) tape_free(&n->tp);
    else if (mode == 1) gan_trainer_free(&n->gt);
    else damsm_trainer_free(&n->dt);
    text_encoder_free(&n->te);
    if (n->has_ie) {
        image_encoder_free(&n->ie);
        zsl_d_free(&n->zd);
    }
    if (n->has_g) gnet_free(&n->g);
    for (int i = 0; i < n->n_d; i++) dnet_free(&n->d[i]);
    synth_free(&n->s);
}

static void step(Nets *n, int mode) {
    if (mode == 0) { /* generation: the text encoder and G in eval mode, no graph */
        Tape *tp = &n->tp;
        tape_reset(tp);
        tape_no_grad_begin(tp);
        TextEncoderOut to = text_encoder_forward(tp, &n->te, n->s.captions, n->s.cap_lens, n->s.B, NULL, NULL, &n->rng);
        uint8_t *mask = gan_word_mask(tp, n->s.captions, n->s.B, n->s.T, to.words_emb->shape[2]);
        gnet_forward(tp, &n->g, to.sent_emb, to.words_emb, mask);
        tape_no_grad_end(tp);
    } else if (mode == 1) {
        GanStepOut o;
        gan_step(&n->gt, &n->gb, NULL, &n->rng, &o);
    } else {
        DamsmPass1 p1;
        DamsmPass2 p2;
        damsm_step(&n->dt, &n->db, NULL, &n->rng, &p1, &p2);
    }
    device_sync(device_current()); /* a device's kernels run asynchronously: the time includes them */
}

int cmd_bench(int argc, char **argv) {
    BenchArgs a = {"sample", 3, 8, 3, 1, 0, 0, 1234, 299, 0, 0, 0, {0}, 0};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) { fputs(BENCH_USAGE, stdout); return 0; }
        else if (!strcmp(f, "--profile")) a.profile = 1;
        else if (!strcmp(f, "--correct-mask")) a.correct_mask = 1;
        else if (!strcmp(f, "--bf16")) a.bf16 = 1;
        else if (!strcmp(f, "--direct")) a.direct = 1;
        else if (more && !strcmp(f, "--mode")) a.mode = argv[++i];
        else if (more && !strcmp(f, "--branch")) { if (parse_int(argv[++i], &a.branch, f)) return 2; }
        else if (more && !strcmp(f, "--batch")) { if (parse_int(argv[++i], &a.batch, f)) return 2; }
        else if (more && !strcmp(f, "--iters")) { if (parse_int(argv[++i], &a.iters, f)) return 2; }
        else if (more && !strcmp(f, "--warmup")) { if (parse_int(argv[++i], &a.warmup, f)) return 2; }
        else if (more && !strcmp(f, "--threads")) { if (parse_int(argv[++i], &a.threads, f)) return 2; }
        else if (more && !strcmp(f, "--seed")) { if (parse_int(argv[++i], &a.seed, f)) return 2; }
        else if (more && !strcmp(f, "--damsm-size")) { if (parse_int(argv[++i], &a.damsm_size, f)) return 2; }
        else if (more && !strcmp(f, "--cap-lens")) { if (parse_lens(argv[++i], &a)) return 2; }
        else { fprintf(stderr, "attngan bench: unknown option %s (or missing value; try --help)\n", f); return 2; }
    }
    int mode = mode_id(a.mode);
    const char *bad = mode < 0 ? "--mode must be sample, gan_step or damsm_step"
                      : a.branch < 1 || a.branch > 3 ? "--branch must be 1, 2 or 3"
                      : a.batch < 1 || a.batch > 4096 ? "--batch must be in 1..4096"
                      : mode == 1 && a.batch < 2 ? "gan_step needs --batch >= 2 (cond_wrong term and sent_loss)"
                      : a.iters < 1 ? "--iters must be >= 1"
                      : a.warmup < 0 ? "--warmup must be >= 0"
                      : a.damsm_size < 8 ? "--damsm-size must be >= 8"
                      : a.n_cap_lens && a.n_cap_lens != a.batch ? "--cap-lens needs exactly --batch lengths"
                      : NULL;
    ModelConfig dc;
    model_config_default(&dc);
    for (int i = 0; !bad && i < a.n_cap_lens; i++)
        if (a.cap_lens[i] < 1 || a.cap_lens[i] > dc.words_num) bad = "--cap-lens: every length must be in 1..WORDS_NUM (18)";
    if (bad) { fprintf(stderr, "attngan bench: %s\n", bad); return 2; }
    threads_set(a.threads);
    int threads = threads_get();
    if (a.bf16) conv2d_set_precision(CONV2D_BF16);
    const char *prec = conv2d_get_precision() == CONV2D_BF16 ? "bf16" : "fp32";
    if (a.direct) conv2d_set_algo(CONV2D_DIRECT);
    const char *algo = conv2d_get_algo() == CONV2D_WINOGRAD ? "winograd" : "direct";

    int dev = device_current();
    printf("# attngan bench  mode=%s batch=%d branch=%d threads=%d warmup=%d iters=%d profile=%d precision=%s conv_algo=%s device=%s\n",
           a.mode, a.batch, a.branch, threads, a.warmup, a.iters, a.profile, prec, algo, device_name(dev));
    double t0 = profile_now_ms();
    Nets *n = xcalloc(1, sizeof *n);
    setup(n, &a, mode);
    const ModelConfig *c = &n->cfg;
    printf("# setup %.1f s\n", (profile_now_ms() - t0) * 1e-3);
    printf("# config GF_DIM %d DF_DIM %d EMBEDDING_DIM %d CONDITION_DIM %d R_NUM %d WORDS_NUM %d N_WORDS %d WORD_DIM %d "
           "RNN_DROP %g ZSL_RDC %d ZSL_Z %d ZSL_H %d NUM_CLASSES %d correct_mask %d%s\n",
           c->gf_dim, c->df_dim, c->embedding_dim, c->condition_dim, c->r_num, c->words_num, c->n_words, c->word_dim,
           (double)c->rnn_drop, c->zsl_rdc, c->zsl_z, c->zsl_h, c->num_classes, c->correct_mask,
           mode == 2 ? "" : "  (BN running stats calibrated on one synthetic batch, as the reference)");
    int sum = 0;
    printf("# cap_lens [");
    for (int b = 0; b < a.batch; b++) {
        printf(b ? ", %d" : "%d", n->s.cap_lens[b]);
        sum += n->s.cap_lens[b];
    }
    printf("]  (sum %d, max %d)%s\n", sum, n->s.cap_lens[0], a.n_cap_lens ? "  (given)" : "");
    if (mode == 1)
        for (int k = 0; k < a.branch; k++) printf("# real images %d: (%d, 3, %d, %d)\n", k, a.batch, 64 << k, 64 << k);
    if (mode == 2) printf("# images (%d, 3, %d, %d)\n", a.batch, a.damsm_size, a.damsm_size);

    printf("\n## parameters\n");
    printf("  %-55s %14lld\n", "text encoder (embedding+BiLSTM)", (long long)(count_params(&n->te.ps, NULL, -1) - count_params(&n->te.ps, "zsl_g.", -1)));
    printf("  %-55s %14lld\n", "ZSL G (inside text encoder)", (long long)count_params(&n->te.ps, "zsl_g.", -1));
    if (n->has_ie) {
        printf("  %-55s %14lld\n", "ZSL D", (long long)count_params(&n->zd.ps, NULL, -1));
        printf("  %-55s %14lld\n", "image encoder trainable (emb_features+emb_cnn_code)", (long long)count_params(&n->ie.ps, NULL, 0));
        printf("  %-55s %14lld\n", "image encoder frozen (Inception-v3 trunk)", (long long)count_params(&n->ie.ps, NULL, 1));
    }
    if (n->has_g) {
        char name[64];
        snprintf(name, sizeof name, "G_NET (branch %d)", a.branch);
        printf("  %-55s %14lld\n", name, (long long)count_params(&n->g.ps, NULL, -1));
    }
    for (int i = 0; i < n->n_d; i++) {
        char name[64];
        snprintf(name, sizeof name, "D_NET%d", 64 << i);
        printf("  %-55s %14lld\n", name, (long long)count_params(&n->d[i].ps, NULL, -1));
    }
    printf("\n");

    /* FLOPs come from the profiler: during the last warm-up iteration, the timed ones (--profile)
     * or one extra iteration after the timing (no warm-up) */
    double *times = xmalloc((size_t)a.iters * sizeof(double));
    double flops[2] = {0, 0};
    int flop_iters = 0;
    for (int it = 0; it < a.warmup + a.iters; it++) {
        int timed = it >= a.warmup;
        int count = a.profile ? timed : (it == a.warmup - 1);
        if (count && (!a.profile || it == a.warmup)) profile_reset();
        profile_enable(count);
        double t1 = profile_now_ms();
        step(n, mode);
        double dt = profile_now_ms() - t1;
        profile_enable(0);
        if (count) flop_iters++;
        printf("  %s %3d: %10.1f ms\n", timed ? "iter  " : "warmup", it, dt);
        fflush(stdout);
        if (timed) times[it - a.warmup] = dt;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mb = (double)ru.ru_maxrss / 1024.0;
    if (!flop_iters) { /* no warm-up: one extra, untimed iteration for the count */
        profile_reset();
        profile_enable(1);
        step(n, mode);
        profile_enable(0);
        flop_iters = 1;
    }
    for (int d = 0; d < 2; d++) flops[d] = profile_total(d).flops / flop_iters;
    double total_ms = 0;
    for (int i = 0; i < a.iters; i++) total_ms += times[i];
    if (a.profile) {
        profile_print(stdout, total_ms, a.iters);
        profile_print_details(stdout, "oneDNN convolutions by direction and shape (inside the rows above; +x: "
                              "activations converted, +w: weights reordered)", total_ms, a.iters, 25);
    }

    qsort(times, (size_t)a.iters, sizeof(double), cmp_double);
    /* statistics.median: the mean of the two middle values for an even count */
    double med = a.iters % 2 ? times[a.iters / 2] : 0.5 * (times[a.iters / 2 - 1] + times[a.iters / 2]);
    double mn = times[0];
    double gflop = (flops[0] + flops[1]) * 1e-9;
    printf("\n## FLOPs per iteration (conv2d, linear, bmm, bilstm; 1 MAC = 2 FLOP)\n");
    printf("  forward %.3f GFLOP  backward %.3f GFLOP  bwd/fwd %.2f\n", flops[0] * 1e-9, flops[1] * 1e-9,
           flops[0] > 0 ? flops[1] / flops[0] : 0.0);
    printf("\n## result\n");
    printf("  median %.1f ms   min %.1f ms   (%d iters)\n", med, mn, a.iters);
    printf("  images/s %.3f (median)  %.3f (best)\n", a.batch / (med * 1e-3), a.batch / (mn * 1e-3));
    printf("  GFLOP/iter %.1f   achieved %.1f GFLOP/s (median)  %.1f GFLOP/s (best)\n", gflop, gflop / (med * 1e-3),
           gflop / (mn * 1e-3));
    MempoolStats ps = mempool_stats();
    printf("  peak RSS %.0f MiB   tensor pool: peak live %.0f MiB, peak resident %.0f MiB (%ld allocations)\n", rss_mb,
           (double)ps.peak_live / (1 << 20), (double)ps.peak_top / (1 << 20), ps.n_alloc);
    DevPoolStats dps = device_pool_stats(dev);
    if (dev != DEVICE_CPU)
        printf("  device %s pool: peak live %.0f MiB, cached %.0f MiB (%zu raw allocations, %zu requests)\n", device_name(dev),
               (double)dps.peak_live / (1 << 20), (double)dps.cached / (1 << 20), dps.n_raw, dps.n_alloc);
    /* the reference's keys: device=cuda and cuda_peak_mb (torch.cuda.max_memory_allocated) on a GPU */
    printf("RESULT mode=%s device=%s batch=%d branch=%d threads=%d median_ms=%.1f min_ms=%.1f img_s=%.3f gflop_iter=%.1f "
           "gflops=%.1f rss_mb=%.0f cuda_peak_mb=%.0f precision=%s conv_algo=%s\n",
           a.mode, device_name(dev), a.batch, a.branch, threads, med, mn, a.batch / (med * 1e-3), gflop, gflop / (med * 1e-3), rss_mb,
           dev == DEVICE_CUDA ? (double)dps.peak_live / (1 << 20) : 0.0, prec, algo);
    free(times);
    teardown(n, mode);
    free(n);
    return 0;
}
