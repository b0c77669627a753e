/* files.c: small file-system helpers every layer uses; see files.h. */
#include "files.h"
#include "../core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mkdir_p(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) && errno != EEXIST) return err_set("cannot create directory %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) && errno != EEXIST) return err_set("cannot create directory %s: %s", buf, strerror(errno));
    return 0;
}

int files_fsync(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return err_set("cannot open %s: %s", path, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    return rc ? err_set("fsync %s: %s", path, strerror(errno)) : 0;
}

int write_file_atomic(const char *path, const void *data, size_t len) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return err_set("cannot create %s: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t k = write(fd, p, left);
        if (k < 0) {
            if (errno == EINTR) continue;
            close(fd);
            unlink(tmp);
            return err_set("write %s: %s", tmp, strerror(errno));
        }
        p += k;
        left -= (size_t)k;
    }
    if (fsync(fd)) { close(fd); unlink(tmp); return err_set("fsync %s: %s", tmp, strerror(errno)); }
    close(fd);
    if (rename(tmp, path)) { unlink(tmp); return err_set("rename %s -> %s: %s", tmp, path, strerror(errno)); }
    return 0;
}

int copy_file_atomic(const char *src, const char *dst) {
    int in = open(src, O_RDONLY);
    if (in < 0) return err_set("cannot open %s: %s", src, strerror(errno));
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", dst, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { close(in); return err_set("cannot create %s: %s", tmp, strerror(errno)); }
    char buf[1 << 16];
    int rc = 0;
    for (;;) {
        ssize_t k = read(in, buf, sizeof buf);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) { rc = err_set("read %s: %s", src, strerror(errno)); break; }
        if (k == 0) break;
        for (ssize_t off = 0; off < k && !rc;) {
            ssize_t w = write(fd, buf + off, (size_t)(k - off));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) rc = err_set("write %s: %s", tmp, strerror(errno));
            else off += w;
        }
        if (rc) break;
    }
    close(in);
    if (!rc && fsync(fd)) rc = err_set("fsync %s: %s", tmp, strerror(errno));
    close(fd);
    if (!rc && rename(tmp, dst)) rc = err_set("rename %s -> %s: %s", tmp, dst, strerror(errno));
    if (rc) unlink(tmp);
    return rc;
}

void *read_file_bytes(const char *path, size_t max_bytes, size_t *len) {
    *len = 0;
    int is_stdin = !strcmp(path, "-");
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) { err_set("cannot open %s: %s", path, strerror(errno)); return NULL; }
    /* a regular file is read in one allocation of its size; stdin and pipes grow by doubling */
    struct stat st;
    size_t cap = 4096, n = 0, k;
    if (!is_stdin && fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
        if ((unsigned long long)st.st_size > max_bytes) {
            fclose(f);
            err_set("%s: %lld bytes is larger than the %zu-byte limit", path, (long long)st.st_size, max_bytes);
            return NULL;
        }
        cap = (size_t)st.st_size + 2;
    }
    char *buf = malloc(cap);
    if (!buf) goto oom;
    while ((k = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += k;
        if (n > max_bytes) {
            if (!is_stdin) fclose(f);
            free(buf);
            err_set("%s: more than the %zu-byte limit", path, max_bytes);
            return NULL;
        }
        if (cap - n < 2) {
            char *b2 = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
            if (!b2) goto oom;
            buf = b2;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    if (!is_stdin) fclose(f);
    if (bad) { free(buf); err_set("%s: read error", path); return NULL; }
    buf[n] = 0;
    *len = n;
    return buf;
oom:
    if (!is_stdin) fclose(f);
    free(buf);
    err_set("%s: out of memory reading it (%zu bytes so far)", path, n);
    return NULL;
}

char *read_file_all(const char *path, size_t max_bytes) {
    size_t len;
    return read_file_bytes(path, max_bytes, &len);
}
