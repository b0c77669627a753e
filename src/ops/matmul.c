/* matmul.c: batched matrix product (torch.bmm with optional transposes) on the CPU via OpenBLAS.
 *
 * Each batch entry is one cblas_sgemm. Small matrices (where OpenBLAS runs single-threaded
 * anyway) are spread over the batch with OpenMP; larger ones run one after the other and let
 * OpenBLAS use its own threads. Either way each entry is computed by one deterministic call.
 */
#include "matmul.h"
#include "../core/profile.h"

#include <cblas.h>
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

/* out (B, M, N) = op(a) . op(b); a (B, M, K) or (B, K, M); b (B, K, N) or (B, N, K). */
void bmm_forward(float *out, const float *a, const float *b, int B, int M, int N, int K, int trans_a, int trans_b) {
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
    bmm_backward(tensor_grad_or_null(a), tensor_grad_or_null(b), y->grad, a->data, b->data, B, M, N, K, c->trans_a,
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
    bmm_forward(y->data, a->data, b->data, B, M, N, K, ta, tb);
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
