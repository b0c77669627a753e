/* test_metrics.c: FID, KID, R-precision, Inception Score, confidence intervals and zero-shot
 * accuracy (src/eval/metrics.h) against closed forms, hand-computed cases, independent
 * computations in double and constructed cases with known answers; FID, KID and R-precision give
 * the same bits at 1 and 2 threads. */
#include "test.h"
#include "../src/core/threads.h"
#include "../src/eval/metrics.h"

#include <omp.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static float *normal_rows(int n, int d, float mean, float std, uint64_t seed) {
    float *x = xmalloc((size_t)n * d * sizeof(float));
    Rng r;
    rng_init(&r, seed);
    rng_normal(&r, x, (int64_t)n * d, mean, std);
    return x;
}

static double trace(const double *c, int d) {
    double t = 0;
    for (int j = 0; j < d; j++) t += c[(size_t)j * d + j];
    return t;
}

/* A random symmetric positive definite (d, d): A A^T / d + floor I, A standard normal. */
static void random_spd(double *c, int d, double floor_, uint64_t seed) {
    float *a = normal_rows(d, d, 0.0f, 1.0f, seed);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double s = 0;
            for (int k = 0; k < d; k++) s += (double)a[i * d + k] * a[j * d + k];
            c[i * d + j] = s / d + (i == j ? floor_ : 0.0);
        }
    free(a);
}

/* ------------------------------------------------------------------ FID */

static void test_fid_stats_naive(void) {
    int n = 50, d = 7;
    float *x = normal_rows(n, d, 100.0f, 3.0f, 1);   /* a large mean: the centring must hold */
    double mu[7], cov[49], want_mu[7] = {0}, want[49] = {0};
    EXPECT(fid_stats(x, n, d, mu, cov) == 0, "fid_stats: %s", err_msg());
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) want_mu[j] += x[i * d + j] / (double)n;
    for (int i = 0; i < n; i++)
        for (int a = 0; a < d; a++)
            for (int b = 0; b < d; b++)
                want[a * d + b] += (x[i * d + a] - want_mu[a]) * (x[i * d + b] - want_mu[b]) / (n - 1);
    double emu = 0, ecov = 0, asym = 0;
    for (int j = 0; j < d; j++) emu = fmax(emu, fabs(mu[j] - want_mu[j]) / 100.0);
    for (int k = 0; k < d * d; k++) ecov = fmax(ecov, fabs(cov[k] - want[k]) / 9.0);
    for (int a = 0; a < d; a++)
        for (int b = 0; b < d; b++) asym = fmax(asym, fabs(cov[a * d + b] - cov[b * d + a]));
    EXPECT(emu < 1e-13, "fid_stats mean vs naive: rel err %.3g", emu);
    EXPECT(ecov < 1e-12, "fid_stats unbiased covariance vs naive two-pass: rel err %.3g", ecov);
    EXPECT(asym == 0, "fid_stats covariance exactly symmetric (max asym %.3g)", asym);
    free(x);
}

static void test_fid_identical(void) {
    int n = 300, d = 64;
    float *x = normal_rows(n, d, 0.5f, 2.0f, 2);
    double *mu = xmalloc(d * sizeof(double)), *cov = xmalloc((size_t)d * d * sizeof(double)), f = -1;
    EXPECT(fid_stats(x, n, d, mu, cov) == 0, "fid_stats: %s", err_msg());
    EXPECT(fid(x, n, x, n, d, &f) == 0, "fid(a, a): %s", err_msg());
    double tr = trace(cov, d);
    EXPECT(fabs(f) < 1e-6 * tr, "fid(a, a) = %.3g, trace %.3g", f, tr);
    free(x);
    free(mu);
    free(cov);
}

static void test_fid_shift_exact_stats(void) {
    int d = 16;
    double c[256], mu1[16], mu2[16], s2 = 0, f = -1;
    random_spd(c, d, 0.5, 3);
    float *m = normal_rows(2, d, 0.0f, 1.0f, 4);
    for (int j = 0; j < d; j++) {
        mu1[j] = m[j];
        mu2[j] = (double)m[j] + m[d + j];
        s2 += (double)m[d + j] * m[d + j];
    }
    EXPECT(fid_from_stats(mu1, c, mu2, c, d, &f) == 0, "fid_from_stats: %s", err_msg());
    EXPECT(fabs(f - s2) <= 1e-9 * s2, "same covariance, means shifted by s: fid %.15g, |s|^2 %.15g", f, s2);
    free(m);
}

/* b = a + s row by row with a on a 2^-10 grid and s integer: both exact in float, so the two
 * samples have the same covariance and means s apart. */
static void test_fid_shift_samples(void) {
    int n = 500, d = 24;
    float *a = normal_rows(n, d, 0.0f, 1.0f, 5), *b = xmalloc((size_t)n * d * sizeof(float));
    float s[24];
    double s2 = 0, f = -1;
    for (int j = 0; j < d; j++) {
        s[j] = (float)(j % 5 - 2);
        s2 += (double)s[j] * s[j];
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) {
            a[i * d + j] = roundf(a[i * d + j] * 1024.0f) / 1024.0f;
            b[i * d + j] = a[i * d + j] + s[j];
        }
    EXPECT(fid(a, n, b, n, d, &f) == 0, "fid: %s", err_msg());
    EXPECT(fabs(f - s2) <= 1e-9 * s2, "samples shifted by s: fid %.15g, |s|^2 %.15g", f, s2);
    free(a);
    free(b);
}

