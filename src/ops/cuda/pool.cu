/* pool.cu: the CUDA twins of the NCHW kernels of src/ops/pool.c (2-d max and average pooling,
 * square kernel, floor mode). The blocked nChw16c kernels of pool.c (maxpool_blk_*, avgpool_blk_*,
 * used inside the frozen Inception trunk on the CPU) have no twin: CPU only.
 *
 * Forward passes: one thread per output, its window clipped to the image and visited in row-major
 * order, with the CPU's arithmetic (max: the first strictly greater value, a NaN takes over, the
 * index starting at the window's first in-image element; average: a float sum from 0, divided by
 * (float)(rows * cols) of the padded or the clipped window). Backward passes gather: one thread per
 * input element starts from its gradient and adds the contributions of the outputs whose window
 * covers it in row-major output order (the max those whose argmax is this element, the average
 * each output's gradient / divisor), which is the order the CPU's scatter adds them in. All four
 * kernels are bitwise deterministic, and give the CPU kernels' bits (no float atomics). */
#include "cuda_ops.h"
#include "launch.cuh"

static void check_args(const char *op, int H, int W, int kernel, int stride, int pad) {
    CHECK(kernel > 0 && stride > 0, "%s: kernel %d and stride %d must be positive", op, kernel, stride);
    CHECK(pad >= 0 && pad <= kernel / 2, "%s: pad %d must be in [0, kernel/2 = %d]", op, pad, kernel / 2);
    CHECK(H + 2 * pad >= kernel && W + 2 * pad >= kernel, "%s: kernel %d larger than the padded input (%d, %d) + 2*%d", op,
          kernel, H, W, pad);
}

static int out_size(int in, int kernel, int stride, int pad) { return (in + 2 * pad - kernel) / stride + 1; }

/* the outputs [*lo, *hi) of a side n_out whose window covers input index i (pool.c's covering) */
__device__ static void covering(int i, int kernel, int stride, int pad, int n_out, int *lo, int *hi) {
    int a = i + pad - kernel + 1; /* o * stride >= a */
    *lo = a <= 0 ? 0 : (a + stride - 1) / stride;
    *hi = (i + pad) / stride + 1;
    if (*hi > n_out) *hi = n_out;
}

/* the start s of an output's window along a side (unclipped), its padded end, and the clipped range */
__device__ static void side(int o, int n, int kernel, int stride, int pad, int *c0, int *c1, int *padded) {
    int s = o * stride - pad, e = s + kernel < n + pad ? s + kernel : n + pad;
    *padded = e - s;
    *c0 = s < 0 ? 0 : s;
    *c1 = e < n ? e : n;
}

__global__ static void k_maxpool_fwd(float *out, int32_t *idx, const float *inp, int64_t NC, int H, int W, int kernel,
                                     int stride, int pad, int OH, int OW) {
    GRID_STRIDE(e, NC * OH * OW) {
        int ox = (int)(e % OW), oy = (int)((e / OW) % OH);
        int64_t c = e / ((int64_t)OH * OW);
        int y0, y1, x0, x1, py, px;
        side(oy, H, kernel, stride, pad, &y0, &y1, &py);
        side(ox, W, kernel, stride, pad, &x0, &x1, &px);
        const float *src = inp + c * H * W;
        float m = -INFINITY;
        int32_t best = y0 * W + x0;
        for (int y = y0; y < y1; y++)
            for (int x = x0; x < x1; x++) {
                float v = src[(int64_t)y * W + x];
                if ((v > m) | (v != v)) m = v, best = y * W + x;
            }
        out[e] = m;
        if (idx) idx[e] = best;
    }
}

/* dinp element (c, y, x) += dout of the covering outputs whose argmax is (y, x), row-major */
__global__ static void k_maxpool_bwd(float *dinp, const float *dout, const int32_t *idx, int64_t NC, int H, int W,
                                     int kernel, int stride, int pad, int OH, int OW) {
    GRID_STRIDE(e, NC * H * W) {
        int x = (int)(e % W), y = (int)((e / W) % H);
        int64_t c = e / ((int64_t)H * W);
        int oy0, oy1, ox0, ox1;
        covering(y, kernel, stride, pad, OH, &oy0, &oy1);
        covering(x, kernel, stride, pad, OW, &ox0, &ox1);
        const float *g = dout + c * OH * OW;
        const int32_t *ix = idx + c * OH * OW;
        const int32_t at = y * W + x;
        float acc = dinp[e];
        for (int oy = oy0; oy < oy1; oy++)
            for (int ox = ox0; ox < ox1; ox++) {
                int64_t o = (int64_t)oy * OW + ox;
                if (ix[o] == at) acc += g[o];
            }
        dinp[e] = acc;
    }
}

