/* tape.c: the autograd tape; see tape.h. */
#include "tape.h"
#include "error.h"
#include "profile.h"

#include <stdlib.h>
#include <string.h>

void tape_init(Tape *tp) {
    memset(tp, 0, sizeof *tp);
    arena_init(&tp->arena, 16u << 20);
}

void tape_free(Tape *tp) {
    arena_free(&tp->arena);
    free(tp->nodes);
    memset(tp, 0, sizeof *tp);
}

void tape_reset(Tape *tp) {
    tp->n_nodes = 0;
    arena_reset(&tp->arena);
}

void tape_no_grad_begin(Tape *tp) { tp->no_grad_depth++; }
void tape_no_grad_end(Tape *tp) {
    CHECK(tp->no_grad_depth > 0, "unbalanced tape_no_grad_end");
    tp->no_grad_depth--;
}

void *tape_alloc(Tape *tp, size_t bytes) { return arena_alloc(&tp->arena, bytes); }
void *tape_calloc(Tape *tp, size_t bytes) { return arena_calloc(&tp->arena, bytes); }

Tensor *tape_new(Tape *tp, int ndim, const int *shape) {
    Tensor *t = arena_calloc(&tp->arena, sizeof *t);
    tensor_set_shape(t, ndim, shape);
    t->data = arena_alloc(&tp->arena, (size_t)t->n * sizeof(float));
    return t;
}

Tensor *tape_zeros(Tape *tp, int ndim, const int *shape) {
    Tensor *t = tape_new(tp, ndim, shape);
    memset(t->data, 0, (size_t)t->n * sizeof(float));
    return t;
}

Tensor *tape_leaf(Tape *tp, int ndim, const int *shape) {
    Tensor *t = tape_zeros(tp, ndim, shape);
    t->grad = arena_calloc(&tp->arena, (size_t)t->n * sizeof(float));
    t->requires_grad = true;
    t->is_leaf = true;
    return t;
}

Tensor *tape_detach(Tape *tp, Tensor *x) {
    Tensor *t = arena_alloc(&tp->arena, sizeof *t);
    *t = *x;
    t->grad = NULL;
    t->requires_grad = false;
    t->is_leaf = true;
    return t;
}

Node *tape_record(Tape *tp, const char *op, BackwardFn fn, int n_in, Tensor *const *in,
                  int n_out, Tensor *const *out) {
    CHECK(n_in >= 0 && n_out >= 1, "op %s: %d inputs, %d outputs", op, n_in, n_out);
    if (profile_on()) profile_fwd_end(op, n_in, in, n_out, out); /* every op calls this once, after its forward */
    if (!tape_grad_enabled(tp)) return NULL;
    int any = 0;
    for (int i = 0; i < n_in; i++) any |= in[i] && in[i]->requires_grad;
    if (!any) return NULL;
    if (tp->n_nodes == tp->cap_nodes) {
        tp->cap_nodes = tp->cap_nodes ? tp->cap_nodes * 2 : 256;
        tp->nodes = xrealloc(tp->nodes, (size_t)tp->cap_nodes * sizeof(Node));
    }
    Node *nd = &tp->nodes[tp->n_nodes++];
    memset(nd, 0, sizeof *nd);
    nd->op = op;
    nd->backward = fn;
    nd->tape = tp;
    nd->n_in = n_in;
    nd->n_out = n_out;
    nd->in = arena_alloc(&tp->arena, (size_t)(n_in ? n_in : 1) * sizeof(Tensor *));
    nd->out = arena_alloc(&tp->arena, (size_t)n_out * sizeof(Tensor *));
    for (int i = 0; i < n_in; i++) nd->in[i] = in[i];
    for (int k = 0; k < n_out; k++) {
        CHECK(!out[k]->is_leaf || !out[k]->requires_grad, "op %s writes into a leaf that requires grad", op);
        nd->out[k] = out[k];
        out[k]->requires_grad = true;
        out[k]->is_leaf = false;
    }
    return nd;
}

/* Gives every recorded output a zeroed gradient (non-leaf gradients restart at each pass). */
static void prepare_grads(Tape *tp) {
    for (int i = 0; i < tp->n_nodes; i++) {
        Node *nd = &tp->nodes[i];
        for (int k = 0; k < nd->n_out; k++) {
            Tensor *o = nd->out[k];
            if (!o->grad) o->grad = arena_alloc(&tp->arena, (size_t)o->n * sizeof(float));
            memset(o->grad, 0, (size_t)o->n * sizeof(float));
        }
    }
}

static void run_backward(Tape *tp) {
    for (int i = tp->n_nodes - 1; i >= 0; i--) {
        Node *nd = &tp->nodes[i];
        if (profile_on()) {
            double t0 = profile_now_ms();
            nd->backward(nd);
            profile_bwd_end(nd, t0);
        } else {
            nd->backward(nd);
        }
    }
}

void tape_backward(Tape *tp, Tensor *loss) {
    CHECK(loss->n == 1, "tape_backward needs a scalar loss, got %lld elements", (long long)loss->n);
    static const float one[1] = {1.0f};
    const float *seed = one;
    tape_backward_seeded(tp, 1, &loss, &seed);
}

void tape_backward_seeded(Tape *tp, int n, Tensor *const *outs, const float *const *seeds) {
    double t0 = profile_on() ? profile_now_ms() : 0.0;
    prepare_grads(tp);
    if (profile_on()) profile_add("tape_zero_grads", PROFILE_BWD, profile_now_ms() - t0, 0.0, 0.0);
    for (int j = 0; j < n; j++) {
        Tensor *o = outs[j];
        if (!o->requires_grad) continue; /* nothing upstream needs a gradient */
        CHECK(o->grad, "seeded tensor has no gradient buffer");
        for (int64_t e = 0; e < o->n; e++) o->grad[e] += seeds[j][e];
    }
    run_backward(tp);
}
