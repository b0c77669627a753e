/* evaluator.c: the fixed evaluator of `attngan eval`; see evaluator.h. */
#include "evaluator.h"
#include "../io/locate.h"
#include "../gen/gen.h"
#include "../nn/keras_inception.h"
#include "../nn/damsm.h"
#include "../nn/load.h"
#include "../io/files.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static uint64_t hash_params(uint64_t h, const ParamSet *ps) {
    h = fnv1a(h, ps->values, (size_t)ps->n_values * sizeof(float));
    if (ps->n_buffers) h = fnv1a(h, ps->buffers, (size_t)ps->n_buffers * sizeof(float));
    return h;
}

/* The text side runs on one thread: the LSTM's and ZSL G's matrix products split their sums by
 * the thread count (the cost is small: a few thousand short texts). */
static int serial_begin(void) {
    int t = threads_get();
    if (t != 1) threads_set(1);
    return t;
}
static void serial_end(int t) {
    if (t != 1) threads_set(t);
}

static int need_file(const char *dir, const char *name, char *path, size_t len) {
    struct stat sb;
    snprintf(path, len, "%s/%s", dir, name);
    if (stat(path, &sb) || !S_ISREG(sb.st_mode))
        return err_set("evaluator %s: no %s (an evaluator directory holds config.json, vocab.txt, text_encoder.safetensors and "
                       "image_encoder.safetensors, as `attngan pretrain --out DIR` or `attngan export --damsm RUN --out DIR` writes)",
                       dir, name);
    return 0;
}

int evaluator_load(Evaluator *ev, const char *dir, const char *inception) {
    memset(ev, 0, sizeof *ev);
    snprintf(ev->dir, sizeof ev->dir, "%s", dir);
    struct stat sb;
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode))
        return err_set("evaluator directory %s does not exist: give --evaluator DIR, a DAMSM directory as `attngan pretrain --out DIR` "
                       "writes it (or `attngan export --damsm RUN --out DIR`)", dir);
    char path[2300];
    if (need_file(dir, "config.json", path, sizeof path)) return -1;
    char *js = read_file_all(path, 64u << 20);
    if (!js) return -1;
    train_config_default(&ev->tc);
    int rc = train_config_from_json(&ev->tc, js);
    free(js);
    if (rc) return err_prefix("%s", path);
    const char *kind = ev->tc.extra.inception;
    if (strcmp(kind, "keras_nsfwjs") && strcmp(kind, "torchvision"))
        return err_set("%s: EXTRA.INCEPTION is '%s': this DAMSM was trained on a randomly initialised trunk, which is not saved; an "
                       "evaluator needs a pretrained one (EXTRA.INCEPTION keras_nsfwjs or torchvision, with EXTRA.INCEPTION_WEIGHTS)",
                       path, kind);
    /* the directory's own files first: what is missing there is named before the trunk's search */
    if (need_file(dir, "vocab.txt", path, sizeof path) || vocab_load(&ev->vocab, path)) return -1;
    /* --inception, $ATTNGAN_INCEPTION, then EXTRA.INCEPTION_WEIGHTS's places (src/io/locate.h) */
    if (locate_trunk(inception, ev->tc.extra.inception_weights, ev->inception, sizeof ev->inception)) {
        err_prefix("evaluator %s", dir);
        evaluator_free(ev); /* the vocabulary */
        return -1;
    }
    const char *inc = ev->inception;
    if (!strcmp(kind, "torchvision")) snprintf(ev->trunk, sizeof ev->trunk, "torchvision inception_v3 weights (%s)", inc);
    else
        snprintf(ev->trunk, sizeof ev->trunk,
                 "Keras Inception-v3 of nsfwjs 4.4.0 (uint8-quantised, fine-tuned for NSFW classification; %s): not the network of "
                 "published FIDs",
                 inc);
    ev->tight_pad = train_config_tight_pad(&ev->tc);
    train_config_to_model(&ev->tc, &ev->mc);
    ev->mc.n_words = ev->vocab.n;
    text_encoder_init(&ev->te, &ev->mc);
    image_encoder_init(&ev->ie, &ev->mc);
    ev->te.train = 0;
    ev->ie.train = 0;
    rc = need_file(dir, "text_encoder.safetensors", path, sizeof path) || nn_load_file(&ev->te.ps, path, 0);
    if (!rc) {
        if (!strcmp(kind, "torchvision")) {
            rc = nn_load_file(&ev->ie.ps, inc, LOAD_PARTIAL | LOAD_IGNORE_UNEXPECTED | LOAD_NBT_OPTIONAL);
            for (int i = 0; !rc && i < ev->ie.ps.n; i++)
                if (image_encoder_is_trunk_key(ev->ie.ps.entries[i]->name) && !ev->ie.ps.entries[i]->loaded)
                    rc = err_set("%s: trunk tensor %s missing (torchvision inception_v3 names expected)", inc, ev->ie.ps.entries[i]->name);
        } else rc = keras_inception_load(&ev->ie, inc);
        if (rc) err_prefix("evaluator %s: the trunk", dir);
    }
    if (!rc) rc = need_file(dir, "image_encoder.safetensors", path, sizeof path) || nn_load_file(&ev->ie.ps, path, LOAD_PARTIAL);
    for (int i = 0; !rc && i < ev->ie.ps.n; i++) {
        const ParamEntry *e = ev->ie.ps.entries[i];
        if (!image_encoder_is_trunk_key(e->name) && !e->loaded) rc = err_set("%s: no %s (the DAMSM image heads)", path, e->name);
    }
    ev->ie.train = 0;
    if (rc) {
        evaluator_free(ev);
        return -1;
    }
    uint64_t h = 1469598103934665603ull;
    h = hash_params(h, &ev->te.ps);
    h = hash_params(h, &ev->ie.ps);
    ev->hash = h;
    snprintf(ev->hash_hex, sizeof ev->hash_hex, "%016llx", (unsigned long long)h);
    h = 1469598103934665603ull;
    for (int i = 0; i < ev->ie.ps.n; i++) {
        const ParamEntry *e = ev->ie.ps.entries[i];
        if (!image_encoder_is_trunk_key(e->name) || e->kind == PARAM_BUFFER_I64) continue;
        h = fnv1a(h, e->name, strlen(e->name));
        h = fnv1a(h, e->t.data, (size_t)e->t.n * sizeof(float));
    }
    snprintf(ev->trunk_hash, sizeof ev->trunk_hash, "%016llx", (unsigned long long)h);
    return 0;
}

