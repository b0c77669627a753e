/* zsl_gan.c: ZSL G and ZSL D training in the GAN phase (ZSL.GAN_PHASE); see zsl_gan.h. */
#include "zsl_gan.h"

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
    t->zsl_phase = z;
}

void zsl_gan_free(ZslGan *z) {
    adam_free(&z->opt_zg);
    adam_free(&z->opt_zd);
    tape_free(&z->tp[0]);
    tape_free(&z->tp[1]);
}

void zsl_gan_to_device(ZslGan *z, int dev) {
    adam_to_device(&z->opt_zg, dev);
    adam_to_device(&z->opt_zd, dev);
    for (int i = 0; i < 2; i++) {
        tape_reset(&z->tp[i]);
        z->tp[i].device = dev;
    }
}

void zsl_gan_step(ZslGan *z, const GanBatch *b, Rng *rng, ZslGanOut *out) {
    GanTrainer *t = z->t;
    const ModelConfig *c = &t->cfg;
    CHECK(rng != NULL, "zsl_gan_step: needs the step's Rng (ZSL G's noise, the penalty's interpolates)");
    int B = b->B;
    memset(out, 0, sizeof *out);
    /* 1. the LSTM codes, the real images' codes, fresh noise (all constants) */
    Tape *td = &z->tp[0], *tg = &z->tp[1];
    tape_reset(td);
    tape_reset(tg);
    int64_t *y = tape_alloc(td, (size_t)B * sizeof(int64_t));
    for (int i = 0; i < B; i++) {
        CHECK(b->class_ids[i] >= 1 && b->class_ids[i] <= c->num_classes, "class id %lld outside 1..%d", (long long)b->class_ids[i],
              c->num_classes);
        y[i] = b->class_ids[i] - 1;
    }
    tape_no_grad_begin(td);
    Tensor *z0 = TNEW(td, B, c->zsl_z);
    tensor_fill_normal(z0, rng, 0.0f, c->zsl_z_std);
    TextEncoderOut txt = text_encoder_forward(td, t->te, b->captions, b->cap_lens, B, z0, NULL, NULL);
    ImageEncoderOut real = image_encoder_forward(td, t->ie, b->imgs[t->n_d - 1]);
    tape_no_grad_end(td);
    Tensor *alpha = zsl_gp_alpha(td, c, rng, B);
    /* 2. ZSL D */
    paramset_set_frozen(&t->zd->ps, 0);
    paramset_zero_grad(&t->zd->ps);
    ZslTerms zd;
    zsl_pair_d_loss(td, t->zd, c, real.code, tape_detach(td, txt.sent_emb), y, alpha, &zd);
    tape_backward(td, zd.loss);
    adam_step(&z->opt_zd);
    paramset_release_grads(&t->zd->ps);
    paramset_set_frozen(&t->zd->ps, 1);
    out->d_loss = tensor_item(zd.loss);
    out->gp = zd.extra ? tensor_item(zd.extra) : 0.0f;
    /* 3. ZSL G: its text codes anew, with a graph into zsl_g.* */
    zsl_g_trainable(t->te, 1);
    paramset_zero_grad(&t->te->ps);
    Tensor *zg = TNEW(tg, B, c->zsl_z);
    tensor_fill_normal(zg, rng, 0.0f, c->zsl_z_std);
    Tensor *sent = text_encoder_sent_code(tg, t->te, tape_detach(tg, txt.sent_lstm), zg);
    ZslTerms gs;
    ModelConfig cg = *c;
    cg.zsl_pivot_lambda = 0.0f; /* pretraining's regulariser */
    zsl_pair_g_loss(tg, t->zd, &cg, tape_detach(tg, real.code), sent, y, b->class_ids, &gs);
    tape_backward(tg, op_scale(tg, gs.loss, c->zsl_lambda));
    adam_step(&z->opt_zg);
    paramset_release_grads(&t->te->ps);
    zsl_g_trainable(t->te, 0);
    out->g_loss = tensor_item(gs.loss);
}