static void test_fid_diagonal(void) {
    enum { D = 6 };
    const double a[D] = {1.0, 4.0, 0.0, 2.5, 9.0, 0.3}, b[D] = {2.0, 1.0, 3.0, 2.5, 0.01, 7.0};
    double c1[D * D] = {0}, c2[D * D] = {0}, mu1[D], mu2[D], want = 0, f = -1;
    for (int j = 0; j < D; j++) {
        c1[j * D + j] = a[j];
        c2[j * D + j] = b[j];
        mu1[j] = 0.1 * j;
        mu2[j] = -0.2 * j + 1.0;
        want += (sqrt(a[j]) - sqrt(b[j])) * (sqrt(a[j]) - sqrt(b[j])) + (mu1[j] - mu2[j]) * (mu1[j] - mu2[j]);
    }
    EXPECT(fid_from_stats(mu1, c1, mu2, c2, D, &f) == 0, "fid_from_stats: %s", err_msg());
    EXPECT(fabs(f - want) <= 1e-9 * want, "diagonal covariances (one zero variance): fid %.15g, closed form %.15g", f, want);
}

/* ---- an independent Tr(sqrtm(A)) for the 4x4 case: Denman-Beavers iteration in double */
enum { N4 = 4 };

static void mat4_mul(double *c, const double *a, const double *b) {
    for (int i = 0; i < N4; i++)
        for (int j = 0; j < N4; j++) {
            double s = 0;
            for (int k = 0; k < N4; k++) s += a[i * N4 + k] * b[k * N4 + j];
            c[i * N4 + j] = s;
        }
}

/* inv = a^-1 by Gauss-Jordan with partial pivoting */
static void mat4_inv(double *inv, const double *a) {
    double m[N4][2 * N4];
    for (int i = 0; i < N4; i++)
        for (int j = 0; j < 2 * N4; j++) m[i][j] = j < N4 ? a[i * N4 + j] : (j - N4 == i);
    for (int c = 0; c < N4; c++) {
        int p = c;
        for (int r = c + 1; r < N4; r++)
            if (fabs(m[r][c]) > fabs(m[p][c])) p = r;
        for (int j = 0; j < 2 * N4; j++) {
            double t = m[c][j];
            m[c][j] = m[p][j];
            m[p][j] = t;
        }
        double piv = m[c][c];
        for (int j = 0; j < 2 * N4; j++) m[c][j] /= piv;
        for (int r = 0; r < N4; r++) {
            if (r == c) continue;
            double f = m[r][c];
            for (int j = 0; j < 2 * N4; j++) m[r][j] -= f * m[c][j];
        }
    }
    for (int i = 0; i < N4; i++)
        for (int j = 0; j < N4; j++) inv[i * N4 + j] = m[i][N4 + j];
}

static double trace_sqrtm_db(const double *a) {
    double y[N4 * N4], z[N4 * N4], yi[N4 * N4], zi[N4 * N4];
    memcpy(y, a, sizeof y);
    for (int k = 0; k < N4 * N4; k++) z[k] = (k % (N4 + 1)) == 0;
    for (int it = 0; it < 60; it++) {
        mat4_inv(yi, y);
        mat4_inv(zi, z);
        for (int k = 0; k < N4 * N4; k++) {
            y[k] = 0.5 * (y[k] + zi[k]);
            z[k] = 0.5 * (z[k] + yi[k]);
        }
    }
    double sq[N4 * N4], worst = 0;   /* the iterate must square back to a */
    mat4_mul(sq, y, y);
    for (int k = 0; k < N4 * N4; k++) worst = fmax(worst, fabs(sq[k] - a[k]));
    EXPECT(worst < 1e-10, "Denman-Beavers converged (|Y^2 - A| %.3g)", worst);
    return y[0] + y[5] + y[10] + y[15];
}

static void test_fid_nondiagonal(void) {
    double c1[16], c2[16], c12[16], mu1[4] = {0.3, -1.0, 2.0, 0.0}, mu2[4] = {0.1, 0.5, 2.0, -0.7}, f = -1;
    random_spd(c1, N4, 0.1, 6);
    random_spd(c2, N4, 0.2, 7);
    c2[1] += 0.3;   /* make the pair less alike */
    c2[4] += 0.3;
    mat4_mul(c12, c1, c2);
    double dmu = 0;
    for (int j = 0; j < N4; j++) dmu += (mu1[j] - mu2[j]) * (mu1[j] - mu2[j]);
    double tr1 = trace(c1, N4), tr2 = trace(c2, N4);
    double want = dmu + tr1 + tr2 - 2.0 * trace_sqrtm_db(c12);
    EXPECT(fid_from_stats(mu1, c1, mu2, c2, N4, &f) == 0, "fid_from_stats: %s", err_msg());
    EXPECT(fabs(f - want) <= 1e-9 * (tr1 + tr2), "4x4 random SPD: fid %.15g, Denman-Beavers %.15g", f, want);
}

static void test_fid_symmetric(void) {
    int na = 400, nb = 300, d = 32;
    float *a = normal_rows(na, d, 0.0f, 1.0f, 8), *b = normal_rows(nb, d, 0.3f, 1.5f, 9);
    for (int i = 0; i < nb; i++) b[i * d + 1] += 0.8f * b[i * d];   /* correlated columns */
    double ab = -1, ba = -2;
    EXPECT(fid(a, na, b, nb, d, &ab) == 0 && fid(b, nb, a, na, d, &ba) == 0, "fid: %s", err_msg());
    EXPECT(fabs(ab - ba) <= 1e-9 * fabs(ab), "FID(a, b) %.15g = FID(b, a) %.15g", ab, ba);
    EXPECT(ab > 1.0, "FID of different distributions is clearly positive (%.4g)", ab);
    free(a);
    free(b);
}

