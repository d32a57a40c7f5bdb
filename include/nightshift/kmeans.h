/* kmeans.h -- k-means clustering of embeddings (detect stage).
 *
 * k-means++ seeding (deterministic for a seed, portable splitmix64 PRNG),
 * then Lloyd iterations.  Distances are computed as
 * ||x||^2 - 2 x.c + ||c||^2 over fixed row tiles of X, so no (n, k) matrix is
 * ever held beyond one tile per thread; the -2 X C^T products run on an
 * AVX-512 kernel where the CPU has AVX-512F, else on cblas_sgemm
 * (NS_KMEANS_GEMM=blas forces the sgemm).  Centroid sums are accumulated in
 * double in a fixed order: results are bit-identical for any thread count
 * (on one machine and path: the kernel and the sgemm round differently).
 * An empty cluster is re-seeded with the point farthest from its centroid
 * (lowest index on ties).
 *
 * Two versions with the same arguments:
 *   ns_kmeans_*      OpenMP + the AVX-512 kernel or OpenBLAS;
 *   ns_ref_kmeans_*  plain C, double precision: the reference for tests.
 */
#ifndef NIGHTSHIFT_KMEANS_H
#define NIGHTSHIFT_KMEANS_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ns_kmeans_opts {
    int k;             /* clusters, 1 <= k <= n */
    int max_iter;      /* Lloyd iterations at most (>= 0) */
    double tol;        /* stop when sum of squared centroid shifts <= tol * mean
                        * per-dimension variance of x (sklearn's rule); >= 0 */
    uint64_t seed;     /* k-means++ seed */
    int threads;       /* OpenMP threads; <= 0: omp_get_max_threads() */
    const float *init; /* (k, d) starting centroids, or NULL for k-means++ */
} ns_kmeans_opts;

typedef struct ns_kmeans_result {
    int k, d;
    size_t n;
    float *centroids; /* (k, d) */
    int *assign;      /* (n), nearest centroid of each point (lowest index on ties) */
    size_t *counts;   /* (k), points assigned to each centroid */
    double inertia;   /* sum over points of squared distance to its centroid */
    int iterations;   /* Lloyd iterations run */
} ns_kmeans_result;

/* k = 8, max_iter = 100, tol = 1e-4, seed = 0, threads = 0, init = NULL. */
ns_kmeans_opts ns_kmeans_default_opts(void);

/* Clusters x (n, d) into o->k clusters.  On success r owns its arrays (free
 * with ns_kmeans_result_release); assign, counts and inertia describe the
 * final centroids.  On failure r is left released.  Bad arguments (k < 1,
 * k > n, d < 1, NULL pointers, negative max_iter or tol) are NS_ERR_USAGE. */
ns_status ns_kmeans_fit(const float *x /* (n, d) */, size_t n, int d, const ns_kmeans_opts *o,
                        ns_kmeans_result *r);

/* Frees the arrays of r and zeroes it; NULL-safe, idempotent. */
void ns_kmeans_result_release(ns_kmeans_result *r);

/* Assigns each row of x (n, d) to its nearest centroid of c (k, d).
 * assign (n) gets the index (lowest on ties); dist2 (n), if not NULL, the
 * squared Euclidean distance to it. */
ns_status ns_kmeans_assign(const float *x, size_t n, int d, const float *c, int k, int *assign,
                           float *dist2);

/* ---- mini-batch k-means: sets too large for memory ------------------------------
 *
 * Sculley's mini-batch k-means (WWW 2010) over a set streamed through two
 * callbacks.  Each batch is assigned to the current centroids, then every
 * centroid moves to the running mean of all points ever assigned to it: with
 * v_j points seen so far and a batch bringing m_j points summing to s_j,
 * c_j <- (v_j c_j + s_j) / (v_j + m_j), v_j += m_j (per-centroid learning rate
 * 1 / v_j, exactly Sculley's per-point update with the batch's assignments
 * cached).  A centroid that gets no point keeps its place.  After the epochs,
 * one more pass assigns every point and sums the exact inertia.  Batch sums
 * are taken in a fixed order: the result depends on the seed and the order
 * the callback serves rows in, never on the thread count. */

/* Copies the next rows of the set into buf (cap, d), row-major: *got of them,
 * 1 <= *got <= cap, or *got = 0 at the end of the set. */
typedef ns_status (*ns_kmeans_next_fn)(void *ctx, float *buf, size_t cap, size_t *got);
/* Goes back to the set's first row; every pass must serve the same rows in
 * the same order. */
typedef ns_status (*ns_kmeans_rewind_fn)(void *ctx);

typedef struct ns_kmeans_mb_opts {
    int k;             /* clusters, 1 <= k <= rows seeded from */
    size_t batch;      /* rows per mini-batch (>= 1) */
    int epochs;        /* passes over the set that move centroids (>= 1) */
    size_t init_rows;  /* k-means++ seeds from the set's first init_rows rows;
                        * 0: 3 * batch (as scikit-learn's init_size) */
    uint64_t seed;     /* k-means++ seed */
    int threads;       /* OpenMP threads; <= 0: omp_get_max_threads() */
    const float *init; /* (k, d) starting centroids, or NULL for k-means++ */
} ns_kmeans_mb_opts;

/* k = 8, batch = 4096, epochs = 3, init_rows = 0, seed = 0, threads = 0, init = NULL. */
ns_kmeans_mb_opts ns_kmeans_mb_default_opts(void);

/* Clusters the rows of dimension d that next() serves (rewind() is called
 * before every pass, the first included).  r is filled as by
 * ns_kmeans_fit: n = rows in the set, assign/counts/inertia from the final
 * pass, iterations = mini-batch updates made.  Bad arguments are
 * NS_ERR_USAGE; a set that changes between passes is NS_ERR_CORRUPT; a
 * callback's failure is returned as it is.  On failure r is left released. */
ns_status ns_kmeans_fit_minibatch(ns_kmeans_next_fn next, ns_kmeans_rewind_fn rewind, void *ctx,
                                  int d, const ns_kmeans_mb_opts *o, ns_kmeans_result *r);

/* ---- plain C references (tests) ----------------------------------------------- */

/* Same contract as ns_kmeans_assign, distances computed naively in double. */
ns_status ns_ref_kmeans_assign(const float *x, size_t n, int d, const float *c, int k, int *assign,
                               float *dist2);

/* One naive Lloyd step: assign (n) to the nearest of c (k, d), then c_out
 * (k, d) = mean of each cluster's points (an empty cluster keeps its centroid). */
ns_status ns_ref_kmeans_step(const float *x, size_t n, int d, const float *c, int k, int *assign,
                             float *c_out);

#ifdef __cplusplus
}
#endif
#endif
