/* gen.c: text to birds with a trained model; see gen.h. */
#include "gen.h"
#include "../io/figure.h"
#include "../io/json_check.h"
#include "../io/safetensors.h"
#include "../nn/load.h"
#include "../io/files.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------ loading */
static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* model.json (an exported model) or config.json (a training run's directory). */
static int read_model_json(GenModel *m, const char *dir, int *is_run) {
    char path[1200];
    snprintf(path, sizeof path, "%s/model.json", dir);
    *is_run = 0;
    if (!file_exists(path)) {
        snprintf(path, sizeof path, "%s/config.json", dir);
        if (!file_exists(path))
            return err_set("%s: not a model directory (no model.json, as `attngan export` writes, and no config.json of a training run)", dir);
        *is_run = 1;
    }
    char *text = read_file_all(path, 64u << 20);
    if (!text) return -1;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root || !cJSON_IsObject(root)) { cJSON_Delete(root); return err_set("%s: not a JSON object", path); }
    if (json_no_duplicate_keys(root)) { cJSON_Delete(root); return err_prefix("%s", path); }
    int rc = 0;
    train_config_default(&m->tc);
    const cJSON *cfg = *is_run ? root : cJSON_GetObjectItemCaseSensitive(root, "config");
    if (!*is_run) {
        const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
        if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, GEN_MODEL_FORMAT))
            rc = err_set("%s: \"format\" must be \"%s\"", path, GEN_MODEL_FORMAT);
        if (!rc && !cJSON_IsObject(cfg)) rc = err_set("%s: no \"config\" object", path);
    }
    if (!rc) {
        char *cj = cJSON_PrintUnformatted(cfg);
        rc = train_config_from_json(&m->tc, cj);
        free(cj);
        if (rc) err_prefix("%s", path);
    }
    if (!rc && !*is_run) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "trained_on");
        if (cJSON_IsString(t)) snprintf(m->trained_on, sizeof m->trained_on, "%s", t->valuestring);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "steps");
        int64_t steps;
        if (s && !cJSON_IsNull(s)) {
            if (json_whole(s, 0, 9.0e18, &steps)) m->steps = (long long)steps;
            else rc = err_set("%s: \"steps\" must be a whole number from 0 to 9e18", path);
        }
        const cJSON *rel = cJSON_GetObjectItemCaseSensitive(root, "relevance");
        if (rel && !rc) {
            int E = m->tc.text.embedding_dim;
            const char *keys[2] = {"captions", "noise"};
            float **dst[2] = {&m->rel_cap, &m->rel_noise};
            for (int k = 0; k < 2 && !rc; k++) {
                const cJSON *c = cJSON_GetObjectItemCaseSensitive(rel, keys[k]);
                if (!cJSON_IsArray(c) || cJSON_GetArraySize(c) != E) {
                    rc = err_set("%s: \"relevance\".\"%s\" must be an array of TEXT.EMBEDDING_DIM = %d numbers", path, keys[k], E);
                    break;
                }
                float *v = *dst[k] = xmalloc((size_t)E * sizeof(float));
                double nrm = 0;
                for (int i = 0; i < E && !rc; i++) {
                    const cJSON *x = cJSON_GetArrayItem(c, i);
                    if (!cJSON_IsNumber(x) || !(fabs(x->valuedouble) <= FLT_MAX))
                        rc = err_set("%s: \"relevance\".\"%s\"[%d] is not a number in a float's range", path, keys[k], i);
                    else v[i] = (float)x->valuedouble, nrm += x->valuedouble * x->valuedouble;
                }
                if (!rc && !(nrm > 0)) rc = err_set("%s: \"relevance\".\"%s\" is zero", path, keys[k]);
                for (int i = 0; i < E && !rc; i++) v[i] /= (float)sqrt(nrm);
            }
        }
    }
    cJSON_Delete(root);
    return rc;
}

