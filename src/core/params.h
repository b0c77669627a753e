/* params.h: a network's parameters and buffers, named by PyTorch state_dict keys.
 *
 * Build: paramset_init, then paramset_add for each tensor (in state_dict order), then
 * paramset_finalize, which lays all trainable parameters out in one contiguous value buffer
 * (`values`, `n_values` floats) with one gradient buffer of the same size (`grads`), followed
 * by the float buffers (BatchNorm running statistics) in a second block. Integer buffers
 * (num_batches_tracked) are 0-d I64 scalars held in the entry itself.
 * Tensor pointers returned by paramset_add stay valid for the set's lifetime.
 */
#ifndef ATTNGAN_PARAMS_H
#define ATTNGAN_PARAMS_H

#include "tensor.h"

typedef enum { PARAM_WEIGHT = 0, PARAM_BUFFER = 1, PARAM_BUFFER_I64 = 2 } ParamKind;

typedef struct ParamEntry {
    char *name;           /* state_dict key */
    ParamKind kind;
    Tensor t;             /* PARAM_WEIGHT / PARAM_BUFFER: shape and data (grad only for weights) */
    int64_t ival;         /* PARAM_BUFFER_I64 value */
    int64_t offset;       /* offset into values (weights) or buffers (float buffers) */
    int loaded;           /* set by nn_load when a file supplied this entry */
} ParamEntry;

typedef struct ParamSet {
    char *name;           /* network name, e.g. "netG" */
    ParamEntry **entries;
    int n, cap;
    float *values, *grads;    /* trainable parameters: n_values floats each (grads NULL once released) */
    int grads_pooled;         /* grads came from the tensor pool (after a release) */
    int64_t n_values;
    float *buffers;           /* float buffers: n_buffers floats */
    int64_t n_buffers;
    int finalized;
    int frozen;
    int device;               /* DeviceKind: where values, grads and buffers live (paramset_to_device) */
    int grads_synced;         /* the gradients were averaged over the ranks since the last zero_grad
                                 (dist_sync_grads; always 0 in a single process) */
} ParamSet;

void paramset_init(ParamSet *ps, const char *name);
void paramset_free(ParamSet *ps);
Tensor *paramset_add(ParamSet *ps, const char *name, ParamKind kind, int ndim, const int *shape);
#define PARAM(ps, name, ...) paramset_add((ps), (name), PARAM_WEIGHT, NDIMS(__VA_ARGS__), (int[]){__VA_ARGS__})
#define BUFFER(ps, name, ...) paramset_add((ps), (name), PARAM_BUFFER, NDIMS(__VA_ARGS__), (int[]){__VA_ARGS__})
/* 0-d int64 buffer; returns a pointer to its value. */
int64_t *paramset_add_i64(ParamSet *ps, const char *name);
void paramset_finalize(ParamSet *ps);

/* Lookup by state_dict key; NULL if absent. */
ParamEntry *paramset_find(const ParamSet *ps, const char *name);
/* Frozen: weights stop requiring gradients (inputs still get theirs). */
void paramset_set_frozen(ParamSet *ps, int frozen);
/* Zeroes the gradients of the weights that take them; after paramset_release_grads it first takes
 * a new, all-zero gradient block from the tensor pool. */
void paramset_zero_grad(ParamSet *ps);
/* Gives the gradient block back (the training steps call it after the optimizer step, so the
 * gradients of a network exist only between its zero_grad and its update, and activations reuse
 * the memory in between). A backward into a released set fails loudly until paramset_zero_grad. */
void paramset_release_grads(ParamSet *ps);
/* Copies values and buffers (same layout required), across devices too. */
void paramset_copy(ParamSet *dst, const ParamSet *src);
/* Moves values, gradients (if any) and buffers to device dev (DeviceKind; the CPU included), and
 * every entry's tensor with them. Loading, saving and initialising run on the CPU: a trainer moves
 * its sets to the device after they are built and back before a checkpoint is written. */
void paramset_to_device(ParamSet *ps, int dev);

#endif
