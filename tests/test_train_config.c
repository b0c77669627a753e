/* test_train_config.c: the training configuration (src/nn/train_config.c): config.py's
 * defaults, the shipped cfg/ files, KEY=VALUE overrides, YAML syntax and error messages (from
 * generated temporary files), the JSON and YAML-dump round trips and the ModelConfig mapping. */
#include "test.h"
#include "../src/ops/diffaug.h"
#include "../src/io/image.h"
#include "../src/nn/train_config.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

static char g_dir[256];

static const char *cfg_dir(void) { return getenv("ATTNGAN_CFG_DIR") ? getenv("ATTNGAN_CFG_DIR") : "cfg"; }

/* Writes text to a new file in the temporary directory; returns its path (static buffer). */
static const char *write_tmp(const char *name, const char *text) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
    return path;
}

static int feq(double a, double b) { return fabs(a - b) <= 1e-12 * fmax(1.0, fabs(b)); }

/* ------------------------------------------------------------------ defaults */

static void test_defaults(void) {
    TrainConfig c;
    train_config_default(&c);
    EXPECT(!strcmp(c.dataset_name, "birds") && !strcmp(c.config_name, "") && !strcmp(c.data_dir, ""),
           "default names '%s' '%s' '%s'", c.dataset_name, c.config_name, c.data_dir);
    EXPECT(c.gpu_id == 0 && c.cuda == 1 && c.workers == 6 && !strcmp(c.rnn_type, "LSTM") && c.b_validation == 0,
           "default top-level values");
    EXPECT(c.tree.branch_num == 3 && c.tree.base_size == 64, "default TREE");
    EXPECT(c.train.batch_size == 64 && c.train.max_epoch == 600 && c.train.snapshot_interval == 2000,
           "default TRAIN sizes");
    EXPECT(feq(c.train.discriminator_lr, 2e-4) && feq(c.train.generator_lr, 2e-4) && feq(c.train.encoder_lr, 2e-4) &&
               feq(c.train.rnn_grad_clip, 0.25),
           "default TRAIN rates");
    EXPECT(c.train.flag == 1 && !strcmp(c.train.net_e, "") && !strcmp(c.train.net_g, "") && c.train.b_net_d == 1,
           "default TRAIN switches");
    EXPECT(feq(c.train.smooth.gamma1, 5) && feq(c.train.smooth.gamma2, 5) && feq(c.train.smooth.gamma3, 10) &&
               feq(c.train.smooth.lambda, 1) && feq(c.train.smooth.lambda_zsl_adv_and_cls, 1),
           "default TRAIN.SMOOTH");
    EXPECT(c.gan.df_dim == 64 && c.gan.gf_dim == 128 && c.gan.z_dim == 100 && c.gan.condition_dim == 100 &&
               c.gan.r_num == 2 && c.gan.b_attention == 1 && c.gan.b_dcgan == 0,
           "default GAN");
    EXPECT(c.text.captions_per_image == 10 && c.text.embedding_dim == 256 && c.text.words_num == 18 &&
               c.text.word_dim == 300 && feq(c.text.rnn_drop, 0.5),
           "default TEXT");
    EXPECT(feq(c.zsl.lambda, 1) && c.zsl.rdc_dim == 1000 && c.zsl.z_dim == 100 && c.zsl.h_dim == 4096 &&
               c.zsl.num_classes == 200,
           "default ZSL");
    EXPECT(!c.extra.correct_mask && !c.extra.zsl_fix_labels && !c.extra.zsl_train_classes_only && !c.extra.ca_net &&
               feq(c.extra.lr_decay, 0.98) && !c.extra.cache_trunk_features && !strcmp(c.extra.inception, "") &&
               !strcmp(c.extra.inception_weights, "") && !c.extra.only_available && c.extra.seed == 100 &&
               c.extra.log_interval == 50,
           "default EXTRA");
}

/* ------------------------------------------------------------------ shipped files */

static int load_shipped(const char *rel, TrainConfig *c) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", cfg_dir(), rel);
    train_config_default(c);
    int rc = train_config_load(c, path);
    EXPECT(rc == 0, "%s loads: %s", path, rc ? err_msg() : "ok");
    return rc == 0;
}

/* The seed's bird_attn2.yml gives the seed's model (ModelConfig's defaults), but the encoder lr,
 * which only DAMSM/bird.yml sets. */
static void expect_seed_model(const TrainConfig *c, const char *what) {
    ModelConfig got, want;
    train_config_to_model(c, &got);
    model_config_default(&want);
    got.encoder_lr = want.encoder_lr;
    EXPECT(memcmp(&got, &want, sizeof got) == 0, "%s maps to the seed's ModelConfig", what);
}

