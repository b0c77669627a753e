/* test_cuda_embedding.c: the CUDA twins of src/ops/embedding.c (lookup and the dense weight
 * gradient) against the CPU kernels on seeded random ids and weights (make test-cuda; built only
 * with CUDA=1). The backward adds repeated ids in the CPU's order, so the bound is TOL_EW (the bits
 * are expected to match). Shapes: the text encoder's (B 48, T 18) ids into a (V, 300) table, a tiny
 * vocabulary with many repeats, an odd width. The weight gradient starts from random values (the +=
 * contract); a NULL gradient is skipped. Without a CUDA device it skips visibly. */
#include "cuda_test.h"
#include "../../src/ops/embedding.h"
#include "../../src/ops/cuda/cuda_ops.h"

static void embedding_case(int64_t N, int V, int D, uint64_t seed) {
    int64_t *ids = xmalloc((size_t)(N > 0 ? N : 1) * sizeof(int64_t));
    uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (int64_t n = 0; n < N; n++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        ids[n] = (int64_t)((s >> 33) % (uint64_t)V);
    }
    int64_t nw = (int64_t)V * D, ny = N * D;
    float *w = rnd(nw, -1, 1, seed + 1), *dy = rnd(ny, -1, 1, seed + 2), *dw = rnd(nw, -1, 1, seed + 3);
    float *y = xmalloc((size_t)(ny > 0 ? ny : 1) * sizeof(float));
    int64_t *dIds = cu_alloc((size_t)(N > 0 ? N : 1) * sizeof(int64_t));
    if (N > 0) cu_upload(dIds, ids, (size_t)N * sizeof(int64_t));
    float *dW = up(w, nw), *dDy = up(dy, ny), *dDw = up(dw, nw), *dY = cu_alloc((size_t)(ny > 0 ? ny : 1) * sizeof(float));
    embedding_forward(y, ids, w, N, D);
    embedding_backward(dw, dy, ids, N, D);
    embedding_forward_cuda(dY, dIds, dW, N, D);
    embedding_backward_cuda(dDw, dDy, dIds, N, D);
    embedding_backward_cuda(NULL, dDy, dIds, N, D); /* skipped */
    char w_[128];
    snprintf(w_, sizeof w_, "embedding N %lld V %d D %d fwd", (long long)N, V, D), check(w_, dY, y, ny, TOL_EW);
    snprintf(w_, sizeof w_, "embedding N %lld V %d D %d dweight (added)", (long long)N, V, D), check(w_, dDw, dw, nw, TOL_EW);
    cu_free(dIds), cu_free(dW), cu_free(dDy);
    free(ids), free(w), free(dy), free(dw), free(y);
}

int main(void) {
    if (!cuda_test_begin("test_cuda_embedding")) return test_end();
    embedding_case(48 * 18, 5450, 300, 400); /* the text encoder's lookup */
    embedding_case(1000, 5, 7, 410);         /* many repeated ids */
    embedding_case(333, 97, 129, 420);
    embedding_case(1, 3, 1, 430);
    embedding_case(0, 4, 16, 440);           /* no ids: the gradient is unchanged */
    CuStats st = cu_stats();
    printf("  device memory: peak live %.1f MiB, %zu cudaMalloc calls\n", st.peak_live / 1048576.0, st.n_malloc);
    EXPECT(st.live == 0, "every device block was freed (%zu bytes live)", st.live);
    return test_end();
}
