/* image.c: 8-bit RGB images for the data pipeline (see image.h).
 *
 * Decoding follows what `PIL.Image.open(path).convert('RGB')` gives with Debian's Pillow 9.4:
 *  - JPEG through libjpeg-turbo with PIL's settings (ISLOW DCT, fancy upsampling, RGB output);
 *    grayscale is replicated; CMYK/YCCK is read with Adobe's inverted polarity as PIL assumes and
 *    converted with PIL's cmyk2rgb arithmetic. Truncated or corrupt entropy data is an error
 *    (libjpeg-turbo only warns about it and pads the image with grey).
 *  - PNG through libpng: 16-bit samples keep their high byte, low bit depths are scaled to 0..255,
 *    palettes are expanded, alpha is dropped without compositing. One deliberate difference:
 *    PIL turns 16-bit grayscale PNGs into mode "I" and convert('RGB') clamps them at 255; we
 *    keep the high byte like every other 16-bit format.
 * Resizing reimplements the arithmetic of Pillow's ImagingResample for BILINEAR (a separable
 * triangle-filter convolution, widened when downscaling, with 22-bit fixed-point coefficients),
 * so its bytes equal Pillow's.
 */
#include "image.h"

#include "../core/error.h"
#include "files.h"

#include <png.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jpeglib.h>
#include <jerror.h>

/* the largest image file read (a CUB photo is under 1 MB) */
#define IMAGE_MAX_FILE ((size_t)256 << 20)

/* Pillow refuses images above twice its MAX_IMAGE_PIXELS (DecompressionBombError): so do we. */
#define IMAGE_MAX_PIXELS 178956970LL

static int check_size(const char *name, long long w, long long h) {
    if (w <= 0 || h <= 0) return err_set("%s: invalid image size %lldx%lld", name, w, h);
    if (w * h > IMAGE_MAX_PIXELS)
        return err_set("%s: image of %lldx%lld pixels is larger than the limit of %lld pixels", name, w, h, IMAGE_MAX_PIXELS);
    return 0;
}

static void image_alloc(Image *img, int w, int h) {
    img->w = w;
    img->h = h;
    img->data = xmalloc((size_t)w * (size_t)h * 3);
}

void image_free(Image *img) {
    if (!img) return;
    free(img->data);
    img->data = NULL;
    img->w = img->h = 0;
}

/* ---------------------------------------------------------------- JPEG */

typedef struct JpegErr {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} JpegErr;

static void jpeg_on_error(j_common_ptr c) {
    JpegErr *e = (JpegErr *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jump, 1);
}

/* Warnings that mean the pixels are not what the file's author encoded. */
static int jpeg_warning_is_fatal(int code) {
    return code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_HUFF_BAD_CODE || code == JWRN_ARITH_BAD_CODE ||
           code == JWRN_MUST_RESYNC || code == JWRN_BOGUS_PROGRESSION || code == JWRN_NOT_SEQUENTIAL;
}

static void jpeg_on_message(j_common_ptr c, int level) {
    if (level >= 0) return; /* trace messages */
    if (jpeg_warning_is_fatal(c->err->msg_code)) jpeg_on_error(c);
    c->err->num_warnings++;
}

/* PIL's MULDIV255: a * b / 255 rounded, in integers. */
static int muldiv255(int a, int b) {
    int t = a * b + 128;
    return ((t >> 8) + t) >> 8;
}

/* One decoded scanline (1, 3 or 4 components) into RGB. CMYK is stored inverted (Adobe): PIL
 * reads it as "CMYK;I" (c = 255 - raw) and converts with r = (255 - k) - c * (255 - k) / 255. */
static void jpeg_row_to_rgb(const uint8_t *in, int comps, int w, uint8_t *out) {
    for (int x = 0; x < w; x++, out += 3) {
        if (comps == 1) {
            out[0] = out[1] = out[2] = in[x];
        } else if (comps == 3) {
            memcpy(out, in + 3 * x, 3);
        } else {
            const uint8_t *p = in + 4 * x;
            int nk = p[3]; /* 255 - (255 - raw k) */
            for (int c = 0; c < 3; c++) {
                int v = nk - muldiv255(255 - p[c], nk);
                out[c] = (uint8_t)(v < 0 ? 0 : v);
            }
        }
    }
}