__global__ static void k_avgpool_fwd(float *out, const float *inp, int64_t NC, int H, int W, int kernel, int stride,
                                     int pad, int count_include_pad, int OH, int OW) {
    GRID_STRIDE(e, NC * OH * OW) {
        int ox = (int)(e % OW), oy = (int)((e / OW) % OH);
        int64_t c = e / ((int64_t)OH * OW);
        int y0, y1, x0, x1, py, px;
        side(oy, H, kernel, stride, pad, &y0, &y1, &py);
        side(ox, W, kernel, stride, pad, &x0, &x1, &px);
        const float *src = inp + c * H * W;
        float acc = 0.0f;
        for (int y = y0; y < y1; y++)
            for (int x = x0; x < x1; x++) acc += src[(int64_t)y * W + x];
        int div = count_include_pad ? py * px : (y1 - y0) * (x1 - x0);
        out[e] = __fdiv_rn(acc, (float)div);
    }
}

/* dinp element (c, y, x) += dout / divisor of the covering outputs, row-major */
__global__ static void k_avgpool_bwd(float *dinp, const float *dout, int64_t NC, int H, int W, int kernel, int stride,
                                     int pad, int count_include_pad, int OH, int OW) {
    GRID_STRIDE(e, NC * H * W) {
        int x = (int)(e % W), y = (int)((e / W) % H);
        int64_t c = e / ((int64_t)H * W);
        int oy0, oy1, ox0, ox1;
        covering(y, kernel, stride, pad, OH, &oy0, &oy1);
        covering(x, kernel, stride, pad, OW, &ox0, &ox1);
        const float *g = dout + c * OH * OW;
        float acc = dinp[e];
        for (int oy = oy0; oy < oy1; oy++) {
            int y0, y1, py;
            side(oy, H, kernel, stride, pad, &y0, &y1, &py);
            int ycnt = count_include_pad ? py : y1 - y0;
            for (int ox = ox0; ox < ox1; ox++) {
                int x0, x1, px;
                side(ox, W, kernel, stride, pad, &x0, &x1, &px);
                int xcnt = count_include_pad ? px : x1 - x0;
                acc += __fdiv_rn(g[(int64_t)oy * OW + ox], (float)(ycnt * xcnt));
            }
        }
        dinp[e] = acc;
    }
}

extern "C" {
void maxpool2d_forward_cuda(float *out, int32_t *idx, const float *inp, int64_t NC, int H, int W, int kernel, int stride,
                            int pad) {
    check_args("maxpool2d", H, W, kernel, stride, pad);
    int OH = out_size(H, kernel, stride, pad), OW = out_size(W, kernel, stride, pad);
    LAUNCH(k_maxpool_fwd, NC * OH * OW, out, idx, inp, NC, H, W, kernel, stride, pad, OH, OW);
}

void maxpool2d_backward_cuda(float *dinp, const float *dout, const int32_t *idx, int64_t NC, int H, int W, int kernel,
                             int stride, int pad) {
    if (!dinp) return;
    CHECK(idx != NULL, "maxpool2d_backward_cuda: needs the forward's argmax indices");
    check_args("maxpool2d", H, W, kernel, stride, pad);
    int OH = out_size(H, kernel, stride, pad), OW = out_size(W, kernel, stride, pad);
    LAUNCH(k_maxpool_bwd, NC * H * W, dinp, dout, idx, NC, H, W, kernel, stride, pad, OH, OW);
}

void avgpool2d_forward_cuda(float *out, const float *inp, int64_t NC, int H, int W, int kernel, int stride, int pad,
                            int count_include_pad) {
    check_args("avgpool2d", H, W, kernel, stride, pad);
    int OH = out_size(H, kernel, stride, pad), OW = out_size(W, kernel, stride, pad);
    LAUNCH(k_avgpool_fwd, NC * OH * OW, out, inp, NC, H, W, kernel, stride, pad, count_include_pad, OH, OW);
}

void avgpool2d_backward_cuda(float *dinp, const float *dout, int64_t NC, int H, int W, int kernel, int stride, int pad,
                             int count_include_pad) {
    if (!dinp) return;
    check_args("avgpool2d", H, W, kernel, stride, pad);
    int OH = out_size(H, kernel, stride, pad), OW = out_size(W, kernel, stride, pad);
    LAUNCH(k_avgpool_bwd, NC * H * W, dinp, dout, NC, H, W, kernel, stride, pad, count_include_pad, OH, OW);
}
}
