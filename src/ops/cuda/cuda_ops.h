/* cuda_ops.h: the CUDA twins of the CPU kernels of src/ops.
 *
 * Each twin is declared beside its CPU kernel, at the end of the family's header
 * (src/ops/<family>.h), with the CPU kernel's signature and contract and a `_cuda` suffix: every
 * float pointer is device memory (cu_alloc) unless its comment says host, outputs first, backward
 * adds (+=) into the gradients it is given and skips NULL ones. Twins run on the backend's stream
 * (cu_stream) and return without synchronising. tests/cuda/test_cuda_<family>.c checks each
 * against its CPU kernel on random inputs and states the relative error per op. This header
 * gathers them for the .cu files (C linkage from C++).
 */
#ifndef ATTNGAN_CUDA_OPS_H
#define ATTNGAN_CUDA_OPS_H

#ifdef __cplusplus
extern "C" {
#endif

#include "../ops.h"

#ifdef __cplusplus
}
#endif

#endif
