/* model_file.c: a model directory's network files (model_file.h). */
#include "model_file.h"
#include "gen.h"
#include "../io/safetensors.h"
#include "../nn/image_encoder.h"
#include "../nn/load.h"

#include <string.h>

int gen_keep_all(const ParamEntry *e) { (void)e; return GEN_KEEP_COMPACT; }

int gen_keep_image_heads(const ParamEntry *e) { return image_encoder_is_trunk_key(e->name) ? GEN_KEEP_SKIP : GEN_KEEP_COMPACT; }

/* A copy of the entries of ps for which keep() gives `want`, in ps's order. */
static void copy_entries(ParamSet *dst, const ParamSet *ps, GenKeepFn keep, int want) {
    paramset_init(dst, ps->name);
    for (int i = 0; i < ps->n; i++) {
        const ParamEntry *e = ps->entries[i];
        if (keep(e) != want) continue;
        if (e->kind == PARAM_BUFFER_I64) paramset_add_i64(dst, e->name);
        else paramset_add(dst, e->name, e->kind, e->t.ndim, e->t.shape);
    }
    paramset_finalize(dst);
    for (int i = 0; i < dst->n; i++) {
        ParamEntry *d = dst->entries[i];
        const ParamEntry *s = paramset_find(ps, d->name);
        if (d->kind == PARAM_BUFFER_I64) d->ival = s->ival;
        else memcpy(d->t.data, s->t.data, (size_t)s->t.n * sizeof(float));
    }
}

int gen_write_network(const ParamSet *ps, const char *path, const char *what, int fp32, int64_t int8_min, GenKeepFn keep,
                      const char *const *meta, int n_meta) {
    ParamSet a, b;
    copy_entries(&a, ps, keep, GEN_KEEP_COMPACT);
    copy_entries(&b, ps, keep, GEN_KEEP_F32);
    StWriter *w = st_writer_new();
    if (fp32) nn_save(&a, w, "");
    else nn_save_compact(&a, w, "", int8_min);
    nn_save(&b, w, "");
    st_writer_meta(w, "format", GEN_MODEL_FORMAT);
    st_writer_meta(w, "network", what);
    st_writer_meta(w, "storage", fp32 ? "f32" : "f16; int8 with per-row scales (<key>.q_scale) for the largest weights");
    for (int i = 0; i < n_meta; i++) st_writer_meta(w, meta[2 * i], meta[2 * i + 1]);
    int rc = st_writer_write(w, path);
    st_writer_free(w);
    paramset_free(&a);
    paramset_free(&b);
    return rc;
}
