/* lstm.c: fused single-layer bidirectional LSTM over variable-length sequences, on the CPU.
 *
 * Matches nn.LSTM(IN, H, 1, batch_first=True, bidirectional=True) applied to
 * pack_padded_sequence(x, lens) and unpacked with pad_packed_sequence (AttnGAN's RNN_ENCODER).
 * Every sample runs only its own lens[b] steps; the reverse direction starts at t = lens[b]-1
 * from a zero state.
 *
 * Internally the valid steps are packed: sample b's step t is row off[b] + t (see lstm.h), so
 * the input projection x.W_ih^T of every step is one GEMM per direction, and padding never
 * enters a computation. Each recurrent step gathers the hidden states of the samples still
 * active and multiplies them by W_hh^T with one (Bact, H) x (H, 4H) GEMM. Backward is BPTT
 * over the same steps in reverse order; the weight and input gradients are then one GEMM each.
 * The two directions run on two OpenMP threads, each with single-threaded GEMMs; every sum has
 * a fixed order, so results are deterministic and independent of the thread count.
 */
#include "lstm.h"
#include "../core/profile.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

int lstm_pack_offsets(int *off, const int *lens, int B) {
    off[0] = 0;
    for (int b = 0; b < B; b++) off[b + 1] = off[b] + lens[b];
    return off[B];
}

int lstm_max_len(const int *lens, int B) {
    int m = 0;
    for (int b = 0; b < B; b++) m = lens[b] > m ? lens[b] : m;
    return m;
}

static inline float sigmoidf(float v) { return 1.0f / (1.0f + expf(-v)); }

/* The samples active at step s (s < lens[b]): their packed row at that step and the row of
 * the step before (-1 at s = 0). Returns how many. act, row, prow (B) */
static int active_rows(int *act, int *row, int *prow, const int *lens, const int *off, int B, int s, int reverse) {
    int na = 0;
    for (int b = 0; b < B; b++) {
        if (s >= lens[b]) continue;
        int t = reverse ? lens[b] - 1 - s : s;
        act[na] = b;
        row[na] = off[b] + t;
        prow[na] = s == 0 ? -1 : (reverse ? row[na] + 1 : row[na] - 1);
        na++;
    }
    return na;
}

/* xp (N, IN) = the valid rows of x (B, T, IN), packed. */
static void pack_input(float *xp, const float *x, const int *lens, const int *off, int B, int T, int IN) {
    for (int b = 0; b < B; b++)
        memcpy(xp + (size_t)off[b] * IN, x + (size_t)b * T * IN, (size_t)lens[b] * IN * sizeof(float));
}

/* gates (N, 4H) = xp (N, IN) . w_ih^T + b_ih + b_hh */
static void input_projection(float *gates, const float *xp, const LstmDirParams *p, int N, int IN, int H) {
    int G = 4 * H;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, G, IN, 1.0f, xp, IN, p->w_ih, IN, 0.0f, gates, G);
    if (!p->b_ih && !p->b_hh) return;
    for (int n = 0; n < N; n++) {
        float *r = gates + (size_t)n * G;
        for (int j = 0; j < G; j++) r[j] += (p->b_ih ? p->b_ih[j] : 0.0f) + (p->b_hh ? p->b_hh[j] : 0.0f);
    }
}

/* Runs fn(0) and fn(1) (the forward and the reverse direction): on two OpenMP threads, with
 * OpenBLAS set to one thread meanwhile, or one after the other when OpenMP has a single thread.
 * Either way every GEMM is single-threaded, so results do not depend on the thread count.
 * (Measured at AttnGAN's sizes on 2 cores: splitting the small per-step GEMMs over OpenBLAS
 * threads, or interleaving them with OpenMP regions, was up to several times slower.) */
typedef void (*DirFn)(int d, void *arg);
static void both_directions(DirFn fn, void *arg) {
    int par = omp_get_max_threads() > 1 && !omp_in_parallel();
    int blas_threads = openblas_get_num_threads();
    if (par) openblas_set_num_threads(1);
#pragma omp parallel for num_threads(2) schedule(static) if (par)
    for (int d = 0; d < 2; d++) fn(d, arg);
    if (par) openblas_set_num_threads(blas_threads);
}

