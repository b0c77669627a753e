/* matmul.c: batched matrix product (torch.bmm with optional transposes) on the CPU.
 *
 * oneDNN (default): the whole batch is one matmul primitive (AVX-512 kernels; the transposes are
 * strides of the operands' descriptors, and a sum post-op adds a gradient into its buffer),
 * created once per (shapes, transposes, accumulate, thread count) and cached like the
 * convolutions (dnnl_util.h). The model's products are skinny (G's attention: 4096 x 18 x 32; the
 * DAMSM words loss: 289 x 18 x 256), where one call for the batch beats one BLAS call per entry
 * by 2-4x. Deterministic at a fixed thread count.
 *
 * OpenBLAS (ATTNGAN_BMM=blas, and wherever oneDNN has no primitive): each batch entry is one
 * cblas_sgemm. Small matrices (where OpenBLAS runs single-threaded anyway) are spread over the
 * batch with OpenMP; larger ones run one after the other and let OpenBLAS use its own threads.
 * Either way each entry is computed by one deterministic call.
 */
#include "matmul.h"
#include "../core/env.h"
#include "../core/profile.h"
#include "dnnl_util.h"

#include <cblas.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* OpenBLAS runs an sgemm with m * n * k at most this on one thread (65536 * 4 in 0.3.x). */
#define BMM_SINGLE_THREAD_MNK 262144.0

/* z (m, n) = beta z + op(x) (m, k) . op(y) (k, n); x stored (m, k), or (k, m) if tx;
 * y stored (k, n), or (n, k) if ty. */
static void gemm(int tx, int ty, int m, int n, int k, const float *x, const float *y, float beta, float *z) {
    if (m == 0 || n == 0) return;
    if (k == 0) {
        if (beta == 0.0f) memset(z, 0, (size_t)m * n * sizeof(float));
        return;
    }
    cblas_sgemm(CblasRowMajor, tx ? CblasTrans : CblasNoTrans, ty ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, x,
                tx ? m : k, y, ty ? k : n, beta, z, n);
}

static int batch_parallel(int B, int M, int N, int K) {
    return B > 1 && (double)M * N * K <= BMM_SINGLE_THREAD_MNK;
}

/* ---------------------------------------------------------------- oneDNN path */

static _Atomic int g_bmm_impl = -1; /* 0 oneDNN, 1 OpenBLAS */

/* ATTNGAN_BMM=dnnl (default) | blas */
static int bmm_impl(void) {
    static const char *const names[] = {[BMM_DNNL] = "dnnl", [BMM_BLAS] = "blas"};
    return env_switch(&g_bmm_impl, "ATTNGAN_BMM", names, 2, BMM_DNNL);
}

void bmm_set_impl(BmmImpl impl) { atomic_store(&g_bmm_impl, (int)impl); }
BmmImpl bmm_get_impl(void) { return (BmmImpl)bmm_impl(); }

/* One batched product: int32 fields only (no padding bytes in the key). */
typedef struct MmKey {
    int32_t B, m, n, k, tx, ty, acc, nthr;
} MmKey;

typedef struct MmPrim {
    DnnlPrim p;
    dnnl_memory_desc_t x, y, z;
} MmPrim;

static DnnlCache g_mm_cache = DNNL_CACHE_INIT;

static void mm_destroy(void *v) {
    MmPrim *mp = v;
    dnnl_util_prim_destroy(&mp->p);
    free(mp);
}

void bmm_clear_cache(void) { dnnl_cache_clear(&g_mm_cache, mm_destroy); }

