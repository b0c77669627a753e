/* fused.c: fused compositions of ops; see fused.h. */
#include "fused.h"
#include "../core/mempool.h"
#include "../core/profile.h"
#include "activation.h"
#include "batchnorm.h"
#include "conv2d.h"
#include "resample.h"

#include <math.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <stdint.h>
#include <string.h>

/* element counts below this run on one thread */
#define FUSED_PAR_MIN 32768
#define BLK 16 /* channels per block of an nChw16c tensor */

/* y (N, O/16, S, 16) = relu(y * alpha[c] + shift[c]) in place, c = block * 16 + lane: eval batch
 * norm and relu over an nChw16c tensor with batchnorm_forward's and relu_forward's arithmetic;
 * mask (or NULL) gets relu_mask_pack's bits in the same pass (a position's 16 bits are two bytes). */
static void bn_relu_eval_forward_blk(float *y, uint8_t *mask, const float *alpha, const float *shift, int N, int O,
                                     int S) {
    int64_t rows = (int64_t)N * (O / BLK);
#pragma omp parallel for schedule(static) if (rows * S * BLK > FUSED_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *a = alpha + (r % (O / BLK)) * BLK, *b = shift + (r % (O / BLK)) * BLK;
#if defined(__AVX512F__)
        const __m512 va = _mm512_loadu_ps(a), vb = _mm512_loadu_ps(b);
        for (int i = 0; i < S; i++) {
            float *v = y + (r * S + i) * BLK;
            __m512 z = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(v), va), vb); /* no FMA: the unfused bits */
            __mmask16 keep = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_NLE_UQ); /* z > 0 or NaN */
            _mm512_storeu_ps(v, _mm512_maskz_mov_ps(keep, z));
            if (mask) {
                int64_t e0 = (r * S + i) * BLK;
                mask[e0 >> 3] = (uint8_t)keep;
                mask[(e0 >> 3) + 1] = (uint8_t)(keep >> 8);
            }
        }
#else
        for (int i = 0; i < S; i++) {
            float *v = y + (r * S + i) * BLK;
            uint32_t bits = 0;
            for (int l = 0; l < BLK; l++) {
                float z = v[l] * a[l] + b[l];
                float o = (z > 0.0f || isnan(z)) ? z : 0.0f;
                v[l] = o;
                bits |= (uint32_t)!(o <= 0.0f) << l;
            }
            if (mask) {
                int64_t e0 = (r * S + i) * BLK;
                mask[e0 >> 3] = (uint8_t)bits;
                mask[(e0 >> 3) + 1] = (uint8_t)(bits >> 8);
            }
        }
#endif
    }
}

/* mask (ceil(n / 8)) <- bit i = !(y[i] <= 0), relu_backward's condition (NaN passes) */
void relu_mask_pack(uint8_t *mask, const float *y, int64_t n) {
    int64_t nb = (n + 7) / 8;
#pragma omp parallel for schedule(static) if (n > FUSED_PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
        uint32_t m = 0;
        if (b * 8 + 8 <= n) {
#pragma omp simd reduction(| : m)
            for (int j = 0; j < 8; j++) m |= (uint32_t)(!(y[b * 8 + j] <= 0.0f)) << j;
        } else {
            for (int j = 0; b * 8 + j < n; j++) m |= (uint32_t)(!(y[b * 8 + j] <= 0.0f)) << j;
        }
        mask[b] = (uint8_t)m;
    }
}

/* dz (N, O, S) = dout * mask * scale[o] (the relu's, then the eval batch norm's input gradient, in
 * the unfused kernels' arithmetic: relu_backward adds dout into zeros, batchnorm_backward with
 * train = 0 multiplies by gamma * rstd) */
