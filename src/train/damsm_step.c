/* damsm_step.c: the DAMSM + ZSL pretraining iteration; see damsm_step.h. */
#include "damsm_step.h"
#include "lanes.h"

#include <stdlib.h>
#include <string.h>

void damsm_trainer_init(DamsmTrainer *t, TextEncoder *te, ImageEncoder *ie, ZslD *zd, const ModelConfig *cfg) {
    memset(t, 0, sizeof *t);
    t->cfg = *cfg;
    t->te = te;
    t->ie = ie;
    t->zd = zd;
    te->train = 1;
    ie->train = 1; /* the seed: cnn_model.train(), so the frozen trunk's BN uses batch statistics */
    image_encoder_set_trainable(ie, 1);
    paramset_set_frozen(&te->ps, 0);
    adam_init(&t->opt_te, &te->ps, cfg->encoder_lr, cfg->beta1, cfg->beta2, 1e-8f);
    if (cfg->zsl_g_lr_scale != 1.0f) {
        adam_set_prefix_scale(&t->opt_te, "zsl_g.", cfg->zsl_g_lr_scale);
        if (cfg->zsl_word) adam_set_prefix_scale(&t->opt_te, "zsl_gw.", cfg->zsl_g_lr_scale);
    }
    adam_init(&t->opt_ie, &ie->ps, cfg->encoder_lr, cfg->beta1, cfg->beta2, 1e-8f);
    adam_init(&t->opt_zd, &zd->ps, cfg->encoder_lr, cfg->beta1, cfg->beta2, 1e-8f);
    tape_init(&t->tape[0]);
    tape_init(&t->tape[1]);
}

void damsm_trainer_set_word_d(DamsmTrainer *t, ZslD *zdw) {
    CHECK(t->cfg.zsl_word && zdw && !t->zdw, "damsm_trainer_set_word_d: needs ZSL.WORD_LEVEL and one word-level ZSL D");
    t->zdw = zdw;
    adam_init(&t->opt_zdw, &zdw->ps, t->cfg.encoder_lr, t->cfg.beta1, t->cfg.beta2, 1e-8f);
}

void damsm_trainer_to_device(DamsmTrainer *t, int dev) {
    paramset_to_device(&t->te->ps, dev);
    paramset_to_device(&t->ie->ps, dev);
    paramset_to_device(&t->zd->ps, dev);
    adam_to_device(&t->opt_te, dev);
    adam_to_device(&t->opt_ie, dev);
    adam_to_device(&t->opt_zd, dev);
    if (t->zdw) {
        paramset_to_device(&t->zdw->ps, dev);
        adam_to_device(&t->opt_zdw, dev);
    }
    for (int i = 0; i < 2; i++) {
        tape_reset(&t->tape[i]);
        t->tape[i].device = dev;
    }
}

void damsm_trainer_free(DamsmTrainer *t) {
    adam_free(&t->opt_te);
    adam_free(&t->opt_ie);
    adam_free(&t->opt_zd);
    if (t->zdw) adam_free(&t->opt_zdw);
    tape_free(&t->tape[0]);
    tape_free(&t->tape[1]);
}

static int64_t *targets0(Tape *tp, const int64_t *class_ids, int B, int K) {
    int64_t *y = tape_alloc(tp, (size_t)B * sizeof(int64_t));
    for (int i = 0; i < B; i++) {
        CHECK(class_ids[i] >= 1 && class_ids[i] <= K, "class id %lld of sample %d outside 1..%d", (long long)class_ids[i], i, K);
        y[i] = class_ids[i] - 1;
    }
    return y;
}

static void copy_terms(const ZslTerms *z, Tensor **pred_sent, Tensor **cls_sent, Tensor **pred_emb, Tensor **cls_emb,
                       Tensor *terms[4]) {
    *pred_sent = z->pred_img, *cls_sent = z->cls_img, *pred_emb = z->pred_text, *cls_emb = z->cls_text;
    for (int i = 0; i < 4; i++) terms[i] = z->terms[i];
}

/* The word-level pair's rows (ZSL.WORD_LEVEL): the M = sum(cap_lens) word codes of words_emb
 * (B, E, L) and, for each, one region of its image's region features region (B, E, H, W), drawn
 * uniformly from rng; the 0-based targets and 1-based class ids of both (the image's class). */
typedef struct WordRows {
    Tensor *words, *regions; /* (M, E) */
    int64_t *y, *ids;
} WordRows;

