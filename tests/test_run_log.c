/* test_run_log.c: what src/train/run.c logs and removes: losses.csv (and TensorBoard) get step 1,
 * every LOG_INTERVAL-th step and always the run's last step, once; a run stopped before its first
 * step (a pretraining stopped while it computes its feature cache) leaves no run files behind, so
 * the same command starts it again, while cache/ stays; a run with a step keeps its files. */
#include "test.h"
#include "../src/train/run.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return xstrdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = xcalloc((size_t)n + 1, 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

/* The steps of the CSV's rows, comma-separated ("1,4,6"). */
static void csv_steps(const char *text, char *out, size_t cap) {
    out[0] = 0;
    const char *p = strchr(text, '\n');
    while (p && p[1]) {
        p++;
        long step = strtol(p, NULL, 10);
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%ld", l ? "," : "", step);
        p = strchr(p, '\n');
    }
}

/* A run of `steps` steps with LOG_INTERVAL `every`: the steps in losses.csv. */
static void logged(const char *dir, int every, int steps, char *out, size_t cap) {
    Run r;
    memset(&r, 0, sizeof r);
    r.tc.extra.log_interval = every;
    char path[600];
    snprintf(path, sizeof path, "%s/losses.csv", dir);
    r.csv = csv_open(path, 0);
    snprintf(path, sizeof path, "%s/tensorboard", dir);
    r.tb = tb_open(path);
    const char *names[2] = {"a", "b"};
    for (int s = 1; s <= steps; s++) {
        r.step = s;
        r.epoch = s / 3;
        float v[2] = {(float)s, 0.5f * s};
        run_log(&r, 2, names, v);
    }
    run_close(&r);
    snprintf(path, sizeof path, "%s/losses.csv", dir);
    char *text = read_all(path);
    csv_steps(text, out, cap);
    free(text);
}

int main(void) {
    test_begin("test_run_log");
    char tmpl[] = "/tmp/test_run_log.XXXXXX";
    char *tmp = mkdtemp(tmpl);
    if (!EXPECT(tmp != NULL, "mkdtemp")) return test_end();
    char steps[200], path[600];
    logged(tmp, 4, 6, steps, sizeof steps);
    EXPECT(!strcmp(steps, "1,4,6"), "LOG_INTERVAL 4, 6 steps: rows %s (want 1,4,6: the last step too)", steps);
    snprintf(path, sizeof path, "%s/losses.csv", tmp);
    char *text = read_all(path);
    EXPECT(strstr(text, "\n6,2,") != NULL && strstr(text, ",6,3\n") != NULL, "the last row has its step, epoch and values: %s", text);
    free(text);
    logged(tmp, 4, 8, steps, sizeof steps);
    EXPECT(!strcmp(steps, "1,4,8"), "a last step on the interval is written once: %s", steps);
    logged(tmp, 1, 3, steps, sizeof steps);
    EXPECT(!strcmp(steps, "1,2,3"), "LOG_INTERVAL 1: every step: %s", steps);

    /* run_discard_unstarted: a fresh run stopped before step 1 */
    char dir[600];
    snprintf(dir, sizeof dir, "%s/run", tmp);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/cache", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/cache/keep", dir);
    FILE *f = fopen(path, "w");
    fputs("x", f);
    fclose(f);
    Run r;
    memset(&r, 0, sizeof r);
    snprintf(r.out, sizeof r.out, "%s", dir);
    snprintf(path, sizeof path, "%s/losses.csv", dir);
    r.csv = csv_open(path, 0);
    snprintf(path, sizeof path, "%s/tensorboard", dir);
    r.tb = tb_open(path);
    run_write_text(&r, "config.json", "{}");
    EXPECT(run_dir_has_run(dir), "run files written");
    EXPECT(run_discard_unstarted(&r) == 0 && !run_dir_has_run(dir), "a run stopped before step 1 is removed: %s", err_msg());
    struct stat st;
    snprintf(path, sizeof path, "%s/cache/keep", dir);
    EXPECT(stat(path, &st) == 0, "its cache/ stays");
    snprintf(path, sizeof path, "%s/config.json", dir);
    EXPECT(stat(path, &st) != 0, "its config.json goes");
    /* a run with a step keeps its files */
    memset(&r, 0, sizeof r);
    snprintf(r.out, sizeof r.out, "%s", dir);
    snprintf(path, sizeof path, "%s/losses.csv", dir);
    r.csv = csv_open(path, 0);
    r.step = 3;
    EXPECT(run_discard_unstarted(&r) == 0 && stat(path, &st) == 0, "a run with a step is only closed");

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd)) printf("  could not remove %s\n", tmp);
    return test_end();
}
