/* lstm.cu: the CUDA twins of src/ops/lstm.c's kernels (packed variable-length bidirectional LSTM).
 *
 * Host and device memory: every float pointer (and the weights inside LstmDirParams / LstmDirGrads)
 * is device memory; `lens` (B) is a HOST array, as in the CPU kernels (op_bilstm keeps its copy on
 * the tape's arena). The host reads it to size the per-step launches: step s runs the samples with
 * lens[b] > s. lens may come in any order (the CPU code assumes no sorting), so each call sorts the
 * samples by length, longest first (stable), and the samples active at step s are then a prefix of
 * that order: the recurrent GEMM of a step runs over the first na[s] rows of a dense (B, H) state
 * buffer in that order, and no gather is needed. The sorted order, the packed offsets and each packed
 * row's sample are uploaded once per call (a few hundred ints) with cudaMemcpyAsync from pageable
 * host memory, which copies the host bytes before it returns: no synchronisation. (A CUDA graph
 * capture of these twins would need that upload from pinned memory or as a kernel argument.)
 *
 * Arithmetic: the input projections, recurrent products and weight / input gradients are cuBLAS
 * SGEMMs (fp32 on the shared cuBLAS handle: no TF32 unless ATTNGAN_CUDA_MATH=tf32); the cell's element-wise math uses
 * the CPU kernel's formulas and operation order with explicitly rounded products and sums
 * (__fmul_rn / __fadd_rn: no FMA contraction, as the CPU build, -std=c11, contracts none). The bias
 * gradient sums the packed rows in the CPU's order (float, row 0 first), one thread per column.
 * Results differ from the CPU only through the GEMMs' summation order and expf / tanhf rounding.
 * Every sum has a fixed order: the results are deterministic. */
#include "cuda_ops.h"
#include "launch.cuh"

