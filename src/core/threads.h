/* threads.h: one place that sets the thread count of OpenMP and OpenBLAS together. */
#ifndef ATTNGAN_THREADS_H
#define ATTNGAN_THREADS_H

/* n <= 0: use the machine's cores (or OMP_NUM_THREADS when set). */
void threads_set(int n);
int threads_get(void);

#endif
