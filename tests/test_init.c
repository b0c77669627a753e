/* test_init.c: weight initialisation: orthogonal matrices are orthogonal (both orientations),
 * PyTorch's default bounds, BatchNorm defaults, AttnGAN's weights_init on a D. */
#include "test.h"
#include "../src/nn/init.h"

#include <string.h>

static double orth_err(const Tensor *t) {
    int rows = t->shape[0], cols = (int)(t->n / rows), k = rows < cols ? rows : cols;
    double worst = 0;
    /* rows >= cols: columns orthonormal; else rows orthonormal */
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++) {
            double s = 0;
            if (rows >= cols) for (int r = 0; r < rows; r++) s += (double)t->data[r * cols + a] * t->data[r * cols + b];
            else for (int c = 0; c < cols; c++) s += (double)t->data[a * cols + c] * t->data[b * cols + c];
            worst = fmax(worst, fabs(s - (a == b)));
        }
    return worst;
}

int main(void) {
    test_begin("test_init");
    Rng rng;
    rng_init(&rng, 3);
    Tensor *tall = tensor_alloc(2, (int[]){40, 12}, 0), *wide = tensor_alloc(4, (int[]){6, 4, 3, 3}, 0);
    init_orthogonal(tall, &rng);
    init_orthogonal(wide, &rng);
    EXPECT(orth_err(tall) < 1e-5, "tall orthogonal: %g", orth_err(tall));
    EXPECT(orth_err(wide) < 1e-5, "wide orthogonal: %g", orth_err(wide));
    tensor_free(tall);
    tensor_free(wide);

    ModelConfig cfg;
    model_config_default(&cfg);
    cfg.df_dim = 4;
    cfg.embedding_dim = 8;
    DNet d;
    dnet_init(&d, &cfg, 64, "netD0");
    init_attngan(&d.ps, &rng);
    const ParamEntry *bnw = paramset_find(&d.ps, "img_code_s16.3.weight"), *bnv = paramset_find(&d.ps, "img_code_s16.3.running_var");
    const ParamEntry *ob = paramset_find(&d.ps, "UNCOND_DNET.outlogits.0.bias"), *cw = paramset_find(&d.ps, "img_code_s16.0.weight");
    double m = 0;
    for (int64_t i = 0; i < bnw->t.n; i++) m += bnw->t.data[i];
    EXPECT(fabs(m / bnw->t.n - 1.0) < 0.05, "BN weight mean %g", m / bnw->t.n);
    EXPECT(bnv->t.data[0] == 1.0f, "running_var starts at 1");
    EXPECT(ob->t.data[0] != 0.0f && fabsf(ob->t.data[0]) <= 1.0f / sqrtf(4 * 8 * 16), "conv bias keeps the default U(+-1/sqrt(fan_in))");
    EXPECT(orth_err(&cw->t) < 1e-5, "conv weight orthogonal");
    dnet_free(&d);

    TextEncoder te;
    cfg.word_dim = 10;
    cfg.zsl_h = 32;
    cfg.zsl_rdc = 16;
    cfg.zsl_z = 4;
    cfg.n_words = 50;
    text_encoder_init(&te, &cfg);
    init_text_encoder(&te, &rng);
    float lo = 1, hi = -1;
    for (int64_t i = 0; i < te.embedding->n; i++) { lo = fminf(lo, te.embedding->data[i]); hi = fmaxf(hi, te.embedding->data[i]); }
    EXPECT(lo >= -0.1f && hi <= 0.1f && hi - lo > 0.15f, "embedding U(-0.1, 0.1): [%g, %g]", lo, hi);
    float b = 1.0f / sqrtf(4.0f); /* H = E/2 = 4 */
    const ParamEntry *whh = paramset_find(&te.ps, "rnn.weight_hh_l0");
    int ok = 1;
    for (int64_t i = 0; i < whh->t.n; i++) ok &= fabsf(whh->t.data[i]) <= b;
    EXPECT(ok, "LSTM weights within 1/sqrt(H)");
    text_encoder_free(&te);
    return test_end();
}
