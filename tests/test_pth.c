/* test_pth.c: src/io/pth.c, torch.save checkpoints read in C.
 *  - hand-made legacy and zip files (the bytes torch.save writes, pickle protocol 2): a state_dict
 *    with a strided view and a storage shared by two tensors converts to the right values; a
 *    big-endian zip is swapped; refused, each with its message: a global outside a state_dict's
 *    (os.system), a whole nn.Module, a tensor reaching past its storage, sizes and strides whose
 *    reach overflows 64 bits, a truncated file, a dict of state_dicts, a file that is no checkpoint;
 *  - every .pth that tests/parity/make_checkpoints.sh keeps (build/checkpoints or
 *    $ATTNGAN_CHECKPOINTS; legacy and zip files written by PyTorch itself) gives the same tensors,
 *    bit for bit, as tools/pth2safetensors.py's conversion next to it. */
#include "test.h"
#include "../src/io/pth.h"

#include <dirent.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

static char g_dir[64];

static const char *tmp_path(const char *name) {
    static char p[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", g_dir, name);
    return p[k];
}

static void write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(b, 1, n, f) == n && fclose(f) == 0, "cannot write %s", path);
}

typedef struct Buf { unsigned char b[4096]; size_t n; } Buf;
static void put(Buf *b, const void *s, size_t n) { CHECK(b->n + n <= sizeof b->b, "test buffer"); memcpy(b->b + b->n, s, n); b->n += n; }
#define PUTS(b, lit) put((b), (lit), sizeof(lit) - 1)

static const unsigned char MAGIC[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};

/* A storage persistent id: ('storage', torch.FloatStorage, '<key>', 'cpu', numel[, None]) */
static void pid(Buf *b, char key, int numel, int legacy) {
    PUTS(b, "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00");
    put(b, &key, 1);
    PUTS(b, "X\x03\x00\x00\x00" "cpuK");
    unsigned char n = (unsigned char)numel;
    put(b, &n, 1);
    if (legacy) PUTS(b, "N");
    PUTS(b, "tQ");
}

/* The object pickle: {'w': storage 0 as (2, 3) with strides (1, 2) from offset 1 [a view],
 * 'b': the same storage's elements 0..1, 'n': an int (skipped)} over a 7-element storage. */
static void object_pickle(Buf *b, int legacy, int size0) {
    PUTS(b, "\x80\x02}(X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n(");
    pid(b, '0', 7, legacy);
    PUTS(b, "K\x01K");
    unsigned char s0 = (unsigned char)size0;
    put(b, &s0, 1);
    PUTS(b, "K\x03\x86K\x01K\x02\x86\x89" "ccollections\nOrderedDict\n)RtRX\x01\x00\x00\x00" "bctorch._utils\n_rebuild_tensor\n(");
    pid(b, '0', 7, legacy);
    PUTS(b, "K\x00K\x02\x85K\x01\x85tRX\x01\x00\x00\x00nK\x05u.");
}

static const float DATA[7] = {0.5f, -1.25f, 2.0f, 3.5f, -4.0f, 8.25f, 1e-3f};

static void legacy_file(const char *path, int size0, int truncate) {
    Buf b = {.n = 0};
    put(&b, MAGIC, sizeof MAGIC);
    PUTS(&b, "\x80\x02M\xe9\x03.");                                        /* protocol version 1001 */
    PUTS(&b, "\x80\x02}X\x0d\x00\x00\x00little_endian\x88s.");             /* sys info */
    object_pickle(&b, 1, size0);
    PUTS(&b, "\x80\x02]X\x01\x00\x00\x00" "0a.");                             /* storage keys ['0'] */
    int64_t n = 7;
    put(&b, &n, 8);
    put(&b, DATA, sizeof DATA - (truncate ? 4 : 0));
    write_bytes(path, b.b, b.n);
}