/* One cell step on one row. gates (4H): pre-activations from the input in, activated i, f, g, o
 * out; rec (4H) or NULL: recurrent pre-activations h_prev.W_hh^T; c_prev (H) or NULL (zero);
 * c, h (H) the new state. */
static void cell_forward(float *gates, float *c, float *h, const float *rec, const float *c_prev, int H) {
    float *gi = gates, *gf = gates + H, *gg = gates + 2 * H, *go = gates + 3 * H;
    if (rec)
        for (int j = 0; j < 4 * H; j++) gates[j] += rec[j];
    for (int j = 0; j < H; j++) {
        float i = sigmoidf(gi[j]), f = sigmoidf(gf[j]), g = tanhf(gg[j]), o = sigmoidf(go[j]);
        float cn = i * g + (c_prev ? f * c_prev[j] : 0.0f);
        gi[j] = i, gf[j] = f, gg[j] = g, go[j] = o;
        c[j] = cn;
        h[j] = o * tanhf(cn);
    }
}

void lstm_dir_forward(float *h, float *c, float *gates, const float *w_hh, const int *lens, int B, int H, int reverse) {
    int G = 4 * H, Lmax = lstm_max_len(lens, B);
    int *off = xmalloc((size_t)(B + 1) * sizeof(int)), *idx = xmalloc((size_t)3 * B * sizeof(int));
    int *act = idx, *row = idx + B, *prow = idx + 2 * B;
    float *hb = xmalloc((size_t)B * H * sizeof(float));   /* (Bact, H) previous hidden states */
    float *rec = xmalloc((size_t)B * G * sizeof(float));  /* (Bact, 4H) their recurrent term */
    lstm_pack_offsets(off, lens, B);
    for (int s = 0; s < Lmax; s++) {
        int na = active_rows(act, row, prow, lens, off, B, s, reverse);
        if (s > 0) {
            for (int k = 0; k < na; k++) memcpy(hb + (size_t)k * H, h + (size_t)prow[k] * H, (size_t)H * sizeof(float));
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, na, G, H, 1.0f, hb, H, w_hh, H, 0.0f, rec, G);
        }
        for (int k = 0; k < na; k++) {
            size_t r = (size_t)row[k];
            cell_forward(gates + r * G, c + r * H, h + r * H, s > 0 ? rec + (size_t)k * G : NULL,
                         s > 0 ? c + (size_t)prow[k] * H : NULL, H);
        }
    }
    free(off), free(idx), free(hb), free(rec);
}

/* One cell step backward on one row. dgates (4H) receives the pre-activation gradients;
 * dh (H): gradient of this step's h (recurrent part, in), dout_h (H) or NULL its output part;
 * dc (H): gradient of this step's c in, of the previous step's c out. gates (4H), c (H) saved,
 * c_prev (H) or NULL (zero). */
static void cell_backward(float *dgates, const float *dh, const float *dout_h, float *dc, const float *gates,
                          const float *c, const float *c_prev, int H) {
    const float *gi = gates, *gf = gates + H, *gg = gates + 2 * H, *go = gates + 3 * H;
    for (int j = 0; j < H; j++) {
        float i = gi[j], f = gf[j], g = gg[j], o = go[j];
        float tc = tanhf(c[j]);
        float dht = dh[j] + (dout_h ? dout_h[j] : 0.0f);
        float dct = dc[j] + dht * o * (1.0f - tc * tc);
        dgates[j] = dct * g * i * (1.0f - i);
        dgates[H + j] = (c_prev ? dct * c_prev[j] : 0.0f) * f * (1.0f - f);
        dgates[2 * H + j] = dct * i * (1.0f - g * g);
        dgates[3 * H + j] = dht * tc * o * (1.0f - o);
        dc[j] = dct * f;
    }
}

/* dh, dc (B, H): the state gradients before the last step of each sample: dh from dh_n's half. */
static void init_state_grads(float *dh, float *dc, const float *dh_n, int B, int H, int reverse) {
    memset(dc, 0, (size_t)B * H * sizeof(float));
    if (!dh_n) {
        memset(dh, 0, (size_t)B * H * sizeof(float));
        return;
    }
    for (int b = 0; b < B; b++)
        memcpy(dh + (size_t)b * H, dh_n + (size_t)b * 2 * H + (reverse ? H : 0), (size_t)H * sizeof(float));
}

