/* test_pickle.c: the pickle reader (src/io/pickle.c) on AttnGAN's real split files, on values
 * pickled by Python in protocols 0, 2 and 4 (tests/fixtures/pickle, written by gen_pickle.py),
 * and on generated bad input: every truncation of good files, forbidden globals (os.system,
 * builtins.eval), unknown and unsupported opcodes, huge length fields, cycles, deep nesting and
 * random byte mutations. Every bad input must give a clear error and never crash. */
#include "test.h"
#include "../src/io/pickle.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[256];
static const int PROTOS[3] = {0, 2, 4};

static const char *data_root(void) { return getenv("ATTNGAN_DATA") ? getenv("ATTNGAN_DATA") : "../shared/data"; }

static const char *fixture_path(const char *name, char *buf, size_t cap) {
    const char *dir = getenv("FIXTURE_DIR") ? getenv("FIXTURE_DIR") : "tests/fixtures";
    snprintf(buf, cap, "%s/pickle/%s.pickle", dir, name);
    return buf;
}

/* Loads tests/fixtures/pickle/<name>.pickle; NULL (and a visible skip) when it is absent. */
static PickleValue *load_fixture(const char *name) {
    char path[512];
    fixture_path(name, path, sizeof path);
    if (access(path, R_OK) != 0) {
        test_skip("fixture %s not found (python3 tests/fixtures/gen_pickle.py writes it)", path);
        return NULL;
    }
    PickleValue *v = NULL;
    if (!EXPECT(pickle_load(path, &v) == 0, "%s: %s", name, err_msg())) return NULL;
    return v;
}

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = xmalloc(1 << 16);
    *n = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

/* Expects pickle_parse of the bytes to fail with a message containing each needle. */
static void expect_bad_mem(const char *what, const void *buf, size_t len, const char *needle1, const char *needle2) {
    PickleValue *v = NULL;
    int rc = pickle_parse(buf, len, what, &v);
    if (rc == 0) pickle_free(v);
    EXPECT(rc == -1 && v == NULL && strstr(err_msg(), what) && (!needle1 || strstr(err_msg(), needle1)) &&
               (!needle2 || strstr(err_msg(), needle2)),
           "%s: rc %d, message '%s' (want '%s' and '%s')", what, rc, rc ? err_msg() : "", needle1 ? needle1 : "",
           needle2 ? needle2 : "");
}

#define BAD(what, lit, n1, n2) expect_bad_mem(what, lit, sizeof(lit) - 1, n1, n2)

/* ---------------------------------------------------------------- the real files */
static void test_real_files(void) {
    static const char *const split[2] = {"train", "test"};
    static const size_t n_want[2] = {8855, 2933}, cls_want[2] = {150, 50};
    char path[512];
    snprintf(path, sizeof path, "%s/birds/train/filenames.pickle", data_root());
    if (access(path, R_OK) != 0) {
        test_skip("no AttnGAN split at %s (set ATTNGAN_DATA)", path);
        return;
    }
    for (int s = 0; s < 2; s++) {
        PickleValue *v;
        char **names = NULL;
        int64_t *cls = NULL;
        size_t n = 0, nc = 0;
        snprintf(path, sizeof path, "%s/birds/%s/filenames.pickle", data_root(), split[s]);
        if (!EXPECT(pickle_load(path, &v) == 0, "%s", err_msg())) continue;
        EXPECT(pickle_str_list(v, path, &names, &n) == 0 && n == n_want[s], "%s: %zu names (%s)", path, n, err_msg());
        pickle_free(v);
        snprintf(path, sizeof path, "%s/birds/%s/class_info.pickle", data_root(), split[s]);
        if (EXPECT(pickle_load(path, &v) == 0, "%s", err_msg())) {
            EXPECT(pickle_int_list(v, path, &cls, &nc) == 0 && nc == n_want[s], "%s: %zu classes (%s)", path, nc, err_msg());
            pickle_free(v);
        }
        int seen[201] = {0}, distinct = 0, consistent = 1;
        for (size_t i = 0; i < nc && i < n; i++) {
            if (cls[i] < 1 || cls[i] > 200) { consistent = 0; continue; }
            distinct += !seen[cls[i]]++;
            consistent &= atoi(names[i]) == cls[i]; /* "002.Laysan_Albatross/..." */
        }
        EXPECT(distinct == (int)cls_want[s] && consistent, "%s: %d distinct classes, names agree: %d", split[s], distinct, consistent);
        if (s == 0 && n)
            EXPECT(!strcmp(names[0], "002.Laysan_Albatross/Laysan_Albatross_0002_1027") && cls[0] == 2, "first train entry '%s'",
                   names[0]);
        pickle_free_str_list(names, n);
        free(cls);
    }
}

