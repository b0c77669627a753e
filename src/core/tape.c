/* tape.c: the autograd tape; see tape.h. */
#include "tape.h"
#include "error.h"
#include "mempool.h"
#include "profile.h"

#include <stdlib.h>
#include <string.h>

void tape_init_on(Tape *tp, int device) {
    memset(tp, 0, sizeof *tp);
    arena_init(&tp->arena, 4u << 20);
    tp->device = device;
}

void tape_init(Tape *tp) { tape_init_on(tp, device_current()); }

/* a tensor's memory: the CPU's pool, or its device's */
static float *buf_alloc(int dev, int64_t n, int zero) {
    size_t bytes = (size_t)n * sizeof(float);
    if (dev == DEVICE_CPU) return zero ? mempool_calloc(bytes) : mempool_alloc(bytes);
    float *p = device_alloc(dev, bytes);
    if (zero) device_memset0(dev, p, bytes);
    return p;
}
static void buf_free(int dev, float *p) {
    if (dev == DEVICE_CPU) mempool_free(p);
    else device_free(dev, p);
}

static void free_dev_scratch(Tape *tp);

static void free_owned(Tape *tp) {
    for (int i = 0; i < tp->n_owned; i++) {
        Tensor *t = tp->owned[i];
        if (t->pool_data) buf_free(t->device, t->data);
        if (t->pool_grad) buf_free(t->device, t->grad);
        t->data = t->grad = NULL;
        t->pool_data = t->pool_grad = false;
    }
    tp->n_owned = 0;
}

void tape_free(Tape *tp) {
    free_owned(tp);
    free_dev_scratch(tp);
    free(tp->dev_scratch);
    arena_free(&tp->arena);
    free(tp->nodes);
    free(tp->owned);
    memset(tp, 0, sizeof *tp);
}

void tape_reset(Tape *tp) {
    free_owned(tp);
    free_dev_scratch(tp);
    tp->n_nodes = 0;
    tp->release_saved = 0;
    arena_reset(&tp->arena);
}

void tape_no_grad_begin(Tape *tp) { tp->no_grad_depth++; }
void tape_no_grad_end(Tape *tp) {
    CHECK(tp->no_grad_depth > 0, "unbalanced tape_no_grad_end");
    tp->no_grad_depth--;
}

void *tape_alloc(Tape *tp, size_t bytes) { return arena_alloc(&tp->arena, bytes); }

void *tape_dev_alloc(Tape *tp, size_t bytes) {
    if (tp->device == DEVICE_CPU) return arena_alloc(&tp->arena, bytes);
    if (tp->n_dev_scratch == tp->cap_dev_scratch) {
        tp->cap_dev_scratch = tp->cap_dev_scratch ? 2 * tp->cap_dev_scratch : 64;
        tp->dev_scratch = xrealloc(tp->dev_scratch, (size_t)tp->cap_dev_scratch * sizeof(void *));
    }
    void *p = device_alloc(tp->device, bytes ? bytes : 1);
    tp->dev_scratch[tp->n_dev_scratch++] = p;
    return p;
}

const void *tape_dev_copy(Tape *tp, const void *host, size_t bytes) {
    if (tp->device == DEVICE_CPU || !host) return host;
    void *p = tape_dev_alloc(tp, bytes);
    device_upload(tp->device, p, host, bytes);
    return p;
}

static void free_dev_scratch(Tape *tp) {
    for (int i = 0; i < tp->n_dev_scratch; i++) device_free(tp->device, tp->dev_scratch[i]);
    tp->n_dev_scratch = 0;
}
void *tape_calloc(Tape *tp, size_t bytes) { return arena_calloc(&tp->arena, bytes); }

static void own(Tape *tp, Tensor *t) {
    if (tp->n_owned == tp->cap_owned) {
        tp->cap_owned = tp->cap_owned ? 2 * tp->cap_owned : 1024;
        tp->owned = xrealloc(tp->owned, (size_t)tp->cap_owned * sizeof(Tensor *));
    }
    tp->owned[tp->n_owned++] = t;
    t->owner = tp;
}

Tensor *tape_new(Tape *tp, int ndim, const int *shape) {
    Tensor *t = arena_calloc(&tp->arena, sizeof *t);
    tensor_set_shape(t, ndim, shape);
    t->device = (uint8_t)tp->device;
    t->data = buf_alloc(tp->device, t->n, 0);
    t->pool_data = true;
    own(tp, t);
    return t;
}

