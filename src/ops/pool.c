/* pool.c: 2-d max and average pooling (square kernel, floor mode), forward and backward on the CPU.
 *
 * Follows PyTorch's CPU kernels: a window is clipped to the image (max pooling never looks at
 * padding, which acts as -inf); the maximum is the first strictly greater value in row-major
 * window order (a NaN takes over); the average sums in float in row-major order and divides by
 * kernel^2 (count_include_pad) or by the clipped window's size. Loops run over the N*C planes
 * with OpenMP: each plane's output and gradient belong to one thread, so no atomics.
 */
#include "pool.h"
#include "../core/profile.h"

#include <math.h>

/* planes * pixels below this run on one thread */
#define POOL_PAR_MIN 32768

static int pool_out_size(int in, int kernel, int stride, int pad) { return (in + 2 * pad - kernel) / stride + 1; }

static void check_pool_args(const char *op, int H, int W, int kernel, int stride, int pad) {
    CHECK(kernel > 0 && stride > 0, "%s: kernel %d and stride %d must be positive", op, kernel, stride);
    CHECK(pad >= 0 && pad <= kernel / 2, "%s: pad %d must be in [0, kernel/2 = %d]", op, pad, kernel / 2);
    CHECK(H + 2 * pad >= kernel && W + 2 * pad >= kernel, "%s: kernel %d larger than the padded input (%d, %d) + 2*%d", op,
          kernel, H, W, pad);
}

/* A window [y0, y1) x [x0, x1) clipped to the image, and its unclipped size within the padded
 * image (PyTorch's count_include_pad divisor). */
typedef struct Window {
    int y0, y1, x0, x1;
    int padded_size;
} Window;

static Window pool_window(int oy, int ox, int H, int W, int kernel, int stride, int pad) {
    int y0 = oy * stride - pad, x0 = ox * stride - pad;
    int y1 = y0 + kernel < H + pad ? y0 + kernel : H + pad;
    int x1 = x0 + kernel < W + pad ? x0 + kernel : W + pad;
    Window w = {y0 < 0 ? 0 : y0, y1 < H ? y1 : H, x0 < 0 ? 0 : x0, x1 < W ? x1 : W, (y1 - y0) * (x1 - x0)};
    return w;
}

/* ---------------------------------------------------------------- max pooling */
/* out (OH, OW), idx (OH, OW) or NULL: one plane; src (H, W) */
static void maxpool_plane(float *out, int32_t *idx, const float *src, int H, int W, int kernel, int stride, int pad) {
    int OH = pool_out_size(H, kernel, stride, pad), OW = pool_out_size(W, kernel, stride, pad);
    for (int oy = 0; oy < OH; oy++)
        for (int ox = 0; ox < OW; ox++) {
            Window w = pool_window(oy, ox, H, W, kernel, stride, pad);
            int best = w.y0 * W + w.x0;
            float m = -INFINITY;
            for (int y = w.y0; y < w.y1; y++)
                for (int x = w.x0; x < w.x1; x++) {
                    float v = src[y * W + x];
                    if (v > m || isnan(v)) {
                        m = v;
                        best = y * W + x;
                    }
                }
            out[oy * OW + ox] = m;
            if (idx) idx[oy * OW + ox] = best;
        }
}

/* out (NC, OH, OW), idx (NC, OH, OW) or NULL, inp (NC, H, W) */
void maxpool2d_forward(float *out, int32_t *idx, const float *inp, int64_t NC, int H, int W, int kernel, int stride, int pad) {
    check_pool_args("maxpool2d", H, W, kernel, stride, pad);
    int64_t in_plane = (int64_t)H * W;
    int64_t out_plane = (int64_t)pool_out_size(H, kernel, stride, pad) * pool_out_size(W, kernel, stride, pad);
#pragma omp parallel for schedule(static) if (NC * in_plane > POOL_PAR_MIN)
    for (int64_t c = 0; c < NC; c++)
        maxpool_plane(out + c * out_plane, idx ? idx + c * out_plane : NULL, inp + c * in_plane, H, W, kernel, stride, pad);
}