void evaluator_to_device(Evaluator *ev, int dev) {
    paramset_to_device(&ev->te.ps, dev);
    paramset_to_device(&ev->ie.ps, dev);
}

void evaluator_view_model(Evaluator *view, const GenModel *m) {
    memset(view, 0, sizeof *view);
    snprintf(view->dir, sizeof view->dir, "%s", m->dir);
    view->tc = m->tc;
    view->mc = m->mc;
    view->vocab = m->vocab;   /* shallow copies: the view reads the model's networks and vocabulary */
    view->te = m->te;
    view->ie = m->ie;
}

void evaluator_free(Evaluator *ev) {
    if (ev->vocab.words) vocab_free(&ev->vocab);
    if (ev->te.ps.n) text_encoder_free(&ev->te);
    if (ev->ie.ps.n) image_encoder_free(&ev->ie);
    memset(ev, 0, sizeof *ev);
}

void evaluator_sent_codes(const Evaluator *ev, const float *c, int n, float *out) {
    const int E = ev->mc.embedding_dim, Z = ev->mc.zsl_z, CH = 256;
    int threads = serial_begin();
    for (int s = 0; s < n; s += CH) {
        int b = n - s < CH ? n - s : CH;
        Tape tp;
        tape_init_on(&tp, ev->te.ps.device);
        tape_no_grad_begin(&tp);
        Tensor *x = TNEW(&tp, b, E), *z = TZEROS(&tp, b, Z);
        tensor_upload(x, c + (size_t)s * E);
        Tensor *y = text_encoder_sent_code(&tp, (TextEncoder *)&ev->te, x, z);
        tensor_download(y, out + (size_t)s * E); /* c's rows are on the tape already: out may be c */
        tape_free(&tp);
    }
    serial_end(threads);
}

void evaluator_lstm_codes(const Evaluator *ev, const char *const *texts, int n, float *codes, int *n_known) {
    int threads = serial_begin();
    gen_lstm_codes(&ev->te, &ev->vocab, texts, n, codes, n_known);
    serial_end(threads);
}

