/* threads.c: thread-count control for OpenMP and OpenBLAS. */
#include "threads.h"

#include <omp.h>
#include <stdlib.h>

extern void openblas_set_num_threads(int);

static int g_threads = 0;

void threads_set(int n) {
    if (n <= 0) {
        const char *env = getenv("OMP_NUM_THREADS");
        n = env && atoi(env) > 0 ? atoi(env) : omp_get_num_procs();
    }
    g_threads = n;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int threads_get(void) {
    if (!g_threads) threads_set(0);
    return g_threads;
}
