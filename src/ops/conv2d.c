/* conv2d.c: 2-d convolution (PyTorch nn.Conv2d without groups or dilation), forward and backward
 * on the CPU.
 *
 * im2col + GEMM. The N * OH * OW output positions of the batch are cut into chunks that bound the
 * scratch memory: a chunk is either a slice of one image's positions (large images) or a group of
 * whole images (small images, so that the GEMMs stay large). For each chunk the input patches are
 * unrolled into col (K = C*KH*KW rows, one column per output position), then
 *   forward   out  = W . col (+ b)
 *   backward  dW  += dout . col^T;   dcol = W^T . dout, folded back (+=) into dinp.
 * A 1x1 stride-1 unpadded convolution needs no unrolling: each image (C, H*W) is its col.
 *
 * Threads: everything runs under OpenMP over disjoint outputs: rows of col, planes of dinp,
 * channels, and fixed blocks of every GEMM output, each block one single-threaded OpenBLAS
 * call (OpenBLAS's own threads would split work by thread count and change the rounding). Chunks
 * are visited in a fixed order. So no sum depends on scheduling or on the thread count: results
 * are bitwise the same with 1 or 16 threads.
 */
#include "conv2d.h"
#include "../core/profile.h"

#include <cblas.h>
#include <string.h>

#define SCRATCH_CAP_FLOATS (1 << 20) /* default scratch bound: 4 MB per convolution */
#define MIN_COLS 64                  /* never unroll fewer positions than this at once (GEMM efficiency) */
#define PAR_MIN 32768                /* elements below which a loop stays serial */
#define GEMM_PAR_MIN (1 << 18)       /* multiply-adds below which a GEMM stays serial */
#define TILE_MAX 128                 /* GEMM output blocks: at most TILE_MAX square, */
#define TILE_MIN 32                  /* at least TILE_MIN on their longer side, */
#define TILES_WANTED 16              /* halved until there are this many */

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

Conv2dShape conv2d_shape(int N, int C, int H, int W, int O, int KH, int KW, int stride_h, int stride_w,
                         int pad_h, int pad_w) {
    Conv2dShape s = {N, C, H, W, O, KH, KW, stride_h, stride_w, pad_h, pad_w, 0, 0, 0};
    s.OH = (H + 2 * pad_h - KH) / stride_h + 1;
    s.OW = (W + 2 * pad_w - KW) / stride_w + 1;
    s.max_cols = imax(MIN_COLS, SCRATCH_CAP_FLOATS / (C * KH * KW + O));
    return s;
}

static int is_pointwise(const Conv2dShape *s) {
    return s->KH == 1 && s->KW == 1 && s->stride_h == 1 && s->stride_w == 1 && s->pad_h == 0 && s->pad_w == 0;
}

/* A chunk: output positions [p0, p0 + np) of images [n0, n0 + nimg); nimg > 1 only with whole images. */
typedef struct Chunk {
    int n0, nimg, p0, np;
} Chunk;

/* Chunk geometry: images per chunk and positions per image slice. */
static void chunk_plan(const Conv2dShape *s, int *imgs, int *slice) {
    int P = s->OH * s->OW, cols = imax(s->max_cols, 1);
    if (P >= cols) {
        int k = (P + cols - 1) / cols; /* slices per image, balanced */
        *slice = (P + k - 1) / k;
        *imgs = 1;
    } else {
        *slice = P;
        *imgs = imin(s->N, cols / P);
    }
}

size_t conv2d_scratch_floats(const Conv2dShape *s) {
    if (is_pointwise(s)) return 0;
    int imgs, slice;
    chunk_plan(s, &imgs, &slice);
    size_t cols = (size_t)imgs * slice, rows = (size_t)s->C * s->KH * s->KW + (imgs > 1 ? s->O : 0);
    return rows * cols;
}

/* ---------------------------------------------------------------- unroll and fold */

