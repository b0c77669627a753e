/* colour_check.c: does the EMA G's colour follow the caption's colour
 * words? For every test caption of the present test photos (caption 0 of each), generate a 64 px
 * image and average its central 32x32 pixels; group by the colour words in the caption.
 * usage: colour_check RUN_DIR TEXT_ENCODER.safetensors [G.safetensors]   (a 64 px, 1-stage run;
 *        G in train mode, batches of 16 captions, as AttnGAN samples during training)
 *        colour_check --model MODEL_DIR   (a model directory, drawn as attngan generate draws:
 *        eval mode, one caption at a time, seed = image index; the last stage's centre)
 * Data from ../shared/data/birds. A measurement for the training notes, not a test. */
#include "../src/data/cub.h"
#include "../src/gen/gen.h"
#include "../src/io/safetensors.h"
#include "../src/nn/generator.h"
#include "../src/nn/load.h"
#include "../src/nn/text_encoder.h"
#include "../src/train/gan_step.h"
#include "../src/nn/train_config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int load(ParamSet *ps, const char *p) {
    SafeTensors st;
    if (st_open(&st, p)) return -1;
    int rc = nn_load(ps, &st, "", 0, NULL);
    st_close(&st);
    return rc;
}

static const char *COLOURS[] = {"red", "blue", "yellow", "black", "white", "green", "brown", "orange", "grey", "gray"};