void bn_relu_eval_backward(float *dz, const float *dout, const uint8_t *mask, const float *scale, int N, int O, int S,
                           int blocked) {
    if (blocked) { /* rows of (S, 16): channel block r % (O / 16); a position's 16 bits are two whole bytes */
        int64_t rows = (int64_t)N * (O / BLK);
#pragma omp parallel for schedule(static) if (rows * S * BLK > FUSED_PAR_MIN)
        for (int64_t r = 0; r < rows; r++) {
            const float *k = scale + (r % (O / BLK)) * BLK;
            for (int i = 0; i < S; i++) {
                int64_t e0 = (r * S + i) * BLK;
                const float *g = dout + e0;
                float *d = dz + e0;
                const uint32_t bits = (uint32_t)mask[e0 >> 3] | (uint32_t)mask[(e0 >> 3) + 1] << 8;
#pragma omp simd
                for (int l = 0; l < BLK; l++) d[l] = ((bits >> l) & 1u ? g[l] : 0.0f) * k[l];
            }
        }
        return;
    }
    int64_t rows = (int64_t)N * O;
#pragma omp parallel for schedule(static) if (rows * S > FUSED_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        float k = scale[r % O];
        const int64_t e0 = r * S;
        const float *g = dout + e0;
        float *d = dz + e0;
        int i = 0;
        for (; i < S && ((e0 + i) & 7); i++) /* up to the next whole byte of bits */
            d[i] = ((mask[(e0 + i) >> 3] >> ((e0 + i) & 7)) & 1 ? g[i] : 0.0f) * k;
        for (; i + 8 <= S; i += 8) { /* a byte at a time */
            const uint32_t bits = mask[(e0 + i) >> 3];
#pragma omp simd
            for (int l = 0; l < 8; l++) d[i + l] = ((bits >> l) & 1u ? g[i + l] : 0.0f) * k;
        }
        for (; i < S; i++) d[i] = ((mask[(e0 + i) >> 3] >> ((e0 + i) & 7)) & 1 ? g[i] : 0.0f) * k;
    }
}

typedef struct ConvBnReluCtx {
    Conv2dShape s;
    float *scale;   /* (O) gamma * rstd */
    uint8_t *mask;  /* (ceil(n / 8)) the relu's pass bits: the node keeps no activation */
    float *scratch; /* the im2col fallback's scratch, NULL on the oneDNN path */
} ConvBnReluCtx;

static void conv_bn_relu_bwd(Node *nd) {
    Tensor *x = nd->in[0], *w = nd->in[1], *y = nd->out[0];
    const ConvBnReluCtx *c = nd->ctx;
    int set;
    float *dx = tensor_grad_overwrite(x, &set);
    if (!dx) return;
    const Conv2dShape *s = &c->s;
    /* in place: the tape drops y's gradient right after this node (tape.c run_backward) */
    float *dz = y->grad;
    bn_relu_eval_backward(dz, y->grad, c->mask, c->scale, s->N, s->O, s->OH * s->OW, s->out_blocked);
    /* the input gradient needs no input; written when it is the first one x receives */
    if (set) conv2d_backward_data_set(dx, dz, w->data, s, c->scratch);
    else conv2d_backward(dx, NULL, NULL, dz, NULL, w->data, s, c->scratch);
    PROFILE_OP_FLOPS(2.0 * (double)y->n * s->C * s->KH * s->KW);
}

static void check_vec(const Tensor *t, int O, const char *what) {
    char b[64];
    CHECK(t && t->ndim == 1 && t->shape[0] == O, "conv2d_bn_relu_frozen: %s %s must be (%d)", what,
          t ? tensor_shape_str(t, b, sizeof b) : "NULL", O);
}