static void test_fid_errors(void) {
    float x[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    double mu[4], cov[16], f;
    EXPECT(fid_stats(x, 1, 4, mu, cov) == -1 && strstr(err_msg(), "at least 2"), "n = 1 is an error: %s", err_msg());
    EXPECT(fid(x, 2, x, 1, 4, &f) == -1 && strstr(err_msg(), "second set"), "fid names the set: %s", err_msg());
    x[5] = NAN;
    EXPECT(fid_stats(x, 2, 4, mu, cov) == -1 && strstr(err_msg(), "row 1 column 1"), "NaN feature named: %s",
           err_msg());
    double c[4] = {1, 0, 0, INFINITY}, m2[2] = {0, 0};
    EXPECT(fid_from_stats(m2, c, m2, c, 2, &f) == -1, "non-finite covariance is an error: %s", err_msg());
}

/* Not an assertion: the time of the d = 2048 Inception case. */
static void test_fid_timing(void) {
    int n = 5000, d = 2048;
    float *a = normal_rows(n, d, 0.0f, 1.0f, 10), *b = normal_rows(n, d, 0.05f, 1.0f, 11);
    double *mu1 = xmalloc((size_t)d * sizeof(double)), *mu2 = xmalloc((size_t)d * sizeof(double));
    double *c1 = xmalloc((size_t)d * d * sizeof(double)), *c2 = xmalloc((size_t)d * d * sizeof(double)), f = -1;
    double t0 = now_s();
    int rc = fid_stats(a, n, d, mu1, c1);
    double t1 = now_s();
    rc = rc ? rc : fid_stats(b, n, d, mu2, c2);
    double t2 = now_s();
    rc = rc ? rc : fid_from_stats(mu1, c1, mu2, c2, d, &f);
    double t3 = now_s();
    EXPECT(rc == 0, "fid d 2048: %s", rc ? err_msg() : "");
    printf("fid timing (%d threads): d %d, n %d: fid_stats %.2f s per set, fid_from_stats %.2f s, total %.2f s; "
           "FID %.4f\n",
           omp_get_max_threads(), d, n, t1 - t0, t3 - t2, t3 - t0, f);
    free(a);
    free(b);
    free(mu1);
    free(mu2);
    free(c1);
    free(c2);
}

/* ------------------------------------------------------------------ R-precision */

static void negate(float *dst, const float *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = -src[i];
}

static int rp(const float *img, const float *txt, int n, int d, int nc, int folds, uint64_t seed, const int *group,
              RPrecision *out) {
    int rc = r_precision(img, txt, n, d, nc, folds, seed, group, NULL, out);
    EXPECT(rc == 0, "r_precision n %d: %s", n, rc ? err_msg() : "");
    return rc;
}

static void test_rp_perfect_and_adversarial(void) {
    int n = 1000, d = 32;
    float *txt = normal_rows(n, d, 0.0f, 1.0f, 20), *img = xmalloc((size_t)n * d * sizeof(float));
    RPrecision r;
    if (rp(txt, txt, n, d, 100, 10, 1, NULL, &r) == 0)
        EXPECT(r.mean == 1.0 && r.std == 0.0 && r.folds == 10 && r.n == n && r.n_candidates == 100,
               "perfect encoder: R %.4f std %.4f", r.mean, r.std);
    negate(img, txt, (int64_t)n * d);   /* the own text is the least similar of all */
    if (rp(img, txt, n, d, 100, 10, 1, NULL, &r) == 0)
        EXPECT(r.mean == 0.0 && r.std == 0.0, "adversarial encoder: R %.4f", r.mean);
    for (int64_t i = 0; i < (int64_t)n * d; i++) img[i] = 1.0f;   /* every similarity equal */
    if (rp(img, img, n, d, 100, 10, 1, NULL, &r) == 0) EXPECT(r.mean == 0.0, "ties count as wrong: R %.4f", r.mean);
    free(txt);
    free(img);
}

static void test_rp_random(void) {
    int n = 5000, d = 32;
    float *img = normal_rows(n, d, 0.0f, 1.0f, 21), *txt = normal_rows(n, d, 0.0f, 1.0f, 22);
    RPrecision r, again, serial;
    if (rp(img, txt, n, d, 100, 10, 7, NULL, &r) == 0) {
        double bound = 5.0 * sqrt(0.01 * 0.99 / n);
        EXPECT(fabs(r.mean - 0.01) < bound, "independent codes: R %.4f within %.4f of 1/100", r.mean, bound);
        EXPECT(r.std > 0, "independent codes: fold std %.4f > 0", r.std);
        printf("R-precision of independent codes: %.4f +- %.4f (n %d, 100 candidates)\n", r.mean, r.std, n);
        if (rp(img, txt, n, d, 100, 10, 7, NULL, &again) == 0)
            EXPECT(r.mean == again.mean && r.std == again.std, "same seed, same result (%.6f %.6f)", r.mean, again.mean);
        int threads = omp_get_max_threads();
        omp_set_num_threads(1);
        if (rp(img, txt, n, d, 100, 10, 7, NULL, &serial) == 0)
            EXPECT(r.mean == serial.mean && r.std == serial.std, "one thread gives the same result");
        omp_set_num_threads(threads);
    }
    free(img);
    free(txt);
}

static void test_rp_folds(void) {
    int n = 1003, folds = 10, sum = 0, ok = 1;
    EXPECT(r_precision_fold_begin(n, folds, 0) == 0 && r_precision_fold_begin(n, folds, folds) == n,
           "folds start at 0 and end at n");
    for (int f = 0; f < folds; f++) {
        int size = r_precision_fold_begin(n, folds, f + 1) - r_precision_fold_begin(n, folds, f);
        ok &= size == 100 || size == 101;
        sum += size;
    }
    EXPECT(ok && sum == n, "fold sizes differ by at most one and add up to n (%d)", sum);
    int *fold = xmalloc(n * sizeof(int)), *fold2 = xmalloc(n * sizeof(int)), size[10] = {0}, first_block = 0;
    r_precision_folds(n, folds, 3, fold);
    r_precision_folds(n, folds, 3, fold2);
    ok = 1;
    for (int i = 0; i < n; i++) {
        ok &= fold[i] >= 0 && fold[i] < folds && fold[i] == fold2[i];
        if (ok) size[fold[i]]++;
        first_block += i < 100 && fold[i] == fold[0];
    }
    for (int f = 0; f < folds; f++) ok &= size[f] == r_precision_fold_begin(n, folds, f + 1) - r_precision_fold_begin(n, folds, f);
    EXPECT(ok, "r_precision_folds: every item in one fold, the fold sizes of fold_begin, the same for the same seed");
    EXPECT(first_block < 40, "the folds are shuffled: %d of the first 100 items share item 0's fold", first_block);

    /* exactly images 0, 1, 2 and the last one are right: the folds that hold them count them */
    int d = 32;
    float *txt = normal_rows(n, d, 0.0f, 1.0f, 23), *img = xmalloc((size_t)n * d * sizeof(float));
    negate(img, txt, (int64_t)n * d);
    const int right[4] = {0, 1, 2, 1002};
    for (int k = 0; k < 4; k++) memcpy(img + (size_t)right[k] * d, txt + (size_t)right[k] * d, d * sizeof(float));
    double rf[10] = {0}, mean = 0, var = 0, var1 = 0, got[10];
    for (int k = 0; k < 4; k++) rf[fold[right[k]]] += 1.0;
    for (int f = 0; f < folds; f++) rf[f] /= size[f];
    for (int f = 0; f < folds; f++) mean += rf[f] / folds;
    for (int f = 0; f < folds; f++) var += (rf[f] - mean) * (rf[f] - mean) / folds, var1 += (rf[f] - mean) * (rf[f] - mean) / (folds - 1);
    RPrecision r;
    int rc = r_precision(img, txt, n, d, 100, folds, 3, NULL, got, &r);
    EXPECT(rc == 0, "r_precision: %s", rc ? err_msg() : "");
    if (rc == 0) {
        EXPECT(fabs(r.mean - mean) < 1e-15, "fold means: R %.9f, want %.9f", r.mean, mean);
        EXPECT(fabs(r.std - sqrt(var)) < 1e-15, "population std over folds: %.9f, want %.9f", r.std, sqrt(var));
        EXPECT(fabs(r.ci95 - 2.262157163 * sqrt(var1 / folds)) < 1e-12, "95%% CI of the mean, t(9): %.9f, want %.9f", r.ci95,
               2.262157163 * sqrt(var1 / folds));
        ok = 1;
        for (int f = 0; f < folds; f++) ok &= fabs(got[f] - rf[f]) < 1e-15;
        EXPECT(ok, "fold_r gets each fold's R");
    }
    free(fold);
    free(fold2);
    free(txt);
    free(img);
}

/* r_precision_scored: with the cosine as its score, r_precision's numbers (the same candidates and
 * folds); a score that always prefers the own text gives 1, a constant one 0 (a tie is wrong); a
 * score that is not finite is an error. */
typedef struct ScoreCtx { const float *img, *txt; int d, nan_at; } ScoreCtx;
static double score_cosine(void *v, int i, int j) {
    const ScoreCtx *c = v;
    if (i == c->nan_at) return NAN;
    double dot = 0, a = 0, b = 0;
    for (int k = 0; k < c->d; k++) {
        double x = c->img[(size_t)i * c->d + k], y = c->txt[(size_t)j * c->d + k];
        dot += x * y, a += x * x, b += y * y;
    }
    return dot / sqrt(a * b);
}
static double score_own(void *v, int i, int j) { return i == j ? 1.0 : 0.5; }
static double score_const(void *v, int i, int j) { return 0.25; }

static void test_rp_scored(void) {
    int n = 400, d = 12, nc = 8, folds = 10;
    float *txt = normal_rows(n, d, 0.0f, 1.0f, 31), *img = normal_rows(n, d, 0.0f, 1.0f, 32);
    int *cls = xmalloc(n * sizeof(int));
    for (int i = 0; i < n; i++) {
        cls[i] = i % nc;
        for (int k = 0; k < d; k++) img[(size_t)i * d + k] = 0.6f * img[(size_t)i * d + k] + txt[(size_t)i * d + k];
    }
    ScoreCtx c = {img, txt, d, -1};
    RPrecision a, b;
    double fa[10], fb[10];
    int ra = r_precision(img, txt, n, d, 100, folds, 7, cls, fa, &a);
    int rb = r_precision_scored(score_cosine, &c, n, 100, folds, 7, cls, fb, &b);
    EXPECT(ra == 0 && rb == 0, "both run: %s", ra || rb ? err_msg() : "");
    if (!ra && !rb) {
        EXPECT(a.mean > 0.2 && a.mean < 1.0, "a partly right case (R %.3f)", a.mean);
        EXPECT(!memcmp(fa, fb, sizeof fa) && a.mean == b.mean && a.ci95 == b.ci95 && b.n_candidates == 100 && b.n == n,
               "cosine as the score: r_precision's folds (%.4f against %.4f)", b.mean, a.mean);
    }
    RPrecision r;
    EXPECT(r_precision_scored(score_own, NULL, n, 100, folds, 7, cls, NULL, &r) == 0 && r.mean == 1.0, "own text first: R = 1");
    EXPECT(r_precision_scored(score_const, NULL, n, 100, folds, 7, cls, NULL, &r) == 0 && r.mean == 0.0, "all tied: R = 0");
    c.nan_at = 17;
    int rc = r_precision_scored(score_cosine, &c, n, 100, folds, 7, cls, NULL, &r);
    EXPECT(rc != 0 && strstr(err_msg(), "image 17"), "a NaN score is an error naming the image (%s)", rc ? err_msg() : "accepted");
    rc = r_precision_scored(score_own, NULL, n, 1, folds, 7, cls, NULL, &r);
    EXPECT(rc != 0 && strstr(err_msg(), "candidates"), "1 candidate is refused (%s)", rc ? err_msg() : "accepted");
    free(txt);
    free(img);
    free(cls);
}

/* Class-sorted images (DM-GAN's mismatches come from other classes): texts of a class share one
 * code, so a same-class mismatch ties; with the class ids as groups none is drawn. */
static void test_rp_classes(void) {
    int n = 300, d = 16, nc = 10;
    float *proto = normal_rows(nc, d, 0.0f, 1.0f, 27), *txt = xmalloc((size_t)n * d * sizeof(float));
    int *cls = xmalloc(n * sizeof(int));
    for (int i = 0; i < n; i++) {
        cls[i] = i / (n / nc);   /* sorted by class */
        memcpy(txt + (size_t)i * d, proto + (size_t)cls[i] * d, d * sizeof(float));
    }
    RPrecision with, without;
    if (rp(txt, txt, n, d, 100, 10, 5, cls, &with) == 0)
        EXPECT(with.mean == 1.0, "mismatches from other classes only: R %.4f", with.mean);
    if (rp(txt, txt, n, d, 100, 10, 5, NULL, &without) == 0)
        EXPECT(without.mean < 0.05, "mismatches from any image: same-class ties count as wrong: R %.4f", without.mean);
    /* class 0 right, the others wrong: contiguous folds would give one fold of 1 and nine of 0 */
    float *img = xmalloc((size_t)n * d * sizeof(float));
    negate(img, txt, (int64_t)n * d);
    memcpy(img, txt, (size_t)(n / nc) * d * sizeof(float));
    double fr[10], maxf = 0;
    RPrecision r;
    if (r_precision(img, txt, n, d, 100, 10, 5, cls, fr, &r) == 0) {
        for (int f = 0; f < 10; f++) maxf = fmax(maxf, fr[f]);
        EXPECT(fabs(r.mean - 0.1) < 1e-15 && maxf < 0.5, "shuffled folds mix the classes: mean %.4f, largest fold %.3f", r.mean, maxf);
    }
    free(proto);
    free(txt);
    free(cls);
    free(img);
}

static void test_rp_groups(void) {
    int n = 200, d = 16;
    float *txt = normal_rows(n, d, 0.0f, 1.0f, 24);
    int *group = xmalloc(n * sizeof(int));
    for (int i = 0; i < n; i++) {
        if (i % 2) memcpy(txt + (size_t)i * d, txt + (size_t)(i - 1) * d, d * sizeof(float));   /* duplicate caption */
        group[i] = 1000 - i / 2;   /* any ints, not sorted */
    }
    RPrecision with, without;
    if (rp(txt, txt, n, d, 100, 4, 5, group, &with) == 0)
        EXPECT(with.mean == 1.0, "duplicates in the image's group never count as mismatches: R %.4f", with.mean);
    if (rp(txt, txt, n, d, 100, 4, 5, NULL, &without) == 0)
        EXPECT(without.mean < 0.8, "without groups a drawn duplicate ties and counts as wrong: R %.4f", without.mean);
    free(txt);
    free(group);
}

/* Brute force when every eligible mismatch is a candidate: the result cannot depend on the draws,
 * so it must equal the count over all eligible texts (every index, the last included, reachable
 * through the group mapping; none from the image's own group). */
static void test_rp_exhaustive(void) {
    int n = 60, d = 8;
    const int labels[3] = {5, -1, 9};
    float *txt = normal_rows(n, d, 0.0f, 1.0f, 25), *img = normal_rows(n, d, 0.0f, 0.6f, 26);
    int *group = xmalloc(n * sizeof(int));
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < d; k++) img[i * d + k] += txt[i * d + k];
        group[i] = labels[(i * 37) % n % 3];   /* 3 interleaved groups of 20 */
    }
    for (int pass = 0; pass < 2; pass++) {
        const int *g = pass ? group : NULL;
        int right = 0, eligible = 0;
        double min_gap = 1;
        for (int i = 0; i < n; i++) {
            double ni = 0, nt = 0, own = 0;
            int ok = 1;
            eligible = 0;
            for (int k = 0; k < d; k++) {
                ni += (double)img[i * d + k] * img[i * d + k];
                nt += (double)txt[i * d + k] * txt[i * d + k];
                own += (double)img[i * d + k] * txt[i * d + k];
            }
            own /= sqrt(ni * nt);
            for (int j = 0; j < n; j++) {
                if (j == i || (g && g[j] == g[i])) continue;
                eligible++;
                double s = 0, nj = 0;
                for (int k = 0; k < d; k++) {
                    s += (double)img[i * d + k] * txt[j * d + k];
                    nj += (double)txt[j * d + k] * txt[j * d + k];
                }
                s /= sqrt(ni * nj);
                ok &= s < own;
                min_gap = fmin(min_gap, fabs(s - own));
            }
            right += ok;
        }
        EXPECT(min_gap > 1e-5 && right > 0 && right < n, "brute force data: %d of %d right, no near ties (%.3g)",
               right, n, min_gap);
        RPrecision r;
        if (rp(img, txt, n, d, eligible + 1, 1, 11 + pass, g, &r) == 0)
            EXPECT(fabs(r.mean - (double)right / n) < 1e-15, "all %d eligible mismatches%s as candidates: R %.4f, "
                   "brute force %.4f", eligible, g ? " (groups)" : "", r.mean, (double)right / n);
    }
    free(txt);
    free(img);
    free(group);
}

