/* lstm.h: single-layer bidirectional LSTM over variable-length (packed) sequences, PyTorch layout.
 * Tape-level ops return a new tensor on the tape and record their backward; see src/ops/README.md
 * for the op contract. */
#ifndef ATTNGAN_OPS_LSTM_H
#define ATTNGAN_OPS_LSTM_H

#include "../core/core.h"

/* Weights of one direction, PyTorch nn.LSTM layout with gate order i, f, g, o:
 * w_ih (4H, I), w_hh (4H, H), b_ih (4H), b_hh (4H). */
typedef struct LstmWeights {
    Tensor *w_ih, *w_hh, *b_ih, *b_hh;
} LstmWeights;

/* x (B, T, I); lens[b] in 1..T (any order). h0 = c0 = 0.
 * Returns out (B, Lmax, 2H) with Lmax = max(lens): out[b, t, :H] the forward h_t, out[b, t, H:]
 * the reverse h_t (the reverse direction starts at t = lens[b]-1), zeros for t >= lens[b].
 * *h_n receives (B, 2H) = [forward h at lens[b]-1, reverse h at t = 0]. */
Tensor *op_bilstm(Tape *tp, Tensor *x, const int *lens, const LstmWeights *fwd, const LstmWeights *rev,
                  Tensor **h_n);

/* ---- Kernels. Packed layout: sample b's step t (t < lens[b]) is row off[b] + t of an (N, ...)
 * matrix, off[b] = lens[0] + ... + lens[b-1], N = sum of lens (no padding rows). The kernels of
 * one direction take `reverse` (0: t = 0 .. lens[b]-1, 1: t = lens[b]-1 .. 0). */

/* Raw weights of one direction: w_ih (4H, IN), w_hh (4H, H), b_ih (4H) or NULL, b_hh (4H) or NULL. */
typedef struct LstmDirParams {
    const float *w_ih, *w_hh, *b_ih, *b_hh;
} LstmDirParams;

/* Their gradients, same shapes; backward adds into each one that is not NULL. */
typedef struct LstmDirGrads {
    float *w_ih, *w_hh, *b_ih, *b_hh;
} LstmDirGrads;

/* off (B + 1): packed row offsets of lens (B); returns N = off[B]. */
int lstm_pack_offsets(int *off, const int *lens, int B);
/* max(lens (B)) */
int lstm_max_len(const int *lens, int B);

/* One direction's recurrence (the input projection is done by the caller). gates (N, 4H): in,
 * the input pre-activations x.w_ih^T + b_ih + b_hh of every packed row; out, the activated gates
 * i, f, g, o (saved for backward). h (N, H), c (N, H): hidden and cell state per row. w_hh (4H, H). */
void lstm_dir_forward(float *h, float *c, float *gates, const float *w_hh, const int *lens, int B, int H, int reverse);
/* Its backward through time. dgates (N, 4H) receives (overwritten) the gradient of the gate
 * pre-activations. dout (B, Lmax, 2H) or NULL, dh_n (B, 2H) or NULL: the bidirectional output
 * gradients, of which this direction reads its half (columns [0, H) forward, [H, 2H) reverse).
 * gates (N, 4H), c (N, H) from lstm_dir_forward. */
void lstm_dir_backward(float *dgates, const float *dout, const float *dh_n, const float *gates, const float *c,
                       const float *w_hh, const int *lens, int B, int H, int reverse);

/* Bidirectional forward. out (B, Lmax, 2H) (zeros past lens[b]), h_n (B, 2H); saved values
 * gates (2, N, 4H), c (2, N, H), h (2, N, H) (direction-major); x (B, T, IN); p[2] forward, reverse. */
void bilstm_forward(float *out, float *h_n, float *gates, float *c, float *h, const float *x, const LstmDirParams p[2],
                    const int *lens, int B, int T, int IN, int H);
/* Bidirectional backward: dx (B, T, IN) or NULL and g[2]'s gradients += from dout (B, Lmax, 2H)
 * and dh_n (B, 2H) (either may be NULL). Saved values and inputs as in bilstm_forward. */
void bilstm_backward(float *dx, const LstmDirGrads g[2], const float *dout, const float *dh_n, const float *gates,
                     const float *c, const float *h, const float *x, const LstmDirParams p[2], const int *lens, int B,
                     int T, int IN, int H);

/* ---- CUDA twins (src/ops/cuda/lstm.cu, built by `make CUDA=1`): the contracts above over device
 * pointers, on the backend's stream (cu_stream), without synchronising. Every float pointer, and
 * every pointer inside LstmDirParams / LstmDirGrads, is device memory; `lens` (B) is HOST memory
 * (any order, as above: the twins sort the samples by length on the host to size each step's
 * launches and upload the order with cudaMemcpyAsync); the structs p[2] / g[2] themselves are host
 * structs. lstm_pack_offsets and lstm_max_len are host functions of lens and need no twin. */
void lstm_dir_forward_cuda(float *h, float *c, float *gates, const float *w_hh, const int *lens, int B, int H, int reverse);
void lstm_dir_backward_cuda(float *dgates, const float *dout, const float *dh_n, const float *gates, const float *c,
                            const float *w_hh, const int *lens, int B, int H, int reverse);
void bilstm_forward_cuda(float *out, float *h_n, float *gates, float *c, float *h, const float *x, const LstmDirParams p[2],
                         const int *lens, int B, int T, int IN, int H);
void bilstm_backward_cuda(float *dx, const LstmDirGrads g[2], const float *dout, const float *dh_n, const float *gates,
                          const float *c, const float *h, const float *x, const LstmDirParams p[2], const int *lens, int B,
                          int T, int IN, int H);

#endif
