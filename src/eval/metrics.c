/* metrics.c: FID, KID, R-precision, Inception Score and zero-shot accuracy on precomputed codes;
 * see metrics.h. */
#include "metrics.h"

#include "../core/core.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK (OpenBLAS ships it): eigenvalues and optionally eigenvectors of a symmetric matrix by
 * divide and conquer. The two trailing arguments are the lengths of the character arguments that
 * gfortran passes after the others. */
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work,
                    const int *lwork, int *iwork, const int *liwork, int *info, size_t jobz_len, size_t uplo_len);

#define FID_BLOCK_ROWS 1024    /* centred rows per dsyrk call in fid_stats */

/* BLAS and LAPACK on one thread (metrics.h: OpenBLAS splits its sums by the thread count). */
static int blas_serial_begin(void) {
    int t = threads_get();
    if (t != 1) threads_set(1);
    return t;
}
static void blas_serial_end(int t) {
    if (t != 1) threads_set(t);
}

static double dot_f(const float *a, const float *b, int d) {
    double s = 0;
    for (int k = 0; k < d; k++) s += (double)a[k] * b[k];
    return s;
}

/* ------------------------------------------------------------------ FID */

int fid_stats(const float *feats, int n, int d, double *mu, double *cov) {
    if (n < 2) return err_set("fid_stats: %d feature rows; the covariance needs at least 2", n);
    if (d < 1) return err_set("fid_stats: feature dimension %d", d);
    for (int j = 0; j < d; j++) mu[j] = 0;
    for (int i = 0; i < n; i++) {
        const float *x = feats + (size_t)i * d;
        for (int j = 0; j < d; j++) {
            if (!isfinite(x[j])) return err_set("fid_stats: feature row %d column %d is %g", i, j, (double)x[j]);
            mu[j] += x[j];
        }
    }
    for (int j = 0; j < d; j++) mu[j] /= n;

    /* cov (upper triangle) = sum over blocks of Xc^T Xc, Xc (rows, d) the centred block */
    int rows_max = n < FID_BLOCK_ROWS ? n : FID_BLOCK_ROWS;
    double *xc = xmalloc((size_t)rows_max * d * sizeof(double));   /* (rows_max, d) */
    memset(cov, 0, (size_t)d * d * sizeof(double));
    int threads = threads_get();
    for (int r0 = 0; r0 < n; r0 += rows_max) {
        int rows = n - r0 < rows_max ? n - r0 : rows_max;
#pragma omp parallel for schedule(static) if ((int64_t)rows * d > 65536)
        for (int r = 0; r < rows; r++) {
            const float *x = feats + (size_t)(r0 + r) * d;
            double *y = xc + (size_t)r * d;
            for (int j = 0; j < d; j++) y[j] = (double)x[j] - mu[j];
        }
        blas_serial_begin();
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, rows, 1.0, xc, d, 1.0, cov, d);
        blas_serial_end(threads);
    }
    free(xc);
    double scale = 1.0 / (n - 1);
    for (int i = 0; i < d; i++)
        for (int j = i; j < d; j++) {
            double v = cov[(size_t)i * d + j] * scale;
            cov[(size_t)i * d + j] = v;
            cov[(size_t)j * d + i] = v;
        }
    return 0;
}

/* Eigenvalues w (d, ascending) of the symmetric a (d, d) whose upper triangle (row-major) is
 * read. a is overwritten; with vectors, row k of a is the unit eigenvector of w[k]. (A row-major
 * buffer is the column-major transpose: LAPACK's lower triangle is our upper one, and its
 * eigenvector columns are our rows.) */
