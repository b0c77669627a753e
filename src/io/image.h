/* image.h: 8-bit RGB images: decoding JPEG (libjpeg-turbo) and PNG (libpng), PNG encoding, and
 * the PIL operations AttnGAN's data pipeline uses (crop, BILINEAR resize with PIL's antialiasing
 * filter, horizontal flip), then conversion to a [-1, 1] float CHW tensor. */
#ifndef ATTNGAN_IMAGE_H
#define ATTNGAN_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct Image {
    int w, h;             /* pixels */
    uint8_t *data;        /* h * w * 3 bytes, row-major RGB */
} Image;

/* Decodes a JPEG or PNG (by content, not name); grayscale and palette images become RGB, alpha is
 * dropped. 0, or -1 with err_msg() naming the file and the decoder's complaint. */
int image_load(const char *path, Image *out);
int image_decode(const uint8_t *buf, size_t len, const char *name, Image *out);
int image_save_png(const char *path, const Image *img);   /* atomic: temp file + rename */
int image_encode_png(const Image *img, uint8_t **buf, size_t *len);  /* malloc'ed buffer */
/* Baseline JPEG (libjpeg-turbo's defaults, 4:2:0) at quality 1..100; atomic like the PNG writer. */
int image_save_jpeg(const char *path, const Image *img, int quality);
int image_encode_jpeg(const Image *img, int quality, uint8_t **buf, size_t *len);  /* malloc'ed buffer */
void image_free(Image *img);

/* PIL Image.crop((x1, y1, x2, y2)) with integer bounds inside the image; an empty box or one
 * reaching outside is an error (-1, err_msg()). */
int image_crop(const Image *src, int x1, int y1, int x2, int y2, Image *out);
/* PIL Image.resize((w, h), Image.BILINEAR): separable triangle filter whose support widens when
 * downscaling (antialias), with PIL's fixed-point rounding, so the bytes match PIL's. */
void image_resize_bilinear(const Image *src, int w, int h, Image *out);
/* A crop that may reach outside the image: the pixels outside are padded, IMAGE_PAD_EDGE with the
 * nearest edge pixel, IMAGE_PAD_MEAN with the mean colour of the image's outermost ring of pixels.
 * The box must overlap the image and be at most 8x its size; else -1 with err_msg(). */
enum { IMAGE_PAD_EDGE = 1, IMAGE_PAD_MEAN = 2 };
int image_crop_padded(const Image *src, int x1, int y1, int x2, int y2, int mode, Image *out);
void image_flip_horizontal(Image *img);
/* (3, h, w) floats, x / 127.5 - 1 (ToTensor then Normalize(0.5, 0.5)), computed as torchvision
 * does, ((x / 255) - 0.5) / 0.5 with float32 rounding at each step, so the bits match. */
void image_to_chw(const Image *img, float *dst);
/* The inverse, for saving generated images: v = (x + 1) * 127.5 in float32, clamped to
 * [0, 255] (NaN gives 0), rounded half away from zero. */
void image_from_chw(const float *src, int w, int h, Image *out);
/* AttnGAN's own saving, `((x + 1.0) * 127.5).astype(np.uint8)`: the same v, clamped, but
 * truncated; equal to numpy's bytes wherever v lies in [0, 256). */
void image_from_chw_trunc(const float *src, int w, int h, Image *out);

#endif