static void word_rows(Tape *tp, Tensor *region, Tensor *words_emb, const DamsmBatch *b, int K, Rng *rng, WordRows *o) {
    CHECK(rng != NULL, "damsm: ZSL.WORD_LEVEL needs an Rng for the region rows (DamsmTrainer.word_rng)");
    int B = b->B, E = words_emb->shape[1], L = words_emb->shape[2];
    int R = (int)(region->n / ((int64_t)B * E));
    int M = 0;
    for (int i = 0; i < B; i++) M += b->cap_lens[i];
    int64_t *wi = tape_alloc(tp, (size_t)M * sizeof(int64_t)), *ri = tape_alloc(tp, (size_t)M * sizeof(int64_t));
    o->y = tape_alloc(tp, (size_t)M * sizeof(int64_t));
    o->ids = tape_alloc(tp, (size_t)M * sizeof(int64_t));
    float *u = xmalloc((size_t)M * sizeof(float));
    rng_uniform(rng, u, M);
    for (int i = 0, m = 0; i < B; i++) {
        CHECK(b->class_ids[i] >= 1 && b->class_ids[i] <= K, "class id %lld of sample %d outside 1..%d", (long long)b->class_ids[i], i, K);
        for (int k = 0; k < b->cap_lens[i]; k++, m++) {
            int r = (int)(u[m] * (float)R);
            wi[m] = (int64_t)i * L + k;
            ri[m] = (int64_t)i * R + (r < R ? r : R - 1);
            o->ids[m] = b->class_ids[i];
            o->y[m] = b->class_ids[i] - 1;
        }
    }
    free(u);
    Tensor *wt = OP_RESHAPE(tp, op_transpose(tp, words_emb, 1, 2), B * L, E);                   /* (B L, E) */
    Tensor *rt = OP_RESHAPE(tp, op_transpose(tp, OP_RESHAPE(tp, region, B, E, R), 1, 2), B * R, E); /* (B R, E) */
    o->words = OP_RESHAPE(tp, op_embedding(tp, wi, 1, M, wt), M, E);
    o->regions = OP_RESHAPE(tp, op_embedding(tp, ri, 1, M, rt), M, E);
}

void damsm_encode(DamsmTrainer *t, Tape *tp, const DamsmBatch *b, const DamsmNoise *noise, Rng *rng, DamsmPass1 *o) {
    o->img = image_encoder_forward(tp, t->ie, b->imgs);
    o->txt = text_encoder_forward(tp, t->te, b->captions, b->cap_lens, b->B, noise ? noise->zsl_z[0] : NULL,
                                  noise ? noise->drop_mask[0] : NULL, rng);
}

void damsm_losses(DamsmTrainer *t, Tape *tp, Tensor *region, Tensor *code, Tensor *words_emb, Tensor *sent_emb,
                  const DamsmBatch *b, DamsmPass1 *o) {
    const ModelConfig *c = &t->cfg;
    /* the ZSL D's pass-1 gradients are discarded by the seed: it stays frozen through the
     * backward, until damsm_zsl_d_backward */
    paramset_set_frozen(&t->zd->ps, 1);
    o->w = damsm_words_loss(tp, c, region, words_emb, b->cap_lens, b->class_ids, b->B);
    o->s = damsm_sent_loss(tp, c, code, sent_emb, b->class_ids, b->B);
    const int64_t *y = targets0(tp, b->class_ids, b->B, c->num_classes);
    /* the ZSL G wants its text codes taken for image codes (zsl.h) */
    ZslTerms z;
    zsl_pair_g_loss(tp, t->zd, c, code, sent_emb, y, b->class_ids, &z);
    copy_terms(&z, &o->pred_sent, &o->cls_sent, &o->pred_emb, &o->cls_emb, o->g_terms);
    o->pivot = z.extra;
    o->g_loss = z.loss;
    if (t->zdw) { /* the word-level pair: region features against word codes, in the same ZSL G loss */
        paramset_set_frozen(&t->zdw->ps, 1);
        WordRows w;
        word_rows(tp, region, words_emb, b, c->num_classes, t->word_rng, &w);
        ZslTerms zw;
        zsl_pair_g_loss_sets(tp, t->zdw, c, w.regions, w.y, w.ids, w.words, w.y, w.ids, &zw);
        o->word_g_loss = zw.loss;
        o->g_loss = op_add(tp, o->g_loss, zw.loss);
    }
    Tensor *wl = op_add(tp, o->w.loss0, o->w.loss1), *sl = op_add(tp, o->s.loss0, o->s.loss1);
    o->loss = op_add(tp, op_add(tp, wl, sl), op_scale(tp, o->g_loss, c->zsl_lambda));
}

