/* evaluate.h: `attngan eval`: one report with every number that says how good a model is.
 *
 * The evaluator is the model's own DAMSM (its text encoder, and its image encoder heads on the
 * Inception trunk it was pretrained with): every row of a report uses it, baselines included, so
 * rows are comparable within a report. Generated images are drawn at the model's last stage.
 *
 * Rows (each with its image count):
 *  - real: the test-class photos with their own captions (R-precision ceiling).
 *  - generated, noise k = 0, 1, 3, 10 (--noise-k): each evaluation caption with k irrelevant
 *    sentences added around it (--noise wiki: sentences of its class's Wikipedia article that
 *    people judged not visual; --noise captions: captions of other classes), drawn with the
 *    model's long-text handling ("select") and, for k > 0, with AttnGAN's own handling of long
 *    captions (a random 18-word subset, "subset") as the baseline of the same weights; with
 *    --baseline DIR, the same for another model.
 * Metrics:
 *  - R-precision (DM-GAN's protocol without its off-by-one defects, src/eval/metrics.h): each
 *    image against its clean caption and 99 mismatched ones, cosine of DAMSM codes, top-1, 10
 *    folds, mean and std. The text code is the DAMSM sentence code (ZSL G of the LSTM code with
 *    the image's noise), as the DAMSM loss trains it.
 *  - FID against the real test-class photos at the model's resolution, on 2048-d pool features of
 *    the DAMSM trunk, or of torchvision's inception_v3 (inception_v3_google weights converted to
 *    safetensors) with --fid-inception. The network is named in the report: scores from different
 *    networks are not comparable (the Keras nsfwjs Inception-v3 is not the network of published
 *    FIDs).
 *  - Zero-shot top-1 per class (GAZSL's protocol) over the test classes that have photos: class
 *    prototypes are the mean of ZSL G's outputs for 64 noise draws from the class's text (its
 *    Wikipedia article through the long-text handling, or the mean of its captions' codes);
 *    each real photo's DAMSM image code is assigned the nearest prototype (cosine).
 * Evaluation captions: caption (i mod 10) of test image i, --n of them (a seeded subset when
 * fewer than all 2,933). */
#ifndef ATTNGAN_EVALUATE_H
#define ATTNGAN_EVALUATE_H

#include <stdint.h>

#define EVAL_MAX_K 8

typedef struct EvalArgs {
    const char *model;        /* model directory */
    const char *baseline;     /* another model directory, or NULL */
    const char *data;         /* data/birds */
    const char *wiki;         /* wikipedia (default DATA/../wikipedia) */
    const char *inception;    /* the trunk's weights (default: the model config's) */
    const char *fid_inception; /* torchvision inception_v3 safetensors for the FID features, or NULL
                                  (then the DAMSM trunk's pool features) */
    const char *out;          /* report directory */
    int n;                    /* evaluation captions (default all) */
    int ks[EVAL_MAX_K], n_ks; /* noise levels */
    int noise_captions;       /* 1: noise = other classes' captions; 0: Wikipedia label-0 sentences */
    uint64_t seed;
    int folds, candidates;    /* 10, 100 */
    int quiet;
} EvalArgs;

void eval_args_default(EvalArgs *a);
/* Runs the evaluation and writes OUT/report.md and OUT/report.json. 0, or nonzero with a message
 * on stderr. */
int eval_main(const EvalArgs *a);

#endif
