/* fuzz_util.c: scratch files and packed directory trees for the harnesses; see fuzz.h. */
#include "fuzz.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[512];
static char g_path[1024];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void rm_tree(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static void cleanup(void) {
    if (g_dir[0]) rm_tree(g_dir);
}

static void die(const char *what, const char *path) {
    fprintf(stderr, "fuzz harness: %s %s: %s\n", what, path, strerror(errno));
    abort();
}

const char *fuzz_tmpdir(void) {
    if (g_dir[0]) return g_dir;
    const char *base = getenv("TMPDIR");
    struct stat sb;
    if (!base || !*base) base = stat("/dev/shm", &sb) == 0 && access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(g_dir, sizeof g_dir, "%s/attngan-fuzz-XXXXXX", base);
    if (!mkdtemp(g_dir)) die("cannot create", g_dir);
    atexit(cleanup);
    return g_dir;
}

/* mkdir -p of the directories of path (relative to the scratch directory's parent parts). */
static void make_parents(char *path) {
    for (char *p = path + strlen(fuzz_tmpdir()) + 1; (p = strchr(p, '/')); p++) {
        *p = 0;
        if (mkdir(path, 0755) && errno != EEXIST) die("cannot create", path);
        *p = '/';
    }
}

const char *fuzz_write(const char *name, const void *data, size_t size) {
    snprintf(g_path, sizeof g_path, "%s/%s", fuzz_tmpdir(), name);
    make_parents(g_path);
    FILE *f = fopen(g_path, "wb");
    if (!f) die("cannot create", g_path);
    if (size && fwrite(data, 1, size, f) != size) die("cannot write", g_path);
    if (fclose(f)) die("cannot write", g_path);
    return g_path;
}

void fuzz_clear(void) {
    rm_tree(fuzz_tmpdir());
    if (mkdir(g_dir, 0700) && errno != EEXIST) die("cannot create", g_dir);
}

char *fuzz_cstr(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    if (size) memcpy(s, data, size);
    s[size] = 0;
    return s;
}

static int path_ok(const char *p, size_t n) {
    if (n == 0 || n > 200 || p[0] == '/' || p[n - 1] == '/') return 0;
    int parts = 1;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '/') {
            if (p[i + 1] == '/') return 0;
            parts++;
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    /* no part "." or ".." */
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && p[j] != '/') j++;
        if ((j - i == 1 && p[i] == '.') || (j - i == 2 && p[i] == '.' && p[i + 1] == '.')) return 0;
        i = j + 1;
    }
    return parts <= 8;
}

static const uint8_t *find_sep(const uint8_t *p, const uint8_t *end) {
    for (; p + 4 <= end; p++)
        if (p[0] == '\n' && p[1] == '@' && p[2] == '@' && p[3] == ' ') return p;
    return end;
}

const char *fuzz_unpack_tree(const uint8_t *data, size_t size) {
    static char root[600];
    fuzz_clear();
    snprintf(root, sizeof root, "%s/tree", fuzz_tmpdir());
    if (mkdir(root, 0755) && errno != EEXIST) die("cannot create", root);
    const uint8_t *p = data, *end = data + size;
    /* the first entry may start the input; later ones follow a newline */
    if (!(size >= 3 && !memcmp(data, "@@ ", 3))) {
        p = find_sep(data, end);
        if (p < end) p++;
    }
    int files = 0;
    while (p + 3 <= end && !memcmp(p, "@@ ", 3) && files < 256) {
        const uint8_t *name = p + 3, *nl = memchr(name, '\n', (size_t)(end - name));
        if (!nl) break;
        const uint8_t *body = nl + 1, *stop = find_sep(nl, end);
        if (stop < body) stop = body; /* "\n@@ " right after the name line: an empty file */
        char rel[256];
        size_t n = (size_t)(nl - name);
        if (path_ok((const char *)name, n) && n < sizeof rel) {
            memcpy(rel, name, n);
            rel[n] = 0;
            char full[300];
            snprintf(full, sizeof full, "tree/%s", rel);
            struct stat sb;
            snprintf(g_path, sizeof g_path, "%s/%s", fuzz_tmpdir(), full);
            /* a path that is already a directory (or below a file) is skipped */
            if (!(stat(g_path, &sb) == 0 && S_ISDIR(sb.st_mode))) {
                char *slash = strrchr(g_path, '/');
                int blocked = 0;
                *slash = 0;
                for (char *q = g_path + strlen(fuzz_tmpdir()) + 1; q && !blocked; q = strchr(q + 1, '/')) {
                    char save = *q;
                    *q = 0;
                    blocked = stat(g_path, &sb) == 0 && !S_ISDIR(sb.st_mode);
                    *q = save;
                }
                blocked |= stat(g_path, &sb) == 0 && !S_ISDIR(sb.st_mode);
                *slash = '/';
                if (!blocked) {
                    fuzz_write(full, body, (size_t)(stop - body));
                    files++;
                }
            }
        }
        if (stop >= end) break;
        p = stop + 1;
    }
    return root;
}
