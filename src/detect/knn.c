/* knn.c -- exact k nearest neighbours as GEMM tiles (OpenMP + OpenBLAS).
 *
 * Candidates are chosen per query by the GEMM form ||b||^2 - 2 q.b (||q||^2
 * is constant along a query's row and cannot change its ranking, so it is
 * never added: one rounding less).  The k chosen are then measured again
 * directly in double precision, which is what the caller gets: the GEMM
 * form cancels badly for near-identical points (an exact duplicate would
 * otherwise show ~1e-3 instead of 0 on unit-norm embeddings), and a direct
 * pass over k rows per query costs nothing next to the GEMM.
 *
 * Work is split into items (query tile, base chunk).  When the query tiles
 * alone cannot keep the threads busy, the base range is cut into chunks,
 * each keeps its own top-k per query, and the lists are merged afterwards.
 * Determinism: the tile grid is fixed (not derived from the thread count),
 * each GEMM runs serially inside its thread, so every candidate value is
 * the same bits for any thread count; the k best under the total order
 * (value, base index) do not depend on how the base range was cut.
 */
#include "nightshift/knn.h"

#include "detect_util.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>

/* Tuned on the 2-core dev VM (d = 512): 512 x 2048 was the fastest of
 * {128, 256, 512} x {1024, 2048, 4096} by a few per cent; the block is 4 MB
 * per thread, and the GEMM is large enough that OpenBLAS's packing of both
 * operands stays a small fraction of it. */
#define KNN_TILE_Q 512
#define KNN_TILE_B 2048
#define KNN_MAX_K 256 /* insertion top-k: O(k) per accepted candidate */
#define KNN_SCAN 32   /* values per vectorised threshold test */

/* Inserts (v, j) into the ascending list (d, ix) of length k, after any
 * equal values: j only ever grows within one list, so earlier (lower) base
 * indices win ties.  The caller has checked v < d[k-1]. */
static inline void knn_insert(float *d, int64_t *ix, int k, float v, int64_t j)
{
    int p = k - 1;
    while (p > 0 && d[p - 1] > v) {
        d[p] = d[p - 1];
        ix[p] = ix[p - 1];
        p--;
    }
    d[p] = v;
    ix[p] = j;
}

/* Folds one (m x n) block of -2 Q B^T into the running lists of its m
 * queries.  The block covers base points j0 .. j0+n-1.  Once a list is
 * full almost nothing beats its k-th value, so each run of KNN_SCAN values
 * is first tested as a whole (a branch-free loop the compiler vectorises)
 * and only a run with a hit is walked one by one. */
static void knn_scan_block(const float *blk, int m, int n, size_t j0, const float *bb,
                           const int64_t *qg, const int64_t *bgroup, int k, float *wd,
                           int64_t *wi)
{
    const float *bbj = bb + j0;
    for (int i = 0; i < m; i++) {
        const float *row = blk + (size_t)i * n;
        float *d = wd + (size_t)i * k;
        int64_t *ix = wi + (size_t)i * k;
        float thr = d[k - 1];
        for (int j = 0; j < n; j += KNN_SCAN) {
            int len = n - j < KNN_SCAN ? n - j : KNN_SCAN, hit = 0;
#pragma omp simd reduction(| : hit)
            for (int t = 0; t < len; t++)
                hit |= row[j + t] + bbj[j + t] < thr;
            if (!hit)
                continue;
            for (int t = j; t < j + len; t++) {
                float v = row[t] + bbj[t];
                if (v < thr && (!qg || bgroup[j0 + t] != qg[i])) {
                    knn_insert(d, ix, k, v, (int64_t)(j0 + t));
                    thr = d[k - 1];
                }
            }
        }
    }
}

/* Orders (e2, ei) by (distance, index): ties in the direct distance fall
 * back to the lower base index, as the contract says.  Empty slots (-1)
 * carry INFINITY and stay last. */
