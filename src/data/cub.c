/* cub.c: reads AttnGAN's data/birds layout of CUB-200-2011 (see cub.h): the CUB metadata tables,
 * AttnGAN's train/test split pickles, 10 captions per image tokenized like datasets.py
 * load_captions, and the vocabulary (build_dictionary, or captions.pickle when present). Every
 * error names the file and the line (or pickle item) and says why. */
#include "cub.h"
#include "../core/error.h"
#include "../io/files.h"
#include "../io/pickle.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* the largest CUB table or caption file read (the biggest table, images.txt, is under 1 MB) */
#define CUB_MAX_TEXT_FILE ((size_t)64 << 20)

#define CUB_MAX_IDS 10000000  /* image and class ids */
#define MAX_FIELDS 8

/* ---------------------------------------------------------------- small helpers */
static char *path_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int line_err(const char *path, int line, const char *fmt, ...) ATTR_PRINTF(3, 4);
static int line_err(const char *path, int line, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set("%s line %d: %s", path, line, msg);
}

/* Whole-string positive integer (at most CUB_MAX_IDS). */
static int parse_id(const char *s, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > CUB_MAX_IDS) return -1;
    *out = (int)v;
    return 0;
}

static int parse_float(const char *s, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* ---------------------------------------------------------------- line-oriented tables */
typedef struct Table {
    char *path, *buf, *p;
    int line;
} Table;

static int table_open(Table *t, const char *dir, const char *name) {
    size_t len;
    memset(t, 0, sizeof *t);
    t->path = path_join(dir, name);
    if (!(t->buf = read_file_bytes(t->path, CUB_MAX_TEXT_FILE, &len))) return -1;
    if (memchr(t->buf, 0, len)) return err_set("%s: contains a NUL byte (not a text table)", t->path);
    t->p = t->buf;
    return 0;
}

static void table_close(Table *t) {
    free(t->path);
    free(t->buf);
    memset(t, 0, sizeof *t);
}

/* The next non-blank line split into whitespace-separated fields; 0 at the end of the file. */
static int table_next(Table *t, char **f, int *nf) {
    while (*t->p) {
        char *line = t->p, *nl = strchr(line, '\n');
        t->p = nl ? nl + 1 : line + strlen(line);
        if (nl) *nl = 0;
        t->line++;
        *nf = 0;
        char *save = NULL;
        for (char *tok = strtok_r(line, " \t\r", &save); tok; tok = strtok_r(NULL, " \t\r", &save))
            if (*nf < MAX_FIELDS) f[(*nf)++] = tok;
            else { *nf = MAX_FIELDS + 1; break; }
        if (*nf) return 1;
    }
    return 0;
}

static int count_lines(const char *s) {
    int n = 1;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* Records the line of id (1..n) in line_of; errors on a range or duplicate problem. */
static int claim_id(const Table *t, const char *what, int id, int n, int *line_of) {
    if (id > n) return line_err(t->path, t->line, "%s id %d is out of range 1..%d", what, id, n);
    if (line_of[id - 1]) return line_err(t->path, t->line, "%s id %d was already given on line %d", what, id, line_of[id - 1]);
    line_of[id - 1] = t->line;
    return 0;
}

static int all_claimed(const Table *t, const char *what, int n, const int *line_of) {
    for (int i = 0; i < n; i++)
        if (!line_of[i]) return err_set("%s: no line for %s id %d", t->path, what, i + 1);
    return 0;
}

/* ---------------------------------------------------------------- key -> image index */
typedef struct KeyIndex {
    int *slots;  /* image index, or -1 */
    size_t mask;
} KeyIndex;

static uint64_t hash_key(const char *s) {
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static size_t key_slot(const KeyIndex *ix, char *const *keys, const char *key) {
    size_t i = (size_t)hash_key(key) & ix->mask;
    while (ix->slots[i] >= 0 && strcmp(keys[ix->slots[i]], key)) i = (i + 1) & ix->mask;
    return i;
}

static int key_find(const KeyIndex *ix, char *const *keys, const char *key) { return ix->slots[key_slot(ix, keys, key)]; }

/* ---------------------------------------------------------------- CUB metadata */
typedef struct Meta {
    char *dir;            /* root/CUB_200_2011 */
    int n;                /* images */
    int cap;              /* allocated keys */
    char **keys;          /* images.txt paths without ".jpg", by image id - 1 */
    int *key_line;
    int *class_of;        /* image_class_labels.txt */
    float (*bbox)[4];     /* bounding_boxes.txt */
    unsigned char *tight; /* tight_crops.txt (optional): the photo is its bounding box's crop */
    int n_tight;
    KeyIndex index;
} Meta;

static void meta_free(Meta *m) {
    if (m->keys)
        for (int i = 0; i < m->cap; i++) free(m->keys[i]);
    free(m->keys);
    free(m->key_line);
    free(m->class_of);
    free(m->bbox);
    free(m->tight);
    free(m->index.slots);
    free(m->dir);
    memset(m, 0, sizeof *m);
}

static int check_rel_path(const Table *t, const char *p) {
    if (p[0] == '/' || !strncmp(p, "../", 3) || strstr(p, "/../") || !strcmp(p, ".."))
        return line_err(t->path, t->line, "image path '%s' must be relative and stay inside images/", p);
    size_t n = strlen(p);
    if (n < 5 || strcmp(p + n - 4, ".jpg")) return line_err(t->path, t->line, "image path '%s' does not end in .jpg", p);
    return 0;
}

/* classes.txt: "id name" for ids 1..n. */
static int read_classes(Cub *cub, const char *dir) {
    Table t;
    char *f[MAX_FIELDS + 1];
    int nf, id, rc = table_open(&t, dir, "classes.txt");
    int cap = rc ? 0 : count_lines(t.buf);
    int *line_of = xcalloc((size_t)cap + 1, sizeof *line_of);
    char **names = xcalloc((size_t)cap + 1, sizeof *names);
    int n = 0;
    while (!rc && table_next(&t, f, &nf)) {
        if (nf != 2) rc = line_err(t.path, t.line, "expected 2 fields 'class_id name', got %d", nf);
        else if (parse_id(f[0], &id)) rc = line_err(t.path, t.line, "'%s' is not a positive class id", f[0]);
        else if (!(rc = claim_id(&t, "class", id, cap, line_of))) names[id - 1] = xstrdup(f[1]);
        n += !rc;
    }
    if (!rc && n == 0) rc = err_set("%s: no classes", t.path);
    if (!rc) rc = all_claimed(&t, "class", n, line_of);
    if (rc) {
        for (int i = 0; i < cap; i++) free(names[i]);
        free(names);
    } else {
        cub->class_names = names;
        cub->n_class_names = n;
    }
    free(line_of);
    table_close(&t);
    return rc;
}

/* images.txt: "id relative/path.jpg" for ids 1..n; builds the key index. */
static int read_images(Meta *m) {
    Table t;
    char *f[MAX_FIELDS + 1];
    int nf, id, rc = table_open(&t, m->dir, "images.txt");
    int cap = rc ? 0 : count_lines(t.buf);
    m->keys = xcalloc((size_t)cap + 1, sizeof *m->keys);
    m->key_line = xcalloc((size_t)cap + 1, sizeof *m->key_line);
    m->cap = cap;
    int n = 0;
    while (!rc && table_next(&t, f, &nf)) {
        if (nf != 2) rc = line_err(t.path, t.line, "expected 2 fields 'image_id path', got %d", nf);
        else if (parse_id(f[0], &id)) rc = line_err(t.path, t.line, "'%s' is not a positive image id", f[0]);
        else if (!(rc = check_rel_path(&t, f[1])) && !(rc = claim_id(&t, "image", id, cap, m->key_line))) {
            m->keys[id - 1] = xstrdup(f[1]);
            m->keys[id - 1][strlen(f[1]) - 4] = 0;
        }
        n += !rc;
    }
    if (!rc && n == 0) rc = err_set("%s: no images", t.path);
    if (!rc) rc = all_claimed(&t, "image", n, m->key_line);
    if (!rc) {
        size_t cap2 = 16;
        while (cap2 < 2 * (size_t)n) cap2 *= 2;
        m->index.slots = xmalloc(cap2 * sizeof *m->index.slots);
        m->index.mask = cap2 - 1;
        for (size_t i = 0; i < cap2; i++) m->index.slots[i] = -1;
        for (int i = 0; i < n && !rc; i++) {
            size_t s = key_slot(&m->index, m->keys, m->keys[i]);
            if (m->index.slots[s] >= 0)
                rc = line_err(t.path, m->key_line[i], "image '%s.jpg' is also listed on line %d", m->keys[i],
                              m->key_line[m->index.slots[s]]);
            m->index.slots[s] = i;
        }
    }
    m->n = n;
    table_close(&t);
    return rc;
}

/* image_class_labels.txt: "image_id class_id". */
static int read_labels(Meta *m, int n_classes) {
    Table t;
    char *f[MAX_FIELDS + 1];
    int nf, id, cls, rc = table_open(&t, m->dir, "image_class_labels.txt");
    int *line_of = xcalloc((size_t)m->n, sizeof *line_of);
    m->class_of = xcalloc((size_t)m->n, sizeof *m->class_of);
    while (!rc && table_next(&t, f, &nf)) {
        if (nf != 2) rc = line_err(t.path, t.line, "expected 2 fields 'image_id class_id', got %d", nf);
        else if (parse_id(f[0], &id)) rc = line_err(t.path, t.line, "'%s' is not a positive image id", f[0]);
        else if (parse_id(f[1], &cls) || cls > n_classes)
            rc = line_err(t.path, t.line, "'%s' is not a class id of classes.txt (1..%d)", f[1], n_classes);
        else if (!(rc = claim_id(&t, "image", id, m->n, line_of))) m->class_of[id - 1] = cls;
    }
    if (!rc) rc = all_claimed(&t, "image", m->n, line_of);
    free(line_of);
    table_close(&t);
    return rc;
}

/* bounding_boxes.txt: "image_id x y width height" (sizes positive; the image bounds are checked
 * when the photo is decoded). */
static int read_bboxes(Meta *m) {
    Table t;
    char *f[MAX_FIELDS + 1];
    int nf, id, rc = table_open(&t, m->dir, "bounding_boxes.txt");
    int *line_of = xcalloc((size_t)m->n, sizeof *line_of);
    m->bbox = xcalloc((size_t)m->n, sizeof *m->bbox);
    while (!rc && table_next(&t, f, &nf)) {
        float b[4];
        if (nf != 5) { rc = line_err(t.path, t.line, "expected 5 fields 'image_id x y width height', got %d", nf); break; }
        if (parse_id(f[0], &id)) { rc = line_err(t.path, t.line, "'%s' is not a positive image id", f[0]); break; }
        for (int k = 0; k < 4 && !rc; k++)
            if (parse_float(f[k + 1], &b[k])) rc = line_err(t.path, t.line, "field %d '%s' is not a number", k + 2, f[k + 1]);
        if (!rc && (b[2] <= 0 || b[3] <= 0))
            rc = line_err(t.path, t.line, "the box of image %d has a non-positive size (width %g, height %g)", id, b[2], b[3]);
        if (!rc && !(rc = claim_id(&t, "image", id, m->n, line_of))) memcpy(m->bbox[id - 1], b, sizeof b);
    }
    if (!rc) rc = all_claimed(&t, "image", m->n, line_of);
    free(line_of);
    table_close(&t);
    return rc;
}

/* tight_crops.txt (optional): "image_id relative/path.jpg" for photos that hold only their
 * bounding box's crop (their box is the whole photo); the path must be images.txt's for that id. */
static int read_tight(Meta *m) {
    m->tight = xcalloc((size_t)m->n + 1, 1);
    char *path = path_join(m->dir, "tight_crops.txt");
    struct stat st;
    int exists = stat(path, &st) == 0;
    free(path);
    if (!exists) return 0;
    Table t;
    char *f[MAX_FIELDS + 1];
    int nf, id, rc = table_open(&t, m->dir, "tight_crops.txt");
    while (!rc && table_next(&t, f, &nf)) {
        size_t n = strlen(f[1 < nf ? 1 : 0]);
        if (nf != 2) rc = line_err(t.path, t.line, "expected 2 fields 'image_id path', got %d", nf);
        else if (parse_id(f[0], &id) || id > m->n) rc = line_err(t.path, t.line, "'%s' is not an image id of images.txt (1..%d)", f[0], m->n);
        else if (n < 5 || strncmp(f[1], m->keys[id - 1], n - 4) || m->keys[id - 1][n - 4] || strcmp(f[1] + n - 4, ".jpg"))
            rc = line_err(t.path, t.line, "image %d is '%s.jpg' in images.txt, not '%s'", id, m->keys[id - 1], f[1]);
        else if (m->tight[id - 1]) rc = line_err(t.path, t.line, "image %d is listed twice", id);
        else {
            m->tight[id - 1] = 1;
            m->n_tight++;
        }
    }
    table_close(&t);
    return rc;
}

/* ---------------------------------------------------------------- the split pickles */
static int load_pickle_list(const char *root, const char *split, const char *file, int want_str, char ***strs, int64_t **ints,
                            size_t *n) {
    char rel[64];
    snprintf(rel, sizeof rel, "%s/%s", split, file);
    char *path = path_join(root, rel);
    PickleValue *v = NULL;
    int rc = pickle_load(path, &v);
    if (!rc) rc = want_str ? pickle_str_list(v, path, strs, n) : pickle_int_list(v, path, ints, n);
    pickle_free(v);
    free(path);
    return rc;
}

static int cmp_int(const void *a, const void *b) { return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b); }

/* Fills a split from filenames.pickle and class_info.pickle (AttnGAN's split). */
static int read_split(Cub *cub, const Meta *m, const char *split, CubSplit *s) {
    char **names = NULL;
    int64_t *cls = NULL;
    size_t n = 0, nc = 0;
    int rc = load_pickle_list(cub->root, split, "filenames.pickle", 1, &names, NULL, &n);
    if (!rc) rc = load_pickle_list(cub->root, split, "class_info.pickle", 0, NULL, &cls, &nc);
    if (!rc && nc != n)
        rc = err_set("%s/%s/class_info.pickle: %zu classes, but filenames.pickle has %zu images", cub->root, split, nc, n);
    if (!rc && n > CUB_MAX_IDS) rc = err_set("%s/%s/filenames.pickle: %zu images is too many", cub->root, split, n);
    s->images = xcalloc(n ? n : 1, sizeof *s->images);
    s->n = 0;
    char *img_dir = path_join(m->dir, "images");
    for (size_t i = 0; i < n && !rc; i++) {
        CubImage *im = &s->images[i];
        int idx = key_find(&m->index, m->keys, names[i]);
        if (idx < 0) {
            rc = err_set("%s/%s/filenames.pickle: item %zu '%s' is not in %s/images.txt", cub->root, split, i, names[i], m->dir);
            break;
        }
        if (cls[i] != m->class_of[idx]) {
            rc = err_set("%s/%s/class_info.pickle: item %zu is class %lld, but image_class_labels.txt gives '%s' class %d", cub->root,
                         split, i, (long long)cls[i], names[i], m->class_of[idx]);
            break;
        }
        im->key = names[i];
        names[i] = NULL;
        im->class_id = m->class_of[idx];
        memcpy(im->bbox, m->bbox[idx], sizeof im->bbox);
        im->tight = m->tight[idx];
        s->n_tight += im->tight;
        char *jpg = xmalloc(strlen(img_dir) + strlen(im->key) + 8);
        sprintf(jpg, "%s/%s.jpg", img_dir, im->key);
        struct stat st;
        im->present = stat(jpg, &st) == 0 && S_ISREG(st.st_mode);
        free(jpg);
        s->n_present += im->present;
        s->n++;
    }
    free(img_dir);
    if (!rc) {
        int *ids = xmalloc((size_t)(s->n ? s->n : 1) * sizeof *ids), k = 0;
        for (int i = 0; i < s->n; i++) ids[i] = s->images[i].class_id;
        qsort(ids, (size_t)s->n, sizeof *ids, cmp_int);
        for (int i = 0; i < s->n; i++)
            if (i == 0 || ids[i] != ids[i - 1]) ids[k++] = ids[i];
        s->classes = ids;
        s->n_classes = k;
    }
    pickle_free_str_list(names, n);
    free(cls);
    return rc;
}

/* ---------------------------------------------------------------- captions from text/ */
typedef struct IdBuf {
    int64_t *ids;
    size_t n, cap;
} IdBuf;

static void idbuf_push(IdBuf *b, int64_t id) {
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 256;
        b->ids = xrealloc(b->ids, b->cap * sizeof *b->ids);
    }
    b->ids[b->n++] = id;
}

/* Points im->caps into one block holding the ids of all its captions. */
static void set_captions(CubImage *im, const IdBuf *b, const int *len) {
    int64_t *block = xmalloc((b->n ? b->n : 1) * sizeof *block);
    memcpy(block, b->ids, b->n * sizeof *block);
    size_t off = 0;
    for (int k = 0; k < CUB_CAPTIONS_PER_IMAGE; k++) {
        im->caps[k] = block + off;
        im->cap_len[k] = len[k];
        off += (size_t)len[k];
    }
}

/* AttnGAN load_captions for one image: the first 10 lines that have words, tokenized; each word
 * added to the vocabulary in order of appearance. */
static int read_captions(Cub *cub, CubImage *im, IdBuf *b) {
    char *rel = xmalloc(strlen(im->key) + 10);
    sprintf(rel, "text/%s.txt", im->key);
    char *path = path_join(cub->root, rel), *buf = NULL;
    free(rel);
    size_t len;
    buf = read_file_bytes(path, CUB_MAX_TEXT_FILE, &len);
    int rc = buf ? 0 : -1, cnt = 0, lens[CUB_CAPTIONS_PER_IMAGE] = {0};
    for (size_t i = 0; !rc && i < len; i++)
        if (!buf[i]) buf[i] = ' '; /* a NUL separates words like any other non-word character */
    b->n = 0;
    for (char *p = buf; !rc && p && cnt < CUB_CAPTIONS_PER_IMAGE;) {
        char *nl = strchr(p, '\n'), *next = nl ? nl + 1 : NULL;
        if (nl) *nl = 0;
        char **tok = NULL;
        int nt = *p ? text_tokenize(p, &tok) : 0;
        if (nt < 0) rc = err_set("%s: %s", path, err_msg());
        for (int k = 0; k < nt && !rc; k++) {
            int id = vocab_add(&cub->vocab, tok[k]);
            if (id < 0) rc = err_set("%s: caption %d: %s", path, cnt + 1, err_msg());
            else idbuf_push(b, id);
        }
        text_free_tokens(tok, nt > 0 ? nt : 0);
        if (nt > 0) lens[cnt++] = nt;
        p = next;
    }
    if (!rc && cnt < CUB_CAPTIONS_PER_IMAGE)
        rc = err_set("%s: %d captions, AttnGAN needs %d (non-empty lines with words)", path, cnt, CUB_CAPTIONS_PER_IMAGE);
    if (!rc) set_captions(im, b, lens);
    free(buf);
    free(path);
    return rc;
}

static int captions_from_text(Cub *cub) {
    IdBuf b = {0};
    int rc = 0;
    vocab_init(&cub->vocab);
    CubSplit *splits[2] = {&cub->train, &cub->test};
    for (int s = 0; s < 2 && !rc; s++)
        for (int i = 0; i < splits[s]->n && !rc; i++) rc = read_captions(cub, &splits[s]->images[i], &b);
    free(b.ids);
    return rc;
}

/* ---------------------------------------------------------------- captions.pickle */
/* ixtoword (dict int -> str, ids 0..n-1, 0 = "<end>") into vocab; wordtoix must agree. */
static int vocab_from_dicts(Vocab *vocab, const char *path, const PickleValue *ixtoword, const PickleValue *wordtoix) {
    if (ixtoword->type != PK_DICT || wordtoix->type != PK_DICT)
        return err_set("%s: items 2 and 3 must be the dicts ixtoword and wordtoix", path);
    size_t n = ixtoword->n / 2;
    if (n == 0 || n > CUB_MAX_IDS) return err_set("%s: ixtoword has %zu words", path, n);
    const char **words = xcalloc(n, sizeof *words);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const PickleValue *k = ixtoword->items[2 * i], *w = ixtoword->items[2 * i + 1];
        if (k->type != PK_INT || k->i < 0 || (size_t)k->i >= n || w->type != PK_STR || strlen(w->s) != w->len)
            rc = err_set("%s: ixtoword entry %zu is not (id in 0..%zu, word)", path, i, n - 1);
        else if (words[k->i]) rc = err_set("%s: ixtoword has id %lld twice", path, (long long)k->i);
        else words[k->i] = w->s;
    }
    if (!rc && strcmp(words[0], "<end>")) rc = err_set("%s: ixtoword[0] is '%s', expected '<end>'", path, words[0]);
    vocab_init(vocab);
    for (size_t i = 1; i < n && !rc; i++) {
        int id = vocab_add(vocab, words[i]);
        if (id < 0) rc = err_set("%s: ixtoword[%zu]: %s", path, i, err_msg());
        else if ((size_t)id != i) rc = err_set("%s: ixtoword has the word '%s' at %d and %zu", path, words[i], id, i);
    }
    if (!rc && wordtoix->n / 2 != n) rc = err_set("%s: wordtoix has %zu words, ixtoword %zu", path, wordtoix->n / 2, n);
    for (size_t i = 0; i + 1 < wordtoix->n && !rc; i += 2) {
        const PickleValue *w = wordtoix->items[i], *k = wordtoix->items[i + 1];
        if (w->type != PK_STR || strlen(w->s) != w->len || k->type != PK_INT || vocab_find(vocab, w->s) != k->i)
            rc = err_set("%s: wordtoix entry %zu disagrees with ixtoword", path, i / 2);
    }
    free(words);
    return rc;
}

