/* test_cub.c: the CUB data/birds reader (src/data/cub.c): the acceptance numbers on the real data
 * (counts, classes, captions, vocabulary, photos present, time), and small generated layouts:
 * one good (AttnGAN's caption rules, vocabulary order, captions.pickle) and one per kind of bad
 * layout, each of which must be an error naming the file. */
#include "test.h"
#include "../src/data/cub.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char g_dir[256];

static const char *data_root(void) { return getenv("ATTNGAN_DATA") ? getenv("ATTNGAN_DATA") : "../shared/data"; }

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static long long count_tokens(const CubSplit *s, int *empty) {
    long long n = 0;
    for (int i = 0; i < s->n; i++)
        for (int k = 0; k < CUB_CAPTIONS_PER_IMAGE; k++) {
            n += s->images[i].cap_len[k];
            *empty += s->images[i].cap_len[k] <= 0;
        }
    return n;
}

/* The vocabulary equals tests/fixtures/vocab_birds.txt (Python's AttnGAN order), if present. */
static void check_vocab_fixture(const Vocab *v) {
    const char *path = "tests/fixtures/vocab_birds.txt";
    FILE *f = fopen(path, "r");
    if (!f) { test_skip("%s not found (tests/fixtures/gen_tokens.py writes it)", path); return; }
    char line[256];
    int i = 0, bad = 0, first_bad = -1;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (i >= v->n || strcmp(v->words[i], line)) { if (!bad++) first_bad = i; }
        i++;
    }
    fclose(f);
    EXPECT(bad == 0 && i == v->n, "vocabulary vs %s: %d differ (first at %d), %d lines for %d words", path, bad, first_bad, i, v->n);
}

