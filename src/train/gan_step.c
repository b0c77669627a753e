/* gan_step.c: the AttnGAN + ZSL training iteration; see gan_step.h. */
#include "gan_step.h"
#include "zsl_gan.h"
#include "lanes.h"
#include "../ops/diffaug.h"

#include <stdlib.h>
#include <string.h>

typedef struct GanLaneState {
    Tensor *mu, *logvar;
    const DiffAugSample *aug[3][3];
} GanLaneState;

Tape *gan_lane_tape(GanTrainer *t) { return t->lane ? &t->lane_tp[t->lane - 1] : &t->tp_g; }

void gan_trainer_init(GanTrainer *t, TextEncoder *te, ImageEncoder *ie, ZslD *zd, GNet *g, DNet *const *d,
                      const ModelConfig *cfg) {
    memset(t, 0, sizeof *t);
    t->cfg = *cfg;
    t->te = te;
    t->ie = ie;
    t->zd = zd;
    t->g = g;
    CHECK(cfg->g_variant == G_VARIANT_NET, "gan_step: only G_NET is trained here (G_DCGAN has one D; not wired yet)");
    CHECK(!cfg->ca_net == !g->cfg.ca_net, "gan_trainer_init: the trainer's config has CA_NET %d, G was built with %d",
          cfg->ca_net, g->cfg.ca_net);
    t->n_d = g->branch;
    te->train = 0;
    ie->train = 0;
    paramset_set_frozen(&te->ps, 1);
    image_encoder_set_trainable(ie, 0);
    image_encoder_pin_trunk(ie, 1); /* frozen for the trainer's life: keep its reordered weights */
    paramset_set_frozen(&zd->ps, 1);
    g->train = 1;
    adam_init(&t->opt_g, &g->ps, cfg->g_lr, cfg->beta1, cfg->beta2, 1e-8f);
    for (int i = 0; i < t->n_d; i++) {
        t->d[i] = d[i];
        d[i]->train = 1;
        adam_init(&t->opt_d[i], &d[i]->ps, cfg->d_lr, cfg->beta1, cfg->beta2, 1e-8f);
        tape_init(&t->tp_d[i]);
    }
    paramset_init(&t->ema_g, "netG_ema");
    for (int i = 0; i < g->ps.n; i++) {
        const ParamEntry *e = g->ps.entries[i];
        if (e->kind == PARAM_BUFFER_I64) paramset_add_i64(&t->ema_g, e->name);
        else paramset_add(&t->ema_g, e->name, e->kind, e->t.ndim, e->t.shape);
    }
    paramset_finalize(&t->ema_g);
    paramset_copy(&t->ema_g, &g->ps);
    tape_init(&t->tp_g);
}

void gan_trainer_to_device(GanTrainer *t, int dev) {
    int pinned = t->ie->trunk_pinned;
    if (pinned) image_encoder_pin_trunk(t->ie, 0); /* the copies are keyed by the host weights */
    paramset_to_device(&t->te->ps, dev);
    paramset_to_device(&t->ie->ps, dev);
    paramset_to_device(&t->zd->ps, dev);
    paramset_to_device(&t->g->ps, dev);
    paramset_to_device(&t->ema_g, dev);
    adam_to_device(&t->opt_g, dev);
    tape_reset(&t->tp_g);
    t->tp_g.device = dev;
    for (int i = 0; i < t->n_d; i++) {
        paramset_to_device(&t->d[i]->ps, dev);
        adam_to_device(&t->opt_d[i], dev);
        tape_reset(&t->tp_d[i]);
        t->tp_d[i].device = dev;
    }
    if (pinned) image_encoder_pin_trunk(t->ie, 1); /* (a no-op on a device; the CPU keeps it) */
    if (t->zsl_phase) zsl_gan_to_device(t->zsl_phase, dev);
    int n = t->lanes ? t->lanes->n : 1;
    for (int j = 1; j < n; j++) {
        tape_reset(&t->lane_tp[j - 1]);
        t->lane_tp[j - 1].device = dev;
    }
    if (t->lane_state) memset(t->lane_state, 0, (size_t)n * sizeof *t->lane_state);
    t->mu = t->logvar = NULL;
    memset(t->aug, 0, sizeof t->aug);
}

