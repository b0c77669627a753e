/* checkpoint.h: training checkpoints that survive a kill at any moment.
 *
 * Layout: DIR/checkpoints/step_<N>/ holds one safetensors file per network (<name>.safetensors,
 * the state_dict keys; frozen pretrained trunks are left out and recorded by source), one per
 * optimizer (<name>.adam.safetensors: m and v under the parameter keys, the step count in the
 * metadata), and state.json (the training config, epoch, step, RNG streams, the vocabulary file,
 * anything the trainer adds). A checkpoint is written into a temporary directory, every file
 * fsync'ed, then renamed into place; DIR/checkpoints/latest (a one-line file, replaced by rename)
 * names the newest complete one, so a run killed while writing resumes from the previous one.
 * manifest.json lists every other file's size and CRC-32C: ckpt_verify finds a checkpoint whose
 * bytes changed afterwards (a truncated copy, a flipped bit), and ckpt_latest_good resumes from
 * the newest one that is whole. */
#ifndef ATTNGAN_CHECKPOINT_H
#define ATTNGAN_CHECKPOINT_H

#include "optim.h"
#include "../io/files.h"

#include <cjson/cJSON.h>

typedef struct CkptNet {
    const char *name;         /* file stem, e.g. "netG" */
    ParamSet *ps;
    int (*skip)(const char *key); /* keys not saved (e.g. frozen trunk weights), or NULL */
} CkptNet;

typedef struct CkptOpt {
    const char *name;         /* e.g. "optG" */
    Adam *adam;
} CkptOpt;

/* Writes DIR/checkpoints/step_<step>/ atomically and points `latest` at it. `state` (a JSON object
 * the caller filled; not consumed) goes to state.json. keep_last > 0 deletes older checkpoints
 * beyond that many. 0 or -1 with err_msg(). */
int ckpt_save(const char *dir, int64_t step, const CkptNet *nets, int n_nets, const CkptOpt *opts, int n_opts,
              const cJSON *state, int keep_last);

/* Path of the newest complete checkpoint under DIR (or DIR itself if it is a step_ directory) into
 * buf; -1 with err_msg() if there is none. */
int ckpt_latest(const char *dir, char *buf, int len);
/* Checks a step directory's files against its manifest: 0 whole, 1 no manifest (a checkpoint of an
 * earlier version: not checked), -1 with err_msg() naming the first damaged file and how. */
int ckpt_verify(const char *step_dir);
/* ckpt_latest, verified: a step directory must be whole (-1 naming the damage otherwise); for a run
 * directory, when its latest checkpoint is damaged, the newest older one that is whole, with a
 * warning on stderr naming the damage and the checkpoint used; -1 when none is whole. */
int ckpt_latest_good(const char *dir, char *buf, int len);
/* Loads networks (strictly: every saved key must exist and match) and optimizers from a step
 * directory, and returns its parsed state.json (caller frees with cJSON_Delete). */
int ckpt_load(const char *step_dir, const CkptNet *nets, int n_nets, const CkptOpt *opts, int n_opts, cJSON **state);

/* Helpers for state.json. */
void ckpt_put_rng(cJSON *obj, const char *key, const Rng *r);
int ckpt_get_rng(const cJSON *obj, const char *key, Rng *r);

/* mkdir_p, write_file_atomic, copy_file_atomic, read_file_all: src/io/files.h */

#endif