static int model_mode(const char *dir) {
    GenModel m;
    Cub cub;
    if (gen_model_load(&m, dir) || cub_open(&cub, "../shared/data/birds")) { printf("%s\n", err_msg()); return 1; }
    double sum[10][3] = {{0}}, all[3] = {0};
    int cnt[10] = {0}, nall = 0;
    const CubSplit *s = &cub.test;
    GenOptions o;
    gen_options_default(&o);
    for (int i = 0; i < s->n; i++) {
        const CubImage *im = &s->images[i];
        if (!im->present || im->cap_len[0] <= 0) continue;
        char *text = vocab_decode(&cub.vocab, im->caps[0], im->cap_len[0]);
        o.seed = (uint64_t)i;
        GenResult r;
        if (gen_run(&m, text, &o, &r)) { free(text); continue; }
        int S = r.size[r.n_stages - 1], q = S / 4;
        double mc[3] = {0};
        for (int c = 0; c < 3; c++) {
            for (int y = q; y < S - q; y++)
                for (int x = q; x < S - q; x++) mc[c] += r.imgs[r.n_stages - 1][(int64_t)c * S * S + y * S + x];
            mc[c] /= (double)(S - 2 * q) * (S - 2 * q);
            all[c] += mc[c];
        }
        nall++;
        for (int w = 0; w < 10; w++) {
            int has = 0;
            for (int t = 0; t < r.L; t++) has |= !strcmp(r.words[t], COLOURS[w]);
            if (has) { for (int c = 0; c < 3; c++) sum[w][c] += mc[c]; cnt[w]++; }
        }
        gen_result_free(&r);
        free(text);
    }
    printf("mean central colour (R, G, B in [-1, 1]) of %d generated test images: %.3f %.3f %.3f\n", nall, all[0] / nall,
           all[1] / nall, all[2] / nall);
    printf("%-8s %5s %8s %8s %8s   minus the mean: %8s %8s %8s\n", "word", "n", "R", "G", "B", "dR", "dG", "dB");
    for (int w = 0; w < 10; w++)
        if (cnt[w])
            printf("%-8s %5d %8.3f %8.3f %8.3f   %8.3f %8.3f %8.3f\n", COLOURS[w], cnt[w], sum[w][0] / cnt[w], sum[w][1] / cnt[w],
                   sum[w][2] / cnt[w], sum[w][0] / cnt[w] - all[0] / nall, sum[w][1] / cnt[w] - all[1] / nall,
                   sum[w][2] / cnt[w] - all[2] / nall);
    gen_model_free(&m);
    cub_close(&cub);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--model")) return model_mode(argv[2]);
    if (argc < 3) { fprintf(stderr, "usage: colour_check RUN_DIR TEXT_ENCODER.safetensors [G.safetensors]\n       colour_check --model MODEL_DIR\n"); return 2; }
    const char *run = argv[1], *enc = argv[2];
    TrainConfig tc;
    train_config_default(&tc);
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", run);
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "cannot open %s\n", path); return 2; }
    fseek(f, 0, SEEK_END); long n = ftell(f); fseek(f, 0, SEEK_SET);
    char *js = calloc(n + 1, 1);
    if (fread(js, 1, n, f) != (size_t)n) { fprintf(stderr, "cannot read %s\n", path); return 2; }
    fclose(f);
    if (train_config_from_json(&tc, js)) { printf("%s\n", err_msg()); return 1; }
    Cub cub;
    if (cub_open(&cub, "../shared/data/birds")) { printf("%s\n", err_msg()); return 1; }
    ModelConfig mc;
    train_config_to_model(&tc, &mc);
    mc.n_words = cub.vocab.n;
    TextEncoder te; GNet g;
    text_encoder_init(&te, &mc);
    gnet_init(&g, &mc, 1);
    if (load(&te.ps, enc)) { printf("%s\n", err_msg()); return 1; }
    if (argc > 3) snprintf(path, sizeof path, "%s", argv[3]);
    else snprintf(path, sizeof path, "%s/netG.safetensors", run);
    if (load(&g.ps, path)) { printf("%s\n", err_msg()); return 1; }
    te.train = 0; g.train = 1; /* AttnGAN samples with G in train mode */
    const char *const *colours = COLOURS;
    double sum[10][3] = {{0}}; int cnt[10] = {0};
    double all[3] = {0}; int nall = 0;
    Rng rng; rng_init(&rng, 5);
    Tape tp; tape_init(&tp);
    const CubSplit *s = &cub.test;
    int B = 16;
    int idx[16], k = 0;
    for (int i = 0; i <= s->n; i++) {
        if (i < s->n && !s->images[i].present) continue;
        if (i < s->n) idx[k++] = i;
        if (k < B && i < s->n) continue;
        if (k < 2) break;
        tape_reset(&tp);
        tape_no_grad_begin(&tp);
        int64_t *caps = tape_calloc(&tp, (size_t)k * mc.words_num * sizeof(int64_t));
        int lens[16], order[16];
        for (int b = 0; b < k; b++) order[b] = b;
        for (int a = 1; a < k; a++) { int p = order[a], j = a - 1; while (j >= 0 && s->images[idx[order[j]]].cap_len[0] < s->images[idx[p]].cap_len[0]) { order[j+1] = order[j]; j--; } order[j+1] = p; }
        for (int b = 0; b < k; b++) {
            const CubImage *im = &s->images[idx[order[b]]];
            lens[b] = caption_sample(im->caps[0], im->cap_len[0], mc.words_num, &rng, caps + (int64_t)b * mc.words_num);
        }
        TextEncoderOut t = text_encoder_forward(&tp, &te, caps, lens, k, NULL, NULL, &rng);
        uint8_t *mask = gan_word_mask(&tp, caps, k, mc.words_num, t.words_emb->shape[2]);
        GNetOut o = gnet_forward(&tp, &g, t.sent_emb, t.words_emb, mask);
        tape_no_grad_end(&tp);
        for (int b = 0; b < k; b++) {
            double m[3] = {0};
            for (int c = 0; c < 3; c++) {
                for (int y = 16; y < 48; y++) for (int x = 16; x < 48; x++) m[c] += o.imgs[0]->data[((int64_t)b * 3 + c) * 64 * 64 + y * 64 + x];
                m[c] /= 1024;
                all[c] += m[c];
            }
            nall++;
            for (int w = 0; w < 10; w++) {
                int has = 0;
                for (int tkn = 0; tkn < lens[b]; tkn++) has |= !strcmp(cub.vocab.words[caps[b * mc.words_num + tkn]], colours[w]);
                if (has) { for (int c = 0; c < 3; c++) sum[w][c] += m[c]; cnt[w]++; }
            }
        }
        k = 0;
    }
    printf("mean central colour (R, G, B in [-1, 1]) of %d generated test images: %.3f %.3f %.3f\n", nall, all[0]/nall, all[1]/nall, all[2]/nall);
    printf("%-8s %5s %8s %8s %8s   minus the mean: %8s %8s %8s\n", "word", "n", "R", "G", "B", "dR", "dG", "dB");
    for (int w = 0; w < 10; w++) if (cnt[w])
        printf("%-8s %5d %8.3f %8.3f %8.3f   %8.3f %8.3f %8.3f\n", colours[w], cnt[w], sum[w][0]/cnt[w], sum[w][1]/cnt[w], sum[w][2]/cnt[w],
               sum[w][0]/cnt[w] - all[0]/nall, sum[w][1]/cnt[w] - all[1]/nall, sum[w][2]/cnt[w] - all[2]/nall);
    return 0;
}
