/* safetensors.c: validated mmap reader and atomic writer; see safetensors.h. */
#define _POSIX_C_SOURCE 200809L
#include "safetensors.h"
#include "json_check.h"
#include "../core/error.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *DTYPE_NAMES[ST_NDTYPES] = {"F32", "F16", "BF16", "F64", "I64", "I32", "U8", "BOOL", "I8"};
static const size_t DTYPE_SIZES[ST_NDTYPES] = {4, 2, 2, 8, 8, 4, 1, 1, 1};

const char *st_dtype_name(StDtype d) { return d < ST_NDTYPES ? DTYPE_NAMES[d] : "?"; }
size_t st_dtype_size(StDtype d) { return d < ST_NDTYPES ? DTYPE_SIZES[d] : 0; }

/* ---------------------------------------------------------------- half precision */
float st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else { /* subnormal: renormalise */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | man << 13;
    else bits = sign | (exp + 112) << 23 | man << 13;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float st_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t st_f32_to_bf16(float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x40); /* quiet NaN */
    b += 0x7fffu + ((b >> 16) & 1);
    return (uint16_t)(b >> 16);
}

uint16_t st_f32_to_f16(float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    uint32_t sign = (b >> 16) & 0x8000, abs = b & 0x7fffffffu;
    if (abs > 0x7f800000u) return (uint16_t)(sign | 0x7e00);          /* NaN */
    if (abs >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);          /* overflow -> inf */
    if (abs < 0x38800000u) {                                           /* subnormal or zero */
        if (abs < 0x33000000u) return (uint16_t)sign;
        uint32_t e = abs >> 23, man = (abs & 0x7fffff) | 0x800000;
        int shift = 126 - (int)e;                                     /* 14..24 */
        uint32_t v = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (v & 1))) v++;
        return (uint16_t)(sign | v);
    }
    uint32_t v = ((abs - 0x38000000u) >> 13), rem = abs & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (v & 1))) v++;
    return (uint16_t)(sign | v);
}

/* ---------------------------------------------------------------- reader */
static int parse_dtype(const char *s, StDtype *d) {
    for (int i = 0; i < ST_NDTYPES; i++)
        if (strcmp(s, DTYPE_NAMES[i]) == 0) { *d = (StDtype)i; return 0; }
    return -1;
}

static int cmp_begin(const void *a, const void *b) {
    const StTensor *x = *(const StTensor *const *)a, *y = *(const StTensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end < y->end ? -1 : x->end > y->end);
}

