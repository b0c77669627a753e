/* test_text.c: the caption tokenizer (hand cases and tests/fixtures/text_unicode_cases.txt from
 * gen_tokens.py), the vocabulary of all CUB captions against Python's (vocab_birds.txt and
 * text_birds_counts.txt, when the data is present), vocabulary files, encoding and
 * caption_sample. */
#include "test.h"
#include "../src/data/text.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *fixture_dir(void) {
    return getenv("FIXTURE_DIR") ? getenv("FIXTURE_DIR") : "tests/fixtures";
}

static const char *data_dir(void) {
    return getenv("ATTNGAN_DATA") ? getenv("ATTNGAN_DATA") : "../shared/data";
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Tokenizes caption and joins the tokens with spaces into out. */
static int tokens_joined(const char *caption, char *out, size_t cap) {
    char **tok;
    int n = text_tokenize(caption, &tok);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (i) strncat(out, " ", cap - strlen(out) - 1);
        strncat(out, tok[i], cap - strlen(out) - 1);
    }
    text_free_tokens(tok, n);
    return n;
}

static void expect_tokens(const char *caption, const char *want) {
    char got[1024];
    tokens_joined(caption, got, sizeof got);
    EXPECT(strcmp(got, want) == 0, "tokenize \"%s\": got \"%s\", want \"%s\"", caption, got, want);
}

static void test_tokenizer_cases(void) {
    expect_tokens("", "");
    expect_tokens("   ,.;!", "");
    expect_tokens("This bird has a RED crown, and white-ish wings.", "this bird has a red crown and white ish wings");
    expect_tokens("bird's 2 legs;3rd_toe  __x__ a1b2", "bird s 2 legs 3rd_toe __x__ a1b2");
    expect_tokens("line\r\nnext\ttab", "line next tab");
    expect_tokens("caf\xc3\xa9", "caf");                          /* é is \w: one token, ASCII kept */
    expect_tokens("na\xc3\xafve", "nave");                        /* not "na ve" */
    expect_tokens("bird\xe2\x80\x99s", "bird s");                 /* curly apostrophe is not \w */
    expect_tokens("\xe2\x80\x9cyellow\xe2\x80\x9d", "yellow");
    expect_tokens("this\xef\xbf\xbd\xef\xbf\xbd" "bird", "this bird");  /* the U+FFFD pair rule */
    expect_tokens("ora n\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "e", "ora n e");
    expect_tokens("\xc3\x89" "COLE", "cole");                      /* É lower-cases to é: dropped */
    expect_tokens("\xe2\x84\xaa" "elvin", "kelvin");               /* KELVIN SIGN lower() is "k" */
    expect_tokens("\xc4\xb0stanbul", "i stanbul");                /* İ lower() is "i" + U+0307 */
    expect_tokens("\xce\xb1\xce\xb2\xce\xb3 ok", "ok");            /* all-Greek token is dropped */
    expect_tokens("bad\xff" "byte \xc3(x \xe2\x80" "end", "bad byte x end");  /* invalid UTF-8 */
    expect_tokens("sur\xed\xa0\x80rogate over\xc0\xaflong", "sur rogate over long");
    char **tok = (char **)1;
    EXPECT(text_tokenize(NULL, &tok) == -1 && tok == NULL, "NULL caption is an error");
    EXPECT(strstr(err_msg(), "NULL") != NULL, "error message: %s", err_msg());
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Hex string (up to a tab) into bytes, NUL-terminated; -1 on bad hex. */
static int unhex(const char *s, char *out, size_t cap) {
    size_t n = 0;
    for (; *s && *s != '\t'; s += 2) {
        int hi = hex_value(s[0]), lo = s[1] ? hex_value(s[1]) : -1;
        if (hi < 0 || lo < 0 || n + 1 >= cap) return -1;
        out[n++] = (char)(hi * 16 + lo);
    }
    out[n] = '\0';
    return 0;
}

static void test_unicode_fixture(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/text_unicode_cases.txt", fixture_dir());
    FILE *f = fopen(path, "r");
    if (!f) { test_skip("%s not found (tests/fixtures/gen_tokens.py writes it)", path); return; }
    char line[4096], caption[2048], got[2048];
    int cases = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        line[strcspn(line, "\n")] = '\0';
        char *tab = strchr(line, '\t');
        if (!tab || unhex(line, caption, sizeof caption) < 0) { bad++; continue; }
        tokens_joined(caption, got, sizeof got);
        cases++;
        if (strcmp(got, tab + 1) != 0 && bad++ < 5)
            EXPECT(0, "unicode case %s: got \"%s\", want \"%s\"", line, got, tab + 1);
    }
    fclose(f);
    EXPECT(cases >= 400 && bad == 0, "%s: %d cases, %d mismatched or malformed", path, cases, bad);
}

/* ---------------------------------------------------------------- the CUB captions */

/* The str items of a protocol-0 list pickle (AttnGAN's filenames.pickle): lines "V<str>" or
 * "aV<str>". Enough for these files; src/io/pickle.c is the general reader. */
static char **read_filenames(const char *path, int *n) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char line[1024];
    char **keys = NULL;
    int cap = 0;
    *n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        const char *s = line[0] == 'a' ? line + 1 : line;
        if (s[0] != 'V') continue;
        if (*n == cap) keys = xrealloc(keys, (size_t)(cap = cap ? 2 * cap : 1024) * sizeof(char *));
        keys[(*n)++] = xstrdup(s + 1);
    }
    fclose(f);
    return keys;
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = xmalloc((size_t)len + 1);
    size_t got = fread(buf, 1, (size_t)len, f);
    buf[got] = '\0';
    fclose(f);
    return buf;
}

