/* fuzz_text: the vocabulary file (vocab.txt of a model directory: src/data/text.c vocab_load) and
 * captions (the tokenizer, encoding against a vocabulary, decoding, AttnGAN's get_caption
 * sampling). The input is both the vocabulary file and the caption. Checked: a loaded
 * vocabulary saves and loads back the same; every token is non-empty lower-case ASCII \w; every
 * id is a word of the vocabulary; a sampled row keeps the order of the caption's ids. */
#include "fuzz.h"
#include "../../src/data/text.h"

#include <stdlib.h>
#include <string.h>

static Vocab g_vocab; /* a fixed small vocabulary for the captions */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    static const char *words[] = {"this", "bird", "is", "red", "with", "white", "wings", "and", "a", "short", "beak", "has", "black", "crown"};
    vocab_init(&g_vocab);
    for (size_t i = 0; i < sizeof words / sizeof *words; i++) vocab_add(&g_vocab, words[i]);
    return 0;
}

static void check_vocab_file(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("vocab.txt", data, size);
    Vocab v;
    if (vocab_load(&v, path) != 0) return;
    if (v.n < 1 || strcmp(v.words[0], "<end>")) abort();
    for (int i = 0; i < v.n; i++)
        if (vocab_find(&v, v.words[i]) != i) abort();
    path = fuzz_write("vocab2.txt", "", 0);
    if (vocab_save(&v, path) != 0) abort();
    Vocab w;
    if (vocab_load(&w, path) != 0 || w.n != v.n) abort();
    for (int i = 0; i < v.n; i++)
        if (strcmp(v.words[i], w.words[i])) abort();
    vocab_free(&w);
    vocab_free(&v);
}

static void check_caption(const char *caption, uint64_t seed) {
    char **tok;
    int nt = text_tokenize(caption, &tok);
    if (nt < 0) abort();
    for (int i = 0; i < nt; i++) {
        if (!tok[i][0]) abort();
        for (const char *p = tok[i]; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) abort();
    }
    text_free_tokens(tok, nt);
    int64_t *ids;
    char *unknown;
    int n = vocab_encode(&g_vocab, caption, &ids, &unknown);
    if (n < 0) abort();
    for (int i = 0; i < n; i++)
        if (ids[i] < 1 || ids[i] >= g_vocab.n) abort();
    free(vocab_decode(&g_vocab, ids, n));
    int words_num = 1 + (int)(seed % 24);
    int64_t *row = calloc((size_t)words_num, sizeof *row);
    Rng r;
    rng_init(&r, seed);
    int len = caption_sample(ids, n, words_num, &r, row);
    if (len < 0 || len > words_num || len > n) abort();
    for (int i = 0, j = 0; i < len; i++, j++) { /* a subsequence of ids */
        while (j < n && ids[j] != row[i]) j++;
        if (j == n) abort();
    }
    free(row);
    free(ids);
    free(unknown);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_vocab_file(data, size);
    char *caption = fuzz_cstr(data, size);
    check_caption(caption, size ? data[0] : 0);
    free(caption);
    return 0;
}
