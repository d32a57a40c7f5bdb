/* whiten.h -- whitening an embedding space with a reference sample.
 *
 * Random-feature and pretrained embeddings alike are dominated by a few
 * high-variance directions (camera layout, lighting, hand poses): Euclidean
 * kNN distances then measure mostly those, and a change that lives in the
 * low-variance directions (a new object on the bench) hardly moves them.
 * Whitening with the reference's covariance weighs every direction by how
 * much the reference varies along it, which makes the kNN distance a
 * Mahalanobis-type distance.
 *
 * The covariance is shrunk towards a multiple of the identity with the
 * Ledoit-Wolf estimate of the shrinkage (Ledoit & Wolf, "A well-conditioned
 * estimator for large-dimensional covariance matrices", 2004):
 *     C = (1 - lambda) S + lambda (tr S / d) I,
 * so it is invertible even with fewer frames than dimensions, and the
 * directions the sample barely saw are not blown up.  W is the inverse of
 * C's lower Cholesky factor L (C = L L^T): z = W (x - mean) has identity
 * covariance under C, and ||z_a - z_b|| is the Mahalanobis distance.
 *
 * Every fast path (double SYRK for the covariance, SGEMM for the transform)
 * has a plain C reference (_ref) with the same arguments; test_whiten
 * compares them.
 */
#ifndef NIGHTSHIFT_WHITEN_H
#define NIGHTSHIFT_WHITEN_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/status.h"

typedef struct ns_whiten {
    int d;
    float *mean;      /* (d) of the rows fitted */
    float *W;         /* (d, d) row-major, lower triangular: z = W (x - mean) */
    double shrinkage; /* the lambda used */
} ns_whiten;

/* Fits on the rows of x (n, d) whose skip[i] is 0 (skip NULL: every row);
 * at least 2 rows must be kept (NS_ERR_USAGE otherwise).  Where the shrunk
 * covariance is still not positive definite (a degenerate sample), lambda is
 * raised until it is. */
ns_status ns_whiten_fit(const float *x, size_t n, int d, const uint8_t *skip, ns_whiten *out);
ns_status ns_whiten_fit_ref(const float *x, size_t n, int d, const uint8_t *skip,
                            ns_whiten *out);

/* Cross-fitting in one pass: out[g] (n_folds of them) is fitted on the rows
 * whose fold[i] is not g (fold[i] in 0..n_folds-1), as ns_whiten_fit with
 * skip[i] = (fold[i] == g) would fit it, from each fold's scatter about the
 * common mean gathered once (one SYRK pass over the rows instead of one per
 * fold), and all (unless NULL) on every row, as ns_whiten_fit with no skip
 * would.  Every complement must keep at least 2 rows (NS_ERR_USAGE). */
ns_status ns_whiten_fit_folds(const float *x, size_t n, int d, const int *fold, int n_folds,
                              ns_whiten *out, ns_whiten *all);

/* out (n, d) = W (x - mean) per row; out may be x (transformed in place). */
ns_status ns_whiten_apply(const ns_whiten *w, const float *x, size_t n, float *out);
ns_status ns_whiten_apply_ref(const ns_whiten *w, const float *x, size_t n, float *out);

void ns_whiten_release(ns_whiten *w); /* NULL-safe, idempotent */

#endif
