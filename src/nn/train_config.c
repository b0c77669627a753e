/* train_config.c: the training configuration: one table of every key (dotted name, type, field,
 * default, allowed values), and the readers (YAML through libyaml's document API, "KEY=VALUE"
 * overrides, JSON) and writers (YAML dump, JSON) built on it; see train_config.h. */
#include "train_config.h"
#include "../io/image.h"
#include "../io/json_check.h"
#include "../ops/diffaug.h"
#include "../core/error.h"

#include <cjson/cJSON.h>
#include <yaml.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------ the key table */

typedef enum { KT_BOOL, KT_INT, KT_FLOAT, KT_STR } KeyType;

typedef struct Key {
    const char *name;    /* dotted, as nested in the YAML */
    KeyType type;        /* bool and int: int field; float: double; str: char[TRAIN_CONFIG_STR] */
    size_t off;          /* offsetof(TrainConfig, field) */
    const char *def;     /* the default, as the text a YAML file would hold */
    double lo, hi;       /* allowed range of numbers */
    const char *choices; /* strings: the allowed values separated by '|' (NULL: any) */
    int even;            /* ints: must be even */
} Key;

#define OFF(f) offsetof(TrainConfig, f)
#define KB(n, f, d) {n, KT_BOOL, OFF(f), d, 0, 1, NULL, 0}
#define KI(n, f, d, lo) {n, KT_INT, OFF(f), d, lo, INT_MAX, NULL, 0}
#define KR(n, f, d, lo, hi) {n, KT_INT, OFF(f), d, lo, hi, NULL, 0}
#define KF(n, f, d, lo, hi) {n, KT_FLOAT, OFF(f), d, lo, hi, NULL, 0}
#define KS(n, f, d, ch) {n, KT_STR, OFF(f), d, 0, 0, ch, 0}
#define FMAX 1e30

