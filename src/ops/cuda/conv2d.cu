/* conv2d.cu: the CUDA twin of src/ops/conv2d.c through cuDNN (cross-correlation, NCHW, fp32).
 * Backward adds into the gradients (beta = 1), as the CPU kernels do; the workspace comes from the
 * caching allocator per call.
 *
 * Plans cached per shape. A plan is the descriptors (input, output, bias, filter, convolution with
 * its math type), the chosen algorithm and its workspace size, for one key: the shape's sizes
 * (N, C, H, W, O, KH, KW, strides, pads; not the blocked flags, which concern the CPU), the
 * direction (forward, backward data, backward filter, and a descriptors-only entry for a bias
 * gradient alone) and the math mode (cu_math_tf32). It is made on a shape's first call and reused
 * on every later one: no descriptors are created and no algorithm is asked for after the first
 * training step. The table is an open-addressing hash behind a mutex; plans live until
 * cu_conv_cache_clear (cuda_rt.h), which no convolution may overlap.
 *
 * The algorithm:
 *  - by default cuDNN's heuristic (cudnnGet*Algorithm_v7): its first choice that is usable;
 *  - with ATTNGAN_CUDNN_AUTOTUNE=1 (read once; cu_conv_set_autotune for tests), every candidate
 *    is timed once per plan with cudnnFind*AlgorithmEx and the fastest is kept. The timing reads the
 *    caller's inputs but writes only scratch from cu_alloc (an output of the direction's size and a
 *    workspace of the largest candidate's size, at most 1 GiB and half the free device memory):
 *    never the caller's outputs, which may hold gradients being accumulated.
 * Deterministic by default: either way only algorithms that cuDNN reports CUDNN_DETERMINISTIC are
 * taken (the same inputs give the same bits run to run, as the rest of the backend), unless
 * ATTNGAN_CUDNN_NONDETERMINISTIC=1 (read once), which lets the fastest win whatever it is. A shape
 * with no deterministic algorithm takes the first usable one and says so once on stderr.
 *
 * Math: fp32 (default, ATTNGAN_CUDA_MATH=fp32): CUDNN_FMA_MATH on the descriptors, no tensor-core
 * algorithm, results within fp32 tolerances of the CPU. tf32 (ATTNGAN_CUDA_MATH=tf32):
 * CUDNN_TENSOR_OP_MATH while choosing, then the chosen algorithm's own math type (as cuDNN
 * reports it); TF32 tensor cores take 10-bit mantissas (about 1e-3 relative per product, 1e-2
 * norm-relative is the bound the tests use). CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION (down-conversion
 * to fp16) is never taken. */
#include "cuda_ops.h"
#include "cuda_rt.h"

#include <cuda_runtime.h>
#include <cudnn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CUDNN_CHECK(call)                                                                                   \
    do {                                                                                                    \
        cudnnStatus_t st_ = (call);                                                                         \
        if (st_ != CUDNN_STATUS_SUCCESS) {                                                                  \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, cudnnGetErrorString(st_)); \
            abort();                                                                                        \
        }                                                                                                   \
    } while (0)

enum { DIR_FWD = 0, DIR_BWD_DATA = 1, DIR_BWD_FILTER = 2, DIR_BIAS = 3 };
static const char *const DIR_NAME[] = {"forward", "backward-data", "backward-filter", "bias"};

typedef struct ConvKey {
    int N, C, H, W, O, KH, KW, stride_h, stride_w, pad_h, pad_w;
    int dir, tf32;
} ConvKey;

typedef struct ConvPlan {
    ConvKey key;
    cudnnTensorDescriptor_t x, y, b;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv; /* its math type: the chosen algorithm's */
    int algo;                          /* cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t by dir */
    size_t ws;                         /* workspace bytes of algo */
} ConvPlan;

/* ---------------------------------------------------------------- options, read once */

static int env_flag(const char *name) {
    const char *v = getenv(name);
    if (!v || !*v || !strcmp(v, "0")) return 0;
    if (!strcmp(v, "1")) return 1;
    fprintf(stderr, "attngan: %s=%s: must be 0 or 1\n", name, v);
    abort();
}

/* ---------------------------------------------------------------- the cache */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static ConvPlan **g_slots; /* open addressing, linear probing; NULL: empty */
static size_t g_cap, g_n;
static int g_opts_read, g_autotune, g_nondet;

static void read_opts_locked(void) {
    if (g_opts_read) return;
    g_autotune = env_flag("ATTNGAN_CUDNN_AUTOTUNE");
    g_nondet = env_flag("ATTNGAN_CUDNN_NONDETERMINISTIC");
    g_opts_read = 1;
}

