/* conv2d.c: 2-d convolution (PyTorch nn.Conv2d without groups or dilation), forward and backward
 * on the CPU, by two implementations with one contract (raw NCHW / OIHW f32 pointers; backward adds
 * into the gradients it is given and skips NULL ones).
 *
 * oneDNN (the default; the library PyTorch's CPU convolutions use). Each (shape, bias, direction,
 * layout, algorithm, OpenMP thread count) gets its primitives once: the convolution (forward_training,
 * backward_data or backward_weights; algorithm "direct", or Winograd F(4x4, 3x3) for the 3x3
 * stride-1 shapes wino_mode picks, unless ATTNGAN_CONV_ALGO=direct), the reorders
 * of our NCHW inputs into the layouts it chose, and the reorder of its result back to NCHW. They
 * live in a cache (dnnl_util.h) behind a mutex, and run on the calling thread's stream with its own
 * workspace (scratchpad and converted tensors), so several threads may convolve at once (the
 * server). Layouts (conv_layout): blocked (oneDNN picks nChw16c and blocked weights for its
 * AVX-512 direct kernels) except for 1x1 stride-1 convolutions and the input gradient of
 * convolutions with fewer than 16 input channels, which run in plain NCHW (its GEMM path): that
 * split measured fastest (docs/PERFORMANCE.md). Gradients are added, not written: the result goes
 * to the workspace and a reorder with a sum post-op adds it into the caller's buffer; the bias
 * gradient comes from the backward-weights primitive and is added by hand (from dout directly when
 * the weight gradient is not wanted). Convolutions below DNNL_PAR_MIN multiply-adds run on one
 * thread (oneDNN opens a parallel region for every primitive).
 * Numerics: oneDNN sums in float in its own blocked order, so results differ from the im2col path
 * in the last bits (the value tests against PyTorch pass at 1e-5, the parity replays at their
 * tolerances). Determinism: the same inputs and thread count give the same bits run to run (the
 * primitive, its blocking and its reduction order depend only on the key above; no atomics). A
 * different OpenMP thread count changes the last bits of the weight and bias gradients: the
 * backward-weights kernels split their reduction over the batch and the positions across threads.
 * The forward and the input gradient often come out identical with 1 and 2 threads, but oneDNN
 * does not promise it (test_conv2d prints how many of its shapes agree; the weight gradients are
 * the usual exceptions).
 *
 * im2col + GEMM (ATTNGAN_CONV=im2col, conv2d_set_impl, and the fallback for any shape whose
 * primitives oneDNN cannot create, reported once on stderr). The N * OH * OW output positions of
 * the batch are cut into chunks that bound the scratch memory: a chunk is either a slice of one
 * image's positions (large images) or a group of whole images (small images, so that the GEMMs stay
 * large). For each chunk the input patches are unrolled into col (K = C*KH*KW rows, one column per
 * output position), then
 *   forward   out  = W . col (+ b)
 *   backward  dW  += dout . col^T;   dcol = W^T . dout, folded back (+=) into dinp.
 * A 1x1 stride-1 unpadded convolution needs no unrolling: each image (C, H*W) is its col.
 * Threads: everything runs under OpenMP over disjoint outputs: rows of col, planes of dinp,
 * channels, and fixed blocks of every GEMM output, each block one single-threaded OpenBLAS
 * call (OpenBLAS's own threads would split work by thread count and change the rounding). Chunks
 * are visited in a fixed order. So no sum depends on scheduling or on the thread count: results
 * are bitwise the same with 1 or 16 threads.
 */
#include "../core/mempool.h"
#include "../core/env.h"
#include "conv2d.h"
#include "../core/profile.h"
#include "dnnl_util.h"

#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCRATCH_CAP_FLOATS (1 << 20) /* default scratch bound: 4 MB per convolution */
#define MIN_COLS 64                  /* never unroll fewer positions than this at once (GEMM efficiency) */
#define PAR_MIN 32768                /* elements below which a loop stays serial */
#define GEMM_PAR_MIN (1 << 18)       /* multiply-adds below which a GEMM stays serial */
#define TILE_MAX 128                 /* GEMM output blocks: at most TILE_MAX square, */
#define TILE_MIN 32                  /* at least TILE_MIN on their longer side, */
#define TILES_WANTED 16              /* halved until there are this many */
#define DNNL_PAR_MIN (1 << 20)       /* multiply-adds below which a oneDNN convolution runs on one thread */

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

Conv2dShape conv2d_shape(int N, int C, int H, int W, int O, int KH, int KW, int stride_h, int stride_w,
                         int pad_h, int pad_w) {
    Conv2dShape s = {N, C, H, W, O, KH, KW, stride_h, stride_w, pad_h, pad_w, 0, 0, 0, 0, 0};
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
            const float *dout_n = dout + (int64_t)n * s->O * P;
            if (dweight) gemm_dweight(dweight, dout_n, (int)P, inp + (int64_t)n * s->C * P, (int)P, s->C, s->O, (int)P);
            if (dinp) gemm_dcol(dinp + (int64_t)n * s->C * P, (int)P, 1.0f, weight, dout_n, (int)P, s->C, s->O, (int)P);
        }
        return;
    }
    ConvArgs a = {.dinp = dinp, .dweight = dweight, .scratch = scratch, .inp = inp, .weight = weight, .dout = dout};
    for_each_chunk(s, backward_chunk, &a);
}

/* scratch: conv2d_scratch_floats(s) floats, or NULL to allocate it here */
static void im2col_forward(float *out, const float *inp, const float *weight, const float *bias, const Conv2dShape *s,
                           float *scratch) {
    CHECK(!s->in_blocked && !s->out_blocked, "conv2d: nChw16c tensors need oneDNN, which has no primitive here");
    size_t n_scratch = conv2d_scratch_floats(s);
    float *own = !scratch && n_scratch ? xmalloc(n_scratch * sizeof(float)) : NULL;
    int prev = blas_single_thread();
    forward_all(out, inp, weight, bias, s, scratch ? scratch : own);
    blas_threads_restore(prev);
    free(own);
}

static void im2col_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                            const Conv2dShape *s, float *scratch) {
    if (!dinp && !dweight) return;
    CHECK(!s->in_blocked && !s->out_blocked, "conv2d: nChw16c tensors need oneDNN, which has no primitive here");
    size_t n_scratch = conv2d_scratch_floats(s);
    float *own = !scratch && n_scratch ? xmalloc(n_scratch * sizeof(float)) : NULL;
    int prev = blas_single_thread();
    backward_all(dinp, dweight, dout, inp, weight, s, scratch ? scratch : own);
    blas_threads_restore(prev);
    free(own);
}

/* ---------------------------------------------------------------- oneDNN path */

