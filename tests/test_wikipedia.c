/* test_wikipedia.c: the class-level Wikipedia documents (src/data/wikipedia.c): the real layout
 * (200 classes, 8,255 sentences, the splits, the easy test split = AttnGAN's test classes) when
 * the data is present, and clear errors on generated bad layouts. */
#include "test.h"
#include "../src/data/wikipedia.h"

#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *data_dir(void) {
    return getenv("ATTNGAN_DATA") ? getenv("ATTNGAN_DATA") : "../shared/data";
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------- the real data */

/* Sorted distinct class ids of AttnGAN's split, from the "NNN." prefixes of the "V..." lines of
 * its protocol-0 filenames.pickle; marks[id] = 1. Returns the number of distinct classes. */
static int attngan_classes(const char *path, unsigned char *marks, int max_id) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        const char *s = line[0] == 'a' ? line + 1 : line;
        if (s[0] != 'V') continue;
        int id = atoi(s + 1);
        if (id >= 1 && id <= max_id && !marks[id]) { marks[id] = 1; n++; }
    }
    fclose(f);
    return n;
}

static void check_counts(const Wiki *w) {
    EXPECT(w->n_classes == 200 && w->n_sentences == 8255, "%d classes, %d sentences", w->n_classes, w->n_sentences);
    int lo = 1 << 30, hi = 0, total = 0, labels[WIKI_N_LABELS] = {0}, non_visual = 0, nv_ok = 1;
    for (int id = 1; id <= w->n_classes; id++) {
        const WikiLabel *lab;
        int n = wiki_labels(w, id, &lab);
        lo = n < lo ? n : lo;
        hi = n > hi ? n : hi;
        total += n;
        for (int i = 0; i < n; i++) labels[lab[i]]++;
        const char **nv;
        int m = wiki_non_visual(w, id, &nv);
        non_visual += m;
        for (int i = 0, k = 0; i < m; i++, k++) {  /* the label-0 sentences, in order */
            while (k < n && lab[k] != WIKI_LABEL_0) k++;
            char *const *sent;
            wiki_sentences(w, id, &sent);
            nv_ok &= k < n && nv[i] == sent[k];
        }
        free(nv);
    }
    EXPECT(lo == 10 && hi == 272 && total == 8255, "sentences per class %d..%d, total %d", lo, hi, total);
    EXPECT(labels[WIKI_LABEL_1] == 444 && labels[WIKI_LABEL_HALF] == 253 && labels[WIKI_LABEL_0] == 2706 &&
           labels[WIKI_LABEL_OTHER] == 4793 && labels[WIKI_LABEL_UNLABELLED] == 59,
           "labels 1/0.5/0/Other/Unlabelled: %d %d %d %d %d", labels[WIKI_LABEL_1], labels[WIKI_LABEL_HALF],
           labels[WIKI_LABEL_0], labels[WIKI_LABEL_OTHER], labels[WIKI_LABEL_UNLABELLED]);
    EXPECT(non_visual == 2706 && nv_ok, "non-visual sentences %d, the label-0 ones in order (%d)", non_visual, nv_ok);
}

/* Each split's parts have the expected sizes and cover the classes exactly once. */
static void check_split(const Wiki *w, WikiSplitKind kind, int n_train, int n_test) {
    const int *tr, *te;
    int a = wiki_split(w, kind, 0, &tr), b = wiki_split(w, kind, 1, &te);
    EXPECT(a == n_train && b == n_test, "split %d: %d/%d classes, expected %d/%d", (int)kind, a, b, n_train, n_test);
    unsigned char seen[201] = {0};
    int ok = a + b == 200;
    for (int i = 0; i < a && ok; i++) ok = tr[i] >= 1 && tr[i] <= 200 && !seen[tr[i]]++;
    for (int i = 0; i < b && ok; i++) ok = te[i] >= 1 && te[i] <= 200 && !seen[te[i]]++;
    EXPECT(ok, "split %d covers the 200 classes exactly once", (int)kind);
}

static void check_easy_is_attngan(const Wiki *w) {
    char path[1024];
    snprintf(path, sizeof path, "%s/birds/test/filenames.pickle", data_dir());
    unsigned char marks[201] = {0};
    int n = attngan_classes(path, marks, 200);
    if (n < 0) { test_skip("no %s", path); return; }
    const int *te;
    int m = wiki_split(w, WIKI_EASY, 1, &te), same = n == m;
    for (int i = 0; i < m && same; i++) same = marks[te[i]];
    EXPECT(n == 50 && same, "easy test split (%d classes) equals AttnGAN's %d test classes", m, n);
}

