/* export.c: `attngan export`: a training run -> a model directory for generate/serve (gen.h). */
#include "app.h"
#include "../gen/relevance.h"
#include "../data/cub.h"
#include "../data/wikipedia.h"
#include "../io/locate.h"
#include "../gen/gen.h"
#include "../gen/model_file.h"
#include "../io/safetensors.h"
#include "../nn/load.h"
#include "../train/checkpoint.h"
#include "../train/gan_step.h"
#include "../core/progress.h"

#include <cjson/cJSON.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *EXPORT_USAGE =
    "usage: attngan export --run DIR --out DIR [--data DIR] [--note TEXT] [--fp32] [--int8-min N]\n"
    "                      [--bn-batches N] [--wikipedia DIR] [--quiet]\n"
    "       attngan export --damsm RUN --out DIR [--fp32] [--int8-min N]\n"
    "\n"
    "Writes a model directory for `attngan generate/examples/sample/serve` from a GAN training run\n"
    "(attngan train --out DIR): the EMA generator of its newest checkpoint with BatchNorm statistics\n"
    "of its own (see --bn-batches), the text encoder and DAMSM image heads\n"
    "that its TRAIN.NET_E names, the vocabulary, the config, and the relevance centroids for long\n"
    "text (mean LSTM codes of one caption per training image and of the training classes'\n"
    "Wikipedia sentences judged not visual; see attngan generate --help).\n"
    "  --run DIR      the training run\n"
    "  --out DIR      the model directory to write (e.g. models/bird64)\n"
    "  --data DIR     AttnGAN's data/birds (default: $ATTNGAN_DATA/birds, else the run's DATA_DIR, else\n"
    "                 ../shared/data/birds)\n"
    "  --wikipedia DIR  the Wikipedia articles with visual labels (default: DATA/../wikipedia)\n"
    "  --note TEXT    what it was trained on, stored as model.json \"trained_on\"\n"
    "  --fp32         store f32 weights (default: compact, f16 and int8 for the largest matrices)\n"
    "  --int8-min N   weights of at least N elements are stored as int8 with per-row scales\n"
    "                 (default 1000000; 0 = all f16)\n"
    "  --bn-batches N the EMA G's BatchNorm statistics are measured in train mode over N batches of\n"
    "                 16 random training captions (default 100); 0 keeps the live G's statistics,\n"
    "                 as AttnGAN saves its average G (they belong to other weights)\n"
    "  --quiet        print only the final line (otherwise: what it is doing, with a progress line\n"
    "                 for the BatchNorm statistics, most of the time: export of a 64 px run took\n"
    "                 77 s on 2 cores)\n"
    "  --damsm RUN    instead: write an evaluator directory for `attngan eval --evaluator DIR` from a\n"
    "                 DAMSM pretraining run (attngan pretrain --out RUN): its config.json and\n"
    "                 vocab.txt, text_encoder.safetensors and the image heads of\n"
    "                 image_encoder.safetensors stored compactly (--fp32, --int8-min as above; the\n"
    "                 trunk's BatchNorm statistics stay f32; the trunk's weights are not included:\n"
    "                 config.json names them), and classifier.safetensors when RUN has one\n";

/* BatchNorm statistics for the EMA weights ("standing statistics"): the EMA G's own batch
 * statistics in train mode, averaged over `batches` batches of 16 random training captions with
 * random ZSL noise, replace the running statistics the live G left (they belong to other
 * weights, and show as grid artefacts in eval mode). Each batch's statistics are read back exactly
 * by zeroing the running buffers before it (running = momentum * batch). */
