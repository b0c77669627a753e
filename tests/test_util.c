/* test_util.c: assertions, fixtures and the finite-difference gradient checker; see test.h. */
#include "test.h"
#include "../src/nn/config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static int g_pass, g_fail, g_skip;
static const char *g_name = "test";

void test_begin(const char *name) {
    g_name = name;
    g_pass = g_fail = g_skip = 0;
    threads_set(0);
}

int test_end(void) {
    printf("%s: %d passed, %d failed, %d skipped\n", g_name, g_pass, g_fail, g_skip);
    printf("RESULT %s passed=%d failed=%d skipped=%d\n", g_name, g_pass, g_fail, g_skip);
    return g_fail ? 1 : 0;
}

int test_check(int ok, const char *file, int line, const char *fmt, ...) {
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("TEST_VERBOSE") && atoi(getenv("TEST_VERBOSE"));
    if (ok) g_pass++; else g_fail++;
    if (!ok || verbose) {
        va_list ap;
        printf("%s %s:%d: ", ok ? "PASS" : "FAIL", file, line);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
    }
    return ok;
}

void test_skip(const char *fmt, ...) {
    va_list ap;
    g_skip++;
    printf("SKIP %s: ", g_name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

double rel_err(const float *a, const float *b, int64_t n, double *max_abs) {
    double num = 0, den = 0, mx = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        if (isinf(a[i]) && isinf(b[i]) && (a[i] > 0) == (b[i] > 0)) d = 0;
        if (isnan(d)) d = INFINITY;
        num += d * d;
        if (isfinite(b[i])) den += (double)b[i] * b[i];
        if (fabs(d) > mx) mx = fabs(d);
    }
    if (max_abs) *max_abs = mx;
    return sqrt(num) / fmax(sqrt(den), 1e-12);
}

int expect_close(const char *what, const float *got, const float *want, int64_t n, double tol) {
    double mx, r = rel_err(got, want, n, &mx);
    return EXPECT(r <= tol, "%s: rel err %.3g (max abs %.3g) over %lld elements, tolerance %.1g", what, r, mx, (long long)n, tol);
}

/* ---------------------------------------------------------------- fixtures */
SafeTensors *fixture_open(const char *family) {
    char path[512];
    const char *dir = getenv("FIXTURE_DIR") ? getenv("FIXTURE_DIR") : "tests/fixtures";
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, family);
    if (access(path, R_OK) != 0) {
        test_skip("fixture %s not found (make fixtures writes it with python3-torch)", path);
        return NULL;
    }
    SafeTensors *st = xcalloc(1, sizeof *st);
    if (st_open(st, path)) FAIL("%s", err_msg());
    return st;
}

void fixture_close(SafeTensors *st) {
    if (!st) return;
    st_close(st);
    free(st);
}

int fixture_has(SafeTensors *st, const char *key) { return st_find(st, key) != NULL; }

Tensor *fixture_tensor(SafeTensors *st, const char *key, int with_grad) {
    const StTensor *t = st_find(st, key);
    if (!t) FAIL("fixture %s: no tensor '%s'", st->path, key);
    int shape[TENSOR_MAX_DIMS];
    CHECK(t->ndim <= TENSOR_MAX_DIMS, "fixture '%s' has %d dims", key, t->ndim);
    for (int i = 0; i < t->ndim; i++) shape[i] = (int)t->shape[i];
    Tensor *x = tensor_alloc(t->ndim, shape, with_grad);
    if (st_read_f32(st, key, x->data, x->n)) FAIL("%s", err_msg());
    return x;
}

int64_t *fixture_i64(SafeTensors *st, const char *key, int64_t *n_out) {
    const StTensor *t = st_find(st, key);
    if (!t) FAIL("fixture %s: no tensor '%s'", st->path, key);
    int64_t *v = xmalloc((size_t)(t->numel ? t->numel : 1) * sizeof(int64_t));
    if (st_read_i64(st, key, v, t->numel)) FAIL("%s", err_msg());
    if (n_out) *n_out = t->numel;
    return v;
}