Tensor *tape_zeros(Tape *tp, int ndim, const int *shape) {
    Tensor *t = tape_new(tp, ndim, shape);
    if (t->device) device_memset0(t->device, t->data, (size_t)t->n * sizeof(float));
    else memset(t->data, 0, (size_t)t->n * sizeof(float));
    return t;
}

Tensor *tape_leaf(Tape *tp, int ndim, const int *shape) {
    Tensor *t = tape_zeros(tp, ndim, shape);
    t->grad = buf_alloc(t->device, t->n, 1);
    t->pool_grad = true;
    t->requires_grad = true;
    t->is_leaf = true;
    return t;
}

Tensor *tape_keep(Tensor *t) {
    if (t) t->keep = true;
    return t;
}

Tensor *tape_detach(Tape *tp, Tensor *x) {
    Tensor *t = arena_alloc(&tp->arena, sizeof *t);
    *t = *x;
    t->grad = NULL;
    t->requires_grad = false;
    t->is_leaf = true;
    t->pool_data = t->pool_grad = t->keep = false; /* an alias: x owns the data, and x now lives until its reset */
    t->ref_node = 0;
    t->owner = NULL;
    x->keep = true;
    return t;
}

Tensor *tape_donate(Tensor *x) {
    if (x) x->donated = true;
    return x;
}

int tape_would_record(const Tape *tp, int n_in, Tensor *const *in) {
    if (!tape_grad_enabled(tp)) return 0;
    for (int i = 0; i < n_in; i++)
        if (in[i] && in[i]->requires_grad) return 1;
    return 0;
}

Tensor *tape_out_like(Tape *tp, Tensor *x, int recorded) { return tape_out_shaped(tp, x, recorded, x->ndim, x->shape); }

void tape_shrink(Tensor *y) {
    if (y->pool_data && y->device == DEVICE_CPU) mempool_shrink(y->data, (size_t)y->n * sizeof(float));
}

/* x's buffer may become an op's output: x was donated, is this tape's pool memory, and nothing
 * else can still read it (not kept, no node needs it, the op itself is not recorded). */
static int donatable(const Tape *tp, const Tensor *x, int recorded) {
    return !recorded && x->donated && x->owner == tp && x->pool_data && !x->keep && !x->ref_node;
}

/* A new output of the given shape over buf, which x hands over (x is dead from here on). */
static Tensor *take_buffer(Tape *tp, Tensor *x, float *buf, int ndim, const int *shape) {
    Tensor *y = arena_calloc(&tp->arena, sizeof *y);
    tensor_set_shape(y, ndim, shape);
    y->device = x->device;
    y->data = buf;
    y->pool_data = true;
    x->data = NULL;
    x->pool_data = false;
    own(tp, y);
    return y;
}

Tensor *tape_out_shaped(Tape *tp, Tensor *x, int recorded, int ndim, const int *shape) {
    if (!donatable(tp, x, recorded) || shape_numel(ndim, shape) > x->n) return tape_new(tp, ndim, shape);
    return take_buffer(tp, x, x->data, ndim, shape);
}

Tensor *tape_out_over(Tape *tp, Tensor *x, int recorded, int ndim, const int *shape) {
    if (!donatable(tp, x, recorded)) return NULL;
    int64_t n = shape_numel(ndim, shape);
    if (x->device != DEVICE_CPU) return NULL; /* the streaming kernels that use it are the CPU's */
    /* a larger result goes to a fresh block when a hole can hold it (growing in place would raise
     * the top while the hole stays unused), else grows x's block in place when the space after it is free */
    if (n > x->n && (mempool_has_hole((size_t)n * sizeof(float)) || !mempool_grow(x->data, (size_t)n * sizeof(float))))
        return NULL;
    return take_buffer(tp, x, x->data, ndim, shape);
}

int tape_mark(const Tape *tp) { return tp->n_owned; }

void tape_release(Tape *tp, int mark, int n_keep, Tensor *const *keep) {
    CHECK(mark >= 0 && mark <= tp->n_owned, "tape_release: mark %d outside 0..%d", mark, tp->n_owned);
    int w = mark;
    for (int i = mark; i < tp->n_owned; i++) {
        Tensor *t = tp->owned[i];
        int live = t->keep || t->ref_node;
        for (int k = 0; k < n_keep && !live; k++) live = keep[k] == t;
        if (live) {
            tp->owned[w++] = t;
            continue;
        }
        if (t->pool_data) buf_free(t->device, t->data);
        if (t->pool_grad) buf_free(t->device, t->grad);
        t->data = t->grad = NULL; /* a later use fails loudly */
        t->pool_data = t->pool_grad = false;
    }
    tp->n_owned = w;
}

