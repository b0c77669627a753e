/* tensor.h: the fp32 tensor: contiguous, row-major (NCHW for images, PyTorch's order).
 *
 * A Tensor is a small header; its data lives in a Tape's arena (activations), in a ParamSet
 * (parameters) or in memory the caller owns. `grad` has the same shape and is NULL until the
 * tape gives it one; backward passes always accumulate into it (`+=`).
 */
#ifndef ATTNGAN_TENSOR_H
#define ATTNGAN_TENSOR_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "device.h"

#define TENSOR_MAX_DIMS 6

typedef struct Tensor {
    float *data;
    float *grad;                    /* NULL: no gradient buffer (yet) */
    int64_t n;                      /* number of elements */
    int ndim;                       /* 0 = scalar */
    int shape[TENSOR_MAX_DIMS];
    bool requires_grad;             /* gradients flow into this tensor */
    /* Layout: false = row-major (N, C, H, W, ...), every tensor's but these; true = oneDNN's
     * nChw16c, a 4-d (N, C, H, W) with C % 16 == 0 stored as (N, C/16, H, W, 16) (data and grad).
     * Only the frozen Inception trunk makes them (src/nn/image_encoder.c): conv2d_bn_relu_frozen,
     * conv2d_bn_train_relu_nograd, maxpool2d, avgpool2d, concat along dim 1 and unblock16
     * accept them; every other op refuses them (tape_record checks). */
    bool blocked;
    bool is_leaf;                   /* parameter or user input: backward accumulates, never zeroes */
    uint8_t device;                 /* DeviceKind (device.h): where data and grad live; 0 = the CPU */
    /* Lifetime on a tape (see tape.h); zero for tensors that are not a tape's. */
    bool pool_data, pool_grad;      /* data / grad came from the pool and are freed by the tape */
    bool grad_fresh;                /* grad was just allocated and holds no values yet: the first
                                       writer either overwrites all of it (tensor_grad_overwrite) or
                                       gets it zeroed (tensor_grad_or_null) */
    bool keep;                      /* never freed before tape_reset (tape_keep, tape_detach) */
    bool donated;                   /* the caller will not read it again: an op may write its output over it */
    int ref_node;                   /* 1 + index of the first node of its owner tape that uses it; 0: none */
    struct Tape *owner;             /* the tape that allocated it */
    const char *name;               /* optional, for messages */
} Tensor;

/* Number of ints in a compound literal list: NDIMS(2, 3) == 2. */
#define NDIMS(...) ((int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)))

int64_t shape_numel(int ndim, const int *shape);
/* Fills t's shape fields (no allocation). */
void tensor_set_shape(Tensor *t, int ndim, const int *shape);
bool tensor_same_shape(const Tensor *a, const Tensor *b);
/* Size of dimension d; negative d counts from the end. */
int tensor_dim(const Tensor *t, int d);
/* Product of dims [from, to). */
int64_t tensor_span(const Tensor *t, int from, int to);
/* "(2, 3, 4)" into buf; returns buf. */
const char *tensor_shape_str(const Tensor *t, char *buf, int len);

/* Heap tensors owned by the caller (not on a tape). */
Tensor *tensor_alloc(int ndim, const int *shape, bool with_grad);
void tensor_free(Tensor *t);

/* Moves a heap tensor (tensor_alloc), data and gradient, to device dev (the CPU included). */
void tensor_to_device(Tensor *t, int dev);

/* Host <-> device: t's data from / into a host array of t->n floats (a plain copy on the CPU). */
void tensor_upload(Tensor *t, const float *host);
void tensor_download(const Tensor *t, float *host);
/* Sets every element to v, wherever t lives. */
void tensor_fill(Tensor *t, float v);
/* dst = src (same number of elements), between any two devices. */
void tensor_copy(Tensor *dst, const Tensor *src);
/* Fills t with normal (mean, std) numbers from rng: the same stream on every device (drawn on the
 * host, then copied). */
struct Rng;
void tensor_fill_normal(Tensor *t, struct Rng *rng, float mean, float std);
/* The value of a one-element tensor (a loss), wherever it lives. */
float tensor_item(const Tensor *t);

/* The gradient an op's backward should add into for this input, or NULL to skip it. */
static inline float *tensor_grad_or_null(const Tensor *t) {
    if (!t || !t->requires_grad) return 0;
    if (t->grad_fresh) { /* the first contribution: start from zeros */
        Tensor *m = (Tensor *)t; /* a tape's tensors are never const objects */
        if (m->device) device_memset0(m->device, m->grad, (size_t)m->n * sizeof(float));
        else memset(m->grad, 0, (size_t)m->n * sizeof(float));
        m->grad_fresh = false;
    }
    return t->grad;
}

/* For a backward kernel that can write its result instead of adding it: the gradient buffer (NULL
 * to skip) and *overwrite = 1 when nothing has been written into it yet, in which case the caller
 * must write every element; otherwise it adds, as with tensor_grad_or_null. */
static inline float *tensor_grad_overwrite(Tensor *t, int *overwrite) {
    *overwrite = 0;
    if (!t || !t->requires_grad) return 0;
    *overwrite = t->grad_fresh;
    t->grad_fresh = false;
    return t->grad;
}

#endif