/* Order: config.py's, with each section's keys contiguous (the YAML dump relies on it). */
static const Key KEYS[] = {
    KS("DATASET_NAME", dataset_name, "birds", NULL),
    KS("CONFIG_NAME", config_name, "", NULL),
    KS("DATA_DIR", data_dir, "", NULL),
    KI("GPU_ID", gpu_id, "0", -1),
    KB("CUDA", cuda, "True"),
    KI("WORKERS", workers, "6", 0),
    KS("RNN_TYPE", rnn_type, "LSTM", "LSTM"),
    KB("B_VALIDATION", b_validation, "False"),
    KR("TREE.BRANCH_NUM", tree.branch_num, "3", 1, 3),
    KI("TREE.BASE_SIZE", tree.base_size, "64", 1),
    KI("TRAIN.BATCH_SIZE", train.batch_size, "64", 1),
    KI("TRAIN.MAX_EPOCH", train.max_epoch, "600", 0),
    KI("TRAIN.SNAPSHOT_INTERVAL", train.snapshot_interval, "2000", 1),
    KF("TRAIN.DISCRIMINATOR_LR", train.discriminator_lr, "2e-4", 0, FMAX),
    KF("TRAIN.GENERATOR_LR", train.generator_lr, "2e-4", 0, FMAX),
    KF("TRAIN.ENCODER_LR", train.encoder_lr, "2e-4", 0, FMAX),
    KF("TRAIN.RNN_GRAD_CLIP", train.rnn_grad_clip, "0.25", 0, FMAX),
    KB("TRAIN.FLAG", train.flag, "True"),
    KS("TRAIN.NET_E", train.net_e, "", NULL),
    KS("TRAIN.NET_G", train.net_g, "", NULL),
    KB("TRAIN.B_NET_D", train.b_net_d, "True"),
    KF("TRAIN.SMOOTH.GAMMA1", train.smooth.gamma1, "5.0", 0, FMAX),
    KF("TRAIN.SMOOTH.GAMMA2", train.smooth.gamma2, "5.0", 0, FMAX),
    KF("TRAIN.SMOOTH.GAMMA3", train.smooth.gamma3, "10.0", 0, FMAX),
    KF("TRAIN.SMOOTH.LAMBDA", train.smooth.lambda, "1.0", 0, FMAX),
    KF("TRAIN.SMOOTH.LAMBDA_ZSL_ADV_AND_CLS", train.smooth.lambda_zsl_adv_and_cls, "1.0", 0, FMAX),
    KI("GAN.DF_DIM", gan.df_dim, "64", 1),
    KI("GAN.GF_DIM", gan.gf_dim, "128", 1),
    KI("GAN.Z_DIM", gan.z_dim, "100", 1),
    KI("GAN.CONDITION_DIM", gan.condition_dim, "100", 1),
    KI("GAN.R_NUM", gan.r_num, "2", 0),
    KB("GAN.B_ATTENTION", gan.b_attention, "True"),
    KB("GAN.B_DCGAN", gan.b_dcgan, "False"),
    KI("TEXT.CAPTIONS_PER_IMAGE", text.captions_per_image, "10", 1),
    {"TEXT.EMBEDDING_DIM", KT_INT, OFF(text.embedding_dim), "256", 2, INT_MAX, NULL, 1},
    KI("TEXT.WORDS_NUM", text.words_num, "18", 1),
    KI("TEXT.WORD_DIM", text.word_dim, "300", 1),
    KF("TEXT.RNN_DROP", text.rnn_drop, "0.5", 0, 1),
    KF("ZSL.LAMBDA", zsl.lambda, "1.0", 0, FMAX),
    KI("ZSL.RDC_DIM", zsl.rdc_dim, "1000", 1),
    KI("ZSL.Z_DIM", zsl.z_dim, "100", 1),
    KI("ZSL.H_DIM", zsl.h_dim, "4096", 1),
    KI("ZSL.NUM_CLASSES", zsl.num_classes, "200", 1),
    KF("ZSL.Z_STD", zsl.z_std, "1.0", 0, FMAX),
    KF("ZSL.G_LR_SCALE", zsl.g_lr_scale, "1.0", 0, FMAX),
    KB("ZSL.RESIDUAL", zsl.residual, "False"),
    KS("ZSL.ADV_LOSS", zsl.adv_loss, "bce", "bce|wgan_gp"),
    KI("ZSL.CRITIC_STEPS", zsl.critic_steps, "1", 1),
    KF("ZSL.GP_LAMBDA", zsl.gp_lambda, "10.0", 0, FMAX),
    KF("ZSL.PIVOT_LAMBDA", zsl.pivot_lambda, "0.0", 0, FMAX),
    KB("ZSL.WORD_LEVEL", zsl.word_level, "False"),
    KB("ZSL.GAN_PHASE", zsl.gan_phase, "False"),
    KB("EXTRA.CORRECT_MASK", extra.correct_mask, "False"),
    KB("EXTRA.ZSL_FIX_LABELS", extra.zsl_fix_labels, "False"),
    KB("EXTRA.ZSL_TRAIN_CLASSES_ONLY", extra.zsl_train_classes_only, "False"),
    KB("EXTRA.CA_NET", extra.ca_net, "False"),
    KF("EXTRA.LR_DECAY", extra.lr_decay, "0.98", 0, 1),
    KB("EXTRA.CACHE_TRUNK_FEATURES", extra.cache_trunk_features, "False"),
    KS("EXTRA.INCEPTION", extra.inception, "", "torchvision|keras_nsfwjs|"),
    KS("EXTRA.INCEPTION_WEIGHTS", extra.inception_weights, "", NULL),
    KB("EXTRA.ONLY_AVAILABLE", extra.only_available, "False"),
    KR("EXTRA.CACHE_IMAGE_SIZE", extra.cache_image_size, "299", 16, 1024),
    KR("EXTRA.CACHE_VIEWS", extra.cache_views, "1", 1, 16),
    KS("EXTRA.SENT_CODE", extra.sent_code, "zsl_g", "zsl_g|lstm"),
    KS("EXTRA.IMAGE_CODE", extra.image_code, "pool", "pool|mixed_6e"),
    KS("EXTRA.DIFFAUGMENT", extra.diffaugment, "", NULL),
    KS("EXTRA.TIGHT_CROP_PAD", extra.tight_crop_pad, "none", "none|edge|mean"),
    KI("EXTRA.SEED", extra.seed, "100", 0),
    KI("EXTRA.LOG_INTERVAL", extra.log_interval, "50", 1),
    KR("EXTRA.GRAD_ACCUM", extra.grad_accum, "1", 1, 64),
    KI("EXTRA.KEEP_CHECKPOINTS", extra.keep_checkpoints, "3", 0),
    KB("EXTRA.SYNC_BN", extra.sync_bn, "False"),
};
#define N_KEYS ((int)(sizeof KEYS / sizeof KEYS[0]))
#define KEY_NAME_MAX 128 /* longest dotted name we accept */

static const Key *find_key(const char *name) {
    for (int i = 0; i < N_KEYS; i++)
        if (strcmp(KEYS[i].name, name) == 0) return &KEYS[i];
    return NULL;
}

/* "TRAIN" and "TRAIN.SMOOTH" are sections: prefixes of keys. */
static int is_section(const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < N_KEYS; i++)
        if (strncmp(KEYS[i].name, name, n) == 0 && KEYS[i].name[n] == '.') return 1;
    return 0;
}

static void *field(TrainConfig *c, const Key *k) { return (char *)c + k->off; }
static const void *cfield(const TrainConfig *c, const Key *k) { return (const char *)c + k->off; }

/* ------------------------------------------------------------------ scalar values */

