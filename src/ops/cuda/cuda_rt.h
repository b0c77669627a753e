/* cuda_rt.h: the CUDA runtime of the backend (issue 9, first part): device, stream, cuBLAS and
 * cuDNN handles, a caching device allocator, copies, and the error checks. C-callable; built only
 * with `make CUDA=1` (nvcc, CUDA's cuBLAS and cuDNN under /usr/local/cuda).
 *
 * The allocator is src/core/devpool.h's caching pool over cudaMalloc (the host-memory device of
 * device.h runs the same pool code in `make test`): blocks are cached by rounded size after a free
 * (cudaMalloc and cudaFree synchronise the device, so a training loop must not call them per
 * tensor), and the peak of live bytes is tracked for the benchmarks' memory column.
 */
#ifndef ATTNGAN_CUDA_RT_H
#define ATTNGAN_CUDA_RT_H

#include <stddef.h>
#include <stdint.h>

#include "../../core/devpool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when a CUDA device is usable (initialises it on first call); 0 otherwise, with the reason in
 * *why (static text). Never aborts: tests use it to skip visibly. */
int cu_available(const char **why);

void *cu_alloc(size_t bytes);                 /* device memory, 256-byte aligned; FAILs when out of memory */
void cu_free(void *p);                        /* back to the cache; NULL is a no-op */
void cu_release_cache(void);                  /* cudaFree every cached block */
typedef struct CuStats {
    size_t live, peak_live, cached, n_malloc;
} CuStats;
CuStats cu_stats(void);
/* the same counters as the pool's (devpool.h), for device.h */
struct DevPoolStats cu_pool_stats(void);
void cu_pool_reset_peak(void);

/* host -> device, in stream order. src is pageable host memory: CUDA copies it to a staging buffer
 * before returning, so the caller may reuse it at once; no wait for the copy itself (the driver
 * does synchronise the stream before a pageable copy starts: pinned staging is owed, docs/CUDA.md) */
void cu_upload(void *dst, const void *src, size_t bytes);
void cu_download(void *dst, const void *src, size_t bytes); /* device -> host, synchronised */
void cu_copy(void *dst, const void *src, size_t bytes);     /* device -> device, async on the stream */
void cu_memset0(void *dst, size_t bytes);                   /* async on the stream */
void cu_sync(void);

/* The stream every kernel of the backend runs on, and the library handles bound to it
 * (void * so that C callers need no CUDA headers). */
void *cu_stream(void);
void *cu_cublas(void);
void *cu_cudnn(void);

/* The math mode of the matrix products and convolutions: ATTNGAN_CUDA_MATH=fp32 (default: cuBLAS's
 * CUBLAS_DEFAULT_MATH, cuDNN's CUDNN_FMA_MATH: fp32 results within fp32 tolerances of the CPU) or
 * tf32 (CUBLAS_TF32_TENSOR_OP_MATH on the shared cuBLAS handle, so every cuBLAS product of the
 * backend: linear, matmul, the LSTM's; CUDNN_TENSOR_OP_MATH on the convolutions' descriptors:
 * TF32 tensor cores, 10-bit mantissas: within 1e-2 norm-relative of fp32, the tests' bound).
 * Read once by cu_available, which refuses any other value (bf16 is not built: the backend stores
 * fp32).
 * cu_math_tf32: 1 in tf32 mode. cu_set_math_tf32 switches the mode for the products and
 * convolutions that start afterwards (tests, benchmarks); no kernel may be being issued meanwhile. */
int cu_math_tf32(void);
void cu_set_math_tf32(int on);

/* The convolutions' cuDNN plans (src/ops/cuda/conv2d.cu): descriptors and algorithm cached per shape,
 * direction and math mode. cu_conv_cache_clear frees them all (no convolution may run meanwhile);
 * cu_conv_cache_entries counts them. cu_conv_autotune: 1 when new plans time their candidates
 * (ATTNGAN_CUDNN_AUTOTUNE=1, read once) rather than take cuDNN's heuristic choice;
 * cu_conv_set_autotune overrides it for plans made afterwards (tests: clear the cache first). */
void cu_conv_cache_clear(void);
size_t cu_conv_cache_entries(void);
int cu_conv_autotune(void);
void cu_conv_set_autotune(int on);

/* Aborts with file:line and the CUDA message when a CUDA runtime call failed. */
void cu_check(int err, const char *what, const char *file, int line);
#define CU_CHECK(call) cu_check((int)(call), #call, __FILE__, __LINE__)

#ifdef __cplusplus
}
#endif

#endif
