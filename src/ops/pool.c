/* pool.c: 2-d max and average pooling (square kernel, floor mode), forward and backward on the CPU.
 *
 * Follows PyTorch's CPU kernels: a window is clipped to the image (max pooling never looks at
 * padding, which acts as -inf); the maximum is the first strictly greater value in row-major
 * window order (a NaN takes over); the average sums in float in row-major order and divides by
 * kernel^2 (count_include_pad) or by the clipped window's size. Loops run over the N*C planes
 * with OpenMP: each plane's output and gradient belong to one thread, so no atomics.
 *
 * Speed: the inner loops run over output columns (vector loops without per-element branches), not
 * over one window at a time; three shapes of loop, all giving the one-window-at-a-time bits:
 *  - rows (any geometry): per output row, per window row and kernel column, one pass over the
 *    outputs whose tap is inside the image, with the stride a constant when it is 1 or 2;
 *  - flat (stride 1 with "same" padding, Inception's 3x3/1/1 average pools): the plane keeps its
 *    shape, so each tap is one pass over the whole plane, the column test a select;
 *  - 3x3 stride 2 unpadded max (Inception's): nine taps in one loop body, in registers.
 * The average's backward adds each input's contributions in row-major output order (taps
 * reversed), and no zero is ever added for a tap outside the image (a select keeps the old value),
 * so the gradient bits match too. tests/test_pool.c checks all of it against the one-window loops.
 */
#include "pool.h"
#include "../core/profile.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* ---------------------------------------------------------------- row geometry
 *
 * The kernels work an output row at a time with the output column innermost, so the inner loops
 * are plain vector loops over contiguous (stride 1) or evenly spaced (stride 2) input: for kernel
 * column kx, output column ox reads input column ox*stride - pad + kx, and the outputs whose window
 * keeps that column inside the image form one range [lo[kx], hi[kx]) (no per-element tests). Each
 * output still visits its window in row-major order (rows outer, kx inner) and each input gradient
 * receives its contributions in row-major output order, so the values are bit for bit those of the
 * one-window-at-a-time loops that PyTorch's CPU kernels run. */

typedef struct RowGeom {
    int OH, OW;
    int *lo, *hi;  /* (kernel): outputs [lo, hi) read column ox*stride - pad + kx inside the image */
    int *x0, *xn;  /* (OW): first in-image column of each window and the in-image width */
    int *xpad;     /* (OW): the window's width within the padded image (count_include_pad) */
} RowGeom;

static void row_geom_init(RowGeom *g, int H, int W, int kernel, int stride, int pad) {
    g->OH = pool_out_size(H, kernel, stride, pad);
    g->OW = pool_out_size(W, kernel, stride, pad);
    int *buf = xmalloc((size_t)(2 * kernel + 3 * g->OW) * sizeof(int));
    g->lo = buf, g->hi = buf + kernel, g->x0 = buf + 2 * kernel, g->xn = g->x0 + g->OW, g->xpad = g->xn + g->OW;
    for (int kx = 0; kx < kernel; kx++) {
        int lo = 0, hi = g->OW;
        while (lo < hi && lo * stride - pad + kx < 0) lo++;
        while (hi > lo && (hi - 1) * stride - pad + kx >= W) hi--;
        g->lo[kx] = lo, g->hi[kx] = hi;
    }
    for (int ox = 0; ox < g->OW; ox++) {
        Window w = pool_window(0, ox, H, W, kernel, stride, pad);
        g->x0[ox] = w.x0, g->xn[ox] = w.x1 - w.x0;
        int xs = ox * stride - pad, xe = xs + kernel < W + pad ? xs + kernel : W + pad;
        g->xpad[ox] = xe - xs;
    }
}

static void row_geom_free(RowGeom *g) { free(g->lo); }

/* The rows [y0, y1) of output row oy's windows, and their count within the padded image. */
static void pool_rows(int oy, int H, int kernel, int stride, int pad, int *y0, int *y1, int *ypad) {
    int ys = oy * stride - pad, ye = ys + kernel < H + pad ? ys + kernel : H + pad;
    *ypad = ye - ys;
    *y0 = ys < 0 ? 0 : ys;
    *y1 = ye < H ? ye : H;
}

/* Scratch for one plane at a time (per thread): n floats and n int32s. */
typedef struct PoolRows {
    float *f;
    int32_t *i;
} PoolRows;