/* The class names equal CUB's classes.txt ("1 001.Black_footed_Albatross"). */
static void check_names(const Wiki *w) {
    char path[1024], name[256];
    snprintf(path, sizeof path, "%s/birds/CUB_200_2011/classes.txt", data_dir());
    FILE *f = fopen(path, "r");
    if (!f) { test_skip("no %s", path); return; }
    int id, n = 0, ok = 1;
    while (fscanf(f, "%d %255s", &id, name) == 2) {
        n++;
        ok &= wiki_find_class(w, name) == id;
    }
    fclose(f);
    EXPECT(n == 200 && ok, "the 200 names of classes.txt are found at their ids (%d read)", n);
}

static void check_document(const Wiki *w) {
    char *const *sent;
    int n = wiki_sentences(w, 2, &sent);
    char *doc = wiki_document(w, 2);
    size_t want = 0;
    for (int i = 0; i < n; i++) want += strlen(sent[i]) + (i > 0);
    EXPECT(doc && strlen(doc) == want && strncmp(doc, sent[0], strlen(sent[0])) == 0 && !strchr(doc, '\n'),
           "document of class 2: %zu chars, expected %zu", doc ? strlen(doc) : 0, want);
    free(doc);
    const WikiClass *c = wiki_class(w, 2);
    EXPECT(c && c->id == 2 && strcmp(c->name, "002.Laysan_Albatross") == 0, "class 2 is the Laysan Albatross");
    EXPECT(wiki_class(w, 0) == NULL && strstr(err_msg(), "no class 0"), "class 0: %s", err_msg());
    EXPECT(wiki_class(w, 201) == NULL && wiki_document(w, 201) == NULL, "class 201 is an error");
    const char **nv = (const char **)1;
    EXPECT(wiki_non_visual(w, 201, &nv) == -1 && nv == NULL, "non-visual of an unknown class");
    EXPECT(wiki_find_class(w, "999.Dodo") == -1 && strstr(err_msg(), "999.Dodo"), "unknown name: %s", err_msg());
    EXPECT(wiki_split(w, (WikiSplitKind)7, 0, &(const int *){0}) == -1, "unknown split kind");
}

static void test_real_data(void) {
    char root[1024];
    snprintf(root, sizeof root, "%s/wikipedia", data_dir());
    if (access(root, R_OK) != 0) { test_skip("no Wikipedia data at %s (set ATTNGAN_DATA)", root); return; }
    Wiki w;
    double t0 = now_s();
    int rc = wiki_open(&w, root);
    double dt = now_s() - t0;
    EXPECT(rc == 0, "wiki_open %s: %s", root, err_msg());
    if (rc) return;
    printf("wikipedia: %d classes, %d sentences (%.3f s)\n", w.n_classes, w.n_sentences, dt);
    check_counts(&w);
    check_split(&w, WIKI_EASY, 150, 50);
    check_split(&w, WIKI_HARD, 160, 40);
    check_easy_is_attngan(&w);
    check_names(&w);
    check_document(&w);
    wiki_close(&w);
}

/* ---------------------------------------------------------------- generated layouts */

static char g_base[256];
static int g_case;

static void write_file(const char *dir, const char *name, const char *content) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f, "cannot write %s", path);
    fputs(content, f);
    fclose(f);
}

/* A valid layout of 3 classes in a fresh directory; returns its path (static). */
static const char *make_layout(void) {
    static char dir[512];
    char sub[600];
    snprintf(dir, sizeof dir, "%s/case%d", g_base, g_case++);
    CHECK(mkdir(dir, 0700) == 0, "mkdir %s", dir);
    snprintf(sub, sizeof sub, "%s/articles", dir);
    CHECK(mkdir(sub, 0700) == 0, "mkdir %s", sub);
    snprintf(sub, sizeof sub, "%s/visual_labels", dir);
    CHECK(mkdir(sub, 0700) == 0, "mkdir %s", sub);
    write_file(dir, "articles/001.Alpha.txt", "the alpha is a bird .\nit has red wings .\nit lives in mexico .\n");
    write_file(dir, "visual_labels/001.Alpha.txt", "0\n1\nOther\n");
    write_file(dir, "articles/002.Beta.txt", "beta .\nbeta has a beak .");
    write_file(dir, "visual_labels/002.Beta.txt", "Unlabelled\n0.5");
    write_file(dir, "articles/003.Gamma.txt", "gamma .\r\ngamma sings .\r\n");
    write_file(dir, "visual_labels/003.Gamma.txt", "0\r\n0\r\n");
    write_file(dir, "split_easy_train.txt", "1\n3\n");
    write_file(dir, "split_easy_test.txt", "2\n");
    write_file(dir, "split_hard_train.txt", "2\n");
    write_file(dir, "split_hard_test.txt", "3\n1\n\n");
    return dir;
}

