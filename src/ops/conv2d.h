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

/* ---- kernels (im2col + OpenBLAS). Results are bitwise the same for every thread count: the kernels
 * split all work into fixed blocks over OpenMP and switch OpenBLAS to one thread while they run
 * (restoring it after), so call them from one thread at a time, not inside a parallel region. */

/* The sizes of one convolution. */
typedef struct Conv2dShape {
    int N, C, H, W;                         /* input (N, C, H, W) */
    int O, KH, KW;                          /* weight (O, C, KH, KW) */
    int stride_h, stride_w, pad_h, pad_w;
    int OH, OW;                             /* output (N, O, OH, OW) */
    int max_cols;                           /* output positions unrolled at once (bounds the scratch);
                                               conv2d_shape sets the default, tests may lower it */
} Conv2dShape;

/* Fills every field, OH/OW and the default max_cols included. */
Conv2dShape conv2d_shape(int N, int C, int H, int W, int O, int KH, int KW, int stride_h, int stride_w,
                         int pad_h, int pad_w);
/* Floats of scratch the kernels need for s (0 for a 1x1 stride-1 unpadded conv: scratch may be NULL). */
size_t conv2d_scratch_floats(const Conv2dShape *s);

/* out (N, O, OH, OW) = conv(inp (N, C, H, W), weight (O, C, KH, KW)) + bias (O) or NULL.
 * scratch: conv2d_scratch_floats(s) floats. */
void conv2d_forward(float *out, const float *inp, const float *weight, const float *bias, const Conv2dShape *s,
                    float *scratch);
/* dinp (N, C, H, W), dweight (O, C, KH, KW), dbias (O): each NULL (skipped) or added into (+=),
 * from dout (N, O, OH, OW), inp (N, C, H, W), weight (O, C, KH, KW).
 * scratch: conv2d_scratch_floats(s) floats. */
void conv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, const Conv2dShape *s, float *scratch);

#endif
