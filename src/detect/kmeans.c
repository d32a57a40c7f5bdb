/* kmeans.c -- k-means++ seeding and Lloyd iterations (OpenMP + OpenBLAS).
 *
 * Determinism: every per-point quantity is computed independently of the
 * thread that computes it (one sgemm per fixed row tile; OpenBLAS runs it
 * serially inside our parallel region, and even when it threads a GEMM it
 * splits rows/columns, never a dot product), and every
 * sum over points runs in point order (centroid sums are split by column,
 * inertia by fixed tile and reduced in tile order).  So the result depends
 * on the seed only, never on the thread count.
 */
#include "nightshift/kmeans.h"

#include <cblas.h>
#include <float.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define KM_TILE 4096 /* rows of X per sgemm: bounds the (rows, k) distance buffer */
#define KM_COLS 64   /* columns per task in column-split sums */

ns_kmeans_opts ns_kmeans_default_opts(void)
{
    ns_kmeans_opts o = {.k = 8, .max_iter = 100, .tol = 1e-4, .seed = 0, .threads = 0, .init = NULL};
    return o;
}

void ns_kmeans_result_release(ns_kmeans_result *r)
{
    if (!r)
        return;
    free(r->centroids);
    free(r->assign);
    free(r->counts);
    memset(r, 0, sizeof *r);
}

/* splitmix64: tiny, portable, same stream on every platform (unlike rand()). */
static uint64_t km_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double km_uniform(uint64_t *s) /* [0, 1) */
{
    return (double)(km_next(s) >> 11) * 0x1.0p-53;
}

static double km_dist2(const float *a, const float *b, int d)
{
    double s = 0.0;
    for (int j = 0; j < d; j++) {
        double t = (double)a[j] - (double)b[j];
        s += t * t;
    }
    return s;
}

static int km_threads(int want)
{
    return want > 0 ? want : omp_get_max_threads();
}

/* Workspace of the assignment pass, sized once per call of fit/assign. */
typedef struct km_work {
    float *tiles;     /* (threads, KM_TILE, k) -2 X C^T per tile */
    float *cc;        /* (k) ||c||^2 */
    double *tile_sum; /* (ntiles) per-tile sum of squared distances */
    size_t tile_rows; /* min(n, KM_TILE) */
} km_work;

/* Nearest centroid of every row; dist gets the exact squared distance
 * (recomputed directly so cancellation in the GEMM form never leaks out).
 * Returns the inertia, summed per tile then in tile order. */
static double km_assign_pass(const float *x, size_t n, int d, const float *c, int k, int threads,
                             const km_work *w, int *assign, double *dist)
{
    size_t ntiles = (n + KM_TILE - 1) / KM_TILE;
    double total = 0.0;

    for (int j = 0; j < k; j++) {
        double s = 0.0;
        for (int t = 0; t < d; t++)
            s += (double)c[(size_t)j * d + t] * c[(size_t)j * d + t];
        w->cc[j] = (float)s;
    }
#pragma omp parallel num_threads(threads)
    {
        float *buf = w->tiles + (size_t)omp_get_thread_num() * w->tile_rows * (size_t)k;
#pragma omp for schedule(dynamic, 1)
        for (size_t ti = 0; ti < ntiles; ti++) {
            size_t r0 = ti * KM_TILE;
            int m = (int)(n - r0 < KM_TILE ? n - r0 : KM_TILE);
            const float *xt = x + r0 * (size_t)d;
            double tsum = 0.0;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, k, d, -2.0f, xt, d, c, d,
                        0.0f, buf, k);
            for (int i = 0; i < m; i++) {
                const float *row = buf + (size_t)i * k;
                int best = 0;
                float bv = row[0] + w->cc[0];
                for (int j = 1; j < k; j++) {
                    float v = row[j] + w->cc[j];
                    if (v < bv) {
                        bv = v;
                        best = j;
                    }
                }
                double dd = km_dist2(xt + (size_t)i * d, c + (size_t)best * d, d);
                assign[r0 + i] = best;
                if (dist)
                    dist[r0 + i] = dd;
                tsum += dd;
            }
            w->tile_sum[ti] = tsum;
        }
    }
    for (size_t ti = 0; ti < ntiles; ti++)
        total += w->tile_sum[ti];
    return total;
}

static ns_status km_check(const float *x, size_t n, int d, const float *c, int k, const void *out)
{
    if (!x || !c || !out)
        return ns_error(NS_ERR_USAGE, "kmeans: NULL argument");
    if (d < 1 || k < 1 || n < 1)
        return ns_error(NS_ERR_USAGE, "kmeans: need n >= 1, d >= 1, k >= 1 (n=%zu d=%d k=%d)", n,
                        d, k);
    return NS_OK;
}