Tensor *op_conv2d_bn_relu_frozen(Tape *tp, Tensor *x, Tensor *w, int stride_h, int stride_w, int pad_h, int pad_w,
                                 Tensor *gamma, Tensor *beta, Tensor *running_mean, Tensor *running_var, float eps,
                                 int blocked) {
    if (tp->device != DEVICE_CPU) { /* on a device: the ops it fuses (see the head of fused.h) */
        CHECK(!blocked && !x->blocked, "conv2d_bn_relu_frozen: the nChw16c layout is the CPU's (oneDNN)");
        Tensor *frozen[] = {w, gamma, beta};
        for (int k = 0; k < 3; k++)
            CHECK(!frozen[k]->requires_grad, "conv2d_bn_relu_frozen: the weights must not require gradients");
        Tensor *z = op_conv2d(tp, x, w, NULL, stride_h, stride_w, pad_h, pad_w);
        z = op_batchnorm(tp, z, gamma, beta, running_mean, running_var, NULL, 0, 0.1f, eps);
        return op_relu(tp, z);
    }
    PROFILE_OP_BEGIN();
    char xs[64], ws[64];
    CHECK(x && w && x->ndim == 4 && w->ndim == 4 && x->shape[1] == w->shape[1],
          "conv2d_bn_relu_frozen: input %s and weight %s must be (N, C, H, W) and (O, C, KH, KW)",
          x ? tensor_shape_str(x, xs, sizeof xs) : "NULL", w ? tensor_shape_str(w, ws, sizeof ws) : "NULL");
    CHECK(stride_h >= 1 && stride_w >= 1 && pad_h >= 0 && pad_w >= 0 && x->shape[2] + 2 * pad_h >= w->shape[2] &&
              x->shape[3] + 2 * pad_w >= w->shape[3],
          "conv2d_bn_relu_frozen: stride (%d, %d), padding (%d, %d), kernel %dx%d and input %s do not fit", stride_h,
          stride_w, pad_h, pad_w, w->shape[2], w->shape[3], tensor_shape_str(x, xs, sizeof xs));
    int O = w->shape[0];
    check_vec(gamma, O, "gamma");
    check_vec(beta, O, "beta");
    check_vec(running_mean, O, "running_mean");
    check_vec(running_var, O, "running_var");
    CHECK(!w->requires_grad && !gamma->requires_grad && !beta->requires_grad,
          "conv2d_bn_relu_frozen: the weight, gamma and beta must not require gradients (use conv2d, batchnorm, relu)");
    CHECK(eps >= 0.0f, "conv2d_bn_relu_frozen: eps %g must be >= 0", (double)eps);
    CHECK(!blocked || (O % BLK == 0 && conv2d_get_impl() == CONV2D_DNNL),
          "conv2d_bn_relu_frozen: an nChw16c output needs %d output channels a multiple of 16 and oneDNN", O);
    Conv2dShape s = conv2d_shape(x->shape[0], x->shape[1], x->shape[2], x->shape[3], O, w->shape[2], w->shape[3],
                                 stride_h, stride_w, pad_h, pad_w);
    s.in_blocked = x->blocked;
    s.out_blocked = blocked;
    Tensor *y = TNEW(tp, s.N, s.O, s.OH, s.OW);
    y->blocked = blocked;
    Tensor *in[] = {x, w, gamma, beta}, *out[] = {y};
    /* the relu's pass bits, when a node will keep them: in the blocked pass itself */
    uint8_t *mask = tape_would_record(tp, 4, in) ? tape_alloc(tp, (size_t)(y->n + 7) / 8) : NULL;
    size_t n_scratch = conv2d_op_scratch_floats(&s, 0); /* 0 on the oneDNN path */
    float *scratch = n_scratch ? tape_alloc(tp, n_scratch * sizeof(float)) : NULL;
    conv2d_forward(y->data, x->data, w->data, NULL, &s, scratch);
    float *rstd = tape_alloc(tp, (size_t)O * sizeof(float));
    int S = s.OH * s.OW;
    /* in place over the conv output, as the unfused kernels compute it */
    if (blocked) {
        float *alpha = mempool_alloc((size_t)2 * O * sizeof(float)), *shift = alpha + O;
        batchnorm_factors(alpha, shift, rstd, running_mean->data, running_var->data, gamma->data, beta->data, O, eps);
        bn_relu_eval_forward_blk(y->data, mask, alpha, shift, s.N, O, S);
        mempool_free(alpha);
    } else {
        batchnorm_forward(y->data, rstd, y->data, running_mean->data, running_var->data, gamma->data, beta->data, s.N, O,
                          S, eps);
        relu_forward(y->data, y->data, y->n);
        if (mask) relu_mask_pack(mask, y->data, y->n);
    }
    PROFILE_OP_FLOPS(2.0 * (double)y->n * s.C * s.KH * s.KW);
    Node *nd = TAPE_RECORD(tp, "conv2d_bn_relu", conv_bn_relu_bwd, in, out);
    CHECK((nd != NULL) == (mask != NULL), "conv2d_bn_relu_frozen: recorded %d but kept the relu bits %d", nd != NULL,
          mask != NULL);
    if (nd) {
        ConvBnReluCtx *c = tape_alloc(tp, sizeof *c);
        c->s = s;
        c->scratch = scratch;
        c->scale = rstd;
        for (int o = 0; o < O; o++) c->scale[o] = rstd[o] * gamma->data[o]; /* batchnorm_backward's r * w */
        c->mask = mask;
        nd->ctx = c;
        tape_node_data_unused(nd); /* neither x nor y: the weights are frozen, the mask is saved */
    }
    return y;
}

