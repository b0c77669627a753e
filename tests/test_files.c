/* test_files.c: the file helpers of src/io/files.c. read_file_bytes is what every reader of an
 * untrusted file goes through (pickle, pth, CUB tables and captions, images, Keras weights,
 * configs and model.json), so its refusals are checked here once: a missing file, a regular file
 * over the limit (refused by its size, before anything is read), a stream over the limit (stdin,
 * refused while reading), binary contents with NULs (the length counts them, a NUL follows), and
 * an empty file. write_file_atomic and copy_file_atomic leave the old file or the new one. */
#include "test.h"
#include "../src/core/error.h"
#include "../src/io/files.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[] = "/tmp/attngan_test_files_XXXXXX";

static void path_of(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", g_dir, name); }

static void test_read_bytes(void) {
    char p[512];
    unsigned char data[300];
    for (int i = 0; i < 300; i++) data[i] = (unsigned char)(i * 7);   /* NULs included */
    path_of(p, sizeof p, "bin");
    EXPECT(write_file_atomic(p, data, sizeof data) == 0, "write %s", p);
    size_t len = 12345;
    unsigned char *b = read_file_bytes(p, 300, &len);
    EXPECT(b && len == 300 && !memcmp(b, data, 300) && b[300] == 0,
           "a 300-byte binary file at a 300-byte limit reads whole, NULs counted, a NUL after (len %zu)", len);
    free(b);

    len = 12345;
    int rc_null = (b = read_file_bytes(p, 299, &len)) == NULL;
    const char *msg = err_msg();
    EXPECT(rc_null && len == 0 && strstr(msg, p) && strstr(msg, "300 bytes") && strstr(msg, "299-byte limit"),
           "a file one byte over the limit is refused by its size, naming the file and both sizes: %s", msg);
    free(b);

    path_of(p, sizeof p, "missing");
    rc_null = (b = read_file_bytes(p, 100, &len)) == NULL;
    msg = err_msg();
    EXPECT(rc_null && strstr(msg, "cannot open") && strstr(msg, p) && strstr(msg, "No such file"),
           "a missing file names itself and the reason: %s", msg);
    free(b);

    path_of(p, sizeof p, "empty");
    EXPECT(write_file_atomic(p, "", 0) == 0, "write %s", p);
    b = read_file_bytes(p, 100, &len);
    EXPECT(b && len == 0 && b[0] == 0, "an empty file reads as 0 bytes and a NUL");
    free(b);

    /* a directory opens but cannot be read */
    rc_null = (b = read_file_bytes(g_dir, 100, &len)) == NULL;
    msg = err_msg();
    EXPECT(rc_null && strstr(msg, g_dir), "a directory is refused, naming it: %s", msg);
    free(b);

    char *s = read_file_all(p, 100);
    EXPECT(s && s[0] == 0, "read_file_all of an empty file is the empty string");
    free(s);
}

/* stdin ("-") has no size to check first: the limit is enforced while reading, and the buffer
 * grows by doubling past its first 4 KiB */
static void test_read_stdin(void) {
    char p[512];
    size_t n = 100000;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++) big[i] = (char)('a' + i % 26);
    path_of(p, sizeof p, "stream");
    EXPECT(write_file_atomic(p, big, n) == 0, "write %s", p);
    int saved = dup(0), fd = open(p, O_RDONLY);
    EXPECT(saved >= 0 && fd >= 0, "open %s", p);
    dup2(fd, 0);
    close(fd);
    clearerr(stdin);
    size_t len = 0;
    char *b = read_file_bytes("-", n, &len);
    EXPECT(b && len == n && !memcmp(b, big, n) && b[n] == 0, "stdin of %zu bytes at that limit reads whole (len %zu)", n, len);
    free(b);

    fd = open(p, O_RDONLY);
    dup2(fd, 0);
    close(fd);
    clearerr(stdin);
    int rc_null = (b = read_file_bytes("-", n - 1, &len)) == NULL;
    const char *msg = err_msg();
    EXPECT(rc_null && strstr(msg, "-: more than the 99999-byte limit"), "stdin over the limit is refused while reading: %s", msg);
    free(b);
    dup2(saved, 0);
    close(saved);
    clearerr(stdin);
    free(big);
}

static void test_atomic(void) {
    char p[512], q[512];
    path_of(p, sizeof p, "atomic");
    EXPECT(write_file_atomic(p, "old", 3) == 0 && write_file_atomic(p, "newer", 5) == 0, "write twice");
    size_t len = 0;
    char *b = read_file_bytes(p, 100, &len);
    EXPECT(b && len == 5 && !memcmp(b, "newer", 5), "the second write replaced the first whole");
    free(b);
    path_of(q, sizeof q, "copy");
    EXPECT(copy_file_atomic(p, q) == 0, "copy");
    b = read_file_bytes(q, 100, &len);
    EXPECT(b && len == 5 && !memcmp(b, "newer", 5), "the copy holds the same bytes");
    free(b);
    /* no temporary file is left beside them */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | grep -c tmp) -eq 0", g_dir);
    EXPECT(system(cmd) == 0, "no temporary file left in %s", g_dir);
    path_of(q, sizeof q, "no/such/dir/x");
    int rc = write_file_atomic(q, "x", 1);
    EXPECT(rc == -1 && strstr(err_msg(), "no/such/dir"), "a write into a missing directory fails naming it: %s", err_msg());
}

int main(void) {
    test_begin("test_files");
    if (!mkdtemp(g_dir)) {
        test_skip("cannot make a scratch directory under /tmp");
        return test_end();
    }
    test_read_bytes();
    test_read_stdin();
    test_atomic();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", g_dir);
    return test_end();
}
