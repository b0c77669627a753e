/* cuda_test.h: what every tests/cuda/test_cuda_<family>.c shares (make test-cuda; built only with
 * CUDA=1): device copies of host arrays, seeded random inputs, and the comparison of a device
 * result with the CPU kernel's, which prints the norm-relative error it saw.
 *
 * Bounds: TOL_EW (1e-5) for element-wise kernels (the same formulas in fp32), TOL_RED (1e-4) for
 * reductions, matrix products and convolutions (other summation orders). A test file's main()
 * calls cuda_test_begin(name), which skips visibly when no CUDA device is usable. */
#ifndef ATTNGAN_CUDA_TEST_H
#define ATTNGAN_CUDA_TEST_H

#include "../test.h"
#include "../../src/ops/cuda/cuda_rt.h"

#include <stdlib.h>
#include <string.h>

#define TOL_EW 1e-5
#define TOL_RED 1e-4

/* a device copy of n host floats */
static inline float *up(const float *h, int64_t n) {
    float *d = cu_alloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (n > 0) cu_upload(d, h, (size_t)n * sizeof(float));
    return d;
}

/* n seeded uniform floats in [lo, hi) on the heap */
static inline float *rnd(int64_t n, float lo, float hi, uint64_t seed) {
    float *h = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    fill_uniform(h, n, lo, hi, seed);
    return h;
}

/* compares device d (n) with host want and prints the error; frees d */
static inline void check(const char *what, float *d, const float *want, int64_t n, double tol) {
    float *got = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    cu_download(got, d, (size_t)n * sizeof(float));
    double mx, r = rel_err(got, want, n, &mx);
    printf("  %-40s rel err %.2e (max abs %.2e) over %lld\n", what, r, mx, (long long)n);
    EXPECT(r <= tol, "%s: rel err %.3g > %.1g", what, r, tol);
    free(got);
    cu_free(d);
}

/* test_begin(name); 0 (after a visible skip) when no CUDA device is usable */
static inline int cuda_test_begin(const char *name) {
    test_begin(name);
    const char *why = "";
    if (!cu_available(&why)) {
        test_skip("no CUDA device here (%s): every check of %s skipped", why, name);
        return 0;
    }
    return 1;
}

#endif
