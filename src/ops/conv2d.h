/* conv2d.h: 2-d convolution (cross-correlation, PyTorch nn.Conv2d without groups or dilation).
 * Tape-level ops return a new tensor on the tape and record their backward; see src/ops/README.md
 * for the op contract. */
#ifndef ATTNGAN_OPS_CONV2D_H
#define ATTNGAN_OPS_CONV2D_H

#include "../core/core.h"

#include <stddef.h>

/* x (N, C, H, W), w (O, C, KH, KW), b (O) or NULL -> (N, O, OH, OW),
 * OH = (H + 2*pad_h - KH) / stride_h + 1, zero padding. */
Tensor *op_conv2d(Tape *tp, Tensor *x, Tensor *w, Tensor *b, int stride_h, int stride_w, int pad_h, int pad_w);

/* ---- kernels. Two implementations, chosen at run time:
 *  - oneDNN (default): convolution primitives from libdnnl, created once per shape, direction and
 *    thread count and cached (thread-safe: several threads may run convolutions at once). Same
 *    inputs and thread count give the same bits run to run; with another thread count the weight
 *    and bias gradients differ in the last bits (oneDNN splits their reductions by thread count).
 *  - im2col + OpenBLAS (ATTNGAN_CONV=im2col, conv2d_set_impl, and the fallback wherever oneDNN has
 *    no primitive for a shape). Results are bitwise the same for every thread count: the kernels
 *    split all work into fixed blocks over OpenMP and switch OpenBLAS to one thread while they run
 *    (restoring it after), so call them from one thread at a time, not inside a parallel region. */
typedef enum Conv2dImpl { CONV2D_DNNL = 0, CONV2D_IM2COL = 1 } Conv2dImpl;
/* Operand precision of the oneDNN convolutions: fp32 (default), or bf16 operands with fp32
 * accumulation and fp32 weight gradients (ATTNGAN_CONV_PRECISION=bf16; the im2col path is fp32). */
typedef enum Conv2dPrecision { CONV2D_FP32 = 0, CONV2D_BF16 = 1 } Conv2dPrecision;
Conv2dPrecision conv2d_get_precision(void);
void conv2d_set_precision(Conv2dPrecision p);
/* The oneDNN algorithm for fp32 3x3 stride-1 convolutions with 16x16+ outputs and 64+ input and
 * output channels, or 32+ (the backward directions, and a forward whose whole batch runs in one
 * call within the 16 MB workspace budget of a batch chunk): Winograd F(4x4, 3x3) (default;
 * 1.1-2.5x faster there, its rounding differs from direct summation by about 1e-6 norm-relative,
 * tests/test_conv2d.c bounds it) or direct (ATTNGAN_CONV_ALGO=direct, as PyTorch's oneDNN
 * convolutions). Every other shape, bf16 and im2col are direct. */
typedef enum Conv2dAlgo { CONV2D_DIRECT = 0, CONV2D_WINOGRAD = 1 } Conv2dAlgo;
Conv2dAlgo conv2d_get_algo(void);
void conv2d_set_algo(Conv2dAlgo a);
/* The implementation for the whole process: ATTNGAN_CONV=dnnl|im2col (default dnnl) until
 * conv2d_set_impl overrides it. */
Conv2dImpl conv2d_get_impl(void);
void conv2d_set_impl(Conv2dImpl impl);
/* Drops every cached oneDNN primitive (no convolution may run meanwhile). */
void conv2d_clear_cache(void);
/* Pinned weights: the caller promises that the n floats at w (an (O, C, KH, KW) weight) keep their
 * values until conv2d_unpin_weights(w) (or until it pins them again, which starts over). The
 * oneDNN convolutions that read w then reorder it into their weight layout once, keep that copy
 * (one per layout: forward and input gradient, fp32 or bf16, direct or Winograd) and skip the
 * reorder on every later call. Copies cost memory (about the weights' size per layout, outside the
 * tensor pool) and are made on first use. A sample of the values is fingerprinted at pin time and
 * checked on every use: a convolution that finds pinned weights written dies with a message.
 * Thread-safe; the GAN trainer pins the frozen Inception trunk (image_encoder_pin_trunk). */
void conv2d_pin_weights(const float *w, size_t n);
/* Drops the copies of w; returns 1 if w was pinned, 0 if not. */
int conv2d_unpin_weights(const float *w);
/* Bytes held by the copies of all pinned weights. */
size_t conv2d_pinned_bytes(void);

