/* gen.h: drawing birds from text with a trained model, for `attngan generate`, `sample`,
 * `examples` and `serve`.
 *
 * A model directory (what `attngan export` writes, e.g. models/bird64/) holds
 *   model.json                the training config ("config", as train_config_to_json),
 *                             "format": "attngan-model-1", what it was trained on
 *                             ("trained_on", "steps") and the relevance centroids of long text
 *                             ("relevance": {"captions": [E], "noise": [E]})
 *   text_encoder.safetensors  the text encoder with its ZSL G (f16 or f32)
 *   netG.safetensors          the generator: EMA weights with the live G's BN statistics
 *   image_encoder.safetensors the DAMSM image heads (optional; evaluation only)
 *   vocab.txt                 the vocabulary, one word a line
 * gen_model_load also reads a training run's directory as `attngan train` leaves it: config.json,
 * vocab.txt and netG.safetensors, with the text encoder that the config's TRAIN.NET_E names.
 *
 * Text of any length (gen_encode):
 *  - The text is cut into segments at sentence ends (. ! ? ; and line breaks); a segment longer
 *    than TEXT.WORDS_NUM known words is cut into consecutive windows of WORDS_NUM words.
 *    Words not in the vocabulary are dropped and reported.
 *  - When the whole text has at most WORDS_NUM known words it is one caption, encoded exactly as
 *    AttnGAN encodes a caption.
 *  - Otherwise every segment is encoded on its own by the bi-LSTM and scored for visual relevance:
 *        relevance = known / tokens + cos(h, c_captions) - cos(h, c_noise)
 *    known / tokens: the fraction of its words in the vocabulary (the captions' vocabulary is
 *    visual); h: its LSTM sentence code; c_captions, c_noise: the mean unit codes of training
 *    captions and of the training classes' Wikipedia sentences judged not visual (model.json
 *    "relevance"; without it only the fraction counts). tools/relevance_check measures the score
 *    on the test classes' human visual labels. The best segment is kept, with up to
 *    max_segments - 1 more whose score is at least best - GEN_RELEVANCE_MARGIN; their word
 *    features are concatenated in document order (G's attention reads all of them) and the
 *    sentence code is ZSL G applied to the mean of their LSTM codes.
 * The GAN's noise is ZSL G's z (the seed's G takes no other), drawn from the seed: image i of a
 * request uses z from Philox stream (seed, i), so the same seed gives the same birds.
 *
 * Thread safety: a loaded GenModel is read-only; gen_run may be called from several threads at
 * once (each call has its own tape).
 *
 * Devices: gen_model_to_device moves the networks; the text is encoded, scored and G's inputs made
 * on the host, copied to the device, and the images and attention maps copied back: a GenResult is
 * host memory on every device (on the host device, the CPU's bits). */
#ifndef ATTNGAN_GEN_H
#define ATTNGAN_GEN_H

#include "../data/text.h"
#include "../io/image.h"
#include "../nn/generator.h"
#include "../nn/image_encoder.h"
#include "../nn/text_encoder.h"
#include "../nn/train_config.h"

#include <stdint.h>

#define GEN_MODEL_FORMAT "attngan-model-1"
#define GEN_MAX_SEGMENTS 3          /* default max_segments */
#define GEN_RELEVANCE_MARGIN 0.15f  /* segments within this score of the best are kept */
#define GEN_MAX_TEXT 65536          /* longest text accepted (bytes) */
#define GEN_MAX_N 64                /* most images per request */

typedef struct GenModel {
    TrainConfig tc;
    ModelConfig mc;
    Vocab vocab;
    TextEncoder te;
    GNet g;
    ImageEncoder ie;        /* heads only, when has_ie (no trunk: evaluation loads one) */
    int has_ie;
    float *rel_cap, *rel_noise; /* (E) unit centroids of long-text relevance, or NULL */
    char dir[1024];
    char trained_on[512];   /* model.json "trained_on" ("" if absent) */
    long long steps;        /* model.json "steps" (-1 if absent) */
} GenModel;

/* Loads a model directory (layout above). 0, or -1 with err_msg() naming the file and problem. */
int gen_model_load(GenModel *m, const char *dir);
/* Moves the loaded networks to device dev (DeviceKind, the CPU included): gen_run, gen_text_code
 * and gen_lstm_codes then run there (their tapes are on the networks' device) and hand back host
 * arrays as before. Loading runs on the CPU; call this after gen_model_load. */
