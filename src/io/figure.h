/* figure.h: the figures AttnGAN writes (training snapshots, `attngan generate --attention`, the
 * server): image grids like torchvision's make_grid, the attention "super image" of AttnGAN's
 * miscc/utils.py build_super_images, and text labels drawn with FreeType.
 *
 * Images come in as (3, S, S) floats in [-1, 1] and go out as 8-bit RGB (src/io/image.h).
 *
 * Text needs a TrueType font: figure_set_font(path), else $ATTNGAN_FONT, else Debian's
 * /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf (fonts-dejavu-core). Without one the
 * figures are still drawn, only without words (a warning is printed once to stderr), so a
 * missing font never fails a training run. The font state is global and guarded by a mutex.
 */
#ifndef ATTNGAN_FIGURE_H
#define ATTNGAN_FIGURE_H

#include "image.h"

#include <stdint.h>

#define FIGURE_DEFAULT_FONT "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
#define FIGURE_MAX_WORDS 18     /* word maps per attention row (AttnGAN's TEXT.WORDS_NUM) */
#define FIGURE_ATT_PAD 2        /* black columns after each cell of an attention row */
#define FIGURE_HEADER_H 24      /* rows of the word strip above an attention row */
#define FIGURE_WORD_PX 14       /* pixel size of the words in that strip */
#define FIGURE_ATT_ALPHA 210    /* weight (of 255) of the map when pasted over the image */

/* torchvision make_grid(padding=pad, pad_value=0): n images (3, size, size) in [-1, 1] (bytes
 * rounded as image_from_chw) on a black background, min(cols, n) per row:
 * width  = c * (size + pad) + pad, height = rows * (size + pad) + pad, image k at
 * x = pad + (k % c) * (size + pad), y = pad + (k / c) * (size + pad).
 * 0, or -1 (err_msg()) on bad arguments. out is allocated; free with image_free. */
int figure_grid(const float *const *imgs, int n, int size, int cols, int pad, Image *out);

/* A labelled column for `attngan examples`: one row per image, [its number "001".. | the image |
 * its caption in white, word-wrapped to text_w pixels (as many lines as fit beside the image, the
 * last ending in "..." when cut)], rows size + 2 apart on black. Without a font the numbers and
 * captions are missing (figure_text's no-font mode). out is allocated; free with image_free. */
#define FIGURE_CAPTION_PX 12
int figure_captioned(const float *const *imgs, const char *const *captions, int n, int size, int text_w, Image *out);

/* One caption's attention row: a black FIGURE_HEADER_H strip with the words (white, clipped to
 * their cells) above [image | pad | map_0 over image | pad | ... | map_k-1 over image | pad],
 * k = min(n_words, FIGURE_MAX_WORDS), each cell S wide, so the figure is
 * (1 + k) * (S + FIGURE_ATT_PAD) by FIGURE_HEADER_H + S.
 * img: (3, S, S) in [-1, 1]; att: at least k maps of (h, w) (word j's map at att + j*h*w);
 * maps of words past n_words are not drawn; a NULL words[j] (or words NULL) draws no label.
 * Each map is upsampled to S x S (bilinear, half-pixel centres, like F.interpolate with
 * align_corners=False), negative values clamped to 0, divided by its own max (an all-zero map
 * stays 0), turned into a grey byte m = (uint8)(255 * v) and pasted over the image byte p as
 * PIL's paste with a constant mask does in build_super_images:
 *     out = DIV255(m * A + p * (255 - A)),  A = FIGURE_ATT_ALPHA = 210,
 * DIV255 rounding like PIL; p = (uint8)((x + 1) * 127.5) (AttnGAN's truncation). */
int figure_attention(const float *img, int S, const float *att, int h, int w, const char *const *words, int n_words,
                     Image *out);

/* n captions' rows (each as figure_attention, own image imgs[i], maps atts[i], words[i] with
 * n_words[i] words) stacked top to bottom, as AttnGAN's super image stacks its samples; the
 * width is the widest row's, shorter rows are padded with black. words may be NULL. */
int figure_attention_rows(const float *const *imgs, int n, int S, const float *const *atts, int h, int w,
                          const char *const *const *words, const int *n_words, Image *out);

/* Draws UTF-8 text with its top-left corner at (x, y) (baseline at y + the font's ascender),
 * px pixels high, in colour (r, g, b), anti-aliased over the image and clipped to it. Without a
 * font it draws nothing and returns 0 (after the one-time warning). -1 (err_msg()) on bad
 * arguments or a FreeType failure. */
int figure_text(Image *img, int x, int y, const char *text, int px, uint8_t r, uint8_t g, uint8_t b);
/* Advance width of text in pixels at px (0 without a font). */
int figure_text_width(const char *text, int px);

/* Uses the font at path from now on. path NULL selects the no-font mode (no warning). A font that
 * cannot be loaded gives -1 with a message naming the path and leaves the no-font mode on. */
int figure_set_font(const char *path);
/* Loads the font now if none is chosen yet ($ATTNGAN_FONT, else FIGURE_DEFAULT_FONT): 0 when a
 * font is ready, -1 with a message naming what is missing (no warning is printed). */
int figure_font_check(void);
/* 1 when text will be drawn. */
int figure_has_font(void);
/* Releases FreeType; the next text draw resolves the font again. */
void figure_font_close(void);

#endif
