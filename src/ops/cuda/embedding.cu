/* embedding.cu: the CUDA twins of src/ops/embedding.c (nn.Embedding lookup, dense weight gradient).
 *
 * Forward: one thread per output element. Backward: one thread per column d of the weight, which
 * runs over the N ids in order (dweight[ids[n]][d] += dout[n][d], n = 0..N-1): the CPU's order,
 * so repeated ids accumulate with the CPU's bits, with no atomics (bitwise deterministic). The
 * kernel has no vocabulary size V (the CPU signature carries none), so it cannot own rows; D
 * threads suffice for the text encoder's embedding (N = B * T ids, D = 300). */
#include "cuda_ops.h"
#include "launch.cuh"

__global__ static void k_emb_fwd(float *out, const int64_t *ids, const float *weight, int64_t N, int D) {
    GRID_STRIDE(e, N * D) out[e] = weight[ids[e / D] * D + e % D];
}

/* thread d: column d of dweight, the ids in order (consecutive threads read consecutive columns) */
__global__ static void k_emb_bwd(float *dweight, const float *dout, const int64_t *ids, int64_t N, int D) {
    GRID_STRIDE(d, (int64_t)D) {
        for (int64_t n = 0; n < N; n++) dweight[ids[n] * D + d] += dout[n * D + d];
    }
}

extern "C" {
/* ids: device (N) int64, checked to lie in [0, V) by the caller (the op checks them on the host) */
void embedding_forward_cuda(float *out, const int64_t *ids, const float *weight, int64_t N, int D) {
    LAUNCH(k_emb_fwd, N * D, out, ids, weight, N, D);
}

void embedding_backward_cuda(float *dweight, const float *dout, const int64_t *ids, int64_t N, int D) {
    if (dweight && N > 0) LAUNCH(k_emb_bwd, (int64_t)D, dweight, dout, ids, N, D);
}
}
