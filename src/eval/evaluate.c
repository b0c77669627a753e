/* evaluate.c: `attngan eval`; see evaluate.h. */
#include "evaluate.h"
#include "metrics.h"
#include "../data/cub.h"
#include "../data/loader.h"
#include "../data/wikipedia.h"
#include "../gen/gen.h"
#include "../nn/keras_inception.h"
#include "../nn/load.h"
#include "../train/checkpoint.h"
#include "../train/log.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POOL_D 2048
#define IE_BATCH 16
#define ZSL_DRAWS 64

void eval_args_default(EvalArgs *a) {
    memset(a, 0, sizeof *a);
    a->out = "out/eval";
    a->n = 0;
    a->ks[0] = 0, a->ks[1] = 1, a->ks[2] = 3, a->ks[3] = 10;
    a->n_ks = 4;
    a->seed = 1234;
    a->folds = 10;
    a->candidates = 100;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------ image features */
typedef struct Feats {
    float *code, *pool;       /* (n, E) DAMSM image codes, (n, 2048) trunk pool features */
    int n, cap, E;
} Feats;

static void feats_init(Feats *f, int E, int cap) {
    f->E = E;
    f->n = 0;
    f->cap = cap;
    f->code = xmalloc((size_t)cap * E * sizeof(float));
    f->pool = xmalloc((size_t)cap * POOL_D * sizeof(float));
}
static void feats_free(Feats *f) { free(f->code); free(f->pool); memset(f, 0, sizeof *f); }

/* The network of the FID features when it is not the DAMSM trunk (--fid-inception), else NULL. */
static ImageEncoder *g_fid_net;

/* B images (B, 3, S, S) in [-1, 1] through the frozen encoder (eval mode); the pool features from
 * g_fid_net when set. */
static void feats_add(ImageEncoder *ie, const float *imgs, int B, int S, Feats *f) {
    CHECK(f->n + B <= f->cap, "feats_add: capacity");
    Tape tp;
    tape_init(&tp);
    tape_no_grad_begin(&tp);
    Tensor *x = TNEW(&tp, B, 3, S, S);
    memcpy(x->data, imgs, (size_t)x->n * sizeof(float));
    ImageEncoderOut o = image_encoder_forward(&tp, ie, x);
    memcpy(f->code + (size_t)f->n * f->E, o.code->data, (size_t)B * f->E * sizeof(float));
    if (g_fid_net) o = image_encoder_forward(&tp, g_fid_net, x);
    memcpy(f->pool + (size_t)f->n * POOL_D, o.trunk_pool->data, (size_t)B * POOL_D * sizeof(float));
    f->n += B;
    tape_free(&tp);
}

/* ------------------------------------------------------------------ the evaluation set */
typedef struct EvalSet {
    int n;
    int *image;               /* index into cub->test.images */
    int *caption;             /* which of its 10 captions */
    int *cls;                 /* 1-based class */
    int *group;               /* same caption text -> same group (never a mismatch) */
    char **text;              /* the clean caption */
} EvalSet;

static char *caption_text(const Cub *cub, const CubImage *im, int k) { return vocab_decode(&cub->vocab, im->caps[k], im->cap_len[k]); }

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* group ids: equal texts share one (a quadratic-free pass over sorted hashes) */
typedef struct HashIdx { uint64_t h; int i; } HashIdx;
static int cmp_hash(const void *a, const void *b) {
    uint64_t x = ((const HashIdx *)a)->h, y = ((const HashIdx *)b)->h;
    return (x > y) - (x < y);
}
static void make_groups(char **text, int n, int *group) {
    HashIdx *h = xmalloc((size_t)n * sizeof(HashIdx));
    for (int i = 0; i < n; i++) h[i] = (HashIdx){hash_str(text[i]), i};
    qsort(h, (size_t)n, sizeof(HashIdx), cmp_hash);
    int g = -1;
    for (int i = 0; i < n; i++) {
        if (i == 0 || h[i].h != h[i - 1].h) g++;
        group[h[i].i] = g;
    }
    free(h);
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void eval_set_build(EvalSet *es, const Cub *cub, int n, uint64_t seed) {
    const CubSplit *sp = &cub->test;
    int total = sp->n;
    if (n <= 0 || n > total) n = total;
    int *order = xmalloc((size_t)total * sizeof(int));
    for (int i = 0; i < total; i++) order[i] = i;
    if (n < total) { /* a seeded subset, in image order */
        loader_shuffle(order, total, seed, 0);
        qsort(order, (size_t)n, sizeof(int), cmp_int);
    }
    es->n = n;
    es->image = xmalloc((size_t)n * sizeof(int));
    es->caption = xmalloc((size_t)n * sizeof(int));
    es->cls = xmalloc((size_t)n * sizeof(int));
    es->group = xmalloc((size_t)n * sizeof(int));
    es->text = xcalloc((size_t)n, sizeof(char *));
    for (int j = 0; j < n; j++) {
        int i = order[j];
        const CubImage *im = &sp->images[i];
        int k = i % CUB_CAPTIONS_PER_IMAGE;
        while (im->cap_len[k] <= 0) k = (k + 1) % CUB_CAPTIONS_PER_IMAGE;
        es->image[j] = i;
        es->caption[j] = k;
        es->cls[j] = im->class_id;
        es->text[j] = caption_text(cub, im, k);
    }
    make_groups(es->text, n, es->group);
    free(order);
}

static void eval_set_free(EvalSet *es) {
    for (int i = 0; i < es->n; i++) free(es->text[i]);
    free(es->text);
    free(es->image);
    free(es->caption);
    free(es->cls);
    free(es->group);
}

/* ------------------------------------------------------------------ noisy text */
/* The caption with k irrelevant sentences around it: the caption takes a random one of the k + 1
 * places; the sentences are drawn without replacement while they last. */
static char *noisy_text(const char *caption, int k, int cls, const Wiki *w, const Cub *cub, int noise_captions, uint64_t seed) {
    if (k == 0) return xstrdup(caption);
    Rng r;
    rng_init(&r, seed);
    const char **pool = NULL;
    int np = 0;
    char **owned = NULL;
    if (!noise_captions) {
        np = wiki_non_visual(w, cls, &pool);
        if (np < 0) np = 0;
    }
    size_t len = strlen(caption) + 4;
    char **pick = xcalloc((size_t)k, sizeof(char *));
    owned = xcalloc((size_t)k, sizeof(char *));
    int *used = np ? xcalloc((size_t)np, sizeof(int)) : NULL;
    int n_used = 0;
    for (int j = 0; j < k; j++) {
        if (!noise_captions && np > 0) {
            int x = (int)rng_below(&r, (uint32_t)np);
            if (n_used < np)
                while (used[x]) x = (x + 1) % np;
            used[x] = 1;
            n_used++;
            pick[j] = (char *)pool[x];
        } else { /* a caption of another class (train split) */
            const CubSplit *sp = &cub->train;
            const CubImage *im;
            do im = &sp->images[rng_below(&r, (uint32_t)sp->n)];
            while (im->class_id == cls);
            int c = (int)rng_below(&r, CUB_CAPTIONS_PER_IMAGE);
            while (im->cap_len[c] <= 0) c = (c + 1) % CUB_CAPTIONS_PER_IMAGE;
            owned[j] = caption_text(cub, im, c);
            pick[j] = owned[j];
        }
        len += strlen(pick[j]) + 4;
    }
    int at = (int)rng_below(&r, (uint32_t)(k + 1));
    char *s = xcalloc(len, 1);
    for (int j = 0; j <= k; j++) {
        const char *part = j == at ? caption : pick[j < at ? j : j - 1];
        if (j) strcat(s, " ");
        strcat(s, part);
        size_t l = strlen(s);
        if (l && s[l - 1] != '.') strcat(s, " .");
    }
    for (int j = 0; j < k; j++) free(owned[j]);
    free(owned);
    free(pick);
    free(used);
    free(pool);
    return s;
}

/* ------------------------------------------------------------------ rows */
typedef struct Row {
    char name[128];
    char handling[32];
    int k;
    int n;
    RPrecision rp;
    double fid;
    int has_fid;
    double seconds;
} Row;

/* DAMSM sentence codes (n, E) of the clean captions: ZSL G of the LSTM code with image i's noise. */
static void text_codes(const GenModel *m, const EvalSet *es, uint64_t seed, float *out) {
    int E = m->mc.embedding_dim, Z = m->mc.zsl_z;
    Tape tp;
    tape_init(&tp);
    tape_no_grad_begin(&tp);
    Tensor *code = TNEW(&tp, es->n, E), *z = TNEW(&tp, es->n, Z);
    GenOptions o;
    gen_options_default(&o);
    for (int i = 0; i < es->n; i++) {
        if (gen_text_code(m, es->text[i], &o, code->data + (size_t)i * E, NULL))
            memset(code->data + (size_t)i * E, 0, (size_t)E * sizeof(float)); /* no known word: never matches */
        gen_noise(seed + (uint64_t)i, 0, Z, z->data + (size_t)i * Z);
    }
    Tensor *s = zsl_g_forward(&tp, &m->te.zsl_g, code, z);
    memcpy(out, s->data, (size_t)es->n * E * sizeof(float));
    tape_free(&tp);
}

/* Draws one image per evaluation caption (with k noise sentences) and encodes it. */
static int generate_row(const GenModel *g, ImageEncoder *ie, const EvalSet *es, const Cub *cub, const Wiki *w, const EvalArgs *a, int k,
                        GenLongText mode, Feats *f, Progress *pr, int64_t *done) {
    int S = 64 << (gen_model_stages(g) - 1);
    float *buf = xmalloc((size_t)IE_BATCH * 3 * S * S * sizeof(float));
    int nb = 0, rc = 0;
    GenOptions o;
    gen_options_default(&o);
    o.long_text = mode;
    for (int i = 0; i < es->n && !rc; i++) {
        char *text = noisy_text(es->text[i], k, es->cls[i], w, cub, a->noise_captions, a->seed * 7919u + (uint64_t)i * 131u + (uint64_t)k);
        o.seed = a->seed + (uint64_t)i;
        GenResult r;
        if (gen_run(g, text, &o, &r)) {
            /* a caption without known words (none in CUB's test captions): a blank image */
            memset(buf + (size_t)nb * 3 * S * S, 0, (size_t)3 * S * S * sizeof(float));
        } else {
            memcpy(buf + (size_t)nb * 3 * S * S, r.imgs[r.n_stages - 1], (size_t)3 * S * S * sizeof(float));
            gen_result_free(&r);
        }
        free(text);
        if (++nb == IE_BATCH || i == es->n - 1) {
            feats_add(ie, buf, nb, S, f);
            nb = 0;
        }
        (*done)++;
        if (pr) progress_update(pr, *done, 0, NULL, NULL);
    }
    free(buf);
    return rc;
}

/* ------------------------------------------------------------------ the program */
typedef struct Zsl {
    char text[64];
    int classes;
    double acc;
} Zsl;

static int zsl_rows(const GenModel *m, const Cub *cub, const Wiki *w, const Feats *real, const int *real_cls, uint64_t seed, Zsl *out) {
    /* the classes with photos */
    int E = m->mc.embedding_dim, Z = m->mc.zsl_z, nc = 0;
    int classes[256];
    for (int i = 0; i < real->n; i++) {
        int seen = 0;
        for (int c = 0; c < nc && !seen; c++) seen = classes[c] == real_cls[i];
        if (!seen && nc < 256) classes[nc++] = real_cls[i];
    }
    float *proto = xmalloc((size_t)nc * E * sizeof(float));
    int *pcls = xmalloc((size_t)nc * sizeof(int));
    for (int variant = 0; variant < 2; variant++) {
        for (int c = 0; c < nc; c++) {
            float *code = xcalloc((size_t)E, sizeof(float));
            GenOptions o;
            gen_options_default(&o);
            if (variant == 0) { /* the Wikipedia article through the long-text handling */
                char *doc = wiki_document(w, classes[c]);
                if (!doc || gen_text_code(m, doc, &o, code, NULL)) memset(code, 0, (size_t)E * sizeof(float));
                free(doc);
            } else { /* the mean LSTM code of the class's test captions */
                int cnt = 0, cap = 0;
                char **texts = NULL;
                for (int i = 0; i < cub->test.n; i++) {
                    const CubImage *im = &cub->test.images[i];
                    if (im->class_id != classes[c]) continue;
                    for (int k = 0; k < CUB_CAPTIONS_PER_IMAGE; k++) {
                        if (im->cap_len[k] <= 0) continue;
                        if (cnt == cap) texts = xrealloc(texts, (size_t)(cap = cap ? 2 * cap : 256) * sizeof(char *));
                        texts[cnt++] = caption_text(cub, im, k);
                    }
                }
                float *codes = xmalloc((size_t)(cnt ? cnt : 1) * E * sizeof(float));
                int *known = xmalloc((size_t)(cnt ? cnt : 1) * sizeof(int));
                gen_lstm_codes(&m->te, &m->vocab, (const char *const *)texts, cnt, codes, known);
                int used = 0;
                for (int i = 0; i < cnt; i++) {
                    if (known[i]) {
                        for (int e = 0; e < E; e++) code[e] += codes[(size_t)i * E + e];
                        used++;
                    }
                    free(texts[i]);
                }
                for (int e = 0; e < E && used; e++) code[e] /= (float)used;
                free(texts);
                free(codes);
                free(known);
            }
            /* the prototype: the mean of ZSL G's outputs over ZSL_DRAWS noise draws */
            Tape tp;
            tape_init(&tp);
            tape_no_grad_begin(&tp);
            Tensor *cc = TNEW(&tp, ZSL_DRAWS, E), *z = TNEW(&tp, ZSL_DRAWS, Z);
            for (int j = 0; j < ZSL_DRAWS; j++) {
                memcpy(cc->data + (size_t)j * E, code, (size_t)E * sizeof(float));
                gen_noise(seed + (uint64_t)classes[c], j, Z, z->data + (size_t)j * Z);
            }
            Tensor *s = zsl_g_forward(&tp, &m->te.zsl_g, cc, z);
            for (int e = 0; e < E; e++) {
                double acc = 0;
                for (int j = 0; j < ZSL_DRAWS; j++) acc += s->data[(size_t)j * E + e];
                proto[(size_t)c * E + e] = (float)(acc / ZSL_DRAWS);
            }
            pcls[c] = classes[c];
            tape_free(&tp);
            free(code);
        }
        snprintf(out[variant].text, sizeof out[variant].text, "%s", variant == 0 ? "Wikipedia article" : "the class's captions");
        if (zsl_accuracy(real->code, real_cls, real->n, proto, pcls, nc, E, &out[variant].acc, &out[variant].classes)) {
            free(proto);
            free(pcls);
            return -1;
        }
    }
    free(proto);
    free(pcls);
    return 0;
}

static const char *trunk_name(const GenModel *m, const char *path) {
    static char buf[1200];
    if (!strcmp(m->tc.extra.inception, "torchvision"))
        snprintf(buf, sizeof buf, "torchvision inception_v3 weights (%s)", path);
    else
        snprintf(buf, sizeof buf, "Keras Inception-v3 of nsfwjs 4.4.0 (uint8-quantised, fine-tuned for NSFW classification; %s): "
                                  "not the network of published FIDs", path);
    return buf;
}

/* torchvision inception_v3 weights (safetensors with torchvision's keys) as the FID network. */
static int load_fid_net(ImageEncoder *ie, const ModelConfig *mc, const char *path) {
    image_encoder_init(ie, mc);
    int rc = nn_load_file(&ie->ps, path, LOAD_PARTIAL | LOAD_IGNORE_UNEXPECTED | LOAD_NBT_OPTIONAL);
    for (int i = 0; !rc && i < ie->ps.n; i++)
        if (image_encoder_is_trunk_key(ie->ps.entries[i]->name) && !ie->ps.entries[i]->loaded)
            rc = err_set("%s: trunk tensor %s missing (torchvision inception_v3 names expected)", path, ie->ps.entries[i]->name);
    if (rc) { image_encoder_free(ie); return -1; }
    ie->train = 0;
    return 0;
}

static int load_trunk(GenModel *m, const char *path) {
    if (!m->has_ie) return err_set("%s has no image_encoder.safetensors: R-precision and zero-shot accuracy need the DAMSM image heads", m->dir);
    if (!strcmp(m->tc.extra.inception, "torchvision")) {
        if (nn_load_file(&m->ie.ps, path, LOAD_PARTIAL | LOAD_IGNORE_UNEXPECTED | LOAD_NBT_OPTIONAL)) return -1;
    } else if (keras_inception_load(&m->ie, path)) return -1;
    m->ie.train = 0;
    return 0;
}

int eval_main(const EvalArgs *a) {
    double t_start = now_s();
    int rc = 0;
    GenModel m, base;
    int has_base = 0;
    memset(&base, 0, sizeof base);
    if (gen_model_load(&m, a->model)) { fprintf(stderr, "attngan eval: %s\n", err_msg()); return 2; }
    const char *inc = a->inception ? a->inception : m.tc.extra.inception_weights;
    if (!inc[0]) { fprintf(stderr, "attngan eval: the model's config names no Inception weights: give --inception DIR\n"); gen_model_free(&m); return 2; }
    if (load_trunk(&m, inc)) { fprintf(stderr, "attngan eval: %s\n", err_msg()); gen_model_free(&m); return 2; }
    ImageEncoder fid_net;
    g_fid_net = NULL;
    if (a->fid_inception) {
        if (load_fid_net(&fid_net, &m.mc, a->fid_inception)) { fprintf(stderr, "attngan eval: --fid-inception: %s\n", err_msg()); gen_model_free(&m); return 2; }
        g_fid_net = &fid_net;
    }
    char fid_name[1300];
    if (a->fid_inception) snprintf(fid_name, sizeof fid_name, "torchvision inception_v3 weights (%s)", a->fid_inception);
    else snprintf(fid_name, sizeof fid_name, "%s", trunk_name(&m, inc));
    if (a->baseline) {
        if (gen_model_load(&base, a->baseline)) { fprintf(stderr, "attngan eval: --baseline: %s\n", err_msg()); gen_model_free(&m); return 2; }
        has_base = 1;
        if (gen_model_stages(&base) != gen_model_stages(&m))
            fprintf(stderr, "attngan eval: warning: the baseline draws %d px images, the model %d px\n", 64 << (gen_model_stages(&base) - 1),
                    64 << (gen_model_stages(&m) - 1));
    }
    const char *data = a->data ? a->data : m.tc.data_dir;
    Cub cub;
    if (cub_open(&cub, data)) { fprintf(stderr, "attngan eval: %s\n", err_msg()); gen_model_free(&m); return 2; }
    char wbuf[2300];
    const char *wdir = a->wiki;
    if (!wdir) { snprintf(wbuf, sizeof wbuf, "%s/../wikipedia", data); wdir = wbuf; }
    Wiki wiki;
    if (wiki_open(&wiki, wdir)) { fprintf(stderr, "attngan eval: %s\n", err_msg()); cub_close(&cub); gen_model_free(&m); return 2; }
    if (mkdir_p(a->out)) { fprintf(stderr, "attngan eval: %s\n", err_msg()); rc = 1; goto done0; }

    int E = m.mc.embedding_dim, S = 64 << (gen_model_stages(&m) - 1);
    EvalSet es;
    eval_set_build(&es, &cub, a->n, a->seed);
    if (es.n < 2 * a->candidates) {
        fprintf(stderr, "attngan eval: %d evaluation captions: R-precision with %d candidates needs at least %d (--n)\n", es.n,
                a->candidates, 2 * a->candidates);
        eval_set_free(&es);
        rc = 2;
        goto done0;
    }
    /* real photos: every present test photo once, centre crop at the model's size */
    LoaderConfig lc;
    loader_config_default(&lc);
    lc.batch_size = 1; /* the loader has no partial last batch: one photo at a time, encoded IE_BATCH at a time */
    lc.base_size = 64;
    lc.branch_num = gen_model_stages(&m);
    lc.words_num = m.mc.words_num;
    lc.threads = 1;
    lc.seed = a->seed;
    lc.shuffle = 0;
    lc.augment = 0;
    lc.only_available = 1;
    Loader *ld;
    if (loader_open(&ld, &cub, &cub.test, &lc)) { fprintf(stderr, "attngan eval: %s\n", err_msg()); rc = 2; eval_set_free(&es); goto done0; }
    int n_real = loader_samples(ld), real_batches = loader_batches_per_epoch(ld);
    /* rows to draw */
    int n_rows = 1 + a->n_ks + (a->n_ks - (a->ks[0] == 0 ? 1 : 0));
    if (has_base) n_rows += a->n_ks;
    Row *rows = xcalloc((size_t)n_rows + 1, sizeof(Row));
    int64_t total = n_real, done = 0;
    for (int j = 0; j < a->n_ks; j++) total += (int64_t)es.n * ((a->ks[j] > 0 ? 2 : 1) + has_base);
    Progress *pr = a->quiet ? NULL : progress_new("eval", total, stdout);
    if (!a->quiet)
        printf("eval: %d captions of %d test images, %d real photos, noise k =", es.n, cub.test.n, n_real);
    for (int j = 0; j < a->n_ks && !a->quiet; j++) printf(" %d", a->ks[j]);
    if (!a->quiet) printf(" (%s)\n", a->noise_captions ? "other classes' captions" : "non-visual Wikipedia sentences");

    /* real row */
    Feats real;
    feats_init(&real, E, n_real);
    int *real_cls = xmalloc((size_t)n_real * sizeof(int));
    char **real_text = xcalloc((size_t)n_real, sizeof(char *));
    double t0 = now_s();
    {
        float *rbuf = xmalloc((size_t)IE_BATCH * 3 * S * S * sizeof(float));
        int nb = 0;
        for (int b = 0; b < real_batches; b++) {
            const Batch *bt;
            if (loader_next(ld, &bt)) { fprintf(stderr, "attngan eval: %s\n", err_msg()); rc = 1; break; }
            const CubImage *im = &cub.test.images[bt->image_index[0]];
            real_cls[real.n + nb] = im->class_id;
            real_text[real.n + nb] = caption_text(&cub, im, bt->caption_index[0]);
            memcpy(rbuf + (size_t)nb * 3 * S * S, bt->imgs[bt->n_scales - 1], (size_t)3 * S * S * sizeof(float));
            if (++nb == IE_BATCH || b == real_batches - 1) {
                feats_add(&m.ie, rbuf, nb, S, &real);
                nb = 0;
            }
            done++;
            if (pr) progress_update(pr, done, 0, NULL, NULL);
        }
        free(rbuf);
    }
    loader_close(ld);
    if (rc) goto done1;
    {
        EvalSet rs = {real.n, NULL, NULL, real_cls, xmalloc((size_t)real.n * sizeof(int)), real_text};
        make_groups(real_text, real.n, rs.group);
        float *tc = xmalloc((size_t)real.n * E * sizeof(float));
        text_codes(&m, &rs, a->seed + 1000000, tc);
        Row *r = &rows[0];
        snprintf(r->name, sizeof r->name, "real test-class photos (their own captions; FID: even vs odd)");
        snprintf(r->handling, sizeof r->handling, "-");
        r->n = real.n;
        if (r_precision(real.code, tc, real.n, E, a->candidates, a->folds, a->seed, rs.group, NULL, &r->rp)) {
            fprintf(stderr, "attngan eval: real row: %s\n", err_msg());
            rc = 1;
        }
        r->seconds = now_s() - t0;
        free(tc);
        free(rs.group);
    }
    if (rc) goto done1;
    double *mu_r = xmalloc((size_t)POOL_D * sizeof(double)), *cov_r = xmalloc((size_t)POOL_D * POOL_D * sizeof(double));
    double *mu_g = xmalloc((size_t)POOL_D * sizeof(double)), *cov_g = xmalloc((size_t)POOL_D * POOL_D * sizeof(double));
    if (fid_stats(real.pool, real.n, POOL_D, mu_r, cov_r)) { fprintf(stderr, "attngan eval: %s\n", err_msg()); rc = 1; }
    if (!rc) { /* the floor at this sample size: the even against the odd real photos (both halves span every class) */
        int ne = (real.n + 1) / 2, no = real.n / 2;
        float *ev = xmalloc((size_t)ne * POOL_D * sizeof(float)), *od = xmalloc((size_t)(no ? no : 1) * POOL_D * sizeof(float));
        for (int i = 0; i < real.n; i++)
            memcpy((i % 2 ? od : ev) + (size_t)(i / 2) * POOL_D, real.pool + (size_t)i * POOL_D, POOL_D * sizeof(float));
        if (fid(ev, ne, od, no, POOL_D, &rows[0].fid)) { fprintf(stderr, "attngan eval: %s\n", err_msg()); rc = 1; }
        else rows[0].has_fid = 1;
        free(ev);
        free(od);
    }
    float *tcodes = xmalloc((size_t)es.n * E * sizeof(float));
    text_codes(&m, &es, a->seed, tcodes);
    int nr = 1;
    for (int model_i = 0; model_i < 1 + has_base && !rc; model_i++) {
        const GenModel *g = model_i ? &base : &m;
        for (int j = 0; j < a->n_ks && !rc; j++) {
            for (int mode = 0; mode < 2 && !rc; mode++) {
                if (mode == 1 && (a->ks[j] == 0 || model_i)) continue;
                Row *r = &rows[nr++];
                snprintf(r->name, sizeof r->name, "%s%s", model_i ? "baseline " : "", model_i ? a->baseline : a->model);
                snprintf(r->handling, sizeof r->handling, "%s", mode ? "subset (AttnGAN)" : "select");
                r->k = a->ks[j];
                r->n = es.n;
                double t1 = now_s();
                Feats f;
                feats_init(&f, E, es.n);
                generate_row(g, &m.ie, &es, &cub, &wiki, a, a->ks[j], mode ? GEN_LONG_SUBSET : GEN_LONG_SELECT, &f, pr, &done);
                if (r_precision(f.code, tcodes, es.n, E, a->candidates, a->folds, a->seed, es.group, NULL, &r->rp)) rc = 1;
                if (!rc && !fid_stats(f.pool, f.n, POOL_D, mu_g, cov_g) && !fid_from_stats(mu_g, cov_g, mu_r, cov_r, POOL_D, &r->fid))
                    r->has_fid = 1;
                else if (!rc) rc = 1;
                if (rc) fprintf(stderr, "attngan eval: %s\n", err_msg());
                r->seconds = now_s() - t1;
                feats_free(&f);
            }
        }
    }
    if (pr) progress_done(pr);
    Zsl zr[2];
    memset(zr, 0, sizeof zr);
    if (!rc && zsl_rows(&m, &cub, &wiki, &real, real_cls, a->seed, zr)) { fprintf(stderr, "attngan eval: zero-shot: %s\n", err_msg()); rc = 1; }
    if (!rc) {
        /* the report */
        double elapsed = now_s() - t_start;
        cJSON *j = cJSON_CreateObject();
        cJSON *st = cJSON_AddObjectToObject(j, "settings");
        cJSON_AddStringToObject(st, "model", a->model);
        cJSON_AddStringToObject(st, "trained_on", m.trained_on);
        cJSON_AddNumberToObject(st, "model_steps", (double)m.steps);
        cJSON_AddNumberToObject(st, "image_size", S);
        if (has_base) cJSON_AddStringToObject(st, "baseline", a->baseline);
        cJSON_AddStringToObject(st, "data", data);
        cJSON_AddStringToObject(st, "feature_network", fid_name);
        cJSON_AddStringToObject(st, "damsm_trunk", trunk_name(&m, inc));
        cJSON_AddStringToObject(st, "evaluator", "the model's own DAMSM text encoder and image heads");
        cJSON_AddNumberToObject(st, "captions", es.n);
        cJSON_AddNumberToObject(st, "real_photos", real.n);
        cJSON_AddNumberToObject(st, "seed", (double)a->seed);
        cJSON_AddNumberToObject(st, "folds", a->folds);
        cJSON_AddNumberToObject(st, "candidates", a->candidates);
        cJSON_AddStringToObject(st, "noise", a->noise_captions ? "captions of other classes" : "Wikipedia sentences judged not visual (label 0) of the caption's class");
        cJSON_AddNumberToObject(st, "seconds", elapsed);
        cJSON *ra = cJSON_AddArrayToObject(j, "rows");
        for (int i = 0; i < nr; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "images", rows[i].name);
            cJSON_AddStringToObject(o, "long_text", rows[i].handling);
            cJSON_AddNumberToObject(o, "noise_k", rows[i].k);
            cJSON_AddNumberToObject(o, "n", rows[i].n);
            cJSON_AddNumberToObject(o, "r_precision", rows[i].rp.mean);
            cJSON_AddNumberToObject(o, "r_precision_std", rows[i].rp.std);
            if (rows[i].has_fid) cJSON_AddNumberToObject(o, "fid", rows[i].fid);
            else cJSON_AddNullToObject(o, "fid");
            cJSON_AddNumberToObject(o, "seconds", rows[i].seconds);
            cJSON_AddItemToArray(ra, o);
        }
        cJSON *za = cJSON_AddArrayToObject(j, "zero_shot");
        for (int i = 0; i < 2; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "class_text", zr[i].text);
            cJSON_AddNumberToObject(o, "classes", zr[i].classes);
            cJSON_AddNumberToObject(o, "top1_per_class", zr[i].acc);
            cJSON_AddNumberToObject(o, "chance", zr[i].classes ? 1.0 / zr[i].classes : 0);
            cJSON_AddItemToArray(za, o);
        }
        char *txt = cJSON_Print(j);
        char path[2300];
        snprintf(path, sizeof path, "%s/report.json", a->out);
        if (write_file_atomic(path, txt, strlen(txt))) { fprintf(stderr, "attngan eval: %s\n", err_msg()); rc = 1; }
        free(txt);
        cJSON_Delete(j);
        /* markdown */
        size_t cap = 16384;
        char *md = xcalloc(cap, 1);
        size_t l = 0;
#define MD(...) do { l += (size_t)snprintf(md + l, cap - l, __VA_ARGS__); if (l >= cap - 1024) { cap *= 2; md = xrealloc(md, cap); } } while (0)
        MD("# Evaluation of %s\n\n", a->model);
        MD("- model: %s%s%s, %lld GAN steps, %d px\n", a->model, m.trained_on[0] ? ", trained on " : "", m.trained_on, m.steps, S);
        if (has_base) MD("- baseline: %s\n", a->baseline);
        MD("- data: %s; %d evaluation captions (caption i mod 10 of test image i%s), %d real test-class photos\n", data, es.n,
           es.n < cub.test.n ? ", a seeded subset" : "", real.n);
        MD("- evaluator: the model's own DAMSM (text encoder, image heads) on the DAMSM trunk below\n");
        MD("- FID feature network (2048-d pool features): %s\n", fid_name);
        MD("- DAMSM trunk: %s\n", trunk_name(&m, inc));
        MD("- R-precision: each image against its clean caption and %d mismatched ones (never the same text), cosine, "
           "top-1 (ties count as wrong), %d folds covering every image: mean and std over folds; chance %.3f\n",
           a->candidates - 1, a->folds, 1.0 / a->candidates);
        MD("- noise: k %s added around the caption (it takes a random place)\n",
           a->noise_captions ? "captions of other classes" : "sentences of the class's Wikipedia article judged not visual");
        MD("- long text: *select* = relevance-scored sentences (attngan generate --help), *subset (AttnGAN)* = a random order-preserving "
           "18-word subset of the whole text, as AttnGAN's get_caption\n");
        MD("- seed %llu; %.0f s in all\n\n", (unsigned long long)a->seed, elapsed);
        MD("| images | long text | noise k | n | R-precision | FID |\n|---|---|---:|---:|---|---:|\n");
        for (int i = 0; i < nr; i++) {
            MD("| %s | %s | %d | %d | %.4f ± %.4f | ", rows[i].name, rows[i].handling, rows[i].k, rows[i].n, rows[i].rp.mean, rows[i].rp.std);
            if (rows[i].has_fid) MD("%.2f |\n", rows[i].fid);
            else MD("- |\n");
        }
        MD("\nFID is against the %d real photos; the real row's FID is that of its even against its odd photos, the floor at "
           "this sample size (FID is biased upwards with few images; compare rows, not papers).\n", real.n);
        MD("The evaluator is the model's own DAMSM, which the GAN was trained to satisfy (its DAMSM loss): generated images can "
           "score above the real photos, whose R-precision shows how well that DAMSM matches real photos to their captions.\n\n");
        MD("## Zero-shot classification (GAZSL's protocol)\n\n");
        MD("Real photos of the test classes (unseen in training) assigned to the nearest class prototype (cosine of DAMSM codes); "
           "a prototype is the mean of ZSL G's outputs for %d noise draws from the class text. Top-1 per class, averaged over classes.\n\n",
           ZSL_DRAWS);
        MD("| class text | classes | top-1 per class | chance |\n|---|---:|---:|---:|\n");
        for (int i = 0; i < 2; i++) MD("| %s | %d | %.4f | %.4f |\n", zr[i].text, zr[i].classes, zr[i].acc, zr[i].classes ? 1.0 / zr[i].classes : 0);
#undef MD
        snprintf(path, sizeof path, "%s/report.md", a->out);
        if (!rc && write_file_atomic(path, md, strlen(md))) { fprintf(stderr, "attngan eval: %s\n", err_msg()); rc = 1; }
        if (!rc) {
            fputs(md, stdout);
            printf("\nreport: %s/report.md and %s/report.json\n", a->out, a->out);
        }
        free(md);
    }
    free(tcodes);
    free(mu_r);
    free(cov_r);
    free(mu_g);
    free(cov_g);
done1:
    for (int i = 0; i < n_real; i++) free(real_text[i]);
    free(real_text);
    free(real_cls);
    feats_free(&real);
    free(rows);
    eval_set_free(&es);
done0:
    if (g_fid_net) image_encoder_free(g_fid_net);
    g_fid_net = NULL;
    wiki_close(&wiki);
    cub_close(&cub);
    if (has_base) gen_model_free(&base);
    gen_model_free(&m);
    return rc;
}