int gen_model_load(GenModel *m, const char *dir) {
    memset(m, 0, sizeof *m);
    m->steps = -1;
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    int is_run;
    if (read_model_json(m, dir, &is_run)) { gen_model_free(m); return -1; }
    if (train_config_check_gan(&m->tc)) {
        err_prefix("%s", dir);
        gen_model_free(m);
        return -1;
    }
    char path[2300], te_path[2300];
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    if (vocab_load(&m->vocab, path)) { gen_model_free(m); return -1; }
    train_config_to_model(&m->tc, &m->mc);
    m->mc.n_words = m->vocab.n;
    if (m->tc.extra.zsl_train_classes_only) m->mc.num_classes = 150; /* unused by generation */
    if (is_run && !m->tc.zsl.gan_phase) snprintf(te_path, sizeof te_path, "%s", m->tc.train.net_e);
    else snprintf(te_path, sizeof te_path, "%s/text_encoder.safetensors", dir); /* a model, or a ZSL.GAN_PHASE
                                                                                  run's own text encoder */
    /* With the LSTM's own sentence code (EXTRA.SENT_CODE lstm), ZSL G is never used to draw:
     * leave it out, so that AttnGAN's own text encoder (no zsl_g.*, `attngan import`) loads, and
     * a trained encoder's zsl_g.* are skipped (every key the net has must still be there). */
    m->mc.no_zsl_g = m->mc.sent_lstm && !m->mc.zsl_word;
    text_encoder_init(&m->te, &m->mc);
    gnet_init(&m->g, &m->mc, m->tc.tree.branch_num);
    m->te.train = 0;
    m->g.train = 0;
    int rc = nn_load_file(&m->te.ps, te_path, m->mc.no_zsl_g ? LOAD_IGNORE_UNEXPECTED : 0);
    snprintf(path, sizeof path, "%s/netG.safetensors", dir);
    if (!rc) rc = nn_load_file(&m->g.ps, path, 0);
    snprintf(path, sizeof path, "%s/image_encoder.safetensors", dir);
    if (!rc && !is_run && file_exists(path)) {
        image_encoder_init(&m->ie, &m->mc);
        m->has_ie = 1;
        rc = nn_load_file(&m->ie.ps, path, LOAD_PARTIAL);
    }
    if (rc) gen_model_free(m);
    return rc;
}

void gen_model_to_device(GenModel *m, int dev) {
    paramset_to_device(&m->te.ps, dev);
    paramset_to_device(&m->g.ps, dev);
    if (m->has_ie) paramset_to_device(&m->ie.ps, dev);
}

int gen_model_device(const GenModel *m) { return m->g.ps.device; }

void gen_model_free(GenModel *m) {
    if (m->vocab.words) vocab_free(&m->vocab);
    if (m->te.ps.n) text_encoder_free(&m->te);
    if (m->g.ps.n) gnet_free(&m->g);
    if (m->has_ie) image_encoder_free(&m->ie);
    free(m->rel_cap);
    free(m->rel_noise);
    memset(m, 0, sizeof *m);
}

int gen_model_stages(const GenModel *m) { return m->tc.tree.branch_num; }

void gen_options_default(GenOptions *o) {
    o->n = 1;
    o->seed = 0;
    o->max_segments = GEN_MAX_SEGMENTS;
    o->long_text = GEN_LONG_SELECT;
}

/* ------------------------------------------------------------------ text */
/* A piece of text between sentence ends, as token ids. */
typedef struct Seg {
    int64_t *ids;
    int n;
    int tokens;            /* words of the piece, known or not */
} Seg;

static int is_sentence_end(unsigned char c) { return c == '.' || c == '!' || c == '?' || c == ';' || c == '\n' || c == '\r'; }

