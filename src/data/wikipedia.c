/* wikipedia.c: reads the class-level Wikipedia articles of the CUB classes, their per-sentence
 * visual-relevance labels and the easy/hard zero-shot class splits; see wikipedia.h. */
#include "wikipedia.h"

#include "../core/error.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WIKI_MAX_CLASSES 100000

/* ---------------------------------------------------------------- lines of a file */

typedef struct Lines {
    char **items;
    int n, cap;
} Lines;

static void lines_push(Lines *l, char *s) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->items = xrealloc(l->items, (size_t)l->cap * sizeof(char *));
    }
    l->items[l->n++] = s;
}

static void lines_free(Lines *l) {
    for (int i = 0; i < l->n; i++) free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = l->cap = 0;
}

/* Every line of path (without "\n" or "\r\n"; a last line without newline counts). */
static int read_lines(const char *path, Lines *out) {
    *out = (Lines){0};
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("%s: cannot open", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
        if (len > 0 && line[len - 1] == '\r') line[--len] = '\0';
        if ((ssize_t)strlen(line) != len) rc = err_set("%s:%d: NUL byte in line", path, out->n + 1);
        else lines_push(out, xstrdup(line));
    }
    free(line);
    fclose(f);
    if (rc < 0) lines_free(out);
    return rc;
}

/* ---------------------------------------------------------------- one class */

const char *wiki_label_name(WikiLabel label) {
    static const char *names[WIKI_N_LABELS] = {"0", "0.5", "1", "Other", "Unlabelled"};
    return (unsigned)label < WIKI_N_LABELS ? names[label] : "?";
}

static int parse_label(const char *s, WikiLabel *out) {
    for (int k = 0; k < WIKI_N_LABELS; k++)
        if (strcmp(s, wiki_label_name((WikiLabel)k)) == 0) { *out = (WikiLabel)k; return 0; }
    return err_set("unknown label '%s' (expected 1, 0.5, 0, Other or Unlabelled)", s);
}

/* The class id of an article name "001.Black_footed_Albatross", or -1. */
static int parse_class_id(const char *name) {
    int id = 0, digits = 0;
    for (; name[digits] >= '0' && name[digits] <= '9' && digits < 6; digits++) id = id * 10 + (name[digits] - '0');
    return digits == 0 || name[digits] != '.' || id < 1 ? -1 : id;
}

static int load_labels(WikiClass *c, const char *path, const Lines *sent) {
    Lines lab;
    if (read_lines(path, &lab) < 0) return -1;
    int rc = 0;
    if (lab.n != sent->n)
        rc = err_set("%s: %d labels for the %d sentences of articles/%s.txt", path, lab.n, sent->n, c->name);
    c->labels = xmalloc((size_t)(sent->n > 0 ? sent->n : 1) * sizeof(WikiLabel));
    for (int i = 0; i < lab.n && rc == 0; i++)
        if (parse_label(lab.items[i], &c->labels[i]) < 0) rc = err_prefix("%s:%d", path, i + 1);
    lines_free(&lab);
    return rc;
}

/* Reads articles/<name>.txt and visual_labels/<name>.txt into c. */
static int load_class(WikiClass *c, const char *root, const char *name, int id) {
    c->id = id;
    c->name = xstrdup(name);
    size_t len = strlen(root) + strlen(name) + 32;
    char *path = xmalloc(len);
    snprintf(path, len, "%s/articles/%s.txt", root, name);
    Lines sent;
    int rc = read_lines(path, &sent);
    if (rc == 0 && sent.n == 0) rc = err_set("%s: no sentences", path);
    if (rc == 0) {
        snprintf(path, len, "%s/visual_labels/%s.txt", root, name);
        rc = load_labels(c, path, &sent);
    }
    c->sentences = sent.items;
    c->n = sent.n;
    free(path);
    return rc;
}

static void free_class(WikiClass *c) {
    for (int i = 0; i < c->n; i++) free(c->sentences[i]);
    free(c->sentences);
    free(c->labels);
    free(c->name);
    *c = (WikiClass){0};
}

