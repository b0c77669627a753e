/* model_file.h: the network files of a model directory (netG, text_encoder, image_encoder
 * .safetensors), as `attngan export` writes them from a run and `attngan import` from the
 * official checkpoints; gen.c reads them. */
#ifndef ATTNGAN_MODEL_FILE_H
#define ATTNGAN_MODEL_FILE_H

#include "../core/params.h"

#include <stdint.h>

/* What a writer does with one entry of a network: leave it out, store it compactly (f16, and int8
 * with per-row scales for the largest weights; f32 when the writer is asked for f32), or store it
 * f32 always (statistics that must stay exact). */
enum { GEN_KEEP_SKIP = 0, GEN_KEEP_COMPACT = 1, GEN_KEEP_F32 = 2 };
typedef int (*GenKeepFn)(const ParamEntry *e);

/* Every entry compactly. */
int gen_keep_all(const ParamEntry *e);
/* An image encoder's heads compactly, without the Inception trunk (config.json names its file). */
int gen_keep_image_heads(const ParamEntry *e);

/* Writes the entries of ps that keep() selects to path, atomically: GEN_KEEP_COMPACT ones as f16
 * and int8 (weights of at least int8_min elements; f32 throughout with fp32), GEN_KEEP_F32 ones
 * as f32. The metadata says the format (GEN_MODEL_FORMAT), the network (`what`), the storage, and
 * holds the n_meta key/value pairs of meta (meta[2i], meta[2i+1]). 0 or -1 with err_msg(). */
int gen_write_network(const ParamSet *ps, const char *path, const char *what, int fp32, int64_t int8_min, GenKeepFn keep,
                      const char *const *meta, int n_meta);

#endif
