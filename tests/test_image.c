/* test_image.c: src/io/image.c against Pillow 9.4 (fixtures by tests/fixtures/gen_image.py):
 * JPEG/PNG decoding bit for bit, BILINEAR resize bit for bit, crop/flip against numpy, the
 * torchvision float conversion bit for bit, PNG round trips, generated bad files (each a clear
 * error naming the file), and two CUB photos when the data set is present. */
#include "test.h"

#include "../src/io/image.h"

#include <string.h>
#include <unistd.h>

static char g_dir[256];

static const char *fixture_dir(void) { return getenv("FIXTURE_DIR") ? getenv("FIXTURE_DIR") : "tests/fixtures"; }

static uint64_t fnv1a64(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* gen_image.py's pattern(): 8x8 checkerboard of hashed noise and a wrapping ramp. */
static void pattern(int w, int h, uint32_t seed, Image *img) {
    img->w = w;
    img->h = h;
    img->data = xmalloc((size_t)w * h * 3);
    for (uint32_t y = 0; y < (uint32_t)h; y++)
        for (uint32_t x = 0; x < (uint32_t)w; x++)
            for (uint32_t c = 0; c < 3; c++) {
                uint32_t hs = (x * 73856093u) ^ (y * 19349663u) ^ ((c + 1) * 83492791u + seed);
                uint32_t noise = (hs * 2654435761u) >> 24, ramp = (x * 3 + y * 2 + c * 85) & 255;
                img->data[((size_t)y * w + x) * 3 + c] = (uint8_t)((((x >> 3) + (y >> 3)) & 1) ? noise : ramp);
            }
}

/* Compares `rows` rows of got (every `step`-th row) with an (n, w, 3) U8 fixture; reports the
 * number of differing bytes and the largest difference. */
static int expect_rows(const char *what, const Image *got, const StTensor *t, int step) {
    if (!EXPECT(t && t->dtype == ST_U8 && t->ndim == 3 && t->shape[2] == 3, "%s: fixture tensor missing or not (h, w, 3) U8", what)) return 0;
    int rows = (int)t->shape[0], w = (int)t->shape[1];
    if (!EXPECT(got->w == w && (got->h + step - 1) / step == rows, "%s: size %dx%d, PIL has %dx%d", what, got->w, got->h, w, rows * step))
        return 0;
    long bad = 0;
    int worst = 0;
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < w * 3; i++) {
            int d = abs((int)got->data[(size_t)r * step * w * 3 + i] - (int)t->data[(size_t)r * w * 3 + i]);
            bad += d != 0;
            if (d > worst) worst = d;
        }
    return EXPECT(bad == 0, "%s: %ld of %d bytes differ from PIL, max difference %d", what, bad, rows * w * 3, worst);
}

static int expect_pixels(SafeTensors *st, const char *key, const Image *got) {
    return expect_rows(key, got, st_find(st, key), 1);
}

static int load_fixture(const char *name, Image *img) {
    char path[512];
    snprintf(path, sizeof path, "%s/image_%s", fixture_dir(), name);
    return EXPECT(image_load(path, img) == 0, "load %s: %s", path, err_msg());
}

/* ---------------------------------------------------------------- decoding */