static void test_bird_attn2(void) {
    TrainConfig c;
    if (!load_shipped("bird_attn2.yml", &c)) return;
    EXPECT(!strcmp(c.config_name, "attn2") && !strcmp(c.dataset_name, "birds") && !strcmp(c.data_dir, "../data/birds"),
           "bird_attn2 names");
    EXPECT(c.gpu_id == 0 && c.workers == 4 && c.tree.branch_num == 3 && c.tree.base_size == 64, "bird_attn2 top/TREE");
    EXPECT(c.train.flag && !strcmp(c.train.net_g, "") && c.train.b_net_d && c.train.batch_size == 20 &&
               c.train.max_epoch == 600 && c.train.snapshot_interval == 2000,
           "bird_attn2 TRAIN");
    EXPECT(feq(c.train.discriminator_lr, 2e-4) && feq(c.train.generator_lr, 2e-4) && feq(c.train.encoder_lr, 2e-4),
           "bird_attn2 lrs");
    EXPECT(!strcmp(c.train.net_e, "../DAMSMencoders/bird/text_encoder200.pth"), "bird_attn2 NET_E '%s'", c.train.net_e);
    EXPECT(feq(c.train.smooth.gamma1, 4) && feq(c.train.smooth.gamma2, 5) && feq(c.train.smooth.gamma3, 10) &&
               feq(c.train.smooth.lambda, 5) && feq(c.train.smooth.lambda_zsl_adv_and_cls, 1),
           "bird_attn2 SMOOTH");
    EXPECT(c.gan.df_dim == 64 && c.gan.gf_dim == 32 && c.gan.z_dim == 100 && c.gan.r_num == 2 &&
               c.gan.condition_dim == 256,
           "bird_attn2 GAN");
    EXPECT(c.text.embedding_dim == 256 && c.text.captions_per_image == 10 && c.zsl.num_classes == 200,
           "bird_attn2 TEXT/ZSL");
    expect_seed_model(&c, "bird_attn2.yml");
    EXPECT(train_config_check_gan(&c) == 0, "bird_attn2 passes the GAN checks: %s", err_msg());
}

static void test_damsm_bird(void) {
    TrainConfig c;
    if (!load_shipped("DAMSM/bird.yml", &c)) return;
    EXPECT(!strcmp(c.config_name, "DAMSM") && !strcmp(c.dataset_name, "birds") && !strcmp(c.data_dir, "../data/birds"),
           "DAMSM names");
    EXPECT(c.gpu_id == 0 && c.workers == 1 && c.tree.branch_num == 1 && c.tree.base_size == 299, "DAMSM top/TREE");
    EXPECT(c.train.flag && !strcmp(c.train.net_e, "") && c.train.batch_size == 48 && c.train.max_epoch == 600 &&
               c.train.snapshot_interval == 50,
           "DAMSM TRAIN");
    EXPECT(feq(c.train.encoder_lr, 0.002) && feq(c.train.rnn_grad_clip, 0.25), "DAMSM lr %g", c.train.encoder_lr);
    EXPECT(feq(c.train.smooth.gamma1, 4) && feq(c.train.smooth.gamma2, 5) && feq(c.train.smooth.gamma3, 10),
           "DAMSM SMOOTH");
    EXPECT(c.text.embedding_dim == 256 && c.text.captions_per_image == 10, "DAMSM TEXT");
    EXPECT(feq(c.zsl.lambda, 1) && c.zsl.num_classes == 200 && c.zsl.h_dim == 4096, "DAMSM ZSL");
    ModelConfig m, seed;
    train_config_to_model(&c, &m);
    model_config_default(&seed);
    EXPECT(m.encoder_lr == seed.encoder_lr && m.gamma1 == seed.gamma1 && m.zsl_lambda == seed.zsl_lambda &&
               m.embedding_dim == seed.embedding_dim && m.zsl_h == seed.zsl_h && m.num_classes == seed.num_classes,
           "DAMSM maps to the seed's encoder values");
    EXPECT(train_config_check_gan(&c) == -1 && strstr(err_msg(), "CONDITION_DIM"), "DAMSM config is no GAN config: %s",
           err_msg());
}