void evaluator_text_codes(const Evaluator *ev, const char *const *texts, int n, float *codes, int *n_known) {
    const int E = ev->mc.embedding_dim;
    int *known = xmalloc((size_t)(n ? n : 1) * sizeof(int));
    evaluator_lstm_codes(ev, texts, n, codes, known);
    evaluator_sent_codes(ev, codes, n, codes);
    for (int i = 0; i < n; i++) {
        if (!known[i]) memset(codes + (size_t)i * E, 0, (size_t)E * sizeof(float));
        if (n_known) n_known[i] = known[i];
    }
    free(known);
}

int evaluator_document_lstm(const Evaluator *ev, const char *const *sentences, int n, float *code) {
    const int E = ev->mc.embedding_dim, T = ev->mc.words_num;
    int nw = 0, capw = 16;
    char **win = xmalloc((size_t)capw * sizeof(char *));
    for (int s = 0; s < n; s++) {
        char **tok;
        int nt = text_tokenize(sentences[s], &tok), k = 0;
        size_t len = 1;
        for (int t = 0; t < nt; t++) len += strlen(tok[t]) + 1;
        char *buf = xcalloc(len, 1);
        for (int t = 0; t < nt; t++) {
            if (vocab_find(&ev->vocab, tok[t]) <= 0) continue;
            if (k) strcat(buf, " ");
            strcat(buf, tok[t]);
            if (++k == T) {
                if (nw == capw) win = xrealloc(win, (size_t)(capw *= 2) * sizeof(char *));
                win[nw++] = xstrdup(buf);
                buf[0] = 0;
                k = 0;
            }
        }
        if (k) {
            if (nw == capw) win = xrealloc(win, (size_t)(capw *= 2) * sizeof(char *));
            win[nw++] = xstrdup(buf);
        }
        free(buf);
        text_free_tokens(tok, nt);
    }
    memset(code, 0, (size_t)E * sizeof(float));
    if (nw) {
        float *c = xmalloc((size_t)nw * E * sizeof(float));
        evaluator_lstm_codes(ev, (const char *const *)win, nw, c, NULL);
        double *acc = xcalloc((size_t)E, sizeof(double));
        for (int w = 0; w < nw; w++)
            for (int e = 0; e < E; e++) acc[e] += c[(size_t)w * E + e];
        for (int e = 0; e < E; e++) code[e] = (float)(acc[e] / nw);
        free(acc);
        free(c);
    }
    for (int w = 0; w < nw; w++) free(win[w]);
    free(win);
    return nw;
}

void evaluator_image_codes(const ImageEncoder *ie, int mixed, const float *in, int B, size_t stride, float *code) {
    /* in a fixed order: the trunk's values do not depend on the thread count, the linear op's
       matrix product does */
    const LinearLayer *l = &ie->emb_cnn_code;
    const int D = mixed ? EVAL_MIXED_D : EVAL_POOL_D, E = (int)l->weight->shape[0];
    CHECK(l->weight->shape[1] == D && stride >= (size_t)D, "evaluator_image_codes: emb_cnn_code takes %d features, not %d",
          (int)l->weight->shape[1], D);
    float *w = xmalloc((size_t)l->weight->n * sizeof(float)), *bias = l->bias ? xmalloc((size_t)l->bias->n * sizeof(float)) : NULL;
    tensor_download(l->weight, w);
    if (bias) tensor_download(l->bias, bias);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int e = 0; e < E; e++) {
            double s = bias ? bias[e] : 0.0;
            for (int k = 0; k < D; k++) s += (double)w[(size_t)e * D + k] * in[(size_t)b * stride + k];
            code[(size_t)b * E + e] = (float)s;
        }
    free(w);
    free(bias);
}

