/* mempool.c: the process-wide tensor allocator; see mempool.h. */
#include "mempool.h"
#include "error.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define POOL_ALIGN 64
#define POOL_HDR 64
#define POOL_MAGIC 0x706f6f6cu /* "pool" */
#define POOL_FREED 0x66726565u /* "free" */

#if defined(__SANITIZE_ADDRESS__)
#define POOL_DEFAULT_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_DEFAULT_MALLOC 1
#endif
#endif
#ifndef POOL_DEFAULT_MALLOC
#define POOL_DEFAULT_MALLOC 0
#endif

typedef struct Header {
    size_t size;    /* whole block, header included, a multiple of POOL_ALIGN */
    uint32_t magic; /* POOL_MAGIC while handed out */
} Header;

typedef struct Extent {
    size_t off, size;
} Extent;

static struct {
    pthread_mutex_t mu;
    int malloc_mode;
    unsigned char *base;
    size_t reserve, top;
    Extent *free;
    int n_free, cap_free;
    MempoolStats st;
} P = {.mu = PTHREAD_MUTEX_INITIALIZER};
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_init(void) {
    const char *env = getenv("ATTNGAN_POOL");
    P.malloc_mode = POOL_DEFAULT_MALLOC;
    if (env && *env) {
        if (!strcmp(env, "malloc")) P.malloc_mode = 1;
        else if (!strcmp(env, "region")) P.malloc_mode = 0;
        else FAIL("ATTNGAN_POOL=%s: expected 'malloc' or 'region'", env);
    }
    if (P.malloc_mode) return;
    /* 256 GiB of address space, halved until the kernel agrees; no page is touched here */
    for (size_t r = (size_t)1 << 38; r >= ((size_t)1 << 32); r >>= 1) {
        void *m = mmap(NULL, r, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m != MAP_FAILED) {
            P.base = m;
            P.reserve = r;
            return;
        }
    }
    P.malloc_mode = 1; /* no large reservation possible (a strict overcommit policy): plain blocks */
}

static void stats_add(size_t bytes) {
    P.st.live += bytes;
    if (P.st.live > P.st.peak_live) P.st.peak_live = P.st.live;
    if (P.top > P.st.peak_top) P.st.peak_top = P.top;
}

