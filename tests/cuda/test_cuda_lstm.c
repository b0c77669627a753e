/* test_cuda_lstm.c: the CUDA twins of src/ops/lstm.c against the CPU kernels on the same seeded
 * random inputs (make test-cuda; built only with CUDA=1): bilstm forward and backward at the text
 * encoder's shapes (B = 14 and 48 captions, T = 18 words, E = 300, H = 128 per direction) with
 * unsorted varied lengths, and one direction alone at odd sizes, both directions. Backward
 * gradients start from random values (the twins add into them); some cases pass NULL gradients,
 * NULL dout or dh_n, and no biases.
 *
 * Bound: TOL_RED (1e-4 norm-relative) for every output, saved value and gradient. The twins use
 * the CPU's cell arithmetic operation for operation (no FMA contraction); what differs is the
 * SGEMMs' summation order (K = 300 for the input projection, 128 or 512 for the recurrent
 * products, up to N = 864 packed rows for the weight gradients), about 1e-6 relative per product,
 * and expf / tanhf rounding (a few ulp). The recurrence carries those differences through at most
 * 18 steps, but with PyTorch's initialisation scale (U(-1/sqrt(H), 1/sqrt(H))) the map from one
 * step's state to the next is contractive (sigmoid / tanh derivatives <= 1, |W_hh| small), so they
 * do not grow geometrically. Measured so far only on a host emulation of the twins (their kernels
 * run in sequence on the CPU, a reference GEMM accumulating in double in place of cuBLAS): 1e-8 to
 * 4e-7 norm-relative everywhere, so TOL_RED leaves a margin of over 100 for cuBLAS's fp32
 * accumulation (about 1e-6 relative per product). Not yet run on a GPU (no device was lent when
 * this was written); the first run's numbers are the ones to state here. */
#include "cuda_test.h"
#include "../../src/ops/lstm.h"
#include "../../src/ops/cuda/cuda_ops.h"

/* lens (B) in 1..T, unsorted, with one of T and one of 1 */
static int *make_lens(int B, int T, uint64_t seed) {
    int *lens = xmalloc((size_t)B * sizeof(int));
    float *u = rnd(B, 0, 1, seed);
    for (int b = 0; b < B; b++) {
        int l = 1 + (int)(u[b] * T);
        lens[b] = l > T ? T : l;
    }
    lens[B / 2] = T;
    if (B > 1) lens[B - 1] = 1;
    free(u);
    return lens;
}

typedef struct Dir {
    float *w_ih, *w_hh, *b_ih, *b_hh;     /* host */
    float *dw_ih, *dw_hh, *db_ih, *db_hh; /* device copies */
} Dir;

/* flags */
enum { NO_BIAS = 1, SOME_NULL_GRADS = 2, NO_DOUT = 4, NO_DHN = 8, NO_DX = 16 };

