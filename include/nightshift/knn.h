/* knn.h -- exact k nearest neighbours by Euclidean distance (detect stage).
 *
 * Brute force, as GEMM tiles: for a tile of queries Q and a tile of base
 * points B, ||q||^2 - 2 Q B^T + ||b||^2 with cblas_sgemm, then a running
 * top-k per query.  Memory beyond the outputs is one (tile_q x tile_b) block
 * per thread; no (nq, nb) matrix is ever built.
 *
 * Exclusion groups make leave-one-clip-out possible: when qgroup and bgroup
 * are both given, base point j is never a neighbour of query i when
 * bgroup[j] == qgroup[i] (frames of the same clip do not vouch for each
 * other).  Passing the same array for both with q == b gives the reference's
 * own leave-one-clip-out distances.
 *
 * Results are deterministic for any thread count: ties in distance are broken
 * by the lower base index.  Distances are Euclidean (not squared), clamped at
 * 0 against rounding.  When fewer than k base points are eligible the missing
 * slots hold INFINITY and index -1.
 *
 *   ns_knn_search      OpenMP + OpenBLAS
 *   ns_ref_knn_search  plain C, double precision, O(nq nb d): the reference
 */
#ifndef NIGHTSHIFT_KNN_H
#define NIGHTSHIFT_KNN_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/status.h"

/* q (nq, d), b (nb, d); k >= 1; dist (nq, k) ascending per row; idx (nq, k)
 * or NULL; qgroup (nq) and bgroup (nb) both given or both NULL; threads <= 0:
 * omp_get_max_threads().  nq == 0 is fine; nb == 0 fills INFINITY/-1. */
ns_status ns_knn_search(const float *q, size_t nq, const float *b, size_t nb, int d, int k,
                        const int64_t *qgroup, const int64_t *bgroup, int threads, float *dist,
                        int64_t *idx);

ns_status ns_ref_knn_search(const float *q, size_t nq, const float *b, size_t nb, int d, int k,
                            const int64_t *qgroup, const int64_t *bgroup, float *dist,
                            int64_t *idx);

/* Empirical upper-tail p-value of score s against a calibration sample
 * sorted ascending (n values): (1 + #{c >= s}) / (1 + n).  n == 0 gives 1. */
double ns_knn_pvalue(const float *sorted_calib, size_t n, float s);

#endif