/* ---------------------------------------------------------------- conv2d + batchnorm (train) + relu, no gradients */

/* mean (C), var (C) <- per-channel batch mean and biased variance of y (N, C/16, S, 16), as
 * batchnorm_stats: sums in double per channel, the variance from the float mean */
static void bn_stats_blk(float *mean, float *var, const float *y, int N, int C, int S) {
    int CB = C / BLK;
    int64_t M = (int64_t)N * S;
#pragma omp parallel for schedule(static) if ((int64_t)C * M > FUSED_PAR_MIN)
    for (int cb = 0; cb < CB; cb++) {
        double sum[BLK] = {0}, sq[BLK] = {0};
        for (int n = 0; n < N; n++) {
            const float *v = y + ((int64_t)n * CB + cb) * S * BLK;
            double part[BLK] = {0};
            for (int i = 0; i < S; i++)
#pragma omp simd
                for (int l = 0; l < BLK; l++) part[l] += v[(int64_t)i * BLK + l];
            for (int l = 0; l < BLK; l++) sum[l] += part[l];
        }
        float m[BLK];
        for (int l = 0; l < BLK; l++) m[l] = (float)(sum[l] / (double)M);
        for (int n = 0; n < N; n++) {
            const float *v = y + ((int64_t)n * CB + cb) * S * BLK;
            double part[BLK] = {0};
            for (int i = 0; i < S; i++)
#pragma omp simd
                for (int l = 0; l < BLK; l++) {
                    float d = v[(int64_t)i * BLK + l] - m[l];
                    part[l] += d * d;
                }
            for (int l = 0; l < BLK; l++) sq[l] += part[l];
        }
        for (int l = 0; l < BLK; l++) {
            mean[cb * BLK + l] = m[l];
            var[cb * BLK + l] = (float)(sq[l] / (double)M);
        }
    }
}

