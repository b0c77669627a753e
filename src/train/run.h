/* run.h: what `attngan pretrain` and `attngan train` share: command-line options, the run's
 * configuration and output directory, loading the pretrained Inception trunk, NaN checks, and the
 * log bundle (progress line, CSV, TensorBoard). */
#ifndef ATTNGAN_RUN_H
#define ATTNGAN_RUN_H

#include "../data/cub.h"
#include "../nn/image_encoder.h"
#include "log.h"
#include "train_config.h"

#include <cjson/cJSON.h>

typedef struct RunArgs {
    const char *cfg;          /* --cfg FILE */
    const char *data;         /* --data DIR (overrides DATA_DIR) */
    const char *out;          /* --out DIR (default out/<CONFIG_NAME>) */
    const char *resume;       /* --resume DIR (a run directory or a step_ directory) */
    int seed, has_seed;       /* --seed N (overrides EXTRA.SEED) */
    int threads;              /* --threads N (0: all cores) */
    int bf16;                 /* --bf16: convolutions with bf16 operands (conv2d_set_precision) */
    int64_t max_steps;        /* --max-steps N: stop after N optimizer steps in all (0: no limit) */
    double max_minutes;       /* --max-minutes M: stop after M minutes of training (0: no limit) */
    const char *sets[64];     /* --set KEY=VALUE */
    int n_sets;
    int quiet;
} RunArgs;

typedef struct Run {
    TrainConfig tc;
    char out[2048];
    int64_t step;             /* optimizer steps done */
    int epoch;                /* current epoch */
    int batch_in_epoch;       /* batches of the current epoch done */
    cJSON *resume_state;      /* state.json of the checkpoint resumed from, or NULL */
    char resume_dir[4200];
    Progress *progress;
    CsvLog *csv, *csv_eval;
    TbWriter *tb;
    double t_start;           /* training clock (s) */
    int class_map[1024];      /* see run_class_setup; 0 = not a training class */
    int use_class_map;
} Run;

/* Parses the shared options from argv (the subcommand's arguments); prints usage and returns 2 on
 * bad input. `usage` is printed for --help. */
int run_parse_args(int argc, char **argv, RunArgs *a, const char *usage);
/* Builds the configuration (defaults, --cfg, --set, --data, --seed; or the checkpoint's own
 * config with --resume), creates the output directory, sets the threads, opens the logs. */
int run_open(Run *r, const RunArgs *a, const char *default_cfg);
void run_close(Run *r);
/* Loads the frozen trunk named by EXTRA.INCEPTION / EXTRA.INCEPTION_WEIGHTS into ie. */
int run_load_inception(const Run *r, ImageEncoder *ie);
/* A DATA_DIR relative to the working directory, or absolute. */
const char *run_data_dir(const Run *r);
/* -1 with a message naming the first non-finite term. */
int run_check_finite(const Run *r, int n, const char *const *names, const float *values);
/* Logs one row of training terms (progress, CSV, TensorBoard every LOG_INTERVAL steps). */
void run_log(Run *r, int n, const char *const *names, const float *values);
/* Starts the training clock and installs SIGINT/SIGTERM handlers that ask the loop to stop. */
void run_start_clock(Run *r);
/* 1 when the loop should stop after this step: a signal, --max-steps, or --max-minutes; `why` gets
 * the reason. */
int run_should_stop(const Run *r, const RunArgs *a, const char **why);
/* EXTRA.ZSL_TRAIN_CLASSES_ONLY (true zero-shot): the ZSL class head knows only the training
 * classes. run_class_setup sets mc->num_classes to their count and fills r->class_map (CUB id ->
 * 1-based index among the training classes); run_map_classes rewrites a batch's ids in place (the
 * DAMSM class masks only compare ids, so they are unchanged). Without the option both do nothing. */
struct ModelConfig;
void run_class_setup(Run *r, const Cub *cub, struct ModelConfig *mc);
void run_map_classes(const Run *r, int64_t *class_ids, int B);
/* State common to both programs, for state.json. */
cJSON *run_state(const Run *r);
/* Writes a file of the run (atomic) under out/. */
int run_write_text(const Run *r, const char *name, const char *text);

#endif