/* Runs body over the NC planes with OpenMP; each thread gets its own PoolRows of n floats and ints. */
#define POOL_FOR_PLANES(NC, work, n, body)                                                                            \
    const int pool_par_ = (work) > POOL_PAR_MIN;                                                                     \
    _Pragma("omp parallel if (pool_par_)") {                                                                         \
        PoolRows rows = {xmalloc((size_t)(n) * sizeof(float) + 64), xmalloc((size_t)(n) * sizeof(int32_t) + 64)};   \
        _Pragma("omp for schedule(static)") for (int64_t c = 0; c < (NC); c++) { body; }                           \
        free(rows.f);                                                                                                \
        free(rows.i);                                                                                                \
    }

/* The inner loops over one output row, with the stride a constant where it is 1 or 2 (contiguous
 * or even/odd loads instead of a generic strided access). */
#define ROW_LOOP(stride, loop)                                                                                        \
    do {                                                                                                              \
        if ((stride) == 1) {                                                                                          \
            const int S_ = 1;                                                                                         \
            loop;                                                                                                     \
        } else if ((stride) == 2) {                                                                                   \
            const int S_ = 2;                                                                                         \
            loop;                                                                                                     \
        } else {                                                                                                      \
            const int S_ = (stride);                                                                                  \
            loop;                                                                                                     \
        }                                                                                                             \
    } while (0)

/* ---------------------------------------------------------------- max pooling */
/* out (OH, OW), idx (OH, OW) or NULL: one plane; src (H, W) */
static void maxpool_plane(float *restrict out, int32_t *restrict idx, const float *restrict src, int H, int W,
                          int kernel, int stride, int pad, const RowGeom *g, PoolRows rows) {
    const int OW = g->OW;
    float *restrict m = rows.f;
    int32_t *restrict best = rows.i;
    for (int oy = 0; oy < g->OH; oy++) {
        int y0, y1, ypad;
        pool_rows(oy, H, kernel, stride, pad, &y0, &y1, &ypad);
        for (int ox = 0; ox < OW; ox++) {
            m[ox] = -INFINITY;
            best[ox] = y0 * W + g->x0[ox];
        }
        for (int y = y0; y < y1; y++) {
            const float *restrict r = src + (int64_t)y * W;
            for (int kx = 0; kx < kernel; kx++) {
                const int lo = g->lo[kx], hi = g->hi[kx], off = kx - pad, base = y * W + off;
                /* the first strict maximum in row-major window order; a NaN takes over */
                if (idx)
                    ROW_LOOP(stride, for (int ox = lo; ox < hi; ox++) {
                        float v = r[ox * S_ + off];
                        int take = (v > m[ox]) | (v != v);
                        m[ox] = take ? v : m[ox];
                        best[ox] = take ? base + ox * S_ : best[ox];
                    });
                else
                    ROW_LOOP(stride, for (int ox = lo; ox < hi; ox++) {
                        float v = r[ox * S_ + off];
                        m[ox] = ((v > m[ox]) | (v != v)) ? v : m[ox];
                    });
            }
        }
        memcpy(out + (int64_t)oy * OW, m, (size_t)OW * sizeof(float));
        if (idx) memcpy(idx + (int64_t)oy * OW, best, (size_t)OW * sizeof(int32_t));
    }
}

/* Inception's 3x3 stride-2 unpadded max pool: no window is clipped, so each output's nine taps
 * run in one loop body (row-major order, the value and index kept in registers). */
static void maxpool_plane_k3s2(float *restrict out, int32_t *restrict idx, const float *restrict src, int W, int OH,
                               int OW) {
    for (int oy = 0; oy < OH; oy++) {
        const int y0 = 2 * oy;
        const float *restrict r0 = src + (int64_t)y0 * W, *restrict r1 = r0 + W, *restrict r2 = r1 + W;
        float *restrict o = out + (int64_t)oy * OW;
#define MAX_TAP(row, dy, dx)                                                                                          \
    do {                                                                                                              \
        float v = row[2 * ox + dx];                                                                                   \
        int take = (v > m) | (v != v);                                                                                \
        m = take ? v : m;                                                                                             \
        b = take ? (y0 + dy) * W + 2 * ox + dx : b;                                                                   \
    } while (0)
        if (idx) {
            int32_t *restrict ix = idx + (int64_t)oy * OW;
            for (int ox = 0; ox < OW; ox++) {
                float m = -INFINITY;
                int32_t b = y0 * W + 2 * ox;
                MAX_TAP(r0, 0, 0); MAX_TAP(r0, 0, 1); MAX_TAP(r0, 0, 2);
                MAX_TAP(r1, 1, 0); MAX_TAP(r1, 1, 1); MAX_TAP(r1, 1, 2);
                MAX_TAP(r2, 2, 0); MAX_TAP(r2, 2, 1); MAX_TAP(r2, 2, 2);
                o[ox] = m;
                ix[ox] = b;
            }
        } else {
            for (int ox = 0; ox < OW; ox++) {
                float m = -INFINITY;
                int32_t b = 0;
                MAX_TAP(r0, 0, 0); MAX_TAP(r0, 0, 1); MAX_TAP(r0, 0, 2);
                MAX_TAP(r1, 1, 0); MAX_TAP(r1, 1, 1); MAX_TAP(r1, 1, 2);
                MAX_TAP(r2, 2, 0); MAX_TAP(r2, 2, 1); MAX_TAP(r2, 2, 2);
                (void)b;
                o[ox] = m;
            }
        }
#undef MAX_TAP
    }
}

