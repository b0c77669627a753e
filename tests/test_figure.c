/* test_figure.c: src/io/figure.c: grid size and tile placement, the attention row's size and
 * its map blending (a map weighted on one corner is brighter there, bytes as the documented
 * formula), words drawn in the header strip with the font and not without, font errors and the
 * no-font fallback, PNG round trips through a temporary directory. FIGURE_EXAMPLE=path also
 * writes an example attention figure there. */
#include "test.h"

#include "../src/io/figure.h"
#include "../src/io/image.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[256];

static const uint8_t *pixel(const Image *img, int x, int y) { return img->data + ((size_t)y * img->w + x) * 3; }

/* A (3, S, S) image of one colour, channel c = v[c] in [-1, 1]. */
static float *solid(int S, float r, float g, float b) {
    float *x = xmalloc(sizeof *x * 3 * S * S);
    const float v[3] = {r, g, b};
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < S * S; i++) x[c * S * S + i] = v[c];
    return x;
}

/* Non-background pixels (any channel above bg) inside [x0, x1) x [y0, y1). */
static long count_lit(const Image *img, int x0, int y0, int x1, int y1, int bg) {
    long n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            const uint8_t *p = pixel(img, x, y);
            n += p[0] > bg || p[1] > bg || p[2] > bg;
        }
    return n;
}

/* ---------------------------------------------------------------- grid */

static int expect_tile(const Image *g, int x0, int y0, int size, const uint8_t rgb[3], int k) {
    long bad = 0;
    for (int y = y0; y < y0 + size; y++)
        for (int x = x0; x < x0 + size; x++) bad += memcmp(pixel(g, x, y), rgb, 3) != 0;
    return EXPECT(bad == 0, "grid tile %d at (%d,%d): %ld pixels not (%d,%d,%d)", k, x0, y0, bad, rgb[0], rgb[1], rgb[2]);
}

static void test_grid(void) {
    enum { N = 5, S = 4, COLS = 3, PAD = 2 };
    float *imgs[N];
    uint8_t want[N][3];
    for (int k = 0; k < N; k++) {
        int m = k + 1;
        imgs[k] = solid(S, m & 1 ? 1.f : -1.f, m & 2 ? 1.f : -1.f, m & 4 ? 1.f : 0.f);
        want[k][0] = m & 1 ? 255 : 0, want[k][1] = m & 2 ? 255 : 0, want[k][2] = m & 4 ? 255 : 128;
    }
    imgs[2][0 * S * S + 1 * S + 3] = -1.f;  /* image 2: pixel (x 3, y 1) loses its red */
    Image g;
    EXPECT(figure_grid((const float *const *)imgs, N, S, COLS, PAD, &g) == 0, "figure_grid: %s", err_msg());
    EXPECT(g.w == COLS * (S + PAD) + PAD && g.h == 2 * (S + PAD) + PAD, "grid is %dx%d, want 20x14", g.w, g.h);
    long lit = count_lit(&g, 0, 0, g.w, g.h, 0), want_lit = N * S * S;
    EXPECT(lit == want_lit, "grid: %ld non-black pixels, want %ld (padding and the empty slot black)", lit, want_lit);
    for (int k = 0; k < N; k++) {
        int x0 = PAD + (k % COLS) * (S + PAD), y0 = PAD + (k / COLS) * (S + PAD);
        if (k == 2) {
            const uint8_t *p = pixel(&g, x0 + 3, y0 + 1);
            EXPECT(p[0] == 0 && p[1] == 255 && p[2] == 128, "grid: marked pixel of image 2 is (%d,%d,%d)", p[0], p[1], p[2]);
            imgs[2][1 * S + 3] = 1.f;
            continue;
        }
        expect_tile(&g, x0, y0, S, want[k], k);
    }
    image_free(&g);
    EXPECT(figure_grid((const float *const *)imgs, 3, S, 8, 0, &g) == 0 && g.w == 3 * S && g.h == S,
           "grid with more columns than images is %dx%d, want 12x4", g.w, g.h);
    image_free(&g);
    EXPECT(figure_grid((const float *const *)imgs, 0, S, 3, 2, &g) == -1 && strstr(err_msg(), "figure_grid"),
           "grid of no images is an error: %s", err_msg());
    for (int k = 0; k < N; k++) free(imgs[k]);
}