Tensor *op_conv2d_bn_train_relu_nograd(Tape *tp, Tensor *x, Tensor *w, int stride_h, int stride_w, int pad_h,
                                       int pad_w, Tensor *gamma, Tensor *beta, Tensor *running_mean,
                                       Tensor *running_var, int64_t *num_batches_tracked, float momentum, float eps,
                                       int blocked) {
    if (tp->device != DEVICE_CPU) { /* on a device: the ops it fuses */
        CHECK(!blocked && !x->blocked, "conv2d_bn_train_relu: the nChw16c layout is the CPU's (oneDNN)");
        Tensor *ins[] = {x, w, gamma, beta};
        CHECK(!tape_would_record(tp, 4, ins), "conv2d_bn_train_relu: no gradient may be wanted through it (use conv2d, "
                                              "batchnorm, relu)");
        Tensor *z = op_conv2d(tp, x, w, NULL, stride_h, stride_w, pad_h, pad_w);
        z = op_batchnorm(tp, z, gamma, beta, running_mean, running_var, num_batches_tracked, 1, momentum, eps);
        return op_relu(tp, tape_donate(z));
    }
    PROFILE_OP_BEGIN();
    char xs[64], ws[64];
    CHECK(x && w && x->ndim == 4 && w->ndim == 4 && x->shape[1] == w->shape[1],
          "conv2d_bn_train_relu: input %s and weight %s must be (N, C, H, W) and (O, C, KH, KW)",
          x ? tensor_shape_str(x, xs, sizeof xs) : "NULL", w ? tensor_shape_str(w, ws, sizeof ws) : "NULL");
    int O = w->shape[0];
    check_vec(gamma, O, "gamma");
    check_vec(beta, O, "beta");
    check_vec(running_mean, O, "running_mean");
    check_vec(running_var, O, "running_var");
    Tensor *in[] = {x, w, gamma, beta};
    CHECK(!tape_would_record(tp, 4, in), "conv2d_bn_train_relu: no gradient may be wanted through it (use conv2d, "
                                          "batchnorm, relu)");
    CHECK(!blocked || (O % BLK == 0 && conv2d_get_impl() == CONV2D_DNNL),
          "conv2d_bn_train_relu: an nChw16c output needs %d output channels a multiple of 16 and oneDNN", O);
    Conv2dShape s = conv2d_shape(x->shape[0], x->shape[1], x->shape[2], x->shape[3], O, w->shape[2], w->shape[3],
                                 stride_h, stride_w, pad_h, pad_w);
    CHECK(stride_h >= 1 && stride_w >= 1 && s.OH >= 1 && s.OW >= 1, "conv2d_bn_train_relu: the kernel does not fit");
    int S = s.OH * s.OW;
    int64_t M = (int64_t)s.N * S;
    CHECK(M > 1, "conv2d_bn_train_relu: train mode needs more than 1 value per channel");
    s.in_blocked = x->blocked;
    s.out_blocked = blocked;
    /* a donated input is overwritten by the output, chunk by chunk */
    Tensor *y = tape_out_over(tp, x, 0, 4, (int[]){s.N, s.O, s.OH, s.OW});
    if (y) {
        conv2d_forward_over(y->data, w->data, NULL, &s);
        tape_shrink(y);
    } else {
        y = TNEW(tp, s.N, s.O, s.OH, s.OW);
        size_t n_scratch = conv2d_op_scratch_floats(&s, 0);
        float *scratch = n_scratch ? mempool_alloc(n_scratch * sizeof(float)) : NULL;
        conv2d_forward(y->data, x->data, w->data, NULL, &s, scratch);
        mempool_free(scratch);
    }
    y->blocked = blocked;
    float *mean = mempool_alloc((size_t)4 * O * sizeof(float)), *var = mean + O, *alpha = var + O, *shift = alpha + O;
    if (blocked) bn_stats_blk(mean, var, y->data, s.N, O, S);
    else batchnorm_stats(mean, var, y->data, s.N, O, S);
    batchnorm_update_running(running_mean->data, running_var->data, mean, var, O, M, momentum);
    if (num_batches_tracked) ++*num_batches_tracked;
    if (blocked) {
        batchnorm_factors(alpha, shift, NULL, mean, var, gamma->data, beta->data, O, eps);
        bn_relu_eval_forward_blk(y->data, NULL, alpha, shift, s.N, O, S);
    } else {
        batchnorm_forward(y->data, alpha, y->data, mean, var, gamma->data, beta->data, s.N, O, S, eps);
        relu_forward(y->data, y->data, y->n);
    }
    mempool_free(mean);
    PROFILE_OP_FLOPS(2.0 * (double)y->n * s.C * s.KH * s.KW);
    Tensor *out[] = {y};
    TAPE_RECORD(tp, "conv2d_bn_train_relu", NULL, in, out); /* profiles it; records nothing */
    return y;
}

/* ---------------------------------------------------------------- nearest 2x upsample + conv2d */

/* Batch rows per chunk: the upsampled chunk stays under UPCONV_CHUNK_BYTES. */
#define UPCONV_CHUNK_BYTES ((size_t)16 << 20)

typedef struct UpConvCtx {
    int H, W;        /* x's spatial size; the convolution sees 2H x 2W */
    Conv2dShape s;   /* the whole batch's convolution */
    int nb;          /* rows per chunk */
} UpConvCtx;

static Conv2dShape rows_shape(const Conv2dShape *s, int rows) {
    Conv2dShape c = *s;
    c.N = rows;
    return c;
}

