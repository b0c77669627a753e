/* mempool.c: the process-wide tensor allocator; see mempool.h. */
#include "mempool.h"
#include "error.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
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

/* One address range handing out blocks (offsets from base). */
typedef struct Arena {
    unsigned char *base;
    size_t reserve, top;
    Extent *free;
    int n_free, cap_free;
} Arena;

/* Blocks up to SMALL_MAX bytes (header included) come from arena 0, larger ones from arena 1:
 * long-lived small blocks (optimizer scalars, saved statistics, a node's context) would otherwise
 * land between large activations, pin the top and split the holes a large tensor needs. */
#define SMALL_MAX ((size_t)256 << 10)
#define SMALL_SHARE 16 /* arena 0 gets 1/16 of the reservation */

static struct {
    pthread_mutex_t mu;
    int malloc_mode;
    Arena a[2];
    MempoolStats st;
    FILE *trace;
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
    const char *tr = getenv("ATTNGAN_POOL_TRACE");
    if (tr && *tr) {
        P.trace = fopen(tr, "w");
        CHECK(P.trace != NULL, "ATTNGAN_POOL_TRACE=%s: cannot open it for writing", tr);
    }
    if (P.malloc_mode) return;
    /* 256 GiB of address space, halved until the kernel agrees; no page is touched here */
    for (size_t r = (size_t)1 << 38; r >= ((size_t)1 << 32); r >>= 1) {
        void *m = mmap(NULL, r, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m != MAP_FAILED) {
            size_t small = r / SMALL_SHARE;
            /* transparent huge pages for the large blocks (where the kernel's THP mode is madvise
             * or always): fewer TLB misses in the convolutions, gan_step and damsm_step B8 2-8% faster
             * in interleaved runs, for a few MiB more resident (docs/PERFORMANCE.md); ATTNGAN_POOL_HUGEPAGES=0 turns it off */
            const char *hp = getenv("ATTNGAN_POOL_HUGEPAGES");
            CHECK(!hp || !*hp || !strcmp(hp, "0") || !strcmp(hp, "1"), "ATTNGAN_POOL_HUGEPAGES=%s: expected 0 or 1", hp);
            if (!(hp && !strcmp(hp, "0"))) (void)madvise((unsigned char *)m + small, r - small, MADV_HUGEPAGE);
            P.a[0].base = m;
            P.a[0].reserve = small;
            P.a[1].base = (unsigned char *)m + small;
            P.a[1].reserve = r - small;
            return;
        }
    }
    P.malloc_mode = 1; /* no large reservation possible (a strict overcommit policy): plain blocks */
}

/* ATTNGAN_POOL_TRACE=FILE: one line per event, "<a|f|s|g> <arena> <offset> <bytes> <top>" (alloc,
 * free, shrink to, grow to), for studying fragmentation offline. */
static void trace(char ev, int ai, size_t off, size_t bytes) {
    if (P.trace) fprintf(P.trace, "%c %d %zu %zu %zu\n", ev, ai, off, bytes, P.a[ai].top);
}

static size_t tops(void) { return P.a[0].top + P.a[1].top; }

/* The arena holding h, and h's offset in it. */
static Arena *arena_of(const void *h, size_t *off) {
    for (int i = 0; i < 2; i++) {
        Arena *a = &P.a[i];
        if ((const unsigned char *)h >= a->base && (const unsigned char *)h < a->base + a->reserve) {
            *off = (size_t)((const unsigned char *)h - a->base);
            return a;
        }
    }
    FAIL("mempool: %p is not in the pool", h);
}

static void stats_add(size_t bytes) {
    P.st.live += bytes;
    if (P.st.live > P.st.peak_live) P.st.peak_live = P.st.live;
    if (tops() > P.st.peak_top) P.st.peak_top = tops();
}

