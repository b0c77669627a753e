/* import.c: `attngan import`, a model directory from the official PyTorch checkpoints; see
 * import.h. What is read off the tensors:
 *   netG    ca_net.fc.weight (4C, E): AttnGAN's CA_NET (EXTRA.CA_NET True, GAN.CONDITION_DIM C);
 *           absent: the seed's G, on the sentence code itself (CONDITION_DIM = E);
 *           h_net1.fc.0.weight (16 GF_DIM * 4 * 4 * 2, C + Z): GAN.GF_DIM and GAN.Z_DIM;
 *           h_net2 / h_net3: TREE.BRANCH_NUM; h_net2.residual.<r>: GAN.R_NUM;
 *           img_net.img.0 (one head after the last stage): G_DCGAN (GAN.B_DCGAN True);
 *           a "module." prefix on every key (nn.DataParallel) is taken off.
 *   text    encoder.weight (n_words, TEXT.WORD_DIM); rnn.weight_hh_l0 (4 h, h): EMBEDDING_DIM 2 h;
 *           zsl_g.*: the seed's ZSL G (ZSL.RDC_DIM, ZSL.Z_DIM, ZSL.H_DIM); absent: AttnGAN's own
 *           encoder, whose sentence code is the LSTM's (EXTRA.SENT_CODE lstm).
 * Everything else (TEXT.WORDS_NUM, ...) is the seed's default or the --cfg YAML's; where the YAML
 * and the tensors disagree, the import stops and names the key. Files missing
 * num_batches_tracked (PyTorch < 0.4.1, the 2018 checkpoints) load with 0 there, as PyTorch
 * fills it in. The model directory is written in f32, model.json last, and loaded back once as
 * generate would load it. */
#include "import.h"
#include "app.h"
#include "../data/cub.h"
#include "../gen/gen.h"
#include "../gen/model_file.h"
#include "../gen/relevance.h"
#include "../io/pth.h"
#include "../io/safetensors.h"
#include "../nn/generator.h"
#include "../nn/image_encoder.h"
#include "../nn/load.h"
#include "../nn/text_encoder.h"
#include "../io/files.h"
#include "../nn/train_config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *IMPORT_USAGE =
    "usage: attngan import --netG FILE --text-encoder FILE (--captions captions.pickle | --vocab FILE)\n"
    "                      --out DIR [--image-encoder FILE] [--cfg YAML] [--data DIR [--wikipedia DIR]]\n"
    "                      [--note TEXT] [--force]\n"
    "\n"
    "Builds a model directory (what `attngan export` writes; generate, examples, serve and eval\n"
    "--model / --baseline read it) from the official PyTorch checkpoints of AttnGAN (Xu et al.\n"
    "2018: bird_AttnGAN2.pth with text_encoder200.pth) or of the seed (ZSL-AttnGAN).\n"
    "\n"
    "    attngan import --netG bird_AttnGAN2.pth --text-encoder text_encoder200.pth \\\n"
    "                   --captions data/birds/captions.pickle --cfg bird_attn2.yml --out models/attngan_official\n"
    "\n"
    "The .pth files are read as torch.save wrote them (zip, or the legacy format of PyTorch < 1.6,\n"
    "the official files of 2018) without Python and without running anything in them: only a\n"
    "state_dict's objects are accepted (any other global in the pickle stops the import, named).\n"
    "Files converted by tools/pth2safetensors.py (.safetensors) are read as well.\n"
    "\n"
    "The variant and the sizes are read off the tensors: AttnGAN's G (CA_NET: its sentence code\n"
    "through CA_NET, with noise z, as the original draws) and its text encoder (the LSTM's code,\n"
    "no ZSL G), or the seed's (ZSL G in the text encoder, G on its code); stages, GF_DIM, Z_DIM,\n"
    "CONDITION_DIM, R_NUM, EMBEDDING_DIM, the vocabulary size. The words must be numbered as the\n"
    "encoder was trained: the original's captions.pickle (its ixtoword), or a vocab.txt.\n"
    "\n"
    "  --netG FILE            G_NET's state_dict (.pth or .safetensors); a \"module.\" prefix is taken off\n"
    "  --text-encoder FILE    RNN_ENCODER's state_dict (.pth or .safetensors)\n"
    "  --image-encoder FILE   CNN_ENCODER's (optional): its heads are kept (the trunk is not)\n"
    "  --captions FILE        AttnGAN's captions.pickle: the word numbering (ixtoword)\n"
    "  --vocab FILE           or a vocab.txt: one word per line, line number = id, \"<end>\" first\n"
    "  --cfg YAML             the original's config (e.g. cfg/bird_attn2.yml): TEXT.WORDS_NUM and\n"
    "                         the rest; a size that disagrees with the tensors stops the import\n"
    "  --out DIR              the model directory to write (refused if it holds a model.json)\n"
    "  --force                overwrite the model in --out\n"
    "  --note TEXT            model.json's \"trained_on\" (default: the files it came from)\n"
    "  --data DIR             CUB birds (data/birds): measure the relevance centroids, as `attngan\n"
    "                         export` does (long text is then scored as with the bundled model);\n"
    "                         without it a piece of text scores by its known words alone\n"
    "  --wikipedia DIR        the Wikipedia articles for them (default DIR/../wikipedia)\n"
    "\n"
    "Exit status: 0, 1 if writing failed, 2 on bad arguments or files.\n";

