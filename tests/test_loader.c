/* test_loader.c: the batch loader: fixed-seed batches identical across runs and across 1 and 4
 * loader threads, AttnGAN's sample pipeline (shapes, value range, sorting by caption length), and
 * clear errors for a corrupt photo, a bounding box outside its image and missing photos (on a
 * generated miniature layout), plus the real birds with --only-available. */
#include "test.h"
#include "../src/data/loader.h"
#include "../src/io/image.h"

#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *data_root(char *buf, int len) {
    const char *env = getenv("ATTNGAN_DATA");
    snprintf(buf, len, "%s/birds", env ? env : "../shared/data");
    char probe[1200];
    snprintf(probe, sizeof probe, "%s/train/filenames.pickle", buf);
    return access(probe, R_OK) == 0 ? buf : NULL;
}

/* Runs `n` batches and returns a checksum over every byte of them. */
static uint64_t run_batches(const Cub *cub, const CubSplit *split, LoaderConfig *cfg, int n, int *err) {
    Loader *l;
    *err = 0;
    if (loader_open(&l, cub, split, cfg)) { *err = 1; printf("  loader_open: %s\n", err_msg()); return 0; }
    uint64_t h = 1469598103934665603ULL;
    for (int k = 0; k < n; k++) {
        const Batch *b;
        if (loader_next(l, &b)) { *err = 2; printf("  loader_next: %s\n", err_msg()); break; }
        for (int s = 0; s < b->n_scales; s++) {
            const unsigned char *p = (const unsigned char *)b->imgs[s];
            size_t bytes = (size_t)b->B * 3 * b->sizes[s] * b->sizes[s] * sizeof(float);
            for (size_t i = 0; i < bytes; i++) h = (h ^ p[i]) * 1099511628211ULL;
        }
        const unsigned char *c = (const unsigned char *)b->captions;
        for (size_t i = 0; i < (size_t)b->B * b->T * sizeof(int64_t); i++) h = (h ^ c[i]) * 1099511628211ULL;
        for (int i = 0; i < b->B; i++) h = (h ^ (uint64_t)(b->cap_lens[i] * 31 + b->image_index[i])) * 1099511628211ULL;
    }
    loader_close(l);
    return h;
}

