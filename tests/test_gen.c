/* test_gen: text -> birds (src/gen/gen.c) on a tiny two-stage model written here with random
 * weights: model loading and its errors, determinism of the seed, one image independent of how
 * many are drawn, unknown words, long text cut into scored segments, the attention figure, the
 * same bits with the networks on the host device, and the compact (f16 / int8) weight storage of
 * nn_save_compact. */
#include "test.h"
#include "../src/io/figure.h"
#include "../src/gen/gen.h"
#include "../src/io/safetensors.h"
#include "../src/nn/init.h"
#include "../src/nn/load.h"
#include "../src/train/checkpoint.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[64];
static const char *WORDS[] = {"<end>", "this", "bird", "is", "red", "with", "white", "wings", "and", "a", "short", "beak",
                              "has", "black", "crown", "yellow", "belly", "small", "blue", "the", "of", "in", "long",
                              "tail", "green", "it", "brown", "grey", "head", "breast"};
#define N_WORDS ((int)(sizeof WORDS / sizeof WORDS[0]))

static void tiny_config(TrainConfig *tc) {
    train_config_default(tc);
    const char *sets[] = {"TREE.BRANCH_NUM=2", "TEXT.EMBEDDING_DIM=16", "TEXT.WORD_DIM=8", "GAN.CONDITION_DIM=16",
                          "GAN.GF_DIM=4", "GAN.DF_DIM=4", "ZSL.RDC_DIM=8", "ZSL.Z_DIM=4", "ZSL.H_DIM=16"};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) CHECK(train_config_set(tc, sets[i]) == 0, "%s", err_msg());
}

static void write_net(const ParamSet *ps, const char *name, int compact) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    StWriter *w = st_writer_new();
    if (compact) nn_save_compact(ps, w, "", 1000);
    else nn_save(ps, w, "");
    CHECK(st_writer_write(w, path) == 0, "%s", err_msg());
    st_writer_free(w);
}

static void write_text(const char *name, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    CHECK(write_file_atomic(path, text, strlen(text)) == 0, "%s", err_msg());
}

/* model.json; relevance: 0 none, 1 good, 2 wrong length */
static void write_model_json(const TrainConfig *tc, const char *format, int relevance) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", format);
    cJSON_AddStringToObject(j, "trained_on", "nothing (random weights)");
    cJSON_AddNumberToObject(j, "steps", 0);
    if (relevance) {
        cJSON *rel = cJSON_AddObjectToObject(j, "relevance");
        int E = relevance == 1 ? tc->text.embedding_dim : 3;
        cJSON *a = cJSON_AddArrayToObject(rel, "captions"), *b = cJSON_AddArrayToObject(rel, "noise");
        for (int e = 0; e < E; e++) {
            cJSON_AddItemToArray(a, cJSON_CreateNumber(e % 2 ? 1.0 : 0.5));
            cJSON_AddItemToArray(b, cJSON_CreateNumber(e % 3 ? -0.2 : 0.7));
        }
    }
    char *cj = train_config_to_json(tc);
    cJSON_AddItemToObject(j, "config", cJSON_Parse(cj));
    free(cj);
    char *txt = cJSON_Print(j);
    write_text("model.json", txt);
    free(txt);
    cJSON_Delete(j);
}

/* the model directory with random weights (compact storage when compact) */
static void make_model(int compact) {
    TrainConfig tc;
    tiny_config(&tc);
    ModelConfig mc;
    train_config_to_model(&tc, &mc);
    mc.n_words = N_WORDS;
    Rng r;
    rng_init(&r, 42);
    TextEncoder te;
    text_encoder_init(&te, &mc);
    init_text_encoder(&te, &r);
    GNet g;
    gnet_init(&g, &mc, 2);
    init_attngan(&g.ps, &r);
    /* BN running statistics that are not the identity, so eval mode is exercised */
    for (int64_t i = 0; i < g.ps.n_buffers; i++) g.ps.buffers[i] = 0.5f + 0.25f * (float)(i % 3);
    write_net(&te.ps, "text_encoder.safetensors", compact);
    write_net(&g.ps, "netG.safetensors", compact);
    char vocab[1024] = "";
    for (int i = 0; i < N_WORDS; i++) strcat(strcat(vocab, WORDS[i]), "\n");
    write_text("vocab.txt", vocab);
    write_model_json(&tc, GEN_MODEL_FORMAT, 1);
    text_encoder_free(&te);
    gnet_free(&g);
}

