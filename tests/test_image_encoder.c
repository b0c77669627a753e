/* test_image_encoder.c: the Inception-v3 image encoder against the PyTorch reference dumps.
 *
 *  - registration: 94 BasicConv2d blocks in state_dict order, trunk keys, trainable flags;
 *  - eval mode (gan_step): out.fake_imgs0 (64 px, gan_b1_small) and out.fake_imgs2 (256 px,
 *    gan_b3_small) -> out.trunk_pool, out.region_features, out.cnn_code;
 *  - train mode (damsm_step, damsm_small): batch.imgs0 -> the same three outputs, then the second
 *    (ZSL-D) pass with the updated heads -> out.trunk_pool.1, out.cnn_code.1, and the trunk BN
 *    running stats and num_batches_tracked after the two passes vs after.image_encoder.*;
 *  - the input gradient through the frozen trunk at batch 1 (central differences on 6 pixels and
 *    6 dense directions, on a trunk made near-linear: see linearize_trunk) and no gradient in any
 *    trunk weight;
 *  - timings of a batch-4 forward (and forward + backward to the images) at 299 px.
 * The trunk comes from build/dumps/trunk.safetensors, the heads from param.image_encoder.*.
 * Under the sanitizers the finite differences use 3 pixels and 3 directions and the timing is skipped
 * (the GEMMs run in uninstrumented OpenBLAS, so the rest costs only ~2x). */
#include "test.h"
#include "../src/nn/image_encoder.h"
#include "../src/nn/load.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

#define N_BASIC_CONVS 94                 /* BasicConv2d blocks in the trunk up to Mixed_7c */
#define TRUNK_TOL 1e-3                   /* trunk outputs: ~1e-4 between two fp32 implementations */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* EXPECT(rel_err <= tol) with the measured error always printed. */
static int report_close(const char *what, const float *got, const float *want, int64_t n, double tol) {
    double mx, r = rel_err(got, want, n, &mx);
    printf("  %-44s rel err %.3g  max abs %.3g  (%lld values)\n", what, r, mx, (long long)n);
    return EXPECT(r <= tol, "%s: rel err %.3g (max abs %.3g), tolerance %.1g", what, r, mx, tol);
}

/* got (n, ...) against the first n images of the dump tensor key (N >= n, same trailing dims). */
static void compare_out(const char *case_name, const Tensor *got, SafeTensors *st, const char *key, double tol) {
    char what[160], buf[64], buf2[64];
    Tensor *want = fixture_tensor(st, key, 0);
    int shape_ok = want->ndim == got->ndim && want->shape[0] >= got->shape[0];
    for (int d = 1; shape_ok && d < got->ndim; d++) shape_ok = want->shape[d] == got->shape[d];
    snprintf(what, sizeof what, "%s %s", case_name, key);
    if (EXPECT(shape_ok, "%s: shape %s vs dump %s", what, tensor_shape_str(got, buf, sizeof buf),
               tensor_shape_str(want, buf2, sizeof buf2)))
        report_close(what, got->data, want->data, got->n, tol);
    tensor_free(want);
}

/* The first n images of the dump tensor key (N, 3, S, S), as a heap tensor. */
static Tensor *dump_images(SafeTensors *st, const char *key, int n, int with_grad) {
    Tensor *all = fixture_tensor(st, key, 0);
    CHECK(all->ndim == 4 && n <= all->shape[0], "dump images %s: want %d images", key, n);
    Tensor *x = tensor_alloc(4, (int[]){n, all->shape[1], all->shape[2], all->shape[3]}, with_grad);
    memcpy(x->data, all->data, (size_t)x->n * sizeof(float));
    tensor_free(all);
    return x;
}

static SafeTensors *open_trunk(void) {
    const char *path = dump_file("trunk.safetensors");
    if (!path) {
        test_skip("trunk.safetensors not found next to the dumps (build/dumps or $ATTNGAN_DUMPS; "
                  "tests/parity/make_dumps.sh writes it)");
        return NULL;
    }
    SafeTensors *st = xcalloc(1, sizeof *st);
    if (st_open(st, path)) FAIL("%s", err_msg());
    return st;
}

