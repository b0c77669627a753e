/* metrics.h: the evaluation metrics of issues 7 and 16 on precomputed codes: FID (Heusel et al.,
 * NIPS 2017) as pytorch-fid computes it, KID (Binkowski et al., ICLR 2018) as torch-fidelity and
 * clean-fid compute it, R-precision as DM-GAN's released protocol computes it (with its off-by-one
 * defects fixed), the Inception Score over a classifier's classes (StackGAN's convention), GAZSL's
 * zero-shot top-1 accuracy averaged per class, and the 95% confidence interval of a mean.
 *
 * Everything here works on plain row-major float matrices (one row per image or text), so the
 * callers decide which network produced them (Inception pool features for FID and KID, the DAMSM
 * image and sentence codes for R-precision, ZSL features and class prototypes for the accuracy).
 * Sums run in double. Bad arguments or failing LAPACK calls return -1 after err_set(); the
 * outputs are then unspecified.
 * Results do not depend on the thread count, bit for bit: our own parallel loops give every output
 * element one serial sum in a fixed order, and the BLAS and LAPACK calls (whose partial sums
 * OpenBLAS splits by the thread count: FID moved in its 8th digit between 1 and 2 threads) run on
 * one thread (threads_set(1) around them, the caller's count restored after).
 */
#ifndef ATTNGAN_EVAL_METRICS_H
#define ATTNGAN_EVAL_METRICS_H

#include <stdint.h>

/* ---------------------------------------------------------------- FID */

/* Mean and covariance of n feature rows feats (n, d):
 *   mu (d)     = 1/n sum_i x_i
 *   cov (d, d) = 1/(n-1) sum_i (x_i - mu)(x_i - mu)^T   (unbiased, as numpy.cov / pytorch-fid)
 * accumulated in double (the product of the centred rows by OpenBLAS dsyrk, in blocks of rows,
 * so memory stays O(d^2) for any n). cov is written in full (both triangles, exactly symmetric).
 * Errors: n < 2, d < 1, a feature that is not finite (the row and column are named). */
int fid_stats(const float *feats, int n, int d, double *mu, double *cov);

/* Frechet distance between N(mu1, cov1) and N(mu2, cov2), cov* (d, d) symmetric PSD:
 *   fid = |mu1 - mu2|^2 + Tr(C1) + Tr(C2) - 2 Tr(sqrtm(C1 C2))
 * Tr(sqrtm(C1 C2)) is computed without forming the non-symmetric C1 C2 (pytorch-fid uses
 * scipy.linalg.sqrtm, whose Schur method can return complex noise and needs an eps*I retry):
 *   C1 = V L V^T (LAPACK dsyevd),  S = V sqrt(max(L, 0)) V^T (the PSD square root of C1),
 *   M = S C2 S (symmetric PSD),  Tr(sqrtm(C1 C2)) = sum_k sqrt(max(lambda_k(M), 0)).
 * Why: C1 C2 = S (S C2) and M = (S C2) S. For square A, B the products AB and BA have the same
 * characteristic polynomial, so C1 C2 has exactly the eigenvalues (with algebraic multiplicity)
 * of M, which are real and >= 0 because M is symmetric PSD (when S is invertible the two are
 * even similar: C1 C2 = S M S^-1). The principal square root of C1 C2 has the square roots of
 * those eigenvalues as its eigenvalues, and a trace is the sum of the eigenvalues.
 * The code uses the orthogonally similar M' = V^T M V = G^T C2 G with G = V sqrt(max(L, 0))
 * (C1 = G G^T, so the same AB/BA argument applies directly), which saves one d^3 product: two
 * matrix products (dsymm, dgemm) and two dsyevd calls (the second for eigenvalues only).
 * The max(., 0) clamps only rounding noise of (near-)zero eigenvalues; each such eigenvalue
 * still adds up to about sqrt(1e-16) |C| to the trace, so FID of rank-deficient covariances
 * (fewer samples than d) carries that noise, as pytorch-fid's does. When C1 C2 is singular with
 * a defective zero eigenvalue sqrtm does not exist and the value is the continuous limit, which
 * pytorch-fid's eps*I retry approximates. Only the upper triangle (row-major: column >= row) of
 * cov1 and cov2 is used (all of both must be finite); they are not modified. The result is not
 * clamped at 0: for equal statistics it is rounding noise (of order 1e-13 Tr(C) for
 * well-conditioned C).
 * Errors: d < 1, a non-finite input, LAPACK failure (dsyevd info != 0). */
