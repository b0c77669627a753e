/* fma_peak.c: the machine's fp32 compute ceiling, measured: every thread runs 12 independent chains
 * of fused multiply-adds on the widest vectors the CPU has (AVX-512: 16 floats, else AVX2 + FMA:
 * 8; chosen at run time, so any build of the tools works), so nothing but the FMA units limits it;
 * the best of 5 runs of about 0.3 s.
 * usage: fma_peak [THREADS]   (default: OpenMP's count)
 * Prints "fma_peak: T threads, W-bit FMA: X GFLOP/s (best of 5)". scripts/bench.sh reports our
 * GFLOP/s against it next to the SGEMM ceiling (OpenBLAS's kernels may not use the widest units).
 * A measurement for the benchmark, not a test. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define CHAINS 12

/* iters rounds of CHAINS FMAs per thread; returns a value that depends on all of them */
__attribute__((target("avx512f"))) static float run512(long iters) {
    float out = 0.0f;
#pragma omp parallel reduction(+ : out)
    {
        __m512 a[CHAINS];
        for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_ps(1.0f + 1e-3f * (float)(i + omp_get_thread_num()));
        const __m512 b = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
        for (long it = 0; it < iters; it++)
            for (int i = 0; i < CHAINS; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
        __m512 s = a[0];
        for (int i = 1; i < CHAINS; i++) s = _mm512_add_ps(s, a[i]);
        out += _mm512_reduce_add_ps(s);
    }
    return out;
}

__attribute__((target("avx2,fma"))) static float run256(long iters) {
    float out = 0.0f;
#pragma omp parallel reduction(+ : out)
    {
        __m256 a[CHAINS];
        for (int i = 0; i < CHAINS; i++) a[i] = _mm256_set1_ps(1.0f + 1e-3f * (float)(i + omp_get_thread_num()));
        const __m256 b = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
        for (long it = 0; it < iters; it++)
            for (int i = 0; i < CHAINS; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
        __m256 s = a[0];
        for (int i = 1; i < CHAINS; i++) s = _mm256_add_ps(s, a[i]);
        float t[8];
        _mm256_storeu_ps(t, s);
        out += t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
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
    __builtin_cpu_init();
    int bits = __builtin_cpu_supports("avx512f") ? 512 : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 256 : 0;
    if (!bits) {
        fprintf(stderr, "fma_peak: this CPU has neither AVX-512 nor AVX2 with FMA\n");
        return 1;
    }
    float (*run)(long) = bits == 512 ? run512 : run256;
    int threads = omp_get_max_threads();
    const long iters = 8000000; /* 12 x 8e6 x 16 lanes x 2 = 3 GFLOP per thread with AVX-512 */
    double best = 0.0;
    float sink = run(iters / 10); /* wake the cores up */
    for (int r = 0; r < 5; r++) {
        double t0 = omp_get_wtime();
        sink += run(iters);
        double dt = omp_get_wtime() - t0;
        double gflops = (double)threads * iters * CHAINS * (bits / 32) * 2.0 / dt * 1e-9;
        if (gflops > best) best = gflops;
    }
    /* the sink keeps the chains from being optimised away */
    printf("fma_peak: %d threads, %d-bit FMA: %.1f GFLOP/s (best of 5)%s\n", threads, bits, best, sink == 0.0f ? " " : "");
    return 0;
}
