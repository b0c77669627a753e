/* threads.h: one place that sets the thread count of OpenMP and OpenBLAS together, and the
 * default fitted to the machine's load (docs/PERFORMANCE.md, "Threads on a busy machine").
 *
 * Spinning OpenMP threads (libgomp's default wait policy) are fast when each has a core of its
 * own and collapse when they share cores with other work; passive ones cost a little on an idle
 * machine and take a fair share of a busy one. The load now: the CPUs this process may use (its
 * affinity mask) and, of them, those not taken by other processes' runnable threads
 * (/proc/stat's procs_running less this process's own running threads, the least of a few
 * readings). The default (threads_default), as measured in docs/PERFORMANCE.md:
 *   - at least half the cores free: spinning threads, one per free core (every core when idle);
 *   - fewer free: the passive policy (src/app/main.c starts the program again with
 *     OMP_WAIT_POLICY=passive: libgomp reads it once, at load) and a thread per core;
 *   - serve and eval always wait passively (a server idles between requests; 5% at idle).
 * OMP_WAIT_POLICY or OMP_NUM_THREADS set by the user, or --threads, are kept as given. */
#ifndef ATTNGAN_THREADS_H
#define ATTNGAN_THREADS_H

#define THREADS_LOAD_SAMPLES 5   /* readings of the load, 2 ms apart */

/* n <= 0: OMP_NUM_THREADS when set, else threads_default(). */
void threads_set(int n);
int threads_get(void);
/* The cores free for this process now (at least 1; all of them without /proc). */
int threads_free_cores(void);
/* Fewer than half the cores are free now. */
int threads_heavily_loaded(void);
/* OMP_WAIT_POLICY is passive in this process. */
int threads_passive(void);
/* The default count for the load now (above). */
int threads_default(void);

#endif