/* One split's caption lists (10 per image, in filenames order) into its images. */
static int split_from_lists(Cub *cub, const char *path, const char *which, const PickleValue *caps, CubSplit *s) {
    if (caps->type != PK_LIST || caps->n != (size_t)s->n * CUB_CAPTIONS_PER_IMAGE)
        return err_set("%s: %s captions: expected a list of %d (10 per image), got %zu", path, which, s->n * CUB_CAPTIONS_PER_IMAGE,
                       caps->type == PK_LIST ? caps->n : 0);
    IdBuf b = {0};
    int rc = 0;
    for (int i = 0; i < s->n && !rc; i++) {
        int lens[CUB_CAPTIONS_PER_IMAGE];
        b.n = 0;
        for (int k = 0; k < CUB_CAPTIONS_PER_IMAGE && !rc; k++) {
            size_t c = (size_t)i * CUB_CAPTIONS_PER_IMAGE + (size_t)k, n;
            int64_t *ids = NULL;
            char what[160];
            snprintf(what, sizeof what, "%s: %s caption %zu", path, which, c);
            if ((rc = pickle_int_list(caps->items[c], what, &ids, &n))) break;
            for (size_t j = 0; j < n && !rc; j++)
                if (ids[j] < 0 || ids[j] >= cub->vocab.n) rc = err_set("%s: word id %lld is not in the vocabulary", what, (long long)ids[j]);
                else idbuf_push(&b, ids[j]);
            lens[k] = (int)n;
            free(ids);
        }
        if (!rc) set_captions(&s->images[i], &b, lens);
    }
    free(b.ids);
    return rc;
}

