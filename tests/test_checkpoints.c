/* test_checkpoints.c: official-style AttnGAN / DAMSM checkpoints, converted by
 * tools/pth2safetensors.py, load into the C networks and give the reference's outputs.
 *
 * tests/parity/make_checkpoints.sh writes $ATTNGAN_CHECKPOINTS (default build/checkpoints): the
 * reference networks at tiny sizes with random weights, torch.save()d as AttnGAN does (legacy
 * pre-1.6 format for text_encoder, image_encoder, netD0/1/2 and the DataParallel netG_module;
 * zip for netG and zsl_d), converted without torch; config.json; reference.safetensors with
 * fixed inputs (in.*) and each net's eval-mode forward outputs (out.*). Without the directory
 * the test skips visibly.
 *
 *  - each net is built from config.json and loaded strictly (nn_load flags 0: no missing,
 *    unexpected or mis-shaped key, every entry loaded), then its forward is compared with the
 *    reference (1e-4; the Inception trunk 1e-3): the loaded weights are the right ones;
 *  - netG_module.safetensors (converted with --strip-prefix module.) gives the same outputs;
 *  - netG_f16.safetensors (--dtype f16): F16 weights, I64 num_batches_tracked, outputs within 1e-2;
 *  - mis-loading is reported by name: netD1 into a D_NET64 (unexpected keys), into a D_NET256
 *    (missing and unexpected keys), netD0 into a D_NET64 with another DF_DIM (mis-shaped keys);
 *  - the image encoder (trunk included) when the directory has it (--no-image-encoder skips it). */
#include "test.h"
#include "../src/nn/discriminator.h"
#include "../src/nn/generator.h"
#include "../src/nn/image_encoder.h"
#include "../src/nn/load.h"
#include "../src/nn/text_encoder.h"
#include "../src/nn/zsl.h"

#include <string.h>
#include <unistd.h>

#define TOL 1e-4
#define TOL_TRUNK 1e-3
#define TOL_F16 1e-2

static double worst_f32, worst_trunk, worst_f16;

static const char *ckpt_dir(void) {
    const char *d = getenv("ATTNGAN_CHECKPOINTS");
    return d && *d ? d : "build/checkpoints";
}

/* OUTDIR/name (static buffer), or NULL if it is not readable. */
static const char *ckpt_path(const char *name) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", ckpt_dir(), name);
    return access(path, R_OK) == 0 ? path : NULL;
}

static void read_config(ModelConfig *cfg) {
    const char *path = ckpt_path("config.json");
    if (!path) FAIL("%s/config.json missing (tests/parity/make_checkpoints.sh writes it)", ckpt_dir());
    FILE *f = fopen(path, "rb");
    if (!f) FAIL("cannot open %s", path);
    char *buf = NULL;
    size_t len = 0, cap = 0, k;
    do {
        if (len + 4096 + 1 > cap) buf = xrealloc(buf, cap = 2 * cap + 4096 + 1);
        k = fread(buf + len, 1, cap - len - 1, f);
        len += k;
    } while (k > 0);
    fclose(f);
    buf[len] = 0;
    model_config_default(cfg);
    if (model_config_from_json(cfg, buf)) FAIL("%s: %s", path, err_msg());
    free(buf);
}

/* Opens OUTDIR/<name>.safetensors; NULL (with a failed check) if absent or invalid. */
static SafeTensors *open_ckpt(const char *name) {
    char file[256];
    snprintf(file, sizeof file, "%s.safetensors", name);
    const char *path = ckpt_path(file);
    if (!EXPECT(path != NULL, "%s/%s exists (make_checkpoints.sh writes it)", ckpt_dir(), file)) return NULL;
    SafeTensors *st = xcalloc(1, sizeof *st);
    if (!EXPECT(st_open(st, path) == 0, "st_open %s: %s", path, err_msg())) {
        free(st);
        return NULL;
    }
    return st;
}

static void close_ckpt(SafeTensors *st) {
    if (!st) return;
    st_close(st);
    free(st);
}

/* Opens <name>.safetensors, checks it came from <source> through pth2safetensors and loads it
 * strictly into ps. Returns the open file (for more checks) or NULL. */