/* dst (np) = plane (H, W) at kernel offset (ki, kj) for output positions [p0, p0 + np), 0 in the padding. */
static void unroll_row(float *dst, const float *plane, const Conv2dShape *s, int ki, int kj, int p0, int np) {
    int oh = p0 / s->OW, ow = p0 % s->OW;
    for (int k = 0; k < np; oh++, ow = 0) {
        int len = imin(s->OW - ow, np - k), ih = oh * s->stride_h - s->pad_h + ki;
        if (ih < 0 || ih >= s->H) {
            memset(dst + k, 0, (size_t)len * sizeof(float));
        } else {
            const float *row = plane + (int64_t)ih * s->W;
            for (int t = 0; t < len; t++) {
                int iw = (ow + t) * s->stride_w - s->pad_w + kj;
                dst[k + t] = (iw >= 0 && iw < s->W) ? row[iw] : 0.0f;
            }
        }
        k += len;
    }
}

/* plane (H, W) += src (np) at kernel offset (ki, kj) for output positions [p0, p0 + np): unroll_row's adjoint. */
static void fold_row(float *plane, const float *src, const Conv2dShape *s, int ki, int kj, int p0, int np) {
    int oh = p0 / s->OW, ow = p0 % s->OW;
    for (int k = 0; k < np; oh++, ow = 0) {
        int len = imin(s->OW - ow, np - k), ih = oh * s->stride_h - s->pad_h + ki;
        if (ih >= 0 && ih < s->H) {
            float *row = plane + (int64_t)ih * s->W;
            for (int t = 0; t < len; t++) {
                int iw = (ow + t) * s->stride_w - s->pad_w + kj;
                if (iw >= 0 && iw < s->W) row[iw] += src[k + t];
            }
        }
        k += len;
    }
}

/* col (C*KH*KW, nimg*np) = the chunk's patches of inp (N, C, H, W); one thread per row. */
static void unroll(float *col, const float *inp, const Conv2dShape *s, const Chunk *ch) {
    int KK = s->KH * s->KW, rows = s->C * KK, cols = ch->nimg * ch->np;
#pragma omp parallel for schedule(static) if ((int64_t)rows * cols >= PAR_MIN)
    for (int r = 0; r < rows; r++) {
        int c = r / KK, ki = (r % KK) / s->KW, kj = r % s->KW;
        for (int i = 0; i < ch->nimg; i++) {
            const float *plane = inp + ((int64_t)(ch->n0 + i) * s->C + c) * s->H * s->W;
            unroll_row(col + (int64_t)r * cols + (int64_t)i * ch->np, plane, s, ki, kj, ch->p0, ch->np);
        }
    }
}

/* dinp (N, C, H, W) += the chunk's dcol (C*KH*KW, nimg*np) folded back; one thread per (image, channel) plane. */
static void fold(float *dinp, const float *dcol, const Conv2dShape *s, const Chunk *ch) {
    int KK = s->KH * s->KW, cols = ch->nimg * ch->np, planes = ch->nimg * s->C;
#pragma omp parallel for schedule(static) if ((int64_t)KK * s->C * cols >= PAR_MIN)
    for (int t = 0; t < planes; t++) {
        int i = t / s->C, c = t % s->C;
        float *plane = dinp + ((int64_t)(ch->n0 + i) * s->C + c) * s->H * s->W;
        for (int kk = 0; kk < KK; kk++) {
            const float *src = dcol + ((int64_t)c * KK + kk) * cols + (int64_t)i * ch->np;
            fold_row(plane, src, s, kk / s->KW, kk % s->KW, ch->p0, ch->np);
        }
    }
}

/* ---------------------------------------------------------------- GEMM steps */

/* C (M, N) = beta * C + op(A) . op(B), row-major (cblas_sgemm's arguments, alpha = 1), computed as
 * blocks of C, each one single-threaded sgemm, spread over OpenMP threads. The blocks depend only
 * on M and N (up to 128x128, halved down to 32 until there are enough of them for 16 threads), so
 * the result is the same for every thread count. */
static void sgemm_tiled(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc) {
    int bm = imin(M, TILE_MAX), bn = imin(N, TILE_MAX);
    while (((M + bm - 1) / bm) * ((N + bn - 1) / bn) < TILES_WANTED && imax(bm, bn) > TILE_MIN) {
        if (bn >= bm) bn = (bn + 1) / 2;
        else bm = (bm + 1) / 2;
    }
    int tiles_n = (N + bn - 1) / bn, tiles = (M + bm - 1) / bm * tiles_n;
#pragma omp parallel for schedule(dynamic, 1) if (tiles > 1 && (int64_t)M * N * K >= GEMM_PAR_MIN)
    for (int t = 0; t < tiles; t++) {
        int m0 = t / tiles_n * bm, n0 = t % tiles_n * bn;
        const float *a = ta == CblasNoTrans ? A + (int64_t)m0 * lda : A + m0;
        const float *b = tb == CblasNoTrans ? B + n0 : B + (int64_t)n0 * ldb;
        cblas_sgemm(CblasRowMajor, ta, tb, imin(bm, M - m0), imin(bn, N - n0), K, 1.0f, a, lda, b, ldb, beta,
                    C + (int64_t)m0 * ldc + n0, ldc);
    }
}