static void test_real_data(void) {
    char root[1024];
    if (!data_root(root, sizeof root)) { test_skip("no ../shared/data/birds (set ATTNGAN_DATA)"); return; }
    Cub cub;
    if (!EXPECT(cub_open(&cub, root) == 0, "cub_open: %s", err_msg())) return;
    LoaderConfig cfg;
    loader_config_default(&cfg);
    cfg.batch_size = 6;
    cfg.seed = 42;
    /* missing photos are an error by default, naming the first and the count */
    Loader *l;
    int rc = loader_open(&l, &cub, &cub.train, &cfg);
    EXPECT(rc == -1 && strstr(err_msg(), "missing") && strstr(err_msg(), ".jpg") && strstr(err_msg(), "--only-available"),
           "missing photos: %s", rc ? err_msg() : "opened");
    if (rc == 0) loader_close(l);
    cfg.only_available = 1;
    cfg.threads = 1;
    int e1, e2, e3;
    uint64_t h1 = run_batches(&cub, &cub.train, &cfg, 3, &e1);
    uint64_t h1b = run_batches(&cub, &cub.train, &cfg, 3, &e2);
    cfg.threads = 4;
    cfg.prefetch = 3;
    uint64_t h4 = run_batches(&cub, &cub.train, &cfg, 3, &e3);
    EXPECT(!e1 && !e2 && !e3, "loader errors %d %d %d", e1, e2, e3);
    EXPECT(h1 == h1b, "two runs with the same seed differ");
    EXPECT(h1 == h4, "1 and 4 loader threads give different batches");
    /* resume: starting at batch 2 gives what the third batch of a fresh run is */
    cfg.threads = 2;
    {
        Loader *la, *lb;
        const Batch *ba, *bb;
        LoaderConfig c2 = cfg;
        c2.start_batch = 2;
        if (loader_open(&la, &cub, &cub.train, &cfg) == 0 && loader_open(&lb, &cub, &cub.train, &c2) == 0) {
            loader_next(la, &ba);
            loader_next(la, &ba);
            loader_next(la, &ba);
            loader_next(lb, &bb);
            int same = ba->index == bb->index && ba->epoch == bb->epoch &&
                       memcmp(ba->imgs[0], bb->imgs[0], (size_t)ba->B * 3 * 64 * 64 * sizeof(float)) == 0 &&
                       memcmp(ba->captions, bb->captions, (size_t)ba->B * ba->T * sizeof(int64_t)) == 0;
            EXPECT(same, "a loader started at batch 2 differs from batch 2 of a fresh run");
            loader_close(la);
            loader_close(lb);
        }
    }
    /* shards (data-parallel ranks): batch k of shards 0 and 1 of batch 3 are the samples of
     * batch k of one loader of batch 6, the same images, captions and pixels, in two halves */
    {
        Loader *lf, *ls[2];
        LoaderConfig cs = cfg;
        cs.batch_size = 3;
        cs.shard_count = 2;
        int ok_open = loader_open(&lf, &cub, &cub.train, &cfg) == 0;
        cs.shard_index = 0;
        ok_open &= loader_open(&ls[0], &cub, &cub.train, &cs) == 0;
        cs.shard_index = 1;
        ok_open &= loader_open(&ls[1], &cub, &cub.train, &cs) == 0;
        if (EXPECT(ok_open, "shard loaders: %s", err_msg())) {
            EXPECT(loader_batches_per_epoch(ls[1]) == loader_batches_per_epoch(lf), "shards: %d steps per epoch, one loader %d",
                   loader_batches_per_epoch(ls[1]), loader_batches_per_epoch(lf));
            int found = 0, total = 0;
            for (int k = 0; k < 2; k++) {
                const Batch *bf, *bs[2];
                loader_next(lf, &bf);
                loader_next(ls[0], &bs[0]);
                loader_next(ls[1], &bs[1]);
                for (int h = 0; h < 2; h++)
                    for (int i = 0; i < 3; i++, total++)
                        for (int j = 0; j < bf->B; j++)
                            if (bf->image_index[j] == bs[h]->image_index[i] && bf->caption_index[j] == bs[h]->caption_index[i] &&
                                !memcmp(bf->imgs[0] + (size_t)j * 3 * 64 * 64, bs[h]->imgs[0] + (size_t)i * 3 * 64 * 64, 3 * 64 * 64 * sizeof(float)) &&
                                !memcmp(bf->captions + (size_t)j * bf->T, bs[h]->captions + (size_t)i * bf->T, (size_t)bf->T * sizeof(int64_t))) {
                                found++;
                                break;
                            }
            }
            EXPECT(found == total && total == 12, "shards: %d of %d samples are one loader's, bit for bit", found, total);
            loader_close(lf);
            loader_close(ls[0]);
            loader_close(ls[1]);
        }
    }
    cfg.seed = 43;
    uint64_t h5 = run_batches(&cub, &cub.train, &cfg, 3, &e1);
    EXPECT(h5 != h1, "another seed gives the same batches");
    /* the contents of one batch */
    cfg.seed = 42;
    if (loader_open(&l, &cub, &cub.train, &cfg) == 0) {
        const Batch *b;
        EXPECT(loader_samples(l) == cub.train.n_present, "samples %d, present %d", loader_samples(l), cub.train.n_present);
        EXPECT(loader_batches_per_epoch(l) == cub.train.n_present / 6, "batches per epoch %d", loader_batches_per_epoch(l));
        if (EXPECT(loader_next(l, &b) == 0, "loader_next: %s", err_msg())) {
            int sorted = 1, lens_ok = 1, range_ok = 1;
            for (int i = 0; i < b->B; i++) {
                if (i && b->cap_lens[i] > b->cap_lens[i - 1]) sorted = 0;
                if (b->cap_lens[i] < 1 || b->cap_lens[i] > 18) lens_ok = 0;
                for (int t = 0; t < b->T; t++)
                    if ((t < b->cap_lens[i]) != (b->captions[i * b->T + t] != 0)) lens_ok = 0;
            }
            for (int s = 0; s < 3; s++) {
                EXPECT(b->sizes[s] == 64 << s, "scale %d is %d px", s, b->sizes[s]);
                int64_t n = (int64_t)b->B * 3 * b->sizes[s] * b->sizes[s];
                float lo = 1, hi = -1;
                for (int64_t i = 0; i < n; i++) { lo = fminf(lo, b->imgs[s][i]); hi = fmaxf(hi, b->imgs[s][i]); }
                if (lo < -1.0f || hi > 1.0f || hi - lo < 0.5f) range_ok = 0;
            }
            EXPECT(sorted, "batch not sorted by caption length");
            EXPECT(lens_ok, "caption lengths and padding disagree");
            EXPECT(range_ok, "images outside [-1, 1] or flat");
            int cls_ok = 1;
            for (int i = 0; i < b->B; i++) cls_ok &= b->class_ids[i] == cub.train.images[b->image_index[i]].class_id;
            EXPECT(cls_ok, "class ids do not follow the images");
        }
        loader_close(l);
    }
    /* EXTRA.TIGHT_CROP_PAD: a tight crop padded to AttnGAN's framing differs from the stretched
     * photo and has the padding's edge pixels in its corner; other photos are unchanged */
    int ti = -1, ni = -1;
    for (int i = 0; i < cub.train.n && (ti < 0 || ni < 0); i++) {
        if (cub.train.images[i].tight && ti < 0) ti = i;
        if (cub.train.images[i].present && !cub.train.images[i].tight && ni < 0) ni = i;
    }
    if (EXPECT(ti >= 0 && ni >= 0, "a tight crop and a framed photo in the data")) {
        enum { S = 64 };
        static float img[4][3 * S * S];
        int64_t caps[64];
        int lens[1], ii[1], ci[1];
        int64_t cls[1];
        LoaderConfig pc;
        loader_config_default(&pc);
        pc.base_size = S;
        pc.branch_num = 1;
        pc.augment = 0;
        for (int k = 0; k < 4; k++) {
            Batch b;
            memset(&b, 0, sizeof b);
            b.B = 1; b.T = 18; b.n_scales = 1; b.sizes[0] = S; b.imgs[0] = img[k];
            b.captions = caps; b.cap_lens = lens; b.class_ids = cls; b.image_index = ii; b.caption_index = ci;
            pc.tight_pad = k % 2 ? IMAGE_PAD_EDGE : 0;
            EXPECT(loader_make_sample(&cub, &cub.train.images[k < 2 ? ti : ni], &pc, 1, &b, 0) == 0, "padded sample: %s", err_msg());
        }
        EXPECT(memcmp(img[0], img[1], sizeof img[0]) != 0, "a tight crop padded differs from the stretched photo");
        /* padded: the top-left corner lies outside the photo, so its row 0 repeats one colour */
        int flat = 1;
        for (int c = 0; c < 3; c++)
            for (int x = 1; x < 4; x++) flat &= fabsf(img[1][c * S * S + x] - img[1][c * S * S]) < 1e-6f;
        EXPECT(flat, "the padded corner repeats the edge pixel");
        EXPECT(memcmp(img[2], img[3], sizeof img[2]) == 0, "a photo with background is cropped the same with or without padding");
    }
    cub_close(&cub);
}

