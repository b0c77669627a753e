/* test_keras_inception.c: keras_inception_load (the nsfwjs Keras InceptionV3, a TF.js layers
 * model) and the image encoder's Keras convention against the PyTorch oracle
 * ../shared/reference/keras_inception.py on real CUB photos (fixture written by
 * tests/fixtures/gen_keras_inception.py, whose docstring gives the exact preprocessing), plus
 * clear errors for a corrupted model.json and a truncated weights.bin.
 * Inputs: $ATTNGAN_INCEPTION (default ../shared/models/inception_v3_nsfwjs) and the photos under
 * $ATTNGAN_DATA/birds (default ../shared/data); either absent: a visible skip. */
#include "test.h"
#include "../src/io/image.h"
#include "../src/nn/keras_inception.h"

#include <cjson/cJSON.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOL 1e-4                      /* norm-relative, per image and per statistic */
#define MAX_IMAGES 8
#define MIXED7_N (768 * 17 * 17)

static char g_dir[256];               /* scratch directory for the corrupted models */

static const char *model_dir(void) {
    return getenv("ATTNGAN_INCEPTION") ? getenv("ATTNGAN_INCEPTION") : "../shared/models/inception_v3_nsfwjs";
}
static const char *data_root(void) { return getenv("ATTNGAN_DATA") ? getenv("ATTNGAN_DATA") : "../shared/data"; }

static int model_present(void) {
    char p[512];
    snprintf(p, sizeof p, "%s/model.json", model_dir());
    if (access(p, R_OK) == 0) return 1;
    test_skip("pretrained Keras Inception not found at %s (tools/get_inception.sh writes it)", model_dir());
    return 0;
}

static void encoder_new(ImageEncoder *ie) {
    ModelConfig cfg;
    model_config_default(&cfg);
    cfg.embedding_dim = 16;
    image_encoder_init(ie, &cfg);
}

/* ---------------------------------------------------------------- errors */

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = xmalloc((size_t)n + 1);
    CHECK(fread(b, 1, (size_t)n, f) == (size_t)n, "short read of %s", path);
    fclose(f);
    b[n] = 0;
    *len = (size_t)n;
    return b;
}

static void spit(const char *path, const char *data, size_t len) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL && fwrite(data, 1, len, f) == len && fclose(f) == 0, "cannot write %s", path);
}

/* <g_dir>/<sub>/ with model.json = the real one with `from` replaced by `to` (NULL: unchanged)
 * and weights.bin = the real one cut to `cut` bytes fewer (0: a symlink to it). */
static const char *make_model(const char *sub, const char *from, const char *to, size_t cut) {
    static char dir[512];
    char src[512], dst[600];
    snprintf(dir, sizeof dir, "%s/%s", g_dir, sub);
    CHECK(mkdir(dir, 0700) == 0, "mkdir %s", dir);
    size_t len;
    snprintf(src, sizeof src, "%s/model.json", model_dir());
    char *json = slurp(src, &len);
    char *at = from ? strstr(json, from) : NULL;
    CHECK(!from || at, "model.json lacks %s", from);
    snprintf(dst, sizeof dst, "%s/model.json", dir);
    FILE *f = fopen(dst, "wb");
    CHECK(f != NULL, "cannot write %s", dst);
    if (at) {
        fwrite(json, 1, (size_t)(at - json), f);
        fputs(to, f);
        fputs(at + strlen(from), f);
    } else {
        fwrite(json, 1, len, f);
    }
    fclose(f);
    free(json);
    snprintf(src, sizeof src, "%s/weights.bin", model_dir());
    snprintf(dst, sizeof dst, "%s/weights.bin", dir);
    if (!cut) {
        char abs[4096];
        CHECK(realpath(src, abs) != NULL, "realpath %s", src);
        CHECK(symlink(abs, dst) == 0, "symlink %s", dst);
    } else {
        char *w = slurp(src, &len);
        spit(dst, w, len - cut);
        free(w);
    }
    return dir;
}

/* Loading dir must fail with a message holding every string of want (NULL-terminated), and
 * leave the encoder as it was. */
static void expect_load_error(const char *what, const char *dir, const char *const *want) {
    ImageEncoder ie;
    encoder_new(&ie);
    ParamEntry *e = paramset_find(&ie.ps, "Conv2d_1a_3x3.conv.weight");
    float before = e->t.data[0];
    int rc = keras_inception_load(&ie, dir);
    const char *msg = rc ? err_msg() : "(no error)";
    int has = rc != 0;
    for (int i = 0; want[i]; i++) has = has && strstr(msg, want[i]) != NULL;
    EXPECT(has, "%s: error message \"%s\" lacks an expected part", what, msg);
    EXPECT(ie.convention == INCEPTION_TORCHVISION && e->t.data[0] == before && !e->loaded,
           "%s: a failed load changed the encoder", what);
    printf("  %s: %s\n", what, msg);
    image_encoder_free(&ie);
}

