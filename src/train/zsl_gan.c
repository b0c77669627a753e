/* zsl_gan.c: ZSL G and ZSL D training in the GAN phase (ZSL.GAN_PHASE); see zsl_gan.h. */
#include "zsl_gan.h"
#include "lanes.h"

#include <stdlib.h>
#include <string.h>

/* ZSL G's entries of the text encoder take gradients (on) or none (off) */
static void zsl_g_trainable(TextEncoder *te, int on) {
    for (int i = 0; i < te->ps.n; i++) {
        ParamEntry *e = te->ps.entries[i];
        if (e->kind == PARAM_WEIGHT && !strncmp(e->name, "zsl_g.", 6)) e->t.requires_grad = on != 0;
    }
}

void zsl_gan_trainable(ZslGan *z, int on) {
    zsl_g_trainable(z->t->te, on);
    paramset_set_frozen(&z->t->zd->ps, !on);
}

void zsl_gan_init(ZslGan *z, GanTrainer *t) {
    memset(z, 0, sizeof *z);
    z->t = t;
    const ModelConfig *c = &t->cfg;
    CHECK(!c->sent_lstm, "ZSL.GAN_PHASE needs ZSL G on the sentence path (EXTRA.SENT_CODE zsl_g)");
    adam_init(&z->opt_zg, &t->te->ps, c->encoder_lr * c->zsl_g_lr_scale, c->beta1, c->beta2, 1e-8f);
    adam_init(&z->opt_zd, &t->zd->ps, c->encoder_lr, c->beta1, c->beta2, 1e-8f);
    tape_init_on(&z->tp[0], t->tp_g.device);
    tape_init_on(&z->tp[1], t->tp_g.device);
    int n = t->lanes ? t->lanes->n : 1; /* EXTRA.GRAD_ACCUM: two tapes per further lane */
    z->lane_tp = xcalloc((size_t)(n > 1 ? 2 * (n - 1) : 1), sizeof(Tape));
    for (int j = 0; j < 2 * (n - 1); j++) tape_init_on(&z->lane_tp[j], t->tp_g.device);
    t->zsl_phase = z;
}

/* lane j's tape k (0: the D step, 1: the G step) */
static Tape *lane_tape(ZslGan *z, int j, int k) { return j ? &z->lane_tp[2 * (j - 1) + k] : &z->tp[k]; }

void zsl_gan_free(ZslGan *z) {
    adam_free(&z->opt_zg);
    adam_free(&z->opt_zd);
    tape_free(&z->tp[0]);
    tape_free(&z->tp[1]);
    int n = z->t->lanes ? z->t->lanes->n : 1;
    for (int j = 0; j < 2 * (n - 1); j++) tape_free(&z->lane_tp[j]);
    free(z->lane_tp);
}

void zsl_gan_to_device(ZslGan *z, int dev) {
    adam_to_device(&z->opt_zg, dev);
    adam_to_device(&z->opt_zd, dev);
    int n = z->t->lanes ? z->t->lanes->n : 1;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < 2; i++) {
            tape_reset(lane_tape(z, j, i));
            lane_tape(z, j, i)->device = dev;
        }
}

/* What the D step of a lane leaves for its G step (on the lane's D tape). */
typedef struct LaneCodes {
    int64_t *y;
    TextEncoderOut txt;
    ImageEncoderOut real;
} LaneCodes;

