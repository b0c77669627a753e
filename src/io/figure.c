/* figure.c: image grids, AttnGAN's attention super image and FreeType text labels (figure.h).
 *
 * The font is global state behind one mutex: unresolved until the first text is drawn (or
 * figure_font_check/figure_set_font), then either a loaded FreeType face or the no-font mode,
 * in which text silently draws nothing (after one warning on stderr when the mode was not asked
 * for). Glyphs are rendered as 8-bit coverage and blended over the image:
 * out = out + (colour - out) * coverage / 255.
 */
#include "figure.h"

#include "../core/error.h"

#include <ft2build.h>
#include FT_FREETYPE_H

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Larger figures are refused rather than allocated (PIL's decompression-bomb limit). */
#define FIGURE_MAX_PIXELS 178956970LL

enum { FONT_UNRESOLVED, FONT_READY, FONT_NONE };

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_state = FONT_UNRESOLVED;
static FT_Library g_ft;
static FT_Face g_face;
static char g_font_err[512];   /* why the no-font mode is on ("" when it was asked for) */
static int g_warned;

/* ---------------------------------------------------------------- font state (g_lock held) */

static void font_release(void) {
    if (g_face) FT_Done_Face(g_face);
    if (g_ft) FT_Done_FreeType(g_ft);
    g_face = NULL;
    g_ft = NULL;
}

/* Loads path into g_face: 0, or -1 with g_font_err naming origin (where the path came from). */
static int font_open(const char *path, const char *origin) {
    font_release();
    int fe = 0;
    if (access(path, R_OK) != 0)
        snprintf(g_font_err, sizeof g_font_err, "font %s (%s): %s", path, origin, strerror(errno));
    else if ((fe = FT_Init_FreeType(&g_ft)) != 0)
        snprintf(g_font_err, sizeof g_font_err, "FreeType initialisation failed (error %d)", fe);
    else if ((fe = FT_New_Face(g_ft, path, 0, &g_face)) != 0)
        snprintf(g_font_err, sizeof g_font_err, "font %s (%s): not a font FreeType can read (error %d)", path, origin, fe);
    else {
        g_state = FONT_READY;
        g_font_err[0] = 0;
        return 0;
    }
    font_release();
    g_state = FONT_NONE;
    return -1;
}

/* The default lookup: $ATTNGAN_FONT, else FIGURE_DEFAULT_FONT. */
static int font_resolve(void) {
    const char *env = getenv("ATTNGAN_FONT");
    int rc = env && *env ? font_open(env, "from $ATTNGAN_FONT") : font_open(FIGURE_DEFAULT_FONT, "the default font");
    if (rc) {
        size_t n = strlen(g_font_err);
        snprintf(g_font_err + n, sizeof g_font_err - n, "; set ATTNGAN_FONT to a TrueType file%s",
                 env && *env ? "" : " or install Debian's fonts-dejavu-core");
    }
    return rc;
}

/* Makes sure the state is resolved; returns 1 when a face is ready. Warns once if not. */
static int font_ready_or_warn(void) {
    if (g_state == FONT_UNRESOLVED) font_resolve();
    if (g_state == FONT_READY) return 1;
    if (g_font_err[0] && !g_warned) {
        fprintf(stderr, "warning: figures are drawn without text: %s\n", g_font_err);
        g_warned = 1;
    }
    return 0;
}

int figure_set_font(const char *path) {
    pthread_mutex_lock(&g_lock);
    int rc = 0;
    if (!path) {
        font_release();
        g_state = FONT_NONE;
        g_font_err[0] = 0;
    } else if (font_open(path, "figure_set_font")) {
        rc = err_set("%s", g_font_err);
    }
    pthread_mutex_unlock(&g_lock);
    return rc;
}

int figure_font_check(void) {
    pthread_mutex_lock(&g_lock);
    if (g_state == FONT_UNRESOLVED) font_resolve();
    int rc = 0;
    if (g_state != FONT_READY)
        rc = err_set("no font for figure text: %s", g_font_err[0] ? g_font_err : "the no-font mode was selected");
    pthread_mutex_unlock(&g_lock);
    return rc;
}

int figure_has_font(void) {
    pthread_mutex_lock(&g_lock);
    if (g_state == FONT_UNRESOLVED) font_resolve();
    int ok = g_state == FONT_READY;
    pthread_mutex_unlock(&g_lock);
    return ok;
}

void figure_font_close(void) {
    pthread_mutex_lock(&g_lock);
    font_release();
    g_state = FONT_UNRESOLVED;
    g_font_err[0] = 0;
    pthread_mutex_unlock(&g_lock);
}

/* ---------------------------------------------------------------- text */

/* The next code point of UTF-8 text (advancing *s); malformed bytes give U+FFFD. */
static uint32_t utf8_next(const char **s) {
    const uint8_t *p = (const uint8_t *)*s;
    int len = p[0] < 0x80 ? 1 : (p[0] >> 5) == 6 ? 2 : (p[0] >> 4) == 14 ? 3 : (p[0] >> 3) == 30 ? 4 : 0;
    uint32_t cp = len == 1 ? p[0] : len == 2 ? (p[0] & 0x1fu) : len == 3 ? (p[0] & 0x0fu) : (p[0] & 0x07u);
    for (int i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) len = 0;
        if (!len) break;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    *s += len ? len : 1;
    return len ? cp : 0xfffd;
}

typedef struct Clip { int x0, y0, x1, y1; } Clip;   /* [x0, x1) x [y0, y1) */

/* Blends one rendered glyph bitmap with its top-left at (gx, gy). */
static void blend_glyph(Image *img, const FT_Bitmap *bm, int gx, int gy, const uint8_t rgb[3], Clip c) {
    for (unsigned r = 0; r < bm->rows; r++) {
        int y = gy + (int)r;
        if (y < c.y0 || y >= c.y1) continue;
        for (unsigned k = 0; k < bm->width; k++) {
            int x = gx + (int)k, a = bm->buffer[(long)r * bm->pitch + k];
            if (x < c.x0 || x >= c.x1 || !a) continue;
            uint8_t *px = img->data + ((size_t)y * img->w + x) * 3;
            for (int ch = 0; ch < 3; ch++) px[ch] = (uint8_t)(px[ch] + ((int)rgb[ch] - px[ch]) * a / 255);
        }
    }
}

/* Draws text with g_face (ready, g_lock held), clipped to c; returns the advance in pixels. */
static int draw_run(Image *img, int x, int y, const char *text, int px, const uint8_t rgb[3], Clip c) {
    if (FT_Set_Pixel_Sizes(g_face, 0, (FT_UInt)px)) return -1;
    int base = y + (int)((g_face->size->metrics.ascender + 63) >> 6);
    long pen = (long)x << 6;
    while (*text) {
        uint32_t cp = utf8_next(&text);
        if (FT_Load_Char(g_face, cp, img ? FT_LOAD_RENDER : FT_LOAD_DEFAULT)) continue;
        FT_GlyphSlot g = g_face->glyph;
        if (img && g->bitmap.pixel_mode == FT_PIXEL_MODE_GRAY)
            blend_glyph(img, &g->bitmap, (int)(pen >> 6) + g->bitmap_left, base - g->bitmap_top, rgb, c);
        pen += g->advance.x;
    }
    return (int)((pen - ((long)x << 6) + 63) >> 6);
}

/* figure_text restricted to the rectangle c (inside the image). */
static int text_clipped(Image *img, int x, int y, const char *text, int px, const uint8_t rgb[3], Clip c) {
    pthread_mutex_lock(&g_lock);
    int rc = 0;
    if (font_ready_or_warn() && draw_run(img, x, y, text, px, rgb, c) < 0)
        rc = err_set("figure text: FreeType cannot set a size of %d pixels", px);
    pthread_mutex_unlock(&g_lock);
    return rc;
}

int figure_text(Image *img, int x, int y, const char *text, int px, uint8_t r, uint8_t g, uint8_t b) {
    if (!img || !img->data || img->w <= 0 || img->h <= 0) return err_set("figure_text: no image to draw on");
    if (!text) return err_set("figure_text: no text");
    if (px < 1 || px > 1000) return err_set("figure_text: text size of %d pixels (1 to 1000 allowed)", px);
    const uint8_t rgb[3] = {r, g, b};
    return text_clipped(img, x, y, text, px, rgb, (Clip){0, 0, img->w, img->h});
}

int figure_text_width(const char *text, int px) {
    if (!text || px < 1 || px > 1000) return 0;
    pthread_mutex_lock(&g_lock);
    int wd = 0;
    if (font_ready_or_warn()) wd = draw_run(NULL, 0, 0, text, px, NULL, (Clip){0, 0, 0, 0});
    pthread_mutex_unlock(&g_lock);
    return wd < 0 ? 0 : wd;
}

/* ---------------------------------------------------------------- grid */

static int alloc_canvas(Image *out, long long w, long long h, const char *what) {
    if (w <= 0 || h <= 0 || w * h > FIGURE_MAX_PIXELS)
        return err_set("%s: a figure of %lldx%lld pixels is empty or too large", what, w, h);
    out->w = (int)w;
    out->h = (int)h;
    out->data = xcalloc((size_t)(w * h), 3);
    return 0;
}

/* Copies src into dst with src's top-left corner at (x, y); src must fit. */
static void blit(Image *dst, const Image *src, int x, int y) {
    for (int r = 0; r < src->h; r++)
        memcpy(dst->data + ((size_t)(y + r) * dst->w + x) * 3, src->data + (size_t)r * src->w * 3, (size_t)src->w * 3);
}

int figure_grid(const float *const *imgs, int n, int size, int cols, int pad, Image *out) {
    memset(out, 0, sizeof *out);
    if (!imgs || n < 1 || size < 1 || cols < 1 || pad < 0)
        return err_set("figure_grid: %d images of size %d, %d columns, padding %d", n, size, cols, pad);
    for (int k = 0; k < n; k++)
        if (!imgs[k]) return err_set("figure_grid: image %d is missing", k);
    int c = cols < n ? cols : n, rows = (n + c - 1) / c;
    long long step = (long long)size + pad;
    if (alloc_canvas(out, c * step + pad, rows * step + pad, "figure_grid")) return -1;
    for (int k = 0; k < n; k++) {
        Image tile;
        image_from_chw(imgs[k], size, size, &tile);
        blit(out, &tile, (int)(pad + (k % c) * step), (int)(pad + (k / c) * step));
        image_free(&tile);
    }
    return 0;
}

/* The longest prefix of text (ending at a space, or anywhere when one word is too wide) that fits
 * in w pixels at px; *next gets where the rest starts. */
static size_t fit_line(const char *text, int w, int px, const char **next) {
    size_t n = strlen(text), best = 0;
    char buf[1024];
    for (size_t i = 1; i <= n && i < sizeof buf; i++) {
        if (i < n && text[i] != ' ') continue;
        memcpy(buf, text, i);
        buf[i] = 0;
        if (figure_text_width(buf, px) > w && best) break;
        best = i;
        if (figure_text_width(buf, px) > w) break;
    }
    if (!best) best = n < sizeof buf - 1 ? n : sizeof buf - 1;
    const char *p = text + best;
    while (*p == ' ') p++;
    *next = p;
    return best;
}

int figure_captioned(const float *const *imgs, const char *const *captions, int n, int size, int text_w, Image *out) {
    memset(out, 0, sizeof *out);
    if (!imgs || !captions || n < 1 || size < 1 || text_w < 1)
        return err_set("figure_captioned: %d images of size %d, %d px of text", n, size, text_w);
    const int pad = 2, px = FIGURE_CAPTION_PX, line_h = px + 4, label_w = figure_text_width("000", px) + 8;
    long long step = (long long)size + pad;
    if (alloc_canvas(out, pad + label_w + size + 8 + text_w + pad, n * step + pad, "figure_captioned")) return -1;
    int max_lines = size / line_h > 0 ? size / line_h : 1;
    for (int k = 0; k < n; k++) {
        if (!imgs[k] || !captions[k]) { image_free(out); return err_set("figure_captioned: image or caption %d is missing", k); }
        int y = (int)(pad + k * step);
        char num[16];
        snprintf(num, sizeof num, "%03d", k + 1);
        int rc = figure_text(out, pad + 2, y + 2, num, px, 200, 200, 200);
        Image tile;
        image_from_chw(imgs[k], size, size, &tile);
        blit(out, &tile, pad + label_w, y);
        image_free(&tile);
        const char *t = captions[k];
        for (int l = 0; !rc && l < max_lines && *t; l++) {
            const char *next;
            size_t len = fit_line(t, text_w, px, &next);
            char line[1100];
            if (l == max_lines - 1 && *next) snprintf(line, sizeof line, "%.*s ...", (int)(len > 1000 ? 1000 : len), t);
            else snprintf(line, sizeof line, "%.*s", (int)(len > 1000 ? 1000 : len), t);
            rc = figure_text(out, pad + label_w + size + 8, y + 2 + l * line_h, line, px, 255, 255, 255);
            t = next;
        }
        if (rc) { image_free(out); return -1; }
    }
    return 0;
}

/* ---------------------------------------------------------------- attention */

/* Source coordinate of output index i (align_corners=False): index i0, i1 and weight of i1. */
static void bilinear_tap(int i, int n_in, int n_out, int *i0, int *i1, float *t) {
    float s = ((float)i + 0.5f) * (float)n_in / (float)n_out - 0.5f;
    if (s < 0) s = 0;
    *i0 = (int)s;
    if (*i0 > n_in - 1) *i0 = n_in - 1;
    *i1 = *i0 + 1 < n_in ? *i0 + 1 : n_in - 1;
    *t = s - (float)*i0;
}

/* The (h, w) map upsampled to S x S, clamped at 0 and divided by its max, as grey bytes. */
static void map_to_grey(const float *map, int h, int w, int S, uint8_t *grey) {
    float *up = xmalloc((size_t)S * S * sizeof *up), mx = 0;
    for (int y = 0; y < S; y++) {
        int y0, y1, x0, x1;
        float ty, tx;
        bilinear_tap(y, h, S, &y0, &y1, &ty);
        for (int x = 0; x < S; x++) {
            bilinear_tap(x, w, S, &x0, &x1, &tx);
            float top = map[y0 * w + x0] * (1 - tx) + map[y0 * w + x1] * tx;
            float bot = map[y1 * w + x0] * (1 - tx) + map[y1 * w + x1] * tx;
            float v = top * (1 - ty) + bot * ty;
            v = v > 0 ? v : 0;   /* also turns NaN into 0 */
            up[y * S + x] = v;
            if (v > mx) mx = v;
        }
    }
    for (size_t i = 0; i < (size_t)S * S; i++) {
        float v = mx > 0 && isfinite(mx) ? up[i] / mx * 255.0f : 0;
        grey[i] = (uint8_t)(v > 255 ? 255 : v);
    }
    free(up);
}

/* PIL's paste of grey over base with a constant mask A: DIV255(grey * A + base * (255 - A)). */
static uint8_t paste_blend(int grey, int base) {
    int t = grey * FIGURE_ATT_ALPHA + base * (255 - FIGURE_ATT_ALPHA) + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

/* Cell j (>= 1) of the row at y: map j-1 blended over base. */
static void draw_map_cell(Image *out, const Image *base, const float *map, int h, int w, int x, int y) {
    int S = base->w;
    uint8_t *grey = xmalloc((size_t)S * S);
    map_to_grey(map, h, w, S, grey);
    for (int r = 0; r < S; r++) {
        uint8_t *dst = out->data + ((size_t)(y + r) * out->w + x) * 3;
        const uint8_t *src = base->data + (size_t)r * S * 3;
        for (int k = 0; k < S * 3; k++) dst[k] = paste_blend(grey[r * S + k / 3], src[k]);
    }
    free(grey);
}

static int row_words(int n_words) { return n_words < FIGURE_MAX_WORDS ? n_words : FIGURE_MAX_WORDS; }
static long long row_width(int S, int n_words) { return (1LL + row_words(n_words)) * ((long long)S + FIGURE_ATT_PAD); }

/* Draws one caption's header strip and row into out, its top-left corner at (0, y). */
static int draw_attention_row(Image *out, int y, const float *img, int S, const float *att, int h, int w,
                              const char *const *words, int n_words) {
    Image base;
    image_from_chw_trunc(img, S, S, &base);
    int cell = S + FIGURE_ATT_PAD, k = row_words(n_words), rc = 0;
    blit(out, &base, 0, y + FIGURE_HEADER_H);
    for (int j = 0; j < k; j++)
        draw_map_cell(out, &base, att + (size_t)j * h * w, h, w, (j + 1) * cell, y + FIGURE_HEADER_H);
    const uint8_t white[3] = {255, 255, 255};
    int ty = y + (FIGURE_HEADER_H - FIGURE_WORD_PX) / 2 - 2;
    for (int j = 0; j < k && !rc; j++) {
        if (!words || !words[j] || !words[j][0]) continue;
        Clip c = {(j + 1) * cell, y, (j + 1) * cell + S, y + FIGURE_HEADER_H};
        rc = text_clipped(out, c.x0 + 2, ty, words[j], FIGURE_WORD_PX, white, c);
    }
    image_free(&base);
    return rc;
}

static int check_attention_args(const float *img, int S, const float *att, int h, int w, int n_words, int i) {
    if (!img || S < 1) return err_set("figure_attention: caption %d: no image, or image size %d", i, S);
    if (n_words < 0) return err_set("figure_attention: caption %d: %d words", i, n_words);
    if (n_words > 0 && (!att || h < 1 || w < 1))
        return err_set("figure_attention: caption %d: no attention maps, or maps of %dx%d", i, h, w);
    return 0;
}

int figure_attention(const float *img, int S, const float *att, int h, int w, const char *const *words, int n_words,
                     Image *out) {
    const char *const *const wl[1] = {words};
    return figure_attention_rows(&img, 1, S, &att, h, w, wl, &n_words, out);
}

int figure_attention_rows(const float *const *imgs, int n, int S, const float *const *atts, int h, int w,
                          const char *const *const *words, const int *n_words, Image *out) {
    memset(out, 0, sizeof *out);
    if (!imgs || !atts || !n_words || n < 1) return err_set("figure_attention: %d captions (or arrays missing)", n);
    long long width = 0;
    for (int i = 0; i < n; i++) {
        if (check_attention_args(imgs[i], S, atts[i], h, w, n_words[i], i)) return -1;
        if (row_width(S, n_words[i]) > width) width = row_width(S, n_words[i]);
    }
    if (alloc_canvas(out, width, (long long)n * (FIGURE_HEADER_H + S), "figure_attention")) return -1;
    for (int i = 0; i < n; i++)
        if (draw_attention_row(out, i * (FIGURE_HEADER_H + S), imgs[i], S, atts[i], h, w, words ? words[i] : NULL,
                               n_words[i])) {
            image_free(out);
            return -1;
        }
    return 0;
}