static const char *type_name(KeyType t) {
    switch (t) {
    case KT_BOOL: return "a boolean (True/False)";
    case KT_INT: return "an integer";
    case KT_FLOAT: return "a number";
    default: return "a string";
    }
}

static int parse_bool(const char *s, int *out) {
    static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) { *out = 1; return 0; }
        if (strcasecmp(s, no[i]) == 0) { *out = 0; return 0; }
    }
    return -1;
}

static int parse_int_text(const char *s, long *out) {
    char *end;
    if (!*s || s[0] == ' ' || s[0] == '\t') return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno) return -1;
    *out = v;
    return 0;
}

/* Decimal numbers only (2e-4, 0.0002, 5, .5); no hex, inf or nan. */
static int parse_float(const char *s, double *out) {
    char *end;
    if (!*s || strpbrk(s, "xX \t")) return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* YAML's null: an empty plain value, ~ or null. A string key reads it as ''. */
static int is_null_text(const char *s) {
    return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static int check_range(const Key *k, double v) {
    if (v >= k->lo && v <= k->hi) return 0;
    if (k->hi >= (k->type == KT_INT ? INT_MAX : FMAX)) return err_set("must be >= %g, got %.17g", k->lo, v);
    return err_set("must be between %g and %g, got %.17g", k->lo, k->hi, v);
}

static int check_choice(const Key *k, const char *s) {
    if (!k->choices) return 0;
    size_t n = strlen(s);
    for (const char *p = k->choices;; p++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, s, n) == 0) return 0;
        if (!bar) break;
        p = bar;
    }
    char list[256];
    snprintf(list, sizeof list, "'%s'", k->choices);
    for (char *q = list; *q; q++)
        if (*q == '|') *q = '/';
    return err_set("must be one of %s, got '%.64s'", list, s);
}

static int set_number(TrainConfig *c, const Key *k, const char *s) {
    if (k->type == KT_BOOL) {
        int b;
        if (parse_bool(s, &b)) return err_set("expected %s, got '%.64s'", type_name(k->type), s);
        *(int *)field(c, k) = b;
        return 0;
    }
    if (k->type == KT_INT) {
        long v;
        if (parse_int_text(s, &v)) return err_set("expected %s, got '%.64s'", type_name(k->type), s);
        if (v < INT_MIN || v > INT_MAX) return err_set("expected an integer of at most %d, got '%.64s'", INT_MAX, s);
        if (check_range(k, (double)v)) return -1;
        if (k->even && v % 2) return err_set("must be even (a bidirectional LSTM: half per direction), got %ld", v);
        *(int *)field(c, k) = (int)v;
        return 0;
    }
    double d;
    if (parse_float(s, &d)) return err_set("expected %s, got '%.64s'", type_name(k->type), s);
    if (check_range(k, d)) return -1;
    *(double *)field(c, k) = d;
    return 0;
}

/* Whether s is text a YAML file can hold in a single-quoted scalar and read back unchanged: valid
 * UTF-8 of YAML's printable characters (tab included), no line breaks (they fold into spaces).
 * 0, or -1 with the offending byte's offset in *at. */
static int yaml_text_ok(const char *s, size_t *at) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; p[i];) {
        unsigned c = p[i];
        size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        uint32_t cp = k == 1 ? c : c & (0x7Fu >> k);
        int ok = k != 0;
        for (size_t j = 1; j < k && ok; j++) {
            ok = (p[i + j] & 0xC0) == 0x80;
            cp = cp << 6 | (p[i + j] & 0x3Fu);
        }
        static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
        ok = ok && cp >= least[k] &&
             (cp == 0x9 || (cp >= 0x20 && cp <= 0x7E) || (cp >= 0xA0 && cp <= 0xD7FF) || (cp >= 0xE000 && cp <= 0xFFFD) ||
              (cp >= 0x10000 && cp <= 0x10FFFF));
        if (!ok) {
            *at = i;
            return -1;
        }
        i += k;
    }
    return 0;
}

/* Stores the text of one scalar into key k; quoted: it was a quoted YAML/JSON string (a string
 * key takes any scalar's text; the other types take only unquoted values, as the original's type
 * check rejects a str). The message (on -1) does not name the key: callers add it. */
static int set_value(TrainConfig *c, const Key *k, const char *text, int quoted) {
    if (k->type != KT_STR) {
        if (quoted) return err_set("expected %s, got the string '%.64s'", type_name(k->type), text);
        return set_number(c, k, text);
    }
    const char *s = (!quoted && is_null_text(text)) ? "" : text;
    if (strlen(s) >= TRAIN_CONFIG_STR) return err_set("value longer than %d bytes", TRAIN_CONFIG_STR - 1);
    size_t at;
    if (yaml_text_ok(s, &at))
        return err_set("byte %zu (0x%02x) of the value is not printable UTF-8 text (a config holds no control characters, line breaks "
                       "or invalid UTF-8)", at, (unsigned char)s[at]);
    if (check_choice(k, s)) return -1;
    strcpy((char *)field(c, k), s);
    return 0;
}