float fixture_scalar(SafeTensors *st, const char *key) {
    float v;
    if (st_read_f32(st, key, &v, 1)) FAIL("%s", err_msg());
    return v;
}

/* ---------------------------------------------------------------- dumps */
static const char *dump_dir(void) { return getenv("ATTNGAN_DUMPS") ? getenv("ATTNGAN_DUMPS") : "build/dumps"; }

const char *dump_file(const char *name) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", dump_dir(), name);
    return access(path, R_OK) == 0 ? path : NULL;
}

SafeTensors *dump_open(const char *name) {
    char file[256];
    snprintf(file, sizeof file, "%s.safetensors", name);
    const char *path = dump_file(file);
    if (!path) {
        test_skip("dump %s/%s not found (tests/parity/make_dumps.sh writes it with python3-torch)", dump_dir(), file);
        return NULL;
    }
    SafeTensors *st = xcalloc(1, sizeof *st);
    if (st_open(st, path)) FAIL("%s", err_msg());
    return st;
}

void dump_config(SafeTensors *st, ModelConfig *cfg) {
    model_config_default(cfg);
    const char *js = st_meta(st, "config");
    if (!js) FAIL("%s: no config in the metadata", st->path);
    if (model_config_from_json(cfg, js)) FAIL("%s: %s", st->path, err_msg());
}

/* ---------------------------------------------------------------- gradcheck */
void fill_uniform(float *x, int64_t n, float lo, float hi, uint64_t seed) {
    Rng r;
    rng_init(&r, seed);
    rng_uniform_range(&r, x, n, lo, hi);
}

void fill_away_from_zero(float *x, int64_t n, float lo, float hi, float gap, uint64_t seed) {
    Rng r;
    rng_init(&r, seed);
    for (int64_t i = 0; i < n; i++) {
        float v;
        do { rng_uniform_range(&r, &v, 1, lo, hi); } while (fabsf(v) < gap);
        x[i] = v;
    }
}

static double weighted_loss(const Tensor *out, const float *w) {
    double s = 0;
    for (int64_t i = 0; i < out->n; i++) s += (double)out->data[i] * w[i];
    return s;
}

/* The op again on the host device (src/core/device.h), from copies of the inputs: its output and
 * the gradients of the inputs for the same seed must be the CPU's bits (the same kernels run, so
 * nothing may differ), and no host code may touch the device tensors (the guard aborts). Inputs in
 * the CPU-only nChw16c layout skip it. */
