/* train_gan.c: the AttnGAN + ZSL training program; see train_gan.h.
 *
 * TRAIN.NET_E names the pretrained text encoder (text_encoder.safetensors, as `attngan pretrain`
 * writes it); its directory also holds image_encoder.safetensors (the heads; the trunk comes from
 * EXTRA.INCEPTION_WEIGHTS), zsl_d.safetensors and vocab.txt, which must equal the data's
 * vocabulary. G and the Ds start from AttnGAN's weights_init (or TRAIN.NET_G). Each step is one
 * gan_step; every SNAPSHOT_INTERVAL steps a checkpoint, a grid of the EMA G's images for a fixed
 * batch of captions (out/samples/step_N.png with the captions in step_N.txt; with more than one
 * stage also the attention figure step_N_att.png), and the same grid in TensorBoard. At the end
 * netG.safetensors holds the EMA weights (AttnGAN's average G), the model to sample from. */
#include "train_gan.h"
#include "../io/figure.h"
#include "../data/loader.h"
#include "../io/image.h"
#include "../io/safetensors.h"
#include "../nn/init.h"
#include "../nn/load.h"
#include "checkpoint.h"
#include "gan_step.h"
#include "lanes.h"
#include "../ops/batchnorm.h"
#include "zsl_gan.h"
#include "../core/dist.h"

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct Models {
    ModelConfig mc;
    TextEncoder te;
    ImageEncoder ie;
    ZslD zd;
    GNet g;
    DNet d[3];
    int n_d;
} Models;

static int check_vocab(const char *dir, const Vocab *data_vocab) {
    char path[2300];
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    if (access(path, R_OK)) {
        fprintf(stderr, "attngan train: warning: no %s: cannot check that the text encoder's vocabulary is the data's\n", path);
        return 0;
    }
    Vocab v;
    if (vocab_load(&v, path)) return -1;
    int rc = 0;
    if (v.n != data_vocab->n) rc = err_set("%s has %d words, the data's vocabulary %d: the text encoder was trained on other captions", path, v.n, data_vocab->n);
    for (int i = 0; !rc && i < v.n; i++)
        if (strcmp(v.words[i], data_vocab->words[i]))
            rc = err_set("%s: word %d is '%s', the data's is '%s': the text encoder was trained with another vocabulary", path, i,
                         v.words[i], data_vocab->words[i]);
    vocab_free(&v);
    return rc;
}

/* A new run keeps its own copy of the pretrained encoders (RUN/encoders/: the TRAIN.NET_E file,
 * image_encoder.safetensors, zsl_d.safetensors, vocab.txt and the pretraining's config.json where
 * present) and names the copy in TRAIN.NET_E, so that a pretraining run that goes on rewriting
 * its encoders cannot change what this run, its resumes or its export read. */