static void test_rp_errors(void) {
    float x[4 * 50] = {0};
    int group[50];
    RPrecision r;
    for (int i = 0; i < 50; i++) group[i] = i < 40;
    EXPECT(r_precision(x, x, 50, 4, 1, 2, 0, NULL, NULL, &r) == -1, "1 candidate is an error: %s", err_msg());
    EXPECT(r_precision(x, x, 50, 4, 10, 0, 0, NULL, NULL, &r) == -1, "0 folds is an error: %s", err_msg());
    EXPECT(r_precision(x, x, 50, 4, 10, 51, 0, NULL, NULL, &r) == -1, "more folds than images is an error: %s", err_msg());
    EXPECT(r_precision(x, x, 50, 4, 100, 5, 0, NULL, NULL, &r) == -1 && strstr(err_msg(), "eligible"),
           "too few mismatches: %s", err_msg());
    EXPECT(r_precision(x, x, 50, 4, 20, 5, 0, group, NULL, &r) == -1 && strstr(err_msg(), "image 0 has 10"),
           "too few mismatches outside the group: %s", err_msg());
    EXPECT(r_precision(x, x, 50, 4, 11, 5, 0, group, NULL, &r) == 0, "exactly enough outside the group: %s", err_msg());
    x[7] = NAN;
    EXPECT(r_precision(x, x, 50, 4, 10, 5, 0, NULL, NULL, &r) == -1 && strstr(err_msg(), "code 1"), "NaN code named: %s",
           err_msg());
}

