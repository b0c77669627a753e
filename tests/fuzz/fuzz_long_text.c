/* fuzz_long_text: text of any length through gen_text_code (src/gen/gen.c): sentence splitting,
 * windows of TEXT.WORDS_NUM words, the relevance score and the choice of segments, the one-caption
 * modes (first words, AttnGAN's random subset) and the unknown-word list, on a tiny text encoder
 * with random weights built once. The first byte picks the options (max_segments 1..4, the
 * long-text mode, the seed); the rest is the text. On success the code must be finite, at most
 * max_segments segments used, and the words G attends to must be the used segments' words. */
#include "fuzz.h"
#include "../../src/gen/gen.h"
#include "../../src/nn/init.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static GenModel g_m;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    static const char *words[] = {"this", "bird", "is", "red", "with", "white", "wings", "and", "a", "short", "beak", "has",
                                  "black", "crown", "yellow", "belly", "small", "blue", "the", "of", "in", "long", "tail"};
    GenModel *m = &g_m;
    memset(m, 0, sizeof *m);
    train_config_default(&m->tc);
    const char *sets[] = {"TEXT.EMBEDDING_DIM=8", "TEXT.WORD_DIM=4", "TEXT.WORDS_NUM=5", "GAN.CONDITION_DIM=8", "ZSL.RDC_DIM=4",
                          "ZSL.Z_DIM=2", "ZSL.H_DIM=4"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        if (train_config_set(&m->tc, sets[i])) abort();
    vocab_init(&m->vocab);
    for (size_t i = 0; i < sizeof words / sizeof *words; i++) vocab_add(&m->vocab, words[i]);
    train_config_to_model(&m->tc, &m->mc);
    m->mc.n_words = m->vocab.n;
    Rng r;
    rng_init(&r, 7);
    text_encoder_init(&m->te, &m->mc);
    init_text_encoder(&m->te, &r);
    m->te.train = 0;
    int E = m->mc.embedding_dim;
    m->rel_cap = calloc((size_t)E, sizeof(float));
    m->rel_noise = calloc((size_t)E, sizeof(float));
    m->rel_cap[0] = 1.0f;
    m->rel_noise[1] = 1.0f;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    GenOptions o;
    gen_options_default(&o);
    o.max_segments = 1 + data[0] % 4;
    o.long_text = (GenLongText)(data[0] / 4 % 3);
    o.seed = data[0];
    char *text = fuzz_cstr(data + 1, size - 1);
    float code[8];
    GenResult info;
    if (gen_text_code(&g_m, text, &o, code, &info) == 0) {
        for (int e = 0; e < g_m.mc.embedding_dim; e++)
            if (!isfinite(code[e])) abort();
        int used = 0, words = 0;
        for (int s = 0; s < info.n_segments; s++)
            if (info.segments[s].used) used++, words += info.segments[s].n_words;
        if (used < 1 || used > o.max_segments || words != info.L) abort();
        for (int i = 0; i < info.L; i++)
            if (vocab_find(&g_m.vocab, info.words[i]) < 1) abort();
        gen_result_free(&info);
    }
    free(text);
    return 0;
}
