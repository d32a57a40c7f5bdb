/* mmd.h -- kernel two-sample test on embeddings with whole-clip permutations.
 *
 * Gaussian kernel k(x, y) = exp(-||x - y||^2 / (2 sigma^2)).
 *
 * Frames of one clip are strongly correlated, so the test permutes clips,
 * not frames.  Rows are grouped into blocks (a block = the frames of one clip,
 * contiguous rows [off[a], off[a+1])).  Every permutation statistic is a
 * function of the block sums S[a][b] = sum_{i in a, j in b} k(x_i, x_j), so
 * S is computed once (GEMM tiles; never an N x N matrix beyond one tile per
 * thread) and thousands of permutations cost O(B^2) each, done as a GEMM of
 * S with the permutations' block-indicator matrix.
 *
 * Unbiased MMD^2 between X (blocks with g = 1, m frames) and Y (g = 0, n):
 *   (sum_{i != j in X} k)/(m(m-1)) + (sum_{i != j in Y} k)/(n(n-1))
 *   - 2 (sum_{i in X, j in Y} k)/(m n)
 * where the i != j sums are block sums minus the diagonal (k(x, x) = 1).
 * Frame-level permutation is the same machinery with one frame per block (used
 * by the tests to show why we do not do it).
 *
 * p-value: (1 + #{perm >= observed}) / (1 + n_perm); the permutations keep the
 * number of X blocks and are drawn from a seeded splitmix64 stream, so the
 * result is deterministic for a seed and any thread count.
 */
#ifndef NIGHTSHIFT_MMD_H
#define NIGHTSHIFT_MMD_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/status.h"

/* Median heuristic: sigma = sqrt(median ||x_i - x_j||^2 / 2) over pairs
 * i < j, all pairs when n (n - 1) / 2 <= max_pairs, else max_pairs pairs drawn
 * with the seed.  n >= 2; a zero median gives NS_ERR_USAGE ("all points equal"). */
ns_status ns_mmd_median_sigma(const float *x, size_t n, int d, size_t max_pairs, uint64_t seed,
                              double *sigma);

/* S (nblocks, nblocks), row-major, symmetric, diagonal blocks include i == j.
 * off (nblocks + 1): off[0] = 0, nondecreasing, off[nblocks] = n. */
ns_status ns_mmd_block_sums(const float *x, size_t n, int d, const size_t *off, size_t nblocks,
                            double sigma, int threads, double *S);
ns_status ns_ref_mmd_block_sums(const float *x, size_t n, int d, const size_t *off,
                                size_t nblocks, double sigma, double *S);

/* Unbiased MMD^2 from block sums; size[a] = frames in block a; g[a] = 1 for
 * X.  Needs m >= 2 and n >= 2 (else NAN). */
double ns_mmd2_from_blocks(const double *S, const size_t *size, size_t nblocks, const uint8_t *g);

typedef struct ns_mmd_test {
    double mmd2;         /* observed unbiased MMD^2 */
    double p_value;      /* permutation p-value */
    double null_mean, null_sd; /* of the permutation statistics */
    double *null_stats;  /* (n_perm) permutation statistics, or NULL if not asked */
    int n_perm;
    size_t blocks_x, blocks_y; /* clips (the effective sample size) */
    size_t n_x, n_y;           /* frames */
} ns_mmd_test;

/* Permutation test over blocks, unstratified (ns_mmd_perm_test_strata with
 * stratum NULL).  keep_null != 0 fills out->null_stats (caller frees with
 * free()).  Needs at least 2 blocks on each side (NS_ERR_USAGE otherwise,
 * naming the counts). */
ns_status ns_mmd_perm_test(const double *S, const size_t *size, size_t nblocks, const uint8_t *g,
                           int n_perm, uint64_t seed, int threads, int keep_null,
                           ns_mmd_test *out);

/* Stratified permutation test: the X labels are permuted only within each
 * stratum (a camera: cameras are far apart in embedding space, and shuffles
 * across them give a null dominated by the camera mix, not by change), each
 * stratum keeping its number of X blocks.  stratum (nblocks): any int32
 * values, equal values form one stratum; NULL = one stratum, which is
 * ns_mmd_perm_test exactly (same permutations, same bits).  A stratum with
 * blocks on one side only is fixed: its blocks take part in the statistic
 * but never move.  Blocks without frames take part in nothing.
 *
 * Permutation p draws from its own splitmix64 stream (seed, p): a partial
 * Fisher-Yates per moving stratum, strata in ascending stratum value, blocks
 * ascending within; so the result is deterministic for a seed and any thread
 * count.  p-value = (1 + #{perm >= observed - 1e-12 (1 + |observed|)})
 * / (1 + n_perm), the slack absorbing rounding between the two formulas.
 *
 * NS_ERR_USAGE: a NULL argument; n_perm < 1; fewer than 2 blocks with frames
 * on a side overall (naming the counts); no stratum with blocks on both sides
 * ("no camera has clips on both sides": no permutation would move anything). */
ns_status ns_mmd_perm_test_strata(const double *S, const size_t *size, size_t nblocks,
                                  const uint8_t *g, const int32_t *stratum, int n_perm,
                                  uint64_t seed, int threads, int keep_null, ns_mmd_test *out);

/* The number of distinct X/Y assignments the stratified test draws from:
 * the product over strata of C(blocks, X blocks), blocks with frames only
 * (a double: it can be astronomically large).  1 / it is the smallest
 * p-value any permutation test on these clips can give. */
double ns_mmd_assignments(const size_t *size, size_t nblocks, const uint8_t *g,
                          const int32_t *stratum);

/* The same test as ns_mmd_perm_test_strata by enumerating every assignment
 * once (the observed one included): p = #{stat >= observed - 1e-12 (1 +
 * |observed|)} / assignments, exact.  out->n_perm = the number of
 * assignments.  NS_ERR_USAGE: fewer than 2 clips with frames on a side, or
 * more than max_assign assignments. */
ns_status ns_mmd_exact_test_strata(const double *S, const size_t *size, size_t nblocks,
                                   const uint8_t *g, const int32_t *stratum, size_t max_assign,
                                   int keep_null, ns_mmd_test *out);

/* O(m n d) direct unbiased MMD^2 in double: the reference for tests. */
ns_status ns_ref_mmd2(const float *x, size_t m, const float *y, size_t n, int d, double sigma,
                      double *mmd2);

#endif
