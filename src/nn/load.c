/* load.c: state_dict loading with missing/unexpected/mis-shaped reports; see load.h. */
#include "load.h"

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
        e->loaded = 1;
        r.loaded++;
    }
    if (!(flags & LOAD_IGNORE_UNEXPECTED)) {
        for (int j = 0; j < st->n; j++) {
            const char *name = st->tensors[j].name;
            if (strncmp(name, prefix, pl) != 0) continue;
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
