/* kmeans.c -- k-means++ seeding, Lloyd iterations and mini-batch k-means
 * (OpenMP + AVX-512 kernel or OpenBLAS).
 *
 * One pass over the points does all the per-point work of an iteration: the
 * rows are cut into at most KM_GROUPS groups of whole KM_TILE-row tiles; a
 * thread takes a group, and for each tile (KM_SUB rows at a time on the
 * kernel path) computes -2 X C^T, the argmin, and adds every row into the
 * group's own per-centroid sums in double while the rows are still in
 * cache.  The group sums are then added up in group order.  The product is
 * our AVX-512 kernel (kmeans_gemm.c, C packed once per pass; 1.5x OpenBLAS's
 * serial sgemm on the same tiles at d = 512, k = 64, 2.4x its Haswell kernels)
 * where the CPU has AVX-512F, else one serial sgemm per tile;
 * NS_KMEANS_GEMM=blas forces the sgemm.
 *
 * Determinism: the groups and tiles depend on n, k and d only; every value a
 * row gets is computed the same way whichever thread computes it: the
 * kernel's g[i][j] is one fixed chain of fused multiply-adds over d (the
 * rule in kmeans_gemm.h: a function of row i and centroid j alone), and the
 * sgemm path makes the same serial call on the same tile; every sum over
 * points runs in row order within a group and in group order across groups.
 * So results depend on the seed only, never on the thread count.  (The two
 * paths round differently from each other: a run is reproducible on one
 * machine and path, not bit for bit across them.)
 */
#include "nightshift/kmeans.h"
#include "kmeans_internal.h"
#include "kmeans_gemm.h"
#include "detect_util.h"

#include <cblas.h>
#include <float.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define KM_TILE 512                 /* rows per sgemm: the tile stays in cache for the sums */
#define KM_SUB 128                  /* rows per kernel call: 256 KB of x at d = 512 stay in L2
                                     * for the sums (6% faster a pass than 512 here) */
#define KM_GROUPS 32                /* row groups with their own partial sums, at most */
#define KM_PART_BYTES ((size_t)64 << 20) /* bound on all groups' partial sums */
#define KM_COLS 64                  /* columns per task in column-split loops */

/* The AVX2 and AVX-512 builds vectorise the double sums 4 and 8 wide (the
 * same bits: the lanes do the same IEEE operations); ASan does not mix with
 * the ifunc resolvers target_clones needs. */
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define KM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define KM_HAVE_AVX2 1
#else
#define KM_CLONES
#define KM_HAVE_AVX2 0
#endif

ns_kmeans_opts ns_kmeans_default_opts(void)
{
    ns_kmeans_opts o = {.k = 8, .max_iter = 100, .tol = 1e-4, .seed = 0, .threads = 0, .init = NULL};
    return o;
}

