/* log.c: the progress line, the CSV loss log and TensorBoard event files (see log.h).
 *
 * TensorBoard's format: a file of TFRecords, each
 *   uint64 length (little endian) | uint32 masked crc32c(length bytes) | data | uint32 masked crc32c(data)
 * whose data is a protobuf Event {double wall_time = 1; int64 step = 2; string file_version = 3;
 * Summary summary = 5}, Summary {repeated Value value = 1}, Value {string tag = 1;
 * float simple_value = 2; Image image = 4}, Image {int32 height = 1; int32 width = 2;
 * int32 colorspace = 3; bytes encoded_image_string = 4}. The few protobuf encodings needed
 * (varint, fixed64, fixed32, length-delimited) are written here rather than pulling in a
 * protobuf library for four message types.
 */
#include "log.h"

#include "../core/error.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

static double monotonic_seconds(void *ctx) {
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double unix_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
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


/* ======================================================================== CSV */

struct CsvLog {
    char *path;
    FILE *f;               /* NULL until the first row of a lazy log */
    int cut;               /* lazy: the existing file ends inside a line */
    char *old_header;      /* append: the existing file's first line (no newline), else NULL */
    char **names;          /* the columns fixed by the first row */
    int n;
};

/* Reads the first line of an existing non-empty file into *header (NULL if absent or empty)
 * and tells whether the file ends inside a line. */
static int csv_inspect(const char *path, char **header, int *cut) {
    *header = NULL;
    *cut = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return errno == ENOENT ? 0 : err_set("%s: %s", path, strerror(errno));
    size_t cap = 0;
    ssize_t len = getline(header, &cap, f);
    if (len <= 0) {
        free(*header);
        *header = NULL;
    } else {
        while (len > 0 && ((*header)[len - 1] == '\n' || (*header)[len - 1] == '\r')) (*header)[--len] = 0;
        fseek(f, -1, SEEK_END);
        *cut = fgetc(f) != '\n';
    }
    fclose(f);
    return 0;
}

CsvLog *csv_open(const char *path, int append) {
    char *header = NULL;
    int cut = 0;
    if (append && csv_inspect(path, &header, &cut) < 0) return NULL;
    FILE *f = fopen(path, header ? "ab" : "wb");
    if (!f) {
        free(header);
        err_set("%s: %s", path, strerror(errno));
        return NULL;
    }
    if (cut) fputc('\n', f);
    CsvLog *c = xcalloc(1, sizeof *c);
    c->path = xstrdup(path);
    c->f = f;
    c->old_header = header;
    return c;
}

CsvLog *csv_open_lazy(const char *path, int append) {
    char *header = NULL;
    int cut = 0;
    if (append && csv_inspect(path, &header, &cut) < 0) return NULL;
    CsvLog *c = xcalloc(1, sizeof *c);
    c->path = xstrdup(path);
    c->old_header = header;
    c->cut = cut;
    return c;
}

/* A CSV field: quoted (with "" for ") when it holds a comma, quote or line break. */
static void csv_field(char *buf, size_t cap, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        cat(buf, cap, ",%s", s);
        return;
    }
    cat(buf, cap, ",\"");
    for (; *s; s++) cat(buf, cap, "%s%c", *s == '"' ? "\"" : "", *s);
    cat(buf, cap, "\"");
}

static char *csv_header(int n, const char *const *names) {
    size_t cap = 64;
    for (int i = 0; i < n; i++) cap += 2 * strlen(names[i]) + 4;
    char *h = xmalloc(cap);
    snprintf(h, cap, "step,epoch,wall_time");
    for (int i = 0; i < n; i++) csv_field(h, cap, names[i]);
    return h;
}

/* First row: fixes the columns, then writes the header or checks the existing one. */
static int csv_start(CsvLog *c, int n, const char *const *names) {
    char *h = csv_header(n, names);
    int rc = 0;
    if (c->old_header && strcmp(c->old_header, h) != 0)
        rc = err_set("%s: the existing header \"%s\" is not this run's \"%s\" (use another file or "
                     "start without resuming)", c->path, c->old_header, h);
    else if (!c->old_header)
        fprintf(c->f, "%s\n", h);
    free(h);
    if (rc < 0) return rc;
    c->n = n;
    c->names = xcalloc(n ? n : 1, sizeof *c->names);
    for (int i = 0; i < n; i++) c->names[i] = xstrdup(names[i]);
    return 0;
}

static int csv_same_names(const CsvLog *c, int n, const char *const *names) {
    if (n != c->n) return 0;
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], c->names[i]) != 0) return 0;
    return 1;
}

