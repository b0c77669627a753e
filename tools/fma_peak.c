/* fma_peak.c: the machine's fp32 compute ceiling, measured: every thread runs 12 independent chains
 * of fused multiply-adds on the widest vectors this build targets (AVX-512: 16 floats, else AVX2:
 * 8), so nothing but the FMA units limits it; the best of 5 runs of about 0.3 s.
 * usage: fma_peak [THREADS]   (default: OpenMP's count)
 * Prints "fma_peak: T threads, W-bit FMA: X GFLOP/s (best of 5)". scripts/bench.sh reports our
 * GFLOP/s against it next to the SGEMM ceiling (OpenBLAS's kernels may not use the widest units).
 * A measurement for the benchmark, not a test. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define CHAINS 12

#if defined(__AVX512F__)
#define VBITS 512
typedef __m512 vec;
#define VSET(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VSUM(a) _mm512_reduce_add_ps(a)
#elif defined(__FMA__)
#define VBITS 256
typedef __m256 vec;
#define VSET(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VADD(a, b) _mm256_add_ps(a, b)
static float vsum(__m256 a) {
    float t[8];
    _mm256_storeu_ps(t, a);
    return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}
#define VSUM(a) vsum(a)
#else
#error "fma_peak needs FMA (build with -march=native on an x86-64 CPU that has it)"
#endif

/* iters rounds of CHAINS FMAs per thread; returns a value that depends on all of them */
static float run(long iters) {
    float out = 0.0f;
#pragma omp parallel reduction(+ : out)
    {
        vec a[CHAINS];
        for (int i = 0; i < CHAINS; i++) a[i] = VSET(1.0f + 1e-3f * (float)(i + omp_get_thread_num()));
        const vec b = VSET(0.9999999f), c = VSET(1e-7f);
        for (long it = 0; it < iters; it++)
            for (int i = 0; i < CHAINS; i++) a[i] = VFMA(a[i], b, c);
        vec s = a[0];
        for (int i = 1; i < CHAINS; i++) s = VADD(s, a[i]);
        out += VSUM(s);
    }
    return out;
}

int main(int argc, char **argv) {
    if (argc > 1) {
        int t = atoi(argv[1]);
        if (t < 1) {
            fprintf(stderr, "fma_peak: THREADS '%s' must be a positive integer\n", argv[1]);
            return 2;
        }
        omp_set_num_threads(t);
    }
    int threads = omp_get_max_threads();
    const long iters = 8000000; /* 12 x 8e6 x 16 lanes x 2 = 3 GFLOP per thread with AVX-512 */
    double best = 0.0;
    float sink = run(iters / 10); /* wake the cores up */
    for (int r = 0; r < 5; r++) {
        double t0 = omp_get_wtime();
        sink += run(iters);
        double dt = omp_get_wtime() - t0;
        double gflops = (double)threads * iters * CHAINS * (VBITS / 32) * 2.0 / dt * 1e-9;
        if (gflops > best) best = gflops;
    }
    printf("fma_peak: %d threads, %d-bit FMA: %.1f GFLOP/s (best of 5)%s\n", threads, VBITS, best, sink == 0.0f ? " " : "");
    return 0;
}
