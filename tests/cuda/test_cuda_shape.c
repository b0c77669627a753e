/* test_cuda_shape.c: the CUDA twins of src/ops/shape.c's kernels (concat, slice, repeat,
 * broadcast, transpose, reshape, forward and backward) against the CPU kernels on seeded random
 * inputs (make test-cuda; built only with CUDA=1). The forward passes and most backward passes move
 * values; the repeat / broadcast backward sums run in the CPU's order. The bound is TOL_EW
 * everywhere (the bits are expected to match). Shapes include the networks': channel concat of
 * feature maps and of (B, 100 + c) codes, D's (B, E, 1, 1) -> (B, E, 4, 4) repeat, DAMSM's
 * (1, E, n) -> (B, E, n) repeat, the (B, E, L) transposes. Backward gradients start from random
 * values (the += contract); NULL gradients are skipped. Without a CUDA device it skips visibly. */
#include "cuda_test.h"
#include "../../src/ops/shape.h"
#include "../../src/ops/cuda/cuda_ops.h"

#define MAXP 8

/* n parts of sizes[i] along a dim between outer and inner; null_part >= 0 gets no gradient; dup:
 * parts 0 and 1 share one gradient buffer (a tensor concatenated with itself) */
static void concat_case(const char *what, int n, const int *sizes, int64_t outer, int64_t inner, int null_part, int dup) {
    float *x[MAXP], *dx[MAXP], *dX[MAXP], *dDx[MAXP];
    int64_t total = 0, len[MAXP];
    for (int i = 0; i < n; i++) {
        len[i] = outer * sizes[i] * inner;
        total += len[i];
        x[i] = rnd(len[i], -2, 2, 300 + i);
        dx[i] = rnd(len[i], -1, 1, 320 + i);
        dX[i] = up(x[i], len[i]);
        dDx[i] = up(dx[i], len[i]);
    }
    float *dy = rnd(total, -1, 1, 340), *y = xmalloc((size_t)total * sizeof(float));
    float *dDy = up(dy, total), *dY = cu_alloc((size_t)total * sizeof(float));
    const float *ins[MAXP], *dins[MAXP];
    float *g[MAXP], *dg[MAXP];
    for (int i = 0; i < n; i++) {
        ins[i] = x[i], dins[i] = dX[i];
        g[i] = i == null_part ? NULL : dx[i];
        dg[i] = i == null_part ? NULL : dDx[i];
    }
    if (dup) g[1] = g[0], dg[1] = dDx[0]; /* sizes[0] == sizes[1] */
    concat_forward(y, ins, sizes, n, outer, inner);
    concat_backward(g, dy, sizes, n, outer, inner);
    concat_forward_cuda(dY, dins, sizes, n, outer, inner);
    concat_backward_cuda(dg, dDy, sizes, n, outer, inner);
    char w[128];
    snprintf(w, sizeof w, "concat %s fwd", what), check(w, dY, y, total, TOL_EW);
    for (int i = 0; i < n; i++) {
        snprintf(w, sizeof w, "concat %s dx[%d]%s", what, i, i == null_part ? " (NULL, unchanged)" : dup && i == 1 ? " (shared, unchanged)" : " (added)");
        check(w, dDx[i], dx[i], len[i], TOL_EW);
        cu_free(dX[i]);
        free(x[i]), free(dx[i]);
    }
    cu_free(dDy);
    free(dy), free(y);
}

static void slice_case(int64_t outer, int size, int start, int len, int64_t inner) {
    int64_t nx = outer * size * inner, ny = outer * len * inner;
    float *x = rnd(nx, -2, 2, 350), *dy = rnd(ny, -1, 1, 351), *dx = rnd(nx, -1, 1, 352);
    float *y = xmalloc((size_t)(ny > 0 ? ny : 1) * sizeof(float));
    float *dX = up(x, nx), *dDy = up(dy, ny), *dDx = up(dx, nx), *dY = cu_alloc((size_t)(ny > 0 ? ny : 1) * sizeof(float));
    slice_forward(y, x, outer, size, start, len, inner);
    slice_backward(dx, dy, outer, size, start, len, inner);
    slice_forward_cuda(dY, dX, outer, size, start, len, inner);
    slice_backward_cuda(dDx, dDy, outer, size, start, len, inner);
    slice_backward_cuda(NULL, dDy, outer, size, start, len, inner);
    char w[128];
    snprintf(w, sizeof w, "slice (%lld,%d,%lld)[%d:%d] fwd", (long long)outer, size, (long long)inner, start, start + len);
    check(w, dY, y, ny, TOL_EW);
    snprintf(w, sizeof w, "slice (%lld,%d,%lld)[%d:%d] dx (added)", (long long)outer, size, (long long)inner, start, start + len);
    check(w, dDx, dx, nx, TOL_EW);
    cu_free(dX), cu_free(dDy);
    free(x), free(dy), free(dx), free(y);
}