/* Adds w to the comma-separated list *list unless it is there. */
static void add_unknown(char **list, const char *w) {
    if (*list) {
        size_t n = strlen(w);
        for (const char *p = *list; (p = strstr(p, w)); p += n)
            if ((p == *list || p[-1] == ',') && (p[n] == ',' || !p[n])) return;
        size_t l = strlen(*list);
        *list = xrealloc(*list, l + n + 2);
        (*list)[l] = ',';
        memcpy(*list + l + 1, w, n + 1);
    } else *list = xstrdup(w);
}

/* Splits text into sentence pieces of known ids; unknown words go to *unknown. Returns the number
 * of non-empty pieces (array in *out). */
static int split_sentences(const Vocab *v, const char *text, Seg **out, char **unknown, int *total) {
    int cap = 8, n = 0;
    Seg *segs = xmalloc((size_t)cap * sizeof(Seg));
    size_t len = strlen(text);
    char *buf = xmalloc(len + 1);
    *total = 0;
    for (size_t i = 0; i <= len;) {
        size_t j = i;
        while (j < len && !is_sentence_end((unsigned char)text[j])) j++;
        memcpy(buf, text + i, j - i);
        buf[j - i] = 0;
        char **tok;
        int nt = text_tokenize(buf, &tok);
        int64_t *ids = xmalloc((size_t)(nt ? nt : 1) * sizeof(int64_t));
        int k = 0;
        for (int t = 0; t < nt; t++) {
            int id = vocab_find(v, tok[t]);
            if (id > 0) ids[k++] = id;
            else add_unknown(unknown, tok[t]);
        }
        text_free_tokens(tok, nt);
        if (k) {
            if (n == cap) segs = xrealloc(segs, (size_t)(cap *= 2) * sizeof(Seg));
            segs[n++] = (Seg){ids, k, nt};
            *total += k;
        } else free(ids);
        i = j + 1;
    }
    free(buf);
    *out = segs;
    return n;
}

/* known / tokens of the piece that holds ids (a pointer into one of the pieces) */
static double pieces_known_fraction(const Seg *pieces, int n, const int64_t *ids) {
    for (int p = 0; p < n; p++)
        if (ids >= pieces[p].ids && ids < pieces[p].ids + pieces[p].n) return pieces[p].tokens ? (double)pieces[p].n / pieces[p].tokens : 0.0;
    return 0.0;
}

void gen_text_features(const TextEncoder *te, const Vocab *v, const char *const *texts, int n, float *codes, float *words, int *lens,
                       int *n_known) {
    const int T = te->cfg.words_num, E = te->cfg.embedding_dim, Z = te->cfg.zsl_z, CH = 256;
    CHECK(!words || lens, "gen_text_features: word features need lens");
    int64_t *caps = xmalloc((size_t)CH * T * sizeof(int64_t));
    int *blens = xmalloc((size_t)CH * sizeof(int)), *which = xmalloc((size_t)CH * sizeof(int));
    if (words) memset(words, 0, (size_t)n * E * T * sizeof(float));
    for (int start = 0; start < n; start += CH) {
        int b = 0;
        memset(caps, 0, (size_t)CH * T * sizeof(int64_t));
        for (int i = start; i < n && i < start + CH; i++) {
            if (codes) memset(codes + (size_t)i * E, 0, (size_t)E * sizeof(float));
            char **tok;
            int nt = text_tokenize(texts[i], &tok), len = 0, known = 0;
            for (int t = 0; t < nt; t++) {
                int id = vocab_find(v, tok[t]);
                if (id > 0 && ++known && len < T) caps[(size_t)b * T + len++] = id;
            }
            text_free_tokens(tok, nt);
            if (n_known) n_known[i] = known;
            if (lens) lens[i] = len;
            if (len) { blens[b] = len; which[b++] = i; }
        }
        if (!b) continue;
        Tape tp;
        tape_init_on(&tp, te->ps.device); /* the encoder's device */
        tape_no_grad_begin(&tp);
        Tensor *z = TZEROS(&tp, b, Z);
        TextEncoderOut o = text_encoder_forward(&tp, (TextEncoder *)te, caps, blens, b, z, NULL, NULL);
        if (codes) {
            float *sent = tape_alloc(&tp, (size_t)b * E * sizeof(float)); /* host */
            tensor_download(o.sent_lstm, sent);
            for (int j = 0; j < b; j++) memcpy(codes + (size_t)which[j] * E, sent + (size_t)j * E, (size_t)E * sizeof(float));
        }
        if (words) {
            int L = o.words_emb->shape[2];
            float *w = tape_alloc(&tp, (size_t)b * E * L * sizeof(float)); /* host */
            tensor_download(o.words_emb, w);
            for (int j = 0; j < b; j++)
                for (int e = 0; e < E; e++)
                    memcpy(words + ((size_t)which[j] * E + e) * T, w + ((size_t)j * E + e) * L, (size_t)blens[j] * sizeof(float));
        }
        tape_free(&tp);
    }
    free(caps);
    free(blens);
    free(which);
}

