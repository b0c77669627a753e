/* keras_inception.c: the TensorFlow.js layers-model reader behind keras_inception_load (see
 * keras_inception.h).
 *
 * model.json holds {"modelTopology": {... "model_config": {"config": {"layers": [...]}}},
 * "weightsManifest": [{"paths": [shard, ...], "weights": [spec, ...]}, ...]}. The shards of a
 * group are concatenated in order and its tensors packed back to back in manifest order, each
 * spec {"name", "shape", "dtype": "float32", optional "quantization": {"dtype": "uint8" |
 * "uint16", "min", "scale"}}; a quantised value is (float)(q * scale + min) computed in double
 * (what tfjs' io.decodeWeights and ../shared/reference/keras_inception.py do), little-endian.
 *
 * Loading runs in two passes: the first reads and validates everything (the manifest, the byte
 * sizes, the conv / BN layer configs, each tensor's shape against its torchvision twin), the
 * second dequantises into the encoder's tensors, so a failed load leaves the encoder as it was.
 */
#include "keras_inception.h"
#include "../io/files.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the largest model.json or weight shard read (the whole Inception-v3 is about 95 MB) */
#define KERAS_MAX_FILE ((size_t)1 << 30)

#define KI_MAX_DIMS 8
#define KI_MAX_ELEMS ((int64_t)1 << 31)   /* per tensor */
#define KI_BN_EPS 1e-3                     /* image_encoder.c's TRUNK_BN_EPS */
#define KI_MAX_UNITS 128                   /* torchvision's trunk has 94 BasicConv2d */

typedef enum { KQ_NONE, KQ_U8, KQ_U16 } KQuant;

/* One manifest tensor: its spec and where its bytes are. */
typedef struct KWeight {
    const char *name;                 /* into the cJSON tree */
    int ndim;
    int64_t shape[KI_MAX_DIMS];
    int64_t n;
    KQuant quant;
    double min, scale;
    const unsigned char *raw;         /* into the group's bytes */
} KWeight;

typedef struct KModel {
    char *json_path;
    cJSON *root;
    const cJSON *layers;              /* modelTopology.model_config.config.layers */
    KWeight *w;
    int n, cap;
    unsigned char **bufs;             /* one buffer per manifest group */
    char **labels;                    /* shard label per group */
    int n_groups;
} KModel;

/* One torchvision BasicConv2d and its Keras twin. */
typedef struct Unit {
    const char *prefix;               /* e.g. "Mixed_6e.branch7x7_2" (into the ParamSet) */
    ParamEntry *conv, *bn_w, *bn_b, *bn_mean, *bn_var, *bn_nbt;
    const KWeight *kernel, *gamma, *beta, *mean, *var;   /* gamma / beta may be NULL */
} Unit;

/* ---------------------------------------------------------------- files */

static char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = xmalloc(a + b + 2);
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static void model_free(KModel *m) {
    for (int g = 0; g < m->n_groups; g++) {
        free(m->bufs[g]);
        free(m->labels[g]);
    }
    free(m->bufs);
    free(m->labels);
    free(m->w);
    cJSON_Delete(m->root);
    free(m->json_path);
    memset(m, 0, sizeof *m);
}