/* ---------------------------------------------------------------- Python round trips */
static void test_strs_ints(void) {
    static const char *const strs[] = {"a", "h\xc3\xa9llo", "\xe6\x97\xa5\xe6\x9c\xac", "emoji \xf0\x9f\x98\x80",
                                       "back\\slash", "new\nline", "", "quote'\"", "tail"};
    static const int64_t ints[] = {0, 1, -1, 255, 256, 65535, 65536, -2147483648LL, 2147483647LL, 2147483648LL,
                                   1LL << 40, -(1LL << 40), INT64_MAX, INT64_MIN};
    static const int64_t numpy[] = {-3, 1LL << 40, 7, -7, 200, -2, 5, 123456789};
    for (int k = 0; k < 3; k++) {
        char name[64];
        PickleValue *v;
        snprintf(name, sizeof name, "strs_p%d", PROTOS[k]);
        if ((v = load_fixture(name))) {
            char **s;
            size_t n;
            if (EXPECT(pickle_str_list(v, name, &s, &n) == 0 && n == 9, "%s: %s", name, err_msg())) {
                int bad = 0;
                for (size_t i = 0; i < n; i++) bad += strcmp(s[i], strs[i]) != 0;
                EXPECT(bad == 0, "%s: %d strings differ", name, bad);
                pickle_free_str_list(s, n);
            }
            pickle_free(v);
        }
        snprintf(name, sizeof name, "ints_p%d", PROTOS[k]);
        if ((v = load_fixture(name))) {
            int64_t *x;
            size_t n;
            if (EXPECT(pickle_int_list(v, name, &x, &n) == 0 && n == 14, "%s: %s", name, err_msg())) {
                EXPECT(memcmp(x, ints, sizeof ints) == 0, "%s: values differ", name);
                free(x);
            }
            pickle_free(v);
        }
        snprintf(name, sizeof name, "numpy_p%d", PROTOS[k]);
        if ((v = load_fixture(name))) {
            int64_t *x;
            size_t n;
            if (EXPECT(pickle_int_list(v, name, &x, &n) == 0 && n == 8, "%s: %s", name, err_msg())) {
                EXPECT(memcmp(x, numpy, sizeof numpy) == 0, "%s: values differ (first %lld)", name, (long long)x[0]);
                free(x);
            }
            pickle_free(v);
        }
    }
}

static int is_int(const PickleValue *v, int64_t i) { return v->type == PK_INT && v->i == i; }

static void test_nested(void) {
    for (int k = 0; k < 3; k++) {
        char name[64];
        snprintf(name, sizeof name, "nested_p%d", PROTOS[k]);
        PickleValue *v = load_fixture(name);
        if (!v) continue;
        if (EXPECT(v->type == PK_LIST && v->n == 14, "%s: top level", name)) {
            PickleValue **it = v->items;
            const PickleValue *l = it[0]; /* [1, [2, [3, []]]] */
            int ok = l->type == PK_LIST && l->n == 2 && is_int(l->items[0], 1) && l->items[1]->type == PK_LIST &&
                     l->items[1]->items[1]->items[1]->type == PK_LIST && l->items[1]->items[1]->items[1]->n == 0;
            EXPECT(ok, "%s: nested lists", name);
            EXPECT(it[1]->type == PK_TUPLE && it[1]->n == 2 && it[2]->type == PK_TUPLE && it[2]->n == 0 && it[3]->n == 1 &&
                       it[4]->n == 3 && it[5]->n == 4 && is_int(it[5]->items[3], 4),
                   "%s: tuples", name);
            EXPECT(it[6]->type == PK_NONE && it[7]->type == PK_BOOL && it[7]->i == 1 && it[8]->type == PK_BOOL && it[8]->i == 0,
                   "%s: None, True, False", name);
            EXPECT(it[9]->type == PK_FLOAT && it[9]->f == 1.5 && it[10]->type == PK_FLOAT && it[10]->f == -2.25e-300, "%s: floats", name);
            EXPECT(it[11]->type == PK_BYTES && it[11]->len == 7 && !memcmp(it[11]->s, "by\0tes\xff", 7), "%s: bytes", name);
            EXPECT(it[12]->type == PK_LIST && it[12]->n == 1 && is_int(it[12]->items[0], 7) && it[13]->n == 1, "%s: shared list", name);
        }
        pickle_free(v);
    }
}