static void test_real(void) {
    char root[512];
    snprintf(root, sizeof root, "%s/birds", data_root());
    if (access(root, R_OK) != 0) { test_skip("no CUB data at %s (set ATTNGAN_DATA)", root); return; }
    Cub cub;
    double t0 = now();
    int rc = cub_open(&cub, root);
    double dt = now() - t0;
    if (!EXPECT(rc == 0, "cub_open(%s): %s", root, err_msg())) return;
    printf("cub_open: %.2f s\n", dt);
    EXPECT(dt < 10.0, "cub_open took %.2f s", dt);
    EXPECT(cub.train.n == 8855 && cub.test.n == 2933, "images %d / %d", cub.train.n, cub.test.n);
    EXPECT(cub.train.n_classes == 150 && cub.test.n_classes == 50, "classes %d / %d", cub.train.n_classes, cub.test.n_classes);
    EXPECT(cub.vocab.n == 5450 && !cub.vocab_from_pickle, "vocabulary %d words (from pickle: %d)", cub.vocab.n, cub.vocab_from_pickle);
    /* classes 001-050 in full (1,906 train, 983 test) and 3,508 tight crops of 59 more train classes */
    EXPECT(cub.train.n_present == 5414 && cub.test.n_present == 983, "present %d / %d", cub.train.n_present, cub.test.n_present);
    EXPECT(cub.train.n_tight == 3508 && cub.test.n_tight == 0, "tight crops %d / %d", cub.train.n_tight, cub.test.n_tight);
    int tight_ok = 1, tight_classes = 0, present_classes = 0, last_tc = 0, last_pc = 0;
    for (int i = 0; i < cub.train.n; i++) {
        const CubImage *ti = &cub.train.images[i];
        if (ti->tight) tight_ok &= ti->present && ti->class_id > 50 && ti->bbox[0] == 0 && ti->bbox[1] == 0;
        if (ti->tight && ti->class_id != last_tc) { tight_classes++; last_tc = ti->class_id; }
        if (ti->present && ti->class_id != last_pc) { present_classes++; last_pc = ti->class_id; }
    }
    EXPECT(tight_ok && tight_classes == 59 && present_classes == 92, "tight crops: present, classes > 050, box at 0,0 (%d); %d classes, %d with photos",
           tight_ok, tight_classes, present_classes);
    EXPECT(cub.n_class_names == 200 && !strcmp(cub.class_names[0], "001.Black_footed_Albatross") &&
               !strcmp(cub.class_names[199], "200.Common_Yellowthroat"),
           "class names");
    int empty = 0;
    long long tr = count_tokens(&cub.train, &empty), te = count_tokens(&cub.test, &empty);
    EXPECT(cub.train.n * CUB_CAPTIONS_PER_IMAGE == 88550 && cub.test.n * CUB_CAPTIONS_PER_IMAGE == 29330 && empty == 0,
           "captions 88,550 / 29,330, %d empty", empty);
    EXPECT(tr == 1354942 && te == 448515, "caption tokens %lld / %lld (Python: 1354942 / 448515)", tr, te);
    /* disjoint classes, sorted, and each image's class agrees with its directory name */
    int overlap = 0, sorted = 1, agree = 1;
    for (int i = 0; i < cub.train.n_classes; i++)
        for (int j = 0; j < cub.test.n_classes; j++) overlap += cub.train.classes[i] == cub.test.classes[j];
    for (int i = 1; i < cub.train.n_classes; i++) sorted &= cub.train.classes[i] > cub.train.classes[i - 1];
    for (int i = 0; i < cub.test.n; i++) agree &= atoi(cub.test.images[i].key) == cub.test.images[i].class_id;
    EXPECT(overlap == 0 && sorted && agree, "train/test classes: %d shared, sorted %d, agree %d", overlap, sorted, agree);
    /* known tokens and ids */
    EXPECT(!strcmp(cub.vocab.words[0], "<end>") && !strcmp(cub.vocab.words[1], "a") && !strcmp(cub.vocab.words[2], "bird") &&
               vocab_find(&cub.vocab, "beak") == 10 && vocab_find(&cub.vocab, "wing") == 6,
           "known vocabulary ids");
    const CubImage *im = &cub.train.images[0];
    static const int64_t cap0[] = {1, 2, 3, 1, 4, 5, 6, 7, 8, 1, 5, 9, 10}; /* a bird with a very long wing span and a long pointed beak */
    EXPECT(!strcmp(im->key, "002.Laysan_Albatross/Laysan_Albatross_0002_1027") && im->class_id == 2 && im->present &&
               im->cap_len[0] == 13 && !memcmp(im->caps[0], cap0, sizeof cap0),
           "first train image and its first caption");
    EXPECT(fabsf(im->bbox[0] - 115.2f) < 1e-3f && fabsf(im->bbox[3] - 132.0f) < 1e-3f, "its box %g %g %g %g", im->bbox[0], im->bbox[1],
           im->bbox[2], im->bbox[3]);
    char path[1024];
    const char *p = cub_image_path(&cub, im, path, sizeof path);
    EXPECT(p && strstr(p, "/CUB_200_2011/images/002.Laysan_Albatross/Laysan_Albatross_0002_1027.jpg") && access(p, R_OK) == 0,
           "image path %s", p ? p : err_msg());
    EXPECT(cub_image_path(&cub, im, path, 20) == NULL && strstr(err_msg(), "does not fit"), "short buffer: %s", err_msg());
    check_vocab_fixture(&cub.vocab);
    cub_close(&cub);
}

/* ---------------------------------------------------------------- generated layouts */
/* Writes n bytes to dir/rel, creating directories. */
static void put_bin(const char *dir, const char *rel, const void *data, size_t n) {
    char path[700], cmd[800];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\"", path);
    CHECK(system(cmd) == 0, "mkdir for %s", path);
    FILE *f = fopen(path, "wb");
    CHECK(f, "cannot write %s", path);
    CHECK(fwrite(data, 1, n, f) == n, "cannot write %s", path);
    fclose(f);
}

static void put(const char *dir, const char *rel, const char *fmt, ...) ATTR_PRINTF(3, 4);
static void put(const char *dir, const char *rel, const char *fmt, ...) {
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    CHECK(n >= 0 && (size_t)n < sizeof buf, "test file too long");
    put_bin(dir, rel, buf, (size_t)n);
}

#define PUT_LIT(dir, rel, lit) put_bin(dir, rel, lit, sizeof(lit) - 1)

/* captions.pickle (protocol 0): [train, test, ixtoword, wordtoix] over the words <end>, hello,
 * world; every caption is [2] except the first of each split ([1, 2] in train, [1] in test). */