/* ------------------------------------------------------------------ KID */

/* Unbiased MMD^2 with the cubic kernel over all rows, in the test's own words. */
static double naive_mmd(const float *a, const float *b, int m, int d) {
    double saa = 0, sbb = 0, sab = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < m; j++) {
            double xa = 0, xb = 0, xab = 0;
            for (int k = 0; k < d; k++) {
                xa += (double)a[i * d + k] * a[j * d + k];
                xb += (double)b[i * d + k] * b[j * d + k];
                xab += (double)a[i * d + k] * b[j * d + k];
            }
            if (i != j) saa += pow(xa / d + 1, 3), sbb += pow(xb / d + 1, 3);
            sab += pow(xab / d + 1, 3);
        }
    return (saa + sbb) / (m * (m - 1.0)) - 2 * sab / ((double)m * m);
}

static void test_kid(void) {
    /* by hand: a = {(1,0), (0,1)}, b = {(1,1), (0,0)}, d = 2:
     * k(a1, a2) = (0/2 + 1)^3 = 1, k(b1, b2) = 1; k(a1, b1) = k(a2, b1) = 1.5^3 = 3.375, k(ai, b2) = 1;
     * MMD^2 = 2/2 + 2/2 - 2 (3.375 + 1 + 3.375 + 1) / 4 = 2 - 4.375 = -2.375 */
    const float a[4] = {1, 0, 0, 1}, b[4] = {1, 1, 0, 0};
    Kid k;
    double v[3];
    int rc = kid(a, 2, b, 2, 2, 3, 1000, 1, v, &k);
    EXPECT(rc == 0 && fabs(k.mean + 2.375) < 1e-15 && k.std == 0 && v[0] == v[2] && k.subsets == 3 && k.subset_size == 2,
           "hand case: KID %.15g (want -2.375), std %g, subset size %d", k.mean, k.std, k.subset_size);
    /* a 3-by-2 case: a = {(2,0), (0,0), (1,1)}, b = {(0,2), (1,0), (1,1)}: dots/2 + 1 for aa pairs
     * (1,2): 1, (1,3): 2, (2,3): 1 -> kernel 1 + 8 + 1 = 10, both orders: 20 / 6;
     * bb pairs (1,2): 1, (1,3): 2, (2,3): 1.5 -> 1 + 8 + 3.375 = 12.375, both orders: 24.75 / 6;
     * ab: a1.b = 0, 2, 2 -> 1 + 8 + 8; a2.b = 0 -> 1 + 1 + 1; a3.b = 2, 1, 2 -> 8 + 3.375 + 8: 39.375, times 2 / 9 */
    const float a3[6] = {2, 0, 0, 0, 1, 1}, b3[6] = {0, 2, 1, 0, 1, 1};
    double want = (20.0 + 24.75) / 6.0 - 2.0 * 39.375 / 9.0;
    rc = kid(a3, 3, b3, 3, 2, 1, 3, 9, NULL, &k);
    EXPECT(rc == 0 && fabs(k.mean - want) < 1e-14, "3 rows by hand: KID %.15g, want %.15g", k.mean, want);

    /* all rows as one subset: the naive sum; subsets of the same rows are all equal */
    int n = 40, d = 24;
    float *x = normal_rows(n, d, 0.0f, 1.0f, 40), *y = normal_rows(n, d, 0.3f, 1.2f, 41);
    double naive = naive_mmd(x, y, n, d);
    rc = kid(x, n, y, n, d, 5, 1000, 2, NULL, &k);
    EXPECT(rc == 0 && fabs(k.mean - naive) < 1e-12 * fabs(naive) && k.std == 0 && k.subset_size == n,
           "whole sets: KID %.12g, naive %.12g, std %g", k.mean, naive, k.std);
    free(x);
    free(y);

    /* same distribution ~ 0, a shifted one clearly above; subsets smaller than the sets vary */
    n = 600, d = 64;
    x = normal_rows(n, d, 0.0f, 1.0f, 42), y = normal_rows(n, d, 0.0f, 1.0f, 43);
    float *z = normal_rows(n, d, 0.5f, 1.0f, 44);
    Kid same, shifted, t1, t2;
    double vs[50];
    if (kid(x, n, y, n, d, 50, 200, 3, vs, &same) == 0 && kid(x, n, z, n, d, 50, 200, 3, NULL, &shifted) == 0) {
        EXPECT(fabs(same.mean) < 4 * same.std / sqrt(50.0) + 1e-3 && shifted.mean > 0.05 && same.std > 0 && same.subset_size == 200,
               "same distribution %.5f +- %.5f, shifted %.5f", same.mean, same.std, shifted.mean);
        double m = 0;
        for (int s = 0; s < 50; s++) m += vs[s] / 50;
        EXPECT(fabs(m - same.mean) < 1e-15, "values are the subsets' MMD^2 (mean %.6g vs %.6g)", m, same.mean);
    }
    int threads = threads_get();
    threads_set(1);
    int rc1 = kid(x, n, z, n, d, 20, 300, 4, NULL, &t1);
    threads_set(2);
    int rc2 = kid(x, n, z, n, d, 20, 300, 4, NULL, &t2);
    threads_set(threads);
    EXPECT(rc1 == 0 && rc2 == 0 && !memcmp(&t1.mean, &t2.mean, sizeof(double)) && !memcmp(&t1.std, &t2.std, sizeof(double)),
           "KID at 1 and 2 threads: the same bits (%.17g, %.17g)", t1.mean, t2.mean);
    x[5] = NAN;
    EXPECT(kid(x, n, z, n, d, 2, 10, 1, NULL, &k) == -1 && strstr(err_msg(), "row 0 column 5"), "NaN named: %s", err_msg());
    EXPECT(kid(x, 1, z, n, d, 2, 10, 1, NULL, &k) == -1, "one row is an error: %s", err_msg());
    EXPECT(kid(z, n, z, n, d, 0, 10, 1, NULL, &k) == -1, "0 subsets is an error: %s", err_msg());
    free(x);
    free(y);
    free(z);
}

