/* trunk_cache.h: the feature cache of EXTRA.CACHE_TRUNK_FEATURES (attngan pretrain): the frozen
 * Inception trunk's Mixed_6e (768x17x17) and pooled (2048) features of every present photo of a
 * split, computed once (centre crop, eval-mode batch norm) and kept as fp16.
 *
 * Files (DIR: the run's cache/, NAME: train or test):
 *   DIR/NAME_trunk.safetensors  the whole split: "mixed" (n, 768, 17, 17) f16, "pool" (n, 2048) f16,
 *                               "image_index" (n) i64 (index into the split), metadata "source" =
 *                               the tag (trunk, weights, size, framing: a file of another tag is
 *                               computed again, not reused). The format has not changed: caches
 *                               written by earlier versions are read as they are.
 *   DIR/NAME_trunk.parts/part_NNNNN.safetensors  only while the split is being computed: the same
 *                               three tensors and tag for the photos of one part (part_photos
 *                               photos, about 15 s of work on 2 cores), each written atomically
 *                               (temporary file, fsync, rename). A computation stopped (Ctrl-C) or
 *                               killed resumes from the parts: each is checked (tag, dtypes, shapes,
 *                               indices of present photos) and a bad one is ignored and removed.
 *                               Once every photo is done the whole file is written (atomically)
 *                               and the parts directory removed.
 * Progress: a line with photos/s and the ETA (log.h), counting from the photos already done.
 * Views (TrunkCacheSpec.view, EXTRA.CACHE_VIEWS): the caller gives view v its own NAME and tag
 * (attngan pretrain: train_v1, train_v2, ... beside train, the centre crop). */
#ifndef ATTNGAN_TRUNK_CACHE_H
#define ATTNGAN_TRUNK_CACHE_H

#include "../data/cub.h"
#include "../nn/image_encoder.h"

#include <stdint.h>
#include <stdio.h>

#define TRUNK_CACHE_MIXED (768 * 17 * 17)
#define TRUNK_CACHE_POOL 2048
#define TRUNK_CACHE_PART 128   /* photos per part file */
#define TRUNK_CACHE_VIEWS_MAX 16 /* EXTRA.CACHE_VIEWS' bound */

typedef struct TrunkCache {
    int n;
    int *img;             /* index into the split */
    uint16_t *mixed;      /* (n, 768, 17, 17) fp16 */
    uint16_t *pool;       /* (n, 2048) fp16 */
} TrunkCache;

typedef struct TrunkCacheSpec {
    const char *dir;       /* the cache directory (created) */
    const char *name;      /* "train" or "test": NAME_trunk.safetensors */
    const char *tag;       /* what the features are of (metadata "source") */
    int size;              /* the photos' size before the trunk (which resizes to 299) */
    int tight_pad;         /* the loader's framing of tight crops (LoaderConfig.tight_pad) */
    int words_num;         /* the loader's caption length (captions are not cached) */
    int part_photos;       /* photos per part file; 0: TRUNK_CACHE_PART */
    int (*should_stop)(void *ctx);  /* polled between batches of 8 photos; NULL: never stop */
    void *stop_ctx;
    FILE *progress;        /* the progress line and messages; NULL: silent */
    int view;              /* 0: the centre crop, no flip (the loader's augment = 0); v >= 1: view v,
                              the loader's random crop and flip (AttnGAN's get_imgs: resized to
                              int(size * 76 / 64), a random size x size crop, a random flip) drawn
                              from (v, the photo's index in the split) alone, so a view is the same
                              bits in every run (EXTRA.CACHE_VIEWS) */
} TrunkCacheSpec;

/* Reads DIR/NAME_trunk.safetensors, or computes what its parts lack. 0: c holds every present
 * photo of s, in split order; 1: should_stop said stop, the photos done are kept in parts and c is
 * empty; -1 with err_msg(). *done and *total (when not NULL): the photos done (read or computed)
 * and the split's present photos. */
int trunk_cache_build(TrunkCache *c, const Cub *cub, const CubSplit *s, ImageEncoder *ie, const TrunkCacheSpec *sp, int *done,
                      int *total);
void trunk_cache_free(TrunkCache *c);

#endif
