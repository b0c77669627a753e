/* dist.h: data-parallel training across processes (docs/DISTRIBUTED.md).
 *
 * `mpirun -np N attngan pretrain|train ...` starts N ranks. Each trains on its own shard of every
 * epoch's batches (the loader's shard_count/shard_index, or the cached sampler's positions), and
 * before every optimizer step the ranks average the gradients of the weights that step updates
 * (dist_sync_grads, which adam_step and clip_grad_norm_sets call): a sum by MPI_Allreduce, then a
 * multiplication by 1/N. So the ranks hold the same weights after every step, and N ranks with
 * batch B take the steps of one process averaging the gradients of the same N micro-batches of B.
 * Batch norm normalises with each rank's own batch statistics (nn.DataParallel's per-replica
 * statistics); the running statistics are rank 0's, sent to the others at every step
 * (dist_sync_buffers), as DataParallel keeps those of its first replica.
 *
 * Rank 0 alone writes: logs, samples and checkpoints (the other ranks' stdout goes to /dev/null;
 * their errors still reach stderr). Each rank draws its own random stream
 * (dist_rank_seed): rank 0's is a single process's, so `mpirun -np 1` trains exactly as a plain run.
 *
 * Built with MPI (`make MPI=1`, the default where pkg-config finds Open MPI's ompi-c) the program
 * joins the job when an MPI launcher started it; otherwise, and in a build without MPI, the world
 * is one rank and every function here is a no-op. A build without MPI started by mpirun with more
 * than one rank refuses to run (each rank would train alone and write the same files). */
#ifndef ATTNGAN_DIST_H
#define ATTNGAN_DIST_H

#include "params.h"

#include <stddef.h>
#include <stdint.h>

/* Joins the MPI job if one started this process: 0, or -1 with err_msg(). Safe to call twice. */
int dist_init(void);
/* Leaves the job: MPI_Finalize after rc == 0; with rc != 0 the whole job is aborted (MPI_Abort),
 * so no rank waits forever for one that failed. Returns rc. */
int dist_finalize(int rc);
int dist_rank(void);
int dist_size(void);
static inline int dist_is_root(void) { return dist_rank() == 0; }
/* Whether this binary was built with MPI. */
int dist_has_mpi(void);

/* The seed of rank r's random stream: seed itself for rank 0. */
uint64_t dist_rank_seed(uint64_t seed, int rank);

/* Averages the gradients of ps's weights that require grad over the ranks (bucketed: one
 * allreduce per run of adjacent trainable weights), once between two paramset_zero_grad; a no-op
 * on one rank. */
void dist_sync_grads(ParamSet *ps);
/* Sends rank 0's float buffers (batch norm running statistics) to every rank. */
void dist_sync_buffers(ParamSet *ps);
/* 0 when every rank holds the same bits in ps's weights; else -1 with err_msg() naming the set and
 * the first rank that differs from rank 0. Collective. (Buffers may differ between syncs: a D's
 * running statistics move again in the G pass; no training computation reads them, and rank 0's
 * are the ones saved.) */
int dist_check_same(const ParamSet *ps, const char *when);
/* Whether ATTNGAN_DIST_CHECK=1: the trainers then call dist_check_same on every set after every
 * step (the tests' "identical weights after every step"). */
int dist_check_each_step(void);

/* Collectives on small host arrays (no-ops on one rank). */
void dist_max_int(int *x, int n);
void dist_sum_double(double *x, int n);
void dist_bcast(void *buf, size_t bytes);              /* from rank 0 */
/* Rank 0 receives every rank's `bytes` bytes into all (size * bytes), in rank order; on the other
 * ranks all may be NULL. */
void dist_gather(const void *mine, void *all, size_t bytes);
void dist_barrier(void);
/* Agrees on an outcome: rc where it is not 0, else -1 when another rank failed, so that all ranks
 * fail together. */
int dist_agree(int rc);

/* The gradient bytes this rank has allreduced so far, and in how many allreduces (buckets): the
 * training programs log them after step 1 (docs/DISTRIBUTED.md). */
int64_t dist_grad_bytes(void);
int64_t dist_grad_calls(void);
/* Logs, once, the gradient traffic of one step (call after each step; the first call prints, on rank 0). */
void dist_log_step_traffic(void);

#endif