static J_COLOR_SPACE jpeg_out_space(J_COLOR_SPACE in) {
    switch (in) {
    case JCS_GRAYSCALE: return JCS_GRAYSCALE;
    case JCS_YCbCr:
    case JCS_RGB: return JCS_RGB;
    case JCS_CMYK:
    case JCS_YCCK: return JCS_CMYK;
    default: return JCS_UNKNOWN;
    }
}

typedef struct JpegJob {
    struct jpeg_decompress_struct d;
    JpegErr err;
    uint8_t *row;  /* one scanline as decoded */
    Image img;
} JpegJob;

/* The body of the decode; errors longjmp out of it. Returns 0 or -1 (err_set). */
static int jpeg_run(JpegJob *j, const uint8_t *buf, size_t len, const char *name) {
    struct jpeg_decompress_struct *d = &j->d;
    jpeg_mem_src(d, buf, (unsigned long)len);
    jpeg_read_header(d, TRUE);
    J_COLOR_SPACE out = jpeg_out_space(d->jpeg_color_space);
    if (out == JCS_UNKNOWN)
        return err_set("%s: unsupported JPEG colour space (%d components)", name, d->num_components);
    d->out_color_space = out;
    d->dct_method = JDCT_ISLOW;
    d->do_fancy_upsampling = TRUE;
    if (check_size(name, d->image_width, d->image_height)) return -1;
    jpeg_start_decompress(d);
    int comps = d->output_components, w = (int)d->output_width, h = (int)d->output_height;
    if (comps != 1 && comps != 3 && comps != 4) return err_set("%s: unexpected %d JPEG output components", name, comps);
    j->row = xmalloc((size_t)w * (size_t)comps);
    image_alloc(&j->img, w, h);
    while (d->output_scanline < d->output_height) {
        JSAMPROW rows[1] = {j->row};
        int y = (int)d->output_scanline;
        if (jpeg_read_scanlines(d, rows, 1) != 1) return err_set("%s: JPEG decoder returned no data", name);
        jpeg_row_to_rgb(j->row, comps, w, j->img.data + (size_t)y * w * 3);
    }
    jpeg_finish_decompress(d);
    return 0;
}

static int decode_jpeg(const uint8_t *buf, size_t len, const char *name, Image *out) {
    JpegJob *j = xcalloc(1, sizeof *j);
    j->d.err = jpeg_std_error(&j->err.mgr);
    j->err.mgr.error_exit = jpeg_on_error;
    j->err.mgr.emit_message = jpeg_on_message;
    int rc;
    if (setjmp(j->err.jump)) {
        rc = err_set("%s: corrupt or truncated JPEG: %s", name, j->err.msg);
    } else {
        jpeg_create_decompress(&j->d);
        rc = jpeg_run(j, buf, len, name);
    }
    jpeg_destroy_decompress(&j->d);
    free(j->row);
    if (rc == 0) *out = j->img;
    else image_free(&j->img);
    free(j);
    return rc;
}

/* ---------------------------------------------------------------- PNG */

typedef struct PngSrc {
    const uint8_t *buf;
    size_t len, pos;
    char msg[256];
} PngSrc;