void lstm_dir_backward(float *dgates, const float *dout, const float *dh_n, const float *gates, const float *c,
                       const float *w_hh, const int *lens, int B, int H, int reverse) {
    int G = 4 * H, Lmax = lstm_max_len(lens, B);
    int *off = xmalloc((size_t)(B + 1) * sizeof(int)), *idx = xmalloc((size_t)3 * B * sizeof(int));
    int *act = idx, *row = idx + B, *prow = idx + 2 * B;
    float *dh = xmalloc((size_t)B * H * sizeof(float)), *dc = xmalloc((size_t)B * H * sizeof(float));
    float *dhb = xmalloc((size_t)B * H * sizeof(float));  /* (Bact, H) gradient of the previous h */
    float *gb = xmalloc((size_t)B * G * sizeof(float));   /* (Bact, 4H) this step's dgates */
    lstm_pack_offsets(off, lens, B);
    init_state_grads(dh, dc, dh_n, B, H, reverse);
    for (int s = Lmax - 1; s >= 0; s--) {
        int na = active_rows(act, row, prow, lens, off, B, s, reverse);
        for (int k = 0; k < na; k++) {
            int b = act[k];
            size_t r = (size_t)row[k], t = r - (size_t)off[b];
            const float *dout_h = dout ? dout + ((size_t)b * Lmax + t) * 2 * H + (reverse ? H : 0) : NULL;
            cell_backward(gb + (size_t)k * G, dh + (size_t)b * H, dout_h, dc + (size_t)b * H, gates + r * G, c + r * H,
                          s > 0 ? c + (size_t)prow[k] * H : NULL, H);
            memcpy(dgates + r * G, gb + (size_t)k * G, (size_t)G * sizeof(float));
        }
        if (s == 0) break;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, na, H, G, 1.0f, gb, G, w_hh, H, 0.0f, dhb, H);
        for (int k = 0; k < na; k++) memcpy(dh + (size_t)act[k] * H, dhb + (size_t)k * H, (size_t)H * sizeof(float));
    }
    free(off), free(idx), free(dh), free(dc), free(dhb), free(gb);
}

/* hp (N, H): the hidden state each row's step started from (zero at a sample's first step). */
static void previous_hidden(float *hp, const float *h, const int *lens, const int *off, int B, int H, int reverse) {
    for (int b = 0; b < B; b++) {
        const float *hb = h + (size_t)off[b] * H;
        float *pb = hp + (size_t)off[b] * H;
        size_t n = (size_t)(lens[b] - 1) * H;
        if (reverse) {
            memcpy(pb, hb + H, n * sizeof(float));
            memset(pb + n, 0, (size_t)H * sizeof(float));
        } else {
            memset(pb, 0, (size_t)H * sizeof(float));
            memcpy(pb + H, hb, n * sizeof(float));
        }
    }
}

/* Weight gradients of one direction from dgates (N, 4H), xp (N, IN), h (N, H); NULL skipped. */
static void weight_grads(const LstmDirGrads *g, const float *dgates, const float *xp, const float *h, const int *lens,
                         const int *off, int B, int N, int IN, int H, int reverse) {
    int G = 4 * H;
    if (g->w_ih) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, G, IN, N, 1.0f, dgates, G, xp, IN, 1.0f, g->w_ih, IN);
    if (g->w_hh) {
        float *hp = xmalloc((size_t)N * H * sizeof(float));
        previous_hidden(hp, h, lens, off, B, H, reverse);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, G, H, N, 1.0f, dgates, G, hp, H, 1.0f, g->w_hh, H);
        free(hp);
    }
    if (g->b_ih || g->b_hh) {
        float *db = xcalloc((size_t)G, sizeof(float));
        for (int n = 0; n < N; n++)
            for (int j = 0; j < G; j++) db[j] += dgates[(size_t)n * G + j];
        for (int j = 0; j < G; j++) {
            if (g->b_ih) g->b_ih[j] += db[j];
            if (g->b_hh) g->b_hh[j] += db[j];
        }
        free(db);
    }
}