static int parse_header(SafeTensors *st, const char *json, size_t len, uint64_t data_len) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return err_set("header is not valid JSON (near byte %td of the header)", cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - json : (ptrdiff_t)0);
    if (!cJSON_IsObject(root)) { cJSON_Delete(root); return err_set("header is not a JSON object"); }
    /* a name twice would be two tensors under one name (st_find sees the first), and a second
     * __metadata__ used to overrun the first one's arrays */
    if (json_no_duplicate_keys(root)) { cJSON_Delete(root); return err_prefix("header"); }
    int count = 0;
    for (cJSON *it = root->child; it; it = it->next) count++;
    st->tensors = xcalloc((size_t)count + 1, sizeof(StTensor));
    int rc = 0;
    for (cJSON *it = root->child; it && rc == 0; it = it->next) {
        if (strcmp(it->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(it)) { rc = err_set("__metadata__ is not an object"); break; }
            if (st->meta_keys) { rc = err_set("__metadata__ appears twice"); break; }
            int nm = 0;
            for (cJSON *m = it->child; m; m = m->next) nm++;
            st->meta_keys = xcalloc((size_t)nm + 1, sizeof(char *));
            st->meta_vals = xcalloc((size_t)nm + 1, sizeof(char *));
            for (cJSON *m = it->child; m; m = m->next) {
                if (!cJSON_IsString(m)) { rc = err_set("__metadata__ value of '%s' is not a string", m->string); break; }
                st->meta_keys[st->n_meta] = xstrdup(m->string);
                st->meta_vals[st->n_meta++] = xstrdup(m->valuestring);
            }
            continue;
        }
        StTensor *t = &st->tensors[st->n];
        t->name = xstrdup(it->string);
        st->n++;
        if (!cJSON_IsObject(it)) { rc = err_set("tensor '%s': entry is not an object", t->name); break; }
        cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
        cJSON *off = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsString(dt)) { rc = err_set("tensor '%s': missing or non-string dtype", t->name); break; }
        if (parse_dtype(dt->valuestring, &t->dtype)) { rc = err_set("tensor '%s': unknown dtype '%s' (supported: F32 F16 BF16 F64 I64 I32 U8 BOOL)", t->name, dt->valuestring); break; }
        if (!cJSON_IsArray(sh)) { rc = err_set("tensor '%s': missing shape array", t->name); break; }
        int nd = cJSON_GetArraySize(sh);
        if (nd > ST_MAX_DIMS) { rc = err_set("tensor '%s': %d dims (at most %d)", t->name, nd, ST_MAX_DIMS); break; }
        t->ndim = nd;
        t->numel = 1;
        int k = 0;
        for (cJSON *d = sh->child; d; d = d->next, k++) {
            if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble != floor(d->valuedouble) || d->valuedouble > 9.0e15) {
                rc = err_set("tensor '%s': shape entry %d is not a non-negative integer", t->name, k);
                break;
            }
            t->shape[k] = (int64_t)d->valuedouble;
            if (t->shape[k] && t->numel > INT64_MAX / 16 / t->shape[k]) { rc = err_set("tensor '%s': shape too large", t->name); break; }
            t->numel *= t->shape[k];
        }
        if (rc) break;
        if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !cJSON_IsNumber(off->child) || !cJSON_IsNumber(off->child->next)) {
            rc = err_set("tensor '%s': data_offsets must be an array of two integers", t->name);
            break;
        }
        /* whole numbers inside the data area, checked on the double before any cast (a number
         * beyond 2^64 does not convert) */
        int64_t ob[2];
        const cJSON *ov = off->child;
        for (int e = 0; e < 2 && !rc; e++, ov = ov->next) {
            double d = ov->valuedouble;
            if (!json_whole(ov, 0, 9.0e18, &ob[e]))
                rc = err_set("tensor '%s': data_offsets[%d] = %.17g is not a whole number from 0 to 9e18", t->name, e, d);
            else if ((uint64_t)ob[e] > data_len)
                rc = err_set("tensor '%s': data_offsets[%d] = %lld is beyond the data area of %llu bytes (file truncated?)", t->name, e,
                             (long long)ob[e], (unsigned long long)data_len);
        }
        if (rc) break;
        t->begin = (uint64_t)ob[0];
        t->end = (uint64_t)ob[1];
        if (t->end < t->begin) { rc = err_set("tensor '%s': data_offsets [%llu, %llu] end before begin", t->name, (unsigned long long)t->begin, (unsigned long long)t->end); break; }
        uint64_t want = (uint64_t)t->numel * DTYPE_SIZES[t->dtype];
        if (t->end - t->begin != want) {
            rc = err_set("tensor '%s': %llu bytes of data but dtype %s and shape need %llu", t->name,
                         (unsigned long long)(t->end - t->begin), DTYPE_NAMES[t->dtype], (unsigned long long)want);
            break;
        }
    }
    cJSON_Delete(root);
    if (rc) return rc;
    /* overlap check on sorted offsets (empty tensors never overlap) */
    StTensor **ord = xmalloc((size_t)(st->n ? st->n : 1) * sizeof *ord);
    for (int i = 0; i < st->n; i++) ord[i] = &st->tensors[i];
    qsort(ord, (size_t)st->n, sizeof *ord, cmp_begin);
    uint64_t last_end = 0;
    const char *last = NULL;
    for (int i = 0; i < st->n; i++) {
        if (ord[i]->end == ord[i]->begin) continue;
        if (last && ord[i]->begin < last_end) {
            rc = err_set("tensors '%s' and '%s' overlap in the data area", last, ord[i]->name);
            break;
        }
        last_end = ord[i]->end;
        last = ord[i]->name;
    }
    free(ord);
    return rc;
}

