/* test_trunk_cache.c: the pretraining's trunk-feature cache (src/train/trunk_cache.h) on real
 * photos (skips without ../shared/data or $ATTNGAN_DATA) through a random trunk: computed straight
 * and computed with a stop, a damaged part and a killed write's leftover, then resumed, give the same
 * bytes; the parts go once the whole file is written; the whole file is read back; a file of
 * another tag is not reused; a file in the format of earlier versions is read as it is; a view
 * (EXTRA.CACHE_VIEWS) is the same bytes wherever it is computed, and another crop than the centre's. */
#include "test.h"
#include "../src/core/threads.h"
#include "../src/data/cub.h"
#include "../src/nn/config.h"
#include "../src/nn/init.h"
#include "../src/train/trunk_cache.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *data_root(char *buf, int len) {
    const char *env = getenv("ATTNGAN_DATA");
    snprintf(buf, len, "%s/birds", env ? env : "../shared/data");
    char probe[1200];
    snprintf(probe, sizeof probe, "%s/train/filenames.pickle", buf);
    return access(probe, R_OK) == 0 ? buf : NULL;
}

static int stop_after(void *ctx) {
    int *left = ctx;
    return (*left)-- <= 0;
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static char *file_text(FILE *f) {
    long n = ftell(f);
    char *s = xcalloc((size_t)n + 1, 1);
    rewind(f);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    return s;
}

static int same(const TrunkCache *a, const TrunkCache *b) {
    return a->n == b->n && a->n > 0 && !memcmp(a->img, b->img, (size_t)a->n * sizeof(int)) &&
           !memcmp(a->mixed, b->mixed, (size_t)a->n * TRUNK_CACHE_MIXED * 2) && !memcmp(a->pool, b->pool, (size_t)a->n * TRUNK_CACHE_POOL * 2);
}

int main(void) {
    test_begin("test_trunk_cache");
    char root[1100];
    if (!data_root(root, sizeof root)) {
        test_skip("no birds data (../shared/data or $ATTNGAN_DATA)");
        return test_end();
    }
    threads_set(2);
    Cub cub;
    if (!EXPECT(cub_open(&cub, root) == 0, "cub_open: %s", err_msg())) return test_end();
    /* the first images of the test split: a few dozen, of which some have photos */
    CubSplit sub = cub.test;
    int present = 0;
    for (sub.n = 0; sub.n < cub.test.n && present < 10; sub.n++) present += cub.test.images[sub.n].present;
    ModelConfig mc;
    model_config_default(&mc);
    mc.embedding_dim = 16;
    ImageEncoder ie;
    image_encoder_init(&ie, &mc);
    Rng rng;
    rng_init(&rng, 7);
    init_default(&ie.ps, &rng);
    char tmpl[] = "/tmp/test_trunk_cache.XXXXXX", a_dir[200], b_dir[200], path[400], parts[400];
    char *tmp = mkdtemp(tmpl);
    if (!EXPECT(tmp != NULL, "mkdtemp")) return test_end();
    snprintf(a_dir, sizeof a_dir, "%s/a", tmp);
    snprintf(b_dir, sizeof b_dir, "%s/b", tmp);
    const char *tag = "random:none:centre64";
    TrunkCacheSpec sa = {a_dir, "test", tag, 64, 0, 12, 8, NULL, NULL, NULL, 0};

    /* straight */
    TrunkCache a, b;
    int done = -1, total = -1;
    EXPECT(trunk_cache_build(&a, &cub, &sub, &ie, &sa, &done, &total) == 0 && a.n == present && done == present && total == present,
           "computed straight: %d photos (%d present): %s", a.n, present, err_msg());
    snprintf(path, sizeof path, "%s/test_trunk.safetensors", a_dir);
    snprintf(parts, sizeof parts, "%s/test_trunk.parts", a_dir);
    struct stat st;
    EXPECT(stat(path, &st) == 0 && stat(parts, &st) != 0, "the whole file written, no parts left");

    /* stopped after 1 batch of 8: 8 photos kept in a part, no whole file */
    FILE *log = tmpfile();
    int left = 1;
    TrunkCacheSpec sb = {b_dir, "test", tag, 64, 0, 12, 8, stop_after, &left, log, 0};
    EXPECT(trunk_cache_build(&b, &cub, &sub, &ie, &sb, &done, &total) == 1 && b.n == 0 && done == 8 && total == present,
           "stopped: 1, %d of %d photos done", done, total);
    snprintf(path, sizeof path, "%s/test_trunk.safetensors", b_dir);
    snprintf(parts, sizeof parts, "%s/test_trunk.parts", b_dir);
    EXPECT(stat(path, &st) != 0 && count_entries(parts) == 1, "stopped: no whole file, 1 part (%d)", count_entries(parts));
    /* a damaged part and a killed write's temporary file are removed on resume, not read */
    char junk[500];
    snprintf(junk, sizeof junk, "%s/part_00007.safetensors", parts);
    FILE *f = fopen(junk, "wb");
    fputs("not a safetensors file", f);
    fclose(f);
    snprintf(junk, sizeof junk, "%s/part_00001.safetensors.tmp.4242", parts);
    f = fopen(junk, "wb");
    fputs("half", f);
    fclose(f);
    /* resumed */
    sb.should_stop = NULL;
    EXPECT(trunk_cache_build(&b, &cub, &sub, &ie, &sb, &done, &total) == 0 && done == present, "resumed: %s", err_msg());
    EXPECT(same(&a, &b), "stopped + resumed gives the bytes of the straight computation");
    EXPECT(stat(path, &st) == 0 && stat(parts, &st) != 0, "resumed: the whole file written, the parts removed");
    char *text = file_text(log);
    char want[200];
    snprintf(want, sizeof want, "8 of %d photos read from", present);
    EXPECT(strstr(text, want) && strstr(text, "photos/s") && strstr(text, "ETA") && strstr(text, "(8 read from parts)"),
           "progress with photos/s and an ETA, the parts read: %s", text);
    free(text);
    fclose(log);
    trunk_cache_free(&b);

    /* read back */
    log = tmpfile();
    sb.progress = log;
    EXPECT(trunk_cache_build(&b, &cub, &sub, &ie, &sb, NULL, NULL) == 0 && same(&a, &b), "read back");
    text = file_text(log);
    EXPECT(strstr(text, "read from") && !strstr(text, "computing"), "read, not computed: %s", text);
    free(text);
    fclose(log);
    trunk_cache_free(&b);

    /* the format of earlier versions: one file, mixed / pool f16, image_index i64, source */
    StWriter *w = st_writer_new();
    int64_t *idx = xmalloc((size_t)a.n * sizeof(int64_t));
    for (int i = 0; i < a.n; i++) idx[i] = a.img[i];
    st_writer_add(w, "image_index", ST_I64, 1, (int64_t[]){a.n}, idx);
    st_writer_add(w, "mixed", ST_F16, 4, (int64_t[]){a.n, 768, 17, 17}, a.mixed);
    st_writer_add(w, "pool", ST_F16, 2, (int64_t[]){a.n, 2048}, a.pool);
    st_writer_meta(w, "source", tag);
    char old_dir[200];
    snprintf(old_dir, sizeof old_dir, "%s/old", tmp);
    mkdir(old_dir, 0755);
    snprintf(path, sizeof path, "%s/test_trunk.safetensors", old_dir);
    EXPECT(st_writer_write(w, path) == 0, "an old-format file");
    st_writer_free(w);
    free(idx);
    TrunkCacheSpec so = {old_dir, "test", tag, 64, 0, 12, 8, NULL, NULL, NULL, 0};
    EXPECT(trunk_cache_build(&b, &cub, &sub, &ie, &so, NULL, NULL) == 0 && same(&a, &b), "a file of an earlier version is read as it is");
    trunk_cache_free(&b);

    /* another tag: computed again, and the file replaced */
    log = tmpfile();
    TrunkCacheSpec st2 = {old_dir, "test", "random:none:centre64:tight-edge", 64, 1, 12, 8, NULL, NULL, log, 0};
    EXPECT(trunk_cache_build(&b, &cub, &sub, &ie, &st2, NULL, NULL) == 0 && b.n == present, "another tag: computed");
    text = file_text(log);
    EXPECT(strstr(text, "computing the trunk features") != NULL, "another tag is not reused: %s", text);
    free(text);
    fclose(log);
    trunk_cache_free(&b);

    /* views (EXTRA.CACHE_VIEWS): a view is the loader's random crop and flip from (view, photo)
     * alone: the same bytes computed in another directory, other bytes than the centre crop and
     * than another view, and the same photos */
    char v_dir[200], w_dir[200];
    snprintf(v_dir, sizeof v_dir, "%s/v", tmp);
    snprintf(w_dir, sizeof w_dir, "%s/w", tmp);
    const char *vtag = "random:none:centre64:crop64-of-76:view1";
    TrunkCacheSpec sv1 = {v_dir, "test_v1", vtag, 64, 0, 12, 8, NULL, NULL, NULL, 1};
    TrunkCacheSpec sw1 = {w_dir, "test_v1", vtag, 64, 0, 12, 8, NULL, NULL, NULL, 1};
    TrunkCacheSpec sv2 = {v_dir, "test_v2", "random:none:centre64:crop64-of-76:view2", 64, 0, 12, 8, NULL, NULL, NULL, 2};
    TrunkCache v1, w1, v2;
    int rv1 = trunk_cache_build(&v1, &cub, &sub, &ie, &sv1, NULL, NULL);
    int rw1 = trunk_cache_build(&w1, &cub, &sub, &ie, &sw1, NULL, NULL);
    int rv2 = trunk_cache_build(&v2, &cub, &sub, &ie, &sv2, NULL, NULL);
    EXPECT(rv1 == 0 && rw1 == 0 && rv2 == 0 && v1.n == present && v2.n == present, "views 1 and 2 computed: %s", err_msg());
    EXPECT(same(&v1, &w1), "view 1 computed twice: the same bytes");
    EXPECT(v1.n == a.n && !memcmp(v1.img, a.img, (size_t)a.n * sizeof(int)), "a view holds the centre crops' photos, in their order");
    int differ_a = 0, differ_2 = 0;
    for (int i = 0; i < a.n && v1.n == a.n && v2.n == a.n; i++) {
        differ_a += memcmp(v1.pool + (size_t)i * TRUNK_CACHE_POOL, a.pool + (size_t)i * TRUNK_CACHE_POOL, TRUNK_CACHE_POOL * 2) != 0;
        differ_2 += memcmp(v1.pool + (size_t)i * TRUNK_CACHE_POOL, v2.pool + (size_t)i * TRUNK_CACHE_POOL, TRUNK_CACHE_POOL * 2) != 0;
    }
    EXPECT(differ_a == a.n && differ_2 >= a.n / 2, "view 1 is another crop than the centre for every photo (%d of %d) and than view 2 for most (%d)",
           differ_a, a.n, differ_2);
    trunk_cache_free(&v1);
    trunk_cache_free(&w1);
    trunk_cache_free(&v2);

    trunk_cache_free(&a);
    image_encoder_free(&ie);
    cub_close(&cub);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd)) printf("  could not remove %s\n", tmp);
    return test_end();
}
