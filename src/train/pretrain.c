/* pretrain.c: the DAMSM + ZSL pretraining program; see pretrain.h.
 *
 * Per epoch: the damsm_step of every batch (pass 1 on the encoders, clip, Adam; pass 2 the ZSL D),
 * then the held-out evaluation (the DAMSM losses on the test split, as pretrain_DAMSM.py's
 * evaluate, and text-to-image retrieval top-1 among 100 images), then the learning-rate decay
 * (lr *= EXTRA.LR_DECAY while lr > ENCODER_LR / 10: the seed computed it but never gave it to the
 * optimizer; here it reaches it), then every SNAPSHOT_INTERVAL epochs a checkpoint and the
 * exported encoders (text_encoder.safetensors, image_encoder.safetensors (the heads; the trunk is
 * named in config.json), zsl_d.safetensors, vocab.txt).
 *
 * EXTRA.CACHE_TRUNK_FEATURES: the trunk is frozen, so its Mixed_6e (768x17x17) and pooled (2048)
 * features are computed once per photo (centre crop, eval-mode BN: the seed's train-mode trunk BN
 * cannot be cached) and kept as fp16 in out/cache; augmentation is then a horizontal flip of the
 * feature map (approximate: the trunk is only nearly flip-equivariant) with the caption sampling of
 * the loader. EXTRA.CACHE_VIEWS V > 1 adds AttnGAN's random crop back: V - 1 more views of every
 * training photo, each a fixed random crop and flip (trunk_cache.h), cached beside the centre crop
 * (cache/train_v1_trunk.safetensors, ...); each sample of each epoch takes one of the V at random
 * (then the flip). The held-out evaluation reads the centre crops. Each step trains the heads, the
 * text encoder and the ZSL networks. */
#include "pretrain.h"
#include "../data/loader.h"
#include "../io/safetensors.h"
#include "../nn/init.h"
#include "../nn/load.h"
#include "checkpoint.h"
#include "damsm_step.h"
#include "trunk_cache.h"
#include "lanes.h"
#include "../ops/batchnorm.h"
#include "../core/dist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MIXED_N (768 * 17 * 17)
#define POOL_N 2048

/* ------------------------------------------------------------------ feature cache */
/* trunk_cache.h: fp16 features of every present photo, written in parts as they are computed */
typedef TrunkCache FeatCache;

static void cache_free(FeatCache *c) { trunk_cache_free(c); }

static int stop_requested(void *ctx) {
    (void)ctx;
    return run_stop_signal() != NULL;
}

/* Computes (or reads back) the trunk features of every present photo of a split: 0, 1 when a
 * signal stopped it (the photos done are kept; the message is printed here), -1 with err_msg(). */
static int cache_build(FeatCache *c, const Cub *cub, const CubSplit *s, ImageEncoder *ie, const Run *r, const char *name, int view) {
    char dir[2300], tag[1500];
    snprintf(dir, sizeof dir, "%s/cache", r->out);
    int pad = train_config_tight_pad(&r->tc), S = r->tc.extra.cache_image_size;
    /* the tag names what the features are of: a file made otherwise is rebuilt, not reused */
    if (pad) snprintf(tag, sizeof tag, "%s:%s:centre%d:tight-%s", r->tc.extra.inception, r->tc.extra.inception_weights, S, r->tc.extra.tight_crop_pad);
    else snprintf(tag, sizeof tag, "%s:%s:centre%d", r->tc.extra.inception, r->tc.extra.inception_weights, S);
    if (view > 0) { /* the same framing, a random crop and flip of its own */
        size_t l = strlen(tag);
        snprintf(tag + l, sizeof tag - l, ":crop%d-of-%d:view%d", S, S * 76 / 64, view);
    }
    TrunkCacheSpec sp = {dir, name, tag, S, pad, r->tc.text.words_num, 0, stop_requested, NULL, stdout, view};
    run_trap_signals(); /* Ctrl-C stops after the current batch of photos, keeping what is done */
    int done = 0, total = 0, rc = trunk_cache_build(c, cub, s, ie, &sp, &done, &total);
    if (rc == 1)
        fprintf(stderr, "attngan pretrain: stopped (%s) while computing the trunk features: %d of the %d %s photos are kept in %s/%s_trunk.parts; "
                "the same command continues from there\n", run_stop_signal(), done, total, name, dir, name);
    return rc;
}

/* The training split's n_views views (view 0, the centre crop, in train_trunk) and the test split's
 * centre crops: 0, 1 stopped by a signal, -1 with err_msg(). */
