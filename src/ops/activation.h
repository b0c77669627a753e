/* activation.h: element-wise activations: relu, leaky relu, tanh, sigmoid, and GLU.
 * Tape-level ops return a new tensor on the tape and record their backward; see src/ops/README.md
 * for the op contract. */
#ifndef ATTNGAN_OPS_ACTIVATION_H
#define ATTNGAN_OPS_ACTIVATION_H

#include "../core/core.h"

/* derivative at exactly 0: relu 0, leaky relu `slope` (as PyTorch) */
Tensor *op_relu(Tape *tp, Tensor *x);
Tensor *op_leaky_relu(Tape *tp, Tensor *x, float slope);
Tensor *op_tanh(Tape *tp, Tensor *x);
Tensor *op_sigmoid(Tape *tp, Tensor *x);
/* GLU along `dim` (size 2C): first half * sigmoid(second half) -> size C along dim. */
Tensor *op_glu(Tape *tp, Tensor *x, int dim);

#endif
