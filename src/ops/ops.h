/* ops.h: every op family of src/ops. */
#ifndef ATTNGAN_OPS_H
#define ATTNGAN_OPS_H

#include "activation.h"
#include "arith.h"
#include "batchnorm.h"
#include "conv2d.h"
#include "diffaug.h"
#include "dropout.h"
#include "embedding.h"
#include "fused.h"
#include "linear.h"
#include "loss.h"
#include "lstm.h"
#include "matmul.h"
#include "norm.h"
#include "pool.h"
#include "resample.h"
#include "shape.h"
#include "softmax.h"

#endif