/* The dict's value for a str key, or NULL. */
static const PickleValue *dict_get_str(const PickleValue *d, const char *key) {
    for (size_t i = 0; i + 1 < d->n; i += 2)
        if (d->items[i]->type == PK_STR && !strcmp(d->items[i]->s, key)) return d->items[i + 1];
    return NULL;
}

static int check_vocab_dicts(const PickleValue *ixtoword, const PickleValue *wordtoix) {
    static const char *const words[] = {"<end>", "a", "bird", "with", "caf\xc3\xa9"};
    int ok = ixtoword->type == PK_DICT && ixtoword->n == 10 && wordtoix->type == PK_DICT && wordtoix->n == 10;
    for (int i = 0; ok && i < 5; i++) {
        ok = is_int(ixtoword->items[2 * i], i) && ixtoword->items[2 * i + 1]->type == PK_STR &&
             !strcmp(ixtoword->items[2 * i + 1]->s, words[i]);
        const PickleValue *x = dict_get_str(wordtoix, words[i]);
        ok = ok && x && is_int(x, i);
    }
    return ok;
}

static void test_dicts(void) {
    for (int k = 0; k < 3; k++) {
        char a[64], b[64], c[64], d[64];
        snprintf(a, sizeof a, "ixtoword_p%d", PROTOS[k]);
        snprintf(b, sizeof b, "wordtoix_p%d", PROTOS[k]);
        snprintf(c, sizeof c, "captions_p%d", PROTOS[k]);
        snprintf(d, sizeof d, "odict_p%d", PROTOS[k]);
        PickleValue *ix = load_fixture(a), *wi = load_fixture(b), *caps = load_fixture(c), *od = load_fixture(d);
        if (ix && wi) EXPECT(check_vocab_dicts(ix, wi), "%s / %s: dict contents", a, b);
        if (caps && EXPECT(caps->type == PK_LIST && caps->n == 4, "%s: 4 items", c)) {
            const PickleValue *train = caps->items[0], *test = caps->items[1];
            int64_t *ids = NULL;
            size_t n = 0;
            EXPECT(train->type == PK_LIST && train->n == 3 && test->n == 1, "%s: caption counts", c);
            EXPECT(pickle_int_list(test->items[0], "caption", &ids, &n) == 0 && n == 4 && ids[0] == 4 && ids[3] == 1,
                   "%s: test caption ids (%s)", c, err_msg());
            free(ids);
            EXPECT(check_vocab_dicts(caps->items[2], caps->items[3]), "%s: ixtoword and wordtoix", c);
        }
        if (od) {
            const PickleValue *y = od->type == PK_DICT ? dict_get_str(od, "y") : NULL;
            EXPECT(od->type == PK_DICT && od->n == 4 && is_int(dict_get_str(od, "z"), 1) && y && y->type == PK_LIST && is_int(y->items[0], 2),
                   "%s: OrderedDict contents", d);
        }
        pickle_free(ix);
        pickle_free(wi);
        pickle_free(caps);
        pickle_free(od);
    }
}

static void test_py2(void) {
    PickleValue *v = load_fixture("py2_class_info_p0");
    if (v) {
        int64_t *x;
        size_t n;
        EXPECT(pickle_int_list(v, "class_info", &x, &n) == 0 && n == 3 && x[0] == 2 && x[1] == 456 && x[2] == 2,
               "Python 2 numpy scalars: %s", err_msg());
        free(x);
        pickle_free(v);
    }
    if ((v = load_fixture("py2_strings_p0"))) {
        EXPECT(v->n == 3 && !strcmp(v->items[0]->s, "it's") && !strcmp(v->items[1]->s, "tab\there") &&
                   v->items[2]->len == 2 && !memcmp(v->items[2]->s, "\xe9" "A", 2),
               "STRING escapes keep the raw bytes");
        pickle_free(v);
    }
    if ((v = load_fixture("py2_strings_p2"))) {
        EXPECT(v->n == 2 && !strcmp(v->items[0]->s, "abc") && !strcmp(v->items[1]->s, "de"), "SHORT_BINSTRING and BINSTRING");
        pickle_free(v);
    }
}

