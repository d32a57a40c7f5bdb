/* kmeans_gemm.h -- the distance GEMM of the CPU k-means (src/detect/kmeans.c):
 * G = -2 X C^T for one row tile, by an AVX-512 kernel, with C packed once
 * per pass.  Internal to the detect stage (and its tests and benchmark); not a
 * public contract.
 *
 * Packed centroids: ns_kmeans_gemm_floats(k, d) floats, 64-byte aligned,
 * holding -2 C^T (scaling by -2 is exact) cut into panels of NS_KM_GEMM_NB
 * centroids: with kpad = k rounded up to 16 (zero columns), panel b covers
 * centroids [64 b, 64 b + w_b), w_b = min(64, kpad - 64 b), starts at float
 * 64 b d and is (d, w_b) row-major: the w_b values one x column meets.
 *
 * Summation order (what makes the results reproducible): every
 *   g[i][j] = fma(x[i][d-1], -2 c[j][d-1], ... fma(x[i][0], -2 c[j][0], 0))
 * one single-precision fused multiply-add per term, in increasing t.  Partial
 * sums cross the kernel's d-chunks in float through g (exact), so a value
 * depends on row i of x, row j of c and d only: not on the tile, the row's
 * place in it, the chunk size or the thread that computes it.  A plain
 * fmaf() loop gives the same bits. */
#ifndef NIGHTSHIFT_KMEANS_GEMM_H
#define NIGHTSHIFT_KMEANS_GEMM_H

#include <stddef.h>

#define NS_KM_GEMM_NB 64 /* centroids per packed panel: four 16-float vectors */

/* 1 when this CPU runs the kernel (AVX-512F), else 0: callers keep BLAS. */
int ns_kmeans_gemm_supported(void);

/* Floats of the packed form of k centroids of dimension d: a multiple of
 * 16, so the bytes suit aligned_alloc(64, ...) as they are. */
size_t ns_kmeans_gemm_floats(int k, int d);

/* Packs c (k, d) into ct (ns_kmeans_gemm_floats(k, d), 64-byte aligned). */
void ns_kmeans_gemm_pack(const float *c, int k, int d, float *ct);

/* g (m, k), row stride k, = -2 x c^T for the m rows of x (m, d), row stride
 * d, with ct from ns_kmeans_gemm_pack.  kc: the d-chunk (columns of x per
 * pass over the rows, whose slice of ct stays in L1); 0 picks the default.
 * Only where ns_kmeans_gemm_supported(). */
void ns_kmeans_gemm(const float *ct, int k, int d, const float *x, int m, float *g, int kc);

#endif