static int snapshot_encoders(Run *r) {
    TrainConfig *tc = &r->tc;
    if (!tc->train.net_e[0]) return 0; /* build_models says what is missing */
    char srcdir[TRAIN_CONFIG_STR], base[TRAIN_CONFIG_STR], dir[2300], src[4700], dst[4700];
    snprintf(srcdir, sizeof srcdir, "%s", tc->train.net_e);
    snprintf(base, sizeof base, "%s", tc->train.net_e);
    const char *sd = dirname(srcdir), *bn = basename(base);
    snprintf(dir, sizeof dir, "%s/encoders", r->out);
    if (mkdir_p(dir)) return -1;
    const char *files[5] = {bn, "image_encoder.safetensors", "zsl_d.safetensors", "vocab.txt", "config.json"};
    for (int i = 0; i < 5; i++) {
        snprintf(src, sizeof src, "%s/%s", sd, files[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, i == 4 ? "pretrain_config.json" : files[i]);
        if (i >= 3 && access(src, R_OK)) continue; /* optional: checked (vocab) or informative */
        if (copy_file_atomic(src, dst)) return err_prefix("TRAIN.NET_E: keeping the run's copy of the encoders");
    }
    char abs[PATH_MAX];
    snprintf(dst, sizeof dst, "%s/%s", dir, bn);
    const char *keep = realpath(dst, abs) ? abs : dst;
    if (strlen(keep) >= sizeof tc->train.net_e) return err_set("TRAIN.NET_E: the path %s is too long", keep);
    printf("encoders: copied from %s into %s (TRAIN.NET_E now names the copy)\n", sd, dir);
    snprintf(tc->train.net_e, sizeof tc->train.net_e, "%s", keep);
    char *js = train_config_to_json(tc);
    int rc = run_write_text(r, "config.json", js);
    free(js);
    return rc;
}

static int build_models(Models *m, const Run *r, const Cub *cub) {
    const TrainConfig *tc = &r->tc;
    memset(m, 0, sizeof *m);
    train_config_to_model(tc, &m->mc);
    m->mc.n_words = cub->vocab.n;
    run_class_setup((Run *)r, cub, &m->mc);
    if (!tc->train.net_e[0]) return err_set("TRAIN.NET_E is empty: the GAN needs the pretrained text encoder (attngan pretrain writes text_encoder.safetensors)");
    size_t nl = strlen(tc->train.net_e);
    if (nl > 4 && !strcmp(tc->train.net_e + nl - 4, ".pth"))
        return err_set("TRAIN.NET_E %s is a PyTorch file: convert it first with tools/pth2safetensors.py", tc->train.net_e);
    char dirbuf[TRAIN_CONFIG_STR], *dir;
    snprintf(dirbuf, sizeof dirbuf, "%s", tc->train.net_e);
    dir = dirname(dirbuf);
    if (check_vocab(dir, &cub->vocab)) return -1;
    /* the pretraining's config (config.json beside the encoders, pretrain_config.json in a run's
     * copy) must agree on everything that shapes the encoders: no silent mismatch */
    char cpath[2400];
    snprintf(cpath, sizeof cpath, "%s/pretrain_config.json", dir);
    if (access(cpath, R_OK)) snprintf(cpath, sizeof cpath, "%s/config.json", dir);
    if (!access(cpath, R_OK)) {
        char *js = read_file_all(cpath, 1 << 20);
        TrainConfig pc;
        train_config_default(&pc);
        if (!js || train_config_from_json(&pc, js)) { free(js); return err_prefix("%s", cpath); }
        free(js);
        const char *k = train_config_encoder_diff(tc, &pc);
        if (k) {
            char a[300], b[300];
            train_config_value_str(tc, k, a, sizeof a);
            train_config_value_str(&pc, k, b, sizeof b);
            return err_set("TRAIN.NET_E was pretrained with %s %s (%s), this run has %s: set --set %s=%s", k, b, cpath, a, k, b);
        }
    }
    text_encoder_init(&m->te, &m->mc);
    image_encoder_init(&m->ie, &m->mc);
    zsl_d_init(&m->zd, &m->mc);
    if (nn_load_file(&m->te.ps, tc->train.net_e, 0)) return err_prefix("TRAIN.NET_E");
    if (run_load_inception(r, &m->ie)) return -1;
    char path[2300];
    snprintf(path, sizeof path, "%s/image_encoder.safetensors", dir);
    if (nn_load_file(&m->ie.ps, path, LOAD_PARTIAL)) return -1;
    for (int i = 0; i < m->ie.ps.n; i++) {
        const ParamEntry *e = m->ie.ps.entries[i];
        if (!image_encoder_is_trunk_key(e->name) && !e->loaded) return err_set("%s: no %s", path, e->name);
    }
    snprintf(path, sizeof path, "%s/zsl_d.safetensors", dir);
    if (nn_load_file(&m->zd.ps, path, 0)) return -1;
    Rng init;
    rng_init(&init, (uint64_t)tc->extra.seed * 2 + 1);
    m->n_d = tc->tree.branch_num;
    gnet_init(&m->g, &m->mc, tc->tree.branch_num);
    init_attngan(&m->g.ps, &init);
    if (tc->train.net_g[0] && nn_load_file(&m->g.ps, tc->train.net_g, 0)) return err_prefix("TRAIN.NET_G");
    char name[16];
    for (int i = 0; i < m->n_d; i++) {
        snprintf(name, sizeof name, "netD%d", i);
        dnet_init(&m->d[i], &m->mc, tc->tree.base_size << i, name);
        init_attngan(&m->d[i].ps, &init);
    }
    return 0;
}

static void free_models(Models *m) {
    text_encoder_free(&m->te);
    image_encoder_free(&m->ie);
    zsl_d_free(&m->zd);
    gnet_free(&m->g);
    for (int i = 0; i < m->n_d; i++) dnet_free(&m->d[i]);
}

/* ------------------------------------------------------------------ snapshots */
typedef struct Fixed {
    int B, T;
    int64_t *captions, *class_ids;
    int *cap_lens;
    float *z;              /* (B, ZSL_Z) */
    char **texts;          /* decoded captions */
} Fixed;

static int fixed_batch(Fixed *f, const Cub *cub, const TrainConfig *tc, const ModelConfig *mc) {
    const CubSplit *s = cub->test.n_present >= tc->train.batch_size ? &cub->test : &cub->train;
    LoaderConfig lc;
    loader_config_default(&lc);
    lc.batch_size = tc->train.batch_size;
    lc.base_size = tc->tree.base_size;
    lc.branch_num = 1;
    lc.words_num = tc->text.words_num;
    lc.threads = 1;
    lc.seed = 12345;
    lc.augment = 0;
    lc.only_available = 1;
    Loader *l;
    const Batch *b;
    if (loader_open(&l, cub, s, &lc) || loader_next(l, &b)) return -1;
    f->B = b->B;
    f->T = b->T;
    f->captions = xmalloc((size_t)b->B * b->T * sizeof(int64_t));
    f->class_ids = xmalloc((size_t)b->B * sizeof(int64_t));
    f->cap_lens = xmalloc((size_t)b->B * sizeof(int));
    memcpy(f->captions, b->captions, (size_t)b->B * b->T * sizeof(int64_t));
    memcpy(f->class_ids, b->class_ids, (size_t)b->B * sizeof(int64_t));
    memcpy(f->cap_lens, b->cap_lens, (size_t)b->B * sizeof(int));
    loader_close(l);
    f->z = xmalloc((size_t)f->B * mc->zsl_z * sizeof(float));
    Rng r;
    rng_init(&r, 777);
    rng_normal(&r, f->z, (int64_t)f->B * mc->zsl_z, 0.0f, 1.0f);
    f->texts = xcalloc((size_t)f->B, sizeof(char *));
    for (int i = 0; i < f->B; i++) f->texts[i] = vocab_decode(&cub->vocab, f->captions + (size_t)i * f->T, f->cap_lens[i]);
    return 0;
}

static void fixed_free(Fixed *f) {
    for (int i = 0; f->texts && i < f->B; i++) free(f->texts[i]);
    free(f->texts);
    free(f->captions);
    free(f->class_ids);
    free(f->cap_lens);
    free(f->z);
}

/* Images of the EMA G for the fixed captions, in train-mode BN as AttnGAN's save_img_results,
 * without changing G's weights or running statistics. */
static int snapshot_images(Run *r, GanTrainer *t, Models *m, const Fixed *f, const Cub *cub) {
    GNet *g = &m->g;
    int dev = g->ps.device; /* G's, wherever the trainer runs */
    size_t nv = (size_t)g->ps.n_values, nb = (size_t)g->ps.n_buffers;
    float *vals = device_alloc(dev, nv * sizeof(float)), *bufs = device_alloc(dev, (nb ? nb : 1) * sizeof(float));
    int64_t *ivals = xmalloc((size_t)g->ps.n * sizeof(int64_t));
    device_copy(dev, vals, g->ps.values, nv * sizeof(float));
    device_copy(dev, bufs, g->ps.buffers, nb * sizeof(float));
    for (int i = 0; i < g->ps.n; i++) ivals[i] = g->ps.entries[i]->ival;
    device_copy(dev, g->ps.values, t->ema_g.values, nv * sizeof(float));
    Tape tp;
    tape_init_on(&tp, dev);
    tape_no_grad_begin(&tp);
    Tensor *z = TNEW(&tp, f->B, m->mc.zsl_z);
    tensor_upload(z, f->z);
    TextEncoderOut txt = text_encoder_forward(&tp, &m->te, f->captions, f->cap_lens, f->B, z, NULL, NULL);
    uint8_t *mask = gan_word_mask(&tp, f->captions, f->B, f->T, txt.words_emb->shape[2]);
    Rng nr;
    rng_init(&nr, 99);
    GNetOut go = gnet_forward_noise(&tp, g, txt.sent_emb, txt.words_emb, mask, NULL, NULL, &nr);
    tape_no_grad_end(&tp);
    device_copy(dev, g->ps.values, vals, nv * sizeof(float));
    device_copy(dev, g->ps.buffers, bufs, nb * sizeof(float));
    for (int i = 0; i < g->ps.n; i++) g->ps.entries[i]->ival = ivals[i];
    device_free(dev, vals);
    device_free(dev, bufs);
    free(ivals);
    /* the images and attention maps the figures read, on the host */
    Tensor *last_dev = go.imgs[go.n_imgs - 1], *att_dev = go.n_att > 0 ? go.att[go.n_att - 1] : NULL;
    float *last_host = xmalloc((size_t)last_dev->n * sizeof(float)), *att_host = NULL;
    tensor_download(last_dev, last_host);
    if (att_dev) {
        att_host = xmalloc((size_t)att_dev->n * sizeof(float));
        tensor_download(att_dev, att_host);
    }

    char dir[2300], path[2400];
    snprintf(dir, sizeof dir, "%s/samples", r->out);
    if (mkdir_p(dir)) { tape_free(&tp); return -1; }
    int S = last_dev->shape[2], n = f->B < 16 ? f->B : 16;
    const float **imgs = xmalloc((size_t)n * sizeof(float *));
    for (int i = 0; i < n; i++) imgs[i] = last_host + (int64_t)i * 3 * S * S;
    Image grid = {0};
    int rc = figure_grid(imgs, n, S, 4, 2, &grid);
    snprintf(path, sizeof path, "%s/step_%lld.png", dir, (long long)r->step);
    if (!rc) rc = image_save_png(path, &grid);
    if (!rc) tb_image(r->tb, "samples/ema_G", &grid, r->step);
    image_free(&grid);
    /* the captions, one line per image, row-major as in the grid */
    size_t len = 1;
    for (int i = 0; i < n; i++) len += strlen(f->texts[i]) + 8;
    char *txtbuf = xcalloc(len, 1);
    for (int i = 0; i < n; i++) sprintf(txtbuf + strlen(txtbuf), "%d: %s\n", i, f->texts[i]);
    snprintf(path, sizeof path, "samples/step_%lld.txt", (long long)r->step);
    if (!rc) rc = run_write_text(r, path, txtbuf);
    free(txtbuf);
    if (!rc && att_dev) {
        int L = att_dev->shape[1], h = att_dev->shape[2], w = att_dev->shape[3], k = n < 4 ? n : 4;
        const float **atts = xmalloc((size_t)k * sizeof(float *));
        const char *const **words = xmalloc((size_t)k * sizeof(char **));
        int *nw = xmalloc((size_t)k * sizeof(int));
        for (int i = 0; i < k; i++) {
            atts[i] = att_host + (int64_t)i * L * h * w;
            const char **ws = xmalloc((size_t)L * sizeof(char *));
            for (int tkn = 0; tkn < L; tkn++) ws[tkn] = cub->vocab.words[f->captions[i * f->T + tkn]];
            words[i] = ws;
            nw[i] = f->cap_lens[i];
        }
        Image fig = {0};
        rc = figure_attention_rows(imgs, k, S, atts, h, w, words, nw, &fig);
        snprintf(path, sizeof path, "%s/step_%lld_att.png", dir, (long long)r->step);
        if (!rc) rc = image_save_png(path, &fig);
        if (!rc) tb_image(r->tb, "samples/attention", &fig, r->step);
        image_free(&fig);
        for (int i = 0; i < k; i++) free((void *)words[i]);
        free(atts);
        free(words);
        free(nw);
    }
    free(imgs);
    free(last_host);
    free(att_host);
    tape_free(&tp);
    return rc;
}


/* ------------------------------------------------------------------ checkpoints */
/* The networks and optimizers a GAN checkpoint holds (names live in `names`). */
typedef struct CkptLists {
    CkptNet nets[7];
    CkptOpt opts[6];
    int n_nets, n_opts;
    char names[6][16];
} CkptLists;

static void ckpt_lists(CkptLists *c, GanTrainer *t, Models *m) {
    c->n_nets = c->n_opts = 0;
    c->nets[c->n_nets++] = (CkptNet){"netG", &m->g.ps, NULL};
    c->nets[c->n_nets++] = (CkptNet){"netG_ema", &t->ema_g, NULL};
    c->opts[c->n_opts++] = (CkptOpt){"optG", &t->opt_g};
    for (int i = 0; i < m->n_d; i++) {
        snprintf(c->names[2 * i], sizeof c->names[0], "netD%d", i);
        snprintf(c->names[2 * i + 1], sizeof c->names[0], "optD%d", i);
        c->nets[c->n_nets++] = (CkptNet){c->names[2 * i], &m->d[i].ps, NULL};
        c->opts[c->n_opts++] = (CkptOpt){c->names[2 * i + 1], &t->opt_d[i]};
    }
    if (t->zsl_phase) { /* ZSL.GAN_PHASE: the text encoder (its ZSL G learns) and ZSL D, with their Adams */
        c->nets[c->n_nets++] = (CkptNet){"text_encoder", &m->te.ps, NULL};
        c->nets[c->n_nets++] = (CkptNet){"zsl_d", &m->zd.ps, NULL};
        c->opts[c->n_opts++] = (CkptOpt){"opt_zsl_g", &t->zsl_phase->opt_zg};
        c->opts[c->n_opts++] = (CkptOpt){"opt_zsl_d", &t->zsl_phase->opt_zd};
    }
}

static int save_all(Run *r, GanTrainer *t, Models *m, const Rng *rng, int n_rng, int final) {
    CkptLists c;
    ckpt_lists(&c, t, m);
    cJSON *s = run_state(r);
    run_put_rng(s, rng, n_rng);
    if (t->zsl_phase) zsl_gan_trainable(t->zsl_phase, 1); /* their Adam moments are saved */
    int rc = ckpt_save(r->out, r->step, c.nets, c.n_nets, c.opts, c.n_opts, s, r->tc.extra.keep_checkpoints);
    if (t->zsl_phase) zsl_gan_trainable(t->zsl_phase, 0);
    cJSON_Delete(s);
    if (rc || !final) return rc;
    /* the model to sample from: the EMA weights with the live G's BatchNorm statistics, as
     * AttnGAN saves its average G (the EMA set's own buffers are those of initialisation);
     * `attngan export` measures statistics for the EMA weights themselves */
    if (t->ema_g.n_buffers) memcpy(t->ema_g.buffers, m->g.ps.buffers, (size_t)t->ema_g.n_buffers * sizeof(float));
    for (int i = 0; i < m->g.ps.n; i++)
        if (m->g.ps.entries[i]->kind == PARAM_BUFFER_I64) t->ema_g.entries[i]->ival = m->g.ps.entries[i]->ival;
    char path[2400];
    StWriter *w = st_writer_new();
    nn_save(&t->ema_g, w, "");
    st_writer_meta(w, "format", "attngan-model-1");
    st_writer_meta(w, "network", "netG (EMA weights)");
    snprintf(path, sizeof path, "%s/netG.safetensors", r->out);
    rc = st_writer_write(w, path);
    st_writer_free(w);
    if (!rc && t->zsl_phase) { /* ZSL.GAN_PHASE: the text encoder beside it (generate --model RUN reads it) */
        w = st_writer_new();
        nn_save(&m->te.ps, w, "");
        st_writer_meta(w, "format", "attngan-model-1");
        st_writer_meta(w, "network", "text_encoder (its ZSL G trained in the GAN phase, ZSL.GAN_PHASE)");
        snprintf(path, sizeof path, "%s/text_encoder.safetensors", r->out);
        rc = st_writer_write(w, path);
        st_writer_free(w);
    }
    return rc;
}

/* A checkpoint is written from the CPU: the trainer moves there and back (dev: where it runs). */
/* Data-parallel: rank 0 writes the samples and the checkpoint; the others give it their random
 * streams (run_put_rng), and all learn whether it worked. */
static int save_all_from(Run *r, GanTrainer *t, Models *m, Rng *rng, int n_rng, int last, int dev) {
    if (!dist_is_root()) {
        run_put_rng(NULL, rng, n_rng);
        return dist_agree(0) ? err_set("rank 0 could not write the checkpoint (its message says why)") : 0;
    }
    if (dev != DEVICE_CPU) gan_trainer_to_device(t, DEVICE_CPU);
    int rc = save_all(r, t, m, rng, n_rng, last);
    if (dev != DEVICE_CPU) gan_trainer_to_device(t, dev);
    return dist_agree(rc);
}

static int snapshot_and_save(Run *r, GanTrainer *t, Models *m, const Fixed *f, const Cub *cub, Rng *rng, int n_rng, int last, int dev) {
    int sync = batchnorm_get_sync(); /* rank 0 alone draws the samples: no collective inside */
    batchnorm_set_sync(0);
    int rc = dist_is_root() ? snapshot_images(r, t, m, f, cub) : 0;
    batchnorm_set_sync(sync);
    if (dist_agree(rc)) return dist_is_root() ? -1 : err_set("rank 0 could not write the samples (its message says why)");
    return save_all_from(r, t, m, rng, n_rng, last, dev);
}

/* ------------------------------------------------------------------ the program */
int train_gan_main(const RunArgs *a) {
    Run r;
    if (run_open(&r, a, "cfg/bird_attn2.yml")) { fprintf(stderr, "attngan train: %s\n", err_msg()); return 2; }
    TrainConfig *tc = &r.tc;
    if (train_config_check_gan(tc)) { fprintf(stderr, "attngan train: %s\n", err_msg()); run_close(&r); return 2; }
    if (!a->quiet) train_config_print(tc, stdout);
    Cub cub;
    if (cub_open(&cub, tc->data_dir)) { fprintf(stderr, "attngan train: %s\n", err_msg()); run_close(&r); return 2; }
    /* rank 0 keeps the run's copy of the encoders; the others then read that copy */
    int src = !r.resume_state && dist_is_root() ? snapshot_encoders(&r) : 0;
    if (!r.resume_state && dist_size() > 1) {
        if (dist_agree(src) && !src) src = err_set("rank 0 could not copy the encoders (its message says why)");
        dist_bcast(tc->train.net_e, sizeof tc->train.net_e);
    }
    if (src) {
        fprintf(stderr, "attngan train: %s\n", err_msg());
        cub_close(&cub);
        run_close(&r);
        return 2;
    }
    Models m;
    if (build_models(&m, &r, &cub)) { /* (a model half built is left to the exit) */
        fprintf(stderr, "attngan train: %s\n", err_msg());
        cub_close(&cub);
        run_close(&r);
        return 2;
    }
    DNet *dp[3] = {&m.d[0], &m.d[1], &m.d[2]};
    GanTrainer t;
    gan_trainer_init(&t, &m.te, &m.ie, &m.zd, &m.g, dp, &m.mc);
    /* EXTRA.GRAD_ACCUM: A micro-batches per step, lane j of rank r being slot r * A + j of the
     * step's W * A (its data shard and its random stream) */
    int A = tc->extra.grad_accum, W = dist_size(), rank = dist_rank();
    Lanes lanes;
    lanes_init(&lanes, A);
    if (A > 1) gan_trainer_set_lanes(&t, &lanes);
    batchnorm_set_sync(tc->extra.sync_bn); /* EXTRA.SYNC_BN: the ranks' batch statistics (a no-op in one process) */
    if (tc->extra.sync_bn) printf("EXTRA.SYNC_BN: batch norm with the statistics of all %d rank(s)' batches%s\n", W,
                                  A > 1 ? "; each of the EXTRA.GRAD_ACCUM micro-batches keeps its own" : "");
    ZslGan zg;
    if (m.mc.zsl_gan_phase) zsl_gan_init(&zg, &t);
    Rng rng[LANES_MAX]; /* each slot its own stream (slot 0's a single process's) */
    for (int j = 0; j < A; j++) rng_init(&rng[j], dist_rank_seed((uint64_t)tc->extra.seed, rank * A + j));
    if (r.resume_state) {
        CkptLists c;
        ckpt_lists(&c, &t, &m);
        cJSON *st = NULL;
        if (t.zsl_phase) zsl_gan_trainable(t.zsl_phase, 1); /* their Adam moments are loaded */
        int lrc = ckpt_load(r.resume_dir, c.nets, c.n_nets, c.opts, c.n_opts, &st);
        if (t.zsl_phase) zsl_gan_trainable(t.zsl_phase, 0);
        if (lrc || run_get_rng(st, rng, A)) {
            fprintf(stderr, "attngan train: resume: %s\n", err_msg());
            return 2;
        }
        r.step = (int64_t)cJSON_GetObjectItemCaseSensitive(st, "step")->valuedouble;
        r.epoch = (int)cJSON_GetObjectItemCaseSensitive(st, "epoch")->valuedouble;
        r.batch_in_epoch = (int)cJSON_GetObjectItemCaseSensitive(st, "batch_in_epoch")->valuedouble;
        cJSON_Delete(st);
        printf("resumed from %s: step %lld\n", r.resume_dir, (long long)r.step);
    }
    int dev = device_current(); /* --device: the steps run there; loading and saving on the CPU */
    if (dev != DEVICE_CPU) {
        gan_trainer_to_device(&t, dev);
        printf("training on the device %s\n", device_name(dev));
    }
    if (A > 1) { /* the sets whose gradients and buffers the lanes keep apart, as they are now */
        lanes_add_set(&lanes, &m.g.ps);
        for (int i = 0; i < m.n_d; i++) lanes_add_set(&lanes, &m.d[i].ps);
        if (t.zsl_phase) {
            lanes_add_set(&lanes, &m.te.ps);
            lanes_add_set(&lanes, &m.zd.ps);
        }
        printf("gradient accumulation: %d micro-batches of %d per step (EXTRA.GRAD_ACCUM)\n", A, tc->train.batch_size);
    }
    LoaderConfig lc;
    loader_config_default(&lc);
    lc.batch_size = tc->train.batch_size;
    lc.base_size = tc->tree.base_size;
    lc.branch_num = tc->tree.branch_num;
    lc.words_num = tc->text.words_num;
    lc.threads = tc->workers > 0 ? tc->workers : 1;
    lc.seed = (uint64_t)tc->extra.seed;
    lc.only_available = tc->extra.only_available;
    lc.tight_pad = train_config_tight_pad(tc);
    lc.start_batch = r.step;
    lc.shard_count = W * A; /* data-parallel and accumulation: each lane's part of every step's batches */
    Loader *loader[LANES_MAX];
    for (int j = 0; j < A; j++) {
        lc.shard_index = rank * A + j;
        if (loader_open(&loader[j], &cub, &cub.train, &lc)) { fprintf(stderr, "attngan train: %s\n", err_msg()); return 2; }
    }
    int per_epoch = loader_batches_per_epoch(loader[0]);
    if (tc->extra.only_available)
        printf("--only-available: training on the %d photos present of the split's %d\n", loader_samples(loader[0]), cub.train.n);
    Fixed fixed;
    memset(&fixed, 0, sizeof fixed);
    if (fixed_batch(&fixed, &cub, tc, &m.mc)) { fprintf(stderr, "attngan train: %s\n", err_msg()); return 2; }
    int64_t total = (int64_t)tc->train.max_epoch * per_epoch;
    if (a->max_steps && a->max_steps < total) total = a->max_steps;
    r.progress = progress_new("train", total, stdout);
    progress_set_batch(r.progress, tc->train.batch_size * W * A);
    CkptLists all_sets;
    ckpt_lists(&all_sets, &t, &m);
    if (dist_size() > 1) { /* the ranks start from the same bits (the same seeds and files) */
        for (int i = 0; i < all_sets.n_nets; i++)
            if (dist_check_same(all_sets.nets[i].ps, "at the start")) { fprintf(stderr, "attngan train: %s\n", err_msg()); return 2; }
        printf("data-parallel: %d ranks, each a batch of %d per step (%d in all)\n", dist_size(), tc->train.batch_size,
               dist_size() * tc->train.batch_size);
    }
    progress_set_start(r.progress, r.step);
    const char *names[13];
    char nbuf[13][32];
    int nt = 0;
    for (int i = 0; i < m.n_d; i++) { snprintf(nbuf[nt], 32, "errD%d", i); names[nt] = nbuf[nt]; nt++; }
    for (int i = 0; i < m.n_d; i++) { snprintf(nbuf[nt], 32, "g_loss%d", i); names[nt] = nbuf[nt]; nt++; }
    const char *rest[5] = {"w_loss", "s_loss", "zsl_adv", "zsl_cls", "errG_total"};
    for (int i = 0; i < 5; i++) names[nt++] = rest[i];
    if (t.zsl_phase) names[nt++] = "zsl_d_loss", names[nt++] = "zsl_g_loss";
    Tape io[LANES_MAX];
    for (int j = 0; j < A; j++) tape_init(&io[j]);
    char vpath[2400];
    snprintf(vpath, sizeof vpath, "%s/vocab.txt", r.out);
    if (dist_is_root() && vocab_save(&cub.vocab, vpath)) { fprintf(stderr, "attngan train: %s\n", err_msg()); return 1; }
    double sums[13] = {0};
    int n_sum = 0;
    int rc = 0, interval = tc->train.snapshot_interval > 0 ? tc->train.snapshot_interval : 1000;
    const char *why = "";
    run_start_clock(&r);
    while (r.step < total) {
        if (run_should_stop(&r, a, &why)) {
            if (snapshot_and_save(&r, &t, &m, &fixed, &cub, rng, A, 1, dev)) {
                fprintf(stderr, "attngan train: %s\n", err_msg());
                rc = 1;
            } else printf("stopped after %lld steps (%s); checkpoint, samples and netG.safetensors in %s\n", (long long)r.step, why, r.out);
            break;
        }
        GanBatch gb[LANES_MAX];
        int lrc = 0;
        for (int j = 0; j < A && !lrc; j++) {
            const Batch *lb;
            if ((lrc = loader_next(loader[j], &lb))) break;
            tape_reset(&io[j]);
            int64_t *cls = tape_alloc(&io[j], (size_t)lb->B * sizeof(int64_t));
            memcpy(cls, lb->class_ids, (size_t)lb->B * sizeof(int64_t));
            run_map_classes(&r, cls, lb->B);
            gb[j] = (GanBatch){{NULL, NULL, NULL}, lb->captions, lb->cap_lens, cls, lb->B};
            for (int i = 0; i < lb->n_scales; i++) {
                gb[j].imgs[i] = TNEW(&io[j], lb->B, 3, lb->sizes[i], lb->sizes[i]);
                tensor_upload(gb[j].imgs[i], lb->imgs[i]);
            }
        }
        if (lrc) { fprintf(stderr, "attngan train: %s\n", err_msg()); rc = 1; break; }
        GanStepOut o[LANES_MAX];
        gan_step_lanes(&t, gb, rng, o);
        ZslGanOut zo[LANES_MAX];
        if (t.zsl_phase) zsl_gan_step_lanes(t.zsl_phase, gb, rng, zo);
        r.step++;
        dist_log_step_traffic();
        if (dist_check_each_step()) { /* ATTNGAN_DIST_CHECK=1: the ranks hold the same weights */
            char when[64];
            snprintf(when, sizeof when, "after step %lld", (long long)r.step);
            for (int i = 0; i < all_sets.n_nets && !rc; i++)
                if (dist_check_same(all_sets.nets[i].ps, when)) { fprintf(stderr, "attngan train: %s\n", err_msg()); rc = 1; }
            if (rc) break;
        }
        r.epoch = (int)(r.step / per_epoch);
        r.batch_in_epoch = (int)(r.step % per_epoch);
        float v[13] = {0}; /* the terms' mean over the lanes (this rank's) */
        for (int j = 0; j < A; j++) {
            int k = 0;
            for (int i = 0; i < m.n_d; i++) v[k++] += o[j].d_loss[i];
            for (int i = 0; i < m.n_d; i++) v[k++] += tensor_item(o[j].g.g_loss[i]);
            v[k++] += tensor_item(o[j].g.w_loss);
            v[k++] += tensor_item(o[j].g.s_loss);
            v[k++] += tensor_item(o[j].g.adv);
            v[k++] += tensor_item(o[j].g.cls);
            v[k++] += tensor_item(o[j].g.total);
            if (t.zsl_phase) v[k++] += zo[j].d_loss, v[k++] += zo[j].g_loss;
        }
        for (int i = 0; A > 1 && i < nt; i++) v[i] /= (float)A;
        if (run_check_finite(&r, nt, names, v)) { fprintf(stderr, "attngan train: %s\n", err_msg()); rc = 1; break; }
        run_log(&r, nt, names, v);
        for (int i = 0; i < nt; i++) sums[i] += v[i];
        n_sum++;
        if (r.step % interval == 0 || r.step == total || (a->max_steps && r.step == a->max_steps)) {
            int last = r.step == total || (a->max_steps && r.step == a->max_steps);
            printf("\nstep %lld (epoch %d): mean over the last %d steps:", (long long)r.step, r.epoch, n_sum);
            for (int i = 0; i < nt; i++) printf(" %s %.4g", names[i], sums[i] / (n_sum ? n_sum : 1));
            printf("\n");
            memset(sums, 0, sizeof sums);
            n_sum = 0;
            if (snapshot_and_save(&r, &t, &m, &fixed, &cub, rng, A, last, dev)) {
                fprintf(stderr, "attngan train: %s\n", err_msg());
                rc = 1;
                break;
            }
            tb_flush(r.tb);
        }
    }
    if (rc == 0 && !why[0]) printf("trained %lld steps; checkpoints, samples and netG.safetensors (EMA) in %s\n", (long long)r.step, r.out);
    for (int j = 0; j < A; j++) {
        tape_free(&io[j]);
        loader_close(loader[j]);
    }
    fixed_free(&fixed);
    if (t.zsl_phase) zsl_gan_free(&zg);
    gan_trainer_free(&t);
    lanes_free(&lanes);
    free_models(&m);
    cub_close(&cub);
    run_close(&r);
    return rc;
}
