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
    if (ps->device != DEVICE_CPU) {
        device_free(ps->device, ps->values);
        device_free(ps->device, ps->grads);
        device_free(ps->device, ps->buffers);
    } else {
        free(ps->values);
        if (ps->grads_pooled) mempool_free(ps->grads);
        else free(ps->grads);
        free(ps->buffers);
    }
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
    ps->grads_synced = 0;
    if (!ps->grads && ps->n_values) { /* released after the last step: a fresh, zeroed block from the pool */
        if (ps->device != DEVICE_CPU) {
            ps->grads = device_alloc(ps->device, (size_t)ps->n_values * sizeof(float));
            device_memset0(ps->device, ps->grads, (size_t)ps->n_values * sizeof(float));
        } else {
            ps->grads = mempool_calloc((size_t)ps->n_values * sizeof(float));
            ps->grads_pooled = 1;
        }
        for (int i = 0; i < ps->n; i++)
            if (ps->entries[i]->kind == PARAM_WEIGHT) ps->entries[i]->t.grad = ps->grads + ps->entries[i]->offset;
        return;
    }
    for (int i = 0; i < ps->n; i++) {
        ParamEntry *e = ps->entries[i];
        if (e->kind == PARAM_WEIGHT && e->t.requires_grad) device_memset0(ps->device, e->t.grad, (size_t)e->t.n * sizeof(float));
    }
}

void paramset_release_grads(ParamSet *ps) {
    ps->grads_synced = 0;
    if (!ps->grads) return;
    if (ps->device != DEVICE_CPU) device_free(ps->device, ps->grads);
    else if (ps->grads_pooled) mempool_free(ps->grads);
    else free(ps->grads);
    ps->grads = NULL;
    ps->grads_pooled = 0;
    for (int i = 0; i < ps->n; i++)
        if (ps->entries[i]->kind == PARAM_WEIGHT) ps->entries[i]->t.grad = NULL;
}

void paramset_copy(ParamSet *dst, const ParamSet *src) {
    CHECK(dst->n_values == src->n_values && dst->n_buffers == src->n_buffers && dst->n == src->n,
          "paramset_copy %s <- %s: layouts differ", dst->name, src->name);
    device_transfer(dst->device, dst->values, src->device, src->values, (size_t)src->n_values * sizeof(float));
    device_transfer(dst->device, dst->buffers, src->device, src->buffers, (size_t)src->n_buffers * sizeof(float));
    for (int i = 0; i < src->n; i++) dst->entries[i]->ival = src->entries[i]->ival;
}

/* n floats at p (on device from, owned as paramset_finalize / zero_grad allocate them) moved to
 * device to; frees p */
static float *move_floats(float *p, int64_t n, int from, int to, int pooled) {
    size_t bytes = (size_t)n * sizeof(float);
    if (p && pooled) { /* a gradient block of the CPU's tensor pool: out of the pool first */
        float *h = xmalloc(bytes ? bytes : 1);
        memcpy(h, p, bytes);
        mempool_free(p);
        p = h;
    }
    return device_move(p, bytes, from, to);
}

void paramset_to_device(ParamSet *ps, int dev) {
    CHECK(ps->finalized, "paramset_to_device: paramset %s not finalized", ps->name);
    if (ps->device == dev) return;
    if (ps->device != DEVICE_CPU && dev != DEVICE_CPU) paramset_to_device(ps, DEVICE_CPU); /* through the host */
    ps->values = move_floats(ps->values, ps->n_values, ps->device, dev, 0);
    ps->grads = move_floats(ps->grads, ps->n_values, ps->device, dev, ps->grads_pooled);
    ps->grads_pooled = 0;
    ps->buffers = move_floats(ps->buffers, ps->n_buffers, ps->device, dev, 0);
    ps->device = dev;
    for (int i = 0; i < ps->n; i++) {
        ParamEntry *e = ps->entries[i];
        e->t.device = (uint8_t)dev;
        if (e->kind == PARAM_WEIGHT) {
            e->t.data = ps->values + e->offset;
            e->t.grad = ps->grads ? ps->grads + e->offset : NULL;
        } else if (e->kind == PARAM_BUFFER) {
            e->t.data = ps->buffers + e->offset;
        }
    }
}