int csv_row(CsvLog *c, int64_t step, int epoch, int n, const char *const *names, const float *values) {
    if (!c) return 0; /* no log: a data-parallel rank other than 0 */
    if (!c->f) { /* a lazy log's first row */
        c->f = fopen(c->path, c->old_header ? "ab" : "wb");
        if (!c->f) return err_set("%s: %s", c->path, strerror(errno));
        if (c->cut) fputc('\n', c->f);
    }
    if (!c->names && csv_start(c, n, names) < 0) return -1;
    if (!csv_same_names(c, n, names))
        return err_set("%s: a row with other loss terms than the header's %d columns", c->path, c->n);
    fprintf(c->f, "%lld,%d,%.3f", (long long)step, epoch, unix_seconds());
    for (int i = 0; i < n; i++) fprintf(c->f, ",%.9g", values[i]);
    fputc('\n', c->f);
    if (fflush(c->f) != 0 || ferror(c->f)) return err_set("%s: write failed: %s", c->path, strerror(errno));
    return 0;
}

int csv_close(CsvLog *c) {
    if (!c) return 0;
    int rc = !c->f || fclose(c->f) == 0 ? 0 : err_set("%s: close failed: %s", c->path, strerror(errno));
    for (int i = 0; i < c->n; i++) free(c->names[i]);
    free(c->names);
    free(c->old_header);
    free(c->path);
    free(c);
    return rc;
}

/* ======================================================================== CRC-32C */

/* CRC-32C (Castagnoli; reflected polynomial 0x82F63B78, init and final xor ~0), the checksum
 * of TFRecord framing and of the checkpoints' manifests. Debian packages no C library for it (only
 * python3-crc32c), so it is computed here: SSE4.2's crc32 instruction where the build has it
 * (-march=native on x86-64), else a byte-wise table (a few hundred MB/s). */
static uint32_t g_crc_table[256];
static pthread_once_t g_crc_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        g_crc_table[i] = c;
    }
}

uint32_t crc32c_extend(uint32_t crc, const void *data, size_t n) {
    pthread_once(&g_crc_once, crc_table_init);
    const uint8_t *p = data;
    crc = ~crc;
#if defined(__SSE4_2__) && defined(__x86_64__)
    /* SSE4.2's crc32 instruction computes this very CRC (Castagnoli, reflected), 8 bytes at a
     * time: checkpoints of a GB are checked in well under a second */
    uint64_t c = crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
    }
    crc = (uint32_t)c;
#endif
    for (size_t i = 0; i < n; i++) crc = g_crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

uint32_t crc32c(const void *data, size_t n) { return crc32c_extend(0, data, n); }