static void test_small_layout(void) {
    const char *dir = make_layout();
    Wiki w;
    int rc = wiki_open(&w, dir);
    EXPECT(rc == 0, "small layout opens: %s", err_msg());
    if (rc) return;
    EXPECT(w.n_classes == 3 && w.n_sentences == 7, "%d classes, %d sentences", w.n_classes, w.n_sentences);
    char *doc = wiki_document(&w, 1);
    EXPECT(strcmp(doc, "the alpha is a bird . it has red wings . it lives in mexico .") == 0, "document: %s", doc);
    free(doc);
    doc = wiki_document(&w, 3);
    EXPECT(strcmp(doc, "gamma . gamma sings .") == 0, "CRLF document: %s", doc);
    free(doc);
    const char **nv;
    int n = wiki_non_visual(&w, 1, &nv);
    EXPECT(n == 1 && strcmp(nv[0], "the alpha is a bird .") == 0, "non-visual of class 1: %d", n);
    free(nv);
    n = wiki_non_visual(&w, 3, &nv);
    EXPECT(n == 2, "non-visual of class 3 (CRLF labels): %d", n);
    free(nv);
    const WikiLabel *lab;
    n = wiki_labels(&w, 2, &lab);
    EXPECT(n == 2 && lab[0] == WIKI_LABEL_UNLABELLED && lab[1] == WIKI_LABEL_HALF, "labels of class 2 (no final newline)");
    const int *ids;
    n = wiki_split(&w, WIKI_HARD, 1, &ids);
    EXPECT(n == 2 && ids[0] == 3 && ids[1] == 1, "hard test split in file order, blank line skipped");
    wiki_close(&w);
}

/* Opens a layout changed by one file and expects an error containing both needles. */
static void expect_bad(const char *what, const char *file, const char *content, const char *needle1, const char *needle2) {
    const char *dir = make_layout();
    char path[1024];
    if (content) write_file(dir, file, content);
    else { snprintf(path, sizeof path, "%s/%s", dir, file); remove(path); }
    Wiki w;
    int rc = wiki_open(&w, dir);
    const char *msg = err_msg();
    EXPECT(rc == -1 && strstr(msg, needle1) && strstr(msg, needle2) && w.classes == NULL,
           "%s: rc %d, message \"%s\" should contain \"%s\" and \"%s\"", what, rc, msg, needle1, needle2);
    if (rc == 0) wiki_close(&w);
}

static void test_bad_layouts(void) {
    expect_bad("label count", "visual_labels/002.Beta.txt", "1\n", "visual_labels/002.Beta.txt", "1 labels for the 2 sentences");
    expect_bad("unknown label", "visual_labels/001.Alpha.txt", "0\nmaybe\n1\n", "001.Alpha.txt:2", "unknown label 'maybe'");
    expect_bad("missing labels", "visual_labels/003.Gamma.txt", NULL, "visual_labels/003.Gamma.txt", "cannot open");
    expect_bad("empty article", "articles/002.Beta.txt", "", "articles/002.Beta.txt", "no sentences");
    expect_bad("id gap", "articles/005.Epsilon.txt", "x .\n", "class ids must be 1..4", "005.Epsilon");
    expect_bad("bad name", "articles/Delta.txt", "x .\n", "articles/Delta.txt", "class number");
    expect_bad("id out of range", "split_easy_test.txt", "2\n7\n", "split_easy_test.txt:2", "not in 1..3");
    expect_bad("not a number", "split_hard_train.txt", "2x\n", "split_hard_train.txt:1", "not a class id");
    expect_bad("overlap", "split_easy_test.txt", "2\n3\n", "split_easy_test.txt:2", "already in the easy split's train");
    expect_bad("empty split", "split_hard_test.txt", "\n", "split_hard_test.txt", "no class ids");
    expect_bad("missing split", "split_hard_test.txt", NULL, "split_hard_test.txt", "cannot open");
    const char *dir = make_layout();
    char path[1024];
    snprintf(path, sizeof path, "%s/articles/001.Alpha.txt", dir);
    FILE *f = fopen(path, "wb");
    CHECK(f, "cannot write %s", path);
    fwrite("a .\nb\0c .\nd .\n", 1, 14, f);
    fclose(f);
    Wiki w;
    EXPECT(wiki_open(&w, dir) == -1 && strstr(err_msg(), "001.Alpha.txt:2: NUL byte"), "NUL byte: %s", err_msg());
    EXPECT(wiki_open(&w, "/nonexistent/wiki") == -1 && strstr(err_msg(), "/nonexistent/wiki/articles"),
           "missing root: %s", err_msg());
    EXPECT(wiki_open(&w, NULL) == -1 && wiki_open(NULL, "x") == -1, "NULL arguments are errors");
    wiki_close(&w);
}

int main(void) {
    test_begin("test_wikipedia");
    snprintf(g_base, sizeof g_base, "/tmp/test_wikipedia_XXXXXX");
    CHECK(mkdtemp(g_base), "mkdtemp failed");
    test_small_layout();
    test_bad_layouts();
    test_real_data();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_base);
    if (system(cmd) != 0) printf("note: could not remove %s\n", g_base);
    return test_end();
}