static void test_cpu_configs(void) {
    TrainConfig c;
    if (load_shipped("DAMSM/bird_cpu.yml", &c)) {
        EXPECT(c.extra.cache_trunk_features && !strcmp(c.extra.inception, "keras_nsfwjs") && c.extra.only_available,
               "bird_cpu EXTRA");
        EXPECT(c.train.batch_size == 48 && c.train.snapshot_interval == 1 && c.tree.branch_num == 1 &&
                   c.tree.base_size == 299 && feq(c.train.encoder_lr, 0.002),
               "bird_cpu TRAIN/TREE");
        EXPECT(c.zsl.h_dim == 4096 && c.zsl.num_classes == 200 && !strcmp(c.data_dir, "../shared/data/birds"),
               "bird_cpu ZSL/DATA_DIR");
    }
    if (load_shipped("bird_attn1_cpu.yml", &c)) {
        EXPECT(c.tree.branch_num == 1 && c.tree.base_size == 64 && c.train.batch_size == 16 && c.gan.gf_dim == 32 &&
                   c.gan.df_dim == 32 && c.train.snapshot_interval == 200 && c.extra.only_available,
               "bird_attn1_cpu sizes");
        EXPECT(!strcmp(c.train.net_e, "out/damsm_cpu/text_encoder.safetensors"), "bird_attn1_cpu NET_E '%s'",
               c.train.net_e);
        EXPECT(feq(c.train.smooth.lambda, 5) && c.gan.condition_dim == 256, "bird_attn1_cpu seed values");
        EXPECT(train_config_check_gan(&c) == 0, "bird_attn1_cpu passes the GAN checks: %s", err_msg());
        ModelConfig m;
        train_config_to_model(&c, &m);
        EXPECT(m.branch_num == 1 && m.df_dim == 32 && m.gf_dim == 32, "bird_attn1_cpu model");
    }
}

/* ------------------------------------------------------------------ --set */

static void expect_set_error(TrainConfig *c, const char *assignment, const char *needle) {
    TrainConfig before = *c;
    int rc = train_config_set(c, assignment);
    EXPECT(rc == -1, "--set %s is an error", assignment);
    EXPECT(strstr(err_msg(), needle) != NULL, "--set %s: message '%s' names '%s'", assignment, err_msg(), needle);
    EXPECT(train_config_diff(&before, c) == NULL, "--set %s leaves the config unchanged", assignment);
}

static void test_set(void) {
    TrainConfig c;
    train_config_default(&c);
    EXPECT(train_config_set(&c, "TRAIN.BATCH_SIZE=8") == 0 && c.train.batch_size == 8, "--set batch size");
    EXPECT(train_config_set(&c, "EXTRA.CORRECT_MASK=true") == 0 && c.extra.correct_mask == 1, "--set bool true");
    EXPECT(train_config_set(&c, "CUDA=no") == 0 && c.cuda == 0, "--set bool no");
    EXPECT(train_config_set(&c, " TEXT.RNN_DROP = 0 ") == 0 && c.text.rnn_drop == 0.0, "--set int for a float, blanks");
    EXPECT(train_config_set(&c, "TRAIN.GENERATOR_LR=1e-3") == 0 && c.train.generator_lr == 1e-3, "--set 1e-3");
    EXPECT(train_config_set(&c, "TRAIN.NET_E='out/a b.safetensors'") == 0 &&
               !strcmp(c.train.net_e, "out/a b.safetensors"),
           "--set a quoted string: '%s'", c.train.net_e);
    EXPECT(train_config_set(&c, "TRAIN.NET_G=out/g.safetensors") == 0 && !strcmp(c.train.net_g, "out/g.safetensors"),
           "--set a plain string");
    EXPECT(train_config_set(&c, "TRAIN.NET_G=") == 0 && !strcmp(c.train.net_g, ""), "--set an empty string");
    EXPECT(train_config_set(&c, "EXTRA.INCEPTION=torchvision") == 0 && !strcmp(c.extra.inception, "torchvision"),
           "--set a choice");
    EXPECT(train_config_set(&c, "GPU_ID=-1") == 0 && c.gpu_id == -1, "--set GPU_ID -1");
    expect_set_error(&c, "TRAIN.FOO=1", "TRAIN.FOO");
    expect_set_error(&c, "TRAIN.SMOOTH=1", "TRAIN.SMOOTH is a section");
    expect_set_error(&c, "TRAIN.BATCH_SIZE=abc", "TRAIN.BATCH_SIZE");
    expect_set_error(&c, "TRAIN.BATCH_SIZE=1.5", "expected an integer");
    expect_set_error(&c, "TRAIN.BATCH_SIZE='8'", "expected an integer, got the string");
    expect_set_error(&c, "TRAIN.BATCH_SIZE=0", "must be >= 1");
    expect_set_error(&c, "TRAIN.BATCH_SIZE=99999999999", "expected an integer");
    expect_set_error(&c, "EXTRA.CORRECT_MASK=3", "EXTRA.CORRECT_MASK: expected a boolean");
    expect_set_error(&c, "TRAIN.ENCODER_LR=fast", "expected a number");
    expect_set_error(&c, "TRAIN.ENCODER_LR=nan", "expected a number");
    expect_set_error(&c, "TRAIN.ENCODER_LR=-1", "must be >= 0");
    expect_set_error(&c, "TREE.BRANCH_NUM=4", "between 1 and 3");
    expect_set_error(&c, "TEXT.EMBEDDING_DIM=255", "even");
    expect_set_error(&c, "EXTRA.INCEPTION=imagenet", "'torchvision/keras_nsfwjs/'");
    expect_set_error(&c, "RNN_TYPE=GRU", "RNN_TYPE");
    expect_set_error(&c, "TRAIN.BATCH_SIZE", "KEY=VALUE");
    expect_set_error(&c, "train.batch_size=8", "train.batch_size is not a valid config key");
}