typedef struct Totals {
    long images, captions, tokens, short_images;
    uint64_t fnv;
} Totals;

static void fnv_update(uint64_t *h, const char *s) {
    for (; *s; s++) *h = (*h ^ (unsigned char)*s) * 1099511628211ull;
}

/* load_captions for one image: split on '\n', skip empty lines and captions without tokens, keep
 * at most 10; adds the words to v. */
static int add_image_captions(const char *path, Vocab *v, Totals *t) {
    char *buf = read_file(path);
    if (!buf) return -1;
    int kept = 0;
    for (char *line = buf; line && kept < 10;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        char **tok;
        int n = *line ? text_tokenize(line, &tok) : 0;
        if (n > 0) {
            kept++;
            for (int i = 0; i < n; i++) {
                vocab_add(v, tok[i]);
                fnv_update(&t->fnv, tok[i]);
                fnv_update(&t->fnv, i + 1 < n ? " " : "\n");
            }
            t->tokens += n;
            text_free_tokens(tok, n);
        }
        line = nl ? nl + 1 : NULL;
    }
    free(buf);
    t->captions += kept;
    t->short_images += kept < 10;
    return 0;
}

static int add_split(const char *data, const char *split, Vocab *v, Totals *t) {
    char path[1024];
    snprintf(path, sizeof path, "%s/birds/%s/filenames.pickle", data, split);
    int n = 0, missing = 0;
    char **keys = read_filenames(path, &n);
    EXPECT(keys && n > 0, "%s: no filenames read", path);
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/birds/text/%s.txt", data, keys[i]);
        if (add_image_captions(path, v, t) < 0 && missing++ < 3) EXPECT(0, "cannot read %s", path);
        free(keys[i]);
    }
    free(keys);
    t->images += n;
    return missing;
}

/* The counts file of gen_tokens.py: "name value" lines. */
static int read_counts(const char *path, long *images, long *captions, long *tokens, long *vocab, uint64_t *fnv) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    unsigned long long h = 0;
    int got = fscanf(f, "images %ld captions %ld tokens %ld vocab %ld fnv1a64 %llx", images, captions, tokens, vocab, &h);
    fclose(f);
    *fnv = h;
    return got == 5 ? 0 : -1;
}