static const cJSON *obj_get(const cJSON *o, const char *key) {
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

static int parse_json(KModel *m, const char *dir) {
    unsigned char *text;
    size_t len;
    m->json_path = path_join(dir, "model.json");
    if (!(text = read_file_bytes(m->json_path, KERAS_MAX_FILE, &len))) return -1;
    m->root = cJSON_ParseWithLength((const char *)text, len);
    if (!m->root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at ? (long)(at - (const char *)text) : -1;
        free(text);
        return err_set("%s: not valid JSON (near byte %ld)", m->json_path, off);
    }
    free(text);
    const cJSON *cfg = obj_get(obj_get(obj_get(m->root, "modelTopology"), "model_config"), "config");
    m->layers = obj_get(cfg, "layers");
    if (!cJSON_IsArray(m->layers))
        return err_set("%s: modelTopology.model_config.config.layers missing (not a Keras layers model)", m->json_path);
    return 0;
}

/* ---------------------------------------------------------------- the manifest */

static int parse_shape(const KModel *m, const cJSON *spec, KWeight *w) {
    const cJSON *shape = obj_get(spec, "shape");
    if (!cJSON_IsArray(shape)) return err_set("%s: weight %s: \"shape\" is not an array", m->json_path, w->name);
    w->ndim = cJSON_GetArraySize(shape);
    if (w->ndim > KI_MAX_DIMS) return err_set("%s: weight %s: %d dimensions", m->json_path, w->name, w->ndim);
    w->n = 1;
    int d = 0;
    for (const cJSON *v = shape->child; v; v = v->next, d++) {
        double x = cJSON_IsNumber(v) ? v->valuedouble : -1;
        if (x < 1 || x != floor(x) || x > (double)KI_MAX_ELEMS)
            return err_set("%s: weight %s: \"shape\" entry at position %d is not a positive integer", m->json_path,
                           w->name, d);
        w->shape[d] = (int64_t)x;
        w->n *= w->shape[d];
        if (w->n > KI_MAX_ELEMS) return err_set("%s: weight %s: too many elements", m->json_path, w->name);
    }
    return 0;
}

static int parse_quant(const KModel *m, const cJSON *spec, KWeight *w) {
    const cJSON *q = obj_get(spec, "quantization");
    w->quant = KQ_NONE;
    if (!q || cJSON_IsNull(q)) return 0;
    const cJSON *dt = obj_get(q, "dtype"), *mn = obj_get(q, "min"), *sc = obj_get(q, "scale");
    const char *d = cJSON_IsString(dt) ? dt->valuestring : "";
    if (!strcmp(d, "uint8")) w->quant = KQ_U8;
    else if (!strcmp(d, "uint16")) w->quant = KQ_U16;
    else return err_set("%s: weight %s: unsupported quantization dtype \"%s\" (uint8 or uint16)", m->json_path, w->name, d);
    if (!cJSON_IsNumber(mn) || !cJSON_IsNumber(sc) || !isfinite(mn->valuedouble) || !isfinite(sc->valuedouble) ||
        sc->valuedouble < 0)
        return err_set("%s: weight %s: quantization needs finite \"min\" and \"scale\" >= 0", m->json_path, w->name);
    w->min = mn->valuedouble;
    w->scale = sc->valuedouble;
    return 0;
}

static size_t item_size(KQuant q) { return q == KQ_U8 ? 1 : q == KQ_U16 ? 2 : 4; }

/* Parses one spec into w (raw left NULL). */
static int parse_spec(const KModel *m, const cJSON *spec, int idx, KWeight *w) {
    const cJSON *name = obj_get(spec, "name"), *dtype = obj_get(spec, "dtype");
    if (!cJSON_IsString(name) || !name->valuestring[0])
        return err_set("%s: weightsManifest entry %d has no \"name\"", m->json_path, idx);
    w->name = name->valuestring;
    if (!cJSON_IsString(dtype) || strcmp(dtype->valuestring, "float32"))
        return err_set("%s: weight %s: dtype must be \"float32\"", m->json_path, w->name);
    if (parse_shape(m, spec, w)) return -1;
    return parse_quant(m, spec, w);
}

static const KWeight *find_weight(const KModel *m, const char *name) {
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->w[i].name, name)) return &m->w[i];
    return NULL;
}

/* Appends path to the group's label ("dir/weights.bin", or "dir/a + dir/b + ..."). */
static void label_add(char **label, const char *path) {
    size_t a = *label ? strlen(*label) : 0, b = strlen(path);
    *label = xrealloc(*label, a + b + 4);
    if (a) memcpy(*label + a, " + ", 3), a += 3;
    memcpy(*label + a, path, b + 1);
}

/* Concatenates the group's shards into m->bufs[g] and names them in m->labels[g]. */
static int read_shards(KModel *m, const char *dir, const cJSON *paths, int g, size_t *len) {
    if (!cJSON_IsArray(paths) || cJSON_GetArraySize(paths) < 1)
        return err_set("%s: weightsManifest group %d: \"paths\" must be a non-empty array", m->json_path, g);
    size_t total = 0;
    unsigned char *all = xmalloc(1);
    for (const cJSON *p = paths->child; p; p = p->next) {
        const char *s = cJSON_IsString(p) ? p->valuestring : NULL;
        if (!s || !s[0] || s[0] == '/' || strstr(s, "..")) {
            free(all);
            return err_set("%s: weightsManifest group %d: a shard path is not a relative file name", m->json_path, g);
        }
        char *path = path_join(dir, s);
        unsigned char *b;
        size_t n;
        if (!(b = read_file_bytes(path, KERAS_MAX_FILE, &n))) {
            free(path);
            free(all);
            return -1;
        }
        label_add(&m->labels[g], path);
        free(path);
        all = xrealloc(all, total + n + 1);
        memcpy(all + total, b, n);
        total += n;
        free(b);
    }
    m->bufs[g] = all;
    *len = total;
    return 0;
}