static void test_decode(SafeTensors *st) {
    static const char *names[] = {"rgb.jpg", "progressive.jpg", "gray.jpg", "cmyk.jpg", "alpha.png", "palette.png",
                                  "la.png", "rgb16.png", "gray2.png", "interlaced.png"};
    char key[64];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        Image img;
        if (!load_fixture(names[i], &img)) continue;
        snprintf(key, sizeof key, "decode.%s", names[i]);
        expect_pixels(st, key, &img);
        image_free(&img);
    }
    /* 16-bit gray: PIL clamps mode "I" at 255, we keep the high byte (see image.c) */
    Image g;
    if (load_fixture("gray16.png", &g)) {
        expect_pixels(st, "decode.gray16.png.highbyte", &g);
        const StTensor *t = st_find(st, "decode.gray16.png");
        long differ = 0;
        for (int64_t i = 0; t && i < t->numel && i < (int64_t)g.w * g.h * 3; i++) differ += g.data[i] != t->data[i];
        printf("note: 16-bit gray PNG: %ld of %lld bytes differ from PIL's clamped mode-I conversion (by design)\n", differ,
               (long long)(t ? t->numel : 0));
        image_free(&g);
    }
    /* decoding from memory gives the same pixels, and the name appears in errors */
    char path[512];
    snprintf(path, sizeof path, "%s/image_rgb.jpg", fixture_dir());
    FILE *f = fopen(path, "rb");
    if (!EXPECT(f, "open %s", path)) return;
    uint8_t buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    Image m;
    if (EXPECT(image_decode(buf, n, "mem.jpg", &m) == 0, "image_decode: %s", err_msg())) {
        expect_pixels(st, "decode.rgb.jpg", &m);
        image_free(&m);
    }
    EXPECT(image_decode(buf, n / 2, "half.jpg", &m) == -1 && strstr(err_msg(), "half.jpg") && m.data == NULL,
           "truncated buffer: %s", err_msg());
}

/* ---------------------------------------------------------------- geometry */

static void test_crop_flip(SafeTensors *st) {
    Image img, c;
    if (!load_fixture("rgb.jpg", &img)) return;
    if (EXPECT(image_crop(&img, 10, 5, 90, 60, &c) == 0, "crop: %s", err_msg())) {
        expect_pixels(st, "crop.rgb.jpg", &c);
        image_flip_horizontal(&c);
        expect_pixels(st, "flip.rgb.jpg", &c);
        image_free(&c);
    }
    EXPECT(image_crop(&img, 0, 0, img.w, img.h, &c) == 0 && memcmp(c.data, img.data, (size_t)img.w * img.h * 3) == 0,
           "whole-image crop is a copy");
    image_free(&c);
    int boxes[][4] = {{-1, 0, 10, 10}, {0, 0, img.w + 1, 10}, {5, 5, 5, 9}, {0, 9, 10, 3}, {0, 0, 10, img.h + 1}};
    for (int i = 0; i < 5; i++) {
        int *b = boxes[i];
        EXPECT(image_crop(&img, b[0], b[1], b[2], b[3], &c) == -1 && strstr(err_msg(), "crop box") && !c.data,
               "bad crop box (%d, %d, %d, %d): %s", b[0], b[1], b[2], b[3], err_msg());
    }
    /* flipping an odd width twice is the identity; one column flips onto itself */
    Image p, q;
    pattern(7, 3, 1, &p);
    image_crop(&p, 0, 0, 7, 3, &q);
    image_flip_horizontal(&q);
    EXPECT(memcmp(q.data + 9, p.data + 9, 3) == 0 && memcmp(q.data, p.data + 18, 3) == 0, "flip moves columns");
    image_flip_horizontal(&q);
    EXPECT(memcmp(q.data, p.data, 63) == 0, "double flip is the identity");
    image_free(&p);
    image_free(&q);
    image_free(&img);
}

static void resize_case(SafeTensors *st, const char *name) {
    char key[128];
    snprintf(key, sizeof key, "resize.%s.case", name);
    if (!EXPECT(fixture_has(st, key), "fixture has no %s", key)) return;
    int64_t n, *c = fixture_i64(st, key, &n);
    Image src, out;
    pattern((int)c[0], (int)c[1], (uint32_t)c[2], &src);
    image_resize_bilinear(&src, (int)c[3], (int)c[4], &out);
    uint64_t h = fnv1a64(out.data, (size_t)out.w * out.h * 3);
    EXPECT(out.w == c[3] && out.h == c[4] && h == (uint64_t)c[5], "resize %lldx%lld -> %lldx%lld: bytes differ from PIL (hash)",
           (long long)c[0], (long long)c[1], (long long)c[3], (long long)c[4]);
    snprintf(key, sizeof key, "resize.%s", name);
    if (fixture_has(st, key)) {
        expect_pixels(st, key, &out);
    } else {
        snprintf(key, sizeof key, "resize.%s.rows16", name);
        expect_rows(key, &out, st_find(st, key), 16);
    }
    image_free(&src);
    image_free(&out);
    free(c);
}