/* ---------------------------------------------------------------- the class list */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The article names (without ".txt"), sorted. */
static int list_articles(const char *root, Lines *names) {
    *names = (Lines){0};
    size_t len = strlen(root) + 16;
    char *dir_path = xmalloc(len);
    snprintf(dir_path, len, "%s/articles", root);
    DIR *dir = opendir(dir_path);
    if (!dir) { err_set("%s: cannot open the articles directory", dir_path); free(dir_path); return -1; }
    struct dirent *e;
    while ((e = readdir(dir))) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.' || n <= 4 || strcmp(e->d_name + n - 4, ".txt") != 0) continue;
        char *name = xstrdup(e->d_name);
        name[n - 4] = '\0';
        lines_push(names, name);
    }
    closedir(dir);
    int rc = names->n ? 0 : err_set("%s: no <class>.txt articles", dir_path);
    free(dir_path);
    if (names->n > 1) qsort(names->items, (size_t)names->n, sizeof(char *), cmp_str);
    return rc;
}

/* Checks that the sorted names have the ids 1..n. */
static int check_ids(const Lines *names, const char *root) {
    for (int i = 0; i < names->n; i++) {
        int id = parse_class_id(names->items[i]);
        if (id < 0)
            return err_set("%s/articles/%s.txt: the name does not start with a class number (\"001.Name.txt\")",
                           root, names->items[i]);
        if (id != i + 1)
            return err_set("%s/articles: class ids must be 1..%d, but file %d is %s.txt", root, names->n, i + 1, names->items[i]);
    }
    return 0;
}

static int load_classes(Wiki *w, const char *root) {
    Lines names;
    if (list_articles(root, &names) < 0) return -1;
    int rc = names.n > WIKI_MAX_CLASSES ? err_set("%s/articles: too many classes (%d)", root, names.n) : check_ids(&names, root);
    if (rc == 0) {
        w->classes = xcalloc((size_t)names.n, sizeof(WikiClass));
        w->n_classes = names.n;
    }
    for (int i = 0; i < w->n_classes && rc == 0; i++) {
        rc = load_class(&w->classes[i], root, names.items[i], i + 1);
        w->n_sentences += w->classes[i].n;
    }
    lines_free(&names);
    return rc;
}

/* ---------------------------------------------------------------- splits */

/* A class id on line `lineno` of path: digits only, in 1..n_classes. */
static int parse_split_id(const char *s, const char *path, int lineno, int n_classes) {
    long id = 0;
    int digits = 0;
    for (; s[digits] >= '0' && s[digits] <= '9' && digits < 9; digits++) id = id * 10 + (s[digits] - '0');
    if (digits == 0 || s[digits] != '\0') return err_set("%s:%d: '%s' is not a class id", path, lineno, s);
    if (id < 1 || id > n_classes) return err_set("%s:%d: class id %ld is not in 1..%d", path, lineno, id, n_classes);
    return (int)id;
}

/* Reads split_<kind>_<part>.txt into *ids; seen[id] marks the ids (1 train, 2 test). */
static int read_split(const Wiki *w, const char *root, const char *kind, const char *part, int mark,
                      unsigned char *seen, int **ids, int *n) {
    size_t len = strlen(root) + 64;
    char *path = xmalloc(len);
    snprintf(path, len, "%s/split_%s_%s.txt", root, kind, part);
    Lines lines;
    int rc = read_lines(path, &lines);
    *ids = xmalloc((size_t)(lines.n > 0 ? lines.n : 1) * sizeof(int));
    *n = 0;
    for (int i = 0; i < lines.n && rc == 0; i++) {
        if (lines.items[i][0] == '\0') continue;  /* blank lines */
        int id = parse_split_id(lines.items[i], path, i + 1, w->n_classes);
        if (id < 0) { rc = -1; break; }
        if (seen[id]) {
            rc = err_set("%s:%d: class %d is already in the %s split's %s classes", path, i + 1, id, kind,
                         seen[id] == 1 ? "train" : "test");
            break;
        }
        seen[id] = (unsigned char)mark;
        (*ids)[(*n)++] = id;
    }
    if (rc == 0 && *n == 0) rc = err_set("%s: no class ids", path);
    lines_free(&lines);
    free(path);
    return rc;
}