static int sym_eig(double *a, int d, double *w, int vectors, const char *what) {
    const char jobz = vectors ? 'V' : 'N', uplo = 'L';
    int lwork = -1, liwork = -1, info = 0, iwq = 0;
    double wq = 0;
    dsyevd_(&jobz, &uplo, &d, a, &d, w, &wq, &lwork, &iwq, &liwork, &info, 1, 1);
    if (info != 0) return err_set("%s: dsyevd workspace query failed (info %d)", what, info);
    lwork = (int)wq + 1;
    liwork = iwq;
    double *work = xmalloc((size_t)lwork * sizeof(double));
    int *iwork = xmalloc((size_t)liwork * sizeof(int));
    dsyevd_(&jobz, &uplo, &d, a, &d, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work);
    free(iwork);
    if (info != 0) return err_set("%s: dsyevd failed (info %d, d %d)", what, info, d);
    return 0;
}

static int check_finite(const double *x, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return err_set("fid_from_stats: %s[%zu] is %g", what, i, x[i]);
    return 0;
}

int fid_from_stats(const double *mu1, const double *cov1, const double *mu2, const double *cov2, int d, double *fid) {
    if (d < 1) return err_set("fid_from_stats: dimension %d", d);
    size_t dd = (size_t)d * d;
    if (check_finite(mu1, (size_t)d, "mu1") || check_finite(mu2, (size_t)d, "mu2") || check_finite(cov1, dd, "cov1") ||
        check_finite(cov2, dd, "cov2"))
        return -1;
    double diff2 = 0, tr1 = 0, tr2 = 0;
    for (int j = 0; j < d; j++) {
        double e = mu1[j] - mu2[j];
        diff2 += e * e;
        tr1 += cov1[(size_t)j * d + j];
        tr2 += cov2[(size_t)j * d + j];
    }

    double *gt = xmalloc(dd * sizeof(double));   /* (d, d): C1 -> V^T -> G^T = sqrt(L) V^T */
    double *t = xmalloc(dd * sizeof(double));    /* (d, d): G^T C2, then M' = G^T C2 G */
    double *m = xmalloc(dd * sizeof(double));    /* (d, d) */
    double *w = xmalloc((size_t)d * sizeof(double));
    memcpy(gt, cov1, dd * sizeof(double));
    int threads = blas_serial_begin();
    int rc = sym_eig(gt, d, w, 1, "fid_from_stats (eigenvectors of cov1)");
    if (rc == 0) {
        for (int k = 0; k < d; k++) {
            double s = sqrt(w[k] > 0 ? w[k] : 0);
            for (int j = 0; j < d; j++) gt[(size_t)k * d + j] *= s;
        }
        /* t = G^T C2 (C2 symmetric, upper triangle read); m = t G = G^T C2 G */
        cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, d, d, 1.0, cov2, d, gt, d, 0.0, t, d);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d, d, d, 1.0, t, d, gt, d, 0.0, m, d);
        rc = sym_eig(m, d, w, 0, "fid_from_stats (eigenvalues of sqrt(C1) C2 sqrt(C1))");
    }
    blas_serial_end(threads);
    if (rc == 0) {
        double tr_sqrt = 0;
        for (int k = 0; k < d; k++) tr_sqrt += sqrt(w[k] > 0 ? w[k] : 0);
        *fid = diff2 + tr1 + tr2 - 2.0 * tr_sqrt;
    }
    free(gt);
    free(t);
    free(m);
    free(w);
    return rc;
}

int fid(const float *a, int na, const float *b, int nb, int d, double *out) {
    if (d < 1) return err_set("fid: feature dimension %d", d);
    size_t dd = (size_t)d * d;
    double *mu1 = xmalloc((size_t)d * sizeof(double)), *mu2 = xmalloc((size_t)d * sizeof(double));
    double *c1 = xmalloc(dd * sizeof(double)), *c2 = xmalloc(dd * sizeof(double));
    int rc = 0;
    if (fid_stats(a, na, d, mu1, c1)) rc = err_prefix("fid: first set");
    else if (fid_stats(b, nb, d, mu2, c2)) rc = err_prefix("fid: second set");
    else rc = fid_from_stats(mu1, c1, mu2, c2, d, out);
    free(mu1);
    free(mu2);
    free(c1);
    free(c2);
    return rc;
}