void gen_model_to_device(GenModel *m, int dev);
/* Where the networks are (DEVICE_CPU after loading). */
int gen_model_device(const GenModel *m);
void gen_model_free(GenModel *m);
/* The number of stages (1..3) and the last image size (64 << (stages - 1)). */
int gen_model_stages(const GenModel *m);

/* What a text of more than WORDS_NUM known words becomes. */
typedef enum {
    GEN_LONG_SELECT = 0,    /* relevance-scored sentences (above; the default) */
    GEN_LONG_FIRST = 1,     /* one caption: its first WORDS_NUM known words */
    GEN_LONG_SUBSET = 2,    /* one caption: AttnGAN's get_caption, a random order-preserving
                               subset of WORDS_NUM known words (drawn from the seed) */
} GenLongText;

typedef struct GenOptions {
    int n;                  /* images (1..GEN_MAX_N), default 1 */
    uint64_t seed;          /* default 0 */
    int max_segments;       /* long text: segments kept, default GEN_MAX_SEGMENTS */
    GenLongText long_text;  /* default GEN_LONG_SELECT */
} GenOptions;
void gen_options_default(GenOptions *o);

/* One segment of the text, as gen_encode saw it. */
typedef struct GenSegment {
    char *text;             /* the segment's known words, space-separated */
    int n_words;
    float relevance;        /* the relevance score (0 when the text is one segment) */
    int used;               /* 1 if its words feed G */
} GenSegment;

typedef struct GenResult {
    int n;                  /* images */
    int n_stages;
    int size[3];            /* 64, 128, 256 */
    float *imgs[3];         /* stage s: (n, 3, size[s], size[s]) in [-1, 1] */
    int n_att;              /* stages with attention (n_stages - 1) */
    float *att[2];          /* (n, L, att_h[k], att_w[k]): the word maps of stage k + 2 */
    int att_h[2], att_w[2];
    int L;                  /* words G attends to */
    char **words;           /* (L) those words */
    char *unknown;          /* comma-separated words not in the vocabulary, or NULL */
    int n_segments;
    GenSegment *segments;
} GenResult;

/* The bi-LSTM sentence codes (n, E) of n texts, each taken as one caption: its first
 * TEXT.WORDS_NUM known words (unknown words skipped). n_known[i] (if not NULL) gets the number of
 * known words of text i (all of them, before the cut); a text without one gets a zero code. Runs
 * on te's device; codes is host memory. */
void gen_lstm_codes(const TextEncoder *te, const Vocab *v, const char *const *texts, int n, float *codes, int *n_known);
/* gen_lstm_codes with the word features too: codes (n, E) or NULL; words (n, E, TEXT.WORDS_NUM) or
 * NULL, each text's words_emb of its first lens[i] known words (lens may be NULL only without
 * words), zero past them; a text without a known word gets lens[i] = 0 and zeros. */
void gen_text_features(const TextEncoder *te, const Vocab *v, const char *const *texts, int n, float *codes, float *words, int *lens,
                       int *n_known);

/* The LSTM code (E) that G's sentence code is made from (ZSL G's input) for text, as gen_run
 * encodes it with o (n and seed only matter for GEN_LONG_SUBSET). info (if not NULL) gets the
 * text fields of a GenResult (unknown, segments, words; no images): free with gen_result_free. */
int gen_text_code(const GenModel *m, const char *text, const GenOptions *o, float *code, GenResult *info);
/* ZSL G's noise (Z) of image i of a request with this seed (gen_run's). */
void gen_noise(uint64_t seed, int i, int Z, float *z);

/* Draws o->n birds for text (UTF-8, any length up to GEN_MAX_TEXT bytes). 0, or -1 with
 * err_msg(): empty text, no known word ("none of the words ... is in the vocabulary"), text
 * too long, n out of range. */
int gen_run(const GenModel *m, const char *text, const GenOptions *o, GenResult *r);
void gen_result_free(GenResult *r);

/* Image i of stage s (0-based) as 8-bit RGB (allocated; image_free). */
int gen_result_image(const GenResult *r, int stage, int i, Image *out);
/* The attention figure of image i: for each stage with attention, the row of figure_attention
 * (image, then one map per word under its word), stacked. Without attention (one stage) -1
 * with err_msg(). */
int gen_result_attention(const GenResult *r, int i, Image *out);
/* The attention figure of stage k + 2 alone (k = 0: stage 2, 1: stage 3) for image i: AttnGAN's
 * attmaps_a<k>.png of its eval server. */
int gen_result_attention_stage(const GenResult *r, int i, int k, Image *out);

#endif
