/* test_eval.c: the pieces of `attngan eval` that need no data: the linear classifier
 * (src/eval/classifier.h: split, training, determinism across thread counts, the optimum it
 * reaches, the file) and the evaluator directory's errors (src/eval/evaluator.h). The whole
 * program runs on real photos in tests/test_resume.sh. */
#include "test.h"
#include "../src/nn/damsm.h"
#include "../src/core/threads.h"
#include "../src/eval/classifier.h"
#include "../src/eval/evaluator.h"
#include "../src/train/checkpoint.h"
#include "../src/nn/init.h"
#include "../src/nn/load.h"
#include "../src/nn/train_config.h"

#include <string.h>
#include <unistd.h>

static void test_split(void) {
    /* classes: 10 photos of class 3, 7 of class 1, 1 of class 9, 2 of class 4, interleaved */
    int n = 20, cls[20];
    for (int i = 0; i < n; i++) cls[i] = i < 10 ? 3 : i < 17 ? 1 : i < 18 ? 9 : 4;
    for (int i = 0; i < n; i += 3) { /* shuffle the order a little: the split must not depend on it being sorted */
        int j = (i * 7) % n, t = cls[i];
        cls[i] = cls[j];
        cls[j] = t;
    }
    unsigned char h[20], h2[20], h3[20];
    classifier_split(cls, n, 5, h);
    classifier_split(cls, n, 5, h2);
    classifier_split(cls, n, 6, h3);
    int held[10] = {0}, total[10] = {0}, same = 1, differ = 0;
    for (int i = 0; i < n; i++) {
        held[cls[i]] += h[i];
        total[cls[i]]++;
        same &= h[i] == h2[i];
        differ += h[i] != h3[i];
    }
    EXPECT(held[3] == 3 && held[1] == 2 && held[9] == 0 && held[4] == 1,
           "30%% held out per class, rounded, at least one, never a class's only photo: %d/%d %d/%d %d/%d %d/%d", held[3], total[3], held[1],
           total[1], held[9], total[9], held[4], total[4]);
    EXPECT(same && differ > 0, "the same seed gives the same split, another seed another (%d differ)", differ);
}

/* Three Gaussian blobs in d dimensions, classes 10, 20, 30; feature 0 constant (std 0). */
static void blobs(float *x, int *y, int n, int d, uint64_t seed) {
    Rng r;
    rng_init(&r, seed);
    rng_normal(&r, x, (int64_t)n * d, 0.0f, 1.0f);
    for (int i = 0; i < n; i++) {
        int k = i % 3;
        y[i] = 10 * (k + 1);
        x[(size_t)i * d + 1 + k] += 4.0f;
        x[(size_t)i * d] = 7.0f;
        for (int j = 0; j < d; j++) x[(size_t)i * d + j] = x[(size_t)i * d + j] * 3.0f + 100.0f; /* scale and offset: standardised */
    }
}

/* The training loss at c's weights (the test's own formula). */
static double loss_of(const Classifier *c, const float *x, const int *y, int n) {
    double *p = xmalloc((size_t)n * c->C * sizeof(double)), l = 0, reg = 0;
    classifier_probs(c, x, n, p);
    for (int i = 0; i < n; i++) l -= log(p[(size_t)i * c->C + classifier_class_index(c, y[i])]);
    for (int j = 0; j < c->C * c->D; j++) reg += c->w[j] * c->w[j];
    free(p);
    return l / n + 0.5 * c->l2 * reg;
}

