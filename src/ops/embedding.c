/* embedding.c: embedding lookup (nn.Embedding, dense weight gradient), forward and backward on
 * the CPU.
 *
 * Backward is a scatter-add; it runs in parallel over blocks of columns and serially over the
 * ids inside a block, so repeated ids accumulate in the same order for any thread count.
 */
#include "embedding.h"
#include "../core/profile.h"

#include <string.h>

#define EMB_COLS 64 /* columns per parallel block of the backward scatter */

/* out (N, D) = weight (V, D) rows ids (N) */
void embedding_forward(float *out, const int64_t *ids, const float *weight, int64_t N, int D) {
#pragma omp parallel for schedule(static) if (N * D > 65536)
    for (int64_t n = 0; n < N; n++)
        memcpy(out + n * D, weight + ids[n] * D, (size_t)D * sizeof(float));
}

/* dweight (V, D) row ids[n] += dout (N, D) row n, for n = 0..N-1 in order */
void embedding_backward(float *dweight, const float *dout, const int64_t *ids, int64_t N, int D) {
    if (!dweight) return;
    int nblk = (D + EMB_COLS - 1) / EMB_COLS;
#pragma omp parallel for schedule(static) if (N * D > 65536 && nblk > 1)
    for (int b = 0; b < nblk; b++) {
        int c0 = b * EMB_COLS, c1 = c0 + EMB_COLS < D ? c0 + EMB_COLS : D;
        for (int64_t n = 0; n < N; n++) {
            float *dw = dweight + ids[n] * D;
            const float *g = dout + n * D;
            for (int c = c0; c < c1; c++) dw[c] += g[c];
        }
    }
}

/* ---------------------------------------------------------------- tape op */
typedef struct EmbCtx {
    int64_t *ids; /* (N) copy of the ids, arena memory */
    int64_t N;
} EmbCtx;

static void embedding_bwd(Node *nd) {
    Tensor *w = nd->in[0], *y = nd->out[0];
    const EmbCtx *c = nd->ctx;
    KERNEL(nd->tape->device, embedding_backward, tensor_grad_or_null(w), y->grad, c->ids, c->N, w->shape[1]);
}

Tensor *op_embedding(Tape *tp, const int64_t *ids, int B, int T, Tensor *w) {
    PROFILE_OP_BEGIN();
    CHECK(w->ndim == 2, "embedding: weight must be 2-d (V, D), got %d dims", w->ndim);
    CHECK(B >= 0 && T >= 0, "embedding: negative ids shape (%d, %d)", B, T);
    int V = w->shape[0], D = w->shape[1];
    int64_t N = (int64_t)B * T;
    CHECK(N == 0 || ids, "embedding: ids is NULL");
    for (int64_t n = 0; n < N; n++)
        CHECK(ids[n] >= 0 && ids[n] < V, "embedding: id %lld at position %lld (b %lld, t %lld) out of range for a vocabulary of V = %d",
              (long long)ids[n], (long long)n, (long long)(n / (T ? T : 1)), (long long)(n % (T ? T : 1)), V);
    Tensor *y = TNEW(tp, B, T, D);
    const int64_t *dids = tape_dev_copy(tp, ids, (size_t)N * sizeof(int64_t)); /* ids itself on the CPU */
    KERNEL(tp->device, embedding_forward, y->data, dids, w->data, N, D);
    Tensor *in[] = {w}, *out[] = {y};
    Node *nd = TAPE_RECORD(tp, "embedding", embedding_bwd, in, out);
    if (nd) { /* the caller's ids may be gone by backward: keep a copy */
        EmbCtx *c = tape_alloc(tp, sizeof *c);
        if (tp->device == DEVICE_CPU) {
            c->ids = tape_alloc(tp, (size_t)(N ? N : 1) * sizeof(int64_t));
            if (N) memcpy(c->ids, ids, (size_t)N * sizeof(int64_t));
        } else {
            c->ids = (int64_t *)dids; /* the tape's own copy already */
        }
        c->N = N;
        nd->ctx = c;
    }
    return y;
}