/* Sets the key called name, or says why not; the message starts with the key's name. */
static int assign(TrainConfig *c, const char *name, const char *text, int quoted) {
    const Key *k = find_key(name);
    if (!k) {
        if (is_section(name)) return err_set("%s is a section, not a key: give one of its keys", name);
        return err_set("%s is not a valid config key", name);
    }
    if (set_value(c, k, text, quoted)) return err_prefix("%s", name);
    return 0;
}

/* Shortest text that reads back as the same double, always with a '.' or exponent. */
static void format_double(double v, char *buf, size_t n) {
    snprintf(buf, n, "%.15g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, n, "%.17g", v);
    if (!strpbrk(buf, ".e")) strncat(buf, ".0", n - strlen(buf) - 1);
}

/* ------------------------------------------------------------------ defaults, model, checks */

void train_config_default(TrainConfig *c) {
    memset(c, 0, sizeof *c);
    for (int i = 0; i < N_KEYS; i++) {
        int rc = set_value(c, &KEYS[i], KEYS[i].def, KEYS[i].type == KT_STR);
        CHECK(rc == 0, "train_config_default: bad default %s for %s: %s", KEYS[i].def, KEYS[i].name, err_msg());
    }
}

void train_config_to_model(const TrainConfig *c, ModelConfig *m) {
    model_config_default(m);
    m->gf_dim = c->gan.gf_dim;
    m->df_dim = c->gan.df_dim;
    m->condition_dim = c->gan.condition_dim;
    m->r_num = c->gan.r_num;
    m->z_dim = c->gan.z_dim;
    m->embedding_dim = c->text.embedding_dim;
    m->words_num = c->text.words_num;
    m->word_dim = c->text.word_dim;
    m->rnn_drop = (float)c->text.rnn_drop;
    m->zsl_rdc = c->zsl.rdc_dim;
    m->zsl_z = c->zsl.z_dim;
    m->zsl_h = c->zsl.h_dim;
    m->num_classes = c->zsl.num_classes;
    m->zsl_lambda = (float)c->zsl.lambda;
    m->lambda_zsl = (float)c->train.smooth.lambda_zsl_adv_and_cls;
    m->gamma1 = (float)c->train.smooth.gamma1;
    m->gamma2 = (float)c->train.smooth.gamma2;
    m->gamma3 = (float)c->train.smooth.gamma3;
    m->lambda = (float)c->train.smooth.lambda;
    m->g_lr = (float)c->train.generator_lr;
    m->d_lr = (float)c->train.discriminator_lr;
    m->encoder_lr = (float)c->train.encoder_lr;
    m->zsl_z_std = (float)c->zsl.z_std;
    m->zsl_g_lr_scale = (float)c->zsl.g_lr_scale;
    m->image_code_mixed = !strcmp(c->extra.image_code, "mixed_6e");
    m->sent_lstm = !strcmp(c->extra.sent_code, "lstm");
    m->zsl_residual = c->zsl.residual;
    m->zsl_wgan = !strcmp(c->zsl.adv_loss, "wgan_gp");
    m->zsl_critic_steps = c->zsl.critic_steps;
    m->zsl_gp_lambda = (float)c->zsl.gp_lambda;
    m->zsl_pivot_lambda = (float)c->zsl.pivot_lambda;
    m->zsl_word = c->zsl.word_level;
    m->zsl_gan_phase = c->zsl.gan_phase;
    if (diffaug_parse_policy(c->extra.diffaugment, &m->diffaug)) m->diffaug = 0; /* train_config_check_gan reports it */
    m->rnn_grad_clip = (float)c->train.rnn_grad_clip;
    m->branch_num = c->tree.branch_num;
    m->correct_mask = c->extra.correct_mask;
    m->zsl_fix_labels = c->extra.zsl_fix_labels;
    m->ca_net = c->extra.ca_net;
    m->g_variant = c->gan.b_dcgan ? G_VARIANT_DCGAN : G_VARIANT_NET;
}

int train_config_check_gan(const TrainConfig *c) {
    int pol;
    if (diffaug_parse_policy(c->extra.diffaugment, &pol)) return err_prefix("EXTRA.DIFFAUGMENT");
    if (!c->extra.ca_net && c->gan.condition_dim != c->text.embedding_dim)
        return err_set("GAN.CONDITION_DIM (%d) must equal TEXT.EMBEDDING_DIM (%d) when EXTRA.CA_NET is False: "
                       "the seed's generator reads the sentence code itself",
                       c->gan.condition_dim, c->text.embedding_dim);
    if (c->tree.base_size != 64)
        return err_set("TREE.BASE_SIZE is %d: the generator's first stage makes 64 px images, so the GAN needs 64",
                       c->tree.base_size);
    return 0;
}

/* Whether key k has the same value in a and b. */
static int key_same(const TrainConfig *a, const TrainConfig *b, const Key *k) {
    const void *x = cfield(a, k), *y = cfield(b, k);
    return k->type == KT_STR     ? strcmp(x, y) == 0
           : k->type == KT_FLOAT ? *(const double *)x == *(const double *)y
                                 : *(const int *)x == *(const int *)y;
}

const char *train_config_diff(const TrainConfig *a, const TrainConfig *b) {
    for (int i = 0; i < N_KEYS; i++)
        if (!key_same(a, b, &KEYS[i])) return KEYS[i].name;
    return NULL;
}

const char *train_config_encoder_diff(const TrainConfig *a, const TrainConfig *b) {
    static const char *const names[] = {"TEXT.EMBEDDING_DIM", "TEXT.WORD_DIM", "ZSL.RDC_DIM", "ZSL.Z_DIM", "ZSL.H_DIM",
                                        "ZSL.NUM_CLASSES", "ZSL.Z_STD", "ZSL.RESIDUAL", "EXTRA.SENT_CODE", "EXTRA.IMAGE_CODE",
                                        "EXTRA.INCEPTION", "EXTRA.ZSL_TRAIN_CLASSES_ONLY", "ZSL.ADV_LOSS",
                                        "ZSL.WORD_LEVEL"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const Key *k = find_key(names[i]);
        CHECK(k, "train_config_encoder_diff: no key %s", names[i]);
        if (!key_same(a, b, k)) return k->name;
    }
    return NULL;
}

int train_config_value_str(const TrainConfig *c, const char *name, char *buf, size_t len) {
    const Key *k = find_key(name);
    if (!k) return -1;
    const void *x = cfield(c, k);
    if (k->type == KT_STR) snprintf(buf, len, "'%s'", (const char *)x);
    else if (k->type == KT_FLOAT) snprintf(buf, len, "%.17g", *(const double *)x);
    else if (k->type == KT_BOOL) snprintf(buf, len, "%s", *(const int *)x ? "True" : "False");
    else snprintf(buf, len, "%d", *(const int *)x);
    return 0;
}

/* ------------------------------------------------------------------ YAML files */

typedef struct Loader {
    yaml_document_t *doc;
    const char *path;
    TrainConfig *c;
} Loader;

/* err_set with "path:line:column: " from a node's start. */
static int located(const Loader *L, const yaml_node_t *n, const char *fmt, ...) ATTR_PRINTF(3, 4);
static int located(const Loader *L, const yaml_node_t *n, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set("%s:%zu:%zu: %s", L->path, n->start_mark.line + 1, n->start_mark.column + 1, msg);
}

static int merge_mapping(Loader *L, const yaml_node_t *map, const char *prefix);

/* A scalar value: sets the key (or accepts an empty value for a whole section). */
static int merge_scalar(Loader *L, const char *name, const yaml_node_t *kn, const yaml_node_t *vn) {
    const char *text = (const char *)vn->data.scalar.value;
    int quoted = vn->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
    if (!find_key(name)) {
        if (!is_section(name)) return located(L, kn, "%s is not a valid config key", name);
        if (!quoted && is_null_text(text)) return 0; /* "TRAIN:" with every key commented out */
        return located(L, vn, "%s is a section: expected a mapping of its keys", name);
    }
    if (strlen(text) != vn->data.scalar.length) return located(L, vn, "%s: the value contains a NUL byte", name);
    if (assign(L->c, name, text, quoted)) return located(L, vn, "%s", err_msg());
    return 0;
}

static int merge_pair(Loader *L, const char *name, const yaml_node_t *kn, const yaml_node_t *vn) {
    const Key *k = find_key(name);
    if (vn->type == YAML_SCALAR_NODE) return merge_scalar(L, name, kn, vn);
    if (!k && !is_section(name)) return located(L, kn, "%s is not a valid config key", name);
    if (vn->type == YAML_MAPPING_NODE) {
        if (!k) return merge_mapping(L, vn, name);
        return located(L, vn, "%s: expected %s, got a mapping", name, type_name(k->type));
    }
    if (k) return located(L, vn, "%s: expected %s, got a list", name, type_name(k->type));
    return located(L, vn, "%s is a section: expected a mapping of its keys, got a list", name);
}

static int merge_mapping(Loader *L, const yaml_node_t *map, const char *prefix) {
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        const yaml_node_t *kn = yaml_document_get_node(L->doc, p->key);
        const yaml_node_t *vn = yaml_document_get_node(L->doc, p->value);
        if (kn->type != YAML_SCALAR_NODE) return located(L, kn, "a config key must be a name");
        char name[KEY_NAME_MAX];
        const char *key = (const char *)kn->data.scalar.value;
        int len = prefix ? snprintf(name, sizeof name, "%s.%s", prefix, key) : snprintf(name, sizeof name, "%s", key);
        if (len < 0 || len >= (int)sizeof name) return located(L, kn, "%.*s... is not a valid config key", 64, key);
        if (merge_pair(L, name, kn, vn)) return -1;
    }
    return 0;
}

