/* run.c: the plumbing `attngan pretrain` and `attngan train` share; see run.h. */
#include "run.h"
#include "../ops/conv2d.h"
#include "../io/safetensors.h"
#include "../nn/keras_inception.h"
#include "../nn/config.h"
#include "../nn/load.h"
#include "checkpoint.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int parse_i64(const char *s, int64_t *v, const char *flag) {
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end || x < 0) {
        fprintf(stderr, "attngan: %s: '%s' is not a non-negative integer\n", flag, s);
        return -1;
    }
    *v = x;
    return 0;
}

int run_parse_args(int argc, char **argv, RunArgs *a, const char *usage) {
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(k, "-h") || !strcmp(k, "--help")) { fputs(usage, stdout); return 1; }
        if (!strcmp(k, "--quiet")) { a->quiet = 1; continue; }
        if (!strcmp(k, "--bf16")) { a->bf16 = 1; continue; }
        if (!v) { fprintf(stderr, "attngan: %s needs a value (or is unknown)\n%s", k, usage); return 2; }
        int64_t x;
        if (!strcmp(k, "--cfg")) a->cfg = v;
        else if (!strcmp(k, "--data")) a->data = v;
        else if (!strcmp(k, "--out")) a->out = v;
        else if (!strcmp(k, "--resume")) a->resume = v;
        else if (!strcmp(k, "--seed")) { if (parse_i64(v, &x, k) || x > 2147483647) return 2; a->seed = (int)x; a->has_seed = 1; }
        else if (!strcmp(k, "--threads")) { if (parse_i64(v, &x, k) || x > 1024) return 2; a->threads = (int)x; }
        else if (!strcmp(k, "--max-steps")) { if (parse_i64(v, &x, k)) return 2; a->max_steps = x; }
        else if (!strcmp(k, "--max-minutes")) {
            char *end;
            double m = strtod(v, &end);
            if (end == v || *end || !(m > 0)) { fprintf(stderr, "attngan: --max-minutes: '%s' is not a positive number\n", v); return 2; }
            a->max_minutes = m;
        }
        else if (!strcmp(k, "--set")) {
            if (a->n_sets == 64) { fprintf(stderr, "attngan: too many --set\n"); return 2; }
            a->sets[a->n_sets++] = v;
        } else { fprintf(stderr, "attngan: unknown option %s\n%s", k, usage); return 2; }
        i++;
    }
    return 0;
}

const char *run_data_dir(const Run *r) { return r->tc.data_dir; }

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { err_set("cannot open %s: %s", path, strerror(errno)); return NULL; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = xmalloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = 0;
    return buf;
}

int run_open(Run *r, const RunArgs *a, const char *default_cfg) {
    memset(r, 0, sizeof *r);
    train_config_default(&r->tc);
    if (a->resume) {
        if (ckpt_latest(a->resume, r->resume_dir, sizeof r->resume_dir)) return -1;
        char path[4300];
        snprintf(path, sizeof path, "%s/state.json", r->resume_dir);
        char *js = read_text(path);
        if (!js) return -1;
        r->resume_state = cJSON_Parse(js);
        free(js);
        if (!r->resume_state) return err_set("%s: not valid JSON", path);
        char *cfg = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(r->resume_state, "config"));
        int rc = cfg ? train_config_from_json(&r->tc, cfg) : err_set("%s: no config", path);
        free(cfg);
        if (rc) return err_prefix("%s", path);
        if (a->cfg || a->n_sets || a->has_seed) fprintf(stderr, "attngan: --resume uses the checkpoint's configuration; --cfg/--set/--seed are ignored\n");
    } else {
        const char *cfg = a->cfg ? a->cfg : default_cfg;
        if (cfg && train_config_load(&r->tc, cfg)) return -1;
        for (int i = 0; i < a->n_sets; i++)
            if (train_config_set(&r->tc, a->sets[i])) return -1;
        if (a->has_seed) r->tc.extra.seed = a->seed;
    }
    if (a->data) snprintf(r->tc.data_dir, sizeof r->tc.data_dir, "%s", a->data);
    if (a->out) snprintf(r->out, sizeof r->out, "%s", a->out);
    else if (a->resume) {
        /* the run directory holding checkpoints/step_N */
        snprintf(r->out, sizeof r->out, "%s", r->resume_dir);
        char *p = strstr(r->out, "/checkpoints/");
        if (p) *p = 0;
    } else snprintf(r->out, sizeof r->out, "out/%s", r->tc.config_name[0] ? r->tc.config_name : "run");
    if (mkdir_p(r->out)) return -1;
    threads_set(a->threads);
    if (a->bf16) conv2d_set_precision(CONV2D_BF16);
    if (conv2d_get_precision() == CONV2D_BF16 && !a->quiet)
        printf("convolutions: bf16 operands, fp32 accumulation (docs/PERFORMANCE.md)\n");
    char path[2200];
    snprintf(path, sizeof path, "%s/losses.csv", r->out);
    r->csv = csv_open(path, a->resume != NULL);
    if (!r->csv) return -1;
    snprintf(path, sizeof path, "%s/eval.csv", r->out);
    r->csv_eval = csv_open(path, a->resume != NULL);
    if (!r->csv_eval) return -1;
    snprintf(path, sizeof path, "%s/tensorboard", r->out);
    r->tb = tb_open(path);
    if (!r->tb) return -1;
    char *js = train_config_to_json(&r->tc);
    run_write_text(r, "config.json", js);
    free(js);
    return 0;
}