static SafeTensors *load_strict(ParamSet *ps, const char *name, const char *source) {
    SafeTensors *st = open_ckpt(name);
    if (!st) return NULL;
    const char *fmt = st_meta(st, "format"), *src = st_meta(st, "source");
    EXPECT(fmt && !strcmp(fmt, "pt") && src && !strcmp(src, source), "%s: metadata format 'pt', source '%s' (got %s, %s)",
           st->path, source, fmt ? fmt : "none", src ? src : "none");
    LoadReport r = {0, 0, 0, 0};
    int rc = nn_load(ps, st, "", 0, &r);
    int ok = EXPECT(rc == 0 && r.missing == 0 && r.unexpected == 0 && r.mis_shaped == 0,
                    "%s into %s: strict load: rc %d, %d missing, %d unexpected, %d mis-shaped: %s", st->path, ps->name, rc,
                    r.missing, r.unexpected, r.mis_shaped, rc ? err_msg() : "");
    ok &= EXPECT(r.loaded == ps->n && r.loaded == st->n, "%s: %d keys loaded, network %d, file %d", st->path, r.loaded, ps->n,
                 st->n);
    ok &= EXPECT(nn_load_check_complete(ps, st->path) == 0, "%s: every entry of %s loaded", st->path, ps->name);
    if (!ok) {
        close_ckpt(st);
        return NULL;
    }
    return st;
}

/* Compares got with the reference tensor key (shape, then values); prints the error. */
static void expect_ref(SafeTensors *ref, const char *what, const char *key, const Tensor *got, double tol, double *worst) {
    Tensor *want = fixture_tensor(ref, key, 0);
    char a[64], b[64];
    if (EXPECT(tensor_same_shape(got, want), "%s %s: shape %s, reference %s", what, key, tensor_shape_str(got, a, sizeof a),
               tensor_shape_str(want, b, sizeof b))) {
        double mx, r = rel_err(got->data, want->data, want->n, &mx);
        if (r > *worst) *worst = r;
        printf("  %-14s %-20s rel err %.3g  max abs %.3g\n", what, key, r, mx);
        char msg[160];
        snprintf(msg, sizeof msg, "%s %s", what, key);
        expect_close(msg, got->data, want->data, want->n, tol);
    }
    tensor_free(want);
}

/* ---------------------------------------------------------------- text encoder (+ ZSL G) */
static void test_text_encoder(SafeTensors *ref, const ModelConfig *cfg) {
    TextEncoder te;
    text_encoder_init(&te, cfg);
    SafeTensors *st = load_strict(&te.ps, "text_encoder", "text_encoder.pth");
    if (st) {
        int64_t n, *l = fixture_i64(ref, "in.cap_lens", &n), nc;
        int B = (int)n, *lens = xmalloc((size_t)B * sizeof(int));
        for (int i = 0; i < B; i++) lens[i] = (int)l[i];
        int64_t *caps = fixture_i64(ref, "in.captions", &nc);
        EXPECT(nc == (int64_t)B * cfg->words_num, "in.captions is (B, WORDS_NUM)");
        Tensor *z = fixture_tensor(ref, "in.z", 0);
        te.train = 0;
        Tape tp;
        tape_init(&tp);
        tape_no_grad_begin(&tp);
        TextEncoderOut o = text_encoder_forward(&tp, &te, caps, lens, B, z, NULL, NULL);
        tape_no_grad_end(&tp);
        expect_ref(ref, "text_encoder", "out.te.words_emb", o.words_emb, TOL, &worst_f32);
        expect_ref(ref, "text_encoder", "out.te.sent_lstm", o.sent_lstm, TOL, &worst_f32);
        expect_ref(ref, "text_encoder", "out.te.sent_emb", o.sent_emb, TOL, &worst_f32);
        tape_free(&tp);
        tensor_free(z);
        free(caps);
        free(lens);
        free(l);
        close_ckpt(st);
    }
    text_encoder_free(&te);
}

/* ---------------------------------------------------------------- G (branch 3) */
static void test_generator(SafeTensors *ref, const ModelConfig *cfg, const char *name, double tol, double *worst) {
    GNet g;
    gnet_init(&g, cfg, cfg->branch_num);
    const char *source = !strcmp(name, "netG_module") ? "netG_module.pth" : "netG.pth";
    SafeTensors *st = load_strict(&g.ps, name, source);
    if (st) {
        const ParamEntry *nbt = paramset_find(&g.ps, "h_net1.fc.1.num_batches_tracked");
        EXPECT(nbt && nbt->ival == 1, "%s: h_net1.fc.1.num_batches_tracked = 1 (one calibration batch), got %lld", name,
               nbt ? (long long)nbt->ival : -1LL);
        if (tol == TOL_F16) {
            const StTensor *w = st_find(st, "h_net1.fc.0.weight"), *b = st_find(st, "h_net1.fc.1.num_batches_tracked");
            EXPECT(w && w->dtype == ST_F16 && b && b->dtype == ST_I64, "%s: weights F16 (%s), num_batches_tracked I64 (%s)", name,
                   w ? st_dtype_name(w->dtype) : "absent", b ? st_dtype_name(b->dtype) : "absent");
        }
        Tensor *sent = fixture_tensor(ref, "in.sent_emb", 0), *words = fixture_tensor(ref, "in.words_emb", 0);
        int64_t nm;
        int64_t *m = fixture_i64(ref, "in.mask", &nm);
        uint8_t *mask = xmalloc((size_t)nm);
        for (int64_t i = 0; i < nm; i++) mask[i] = (uint8_t)(m[i] != 0);
        EXPECT(nm == (int64_t)words->shape[0] * words->shape[2], "in.mask is (B, L)");
        g.train = 0;
        Tape tp;
        tape_init(&tp);
        tape_no_grad_begin(&tp);
        GNetOut o = gnet_forward(&tp, &g, sent, words, mask);
        tape_no_grad_end(&tp);
        if (EXPECT(o.n_imgs == 3 && o.n_att == 2, "%s: 3 images and 2 attention maps, got %d, %d", name, o.n_imgs, o.n_att)) {
            char k[64];
            for (int i = 0; i < 3; i++) {
                snprintf(k, sizeof k, "out.netG.imgs%d", i);
                expect_ref(ref, name, k, o.imgs[i], tol, worst);
            }
            for (int i = 0; i < 2; i++) {
                snprintf(k, sizeof k, "out.netG.att%d", i);
                expect_ref(ref, name, k, o.att[i], tol, worst);
            }
        }
        tape_free(&tp);
        tensor_free(sent);
        tensor_free(words);
        free(m);
        free(mask);
        close_ckpt(st);
    }
    gnet_free(&g);
}

