/* devpool.c: the caching device allocator; see devpool.h. */
#include "devpool.h"
#include "error.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct DevPoolBlock {
    void *p;
    size_t size;
    int used;
    int next_free; /* index + 1 of the next free block of the same size; 0: none */
};

size_t devpool_round(size_t b) {
    if (b == 0) b = 1;
    if (b < ((size_t)1 << 20)) return (b + 511) & ~(size_t)511;
    return (b + ((size_t)2 << 20) - 1) & ~(((size_t)2 << 20) - 1);
}

static size_t hash_word(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

static pthread_mutex_t *mu_of(DevPool *p) {
    static pthread_mutex_t init_mu = PTHREAD_MUTEX_INITIALIZER;
    if (!p->mu) {
        pthread_mutex_lock(&init_mu);
        if (!p->mu) {
            pthread_mutex_t *m = xmalloc(sizeof *m);
            pthread_mutex_init(m, NULL);
            p->mu = m;
        }
        pthread_mutex_unlock(&init_mu);
    }
    return p->mu;
}

/* ---- the address hash: block index by its start address */
static void ptr_insert(DevPool *p, int idx);
static void ptr_grow(DevPool *p) {
    int old_cap = p->cap_ptr, *old = p->by_ptr;
    p->cap_ptr = old_cap ? 2 * old_cap : 1024;
    p->by_ptr = xcalloc((size_t)p->cap_ptr, sizeof(int));
    for (int i = 0; i < old_cap; i++)
        if (old[i]) ptr_insert(p, old[i] - 1);
    free(old);
}
static void ptr_insert(DevPool *p, int idx) {
    if (2 * (p->n_blocks + 1) > p->cap_ptr) ptr_grow(p); /* load factor at most 1/2 */
    size_t m = (size_t)p->cap_ptr - 1, h = hash_word((uint64_t)(uintptr_t)p->blocks[idx].p) & m;
    while (p->by_ptr[h]) h = (h + 1) & m;
    p->by_ptr[h] = idx + 1;
}
/* slot of ptr in by_ptr, or -1 */
static long ptr_find(const DevPool *p, const void *ptr) {
    if (!p->cap_ptr) return -1;
    size_t m = (size_t)p->cap_ptr - 1, h = hash_word((uint64_t)(uintptr_t)ptr) & m;
    while (p->by_ptr[h]) {
        if (p->blocks[p->by_ptr[h] - 1].p == ptr) return (long)h;
        h = (h + 1) & m;
    }
    return -1;
}
/* ---- the size hash: the free list of each rounded size */
static int size_slot(DevPool *p, size_t size, int create);
static void size_grow(DevPool *p) {
    int old_cap = p->cap_size, *old_head = p->free_head;
    size_t *old_size = p->slot_size;
    p->cap_size = old_cap ? 2 * old_cap : 256;
    p->free_head = xcalloc((size_t)p->cap_size, sizeof(int));
    p->slot_size = xcalloc((size_t)p->cap_size, sizeof(size_t));
    p->n_slots = 0;
    for (int i = 0; i < old_cap; i++)
        if (old_size[i]) {
            int s = size_slot(p, old_size[i], 1);
            p->free_head[s] = old_head[i];
        }
    free(old_head);
    free(old_size);
}
static int size_slot(DevPool *p, size_t size, int create) {
    if (create && 2 * (p->n_slots + 1) > p->cap_size) size_grow(p);
    if (!p->cap_size) return -1;
    size_t m = (size_t)p->cap_size - 1, h = hash_word(size) & m;
    while (p->slot_size[h]) {
        if (p->slot_size[h] == size) return (int)h;
        h = (h + 1) & m;
    }
    if (!create) return -1;
    p->slot_size[h] = size;
    p->n_slots++;
    return (int)h;
}

static void note_live(DevPool *p, size_t size) {
    p->st.live += size;
    if (p->st.live > p->st.peak_live) p->st.peak_live = p->st.live;
}

/* raw-frees every free block and forgets it; caller holds the lock */
static void release_locked(DevPool *p) {
    int n = 0;
    for (int i = 0; i < p->n_blocks; i++) {
        DevPoolBlock b = p->blocks[i];
        if (!b.used) {
            p->raw_free(b.p, b.size);
            p->st.cached -= b.size;
            continue;
        }
        b.next_free = 0;
        p->blocks[n++] = b;
    }
    p->n_blocks = n;
    /* rebuild both hashes over the surviving (live) blocks */
    if (p->cap_ptr) memset(p->by_ptr, 0, (size_t)p->cap_ptr * sizeof(int));
    for (int i = 0; i < n; i++) ptr_insert(p, i);
    if (p->cap_size) memset(p->free_head, 0, (size_t)p->cap_size * sizeof(int));
}

void *devpool_alloc(DevPool *p, size_t bytes) {
    size_t size = devpool_round(bytes);
    pthread_mutex_t *mu = mu_of(p);
    pthread_mutex_lock(mu);
    p->st.n_alloc++;
    int s = size_slot(p, size, 0);
    if (s >= 0 && p->free_head[s]) { /* a cache hit */
        int idx = p->free_head[s] - 1;
        DevPoolBlock *b = &p->blocks[idx];
        p->free_head[s] = b->next_free;
        b->next_free = 0;
        b->used = 1;
        p->st.cached -= size;
        note_live(p, size);
        pthread_mutex_unlock(mu);
        return b->p;
    }
    void *ptr = p->raw_alloc(size);
    if (!ptr && p->st.cached) { /* give the cache back and try once more */
        release_locked(p);
        ptr = p->raw_alloc(size);
    }
    if (!ptr) {
        size_t live = p->st.live;
        pthread_mutex_unlock(mu);
        FAIL("%s: out of device memory: a block of %zu bytes, with %.1f MiB live", p->name, size, live / 1048576.0);
    }
    if (p->n_blocks == p->cap_blocks) {
        p->cap_blocks = p->cap_blocks ? 2 * p->cap_blocks : 256;
        p->blocks = xrealloc(p->blocks, (size_t)p->cap_blocks * sizeof *p->blocks);
    }
    p->blocks[p->n_blocks] = (DevPoolBlock){ptr, size, 1, 0};
    ptr_insert(p, p->n_blocks);
    p->n_blocks++;
    p->st.n_raw++;
    note_live(p, size);
    pthread_mutex_unlock(mu);
    return ptr;
}

void devpool_free(DevPool *p, void *ptr) {
    if (!ptr) return;
    pthread_mutex_t *mu = mu_of(p);
    pthread_mutex_lock(mu);
    long h = ptr_find(p, ptr);
    if (h < 0) {
        pthread_mutex_unlock(mu);
        FAIL("%s: free of %p, which is not a block of this device's pool", p->name, ptr);
    }
    DevPoolBlock *b = &p->blocks[p->by_ptr[h] - 1];
    if (!b->used) {
        pthread_mutex_unlock(mu);
        FAIL("%s: double free of the device block %p (%zu bytes)", p->name, ptr, b->size);
    }
    b->used = 0;
    int s = size_slot(p, b->size, 1);
    /* (size_slot may rehash the size slots, never the blocks: b stays valid) */
    b->next_free = p->free_head[s];
    p->free_head[s] = (int)(b - p->blocks) + 1;
    p->st.live -= b->size;
    p->st.cached += b->size;
    pthread_mutex_unlock(mu);
}

size_t devpool_size(DevPool *p, const void *ptr) {
    pthread_mutex_t *mu = mu_of(p);
    pthread_mutex_lock(mu);
    long h = ptr_find(p, ptr);
    size_t size = h >= 0 && p->blocks[p->by_ptr[h] - 1].used ? p->blocks[p->by_ptr[h] - 1].size : 0;
    pthread_mutex_unlock(mu);
    CHECK(size > 0, "%s: %p is not a live block of this device's pool", p->name, ptr);
    return size;
}

void devpool_release_cache(DevPool *p) {
    pthread_mutex_t *mu = mu_of(p);
    pthread_mutex_lock(mu);
    if (p->n_blocks) release_locked(p);
    pthread_mutex_unlock(mu);
}

DevPoolStats devpool_stats(DevPool *p) {
    pthread_mutex_t *mu = mu_of(p);
    pthread_mutex_lock(mu);
    DevPoolStats s = p->st;
    pthread_mutex_unlock(mu);
    return s;
}

void devpool_destroy(DevPool *p) {
    devpool_release_cache(p);
    CHECK(p->st.live == 0, "%s: destroyed with %zu bytes live", p->name, p->st.live);
    free(p->blocks);
    free(p->by_ptr);
    free(p->free_head);
    free(p->slot_size);
    if (p->mu) {
        pthread_mutex_destroy(p->mu);
        free(p->mu);
    }
    const char *name = p->name;
    void *(*ra)(size_t) = p->raw_alloc;
    void (*rf)(void *, size_t) = p->raw_free;
    memset(p, 0, sizeof *p);
    p->name = name, p->raw_alloc = ra, p->raw_free = rf;
}

void devpool_reset_peak(DevPool *p) {
    pthread_mutex_t *mu = mu_of(p);
    pthread_mutex_lock(mu);
    p->st.peak_live = p->st.live;
    pthread_mutex_unlock(mu);
}
