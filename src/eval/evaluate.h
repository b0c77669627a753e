/* evaluate.h: `attngan eval`: one report with every number that says how good a model is, scored
 * by a fixed evaluator (evaluator.h) so that the reports of two models can be compared.
 *
 * The evaluator (--evaluator DIR, default models/eval) is one DAMSM: its text encoder (text
 * tokenised with its vocabulary, its sentence code with ZSL G's noise z = 0: deterministic) and its
 * image heads on its Inception trunk. Generated images are drawn at the model's last stage.
 *
 * The real photos (the test-class photos present, in the classes that have photos; --photos N: a
 * seeded subset balanced over the classes) are split once (seeded; within each class alternately,
 * so both halves span every class) into a reference half R and the other half O.
 * Evaluation captions: N of the photos of O (--n; default and at most |O|: a seeded subset when
 * fewer), each with its caption (image index mod 10). Every row uses these N captions:
 *  - real photos (other half): the N photos themselves (the ceiling of R-precision; the floor of
 *    FID and KID at this sample size: the same N images against the same R as every row).
 *  - generated, noise k = 0, 1, 3, 10 (--noise-k): each caption with k irrelevant sentences added
 *    around it (--noise wiki: sentences of its class's Wikipedia article that people judged not
 *    visual; --noise captions: captions of other classes), drawn with the model's long-text
 *    handling ("select") and, for k > 0, with AttnGAN's own handling of long captions (a random
 *    18-word subset, "subset") as the baseline of the same weights; with --baseline DIR, the same
 *    for another model. Each row is drawn --gen-seeds times (default 3), each seed a fresh draw of
 *    every image (ZSL noise and noise sentences).
 *  - real held-out photos (with a classifier): the classifier's held-out photos (its ceiling).
 *  - with --train-photos N: N photos of the training split (classes the generator was trained on,
 *    not the test classes), one row per --train-framing: FID and KID against R only. What a
 *    generator that reproduced its training photos exactly would score, so a model's FID can be
 *    read against its data (the tight crops' framing included) rather than against the floor of
 *    the test photos alone.
 * Metrics (src/eval/metrics.h):
 *  - R-precision: each image against its clean caption and 99 mismatched captions of other classes
 *    (DM-GAN), cosine of the evaluator's codes, top-1, 10 folds of a seeded shuffle; per fold the
 *    mean over generation seeds; the mean and the 95% confidence interval of the mean over folds.
 *    Beside it, the same candidates and folds ranked by the evaluator's full DAMSM score
 *    (evaluator_damsm_score: gamma3 x (the cosine + the word-region score), from the region
 *    features of each image and the word features of each caption): "r_precision_damsm".
 *  - FID and KID against R on 2048-d pool features of the evaluator's trunk (or of torchvision's
 *    inception_v3 with --fid-inception): FID per seed, mean and 95% CI over seeds; KID (100
 *    subsets of min(N, |R|, 1000) per seed) mean and std over all subsets.
 *  - With DIR/classifier.safetensors (classifier.h, trained at the model's image size): class
 *    accuracy (top-1 among its classes) of each image for its caption's class, by fold as
 *    R-precision; the Inception Score over its classes (10 splits of a seeded shuffle per seed,
 *    mean and std over all splits).
 *  - Zero-shot top-1 per class (GAZSL's protocol) over the real photos: class prototypes are the
 *    evaluator's text codes of the class's Wikipedia article (the mean LSTM code of its sentences)
 *    or of its test captions (their mean LSTM code), as sentence codes with z = 0; each photo's image code is
 *    assigned the nearest prototype (cosine). Then the same with the model's (and the baseline's)
 *    own codes: its image heads on the photos' trunk features, its text encoder and ZSL G (z = 0)
 *    for the prototypes (GAZSL's measure of the model's text space); skipped, with the reason in
 *    the report, for a model without image heads or whose DAMSM was trained on another trunk.
 * Thread count: the numbers are the same bits for any --threads: the metrics' sums and the
 * evaluator's codes are fixed-order (metrics.h, evaluator.h) and each image is generated on one
 * thread (G's matrix products split their sums by the thread count); the trunk keeps the threads. */
#ifndef ATTNGAN_EVALUATE_H
#define ATTNGAN_EVALUATE_H

#include <stdint.h>

#define EVAL_MAX_K 8
#define EVAL_MAX_FRAMINGS 4
/* --train-framing: how the training photos of --train-photos are framed. NONE, EDGE and MEAN are
 * the IMAGE_PAD_* values of EXTRA.TIGHT_CROP_PAD for the tight crops; ORIGINAL draws only the
 * photos that are not tight crops (their own background; no padding). */
enum { EVAL_FRAMING_NONE = 0, EVAL_FRAMING_EDGE = 1, EVAL_FRAMING_MEAN = 2, EVAL_FRAMING_ORIGINAL = 3 };

typedef struct EvalArgs {
    const char *model;        /* model directory */
    const char *baseline;     /* another model directory, or NULL */
    const char *evaluator;    /* the evaluator's directory (default models/eval) */
    const char *data;         /* data/birds (default: the evaluator config's DATA_DIR) */
    const char *wiki;         /* wikipedia (default DATA/../wikipedia) */
    const char *inception;    /* the trunk's weights (default: the evaluator config's) */
    const char *fid_inception; /* torchvision inception_v3 safetensors for the FID/KID features, or
                                  NULL (then the evaluator trunk's pool features) */
    const char *out;          /* report directory */
    int n;                    /* evaluation captions (0: all of the other half) */
    int photos;               /* real photos used (0: all) */
    int ks[EVAL_MAX_K], n_ks; /* noise levels */
    int noise_captions;       /* 1: noise = other classes' captions; 0: Wikipedia label-0 sentences */
    uint64_t seed;
    int gen_seeds;            /* generation seeds per row (3) */
    int folds, candidates;    /* 10, 100 */
    int train_photos;         /* N > 0: rows of N training photos (FID and KID only): the floor of a
                                 generator that drew its training photos exactly (0: none) */
    int framings[EVAL_MAX_FRAMINGS], n_framings; /* their framings (EVAL_FRAMING_*); none given:
                                 the evaluator's EXTRA.TIGHT_CROP_PAD */
    int train_classifier;     /* 1: train the evaluator's classifier (eval_train_classifier) */
    int size;                 /* --train-classifier: the image size (64) */
    const char *cache_dir;    /* the real photos' feature cache (--cache; default
                                 $XDG_CACHE_HOME/attngan/eval or ~/.cache/attngan/eval), or NULL
                                 (--no-cache): every photo encoded */
    int quiet;
} EvalArgs;

void eval_args_default(EvalArgs *a);
/* Runs the evaluation and writes OUT/report.md and OUT/report.json. 0, or nonzero with a message
 * on stderr (2: bad input, such as a missing evaluator directory). */
int eval_main(const EvalArgs *a);
/* Trains the evaluator's linear classifier on its trunk's features of the real photos (a->photos,
 * a->seed, a->size) and writes EVALUATOR/classifier.safetensors (classifier.h). */
int eval_train_classifier(const EvalArgs *a);

#endif
