/* data.c: `attngan data info --data DIR`: what a CUB data/birds directory holds, as the loaders
 * will see it: images, classes and captions per split, the vocabulary, photos present and
 * missing, caption lengths. */
#include "app.h"
#include "../data/cub.h"
#include "../data/loader.h"
#include "../io/image.h"
#include "../io/locate.h"
#include "../io/files.h"

#include <dirent.h>
#include <sys/stat.h>

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

/* ------------------------------------------------------------------ data pack */

static int copy_if_present(const char *src_dir, const char *dst_dir, const char *name) {
    char src[4096], dst[4096];
    snprintf(src, sizeof src, "%s/%s", src_dir, name);
    snprintf(dst, sizeof dst, "%s/%s", dst_dir, name);
    struct stat st;
    if (stat(src, &st)) return 0;
    return copy_file_atomic(src, dst);
}

/* every regular file under src (one level of folders: text/<class>/<photo>.txt) into dst */
static int copy_tree(const char *src, const char *dst, int depth, int *n_files) {
    DIR *d = opendir(src);
    if (!d) return err_set("%s: cannot open the folder", src);
    if (mkdir_p(dst)) { closedir(d); return -1; }
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char s[4096], t[4096];
        snprintf(s, sizeof s, "%s/%s", src, e->d_name);
        snprintf(t, sizeof t, "%s/%s", dst, e->d_name);
        struct stat st;
        if (stat(s, &st)) continue;
        if (S_ISDIR(st.st_mode)) rc = depth < 2 ? copy_tree(s, t, depth + 1, n_files) : 0;
        else if (S_ISREG(st.st_mode)) {
            rc = copy_file_atomic(s, t);
            ++*n_files;
        }
    }
    closedir(d);
    return rc;
}

typedef struct Packed {
    const char *key;
    int w, h;
} Packed;

static int cmp_packed(const void *a, const void *b) { return strcmp(((const Packed *)a)->key, ((const Packed *)b)->key); }

/* Packs the present photos of a split: every k-th so that at most max of them (0: all) */
static int pack_split(const Cub *cub, const CubSplit *s, const char *out, int size, int max, int quality, int pad, Packed *pk,
                      int *n_pk, size_t *bytes) {
    int n = s->n_present, take = max > 0 && max < n ? max : n, seen = 0, done = 0;
    for (int i = 0; i < s->n && done < take; i++) {
        const CubImage *im = &s->images[i];
        if (!im->present) continue;
        /* the seen-th present photo is taken when it crosses the next of `take` even steps */
        int pick = (int)((int64_t)(seen + 1) * take / n) > (int)((int64_t)seen * take / n);
        seen++;
        if (!pick) continue;
        Image crop, big;
        if (loader_crop_bird(cub, im, pad, &crop)) return -1;
        int w, h;
        if (crop.w <= crop.h) { w = size; h = (int)((int64_t)size * crop.h / crop.w); }
        else { h = size; w = (int)((int64_t)size * crop.w / crop.h); }
        image_resize_bilinear(&crop, w, h, &big);
        image_free(&crop);
        char path[4096], dir[4096];
        snprintf(path, sizeof path, "%s/CUB_200_2011/images/%s.jpg", out, im->key);
        snprintf(dir, sizeof dir, "%s", path);
        *strrchr(dir, '/') = 0;
        int rc = mkdir_p(dir) || image_save_jpeg(path, &big, quality);
        image_free(&big);
        if (rc) return -1;
        struct stat st;
        if (!stat(path, &st)) *bytes += (size_t)st.st_size;
        pk[*n_pk].key = im->key;
        pk[*n_pk].w = w;
        pk[*n_pk].h = h;
        ++*n_pk;
        done++;
    }
    return 0;
}

/* bounding_boxes.txt of the packed set: a packed photo's box is its whole frame (the loader's
 * square around it is then the photo itself); the others keep their lines */