/* OpenBLAS runs single-threaded inside the kernels (sgemm_tiled brings the threads): returns the
 * previous count for blas_threads_restore. */
static int blas_single_thread(void) {
    int prev = openblas_get_num_threads();
    if (prev != 1) openblas_set_num_threads(1);
    return prev;
}

static void blas_threads_restore(int prev) {
    if (prev != 1) openblas_set_num_threads(prev);
}

/* out (O, cols; row stride ldo) = weight (O, K) . col (K, cols) + bias (O) or NULL */
static void gemm_forward(float *out, int ldo, const float *weight, const float *bias, const float *col, int K,
                         int O, int cols) {
    if (bias) {
#pragma omp parallel for schedule(static) if ((int64_t)O * cols >= PAR_MIN)
        for (int o = 0; o < O; o++)
            for (int k = 0; k < cols; k++) out[(int64_t)o * ldo + k] = bias[o];
    }
    sgemm_tiled(CblasNoTrans, CblasNoTrans, O, cols, K, weight, K, col, cols, bias ? 1.0f : 0.0f, out, ldo);
}

/* out (N, O, P) rows of the chunk's images = tmp (O, nimg*P) */
static void scatter_images(float *out, const float *tmp, const Conv2dShape *s, const Chunk *ch) {
    int P = ch->np, cols = ch->nimg * P;
#pragma omp parallel for schedule(static) if ((int64_t)s->O * cols >= PAR_MIN)
    for (int o = 0; o < s->O; o++)
        for (int i = 0; i < ch->nimg; i++)
            memcpy(out + ((int64_t)(ch->n0 + i) * s->O + o) * P, tmp + (int64_t)o * cols + (int64_t)i * P,
                   (size_t)P * sizeof(float));
}

/* tmp (O, nimg*P) = the chunk's images of dout (N, O, P); scatter_images' inverse */
static void gather_images(float *tmp, const float *dout, const Conv2dShape *s, const Chunk *ch) {
    int P = ch->np, cols = ch->nimg * P;
#pragma omp parallel for schedule(static) if ((int64_t)s->O * cols >= PAR_MIN)
    for (int o = 0; o < s->O; o++)
        for (int i = 0; i < ch->nimg; i++)
            memcpy(tmp + (int64_t)o * cols + (int64_t)i * P, dout + ((int64_t)(ch->n0 + i) * s->O + o) * P,
                   (size_t)P * sizeof(float));
}

/* dweight (O, K) += dout (O, cols; row stride ldd) . col (K, cols; row stride ldc)^T */
static void gemm_dweight(float *dweight, const float *dout, int ldd, const float *col, int ldc, int K, int O, int cols) {
    sgemm_tiled(CblasNoTrans, CblasTrans, O, K, cols, dout, ldd, col, ldc, 1.0f, dweight, K);
}

/* dcol (K, cols; row stride ldc) = beta * dcol + weight (O, K)^T . dout (O, cols; row stride ldd) */
static void gemm_dcol(float *dcol, int ldc, float beta, const float *weight, const float *dout, int ldd, int K, int O,
                      int cols) {
    sgemm_tiled(CblasTrans, CblasNoTrans, K, cols, O, weight, K, dout, ldd, beta, dcol, ldc);
}

/* dbias (O) += sum over images and positions of dout (N, O, P); one thread per channel */
static void bias_backward(float *dbias, const float *dout, const Conv2dShape *s) {
    int64_t P = (int64_t)s->OH * s->OW;
#pragma omp parallel for schedule(static) if ((int64_t)s->N * s->O * P >= PAR_MIN)
    for (int o = 0; o < s->O; o++) {
        double acc = 0.0;
        for (int n = 0; n < s->N; n++) {
            const float *row = dout + ((int64_t)n * s->O + o) * P;
            for (int64_t p = 0; p < P; p++) acc += row[p];
        }
        dbias[o] += (float)acc;
    }
}