static void zip_file(const char *path, const void *pkl, size_t pkl_len, int big) {
    remove(path);
    int err = 0;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
    CHECK(z, "zip_open %s: %d", path, err);
    static unsigned char data[sizeof DATA];
    memcpy(data, DATA, sizeof DATA);
    if (big)
        for (size_t i = 0; i < sizeof data; i += 4) {
            unsigned char t = data[i]; data[i] = data[i + 3]; data[i + 3] = t;
            t = data[i + 1]; data[i + 1] = data[i + 2]; data[i + 2] = t;
        }
    zip_source_t *s1 = zip_source_buffer(z, pkl, pkl_len, 0), *s2 = zip_source_buffer(z, data, sizeof data, 0);
    CHECK(zip_file_add(z, "archive/data.pkl", s1, 0) >= 0 && zip_file_add(z, "archive/data/0", s2, 0) >= 0, "zip_file_add");
    if (big) {
        zip_source_t *s3 = zip_source_buffer(z, "big", 3, 0);
        CHECK(zip_file_add(z, "archive/byteorder", s3, 0) >= 0, "zip_file_add byteorder");
    }
    CHECK(zip_close(z) == 0, "zip_close %s", path);
}

static void expect_values(const char *what, const char *st_path) {
    SafeTensors st;
    if (!EXPECT(st_open(&st, st_path) == 0, "%s: open the conversion: %s", what, err_msg())) return;
    const StTensor *w = st_find(&st, "w"), *b = st_find(&st, "b");
    EXPECT(st.n == 2 && w && b && !st_find(&st, "n"), "%s: tensors w and b, the int 'n' skipped (%d tensors)", what, st.n);
    if (w && b && EXPECT(w->dtype == ST_F32 && w->ndim == 2 && w->shape[0] == 2 && w->shape[1] == 3 && b->ndim == 1 && b->shape[0] == 2,
                         "%s: w (2, 3) F32, b (2)", what)) {
        float wv[6], bv[2];
        st_read_f32(&st, "w", wv, 6);
        st_read_f32(&st, "b", bv, 2);
        int ok = 1; /* w[i][j] = storage[1 + i + 2 j] */
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++) ok &= wv[i * 3 + j] == DATA[1 + i + 2 * j];
        ok &= bv[0] == DATA[0] && bv[1] == DATA[1];
        EXPECT(ok, "%s: the strided view and the shared storage gathered: w[1][2] = %g (want %g)", what, wv[5], DATA[6]);
    }
    const char *src = st_meta(&st, "source"), *fmt = st_meta(&st, "format");
    EXPECT(src && fmt && !strcmp(fmt, "pt"), "%s: metadata source and format 'pt'", what);
    st_close(&st);
}

static void expect_refused(const char *what, const char *pth, const char *msg) {
    int rc = pth_to_safetensors(pth, tmp_path("refused.safetensors"));
    EXPECT(rc != 0 && strstr(err_msg(), msg), "%s: refused with '%s' (rc %d: %s)", what, msg, rc, rc ? err_msg() : "converted");
}

