/* test_setup.c: a newcomer's set-up (issue 20): where the model, the evaluator, its trunk and the
 * data are found (src/io/locate.h), the words the tokenizer changes and invalid UTF-8
 * (src/data/text_notice.h), AttnGAN's config keys a run refuses, and --force's wipe of a run
 * (src/train/run.h). */
#include "test.h"
#include "../src/io/figure.h"
#include "../src/data/text_notice.h"
#include "../src/io/locate.h"
#include "../src/train/run.h"
#include "../src/nn/train_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_root[256];

static void touch(const char *path) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    for (char *p = dir + 1; *p; p++)
        if (*p == '/') { *p = 0; mkdir(dir, 0755); *p = '/'; }
    FILE *f = fopen(path, "w");
    if (!f) FAIL("cannot write %s", path);
    fputs("{}\n", f);
    fclose(f);
}

static void mkdirs(const char *path) {
    char p[1024];
    snprintf(p, sizeof p, "%s/x", path);
    touch(p);
    unlink(p);
}

static void test_locate_model(void) {
    char prefix[512], bin[600], out[4096], p[1024];
    snprintf(prefix, sizeof prefix, "%s/prefix", g_root);
    snprintf(bin, sizeof bin, "%s/bin", prefix);
    mkdirs(bin);
    locate_set_exe_dir(bin);
    unsetenv("ATTNGAN_MODEL");
    /* nothing anywhere: every place is named, and the flag */
    EXPECT(locate_resource(LOCATE_MODEL, NULL, out, sizeof out) == -1, "no model anywhere is an error");
    const char *m = err_msg();
    EXPECT(strstr(m, "$ATTNGAN_MODEL (unset)") && strstr(m, "/bin/models/bird64") && strstr(m, "/share/attngan/models/bird64") &&
               strstr(m, "models/bird64") && strstr(m, "--model DIR"),
           "the error names the paths tried and --model: %s", m);
    /* the installed share directory */
    snprintf(p, sizeof p, "%s/share/attngan/models/bird64/model.json", prefix);
    touch(p);
    EXPECT(locate_resource(LOCATE_MODEL, NULL, out, sizeof out) == 0 && strstr(out, "/share/attngan/models/bird64"),
           "found in PREFIX/share/attngan: %s (%s)", out, err_msg());
    /* next to the binary comes first */
    snprintf(p, sizeof p, "%s/models/bird64/model.json", bin);
    touch(p);
    EXPECT(locate_resource(LOCATE_MODEL, NULL, out, sizeof out) == 0 && strstr(out, "/bin/models/bird64"), "next to the binary first: %s", out);
    /* the environment before both, the flag before everything */
    char other[600];
    snprintf(other, sizeof other, "%s/other", g_root);
    snprintf(p, sizeof p, "%s/model.json", other);
    touch(p);
    setenv("ATTNGAN_MODEL", other, 1);
    EXPECT(locate_resource(LOCATE_MODEL, NULL, out, sizeof out) == 0 && !strcmp(out, other), "ATTNGAN_MODEL: %s", out);
    EXPECT(locate_resource(LOCATE_MODEL, bin, out, sizeof out) == -1 && strstr(err_msg(), "--model") && strstr(err_msg(), "not a model"),
           "a --model without model.json: %s", err_msg());
    snprintf(p, sizeof p, "%s/none", g_root);
    EXPECT(locate_resource(LOCATE_MODEL, p, out, sizeof out) == -1 && strstr(err_msg(), "no such directory"), "a missing --model: %s", err_msg());
    setenv("ATTNGAN_MODEL", p, 1);
    EXPECT(locate_resource(LOCATE_MODEL, NULL, out, sizeof out) == -1 && strstr(err_msg(), "ATTNGAN_MODEL=") && strstr(err_msg(), "--model"),
           "a wrong ATTNGAN_MODEL is named: %s", err_msg());
    unsetenv("ATTNGAN_MODEL");
    /* the evaluator and its trunk */
    EXPECT(locate_resource(LOCATE_EVALUATOR, NULL, out, sizeof out) == -1 && strstr(err_msg(), "--evaluator DIR") &&
               strstr(err_msg(), "ATTNGAN_EVALUATOR"),
           "no evaluator: %s", err_msg());
    snprintf(p, sizeof p, "%s/share/attngan/models/eval/config.json", prefix);
    touch(p);
    EXPECT(locate_resource(LOCATE_EVALUATOR, NULL, out, sizeof out) == 0 && strstr(out, "share/attngan/models/eval"), "evaluator: %s", out);
    unsetenv("ATTNGAN_INCEPTION");
    EXPECT(locate_trunk(NULL, "../shared/models/inception_v3_nsfwjs_test", out, sizeof out) == -1 && strstr(err_msg(), "--inception PATH") &&
               strstr(err_msg(), "share/attngan/models/inception_v3_nsfwjs_test"),
           "no trunk: %s", err_msg());
    snprintf(p, sizeof p, "%s/share/attngan/models/inception_v3_nsfwjs_test/model.json", prefix);
    touch(p);
    EXPECT(locate_trunk(NULL, "../shared/models/inception_v3_nsfwjs_test", out, sizeof out) == 0 &&
               strstr(out, "share/attngan/models/inception_v3_nsfwjs_test"),
           "the trunk in the share directory: %s (%s)", out, err_msg());
    EXPECT(locate_trunk(p, "x", out, sizeof out) == 0 && !strcmp(out, p), "--inception wins");
    locate_set_exe_dir(NULL);
}

