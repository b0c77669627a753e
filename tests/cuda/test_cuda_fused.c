/* test_cuda_fused.c: the CUDA twins of src/ops/fused.c's kernels (NCHW; the nChw16c layout is
 * CPU-only) against the CPU on the same seeded random inputs (make test-cuda; built only with
 * CUDA=1): relu_mask_pack (compared byte for byte, with zeros, -0 and NaN among the inputs and a
 * length that is no multiple of 8), bn_relu_eval_backward (rows not aligned to a mask byte; into
 * another buffer and in place over dout), the frozen op's scale loop and batchnorm_update_running.
 * Bound: TOL_EW (1e-5): element-wise, the CPU's operation order with no FMA contraction, so the
 * results are expected to be the CPU's bits. */
#include "cuda_test.h"
#include "../../src/ops/batchnorm.h"
#include "../../src/ops/fused.h"
#include "../../src/ops/cuda/cuda_ops.h"

static void mask_case(int64_t n) {
    float *y = rnd(n, -1, 1, 50);
    y[0] = 0.0f, y[1] = -0.0f, y[2] = NAN, y[n / 2] = 0.0f, y[n - 1] = NAN;
    int64_t nb = (n + 7) / 8;
    uint8_t *mask = xcalloc((size_t)nb, 1), *got = xcalloc((size_t)nb, 1);
    relu_mask_pack(mask, y, n);
    float *dY = up(y, n);
    uint8_t *dM = cu_alloc((size_t)nb);
    relu_mask_pack_cuda(dM, dY, n);
    cu_download(got, dM, (size_t)nb);
    int64_t diff = 0;
    for (int64_t i = 0; i < nb; i++) diff += got[i] != mask[i];
    printf("  relu_mask_pack n=%-10lld %lld of %lld bytes differ\n", (long long)n, (long long)diff, (long long)nb);
    EXPECT(diff == 0, "relu_mask_pack n=%lld: %lld bytes differ", (long long)n, (long long)diff);
    cu_free(dY), cu_free(dM);
    free(y), free(mask), free(got);
}

static void bn_relu_bwd_case(int N, int O, int S, int in_place) {
    int64_t n = (int64_t)N * O * S, nb = (n + 7) / 8;
    float *y = rnd(n, -1, 1, 60), *dout = rnd(n, -1, 1, 61), *scale = rnd(O, 0.2f, 2.0f, 62);
    float *dz = rnd(n, -1, 1, 63); /* overwritten */
    uint8_t *mask = xmalloc((size_t)nb);
    relu_mask_pack(mask, y, n);
    float *dDout = up(dout, n), *dS = up(scale, O);
    uint8_t *dM = cu_alloc((size_t)nb);
    cu_upload(dM, mask, (size_t)nb);
    float *dDz = in_place ? dDout : up(dz, n);
    if (in_place) {
        bn_relu_eval_backward(dout, dout, mask, scale, N, O, S, 0);
        bn_relu_eval_backward_cuda(dDout, dDout, dM, dS, N, O, S, 0);
    } else {
        bn_relu_eval_backward(dz, dout, mask, scale, N, O, S, 0);
        bn_relu_eval_backward_cuda(dDz, dDout, dM, dS, N, O, S, 0);
    }
    char w[96];
    snprintf(w, sizeof w, "bn_relu_eval_backward (%d,%d,%d)%s", N, O, S, in_place ? " in place" : "");
    check(w, dDz, in_place ? dout : dz, n, TOL_EW);
    if (!in_place) cu_free(dDout);
    cu_free(dS), cu_free(dM);
    free(y), free(dout), free(scale), free(dz), free(mask);
}

static void scale_case(int O) {
    float *rstd = rnd(O, 0.1f, 3.0f, 70), *gamma = rnd(O, -1.5f, 1.5f, 71), *want = xmalloc((size_t)O * sizeof(float));
    for (int o = 0; o < O; o++) want[o] = rstd[o] * gamma[o]; /* op_conv2d_bn_relu_frozen's loop */
    float *dR = up(rstd, O), *dG = up(gamma, O), *dS = cu_alloc((size_t)O * sizeof(float));
    conv2d_bn_relu_scale_cuda(dS, dR, dG, O);
    check("conv2d_bn_relu scale = rstd * gamma", dS, want, O, TOL_EW);
    cu_free(dR), cu_free(dG);
    free(rstd), free(gamma), free(want);
}

static void update_running_case(int C, int64_t M, int with_var) {
    float *rm = rnd(C, -1, 1, 80), *rv = rnd(C, 0.5f, 2, 81), *mean = rnd(C, -1, 1, 82), *var = rnd(C, 0.1f, 3, 83);
    float *dRm = up(rm, C), *dRv = up(rv, C), *dMean = up(mean, C), *dVar = up(var, C);
    batchnorm_update_running(rm, with_var ? rv : NULL, mean, var, C, M, 0.1f);
    batchnorm_update_running_cuda(dRm, with_var ? dRv : NULL, dMean, dVar, C, M, 0.1f);
    char w[96];
    snprintf(w, sizeof w, "batchnorm_update_running C%d M%lld mean", C, (long long)M), check(w, dRm, rm, C, TOL_EW);
    snprintf(w, sizeof w, "batchnorm_update_running C%d M%lld var%s", C, (long long)M, with_var ? "" : " (NULL: kept)");
    check(w, dRv, rv, C, TOL_EW);
    cu_free(dMean), cu_free(dVar);
    free(rm), free(rv), free(mean), free(var);
}

int main(void) {
    if (!cuda_test_begin("test_cuda_fused")) return test_end();
    mask_case(100003);
    mask_case(13);
    mask_case(4 * 64 * 17 * 17);
    bn_relu_bwd_case(3, 13, 97, 0);
    bn_relu_bwd_case(3, 13, 97, 1);
    bn_relu_bwd_case(2, 192, 35 * 35, 0);
    scale_case(768);
    update_running_case(37, 1000, 1);
    update_running_case(37, 1, 1);
    update_running_case(64, 4 * 17 * 17, 0);
    CuStats st = cu_stats();
    printf("  device memory: peak live %.1f MiB, %zu cudaMalloc calls\n", st.peak_live / 1048576.0, st.n_malloc);
    EXPECT(st.live == 0, "every device block was freed (%zu bytes live)", st.live);
    return test_end();
}