/* ------------------------------------------------------------------ cosine codes */

/* u (n, d) = rows of x (n, d) divided by their L2 norm (in double), a zero row stays zero.
 * Returns the first row that is not finite, or -1. */
static int unit_rows(float *u, const float *x, int n, int d) {
    int bad = -1;
#pragma omp parallel for schedule(static) if ((int64_t)n * d > 65536)
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * d;
        float *ui = u + (size_t)i * d;
        double s = dot_f(xi, xi, d);
        if (!isfinite(s)) {
#pragma omp critical(metrics_unit_rows)
            if (bad < 0 || i < bad) bad = i;
            continue;
        }
        double inv = s > 0 ? 1.0 / sqrt(s) : 0.0;
        for (int k = 0; k < d; k++) ui[k] = (float)(xi[k] * inv);
    }
    return bad;
}

/* Floyd's sampling of m distinct indices of [0, n) into out (m draws of rng_below). */
static void floyd(Rng *r, int n, int m, int *out) {
    int c = 0;
    for (int j = n - m; j < n; j++) {
        int t = (int)rng_below(r, (uint32_t)j + 1), seen = 0;
        for (int q = 0; q < c && !seen; q++) seen = out[q] == t;
        out[c++] = seen ? j : t;
    }
}

typedef struct GroupIndex {
    int g, i;
} GroupIndex;

static int cmp_group_index(const void *pa, const void *pb) {
    const GroupIndex *a = pa, *b = pb;
    if (a->g != b->g) return a->g < b->g ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

int r_precision_fold_begin(int n, int folds, int f) { return (int)((int64_t)f * n / folds); }

void r_precision_folds(int n, int folds, uint64_t seed, int *fold) {
    int *perm = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(int));
    for (int i = 0; i < n; i++) perm[i] = i;
    Rng r;
    rng_init(&r, seed * 0x9E3779B97F4A7C15ull + 0xF01D5ull);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(&r, (uint32_t)i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int f = 0; f < folds; f++)
        for (int p = r_precision_fold_begin(n, folds, f); p < r_precision_fold_begin(n, folds, f + 1); p++) fold[perm[p]] = f;
    free(perm);
}

/* ------------------------------------------------------------------ confidence intervals */