static void test_locate_data(void) {
    char out[4096], src[256], d[600], cfgd[600];
    snprintf(d, sizeof d, "%s/data", g_root);
    snprintf(cfgd, sizeof cfgd, "%s/cfgdata", g_root);
    char birds[700];
    snprintf(birds, sizeof birds, "%s/birds", d);
    mkdirs(birds);
    mkdirs(cfgd);
    unsetenv("ATTNGAN_DATA");
    EXPECT(locate_data(NULL, cfgd, "x.yml", out, sizeof out, src, sizeof src) == 0 && !strcmp(out, cfgd) && strstr(src, "DATA_DIR of x.yml"),
           "the config's DATA_DIR: %s (%s)", out, src);
    setenv("ATTNGAN_DATA", d, 1);
    EXPECT(locate_data(NULL, cfgd, "x.yml", out, sizeof out, src, sizeof src) == 0 && !strcmp(out, birds), "ATTNGAN_DATA before DATA_DIR: %s", out);
    EXPECT(locate_data(cfgd, NULL, NULL, out, sizeof out, src, sizeof src) == 0 && !strcmp(out, cfgd) && !strcmp(src, "--data"), "--data first");
    setenv("ATTNGAN_DATA", "/nonexistent_attngan", 1);
    EXPECT(locate_data(NULL, cfgd, "x.yml", out, sizeof out, NULL, 0) == -1 && strstr(err_msg(), "/nonexistent_attngan/birds") &&
               strstr(err_msg(), "$ATTNGAN_DATA") && strstr(err_msg(), "--data DIR"),
           "a missing data directory names its source and --data: %s", err_msg());
    unsetenv("ATTNGAN_DATA");
    EXPECT(locate_data(NULL, "", NULL, out, sizeof out, src, sizeof src) == 0 || strstr(err_msg(), LOCATE_DEFAULT_DATA),
           "no DATA_DIR: the default %s", LOCATE_DEFAULT_DATA);
    EXPECT(!strcmp(out, LOCATE_DEFAULT_DATA), "the default is %s, got %s", LOCATE_DEFAULT_DATA, out);
}

static void test_text_notice(void) {
    char *c = text_changed_words("Ein Vogel mit weißen Flügeln, naïve café-bird 北京 and a red—blue beak; weißen again");
    EXPECT(c && !strcmp(c, "weißen -> weien, Flügeln -> flgeln, naïve -> nave, café -> caf, 北京 -> (dropped)"), "changed words: %s",
           c ? c : "(none)");
    free(c);
    c = text_changed_words("a plain red bird with a \xe2\x80\x9cquoted\xe2\x80\x9d word and an em\xe2\x80\x94" "dash");
    EXPECT(!c, "punctuation outside ASCII changes no word: %s", c ? c : "");
    free(c);
    EXPECT(text_utf8_invalid_at("weißen") == -1, "valid UTF-8");
    EXPECT(text_utf8_invalid_at("red bird\xff") == 8, "a stray byte at 8");
    EXPECT(text_utf8_invalid_at("a\xc0\xaf") == 1, "an overlong");
    EXPECT(text_utf8_invalid_at("\xed\xa0\x80") == 0, "a surrogate");
}