/* ------------------------------------------------------------------ reading tensors */
/* The tensor `prefix name`, with ndim dimensions; NULL with err_msg() naming the file and key. */
static const StTensor *need(const SafeTensors *st, const char *prefix, const char *name, int ndim) {
    char key[512];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    const StTensor *t = st_find(st, key);
    if (!t) {
        err_set("%s: no tensor '%s'", st->path, key);
        return NULL;
    }
    if (t->ndim != ndim) {
        err_set("%s: tensor '%s' has %d dimensions, expected %d", st->path, key, t->ndim, ndim);
        return NULL;
    }
    return t;
}

static int has(const SafeTensors *st, const char *prefix, const char *name) {
    char key[512];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    return st_find(st, key) != NULL;
}

/* A torch.save file (zip or legacy): converted to a temporary safetensors file, whose path
 * replaces *path (tmp gets it, to be removed); a safetensors file is used as it is. */
static int converted(const char **path, const char *flag, char *tmp, size_t len) {
    tmp[0] = 0;
    int k = pth_sniff(*path);
    if (k < 0) return err_prefix("%s", flag);
    if (k == 0) return 0;
    const char *td = getenv("TMPDIR");
    snprintf(tmp, len, "%s/attngan_import_XXXXXX", td && *td ? td : "/tmp");
    int fd = mkstemp(tmp);
    if (fd < 0) {
        err_set("%s %s: cannot make a temporary file %s: %s", flag, *path, tmp, strerror(errno));
        tmp[0] = 0;
        return -1;
    }
    close(fd);
    if (pth_to_safetensors(*path, tmp)) return err_prefix("%s", flag);
    *path = tmp;
    return 0;
}

/* The sizes and the variant, from netG and the text encoder. */
typedef struct Found {
    const char *gp;            /* netG's key prefix: "" or "module." */
    int ca_net, cond, z, gf, branch, r_num, dcgan;
    int e, word_dim, n_words;
    int zsl_g, zsl_rdc, zsl_z, zsl_h;
} Found;