enum { DIR_FWD = 0, DIR_BWD_DATA = 1, DIR_BWD_WEIGHTS = 2 };
enum { FMT_ANY = 0, FMT_PLAIN = 1, FMT_AUTO = 2 };

/* Everything a primitive depends on; int32 fields only, so the struct has no padding bytes. */
typedef struct ConvKey {
    int32_t dir, bias, fmt, nthr, bf16, wino, xblk, yblk;
    int32_t N, C, H, W, O, KH, KW, stride_h, stride_w, pad_h, pad_w;
} ConvKey;

/* One direction of one shape. The convolution reads in[0] and in[1] and writes out:
 *   DIR_FWD          in = (src x, weights w),    out = dst y        (+ bias)
 *   DIR_BWD_DATA     in = (diff_dst dy, w),      out = diff_src dx  (accumulated into the user's)
 *   DIR_BWD_WEIGHTS  in = (src x, diff_dst dy),  out = diff_weights (accumulated; + diff_bias)
 * md_* are the convolution's layouts, user_* our NCHW / OIHW ones; re_in[i] converts a user input
 * to the convolution's layout (NULL prim when they agree), re_out converts the result back (dst:
 * only when the layouts differ; gradients: always, with a sum post-op, which adds). */
typedef struct ConvPrims {
    DnnlPrim conv, re_in[2], re_out;
    DnnlPrim re_set;   /* DIR_BWD_DATA: re_out without the sum, for a gradient written, not added
                          (NULL prim when the layouts agree: the result goes straight there) */
    dnnl_memory_desc_t md_in[2], md_out, user_in[2], user_out, md_bias;
    int arg_in[2], arg_out;
    size_t bytes_in[2], bytes_out;
    int winograd;  /* the convolution runs Winograd */
    Conv2dShape s; /* the shape (this chunk's batch), for the profiler's rows */
} ConvPrims;

static DnnlCache g_conv_cache = DNNL_CACHE_INIT;
static _Atomic int g_impl = -1, g_fmt = -1, g_prec = -1, g_algo = -1;

/* ATTNGAN_CONV=dnnl (default) | im2col (the values in Conv2dImpl order) */
static int env_impl(void) { return env_switch(&g_impl, "ATTNGAN_CONV", (const char *[]){"dnnl", "im2col"}, 2, CONV2D_DNNL); }

/* ATTNGAN_DNNL_LAYOUT=auto (default) | any | nchw: which layouts the primitives may choose (a
 * measurement switch; see conv_layout). */
static int env_fmt(void) {
    static const char *const names[] = {[FMT_AUTO] = "auto", [FMT_ANY] = "any", [FMT_PLAIN] = "nchw"};
    return env_switch(&g_fmt, "ATTNGAN_DNNL_LAYOUT", names, 3, FMT_AUTO);
}

/* The layouts of one primitive. Blocked layouts (format_tag any: oneDNN picks nChw16c and blocked
 * weights for its direct AVX-512 kernels) win for spatial kernels despite the reorders to and from
 * our NCHW; plain NCHW (oneDNN then runs its own GEMM-based kernels) wins for 1x1 stride-1
 * convolutions, where the reorders cost more than the kernel gains, and for the input gradient of
 * convolutions with fewer than 16 input channels (the blocked layout pads them to 16). Measured on
 * the gan_step and damsm_step benches (docs/PERFORMANCE.md). */
static int conv_layout(const Conv2dShape *s, int dir) {
    int f = env_fmt();
    if (f != FMT_AUTO) return f;
    if (is_pointwise(s)) return FMT_PLAIN;
    if (dir == DIR_BWD_DATA && s->C < 16) return FMT_PLAIN;
    return FMT_ANY;
}

/* ATTNGAN_CONV_PRECISION=fp32 (default) | bf16 */
static int env_prec(void) {
    return env_switch(&g_prec, "ATTNGAN_CONV_PRECISION", (const char *[]){"fp32", "bf16"}, 2, CONV2D_FP32);
}

/* ATTNGAN_CONV_ALGO=winograd (default) | direct */
static int env_algo(void) {
    return env_switch(&g_algo, "ATTNGAN_CONV_ALGO", (const char *[]){"direct", "winograd"}, 2, CONV2D_WINOGRAD);
}

void conv2d_set_algo(Conv2dAlgo a) { atomic_store(&g_algo, (int)a); }
Conv2dAlgo conv2d_get_algo(void) { return (Conv2dAlgo)env_algo(); }

/* Where Winograd F(4x4, 3x3) runs: fp32 3x3 stride-1 convolutions with at least 16x16 outputs
 * and at least 32 input and 32 output channels. The backward directions, and the forward with 64+
 * channels, always (WINO_YES); the forward with 32 to 63 channels only when the whole batch runs in
 * one call within CONV_CHUNK_BYTES of workspace (WINO_IF_WHOLE, see conv_chunks). There oneDNN's
 * jit_wino_4x3 kernels measured 1.1 to 2.5x faster than its direct ones on the model's shapes
 * (docs/PERFORMANCE.md); the forward with 32 channels in batch chunks and every direction at 8x8
 * or 4x4 measured slower or even. */
enum { WINO_NO = 0, WINO_YES = 1, WINO_IF_WHOLE = 2 };
static int wino_mode(const Conv2dShape *s, int dir, int bf16) {
    if (bf16 || env_algo() != CONV2D_WINOGRAD || s->KH != 3 || s->KW != 3 || s->stride_h != 1 || s->stride_w != 1 ||
        s->C < 32 || s->O < 32 || s->OH * s->OW < 256)
        return WINO_NO;
    return dir == DIR_FWD && (s->C < 64 || s->O < 64) ? WINO_IF_WHOLE : WINO_YES;
}

void conv2d_set_precision(Conv2dPrecision p) { atomic_store(&g_prec, (int)p); }
Conv2dPrecision conv2d_get_precision(void) { return (Conv2dPrecision)env_prec(); }

void conv2d_set_impl(Conv2dImpl impl) { atomic_store(&g_impl, (int)impl); }
Conv2dImpl conv2d_get_impl(void) { return (Conv2dImpl)env_impl(); }

static void conv_prims_destroy(void *v) {
    ConvPrims *cp = v;
    dnnl_util_prim_destroy(&cp->conv);
    dnnl_util_prim_destroy(&cp->re_in[0]);
    dnnl_util_prim_destroy(&cp->re_in[1]);
    dnnl_util_prim_destroy(&cp->re_out);
    dnnl_util_prim_destroy(&cp->re_set);
    free(cp);
}

void conv2d_clear_cache(void) { dnnl_cache_clear(&g_conv_cache, conv_prims_destroy); }