static int merge_root(Loader *L, const yaml_node_t *root) {
    if (root->type == YAML_MAPPING_NODE) return merge_mapping(L, root, NULL);
    if (root->type == YAML_SCALAR_NODE && root->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        is_null_text((const char *)root->data.scalar.value))
        return 0;
    return located(L, root, "the top level must be a mapping of config keys");
}

static int parser_error(const yaml_parser_t *p, const char *path) {
    const yaml_mark_t *m = &p->problem_mark;
    char ctx[160] = "";
    if (p->context)
        snprintf(ctx, sizeof ctx, " (%s, line %zu column %zu)", p->context, p->context_mark.line + 1,
                 p->context_mark.column + 1);
    if (p->error == YAML_READER_ERROR)
        return err_set("%s: invalid YAML: %s at byte %zu", path, p->problem ? p->problem : "unreadable input",
                       p->problem_offset);
    return err_set("%s:%zu:%zu: invalid YAML: %s%s", path, m->line + 1, m->column + 1,
                   p->problem ? p->problem : "syntax error", ctx);
}

/* Loads the first document (merging it) and insists there is no second one. */
static int load_stream(yaml_parser_t *p, const char *path, TrainConfig *c) {
    yaml_document_t doc;
    Loader L = {&doc, path, c};
    if (!yaml_parser_load(p, &doc)) return parser_error(p, path);
    const yaml_node_t *root = yaml_document_get_root_node(&doc);
    int rc = root ? merge_root(&L, root) : 0;
    yaml_document_delete(&doc);
    if (rc || !root) return rc;
    if (!yaml_parser_load(p, &doc)) return parser_error(p, path);
    root = yaml_document_get_root_node(&doc);
    if (root) rc = located(&L, root, "a config file holds one YAML document");
    yaml_document_delete(&doc);
    return rc;
}