static int inspect_g(const SafeTensors *g, Found *f) {
    f->gp = !has(g, "", "h_net1.fc.0.weight") && has(g, "module.", "h_net1.fc.0.weight") ? "module." : "";
    const StTensor *fc = need(g, f->gp, "h_net1.fc.0.weight", 2);
    if (!fc) return err_prefix("--netG (not a G_NET of AttnGAN or of the seed?)");
    if (fc->shape[0] % 512) return err_set("%s: h_net1.fc.0.weight has %lld rows, not a multiple of 16*4*4*2 (GF_DIM)", g->path, (long long)fc->shape[0]);
    f->gf = (int)(fc->shape[0] / 512);
    f->ca_net = has(g, f->gp, "ca_net.fc.weight");
    if (f->ca_net) {
        const StTensor *ca = need(g, f->gp, "ca_net.fc.weight", 2);
        if (!ca) return -1;
        if (ca->shape[0] % 4) return err_set("%s: ca_net.fc.weight has %lld rows, not 4 * CONDITION_DIM", g->path, (long long)ca->shape[0]);
        f->cond = (int)(ca->shape[0] / 4);
        f->e = (int)ca->shape[1];
        f->z = (int)fc->shape[1] - f->cond;
        if (f->z <= 0)
            return err_set("%s: h_net1.fc.0.weight takes %lld inputs, CA_NET gives %d: no room for the noise (Z_DIM)", g->path,
                           (long long)fc->shape[1], f->cond);
    } else {
        f->cond = f->e = (int)fc->shape[1]; /* the seed's G reads the sentence code itself */
        f->z = 100;
    }
    f->branch = has(g, f->gp, "h_net3.att.conv_context.weight") ? 3 : has(g, f->gp, "h_net2.att.conv_context.weight") ? 2 : 1;
    f->dcgan = has(g, f->gp, "img_net.img.0.weight") && !has(g, f->gp, "img_net1.img.0.weight");
    f->r_num = 2;
    if (f->branch > 1) {
        char key[64];
        for (f->r_num = 0;; f->r_num++) {
            snprintf(key, sizeof key, "h_net2.residual.%d.block.0.weight", f->r_num);
            if (!has(g, f->gp, key)) break;
        }
        const StTensor *cc = need(g, f->gp, "h_net2.att.conv_context.weight", 4);
        if (!cc) return -1;
        if (cc->shape[1] != f->e)
            return err_set("%s: h_net2.att.conv_context.weight reads %lld-d words, the sentence side is %d-d", g->path,
                           (long long)cc->shape[1], f->e);
    }
    return 0;
}

static int inspect_text(const SafeTensors *t, Found *f) {
    const StTensor *emb = need(t, "", "encoder.weight", 2), *hh = need(t, "", "rnn.weight_hh_l0", 2);
    if (!emb || !hh) return err_prefix("--text-encoder (not an RNN_ENCODER?)");
    f->n_words = (int)emb->shape[0];
    f->word_dim = (int)emb->shape[1];
    int e = 2 * (int)hh->shape[1];
    if (e != f->e)
        return err_set("%s: the text encoder's codes are %d-d (rnn.weight_hh_l0 %lld x %lld), netG reads %d-d: not a pair", t->path, e,
                       (long long)hh->shape[0], (long long)hh->shape[1], f->e);
    f->zsl_g = has(t, "", "zsl_g.rdc_text.weight");
    if (f->zsl_g) {
        const StTensor *rdc = need(t, "", "zsl_g.rdc_text.weight", 2), *m0 = need(t, "", "zsl_g.main.0.weight", 2);
        if (!rdc || !m0) return -1;
        f->zsl_rdc = (int)rdc->shape[0];
        f->zsl_h = (int)m0->shape[0];
        f->zsl_z = (int)m0->shape[1] - f->zsl_rdc;
        if (f->zsl_z <= 0) return err_set("%s: zsl_g.main.0.weight takes %lld inputs, fewer than ZSL.RDC_DIM %d + 1", t->path,
                                          (long long)m0->shape[1], f->zsl_rdc);
        if (has(t, "", "zsl_gw.rdc_text.weight")) return err_set("%s: a word-level ZSL G (zsl_gw.*): import it with `attngan export` from its run", t->path);
    }
    return 0;
}

/* Sets key=value on tc, or, when the YAML set it to something else, fails naming both. */
static int set_or_check(TrainConfig *tc, const TrainConfig *yaml_default, int have_yaml, const char *key, int value) {
    char cur[64], def[64], as[160];
    if (have_yaml && !train_config_value_str(tc, key, cur, sizeof cur) && !train_config_value_str(yaml_default, key, def, sizeof def) &&
        strcmp(cur, def) && atoi(cur) != value)
        return err_set("--cfg sets %s %s, the checkpoint's tensors say %d", key, cur, value);
    snprintf(as, sizeof as, "%s=%d", key, value);
    return train_config_set(tc, as);
}

