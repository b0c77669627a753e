/* params.c: parameter sets; see params.h. */
#include "params.h"
#include "mempool.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>

void paramset_init(ParamSet *ps, const char *name) {
    memset(ps, 0, sizeof *ps);
    ps->name = xstrdup(name ? name : "");
}

void paramset_free(ParamSet *ps) {
    for (int i = 0; i < ps->n; i++) {
        free(ps->entries[i]->name);
        free(ps->entries[i]);
    }
    free(ps->entries);
    free(ps->values);
    if (ps->grads_pooled) mempool_free(ps->grads);
    else free(ps->grads);
    free(ps->buffers);
    free(ps->name);
    memset(ps, 0, sizeof *ps);
}

static ParamEntry *add_entry(ParamSet *ps, const char *name, ParamKind kind) {
    CHECK(!ps->finalized, "paramset %s: add '%s' after finalize", ps->name, name);
    CHECK(!paramset_find(ps, name), "paramset %s: duplicate key '%s'", ps->name, name);
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? 2 * ps->cap : 64;
        ps->entries = xrealloc(ps->entries, (size_t)ps->cap * sizeof *ps->entries);
    }
    ParamEntry *e = xcalloc(1, sizeof *e);
    e->name = xstrdup(name);
    e->kind = kind;
    ps->entries[ps->n++] = e;
    return e;
}

Tensor *paramset_add(ParamSet *ps, const char *name, ParamKind kind, int ndim, const int *shape) {
    CHECK(kind != PARAM_BUFFER_I64, "use paramset_add_i64");
    ParamEntry *e = add_entry(ps, name, kind);
    tensor_set_shape(&e->t, ndim, shape);
    e->t.is_leaf = true;
    e->t.name = e->name;
    return &e->t;
}

int64_t *paramset_add_i64(ParamSet *ps, const char *name) {
    ParamEntry *e = add_entry(ps, name, PARAM_BUFFER_I64);
    tensor_set_shape(&e->t, 0, NULL);
    e->t.name = e->name;
    return &e->ival;
}

void paramset_finalize(ParamSet *ps) {
    CHECK(!ps->finalized, "paramset %s finalized twice", ps->name);
    int64_t nv = 0, nb = 0;
    for (int i = 0; i < ps->n; i++) {
        ParamEntry *e = ps->entries[i];
        if (e->kind == PARAM_WEIGHT) { e->offset = nv; nv += e->t.n; }
        else if (e->kind == PARAM_BUFFER) { e->offset = nb; nb += e->t.n; }
    }
    ps->n_values = nv;
    ps->n_buffers = nb;
    ps->values = xcalloc((size_t)nv, sizeof(float));
    ps->grads = xcalloc((size_t)nv, sizeof(float));
    ps->buffers = xcalloc((size_t)nb, sizeof(float));
    for (int i = 0; i < ps->n; i++) {
        ParamEntry *e = ps->entries[i];
        if (e->kind == PARAM_WEIGHT) {
            e->t.data = ps->values + e->offset;
            e->t.grad = ps->grads + e->offset;
            e->t.requires_grad = true;
        } else if (e->kind == PARAM_BUFFER) {
            e->t.data = ps->buffers + e->offset;
        }
    }
    ps->finalized = 1;
}

ParamEntry *paramset_find(const ParamSet *ps, const char *name) {
    for (int i = 0; i < ps->n; i++)
        if (strcmp(ps->entries[i]->name, name) == 0) return ps->entries[i];
    return NULL;
}

void paramset_set_frozen(ParamSet *ps, int frozen) {
    ps->frozen = frozen;
    for (int i = 0; i < ps->n; i++)
        if (ps->entries[i]->kind == PARAM_WEIGHT) ps->entries[i]->t.requires_grad = !frozen;
}

/* Only the weights that take gradients: a frozen weight's gradient is never written, and leaving
 * it alone keeps its pages (a frozen Inception trunk: 96 MB) out of memory. */
void paramset_zero_grad(ParamSet *ps) {
    if (!ps->grads && ps->n_values) { /* released after the last step: a fresh, zeroed block from the pool */
        ps->grads = mempool_calloc((size_t)ps->n_values * sizeof(float));
        ps->grads_pooled = 1;
        for (int i = 0; i < ps->n; i++)
            if (ps->entries[i]->kind == PARAM_WEIGHT) ps->entries[i]->t.grad = ps->grads + ps->entries[i]->offset;
        return;
    }
    for (int i = 0; i < ps->n; i++) {
        ParamEntry *e = ps->entries[i];
        if (e->kind == PARAM_WEIGHT && e->t.requires_grad) memset(e->t.grad, 0, (size_t)e->t.n * sizeof(float));
    }
}

void paramset_release_grads(ParamSet *ps) {
    if (!ps->grads) return;
    if (ps->grads_pooled) mempool_free(ps->grads);
    else free(ps->grads);
    ps->grads = NULL;
    for (int i = 0; i < ps->n; i++)
        if (ps->entries[i]->kind == PARAM_WEIGHT) ps->entries[i]->t.grad = NULL;
}

void paramset_copy(ParamSet *dst, const ParamSet *src) {
    CHECK(dst->n_values == src->n_values && dst->n_buffers == src->n_buffers && dst->n == src->n,
          "paramset_copy %s <- %s: layouts differ", dst->name, src->name);
    memcpy(dst->values, src->values, (size_t)src->n_values * sizeof(float));
    if (src->n_buffers) memcpy(dst->buffers, src->buffers, (size_t)src->n_buffers * sizeof(float));
    for (int i = 0; i < src->n; i++) dst->entries[i]->ival = src->entries[i]->ival;
}
