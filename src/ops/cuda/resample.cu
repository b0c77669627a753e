/* resample.cu: the CUDA twins of src/ops/resample.c (nearest x2 upsampling, bilinear resizing with
 * align_corners False or True), forward and backward.
 *
 * Each axis's taps (i0, i1, lambda0, lambda1) are computed per index as resample.c's lerp_taps /
 * lerp_taps_ac do (the float scale, the source coordinate in double, no contraction: __dmul_rn),
 * and the arithmetic is the CPU's: forward t_r = fma(in[r][i0], l0, in[r][i1] * l1), out =
 * fma(t_0, ly0, t_1 * ly1); backward grad = fma(ly * lx, g, grad) per tap.
 * Backward passes gather: one thread per input element starts from its gradient and adds the
 * contributions of the outputs that read it in row-major output order, taps 00, 01, 10, 11 within
 * an output, which is the order of the CPU's per-plane scatter. The outputs reading input row y
 * form one range [lo, hi) (the taps are monotone in the output index): found once per call by
 * binary search into a small device table. All kernels are bitwise deterministic and aim at the
 * CPU kernels' bits (no float atomics). */
#include "cuda_ops.h"
#include "launch.cuh"

/* ---------------------------------------------------------------- nearest x2 */
__global__ static void k_up2_fwd(float *out, const float *inp, int64_t NC, int H, int W) {
    int OW = 2 * W;
    GRID_STRIDE(e, NC * 4 * H * W) {
        int ox = (int)(e % OW);
        int64_t r = e / OW; /* c * 2H + oy */
        int oy = (int)(r % (2 * H));
        int64_t c = r / (2 * H);
        out[e] = inp[(c * H + (oy >> 1)) * W + (ox >> 1)];
    }
}

/* dinp (c, y, x) += the 2x2 block of dout in row-major order */
__global__ static void k_up2_bwd(float *dinp, const float *dout, int64_t NC, int H, int W) {
    int64_t OW = 2 * W;
    GRID_STRIDE(e, NC * H * W) {
        int x = (int)(e % W);
        int64_t r = e / W; /* c * H + y */
        const float *g = dout + 2 * r * OW + 2 * x;  /* row 2y of plane c */
        float acc = dinp[e];
        acc += g[0];
        acc += g[1];
        acc += g[OW];
        acc += g[OW + 1];
        dinp[e] = acc;
    }
}

/* ---------------------------------------------------------------- bilinear */
struct Tap {
    int i0, i1;
    float l0, l1;
};

/* output index d's taps along an axis of size in resized to out (resample.c's lerp_taps and
 * lerp_taps_ac) */
__device__ static Tap lerp_tap(int d, int in, int out, int align_corners) {
    Tap t;
    if (in == out) {
        t.i0 = t.i1 = d, t.l0 = 1.0f, t.l1 = 0.0f;
        return t;
    }
    double frac;
    int i0;
    if (!align_corners) {
        float scale = __fdiv_rn((float)in, (float)out);
        double src = __dadd_rn(__dmul_rn((double)scale, d + 0.5), -0.5);
        if (src < 0.0) src = 0.0;
        i0 = (int)src;
        if (i0 > in - 1) i0 = in - 1;
        frac = src - i0;
        if (frac > 1.0) frac = 1.0;
    } else {
        float scale = out > 1 ? __fdiv_rn((float)(in - 1), (float)(out - 1)) : 0.0f;
        double src = __dmul_rn((double)scale, (double)d);
        i0 = (int)src;
        if (i0 > in - 1) i0 = in - 1;
        frac = src - i0;
        frac = frac < 0.0 ? 0.0 : frac > 1.0 ? 1.0 : frac;
    }
    t.i0 = i0;
    t.i1 = i0 < in - 1 ? i0 + 1 : i0;
    t.l1 = (float)frac;
    t.l0 = 1.0f - t.l1;
    return t;
}

__global__ static void k_bilinear_fwd(float *out, const float *inp, int64_t NC, int H, int W, int OH, int OW, int ac) {
    GRID_STRIDE(e, NC * OH * OW) {
        int ox = (int)(e % OW), oy = (int)((e / OW) % OH);
        int64_t c = e / ((int64_t)OH * OW);
        Tap ty = lerp_tap(oy, H, OH, ac), tx = lerp_tap(ox, W, OW, ac);
        const float *r0 = inp + (c * H + ty.i0) * W, *r1 = inp + (c * H + ty.i1) * W;
        float top = fmaf(r0[tx.i0], tx.l0, __fmul_rn(r0[tx.i1], tx.l1));
        float bot = fmaf(r1[tx.i0], tx.l0, __fmul_rn(r1[tx.i1], tx.l1));
        out[e] = fmaf(top, ty.l0, __fmul_rn(bot, ty.l1));
    }
}

/* The tables of one call: taps ty (OH) then tx (OW); for every input row y (H) then column x (W)
 * the range [lo, hi) of output indices whose taps read it (i0 <= y <= i1). */
struct BilinearTables {
    Tap *taps;
    int *range; /* (H + W) pairs */
};

/* binary searches over the output indices [0, out): the first whose i1 >= v, the first whose i0 > v */
__device__ static int first_i1_ge(int v, int in, int out, int ac) {
    int lo = 0, hi = out;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (lerp_tap(mid, in, out, ac).i1 >= v) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}
