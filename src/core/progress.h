/* progress.h: a progress line for long steps (training, trunk-feature caching, evaluation,
 * export): on a terminal one line redrawn with \r (at most ~10 times a second) with a bar,
 * steps/s (and images/s given a batch size), elapsed time, ETA and the current losses; into a file
 * or pipe plain lines every N steps or every 10 s, so captured logs stay readable. */
#ifndef ATTNGAN_PROGRESS_H
#define ATTNGAN_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

/* ---- progress line */
typedef struct Progress Progress;

/* total_steps <= 0: unknown (no percentage, bar or ETA). `what` labels the line ("train"). The
 * mode follows isatty(fileno(out)); the clock starts now. Never NULL. */
Progress *progress_new(const char *what, int64_t total_steps, FILE *out);
/* Optional settings, before the first update: */
void progress_set_batch(Progress *p, int batch_size);          /* adds images/s */
void progress_set_every(Progress *p, int64_t steps, double seconds); /* plain lines; default 100, 10 s */
void progress_set_start(Progress *p, int64_t step);           /* resumed run: rate counts from here */
void progress_set_tty(Progress *p, int tty);                   /* force the mode (1: \r redraw) */
/* What a step is ("photos"): the line shows "photos 120/983" and "photos/s" instead of "step"
 * and "it/s". */
void progress_set_unit(Progress *p, const char *unit);
/* A clock in seconds instead of CLOCK_MONOTONIC (tests); restarts the elapsed time. */
void progress_set_clock(Progress *p, double (*now)(void *ctx), void *ctx);
/* `step` steps are done (of total_steps); n_terms losses to show (names may be NULL if 0). */
void progress_update(Progress *p, int64_t step, int n_terms, const char *const *names, const float *values);
/* Draws the final state (terminal: ends the line; file: a "done" line) and frees p. NULL is fine. */
void progress_done(Progress *p);

#endif
