/* activation.cu: the CUDA twins of src/ops/activation.c (same formulas, same operation order). */
#include "cuda_ops.h"
#include "launch.cuh"

__global__ static void k_relu_fwd(float *out, const float *inp, int64_t n) {
    GRID_STRIDE(i, n) out[i] = (inp[i] > 0.0f || isnan(inp[i])) ? inp[i] : 0.0f;
}
__global__ static void k_relu_bwd(float *dinp, const float *dout, const float *out, int64_t n) {
    GRID_STRIDE(i, n) if (!(out[i] <= 0.0f)) dinp[i] += dout[i];
}
__global__ static void k_lrelu_fwd(float *out, const float *inp, float slope, int64_t n) {
    GRID_STRIDE(i, n) out[i] = inp[i] > 0.0f ? inp[i] : inp[i] * slope;
}
__global__ static void k_lrelu_bwd(float *dinp, const float *dout, const float *inp, float slope, int64_t n) {
    GRID_STRIDE(i, n) dinp[i] += inp[i] > 0.0f ? dout[i] : dout[i] * slope;
}
__global__ static void k_gate_fwd(float *out, const float *g, const float *h, int64_t n) {
    GRID_STRIDE(i, n) out[i] = h[i] > 0.0f ? g[i] : 0.0f;
}
__global__ static void k_gate_bwd(float *dg, const float *dout, const float *h, int64_t n) {
    GRID_STRIDE(i, n) if (h[i] > 0.0f) dg[i] += dout[i];
}
__global__ static void k_tanh_fwd(float *out, const float *inp, int64_t n) { GRID_STRIDE(i, n) out[i] = tanhf(inp[i]); }
__global__ static void k_tanh_bwd(float *dinp, const float *dout, const float *out, int64_t n) {
    GRID_STRIDE(i, n) dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
}
__global__ static void k_sigmoid_fwd(float *out, const float *inp, int64_t n) {
    GRID_STRIDE(i, n) out[i] = 1.0f / (1.0f + expf(-inp[i]));
}
__global__ static void k_sigmoid_bwd(float *dinp, const float *dout, const float *out, int64_t n) {
    GRID_STRIDE(i, n) dinp[i] += dout[i] * (1.0f - out[i]) * out[i];
}
/* GLU over (outer, 2C, inner): element e = o * half + j of the output */
__global__ static void k_glu_fwd(float *out, const float *inp, int64_t outer, int64_t half) {
    GRID_STRIDE(e, outer * half) {
        int64_t o = e / half, j = e % half;
        const float *a = inp + o * 2 * half;
        out[e] = a[j] * (1.0f / (1.0f + expf(-a[half + j])));
    }
}
__global__ static void k_glu_bwd(float *dinp, const float *dout, const float *inp, int64_t outer, int64_t half) {
    GRID_STRIDE(e, outer * half) {
        int64_t o = e / half, j = e % half;
        const float *a = inp + o * 2 * half;
        float s = 1.0f / (1.0f + expf(-a[half + j])), g = dout[e];
        float *da = dinp + o * 2 * half;
        da[j] += s * g;
        da[half + j] += (1.0f - s) * s * a[j] * g;
    }
}

extern "C" {
void relu_forward_cuda(float *out, const float *inp, int64_t n) { LAUNCH(k_relu_fwd, n, out, inp, n); }
void relu_backward_cuda(float *dinp, const float *dout, const float *out, int64_t n) {
    if (dinp) LAUNCH(k_relu_bwd, n, dinp, dout, out, n);
}
void leaky_relu_forward_cuda(float *out, const float *inp, float slope, int64_t n) { LAUNCH(k_lrelu_fwd, n, out, inp, slope, n); }
void leaky_relu_backward_cuda(float *dinp, const float *dout, const float *inp, float slope, int64_t n) {
    if (dinp) LAUNCH(k_lrelu_bwd, n, dinp, dout, inp, slope, n);
}
void relu_gate_forward_cuda(float *out, const float *g, const float *h, int64_t n) { LAUNCH(k_gate_fwd, n, out, g, h, n); }
void relu_gate_backward_cuda(float *dg, const float *dout, const float *h, int64_t n) {
    if (dg) LAUNCH(k_gate_bwd, n, dg, dout, h, n);
}
void tanh_forward_cuda(float *out, const float *inp, int64_t n) { LAUNCH(k_tanh_fwd, n, out, inp, n); }
void tanh_backward_cuda(float *dinp, const float *dout, const float *out, int64_t n) {
    if (dinp) LAUNCH(k_tanh_bwd, n, dinp, dout, out, n);
}
void sigmoid_forward_cuda(float *out, const float *inp, int64_t n) { LAUNCH(k_sigmoid_fwd, n, out, inp, n); }
void sigmoid_backward_cuda(float *dinp, const float *dout, const float *out, int64_t n) {
    if (dinp) LAUNCH(k_sigmoid_bwd, n, dinp, dout, out, n);
}
void glu_forward_cuda(float *out, const float *inp, int64_t outer, int C, int64_t inner) {
    int64_t half = (int64_t)C * inner;
    LAUNCH(k_glu_fwd, outer * half, out, inp, outer, half);
}
void glu_backward_cuda(float *dinp, const float *dout, const float *inp, int64_t outer, int C, int64_t inner) {
    int64_t half = (int64_t)C * inner;
    if (dinp) LAUNCH(k_glu_bwd, outer * half, dinp, dout, inp, outer, half);
}
}
