/* profile.c: the per-op profiler; see profile.h. */
#include "profile.h"
#include "error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROFILE_MAX_ROWS 128

atomic_int profile_on_flag = 0;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static ProfileRow g_rows[PROFILE_MAX_ROWS];
static int g_n_rows;
static int64_t g_missing_begin;

/* The op running on this thread: its start (ms, < 0: none) and a FLOP count it reported (< 0: none). */
static _Thread_local double tl_t0 = -1.0;
static _Thread_local double tl_flops = -1.0;

double profile_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

void profile_enable(int on) { atomic_store(&profile_on_flag, on ? 1 : 0); }

#define PROFILE_MAX_DETAILS 256
static ProfileDetail g_details[PROFILE_MAX_DETAILS];
static int g_n_details;

void profile_reset(void) {
    pthread_mutex_lock(&g_lock);
    memset(g_rows, 0, sizeof g_rows);
    g_n_rows = 0;
    memset(g_details, 0, sizeof g_details);
    g_n_details = 0;
    g_missing_begin = 0;
    pthread_mutex_unlock(&g_lock);
}

/* Under the lock. Ops beyond the table's size share one "(other ops)" row. */
static ProfileRow *row_for(const char *op) {
    for (int i = 0; i < g_n_rows; i++)
        if (!strcmp(g_rows[i].op, op)) return &g_rows[i];
    if (g_n_rows == PROFILE_MAX_ROWS - 1) {
        ProfileRow *r = &g_rows[PROFILE_MAX_ROWS - 1];
        if (!r->op[0]) snprintf(r->op, sizeof r->op, "(other ops)");
        return r;
    }
    ProfileRow *r = &g_rows[g_n_rows++];
    snprintf(r->op, sizeof r->op, "%s", op);
    return r;
}

static void book(const char *op, int dir, double ms, double flops, double bytes, int missing) {
    pthread_mutex_lock(&g_lock);
    ProfileStat *s = &row_for(op ? op : "?")->s[dir ? 1 : 0];
    s->calls++;
    s->ms += ms;
    s->flops += flops;
    s->bytes += bytes;
    g_missing_begin += missing;
    pthread_mutex_unlock(&g_lock);
}

void profile_add(const char *op, int dir, double ms, double flops, double bytes) { book(op, dir, ms, flops, bytes, 0); }

void profile_fwd_begin(void) {
    tl_t0 = profile_now_ms();
    tl_flops = -1.0;
}

void profile_set_flops(double flops) { tl_flops = flops; }

/* One forward's FLOPs from the shapes (2 per multiply-add), for the ops whose count they give. */
static double shape_flops(const char *op, int n_in, Tensor *const *in, int n_out, Tensor *const *out) {
    if (n_in < 2 || n_out < 1 || !in[0] || !in[1] || !out[0]) return 0.0;
    const Tensor *w = in[1], *y = out[0];
    if (!strcmp(op, "conv2d") && w->ndim == 4) return 2.0 * (double)y->n * w->shape[1] * w->shape[2] * w->shape[3];
    if (!strcmp(op, "linear") && w->ndim == 2) return 2.0 * (double)y->n * w->shape[1];
    /* bmm: out (B, M, N), a (B, M, K) or (B, K, M): B*M*N*K = a.n * N */
    if (!strcmp(op, "bmm") && y->ndim >= 1) return 2.0 * (double)in[0]->n * y->shape[y->ndim - 1];
    return 0.0;
}

static double elems(int n, Tensor *const *t, int only_grad) {
    double s = 0;
    for (int i = 0; i < n; i++)
        if (t[i] && (!only_grad || t[i]->requires_grad)) s += (double)t[i]->n;
    return s;
}

void profile_fwd_end(const char *op, int n_in, Tensor *const *in, int n_out, Tensor *const *out) {
    double t1 = profile_now_ms();
    int missing = tl_t0 < 0;
    double ms = missing ? 0.0 : t1 - tl_t0;
    double fl = tl_flops >= 0 ? tl_flops : shape_flops(op, n_in, in, n_out, out);
    tl_t0 = tl_flops = -1.0;
    book(op, PROFILE_FWD, ms, fl, 4.0 * (elems(n_in, in, 0) + elems(n_out, out, 0)), missing);
}