/* A one-photo layout in a temp dir: a corrupt JPEG and a box outside the image are clear errors. */
static void test_bad_samples(void) {
    char dir[256], path[1024];
    snprintf(dir, sizeof dir, "%s/attngan_loader_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    CHECK(mkdtemp(dir), "mkdtemp");
    snprintf(path, sizeof path, "%s/CUB_200_2011", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/CUB_200_2011/images", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/CUB_200_2011/images/001.A", dir);
    mkdir(path, 0755);
    Cub cub;
    memset(&cub, 0, sizeof cub);
    cub.root = dir;
    CubImage im;
    memset(&im, 0, sizeof im);
    im.key = "001.A/a_1";
    im.class_id = 1;
    int64_t ids[5] = {3, 4, 5, 6, 7};
    for (int k = 0; k < CUB_CAPTIONS_PER_IMAGE; k++) { im.caps[k] = ids; im.cap_len[k] = 5; }
    LoaderConfig cfg;
    loader_config_default(&cfg);
    cfg.batch_size = 1;
    cfg.branch_num = 1;
    Batch b;
    memset(&b, 0, sizeof b);
    float imgs[3 * 64 * 64];
    int64_t caps[18];
    int lens[1], ii[1], ci[1];
    int64_t cls[1];
    b.B = 1; b.T = 18; b.n_scales = 1; b.sizes[0] = 64; b.imgs[0] = imgs;
    b.captions = caps; b.cap_lens = lens; b.class_ids = cls; b.image_index = ii; b.caption_index = ci;
    char jpg[1024];
    cub_image_path(&cub, &im, jpg, sizeof jpg);
    /* a valid 120x90 image (PNG bytes: the decoder goes by content) with a box inside: works */
    Image ok = {120, 90, xcalloc(120 * 90 * 3, 1)};
    for (int i = 0; i < 120 * 90 * 3; i++) ok.data[i] = (uint8_t)(i * 7);
    CHECK(image_save_png(jpg, &ok) == 0, "save: %s", err_msg());
    im.bbox[0] = 10; im.bbox[1] = 5; im.bbox[2] = 80; im.bbox[3] = 70;
    EXPECT(loader_make_sample(&cub, &im, &cfg, 1, &b, 0) == 0, "a good sample failed: %s", err_msg());
    /* the box outside the image */
    im.bbox[0] = 130; im.bbox[2] = 80; /* starts right of the 120 px image */
    int rc = loader_make_sample(&cub, &im, &cfg, 1, &b, 0);
    EXPECT(rc == -1 && strstr(err_msg(), "outside") && strstr(err_msg(), "a_1.jpg"), "box outside the image: %s", rc ? err_msg() : "accepted");
    /* a corrupt JPEG */
    FILE *f = fopen(jpg, "wb");
    unsigned char junk[600] = {0xFF, 0xD8, 0xFF, 0xE0};
    for (int i = 4; i < 600; i++) junk[i] = (unsigned char)(i * 37 + 11);
    fwrite(junk, 1, sizeof junk, f);
    fclose(f);
    im.bbox[0] = 10;
    rc = loader_make_sample(&cub, &im, &cfg, 1, &b, 0);
    EXPECT(rc == -1 && strstr(err_msg(), "a_1.jpg"), "corrupt JPEG: %s", rc ? err_msg() : "accepted");
    image_free(&ok);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) printf("note: could not remove %s\n", dir);
}

int main(void) {
    test_begin("test_loader");
    test_bad_samples();
    test_real_data();
    return test_end();
}
