/* arith.h: element-wise arithmetic with broadcasting, reductions, exp/log/clamp.
 * Tape-level ops return a new tensor on the tape and record their backward; see src/ops/README.md
 * for the op contract. */
#ifndef ATTNGAN_OPS_ARITH_H
#define ATTNGAN_OPS_ARITH_H

#include "../core/core.h"

/* Binary ops broadcast as PyTorch does (shapes aligned at the end, size-1 dims expand). */
Tensor *op_add(Tape *tp, Tensor *a, Tensor *b);
Tensor *op_sub(Tape *tp, Tensor *a, Tensor *b);
Tensor *op_mul(Tape *tp, Tensor *a, Tensor *b);
Tensor *op_div(Tape *tp, Tensor *a, Tensor *b);
Tensor *op_scale(Tape *tp, Tensor *x, float s);          /* s * x */
Tensor *op_add_scalar(Tape *tp, Tensor *x, float s);     /* x + s */
Tensor *op_exp(Tape *tp, Tensor *x);
Tensor *op_log(Tape *tp, Tensor *x);
/* clamp to [lo, hi] (use -INFINITY / INFINITY for one side); gradient 1 inside, 0 where clamped
 * (PyTorch: at lo <= x <= hi inclusive the gradient passes). */
Tensor *op_clamp(Tape *tp, Tensor *x, float lo, float hi);
/* Reductions over one dim (negative counts from the end) or over everything (0-d result). */
Tensor *op_sum(Tape *tp, Tensor *x, int dim, int keepdim);
Tensor *op_mean(Tape *tp, Tensor *x, int dim, int keepdim);
Tensor *op_sum_all(Tape *tp, Tensor *x);
Tensor *op_mean_all(Tape *tp, Tensor *x);

/* ---- Kernels. Backward adds (+=) into every gradient it is given and skips NULL ones. */

/* Broadcast layout of a binary op: the output's dims with size-1 dims dropped and neighbours
 * merged where both operands allow it, and per dim the element stride of a and b (0 where that
 * operand is expanded). Made by broadcast_plan(); kernels walk the output in this layout. */
typedef struct BroadcastPlan {
    int ndim;                               /* >= 1 */
    int64_t shape[TENSOR_MAX_DIMS];
    int64_t sa[TENSOR_MAX_DIMS], sb[TENSOR_MAX_DIMS];
    int64_t n, na, nb;                      /* elements of out, a, b */
} BroadcastPlan;

/* PyTorch's broadcast of shape_a (ndim_a) and shape_b (ndim_b): writes the result's rank and
 * shape into out_ndim / out_shape and the walk into p. Returns 0, or -1 if the shapes do not
 * broadcast (or the result has more than TENSOR_MAX_DIMS dims). */
int broadcast_plan(BroadcastPlan *p, int *out_ndim, int *out_shape, int ndim_a, const int *shape_a, int ndim_b,
                   const int *shape_b);

typedef enum BinaryOp { BINARY_ADD, BINARY_SUB, BINARY_MUL, BINARY_DIV } BinaryOp;

/* out (p->n) = a (p->na) OP b (p->nb), both expanded to the output as p says */
void binary_forward(float *out, const float *a, const float *b, const BroadcastPlan *p, BinaryOp op);
/* da (p->na) += dout (p->n) * d out / d a, summed over a's expanded dims (in double); db alike */
void binary_backward(float *da, float *db, const float *dout, const float *a, const float *b, const BroadcastPlan *p,
                     BinaryOp op);

/* out (n) = s * inp (n);  dinp (n) += s * dout (n) */
void scale_forward(float *out, const float *inp, float s, int64_t n);
void scale_backward(float *dinp, const float *dout, float s, int64_t n);
/* out (n) = inp (n) + s;  dinp (n) += dout (n) */
void add_scalar_forward(float *out, const float *inp, float s, int64_t n);
void add_scalar_backward(float *dinp, const float *dout, int64_t n);
/* out (n) = exp(inp (n));  dinp (n) += dout (n) * out (n) */
void exp_forward(float *out, const float *inp, int64_t n);
void exp_backward(float *dinp, const float *dout, const float *out, int64_t n);
/* out (n) = log(inp (n));  dinp (n) += dout (n) / inp (n) */
void log_forward(float *out, const float *inp, int64_t n);
void log_backward(float *dinp, const float *dout, const float *inp, int64_t n);
/* out (n) = min(max(inp (n), lo), hi), NaN kept;  dinp (n) += dout (n) where lo <= inp <= hi */
void clamp_forward(float *out, const float *inp, float lo, float hi, int64_t n);
void clamp_backward(float *dinp, const float *dout, const float *inp, float lo, float hi, int64_t n);

