/* vmath.h: element-wise transcendental kernels over arrays, vectorised.
 *
 * With AVX-512 (this project's build uses -march=native), exp is a Cephes-style range reduction
 * and degree-6 polynomial with FMA, 16 lanes at a time: within 2 ulp of expf where expf is normal
 * (tests/test_activation.c measures it), +inf above ln(FLT_MAX), zero below about -104, NaN for
 * NaN. tanh: an odd polynomial below |x| = 0.55, (1 - e) / (1 + e) with e = exp(-2|x|) above,
 * within 4 half-ulps of the double-precision value (measured in the same test). Without AVX-512
 * the same functions call expf / tanhf element by element.
 */
#ifndef ATTNGAN_OPS_VMATH_H
#define ATTNGAN_OPS_VMATH_H

#include <stdint.h>

/* y (n) = exp(x) */
void vexp(float *y, const float *x, int64_t n);
/* y (n) = 1 / (1 + exp(-x)) */
void vsigmoid(float *y, const float *x, int64_t n);
/* y (n) = tanh(x) */
void vtanh(float *y, const float *x, int64_t n);
/* y (n) = a * sigmoid(b) (GLU) */
void vglu(float *y, const float *a, const float *b, int64_t n);

#endif
