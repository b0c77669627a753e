/* config.h: the model hyper-parameters (the seed's cfg/bird_attn2.yml and cfg/DAMSM/bird.yml,
 * src/miscc/config.py), with the reference's field names in lower case. */
#ifndef ATTNGAN_CONFIG_H
#define ATTNGAN_CONFIG_H

typedef enum { G_VARIANT_NET = 0, G_VARIANT_DCGAN = 1 } GVariant;

typedef struct ModelConfig {
    int gf_dim, df_dim;          /* GAN.GF_DIM 32, GAN.DF_DIM 64 */
    int condition_dim;           /* GAN.CONDITION_DIM = embedding_dim (256) */
    int r_num;                   /* GAN.R_NUM 2 */
    int embedding_dim;           /* TEXT.EMBEDDING_DIM (nef) 256 */
    int words_num;               /* TEXT.WORDS_NUM 18 */
    int n_words;                 /* vocabulary size 5450 */
    int word_dim;                /* RNN_ENCODER ninput 300 */
    float rnn_drop;              /* embedding dropout 0.5 */
    int zsl_rdc, zsl_z, zsl_h;   /* ZSL G/D sizes 1000, 100, 4096 */
    float zsl_z_std;             /* ZSL G's noise: N(0, zsl_z_std^2) (1: the seed) */
    float zsl_g_lr_scale;        /* pretraining: ZSL G's learning rate = encoder_lr * this (1) */
    int zsl_residual;            /* sentence code = LSTM code + ZSL G's output (the seed: ZSL G's output) */
    int zsl_wgan;                /* ZSL.ADV_LOSS wgan_gp: ZSL D is a WGAN-GP critic (0: the seed's BCE) */
    int zsl_critic_steps;        /* pretraining: ZSL D updates per step (1) */
    float zsl_gp_lambda;         /* the critic's gradient-penalty weight (10) */
    float zsl_pivot_lambda;      /* pretraining: the visual pivot's weight in the ZSL G loss (0) */
    int zsl_word;                /* ZSL.WORD_LEVEL: a ZSL G on every word (zsl_gw.*), a word-level ZSL D in pretraining */
    int zsl_gan_phase;           /* ZSL.GAN_PHASE: ZSL G and ZSL D train in the GAN phase (src/train/zsl_gan.h) */
    int sent_lstm;               /* the sentence code is the LSTM's (AttnGAN's DAMSM) instead of ZSL
                                    G's output (the seed's); ZSL G then goes unused */
    int image_code_mixed;        /* the image's global code from the spatial mean of Mixed_6e (768)
                                    instead of the final pool (2048, the seed's) */
    int diffaug;                 /* GAN: DiffAugment policy bits (ops/diffaug.h) for every image a
                                    discriminator sees; 0 (the seed): none */
    int num_classes;             /* ZSL D classes 200 */
    float zsl_lambda;            /* pretraining: loss += g_loss * ZSL.LAMBDA (1) */
    float lambda_zsl;            /* GAN: TRAIN.SMOOTH.LAMBDA_ZSL_ADV_AND_CLS (1) */
    float gamma1, gamma2, gamma3, lambda;  /* DAMSM smoothing 4, 5, 10; G loss weight 5 */
    float g_lr, d_lr, encoder_lr;          /* 2e-4, 2e-4, 2e-3 */
    float beta1, beta2;                    /* Adam (0.5, 0.999) */
    float rnn_grad_clip;                   /* 0.25 */
    float ema;                             /* 0.999 */
    int branch_num;                        /* TREE.BRANCH_NUM 3 */
    int correct_mask;      /* 0: the seed's mask.repeat(queryL, 1) in G attention (DESIGN 6.1) */
    GVariant g_variant;    /* G_NET (default) or G_DCGAN (one image at the last stage) */
    int zsl_fix_labels;    /* 0: the seed's reversed ZSL labels (image code = 0, text = 1, DESIGN 6.5);
                              1: image code = 1 (real), generated text code = 0 */
    int ca_net;            /* 0: the seed's G (INIT_STAGE_G on the sentence code only, DESIGN 6.4);
                              1: AttnGAN's CA_NET + noise: h_net1 on cat(c_code, z) and a KL loss */
    int z_dim;             /* GAN.Z_DIM 100: noise size of h_net1 when ca_net is on */
    int no_zsl_g;          /* the text encoder has no ZSL G (zsl_g.* not registered): AttnGAN's own
                              RNN_ENCODER, for generation with sent_lstm (an imported official
                              model, `attngan import`); never set by training */
} ModelConfig;

/* The seed's values. */
void model_config_default(ModelConfig *c);
/* Overrides fields from a JSON object with the reference's upper-case keys (GF_DIM, ...;
 * unknown keys are ignored, wrong types are an error naming the key). Also reads
 * "branch" and "correct_mask" (dump metadata), "CA_NET" (bool or int) and "Z_DIM". Returns 0 or -1 with err_msg(). */
int model_config_from_json(ModelConfig *c, const char *json);

#endif
