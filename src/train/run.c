/* run.c: the plumbing `attngan pretrain` and `attngan train` share; see run.h. */
#include "run.h"
#include "../ops/conv2d.h"
#include "../io/files.h"
#include "../io/locate.h"
#include "../io/safetensors.h"
#include "../nn/keras_inception.h"
#include "../nn/config.h"
#include "../nn/load.h"
#include "checkpoint.h"
#include "../core/dist.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <sys/stat.h>
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
        if (!strcmp(k, "--force")) { a->force = 1; continue; }
        if (!v) { fprintf(stderr, "attngan: %s needs a value (or is unknown)\n%s", k, usage); return 2; }
        int64_t x;
        if (!strcmp(k, "--cfg")) a->cfg = v;
        else if (!strcmp(k, "--data")) a->data = v;
        else if (!strcmp(k, "--out")) a->out = v;
        else if (!strcmp(k, "--resume")) a->resume = v;
        else if (!strcmp(k, "--seed")) { if (parse_i64(v, &x, k) || x > 2147483647) return 2; a->seed = (int)x; a->has_seed = 1; }
        else if (!strcmp(k, "--threads")) {
            if (parse_i64(v, &x, k)) return 2;
            if (x < 1 || x > 1024) { fprintf(stderr, "attngan: --threads: must be 1..1024, not %lld (leave it out for the default)\n", (long long)x); return 2; }
            a->threads = (int)x;
        }
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
    if (a->force && a->resume) { fprintf(stderr, "attngan: --force starts a clean run and --resume continues one: give one of them\n"); return 2; }
    return 0;
}

int run_check_original_keys(const TrainConfig *c, const char *program) {
    int gan = !strcmp(program, "train");
    if (!c->train.flag)
        return gan ? err_set("TRAIN.FLAG is False: in AttnGAN such a config generates instead of training (with B_VALIDATION True "
                             "every test caption, else example_captions.txt), and `attngan train` only trains: draw with `attngan "
                             "sample --model RUN` or `attngan examples --model RUN --captions DATA/example_captions.txt`, or set "
                             "TRAIN.FLAG True (--set TRAIN.FLAG=True) to train")
                   : err_set("TRAIN.FLAG is False: `attngan pretrain` only trains (AttnGAN's FLAG False configs are for sampling "
                             "a GAN); set TRAIN.FLAG True (--set TRAIN.FLAG=True)");
    if (gan && c->train.net_g[0] && c->train.b_net_d)
        return err_set("TRAIN.NET_G is set and TRAIN.B_NET_D is True: AttnGAN would also load the discriminators netD0..%d.pth "
                       "beside NET_G, which this port does not read: continue a run with --resume RUN (G, the Ds, the optimizers "
                       "and the step), or set TRAIN.B_NET_D False to start fresh discriminators from NET_G's G",
                       c->tree.branch_num - 1);
    if (gan && !c->gan.b_attention)
        return err_set("GAN.B_ATTENTION is False: this port's generator always has AttnGAN's word attention (B_ATTENTION True)");
    if (strcmp(c->dataset_name, "birds"))
        return err_set("DATASET_NAME is '%s': this port reads CUB birds only (DATASET_NAME birds)", c->dataset_name);
    if (c->text.captions_per_image != 10)
        return err_set("TEXT.CAPTIONS_PER_IMAGE is %d: CUB has 10 captions per image, the only value this port reads",
                       c->text.captions_per_image);
    return 0;
}

int run_dir_has_run(const char *dir) {
    static const char *const marks[] = {"checkpoints", "losses.csv", "tensorboard"};
    char p[PATH_MAX + 32];
    struct stat st;
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, marks[i]);
        if (!stat(p, &st)) return 1;
    }
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)ftw;
    return (flag == FTW_DP ? rmdir(path) : unlink(path)) ? -1 : 0;
}

int run_dir_wipe(const char *dir) {
    static const char *const names[] = {"checkpoints", "samples", "tensorboard", "encoders", "losses.csv", "eval.csv",
                                        "config.json", "netG.safetensors", "text_encoder.safetensors",
                                        "image_encoder.safetensors", "zsl_d.safetensors", "vocab.txt"};
    char p[PATH_MAX + 64];
    struct stat st;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        if (lstat(p, &st)) continue;
        int rc = S_ISDIR(st.st_mode) ? nftw(p, rm_entry, 16, FTW_DEPTH | FTW_PHYS) : unlink(p);
        if (rc) return err_set("--force: cannot remove %s: %s", p, strerror(errno));
    }
    return 0;
}