static void standing_stats(GNet *g, TextEncoder *te, const Cub *cub, const Vocab *mv, int batches, Progress *pr) {
    const CubSplit *sp = &cub->train;
    const int B = 16, T = te->cfg.words_num;
    const float momentum = 0.1f; /* every BatchNorm layer of G (nn.BatchNorm default) */
    int64_t nb = g->ps.n_buffers;
    double *acc = xcalloc((size_t)nb, sizeof(double));
    int64_t *caps = xmalloc((size_t)B * T * sizeof(int64_t));
    int *lens = xmalloc((size_t)B * sizeof(int));
    Rng rng;
    rng_init(&rng, 20261128);
    g->train = 1;
    for (int k = 0; k < batches; k++) {
        memset(caps, 0, (size_t)B * T * sizeof(int64_t));
        for (int b = 0; b < B; b++) {
            int len = 0;
            while (!len) {
                const CubImage *im = &sp->images[rng_below(&rng, (uint32_t)sp->n)];
                int c = (int)rng_below(&rng, CUB_CAPTIONS_PER_IMAGE);
                for (int t = 0; t < im->cap_len[c] && len < T; t++) {
                    int id = vocab_find(mv, cub->vocab.words[im->caps[c][t]]);
                    if (id > 0) caps[(size_t)b * T + len++] = id;
                }
            }
            lens[b] = len;
        }
        Tape tp;
        tape_init(&tp);
        tape_no_grad_begin(&tp);
        TextEncoderOut o = text_encoder_forward(&tp, te, caps, lens, B, NULL, NULL, &rng);
        uint8_t *mask = gan_word_mask(&tp, caps, B, T, o.words_emb->shape[2]);
        memset(g->ps.buffers, 0, (size_t)nb * sizeof(float));
        gnet_forward_noise(&tp, g, o.sent_emb, o.words_emb, mask, NULL, NULL, &rng);
        for (int64_t j = 0; j < nb; j++) acc[j] += g->ps.buffers[j] / momentum;
        tape_free(&tp);
        if (pr) progress_update(pr, k + 1, 0, NULL, NULL);
    }
    g->train = 0;
    for (int64_t j = 0; j < nb; j++) g->ps.buffers[j] = (float)(acc[j] / batches);
    free(acc);
    free(caps);
    free(lens);
}

/* --damsm: the heads compact; the trunk's BatchNorm statistics that the run saved, f32 (they set
 * the trunk's features exactly); the trunk's weights not at all. */
static int keep_damsm_image(const ParamEntry *e) {
    if (!image_encoder_is_trunk_key(e->name)) return GEN_KEEP_COMPACT;
    return e->loaded && (e->kind != PARAM_WEIGHT) ? GEN_KEEP_F32 : GEN_KEEP_SKIP;
}