/* A reduction over one dim views the input as (OUTER, D, INNER) and the output as (OUTER, INNER).
 * out (OUTER, INNER) = sum_d inp (OUTER, D, INNER), accumulated in double; mean divides by D.
 * dinp (OUTER, D, INNER) += dout (OUTER, INNER) (mean: / D). */
void sum_forward(float *out, const float *inp, int64_t OUTER, int64_t D, int64_t INNER);
void sum_backward(float *dinp, const float *dout, int64_t OUTER, int64_t D, int64_t INNER);
void mean_forward(float *out, const float *inp, int64_t OUTER, int64_t D, int64_t INNER);
void mean_backward(float *dinp, const float *dout, int64_t OUTER, int64_t D, int64_t INNER);
/* out (1) = sum (or mean) of inp (n) in double, independent of the thread count;
 * dinp (n) += dout[0] (mean: / n) */
void sum_all_forward(float *out, const float *inp, int64_t n);
void sum_all_backward(float *dinp, const float *dout, int64_t n);
void mean_all_forward(float *out, const float *inp, int64_t n);
void mean_all_backward(float *dinp, const float *dout, int64_t n);


/* ---- CUDA twins (src/ops/cuda/arith.cu, built by `make CUDA=1`): the contracts above over device
 * pointers, on the backend's stream (cu_stream), without synchronising. The broadcast plan p is
 * host memory (read on the host, passed to the kernels by value); sum_all / mean_all write their
 * result to a device float and read dout[0] on the device. Sums run in double, one block (fixed
 * tree) or one thread per output: bitwise the same run to run. */
void binary_forward_cuda(float *out, const float *a, const float *b, const BroadcastPlan *p /* host */, BinaryOp op);
void binary_backward_cuda(float *da, float *db, const float *dout, const float *a, const float *b,
                          const BroadcastPlan *p /* host */, BinaryOp op);
void scale_forward_cuda(float *out, const float *inp, float s, int64_t n);
void scale_backward_cuda(float *dinp, const float *dout, float s, int64_t n);
void add_scalar_forward_cuda(float *out, const float *inp, float s, int64_t n);
void add_scalar_backward_cuda(float *dinp, const float *dout, int64_t n);
void exp_forward_cuda(float *out, const float *inp, int64_t n);
void exp_backward_cuda(float *dinp, const float *dout, const float *out, int64_t n);
void log_forward_cuda(float *out, const float *inp, int64_t n);
void log_backward_cuda(float *dinp, const float *dout, const float *inp, int64_t n);
void clamp_forward_cuda(float *out, const float *inp, float lo, float hi, int64_t n);
void clamp_backward_cuda(float *dinp, const float *dout, const float *inp, float lo, float hi, int64_t n);
void sum_forward_cuda(float *out, const float *inp, int64_t OUTER, int64_t D, int64_t INNER);
void sum_backward_cuda(float *dinp, const float *dout, int64_t OUTER, int64_t D, int64_t INNER);
void mean_forward_cuda(float *out, const float *inp, int64_t OUTER, int64_t D, int64_t INNER);
void mean_backward_cuda(float *dinp, const float *dout, int64_t OUTER, int64_t D, int64_t INNER);
void sum_all_forward_cuda(float *out, const float *inp, int64_t n);
void sum_all_backward_cuda(float *dinp, const float *dout, int64_t n);
void mean_all_forward_cuda(float *out, const float *inp, int64_t n);
void mean_all_backward_cuda(float *dinp, const float *dout, int64_t n);

#endif
