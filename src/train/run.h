/* run.h: what `attngan pretrain` and `attngan train` share: command-line options, the run's
 * configuration and output directory, loading the pretrained Inception trunk, NaN checks, and the
 * log bundle (progress line, CSV, TensorBoard). */
#ifndef ATTNGAN_RUN_H
#define ATTNGAN_RUN_H

#include "../data/cub.h"
#include "../nn/image_encoder.h"
#include "log.h"
#include "../nn/train_config.h"

#include <cjson/cJSON.h>

typedef struct RunArgs {
    const char *cfg;          /* --cfg FILE */
    const char *data;         /* --data DIR (overrides DATA_DIR) */
    const char *out;          /* --out DIR (default out/<CONFIG_NAME>) */
    const char *resume;       /* --resume DIR (a run directory or a step_ directory) */
    int force;                /* --force: an --out that holds a run is wiped first (its cache/ kept) */
    const char *program;      /* "pretrain" or "train" (set by the command): the config checks */
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
    /* run_log's last row when LOG_INTERVAL skipped it (step 0: none); run_close writes it, so the
     * last step of a run is always in losses.csv and TensorBoard */
    int64_t log_pending_step;
    int log_pending_epoch, log_n;
    char **log_names;
    float *log_values;
    int class_map[1024];      /* see run_class_setup; 0 = not a training class */
    int use_class_map;
} Run;

/* Parses the shared options from argv (the subcommand's arguments); prints usage and returns 2 on
 * bad input. `usage` is printed for --help. */
int run_parse_args(int argc, char **argv, RunArgs *a, const char *usage);
/* Builds the configuration (defaults, --cfg, --set, --seed; or the checkpoint's own config with
 * --resume), checks the original's keys (run_check_original_keys), chooses the data directory
 * (--data, $ATTNGAN_DATA/birds, DATA_DIR, ../shared/data/birds: src/io/locate.h), refuses an --out
 * that holds another run unless --force (which wipes it first) or --resume of that run, creates
 * the output directory, sets the threads, opens the logs. In a data-parallel run (core/dist.h) it
 * refuses a checkpoint of another number of ranks, and the ranks other than 0 write nothing: no
 * directory, no logs (r->csv, r->csv_eval and r->tb stay NULL). */
int run_open(Run *r, const RunArgs *a, const char *default_cfg);
void run_close(Run *r);
/* AttnGAN's keys that this port does not run as the original would are refused, with what to do
 * instead: TRAIN.FLAG False (the original generates instead of training), TRAIN.NET_G with
 * TRAIN.B_NET_D True (the original also loads netD0..2 beside NET_G), GAN.B_ATTENTION False,
 * DATASET_NAME other than birds, TEXT.CAPTIONS_PER_IMAGE other than 10. program: "pretrain" or
 * "train". 0, or -1 with err_msg(). */
int run_check_original_keys(const TrainConfig *c, const char *program);
/* Whether dir holds a training run (checkpoints/, losses.csv or tensorboard/). */
int run_dir_has_run(const char *dir);
/* Removes a run's files from dir (checkpoints/, samples/, tensorboard/, encoders/, the logs,
 * config.json and the networks); cache/ (the validated trunk features) and other files stay. */
int run_dir_wipe(const char *dir);

/* Loads the frozen trunk named by EXTRA.INCEPTION / EXTRA.INCEPTION_WEIGHTS into ie. */
int run_load_inception(const Run *r, ImageEncoder *ie);
/* A DATA_DIR relative to the working directory, or absolute. */
const char *run_data_dir(const Run *r);
/* -1 with a message naming the first non-finite term. */
int run_check_finite(const Run *r, int n, const char *const *names, const float *values);
/* Logs one row of training terms: the progress line every step; losses.csv and TensorBoard at
 * step 1, every LOG_INTERVAL steps and at the run's last step (the row of a step that the interval
 * skipped is kept, and run_close / run_log_flush writes it when no later step came). */
void run_log(Run *r, int n, const char *const *names, const float *values);
void run_log_flush(Run *r);
/* Installs SIGINT/SIGTERM handlers that ask the program to stop (once; run_start_clock does it
 * too); run_stop_signal names the signal received ("SIGINT", "SIGTERM") or gives NULL. */
void run_trap_signals(void);
const char *run_stop_signal(void);
/* Starts the training clock and installs the SIGINT/SIGTERM handlers (run_trap_signals). */
void run_start_clock(Run *r);
/* For a run stopped before its first step that resumed nothing (a pretraining stopped while it
 * computes its feature cache): closes it and removes what run_open wrote (run_dir_wipe: logs,
 * config.json, tensorboard/, vocab.txt; cache/ stays), so that the same command starts it again.
 * A run with a step or a resume is only closed. 0, or -1 with err_msg(). */
int run_discard_unstarted(Run *r);
/* 1 when the loop should stop after this step: a signal, --max-steps, or --max-minutes; `why` gets
 * the reason. Collective in a data-parallel run: the ranks agree, so that they stop together. */
int run_should_stop(const Run *r, const RunArgs *a, const char **why);
/* EXTRA.ZSL_TRAIN_CLASSES_ONLY (true zero-shot): the ZSL class head knows only the training
 * classes. run_class_setup sets mc->num_classes to their count and fills r->class_map (CUB id ->
 * 1-based index among the training classes); run_map_classes rewrites a batch's ids in place (the
 * DAMSM class masks only compare ids, so they are unchanged). Without the option both do nothing. */
struct ModelConfig;
void run_class_setup(Run *r, const Cub *cub, struct ModelConfig *mc);
void run_map_classes(const Run *r, int64_t *class_ids, int B);
/* State common to both programs, for state.json (with world_size, the number of ranks). */
cJSON *run_state(const Run *r);
/* Writes a file of the run (atomic) under out/. */
int run_write_text(const Run *r, const char *name, const char *text);
/* A checkpoint's random streams, n per rank (one per micro-batch lane, EXTRA.GRAD_ACCUM): "rng"
 * (rank 0's first: a single process of one lane reads it), and with more than one stream in all
 * "rng_streams", every one in slot order (rank r's lane j at r * n + j). run_put_rng is collective
 * (it gathers them to rank 0; st is NULL on the other ranks); run_get_rng reads this rank's n. */
void run_put_rng(cJSON *st, const Rng *rng, int n);
int run_get_rng(const cJSON *st, Rng *rng, int n);

#endif