/* Index of the first free extent with off >= key. */
static int lower_bound(const Arena *A, size_t key) {
    int lo = 0, hi = A->n_free;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (A->free[mid].off < key) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static void remove_extent(Arena *A, int i) {
    memmove(A->free + i, A->free + i + 1, (size_t)(A->n_free - i - 1) * sizeof(Extent));
    A->n_free--;
}

static size_t take(Arena *A, size_t need) {
    int best = -1;
    for (int i = 0; i < A->n_free; i++)
        if (A->free[i].size >= need && (best < 0 || A->free[i].size < A->free[best].size)) {
            best = i;
            if (A->free[i].size == need) break;
        }
    if (best >= 0) {
        size_t off = A->free[best].off;
        if (A->free[best].size == need) remove_extent(A, best);
        else {
            A->free[best].off += need;
            A->free[best].size -= need;
        }
        return off;
    }
    if (need > A->reserve - A->top)
        FAIL("out of memory: the tensor pool cannot hand out %zu more bytes (%zu of %zu reserved in use, %zu live)", need,
             A->top, A->reserve, P.st.live);
    size_t off = A->top;
    A->top += need;
    return off;
}

static void give_back(Arena *A, size_t off, size_t size) {
    int i = lower_bound(A, off);
    int merge_prev = i > 0 && A->free[i - 1].off + A->free[i - 1].size == off;
    int merge_next = i < A->n_free && off + size == A->free[i].off;
    if (merge_prev && merge_next) {
        A->free[i - 1].size += size + A->free[i].size;
        remove_extent(A, i);
        i--;
    } else if (merge_prev) {
        A->free[i - 1].size += size;
        i--;
    } else if (merge_next) {
        A->free[i].off = off;
        A->free[i].size += size;
    } else {
        if (A->n_free == A->cap_free) {
            A->cap_free = A->cap_free ? 2 * A->cap_free : 256;
            A->free = xrealloc(A->free, (size_t)A->cap_free * sizeof(Extent));
        }
        memmove(A->free + i + 1, A->free + i, (size_t)(A->n_free - i) * sizeof(Extent));
        A->free[i] = (Extent){off, size};
        A->n_free++;
    }
    if (A->free[i].off + A->free[i].size == A->top) { /* the hole reaches the top: lower it */
        A->top = A->free[i].off;
        remove_extent(A, i);
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
        int ai = need > SMALL_MAX;
        size_t off = take(&P.a[ai], need);
        h = (Header *)(P.a[ai].base + off);
        trace('a', ai, off, need);
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
    else {
        size_t off;
        Arena *A = arena_of(h, &off);
        trace('f', (int)(A - P.a), off, size);
        give_back(A, off, size);
    }
    pthread_mutex_unlock(&P.mu);
}

void mempool_shrink(void *p, size_t bytes) {
    if (!p) return;
    Header *h = (Header *)((unsigned char *)p - POOL_HDR);
    size_t need = POOL_HDR + (bytes + POOL_ALIGN - 1) / POOL_ALIGN * POOL_ALIGN;
    pthread_mutex_lock(&P.mu);
    CHECK(h->magic == POOL_MAGIC, "mempool_shrink(%p): not a live pool block", p);
    if (!P.malloc_mode && need < h->size) {
        size_t off;
        Arena *A = arena_of(h, &off);
        trace('s', (int)(A - P.a), off, need);
        give_back(A, off + need, h->size - need);
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
        size_t off;
        Arena *A = arena_of(h, &off);
        size_t end = off + h->size, extra = need - h->size;
        if (end == A->top && extra <= A->reserve - A->top) { /* the last block: the top moves */
            A->top += extra;
            ok = 1;
        } else {
            int i = lower_bound(A, end);
            if (i < A->n_free && A->free[i].off == end && A->free[i].size >= extra) { /* a hole right after it */
                if (A->free[i].size == extra) remove_extent(A, i);
                else {
                    A->free[i].off += extra;
                    A->free[i].size -= extra;
                }
                ok = 1;
            }
        }
        if (ok) {
            trace('g', (int)(A - P.a), off, need);
            h->size = need;
            stats_add(extra);
        }
    }
    pthread_mutex_unlock(&P.mu);
    return ok;
}

int mempool_has_hole(size_t bytes) {
    pthread_once(&pool_once, pool_init);
    size_t need = POOL_HDR + (bytes + POOL_ALIGN - 1) / POOL_ALIGN * POOL_ALIGN;
    int found = 0;
    pthread_mutex_lock(&P.mu);
    if (!P.malloc_mode) {
        const Arena *A = &P.a[need > SMALL_MAX];
        for (int i = 0; i < A->n_free && !found; i++) found = A->free[i].size >= need;
    }
    pthread_mutex_unlock(&P.mu);
    return found;
}

MempoolStats mempool_stats(void) {
    pthread_once(&pool_once, pool_init);
    pthread_mutex_lock(&P.mu);
    MempoolStats s = P.st;
    if (!P.malloc_mode) s.top = tops();
    s.n_free_extents = P.a[0].n_free + P.a[1].n_free;
    s.malloc_mode = P.malloc_mode;
    pthread_mutex_unlock(&P.mu);
    return s;
}
