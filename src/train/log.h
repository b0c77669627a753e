/* log.h: training logs: a progress line on the console, a CSV of the losses, and TensorBoard
 * event files.
 *
 *  - Progress (src/core/progress.h, which evaluation and export use too).
 *  - CsvLog: step, epoch, wall_time, then the loss terms named at the first row; one row per
 *    call, flushed. Appending (resume) checks that the file's header is this run's.
 *  - TbWriter: logdir/events.out.tfevents.<unix time>.<hostname>, TFRecord-framed Event
 *    protobufs (scalars as Summary.Value.simple_value, images as PNG Summary.Image), which
 *    TensorBoard reads. The protobuf encoder and the CRC-32C are our own (see log.c).
 * Functions that can fail on I/O return -1 (or NULL) with err_msg() naming the file.
 */
#ifndef ATTNGAN_LOG_H
#define ATTNGAN_LOG_H

#include "../core/progress.h"
#include "../io/image.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- the progress line: src/core/progress.h */

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