#include <cublas_v2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CUBLAS_CHECK(call)                                                                                \
    do {                                                                                                  \
        cublasStatus_t st_ = (call);                                                                      \
        if (st_ != CUBLAS_STATUS_SUCCESS) {                                                               \
            fprintf(stderr, "%s:%d: %s failed: cuBLAS status %d\n", __FILE__, __LINE__, #call, (int)st_); \
            abort();                                                                                      \
        }                                                                                                 \
    } while (0)

#define MUL __fmul_rn
#define ADD __fadd_rn
#define SUB __fsub_rn

__device__ static inline float sigmoid_(float v) { return 1.0f / (1.0f + expf(-v)); }

/* ---------------------------------------------------------------- the per-call plan */

/* What the kernels of one call share. Host: na (Lmax), off (B + 1). Device (one block `dmeta`):
 * soff (B) / slen (B): packed offset and length of the k-th sample in sorted order; perm (B): that
 * sample's index b; off (B + 1), lens (B) by b; rowb (N): the sample of each packed row. */
typedef struct Plan {
    int B, N, Lmax;
    int *na, *off;                                            /* host */
    int *dmeta;                                               /* device block */
    const int *soff, *slen, *perm, *doff, *dlens, *rowb;      /* into dmeta */
} Plan;

static void plan_make(Plan *pl, const int *lens, int B) {
    memset(pl, 0, sizeof *pl);
    pl->B = B;
    pl->off = (int *)malloc((size_t)(B + 1) * sizeof(int));
    int *perm = (int *)malloc((size_t)(B > 0 ? B : 1) * sizeof(int));
    if (!pl->off || !perm) FAIL("lstm_cuda: out of host memory");
    pl->N = lstm_pack_offsets(pl->off, lens, B);
    pl->Lmax = lstm_max_len(lens, B);
    /* stable insertion sort by length, longest first */
    for (int b = 0; b < B; b++) {
        int k = b;
        while (k > 0 && lens[perm[k - 1]] < lens[b]) {
            perm[k] = perm[k - 1];
            k--;
        }
        perm[k] = b;
    }
    pl->na = (int *)malloc((size_t)(pl->Lmax > 0 ? pl->Lmax : 1) * sizeof(int));
    if (!pl->na) FAIL("lstm_cuda: out of host memory");
    for (int s = 0; s < pl->Lmax; s++) {
        int n = 0;
        while (n < B && lens[perm[n]] > s) n++;
        pl->na[s] = n;
    }
    size_t nm = (size_t)5 * B + 1 + pl->N;
    int *hm = (int *)malloc(nm * sizeof(int));
    if (!hm) FAIL("lstm_cuda: out of host memory");
    int *soff = hm, *slen = hm + B, *hperm = hm + 2 * B, *off = hm + 3 * B, *hl = hm + 4 * B + 1, *rowb = hm + 5 * B + 1;
    for (int k = 0; k < B; k++) {
        soff[k] = pl->off[perm[k]];
        slen[k] = lens[perm[k]];
        hperm[k] = perm[k];
    }
    for (int b = 0; b <= B; b++) off[b] = pl->off[b];
    for (int b = 0; b < B; b++) {
        hl[b] = lens[b];
        for (int t = 0; t < lens[b]; t++) rowb[pl->off[b] + t] = b;
    }
    pl->dmeta = (int *)cu_alloc(nm * sizeof(int));
    /* pageable source: the bytes are staged before cudaMemcpyAsync returns, so hm may be freed */
    CU_CHECK(cudaMemcpyAsync(pl->dmeta, hm, nm * sizeof(int), cudaMemcpyHostToDevice, (cudaStream_t)cu_stream()));
    pl->soff = pl->dmeta, pl->slen = pl->dmeta + B, pl->perm = pl->dmeta + 2 * B, pl->doff = pl->dmeta + 3 * B;
    pl->dlens = pl->dmeta + 4 * B + 1, pl->rowb = pl->dmeta + 5 * B + 1;
    free(hm);
    free(perm);
}

static void plan_free(Plan *pl) {
    cu_free(pl->dmeta); /* one stream: a later user of the block runs after this call's kernels */
    free(pl->na);
    free(pl->off);
    memset(pl, 0, sizeof *pl);
}

/* ---------------------------------------------------------------- cell kernels */

/* Step s, sorted sample k < na, unit j: cell_forward of lstm.c on packed row r. rec (na, 4H) or
 * NULL at s = 0 (no recurrent term, zero c_prev). hs (B, H): the dense hidden state, row k. */
__global__ static void k_cell_fwd(float *h, float *c, float *gates, float *hs, const float *rec, const int *soff,
                                  const int *slen, int na, int H, int s, int reverse) {
    GRID_STRIDE(e, (int64_t)na * H) {
        int k = (int)(e / H), j = (int)(e % H);
        int64_t G = 4 * (int64_t)H;
        int t = reverse ? slen[k] - 1 - s : s;
        int64_t r = (int64_t)soff[k] + t;
        float *g = gates + r * G;
        float pi = g[j], pf = g[H + j], pg = g[2 * H + j], po = g[3 * H + j];
        if (rec) {
            const float *q = rec + (int64_t)k * G;
            pi = ADD(pi, q[j]), pf = ADD(pf, q[H + j]), pg = ADD(pg, q[2 * H + j]), po = ADD(po, q[3 * H + j]);
        }
        float i = sigmoid_(pi), f = sigmoid_(pf), gg = tanhf(pg), o = sigmoid_(po);
        float cn = ADD(MUL(i, gg), rec ? MUL(f, c[(reverse ? r + 1 : r - 1) * H + j]) : 0.0f);
        g[j] = i, g[H + j] = f, g[2 * H + j] = gg, g[3 * H + j] = o;
        c[r * H + j] = cn;
        float hv = MUL(o, tanhf(cn));
        h[r * H + j] = hv;
        hs[(int64_t)k * H + j] = hv;
    }
}

/* dhs (B, H) <- this direction's half of dh_n (B, 2H) in sorted order, or zeros; dcs (B, H) <- 0 */
__global__ static void k_init_state_grads(float *dhs, float *dcs, const float *dh_n, const int *perm, int B, int H,
                                          int reverse) {
    GRID_STRIDE(e, (int64_t)B * H) {
        int k = (int)(e / H), j = (int)(e % H);
        dhs[e] = dh_n ? dh_n[(int64_t)perm[k] * 2 * H + (reverse ? H : 0) + j] : 0.0f;
        dcs[e] = 0.0f;
    }
}

/* Step s, sorted sample k < na, unit j: cell_backward of lstm.c. Writes this step's gate
 * gradients into dgates (packed row r) and gb (row k, for the recurrent GEMM); dcs row k becomes
 * the gradient of the previous step's c. dout (B, Lmax, 2H) or NULL. */
__global__ static void k_cell_bwd(float *dgates, float *gb, float *dcs, const float *dhs, const float *dout,
                                  const float *gates, const float *c, const int *soff, const int *slen,
                                  const int *perm, int na, int H, int s, int reverse, int Lmax) {
    GRID_STRIDE(e, (int64_t)na * H) {
        int k = (int)(e / H), j = (int)(e % H);
        int64_t G = 4 * (int64_t)H;
        int t = reverse ? slen[k] - 1 - s : s;
        int64_t r = (int64_t)soff[k] + t;
        const float *gp = gates + r * G;
        float i = gp[j], f = gp[H + j], g = gp[2 * H + j], o = gp[3 * H + j];
        float tc = tanhf(c[r * H + j]);
        float dho = dout ? dout[((int64_t)perm[k] * Lmax + t) * 2 * H + (reverse ? H : 0) + j] : 0.0f;
        float dht = ADD(dhs[e], dho);
        float dct = ADD(dcs[e], MUL(MUL(dht, o), SUB(1.0f, MUL(tc, tc))));
        float cp = s > 0 ? MUL(dct, c[(reverse ? r + 1 : r - 1) * H + j]) : 0.0f;
        float d0 = MUL(MUL(MUL(dct, g), i), SUB(1.0f, i));
        float d1 = MUL(MUL(cp, f), SUB(1.0f, f));
        float d2 = MUL(MUL(dct, i), SUB(1.0f, MUL(g, g)));
        float d3 = MUL(MUL(MUL(dht, tc), o), SUB(1.0f, o));
        float *dg = dgates + r * G, *gk = gb + (int64_t)k * G;
        dg[j] = d0, dg[H + j] = d1, dg[2 * H + j] = d2, dg[3 * H + j] = d3;
        gk[j] = d0, gk[H + j] = d1, gk[2 * H + j] = d2, gk[3 * H + j] = d3;
        dcs[e] = MUL(dct, f);
    }
}

/* ---------------------------------------------------------------- packing kernels */

/* xp (N, IN) <- the valid rows of x (B, T, IN) */
__global__ static void k_pack(float *xp, const float *x, const int *rowb, const int *off, int N, int T, int IN) {
    GRID_STRIDE(e, (int64_t)N * IN) {
        int64_t r = e / IN, q = e % IN;
        int b = rowb[r];
        int64_t t = r - off[b];
        xp[e] = x[((int64_t)b * T + t) * IN + q];
    }
}

/* gates (N, G) += b_ih + b_hh (either may be NULL; the sum of the two first, as the CPU) */
__global__ static void k_add_biases(float *gates, const float *b_ih, const float *b_hh, int64_t N, int G) {
    GRID_STRIDE(e, N * G) {
        int j = (int)(e % G);
        gates[e] += (b_ih ? b_ih[j] : 0.0f) + (b_hh ? b_hh[j] : 0.0f);
    }
}

/* out (B, Lmax, 2H) from hf, hr (N, H), zeros past lens[b] */
__global__ static void k_unpack_out(float *out, const float *hf, const float *hr, const int *off, const int *lens, int B,
                                    int Lmax, int H) {
    int64_t H2 = 2 * (int64_t)H;
    GRID_STRIDE(e, (int64_t)B * Lmax * H2) {
        int64_t j = e % H2, bt = e / H2;
        int t = (int)(bt % Lmax), b = (int)(bt / Lmax);
        float v = 0.0f;
        if (t < lens[b]) {
            int64_t r = (int64_t)off[b] + t;
            v = j < H ? hf[r * H + j] : hr[r * H + (j - H)];
        }
        out[e] = v;
    }
}

/* h_n (B, 2H) = [forward h at lens[b] - 1, reverse h at t = 0] */
__global__ static void k_h_n(float *h_n, const float *hf, const float *hr, const int *off, const int *lens, int B, int H) {
    int64_t H2 = 2 * (int64_t)H;
    GRID_STRIDE(e, (int64_t)B * H2) {
        int b = (int)(e / H2);
        int64_t j = e % H2;
        h_n[e] = j < H ? hf[((int64_t)off[b] + lens[b] - 1) * H + j] : hr[(int64_t)off[b] * H + (j - H)];
    }
}

/* hp (N, H): the hidden state each packed row's step started from (zero at a sample's first step) */
__global__ static void k_prev_hidden(float *hp, const float *h, const int *rowb, const int *off, const int *lens, int N,
                                     int H, int reverse) {
    GRID_STRIDE(e, (int64_t)N * H) {
        int64_t r = e / H, j = e % H;
        int b = rowb[r];
        int64_t t = r - off[b];
        float v;
        if (reverse) v = t < lens[b] - 1 ? h[(r + 1) * H + j] : 0.0f;
        else v = t > 0 ? h[(r - 1) * H + j] : 0.0f;
        hp[e] = v;
    }
}

/* db_ih, db_hh (G) += column sums of dgates (N, G), summed in float from row 0 as the CPU does:
 * one thread per column */
__global__ static void k_bias_grads(float *db_ih, float *db_hh, const float *dgates, int64_t N, int G) {
    GRID_STRIDE(j, (int64_t)G) {
        float s = 0.0f;
        for (int64_t n = 0; n < N; n++) s += dgates[n * G + j];
        if (db_ih) db_ih[j] += s;
        if (db_hh) db_hh[j] += s;
    }
}

/* dx (B, T, IN) += dxp0 + dxp1 (each (N, IN)), scattered back to the valid rows */
__global__ static void k_scatter_dx(float *dx, const float *dxp, const int *rowb, const int *off, int N, int T, int IN) {
    int64_t NI = (int64_t)N * IN;
    GRID_STRIDE(e, NI) {
        int64_t r = e / IN, q = e % IN;
        int b = rowb[r];
        int64_t t = r - off[b];
        dx[((int64_t)b * T + t) * IN + q] += dxp[e] + dxp[NI + e];
    }
}

/* ---------------------------------------------------------------- one direction */

/* lstm_dir_forward over a plan; hs (B, H), rec (B, 4H) scratch */
static void dir_forward(float *h, float *c, float *gates, const float *w_hh, const Plan *pl, int H, int reverse, float *hs,
                        float *rec) {
    cublasHandle_t hb = (cublasHandle_t)cu_cublas();
    const float one = 1.0f, zero = 0.0f;
    int G = 4 * H;
    for (int s = 0; s < pl->Lmax; s++) {
        int na = pl->na[s];
        if (s > 0) /* rec^T (4H x na) = W_hh (4H x H) . hs^T (H x na): row-major rec = hs . W_hh^T */
            CUBLAS_CHECK(cublasSgemm(hb, CUBLAS_OP_T, CUBLAS_OP_N, G, na, H, &one, w_hh, H, hs, H, &zero, rec, G));
        LAUNCH(k_cell_fwd, (int64_t)na * H, h, c, gates, hs, s > 0 ? rec : (const float *)NULL, pl->soff, pl->slen, na, H,
               s, reverse);
    }
}

/* lstm_dir_backward over a plan; dhs, dcs (B, H), gb (B, 4H) scratch */
static void dir_backward(float *dgates, const float *dout, const float *dh_n, const float *gates, const float *c,
                         const float *w_hh, const Plan *pl, int H, int reverse, float *dhs, float *dcs, float *gb) {
    cublasHandle_t hb = (cublasHandle_t)cu_cublas();
    const float one = 1.0f, zero = 0.0f;
    int G = 4 * H;
    LAUNCH(k_init_state_grads, (int64_t)pl->B * H, dhs, dcs, dh_n, pl->perm, pl->B, H, reverse);
    for (int s = pl->Lmax - 1; s >= 0; s--) {
        int na = pl->na[s];
        LAUNCH(k_cell_bwd, (int64_t)na * H, dgates, gb, dcs, dhs, dout, gates, c, pl->soff, pl->slen, pl->perm, na, H, s,
               reverse, pl->Lmax);
        if (s == 0) break;
        /* dhs^T (H x na) = W_hh^T (H x 4H) . gb^T (4H x na): row-major dhs = gb . W_hh */
        CUBLAS_CHECK(cublasSgemm(hb, CUBLAS_OP_N, CUBLAS_OP_N, H, na, G, &one, w_hh, H, gb, G, &zero, dhs, H));
    }
}

static float *falloc(int64_t n) { return (float *)cu_alloc((size_t)(n > 0 ? n : 1) * sizeof(float)); }

extern "C" {

void lstm_dir_forward_cuda(float *h, float *c, float *gates, const float *w_hh, const int *lens, int B, int H, int reverse) {
    if (B <= 0) return;
    Plan pl;
    plan_make(&pl, lens, B);
    float *hs = falloc((int64_t)B * H), *rec = falloc((int64_t)B * 4 * H);
    dir_forward(h, c, gates, w_hh, &pl, H, reverse, hs, rec);
    cu_free(hs), cu_free(rec);
    plan_free(&pl);
}

void lstm_dir_backward_cuda(float *dgates, const float *dout, const float *dh_n, const float *gates, const float *c,
                            const float *w_hh, const int *lens, int B, int H, int reverse) {
    if (B <= 0) return;
    Plan pl;
    plan_make(&pl, lens, B);
    float *dhs = falloc((int64_t)B * H), *dcs = falloc((int64_t)B * H), *gb = falloc((int64_t)B * 4 * H);
    dir_backward(dgates, dout, dh_n, gates, c, w_hh, &pl, H, reverse, dhs, dcs, gb);
    cu_free(dhs), cu_free(dcs), cu_free(gb);
    plan_free(&pl);
}

void bilstm_forward_cuda(float *out, float *h_n, float *gates, float *c, float *h, const float *x, const LstmDirParams p[2],
                         const int *lens, int B, int T, int IN, int H) {
    if (B <= 0) return;
    cublasHandle_t hb = (cublasHandle_t)cu_cublas();
    const float one = 1.0f, zero = 0.0f;
    Plan pl;
    plan_make(&pl, lens, B);
    int N = pl.N, G = 4 * H;
    int64_t NH = (int64_t)N * H;
    float *xp = falloc((int64_t)N * IN), *hs = falloc((int64_t)B * H), *rec = falloc((int64_t)B * G);
    LAUNCH(k_pack, (int64_t)N * IN, xp, x, pl.rowb, pl.doff, N, T, IN);
    for (int d = 0; d < 2; d++) {
        float *gd = gates + (int64_t)d * 4 * NH;
        /* gates^T (4H x N) = W_ih (4H x IN) . xp^T (IN x N): row-major gates = xp . W_ih^T */
        CUBLAS_CHECK(cublasSgemm(hb, CUBLAS_OP_T, CUBLAS_OP_N, G, N, IN, &one, p[d].w_ih, IN, xp, IN, &zero, gd, G));
        if (p[d].b_ih || p[d].b_hh) LAUNCH(k_add_biases, (int64_t)N * G, gd, p[d].b_ih, p[d].b_hh, (int64_t)N, G);
        dir_forward(h + d * NH, c + d * NH, gd, p[d].w_hh, &pl, H, d, hs, rec);
    }
    LAUNCH(k_unpack_out, (int64_t)B * pl.Lmax * 2 * H, out, h, h + NH, pl.doff, pl.dlens, B, pl.Lmax, H);
    LAUNCH(k_h_n, (int64_t)B * 2 * H, h_n, h, h + NH, pl.doff, pl.dlens, B, H);
    cu_free(xp), cu_free(hs), cu_free(rec);
    plan_free(&pl);
}

void bilstm_backward_cuda(float *dx, const LstmDirGrads g[2], const float *dout, const float *dh_n, const float *gates,
                          const float *c, const float *h, const float *x, const LstmDirParams p[2], const int *lens, int B,
                          int T, int IN, int H) {
    if (B <= 0) return;
    cublasHandle_t hb = (cublasHandle_t)cu_cublas();
    const float one = 1.0f, zero = 0.0f;
    Plan pl;
    plan_make(&pl, lens, B);
    int N = pl.N, G = 4 * H;
    int64_t NH = (int64_t)N * H, NI = (int64_t)N * IN;
    int need_hp = g[0].w_hh || g[1].w_hh;
    float *xp = falloc(NI), *dgates = falloc(2 * 4 * NH), *dxp = dx ? falloc(2 * NI) : NULL;
    float *hp = need_hp ? falloc(NH) : NULL;
    float *dhs = falloc((int64_t)B * H), *dcs = falloc((int64_t)B * H), *gb = falloc((int64_t)B * G);
    LAUNCH(k_pack, NI, xp, x, pl.rowb, pl.doff, N, T, IN);
    for (int d = 0; d < 2; d++) {
        float *dgd = dgates + (int64_t)d * 4 * NH;
        dir_backward(dgd, dout, dh_n, gates + (int64_t)d * 4 * NH, c + d * NH, p[d].w_hh, &pl, H, d, dhs, dcs, gb);
        /* dW_ih^T (IN x 4H) += xp^T (IN x N) . dgates (N x 4H): row-major dW_ih += dgates^T . xp */
        if (g[d].w_ih)
            CUBLAS_CHECK(cublasSgemm(hb, CUBLAS_OP_N, CUBLAS_OP_T, IN, G, N, &one, xp, IN, dgd, G, &one, g[d].w_ih, IN));
        if (g[d].w_hh) {
            LAUNCH(k_prev_hidden, NH, hp, h + d * NH, pl.rowb, pl.doff, pl.dlens, N, H, d);
            CUBLAS_CHECK(cublasSgemm(hb, CUBLAS_OP_N, CUBLAS_OP_T, H, G, N, &one, hp, H, dgd, G, &one, g[d].w_hh, H));
        }
        if (g[d].b_ih || g[d].b_hh) LAUNCH(k_bias_grads, (int64_t)G, g[d].b_ih, g[d].b_hh, dgd, (int64_t)N, G);
        /* dxp_d^T (IN x N) = W_ih^T (IN x 4H) . dgates^T (4H x N): row-major dxp_d = dgates . W_ih */
        if (dx) CUBLAS_CHECK(cublasSgemm(hb, CUBLAS_OP_N, CUBLAS_OP_N, IN, N, G, &one, p[d].w_ih, IN, dgd, G, &zero, dxp + d * NI, IN));
    }
    if (dx) LAUNCH(k_scatter_dx, NI, dx, dxp, pl.rowb, pl.doff, N, T, IN);
    cu_free(xp), cu_free(dgates), cu_free(dxp), cu_free(hp), cu_free(dhs), cu_free(dcs), cu_free(gb);
    plan_free(&pl);
}
}