static int same(const float *a, const float *b, int64_t n, double tol) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m <= tol;
}

static void test_load_errors(void) {
    GenModel m;
    EXPECT(gen_model_load(&m, "/nonexistent/model") == -1 && strstr(err_msg(), "not a model directory"),
           "a missing directory is named: %s", err_msg());
    TrainConfig tc;
    tiny_config(&tc);
    write_model_json(&tc, "attngan-model-0", 1);
    EXPECT(gen_model_load(&m, g_dir) == -1 && strstr(err_msg(), "format"), "a wrong format is named: %s", err_msg());
    write_model_json(&tc, GEN_MODEL_FORMAT, 2);
    EXPECT(gen_model_load(&m, g_dir) == -1 && strstr(err_msg(), "relevance"), "a short centroid is named: %s", err_msg());
    write_model_json(&tc, GEN_MODEL_FORMAT, 1);
    char path[256];
    snprintf(path, sizeof path, "%s/netG.safetensors", g_dir);
    rename(path, "/tmp/test_gen_netG.tmp");
    EXPECT(gen_model_load(&m, g_dir) == -1 && strstr(err_msg(), "netG.safetensors"), "a missing netG is named: %s", err_msg());
    rename("/tmp/test_gen_netG.tmp", path);
    write_text("model.json", "{\"format\": ");
    EXPECT(gen_model_load(&m, g_dir) == -1 && strstr(err_msg(), "model.json"), "broken JSON names the file: %s", err_msg());
    /* found by fuzzing: a huge "steps" was cast to long long (undefined); duplicate keys were ignored */
    write_text("model.json", "{\"format\": \"attngan-model-1\", \"config\": {}, \"steps\": 1e300}");
    EXPECT(gen_model_load(&m, g_dir) == -1 && strstr(err_msg(), "model.json") && strstr(err_msg(), "\"steps\" must be a whole number"),
           "a huge step count is an error: %s", err_msg());
    write_text("model.json", "{\"format\": \"attngan-model-1\", \"config\": {}, \"format\": \"attngan-model-0\"}");
    EXPECT(gen_model_load(&m, g_dir) == -1 && strstr(err_msg(), "model.json") && strstr(err_msg(), "duplicate key \"format\""),
           "a key twice is an error: %s", err_msg());
    write_model_json(&tc, GEN_MODEL_FORMAT, 1);
}

