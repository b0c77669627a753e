/* test_log.c: src/train/log.c and src/core/progress.c. CRC-32C against published vectors (RFC 3720 B.4 and the usual
 * "123456789") and a bitwise reference; a TensorBoard event file read back by an independent
 * reader written here (TFRecord framing with both CRCs checked on every record by a bit-at-a-
 * time CRC-32C, a generic protobuf decoder, the PNG decoded with image_decode), including a
 * flipped byte caught by the CRCs; the CSV header, rows and the resume-append header check;
 * the progress line with a fake clock in plain-line and terminal modes. */
#include "test.h"

#include "../src/train/log.h"

#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char g_dir[256];

/* ---------------------------------------------------------------- independent reader */

/* Bit-at-a-time CRC-32C: shares nothing with log.c's table. */
static uint32_t ref_crc32c(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
    }
    return ~c;
}

static uint32_t ref_masked(const uint8_t *p, size_t n) {
    uint32_t c = ref_crc32c(p, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

static uint64_t le(const uint8_t *p, int nbytes) {
    uint64_t v = 0;
    for (int i = nbytes - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

typedef struct Span {
    const uint8_t *p;
    size_t n;
} Span;

/* Splits a TFRecord file into records. Returns the count, or -1 (bad framing), -2 (length CRC
 * wrong), -3 (data CRC wrong). */
static int read_records(const uint8_t *buf, size_t len, Span *recs, int max) {
    int k = 0;
    size_t off = 0;
    while (off < len) {
        if (len - off < 12 || k == max) return -1;
        uint64_t n = le(buf + off, 8);
        if (le(buf + off + 8, 4) != ref_masked(buf + off, 8)) return -2;
        if (n > len - off - 16) return -1;
        const uint8_t *data = buf + off + 12;
        if (le(data + n, 4) != ref_masked(data, n)) return -3;
        recs[k++] = (Span){data, n};
        off += 16 + n;
    }
    return k;
}

/* One protobuf field: key, then a varint (v), a fixed64/fixed32 (v, raw bits) or bytes (s). */
typedef struct PbField {
    int field, wire;
    uint64_t v;
    Span s;
} PbField;

static int pb_varint(Span *in, uint64_t *v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (!in->n) return 0;
        uint8_t b = *in->p++;
        in->n--;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return 1;
    }
    return 0;
}

/* 1 and the next field, 0 at the end, -1 on malformed input. */
static int pb_next(Span *in, PbField *f) {
    uint64_t key;
    if (!in->n) return 0;
    if (!pb_varint(in, &key)) return -1;
    f->field = (int)(key >> 3);
    f->wire = (int)(key & 7);
    size_t width = f->wire == 1 ? 8 : f->wire == 5 ? 4 : 0;
    if (f->wire == 0) return pb_varint(in, &f->v) ? 1 : -1;
    if (f->wire == 2) {
        if (!pb_varint(in, &f->v) || f->v > in->n) return -1;
        width = f->v;
        f->s = (Span){in->p, width};
    } else if (!width || in->n < width) {
        return -1;
    } else {
        f->v = le(in->p, (int)width);
    }
    in->p += width;
    in->n -= width;
    return 1;
}

typedef struct Event {
    double wall_time;
    int64_t step;
    char file_version[64], tag[64];
    int n_values, has_simple, has_image;
    float simple;
    int64_t h, w, colorspace;
    Span png;
} Event;

static void copy_str(char *dst, size_t cap, Span s) {
    size_t n = s.n < cap - 1 ? s.n : cap - 1;
    memcpy(dst, s.p, n);
    dst[n] = 0;
}

static int parse_image(Span in, Event *ev) {
    PbField f;
    int r;
    ev->has_image = 1;
    while ((r = pb_next(&in, &f)) == 1) {
        if (f.field == 1 && f.wire == 0) ev->h = (int64_t)f.v;
        else if (f.field == 2 && f.wire == 0) ev->w = (int64_t)f.v;
        else if (f.field == 3 && f.wire == 0) ev->colorspace = (int64_t)f.v;
        else if (f.field == 4 && f.wire == 2) ev->png = f.s;
        else return -1;
    }
    return r;
}

static int parse_value(Span in, Event *ev) {
    PbField f;
    int r;
    ev->n_values++;
    while ((r = pb_next(&in, &f)) == 1) {
        if (f.field == 1 && f.wire == 2) copy_str(ev->tag, sizeof ev->tag, f.s);
        else if (f.field == 2 && f.wire == 5) {
            uint32_t bits = (uint32_t)f.v;
            memcpy(&ev->simple, &bits, 4);
            ev->has_simple = 1;
        } else if (f.field == 4 && f.wire == 2) {
            if (parse_image(f.s, ev) < 0) return -1;
        } else return -1;
    }
    return r;
}

static int parse_summary(Span in, Event *ev) {
    PbField f;
    int r;
    while ((r = pb_next(&in, &f)) == 1) {
        if (f.field != 1 || f.wire != 2 || parse_value(f.s, ev) < 0) return -1;
    }
    return r;
}

static int parse_event(Span in, Event *ev) {
    PbField f;
    int r;
    memset(ev, 0, sizeof *ev);
    while ((r = pb_next(&in, &f)) == 1) {
        if (f.field == 1 && f.wire == 1) memcpy(&ev->wall_time, &f.v, 8);
        else if (f.field == 2 && f.wire == 0) ev->step = (int64_t)f.v;
        else if (f.field == 3 && f.wire == 2) copy_str(ev->file_version, sizeof ev->file_version, f.s);
        else if (f.field == 5 && f.wire == 2) {
            if (parse_summary(f.s, ev) < 0) return -1;
        } else return -1;
    }
    return r;
}

/* The file's bytes, NUL-terminated; an empty buffer if it can't be read. */
static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    *len = 0;
    if (!f) return xcalloc(1, 1);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = xmalloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, f);
    buf[*len] = 0;
    fclose(f);
    return buf;
}

/* ---------------------------------------------------------------- CRC */

static void test_crc32c(void) {
    uint8_t zeros[32] = {0}, ones[32], inc[32], dec[32];
    for (int i = 0; i < 32; i++) ones[i] = 0xff, inc[i] = (uint8_t)i, dec[i] = (uint8_t)(31 - i);
    EXPECT(crc32c("123456789", 9) == 0xE3069283u, "crc32c(\"123456789\") = %08x", crc32c("123456789", 9));
    EXPECT(crc32c("", 0) == 0, "crc32c of nothing is 0");
    EXPECT(crc32c(zeros, 32) == 0x8A9136AAu, "RFC 3720 B.4 32 zeros: %08x", crc32c(zeros, 32));
    EXPECT(crc32c(ones, 32) == 0x62A8AB43u, "RFC 3720 B.4 32 0xff: %08x", crc32c(ones, 32));
    EXPECT(crc32c(inc, 32) == 0x46DD794Eu, "RFC 3720 B.4 incrementing: %08x", crc32c(inc, 32));
    EXPECT(crc32c(dec, 32) == 0x113FDB5Cu, "RFC 3720 B.4 decrementing: %08x", crc32c(dec, 32));
    uint8_t buf[1000];
    for (int i = 0; i < 1000; i++) buf[i] = (uint8_t)(i * 2654435761u >> 13);
    int bad = 0;
    for (size_t n = 0; n <= 1000; n += 37) bad += crc32c(buf, n) != ref_crc32c(buf, n);
    EXPECT(bad == 0, "table CRC matches the bitwise one on %d lengths", bad);
    EXPECT(crc32c_extend(crc32c(buf, 400), buf + 400, 600) == crc32c(buf, 1000), "crc32c_extend continues a CRC");
    uint32_t c = crc32c(buf, 100);
    EXPECT(tfrecord_masked_crc(buf, 100) == ((c >> 15) | (c << 17)) + 0xa282ead8u, "TFRecord mask");
}

/* ---------------------------------------------------------------- TensorBoard */

static void make_image(Image *img, int w, int h) {
    img->w = w;
    img->h = h;
    img->data = xmalloc((size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++) img->data[i] = (uint8_t)(i * 7 + i / 3);
}

static int write_events(char *path, size_t cap, const Image *img) {
    char logdir[300];
    snprintf(logdir, sizeof logdir, "%s/tb/run1", g_dir);
    TbWriter *tb = tb_open(logdir);
    if (!EXPECT(tb, "tb_open(%s): %s", logdir, tb ? "" : err_msg())) return 0;
    snprintf(path, cap, "%s", tb_path(tb));
    int rc = 0;
    for (int s = 1; s <= 3; s++) {
        rc |= tb_scalar(tb, "loss/G", 0.5f * s, s);
        rc |= tb_scalar(tb, "loss/D", -1.25f / s, s);
    }
    rc |= tb_image(tb, "samples/64", img, 3);
    rc |= tb_flush(tb);
    rc |= tb_scalar(tb, "big_step", 1e-3f, (int64_t)1 << 40);
    rc |= tb_close(tb);
    return EXPECT(rc == 0, "writing the events: %s", rc ? err_msg() : "");
}

static void check_name(const char *path) {
    char host[256] = "";
    gethostname(host, sizeof host);
    const char *base = strrchr(path, '/') + 1, *prefix = "events.out.tfevents.";
    int ok = strncmp(base, prefix, strlen(prefix)) == 0;
    const char *t = base + strlen(prefix);
    for (int i = 0; ok && i < 10; i++) ok = t[i] >= '0' && t[i] <= '9';
    ok = ok && t[10] == '.' && strcmp(t + 11, host) == 0;
    long long secs = ok ? atoll(t) : 0;
    EXPECT(ok && llabs(secs - (long long)time(NULL)) < 120, "event file name %s is events.out.tfevents.<time>.%s", base, host);
}

static void check_scalar(const Event *ev, const char *tag, float v, int64_t step) {
    EXPECT(ev->n_values == 1 && ev->has_simple && strcmp(ev->tag, tag) == 0 && ev->simple == v && ev->step == step,
           "scalar %s = %g at step %lld (read %s = %g at %lld)", tag, v, (long long)step, ev->tag, ev->simple,
           (long long)ev->step);
}

static void check_image_event(const Event *ev, const Image *img) {
    EXPECT(ev->has_image && strcmp(ev->tag, "samples/64") == 0 && ev->step == 3, "image event tag and step");
    EXPECT(ev->h == img->h && ev->w == img->w && ev->colorspace == 3, "image dims %lldx%lld colorspace %lld",
           (long long)ev->w, (long long)ev->h, (long long)ev->colorspace);
    Image got = {0};
    int rc = image_decode(ev->png.p, ev->png.n, "tb image", &got);
    if (EXPECT(rc == 0, "the PNG decodes: %s", rc ? err_msg() : ""))
        EXPECT(got.w == img->w && got.h == img->h && memcmp(got.data, img->data, (size_t)img->w * img->h * 3) == 0,
               "the PNG holds the image's pixels");
    image_free(&got);
}

static void check_events(const uint8_t *buf, size_t len, const Image *img) {
    Span recs[16];
    Event ev[16];
    int n = read_records(buf, len, recs, 16);
    if (!EXPECT(n == 9, "9 records with valid CRCs (got %d)", n)) return;
    int bad = 0;
    for (int i = 0; i < n; i++) bad += parse_event(recs[i], &ev[i]) != 0;
    if (!EXPECT(bad == 0, "%d records are not valid Event protobufs", bad)) return;
    double now = (double)time(NULL);
    EXPECT(strcmp(ev[0].file_version, "brain.Event:2") == 0 && ev[0].n_values == 0, "first event: file_version %s",
           ev[0].file_version);
    EXPECT(fabs(ev[0].wall_time - now) < 120, "wall_time %.3f is now", ev[0].wall_time);
    for (int s = 1; s <= 3; s++) {
        check_scalar(&ev[2 * s - 1], "loss/G", 0.5f * s, s);
        check_scalar(&ev[2 * s], "loss/D", -1.25f / s, s);
    }
    check_image_event(&ev[7], img);
    check_scalar(&ev[8], "big_step", 1e-3f, (int64_t)1 << 40);
}

static void check_corruption(const uint8_t *buf, size_t len) {
    uint8_t *copy = xmalloc(len);
    Span recs[16];
    memcpy(copy, buf, len);
    size_t first = 16 + (size_t)le(buf, 8);      /* the second record starts here */
    copy[first + 12 + 3] ^= 0x10;                /* a byte of its data */
    EXPECT(read_records(copy, len, recs, 16) == -3, "a flipped data byte fails the data CRC");
    memcpy(copy, buf, len);
    copy[first + 1] ^= 0x01;                     /* a byte of its length */
    EXPECT(read_records(copy, len, recs, 16) == -2, "a flipped length byte fails the length CRC");
    memcpy(copy, buf, len);
    copy[len - 1] ^= 0x80;                       /* the last record's data CRC */
    EXPECT(read_records(copy, len, recs, 16) == -3, "a flipped CRC byte is caught");
    free(copy);
}

static void test_tensorboard(void) {
    char path[512];
    Image img;
    make_image(&img, 24, 16);
    if (write_events(path, sizeof path, &img)) {
        check_name(path);
        size_t len = 0;
        uint8_t *buf = slurp(path, &len);
        if (EXPECT(len > 0, "read %s", path)) {
            check_events(buf, len, &img);
            check_corruption(buf, len);
        }
        free(buf);
        /* a second writer in the same second gets its own file */
        char logdir[300];
        snprintf(logdir, sizeof logdir, "%s/tb/run1", g_dir);
        TbWriter *tb = tb_open(logdir);
        EXPECT(tb && strcmp(tb_path(tb), path) != 0, "a second writer does not clobber the first file");
        if (tb) unlink(tb_path(tb));
        tb_close(tb);
        unlink(path);
    }
    image_free(&img);
    char file[300];
    snprintf(file, sizeof file, "%s/tb/run1/file", g_dir);
    FILE *f = fopen(file, "w");
    if (f) fclose(f);
    EXPECT(tb_open(file) == NULL, "a logdir that is a file is an error: %s", err_msg());
    unlink(file);
    snprintf(file, sizeof file, "%s/tb/run1", g_dir);
    rmdir(file);
    snprintf(file, sizeof file, "%s/tb", g_dir);
    rmdir(file);
}

/* ---------------------------------------------------------------- CSV */

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static void test_csv_write(const char *path) {
    const char *names[] = {"D", "G", "w,kl\"x"};
    float v1[] = {0.5f, 1.25f, 3.0f}, v2[] = {0.25f, -2.0f, 1e-7f};
    CsvLog *c = csv_open(path, 0);
    if (!EXPECT(c, "csv_open(%s): %s", path, c ? "" : err_msg())) return;
    EXPECT(csv_row(c, 1, 0, 3, names, v1) == 0 && csv_row(c, 2, 1, 3, names, v2) == 0, "two rows");
    EXPECT(csv_row(c, 3, 1, 2, names, v2) < 0, "a row with other terms is an error");
    EXPECT(csv_close(c) == 0, "csv_close");
    size_t len;
    char *text = (char *)slurp(path, &len);
    const char *head = "step,epoch,wall_time,D,G,\"w,kl\"\"x\"\n1,0,";
    EXPECT(strncmp(text, head, strlen(head)) == 0, "CSV header and first row: %s", text);
    EXPECT(strstr(text, ",0.5,1.25,3\n2,1,") && strstr(text, ",0.25,-2,1.00000001e-07\n"), "CSV values: %s", text);
    EXPECT(count_lines(text) == 3, "header + 2 rows");
    double wall = 0;
    EXPECT(sscanf(strchr(text, '\n') + 5, "%lf", &wall) == 1 && fabs(wall - (double)time(NULL)) < 120,
           "wall_time is Unix time (%f)", wall);
    free(text);
}

static void test_csv_resume(const char *path) {
    const char *names[] = {"D", "G", "w,kl\"x"}, *other[] = {"D", "G", "KL"};
    float v[] = {1, 2, 3};
    CsvLog *c = csv_open(path, 1);
    EXPECT(c && csv_row(c, 3, 2, 3, names, v) == 0 && csv_close(c) == 0, "resume with the same header appends");
    size_t len;
    char *text = (char *)slurp(path, &len);
    EXPECT(count_lines(text) == 4 && strstr(text, "\n3,2,") && !strstr(text + 1, "step,"),
           "one header, 3 rows after the resume: %s", text);
    free(text);
    c = csv_open(path, 1);
    EXPECT(c && csv_row(c, 4, 2, 3, other, v) < 0 && strstr(err_msg(), "header"), "other header on resume: %s", err_msg());
    csv_close(c);
    FILE *f = fopen(path, "ab");               /* a row cut by a crash */
    fputs("5,2,17", f);
    fclose(f);
    c = csv_open(path, 1);
    EXPECT(c && csv_row(c, 5, 2, 3, names, v) == 0 && csv_close(c) == 0, "resume after a cut row");
    text = (char *)slurp(path, &len);
    EXPECT(strstr(text, "\n5,2,17\n5,2,"), "the cut row is ended before the new one");
    free(text);
    c = csv_open(path, 0);
    EXPECT(c && csv_row(c, 1, 0, 3, other, v) == 0 && csv_close(c) == 0, "append = 0 starts over");
    text = (char *)slurp(path, &len);
    EXPECT(strncmp(text, "step,epoch,wall_time,D,G,KL\n", 28) == 0 && count_lines(text) == 2, "new file: %s", text);
    free(text);
    EXPECT(csv_open("/nonexistent-dir/x.csv", 0) == NULL && strstr(err_msg(), "/nonexistent-dir/x.csv"),
           "an unwritable path is an error naming it: %s", err_msg());
}

/* csv_open_lazy: no row, no file; the first row creates it; appending keeps the header check. */
static void test_csv_lazy(const char *path) {
    unlink(path);
    const char *names[2] = {"x", "y"};
    float v[2] = {1, 2};
    CsvLog *c = csv_open_lazy(path, 0);
    EXPECT(c && csv_close(c) == 0 && access(path, F_OK) != 0, "a lazy log without a row leaves no file");
    c = csv_open_lazy(path, 0);
    EXPECT(c && csv_row(c, 1, 0, 2, names, v) == 0 && csv_close(c) == 0 && access(path, F_OK) == 0, "the first row creates it");
    c = csv_open_lazy(path, 1);
    EXPECT(c && csv_row(c, 2, 0, 2, names, v) == 0 && csv_close(c) == 0, "lazy append with the same header");
    FILE *f = fopen(path, "rb");
    char buf[256] = "";
    size_t got = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[got] = 0;
    if (f) fclose(f);
    EXPECT(!strncmp(buf, "step,epoch,wall_time,x,y\n1,0,", 29) && strstr(buf, "\n2,0,"), "header once, two rows: %s", buf);
    c = csv_open_lazy(path, 1);
    EXPECT(c && csv_close(c) == 0 && access(path, F_OK) == 0, "an existing file stays without a row");
    unlink(path);
}

static void test_csv(void) {
    char path[300];
    snprintf(path, sizeof path, "%s/loss.csv", g_dir);
    test_csv_write(path);
    test_csv_resume(path);
    test_csv_lazy(path);
    unlink(path);
}

/* ---------------------------------------------------------------- progress */

static double fake_now(void *ctx) { return *(double *)ctx; }

static char *file_text(FILE *f) {
    long n = ftell(f);
    char *s = xcalloc((size_t)n + 1, 1);
    rewind(f);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    return s;
}

static void test_progress_plain(void) {
    FILE *f = tmpfile();
    double clock = 100.0;
    const char *names[] = {"D", "G"};
    Progress *p = progress_new("train", 100, f);
    progress_set_clock(p, fake_now, &clock);
    progress_set_batch(p, 16);
    progress_set_every(p, 10, 1000.0);
    for (int s = 1; s <= 100; s++) {
        clock += 0.5;
        float v[] = {0.5f, 1.5f + s};
        progress_update(p, s, 2, names, v);
    }
    progress_done(p);
    char *text = file_text(f);
    const char *l10 = strstr(text, "step 10/100");
    EXPECT(l10 && strstr(text, "train step 1/100 (1.0%)"), "plain lines: %s", text);
    EXPECT(l10 && strstr(l10, "2 it/s  32 img/s  elapsed 0:05  ETA 0:45  | D 0.5  G 11.5\n"), "line at step 10: %.120s", l10);
    EXPECT(count_lines(text) == 12 && !strchr(text, '\r'), "11 progress lines and a done line, no \\r (%d)", count_lines(text));
    EXPECT(strstr(text, "train done: step 100 in 0:50 (2 it/s)\n"), "done line: %s", text);
    free(text);
    fclose(f);
}

static void test_progress_timed(void) {
    FILE *f = tmpfile();
    double clock = 0.0;
    Progress *p = progress_new("eval", 0, f);
    progress_set_clock(p, fake_now, &clock);
    progress_set_start(p, 1000);
    progress_set_every(p, 0, 10.0);
    for (int s = 1001; s <= 1100; s++) {
        clock += 1.0;
        progress_update(p, s, 0, NULL, NULL);
    }
    progress_done(p);
    char *text = file_text(f);
    EXPECT(count_lines(text) == 11 && strstr(text, "eval step 1011  1 it/s  elapsed 0:11  ETA ?\n"),
           "every 10 s with an unknown total (%d lines): %s", count_lines(text), text);
    free(text);
    fclose(f);
}

/* A unit of its own (photos), resumed at 40 of 100: the rate and the ETA count from there. */
static void test_progress_unit(void) {
    FILE *f = tmpfile();
    double clock = 0.0;
    Progress *p = progress_new("trunk features (train)", 100, f);
    progress_set_clock(p, fake_now, &clock);
    progress_set_unit(p, "photos");
    progress_set_start(p, 40);
    progress_set_every(p, 10, 1000.0);
    for (int s = 41; s <= 100; s++) {
        clock += 0.25;
        progress_update(p, s, 0, NULL, NULL);
    }
    progress_done(p);
    char *text = file_text(f);
    EXPECT(strstr(text, "trunk features (train) photos 50/100 (50.0%)  4 photos/s  elapsed 0:03  ETA 0:13\n") &&
               strstr(text, "trunk features (train) done: photos 100 in 0:15 (4 photos/s)\n") && !strstr(text, "step"),
           "photos as the unit: %s", text);
    free(text);
    fclose(f);
}

static void test_progress_tty(void) {
    FILE *f = tmpfile();
    double clock = 0.0;
    const char *names[] = {"loss"};
    Progress *p = progress_new("train", 1000, f);
    progress_set_clock(p, fake_now, &clock);
    progress_set_tty(p, 1);
    for (int s = 1; s <= 1000; s++) {
        clock += 0.001;
        float v = 1.0f / s;
        progress_update(p, s, 1, names, &v);
    }
    progress_done(p);
    char *text = file_text(f);
    int redraws = 0;
    for (char *c = text; *c; c++) redraws += *c == '\r';
    EXPECT(redraws >= 10 && redraws <= 13, "about 10 redraws in 1 s (%d)", redraws);
    EXPECT(count_lines(text) == 1 && strstr(text, "[####################] step 1000/1000 (100.0%)"),
           "one line ended by progress_done, full bar: %s", strrchr(text, '\r'));
    EXPECT(strstr(text, "[##########          ] step 5"), "half bar");
    const char *last = strstr(text, "step 1000/");
    EXPECT(last && !strstr(last + 1, "step 1000/"), "the last step is drawn once");
    free(text);
    fclose(f);
}

int main(void) {
    test_begin("test_log");
    snprintf(g_dir, sizeof g_dir, "/tmp/test_log.XXXXXX");
    if (!mkdtemp(g_dir)) FAIL("mkdtemp failed");
    test_crc32c();
    test_tensorboard();
    test_csv();
    test_progress_plain();
    test_progress_timed();
    test_progress_unit();
    test_progress_tty();
    rmdir(g_dir);
    return test_end();
}
