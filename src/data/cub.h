/* cub.h: the AttnGAN data/birds layout of CUB-200-2011:
 *   CUB_200_2011/images.txt, image_class_labels.txt, classes.txt, bounding_boxes.txt, images/
 *   text/<class>/<image>.txt (10 captions per image)
 *   train/filenames.pickle, test/filenames.pickle (AttnGAN's split), {train,test}/class_info.pickle
 *   captions.pickle (optional: the vocabulary of official checkpoints)
 * All errors name the file and line (or pickle offset) and the reason. */
#ifndef ATTNGAN_CUB_H
#define ATTNGAN_CUB_H

#include "text.h"

#include <stdint.h>

#define CUB_CAPTIONS_PER_IMAGE 10

typedef struct CubImage {
    char *key;            /* "002.Laysan_Albatross/Laysan_Albatross_0002_1027" (no extension) */
    int class_id;         /* 1-based CUB class */
    float bbox[4];        /* x, y, w, h (bounding_boxes.txt) */
    int present;          /* the photo exists under CUB_200_2011/images */
    int tight;            /* listed in CUB_200_2011/tight_crops.txt: the photo is its bird's
                             bounding-box crop, with no background around it */
    int64_t *caps[CUB_CAPTIONS_PER_IMAGE];  /* token ids of each caption */
    int cap_len[CUB_CAPTIONS_PER_IMAGE];
} CubImage;

typedef struct CubSplit {
    CubImage *images;
    int n;
    int n_present;
    int n_tight;          /* images listed in tight_crops.txt */
    int *classes;         /* distinct class ids of the split, ascending */
    int n_classes;
} CubSplit;

typedef struct Cub {
    char *root;           /* the data/birds directory */
    CubSplit train, test;
    Vocab vocab;
    int vocab_from_pickle;  /* 1 if captions.pickle fixed the vocabulary */
    char **class_names;   /* class_names[id - 1] = "001.Black_footed_Albatross" */
    int n_class_names;
} Cub;

/* Reads the whole layout (metadata, splits, captions, vocabulary); images are not decoded, only
 * checked for presence. 0 or -1 with err_msg(). */
int cub_open(Cub *cub, const char *root);
void cub_close(Cub *cub);
/* The vocabulary of an AttnGAN captions.pickle (its ixtoword, checked against wordtoix): the
 * official word numbering, as a text encoder trained by the original code expects it. 0, or -1
 * with err_msg() naming the file and the fault. */
int cub_vocab_from_pickle(const char *path, Vocab *vocab);
/* Path of an image's JPEG into buf. */
const char *cub_image_path(const Cub *cub, const CubImage *im, char *buf, int len);

#endif