/* Builds the encoder of the dump's config, loads the trunk file and param.image_encoder.*, and
 * requires every key loaded. */
static int encoder_from_dump(ImageEncoder *ie, SafeTensors *dump, SafeTensors *trunk) {
    ModelConfig cfg;
    dump_config(dump, &cfg);
    image_encoder_init(ie, &cfg);
    LoadReport rt = {0}, rh = {0};
    int ok = EXPECT(nn_load(&ie->ps, trunk, "", LOAD_PARTIAL, &rt) == 0, "loading the trunk: %s", err_msg());
    ok &= EXPECT(nn_load(&ie->ps, dump, "param.image_encoder.", LOAD_PARTIAL, &rh) == 0, "loading the heads: %s",
                 err_msg());
    ok &= EXPECT(nn_load_check_complete(&ie->ps, dump->path) == 0, "every key loaded: %s", err_msg());
    ok &= EXPECT(rt.loaded == 6 * N_BASIC_CONVS && rh.loaded == 3, "loaded %d trunk and %d head tensors", rt.loaded,
                 rh.loaded);
    return ok;
}

/* ---------------------------------------------------------------- registration */

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void test_registration(void) {
    ModelConfig cfg;
    model_config_default(&cfg);
    cfg.embedding_dim = 16;
    ImageEncoder ie;
    image_encoder_init(&ie, &cfg);
    ParamSet *ps = &ie.ps;
    EXPECT(ps->n == 6 * N_BASIC_CONVS + 3, "image encoder: %d entries, want %d", ps->n, 6 * N_BASIC_CONVS + 3);
    static const char *const bn_order[6] = {".conv.weight",       ".bn.weight",         ".bn.bias",
                                            ".bn.running_mean", ".bn.running_var", ".bn.num_batches_tracked"};
    int order_ok = 1, trunk_floats = 0;
    for (int i = 0; i < 6 * N_BASIC_CONVS && i < ps->n; i++) {
        const ParamEntry *e = ps->entries[i], *first = ps->entries[i - i % 6];
        size_t stem = strlen(first->name) - strlen(bn_order[0]);
        order_ok &= ends_with(e->name, bn_order[i % 6]) && strncmp(e->name, first->name, stem) == 0 &&
                    strlen(e->name) == stem + strlen(bn_order[i % 6]) && image_encoder_is_trunk_key(e->name);
        trunk_floats += e->kind == PARAM_WEIGHT ? (int)e->t.n : 0;
    }
    EXPECT(order_ok, "trunk entries: conv.weight, bn.weight, bn.bias, running_mean, running_var, num_batches_tracked");
    EXPECT(trunk_floats == 21785568, "trunk parameters: %d floats, want 21,785,568 (the reference's count)", trunk_floats);
    EXPECT(strcmp(ps->entries[0]->name, "Conv2d_1a_3x3.conv.weight") == 0, "first key %s", ps->entries[0]->name);
    EXPECT(strcmp(ps->entries[6 * N_BASIC_CONVS - 1]->name, "Mixed_7c.branch_pool.bn.num_batches_tracked") == 0,
           "last trunk key %s", ps->entries[6 * N_BASIC_CONVS - 1]->name);
    const char *heads[3] = {"emb_features.weight", "emb_cnn_code.weight", "emb_cnn_code.bias"};
    for (int k = 0; k < 3; k++)
        EXPECT(strcmp(ps->entries[6 * N_BASIC_CONVS + k]->name, heads[k]) == 0, "head key %d: %s, want %s", k,
               ps->entries[6 * N_BASIC_CONVS + k]->name, heads[k]);
    EXPECT(image_encoder_is_trunk_key("Mixed_5b.branch1x1.conv.weight") && image_encoder_is_trunk_key("Conv2d_1a_3x3") &&
               !image_encoder_is_trunk_key("emb_features.weight") && !image_encoder_is_trunk_key("Mixed_5") &&
               !image_encoder_is_trunk_key("Mixed_5bb.x") && !image_encoder_is_trunk_key("fc.weight") &&
               !image_encoder_is_trunk_key("AuxLogits.conv0.conv.weight"),
           "image_encoder_is_trunk_key");
    int flags_ok = 1;
    for (int pass = 0; pass < 3; pass++) {
        int heads_on = pass != 1;
        if (pass) image_encoder_set_trainable(&ie, heads_on);
        for (int i = 0; i < ps->n; i++) {
            const ParamEntry *e = ps->entries[i];
            if (e->kind == PARAM_WEIGHT) flags_ok &= e->t.requires_grad == (heads_on && i >= 6 * N_BASIC_CONVS);
        }
    }
    EXPECT(flags_ok, "trunk weights frozen; heads trainable after init and set_trainable(1), frozen after set_trainable(0)");
    image_encoder_free(&ie);
}