static void compare_with_fixture(const Vocab *v, const Totals *t) {
    char path[512];
    snprintf(path, sizeof path, "%s/vocab_birds.txt", fixture_dir());
    Vocab want;
    if (vocab_load(&want, path) < 0) { EXPECT(0, "load %s: %s", path, err_msg()); return; }
    int first_diff = -1;
    for (int i = 0; i < v->n && i < want.n && first_diff < 0; i++)
        if (strcmp(v->words[i], want.words[i]) != 0) first_diff = i;
    EXPECT(v->n == want.n && first_diff < 0, "vocabulary: %d words vs %d in %s; first difference at %d (%s vs %s)",
           v->n, want.n, path, first_diff, first_diff >= 0 ? v->words[first_diff] : "-",
           first_diff >= 0 ? want.words[first_diff] : "-");
    vocab_free(&want);
    long images, captions, tokens, vsize;
    uint64_t fnv;
    snprintf(path, sizeof path, "%s/text_birds_counts.txt", fixture_dir());
    if (read_counts(path, &images, &captions, &tokens, &vsize, &fnv) < 0) { EXPECT(0, "cannot parse %s", path); return; }
    EXPECT(t->images == images && t->captions == captions && t->tokens == tokens && v->n == vsize,
           "counts: %ld images, %ld captions, %ld tokens, %d words; Python: %ld, %ld, %ld, %ld",
           t->images, t->captions, t->tokens, v->n, images, captions, tokens, vsize);
    EXPECT(t->fnv == fnv, "checksum of all tokenized captions %016llx, Python %016llx",
           (unsigned long long)t->fnv, (unsigned long long)fnv);
}

static void test_birds_vocabulary(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/birds/train/filenames.pickle", data_dir());
    if (access(path, R_OK) != 0) { test_skip("no CUB captions at %s (set ATTNGAN_DATA)", path); return; }
    double t0 = now_s();
    Vocab v;
    vocab_init(&v);
    Totals t = {0, 0, 0, 0, 14695981039346656037ull};
    int missing = add_split(data_dir(), "train", &v, &t);
    long n_train = t.images;
    missing += add_split(data_dir(), "test", &v, &t);
    EXPECT(n_train == 8855 && t.images - n_train == 2933, "split sizes %ld/%ld, expected 8855/2933", n_train, t.images - n_train);
    double dt = now_s() - t0;
    printf("birds: %ld images, %ld captions, %ld tokens, vocabulary %d (%.2f s)\n", t.images, t.captions, t.tokens, v.n, dt);
    EXPECT(missing == 0, "%d caption files missing", missing);
    EXPECT(t.images == 11788 && t.captions == 117880 && t.short_images == 0,
           "%ld images, %ld captions, %ld images with < 10", t.images, t.captions, t.short_images);
    EXPECT(v.n == 5450, "vocabulary size %d, expected 5450 (with <end>)", v.n);
    compare_with_fixture(&v, &t);
    vocab_free(&v);
}

/* ---------------------------------------------------------------- vocabulary files */

static char g_tmp[256];

static const char *write_tmp(const char *name, const char *content) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", g_tmp, name);
    FILE *f = fopen(path, "w");
    CHECK(f, "cannot write %s", path);
    fputs(content, f);
    fclose(f);
    return path;
}

static void expect_load_error(const char *name, const char *content, const char *needle) {
    const char *path = write_tmp(name, content);
    Vocab v;
    int rc = vocab_load(&v, path);
    EXPECT(rc == -1 && strstr(err_msg(), needle) && strstr(err_msg(), name),
           "vocab_load %s: rc %d, message \"%s\" should contain \"%s\"", name, rc, err_msg(), needle);
    if (rc == 0) vocab_free(&v);
}

