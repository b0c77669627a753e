/* fused.h: compositions of ops computed as one, where that saves memory or passes over memory.
 *
 * op_conv2d_bn_relu_frozen: relu(batchnorm_eval(conv2d(x, w))) for a frozen convolution and a
 * frozen eval-mode batch norm (the Inception trunk inside the GAN step). The forward runs the
 * convolution, then batch norm and relu in place over its output, with exactly the unfused
 * kernels' arithmetic. The node keeps no activation at all, only the relu's pass bits (1/32 of
 * the output; the unfused ops keep the input, the conv output and the batch-norm output), since
 * the input gradient of a convolution does not read its input. Backward: dz = dout * bit * gamma *
 * rstd per channel, then the convolution's input gradient. The gradients of w, gamma and beta are not computed, so every one
 * of them must have requires_grad false (CHECKed).
 * Layouts: x may be NCHW or nChw16c (Tensor.blocked); `blocked` makes the output (and its
 * gradient) nChw16c (O % 16 == 0, oneDNN), so a chain of these ops, pools and concats runs with no
 * layout conversion between oneDNN's primitives (the trunk; src/nn/image_encoder.c).
 *
 * On a device (device.h) each op here runs the ops it fuses (conv2d, batchnorm, relu, nearest
 * upsampling) in NCHW: the same values to rounding, the unfused ops' memory. The fusions save
 * host memory bandwidth that a GPU does not lack as much.
 */
#ifndef ATTNGAN_OPS_FUSED_H
#define ATTNGAN_OPS_FUSED_H

#include "../core/tape.h"

#include <stdint.h>

/* x (N, C, H, W), w (O, C, KH, KW), gamma/beta/running_mean/running_var (O) -> (N, O, OH, OW),
 * nChw16c when blocked */
Tensor *op_conv2d_bn_relu_frozen(Tape *tp, Tensor *x, Tensor *w, int stride_h, int stride_w, int pad_h, int pad_w,
                                 Tensor *gamma, Tensor *beta, Tensor *running_mean, Tensor *running_var, float eps,
                                 int blocked);

/* relu(batchnorm_train(conv2d(x, w))) with no gradient wanted (CHECKed: nothing may be recorded):
 * the DAMSM step's frozen trunk, whose batch norms run in train mode. The batch statistics
 * normalise the output and update running_mean / running_var (unbiased variance, momentum) and
 * num_batches_tracked (may be NULL), as batchnorm does. A donated x is overwritten chunk by chunk
 * (conv2d_forward_over). Layouts as op_conv2d_bn_relu_frozen; in NCHW the three ops' bits, in
 * nChw16c the statistics sum in another order (double sums: equal to rounding). */
Tensor *op_conv2d_bn_train_relu_nograd(Tape *tp, Tensor *x, Tensor *w, int stride_h, int stride_w, int pad_h,
                                       int pad_w, Tensor *gamma, Tensor *beta, Tensor *running_mean,
                                       Tensor *running_var, int64_t *num_batches_tracked, float momentum, float eps,
                                       int blocked);

/* Kernels: the relu's pass bits of y (bit i of mask[i / 8] = !(y[i] <= 0)); and
 * dz (N, O, S) = dout * bit * scale[o], scale (O) = gamma * rstd (overwrites dz, which may be dout
 * itself; blocked: dz, dout and the bits in nChw16c order). */
void relu_mask_pack(uint8_t *mask, const float *y, int64_t n);
void bn_relu_eval_backward(float *dz, const float *dout, const uint8_t *mask, const float *scale, int N, int O, int S,
                           int blocked);

/* op_upsample2x_conv2d: conv2d(upsample_nearest2x(x), w, b), stride 1, the given padding (G's
 * upBlock). The upsampled input exists one batch chunk (at most 16 MB) at a time, in the forward
 * and again in the backward (recomputed for the weight gradient), so neither pass keeps the 4x
 * larger tensor: the node saves x only. The same bits as the two ops in the forward; the weight
 * gradient sums over the chunks. */
Tensor *op_upsample2x_conv2d(Tape *tp, Tensor *x, Tensor *w, Tensor *b, int pad_h, int pad_w);

/* ---- CUDA twins (src/ops/cuda/fused.cu, built by `make CUDA=1`): the contracts above over device
 * pointers (mask too), on the backend's stream (cu_stream), without synchronising. NCHW only: the
 * nChw16c layout is CPU-only (oneDNN), and bn_relu_eval_backward_cuda FAILs for blocked != 0. */
void relu_mask_pack_cuda(uint8_t *mask, const float *y, int64_t n);
void bn_relu_eval_backward_cuda(float *dz, const float *dout, const uint8_t *mask, const float *scale, int N, int O, int S,
                                int blocked);
/* scale (O) = rstd (O) * gamma (O): the loop of op_conv2d_bn_relu_frozen that fills its node's scale
 * (no CPU kernel function: the op runs it inline; a device op calls this). */
void conv2d_bn_relu_scale_cuda(float *scale, const float *rstd, const float *gamma, int O);

#endif
