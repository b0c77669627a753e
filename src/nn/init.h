/* init.h: weight initialisation as the original code does it, so a run from scratch starts where
 * PyTorch's would (in distribution; the random streams differ).
 *  - PyTorch's defaults: Linear / Conv2d weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
 *    BatchNorm weight 1, bias 0, running stats (0, 1), LSTM U(-1/sqrt(H), 1/sqrt(H)).
 *  - AttnGAN's RNN_ENCODER: the embedding U(-0.1, 0.1); CNN_ENCODER: its two heads U(-0.1, 0.1).
 *  - AttnGAN's weights_init for G and the Ds: orthogonal conv/linear weights (gain 1, zero bias),
 *    BatchNorm weight N(1, 0.02), bias 0. */
#ifndef ATTNGAN_INIT_H
#define ATTNGAN_INIT_H

#include "discriminator.h"
#include "generator.h"
#include "image_encoder.h"
#include "text_encoder.h"
#include "zsl.h"

void init_uniform(Tensor *t, float lo, float hi, Rng *rng);
/* torch.nn.init.orthogonal_(t, 1): t viewed as (shape[0], rest). */
void init_orthogonal(Tensor *t, Rng *rng);
/* PyTorch's default for every entry of a ParamSet, by its name and shape (see above). */
void init_default(ParamSet *ps, Rng *rng);

void init_text_encoder(TextEncoder *te, Rng *rng);
void init_image_encoder_heads(ImageEncoder *ie, Rng *rng);
void init_zsl_d(ZslD *zd, Rng *rng);
/* AttnGAN's weights_init over G or a D. */
void init_attngan(ParamSet *ps, Rng *rng);

#endif