static void test_generate(const GenModel *m) {
    GenOptions o;
    gen_options_default(&o);
    o.n = 3;
    o.seed = 5;
    GenResult a, b, c, d;
    const char *cap = "This bird is red, with white wings and a zorblax beak!";
    if (!EXPECT(gen_run(m, cap, &o, &a) == 0, "gen_run: %s", err_msg())) return;
    EXPECT(a.n == 3 && a.n_stages == 2 && a.size[0] == 64 && a.size[1] == 128, "3 images at 64 and 128 px");
    EXPECT(a.n_att == 1 && a.att_h[0] == 64 && a.att_w[0] == 64, "one attention stage of 64 x 64 maps");
    EXPECT(a.L == 10 && a.words && !strcmp(a.words[0], "this") && !strcmp(a.words[9], "beak"), "10 known words attended, got %d", a.L);
    EXPECT(a.unknown && !strcmp(a.unknown, "zorblax"), "the unknown word is reported: %s", a.unknown ? a.unknown : "(none)");
    EXPECT(a.n_segments == 1 && a.segments[0].used, "a short caption is one segment");
    float mn = 1e9f, mx = -1e9f;
    for (int64_t i = 0; i < 3LL * 3 * 128 * 128; i++) mn = fminf(mn, a.imgs[1][i]), mx = fmaxf(mx, a.imgs[1][i]);
    EXPECT(mn >= -1.0f && mx <= 1.0f && mx > mn, "images lie in [-1, 1] and are not constant (%g..%g)", (double)mn, (double)mx);
    /* the attention maps of each word sum to 1 over words at every pixel */
    double s = 0;
    for (int l = 0; l < a.L; l++) s += a.att[0][(size_t)l * 64 * 64 + 100];
    EXPECT(fabs(s - 1.0) < 1e-4, "attention sums to 1 over the words (%g)", s);
    EXPECT(gen_run(m, cap, &o, &b) == 0 && same(a.imgs[1], b.imgs[1], 3LL * 3 * 128 * 128, 0.0), "the same seed gives the same birds");
    o.n = 1;
    EXPECT(gen_run(m, cap, &o, &c) == 0 && same(a.imgs[1], c.imgs[1], 3LL * 128 * 128, 1e-5),
           "image 0 does not depend on how many are drawn");
    o.seed = 6;
    EXPECT(gen_run(m, cap, &o, &d) == 0 && !same(a.imgs[1], d.imgs[1], 3LL * 128 * 128, 1e-4), "another seed gives another bird");
    Image img = {0}, fig = {0};
    EXPECT(gen_result_image(&a, 1, 2, &img) == 0 && img.w == 128 && img.h == 128, "stage 2 image as RGB");
    EXPECT(gen_result_image(&a, 2, 0, &img) == -1 && strstr(err_msg(), "stage"), "a stage the model lacks is an error");
    EXPECT(gen_result_attention(&a, 0, &fig) == 0 && fig.w == 11 * (128 + FIGURE_ATT_PAD) && fig.h == FIGURE_HEADER_H + 128,
           "attention figure of 1 + 10 cells (%d x %d)", fig.w, fig.h);
    image_free(&img);
    image_free(&fig);
    gen_result_free(&a);
    gen_result_free(&b);
    gen_result_free(&c);
    gen_result_free(&d);
}

static void test_errors(const GenModel *m) {
    GenOptions o;
    gen_options_default(&o);
    GenResult r;
    EXPECT(gen_run(m, "  \n\t ", &o, &r) == -1 && strstr(err_msg(), "empty"), "a blank caption: %s", err_msg());
    EXPECT(gen_run(m, "zorblax quuxly", &o, &r) == -1 && strstr(err_msg(), "vocabulary") && strstr(err_msg(), "quuxly"),
           "only unknown words are named: %s", err_msg());
    o.n = 0;
    EXPECT(gen_run(m, "red bird", &o, &r) == -1 && strstr(err_msg(), "n = 0"), "n = 0: %s", err_msg());
    o.n = 1;
    char *big = xmalloc(GEN_MAX_TEXT + 2);
    memset(big, 'a', GEN_MAX_TEXT + 1);
    big[GEN_MAX_TEXT + 1] = 0;
    EXPECT(gen_run(m, big, &o, &r) == -1 && strstr(err_msg(), "bytes"), "too long a text: %s", err_msg());
    free(big);
}