void run_close(Run *r) {
    if (r->progress) progress_done(r->progress);
    if (r->csv) csv_close(r->csv);
    if (r->csv_eval) csv_close(r->csv_eval);
    if (r->tb) tb_close(r->tb);
    if (r->resume_state) cJSON_Delete(r->resume_state);
    memset(r, 0, sizeof *r);
}

int run_load_inception(const Run *r, ImageEncoder *ie) {
    const char *kind = r->tc.extra.inception, *path = r->tc.extra.inception_weights;
    if (!strcmp(kind, "keras_nsfwjs")) {
        if (!path[0]) return err_set("EXTRA.INCEPTION 'keras_nsfwjs' needs EXTRA.INCEPTION_WEIGHTS (the model.json directory)");
        return keras_inception_load(ie, path);
    }
    if (!strcmp(kind, "torchvision")) {
        SafeTensors st;
        if (st_open(&st, path)) return err_prefix("EXTRA.INCEPTION_WEIGHTS");
        int rc = nn_load(&ie->ps, &st, "", LOAD_PARTIAL | LOAD_IGNORE_UNEXPECTED | LOAD_NBT_OPTIONAL, NULL);
        st_close(&st);
        if (rc) return -1;
        for (int i = 0; i < ie->ps.n; i++)
            if (image_encoder_is_trunk_key(ie->ps.entries[i]->name) && !ie->ps.entries[i]->loaded)
                return err_set("%s: trunk tensor %s missing (torchvision inception_v3 names expected)", path, ie->ps.entries[i]->name);
        return 0;
    }
    fprintf(stderr, "attngan: warning: EXTRA.INCEPTION is '%s': the image encoder's trunk keeps random weights\n", kind);
    return 0;
}

int run_check_finite(const Run *r, int n, const char *const *names, const float *values) {
    for (int i = 0; i < n; i++)
        if (!isfinite(values[i]))
            return err_set("%s is %g at step %lld (epoch %d): stopping; the last checkpoint in %s/checkpoints is kept", names[i],
                           (double)values[i], (long long)r->step, r->epoch, r->out);
    return 0;
}

void run_log(Run *r, int n, const char *const *names, const float *values) {
    if (r->progress) progress_update(r->progress, r->step, n, names, values);
    int every = r->tc.extra.log_interval > 0 ? r->tc.extra.log_interval : 1;
    if (r->step % every == 0 || r->step == 1) {
        csv_row(r->csv, r->step, r->epoch, n, names, values);
        char tag[128];
        for (int i = 0; i < n; i++) {
            snprintf(tag, sizeof tag, "loss/%s", names[i]);
            tb_scalar(r->tb, tag, values[i], r->step);
        }
    }
}

cJSON *run_state(const Run *r) {
    cJSON *s = cJSON_CreateObject();
    char *js = train_config_to_json(&r->tc);
    cJSON_AddItemToObject(s, "config", cJSON_Parse(js));
    free(js);
    cJSON_AddNumberToObject(s, "step", (double)r->step);
    cJSON_AddNumberToObject(s, "epoch", r->epoch);
    cJSON_AddNumberToObject(s, "batch_in_epoch", r->batch_in_epoch);
    cJSON_AddStringToObject(s, "vocabulary", "../../vocab.txt"); /* written beside the run's outputs */
    return s;
}

int run_write_text(const Run *r, const char *name, const char *text) {
    char path[2300];
    snprintf(path, sizeof path, "%s/%s", r->out, name);
    return write_file_atomic(path, text, strlen(text));
}

static volatile sig_atomic_t g_stop_signal = 0;

static void on_signal(int sig) { g_stop_signal = sig; }

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void run_start_clock(Run *r) {
    r->t_start = now_s();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int run_should_stop(const Run *r, const RunArgs *a, const char **why) {
    if (g_stop_signal) { *why = g_stop_signal == SIGINT ? "SIGINT" : "SIGTERM"; return 1; }
    if (a->max_steps && r->step >= a->max_steps) { *why = "--max-steps"; return 1; }
    if (a->max_minutes > 0 && now_s() - r->t_start >= a->max_minutes * 60.0) { *why = "--max-minutes"; return 1; }
    return 0;
}

void run_class_setup(Run *r, const Cub *cub, ModelConfig *mc) {
    r->use_class_map = r->tc.extra.zsl_train_classes_only;
    if (!r->use_class_map) return;
    memset(r->class_map, 0, sizeof r->class_map);
    for (int i = 0; i < cub->train.n_classes; i++)
        if (cub->train.classes[i] > 0 && cub->train.classes[i] < 1024) r->class_map[cub->train.classes[i]] = i + 1;
    mc->num_classes = cub->train.n_classes;
    printf("true zero-shot: the ZSL class head knows the %d training classes only\n", mc->num_classes);
}

void run_map_classes(const Run *r, int64_t *class_ids, int B) {
    if (!r->use_class_map) return;
    for (int i = 0; i < B; i++) {
        int64_t c = class_ids[i];
        CHECK(c > 0 && c < 1024 && r->class_map[c] > 0, "class %lld is not a training class", (long long)c);
        class_ids[i] = r->class_map[c];
    }
}