/* Index of the first free extent with off >= key. */
static int lower_bound(size_t key) {
    int lo = 0, hi = P.n_free;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (P.free[mid].off < key) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static void remove_extent(int i) {
    memmove(P.free + i, P.free + i + 1, (size_t)(P.n_free - i - 1) * sizeof(Extent));
    P.n_free--;
}

static size_t take(size_t need) {
    int best = -1;
    for (int i = 0; i < P.n_free; i++)
        if (P.free[i].size >= need && (best < 0 || P.free[i].size < P.free[best].size)) {
            best = i;
            if (P.free[i].size == need) break;
        }
    if (best >= 0) {
        size_t off = P.free[best].off;
        if (P.free[best].size == need) remove_extent(best);
        else {
            P.free[best].off += need;
            P.free[best].size -= need;
        }
        return off;
    }
    if (need > P.reserve - P.top)
        FAIL("out of memory: the tensor pool cannot hand out %zu more bytes (%zu of %zu reserved in use, %zu live)", need,
             P.top, P.reserve, P.st.live);
    size_t off = P.top;
    P.top += need;
    return off;
}

static void give_back(size_t off, size_t size) {
    int i = lower_bound(off);
    int merge_prev = i > 0 && P.free[i - 1].off + P.free[i - 1].size == off;
    int merge_next = i < P.n_free && off + size == P.free[i].off;
    if (merge_prev && merge_next) {
        P.free[i - 1].size += size + P.free[i].size;
        remove_extent(i);
        i--;
    } else if (merge_prev) {
        P.free[i - 1].size += size;
        i--;
    } else if (merge_next) {
        P.free[i].off = off;
        P.free[i].size += size;
    } else {
        if (P.n_free == P.cap_free) {
            P.cap_free = P.cap_free ? 2 * P.cap_free : 256;
            P.free = xrealloc(P.free, (size_t)P.cap_free * sizeof(Extent));
        }
        memmove(P.free + i + 1, P.free + i, (size_t)(P.n_free - i) * sizeof(Extent));
        P.free[i] = (Extent){off, size};
        P.n_free++;
    }
    if (P.free[i].off + P.free[i].size == P.top) { /* the hole reaches the top: lower it */
        P.top = P.free[i].off;
        remove_extent(i);
    }
}

void *mempool_alloc(size_t bytes) {
    pthread_once(&pool_once, pool_init);
    size_t need = POOL_HDR + (bytes + POOL_ALIGN - 1) / POOL_ALIGN * POOL_ALIGN;
    CHECK(need > bytes, "mempool_alloc: %zu bytes is too large", bytes);
    Header *h;
    pthread_mutex_lock(&P.mu);
    if (P.malloc_mode) {
        h = aligned_alloc(POOL_ALIGN, need);
        if (!h) {
            pthread_mutex_unlock(&P.mu);
            FAIL("out of memory: %zu bytes for a tensor", bytes);
        }
    } else {
        h = (Header *)(P.base + take(need));
    }
    h->size = need;
    h->magic = POOL_MAGIC;
    stats_add(need);
    P.st.n_alloc++;
    if (P.malloc_mode) {
        P.st.top = P.st.live;
        if (P.st.live > P.st.peak_top) P.st.peak_top = P.st.live;
    }
    pthread_mutex_unlock(&P.mu);
    return (unsigned char *)h + POOL_HDR;
}

void *mempool_calloc(size_t bytes) {
    void *p = mempool_alloc(bytes);
    memset(p, 0, bytes);
    return p;
}

void mempool_free(void *p) {
    if (!p) return;
    Header *h = (Header *)((unsigned char *)p - POOL_HDR);
    pthread_mutex_lock(&P.mu);
    if (h->magic != POOL_MAGIC) {
        uint32_t m = h->magic;
        pthread_mutex_unlock(&P.mu);
        FAIL("mempool_free(%p): %s", p, m == POOL_FREED ? "double free" : "not a pool block");
    }
    h->magic = POOL_FREED;
    size_t size = h->size;
    P.st.live -= size;
    if (P.malloc_mode) free(h);
    else give_back((size_t)((unsigned char *)h - P.base), size);
    pthread_mutex_unlock(&P.mu);
}

void mempool_shrink(void *p, size_t bytes) {
    if (!p) return;
    Header *h = (Header *)((unsigned char *)p - POOL_HDR);
    size_t need = POOL_HDR + (bytes + POOL_ALIGN - 1) / POOL_ALIGN * POOL_ALIGN;
    pthread_mutex_lock(&P.mu);
    CHECK(h->magic == POOL_MAGIC, "mempool_shrink(%p): not a live pool block", p);
    if (!P.malloc_mode && need < h->size) {
        give_back((size_t)((unsigned char *)h - P.base) + need, h->size - need);
        P.st.live -= h->size - need;
        h->size = need;
    }
    pthread_mutex_unlock(&P.mu);
}

int mempool_grow(void *p, size_t bytes) {
    if (!p) return 0;
    Header *h = (Header *)((unsigned char *)p - POOL_HDR);
    size_t need = POOL_HDR + (bytes + POOL_ALIGN - 1) / POOL_ALIGN * POOL_ALIGN;
    pthread_mutex_lock(&P.mu);
    CHECK(h->magic == POOL_MAGIC, "mempool_grow(%p): not a live pool block", p);
    int ok = 0;
    if (need <= h->size) ok = 1;
    else if (!P.malloc_mode) {
        size_t end = (size_t)((unsigned char *)h - P.base) + h->size, extra = need - h->size;
        if (end == P.top && extra <= P.reserve - P.top) { /* the last block: the top moves */
            P.top += extra;
            ok = 1;
        } else {
            int i = lower_bound(end);
            if (i < P.n_free && P.free[i].off == end && P.free[i].size >= extra) { /* a hole right after it */
                if (P.free[i].size == extra) remove_extent(i);
                else {
                    P.free[i].off += extra;
                    P.free[i].size -= extra;
                }
                ok = 1;
            }
        }
        if (ok) {
            h->size = need;
            stats_add(extra);
        }
    }
    pthread_mutex_unlock(&P.mu);
    return ok;
}

MempoolStats mempool_stats(void) {
    pthread_once(&pool_once, pool_init);
    pthread_mutex_lock(&P.mu);
    MempoolStats s = P.st;
    if (!P.malloc_mode) s.top = P.top;
    s.n_free_extents = P.n_free;
    s.malloc_mode = P.malloc_mode;
    pthread_mutex_unlock(&P.mu);
    return s;
}