static long file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static int export_damsm(const char *run, const char *out, int fp32, int int8_min) {
    char path[2300], dst[2300];
    TrainConfig tc;
    ModelConfig mc;
    Vocab vocab = {0};
    TextEncoder te = {0};
    ImageEncoder ie = {0};
    int rc = 0;
    train_config_default(&tc);
    snprintf(path, sizeof path, "%s/config.json", run);
    char *js = read_file_all(path, 64u << 20);
    if (!js) return -1;
    rc = train_config_from_json(&tc, js);
    free(js);
    if (rc) return err_prefix("%s", path);
    if (strcmp(tc.extra.inception, "keras_nsfwjs") && strcmp(tc.extra.inception, "torchvision"))
        return err_set("%s: EXTRA.INCEPTION is '%s': the DAMSM was trained on a randomly initialised trunk, which is not saved, so it "
                       "cannot be an evaluator", path, tc.extra.inception);
    snprintf(path, sizeof path, "%s/vocab.txt", run);
    if (vocab_load(&vocab, path)) return -1;
    train_config_to_model(&tc, &mc);
    mc.n_words = vocab.n;
    text_encoder_init(&te, &mc);
    image_encoder_init(&ie, &mc);
    snprintf(path, sizeof path, "%s/text_encoder.safetensors", run);
    rc = nn_load_file(&te.ps, path, 0);
    snprintf(path, sizeof path, "%s/image_encoder.safetensors", run);
    if (!rc) rc = nn_load_file(&ie.ps, path, LOAD_PARTIAL);
    for (int i = 0; !rc && i < ie.ps.n; i++)
        if (!image_encoder_is_trunk_key(ie.ps.entries[i]->name) && !ie.ps.entries[i]->loaded)
            rc = err_set("%s: no %s (the DAMSM image heads)", path, ie.ps.entries[i]->name);
    if (!rc) rc = mkdir_p(out);
    const char *meta[4] = {"inception", tc.extra.inception, "inception_weights", tc.extra.inception_weights};
    snprintf(path, sizeof path, "%s/text_encoder.safetensors", out);
    if (!rc) rc = gen_write_network(&te.ps, path, "text_encoder (bi-LSTM + ZSL G) of a DAMSM evaluator", fp32, int8_min, gen_keep_all, meta, 2);
    snprintf(path, sizeof path, "%s/image_encoder.safetensors", out);
    if (!rc)
        rc = gen_write_network(&ie.ps, path, "image_encoder heads of a DAMSM evaluator (and the trunk's BatchNorm statistics, f32; the trunk's weights are "
                       "EXTRA.INCEPTION_WEIGHTS)", fp32, int8_min, keep_damsm_image, meta, 2);
    const char *copies[3] = {"config.json", "vocab.txt", "classifier.safetensors"};
    for (int i = 0; i < 3 && !rc; i++) {
        snprintf(path, sizeof path, "%s/%s", run, copies[i]);
        snprintf(dst, sizeof dst, "%s/%s", out, copies[i]);
        if (i == 2 && file_size(path) < 0) continue;
        rc = copy_file_atomic(path, dst);
    }
    if (!rc) {
        long total = 0;
        for (int i = 0; i < 5; i++) {
            const char *f[5] = {"config.json", "vocab.txt", "text_encoder.safetensors", "image_encoder.safetensors", "classifier.safetensors"};
            snprintf(dst, sizeof dst, "%s/%s", out, f[i]);
            long n = file_size(dst);
            if (n > 0) total += n;
        }
        printf("exported the DAMSM of %s to %s as an evaluator (%s): %.1f MB; its trunk: %s %s\n", run, out,
               fp32 ? "f32" : "f16, int8 for the largest weights", total / 1e6, tc.extra.inception, tc.extra.inception_weights);
    }
    text_encoder_free(&te);
    image_encoder_free(&ie);
    vocab_free(&vocab);
    return rc;
}

int cmd_export(int argc, char **argv) {
    static char data_buf[4096];
    const char *run = NULL, *out = NULL, *data = NULL, *note = "", *wiki_dir = NULL, *damsm = NULL;
    int fp32 = 0, int8_min = 1000000, bn_batches = 100, quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(EXPORT_USAGE, stdout); return 0; }
        else if (!strcmp(a, "--fp32")) fp32 = 1;
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--run") && more) run = argv[++i];
        else if (!strcmp(a, "--damsm") && more) damsm = argv[++i];
        else if (!strcmp(a, "--out") && more) out = argv[++i];
        else if (!strcmp(a, "--data") && more) data = argv[++i];
        else if (!strcmp(a, "--wikipedia") && more) wiki_dir = argv[++i];
        else if (!strcmp(a, "--note") && more) note = argv[++i];
        else if (!strcmp(a, "--bn-batches") && more) { if (parse_int(argv[++i], &bn_batches, "--bn-batches")) return 2; }
        else if (!strcmp(a, "--int8-min") && more) { if (parse_int(argv[++i], &int8_min, "--int8-min")) return 2; }
        else { fprintf(stderr, "attngan export: unknown argument: %s\n%s", a, EXPORT_USAGE); return 2; }
    }
    if (damsm) {
        if (run || !out) { fprintf(stderr, "attngan export: --damsm RUN takes --out DIR and no --run\n%s", EXPORT_USAGE); return 2; }
        if (export_damsm(damsm, out, fp32, int8_min)) { fprintf(stderr, "attngan export: %s\n", err_msg()); return 2; }
        return 0;
    }
    if (!run || !out) { fprintf(stderr, "attngan export: --run and --out are required\n%s", EXPORT_USAGE); return 2; }
