/* fuzz_image: PNG and JPEG decoding (src/io/image.c: libpng, libjpeg-turbo), as the data loader
 * reads photos and `attngan` reads images given to it. The input is the file. On success the
 * image is resized, cropped with padding and converted to a tensor as the loader would. */
#include "fuzz.h"
#include "../../src/io/image.h"

#include <math.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Image img;
    if (image_decode(data, size, "fuzz", &img) != 0) return 0;
    if (img.w < 1 || img.h < 1 || !img.data) abort();
    Image small, crop;
    image_resize_bilinear(&img, 8, 6, &small);
    float *chw = malloc(3 * 8 * 6 * sizeof *chw);
    image_to_chw(&small, chw);
    for (int i = 0; i < 3 * 8 * 6; i++)
        if (!(chw[i] >= -1.0f && chw[i] <= 1.0f)) abort();
    free(chw);
    image_free(&small);
    if (image_crop_padded(&img, -1, -1, img.w / 2 + 1, img.h / 2 + 1, IMAGE_PAD_MEAN, &crop) == 0) image_free(&crop);
    image_free(&img);
    return 0;
}