static void png_on_error(png_structp png, png_const_charp msg) {
    PngSrc *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

static void png_read_mem(png_structp png, png_bytep dst, png_size_t n) {
    PngSrc *s = png_get_io_ptr(png);
    if (n > s->len - s->pos) png_error(png, "file is truncated");
    memcpy(dst, s->buf + s->pos, n);
    s->pos += n;
}

typedef struct PngJob {
    png_structp png;
    png_infop info;
    PngSrc src;
    uint8_t *rows_buf;    /* decoded rows, `chans` bytes per pixel */
    png_bytep *rows;
    Image img;
} PngJob;

/* Pixels of `chans` 8-bit channels (gray, gray+alpha, RGB, RGBA) to RGB, alpha dropped. */
static void png_to_rgb(const uint8_t *in, int chans, size_t npix, uint8_t *out) {
    for (size_t i = 0; i < npix; i++, in += chans, out += 3) {
        if (chans <= 2) out[0] = out[1] = out[2] = in[0];
        else memcpy(out, in, 3);
    }
}

/* The body of the decode; libpng errors longjmp out of it. */
static int png_run(PngJob *j, const char *name) {
    png_structp png = j->png;
    png_infop info = j->info;
    png_set_user_limits(png, 65535, 65535);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (check_size(name, w, h)) return -1;
    int type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if (depth == 16) png_set_strip_16(png);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int chans = png_get_channels(png, info);
    if (png_get_bit_depth(png, info) != 8 || chans < 1 || chans > 4)
        return err_set("%s: unsupported PNG layout (%d channels of %d bits)", name, chans, png_get_bit_depth(png, info));
    size_t stride = (size_t)w * (size_t)chans;
    if (png_get_rowbytes(png, info) != stride) return err_set("%s: unexpected PNG row size", name);
    j->rows_buf = xmalloc(stride * h);
    j->rows = xmalloc(sizeof *j->rows * h);
    for (png_uint_32 y = 0; y < h; y++) j->rows[y] = j->rows_buf + stride * y;
    png_read_image(png, j->rows);
    png_read_end(png, NULL);
    image_alloc(&j->img, (int)w, (int)h);
    png_to_rgb(j->rows_buf, chans, (size_t)w * h, j->img.data);
    return 0;
}

static int decode_png(const uint8_t *buf, size_t len, const char *name, Image *out) {
    PngJob *j = xcalloc(1, sizeof *j);
    j->src.buf = buf;
    j->src.len = len;
    int rc = -1;
    j->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &j->src, png_on_error, png_on_warning);
    if (j->png) j->info = png_create_info_struct(j->png);
    if (!j->png || !j->info) {
        err_set("%s: cannot initialise libpng", name);
    } else if (setjmp(png_jmpbuf(j->png))) {
        rc = err_set("%s: corrupt or truncated PNG: %s", name, j->src.msg);
    } else {
        png_set_read_fn(j->png, &j->src, png_read_mem);
        rc = png_run(j, name);
    }
    png_destroy_read_struct(&j->png, j->info ? &j->info : NULL, NULL);
    free(j->rows);
    free(j->rows_buf);
    if (rc == 0) *out = j->img;
    else image_free(&j->img);
    free(j);
    return rc;
}

/* ---------------------------------------------------------------- load / decode */

int image_decode(const uint8_t *buf, size_t len, const char *name, Image *out) {
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memset(out, 0, sizeof *out);
    if (!name) name = "<memory>";
    if (len == 0) return err_set("%s: empty file", name);
    if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff) return decode_jpeg(buf, len, name, out);
    if (len >= 8 && memcmp(buf, png_magic, 8) == 0) return decode_png(buf, len, name, out);
    return err_set("%s: not a JPEG or PNG image (unrecognised first bytes)", name);
}