static void test_original_keys(void) {
    TrainConfig c;
    train_config_default(&c);
    EXPECT(run_check_original_keys(&c, "train") == 0 && run_check_original_keys(&c, "pretrain") == 0, "the defaults pass: %s", err_msg());
    EXPECT(train_config_set(&c, "TRAIN.FLAG=False") == 0, "set FLAG");
    EXPECT(run_check_original_keys(&c, "train") == -1 && strstr(err_msg(), "TRAIN.FLAG is False") && strstr(err_msg(), "attngan sample"),
           "FLAG False: %s", err_msg());
    EXPECT(run_check_original_keys(&c, "pretrain") == -1 && strstr(err_msg(), "TRAIN.FLAG"), "FLAG False in pretrain: %s", err_msg());
    train_config_default(&c);
    EXPECT(train_config_set(&c, "TRAIN.NET_G=g.safetensors") == 0, "set NET_G");
    EXPECT(run_check_original_keys(&c, "train") == -1 && strstr(err_msg(), "B_NET_D") && strstr(err_msg(), "--resume"), "NET_G with B_NET_D: %s",
           err_msg());
    EXPECT(train_config_set(&c, "TRAIN.B_NET_D=False") == 0 && run_check_original_keys(&c, "train") == 0, "NET_G with B_NET_D False runs");
    train_config_default(&c);
    EXPECT(train_config_set(&c, "GAN.B_ATTENTION=False") == 0 && run_check_original_keys(&c, "train") == -1 &&
               strstr(err_msg(), "B_ATTENTION"),
           "B_ATTENTION False: %s", err_msg());
    train_config_default(&c);
    EXPECT(train_config_set(&c, "DATASET_NAME=coco") == 0 && run_check_original_keys(&c, "pretrain") == -1 && strstr(err_msg(), "coco"),
           "DATASET_NAME coco: %s", err_msg());
    train_config_default(&c);
    EXPECT(train_config_set(&c, "TEXT.CAPTIONS_PER_IMAGE=5") == 0 && run_check_original_keys(&c, "train") == -1 &&
               strstr(err_msg(), "CAPTIONS_PER_IMAGE"),
           "CAPTIONS_PER_IMAGE 5: %s", err_msg());
}

static void test_wipe(void) {
    char run[600], p[1024];
    snprintf(run, sizeof run, "%s/run", g_root);
    mkdirs(run);
    EXPECT(!run_dir_has_run(run), "an empty directory holds no run");
    const char *files[] = {"checkpoints/step_2/state.json", "checkpoints/latest", "losses.csv", "tensorboard/events.1", "samples/step_2.png",
                           "encoders/text_encoder.safetensors", "netG.safetensors", "config.json", "cache/train_trunk.safetensors",
                           "notes.txt"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", run, files[i]);
        touch(p);
    }
    EXPECT(run_dir_has_run(run), "a run is seen");
    EXPECT(run_dir_wipe(run) == 0, "wipe: %s", err_msg());
    EXPECT(!run_dir_has_run(run), "no run after the wipe");
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", run, files[i]);
        int keep = !strncmp(files[i], "cache/", 6) || !strcmp(files[i], "notes.txt");
        EXPECT((access(p, F_OK) == 0) == keep, "%s %s", files[i], keep ? "kept" : "removed");
    }
}

/* the examples figure: one row per caption, no empty cells */
static void test_captioned(void) {
    float img[3 * 16 * 16];
    for (int i = 0; i < 3 * 16 * 16; i++) img[i] = (float)(i % 7) / 7.0f - 0.5f;
    const float *imgs[3] = {img, img, img};
    const char *caps[3] = {"a red bird", "a long caption that has to wrap over more than one line of text", "x"};
    Image out;
    EXPECT(figure_captioned(imgs, caps, 3, 16, 100, &out) == 0, "figure_captioned: %s", err_msg());
    EXPECT(out.h == 3 * 18 + 2 && out.w >= 2 + 16 + 8 + 100 + 2, "3 rows of 16 px: %dx%d", out.w, out.h);
    image_free(&out);
    EXPECT(figure_captioned(imgs, caps, 0, 16, 100, &out) == -1, "no images is an error");
}

int main(void) {
    test_begin("test_setup");
    snprintf(g_root, sizeof g_root, "/tmp/test_setup.XXXXXX");
    if (!mkdtemp(g_root)) FAIL("mkdtemp failed");
    /* away from the repository's models/ (the working directory is the last place searched) */
    char cwd[1024];
    if (!getcwd(cwd, sizeof cwd) || chdir(g_root)) FAIL("chdir %s failed", g_root);
    test_locate_model();
    test_locate_data();
    test_text_notice();
    test_original_keys();
    test_wipe();
    test_captioned();
    if (chdir(cwd)) FAIL("chdir back failed");
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", g_root);
    return test_end();
}