/* ------------------------------------------------------------------ YAML syntax */

static void test_yaml_values(void) {
    const char *path = write_tmp("values.yml",
                                 "# a comment line\n"
                                 "CONFIG_NAME: plain words   # trailing comment\n"
                                 "DATA_DIR: \"../data/with 'quotes'\"\n"
                                 "DATASET_NAME: 'it''s'\n"
                                 "CUDA: false\n"
                                 "B_VALIDATION: yes\n"
                                 "TREE: {BRANCH_NUM: 2, BASE_SIZE: 128}\n"
                                 "GAN:\n"
                                 "  B_ATTENTION: False\n"
                                 "  B_DCGAN: TRUE\n"
                                 "TRAIN:\n"
                                 "  DISCRIMINATOR_LR: 2e-4\n"
                                 "  GENERATOR_LR: 0.0002\n"
                                 "  ENCODER_LR: 1\n"
                                 "  NET_G: ~\n"
                                 "  SMOOTH:\n"
                                 "    GAMMA1: 4\n"
                                 "    LAMBDA: 5.5\n"
                                 "ZSL:\n"
                                 "EXTRA:\n"
                                 "  SEED: 7\n");
    TrainConfig c;
    train_config_default(&c);
    strcpy(c.train.net_g, "old");
    int rc = train_config_load(&c, path);
    EXPECT(rc == 0, "values.yml loads: %s", rc ? err_msg() : "ok");
    EXPECT(!strcmp(c.config_name, "plain words"), "plain string '%s'", c.config_name);
    EXPECT(!strcmp(c.data_dir, "../data/with 'quotes'"), "double-quoted string '%s'", c.data_dir);
    EXPECT(!strcmp(c.dataset_name, "it's"), "single-quoted string '%s'", c.dataset_name);
    EXPECT(c.cuda == 0 && c.b_validation == 1 && c.gan.b_attention == 0 && c.gan.b_dcgan == 1, "booleans");
    EXPECT(c.tree.branch_num == 2 && c.tree.base_size == 128, "flow mapping");
    EXPECT(c.train.discriminator_lr == 2e-4 && c.train.generator_lr == 0.0002 && c.train.encoder_lr == 1.0,
           "floats 2e-4, 0.0002 and int 1");
    EXPECT(!strcmp(c.train.net_g, ""), "~ is an empty string");
    EXPECT(c.train.smooth.gamma1 == 4.0 && c.train.smooth.lambda == 5.5 && c.extra.seed == 7, "nested values");
    EXPECT(c.train.batch_size == 64 && c.train.smooth.gamma2 == 5.0, "keys not in the file keep their values");

    TrainConfig def;
    train_config_default(&c);
    train_config_default(&def);
    rc = train_config_load(&c, write_tmp("empty.yml", "# nothing but a comment\n"));
    EXPECT(rc == 0 && train_config_diff(&c, &def) == NULL, "a file with only comments loads: %s",
           rc ? err_msg() : "ok");
}

/* A file whose loading fails with a message holding every needle; the config is unchanged. */
static void expect_load_error(const char *name, const char *text, const char *n1, const char *n2, const char *n3) {
    const char *path = text ? write_tmp(name, text) : name;
    char saved[512];
    snprintf(saved, sizeof saved, "%s", path);
    TrainConfig c, before;
    train_config_default(&c);
    c.train.batch_size = 3;
    before = c;
    int rc = train_config_load(&c, saved);
    const char *m = err_msg();
    EXPECT(rc == -1, "%s: loading fails", name);
    EXPECT(strstr(m, saved) != NULL, "%s: message '%s' names the file", name, m);
    const char *needles[3] = {n1, n2, n3};
    for (int i = 0; i < 3; i++)
        if (needles[i]) EXPECT(strstr(m, needles[i]) != NULL, "%s: message '%s' has '%s'", name, m, needles[i]);
    EXPECT(train_config_diff(&before, &c) == NULL, "%s: a failed load changes nothing", name);
}