/* ---------------------------------------------------------------- bad input */
static void test_bad_fixtures(void) {
    char path[512];
    for (int k = 0; k < 3; k++) {
        PickleValue *v = NULL;
        char name[64];
        snprintf(name, sizeof name, "bigint_p%d", PROTOS[k]);
        fixture_path(name, path, sizeof path);
        if (access(path, R_OK) != 0) { test_skip("fixture %s not found", path); continue; }
        EXPECT(pickle_load(path, &v) == -1 && strstr(err_msg(), path) && strstr(err_msg(), "64 bits"), "2**70: '%s'", err_msg());
        snprintf(name, sizeof name, "cycle_p%d", PROTOS[k]);
        fixture_path(name, path, sizeof path);
        EXPECT(pickle_load(path, &v) == -1 && strstr(err_msg(), "contains itself"), "l.append(l): '%s'", err_msg());
    }
    PickleValue *v;
    EXPECT(pickle_load("/nonexistent/x.pickle", &v) == -1 && strstr(err_msg(), "cannot open /nonexistent/x.pickle"), "missing file: %s",
           err_msg());
}

/* Every proper prefix of a good pickle is an error that says "truncated" (and the file name). */
static void test_truncations(void) {
    static const char *const names[] = {"captions_p0", "numpy_p2", "numpy_p4", "nested_p2", "strs_p0", "py2_class_info_p0"};
    for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
        char path[512];
        size_t n = 0;
        unsigned char *buf = read_all(fixture_path(names[f], path, sizeof path), &n);
        if (!buf) { test_skip("fixture %s not found", path); continue; }
        int bad = 0;
        size_t first_bad = 0;
        for (size_t cut = 0; cut < n; cut++) {
            PickleValue *v = NULL;
            int rc = pickle_parse(buf, cut, names[f], &v);
            if (rc == 0) pickle_free(v);
            if (rc != -1 || !strstr(err_msg(), "truncated") || !strstr(err_msg(), names[f])) {
                if (!bad++) first_bad = cut;
            }
        }
        EXPECT(bad == 0, "%s: %d of %zu truncations not reported as truncated (first at %zu: '%s')", names[f], bad, n, first_bad,
               err_msg());
        free(buf);
    }
    /* and through a file: the message names the path and the offset */
    char path[300];
    snprintf(path, sizeof path, "%s/cut.pickle", g_dir);
    FILE *f = fopen(path, "wb");
    fwrite("(lp0\nVabc", 1, 9, f);
    fclose(f);
    PickleValue *v;
    EXPECT(pickle_load(path, &v) == -1 && strstr(err_msg(), path) && strstr(err_msg(), "byte 5"), "truncated file: '%s'", err_msg());
}