/* ---------------------------------------------------------------- Ds */
static void test_discriminators(SafeTensors *ref, const ModelConfig *cfg) {
    Tensor *cond = fixture_tensor(ref, "in.cond", 0);
    for (int i = 0; i < 3; i++) {
        int S = 64 << i;
        char name[16], source[32], k[64];
        snprintf(name, sizeof name, "netD%d", i);
        snprintf(source, sizeof source, "netD%d.pth", i);
        DNet d;
        dnet_init(&d, cfg, S, name);
        SafeTensors *st = load_strict(&d.ps, name, source);
        if (st) {
            snprintf(k, sizeof k, "in.img%d", S);
            Tensor *x = fixture_tensor(ref, k, 0);
            d.train = 0;
            Tape tp;
            tape_init(&tp);
            tape_no_grad_begin(&tp);
            Tensor *code = dnet_forward(&tp, &d, x);
            Tensor *pc = dnet_cond(&tp, &d, code, cond), *pu = dnet_uncond(&tp, &d, code);
            tape_no_grad_end(&tp);
            snprintf(k, sizeof k, "out.netD%d.code", i);
            expect_ref(ref, name, k, code, TOL, &worst_f32);
            snprintf(k, sizeof k, "out.netD%d.cond", i);
            expect_ref(ref, name, k, pc, TOL, &worst_f32);
            snprintf(k, sizeof k, "out.netD%d.uncond", i);
            expect_ref(ref, name, k, pu, TOL, &worst_f32);
            tape_free(&tp);
            tensor_free(x);
            close_ckpt(st);
        }
        dnet_free(&d);
    }
    tensor_free(cond);
}

/* Loading file into a D_NET<size> (DF_DIM df) fails, with counts and named keys as given. */
static void expect_misload(const ModelConfig *cfg0, const char *file, int size, int df, int want_missing, int want_unexpected,
                           int want_shaped, const char *const *names, int n_names) {
    ModelConfig cfg = *cfg0;
    cfg.df_dim = df;
    DNet d;
    dnet_init(&d, &cfg, size, "netD");
    SafeTensors *st = open_ckpt(file);
    if (st) {
        LoadReport r = {0, 0, 0, 0};
        err_clear();
        int rc = nn_load(&d.ps, st, "", 0, &r);
        const char *m = err_msg();
        EXPECT(rc == -1 && (r.missing > 0) == want_missing && (r.unexpected > 0) == want_unexpected &&
                   (r.mis_shaped > 0) == want_shaped,
               "%s into D_NET%d (DF_DIM %d): rc %d, %d missing, %d unexpected, %d mis-shaped", file, size, df, rc, r.missing,
               r.unexpected, r.mis_shaped);
        for (int i = 0; i < n_names; i++)
            EXPECT(m && strstr(m, names[i]), "%s into D_NET%d: the error names '%s': %s", file, size, names[i], m ? m : "");
        printf("  %s into D_NET%d (DF_DIM %d): %.300s%s\n", file, size, df, m ? m : "", m && strlen(m) > 300 ? "..." : "");
        close_ckpt(st);
    }
    dnet_free(&d);
}