void gen_lstm_codes(const TextEncoder *te, const Vocab *v, const char *const *texts, int n, float *codes, int *n_known) {
    gen_text_features(te, v, texts, n, codes, NULL, NULL, n_known);
}

/* ------------------------------------------------------------------ generation */
/* The encoded text: G's word features (E, L) and the LSTM code (E) it is conditioned on, on the
 * host (arena memory of the tape: gen_run copies them n times to the tape's device). */
typedef struct Encoded {
    float *words;           /* (E, L) */
    float *code;            /* (E) */
} Encoded;

/* Text -> segments -> (words, code) on tp; fills r's text fields (unknown, segments, words, L).
 * On error r holds nothing. */
static int encode_text(const GenModel *m, const char *text, const GenOptions *o, Tape *tp, GenResult *r, Encoded *out) {
    if (!text) return err_set("no text");
    size_t tl = strlen(text);
    if (tl > GEN_MAX_TEXT) return err_set("the text has %zu bytes, more than the %d accepted", tl, GEN_MAX_TEXT);
    int blank = 1;
    for (size_t i = 0; i < tl && blank; i++) blank = isspace((unsigned char)text[i]) != 0;
    if (blank) return err_set("the caption is empty");
    const Vocab *v = &m->vocab;
    const int T = m->mc.words_num, E = m->mc.embedding_dim, Z = m->mc.zsl_z;
    Seg *pieces;
    int total;
    int n_pieces = split_sentences(v, text, &pieces, &r->unknown, &total);
    if (!total) {
        err_set("none of the words of the caption is in the model's vocabulary (unknown: %s)", r->unknown ? r->unknown : "none");
        free(pieces);
        free(r->unknown);
        r->unknown = NULL;
        return -1;
    }
    /* segments: the whole text when it fits one caption (or when a one-caption mode cuts it),
     * else sentences cut into windows of T */
    int cap = n_pieces + total / T + 2, ns = 0;
    Seg *segs = xmalloc((size_t)cap * sizeof(Seg));
    int64_t *all = NULL;
    if (total <= T || o->long_text != GEN_LONG_SELECT) {
        all = xmalloc((size_t)total * sizeof(int64_t));
        int k = 0;
        for (int p = 0; p < n_pieces; p++) { memcpy(all + k, pieces[p].ids, (size_t)pieces[p].n * sizeof(int64_t)); k += pieces[p].n; }
        int n = total;
        if (total > T && o->long_text == GEN_LONG_FIRST) n = T;
        if (total > T && o->long_text == GEN_LONG_SUBSET) { /* AttnGAN's get_caption */
            int64_t *row = xmalloc((size_t)T * sizeof(int64_t));
            Rng rs;
            rng_init(&rs, o->seed ^ 0x5ca1ab1eULL);
            n = caption_sample(all, total, T, &rs, row);
            memcpy(all, row, (size_t)n * sizeof(int64_t));
            free(row);
        }
        segs[ns++] = (Seg){all, n, total};
    } else {
        for (int p = 0; p < n_pieces; p++)
            for (int s = 0; s < pieces[p].n; s += T)
                segs[ns++] = (Seg){pieces[p].ids + s, pieces[p].n - s < T ? pieces[p].n - s : T, pieces[p].tokens};
    }
    /* every segment through the LSTM (ZSL G's output is not used here) */
    int64_t *caps = tape_calloc(tp, (size_t)ns * T * sizeof(int64_t));
    int *lens = tape_alloc(tp, (size_t)ns * sizeof(int));
    for (int s = 0; s < ns; s++) {
        memcpy(caps + (size_t)s * T, segs[s].ids, (size_t)segs[s].n * sizeof(int64_t));
        lens[s] = segs[s].n;
    }
    Tensor *z0 = TZEROS(tp, ns, Z);
    TextEncoderOut enc = text_encoder_forward(tp, (TextEncoder *)&m->te, caps, lens, ns, z0, NULL, NULL);
    int Lmax = enc.words_emb->shape[2];
    /* the codes and word features on the host (the tape may be a device's) */
    float *sent_lstm = tape_alloc(tp, (size_t)enc.sent_lstm->n * sizeof(float));
    float *words_emb = tape_alloc(tp, (size_t)enc.words_emb->n * sizeof(float));
    tensor_download(enc.sent_lstm, sent_lstm);
    tensor_download(enc.words_emb, words_emb);

    /* relevance and choice */
    r->n_segments = ns;
    r->segments = xcalloc((size_t)ns, sizeof(GenSegment));
    float best = -2.0f;
    int ibest = 0;
    for (int s = 0; s < ns; s++) {
        GenSegment *g = &r->segments[s];
        g->text = vocab_decode(v, segs[s].ids, segs[s].n);
        g->n_words = segs[s].n;
        if (ns > 1) {
            /* the fraction of the piece's words that are known (a window gets its piece's) */
            g->relevance = (float)pieces_known_fraction(pieces, n_pieces, segs[s].ids);
            if (m->rel_cap && m->rel_noise) {
                const float *h = sent_lstm + (size_t)s * E;
                double dc = 0, dn = 0, nn = 0;
                for (int e = 0; e < E; e++) dc += h[e] * m->rel_cap[e], dn += h[e] * m->rel_noise[e], nn += (double)h[e] * h[e];
                if (nn > 0) g->relevance += (float)((dc - dn) / sqrt(nn));
            }
        }
        if (g->relevance > best) best = g->relevance, ibest = s;
    }
    if (ns == 1) {
        r->segments[0].used = 1;
    } else {
        r->segments[ibest].used = 1;
        int used = 1;
        while (used < o->max_segments) {
            int pick = -1;
            for (int s = 0; s < ns; s++)
                if (!r->segments[s].used && r->segments[s].relevance >= best - GEN_RELEVANCE_MARGIN &&
                    (pick < 0 || r->segments[s].relevance > r->segments[pick].relevance))
                    pick = s;
            if (pick < 0) break;
            r->segments[pick].used = 1;
            used++;
        }
    }
    /* words (1, E, L) of the used segments in document order; the mean LSTM code */
    int L = 0, nu = 0;
    for (int s = 0; s < ns; s++)
        if (r->segments[s].used) L += segs[s].n, nu++;
    float *words = tape_alloc(tp, (size_t)E * L * sizeof(float));
    float *code = tape_calloc(tp, (size_t)E * sizeof(float));
    r->L = L;
    r->words = xcalloc((size_t)L, sizeof(char *));
    int col = 0;
    for (int s = 0; s < ns; s++) {
        if (!r->segments[s].used) continue;
        for (int t = 0; t < segs[s].n; t++, col++) {
            r->words[col] = xstrdup(v->words[segs[s].ids[t]]);
            for (int e = 0; e < E; e++) words[(size_t)e * L + col] = words_emb[((size_t)s * E + e) * Lmax + t];
        }
        for (int e = 0; e < E; e++) code[e] += sent_lstm[(size_t)s * E + e] / (float)nu;
    }
    out->words = words;
    out->code = code;
    for (int p = 0; p < n_pieces; p++) free(pieces[p].ids);
    free(pieces);
    free(segs);
    free(all);
    return 0;
}

