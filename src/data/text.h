/* text.h: AttnGAN's tokenizer, vocabulary and caption sampling.
 * Tokenizer (datasets.py load_captions): the caption is lower-cased, split into the runs of \w
 * (Python 3 Unicode word characters: letters, digits, underscore), each token keeps only its ASCII
 * characters, empty tokens and empty captions are skipped.
 * Vocabulary (build_dictionary): <end> = 0, then words numbered from 1 in the order of first
 * appearance over the train captions, then the test captions (or fixed by captions.pickle). */
#ifndef ATTNGAN_TEXT_H
#define ATTNGAN_TEXT_H

#include "../core/rng.h"

#include <stddef.h>
#include <stdint.h>

typedef struct Vocab {
    char **words;         /* index -> word; words[0] = "<end>" */
    int n;
    void *index;          /* word -> index hash (opaque) */
} Vocab;

/* Tokenizes one caption (any bytes; invalid UTF-8 is treated as the replacement character).
 * Returns the number of tokens, each a malloc'ed ASCII string in *tokens (free with
 * text_free_tokens). */
int text_tokenize(const char *caption, char ***tokens);
void text_free_tokens(char **tokens, int n);

void vocab_init(Vocab *v);               /* just "<end>" */
int vocab_add(Vocab *v, const char *word);  /* index of word, added if new */
int vocab_find(const Vocab *v, const char *word);  /* -1 if unknown */
void vocab_free(Vocab *v);
int vocab_save(const Vocab *v, const char *path);  /* one word per line, index = line number */
int vocab_load(Vocab *v, const char *path);

/* Encodes a caption: known words to ids; unknown words are listed in *unknown (a malloc'ed,
 * comma-separated string, or NULL when all are known). Returns the number of ids. */
int vocab_encode(const Vocab *v, const char *caption, int64_t **ids, char **unknown);
/* The inverse: n ids as their words joined by single spaces (malloc'ed). */
char *vocab_decode(const Vocab *v, const int64_t *ids, int n);

/* AttnGAN get_caption: a caption of n ids into a row of words_num (0-padded); when n > words_num,
 * a random order-preserving subset of words_num ids. Returns the length written. */
int caption_sample(const int64_t *ids, int n, int words_num, Rng *rng, int64_t *row);

#endif
