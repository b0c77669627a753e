/* train_config.h: the training configuration. Every key of AttnGAN's src/miscc/config.py with
 * its defaults, the seed's ZSL keys (reconstructed from the reference), a few keys the original
 * hard-codes (TEXT.WORD_DIM, TEXT.RNN_DROP) and our EXTRA section of switches for the seed's
 * defects and for the CPU pipeline. Read from AttnGAN-style YAML files (cfg/ and cfg/DAMSM/) with the
 * original upper-case keys, overridden by "KEY=VALUE" command-line assignments, and stored as
 * JSON next to checkpoints so that a run can be resumed with the same values.
 *
 * Values are checked as the original's _merge_a_into_b does: an unknown key is an error, and so
 * is a value of the wrong type (ints are accepted for float keys). We also check ranges (a batch
 * size must be positive, TREE.BRANCH_NUM is 1..3) and the allowed values of a few strings. */
#ifndef ATTNGAN_TRAIN_CONFIG_H
#define ATTNGAN_TRAIN_CONFIG_H

#include "config.h"

#include <stdio.h>

#define TRAIN_CONFIG_STR 1024 /* capacity of every string value (paths), NUL included */

typedef struct TrainConfig {
    char dataset_name[TRAIN_CONFIG_STR]; /* DATASET_NAME 'birds' */
    char config_name[TRAIN_CONFIG_STR];  /* CONFIG_NAME '': names the output directory */
    char data_dir[TRAIN_CONFIG_STR];     /* DATA_DIR '': AttnGAN's data/birds directory */
    int gpu_id;                          /* GPU_ID 0 (-1: CPU, as AttnGAN's --gpu -1) */
    int cuda;                            /* CUDA True */
    int workers;                         /* WORKERS 6: data-loading threads */
    char rnn_type[TRAIN_CONFIG_STR];     /* RNN_TYPE 'LSTM' (this port has no GRU) */
    int b_validation;                    /* B_VALIDATION False: sample the test split instead of training */
    struct {
        int branch_num; /* TREE.BRANCH_NUM 3: G stages / Ds (1: 64 px, 2: 128 px, 3: 256 px) */
        int base_size;  /* TREE.BASE_SIZE 64 (299 for DAMSM pretraining) */
    } tree;
    struct {
        int batch_size;          /* TRAIN.BATCH_SIZE 64 */
        int max_epoch;           /* TRAIN.MAX_EPOCH 600 */
        int snapshot_interval;   /* TRAIN.SNAPSHOT_INTERVAL 2000 (GAN: iterations; DAMSM: epochs) */
        double discriminator_lr; /* TRAIN.DISCRIMINATOR_LR 2e-4 */
        double generator_lr;     /* TRAIN.GENERATOR_LR 2e-4 */
        double encoder_lr;       /* TRAIN.ENCODER_LR 2e-4 */
        double rnn_grad_clip;    /* TRAIN.RNN_GRAD_CLIP 0.25 */
        int flag;                /* TRAIN.FLAG True: train (False: generate) */
        char net_e[TRAIN_CONFIG_STR]; /* TRAIN.NET_E '': the pretrained text encoder (DAMSM: resume) */
        char net_g[TRAIN_CONFIG_STR]; /* TRAIN.NET_G '': the generator to resume or sample from */
        int b_net_d;             /* TRAIN.B_NET_D True: build the discriminators */
        struct {
            double gamma1, gamma2, gamma3; /* TRAIN.SMOOTH.GAMMA1 5.0, GAMMA2 5.0, GAMMA3 10.0 */
            double lambda;                 /* TRAIN.SMOOTH.LAMBDA 1.0: DAMSM weight in the G loss */
            double lambda_zsl_adv_and_cls; /* TRAIN.SMOOTH.LAMBDA_ZSL_ADV_AND_CLS 1.0 (seed) */
        } smooth;
    } train;
    struct {
        int df_dim, gf_dim;  /* GAN.DF_DIM 64, GAN.GF_DIM 128 */
        int z_dim;           /* GAN.Z_DIM 100 (noise of CA_NET's G; the seed's G takes none) */
        int condition_dim;   /* GAN.CONDITION_DIM 100 (the seed's G: = TEXT.EMBEDDING_DIM) */
        int r_num;           /* GAN.R_NUM 2 */
        int b_attention;     /* GAN.B_ATTENTION True */
        int b_dcgan;         /* GAN.B_DCGAN False: G_DCGAN instead of G_NET */
    } gan;
    struct {
        int captions_per_image; /* TEXT.CAPTIONS_PER_IMAGE 10 */
        int embedding_dim;      /* TEXT.EMBEDDING_DIM 256 (even: bidirectional LSTM) */
        int words_num;          /* TEXT.WORDS_NUM 18 */
        int word_dim;           /* TEXT.WORD_DIM 300: ours; the original hard-codes ninput=300 */
        double rnn_drop;        /* TEXT.RNN_DROP 0.5: ours; the original hard-codes drop_prob=0.5 */
    } text;
    struct {
        double lambda;   /* ZSL.LAMBDA 1.0: pretraining loss += ZSL G loss * LAMBDA (seed) */
        int rdc_dim;     /* ZSL.RDC_DIM 1000 (seed) */
        int z_dim;       /* ZSL.Z_DIM 100 (seed) */
        int h_dim;       /* ZSL.H_DIM 4096 (seed) */
        int num_classes; /* ZSL.NUM_CLASSES 200 (seed) */
        double z_std;    /* ZSL.Z_STD 1.0 (seed): ZSL G's noise is N(0, Z_STD^2); ours */
        int residual;    /* ZSL.RESIDUAL False (seed): the sentence code is ZSL G's output; True:
                            the LSTM code plus ZSL G's output (ZSL G learns a noisy residual); ours */
        double g_lr_scale; /* ZSL.G_LR_SCALE 1.0 (seed): in pretraining, ZSL G (inside the text
                              encoder) learns at ENCODER_LR * this; ours */
        /* GAZSL's own losses (Zhu et al. 2018; docs/ZSL_VARIANTS.md), ours as options: */
        char adv_loss[TRAIN_CONFIG_STR]; /* ZSL.ADV_LOSS 'bce' (seed): the ZSL pair's adversarial
                              loss is BCE with logits; 'wgan_gp': GAZSL's WGAN-GP (ZSL D is a
                              critic, its D_gan the Wasserstein score, plus a gradient penalty) */
        int critic_steps;  /* ZSL.CRITIC_STEPS 1 (seed): ZSL D updates per encoder update in
                              pretraining (GAZSL: 5) */
        double gp_lambda;  /* ZSL.GP_LAMBDA 10 (GAZSL): the gradient penalty's weight (wgan_gp) */
        double pivot_lambda; /* ZSL.PIVOT_LAMBDA 0 (seed; GAZSL: 1): weight of the visual pivot
                              regulariser, the distance between each class's mean text code and
                              its mean image code, in pretraining's ZSL G loss */
        int word_level;    /* ZSL.WORD_LEVEL False (seed): True adds the seed's design 2, a ZSL G
                              on every word (text encoder keys zsl_gw.*) whose word codes replace
                              the LSTM's words for the DAMSM and G's attention, and in pretraining
                              a word-level ZSL D (zsl_dw) on word codes against region features */
        int gan_phase;     /* ZSL.GAN_PHASE False (seed): True is the seed's design 4, ZSL G and
                              ZSL D keep training in `attngan train` (src/train/zsl_gan.h) */
    } zsl;
    struct { /* ours: not in AttnGAN's or the seed's config */
        int correct_mask;           /* EXTRA.CORRECT_MASK False: seed's mask.repeat (DESIGN 6.1) */
        int zsl_fix_labels;         /* EXTRA.ZSL_FIX_LABELS False: seed's reversed labels (6.5) */
        int zsl_train_classes_only; /* EXTRA.ZSL_TRAIN_CLASSES_ONLY False: True = the ZSL class
                                       head sees only the training split's classes (true ZSL) */
        int ca_net;                 /* EXTRA.CA_NET False: the seed's G (6.4); True: AttnGAN's */
        double lr_decay;            /* EXTRA.LR_DECAY 0.98: DAMSM lr *= this per epoch (6.2) */
        int cache_trunk_features;   /* EXTRA.CACHE_TRUNK_FEATURES False: pretrain on cached
                                       frozen-Inception features */
        char inception[TRAIN_CONFIG_STR]; /* EXTRA.INCEPTION '': 'torchvision' | 'keras_nsfwjs' |
                                             '' (random trunk) */
        char inception_weights[TRAIN_CONFIG_STR]; /* EXTRA.INCEPTION_WEIGHTS '' */
        int only_available;         /* EXTRA.ONLY_AVAILABLE False: use only images present on disk */
        int cache_image_size;       /* EXTRA.CACHE_IMAGE_SIZE 299: with CACHE_TRUNK_FEATURES, the
                                       photos' size before the trunk (which resizes them to 299);
                                       64 trains a DAMSM on photos as a 64 px generator's images
                                       look (an evaluator for 64 px models) */
        int cache_views;            /* EXTRA.CACHE_VIEWS 1: with CACHE_TRUNK_FEATURES, views of each
                                       training photo cached: the centre crop and V - 1 fixed random
                                       crops and flips (AttnGAN's augmentation, which a single cached
                                       crop loses); each sample takes one at random. At most 16
                                       (TRUNK_CACHE_VIEWS_MAX); each view of N photos is N x 448 KB */
        char sent_code[TRAIN_CONFIG_STR]; /* EXTRA.SENT_CODE 'zsl_g': the sentence code is ZSL G's
                                       output on the LSTM code and noise (the seed); 'lstm': the
                                       LSTM's code itself (AttnGAN's DAMSM; ZSL G unused) */
        char image_code[TRAIN_CONFIG_STR]; /* EXTRA.IMAGE_CODE 'pool': the image's global code is
                                       emb_cnn_code(avg_pool(Mixed_7c)) (AttnGAN, the seed);
                                       'mixed_6e': emb_cnn_code(mean over 17x17 of Mixed_6e) */
        char diffaugment[TRAIN_CONFIG_STR]; /* EXTRA.DIFFAUGMENT '': the GAN's discriminators see
                                       the images as they are (the seed); 'color,translation,cutout'
                                       or a part of it: DiffAugment (Zhao et al. 2020) on every real
                                       and generated image they see, G's loss included */
        char tight_crop_pad[TRAIN_CONFIG_STR]; /* EXTRA.TIGHT_CROP_PAD 'none': photos listed in
                                       tight_crops.txt cropped as AttnGAN crops any photo; 'edge' /
                                       'mean': framed as the others, padded (loader.h) */
        int seed;                   /* EXTRA.SEED 100 (AttnGAN's manualSeed) */
        int log_interval;           /* EXTRA.LOG_INTERVAL 50: iterations between log lines */
        int grad_accum;             /* EXTRA.GRAD_ACCUM 1: micro-batches of TRAIN.BATCH_SIZE whose
                                       gradients each optimizer step averages (train/lanes.h; per
                                       rank in a data-parallel run, core/dist.h) */
        int keep_checkpoints;       /* EXTRA.KEEP_CHECKPOINTS 3: the newest checkpoints kept in
                                       checkpoints/ (older ones are removed); 0 keeps them all */
        int sync_bn;                /* EXTRA.SYNC_BN False: batch norm with each rank's own batch
                                       statistics (nn.DataParallel's); True: the ranks' together
                                       (SyncBatchNorm, ops/batchnorm.h; ranks only, not lanes) */
    } extra;
} TrainConfig;

