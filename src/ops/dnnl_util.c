/* dnnl_util.c: the oneDNN engine, per-thread streams and workspaces, primitive helpers and the
 * primitive cache (see dnnl_util.h). */
#include "dnnl_util.h"
#include "../core/error.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- engine */

static dnnl_engine_t g_engine;
static pthread_once_t g_engine_once = PTHREAD_ONCE_INIT;

static void engine_create(void) {
    if (dnnl_engine_create(&g_engine, dnnl_cpu, 0) != dnnl_success) g_engine = NULL;
}

dnnl_engine_t dnnl_util_engine(void) {
    pthread_once(&g_engine_once, engine_create);
    return g_engine;
}

int dnnl_util_threads(void) { return omp_get_max_threads(); }

/* ---------------------------------------------------------------- per-thread state */

typedef struct ThreadState {
    dnnl_stream_t stream;
    void *buf;
    size_t cap;
} ThreadState;

static pthread_key_t g_tls_key;
static pthread_once_t g_tls_once = PTHREAD_ONCE_INIT;

static void thread_state_free(void *p) {
    ThreadState *t = p;
    if (!t) return;
    if (t->stream) dnnl_stream_destroy(t->stream);
    free(t->buf);
    free(t);
}

static void tls_create(void) { CHECK(pthread_key_create(&g_tls_key, thread_state_free) == 0, "dnnl_util: pthread_key_create failed"); }

static ThreadState *thread_state(void) {
    pthread_once(&g_tls_once, tls_create);
    ThreadState *t = pthread_getspecific(g_tls_key);
    if (!t) {
        t = xcalloc(1, sizeof *t);
        CHECK(pthread_setspecific(g_tls_key, t) == 0, "dnnl_util: pthread_setspecific failed");
    }
    return t;
}

dnnl_stream_t dnnl_util_stream(void) {
    ThreadState *t = thread_state();
    if (!t->stream) {
        dnnl_engine_t e = dnnl_util_engine();
        if (!e || dnnl_stream_create(&t->stream, e, dnnl_stream_default_flags) != dnnl_success) t->stream = NULL;
    }
    return t->stream;
}

void *dnnl_util_workspace(size_t bytes) {
    ThreadState *t = thread_state();
    if (bytes > t->cap) {
        free(t->buf);
        size_t cap = (bytes + 4095) & ~(size_t)4095;
        t->buf = aligned_alloc(64, cap);
        CHECK(t->buf != NULL, "dnnl_util: out of memory for a %zu-byte workspace", cap);
        t->cap = cap;
    }
    return t->buf;
}

void dnnl_util_release_workspace(void) {
    ThreadState *t = thread_state();
    free(t->buf);
    t->buf = NULL;
    t->cap = 0;
}

/* ---------------------------------------------------------------- primitives */

dnnl_primitive_attr_t dnnl_util_attr(int sum) {
    dnnl_primitive_attr_t attr = NULL;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
    if (dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) != dnnl_success) goto fail;
    if (sum) {
        dnnl_post_ops_t po = NULL;
        if (dnnl_post_ops_create(&po) != dnnl_success) goto fail;
        int ok = dnnl_post_ops_append_sum(po, 1.0f) == dnnl_success &&
                 dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;
        dnnl_post_ops_destroy(po);
        if (!ok) goto fail;
    }
    return attr;
fail:
    dnnl_primitive_attr_destroy(attr);
    return NULL;
}

int dnnl_util_prim_from_pd(DnnlPrim *p, dnnl_primitive_desc_t pd) {
    p->prim = NULL;
    p->scratch = 0;
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (smd) p->scratch = dnnl_memory_desc_get_size(smd);
    dnnl_status_t st = dnnl_primitive_create(&p->prim, pd);
    dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success) {
        p->prim = NULL;
        return -1;
    }
    return 0;
}

int dnnl_util_reorder(DnnlPrim *p, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, int accumulate) {
    p->prim = NULL;
    p->scratch = 0;
    dnnl_engine_t e = dnnl_util_engine();
    if (!e) return -1;
    dnnl_primitive_attr_t attr = dnnl_util_attr(accumulate);
    if (!attr) return -1;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_reorder_primitive_desc_create(&pd, from, e, to, e, attr);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) return -1;
    return dnnl_util_prim_from_pd(p, pd);
}

