/* lanes.c: gradient accumulation over micro-batches; see lanes.h. */
#include "lanes.h"
#include "../core/device.h"

#include <stdlib.h>
#include <string.h>

void lanes_init(Lanes *L, int n) {
    CHECK(n >= 1 && n <= LANES_MAX, "lanes_init: %d lanes (1..%d)", n, LANES_MAX);
    memset(L, 0, sizeof *L);
    L->n = n;
}

static int find(const Lanes *L, const ParamSet *ps) {
    for (int i = 0; i < L->n_sets; i++)
        if (L->sets[i] == ps) return i;
    FAIL("lanes: the set %s was not registered (lanes_add_set)", ps->name);
}

/* The floats a lane keeps of a set: its float buffers, then its integer buffers (batch norm's
 * num_batches_tracked, as doubles: exact below 2^53). */
static int64_t lane_floats(const ParamSet *ps) {
    int64_t n = ps->n_buffers;
    for (int i = 0; i < ps->n; i++) n += ps->entries[i]->kind == PARAM_BUFFER_I64 ? 2 : 0;
    return n;
}

/* the set's buffers to or from host memory h (lane_floats(ps) floats) */
static void buf_get(const ParamSet *ps, float *h) {
    size_t b = (size_t)ps->n_buffers * sizeof(float);
    if (b && ps->device == DEVICE_CPU) memcpy(h, ps->buffers, b);
    else if (b) device_download(ps->device, h, ps->buffers, b);
    unsigned char *iv = (unsigned char *)(h + ps->n_buffers);
    for (int i = 0, k = 0; i < ps->n; i++)
        if (ps->entries[i]->kind == PARAM_BUFFER_I64) {
            double d = (double)ps->entries[i]->ival;
            memcpy(iv + sizeof d * k++, &d, sizeof d);
        }
}

static void buf_put(ParamSet *ps, const float *h) {
    size_t b = (size_t)ps->n_buffers * sizeof(float);
    if (b && ps->device == DEVICE_CPU) memcpy(ps->buffers, h, b);
    else if (b) device_upload(ps->device, ps->buffers, h, b);
    const unsigned char *iv = (const unsigned char *)(h + ps->n_buffers);
    for (int i = 0, k = 0; i < ps->n; i++)
        if (ps->entries[i]->kind == PARAM_BUFFER_I64) {
            double d;
            memcpy(&d, iv + sizeof d * k++, sizeof d);
            ps->entries[i]->ival = (int64_t)d;
        }
}

void lanes_add_set(Lanes *L, ParamSet *ps) {
    if (L->n == 1) return;
    CHECK(L->n_sets < LANES_MAX_SETS, "lanes: more than %d sets", LANES_MAX_SETS);
    int i = L->n_sets++;
    L->sets[i] = ps;
    L->stride[i] = lane_floats(ps);
    L->bufs[i] = xmalloc((size_t)L->n * (L->stride[i] ? L->stride[i] : 1) * sizeof(float));
    L->acc[i] = xmalloc((size_t)(ps->n_values ? ps->n_values : 1) * sizeof(float));
    for (int j = 0; j < L->n; j++) buf_get(ps, L->bufs[i] + (size_t)j * L->stride[i]);
}

void lanes_reset_buffers(Lanes *L) {
    for (int i = 0; i < L->n_sets; i++)
        for (int j = 0; j < L->n; j++) buf_get(L->sets[i], L->bufs[i] + (size_t)j * L->stride[i]);
    L->cur = 0;
}

void lanes_free(Lanes *L) {
    for (int i = 0; i < L->n_sets; i++) {
        free(L->bufs[i]);
        free(L->acc[i]);
    }
    memset(L, 0, sizeof *L);
}

void lanes_enter(Lanes *L, int j) {
    if (L->n == 1 || j == L->cur) return;
    CHECK(j >= 0 && j < L->n, "lanes_enter: lane %d of %d", j, L->n);
    for (int i = 0; i < L->n_sets; i++) {
        ParamSet *ps = L->sets[i];
        buf_get(ps, L->bufs[i] + (size_t)L->cur * L->stride[i]);
        buf_put(ps, L->bufs[i] + (size_t)j * L->stride[i]);
    }
    L->cur = j;
}

void lanes_grad_add(Lanes *L, ParamSet *ps, int j) {
    if (L->n == 1) return;
    int i = find(L, ps);
    CHECK(ps->grads, "lanes_grad_add: %s has no gradients", ps->name);
    size_t n = (size_t)ps->n_values;
    float *acc = L->acc[i];
    if (j == 0) {
        if (ps->device == DEVICE_CPU) memcpy(acc, ps->grads, n * sizeof(float));
        else device_download(ps->device, acc, ps->grads, n * sizeof(float));
        return;
    }
    const float *g = ps->grads;
    float *h = NULL;
    if (ps->device != DEVICE_CPU) {
        h = xmalloc(n * sizeof(float));
        device_download(ps->device, h, ps->grads, n * sizeof(float));
        g = h;
    }
    for (size_t k = 0; k < n; k++) acc[k] += g[k];
    free(h);
}

void lanes_grad_finish(Lanes *L, ParamSet *ps) {
    if (L->n == 1) return;
    int i = find(L, ps);
    CHECK(ps->grads, "lanes_grad_finish: %s has no gradients", ps->name);
    size_t n = (size_t)ps->n_values;
    float inv = 1.0f / (float)L->n, *acc = L->acc[i];
    for (size_t k = 0; k < n; k++) acc[k] *= inv;
    if (ps->device == DEVICE_CPU) memcpy(ps->grads, acc, n * sizeof(float));
    else device_upload(ps->device, ps->grads, acc, n * sizeof(float));
}

void lanes_sync_buffers(Lanes *L, ParamSet *ps) {
    if (L->n == 1 || !ps->n_buffers) return;
    int i = find(L, ps);
    size_t nb = (size_t)ps->n_buffers, st = (size_t)L->stride[i];
    buf_get(ps, L->bufs[i] + (size_t)L->cur * st); /* the current lane's, kept first */
    /* lane 0's float buffers to all (as rank 0's are sent); each lane keeps its own batch count,
     * as each rank does */
    for (int j = 1; j < L->n; j++) memcpy(L->bufs[i] + (size_t)j * st, L->bufs[i], nb * sizeof(float));
    buf_put(ps, L->bufs[i] + (size_t)L->cur * st);
}