/* ---------------------------------------------------------------- eval mode (gan_step) */

static void eval_case(const char *dump_name, const char *img_key, SafeTensors *trunk) {
    SafeTensors *st = dump_open(dump_name);
    if (!st) return;
    ImageEncoder ie;
    if (encoder_from_dump(&ie, st, trunk)) {
        int n = (int)st_find(st, img_key)->shape[0];
        Tensor *imgs = dump_images(st, img_key, n, 0);
        Tape tp;
        tape_init(&tp);
        ie.train = 0;
        double t0 = now_s();
        ImageEncoderOut o = image_encoder_forward(&tp, &ie, imgs);
        printf("  %s eval forward, %d x %d px images -> 299: %.2f s (heads trainable, tape recorded)\n", dump_name, n,
               imgs->shape[2], now_s() - t0);
        char name[96];
        snprintf(name, sizeof name, "%s eval", dump_name);
        compare_out(name, o.trunk_pool, st, "out.trunk_pool", TRUNK_TOL);
        compare_out(name, o.region, st, "out.region_features", TRUNK_TOL);
        compare_out(name, o.code, st, "out.cnn_code", TRUNK_TOL);
        int64_t nbt_changed = 0;
        for (int i = 0; i < ie.ps.n; i++) {
            const ParamEntry *e = ie.ps.entries[i];
            int64_t v;
            if (e->kind != PARAM_BUFFER_I64) continue;
            if (st_read_i64(trunk, e->name, &v, 1)) FAIL("%s", err_msg());
            nbt_changed += e->ival != v;
        }
        EXPECT(nbt_changed == 0, "%s: eval mode changed %lld num_batches_tracked", dump_name, (long long)nbt_changed);
        tape_free(&tp);
        tensor_free(imgs);
    }
    image_encoder_free(&ie);
    st_close(st);
    free(st);
}

/* ---------------------------------------------------------------- train mode (damsm_step) */

/* Copies after.image_encoder.<key> (or param.image_encoder.<key>) into the entry key. */
static void load_head_after(ImageEncoder *ie, SafeTensors *st, const char *key) {
    char k[160];
    ParamEntry *e = paramset_find(&ie->ps, key);
    CHECK(e != NULL, "no entry %s", key);
    snprintf(k, sizeof k, "after.image_encoder.%s", key);
    if (!st_find(st, k)) snprintf(k, sizeof k, "param.image_encoder.%s", key);
    if (st_read_f32(st, k, e->t.data, e->t.n)) FAIL("%s", err_msg());
}