static void test_vocab_basics(void) {
    Vocab v;
    vocab_init(&v);
    EXPECT(v.n == 1 && strcmp(v.words[0], "<end>") == 0 && vocab_find(&v, "<end>") == 0, "init holds <end>");
    char word[32];
    int ok = 1;
    for (int i = 0; i < 3000; i++) {  /* several hash growths */
        snprintf(word, sizeof word, "w%d", i);
        ok &= vocab_add(&v, word) == i + 1;
    }
    EXPECT(ok && v.n == 3001, "3000 new words get indices 1..3000 (n %d)", v.n);
    for (int i = 0; i < 3000 && ok; i++) {
        snprintf(word, sizeof word, "w%d", i);
        ok = vocab_find(&v, word) == i + 1 && vocab_add(&v, word) == i + 1;
    }
    EXPECT(ok, "3000 words found at their indices, re-adding returns the same index");
    EXPECT(vocab_find(&v, "w3000") == -1 && vocab_find(&v, "") == -1, "unknown words are -1");
    EXPECT(vocab_add(&v, "") == -1 && strstr(err_msg(), "empty"), "empty word rejected: %s", err_msg());
    EXPECT(vocab_add(&v, "a b") == -1 && strstr(err_msg(), "whitespace"), "word with a space rejected: %s", err_msg());

    snprintf(word, sizeof word, "%s/vocab.txt", g_tmp);
    EXPECT(vocab_save(&v, word) == 0, "save: %s", err_msg());
    Vocab w;
    EXPECT(vocab_load(&w, word) == 0, "load: %s", err_msg());
    ok = w.n == v.n;
    for (int i = 0; i < v.n && ok; i++) ok = strcmp(w.words[i], v.words[i]) == 0 && vocab_find(&w, v.words[i]) == i;
    EXPECT(ok, "save/load round trip keeps %d words and indices", v.n);
    vocab_free(&w);
    vocab_free(&v);
}

static void test_vocab_bad_files(void) {
    Vocab v;
    EXPECT(vocab_load(&v, "/nonexistent/vocab.txt") == -1 && strstr(err_msg(), "/nonexistent/vocab.txt"),
           "missing file named: %s", err_msg());
    expect_load_error("empty.txt", "", "empty vocabulary");
    expect_load_error("noend.txt", "bird\nwing\n", ":1:");
    expect_load_error("dup.txt", "<end>\nbird\nwing\nbird\n", ":4: duplicate word 'bird' (first at line 2)");
    expect_load_error("blank.txt", "<end>\nbird\n\nwing\n", ":3: empty");
    expect_load_error("space.txt", "<end>\nred bird\n", ":2:");
    const char *path = write_tmp("crlf.txt", "<end>\r\nbird\r\nwing");
    EXPECT(vocab_load(&v, path) == 0 && v.n == 3 && vocab_find(&v, "wing") == 2, "CRLF and no final newline: %s", err_msg());
    vocab_free(&v);
    Vocab none = {0};
    EXPECT(vocab_save(&none, "x") == -1, "saving an empty Vocab is an error");
    vocab_init(&v);
    EXPECT(vocab_save(&v, "/nonexistent/dir/v.txt") == -1 && strstr(err_msg(), "/nonexistent/dir/v.txt"),
           "unwritable path named: %s", err_msg());
    vocab_free(&v);
}

static void test_encode(void) {
    Vocab v;
    vocab_init(&v);
    vocab_add(&v, "a");
    vocab_add(&v, "red");
    vocab_add(&v, "bird");
    int64_t *ids;
    char *unknown;
    int n = vocab_encode(&v, "A red bird.", &ids, &unknown);
    EXPECT(n == 3 && ids[0] == 1 && ids[1] == 2 && ids[2] == 3 && unknown == NULL, "all known: n %d", n);
    free(ids);
    n = vocab_encode(&v, "a purple bird, zzz!", &ids, &unknown);
    EXPECT(n == 2 && ids[0] == 1 && ids[1] == 3 && unknown && strcmp(unknown, "purple,zzz") == 0,
           "unknown words reported: n %d, unknown \"%s\"", n, unknown ? unknown : "(null)");
    free(ids);
    free(unknown);
    n = vocab_encode(&v, "...", &ids, &unknown);
    EXPECT(n == 0 && ids != NULL && unknown == NULL, "no tokens: n %d", n);
    free(ids);
    EXPECT(vocab_encode(&v, NULL, &ids, &unknown) == -1, "NULL caption is an error");
    int64_t back[3] = {3, 2, 1};
    char *s = vocab_decode(&v, back, 3);
    EXPECT(strcmp(s, "bird red a") == 0, "vocab_decode joins the words: \"%s\"", s);
    free(s);
    s = vocab_decode(&v, back, 0);
    EXPECT(s[0] == 0, "vocab_decode of no ids is empty");
    free(s);
    vocab_free(&v);
}

