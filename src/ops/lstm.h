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

#endif