static void put_captions_pickle(const char *dir) {
    char buf[4096];
    size_t o = 0;
    o += (size_t)snprintf(buf + o, sizeof buf - o, "(l");
    for (int split = 0; split < 2; split++) {
        o += (size_t)snprintf(buf + o, sizeof buf - o, "(l");
        for (int c = 0; c < (split ? 10 : 30); c++)
            o += (size_t)snprintf(buf + o, sizeof buf - o, "%s", c ? "(lI2\naa" : split ? "(lI1\naa" : "(lI1\naI2\naa");
        o += (size_t)snprintf(buf + o, sizeof buf - o, "a");
    }
    snprintf(buf + o, sizeof buf - o, "(dI0\nV<end>\nsI1\nVhello\nsI2\nVworld\nsa(dV<end>\nI0\nsVhello\nI1\nsVworld\nI2\nsa.");
    put(dir, "captions.pickle", "%s", buf);
}

static const char *const KEYS[4] = {"001.A/a_1", "001.A/a_2", "002.B/b_1", "003.C/c_1"};

/* Ten captions "<word> bird number k." for an image; the first image's file also has a blank
 * line, a line without words, capitals and an eleventh caption with a new word. */
static void put_captions(const char *dir, int img) {
    static const char *const word[4] = {"red", "blue", "green", "tiny"};
    char text[2048], rel[64];
    size_t o = 0;
    if (img == 0) o += (size_t)snprintf(text + o, sizeof text - o, "\n...!\nA RED-Bird, number 0.\n");
    for (int k = img == 0; k < 10; k++) o += (size_t)snprintf(text + o, sizeof text - o, "%s bird number %d.\n", word[img], k);
    if (img == 0) snprintf(text + o, sizeof text - o, "an eleventh zebra caption\n");
    snprintf(rel, sizeof rel, "text/%s.txt", KEYS[img]);
    put(dir, rel, "%s", text);
}

/* A complete small layout: 3 classes, 4 images (3 train, 1 test), one photo present. */
static void make_layout(const char *dir, int with_captions_pickle) {
    put(dir, "CUB_200_2011/classes.txt", "1 001.A\n2 002.B\n3 003.C\n");
    put(dir, "CUB_200_2011/images.txt", "1 001.A/a_1.jpg\n2 001.A/a_2.jpg\n\n3 002.B/b_1.jpg\n4 003.C/c_1.jpg\n");
    put(dir, "CUB_200_2011/image_class_labels.txt", "1 1\n2 1\n3 2\n4 3\n");
    put(dir, "CUB_200_2011/bounding_boxes.txt", "1 1.0 2.0 30.5 40.0\n2 0 0 10 10\n3 5 5 20 20\n4 1 1 2 2\r\n");
    put(dir, "CUB_200_2011/images/001.A/a_1.jpg", "not really a jpeg");
    put(dir, "train/filenames.pickle", "(lp0\nV%s\np1\naV%s\np2\naV%s\np3\na.", KEYS[0], KEYS[1], KEYS[2]);
    put(dir, "train/class_info.pickle", "(lp0\nI1\naI1\naI2\na.");
    PUT_LIT(dir, "test/filenames.pickle", "\x80\x02]q\x00X\x09\x00\x00\x00" "003.C/c_1" "q\x01" "a.");
    PUT_LIT(dir, "test/class_info.pickle", "\x80\x02]q\x00K\x03" "a.");
    for (int i = 0; i < 4; i++) put_captions(dir, i);
    if (with_captions_pickle) put_captions_pickle(dir);
}

static int g_case;

static const char *new_layout(int with_captions_pickle) {
    static char dir[400];
    snprintf(dir, sizeof dir, "%s/case%d", g_dir, g_case++);
    make_layout(dir, with_captions_pickle);
    return dir;
}

