/* mempool.h: the process-wide allocator for tensor data and gradients.
 *
 * Tapes take every activation and gradient buffer from here and give it back as soon as it is
 * dead (tape_release, and the backward pass; see tape.h), so peak memory is the peak of live
 * tensors, not their sum over a step.
 *
 * Design (a caching allocator, like PyTorch's CPU/CUDA ones, reduced to what we need):
 *  - One large virtual reservation (mmap, MAP_NORESERVE): pages become resident only when first
 *    touched and stay resident after a free, so a steady training loop never page-faults and
 *    never calls malloc. The resident size is the highest offset ever handed out.
 *  - Best-fit over an address-ordered list of free extents, coalesced on free; a free extent
 *    touching the top lowers the top. Blocks are 64-byte aligned with a 64-byte header (size,
 *    magic), so a bad or double free is caught.
 *  - Two arenas in the reservation: blocks up to 256 KiB apart from larger ones. Small blocks that
 *    outlive a stage (saved statistics, node contexts, optimizer scalars) would otherwise sit
 *    between activations, pin the top and split the holes a large tensor needs: damsm_step B48
 *    went from 551 to 442 MiB resident (docs/PERFORMANCE.md).
 *  - The large-block arena asks for transparent huge pages (madvise; ATTNGAN_POOL_HUGEPAGES=0
 *    does not): gan_step and damsm_step B8 2-8% faster here, a few MiB more resident.
 *  - ATTNGAN_POOL_TRACE=FILE writes every allocation, free, shrink and grow with its arena,
 *    offset and the top, to study fragmentation offline.
 *  - One mutex: a step makes a few thousand allocations, each far cheaper than the op using it.
 *  - ATTNGAN_POOL=malloc (and every AddressSanitizer build) gives each block its own
 *    aligned_alloc instead, so ASan sees every use after free.
 */
#ifndef ATTNGAN_MEMPOOL_H
#define ATTNGAN_MEMPOOL_H

#include <stddef.h>

void *mempool_alloc(size_t bytes);  /* uninitialised, 64-byte aligned; never NULL (FAIL on exhaustion) */
void *mempool_calloc(size_t bytes); /* zeroed */
void mempool_free(void *p);         /* NULL is a no-op */
/* Gives the tail of a block back, keeping its first `bytes` (an op that wrote a smaller result
 * over its input); with ATTNGAN_POOL=malloc the block keeps its size. */
void mempool_shrink(void *p, size_t bytes);
/* Extends a block in place to `bytes` when the space after it is free (it is the last block, or
 * a hole follows it): 1, else 0 and nothing changes (always 0 with ATTNGAN_POOL=malloc). */
int mempool_grow(void *p, size_t bytes);
/* 1 when a free hole below the top can hold `bytes`, so allocating them raises no resident memory
 * (always 0 with ATTNGAN_POOL=malloc). */
int mempool_has_hole(size_t bytes);

typedef struct MempoolStats {
    size_t live;       /* bytes in blocks handed out now (headers included) */
    size_t peak_live;  /* max of live */
    size_t top;        /* bytes of the reservation in use now (live + holes) */
    size_t peak_top;   /* max of top: what the pool made resident */
    long n_alloc;      /* allocations so far */
    int n_free_extents;
    int malloc_mode;   /* 1: one aligned_alloc per block (ATTNGAN_POOL=malloc or ASan) */
} MempoolStats;
MempoolStats mempool_stats(void);

#endif
