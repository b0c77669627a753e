/* cuda_rt.cu: see cuda_rt.h (ATTNGAN_CUDA_MATH, read once in cu_available, sets the cuBLAS handle's
 * math mode; conv2d.cu reads cu_math_tf32 for its descriptors). */
#include "cuda_rt.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_state = 0; /* 0 untried, 1 ready, -1 unusable */
static const char *g_why = "not initialised";
static cudaStream_t g_stream;
static cublasHandle_t g_cublas;
static cudnnHandle_t g_cudnn;
static int g_tf32 = 0; /* ATTNGAN_CUDA_MATH=tf32 */

extern "C" void cu_check(int err, const char *what, const char *file, int line) {
    if (err == 0) return;
    fprintf(stderr, "%s:%d: %s failed: %s (%d)\n", file, line, what, cudaGetErrorString((cudaError_t)err), err);
    abort();
}

/* The GPU of this process among the n visible: ATTNGAN_CUDA_DEVICE (0..n-1; -1 when outside),
 * else the local rank an MPI launcher gives it (one GPU per rank of a node: docs/DISTRIBUTED.md),
 * modulo n; else 0. */
static int pick_device(int n) {
    const char *d = getenv("ATTNGAN_CUDA_DEVICE");
    if (d && *d) {
        int k = atoi(d);
        return k >= 0 && k < n ? k : -1;
    }
    const char *keys[4] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "PMIX_LOCAL_RANK"};
    for (int i = 0; i < 4; i++) {
        const char *v = getenv(keys[i]);
        if (v && *v) return atoi(v) % n;
    }
    return 0;
}

extern "C" int cu_available(const char **why) {
    pthread_mutex_lock(&g_mu);
    if (g_state == 0) {
        int n = 0;
        /* the math mode, read once: fp32 (default) or tf32 */
        const char *math = getenv("ATTNGAN_CUDA_MATH");
        int math_ok = !math || !*math || !strcmp(math, "fp32") || !strcmp(math, "tf32");
        g_tf32 = math_ok && math && !strcmp(math, "tf32");
        cudaError_t e = math_ok ? cudaGetDeviceCount(&n) : cudaSuccess;
        if (!math_ok) {
            g_state = -1;
            g_why = "ATTNGAN_CUDA_MATH must be fp32 or tf32 (bf16 is not built: the backend stores fp32)";
        } else if (e != cudaSuccess || n == 0) {
            g_state = -1;
            g_why = e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device";
        } else if (pick_device(n) < 0) {
            g_state = -1;
            g_why = "ATTNGAN_CUDA_DEVICE names no visible CUDA device";
        } else if (cudaSetDevice(pick_device(n)) != cudaSuccess ||
                   cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking) != cudaSuccess) {
            g_state = -1;
            g_why = "cannot open the CUDA device (ATTNGAN_CUDA_DEVICE, or the launcher's local rank, picks it)";
        } else if (cublasCreate(&g_cublas) != CUBLAS_STATUS_SUCCESS || cublasSetStream(g_cublas, g_stream) != CUBLAS_STATUS_SUCCESS) {
            g_state = -1;
            g_why = "cuBLAS did not initialise";
        } else if (cudnnCreate(&g_cudnn) != CUDNN_STATUS_SUCCESS || cudnnSetStream(g_cudnn, g_stream) != CUDNN_STATUS_SUCCESS) {
            g_state = -1;
            g_why = "cuDNN did not initialise";
        } else {
            /* fp32 means fp32: no TF32 in cuBLAS unless ATTNGAN_CUDA_MATH=tf32 asks (the CPU parity
             * tolerances assume fp32) */
            cublasSetMathMode(g_cublas, g_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
            g_state = 1;
            g_why = "ready";
        }
    }
    int ok = g_state == 1;
    if (why) *why = g_why;
    pthread_mutex_unlock(&g_mu);
    return ok;
}

static void need_device(void) {
    const char *why;
    if (!cu_available(&why)) {
        fprintf(stderr, "attngan: CUDA: %s\n", why);
        abort();
    }
}

extern "C" int cu_math_tf32(void) {
    if (!cu_available(NULL)) return 0;
    pthread_mutex_lock(&g_mu);
    int on = g_tf32;
    pthread_mutex_unlock(&g_mu);
    return on;
}

extern "C" void cu_set_math_tf32(int on) {
    need_device();
    pthread_mutex_lock(&g_mu);
    g_tf32 = !!on;
    if (cublasSetMathMode(g_cublas, g_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH) != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "attngan: CUDA: cublasSetMathMode failed\n");
        abort();
    }
    pthread_mutex_unlock(&g_mu);
}

extern "C" void *cu_stream(void) { need_device(); return (void *)g_stream; }
extern "C" void *cu_cublas(void) { need_device(); return (void *)g_cublas; }
extern "C" void *cu_cudnn(void) { need_device(); return (void *)g_cudnn; }

/* ---------------------------------------------------------------- the caching allocator */

static void *raw_cuda_alloc(size_t bytes) {
    void *p = NULL;
    return cudaMalloc(&p, bytes) == cudaSuccess ? p : NULL;
}
static void raw_cuda_free(void *p, size_t bytes) {
    (void)bytes;
    CU_CHECK(cudaFree(p));
}

static DevPool *pool(void) {
    static DevPool g_pool;
    if (!g_pool.raw_alloc) {
        g_pool.name = "cuda";
        g_pool.raw_alloc = raw_cuda_alloc;
        g_pool.raw_free = raw_cuda_free;
    }
    return &g_pool;
}

extern "C" void *cu_alloc(size_t bytes) {
    need_device();
    return devpool_alloc(pool(), bytes);
}

extern "C" void cu_free(void *p) { devpool_free(pool(), p); }
extern "C" void cu_release_cache(void) { devpool_release_cache(pool()); }
extern "C" DevPoolStats cu_pool_stats(void) { return devpool_stats(pool()); }
extern "C" void cu_pool_reset_peak(void) { devpool_reset_peak(pool()); }

extern "C" CuStats cu_stats(void) {
    DevPoolStats s = devpool_stats(pool());
    CuStats c;
    c.live = s.live;
    c.peak_live = s.peak_live;
    c.cached = s.cached;
    c.n_malloc = s.n_raw;
    return c;
}

extern "C" void cu_upload(void *dst, const void *src, size_t bytes) {
    /* pageable src: staged before cudaMemcpyAsync returns (CUDA's API synchronisation rules), so
     * no cudaStreamSynchronize is needed for the caller to reuse it */
    CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, (cudaStream_t)cu_stream()));
}

extern "C" void cu_download(void *dst, const void *src, size_t bytes) {
    CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, g_stream));
    CU_CHECK(cudaStreamSynchronize(g_stream));
}

extern "C" void cu_copy(void *dst, const void *src, size_t bytes) {
    CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, g_stream));
}

extern "C" void cu_memset0(void *dst, size_t bytes) { CU_CHECK(cudaMemsetAsync(dst, 0, bytes, g_stream)); }
extern "C" void cu_sync(void) { CU_CHECK(cudaStreamSynchronize(g_stream)); }