static int cache_build_all(FeatCache *ctrain, int n_views, FeatCache *ctest, const Cub *cub, ImageEncoder *ie, const Run *r) {
    int rc = cache_build(&ctrain[0], cub, &cub->train, ie, r, "train", 0);
    if (rc == 0) rc = cache_build(ctest, cub, &cub->test, ie, r, "test", 0);
    for (int v = 1; v < n_views && rc == 0; v++) {
        char name[32];
        snprintf(name, sizeof name, "train_v%d", v);
        rc = cache_build(&ctrain[v], cub, &cub->train, ie, r, name, v);
        if (rc == 0 && (ctrain[v].n != ctrain[0].n || memcmp(ctrain[v].img, ctrain[0].img, (size_t)ctrain[0].n * sizeof(int))))
            rc = err_set("the cached view %d of the training photos holds other photos than the centre crops (%d against %d): remove %s/cache/%s_trunk.*",
                         v, ctrain[v].n, ctrain[0].n, r->out, name);
    }
    return rc;
}

/* ------------------------------------------------------------------ batches on cached features */
typedef struct CBatch {
    int B, T;
    int64_t *captions, *class_ids;
    int *cap_lens, *rows;
    Tensor *mixed, *pool;  /* on the tape */
} CBatch;

/* Samples `B` cached photos at positions pos0.. of the epoch's order, each with a random caption
 * (and flip when augment; and one of the n_views views c[0..n_views) when n_views > 1), sorted by
 * caption length; tensors on tp. */
static void cached_batch(Tape *tp, const FeatCache *c, int n_views, const CubSplit *s, const int *order, int pos0, int B, int T,
                         uint64_t seed, int epoch, int augment, CBatch *cb) {
    cb->B = B;
    cb->T = T;
    cb->captions = tape_calloc(tp, (size_t)B * T * sizeof(int64_t));
    cb->class_ids = tape_alloc(tp, (size_t)B * sizeof(int64_t));
    cb->cap_lens = tape_alloc(tp, (size_t)B * sizeof(int));
    cb->rows = tape_alloc(tp, (size_t)B * sizeof(int));
    int *flip = tape_alloc(tp, (size_t)B * sizeof(int)), *perm = tape_alloc(tp, (size_t)B * sizeof(int));
    int *view = tape_alloc(tp, (size_t)B * sizeof(int));
    int64_t *caps = tape_calloc(tp, (size_t)B * T * sizeof(int64_t));
    int *lens = tape_alloc(tp, (size_t)B * sizeof(int));
    for (int b = 0; b < B; b++) {
        int pos = pos0 + b, row = order[pos];
        Rng r;
        rng_init(&r, loader_mix64(loader_mix64(seed + 0x7777ULL) ^ ((uint64_t)epoch << 32 | (uint32_t)pos)));
        const CubImage *im = &s->images[c->img[row]];
        int k = (int)rng_below(&r, CUB_CAPTIONS_PER_IMAGE);
        lens[b] = caption_sample(im->caps[k], im->cap_len[k], T, &r, caps + (int64_t)b * T);
        flip[b] = augment ? (int)rng_below(&r, 2) : 0;
        view[b] = n_views > 1 ? (int)rng_below(&r, (uint64_t)n_views) : 0; /* drawn last: one view draws what it always drew */
        cb->rows[b] = row;
        perm[b] = b;
    }
    for (int i = 1; i < B; i++) { /* stable sort by length, longest first */
        int p = perm[i], j = i - 1;
        while (j >= 0 && lens[perm[j]] < lens[p]) { perm[j + 1] = perm[j]; j--; }
        perm[j + 1] = p;
    }
    cb->mixed = TNEW(tp, B, 768, 17, 17);
    cb->pool = TNEW(tp, B, POOL_N);
    /* filled on the host, then copied to the tape's device */
    float *hmixed = xmalloc((size_t)cb->mixed->n * sizeof(float)), *hpool = xmalloc((size_t)cb->pool->n * sizeof(float));
    int *rows = tape_alloc(tp, (size_t)B * sizeof(int));
    for (int i = 0; i < B; i++) {
        int b = perm[i], row = cb->rows[b];
        rows[i] = row;
        memcpy(cb->captions + (int64_t)i * T, caps + (int64_t)b * T, (size_t)T * sizeof(int64_t));
        cb->cap_lens[i] = lens[b];
        cb->class_ids[i] = s->images[c->img[row]].class_id;
        const FeatCache *cv = &c[view[b]];
        const uint16_t *src = cv->mixed + (int64_t)row * MIXED_N;
        float *dst = hmixed + (int64_t)i * MIXED_N;
        for (int ch = 0; ch < 768; ch++)
            for (int y = 0; y < 17; y++)
                for (int x = 0; x < 17; x++)
                    dst[(ch * 17 + y) * 17 + x] = st_f16_to_f32(src[(ch * 17 + y) * 17 + (flip[b] ? 16 - x : x)]);
        for (int j = 0; j < POOL_N; j++) hpool[(int64_t)i * POOL_N + j] = st_f16_to_f32(cv->pool[(int64_t)row * POOL_N + j]);
    }
    tensor_upload(cb->mixed, hmixed);
    tensor_upload(cb->pool, hpool);
    free(hmixed);
    free(hpool);
    cb->rows = rows;
}

