/* checkpoint.c: atomic training checkpoints; see checkpoint.h. */
#include "checkpoint.h"
#include "../io/safetensors.h"
#include "../nn/load.h"
#include "log.h"
#include "../io/files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>





static int save_net(const char *dir, const CkptNet *n) {
    StWriter *w = st_writer_new();
    char key[512], path[4200];
    for (int i = 0; i < n->ps->n; i++) {
        const ParamEntry *e = n->ps->entries[i];
        if (n->skip && n->skip(e->name)) continue;
        snprintf(key, sizeof key, "%s", e->name);
        if (e->kind == PARAM_BUFFER_I64) st_writer_add(w, key, ST_I64, 0, NULL, &e->ival);
        else {
            int64_t shape[TENSOR_MAX_DIMS];
            for (int d = 0; d < e->t.ndim; d++) shape[d] = e->t.shape[d];
            st_writer_add(w, key, ST_F32, e->t.ndim, shape, e->t.data);
        }
    }
    st_writer_meta(w, "format", "attngan-checkpoint-1");
    st_writer_meta(w, "network", n->ps->name);
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, n->name);
    int rc = st_writer_write(w, path);
    st_writer_free(w);
    return rc;
}

static int save_opt(const char *dir, const CkptOpt *o) {
    StWriter *w = st_writer_new();
    ParamSet *ps = o->adam->ps;
    char key[600], path[4200], buf[64];
    for (int i = 0; i < ps->n; i++) {
        const ParamEntry *e = ps->entries[i];
        if (e->kind != PARAM_WEIGHT || !e->t.requires_grad) continue;
        int64_t shape[TENSOR_MAX_DIMS];
        for (int d = 0; d < e->t.ndim; d++) shape[d] = e->t.shape[d];
        snprintf(key, sizeof key, "m.%s", e->name);
        st_writer_add(w, key, ST_F32, e->t.ndim, shape, o->adam->m + e->offset);
        snprintf(key, sizeof key, "v.%s", e->name);
        st_writer_add(w, key, ST_F32, e->t.ndim, shape, o->adam->v + e->offset);
    }
    snprintf(buf, sizeof buf, "%" PRId64, o->adam->step);
    st_writer_meta(w, "step", buf);
    snprintf(buf, sizeof buf, "%.9g", (double)o->adam->lr);
    st_writer_meta(w, "lr", buf);
    snprintf(path, sizeof path, "%s/%s.adam.safetensors", dir, o->name);
    int rc = st_writer_write(w, path);
    st_writer_free(w);
    return rc;
}

static int rm_rf(const char *path) {
    DIR *d = opendir(path);
    if (!d) return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
    struct dirent *e;
    char sub[4200];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        rm_rf(sub);
    }
    closedir(d);
    return rmdir(path);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The steps of root's step_N directories, ascending (at most 4096); -1 when root cannot be read. */
static int list_steps(const char *root, int64_t steps[4096]) {
    DIR *d = opendir(root);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096) {
        long long s;
        char tail;
        if (sscanf(e->d_name, "step_%lld%c", &s, &tail) == 1) steps[n++] = s;
    }
    closedir(d);
    qsort(steps, (size_t)n, sizeof steps[0], cmp_i64);
    return n;
}

static void prune(const char *root, int keep_last, int64_t newest) {
    int64_t steps[4096];
    int n = list_steps(root, steps);
    char path[4200];
    for (int i = 0; i < n - keep_last; i++) {
        if (steps[i] == newest) continue;
        snprintf(path, sizeof path, "%s/step_%" PRId64, root, steps[i]);
        rm_rf(path);
    }
}

/* The CRC-32C and size of a file; 0 or -1 with err_msg(). */
static int file_crc(const char *path, uint32_t *crc, int64_t *bytes) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return err_set("cannot open %s: %s", path, strerror(errno));
    static char buf[1 << 20];
    uint32_t c = 0;
    int64_t n = 0;
    for (;;) {
        ssize_t k = read(fd, buf, sizeof buf);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) { close(fd); return err_set("read %s: %s", path, strerror(errno)); }
        if (k == 0) break;
        c = crc32c_extend(c, buf, (size_t)k);
        n += k;
    }
    close(fd);
    *crc = c;
    *bytes = n;
    return 0;
}

/* manifest.json of a checkpoint directory: every other file's size and CRC-32C */
static int write_manifest(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return err_set("cannot list %s: %s", dir, strerror(errno));
    cJSON *m = cJSON_CreateObject(), *files = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "format", "attngan-manifest-1");
    cJSON_AddItemToObject(m, "files", files);
    struct dirent *e;
    char path[4400], hex[16];
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "manifest.json") || strstr(e->d_name, ".tmp.")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        uint32_t crc;
        int64_t bytes;
        if ((rc = file_crc(path, &crc, &bytes))) break;
        cJSON *f = cJSON_AddObjectToObject(files, e->d_name);
        cJSON_AddNumberToObject(f, "bytes", (double)bytes);
        snprintf(hex, sizeof hex, "%08x", crc);
        cJSON_AddStringToObject(f, "crc32c", hex);
    }
    closedir(d);
    if (!rc) {
        char *js = cJSON_Print(m);
        snprintf(path, sizeof path, "%s/manifest.json", dir);
        rc = write_file_atomic(path, js, strlen(js));
        free(js);
    }
    cJSON_Delete(m);
    return rc;
}