static void test_hand_made(void) {
    legacy_file(tmp_path("legacy.pth"), 2, 0);
    EXPECT(pth_sniff(tmp_path("legacy.pth")) == 1, "pth_sniff: a legacy file");
    int rc = pth_to_safetensors(tmp_path("legacy.pth"), tmp_path("legacy.safetensors"));
    EXPECT(rc == 0, "legacy: %s", err_msg());
    expect_values("legacy", tmp_path("legacy.safetensors"));
    Buf o = {.n = 0};
    object_pickle(&o, 0, 2);
    zip_file(tmp_path("zip.pth"), o.b, o.n, 0);
    EXPECT(pth_sniff(tmp_path("zip.pth")) == 1, "pth_sniff: a zip file");
    rc = pth_to_safetensors(tmp_path("zip.pth"), tmp_path("zip.safetensors"));
    EXPECT(rc == 0, "zip: %s", err_msg());
    expect_values("zip", tmp_path("zip.safetensors"));
    zip_file(tmp_path("big.pth"), o.b, o.n, 1);
    rc = pth_to_safetensors(tmp_path("big.pth"), tmp_path("big.safetensors"));
    EXPECT(rc == 0, "zip, big-endian: %s", err_msg());
    expect_values("zip, big-endian", tmp_path("big.safetensors"));
    EXPECT(pth_sniff(tmp_path("zip.safetensors")) == 0, "pth_sniff: a safetensors file is not a checkpoint");

    /* refusals */
    legacy_file(tmp_path("far.pth"), 3, 0); /* w (3, 3) reaches element 1 + 2 + 4 = 7 of 7 */
    expect_refused("a tensor past its storage", tmp_path("far.pth"), "reaches element 7 of its storage '0' of 7 elements");
    legacy_file(tmp_path("short.pth"), 2, 1);
    expect_refused("a truncated legacy file", tmp_path("short.pth"), "truncated: storage '0' needs 28 bytes");
    Buf e = {.n = 0};
    PUTS(&e, "\x80\x02}X\x01\x00\x00\x00wcos\nsystem\nX\x02\x00\x00\x00ls\x85Rs.");
    zip_file(tmp_path("evil.pth"), e.b, e.n, 0);
    expect_refused("os.system in the pickle", tmp_path("evil.pth"), "global 'os.system' is not allowed");
    Buf m = {.n = 0};
    PUTS(&m, "\x80\x02(X\x06\x00\x00\x00moduleNtQ.");
    zip_file(tmp_path("module.pth"), m.b, m.n, 0);
    expect_refused("a whole nn.Module", tmp_path("module.pth"), "pickles a whole nn.Module");
    Buf d = {.n = 0};
    PUTS(&d, "\x80\x02}X\x04\x00\x00\x00netG}(X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor\n(");
    pid(&d, '0', 7, 0);
    PUTS(&d, "K\x00K\x02\x85K\x01\x85tRus.");
    zip_file(tmp_path("dicts.pth"), d.b, d.n, 0);
    expect_refused("a dict of state_dicts", tmp_path("dicts.pth"), "a dict of state_dicts ('netG' (1 tensors))");
    Buf h = {.n = 0}; /* size (2^40, 2^40), stride (2^40, 1): the reach overflows 64 bits */
    PUTS(&h, "\x80\x02}X\x01\x00\x00\x00" "wctorch._utils\n_rebuild_tensor\n(");
    pid(&h, '0', 7, 0);
    PUTS(&h, "K\x00\x8a\x06\x00\x00\x00\x00\x00\x01\x8a\x06\x00\x00\x00\x00\x00\x01\x86"
             "\x8a\x06\x00\x00\x00\x00\x00\x01K\x01\x86tRs.");
    zip_file(tmp_path("huge.pth"), h.b, h.n, 0);
    expect_refused("sizes and strides whose reach overflows", tmp_path("huge.pth"), "out of range");
    remove(tmp_path("huge.pth"));
    write_bytes(tmp_path("text.pth"), "hello, world\n", 13);
    EXPECT(pth_sniff(tmp_path("text.pth")) == 0, "pth_sniff: a text file is not a checkpoint");
    expect_refused("a text file", tmp_path("text.pth"), "not a PyTorch checkpoint");
    const char *files[] = {"legacy.pth", "legacy.safetensors", "zip.pth", "zip.safetensors", "big.pth", "big.safetensors", "far.pth",
                           "short.pth", "evil.pth", "module.pth", "dicts.pth", "text.pth", "refused.safetensors"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) remove(tmp_path(files[i]));
}

/* the fuzz seeds: files written by PyTorch 1.13 (tests/fuzz/corpus/pth): a transposed view, an
 * F16 tensor, an I64 one; two slices of one storage (offset, step) */