void evaluator_images(Evaluator *ev, const float *imgs, int B, int S, float *code, float *pool, float *mixed, float *region) {
    const int E = ev->mc.embedding_dim;
    Tape tp;
    tape_init_on(&tp, ev->ie.ps.device);
    tape_no_grad_begin(&tp);
    Tensor *x = TNEW(&tp, B, 3, S, S);
    tensor_upload(x, imgs);
    ImageEncoderOut o = image_encoder_forward(&tp, &ev->ie, x);
    CHECK(!o.mixed_6e->blocked && o.mixed_6e->shape[1] == EVAL_MIXED_D, "evaluator_images: Mixed_6e must come back as NCHW (B, 768, H, W)");
    /* the rest on the host, from copies of Mixed_6e and the pool features (the trunk may run on a
     * device): the same fixed-order sums on every device */
    int hw = o.mixed_6e->shape[2] * o.mixed_6e->shape[3];
    float *mixed6e = xmalloc((size_t)o.mixed_6e->n * sizeof(float)), *tpool = xmalloc((size_t)o.trunk_pool->n * sizeof(float));
    tensor_download(o.mixed_6e, mixed6e);
    tensor_download(o.trunk_pool, tpool);
    float *mean = xmalloc((size_t)B * EVAL_MIXED_D * sizeof(float));
    for (int b = 0; b < B; b++)
        for (int c = 0; c < EVAL_MIXED_D; c++) {
            const float *p = mixed6e + ((size_t)b * EVAL_MIXED_D + c) * hw;
            double s = 0;
            for (int k = 0; k < hw; k++) s += p[k];
            mean[(size_t)b * EVAL_MIXED_D + c] = (float)(s / hw);
        }
    if (code) /* emb_cnn_code of the pool features or, with EXTRA.IMAGE_CODE 'mixed_6e', of the mean
                 of Mixed_6e (image_encoder_code) */
        evaluator_image_codes(&ev->ie, ev->mc.image_code_mixed, ev->mc.image_code_mixed ? mean : tpool, B,
                              ev->mc.image_code_mixed ? EVAL_MIXED_D : EVAL_POOL_D, code);
    if (region) { /* emb_features (a 1x1 convolution without bias) of Mixed_6e, each sum over the
                     768 channels in order */
        const Conv2dLayer *l = &ev->ie.emb_features;
        CHECK(hw == EVAL_REGIONS && l->weight->shape[0] == E && l->weight->shape[1] == EVAL_MIXED_D && !l->bias,
              "evaluator_images: emb_features must be a 1x1 convolution of the 768 x 17 x 17 Mixed_6e to E without bias");
        float *w = xmalloc((size_t)l->weight->n * sizeof(float));
        tensor_download(l->weight, w);
#pragma omp parallel for collapse(2) schedule(static)
        for (int b = 0; b < B; b++)
            for (int e = 0; e < E; e++) {
                float *out = region + ((size_t)b * E + e) * hw;
                const float *m = mixed6e + (size_t)b * EVAL_MIXED_D * hw, *we = w + (size_t)e * EVAL_MIXED_D;
                for (int k = 0; k < hw; k++) out[k] = 0.0f;
                for (int c = 0; c < EVAL_MIXED_D; c++)
                    for (int k = 0; k < hw; k++) out[k] += we[c] * m[(size_t)c * hw + k];
            }
        free(w);
    }
    if (pool) memcpy(pool, tpool, (size_t)B * EVAL_POOL_D * sizeof(float));
    if (mixed) memcpy(mixed, mean, (size_t)B * EVAL_MIXED_D * sizeof(float));
    free(mean);
    free(mixed6e);
    free(tpool);
    tape_free(&tp);
}

void evaluator_words(const Evaluator *ev, const char *const *texts, int n, float *words, int *lens) {
    int threads = serial_begin();
    gen_text_features(&ev->te, &ev->vocab, texts, n, NULL, words, lens, NULL);
    serial_end(threads);
}

double evaluator_damsm_score(const Evaluator *ev, const float *code, const float *sent, const float *region, const float *words, int len) {
    const int E = ev->mc.embedding_dim;
    double dot = 0, a = 0, b = 0;
    for (int e = 0; e < E; e++) dot += (double)code[e] * sent[e], a += (double)code[e] * code[e], b += (double)sent[e] * sent[e];
    double den = sqrt(a) * sqrt(b), s = dot / (den < 1e-8 ? 1e-8 : den);
    if (len > 0) s += damsm_words_score(&ev->mc, region, E, EVAL_REGIONS, words, ev->mc.words_num, len);
    return ev->mc.gamma3 * s;
}