/* captions.pickle: [train_captions, test_captions, ixtoword, wordtoix]. */
static int captions_from_pickle(Cub *cub, const char *path) {
    PickleValue *v = NULL;
    int rc = pickle_load(path, &v);
    if (!rc && ((v->type != PK_LIST && v->type != PK_TUPLE) || v->n < 4))
        rc = err_set("%s: expected [train_captions, test_captions, ixtoword, wordtoix]", path);
    if (!rc) rc = vocab_from_dicts(&cub->vocab, path, v->items[2], v->items[3]);
    if (!rc) rc = split_from_lists(cub, path, "train", v->items[0], &cub->train);
    if (!rc) rc = split_from_lists(cub, path, "test", v->items[1], &cub->test);
    pickle_free(v);
    return rc;
}

int cub_vocab_from_pickle(const char *path, Vocab *vocab) {
    PickleValue *v = NULL;
    memset(vocab, 0, sizeof *vocab);
    int rc = pickle_load(path, &v);
    if (!rc && ((v->type != PK_LIST && v->type != PK_TUPLE) || v->n < 4))
        rc = err_set("%s: expected AttnGAN's captions.pickle, [train_captions, test_captions, ixtoword, wordtoix]", path);
    if (!rc) rc = vocab_from_dicts(vocab, path, v->items[2], v->items[3]);
    if (rc && vocab->words) vocab_free(vocab);
    pickle_free(v);
    return rc;
}

