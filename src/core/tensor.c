/* tensor.c: tensor shape helpers and heap tensors. */
#include "tensor.h"
#include "error.h"
#include "rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t shape_numel(int ndim, const int *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        CHECK(shape[i] >= 0, "negative dimension %d", shape[i]);
        n *= shape[i];
    }
    return n;
}

void tensor_set_shape(Tensor *t, int ndim, const int *shape) {
    CHECK(ndim >= 0 && ndim <= TENSOR_MAX_DIMS, "ndim %d", ndim);
    t->ndim = ndim;
    for (int i = 0; i < TENSOR_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
    t->n = shape_numel(ndim, shape);
}

bool tensor_same_shape(const Tensor *a, const Tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

int tensor_dim(const Tensor *t, int d) {
    if (d < 0) d += t->ndim;
    CHECK(d >= 0 && d < t->ndim, "dim %d of a %d-d tensor", d, t->ndim);
    return t->shape[d];
}

int64_t tensor_span(const Tensor *t, int from, int to) {
    int64_t n = 1;
    for (int i = from; i < to; i++) n *= t->shape[i];
    return n;
}

const char *tensor_shape_str(const Tensor *t, char *buf, int len) {
    int k = snprintf(buf, len, "(");
    for (int i = 0; i < t->ndim && k < len; i++)
        k += snprintf(buf + k, len - k, i ? ", %d" : "%d", t->shape[i]);
    if (k < len) snprintf(buf + k, len - k, ")");
    return buf;
}

Tensor *tensor_alloc(int ndim, const int *shape, bool with_grad) {
    Tensor *t = xcalloc(1, sizeof *t);
    tensor_set_shape(t, ndim, shape);
    t->data = xcalloc((size_t)t->n, sizeof(float));
    if (with_grad) {
        t->grad = xcalloc((size_t)t->n, sizeof(float));
        t->requires_grad = true;
    }
    t->is_leaf = true;
    return t;
}

void tensor_to_device(Tensor *t, int dev) {
    CHECK(!t->owner && !t->pool_data, "tensor_to_device: %s is a tape's tensor", t->name ? t->name : "a tensor");
    if (t->device == dev) return;
    if (t->device != DEVICE_CPU && dev != DEVICE_CPU) tensor_to_device(t, DEVICE_CPU);
    t->data = device_move(t->data, (size_t)t->n * sizeof(float), t->device, dev);
    t->grad = device_move(t->grad, (size_t)t->n * sizeof(float), t->device, dev);
    t->device = (uint8_t)dev;
}

void tensor_free(Tensor *t) {
    if (!t) return;
    if (t->device != DEVICE_CPU) {
        device_free(t->device, t->data);
        device_free(t->device, t->grad);
    } else {
        free(t->data);
        free(t->grad);
    }
    free(t);
}

void tensor_upload(Tensor *t, const float *host) { device_upload(t->device, t->data, host, (size_t)t->n * sizeof(float)); }

void tensor_download(const Tensor *t, float *host) {
    device_download(t->device, host, t->data, (size_t)t->n * sizeof(float));
}

float tensor_item(const Tensor *t) {
    CHECK(t->n == 1, "tensor_item: %lld elements, expected one", (long long)t->n);
    float v;
    tensor_download(t, &v);
    return v;
}

void tensor_fill(Tensor *t, float v) {
    if (t->device == DEVICE_CPU) {
        for (int64_t i = 0; i < t->n; i++) t->data[i] = v;
        return;
    }
    float *h = xmalloc((size_t)(t->n ? t->n : 1) * sizeof(float));
    for (int64_t i = 0; i < t->n; i++) h[i] = v;
    tensor_upload(t, h);
    free(h);
}

void tensor_copy(Tensor *dst, const Tensor *src) {
    CHECK(dst->n == src->n, "tensor_copy: %lld elements into %lld", (long long)src->n, (long long)dst->n);
    size_t bytes = (size_t)src->n * sizeof(float);
    if (!bytes || dst->data == src->data) return;
    device_transfer(dst->device, dst->data, src->device, src->data, bytes);
}

void tensor_fill_normal(Tensor *t, Rng *rng, float mean, float std) {
    if (t->device == DEVICE_CPU) {
        rng_normal(rng, t->data, t->n, mean, std);
        return;
    }
    float *h = xmalloc((size_t)(t->n ? t->n : 1) * sizeof(float));
    rng_normal(rng, h, t->n, mean, std);
    tensor_upload(t, h);
    free(h);
}
