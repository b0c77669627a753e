/* loader.c: prefetching batch loader over a CUB split; see loader.h. */
#define _POSIX_C_SOURCE 200809L
#include "loader.h"
#include "../core/error.h"
#include "../io/image.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void loader_config_default(LoaderConfig *c) {
    memset(c, 0, sizeof *c);
    c->batch_size = 20;
    c->base_size = 64;
    c->branch_num = 3;
    c->words_num = 18;
    c->threads = 2;
    c->prefetch = 2;
    c->seed = 1;
    c->shuffle = 1;
    c->drop_last = 1;
    c->augment = 1;
    c->tight_pad = 0;
    c->shard_count = 1;
}

/* ------------------------------------------------------------------ one sample */
uint64_t loader_mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* AttnGAN's bounding-box square, clipped to the image; -1 if the box is outside the image. */
static int bbox_square(const CubImage *im, int width, int height, int box[4], const char *path) {
    float x = im->bbox[0], y = im->bbox[1], w = im->bbox[2], h = im->bbox[3];
    /* AttnGAN clips the square to the image, so a box overhanging an edge is fine (CUB has some,
     * and the downscaled boxes here are rounded); a box that misses the image is an error */
    if (w <= 0 || h <= 0 || x >= width || y >= height || x + w <= 0 || y + h <= 0)
        return err_set("%s: bounding box (x %.1f, y %.1f, w %.1f, h %.1f) is outside the %dx%d image", path, x, y, w, h, width, height);
    int r = (int)((w > h ? w : h) * 0.75f);
    int cx = (int)((2 * x + w) / 2), cy = (int)((2 * y + h) / 2);
    box[0] = cx - r < 0 ? 0 : cx - r;
    box[1] = cy - r < 0 ? 0 : cy - r;
    box[2] = cx + r > width ? width : cx + r;
    box[3] = cy + r > height ? height : cy + r;
    if (box[2] <= box[0] || box[3] <= box[1]) return err_set("%s: empty crop from its bounding box", path);
    return 0;
}

int loader_crop_bird(const Cub *cub, const CubImage *im, int tight_pad, Image *out) {
    char path[2048];
    cub_image_path(cub, im, path, sizeof path);
    Image img = {0}, crop = {0};
    memset(out, 0, sizeof *out);
    if (image_load(path, &img)) return -1;
    int box[4] = {0, 0, 0, 0}, fail;
    if (im->tight && tight_pad) {
        /* the photo is the box's crop: AttnGAN's square around the box, unclipped and padded, frames
         * the bird as in the other photos (the box 1/1.5 of the square's side) */
        float w = (float)img.w, h = (float)img.h;
        int r = (int)((w > h ? w : h) * 0.75f), cx = img.w / 2, cy = img.h / 2;
        fail = image_crop_padded(&img, cx - r, cy - r, cx + r, cy + r, tight_pad, &crop);
        if (fail) err_prefix("%s", path);
    } else
        fail = bbox_square(im, img.w, img.h, box, path) || image_crop(&img, box[0], box[1], box[2], box[3], &crop);
    image_free(&img);
    if (fail) {
        image_free(&crop);
        return -1;
    }
    *out = crop;
    return 0;
}

static int make_images(const Cub *cub, const CubImage *im, const LoaderConfig *cfg, Rng *rng, Batch *batch, int b) {
    Image crop = {0}, big = {0}, sq = {0};
    if (loader_crop_bird(cub, im, cfg->tight_pad, &crop)) return -1;
    int S = cfg->base_size << (cfg->branch_num - 1);
    int R = S * 76 / 64; /* torchvision Resize(int): the shorter side to R, the other int(R * long / short) */
    int ow, oh;
    if (crop.w <= crop.h) { ow = R; oh = (int)((int64_t)R * crop.h / crop.w); }
    else { oh = R; ow = (int)((int64_t)R * crop.w / crop.h); }
    image_resize_bilinear(&crop, ow, oh, &big);
    image_free(&crop);
    int top, left, flip = 0;
    if (cfg->augment) { /* RandomCrop: randint(0, h - th) inclusive; then RandomHorizontalFlip */
        top = (int)rng_below(rng, (uint32_t)(oh - S + 1));
        left = (int)rng_below(rng, (uint32_t)(ow - S + 1));
        flip = rng_below(rng, 2) == 1;
    } else {
        top = (oh - S) / 2;
        left = (ow - S) / 2;
    }
    if (image_crop(&big, left, top, left + S, top + S, &sq)) { image_free(&big); return -1; }
    image_free(&big);
    if (flip) image_flip_horizontal(&sq);
    for (int i = 0; i < cfg->branch_num; i++) {
        int s = cfg->base_size << i;
        float *dst = batch->imgs[i] + (int64_t)b * 3 * s * s;
        if (s == S) image_to_chw(&sq, dst);
        else {
            Image small = {0};
            image_resize_bilinear(&sq, s, s, &small);
            image_to_chw(&small, dst);
            image_free(&small);
        }
    }
    image_free(&sq);
    return 0;
}