static void test_forbidden(void) {
    BAD("os.system GLOBAL", "cos\nsystem\n(S'echo pwned'\ntR.", "'os.system' is not allowed", "byte 0");
    BAD("os.system protocol 2", "\x80\x02" "cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85R.", "os.system", "byte 2");
    BAD("builtins.eval STACK_GLOBAL",
        "\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x08" "builtins\x94\x8c\x04" "eval\x94\x93\x94\x8c\x03" "1+1\x94\x85\x94R\x94.",
        "'builtins.eval' is not allowed", "STACK_GLOBAL");
    BAD("posix.system", "\x80\x02" "cposix\nsystem\n.", "posix.system", NULL);
    BAD("numpy, other name", "cnumpy\nload\n.", "'numpy.load' is not allowed", NULL);
    BAD("INST", "(S'ls'\nios\nsystem\n.", "INST", "not supported");
    BAD("OBJ", "(cnumpy\ndtype\no.", "OBJ", "not supported");
    BAD("PERSID", "Pfoo\n.", "PERSID", NULL);
    BAD("EXT1", "\x80\x02\x82\x01.", "EXT1", NULL);
    BAD("NEWOBJ_EX", "\x80\x04\x92.", "NEWOBJ_EX", NULL);
    BAD("set", "\x80\x04\x8f.", "EMPTY_SET", NULL);
    BAD("unknown opcode", "\x80\x02\xff.", "unknown opcode 0xff", "byte 2");
    BAD("unknown opcode 'z'", "]z.", "unknown opcode 0x7a", "byte 1");
    BAD("REDUCE on a list", "](tR.", "REDUCE calls a list", NULL);
    BAD("BUILD on a list", "]}b.", "BUILD on a list", NULL);
    BAD("dtype left in the result", "\x80\x02" "cnumpy\ndtype\nX\x02\x00\x00\x00i8\x89\x88\x87R.", "numpy.dtype", "left in the result");
    BAD("global left in the result", "ccollections\nOrderedDict\n.", "collections.OrderedDict", "left in the result");
    BAD("object dtype", "\x80\x02" "cnumpy\ndtype\nX\x02\x00\x00\x00O8\x89\x88\x87R.", "'O8' is not supported", NULL);
    BAD("scalar with 3 bytes for i8",
        "\x80\x02" "cnumpy.core.multiarray\nscalar\ncnumpy\ndtype\nX\x02\x00\x00\x00i8\x89\x88\x87RC\x03\x01\x02\x03\x86R.",
        "needs 8 bytes, got 3", NULL);
    BAD("_codecs.encode to utf-16", "\x80\x02" "c_codecs\nencode\nX\x01\x00\x00\x00" "aX\x06\x00\x00\x00" "utf-16\x86R.", "utf-16", NULL);
}

static void test_limits(void) {
    BAD("huge BINUNICODE8", "\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\x7f.", "truncated", "exceeds");
    BAD("huge BINBYTES8", "\x80\x04\x8e\x00\x00\x00\x00\x00\x00\x00\x80.", "truncated", "exceeds");
    BAD("huge BINUNICODE", "\x80\x02X\xff\xff\xff\xff" "abc.", "length 4294967295", "exceeds");
    BAD("negative BINSTRING", "\x80\x02T\xff\xff\xff\xff" "abc.", "negative length", NULL);
    BAD("huge LONG4", "\x80\x02\x8b\xff\xff\xff\x7f\x01.", "exceeds", NULL);
    BAD("huge FRAME", "\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xff].", "frame", NULL);
    BAD("huge memo index", "\x80\x02]r\xff\xff\xff\xff.", "memo index 4294967295", NULL);
    BAD("huge PUT", "(lp99999999999999999999\n.", "not a decimal integer", NULL);
    BAD("GET of an unset memo key", "\x80\x02]h\x05.", "memo key 5 was never stored", NULL);
    BAD("invalid UTF-8", "\x80\x02X\x02\x00\x00\x00\xc3\x28.", "not valid UTF-8", NULL);
    BAD("bad \\u escape", "Vab\\u12\n.", "bad \\u", NULL);
    BAD("unpaired surrogate", "V\\ud800x\n.", "surrogate", NULL);
    BAD("bad STRING quote", "S'abc\n.", "quoted", NULL);
    BAD("bad \\x escape", "S'\\xZZ'\n.", "escape", NULL);
    BAD("bad INT", "I12a\n.", "not a decimal integer", NULL);
    BAD("INT overflow", "I99999999999999999999\n.", "64 bits", NULL);
    BAD("bad FLOAT", "F1.5x\n.", "not a float", NULL);
    BAD("APPEND on an empty stack", "a.", "stack is empty", NULL);
    BAD("APPEND to a dict", "}J\x01\x00\x00\x00" "a.", "APPEND to a dict", NULL);
    BAD("APPENDS without MARK", "]e.", "no MARK", NULL);
    BAD("SETITEM on a list", "]K\x01K\x02" "s.", "setting items of a list", NULL);
    BAD("odd DICT", "(K\x01" "d.", "odd number", NULL);
    BAD("list as a dict key", "}]K\x01" "s.", "a list", "dict key");
    BAD("STOP on an empty stack", ".", "stack is empty", NULL);
    BAD("bytes after STOP", "N.junk", "4 bytes follow STOP", NULL);
    BAD("empty input", "", "truncated", "byte 0");
    BAD("protocol 9", "\x80\x09N.", "protocol 9", NULL);
    /* 300 nested lists: "]]]...]" then 299 APPENDs */
    size_t depth = 300, n = 0;
    char *deep = xmalloc(2 * depth + 2);
    for (size_t i = 0; i < depth; i++) deep[n++] = ']';
    for (size_t i = 1; i < depth; i++) deep[n++] = 'a';
    deep[n++] = '.';
    expect_bad_mem("deep nesting", deep, n, "nested more than", NULL);
    free(deep);
    /* but 200 levels are fine */
    depth = 200;
    n = 0;
    deep = xmalloc(2 * depth + 2);
    for (size_t i = 0; i < depth; i++) deep[n++] = ']';
    for (size_t i = 1; i < depth; i++) deep[n++] = 'a';
    deep[n++] = '.';
    PickleValue *v;
    EXPECT(pickle_parse((unsigned char *)deep, n, "200 levels", &v) == 0, "200 nested lists: %s", err_msg());
    pickle_free(v);
    free(deep);
}

