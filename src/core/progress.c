/* progress.c: the progress line of long steps (training, caching, evaluation, export); see
 * progress.h. */
#include "progress.h"
#include "error.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static double monotonic_seconds(void *ctx) {
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Appends printf output to the NUL-terminated buf of capacity cap (truncating). */
static void cat(char *buf, size_t cap, const char *fmt, ...) ATTR_PRINTF(3, 4);
static void cat(char *buf, size_t cap, const char *fmt, ...) {
    size_t len = strlen(buf);
    if (len + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
}

/* ======================================================================== progress line */

#define PROGRESS_TERMS 512

struct Progress {
    char *what, *unit;                  /* unit: NULL for "step" / "it" */
    FILE *out;
    int64_t total, start, last_step, drawn_step, every_steps;
    double every_seconds, t0, last_draw;
    double (*now)(void *ctx);
    void *now_ctx;
    int tty, batch;
    char terms[PROGRESS_TERMS];         /* the last losses, formatted */
};

Progress *progress_new(const char *what, int64_t total_steps, FILE *out) {
    Progress *p = xcalloc(1, sizeof *p);
    p->what = xstrdup(what ? what : "");
    p->out = out;
    p->total = total_steps;
    p->every_steps = 100;
    p->every_seconds = 10.0;
    p->tty = out && isatty(fileno(out));
    p->now = monotonic_seconds;
    p->t0 = p->now(NULL);
    p->last_draw = -INFINITY;
    p->last_step = p->drawn_step = -1;
    return p;
}

void progress_set_batch(Progress *p, int batch_size) { p->batch = batch_size; }
void progress_set_start(Progress *p, int64_t step) { p->start = step; }
void progress_set_tty(Progress *p, int tty) { p->tty = tty; }

void progress_set_unit(Progress *p, const char *unit) {
    free(p->unit);
    p->unit = unit && unit[0] ? xstrdup(unit) : NULL;
}

void progress_set_every(Progress *p, int64_t steps, double seconds) {
    p->every_steps = steps;
    p->every_seconds = seconds;
}

void progress_set_clock(Progress *p, double (*now)(void *ctx), void *ctx) {
    p->now = now;
    p->now_ctx = ctx;
    p->t0 = now(ctx);
}

/* "M:SS" or "H:MM:SS"; "?" when unknown. */
static void fmt_duration(char *buf, size_t cap, double s) {
    if (!isfinite(s) || s < 0 || s > 1e9) {
        snprintf(buf, cap, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
}

static void fmt_terms(Progress *p, int n, const char *const *names, const float *values) {
    p->terms[0] = 0;
    for (int i = 0; i < n; i++) cat(p->terms, sizeof p->terms, "%s%s %.4g", i ? "  " : "", names[i], values[i]);
}

/* Everything after the label and position: rate, times, losses. */
static void fmt_stats(Progress *p, int64_t step, double now, char *buf, size_t cap) {
    double elapsed = now - p->t0, done = (double)(step - p->start);
    double rate = elapsed > 0 && done > 0 ? done / elapsed : NAN;
    char el[32], eta[32];
    fmt_duration(el, sizeof el, elapsed);
    fmt_duration(eta, sizeof eta, p->total > 0 ? (double)(p->total - step) / rate : NAN);
    const char *u = p->unit ? p->unit : "it";
    if (isfinite(rate)) cat(buf, cap, "  %.3g %s/s", rate, u);
    else cat(buf, cap, "  ? %s/s", u);
    if (p->batch > 0 && isfinite(rate)) cat(buf, cap, "  %.3g img/s", rate * p->batch);
    cat(buf, cap, "  elapsed %s  ETA %s", el, eta);
    if (p->terms[0]) cat(buf, cap, "  | %s", p->terms);
}

static void fmt_position(Progress *p, int64_t step, int bar, char *buf, size_t cap) {
    if (p->total <= 0) {
        cat(buf, cap, " %s %lld", p->unit ? p->unit : "step", (long long)step);
        return;
    }
    double frac = (double)step / (double)p->total;
    if (bar) {
        int fill = (int)(fmax(0.0, fmin(1.0, frac)) * 20);
        cat(buf, cap, " [%.*s%.*s]", fill, "####################", 20 - fill, "                    ");
    }
    cat(buf, cap, " %s %lld/%lld (%.1f%%)", p->unit ? p->unit : "step", (long long)step, (long long)p->total, 100.0 * frac);
}

static int terminal_columns(FILE *out) {
    struct winsize ws;
    if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) return ws.ws_col;
    return 0;
}

static void draw(Progress *p, int64_t step, double now) {
    char line[1024];
    snprintf(line, sizeof line, "%s", p->what);
    fmt_position(p, step, p->tty, line, sizeof line);
    fmt_stats(p, step, now, line, sizeof line);
    if (p->tty) {
        int cols = terminal_columns(p->out);
        if (cols && strlen(line) >= (size_t)cols) line[cols - 1] = 0;   /* a wrapped line can't be redrawn */
        fprintf(p->out, "\r%s\033[K", line);
    } else {
        fprintf(p->out, "%s\n", line);
    }
    fflush(p->out);
    p->last_draw = now;
    p->drawn_step = step;
}

static int due(const Progress *p, int64_t step, double now) {
    if (p->last_step < 0 || (p->total > 0 && step >= p->total)) return 1;
    if (p->tty) return now - p->last_draw >= 0.1;
    if (p->every_steps > 0 && step % p->every_steps == 0) return 1;
    return p->every_seconds > 0 && now - p->last_draw >= p->every_seconds;
}

void progress_update(Progress *p, int64_t step, int n_terms, const char *const *names, const float *values) {
    if (!p->out) return;
    double now = p->now(p->now_ctx);
    fmt_terms(p, n_terms, names, values);
    if (due(p, step, now)) draw(p, step, now);
    p->last_step = step;
}

void progress_done(Progress *p) {
    if (!p) return;
    if (p->out && p->last_step >= 0) {
        double now = p->now(p->now_ctx);
        if (p->tty) {
            if (p->drawn_step != p->last_step) draw(p, p->last_step, now);
            fputc('\n', p->out);
        } else {
            char line[256] = "", el[32];
            fmt_duration(el, sizeof el, now - p->t0);
            double rate = now > p->t0 ? (double)(p->last_step - p->start) / (now - p->t0) : NAN;
            snprintf(line, sizeof line, "%s done: %s %lld in %s (%.3g %s/s)", p->what, p->unit ? p->unit : "step",
                     (long long)p->last_step, el, rate, p->unit ? p->unit : "it");
            fprintf(p->out, "%s\n", line);
        }
        fflush(p->out);
    }
    free(p->what);
    free(p->unit);
    free(p);
}