/* Parses group g's specs into m->w (from index first on); returns their total byte size in *total. */
static int parse_group_specs(KModel *m, const cJSON *specs, int g, size_t *total) {
    if (!cJSON_IsArray(specs)) return err_set("%s: weightsManifest group %d: \"weights\" is not an array", m->json_path, g);
    int idx = 0;
    *total = 0;
    for (const cJSON *spec = specs->child; spec; spec = spec->next, idx++) {
        KWeight w = {0};
        if (parse_spec(m, spec, idx, &w)) return -1;
        if (find_weight(m, w.name)) return err_set("%s: weight %s appears twice in the manifest", m->json_path, w.name);
        *total += (size_t)w.n * item_size(w.quant);
        if (m->n == m->cap) m->w = xrealloc(m->w, (size_t)(m->cap = m->cap ? 2 * m->cap : 256) * sizeof *m->w);
        m->w[m->n++] = w;
    }
    return 0;
}

/* Reads group g: its specs, then its shards, whose size must be what the specs describe; the
 * first weight that does not fit is named. */
static int read_group(KModel *m, const char *dir, const cJSON *group, int g) {
    int first = m->n;
    size_t len = 0, pos = 0, total = 0;
    if (parse_group_specs(m, obj_get(group, "weights"), g, &total)) return -1;
    if (read_shards(m, dir, obj_get(group, "paths"), g, &len)) return -1;
    for (int i = first; i < m->n; i++) {
        KWeight *w = &m->w[i];
        size_t bytes = (size_t)w->n * item_size(w->quant);
        if (bytes > len - pos)
            return err_set("%s: truncated: weight %s needs bytes [%zu, %zu) but the file has %zu (the manifest in %s "
                           "describes %zu)", m->labels[g], w->name, pos, pos + bytes, len, m->json_path, total);
        w->raw = m->bufs[g] + pos;
        pos += bytes;
    }
    if (pos != len)
        return err_set("%s: %zu bytes, but the manifest in %s describes %zu", m->labels[g], len, m->json_path, pos);
    return 0;
}

static int read_manifest(KModel *m, const char *dir) {
    const cJSON *groups = obj_get(m->root, "weightsManifest");
    if (!cJSON_IsArray(groups) || cJSON_GetArraySize(groups) < 1)
        return err_set("%s: \"weightsManifest\" missing or empty", m->json_path);
    int ng = cJSON_GetArraySize(groups), g = 0;
    m->bufs = xcalloc((size_t)ng, sizeof *m->bufs);
    m->labels = xcalloc((size_t)ng, sizeof *m->labels);
    for (const cJSON *grp = groups->child; grp; grp = grp->next, g++) {
        m->n_groups = g + 1;          /* model_free frees what the group got */
        if (read_group(m, dir, grp, g)) return -1;
    }
    return 0;
}

