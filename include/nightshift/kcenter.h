/* kcenter.h -- exact k-center greedy (the coreset of Sener & Savarese):
 * repeatedly pick the point farthest from every center chosen so far.
 *
 * State is O(N): per point the squared distance to its nearest center and
 * which center that is; never an N x N matrix.  A new center c can only move
 * point i when d(c, a_i) < 2 r_i (a_i its current center, r_i the distance to
 * it): by the triangle inequality d(x_i, c) >= d(c, a_i) - r_i >= r_i
 * otherwise.  Center-to-center distances are k x d work per step, so once
 * centers cover the data most points are skipped without reading their rows:
 * the step stops streaming N x d floats, which is what bounds a naive
 * version.  The skip test keeps a relative margin of 1e-4 over float
 * rounding, so the points it skips are exactly those whose computed minimum
 * could not change: results equal the naive O(N k) recomputation bit for bit
 * (same distance arithmetic, ns_kcenter_ref, tests/test_kcenter.c).
 *
 * Ties go to the lowest row.  Deterministic and thread-count independent.
 */
#ifndef NIGHTSHIFT_KCENTER_H
#define NIGHTSHIFT_KCENTER_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/status.h"

typedef struct ns_kcenter ns_kcenter;

/* x (n, d) stays owned by the caller and must outlive the state;
 * max_centers bounds the centers added (seeds + picks). */
ns_status ns_kcenter_create(const float *x, size_t n, int d, size_t max_centers,
                            ns_kcenter **out);
void ns_kcenter_free(ns_kcenter *k); /* NULL-safe */

/* Makes row i a center (a labelled frame, or a pick).  NS_ERR_LIMIT past
 * max_centers. */
ns_status ns_kcenter_add(ns_kcenter *k, size_t i);

/* The row with allow[row] != 0 (allow NULL: any row) that is farthest from
 * every center, and its squared distance (INFINITY before the first center).
 * Returns 0 when no row is allowed.  O(n): reads the distance array only. */
int ns_kcenter_farthest(const ns_kcenter *k, const uint8_t *allow, size_t *row, float *dist2);

/* Squared distance of row i to its nearest center (INFINITY with none). */
float ns_kcenter_dist2(const ns_kcenter *k, size_t i);

/* Rows whose distances were computed in all steps so far (the rest were
 * skipped by the triangle inequality): how well the pruning works. */
uint64_t ns_kcenter_evaluated(const ns_kcenter *k);

/* Greedy picks in one call: seeds (n_seeds rows, may be 0) become centers
 * first, then budget rows are picked (fewer when fewer are allowed); picks
 * (budget) and gain (budget, the pick's distance to the centers before it,
 * may be NULL).  *n_picked gets the count. */
ns_status ns_kcenter_greedy(const float *x, size_t n, int d, const size_t *seeds,
                            size_t n_seeds, const uint8_t *allow, size_t budget, size_t *picks,
                            float *gain, size_t *n_picked);

/* The naive version: every step recomputes every point's distance to every
 * center.  O(n k^2 d); for tests. */
ns_status ns_kcenter_ref(const float *x, size_t n, int d, const size_t *seeds, size_t n_seeds,
                         const uint8_t *allow, size_t budget, size_t *picks, float *gain,
                         size_t *n_picked);

/* The squared distance both versions use (16 partial sums in a fixed order,
 * so vectorised code and the reference agree bit for bit). */
float ns_kcenter_d2(const float *a, const float *b, int d);

#endif