static void *mm_create(const void *kv, void *arg) {
    (void)arg;
    const MmKey *k = kv;
    dnnl_engine_t eng = dnnl_util_engine();
    if (!eng) return NULL;
    MmPrim *mp = xcalloc(1, sizeof *mp);
    dnnl_dims_t xd = {k->B, k->m, k->k}, yd = {k->B, k->k, k->n}, zd = {k->B, k->m, k->n};
    dnnl_dims_t xs = {(int64_t)k->m * k->k, k->tx ? 1 : k->k, k->tx ? k->m : 1};
    dnnl_dims_t ys = {(int64_t)k->k * k->n, k->ty ? 1 : k->n, k->ty ? k->k : 1};
    dnnl_dims_t zs = {(int64_t)k->m * k->n, k->n, 1};
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = dnnl_util_attr(k->acc);
    int ok = attr && dnnl_memory_desc_init_by_strides(&mp->x, 3, xd, dnnl_f32, xs) == dnnl_success &&
             dnnl_memory_desc_init_by_strides(&mp->y, 3, yd, dnnl_f32, ys) == dnnl_success &&
             dnnl_memory_desc_init_by_strides(&mp->z, 3, zd, dnnl_f32, zs) == dnnl_success &&
             dnnl_matmul_desc_init(&md, &mp->x, &mp->y, NULL, &mp->z) == dnnl_success &&
             dnnl_primitive_desc_create(&pd, &md, attr, eng, NULL) == dnnl_success;
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (!ok || dnnl_util_prim_from_pd(&mp->p, pd)) {
        free(mp);
        return NULL;
    }
    return mp;
}

/* z[i] (m, n) (+)= op(x[i]) (m, k) . op(y[i]) (k, n) for the B entries (strides m*k, k*n, m*n),
 * x stored (m, k) or (k, m) if tx, y (k, n) or (n, k) if ty; beta 0 (write) or 1 (add).
 * Returns 0 when oneDNN ran it. */
static int bgemm_dnnl(int B, int tx, int ty, int m, int n, int k, const float *x, const float *y, float beta, float *z) {
    if (bmm_impl() != BMM_DNNL || m == 0 || n == 0 || k == 0) return -1;
    MmKey key = {B, m, n, k, tx, ty, beta != 0.0f, dnnl_util_threads()};
    const MmPrim *mp = dnnl_cache_get(&g_mm_cache, &key, sizeof key, mm_create, NULL);
    if (!mp) return -1;
    void *ws = mp->p.scratch ? dnnl_util_workspace(mp->p.scratch) : NULL;
    DnnlArg a[3] = {{DNNL_ARG_SRC, &mp->x, x}, {DNNL_ARG_WEIGHTS, &mp->y, y}, {DNNL_ARG_DST, &mp->z, z}};
    int rc = dnnl_util_exec(&mp->p, 3, a, ws);
    CHECK(rc == 0 || beta == 0.0f, "bmm: oneDNN failed while adding a gradient");
    return rc;
}

/* out (B, M, N) = op(a) . op(b); a (B, M, K) or (B, K, M); b (B, K, N) or (B, N, K). */
void bmm_forward(float *out, const float *a, const float *b, int B, int M, int N, int K, int trans_a, int trans_b) {
    if (bgemm_dnnl(B, trans_a, trans_b, M, N, K, a, b, 0.0f, out) == 0) return;
    int64_t sa = (int64_t)M * K, sb = (int64_t)K * N, so = (int64_t)M * N;
#pragma omp parallel for schedule(static) if (batch_parallel(B, M, N, K))
    for (int i = 0; i < B; i++) gemm(trans_a, trans_b, M, N, K, a + i * sa, b + i * sb, 0.0f, out + i * so);
}

/* One batch entry of the backward. da and db may be the same buffer (bmm(x, x)): the two
 * products run one after the other. */
static void bmm_backward_one(float *da, float *db, const float *dout, const float *a, const float *b, int M, int N,
                             int K, int ta, int tb) {
    if (da) {
        if (!ta) gemm(0, !tb, M, K, N, dout, b, 1.0f, da);  /* da (M, K) += dout . op(b)^T */
        else gemm(tb, 1, K, M, N, b, dout, 1.0f, da);       /* da (K, M) += op(b) . dout^T */
    }
    if (db) {
        if (!tb) gemm(!ta, 0, K, N, M, a, dout, 1.0f, db);  /* db (K, N) += op(a)^T . dout */
        else gemm(1, ta, N, K, M, dout, a, 1.0f, db);       /* db (N, K) += dout^T . op(a) */
    }
}