/* The value at flat index i (Keras layout), as tfjs decodes it. */
static float dequant(const KWeight *w, int64_t i) {
    const unsigned char *p = w->raw + (size_t)i * item_size(w->quant);
    if (w->quant == KQ_U8) return (float)((double)p[0] * w->scale + w->min);
    if (w->quant == KQ_U16) return (float)((double)(p[0] | p[1] << 8) * w->scale + w->min);
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---------------------------------------------------------------- the topology */

static const cJSON *find_layer(const KModel *m, const char *name) {
    for (const cJSON *l = m->layers->child; l; l = l->next) {
        const cJSON *n = obj_get(l, "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name)) return l;
    }
    return NULL;
}

/* The layer's config if it exists with class_name cls, else an error naming both. */
static const cJSON *layer_config(const KModel *m, const char *name, const char *cls, const char *twin) {
    const cJSON *l = find_layer(m, name);
    const cJSON *c = obj_get(l, "class_name");
    if (!l || !cJSON_IsString(c) || strcmp(c->valuestring, cls)) {
        err_set("%s: layer %s (twin of %s) missing or not a %s", m->json_path, name, twin, cls);
        return NULL;
    }
    return obj_get(l, "config");
}

/* Conv2D: no bias (BasicConv2d has none). */
static int check_conv_layer(const KModel *m, const char *name, const char *twin) {
    const cJSON *cfg = layer_config(m, name, "Conv2D", twin);
    if (!cfg) return -1;
    if (!cJSON_IsFalse(obj_get(cfg, "use_bias")))
        return err_set("%s: layer %s has a bias; its torchvision twin %s.conv has none", m->json_path, name, twin);
    return 0;
}

/* BatchNormalization: epsilon 1e-3; *scale / *center say whether gamma / beta exist. */
static int check_bn_layer(const KModel *m, const char *name, const char *twin, int *scale, int *center) {
    const cJSON *cfg = layer_config(m, name, "BatchNormalization", twin);
    if (!cfg) return -1;
    const cJSON *eps = obj_get(cfg, "epsilon");
    if (!cJSON_IsNumber(eps) || fabs(eps->valuedouble - KI_BN_EPS) > 1e-9)
        return err_set("%s: layer %s: epsilon must be 0.001 (that of its twin %s.bn)", m->json_path, name, twin);
    *scale = cJSON_IsTrue(obj_get(cfg, "scale"));
    *center = !cJSON_IsFalse(obj_get(cfg, "center"));
    return 0;
}

/* ---------------------------------------------------------------- the mapping */

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static ParamEntry *unit_entry(ImageEncoder *ie, const char *prefix, const char *suffix) {
    char name[NAME_MAX_LEN];
    ParamEntry *e = paramset_find(&ie->ps, pname(name, "%s.%s", prefix, suffix));
    CHECK(e != NULL, "keras_inception: the encoder lacks %s", name);
    return e;
}

/* The trunk's BasicConv2d units in torchvision module (= state_dict) order; returns the count. */
static int collect_units(ImageEncoder *ie, Unit *u, char (*prefixes)[NAME_MAX_LEN]) {
    int n = 0;
    for (int i = 0; i < ie->ps.n; i++) {
        const char *key = ie->ps.entries[i]->name;
        if (!image_encoder_is_trunk_key(key) || !ends_with(key, ".conv.weight")) continue;
        CHECK(n < KI_MAX_UNITS, "keras_inception: more than %d trunk convolutions", KI_MAX_UNITS);
        snprintf(prefixes[n], NAME_MAX_LEN, "%.*s", (int)(strlen(key) - strlen(".conv.weight")), key);
        Unit *x = &u[n];
        memset(x, 0, sizeof *x);
        x->prefix = prefixes[n];
        x->conv = ie->ps.entries[i];
        x->bn_w = unit_entry(ie, x->prefix, "bn.weight");
        x->bn_b = unit_entry(ie, x->prefix, "bn.bias");
        x->bn_mean = unit_entry(ie, x->prefix, "bn.running_mean");
        x->bn_var = unit_entry(ie, x->prefix, "bn.running_var");
        x->bn_nbt = unit_entry(ie, x->prefix, "bn.num_batches_tracked");
        n++;
    }
    return n;
}

static void shape_str(char *buf, size_t cap, const int64_t *shape, int ndim) {
    int at = snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && at < (int)cap; d++)
        at += snprintf(buf + at, cap - at, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (at < (int)cap) snprintf(buf + at, cap - at, "]");
}

/* The Keras weight `<layer>/<what>`, required to have shape `want` (ndim dims). */
static const KWeight *twin_weight(const KModel *m, const char *layer, const char *what, const int64_t *want, int ndim,
                                  const char *twin) {
    char name[NAME_MAX_LEN], got[96], exp[96];
    const KWeight *w = find_weight(m, pname(name, "%s/%s", layer, what));
    if (!w) {
        err_set("%s: weight %s (twin of %s) missing from the manifest", m->json_path, name, twin);
        return NULL;
    }
    int same = w->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = w->shape[d] == want[d];
    if (!same) {
        shape_str(got, sizeof got, w->shape, w->ndim);
        shape_str(exp, sizeof exp, want, ndim);
        err_set("%s: weight %s has shape %s, but its torchvision twin %s needs %s", m->json_path, name, got, twin, exp);
        return NULL;
    }
    return w;
}

/* Finds and checks unit k's (1-based Keras number) conv2d_k / batch_normalization_k. */
static int plan_unit(const KModel *m, Unit *u, int k) {
    char conv[32], bn[32], twin[NAME_MAX_LEN];
    snprintf(conv, sizeof conv, "conv2d_%d", k);
    snprintf(bn, sizeof bn, "batch_normalization_%d", k);
    const int *s = u->conv->t.shape;                          /* (O, C, KH, KW) */
    int64_t hwio[4] = {s[2], s[3], s[1], s[0]}, ch[1] = {s[0]};
    if (check_conv_layer(m, conv, u->prefix)) return -1;
    u->kernel = twin_weight(m, conv, "kernel", hwio, 4, pname(twin, "%s.conv.weight", u->prefix));
    if (!u->kernel) return -1;
    int scale = 0, center = 1;
    if (check_bn_layer(m, bn, u->prefix, &scale, &center)) return -1;
    if (scale && !(u->gamma = twin_weight(m, bn, "gamma", ch, 1, pname(twin, "%s.bn.weight", u->prefix)))) return -1;
    if (center && !(u->beta = twin_weight(m, bn, "beta", ch, 1, pname(twin, "%s.bn.bias", u->prefix)))) return -1;
    u->mean = twin_weight(m, bn, "moving_mean", ch, 1, pname(twin, "%s.bn.running_mean", u->prefix));
    if (!u->mean) return -1;
    u->var = twin_weight(m, bn, "moving_variance", ch, 1, pname(twin, "%s.bn.running_var", u->prefix));
    return u->var ? 0 : -1;
}

/* Any conv2d_N / batch_normalization_N weight with N beyond the trunk has no twin. */
static int check_no_extra(const KModel *m, int n_units) {
    for (int i = 0; i < m->n; i++) {
        int k = 0, used = 0;
        if ((sscanf(m->w[i].name, "conv2d_%d/%n", &k, &used) == 1 && used) ||
            (sscanf(m->w[i].name, "batch_normalization_%d/%n", &k, &used) == 1 && used))
            if (k < 1 || k > n_units)
                return err_set("%s: weight %s has no twin in torchvision's trunk of %d BasicConv2d", m->json_path,
                               m->w[i].name, n_units);
    }
    return 0;
}

/* ---------------------------------------------------------------- filling */

static void fill_vector(ParamEntry *e, const KWeight *w, float dflt) {
    for (int64_t i = 0; i < e->t.n; i++) e->t.data[i] = w ? dequant(w, i) : dflt;
    e->loaded = 1;
}

/* conv (O, C, KH, KW) from the Keras kernel (KH, KW, C, O) */
static void fill_kernel(ParamEntry *e, const KWeight *w) {
    const int *s = e->t.shape;
    int O = s[0], C = s[1], KH = s[2], KW = s[3];
    float *dst = e->t.data;
    for (int o = 0; o < O; o++)
        for (int c = 0; c < C; c++)
            for (int h = 0; h < KH; h++)
                for (int x = 0; x < KW; x++)
                    *dst++ = dequant(w, (((int64_t)h * KW + x) * C + c) * O + o);
    e->loaded = 1;
}

static void fill_unit(const Unit *u) {
    fill_kernel(u->conv, u->kernel);
    fill_vector(u->bn_w, u->gamma, 1.0f);
    fill_vector(u->bn_b, u->beta, 0.0f);
    fill_vector(u->bn_mean, u->mean, 0.0f);
    fill_vector(u->bn_var, u->var, 1.0f);
    u->bn_nbt->ival = 0;
    u->bn_nbt->loaded = 1;
}

/* ---------------------------------------------------------------- entry point */

static int plan_all(ImageEncoder *ie, const KModel *m, Unit *units, int *n_units, char (*prefixes)[NAME_MAX_LEN]) {
    *n_units = collect_units(ie, units, prefixes);
    for (int k = 0; k < *n_units; k++)
        if (plan_unit(m, &units[k], k + 1)) return -1;
    return check_no_extra(m, *n_units);
}

int keras_inception_load(ImageEncoder *ie, const char *model_dir) {
    CHECK(ie != NULL && ie->trunk != NULL && ie->ps.finalized, "keras_inception_load: encoder not initialised");
    CHECK(model_dir != NULL, "keras_inception_load: NULL model_dir");
    KModel m = {0};
    Unit *units = xcalloc(KI_MAX_UNITS, sizeof *units);
    char (*prefixes)[NAME_MAX_LEN] = xcalloc(KI_MAX_UNITS, sizeof *prefixes);
    int n_units = 0, rc = -1;
    if (!parse_json(&m, model_dir) && !read_manifest(&m, model_dir) && !plan_all(ie, &m, units, &n_units, prefixes)) {
        for (int k = 0; k < n_units; k++) fill_unit(&units[k]);
        ie->convention = INCEPTION_KERAS;
        rc = 0;
    }
    model_free(&m);
    free(units);
    free(prefixes);
    return rc;
}
