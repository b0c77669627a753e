/* evaluator.h: the fixed evaluator of `attngan eval` (issue 16). One DAMSM scores every model, so
 * the numbers of two models (and of a baseline) can be compared; a model's own DAMSM, which its
 * GAN was trained to satisfy, is never used.
 *
 * An evaluator directory (default models/eval) holds what `attngan pretrain --out RUN` writes into
 * RUN, or the same written compactly by `attngan export --damsm RUN --out DIR`:
 *   config.json                the pretraining config (TrainConfig JSON): the network sizes,
 *                              EXTRA.INCEPTION and EXTRA.INCEPTION_WEIGHTS (the Inception trunk,
 *                              which is not stored here) and EXTRA.TIGHT_CROP_PAD (how real photos
 *                              that are their bird's box only are framed, as the DAMSM saw them)
 *   vocab.txt                  its vocabulary: text is tokenised with it
 *   text_encoder.safetensors   the bi-LSTM with its ZSL G
 *   image_encoder.safetensors  the image heads (emb_features, emb_cnn_code), and the trunk's
 *                              BatchNorm statistics where pretraining saved them
 *   classifier.safetensors     optional: the linear classifier of classifier.h, made by
 *                              `attngan eval --train-classifier --evaluator DIR`
 * Text codes are deterministic: the DAMSM's sentence code (text_encoder_sent_code: ZSL G of the LSTM
 * code, or the LSTM code with EXTRA.SENT_CODE 'lstm', or their sum with ZSL.RESIDUAL) with ZSL G's
 * noise z = 0. The LSTM reads the text's first TEXT.WORDS_NUM words that are in the evaluator's
 * vocabulary (unknown words are skipped; gen_lstm_codes). Image codes are the DAMSM's global code
 * (emb_cnn_code of the trunk's pool, or of the mean of Mixed_6e with EXTRA.IMAGE_CODE 'mixed_6e').
 * Every code is the same bits for any thread count: the text side runs on one thread (threads_set
 * around it), and the image code is computed from the trunk's pool features (whose values do not
 * depend on the thread count) with one serial sum per element. */
#ifndef ATTNGAN_EVALUATOR_H
#define ATTNGAN_EVALUATOR_H

#include "../data/text.h"
#include "../nn/image_encoder.h"
#include "../nn/text_encoder.h"
#include "../nn/train_config.h"

#include <stdint.h>

#define EVAL_DEFAULT_EVALUATOR "models/eval"
#define EVAL_POOL_D 2048          /* trunk_pool */
#define EVAL_MIXED_D 768          /* Mixed_6e channels */

typedef struct Evaluator {
    char dir[1024];
    TrainConfig tc;
    ModelConfig mc;
    Vocab vocab;
    TextEncoder te;
    ImageEncoder ie;              /* the trunk (Inception weights) with the heads, eval mode */
    char trunk[1400];             /* the trunk in words, with its weights' path */
    char inception[1024];         /* the path of the trunk's weights */
    uint64_t hash;                /* FNV-1a 64 of every loaded value (text encoder; image encoder,
                                     trunk included), in ParamSet order */
    char hash_hex[17];
    char trunk_hash[17];          /* FNV-1a 64 of the trunk's loaded values alone (what the
                                     classifier's features depend on) */
    int tight_pad;                /* EXTRA.TIGHT_CROP_PAD as an IMAGE_PAD_* value (0: none) */
} Evaluator;

/* Loads dir. inception (or NULL: the config's EXTRA.INCEPTION_WEIGHTS) overrides the trunk's
 * weights. 0, or -1 with err_msg() naming the directory or file and what is wrong (a missing
 * directory: "evaluator directory DIR does not exist ..."; a config whose EXTRA.INCEPTION names no
 * pretrained trunk). */
int evaluator_load(Evaluator *ev, const char *dir, const char *inception);
/* Moves the loaded networks to device dev (DeviceKind, the CPU included; loading and the hashes
 * run on the CPU): the functions below then run their networks there and take and give host
 * arrays as before; every sum outside the networks stays on the host. */
void evaluator_to_device(Evaluator *ev, int dev);
void evaluator_free(Evaluator *ev);
/* A read-only view of a generator model's text encoder, vocabulary and image heads (m->has_ie) as
 * an Evaluator, for the functions below that read text and codes (not evaluator_images: the
 * model has no trunk). It owns nothing and m must outlive it: never evaluator_free a view. */
struct GenModel;
void evaluator_view_model(Evaluator *view, const struct GenModel *m);

/* Sentence codes (n, E) of n texts: the sentence code of their LSTM codes with z = 0. n_known (n, or NULL) gets each text's
 * count of known words; a text without one gets a zero code. */
void evaluator_text_codes(const Evaluator *ev, const char *const *texts, int n, float *codes, int *n_known);
/* The LSTM codes (n, E) of n texts (gen_lstm_codes, on one thread). */
void evaluator_lstm_codes(const Evaluator *ev, const char *const *texts, int n, float *codes, int *n_known);
/* The sentence codes (n, E) of n LSTM codes c (n, E), z = 0, into out (out may be c). */
void evaluator_sent_codes(const Evaluator *ev, const float *c, int n, float *out);
/* The LSTM code (E) of a document: the mean of the LSTM codes of its sentences cut into windows of
 * TEXT.WORDS_NUM known words. Returns the number of windows (0: no known word, a zero code). */
int evaluator_document_lstm(const Evaluator *ev, const char *const *sentences, int n, float *code);
/* B images (B, 3, S, S) in [-1, 1] through the trunk and heads: code (B, E), pool (B, 2048) the
 * trunk's pool features, mixed (B, 768) the spatial mean of Mixed_6e, region (B, E, 17 x 17) the
 * DAMSM's region features (emb_features of Mixed_6e, each a fixed-order float sum: the same bits
 * for any thread count); each may be NULL. */
void evaluator_images(Evaluator *ev, const float *imgs, int B, int S, float *code, float *pool, float *mixed, float *region);
/* The global image codes (B, E) of ie's emb_cnn_code (E outputs) from B rows of in, row b at
 * in + b * stride: the trunk's pool features (2048), or with mixed (EXTRA.IMAGE_CODE 'mixed_6e') the
 * spatial means of Mixed_6e (768). Each a serial double sum: the same bits for any thread count
 * (evaluator_images' codes; a model's own image heads on the same features in `attngan eval`). */
void evaluator_image_codes(const ImageEncoder *ie, int mixed, const float *in, int B, size_t stride, float *code);
#define EVAL_REGIONS (17 * 17)    /* Mixed_6e's positions at the trunk's 299 px */

/* The DAMSM's word features of n texts: words (n, E, TEXT.WORDS_NUM), text i's first lens[i] known
 * words (as evaluator_text_codes reads them), zero past them; lens[i] = 0 for a text without one.
 * On one thread, as the text codes. */
void evaluator_words(const Evaluator *ev, const char *const *texts, int n, float *words, int *lens);

/* The evaluator's full DAMSM score of an image and a text, the sum of the two logits its losses are
 * trained on: gamma3 (cos(image code, sentence code) + the word-region score of damsm_words_score).
 * code, sent (E); region (E, EVAL_REGIONS); words (E, TEXT.WORDS_NUM) with len known words (0: the
 * word term is 0). */
double evaluator_damsm_score(const Evaluator *ev, const float *code, const float *sent, const float *region, const float *words, int len);

#endif
