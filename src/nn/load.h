/* load.h: loading a network's ParamSet from safetensors by state_dict key, with a report of
 * missing, unexpected and mis-shaped keys by name. */
#ifndef ATTNGAN_LOAD_H
#define ATTNGAN_LOAD_H

#include "../core/core.h"
#include "../io/safetensors.h"

enum {
    LOAD_PARTIAL = 1,          /* missing keys are not an error (another file supplies them) */
    LOAD_IGNORE_UNEXPECTED = 2, /* keys under the prefix that the net lacks are not an error */
    LOAD_NBT_OPTIONAL = 4,     /* a missing num_batches_tracked becomes 0 (torchvision files) */
};

typedef struct LoadReport {
    int loaded, missing, unexpected, mis_shaped;
} LoadReport;

/* Copies every entry `key` of ps from the tensor `<prefix><key>` of st (dtypes converted to
 * f32 / i64). Entries loaded get ParamEntry.loaded = 1. Returns 0, or -1 with an err_msg()
 * naming up to 8 keys of each kind of problem ("missing: a, b; unexpected: c; shape of d:
 * file (2, 3), network (3, 2)"). The report, if not NULL, gets the counts. */
int nn_load(ParamSet *ps, const SafeTensors *st, const char *prefix, int flags, LoadReport *report);
/* nn_load from the safetensors file at path (prefix ""). 0, or -1 with err_msg() naming the file. */
int nn_load_file(ParamSet *ps, const char *path, int flags);
/* -1 with a message naming the entries of ps that no nn_load call has filled. */
int nn_load_check_complete(const ParamSet *ps, const char *what);
/* Writes ps (weights and buffers) under `<prefix><key>` into the writer. */
void nn_save(const ParamSet *ps, StWriter *w, const char *prefix);
/* Compact storage for shipped models: float entries as F16, except weights of at least
 * int8_min elements with 2+ dimensions, stored as I8 with a per-row (first dimension) symmetric
 * scale in `<key>.q_scale` (NN_Q_SCALE; F32, shape (rows)): w = q * scale, scale = max|row| / 127.
 * int8_min <= 0 stores everything as F16. nn_load reads both forms back (dequantising). */
void nn_save_compact(const ParamSet *ps, StWriter *w, const char *prefix, int64_t int8_min);
#define NN_Q_SCALE ".q_scale"

#endif