static void error_tests(void) {
    snprintf(g_dir, sizeof g_dir, "%s/attngan_keras_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    CHECK(mkdtemp(g_dir), "mkdtemp");
    expect_load_error("missing directory", "/nonexistent/inception", (const char *[]){"model.json", "cannot open", NULL});
    /* conv2d_5 (80 -> 192, 3x3) with in/out swapped: same byte size, wrong twin shape */
    const char *d = make_model("swapped", "\"conv2d_5/kernel\", \"shape\": [3, 3, 80, 192]",
                               "\"conv2d_5/kernel\", \"shape\": [3, 3, 192, 80]", 0);
    expect_load_error("kernel shape swapped", d,
                      (const char *[]){"model.json", "conv2d_5/kernel", "[3, 3, 192, 80]", "Conv2d_4a_3x3.conv.weight",
                                       "[3, 3, 80, 192]", NULL});
    d = make_model("zero_dim", "\"batch_normalization_3/beta\", \"shape\": [64]",
                   "\"batch_normalization_3/beta\", \"shape\": [0]", 0);
    expect_load_error("zero shape entry", d, (const char *[]){"model.json", "batch_normalization_3/beta", "shape", NULL});
    d = make_model("truncated", NULL, NULL, 1000);
    expect_load_error("truncated weights.bin", d, (const char *[]){"weights.bin", "truncated", "needs bytes", NULL});
    d = make_model("bad_json", "\"weightsManifest\"", "\"weightsManifest\" [", 0);
    expect_load_error("broken JSON", d, (const char *[]){"model.json", "not valid JSON", NULL});
}

static void remove_scratch(void) {
    const char *subs[] = {"swapped", "zero_dim", "truncated", "bad_json"};
    char p[600];
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        snprintf(p, sizeof p, "%s/%s/model.json", g_dir, subs[i]);
        unlink(p);
        snprintf(p, sizeof p, "%s/%s/weights.bin", g_dir, subs[i]);
        unlink(p);
        snprintf(p, sizeof p, "%s/%s", g_dir, subs[i]);
        rmdir(p);
    }
    rmdir(g_dir);
}

/* ---------------------------------------------------------------- features */

typedef struct Photos {
    int n, size;
    Tensor *imgs;                     /* (n, 3, size, size) in [-1, 1] */
} Photos;

/* Decodes and PIL-resizes photo i into p->imgs; checks its pixels against the fixture's sums. */
static int load_photo(Photos *p, int i, const char *rel, const int64_t *sum, const int64_t *wsum) {
    char path[1024];
    snprintf(path, sizeof path, "%s/birds/CUB_200_2011/images/%s", data_root(), rel);
    Image im, small;
    if (image_load(path, &im)) {
        test_skip("CUB photo absent or unreadable: %s", err_msg());
        return -1;
    }
    image_resize_bilinear(&im, p->size, p->size, &small);
    int64_t s = 0, ws = 0, n = (int64_t)p->size * p->size * 3;
    for (int64_t k = 0; k < n; k++) {
        s += small.data[k];
        ws += (int64_t)small.data[k] * (k % 65521 + 1);
    }
    EXPECT(s == sum[i] && ws == wsum[i], "%s: the %dx%d pixels differ from PIL's (sum %lld vs %lld)", rel, p->size,
           p->size, (long long)s, (long long)sum[i]);
    image_to_chw(&small, p->imgs->data + (int64_t)i * 3 * p->size * p->size);
    image_free(&im);
    image_free(&small);
    return 0;
}

/* The fixture's photos (metadata "images", "size"); 0, or -1 after a skip. */
static int load_photos(SafeTensors *fx, Photos *p) {
    cJSON *list = cJSON_Parse(st_meta(fx, "images") ? st_meta(fx, "images") : "");
    const char *size = st_meta(fx, "size");
    CHECK(cJSON_IsArray(list) && size, "keras_inception fixture: metadata images / size missing");
    p->n = cJSON_GetArraySize(list);
    p->size = atoi(size);
    CHECK(p->n > 0 && p->n <= MAX_IMAGES && p->size > 0, "keras_inception fixture: bad metadata");
    int64_t sum[MAX_IMAGES], wsum[MAX_IMAGES];
    if (st_read_i64(fx, "pixels_sum", sum, p->n) || st_read_i64(fx, "pixels_wsum", wsum, p->n)) FAIL("%s", err_msg());
    p->imgs = tensor_alloc(4, (int[]){p->n, 3, p->size, p->size}, 0);
    int i = 0, rc = 0;
    for (const cJSON *e = list->child; e && !rc; e = e->next, i++) rc = load_photo(p, i, e->valuestring, sum, wsum);
    cJSON_Delete(list);
    return rc;
}

/* Worst per-image rel err of got (n values per image, row stride gs) vs the fixture's key; each image
 * EXPECTed within tol (tol 0: measured only). */