static void test_train(void) {
    int n = 90, d = 12;
    const int classes[3] = {30, 10, 20};
    float *x = xmalloc((size_t)n * d * sizeof(float));
    int *y = xmalloc(n * sizeof(int));
    blobs(x, y, n, d, 1);
    Classifier c;
    classifier_init(&c, classes, 3, d);
    EXPECT(c.classes[0] == 10 && c.classes[2] == 30 && classifier_class_index(&c, 20) == 1 && classifier_class_index(&c, 5) == -1,
           "classes sorted; class_index finds them");
    double loss = -1;
    int rc = classifier_train(&c, x, y, n, &loss);
    EXPECT(rc == 0, "train: %s", rc ? err_msg() : "");
    double m0 = 0;
    for (int i = 0; i < n; i++) m0 += x[(size_t)i * d + 2] / n;
    EXPECT(fabs(c.mean[2] - m0) < 1e-9 * fabs(m0) && c.std[0] == 1.0, "feature mean stored (%.6f vs %.6f); a constant feature's std is 1",
           c.mean[2], m0);
    double *p = xmalloc((size_t)n * 3 * sizeof(double));
    classifier_probs(&c, x, n, p);
    int right = 0, sums = 1;
    for (int i = 0; i < n; i++) {
        right += classifier_top1(&c, p + (size_t)i * 3) == y[i];
        sums &= fabs(p[i * 3] + p[i * 3 + 1] + p[i * 3 + 2] - 1) < 1e-12;
    }
    EXPECT(right == n && sums, "separable blobs: %d of %d right, probabilities sum to 1", right, n);
    EXPECT(fabs(loss - loss_of(&c, x, y, n)) < 1e-6 && loss < 0.2, "reported loss %.6f = the loss at the weights %.6f", loss,
           loss_of(&c, x, y, n));
    /* new photos of the same blobs */
    float *xt = xmalloc((size_t)n * d * sizeof(float));
    int *yt = xmalloc(n * sizeof(int));
    blobs(xt, yt, n, d, 2);
    classifier_probs(&c, xt, n, p);
    right = 0;
    for (int i = 0; i < n; i++) right += classifier_top1(&c, p + (size_t)i * 3) == yt[i];
    EXPECT(right >= n - 3, "held-out blobs: %d of %d right", right, n);

    /* the optimum: with strong L2 and many iterations the finite-difference gradient vanishes */
    Classifier o;
    classifier_init(&o, classes, 3, d);
    o.l2 = 0.1;
    o.iterations = 3000;
    o.lr = 0.003;
    rc = classifier_train(&o, x, y, n, NULL);
    double gmax = 0;
    for (int j = 0; j < 3 * d && rc == 0; j++) {
        double keep = o.w[j], h = 1e-5;
        o.w[j] = keep + h;
        double lp = loss_of(&o, x, y, n);
        o.w[j] = keep - h;
        double lm = loss_of(&o, x, y, n);
        o.w[j] = keep;
        gmax = fmax(gmax, fabs(lp - lm) / (2 * h));
    }
    EXPECT(rc == 0 && gmax < 2e-3, "at the end of training the loss gradient is ~0: max |dL/dw| %.2e", gmax);
    classifier_free(&o);

    /* the same bits at 1 and 2 threads */
    Classifier a, b;
    classifier_init(&a, classes, 3, d);
    classifier_init(&b, classes, 3, d);
    a.iterations = b.iterations = 50;
    int threads = threads_get();
    threads_set(1);
    rc = classifier_train(&a, x, y, n, NULL);
    threads_set(2);
    rc |= classifier_train(&b, x, y, n, NULL);
    threads_set(threads);
    EXPECT(rc == 0 && !memcmp(a.w, b.w, (size_t)3 * d * sizeof(double)) && !memcmp(a.b, b.b, 3 * sizeof(double)),
           "training at 1 and 2 threads: the same bits");
    classifier_free(&a);
    classifier_free(&b);

    /* errors */
    y[4] = 40;
    EXPECT(classifier_train(&c, x, y, n, NULL) == -1 && strstr(err_msg(), "class 40"), "a class outside the classifier: %s", err_msg());
    for (int i = 0; i < n; i++) y[i] = 10;
    EXPECT(classifier_train(&c, x, y, n, NULL) == -1 && strstr(err_msg(), "class 20 has no training photo"), "a class without photos: %s",
           err_msg());
    free(x);
    free(y);
    free(xt);
    free(yt);
    free(p);
    classifier_free(&c);
}

