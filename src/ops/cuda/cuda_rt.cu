/* cuda_rt.cu: see cuda_rt.h. */
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

extern "C" void cu_check(int err, const char *what, const char *file, int line) {
    if (err == 0) return;
    fprintf(stderr, "%s:%d: %s failed: %s (%d)\n", file, line, what, cudaGetErrorString((cudaError_t)err), err);
    abort();
}

extern "C" int cu_available(const char **why) {
    pthread_mutex_lock(&g_mu);
    if (g_state == 0) {
        int n = 0;
        cudaError_t e = cudaGetDeviceCount(&n);
        if (e != cudaSuccess || n == 0) {
            g_state = -1;
            g_why = e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device";
        } else if (cudaSetDevice(0) != cudaSuccess || cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking) != cudaSuccess) {
            g_state = -1;
            g_why = "cannot open device 0";
        } else if (cublasCreate(&g_cublas) != CUBLAS_STATUS_SUCCESS || cublasSetStream(g_cublas, g_stream) != CUBLAS_STATUS_SUCCESS) {
            g_state = -1;
            g_why = "cuBLAS did not initialise";
        } else if (cudnnCreate(&g_cudnn) != CUDNN_STATUS_SUCCESS || cudnnSetStream(g_cudnn, g_stream) != CUDNN_STATUS_SUCCESS) {
            g_state = -1;
            g_why = "cuDNN did not initialise";
        } else {
            /* fp32 means fp32: no TF32 in cuBLAS unless asked (the CPU parity tolerances assume it) */
            cublasSetMathMode(g_cublas, CUBLAS_DEFAULT_MATH);
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

extern "C" void *cu_stream(void) { need_device(); return (void *)g_stream; }
extern "C" void *cu_cublas(void) { need_device(); return (void *)g_cublas; }
extern "C" void *cu_cudnn(void) { need_device(); return (void *)g_cudnn; }

/* ---------------------------------------------------------------- the caching allocator */

/* Sizes round up to 512 bytes below 1 MiB and to 2 MiB above; a free block is reused for a
 * request of exactly its rounded size (training steps repeat their shapes exactly). */
typedef struct Block {
    void *p;
    size_t size;
    int used;
} Block;

static Block *g_blocks;
static int g_n, g_cap;
static CuStats g_st;

static size_t round_size(size_t b) {
    if (b < (1u << 20)) return (b + 511) & ~(size_t)511;
    return (b + (2u << 20) - 1) & ~(((size_t)2 << 20) - 1);
}

extern "C" void *cu_alloc(size_t bytes) {
    need_device();
    size_t size = round_size(bytes ? bytes : 1);
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < g_n; i++)
        if (!g_blocks[i].used && g_blocks[i].size == size) {
            g_blocks[i].used = 1;
            g_st.cached -= size;
            g_st.live += size;
            if (g_st.live > g_st.peak_live) g_st.peak_live = g_st.live;
            pthread_mutex_unlock(&g_mu);
            return g_blocks[i].p;
        }
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, size);
    if (e != cudaSuccess) { /* give the cache back and try once more */
        for (int i = 0; i < g_n; i++)
            if (!g_blocks[i].used) {
                cudaFree(g_blocks[i].p);
                g_st.cached -= g_blocks[i].size;
                g_blocks[i--] = g_blocks[--g_n];
            }
        e = cudaMalloc(&p, size);
    }
    if (e != cudaSuccess) {
        pthread_mutex_unlock(&g_mu);
        fprintf(stderr, "attngan: CUDA out of memory: %zu bytes (%zu live)\n", size, g_st.live);
        abort();
    }
    if (g_n == g_cap) {
        g_cap = g_cap ? 2 * g_cap : 256;
        g_blocks = (Block *)realloc(g_blocks, (size_t)g_cap * sizeof(Block));
        if (!g_blocks) abort();
    }
    g_blocks[g_n++] = (Block){p, size, 1};
    g_st.live += size;
    g_st.n_malloc++;
    if (g_st.live > g_st.peak_live) g_st.peak_live = g_st.live;
    pthread_mutex_unlock(&g_mu);
    return p;
}

extern "C" void cu_free(void *p) {
    if (!p) return;
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < g_n; i++)
        if (g_blocks[i].p == p) {
            if (!g_blocks[i].used) {
                pthread_mutex_unlock(&g_mu);
                fprintf(stderr, "attngan: cu_free(%p): double free\n", p);
                abort();
            }
            g_blocks[i].used = 0;
            g_st.live -= g_blocks[i].size;
            g_st.cached += g_blocks[i].size;
            pthread_mutex_unlock(&g_mu);
            return;
        }
    pthread_mutex_unlock(&g_mu);
    fprintf(stderr, "attngan: cu_free(%p): not a device block of this allocator\n", p);
    abort();
}

extern "C" void cu_release_cache(void) {
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < g_n; i++)
        if (!g_blocks[i].used) {
            cudaFree(g_blocks[i].p);
            g_st.cached -= g_blocks[i].size;
            g_blocks[i--] = g_blocks[--g_n];
        }
    pthread_mutex_unlock(&g_mu);
}

extern "C" CuStats cu_stats(void) {
    pthread_mutex_lock(&g_mu);
    CuStats s = g_st;
    pthread_mutex_unlock(&g_mu);
    return s;
}

extern "C" void cu_upload(void *dst, const void *src, size_t bytes) {
    CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, g_stream));
    CU_CHECK(cudaStreamSynchronize(g_stream));
}

extern "C" void cu_download(void *dst, const void *src, size_t bytes) {
    CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, g_stream));
    CU_CHECK(cudaStreamSynchronize(g_stream));
}

extern "C" void cu_memset0(void *dst, size_t bytes) { CU_CHECK(cudaMemsetAsync(dst, 0, bytes, g_stream)); }
extern "C" void cu_sync(void) { CU_CHECK(cudaStreamSynchronize(g_stream)); }