int fid_from_stats(const double *mu1, const double *cov1, const double *mu2, const double *cov2, int d, double *fid);

/* fid_stats of a (na, d) and of b (nb, d), then fid_from_stats. Memory: 5 d^2 doubles at peak
 * (the two covariances and fid_from_stats's three work matrices: 160 MiB for d = 2048). Time for
 * d = 2048 on one core of this machine: 0.5 s per 5000 rows (fid_stats) plus 2.2 s
 * (fid_from_stats); both run their BLAS and LAPACK calls on one thread (see above). */
int fid(const float *a, int na, const float *b, int nb, int d, double *out);

/* ---------------------------------------------------------------- KID */

typedef struct Kid {
    double mean, std;      /* over the subsets: mean and population std (np.std, as torch-fidelity) */
    int subsets, subset_size;
} Kid;

/* Kernel Inception Distance between feature rows a (na, d) and b (nb, d): the unbiased estimate of
 * MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, on `subsets` subsets of
 * m = min(na, nb, subset_size) rows of each set (torch-fidelity's and clean-fid's scheme, whose
 * defaults are 100 subsets of 1000):
 *   MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1))
 *             - 2 sum_{i, j} k(x_i, y_j) / m^2.
 * Subset s draws m distinct rows of a, then m distinct rows of b (Floyd's sampling: m draws of
 * rng_below each), all from one Philox stream rng_init(seed), subset 0 first. values (subsets), if
 * not NULL, gets each subset's MMD^2; out the mean and std over subsets. The kernel values come
 * from the Gram matrices of all rows (each dot product a serial double sum), computed once:
 * memory (na + nb)^2 doubles; time (na + nb)^2 d / 2 multiply-adds.
 * Errors: m < 2, d < 1, subsets < 1, a feature that is not finite. */
int kid(const float *a, int na, const float *b, int nb, int d, int subsets, int subset_size, uint64_t seed, double *values,
        Kid *out);

/* ---------------------------------------------------------------- Inception Score */

/* Inception Score of n class distributions p (n, c) (rows of a classifier's softmax), as StackGAN
 * and Salimans et al. compute it: the rows are cut into `splits` contiguous parts, part s being
 * rows [floor(s n / splits), floor((s + 1) n / splits)); for each part
 *   IS_s = exp(mean over its rows of KL(p(y|x) || p(y))),  p(y) = the mean of the part's rows,
 * with 0 log 0 = 0. values (splits), if not NULL, gets IS_s; *mean and *std (population, np.std)
 * are over the parts. Shuffle the rows first if their order follows the classes.
 * Errors: splits < 1 or > n, c < 1, a row with a negative or non-finite entry or a sum more than
 * 1e-6 from 1 (named). */
int inception_score(const double *p, int n, int c, int splits, double *values, double *mean, double *std);

/* ---------------------------------------------------------------- confidence interval of a mean */

/* The 0.975 quantile of Student's t distribution with df >= 1 degrees of freedom (exact table to
 * 30, a Cornish-Fisher expansion beyond, within 2e-4 of the true value; the normal 1.96 as df grows). */
double t_quantile_975(int df);
/* Mean of v (n) and the half-width of its 95% confidence interval, t_{0.975, n-1} s / sqrt(n) with
 * s the sample standard deviation (n - 1); the half-width is NAN when n < 2. */
void mean_ci95(const double *v, int n, double *mean, double *half);

/* ---------------------------------------------------------------- R-precision */

typedef struct RPrecision {
    double mean, std;      /* over the folds: mean and population std (numpy's np.std default) */
    double ci95;           /* half-width of the 95% confidence interval of the mean (mean_ci95) */
    int folds, n, n_candidates;
} RPrecision;