/* dinp (NC, H, W) += dout (NC, OH, OW) at idx (NC, OH, OW), in row-major output order */
void maxpool2d_backward(float *dinp, const float *dout, const int32_t *idx, int64_t NC, int H, int W, int kernel,
                        int stride, int pad) {
    if (!dinp) return;
    CHECK(idx != NULL, "maxpool2d_backward: needs the forward's argmax indices");
    check_pool_args("maxpool2d", H, W, kernel, stride, pad);
    int64_t in_plane = (int64_t)H * W;
    int64_t out_plane = (int64_t)pool_out_size(H, kernel, stride, pad) * pool_out_size(W, kernel, stride, pad);
#pragma omp parallel for schedule(static) if (NC * in_plane > POOL_PAR_MIN)
    for (int64_t c = 0; c < NC; c++) {
        float *d = dinp + c * in_plane;             // (H, W)
        const float *g = dout + c * out_plane;      // (OH, OW)
        const int32_t *ix = idx + c * out_plane;    // (OH, OW)
        for (int64_t o = 0; o < out_plane; o++) d[ix[o]] += g[o];
    }
}

/* ---------------------------------------------------------------- average pooling */
static int avg_divisor(const Window *w, int count_include_pad) {
    return count_include_pad ? w->padded_size : (w->y1 - w->y0) * (w->x1 - w->x0);
}

/* out (OH, OW): one plane; src (H, W) */
static void avgpool_plane(float *out, const float *src, int H, int W, int kernel, int stride, int pad, int count_include_pad) {
    int OH = pool_out_size(H, kernel, stride, pad), OW = pool_out_size(W, kernel, stride, pad);
    for (int oy = 0; oy < OH; oy++)
        for (int ox = 0; ox < OW; ox++) {
            Window w = pool_window(oy, ox, H, W, kernel, stride, pad);
            float s = 0.0f;
            for (int y = w.y0; y < w.y1; y++)
                for (int x = w.x0; x < w.x1; x++) s += src[y * W + x];
            out[oy * OW + ox] = s / (float)avg_divisor(&w, count_include_pad);
        }
}

/* out (NC, OH, OW), inp (NC, H, W) */
void avgpool2d_forward(float *out, const float *inp, int64_t NC, int H, int W, int kernel, int stride, int pad,
                       int count_include_pad) {
    check_pool_args("avgpool2d", H, W, kernel, stride, pad);
    int64_t in_plane = (int64_t)H * W;
    int64_t out_plane = (int64_t)pool_out_size(H, kernel, stride, pad) * pool_out_size(W, kernel, stride, pad);
#pragma omp parallel for schedule(static) if (NC * in_plane > POOL_PAR_MIN)
    for (int64_t c = 0; c < NC; c++)
        avgpool_plane(out + c * out_plane, inp + c * in_plane, H, W, kernel, stride, pad, count_include_pad);
}

/* d (H, W) += g (OH, OW) spread evenly over each window: one plane */
static void avgpool_plane_backward(float *d, const float *g, int H, int W, int kernel, int stride, int pad, int count_include_pad) {
    int OH = pool_out_size(H, kernel, stride, pad), OW = pool_out_size(W, kernel, stride, pad);
    for (int oy = 0; oy < OH; oy++)
        for (int ox = 0; ox < OW; ox++) {
            Window w = pool_window(oy, ox, H, W, kernel, stride, pad);
            float delta = g[oy * OW + ox] / (float)avg_divisor(&w, count_include_pad);
            for (int y = w.y0; y < w.y1; y++)
                for (int x = w.x0; x < w.x1; x++) d[y * W + x] += delta;
        }
}

/* dinp (NC, H, W) += dout (NC, OH, OW) / divisor over each window */
void avgpool2d_backward(float *dinp, const float *dout, int64_t NC, int H, int W, int kernel, int stride, int pad,
                        int count_include_pad) {
    if (!dinp) return;
    check_pool_args("avgpool2d", H, W, kernel, stride, pad);
    int64_t in_plane = (int64_t)H * W;
    int64_t out_plane = (int64_t)pool_out_size(H, kernel, stride, pad) * pool_out_size(W, kernel, stride, pad);
#pragma omp parallel for schedule(static) if (NC * in_plane > POOL_PAR_MIN)
    for (int64_t c = 0; c < NC; c++)
        avgpool_plane_backward(dinp + c * in_plane, dout + c * out_plane, H, W, kernel, stride, pad, count_include_pad);
}

/* ---------------------------------------------------------------- tape-level ops */
typedef struct PoolCtx {
    int kernel, stride, pad, count_include_pad;
    int32_t *idx;   /* max pooling: (N*C, OH, OW) argmax within each plane */
} PoolCtx;