int image_load(const char *path, Image *out) {
    uint8_t *buf = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    if (!(buf = read_file_bytes(path, IMAGE_MAX_FILE, &len))) return -1;
    int rc = image_decode(buf, len, path, out);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- PNG encoding */

typedef struct PngSink {
    uint8_t *buf;
    size_t len, cap;
    char msg[256];
} PngSink;

static void png_write_mem(png_structp png, png_bytep src, png_size_t n) {
    PngSink *s = png_get_io_ptr(png);
    if (s->len + n > s->cap) {
        while (s->len + n > s->cap) s->cap = s->cap ? s->cap * 2 : 1 << 16;
        s->buf = xrealloc(s->buf, s->cap);
    }
    memcpy(s->buf + s->len, src, n);
    s->len += n;
}

static void png_flush_mem(png_structp png) { (void)png; }

static void png_write_on_error(png_structp png, png_const_charp msg) {
    PngSink *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(png, 1);
}

int image_encode_png(const Image *img, uint8_t **buf, size_t *len) {
    CHECK(img && img->data && img->w > 0 && img->h > 0, "image_encode_png needs a non-empty image");
    PngSink *s = xcalloc(1, sizeof *s);
    png_bytep *rows = xmalloc(sizeof *rows * (size_t)img->h);
    for (int y = 0; y < img->h; y++) rows[y] = img->data + (size_t)y * img->w * 3;
    int rc = -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, s, png_write_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        err_set("PNG encoder: cannot initialise libpng");
    } else if (setjmp(png_jmpbuf(png))) {
        err_set("PNG encoder: %s", s->msg);
    } else {
        png_set_write_fn(png, s, png_write_mem, png_flush_mem);
        png_set_IHDR(png, info, (png_uint_32)img->w, (png_uint_32)img->h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_write_info(png, info);
        png_write_image(png, rows);
        png_write_end(png, NULL);
        rc = 0;
    }
    png_destroy_write_struct(&png, info ? &info : NULL);
    free(rows);
    if (rc == 0) {
        *buf = s->buf;
        *len = s->len;
    } else {
        free(s->buf);
    }
    free(s);
    return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Writes buf to path through a temp file in the same directory, fsync'ed, then renamed. */
static int write_atomic(const char *path, const uint8_t *buf, size_t len) {
    size_t tl = strlen(path) + 32;
    char *tmp = xmalloc(tl);
    snprintf(tmp, tl, "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int rc = 0;
    if (fd < 0) {
        rc = err_set("%s: cannot create %s: %s", path, tmp, strerror(errno));
    } else {
        if (write_all(fd, buf, len) || fsync(fd)) rc = err_set("%s: write failed: %s", path, strerror(errno));
        if (close(fd) && !rc) rc = err_set("%s: close failed: %s", path, strerror(errno));
        if (!rc && rename(tmp, path)) rc = err_set("%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        if (rc) unlink(tmp);
    }
    free(tmp);
    return rc;
}

int image_save_png(const char *path, const Image *img) {
    uint8_t *buf = NULL;
    size_t len = 0;
    if (image_encode_png(img, &buf, &len)) return err_prefix("%s", path);
    int rc = write_atomic(path, buf, len);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- JPEG out */

int image_encode_jpeg(const Image *img, int quality, uint8_t **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    if (img->w <= 0 || img->h <= 0 || quality < 1 || quality > 100)
        return err_set("JPEG: a %dx%d image at quality %d cannot be encoded", img->w, img->h, quality);
    struct jpeg_compress_struct c;
    JpegErr err;
    c.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_on_error;
    unsigned char *mem = NULL;
    unsigned long mem_len = 0;
    if (setjmp(err.jump)) {
        jpeg_destroy_compress(&c);
        free(mem);
        return err_set("JPEG encoder: %s", err.msg);
    }
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &mem, &mem_len);
    c.image_width = (JDIMENSION)img->w;
    c.image_height = (JDIMENSION)img->h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(img->data + (size_t)c.next_scanline * img->w * 3);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    /* libjpeg's buffer comes from malloc: hand it over as ours */
    *buf = mem;
    *len = mem_len;
    return 0;
}

int image_save_jpeg(const char *path, const Image *img, int quality) {
    uint8_t *buf = NULL;
    size_t len = 0;
    if (image_encode_jpeg(img, quality, &buf, &len)) return err_prefix("%s", path);
    int rc = write_atomic(path, buf, len);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- geometry */

int image_crop(const Image *src, int x1, int y1, int x2, int y2, Image *out) {
    memset(out, 0, sizeof *out);
    if (x1 < 0 || y1 < 0 || x2 > src->w || y2 > src->h || x1 >= x2 || y1 >= y2)
        return err_set("crop box (%d, %d, %d, %d) is empty or not inside the %dx%d image", x1, y1, x2, y2, src->w, src->h);
    int w = x2 - x1, h = y2 - y1;
    image_alloc(out, w, h);
    for (int y = 0; y < h; y++)
        memcpy(out->data + (size_t)y * w * 3, src->data + ((size_t)(y + y1) * src->w + x1) * 3, (size_t)w * 3);
    return 0;
}

int image_crop_padded(const Image *src, int x1, int y1, int x2, int y2, int mode, Image *out) {
    memset(out, 0, sizeof *out);
    if (x1 >= x2 || y1 >= y2 || x2 <= 0 || y2 <= 0 || x1 >= src->w || y1 >= src->h || x2 - x1 > 8 * src->w + 16 || y2 - y1 > 8 * src->h + 16)
        return err_set("padded crop box (%d, %d, %d, %d) is empty, misses the %dx%d image or is too large", x1, y1, x2, y2, src->w, src->h);
    uint8_t fill[3] = {0, 0, 0};
    if (mode == IMAGE_PAD_MEAN) { /* the mean colour of the photo's outermost ring of pixels */
        double sum[3] = {0, 0, 0};
        int64_t n = 0;
        for (int y = 0; y < src->h; y++)
            for (int x = 0; x < src->w; x += (y == 0 || y == src->h - 1) ? 1 : (src->w > 1 ? src->w - 1 : 1), n++)
                for (int c = 0; c < 3; c++) sum[c] += src->data[((size_t)y * src->w + x) * 3 + c];
        for (int c = 0; c < 3; c++) fill[c] = (uint8_t)(sum[c] / (double)n + 0.5);
    }
    int w = x2 - x1, h = y2 - y1;
    image_alloc(out, w, h);
    for (int y = 0; y < h; y++) {
        int sy = y + y1, iny = sy >= 0 && sy < src->h;
        sy = sy < 0 ? 0 : sy >= src->h ? src->h - 1 : sy;
        for (int x = 0; x < w; x++) {
            int sx = x + x1, inx = sx >= 0 && sx < src->w;
            sx = sx < 0 ? 0 : sx >= src->w ? src->w - 1 : sx;
            const uint8_t *p = (mode == IMAGE_PAD_EDGE || (inx && iny)) ? src->data + ((size_t)sy * src->w + sx) * 3 : fill;
            memcpy(out->data + ((size_t)y * w + x) * 3, p, 3);
        }
    }
    return 0;
}

void image_flip_horizontal(Image *img) {
    for (int y = 0; y < img->h; y++) {
        uint8_t *row = img->data + (size_t)y * img->w * 3;
        for (int a = 0, b = img->w - 1; a < b; a++, b--) {
            for (int c = 0; c < 3; c++) {
                uint8_t t = row[3 * a + c];
                row[3 * a + c] = row[3 * b + c];
                row[3 * b + c] = t;
            }
        }
    }
}

/* ---------------------------------------------------------------- Pillow's BILINEAR resample */

#define RS_PRECISION_BITS (32 - 8 - 2)

/* Filter taps of one axis: for output i, taps k[i*ksize + j] (fixed point) apply to input
 * samples first[i] + j, j < count[i]. */
typedef struct ResampleTaps {
    int ksize;
    int *first, *count;
    int32_t *k;
} ResampleTaps;

static double triangle(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Double-precision weights normalised to sum 1, then rounded half away from zero to 22 bits,
 * with Pillow's exact order of operations (center, bounds, (x - center + 0.5) / filterscale). */
static void taps_init(ResampleTaps *t, int in_size, int out_size) {
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale, ss = 1.0 / filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *w = xmalloc(sizeof *w * ksize);
    t->ksize = ksize;
    t->first = xmalloc(sizeof *t->first * out_size);
    t->count = xmalloc(sizeof *t->count * out_size);
    t->k = xcalloc((size_t)out_size * ksize, sizeof *t->k);
    for (int i = 0; i < out_size; i++) {
        double center = (i + 0.5) * scale, total = 0.0;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in_size) hi = in_size;
        for (int j = 0; j < hi - lo; j++) total += w[j] = triangle((j + lo - center + 0.5) * ss);
        for (int j = 0; j < hi - lo; j++) {
            double v = total != 0.0 ? w[j] / total : w[j];
            t->k[(size_t)i * ksize + j] = (int32_t)(v < 0 ? -0.5 + v * (1 << RS_PRECISION_BITS) : 0.5 + v * (1 << RS_PRECISION_BITS));
        }
        t->first[i] = lo;
        t->count[i] = hi - lo;
    }
    free(w);
}

static void taps_free(ResampleTaps *t) {
    free(t->first);
    free(t->count);
    free(t->k);
}

static uint8_t clip_fixed(int32_t acc) {
    if (acc < 0) return 0;
    acc >>= RS_PRECISION_BITS;
    return (uint8_t)(acc > 255 ? 255 : acc);
}

/* Horizontal pass over rows [y0, y0 + out->h) of src into out (out->w already the target width). */
static void resample_rows(const Image *src, int y0, const ResampleTaps *t, Image *out) {
    for (int y = 0; y < out->h; y++) {
        const uint8_t *in = src->data + (size_t)(y + y0) * src->w * 3;
        uint8_t *o = out->data + (size_t)y * out->w * 3;
        for (int x = 0; x < out->w; x++) {
            const int32_t *k = t->k + (size_t)x * t->ksize;
            const uint8_t *p = in + (size_t)t->first[x] * 3;
            int32_t a0 = 1 << (RS_PRECISION_BITS - 1), a1 = a0, a2 = a0;
            for (int j = 0; j < t->count[x]; j++, p += 3) {
                a0 += p[0] * k[j];
                a1 += p[1] * k[j];
                a2 += p[2] * k[j];
            }
            o[3 * x] = clip_fixed(a0);
            o[3 * x + 1] = clip_fixed(a1);
            o[3 * x + 2] = clip_fixed(a2);
        }
    }
}

/* Vertical pass: output row y sums src rows first[y] - y0 + j (row by row, for the cache; the
 * integer sums are the same in any order). */
static void resample_cols(const Image *src, int y0, const ResampleTaps *t, Image *out) {
    size_t stride = (size_t)src->w * 3;
    int32_t *acc = xmalloc(sizeof *acc * stride);
    for (int y = 0; y < out->h; y++) {
        const int32_t *k = t->k + (size_t)y * t->ksize;
        const uint8_t *base = src->data + (size_t)(t->first[y] - y0) * stride;
        for (size_t x = 0; x < stride; x++) acc[x] = 1 << (RS_PRECISION_BITS - 1);
        for (int j = 0; j < t->count[y]; j++) {
            const uint8_t *row = base + (size_t)j * stride;
            for (size_t x = 0; x < stride; x++) acc[x] += row[x] * k[j];
        }
        uint8_t *o = out->data + (size_t)y * stride;
        for (size_t x = 0; x < stride; x++) o[x] = clip_fixed(acc[x]);
    }
    free(acc);
}

/* Like Pillow: horizontal pass first (only on the source rows the vertical pass reads, values
 * clipped to 8 bits in between), then the vertical pass; a pass is skipped when its size is
 * unchanged. */
void image_resize_bilinear(const Image *src, int w, int h, Image *out) {
    CHECK(src && src->data && src->w > 0 && src->h > 0 && w > 0 && h > 0, "resize of a %dx%d image to %dx%d",
          src ? src->w : 0, src ? src->h : 0, w, h);
    CHECK(out != src, "image_resize_bilinear cannot resize in place");
    ResampleTaps tv;
    taps_init(&tv, src->h, h);
    int y_first = tv.first[0], y_last = tv.first[h - 1] + tv.count[h - 1];
    Image tmp = {0};
    const Image *cur = src;
    int y0 = 0;
    if (w != src->w) {
        ResampleTaps th;
        taps_init(&th, src->w, w);
        image_alloc(&tmp, w, y_last - y_first);
        resample_rows(src, y_first, &th, &tmp);
        taps_free(&th);
        cur = &tmp;
        y0 = y_first;
    }
    if (h != src->h) {
        image_alloc(out, cur->w, h);
        resample_cols(cur, y0, &tv, out);
        image_free(&tmp);
    } else if (cur == &tmp) {
        *out = tmp;
    } else {
        image_alloc(out, src->w, src->h);
        memcpy(out->data, src->data, (size_t)src->w * src->h * 3);
    }
    taps_free(&tv);
}

/* ---------------------------------------------------------------- float conversions */

/* torchvision: ToTensor divides by 255 in float32, Normalize(0.5, 0.5) subtracts 0.5 and divides
 * by 0.5, each step rounded to float32; a table of the 256 results reproduces it bit for bit. */
static void chw_table(float lut[256]) {
    for (int i = 0; i < 256; i++) {
        float t = (float)i / 255.0f;
        t = t - 0.5f;
        lut[i] = t / 0.5f;
    }
}

void image_to_chw(const Image *img, float *dst) {
    float lut[256];
    chw_table(lut);
    size_t plane = (size_t)img->w * img->h;
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++) dst[c * plane + i] = lut[img->data[3 * i + c]];
}

/* v = (x + 1) * 127.5 in float32, clamped to [0, 255] (NaN becomes 0). */
static float chw_to_level(float x) {
    float v = (x + 1.0f) * 127.5f;
    if (!(v > 0.0f)) return 0.0f;
    return v > 255.0f ? 255.0f : v;
}

static void from_chw(const float *src, int w, int h, Image *out, int round) {
    CHECK(w > 0 && h > 0, "image_from_chw of a %dx%d image", w, h);
    image_alloc(out, w, h);
    size_t plane = (size_t)w * h;
    for (size_t i = 0; i < plane; i++) {
        for (int c = 0; c < 3; c++) {
            float v = chw_to_level(src[c * plane + i]);
            out->data[3 * i + c] = (uint8_t)(round ? roundf(v) : v);
        }
    }
}

void image_from_chw(const float *src, int w, int h, Image *out) { from_chw(src, w, h, out, 1); }

void image_from_chw_trunc(const float *src, int w, int h, Image *out) { from_chw(src, w, h, out, 0); }