void gan_trainer_free(GanTrainer *t) {
    adam_free(&t->opt_g);
    for (int i = 0; i < t->n_d; i++) {
        adam_free(&t->opt_d[i]);
        tape_free(&t->tp_d[i]);
    }
    paramset_free(&t->ema_g);
    tape_free(&t->tp_g);
    int n = t->lanes ? t->lanes->n : 1;
    for (int j = 1; j < n; j++) tape_free(&t->lane_tp[j - 1]);
    free(t->lane_tp);
    free(t->lane_state);
    image_encoder_pin_trunk(t->ie, 0);
}

void gan_trainer_set_lanes(GanTrainer *t, Lanes *L) {
    CHECK(!t->lanes, "gan_trainer_set_lanes: lanes set twice");
    t->lanes = L;
    t->lane = 0;
    t->lane_tp = xcalloc((size_t)(L->n > 1 ? L->n - 1 : 1), sizeof(Tape));
    for (int j = 1; j < L->n; j++) tape_init_on(&t->lane_tp[j - 1], t->tp_g.device);
    t->lane_state = xcalloc((size_t)L->n, sizeof *t->lane_state);
}

void gan_lane(GanTrainer *t, int j) {
    if (!t->lanes || j == t->lane) return;
    GanLaneState *s = &t->lane_state[t->lane];
    s->mu = t->mu;
    s->logvar = t->logvar;
    memcpy(s->aug, t->aug, sizeof t->aug);
    s = &t->lane_state[j];
    t->mu = s->mu;
    t->logvar = s->logvar;
    memcpy(t->aug, s->aug, sizeof t->aug);
    t->lane = j;
    lanes_enter(t->lanes, j);
}

uint8_t *gan_word_mask(Tape *tp, const int64_t *captions, int B, int T, int L) {
    uint8_t *m = tape_alloc(tp, (size_t)B * L);
    for (int b = 0; b < B; b++)
        for (int l = 0; l < L; l++) m[b * L + l] = captions[(int64_t)b * T + l] == 0;
    return m;
}

void gan_text(GanTrainer *t, const GanBatch *b, const Tensor *z, Rng *rng, GanStepOut *o) {
    Tape *tp = gan_lane_tape(t);
    tape_reset(tp);
    t->mu = t->logvar = NULL; /* they lived on tp_g */
    memset(t->aug, 0, sizeof t->aug); /* so did the DiffAugment draws */
    tape_no_grad_begin(tp);
    o->txt = text_encoder_forward(tp, t->te, b->captions, b->cap_lens, b->B, z, NULL, rng);
    tape_no_grad_end(tp);
    o->mask = gan_word_mask(tp, b->captions, b->B, t->cfg.words_num, o->txt.words_emb->shape[2]);
}

void gan_generate(GanTrainer *t, Tensor *sent_emb, Tensor *words_emb, const uint8_t *mask, Rng *rng, GanStepOut *o) {
    paramset_zero_grad(&t->g->ps);
    o->gen = gnet_forward_noise(gan_lane_tape(t), t->g, sent_emb, words_emb, mask, NULL, NULL, rng);
    t->mu = o->gen.mu;
    t->logvar = o->gen.logvar;
}

void gan_d_backward(GanTrainer *t, int i, Tensor *real, Tensor *fake, Tensor *sent_emb, DLossOut *out) {
    Tape *tp = &t->tp_d[i];
    tape_reset(tp);
    DNet *d = t->d[i];
    paramset_set_frozen(&d->ps, 0);
    paramset_zero_grad(&d->ps);
    Tensor *f = tape_detach(tp, fake);
    if (t->aug[i][0]) real = op_diffaug(tp, real, t->aug[i][0]);
    if (t->aug[i][1]) f = tape_detach(tp, op_diffaug(tp, f, t->aug[i][1]));
    *out = discriminator_loss(tp, d, real, f, tape_detach(tp, sent_emb));
    tape_backward_release(tp, out->loss);
}

void gan_d_update(GanTrainer *t, int i) { adam_step(&t->opt_d[i]); }