/* ---------------------------------------------------------------- kernels */

/* Calls fn for every chunk of s, in a fixed order. */
typedef void (*ChunkFn)(const Conv2dShape *s, const Chunk *ch, void *arg);
static void for_each_chunk(const Conv2dShape *s, ChunkFn fn, void *arg) {
    int imgs, slice, P = s->OH * s->OW;
    chunk_plan(s, &imgs, &slice);
    for (int n0 = 0; n0 < s->N; n0 += imgs)
        for (int p0 = 0; p0 < P; p0 += slice) {
            Chunk ch = {n0, imin(imgs, s->N - n0), p0, imin(slice, P - p0)};
            fn(s, &ch, arg);
        }
}

typedef struct ConvArgs {
    float *out, *dinp, *dweight, *scratch;
    const float *inp, *weight, *bias, *dout;
} ConvArgs;

static void forward_chunk(const Conv2dShape *s, const Chunk *ch, void *arg) {
    ConvArgs *a = arg;
    int K = s->C * s->KH * s->KW, P = s->OH * s->OW, cols = ch->nimg * ch->np;
    float *col = a->scratch, *tmp = a->scratch + (int64_t)K * cols;
    unroll(col, a->inp, s, ch);
    if (ch->nimg == 1) {
        gemm_forward(a->out + (int64_t)ch->n0 * s->O * P + ch->p0, P, a->weight, a->bias, col, K, s->O, cols);
    } else {
        gemm_forward(tmp, cols, a->weight, a->bias, col, K, s->O, cols);
        scatter_images(a->out, tmp, s, ch);
    }
}

static void backward_chunk(const Conv2dShape *s, const Chunk *ch, void *arg) {
    ConvArgs *a = arg;
    int K = s->C * s->KH * s->KW, P = s->OH * s->OW, cols = ch->nimg * ch->np;
    float *col = a->scratch, *tmp = a->scratch + (int64_t)K * cols;
    const float *dout = a->dout + (int64_t)ch->n0 * s->O * P + ch->p0;
    int ldd = P;
    if (ch->nimg > 1) {
        gather_images(tmp, a->dout, s, ch);
        dout = tmp;
        ldd = cols;
    }
    if (a->dweight) {
        unroll(col, a->inp, s, ch);
        gemm_dweight(a->dweight, dout, ldd, col, cols, K, s->O, cols);
    }
    if (a->dinp) {
        gemm_dcol(col, cols, 0.0f, a->weight, dout, ldd, K, s->O, cols);
        fold(a->dinp, col, s, ch);
    }
}

static void forward_all(float *out, const float *inp, const float *weight, const float *bias, const Conv2dShape *s,
                        float *scratch) {
    int64_t P = (int64_t)s->OH * s->OW;
    if (is_pointwise(s)) { /* each image (C, P) is its own col */
        for (int n = 0; n < s->N; n++)
            gemm_forward(out + (int64_t)n * s->O * P, (int)P, weight, bias, inp + (int64_t)n * s->C * P, s->C, s->O,
                         (int)P);
        return;
    }
    ConvArgs a = {.out = out, .scratch = scratch, .inp = inp, .weight = weight, .bias = bias};
    for_each_chunk(s, forward_chunk, &a);
}

static void backward_all(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                         const Conv2dShape *s, float *scratch) {
    int64_t P = (int64_t)s->OH * s->OW;
    if (is_pointwise(s)) {
        for (int n = 0; n < s->N; n++) {
            const float *dout_n = dout + (int64_t)n * s->O * P, *inp_n = inp + (int64_t)n * s->C * P;
            if (dweight) gemm_dweight(dweight, dout_n, (int)P, inp_n, (int)P, s->C, s->O, (int)P);
            if (dinp) gemm_dcol(dinp + (int64_t)n * s->C * P, (int)P, 1.0f, weight, dout_n, (int)P, s->C, s->O, (int)P);
        }
        return;
    }
    ConvArgs a = {.dinp = dinp, .dweight = dweight, .scratch = scratch, .inp = inp, .weight = weight, .dout = dout};
    for_each_chunk(s, backward_chunk, &a);
}