static void test_misload(const ModelConfig *cfg) {
    /* D_NET128 = D_NET64 + img_code_s32 + img_code_s32_1: nothing of D_NET64 is missing */
    const char *n1[] = {"unexpected keys: ", "img_code_s32.0.weight", "img_code_s32_1.0.weight"};
    expect_misload(cfg, "netD1", 64, cfg->df_dim, 0, 1, 0, n1, 3);
    /* D_NET256 lacks img_code_s32_1 and wants img_code_s64* */
    const char *n2[] = {"missing keys: ", "img_code_s64.0.weight", "unexpected keys: ", "img_code_s32_1.0.weight"};
    expect_misload(cfg, "netD1", 256, cfg->df_dim, 1, 1, 0, n2, 4);
    /* another DF_DIM: the same keys, other shapes */
    char shaped[128];
    snprintf(shaped, sizeof shaped, "img_code_s16.0.weight: file (%d, 3, 4, 4), network (%d, 3, 4, 4)", cfg->df_dim,
             2 * cfg->df_dim);
    const char *n3[] = {"mis-shaped keys: ", shaped};
    expect_misload(cfg, "netD0", 64, 2 * cfg->df_dim, 0, 0, 1, n3, 2);
}

/* ---------------------------------------------------------------- ZSL D */
static void test_zsl_d(SafeTensors *ref, const ModelConfig *cfg) {
    ZslD d;
    zsl_d_init(&d, cfg);
    SafeTensors *st = load_strict(&d.ps, "zsl_d", "zsl_d.pth");
    if (st) {
        Tensor *x = fixture_tensor(ref, "in.zsl_x", 0), *pred, *cls;
        Tape tp;
        tape_init(&tp);
        tape_no_grad_begin(&tp);
        zsl_d_forward(&tp, &d, x, &pred, &cls);
        tape_no_grad_end(&tp);
        expect_ref(ref, "zsl_d", "out.zsl_d.pred", pred, TOL, &worst_f32);
        expect_ref(ref, "zsl_d", "out.zsl_d.cls", cls, TOL, &worst_f32);
        tape_free(&tp);
        tensor_free(x);
        close_ckpt(st);
    }
    zsl_d_free(&d);
}

/* ---------------------------------------------------------------- image encoder (trunk included) */
static void test_image_encoder(SafeTensors *ref, const ModelConfig *cfg) {
    if (!ckpt_path("image_encoder.safetensors") || !fixture_has(ref, "out.ie.code")) {
        test_skip("no image encoder in %s (make_checkpoints.sh was run with --no-image-encoder)", ckpt_dir());
        return;
    }
    ImageEncoder ie;
    image_encoder_init(&ie, cfg);
    SafeTensors *st = load_strict(&ie.ps, "image_encoder", "image_encoder.pth");
    if (st) {
        Tensor *x = fixture_tensor(ref, "in.img64", 0);
        ie.train = 0;
        Tape tp;
        tape_init(&tp);
        tape_no_grad_begin(&tp);
        ImageEncoderOut o = image_encoder_forward(&tp, &ie, x);
        tape_no_grad_end(&tp);
        expect_ref(ref, "image_encoder", "out.ie.trunk_pool", o.trunk_pool, TOL_TRUNK, &worst_trunk);
        expect_ref(ref, "image_encoder", "out.ie.region", o.region, TOL_TRUNK, &worst_trunk);
        expect_ref(ref, "image_encoder", "out.ie.code", o.code, TOL_TRUNK, &worst_trunk);
        tape_free(&tp);
        tensor_free(x);
        close_ckpt(st);
    }
    image_encoder_free(&ie);
}

int main(void) {
    test_begin("test_checkpoints");
    const char *rp = ckpt_path("reference.safetensors");
    if (!rp) {
        test_skip("%s/reference.safetensors not found (tests/parity/make_checkpoints.sh writes the converted checkpoints "
                  "with python3-torch; set ATTNGAN_CHECKPOINTS for another directory)",
                  ckpt_dir());
        return test_end();
    }
    SafeTensors ref;
    if (st_open(&ref, rp)) FAIL("%s", err_msg());
    ModelConfig cfg;
    read_config(&cfg);
    EXPECT(cfg.branch_num == 3 && cfg.correct_mask == 0, "config.json: branch 3, the seed's mask");
    printf("test_checkpoints: %s (GF_DIM %d, DF_DIM %d, EMBEDDING_DIM %d, WORDS_NUM %d)\n", ckpt_dir(), cfg.gf_dim, cfg.df_dim,
           cfg.embedding_dim, cfg.words_num);
    test_text_encoder(&ref, &cfg);
    test_zsl_d(&ref, &cfg);
    test_generator(&ref, &cfg, "netG", TOL, &worst_f32);
    test_generator(&ref, &cfg, "netG_module", TOL, &worst_f32);
    test_generator(&ref, &cfg, "netG_f16", TOL_F16, &worst_f16);
    test_discriminators(&ref, &cfg);
    test_misload(&cfg);
    test_image_encoder(&ref, &cfg);
    printf("test_checkpoints: worst norm-relative error vs the reference: f32 %.3g, trunk %.3g, f16 weights %.3g\n", worst_f32,
           worst_trunk, worst_f16);
    st_close(&ref);
    return test_end();
}
