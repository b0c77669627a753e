/* evaluate.c: `attngan eval` and `attngan eval --train-classifier`; see evaluate.h. */
#include "evaluate.h"
#include "classifier.h"
#include "evaluator.h"
#include "metrics.h"
#include "../data/cub.h"
#include "../data/loader.h"
#include "../data/wikipedia.h"
#include "../io/locate.h"
#include "../gen/gen.h"
#include "../nn/load.h"
#include "../ops/conv2d.h"
#include "../io/files.h"
#include "../io/image.h"
#include "../core/progress.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define POOL_D EVAL_POOL_D
#define IE_BATCH 16
#define KID_SUBSETS 100
#define KID_SUBSET_SIZE 1000
#define IS_SPLITS 10
#define EVAL_MAX_GEN_SEEDS 20

void eval_args_default(EvalArgs *a) {
    memset(a, 0, sizeof *a);
    a->evaluator = EVAL_DEFAULT_EVALUATOR;
    a->out = "out/eval";
    a->ks[0] = 0, a->ks[1] = 1, a->ks[2] = 3, a->ks[3] = 10;
    a->n_ks = 4;
    a->seed = 1234;
    a->gen_seeds = 3;
    a->folds = 10;
    a->candidates = 100;
    a->size = 64;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Fisher-Yates of v (n) from rng_init(seed). */
static void shuffle_ints(int *v, int n, uint64_t seed) {
    Rng r;
    rng_init(&r, seed);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(&r, (uint32_t)i + 1), t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* ------------------------------------------------------------------ image features */
typedef struct Feats {
    int n, cap, E;
    float *code;              /* (n, E) the evaluator's image codes */
    float *pool;              /* (n, 2048) FID/KID features (the evaluator trunk's, or --fid-inception's) */
    float *clf;               /* (n, CLF_FEATURES) the evaluator trunk's pool and mean Mixed_6e */
    float *region;            /* (n, E, EVAL_REGIONS) the evaluator's region features */
} Feats;
#define REGION_D(E) ((size_t)(E) * EVAL_REGIONS)

static void feats_init(Feats *f, int E, int cap) {
    f->E = E;
    f->n = 0;
    f->cap = cap;
    f->code = xmalloc((size_t)(cap ? cap : 1) * E * sizeof(float));
    f->pool = xmalloc((size_t)(cap ? cap : 1) * POOL_D * sizeof(float));
    f->clf = xmalloc((size_t)(cap ? cap : 1) * CLF_FEATURES * sizeof(float));
    f->region = xmalloc((size_t)(cap ? cap : 1) * REGION_D(E) * sizeof(float));
}
/* Codes only (n, E): what zsl_rows reads. */
static void feats_init_codes(Feats *f, int E, int n) {
    memset(f, 0, sizeof *f);
    f->E = E;
    f->n = f->cap = n;
    f->code = xmalloc((size_t)(n ? n : 1) * E * sizeof(float));
}
static void feats_free(Feats *f) {
    free(f->code);
    free(f->pool);
    free(f->clf);
    free(f->region);
    memset(f, 0, sizeof *f);
}

typedef struct Ctx {
    const EvalArgs *a;
    Evaluator ev;
    ImageEncoder fid_net;
    int has_fid_net;
    char fid_hash[17];        /* FNV-1a 64 of the --fid-inception network's values */
    const char *data;         /* the data directory */
    char photo_cache[PATH_MAX + 64]; /* the real photos' feature cache file, or "" (none) */
    int photos_read, photos_encoded;
} Ctx;

/* B images (B, 3, S, S) in [-1, 1] through the evaluator (and the FID network). */
static void feats_add(Ctx *x, const float *imgs, int B, int S, Feats *f) {
    CHECK(f->n + B <= f->cap, "feats_add: capacity");
    float *tpool = xmalloc((size_t)B * POOL_D * sizeof(float)), *mixed = xmalloc((size_t)B * EVAL_MIXED_D * sizeof(float));
    evaluator_images(&x->ev, imgs, B, S, f->code + (size_t)f->n * f->E, tpool, mixed, f->region + (size_t)f->n * REGION_D(f->E));
    for (int b = 0; b < B; b++) {
        float *c = f->clf + (size_t)(f->n + b) * CLF_FEATURES;
        memcpy(c, tpool + (size_t)b * POOL_D, POOL_D * sizeof(float));
        memcpy(c + POOL_D, mixed + (size_t)b * EVAL_MIXED_D, EVAL_MIXED_D * sizeof(float));
    }
    if (x->has_fid_net) {
        Tape tp;
        tape_init_on(&tp, x->fid_net.ps.device);
        tape_no_grad_begin(&tp);
        Tensor *t = TNEW(&tp, B, 3, S, S);
        tensor_upload(t, imgs);
        ImageEncoderOut o = image_encoder_forward(&tp, &x->fid_net, t);
        tensor_download(o.trunk_pool, f->pool + (size_t)f->n * POOL_D); /* (B, 2048) */
        tape_free(&tp);
    } else memcpy(f->pool + (size_t)f->n * POOL_D, tpool, (size_t)B * POOL_D * sizeof(float));
    f->n += B;
    free(tpool);
    free(mixed);
}

/* ------------------------------------------------------------------ real photos */
/* The present test photos of the classes that have photos, in split order; max > 0: a seeded
 * subset of max balanced over the classes (each class's photos in a seeded order, taken round by
 * round over the classes). */
static int *select_photos(const Cub *cub, int max, uint64_t seed, int *n_out) {
    const CubSplit *sp = &cub->test;
    int *all = xmalloc((size_t)(sp->n ? sp->n : 1) * sizeof(int)), n = 0;
    for (int i = 0; i < sp->n; i++)
        if (sp->images[i].present) all[n++] = i;
    if (max > 0 && max < n) {
        /* per class, shuffled */
        int *cls = xmalloc((size_t)n * sizeof(int)), nc = 0;
        for (int i = 0; i < n; i++) {
            int c = sp->images[all[i]].class_id, seen = 0;
            for (int k = 0; k < nc && !seen; k++) seen = cls[k] == c;
            if (!seen) cls[nc++] = c;
        }
        int **lists = xcalloc((size_t)nc, sizeof(int *)), *len = xcalloc((size_t)nc, sizeof(int));
        for (int k = 0; k < nc; k++) {
            lists[k] = xmalloc((size_t)n * sizeof(int));
            for (int i = 0; i < n; i++)
                if (sp->images[all[i]].class_id == cls[k]) lists[k][len[k]++] = all[i];
            shuffle_ints(lists[k], len[k], seed * 31u + (uint64_t)cls[k]);
        }
        int m = 0;
        for (int round = 0; m < max; round++)
            for (int k = 0; k < nc && m < max; k++)
                if (round < len[k]) all[m++] = lists[k][round];
        n = m;
        qsort(all, (size_t)n, sizeof(int), cmp_int);
        for (int k = 0; k < nc; k++) free(lists[k]);
        free(lists);
        free(len);
        free(cls);
    }
    *n_out = n;
    return all;
}

/* The photos image[0..n) (indices into split sp) at S px (centre crop, no flip; tight crops framed
 * with tight_pad) through the evaluator, IE_BATCH at a time. */
static int encode_split_photos(Ctx *x, const Cub *cub, const CubSplit *sp, const int *image, int n, int S, int tight_pad, Feats *f, Progress *pr,
                               int64_t *done) {
    LoaderConfig lc;
    loader_config_default(&lc);
    lc.base_size = S;
    lc.branch_num = 1;
    lc.augment = 0;
    lc.tight_pad = tight_pad;
    lc.words_num = 64;
    float *imgs = xmalloc((size_t)IE_BATCH * 3 * S * S * sizeof(float));
    int64_t caps[IE_BATCH * 64], cls[IE_BATCH];
    int lens[IE_BATCH], ii[IE_BATCH], ci[IE_BATCH], rc = 0;
    for (int i0 = 0; i0 < n && !rc; i0 += IE_BATCH) {
        int nb = n - i0 < IE_BATCH ? n - i0 : IE_BATCH;
        Batch b;
        memset(&b, 0, sizeof b);
        b.B = nb, b.T = lc.words_num, b.n_scales = 1, b.sizes[0] = S, b.imgs[0] = imgs;
        b.captions = caps, b.cap_lens = lens, b.class_ids = cls, b.image_index = ii, b.caption_index = ci;
        for (int k = 0; k < nb && !rc; k++) rc = loader_make_sample(cub, &sp->images[image[i0 + k]], &lc, 1, &b, k);
        if (rc) break;
        feats_add(x, imgs, nb, S, f);
        *done += nb;
        if (pr) progress_update(pr, *done, 0, NULL, NULL);
    }
    free(imgs);
    return rc;
}
/* The same for test photos. */
static int encode_photos(Ctx *x, const Cub *cub, const int *image, int n, int S, int tight_pad, Feats *f, Progress *pr, int64_t *done) {
    return encode_split_photos(x, cub, &cub->test, image, n, S, tight_pad, f, pr, done);
}

/* ------------------------------------------------------------------ the real photos' feature cache */
/* The real photos' features (the evaluator's codes, the FID/KID pool features, the classifier's
 * features) are the same on every run with the same evaluator, trunk, image size, framing, FID
 * network, data, device and convolution settings: they are kept in
 * CACHE/photos-<hash of that key>.safetensors ("code", "pool", "clf", "region" f32, one row per photo;
 * metadata "key" and "photos", the photo keys one a line), written atomically every
 * PHOTO_CACHE_EVERY photos as they are encoded, so an eval stopped midway keeps them too. Photos
 * of other subsets (--photos) accumulate in the same file. */
#define PHOTO_CACHE_EVERY 128

static uint64_t fnv1a64(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static const char *env_or(const char *var, const char *dflt) {
    const char *v = getenv(var);
    return v && v[0] ? v : dflt;
}

/* What the features depend on, in words (the file's "key"). */
static char *photo_cache_key(const Ctx *x, int S) {
    char real_data[PATH_MAX];
    if (!realpath(x->data, real_data)) snprintf(real_data, sizeof real_data, "%s", x->data);
    size_t cap = 4096 + strlen(real_data);
    char *k = xmalloc(cap);
    snprintf(k, cap,
             "attngan eval real-photo features v2 (with region)\nevaluator weights %s\ntrunk %s\nsize %d\ntight_crop_pad %s\nfid %s\ndata %s\n"
             "device %s\nconv precision %s, ATTNGAN_CONV %s, ATTNGAN_CONV_ALGO %s, ATTNGAN_TRUNK_LAYOUT %s, ATTNGAN_DNNL_LAYOUT %s\n",
             x->ev.hash_hex, x->ev.trunk_hash, S, x->ev.tc.extra.tight_crop_pad, x->has_fid_net ? x->fid_hash : "the evaluator's trunk",
             real_data, device_name(device_current()), conv2d_get_precision() == CONV2D_BF16 ? "bf16" : "fp32", env_or("ATTNGAN_CONV", "-"),
             env_or("ATTNGAN_CONV_ALGO", "-"), env_or("ATTNGAN_TRUNK_LAYOUT", "-"), env_or("ATTNGAN_DNNL_LAYOUT", "-"));
    return k;
}

typedef struct PhotoCache {
    char path[PATH_MAX + 64];
    char *key;
    int n, cap, E;            /* rows held */
    char **photo;             /* their photo keys */
    float *code, *pool, *clf, *region;
    int dirty;
} PhotoCache;

static void photo_cache_free(PhotoCache *pc) {
    for (int i = 0; i < pc->n; i++) free(pc->photo[i]);
    free(pc->photo);
    free(pc->code);
    free(pc->pool);
    free(pc->clf);
    free(pc->region);
    free(pc->key);
    memset(pc, 0, sizeof *pc);
}

static void photo_cache_reserve(PhotoCache *pc, int n) {
    if (n <= pc->cap) return;
    pc->cap = n > 2 * pc->cap ? n : 2 * pc->cap;
    pc->photo = xrealloc(pc->photo, (size_t)pc->cap * sizeof(char *));
    pc->code = xrealloc(pc->code, (size_t)pc->cap * pc->E * sizeof(float));
    pc->pool = xrealloc(pc->pool, (size_t)pc->cap * POOL_D * sizeof(float));
    pc->clf = xrealloc(pc->clf, (size_t)pc->cap * CLF_FEATURES * sizeof(float));
    pc->region = xrealloc(pc->region, (size_t)pc->cap * REGION_D(pc->E) * sizeof(float));
}

/* Opens the cache of this key in dir (created), reading the rows it holds; a missing, unreadable or
 * other-key file is an empty cache. 0, or -1 (dir unusable: the caller goes on without a cache). */
static int photo_cache_open(PhotoCache *pc, const char *dir, const Ctx *x, int S) {
    memset(pc, 0, sizeof *pc);
    pc->E = x->ev.mc.embedding_dim;
    if (mkdir_p(dir)) return -1;
    pc->key = photo_cache_key(x, S);
    snprintf(pc->path, sizeof pc->path, "%s/photos-%016llx.safetensors", dir,
             (unsigned long long)fnv1a64(1469598103934665603ull, pc->key, strlen(pc->key)));
    if (access(pc->path, R_OK)) return 0;
    SafeTensors st;
    if (st_open(&st, pc->path)) return 0;
    const char *k = st_meta(&st, "key"), *photos = st_meta(&st, "photos");
    const StTensor *c = st_find(&st, "code");
    int n = c && c->ndim == 2 && c->shape[1] == pc->E ? (int)c->shape[0] : -1;
    if (k && photos && !strcmp(k, pc->key) && n > 0) {
        photo_cache_reserve(pc, n);
        int got = 0;
        for (const char *p = photos; *p && got < n;) {
            const char *e = strchr(p, '\n');
            size_t l = e ? (size_t)(e - p) : strlen(p);
            pc->photo[got] = xmalloc(l + 1);
            memcpy(pc->photo[got], p, l);
            pc->photo[got][l] = 0;
            got++;
            p += l + (e ? 1 : 0);
        }
        pc->n = got;
        if (got != n || st_read_f32(&st, "code", pc->code, (int64_t)n * pc->E) || st_read_f32(&st, "pool", pc->pool, (int64_t)n * POOL_D) ||
            st_read_f32(&st, "clf", pc->clf, (int64_t)n * CLF_FEATURES) ||
            st_read_f32(&st, "region", pc->region, (int64_t)n * (int64_t)REGION_D(pc->E))) {
            for (int i = 0; i < pc->n; i++) free(pc->photo[i]);
            pc->n = 0; /* damaged: start again */
        }
    }
    st_close(&st);
    return 0;
}

static int photo_cache_find(const PhotoCache *pc, const char *photo) {
    for (int i = 0; i < pc->n; i++)
        if (!strcmp(pc->photo[i], photo)) return i;
    return -1;
}

/* Adds (or replaces) the features of photo from row r of f. */
static void photo_cache_put(PhotoCache *pc, const char *photo, const Feats *f, int r) {
    int i = photo_cache_find(pc, photo);
    if (i < 0) {
        photo_cache_reserve(pc, pc->n + 1);
        i = pc->n++;
        pc->photo[i] = xstrdup(photo);
    }
    memcpy(pc->code + (size_t)i * pc->E, f->code + (size_t)r * f->E, (size_t)pc->E * sizeof(float));
    memcpy(pc->pool + (size_t)i * POOL_D, f->pool + (size_t)r * POOL_D, POOL_D * sizeof(float));
    memcpy(pc->clf + (size_t)i * CLF_FEATURES, f->clf + (size_t)r * CLF_FEATURES, CLF_FEATURES * sizeof(float));
    memcpy(pc->region + (size_t)i * REGION_D(pc->E), f->region + (size_t)r * REGION_D(f->E), REGION_D(pc->E) * sizeof(float));
    pc->dirty = 1;
}

static int photo_cache_write(PhotoCache *pc) {
    if (!pc->dirty || !pc->n) return 0;
    size_t len = 1;
    for (int i = 0; i < pc->n; i++) len += strlen(pc->photo[i]) + 1;
    char *list = xcalloc(len, 1), *p = list;
    for (int i = 0; i < pc->n; i++) p += sprintf(p, "%s\n", pc->photo[i]);
    StWriter *w = st_writer_new();
    st_writer_add(w, "code", ST_F32, 2, (int64_t[]){pc->n, pc->E}, pc->code);
    st_writer_add(w, "pool", ST_F32, 2, (int64_t[]){pc->n, POOL_D}, pc->pool);
    st_writer_add(w, "clf", ST_F32, 2, (int64_t[]){pc->n, CLF_FEATURES}, pc->clf);
    st_writer_add(w, "region", ST_F32, 3, (int64_t[]){pc->n, pc->E, EVAL_REGIONS}, pc->region);
    st_writer_meta(w, "key", pc->key);
    st_writer_meta(w, "photos", list);
    int rc = st_writer_write(w, pc->path);
    st_writer_free(w);
    free(list);
    if (!rc) pc->dirty = 0;
    return rc;
}

/* The photos image[0..n) through the evaluator into f (rows 0..n, f->n = n), reading those the
 * cache holds and encoding the others, PHOTO_CACHE_EVERY at a time, each chunk then written to the
 * cache. Without a cache directory (--no-cache) every photo is encoded. */
static int encode_photos_cached(Ctx *x, const Cub *cub, const int *image, int n, int S, int tight_pad, Feats *f, Progress *pr,
                                int64_t *done) {
    const EvalArgs *a = x->a;
    PhotoCache pc;
    int use = a->cache_dir && a->cache_dir[0];
    if (use && photo_cache_open(&pc, a->cache_dir, x, S)) {
        fprintf(stderr, "attngan eval: warning: the photo-feature cache %s is not usable (%s): encoding every photo\n", a->cache_dir, err_msg());
        use = 0;
    }
    if (!use) {
        x->photos_encoded += n;
        return encode_photos(x, cub, image, n, S, tight_pad, f, pr, done);
    }
    snprintf(x->photo_cache, sizeof x->photo_cache, "%s", pc.path);
    CHECK(f->n == 0 && f->cap >= n, "encode_photos_cached: an empty Feats of n rows");
    int *missing = xmalloc((size_t)(n ? n : 1) * sizeof(int)), n_miss = 0;
    for (int i = 0; i < n; i++) {
        int r = photo_cache_find(&pc, cub->test.images[image[i]].key);
        if (r < 0) { missing[n_miss++] = i; continue; }
        memcpy(f->code + (size_t)i * f->E, pc.code + (size_t)r * pc.E, (size_t)pc.E * sizeof(float));
        memcpy(f->pool + (size_t)i * POOL_D, pc.pool + (size_t)r * POOL_D, POOL_D * sizeof(float));
        memcpy(f->clf + (size_t)i * CLF_FEATURES, pc.clf + (size_t)r * CLF_FEATURES, CLF_FEATURES * sizeof(float));
        memcpy(f->region + (size_t)i * REGION_D(f->E), pc.region + (size_t)r * REGION_D(pc.E), REGION_D(f->E) * sizeof(float));
    }
    if (!a->quiet) {
        if (n_miss < n) printf("eval: the features of %d of the %d real photos read from %s; encoding %d\n", n - n_miss, n, pc.path, n_miss);
        else printf("eval: encoding the %d real photos (kept in %s for the next runs)\n", n, pc.path);
        fflush(stdout);
    }
    *done += n - n_miss;
    x->photos_read += n - n_miss;
    x->photos_encoded += n_miss;
    if (pr && n_miss < n) progress_update(pr, *done, 0, NULL, NULL);
    int rc = 0;
    int *chunk = xmalloc((size_t)PHOTO_CACHE_EVERY * sizeof(int));
    for (int c0 = 0; c0 < n_miss && !rc; c0 += PHOTO_CACHE_EVERY) {
        int m = n_miss - c0 < PHOTO_CACHE_EVERY ? n_miss - c0 : PHOTO_CACHE_EVERY;
        for (int j = 0; j < m; j++) chunk[j] = image[missing[c0 + j]];
        Feats t;
        feats_init(&t, f->E, m);
        rc = encode_photos(x, cub, chunk, m, S, tight_pad, &t, pr, done);
        for (int j = 0; j < m && !rc; j++) {
            int i = missing[c0 + j];
            memcpy(f->code + (size_t)i * f->E, t.code + (size_t)j * f->E, (size_t)f->E * sizeof(float));
            memcpy(f->pool + (size_t)i * POOL_D, t.pool + (size_t)j * POOL_D, POOL_D * sizeof(float));
            memcpy(f->clf + (size_t)i * CLF_FEATURES, t.clf + (size_t)j * CLF_FEATURES, CLF_FEATURES * sizeof(float));
            memcpy(f->region + (size_t)i * REGION_D(f->E), t.region + (size_t)j * REGION_D(f->E), REGION_D(f->E) * sizeof(float));
            photo_cache_put(&pc, cub->test.images[chunk[j]].key, &t, j);
        }
        feats_free(&t);
        if (!rc && photo_cache_write(&pc))
            fprintf(stderr, "attngan eval: warning: the photo-feature cache: %s (going on without it)\n", err_msg());
    }
    free(chunk);
    free(missing);
    photo_cache_free(&pc);
    if (!rc) f->n = n;
    return rc;
}

/* Reference (1) or other (0) half of n photos of classes cls: per class in a seeded order, the
 * classes one after the other (ascending ids), positions alternately R, O, R, ... */
static void split_halves(const int *cls, int n, uint64_t seed, unsigned char *is_ref) {
    int *ids = xmalloc((size_t)(n ? n : 1) * sizeof(int)), nc = 0;
    for (int i = 0; i < n; i++) ids[i] = cls[i];
    qsort(ids, (size_t)n, sizeof(int), cmp_int);
    for (int i = 0; i < n; i++)
        if (!nc || ids[nc - 1] != ids[i]) ids[nc++] = ids[i];
    int *members = xmalloc((size_t)(n ? n : 1) * sizeof(int)), pos = 0;
    for (int k = 0; k < nc; k++) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (cls[i] == ids[k]) members[m++] = i;
        shuffle_ints(members, m, seed * 0x9E3779B97F4A7C15ull + 0x4A1Full + (uint64_t)ids[k]);
        for (int j = 0; j < m; j++, pos++) is_ref[members[j]] = pos % 2 == 0;
    }
    free(ids);
    free(members);
}

/* ------------------------------------------------------------------ the evaluation set */
typedef struct EvalSet {
    int n;
    int *photo;               /* row in the real photos' features */
    int *image;               /* index into cub->test.images */
    int *cls;                 /* 1-based class */
    char **text;              /* the clean caption */
} EvalSet;

static char *caption_text(const Cub *cub, const CubImage *im, int k) { return vocab_decode(&cub->vocab, im->caps[k], im->cap_len[k]); }

static void eval_set_free(EvalSet *es) {
    for (int i = 0; i < es->n; i++) free(es->text[i]);
    free(es->text);
    free(es->photo);
    free(es->image);
    free(es->cls);
    memset(es, 0, sizeof *es);
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
    if (!noise_captions) {
        np = wiki_non_visual(w, cls, &pool);
        if (np < 0) np = 0;
    }
    size_t len = strlen(caption) + 4;
    char **pick = xcalloc((size_t)k, sizeof(char *)), **owned = xcalloc((size_t)k, sizeof(char *));
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
    char name[1200];
    char handling[32];
    int k, n, seeds;
    int has_rp, has_fid, has_kid, has_acc, has_is;
    double rp, rp_ci;
    double rpd, rpd_ci;           /* R-precision by the evaluator's full DAMSM score (words + sentence) */
    double fid, fid_ci, fid_min, fid_max;
    double kid, kid_std;
    int kid_subsets, kid_m;
    double acc, acc_ci;
    int acc_folds;
    double is, is_std;
    int is_splits;
    double seconds;
} Row;

/* Sums over the generation seeds of one row. */
typedef struct RowAcc {
    int seeds, folds;
    double *rp_fold, *rpd_fold, *acc_fold; /* (folds) */
    double fid[EVAL_MAX_GEN_SEEDS];
    double *kid;                  /* (seeds * KID_SUBSETS) */
    int n_kid, kid_m;
    double *is;                   /* (seeds * IS_SPLITS) */
    int n_is;
} RowAcc;

static void row_acc_init(RowAcc *r, int folds, int seeds) {
    memset(r, 0, sizeof *r);
    r->folds = folds;
    r->rp_fold = xcalloc((size_t)folds, sizeof(double));
    r->rpd_fold = xcalloc((size_t)folds, sizeof(double));
    r->acc_fold = xcalloc((size_t)folds, sizeof(double));
    r->kid = xmalloc((size_t)seeds * KID_SUBSETS * sizeof(double));
    r->is = xmalloc((size_t)seeds * IS_SPLITS * sizeof(double));
}
static void row_acc_free(RowAcc *r) {
    free(r->rp_fold);
    free(r->rpd_fold);
    free(r->acc_fold);
    free(r->kid);
    free(r->is);
}

static void mean_std(const double *v, int n, double *mean, double *std) {
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++) s += v[i];
    *mean = n ? s / n : NAN;
    for (int i = 0; i < n; i++) s2 += (v[i] - *mean) * (v[i] - *mean);
    *std = n ? sqrt(s2 / n) : NAN;
}

/* The row's numbers from its sums. */
static void row_finish(Row *row, const RowAcc *r, int with_rp, int with_acc) {
    row->seeds = r->seeds;
    double *v = xmalloc((size_t)r->folds * sizeof(double));
    if (with_rp) {
        for (int f = 0; f < r->folds; f++) v[f] = r->rp_fold[f] / r->seeds;
        mean_ci95(v, r->folds, &row->rp, &row->rp_ci);
        for (int f = 0; f < r->folds; f++) v[f] = r->rpd_fold[f] / r->seeds;
        mean_ci95(v, r->folds, &row->rpd, &row->rpd_ci);
        row->has_rp = 1;
    }
    if (with_acc) {
        for (int f = 0; f < r->folds; f++) v[f] = r->acc_fold[f] / r->seeds;
        mean_ci95(v, r->folds, &row->acc, &row->acc_ci);
        row->acc_folds = r->folds;
        row->has_acc = 1;
    }
    free(v);
    if (r->n_kid) {
        mean_std(r->kid, r->n_kid, &row->kid, &row->kid_std);
        row->kid_subsets = r->n_kid;
        row->kid_m = r->kid_m;
        row->has_kid = 1;
    }
    if (r->n_is) {
        mean_std(r->is, r->n_is, &row->is, &row->is_std);
        row->is_splits = r->n_is;
        row->has_is = 1;
    }
}

/* What every row is scored against. */
typedef struct Refs {
    int E, folds, candidates;
    uint64_t seed;
    const float *tcodes;      /* (N, E) the evaluation captions' codes */
    const Evaluator *ev;
    const float *twords;      /* (N, E, TEXT.WORDS_NUM) their word features */
    const int *tlens;         /* (N) their known words (at most TEXT.WORDS_NUM) */
    const int *cls;           /* (N) their classes */
    double *mu_r, *cov_r;     /* FID statistics of R */
    const float *pool_r;      /* (nR, 2048) */
    int n_r;
    const Classifier *clf;    /* or NULL */
} Refs;

/* Class accuracy by fold and the Inception Score's splits of n images of classes cls. */
static int score_classifier(const Refs *R, const Feats *f, const int *cls, int folds, uint64_t seed, RowAcc *acc) {
    const Classifier *c = R->clf;
    int n = f->n;
    double *p = xmalloc((size_t)n * c->C * sizeof(double));
    classifier_probs(c, f->clf, n, p);
    int *fold = xmalloc((size_t)n * sizeof(int)), *size = xcalloc((size_t)folds, sizeof(int));
    double *right = xcalloc((size_t)folds, sizeof(double));
    r_precision_folds(n, folds, R->seed, fold);
    for (int i = 0; i < n; i++) {
        right[fold[i]] += classifier_top1(c, p + (size_t)i * c->C) == cls[i];
        size[fold[i]]++;
    }
    for (int k = 0; k < folds; k++) acc->acc_fold[k] += right[k] / size[k];
    int rc = 0;
    if (n >= IS_SPLITS) { /* rows in a seeded order: the set is sorted by class */
        int *perm = xmalloc((size_t)n * sizeof(int));
        double *q = xmalloc((size_t)n * c->C * sizeof(double)), m, s;
        for (int i = 0; i < n; i++) perm[i] = i;
        shuffle_ints(perm, n, seed ^ 0x15C0DEull);
        for (int i = 0; i < n; i++) memcpy(q + (size_t)i * c->C, p + (size_t)perm[i] * c->C, (size_t)c->C * sizeof(double));
        rc = inception_score(q, n, c->C, IS_SPLITS, acc->is + acc->n_is, &m, &s);
        if (!rc) acc->n_is += IS_SPLITS;
        free(perm);
        free(q);
    }
    free(p);
    free(fold);
    free(size);
    free(right);
    return rc;
}

/* The evaluator's full DAMSM score of image i of f and evaluation caption j (r_precision_scored). */
typedef struct DamsmScoreCtx {
    const Refs *R;
    const Feats *f;
} DamsmScoreCtx;
static double damsm_score(void *v, int i, int j) {
    const DamsmScoreCtx *c = v;
    const Refs *R = c->R;
    const int E = R->E, T = R->ev->mc.words_num;
    return evaluator_damsm_score(R->ev, c->f->code + (size_t)i * E, R->tcodes + (size_t)j * E, c->f->region + (size_t)i * REGION_D(E),
                                 R->twords + (size_t)j * E * T, R->tlens[j]);
}

/* FID (into acc->fid[seed_index]) and KID (KID_SUBSETS subsets drawn with kid_seed, added to
 * acc) of the images f against R. */
static int score_fid_kid(const Refs *R, const Feats *f, int seed_index, uint64_t kid_seed, RowAcc *acc) {
    double *mu = xmalloc((size_t)POOL_D * sizeof(double)), *cov = xmalloc((size_t)POOL_D * POOL_D * sizeof(double));
    int rc = fid_stats(f->pool, f->n, POOL_D, mu, cov) || fid_from_stats(mu, cov, R->mu_r, R->cov_r, POOL_D, &acc->fid[seed_index]);
    free(mu);
    free(cov);
    Kid k;
    if (!rc) rc = kid(f->pool, f->n, R->pool_r, R->n_r, POOL_D, KID_SUBSETS, KID_SUBSET_SIZE, kid_seed, acc->kid + acc->n_kid, &k);
    if (!rc) {
        acc->n_kid += KID_SUBSETS;
        acc->kid_m = k.subset_size;
    }
    return rc;
}

/* R-precision, FID and KID against R, and the classifier's numbers, of one draw (seed_index) of a
 * row: added to acc. */
static int score_draw(const Refs *R, const Feats *f, int seed_index, int with_clf, RowAcc *acc) {
    int n = f->n;
    double *fr = xmalloc((size_t)R->folds * sizeof(double));
    RPrecision rp;
    int rc = r_precision(f->code, R->tcodes, n, R->E, R->candidates, R->folds, R->seed, R->cls, fr, &rp);
    for (int k = 0; !rc && k < R->folds; k++) acc->rp_fold[k] += fr[k];
    if (!rc) { /* the same candidates and folds, by the full DAMSM score */
        DamsmScoreCtx c = {R, f};
        rc = r_precision_scored(damsm_score, &c, n, R->candidates, R->folds, R->seed, R->cls, fr, &rp);
        for (int k = 0; !rc && k < R->folds; k++) acc->rpd_fold[k] += fr[k];
    }
    free(fr);
    uint64_t s = R->seed * 1000003ull + (uint64_t)seed_index * 7919u + 17u;
    if (!rc) rc = score_fid_kid(R, f, seed_index, s, acc);
    if (!rc && with_clf) rc = score_classifier(R, f, R->cls, R->folds, s, acc);
    acc->seeds++;
    return rc;
}

/* Draws one image per evaluation caption (with k noise sentences) with generation seed index s
 * and encodes it. */
static void generate_draw(Ctx *x, const GenModel *g, const EvalSet *es, const Cub *cub, const Wiki *w, int k, GenLongText mode, int s,
                          Feats *f, Progress *pr, int64_t *done) {
    const EvalArgs *a = x->a;
    int S = 64 << (gen_model_stages(g) - 1);
    float *buf = xmalloc((size_t)IE_BATCH * 3 * S * S * sizeof(float));
    int nb = 0;
    GenOptions o;
    gen_options_default(&o);
    o.long_text = mode;
    uint64_t gseed = a->seed + (uint64_t)s * 1000003u;
    for (int i = 0; i < es->n; i++) {
        char *text = noisy_text(es->text[i], k, es->cls[i], w, cub, a->noise_captions, gseed * 7919u + (uint64_t)i * 131u + (uint64_t)k);
        o.seed = gseed + (uint64_t)i;
        GenResult r;
        /* one image at a time on one thread: G's matrix products split their sums by the thread
         * count (the images moved in their 6th digit between 1 and 2 threads); the trunk, which
         * costs more, keeps the threads */
        int threads = threads_get(), fail;
        if (threads != 1) threads_set(1);
        fail = gen_run(g, text, &o, &r);
        if (threads != 1) threads_set(threads);
        if (fail) {
            /* a caption without known words (none in CUB's test captions): a blank image */
            memset(buf + (size_t)nb * 3 * S * S, 0, (size_t)3 * S * S * sizeof(float));
        } else {
            memcpy(buf + (size_t)nb * 3 * S * S, r.imgs[r.n_stages - 1], (size_t)3 * S * S * sizeof(float));
            gen_result_free(&r);
        }
        free(text);
        if (++nb == IE_BATCH || i == es->n - 1) {
            feats_add(x, buf, nb, S, f);
            nb = 0;
        }
        (*done)++;
        if (pr) progress_update(pr, *done, 0, NULL, NULL);
    }
    free(buf);
}

/* ------------------------------------------------------------------ zero-shot */
typedef struct Zsl {
    char text[64];
    int classes;
    double acc;
} Zsl;

static int zsl_rows(const Evaluator *ev, const Cub *cub, const Wiki *w, const Feats *real, const int *real_cls, Zsl *out) {
    int E = ev->mc.embedding_dim, nc = 0;
    int *classes = xmalloc((size_t)(real->n ? real->n : 1) * sizeof(int));
    for (int i = 0; i < real->n; i++) classes[i] = real_cls[i];
    qsort(classes, (size_t)real->n, sizeof(int), cmp_int);
    for (int i = 0; i < real->n; i++)
        if (!nc || classes[nc - 1] != classes[i]) classes[nc++] = classes[i];
    float *proto = xcalloc((size_t)nc * E, sizeof(float));
    int rc = 0;
    for (int variant = 0; variant < 2 && !rc; variant++) {
        for (int c = 0; c < nc; c++) {
            float *code = proto + (size_t)c * E;
            if (variant == 0) { /* the Wikipedia article: the mean LSTM code of its sentences */
                char *const *sents;
                int ns = wiki_sentences(w, classes[c], &sents);
                if (ns < 0 || !evaluator_document_lstm(ev, (const char *const *)sents, ns, code)) memset(code, 0, (size_t)E * sizeof(float));
            } else { /* the mean LSTM code of the class's test captions */
                int cnt = 0, cap = 0;
                char **texts = NULL;
                for (int i = 0; i < cub->test.n; i++) {
                    const CubImage *im = &cub->test.images[i];
                    if (im->class_id != classes[c]) continue;
                    for (int k = 0; k < CUB_CAPTIONS_PER_IMAGE; k++) {
                        if (im->cap_len[k] <= 0) continue;
                        if (cnt == cap) texts = xrealloc(texts, (size_t)(cap = cap ? 2 * cap : 64) * sizeof(char *));
                        texts[cnt++] = caption_text(cub, im, k);
                    }
                }
                float *codes = xmalloc((size_t)(cnt ? cnt : 1) * E * sizeof(float));
                int *known = xmalloc((size_t)(cnt ? cnt : 1) * sizeof(int));
                evaluator_lstm_codes(ev, (const char *const *)texts, cnt, codes, known);
                double *acc = xcalloc((size_t)E, sizeof(double));
                int used = 0;
                for (int i = 0; i < cnt; i++) {
                    if (!known[i]) continue;
                    used++;
                    for (int e = 0; e < E; e++) acc[e] += codes[(size_t)i * E + e];
                }
                for (int e = 0; e < E; e++) code[e] = used ? (float)(acc[e] / used) : 0.0f;
                for (int i = 0; i < cnt; i++) free(texts[i]);
                free(texts);
                free(codes);
                free(known);
                free(acc);
            }
        }
        evaluator_sent_codes(ev, proto, nc, proto);
        snprintf(out[variant].text, sizeof out[variant].text, "%s", variant ? "the class's test captions" : "Wikipedia article");
        rc = zsl_accuracy(real->code, real_cls, real->n, proto, classes, nc, E, &out[variant].acc, &out[variant].classes);
    }
    free(proto);
    free(classes);
    return rc;
}

/* GAZSL's measure of a model's own text space: the same protocol as zsl_rows with the model's codes
 * on both sides: its image heads on the trunk features the evaluator computed for the real photos
 * (clf: rows of CLF_FEATURES, the pool then the mean of Mixed_6e, at the model's resolution), and
 * its text encoder and ZSL G (z = 0) for the prototypes. The photos' features are the evaluator's
 * trunk's, so the model's DAMSM must have been trained on the same trunk (EXTRA.INCEPTION, by
 * name): else 1 with the reason in out->why (no rows). 0 with out->rows filled, or -1 with
 * err_msg(). */
typedef struct ZslOwn {
    const char *role;         /* "model" or "baseline" */
    const char *dir;
    int has;                  /* 1: rows, 0: skipped (why) */
    char why[512];
    Zsl rows[2];
} ZslOwn;

static int zsl_own_rows(const GenModel *g, const Evaluator *ev, const Cub *cub, const Wiki *w, const float *clf, const int *real_cls, int n,
                        ZslOwn *out) {
    out->has = 0;
    if (!g->has_ie) {
        snprintf(out->why, sizeof out->why, "the model has no image heads (image_encoder.safetensors)");
        return 1;
    }
    if (!g->tc.extra.inception[0] || strcmp(g->tc.extra.inception, ev->tc.extra.inception)) {
        snprintf(out->why, sizeof out->why, "the model's DAMSM was trained on the trunk EXTRA.INCEPTION '%s', the photos' features are the "
                 "evaluator's ('%s')", g->tc.extra.inception, ev->tc.extra.inception);
        return 1;
    }
    Evaluator view;
    evaluator_view_model(&view, g);
    Feats f;
    feats_init_codes(&f, g->mc.embedding_dim, n);
    evaluator_image_codes(&g->ie, g->mc.image_code_mixed, clf + (g->mc.image_code_mixed ? POOL_D : 0), n, CLF_FEATURES, f.code);
    int rc = zsl_rows(&view, cub, w, &f, real_cls, out->rows);
    feats_free(&f);
    if (!rc) out->has = 1;
    return rc ? -1 : 0;
}

/* ------------------------------------------------------------------ setup shared by both programs */
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

/* "k1 k2 ... " one a line of the photos image[i] with flag[i] == want */
static char *photo_keys(const Cub *cub, const int *image, const unsigned char *flag, int n, int want) {
    size_t len = 1;
    for (int i = 0; i < n; i++)
        if (flag[i] == want) len += strlen(cub->test.images[image[i]].key) + 1;
    char *s = xcalloc(len, 1), *p = s;
    for (int i = 0; i < n; i++)
        if (flag[i] == want) p += sprintf(p, "%s\n", cub->test.images[image[i]].key);
    return s;
}

/* The networks go to the process's device (--device) once loaded on the CPU; said when it is not
 * the CPU. Everything else (the metrics, the classifier) stays on the host. */
static void evaluator_on_device(Ctx *x, int quiet) {
    int dev = device_current();
    if (dev == DEVICE_CPU) return;
    evaluator_to_device(&x->ev, dev);
    if (x->has_fid_net) paramset_to_device(&x->fid_net.ps, dev);
    if (!quiet) printf("eval: the networks run on the device %s\n", device_name(dev));
}

/* The data directory: --data, $ATTNGAN_DATA/birds, the evaluator's DATA_DIR, ../shared/data/birds
 * (src/io/locate.h); -1 after a message. */
static int data_dir(const EvalArgs *a, const Evaluator *ev, char *out, size_t len) {
    char from[1200], source[1300];
    snprintf(from, sizeof from, "the evaluator %s", a->evaluator);
    if (locate_data(a->data, ev->tc.data_dir, from, out, len, source, sizeof source)) {
        fprintf(stderr, "attngan eval: %s\n", err_msg());
        return -1;
    }
    return 0;
}

int eval_train_classifier(const EvalArgs *a) {
    Ctx x;
    memset(&x, 0, sizeof x);
    x.a = a;
    double t0 = now_s();
    if (evaluator_load(&x.ev, a->evaluator, a->inception)) { fprintf(stderr, "attngan eval: %s\n", err_msg()); return 2; }
    evaluator_on_device(&x, a->quiet);
    char data[4096];
    if (data_dir(a, &x.ev, data, sizeof data)) { evaluator_free(&x.ev); return 2; }
    Cub cub;
    if (cub_open(&cub, data)) { fprintf(stderr, "attngan eval: %s (%s)\n", err_msg(), locate_data_hint()); evaluator_free(&x.ev); return 2; }
    int n, rc = 0;
    int *image = select_photos(&cub, a->photos, a->seed, &n);
    int *cls = xmalloc((size_t)(n ? n : 1) * sizeof(int));
    for (int i = 0; i < n; i++) cls[i] = cub.test.images[image[i]].class_id;
    Feats f;
    feats_init(&f, x.ev.mc.embedding_dim, n);
    if (!a->quiet) printf("classifier: %d real test-class photos at %d px through the evaluator %s (%s)\n", n, a->size, a->evaluator, x.ev.trunk);
    Progress *pr = a->quiet ? NULL : progress_new("photos", n, stdout);
    int64_t done = 0;
    if (n < 4) rc = err_set("%d real photos: too few for a classifier", n);
    x.data = data;
    if (!rc) rc = encode_photos_cached(&x, &cub, image, n, a->size, x.ev.tight_pad, &f, pr, &done);
    if (pr) progress_done(pr);
    unsigned char *held = xmalloc((size_t)(n ? n : 1));
    Classifier c;
    memset(&c, 0, sizeof c);
    if (!rc) {
        classifier_split(cls, n, a->seed, held);
        int *ids = xmalloc((size_t)n * sizeof(int)), nc = 0;
        memcpy(ids, cls, (size_t)n * sizeof(int));
        qsort(ids, (size_t)n, sizeof(int), cmp_int);
        for (int i = 0; i < n; i++)
            if (!nc || ids[nc - 1] != ids[i]) ids[nc++] = ids[i];
        if (nc < 2) rc = err_set("the photos span %d class: a classifier needs 2 or more", nc);
        if (!rc) {
            classifier_init(&c, ids, nc, CLF_FEATURES);
            c.image_size = a->size;
            c.seed = a->seed;
            snprintf(c.tight_pad, sizeof c.tight_pad, "%s", x.ev.tc.extra.tight_crop_pad);
            snprintf(c.trunk, sizeof c.trunk, "%s", x.ev.trunk);
            snprintf(c.trunk_hash, sizeof c.trunk_hash, "%s", x.ev.trunk_hash);
        }
        free(ids);
    }
    double loss = 0, is_m = 0, is_s = 0;
    if (!rc) {
        int nt = 0, nh = 0;
        float *xt = xmalloc((size_t)n * CLF_FEATURES * sizeof(float)), *xh = xmalloc((size_t)n * CLF_FEATURES * sizeof(float));
        int *yt = xmalloc((size_t)n * sizeof(int)), *yh = xmalloc((size_t)n * sizeof(int));
        for (int i = 0; i < n; i++) {
            float *dst = held[i] ? xh + (size_t)nh * CLF_FEATURES : xt + (size_t)nt * CLF_FEATURES;
            memcpy(dst, f.clf + (size_t)i * CLF_FEATURES, CLF_FEATURES * sizeof(float));
            if (held[i]) yh[nh++] = cls[i];
            else yt[nt++] = cls[i];
        }
        c.train_photos = photo_keys(&cub, image, held, n, 0);
        c.heldout_photos = photo_keys(&cub, image, held, n, 1);
        c.n_train = nt;
        c.n_heldout = nh;
        if (!a->quiet) printf("training: %d photos of %d classes, %d held out; softmax regression, L2 %g, Adam lr %g, %d iterations\n", nt, c.C, nh, c.l2, c.lr, c.iterations);
        double t1 = now_s();
        rc = classifier_train(&c, xt, yt, nt, &loss);
        for (int pass = 0; pass < 2 && !rc; pass++) {
            int m = pass ? nh : nt;
            const float *xs = pass ? xh : xt;
            const int *ys = pass ? yh : yt;
            double *p = xmalloc((size_t)(m ? m : 1) * c.C * sizeof(double)), right = 0;
            classifier_probs(&c, xs, m, p);
            for (int i = 0; i < m; i++) right += classifier_top1(&c, p + (size_t)i * c.C) == ys[i];
            if (pass) c.heldout_acc = m ? right / m : 0;
            else c.train_acc = m ? right / m : 0;
            if (pass && m >= IS_SPLITS) {
                int *perm = xmalloc((size_t)m * sizeof(int));
                double *q = xmalloc((size_t)m * c.C * sizeof(double));
                for (int i = 0; i < m; i++) perm[i] = i;
                shuffle_ints(perm, m, a->seed ^ 0x15C0DEull);
                for (int i = 0; i < m; i++) memcpy(q + (size_t)i * c.C, p + (size_t)perm[i] * c.C, (size_t)c.C * sizeof(double));
                rc = inception_score(q, m, c.C, IS_SPLITS, NULL, &is_m, &is_s);
                free(perm);
                free(q);
            }
            free(p);
        }
        if (!a->quiet && !rc) printf("trained in %.1f s: loss %.4f\n", now_s() - t1, loss);
        free(xt);
        free(xh);
        free(yt);
        free(yh);
    }
    char path[2300];
    snprintf(path, sizeof path, "%s/%s", a->evaluator, CLF_FILE);
    if (!rc) rc = classifier_save(&c, path);
    if (rc) fprintf(stderr, "attngan eval --train-classifier: %s\n", err_msg());
    else
        printf("classifier: %s: %d classes (chance %.4f); top-1 on its %d training photos %.4f, on the %d held-out photos %.4f; "
               "Inception Score of the held-out photos %.3f ± %.3f (%d splits); %.0f s\n",
               path, c.C, 1.0 / c.C, c.n_train, c.train_acc, c.n_heldout, c.heldout_acc, is_m, is_s, IS_SPLITS, now_s() - t0);
    classifier_free(&c);
    free(held);
    feats_free(&f);
    free(image);
    free(cls);
    cub_close(&cub);
    evaluator_free(&x.ev);
    return rc ? 1 : 0;
}

/* ------------------------------------------------------------------ the program */
static void md_pm(char *buf, size_t len, int has, double m, double pm, const char *fmt) {
    if (!has) { snprintf(buf, len, "-"); return; }
    char a[64], b[64];
    snprintf(a, sizeof a, fmt, m);
    if (isnan(pm)) snprintf(buf, len, "%s", a);
    else {
        snprintf(b, sizeof b, fmt, pm);
        snprintf(buf, len, "%s ± %s", a, b);
    }
}

/* OUT/report.partial.md: the rows done so far, in report.md's table, rewritten (atomically) as each
 * row ends; the full report replaces it at the end. A failure to write it is only a warning. */
static void write_partial(const EvalArgs *a, const Row *rows, int nr, int n_expected, double seconds) {
    size_t cap = 4096 + (size_t)nr * 1600;
    char *md = xcalloc(cap, 1);
    size_t l = 0;
    l += (size_t)snprintf(md + l, cap - l,
                          "# Partial evaluation of %s\n\n%d of the %d rows after %.0f s; `attngan eval` replaces this file with report.md "
                          "and report.json when it ends.\n\n| images | long text | noise k | N | seeds | R-precision | R-precision, words + sentence | FID | "
                          "KID ×10³ | class accuracy | Inception Score | seconds |\n|---|---|---:|---:|---:|---|---|---|---|---|---|---:|\n",
                          a->model, nr, n_expected, seconds);
    for (int i = 0; i < nr && l < cap; i++) {
        const Row *r = &rows[i];
        char c1[96], c1d[96], c2[96], c3[96], c4[96], c5[96];
        md_pm(c1, sizeof c1, r->has_rp, r->rp, r->rp_ci, "%.4f");
        md_pm(c1d, sizeof c1d, r->has_rp, r->rpd, r->rpd_ci, "%.4f");
        md_pm(c2, sizeof c2, r->has_fid, r->fid, r->fid_ci, "%.2f");
        md_pm(c3, sizeof c3, r->has_kid, 1e3 * r->kid, 1e3 * r->kid_std, "%.3f");
        md_pm(c4, sizeof c4, r->has_acc, r->acc, r->acc_ci, "%.4f");
        md_pm(c5, sizeof c5, r->has_is, r->is, r->is_std, "%.3f");
        l += (size_t)snprintf(md + l, cap - l, "| %s | %s | %d | %d | %d | %s | %s | %s | %s | %s | %s | %.0f |\n", r->name, r->handling, r->k,
                              r->n, r->seeds, c1, c1d, c2, c3, c4, c5, r->seconds);
    }
    char path[2300];
    snprintf(path, sizeof path, "%s/report.partial.md", a->out);
    if (write_file_atomic(path, md, strlen(md))) fprintf(stderr, "attngan eval: warning: %s\n", err_msg());
    free(md);
}

static void json_num(cJSON *o, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

_Static_assert((int)EVAL_FRAMING_EDGE == (int)IMAGE_PAD_EDGE && (int)EVAL_FRAMING_MEAN == (int)IMAGE_PAD_MEAN && EVAL_FRAMING_NONE == 0,
               "EVAL_FRAMING_* are the IMAGE_PAD_* values of the tight crops");
static const char *framing_name(int f) {
    return f == EVAL_FRAMING_EDGE ? "edge" : f == EVAL_FRAMING_MEAN ? "mean" : f == EVAL_FRAMING_ORIGINAL ? "original" : "none";
}

int eval_main(const EvalArgs *a) {
    if (a->train_classifier) return eval_train_classifier(a);
    double t_start = now_s();
    int rc = 0;
    Ctx x;
    memset(&x, 0, sizeof x);
    x.a = a;
    GenModel m, base;
    int has_base = 0;
    memset(&base, 0, sizeof base);
    if (a->gen_seeds < 1 || a->gen_seeds > EVAL_MAX_GEN_SEEDS) {
        fprintf(stderr, "attngan eval: --gen-seeds %d: 1 to %d\n", a->gen_seeds, EVAL_MAX_GEN_SEEDS);
        return 2;
    }
    if (evaluator_load(&x.ev, a->evaluator, a->inception)) { fprintf(stderr, "attngan eval: %s\n", err_msg()); return 2; }
    if (gen_model_load(&m, a->model)) { fprintf(stderr, "attngan eval: %s\n", err_msg()); evaluator_free(&x.ev); return 2; }
    if (a->fid_inception) {
        if (load_fid_net(&x.fid_net, &x.ev.mc, a->fid_inception)) {
            fprintf(stderr, "attngan eval: --fid-inception: %s\n", err_msg());
            gen_model_free(&m);
            evaluator_free(&x.ev);
            return 2;
        }
        x.has_fid_net = 1;
        uint64_t h = fnv1a64(1469598103934665603ull, x.fid_net.ps.values, (size_t)x.fid_net.ps.n_values * sizeof(float));
        if (x.fid_net.ps.n_buffers) h = fnv1a64(h, x.fid_net.ps.buffers, (size_t)x.fid_net.ps.n_buffers * sizeof(float));
        snprintf(x.fid_hash, sizeof x.fid_hash, "%016llx", (unsigned long long)h);
    }
    evaluator_on_device(&x, a->quiet);
    gen_model_to_device(&m, device_current());
    char fid_name[1500];
    if (a->fid_inception) snprintf(fid_name, sizeof fid_name, "torchvision inception_v3 weights (%s)", a->fid_inception);
    else snprintf(fid_name, sizeof fid_name, "the evaluator's trunk: %s", x.ev.trunk);
    int S = 64 << (gen_model_stages(&m) - 1), E = x.ev.mc.embedding_dim;
    if (a->baseline) {
        if (gen_model_load(&base, a->baseline)) { fprintf(stderr, "attngan eval: --baseline: %s\n", err_msg()); rc = 2; goto done_models; }
        has_base = 1;
        gen_model_to_device(&base, device_current());
        if (gen_model_stages(&base) != gen_model_stages(&m))
            fprintf(stderr, "attngan eval: warning: the baseline draws %d px images, the model %d px (the real photos are at %d px)\n",
                    64 << (gen_model_stages(&base) - 1), S, S);
    }
    char data[4096];
    if (data_dir(a, &x.ev, data, sizeof data)) { rc = 2; goto done_models; }
    Cub cub;
    if (cub_open(&cub, data)) { fprintf(stderr, "attngan eval: %s (%s)\n", err_msg(), locate_data_hint()); rc = 2; goto done_models; }
    char wbuf[2300];
    const char *wdir = a->wiki;
    if (!wdir) { snprintf(wbuf, sizeof wbuf, "%s/../wikipedia", data); wdir = wbuf; }
    Wiki wiki;
    if (wiki_open(&wiki, wdir)) { fprintf(stderr, "attngan eval: %s\n", err_msg()); cub_close(&cub); rc = 2; goto done_models; }

    /* the classifier, when the evaluator has one that fits */
    Classifier clf;
    int has_clf = 0;
    char clf_note[1600] = "";
    char clf_path[2300];
    snprintf(clf_path, sizeof clf_path, "%s/%s", a->evaluator, CLF_FILE);
    {
        FILE *fp = fopen(clf_path, "rb");
        if (!fp) snprintf(clf_note, sizeof clf_note, "no %s (attngan eval --train-classifier --evaluator %s makes one)", clf_path, a->evaluator);
        else {
            fclose(fp);
            if (classifier_load(&clf, clf_path)) { fprintf(stderr, "attngan eval: %s\n", err_msg()); rc = 2; goto done_data; }
            has_clf = 1;
            if (clf.image_size != S)
                snprintf(clf_note, sizeof clf_note, "%s was trained on %d px photos; the model draws %d px (train one with --size %d)", clf_path,
                         clf.image_size, S, S);
            else if (strcmp(clf.trunk_hash, x.ev.trunk_hash))
                snprintf(clf_note, sizeof clf_note, "%s was trained on the features of another trunk (hash %s, this evaluator's %s)", clf_path,
                         clf.trunk_hash, x.ev.trunk_hash);
            else if (strcmp(clf.tight_pad, x.ev.tc.extra.tight_crop_pad))
                snprintf(clf_note, sizeof clf_note, "%s was trained on photos framed with TIGHT_CROP_PAD %s, this evaluator's is %s", clf_path,
                         clf.tight_pad, x.ev.tc.extra.tight_crop_pad);
            if (clf_note[0]) { classifier_free(&clf); has_clf = 0; }
        }
        if (clf_note[0]) fprintf(stderr, "attngan eval: warning: no class accuracy or Inception Score: %s\n", clf_note);
    }
    if (mkdir_p(a->out)) { fprintf(stderr, "attngan eval: %s\n", err_msg()); rc = 1; goto done_clf; }

    /* the real photos: the selected ones, and the classifier's held-out ones */
    int n_sel;
    int *sel = select_photos(&cub, a->photos, a->seed, &n_sel);
    int *row_of = xmalloc((size_t)cub.test.n * sizeof(int));
    for (int i = 0; i < cub.test.n; i++) row_of[i] = -1;
    int n_enc = 0, *enc = xmalloc((size_t)cub.test.n * sizeof(int));
    for (int i = 0; i < n_sel; i++) row_of[sel[i]] = 1;
    int n_held = 0, *held = NULL;
    if (has_clf) {
        held = xmalloc((size_t)(clf.n_heldout ? clf.n_heldout : 1) * sizeof(int));
        for (char *p = clf.heldout_photos; *p && !rc;) {
            char *e = strchr(p, '\n');
            size_t l = e ? (size_t)(e - p) : strlen(p);
            int found = -1;
            for (int i = 0; i < cub.test.n && found < 0; i++)
                if (strlen(cub.test.images[i].key) == l && !strncmp(cub.test.images[i].key, p, l)) found = i;
            if (found < 0 || !cub.test.images[found].present) {
                fprintf(stderr, "attngan eval: %s: held-out photo %.*s is not a test photo present under %s\n", clf_path, (int)l, p, data);
                rc = 2;
            } else {
                held[n_held++] = found;
                row_of[found] = 1;
            }
            p += l + (e ? 1 : 0);
        }
    }
    for (int i = 0; i < cub.test.n; i++)
        if (row_of[i] > 0) row_of[i] = n_enc, enc[n_enc++] = i;
    unsigned char *is_ref = xmalloc((size_t)(n_sel ? n_sel : 1));
    int *sel_cls = xmalloc((size_t)(n_sel ? n_sel : 1) * sizeof(int));
    for (int i = 0; i < n_sel; i++) sel_cls[i] = cub.test.images[sel[i]].class_id;
    split_halves(sel_cls, n_sel, a->seed, is_ref);
    int n_r = 0, n_o = 0;
    for (int i = 0; i < n_sel; i++) is_ref[i] ? n_r++ : n_o++;
    /* the evaluation set: N photos of the other half */
    EvalSet es;
    memset(&es, 0, sizeof es);
    int N = a->n > 0 ? a->n : n_o;
    if (a->n == 0 && !a->quiet)
        printf("eval: %s: all %d captions of the other half (one per photo; --n N for fewer: the time grows with N)\n",
               "no --n (or --n 0)", n_o);
    if (N > n_o) {
        fprintf(stderr, "attngan eval: --n %d: the other half holds %d photos (the reference half %d of the %d real photos): using %d\n", N, n_o,
                n_r, n_sel, n_o);
        N = n_o;
    }
    if (!rc && N < 2 * a->candidates) {
        fprintf(stderr, "attngan eval: %d evaluation captions: R-precision with %d candidates needs at least %d (--n, --photos, --candidates)\n",
                N, a->candidates, 2 * a->candidates);
        rc = 2;
    }
    if (!rc && N < a->folds) { fprintf(stderr, "attngan eval: %d evaluation captions for %d folds\n", N, a->folds); rc = 2; }
    if (!rc) {
        int *o = xmalloc((size_t)n_o * sizeof(int)), k = 0;
        for (int i = 0; i < n_sel; i++)
            if (!is_ref[i]) o[k++] = i;
        if (N < n_o) {
            shuffle_ints(o, n_o, a->seed * 0x9E3779B97F4A7C15ull + 0xE5E7ull);
            qsort(o, (size_t)N, sizeof(int), cmp_int);
        }
        es.n = N;
        es.photo = xmalloc((size_t)N * sizeof(int));
        es.image = xmalloc((size_t)N * sizeof(int));
        es.cls = xmalloc((size_t)N * sizeof(int));
        es.text = xcalloc((size_t)N, sizeof(char *));
        for (int j = 0; j < N; j++) {
            int i = sel[o[j]];
            const CubImage *im = &cub.test.images[i];
            int c = i % CUB_CAPTIONS_PER_IMAGE;
            while (im->cap_len[c] <= 0) c = (c + 1) % CUB_CAPTIONS_PER_IMAGE;
            es.image[j] = i;
            es.photo[j] = row_of[i];
            es.cls[j] = im->class_id;
            es.text[j] = caption_text(&cub, im, c);
        }
        free(o);
    }
    if (rc) goto done_sets;

    int framings[EVAL_MAX_FRAMINGS], n_framings = 0;
    if (a->train_photos > 0) {
        for (int i = 0; i < a->n_framings; i++) framings[n_framings++] = a->framings[i];
        if (!n_framings) framings[n_framings++] = x.ev.tight_pad;
    }
    int n_rows = 2 + n_framings + 2 * a->n_ks + (has_base ? a->n_ks : 0);
    Row *rows = xcalloc((size_t)n_rows, sizeof(Row));
    int64_t total = n_enc, done = 0;
    for (int j = 0; j < a->n_ks; j++) total += (int64_t)N * a->gen_seeds * ((a->ks[j] > 0 ? 2 : 1) + has_base);
    Progress *pr = a->quiet ? NULL : progress_new("eval", total, stdout);
    if (!a->quiet) {
        printf("eval: evaluator %s (weights %s); %d real photos (reference half %d, other half %d), %d evaluation captions, %d generation seeds, noise k =",
               a->evaluator, x.ev.hash_hex, n_sel, n_r, n_o, N, a->gen_seeds);
        for (int j = 0; j < a->n_ks; j++) printf(" %d", a->ks[j]);
        printf(" (%s)\n", a->noise_captions ? "other classes' captions" : "non-visual Wikipedia sentences");
    }
    int n_expected = 1 + has_clf + n_framings + has_base * a->n_ks;
    for (int j = 0; j < a->n_ks; j++) n_expected += 1 + (a->ks[j] > 0);
    if (!a->quiet) printf("eval: each row's numbers go to %s/report.partial.md as it ends\n", a->out);
    /* real photos through the evaluator */
    Feats real;
    feats_init(&real, E, n_enc);
    double t0 = now_s();
    x.data = data;
    if (encode_photos_cached(&x, &cub, enc, n_enc, S, x.ev.tight_pad, &real, pr, &done)) {
        fprintf(stderr, "attngan eval: %s\n", err_msg());
        rc = 1;
        goto done_real;
    }
    double photo_s = now_s() - t0;
    /* R and its statistics; the evaluation captions' codes */
    float *pool_r = xmalloc((size_t)n_r * POOL_D * sizeof(float));
    for (int i = 0, k = 0; i < n_sel; i++)
        if (is_ref[i]) memcpy(pool_r + (size_t)k++ * POOL_D, real.pool + (size_t)row_of[sel[i]] * POOL_D, POOL_D * sizeof(float));
    double *mu_r = xmalloc((size_t)POOL_D * sizeof(double)), *cov_r = xmalloc((size_t)POOL_D * POOL_D * sizeof(double));
    float *tcodes = xmalloc((size_t)N * E * sizeof(float));
    int *n_known = xmalloc((size_t)N * sizeof(int)), no_known = 0;
    evaluator_text_codes(&x.ev, (const char *const *)es.text, N, tcodes, n_known);
    for (int i = 0; i < N; i++) no_known += !n_known[i];
    if (fid_stats(pool_r, n_r, POOL_D, mu_r, cov_r)) { fprintf(stderr, "attngan eval: reference half: %s\n", err_msg()); rc = 1; }
    float *twords = xmalloc((size_t)N * E * x.ev.mc.words_num * sizeof(float));
    int *tlens = xmalloc((size_t)N * sizeof(int));
    evaluator_words(&x.ev, (const char *const *)es.text, N, twords, tlens);
    Refs R = {E, a->folds, a->candidates, a->seed, tcodes, &x.ev, twords, tlens, es.cls, mu_r, cov_r, pool_r, n_r, has_clf ? &clf : NULL};
    int nr = 0;
    /* row: the real photos of the evaluation set */
    if (!rc) {
        Row *r = &rows[nr++];
        double t1 = now_s();
        snprintf(r->name, sizeof r->name, "real photos (the other half, their own captions)");
        snprintf(r->handling, sizeof r->handling, "-");
        r->n = N;
        Feats f;
        feats_init(&f, E, N);
        for (int i = 0; i < N; i++) {
            int p = es.photo[i];
            memcpy(f.code + (size_t)i * E, real.code + (size_t)p * E, (size_t)E * sizeof(float));
            memcpy(f.pool + (size_t)i * POOL_D, real.pool + (size_t)p * POOL_D, POOL_D * sizeof(float));
            memcpy(f.clf + (size_t)i * CLF_FEATURES, real.clf + (size_t)p * CLF_FEATURES, CLF_FEATURES * sizeof(float));
            memcpy(f.region + (size_t)i * REGION_D(E), real.region + (size_t)p * REGION_D(E), REGION_D(E) * sizeof(float));
        }
        f.n = N;
        RowAcc acc;
        row_acc_init(&acc, a->folds, 1);
        if (score_draw(&R, &f, 0, 0, &acc)) { fprintf(stderr, "attngan eval: real row: %s\n", err_msg()); rc = 1; }
        else {
            row_finish(r, &acc, 1, 0);
            r->fid = acc.fid[0], r->fid_ci = NAN, r->fid_min = r->fid_max = r->fid;
            r->has_fid = 1;
        }
        row_acc_free(&acc);
        feats_free(&f);
        r->seconds = now_s() - t1 + photo_s;
        if (!rc) write_partial(a, rows, nr, n_expected, now_s() - t_start);
    }
    /* row: the classifier's held-out photos */
    if (!rc && has_clf) {
        Row *r = &rows[nr++];
        snprintf(r->name, sizeof r->name, "real photos held out from the classifier (its ceiling)");
        snprintf(r->handling, sizeof r->handling, "-");
        r->n = n_held;
        Feats f;
        feats_init(&f, E, n_held);
        int *hc = xmalloc((size_t)(n_held ? n_held : 1) * sizeof(int));
        for (int i = 0; i < n_held; i++) {
            memcpy(f.clf + (size_t)i * CLF_FEATURES, real.clf + (size_t)row_of[held[i]] * CLF_FEATURES, CLF_FEATURES * sizeof(float));
            hc[i] = cub.test.images[held[i]].class_id;
        }
        f.n = n_held;
        int folds = n_held < a->folds ? n_held : a->folds;
        RowAcc acc;
        row_acc_init(&acc, folds > 0 ? folds : 1, 1);
        if (folds > 0 && score_classifier(&R, &f, hc, folds, a->seed * 1000003ull + 17u, &acc)) {
            fprintf(stderr, "attngan eval: held-out row: %s\n", err_msg());
            rc = 1;
        }
        acc.seeds = 1;
        if (!rc && folds > 0) row_finish(r, &acc, 0, 1);
        row_acc_free(&acc);
        feats_free(&f);
        free(hc);
        if (!rc) write_partial(a, rows, nr, n_expected, now_s() - t_start);
    }
    /* rows: the training photos (--train-photos), one per framing */
    for (int fi = 0; fi < n_framings && !rc; fi++) {
        Row *r = &rows[nr++];
        int fr = framings[fi], orig = fr == EVAL_FRAMING_ORIGINAL;
        double t1 = now_s();
        int n_all = 0, *all = xmalloc((size_t)(cub.train.n ? cub.train.n : 1) * sizeof(int));
        for (int i = 0; i < cub.train.n; i++)
            if (cub.train.images[i].present && (!orig || !cub.train.images[i].tight)) all[n_all++] = i;
        /* the same seeded draw for every framing that takes all photos */
        shuffle_ints(all, n_all, a->seed * 0x2545F4914F6CDD1Dull + 0x7A1Full + (uint64_t)orig);
        int nt = a->train_photos < n_all ? a->train_photos : n_all, n_tight = 0;
        qsort(all, (size_t)nt, sizeof(int), cmp_int);
        for (int i = 0; i < nt; i++) n_tight += cub.train.images[all[i]].tight;
        if (orig) snprintf(r->name, sizeof r->name, "training photos with their own background (no tight crops)");
        else snprintf(r->name, sizeof r->name, "training photos (%d of them tight crops, framed: %s)", n_tight, framing_name(fr));
        snprintf(r->handling, sizeof r->handling, "-");
        r->n = nt;
        if (nt < a->train_photos)
            fprintf(stderr, "attngan eval: warning: --train-photos %d: %s: %d photos present, all used\n", a->train_photos, r->name, nt);
        if (nt < 2) {
            fprintf(stderr, "attngan eval: --train-photos: %s: %d photos present under %s (FID needs 2)\n", r->name, nt, data);
            rc = 2;
        }
        Feats f;
        feats_init(&f, E, nt);
        if (!rc && encode_split_photos(&x, &cub, &cub.train, all, nt, S, orig ? 0 : fr, &f, NULL, &(int64_t){0})) {
            fprintf(stderr, "attngan eval: %s\n", err_msg());
            rc = 1;
        }
        RowAcc acc;
        row_acc_init(&acc, 1, 1);
        if (!rc) {
            rc = score_fid_kid(&R, &f, 0, a->seed * 1000003ull + 29u, &acc);
            acc.seeds = 1;
            if (rc) fprintf(stderr, "attngan eval: %s: %s\n", r->name, err_msg());
        }
        if (!rc) {
            row_finish(r, &acc, 0, 0);
            r->fid = acc.fid[0], r->fid_ci = NAN, r->fid_min = r->fid_max = r->fid;
            r->has_fid = 1;
        }
        row_acc_free(&acc);
        feats_free(&f);
        free(all);
        r->seconds = now_s() - t1;
        if (!rc) {
            write_partial(a, rows, nr, n_expected, now_s() - t_start);
            if (!a->quiet) printf("eval: %s: FID %.3f, KID x 10^3 %.3f (%d photos, %.0f s)\n", r->name, r->fid, 1e3 * r->kid, nt, r->seconds);
        }
    }
    /* generated rows */
    for (int model_i = 0; model_i < 1 + has_base && !rc; model_i++) {
        const GenModel *g = model_i ? &base : &m;
        int with_clf = has_clf && 64 << (gen_model_stages(g) - 1) == clf.image_size;
        for (int j = 0; j < a->n_ks && !rc; j++) {
            for (int mode = 0; mode < 2 && !rc; mode++) {
                if (mode == 1 && (a->ks[j] == 0 || model_i)) continue;
                Row *r = &rows[nr++];
                snprintf(r->name, sizeof r->name, "%s%s", model_i ? "baseline " : "", model_i ? a->baseline : a->model);
                snprintf(r->handling, sizeof r->handling, "%s", mode ? "subset (AttnGAN)" : "select");
                r->k = a->ks[j];
                r->n = N;
                double t1 = now_s();
                RowAcc acc;
                row_acc_init(&acc, a->folds, a->gen_seeds);
                for (int s = 0; s < a->gen_seeds && !rc; s++) {
                    Feats f;
                    feats_init(&f, E, N);
                    generate_draw(&x, g, &es, &cub, &wiki, a->ks[j], mode ? GEN_LONG_SUBSET : GEN_LONG_SELECT, s, &f, pr, &done);
                    if (score_draw(&R, &f, s, with_clf, &acc)) { fprintf(stderr, "attngan eval: %s: %s\n", r->name, err_msg()); rc = 1; }
                    feats_free(&f);
                }
                if (!rc) {
                    row_finish(r, &acc, 1, with_clf);
                    mean_ci95(acc.fid, acc.seeds, &r->fid, &r->fid_ci);
                    r->fid_min = r->fid_max = acc.fid[0];
                    for (int s = 1; s < acc.seeds; s++) r->fid_min = fmin(r->fid_min, acc.fid[s]), r->fid_max = fmax(r->fid_max, acc.fid[s]);
                    r->has_fid = 1;
                }
                row_acc_free(&acc);
                r->seconds = now_s() - t1;
                if (!rc) write_partial(a, rows, nr, n_expected, now_s() - t_start);
            }
        }
    }
    if (pr) progress_done(pr);
    Zsl zr[2];
    memset(zr, 0, sizeof zr);
    ZslOwn zown[2];
    int n_zown = 0;
    memset(zown, 0, sizeof zown);
    if (!rc) {
        Feats zf;
        feats_init_codes(&zf, E, n_sel);
        float *zclf = xmalloc((size_t)(n_sel ? n_sel : 1) * CLF_FEATURES * sizeof(float));
        for (int i = 0; i < n_sel; i++) {
            memcpy(zf.code + (size_t)i * E, real.code + (size_t)row_of[sel[i]] * E, (size_t)E * sizeof(float));
            memcpy(zclf + (size_t)i * CLF_FEATURES, real.clf + (size_t)row_of[sel[i]] * CLF_FEATURES, CLF_FEATURES * sizeof(float));
        }
        if (zsl_rows(&x.ev, &cub, &wiki, &zf, sel_cls, zr)) { fprintf(stderr, "attngan eval: zero-shot: %s\n", err_msg()); rc = 1; }
        /* each model's own codes (GAZSL's measure of its text space) */
        for (int k = 0; k < 1 + has_base && !rc; k++) {
            ZslOwn *o = &zown[n_zown++];
            o->role = k ? "baseline" : "model";
            o->dir = k ? a->baseline : a->model;
            if (zsl_own_rows(k ? &base : &m, &x.ev, &cub, &wiki, zclf, sel_cls, n_sel, o) < 0) {
                fprintf(stderr, "attngan eval: zero-shot (the %s's own codes): %s\n", o->role, err_msg());
                rc = 1;
            }
        }
        free(zclf);
        feats_free(&zf);
    }
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
        cJSON *ej = cJSON_AddObjectToObject(st, "evaluator");
        cJSON_AddStringToObject(ej, "dir", a->evaluator);
        cJSON_AddStringToObject(ej, "weights_hash", x.ev.hash_hex);
        cJSON_AddStringToObject(ej, "hash", "FNV-1a 64 of the loaded f32 values of its text encoder and image encoder (trunk included)");
        cJSON_AddStringToObject(ej, "trunk", x.ev.trunk);
        cJSON_AddStringToObject(ej, "trunk_hash", x.ev.trunk_hash);
        cJSON_AddStringToObject(ej, "text_code", x.ev.mc.sent_lstm ? "the LSTM code of the first TEXT.WORDS_NUM known words (EXTRA.SENT_CODE lstm)"
                                                 : x.ev.mc.zsl_residual ? "LSTM code + ZSL G(LSTM code, z = 0) (ZSL.RESIDUAL), first TEXT.WORDS_NUM known words"
                                                                        : "ZSL G(LSTM code of the first TEXT.WORDS_NUM known words, z = 0)");
        cJSON_AddStringToObject(ej, "image_code", x.ev.mc.image_code_mixed ? "emb_cnn_code(mean of Mixed_6e)" : "emb_cnn_code(trunk pool)");
        cJSON_AddStringToObject(ej, "tight_crop_pad", x.ev.tc.extra.tight_crop_pad);
        cJSON_AddStringToObject(st, "fid_kid_features", fid_name);
        cJSON *pj = cJSON_AddObjectToObject(st, "real_photo_features");
        if (x.photo_cache[0]) cJSON_AddStringToObject(pj, "cache", x.photo_cache);
        else cJSON_AddNullToObject(pj, "cache");
        cJSON_AddNumberToObject(pj, "read", x.photos_read);
        cJSON_AddNumberToObject(pj, "encoded", x.photos_encoded);
        cJSON *cj = cJSON_AddObjectToObject(st, "classifier");
        if (has_clf) {
            cJSON_AddStringToObject(cj, "file", clf_path);
            cJSON_AddNumberToObject(cj, "classes", clf.C);
            cJSON_AddNumberToObject(cj, "image_size", clf.image_size);
            cJSON_AddNumberToObject(cj, "train_photos", clf.n_train);
            cJSON_AddNumberToObject(cj, "heldout_photos", clf.n_heldout);
            cJSON_AddNumberToObject(cj, "l2", clf.l2);
            cJSON_AddNumberToObject(cj, "iterations", clf.iterations);
            cJSON_AddNumberToObject(cj, "inception_score_splits", IS_SPLITS);
        } else cJSON_AddStringToObject(cj, "none", clf_note);
        cJSON_AddNumberToObject(st, "real_photos", n_sel);
        cJSON_AddNumberToObject(st, "reference_photos", n_r);
        cJSON_AddNumberToObject(st, "other_photos", n_o);
        cJSON_AddNumberToObject(st, "captions", N);
        cJSON_AddNumberToObject(st, "train_photos", a->train_photos);
        cJSON_AddNumberToObject(st, "captions_without_known_words", no_known);
        cJSON_AddNumberToObject(st, "gen_seeds", a->gen_seeds);
        cJSON_AddNumberToObject(st, "seed", (double)a->seed);
        cJSON_AddNumberToObject(st, "folds", a->folds);
        cJSON_AddNumberToObject(st, "candidates", a->candidates);
        cJSON_AddNumberToObject(st, "kid_subsets_per_seed", KID_SUBSETS);
        cJSON_AddNumberToObject(st, "kid_subset_size", KID_SUBSET_SIZE);
        cJSON_AddStringToObject(st, "noise", a->noise_captions ? "captions of other classes" : "Wikipedia sentences judged not visual (label 0) of the caption's class");
        cJSON_AddNumberToObject(st, "seconds", elapsed);
        cJSON *ra = cJSON_AddArrayToObject(j, "rows");
        for (int i = 0; i < nr; i++) {
            const Row *r = &rows[i];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "images", r->name);
            cJSON_AddStringToObject(o, "long_text", r->handling);
            cJSON_AddNumberToObject(o, "noise_k", r->k);
            cJSON_AddNumberToObject(o, "n", r->n);
            cJSON_AddNumberToObject(o, "seeds", r->seeds);
            if (r->has_rp) {
                cJSON *q = cJSON_AddObjectToObject(o, "r_precision");
                json_num(q, "mean", r->rp);
                json_num(q, "ci95", r->rp_ci);
                cJSON_AddNumberToObject(q, "folds", a->folds);
                q = cJSON_AddObjectToObject(o, "r_precision_damsm");
                json_num(q, "mean", r->rpd);
                json_num(q, "ci95", r->rpd_ci);
                cJSON_AddNumberToObject(q, "folds", a->folds);
            } else {
                cJSON_AddNullToObject(o, "r_precision");
                cJSON_AddNullToObject(o, "r_precision_damsm");
            }
            if (r->has_fid) {
                cJSON *q = cJSON_AddObjectToObject(o, "fid");
                json_num(q, "mean", r->fid);
                json_num(q, "ci95", r->fid_ci);
                json_num(q, "min", r->fid_min);
                json_num(q, "max", r->fid_max);
                cJSON_AddNumberToObject(q, "reference", n_r);
            } else cJSON_AddNullToObject(o, "fid");
            if (r->has_kid) {
                cJSON *q = cJSON_AddObjectToObject(o, "kid");
                json_num(q, "mean", r->kid);
                json_num(q, "std", r->kid_std);
                cJSON_AddNumberToObject(q, "subsets", r->kid_subsets);
                cJSON_AddNumberToObject(q, "subset_size", r->kid_m);
            } else cJSON_AddNullToObject(o, "kid");
            if (r->has_acc) {
                cJSON *q = cJSON_AddObjectToObject(o, "class_accuracy");
                json_num(q, "mean", r->acc);
                json_num(q, "ci95", r->acc_ci);
                cJSON_AddNumberToObject(q, "folds", r->acc_folds);
                cJSON_AddNumberToObject(q, "chance", 1.0 / clf.C);
            } else cJSON_AddNullToObject(o, "class_accuracy");
            if (r->has_is) {
                cJSON *q = cJSON_AddObjectToObject(o, "inception_score");
                json_num(q, "mean", r->is);
                json_num(q, "std", r->is_std);
                cJSON_AddNumberToObject(q, "splits", r->is_splits);
            } else cJSON_AddNullToObject(o, "inception_score");
            cJSON_AddNumberToObject(o, "seconds", r->seconds);
            cJSON_AddItemToArray(ra, o);
        }
        cJSON *za = cJSON_AddArrayToObject(j, "zero_shot");
        for (int i = 0; i < 2; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "class_text", zr[i].text);
            cJSON_AddNumberToObject(o, "classes", zr[i].classes);
            cJSON_AddNumberToObject(o, "photos", n_sel);
            cJSON_AddNumberToObject(o, "top1_per_class", zr[i].acc);
            cJSON_AddNumberToObject(o, "chance", zr[i].classes ? 1.0 / zr[i].classes : 0);
            cJSON_AddItemToArray(za, o);
        }
        cJSON *zo = cJSON_AddArrayToObject(j, "zero_shot_own");
        for (int k = 0; k < n_zown; k++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "role", zown[k].role);
            cJSON_AddStringToObject(o, "model", zown[k].dir);
            if (!zown[k].has) cJSON_AddStringToObject(o, "skipped", zown[k].why);
            else {
                cJSON *rows_j = cJSON_AddArrayToObject(o, "rows");
                for (int i = 0; i < 2; i++) {
                    const Zsl *z = &zown[k].rows[i];
                    cJSON *r = cJSON_CreateObject();
                    cJSON_AddStringToObject(r, "class_text", z->text);
                    cJSON_AddNumberToObject(r, "classes", z->classes);
                    cJSON_AddNumberToObject(r, "photos", n_sel);
                    cJSON_AddNumberToObject(r, "top1_per_class", z->acc);
                    cJSON_AddNumberToObject(r, "chance", z->classes ? 1.0 / z->classes : 0);
                    cJSON_AddItemToArray(rows_j, r);
                }
            }
            cJSON_AddItemToArray(zo, o);
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
#define MD(...) do { l += (size_t)snprintf(md + l, cap - l, __VA_ARGS__); if (l >= cap - 2048) { cap *= 2; md = xrealloc(md, cap); } } while (0)
        MD("# Evaluation of %s\n\n", a->model);
        MD("- model: %s%s%s, %lld GAN steps, %d px\n", a->model, m.trained_on[0] ? ", trained on " : "", m.trained_on, m.steps, S);
        if (has_base) MD("- baseline: %s\n", a->baseline);
        MD("- evaluator: %s (weights hash %s: FNV-1a 64 of its loaded text encoder and image encoder, trunk included); text codes: "
           "%s, with its vocabulary; image codes from the %s; trunk: %s\n", a->evaluator, x.ev.hash_hex,
           x.ev.mc.sent_lstm ? "the LSTM code" : x.ev.mc.zsl_residual ? "LSTM code + ZSL G(LSTM code, z = 0)" : "ZSL G(LSTM code, z = 0)",
           x.ev.mc.image_code_mixed ? "mean of Mixed_6e" : "trunk's pool", x.ev.trunk);
        MD("- FID and KID features (2048-d pool): %s\n", fid_name);
        if (has_clf)
            MD("- classifier: %s: softmax regression over %d classes (chance %.4f) on the trunk's pool and mean Mixed_6e features of %d "
               "real photos at %d px (%d held out; L2 %g, %d iterations)\n", clf_path, clf.C, 1.0 / clf.C, clf.n_train, clf.image_size,
               clf.n_heldout, clf.l2, clf.iterations);
        else MD("- classifier: none (%s)\n", clf_note);
        MD("- data: %s; %d real test-class photos%s, split (seeded, within each class) into a reference half of %d and another of %d; "
           "%d evaluation captions: one per photo of the other half%s (caption i mod 10 of test image i)%s\n", data, n_sel,
           a->photos > 0 && n_sel < cub.test.n_present ? " (a seeded subset, --photos)" : "", n_r, n_o, N, N < n_o ? ", a seeded subset" : "",
           no_known ? " (some without a word the evaluator knows: their code is zero)" : "");
        MD("- every row: the same %d captions; generated rows drawn %d times (--gen-seeds), each a fresh draw of every image\n", N, a->gen_seeds);
        MD("- R-precision: each image against its clean caption and %d mismatched captions of other classes, cosine, top-1 (ties count "
           "as wrong), %d folds of a seeded shuffle; per fold the mean over the seeds; mean ± 95%% confidence interval of the mean over "
           "folds (t, %d df); chance %.3f. *R-precision, words + sentence*: the same candidates and folds ranked by the evaluator's "
           "full DAMSM score, gamma3 x (the cosine + the word-region score of AttnGAN's Eq. 10), the sum of the two logits its losses "
           "are trained on\n", a->candidates - 1, a->folds, a->folds - 1, 1.0 / a->candidates);
        MD("- FID: each draw's %d images against the %d reference photos; mean ± 95%% CI over the seeds (t, %d df); the real row is the "
           "floor at this sample size\n", N, n_r, a->gen_seeds - 1);
        MD("- KID: unbiased MMD² with the kernel (x.y/2048 + 1)³ against the reference photos, %d subsets of min(N, %d, %d) per draw; "
           "mean ± std over all subsets, in thousandths (report.json: as is)\n", KID_SUBSETS, n_r, KID_SUBSET_SIZE);
        if (has_clf)
            MD("- class accuracy: top-1 of the classifier against the class of the image's caption, folds as R-precision, mean ± 95%% CI; "
               "Inception Score: exp(E KL(p(y|x) || p(y))) over the classifier's %d classes, %d splits of a seeded shuffle per draw, mean ± "
               "std over all splits\n", clf.C, IS_SPLITS);
        if (n_framings)
            MD("- training photos (--train-photos %d): a seeded draw of the training split's present photos (classes the generator was "
               "trained on), centre crop, no flip, at %d px, tight crops framed as the row says ('original': only the photos with their "
               "own background); FID and KID against the same reference photos: what a generator that reproduced its training photos "
               "exactly would score\n", a->train_photos, S);
        MD("- noise: k %s added around the caption (it takes a random place)\n",
           a->noise_captions ? "captions of other classes" : "sentences of the class's Wikipedia article judged not visual");
        MD("- long text: *select* = relevance-scored sentences (attngan generate --help), *subset (AttnGAN)* = a random order-preserving "
           "18-word subset of the whole text, as AttnGAN's get_caption\n");
        MD("- seed %llu; %.0f s in all\n\n", (unsigned long long)a->seed, elapsed);
        MD("| images | long text | noise k | N | seeds | R-precision | R-precision, words + sentence | FID | KID ×10³ | class accuracy | "
           "Inception Score |\n|---|---|---:|---:|---:|---|---|---|---|---|---|\n");
        for (int i = 0; i < nr; i++) {
            const Row *r = &rows[i];
            char c1[96], c1d[96], c2[96], c3[96], c4[96], c5[96];
            md_pm(c1, sizeof c1, r->has_rp, r->rp, r->rp_ci, "%.4f");
            md_pm(c1d, sizeof c1d, r->has_rp, r->rpd, r->rpd_ci, "%.4f");
            md_pm(c2, sizeof c2, r->has_fid, r->fid, r->fid_ci, "%.2f");
            md_pm(c3, sizeof c3, r->has_kid, 1e3 * r->kid, 1e3 * r->kid_std, "%.3f");
            md_pm(c4, sizeof c4, r->has_acc, r->acc, r->acc_ci, "%.4f");
            md_pm(c5, sizeof c5, r->has_is, r->is, r->is_std, "%.3f");
            MD("| %s | %s | %d | %d | %d | %s | %s | %s | %s | %s | %s |\n", r->name, r->handling, r->k, r->n, r->seeds, c1, c1d, c2, c3, c4,
               c5);
        }
        MD("\nThe evaluator is one fixed DAMSM for every model (not the model's own, which its GAN was trained to satisfy): rows of "
           "reports with the same evaluator hash are comparable. FID and KID are biased by the sample size: compare rows, not papers.\n\n");
        MD("## Zero-shot classification (GAZSL's protocol)\n\n");
        MD("The %d real photos of the test classes (unseen in training) assigned to the nearest class prototype (cosine of the evaluator's "
           "codes); a prototype is the evaluator's sentence code (z = 0) of the mean LSTM code of the class text. Top-1 per class, averaged over classes.\n\n", n_sel);
        MD("| class text | classes | photos | top-1 per class | chance |\n|---|---:|---:|---:|---:|\n");
        for (int i = 0; i < 2; i++)
            MD("| %s | %d | %d | %.4f | %.4f |\n", zr[i].text, zr[i].classes, n_sel, zr[i].acc, zr[i].classes ? 1.0 / zr[i].classes : 0);
        MD("\nThe same with each model's own codes (GAZSL's measure of the text space its generator draws from): its image heads on the "
           "photos' trunk features at %d px, its text encoder and ZSL G (z = 0) for the prototypes.\n\n", S);
        MD("| model | class text | classes | photos | top-1 per class | chance |\n|---|---|---:|---:|---:|---:|\n");
        for (int k = 0; k < n_zown; k++) {
            if (!zown[k].has) { MD("| %s | skipped: %s | | | | |\n", zown[k].role, zown[k].why); continue; }
            for (int i = 0; i < 2; i++)
                MD("| %s | %s | %d | %d | %.4f | %.4f |\n", zown[k].role, zown[k].rows[i].text, zown[k].rows[i].classes, n_sel,
                   zown[k].rows[i].acc, zown[k].rows[i].classes ? 1.0 / zown[k].rows[i].classes : 0);
        }
#undef MD
        snprintf(path, sizeof path, "%s/report.md", a->out);
        if (!rc && write_file_atomic(path, md, strlen(md))) { fprintf(stderr, "attngan eval: %s\n", err_msg()); rc = 1; }
        if (!rc) {
            snprintf(path, sizeof path, "%s/report.partial.md", a->out);
            unlink(path);
            fputs(md, stdout);
            printf("\nreport: %s/report.md and %s/report.json\n", a->out, a->out);
        }
        free(md);
    }
    free(tcodes);
    free(twords);
    free(tlens);
    free(n_known);
    free(mu_r);
    free(cov_r);
    free(pool_r);
done_real:
    feats_free(&real);
    free(rows);
done_sets:
    eval_set_free(&es);
    free(is_ref);
    free(sel_cls);
    free(sel);
    free(row_of);
    free(enc);
    free(held);
done_clf:
    if (has_clf) classifier_free(&clf);
done_data:
    wiki_close(&wiki);
    cub_close(&cub);
done_models:
    if (x.has_fid_net) image_encoder_free(&x.fid_net);
    if (has_base) gen_model_free(&base);
    gen_model_free(&m);
    evaluator_free(&x.ev);
    return rc;
}