/* The trunk's BN buffers after the two passes against after.image_encoder.* (else the trunk file). */
static void compare_bn_state(ImageEncoder *ie, SafeTensors *st, SafeTensors *trunk) {
    float *want = xcalloc((size_t)ie->ps.n_buffers, sizeof(float));
    char k[160];
    int nbt_ok = 1, n_after = 0;
    double worst = 0;
    const char *worst_key = "";
    for (int i = 0; i < ie->ps.n; i++) {
        const ParamEntry *e = ie->ps.entries[i];
        if (e->kind == PARAM_WEIGHT) continue;
        snprintf(k, sizeof k, "after.image_encoder.%s", e->name);
        const SafeTensors *src = st_find(st, k) ? st : trunk;
        n_after += src == st;
        const char *key = src == st ? k : e->name;
        if (e->kind == PARAM_BUFFER_I64) {
            int64_t v;
            if (st_read_i64(src, key, &v, 1)) FAIL("%s", err_msg());
            nbt_ok &= v == e->ival;
            continue;
        }
        if (st_read_f32(src, key, want + e->offset, e->t.n)) FAIL("%s", err_msg());
        double r = rel_err(e->t.data, want + e->offset, e->t.n, NULL);
        if (r > worst) { worst = r; worst_key = e->name; }
    }
    EXPECT(n_after == 3 * N_BASIC_CONVS, "dump holds after.* for %d of %d trunk BN buffers", n_after, 3 * N_BASIC_CONVS);
    EXPECT(nbt_ok, "damsm train: num_batches_tracked after two passes equals after.image_encoder.*");
    report_close("damsm train: trunk BN running stats (all)", ie->ps.buffers, want, ie->ps.n_buffers, TRUNK_TOL);
    printf("  worst single buffer: %s rel err %.3g\n", worst_key, worst);
    EXPECT(worst <= 10 * TRUNK_TOL, "worst BN buffer %s: rel err %.3g", worst_key, worst);
    free(want);
}

static void train_case(SafeTensors *trunk) {
    SafeTensors *st = dump_open("damsm_small");
    if (!st) return;
    ImageEncoder ie;
    if (encoder_from_dump(&ie, st, trunk)) {
        Tensor *imgs = dump_images(st, "batch.imgs0", (int)st_find(st, "batch.imgs0")->shape[0], 0);
        Tape tp;
        tape_init(&tp);
        ie.train = 1;
        double t0 = now_s();
        ImageEncoderOut o = image_encoder_forward(&tp, &ie, imgs);
        printf("  damsm_small train forward, %d x %d px: %.2f s\n", imgs->shape[0], imgs->shape[2], now_s() - t0);
        compare_out("damsm train", o.trunk_pool, st, "out.trunk_pool", TRUNK_TOL);
        compare_out("damsm train", o.region, st, "out.region_features", TRUNK_TOL);
        compare_out("damsm train", o.code, st, "out.cnn_code", TRUNK_TOL);
        /* the ZSL-D pass: the heads after their Adam step, the trunk BN updated a second time */
        tape_reset(&tp);
        load_head_after(&ie, st, "emb_features.weight");
        load_head_after(&ie, st, "emb_cnn_code.weight");
        load_head_after(&ie, st, "emb_cnn_code.bias");
        o = image_encoder_forward(&tp, &ie, imgs);
        compare_out("damsm train pass 2", o.trunk_pool, st, "out.trunk_pool.1", TRUNK_TOL);
        compare_out("damsm train pass 2", o.code, st, "out.cnn_code.1", TRUNK_TOL);
        compare_bn_state(&ie, st, trunk);
        tape_free(&tp);
        tensor_free(imgs);
    }
    image_encoder_free(&ie);
    st_close(st);
    free(st);
}

/* ---------------------------------------------------------------- input gradient */

/* The real (random, calibrated) trunk is far too rough for finite differences in fp32: even in
 * float64 PyTorch the central difference of one pixel at h = 1e-4 is 5-20% off its gradient (ReLU
 * kinks everywhere), so the gradient check runs the same code on a trunk made piecewise-linear
 * with few kinks: conv weights uniform in [0.2, 1.8] / fan_in (positive, summing to about 1),
 * BN eval = identity + beta (2 after Conv2d_1a, whose input is in [-1, 1]; 0.1 elsewhere). Every
 * ReLU input is then > 0, and only the max pools switch. (Against PyTorch, the input gradient on
 * the real trunk agreed to 3.8e-3 norm-relative, as close as PyTorch fp32 is to fp64: 2.6e-3.) */
static void linearize_trunk(ImageEncoder *ie, uint64_t seed) {
    Rng r;
    rng_init(&r, seed);
    for (int i = 0; i < ie->ps.n; i++) {
        ParamEntry *e = ie->ps.entries[i];
        if (!image_encoder_is_trunk_key(e->name) || e->kind == PARAM_BUFFER_I64) continue;
        float *x = e->t.data, v = 0.0f;
        if (ends_with(e->name, ".conv.weight")) {
            float fan_in = (float)(e->t.n / e->t.shape[0]);
            rng_uniform_range(&r, x, e->t.n, 0.2f / fan_in, 1.8f / fan_in);
            continue;
        }
        if (ends_with(e->name, ".bn.bias")) v = strncmp(e->name, "Conv2d_1a_3x3.", 14) == 0 ? 2.0f : 0.1f;
        else if (ends_with(e->name, ".bn.weight")) v = 1.0f;
        else if (ends_with(e->name, ".bn.running_var")) v = 1.0f - 1e-3f;
        for (int64_t j = 0; j < e->t.n; j++) x[j] = v;   /* running_mean: 0 */
    }
}