static void test_file(void) {
    char dir[] = "/tmp/test_eval_XXXXXX", path[128];
    EXPECT(mkdtemp(dir) != NULL, "temp dir");
    snprintf(path, sizeof path, "%s/classifier.safetensors", dir);
    const int classes[2] = {4, 2};
    Classifier c, r;
    classifier_init(&c, classes, 2, CLF_FEATURES);
    for (int j = 0; j < 2 * CLF_FEATURES; j++) c.w[j] = 0.001 * j - 1;
    c.b[0] = 0.5, c.b[1] = -0.25;
    for (int k = 0; k < CLF_FEATURES; k++) c.mean[k] = k, c.std[k] = 1 + 0.5 * k;
    c.image_size = 128;
    c.seed = 77;
    snprintf(c.tight_pad, sizeof c.tight_pad, "edge");
    snprintf(c.trunk, sizeof c.trunk, "some trunk");
    snprintf(c.trunk_hash, sizeof c.trunk_hash, "0123456789abcdef");
    c.train_photos = xstrdup("a/x\nb/y\nb/z\n");
    c.heldout_photos = xstrdup("a/w\n");
    c.train_acc = 1, c.heldout_acc = 0.5;
    EXPECT(classifier_save(&c, path) == 0, "save: %s", err_msg());
    int rc = classifier_load(&r, path);
    EXPECT(rc == 0, "load: %s", rc ? err_msg() : "");
    if (rc == 0) {
        int ok = r.C == 2 && r.D == CLF_FEATURES && r.classes[0] == 2 && r.classes[1] == 4 && r.image_size == 128 && r.seed == 77 &&
                 !strcmp(r.tight_pad, "edge") && !strcmp(r.trunk, "some trunk") && !strcmp(r.trunk_hash, "0123456789abcdef") &&
                 r.n_train == 3 && r.n_heldout == 1 && !strcmp(r.heldout_photos, "a/w\n") && r.iterations == CLF_ITERATIONS &&
                 r.l2 == CLF_L2 && r.heldout_acc == 0.5;
        for (int j = 0; j < 2 * CLF_FEATURES; j++) ok &= r.w[j] == (double)(float)c.w[j];
        for (int k = 0; k < CLF_FEATURES; k++) ok &= r.mean[k] == c.mean[k] && r.std[k] == c.std[k];
        EXPECT(ok && r.b[1] == -0.25, "the file gives back the classifier, its photos and settings");
        classifier_free(&r);
    }
    /* a file that is not a classifier */
    StWriter *w = st_writer_new();
    float v[4] = {0};
    int64_t sh[2] = {2, 2};
    st_writer_add(w, "weight", ST_F32, 2, sh, v);
    st_writer_meta(w, "format", CLF_FORMAT);
    EXPECT(st_writer_write(w, path) == 0, "write");
    st_writer_free(w);
    EXPECT(classifier_load(&r, path) == -1 && strstr(err_msg(), "\"weight\" must be") && strstr(err_msg(), path), "wrong shape named: %s",
           err_msg());
    classifier_free(&c);
    unlink(path);
    rmdir(dir);
}