static void knn_sort_final(double *e2, int64_t *ei, int k)
{
    for (int a = 1; a < k; a++) {
        double v = e2[a];
        int64_t j = ei[a];
        int p = a;
        while (p > 0 && (e2[p - 1] > v || (e2[p - 1] == v && (uint64_t)ei[p - 1] > (uint64_t)j))) {
            e2[p] = e2[p - 1];
            ei[p] = ei[p - 1];
            p--;
        }
        e2[p] = v;
        ei[p] = j;
    }
}

ns_status ns_knn_search(const float *q, size_t nq, const float *b, size_t nb, int d, int k,
                        const int64_t *qgroup, const int64_t *bgroup, int threads, float *dist,
                        int64_t *idx)
{
    ns_status st = NS_OK;
    float *bb = NULL;     /* (nb) ||b||^2 */
    float *slab = NULL;   /* (threads, KNN_TILE_Q, KNN_TILE_B) GEMM blocks */
    float *wd = NULL;     /* (nchunks, nq, k) running candidate values */
    int64_t *wi = NULL;   /* (nchunks, nq, k) their base indices */
    double *fin = NULL;   /* (threads, k) direct distances of one query */
    int64_t *fini = NULL; /* (threads, k) their indices */
    int own_wd = 0, own_wi = 0;
    size_t nqt, nbt, nchunks, nitems, rows, cols;

    if (d < 1 || k < 1 || k > KNN_MAX_K)
        return ns_error(NS_ERR_USAGE, "knn: need d >= 1 and 1 <= k <= %d (d=%d k=%d)", KNN_MAX_K,
                        d, k);
    if ((!qgroup) != (!bgroup))
        return ns_error(NS_ERR_USAGE, "knn: qgroup and bgroup must be given together");
    if (nq == 0)
        return NS_OK;
    if (!q || !dist || (nb > 0 && !b))
        return ns_error(NS_ERR_USAGE, "knn: NULL argument");
    if (threads <= 0)
        threads = omp_get_max_threads();
    if (nb == 0) {
        for (size_t i = 0; i < nq * (size_t)k; i++) {
            dist[i] = INFINITY;
            if (idx)
                idx[i] = -1;
        }
        return NS_OK;
    }

    nqt = (nq + KNN_TILE_Q - 1) / KNN_TILE_Q;
    nbt = (nb + KNN_TILE_B - 1) / KNN_TILE_B;
    /* Two items per thread at least, so one slow tile does not idle the rest;
     * chunk lists cost (nchunks, nq, k) but nq is small whenever nchunks > 1. */
    nchunks = 1;
    if (nqt < 2 * (size_t)threads) {
        nchunks = (2 * (size_t)threads + nqt - 1) / nqt;
        if (nchunks > nbt)
            nchunks = nbt;
    }
    nitems = nqt * nchunks;
    if ((size_t)threads > nitems)
        threads = (int)nitems;
    rows = nq < KNN_TILE_Q ? nq : KNN_TILE_Q;
    cols = nb < KNN_TILE_B ? nb : KNN_TILE_B;

    bb = malloc(nb * sizeof *bb);
    slab = malloc((size_t)threads * rows * cols * sizeof *slab);
    fin = malloc((size_t)threads * (size_t)k * sizeof *fin);
    fini = malloc((size_t)threads * (size_t)k * sizeof *fini);
    /* With one chunk the outputs themselves hold the running lists. */
    if (nchunks == 1) {
        wd = dist;
    } else {
        wd = malloc(nchunks * nq * (size_t)k * sizeof *wd);
        own_wd = 1;
    }
    if (nchunks == 1 && idx) {
        wi = idx;
    } else {
        wi = malloc(nchunks * nq * (size_t)k * sizeof *wi);
        own_wi = 1;
    }
    if (!bb || !slab || !fin || !fini || !wd || !wi) {
        st = ns_error(NS_ERR_NOMEM, "knn: cannot allocate workspace (nq=%zu nb=%zu k=%d)", nq, nb,
                      k);
        goto done;
    }

#pragma omp parallel num_threads(threads)
    {
        int tid = omp_get_thread_num();
        float *blk = slab + (size_t)tid * rows * cols;
        double *e2 = fin + (size_t)tid * k;
        int64_t *ei = fini + (size_t)tid * k;
        /* Task-local: keeps OpenBLAS serial inside this thread even in a
         * team of one (where omp_in_parallel() is false), so no GEMM is ever
         * split differently with the thread count. */
        omp_set_num_threads(1);

#pragma omp for schedule(static)
        for (size_t j = 0; j < nb; j++) {
            const float *r = b + j * (size_t)d;
            double s = 0.0;
            for (int t = 0; t < d; t++)
                s += (double)r[t] * r[t];
            bb[j] = (float)s;
        }
#pragma omp for schedule(static)
        for (size_t i = 0; i < nchunks * nq * (size_t)k; i++) {
            wd[i] = INFINITY;
            wi[i] = -1;
        }

#pragma omp for schedule(dynamic, 1)
        for (size_t it = 0; it < nitems; it++) {
            size_t qt = it / nchunks, c = it % nchunks;
            size_t i0 = qt * KNN_TILE_Q;
            int m = (int)(nq - i0 < KNN_TILE_Q ? nq - i0 : KNN_TILE_Q);
            size_t bt0 = c * nbt / nchunks, bt1 = (c + 1) * nbt / nchunks;
            float *ld = wd + (c * nq + i0) * (size_t)k;
            int64_t *li = wi + (c * nq + i0) * (size_t)k;
            for (size_t bt = bt0; bt < bt1; bt++) {
                size_t j0 = bt * KNN_TILE_B;
                int n = (int)(nb - j0 < KNN_TILE_B ? nb - j0 : KNN_TILE_B);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, d, -2.0f,
                            q + i0 * (size_t)d, d, b + j0 * (size_t)d, d, 0.0f, blk, n);
                knn_scan_block(blk, m, n, j0, bb, qgroup ? qgroup + i0 : NULL, bgroup, k, ld,
                               li);
            }
        }

        /* Merge the chunk lists, measure the winners directly, order them. */
#pragma omp for schedule(static)
        for (size_t i = 0; i < nq; i++) {
            if (nchunks == 1) {
                for (int a = 0; a < k; a++)
                    ei[a] = wi[i * (size_t)k + a];
            } else {
                /* The k best under (value, index) over all chunks: each
                 * chunk's list holds its own k best, and chunks come in base
                 * order, so inserting after equal values keeps the lower
                 * index first, as within a chunk. */
                for (int a = 0; a < k; a++) {
                    e2[a] = INFINITY;
                    ei[a] = -1;
                }
                for (size_t c = 0; c < nchunks; c++) {
                    const float *cd = wd + (c * nq + i) * (size_t)k;
                    const int64_t *ci = wi + (c * nq + i) * (size_t)k;
                    for (int a = 0; a < k && ci[a] >= 0; a++) {
                        double v = cd[a];
                        int p = k - 1;
                        if (!(v < e2[p]))
                            break; /* the rest of this list is no better */
                        while (p > 0 && e2[p - 1] > v) {
                            e2[p] = e2[p - 1];
                            ei[p] = ei[p - 1];
                            p--;
                        }
                        e2[p] = v;
                        ei[p] = ci[a];
                    }
                }
            }
            for (int a = 0; a < k; a++)
                e2[a] = ei[a] >= 0 ? ns_dist2_exact(q + i * (size_t)d, b + (size_t)ei[a] * d, d)
                                   : INFINITY;
            knn_sort_final(e2, ei, k);
            for (int a = 0; a < k; a++) {
                dist[i * (size_t)k + a] = ei[a] >= 0 ? (float)sqrt(e2[a]) : INFINITY;
                if (idx)
                    idx[i * (size_t)k + a] = ei[a];
            }
        }
    }

done:
    free(bb);
    free(slab);
    free(fin);
    free(fini);
    if (own_wd)
        free(wd);
    if (own_wi)
        free(wi);
    return st;
}

double ns_knn_pvalue(const float *sorted_calib, size_t n, float s)
{
    size_t lo = 0, hi = n;
    if (n == 0 || isnan(s))
        return 1.0;
    /* first c >= s; everything from there on counts */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sorted_calib[mid] < s)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (double)(1 + (n - lo)) / (double)(1 + n);
}