/* The sizes of one convolution. */
typedef struct Conv2dShape {
    int N, C, H, W;                         /* input (N, C, H, W) */
    int O, KH, KW;                          /* weight (O, C, KH, KW) */
    int stride_h, stride_w, pad_h, pad_w;
    int OH, OW;                             /* output (N, O, OH, OW) */
    int max_cols;                           /* output positions unrolled at once (bounds the scratch);
                                               conv2d_shape sets the default, tests may lower it */
    int in_blocked, out_blocked;            /* the input / output (and their gradients) in nChw16c
                                               (Tensor.blocked; C resp. O % 16 == 0; oneDNN only):
                                               the primitives read and write them with no reorder.
                                               conv2d_shape sets 0 (NCHW) */
} Conv2dShape;

/* Fills every field, OH/OW and the default max_cols included. */
Conv2dShape conv2d_shape(int N, int C, int H, int W, int O, int KH, int KW, int stride_h, int stride_w,
                         int pad_h, int pad_w);
/* 1 when the forward of s (no bias) runs Winograd now: the algorithm, the shape and the
 * precision allow it and oneDNN has the kernel on this CPU (it needs AVX-512). */
int conv2d_uses_winograd(const Conv2dShape *s);
/* Floats of scratch the im2col kernels need for s (0 for a 1x1 stride-1 unpadded conv). */
size_t conv2d_scratch_floats(const Conv2dShape *s);
/* The scratch worth passing to the kernels: 0 when the oneDNN path will run the forward of s (it
 * keeps its own per-thread workspace), conv2d_scratch_floats(s) otherwise. */
size_t conv2d_op_scratch_floats(const Conv2dShape *s, int has_bias);

/* out (N, O, OH, OW) = conv(inp (N, C, H, W), weight (O, C, KH, KW)) + bias (O) or NULL.
 * scratch: conv2d_scratch_floats(s) floats, or NULL (the im2col path then allocates its own). */
/* In place: buf holds the input (N, C, H, W) and must be large enough for the output (N, O, OH, OW),
 * which replaces it. Batch chunks are copied out to a temporary and convolved back into buf, from
 * the last chunk down when the output is larger (chunk i's output then covers only inputs i and
 * later, already copied) and from the first up otherwise. op_conv2d uses it for a donated input
 * when nothing is recorded (tape_out_over), so a chain of convolutions without gradients holds
 * one tensor, not two. */
void conv2d_forward_over(float *buf, const float *weight, const float *bias, const Conv2dShape *s);
void conv2d_forward(float *out, const float *inp, const float *weight, const float *bias, const Conv2dShape *s,
                    float *scratch);
/* dinp (N, C, H, W), dweight (O, C, KH, KW), dbias (O): each NULL (skipped) or added into (+=),
 * from dout (N, O, OH, OW), inp (N, C, H, W), weight (O, C, KH, KW).
 * scratch: conv2d_scratch_floats(s) floats, or NULL (as above). */
void conv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, const Conv2dShape *s, float *scratch);
/* dinp (N, C, H, W) = the input gradient from dout and weight: written, not added (a gradient
 * buffer's first contribution, tensor_grad_overwrite), so no zeroing and no adding pass. The bits
 * of conv2d_backward into zeros when both run the same primitives; a Winograd convolution may run
 * its whole batch in one call here and in batch chunks there (adding needs a result buffer in the
 * workspace, see conv_chunks), which rounds differently within the Winograd bound. */
void conv2d_backward_data_set(float *dinp, const float *dout, const float *weight, const Conv2dShape *s,
                              float *scratch);


/* ---- CUDA twins (src/ops/cuda/conv2d.cu, built by `make CUDA=1`): the contracts above over device
 * pointers, on the backend's stream (cu_stream), without synchronising. */
void conv2d_forward_cuda(float *out, const float *inp, const float *weight, const float *bias, const Conv2dShape *s,
                         float *scratch);
void conv2d_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, const Conv2dShape *s, float *scratch);
void conv2d_backward_data_set_cuda(float *dinp, const float *dout, const float *weight, const Conv2dShape *s,
                                   float *scratch);
/* (conv2d_forward_over, which streams the output over its input, has no twin: op_conv2d does not
 * donate on a device) */

#endif