/* Creates the primitives of key; NULL if oneDNN has none for it. Runs under the cache's lock. */
static void *conv_prims_create(const void *kv, void *arg) {
    const ConvKey *k = kv;
    dnnl_engine_t eng = dnnl_util_engine();
    if (!eng) return NULL;
    int OH = (k->H + 2 * k->pad_h - k->KH) / k->stride_h + 1, OW = (k->W + 2 * k->pad_w - k->KW) / k->stride_w + 1;
    dnnl_memory_desc_t x_md, w_md, y_md, b_md, xa, wa, ya;
    dnnl_format_tag_t t4 = k->fmt == FMT_PLAIN ? dnnl_nchw : dnnl_format_tag_any;
    dnnl_format_tag_t tw = k->fmt == FMT_PLAIN ? dnnl_oihw : dnnl_format_tag_any;
    /* bf16: the operands in bf16 (the reorders convert), accumulation and weight gradients in f32 */
    dnnl_data_type_t dt = k->bf16 ? dnnl_bf16 : dnnl_f32;
    int64_t xd[4] = {k->N, k->C, k->H, k->W}, wd[4] = {k->O, k->C, k->KH, k->KW}, yd[4] = {k->N, k->O, OH, OW};
    int64_t bd[1] = {k->O};
    if (dnnl_util_md(&x_md, 4, xd, k->xblk ? dnnl_nChw16c : dnnl_nchw) || dnnl_util_md(&w_md, 4, wd, dnnl_oihw) ||
        dnnl_util_md(&y_md, 4, yd, k->yblk ? dnnl_nChw16c : dnnl_nchw) || dnnl_util_md(&b_md, 1, bd, dnnl_a) ||
        dnnl_util_md_dt(&xa, 4, xd, t4, dt) || dnnl_util_md_dt(&wa, 4, wd, tw, dt) || dnnl_util_md_dt(&ya, 4, yd, t4, dt))
        return NULL;
    /* oneDNN wants the right padding that makes its size formula exact; floor mode drops the rest */
    dnnl_dims_t strides = {k->stride_h, k->stride_w}, pad_l = {k->pad_h, k->pad_w};
    dnnl_dims_t pad_r = {imax(0, (OH - 1) * k->stride_h + k->KH - k->H - k->pad_h),
                         imax(0, (OW - 1) * k->stride_w + k->KW - k->W - k->pad_w)};
    dnnl_primitive_attr_t attr = dnnl_util_attr(0);
    if (!attr) return NULL;
    /* every direction needs the forward's descriptor (the backward ones as a hint) */
    dnnl_convolution_desc_t fd, bd_;
    dnnl_alg_kind_t alg = k->wino ? dnnl_convolution_winograd : dnnl_convolution_direct;
    dnnl_primitive_desc_t fpd = NULL, pd = NULL;
    ConvPrims *cp = xcalloc(1, sizeof *cp);
    int ok = dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, alg, &xa, &wa,
                                                k->dir == DIR_FWD && k->bias ? &b_md : NULL, &ya, strides, pad_l,
                                                pad_r) == dnnl_success &&
             dnnl_primitive_desc_create(&fpd, &fd, attr, eng, NULL) == dnnl_success;
    if (ok && k->dir == DIR_FWD) {
        pd = fpd;
        fpd = NULL;
        cp->md_in[0] = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
        cp->md_in[1] = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        cp->md_out = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
        cp->user_in[0] = x_md, cp->user_in[1] = w_md, cp->user_out = y_md;
        cp->arg_in[0] = DNNL_ARG_SRC, cp->arg_in[1] = DNNL_ARG_WEIGHTS, cp->arg_out = DNNL_ARG_DST;
    } else if (ok && k->dir == DIR_BWD_DATA) {
        ok = dnnl_convolution_backward_data_desc_init(&bd_, alg, &xa, &wa, &ya, strides, pad_l,
                                                      pad_r) == dnnl_success &&
             dnnl_primitive_desc_create(&pd, &bd_, attr, eng, fpd) == dnnl_success;
        if (ok) {
            cp->md_in[0] = *dnnl_primitive_desc_query_md(pd, dnnl_query_diff_dst_md, 0);
            cp->md_in[1] = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
            cp->md_out = *dnnl_primitive_desc_query_md(pd, dnnl_query_diff_src_md, 0);
            cp->user_in[0] = y_md, cp->user_in[1] = w_md, cp->user_out = x_md;
            cp->arg_in[0] = DNNL_ARG_DIFF_DST, cp->arg_in[1] = DNNL_ARG_WEIGHTS, cp->arg_out = DNNL_ARG_DIFF_SRC;
        }
    } else if (ok) {
        dnnl_memory_desc_t wg = wa;
        if (k->bf16 && dnnl_util_md_dt(&wg, 4, wd, tw, dnnl_f32)) ok = 0;
        ok = ok && dnnl_convolution_backward_weights_desc_init(&bd_, alg, &xa, &wg, k->bias ? &b_md : NULL,
                                                         &ya, strides, pad_l, pad_r) == dnnl_success &&
             dnnl_primitive_desc_create(&pd, &bd_, attr, eng, fpd) == dnnl_success;
        if (ok) {
            cp->md_in[0] = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
            cp->md_in[1] = *dnnl_primitive_desc_query_md(pd, dnnl_query_diff_dst_md, 0);
            cp->md_out = *dnnl_primitive_desc_query_md(pd, dnnl_query_diff_weights_md, 0);
            cp->user_in[0] = x_md, cp->user_in[1] = y_md, cp->user_out = w_md;
            cp->arg_in[0] = DNNL_ARG_SRC, cp->arg_in[1] = DNNL_ARG_DIFF_DST, cp->arg_out = DNNL_ARG_DIFF_WEIGHTS;
        }
    }
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_attr_destroy(attr);
    cp->md_bias = b_md;
    cp->winograd = k->wino;
    cp->s = conv2d_shape(k->N, k->C, k->H, k->W, k->O, k->KH, k->KW, k->stride_h, k->stride_w, k->pad_h, k->pad_w);
    if (!ok || dnnl_util_prim_from_pd(&cp->conv, pd)) goto fail;
    for (int i = 0; i < 2; i++) {
        cp->bytes_in[i] = dnnl_memory_desc_get_size(&cp->md_in[i]);
        if (!dnnl_memory_desc_equal(&cp->md_in[i], &cp->user_in[i]) &&
            dnnl_util_reorder(&cp->re_in[i], &cp->user_in[i], &cp->md_in[i], 0))
            goto fail;
    }
    cp->bytes_out = dnnl_memory_desc_get_size(&cp->md_out);
    int accumulate = k->dir != DIR_FWD;
    if ((accumulate || !dnnl_memory_desc_equal(&cp->md_out, &cp->user_out)) &&
        dnnl_util_reorder(&cp->re_out, &cp->md_out, &cp->user_out, accumulate))
        goto fail;
    if (k->dir == DIR_BWD_DATA && !dnnl_memory_desc_equal(&cp->md_out, &cp->user_out) &&
        dnnl_util_reorder(&cp->re_set, &cp->md_out, &cp->user_out, 0))
        goto fail;
    return cp;