int ckpt_verify(const char *step_dir) {
    char path[4400];
    snprintf(path, sizeof path, "%s/manifest.json", step_dir);
    if (access(path, F_OK)) return 1; /* written before manifests: nothing to check against */
    char *js = read_file_all(path, 1 << 20);
    if (!js) return -1;
    cJSON *m = cJSON_Parse(js);
    free(js);
    const cJSON *files = m ? cJSON_GetObjectItemCaseSensitive(m, "files") : NULL;
    if (!cJSON_IsObject(files) || !cJSON_GetArraySize(files)) {
        cJSON_Delete(m);
        return err_set("%s: not a manifest (damaged)", path);
    }
    int rc = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, files) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(f, "bytes"), *c = cJSON_GetObjectItemCaseSensitive(f, "crc32c");
        if (!cJSON_IsNumber(b) || !cJSON_IsString(c)) { rc = err_set("%s: entry %s is damaged", path, f->string); break; }
        snprintf(path, sizeof path, "%s/%s", step_dir, f->string);
        uint32_t crc;
        int64_t bytes;
        if (file_crc(path, &crc, &bytes)) { rc = err_prefix("checkpoint %s", step_dir); break; }
        char hex[16];
        snprintf(hex, sizeof hex, "%08x", crc);
        if (bytes != (int64_t)b->valuedouble) {
            rc = err_set("%s has %lld bytes, its manifest says %.0f (truncated or overwritten)", path, (long long)bytes, b->valuedouble);
            break;
        }
        if (strcmp(hex, c->valuestring)) {
            rc = err_set("%s: CRC-32C %s, its manifest says %s (its bytes changed)", path, hex, c->valuestring);
            break;
        }
    }
    cJSON_Delete(m);
    return rc;
}

int ckpt_save(const char *dir, int64_t step, const CkptNet *nets, int n_nets, const CkptOpt *opts, int n_opts,
              const cJSON *state, int keep_last) {
    char root[4200], tmp[4300], final[4300], path[4400];
    snprintf(root, sizeof root, "%s/checkpoints", dir);
    if (mkdir_p(root)) return -1;
    snprintf(tmp, sizeof tmp, "%s/.tmp_step_%" PRId64 ".%d", root, step, (int)getpid());
    snprintf(final, sizeof final, "%s/step_%" PRId64, root, step);
    rm_rf(tmp);
    if (mkdir_p(tmp)) return -1;
    /* a failure (a full disk, a size limit) leaves the last complete checkpoint as it was and
     * removes this one's temporary directory */
    for (int i = 0; i < n_nets; i++)
        if (save_net(tmp, &nets[i])) return rm_rf(tmp), err_prefix("checkpoint %s", final);
    for (int i = 0; i < n_opts; i++)
        if (save_opt(tmp, &opts[i])) return rm_rf(tmp), err_prefix("checkpoint %s", final);
    char *js = cJSON_Print(state);
    snprintf(path, sizeof path, "%s/state.json", tmp);
    int rc = write_file_atomic(path, js, strlen(js));
    free(js);
    if (rc || write_manifest(tmp) || files_fsync(tmp)) return rm_rf(tmp), err_prefix("checkpoint %s", final);
    rm_rf(final); /* an older checkpoint of the same step (a resumed run) */
    if (rename(tmp, final)) return err_set("rename %s -> %s: %s", tmp, final, strerror(errno));
    if (files_fsync(root)) return -1;
    char line[64];
    int k = snprintf(line, sizeof line, "step_%" PRId64 "\n", step);
    snprintf(path, sizeof path, "%s/latest", root);
    if (write_file_atomic(path, line, (size_t)k) || files_fsync(root)) return -1;
    if (keep_last > 0) prune(root, keep_last, step);
    return 0;
}

int ckpt_latest(const char *dir, char *buf, int len) {
    char path[4200], line[256] = {0};
    snprintf(path, sizeof path, "%s/state.json", dir);
    if (access(path, R_OK) == 0) { /* a step directory itself */
        snprintf(buf, len, "%s", dir);
        return 0;
    }
    snprintf(path, sizeof path, "%s/checkpoints/latest", dir);
    FILE *f = fopen(path, "r");
    if (!f) return err_set("%s: no checkpoint (no %s)", dir, path);
    if (!fgets(line, sizeof line, f)) line[0] = 0;
    fclose(f);
    line[strcspn(line, "\r\n")] = 0;
    if (strncmp(line, "step_", 5)) return err_set("%s: does not name a checkpoint ('%s')", path, line);
    snprintf(buf, len, "%s/checkpoints/%s", dir, line);
    return 0;
}