static void test_good_layout(void) {
    const char *dir = new_layout(0);
    Cub cub;
    if (!EXPECT(cub_open(&cub, dir) == 0, "good layout: %s", err_msg())) return;
    EXPECT(cub.train.n == 3 && cub.test.n == 1 && cub.train.n_classes == 2 && cub.test.n_classes == 1 && cub.n_class_names == 3,
           "layout counts");
    EXPECT(cub.train.n_present == 1 && cub.train.images[0].present && !cub.train.images[1].present && cub.test.n_present == 0,
           "presence");
    /* vocabulary: <end>, then train words in order of appearance, then test words */
    static const char *const words[] = {"<end>", "a", "red", "bird", "number", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9",
                                        "blue", "green", "tiny"};
    int ok = cub.vocab.n == 18;
    for (int i = 0; ok && i < 18; i++) ok = !strcmp(cub.vocab.words[i], words[i]);
    EXPECT(ok, "vocabulary order (%d words)", cub.vocab.n);
    EXPECT(vocab_find(&cub.vocab, "zebra") == -1, "the eleventh caption is not read");
    const CubImage *a1 = &cub.train.images[0];
    EXPECT(a1->cap_len[0] == 5 && a1->caps[0][0] == 1 && a1->caps[0][1] == 2 && a1->caps[0][2] == 3 && a1->caps[0][4] == 5,
           "first caption 'A RED-Bird, number 0.' -> a red bird number 0");
    EXPECT(a1->cap_len[9] == 4 && a1->caps[9][3] == 14, "tenth caption 'red bird number 9'");
    EXPECT(a1->bbox[0] == 1.0f && a1->bbox[2] == 30.5f && cub.test.images[0].bbox[3] == 2.0f, "boxes");
    EXPECT(!strcmp(cub.test.images[0].key, "003.C/c_1") && cub.test.images[0].class_id == 3, "test image");
    EXPECT(cub.train.n_tight == 0 && !a1->tight, "no tight_crops.txt: no tight crops");
    cub_close(&cub);
    cub_close(&cub); /* idempotent */
    put(dir, "CUB_200_2011/tight_crops.txt", "3 002.B/b_1.jpg\n");
    if (!EXPECT(cub_open(&cub, dir) == 0, "layout with tight_crops.txt: %s", err_msg())) return;
    EXPECT(cub.train.n_tight == 1 && cub.train.images[2].tight && !cub.train.images[0].tight, "tight_crops.txt marks image 3");
    cub_close(&cub);
}

static void test_captions_pickle(void) {
    const char *dir = new_layout(1);
    Cub cub;
    if (!EXPECT(cub_open(&cub, dir) == 0, "layout with captions.pickle: %s", err_msg())) return;
    EXPECT(cub.vocab_from_pickle && cub.vocab.n == 3 && !strcmp(cub.vocab.words[1], "hello"), "vocabulary from captions.pickle");
    const CubImage *a1 = &cub.train.images[0], *c1 = &cub.test.images[0];
    EXPECT(a1->cap_len[0] == 2 && a1->caps[0][1] == 2 && a1->cap_len[1] == 1 && c1->cap_len[0] == 1 && c1->caps[0][0] == 1,
           "caption ids from captions.pickle");
    cub_close(&cub);
    /* a word id outside the vocabulary */
    dir = new_layout(1);
    put(dir, "captions.pickle", "(l(la(la(dI0\nV<end>\nsa(dV<end>\nI0\nsa.");
    EXPECT(cub_open(&cub, dir) == -1 && strstr(err_msg(), "captions.pickle") && strstr(err_msg(), "expected a list of 30"),
           "captions.pickle with too few captions: %s", err_msg());
}

/* Makes a fresh good layout, lets `edit` break it, expects cub_open to fail naming the file. */
static void expect_bad_layout(const char *what, const char *rel, const char *content, const char *file_needle, const char *needle) {
    const char *dir = new_layout(0);
    char path[600];
    if (content) put(dir, rel, "%s", content);
    else {
        snprintf(path, sizeof path, "%s/%s", dir, rel);
        CHECK(remove(path) == 0, "remove %s", path);
    }
    Cub cub;
    int rc = cub_open(&cub, dir);
    if (rc == 0) cub_close(&cub);
    EXPECT(rc == -1 && strstr(err_msg(), file_needle) && strstr(err_msg(), needle), "%s: rc %d, '%s' (want '%s' and '%s')", what, rc,
           rc ? err_msg() : "", file_needle, needle);
    EXPECT(cub.train.images == NULL && cub.vocab.words == NULL, "%s: the Cub is left empty", what);
}