double t_quantile_975(int df) {
    static const double table[31] = {0,           12.706204736, 4.302652730, 3.182446305, 2.776445105, 2.570581836,
                                     2.446911851, 2.364624252,  2.306004135, 2.262157163, 2.228138852, 2.200985160,
                                     2.178812830, 2.160368656,  2.144786688, 2.131449546, 2.119905299, 2.109815578,
                                     2.100922040, 2.093024054,  2.085963447, 2.079613845, 2.073873068, 2.068657610,
                                     2.063898562, 2.059538553,  2.055529439, 2.051830516, 2.048407142, 2.045229642,
                                     2.042272456};
    if (df < 1) return NAN;
    if (df <= 30) return table[df];
    /* Cornish-Fisher expansion of t in powers of 1/df around the normal quantile */
    const double z = 1.959963984540054, z3 = z * z * z, z5 = z3 * z * z, z7 = z5 * z * z, z9 = z7 * z * z;
    double v = df;
    double g1 = (z3 + z) / 4, g2 = (5 * z5 + 16 * z3 + 3 * z) / 96, g3 = (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / 384,
           g4 = (79 * z9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / 92160;
    return z + g1 / v + g2 / (v * v) + g3 / (v * v * v) + g4 / (v * v * v * v);
}

void mean_ci95(const double *v, int n, double *mean, double *half) {
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++) s += v[i];
    double m = n > 0 ? s / n : NAN;
    for (int i = 0; i < n; i++) s2 += (v[i] - m) * (v[i] - m);
    *mean = m;
    *half = n >= 2 ? t_quantile_975(n - 1) * sqrt(s2 / (n - 1)) / sqrt((double)n) : NAN;
}

/* ------------------------------------------------------------------ R-precision */

/* The mismatched candidates of r_precision: (n, n_candidates - 1) text indices in *cand_out, or -1
 * with err_msg() (checks the arguments as r_precision documents them). */
static int rp_candidates(int n, int n_candidates, int folds, uint64_t seed, const int *group, int **cand_out) {
    *cand_out = NULL;
    if (n_candidates < 2) return err_set("r_precision: %d candidates; at least 2 (the own text and a mismatch)", n_candidates);
    if (folds < 1 || folds > n) return err_set("r_precision: %d folds for %d images (1 to %d)", folds, n, n);
    int k = n_candidates - 1;   /* mismatched texts per image */

    /* Texts sorted by (group, index); without groups every text is its own group. The texts
     * eligible as mismatches of image i are those outside the sorted range [gbeg[i], gend[i]) of
     * its group, so the r-th eligible text is sorted position r, or r + group size past gbeg. */
    GroupIndex *sorted = xmalloc((size_t)n * sizeof *sorted);
    for (int i = 0; i < n; i++) sorted[i] = (GroupIndex){group ? group[i] : i, i};
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_group_index);
    int *gbeg = xmalloc((size_t)n * sizeof(int)), *gend = xmalloc((size_t)n * sizeof(int));
    for (int p = 0; p < n;) {
        int q = p;
        while (q < n && sorted[q].g == sorted[p].g) q++;
        for (int r = p; r < q; r++) {
            gbeg[sorted[r].i] = p;
            gend[sorted[r].i] = q;
        }
        p = q;
    }

    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        int eligible = n - (gend[i] - gbeg[i]);
        if (eligible < k)
            rc = err_set("r_precision: image %d has %d eligible mismatched texts (not itself%s), %d needed", i,
                         eligible, group ? " nor of its group" : "", k);
    }

    /* Floyd's sampling of k distinct eligible positions per image, serially from one stream */
    if (rc == 0) {
        int *cand = xmalloc((size_t)n * k * sizeof(int));
        int *pos = xmalloc((size_t)k * sizeof(int));
        Rng rng;
        rng_init(&rng, seed);
        for (int i = 0; i < n; i++) {
            floyd(&rng, n - (gend[i] - gbeg[i]), k, pos);
            int *ci = cand + (size_t)i * k;
            for (int q = 0; q < k; q++) {
                int p = pos[q] < gbeg[i] ? pos[q] : pos[q] + (gend[i] - gbeg[i]);
                ci[q] = sorted[p].i;
            }
        }
        free(pos);
        *cand_out = cand;
    }
    free(sorted);
    free(gbeg);
    free(gend);
    return rc;
}

/* The folds' R of the images' correct flags, into fold_r (if not NULL) and out. */
static void rp_finish(const unsigned char *correct, int n, int n_candidates, int folds, uint64_t seed, double *fold_r, RPrecision *out) {
    double sum2 = 0, mean, ci;
    double *r = xcalloc((size_t)folds, sizeof(double));
    int *fold = xmalloc((size_t)n * sizeof(int)), *size = xcalloc((size_t)folds, sizeof(int));
    r_precision_folds(n, folds, seed, fold);
    for (int i = 0; i < n; i++) {
        r[fold[i]] += correct[i];
        size[fold[i]]++;
    }
    for (int f = 0; f < folds; f++) r[f] /= size[f];
    mean_ci95(r, folds, &mean, &ci);
    for (int f = 0; f < folds; f++) sum2 += (r[f] - mean) * (r[f] - mean);
    if (fold_r) memcpy(fold_r, r, (size_t)folds * sizeof(double));
    free(r);
    free(fold);
    free(size);
    *out = (RPrecision){.mean = mean, .std = sqrt(sum2 / folds), .ci95 = ci, .folds = folds, .n = n, .n_candidates = n_candidates};
}