#define FAILX(code) do { fprintf(stderr, "attngan export: %s\n", err_msg()); rc = code; goto done; } while (0)
    int rc = 0;
    char path[2300], step_dir[2300];
    TrainConfig tc;
    ModelConfig mc;
    Vocab vocab = {0};
    TextEncoder te = {0};
    ImageEncoder ie = {0};
    GNet g = {0}, ge = {0};
    Cub cub = {0};
    int have_cub = 0;
    cJSON *state = NULL, *mj = NULL;
    char *js = NULL;
    train_config_default(&tc);
    time_t t0 = time(NULL);
    if (!quiet) printf("export: loading the run %s\n", run), fflush(stdout);
    snprintf(path, sizeof path, "%s/config.json", run);
    if (!(js = read_file_all(path, 64u << 20))) FAILX(2);
    if (train_config_from_json(&tc, js)) { err_prefix("%s", path); FAILX(2); }
    free(js);
    js = NULL;
    if (train_config_check_gan(&tc)) FAILX(2);
    snprintf(path, sizeof path, "%s/vocab.txt", run);
    if (vocab_load(&vocab, path)) FAILX(2);
    train_config_to_model(&tc, &mc);
    mc.n_words = vocab.n;
    if (ckpt_latest_good(run, step_dir, sizeof step_dir)) FAILX(2); /* a damaged latest: the newest whole one, said */
    snprintf(path, sizeof path, "%s/state.json", step_dir);
    if (!(js = read_file_all(path, 64u << 20)) || !(state = cJSON_Parse(js))) { if (js) err_set("%s: not JSON", path); FAILX(2); }
    const cJSON *stp = cJSON_GetObjectItemCaseSensitive(state, "step");
    long long steps = cJSON_IsNumber(stp) ? (long long)stp->valuedouble : -1;
    gnet_init(&g, &mc, tc.tree.branch_num);
    gnet_init(&ge, &mc, tc.tree.branch_num);
    snprintf(path, sizeof path, "%s/netG.safetensors", step_dir);
    if (nn_load_file(&g.ps, path, 0)) FAILX(2);
    snprintf(path, sizeof path, "%s/netG_ema.safetensors", step_dir);
    if (nn_load_file(&ge.ps, path, 0)) FAILX(2);
    memcpy(g.ps.values, ge.ps.values, (size_t)g.ps.n_values * sizeof(float)); /* EMA weights, live BN statistics */
    text_encoder_init(&te, &mc);
    if (nn_load_file(&te.ps, tc.train.net_e, 0)) { err_prefix("TRAIN.NET_E"); FAILX(2); }
    if (tc.zsl.gan_phase) { /* ZSL.GAN_PHASE: its ZSL G learned in the GAN phase: the checkpoint's text encoder */
        snprintf(path, sizeof path, "%s/text_encoder.safetensors", step_dir);
        if (nn_load_file(&te.ps, path, 0)) FAILX(2);
    }
    char ebuf[TRAIN_CONFIG_STR];
    snprintf(ebuf, sizeof ebuf, "%s", tc.train.net_e);
    snprintf(path, sizeof path, "%s/image_encoder.safetensors", dirname(ebuf));
    image_encoder_init(&ie, &mc);
    if (nn_load_file(&ie.ps, path, LOAD_PARTIAL)) FAILX(2);
    {
        char from[4400];
        snprintf(from, sizeof from, "the run %s", run);
        if (locate_data(data, tc.data_dir, from, data_buf, sizeof data_buf, NULL, 0)) FAILX(2);
        data = data_buf;
    }
    if (!quiet)
        printf("export: step %lld of %s (EMA G), the text encoder and image heads of %s; data %s\n", steps, step_dir, tc.train.net_e, data),
            fflush(stdout);
    if (cub_open(&cub, data)) FAILX(2);
    have_cub = 1;
    if (bn_batches > 0) {
        Progress *pr = NULL;
        if (!quiet) {
            printf("export: measuring the EMA G's BatchNorm statistics over %d batches of 16 training captions (--bn-batches)\n", bn_batches);
            pr = progress_new("BatchNorm statistics", bn_batches, stdout);
            progress_set_unit(pr, "batches");
            progress_set_every(pr, 0, 10.0);
        }
        standing_stats(&g, &te, &cub, &vocab, bn_batches, pr);
        progress_done(pr);
    }
    int E = mc.embedding_dim, n_cap = 0, n_noise = 0;
    float *rel_cap = xmalloc((size_t)E * sizeof(float)), *rel_noise = xmalloc((size_t)E * sizeof(float));
    char wbuf[2300];
    if (!wiki_dir) {
        snprintf(wbuf, sizeof wbuf, "%s/../wikipedia", data);
        wiki_dir = wbuf;
    }
    Wiki wiki;
    if (wiki_open(&wiki, wiki_dir)) { free(rel_cap); free(rel_noise); err_prefix("--wikipedia"); FAILX(2); }
    if (!quiet) printf("export: relevance centroids: the text codes of %d training captions and of the training classes' Wikipedia sentences\n", cub.train.n),
        fflush(stdout);
    rc = relevance_centroids(&te, &vocab, &cub, &wiki, rel_cap, rel_noise, &n_cap, &n_noise);
    wiki_close(&wiki);
    if (rc) { free(rel_cap); free(rel_noise); FAILX(2); }
    if (mkdir_p(out)) FAILX(1);
    if (!quiet) printf("export: writing %s (%s)\n", out, fp32 ? "f32" : "f16, int8 for the largest matrices"), fflush(stdout);
    snprintf(path, sizeof path, "%s/netG.safetensors", out);
    if (gen_write_network(&g.ps, path, bn_batches > 0 ? "netG (EMA weights, their own BatchNorm statistics)" : "netG (EMA weights, BatchNorm statistics of the live G)",
                          fp32, int8_min, gen_keep_all, NULL, 0))
        FAILX(1);
    snprintf(path, sizeof path, "%s/text_encoder.safetensors", out);
    if (gen_write_network(&te.ps, path, "text_encoder (bi-LSTM + ZSL G)", fp32, int8_min, gen_keep_all, NULL, 0)) FAILX(1);
    snprintf(path, sizeof path, "%s/image_encoder.safetensors", out);
    if (gen_write_network(&ie.ps, path, "image_encoder heads (DAMSM; the Inception trunk is not included)", fp32, int8_min,
                          gen_keep_image_heads, NULL, 0))
        FAILX(1);
    snprintf(path, sizeof path, "%s/vocab.txt", out);
    if (vocab_save(&vocab, path)) FAILX(1);
    tc.train.net_e[0] = tc.train.net_g[0] = 0;
    char *cj = train_config_to_json(&tc);
    mj = cJSON_CreateObject();
    cJSON_AddStringToObject(mj, "format", GEN_MODEL_FORMAT);
    cJSON_AddStringToObject(mj, "trained_on", note);
    cJSON_AddNumberToObject(mj, "steps", (double)steps);
    cJSON_AddStringToObject(mj, "source", step_dir);
    time_t now = time(NULL);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&now));
    cJSON_AddStringToObject(mj, "exported", date);
    cJSON_AddStringToObject(mj, "storage", fp32 ? "f32" : "f16; int8 with per-row scales for the largest weights");
    relevance_add_json(mj, rel_cap, rel_noise, E, n_cap, n_noise);
    cJSON_AddItemToObject(mj, "config", cJSON_Parse(cj));
    free(cj);
    free(rel_cap);
    free(rel_noise);
    char *txt = cJSON_Print(mj);
    snprintf(path, sizeof path, "%s/model.json", out);
    rc = write_file_atomic(path, txt, strlen(txt));
    free(txt);
    if (rc) FAILX(1);
    printf("exported %s (step %lld) to %s; relevance centroids of %d training captions and %d Wikipedia sentences; %ld s\n",
           step_dir, steps, out, n_cap, n_noise, (long)(time(NULL) - t0));
done:
    free(js);
    cJSON_Delete(state);
    cJSON_Delete(mj);
    if (have_cub) cub_close(&cub);
    if (te.ps.n) text_encoder_free(&te);
    if (ie.ps.n) image_encoder_free(&ie);
    if (g.ps.n) gnet_free(&g);
    if (ge.ps.n) gnet_free(&ge);
    if (vocab.words) vocab_free(&vocab);
    return rc;
#undef FAILX
}