/* FID's BLAS and LAPACK calls run on one thread: the same bits at 1 and 2 threads. */
static void test_fid_threads(void) {
    int n = 400, d = 384;
    float *a = normal_rows(n, d, 0.0f, 1.0f, 50), *b = normal_rows(n, d, 0.2f, 1.3f, 51);
    for (int i = 0; i < n * d; i++) a[i] = a[i] * a[i], b[i] = fabsf(b[i]);   /* skewed, like pool features */
    double f[2] = {-1, -1};
    int threads = threads_get(), rc = 0;
    for (int t = 0; t < 2; t++) {
        threads_set(t + 1);
        rc |= fid(a, n, b, n, d, &f[t]);
    }
    threads_set(threads);
    EXPECT(rc == 0 && !memcmp(&f[0], &f[1], sizeof(double)), "FID at 1 and 2 threads: %.17g and %.17g", f[0], f[1]);
    EXPECT(threads_get() == threads, "the caller's thread count is restored (%d)", threads_get());
    free(a);
    free(b);
}

/* ------------------------------------------------------------------ Inception Score, CIs */

static void test_inception_score(void) {
    double p[8 * 4] = {0}, v[2], mean = 0, std = 0;
    for (int i = 0; i < 4; i++) p[i * 4 + i] = 1;   /* 4 confident rows on 4 classes: IS 4 */
    EXPECT(inception_score(p, 4, 4, 1, v, &mean, &std) == 0 && fabs(mean - 4) < 1e-14 && std == 0 && v[0] == mean,
           "one-hot on distinct classes: IS %.15g, want 4", mean);
    for (int i = 0; i < 4; i++) for (int k = 0; k < 4; k++) p[i * 4 + k] = 0.25;
    EXPECT(inception_score(p, 4, 4, 1, NULL, &mean, &std) == 0 && fabs(mean - 1) < 1e-15, "uniform rows: IS %.15g, want 1", mean);
    /* two splits: rows 0-1 one-hot on classes 0 and 1 (IS 2), rows 2-3 both (0.5, 0.5, 0, 0) (IS 1) */
    double q[4 * 4] = {1, 0, 0, 0, 0, 1, 0, 0, 0.5, 0.5, 0, 0, 0.5, 0.5, 0, 0};
    EXPECT(inception_score(q, 4, 4, 2, v, &mean, &std) == 0 && fabs(v[0] - 2) < 1e-14 && fabs(v[1] - 1) < 1e-15 &&
               fabs(mean - 1.5) < 1e-14 && fabs(std - 0.5) < 1e-14,
           "two splits: %.6f and %.6f, mean %.6f std %.6f", v[0], v[1], mean, std);
    /* by hand: rows (0.8, 0.2), (0.2, 0.8): p(y) = (0.5, 0.5), KL = 0.8 ln 1.6 + 0.2 ln 0.4 each */
    double h[4] = {0.8, 0.2, 0.2, 0.8}, want = exp(0.8 * log(1.6) + 0.2 * log(0.4));
    EXPECT(inception_score(h, 2, 2, 1, NULL, &mean, &std) == 0 && fabs(mean - want) < 1e-14, "soft rows: IS %.15g, want %.15g", mean, want);
    h[1] = 0.3;
    EXPECT(inception_score(h, 2, 2, 1, NULL, &mean, &std) == -1 && strstr(err_msg(), "row 0"), "a row not summing to 1: %s", err_msg());
    EXPECT(inception_score(h, 2, 2, 3, NULL, &mean, &std) == -1, "more splits than rows: %s", err_msg());
}

