/* profile.h: a tiny per-op profiler (calls, wall time, FLOPs, bytes), forward and backward apart.
 *
 * Off by default; profile_enable(1) turns it on for every thread. When off, a hook costs one
 * relaxed atomic load and a branch.
 *
 * How ops are seen:
 *  - forward: each tape-level op (src/ops/<family>.c, `op_<name>`) starts with PROFILE_OP_BEGIN(),
 *    which stamps the time in a thread-local slot; tape_record(), which every op calls once after
 *    its forward kernel (in no_grad mode too), closes the interval and books it under the op's
 *    name. Ops do not nest. An op that forgets PROFILE_OP_BEGIN() is still counted (calls, FLOPs,
 *    bytes) with zero time; profile_missing_begin() counts such calls.
 *  - backward: tape.c times each node's backward function (and the zeroing of the non-leaf
 *    gradients, booked as "tape_grad_alloc").
 *  - FLOPs (1 multiply-add = 2 FLOP, as ../shared/reference/ref_attngan.py counts them): conv2d,
 *    linear and bmm from their shapes; their backward counts one forward's worth for dX when the
 *    input requires grad and one for dW (or the second operand of bmm) when that does. Ops whose
 *    count the shapes do not give (bilstm: the packed lengths) report it with
 *    PROFILE_OP_FLOPS(n) before tape_record (forward) or inside their backward function.
 *    Everything else (BN, activations, pooling, resampling, softmax, losses, shape ops) counts 0.
 *  - bytes: approximate traffic, 4 x (elements of the inputs + outputs) forward; backward adds the
 *    output gradient read and one write per input gradient computed.
 * Accumulation takes a mutex (only when on), so several threads (the server) may profile at once.
 */
#ifndef ATTNGAN_PROFILE_H
#define ATTNGAN_PROFILE_H

#include "tape.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

enum { PROFILE_FWD = 0, PROFILE_BWD = 1 };

extern atomic_int profile_on_flag;
static inline int profile_on(void) { return atomic_load_explicit(&profile_on_flag, memory_order_relaxed); }

#define PROFILE_OP_BEGIN() do { if (profile_on()) profile_fwd_begin(); } while (0)
#define PROFILE_OP_FLOPS(expr) do { if (profile_on()) profile_set_flops((double)(expr)); } while (0)

typedef struct ProfileStat {
    int64_t calls;
    double ms, flops, bytes;
} ProfileStat;

#define PROFILE_NAME_LEN 40
typedef struct ProfileRow {
    char op[PROFILE_NAME_LEN];
    ProfileStat s[2];              /* PROFILE_FWD, PROFILE_BWD */
} ProfileRow;

void profile_enable(int on);
/* Forgets every row, details too (the on/off state is kept). */
void profile_reset(void);
/* Copies up to max rows (in first-seen order); returns the number of rows. */
int profile_rows(ProfileRow *rows, int max);
/* Sum over all rows of one direction. */
ProfileStat profile_total(int dir);
/* The stat of one op in one direction (zeros if never seen). */
ProfileStat profile_get(const char *op, int dir);
/* Op calls booked without a PROFILE_OP_BEGIN (their time is 0). */
int64_t profile_missing_begin(void);

/* The tables, per iteration: for each direction the ops sorted by time, with calls, ms, % of
 * the step, GFLOP, GFLOP/s, MB moved and GB/s, then the ops' total and the rest of the step
 * ("not in ops": optimizers, EMA, glue). step_ms is the measured time of the profiled
 * iterations together, iters their number. */
void profile_print(FILE *f, double step_ms, int iters);

/* ---- details: a second table, of kernel calls inside the ops (oneDNN convolutions by direction,
 * shape and algorithm: conv2d.c books every call while profiling is on). Its time is also inside
 * the op rows above, so it is printed apart, never added to the step. */
#define PROFILE_DETAIL_LEN 72
typedef struct ProfileDetail {
    char key[PROFILE_DETAIL_LEN];
    int64_t calls;
    double ms, flops;
} ProfileDetail;
void profile_detail_add(const char *key, double ms, double flops);
/* Copies up to max rows (first-seen order); returns the number of rows. */
int profile_details(ProfileDetail *rows, int max);
/* The `top` rows by time, per iteration: calls, ms, % of the step, GFLOP, GFLOP/s; then how much
 * of the step they and the rest of the rows take. Nothing when there are no rows. */
void profile_print_details(FILE *f, const char *title, double step_ms, int iters, int top);

/* ---- hooks (tape.c and src/ops) */
double profile_now_ms(void);
void profile_fwd_begin(void);
void profile_fwd_end(const char *op, int n_in, Tensor *const *in, int n_out, Tensor *const *out);
void profile_bwd_end(const Node *nd, double t0_ms);
/* FLOPs of the op being run on this thread, replacing the shape-derived count. */
void profile_set_flops(double flops);
/* Books one call of `op` directly. */
void profile_add(const char *op, int dir, double ms, double flops, double bytes);

#endif
