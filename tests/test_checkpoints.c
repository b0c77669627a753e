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
 *  - the image encoder (trunk included) when the directory has it (--no-image-encoder skips it);
 *  - `attngan import` (model_import): AttnGAN's own G (CA_NET + noise, 2018 files without
 *    num_batches_tracked) and text encoder (no ZSL G) with captions.pickle's numbering become a
 *    model directory that gen_model_load reads; its text encoder and G, given the reference's
 *    noise (z, eps), draw PyTorch's images and attention maps (1e-4). The seed's pair (ZSL G, G on
 *    the code) imports as well and gives out.te / out.netG; from the .pth files themselves
 *    (src/io/pth.c, with --keep-pth) the weights are the same. Refused, each with its message: a
 *    damaged .pth, a vocabulary of another size, a --cfg size that the tensors contradict, an existing
 *    model without --force. */
#include "test.h"
#include "../src/nn/discriminator.h"
#include "../src/nn/generator.h"
#include "../src/nn/image_encoder.h"
#include "../src/nn/load.h"
#include "../src/nn/text_encoder.h"
#include "../src/nn/zsl.h"
#include "../src/app/import.h"
#include "../src/gen/gen.h"
#include "../src/train/checkpoint.h"

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

/* ---------------------------------------------------------------- attngan import */
static char g_tmp[64];

static void put_text(const char *name, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", g_tmp, name);
    CHECK(write_file_atomic(path, text, strlen(text)) == 0, "%s", err_msg());
}

static void rm_model(const char *dir) {
    const char *files[] = {"model.json", "netG.safetensors", "text_encoder.safetensors", "image_encoder.safetensors", "vocab.txt"};
    char path[512];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        remove(path);
    }
    rmdir(dir);
}

/* import must fail, with msg in its error */
static void expect_refused(const ImportOptions *o, const char *what, const char *msg) {
    int rc = model_import(o, NULL, 0);
    EXPECT(rc != 0 && strstr(err_msg(), msg), "import %s: refused with '%s' (rc %d: %s)", what, msg, rc, rc ? err_msg() : "accepted");
}

