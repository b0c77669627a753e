/* pth.c: torch.save checkpoints (zip and legacy) to safetensors; see pth.h. */
#include "pth.h"
#include "pickle.h"
#include "safetensors.h"
#include "../core/error.h"
#include "files.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#define PTH_MAX_FILE ((size_t)8 << 30)
#define PTH_MAX_PICKLE ((size_t)256 << 20) /* a state_dict's object pickle: names, shapes, ids */
/* torch.save's legacy header: pickle (protocol 2) of the magic number 0x1950a86a20f9469cfc6c */
static const unsigned char LEGACY_MAGIC[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};
#define LEGACY_PROTOCOL 1001

/* One storage record's bytes (owned), by key. */
typedef struct Storage {
    char *key;
    unsigned char *data;
    size_t bytes;
} Storage;

typedef struct Reader {
    const char *path;
    /* legacy: the whole file; zip: the archive */
    unsigned char *file;
    size_t file_len;
    zip_t *zip;
    char prefix[512];         /* zip: "<name>/" */
    int big_endian;           /* zip byteorder record "big" */
    Storage *st;
    int n_st;
} Reader;

int pth_sniff(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("cannot open %s: %s", path, strerror(errno));
    unsigned char b[16] = {0};
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    if (n >= 4 && b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4) return 1;
    if (n >= sizeof LEGACY_MAGIC && !memcmp(b, LEGACY_MAGIC, sizeof LEGACY_MAGIC)) return 1;
    return 0;
}

/* ------------------------------------------------------------------ zip */
/* The record `name`, at most max_bytes long (its header's size is checked before anything is
 * allocated: a record that claims more, e.g. a zip bomb or a lying header, is refused). */
static int zip_read_entry(Reader *R, const char *name, size_t max_bytes, unsigned char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    zip_stat_t zs;
    zip_stat_init(&zs);
    if (zip_stat(R->zip, name, 0, &zs) != 0 || !(zs.valid & ZIP_STAT_SIZE))
        return err_set("%s: the archive has no record '%s'", R->path, name);
    if (zs.size > max_bytes || zs.size > PTH_MAX_FILE)
        return err_set("%s: record '%s' claims %llu bytes, more than the %zu it may hold", R->path, name, (unsigned long long)zs.size,
                       max_bytes);
    zip_file_t *zf = zip_fopen(R->zip, name, 0);
    if (!zf) return err_set("%s: cannot open record '%s': %s", R->path, name, zip_strerror(R->zip));
    unsigned char *b = malloc(zs.size ? zs.size : 1);
    if (!b) {
        zip_fclose(zf);
        return err_set("%s: out of memory for record '%s'", R->path, name);
    }
    zip_int64_t got = zip_fread(zf, b, zs.size);
    const char *why = got < 0 ? zip_file_strerror(zf) : "";
    char msg[256];
    snprintf(msg, sizeof msg, "%s", why);
    zip_fclose(zf);
    if (got < 0 || (zip_uint64_t)got != zs.size) {
        free(b);
        return err_set("%s: record '%s': read %lld of %llu bytes%s%s", R->path, name, (long long)got, (unsigned long long)zs.size,
                       got < 0 ? ": " : " (damaged archive)", msg);
    }
    *out = b;
    *len = (size_t)zs.size;
    return 0;
}