int st_open(SafeTensors *st, const char *path) {
    memset(st, 0, sizeof *st);
    st->path = xstrdup(path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) { err_set("%s: cannot open: %s", path, strerror(errno)); st_close(st); return -1; }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) { close(fd); err_set("%s: not a regular file", path); st_close(st); return -1; }
    size_t size = (size_t)sb.st_size;
    if (size < 8) { close(fd); err_set("%s: file of %zu bytes is too short for a safetensors header (truncated?)", path, size); st_close(st); return -1; }
    void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) { err_set("%s: mmap failed: %s", path, strerror(errno)); st_close(st); return -1; }
    st->map = m;
    st->map_len = size;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | st->map[i];
    if (hlen > size - 8) {
        err_set("%s: header length %llu exceeds the %zu bytes after it (truncated, or not a safetensors file)", path,
                (unsigned long long)hlen, size - 8);
        st_close(st);
        return -1;
    }
    if (hlen > (100u << 20)) { err_set("%s: header length %llu is over 100 MB", path, (unsigned long long)hlen); st_close(st); return -1; }
    if (hlen < 2 || st->map[8] != '{') { err_set("%s: header does not start with '{' (not a safetensors file)", path); st_close(st); return -1; }
    uint64_t data_len = size - 8 - hlen;
    if (parse_header(st, (const char *)st->map + 8, (size_t)hlen, data_len)) {
        err_prefix("%s", path);
        st_close(st);
        return -1;
    }
    for (int i = 0; i < st->n; i++) st->tensors[i].data = st->map + 8 + hlen + st->tensors[i].begin;
    return 0;
}

void st_close(SafeTensors *st) {
    if (st->map) munmap(st->map, st->map_len);
    for (int i = 0; i < st->n; i++) free(st->tensors[i].name);
    free(st->tensors);
    for (int i = 0; i < st->n_meta; i++) { free(st->meta_keys[i]); free(st->meta_vals[i]); }
    free(st->meta_keys);
    free(st->meta_vals);
    free(st->path);
    memset(st, 0, sizeof *st);
}

const StTensor *st_find(const SafeTensors *st, const char *name) {
    for (int i = 0; i < st->n; i++)
        if (strcmp(st->tensors[i].name, name) == 0) return &st->tensors[i];
    return NULL;
}

const char *st_meta(const SafeTensors *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_keys[i], key) == 0) return st->meta_vals[i];
    return NULL;
}

static const StTensor *find_n(const SafeTensors *st, const char *name, int64_t n) {
    const StTensor *t = st_find(st, name);
    if (!t) { err_set("%s: no tensor '%s'", st->path, name); return NULL; }
    if (t->numel != n) {
        err_set("%s: tensor '%s' has %lld elements, expected %lld", st->path, name, (long long)t->numel, (long long)n);
        return NULL;
    }
    return t;
}

int st_read_f32(const SafeTensors *st, const char *name, float *dst, int64_t n) {
    const StTensor *t = find_n(st, name, n);
    if (!t) return -1;
    const unsigned char *p = t->data;
    for (int64_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case ST_F32: memcpy(&dst[i], p + 4 * i, 4); break;
        case ST_F64: { double d; memcpy(&d, p + 8 * i, 8); dst[i] = (float)d; break; }
        case ST_F16: { uint16_t h; memcpy(&h, p + 2 * i, 2); dst[i] = st_f16_to_f32(h); break; }
        case ST_BF16: { uint16_t h; memcpy(&h, p + 2 * i, 2); dst[i] = st_bf16_to_f32(h); break; }
        case ST_I64: { int64_t v; memcpy(&v, p + 8 * i, 8); dst[i] = (float)v; break; }
        case ST_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); dst[i] = (float)v; break; }
        case ST_U8: case ST_BOOL: dst[i] = (float)p[i]; break;
        case ST_I8: dst[i] = (float)(int8_t)p[i]; break;
        default: return err_set("%s: tensor '%s': unsupported dtype", st->path, name);
        }
    }
    return 0;
}

int st_read_i64(const SafeTensors *st, const char *name, int64_t *dst, int64_t n) {
    const StTensor *t = find_n(st, name, n);
    if (!t) return -1;
    const unsigned char *p = t->data;
    for (int64_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case ST_I64: memcpy(&dst[i], p + 8 * i, 8); break;
        case ST_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); dst[i] = v; break; }
        case ST_U8: case ST_BOOL: dst[i] = p[i]; break;
        case ST_I8: dst[i] = (int8_t)p[i]; break;
        default: return err_set("%s: tensor '%s' has dtype %s, expected an integer type", st->path, name, DTYPE_NAMES[t->dtype]);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- writer */
typedef struct {
    char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t bytes;
    void *data;
} WEntry;

struct StWriter {
    WEntry *e;
    int n, cap;
    char **mk, **mv;
    int nm, capm;
};

StWriter *st_writer_new(void) { return xcalloc(1, sizeof(StWriter)); }