static void bilstm_case(int B, int T, int IN, int H, uint64_t seed, int flags) {
    int G = 4 * H;
    float k = 1.0f / sqrtf((float)H);
    int *lens = make_lens(B, T, seed);
    int N = 0, Lmax = lstm_max_len(lens, B);
    for (int b = 0; b < B; b++) N += lens[b];
    int64_t nx = (int64_t)B * T * IN, nout = (int64_t)B * Lmax * 2 * H, nhn = (int64_t)B * 2 * H;
    int64_t ng = (int64_t)2 * N * G, nc = (int64_t)2 * N * H;

    Dir d[2];
    LstmDirParams p[2], dp[2];
    for (int i = 0; i < 2; i++) {
        d[i].w_ih = rnd((int64_t)G * IN, -k, k, seed + 10 + i);
        d[i].w_hh = rnd((int64_t)G * H, -k, k, seed + 20 + i);
        d[i].b_ih = rnd(G, -k, k, seed + 30 + i);
        d[i].b_hh = rnd(G, -k, k, seed + 40 + i);
        d[i].dw_ih = up(d[i].w_ih, (int64_t)G * IN), d[i].dw_hh = up(d[i].w_hh, (int64_t)G * H);
        d[i].db_ih = up(d[i].b_ih, G), d[i].db_hh = up(d[i].b_hh, G);
        int nb = flags & NO_BIAS;
        p[i] = (LstmDirParams){d[i].w_ih, d[i].w_hh, nb ? NULL : d[i].b_ih, nb ? NULL : d[i].b_hh};
        dp[i] = (LstmDirParams){d[i].dw_ih, d[i].dw_hh, nb ? NULL : d[i].db_ih, nb ? NULL : d[i].db_hh};
    }
    float *x = rnd(nx, -1, 1, seed + 1);
    float *out = xmalloc((size_t)nout * sizeof(float)), *h_n = xmalloc((size_t)nhn * sizeof(float));
    float *gates = xmalloc((size_t)ng * sizeof(float)), *c = xmalloc((size_t)nc * sizeof(float));
    float *h = xmalloc((size_t)nc * sizeof(float));
    bilstm_forward(out, h_n, gates, c, h, x, p, lens, B, T, IN, H);

    float *dX = up(x, nx), *dOut = cu_alloc((size_t)nout * sizeof(float)), *dHn = cu_alloc((size_t)nhn * sizeof(float));
    float *dGates = cu_alloc((size_t)ng * sizeof(float)), *dC = cu_alloc((size_t)nc * sizeof(float));
    float *dH = cu_alloc((size_t)nc * sizeof(float));
    bilstm_forward_cuda(dOut, dHn, dGates, dC, dH, dX, dp, lens, B, T, IN, H);

    /* backward: gradients pre-filled with random values */
    float *dout = rnd(nout, -1, 1, seed + 2), *dhn = rnd(nhn, -1, 1, seed + 3);
    float *dx = rnd(nx, -1, 1, seed + 4);
    float *gw[2][4], *dgw[2][4];
    int64_t gn[4] = {(int64_t)G * IN, (int64_t)G * H, G, G};
    LstmDirGrads g[2], dg[2];
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 4; j++) {
            int skip = (flags & SOME_NULL_GRADS) && ((i == 0 && j == 1) || (i == 1 && j == 3) || (i == 1 && j == 0));
            gw[i][j] = skip ? NULL : rnd(gn[j], -1, 1, seed + 100 + 10 * i + j);
            dgw[i][j] = skip ? NULL : up(gw[i][j], gn[j]);
        }
        g[i] = (LstmDirGrads){gw[i][0], gw[i][1], gw[i][2], gw[i][3]};
        dg[i] = (LstmDirGrads){dgw[i][0], dgw[i][1], dgw[i][2], dgw[i][3]};
    }
    float *dDout = (flags & NO_DOUT) ? NULL : up(dout, nout), *dDhn = (flags & NO_DHN) ? NULL : up(dhn, nhn);
    float *dDx = (flags & NO_DX) ? NULL : up(dx, nx);
    bilstm_backward((flags & NO_DX) ? NULL : dx, g, (flags & NO_DOUT) ? NULL : dout, (flags & NO_DHN) ? NULL : dhn, gates,
                    c, h, x, p, lens, B, T, IN, H);
    bilstm_backward_cuda(dDx, dg, dDout, dDhn, dGates, dC, dH, dX, dp, lens, B, T, IN, H);

    char w[128], tag[64];
    snprintf(tag, sizeof tag, "bilstm B%d T%d E%d H%d%s%s", B, T, IN, H, (flags & NO_BIAS) ? " nobias" : "",
             (flags & (SOME_NULL_GRADS | NO_DOUT | NO_DHN | NO_DX)) ? " nulls" : "");
    snprintf(w, sizeof w, "%s out", tag), check(w, dOut, out, nout, TOL_RED);
    snprintf(w, sizeof w, "%s h_n", tag), check(w, dHn, h_n, nhn, TOL_RED);
    snprintf(w, sizeof w, "%s saved gates", tag), check(w, dGates, gates, ng, TOL_RED);
    snprintf(w, sizeof w, "%s saved c", tag), check(w, dC, c, nc, TOL_RED);
    snprintf(w, sizeof w, "%s saved h", tag), check(w, dH, h, nc, TOL_RED);
    if (dDx) snprintf(w, sizeof w, "%s dx (added)", tag), check(w, dDx, dx, nx, TOL_RED);
    static const char *names[4] = {"dw_ih", "dw_hh", "db_ih", "db_hh"};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++)
            if (dgw[i][j]) {
                snprintf(w, sizeof w, "%s %s %s (added)", tag, i ? "rev" : "fwd", names[j]);
                check(w, dgw[i][j], gw[i][j], gn[j], TOL_RED);
            }
    for (int i = 0; i < 2; i++) {
        cu_free(d[i].dw_ih), cu_free(d[i].dw_hh), cu_free(d[i].db_ih), cu_free(d[i].db_hh);
        free(d[i].w_ih), free(d[i].w_hh), free(d[i].b_ih), free(d[i].b_hh);
        for (int j = 0; j < 4; j++) free(gw[i][j]);
    }
    cu_free(dX), cu_free(dDout), cu_free(dDhn);
    free(lens), free(x), free(out), free(h_n), free(gates), free(c), free(h), free(dout), free(dhn), free(dx);
}