int r_precision(const float *img, const float *txt, int n, int d, int n_candidates, int folds, uint64_t seed,
                const int *group, double *fold_r, RPrecision *out) {
    if (n < 1 || d < 1) return err_set("r_precision: %d codes of dimension %d", n, d);
    int *cand, k = n_candidates - 1;
    int rc = rp_candidates(n, n_candidates, folds, seed, group, &cand);
    if (rc) return rc;
    float *ui = xmalloc((size_t)n * d * sizeof(float)), *ut = xmalloc((size_t)n * d * sizeof(float));
    unsigned char *correct = xmalloc((size_t)n);
    int bad;
    if ((bad = unit_rows(ui, img, n, d)) >= 0) rc = err_set("r_precision: image code %d is not finite", bad);
    else if ((bad = unit_rows(ut, txt, n, d)) >= 0) rc = err_set("r_precision: text code %d is not finite", bad);
    if (rc == 0) {
#pragma omp parallel for schedule(static)
        for (int i = 0; i < n; i++) {
            const float *u = ui + (size_t)i * d;
            const int *ci = cand + (size_t)i * k;
            double own = dot_f(u, ut + (size_t)i * d, d);
            int ok = 1;
            for (int q = 0; q < k && ok; q++) ok = dot_f(u, ut + (size_t)ci[q] * d, d) < own;
            correct[i] = (unsigned char)ok;
        }
        rp_finish(correct, n, n_candidates, folds, seed, fold_r, out);
    }
    free(ui);
    free(ut);
    free(correct);
    free(cand);
    return rc;
}

int r_precision_scored(RPrecisionScore score, void *ctx, int n, int n_candidates, int folds, uint64_t seed, const int *group,
                       double *fold_r, RPrecision *out) {
    if (n < 1) return err_set("r_precision: %d images", n);
    int *cand, k = n_candidates - 1;
    int rc = rp_candidates(n, n_candidates, folds, seed, group, &cand);
    if (rc) return rc;
    unsigned char *correct = xmalloc((size_t)n), *finite = xmalloc((size_t)n);
#pragma omp parallel for schedule(dynamic, 4)
    for (int i = 0; i < n; i++) {
        const int *ci = cand + (size_t)i * k;
        double own = score(ctx, i, i);
        int ok = isfinite(own), fin = ok;
        for (int q = 0; q < k && fin; q++) {
            double v = score(ctx, i, ci[q]);
            fin = isfinite(v);
            ok &= fin && v < own;
        }
        correct[i] = (unsigned char)ok;
        finite[i] = (unsigned char)fin;
    }
    for (int i = 0; i < n && rc == 0; i++)
        if (!finite[i]) rc = err_set("r_precision: a score of image %d is not finite", i);
    if (rc == 0) rp_finish(correct, n, n_candidates, folds, seed, fold_r, out);
    free(correct);
    free(finite);
    free(cand);
    return rc;
}

/* ------------------------------------------------------------------ KID */

/* k(x_i, y_j) = (x_i . y_j / d + 1)^3 for all i < nx, j < ny into g (nx, ny); each dot product
 * one serial double sum. sym: x == y, only j >= i computed and mirrored. */
static void poly_gram(const float *x, int nx, const float *y, int ny, int d, int sym, double *g) {
#pragma omp parallel for schedule(dynamic, 8)
    for (int i = 0; i < nx; i++)
        for (int j = sym ? i : 0; j < ny; j++) {
            double t = dot_f(x + (size_t)i * d, y + (size_t)j * d, d) / d + 1.0;
            g[(size_t)i * ny + j] = t * t * t;
            if (sym) g[(size_t)j * ny + i] = t * t * t;
        }
}

