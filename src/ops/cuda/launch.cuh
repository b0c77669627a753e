/* launch.cuh: what every element-wise kernel file of the CUDA backend shares: the block size, a
 * grid-stride loop and a launch on the backend's stream with the error check. */
#ifndef ATTNGAN_CUDA_LAUNCH_CUH
#define ATTNGAN_CUDA_LAUNCH_CUH

#include "cuda_rt.h"

#include <cuda_runtime.h>

#define THREADS 256

static inline unsigned blocks_for(int64_t n) {
    int64_t b = (n + THREADS - 1) / THREADS;
    return (unsigned)(b < 65535 * 16 ? (b > 0 ? b : 1) : 65535 * 16);
}
#define GRID_STRIDE(i, n) for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)
#define LAUNCH(kernel, n, ...)                                                                          \
    do {                                                                                                \
        if ((n) > 0) kernel<<<blocks_for(n), THREADS, 0, (cudaStream_t)cu_stream()>>>(__VA_ARGS__);     \
        CU_CHECK(cudaGetLastError());                                                                   \
    } while (0)

/* Block-wide sum of a value held by every thread (blockDim.x == THREADS, red: THREADS slots of
 * shared memory); every thread gets the result. */
template <typename T> __device__ static T block_sum(T v, T *red) {
    red[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
        __syncthreads();
    }
    T r = red[0];
    __syncthreads();
    return r;
}

#endif