Tensor *tape_release1(Tape *tp, int mark, Tensor *y) {
    tape_release(tp, mark, 1, &y);
    return y;
}

/* The ops that take nChw16c tensors (Tensor.blocked). */
static int blocked_ok(const char *op) {
    static const char *const ok[] = {"conv2d_bn_relu", "conv2d_bn_train_relu", "maxpool2d", "avgpool2d", "concat",
                                     "unblock16"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!strcmp(op, ok[i])) return 1;
    return 0;
}

Node *tape_record(Tape *tp, const char *op, BackwardFn fn, int n_in, Tensor *const *in,
                  int n_out, Tensor *const *out) {
    CHECK(n_in >= 0 && n_out >= 1, "op %s: %d inputs, %d outputs", op, n_in, n_out);
    for (int i = 0; i < n_in; i++)
        CHECK(!in[i] || !in[i]->blocked || blocked_ok(op),
              "op %s: input %d is in the blocked nChw16c layout, which only conv2d_bn_relu(_train), maxpool2d, avgpool2d, "
              "concat and unblock16 take (convert it with op_unblock16)", op, i);
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
    for (int i = 0; i < n_in; i++) {
        Tensor *t = in[i];
        nd->in[i] = t;
        if (!t) continue;
        if (t->owner == tp) {
            if (!t->ref_node) t->ref_node = tp->n_nodes;
        } else if (t->owner) {
            t->keep = true; /* another tape's tensor: its own tape cannot know about this node */
        }
    }
    for (int k = 0; k < n_out; k++) {
        CHECK(!out[k]->is_leaf || !out[k]->requires_grad, "op %s writes into a leaf that requires grad", op);
        nd->out[k] = out[k];
        out[k]->requires_grad = true;
        out[k]->is_leaf = false;
        if (out[k]->owner == tp && !out[k]->ref_node) out[k]->ref_node = tp->n_nodes;
    }
    return nd;
}

void tape_node_data_unused(Node *nd) {
    if (!nd) return;
    Tape *tp = nd->tape;
    int idx1 = (int)(nd - tp->nodes) + 1;
    for (int i = 0; i < nd->n_in; i++)
        if (nd->in[i] && nd->in[i]->owner == tp && nd->in[i]->ref_node == idx1) nd->in[i]->ref_node = 0;
    for (int k = 0; k < nd->n_out; k++)
        if (nd->out[k]->owner == tp && nd->out[k]->ref_node == idx1) nd->out[k]->ref_node = 0;
}

void tape_node_input_unused(Node *nd, int k) {
    if (!nd) return;
    CHECK(k >= 0 && k < nd->n_in, "tape_node_input_unused: input %d of %d", k, nd->n_in);
    Tensor *t = nd->in[k];
    if (t && t->owner == nd->tape && t->ref_node == (int)(nd - nd->tape->nodes) + 1) t->ref_node = 0;
}

/* A gradient buffer for a non-leaf t that has none yet: zeroed (zero), or left unwritten and
 * marked fresh, so that its first writer can overwrite it instead of adding to zeros
 * (tensor_grad_overwrite). */
static void give_grad(Tensor *t, int zero) {
    if (t->grad) return;
    CHECK(!t->is_leaf, "a leaf tensor%s%s requires grad but has no gradient buffer (a parameter set's gradients "
          "were released: call paramset_zero_grad first)", t->name ? " " : "", t->name ? t->name : "");
    t->grad = buf_alloc(t->device, t->n, zero);
    t->grad_fresh = !zero;
    t->pool_grad = true;
}

/* An output's gradient before its node's backward reads it: zeros if no consumer wrote it. */
static void settle_grad(Tensor *t) {
    if (t->grad_fresh) {
        if (t->device) device_memset0(t->device, t->grad, (size_t)t->n * sizeof(float));
        else memset(t->grad, 0, (size_t)t->n * sizeof(float));
        t->grad_fresh = false;
    }
}

static void drop_grad(Tensor *t) {
    if (t && t->pool_grad && !t->is_leaf) {
        buf_free(t->device, t->grad);
        t->grad = NULL;
        t->pool_grad = false;
        t->grad_fresh = false;
    }
}

#define RELEASE_MIN_BYTES (64 << 10)

