/* trunk_cache.c: the pretraining's trunk-feature cache, written in parts so that it resumes; see
 * trunk_cache.h. */
#include "trunk_cache.h"
#include "../data/loader.h"
#include "../io/safetensors.h"
#include "checkpoint.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MIXED_N TRUNK_CACHE_MIXED
#define POOL_N TRUNK_CACHE_POOL

void trunk_cache_free(TrunkCache *c) {
    free(c->img);
    free(c->mixed);
    free(c->pool);
    memset(c, 0, sizeof *c);
}

/* Checks an open cache file's tag, dtypes and shapes: the number of photos in it, or -1 when it
 * does not fit (its indices are checked by the callers). */
static int64_t check_file(const SafeTensors *st, const char *tag) {
    const char *t = st_meta(st, "source");
    const StTensor *m = st_find(st, "mixed"), *p = st_find(st, "pool"), *ix = st_find(st, "image_index");
    if (!(t && !strcmp(t, tag) && m && p && ix && m->dtype == ST_F16 && p->dtype == ST_F16 && ix->dtype == ST_I64 &&
          m->numel == ix->numel * MIXED_N && p->numel == ix->numel * POOL_N))
        return -1;
    return ix->numel;
}

/* The whole file: 0 read into c, 1 absent or not this cache's, -1 error. */
static int load_whole(TrunkCache *c, const char *path, const char *tag, const CubSplit *s) {
    if (access(path, R_OK)) return 1;
    SafeTensors st;
    if (st_open(&st, path)) return -1;
    int64_t n = check_file(&st, tag);
    if (n < 0) { st_close(&st); return 1; }
    c->n = (int)n;
    int64_t *idx = xmalloc((size_t)(n ? n : 1) * sizeof(int64_t));
    st_read_i64(&st, "image_index", idx, n);
    c->img = xmalloc((size_t)(n ? n : 1) * sizeof(int));
    for (int i = 0; i < c->n; i++) {
        if (idx[i] < 0 || idx[i] >= s->n || !s->images[idx[i]].present) { free(idx); st_close(&st); trunk_cache_free(c); return 1; }
        c->img[i] = (int)idx[i];
    }
    free(idx);
    const StTensor *m = st_find(&st, "mixed"), *p = st_find(&st, "pool");
    c->mixed = xmalloc((size_t)(m->numel ? m->numel : 1) * 2);
    c->pool = xmalloc((size_t)(p->numel ? p->numel : 1) * 2);
    memcpy(c->mixed, m->data, (size_t)m->numel * 2);
    memcpy(c->pool, p->data, (size_t)p->numel * 2);
    st_close(&st);
    return 0;
}

/* One part: its photos copied into their rows of c (done[row] set). 0 used, 1 not usable. */
static int load_part(TrunkCache *c, const char *path, const char *tag, const CubSplit *s, const int *row_of, unsigned char *done,
                     int *n_done) {
    SafeTensors st;
    if (st_open(&st, path)) return 1;
    int64_t n = check_file(&st, tag);
    if (n <= 0) { st_close(&st); return 1; }
    int64_t *idx = xmalloc((size_t)n * sizeof(int64_t));
    st_read_i64(&st, "image_index", idx, n);
    int ok = 1;
    for (int64_t i = 0; i < n && ok; i++) ok = idx[i] >= 0 && idx[i] < s->n && row_of[idx[i]] >= 0 && !done[row_of[idx[i]]];
    if (ok) {
        const uint16_t *m = (const uint16_t *)st_find(&st, "mixed")->data, *p = (const uint16_t *)st_find(&st, "pool")->data;
        for (int64_t i = 0; i < n; i++) {
            int row = row_of[idx[i]];
            memcpy(c->mixed + (size_t)row * MIXED_N, m + (size_t)i * MIXED_N, (size_t)MIXED_N * 2);
            memcpy(c->pool + (size_t)row * POOL_N, p + (size_t)i * POOL_N, (size_t)POOL_N * 2);
            done[row] = 1;
        }
        *n_done += (int)n;
    }
    free(idx);
    st_close(&st);
    return ok ? 0 : 1;
}

/* Writes the rows rows[0..n) of c as a part at path, atomically; rows NULL: every row (the whole
 * file, straight from c: no copy beside the writer's). */