static void test_resize(SafeTensors *st) {
    static const char *cases[] = {"400x300_to_resize304", "400x300_to_304x228", "400x300_to_400x150", "400x300_to_123x300",
                                  "304_to_256", "256_to_64", "256_to_128", "37x23_to_91x60", "91_to_7", "7x5_to_1x1",
                                  "1x1_to_3x2"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) resize_case(st, cases[i]);
    Image src, out;
    pattern(33, 21, 9, &src);
    image_resize_bilinear(&src, 33, 21, &out);
    EXPECT(out.data != src.data && memcmp(out.data, src.data, 33 * 21 * 3) == 0, "same-size resize is a copy");
    image_free(&src);
    image_free(&out);
}

/* ---------------------------------------------------------------- float conversions */

static void test_chw(SafeTensors *st) {
    const StTensor *in = st_find(st, "chw.in");
    if (!EXPECT(in && in->numel == 16 * 16 * 3, "fixture chw.in")) return;
    Image img = {16, 16, xmalloc(16 * 16 * 3)};
    memcpy(img.data, in->data, 16 * 16 * 3);
    float got[3 * 256], want[3 * 256];
    image_to_chw(&img, got);
    st_read_f32(st, "chw.out", want, 3 * 256);
    int bad = 0;
    for (int i = 0; i < 3 * 256; i++) bad += memcmp(&got[i], &want[i], sizeof(float)) != 0;
    EXPECT(bad == 0, "to_chw: %d of 768 floats differ in their bits from torchvision's ToTensor + Normalize", bad);

    /* from_chw inverts to_chw exactly (all 256 levels appear in the input) */
    Image back;
    image_from_chw(got, 16, 16, &back);
    EXPECT(memcmp(back.data, img.data, 16 * 16 * 3) == 0, "from_chw(to_chw(x)) == x");
    image_free(&back);
    image_from_chw_trunc(got, 16, 16, &back);
    int off = 0;
    for (int i = 0; i < 16 * 16 * 3; i++) off += abs((int)back.data[i] - (int)img.data[i]) > 1;
    EXPECT(off == 0, "from_chw_trunc(to_chw(x)) within 1 of x (%d off)", off);
    image_free(&back);
    image_free(&img);

    /* AttnGAN's ((x + 1) * 127.5).astype(uint8) against numpy */
    float x[3 * 9 * 7];
    st_read_f32(st, "save.in", x, 3 * 9 * 7);
    image_from_chw_trunc(x, 7, 9, &back);
    expect_rows("save.trunc", &back, st_find(st, "save.trunc"), 1);
    image_free(&back);

    /* rounding and clamping of out-of-range and non-finite values */
    float odd[3] = {-3.0f, 2.0f, NAN};
    float probe[3 * 4] = {odd[0], odd[1], odd[2], 0.0f, 0, 0, 0, 0, 0, 0, 0, 0};
    image_from_chw(probe, 4, 1, &back);
    EXPECT(back.data[0] == 0 && back.data[3] == 255 && back.data[6] == 0 && back.data[9] == 128,
           "from_chw clamps (-3 -> %d, 2 -> %d, NaN -> %d) and rounds half up (0 -> %d)", back.data[0], back.data[3], back.data[6],
           back.data[9]);
    image_free(&back);
}

/* ---------------------------------------------------------------- PNG writing */