static int pack_boxes(const char *in, const char *out, Packed *pk, int n_pk) {
    char ip[4096], bp[4096], op[4096];
    snprintf(ip, sizeof ip, "%s/CUB_200_2011/images.txt", in);
    snprintf(bp, sizeof bp, "%s/CUB_200_2011/bounding_boxes.txt", in);
    snprintf(op, sizeof op, "%s/CUB_200_2011/bounding_boxes.txt", out);
    FILE *fi = fopen(ip, "r"), *fb = fopen(bp, "r"), *fo = fopen(op, "w");
    if (!fi || !fb || !fo) {
        if (fi) fclose(fi);
        if (fb) fclose(fb);
        if (fo) fclose(fo);
        return err_set("pack: cannot read %s and %s or write %s", ip, bp, op);
    }
    qsort(pk, (size_t)n_pk, sizeof *pk, cmp_packed);
    char li[4096], lb[4096];
    int line = 0, rc = 0;
    while (fgets(li, sizeof li, fi)) {
        line++;
        if (!fgets(lb, sizeof lb, fb)) { rc = err_set("%s: fewer lines than %s (%d)", bp, ip, line); break; }
        int id;
        char rel[4096];
        if (sscanf(li, "%d %4095s", &id, rel) != 2) { rc = err_set("%s:%d: expected 'id path'", ip, line); break; }
        char *dot = strrchr(rel, '.');
        if (dot) *dot = 0;
        Packed key = {rel, 0, 0}, *hit = bsearch(&key, pk, (size_t)n_pk, sizeof *pk, cmp_packed);
        if (hit) fprintf(fo, "%d 0.0 0.0 %d.0 %d.0\n", id, hit->w, hit->h);
        else fputs(lb, fo);
    }
    fclose(fi);
    fclose(fb);
    if (fclose(fo) && !rc) rc = err_set("%s: write failed", op);
    return rc;
}

static int cmd_data_pack(int argc, char **argv) {
    const char *dir = NULL, *out = NULL, *pad_s = "edge";
    int size = 76, max = 0, quality = 90;
    for (int i = 2; i < argc; i++) {
        int more = i + 1 < argc;
        if (more && !strcmp(argv[i], "--data")) dir = argv[++i];
        else if (more && !strcmp(argv[i], "--out")) out = argv[++i];
        else if (more && !strcmp(argv[i], "--size")) { if (parse_int(argv[++i], &size, "--size")) return 2; }
        else if (more && !strcmp(argv[i], "--max")) { if (parse_int(argv[++i], &max, "--max")) return 2; }
        else if (more && !strcmp(argv[i], "--quality")) { if (parse_int(argv[++i], &quality, "--quality")) return 2; }
        else if (more && !strcmp(argv[i], "--tight-pad")) pad_s = argv[++i];
        else { fprintf(stderr, "attngan data pack: unknown option %s (or missing value)\n", argv[i]); return 2; }
    }
    int pad = !strcmp(pad_s, "edge") ? IMAGE_PAD_EDGE : !strcmp(pad_s, "mean") ? IMAGE_PAD_MEAN : !strcmp(pad_s, "none") ? 0 : -1;
    if (!out || size < 16 || size > 4096 || max < 0 || quality < 1 || quality > 100 || pad < 0) {
        fprintf(stderr, "attngan data pack: needs --out DIR; --size in 16..4096, --max >= 0, --quality in 1..100, "
                        "--tight-pad edge|mean|none\n");
        return 2;
    }
    char def[4096], source[256];
    if (locate_data(dir, NULL, NULL, def, sizeof def, source, sizeof source)) { fprintf(stderr, "attngan data pack: %s\n", err_msg()); return 2; }
    dir = def;
    Cub cub;
    if (cub_open(&cub, dir)) { fprintf(stderr, "attngan data pack: %s (data %s from %s: %s)\n", err_msg(), dir, source, locate_data_hint()); return 2; }
    char sub[4096], sub2[4096];
    int rc = 0, n_text = 0;
    static const char *meta[] = {"classes.txt", "images.txt", "image_class_labels.txt", "train_test_split.txt", "README"};
    snprintf(sub, sizeof sub, "%s/CUB_200_2011", dir);
    snprintf(sub2, sizeof sub2, "%s/CUB_200_2011", out);
    rc = mkdir_p(sub2);
    for (size_t k = 0; !rc && k < sizeof meta / sizeof meta[0]; k++) rc = copy_if_present(sub, sub2, meta[k]);
    static const char *top[] = {"example_captions.txt", "example_filenames.txt", "captions.pickle"};
    for (size_t k = 0; !rc && k < sizeof top / sizeof top[0]; k++) rc = copy_if_present(dir, out, top[k]);
    static const char *splits[] = {"train", "test"};
    for (int k = 0; !rc && k < 2; k++) {
        snprintf(sub, sizeof sub, "%s/%s", dir, splits[k]);
        snprintf(sub2, sizeof sub2, "%s/%s", out, splits[k]);
        int n = 0;
        rc = copy_tree(sub, sub2, 1, &n);
    }
    if (!rc) {
        snprintf(sub, sizeof sub, "%s/text", dir);
        snprintf(sub2, sizeof sub2, "%s/text", out);
        rc = copy_tree(sub, sub2, 0, &n_text);
    }
    Packed *pk = xcalloc((size_t)(cub.train.n + cub.test.n + 1), sizeof *pk);
    int n_pk = 0;
    size_t bytes = 0;
    if (!rc) rc = pack_split(&cub, &cub.train, out, size, max, quality, pad, pk, &n_pk, &bytes);
    int n_train = n_pk;
    if (!rc) rc = pack_split(&cub, &cub.test, out, size, max, quality, pad, pk, &n_pk, &bytes);
    if (!rc) rc = pack_boxes(dir, out, pk, n_pk);
    if (rc) fprintf(stderr, "attngan data pack: %s\n", err_msg());
    else
        printf("packed %d train and %d test photos of %s (the loader's framing, shorter side %d px, JPEG q%d: %.1f MiB), their "
               "metadata and %d caption files into %s\n",
               n_train, n_pk - n_train, dir, size, quality, bytes / 1048576.0, n_text, out);
    free(pk);
    cub_close(&cub);
    return rc ? 1 : 0;
}

