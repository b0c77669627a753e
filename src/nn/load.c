/* load.c: state_dict loading with missing/unexpected/mis-shaped reports; see load.h. */
#include "load.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_MAX 8

typedef struct {
    char buf[2048];
    int count;
} NameList;

static void list_add(NameList *l, const char *fmt, const char *a, const char *b, const char *c) {
    if (l->count++ >= LIST_MAX) {
        if (l->count == LIST_MAX + 1) strncat(l->buf, ", ...", sizeof l->buf - strlen(l->buf) - 1);
        return;
    }
    char item[512];
    snprintf(item, sizeof item, fmt, a, b, c);
    if (l->buf[0]) strncat(l->buf, ", ", sizeof l->buf - strlen(l->buf) - 1);
    strncat(l->buf, item, sizeof l->buf - strlen(l->buf) - 1);
}

static const char *st_shape_str(const StTensor *t, char *buf, int len) {
    int k = snprintf(buf, len, "(");
    for (int i = 0; i < t->ndim && k < len; i++) k += snprintf(buf + k, len - k, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (k < len) snprintf(buf + k, len - k, ")");
    return buf;
}

static int shape_matches(const StTensor *t, const ParamEntry *e) {
    if (e->kind == PARAM_BUFFER_I64) return t->numel == 1 && t->ndim <= 1;
    if (t->ndim != e->t.ndim) return 0;
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] != e->t.shape[i]) return 0;
    return 1;
}

int nn_load(ParamSet *ps, const SafeTensors *st, const char *prefix, int flags, LoadReport *report) {
    NameList missing = {{0}, 0}, unexpected = {{0}, 0}, shaped = {{0}, 0};
    LoadReport r = {0, 0, 0, 0};
    size_t pl = strlen(prefix);
    char key[512], s1[96], s2[96];
    for (int i = 0; i < ps->n; i++) {
        ParamEntry *e = ps->entries[i];
        snprintf(key, sizeof key, "%s%s", prefix, e->name);
        const StTensor *t = st_find(st, key);
        if (!t) {
            if ((flags & LOAD_NBT_OPTIONAL) && e->kind == PARAM_BUFFER_I64 && strstr(e->name, "num_batches_tracked")) {
                e->ival = 0;
                e->loaded = 1;
                continue;
            }
            if (!(flags & LOAD_PARTIAL)) { r.missing++; list_add(&missing, "%s", key, "", ""); }
            continue;
        }
        if (!shape_matches(t, e)) {
            r.mis_shaped++;
            list_add(&shaped, "%s: file %s, network %s", key, st_shape_str(t, s1, sizeof s1), tensor_shape_str(&e->t, s2, sizeof s2));
            continue;
        }
        int rc = e->kind == PARAM_BUFFER_I64 ? st_read_i64(st, key, &e->ival, 1) : st_read_f32(st, key, e->t.data, e->t.n);
        if (rc) return err_prefix("loading %s", ps->name);
        if (t->dtype == ST_I8 && e->kind != PARAM_BUFFER_I64) { /* nn_save_compact's int8: times the row scales */
            char sk[600];
            snprintf(sk, sizeof sk, "%s%s", key, NN_Q_SCALE);
            const StTensor *sc = st_find(st, sk);
            int64_t rows = e->t.ndim ? e->t.shape[0] : 1, cols = rows ? e->t.n / rows : 0;
            if (!sc || sc->numel != rows)
                return err_set("%s: int8 tensor '%s' needs its scales '%s' (%lld values)", st->path, key, sk, (long long)rows);
            float *scale = xmalloc((size_t)rows * sizeof(float));
            if (st_read_f32(st, sk, scale, rows)) { free(scale); return err_prefix("loading %s", ps->name); }
            for (int64_t ri = 0; ri < rows; ri++)
                for (int64_t j = 0; j < cols; j++) e->t.data[ri * cols + j] *= scale[ri];
            free(scale);
        }
        e->loaded = 1;
        r.loaded++;
    }
    if (!(flags & LOAD_IGNORE_UNEXPECTED)) {
        for (int j = 0; j < st->n; j++) {
            const char *name = st->tensors[j].name;
            if (strncmp(name, prefix, pl) != 0) continue;
            size_t nl = strlen(name), ql = strlen(NN_Q_SCALE);
            if (nl > ql && !strcmp(name + nl - ql, NN_Q_SCALE)) { /* the scales of an int8 tensor */
                char base[512];
                snprintf(base, sizeof base, "%.*s", (int)(nl - ql), name);
                const StTensor *bt = st_find(st, base);
                if (bt && bt->dtype == ST_I8 && paramset_find(ps, base + pl)) continue;
            }
            if (!paramset_find(ps, name + pl)) { r.unexpected++; list_add(&unexpected, "%s", name, "", ""); }
        }
    }
    if (report) *report = r;
    if (r.missing || r.unexpected || r.mis_shaped) {
        char msg[7000];
        snprintf(msg, sizeof msg, "%s%s%s%s%s%s%s%s%s", r.missing ? "missing keys: " : "", missing.buf, r.missing ? "; " : "",
                 r.unexpected ? "unexpected keys: " : "", unexpected.buf, r.unexpected ? "; " : "",
                 r.mis_shaped ? "mis-shaped keys: " : "", shaped.buf, r.mis_shaped ? "; " : "");
        return err_set("%s: loading network %s (prefix '%s'): %d missing, %d unexpected, %d mis-shaped: %s", st->path, ps->name,
                       prefix, r.missing, r.unexpected, r.mis_shaped, msg);
    }
    return 0;
}

