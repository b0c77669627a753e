/* layers.h: the PyTorch modules the networks are made of (Conv2d, BatchNorm, Linear), each a
 * few tensors registered in a ParamSet under its state_dict prefix, with a forward on the tape. */
#ifndef ATTNGAN_LAYERS_H
#define ATTNGAN_LAYERS_H

#include "../ops/ops.h"

/* snprintf into a static-size name buffer; names longer than NAME_MAX_LEN are fatal. */
#define NAME_MAX_LEN 160
const char *pname(char *buf, const char *fmt, ...) ATTR_PRINTF(2, 3);

typedef struct Conv2dLayer {
    Tensor *weight;          /* (O, C, KH, KW)  <prefix>.weight */
    Tensor *bias;            /* (O) or NULL     <prefix>.bias   */
    int stride_h, stride_w, pad_h, pad_w;
} Conv2dLayer;
void conv2d_layer_init(Conv2dLayer *l, ParamSet *ps, const char *prefix, int cin, int cout, int kh, int kw,
                       int stride, int pad_h, int pad_w, int bias);
Tensor *conv2d_layer_forward(Tape *tp, const Conv2dLayer *l, Tensor *x);

typedef struct BatchNormLayer {
    Tensor *weight, *bias;               /* (C) <prefix>.weight, .bias */
    Tensor *running_mean, *running_var;  /* (C) buffers */
    int64_t *num_batches_tracked;        /* 0-d I64 buffer */
    float eps, momentum;
} BatchNormLayer;
/* Affine, tracking running statistics (nn.BatchNorm1d/2d defaults, momentum 0.1). */
void batchnorm_layer_init(BatchNormLayer *l, ParamSet *ps, const char *prefix, int c, float eps);
/* train: batch statistics and a running-stat update; else running statistics. */
Tensor *batchnorm_layer_forward(Tape *tp, BatchNormLayer *l, Tensor *x, int train);

typedef struct LinearLayer {
    Tensor *weight;          /* (OUT, IN) */
    Tensor *bias;            /* (OUT) or NULL */
} LinearLayer;
void linear_layer_init(LinearLayer *l, ParamSet *ps, const char *prefix, int in, int out, int bias);
Tensor *linear_layer_forward(Tape *tp, const LinearLayer *l, Tensor *x);

#endif