typedef struct GradCase {
    ImageEncoder *ie;
    Tensor *img;                 /* (1, 3, S, S) leaf */
    float *w_code, *w_region;    /* random loss weights, code and region shaped */
} GradCase;

/* loss = sum(w_code * code) + sum(w_region * region) in double, and the outputs in *o */
static double grad_loss(Tape *tp, GradCase *c, ImageEncoderOut *o) {
    *o = image_encoder_forward(tp, c->ie, c->img);
    double s = 0;
    for (int64_t i = 0; i < o->code->n; i++) s += (double)o->code->data[i] * c->w_code[i];
    for (int64_t i = 0; i < o->region->n; i++) s += (double)o->region->data[i] * c->w_region[i];
    return s;
}

/* The frozen trunk gets no gradient; the heads and the input do. */
static void check_gradient_targets(ImageEncoder *ie, const Tensor *img) {
    int64_t trunk_touched = 0, head_nonzero = 0, head_n = 0, img_nonzero = 0;
    for (int i = 0; i < ie->ps.n; i++) {
        const ParamEntry *e = ie->ps.entries[i];
        if (e->kind != PARAM_WEIGHT) continue;
        int trunk_key = image_encoder_is_trunk_key(e->name);
        for (int64_t j = 0; j < e->t.n; j++) {
            if (trunk_key) trunk_touched += e->t.grad[j] != 0.0f;
            else head_nonzero += e->t.grad[j] != 0.0f;
        }
        if (!trunk_key) head_n += e->t.n;
    }
    for (int64_t j = 0; j < img->n; j++) img_nonzero += img->grad[j] != 0.0f;
    EXPECT(trunk_touched == 0, "frozen trunk: %lld weight-gradient elements written", (long long)trunk_touched);
    EXPECT(head_nonzero > head_n / 2, "heads: %lld of %lld gradient elements nonzero", (long long)head_nonzero,
           (long long)head_n);
    EXPECT(img_nonzero > img->n / 2, "input: %lld of %lld gradient elements nonzero", (long long)img_nonzero,
           (long long)img->n);
}

/* Central differences of the loss along direction v (n floats, (1, 3, S, S)) with step h: returns
 * (loss(x + h v) - loss(x - h v)) / 2h; x is restored. */
static double directional_fd(Tape *tp, GradCase *c, const float *v, double h) {
    Tensor *x = c->img;
    float *x0 = xmalloc((size_t)x->n * sizeof(float));
    memcpy(x0, x->data, (size_t)x->n * sizeof(float));
    ImageEncoderOut o;
    double l[2];
    tape_no_grad_begin(tp);
    for (int s = 0; s < 2; s++) {
        double sign = s == 0 ? 1.0 : -1.0;
        for (int64_t j = 0; j < x->n; j++) x->data[j] = (float)(x0[j] + sign * h * v[j]);
        tape_reset(tp);
        l[s] = grad_loss(tp, c, &o);
    }
    tape_no_grad_end(tp);
    memcpy(x->data, x0, (size_t)x->n * sizeof(float));
    free(x0);
    return (l[0] - l[1]) / (2.0 * h);
}

/* The tape's input gradient against central differences: n_pix single pixels (step h_pix) and
 * n_dir dense random +-1 directions (step h_dir); norm-relative error over each set <= tol. */