/* Whether path lies inside dir (both resolved). */
static int path_inside(const char *path, const char *dir) {
    char rp[PATH_MAX], rd[PATH_MAX];
    if (!realpath(path, rp) || !realpath(dir, rd)) return 0;
    size_t n = strlen(rd);
    return !strncmp(rp, rd, n) && (rp[n] == '/' || !rp[n]);
}

/* --out that holds a run: refused unless it is the run resumed, or --force (wiped first). */
static int guard_out(const Run *r, const RunArgs *a) {
    if (!run_dir_has_run(r->out)) return 0;
    if (a->resume) {
        char rd[4300];
        snprintf(rd, sizeof rd, "%s", r->resume_dir);
        char *p = strstr(rd, "/checkpoints/");
        if (p) *p = 0;
        if (path_inside(rd, r->out) && path_inside(r->out, rd)) return 0;
        return err_set("--out %s holds another run than the one resumed (%s): give its own directory, or leave --out out to "
                       "continue in %s", r->out, rd, rd);
    }
    if (!a->force) {
        char ck[sizeof r->out + 32];
        struct stat st;
        snprintf(ck, sizeof ck, "%s/checkpoints", r->out);
        if (stat(ck, &st)) /* e.g. a pretraining killed while it computed its feature cache */
            return err_set("--out %s already holds a run (checkpoints/, losses.csv, tensorboard/) that has no checkpoint yet: start it "
                           "again with --force (its files are removed first; cache/ is kept, with the trunk features computed so far), "
                           "or give another --out", r->out);
        return err_set("--out %s already holds a run (checkpoints/, losses.csv, tensorboard/): continue it with --resume %s, "
                       "or start a clean run there with --force (its files are removed first; cache/ is kept), or give another --out",
                       r->out, r->out);
    }
    const char *inside[2] = {r->tc.train.net_e, r->tc.train.net_g};
    for (int i = 0; i < 2; i++)
        if (inside[i][0] && path_inside(inside[i], r->out))
            return err_set("--force would remove %s (TRAIN.%s), which lies in --out %s: copy it elsewhere first", inside[i],
                           i ? "NET_G" : "NET_E", r->out);
    if (run_dir_wipe(r->out)) return -1;
    printf("--force: removed the run in %s (cache/ kept)\n", r->out);
    fflush(stdout); /* said before whatever comes next, even a failure that exits */
    return 0;
}

/* The default config (cfg/...) in the working directory, else beside the binary's repository or
 * in the installed share directory. */
static const char *find_default_cfg(const char *cfg, char *buf, size_t len) {
    struct stat st;
    if (!cfg || !stat(cfg, &st)) return cfg;
    const char *exe = locate_exe_dir();
    const char *fmt[2] = {"%s/../../%s", "%s/../share/attngan/%s"};
    for (int i = 0; exe[0] && i < 2; i++) {
        snprintf(buf, len, fmt[i], exe, cfg);
        if (!stat(buf, &st)) return buf;
    }
    return cfg;
}

const char *run_data_dir(const Run *r) { return r->tc.data_dir; }