static void test_seeds(void) {
    const char *dir = "tests/fuzz/corpus/pth";
    const char *names[2] = {"tiny_legacy.pth", "tiny_zip.pth"};
    char pth[256];
    for (int k = 0; k < 2; k++) {
        snprintf(pth, sizeof pth, "%s/%s", dir, names[k]);
        if (access(pth, R_OK)) { test_skip("no %s (run from the repository root)", pth); return; }
        int rc = pth_to_safetensors(pth, tmp_path("seed.safetensors"));
        SafeTensors st;
        if (!EXPECT(rc == 0, "%s: %s", pth, err_msg()) || !EXPECT(st_open(&st, tmp_path("seed.safetensors")) == 0, "open")) continue;
        float w[6], h[3];
        int64_t b[2];
        const StTensor *tw = st_find(&st, "w"), *th = st_find(&st, "h"), *tb = st_find(&st, "b");
        int ok = tw && th && tb && tw->dtype == ST_F32 && tw->shape[0] == 3 && tw->shape[1] == 2 && th->dtype == ST_F32 &&
                 tb->dtype == ST_I64 && st_read_f32(&st, "w", w, 6) == 0 && st_read_f32(&st, "h", h, 3) == 0 &&
                 st_read_i64(&st, "b", b, 2) == 0;
        for (int i = 0; ok && i < 3; i++) ok &= w[2 * i] == (float)i && w[2 * i + 1] == (float)(i + 3) && h[i] == 0.0f;
        EXPECT(ok && b[0] == 1 && b[1] == 1, "%s: w = arange(6).view(2, 3).t() (3, 2), h F16 zeros as F32, b I64 ones", pth);
        st_close(&st);
    }
    snprintf(pth, sizeof pth, "%s/shared_storage_zip.pth", dir);
    int rc = pth_to_safetensors(pth, tmp_path("seed.safetensors"));
    SafeTensors st;
    if (EXPECT(rc == 0, "%s: %s", pth, err_msg()) && EXPECT(st_open(&st, tmp_path("seed.safetensors")) == 0, "open")) {
        float a[3], c[4];
        int ok = st_read_f32(&st, "a", a, 3) == 0 && st_read_f32(&st, "c", c, 4) == 0;
        EXPECT(ok && a[0] == 2 && a[2] == 4 && c[0] == 0 && c[1] == 3 && c[3] == 9, "%s: x[2:5] and x[::3] of one storage", pth);
        st_close(&st);
    }
    remove(tmp_path("seed.safetensors"));
}

/* every kept .pth of make_checkpoints against pth2safetensors.py's conversion */
static void test_torch_files(void) {
    const char *dir = getenv("ATTNGAN_CHECKPOINTS");
    if (!dir || !*dir) dir = "build/checkpoints";
    DIR *dp = opendir(dir);
    int n_files = 0;
    struct dirent *de;
    while (dp && (de = readdir(dp))) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 4, ".pth")) continue;
        char pth[1200], py[1200], mine[600];
        snprintf(pth, sizeof pth, "%s/%s", dir, de->d_name);
        snprintf(py, sizeof py, "%s/%.*s.safetensors", dir, (int)(l - 4), de->d_name);
        snprintf(mine, sizeof mine, "%s", tmp_path("mine.safetensors"));
        int strip = !strcmp(de->d_name, "netG_module.pth"); /* converted with --strip-prefix module. */
        if (access(py, R_OK)) continue;
        n_files++;
        int rc = pth_to_safetensors(pth, mine);
        if (!EXPECT(rc == 0, "%s: %s", pth, err_msg())) continue;
        SafeTensors a, b;
        if (!EXPECT(st_open(&a, mine) == 0 && st_open(&b, py) == 0, "open %s and %s", mine, py)) continue;
        int same = a.n == b.n, bad = -1;
        for (int i = 0; i < b.n && same; i++) {
            const StTensor *t = &b.tensors[i];
            char key[600];
            snprintf(key, sizeof key, "%s%s", strip ? "module." : "", t->name);
            const StTensor *u = st_find(&a, key);
            same = u && u->dtype == t->dtype && u->ndim == t->ndim && u->end - u->begin == t->end - t->begin &&
                   !memcmp(u->shape, t->shape, sizeof t->shape[0] * (size_t)t->ndim) && !memcmp(u->data, t->data, t->end - t->begin);
            if (!same) bad = i;
        }
        EXPECT(same, "%s: %d tensors, the same names, dtypes, shapes and bytes as pth2safetensors.py's %s (%d tensors)%s%s", pth, a.n, py, b.n,
               bad >= 0 ? "; first difference: " : "", bad >= 0 ? b.tensors[bad].name : "");
        printf("  %-28s %4d tensors, bit-identical to pth2safetensors.py: %s\n", de->d_name, a.n, same ? "yes" : "NO");
        st_close(&a);
        st_close(&b);
        remove(mine);
    }
    if (dp) closedir(dp);
    if (!n_files) test_skip("no .pth files beside their conversions in %s (make_checkpoints.sh --keep-pth writes them)", dir);
    else EXPECT(n_files >= 4, "at least 4 PyTorch files compared (%d)", n_files);
}

int main(void) {
    test_begin("test_pth");
    snprintf(g_dir, sizeof g_dir, "/tmp/test_pth.XXXXXX");
    if (!mkdtemp(g_dir)) FAIL("mkdtemp %s failed", g_dir);
    test_hand_made();
    test_seeds();
    test_torch_files();
    rmdir(g_dir);
    return test_end();
}