float damsm_clip(DamsmTrainer *t) {
    ParamSet *sets[1] = {&t->te->ps};
    return clip_grad_norm_sets(sets, 1, t->cfg.rnn_grad_clip);
}

void damsm_pass1_backward(DamsmTrainer *t, const DamsmBatch *b, const DamsmNoise *noise, Rng *rng, DamsmPass1 *o) {
    Tape *tp = &t->tape[0];
    tape_reset(tp);
    memset(o, 0, sizeof *o);
    if (rng) t->word_rng = rng;
    damsm_encode(t, tp, b, noise, rng, o);
    damsm_losses(t, tp, o->img.region, o->img.code, o->txt.words_emb, o->txt.sent_emb, b, o);
    paramset_zero_grad(&t->te->ps); /* here, not before the forward: the gradients live only from here */
    paramset_zero_grad(&t->ie->ps);
    tape_backward_release(tp, o->loss);
}

void damsm_pass1(DamsmTrainer *t, const DamsmBatch *b, const DamsmNoise *noise, Rng *rng, DamsmPass1 *o) {
    damsm_pass1_backward(t, b, noise, rng, o);
    o->clip_total_norm = damsm_clip(t);
}

void damsm_encoder_update(DamsmTrainer *t) {
    adam_step(&t->opt_te);
    adam_step(&t->opt_ie); /* only the emb layers require grad: the trunk is skipped */
}

void damsm_encode2(DamsmTrainer *t, Tape *tp, const DamsmBatch *b, const DamsmNoise *noise, Rng *rng, DamsmPass2 *o) {
    tape_no_grad_begin(tp); /* the seed's encoder gradients here are discarded */
    o->txt = text_encoder_forward(tp, t->te, b->captions, b->cap_lens, b->B, noise ? noise->zsl_z[1] : NULL,
                                  noise ? noise->drop_mask[1] : NULL, rng);
    o->img = image_encoder_forward(tp, t->ie, b->imgs);
    tape_no_grad_end(tp);
}

void damsm_zsl_d_backward(DamsmTrainer *t, Tape *tp, Tensor *code, Tensor *sent_emb, const DamsmBatch *b, Rng *rng,
                          DamsmPass2 *o) {
    const ModelConfig *c = &t->cfg;
    paramset_set_frozen(&t->zd->ps, 0);
    paramset_zero_grad(&t->zd->ps);
    const int64_t *y = targets0(tp, b->class_ids, b->B, c->num_classes);
    Tensor *alpha = zsl_gp_alpha(tp, c, rng, b->B);
    ZslTerms z;
    zsl_pair_d_loss(tp, t->zd, c, tape_detach(tp, code), tape_detach(tp, sent_emb), y, alpha, &z);
    copy_terms(&z, &o->pred_sent, &o->cls_sent, &o->pred_emb, &o->cls_emb, o->d_terms);
    o->gp = z.extra;
    o->d_loss = z.loss;
    Tensor *total = o->d_loss;
    if (t->zdw) { /* the word-level ZSL D on o->img.region and o->txt.words_emb, in the same backward */
        CHECK(o->img.region && o->txt.words_emb, "damsm_zsl_d_backward: ZSL.WORD_LEVEL needs the pass's region features and word codes");
        paramset_set_frozen(&t->zdw->ps, 0);
        paramset_zero_grad(&t->zdw->ps);
        WordRows w;
        word_rows(tp, tape_detach(tp, o->img.region), tape_detach(tp, o->txt.words_emb), b, c->num_classes, rng, &w);
        Tensor *aw = zsl_gp_alpha(tp, c, rng, w.words->shape[0]);
        ZslTerms zw;
        zsl_pair_d_loss_sets(tp, t->zdw, c, w.regions, w.y, w.words, w.y, w.regions, aw, &zw);
        o->word_d_loss = zw.loss;
        total = op_add(tp, total, zw.loss);
    }
    tape_backward_release(tp, total);
}