void bmm_backward(float *da, float *db, const float *dout, const float *a, const float *b, int B, int M, int N, int K,
                  int trans_a, int trans_b) {
    if (!da && !db) return;
    /* the same four products as bmm_backward_one, each over the whole batch */
    int ta = trans_a, tb = trans_b, done_a = !da, done_b = !db;
    if (da) done_a = !ta ? bgemm_dnnl(B, 0, !tb, M, K, N, dout, b, 1.0f, da) == 0
                         : bgemm_dnnl(B, tb, 1, K, M, N, b, dout, 1.0f, da) == 0;
    if (db) done_b = !tb ? bgemm_dnnl(B, !ta, 0, K, N, M, a, dout, 1.0f, db) == 0
                         : bgemm_dnnl(B, 1, ta, N, K, M, dout, a, 1.0f, db) == 0;
    if (done_a) da = NULL;
    if (done_b) db = NULL;
    if (!da && !db) return;
    int64_t sa = (int64_t)M * K, sb = (int64_t)K * N, so = (int64_t)M * N;
#pragma omp parallel for schedule(static) if (batch_parallel(B, M, N, K))
    for (int i = 0; i < B; i++)
        bmm_backward_one(da ? da + i * sa : NULL, db ? db + i * sb : NULL, dout + i * so, a + i * sa, b + i * sb, M, N,
                         K, trans_a, trans_b);
}

/* ---------------------------------------------------------------- tape-level op */

typedef struct BmmCtx {
    int trans_a, trans_b;
} BmmCtx;

/* Batch, rows and columns of op(t) for a 2-d or 3-d t. */
static void bmm_dims(const Tensor *t, int trans, int *B, int *rows, int *cols) {
    int nd = t->ndim;
    *B = nd == 3 ? t->shape[0] : 1;
    *rows = trans ? t->shape[nd - 1] : t->shape[nd - 2];
    *cols = trans ? t->shape[nd - 2] : t->shape[nd - 1];
}

static void bmm_bwd(Node *nd) {
    const BmmCtx *c = nd->ctx;
    Tensor *a = nd->in[0], *b = nd->in[1], *y = nd->out[0];
    int B, M, K, Kb, N;
    bmm_dims(a, c->trans_a, &B, &M, &K);
    bmm_dims(b, c->trans_b, &B, &Kb, &N);
    KERNEL(nd->tape->device, bmm_backward, tensor_grad_or_null(a), tensor_grad_or_null(b), y->grad, a->data, b->data, B, M, N, K, c->trans_a,
                 c->trans_b);
}

Tensor *op_bmm(Tape *tp, Tensor *a, Tensor *b, int trans_a, int trans_b) {
    PROFILE_OP_BEGIN();
    char sa[96], sb[96];
    int ta = !!trans_a, tb = !!trans_b;
    CHECK((a->ndim == 2 || a->ndim == 3) && a->ndim == b->ndim, "bmm: a %s and b %s must both be 2-d or both 3-d",
          tensor_shape_str(a, sa, sizeof sa), tensor_shape_str(b, sb, sizeof sb));
    int B, Bb, M, K, Kb, N;
    bmm_dims(a, ta, &B, &M, &K);
    bmm_dims(b, tb, &Bb, &Kb, &N);
    CHECK(B == Bb, "bmm: batch sizes differ: a %s, b %s", tensor_shape_str(a, sa, sizeof sa),
          tensor_shape_str(b, sb, sizeof sb));
    CHECK(K == Kb, "bmm: inner dims differ: op(a) is %dx%d (a %s, trans_a %d), op(b) is %dx%d (b %s, trans_b %d)", M, K,
          tensor_shape_str(a, sa, sizeof sa), ta, Kb, N, tensor_shape_str(b, sb, sizeof sb), tb);
    Tensor *y = a->ndim == 3 ? TNEW(tp, B, M, N) : TNEW(tp, M, N);
    KERNEL(tp->device, bmm_forward, y->data, a->data, b->data, B, M, N, K, ta, tb);
    Tensor *in[] = {a, b}, *out[] = {y};
    Node *nd = TAPE_RECORD(tp, "bmm", bmm_bwd, in, out);
    if (nd) {
        BmmCtx *c = tape_alloc(tp, sizeof *c);
        c->trans_a = ta;
        c->trans_b = tb;
        nd->ctx = c;
    }
    return y;
}
