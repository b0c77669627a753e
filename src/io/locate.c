/* locate.c: the search order for the model, the evaluator, its trunk, the example captions and
 * the data directory; see locate.h. */
#include "locate.h"
#include "../core/error.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_exe_dir[PATH_MAX];
static int g_exe_known;

void locate_set_exe_dir(const char *dir) {
    if (dir) {
        snprintf(g_exe_dir, sizeof g_exe_dir, "%s", dir);
        g_exe_known = 1;
    } else g_exe_known = 0;
}

const char *locate_exe_dir(void) {
    if (g_exe_known) return g_exe_dir;
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    g_exe_dir[0] = 0;
    if (n > 0) {
        buf[n] = 0;
        char *slash = strrchr(buf, '/');
        if (slash) {
            *slash = 0;
            snprintf(g_exe_dir, sizeof g_exe_dir, "%s", slash == buf ? "/" : buf);
        }
    }
    g_exe_known = 1;
    return g_exe_dir;
}

static int is_dir(const char *p) {
    struct stat st;
    return !stat(p, &st) && S_ISDIR(st.st_mode);
}

static int exists(const char *p) {
    struct stat st;
    return !stat(p, &st);
}

static int has_file(const char *dir, const char *name) {
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat st;
    return !stat(p, &st) && S_ISREG(st.st_mode);
}

typedef struct Spec {
    const char *what, *flag, *env, *rel, *flag_arg, *fix;
} Spec;

static const Spec SPECS[] = {
    [LOCATE_MODEL] = {"model", "--model", "ATTNGAN_MODEL", "models/bird64", "DIR",
                      "a directory `attngan export` writes, or a training run"},
    [LOCATE_EVALUATOR] = {"evaluator", "--evaluator", "ATTNGAN_EVALUATOR", "models/eval", "DIR",
                          "a DAMSM directory as `attngan export --damsm` or `attngan pretrain` writes it"},
    [LOCATE_CAPTIONS] = {"example captions", "--captions", NULL, "examples/captions.txt", "FILE", "one caption a line"},
};

/* Whether path holds the resource of kind k. */
static int holds(LocateKind k, const char *path) {
    switch (k) {
    case LOCATE_MODEL: return is_dir(path) && (has_file(path, "model.json") || has_file(path, "config.json"));
    case LOCATE_EVALUATOR: return is_dir(path) && has_file(path, "config.json");
    default: {
        struct stat st;
        return !stat(path, &st) && S_ISREG(st.st_mode);
    }
    }
}

/* Appends "path" to the list of tried paths. */
static void tried_add(char *tried, size_t cap, const char *path) {
    size_t l = strlen(tried);
    if (l + 8 >= cap) return;
    snprintf(tried + l, cap - l, "%s%s", l ? ", " : "", path);
}

/* The places for a relative name: EXE/rel, EXE/../share/attngan/rel, EXE/../../rep_rel, then
 * cwd_rel as written. Fills out with the first that `ok` accepts; else lists them in tried. */
static int search_places(LocateKind k, int trunk, const char *rel, const char *rep_rel, const char *cwd_rel, char *out, size_t len,
                         char *tried, size_t tcap) {
    const char *exe = locate_exe_dir();
    char cand[4][PATH_MAX + 128];
    int n = 0;
    if (exe[0]) {
        snprintf(cand[n++], sizeof cand[0], "%s/%s", exe, rel);
        snprintf(cand[n++], sizeof cand[0], "%s/../share/attngan/%s", exe, rel);
        if (rep_rel) snprintf(cand[n++], sizeof cand[0], "%s/../../%s", exe, rep_rel);
    }
    if (cwd_rel) snprintf(cand[n++], sizeof cand[0], "%s", cwd_rel);
    for (int i = 0; i < n; i++) {
        int ok = trunk ? exists(cand[i]) : holds(k, cand[i]);
        if (ok) {
            /* a shorter spelling for the places under the binary */
            char real[PATH_MAX];
            const char *p = (i < n - (cwd_rel ? 1 : 0) && realpath(cand[i], real)) ? real : cand[i];
            if (strlen(p) >= len) return err_set("%s: path too long", p);
            snprintf(out, len, "%s", p);
            return 0;
        }
        tried_add(tried, tcap, cand[i]);
    }
    return -1;
}

