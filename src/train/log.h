/* log.h: training logs: a progress line on the console, a CSV of the losses, and TensorBoard
 * event files.
 *
 *  - Progress: on a terminal one line redrawn with \r (at most ~10 times a second) with a bar,
 *    steps/s (and images/s given a batch size), elapsed time, ETA and the current losses; into a
 *    file or pipe plain lines every N steps or every 10 s, so captured logs stay readable.
 *  - CsvLog: step, epoch, wall_time, then the loss terms named at the first row; one row per
 *    call, flushed. Appending (resume) checks that the file's header is this run's.
 *  - TbWriter: logdir/events.out.tfevents.<unix time>.<hostname>, TFRecord-framed Event
 *    protobufs (scalars as Summary.Value.simple_value, images as PNG Summary.Image), which
 *    TensorBoard reads. The protobuf encoder and the CRC-32C are our own (see log.c).
 * Functions that can fail on I/O return -1 (or NULL) with err_msg() naming the file.
 */
#ifndef ATTNGAN_LOG_H
#define ATTNGAN_LOG_H

#include "../io/image.h"

#include <stddef.h>
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

/* ---- CSV of the losses */
typedef struct CsvLog CsvLog;

/* append = 0 truncates; append = 1 keeps an existing file, whose header the first row must
 * match (a file cut inside a row gets its line ended first). NULL + err_msg() on failure. */
CsvLog *csv_open(const char *path, int append);
/* The same, but the file is created (or opened to append) by the first row: a log that gets no
 * row leaves no file (an existing one stays as it is). */
CsvLog *csv_open_lazy(const char *path, int append);
/* One row "step,epoch,wall_time,v1,...,vn" (wall_time: Unix seconds), flushed. The first row
 * fixes the columns (and writes the header, or checks the existing one); later rows must pass
 * the same names. -1 + err_msg() on a header mismatch, other names or a write error. c NULL:
 * nothing is written (a data-parallel rank other than 0 has no logs). */
int csv_row(CsvLog *c, int64_t step, int epoch, int n, const char *const *names, const float *values);
int csv_close(CsvLog *c);   /* NULL is fine; -1 if the final close failed */

/* ---- TensorBoard event files */
typedef struct TbWriter TbWriter;

/* Creates logdir (and its parents) and a new event file in it, named as TensorBoard's writers
 * do (".1", ".2" ... appended if that name exists), whose first Event has file_version
 * "brain.Event:2". NULL + err_msg() on failure. */
TbWriter *tb_open(const char *logdir);
const char *tb_path(const TbWriter *tb);   /* the event file's path */
/* tb_scalar, tb_image and tb_flush write nothing to a NULL writer (a rank other than 0). */
int tb_scalar(TbWriter *tb, const char *tag, float value, int64_t step);
/* The image as PNG in a Summary.Image (height, width, colorspace 3 = RGB). */
int tb_image(TbWriter *tb, const char *tag, const Image *img, int64_t step);
/* Events are buffered; tb_flush writes them out (done anyway every 10 s and by tb_close). */
int tb_flush(TbWriter *tb);
int tb_close(TbWriter *tb);   /* NULL is fine */

/* ---- CRC-32C (Castagnoli), the checksum of TFRecord framing */
uint32_t crc32c_extend(uint32_t crc, const void *data, size_t n);   /* crc of the data so far */
uint32_t crc32c(const void *data, size_t n);
/* TFRecord's masked CRC: ((c >> 15) | (c << 17)) + 0xa282ead8 with c = crc32c(data). */
uint32_t tfrecord_masked_crc(const void *data, size_t n);

#endif
