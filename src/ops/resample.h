/* resample.h: nearest x2 upsampling and bilinear resizing (align_corners False or True, no
 * antialias).
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
/* The same with a choice of corners: align_corners = 0 is op_resize_bilinear; 1 is PyTorch's
 * F.interpolate(mode="bilinear", align_corners=True) (= TF resizeBilinear(alignCorners=true)):
 * src = dst * (in - 1) / (out - 1) (0 for out == 1); same size is an exact copy. */
Tensor *op_resize_bilinear_ac(Tape *tp, Tensor *x, int out_h, int out_w, int align_corners);

/* Kernels; NC = N * C image planes, each parallel unit is one plane. */
/* out (NC, 2H, 2W), inp (NC, H, W) */
void upsample_nearest2x_forward(float *out, const float *inp, int64_t NC, int H, int W);
/* dinp (NC, H, W) += sum of the 2x2 block of dout (NC, 2H, 2W) */
void upsample_nearest2x_backward(float *dinp, const float *dout, int64_t NC, int H, int W);
/* out (NC, OH, OW), inp (NC, H, W) */
void resize_bilinear_forward(float *out, const float *inp, int64_t NC, int H, int W, int OH, int OW);
/* dinp (NC, H, W) += scatter of dout (NC, OH, OW) with the forward's weights */
void resize_bilinear_backward(float *dinp, const float *dout, int64_t NC, int H, int W, int OH, int OW);
/* The two above with align_corners (0: identical to them; 1: PyTorch's align_corners=True). */
void resize_bilinear_ac_forward(float *out, const float *inp, int64_t NC, int H, int W, int OH, int OW,
                                int align_corners);
void resize_bilinear_ac_backward(float *dinp, const float *dout, int64_t NC, int H, int W, int OH, int OW,
                                 int align_corners);


/* ---- CUDA twins (src/ops/cuda/resample.cu, built by `make CUDA=1`): the contracts above over device
 * pointers, on the backend's stream (cu_stream), without synchronising; backward gathers per input
 * element (bitwise deterministic, the CPU's order of additions). */
void upsample_nearest2x_forward_cuda(float *out, const float *inp, int64_t NC, int H, int W);
void upsample_nearest2x_backward_cuda(float *dinp, const float *dout, int64_t NC, int H, int W);
void resize_bilinear_forward_cuda(float *out, const float *inp, int64_t NC, int H, int W, int OH, int OW);
void resize_bilinear_backward_cuda(float *dinp, const float *dout, int64_t NC, int H, int W, int OH, int OW);
void resize_bilinear_ac_forward_cuda(float *out, const float *inp, int64_t NC, int H, int W, int OH, int OW,
                                     int align_corners);
void resize_bilinear_ac_backward_cuda(float *dinp, const float *dout, int64_t NC, int H, int W, int OH, int OW,
                                      int align_corners);

#endif