int locate_resource(LocateKind kind, const char *flag, char *out, size_t len) {
    CHECK(kind >= LOCATE_MODEL && kind <= LOCATE_CAPTIONS, "locate_resource: kind %d", (int)kind);
    const Spec *s = &SPECS[kind];
    if (flag) {
        if (!holds(kind, flag)) {
            if (!exists(flag)) return err_set("%s %s: no such %s", s->flag, flag, kind == LOCATE_CAPTIONS ? "file" : "directory");
            if (kind == LOCATE_MODEL)
                return err_set("%s %s: not a model directory (no model.json, and no config.json of a training run)", s->flag, flag);
            if (kind == LOCATE_EVALUATOR) return err_set("%s %s: not an evaluator directory (no config.json)", s->flag, flag);
            return err_set("%s %s: not a regular file", s->flag, flag);
        }
        if (strlen(flag) >= len) return err_set("%s: path too long", s->flag);
        snprintf(out, len, "%s", flag);
        return 0;
    }
    const char *env = s->env ? getenv(s->env) : NULL;
    if (env && *env) {
        if (!holds(kind, env))
            return err_set("%s=%s: no %s there (%s); unset it or give %s %s", s->env, env, s->what, s->fix, s->flag, s->flag_arg);
        if (strlen(env) >= len) return err_set("%s: path too long", s->env);
        snprintf(out, len, "%s", env);
        return 0;
    }
    char tried[900] = "";
    if (s->env) snprintf(tried, sizeof tried, "$%s (unset)", s->env);
    if (!search_places(kind, 0, s->rel, s->rel, s->rel, out, len, tried, sizeof tried)) return 0;
    return err_set("no %s found; tried %s: give %s %s (%s)%s%s", s->what, tried, s->flag, s->flag_arg, s->fix,
                   s->env ? " or set " : "", s->env ? s->env : "");
}

int locate_trunk(const char *flag, const char *configured, char *out, size_t len) {
    if (flag) {
        if (!exists(flag)) return err_set("--inception %s: no such file or directory", flag);
        if (strlen(flag) >= len) return err_set("--inception: path too long");
        snprintf(out, len, "%s", flag);
        return 0;
    }
    const char *env = getenv("ATTNGAN_INCEPTION");
    if (env && *env) {
        if (!exists(env)) return err_set("ATTNGAN_INCEPTION=%s: no such file or directory; unset it or give --inception PATH", env);
        if (strlen(env) >= len) return err_set("ATTNGAN_INCEPTION: path too long");
        snprintf(out, len, "%s", env);
        return 0;
    }
    if (!configured || !configured[0])
        return err_set("the evaluator's EXTRA.INCEPTION_WEIGHTS is empty and ATTNGAN_INCEPTION is unset: give --inception PATH");
    char tried[900] = "$ATTNGAN_INCEPTION (unset)";
    if (configured[0] == '/') {
        if (exists(configured)) {
            if (strlen(configured) >= len) return err_set("EXTRA.INCEPTION_WEIGHTS: path too long");
            snprintf(out, len, "%s", configured);
            return 0;
        }
        tried_add(tried, sizeof tried, configured);
    }
    /* models/<last component> beside the binary and in the share directory */
    char base[PATH_MAX], rel[PATH_MAX + 16];
    snprintf(base, sizeof base, "%s", configured);
    size_t bl = strlen(base);
    while (bl > 1 && base[bl - 1] == '/') base[--bl] = 0;
    const char *slash = strrchr(base, '/');
    snprintf(rel, sizeof rel, "models/%s", slash ? slash + 1 : base);
    int relative = configured[0] != '/';
    if (!search_places(LOCATE_MODEL, 1, rel, relative ? configured : NULL, relative ? configured : NULL, out, len, tried, sizeof tried))
        return 0;
    return err_set("the evaluator's Inception trunk (EXTRA.INCEPTION_WEIGHTS %s) not found; tried %s: give --inception PATH or set "
                   "ATTNGAN_INCEPTION (`make install` copies it to PREFIX/share/attngan/%s; tools/get_inception.sh DIR fetches it)",
                   configured, tried, rel);
}

const char *locate_data_hint(void) {
    return "give --data DIR (AttnGAN's data/birds directory) or set ATTNGAN_DATA (its parent: $ATTNGAN_DATA/birds is read)";
}

int locate_data(const char *flag, const char *configured, const char *from, char *out, size_t len, char *source, size_t slen) {
    char src[1200];
    const char *env = getenv("ATTNGAN_DATA");
    if (flag) {
        snprintf(out, len, "%s", flag);
        snprintf(src, sizeof src, "--data");
    } else if (env && *env) {
        snprintf(out, len, "%s/birds", env);
        snprintf(src, sizeof src, "$ATTNGAN_DATA/birds");
    } else if (configured && configured[0]) {
        snprintf(out, len, "%s", configured);
        snprintf(src, sizeof src, "DATA_DIR of %s", from ? from : "the configuration");
    } else {
        snprintf(out, len, "%s", LOCATE_DEFAULT_DATA);
        snprintf(src, sizeof src, "the default");
    }
    if (source) snprintf(source, slen, "%s", src);
    if (!is_dir(out)) {
        if (flag) return err_set("--data %s: no such directory (AttnGAN's data/birds directory expected)", out);
        return err_set("data directory %s (%s) does not exist: %s", out, src, locate_data_hint());
    }
    return 0;
}