/* Writes a network in f32, recording the file it came from. */
static int write_ps(const ParamSet *ps, const char *path, const char *what, const char *source, GenKeepFn keep) {
    const char *meta[2] = {"imported_from", source};
    return gen_write_network(ps, path, what, 1, 0, keep, meta, 1);
}

int model_import(const ImportOptions *o, char *summary, size_t len) {
    if (!o->net_g || !o->text_encoder || !o->out) return err_set("--netG, --text-encoder and --out are required");
    if (!o->captions == !o->vocab) return err_set("give the word numbering: --captions captions.pickle or --vocab vocab.txt (one of them)");
    char path[4200];
    snprintf(path, sizeof path, "%s/model.json", o->out);
    struct stat sb;
    if (!o->force && stat(path, &sb) == 0)
        return err_set("%s already holds a model (%s); choose another --out, or --force to overwrite it", o->out, path);
    const char *net_g = o->net_g, *text = o->text_encoder, *image = o->image_encoder;
    char tmp[3][600] = {"", "", ""};
    int rc = -1, wfail = 0, have_g = 0, have_t = 0, have_i = 0;
    SafeTensors sg, st, si;
    Vocab vocab = {0};
    TrainConfig tc, tdef;
    ModelConfig mc;
    TextEncoder te = {0};
    GNet g = {0};
    ImageEncoder ie = {0};
    Found f = {0};
    char *cj = NULL, *txt = NULL;
    cJSON *mj = NULL, *rel = NULL;
#define TRY(x) do { if (x) goto done; } while (0)
    TRY(converted(&net_g, "--netG", tmp[0], sizeof tmp[0]));
    TRY(converted(&text, "--text-encoder", tmp[1], sizeof tmp[1]));
    if (image) TRY(converted(&image, "--image-encoder", tmp[2], sizeof tmp[2]));
    TRY(st_open(&sg, net_g));
    have_g = 1;
    TRY(st_open(&st, text));
    have_t = 1;
    free(sg.path), sg.path = xstrdup(o->net_g); /* messages name the user's files, not a converted copy */
    free(st.path), st.path = xstrdup(o->text_encoder);
    TRY(inspect_g(&sg, &f));
    TRY(inspect_text(&st, &f));
    if (o->captions) TRY(cub_vocab_from_pickle(o->captions, &vocab));
    else TRY(vocab_load(&vocab, o->vocab));
    if (vocab.n != f.n_words) {
        err_set("the vocabulary (%s) has %d words, the text encoder's embedding %d: not the numbering it was trained with",
                o->captions ? o->captions : o->vocab, vocab.n, f.n_words);
        goto done;
    }

    /* the config: defaults or the YAML, then what the tensors say */
    train_config_default(&tc);
    train_config_default(&tdef);
    if (o->cfg && train_config_load(&tc, o->cfg)) { err_prefix("--cfg"); goto done; }
    int y = o->cfg != NULL;
    TRY(set_or_check(&tc, &tdef, y, "TREE.BRANCH_NUM", f.branch));
    TRY(set_or_check(&tc, &tdef, y, "GAN.GF_DIM", f.gf));
    TRY(set_or_check(&tc, &tdef, y, "GAN.R_NUM", f.r_num));
    TRY(set_or_check(&tc, &tdef, y, "TEXT.EMBEDDING_DIM", f.e));
    TRY(set_or_check(&tc, &tdef, y, "GAN.CONDITION_DIM", f.cond));
    if (f.ca_net) TRY(set_or_check(&tc, &tdef, y, "GAN.Z_DIM", f.z));
    {
        char as[96];
        snprintf(as, sizeof as, "TEXT.WORD_DIM=%d", f.word_dim);
        TRY(train_config_set(&tc, as));
        TRY(train_config_set(&tc, f.ca_net ? "EXTRA.CA_NET=True" : "EXTRA.CA_NET=False"));
        TRY(train_config_set(&tc, f.dcgan ? "GAN.B_DCGAN=True" : "GAN.B_DCGAN=False"));
        TRY(train_config_set(&tc, f.zsl_g ? "EXTRA.SENT_CODE=zsl_g" : "EXTRA.SENT_CODE=lstm"));
        if (f.zsl_g) {
            snprintf(as, sizeof as, "ZSL.RDC_DIM=%d", f.zsl_rdc);
            TRY(train_config_set(&tc, as));
            snprintf(as, sizeof as, "ZSL.Z_DIM=%d", f.zsl_z);
            TRY(train_config_set(&tc, as));
            snprintf(as, sizeof as, "ZSL.H_DIM=%d", f.zsl_h);
            TRY(train_config_set(&tc, as));
        }
        if (!tc.config_name[0]) TRY(train_config_set(&tc, "CONFIG_NAME=imported"));
    }
    tc.train.net_e[0] = tc.train.net_g[0] = 0;
    if (train_config_check_gan(&tc)) { err_prefix("the imported config"); goto done; }
    train_config_to_model(&tc, &mc);
    mc.n_words = vocab.n;
    mc.no_zsl_g = !f.zsl_g;

    /* the networks, strictly: every key of ours in the file, no key of the file left over */
    text_encoder_init(&te, &mc);
    gnet_init(&g, &mc, tc.tree.branch_num);
    if (nn_load(&te.ps, &st, "", LOAD_NBT_OPTIONAL, NULL)) { err_prefix("--text-encoder %s", o->text_encoder); goto done; }
    if (nn_load(&g.ps, &sg, f.gp, LOAD_NBT_OPTIONAL, NULL)) { err_prefix("--netG %s", o->net_g); goto done; }
    if (o->image_encoder) {
        TRY(st_open(&si, image));
        have_i = 1;
        free(si.path), si.path = xstrdup(o->image_encoder);
        image_encoder_init(&ie, &mc);
        if (nn_load(&ie.ps, &si, "", LOAD_NBT_OPTIONAL, NULL)) { err_prefix("--image-encoder %s", o->image_encoder); goto done; }
    }

    if (o->data) { /* the relevance centroids, before anything is written */
        rel = cJSON_CreateObject();
        if (relevance_measure(&te, &vocab, o->data, o->wiki, rel)) { err_prefix("--data %s", o->data); goto done; }
    }
    wfail = 1; /* from here, a failure is a failed write */
    if (mkdir_p(o->out)) goto done;
    snprintf(path, sizeof path, "%s/netG.safetensors", o->out);
    TRY(write_ps(&g.ps, path, f.ca_net ? "netG (AttnGAN's G_NET with CA_NET)" : "netG (the seed's G_NET)", o->net_g, gen_keep_all));
    snprintf(path, sizeof path, "%s/text_encoder.safetensors", o->out);
    TRY(write_ps(&te.ps, path, f.zsl_g ? "text_encoder (bi-LSTM + ZSL G)" : "text_encoder (AttnGAN's bi-LSTM, no ZSL G)",
                 o->text_encoder, gen_keep_all));
    snprintf(path, sizeof path, "%s/image_encoder.safetensors", o->out);
    if (o->image_encoder) {
        TRY(write_ps(&ie.ps, path, "image_encoder heads (DAMSM; the Inception trunk is not included)", o->image_encoder,
                     gen_keep_image_heads));
    } else if (o->force) remove(path); /* not another model's */
    snprintf(path, sizeof path, "%s/vocab.txt", o->out);
    TRY(vocab_save(&vocab, path));

    char desc[512];
    char noise[96];
    if (f.ca_net) snprintf(noise, sizeof noise, "CONDITION_DIM %d, Z_DIM %d", f.cond, f.z);
    else snprintf(noise, sizeof noise, "no noise in G");
    snprintf(desc, sizeof desc, "%s: %d stage%s (64-%d px), GF_DIM %d, R_NUM %d, %s; text encoder %s, %d-d codes, %d words",
             f.ca_net ? "AttnGAN (CA_NET + noise)" : "ZSL-AttnGAN (the seed's G)", f.branch, f.branch > 1 ? "s" : "",
             64 << (f.branch - 1), f.gf, f.r_num, noise,
             f.zsl_g ? "with ZSL G" : "without ZSL G (the LSTM's sentence code)", f.e, vocab.n);
    cj = train_config_to_json(&tc);
    mj = cJSON_CreateObject();
    cJSON_AddStringToObject(mj, "format", GEN_MODEL_FORMAT);
    {
        char note[3000];
        if (o->note) snprintf(note, sizeof note, "%s", o->note);
        else snprintf(note, sizeof note, "imported from PyTorch checkpoints: netG %s, text encoder %s", o->net_g, o->text_encoder);
        cJSON_AddStringToObject(mj, "trained_on", note);
    }
    cJSON_AddNullToObject(mj, "steps");
    cJSON_AddStringToObject(mj, "source", o->net_g);
    cJSON_AddStringToObject(mj, "imported", desc);
    {
        time_t now = time(NULL);
        char date[32];
        strftime(date, sizeof date, "%Y-%m-%d", gmtime(&now));
        cJSON_AddStringToObject(mj, "exported", date);
    }
    cJSON_AddStringToObject(mj, "storage", "f32");
    if (rel) cJSON_AddItemToObject(mj, "relevance", cJSON_DetachItemFromObject(rel, "relevance"));
    cJSON_AddItemToObject(mj, "config", cJSON_Parse(cj));
    txt = cJSON_Print(mj);
    snprintf(path, sizeof path, "%s/model.json", o->out);
    TRY(write_file_atomic(path, txt, strlen(txt)));

    wfail = 0;
    /* read back as generate does */
    GenModel m;
    if (gen_model_load(&m, o->out)) { err_prefix("the written model does not load back"); goto done; }
    gen_model_free(&m);
    if (summary) snprintf(summary, len, "%s", desc);
    rc = 0;
done:
#undef TRY
    free(cj);
    free(txt);
    cJSON_Delete(mj);
    cJSON_Delete(rel);
    if (te.ps.n) text_encoder_free(&te);
    if (g.ps.n) gnet_free(&g);
    if (ie.ps.n) image_encoder_free(&ie);
    if (vocab.words) vocab_free(&vocab);
    if (have_g) st_close(&sg);
    if (have_t) st_close(&st);
    if (have_i) st_close(&si);
    for (int i = 0; i < 3; i++)
        if (tmp[i][0]) remove(tmp[i]);
    return rc && wfail ? -2 : rc;
}