/* ---------------------------------------------------------------- open / close */
int cub_open(Cub *cub, const char *root) {
    memset(cub, 0, sizeof *cub);
    cub->root = xstrdup(root);
    Meta m = {0};
    m.dir = path_join(root, "CUB_200_2011");
    int rc = read_classes(cub, m.dir);
    if (!rc) rc = read_images(&m);
    if (!rc) rc = read_labels(&m, cub->n_class_names);
    if (!rc) rc = read_bboxes(&m);
    if (!rc) rc = read_tight(&m);
    if (!rc) rc = read_split(cub, &m, "train", &cub->train);
    if (!rc) rc = read_split(cub, &m, "test", &cub->test);
    meta_free(&m);
    if (!rc) {
        char *cp = path_join(root, "captions.pickle");
        struct stat st;
        cub->vocab_from_pickle = stat(cp, &st) == 0;
        rc = cub->vocab_from_pickle ? captions_from_pickle(cub, cp) : captions_from_text(cub);
        free(cp);
    }
    if (rc) cub_close(cub);
    return rc;
}

static void split_free(CubSplit *s) {
    for (int i = 0; s->images && i < s->n; i++) {
        free(s->images[i].key);
        free(s->images[i].caps[0]);
    }
    free(s->images);
    free(s->classes);
    memset(s, 0, sizeof *s);
}

void cub_close(Cub *cub) {
    if (!cub) return;
    split_free(&cub->train);
    split_free(&cub->test);
    if (cub->vocab.index) vocab_free(&cub->vocab);
    for (int i = 0; cub->class_names && i < cub->n_class_names; i++) free(cub->class_names[i]);
    free(cub->class_names);
    free(cub->root);
    memset(cub, 0, sizeof *cub);
}

const char *cub_image_path(const Cub *cub, const CubImage *im, char *buf, int len) {
    int n = snprintf(buf, (size_t)len, "%s/CUB_200_2011/images/%s.jpg", cub->root, im->key);
    if (n < 0 || n >= len) {
        err_set("image path of '%s' does not fit in %d bytes", im->key, len);
        return NULL;
    }
    return buf;
}