int kid(const float *a, int na, const float *b, int nb, int d, int subsets, int subset_size, uint64_t seed, double *values,
        Kid *out) {
    int m = na < nb ? na : nb;
    if (subset_size < m) m = subset_size;
    if (m < 2 || d < 1) return err_set("kid: %d and %d rows of dimension %d, subsets of %d: need 2 rows or more in each", na, nb, d, subset_size);
    if (subsets < 1) return err_set("kid: %d subsets", subsets);
    for (int s = 0; s < 2; s++) {
        const float *x = s ? b : a;
        int64_t nx = (int64_t)(s ? nb : na) * d;
        for (int64_t k = 0; k < nx; k++)
            if (!isfinite(x[k])) return err_set("kid: %s set: feature row %lld column %lld is %g", s ? "second" : "first", (long long)(k / d), (long long)(k % d), (double)x[k]);
    }
    double *gaa = xmalloc((size_t)na * na * sizeof(double)), *gbb = xmalloc((size_t)nb * nb * sizeof(double));
    double *gab = xmalloc((size_t)na * nb * sizeof(double)), *v = xmalloc((size_t)subsets * sizeof(double));
    poly_gram(a, na, a, na, d, 1, gaa);
    poly_gram(b, nb, b, nb, d, 1, gbb);
    poly_gram(a, na, b, nb, d, 0, gab);
    int *ia = xmalloc((size_t)m * sizeof(int)), *ib = xmalloc((size_t)m * sizeof(int));
    Rng r;
    rng_init(&r, seed);
    for (int s = 0; s < subsets; s++) {
        floyd(&r, na, m, ia);
        floyd(&r, nb, m, ib);
        double saa = 0, sbb = 0, sab = 0;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < m; j++) {
                if (i != j) {
                    saa += gaa[(size_t)ia[i] * na + ia[j]];
                    sbb += gbb[(size_t)ib[i] * nb + ib[j]];
                }
                sab += gab[(size_t)ia[i] * nb + ib[j]];
            }
        v[s] = (saa + sbb) / ((double)m * (m - 1)) - 2.0 * sab / ((double)m * m);
    }
    double mean = 0, var = 0;
    for (int s = 0; s < subsets; s++) mean += v[s];
    mean /= subsets;
    for (int s = 0; s < subsets; s++) var += (v[s] - mean) * (v[s] - mean);
    *out = (Kid){.mean = mean, .std = sqrt(var / subsets), .subsets = subsets, .subset_size = m};
    if (values) memcpy(values, v, (size_t)subsets * sizeof(double));
    free(gaa);
    free(gbb);
    free(gab);
    free(v);
    free(ia);
    free(ib);
    return 0;
}

/* ------------------------------------------------------------------ Inception Score */

int inception_score(const double *p, int n, int c, int splits, double *values, double *mean, double *std) {
    if (splits < 1 || splits > n || c < 1) return err_set("inception_score: %d rows of %d classes in %d splits", n, c, splits);
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < c; k++) {
            double x = p[(size_t)i * c + k];
            if (!isfinite(x) || x < 0) return err_set("inception_score: row %d class %d is %g, not a probability", i, k, x);
            s += x;
        }
        if (fabs(s - 1.0) > 1e-6) return err_set("inception_score: row %d sums to %.9g, not 1", i, s);
    }
    double *py = xmalloc((size_t)c * sizeof(double)), *v = xmalloc((size_t)splits * sizeof(double));
    for (int s = 0; s < splits; s++) {
        int b = r_precision_fold_begin(n, splits, s), e = r_precision_fold_begin(n, splits, s + 1);
        for (int k = 0; k < c; k++) py[k] = 0;
        for (int i = b; i < e; i++)
            for (int k = 0; k < c; k++) py[k] += p[(size_t)i * c + k];
        for (int k = 0; k < c; k++) py[k] /= e - b;
        double kl = 0;
        for (int i = b; i < e; i++)
            for (int k = 0; k < c; k++) {
                double x = p[(size_t)i * c + k];
                if (x > 0) kl += x * (log(x) - log(py[k]));
            }
        v[s] = exp(kl / (e - b));
    }
    double m = 0, var = 0;
    for (int s = 0; s < splits; s++) m += v[s];
    m /= splits;
    for (int s = 0; s < splits; s++) var += (v[s] - m) * (v[s] - m);
    *mean = m;
    *std = sqrt(var / splits);
    if (values) memcpy(values, v, (size_t)splits * sizeof(double));
    free(py);
    free(v);
    return 0;
}