int cmd_data(int argc, char **argv) {
    const char *dir = NULL, *sub = argc > 1 ? argv[1] : NULL;
    char def[4096], source[256];
    int words_num = 18;
    if (sub && !strcmp(sub, "pack")) return cmd_data_pack(argc, argv);
    int help = sub && (!strcmp(sub, "-h") || !strcmp(sub, "--help"));
    if (!sub || help || strcmp(sub, "info")) {
        if (sub && !help) fprintf(stderr, "attngan data: unknown subcommand '%s' (the subcommands are info and pack)\n", sub);
        else if (!sub) fprintf(stderr, "attngan data: no subcommand (the subcommands are info and pack)\n");
        fprintf(help ? stdout : stderr,
                "usage: attngan data info [--data DIR] [--words-num N]\n"
                "       attngan data pack [--data DIR] --out DIR2 [--size 76] [--max N] [--quality 90] [--tight-pad edge]\n"
                "  DIR is AttnGAN's data/birds directory (default: $ATTNGAN_DATA/birds, else ../shared/data/birds;\n"
                "  the rule of every command, whose configuration's DATA_DIR comes before ../shared/data/birds).\n"
                "  info: images, classes and captions per split, the vocabulary size, photos present and\n"
                "  missing, and caption-length statistics.\n"
                "  pack: a small copy of DIR that the loaders read as they read DIR, for a machine the data\n"
                "  cannot reach (the GPU device check): the metadata, splits and captions, and at most N photos\n"
                "  per split (evenly spread; default all) already framed as the loader frames them (the box's\n"
                "  square; tight crops padded with --tight-pad), shorter side --size px (76: the loader's input\n"
                "  for 64 px images), as JPEG; their bounding boxes become the whole frame.\n");
        return help ? 0 : 2;
    }
    for (int i = 2; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--data")) dir = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--words-num")) { if (parse_int(argv[++i], &words_num, "--words-num")) return 2; }
        else { fprintf(stderr, "attngan data info: unknown option %s (or missing value)\n", argv[i]); return 2; }
    }
    if (locate_data(dir, NULL, NULL, def, sizeof def, source, sizeof source)) { fprintf(stderr, "attngan data info: %s\n", err_msg()); return 2; }
    dir = def;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    Cub cub;
    if (cub_open(&cub, dir)) {
        fprintf(stderr, "attngan data info: %s (data %s from %s: %s)\n", err_msg(), dir, source, locate_data_hint());
        return 2;
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