static ns_status km_work_alloc(km_work *w, size_t n, int k, int threads)
{
    size_t ntiles = (n + KM_TILE - 1) / KM_TILE;
    size_t tile_rows = n < KM_TILE ? n : KM_TILE;
    w->tile_rows = tile_rows;
    w->tiles = malloc((size_t)threads * tile_rows * (size_t)k * sizeof *w->tiles);
    w->cc = malloc((size_t)k * sizeof *w->cc);
    w->tile_sum = malloc(ntiles * sizeof *w->tile_sum);
    if (!w->tiles || !w->cc || !w->tile_sum)
        return ns_error(NS_ERR_NOMEM, "kmeans: cannot allocate workspace (%zu rows, k=%d)",
                        tile_rows, k);
    return NS_OK;
}

static void km_work_free(km_work *w)
{
    free(w->tiles);
    free(w->cc);
    free(w->tile_sum);
}

ns_status ns_kmeans_assign(const float *x, size_t n, int d, const float *c, int k, int *assign,
                           float *dist2)
{
    km_work w = {0};
    double *dist = NULL;
    int threads = km_threads(0);
    ns_status st = km_check(x, n, d, c, k, assign);
    if (st != NS_OK)
        goto done;
    if (dist2 && !(dist = malloc(n * sizeof *dist))) {
        st = ns_error(NS_ERR_NOMEM, "kmeans: cannot allocate %zu distances", n);
        goto done;
    }
    if ((st = km_work_alloc(&w, n, k, threads)) != NS_OK)
        goto done;
    km_assign_pass(x, n, d, c, k, threads, &w, assign, dist);
    if (dist2)
        for (size_t i = 0; i < n; i++)
            dist2[i] = (float)dist[i];
done:
    km_work_free(&w);
    free(dist);
    return st;
}

/* k-means++: each next centre is drawn with probability proportional to the
 * squared distance to the nearest centre chosen so far.  mind is (n) scratch. */
static void km_seed(const float *x, size_t n, int d, int k, uint64_t seed, int threads, float *c,
                    double *mind)
{
    uint64_t s = seed;
    size_t pick = (size_t)(km_uniform(&s) * (double)n);
    if (pick >= n)
        pick = n - 1;
    memcpy(c, x + pick * (size_t)d, (size_t)d * sizeof *c);
    for (int j = 1; j < k; j++) {
        const float *prev = c + (size_t)(j - 1) * d;
        double total = 0.0, r, acc = 0.0;
#pragma omp parallel for schedule(static) num_threads(threads) if (n * (size_t)d > 65536)
        for (size_t i = 0; i < n; i++) {
            double dd = km_dist2(x + i * (size_t)d, prev, d);
            if (j == 1 || dd < mind[i])
                mind[i] = dd;
        }
        for (size_t i = 0; i < n; i++)
            total += mind[i];
        r = km_uniform(&s);
        if (total > 0.0) {
            r *= total;
            pick = n - 1;
            for (size_t i = 0; i < n; i++) {
                acc += mind[i];
                if (acc > r && mind[i] > 0.0) {
                    pick = i;
                    break;
                }
            }
            /* Rounding can leave acc <= r at the end: take the last point
             * that is not already a centre. */
            while (pick > 0 && mind[pick] <= 0.0)
                pick--;
        } else {
            /* Every point coincides with a centre: any choice is as good. */
            pick = (size_t)(r * (double)n);
            if (pick >= n)
                pick = n - 1;
        }
        memcpy(c + (size_t)j * d, x + pick * (size_t)d, (size_t)d * sizeof *c);
    }
}

/* Sums of each cluster's points, in point order, split by column blocks so
 * the order (and the bits) do not depend on the thread count. */
static void km_sums(const float *x, size_t n, int d, int k, const int *assign, int threads,
                    double *sums)
{
    int nblk = (d + KM_COLS - 1) / KM_COLS;
    memset(sums, 0, (size_t)k * d * sizeof *sums);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (n * (size_t)d > 65536)
    for (int b = 0; b < nblk; b++) {
        int j0 = b * KM_COLS, j1 = j0 + KM_COLS < d ? j0 + KM_COLS : d;
        for (size_t i = 0; i < n; i++) {
            const float *xi = x + i * (size_t)d;
            double *si = sums + (size_t)assign[i] * d;
            for (int j = j0; j < j1; j++)
                si[j] += xi[j];
        }
    }
}

/* Gives each empty cluster the point farthest from its own centroid (lowest
 * index on ties), taken from a cluster that keeps at least one point. */
static void km_repair(const float *x, size_t n, int d, int k, int *assign, double *dist,
                      size_t *counts, double *sums)
{
    for (int j = 0; j < k; j++) {
        size_t best = n;
        if (counts[j] > 0)
            continue;
        for (size_t i = 0; i < n; i++)
            if (counts[assign[i]] > 1 && dist[i] >= 0.0 && (best == n || dist[i] > dist[best]))
                best = i;
        if (best == n)
            return; /* fewer movable points than empty clusters */
        {
            const float *xb = x + best * (size_t)d;
            double *from = sums + (size_t)assign[best] * d, *to = sums + (size_t)j * d;
            for (int t = 0; t < d; t++) {
                from[t] -= xb[t];
                to[t] = xb[t];
            }
            counts[assign[best]]--;
            counts[j] = 1;
            assign[best] = j;
            dist[best] = -1.0; /* never moved twice */
        }
    }
}