static void epoch_order(int n, uint64_t seed, int epoch, int shuffle, int *order) {
    for (int i = 0; i < n; i++) order[i] = i;
    if (shuffle) loader_shuffle(order, n, seed, epoch);
}

/* ------------------------------------------------------------------ evaluation */
typedef struct EvalOut {
    float w_loss, s_loss;       /* held-out DAMSM losses (both directions summed), per batch */
    float top1, chance;         /* text-to-image retrieval among folds of 100 */
    int n_images;
} EvalOut;

/* Sentence-level retrieval top-1 over folds of `fold` photos: each caption against the fold's images. */
static float retrieval_top1(const float *codes, const float *sents, int n, int E, int fold, int *n_used) {
    int hits = 0, total = 0;
    for (int f0 = 0; f0 + fold <= n; f0 += fold) {
        for (int i = 0; i < fold; i++) {
            const float *s = sents + (int64_t)(f0 + i) * E;
            double sn = 0;
            for (int k = 0; k < E; k++) sn += (double)s[k] * s[k];
            int best = -1;
            double bv = -2;
            for (int j = 0; j < fold; j++) {
                const float *c = codes + (int64_t)(f0 + j) * E;
                double dot = 0, cn = 0;
                for (int k = 0; k < E; k++) { dot += (double)c[k] * s[k]; cn += (double)c[k] * c[k]; }
                double cos = dot / fmax(sqrt(cn * sn), 1e-8);
                if (cos > bv) { bv = cos; best = j; }
            }
            hits += best == i;
            total++;
        }
    }
    *n_used = total;
    return total ? (float)hits / total : 0.0f;
}

static EvalOut evaluate_cached(DamsmTrainer *t, const FeatCache *c, const CubSplit *s, const ModelConfig *mc, uint64_t seed, int B,
                               int max_batches) {
    EvalOut e = {0};
    int n = c->n;
    int *order = xmalloc((size_t)(n ? n : 1) * sizeof(int));
    /* a fixed shuffle (as AttnGAN's shuffled val loader): consecutive photos share a class, and
     * same-class pairs are masked out of the DAMSM losses and would crowd the retrieval folds */
    epoch_order(n, seed, 0, 1, order);
    int E = mc->embedding_dim, nb = n / B < max_batches ? n / B : max_batches;
    float *codes = xmalloc((size_t)(n ? n : 1) * E * sizeof(float)), *sents = xmalloc((size_t)(n ? n : 1) * E * sizeof(float));
    int te_train = t->te->train;
    t->te->train = 0; /* AttnGAN's evaluate: eval mode */
    Rng rz;
    rng_init(&rz, seed ^ 0xe7a1ULL);
    Tape tp;
    tape_init(&tp);
    double wl = 0, sl = 0;
    int batches = 0;
    for (int p0 = 0; p0 + B <= n; p0 += B) {
        tape_reset(&tp);
        tape_no_grad_begin(&tp);
        CBatch cb;
        cached_batch(&tp, c, 1, s, order, p0, B, mc->words_num, seed, 0, 0, &cb);
        Tensor *region = conv2d_layer_forward(&tp, &t->ie->emb_features, cb.mixed);
        Tensor *code = image_encoder_code(&tp, t->ie, cb.mixed, cb.pool);
        TextEncoderOut txt = text_encoder_forward(&tp, t->te, cb.captions, cb.cap_lens, B, NULL, NULL, &rz);
        tensor_download(code, codes + (int64_t)p0 * E); /* B rows each, in batch order */
        tensor_download(txt.sent_emb, sents + (int64_t)p0 * E);
        if (batches < nb) {
            DamsmLoss w = damsm_words_loss(&tp, mc, region, txt.words_emb, cb.cap_lens, cb.class_ids, B);
            DamsmLoss sl_ = damsm_sent_loss(&tp, mc, code, txt.sent_emb, cb.class_ids, B);
            wl += tensor_item(w.loss0) + tensor_item(w.loss1);
            sl += tensor_item(sl_.loss0) + tensor_item(sl_.loss1);
            batches++;
        }
        tape_no_grad_end(&tp);
    }
    t->te->train = te_train;
    e.w_loss = batches ? (float)(wl / batches) : NAN;
    e.s_loss = batches ? (float)(sl / batches) : NAN;
    int used = 0;
    /* rows of the folds follow the (sorted-within-batch) order: pair code i with sent i */
    e.top1 = retrieval_top1(codes, sents, (n / B) * B, E, 100, &used);
    e.chance = 0.01f;
    e.n_images = used;
    tape_free(&tp);
    free(order);
    free(codes);
    free(sents);
    return e;
}

/* ------------------------------------------------------------------ exports and checkpoints */
static int skip_trunk_weight(const char *key) {
    if (!image_encoder_is_trunk_key(key)) return 0;
    size_t n = strlen(key);
    int buffer = (n > 12 && !strcmp(key + n - 12, "running_mean")) || (n > 11 && !strcmp(key + n - 11, "running_var")) ||
                 strstr(key, "num_batches_tracked") != NULL;
    return !buffer; /* the trunk's weights come from EXTRA.INCEPTION_WEIGHTS; its BN statistics are saved */
}