static int write_rows(const TrunkCache *c, const int *rows, int n, const char *tag, const char *path) {
    uint16_t *m = c->mixed, *p = c->pool;
    if (rows) {
        m = xmalloc((size_t)(n ? n : 1) * MIXED_N * 2);
        p = xmalloc((size_t)(n ? n : 1) * POOL_N * 2);
        for (int i = 0; i < n; i++) {
            memcpy(m + (size_t)i * MIXED_N, c->mixed + (size_t)rows[i] * MIXED_N, (size_t)MIXED_N * 2);
            memcpy(p + (size_t)i * POOL_N, c->pool + (size_t)rows[i] * POOL_N, (size_t)POOL_N * 2);
        }
    }
    int64_t *idx = xmalloc((size_t)(n ? n : 1) * sizeof(int64_t));
    for (int i = 0; i < n; i++) idx[i] = c->img[rows ? rows[i] : i];
    StWriter *w = st_writer_new();
    st_writer_add(w, "mixed", ST_F16, 4, (int64_t[]){n, 768, 17, 17}, m);
    st_writer_add(w, "pool", ST_F16, 2, (int64_t[]){n, POOL_N}, p);
    st_writer_add(w, "image_index", ST_I64, 1, (int64_t[]){n}, idx);
    st_writer_meta(w, "source", tag);
    int rc = st_writer_write(w, path);
    st_writer_free(w);
    if (rows) {
        free(m);
        free(p);
    }
    free(idx);
    return rc;
}

/* part_NNNNN.safetensors: NNNNN, else -1. */
static int part_number(const char *name) {
    const char *suffix = ".safetensors";
    size_t n = strlen(name), ls = strlen(suffix);
    if (n != 5 + 5 + ls || strncmp(name, "part_", 5) || strcmp(name + 10, suffix)) return -1;
    int k = 0;
    for (int i = 5; i < 10; i++) {
        if (name[i] < '0' || name[i] > '9') return -1;
        k = k * 10 + (name[i] - '0');
    }
    return k;
}

/* Removes the parts directory and everything in it. */
static void remove_parts(const char *pdir) {
    DIR *d = opendir(pdir);
    if (!d) return;
    struct dirent *e;
    char p[4600];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", pdir, e->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(pdir);
}