int cmd_import(int argc, char **argv) {
    ImportOptions o = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(IMPORT_USAGE, stdout); return 0; }
        else if (!strcmp(a, "--force")) o.force = 1;
        else if (!strcmp(a, "--netG") && more) o.net_g = argv[++i];
        else if (!strcmp(a, "--text-encoder") && more) o.text_encoder = argv[++i];
        else if (!strcmp(a, "--image-encoder") && more) o.image_encoder = argv[++i];
        else if (!strcmp(a, "--captions") && more) o.captions = argv[++i];
        else if (!strcmp(a, "--vocab") && more) o.vocab = argv[++i];
        else if (!strcmp(a, "--cfg") && more) o.cfg = argv[++i];
        else if (!strcmp(a, "--out") && more) o.out = argv[++i];
        else if (!strcmp(a, "--note") && more) o.note = argv[++i];
        else if (!strcmp(a, "--data") && more) o.data = argv[++i];
        else if (!strcmp(a, "--wikipedia") && more) o.wiki = argv[++i];
        else { fprintf(stderr, "attngan import: unknown argument: %s\n%s", a, IMPORT_USAGE); return 2; }
    }
    if (!o.net_g || !o.text_encoder || !o.out || !o.captions == !o.vocab) {
        fprintf(stderr, "attngan import: --netG, --text-encoder, --out and one of --captions / --vocab are required\n%s", IMPORT_USAGE);
        return 2;
    }
    char summary[600];
    int rc = model_import(&o, summary, sizeof summary);
    if (rc) {
        fprintf(stderr, "attngan import: %s\n", err_msg());
        return rc == -2 ? 1 : 2;
    }
    printf("imported %s\n  %s\n", o.out, summary);
    printf("  draw with: attngan generate --model %s \"this bird is red with white wings\"\n", o.out);
    return 0;
}