static int export_models(const Run *r, TextEncoder *te, ImageEncoder *ie, ZslD *zd, ZslD *zdw, const Cub *cub) {
    char path[2400];
    struct { const char *name; ParamSet *ps; int (*skip)(const char *); } nets[4] = {
        {"text_encoder", &te->ps, NULL}, {"image_encoder", &ie->ps, skip_trunk_weight}, {"zsl_d", &zd->ps, NULL},
        {"zsl_dw", zdw ? &zdw->ps : NULL, NULL}};
    for (int i = 0; i < (zdw ? 4 : 3); i++) {
        StWriter *w = st_writer_new();
        for (int k = 0; k < nets[i].ps->n; k++) {
            const ParamEntry *e = nets[i].ps->entries[k];
            if (nets[i].skip && nets[i].skip(e->name)) continue;
            if (e->kind == PARAM_BUFFER_I64) st_writer_add(w, e->name, ST_I64, 0, NULL, &e->ival);
            else {
                int64_t sh[TENSOR_MAX_DIMS];
                for (int d = 0; d < e->t.ndim; d++) sh[d] = e->t.shape[d];
                st_writer_add(w, e->name, ST_F32, e->t.ndim, sh, e->t.data);
            }
        }
        st_writer_meta(w, "format", "attngan-model-1");
        st_writer_meta(w, "inception", r->tc.extra.inception);
        st_writer_meta(w, "inception_weights", r->tc.extra.inception_weights);
        snprintf(path, sizeof path, "%s/%s.safetensors", r->out, nets[i].name);
        int rc = st_writer_write(w, path);
        st_writer_free(w);
        if (rc) return -1;
    }
    snprintf(path, sizeof path, "%s/vocab.txt", r->out);
    return vocab_save(&cub->vocab, path);
}

/* The checkpoint's networks and optimizers: 3 of each, 4 with the word-level ZSL D */
static int ckpt_sets(DamsmTrainer *t, CkptNet nets[4], CkptOpt opts[4]) {
    nets[0] = (CkptNet){"text_encoder", &t->te->ps, NULL};
    nets[1] = (CkptNet){"image_encoder", &t->ie->ps, skip_trunk_weight};
    nets[2] = (CkptNet){"zsl_d", &t->zd->ps, NULL};
    opts[0] = (CkptOpt){"opt_text_encoder", &t->opt_te};
    opts[1] = (CkptOpt){"opt_image_encoder", &t->opt_ie};
    opts[2] = (CkptOpt){"opt_zsl_d", &t->opt_zd};
    if (!t->zdw) return 3;
    nets[3] = (CkptNet){"zsl_dw", &t->zdw->ps, NULL};
    opts[3] = (CkptOpt){"opt_zsl_dw", &t->opt_zdw};
    return 4;
}

static int save_checkpoint(Run *r, DamsmTrainer *t, const Rng *rng, int n_rng, float lr) {
    CkptNet nets[4];
    CkptOpt opts[4];
    int n = ckpt_sets(t, nets, opts);
    cJSON *s = run_state(r);
    run_put_rng(s, rng, n_rng);
    cJSON_AddNumberToObject(s, "lr", lr);
    int rc = ckpt_save(r->out, r->step, nets, n, opts, n, s, r->tc.extra.keep_checkpoints);
    cJSON_Delete(s);
    return rc;
}

/* ------------------------------------------------------------------ the program */
static void print_eval(Run *r, const char *split, const EvalOut *e) {
    printf("epoch %d step %lld  %s: w_loss %.4f  s_loss %.4f  retrieval top-1 %.3f over %d captions (chance %.3f)\n", r->epoch,
           (long long)r->step, split, e->w_loss, e->s_loss, e->top1, e->n_images, e->chance);
    const char *names[4] = {"w_loss", "s_loss", "top1", "chance"};
    float v[4] = {e->w_loss, e->s_loss, e->top1, e->chance};
    char tag[96];
    for (int i = 0; i < 4; i++) {
        snprintf(tag, sizeof tag, "eval/%s_%s", split, names[i]);
        tb_scalar(r->tb, tag, v[i], r->step);
    }
}

/* The checkpoint and the exported encoders are written from the CPU: the trainer moves there and
 * back (dev: where it runs). */
static int save_from(Run *r, DamsmTrainer *t, const Rng *rng, int n_rng, float lr, const Cub *cub, int dev) {
    if (!dist_is_root()) { /* rank 0 writes; the others give it their random streams */
        run_put_rng(NULL, rng, n_rng);
        return dist_agree(0) ? err_set("rank 0 could not write the checkpoint (its message says why)") : 0;
    }
    if (dev != DEVICE_CPU) damsm_trainer_to_device(t, DEVICE_CPU);
    int rc = save_checkpoint(r, t, rng, n_rng, lr) || export_models(r, t->te, t->ie, t->zd, t->zdw, cub);
    if (dev != DEVICE_CPU) damsm_trainer_to_device(t, dev);
    return dist_agree(rc ? -1 : 0);
}