static uint64_t key_hash(const ConvKey *k) {
    const int *v = (const int *)k;
    uint64_t h = 1469598103934665603ull; /* FNV-1a over the ints */
    for (size_t i = 0; i < sizeof *k / sizeof(int); i++) {
        h ^= (uint32_t)v[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static int key_eq(const ConvKey *a, const ConvKey *b) { return memcmp(a, b, sizeof *a) == 0; }

/* the slot of k: the plan's, or the empty one where it would go */
static size_t slot_of(ConvPlan **slots, size_t cap, const ConvKey *k) {
    size_t i = (size_t)key_hash(k) & (cap - 1);
    while (slots[i] && !key_eq(&slots[i]->key, k)) i = (i + 1) & (cap - 1);
    return i;
}

static void insert_locked(ConvPlan *p) {
    if (2 * (g_n + 1) > g_cap) { /* at most half full */
        size_t cap = g_cap ? 2 * g_cap : 64;
        ConvPlan **slots = (ConvPlan **)calloc(cap, sizeof *slots);
        if (!slots) {
            fprintf(stderr, "conv2d_cuda: out of host memory for the plan cache\n");
            abort();
        }
        for (size_t i = 0; i < g_cap; i++)
            if (g_slots[i]) slots[slot_of(slots, cap, &g_slots[i]->key)] = g_slots[i];
        free(g_slots);
        g_slots = slots;
        g_cap = cap;
    }
    g_slots[slot_of(g_slots, g_cap, &p->key)] = p;
    g_n++;
}

static void plan_free(ConvPlan *p) {
    cudnnDestroyTensorDescriptor(p->x);
    cudnnDestroyTensorDescriptor(p->y);
    cudnnDestroyTensorDescriptor(p->b);
    cudnnDestroyFilterDescriptor(p->w);
    cudnnDestroyConvolutionDescriptor(p->conv);
    free(p);
}

/* ---------------------------------------------------------------- choosing an algorithm */

/* The first entry of perf[0..n) (cuDNN sorts them by speed, measured or expected) that ran, that the
 * math mode allows and, when det, that is deterministic; -1 if none. */
template <typename Perf> static int pick(const Perf *perf, int n, int tf32, int det) {
    for (int k = 0; k < n; k++) {
        if (perf[k].status != CUDNN_STATUS_SUCCESS) continue;
        if (perf[k].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
        if (!tf32 && perf[k].mathType == CUDNN_TENSOR_OP_MATH) continue;
        if (det && perf[k].determinism != CUDNN_DETERMINISTIC) continue;
        return k;
    }
    return -1;
}

/* Sets the plan's algorithm from perf (the math type too in tf32 mode; fp32 keeps FMA). */
template <typename Perf> static void choose(ConvPlan *p, const Perf *perf, int n) {
    int tf32 = p->key.tf32;
    int k = pick(perf, n, tf32, !g_nondet);
    if (k < 0 && !g_nondet) {
        k = pick(perf, n, tf32, 0);
        if (k >= 0)
            fprintf(stderr,
                    "conv2d_cuda: no deterministic cuDNN %s algorithm for (%d, %d, %d, %d) * (%d, %d, %d, %d) "
                    "stride (%d, %d) pad (%d, %d): algorithm %d is not\n",
                    DIR_NAME[p->key.dir], p->key.N, p->key.C, p->key.H, p->key.W, p->key.O, p->key.C, p->key.KH,
                    p->key.KW, p->key.stride_h, p->key.stride_w, p->key.pad_h, p->key.pad_w, (int)perf[k].algo);
    }
    if (k < 0) {
        fprintf(stderr, "conv2d_cuda: no usable cuDNN %s algorithm for (%d, %d, %d, %d) * (%d, %d, %d, %d)\n",
                DIR_NAME[p->key.dir], p->key.N, p->key.C, p->key.H, p->key.W, p->key.O, p->key.C, p->key.KH, p->key.KW);
        abort();
    }
    p->algo = (int)perf[k].algo;
    if (tf32) CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, perf[k].mathType));
}

/* The workspace bytes of the largest candidate of the plan's direction, bounded for the timing. */
static size_t tune_workspace(cudnnHandle_t h, ConvPlan *p) {
    size_t most = 0, sz;
    if (p->key.dir == DIR_FWD) {
        for (int a = 0; a < CUDNN_CONVOLUTION_FWD_ALGO_COUNT; a++)
            if (cudnnGetConvolutionForwardWorkspaceSize(h, p->x, p->w, p->conv, p->y, (cudnnConvolutionFwdAlgo_t)a, &sz) ==
                    CUDNN_STATUS_SUCCESS && sz > most)
                most = sz;
    } else if (p->key.dir == DIR_BWD_DATA) {
        for (int a = 0; a < CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT; a++)
            if (cudnnGetConvolutionBackwardDataWorkspaceSize(h, p->w, p->y, p->conv, p->x,
                                                             (cudnnConvolutionBwdDataAlgo_t)a, &sz) == CUDNN_STATUS_SUCCESS &&
                sz > most)
                most = sz;
    } else {
        for (int a = 0; a < CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT; a++)
            if (cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p->x, p->y, p->conv, p->w,
                                                               (cudnnConvolutionBwdFilterAlgo_t)a, &sz) == CUDNN_STATUS_SUCCESS &&
                sz > most)
                most = sz;
    }
    size_t cap = (size_t)1 << 30, free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess && free_b / 2 < cap) cap = free_b / 2;
    return most < cap ? most : cap; /* candidates that need more are reported as failed, and skipped */
}