fail:
    conv_prims_destroy(cp);
    return NULL;
}

/* The primitives of s in one direction, Winograd (wino, where oneDNN has it) or direct. */
static const ConvPrims *conv_prims_algo(const Conv2dShape *s, int dir, int bias, int wino) {
    if (env_impl() != CONV2D_DNNL) return NULL;
    int bf16 = env_prec() == CONV2D_BF16, blk = s->in_blocked || s->out_blocked;
    /* user tensors in nChw16c: the primitive picks its layouts (any), so none needs a reorder */
    ConvKey k = {dir, bias, bf16 || wino || blk ? FMT_ANY : conv_layout(s, dir), dnnl_util_threads(), bf16, wino,
                 s->in_blocked, s->out_blocked, s->N, s->C, s->H, s->W,
                 s->O, s->KH, s->KW, s->stride_h, s->stride_w, s->pad_h, s->pad_w};
    const ConvPrims *cp = dnnl_cache_get(&g_conv_cache, &k, sizeof k, conv_prims_create, NULL);
    if (!cp && wino) { /* no Winograd kernel for this CPU or shape: the direct one */
        k.wino = 0;
        k.fmt = bf16 || blk ? FMT_ANY : conv_layout(s, dir);
        cp = dnnl_cache_get(&g_conv_cache, &k, sizeof k, conv_prims_create, NULL);
    }
    if (!cp) {
        static _Atomic int warned = 0;
        if (!atomic_exchange(&warned, 1))
            fprintf(stderr, "conv2d: oneDNN has no primitive for (%d, %d, %d, %d) * (%d, %d, %d, %d) stride (%d, %d) "
                    "pad (%d, %d) (direction %d): using im2col there (reported once)\n", s->N, s->C, s->H, s->W, s->O,
                    s->C, s->KH, s->KW, s->stride_h, s->stride_w, s->pad_h, s->pad_w, dir);
    }
    return cp;
}