void dnnl_util_prim_destroy(DnnlPrim *p) {
    if (p->prim) dnnl_primitive_destroy(p->prim);
    p->prim = NULL;
}

int dnnl_util_md_dt(dnnl_memory_desc_t *md, int ndims, const int64_t *dims, dnnl_format_tag_t tag, dnnl_data_type_t dt) {
    dnnl_dims_t d;
    for (int i = 0; i < ndims; i++) d[i] = dims[i];
    return dnnl_memory_desc_init_by_tag(md, ndims, d, dt, tag) == dnnl_success ? 0 : -1;
}

int dnnl_util_md(dnnl_memory_desc_t *md, int ndims, const int64_t *dims, dnnl_format_tag_t tag) {
    return dnnl_util_md_dt(md, ndims, dims, tag, dnnl_f32);
}

#define MAX_ARGS 8

int dnnl_util_exec(const DnnlPrim *p, int nargs, const DnnlArg *args, void *scratchpad) {
    CHECK(nargs >= 0 && nargs < MAX_ARGS, "dnnl_util_exec: %d arguments", nargs);
    dnnl_engine_t e = dnnl_util_engine();
    dnnl_stream_t s = dnnl_util_stream();
    if (!e || !s || !p->prim) return -1;
    dnnl_exec_arg_t ea[MAX_ARGS];
    int n = 0, rc = -1;
    for (int i = 0; i < nargs; i++, n++) {
        ea[n].arg = args[i].arg;
        if (dnnl_memory_create(&ea[n].memory, args[i].md, e, (void *)args[i].ptr) != dnnl_success) goto done;
    }
    if (p->scratch) {
        dnnl_memory_desc_t smd;
        dnnl_dims_t bytes = {(dnnl_dim_t)p->scratch};
        ea[n].arg = DNNL_ARG_SCRATCHPAD;
        if (dnnl_memory_desc_init_by_tag(&smd, 1, bytes, dnnl_u8, dnnl_a) != dnnl_success ||
            dnnl_memory_create(&ea[n].memory, &smd, e, scratchpad) != dnnl_success)
            goto done;
        n++;
    }
    if (dnnl_primitive_execute(p->prim, s, n, ea) == dnnl_success && dnnl_stream_wait(s) == dnnl_success) rc = 0;
done:
    for (int i = 0; i < n; i++) dnnl_memory_destroy(ea[i].memory);
    return rc;
}

/* ---------------------------------------------------------------- cache */

struct DnnlCacheEntry {
    DnnlCacheEntry *next;
    size_t key_len;
    void *value;
    unsigned char key[];
};

static uint64_t hash_bytes(const void *key, size_t n) {
    const unsigned char *b = key;
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

void *dnnl_cache_get(DnnlCache *c, const void *key, size_t key_len, DnnlCreateFn create, void *arg) {
    uint64_t h = hash_bytes(key, key_len) % DNNL_CACHE_BUCKETS;
    pthread_mutex_lock(&c->lock);
    for (DnnlCacheEntry *e = c->bucket[h]; e; e = e->next)
        if (e->key_len == key_len && memcmp(e->key, key, key_len) == 0) {
            void *v = e->value;
            pthread_mutex_unlock(&c->lock);
            return v;
        }
    /* made under the lock: a shape is created once even when several threads want it at once */
    void *v = create(key, arg);
    DnnlCacheEntry *e = xmalloc(sizeof *e + key_len);
    e->key_len = key_len;
    e->value = v;
    memcpy(e->key, key, key_len);
    e->next = c->bucket[h];
    c->bucket[h] = e;
    c->entries++;
    pthread_mutex_unlock(&c->lock);
    return v;
}

void dnnl_cache_clear(DnnlCache *c, void (*destroy)(void *value)) {
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < DNNL_CACHE_BUCKETS; i++) {
        DnnlCacheEntry *e = c->bucket[i];
        while (e) {
            DnnlCacheEntry *next = e->next;
            if (e->value && destroy) destroy(e->value);
            free(e);
            e = next;
        }
        c->bucket[i] = NULL;
    }
    c->entries = 0;
    pthread_mutex_unlock(&c->lock);
}

int64_t dnnl_cache_size(DnnlCache *c) {
    pthread_mutex_lock(&c->lock);
    int64_t n = c->entries;
    pthread_mutex_unlock(&c->lock);
    return n;
}
