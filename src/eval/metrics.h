/* metrics.h: the evaluation metrics of issue 7 on precomputed codes: FID (Heusel et al., NIPS
 * 2017) as pytorch-fid computes it, R-precision as DM-GAN's released protocol computes it (with
 * its off-by-one defects fixed) and GAZSL's zero-shot top-1 accuracy averaged per class.
 *
 * Everything here works on plain row-major float matrices (one row per image or text), so the
 * callers decide which network produced them (Inception pool features for FID, the DAMSM image
 * and sentence codes for R-precision, ZSL features and class prototypes for the accuracy).
 * Sums run in double. Bad arguments or failing LAPACK calls return -1 after err_set(); the
 * outputs are then unspecified. Results do not depend on the thread count.
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
 * (fid_from_stats). OpenBLAS's threads busy-wait for each other: with OMP_NUM_THREADS above the
 * number of idle cores the eigen-decompositions get ten times slower. */
int fid(const float *a, int na, const float *b, int nb, int d, double *out);

/* ---------------------------------------------------------------- R-precision */

typedef struct RPrecision {
    double mean, std;      /* over the folds: mean and population std (numpy's np.std default) */
    int folds, n, n_candidates;
} RPrecision;

/* R-precision of n image codes img (n, d) against their text codes txt (n, d): row i of img
 * belongs to row i of txt (DM-GAN: the DAMSM image code of the image generated from caption i and
 * that caption's sentence code).
 *  - Candidates of image i: its own text and n_candidates - 1 mismatched texts drawn uniformly
 *    without replacement from the indices j != i, and with group[j] != group[i] when group (n) is
 *    not NULL (give every copy of one caption the same group so that a duplicate never counts as
 *    a mismatch; DM-GAN's get_mis_caption excludes the image's class: pass class ids for that).
 *  - Similarity: cosine (codes are normalised once; a zero code has similarity 0 with anything).
 *  - Image i is correct when its own text's similarity is strictly greater than every mismatched
 *    one; a tie counts as wrong (DM-GAN's torch.argmax happens to pick the own caption, listed
 *    first, in a tie: so all-equal codes score 1 there and 0 here).
 *  - The n images are split into `folds` contiguous folds that cover every image, fold f holding
 *    [r_precision_fold_begin(n, folds, f), r_precision_fold_begin(n, folds, f + 1)) (sizes differ
 *    by at most one); R of a fold = correct / fold size; out gets the mean and std over folds.
 * Differences from DM-GAN's released code (trainer.py sampling, datasets.get_mis_caption), all
 * deliberate: its folds drop the last element of each (R[i*3000:(i+1)*3000-1]); its draws use
 * random.randint(0, len), whose upper bound is inclusive (an index one past the end); its 99
 * mismatches are drawn with replacement; it shuffles R before splitting (contiguous folds here,
 * so a caller that orders images by class gets per-class-block folds: shuffle rows first if that
 * is not wanted).
 * Randomness: one Philox stream rng_init(seed), the candidates of image 0 first, then 1, ...
 * (Floyd's sampling: exactly n_candidates - 1 draws of rng_below per image), so a seed gives the
 * same result for any thread count. Similarities are accumulated in double.
 * Errors: n < 1, d < 1, n_candidates < 2, folds < 1 or > n, an image with fewer than
 * n_candidates - 1 eligible mismatched texts (named with the counts). */
int r_precision(const float *img, const float *txt, int n, int d, int n_candidates, int folds, uint64_t seed,
                const int *group, RPrecision *out);

/* First image of fold f (0 <= f <= folds) when n images are split into `folds` contiguous folds:
 * floor(f * n / folds). Fold f is [begin(f), begin(f + 1)); begin(0) = 0, begin(folds) = n. */
int r_precision_fold_begin(int n, int folds, int f);

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