/* lstm_dir_forward / lstm_dir_backward alone at odd sizes: gates in = random pre-activations */
static void dir_case(int B, int T, int H, int reverse, uint64_t seed) {
    int G = 4 * H;
    float k = 1.0f / sqrtf((float)H);
    int *lens = make_lens(B, T, seed);
    int N = 0, Lmax = lstm_max_len(lens, B);
    for (int b = 0; b < B; b++) N += lens[b];
    int64_t ng = (int64_t)N * G, nh = (int64_t)N * H, nout = (int64_t)B * Lmax * 2 * H, nhn = (int64_t)B * 2 * H;
    float *w_hh = rnd((int64_t)G * H, -k, k, seed + 1), *gates = rnd(ng, -2, 2, seed + 2);
    float *dout = rnd(nout, -1, 1, seed + 3), *dhn = rnd(nhn, -1, 1, seed + 4);
    float *h = xmalloc((size_t)nh * sizeof(float)), *c = xmalloc((size_t)nh * sizeof(float));
    float *dgates = rnd(ng, -1, 1, seed + 5); /* overwritten by the backward */
    float *dW = up(w_hh, (int64_t)G * H), *dGates = up(gates, ng), *dDgates = up(dgates, ng);
    float *dH = cu_alloc((size_t)nh * sizeof(float)), *dC = cu_alloc((size_t)nh * sizeof(float));
    float *dDout = up(dout, nout), *dDhn = up(dhn, nhn);
    lstm_dir_forward(h, c, gates, w_hh, lens, B, H, reverse);
    lstm_dir_backward(dgates, dout, dhn, gates, c, w_hh, lens, B, H, reverse);
    lstm_dir_forward_cuda(dH, dC, dGates, dW, lens, B, H, reverse);
    lstm_dir_backward_cuda(dDgates, dDout, dDhn, dGates, dC, dW, lens, B, H, reverse);
    char w[96];
    snprintf(w, sizeof w, "lstm_dir %s B%d T%d H%d h", reverse ? "rev" : "fwd", B, T, H), check(w, dH, h, nh, TOL_RED);
    snprintf(w, sizeof w, "lstm_dir %s B%d T%d H%d c", reverse ? "rev" : "fwd", B, T, H), check(w, dC, c, nh, TOL_RED);
    snprintf(w, sizeof w, "lstm_dir %s B%d T%d H%d gates", reverse ? "rev" : "fwd", B, T, H);
    check(w, dGates, gates, ng, TOL_RED);
    snprintf(w, sizeof w, "lstm_dir %s B%d T%d H%d dgates", reverse ? "rev" : "fwd", B, T, H);
    check(w, dDgates, dgates, ng, TOL_RED);
    cu_free(dW), cu_free(dDout), cu_free(dDhn);
    free(lens), free(w_hh), free(gates), free(dout), free(dhn), free(h), free(c), free(dgates);
}

int main(void) {
    if (!cuda_test_begin("test_cuda_lstm")) return test_end();
    bilstm_case(14, 18, 300, 128, 1000, 0);
    bilstm_case(48, 18, 300, 128, 2000, 0);
    bilstm_case(48, 18, 300, 128, 3000, NO_BIAS | SOME_NULL_GRADS | NO_DHN);
    bilstm_case(7, 11, 37, 29, 4000, NO_DOUT | NO_DX);
    dir_case(5, 9, 37, 0, 5000);
    dir_case(5, 9, 37, 1, 6000);
    dir_case(1, 18, 128, 1, 7000);
    CuStats st = cu_stats();
    printf("  device memory: peak live %.1f MiB, %zu cudaMalloc calls\n", st.peak_live / 1048576.0, st.n_malloc);
    EXPECT(st.live == 0, "every device block was freed (%zu bytes live)", st.live);
    return test_end();
}