static int hostdev_parity(const char *name, GradcheckFn fn, int n_in, Tensor **inputs, void *ctx, const float *w,
                          const float *y_cpu, int64_t ny, float *const *g_cpu, const GradcheckOpts *o) {
    for (int i = 0; i < n_in; i++)
        if (inputs[i] && inputs[i]->blocked) return 1;
    for (int k = 0; k < 4 && o->move_sets[k]; k++) paramset_to_device(o->move_sets[k], DEVICE_HOSTDEV);
    for (int k = 0; k < 4 && o->move_tensors[k]; k++) tensor_to_device(o->move_tensors[k], DEVICE_HOSTDEV);
    Tape dt;
    tape_init_on(&dt, DEVICE_HOSTDEV);
    Tensor **din = xcalloc((size_t)(n_in ? n_in : 1), sizeof(Tensor *));
    for (int i = 0; i < n_in; i++) {
        Tensor *x = inputs[i];
        if (!x) continue;
        int same = -1; /* the same tensor given twice (concat(x, x), bmm(x, x^T)) stays one tensor */
        for (int j = 0; j < i && same < 0; j++)
            if (inputs[j] == x) same = j;
        if (same >= 0) {
            din[i] = din[same];
            continue;
        }
        if (x->device == DEVICE_HOSTDEV) { /* moved there with its network or by itself */
            din[i] = x;
            if (x->grad) device_memset0(DEVICE_HOSTDEV, x->grad, (size_t)x->n * sizeof(float));
            continue;
        }
        din[i] = x->requires_grad ? tape_leaf(&dt, x->ndim, x->shape) : tape_new(&dt, x->ndim, x->shape);
        if (!x->requires_grad) din[i]->is_leaf = true;
        din[i]->name = x->name;
        tensor_upload(din[i], x->data);
    }
    Tensor *out = fn(&dt, din, ctx);
    int ok = EXPECT(out->device == DEVICE_HOSTDEV, "hostdev %s: the output lives on the host device", name);
    ok &= EXPECT(out->n == ny, "hostdev %s: output has %lld elements, the CPU's %lld", name, (long long)out->n, (long long)ny);
    if (ok) {
        float *y = xmalloc((size_t)(ny ? ny : 1) * sizeof(float));
        tensor_download(out, y);
        ok &= EXPECT(!memcmp(y, y_cpu, (size_t)ny * sizeof(float)), "hostdev %s: the output differs from the CPU's bits", name);
        free(y);
        const float *seed = w;
        tape_backward_seeded(&dt, 1, &out, &seed);
        for (int i = 0; i < n_in; i++) {
            if (!g_cpu[i]) continue;
            int64_t n = inputs[i]->n;
            float *g = xmalloc((size_t)(n ? n : 1) * sizeof(float));
            device_download(DEVICE_HOSTDEV, g, din[i]->grad, (size_t)n * sizeof(float));
            ok &= EXPECT(!memcmp(g, g_cpu[i], (size_t)n * sizeof(float)), "hostdev %s input %d: the gradient differs from the CPU's bits",
                         name, i);
            free(g);
        }
    }
    tape_free(&dt);
    free(din);
    for (int k = 0; k < 4 && o->move_sets[k]; k++) paramset_to_device(o->move_sets[k], DEVICE_CPU);
    for (int k = 0; k < 4 && o->move_tensors[k]; k++) tensor_to_device(o->move_tensors[k], DEVICE_CPU);
    DevPoolStats st = device_pool_stats(DEVICE_HOSTDEV);
    ok &= EXPECT(st.live == 0, "hostdev %s: every device block was freed (%zu bytes live)", name, st.live);
    return ok;
}