static void test_yaml_errors(void) {
    const char *head = "CONFIG_NAME: 'x'\nTRAIN:\n  BATCH_SIZE: 8\n";
    char text[512];
    snprintf(text, sizeof text, "%s  SMOOTH:\n    GAMMA1: 4.0\n    GAMMA4: 1.0\n", head);
    expect_load_error("unknown.yml", text, "TRAIN.SMOOTH.GAMMA4", ":6:", "not a valid config key");
    expect_load_error("unknown_top.yml", "GPU_ID: 0\nMODEL_DIR: x\n", "MODEL_DIR", ":2:1:", NULL);
    expect_load_error("unknown_section.yml", "FOO:\n  BAR: 1\n", "FOO", ":1:", NULL);
    snprintf(text, sizeof text, "%s  MAX_EPOCH: abc\n", head);
    expect_load_error("int_abc.yml", text, "TRAIN.MAX_EPOCH", "expected an integer", ":4:14:");
    expect_load_error("int_float.yml", "TREE:\n  BASE_SIZE: 1.5\n", "TREE.BASE_SIZE", "expected an integer", ":2:");
    expect_load_error("bool_3.yml", "GAN:\n  B_DCGAN: 3\n", "GAN.B_DCGAN", "expected a boolean", ":2:");
    expect_load_error("float_str.yml", "TRAIN:\n  ENCODER_LR: '0.002'\n", "TRAIN.ENCODER_LR", "got the string", NULL);
    expect_load_error("str_map.yml", "TRAIN:\n  NET_E:\n    PATH: x\n", "TRAIN.NET_E", "got a mapping", ":3:");
    expect_load_error("section_scalar.yml", "TRAIN: 5\n", "TRAIN is a section", ":1:", NULL);
    expect_load_error("list.yml", "TRAIN:\n  BATCH_SIZE: [1, 2]\n", "TRAIN.BATCH_SIZE", "got a list", NULL);
    expect_load_error("top_list.yml", "- 1\n- 2\n", "top level", ":1:1:", NULL);
    expect_load_error("malformed.yml", "TRAIN:\n  BATCH_SIZE: 8\n MAX_EPOCH: 3\n", "invalid YAML", ":3:", NULL);
    expect_load_error("unclosed.yml", "CONFIG_NAME: 'abc\nGPU_ID: 0\n", "invalid YAML",
                      "found unexpected end of stream", ":3:1:");
    expect_load_error("tab.yml", "TRAIN:\n\tBATCH_SIZE: 8\n", "invalid YAML", ":2:", NULL);
    expect_load_error("two_docs.yml", "GPU_ID: 0\n---\nGPU_ID: 1\n", "one YAML document", ":3:", NULL);
    /* found by fuzzing: libyaml is quadratic in the nesting of flow collections (30 KB of '[' took
     * 11.6 s); depth, '[' and '{' count and size are bounded before libyaml sees the file */
    size_t big = 40000;
    char *deep = malloc(2 * 1024 * 1024 + 16);
    memcpy(deep, "TRAIN: ", 7);
    memset(deep + 7, '[', big);
    deep[7 + big] = 0;
    clock_t t0 = clock();
    expect_load_error("deep_flow.yml", deep, "nested deeper than 64 levels", ":1:72:", NULL);
    EXPECT((double)(clock() - t0) / CLOCKS_PER_SEC < 1.0, "a deeply nested file is refused at once: %.2f s",
           (double)(clock() - t0) / CLOCKS_PER_SEC);
    snprintf(deep, 2 * 1024 * 1024, "CONFIG_NAME: '%s'\n", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[");
    snprintf(deep + strlen(deep), 200, "# {{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\nGPU_ID: 1\n");
    const char *path = write_tmp("brackets_in_strings.yml", deep);
    TrainConfig c;
    train_config_default(&c);
    EXPECT(train_config_load(&c, path) == 0 && c.gpu_id == 1 && c.config_name[0] == '[',
           "brackets inside quotes and comments are not nesting: %s", err_msg());
    size_t o = 0;
    for (int i = 0; i < 1100; i++) o += (size_t)sprintf(deep + o, "# [\n");
    snprintf(deep + o, 100, "GPU_ID: 1\n");
    expect_load_error("many_brackets.yml", deep, "more than 1024 '[' and '{'", NULL, NULL);
    memset(deep, '#', 2 * 1024 * 1024);
    deep[2 * 1024 * 1024] = 0;
    expect_load_error("huge.yml", deep, "config file larger than 1048576 bytes", NULL, NULL);
    free(deep);
    /* found by fuzzing: a value that YAML cannot hold (invalid UTF-8, a line break) was accepted,
     * and the YAML dump of the config then did not load */
    expect_load_error("newline.yml", "CONFIG_NAME: \"a\\nb\"\n", "CONFIG_NAME", "byte 1 (0x0a) of the value is not printable", NULL);
    TrainConfig u;
    train_config_default(&u);
    EXPECT(train_config_set(&u, "TRAIN.NET_E=out/\xff.safetensors") == -1 && strstr(err_msg(), "TRAIN.NET_E") &&
               strstr(err_msg(), "byte 4 (0xff)"),
           "--set with invalid UTF-8: %s", err_msg());
    EXPECT(train_config_from_json(&u, "{\"CONFIG_NAME\": \"a\\u0001\"}") == -1 && strstr(err_msg(), "CONFIG_NAME"),
           "JSON with a control character: %s", err_msg());
    EXPECT(train_config_set(&u, "CONFIG_NAME=caf\xc3\xa9\tbird") == 0, "UTF-8 and a tab are fine: %s", err_msg());
    char missing[300];
    snprintf(missing, sizeof missing, "%s/no_such_config.yml", g_dir);
    expect_load_error(missing, NULL, "cannot open config file", "No such file", NULL);
}

/* ------------------------------------------------------------------ JSON and dump round trips */

static void set_all(TrainConfig *c) {
    static const char *sets[] = {
        "CONFIG_NAME=it's \"odd\"\\ name", "DATA_DIR=/tmp/x y", "GPU_ID=-1", "CUDA=False", "WORKERS=0",
        "B_VALIDATION=True", "TREE.BRANCH_NUM=2", "TREE.BASE_SIZE=299", "TRAIN.BATCH_SIZE=7",
        "TRAIN.DISCRIMINATOR_LR=0.1", "TRAIN.GENERATOR_LR=3e-7", "TRAIN.ENCODER_LR=0.0020000000000000001",
        "TRAIN.RNN_GRAD_CLIP=1e-300", "TRAIN.NET_E=out/e.safetensors", "TRAIN.B_NET_D=no",
        "TRAIN.SMOOTH.GAMMA1=4.25", "TRAIN.SMOOTH.LAMBDA_ZSL_ADV_AND_CLS=0.3333333333333333", "GAN.B_DCGAN=yes",
        "GAN.R_NUM=0", "TEXT.RNN_DROP=0.1", "ZSL.H_DIM=1024", "EXTRA.CA_NET=True", "EXTRA.LR_DECAY=1",
        "EXTRA.INCEPTION=keras_nsfwjs", "EXTRA.SEED=2147483647"};
    train_config_default(c);
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        CHECK(train_config_set(c, sets[i]) == 0, "--set %s: %s", sets[i], err_msg());
}

static void test_json(void) {
    TrainConfig a, b, def;
    set_all(&a);
    train_config_default(&def);
    EXPECT(train_config_diff(&a, &def) != NULL, "set_all changes values");
    char *json = train_config_to_json(&a);
    train_config_default(&b);
    int rc = train_config_from_json(&b, json);
    const char *d = train_config_diff(&a, &b);
    EXPECT(rc == 0 && d == NULL, "JSON round trip: rc %d, first difference %s (%s)", rc, d ? d : "none",
           rc ? err_msg() : "ok");
    EXPECT(strstr(json, "\"SMOOTH\"") && strstr(json, "\"LAMBDA_ZSL_ADV_AND_CLS\"") && strstr(json, "\"EXTRA\""),
           "JSON is nested like the YAML");
    free(json);

    train_config_default(&b);
    rc = train_config_from_json(&b, "{\"TRAIN\": {\"BATCH_SIZE\": 5}, \"EXTRA\": {\"CORRECT_MASK\": true}}");
    EXPECT(rc == 0 && b.train.batch_size == 5 && b.extra.correct_mask == 1 && b.train.max_epoch == 600,
           "partial JSON merges");
    TrainConfig before = b;
    EXPECT(train_config_from_json(&b, "{\"TRAIN\": {\"BATCH_SIZ\": 5}}") == -1 && strstr(err_msg(), "TRAIN.BATCH_SIZ"),
           "JSON unknown key: %s", err_msg());
    EXPECT(train_config_from_json(&b, "{\"TRAIN\": {\"BATCH_SIZE\": 2.5}}") == -1 &&
               strstr(err_msg(), "TRAIN.BATCH_SIZE: expected an integer"),
           "JSON wrong type: %s", err_msg());
    EXPECT(train_config_from_json(&b, "{\"GAN\": {\"B_DCGAN\": \"yes\"}}") == -1 && strstr(err_msg(), "GAN.B_DCGAN"),
           "JSON string for a bool: %s", err_msg());
    EXPECT(train_config_from_json(&b, "{\"TRAIN\": 3}") == -1 && strstr(err_msg(), "TRAIN is a section"),
           "JSON section as a number: %s", err_msg());
    EXPECT(train_config_from_json(&b, "[1, 2]") == -1 && train_config_from_json(&b, "{oops") == -1,
           "JSON that is no object");
    /* duplicate keys: cJSON keeps both and reads the first, so the second was silently ignored */
    EXPECT(train_config_from_json(&b, "{\"TRAIN\": {\"BATCH_SIZE\": 4, \"BATCH_SIZE\": 5}}") == -1 &&
               strstr(err_msg(), "duplicate key \"BATCH_SIZE\" (in \"TRAIN\")"),
           "JSON duplicate key: %s", err_msg());
    EXPECT(train_config_from_json(&b, "{\"TRAIN\": {\"BATCH_SIZE\": 1e300}}") == -1 && strstr(err_msg(), "TRAIN.BATCH_SIZE"),
           "JSON huge integer: %s", err_msg());
    EXPECT(train_config_diff(&before, &b) == NULL, "failed JSON merges change nothing");
}

static void test_print(void) {
    TrainConfig a, b;
    set_all(&a);
    char path[300];
    snprintf(path, sizeof path, "%s/dump.yml", g_dir);
    FILE *f = fopen(path, "wb");
    CHECK(f, "cannot write %s", path);
    train_config_print(&a, f);
    fclose(f);
    train_config_default(&b);
    int rc = train_config_load(&b, path);
    const char *d = train_config_diff(&a, &b);
    EXPECT(rc == 0 && d == NULL, "the YAML dump reads back: rc %d (%s), first difference %s", rc,
           rc ? err_msg() : "ok", d ? d : "none");
    train_config_default(&a);
    f = fopen(path, "wb");
    train_config_print(&a, f);
    fclose(f);
    char buf[8192];
    f = fopen(path, "rb");
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    EXPECT(strstr(buf, "TRAIN:\n  BATCH_SIZE: 64\n") && strstr(buf, "  SMOOTH:\n    GAMMA1: 5.0\n") &&
               strstr(buf, "DATASET_NAME: 'birds'\n") && strstr(buf, "  DISCRIMINATOR_LR: 0.0002\n") &&
               strstr(buf, "  CORRECT_MASK: False\n"),
           "dump layout:\n%s", buf);
}

/* ------------------------------------------------------------------ ModelConfig */

static void test_model(void) {
    TrainConfig c;
    set_all(&c);
    static const char *more[] = {"GAN.GF_DIM=48", "GAN.DF_DIM=40", "GAN.CONDITION_DIM=64", "GAN.Z_DIM=12",
                                 "TEXT.EMBEDDING_DIM=64", "TEXT.WORDS_NUM=9", "TEXT.WORD_DIM=30",
                                 "ZSL.RDC_DIM=50", "ZSL.Z_DIM=11", "ZSL.NUM_CLASSES=150", "ZSL.LAMBDA=0.5",
                                 "TRAIN.SMOOTH.GAMMA2=6", "TRAIN.SMOOTH.GAMMA3=11", "TRAIN.SMOOTH.LAMBDA=2",
                                 "EXTRA.CORRECT_MASK=1", "EXTRA.ZSL_FIX_LABELS=on"};
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
        CHECK(train_config_set(&c, more[i]) == 0, "--set %s: %s", more[i], err_msg());
    ModelConfig m, def;
    model_config_default(&def);
    m.n_words = -5;
    train_config_to_model(&c, &m);
    EXPECT(m.gf_dim == 48 && m.df_dim == 40 && m.condition_dim == 64 && m.r_num == 0 && m.z_dim == 12, "GAN sizes");
    EXPECT(m.embedding_dim == 64 && m.words_num == 9 && m.word_dim == 30 && m.rnn_drop == 0.1f, "TEXT sizes");
    EXPECT(m.zsl_rdc == 50 && m.zsl_z == 11 && m.zsl_h == 1024 && m.num_classes == 150 && m.zsl_lambda == 0.5f &&
               m.lambda_zsl == 0.3333333333333333f,
           "ZSL values");
    EXPECT(m.gamma1 == 4.25f && m.gamma2 == 6.0f && m.gamma3 == 11.0f && m.lambda == 2.0f, "smoothing");
    EXPECT(m.d_lr == 0.1f && m.g_lr == 3e-7f && m.encoder_lr == 0.002f && m.rnn_grad_clip == (float)1e-300,
           "rates and clip");
    EXPECT(m.branch_num == 2 && m.correct_mask == 1 && m.zsl_fix_labels == 1 && m.ca_net == 1 &&
               m.g_variant == G_VARIANT_DCGAN,
           "switches");
    EXPECT(m.n_words == def.n_words && m.beta1 == def.beta1 && m.beta2 == def.beta2 && m.ema == def.ema,
           "values the config has not come from model_config_default");
    /* CA_NET lifts the CONDITION_DIM check; BASE_SIZE 299 still fails it */
    EXPECT(train_config_check_gan(&c) == -1 && strstr(err_msg(), "TREE.BASE_SIZE"), "check_gan: %s", err_msg());
    CHECK(train_config_set(&c, "TREE.BASE_SIZE=64") == 0, "set");
    EXPECT(train_config_check_gan(&c) == 0, "check_gan with CA_NET: %s", err_msg());
    /* our options: DiffAugment's policy, the tight-crop padding, ZSL G's noise scale and learning rate */
    train_config_to_model(&c, &m);
    EXPECT(m.diffaug == 0 && train_config_tight_pad(&c) == 0 && m.zsl_z_std == 1.0f && m.zsl_g_lr_scale == 1.0f,
           "defaults: no DiffAugment, no padding, noise N(0, 1), ZSL G at ENCODER_LR (the seed)");
    CHECK(train_config_set(&c, "EXTRA.DIFFAUGMENT=color,cutout") == 0 && train_config_set(&c, "EXTRA.TIGHT_CROP_PAD=edge") == 0 &&
              train_config_set(&c, "ZSL.Z_STD=0.25") == 0 && train_config_set(&c, "ZSL.G_LR_SCALE=0.05") == 0,
          "set our options");
    train_config_to_model(&c, &m);
    EXPECT(m.diffaug == (DIFFAUG_COLOR | DIFFAUG_CUTOUT) && train_config_tight_pad(&c) == IMAGE_PAD_EDGE && m.zsl_z_std == 0.25f &&
               m.zsl_g_lr_scale == 0.05f,
           "our options reach the model config");
    EXPECT(train_config_check_gan(&c) == 0, "check_gan with DiffAugment: %s", err_msg());
    CHECK(train_config_set(&c, "EXTRA.DIFFAUGMENT=color,zoom") == 0, "set");
    EXPECT(train_config_check_gan(&c) == -1 && strstr(err_msg(), "EXTRA.DIFFAUGMENT") && strstr(err_msg(), "'zoom'"),
           "check_gan names a bad DiffAugment policy: %s", err_msg());
    EXPECT(train_config_set(&c, "EXTRA.TIGHT_CROP_PAD=mirror") == -1 && strstr(err_msg(), "TIGHT_CROP_PAD"), "bad padding: %s", err_msg());
    EXPECT(train_config_set(&c, "ZSL.Z_STD=-1") == -1 && strstr(err_msg(), "Z_STD"), "negative noise scale: %s", err_msg());
    EXPECT(c.extra.cache_image_size == 299, "EXTRA.CACHE_IMAGE_SIZE defaults to the trunk's 299");
    EXPECT(train_config_set(&c, "EXTRA.CACHE_IMAGE_SIZE=64") == 0 && c.extra.cache_image_size == 64, "EXTRA.CACHE_IMAGE_SIZE 64");
    EXPECT(train_config_set(&c, "EXTRA.CACHE_IMAGE_SIZE=8") == -1 && strstr(err_msg(), "CACHE_IMAGE_SIZE"), "a 8 px cache: %s", err_msg());
    EXPECT(c.extra.cache_views == 1, "EXTRA.CACHE_VIEWS defaults to 1 (the centre crop alone)");
    EXPECT(train_config_set(&c, "EXTRA.CACHE_VIEWS=4") == 0 && c.extra.cache_views == 4, "EXTRA.CACHE_VIEWS 4");
    {
        int rc0 = train_config_set(&c, "EXTRA.CACHE_VIEWS=0");
        EXPECT(rc0 == -1 && strstr(err_msg(), "CACHE_VIEWS"), "0 views refused: %s", err_msg());
        int rc17 = train_config_set(&c, "EXTRA.CACHE_VIEWS=17");
        EXPECT(rc17 == -1 && strstr(err_msg(), "CACHE_VIEWS"), "17 views refused (at most 16): %s", err_msg());
    }
}

int main(void) {
    test_begin("test_train_config");
    snprintf(g_dir, sizeof g_dir, "%s/attngan_cfg_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    CHECK(mkdtemp(g_dir), "mkdtemp");
    test_defaults();
    test_bird_attn2();
    test_damsm_bird();
    test_cpu_configs();
    test_set();
    test_yaml_values();
    test_yaml_errors();
    test_json();
    test_print();
    test_model();
    char cmd[320];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", g_dir);
    return test_end();
}