/* EXTRA.TIGHT_CROP_PAD as LoaderConfig.tight_pad (0, IMAGE_PAD_EDGE or IMAGE_PAD_MEAN). */
int train_config_tight_pad(const TrainConfig *c);

/* AttnGAN's config.py defaults plus the seed's and our additions (see the field comments). */
void train_config_default(TrainConfig *c);

/* Merges the YAML file at path over the current values. On error c is unchanged and -1 is
 * returned; err_msg() names the file, line (and column) and the dotted key. */
int train_config_load(TrainConfig *c, const char *path);

/* One command-line override "DOTTED.KEY=VALUE" (e.g. "TRAIN.BATCH_SIZE=8",
 * "EXTRA.CORRECT_MASK=true", "TRAIN.NET_E='out/x.safetensors'"), checked as in a file. */
int train_config_set(TrainConfig *c, const char *assignment);

/* Fills m: model_config_default (n_words, Adam betas, EMA), then every size, weight and switch
 * the networks use. n_words comes later from the vocabulary; with zsl_train_classes_only the
 * trainer sets num_classes to the training split's class count. */
void train_config_to_model(const TrainConfig *c, ModelConfig *m);

/* Cross-key checks for building and training the GAN: GAN.CONDITION_DIM must be
 * TEXT.EMBEDDING_DIM unless EXTRA.CA_NET (the seed's G reads the sentence code), and
 * TREE.BASE_SIZE must be 64 (G's first stage). Returns 0 or -1 with err_msg(). */
int train_config_check_gan(const TrainConfig *c);

/* Every key as a nested JSON object with the YAML's structure (malloc'ed; caller frees). */
char *train_config_to_json(const TrainConfig *c);
/* The inverse: merges a JSON object over c (keys absent from it keep their values; unknown keys
 * and wrong types are errors naming the key). On error c is unchanged. */
int train_config_from_json(TrainConfig *c, const char *json);

/* YAML dump of every key, as the original prints cfg at start; train_config_load reads it back. */
void train_config_print(const TrainConfig *c, FILE *f);

/* The dotted name of the first key whose values differ, or NULL if all are equal. */
const char *train_config_diff(const TrainConfig *a, const TrainConfig *b);
/* The first key that shapes the text or image encoder (sizes, ZSL G's noise and residual, the
 * sentence and image codes, the trunk, the ZSL class head) and differs, or NULL: a GAN must
 * be configured as the pretraining that made its TRAIN.NET_E. */
const char *train_config_encoder_diff(const TrainConfig *a, const TrainConfig *b);
/* A key's value as the YAML would write it; -1 for an unknown key. */
int train_config_value_str(const TrainConfig *c, const char *name, char *buf, size_t len);

#endif