static int check_options(const GenOptions *o) {
    if (o->n < 1 || o->n > GEN_MAX_N) return err_set("n = %d images: must be 1..%d", o->n, GEN_MAX_N);
    if (o->max_segments < 1) return err_set("max_segments = %d: must be at least 1", o->max_segments);
    if (o->long_text < GEN_LONG_SELECT || o->long_text > GEN_LONG_SUBSET) return err_set("long_text mode %d is unknown", o->long_text);
    return 0;
}

int gen_text_code(const GenModel *m, const char *text, const GenOptions *opt, float *code, GenResult *info) {
    GenOptions o;
    if (opt) o = *opt;
    else gen_options_default(&o);
    GenResult r;
    memset(&r, 0, sizeof r);
    if (check_options(&o)) return -1;
    Tape tp;
    tape_init_on(&tp, gen_model_device(m));
    tape_no_grad_begin(&tp);
    Encoded enc;
    int rc = encode_text(m, text, &o, &tp, &r, &enc);
    if (!rc) memcpy(code, enc.code, (size_t)m->mc.embedding_dim * sizeof(float));
    tape_free(&tp);
    if (info && !rc) *info = r;
    else gen_result_free(&r);
    return rc;
}

int gen_run(const GenModel *m, const char *text, const GenOptions *opt, GenResult *r) {
    memset(r, 0, sizeof *r);
    GenOptions o;
    if (opt) o = *opt;
    else gen_options_default(&o);
    if (check_options(&o)) return -1;
    const int E = m->mc.embedding_dim, Z = m->mc.zsl_z;
    Tape tp;
    tape_init_on(&tp, gen_model_device(m));
    tape_no_grad_begin(&tp);
    Encoded enc;
    if (encode_text(m, text, &o, &tp, r, &enc)) {
        tape_free(&tp);
        return -1;
    }
    int L = r->L;
    /* G's inputs, made on the host and copied to the tape's device */
    Tensor *words = TNEW(&tp, o.n, E, L);
    Tensor *code = TNEW(&tp, o.n, E);
    float *hwords = tape_alloc(&tp, (size_t)words->n * sizeof(float)), *hcode = tape_alloc(&tp, (size_t)code->n * sizeof(float));
    for (int i = 0; i < o.n; i++) {
        memcpy(hwords + (size_t)i * E * L, enc.words, (size_t)E * L * sizeof(float));
        memcpy(hcode + (size_t)i * E, enc.code, (size_t)E * sizeof(float));
    }
    tensor_upload(words, hwords);
    tensor_upload(code, hcode);
    /* ZSL G's noise: image i from its own Philox stream, so image i does not depend on n */
    Tensor *z = TNEW(&tp, o.n, Z);
    float *hz = tape_alloc(&tp, (size_t)z->n * sizeof(float));
    for (int i = 0; i < o.n; i++) gen_noise(o.seed, i, Z, hz + (size_t)i * Z);
    tensor_upload(z, hz);
    Tensor *sent = text_encoder_sent_code(&tp, (TextEncoder *)&m->te, code, z);
    uint8_t *mask = tape_calloc(&tp, (size_t)o.n * L);
    Rng rg;
    rng_init(&rg, o.seed ^ 0xC2B2AE3D27D4EB4Full);
    GNetOut go = gnet_forward_noise(&tp, (GNet *)&m->g, sent, words, mask, NULL, NULL, &rg);
    tape_no_grad_end(&tp);

    r->n = o.n;
    r->n_stages = go.n_imgs;
    for (int k = 0; k < go.n_imgs; k++) {
        r->size[k] = go.imgs[k]->shape[2];
        r->imgs[k] = xmalloc((size_t)go.imgs[k]->n * sizeof(float));
        tensor_download(go.imgs[k], r->imgs[k]);
    }
    r->n_att = go.n_att;
    for (int k = 0; k < go.n_att; k++) {
        r->att_h[k] = go.att[k]->shape[2];
        r->att_w[k] = go.att[k]->shape[3];
        r->att[k] = xmalloc((size_t)go.att[k]->n * sizeof(float));
        tensor_download(go.att[k], r->att[k]);
    }
    tape_free(&tp);
    return 0;
}

