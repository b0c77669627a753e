/* fused.cu: the CUDA twins of src/ops/fused.c's kernels, NCHW only.
 *
 * The nChw16c blocked layout (fused.c's bn_relu_eval_forward_blk, bn_stats_blk and the blocked
 * branch of bn_relu_eval_backward) is CPU-only: it is oneDNN's layout for the Inception trunk, and
 * cuDNN's convolutions here read and write NCHW. bn_relu_eval_backward_cuda FAILs when asked for it.
 *
 * What a device op_conv2d_bn_relu_frozen / op_conv2d_bn_train_relu_nograd / op_upsample2x_conv2d
 * needs, kernel by kernel:
 *  - frozen conv + eval batch norm + relu: conv2d_forward_cuda, batchnorm_forward_cuda and
 *    relu_forward_cuda in place over the conv output (both are element-wise, in-place safe),
 *    relu_mask_pack_cuda (here), conv2d_bn_relu_scale_cuda (here: the op's inline loop filling
 *    ConvBnReluCtx.scale), then in backward bn_relu_eval_backward_cuda (here) and
 *    conv2d_backward_cuda (into a zeroed buffer where the CPU op writes with
 *    conv2d_backward_data_set);
 *  - conv + train batch norm + relu without gradient: conv2d_forward_cuda, batchnorm_stats_cuda,
 *    batchnorm_update_running_cuda (batchnorm.cu), batchnorm_forward_cuda, relu_forward_cuda;
 *  - upsample + conv: upsample_nearest2x_forward_cuda / _backward_cuda (the resample family's
 *    twins, not here) and conv2d_forward_cuda / conv2d_backward_cuda. fused.c has no kernel of its
 *    own for it (the batch chunks are the op's).
 * Same formulas and operation order as the CPU (explicit __fmul_rn / __fadd_rn where the CPU
 * build, -std=c11, contracts no FMA), so the results are the CPU's bits. */
#include "cuda_ops.h"
#include "launch.cuh"

/* mask[b] bit j = !(y[8b + j] <= 0) (NaN passes); one thread per byte */
__global__ static void k_relu_mask_pack(uint8_t *mask, const float *y, int64_t n) {
    GRID_STRIDE(b, (n + 7) / 8) {
        uint32_t m = 0;
        for (int j = 0; j < 8 && b * 8 + j < n; j++) m |= (uint32_t)(!(y[b * 8 + j] <= 0.0f)) << j;
        mask[b] = (uint8_t)m;
    }
}

/* dz (N, O, S) = (bit e ? dout : 0) * scale[o]; dz may be dout */
__global__ static void k_bn_relu_eval_bwd(float *dz, const float *dout, const uint8_t *mask, const float *scale, int O,
                                          int S, int64_t n) {
    GRID_STRIDE(e, n) {
        float k = scale[(e / S) % O];
        dz[e] = ((mask[e >> 3] >> (e & 7)) & 1 ? dout[e] : 0.0f) * k;
    }
}

__global__ static void k_scale(float *scale, const float *rstd, const float *gamma, int O) {
    GRID_STRIDE(o, (int64_t)O) scale[o] = rstd[o] * gamma[o];
}

extern "C" {
void relu_mask_pack_cuda(uint8_t *mask, const float *y, int64_t n) { LAUNCH(k_relu_mask_pack, (n + 7) / 8, mask, y, n); }

void bn_relu_eval_backward_cuda(float *dz, const float *dout, const uint8_t *mask, const float *scale, int N, int O, int S,
                                int blocked) {
    CHECK(!blocked, "bn_relu_eval_backward_cuda: the nChw16c layout is CPU-only (oneDNN); the CUDA backend is NCHW");
    int64_t n = (int64_t)N * O * S;
    LAUNCH(k_bn_relu_eval_bwd, n, dz, dout, mask, scale, O, S, n);
}

void conv2d_bn_relu_scale_cuda(float *scale, const float *rstd, const float *gamma, int O) {
    LAUNCH(k_scale, (int64_t)O, scale, rstd, gamma, O);
}

}