/* a, b: the direction's inputs (forward: x, w; backward data: w, dy; backward filter: x, dy),
 * read by the timing only */
static void plan_algorithm(cudnnHandle_t h, ConvPlan *p, const Conv2dShape *s, const float *a, const float *b) {
    const ConvKey *k = &p->key;
    if (k->dir == DIR_BIAS) return;
    if (g_autotune) {
        int64_t out_floats = k->dir == DIR_FWD        ? (int64_t)s->N * s->O * s->OH * s->OW
                             : k->dir == DIR_BWD_DATA ? (int64_t)s->N * s->C * s->H * s->W
                                                      : (int64_t)s->O * s->C * s->KH * s->KW;
        size_t ws_bytes = tune_workspace(h, p);
        void *out = cu_alloc((size_t)(out_floats > 0 ? out_floats : 1) * sizeof(float)); /* scratch, never the caller's */
        void *ws = ws_bytes ? cu_alloc(ws_bytes) : NULL;
        int n = 0;
        if (k->dir == DIR_FWD) {
            cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
            CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(h, p->x, a, p->w, b, p->conv, p->y, out,
                                                               CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf, ws, ws_bytes));
            choose(p, perf, n);
        } else if (k->dir == DIR_BWD_DATA) {
            cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
            CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(h, p->w, a, p->y, b, p->conv, p->x, out,
                                                                    CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf, ws,
                                                                    ws_bytes));
            choose(p, perf, n);
        } else {
            cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
            CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(h, p->x, a, p->y, b, p->conv, p->w, out,
                                                                      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf,
                                                                      ws, ws_bytes));
            choose(p, perf, n);
        }
        cu_free(ws); /* stream-ordered: the pool hands them out again on the same stream */
        cu_free(out);
    } else {
        int n = 0;
        if (k->dir == DIR_FWD) {
            cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
            CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, p->x, p->w, p->conv, p->y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                               &n, perf));
            choose(p, perf, n);
        } else if (k->dir == DIR_BWD_DATA) {
            cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
            CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->w, p->y, p->conv, p->x,
                                                                    CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf));
            choose(p, perf, n);
        } else {
            cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
            CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->x, p->y, p->conv, p->w,
                                                                      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf));
            choose(p, perf, n);
        }
    }
    /* the exact workspace of the chosen algorithm under the descriptor's final math type */
    if (k->dir == DIR_FWD)
        CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, p->x, p->w, p->conv, p->y, (cudnnConvolutionFwdAlgo_t)p->algo,
                                                            &p->ws));
    else if (k->dir == DIR_BWD_DATA)
        CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(h, p->w, p->y, p->conv, p->x,
                                                                 (cudnnConvolutionBwdDataAlgo_t)p->algo, &p->ws));
    else
        CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p->x, p->y, p->conv, p->w,
                                                                   (cudnnConvolutionBwdFilterAlgo_t)p->algo, &p->ws));
}

static ConvPlan *plan_make(cudnnHandle_t h, const ConvKey *k, const Conv2dShape *s, const float *a, const float *b) {
    ConvPlan *p = (ConvPlan *)calloc(1, sizeof *p);
    if (!p) {
        fprintf(stderr, "conv2d_cuda: out of host memory for a plan\n");
        abort();
    }
    p->key = *k;
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->b));
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->N, s->C, s->H, s->W));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->N, s->O, s->OH, s->OW));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->b, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, s->O, 1, 1));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s->O, s->C, s->KH, s->KW));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv, s->pad_h, s->pad_w, s->stride_h, s->stride_w, 1, 1,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, k->tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
    int n, c, hh, ww;
    CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &n, &c, &hh, &ww));
    if (n != s->N || c != s->O || hh != s->OH || ww != s->OW) {
        fprintf(stderr, "conv2d_cuda: cuDNN's output (%d, %d, %d, %d) differs from (%d, %d, %d, %d)\n", n, c, hh, ww,
                s->N, s->O, s->OH, s->OW);
        abort();
    }
    plan_algorithm(h, p, s, a, b);
    return p;
}

