/* conv2d.h: 2-d convolution (cross-correlation, PyTorch nn.Conv2d without groups or dilation).
 * Tape-level ops return a new tensor on the tape and record their backward; see src/ops/README.md
 * for the op contract. */
#ifndef ATTNGAN_OPS_CONV2D_H
#define ATTNGAN_OPS_CONV2D_H

#include "../core/core.h"

/* x (N, C, H, W), w (O, C, KH, KW), b (O) or NULL -> (N, O, OH, OW),
 * OH = (H + 2*pad_h - KH) / stride_h + 1, zero padding. */
Tensor *op_conv2d(Tape *tp, Tensor *x, Tensor *w, Tensor *b, int stride_h, int stride_w, int pad_h, int pad_w);

#endif
