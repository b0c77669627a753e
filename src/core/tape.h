/* tape.h: reverse-mode autograd over coarse ops, and the per-step arena that feeds it.
 *
 * An op computes its output in forward, then calls tape_record(). When grad mode is on and any
 * input requires a gradient, this appends a Node (inputs, outputs, backward function, saved
 * context) and marks the outputs as requiring gradients. tape_backward() gives every recorded
 * output a zeroed gradient buffer, seeds the loss with 1 and runs the nodes in reverse order.
 *
 * Semantics (as PyTorch's):
 *  - leaves (parameters, user inputs) accumulate across backward passes; non-leaf gradients are
 *    recomputed from zero by each pass, so two passes over the same tape double leaf gradients;
 *  - tape_no_grad_begin/end nest; inside, nothing is recorded and outputs do not require grad;
 *  - tape_detach() shares data and cuts the graph;
 *  - a frozen parameter (requires_grad = false) gets no gradient, while the op still computes
 *    the gradient of its other inputs (an op never looks at whether the output requires grad,
 *    only at each input's requires_grad).
 *
 * Memory. Tensor data and gradients come from the pool (mempool.h); headers and ops' saved
 * contexts from the tape's bump arena. A tensor's data is freed at the latest by tape_reset,
 * and earlier in three ways:
 *  - tape_release(tp, mark, keep...): the tensors allocated since tape_mark() that no recorded
 *    node needs and that are not kept die now (a node of tape_node_data_unused needs none). Network code brackets each block with it, so a
 *    forward without gradients (sampling, a frozen encoder) holds one block's activations at a
 *    time;
 *  - gradients: a non-leaf tensor gets its gradient buffer when the first node that uses it
 *    runs backward, and loses it once its own node has run (only leaves keep gradients);
 *  - tape_backward_release(): the last backward over a tape first frees the tensors no node
 *    needs, then each saved tensor after the earliest node that uses it, so the step's
 *    activations shrink as the gradients grow.
 *    Leaves, tensors under 64 KiB (losses, logits, codes) and kept ones survive for the caller; any
 *    other tensor must not be read after it.
 * A tensor passed to tape_detach, or used by a node of another tape, is kept. */
#ifndef ATTNGAN_TAPE_H
#define ATTNGAN_TAPE_H

#include "arena.h"
#include "tensor.h"

typedef struct Node Node;
typedef void (*BackwardFn)(Node *nd);

struct Node {
    const char *op;                 /* op name, for profiles and messages */
    BackwardFn backward;
    int n_in, n_out;
    Tensor **in;                    /* inputs (entries may be NULL); backward writes tensor_grad_or_null(in[i]) */
    Tensor **out;                   /* outputs; out[k]->grad is the incoming gradient */
    void *ctx;                      /* op-specific saved values (arena memory) */
    struct Tape *tape;
};

typedef struct Tape {
    Arena arena;
    Node *nodes;
    int n_nodes, cap_nodes;
    int no_grad_depth;
    Tensor **owned;                 /* tensors whose pool memory this tape frees, in allocation order */
    int n_owned, cap_owned;
    int release_saved;              /* set while tape_backward_release runs */
    int device;                     /* DeviceKind: where its tensors' data and gradients live */
    void **dev_scratch;             /* device blocks of tape_dev_alloc, freed by tape_reset */
    int n_dev_scratch, cap_dev_scratch;
} Tape;

/* A tape on the current device (device_current), or on the given one. */
void tape_init(Tape *tp);
void tape_init_on(Tape *tp, int device);
void tape_free(Tape *tp);
/* Forget all nodes and free every arena tensor (end of a step). Leaf gradients are untouched. */
void tape_reset(Tape *tp);

static inline int tape_grad_enabled(const Tape *tp) { return tp->no_grad_depth == 0; }
void tape_no_grad_begin(Tape *tp);
void tape_no_grad_end(Tape *tp);