static Tensor *fill(Tape *tp, int B, float v) {
    Tensor *y = TNEW(tp, B);
    tensor_fill(y, v);
    return y;
}

void gan_g_loss(GanTrainer *t, Tape *tp, Tensor *const *fakes, Tensor *words_emb, Tensor *sent_emb, const GanBatch *b,
                GanGLoss *o) {
    const ModelConfig *c = &t->cfg;
    int B = b->B;
    memset(o, 0, sizeof *o);
    Tensor *ones = fill(tp, B, 1.0f), *total = NULL;
    for (int i = 0; i < t->n_d; i++) {
        DNet *d = t->d[i];
        paramset_set_frozen(&d->ps, 1); /* no D weight gradients from the G loss */
        Tensor *feat = dnet_forward(tp, d, t->aug[i][2] ? op_diffaug(tp, fakes[i], t->aug[i][2]) : fakes[i]);
        o->g_cond[i] = dnet_cond(tp, d, feat, sent_emb);
        o->g_uncond[i] = dnet_uncond(tp, d, feat);
        o->g_loss[i] = op_add(tp, op_bce(tp, o->g_cond[i], ones), op_bce(tp, o->g_uncond[i], ones));
        total = total ? op_add(tp, total, o->g_loss[i]) : o->g_loss[i];
        /* D stays frozen through the G backward; gan_d_backward unfreezes it */
    }
    Tensor *last = fakes[t->n_d - 1];
    o->img = image_encoder_forward(tp, t->ie, last);
    o->w = damsm_words_loss(tp, c, o->img.region, words_emb, b->cap_lens, b->class_ids, B);
    o->s = damsm_sent_loss(tp, c, o->img.code, sent_emb, b->class_ids, B);
    o->w_loss = op_scale(tp, op_add(tp, o->w.loss0, o->w.loss1), c->lambda);
    o->s_loss = op_scale(tp, op_add(tp, o->s.loss0, o->s.loss1), c->lambda);
    zsl_d_forward(tp, t->zd, o->img.code, &o->zsl_pred, &o->zsl_cls);
    if (c->zsl_wgan) { /* ZSL D is a WGAN critic (ZSL.ADV_LOSS wgan_gp): score high, as image codes do */
        o->adv = op_scale(tp, op_mean_all(tp, o->zsl_pred), -1.0f);
    } else {
        Tensor *target = TNEW(tp, B, 1);
        tensor_fill(target, c->zsl_fix_labels ? 1.0f : 0.0f); /* "look like a real image code" */
        o->adv = op_bce_logits(tp, o->zsl_pred, target);
    }
    int64_t *y = tape_alloc(tp, (size_t)B * sizeof(int64_t));
    for (int i = 0; i < B; i++) {
        CHECK(b->class_ids[i] >= 1 && b->class_ids[i] <= c->num_classes, "class id %lld outside 1..%d",
              (long long)b->class_ids[i], c->num_classes);
        y[i] = b->class_ids[i] - 1;
    }
    o->cls = op_cross_entropy(tp, o->zsl_cls, y);
    /* the seed: errG_total += w_loss + s_loss + (...) sums the right-hand side first */
    Tensor *rhs = op_add(tp, op_add(tp, o->w_loss, o->s_loss), op_scale(tp, op_add(tp, o->adv, o->cls), c->lambda_zsl));
    o->total = op_add(tp, total, rhs);
    if (t->cfg.ca_net) { /* AttnGAN: kl_loss = KL_loss(mu, logvar); errG_total += kl_loss */
        CHECK(t->mu && t->logvar, "gan_g_loss: CA_NET is on but there is no mu/logvar (run gan_generate first)");
        o->kl = gnet_kl_loss(tp, t->mu, t->logvar);
        o->total = op_add(tp, o->total, o->kl);
    }
}

void gan_g_update(GanTrainer *t) {
    adam_step(&t->opt_g);
    ema_update(&t->ema_g, &t->g->ps, t->cfg.ema);
}

/* DiffAugment's draws for the step (cfg.diffaug): drawn after G's noise, only when on, so the seed's
 * random stream is unchanged */
