/* train_gan.h: `attngan train`: AttnGAN + ZSL training (the seed's trainer.py) on the pretrained,
 * frozen encoders. */
#ifndef ATTNGAN_TRAIN_GAN_H
#define ATTNGAN_TRAIN_GAN_H

#include "run.h"

/* 0 on success, 1 on a training failure (NaN, a bad photo: message printed), 2 on bad input. */
int train_gan_main(const RunArgs *a);

#endif