static void test_views(void) {
    PickleValue *v;
    if (!EXPECT(pickle_parse((const unsigned char *)"(lp0\nI1\naF2.5\na.", 16, "mixed", &v) == 0, "mixed list: %s", err_msg())) return;
    char **s;
    int64_t *x;
    size_t n;
    EXPECT(pickle_str_list(v, "names", &s, &n) == -1 && strstr(err_msg(), "names: item 0 is an int, expected str"), "'%s'", err_msg());
    EXPECT(pickle_int_list(v, "ids", &x, &n) == -1 && strstr(err_msg(), "ids: item 1 is a float, expected int"), "'%s'", err_msg());
    EXPECT(pickle_int_list(v->items[0], "one", &x, &n) == -1 && strstr(err_msg(), "one: the value is an int, expected a list"), "'%s'",
           err_msg());
    pickle_free(v);
    EXPECT(pickle_parse((const unsigned char *)"(lp0\nVa\\u0000b\na.", 17, "nul", &v) == 0, "NUL in a str: %s", err_msg());
    if (v) {
        EXPECT(v->items[0]->len == 3 && pickle_str_list(v, "nul", &s, &n) == -1 && strstr(err_msg(), "NUL"), "'%s'", err_msg());
        pickle_free(v);
    }
}

/* Random byte changes of good files: any outcome but a crash (meaningful under ASan). */
static void test_mutations(void) {
    static const char *const names[] = {"captions_p0", "captions_p2", "numpy_p0", "numpy_p2", "numpy_p4", "nested_p4", "odict_p2"};
    uint64_t state = 12345;
    int parsed = 0, total = 0;
    for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
        char path[512];
        size_t n = 0;
        unsigned char *buf = read_all(fixture_path(names[f], path, sizeof path), &n);
        if (!buf) { test_skip("fixture %s not found", path); continue; }
        unsigned char *m = xmalloc(n);
        for (int trial = 0; trial < 1500; trial++) {
            memcpy(m, buf, n);
            int changes = 1 + trial % 3;
            for (int c = 0; c < changes; c++) {
                state = state * 6364136223846793005ULL + 1442695040888963407ULL;
                m[(state >> 33) % n] = (unsigned char)(state >> 20);
            }
            PickleValue *v = NULL;
            if (pickle_parse(m, n, "mutant", &v) == 0) { parsed++; pickle_free(v); }
            else if (!strstr(err_msg(), "mutant")) total = -100000;
            total++;
        }
        free(m);
        free(buf);
    }
    EXPECT(total > 0, "mutated files: every error names the input");
    printf("mutations: %d tried, %d still parse\n", total, parsed);
}

int main(void) {
    test_begin("test_pickle");
    snprintf(g_dir, sizeof g_dir, "%s/attngan_pk_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    CHECK(mkdtemp(g_dir), "mkdtemp");
    test_real_files();
    test_strs_ints();
    test_nested();
    test_dicts();
    test_py2();
    test_bad_fixtures();
    test_truncations();
    test_forbidden();
    test_limits();
    test_views();
    test_mutations();
    char cmd[320];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", g_dir);
    return test_end();
}