void profile_bwd_end(const Node *nd, double t0_ms) {
    double ms = profile_now_ms() - t0_ms;
    double fl = tl_flops;
    tl_flops = -1.0;
    if (fl < 0) {
        fl = shape_flops(nd->op, nd->n_in, nd->in, nd->n_out, nd->out);
        if (fl > 0) fl *= (nd->in[0]->requires_grad ? 1 : 0) + (nd->in[1]->requires_grad ? 1 : 0);
    }
    double bytes = 4.0 * (elems(nd->n_in, nd->in, 0) + elems(nd->n_out, nd->out, 0) + elems(nd->n_in, nd->in, 1));
    book(nd->op, PROFILE_BWD, ms, fl, bytes, 0);
}

int profile_rows(ProfileRow *rows, int max) {
    pthread_mutex_lock(&g_lock);
    int n = 0;
    for (int i = 0; i < PROFILE_MAX_ROWS && n < max; i++)
        if (g_rows[i].op[0]) rows[n++] = g_rows[i];
    pthread_mutex_unlock(&g_lock);
    return n;
}

ProfileStat profile_total(int dir) {
    ProfileRow rows[PROFILE_MAX_ROWS];
    int n = profile_rows(rows, PROFILE_MAX_ROWS);
    ProfileStat t = {0, 0, 0, 0};
    for (int i = 0; i < n; i++) {
        const ProfileStat *s = &rows[i].s[dir ? 1 : 0];
        t.calls += s->calls;
        t.ms += s->ms;
        t.flops += s->flops;
        t.bytes += s->bytes;
    }
    return t;
}

ProfileStat profile_get(const char *op, int dir) {
    ProfileStat s = {0, 0, 0, 0};
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < PROFILE_MAX_ROWS; i++)
        if (g_rows[i].op[0] && !strcmp(g_rows[i].op, op)) s = g_rows[i].s[dir ? 1 : 0];
    pthread_mutex_unlock(&g_lock);
    return s;
}

int64_t profile_missing_begin(void) {
    pthread_mutex_lock(&g_lock);
    int64_t m = g_missing_begin;
    pthread_mutex_unlock(&g_lock);
    return m;
}

static int g_sort_dir;
static int by_time(const void *a, const void *b) {
    double x = ((const ProfileRow *)a)->s[g_sort_dir].ms, y = ((const ProfileRow *)b)->s[g_sort_dir].ms;
    return (x < y) - (x > y);
}

static void print_row(FILE *f, const char *name, const ProfileStat *s, double step_ms, int iters) {
    double k = iters > 0 ? 1.0 / iters : 1.0;
    double gfs = s->ms > 0 ? s->flops / (s->ms * 1e6) : 0.0;
    double gbs = s->ms > 0 ? s->bytes / (s->ms * 1e6) : 0.0;
    fprintf(f, "  %-22s %9.1f %10.2f %6.1f%% %10.3f %9.1f %10.1f %7.2f\n", name, (double)s->calls * k, s->ms * k,
            step_ms > 0 ? 100.0 * s->ms / step_ms : 0.0, s->flops * k * 1e-9, gfs, s->bytes * k * 1e-6, gbs);
}