/* R-precision of n image codes img (n, d) against their text codes txt (n, d): row i of img
 * belongs to row i of txt (DM-GAN: the DAMSM image code of the image generated from caption i and
 * that caption's sentence code).
 *  - Candidates of image i: its own text and n_candidates - 1 mismatched texts drawn uniformly
 *    without replacement from the indices j != i, and with group[j] != group[i] when group (n) is
 *    not NULL. DM-GAN's protocol (get_mis_caption) draws the mismatches from other classes: pass
 *    the class ids. (Any ints; giving every copy of one caption the same group instead keeps
 *    duplicates out of the mismatches.)
 *  - Similarity: cosine (codes are normalised once; a zero code has similarity 0 with anything).
 *  - Image i is correct when its own text's similarity is strictly greater than every mismatched
 *    one; a tie counts as wrong (DM-GAN's torch.argmax happens to pick the own caption, listed
 *    first, in a tie: so all-equal codes score 1 there and 0 here).
 *  - The n images are split into `folds` folds of a seeded random permutation
 *    (r_precision_folds(n, folds, seed)), so a class-ordered input does not give per-class folds;
 *    R of a fold = correct / fold size. fold_r (folds), if not NULL, gets each fold's R; out the
 *    mean, the std over folds and the 95% confidence interval of the mean (mean_ci95).
 * Differences from DM-GAN's released code (trainer.py sampling, datasets.get_mis_caption), all
 * deliberate: its folds drop the last element of each (R[i*3000:(i+1)*3000-1]); its draws use
 * random.randint(0, len), whose upper bound is inclusive (an index one past the end); its 99
 * mismatches are drawn with replacement.
 * Randomness: the candidates from one Philox stream rng_init(seed), those of image 0 first, then
 * 1, ... (Floyd's sampling: exactly n_candidates - 1 draws of rng_below per image); the folds from
 * r_precision_folds. A seed gives the same result for any thread count. Similarities are
 * accumulated in double.
 * Errors: n < 1, d < 1, n_candidates < 2, folds < 1 or > n, an image with fewer than
 * n_candidates - 1 eligible mismatched texts (named with the counts). */
int r_precision(const float *img, const float *txt, int n, int d, int n_candidates, int folds, uint64_t seed,
                const int *group, double *fold_r, RPrecision *out);

/* R-precision as r_precision, with the similarity of image i and text j given by score(ctx, i, j)
 * instead of the cosine of two codes (e.g. the DAMSM's word-region score): the same candidates, the
 * same folds, the same rule (strictly greater than every mismatch; a tie is wrong). score is called
 * from several threads at once (OpenMP over the images) and must be a pure function of (i, j). A
 * score that is not finite is an error (naming the image). */
typedef double (*RPrecisionScore)(void *ctx, int img, int txt);
int r_precision_scored(RPrecisionScore score, void *ctx, int n, int n_candidates, int folds, uint64_t seed, const int *group,
                       double *fold_r, RPrecision *out);

/* First position of fold f (0 <= f <= folds) when n items are split into `folds` contiguous
 * parts: floor(f * n / folds). begin(0) = 0, begin(folds) = n; sizes differ by at most one. */
int r_precision_fold_begin(int n, int folds, int f);

/* The folds of r_precision: the items 0..n-1 in a seeded random order (a Fisher-Yates shuffle
 * driven by rng_init(seed * 0x9E3779B97F4A7C15 + 0xF01D5)), cut into contiguous parts by
 * r_precision_fold_begin. fold (n) gets each item's fold, 0..folds-1. */
void r_precision_folds(int n, int folds, uint64_t seed, int *fold);

/* ---------------------------------------------------------------- zero-shot accuracy */

/* GAZSL's zero-shot top-1 accuracy averaged per class. Image i (img row, class img_class[i]) is
 * assigned the class proto_class[p] of the prototype row p of proto (n_proto, d) with the highest
 * cosine similarity (several prototypes may share a class: the class's best one counts; in an
 * exact tie the lowest p wins; a zero vector has similarity 0). The accuracy of each class that
 * has images is (its images assigned to it) / (its images); *mean_per_class is their unweighted
 * mean, so a class with many images weighs as much as one with few. *n_classes_out (if not NULL)
 * gets the number of classes averaged. Class ids are any ints.
 * Errors: n < 1, n_proto < 1, d < 1, an image whose class has no prototype (it could never be
 * right: pass the prototypes of every class that is evaluated). */
int zsl_accuracy(const float *img, const int *img_class, int n, const float *proto, const int *proto_class,
                 int n_proto, int d, double *mean_per_class, int *n_classes_out);

#endif