/* out (B, Lmax, 2H) and h_n (B, 2H) from the packed hidden states hf, hr (N, H). */
static void unpack_outputs(float *out, float *h_n, const float *hf, const float *hr, const int *lens, const int *off,
                           int B, int Lmax, int H) {
    memset(out, 0, (size_t)B * Lmax * 2 * H * sizeof(float));
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < lens[b]; t++) {
            float *o = out + ((size_t)b * Lmax + t) * 2 * H;
            size_t r = (size_t)(off[b] + t) * H;
            memcpy(o, hf + r, (size_t)H * sizeof(float));
            memcpy(o + H, hr + r, (size_t)H * sizeof(float));
        }
        memcpy(h_n + (size_t)b * 2 * H, hf + (size_t)(off[b] + lens[b] - 1) * H, (size_t)H * sizeof(float));
        memcpy(h_n + (size_t)b * 2 * H + H, hr + (size_t)off[b] * H, (size_t)H * sizeof(float));
    }
}

/* What both directions share; each direction writes only its own half of every (2, ...) buffer
 * (and its own g[d]), so they can run at the same time. */
typedef struct DirArgs {
    float *h, *c, *gates;                 /* (2, N, H), (2, N, H), (2, N, 4H) */
    float *dgates, *dxp;                  /* backward scratch: (2, N, 4H), (2, N, IN) or NULL */
    const float *xp;                      /* (N, IN) packed input */
    const float *dout, *dh_n;             /* (B, Lmax, 2H), (B, 2H), either may be NULL */
    const LstmDirParams *p;               /* [2] */
    const LstmDirGrads *g;                /* [2] */
    const int *lens, *off;                /* (B), (B + 1) */
    int B, N, IN, H;
} DirArgs;

static void dir_forward_fn(int d, void *arg) {
    const DirArgs *a = arg;
    size_t NH = (size_t)a->N * a->H;
    float *gates = a->gates + d * 4 * NH;
    input_projection(gates, a->xp, &a->p[d], a->N, a->IN, a->H);
    lstm_dir_forward(a->h + d * NH, a->c + d * NH, gates, a->p[d].w_hh, a->lens, a->B, a->H, d);
}

static void dir_backward_fn(int d, void *arg) {
    const DirArgs *a = arg;
    size_t NH = (size_t)a->N * a->H;
    int G = 4 * a->H;
    float *dgates = a->dgates + d * 4 * NH;
    lstm_dir_backward(dgates, a->dout, a->dh_n, a->gates + d * 4 * NH, a->c + d * NH, a->p[d].w_hh, a->lens, a->B,
                      a->H, d);
    weight_grads(&a->g[d], dgates, a->xp, a->h + d * NH, a->lens, a->off, a->B, a->N, a->IN, a->H, d);
    if (a->dxp) /* dxp_d (N, IN) = dgates (N, 4H) . w_ih (4H, IN) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, a->N, a->IN, G, 1.0f, dgates, G, a->p[d].w_ih, a->IN, 0.0f,
                    a->dxp + (size_t)d * a->N * a->IN, a->IN);
}

void bilstm_forward(float *out, float *h_n, float *gates, float *c, float *h, const float *x, const LstmDirParams p[2],
                    const int *lens, int B, int T, int IN, int H) {
    int *off = xmalloc((size_t)(B + 1) * sizeof(int));
    int N = lstm_pack_offsets(off, lens, B), Lmax = lstm_max_len(lens, B);
    float *xp = xmalloc((size_t)N * IN * sizeof(float));
    pack_input(xp, x, lens, off, B, T, IN);
    DirArgs a = {.h = h, .c = c, .gates = gates, .xp = xp, .p = p, .lens = lens, .off = off, .B = B, .N = N, .IN = IN, .H = H};
    both_directions(dir_forward_fn, &a);
    unpack_outputs(out, h_n, h, h + (size_t)N * H, lens, off, B, Lmax, H);
    free(off), free(xp);
}

void bilstm_backward(float *dx, const LstmDirGrads g[2], const float *dout, const float *dh_n, const float *gates,
                     const float *c, const float *h, const float *x, const LstmDirParams p[2], const int *lens, int B,
                     int T, int IN, int H) {
    int *off = xmalloc((size_t)(B + 1) * sizeof(int));
    int N = lstm_pack_offsets(off, lens, B);
    float *xp = xmalloc((size_t)N * IN * sizeof(float));
    float *dgates = xmalloc((size_t)2 * N * 4 * H * sizeof(float));
    float *dxp = dx ? xmalloc((size_t)2 * N * IN * sizeof(float)) : NULL;
    pack_input(xp, x, lens, off, B, T, IN);
    DirArgs a = {.h = (float *)h, .c = (float *)c, .gates = (float *)gates, .dgates = dgates, .dxp = dxp, .xp = xp,
                 .dout = dout, .dh_n = dh_n, .p = p, .g = g, .lens = lens, .off = off, .B = B, .N = N, .IN = IN, .H = H};
    both_directions(dir_backward_fn, &a);
    if (dx) /* dx (B, T, IN) += both directions' packed input gradients, scattered back */
        for (int b = 0; b < B; b++) {
            float *dxb = dx + (size_t)b * T * IN;
            const float *d0 = dxp + (size_t)off[b] * IN, *d1 = d0 + (size_t)N * IN;
            for (size_t e = 0; e < (size_t)lens[b] * IN; e++) dxb[e] += d0[e] + d1[e];
        }
    free(off), free(xp), free(dgates), free(dxp);
}