int ckpt_latest_good(const char *dir, char *buf, int len) {
    char path[4400];
    snprintf(path, sizeof path, "%s/state.json", dir);
    if (access(path, R_OK) == 0) { /* a step directory, named: it must be whole */
        if (ckpt_verify(dir) < 0) return err_prefix("--resume");
        snprintf(buf, len, "%s", dir);
        return 0;
    }
    char latest[4300], why[1024] = "";
    int have = ckpt_latest(dir, latest, sizeof latest) == 0;
    if (have) {
        snprintf(path, sizeof path, "%s/state.json", latest);
        int v = access(path, R_OK) ? err_set("%s has no state.json", latest) : ckpt_verify(latest);
        if (v >= 0) {
            snprintf(buf, len, "%s", latest);
            return 0;
        }
        snprintf(why, sizeof why, "%s", err_msg());
    } else snprintf(why, sizeof why, "%s", err_msg());
    /* the newest older checkpoint that is whole */
    char root[4300];
    snprintf(root, sizeof root, "%s/checkpoints", dir);
    int64_t steps[4096];
    int n = list_steps(root, steps);
    if (n < 0) return err_set("%s", why);
    for (int i = n - 1; i >= 0; i--) {
        char cand[4400];
        snprintf(cand, sizeof cand, "%s/step_%" PRId64, root, steps[i]);
        if (have && !strcmp(cand, latest)) continue;
        snprintf(path, sizeof path, "%s/state.json", cand);
        if (access(path, R_OK) || ckpt_verify(cand) < 0) continue;
        fprintf(stderr, "attngan: warning: %s; resuming from the newest whole checkpoint, %s\n", why, cand);
        snprintf(buf, len, "%s", cand);
        return 0;
    }
    return err_set("%s, and no older checkpoint in %s is whole", why, root);
}

static int load_opt(const char *dir, const CkptOpt *o) {
    char path[4200], key[600];
    snprintf(path, sizeof path, "%s/%s.adam.safetensors", dir, o->name);
    SafeTensors st;
    if (st_open(&st, path)) return -1;
    ParamSet *ps = o->adam->ps;
    int rc = 0;
    for (int i = 0; i < ps->n && !rc; i++) {
        const ParamEntry *e = ps->entries[i];
        if (e->kind != PARAM_WEIGHT || !e->t.requires_grad) continue;
        snprintf(key, sizeof key, "m.%s", e->name);
        rc = st_read_f32(&st, key, o->adam->m + e->offset, e->t.n);
        snprintf(key, sizeof key, "v.%s", e->name);
        if (!rc) rc = st_read_f32(&st, key, o->adam->v + e->offset, e->t.n);
    }
    const char *s = st_meta(&st, "step"), *lr = st_meta(&st, "lr");
    if (!rc && (!s || !lr)) rc = err_set("%s: no step/lr in the metadata", path);
    if (!rc) {
        o->adam->step = strtoll(s, NULL, 10);
        o->adam->lr = strtof(lr, NULL);
    }
    st_close(&st);
    return rc;
}

int ckpt_load(const char *step_dir, const CkptNet *nets, int n_nets, const CkptOpt *opts, int n_opts, cJSON **state) {
    char path[4200];
    for (int i = 0; i < n_nets; i++) {
        snprintf(path, sizeof path, "%s/%s.safetensors", step_dir, nets[i].name);
        SafeTensors st;
        if (st_open(&st, path)) return -1;
        int rc = nn_load(nets[i].ps, &st, "", nets[i].skip ? LOAD_PARTIAL : 0, NULL);
        st_close(&st);
        if (rc) return -1;
    }
    for (int i = 0; i < n_opts; i++)
        if (load_opt(step_dir, &opts[i])) return -1;
    snprintf(path, sizeof path, "%s/state.json", step_dir);
    char *buf = read_file_all(path, 64u << 20);
    if (!buf) return -1;
    *state = cJSON_Parse(buf);
    free(buf);
    if (!*state) return err_set("%s: not valid JSON", path);
    return 0;
}

void ckpt_put_rng(cJSON *obj, const char *key, const Rng *r) {
    char buf[64];
    cJSON *o = cJSON_AddObjectToObject(obj, key);
    snprintf(buf, sizeof buf, "%" PRIu64, r->seed); /* as strings: doubles lose 64-bit values */
    cJSON_AddStringToObject(o, "seed", buf);
    snprintf(buf, sizeof buf, "%" PRIu64, r->offset);
    cJSON_AddStringToObject(o, "offset", buf);
}

int ckpt_get_rng(const cJSON *obj, const char *key, Rng *r) {
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(obj, key);
    const cJSON *s = o ? cJSON_GetObjectItemCaseSensitive(o, "seed") : NULL, *f = o ? cJSON_GetObjectItemCaseSensitive(o, "offset") : NULL;
    if (!cJSON_IsString(s) || !cJSON_IsString(f)) return err_set("state.json: missing or bad RNG state '%s'", key);
    r->seed = strtoull(s->valuestring, NULL, 10);
    r->offset = strtoull(f->valuestring, NULL, 10);
    return 0;
}