static void test_bad_layouts(void) {
    expect_bad_layout("missing caption file", "text/002.B/b_1.txt", NULL, "text/002.B/b_1.txt", "cannot open");
    expect_bad_layout("9 captions", "text/001.A/a_2.txt", "one\ntwo\n\n???\nthree\nfour\nfive\nsix\nseven\neight\nnine\n",
                      "text/001.A/a_2.txt", "9 captions");
    expect_bad_layout("bbox that does not parse", "CUB_200_2011/bounding_boxes.txt", "1 1 2 3 4\n2 0 0 10 10\n3 5 5 2x0 20\n4 1 1 2 2\n",
                      "bounding_boxes.txt line 3", "'2x0' is not a number");
    expect_bad_layout("bbox with 4 fields", "CUB_200_2011/bounding_boxes.txt", "1 1 2 3 4\n2 0 0 10\n", "bounding_boxes.txt line 2",
                      "expected 5 fields");
    expect_bad_layout("bbox of zero width", "CUB_200_2011/bounding_boxes.txt", "1 1 2 0 4\n", "bounding_boxes.txt line 1",
                      "non-positive size");
    expect_bad_layout("bbox missing", "CUB_200_2011/bounding_boxes.txt", "1 1 2 3 4\n2 0 0 10 10\n4 1 1 2 2\n", "bounding_boxes.txt",
                      "no line for image id 3");
    expect_bad_layout("duplicate label", "CUB_200_2011/image_class_labels.txt", "1 1\n2 1\n3 2\n1 3\n", "image_class_labels.txt line 4",
                      "already given on line 1");
    expect_bad_layout("label of an unknown class", "CUB_200_2011/image_class_labels.txt", "1 1\n2 7\n", "image_class_labels.txt line 2",
                      "not a class id");
    expect_bad_layout("image id out of range", "CUB_200_2011/images.txt", "1 001.A/a_1.jpg\n9 001.A/a_2.jpg\n", "images.txt line 2",
                      "out of range");
    expect_bad_layout("image path escaping", "CUB_200_2011/images.txt", "1 ../../etc/passwd.jpg\n", "images.txt line 1", "relative");
    expect_bad_layout("tight crop of another path", "CUB_200_2011/tight_crops.txt", "3 002.B/b_1.jpg\n2 001.A/a_1.jpg\n",
                      "tight_crops.txt line 2", "is '001.A/a_2.jpg' in images.txt");
    expect_bad_layout("tight crop listed twice", "CUB_200_2011/tight_crops.txt", "3 002.B/b_1.jpg\n3 002.B/b_1.jpg\n",
                      "tight_crops.txt line 2", "listed twice");
    expect_bad_layout("tight crop of an unknown image", "CUB_200_2011/tight_crops.txt", "5 002.B/b_1.jpg\n", "tight_crops.txt line 1",
                      "not an image id");
    expect_bad_layout("missing classes.txt", "CUB_200_2011/classes.txt", NULL, "classes.txt", "cannot open");
    expect_bad_layout("truncated filenames.pickle", "train/filenames.pickle", "(lp0\nV001.A/a_1\np1\naV001.A/a_",
                      "train/filenames.pickle", "truncated");
    expect_bad_layout("class_info with a str", "train/class_info.pickle", "(lp0\nI1\naV1\naI2\na.", "train/class_info.pickle",
                      "item 1 is a str, expected int");
    expect_bad_layout("class_info too short", "train/class_info.pickle", "(lp0\nI1\naI1\na.", "train/class_info.pickle",
                      "2 classes, but filenames.pickle has 3");
    expect_bad_layout("class_info disagrees", "train/class_info.pickle", "(lp0\nI1\naI2\naI2\na.", "train/class_info.pickle",
                      "item 1 is class 2");
    expect_bad_layout("unknown image in the split", "test/filenames.pickle", "(lp0\nV003.C/c_9\na.", "test/filenames.pickle",
                      "'003.C/c_9' is not in");
    expect_bad_layout("filenames.pickle calling os.system", "test/filenames.pickle", "cos\nsystem\n(S'ls'\ntR.", "test/filenames.pickle",
                      "os.system");
}

int main(void) {
    test_begin("test_cub");
    snprintf(g_dir, sizeof g_dir, "%s/attngan_cub_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    CHECK(mkdtemp(g_dir), "mkdtemp");
    test_real();
    test_good_layout();
    test_captions_pickle();
    test_bad_layouts();
    char cmd[320];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", g_dir);
    return test_end();
}