/* The plan of (s, dir, the math mode now), made on first use. */
static const ConvPlan *plan_get(cudnnHandle_t h, const Conv2dShape *s, int dir, const float *a, const float *b) {
    ConvKey k;
    memset(&k, 0, sizeof k);
    k.N = s->N, k.C = s->C, k.H = s->H, k.W = s->W, k.O = s->O, k.KH = s->KH, k.KW = s->KW;
    k.stride_h = s->stride_h, k.stride_w = s->stride_w, k.pad_h = s->pad_h, k.pad_w = s->pad_w;
    k.dir = dir;
    k.tf32 = cu_math_tf32();
    pthread_mutex_lock(&g_mu);
    read_opts_locked();
    ConvPlan *p = g_cap ? g_slots[slot_of(g_slots, g_cap, &k)] : NULL;
    if (!p) {
        p = plan_make(h, &k, s, a, b);
        insert_locked(p);
    }
    pthread_mutex_unlock(&g_mu);
    return p;
}

extern "C" {
void cu_conv_cache_clear(void) {
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < g_cap; i++)
        if (g_slots[i]) plan_free(g_slots[i]);
    free(g_slots);
    g_slots = NULL;
    g_cap = g_n = 0;
    pthread_mutex_unlock(&g_mu);
}

size_t cu_conv_cache_entries(void) {
    pthread_mutex_lock(&g_mu);
    size_t n = g_n;
    pthread_mutex_unlock(&g_mu);
    return n;
}

int cu_conv_autotune(void) {
    pthread_mutex_lock(&g_mu);
    read_opts_locked();
    int on = g_autotune;
    pthread_mutex_unlock(&g_mu);
    return on;
}

void cu_conv_set_autotune(int on) {
    pthread_mutex_lock(&g_mu);
    read_opts_locked();
    g_autotune = !!on;
    pthread_mutex_unlock(&g_mu);
}

void conv2d_forward_cuda(float *out, const float *inp, const float *weight, const float *bias, const Conv2dShape *s,
                         float *scratch) {
    (void)scratch; /* the CPU's im2col scratch: cuDNN's workspace comes from the pool */
    cudnnHandle_t h = (cudnnHandle_t)cu_cudnn();
    const ConvPlan *p = plan_get(h, s, DIR_FWD, inp, weight);
    void *ws = p->ws ? cu_alloc(p->ws) : NULL;
    const float one = 1.0f, zero = 0.0f;
    CUDNN_CHECK(cudnnConvolutionForward(h, &one, p->x, inp, p->w, weight, p->conv, (cudnnConvolutionFwdAlgo_t)p->algo, ws,
                                        p->ws, &zero, p->y, out));
    if (bias) CUDNN_CHECK(cudnnAddTensor(h, &one, p->b, bias, &one, p->y, out));
    cu_free(ws);
}

/* dinp = (beta) dinp + the input gradient: beta 1 adds (conv2d_backward), 0 writes (conv2d_backward_data_set) */
static void backward_data(cudnnHandle_t h, const Conv2dShape *s, float *dinp, const float *dout, const float *weight,
                          float beta) {
    const ConvPlan *p = plan_get(h, s, DIR_BWD_DATA, weight, dout);
    const float one = 1.0f;
    void *ws = p->ws ? cu_alloc(p->ws) : NULL;
    CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, p->w, weight, p->y, dout, p->conv,
                                             (cudnnConvolutionBwdDataAlgo_t)p->algo, ws, p->ws, &beta, p->x, dinp));
    cu_free(ws);
}

void conv2d_backward_data_set_cuda(float *dinp, const float *dout, const float *weight, const Conv2dShape *s, float *scratch) {
    (void)scratch;
    backward_data((cudnnHandle_t)cu_cudnn(), s, dinp, dout, weight, 0.0f);
}

void conv2d_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, const Conv2dShape *s, float *scratch) {
    (void)scratch;
    cudnnHandle_t h = (cudnnHandle_t)cu_cudnn();
    const float one = 1.0f;
    if (dinp) backward_data(h, s, dinp, dout, weight, 1.0f);
    if (dweight) {
        const ConvPlan *p = plan_get(h, s, DIR_BWD_FILTER, inp, dout);
        void *ws = p->ws ? cu_alloc(p->ws) : NULL;
        CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, p->x, inp, p->y, dout, p->conv,
                                                   (cudnnConvolutionBwdFilterAlgo_t)p->algo, ws, p->ws, &one, p->w, dweight));
        cu_free(ws);
    }
    if (dbias) {
        const ConvPlan *p = plan_get(h, s, DIR_BIAS, NULL, NULL);
        CUDNN_CHECK(cudnnConvolutionBackwardBias(h, &one, p->y, dout, &one, p->b, dbias));
    }
}
}