static int64_t prod(int n, const int *s) {
    int64_t p = 1;
    for (int i = 0; i < n; i++) p *= s[i];
    return p;
}

static void shape_str(char *buf, size_t cap, int n, const int *s) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, cap - k, "(");
    for (int i = 0; i < n && k < cap; i++) k += (size_t)snprintf(buf + k, cap - k, i ? ",%d" : "%d", s[i]);
    if (k < cap) snprintf(buf + k, cap - k, ")");
}

static void repeat_case(int ndim, const int *in_shape, const int *reps) {
    int out_shape[TENSOR_MAX_DIMS];
    for (int d = 0; d < ndim; d++) out_shape[d] = in_shape[d] * reps[d];
    int64_t nx = prod(ndim, in_shape), ny = prod(ndim, out_shape);
    float *x = rnd(nx, -2, 2, 360), *dy = rnd(ny, -1, 1, 361), *dx = rnd(nx, -1, 1, 362);
    float *y = xmalloc((size_t)(ny > 0 ? ny : 1) * sizeof(float));
    float *dX = up(x, nx), *dDy = up(dy, ny), *dDx = up(dx, nx), *dY = cu_alloc((size_t)(ny > 0 ? ny : 1) * sizeof(float));
    repeat_forward(y, x, ndim, in_shape, reps);
    repeat_backward(dx, dy, ndim, in_shape, reps);
    repeat_forward_cuda(dY, dX, ndim, in_shape, reps);
    repeat_backward_cuda(dDx, dDy, ndim, in_shape, reps);
    repeat_backward_cuda(NULL, dDy, ndim, in_shape, reps);
    char a[64], b[64], w[160];
    shape_str(a, sizeof a, ndim, in_shape), shape_str(b, sizeof b, ndim, reps);
    snprintf(w, sizeof w, "repeat %s x %s fwd", a, b), check(w, dY, y, ny, TOL_EW);
    snprintf(w, sizeof w, "repeat %s x %s dx (added)", a, b), check(w, dDx, dx, nx, TOL_EW);
    cu_free(dX), cu_free(dDy);
    free(x), free(dy), free(dx), free(y);
}

static void broadcast_case(int ndim, const int *in_shape, const int *out_shape) {
    int64_t nx = prod(ndim, in_shape), ny = prod(ndim, out_shape);
    float *x = rnd(nx, -2, 2, 370), *dy = rnd(ny, -1, 1, 371), *dx = rnd(nx, -1, 1, 372);
    float *y = xmalloc((size_t)(ny > 0 ? ny : 1) * sizeof(float));
    float *dX = up(x, nx), *dDy = up(dy, ny), *dDx = up(dx, nx), *dY = cu_alloc((size_t)(ny > 0 ? ny : 1) * sizeof(float));
    broadcast_forward(y, x, ndim, out_shape, in_shape);
    broadcast_backward(dx, dy, ndim, out_shape, in_shape);
    broadcast_forward_cuda(dY, dX, ndim, out_shape, in_shape);
    broadcast_backward_cuda(dDx, dDy, ndim, out_shape, in_shape);
    broadcast_backward_cuda(NULL, dDy, ndim, out_shape, in_shape);
    char a[64], b[64], w[160];
    shape_str(a, sizeof a, ndim, in_shape), shape_str(b, sizeof b, ndim, out_shape);
    snprintf(w, sizeof w, "broadcast %s->%s fwd", a, b), check(w, dY, y, ny, TOL_EW);
    snprintf(w, sizeof w, "broadcast %s->%s dx (added)", a, b), check(w, dDx, dx, nx, TOL_EW);
    cu_free(dX), cu_free(dDy);
    free(x), free(dy), free(dx), free(y);
}

static void transpose_case(int64_t A, int P, int64_t M, int Q, int64_t C) {
    int64_t n = A * P * M * Q * C;
    float *x = rnd(n, -2, 2, 380), *dy = rnd(n, -1, 1, 381), *dx = rnd(n, -1, 1, 382);
    float *y = xmalloc((size_t)n * sizeof(float));
    float *dX = up(x, n), *dDy = up(dy, n), *dDx = up(dx, n), *dY = cu_alloc((size_t)n * sizeof(float));
    transpose_forward(y, x, A, P, M, Q, C);
    transpose_backward(dx, dy, A, P, M, Q, C);
    transpose_forward_cuda(dY, dX, A, P, M, Q, C);
    transpose_backward_cuda(dDx, dDy, A, P, M, Q, C);
    transpose_backward_cuda(NULL, dDy, A, P, M, Q, C);
    char w[128];
    snprintf(w, sizeof w, "transpose (%lld,%d,%lld,%d,%lld) fwd", (long long)A, P, (long long)M, Q, (long long)C);
    check(w, dY, y, n, TOL_EW);
    snprintf(w, sizeof w, "transpose (%lld,%d,%lld,%d,%lld) dx (added)", (long long)A, P, (long long)M, Q, (long long)C);
    check(w, dDx, dx, n, TOL_EW);
    cu_free(dX), cu_free(dDy);
    free(x), free(dy), free(dx), free(y);
}