static void test_ci(void) {
    EXPECT(fabs(t_quantile_975(1) - 12.706204736) < 1e-9 && fabs(t_quantile_975(9) - 2.262157163) < 1e-9 &&
               fabs(t_quantile_975(30) - 2.042272456) < 1e-9,
           "t table: %.9f %.9f %.9f", t_quantile_975(1), t_quantile_975(9), t_quantile_975(30));
    /* scipy.stats.t.ppf(0.975, df) for df 31, 40, 60, 120, 1e6 */
    const int df[5] = {31, 40, 60, 120, 1000000};
    const double want[5] = {2.039513446, 2.021075390, 2.000297822, 1.979930405, 1.959966};
    int ok = 1;
    for (int i = 0; i < 5; i++) ok &= fabs(t_quantile_975(df[i]) - want[i]) < 2e-4;
    EXPECT(ok, "t beyond the table within 2e-4: %.6f %.6f %.6f %.6f %.6f", t_quantile_975(31), t_quantile_975(40), t_quantile_975(60),
           t_quantile_975(120), t_quantile_975(1000000));
    double v[3] = {1, 2, 3}, m, h;
    mean_ci95(v, 3, &m, &h);
    EXPECT(m == 2 && fabs(h - 4.302652730 / sqrt(3.0)) < 1e-9, "mean_ci95 of 1, 2, 3: %g +- %.9f", m, h);
    mean_ci95(v, 1, &m, &h);
    EXPECT(m == 1 && isnan(h), "one value: no interval (%g)", h);
}

