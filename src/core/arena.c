/* arena.c: chunked bump allocator; see arena.h. */
#include "arena.h"
#include "error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 64

struct ArenaChunk {
    ArenaChunk *prev;
    size_t size, used;
    unsigned char *mem;
};

static ArenaChunk *chunk_new(size_t size, ArenaChunk *prev) {
    ArenaChunk *c = xmalloc(sizeof *c);
    c->prev = prev;
    c->size = size;
    c->used = 0;
    c->mem = aligned_alloc(ARENA_ALIGN, (size + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN);
    if (!c->mem) FAIL("out of memory: arena chunk of %zu bytes", size);
    return c;
}

void arena_init(Arena *a, size_t initial_bytes) {
    memset(a, 0, sizeof *a);
    if (initial_bytes < (1u << 20)) initial_bytes = 1u << 20;
    a->head = chunk_new(initial_bytes, NULL);
    a->capacity = initial_bytes;
    a->n_chunks = 1;
}

void *arena_alloc(Arena *a, size_t bytes) {
    size_t need = (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    if (need == 0) need = ARENA_ALIGN;
    if (!a->head) arena_init(a, need);
    ArenaChunk *c = a->head;
    if (c->used + need > c->size) {
        size_t sz = a->capacity > need ? a->capacity : need; /* geometric growth */
        c = chunk_new(sz, c);
        a->head = c;
        a->capacity += sz;
        a->n_chunks++;
    }
    void *p = c->mem + c->used;
    c->used += need;
    a->used_total += need;
    if (a->used_total > a->high_water) a->high_water = a->used_total;
    return p;
}

void *arena_calloc(Arena *a, size_t bytes) {
    void *p = arena_alloc(a, bytes);
    memset(p, 0, bytes);
    return p;
}

void arena_reset(Arena *a) {
    if (!a->head) return;
    if (a->head->prev) { /* several chunks: replace them by one of the high-water size */
        size_t hw = a->high_water;
        arena_free(a);
        a->head = chunk_new(hw, NULL);
        a->capacity = hw;
        a->high_water = hw;
        a->n_chunks = 1;
    }
    a->head->used = 0;
    a->used_total = 0;
}

void arena_free(Arena *a) {
    ArenaChunk *c = a->head;
    while (c) {
        ArenaChunk *p = c->prev;
        free(c->mem);
        free(c);
        c = p;
    }
    a->head = NULL;
    a->capacity = a->used_total = 0;
    a->n_chunks = 0;
}