static void upconv_bwd(Node *nd) {
    Tensor *x = nd->in[0], *w = nd->in[1], *b = nd->in[2], *y = nd->out[0];
    const UpConvCtx *c = nd->ctx;
    float *dx = tensor_grad_or_null(x), *dw = tensor_grad_or_null(w), *db = b ? tensor_grad_or_null(b) : NULL;
    const Conv2dShape *s = &c->s;
    size_t xs = (size_t)s->C * c->H * c->W, us = (size_t)s->C * s->H * s->W, ys = (size_t)s->O * s->OH * s->OW;
    float *up = mempool_alloc((size_t)c->nb * us * sizeof(float));
    float *dup = dx ? mempool_alloc((size_t)c->nb * us * sizeof(float)) : NULL;
    for (int n0 = 0; n0 < s->N; n0 += c->nb) {
        int rows = s->N - n0 < c->nb ? s->N - n0 : c->nb;
        Conv2dShape cs = rows_shape(s, rows);
        if (dw) upsample_nearest2x_forward(up, x->data + (size_t)n0 * xs, (int64_t)rows * s->C, c->H, c->W);
        const float *gy = y->grad + (size_t)n0 * ys;
        if (dup) conv2d_backward_data_set(dup, gy, w->data, &cs, NULL); /* written: no zeroing pass */
        conv2d_backward(NULL, dw, db, gy, dw ? up : NULL, w->data, &cs, NULL);
        if (dup) upsample_nearest2x_backward(dx + (size_t)n0 * xs, dup, (int64_t)rows * s->C, c->H, c->W);
    }
    mempool_free(up);
    mempool_free(dup);
    PROFILE_OP_FLOPS(2.0 * (double)y->n * s->C * s->KH * s->KW * ((dx != NULL) + (dw != NULL)));
}

Tensor *op_upsample2x_conv2d(Tape *tp, Tensor *x, Tensor *w, Tensor *b, int pad_h, int pad_w) {
    if (tp->device != DEVICE_CPU) /* on a device: the two ops (the chunking saves host memory) */
        return op_conv2d(tp, op_upsample_nearest2x(tp, x), w, b, 1, 1, pad_h, pad_w);
    PROFILE_OP_BEGIN();
    char xs_[64], ws_[64];
    CHECK(x && w && x->ndim == 4 && w->ndim == 4 && x->shape[1] == w->shape[1],
          "upsample2x_conv2d: input %s and weight %s must be (N, C, H, W) and (O, C, KH, KW)",
          x ? tensor_shape_str(x, xs_, sizeof xs_) : "NULL", w ? tensor_shape_str(w, ws_, sizeof ws_) : "NULL");
    CHECK(!b || (b->ndim == 1 && b->shape[0] == w->shape[0]), "upsample2x_conv2d: bias must be (%d)", w->shape[0]);
    int N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    CHECK(pad_h >= 0 && pad_w >= 0 && 2 * H + 2 * pad_h >= w->shape[2] && 2 * W + 2 * pad_w >= w->shape[3],
          "upsample2x_conv2d: kernel %dx%d, padding (%d, %d) and input %s do not fit", w->shape[2], w->shape[3], pad_h,
          pad_w, tensor_shape_str(x, xs_, sizeof xs_));
    Conv2dShape s = conv2d_shape(N, C, 2 * H, 2 * W, w->shape[0], w->shape[2], w->shape[3], 1, 1, pad_h, pad_w);
    Tensor *y = TNEW(tp, s.N, s.O, s.OH, s.OW);
    size_t us = (size_t)C * s.H * s.W;
    int nb = (int)(UPCONV_CHUNK_BYTES / (us * sizeof(float)));
    nb = nb < 1 ? 1 : nb > N ? N : nb;
    float *up = mempool_alloc((size_t)nb * us * sizeof(float));
    for (int n0 = 0; n0 < N; n0 += nb) {
        int rows = N - n0 < nb ? N - n0 : nb;
        Conv2dShape cs = rows_shape(&s, rows);
        upsample_nearest2x_forward(up, x->data + (size_t)n0 * C * H * W, (int64_t)rows * C, H, W);
        conv2d_forward(y->data + (size_t)n0 * s.O * s.OH * s.OW, up, w->data, b ? b->data : NULL, &cs, NULL);
    }
    mempool_free(up);
    PROFILE_OP_FLOPS(2.0 * (double)y->n * s.C * s.KH * s.KW);
    Tensor *in[] = {x, w, b}, *out[] = {y};
    Node *nd = TAPE_RECORD(tp, "upsample2x_conv2d", upconv_bwd, in, out);
    if (nd) {
        UpConvCtx *c = tape_alloc(tp, sizeof *c);
        c->H = H, c->W = W, c->s = s, c->nb = nb;
        nd->ctx = c;
    }
    return y;
}
