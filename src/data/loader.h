/* loader.h: batches of AttnGAN training samples from a CUB split, prepared by a pool of worker
 * threads ahead of use.
 *
 * Per sample, as AttnGAN's TextDataset.__getitem__ and get_imgs:
 *   a random caption of the image's 10 (AttnGAN draws randint(0, 10) inclusive, which can pick the
 *   next image's first caption: we draw 0..9), its ids cut to WORDS_NUM by an order-preserving
 *   random subset; the photo as RGB, cropped to the box's square (r = int(max(w, h) * 0.75) around
 *   its centre, clipped to the image), the shorter side resized to int(S * 76 / 64) (S = the
 *   largest output size), a random S x S crop, a random horizontal flip (augment = 1; else the
 *   centre crop, no flip), the lower scales resized from that crop (PIL BILINEAR), in [-1, 1].
 *   Photos that are their box's crop (tight_crops.txt) can be padded to AttnGAN's framing first
 *   (tight_pad).
 * A batch is sorted by caption length, longest first (prepare_data).
 *
 * Determinism: the epoch's order comes from (seed, epoch), each sample's randomness from (seed,
 * epoch, position in the epoch), so the batches are the same bits for any number of threads. */
#ifndef ATTNGAN_LOADER_H
#define ATTNGAN_LOADER_H

#include "cub.h"

typedef struct LoaderConfig {
    int batch_size;
    int base_size;        /* 64 for the GAN (outputs 64, 128, 256 for branch 3), 299 for DAMSM */
    int branch_num;       /* number of scales: sizes base_size * 2^i, i < branch_num */
    int words_num;        /* caption width (TEXT.WORDS_NUM) */
    int threads;          /* worker threads (>= 1) */
    int prefetch;         /* batches prepared ahead (>= 1) */
    uint64_t seed;
    int shuffle;          /* a new random order each epoch */
    int drop_last;        /* drop the last incomplete batch (AttnGAN: yes) */
    int augment;          /* random crop and flip (else centre crop, no flip) */
    int only_available;   /* use the images that exist (else a missing image is an error) */
    int tight_pad;        /* photos listed in tight_crops.txt (their bird's box only): 0 crops them
                             as AttnGAN crops any photo (the whole photo, stretched to a square);
                             IMAGE_PAD_EDGE / IMAGE_PAD_MEAN takes AttnGAN's square around the box
                             unclipped, padded with the edge pixels / their mean colour, so the bird
                             is framed as in the other photos (image.h) */
    int64_t start_batch;  /* resume: the first batch returned is global batch number start_batch
                             (epoch = start_batch / batches_per_epoch) */
    int shard_count;      /* data-parallel (core/dist.h): each step takes shard_count * batch_size
                             consecutive samples of the epoch's order, and this loader returns part */
    int shard_index;      /* shard_index of them (samples shard_index * B ..); 1 and 0: all of it.
                             The samples' randomness depends on their position in the epoch only,
                             so the shards of N loaders are the N micro-batches of one loader of
                             batch N * B, with the same bits */
} LoaderConfig;

void loader_config_default(LoaderConfig *c);

typedef struct Batch {
    int B, T, n_scales;
    int sizes[3];
    float *imgs[3];       /* (B, 3, sizes[i], sizes[i]) */
    int64_t *captions;    /* (B, T), 0-padded */
    int *cap_lens;        /* (B), descending */
    int64_t *class_ids;   /* (B), 1-based CUB classes */
    int *image_index;     /* (B) index into the split's images */
    int *caption_index;   /* (B) which of the 10 captions */
    int epoch, index;     /* batch `index` of `epoch` */
} Batch;

typedef struct Loader Loader;

/* Checks the split (images present unless only_available; -1 with a message naming the first
 * missing file and the count) and starts the workers. */
int loader_open(Loader **out, const Cub *cub, const CubSplit *split, const LoaderConfig *cfg);
/* Batches per epoch (steps: one batch of each shard per step). */
int loader_batches_per_epoch(const Loader *l);
/* Samples the loader uses (the present images with only_available). */
int loader_samples(const Loader *l);
/* The next batch (valid until the next call); epochs follow each other. 0, or -1 with err_msg()
 * when a sample failed (a corrupt photo, a box outside its image: the message names the file). */
int loader_next(Loader *l, const Batch **out);
void loader_close(Loader *l);

/* The shuffles and per-sample streams the loader uses, for other samplers (cached features):
 * loader_mix64 is a 64-bit mixer (splitmix64's finaliser); loader_shuffle permutes order[0..n)
 * in place, a Fisher-Yates driven by (seed, epoch). */
uint64_t loader_mix64(uint64_t x);
void loader_shuffle(int *order, int n, uint64_t seed, int epoch);

/* One sample, synchronously (the workers' job; also for tests and tools): fills row b of batch. */
int loader_make_sample(const Cub *cub, const CubImage *im, const LoaderConfig *cfg, uint64_t sample_seed, Batch *batch, int b);
/* The photo's bird as the loader frames it, before any resizing: AttnGAN's square around the
 * bounding box, clipped to the photo; a tight crop (tight_crops.txt) padded to that square with
 * tight_pad (IMAGE_PAD_*; 0: the photo as it is). 0 or -1 with err_msg() naming the file. */
struct Image;
int loader_crop_bird(const Cub *cub, const CubImage *im, int tight_pad, struct Image *out);

#endif