void zsl_gan_step_lanes(ZslGan *z, const GanBatch *b, Rng *rng, ZslGanOut *out) {
    GanTrainer *t = z->t;
    const ModelConfig *c = &t->cfg;
    Lanes *L = t->lanes;
    int A = L ? L->n : 1;
    LaneCodes lc[LANES_MAX];
    /* 1-2. per lane: the LSTM codes, the real images' codes, fresh noise (all constants), then
     * ZSL D's loss and backward; one update on the lanes' mean gradient */
    CHECK(rng != NULL, "zsl_gan_step: needs the step's Rng (ZSL G's noise, the penalty's interpolates)");
    paramset_set_frozen(&t->zd->ps, 0);
    for (int j = 0; j < A; j++) {
        int B = b[j].B;
        memset(&out[j], 0, sizeof out[j]);
        Tape *td = lane_tape(z, j, 0);
        tape_reset(td);
        tape_reset(lane_tape(z, j, 1));
        int64_t *y = tape_alloc(td, (size_t)B * sizeof(int64_t));
        for (int i = 0; i < B; i++) {
            CHECK(b[j].class_ids[i] >= 1 && b[j].class_ids[i] <= c->num_classes, "class id %lld outside 1..%d",
                  (long long)b[j].class_ids[i], c->num_classes);
            y[i] = b[j].class_ids[i] - 1;
        }
        tape_no_grad_begin(td);
        Tensor *z0 = TNEW(td, B, c->zsl_z);
        tensor_fill_normal(z0, &rng[j], 0.0f, c->zsl_z_std);
        lc[j].txt = text_encoder_forward(td, t->te, b[j].captions, b[j].cap_lens, B, z0, NULL, NULL);
        lc[j].real = image_encoder_forward(td, t->ie, b[j].imgs[t->n_d - 1]);
        tape_no_grad_end(td);
        lc[j].y = y;
        Tensor *alpha = zsl_gp_alpha(td, c, &rng[j], B);
        paramset_zero_grad(&t->zd->ps);
        ZslTerms zd;
        zsl_pair_d_loss(td, t->zd, c, lc[j].real.code, tape_detach(td, lc[j].txt.sent_emb), y, alpha, &zd);
        tape_backward(td, zd.loss);
        if (L) lanes_grad_add(L, &t->zd->ps, j);
        out[j].d_loss = tensor_item(zd.loss);
        out[j].gp = zd.extra ? tensor_item(zd.extra) : 0.0f;
    }
    if (L) lanes_grad_finish(L, &t->zd->ps);
    adam_step(&z->opt_zd);
    paramset_release_grads(&t->zd->ps);
    paramset_set_frozen(&t->zd->ps, 1);
    /* 3. ZSL G: per lane its text codes anew, with a graph into zsl_g.*; one update */
    zsl_g_trainable(t->te, 1);
    for (int j = 0; j < A; j++) {
        int B = b[j].B;
        Tape *tg = lane_tape(z, j, 1);
        paramset_zero_grad(&t->te->ps);
        Tensor *zg = TNEW(tg, B, c->zsl_z);
        tensor_fill_normal(zg, &rng[j], 0.0f, c->zsl_z_std);
        Tensor *sent = text_encoder_sent_code(tg, t->te, tape_detach(tg, lc[j].txt.sent_lstm), zg);
        ZslTerms gs;
        ModelConfig cg = *c;
        cg.zsl_pivot_lambda = 0.0f; /* pretraining's regulariser */
        zsl_pair_g_loss(tg, t->zd, &cg, tape_detach(tg, lc[j].real.code), sent, lc[j].y, b[j].class_ids, &gs);
        tape_backward(tg, op_scale(tg, gs.loss, c->zsl_lambda));
        if (L) lanes_grad_add(L, &t->te->ps, j);
        out[j].g_loss = tensor_item(gs.loss);
    }
    if (L) lanes_grad_finish(L, &t->te->ps);
    adam_step(&z->opt_zg);
    paramset_release_grads(&t->te->ps);
    zsl_g_trainable(t->te, 0);
}

void zsl_gan_step(ZslGan *z, const GanBatch *b, Rng *rng, ZslGanOut *out) {
    CHECK(!z->t->lanes || z->t->lanes->n == 1, "zsl_gan_step: the trainer has lanes (zsl_gan_step_lanes)");
    zsl_gan_step_lanes(z, b, rng, out);
}