/* ---------------------------------------------------------------- tape-level op */

typedef struct BilstmCtx {
    int B, T, IN, H, N;
    int *lens;                /* (B) copy of the caller's lengths */
    float *gates, *c, *h;     /* (2, N, 4H), (2, N, H), (2, N, H) */
} BilstmCtx;

/* Node inputs: x, then w_ih, w_hh, b_ih, b_hh of the forward and of the reverse direction. */
static void dir_params(LstmDirParams *p, Tensor *const *w) {
    p->w_ih = w[0]->data, p->w_hh = w[1]->data;
    p->b_ih = w[2] ? w[2]->data : NULL, p->b_hh = w[3] ? w[3]->data : NULL;
}

static void dir_grads(LstmDirGrads *g, Tensor *const *w) {
    g->w_ih = tensor_grad_or_null(w[0]), g->w_hh = tensor_grad_or_null(w[1]);
    g->b_ih = tensor_grad_or_null(w[2]), g->b_hh = tensor_grad_or_null(w[3]);
}

static void bilstm_bwd(Node *nd) {
    BilstmCtx *cx = nd->ctx;
    LstmDirParams p[2];
    LstmDirGrads g[2];
    for (int d = 0; d < 2; d++) {
        dir_params(&p[d], nd->in + 1 + 4 * d);
        dir_grads(&g[d], nd->in + 1 + 4 * d);
    }
    KERNEL(nd->tape->device, bilstm_backward, tensor_grad_or_null(nd->in[0]), g, nd->out[0]->grad, nd->out[1]->grad, cx->gates, cx->c, cx->h,
                    nd->in[0]->data, p, cx->lens, cx->B, cx->T, cx->IN, cx->H);
    /* per step and direction 4H x: H (recurrent dh, always), IN + H (dW, if trained), IN (dx, if needed) */
    PROFILE_OP_FLOPS(2.0 * 2 * cx->N * 4.0 * cx->H *
                     (cx->H + (nd->in[1]->requires_grad ? cx->IN + cx->H : 0) + (nd->in[0]->requires_grad ? cx->IN : 0)));
}

/* Shape checks of one direction's weights against IN; returns H. */
static int check_weights(const LstmWeights *w, const char *dir, int IN) {
    char s1[64], s2[64];
    CHECK(w && w->w_ih && w->w_hh, "bilstm: %s direction needs w_ih and w_hh", dir);
    int H = w->w_ih->shape[0] / 4;
    CHECK(w->w_ih->ndim == 2 && w->w_ih->shape[1] == IN && 4 * H == w->w_ih->shape[0] && H > 0,
          "bilstm: %s w_ih %s must be (4H, %d)", dir, tensor_shape_str(w->w_ih, s1, sizeof s1), IN);
    CHECK(w->w_hh->ndim == 2 && w->w_hh->shape[0] == 4 * H && w->w_hh->shape[1] == H,
          "bilstm: %s w_hh %s must be (%d, %d) for w_ih %s", dir, tensor_shape_str(w->w_hh, s1, sizeof s1), 4 * H, H,
          tensor_shape_str(w->w_ih, s2, sizeof s2));
    CHECK(!w->b_ih || (w->b_ih->ndim == 1 && w->b_ih->shape[0] == 4 * H), "bilstm: %s b_ih %s must be (%d)", dir,
          tensor_shape_str(w->b_ih, s1, sizeof s1), 4 * H);
    CHECK(!w->b_hh || (w->b_hh->ndim == 1 && w->b_hh->shape[0] == 4 * H), "bilstm: %s b_hh %s must be (%d)", dir,
          tensor_shape_str(w->b_hh, s1, sizeof s1), 4 * H);
    return H;
}

