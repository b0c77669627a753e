/* dropout.cu: the CUDA twins of the kernels of src/ops/dropout.c (inverted dropout). The uniform
 * draws stay the caller's (the counter-based Rng of src/core/rng.c, e.g. drawn on the host and
 * uploaded): dropout_make_mask_cuda turns them into the multiplier with the CPU's threshold and
 * scale, so a mask depends on the seed only, as on the CPU. Element-wise, bitwise deterministic,
 * the CPU's bits (the products rounded before the add: __fmul_rn keeps nvcc from fusing them). */
#include "cuda_ops.h"
#include "launch.cuh"

__global__ static void k_make_mask(float *mask, const float *uniform, float p, float scale, int64_t n) {
    GRID_STRIDE(i, n) mask[i] = uniform[i] >= p ? scale : 0.0f;
}
__global__ static void k_dropout_fwd(float *out, const float *inp, const float *mask, int64_t n) {
    GRID_STRIDE(i, n) out[i] = __fmul_rn(inp[i], mask[i]);
}
__global__ static void k_dropout_bwd(float *dinp, const float *dout, const float *mask, int64_t n) {
    GRID_STRIDE(i, n) dinp[i] += __fmul_rn(dout[i], mask[i]);
}

extern "C" {
/* mask may be uniform itself (in place), as on the CPU */
void dropout_make_mask_cuda(float *mask, const float *uniform, float p, int64_t n) {
    float scale = p < 1.0f ? (float)(1.0 / (1.0 - (double)p)) : 0.0f;
    LAUNCH(k_make_mask, n, mask, uniform, p, scale, n);
}

void dropout_forward_cuda(float *out, const float *inp, const float *mask, int64_t n) {
    LAUNCH(k_dropout_fwd, n, out, inp, mask, n);
}

void dropout_backward_cuda(float *dinp, const float *dout, const float *mask, int64_t n) {
    if (dinp) LAUNCH(k_dropout_bwd, n, dinp, dout, mask, n);
}
}