void damsm_zsl_d_steps(DamsmTrainer *t, Tape *tp, Tensor *code, Tensor *sent_emb, const DamsmBatch *b, Rng *rng, DamsmPass2 *o) {
    damsm_zsl_d_backward(t, tp, code, sent_emb, b, rng, o);
    damsm_zsl_d_update(t);
    /* the later critic steps, each on a tape of its own (a tape runs one backward) */
    for (int k = 1; k < t->cfg.zsl_critic_steps; k++) {
        Tape sub;
        tape_init_on(&sub, tp->device);
        tape_no_grad_begin(&sub);
        TextEncoderOut txt = text_encoder_forward(&sub, t->te, b->captions, b->cap_lens, b->B, NULL, NULL, rng);
        tape_no_grad_end(&sub);
        if (!t->keep_grads) {
            paramset_release_grads(&t->zd->ps);
            if (t->zdw) paramset_release_grads(&t->zdw->ps);
        }
        DamsmPass2 later;
        memset(&later, 0, sizeof later);
        later.img.region = o->img.region;
        later.txt = txt;
        damsm_zsl_d_backward(t, &sub, code, txt.sent_emb, b, rng, &later);
        damsm_zsl_d_update(t);
        tape_free(&sub);
    }
}

void damsm_zsl_d_steps_lanes(DamsmTrainer *t, Lanes *L, Tape *const *tp, const DamsmBatch *b, Rng *rng, DamsmPass2 *o) {
    int A = L ? L->n : 1;
    if (A == 1) {
        damsm_zsl_d_steps(t, tp[0], o[0].img.code, o[0].txt.sent_emb, &b[0], &rng[0], &o[0]);
        return;
    }
    for (int k = 0; k < t->cfg.zsl_critic_steps; k++) {
        Tape sub[LANES_MAX];
        for (int j = 0; j < A; j++) {
            lanes_enter(L, j);
            if (k == 0) damsm_zsl_d_backward(t, tp[j], o[j].img.code, o[j].txt.sent_emb, &b[j], &rng[j], &o[j]);
            else { /* the later critic steps: the text codes again, on a tape of the lane's own */
                tape_init_on(&sub[j], tp[j]->device);
                tape_no_grad_begin(&sub[j]);
                TextEncoderOut txt = text_encoder_forward(&sub[j], t->te, b[j].captions, b[j].cap_lens, b[j].B, NULL, NULL, &rng[j]);
                tape_no_grad_end(&sub[j]);
                DamsmPass2 later;
                memset(&later, 0, sizeof later);
                later.img.region = o[j].img.region;
                later.txt = txt;
                damsm_zsl_d_backward(t, &sub[j], o[j].img.code, txt.sent_emb, &b[j], &rng[j], &later);
            }
            lanes_grad_add(L, &t->zd->ps, j);
            if (t->zdw) lanes_grad_add(L, &t->zdw->ps, j);
        }
        lanes_grad_finish(L, &t->zd->ps);
        lanes_sync_buffers(L, &t->zd->ps);
        if (t->zdw) {
            lanes_grad_finish(L, &t->zdw->ps);
            lanes_sync_buffers(L, &t->zdw->ps);
        }
        damsm_zsl_d_update(t);
        for (int j = 0; k > 0 && j < A; j++) tape_free(&sub[j]);
        if (!t->keep_grads) {
            paramset_release_grads(&t->zd->ps);
            if (t->zdw) paramset_release_grads(&t->zdw->ps);
        }
    }
}

void damsm_pass2(DamsmTrainer *t, const DamsmBatch *b, const DamsmNoise *noise, Rng *rng, DamsmPass2 *o) {
    Tape *tp = &t->tape[1];
    tape_reset(tp);
    memset(o, 0, sizeof *o);
    damsm_encode2(t, tp, b, noise, rng, o);
    damsm_zsl_d_backward(t, tp, o->img.code, o->txt.sent_emb, b, rng, o);
}

void damsm_zsl_d_update(DamsmTrainer *t) {
    adam_step(&t->opt_zd);
    if (t->zdw) adam_step(&t->opt_zdw);
}

void damsm_step(DamsmTrainer *t, const DamsmBatch *b, const DamsmNoise *noise, Rng *rng, DamsmPass1 *p1, DamsmPass2 *p2) {
    damsm_pass1(t, b, noise, rng, p1);
    damsm_encoder_update(t);
    if (!t->keep_grads) paramset_release_grads(&t->te->ps); /* the text encoder's gradients, until the next pass 1 */
    Tape *tp = &t->tape[1];
    tape_reset(tp);
    memset(p2, 0, sizeof *p2);
    damsm_encode2(t, tp, b, noise, rng, p2);
    damsm_zsl_d_steps(t, tp, p2->img.code, p2->txt.sent_emb, b, rng, p2);
    if (!t->keep_grads) {
        paramset_release_grads(&t->zd->ps);
        if (t->zdw) paramset_release_grads(&t->zdw->ps);
    }
}
