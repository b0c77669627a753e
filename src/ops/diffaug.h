/* diffaug.h: differentiable augmentation (DiffAugment, Zhao et al., NeurIPS 2020): the same random
 * colour, translation and cutout applied to the real and the generated images a discriminator sees,
 * with gradients flowing through to the generator.
 * Tape-level ops return a new tensor on the tape and record their backward; see src/ops/README.md
 * for the op contract. */
#ifndef ATTNGAN_OPS_DIFFAUG_H
#define ATTNGAN_OPS_DIFFAUG_H

#include "../core/core.h"

/* Which transforms, as DiffAugment's policy string "color,translation,cutout". */
enum { DIFFAUG_COLOR = 1, DIFFAUG_TRANSLATION = 2, DIFFAUG_CUTOUT = 4 };

/* One sample's draw. Colour: x + brightness; then (x - channel mean) * saturation + channel mean
 * (per pixel); then (x - image mean) * contrast + image mean. Translation: out[i][j] =
 * x[i + dy][j + dx], zero outside. Cutout: zero on rows [cy0, cy1) x columns [cx0, cx1). */
typedef struct DiffAugSample {
    float brightness, saturation, contrast; /* 0, 1, 1: no colour change */
    int dx, dy;                             /* 0, 0: no translation */
    int cx0, cx1, cy0, cy1;                 /* empty when cx0 >= cx1 */
} DiffAugSample;

/* Parses a policy ("" or "none": 0; else comma-separated color / translation / cutout); -1 with
 * err_msg() naming the unknown part. */
int diffaug_parse_policy(const char *s, int *policy);

/* Draws B samples' parameters for (H, W) images as DiffAugment draws them: brightness U(-0.5,
 * 0.5), saturation U(0, 2), contrast U(0.5, 1.5); shifts uniform in [-s, s] with s = int(size /
 * 8 + 0.5); a cutout of int(size / 2 + 0.5) centred uniformly (clipped to the image). */
void diffaug_draw(DiffAugSample *p, int B, int H, int W, int policy, Rng *rng);

/* Kernels. out (B, C, H, W) = aug(inp (B, C, H, W)). */
void diffaug_forward(float *out, const float *inp, const DiffAugSample *p, int B, int C, int H, int W);
/* dinp (B, C, H, W) += d aug / d inp applied to dout (B, C, H, W) (the map is affine per sample). */
void diffaug_backward(float *dinp, const float *dout, const DiffAugSample *p, int B, int C, int H, int W);

/* y = aug(x) for x (B, C, H, W) with the given per-sample parameters (copied). */
Tensor *op_diffaug(Tape *tp, Tensor *x, const DiffAugSample *p);

/* ---- CUDA twins (src/ops/cuda/diffaug.cu, built by `make CUDA=1`): the contracts above over device
 * images and gradients, on the backend's stream (cu_stream), without synchronising. p (B) is HOST
 * memory (diffaug_draw's output): each call copies it to the device with cudaMemcpyAsync, which has
 * read it when it returns. */
void diffaug_forward_cuda(float *out, const float *inp, const DiffAugSample *p, int B, int C, int H, int W);
void diffaug_backward_cuda(float *dinp, const float *dout, const DiffAugSample *p, int B, int C, int H, int W);

#endif