static void test_import(SafeTensors *ref) {
    char netg[512], te[512], caps[512], yml[512], out[128], vocab_bad[128], pth[128], seed_g[512], seed_te[512];
    if (!ckpt_path("attngan_netG.safetensors") || !ckpt_path("captions.pickle")) {
        test_skip("%s has no attngan_netG.safetensors / captions.pickle (an older make_checkpoints.sh): import not tested", ckpt_dir());
        return;
    }
    snprintf(netg, sizeof netg, "%s", ckpt_path("attngan_netG.safetensors"));
    snprintf(te, sizeof te, "%s", ckpt_path("attngan_text_encoder.safetensors"));
    snprintf(caps, sizeof caps, "%s", ckpt_path("captions.pickle"));
    snprintf(yml, sizeof yml, "%s", ckpt_path("attngan_tiny.yml"));
    snprintf(seed_g, sizeof seed_g, "%s", ckpt_path("netG.safetensors"));
    snprintf(seed_te, sizeof seed_te, "%s", ckpt_path("text_encoder.safetensors"));
    snprintf(g_tmp, sizeof g_tmp, "/tmp/test_import.XXXXXX");
    if (!mkdtemp(g_tmp)) FAIL("mkdtemp %s failed", g_tmp);
    snprintf(out, sizeof out, "%s/model", g_tmp);
    const StTensor *nbt = NULL;
    {
        SafeTensors sg;
        if (EXPECT(st_open(&sg, netg) == 0, "%s: %s", netg, err_msg())) {
            nbt = st_find(&sg, "h_net1.fc.1.num_batches_tracked");
            EXPECT(nbt == NULL && st_find(&sg, "ca_net.fc.weight"), "attngan_netG: CA_NET, no num_batches_tracked (a 2018 file)");
            st_close(&sg);
        }
    }
    ImportOptions o = {.net_g = netg, .text_encoder = te, .captions = caps, .cfg = yml, .out = out};
    char summary[600];
    if (!EXPECT(model_import(&o, summary, sizeof summary) == 0, "import AttnGAN's pair: %s", err_msg())) return;
    printf("  import: %s\n", summary);
    EXPECT(strstr(summary, "CONDITION_DIM 6, Z_DIM 5") != NULL, "the summary names CONDITION_DIM 6 and Z_DIM 5: %s", summary);
    GenModel m;
    if (EXPECT(gen_model_load(&m, out) == 0, "the imported model loads: %s", err_msg())) {
        EXPECT(m.mc.ca_net && m.mc.sent_lstm && m.mc.no_zsl_g && m.te.ps.n == 9 && m.vocab.n == 60 && m.tc.tree.branch_num == 3,
               "imported: CA_NET %d, LSTM code %d, no ZSL G %d (text encoder %d tensors, 9), 60 words (%d), 3 stages (%d)",
               m.mc.ca_net, m.mc.sent_lstm, m.mc.no_zsl_g, m.te.ps.n, m.vocab.n, m.tc.tree.branch_num);
        EXPECT(vocab_find(&m.vocab, "bird") == 2 && vocab_find(&m.vocab, "brown") == 19, "captions.pickle's numbering: bird 2, brown 19");
        int64_t n, nc, *l = fixture_i64(ref, "in.ca.cap_lens", &n), *ids = fixture_i64(ref, "in.ca.captions", &nc);
        int B = (int)n, lens[8];
        for (int i = 0; i < B && i < 8; i++) lens[i] = (int)l[i];
        EXPECT(nc == (int64_t)B * m.mc.words_num, "in.ca.captions is (B, WORDS_NUM %d from --cfg)", m.mc.words_num);
        Tensor *z = fixture_tensor(ref, "in.ca.z", 0), *eps = fixture_tensor(ref, "in.ca.eps", 0);
        Tape tp;
        tape_init(&tp);
        tape_no_grad_begin(&tp);
        TextEncoderOut t = text_encoder_forward(&tp, &m.te, ids, lens, B, NULL, NULL, NULL);
        expect_ref(ref, "import", "out.ca.words_emb", t.words_emb, TOL, &worst_f32);
        expect_ref(ref, "import", "out.ca.sent_emb", t.sent_emb, TOL, &worst_f32);
        int L = t.words_emb->shape[2];
        uint8_t *mask = xmalloc((size_t)B * L);
        for (int b = 0; b < B; b++)
            for (int j = 0; j < L; j++) mask[b * L + j] = ids[(size_t)b * m.mc.words_num + j] == 0;
        GNetOut g = gnet_forward_noise(&tp, &m.g, t.sent_emb, t.words_emb, mask, z, eps, NULL);
        tape_no_grad_end(&tp);
        if (EXPECT(g.n_imgs == 3 && g.n_att == 2, "import: 3 images, 2 attention maps")) {
            char k[64];
            for (int i = 0; i < 3; i++) snprintf(k, sizeof k, "out.ca.imgs%d", i), expect_ref(ref, "import", k, g.imgs[i], TOL, &worst_f32);
            for (int i = 0; i < 2; i++) snprintf(k, sizeof k, "out.ca.att%d", i), expect_ref(ref, "import", k, g.att[i], TOL, &worst_f32);
        }
        tape_free(&tp);
        free(mask);
        free(l);
        free(ids);
        tensor_free(z);
        tensor_free(eps);
        /* generation as the commands run it: the noise drawn, images in [-1, 1], seeds differ */
        GenOptions go;
        gen_options_default(&go);
        go.n = 2;
        GenResult r;
        if (EXPECT(gen_run(&m, "this bird is red with white wings", &go, &r) == 0, "gen_run on the imported model: %s", err_msg())) {
            int S = r.size[2];
            size_t px = (size_t)3 * S * S;
            double diff = 0;
            int in_range = 1;
            for (size_t i = 0; i < px; i++) {
                diff += fabs(r.imgs[2][i] - r.imgs[2][px + i]);
                in_range &= r.imgs[2][i] >= -1.0f && r.imgs[2][i] <= 1.0f;
            }
            EXPECT(S == 256 && in_range && diff > 0, "gen_run: 256 px, in [-1, 1] (%d), two noises give two birds (sum |diff| %g)", in_range, diff);
            gen_result_free(&r);
        }
        gen_model_free(&m);
    }

    /* the same pair straight from PyTorch's .pth files (make_checkpoints.sh --keep-pth) */
    if (ckpt_path("attngan_netG.pth") && ckpt_path("attngan_text_encoder.pth")) {
        char gp[512], tp[512], out3[128];
        snprintf(gp, sizeof gp, "%s", ckpt_path("attngan_netG.pth"));
        snprintf(tp, sizeof tp, "%s", ckpt_path("attngan_text_encoder.pth"));
        snprintf(out3, sizeof out3, "%s/from_pth", g_tmp);
        ImportOptions q = o;
        q.net_g = gp;
        q.text_encoder = tp;
        q.out = out3;
        GenModel a, b;
        int rc = model_import(&q, NULL, 0);
        if (EXPECT(rc == 0, "import from the .pth files: %s", err_msg()) && EXPECT(gen_model_load(&a, out) == 0, "load") &&
            EXPECT(gen_model_load(&b, out3) == 0, "load from_pth")) {
            EXPECT(a.g.ps.n_values == b.g.ps.n_values && a.te.ps.n_values == b.te.ps.n_values &&
                       !memcmp(a.g.ps.values, b.g.ps.values, (size_t)a.g.ps.n_values * sizeof(float)) &&
                       !memcmp(a.g.ps.buffers, b.g.ps.buffers, (size_t)a.g.ps.n_buffers * sizeof(float)) &&
                       !memcmp(a.te.ps.values, b.te.ps.values, (size_t)a.te.ps.n_values * sizeof(float)),
                   "the .pth import has the same weights and statistics as the pth2safetensors one");
            gen_model_free(&a);
            gen_model_free(&b);
        }
        rm_model(out3);
    } else test_skip("no attngan_netG.pth in %s (make_checkpoints.sh --keep-pth): import from .pth not tested here", ckpt_dir());

    /* refusals */
    expect_refused(&o, "into an existing model", "--force");
    o.force = 1;
    EXPECT(model_import(&o, NULL, 0) == 0, "--force overwrites: %s", err_msg());
    snprintf(pth, sizeof pth, "%s/netG.pth", g_tmp);
    put_text("netG.pth", "PK\003\004 no zip after all");
    ImportOptions p = o;
    p.net_g = pth;
    expect_refused(&p, "a damaged .pth", "--netG: ");
    snprintf(vocab_bad, sizeof vocab_bad, "%s/vocab.txt", g_tmp);
    put_text("vocab.txt", "<end>\nthis\nbird\n");
    p = o;
    p.captions = NULL;
    p.vocab = vocab_bad;
    expect_refused(&p, "a vocabulary of 3 words", "has 3 words, the text encoder's embedding 60");
    put_text("gf8.yml", "GAN:\n  GF_DIM: 8\nTEXT:\n  WORDS_NUM: 12\n");
    char gf8[128];
    snprintf(gf8, sizeof gf8, "%s/gf8.yml", g_tmp);
    p = o;
    p.cfg = gf8;
    expect_refused(&p, "a --cfg with another GF_DIM", "--cfg sets GAN.GF_DIM 8, the checkpoint's tensors say 4");
    p = o;
    p.text_encoder = seed_te; /* E agrees; the sentence code comes through ZSL G: a valid, other pair */
    p.net_g = seed_g;
    expect_refused(&p, "the seed's G with AttnGAN's YAML", "GAN.CONDITION_DIM 6, the checkpoint's tensors say 16");

    /* the seed's pair (ZSL G in the text encoder, G on the code) */
    put_text("words12.yml", "TEXT:\n  WORDS_NUM: 12\n");
    char w12[128], out2[128];
    snprintf(w12, sizeof w12, "%s/words12.yml", g_tmp);
    snprintf(out2, sizeof out2, "%s/seed", g_tmp);
    p.cfg = w12;
    p.out = out2;
    if (EXPECT(model_import(&p, summary, sizeof summary) == 0, "import the seed's pair: %s", err_msg()) &&
        EXPECT(gen_model_load(&m, out2) == 0, "the seed's imported model loads: %s", err_msg())) {
        printf("  import: %s\n", summary);
        EXPECT(!m.mc.ca_net && !m.mc.sent_lstm && !m.mc.no_zsl_g, "the seed's: no CA_NET, ZSL G's code");
        int64_t n, nc, *l = fixture_i64(ref, "in.cap_lens", &n), *ids = fixture_i64(ref, "in.captions", &nc);
        int B = (int)n, lens[8];
        for (int i = 0; i < B && i < 8; i++) lens[i] = (int)l[i];
        Tensor *z = fixture_tensor(ref, "in.z", 0), *sent = fixture_tensor(ref, "in.sent_emb", 0), *words = fixture_tensor(ref, "in.words_emb", 0);
        int64_t nm, *mm = fixture_i64(ref, "in.mask", &nm);
        uint8_t *mask = xmalloc((size_t)nm);
        for (int64_t i = 0; i < nm; i++) mask[i] = mm[i] != 0;
        Tape tp;
        tape_init(&tp);
        tape_no_grad_begin(&tp);
        TextEncoderOut t = text_encoder_forward(&tp, &m.te, ids, lens, B, z, NULL, NULL);
        expect_ref(ref, "import seed", "out.te.sent_emb", t.sent_emb, TOL, &worst_f32);
        GNetOut g = gnet_forward(&tp, &m.g, sent, words, mask);
        tape_no_grad_end(&tp);
        expect_ref(ref, "import seed", "out.netG.imgs2", g.imgs[2], TOL, &worst_f32);
        tape_free(&tp);
        free(l);
        free(ids);
        free(mm);
        free(mask);
        tensor_free(z);
        tensor_free(sent);
        tensor_free(words);
        gen_model_free(&m);
    }
    rm_model(out);
    rm_model(out2);
    const char *files[] = {"netG.pth", "vocab.txt", "gf8.yml", "words12.yml"};
    char path[256];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) snprintf(path, sizeof path, "%s/%s", g_tmp, files[i]), remove(path);
    rmdir(g_tmp);
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
    test_import(&ref);
    printf("test_checkpoints: worst norm-relative error vs the reference: f32 %.3g, trunk %.3g, f16 weights %.3g\n", worst_f32,
           worst_trunk, worst_f16);
    st_close(&ref);
    return test_end();
}