int loader_make_sample(const Cub *cub, const CubImage *im, const LoaderConfig *cfg, uint64_t sample_seed, Batch *batch, int b) {
    Rng rng;
    rng_init(&rng, sample_seed);
    int k = (int)rng_below(&rng, CUB_CAPTIONS_PER_IMAGE);
    batch->caption_index[b] = k;
    batch->cap_lens[b] = caption_sample(im->caps[k], im->cap_len[k], cfg->words_num, &rng, batch->captions + (int64_t)b * cfg->words_num);
    batch->class_ids[b] = im->class_id;
    return make_images(cub, im, cfg, &rng, batch, b);
}

/* ------------------------------------------------------------------ the pool */
typedef struct Slot {
    Batch batch;
    int ready;            /* samples done */
    int failed;
    char err[1024];
    int64_t seq;          /* global batch number this slot holds, -1 when free */
} Slot;

struct Loader {
    const Cub *cub;
    const CubSplit *split;
    LoaderConfig cfg;
    int *samples;         /* split image indices in use */
    int n_samples, per_epoch;
    int *order;           /* the current epoch's order (of samples) */
    int order_epoch;
    Slot *slots;
    int n_slots;
    int64_t next_job;     /* next (batch seq * B + sample) to hand out */
    int64_t next_out;     /* next batch seq to return */
    pthread_t *workers;
    pthread_mutex_t mu;
    pthread_cond_t cv_job, cv_done;
    int stop;
    int **orders;         /* per-slot sample order snapshot (order of its epoch) */
};

static void batch_alloc(Batch *b, const LoaderConfig *c) {
    memset(b, 0, sizeof *b);
    b->B = c->batch_size;
    b->T = c->words_num;
    b->n_scales = c->branch_num;
    for (int i = 0; i < c->branch_num; i++) {
        b->sizes[i] = c->base_size << i;
        b->imgs[i] = xmalloc((size_t)b->B * 3 * b->sizes[i] * b->sizes[i] * sizeof(float));
    }
    b->captions = xcalloc((size_t)b->B * b->T, sizeof(int64_t));
    b->cap_lens = xcalloc((size_t)b->B, sizeof(int));
    b->class_ids = xcalloc((size_t)b->B, sizeof(int64_t));
    b->image_index = xcalloc((size_t)b->B, sizeof(int));
    b->caption_index = xcalloc((size_t)b->B, sizeof(int));
}

static void batch_free(Batch *b) {
    for (int i = 0; i < b->n_scales; i++) free(b->imgs[i]);
    free(b->captions);
    free(b->cap_lens);
    free(b->class_ids);
    free(b->image_index);
    free(b->caption_index);
}