static void test_evaluator_errors(void) {
    Evaluator ev;
    EXPECT(evaluator_load(&ev, "/nonexistent/eval", NULL) == -1 && strstr(err_msg(), "evaluator directory /nonexistent/eval does not exist"),
           "a missing directory is named: %s", err_msg());
    char dir[] = "/tmp/test_evaluator_XXXXXX", path[160];
    EXPECT(mkdtemp(dir) != NULL, "temp dir");
    EXPECT(evaluator_load(&ev, dir, NULL) == -1 && strstr(err_msg(), "no config.json"), "a missing config.json is named: %s", err_msg());
    TrainConfig tc;
    train_config_default(&tc);
    char *js = train_config_to_json(&tc);
    snprintf(path, sizeof path, "%s/config.json", dir);
    EXPECT(write_file_atomic(path, js, strlen(js)) == 0, "write config");
    free(js);
    EXPECT(evaluator_load(&ev, dir, NULL) == -1 && strstr(err_msg(), "EXTRA.INCEPTION is ''"), "a random trunk is refused: %s", err_msg());
    train_config_set(&tc, "EXTRA.INCEPTION=keras_nsfwjs");
    train_config_set(&tc, "EXTRA.INCEPTION_WEIGHTS=/nonexistent/weights");
    js = train_config_to_json(&tc);
    EXPECT(write_file_atomic(path, js, strlen(js)) == 0, "write config");
    free(js);
    EXPECT(evaluator_load(&ev, dir, NULL) == -1 && strstr(err_msg(), "no vocab.txt"), "a missing vocabulary is named: %s", err_msg());
    unlink(path);
    rmdir(dir);
}

/* A random tiny DAMSM on the real Keras trunk (skipped without ../shared/models): the codes are the
 * text encoder's with z = 0, documents are cut into windows of WORDS_NUM known words, every code
 * is the same bits at 1 and 2 threads, and on the host device (evaluator_to_device). */
