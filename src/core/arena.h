/* arena.h: the per-step bump allocator for activations, gradients and saved values.
 *
 * Allocations are 64-byte aligned and live until arena_reset(). The first step may grow the
 * arena chunk by chunk; reset folds all chunks into one block of the high-water size, so later
 * steps of the same shape never call malloc.
 */
#ifndef ATTNGAN_ARENA_H
#define ATTNGAN_ARENA_H

#include <stddef.h>

typedef struct ArenaChunk ArenaChunk;

typedef struct Arena {
    ArenaChunk *head;   /* current chunk (newest) */
    size_t used_total;  /* bytes handed out since the last reset, over all chunks */
    size_t high_water;  /* max used_total seen */
    size_t capacity;    /* bytes owned over all chunks */
    int n_chunks;
} Arena;

void arena_init(Arena *a, size_t initial_bytes);
void *arena_alloc(Arena *a, size_t bytes);        /* uninitialised */
void *arena_calloc(Arena *a, size_t bytes);       /* zeroed */
void arena_reset(Arena *a);
void arena_free(Arena *a);

#endif