int run_open(Run *r, const RunArgs *a, const char *default_cfg) {
    memset(r, 0, sizeof *r);
    train_config_default(&r->tc);
    if (a->resume) {
        if (ckpt_latest_good(a->resume, r->resume_dir, sizeof r->resume_dir)) return -1;
        char path[4300];
        snprintf(path, sizeof path, "%s/state.json", r->resume_dir);
        char *js = read_file_all(path, 64u << 20);
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
        char cbuf[PATH_MAX + 64];
        const char *cfg = a->cfg ? a->cfg : find_default_cfg(default_cfg, cbuf, sizeof cbuf);
        if (cfg && train_config_load(&r->tc, cfg)) return -1;
        for (int i = 0; i < a->n_sets; i++)
            if (train_config_set(&r->tc, a->sets[i])) return -1;
        if (a->has_seed) r->tc.extra.seed = a->seed;
    }
    if (a->program && run_check_original_keys(&r->tc, a->program)) return -1;
    {
        /* --data, $ATTNGAN_DATA/birds, DATA_DIR, ../shared/data/birds */
        char from[4400], data[PATH_MAX];
        if (a->resume) snprintf(from, sizeof from, "the checkpoint %s", r->resume_dir);
        else snprintf(from, sizeof from, "%s", a->cfg ? a->cfg : default_cfg ? default_cfg : "the defaults");
        if (locate_data(a->data, r->tc.data_dir, from, data, sizeof data, NULL, 0)) return -1;
        if (strlen(data) >= sizeof r->tc.data_dir) return err_set("the data directory %s: path too long", data);
        snprintf(r->tc.data_dir, sizeof r->tc.data_dir, "%s", data);
    }
    if (a->out) snprintf(r->out, sizeof r->out, "%s", a->out);
    else if (a->resume) {
        /* the run directory holding checkpoints/step_N */
        snprintf(r->out, sizeof r->out, "%s", r->resume_dir);
        char *p = strstr(r->out, "/checkpoints/");
        if (p) *p = 0;
    } else snprintf(r->out, sizeof r->out, "out/%s", r->tc.config_name[0] ? r->tc.config_name : "run");
    if (a->resume) {
        const cJSON *ws = cJSON_GetObjectItemCaseSensitive(r->resume_state, "world_size");
        int w = cJSON_IsNumber(ws) ? (int)ws->valuedouble : 1;
        if (w != dist_size())
            return err_set("%s was written by a run of %d rank%s, this one has %d: each rank's place in the data and its random "
                           "stream depend on the number of ranks, so the run would not continue as it started. Resume with "
                           "%s%d rank%s, or start a new run from its weights (TRAIN.NET_G)", r->resume_dir, w, w == 1 ? "" : "s",
                           dist_size(), w == 1 ? "one process (no mpirun), or mpirun -np " : "mpirun -np ", w, w == 1 ? "" : "s");
    }
    threads_set(a->threads);
    if (!dist_is_root()) return 0; /* rank 0 alone writes (core/dist.h): no logs, no files */
    if (guard_out(r, a)) return -1;
    if (mkdir_p(r->out)) return -1;
    if (a->bf16) conv2d_set_precision(CONV2D_BF16);
    if (conv2d_get_precision() == CONV2D_BF16 && !a->quiet)
        printf("convolutions: bf16 operands, fp32 accumulation (docs/PERFORMANCE.md)\n");
    char path[2200];
    snprintf(path, sizeof path, "%s/losses.csv", r->out);
    r->csv = csv_open(path, a->resume != NULL);
    if (!r->csv) return -1;
    /* eval.csv: the pretraining's held-out evaluation at the end of every epoch, created by its
     * first row; a GAN run writes none, so it has no eval.csv (attngan eval scores its export) */
    snprintf(path, sizeof path, "%s/eval.csv", r->out);
    r->csv_eval = csv_open_lazy(path, a->resume != NULL);
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
    run_log_flush(r);
    if (r->progress) progress_done(r->progress);
    if (r->csv) csv_close(r->csv);
    if (r->csv_eval) csv_close(r->csv_eval);
    if (r->tb) tb_close(r->tb);
    if (r->resume_state) cJSON_Delete(r->resume_state);
    for (int i = 0; i < r->log_n; i++) free(r->log_names[i]);
    free(r->log_names);
    free(r->log_values);
    memset(r, 0, sizeof *r);
}