static void finite_differences(Tape *tp, GradCase *c, Rng *r, int n_pix, double h_pix, int n_dir, double h_dir,
                               double tol) {
    int64_t n = c->img->n;
    float *v = xmalloc((size_t)n * sizeof(float));
    for (int kind = 0; kind < 2; kind++) {
        int count = kind == 0 ? n_pix : n_dir;
        double h = kind == 0 ? h_pix : h_dir, num2 = 0, den2 = 0;
        for (int k = 0; k < count; k++) {
            int64_t pix = -1;
            if (kind == 0) {
                memset(v, 0, (size_t)n * sizeof(float));
                pix = rng_below(r, (uint32_t)n);
                v[pix] = 1.0f;
            } else {
                for (int64_t j = 0; j < n; j++) v[j] = (rng_u32(r) & 1) ? 1.0f : -1.0f;
            }
            double tape_dd = 0, fd = directional_fd(tp, c, v, h);
            for (int64_t j = 0; j < n; j++) tape_dd += (double)c->img->grad[j] * v[j];
            printf("  %s %5lld: tape %+.6e  central difference %+.6e\n", kind == 0 ? "pixel    " : "direction",
                   (long long)(kind == 0 ? pix : k), tape_dd, fd);
            num2 += (fd - tape_dd) * (fd - tape_dd);
            den2 += fd * fd;
        }
        double rel = sqrt(num2) / fmax(sqrt(den2), 1e-30);
        const char *what = kind == 0 ? "single pixels" : "dense +-1 directions";
        printf("  input gradient vs central differences, %d %s (h %.0e): rel err %.3g\n", count, what, h, rel);
        EXPECT(rel <= tol, "input gradient through the frozen trunk, %d %s: rel err %.3g, tolerance %.0e", count, what,
               rel, tol);
    }
    free(v);
}

static void input_gradient_case(void) {
    ModelConfig cfg;
    model_config_default(&cfg);
    cfg.embedding_dim = 16;
    ImageEncoder ie;
    image_encoder_init(&ie, &cfg);
    int E = cfg.embedding_dim, S = 64;
    fill_uniform(ie.emb_features.weight->data, ie.emb_features.weight->n, -0.1f, 0.1f, 12);
    fill_uniform(ie.emb_cnn_code.weight->data, ie.emb_cnn_code.weight->n, -0.1f, 0.1f, 13);
    fill_uniform(ie.emb_cnn_code.bias->data, ie.emb_cnn_code.bias->n, -0.1f, 0.1f, 14);
    GradCase c = {&ie, tensor_alloc(4, (int[]){1, 3, S, S}, 1), NULL, NULL};
    fill_uniform(c.img->data, c.img->n, -1.0f, 1.0f, 15);
    linearize_trunk(&ie, 11);
    c.w_code = xmalloc((size_t)E * sizeof(float));
    c.w_region = xmalloc((size_t)E * 17 * 17 * sizeof(float));
    Rng r;
    rng_init(&r, 77);
    rng_normal(&r, c.w_code, E, 0.0f, 1.0f);
    rng_normal(&r, c.w_region, (int64_t)E * 17 * 17, 0.0f, 1.0f);
    ie.train = 0;
    paramset_zero_grad(&ie.ps);
    Tape tp;
    tape_init(&tp);
    ImageEncoderOut o;
    double t0 = now_s();
    grad_loss(&tp, &c, &o);
    Tensor *outs[2] = {o.code, o.region};
    const float *seeds[2] = {c.w_code, c.w_region};
    tape_backward_seeded(&tp, 2, outs, seeds);
    printf("  batch-1 eval forward + backward to a 64 px input: %.2f s\n", now_s() - t0);
    check_gradient_targets(&ie, c.img);
    /* fp32 rounding limits a single pixel's step from below, the max pools a dense step from above;
     * cutting one of the four branches of one Inception block out of the graph gives ~0.5 here */
    int n_fd = SANITIZED ? 3 : 6;
    finite_differences(&tp, &c, &r, n_fd, 0.3, n_fd, 1e-2, 5e-2);
    tape_free(&tp);
    tensor_free(c.img);
    free(c.w_code);
    free(c.w_region);
    image_encoder_free(&ie);
}

/* ---------------------------------------------------------------- layouts */