/* Bounds on a config file, checked before libyaml sees it: libyaml's scanner is quadratic in the
 * nesting of flow collections ([ and {), so 1 KB of "[[[[..." took seconds and 100 KB minutes. A
 * config has three levels of block mappings and no flow collections at all. */
#define CONFIG_MAX_BYTES (1 << 20)
#define CONFIG_MAX_FLOW_DEPTH 64     /* [ and { open at once, outside comments and quotes */
#define CONFIG_MAX_FLOW_OPENERS 1024 /* [ and { anywhere: a bound that needs no parsing */

static int flow_bounds(const char *buf, size_t len, const char *path) {
    size_t line = 1, col = 1, openers = 0;
    int depth = 0;
    char quote = 0, prev = '\n'; /* prev: the last character outside quotes and comments */
    for (size_t i = 0; i < len; i++, col++) {
        char ch = buf[i];
        if (ch == '\n') line++, col = 0;
        if (quote) { /* inside a quoted scalar: '' and \" escape the quote */
            if (quote == '"' && ch == '\\') i++, col++;
            else if (ch == quote && quote == '\'' && i + 1 < len && buf[i + 1] == '\'') i++, col++;
            else if (ch == quote) quote = 0, prev = ch;
            continue;
        }
        if (ch == '#' && (prev == ' ' || prev == '\t' || prev == '\n')) { /* a comment, to the end of the line */
            while (i + 1 < len && buf[i + 1] != '\n') i++, col++;
            continue;
        }
        /* a quote starts a scalar where a token may start; elsewhere it is part of a plain scalar.
         * This is YAML's rule only nearly: where it errs it can hide brackets from the depth, and
         * the count of every '[' and '{' below bounds the depth whatever happens here */
        if ((ch == '\'' || ch == '"') && strchr(" \t\n[{,:?-", prev)) { quote = ch; continue; }
        if (ch == '[' || ch == '{') {
            if (++depth > CONFIG_MAX_FLOW_DEPTH)
                return err_set("%s:%zu:%zu: flow collections ('[' and '{') nested deeper than %d levels", path, line, col,
                               CONFIG_MAX_FLOW_DEPTH);
        } else if ((ch == ']' || ch == '}') && depth > 0) depth--;
        prev = ch;
    }
    line = 1, col = 1;
    for (size_t i = 0; i < len; i++, col++) { /* every byte, whatever it is part of */
        if (buf[i] == '\n') line++, col = 0;
        if ((buf[i] == '[' || buf[i] == '{') && ++openers > CONFIG_MAX_FLOW_OPENERS)
            return err_set("%s:%zu:%zu: more than %d '[' and '{' characters (a config needs none)", path, line, col,
                           CONFIG_MAX_FLOW_OPENERS);
    }
    return 0;
}

