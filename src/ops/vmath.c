/* vmath.c: vectorised exp / sigmoid / tanh / GLU; see vmath.h. */
#include "vmath.h"

#include <math.h>

#if defined(__AVX512F__)
#include <immintrin.h>

/* exp of 16 lanes, as expf: NaN stays NaN, above ln(FLT_MAX) +inf, below about -104 zero, and the
 * denormal range through a scale split in two factors (2^n = 2^(n/2) * 2^(n - n/2)) */
static inline __m512 exp16(__m512 x) {
    __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    __mmask16 big = _mm512_cmp_ps_mask(x, _mm512_set1_ps(88.72283f), _CMP_GT_OQ);
    __m512 c = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(88.72283f));
    __m512 n = _mm512_roundscale_ps(_mm512_fmadd_ps(c, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(0.5f)),
                                    _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), c);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i ni = _mm512_cvtps_epi32(n), bias = _mm512_set1_epi32(127);
    __m512i n1 = _mm512_srai_epi32(ni, 1), n2 = _mm512_sub_epi32(ni, n1);
    __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, bias), 23));
    __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, bias), 23));
    __m512 y = _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
    y = _mm512_mask_mov_ps(y, big, _mm512_set1_ps(INFINITY));
    return _mm512_mask_mov_ps(y, nan, x);
}

static inline __m512 sigmoid16(__m512 x) {
    __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

/* tanh of 16 lanes: for |x| < 0.55 the odd Taylor series to x^17 (truncation below 1e-8
 * relative), else sign(x) (1 - e) / (1 + e) with e = exp(-2|x|) (no cancellation there: e < 0.34);
 * +-inf -> +-1, NaN -> NaN */
static inline __m512 tanh16(__m512 x) {
    __m512 x2 = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(5.90027441e-4f);
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-1.45583438e-3f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(3.59212803e-3f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-8.86323552e-3f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(2.18694885e-2f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-5.39682540e-2f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(1.33333333e-1f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-3.33333333e-1f));
    __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, x2), x, x);
    __m512 ax = _mm512_abs_ps(x), one = _mm512_set1_ps(1.0f);
    __m512 e = exp16(_mm512_mul_ps(ax, _mm512_set1_ps(-2.0f)));
    __m512 t = _mm512_div_ps(_mm512_sub_ps(one, e), _mm512_add_ps(one, e));
    t = _mm512_mask_mov_ps(t, _mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.55f), _CMP_LT_OQ), small);
    return _mm512_or_ps(_mm512_abs_ps(t), _mm512_and_ps(x, _mm512_set1_ps(-0.0f))); /* odd: x's sign (-0 too) */
}

static inline __mmask16 tail_mask(int64_t left) { return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1); }

void vexp(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, exp16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

void vsigmoid(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, sigmoid16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

void vtanh(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, tanh16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

void vglu(float *y, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 s = sigmoid16(_mm512_maskz_loadu_ps(m, b + i));
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, a + i), s));
    }
}

#else /* portable */

void vexp(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = expf(x[i]);
}

void vsigmoid(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}

void vglu(float *y, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = a[i] * (1.0f / (1.0f + expf(-b[i])));
}

void vtanh(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

#endif
