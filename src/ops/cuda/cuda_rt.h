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

void cu_upload(void *dst, const void *src, size_t bytes);   /* host -> device, on the stream, then synchronised */
void cu_download(void *dst, const void *src, size_t bytes); /* device -> host, synchronised */
void cu_copy(void *dst, const void *src, size_t bytes);     /* device -> device, async on the stream */
void cu_memset0(void *dst, size_t bytes);                   /* async on the stream */
void cu_sync(void);

/* The stream every kernel of the backend runs on, and the library handles bound to it
 * (void * so that C callers need no CUDA headers). */
void *cu_stream(void);
void *cu_cublas(void);
void *cu_cudnn(void);

/* Aborts with file:line and the CUDA message when a CUDA runtime call failed. */
void cu_check(int err, const char *what, const char *file, int line);
#define CU_CHECK(call) cu_check((int)(call), #call, __FILE__, __LINE__)

#ifdef __cplusplus
}
#endif

#endif