int nn_load_file(ParamSet *ps, const char *path, int flags) {
    SafeTensors st;
    if (st_open(&st, path)) return -1;
    int rc = nn_load(ps, &st, "", flags, NULL);
    st_close(&st);
    return rc;
}

int nn_load_check_complete(const ParamSet *ps, const char *what) {
    NameList missing = {{0}, 0};
    for (int i = 0; i < ps->n; i++)
        if (!ps->entries[i]->loaded) list_add(&missing, "%s", ps->entries[i]->name, "", "");
    if (missing.count) return err_set("%s: network %s: %d keys were not loaded: %s", what, ps->name, missing.count, missing.buf);
    return 0;
}

void nn_save(const ParamSet *ps, StWriter *w, const char *prefix) {
    char key[512];
    for (int i = 0; i < ps->n; i++) {
        const ParamEntry *e = ps->entries[i];
        snprintf(key, sizeof key, "%s%s", prefix, e->name);
        if (e->kind == PARAM_BUFFER_I64) {
            st_writer_add(w, key, ST_I64, 0, NULL, &e->ival);
        } else {
            int64_t shape[TENSOR_MAX_DIMS];
            for (int d = 0; d < e->t.ndim; d++) shape[d] = e->t.shape[d];
            st_writer_add(w, key, ST_F32, e->t.ndim, shape, e->t.data);
        }
    }
}

void nn_save_compact(const ParamSet *ps, StWriter *w, const char *prefix, int64_t int8_min) {
    char key[512];
    for (int i = 0; i < ps->n; i++) {
        const ParamEntry *e = ps->entries[i];
        snprintf(key, sizeof key, "%s%s", prefix, e->name);
        if (e->kind == PARAM_BUFFER_I64) {
            st_writer_add(w, key, ST_I64, 0, NULL, &e->ival);
            continue;
        }
        int64_t shape[TENSOR_MAX_DIMS];
        for (int d = 0; d < e->t.ndim; d++) shape[d] = e->t.shape[d];
        if (int8_min > 0 && e->kind == PARAM_WEIGHT && e->t.ndim >= 2 && e->t.n >= int8_min) {
            int64_t rows = e->t.shape[0], cols = e->t.n / rows;
            int8_t *q = xmalloc((size_t)e->t.n);
            float *scale = xmalloc((size_t)rows * sizeof(float));
            for (int64_t r = 0; r < rows; r++) {
                const float *x = e->t.data + r * cols;
                float mx = 0.0f;
                for (int64_t j = 0; j < cols; j++) mx = fabsf(x[j]) > mx ? fabsf(x[j]) : mx;
                scale[r] = mx > 0.0f ? mx / 127.0f : 1.0f;
                for (int64_t j = 0; j < cols; j++) q[r * cols + j] = (int8_t)lrintf(x[j] / scale[r]);
            }
            st_writer_add(w, key, ST_I8, e->t.ndim, shape, q);
            char sk[600];
            snprintf(sk, sizeof sk, "%s%s", key, NN_Q_SCALE);
            st_writer_add(w, sk, ST_F32, 1, &rows, scale);
            free(q);
            free(scale);
        } else {
            uint16_t *h = xmalloc((size_t)(e->t.n ? e->t.n : 1) * sizeof(uint16_t));
            for (int64_t j = 0; j < e->t.n; j++) h[j] = st_f32_to_f16(e->t.data[j]);
            st_writer_add(w, key, ST_F16, e->t.ndim, shape, h);
            free(h);
        }
    }
}
