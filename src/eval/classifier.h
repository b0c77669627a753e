/* classifier.h: the second, independent measure of `attngan eval` (issue 16): a linear (softmax)
 * classifier of the unseen test classes on the frozen Inception trunk's features, trained on real
 * photos seen at the generator's resolution.
 *
 * Features (CLF_FEATURES = 2816): the trunk's pool features (2048, avg_pool of Mixed_7c) and the
 * spatial mean of its Mixed_6e map (768), of a photo loaded at the image size and resized to 299
 * by the encoder as a generated image is. They are standardised with the training photos' mean and
 * (population) standard deviation (a deviation under 1e-6 counts as 1).
 * Training: full-batch softmax regression with L2 on the weights,
 *   loss = 1/n sum_i -log softmax(W z_i + b)[y_i] + l2/2 |W|^2,
 * by Adam (beta 0.9, 0.999, eps 1e-8) from zero weights for a fixed number of iterations, in
 * double. Deterministic, and the same bits for any thread count: every sum of an output element
 * runs serially in a fixed order (the loops are parallel over rows or over classes).
 * The split: per class, the photos in a seeded random order (Fisher-Yates from
 * rng_init(seed * 1000003 + class id)); the first round(30%) are held out (at least 1 and at most
 * all but one when the class has 2 or more photos; a class with one photo keeps it for training).
 *
 * File (classifier.safetensors in the evaluator's directory): weight (C, D) F32, bias (C) F32,
 * feature_mean (D) F32, feature_std (D) F32, classes (C) I32 (the class ids, ascending); metadata
 * "format" = CLF_FORMAT, "image_size", "tight_crop_pad", "trunk", "trunk_hash", "seed",
 * "iterations", "lr", "l2", "train_photos" and "heldout_photos" (CUB image keys, one a line),
 * "train_accuracy", "heldout_accuracy" and "features". */
#ifndef ATTNGAN_CLASSIFIER_H
#define ATTNGAN_CLASSIFIER_H

#include <stdint.h>

#define CLF_FEATURES 2816          /* 2048 pool + 768 mean Mixed_6e */
#define CLF_FILE "classifier.safetensors"
#define CLF_FORMAT "attngan-classifier-1"
#define CLF_HELDOUT 0.3
#define CLF_ITERATIONS 500
#define CLF_LR 0.01
#define CLF_L2 1e-3

typedef struct Classifier {
    int C, D;
    double *w, *b;                /* (C, D), (C) on standardised features */
    double *mean, *std;           /* (D) */
    int *classes;                 /* (C) class ids, ascending */
    int image_size;
    char tight_pad[16];           /* EXTRA.TIGHT_CROP_PAD of the photos */
    char trunk[1400];
    char trunk_hash[17];
    uint64_t seed;
    int iterations;
    double lr, l2;
    char *train_photos, *heldout_photos; /* image keys, one a line (malloc'ed) */
    int n_train, n_heldout;
    double train_acc, heldout_acc;
} Classifier;

/* The held-out flag of n photos of classes cls (n) under the split above. */
void classifier_split(const int *cls, int n, uint64_t seed, unsigned char *heldout);

/* Trains c (its classes, D and the options iterations, lr, l2 already set: classifier_init) on
 * n feature rows x (n, D) of classes y (n; each one of c->classes). *loss (if not NULL) gets the
 * final training loss. 0, or -1 with err_msg() (a class outside c->classes, a non-finite feature,
 * a class without training rows). */
void classifier_init(Classifier *c, const int *classes, int C, int D);
int classifier_train(Classifier *c, const float *x, const int *y, int n, double *loss);
/* Class probabilities p (n, C) of feature rows x (n, D) (softmax in double). */
void classifier_probs(const Classifier *c, const float *x, int n, double *p);
/* The index of class_id in c->classes, or -1. */
int classifier_class_index(const Classifier *c, int class_id);
/* Top-1 (argmax; the lowest index in a tie) of each row of p (n, C): its class id. */
int classifier_top1(const Classifier *c, const double *p_row);

int classifier_save(const Classifier *c, const char *path);
/* 0, or -1 with err_msg() naming the file and what is wrong. */
int classifier_load(Classifier *c, const char *path);
void classifier_free(Classifier *c);

#endif