int run_discard_unstarted(Run *r) {
    int fresh = r->step == 0 && !r->resume_state;
    char out[sizeof r->out];
    snprintf(out, sizeof out, "%s", r->out);
    run_close(r);
    return fresh ? run_dir_wipe(out) : 0;
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

static void log_row(Run *r, int64_t step, int epoch, int n, const char *const *names, const float *values) {
    if (r->csv) csv_row(r->csv, step, epoch, n, names, values);
    char tag[128];
    for (int i = 0; r->tb && i < n; i++) {
        snprintf(tag, sizeof tag, "loss/%s", names[i]);
        tb_scalar(r->tb, tag, values[i], step);
    }
}

void run_log(Run *r, int n, const char *const *names, const float *values) {
    if (r->progress) progress_update(r->progress, r->step, n, names, values);
    int every = r->tc.extra.log_interval > 0 ? r->tc.extra.log_interval : 1;
    if (r->step % every == 0 || r->step == 1) {
        log_row(r, r->step, r->epoch, n, names, values);
        r->log_pending_step = 0;
        return;
    }
    /* kept until a later step or the end of the run */
    if (r->log_n != n) {
        for (int i = 0; i < r->log_n; i++) free(r->log_names[i]);
        r->log_names = xrealloc(r->log_names, (size_t)(n ? n : 1) * sizeof(char *));
        r->log_values = xrealloc(r->log_values, (size_t)(n ? n : 1) * sizeof(float));
        for (int i = 0; i < n; i++) r->log_names[i] = NULL;
        r->log_n = n;
    }
    for (int i = 0; i < n; i++) {
        if (!r->log_names[i] || strcmp(r->log_names[i], names[i])) {
            free(r->log_names[i]);
            r->log_names[i] = xstrdup(names[i]);
        }
        r->log_values[i] = values[i];
    }
    r->log_pending_step = r->step;
    r->log_pending_epoch = r->epoch;
}

void run_log_flush(Run *r) {
    if (!r->log_pending_step) return;
    log_row(r, r->log_pending_step, r->log_pending_epoch, r->log_n, (const char *const *)r->log_names, r->log_values);
    r->log_pending_step = 0;
}

cJSON *run_state(const Run *r) {
    cJSON *s = cJSON_CreateObject();
    char *js = train_config_to_json(&r->tc);
    cJSON_AddItemToObject(s, "config", cJSON_Parse(js));
    free(js);
    cJSON_AddNumberToObject(s, "step", (double)r->step);
    cJSON_AddNumberToObject(s, "epoch", r->epoch);
    cJSON_AddNumberToObject(s, "batch_in_epoch", r->batch_in_epoch);
    cJSON_AddNumberToObject(s, "world_size", dist_size());
    cJSON_AddStringToObject(s, "vocabulary", "../../vocab.txt"); /* written beside the run's outputs */
    return s;
}

void run_put_rng(cJSON *st, const Rng *rng, int n) {
    int W = dist_size();
    Rng *all = dist_is_root() ? xmalloc((size_t)W * n * sizeof(Rng)) : NULL;
    dist_gather(rng, all, (size_t)n * sizeof(Rng));
    if (st) {
        ckpt_put_rng(st, "rng", rng);
        if (W * n > 1) {
            cJSON *arr = cJSON_AddArrayToObject(st, "rng_streams");
            for (int k = 0; k < W * n; k++) {
                cJSON *tmp = cJSON_CreateObject();
                ckpt_put_rng(tmp, "r", &all[k]);
                cJSON_AddItemToArray(arr, cJSON_DetachItemFromObject(tmp, "r"));
                cJSON_Delete(tmp);
            }
        }
    }
    free(all);
}

int run_get_rng(const cJSON *st, Rng *rng, int n) {
    if (dist_size() * n == 1) return ckpt_get_rng(st, "rng", rng);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(st, "rng_streams");
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != dist_size() * n)
        return err_set("state.json: 'rng_streams' must list the %d random streams of the run's %d rank(s) x %d micro-batch(es)",
                       dist_size() * n, dist_size(), n);
    for (int j = 0; j < n; j++) {
        cJSON *w = cJSON_CreateObject();
        cJSON_AddItemReferenceToObject(w, "r", cJSON_GetArrayItem(arr, dist_rank() * n + j));
        int rc = ckpt_get_rng(w, "r", &rng[j]);
        cJSON_Delete(w);
        if (rc) return rc;
    }
    return 0;
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

void run_trap_signals(void) {
    static int done = 0;
    if (done) return;
    done = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* a file-size limit (ulimit -f) makes write() fail with EFBIG, named in the error, instead of
     * killing the run: the last whole checkpoint stays */
    signal(SIGXFSZ, SIG_IGN);
}

const char *run_stop_signal(void) {
    if (!g_stop_signal) return NULL;
    return g_stop_signal == SIGINT ? "SIGINT" : "SIGTERM";
}

void run_start_clock(Run *r) {
    r->t_start = now_s();
    run_trap_signals();
}

int run_should_stop(const Run *r, const RunArgs *a, const char **why) {
    /* the ranks of a data-parallel run agree (the largest reason wins), so they stop together */
    int code = 0;
    if (g_stop_signal) code = g_stop_signal == SIGINT ? 4 : 3;
    else if (a->max_steps && r->step >= a->max_steps) code = 2;
    else if (a->max_minutes > 0 && now_s() - r->t_start >= a->max_minutes * 60.0) code = 1;
    dist_max_int(&code, 1);
    static const char *const reasons[5] = {"", "--max-minutes", "--max-steps", "SIGTERM", "SIGINT"};
    *why = reasons[code];
    return code != 0;
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