/* out (NC, OH, OW), idx (NC, OH, OW) or NULL, inp (NC, H, W) */
void maxpool2d_forward(float *out, int32_t *idx, const float *inp, int64_t NC, int H, int W, int kernel, int stride, int pad) {
    check_pool_args("maxpool2d", H, W, kernel, stride, pad);
    RowGeom g;
    row_geom_init(&g, H, W, kernel, stride, pad);
    int64_t in_plane = (int64_t)H * W, out_plane = (int64_t)g.OH * g.OW;
    if (kernel == 3 && stride == 2 && pad == 0) {
#pragma omp parallel for schedule(static) if (NC * in_plane > POOL_PAR_MIN)
        for (int64_t c = 0; c < NC; c++)
            maxpool_plane_k3s2(out + c * out_plane, idx ? idx + c * out_plane : NULL, inp + c * in_plane, W, g.OH, g.OW);
        row_geom_free(&g);
        return;
    }
    POOL_FOR_PLANES(NC, NC * in_plane, g.OW,
                    maxpool_plane(out + c * out_plane, idx ? idx + c * out_plane : NULL, inp + c * in_plane, H, W,
                                  kernel, stride, pad, &g, rows))
    row_geom_free(&g);
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

/* Stride 1 with "same" padding (2 pad = kernel - 1: Inception's 3x3/1/1) keeps the plane's shape,
 * so output i and input i share a flat index and each kernel tap (dy, dx) is one pass over the
 * whole plane: input i + (dy - pad) W + (dx - pad), over the range of outputs whose row stays in
 * the image, with the column test as a select (the value kept, not a zero added, so the bits are
 * the windowed loop's). Short rows (17, 8) then cost no per-row loop overhead. */
static int avg_flat(int H, int W, int kernel, int stride, int pad) {
    (void)H, (void)W;
    return stride == 1 && 2 * pad == kernel - 1;
}

/* For the flat path: col (H*W) = i % W and div (H*W) = each window's divisor, shared by all planes. */
typedef struct FlatGeom {
    int32_t *col;
    float *div;
} FlatGeom;

static void flat_geom_init(FlatGeom *f, int H, int W, int kernel, int stride, int pad, int count_include_pad,
                           const RowGeom *g) {
    int64_t P = (int64_t)H * W;
    f->col = xmalloc((size_t)P * sizeof(int32_t));
    f->div = xmalloc((size_t)P * sizeof(float));
    const int *xcnt = count_include_pad ? g->xpad : g->xn;
    for (int oy = 0; oy < H; oy++) {
        int y0, y1, ypad;
        pool_rows(oy, H, kernel, stride, pad, &y0, &y1, &ypad);
        int ycnt = count_include_pad ? ypad : y1 - y0;
        for (int ox = 0; ox < W; ox++) {
            f->col[(int64_t)oy * W + ox] = ox;
            f->div[(int64_t)oy * W + ox] = (float)(ycnt * xcnt[ox]);
        }
    }
}

static void flat_geom_free(FlatGeom *f) {
    free(f->col);
    free(f->div);
}

/* The flat outputs [*lo, *hi) whose tap (dy, dx) row lies in the image (and whose input index
 * i + off stays in the plane; the ones this cuts have their column outside anyway). */
static int flat_tap(int H, int W, int pad, int dy, int dx, int64_t *lo, int64_t *hi) {
    int64_t P = (int64_t)H * W, off = (int64_t)(dy - pad) * W + (dx - pad);
    int rlo = pad - dy > 0 ? pad - dy : 0, rhi = H + pad - dy < H ? H + pad - dy : H;
    *lo = (int64_t)rlo * W;
    *hi = (int64_t)rhi * W;
    if (*lo < -off) *lo = -off;
    if (*hi > P - off) *hi = P - off;
    return (int)off;
}

/* out (H, W) = the window averages of src (H, W): one plane, flat path */
static void avgpool_plane_flat(float *restrict out, const float *restrict src, int H, int W, int kernel, int pad,
                               const FlatGeom *f) {
    const int64_t P = (int64_t)H * W;
    const int32_t *restrict col = f->col;
    for (int64_t i = 0; i < P; i++) out[i] = 0.0f;
    for (int dy = 0; dy < kernel; dy++)
        for (int dx = 0; dx < kernel; dx++) {
            int64_t lo, hi;
            const int64_t off = flat_tap(H, W, pad, dy, dx, &lo, &hi);
            const int cx = dx - pad;
            for (int64_t i = lo; i < hi; i++) {
                float v = src[i + off];
                out[i] = (unsigned)(col[i] + cx) < (unsigned)W ? out[i] + v : out[i];
            }
        }
    const float *restrict div = f->div;
    for (int64_t i = 0; i < P; i++) out[i] = out[i] / div[i];
}

/* d (H, W) += g (H, W) spread over each window: one plane, flat path. The taps run backwards so
 * that each input receives its contributions in row-major output order. */
static void avgpool_plane_backward_flat(float *restrict d, const float *restrict g, int H, int W, int kernel, int pad,
                                        const FlatGeom *f, float *restrict delta) {
    const int64_t P = (int64_t)H * W;
    const int32_t *restrict col = f->col;
    const float *restrict div = f->div;
    for (int64_t i = 0; i < P; i++) delta[i] = g[i] / div[i];
    for (int dy = kernel - 1; dy >= 0; dy--)
        for (int dx = kernel - 1; dx >= 0; dx--) {
            int64_t lo, hi;
            const int64_t off = flat_tap(H, W, pad, dy, dx, &lo, &hi);
            const int cx = dx - pad;
            float *restrict dd = d + off;
            for (int64_t i = lo; i < hi; i++)
                dd[i] = (unsigned)(col[i] + cx) < (unsigned)W ? dd[i] + delta[i] : dd[i];
        }
}

/* out (OH, OW): one plane; src (H, W). Each sum runs over its window in row-major order from 0. */
static void avgpool_plane(float *restrict out, const float *restrict src, int H, int W, int kernel, int stride, int pad,
                          int count_include_pad, const RowGeom *g, PoolRows rows) {
    const int OW = g->OW;
    float *restrict acc = rows.f;
    const int *restrict xcnt = count_include_pad ? g->xpad : g->xn;
    for (int oy = 0; oy < g->OH; oy++) {
        int y0, y1, ypad;
        pool_rows(oy, H, kernel, stride, pad, &y0, &y1, &ypad);
        const int ycnt = count_include_pad ? ypad : y1 - y0;
        for (int ox = 0; ox < OW; ox++) acc[ox] = 0.0f;
        for (int y = y0; y < y1; y++) {
            const float *restrict r = src + (int64_t)y * W;
            for (int kx = 0; kx < kernel; kx++) {
                const int lo = g->lo[kx], hi = g->hi[kx], off = kx - pad;
                ROW_LOOP(stride, for (int ox = lo; ox < hi; ox++) acc[ox] += r[ox * S_ + off]);
            }
        }
        float *restrict o = out + (int64_t)oy * OW;
        for (int ox = 0; ox < OW; ox++) o[ox] = acc[ox] / (float)(ycnt * xcnt[ox]);
    }
}

/* out (NC, OH, OW), inp (NC, H, W) */
void avgpool2d_forward(float *out, const float *inp, int64_t NC, int H, int W, int kernel, int stride, int pad,
                       int count_include_pad) {
    check_pool_args("avgpool2d", H, W, kernel, stride, pad);
    RowGeom g;
    row_geom_init(&g, H, W, kernel, stride, pad);
    int64_t in_plane = (int64_t)H * W, out_plane = (int64_t)g.OH * g.OW;
    if (avg_flat(H, W, kernel, stride, pad)) {
        FlatGeom f;
        flat_geom_init(&f, H, W, kernel, stride, pad, count_include_pad, &g);
#pragma omp parallel for schedule(static) if (NC * in_plane > POOL_PAR_MIN)
        for (int64_t c = 0; c < NC; c++) avgpool_plane_flat(out + c * out_plane, inp + c * in_plane, H, W, kernel, pad, &f);
        flat_geom_free(&f);
    } else {
        POOL_FOR_PLANES(NC, NC * in_plane, g.OW,
                        avgpool_plane(out + c * out_plane, inp + c * in_plane, H, W, kernel, stride, pad,
                                      count_include_pad, &g, rows))
    }
    row_geom_free(&g);
}

/* d (H, W) += g (OH, OW) spread evenly over each window: one plane. Every input element receives its
 * contributions in row-major output order: output rows ascending, and within a row the kernel
 * columns descending (a later kx reaches the same input from an earlier output). */
static void avgpool_plane_backward(float *restrict d, const float *restrict gr, int H, int W, int kernel, int stride,
                                   int pad, int count_include_pad, const RowGeom *g, PoolRows rows) {
    const int OW = g->OW;
    float *restrict delta = rows.f;
    const int *restrict xcnt = count_include_pad ? g->xpad : g->xn;
    for (int oy = 0; oy < g->OH; oy++) {
        int y0, y1, ypad;
        pool_rows(oy, H, kernel, stride, pad, &y0, &y1, &ypad);
        const int ycnt = count_include_pad ? ypad : y1 - y0;
        const float *restrict gi = gr + (int64_t)oy * OW;
        for (int ox = 0; ox < OW; ox++) delta[ox] = gi[ox] / (float)(ycnt * xcnt[ox]);
        for (int y = y0; y < y1; y++) {
            float *restrict r = d + (int64_t)y * W;
            for (int kx = kernel - 1; kx >= 0; kx--) {
                const int lo = g->lo[kx], hi = g->hi[kx], off = kx - pad;
                /* the outputs of one pass touch distinct inputs */
                ROW_LOOP(stride, for (int ox = lo; ox < hi; ox++) r[ox * S_ + off] += delta[ox]);
            }
        }
    }
}

/* dinp (NC, H, W) += dout (NC, OH, OW) / divisor over each window */
void avgpool2d_backward(float *dinp, const float *dout, int64_t NC, int H, int W, int kernel, int stride, int pad,
                        int count_include_pad) {
    if (!dinp) return;
    check_pool_args("avgpool2d", H, W, kernel, stride, pad);
    RowGeom g;
    row_geom_init(&g, H, W, kernel, stride, pad);
    int64_t in_plane = (int64_t)H * W, out_plane = (int64_t)g.OH * g.OW;
    if (avg_flat(H, W, kernel, stride, pad)) {
        FlatGeom f;
        flat_geom_init(&f, H, W, kernel, stride, pad, count_include_pad, &g);
        POOL_FOR_PLANES(NC, NC * in_plane, in_plane,
                        avgpool_plane_backward_flat(dinp + c * in_plane, dout + c * out_plane, H, W, kernel, pad, &f,
                                                    rows.f))
        flat_geom_free(&f);
    } else {
        POOL_FOR_PLANES(NC, NC * in_plane, g.OW,
                        avgpool_plane_backward(dinp + c * in_plane, dout + c * out_plane, H, W, kernel, stride, pad,
                                               count_include_pad, &g, rows))
    }
    row_geom_free(&g);
}

/* ---------------------------------------------------------------- nChw16c (Tensor.blocked)
 *
 * The same pools over (NB, H, W, 16) blocks of 16 channels: each output takes its window's taps in
 * row-major order, 16 channels at a time, with the plane kernels' arithmetic (the first strict
 * maximum, a NaN takes over; the average sums from 0 and divides by the same count), and each
 * input gradient receives its contributions in row-major output order: the bits of the NCHW
 * kernels, in the other layout (tests/test_pool.c). Inception's shapes have their own loops (the
 * 3x3/2 max in AVX-512 registers, the interior of the 3x3/1/1 average unrolled). Both backward
 * passes gather per input (the max compares the saved argmax, the average adds quotients divided
 * once per output), so a fresh input gradient is written instead of zeroed and added to. */
#define BLK 16

/* the outputs [*lo, *hi) whose window (stride, pad, kernel) covers input index i of a side n_out */
static void covering(int i, int kernel, int stride, int pad, int n_out, int *lo, int *hi) {
    int a = i + pad - kernel + 1; /* o * stride >= a */
    *lo = a <= 0 ? 0 : (a + stride - 1) / stride;
    *hi = (i + pad) / stride + 1;
    if (*hi > n_out) *hi = n_out;
}

/* the divisor of an output's window */
static float avg_div(const Window *w, int count_include_pad) {
    return count_include_pad ? (float)w->padded_size : (float)((w->y1 - w->y0) * (w->x1 - w->x0));
}

#if defined(__AVX512F__)
#include <immintrin.h>

/* 3x3 stride 2 unpadded (Inception's): every window lies inside the image, its nine taps in
 * registers; the same choice as below (a strictly greater value or a NaN takes over) */
static void maxpool_blk_forward_k3s2(float *out, int32_t *idx, const float *inp, int64_t NB, int H, int W, int OH,
                                     int OW) {
#pragma omp parallel for schedule(static) if (NB * H * W * BLK > POOL_PAR_MIN)
    for (int64_t r = 0; r < NB * OH; r++) {
        int64_t b = r / OH;
        int oy = (int)(r % OH), y0 = 2 * oy;
        const float *src = inp + b * H * W * BLK;
        for (int ox = 0; ox < OW; ox++) {
            int x0 = 2 * ox;
            __m512 m = _mm512_set1_ps(-INFINITY);
            __m512i best = _mm512_set1_epi32(y0 * W + x0);
            for (int y = y0; y < y0 + 3; y++)
                for (int x = x0; x < x0 + 3; x++) {
                    __m512 v = _mm512_loadu_ps(src + ((int64_t)y * W + x) * BLK);
                    __mmask16 take = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
                    m = _mm512_mask_mov_ps(m, take, v);
                    best = _mm512_mask_mov_epi32(best, take, _mm512_set1_epi32(y * W + x));
                }
            int64_t o = ((b * OH + oy) * OW + ox) * BLK;
            _mm512_storeu_ps(out + o, m);
            if (idx) _mm512_storeu_si512((void *)(idx + o), best);
        }
    }
}
#endif

static void maxpool_blk_forward(float *out, int32_t *idx, const float *inp, int64_t NB, int H, int W, int kernel,
                                int stride, int pad, int OH, int OW) {
#if defined(__AVX512F__)
    if (kernel == 3 && stride == 2 && pad == 0) {
        maxpool_blk_forward_k3s2(out, idx, inp, NB, H, W, OH, OW);
        return;
    }
#endif
#pragma omp parallel for schedule(static) if (NB * H * W * BLK > POOL_PAR_MIN)
    for (int64_t r = 0; r < NB * OH; r++) {
        int64_t b = r / OH;
        int oy = (int)(r % OH);
        const float *src = inp + b * H * W * BLK;
        for (int ox = 0; ox < OW; ox++) {
            Window w = pool_window(oy, ox, H, W, kernel, stride, pad);
            float m[BLK];
            int32_t best[BLK];
            for (int l = 0; l < BLK; l++) m[l] = -INFINITY, best[l] = w.y0 * W + w.x0;
            for (int y = w.y0; y < w.y1; y++)
                for (int x = w.x0; x < w.x1; x++) {
                    const float *v = src + ((int64_t)y * W + x) * BLK;
                    int32_t at = y * W + x;
#pragma omp simd
                    for (int l = 0; l < BLK; l++) {
                        int take = (v[l] > m[l]) | (v[l] != v[l]);
                        m[l] = take ? v[l] : m[l];
                        best[l] = take ? at : best[l];
                    }
                }
            int64_t o = ((b * OH + oy) * OW + ox) * BLK;
            memcpy(out + o, m, sizeof m);
            if (idx) memcpy(idx + o, best, sizeof best);
        }
    }
}

/* The backward passes, gathered per input: the outputs whose window covers it, in row-major order
 * (the scatter's order, so its bits), add their gradient: all of them (the average, whose dout
 * holds the quotients), or those whose argmax idx is this input (the max). set: dinp is written
 * (the sum starts from zero), not added to. One input row r (of NB * H) per call; inlined into each
 * pass's own parallel loop with max a constant, so each gets its own vector loop. */
static inline __attribute__((always_inline)) void blk_gather_row(float *dinp, const float *dout, const int32_t *idx,
                                                                 int64_t r, int H, int W, int kernel, int stride,
                                                                 int pad, int OH, int OW, int set, const int max) {
    int64_t b = r / H;
    int y = (int)(r % H), oy0, oy1;
    covering(y, kernel, stride, pad, OH, &oy0, &oy1);
    const float *g = dout + b * OH * OW * BLK;
    const int32_t *ix = max ? idx + b * OH * OW * BLK : NULL;
    for (int x = 0; x < W; x++) {
        int ox0, ox1;
        covering(x, kernel, stride, pad, OW, &ox0, &ox1);
        float *d = dinp + ((b * H + y) * W + x) * BLK;
        const int32_t at = y * W + x;
        float acc[BLK];
        if (set) memset(acc, 0, sizeof acc);
        else memcpy(acc, d, sizeof acc);
        for (int oy = oy0; oy < oy1; oy++)
            for (int ox = ox0; ox < ox1; ox++) {
                const int64_t o = ((int64_t)oy * OW + ox) * BLK;
                if (max) {
#pragma omp simd
                    for (int l = 0; l < BLK; l++) acc[l] = ix[o + l] == at ? acc[l] + g[o + l] : acc[l];
                } else {
#pragma omp simd
                    for (int l = 0; l < BLK; l++) acc[l] += g[o + l];
                }
            }
        memcpy(d, acc, sizeof acc);
    }
}

static void maxpool_blk_backward(float *dinp, const float *dout, const int32_t *idx, int64_t NB, int H, int W, int kernel,
                                 int stride, int pad, int OH, int OW, int set) {
#pragma omp parallel for schedule(static) if (NB * H * W * BLK > POOL_PAR_MIN)
    for (int64_t r = 0; r < NB * H; r++) blk_gather_row(dinp, dout, idx, r, H, W, kernel, stride, pad, OH, OW, set, 1);
}

static void avgpool_blk_forward(float *out, const float *inp, int64_t NB, int H, int W, int kernel, int stride, int pad,
                                int count_include_pad, int OH, int OW) {
    /* 3x3 stride 1 "same" (Inception's): the interior windows are whole, their nine taps unrolled
     * in the same row-major order and divided by 9 either way */
    const int k3s1 = kernel == 3 && stride == 1 && pad == 1;
#pragma omp parallel for schedule(static) if (NB * H * W * BLK > POOL_PAR_MIN)
    for (int64_t r = 0; r < NB * OH; r++) {
        int64_t b = r / OH;
        int oy = (int)(r % OH);
        const float *src = inp + b * H * W * BLK;
        const int inner_row = k3s1 && oy >= 1 && oy < H - 1;
        for (int ox = 0; ox < OW; ox++) {
            if (inner_row && ox >= 1 && ox < W - 1) {
                const float *c = src + ((int64_t)oy * W + ox) * BLK;
                const float *t = c - (int64_t)W * BLK, *u = c + (int64_t)W * BLK;
                float *o = out + ((b * OH + oy) * OW + ox) * BLK;
#pragma omp simd
                for (int l = 0; l < BLK; l++) {
                    float a = 0.0f;
                    a += t[l - BLK], a += t[l], a += t[l + BLK];
                    a += c[l - BLK], a += c[l], a += c[l + BLK];
                    a += u[l - BLK], a += u[l], a += u[l + BLK];
                    o[l] = a / 9.0f;
                }
                continue;
            }
            Window w = pool_window(oy, ox, H, W, kernel, stride, pad);
            float acc[BLK] = {0};
            for (int y = w.y0; y < w.y1; y++)
                for (int x = w.x0; x < w.x1; x++) {
                    const float *v = src + ((int64_t)y * W + x) * BLK;
#pragma omp simd
                    for (int l = 0; l < BLK; l++) acc[l] += v[l];
                }
            float div = avg_div(&w, count_include_pad);
            float *o = out + ((b * OH + oy) * OW + ox) * BLK;
#pragma omp simd
            for (int l = 0; l < BLK; l++) o[l] = acc[l] / div;
        }
    }
}

/* Each output's gradient divided by its window's divisor, in place in dout (one division per
 * output, as PyTorch's kernel: grad_delta = gout / divisor), then gathered (set: dinp written).
 * dout is consumed. */
static void avgpool_blk_backward(float *dinp, float *dout, int64_t NB, int H, int W, int kernel, int stride, int pad,
                                 int count_include_pad, int OH, int OW, int set) {
    float *div = xmalloc((size_t)OH * OW * sizeof(float));
    for (int oy = 0; oy < OH; oy++)
        for (int ox = 0; ox < OW; ox++) {
            Window w = pool_window(oy, ox, H, W, kernel, stride, pad);
            div[oy * OW + ox] = avg_div(&w, count_include_pad);
        }
#pragma omp parallel for schedule(static) if (NB * OH * OW * BLK > POOL_PAR_MIN)
    for (int64_t r = 0; r < NB * OH; r++) {
        float *g = dout + r * OW * BLK;
        const float *dv = div + (r % OH) * OW;
        for (int ox = 0; ox < OW; ox++) {
#pragma omp simd
            for (int l = 0; l < BLK; l++) g[ox * BLK + l] = g[ox * BLK + l] / dv[ox];
        }
    }
    free(div);
#pragma omp parallel for schedule(static) if (NB * H * W * BLK > POOL_PAR_MIN)
    for (int64_t r = 0; r < NB * H; r++) blk_gather_row(dinp, dout, NULL, r, H, W, kernel, stride, pad, OH, OW, set, 0);
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
    CHECK(!x->blocked || x->shape[1] % 16 == 0, "%s: an nChw16c input needs channels %d a multiple of 16", op, x->shape[1]);
    Tensor *y = TNEW(tp, x->shape[0], x->shape[1], pool_out_size(H, kernel, stride, pad), pool_out_size(W, kernel, stride, pad));
    y->blocked = x->blocked;
    return y;
}

static PoolCtx *pool_ctx(Tape *tp, int kernel, int stride, int pad, int count_include_pad, int32_t *idx) {
    PoolCtx *c = tape_alloc(tp, sizeof *c);
    *c = (PoolCtx){kernel, stride, pad, count_include_pad, idx};
    return c;
}

static void maxpool2d_bwd(Node *nd) {
    Tensor *x = nd->in[0], *y = nd->out[0];
    const PoolCtx *c = nd->ctx;
    if (x->blocked) { /* written when it is the first gradient x receives */
        int set;
        float *dx = tensor_grad_overwrite(x, &set);
        if (dx) maxpool_blk_backward(dx, y->grad, c->idx, (int64_t)x->shape[0] * (x->shape[1] / BLK), x->shape[2],
                                     x->shape[3], c->kernel, c->stride, c->pad, y->shape[2], y->shape[3], set);
        return;
    }
    KERNEL(nd->tape->device, maxpool2d_backward, tensor_grad_or_null(x), y->grad, c->idx, (int64_t)x->shape[0] * x->shape[1], x->shape[2], x->shape[3],
                       c->kernel, c->stride, c->pad);
}

Tensor *op_maxpool2d(Tape *tp, Tensor *x, int kernel, int stride, int pad) {
    PROFILE_OP_BEGIN();
    Tensor *y = pool_output(tp, "maxpool2d", x, kernel, stride, pad);
    CHECK((int64_t)x->shape[2] * x->shape[3] <= INT32_MAX, "maxpool2d: plane %d x %d too large for int32 indices",
          x->shape[2], x->shape[3]);
    /* the argmax is kept only when the op will be recorded (same condition as tape_record) */
    int need_idx = tape_grad_enabled(tp) && x->requires_grad;
    int32_t *idx = need_idx ? tape_dev_alloc(tp, (size_t)y->n * sizeof(int32_t)) : NULL;
    if (x->blocked)
        maxpool_blk_forward(y->data, idx, x->data, (int64_t)x->shape[0] * (x->shape[1] / BLK), x->shape[2], x->shape[3],
                            kernel, stride, pad, y->shape[2], y->shape[3]);
    else
        KERNEL(tp->device, maxpool2d_forward, y->data, idx, x->data, (int64_t)x->shape[0] * x->shape[1], x->shape[2], x->shape[3], kernel,
                          stride, pad);
    Tensor *in[] = {x}, *out[] = {y};
    Node *nd = TAPE_RECORD(tp, "maxpool2d", maxpool2d_bwd, in, out);
    tape_node_data_unused(nd); /* backward reads the saved argmax only */
    CHECK((nd != NULL) == need_idx, "maxpool2d: recorded %d but saved indices %d", nd != NULL, need_idx);
    if (nd) nd->ctx = pool_ctx(tp, kernel, stride, pad, 1, idx);
    return y;
}

static void avgpool2d_bwd(Node *nd) {
    Tensor *x = nd->in[0], *y = nd->out[0];
    const PoolCtx *c = nd->ctx;
    if (x->blocked) { /* written when it is the first gradient x receives */
        int set;
        float *dx = tensor_grad_overwrite(x, &set);
        /* y's gradient is consumed in place (the tape drops it after this node) */
        if (dx) avgpool_blk_backward(dx, y->grad, (int64_t)x->shape[0] * (x->shape[1] / BLK), x->shape[2], x->shape[3],
                                     c->kernel, c->stride, c->pad, c->count_include_pad, y->shape[2], y->shape[3], set);
        return;
    }
    KERNEL(nd->tape->device, avgpool2d_backward, tensor_grad_or_null(x), y->grad, (int64_t)x->shape[0] * x->shape[1], x->shape[2], x->shape[3],
                       c->kernel, c->stride, c->pad, c->count_include_pad);
}

Tensor *op_avgpool2d(Tape *tp, Tensor *x, int kernel, int stride, int pad, int count_include_pad) {
    PROFILE_OP_BEGIN();
    Tensor *y = pool_output(tp, "avgpool2d", x, kernel, stride, pad);
    if (x->blocked)
        avgpool_blk_forward(y->data, x->data, (int64_t)x->shape[0] * (x->shape[1] / BLK), x->shape[2], x->shape[3], kernel,
                            stride, pad, count_include_pad, y->shape[2], y->shape[3]);
    else
        KERNEL(tp->device, avgpool2d_forward, y->data, x->data, (int64_t)x->shape[0] * x->shape[1], x->shape[2], x->shape[3], kernel, stride,
                          pad, count_include_pad);
    Tensor *in[] = {x}, *out[] = {y};
    Node *nd = TAPE_RECORD(tp, "avgpool2d", avgpool2d_bwd, in, out);
    tape_node_data_unused(nd);
    if (nd) nd->ctx = pool_ctx(tp, kernel, stride, pad, count_include_pad, NULL);
    return y;
}
