/* tensor.c: tensor shape helpers and heap tensors. */
#include "tensor.h"
#include "error.h"

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

void tensor_free(Tensor *t) {
    if (!t) return;
    free(t->data);
    free(t->grad);
    free(t);
}