int train_config_load(TrainConfig *c, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("cannot open config file %s: %s", path, strerror(errno));
    char *buf = xmalloc(CONFIG_MAX_BYTES + 1);
    size_t len = fread(buf, 1, CONFIG_MAX_BYTES + 1, f);
    int rerr = ferror(f);
    fclose(f);
    int rc = 0;
    if (rerr) rc = err_set("cannot read config file %s", path);
    else if (len > CONFIG_MAX_BYTES) rc = err_set("%s: config file larger than %d bytes", path, CONFIG_MAX_BYTES);
    else rc = flow_bounds(buf, len, path);
    if (rc) {
        free(buf);
        return rc;
    }
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) FAIL("out of memory initialising the YAML parser");
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    TrainConfig *tmp = xmalloc(sizeof *tmp);
    *tmp = *c;
    rc = load_stream(&p, path, tmp);
    if (rc == 0) *c = *tmp;
    free(tmp);
    yaml_parser_delete(&p);
    free(buf);
    return rc;
}

/* ------------------------------------------------------------------ KEY=VALUE */

/* Copies s[0..n) without surrounding blanks into buf (capacity cap); -1 if it does not fit. */
static int copy_trimmed(char *buf, size_t cap, const char *s, size_t n) {
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r')) n--;
    if (n >= cap) return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    return 0;
}

int train_config_set(TrainConfig *c, const char *assignment) {
    const char *eq = strchr(assignment, '=');
    if (!eq) return err_set("--set %.200s: expected KEY=VALUE (e.g. TRAIN.BATCH_SIZE=8)", assignment);
    char name[KEY_NAME_MAX], *value = xmalloc(TRAIN_CONFIG_STR + 2);
    int rc = 0;
    if (copy_trimmed(name, sizeof name, assignment, (size_t)(eq - assignment)))
        rc = err_set("--set %.200s: key too long", assignment);
    else if (copy_trimmed(value, TRAIN_CONFIG_STR + 2, eq + 1, strlen(eq + 1)))
        rc = err_set("--set %.200s: value longer than %d bytes", assignment, TRAIN_CONFIG_STR - 1);
    if (rc == 0) {
        size_t n = strlen(value);
        int quoted = n >= 2 && (value[0] == '\'' || value[0] == '"') && value[n - 1] == value[0];
        if (quoted) {
            value[n - 1] = 0;
            memmove(value, value + 1, n - 1);
        }
        TrainConfig *tmp = xmalloc(sizeof *tmp);
        *tmp = *c;
        rc = assign(tmp, name, value, quoted);
        if (rc == 0) *c = *tmp;
        else err_prefix("--set %.200s", assignment);
        free(tmp);
    }
    free(value);
    return rc;
}

/* ------------------------------------------------------------------ JSON */

/* The object for key's section inside root, created on the way. */
static cJSON *json_section(cJSON *root, const char *name, const char **leaf) {
    cJSON *obj = root;
    const char *dot;
    while ((dot = strchr(name, '.'))) {
        char part[KEY_NAME_MAX];
        snprintf(part, sizeof part, "%.*s", (int)(dot - name), name);
        cJSON *sub = cJSON_GetObjectItemCaseSensitive(obj, part);
        if (!sub) {
            sub = cJSON_CreateObject();
            cJSON_AddItemToObject(obj, part, sub);
        }
        obj = sub;
        name = dot + 1;
    }
    *leaf = name;
    return obj;
}

static cJSON *json_value(const TrainConfig *c, const Key *k) {
    const void *p = cfield(c, k);
    switch (k->type) {
    case KT_BOOL: return cJSON_CreateBool(*(const int *)p);
    case KT_INT: return cJSON_CreateNumber(*(const int *)p);
    case KT_FLOAT: return cJSON_CreateNumber(*(const double *)p);
    default: return cJSON_CreateString(p);
    }
}

char *train_config_to_json(const TrainConfig *c) {
    cJSON *root = cJSON_CreateObject();
    CHECK(root, "train_config_to_json: out of memory");
    for (int i = 0; i < N_KEYS; i++) {
        const char *leaf;
        cJSON *obj = json_section(root, KEYS[i].name, &leaf);
        cJSON_AddItemToObject(obj, leaf, json_value(c, &KEYS[i]));
    }
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    CHECK(s, "train_config_to_json: out of memory");
    return s;
}

