/* data.c: `attngan data info --data DIR`: what a CUB data/birds directory holds, as the loaders
 * will see it: images, classes and captions per split, the vocabulary, photos present and
 * missing, caption lengths. */
#include "app.h"
#include "../data/cub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static void split_info(const char *name, const CubSplit *s, int words_num) {
    int n = s->n * CUB_CAPTIONS_PER_IMAGE;
    int *lens = xmalloc((size_t)(n ? n : 1) * sizeof(int));
    long long sum = 0;
    int over = 0;
    for (int i = 0; i < s->n; i++)
        for (int k = 0; k < CUB_CAPTIONS_PER_IMAGE; k++) {
            int l = s->images[i].cap_len[k];
            lens[i * CUB_CAPTIONS_PER_IMAGE + k] = l;
            sum += l;
            over += l > words_num;
        }
    qsort(lens, (size_t)n, sizeof(int), cmp_int);
    printf("%-5s  %6d images  %3d classes  %7d captions  photos present %5d, missing %5d", name, s->n, s->n_classes, n, s->n_present,
           s->n - s->n_present);
    if (s->n_tight) printf(" (%d tight crops)", s->n_tight);
    printf("\n");
    if (n)
        printf("       caption words: mean %.2f, min %d, median %d, p90 %d, p99 %d, max %d; %d (%.1f%%) longer than WORDS_NUM %d\n",
               (double)sum / n, lens[0], lens[n / 2], lens[(int)(n * 0.9)], lens[(int)(n * 0.99)], lens[n - 1], over, 100.0 * over / n,
               words_num);
    free(lens);
}

int cmd_data(int argc, char **argv) {
    const char *dir = NULL, *sub = argc > 1 ? argv[1] : NULL;
    char def[1024];
    int words_num = 18;
    if (!sub || !strcmp(sub, "-h") || !strcmp(sub, "--help") || strcmp(sub, "info")) {
        fprintf(sub && strcmp(sub, "-h") && strcmp(sub, "--help") ? stderr : stdout,
                "usage: attngan data info [--data DIR] [--words-num N]\n"
                "  DIR is AttnGAN's data/birds directory (default: $ATTNGAN_DATA/birds, or ../shared/data/birds).\n"
                "  Prints images, classes and captions per split, the vocabulary size, photos present and\n"
                "  missing, and caption-length statistics.\n");
        return sub && (!strcmp(sub, "-h") || !strcmp(sub, "--help")) ? 0 : 2;
    }
    for (int i = 2; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--data")) dir = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--words-num")) { if (parse_int(argv[++i], &words_num, "--words-num")) return 2; }
        else { fprintf(stderr, "attngan data info: unknown option %s (or missing value)\n", argv[i]); return 2; }
    }
    if (!dir) {
        const char *env = getenv("ATTNGAN_DATA");
        snprintf(def, sizeof def, "%s/birds", env ? env : "../shared/data");
        dir = def;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    Cub cub;
    if (cub_open(&cub, dir)) {
        fprintf(stderr, "attngan data info: %s\n", err_msg());
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("data: %s\n", dir);
    split_info("train", &cub.train, words_num);
    split_info("test", &cub.test, words_num);
    printf("vocabulary: %d words including <end> (%s)\n", cub.vocab.n,
           cub.vocab_from_pickle ? "from captions.pickle" : "built from the train, then test captions");
    printf("photos: %d present, %d missing of %d\n", cub.train.n_present + cub.test.n_present,
           cub.train.n + cub.test.n - cub.train.n_present - cub.test.n_present, cub.train.n + cub.test.n);
    printf("read in %.2f s\n", (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    cub_close(&cub);
    return 0;
}