static int inputs_need_grad(Tensor *const *in, int n) {
    for (int i = 0; i < n; i++)
        if (in[i] && in[i]->requires_grad) return 1;
    return 0;
}

Tensor *op_bilstm(Tape *tp, Tensor *x, const int *lens, const LstmWeights *fwd, const LstmWeights *rev,
                  Tensor **h_n) {
    PROFILE_OP_BEGIN();
    char s1[64];
    CHECK(x && x->ndim == 3, "bilstm: x must be (B, T, IN), got %s", x ? tensor_shape_str(x, s1, sizeof s1) : "NULL");
    CHECK(lens && h_n, "bilstm: lens and h_n must not be NULL");
    int B = x->shape[0], T = x->shape[1], IN = x->shape[2];
    CHECK(B > 0 && T > 0 && IN > 0, "bilstm: empty x %s", tensor_shape_str(x, s1, sizeof s1));
    for (int b = 0; b < B; b++) CHECK(lens[b] >= 1 && lens[b] <= T, "bilstm: lens[%d] = %d not in 1..%d", b, lens[b], T);
    int H = check_weights(fwd, "forward", IN), Hr = check_weights(rev, "reverse", IN);
    CHECK(H == Hr, "bilstm: forward hidden size %d != reverse hidden size %d", H, Hr);

    Tensor *in[] = {x, fwd->w_ih, fwd->w_hh, fwd->b_ih, fwd->b_hh, rev->w_ih, rev->w_hh, rev->b_ih, rev->b_hh};
    /* saved values live on the arena when backward will need them, else in a temporary buffer */
    int keep = tape_grad_enabled(tp) && inputs_need_grad(in, 9);
    BilstmCtx cx = {B, T, IN, H, 0, NULL, NULL, NULL, NULL};
    for (int b = 0; b < B; b++) cx.N += lens[b];
    size_t nsave = (size_t)2 * cx.N * 6 * H;
    float *save = keep ? tape_dev_alloc(tp, nsave * sizeof(float))
                       : tp->device ? device_alloc(tp->device, nsave * sizeof(float)) : xmalloc(nsave * sizeof(float));
    cx.gates = save, cx.c = save + (size_t)2 * cx.N * 4 * H, cx.h = cx.c + (size_t)2 * cx.N * H;

    Tensor *y = TNEW(tp, B, lstm_max_len(lens, B), 2 * H), *hn = TNEW(tp, B, 2 * H);
    LstmDirParams p[2];
    dir_params(&p[0], in + 1);
    dir_params(&p[1], in + 5);
    KERNEL(tp->device, bilstm_forward, y->data, hn->data, cx.gates, cx.c, cx.h, x->data, p, lens, B, T, IN, H);
    PROFILE_OP_FLOPS(2.0 * 2 * cx.N * 4.0 * H * (IN + H)); /* 2 directions, 4H(IN+H) MACs per step */
    Tensor *outs[] = {y, hn};
    Node *nd = TAPE_RECORD(tp, "bilstm", bilstm_bwd, in, outs);
    CHECK(!nd == !keep, "bilstm: recorded %d, but saved values kept %d", nd != NULL, keep);
    if (nd) {
        cx.lens = tape_alloc(tp, (size_t)B * sizeof(int));
        memcpy(cx.lens, lens, (size_t)B * sizeof(int));
        BilstmCtx *c = tape_alloc(tp, sizeof *c);
        *c = cx;
        nd->ctx = c;
    } else if (tp->device) {
        device_free(tp->device, save);
    } else {
        free(save);
    }
    *h_n = hn;
    return y;
}