static void test_long_text(const GenModel *m) {
    /* three sentences, 25 known words in all; the second is mostly unknown words */
    const char *doc = "this small bird is red with white wings and a short black beak. "
                      "the zorblax quuxly flarp blorg of the wibble in 1758; "
                      "it has a yellow belly and a blue crown";
    GenOptions o;
    gen_options_default(&o);
    GenResult r;
    if (!EXPECT(gen_run(m, doc, &o, &r) == 0, "long text: %s", err_msg())) return;
    EXPECT(r.n_segments == 3, "three segments, got %d", r.n_segments);
    int used = 0, L = 0;
    for (int s = 0; s < r.n_segments; s++) used += r.segments[s].used, L += r.segments[s].used ? r.segments[s].n_words : 0;
    EXPECT(used >= 1 && used <= GEN_MAX_SEGMENTS && L == r.L, "G attends to the used segments' words (%d used, L %d)", used, r.L);
    EXPECT(r.n_segments == 3 && r.segments[1].relevance < r.segments[0].relevance && r.segments[1].relevance < r.segments[2].relevance,
           "the sentence of unknown words scores lowest (%g %g %g)", (double)r.segments[0].relevance,
           (double)r.segments[1].relevance, (double)r.segments[2].relevance);
    gen_result_free(&r);
    o.max_segments = 1;
    if (EXPECT(gen_run(m, doc, &o, &r) == 0, "%s", err_msg())) {
        int best = 0, nu = 0;
        for (int s = 0; s < r.n_segments; s++) {
            nu += r.segments[s].used;
            if (r.segments[s].relevance > r.segments[best].relevance) best = s;
        }
        EXPECT(nu == 1 && r.segments[best].used, "max_segments 1 keeps only the best");
        gen_result_free(&r);
    }
    /* one sentence of 27 known words: windows of 18 and 9 */
    const char *run_on = "this bird is red with white wings and a short black beak and it has a yellow belly and a blue crown "
                         "and a long brown tail";
    if (EXPECT(gen_run(m, run_on, &o, &r) == 0, "%s", err_msg())) {
        EXPECT(r.n_segments == 2 && r.segments[0].n_words == 18 && r.segments[1].n_words == 9, "windows of 18 words (%d: %d, %d)",
               r.n_segments, r.n_segments > 0 ? r.segments[0].n_words : -1, r.n_segments > 1 ? r.segments[1].n_words : -1);
        gen_result_free(&r);
    }
    /* the one-caption modes */
    o.long_text = GEN_LONG_FIRST;
    if (EXPECT(gen_run(m, run_on, &o, &r) == 0, "%s", err_msg())) {
        EXPECT(r.n_segments == 1 && r.L == 18 && !strcmp(r.words[0], "this") && !strcmp(r.words[17], "belly"),
               "GEN_LONG_FIRST keeps the first 18 words");
        gen_result_free(&r);
    }
    o.long_text = GEN_LONG_SUBSET;
    GenResult r2;
    if (EXPECT(gen_run(m, run_on, &o, &r) == 0 && gen_run(m, run_on, &o, &r2) == 0, "%s", err_msg())) {
        int same_words = r.L == r2.L;
        for (int i = 0; same_words && i < r.L; i++) same_words = !strcmp(r.words[i], r2.words[i]);
        EXPECT(r.n_segments == 1 && r.L == 18 && same_words, "GEN_LONG_SUBSET: 18 words, the same for the same seed");
        /* order-preserving: the words are a subsequence of the text's */
        char **tok;
        int nt = text_tokenize(run_on, &tok), j = 0;
        for (int i = 0; i < nt && j < r.L; i++) j += !strcmp(tok[i], r.words[j]);
        text_free_tokens(tok, nt);
        EXPECT(j == r.L, "GEN_LONG_SUBSET keeps the text's order");
        gen_result_free(&r);
        gen_result_free(&r2);
    }
    /* gen_text_code: the LSTM code of what gen_run encodes */
    float code[16];
    GenResult info;
    o.long_text = GEN_LONG_SELECT;
    o.max_segments = 3;
    EXPECT(gen_text_code(m, doc, &o, code, &info) == 0 && info.n_segments == 3 && info.n == 0, "gen_text_code: %s", err_msg());
    double nrm = 0;
    for (int e = 0; e < 16; e++) nrm += code[e] * code[e];
    EXPECT(nrm > 0 && isfinite(nrm), "a non-zero code");
    gen_result_free(&info);
    o.long_text = (GenLongText)7;
    EXPECT(gen_run(m, doc, &o, &r) == -1 && strstr(err_msg(), "mode"), "an unknown mode is an error: %s", err_msg());
}

/* The same results, bit for bit, with the networks on the host device (src/core/device.h: the
 * device path's dispatch and copies with the CPU kernels, host code kept off device memory): a
 * short caption with attention maps, a long text cut into scored segments, gen_text_code and
 * gen_lstm_codes. The model goes back to the CPU at the end. */