__device__ static int first_i0_gt(int v, int in, int out, int ac) {
    int lo = 0, hi = out;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (lerp_tap(mid, in, out, ac).i0 > v) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

__global__ static void k_bilinear_tables(Tap *taps, int *range, int H, int W, int OH, int OW, int ac) {
    GRID_STRIDE(i, (int64_t)OH + OW + H + W) {
        if (i < OH) {
            taps[i] = lerp_tap((int)i, H, OH, ac);
        } else if (i < OH + OW) {
            taps[i] = lerp_tap((int)(i - OH), W, OW, ac);
        } else if (i < OH + OW + H) {
            int y = (int)(i - OH - OW);
            range[2 * y] = first_i1_ge(y, H, OH, ac);
            range[2 * y + 1] = first_i0_gt(y, H, OH, ac);
        } else {
            int x = (int)(i - OH - OW - H);
            range[2 * (H + x)] = first_i1_ge(x, W, OW, ac);
            range[2 * (H + x) + 1] = first_i0_gt(x, W, OW, ac);
        }
    }
}

__global__ static void k_bilinear_bwd(float *dinp, const float *dout, const Tap *taps, const int *range, int64_t NC, int H,
                                      int W, int OH, int OW) {
    const Tap *tys = taps, *txs = taps + OH;
    GRID_STRIDE(e, NC * H * W) {
        int x = (int)(e % W), y = (int)((e / W) % H);
        int64_t c = e / ((int64_t)H * W);
        int oy0 = range[2 * y], oy1 = range[2 * y + 1], ox0 = range[2 * (H + x)], ox1 = range[2 * (H + x) + 1];
        const float *g = dout + c * OH * OW;
        float acc = dinp[e];
        for (int oy = oy0; oy < oy1; oy++) {
            Tap ty = tys[oy];
            const float *gr = g + (int64_t)oy * OW;
            for (int ox = ox0; ox < ox1; ox++) {
                Tap tx = txs[ox];
                float v = gr[ox];
                /* taps 00, 01, 10, 11 as bilinear_row_backward adds them */
                if (ty.i0 == y) {
                    if (tx.i0 == x) acc = fmaf(__fmul_rn(ty.l0, tx.l0), v, acc);
                    if (tx.i1 == x) acc = fmaf(__fmul_rn(ty.l0, tx.l1), v, acc);
                }
                if (ty.i1 == y) {
                    if (tx.i0 == x) acc = fmaf(__fmul_rn(ty.l1, tx.l0), v, acc);
                    if (tx.i1 == x) acc = fmaf(__fmul_rn(ty.l1, tx.l1), v, acc);
                }
            }
        }
        dinp[e] = acc;
    }
}

__global__ static void k_add(float *dinp, const float *dout, int64_t n) { GRID_STRIDE(i, n) dinp[i] += dout[i]; }

extern "C" {
void upsample_nearest2x_forward_cuda(float *out, const float *inp, int64_t NC, int H, int W) {
    LAUNCH(k_up2_fwd, NC * 4 * H * W, out, inp, NC, H, W);
}

void upsample_nearest2x_backward_cuda(float *dinp, const float *dout, int64_t NC, int H, int W) {
    if (dinp) LAUNCH(k_up2_bwd, NC * H * W, dinp, dout, NC, H, W);
}

void resize_bilinear_ac_forward_cuda(float *out, const float *inp, int64_t NC, int H, int W, int OH, int OW,
                                     int align_corners) {
    CHECK(H > 0 && W > 0 && OH > 0 && OW > 0, "resize_bilinear: sizes (%d, %d) -> (%d, %d)", H, W, OH, OW);
    if (H == OH && W == OW) {
        if (NC > 0)
            CU_CHECK(cudaMemcpyAsync(out, inp, (size_t)(NC * H * W) * sizeof(float), cudaMemcpyDeviceToDevice,
                                     (cudaStream_t)cu_stream()));
        return;
    }
    LAUNCH(k_bilinear_fwd, NC * OH * OW, out, inp, NC, H, W, OH, OW, align_corners != 0);
}

void resize_bilinear_ac_backward_cuda(float *dinp, const float *dout, int64_t NC, int H, int W, int OH, int OW,
                                      int align_corners) {
    if (!dinp) return;
    CHECK(H > 0 && W > 0 && OH > 0 && OW > 0, "resize_bilinear: sizes (%d, %d) -> (%d, %d)", H, W, OH, OW);
    if (H == OH && W == OW) {
        LAUNCH(k_add, NC * H * W, dinp, dout, NC * H * W);
        return;
    }
    if (NC <= 0) return;
    size_t tap_bytes = (size_t)(OH + OW) * sizeof(Tap);
    char *buf = (char *)cu_alloc(tap_bytes + (size_t)2 * (H + W) * sizeof(int));
    Tap *taps = (Tap *)buf;
    int *range = (int *)(buf + tap_bytes);
    LAUNCH(k_bilinear_tables, (int64_t)OH + OW + H + W, taps, range, H, W, OH, OW, align_corners != 0);
    LAUNCH(k_bilinear_bwd, NC * H * W, dinp, dout, taps, range, NC, H, W, OH, OW);
    cu_free(buf); /* one stream: a later user of the block runs after these kernels */
}

void resize_bilinear_forward_cuda(float *out, const float *inp, int64_t NC, int H, int W, int OH, int OW) {
    resize_bilinear_ac_forward_cuda(out, inp, NC, H, W, OH, OW, 0);
}

void resize_bilinear_backward_cuda(float *dinp, const float *dout, int64_t NC, int H, int W, int OH, int OW) {
    resize_bilinear_ac_backward_cuda(dinp, dout, NC, H, W, OH, OW, 0);
}
}