/* The frozen eval-mode trunk in nChw16c (the default) against NCHW: the codes, the region
 * features and the image gradient agree within 1e-4 (the 1x1 convolutions run other kernels and
 * the differences pass through 94 layers), and the blocked run really is blocked. The trunk is
 * linearised (linearize_trunk): with real weights a last-bit difference can move a max pool's
 * argmax between two nearly equal values and send that gradient elsewhere, in either layout. */
static void layout_case(void) {
    ModelConfig cfg;
    model_config_default(&cfg);
    cfg.embedding_dim = 16;
    ImageEncoder ie;
    image_encoder_init(&ie, &cfg);
    linearize_trunk(&ie, 35);
    fill_uniform(ie.emb_features.weight->data, ie.emb_features.weight->n, -0.1f, 0.1f, 32);
    fill_uniform(ie.emb_cnn_code.weight->data, ie.emb_cnn_code.weight->n, -0.1f, 0.1f, 33);
    ie.train = 0;
    image_encoder_set_trainable(&ie, 0);
    float *out[2][3];
    int64_t n[3];
    for (int blocked = 0; blocked < 2; blocked++) {
        image_encoder_set_blocked_layout(blocked);
        Tensor *img = tensor_alloc(4, (int[]){2, 3, 64, 64}, 1);
        fill_uniform(img->data, img->n, -1, 1, 31);
        Tape tp;
        tape_init(&tp);
        ImageEncoderOut o = image_encoder_forward(&tp, &ie, img);
        int n_blocked = 0;
        for (int i = 0; i < tp.n_nodes; i++) n_blocked += tp.nodes[i].out[0]->blocked;
        EXPECT(blocked ? n_blocked > 90 : n_blocked == 0, "trunk layout %s: %d nChw16c outputs on the tape",
               blocked ? "blocked" : "nchw", n_blocked);
        float *g = xmalloc((size_t)o.region->n * sizeof(float));
        fill_uniform(g, o.region->n, -1, 1, 34);
        Tensor *outs[2] = {o.code, o.region};
        const float *seeds[2] = {g, g};
        tape_backward_seeded(&tp, 2, outs, seeds);
        Tensor *res[3] = {o.code, o.region, img};
        for (int k = 0; k < 3; k++) {
            const float *src = k == 2 ? img->grad : res[k]->data;
            n[k] = res[k]->n;
            out[blocked][k] = xmalloc((size_t)n[k] * sizeof(float));
            memcpy(out[blocked][k], src, (size_t)n[k] * sizeof(float));
        }
        free(g);
        tape_free(&tp);
        tensor_free(img);
    }
    image_encoder_set_blocked_layout(1);
    const char *what[3] = {"trunk nChw16c vs NCHW: sentence code", "trunk nChw16c vs NCHW: region features",
                           "trunk nChw16c vs NCHW: image gradient"};
    for (int k = 0; k < 3; k++) {
        expect_close(what[k], out[1][k], out[0][k], n[k], 1e-4);
        free(out[0][k]);
        free(out[1][k]);
    }
    image_encoder_free(&ie);
}

/* ---------------------------------------------------------------- timing */