void st_writer_add(StWriter *w, const char *name, StDtype dtype, int ndim, const int64_t *shape, const void *data) {
    CHECK(ndim >= 0 && ndim <= ST_MAX_DIMS && dtype < ST_NDTYPES, "st_writer_add '%s'", name);
    for (int i = 0; i < w->n; i++) CHECK(strcmp(w->e[i].name, name) != 0, "st_writer_add: duplicate tensor '%s'", name);
    if (w->n == w->cap) { w->cap = w->cap ? 2 * w->cap : 32; w->e = xrealloc(w->e, (size_t)w->cap * sizeof(WEntry)); }
    WEntry *e = &w->e[w->n++];
    e->name = xstrdup(name);
    e->dtype = dtype;
    e->ndim = ndim;
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) { e->shape[i] = shape[i]; numel *= shape[i]; }
    e->bytes = (size_t)numel * DTYPE_SIZES[dtype];
    e->data = xmalloc(e->bytes);
    if (e->bytes) memcpy(e->data, data, e->bytes);
}

void st_writer_add_f32(StWriter *w, const char *name, int ndim, const int *shape, const float *data) {
    int64_t s[ST_MAX_DIMS];
    for (int i = 0; i < ndim; i++) s[i] = shape[i];
    st_writer_add(w, name, ST_F32, ndim, s, data);
}

void st_writer_meta(StWriter *w, const char *key, const char *value) {
    if (w->nm == w->capm) {
        w->capm = w->capm ? 2 * w->capm : 8;
        w->mk = xrealloc(w->mk, (size_t)w->capm * sizeof(char *));
        w->mv = xrealloc(w->mv, (size_t)w->capm * sizeof(char *));
    }
    w->mk[w->nm] = xstrdup(key);
    w->mv[w->nm++] = xstrdup(value);
}

/* Largest element size first keeps every tensor aligned to its element size. */
static int cmp_align(const void *a, const void *b) {
    const WEntry *x = a, *y = b;
    size_t sx = DTYPE_SIZES[x->dtype], sy = DTYPE_SIZES[y->dtype];
    return sx > sy ? -1 : sx < sy ? 1 : strcmp(x->name, y->name);
}

static int write_all(int fd, const void *buf, size_t n) {
    const unsigned char *p = buf;
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0) { if (errno == EINTR) continue; return -1; }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int st_writer_write(StWriter *w, const char *path) {
    qsort(w->e, (size_t)w->n, sizeof(WEntry), cmp_align);
    cJSON *root = cJSON_CreateObject();
    if (w->nm) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; i < w->nm; i++) cJSON_AddStringToObject(m, w->mk[i], w->mv[i]);
    }
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        WEntry *e = &w->e[i];
        cJSON *t = cJSON_AddObjectToObject(root, e->name);
        cJSON_AddStringToObject(t, "dtype", DTYPE_NAMES[e->dtype]);
        cJSON *sh = cJSON_AddArrayToObject(t, "shape");
        for (int d = 0; d < e->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)e->shape[d]));
        cJSON *o = cJSON_AddArrayToObject(t, "data_offsets");
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)(off + e->bytes)));
        off += e->bytes;
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    size_t jl = strlen(json), padded = (jl + 7) / 8 * 8;
    char *tmp = xmalloc(strlen(path) + 32);
    sprintf(tmp, "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { err_set("%s: cannot create: %s", tmp, strerror(errno)); free(json); free(tmp); return -1; }
    unsigned char hdr[8];
    for (int i = 0; i < 8; i++) hdr[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int rc = write_all(fd, hdr, 8) || write_all(fd, json, jl);
    for (size_t i = jl; i < padded && !rc; i++) rc = write_all(fd, " ", 1);
    for (int i = 0; i < w->n && !rc; i++) rc = write_all(fd, w->e[i].data, w->e[i].bytes);
    free(json);
    if (rc || fsync(fd) != 0) {
        err_set("%s: write failed: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return -1;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        err_set("%s: cannot rename to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    /* make the rename durable */
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0; else strcpy(dir, ".");
    int dfd = open(slash && slash == dir ? "/" : dir, O_RDONLY);
    if (dfd >= 0) { fsync(dfd); close(dfd); }
    free(dir);
    return 0;
}

void st_writer_free(StWriter *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) { free(w->e[i].name); free(w->e[i].data); }
    free(w->e);
    for (int i = 0; i < w->nm; i++) { free(w->mk[i]); free(w->mv[i]); }
    free(w->mk);
    free(w->mv);
    free(w);
}
