/* devpool.h: the caching allocator of a device's memory (the CUDA device and the host-memory
 * "device" of device.h share it, so `make test` exercises the code the GPU runs).
 *
 * A device allocation (cudaMalloc, cudaFree) synchronises the device and costs far more than a
 * kernel, so a training loop must not make one per tensor. The pool asks its raw allocator for a
 * block only when no cached block of the same rounded size is free, and a free puts the block back
 * in its size's cache. Sizes round up to 512 bytes below 1 MiB and to 2 MiB above; a training step
 * repeats its shapes exactly, so after the first step every request is a cache hit (PyTorch's
 * CUDA caching allocator does the same, with block splitting we do not need).
 *
 * Lookups are O(1): a hash of live blocks by address, a hash of free lists by size. One mutex.
 * When the raw allocator fails, the pool gives its whole cache back and tries once more; then it
 * FAILs naming the request and the live bytes. A free of an unknown or already free pointer FAILs.
 */
#ifndef ATTNGAN_DEVPOOL_H
#define ATTNGAN_DEVPOOL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct DevPoolStats {
    size_t live;       /* bytes in blocks handed out now (rounded sizes) */
    size_t peak_live;  /* max of live */
    size_t cached;     /* bytes in free blocks kept for reuse */
    size_t n_raw;      /* raw allocations so far */
    size_t n_alloc;    /* devpool_alloc calls so far */
} DevPoolStats;

typedef struct DevPoolBlock DevPoolBlock;
typedef struct DevPool {
    const char *name;                   /* for messages: "cuda", "hostdev" */
    void *(*raw_alloc)(size_t bytes);   /* NULL when out of memory */
    void (*raw_free)(void *p, size_t bytes);
    /* private */
    void *mu;                           /* pthread_mutex_t, lazily created */
    DevPoolBlock *blocks;               /* every block ever made */
    int n_blocks, cap_blocks;
    int *by_ptr, cap_ptr;               /* open addressing: index + 1 into blocks, 0 empty */
    int *free_head, cap_size;           /* per size slot: head of its free list (block index + 1) */
    size_t *slot_size;                  /* the rounded size of each size slot (0: empty slot) */
    int n_slots;
    DevPoolStats st;
} DevPool;

/* The rounded size a request of `bytes` takes. */
size_t devpool_round(size_t bytes);
void *devpool_alloc(DevPool *p, size_t bytes);
void devpool_free(DevPool *p, void *ptr);   /* NULL is a no-op */
/* The rounded size of a live block (FAILs for an unknown pointer). */
size_t devpool_size(DevPool *p, const void *ptr);
/* Gives every cached (free) block back to the raw allocator. */
void devpool_release_cache(DevPool *p);
DevPoolStats devpool_stats(DevPool *p);
/* Gives every block back (none may be live) and frees the pool's own memory. */
void devpool_destroy(DevPool *p);
/* peak_live := live (for a benchmark that measures one phase) */
void devpool_reset_peak(DevPool *p);

#ifdef __cplusplus
}
#endif

#endif
