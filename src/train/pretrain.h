/* pretrain.h: `attngan pretrain`: DAMSM + ZSL pretraining of the text and image encoders (the
 * seed's pretrain_DAMSM.py), on photos or on cached frozen-trunk features. */
#ifndef ATTNGAN_PRETRAIN_H
#define ATTNGAN_PRETRAIN_H

#include "run.h"

/* 0 on success, 1 on a training failure (NaN, a bad photo: message printed), 2 on bad input. */
int pretrain_main(const RunArgs *a);

#endif
