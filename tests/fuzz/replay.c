/* replay.c: runs a fuzz harness (tests/fuzz/fuzz_<name>.c) over its committed inputs without
 * libFuzzer, as a unit test of the normal build (so `make test` and `make test SANITIZE=1` run
 * them): every file of tests/fuzz/corpus/<name>/ (the seeds) and tests/fuzz/regress/<name>/
 * (the reproducers of the bugs fuzzing found) goes through LLVMFuzzerTestOneInput once. A crash,
 * a sanitizer report or a leak ends the process (tests/run_tests.sh counts it); an input that
 * takes over FUZZ_REPLAY_SECONDS (default 10) fails, since slow inputs were bugs too.
 * <name> comes from the binary's name, replay_<name>. The inputs are found under $FUZZ_DIR, else
 * tests/fuzz from the working directory, else relative to the binary (build/<dir>/tests/fuzz/). */
#include "fuzz.h"
#include "../test.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Replays every regular file of dir (sorted); returns how many. */
static int replay_dir(const char *dir, double limit, int required) {
    DIR *d = opendir(dir);
    if (!d) {
        if (required) EXPECT(0, "%s: no such directory (the harness needs seeds)", dir);
        return 0;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) names = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    int done = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        free(names[i]);
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        FILE *f = fopen(path, "rb");
        if (!EXPECT(f != NULL, "cannot open %s", path)) continue;
        uint8_t *buf = malloc((size_t)sb.st_size + 1);
        size_t len = fread(buf, 1, (size_t)sb.st_size, f);
        fclose(f);
        if (!EXPECT(len == (size_t)sb.st_size, "cannot read %s", path)) { free(buf); continue; }
        /* a copy of exactly len bytes, as libFuzzer passes: ASan sees reads past the end */
        uint8_t *in = malloc(len ? len : 1);
        memcpy(in, buf, len);
        free(buf);
        double t0 = now();
        int rc = LLVMFuzzerTestOneInput(in, len);
        double dt = now() - t0;
        free(in);
        EXPECT(rc == 0, "%s: the harness returned %d", path, rc);
        EXPECT(dt <= limit, "%s: took %.2f s (limit %.0f s: a slow input is a bug)", path, dt, limit);
        if (getenv("TEST_VERBOSE")) printf("  %s: %zu bytes, %.3f s\n", path, len, dt);
        done++;
    }
    free(names);
    return done;
}

int main(int argc, char **argv) {
    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    const char *name = strncmp(base, "replay_", 7) == 0 ? base + 7 : base;
    char title[256];
    snprintf(title, sizeof title, "fuzz_%s (replay)", name);
    test_begin(title);
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    char root[4096];
    const char *env = getenv("FUZZ_DIR");
    if (env && *env) snprintf(root, sizeof root, "%s", env);
    else if (is_dir("tests/fuzz/corpus")) snprintf(root, sizeof root, "tests/fuzz");
    else snprintf(root, sizeof root, "%.*s../../../../tests/fuzz", (int)(base - argv[0]), argv[0]);
    double limit = getenv("FUZZ_REPLAY_SECONDS") ? atof(getenv("FUZZ_REPLAY_SECONDS")) : 10.0;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/corpus/%s", root, name);
    int seeds = replay_dir(dir, limit, 1);
    EXPECT(seeds > 0, "%s: no seed inputs", dir);
    snprintf(dir, sizeof dir, "%s/regress/%s", root, name);
    int regress = replay_dir(dir, limit, 0);
    printf("fuzz_%s: replayed %d seeds and %d regression inputs\n", name, seeds, regress);
    return test_end();
}