static double compare(const char *what, const float *got, int64_t gs, SafeTensors *fx, const char *key, int n_img,
                      int64_t n, double tol) {
    float *want = xmalloc((size_t)(n_img * n) * sizeof(float));
    if (st_read_f32(fx, key, want, n_img * n)) FAIL("%s", err_msg());
    double worst = 0, mx;
    for (int i = 0; i < n_img; i++) {
        double r = rel_err(got + i * gs, want + i * n, n, &mx);
        if (r > worst) worst = r;
        if (tol > 0) EXPECT(r <= tol, "%s image %d: rel err %.3g (max abs %.3g), tolerance %.1g", what, i, r, mx, tol);
    }
    free(want);
    return worst;
}

/* Mixed_6e statistics of every image: channel means, norms, the fixture's sampled values. */
static void mixed7_stats(SafeTensors *fx, const Tensor *m7, int n_img, float *mean, float *norm, float *sample, int64_t k) {
    int64_t *index = xmalloc((size_t)k * sizeof *index);
    if (st_read_i64(fx, "mixed7_index", index, k)) FAIL("%s", err_msg());
    for (int i = 0; i < n_img; i++) {
        const float *x = m7->data + (int64_t)i * MIXED7_N;
        double ss = 0;
        for (int c = 0; c < 768; c++) {
            double s = 0;
            for (int j = 0; j < 17 * 17; j++) s += x[c * 289 + j], ss += (double)x[c * 289 + j] * x[c * 289 + j];
            mean[i * 768 + c] = (float)(s / 289);
        }
        norm[i] = (float)sqrt(ss);
        for (int64_t j = 0; j < k; j++) sample[i * k + j] = x[index[j]];
    }
    free(index);
}

static ImageEncoderOut run_encoder(Tape *tp, ImageEncoder *ie, Tensor *imgs) {
    tape_reset(tp);
    tape_no_grad_begin(tp);
    ImageEncoderOut o = image_encoder_forward(tp, ie, imgs);
    tape_no_grad_end(tp);
    return o;
}

static void check_mixed7(SafeTensors *fx, const Tensor *m7, int n) {
    const StTensor *si = st_find(fx, "mixed7_index");
    CHECK(si && si->ndim == 1, "keras_inception fixture: mixed7_index missing");
    int64_t k = si->shape[0];
    float *mean = xmalloc((size_t)n * 768 * sizeof(float)), *norm = xmalloc((size_t)n * sizeof(float));
    float *sample = xmalloc((size_t)(n * k) * sizeof(float));
    mixed7_stats(fx, m7, n, mean, norm, sample, k);
    double rm = compare("Mixed_6e channel means", mean, 768, fx, "mixed7_mean", n, 768, TOL);
    double rs = compare("Mixed_6e sampled values", sample, k, fx, "mixed7_sample", n, k, TOL);
    double rn = compare("Mixed_6e norms", norm, 1, fx, "mixed7_norm", n, 1, TOL);
    printf("  Mixed_6e (768x17x17) vs oracle mixed7, worst image: channel means rel err %.2e, %lld sampled values "
           "%.2e, norm %.2e\n", rm, (long long)k, rs, rn);
    free(mean);
    free(norm);
    free(sample);
}

static void feature_tests(void) {
    SafeTensors *fx = fixture_open("keras_inception");
    if (!fx) return;
    Photos p = {0};
    if (load_photos(fx, &p) == 0) {
        ImageEncoder ie;
        encoder_new(&ie);
        int rc = keras_inception_load(&ie, model_dir());
        if (EXPECT(rc == 0, "keras_inception_load: %s", rc ? err_msg() : "") &&
            EXPECT(ie.convention == INCEPTION_KERAS, "convention not set to Keras")) {
            image_encoder_set_trainable(&ie, 0);
            Tape tp;
            tape_init(&tp);
            ImageEncoderOut o = run_encoder(&tp, &ie, p.imgs);
            double r = compare("pooled Mixed_7c", o.trunk_pool->data, 2048, fx, "pool", p.n, 2048, TOL);
            printf("  %d CUB photos %dx%d -> 299: pooled Mixed_7c (2048) vs oracle, worst rel err %.2e\n", p.n, p.size,
                   p.size, r);
            check_mixed7(fx, o.mixed_6e, p.n);
            /* the same weights with torchvision's pools and resize must be far off: the test sees the convention */
            ie.convention = INCEPTION_TORCHVISION;
            o = run_encoder(&tp, &ie, p.imgs);
            r = compare("pooled Mixed_7c, torchvision convention", o.trunk_pool->data, 2048, fx, "pool", p.n, 2048, 0);
            EXPECT(r > 1e-2, "torchvision convention matches the Keras oracle (rel err %.3g)", r);
            printf("  the same weights in torchvision's convention: pooled rel err %.2e (the conventions matter)\n", r);
            tape_free(&tp);
        }
        image_encoder_free(&ie);
    }
    tensor_free(p.imgs);
    fixture_close(fx);
}

int main(void) {
    test_begin("test_keras_inception");
    if (model_present()) {
        error_tests();
        remove_scratch();
        feature_tests();
    }
    return test_end();
}