static void test_png_round_trip(void) {
    Image img, dec;
    if (!load_fixture("rgb.jpg", &img)) return;
    uint8_t *buf;
    size_t len;
    if (EXPECT(image_encode_png(&img, &buf, &len) == 0, "encode: %s", err_msg())) {
        EXPECT(len > 8 && memcmp(buf, "\x89PNG", 4) == 0, "encoded PNG signature");
        if (EXPECT(image_decode(buf, len, "encoded", &dec) == 0, "decode encoded: %s", err_msg())) {
            EXPECT(dec.w == img.w && dec.h == img.h && memcmp(dec.data, img.data, (size_t)img.w * img.h * 3) == 0,
                   "PNG memory round trip");
            image_free(&dec);
        }
        free(buf);
    }
    char path[320];
    snprintf(path, sizeof path, "%s/out.png", g_dir);
    if (EXPECT(image_save_png(path, &img) == 0, "save: %s", err_msg()) && EXPECT(image_load(path, &dec) == 0, "reload: %s", err_msg())) {
        EXPECT(dec.w == img.w && dec.h == img.h && memcmp(dec.data, img.data, (size_t)img.w * img.h * 3) == 0, "PNG file round trip");
        image_free(&dec);
    }
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q tmp", g_dir);
    EXPECT(system(cmd) != 0, "no temp file left behind after save");
    snprintf(path, sizeof path, "%s/no/such/dir/out.png", g_dir);
    EXPECT(image_save_png(path, &img) == -1 && strstr(err_msg(), path), "save into a missing directory: %s", err_msg());
    image_free(&img);
}

/* JPEG out (attngan data pack): a round trip through the encoder and the decoder stays close (a
 * lossy codec: mean absolute error per channel value), higher quality is closer and larger, and
 * bad arguments are errors. */
static void test_jpeg_round_trip(void) {
    Image img, dec;
    if (!load_fixture("rgb.jpg", &img)) return;
    double err[2] = {0, 0};
    size_t sizes[2] = {0, 0};
    int qs[2] = {50, 95};
    for (int k = 0; k < 2; k++) {
        uint8_t *buf;
        size_t len;
        if (!EXPECT(image_encode_jpeg(&img, qs[k], &buf, &len) == 0, "encode JPEG q%d: %s", qs[k], err_msg())) continue;
        EXPECT(len > 4 && buf[0] == 0xFF && buf[1] == 0xD8, "encoded JPEG signature");
        sizes[k] = len;
        if (EXPECT(image_decode(buf, len, "encoded", &dec) == 0, "decode encoded JPEG: %s", err_msg())) {
            EXPECT(dec.w == img.w && dec.h == img.h, "JPEG round trip keeps the size");
            double s = 0;
            for (size_t i = 0; i < (size_t)img.w * img.h * 3; i++) s += fabs((double)dec.data[i] - img.data[i]);
            err[k] = s / ((double)img.w * img.h * 3);
            image_free(&dec);
        }
        free(buf);
    }
    printf("  JPEG round trip: q50 %.2f, q95 %.2f mean abs error; %zu and %zu bytes\n", err[0], err[1], sizes[0], sizes[1]);
    EXPECT(err[1] < 3.0 && err[1] < err[0] && sizes[1] > sizes[0], "JPEG: q95 is closer (%.2f) than q50 (%.2f) and larger", err[1],
           err[0]);
    uint8_t *buf;
    size_t len;
    EXPECT(image_encode_jpeg(&img, 0, &buf, &len) == -1 && strstr(err_msg(), "quality 0"), "quality 0 is an error: %s", err_msg());
    char path[320];
    snprintf(path, sizeof path, "%s/no/such/dir/out.jpg", g_dir);
    EXPECT(image_save_jpeg(path, &img, 90) == -1 && strstr(err_msg(), path), "save into a missing directory: %s", err_msg());
    image_free(&img);
}

/* ---------------------------------------------------------------- bad files */

static size_t slurp(const char *path, uint8_t *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    CHECK(f, "cannot open %s", path);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void spit(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f, "cannot write %s", path);
    if (n) fwrite(buf, 1, n, f);
    fclose(f);
}

/* Writes buf as <g_dir>/<name> and expects image_load to fail naming the file and `needle`. */
static void expect_bad(const char *what, const char *name, const void *buf, size_t n, const char *needle) {
    char path[320];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    if (buf) spit(path, buf, n);
    Image img;
    int rc = image_load(path, &img);
    if (rc == 0) image_free(&img);
    EXPECT(rc == -1 && img.data == NULL && strstr(err_msg(), path) && strstr(err_msg(), needle), "%s: rc %d, message '%s' (want '%s')",
           what, rc, rc ? err_msg() : "", needle);
}