int trunk_cache_build(TrunkCache *c, const Cub *cub, const CubSplit *s, ImageEncoder *ie, const TrunkCacheSpec *sp, int *done_out,
                      int *total_out) {
    memset(c, 0, sizeof *c);
    char path[4400], pdir[4400];
    snprintf(path, sizeof path, "%s/%s_trunk.safetensors", sp->dir, sp->name);
    snprintf(pdir, sizeof pdir, "%s/%s_trunk.parts", sp->dir, sp->name);
    int rc = load_whole(c, path, sp->tag, s);
    if (rc <= 0) {
        if (rc == 0) {
            if (sp->progress) fprintf(sp->progress, "trunk features of %d %s photos read from %s\n", c->n, sp->name, path);
            if (done_out) *done_out = c->n;
            if (total_out) *total_out = c->n;
        }
        return rc;
    }
    rc = 0;
    if (mkdir_p(sp->dir)) return -1;
    /* every present photo, in split order; rows filled from the parts, then computed */
    c->img = xmalloc((size_t)(s->n ? s->n : 1) * sizeof(int));
    int *row_of = xmalloc((size_t)(s->n ? s->n : 1) * sizeof(int));
    for (int i = 0; i < s->n; i++) {
        row_of[i] = s->images[i].present ? c->n : -1;
        if (s->images[i].present) c->img[c->n++] = i;
    }
    c->mixed = xmalloc((size_t)(c->n ? c->n : 1) * MIXED_N * 2);
    c->pool = xmalloc((size_t)(c->n ? c->n : 1) * POOL_N * 2);
    unsigned char *done = xcalloc((size_t)(c->n ? c->n : 1), 1);
    int n_done = 0, next_part = 0;
    DIR *d = opendir(pdir);
    if (d) {
        struct dirent *e;
        char p[4600];
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(p, sizeof p, "%s/%s", pdir, e->d_name);
            int k = part_number(e->d_name);
            if (k >= 0) {
                if (k >= next_part) next_part = k + 1;
                if (load_part(c, p, sp->tag, s, row_of, done, &n_done)) unlink(p); /* another tag, or damaged */
            } else unlink(p); /* a temporary file of a write that was killed */
        }
        closedir(d);
    } else if (mkdir_p(pdir)) {
        free(row_of);
        free(done);
        trunk_cache_free(c);
        return -1;
    }
    int total = c->n, before = n_done;
    if (sp->progress) {
        if (n_done) fprintf(sp->progress, "trunk features of %s: %d of %d photos read from %s; computing the other %d\n", sp->name, n_done,
                            total, pdir, total - n_done);
        else fprintf(sp->progress, "computing the trunk features of %d %s photos (once; kept in %s, in parts as it goes: Ctrl-C keeps them "
                     "and the same command continues)\n", total, sp->name, path);
        fflush(sp->progress);
    }
    LoaderConfig lc;
    loader_config_default(&lc);
    lc.base_size = sp->size; /* the trunk resizes other sizes to 299, as it does a generator's images */
    lc.branch_num = 1;
    lc.augment = sp->view > 0;
    lc.tight_pad = sp->tight_pad;
    lc.words_num = sp->words_num;
    enum { CB = 8 };
    const int S = sp->size, part_n = sp->part_photos > 0 ? sp->part_photos : TRUNK_CACHE_PART;
    float *imgs = xmalloc((size_t)CB * 3 * S * S * sizeof(float));
    int64_t caps[CB * 64];
    int lens[CB], ii[CB], ci[CB], rows[CB];
    int64_t cls[CB];
    int *pending = xmalloc((size_t)(part_n + CB) * sizeof(int)), n_pending = 0, stopped = 0;
    Tape tp;
    tape_init(&tp);
    int was = ie->train;
    ie->train = 0;
    time_t t0 = time(NULL);
    Progress *pr = NULL;
    if (sp->progress && n_done < total) {
        char what[64];
        snprintf(what, sizeof what, "trunk features (%s)", sp->name);
        pr = progress_new(what, total, sp->progress);
        progress_set_unit(pr, "photos");
        progress_set_start(pr, n_done);
        progress_set_every(pr, 0, 10.0);
    }
    for (int r0 = 0; r0 < total && !rc;) {
        if (sp->should_stop && sp->should_stop(sp->stop_ctx)) { stopped = 1; break; }
        int nb = 0;
        for (; r0 < total && nb < CB; r0++)
            if (!done[r0]) rows[nb++] = r0;
        if (!nb) break;
        Batch b;
        memset(&b, 0, sizeof b);
        b.B = nb; b.T = lc.words_num; b.n_scales = 1; b.sizes[0] = S; b.imgs[0] = imgs;
        b.captions = caps; b.cap_lens = lens; b.class_ids = cls; b.image_index = ii; b.caption_index = ci;
        for (int k = 0; k < nb && !rc; k++) { /* a view's crop and flip: from (view, photo) alone */
            uint64_t seed = sp->view > 0 ? loader_mix64(0x7669657773ULL ^ ((uint64_t)sp->view << 40) ^ (uint64_t)c->img[rows[k]]) : 1;
            rc = loader_make_sample(cub, &s->images[c->img[rows[k]]], &lc, seed, &b, k);
        }
        if (rc) break;
        tape_reset(&tp);
        tape_no_grad_begin(&tp);
        Tensor *x = TNEW(&tp, nb, 3, S, S);
        tensor_upload(x, imgs);
        ImageEncoderOut o = image_encoder_forward(&tp, ie, x);
        tape_no_grad_end(&tp);
        float *mixed = xmalloc((size_t)o.mixed_6e->n * sizeof(float)), *pool = xmalloc((size_t)o.trunk_pool->n * sizeof(float));
        tensor_download(o.mixed_6e, mixed); /* (the trunk may run on a device) */
        tensor_download(o.trunk_pool, pool);
        for (int k = 0; k < nb; k++) {
            uint16_t *dm = c->mixed + (size_t)rows[k] * MIXED_N, *dp = c->pool + (size_t)rows[k] * POOL_N;
            for (int64_t j = 0; j < MIXED_N; j++) dm[j] = st_f32_to_f16(mixed[(size_t)k * MIXED_N + j]);
            for (int64_t j = 0; j < POOL_N; j++) dp[j] = st_f32_to_f16(pool[(size_t)k * POOL_N + j]);
            done[rows[k]] = 1;
            pending[n_pending++] = rows[k];
        }
        free(mixed);
        free(pool);
        n_done += nb;
        if (n_pending >= part_n) {
            char pp[4600];
            snprintf(pp, sizeof pp, "%s/part_%05d.safetensors", pdir, next_part++);
            rc = write_rows(c, pending, n_pending, sp->tag, pp);
            n_pending = 0;
        }
        if (pr) progress_update(pr, n_done, 0, NULL, NULL);
    }
    if (!rc && n_pending) { /* what a stop left since the last part */
        char pp[4600];
        snprintf(pp, sizeof pp, "%s/part_%05d.safetensors", pdir, next_part++);
        rc = write_rows(c, pending, n_pending, sp->tag, pp);
    }
    if (pr) progress_done(pr);
    ie->train = was;
    free(imgs);
    free(pending);
    tape_free(&tp);
    if (done_out) *done_out = n_done;
    if (total_out) *total_out = total;
    if (!rc && !stopped) {
        /* the whole split: one file in the format of every version, then the parts go */
        rc = write_rows(c, NULL, total, sp->tag, path);
        if (!rc) remove_parts(pdir);
        if (!rc && sp->progress)
            fprintf(sp->progress, "trunk features of %d %s photos computed in %ld s (%d read from parts): %s\n", total, sp->name,
                    (long)(time(NULL) - t0), before, path);
    }
    free(row_of);
    free(done);
    if (rc || stopped) trunk_cache_free(c);
    return rc ? -1 : stopped ? 1 : 0;
}