int gradcheck(const char *name, GradcheckFn fn, int n_in, Tensor **inputs, void *ctx, const GradcheckOpts *opts) {
    GradcheckOpts o = {1e-2, 1e-2, 256, 1234, {NULL}, {NULL}};
    if (opts) {
        memcpy(o.move_sets, opts->move_sets, sizeof o.move_sets);
        memcpy(o.move_tensors, opts->move_tensors, sizeof o.move_tensors);
        if (opts->h > 0) o.h = opts->h;
        if (opts->tol > 0) o.tol = opts->tol;
        if (opts->max_elems) o.max_elems = opts->max_elems < 0 ? 0 : opts->max_elems;
        if (opts->seed) o.seed = opts->seed;
    }
    Tape tp;
    tape_init(&tp);
    for (int i = 0; i < n_in; i++)
        if (inputs[i] && inputs[i]->requires_grad) {
            CHECK(inputs[i]->grad && inputs[i]->is_leaf, "gradcheck %s: input %d must be a heap leaf with a grad buffer", name, i);
            memset(inputs[i]->grad, 0, (size_t)inputs[i]->n * sizeof(float));
        }
    Tensor *out = fn(&tp, inputs, ctx);
    int64_t ny = out->n;
    float *y1 = xmalloc((size_t)(ny ? ny : 1) * sizeof(float));
    memcpy(y1, out->data, (size_t)ny * sizeof(float));
    float *w = xmalloc((size_t)out->n * sizeof(float));
    Rng r;
    rng_init(&r, o.seed);
    rng_normal(&r, w, out->n, 0.0f, 1.0f);
    int ok = EXPECT(out->requires_grad, "gradcheck %s: the output requires grad (op recorded on the tape)", name);
    if (!ok) { free(w); free(y1); tape_free(&tp); return 0; }
    const float *seed = w;
    tape_backward_seeded(&tp, 1, &out, &seed);
    /* analytic gradients; then a second pass must double them */
    float **g1 = xcalloc((size_t)n_in, sizeof(float *));
    for (int i = 0; i < n_in; i++) {
        if (!inputs[i] || !inputs[i]->requires_grad) continue;
        g1[i] = xmalloc((size_t)inputs[i]->n * sizeof(float));
        memcpy(g1[i], inputs[i]->grad, (size_t)inputs[i]->n * sizeof(float));
    }
    tape_backward_seeded(&tp, 1, &out, &seed);
    for (int i = 0; i < n_in; i++) {
        if (!g1[i]) continue;
        float *twice = xmalloc((size_t)inputs[i]->n * sizeof(float));
        for (int64_t j = 0; j < inputs[i]->n; j++) twice[j] = 2.0f * g1[i][j];
        double mx, r2 = rel_err(inputs[i]->grad, twice, inputs[i]->n, &mx);
        free(twice);
        ok &= EXPECT(r2 <= 1e-5, "gradcheck %s input %d: a second backward must double the gradient (rel err %.3g)", name, i, r2);
    }
    /* finite differences */
    for (int i = 0; i < n_in; i++) {
        if (!g1[i]) continue;
        Tensor *x = inputs[i];
        int64_t n = x->n, m = (o.max_elems > 0 && o.max_elems < n) ? o.max_elems : n;
        double num2 = 0, den2 = 0, worst = 0;
        int64_t worst_j = -1;
        for (int64_t k = 0; k < m; k++) {
            int64_t j = m == n ? k : (int64_t)rng_below(&r, (uint32_t)n);
            float x0 = x->data[j];
            double lp, lm;
            tape_reset(&tp);
            tape_no_grad_begin(&tp);
            x->data[j] = (float)(x0 + o.h);
            double hp = (double)x->data[j] - x0;
            lp = weighted_loss(fn(&tp, inputs, ctx), w);
            tape_reset(&tp);
            x->data[j] = (float)(x0 - o.h);
            double hm = x0 - (double)x->data[j];
            lm = weighted_loss(fn(&tp, inputs, ctx), w);
            tape_no_grad_end(&tp);
            x->data[j] = x0;
            double numg = (lp - lm) / (hp + hm), ana = g1[i][j];
            num2 += (numg - ana) * (numg - ana);
            den2 += numg * numg;
            if (fabs(numg - ana) > worst) { worst = fabs(numg - ana); worst_j = j; }
        }
        double rel = sqrt(num2) / fmax(sqrt(den2), 1e-10);
        ok &= EXPECT(rel <= o.tol, "gradcheck %s input %d%s%s: rel err %.3g over %lld elements (worst abs %.3g at %lld), tol %.1g", name, i,
                     x->name ? " " : "", x->name ? x->name : "", rel, (long long)m, worst, (long long)worst_j, o.tol);
    }
    tape_reset(&tp);
    ok &= hostdev_parity(name, fn, n_in, inputs, ctx, w, y1, ny, g1, &o);
    for (int i = 0; i < n_in; i++) free(g1[i]);
    free(g1);
    free(y1);
    free(w);
    tape_free(&tp);
    return ok;
}

void to_blocked16(float *dst, const float *src, int N, int C, int S) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < S; i++)
                dst[(((int64_t)n * (C / 16) + c / 16) * S + i) * 16 + c % 16] = src[((int64_t)n * C + c) * S + i];
}

void from_blocked16(float *dst, const float *src, int N, int C, int S) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < S; i++)
                dst[((int64_t)n * C + c) * S + i] = src[(((int64_t)n * (C / 16) + c / 16) * S + i) * 16 + c % 16];
}

void expect_death(const char *what, void (*fn)(void), const char *msg) {
    int fd[2];
    fflush(stdout);
    fflush(stderr);
    if (pipe(fd) != 0) {
        EXPECT(0, "%s: pipe failed", what);
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        EXPECT(0, "%s: fork failed", what);
        close(fd[0]), close(fd[1]);
        return;
    }
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 2);
        alarm(30);
        fn();
        _exit(0);
    }
    close(fd[1]);
    char buf[4096];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof buf - 1 && (r = read(fd[0], buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)r;
    buf[len] = 0;
    close(fd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    EXPECT(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && strstr(buf, msg),
           "%s: want an abort with \"%s\", got status %d, stderr \"%.500s\"", what, msg, st, buf);
}
