/* layers.c: Conv2d, BatchNorm and Linear modules over a ParamSet; see layers.h. */
#include "layers.h"

#include <stdarg.h>
#include <stdio.h>

const char *pname(char *buf, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, NAME_MAX_LEN, fmt, ap);
    va_end(ap);
    CHECK(n >= 0 && n < NAME_MAX_LEN, "parameter name too long: %s...", buf);
    return buf;
}

void conv2d_layer_init(Conv2dLayer *l, ParamSet *ps, const char *prefix, int cin, int cout, int kh, int kw,
                       int stride, int pad_h, int pad_w, int bias) {
    char n[NAME_MAX_LEN];
    l->weight = PARAM(ps, pname(n, "%s.weight", prefix), cout, cin, kh, kw);
    l->bias = bias ? PARAM(ps, pname(n, "%s.bias", prefix), cout) : NULL;
    l->stride_h = l->stride_w = stride;
    l->pad_h = pad_h;
    l->pad_w = pad_w;
}

Tensor *conv2d_layer_forward(Tape *tp, const Conv2dLayer *l, Tensor *x) {
    return op_conv2d(tp, x, l->weight, l->bias, l->stride_h, l->stride_w, l->pad_h, l->pad_w);
}

void batchnorm_layer_init(BatchNormLayer *l, ParamSet *ps, const char *prefix, int c, float eps) {
    char n[NAME_MAX_LEN];
    l->weight = PARAM(ps, pname(n, "%s.weight", prefix), c);
    l->bias = PARAM(ps, pname(n, "%s.bias", prefix), c);
    l->running_mean = BUFFER(ps, pname(n, "%s.running_mean", prefix), c);
    l->running_var = BUFFER(ps, pname(n, "%s.running_var", prefix), c);
    l->num_batches_tracked = paramset_add_i64(ps, pname(n, "%s.num_batches_tracked", prefix));
    l->eps = eps;
    l->momentum = 0.1f;
}

Tensor *batchnorm_layer_forward(Tape *tp, BatchNormLayer *l, Tensor *x, int train) {
    return op_batchnorm(tp, x, l->weight, l->bias, l->running_mean, l->running_var, l->num_batches_tracked, train,
                        l->momentum, l->eps);
}

void linear_layer_init(LinearLayer *l, ParamSet *ps, const char *prefix, int in, int out, int bias) {
    char n[NAME_MAX_LEN];
    l->weight = PARAM(ps, pname(n, "%s.weight", prefix), out, in);
    l->bias = bias ? PARAM(ps, pname(n, "%s.bias", prefix), out) : NULL;
}

Tensor *linear_layer_forward(Tape *tp, const LinearLayer *l, Tensor *x) { return op_linear(tp, x, l->weight, l->bias); }