/* ... with the algorithm of wino_mode outside batch chunking (WINO_IF_WHOLE: direct) */
static const ConvPrims *conv_prims(const Conv2dShape *s, int dir, int bias) {
    return conv_prims_algo(s, dir, bias, wino_mode(s, dir, env_prec() == CONV2D_BF16) == WINO_YES);
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* ---------------------------------------------------------------- pinned weights
 *
 * conv2d_pin_weights (conv2d.h): the reordered copies of weights their owner promised not to
 * change. Each pin keeps up to PIN_MAX_COPIES copies, one per weight layout its convolutions asked
 * for (forward and input gradient, fp32 or bf16, direct or Winograd), made on first use by the
 * primitive's own weight reorder and then handed to every call instead of a fresh reorder. The
 * fingerprint (the bits of every PIN_STRIDE-th value and the last) is checked on every use, so a
 * write to pinned weights that changes any sampled value dies loudly instead of convolving with
 * stale copies. The registry is a small array behind a mutex (the trunk pins about 100 tensors);
 * the copies live outside the tensor pool (malloc), as long as the pin. */
#define PIN_MAX_COPIES 6
#define PIN_STRIDE 1021

typedef struct PinCopy {
    dnnl_memory_desc_t md;
    void *data;
    size_t bytes;
} PinCopy;

typedef struct Pinned {
    const float *w;
    size_t n;
    uint64_t fp;
    int n_copies;
    PinCopy c[PIN_MAX_COPIES];
} Pinned;

static pthread_mutex_t g_pin_mu = PTHREAD_MUTEX_INITIALIZER;
static Pinned *g_pins;
static int g_n_pins, g_cap_pins;
static _Atomic int g_any_pins;
static size_t g_pin_bytes;

static uint64_t pin_fingerprint(const float *w, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a over 32-bit words */
    uint32_t b;
    for (size_t i = 0; i < n; i += PIN_STRIDE) {
        memcpy(&b, &w[i], sizeof b);
        h = (h ^ b) * 1099511628211ull;
    }
    memcpy(&b, &w[n - 1], sizeof b);
    return (h ^ b) * 1099511628211ull;
}

static void pin_drop_copies(Pinned *p) {
    for (int i = 0; i < p->n_copies; i++) {
        free(p->c[i].data);
        g_pin_bytes -= p->c[i].bytes;
    }
    p->n_copies = 0;
}

static Pinned *pin_find(const void *w) {
    for (int i = 0; i < g_n_pins; i++)
        if (g_pins[i].w == w) return &g_pins[i];
    return NULL;
}

/* ATTNGAN_CONV_PIN=1 (default) | 0: 0 makes conv2d_pin_weights a no-op (a measurement switch) */
static int env_pin(void) {
    static _Atomic int v = ENV_SWITCH_INIT;
    return env_switch(&v, "ATTNGAN_CONV_PIN", (const char *[]){"0", "1"}, 2, 1);
}

void conv2d_pin_weights(const float *w, size_t n) {
    CHECK(w != NULL && n > 0, "conv2d_pin_weights: no weights (%p, %zu floats)", (const void *)w, n);
    if (!env_pin()) return;
    pthread_mutex_lock(&g_pin_mu);
    Pinned *p = pin_find(w);
    if (p) {
        CHECK(p->n == n, "conv2d_pin_weights: %p is pinned with %zu floats, not %zu", (const void *)w, p->n, n);
        pin_drop_copies(p); /* pinned again: the values may have changed since */
    } else {
        if (g_n_pins == g_cap_pins) {
            g_cap_pins = g_cap_pins ? 2 * g_cap_pins : 64;
            g_pins = xrealloc(g_pins, (size_t)g_cap_pins * sizeof *g_pins);
        }
        p = &g_pins[g_n_pins++];
        memset(p, 0, sizeof *p);
        p->w = w, p->n = n;
    }
    p->fp = pin_fingerprint(w, n);
    atomic_store(&g_any_pins, 1);
    pthread_mutex_unlock(&g_pin_mu);
}

int conv2d_unpin_weights(const float *w) {
    pthread_mutex_lock(&g_pin_mu);
    Pinned *p = pin_find(w);
    if (p) {
        pin_drop_copies(p);
        *p = g_pins[--g_n_pins];
        atomic_store(&g_any_pins, g_n_pins > 0);
    }
    pthread_mutex_unlock(&g_pin_mu);
    return p != NULL;
}

size_t conv2d_pinned_bytes(void) {
    pthread_mutex_lock(&g_pin_mu);
    size_t b = g_pin_bytes;
    pthread_mutex_unlock(&g_pin_mu);
    return b;
}

/* The copy of pinned weights w in cp's weight layout (made now if new); NULL when w is not pinned
 * (or every copy slot is taken, or the reorder failed: then the call reorders as usual). */
static const void *pin_copy(const ConvPrims *cp, const float *w) {
    if (!atomic_load_explicit(&g_any_pins, memory_order_relaxed)) return NULL;
    pthread_mutex_lock(&g_pin_mu);
    const void *res = NULL;
    Pinned *p = pin_find(w);
    if (p) {
        CHECK(pin_fingerprint(w, p->n) == p->fp,
              "conv2d: the pinned weights at %p (%zu floats) were written while pinned (conv2d_pin_weights: pin them "
              "again, or unpin them, after every write)", (const void *)w, p->n);
        CHECK(dnnl_memory_desc_get_size(&cp->user_in[1]) == p->n * sizeof(float),
              "conv2d: the pinned weights at %p hold %zu floats, the convolution reads %zu", (const void *)w, p->n,
              (size_t)dnnl_memory_desc_get_size(&cp->user_in[1]) / sizeof(float));
        for (int i = 0; i < p->n_copies && !res; i++)
            if (dnnl_memory_desc_equal(&p->c[i].md, &cp->md_in[1])) res = p->c[i].data;
        if (!res && p->n_copies < PIN_MAX_COPIES) {
            size_t bytes = dnnl_memory_desc_get_size(&cp->md_in[1]);
            void *data = NULL;
            CHECK(posix_memalign(&data, 64, bytes ? bytes : 64) == 0, "conv2d: out of memory (%zu bytes)", bytes);
            void *scratch = cp->re_in[1].scratch ? mempool_alloc(cp->re_in[1].scratch) : NULL;
            DnnlArg a[2] = {{DNNL_ARG_FROM, &cp->user_in[1], w}, {DNNL_ARG_TO, &cp->md_in[1], data}};
            if (dnnl_util_exec(&cp->re_in[1], 2, a, scratch) == 0) {
                p->c[p->n_copies++] = (PinCopy){cp->md_in[1], data, bytes};
                g_pin_bytes += bytes;
                res = data;
            } else {
                free(data);
            }
            mempool_free(scratch);
        }
    }
    pthread_mutex_unlock(&g_pin_mu);
    return res;
}

/* Runs one direction: in0, in1 user inputs, out the user output (written for DIR_FWD and, with
 * set, for DIR_BWD_DATA; added into otherwise), bias (DIR_FWD, optional) or dbias_tmp
 * (DIR_BWD_WEIGHTS: O floats written, optional). w_ready: in1 already in the primitive's layout
 * (a pinned copy), or NULL. Returns 0 on success; on failure nothing of `out` has been accumulated
 * into (for the backward directions the final reorder is the only write; if it fails the process
 * aborts). */
static int conv_run_ws(const ConvPrims *cp, const DnnlPrim *ro, int dir, const float *in0, const float *in1,
                       const void *w_ready, float *out, const float *bias, float *dbias_tmp, char *ws,
                       const size_t *off_in, size_t off_out);

/* One profiler detail row per direction, shape, algorithm and reorders (profile.h): e.g.
 * "bwd_data 8x32x147x147 3x3/1 ->64 wino +x" (+x: activations converted, +w: weights). */
static void conv_profile(const ConvPrims *cp, int dir, double ms, int act_reorder, int w_reorder) {
    static const char *const dirs[3] = {"fwd", "bwd_data", "bwd_weights"};
    const Conv2dShape *s = &cp->s;
    char key[PROFILE_DETAIL_LEN];
    snprintf(key, sizeof key, "%s %dx%dx%dx%d %dx%d/%d ->%d%s%s%s", dirs[dir], s->N, s->C, s->H, s->W, s->KH, s->KW,
             s->stride_h, s->O, cp->winograd ? " wino" : "", act_reorder ? " +x" : "", w_reorder ? " +w" : "");
    profile_detail_add(key, ms, 2.0 * s->N * s->O * s->OH * s->OW * (double)s->C * s->KH * s->KW);
}

/* The workspace (scratchpad and the blocked copies of the operands) comes from the tensor pool
 * for the duration of the call, so it counts against peak memory only while a convolution runs. */
/* The conversion of cp's result in direction dir: none (it lands in the user's buffer), a plain
 * one (set: an input gradient written), or one that adds. */
static const DnnlPrim *result_reorder(const ConvPrims *cp, int dir, int set) {
    return set && dir == DIR_BWD_DATA ? (cp->re_set.prim ? &cp->re_set : NULL) : (cp->re_out.prim ? &cp->re_out : NULL);
}

/* The workspace of one call: the largest scratchpad of the primitives that run, then the
 * converted inputs that reorder[i] asks for, then the result when ro converts it. Fills the
 * offsets (when given) and returns the total bytes. */
static size_t ws_layout(const ConvPrims *cp, const DnnlPrim *ro, const int reorder[2], size_t *off_in, size_t *off_out) {
    size_t scratch = cp->conv.scratch;
    for (int i = 0; i < 2; i++)
        if (reorder[i] && cp->re_in[i].scratch > scratch) scratch = cp->re_in[i].scratch;
    if (ro && ro->scratch > scratch) scratch = ro->scratch;
    size_t total = align64(scratch);
    for (int i = 0; i < 2; i++) {
        if (off_in) off_in[i] = total;
        if (reorder[i]) total += align64(cp->bytes_in[i]);
    }
    if (off_out) *off_out = total;
    return ro ? total + align64(cp->bytes_out) : total;
}

static int conv_run(const ConvPrims *cp, int dir, const float *in0, const float *in1, float *out, const float *bias,
                    float *dbias_tmp, int set) {
    const DnnlPrim *ro = result_reorder(cp, dir, set);
    /* in1 is the weight in the forward and the input gradient */
    const void *w_ready = dir != DIR_BWD_WEIGHTS && cp->re_in[1].prim ? pin_copy(cp, in1) : NULL;
    int reorder[2] = {cp->re_in[0].prim != NULL, cp->re_in[1].prim != NULL && !w_ready};
    size_t off_in[2], off_out, total = ws_layout(cp, ro, reorder, off_in, &off_out);
    char *ws = mempool_alloc(total ? total : 64);
    double t0 = profile_on() ? profile_now_ms() : 0.0;
    int rc = conv_run_ws(cp, ro, dir, in0, in1, w_ready, out, bias, dbias_tmp, ws, off_in, off_out);
    if (profile_on()) conv_profile(cp, dir, profile_now_ms() - t0, reorder[0] || ro, reorder[1]);
    mempool_free(ws);
    return rc;
}

static int conv_run_ws(const ConvPrims *cp, const DnnlPrim *ro, int dir, const float *in0, const float *in1,
                       const void *w_ready, float *out, const float *bias, float *dbias_tmp, char *ws,
                       const size_t *off_in, size_t off_out) {
    const void *ins[2] = {in0, w_ready ? w_ready : in1};
    for (int i = 0; i < 2; i++)
        if (cp->re_in[i].prim && !(i == 1 && w_ready)) {
            DnnlArg a[2] = {{DNNL_ARG_FROM, &cp->user_in[i], ins[i]}, {DNNL_ARG_TO, &cp->md_in[i], ws + off_in[i]}};
            if (dnnl_util_exec(&cp->re_in[i], 2, a, ws)) return -1;
            ins[i] = ws + off_in[i];
        }
    void *res = ro ? (void *)(ws + off_out) : (void *)out;
    DnnlArg a[4] = {{cp->arg_in[0], &cp->md_in[0], ins[0]}, {cp->arg_in[1], &cp->md_in[1], ins[1]},
                    {cp->arg_out, &cp->md_out, res}};
    int n = 3;
    if (dir == DIR_FWD && bias) a[n++] = (DnnlArg){DNNL_ARG_BIAS, &cp->md_bias, bias};
    if (dir == DIR_BWD_WEIGHTS && dbias_tmp) a[n++] = (DnnlArg){DNNL_ARG_DIFF_BIAS, &cp->md_bias, dbias_tmp};
    if (dnnl_util_exec(&cp->conv, n, a, ws)) return -1;
    if (ro) {
        DnnlArg r[2] = {{DNNL_ARG_FROM, &cp->md_out, res}, {DNNL_ARG_TO, &cp->user_out, out}};
        int rc = dnnl_util_exec(ro, 2, r, ws);
        CHECK(rc == 0 || dir == DIR_FWD, "conv2d: oneDNN failed while adding a gradient");
        if (rc) return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- kernels: dispatch */



/* oneDNN opens a parallel region for every primitive it runs: convolutions below DNNL_PAR_MIN
 * multiply-adds run on one thread (their primitives are made for one thread). Returns the count to
 * restore with dnnl_threads_restore. */
static int dnnl_threads_for(const Conv2dShape *s) {
    int64_t macs = (int64_t)s->N * s->O * s->OH * s->OW * s->C * s->KH * s->KW;
    int prev = omp_get_max_threads();
    if (macs < DNNL_PAR_MIN && prev > 1) omp_set_num_threads(1);
    return prev;
}

static void dnnl_threads_restore(int prev) {
    if (omp_get_max_threads() != prev) omp_set_num_threads(prev);
}

size_t conv2d_op_scratch_floats(const Conv2dShape *s, int has_bias) {
    int nthr = dnnl_threads_for(s);
    const ConvPrims *cp = conv_prims(s, DIR_FWD, has_bias);
    dnnl_threads_restore(nthr);
    return cp ? 0 : conv2d_scratch_floats(s);
}

/* Batch chunks: one oneDNN call sees at most CONV_CHUNK_BYTES of activations (input and output
 * of one direction), so its reordered copies in the workspace stay small; the chunks are as even as
 * possible, so at most two primitive shapes per convolution. A Winograd convolution counts its
 * activations three times over: its scratchpad holds the transformed input and output tiles
 * (6x6 per 4x4 outputs, 2.25x each), so its chunks are a third as large. Except: a Winograd
 * convolution whose whole batch needs at most CONV_CHUNK_BYTES of workspace runs in one call.
 * oneDNN then often picks its schedule that transforms tiles per thread as it goes (a few MB of
 * scratchpad whatever the batch) over the one that transforms whole tensors first (a scratchpad
 * that grows with the batch): for the Inception stem's 32-channel 147x147 layers at batch 8, 1.4 to
 * 1.9x faster than batch chunks of 1 or 2, in every direction. */
#define CONV_CHUNK_BYTES ((size_t)16 << 20)

typedef struct ConvChunks {
    int nb, n_chunks;              /* rows per chunk (the last may have fewer) */
    const ConvPrims *cp[2];        /* for nb rows and for the last chunk's rows */
    Conv2dShape sc[2];
} ConvChunks;

/* Rows per chunk: at most CONV_CHUNK_BYTES of activations (a third of it for Winograd), the chunks
 * as even as possible. */
static int chunk_rows(const Conv2dShape *s, int wino) {
    size_t per = ((size_t)s->C * s->H * s->W + (size_t)s->O * s->OH * s->OW) * sizeof(float);
    if (wino) per *= 3;
    int nb = per ? (int)(CONV_CHUNK_BYTES / per) : s->N;
    if (nb < 1) nb = 1;
    if (nb > s->N) nb = s->N;
    int n_chunks = (s->N + nb - 1) / nb;
    return (s->N + n_chunks - 1) / n_chunks;
}

/* The most workspace one call of cp in direction dir takes (conv_run: scratchpad, converted
 * operands, the result when it is converted or added; set as conv_run's) */
static size_t conv_ws_bytes(const ConvPrims *cp, int dir, int set) {
    const int reorder[2] = {cp->re_in[0].prim != NULL, cp->re_in[1].prim != NULL};
    return ws_layout(cp, result_reorder(cp, dir, set), reorder, NULL, NULL);
}

/* The primitives for s chunked by batch (set: the input gradient is written, not added; see
 * conv_run); 0 if oneDNN lacks one (then the caller uses im2col). */
static int conv_chunks(ConvChunks *ch, const Conv2dShape *s, int dir, int bias, int set) {
    int mode = wino_mode(s, dir, env_prec() == CONV2D_BF16);
    if (mode != WINO_NO) {
        const ConvPrims *whole = conv_prims_algo(s, dir, bias, 1);
        if (whole && whole->winograd && conv_ws_bytes(whole, dir, set) <= CONV_CHUNK_BYTES) {
            ch->nb = s->N, ch->n_chunks = 1;
            ch->sc[0] = ch->sc[1] = *s;
            ch->cp[0] = ch->cp[1] = whole;
            return 1;
        }
    }
    int wino = mode == WINO_YES;
    ch->nb = chunk_rows(s, wino);
    ch->n_chunks = (s->N + ch->nb - 1) / ch->nb;
    int last = s->N - (ch->n_chunks - 1) * ch->nb;
    ch->sc[0] = *s, ch->sc[1] = *s;
    ch->sc[0].N = ch->nb, ch->sc[1].N = last;
    ch->cp[0] = conv_prims_algo(&ch->sc[0], dir, bias, wino);
    ch->cp[1] = last == ch->nb ? ch->cp[0] : conv_prims_algo(&ch->sc[1], dir, bias, wino);
    return ch->cp[0] && ch->cp[1];
}

int conv2d_uses_winograd(const Conv2dShape *s) {
    int nthr = dnnl_threads_for(s);
    ConvChunks ch;
    int ok = conv_chunks(&ch, s, DIR_FWD, 0, 0);
    dnnl_threads_restore(nthr);
    return ok && ch.cp[0]->winograd;
}

static const ConvPrims *chunk_prims(const ConvChunks *ch, int i, int *rows) {
    int last = i == ch->n_chunks - 1;
    *rows = ch->sc[last].N;
    return ch->cp[last];
}

/* ---------------------------------------------------------------- narrow outputs
 *
 * A 3x3 stride-1 "same" convolution with at most 4 output channels (G's images: 32 -> 3 at 64, 128
 * and 256 px) wastes oneDNN's blocked kernels, which pad the output channels to 16: 70-80 GFLOP/s
 * against 400+ elsewhere. Here each output row is computed 16 columns at a time with one register
 * per output channel: for every input channel and tap, one (masked, unaligned) load of 16 input
 * columns and O FMAs with the broadcast weight. The sum runs bias, then channels, rows and columns of
 * the kernel in order. Forward only (the backward stays oneDNN's); fp32 NCHW with the oneDNN
 * implementation selected; tests/test_conv2d.c checks it against im2col. */
#define NARROW_MAX_O 4

static int narrow_applies(const Conv2dShape *s) {
#if defined(__AVX512F__)
    return s->O <= NARROW_MAX_O && s->KH == 3 && s->KW == 3 && s->stride_h == 1 && s->stride_w == 1 && s->pad_h == 1 &&
           s->pad_w == 1 && !s->in_blocked && !s->out_blocked && env_impl() == CONV2D_DNNL && env_prec() == CONV2D_FP32;
#else
    (void)s;
    return 0;
#endif
}

#if defined(__AVX512F__)
#include <immintrin.h>

/* lanes of the 16 columns from x0 whose input column x0 + j + kx - 1 lies in [0, W), for kx 0..2 */
static void narrow_masks(__mmask16 *m, int x0, int W) {
    for (int kx = 0; kx < 3; kx++) {
        unsigned bits = 0;
        for (int j = 0; j < 16; j++) {
            int col = x0 + j + kx - 1;
            bits |= (unsigned)(col >= 0 && col < W && x0 + j < W) << j;
        }
        m[kx] = (__mmask16)bits;
    }
}

/* One output row, columns [x0, x0 + 32) (two registers per output channel, so 2 * O independent
 * FMA chains), O a compile-time constant so the accumulators stay in registers. */
#define NARROW_ROW(OC)                                                                                                \
    static void narrow_row_##OC(float *out, const float *img, const float *weight, const float *bias, int C, int H,  \
                                int W, int y, int x0) {                                                              \
        const int64_t plane = (int64_t)H * W;                                                                         \
        __mmask16 ma[3], mb[3];                                                                                       \
        narrow_masks(ma, x0, W);                                                                                      \
        narrow_masks(mb, x0 + 16, W);                                                                                 \
        __m512 a[OC], b[OC];                                                                                          \
        for (int o = 0; o < OC; o++) a[o] = b[o] = _mm512_set1_ps(bias ? bias[o] : 0.0f);                            \
        for (int c = 0; c < C; c++) {                                                                                 \
            const float *pc = img + (int64_t)c * plane;                                                               \
            for (int ky = 0; ky < 3; ky++) {                                                                          \
                const int iy = y + ky - 1;                                                                            \
                if (iy < 0 || iy >= H) continue;                                                                      \
                const float *row = pc + (int64_t)iy * W + x0 - 1;                                                     \
                for (int kx = 0; kx < 3; kx++) {                                                                      \
                    __m512 va = _mm512_maskz_loadu_ps(ma[kx], row + kx);                                              \
                    __m512 vb = _mm512_maskz_loadu_ps(mb[kx], row + kx + 16);                                         \
                    for (int o = 0; o < OC; o++) {                                                                    \
                        __m512 w = _mm512_set1_ps(weight[((int64_t)o * C + c) * 9 + ky * 3 + kx]);                   \
                        a[o] = _mm512_fmadd_ps(va, w, a[o]);                                                          \
                        b[o] = _mm512_fmadd_ps(vb, w, b[o]);                                                          \
                    }                                                                                                 \
                }                                                                                                     \
            }                                                                                                         \
        }                                                                                                             \
        int left = W - x0;                                                                                            \
        __mmask16 sa = (__mmask16)(left >= 16 ? 0xFFFFu : (1u << left) - 1);                                          \
        __mmask16 sb = (__mmask16)(left >= 32 ? 0xFFFFu : left <= 16 ? 0u : (1u << (left - 16)) - 1);                 \
        for (int o = 0; o < OC; o++) {                                                                                \
            float *po = out + ((int64_t)o * H + y) * W + x0;                                                          \
            _mm512_mask_storeu_ps(po, sa, a[o]);                                                                      \
            _mm512_mask_storeu_ps(po + 16, sb, b[o]);                                                                 \
        }                                                                                                             \
    }
NARROW_ROW(1)
NARROW_ROW(2)
NARROW_ROW(3)
NARROW_ROW(4)
#undef NARROW_ROW

static void narrow_forward(float *out, const float *inp, const float *weight, const float *bias, const Conv2dShape *s) {
    const int N = s->N, C = s->C, H = s->H, W = s->W, O = s->O, xblocks = (W + 31) / 32;
    const int64_t plane = (int64_t)H * W;
    void (*row)(float *, const float *, const float *, const float *, int, int, int, int, int) =
        O == 1 ? narrow_row_1 : O == 2 ? narrow_row_2 : O == 3 ? narrow_row_3 : narrow_row_4;
    const int64_t rows = (int64_t)N * H * xblocks;
#pragma omp parallel for schedule(static) if ((int64_t)N * plane * C * O > DNNL_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int n = (int)(r / ((int64_t)H * xblocks)), y = (int)(r / xblocks % H), xb = (int)(r % xblocks);
        row(out + (int64_t)n * O * plane, inp + (int64_t)n * C * plane, weight, bias, C, H, W, y, xb * 32);
    }
}
#else
static void narrow_forward(float *out, const float *inp, const float *weight, const float *bias, const Conv2dShape *s) {
    (void)out, (void)inp, (void)weight, (void)bias, (void)s;
}
#endif

void conv2d_forward(float *out, const float *inp, const float *weight, const float *bias, const Conv2dShape *s,
                    float *scratch) {
    if (narrow_applies(s)) {
        narrow_forward(out, inp, weight, bias, s);
        return;
    }
    int nthr = dnnl_threads_for(s);
    ConvChunks ch;
    int done = conv_chunks(&ch, s, DIR_FWD, bias != NULL, 0);
    size_t xs = (size_t)s->C * s->H * s->W, ys = (size_t)s->O * s->OH * s->OW;
    for (int i = 0; done && i < ch.n_chunks; i++) {
        int rows;
        const ConvPrims *cp = chunk_prims(&ch, i, &rows);
        size_t n0 = (size_t)i * ch.nb;
        done = conv_run(cp, DIR_FWD, inp + n0 * xs, weight, out + n0 * ys, bias, NULL, 0) == 0;
    }
    dnnl_threads_restore(nthr);
    if (!done) im2col_forward(out, inp, weight, bias, s, scratch); /* overwrites every chunk */
}

void conv2d_forward_over(float *buf, const float *weight, const float *bias, const Conv2dShape *s) {
    size_t xs = (size_t)s->C * s->H * s->W, ys = (size_t)s->O * s->OH * s->OW;
    int nb = chunk_rows(s, wino_mode(s, DIR_FWD, env_prec() == CONV2D_BF16) == WINO_YES), n_chunks = (s->N + nb - 1) / nb;
    float *tmp = mempool_alloc((size_t)nb * xs * sizeof(float));
    /* a growing output runs from the last chunk down, a shrinking one from the first up: chunk i's
     * output then only covers inputs already copied out (see conv2d.h) */
    int down = ys > xs;
    for (int k = 0; k < n_chunks; k++) {
        int i = down ? n_chunks - 1 - k : k;
        size_t n0 = (size_t)i * nb;
        Conv2dShape cs = *s;
        cs.N = s->N - (int)n0 < nb ? s->N - (int)n0 : nb;
        memcpy(tmp, buf + n0 * xs, (size_t)cs.N * xs * sizeof(float));
        conv2d_forward(buf + n0 * ys, tmp, weight, bias, &cs, NULL);
    }
    mempool_free(tmp);
}

/* The input gradient through oneDNN, added into dinp or (set) written there; 0 if oneDNN has no
 * primitive (nothing was written). */
static int backward_data_dnnl(float *dinp, const float *dout, const float *weight, const Conv2dShape *s, int set) {
    ConvChunks cd;
    if (!conv_chunks(&cd, s, DIR_BWD_DATA, 0, set)) return 0;
    size_t xs = (size_t)s->C * s->H * s->W, ys = (size_t)s->O * s->OH * s->OW;
    for (int i = 0; i < cd.n_chunks; i++) {
        int rows;
        const ConvPrims *cp = chunk_prims(&cd, i, &rows);
        size_t n0 = (size_t)i * cd.nb;
        CHECK(conv_run(cp, DIR_BWD_DATA, dout + n0 * ys, weight, dinp + n0 * xs, NULL, NULL, set) == 0,
              "conv2d: oneDNN backward-data failed");
    }
    return 1;
}

void conv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, const Conv2dShape *s, float *scratch) {
    int nthr = dnnl_threads_for(s);
    size_t xs = (size_t)s->C * s->H * s->W, ys = (size_t)s->O * s->OH * s->OW;
    ConvChunks cw;
    if (dweight && conv_chunks(&cw, s, DIR_BWD_WEIGHTS, dbias != NULL, 0)) {
        float *db = NULL;
        if (dbias) db = xmalloc((size_t)s->O * sizeof(float));
        for (int i = 0; i < cw.n_chunks; i++) {
            int rows;
            const ConvPrims *cp = chunk_prims(&cw, i, &rows);
            size_t n0 = (size_t)i * cw.nb;
            CHECK(conv_run(cp, DIR_BWD_WEIGHTS, inp + n0 * xs, dout + n0 * ys, dweight, NULL, db, 0) == 0,
                  "conv2d: oneDNN backward-weights failed");
            if (db)
                for (int o = 0; o < s->O; o++) dbias[o] += db[o];
        }
        free(db);
        dweight = NULL;
        dbias = NULL;
    }
    if (dinp && backward_data_dnnl(dinp, dout, weight, s, 0)) dinp = NULL;
    dnnl_threads_restore(nthr);
    if (dbias) bias_backward(dbias, dout, s);
    im2col_backward(dinp, dweight, dout, inp, weight, s, scratch);
}