static void timing_case(SafeTensors *trunk) {
    if (SANITIZED) return;
    ModelConfig cfg;
    model_config_default(&cfg);
    cfg.embedding_dim = 16;
    ImageEncoder ie;
    image_encoder_init(&ie, &cfg);
    if (nn_load(&ie.ps, trunk, "", LOAD_PARTIAL, NULL)) FAIL("%s", err_msg());
    Tensor *imgs = tensor_alloc(4, (int[]){4, 3, 299, 299}, 0);
    fill_uniform(imgs->data, imgs->n, -1, 1, 5);
    Tape tp;
    tape_init(&tp);
    ie.train = 0;
    image_encoder_set_trainable(&ie, 0);
    tape_no_grad_begin(&tp);
    double t0 = now_s();
    image_encoder_forward(&tp, &ie, imgs);
    double t_nograd = now_s() - t0;
    tape_no_grad_end(&tp);
    tape_reset(&tp);
    image_encoder_set_trainable(&ie, 1);
    t0 = now_s();
    image_encoder_forward(&tp, &ie, imgs);
    double t_grad = now_s() - t0;
    printf("  timing: batch 4 at 299 px, eval, %d threads: forward %.2f s without grad, %.2f s recording the heads\n",
           threads_get(), t_nograd, t_grad);
    /* the GAN's path: images that require grad, backward through the frozen trunk */
    tape_reset(&tp);
    Tensor *leaf = tensor_alloc(4, imgs->shape, 1);
    memcpy(leaf->data, imgs->data, (size_t)imgs->n * sizeof(float));
    t0 = now_s();
    ImageEncoderOut o = image_encoder_forward(&tp, &ie, leaf);
    double t_fwd = now_s() - t0;
    float *ones = xmalloc((size_t)o.region->n * sizeof(float));
    for (int64_t i = 0; i < o.region->n; i++) ones[i] = 1.0f;
    Tensor *outs[2] = {o.code, o.region};
    const float *seeds[2] = {ones, ones};
    t0 = now_s();
    tape_backward_seeded(&tp, 2, outs, seeds);
    printf("  timing: batch 4, images requiring grad: forward %.2f s, backward %.2f s (arena high water %.0f MiB)\n", t_fwd,
           now_s() - t0, (double)tp.arena.high_water / (1 << 20));
    free(ones);
    tensor_free(leaf);
    tape_free(&tp);
    tensor_free(imgs);
    image_encoder_free(&ie);
}

/* EXTRA.IMAGE_CODE 'mixed_6e': the global code is emb_cnn_code (768 -> E) of Mixed_6e's 17x17
 * mean; 'pool' (the seed) reads the 2048-d pool */
static void image_code_case(void) {
    ModelConfig cfg;
    model_config_default(&cfg);
    cfg.embedding_dim = 16;
    cfg.image_code_mixed = 1;
    ImageEncoder ie;
    image_encoder_init(&ie, &cfg);
    EXPECT(ie.emb_cnn_code.weight->shape[1] == 768, "mixed_6e code: emb_cnn_code reads 768 features (%d)", ie.emb_cnn_code.weight->shape[1]);
    fill_uniform(ie.emb_cnn_code.weight->data, ie.emb_cnn_code.weight->n, -0.1f, 0.1f, 4);
    fill_uniform(ie.emb_cnn_code.bias->data, 16, -0.1f, 0.1f, 5);
    Tape tp;
    tape_init(&tp);
    Tensor *mixed = TNEW(&tp, 2, 768, 17, 17), *pool = TNEW(&tp, 2, 2048);
    fill_uniform(mixed->data, mixed->n, 0.0f, 2.0f, 6);
    fill_uniform(pool->data, pool->n, 0.0f, 2.0f, 7);
    Tensor *code = image_encoder_code(&tp, &ie, mixed, pool);
    double worst = 0;
    for (int b = 0; b < 2; b++)
        for (int e = 0; e < 16; e++) {
            double acc = ie.emb_cnn_code.bias->data[e];
            for (int c = 0; c < 768; c++) {
                double m = 0;
                for (int q = 0; q < 289; q++) m += mixed->data[((size_t)b * 768 + c) * 289 + q];
                acc += ie.emb_cnn_code.weight->data[(size_t)e * 768 + c] * (m / 289);
            }
            double d = fabs(acc - code->data[b * 16 + e]);
            worst = d > worst ? d : worst;
        }
    EXPECT(worst < 1e-4, "mixed_6e code = Linear(mean over 17x17): worst error %.3g", worst);
    tape_free(&tp);
    image_encoder_free(&ie);
    cfg.image_code_mixed = 0;
    image_encoder_init(&ie, &cfg);
    EXPECT(ie.emb_cnn_code.weight->shape[1] == 2048, "pool code: emb_cnn_code reads 2048 features");
    image_encoder_free(&ie);
}

int main(void) {
    test_begin("test_image_encoder");
    test_registration();
    image_code_case();
    input_gradient_case();
    SafeTensors *trunk = open_trunk();
    layout_case();
    if (trunk) {
        eval_case("gan_b1_small", "out.fake_imgs0", trunk);
        eval_case("gan_b3_small", "out.fake_imgs2", trunk);
        train_case(trunk);
        timing_case(trunk);
        st_close(trunk);
        free(trunk);
    }
    return test_end();
}