static int open_zip(Reader *R, unsigned char **pkl, size_t *pkl_len) {
    int zerr = 0;
    R->zip = zip_open(R->path, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
    if (!R->zip) {
        zip_error_t e;
        zip_error_init_with_code(&e, zerr);
        int rc = err_set("%s: not a readable zip archive: %s", R->path, zip_error_strerror(&e));
        zip_error_fini(&e);
        return rc;
    }
    zip_int64_t n = zip_get_num_entries(R->zip, 0);
    int found = 0;
    for (zip_int64_t i = 0; i < n; i++) {
        const char *nm = zip_get_name(R->zip, (zip_uint64_t)i, 0);
        if (!nm) continue;
        size_t l = strlen(nm);
        const char *slash = strchr(nm, '/');
        int top = !strcmp(nm, "data.pkl");
        int one = l > 9 && !strcmp(nm + l - 9, "/data.pkl") && slash == nm + l - 9;
        if (top || one) {
            if (found++) return err_set("%s: the archive has two data.pkl records: not one torch.save checkpoint", R->path);
            if (l - 8 >= sizeof R->prefix) return err_set("%s: record name too long", R->path);
            memcpy(R->prefix, nm, l - 8);
            R->prefix[l - 8] = 0;
        }
    }
    if (!found) return err_set("%s: a zip archive without <name>/data.pkl: not a torch.save checkpoint", R->path);
    char name[600];
    snprintf(name, sizeof name, "%sbyteorder", R->prefix);
    zip_stat_t zs;
    if (zip_stat(R->zip, name, 0, &zs) == 0) {
        unsigned char *b;
        size_t bl;
        if (zip_read_entry(R, name, 64, &b, &bl)) return -1;
        int little = bl >= 6 && !memcmp(b, "little", 6), big = bl >= 3 && !memcmp(b, "big", 3);
        free(b);
        if (!little && !big) return err_set("%s: unknown byteorder record", R->path);
        R->big_endian = big;
    }
    snprintf(name, sizeof name, "%sdata.pkl", R->prefix);
    return zip_read_entry(R, name, PTH_MAX_PICKLE, pkl, pkl_len);
}

/* ------------------------------------------------------------------ legacy */
/* The next pickle of the legacy sequence, from *pos. */
static int next_pickle(Reader *R, size_t *pos, const char *what, int flags, PickleValue **out) {
    char name[600];
    snprintf(name, sizeof name, "%s (the %s pickle)", R->path, what);
    size_t used = 0;
    if (*pos >= R->file_len) return err_set("%s: truncated: it ends before the %s pickle", R->path, what);
    if (pickle_parse_ex(R->file + *pos, R->file_len - *pos, name, flags | PICKLE_PREFIX, &used, out)) return -1;
    *pos += used;
    return 0;
}

/* Reads the header pickles and the object pickle; the storage records come after. */
static int open_legacy(Reader *R, PickleValue **obj, size_t *pos) {
    *obj = NULL;
    if (!(R->file = read_file_bytes(R->path, PTH_MAX_FILE, &R->file_len))) return -1;
    if (R->file_len < sizeof LEGACY_MAGIC || memcmp(R->file, LEGACY_MAGIC, sizeof LEGACY_MAGIC))
        return err_set("%s: not a PyTorch checkpoint (neither a zip archive nor torch.save's legacy magic number)", R->path);
    *pos = sizeof LEGACY_MAGIC;
    PickleValue *v = NULL;
    if (next_pickle(R, pos, "protocol version", 0, &v)) return -1;
    int ok = v->type == PK_INT && v->i == LEGACY_PROTOCOL;
    pickle_free(v);
    if (!ok) return err_set("%s: unsupported legacy protocol version (expected %d)", R->path, LEGACY_PROTOCOL);
    if (next_pickle(R, pos, "sys info", 0, &v)) return -1;
    int little = 1;
    if (v->type != PK_DICT) ok = 0;
    for (size_t i = 0; ok && i + 1 < v->n; i += 2)
        if (v->items[i]->type == PK_STR && !strcmp(v->items[i]->s, "little_endian")) little = v->items[i + 1]->i != 0;
    pickle_free(v);
    if (!ok) return err_set("%s: the sys info pickle is not a dict", R->path);
    if (!little) return err_set("%s: written on a big-endian machine: not supported", R->path);
    return next_pickle(R, pos, "object", PICKLE_TORCH, obj);
}

/* The element size of the storage `key`, from any tensor of the object (0 if none uses it). */
static int elem_size_of(const PickleValue *v, const char *key, int depth) {
    if (v->type == PK_TENSOR) return strcmp(v->tensor->key, key) ? 0 : v->tensor->elem_size;
    if (depth > 300 || (v->type != PK_LIST && v->type != PK_TUPLE && v->type != PK_DICT)) return 0;
    for (size_t i = 0; i < v->n; i++) {
        int e = elem_size_of(v->items[i], key, depth + 1);
        if (e) return e;
    }
    return 0;
}

/* The storage key list, then each record: int64 element count and the bytes. elem: key ->
 * element size, from the object pickle's tensors (keys no tensor uses are skipped over). */
static int legacy_storages(Reader *R, size_t pos, const PickleValue *sd) {
    PickleValue *keys = NULL;
    if (next_pickle(R, &pos, "storage key list", 0, &keys)) return -1;
    int rc = 0;
    if (keys->type != PK_LIST) rc = err_set("%s: the storage key list is not a list", R->path);
    R->st = calloc(keys->n ? keys->n : 1, sizeof *R->st);
    for (size_t k = 0; !rc && k < keys->n; k++) {
        const PickleValue *kv = keys->items[k];
        if (kv->type != PK_STR && kv->type != PK_BYTES) { rc = err_set("%s: storage key %zu is not a str", R->path, k); break; }
        int esize = elem_size_of(sd, kv->s, 0);
        if (R->file_len - pos < 8) { rc = err_set("%s: truncated: it ends before the data of storage '%s'", R->path, kv->s); break; }
        uint64_t u = 0;
        for (int b = 0; b < 8; b++) u |= (uint64_t)R->file[pos + (size_t)b] << (8 * b);
        int64_t numel = (int64_t)u; /* (two's complement: a set top bit is negative) */
        pos += 8;
        if (numel < 0) { rc = err_set("%s: storage '%s' has %lld elements", R->path, kv->s, (long long)numel); break; }
        if (!esize) { rc = err_set("%s: storage '%s' is used by no tensor of the object pickle", R->path, kv->s); break; }
        size_t bytes = (size_t)numel * (size_t)esize;
        if ((uint64_t)numel > (uint64_t)(R->file_len / (size_t)esize) || bytes > R->file_len - pos) {
            rc = err_set("%s: truncated: storage '%s' needs %zu bytes at byte %zu, the file has %zu", R->path, kv->s, bytes, pos, R->file_len);
            break;
        }
        Storage *s = &R->st[R->n_st++];
        s->key = strdup(kv->s);
        s->data = malloc(bytes ? bytes : 1);
        if (!s->key || !s->data) { rc = err_set("%s: out of memory", R->path); break; }
        memcpy(s->data, R->file + pos, bytes);
        s->bytes = bytes;
        pos += bytes;
    }
    pickle_free(keys);
    return rc;
}

/* The storage `key` (zip: read on first use). */
static int storage(Reader *R, const PickleTensor *t, Storage **out) {
    for (int i = 0; i < R->n_st; i++)
        if (!strcmp(R->st[i].key, t->key)) {
            *out = &R->st[i];
            return 0;
        }
    if (!R->zip) return err_set("%s: storage '%s' has no data record", R->path, t->key);
    char name[700];
    snprintf(name, sizeof name, "%sdata/%s", R->prefix, t->key);
    Storage s = {0};
    uint64_t need = (uint64_t)(t->view_offset + t->storage_numel); /* the pid's size of the whole storage */
    if (need > PTH_MAX_FILE / (uint64_t)t->elem_size) return err_set("%s: storage '%s' of %llu elements is too large", R->path, t->key,
                                                                     (unsigned long long)need);
    if (zip_read_entry(R, name, (size_t)(need * (uint64_t)t->elem_size), &s.data, &s.bytes)) return -1;
    if (R->big_endian && t->elem_size > 1) {
        for (size_t i = 0; i + (size_t)t->elem_size <= s.bytes; i += (size_t)t->elem_size)
            for (int a = 0, b = t->elem_size - 1; a < b; a++, b--) {
                unsigned char c = s.data[i + (size_t)a];
                s.data[i + (size_t)a] = s.data[i + (size_t)b];
                s.data[i + (size_t)b] = c;
            }
    }
    s.key = strdup(t->key);
    Storage *grown = realloc(R->st, (size_t)(R->n_st + 1) * sizeof *R->st);
    if (!s.key || !grown) {
        free(s.key);
        free(s.data);
        return err_set("%s: out of memory", R->path);
    }
    R->st = grown;
    R->st[R->n_st] = s;
    *out = &R->st[R->n_st++];
    return 0;
}

/* ------------------------------------------------------------------ tensors */
static double elem_f64(const unsigned char *p, const char *dt) {
    if (!strcmp(dt, "F32")) { float f; memcpy(&f, p, 4); return f; }
    if (!strcmp(dt, "F64")) { double d; memcpy(&d, p, 8); return d; }
    uint16_t h;
    memcpy(&h, p, 2);
    return !strcmp(dt, "F16") ? st_f16_to_f32(h) : st_bf16_to_f32(h);
}

static int64_t elem_i64(const unsigned char *p, const char *dt) {
    if (!strcmp(dt, "I64")) { int64_t v; memcpy(&v, p, 8); return v; }
    if (!strcmp(dt, "I32")) { int32_t v; memcpy(&v, p, 4); return v; }
    if (!strcmp(dt, "I16")) { int16_t v; memcpy(&v, p, 2); return v; }
    if (!strcmp(dt, "I8")) return (int8_t)p[0];
    return p[0]; /* U8, BOOL */
}

/* Gathers t (any strides) from its storage into the writer as `name`. */
static int add_tensor(Reader *R, StWriter *w, const char *name, const PickleTensor *t) {
    Storage *s = NULL;
    if (storage(R, t, &s)) return -1;
    int64_t root_numel = t->view_offset + t->storage_numel; /* (pickle.c: the view lies inside its root) */
    if (root_numel < 0 || (uint64_t)root_numel > s->bytes / (uint64_t)t->elem_size)
        return err_set("%s: tensor '%s': storage '%s' holds %zu bytes, the pickle says %lld elements of %d", R->path, name, t->key, s->bytes,
                       (long long)root_numel, t->elem_size);
    int64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) numel *= t->shape[d];
    int fl = t->dtype[0] == 'F' || (t->dtype[0] == 'B' && t->dtype[1] == 'F');
    int is_bool = !strcmp(t->dtype, "BOOL");
    size_t out_size = fl ? 4 : is_bool ? 1 : 8;
    unsigned char *out = malloc((size_t)(numel ? numel : 1) * out_size);
    if (!out) return err_set("%s: out of memory for tensor '%s'", R->path, name);
    int64_t idx[PICKLE_MAX_DIMS] = {0};
    for (int64_t i = 0; i < numel; i++) {
        int64_t e = t->view_offset + t->offset;
        for (int d = 0; d < t->ndim; d++) e += idx[d] * t->stride[d];
        const unsigned char *p = s->data + (size_t)e * (size_t)t->elem_size;
        if (fl) { float f = (float)elem_f64(p, t->dtype); memcpy(out + (size_t)i * 4, &f, 4); }
        else if (is_bool) out[i] = p[0] != 0;
        else { int64_t v = elem_i64(p, t->dtype); memcpy(out + (size_t)i * 8, &v, 8); }
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
    st_writer_add(w, name, fl ? ST_F32 : is_bool ? ST_BOOL : ST_I64, t->ndim, t->shape, out);
    free(out);
    return 0;
}

static int count_tensors(const PickleValue *d) {
    int n = 0;
    for (size_t i = 0; d->type == PK_DICT && i + 1 < d->n; i += 2) n += d->items[i + 1]->type == PK_TENSOR;
    return n;
}

int pth_to_safetensors(const char *pth, const char *out) {
    Reader R = {.path = pth};
    PickleValue *obj = NULL;
    unsigned char *pkl = NULL;
    size_t pkl_len = 0, pos = 0;
    StWriter *w = NULL;
    int rc = -1, kind = pth_sniff(pth);
    if (kind < 0) return -1;
    if (kind == 0) return err_set("%s: not a PyTorch checkpoint (neither a zip archive nor torch.save's legacy magic number)", pth);
    FILE *f = fopen(pth, "rb");
    unsigned char b0 = 0;
    if (f) {
        if (fread(&b0, 1, 1, f) != 1) b0 = 0;
        fclose(f);
    }
    if (b0 == 'P') {
        if (open_zip(&R, &pkl, &pkl_len)) goto done;
        char name[600];
        snprintf(name, sizeof name, "%s (%sdata.pkl)", pth, R.prefix);
        if (pickle_parse_ex(pkl, pkl_len, name, PICKLE_TORCH, NULL, &obj)) goto done;
    } else if (open_legacy(&R, &obj, &pos)) goto done;

    if (obj->type != PK_DICT) { err_set("%s: the checkpoint holds %s, not a state_dict", pth, obj->type == PK_TENSOR ? "one tensor" : "no dict"); goto done; }
    if (!count_tensors(obj)) {
        char keys[600] = "";
        for (size_t i = 0; i + 1 < obj->n; i += 2)
            if (obj->items[i]->type == PK_STR && obj->items[i + 1]->type == PK_DICT && strlen(keys) + strlen(obj->items[i]->s) + 40 < sizeof keys)
                snprintf(keys + strlen(keys), sizeof keys - strlen(keys), "%s'%s' (%d tensors)", keys[0] ? ", " : "", obj->items[i]->s,
                         count_tensors(obj->items[i + 1]));
        if (keys[0]) err_set("%s: a dict of state_dicts (%s); convert the one you want with python3 tools/pth2safetensors.py %s OUT --key KEY", pth, keys, pth);
        else err_set("%s: no tensors in the checkpoint", pth);
        goto done;
    }
    if (!R.zip && legacy_storages(&R, pos, obj)) goto done;
    w = st_writer_new();
    for (size_t i = 0; i + 1 < obj->n; i += 2) {
        const PickleValue *k = obj->items[i], *t = obj->items[i + 1];
        if (t->type != PK_TENSOR) continue; /* e.g. a config entry beside the weights */
        if (k->type != PK_STR || strlen(k->s) != k->len) { err_set("%s: a tensor with a key that is not a str", pth); goto done; }
        for (size_t j = 0; j < i; j += 2)
            if (obj->items[j]->type == PK_STR && !strcmp(obj->items[j]->s, k->s)) { err_set("%s: key '%s' twice", pth, k->s); goto done; }
        if (add_tensor(&R, w, k->s, t->tensor)) goto done;
    }
    const char *base = strrchr(pth, '/');
    st_writer_meta(w, "source", base ? base + 1 : pth);
    st_writer_meta(w, "format", "pt");
    rc = st_writer_write(w, out);
done:
    if (w) st_writer_free(w);
    pickle_free(obj);
    free(pkl);
    free(R.file);
    for (int i = 0; i < R.n_st; i++) free(R.st[i].key), free(R.st[i].data);
    free(R.st);
    if (R.zip) zip_discard(R.zip);
    return rc;
}