/* Offset just after the JPEG's start-of-scan header. */
static size_t jpeg_scan_start(const uint8_t *b, size_t n) {
    for (size_t i = 2; i + 4 < n; i++)
        if (b[i] == 0xff && b[i + 1] == 0xda) return i + 2 + ((size_t)b[i + 2] << 8 | b[i + 3]);
    return 0;
}

static void test_bad_files(void) {
    static uint8_t jpg[1 << 16], png[1 << 16], tmp[1 << 16];
    char path[512];
    snprintf(path, sizeof path, "%s/image_rgb.jpg", fixture_dir());
    size_t nj = slurp(path, jpg, sizeof jpg);
    snprintf(path, sizeof path, "%s/image_alpha.png", fixture_dir());
    size_t np = slurp(path, png, sizeof png);
    size_t scan = jpeg_scan_start(jpg, nj);
    if (!EXPECT(scan > 0 && scan < nj, "found the JPEG scan")) return;

    /* random bytes after the headers, no end marker */
    memcpy(tmp, jpg, scan);
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    for (size_t i = scan; i < nj; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        tmp[i] = (uint8_t)(s >> 32);
    }
    expect_bad("corrupt JPEG", "corrupt.jpg", tmp, nj, "JPEG");
    expect_bad("truncated JPEG (60%)", "truncated.jpg", jpg, nj * 6 / 10, "Premature end of JPEG file");
    expect_bad("truncated JPEG (missing end marker only)", "noeoi.jpg", jpg, nj - 2, "Premature end");
    expect_bad("JPEG cut inside the headers", "header.jpg", jpg, 40, "JPEG");
    expect_bad("truncated PNG", "truncated.png", png, np * 6 / 10, "truncated");
    expect_bad("PNG without IEND", "noiend.png", png, np - 12, "truncated");
    memcpy(tmp, png, np);
    tmp[np / 2] ^= 0x55; /* inside IDAT: CRC mismatch */
    expect_bad("PNG with a flipped byte in IDAT", "crc.png", tmp, np, "corrupt");
    expect_bad("empty file", "empty.jpg", "", 0, "empty file");
    const char *text = "this is not an image\n";
    expect_bad("text named .jpg", "text.jpg", text, strlen(text), "not a JPEG or PNG");
    expect_bad("missing file", "missing.png", NULL, 0, "cannot open");
    Image img;
    EXPECT(image_decode(png, 0, "zero", &img) == -1 && strstr(err_msg(), "zero: empty"), "empty buffer: %s", err_msg());
}

/* ---------------------------------------------------------------- CUB photos */

static void real_photo(SafeTensors *st, const char *key, const char *rel) {
    char path[1024];
    const char *data = getenv("ATTNGAN_DATA") ? getenv("ATTNGAN_DATA") : "../shared/data";
    snprintf(path, sizeof path, "%s/birds/CUB_200_2011/images/%s", data, rel);
    if (access(path, R_OK) != 0) {
        test_skip("%s absent (CUB photos not here)", path);
        return;
    }
    Image img;
    if (!EXPECT(image_load(path, &img) == 0, "load %s: %s", path, err_msg())) return;
    int gray = 1;
    for (size_t i = 0; i < (size_t)img.w * img.h; i++) gray &= img.data[3 * i] == img.data[3 * i + 1] && img.data[3 * i] == img.data[3 * i + 2];
    char k[64];
    snprintf(k, sizeof k, "real.%s", key);
    if (!fixture_has(st, k)) {
        test_skip("fixture has no %s (data set absent when gen_image.py ran)", k);
        image_free(&img);
        return;
    }
    int64_t n, *v = fixture_i64(st, k, &n);
    EXPECT(img.w == v[0] && img.h == v[1] && fnv1a64(img.data, (size_t)img.w * img.h * 3) == (uint64_t)v[2],
           "%s: %dx%d decode differs from PIL's (%lldx%lld, hash)", path, img.w, img.h, (long long)v[0], (long long)v[1]);
    EXPECT(gray == (v[3] == 1), "%s: gray %d, PIL mode %s", path, gray, v[3] == 1 ? "L" : "RGB");
    if (n >= 7) {
        Image r;
        image_resize_bilinear(&img, (int)v[4], (int)v[5], &r);
        EXPECT(fnv1a64(r.data, (size_t)r.w * r.h * 3) == (uint64_t)v[6], "%s: Resize(304) to %dx%d differs from PIL's", path, r.w, r.h);
        image_free(&r);
    }
    free(v);
    image_free(&img);
}