void gen_noise(uint64_t seed, int i, int Z, float *z) {
    Rng rz;
    rng_init(&rz, seed * 0x9E3779B97F4A7C15ull + (uint64_t)i + 1);
    rng_normal(&rz, z, Z, 0.0f, 1.0f);
}

void gen_result_free(GenResult *r) {
    for (int k = 0; k < 3; k++) free(r->imgs[k]);
    for (int k = 0; k < 2; k++) free(r->att[k]);
    for (int i = 0; i < r->L; i++) free(r->words[i]);
    free(r->words);
    free(r->unknown);
    for (int s = 0; s < r->n_segments; s++) free(r->segments[s].text);
    free(r->segments);
    memset(r, 0, sizeof *r);
}

int gen_result_image(const GenResult *r, int stage, int i, Image *out) {
    if (stage < 0 || stage >= r->n_stages) return err_set("stage %d: the model has stages 1..%d", stage + 1, r->n_stages);
    if (i < 0 || i >= r->n) return err_set("image %d of %d", i, r->n);
    int S = r->size[stage];
    image_from_chw(r->imgs[stage] + (size_t)i * 3 * S * S, S, S, out);
    return 0;
}

int gen_result_attention_stage(const GenResult *r, int i, int k, Image *out) {
    if (r->n_att < 1) return err_set("a one-stage model draws no attention maps");
    if (i < 0 || i >= r->n) return err_set("image %d of %d", i, r->n);
    if (k < 0 || k >= r->n_att) return err_set("attention of stage %d: the model has stages 2..%d", k + 2, r->n_att + 1);
    /* the maps over that stage's own image (the output of stage k + 2) */
    int S = r->size[k + 1];
    const float *imgs[1] = {r->imgs[k + 1] + (size_t)i * 3 * S * S};
    const float *atts[1] = {r->att[k] + (size_t)i * r->L * r->att_h[k] * r->att_w[k]};
    const char *const *words[1] = {(const char *const *)r->words};
    int nw[1] = {r->L};
    return figure_attention_rows(imgs, 1, S, atts, r->att_h[k], r->att_w[k], words, nw, out);
}

int gen_result_attention(const GenResult *r, int i, Image *out) {
    if (r->n_att < 1) return err_set("a one-stage model draws no attention maps");
    if (i < 0 || i >= r->n) return err_set("image %d of %d", i, r->n);
    Image rows[2];
    int w = 0, h = 0;
    for (int k = 0; k < r->n_att; k++) {
        if (gen_result_attention_stage(r, i, k, &rows[k])) {
            for (int j = 0; j < k; j++) image_free(&rows[j]);
            return -1;
        }
        if (rows[k].w > w) w = rows[k].w;
        h += rows[k].h;
    }
    out->w = w;
    out->h = h;
    out->data = xcalloc((size_t)w * h * 3, 1);
    int y = 0;
    for (int k = 0; k < r->n_att; k++) {
        for (int row = 0; row < rows[k].h; row++)
            memcpy(out->data + ((size_t)(y + row) * w) * 3, rows[k].data + (size_t)row * rows[k].w * 3, (size_t)rows[k].w * 3);
        y += rows[k].h;
        image_free(&rows[k]);
    }
    return 0;
}