/* ------------------------------------------------------------------ zero-shot accuracy */

static int cmp_int(const void *pa, const void *pb) {
    int a = *(const int *)pa, b = *(const int *)pb;
    return (a > b) - (a < b);
}

/* Sorts v (n) and removes duplicates; returns the number of distinct values. */
static int sort_unique(int *v, int n) {
    qsort(v, (size_t)n, sizeof(int), cmp_int);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (m == 0 || v[m - 1] != v[i]) v[m++] = v[i];
    return m;
}

/* Position of x in the sorted v (n), or -1. */
static int find_int(const int *v, int n, int x) {
    const int *p = bsearch(&x, v, (size_t)n, sizeof(int), cmp_int);
    return p ? (int)(p - v) : -1;
}

int zsl_accuracy(const float *img, const int *img_class, int n, const float *proto, const int *proto_class,
                 int n_proto, int d, double *mean_per_class, int *n_classes_out) {
    if (n < 1 || n_proto < 1 || d < 1)
        return err_set("zsl_accuracy: %d images, %d prototypes, dimension %d", n, n_proto, d);
    int *pcls = xmalloc((size_t)n_proto * sizeof(int)), *icls = xmalloc((size_t)n * sizeof(int));
    memcpy(pcls, proto_class, (size_t)n_proto * sizeof(int));
    memcpy(icls, img_class, (size_t)n * sizeof(int));
    int npc = sort_unique(pcls, n_proto), nc = sort_unique(icls, n);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        if (find_int(pcls, npc, img_class[i]) < 0)
            rc = err_set("zsl_accuracy: image %d has class %d, which no prototype has", i, img_class[i]);
    free(pcls);

    float *ui = NULL, *up = NULL;
    int *total = NULL, *hits = NULL;
    if (rc == 0) {
        ui = xmalloc((size_t)n * d * sizeof(float));
        up = xmalloc((size_t)n_proto * d * sizeof(float));
        int bad;
        if ((bad = unit_rows(ui, img, n, d)) >= 0) rc = err_set("zsl_accuracy: image feature %d is not finite", bad);
        else if ((bad = unit_rows(up, proto, n_proto, d)) >= 0)
            rc = err_set("zsl_accuracy: prototype %d is not finite", bad);
    }
    if (rc == 0) {
        unsigned char *right = xmalloc((size_t)n);
#pragma omp parallel for schedule(static)
        for (int i = 0; i < n; i++) {
            const float *u = ui + (size_t)i * d;
            int best = 0;
            double best_s = dot_f(u, up, d);
            for (int p = 1; p < n_proto; p++) {
                double s = dot_f(u, up + (size_t)p * d, d);
                if (s > best_s) {
                    best_s = s;
                    best = p;
                }
            }
            right[i] = proto_class[best] == img_class[i];
        }
        total = xcalloc((size_t)nc, sizeof(int));
        hits = xcalloc((size_t)nc, sizeof(int));
        for (int i = 0; i < n; i++) {
            int c = find_int(icls, nc, img_class[i]);
            total[c]++;
            hits[c] += right[i];
        }
        free(right);
        double sum = 0;
        for (int c = 0; c < nc; c++) sum += (double)hits[c] / total[c];
        *mean_per_class = sum / nc;
        if (n_classes_out) *n_classes_out = nc;
    }
    free(icls);
    free(ui);
    free(up);
    free(total);
    free(hits);
    return rc;
}