static void test_evaluator_codes(const char *variant, const char *const *extra, int n_extra, int B) {
    const char *inc = "../shared/models/inception_v3_nsfwjs";
    if (access("../shared/models/inception_v3_nsfwjs/model.json", R_OK)) {
        test_skip("evaluator codes (%s): no %s", variant, inc);
        return;
    }
    char dir[] = "/tmp/test_evaluator_XXXXXX", path[200], set[300];
    EXPECT(mkdtemp(dir) != NULL, "temp dir");
    TrainConfig tc;
    train_config_default(&tc);
    /* the default sizes (E 256, ZSL G 4096 wide): large enough for the matrix products to split */
    const char *sets[] = {"TEXT.WORDS_NUM=5", "EXTRA.INCEPTION=keras_nsfwjs"};
    for (int i = 0; i < 2; i++) EXPECT(train_config_set(&tc, sets[i]) == 0, "set %s", sets[i]);
    for (int i = 0; i < n_extra; i++) EXPECT(train_config_set(&tc, extra[i]) == 0, "set %s", extra[i]);
    snprintf(set, sizeof set, "EXTRA.INCEPTION_WEIGHTS=%s", inc);
    train_config_set(&tc, set);
    char *js = train_config_to_json(&tc);
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_file_atomic(path, js, strlen(js));
    free(js);
    const char *words[] = {"this", "bird", "is", "red", "with", "black", "wings", "and", "a", "short", "beak", "white", "belly"};
    Vocab v;
    vocab_init(&v);
    for (int i = 0; i < 13; i++) vocab_add(&v, words[i]);
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    vocab_save(&v, path);
    ModelConfig mc;
    train_config_to_model(&tc, &mc);
    mc.n_words = v.n;
    TextEncoder te;
    ImageEncoder ie;
    text_encoder_init(&te, &mc);
    image_encoder_init(&ie, &mc);
    Rng rng;
    rng_init(&rng, 9);
    init_text_encoder(&te, &rng);
    init_image_encoder_heads(&ie, &rng);
    StWriter *w = st_writer_new();
    nn_save(&te.ps, w, "");
    snprintf(path, sizeof path, "%s/text_encoder.safetensors", dir);
    st_writer_write(w, path);
    st_writer_free(w);
    ParamSet heads;
    paramset_init(&heads, "image_encoder");
    for (int i = 0; i < ie.ps.n; i++)
        if (!image_encoder_is_trunk_key(ie.ps.entries[i]->name))
            paramset_add(&heads, ie.ps.entries[i]->name, ie.ps.entries[i]->kind, ie.ps.entries[i]->t.ndim, ie.ps.entries[i]->t.shape);
    paramset_finalize(&heads);
    for (int i = 0; i < heads.n; i++)
        memcpy(heads.entries[i]->t.data, paramset_find(&ie.ps, heads.entries[i]->name)->t.data, (size_t)heads.entries[i]->t.n * sizeof(float));
    w = st_writer_new();
    nn_save(&heads, w, "");
    snprintf(path, sizeof path, "%s/image_encoder.safetensors", dir);
    st_writer_write(w, path);
    st_writer_free(w);
    paramset_free(&heads);

    Evaluator ev;
    int rc = evaluator_load(&ev, dir, NULL);
    EXPECT(rc == 0 && strlen(ev.hash_hex) == 16 && strlen(ev.trunk_hash) == 16 && strstr(ev.trunk, "Keras"), "%s: load: %s", variant,
           rc ? err_msg() : ev.trunk);
    if (rc == 0) {
        const char *texts[3] = {"this bird is red with black wings", "a zorblax", "white belly and a short beak"};
        float c1[3 * 256], c2[3 * 256];
        int known[3];
        int threads = threads_get();
        threads_set(1);
        evaluator_text_codes(&ev, texts, 3, c1, known);
        threads_set(2);
        evaluator_text_codes(&ev, texts, 3, c2, NULL);
        threads_set(threads);
        EXPECT(!memcmp(c1, c2, sizeof c1) && threads_get() == threads, "text codes at 1 and 2 threads: the same bits; the thread count restored");
        int zero = 1;
        for (int e = 0; e < 256; e++) zero &= c1[256 + e] == 0.0f;
        EXPECT(known[0] == 7 && known[1] == 1 && zero == 0, "known words counted (%d, %d)", known[0], known[1]);
        /* text 0 (5 known words kept: WORDS_NUM 5) through the text encoder with z = 0 */
        Tape tp;
        tape_init(&tp);
        tape_no_grad_begin(&tp);
        int64_t caps[5];
        for (int t = 0; t < 5; t++) caps[t] = vocab_find(&ev.vocab, words[t]);
        int len = 5;
        Tensor *z = TZEROS(&tp, 1, 100);
        TextEncoderOut o = text_encoder_forward(&tp, &ev.te, caps, &len, 1, z, NULL, NULL);
        EXPECT(expect_close("evaluator code = the text encoder's sentence code (z = 0) of the first WORDS_NUM known words", c1, o.sent_emb->data,
                            256, 1e-6), "%s: z = 0", variant);
        tape_free(&tp);
        const char *unknown_only[1] = {"zorblax quux"};
        float cz[256];
        evaluator_text_codes(&ev, unknown_only, 1, cz, known);
        zero = 1;
        for (int e = 0; e < 256; e++) zero &= cz[e] == 0.0f;
        EXPECT(known[0] == 0 && zero, "a text without a known word: a zero code");
        /* a document: 12 known words in one sentence -> windows of 5, 5, 2 */
        const char *doc[2] = {"this bird is red with black wings and a short beak white", "quux"};
        const char *win[3] = {"this bird is red with", "black wings and a short", "beak white"};
        float dcode[256], wc[3 * 256], want[256];
        int nw = evaluator_document_lstm(&ev, doc, 2, dcode);
        evaluator_lstm_codes(&ev, win, 3, wc, NULL);
        for (int e = 0; e < 256; e++) want[e] = (float)(((double)wc[e] + wc[256 + e] + wc[512 + e]) / 3);
        EXPECT(nw == 3 && expect_close("document = mean LSTM code of its windows", dcode, want, 256, 1e-6), "windows %d", nw);
        /* images: the same bits at 1 and 2 threads, and the head's code as the encoder computes it */
        int S = 64;
        float *img = xmalloc((size_t)B * 3 * S * S * sizeof(float)), i1[16 * 256], i2[16 * 256], p1[16 * 2048], p2[16 * 2048];
        float m1[16 * 768], m2[16 * 768];
        rng_uniform_range(&rng, img, (int64_t)B * 3 * S * S, -1, 1);
        threads_set(1);
        evaluator_images(&ev, img, B, S, i1, p1, m1, NULL);
        threads_set(2);
        evaluator_images(&ev, img, B, S, i2, p2, m2, NULL);
        threads_set(threads);
        EXPECT(!memcmp(i1, i2, sizeof i1) && !memcmp(p1, p2, sizeof p1) && !memcmp(m1, m2, sizeof m1),
               "image codes, pool and mean Mixed_6e features of 16 images at 1 and 2 threads: the same bits");
        double mm = 0;
        for (int c = 0; c < 768; c++) mm += m1[c] / 768.0;
        EXPECT(isfinite(mm) && mm != 0, "mean Mixed_6e features are filled (%g)", mm);
        tape_init(&tp);
        tape_no_grad_begin(&tp);
        Tensor *x = TNEW(&tp, B, 3, S, S);
        memcpy(x->data, img, (size_t)x->n * sizeof(float));
        ImageEncoderOut io = image_encoder_forward(&tp, &ev.ie, x);
        EXPECT(expect_close("image code = the image encoder's", i1, io.code->data, B * 256, 1e-5), "%s: image code", variant);
        {   /* region features: the same bits at 1 and 2 threads, the image encoder's emb_features */
            size_t nr = (size_t)B * 256 * EVAL_REGIONS;
            float *r1 = xmalloc(nr * sizeof(float)), *r2 = xmalloc(nr * sizeof(float)), *w5 = xmalloc((size_t)3 * 256 * 5 * sizeof(float));
            threads_set(1);
            evaluator_images(&ev, img, B, S, NULL, NULL, NULL, r1);
            threads_set(2);
            evaluator_images(&ev, img, B, S, NULL, NULL, NULL, r2);
            threads_set(threads);
            EXPECT(!memcmp(r1, r2, nr * sizeof(float)), "region features of %d images at 1 and 2 threads: the same bits", B);
            EXPECT(io.region->n == (int64_t)nr && expect_close("region features = the image encoder's", r1, io.region->data, (int64_t)nr, 1e-5),
                   "%s: region features", variant);
            /* word features: text 0's 5 known words as the text encoder gives them, a text without one: length 0 */
            int wl[3];
            const char *wt[3] = {texts[0], "zorblax quux", texts[2]};
            evaluator_words(&ev, wt, 3, w5, wl);
            Tape t2;
            tape_init(&t2);
            tape_no_grad_begin(&t2);
            int64_t caps0[5];
            for (int t = 0; t < 5; t++) caps0[t] = vocab_find(&ev.vocab, words[t]);
            int len0 = 5;
            TextEncoderOut o0 = text_encoder_forward(&t2, &ev.te, caps0, &len0, 1, TZEROS(&t2, 1, 100), NULL, NULL);
            EXPECT(wl[0] == 5 && wl[1] == 0 && wl[2] >= 1 && expect_close("word features = the text encoder's", w5, o0.words_emb->data, 256 * 5, 1e-6),
                   "%s: word features (lengths %d %d %d)", variant, wl[0], wl[1], wl[2]);
            /* the full score of image 0 and text 0 = the sims of the DAMSM's two losses (B = 1) */
            Tensor *reg0 = op_slice(&t2, io.region, 0, 0, 1), *code0 = op_slice(&t2, io.code, 0, 0, 1);
            DamsmLoss lw = damsm_words_loss(&t2, &ev.mc, reg0, o0.words_emb, &len0, NULL, 1);
            DamsmLoss ls = damsm_sent_loss(&t2, &ev.mc, code0, o0.sent_emb, NULL, 1);
            double want_s = (double)lw.sims->data[0] + ls.sims->data[0];
            double got = evaluator_damsm_score(&ev, i1, c1, r1, w5, 5);
            EXPECT(fabs(got - want_s) < 1e-4 * fmax(1.0, fabs(want_s)), "%s: full DAMSM score %.6f = the losses' sims %.6f", variant, got, want_s);
            tape_free(&t2);
            free(r1);
            free(r2);
            free(w5);
        }
        tape_free(&tp);
        /* the networks on the host device (the device path with the CPU kernels, host code kept off
         * device memory): text codes and documents are the CPU's bits; images too, against the CPU's
         * trunk in NCHW, the layout of every device (the CPU's default nChw16c runs other 1x1
         * convolution kernels: its features differ in the last bits) */
        float hc[3 * 256], hdoc[256], *hi = xmalloc(sizeof i1), *hp = xmalloc(sizeof p1), *hm = xmalloc(sizeof m1);
        float *ci = xmalloc(sizeof i1), *cp = xmalloc(sizeof p1), *cm = xmalloc(sizeof m1);
        int hk[3], known_c[3];
        evaluator_text_codes(&ev, texts, 3, c2, known_c); /* the CPU's counts again (known was reused) */
        image_encoder_set_blocked_layout(0);
        evaluator_images(&ev, img, B, S, ci, cp, cm, NULL);
        image_encoder_set_blocked_layout(1);
        evaluator_to_device(&ev, DEVICE_HOSTDEV);
        evaluator_text_codes(&ev, texts, 3, hc, hk);
        int hnw = evaluator_document_lstm(&ev, doc, 2, hdoc);
        evaluator_images(&ev, img, B, S, hi, hp, hm, NULL);
        EXPECT(hostdev_owns(ev.te.ps.values) && hostdev_owns(ev.ie.ps.values) && !memcmp(c1, hc, sizeof c1) &&
               !memcmp(known_c, hk, sizeof hk) && hnw == nw && !memcmp(dcode, hdoc, sizeof dcode),
               "%s: text codes and a document's code on the host device: the CPU's bits", variant);
        EXPECT(!memcmp(ci, hi, (size_t)B * 256 * sizeof(float)) && !memcmp(cp, hp, (size_t)B * 2048 * sizeof(float)) &&
                   !memcmp(cm, hm, (size_t)B * 768 * sizeof(float)),
               "%s: image codes, pool and mean Mixed_6e features of %d images on the host device: the bits of the CPU's NCHW trunk", variant, B);
        expect_close("host device vs the CPU's default (nChw16c) trunk: image codes", hi, i1, B * 256, 1e-5);
        expect_close("host device vs the CPU's default (nChw16c) trunk: pool features", hp, p1, B * 2048, 1e-5);
        evaluator_to_device(&ev, DEVICE_CPU);
        free(ci);
        free(cp);
        free(cm);
        free(hi);
        free(hp);
        free(hm);
        free(img);
        evaluator_free(&ev);
    }
    text_encoder_free(&te);
    image_encoder_free(&ie);
    vocab_free(&v);
    const char *files[4] = {"config.json", "vocab.txt", "text_encoder.safetensors", "image_encoder.safetensors"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

int main(void) {
    test_begin("test_eval");
    test_split();
    test_train();
    test_file();
    test_evaluator_errors();
    test_evaluator_codes("the seed's codes", NULL, 0, 16); /* eval's batch of 16 */
    const char *lstm_mixed[2] = {"EXTRA.SENT_CODE=lstm", "EXTRA.IMAGE_CODE=mixed_6e"}, *residual[1] = {"ZSL.RESIDUAL=True"};
    test_evaluator_codes("LSTM sentence code, Mixed_6e image code", lstm_mixed, 2, 2);
    test_evaluator_codes("ZSL.RESIDUAL", residual, 1, 2);
    return test_end();
}
