/* dnnl_util.h: what the ops that run on oneDNN (libdnnl 2.6, C API) share: the CPU engine, a
 * stream and a workspace per thread, primitive creation with a user-managed scratchpad, execution
 * over raw pointers, and a thread-safe cache of primitives keyed by bytes.
 *
 * Threads. oneDNN primitives are immutable once created and may run at the same time from
 * several threads, each on its own stream with its own scratchpad (the library-managed scratchpad
 * would tie a primitive to the thread that created it, so every primitive here is created with
 * dnnl_scratchpad_mode_user and gets its scratchpad from the calling thread's workspace). The
 * build's oneDNN uses the OpenMP runtime: a primitive runs on omp_get_max_threads() threads of the
 * caller, the same pool as our own loops, and is specialised for the thread count it was created
 * with, so cache keys include that count (dnnl_util_threads()).
 */
#ifndef ATTNGAN_OPS_DNNL_UTIL_H
#define ATTNGAN_OPS_DNNL_UTIL_H

#include <dnnl.h>

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* The process's CPU engine, created on first use; NULL if oneDNN cannot create one. */
dnnl_engine_t dnnl_util_engine(void);
/* This thread's stream on the engine (created on first use, destroyed when the thread exits);
 * NULL on failure. */
dnnl_stream_t dnnl_util_stream(void);
/* This thread's workspace: at least `bytes`, 64-byte aligned, contents not kept between calls
 * (it grows by reallocation). Freed when the thread exits, or by dnnl_util_release_workspace.
 * Aborts when out of memory. */
void *dnnl_util_workspace(size_t bytes);
void dnnl_util_release_workspace(void);
/* The thread count a primitive created now would be specialised for (omp_get_max_threads()). */
int dnnl_util_threads(void);

/* A primitive and the scratchpad bytes it needs. */
typedef struct DnnlPrim {
    dnnl_primitive_t prim;
    size_t scratch;
} DnnlPrim;

/* An attribute with the user scratchpad mode (and, if sum, a sum post-op: dst += result).
 * Returns NULL on failure; the caller destroys it. */
dnnl_primitive_attr_t dnnl_util_attr(int sum);
/* Creates the primitive of pd into *p (scratch size queried); destroys pd. Returns 0 on success. */
int dnnl_util_prim_from_pd(DnnlPrim *p, dnnl_primitive_desc_t pd);
/* A reorder from one layout to another (dst = src, or dst += src with accumulate). Returns 0 on
 * success; p->prim is NULL on failure. */
int dnnl_util_reorder(DnnlPrim *p, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, int accumulate);
void dnnl_util_prim_destroy(DnnlPrim *p);

/* A plain f32 descriptor of ndims dims in the given layout tag (dnnl_format_tag_any lets the
 * primitive choose). Returns 0 on success. */
int dnnl_util_md(dnnl_memory_desc_t *md, int ndims, const int64_t *dims, dnnl_format_tag_t tag);
/* The same with another data type (dnnl_bf16 for the bf16 convolutions). */
int dnnl_util_md_dt(dnnl_memory_desc_t *md, int ndims, const int64_t *dims, dnnl_format_tag_t tag, dnnl_data_type_t dt);

/* One argument of an execution: the argument index (DNNL_ARG_*), its layout and its memory. */
typedef struct DnnlArg {
    int arg;
    const dnnl_memory_desc_t *md;
    const void *ptr;
} DnnlArg;

/* Runs p on this thread's stream with the given arguments and, if p needs one, `scratchpad`
 * (at least p->scratch bytes), then waits. Returns 0 on success. */
int dnnl_util_exec(const DnnlPrim *p, int nargs, const DnnlArg *args, void *scratchpad);

/* ---- a thread-safe cache: key bytes -> a value made once by a create function.
 * Declare one per op family as `static DnnlCache cache = DNNL_CACHE_INIT;`. Values live as long as
 * the process (or until dnnl_cache_clear). A create function may return NULL (creation failed):
 * that answer is cached too, so a failing shape falls back at once the next time. */
#define DNNL_CACHE_BUCKETS 1024
typedef struct DnnlCacheEntry DnnlCacheEntry;
typedef struct DnnlCache {
    pthread_mutex_t lock;
    DnnlCacheEntry *bucket[DNNL_CACHE_BUCKETS];
    int64_t entries;
} DnnlCache;
#define DNNL_CACHE_INIT {PTHREAD_MUTEX_INITIALIZER, {0}, 0}

typedef void *(*DnnlCreateFn)(const void *key, void *arg);
/* The value for key (key_len bytes, compared bytewise: zero the key struct's padding), made by
 * create(key, arg) under the cache's lock on a miss. */
void *dnnl_cache_get(DnnlCache *c, const void *key, size_t key_len, DnnlCreateFn create, void *arg);
/* Destroys every value with destroy (skipping NULL ones) and empties the cache. Only when no other
 * thread uses it. */
void dnnl_cache_clear(DnnlCache *c, void (*destroy)(void *value));
int64_t dnnl_cache_size(DnnlCache *c);

#endif