/* Checks x and the arguments; returns the output (N, C, OH, OW) on the tape. */
static Tensor *pool_output(Tape *tp, const char *op, const Tensor *x, int kernel, int stride, int pad) {
    char buf[64];
    CHECK(x != NULL, "%s: NULL input", op);
    CHECK(x->ndim == 4 && x->n > 0, "%s: expects a non-empty (N, C, H, W) input, got %s", op, tensor_shape_str(x, buf, sizeof buf));
    CHECK(kernel > 0 && stride > 0 && pad >= 0 && pad <= kernel / 2, "%s: kernel %d, stride %d, pad %d (need pad <= kernel/2)",
          op, kernel, stride, pad);
    int H = x->shape[2], W = x->shape[3];
    CHECK(H + 2 * pad >= kernel && W + 2 * pad >= kernel, "%s: kernel %d larger than input %s padded by %d", op, kernel,
          tensor_shape_str(x, buf, sizeof buf), pad);
    return TNEW(tp, x->shape[0], x->shape[1], pool_out_size(H, kernel, stride, pad), pool_out_size(W, kernel, stride, pad));
}

static PoolCtx *pool_ctx(Tape *tp, int kernel, int stride, int pad, int count_include_pad, int32_t *idx) {
    PoolCtx *c = tape_alloc(tp, sizeof *c);
    *c = (PoolCtx){kernel, stride, pad, count_include_pad, idx};
    return c;
}

static void maxpool2d_bwd(Node *nd) {
    Tensor *x = nd->in[0], *y = nd->out[0];
    const PoolCtx *c = nd->ctx;
    maxpool2d_backward(tensor_grad_or_null(x), y->grad, c->idx, (int64_t)x->shape[0] * x->shape[1], x->shape[2], x->shape[3],
                       c->kernel, c->stride, c->pad);
}

Tensor *op_maxpool2d(Tape *tp, Tensor *x, int kernel, int stride, int pad) {
    PROFILE_OP_BEGIN();
    Tensor *y = pool_output(tp, "maxpool2d", x, kernel, stride, pad);
    CHECK((int64_t)x->shape[2] * x->shape[3] <= INT32_MAX, "maxpool2d: plane %d x %d too large for int32 indices",
          x->shape[2], x->shape[3]);
    /* the argmax is kept only when the op will be recorded (same condition as tape_record) */
    int need_idx = tape_grad_enabled(tp) && x->requires_grad;
    int32_t *idx = need_idx ? tape_alloc(tp, (size_t)y->n * sizeof(int32_t)) : NULL;
    maxpool2d_forward(y->data, idx, x->data, (int64_t)x->shape[0] * x->shape[1], x->shape[2], x->shape[3], kernel, stride, pad);
    Tensor *in[] = {x}, *out[] = {y};
    Node *nd = TAPE_RECORD(tp, "maxpool2d", maxpool2d_bwd, in, out);
    CHECK((nd != NULL) == need_idx, "maxpool2d: recorded %d but saved indices %d", nd != NULL, need_idx);
    if (nd) nd->ctx = pool_ctx(tp, kernel, stride, pad, 1, idx);
    return y;
}

static void avgpool2d_bwd(Node *nd) {
    Tensor *x = nd->in[0], *y = nd->out[0];
    const PoolCtx *c = nd->ctx;
    avgpool2d_backward(tensor_grad_or_null(x), y->grad, (int64_t)x->shape[0] * x->shape[1], x->shape[2], x->shape[3],
                       c->kernel, c->stride, c->pad, c->count_include_pad);
}

Tensor *op_avgpool2d(Tape *tp, Tensor *x, int kernel, int stride, int pad, int count_include_pad) {
    PROFILE_OP_BEGIN();
    Tensor *y = pool_output(tp, "avgpool2d", x, kernel, stride, pad);
    avgpool2d_forward(y->data, x->data, (int64_t)x->shape[0] * x->shape[1], x->shape[2], x->shape[3], kernel, stride, pad,
                      count_include_pad);
    Tensor *in[] = {x}, *out[] = {y};
    Node *nd = TAPE_RECORD(tp, "avgpool2d", avgpool2d_bwd, in, out);
    if (nd) nd->ctx = pool_ctx(tp, kernel, stride, pad, count_include_pad, NULL);
    return y;
}