static void draw_aug(GanTrainer *t, const GanBatch *b, Rng *rng) {
    memset(t->aug, 0, sizeof t->aug);
    if (t->cfg.diffaug)
        for (int i = 0; i < t->n_d; i++)
            for (int k = 0; k < 3; k++) {
                DiffAugSample *p = tape_alloc(gan_lane_tape(t), (size_t)b->B * sizeof *p);
                diffaug_draw(p, b->B, b->imgs[i]->shape[2], b->imgs[i]->shape[3], t->cfg.diffaug, rng);
                t->aug[i][k] = p;
            }
}

void gan_step(GanTrainer *t, const GanBatch *b, const Tensor *z, Rng *rng, GanStepOut *o) {
    memset(o, 0, sizeof *o);
    gan_text(t, b, z, rng, o);
    gan_generate(t, o->txt.sent_emb, o->txt.words_emb, o->mask, rng, o);
    draw_aug(t, b, rng);
    for (int i = 0; i < t->n_d; i++) {
        gan_d_backward(t, i, b->imgs[i], o->gen.imgs[i], o->txt.sent_emb, &o->d[i]);
        o->d_loss[i] = tensor_item(o->d[i].loss);
        gan_d_update(t, i);
        if (!t->keep_grads) paramset_release_grads(&t->d[i]->ps); /* D's gradients: from its backward to its update */
    }
    gan_g_loss(t, &t->tp_g, o->gen.imgs, o->txt.words_emb, o->txt.sent_emb, b, &o->g);
    tape_backward_release(&t->tp_g, o->g.total);
    for (int i = 0; i < t->n_d; i++) paramset_set_frozen(&t->d[i]->ps, 0); /* trainable again between steps */
    gan_g_update(t);
    if (!t->keep_grads) paramset_release_grads(&t->g->ps);
}

void gan_step_lanes(GanTrainer *t, const GanBatch *b, Rng *rng, GanStepOut *o) {
    Lanes *L = t->lanes;
    int A = L ? L->n : 1;
    if (A == 1) {
        gan_step(t, b, NULL, rng, o);
        return;
    }
    for (int j = 0; j < A; j++) { /* 1-2: each lane's text, images and draws, on its tape */
        gan_lane(t, j);
        memset(&o[j], 0, sizeof o[j]);
        gan_text(t, &b[j], NULL, &rng[j], &o[j]);
        gan_generate(t, o[j].txt.sent_emb, o[j].txt.words_emb, o[j].mask, &rng[j], &o[j]);
        draw_aug(t, &b[j], &rng[j]);
    }
    for (int i = 0; i < t->n_d; i++) { /* 3: D_i on every lane, then one update */
        for (int j = 0; j < A; j++) {
            gan_lane(t, j);
            gan_d_backward(t, i, b[j].imgs[i], o[j].gen.imgs[i], o[j].txt.sent_emb, &o[j].d[i]);
            o[j].d_loss[i] = tensor_item(o[j].d[i].loss);
            lanes_grad_add(L, &t->d[i]->ps, j);
        }
        lanes_grad_finish(L, &t->d[i]->ps);
        lanes_sync_buffers(L, &t->d[i]->ps);
        gan_d_update(t, i);
        if (!t->keep_grads) paramset_release_grads(&t->d[i]->ps);
    }
    for (int j = 0; j < A; j++) { /* 4: G's loss on every lane, into zeroed gradients each */
        gan_lane(t, j);
        paramset_zero_grad(&t->g->ps);
        gan_g_loss(t, gan_lane_tape(t), o[j].gen.imgs, o[j].txt.words_emb, o[j].txt.sent_emb, &b[j], &o[j].g);
        tape_backward_release(gan_lane_tape(t), o[j].g.total);
        lanes_grad_add(L, &t->g->ps, j);
    }
    for (int i = 0; i < t->n_d; i++) paramset_set_frozen(&t->d[i]->ps, 0);
    lanes_grad_finish(L, &t->g->ps);
    lanes_sync_buffers(L, &t->g->ps);
    gan_g_update(t); /* 5 */
    if (!t->keep_grads) paramset_release_grads(&t->g->ps);
    gan_lane(t, 0);
}