void loader_shuffle(int *order, int n, uint64_t seed, int epoch) {
    Rng r;
    rng_init(&r, loader_mix64(seed ^ 0x5eed0000ULL) + (uint64_t)epoch * 0x9E3779B97F4A7C15ULL);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(&r, (uint32_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* The order of samples in an epoch. */
static void epoch_order(const Loader *l, int epoch, int *order) {
    for (int i = 0; i < l->n_samples; i++) order[i] = l->samples[i];
    if (l->cfg.shuffle) loader_shuffle(order, l->n_samples, l->cfg.seed, epoch);
}

static uint64_t sample_seed(const Loader *l, int epoch, int pos) {
    return loader_mix64(loader_mix64(l->cfg.seed + 0x1234567ULL) ^ ((uint64_t)epoch << 32 | (uint32_t)pos));
}

static void *worker(void *arg) {
    Loader *l = arg;
    int B = l->cfg.batch_size;
    for (;;) {
        pthread_mutex_lock(&l->mu);
        Slot *s = NULL;
        int64_t job = 0;
        while (!l->stop) {
            job = l->next_job;
            int64_t seq = job / B;
            if (seq < l->next_out + l->n_slots) {
                s = &l->slots[seq % l->n_slots];
                if (s->seq != seq) { /* claim a free slot for this batch */
                    if (s->seq != -1) { s = NULL; pthread_cond_wait(&l->cv_job, &l->mu); continue; }
                    s->seq = seq;
                    s->ready = 0;
                    s->failed = 0;
                    epoch_order(l, (int)(seq / l->per_epoch), l->orders[seq % l->n_slots]);
                }
                l->next_job++;
                break;
            }
            pthread_cond_wait(&l->cv_job, &l->mu);
        }
        if (l->stop) { pthread_mutex_unlock(&l->mu); return NULL; }
        int *order = l->orders[job / B % l->n_slots];
        pthread_mutex_unlock(&l->mu);

        int64_t seq = job / B;
        int b = (int)(job % B), epoch = (int)(seq / l->per_epoch);
        int pos = ((int)(seq % l->per_epoch) * l->cfg.shard_count + l->cfg.shard_index) * B + b;
        int idx = order[pos];
        s->batch.image_index[b] = idx;
        int rc = loader_make_sample(l->cub, &l->split->images[idx], &l->cfg, sample_seed(l, epoch, pos), &s->batch, b);
        pthread_mutex_lock(&l->mu);
        if (rc && !s->failed) { s->failed = 1; snprintf(s->err, sizeof s->err, "%s", err_msg()); }
        if (++s->ready == B) pthread_cond_broadcast(&l->cv_done);
        pthread_mutex_unlock(&l->mu);
    }
}

int loader_open(Loader **out, const Cub *cub, const CubSplit *split, const LoaderConfig *cfg) {
    CHECK(cfg->batch_size >= 1 && cfg->branch_num >= 1 && cfg->branch_num <= 3 && cfg->words_num >= 1, "loader config");
    Loader *l = xcalloc(1, sizeof *l);
    l->cub = cub;
    l->split = split;
    l->cfg = *cfg;
    if (l->cfg.threads < 1) l->cfg.threads = 1;
    if (l->cfg.prefetch < 1) l->cfg.prefetch = 1;
    l->samples = xmalloc((size_t)(split->n ? split->n : 1) * sizeof(int));
    int missing = 0, first = -1;
    for (int i = 0; i < split->n; i++) {
        if (split->images[i].present) l->samples[l->n_samples++] = i;
        else if (missing++ == 0) first = i;
    }
    if (missing && !cfg->only_available) {
        char path[2048];
        cub_image_path(cub, &split->images[first], path, sizeof path);
        err_set("%d of the split's %d images are missing, the first %s (--only-available uses the %d present)", missing, split->n,
                path, split->n - missing);
        free(l->samples);
        free(l);
        return -1;
    }
    if (l->cfg.shard_count < 1) l->cfg.shard_count = 1;
    CHECK(l->cfg.shard_index >= 0 && l->cfg.shard_index < l->cfg.shard_count, "loader: shard %d of %d", l->cfg.shard_index,
          l->cfg.shard_count);
    CHECK(l->cfg.shard_count == 1 || cfg->drop_last, "loader: shards need drop_last");
    int step_size = cfg->batch_size * l->cfg.shard_count;
    l->per_epoch = cfg->drop_last ? l->n_samples / step_size : (l->n_samples + cfg->batch_size - 1) / cfg->batch_size;
    if (l->per_epoch < 1) {
        if (l->cfg.shard_count > 1)
            err_set("%d samples are fewer than one step of %d ranks x batch %d", l->n_samples, l->cfg.shard_count, cfg->batch_size);
        else err_set("%d samples are fewer than one batch of %d", l->n_samples, cfg->batch_size);
        free(l->samples);
        free(l);
        return -1;
    }
    if (!cfg->drop_last && l->n_samples % cfg->batch_size)
        FAIL("loader: drop_last = 0 with a partial last batch is not supported yet");
    CHECK(cfg->start_batch >= 0, "loader: negative start batch");
    l->next_job = cfg->start_batch * cfg->batch_size;
    l->next_out = cfg->start_batch;
    l->n_slots = l->cfg.prefetch + 1;
    l->slots = xcalloc((size_t)l->n_slots, sizeof(Slot));
    l->orders = xcalloc((size_t)l->n_slots, sizeof(int *));
    for (int i = 0; i < l->n_slots; i++) {
        batch_alloc(&l->slots[i].batch, &l->cfg);
        l->slots[i].seq = -1;
        l->orders[i] = xmalloc((size_t)l->n_samples * sizeof(int));
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv_job, NULL);
    pthread_cond_init(&l->cv_done, NULL);
    l->workers = xcalloc((size_t)l->cfg.threads, sizeof(pthread_t));
    for (int i = 0; i < l->cfg.threads; i++)
        if (pthread_create(&l->workers[i], NULL, worker, l)) FAIL("loader: cannot start a worker thread");
    *out = l;
    return 0;
}

int loader_batches_per_epoch(const Loader *l) { return l->per_epoch; }
int loader_samples(const Loader *l) { return l->n_samples; }

/* Sorts the rows of a batch by caption length, longest first (stable). */
static void sort_batch(Batch *b) {
    int B = b->B;
    int *perm = xmalloc((size_t)B * sizeof(int));
    for (int i = 0; i < B; i++) perm[i] = i;
    for (int i = 1; i < B; i++) { /* insertion sort: stable, B is small */
        int p = perm[i], j = i - 1;
        while (j >= 0 && b->cap_lens[perm[j]] < b->cap_lens[p]) { perm[j + 1] = perm[j]; j--; }
        perm[j + 1] = p;
    }
    int changed = 0;
    for (int i = 0; i < B; i++) changed |= perm[i] != i;
    if (changed) {
        Batch tmp;
        memset(&tmp, 0, sizeof tmp);
        tmp.B = B;
        for (int s = 0; s < b->n_scales; s++) {
            size_t n = (size_t)3 * b->sizes[s] * b->sizes[s];
            float *src = xmalloc(n * B * sizeof(float));
            memcpy(src, b->imgs[s], n * B * sizeof(float));
            for (int i = 0; i < B; i++) memcpy(b->imgs[s] + n * i, src + n * perm[i], n * sizeof(float));
            free(src);
        }
        int64_t *caps = xmalloc((size_t)B * b->T * sizeof(int64_t)), *cls = xmalloc((size_t)B * sizeof(int64_t));
        int *lens = xmalloc((size_t)B * sizeof(int)), *ii = xmalloc((size_t)B * sizeof(int)), *ci = xmalloc((size_t)B * sizeof(int));
        memcpy(caps, b->captions, (size_t)B * b->T * sizeof(int64_t));
        memcpy(cls, b->class_ids, (size_t)B * sizeof(int64_t));
        memcpy(lens, b->cap_lens, (size_t)B * sizeof(int));
        memcpy(ii, b->image_index, (size_t)B * sizeof(int));
        memcpy(ci, b->caption_index, (size_t)B * sizeof(int));
        for (int i = 0; i < B; i++) {
            memcpy(b->captions + (int64_t)i * b->T, caps + (int64_t)perm[i] * b->T, (size_t)b->T * sizeof(int64_t));
            b->class_ids[i] = cls[perm[i]];
            b->cap_lens[i] = lens[perm[i]];
            b->image_index[i] = ii[perm[i]];
            b->caption_index[i] = ci[perm[i]];
        }
        free(caps); free(cls); free(lens); free(ii); free(ci);
    }
    free(perm);
}

int loader_next(Loader *l, const Batch **out) {
    pthread_mutex_lock(&l->mu);
    /* release the previously returned slot */
    if (l->next_out > l->cfg.start_batch) {
        Slot *prev = &l->slots[(l->next_out - 1) % l->n_slots];
        if (prev->seq == l->next_out - 1) prev->seq = -1;
    }
    pthread_cond_broadcast(&l->cv_job);
    int64_t seq = l->next_out;
    Slot *s = &l->slots[seq % l->n_slots];
    while (!(s->seq == seq && s->ready == l->cfg.batch_size)) pthread_cond_wait(&l->cv_done, &l->mu);
    l->next_out++;
    int failed = s->failed;
    pthread_mutex_unlock(&l->mu);
    if (failed) return err_set("%s", s->err);
    s->batch.epoch = (int)(seq / l->per_epoch);
    s->batch.index = (int)(seq % l->per_epoch);
    sort_batch(&s->batch);
    *out = &s->batch;
    return 0;
}

void loader_close(Loader *l) {
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->cv_job);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->cfg.threads; i++) pthread_join(l->workers[i], NULL);
    for (int i = 0; i < l->n_slots; i++) {
        batch_free(&l->slots[i].batch);
        free(l->orders[i]);
    }
    free(l->orders);
    free(l->slots);
    free(l->workers);
    free(l->samples);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv_job);
    pthread_cond_destroy(&l->cv_done);
    free(l);
}