static int load_split(const Wiki *w, const char *root, const char *kind, WikiSplit *s) {
    unsigned char *seen = xcalloc((size_t)w->n_classes + 1, 1);
    int rc = read_split(w, root, kind, "train", 1, seen, &s->train, &s->n_train);
    if (rc == 0) rc = read_split(w, root, kind, "test", 2, seen, &s->test, &s->n_test);
    free(seen);
    return rc;
}

/* ---------------------------------------------------------------- open, close, accessors */

int wiki_open(Wiki *w, const char *root) {
    if (!w) return err_set("wiki_open: no Wiki");
    *w = (Wiki){0};
    if (!root) return err_set("wiki_open: no root directory");
    w->root = xstrdup(root);
    int rc = load_classes(w, root);
    if (rc == 0) rc = load_split(w, root, "easy", &w->easy);
    if (rc == 0) rc = load_split(w, root, "hard", &w->hard);
    if (rc < 0) wiki_close(w);
    return rc;
}

void wiki_close(Wiki *w) {
    if (!w) return;
    for (int i = 0; i < w->n_classes; i++) free_class(&w->classes[i]);
    free(w->classes);
    free(w->root);
    free(w->easy.train);
    free(w->easy.test);
    free(w->hard.train);
    free(w->hard.test);
    *w = (Wiki){0};
}

const WikiClass *wiki_class(const Wiki *w, int class_id) {
    if (!w || !w->classes) { err_set("wikipedia: not opened"); return NULL; }
    if (class_id < 1 || class_id > w->n_classes) {
        err_set("wikipedia: no class %d (ids are 1..%d)", class_id, w->n_classes);
        return NULL;
    }
    return &w->classes[class_id - 1];
}

int wiki_find_class(const Wiki *w, const char *name) {
    if (!w || !name) return err_set("wiki_find_class: no Wiki or name");
    for (int i = 0; i < w->n_classes; i++)
        if (strcmp(w->classes[i].name, name) == 0) return i + 1;
    return err_set("wikipedia: no class named '%s'", name);
}

int wiki_sentences(const Wiki *w, int class_id, char *const **sentences) {
    const WikiClass *c = wiki_class(w, class_id);
    if (!c) return -1;
    *sentences = c->sentences;
    return c->n;
}

int wiki_labels(const Wiki *w, int class_id, const WikiLabel **labels) {
    const WikiClass *c = wiki_class(w, class_id);
    if (!c) return -1;
    *labels = c->labels;
    return c->n;
}

char *wiki_document(const Wiki *w, int class_id) {
    const WikiClass *c = wiki_class(w, class_id);
    if (!c) return NULL;
    size_t len = 1;
    for (int i = 0; i < c->n; i++) len += strlen(c->sentences[i]) + 1;
    char *doc = xmalloc(len), *p = doc;
    for (int i = 0; i < c->n; i++) {
        if (i) *p++ = ' ';
        size_t n = strlen(c->sentences[i]);
        memcpy(p, c->sentences[i], n);
        p += n;
    }
    *p = '\0';
    return doc;
}

int wiki_non_visual(const Wiki *w, int class_id, const char ***out) {
    const WikiClass *c = wiki_class(w, class_id);
    if (!out) return err_set("wiki_non_visual: no output pointer");
    *out = NULL;
    if (!c) return -1;
    const char **list = xmalloc((size_t)c->n * sizeof(char *));
    int n = 0;
    for (int i = 0; i < c->n; i++)
        if (c->labels[i] == WIKI_LABEL_0) list[n++] = c->sentences[i];
    *out = list;
    return n;
}

int wiki_split(const Wiki *w, WikiSplitKind kind, int test, const int **ids) {
    if (!w || !w->classes || !ids) return err_set("wiki_split: not opened");
    if (kind != WIKI_EASY && kind != WIKI_HARD) return err_set("wiki_split: unknown split kind %d", (int)kind);
    const WikiSplit *s = kind == WIKI_EASY ? &w->easy : &w->hard;
    *ids = test ? s->test : s->train;
    return test ? s->n_test : s->n_train;
}