/* One JSON leaf, as the text a YAML file would hold. */
static int json_leaf(TrainConfig *c, const char *name, const cJSON *v) {
    char num[40];
    if (cJSON_IsBool(v)) return assign(c, name, cJSON_IsTrue(v) ? "true" : "false", 0);
    if (cJSON_IsNull(v)) return assign(c, name, "", 0);
    if (cJSON_IsString(v)) return assign(c, name, v->valuestring, 1);
    if (cJSON_IsNumber(v)) {
        snprintf(num, sizeof num, "%.17g", v->valuedouble);
        return assign(c, name, num, 0);
    }
    if (find_key(name) || is_section(name) || cJSON_IsObject(v))
        return err_set("%s: unexpected JSON %s", name, cJSON_IsArray(v) ? "array" : "value");
    return err_set("%s is not a valid config key", name);
}

static int json_merge(TrainConfig *c, const cJSON *obj, const char *prefix) {
    for (const cJSON *it = obj->child; it; it = it->next) {
        char name[KEY_NAME_MAX];
        int len = prefix ? snprintf(name, sizeof name, "%s.%s", prefix, it->string)
                         : snprintf(name, sizeof name, "%s", it->string);
        if (len < 0 || len >= (int)sizeof name) return err_set("%.64s... is not a valid config key", it->string);
        if (!cJSON_IsObject(it)) {
            if (json_leaf(c, name, it)) return -1;
        } else if (is_section(name)) {
            if (json_merge(c, it, name)) return -1;
        } else {
            const Key *k = find_key(name);
            if (k) return err_set("%s: expected %s, got an object", name, type_name(k->type));
            return err_set("%s is not a valid config key", name);
        }
    }
    return 0;
}

int train_config_from_json(TrainConfig *c, const char *json) {
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return err_set("JSON config: not a JSON object");
    }
    if (json_no_duplicate_keys(root)) {
        cJSON_Delete(root);
        return err_prefix("JSON config");
    }
    TrainConfig *tmp = xmalloc(sizeof *tmp);
    *tmp = *c;
    int rc = json_merge(tmp, root, NULL);
    if (rc == 0) *c = *tmp;
    else err_prefix("JSON config");
    free(tmp);
    cJSON_Delete(root);
    return rc;
}

/* ------------------------------------------------------------------ YAML dump */

/* Number of '.'-separated parts of name, and the i-th one in buf. */
static int name_parts(const char *name) {
    int n = 1;
    for (const char *p = name; *p; p++) n += *p == '.';
    return n;
}

static void name_part(const char *name, int i, char *buf, size_t cap) {
    for (; i > 0; i--) name = strchr(name, '.') + 1;
    const char *dot = strchr(name, '.');
    snprintf(buf, cap, "%.*s", dot ? (int)(dot - name) : (int)strlen(name), name);
}

/* Leading sections a and b share. */
static int shared_sections(const char *a, const char *b) {
    int na = name_parts(a) - 1, nb = name_parts(b) - 1, i = 0;
    for (; i < na && i < nb; i++) {
        char x[KEY_NAME_MAX], y[KEY_NAME_MAX];
        name_part(a, i, x, sizeof x);
        name_part(b, i, y, sizeof y);
        if (strcmp(x, y)) break;
    }
    return i;
}

static void print_value(const TrainConfig *c, const Key *k, FILE *f) {
    const void *p = cfield(c, k);
    char num[40];
    switch (k->type) {
    case KT_BOOL: fputs(*(const int *)p ? "True" : "False", f); break;
    case KT_INT: fprintf(f, "%d", *(const int *)p); break;
    case KT_FLOAT:
        format_double(*(const double *)p, num, sizeof num);
        fputs(num, f);
        break;
    default:
        fputc('\'', f);
        for (const char *s = p; *s; s++) {
            if (*s == '\'') fputc('\'', f);
            fputc(*s, f);
        }
        fputc('\'', f);
    }
}

void train_config_print(const TrainConfig *c, FILE *f) {
    const char *prev = "";
    for (int i = 0; i < N_KEYS; i++) {
        const Key *k = &KEYS[i];
        int nsec = name_parts(k->name) - 1;
        char part[KEY_NAME_MAX];
        for (int s = shared_sections(prev, k->name); s < nsec; s++) {
            name_part(k->name, s, part, sizeof part);
            fprintf(f, "%*s%s:\n", 2 * s, "", part);
        }
        name_part(k->name, nsec, part, sizeof part);
        fprintf(f, "%*s%s: ", 2 * nsec, "", part);
        print_value(c, k, f);
        fputc('\n', f);
        prev = k->name;
    }
}

int train_config_tight_pad(const TrainConfig *c) {
    if (!strcmp(c->extra.tight_crop_pad, "edge")) return IMAGE_PAD_EDGE;
    if (!strcmp(c->extra.tight_crop_pad, "mean")) return IMAGE_PAD_MEAN;
    return 0;
}