static int same_result(const GenResult *a, const GenResult *b) {
    int ok = a->n == b->n && a->n_stages == b->n_stages && a->n_att == b->n_att && a->L == b->L && a->n_segments == b->n_segments;
    for (int k = 0; ok && k < a->n_stages; k++)
        ok = a->size[k] == b->size[k] && !memcmp(a->imgs[k], b->imgs[k], (size_t)a->n * 3 * a->size[k] * a->size[k] * sizeof(float));
    for (int k = 0; ok && k < a->n_att; k++)
        ok = a->att_h[k] == b->att_h[k] && a->att_w[k] == b->att_w[k] &&
             !memcmp(a->att[k], b->att[k], (size_t)a->n * a->L * a->att_h[k] * a->att_w[k] * sizeof(float));
    for (int i = 0; ok && i < a->L; i++) ok = !strcmp(a->words[i], b->words[i]);
    for (int s = 0; ok && s < a->n_segments; s++)
        ok = a->segments[s].used == b->segments[s].used && a->segments[s].relevance == b->segments[s].relevance &&
             !strcmp(a->segments[s].text, b->segments[s].text);
    return ok;
}

static void test_host_device(GenModel *m) {
    const char *texts[3] = {"This bird is red, with white wings and a zorblax beak!",
                            "this small bird is red with white wings and a short black beak. "
                            "the zorblax quuxly flarp blorg of the wibble in 1758; it has a yellow belly and a blue crown",
                            "a bird"};
    GenOptions o;
    gen_options_default(&o);
    o.n = 3;
    o.seed = 11;
    GenResult cpu[2], dev[2];
    float code_c[16], code_d[16], lstm_c[3 * 16], lstm_d[3 * 16];
    int known_c[3], known_d[3];
    int rc = 0;
    for (int t = 0; t < 2; t++) rc |= gen_run(m, texts[t], &o, &cpu[t]);
    rc |= gen_text_code(m, texts[1], &o, code_c, NULL);
    gen_lstm_codes(&m->te, &m->vocab, texts, 3, lstm_c, known_c);
    if (!EXPECT(rc == 0, "on the CPU: %s", err_msg())) return;
    gen_model_to_device(m, DEVICE_HOSTDEV);
    EXPECT(gen_model_device(m) == DEVICE_HOSTDEV && m->g.ps.values && hostdev_owns(m->g.ps.values) && hostdev_owns(m->te.ps.values),
           "the networks moved to the host device");
    rc = 0;
    for (int t = 0; t < 2; t++) rc |= gen_run(m, texts[t], &o, &dev[t]);
    rc |= gen_text_code(m, texts[1], &o, code_d, NULL);
    gen_lstm_codes(&m->te, &m->vocab, texts, 3, lstm_d, known_d);
    if (EXPECT(rc == 0, "on the host device: %s", err_msg())) {
        EXPECT(same_result(&cpu[0], &dev[0]), "a caption on the host device: the CPU's images and attention maps, bit for bit");
        EXPECT(same_result(&cpu[1], &dev[1]) && cpu[1].n_segments == 3, "a long text on the host device: the CPU's segments, scores and images");
        EXPECT(!memcmp(code_c, code_d, sizeof code_c), "gen_text_code on the host device: the CPU's bits");
        EXPECT(!memcmp(lstm_c, lstm_d, sizeof lstm_c) && !memcmp(known_c, known_d, sizeof known_c), "gen_lstm_codes on the host device: the CPU's bits");
        for (int t = 0; t < 2; t++) gen_result_free(&dev[t]);
    }
    for (int t = 0; t < 2; t++) gen_result_free(&cpu[t]);
    gen_model_to_device(m, DEVICE_CPU);
    EXPECT(gen_model_device(m) == DEVICE_CPU && !hostdev_owns(m->g.ps.values), "and back on the CPU");
}