/* Mean per-dimension variance of x, the scale of the tolerance. */
static double km_mean_var(const float *x, size_t n, int d, int threads)
{
    int nblk = (d + KM_COLS - 1) / KM_COLS;
    double total = 0.0;
    double *vb = malloc((size_t)nblk * sizeof *vb);
    if (!vb)
        return 0.0; /* tolerance 0: only an exact fixed point stops early */
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (n * (size_t)d > 65536)
    for (int b = 0; b < nblk; b++) {
        int j0 = b * KM_COLS, j1 = j0 + KM_COLS < d ? j0 + KM_COLS : d;
        double v = 0.0;
        for (int j = j0; j < j1; j++) {
            double s = 0.0, s2 = 0.0, mean;
            for (size_t i = 0; i < n; i++)
                s += x[i * (size_t)d + j];
            mean = s / (double)n;
            for (size_t i = 0; i < n; i++) {
                double t = x[i * (size_t)d + j] - mean;
                s2 += t * t;
            }
            v += s2 / (double)n;
        }
        vb[b] = v;
    }
    for (int b = 0; b < nblk; b++)
        total += vb[b];
    free(vb);
    return total / d;
}

ns_status ns_kmeans_fit(const float *x, size_t n, int d, const ns_kmeans_opts *o,
                        ns_kmeans_result *r)
{
    km_work w = {0};
    double *dist = NULL, *sums = NULL;
    float *prev = NULL;
    ns_status st = NS_OK;
    int k, threads;
    double tol_abs;

    if (!r)
        return ns_error(NS_ERR_USAGE, "kmeans: NULL result");
    memset(r, 0, sizeof *r);
    if (!o || !x) {
        st = ns_error(NS_ERR_USAGE, "kmeans: NULL argument");
        goto done;
    }
    k = o->k;
    if (d < 1 || k < 1 || n < 1 || (size_t)k > n) {
        st = ns_error(NS_ERR_USAGE, "kmeans: need d >= 1 and 1 <= k <= n (n=%zu d=%d k=%d)", n,
                      d, k);
        goto done;
    }
    if (o->max_iter < 0 || !(o->tol >= 0.0)) {
        st = ns_error(NS_ERR_USAGE, "kmeans: need max_iter >= 0 and tol >= 0 (max_iter=%d tol=%g)",
                      o->max_iter, o->tol);
        goto done;
    }
    threads = km_threads(o->threads);
    r->k = k;
    r->d = d;
    r->n = n;
    r->centroids = malloc((size_t)k * d * sizeof *r->centroids);
    r->assign = malloc(n * sizeof *r->assign);
    r->counts = malloc((size_t)k * sizeof *r->counts);
    dist = malloc(n * sizeof *dist);
    sums = malloc((size_t)k * d * sizeof *sums);
    prev = malloc((size_t)k * d * sizeof *prev);
    if (!r->centroids || !r->assign || !r->counts || !dist || !sums || !prev) {
        st = ns_error(NS_ERR_NOMEM, "kmeans: cannot allocate for n=%zu d=%d k=%d", n, d, k);
        goto done;
    }
    if ((st = km_work_alloc(&w, n, k, threads)) != NS_OK)
        goto done;

    if (o->init)
        memcpy(r->centroids, o->init, (size_t)k * d * sizeof *r->centroids);
    else
        km_seed(x, n, d, k, o->seed, threads, r->centroids, dist);
    tol_abs = o->tol * km_mean_var(x, n, d, threads);

    for (int it = 1; it <= o->max_iter; it++) {
        double shift = 0.0;
        km_assign_pass(x, n, d, r->centroids, k, threads, &w, r->assign, dist);
        memset(r->counts, 0, (size_t)k * sizeof *r->counts);
        for (size_t i = 0; i < n; i++)
            r->counts[r->assign[i]]++;
        km_sums(x, n, d, k, r->assign, threads, sums);
        km_repair(x, n, d, k, r->assign, dist, r->counts, sums);
        memcpy(prev, r->centroids, (size_t)k * d * sizeof *prev);
        for (int j = 0; j < k; j++) {
            float *cj = r->centroids + (size_t)j * d;
            if (r->counts[j] == 0)
                continue; /* no point could be moved here: keep the old centre */
            for (int t = 0; t < d; t++)
                cj[t] = (float)(sums[(size_t)j * d + t] / (double)r->counts[j]);
        }
        for (int j = 0; j < k; j++)
            shift += km_dist2(prev + (size_t)j * d, r->centroids + (size_t)j * d, d);
        r->iterations = it;
        if (shift <= tol_abs)
            break;
    }

    /* Report the assignment to the final centres, so assign, counts and
     * inertia agree with centroids. */
    r->inertia = km_assign_pass(x, n, d, r->centroids, k, threads, &w, r->assign, NULL);
    memset(r->counts, 0, (size_t)k * sizeof *r->counts);
    for (size_t i = 0; i < n; i++)
        r->counts[r->assign[i]]++;
done:
    km_work_free(&w);
    free(dist);
    free(sums);
    free(prev);
    if (st != NS_OK)
        ns_kmeans_result_release(r);
    return st;
}