/* ---------------------------------------------------------------- attention */

static uint8_t blend(int grey, int base) {
    int t = grey * FIGURE_ATT_ALPHA + base * (255 - FIGURE_ATT_ALPHA) + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

static void test_attention_size(void) {
    enum { S = 32, H = 4 };
    float *img = solid(S, 0, 0, 0), *att = xcalloc(20 * H * H, sizeof *att);
    Image f;
    EXPECT(figure_attention(img, S, att, H, H, NULL, 5, &f) == 0, "figure_attention: %s", err_msg());
    EXPECT(f.w == 6 * (S + FIGURE_ATT_PAD) && f.h == FIGURE_HEADER_H + S, "5 words: %dx%d, want %dx%d", f.w, f.h,
           6 * (S + FIGURE_ATT_PAD), FIGURE_HEADER_H + S);
    image_free(&f);
    EXPECT(figure_attention(img, S, att, H, H, NULL, 20, &f) == 0 && f.w == (FIGURE_MAX_WORDS + 1) * (S + FIGURE_ATT_PAD),
           "20 words are cut at %d: width %d", FIGURE_MAX_WORDS, f.w);
    image_free(&f);
    EXPECT(figure_attention(img, S, att, H, H, NULL, 0, &f) == 0 && f.w == S + FIGURE_ATT_PAD, "no words: width %d", f.w);
    image_free(&f);
    const float *imgs[3] = {img, img, img}, *atts[3] = {att, att, att};
    int nw[3] = {2, 7, 4};
    EXPECT(figure_attention_rows(imgs, 3, S, atts, H, H, NULL, nw, &f) == 0 && f.w == 8 * (S + FIGURE_ATT_PAD) &&
               f.h == 3 * (FIGURE_HEADER_H + S),
           "3 captions: %dx%d", f.w, f.h);
    EXPECT(count_lit(&f, 3 * (S + FIGURE_ATT_PAD), FIGURE_HEADER_H, f.w, FIGURE_HEADER_H + S, 0) == 0,
           "a short caption's row is padded with black");
    image_free(&f);
    EXPECT(figure_attention(NULL, S, att, H, H, NULL, 2, &f) == -1, "no image is an error");
    EXPECT(figure_attention(img, S, NULL, H, H, NULL, 2, &f) == -1, "no maps is an error");
    free(img);
    free(att);
}

/* Word 0 weighs the top-left map cell, word 1 the bottom-right one, word 2 nothing. */
static void test_attention_blend(void) {
    enum { S = 32, H = 4, CELL = S + FIGURE_ATT_PAD };
    float *img = solid(S, 0, 0, 0), *att = xcalloc(3 * H * H, sizeof *att);
    att[0] = 0.7f;
    att[H * H + H * H - 1] = 0.2f;
    Image f;
    EXPECT(figure_attention(img, S, att, H, H, NULL, 3, &f) == 0, "figure_attention: %s", err_msg());
    const int y0 = FIGURE_HEADER_H, base = 127; /* (0 + 1) * 127.5 truncated */
    EXPECT(pixel(&f, 5, y0 + 5)[0] == base, "image cell keeps the image: %d", pixel(&f, 5, y0 + 5)[0]);
    int hot = pixel(&f, CELL, y0)[0], cold = pixel(&f, CELL + S - 1, y0 + S - 1)[1];
    EXPECT(hot == blend(255, base) && cold == blend(0, base), "word 0: corner %d (want %d), far corner %d (want %d)", hot,
           blend(255, base), cold, blend(0, base));
    int hot1 = pixel(&f, 2 * CELL + S - 1, y0 + S - 1)[2], cold1 = pixel(&f, 2 * CELL, y0)[2];
    EXPECT(hot1 > cold1 + 100, "word 1 is brighter bottom right: %d vs %d", hot1, cold1);
    long off = 0;
    for (int y = y0; y < y0 + S; y++)
        for (int x = 3 * CELL; x < 3 * CELL + S; x++) off += pixel(&f, x, y)[0] != blend(0, base);
    EXPECT(off == 0, "an all-zero map leaves %ld pixels off the dark blend", off);
    image_free(&f);
    free(img);
    free(att);
}

/* ---------------------------------------------------------------- text */

static void header_counts(const char *const *words, long *in_words, long *over_image) {
    enum { S = 48, H = 3 };
    float *img = solid(S, -1, -1, -1), *att = xcalloc(3 * H * H, sizeof *att);
    Image f;
    *in_words = *over_image = -1;
    if (!EXPECT(figure_attention(img, S, att, H, H, words, 3, &f) == 0, "figure_attention: %s", err_msg())) return;
    *over_image = count_lit(&f, 0, 0, S + FIGURE_ATT_PAD, FIGURE_HEADER_H, 0);
    *in_words = count_lit(&f, S + FIGURE_ATT_PAD, 0, f.w, FIGURE_HEADER_H, 0);
    image_free(&f);
    free(img);
    free(att);
}

static void test_text_with_font(void) {
    if (access(FIGURE_DEFAULT_FONT, R_OK) != 0) {
        test_skip("%s missing (Debian fonts-dejavu-core)", FIGURE_DEFAULT_FONT);
        return;
    }
    EXPECT(figure_set_font(FIGURE_DEFAULT_FONT) == 0 && figure_has_font(), "figure_set_font: %s", err_msg());
    const char *words[3] = {"this", "bird", "has"};
    long lit, over;
    header_counts(words, &lit, &over);
    EXPECT(lit > 50 && over == 0, "words light %ld header pixels (over the image column: %ld)", lit, over);
    header_counts(NULL, &lit, &over);
    EXPECT(lit == 0, "no words, %ld lit header pixels", lit);
    Image img = {0};
    img.w = 80, img.h = 20, img.data = xcalloc(80 * 20, 3);
    EXPECT(figure_text(&img, 2, 2, "red caption", 14, 200, 0, 0) == 0, "figure_text: %s", err_msg());
    long red = count_lit(&img, 0, 0, 80, 20, 0), green = 0;
    for (int i = 0; i < 80 * 20; i++) green += img.data[3 * i + 1] != 0 || img.data[3 * i + 2] != 0;
    EXPECT(red > 30 && green == 0, "figure_text: %ld pixels lit, %ld not pure red", red, green);
    EXPECT(figure_text(&img, 70, 15, "clipped at the border", 14, 255, 255, 255) == 0, "text past the border is clipped");
    EXPECT(figure_text(&img, 0, 0, "x", 0, 255, 255, 255) == -1, "text of 0 pixels is an error");
    int w = figure_text_width("abcd", 14);
    EXPECT(w >= 28 && w <= 40, "4 monospace letters at 14 px are %d px wide", w);
    image_free(&img);
}

static void test_no_font(void) {
    EXPECT(figure_set_font("/nonexistent/fonts/NoSuchFont.ttf") == -1 && strstr(err_msg(), "NoSuchFont.ttf") &&
               strstr(err_msg(), "No such file"),
           "a missing font names the path and the cause: %s", err_msg());
    EXPECT(!figure_has_font(), "no font after a failed figure_set_font");
    long lit, over;
    header_counts((const char *[]){"this", "bird", "has"}, &lit, &over);
    EXPECT(lit == 0, "no-font fallback draws %ld header pixels", lit);
    Image img = {0};
    img.w = 40, img.h = 20, img.data = xcalloc(40 * 20, 3);
    EXPECT(figure_text(&img, 2, 2, "abc", 14, 255, 255, 255) == 0 && count_lit(&img, 0, 0, 40, 20, 0) == 0,
           "figure_text without a font succeeds and draws nothing");
    image_free(&img);

    char bogus[300];
    snprintf(bogus, sizeof bogus, "%s/notafont.ttf", g_dir);
    FILE *fp = fopen(bogus, "w");
    if (fp) fputs("this is not a font\n", fp), fclose(fp);
    EXPECT(figure_set_font(bogus) == -1 && strstr(err_msg(), "not a font"), "a text file as font: %s", err_msg());
    unlink(bogus);

    setenv("ATTNGAN_FONT", "/nonexistent/env-font.ttf", 1);
    figure_font_close();
    EXPECT(figure_font_check() == -1 && strstr(err_msg(), "ATTNGAN_FONT") && strstr(err_msg(), "env-font.ttf"),
           "a missing $ATTNGAN_FONT is named: %s", err_msg());
    EXPECT(figure_set_font(NULL) == 0 && !figure_has_font(), "figure_set_font(NULL) selects the no-font mode");
    if (access(FIGURE_DEFAULT_FONT, R_OK) == 0) {
        setenv("ATTNGAN_FONT", FIGURE_DEFAULT_FONT, 1);
        figure_font_close();
        EXPECT(figure_font_check() == 0, "$ATTNGAN_FONT is used: %s", err_msg());
    }
    unsetenv("ATTNGAN_FONT");
    figure_font_close();
}

/* ---------------------------------------------------------------- PNG */

/* A colourful (3, S, S) test image: a diagonal gradient with a disc. */
static float *pattern(int S) {
    float *x = xmalloc(sizeof *x * 3 * S * S);
    for (int y = 0; y < S; y++)
        for (int i = 0; i < S; i++) {
            float u = (float)i / S, v = (float)y / S, d = (u - .5f) * (u - .5f) + (v - .55f) * (v - .55f);
            x[0 * S * S + y * S + i] = d < 0.06f ? 0.8f : u * 2 - 1;
            x[1 * S * S + y * S + i] = d < 0.06f ? 0.6f : v - 0.5f;
            x[2 * S * S + y * S + i] = d < 0.06f ? -0.8f : 1 - u - v;
        }
    return x;
}

static void expect_png_roundtrip(const Image *img, const char *name) {
    char path[300];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    Image back = {0};
    if (!EXPECT(image_save_png(path, img) == 0, "save %s: %s", name, err_msg())) return;
    EXPECT(image_load(path, &back) == 0 && back.w == img->w && back.h == img->h &&
               memcmp(back.data, img->data, (size_t)img->w * img->h * 3) == 0,
           "%s decodes back to the same pixels", name);
    image_free(&back);
    unlink(path);
}

static void test_png(void) {
    enum { S = 64, H = 8, L = 6 };
    float *img = pattern(S), *att = xcalloc(L * H * H, sizeof *att);
    for (int j = 0; j < L; j++)
        for (int i = 0; i < H * H; i++) att[j * H * H + i] = expf(-0.3f * (float)((i % H - j) * (i % H - j) + (i / H - 4) * (i / H - 4)));
    const char *words[L] = {"this", "bird", "has", "a", "yellow", "crown"};
    Image f, g;
    if (EXPECT(figure_attention(img, S, att, H, H, words, L, &f) == 0, "figure_attention: %s", err_msg())) {
        expect_png_roundtrip(&f, "attention.png");
        if (getenv("FIGURE_EXAMPLE")) EXPECT(image_save_png(getenv("FIGURE_EXAMPLE"), &f) == 0, "example: %s", err_msg());
        image_free(&f);
    }
    const float *imgs[4] = {img, img, img, img};
    if (EXPECT(figure_grid(imgs, 4, S, 2, 2, &g) == 0, "figure_grid: %s", err_msg())) {
        EXPECT(figure_text(&g, 4, g.h - 18, "a caption", 14, 255, 255, 255) == 0, "caption: %s", err_msg());
        expect_png_roundtrip(&g, "grid.png");
        image_free(&g);
    }
    free(img);
    free(att);
}

int main(void) {
    test_begin("test_figure");
    snprintf(g_dir, sizeof g_dir, "/tmp/test_figure.XXXXXX");
    if (!mkdtemp(g_dir)) FAIL("mkdtemp %s failed", g_dir);
    test_grid();
    test_attention_size();
    test_attention_blend();
    test_text_with_font();
    test_no_font();
    test_png();
    figure_font_close();
    rmdir(g_dir);
    return test_end();
}