/* ------------------------------------------------------------------ zero-shot accuracy */

static void test_zsl(void) {
    int nc, d = 16;
    double acc = -1;
    /* images equal to (positive multiples of) their class's prototype */
    float *proto = normal_rows(5, d, 0.0f, 1.0f, 30), img[20 * 16];
    int pcls[5] = {7, 3, 11, 0, -4}, icls[20];
    for (int i = 0; i < 20; i++) {
        icls[i] = pcls[i % 5];
        for (int k = 0; k < d; k++) img[i * d + k] = proto[(i % 5) * d + k] * (1.0f + i);
    }
    EXPECT(zsl_accuracy(img, icls, 20, proto, pcls, 5, d, &acc, &nc) == 0 && acc == 1.0 && nc == 5,
           "images at their prototypes: accuracy %.4f over %d classes", acc, nc);
    free(proto);

    /* 3 classes on the axes: class 10 half right, class 20 all right, class 30 all wrong */
    const float axes[3 * 3] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    const int acls[3] = {10, 20, 30};
    const float im3[6 * 3] = {0.9f, 0.1f, 0, 0.2f, 0.7f, 0, 0, 1, 0.3f, 0.1f, 2, 0, 0, 5, 0.1f, 1, 0.2f, 0.1f};
    const int ic3[6] = {10, 10, 20, 20, 20, 30};
    EXPECT(zsl_accuracy(im3, ic3, 6, axes, acls, 3, 3, &acc, &nc) == 0 && fabs(acc - 0.5) < 1e-15 && nc == 3,
           "per-class accuracies 1/2, 1, 0: mean %.6f over %d classes", acc, nc);

    /* imbalance: class 1 has one image, right; class 2 has 99, all wrong: 0.5, not 0.01 */
    float imb[100 * 3];
    int icb[100];
    for (int i = 0; i < 100; i++) {
        icb[i] = i == 0 ? 10 : 20;
        for (int k = 0; k < 3; k++) imb[i * 3 + k] = k == 0 ? 1.0f : 0.01f * (float)(i % 7);
    }
    EXPECT(zsl_accuracy(imb, icb, 100, axes, acls, 3, 3, &acc, NULL) == 0 && fabs(acc - 0.5) < 1e-15,
           "class imbalance does not weight the mean: %.6f", acc);

    /* several prototypes per class: the class's best one counts; exact ties go to the first */
    const float protos2[4 * 3] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1};
    const int pc2[4] = {1, 1, 2, 3};
    const float im2[3 * 3] = {0, 1, 0, 0.1f, 0, 1, 1, 0.1f, 0};
    const int ic2[3] = {1, 2, 1};
    EXPECT(zsl_accuracy(im2, ic2, 3, protos2, pc2, 4, 3, &acc, &nc) == 0 && acc == 1.0 && nc == 2,
           "several prototypes per class, tie to the first: %.4f over %d classes", acc, nc);
    const int ic2b[3] = {1, 3, 1};
    EXPECT(zsl_accuracy(im2, ic2b, 3, protos2, pc2, 4, 3, &acc, &nc) == 0 && fabs(acc - 0.5) < 1e-15,
           "a tie between classes 2 and 3 goes to the first prototype: %.4f", acc);

    const int ic_missing[3] = {1, 2, 4};
    EXPECT(zsl_accuracy(im2, ic_missing, 3, protos2, pc2, 4, 3, &acc, &nc) == -1 && strstr(err_msg(), "class 4"),
           "an image class without prototypes is an error: %s", err_msg());
}

int main(void) {
    test_begin("test_metrics");
    test_fid_stats_naive();
    test_fid_identical();
    test_fid_shift_exact_stats();
    test_fid_shift_samples();
    test_fid_diagonal();
    test_fid_nondiagonal();
    test_fid_symmetric();
    test_fid_errors();
    test_rp_perfect_and_adversarial();
    test_rp_random();
    test_rp_folds();
    test_rp_groups();
    test_rp_classes();
    test_rp_scored();
    test_rp_exhaustive();
    test_rp_errors();
    test_zsl();
    test_kid();
    test_fid_threads();
    test_inception_score();
    test_ci();
    test_fid_timing();
    return test_end();
}
