/* lanes.h: gradient accumulation over micro-batches (EXTRA.GRAD_ACCUM), as data-parallel ranks do
 * it (core/dist.h), inside one process.
 *
 * A step of EXTRA.GRAD_ACCUM = A lanes runs every stage of the iteration for the A micro-batches
 * one after the other, and averages their gradients before each optimizer step. Lane j of rank r
 * is the micro-batch slot s = r * A + j of the step's W * A (its data shard and its random stream
 * dist_rank_seed(seed, s)), so W ranks of A lanes take the steps of one process of W * A lanes:
 * `mpirun -np 2` with batch B and one process with EXTRA.GRAD_ACCUM 2 and batch B end with the same
 * bits (tests/test_dist.sh).
 *
 * The lanes keep what a rank keeps apart: each lane has its own copy of every set's buffers
 * (batch norm running statistics and batch counts), swapped in by lanes_enter; before a set's
 * optimizer step the gradient of each lane (computed into zeroed gradients) is summed in lane
 * order, multiplied by 1/A (lanes_grad_add, lanes_grad_finish), and lane 0's running statistics
 * are given to every lane (lanes_sync_buffers), as rank 0's are sent to every rank. With A = 1
 * every function is a no-op. */
#ifndef ATTNGAN_LANES_H
#define ATTNGAN_LANES_H

#include "../core/core.h"

#define LANES_MAX_SETS 16
#define LANES_MAX 64

typedef struct Lanes {
    int n;                           /* A: micro-batches per step in this process */
    int cur;                         /* the lane whose buffers the sets hold */
    int n_sets;
    ParamSet *sets[LANES_MAX_SETS];
    float *bufs[LANES_MAX_SETS];     /* n x stride floats per set (host): each lane's buffers */
    int64_t stride[LANES_MAX_SETS];  /* a lane's floats of the set: its float buffers, then its
                                        integer ones (num_batches_tracked) as doubles */
    float *acc[LANES_MAX_SETS];      /* n_values floats per set (host): the gradients' running sum */
} Lanes;

void lanes_init(Lanes *L, int n);
/* Registers a set whose gradients and buffers the lanes keep apart; every lane starts from its
 * buffers as they are now (call it after loading or resuming). */
void lanes_add_set(Lanes *L, ParamSet *ps);
/* Every lane's buffers become the sets' current ones (after a resume loaded them). */
void lanes_reset_buffers(Lanes *L);
void lanes_free(Lanes *L);
/* Makes lane j current: the sets' buffers are saved to the current lane and lane j's loaded. */
void lanes_enter(Lanes *L, int j);
/* After lane j's backward into ps's zeroed gradients: lane 0 starts the sum, the others add. */
void lanes_grad_add(Lanes *L, ParamSet *ps, int j);
/* ps's gradients become the lanes' mean (sum * (1 / A)), ready for clipping and the optimizer. */
void lanes_grad_finish(Lanes *L, ParamSet *ps);
/* Before ps's optimizer step: lane 0's buffers of ps go to every lane (and into ps). */
void lanes_sync_buffers(Lanes *L, ParamSet *ps);

#endif