void conv2d_forward(float *out, const float *inp, const float *weight, const float *bias, const Conv2dShape *s,
                    float *scratch) {
    CHECK(scratch || is_pointwise(s), "conv2d_forward: scratch of %zu floats required", conv2d_scratch_floats(s));
    int prev = blas_single_thread();
    forward_all(out, inp, weight, bias, s, scratch);
    blas_threads_restore(prev);
}

void conv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, const Conv2dShape *s, float *scratch) {
    CHECK(scratch || is_pointwise(s), "conv2d_backward: scratch of %zu floats required", conv2d_scratch_floats(s));
    if (dbias) bias_backward(dbias, dout, s);
    if (!dinp && !dweight) return;
    int prev = blas_single_thread();
    backward_all(dinp, dweight, dout, inp, weight, s, scratch);
    blas_threads_restore(prev);
}

/* ---------------------------------------------------------------- tape op */

typedef struct Conv2dCtx {
    Conv2dShape s;
    float *scratch; /* the forward's scratch, reused by backward */
} Conv2dCtx;

static void conv2d_bwd(Node *nd) {
    Tensor *x = nd->in[0], *w = nd->in[1], *b = nd->in[2], *y = nd->out[0];
    Conv2dCtx *cx = nd->ctx;
    conv2d_backward(tensor_grad_or_null(x), tensor_grad_or_null(w), tensor_grad_or_null(b), y->grad, x->data,
                    w->data, &cx->s, cx->scratch);
}

static void check_conv2d_args(const Tensor *x, const Tensor *w, const Tensor *b, int stride_h, int stride_w,
                              int pad_h, int pad_w) {
    char xs[64], ws[64], bs[64];
    CHECK(x->ndim == 4, "conv2d: input must be (N, C, H, W), got %s", tensor_shape_str(x, xs, sizeof xs));
    CHECK(w->ndim == 4, "conv2d: weight must be (O, C, KH, KW), got %s", tensor_shape_str(w, ws, sizeof ws));
    CHECK(x->shape[1] == w->shape[1], "conv2d: input %s has %d channels, weight %s expects %d",
          tensor_shape_str(x, xs, sizeof xs), x->shape[1], tensor_shape_str(w, ws, sizeof ws), w->shape[1]);
    CHECK(!b || (b->ndim == 1 && b->shape[0] == w->shape[0]), "conv2d: bias %s must be (%d) for weight %s",
          tensor_shape_str(b, bs, sizeof bs), w->shape[0], tensor_shape_str(w, ws, sizeof ws));
    CHECK(stride_h >= 1 && stride_w >= 1 && pad_h >= 0 && pad_w >= 0,
          "conv2d: stride (%d, %d) must be >= 1 and padding (%d, %d) >= 0", stride_h, stride_w, pad_h, pad_w);
    CHECK(x->shape[2] + 2 * pad_h >= w->shape[2] && x->shape[3] + 2 * pad_w >= w->shape[3],
          "conv2d: kernel %dx%d larger than input %s padded by (%d, %d)", w->shape[2], w->shape[3],
          tensor_shape_str(x, xs, sizeof xs), pad_h, pad_w);
}

Tensor *op_conv2d(Tape *tp, Tensor *x, Tensor *w, Tensor *b, int stride_h, int stride_w, int pad_h, int pad_w) {
    PROFILE_OP_BEGIN();
    check_conv2d_args(x, w, b, stride_h, stride_w, pad_h, pad_w);
    Conv2dShape s = conv2d_shape(x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->shape[0], w->shape[2],
                                 w->shape[3], stride_h, stride_w, pad_h, pad_w);
    Tensor *y = TNEW(tp, s.N, s.O, s.OH, s.OW);
    size_t n_scratch = conv2d_scratch_floats(&s);
    float *scratch = n_scratch ? tape_alloc(tp, n_scratch * sizeof(float)) : NULL;
    conv2d_forward(y->data, x->data, w->data, b ? b->data : NULL, &s, scratch);
    Tensor *in[] = {x, w, b}, *out[] = {y};
    Node *nd = TAPE_RECORD(tp, "conv2d", conv2d_bwd, in, out);
    if (nd) {
        Conv2dCtx *cx = tape_alloc(tp, sizeof *cx);
        cx->s = s;
        cx->scratch = scratch;
        nd->ctx = cx;
    }
    return y;
}