/* image_crop_padded: inside pixels copied; outside, the nearest edge pixel (EDGE) or the mean
 * colour of the outermost ring (MEAN); a box that misses the image is an error */
static void test_crop_padded(void) {
    Image src = {4, 3, NULL};
    uint8_t px[4 * 3 * 3];
    for (int i = 0; i < 36; i++) px[i] = (uint8_t)(i * 7);
    src.data = px;
    Image e, m;
    EXPECT(image_crop_padded(&src, -2, -1, 6, 5, IMAGE_PAD_EDGE, &e) == 0 && e.w == 8 && e.h == 6, "edge crop 8x6");
    EXPECT(image_crop_padded(&src, -2, -1, 6, 5, IMAGE_PAD_MEAN, &m) == 0 && m.w == 8 && m.h == 6, "mean crop 8x6");
    int ok_in = 1, ok_edge = 1, ok_mean = 1;
    /* the ring of a 4x3 image is every pixel but (1,1) and (2,1) */
    double ring[3] = {0, 0, 0};
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 4; x++)
            if (!(y == 1 && (x == 1 || x == 2)))
                for (int c = 0; c < 3; c++) ring[c] += px[(y * 4 + x) * 3 + c] / 10.0;
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 8; x++) {
            int sx = x - 2, sy = y - 1, in = sx >= 0 && sx < 4 && sy >= 0 && sy < 3;
            int cx = sx < 0 ? 0 : sx > 3 ? 3 : sx, cy = sy < 0 ? 0 : sy > 2 ? 2 : sy;
            for (int c = 0; c < 3; c++) {
                uint8_t ev = e.data[(y * 8 + x) * 3 + c], mv = m.data[(y * 8 + x) * 3 + c], want = px[(cy * 4 + cx) * 3 + c];
                if (in) ok_in &= ev == want && mv == want;
                else {
                    ok_edge &= ev == want;
                    ok_mean &= mv == (uint8_t)(ring[c] + 0.5);
                }
            }
        }
    EXPECT(ok_in, "padded crops copy the pixels inside the image");
    EXPECT(ok_edge, "IMAGE_PAD_EDGE repeats the nearest edge pixel");
    EXPECT(ok_mean, "IMAGE_PAD_MEAN fills with the ring's mean colour");
    image_free(&e);
    image_free(&m);
    EXPECT(image_crop_padded(&src, 4, 0, 8, 3, IMAGE_PAD_EDGE, &e) == -1 && strstr(err_msg(), "misses"), "a box beside the image: %s",
           err_msg());
    EXPECT(image_crop_padded(&src, -100, -100, 100, 100, IMAGE_PAD_EDGE, &e) == -1, "a box 50x the image is refused");
}

int main(void) {
    test_begin("test_image");
    test_crop_padded();
    snprintf(g_dir, sizeof g_dir, "%s/attngan_img_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    CHECK(mkdtemp(g_dir), "mkdtemp");
    SafeTensors *st = fixture_open("image_ref");
    if (st) {
        test_decode(st);
        test_crop_flip(st);
        test_resize(st);
        test_chw(st);
        real_photo(st, "photo", "001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg");
        real_photo(st, "gray", "009.Brewer_Blackbird/Brewer_Blackbird_0028_2682.jpg");
    }
    test_png_round_trip();
    test_jpeg_round_trip();
    test_bad_files();
    fixture_close(st);
    char cmd[320];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", g_dir);
    return test_end();
}
