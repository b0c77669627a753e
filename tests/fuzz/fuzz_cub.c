/* fuzz_cub: the CUB data/birds directory (src/data/cub.c: the CUB tables, AttnGAN's split and
 * caption pickles, the caption files, the vocabulary). The input is a directory tree packed as
 * fuzz.h describes ("@@ CUB_200_2011/images.txt" lines before each file), unpacked into a scratch
 * directory and opened with cub_open. */
#include "fuzz.h"
#include "../../src/data/cub.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *root = fuzz_unpack_tree(data, size);
    Cub cub;
    if (cub_open(&cub, root) != 0) return 0;
    const CubSplit *splits[2] = {&cub.train, &cub.test};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < splits[s]->n; i++) {
            const CubImage *im = &splits[s]->images[i];
            if (im->class_id < 1 || im->class_id > cub.n_class_names) abort();
            for (int k = 0; k < CUB_CAPTIONS_PER_IMAGE; k++)
                for (int t = 0; t < im->cap_len[k]; t++)
                    if (im->caps[k][t] < 1 || im->caps[k][t] >= cub.vocab.n) abort();
            char path[2048];
            cub_image_path(&cub, im, path, sizeof path);
        }
    cub_close(&cub);
    return 0;
}