/* nn_save_compact -> nn_load: f16 and per-row int8 within their rounding */
static void test_compact_storage(void) {
    ParamSet ps;
    paramset_init(&ps, "net");
    Tensor *big = PARAM(&ps, "big.weight", 40, 50);
    Tensor *small = PARAM(&ps, "small.bias", 7);
    Tensor *buf = BUFFER(&ps, "bn.running_var", 7);
    int64_t *nbt = paramset_add_i64(&ps, "bn.num_batches_tracked");
    paramset_finalize(&ps);
    Rng r;
    rng_init(&r, 9);
    rng_normal(&r, big->data, big->n, 0.0f, 1.0f);
    for (int j = 0; j < 50; j++) big->data[3 * 50 + j] *= 100.0f; /* a row of another scale */
    memset(big->data + 5 * 50, 0, 50 * sizeof(float));            /* an all-zero row */
    rng_normal(&r, small->data, small->n, 0.0f, 1.0f);
    rng_uniform(&r, buf->data, buf->n);
    *nbt = 1234;
    float *want = xmalloc((size_t)ps.n_values * sizeof(float));
    memcpy(want, ps.values, (size_t)ps.n_values * sizeof(float));
    char path[256];
    snprintf(path, sizeof path, "%s/compact.safetensors", g_dir);
    StWriter *w = st_writer_new();
    nn_save_compact(&ps, w, "", 1000);
    CHECK(st_writer_write(w, path) == 0, "%s", err_msg());
    st_writer_free(w);
    SafeTensors st;
    CHECK(st_open(&st, path) == 0, "%s", err_msg());
    const StTensor *tb = st_find(&st, "big.weight"), *ts = st_find(&st, "small.bias");
    EXPECT(tb && tb->dtype == ST_I8 && st_find(&st, "big.weight.q_scale"), "the large weight is int8 with its scales");
    EXPECT(ts && ts->dtype == ST_F16, "a small tensor is f16");
    memset(ps.values, 0, (size_t)ps.n_values * sizeof(float));
    *nbt = 0;
    EXPECT(nn_load(&ps, &st, "", 0, NULL) == 0, "compact file loads strictly: %s", err_msg());
    int ok = 1;
    for (int i = 0; i < 40; i++) {
        float mx = 0;
        for (int j = 0; j < 50; j++) mx = fmaxf(mx, fabsf(want[i * 50 + j]));
        for (int j = 0; j < 50; j++) ok &= fabsf(big->data[i * 50 + j] - want[i * 50 + j]) <= 0.5f * mx / 127.0f * 1.0001f;
    }
    EXPECT(ok, "int8 weights within half a step of their row's scale");
    double err = 0;
    for (int j = 0; j < 7; j++) err = fmax(err, fabs(small->data[j] - want[big->n + j]) / fmax(fabs(want[big->n + j]), 1e-3));
    EXPECT(err < 1e-3, "f16 within its rounding (%g)", err);
    EXPECT(*nbt == 1234, "integer buffers are kept exactly");
    st_close(&st);
    /* an int8 tensor without its scales is an error that names them */
    w = st_writer_new();
    int64_t shape[2] = {40, 50};
    int8_t *q = xcalloc(2000, 1);
    st_writer_add(w, "big.weight", ST_I8, 2, shape, q);
    free(q);
    CHECK(st_writer_write(w, path) == 0, "%s", err_msg());
    st_writer_free(w);
    CHECK(st_open(&st, path) == 0, "%s", err_msg());
    EXPECT(nn_load(&ps, &st, "", LOAD_PARTIAL, NULL) == -1 && strstr(err_msg(), "big.weight.q_scale"), "missing scales: %s", err_msg());
    st_close(&st);
    unlink(path);
    free(want);
    paramset_free(&ps);
}

static void cleanup(void) {
    const char *files[] = {"model.json", "text_encoder.safetensors", "netG.safetensors", "vocab.txt"};
    char path[256];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", g_dir, files[i]);
        unlink(path);
    }
    rmdir(g_dir);
}

int main(void) {
    test_begin("test_gen");
    threads_set(2);
    snprintf(g_dir, sizeof g_dir, "/tmp/test_gen.XXXXXX");
    if (!mkdtemp(g_dir)) FAIL("mkdtemp %s failed", g_dir);
    test_compact_storage();
    for (int compact = 0; compact < 2; compact++) {
        make_model(compact);
        if (!compact) test_load_errors();
        GenModel m;
        if (EXPECT(gen_model_load(&m, g_dir) == 0, "load the tiny model (%s): %s", compact ? "compact" : "f32", err_msg())) {
            EXPECT(gen_model_stages(&m) == 2 && m.rel_cap && m.rel_noise && !strcmp(m.trained_on, "nothing (random weights)"),
                   "two stages, relevance centroids, trained_on");
            test_generate(&m);
            test_errors(&m);
            test_long_text(&m);
            test_host_device(&m);
            gen_model_free(&m);
        }
    }
    cleanup();
    return test_end();
}