/* A new arena tensor, uninitialised (tape_new) or zeroed (tape_zeros). No gradient. */
Tensor *tape_new(Tape *tp, int ndim, const int *shape);
Tensor *tape_zeros(Tape *tp, int ndim, const int *shape);
#define TNEW(tp, ...) tape_new((tp), NDIMS(__VA_ARGS__), (int[]){__VA_ARGS__})
#define TZEROS(tp, ...) tape_zeros((tp), NDIMS(__VA_ARGS__), (int[]){__VA_ARGS__})
/* A leaf on the arena with a zeroed gradient buffer (an input we differentiate with respect to). */
Tensor *tape_leaf(Tape *tp, int ndim, const int *shape);
/* Same data, no graph, no gradient. */
Tensor *tape_detach(Tape *tp, Tensor *x);
/* Arena scratch for ops (saved values). Host memory: for what kernels read, see tape_dev_alloc. */
void *tape_alloc(Tape *tp, size_t bytes);
void *tape_calloc(Tape *tp, size_t bytes);
/* Scratch that kernels read or write (saved statistics, an op's index or mask arrays), on the
 * tape's device, alive until tape_reset: the arena on the CPU, the device's pool elsewhere.
 * tape_dev_copy returns a copy of `bytes` of host memory there; on the CPU it returns `host`
 * itself (no copy: the caller keeps it alive while the tape needs it, as before). */
void *tape_dev_alloc(Tape *tp, size_t bytes);
const void *tape_dev_copy(Tape *tp, const void *host, size_t bytes);

/* Lifetime scopes: everything allocated after tape_mark() that no node uses dies at
 * tape_release(), except the listed tensors (and kept ones). Returns nothing; the kept tensors
 * stay valid. tape_release1 is the one-result form and returns it. */
int tape_mark(const Tape *tp);
void tape_release(Tape *tp, int mark, int n_keep, Tensor *const *keep);
Tensor *tape_release1(Tape *tp, int mark, Tensor *y);
/* Never free t (or its data) before tape_reset. Returns t. */
Tensor *tape_keep(Tensor *t);

/* In-place when nothing is recorded: tape_donate(x) says the caller will not read x again. An op
 * that can write its output over its input asks tape_out_like(tp, x, recorded) for the output: it
 * gets x's buffer when x was donated, belongs to this tape, is not kept, no node uses it and the op
 * itself will not be recorded (x->data is then NULL: read the input pointer first); otherwise a new
 * tensor of x's shape. tape_would_record says whether an op with these inputs gets a node. */
Tensor *tape_donate(Tensor *x);
Tensor *tape_out_like(Tape *tp, Tensor *x, int recorded);
/* The same for an output of another shape with no more elements than x (GLU halves its input):
 * when it takes x's buffer, call tape_shrink(y) once the result is written. */
Tensor *tape_out_shaped(Tape *tp, Tensor *x, int recorded, int ndim, const int *shape);
void tape_shrink(Tensor *y);
/* For an op that streams its result over its input in chunks (a convolution without gradients):
 * x's buffer, grown in place to the output's size when that is larger, as the output; NULL when x
 * is not donatable (see tape_out_like), when a larger output fits a free hole of the pool (a fresh
 * block there keeps the resident size down, where growing x's block would raise it), or when x's
 * block cannot grow: the caller then allocates as usual. */
Tensor *tape_out_over(Tape *tp, Tensor *x, int recorded, int ndim, const int *shape);
int tape_would_record(const Tape *tp, int n_in, Tensor *const *in);

/* Records an op if grad mode is on and some input requires grad; returns the node (fill ctx)
 * or NULL. Inputs may be NULL (optional bias) and are skipped. */
Node *tape_record(Tape *tp, const char *op, BackwardFn fn, int n_in, Tensor *const *in,
                  int n_out, Tensor *const *out);
#define TAPE_RECORD(tp, op, fn, ins, outs) \
    tape_record((tp), (op), (fn), (int)(sizeof(ins) / sizeof(ins[0])), (ins), (int)(sizeof(outs) / sizeof(outs[0])), (outs))

/* For an op whose backward reads no tensor's data (only shapes, gradients and its own ctx): the
 * node does not keep its inputs and outputs alive, so a release scope may free them once no other
 * node needs them. Call right after TAPE_RECORD, on the node it returned. */
void tape_node_data_unused(Node *nd);
/* The same for one input only (softmax's backward reads its output, not its input). */
void tape_node_input_unused(Node *nd, int k);

/* Backward from a scalar loss (seed 1). */
void tape_backward(Tape *tp, Tensor *loss);
/* The same, as the last backward over this tape: saved tensors are freed as soon as no earlier
 * node needs them (see "Memory" above). A second backward over the tape is then an error. */
void tape_backward_release(Tape *tp, Tensor *loss);
/* Backward from several outputs with given seed gradients (same shapes as the outputs). */
void tape_backward_seeded(Tape *tp, int n, Tensor *const *outs, const float *const *seeds);

#endif
