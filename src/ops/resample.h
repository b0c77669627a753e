/* resample.h: nearest x2 upsampling and bilinear resizing (align_corners=False, no antialias).
 * Tape-level ops return a new tensor on the tape and record their backward; see src/ops/README.md
 * for the op contract. */
#ifndef ATTNGAN_OPS_RESAMPLE_H
#define ATTNGAN_OPS_RESAMPLE_H

#include "../core/core.h"

/* x (N, C, H, W) -> (N, C, 2H, 2W), out[y][x] = in[y/2][x/2] */
Tensor *op_upsample_nearest2x(Tape *tp, Tensor *x);
/* x (N, C, H, W) -> (N, C, OH, OW), PyTorch F.interpolate(mode="bilinear", align_corners=False):
 * src = max(0, (dst + 0.5) * in/out - 0.5); same size is an exact copy. */
Tensor *op_resize_bilinear(Tape *tp, Tensor *x, int out_h, int out_w);

#endif