void conv2d_backward_data_set(float *dinp, const float *dout, const float *weight, const Conv2dShape *s,
                              float *scratch) {
    int nthr = dnnl_threads_for(s);
    int done = backward_data_dnnl(dinp, dout, weight, s, 1);
    dnnl_threads_restore(nthr);
    if (done) return;
    memset(dinp, 0, (size_t)s->N * s->C * s->H * s->W * sizeof(float));
    im2col_backward(dinp, NULL, dout, NULL, weight, s, scratch);
}

/* ---------------------------------------------------------------- tape op */

typedef struct Conv2dCtx {
    Conv2dShape s;
    float *scratch; /* the forward's scratch, reused by backward */
} Conv2dCtx;

static void conv2d_bwd(Node *nd) {
    Tensor *x = nd->in[0], *w = nd->in[1], *b = nd->in[2], *y = nd->out[0];
    Conv2dCtx *cx = nd->ctx;
    int set;
    float *dx = tensor_grad_overwrite(x, &set);
    if (set) { /* the first gradient x receives: written, not added to zeros */
        KERNEL(nd->tape->device, conv2d_backward_data_set, dx, y->grad, w->data, &cx->s, cx->scratch);
        dx = NULL;
    }
    KERNEL(nd->tape->device, conv2d_backward, dx, tensor_grad_or_null(w), tensor_grad_or_null(b), y->grad, x->data, w->data, &cx->s, cx->scratch);
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
    Tensor *in[] = {x, w, b}, *out[1];
    /* without gradients a donated input is overwritten by the output, chunk by chunk */
    Tensor *y = tape_out_over(tp, x, tape_would_record(tp, 3, in), 4, (int[]){s.N, s.O, s.OH, s.OW});
    if (y) { /* (never on a device: tape_out_over gives device tensors no buffer) */
        conv2d_forward_over(y->data, w->data, b ? b->data : NULL, &s);
        tape_shrink(y);
        out[0] = y;
        TAPE_RECORD(tp, "conv2d", conv2d_bwd, in, out); /* profiles it; records nothing */
        return y;
    }
    y = TNEW(tp, s.N, s.O, s.OH, s.OW);
    /* 0 on the oneDNN path, and on a device (cuDNN's workspace comes from its pool) */
    size_t n_scratch = tp->device == DEVICE_CPU ? conv2d_op_scratch_floats(&s, b != NULL) : 0;
    float *scratch = n_scratch ? tape_alloc(tp, n_scratch * sizeof(float)) : NULL;
    KERNEL(tp->device, conv2d_forward, y->data, x->data, w->data, b ? b->data : NULL, &s, scratch);
    out[0] = y;
    Node *nd = TAPE_RECORD(tp, "conv2d", conv2d_bwd, in, out);
    if (nd) {
        Conv2dCtx *cx = tape_alloc(tp, sizeof *cx);
        cx->s = s;
        cx->scratch = scratch;
        nd->ctx = cx;
    }
    return y;
}