static void reshape_case(int64_t n) {
    float *x = rnd(n, -2, 2, 390), *dy = rnd(n, -1, 1, 391), *dx = rnd(n, -1, 1, 392);
    float *y = xmalloc((size_t)n * sizeof(float));
    float *dX = up(x, n), *dDy = up(dy, n), *dDx = up(dx, n), *dY = cu_alloc((size_t)n * sizeof(float));
    reshape_forward(y, x, n);
    reshape_backward(dx, dy, n);
    reshape_forward_cuda(dY, dX, n);
    reshape_backward_cuda(dDx, dDy, n);
    reshape_backward_cuda(NULL, dDy, n);
    check("reshape fwd", dY, y, n, TOL_EW);
    check("reshape dx (added)", dDx, dx, n, TOL_EW);
    cu_free(dX), cu_free(dDy);
    free(x), free(dy), free(dx), free(y);
}

int main(void) {
    if (!cuda_test_begin("test_cuda_shape")) return test_end();
    /* along dim 1 of (B, C_i, H, W): G's cat((h, c), 1), the Inception mixed blocks' branches */
    concat_case("dim1 (8, 32|64, 64x64)", 2, (int[]){32, 64}, 8, 64 * 64, -1, 0);
    concat_case("dim1 (4, 64|96|96|32, 35x35)", 4, (int[]){64, 96, 96, 32}, 4, 35 * 35, -1, 0);
    concat_case("dim1 (13, 100|17) codes", 2, (int[]){100, 17}, 13, 1, -1, 0);
    concat_case("dim1 (5, 7|3|11, 9) NULL part", 3, (int[]){7, 3, 11}, 5, 9, 1, 0);
    concat_case("dim1 (5, 6|6|4, 3) shared grad", 3, (int[]){6, 6, 4}, 5, 3, -1, 1);
    concat_case("dim0 (3|0|5, 77)", 3, (int[]){3, 0, 5}, 1, 77, -1, 0);
    concat_case("last dim (11, 1 x 7)", 7, (int[]){1, 1, 1, 1, 1, 1, 1}, 11, 1, 2, 0);
    slice_case(6, 17, 3, 9, 25);
    slice_case(1, 100, 0, 100, 1);
    slice_case(13, 117, 100, 17, 1);
    slice_case(4, 10, 5, 0, 8);
    repeat_case(4, (int[]){6, 256, 1, 1}, (int[]){1, 1, 4, 4});   /* D's condition code */
    repeat_case(3, (int[]){1, 256, 18}, (int[]){12, 1, 1});       /* DAMSM's words */
    repeat_case(3, (int[]){3, 1, 5}, (int[]){2, 3, 1});
    repeat_case(2, (int[]){7, 5}, (int[]){3, 4});
    repeat_case(1, (int[]){1}, (int[]){300001});                  /* one element to many */
    repeat_case(2, (int[]){4, 9}, (int[]){1, 1});
    broadcast_case(4, (int[]){1, 64, 1, 1}, (int[]){8, 64, 16, 16}); /* a bias-like expand */
    broadcast_case(4, (int[]){1, 5, 1, 7}, (int[]){3, 5, 4, 7});
    broadcast_case(3, (int[]){9, 1, 1}, (int[]){9, 13, 11});
    broadcast_case(3, (int[]){1, 1, 1}, (int[]){2, 3, 4});
    broadcast_case(2, (int[]){6, 10}, (int[]){6, 10});
    broadcast_case(5, (int[]){2, 1, 3, 1, 4}, (int[]){2, 5, 3, 6, 4});
    transpose_case(12, 256, 1, 18, 1);  /* (B, E, L) -> (B, L, E) */
    transpose_case(1, 37, 1, 41, 1);
    transpose_case(3, 5, 4, 6, 2);
    transpose_case(2, 7, 1, 7, 33);
    transpose_case(5, 1, 1, 1, 9);
    reshape_case(100003);
    CuStats st = cu_stats();
    printf("  device memory: peak live %.1f MiB, %zu cudaMalloc calls\n", st.peak_live / 1048576.0, st.n_malloc);
    EXPECT(st.live == 0, "every device block was freed (%zu bytes live)", st.live);
    return test_end();
}