/* What tape_backward_release may free: this tape's pool memory, not kept, not a leaf, and not
 * small (losses, logits and codes stay readable for the caller). */
static int releasable(const Tape *tp, const Tensor *t) {
    return t && t->owner == tp && t->pool_data && !t->keep && !t->is_leaf &&
           (size_t)t->n * sizeof(float) >= RELEASE_MIN_BYTES;
}

static void free_data(Tensor *t) {
    buf_free(t->device, t->data);
    t->data = NULL; /* a later use fails loudly */
    t->pool_data = false;
}

/* after node node1 - 1 ran backward: its tensors that no earlier node needs */
static void release_saved(Tape *tp, Tensor *t, int node1) {
    if (releasable(tp, t) && t->ref_node == node1) free_data(t);
}

static void run_backward(Tape *tp) {
    for (int i = tp->n_nodes - 1; i >= 0; i--) {
        Node *nd = &tp->nodes[i];
        int any = 0;
        for (int k = 0; k < nd->n_out; k++) any |= nd->out[k]->grad != NULL;
        if (any) { /* otherwise no gradient reaches this node: its inputs would get += 0 */
            double t0 = profile_on() ? profile_now_ms() : 0.0;
            for (int k = 0; k < nd->n_out; k++) {
                give_grad(nd->out[k], 1);
                settle_grad(nd->out[k]);
            }
            for (int j = 0; j < nd->n_in; j++)
                if (nd->in[j] && nd->in[j]->requires_grad) give_grad(nd->in[j], 0);
            if (profile_on()) profile_add("tape_grad_alloc", PROFILE_BWD, profile_now_ms() - t0, 0.0, 0.0);
            if (profile_on()) {
                double t1 = profile_now_ms();
                nd->backward(nd);
                profile_bwd_end(nd, t1);
            } else {
                nd->backward(nd);
            }
        }
        for (int k = 0; k < nd->n_out; k++) drop_grad(nd->out[k]);
        if (tp->release_saved) {
            for (int j = 0; j < nd->n_in; j++) release_saved(tp, nd->in[j], i + 1);
            for (int k = 0; k < nd->n_out; k++) release_saved(tp, nd->out[k], i + 1);
        }
    }
    /* non-leaf inputs whose producer is not on this tape */
    for (int i = 0; i < tp->n_nodes; i++)
        for (int j = 0; j < tp->nodes[i].n_in; j++) drop_grad(tp->nodes[i].in[j]);
}

void tape_backward(Tape *tp, Tensor *loss) {
    CHECK(loss->n == 1, "tape_backward needs a scalar loss, got %lld elements", (long long)loss->n);
    static const float one[1] = {1.0f};
    const float *seed = one;
    tape_backward_seeded(tp, 1, &loss, &seed);
}

void tape_backward_release(Tape *tp, Tensor *loss) {
    CHECK(!tp->release_saved, "tape_backward_release: this tape's saved tensors were already released");
    tp->release_saved = 1;
    /* what no node needs (unpinned: tape_node_data_unused, or never used by a node) goes first */
    for (int i = 0; i < tp->n_owned; i++)
        if (releasable(tp, tp->owned[i]) && !tp->owned[i]->ref_node && tp->owned[i] != loss) free_data(tp->owned[i]);
    tape_backward(tp, loss);
    tp->release_saved = 2; /* done: the saved tensors are gone */
}

void tape_backward_seeded(Tape *tp, int n, Tensor *const *outs, const float *const *seeds) {
    CHECK(tp->release_saved != 2, "a second backward over a tape whose saved tensors tape_backward_release freed");
    for (int j = 0; j < n; j++) {
        Tensor *o = outs[j];
        if (!o->requires_grad) continue; /* nothing upstream needs a gradient */
        if (!o->is_leaf) give_grad(o, 1);
        settle_grad(o);
        CHECK(o->grad, "seeded tensor has no gradient buffer");
        if (o->device == DEVICE_CPU) {
            for (int64_t e = 0; e < o->n; e++) o->grad[e] += seeds[j][e];
        } else { /* the same sum on the host: the seeds are host arrays */
            float *g = xmalloc((size_t)o->n * sizeof(float));
            device_download(o->device, g, o->grad, (size_t)o->n * sizeof(float));
            for (int64_t e = 0; e < o->n; e++) g[e] += seeds[j][e];
            device_upload(o->device, o->grad, g, (size_t)o->n * sizeof(float));
            free(g);
        }
    }
    run_backward(tp);
}
