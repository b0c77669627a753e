/* threads.c: thread-count control for OpenMP and OpenBLAS, fitted to the load (threads.h). */
#include "threads.h"

#include <dirent.h>
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

extern void openblas_set_num_threads(int);

static int g_threads = 0;

/* procs_running of /proc/stat: the machine's runnable threads, this one included; -1 without. */
static int procs_running(void) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "procs_running ", 14)) {
            n = atoi(line + 14);
            break;
        }
    fclose(f);
    return n;
}

/* This process's threads in state R (running or runnable), from /proc/self/task/<tid>/stat. */
static int own_running(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return 1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/self/task/%.20s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t k = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[k] = 0;
        const char *p = strrchr(buf, ')'); /* "tid (comm) S ...": comm may hold spaces */
        if (p && p[1] == ' ' && p[2] == 'R') n++;
    }
    closedir(d);
    return n > 0 ? n : 1;
}

/* cores: the CPUs this process may run on; free: those not taken by other runnable threads
 * (may be 0). */
static void load_now(int *cores_out, int *free_out) {
    int cores = omp_get_num_procs(); /* the CPUs this process may run on */
    int others = INT_MAX;
    for (int i = 0; i < THREADS_LOAD_SAMPLES; i++) {
        int all = procs_running(), own = own_running();
        if (all < 0) { /* no /proc: assume an idle machine */
            *cores_out = *free_out = cores;
            return;
        }
        if (all - own < others) others = all - own;
        if (i + 1 < THREADS_LOAD_SAMPLES) {
            struct timespec ts = {0, 2 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    if (others < 0) others = 0;
    *cores_out = cores;
    *free_out = cores - others > 0 ? cores - others : 0;
}

int threads_free_cores(void) {
    int cores, free;
    load_now(&cores, &free);
    return free < 1 ? 1 : free;
}

int threads_heavily_loaded(void) {
    int cores, free;
    load_now(&cores, &free);
    return 2 * free < cores;
}

int threads_passive(void) {
    const char *p = getenv("OMP_WAIT_POLICY");
    return p && !strcasecmp(p, "passive");
}

int threads_default(void) {
    int cores, free;
    load_now(&cores, &free);
    if (2 * free < cores && threads_passive()) return cores; /* a fair share of a busy machine, no spinning */
    return free < 1 ? 1 : free;
}

void threads_set(int n) {
    if (n <= 0) {
        const char *env = getenv("OMP_NUM_THREADS");
        n = env && atoi(env) > 0 ? atoi(env) : threads_default();
    }
    g_threads = n;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int threads_get(void) {
    if (!g_threads) threads_set(0);
    return g_threads;
}