/* ---------------------------------------------------------------- caption_sample */

static void test_sample_short(void) {
    int64_t ids[5] = {4, 8, 15, 16, 23}, row[18];
    for (int i = 0; i < 18; i++) row[i] = -1;
    EXPECT(caption_sample(ids, 5, 18, NULL, row) == 5, "short caption keeps its length");
    int ok = 1;
    for (int i = 0; i < 18; i++) ok &= row[i] == (i < 5 ? ids[i] : 0);
    EXPECT(ok, "short caption copied and 0-padded");
    EXPECT(caption_sample(ids, 5, 5, NULL, row) == 5 && row[4] == 23, "n == words_num is a copy");
    EXPECT(caption_sample(ids, 0, 18, NULL, row) == 0 && row[0] == 0, "empty caption is all padding");
    EXPECT(caption_sample(ids, 6, 5, NULL, row) == -1, "a long caption without an Rng is an error");
    EXPECT(caption_sample(NULL, 3, 5, NULL, row) == -1, "NULL ids is an error");
    EXPECT(caption_sample(ids, -1, 5, NULL, row) == -1, "negative length is an error");
    EXPECT(caption_sample(ids, 5, 0, NULL, row) == -1, "words_num 0 is an error");
}

static void test_sample_long(void) {
    enum { N = 20, K = 5, TRIALS = 20000 };
    int64_t ids[N], row[K], row2[K];
    for (int i = 0; i < N; i++) ids[i] = 100 + i;
    Rng a, b, c;
    rng_init(&a, 42);
    rng_init(&b, 42);
    rng_init(&c, 43);
    long counts[N] = {0};
    int ordered = 1, same = 1, differs = 0, len_ok = 1;
    for (int t = 0; t < TRIALS; t++) {
        len_ok &= caption_sample(ids, N, K, &a, row) == K;
        caption_sample(ids, N, K, &b, row2);
        same &= memcmp(row, row2, sizeof row) == 0;
        caption_sample(ids, N, K, &c, row2);
        differs |= memcmp(row, row2, sizeof row) != 0;
        for (int i = 0; i < K; i++) {
            counts[row[i] - 100]++;
            if (i) ordered &= row[i] > row[i - 1];
        }
    }
    EXPECT(len_ok, "long captions give words_num ids");
    EXPECT(ordered, "sampled ids keep the caption's order, without repeats");
    EXPECT(same && differs, "deterministic per seed (same %d), different seeds differ (%d)", same, differs);
    long lo = counts[0], hi = counts[0];
    for (int i = 1; i < N; i++) { lo = counts[i] < lo ? counts[i] : lo; hi = counts[i] > hi ? counts[i] : hi; }
    long expect = (long)TRIALS * K / N;  /* 5000; one standard deviation is about 61 */
    EXPECT(lo > expect - 300 && hi < expect + 300, "uniform selection: counts in [%ld, %ld], expected ~%ld", lo, hi, expect);
}

int main(void) {
    test_begin("test_text");
    snprintf(g_tmp, sizeof g_tmp, "/tmp/test_text_XXXXXX");
    CHECK(mkdtemp(g_tmp), "mkdtemp failed");
    test_tokenizer_cases();
    test_unicode_fixture();
    test_vocab_basics();
    test_vocab_bad_files();
    test_encode();
    test_sample_short();
    test_sample_long();
    test_birds_vocabulary();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) printf("note: could not remove %s\n", g_tmp);
    return test_end();
}