ns_kmeans_mb_opts ns_kmeans_mb_default_opts(void)
{
    ns_kmeans_mb_opts o = {.k = 8, .batch = 4096, .epochs = 3, .init_rows = 0, .seed = 0,
                           .threads = 0, .init = NULL};
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

static double km_uniform(uint64_t *s) /* [0, 1) */
{
    return (double)(ns_sm64_next(s) >> 11) * 0x1.0p-53;
}

/* Exact squared distance in double.  Eight interleaved partial sums, added
 * in a fixed order: vectorisable by any ISA (the compiler may not reorder a
 * single running sum) and the same bits from every build of it. */
KM_CLONES
static double km_dist2(const float *a, const float *b, int d)
{
    double acc[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    int t = 0;
    for (; t + 8 <= d; t += 8)
        for (int l = 0; l < 8; l++) {
            double u = (double)a[t + l] - (double)b[t + l];
            acc[l] += u * u;
        }
    for (int l = 0; t < d; t++, l++) {
        double u = (double)a[t] - (double)b[t];
        acc[l] += u * u;
    }
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

KM_CLONES
static void km_add(double *s, const float *x, int d)
{
    for (int t = 0; t < d; t++)
        s[t] += (double)x[t];
}

/* Nearest of the k values g[j] + cc[j], lowest index on ties. */
static int km_argmin(const float *g, const float *cc, int k)
{
    int best = 0;
    float bv = g[0] + cc[0];
    for (int j = 1; j < k; j++) {
        float v = g[j] + cc[j];
        if (v < bv) {
            bv = v;
            best = j;
        }
    }
    return best;
}

#if KM_HAVE_AVX2
/* The same argmin 8 lanes at a time: each lane keeps its first minimum, then
 * the lanes are merged by value and, on equal values, by lower index. */
__attribute__((target("avx2"))) static int km_argmin_avx2(const float *g, const float *cc, int k)
{
    float lv[8];
    int li[8], best, j = 8;
    float bv;
    __m256 vmin;
    __m256i imin, idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i step = _mm256_set1_epi32(8);
    if (k < 16)
        return km_argmin(g, cc, k);
    vmin = _mm256_add_ps(_mm256_loadu_ps(g), _mm256_loadu_ps(cc));
    imin = idx;
    for (; j + 8 <= k; j += 8) {
        __m256 v = _mm256_add_ps(_mm256_loadu_ps(g + j), _mm256_loadu_ps(cc + j));
        __m256 lt = _mm256_cmp_ps(v, vmin, _CMP_LT_OQ);
        idx = _mm256_add_epi32(idx, step);
        vmin = _mm256_blendv_ps(vmin, v, lt);
        imin = _mm256_blendv_epi8(imin, idx, _mm256_castps_si256(lt));
    }
    _mm256_storeu_ps(lv, vmin);
    _mm256_storeu_si256((__m256i *)li, imin);
    best = li[0];
    bv = lv[0];
    for (int l = 1; l < 8; l++)
        if (lv[l] < bv || (lv[l] == bv && li[l] < best)) {
            bv = lv[l];
            best = li[l];
        }
    for (; j < k; j++) { /* the tail's indices are above every lane's */
        float v = g[j] + cc[j];
        if (v < bv) {
            bv = v;
            best = j;
        }
    }
    return best;
}
#endif

static int km_threads(int want)
{
    return want > 0 ? want : omp_get_max_threads();
}

/* Row groups for n points: a function of n, k and d only (determinism). */
static size_t km_groups(size_t n, int k, int d)
{
    size_t tiles = (n + KM_TILE - 1) / KM_TILE;
    size_t cap = KM_PART_BYTES / ((size_t)k * (size_t)d * sizeof(double));
    size_t g = tiles < KM_GROUPS ? tiles : KM_GROUPS;
    if (cap < 1)
        cap = 1;
    return g < cap ? g : cap;
}

/* Workspace of the point passes, sized once per call for at most nmax rows. */
typedef struct km_work {
    int k, d, threads;
    int avx2;       /* the CPU runs km_argmin_avx2 */
    float *g;       /* (threads, KM_TILE, k) -2 X C^T of one tile */
    float *ct;      /* (ns_kmeans_gemm_floats(k, d)) C packed for the kernel, or
                     * NULL: the sgemm path */
    float *cc;      /* (k) ||c||^2 */
    double *part;   /* (groups, k, d) per-group sums of points, or NULL */
    size_t *pcount; /* (groups, k) per-group point counts */
    double *gsum;   /* (groups) per-group sum of exact squared distances */
} km_work;

/* The GEMM path, decided once per call: the kernel where the CPU has it,
 * unless NS_KMEANS_GEMM=blas asks for OpenBLAS (A/B timings, a suspect CPU). */
static int km_use_kernel(void)
{
    const char *how = getenv("NS_KMEANS_GEMM");
    if (how && strcmp(how, "blas") == 0)
        return 0;
    return ns_kmeans_gemm_supported();
}

static ns_status km_work_alloc(km_work *w, size_t nmax, int d, int k, int threads, int sums)
{
    size_t groups = km_groups(nmax, k, d);
    int kernel = km_use_kernel();
    w->k = k;
    w->d = d;
    w->threads = threads;
#if KM_HAVE_AVX2
    w->avx2 = __builtin_cpu_supports("avx2");
#endif
    w->g = malloc((size_t)threads * KM_TILE * (size_t)k * sizeof *w->g);
    w->cc = malloc((size_t)k * sizeof *w->cc);
    w->pcount = malloc(groups * (size_t)k * sizeof *w->pcount);
    w->gsum = malloc(groups * sizeof *w->gsum);
    if (sums)
        w->part = malloc(groups * (size_t)k * (size_t)d * sizeof *w->part);
    if (kernel)
        w->ct = aligned_alloc(64, ns_kmeans_gemm_floats(k, d) * sizeof *w->ct);
    if (!w->g || !w->cc || !w->pcount || !w->gsum || (sums && !w->part) || (kernel && !w->ct))
        return ns_error(NS_ERR_NOMEM, "kmeans: cannot allocate workspace (k=%d d=%d, %zu groups)",
                        k, d, groups);
    return NS_OK;
}

static void km_work_free(km_work *w)
{
    free(w->g);
    free(w->ct);
    free(w->cc);
    free(w->part);
    free(w->pcount);
    free(w->gsum);
}

/* One pass over x (n <= the workspace's nmax rows): assign gets each row's
 * nearest centroid of c, the groups' counts are filled, and
 *   exact: the exact squared distances are summed per group (and stored in
 *          dist when it is not NULL);
 *   sums:  the groups' per-centroid sums of the rows are filled.
 * Reduce with km_reduce; returns the inertia (0 without exact). */
static double km_pass(const km_work *w, const float *x, size_t n, const float *c, int *assign,
                      int exact, double *dist, int sums)
{
    int k = w->k, d = w->d;
    size_t groups = km_groups(n, k, d), tiles = (n + KM_TILE - 1) / KM_TILE;
    size_t per = (tiles + groups - 1) / groups * KM_TILE; /* rows per group */
    double total = 0.0;

    for (int j = 0; j < k; j++) {
        double s = 0.0;
        for (int t = 0; t < d; t++)
            s += (double)c[(size_t)j * d + t] * c[(size_t)j * d + t];
        w->cc[j] = (float)s;
    }
    if (w->ct)
        ns_kmeans_gemm_pack(c, k, d, w->ct);
#pragma omp parallel num_threads(w->threads)
    {
        float *g = w->g + (size_t)omp_get_thread_num() * KM_TILE * (size_t)k;
        /* OpenBLAS runs serially inside an active parallel region, but a
         * team of one is not active: it would thread each small GEMM (slow),
         * and where a row falls in its split picks the micro-kernel, which
         * changes the last bits.  One thread per call, whatever the team. */
        omp_set_num_threads(1);
#pragma omp for schedule(dynamic, 1)
        for (size_t gi = 0; gi < groups; gi++) {
            size_t r1 = (gi + 1) * per < n ? (gi + 1) * per : n;
            double *part = sums ? w->part + gi * (size_t)k * d : NULL;
            size_t *cnt = w->pcount + gi * (size_t)k;
            double esum = 0.0;
            if (part)
                memset(part, 0, (size_t)k * d * sizeof *part);
            memset(cnt, 0, (size_t)k * sizeof *cnt);
            /* The kernel's values do not depend on the tiling: it takes the
             * rows KM_SUB at a time, so that they are still in L2 for the
             * sums.  The sgemm's do: whole tiles. */
            size_t step = w->ct ? KM_SUB : KM_TILE;
            for (size_t r0 = gi * per; r0 < r1; r0 += step) {
                int m = (int)(r1 - r0 < step ? r1 - r0 : step);
                const float *xt = x + r0 * (size_t)d;
                if (w->ct)
                    ns_kmeans_gemm(w->ct, k, d, xt, m, g, 0);
                else
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, k, d, -2.0f, xt, d,
                                c, d, 0.0f, g, k);
                for (int i = 0; i < m; i++) {
                    const float *xi = xt + (size_t)i * d;
                    int best;
#if KM_HAVE_AVX2
                    best = w->avx2 ? km_argmin_avx2(g + (size_t)i * k, w->cc, k)
                                   : km_argmin(g + (size_t)i * k, w->cc, k);
#else
                    best = km_argmin(g + (size_t)i * k, w->cc, k);
#endif
                    assign[r0 + i] = best;
                    cnt[best]++;
                    if (part)
                        km_add(part + (size_t)best * d, xi, d);
                    if (exact) {
                        /* Recomputed directly: cancellation in the GEMM form
                         * never leaks into distances or the inertia. */
                        double dd = km_dist2(xi, c + (size_t)best * d, d);
                        esum += dd;
                        if (dist)
                            dist[r0 + i] = dd;
                    }
                }
            }
            w->gsum[gi] = esum;
        }
    }
    for (size_t gi = 0; gi < groups; gi++)
        total += w->gsum[gi];
    return total;
}

/* counts (k) and, when sums is not NULL, sums (k, d) of the last pass over n
 * rows: the groups' parts added in group order. */
static void km_reduce(const km_work *w, size_t n, size_t *counts, double *sums)
{
    int k = w->k, d = w->d;
    size_t groups = km_groups(n, k, d), kd = (size_t)k * d;
    for (int j = 0; j < k; j++) {
        size_t s = 0;
        for (size_t gi = 0; gi < groups; gi++)
            s += w->pcount[gi * (size_t)k + j];
        counts[j] = s;
    }
    if (!sums)
        return;
#pragma omp parallel for schedule(static) num_threads(w->threads) if (kd * groups > 65536)
    for (size_t e = 0; e < kd; e++) {
        double s = w->part[e];
        for (size_t gi = 1; gi < groups; gi++)
            s += w->part[gi * kd + e];
        sums[e] = s;
    }
}

ns_status ns_kmeans_check_assign(const char *where, const float *x, size_t n, int d,
                                 const float *c, int k, const void *out)
{
    if (!x || !c || !out)
        return ns_error(NS_ERR_USAGE, "%s: NULL argument", where);
    if (d < 1 || k < 1 || n < 1)
        return ns_error(NS_ERR_USAGE, "%s: need n >= 1, d >= 1, k >= 1 (n=%zu d=%d k=%d)", where,
                        n, d, k);
    return NS_OK;
}

ns_status ns_kmeans_check_fit(const char *where, const float *x, size_t n, int d,
                              const ns_kmeans_opts *o)
{
    if (!o || !x)
        return ns_error(NS_ERR_USAGE, "%s: NULL argument", where);
    if (d < 1 || o->k < 1 || n < 1 || (size_t)o->k > n)
        return ns_error(NS_ERR_USAGE, "%s: need d >= 1 and 1 <= k <= n (n=%zu d=%d k=%d)", where,
                        n, d, o->k);
    if (o->max_iter < 0 || !(o->tol >= 0.0))
        return ns_error(NS_ERR_USAGE,
                        "%s: need max_iter >= 0 and tol >= 0 (max_iter=%d tol=%g)", where,
                        o->max_iter, o->tol);
    return NS_OK;
}

ns_status ns_kmeans_assign(const float *x, size_t n, int d, const float *c, int k, int *assign,
                           float *dist2)
{
    km_work w = {0};
    double *dist = NULL;
    ns_status st = ns_kmeans_check_assign("kmeans", x, n, d, c, k, assign);
    if (st != NS_OK)
        goto done;
    if (dist2 && !(dist = malloc(n * sizeof *dist))) {
        st = ns_error(NS_ERR_NOMEM, "kmeans: cannot allocate %zu distances", n);
        goto done;
    }
    if ((st = km_work_alloc(&w, n, d, k, km_threads(0), 0)) != NS_OK)
        goto done;
    km_pass(&w, x, n, c, assign, dist != NULL, dist, 0);
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

void ns_kmeans_repair(const float *x, size_t n, int d, int k, int *assign, double *dist,
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

static int km_any_empty(const size_t *counts, int k)
{
    for (int j = 0; j < k; j++)
        if (counts[j] == 0)
            return 1;
    return 0;
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
    if ((st = ns_kmeans_check_fit("kmeans", x, n, d, o)) != NS_OK)
        goto done;
    k = o->k;
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
    if ((st = km_work_alloc(&w, n, d, k, threads, o->max_iter > 0)) != NS_OK)
        goto done;

    if (o->init)
        memcpy(r->centroids, o->init, (size_t)k * d * sizeof *r->centroids);
    else
        km_seed(x, n, d, k, o->seed, threads, r->centroids, dist);
    /* Two passes over x: skipped when the answer is multiplied by zero. */
    tol_abs = o->tol > 0.0 && o->max_iter > 0 ? o->tol * km_mean_var(x, n, d, threads) : 0.0;

    for (int it = 1; it <= o->max_iter; it++) {
        double shift = 0.0;
        km_pass(&w, x, n, r->centroids, r->assign, 0, NULL, 1);
        km_reduce(&w, n, r->counts, sums);
        if (km_any_empty(r->counts, k)) {
            /* Rare: the repair needs every point's exact distance. */
            km_pass(&w, x, n, r->centroids, r->assign, 1, dist, 0);
            ns_kmeans_repair(x, n, d, k, r->assign, dist, r->counts, sums);
        }
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
    r->inertia = km_pass(&w, x, n, r->centroids, r->assign, 1, NULL, 0);
    km_reduce(&w, n, r->counts, NULL);
done:
    km_work_free(&w);
    free(dist);
    free(sums);
    free(prev);
    if (st != NS_OK)
        ns_kmeans_result_release(r);
    return st;
}

/* ---- mini-batch k-means ------------------------------------------------------- */

/* Fills buf (cap, d) from the stream, calling next() until cap rows or the
 * end of the set: a source may serve fewer rows than asked. */
static ns_status km_fill(ns_kmeans_next_fn next, void *ctx, float *buf, size_t cap, int d,
                         size_t *got)
{
    size_t have = 0;
    *got = 0;
    while (have < cap) {
        size_t m = 0;
        ns_status st = next(ctx, buf + have * (size_t)d, cap - have, &m);
        if (st != NS_OK)
            return st;
        if (m == 0)
            break;
        if (m > cap - have)
            return ns_error(NS_ERR_USAGE, "kmeans: next_batch served %zu rows, asked for %zu", m,
                            cap - have);
        have += m;
    }
    *got = have;
    return NS_OK;
}

ns_status ns_kmeans_fit_minibatch(ns_kmeans_next_fn next, ns_kmeans_rewind_fn rewind, void *ctx,
                                  int d, const ns_kmeans_mb_opts *o, ns_kmeans_result *r)
{
    km_work w = {0};
    float *buf = NULL, *seedbuf = NULL;
    double *sums = NULL, *seen = NULL, *mind = NULL;
    size_t *bcount = NULL, nset = 0, init_rows, batch;
    int *bassign = NULL, k, threads;
    ns_status st = NS_OK;

    if (!r)
        return ns_error(NS_ERR_USAGE, "kmeans: NULL result");
    memset(r, 0, sizeof *r);
    if (!next || !rewind || !o) {
        st = ns_error(NS_ERR_USAGE, "kmeans: NULL argument");
        goto done;
    }
    k = o->k;
    batch = o->batch;
    init_rows = o->init_rows ? o->init_rows : 3 * batch;
    if (d < 1 || k < 1 || batch < 1 || o->epochs < 1 || batch > SIZE_MAX / 3 / (size_t)d ||
        init_rows > SIZE_MAX / sizeof(float) / (size_t)d) {
        st = ns_error(NS_ERR_USAGE,
                      "kmeans: need d >= 1, k >= 1, batch >= 1, epochs >= 1 (d=%d k=%d batch=%zu "
                      "epochs=%d)", d, k, batch, o->epochs);
        goto done;
    }
    threads = km_threads(o->threads);
    r->k = k;
    r->d = d;
    r->centroids = malloc((size_t)k * d * sizeof *r->centroids);
    r->counts = calloc((size_t)k, sizeof *r->counts);
    buf = malloc(batch * (size_t)d * sizeof *buf);
    bassign = malloc(batch * sizeof *bassign);
    bcount = malloc((size_t)k * sizeof *bcount);
    sums = malloc((size_t)k * d * sizeof *sums);
    seen = calloc((size_t)k, sizeof *seen);
    if (!r->centroids || !r->counts || !buf || !bassign || !bcount || !sums || !seen) {
        st = ns_error(NS_ERR_NOMEM, "kmeans: cannot allocate for batch=%zu d=%d k=%d", batch, d,
                      k);
        goto done;
    }
    if ((st = km_work_alloc(&w, batch, d, k, threads, 1)) != NS_OK)
        goto done;

    if (o->init) {
        memcpy(r->centroids, o->init, (size_t)k * d * sizeof *r->centroids);
    } else {
        size_t got;
        seedbuf = malloc(init_rows * (size_t)d * sizeof *seedbuf);
        mind = malloc(init_rows * sizeof *mind);
        if (!seedbuf || !mind) {
            st = ns_error(NS_ERR_NOMEM, "kmeans: cannot allocate %zu rows to seed from",
                          init_rows);
            goto done;
        }
        if ((st = rewind(ctx)) != NS_OK ||
            (st = km_fill(next, ctx, seedbuf, init_rows, d, &got)) != NS_OK)
            goto done;
        if (got < (size_t)k) {
            st = ns_error(NS_ERR_USAGE, "kmeans: %zu rows to seed %d clusters from", got, k);
            goto done;
        }
        km_seed(seedbuf, got, d, k, o->seed, threads, r->centroids, mind);
        free(seedbuf), seedbuf = NULL;
        free(mind), mind = NULL;
    }

    for (int ep = 0; ep < o->epochs; ep++) {
        size_t rows = 0, m;
        if ((st = rewind(ctx)) != NS_OK)
            goto done;
        for (;;) {
            if ((st = km_fill(next, ctx, buf, batch, d, &m)) != NS_OK)
                goto done;
            if (m == 0)
                break;
            km_pass(&w, buf, m, r->centroids, bassign, 0, NULL, 1);
            km_reduce(&w, m, bcount, sums);
            /* Each centroid becomes the mean of every point it has been
             * given: learning rate 1 / (points seen), per centroid. */
            for (int j = 0; j < k; j++) {
                float *cj = r->centroids + (size_t)j * d;
                const double *sj = sums + (size_t)j * d;
                double v0 = seen[j], v1 = seen[j] + (double)bcount[j];
                if (bcount[j] == 0)
                    continue;
                for (int t = 0; t < d; t++)
                    cj[t] = (float)((v0 * cj[t] + sj[t]) / v1);
                seen[j] = v1;
            }
            r->iterations++;
            rows += m;
        }
        if (rows == 0) {
            st = ns_error(NS_ERR_USAGE, "kmeans: the set is empty");
            goto done;
        }
        if (ep == 0)
            nset = rows;
        else if (rows != nset) {
            st = ns_error(NS_ERR_CORRUPT, "kmeans: pass %d served %zu rows, pass 1 %zu", ep + 1,
                          rows, nset);
            goto done;
        }
    }

    /* The final pass: every point to its nearest final centroid. */
    if (!(r->assign = malloc(nset * sizeof *r->assign))) {
        st = ns_error(NS_ERR_NOMEM, "kmeans: cannot allocate %zu assignments", nset);
        goto done;
    }
    if ((st = rewind(ctx)) != NS_OK)
        goto done;
    for (;;) {
        size_t m;
        if ((st = km_fill(next, ctx, buf, batch, d, &m)) != NS_OK)
            goto done;
        if (m == 0)
            break;
        if (m > nset - r->n) {
            st = ns_error(NS_ERR_CORRUPT, "kmeans: the final pass served more than %zu rows",
                          nset);
            goto done;
        }
        r->inertia += km_pass(&w, buf, m, r->centroids, r->assign + r->n, 1, NULL, 0);
        km_reduce(&w, m, bcount, NULL);
        for (int j = 0; j < k; j++)
            r->counts[j] += bcount[j];
        r->n += m;
    }
    if (r->n != nset) {
        st = ns_error(NS_ERR_CORRUPT, "kmeans: the final pass served %zu rows, pass 1 %zu", r->n,
                      nset);
        goto done;
    }
done:
    km_work_free(&w);
    free(buf);
    free(seedbuf);
    free(mind);
    free(sums);
    free(seen);
    free(bcount);
    free(bassign);
    if (st != NS_OK)
        ns_kmeans_result_release(r);
    return st;
}