uint32_t tfrecord_masked_crc(const void *data, size_t n) {
    uint32_t c = crc32c(data, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

/* ======================================================================== protobuf encoder */

typedef struct PbBuf {
    uint8_t *p;
    size_t n, cap;
} PbBuf;

static void pb_put(PbBuf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = xrealloc(b->p, b->cap);
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void pb_varint(PbBuf *b, uint64_t v) {
    uint8_t tmp[10];
    int k = 0;
    do {
        tmp[k++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    pb_put(b, tmp, k);
}

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

static void pb_key(PbBuf *b, int field, int wire) { pb_varint(b, (uint64_t)field << 3 | (uint64_t)wire); }

static void put_le(uint8_t *dst, uint64_t v, int nbytes) {
    for (int i = 0; i < nbytes; i++) dst[i] = (uint8_t)(v >> (8 * i));
}

/* int32/int64 fields: negative values as 10-byte two's complement varints, as protobuf does. */
static void pb_int(PbBuf *b, int field, int64_t v) {
    pb_key(b, field, WIRE_VARINT);
    pb_varint(b, (uint64_t)v);
}

static void pb_double(PbBuf *b, int field, double v) {
    uint64_t bits;
    uint8_t le[8];
    memcpy(&bits, &v, 8);
    put_le(le, bits, 8);
    pb_key(b, field, WIRE_FIXED64);
    pb_put(b, le, 8);
}

static void pb_float(PbBuf *b, int field, float v) {
    uint32_t bits;
    uint8_t le[4];
    memcpy(&bits, &v, 4);
    put_le(le, bits, 4);
    pb_key(b, field, WIRE_FIXED32);
    pb_put(b, le, 4);
}

static void pb_bytes(PbBuf *b, int field, const void *data, size_t n) {
    pb_key(b, field, WIRE_LEN);
    pb_varint(b, n);
    pb_put(b, data, n);
}

/* ======================================================================== TensorBoard */

#define TB_FLUSH_SECONDS 10.0

struct TbWriter {
    char *path;
    FILE *f;
    double last_flush;
};

/* mkdir -p; existing directories are fine. */
static int make_dirs(const char *dir) {
    if (!dir[0]) return err_set("TensorBoard log directory: empty path");
    char *d = xstrdup(dir);
    int rc = 0;
    for (char *s = d + 1; rc == 0; s++) {
        if (*s && *s != '/') continue;
        char saved = *s;
        *s = 0;
        if (mkdir(d, 0777) != 0 && errno != EEXIST) rc = err_set("%s: cannot create: %s", d, strerror(errno));
        *s = saved;
        if (!saved) break;
    }
    struct stat st;
    if (rc == 0 && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))) rc = err_set("%s: not a directory", dir);
    free(d);
    return rc;
}

/* Opens a new file named as TensorFlow's EventsWriter does, with a ".k" suffix if that exists. */
static FILE *tb_create(const char *logdir, char **path_out) {
    char host[256] = "localhost";
    if (gethostname(host, sizeof host) != 0 || !host[0]) snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = 0;
    long long t = (long long)time(NULL);
    size_t cap = strlen(logdir) + strlen(host) + 64;
    char *path = xmalloc(cap);
    for (int k = 0; k < 1000; k++) {
        snprintf(path, cap, "%s/events.out.tfevents.%010lld.%s", logdir, t, host);
        if (k) cat(path, cap, ".%d", k);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0666);
        if (fd < 0 && errno == EEXIST) continue;
        FILE *f = fd < 0 ? NULL : fdopen(fd, "wb");
        if (!f) {
            err_set("%s: %s", path, strerror(errno));
            if (fd >= 0) close(fd);
            break;
        }
        *path_out = path;
        return f;
    }
    free(path);
    return NULL;
}

static int tb_write_record(TbWriter *tb, const uint8_t *data, size_t n) {
    uint8_t head[12], foot[4];
    put_le(head, n, 8);
    put_le(head + 8, tfrecord_masked_crc(head, 8), 4);
    put_le(foot, tfrecord_masked_crc(data, n), 4);
    if (fwrite(head, 1, 12, tb->f) != 12 || fwrite(data, 1, n, tb->f) != n || fwrite(foot, 1, 4, tb->f) != 4)
        return err_set("%s: write failed: %s", tb->path, strerror(errno));
    double now = monotonic_seconds(NULL);
    if (now - tb->last_flush >= TB_FLUSH_SECONDS) return tb_flush(tb);
    return 0;
}

/* Event {wall_time, step, file_version or summary}; summary is an encoded Summary or NULL. */
static int tb_write_event(TbWriter *tb, int64_t step, const char *file_version, const PbBuf *summary) {
    PbBuf ev = {0};
    pb_double(&ev, 1, unix_seconds());
    if (step) pb_int(&ev, 2, step);
    if (file_version) pb_bytes(&ev, 3, file_version, strlen(file_version));
    if (summary) pb_bytes(&ev, 5, summary->p, summary->n);
    int rc = tb_write_record(tb, ev.p, ev.n);
    free(ev.p);
    return rc;
}

/* Summary {value {tag; <value>}} around an encoded Value tail (simple_value or image). */
static int tb_write_value(TbWriter *tb, const char *tag, const PbBuf *tail, int64_t step) {
    PbBuf val = {0}, sum = {0};
    pb_bytes(&val, 1, tag, strlen(tag));
    pb_put(&val, tail->p, tail->n);
    pb_bytes(&sum, 1, val.p, val.n);
    int rc = tb_write_event(tb, step, NULL, &sum);
    free(val.p);
    free(sum.p);
    return rc;
}

TbWriter *tb_open(const char *logdir) {
    char *path = NULL;
    if (make_dirs(logdir) < 0) return NULL;
    FILE *f = tb_create(logdir, &path);
    if (!f) return NULL;
    TbWriter *tb = xcalloc(1, sizeof *tb);
    tb->path = path;
    tb->f = f;
    tb->last_flush = monotonic_seconds(NULL);
    if (tb_write_event(tb, 0, "brain.Event:2", NULL) < 0 || tb_flush(tb) < 0) {
        tb_close(tb);
        return NULL;
    }
    return tb;
}

const char *tb_path(const TbWriter *tb) { return tb->path; }

int tb_scalar(TbWriter *tb, const char *tag, float value, int64_t step) {
    if (!tb) return 0;
    PbBuf tail = {0};
    pb_float(&tail, 2, value);
    int rc = tb_write_value(tb, tag, &tail, step);
    free(tail.p);
    return rc;
}

int tb_image(TbWriter *tb, const char *tag, const Image *img, int64_t step) {
    if (!tb) return 0;
    uint8_t *png = NULL;
    size_t png_len = 0;
    if (image_encode_png(img, &png, &png_len) < 0) return err_prefix("%s: image %s", tb->path, tag);
    PbBuf im = {0}, tail = {0};
    pb_int(&im, 1, img->h);
    pb_int(&im, 2, img->w);
    pb_int(&im, 3, 3);
    pb_bytes(&im, 4, png, png_len);
    pb_bytes(&tail, 4, im.p, im.n);
    int rc = tb_write_value(tb, tag, &tail, step);
    free(png);
    free(im.p);
    free(tail.p);
    return rc;
}

int tb_flush(TbWriter *tb) {
    if (!tb) return 0;
    tb->last_flush = monotonic_seconds(NULL);
    if (fflush(tb->f) != 0) return err_set("%s: write failed: %s", tb->path, strerror(errno));
    return 0;
}

int tb_close(TbWriter *tb) {
    if (!tb) return 0;
    int rc = fclose(tb->f) == 0 ? 0 : err_set("%s: close failed: %s", tb->path, strerror(errno));
    free(tb->path);
    free(tb);
    return rc;
}
