/* conv2d.cu: the CUDA twin of src/ops/conv2d.c through cuDNN (cross-correlation, NCHW, fp32 with
 * FMA math: no TF32, so results stay within fp32 tolerances of the CPU). The algorithm is cuDNN's
 * first choice among those that fit; the workspace comes from the caching allocator. Backward
 * adds into the gradients (beta = 1), as the CPU kernels do. */
#include "cuda_ops.h"
#include "launch.cuh"

#include <cudnn.h>
#include <stdio.h>
#include <stdlib.h>

#define CUDNN_CHECK(call)                                                                                   \
    do {                                                                                                    \
        cudnnStatus_t st_ = (call);                                                                         \
        if (st_ != CUDNN_STATUS_SUCCESS) {                                                                  \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, cudnnGetErrorString(st_)); \
            abort();                                                                                        \
        }                                                                                                   \
    } while (0)

/* The index of cuDNN's first usable algorithm in perf[0..n) (they come sorted by speed). */
#define FIRST_ALGO(perf, n, what)                                                     \
    ({                                                                                \
        int k_ = 0;                                                                   \
        while (k_ < (n) && (perf)[k_].status != CUDNN_STATUS_SUCCESS) k_++;           \
        if (k_ == (n)) {                                                              \
            fprintf(stderr, "conv2d_cuda: no cuDNN %s algorithm\n", what);            \
            abort();                                                                  \
        }                                                                             \
        k_;                                                                           \
    })

typedef struct Descs {
    cudnnTensorDescriptor_t x, y, b;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
} Descs;

static void descs_make(Descs *d, const Conv2dShape *s) {
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&d->x));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&d->y));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&d->b));
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&d->w));
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d->conv));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(d->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->N, s->C, s->H, s->W));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(d->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->N, s->O, s->OH, s->OW));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(d->b, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, s->O, 1, 1));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(d->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s->O, s->C, s->KH, s->KW));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(d->conv, s->pad_h, s->pad_w, s->stride_h, s->stride_w, 1, 1,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionMathType(d->conv, CUDNN_FMA_MATH));
    int n, c, h, w;
    CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(d->conv, d->x, d->w, &n, &c, &h, &w));
    if (n != s->N || c != s->O || h != s->OH || w != s->OW) {
        fprintf(stderr, "conv2d_cuda: cuDNN's output (%d, %d, %d, %d) differs from (%d, %d, %d, %d)\n", n, c, h, w, s->N,
                s->O, s->OH, s->OW);
        abort();
    }
}

static void descs_free(Descs *d) {
    cudnnDestroyTensorDescriptor(d->x);
    cudnnDestroyTensorDescriptor(d->y);
    cudnnDestroyTensorDescriptor(d->b);
    cudnnDestroyFilterDescriptor(d->w);
    cudnnDestroyConvolutionDescriptor(d->conv);
}

extern "C" {
void conv2d_forward_cuda(float *out, const float *inp, const float *weight, const float *bias, const Conv2dShape *s,
                         float *scratch) {
    (void)scratch; /* the CPU's im2col scratch: cuDNN's workspace comes from the pool */
    cudnnHandle_t h = (cudnnHandle_t)cu_cudnn();
    Descs d;
    descs_make(&d, s);
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int n = 0;
    CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf));
    int k = FIRST_ALGO(perf, n, "forward");
    void *ws = perf[k].memory ? cu_alloc(perf[k].memory) : NULL;
    const float one = 1.0f, zero = 0.0f;
    CUDNN_CHECK(cudnnConvolutionForward(h, &one, d.x, inp, d.w, weight, d.conv, perf[k].algo, ws, perf[k].memory, &zero, d.y, out));
    if (bias) CUDNN_CHECK(cudnnAddTensor(h, &one, d.b, bias, &one, d.y, out));
    cu_free(ws);
    descs_free(&d);
}

/* dinp = (beta) dinp + the input gradient: beta 1 adds (conv2d_backward), 0 writes (conv2d_backward_data_set) */
static void backward_data(cudnnHandle_t h, Descs *dd, float *dinp, const float *dout, const float *weight, float beta) {
    Descs &d = *dd;
    const float one = 1.0f;
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int n = 0;
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w, d.y, d.conv, d.x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf));
    int k = FIRST_ALGO(perf, n, "backward-data");
    void *ws = perf[k].memory ? cu_alloc(perf[k].memory) : NULL;
    CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, d.w, weight, d.y, dout, d.conv, perf[k].algo, ws, perf[k].memory, &beta, d.x, dinp));
    cu_free(ws);
}

void conv2d_backward_data_set_cuda(float *dinp, const float *dout, const float *weight, const Conv2dShape *s, float *scratch) {
    (void)scratch;
    cudnnHandle_t h = (cudnnHandle_t)cu_cudnn();
    Descs d;
    descs_make(&d, s);
    backward_data(h, &d, dinp, dout, weight, 0.0f);
    descs_free(&d);
}

void conv2d_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, const Conv2dShape *s, float *scratch) {
    (void)scratch;
    cudnnHandle_t h = (cudnnHandle_t)cu_cudnn();
    Descs d;
    descs_make(&d, s);
    const float one = 1.0f;
    if (dinp) backward_data(h, &d, dinp, dout, weight, 1.0f);
    if (dweight) {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        int n = 0;
        CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.conv, d.w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf));
        int k = FIRST_ALGO(perf, n, "backward-filter");
        void *ws = perf[k].memory ? cu_alloc(perf[k].memory) : NULL;
        CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, d.x, inp, d.y, dout, d.conv, perf[k].algo, ws, perf[k].memory, &one, d.w, dweight));
        cu_free(ws);
    }
    if (dbias) CUDNN_CHECK(cudnnConvolutionBackwardBias(h, &one, d.y, dout, &one, d.b, dbias));
    descs_free(&d);
}
}