int pretrain_main(const RunArgs *a) {
    Run r;
    if (run_open(&r, a, "cfg/DAMSM/bird.yml")) { fprintf(stderr, "attngan pretrain: %s\n", err_msg()); return 2; }
    TrainConfig *tc = &r.tc;
    if (!a->quiet) train_config_print(tc, stdout);
    Cub cub;
    if (cub_open(&cub, tc->data_dir)) { fprintf(stderr, "attngan pretrain: %s\n", err_msg()); run_close(&r); return 2; }
    ModelConfig mc;
    train_config_to_model(tc, &mc);
    mc.n_words = cub.vocab.n;
    run_class_setup(&r, &cub, &mc);
    TextEncoder te;
    ImageEncoder ie;
    ZslD zd;
    text_encoder_init(&te, &mc);
    image_encoder_init(&ie, &mc);
    zsl_d_init(&zd, &mc);
    Rng init;
    rng_init(&init, (uint64_t)tc->extra.seed * 2 + 1);
    init_text_encoder(&te, &init);
    init_image_encoder_heads(&ie, &init);
    init_zsl_d(&zd, &init);
    ZslD zdw; /* ZSL.WORD_LEVEL: the word-level ZSL D (initialised after everything else) */
    if (mc.zsl_word) {
        zsl_d_init_named(&zdw, &mc, "zsl_dw");
        init_zsl_d(&zdw, &init);
    }
    if (run_load_inception(&r, &ie)) { fprintf(stderr, "attngan pretrain: %s\n", err_msg()); return 2; }
    if (tc->train.net_e[0] && !r.resume_state) {
        SafeTensors st;
        if (st_open(&st, tc->train.net_e) || nn_load(&te.ps, &st, "", 0, NULL)) {
            fprintf(stderr, "attngan pretrain: TRAIN.NET_E: %s\n", err_msg());
            return 2;
        }
        st_close(&st);
    }
    DamsmTrainer t;
    damsm_trainer_init(&t, &te, &ie, &zd, &mc);
    if (mc.zsl_word) damsm_trainer_set_word_d(&t, &zdw);
    if (dist_is_root()) {
        char vpath[2400];
        snprintf(vpath, sizeof vpath, "%s/vocab.txt", r.out);
        if (vocab_save(&cub.vocab, vpath)) { fprintf(stderr, "attngan pretrain: %s\n", err_msg()); return 1; }
    }
    /* EXTRA.GRAD_ACCUM: A micro-batches per step, lane j of rank r being slot r * A + j of the
     * step's W * A (its data and its random stream; slot 0's is a single process's) */
    int A = tc->extra.grad_accum;
    Rng rng[LANES_MAX];
    for (int j = 0; j < A; j++) rng_init(&rng[j], dist_rank_seed((uint64_t)tc->extra.seed, dist_rank() * A + j));
    float lr = (float)tc->train.encoder_lr;
    if (r.resume_state) {
        CkptNet nets[4];
        CkptOpt opts[4];
        int n = ckpt_sets(&t, nets, opts);
        cJSON *st = NULL;
        if (ckpt_load(r.resume_dir, nets, n, opts, n, &st) || run_get_rng(st, rng, A)) {
            fprintf(stderr, "attngan pretrain: resume: %s\n", err_msg());
            return 2;
        }
        r.step = (int64_t)cJSON_GetObjectItemCaseSensitive(st, "step")->valuedouble;
        r.epoch = (int)cJSON_GetObjectItemCaseSensitive(st, "epoch")->valuedouble;
        r.batch_in_epoch = (int)cJSON_GetObjectItemCaseSensitive(st, "batch_in_epoch")->valuedouble;
        lr = (float)cJSON_GetObjectItemCaseSensitive(st, "lr")->valuedouble;
        cJSON_Delete(st);
        printf("resumed from %s: step %lld, epoch %d, batch %d\n", r.resume_dir, (long long)r.step, r.epoch, r.batch_in_epoch);
    }
    t.opt_te.lr = t.opt_ie.lr = lr;
    int dev = device_current(); /* --device: the steps (and the feature cache) run there; loading and saving on the CPU */
    if (dev != DEVICE_CPU) {
        damsm_trainer_to_device(&t, dev);
        printf("training on the device %s\n", device_name(dev));
    }
    Lanes lanes;
    lanes_init(&lanes, A);
    if (A > 1) { /* the sets whose gradients and buffers the lanes keep apart, as they are now */
        lanes_add_set(&lanes, &te.ps);
        lanes_add_set(&lanes, &ie.ps);
        lanes_add_set(&lanes, &zd.ps);
        if (mc.zsl_word) lanes_add_set(&lanes, &zdw.ps);
        printf("gradient accumulation: %d micro-batches of %d per step (EXTRA.GRAD_ACCUM)\n", A, tc->train.batch_size);
    }
    int B = tc->train.batch_size, rc = 0, W = dist_size(), rank = dist_rank();
    batchnorm_set_sync(tc->extra.sync_bn); /* EXTRA.SYNC_BN: the ranks' batch statistics (a no-op in one process) */
    if (tc->extra.sync_bn) printf("EXTRA.SYNC_BN: batch norm with the statistics of all %d rank(s)' batches%s\n", W,
                                  A > 1 ? "; each of the EXTRA.GRAD_ACCUM micro-batches keeps its own" : "");
    if (W > 1) { /* the ranks start from the same bits (the same seeds and files) */
        ParamSet *sets[4] = {&te.ps, &ie.ps, &zd.ps, mc.zsl_word ? &zdw.ps : NULL};
        for (int i = 0; i < 4; i++)
            if (sets[i] && dist_check_same(sets[i], "at the start")) { fprintf(stderr, "attngan pretrain: %s\n", err_msg()); return 2; }
        printf("data-parallel: %d ranks, each a batch of %d per step (%d in all)\n", W, B, W * B);
    }
    FeatCache ctrain[TRUNK_CACHE_VIEWS_MAX] = {{0}}, ctest = {0};
    const int n_views = tc->extra.cache_trunk_features ? tc->extra.cache_views : 1;
    Loader *loader[LANES_MAX] = {NULL};
    int per_epoch;
    if (tc->extra.cache_trunk_features) {
        /* data-parallel: rank 0 computes the features (it alone writes), then the others read them */
        int crc = 0;
        if (dist_is_root()) crc = cache_build_all(ctrain, n_views, &ctest, &cub, &ie, &r);
        if (W > 1) {
            int any = crc;
            dist_bcast(&any, sizeof any);
            if (!dist_is_root() && any) crc = any == 1 ? 1 : err_set("rank 0 could not compute the trunk features (its message says why)");
            if (!dist_is_root() && !any)
                crc = cache_build_all(ctrain, n_views, &ctest, &cub, &ie, &r) ? err_prefix("rank %d reading rank 0's trunk features", rank) : 0;
        }
        if (crc == 1) { /* stopped before step 1: a fresh run's files go, so the same command starts it again */
            for (int v = 0; v < n_views; v++) cache_free(&ctrain[v]);
            cache_free(&ctest);
            if (dist_is_root() && run_discard_unstarted(&r)) fprintf(stderr, "attngan pretrain: %s\n", err_msg());
            return 1;
        }
        if (crc) {
            fprintf(stderr, "attngan pretrain: %s\n", err_msg());
            return 1;
        }
        per_epoch = ctrain[0].n / (B * W * A); /* each step: W * A consecutive batches of the order, one per lane */
        printf("training on cached trunk features of %d photos (%d of the split's %d are present)", ctrain[0].n, cub.train.n_present, cub.train.n);
        if (n_views > 1) printf(", %d views of each (EXTRA.CACHE_VIEWS: the centre crop and %d random crops)", n_views, n_views - 1);
        printf("\n");
    } else {
        LoaderConfig lc;
        loader_config_default(&lc);
        lc.batch_size = B;
        lc.base_size = tc->tree.base_size;
        lc.branch_num = tc->tree.branch_num;
        lc.words_num = tc->text.words_num;
        lc.threads = tc->workers > 0 ? tc->workers : 1;
        lc.seed = (uint64_t)tc->extra.seed;
        lc.only_available = tc->extra.only_available;
        lc.tight_pad = train_config_tight_pad(tc);
        lc.shard_count = W * A; /* data-parallel and accumulation: each lane's part of every step's batches */
        per_epoch = 0;
        lc.start_batch = 0;
        for (int j = 0; j < A; j++) {
            lc.shard_index = rank * A + j;
            if (loader_open(&loader[j], &cub, &cub.train, &lc)) { fprintf(stderr, "attngan pretrain: %s\n", err_msg()); return 2; }
            per_epoch = loader_batches_per_epoch(loader[j]);
            if (r.step) { /* restart the loader at the resumed position */
                loader_close(loader[j]);
                lc.start_batch = (int64_t)r.epoch * per_epoch + r.batch_in_epoch;
                if (loader_open(&loader[j], &cub, &cub.train, &lc)) { fprintf(stderr, "attngan pretrain: %s\n", err_msg()); return 2; }
            }
        }
        if (tc->extra.only_available)
            printf("--only-available: training on the %d photos present of the split's %d\n", loader_samples(loader[0]), cub.train.n);
    }
    if (per_epoch < 1) {
        if (W * A > 1) fprintf(stderr, "attngan pretrain: fewer photos than one step of %d rank(s) x %d micro-batch(es) of %d\n", W, A, B);
        else fprintf(stderr, "attngan pretrain: fewer photos than one batch of %d\n", B);
        return 2;
    }
    int64_t total = (int64_t)tc->train.max_epoch * per_epoch;
    if (a->max_steps && a->max_steps < total) total = a->max_steps;
    r.progress = progress_new("pretrain", total, stdout);
    progress_set_batch(r.progress, B * W * A);
    progress_set_start(r.progress, r.step);
    const char *names[6] = {"w_loss", "s_loss", "zsl_g_loss", "loss", "zsl_d_loss", "lr"};
    int *order = ctrain[0].n ? xmalloc((size_t)ctrain[0].n * sizeof(int)) : NULL;
    Tape lane_tape[LANES_MAX]; /* lane j >= 1's batch and pass 2 (lane 0's: t.tape[1]) */
    for (int j = 1; j < A; j++) tape_init_on(&lane_tape[j - 1], t.tape[1].device);
    int stop = 0;
    const char *why = "";
    run_start_clock(&r);
    for (; r.epoch < tc->train.max_epoch && !stop; r.epoch++) {
        if (order) epoch_order(ctrain[0].n, (uint64_t)tc->extra.seed, r.epoch, 1, order);
        for (; r.batch_in_epoch < per_epoch; r.batch_in_epoch++) {
            if (run_should_stop(&r, a, &why)) { stop = 1; break; }
            /* pass 1 of every lane (its gradients summed), the lanes' mean clipped, Adam; then pass 2
             * of every lane and the ZSL D's critic steps over them */
            DamsmPass1 p1;
            DamsmPass2 p2[LANES_MAX];
            DamsmBatch db[LANES_MAX];
            Tape *tp2[LANES_MAX];
            CBatch cb[LANES_MAX];
            float v1[4] = {0};
            int lrc = 0;
            Tape *tp = &t.tape[0];
            for (int j = 0; j < A && !lrc; j++) {
                lanes_enter(&lanes, j);
                tp2[j] = j ? &lane_tape[j - 1] : &t.tape[1];
                if (order) {
                    tape_reset(tp);
                    tape_reset(tp2[j]);
                    cached_batch(tp2[j], ctrain, n_views, &cub.train, order, ((r.batch_in_epoch * W + rank) * A + j) * B, B, mc.words_num,
                                 (uint64_t)tc->extra.seed, r.epoch, 1, &cb[j]);
                    run_map_classes(&r, cb[j].class_ids, B);
                    db[j] = (DamsmBatch){NULL, cb[j].captions, cb[j].cap_lens, cb[j].class_ids, B};
                    memset(&p1, 0, sizeof p1);
                    paramset_zero_grad(&te.ps);
                    paramset_zero_grad(&ie.ps);
                    p1.img.region = conv2d_layer_forward(tp, &ie.emb_features, cb[j].mixed);
                    p1.img.code = image_encoder_code(tp, &ie, cb[j].mixed, cb[j].pool);
                    p1.txt = text_encoder_forward(tp, &te, cb[j].captions, cb[j].cap_lens, B, NULL, NULL, &rng[j]);
                    t.word_rng = &rng[j];
                    damsm_losses(&t, tp, p1.img.region, p1.img.code, p1.txt.words_emb, p1.txt.sent_emb, &db[j], &p1);
                    tape_backward(tp, p1.loss);
                } else {
                    const Batch *lb;
                    if ((lrc = loader_next(loader[j], &lb))) break;
                    Tape *io = tp2[j];
                    tape_reset(io);
                    Tensor *x = TNEW(io, lb->B, 3, lb->sizes[lb->n_scales - 1], lb->sizes[lb->n_scales - 1]);
                    tensor_upload(x, lb->imgs[lb->n_scales - 1]);
                    int64_t *cls = tape_alloc(io, (size_t)lb->B * sizeof(int64_t));
                    memcpy(cls, lb->class_ids, (size_t)lb->B * sizeof(int64_t));
                    run_map_classes(&r, cls, lb->B);
                    db[j] = (DamsmBatch){x, lb->captions, lb->cap_lens, cls, lb->B};
                    damsm_pass1_backward(&t, &db[j], NULL, &rng[j], &p1);
                }
                v1[0] += tensor_item(p1.w.loss0) + tensor_item(p1.w.loss1);
                v1[1] += tensor_item(p1.s.loss0) + tensor_item(p1.s.loss1);
                v1[2] += tensor_item(p1.g_loss);
                v1[3] += tensor_item(p1.loss);
                lanes_grad_add(&lanes, &te.ps, j);
                lanes_grad_add(&lanes, &ie.ps, j);
            }
            if (lrc) { fprintf(stderr, "attngan pretrain: %s\n", err_msg()); rc = 1; stop = 1; break; }
            lanes_grad_finish(&lanes, &te.ps);
            lanes_grad_finish(&lanes, &ie.ps);
            lanes_sync_buffers(&lanes, &te.ps);
            lanes_sync_buffers(&lanes, &ie.ps);
            damsm_clip(&t);
            damsm_encoder_update(&t);
            for (int j = 0; j < A; j++) {
                lanes_enter(&lanes, j);
                if (order) {
                    memset(&p2[j], 0, sizeof p2[j]);
                    tape_no_grad_begin(tp2[j]);
                    p2[j].txt = text_encoder_forward(tp2[j], &te, cb[j].captions, cb[j].cap_lens, B, NULL, NULL, &rng[j]);
                    p2[j].img.code = image_encoder_code(tp2[j], &ie, cb[j].mixed, cb[j].pool);
                    if (t.zdw) p2[j].img.region = conv2d_layer_forward(tp2[j], &ie.emb_features, cb[j].mixed);
                    tape_no_grad_end(tp2[j]);
                } else damsm_encode2(&t, tp2[j], &db[j], NULL, &rng[j], &p2[j]); /* pass 2 beside the photos */
            }
            damsm_zsl_d_steps_lanes(&t, &lanes, tp2, db, rng, p2);
            lanes_enter(&lanes, 0);
            r.step++;
            dist_log_step_traffic();
            if (dist_check_each_step()) { /* ATTNGAN_DIST_CHECK=1: the ranks hold the same weights */
                ParamSet *sets[4] = {&te.ps, &ie.ps, &zd.ps, t.zdw ? &t.zdw->ps : NULL};
                char when[64];
                snprintf(when, sizeof when, "after step %lld", (long long)r.step);
                for (int i = 0; i < 4 && !rc; i++)
                    if (sets[i] && dist_check_same(sets[i], when)) { fprintf(stderr, "attngan pretrain: %s\n", err_msg()); rc = 1; }
                if (rc) { stop = 1; break; }
            }
            float d_loss = 0;
            for (int j = 0; j < A; j++) d_loss += tensor_item(p2[j].d_loss);
            float v[6] = {v1[0], v1[1], v1[2], v1[3], d_loss, lr}; /* the lanes' mean (this rank's) */
            for (int i = 0; A > 1 && i < 5; i++) v[i] /= (float)A;
            if (run_check_finite(&r, 6, names, v)) { fprintf(stderr, "attngan pretrain: %s\n", err_msg()); rc = 1; stop = 1; break; }
            run_log(&r, 6, names, v);
        }
        if (stop) break;
        /* end of an epoch: evaluation, learning-rate decay, snapshot */
        if (ctest.n >= B && dist_is_root()) { /* rank 0 evaluates (it alone logs) */
            EvalOut et = evaluate_cached(&t, &ctest, &cub.test, &mc, 2024, B, 50);
            EvalOut etr = evaluate_cached(&t, &ctrain[0], &cub.train, &mc, 2024, B, 50);
            print_eval(&r, "test", &et);
            print_eval(&r, "train", &etr);
            const char *en[6] = {"test_w_loss", "test_s_loss", "test_top1", "train_w_loss", "train_s_loss", "train_top1"};
            float ev[6] = {et.w_loss, et.s_loss, et.top1, etr.w_loss, etr.s_loss, etr.top1};
            csv_row(r.csv_eval, r.step, r.epoch, 6, en, ev);
        }
        if (lr > tc->train.encoder_lr / 10.0) {
            lr *= (float)tc->extra.lr_decay;
            t.opt_te.lr = t.opt_ie.lr = lr;
        }
        r.batch_in_epoch = 0;
        int interval = tc->train.snapshot_interval > 0 ? tc->train.snapshot_interval : 1;
        if ((r.epoch + 1) % interval == 0 || r.epoch + 1 == tc->train.max_epoch) {
            r.epoch++; /* the checkpoint resumes at the start of the next epoch */
            if (save_from(&r, &t, rng, A, lr, &cub, dev)) {
                fprintf(stderr, "attngan pretrain: %s\n", err_msg());
                rc = 1;
                break;
            }
            r.epoch--;
            tb_flush(r.tb);
        }
    }
    if (stop && rc == 0) {
        if (save_from(&r, &t, rng, A, lr, &cub, dev)) {
            fprintf(stderr, "attngan pretrain: %s\n", err_msg());
            rc = 1;
        } else printf("stopped after %lld steps (%s); checkpoint and encoders in %s\n", (long long)r.step, why, r.out);
    }
    free(order);
    for (int v = 0; v < n_views; v++) cache_free(&ctrain[v]);
    cache_free(&ctest);
    for (int j = 0; j < A; j++)
        if (loader[j]) loader_close(loader[j]);
    for (int j = 1; j < A; j++) tape_free(&lane_tape[j - 1]);
    lanes_free(&lanes);
    damsm_trainer_free(&t);
    text_encoder_free(&te);
    image_encoder_free(&ie);
    zsl_d_free(&zd);
    if (mc.zsl_word) zsl_d_free(&zdw);
    cub_close(&cub);
    run_close(&r);
    return rc;
}
