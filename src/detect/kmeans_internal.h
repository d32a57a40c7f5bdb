/* kmeans_internal.h -- what the CPU k-means (src/detect/kmeans.c) shares with
 * its CUDA twin (kernels/detect.cu), so that both check their arguments and
 * repair empty clusters the same way.  Plain C with C linkage, so the .cu
 * file can include it.  Not a public contract. */
#ifndef NIGHTSHIFT_KMEANS_INTERNAL_H
#define NIGHTSHIFT_KMEANS_INTERNAL_H

#include <stddef.h>

#include "nightshift/kmeans.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Arguments of an assignment: x (n, d), c (k, d) and out non-NULL, n, d,
 * k >= 1.  `where` starts every message (e.g. "kmeans"). */
ns_status ns_kmeans_check_assign(const char *where, const float *x, size_t n, int d,
                                 const float *c, int k, const void *out);

/* Arguments of a Lloyd fit: x and o non-NULL, d >= 1, 1 <= o->k <= n,
 * o->max_iter >= 0, o->tol >= 0. */
ns_status ns_kmeans_check_fit(const char *where, const float *x, size_t n, int d,
                              const ns_kmeans_opts *o);

/* Gives each empty cluster the point farthest from its own centroid (lowest
 * index on ties), taken from a cluster that keeps at least one point, and
 * moves that point's row between the clusters' sums (k, d).  dist (n) is
 * each point's squared distance to its centroid; a moved point's becomes -1
 * so it never moves twice. */
void ns_kmeans_repair(const float *x, size_t n, int d, int k, int *assign, double *dist,
                      size_t *counts, double *sums);

#ifdef __cplusplus
}
#endif

#endif