void profile_print(FILE *f, double step_ms, int iters) {
    static const char *title[2] = {"forward", "backward"};
    ProfileRow rows[PROFILE_MAX_ROWS];
    int n = profile_rows(rows, PROFILE_MAX_ROWS);
    double k = iters > 0 ? 1.0 / iters : 1.0, ops_ms = 0;
    for (int dir = 0; dir < 2; dir++) {
        /* the sort's comparator reads g_sort_dir: serialise concurrent printers */
        pthread_mutex_lock(&g_lock);
        g_sort_dir = dir;
        qsort(rows, (size_t)n, sizeof rows[0], by_time);
        pthread_mutex_unlock(&g_lock);
        fprintf(f, "\n## profile: %s, per iteration (mean of %d)\n", title[dir], iters);
        fprintf(f, "  %-22s %9s %10s %7s %10s %9s %10s %7s\n", "op", "calls", "ms", "% step", "GFLOP", "GFLOP/s", "MB moved",
                "GB/s");
        ProfileStat tot = {0, 0, 0, 0};
        for (int i = 0; i < n; i++) {
            const ProfileStat *s = &rows[i].s[dir];
            if (!s->calls) continue;
            print_row(f, rows[i].op, s, step_ms, iters);
            tot.calls += s->calls;
            tot.ms += s->ms;
            tot.flops += s->flops;
            tot.bytes += s->bytes;
        }
        print_row(f, dir ? "all backward ops" : "all forward ops", &tot, step_ms, iters);
        ops_ms += tot.ms;
    }
    double rest = step_ms - ops_ms;
    fprintf(f, "\n## profile: step %.2f ms/iter = ops %.2f (%.1f%%) + not in ops %.2f (%.1f%%: optimizers, EMA, glue)\n",
            step_ms * k, ops_ms * k, step_ms > 0 ? 100.0 * ops_ms / step_ms : 0.0, rest * k,
            step_ms > 0 ? 100.0 * rest / step_ms : 0.0);
    int64_t miss = profile_missing_begin();
    if (miss)
        fprintf(f, "## profile: %lld op calls had no PROFILE_OP_BEGIN (their time is in 'not in ops')\n", (long long)miss);
}

/* ---------------------------------------------------------------- details */

void profile_detail_add(const char *key, double ms, double flops) {
    pthread_mutex_lock(&g_lock);
    ProfileDetail *d = NULL;
    for (int i = 0; i < g_n_details && !d; i++)
        if (!strcmp(g_details[i].key, key)) d = &g_details[i];
    if (!d) { /* beyond the table's size: one "(other calls)" row */
        d = &g_details[g_n_details < PROFILE_MAX_DETAILS - 1 ? g_n_details++ : PROFILE_MAX_DETAILS - 1];
        if (!d->key[0]) snprintf(d->key, sizeof d->key, "%s", d == &g_details[PROFILE_MAX_DETAILS - 1] ? "(other calls)" : key);
    }
    d->calls++;
    d->ms += ms;
    d->flops += flops;
    pthread_mutex_unlock(&g_lock);
}

int profile_details(ProfileDetail *rows, int max) {
    pthread_mutex_lock(&g_lock);
    int n = 0;
    for (int i = 0; i < PROFILE_MAX_DETAILS && n < max; i++)
        if (g_details[i].key[0]) rows[n++] = g_details[i];
    pthread_mutex_unlock(&g_lock);
    return n;
}

static int detail_by_time(const void *a, const void *b) {
    double x = ((const ProfileDetail *)a)->ms, y = ((const ProfileDetail *)b)->ms;
    return (x < y) - (x > y);
}

void profile_print_details(FILE *f, const char *title, double step_ms, int iters, int top) {
    ProfileDetail *rows = xmalloc(PROFILE_MAX_DETAILS * sizeof *rows);
    int n = profile_details(rows, PROFILE_MAX_DETAILS);
    if (n) {
        qsort(rows, (size_t)n, sizeof rows[0], detail_by_time);
        double k = iters > 0 ? 1.0 / iters : 1.0, shown = 0, all = 0;
        fprintf(f, "\n## profile: %s, per iteration (mean of %d; the %d slowest of %d)\n", title, iters,
                top < n ? top : n, n);
        fprintf(f, "  %-*s %7s %9s %7s %9s %8s\n", PROFILE_DETAIL_LEN - 14, "call", "calls", "ms", "% step", "GFLOP",
                "GFLOP/s");
        for (int i = 0; i < n; i++) {
            all += rows[i].ms;
            if (i >= top) continue;
            shown += rows[i].ms;
            fprintf(f, "  %-*s %7.1f %9.2f %6.1f%% %9.3f %8.1f\n", PROFILE_DETAIL_LEN - 14, rows[i].key,
                    (double)rows[i].calls * k, rows[i].ms * k, step_ms > 0 ? 100.0 * rows[i].ms / step_ms : 0.0,
                    rows[i].flops * k * 1e-9, rows[i].ms > 0 ? rows[i].flops / (rows[i].ms * 1e6) : 0.0);
        }
        fprintf(f, "  these %.2f ms of %.2f ms in all such calls (%.1f%% of the step)\n", shown * k, all * k,
                step_ms > 0 ? 100.0 * all / step_ms : 0.0);
    }
    free(rows);
}
