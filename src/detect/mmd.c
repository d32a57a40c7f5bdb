/* mmd.c -- Gaussian-kernel MMD with whole-clip permutations (OpenMP + BLAS).
 *
 * Block sums.  Only pairs i < j are computed (rows are sorted by block, so
 * such a pair adds to A[block(i)][block(j)] with block(i) <= block(j)); then
 * S = A + A^T + diag(size), since k(x, x) = 1 exactly.  Rows are cut into
 * groups of whole blocks (at most MMD_TR rows, or one bigger block alone) and
 * each group is one task: only its task writes rows a of A for the blocks a of
 * the group, so no two threads ever touch the same element.  Inside a task
 * the work goes in fixed (MMD_TR rows) x (MMD_TC columns) tiles: one sgemm
 * gives -2 x.y, the norms computed once make it ||x - y||^2 (clamped at 0),
 * expf gives the kernel, and each row's run of columns in block b is summed
 * in double and added to A[a][b].  The order of every sum is fixed by the
 * tiling alone, so S is bit-identical for any thread count.
 *
 * Memory beyond S and x: n floats of norms, one group table, and per thread
 * one MMD_TR x MMD_TC float tile plus MMD_TC column runs (~4.1 MB a thread).
 *
 * Permutations.  Every statistic needs, for an indicator g of X blocks,
 * g^T S g, g^T r (r = row sums of S) and the frame count of X.  Batches of
 * MMD_PB permutations become the columns of a 0/1 matrix G and one dgemm
 * gives S G; the batch boundaries and each permutation's random stream
 * (splitmix64 seeded from seed and the permutation index) do not depend on
 * the thread count, so neither do the statistics.  Strata change only the
 * draw: each moving stratum gets its own partial Fisher-Yates from the same
 * stream, and the X blocks of one-sided strata are set in every column; one
 * stratum holding every block is the unstratified draw, number for number.
 */
#include "nightshift/mmd.h"

#include "detect_util.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define MMD_TR 512  /* rows per kernel tile */
#define MMD_TC 2048 /* columns per kernel tile: with MMD_TR, a 4 MB float tile */
#define MMD_PB 64   /* permutations per dgemm batch */
/* Below this many multiply-adds a team costs more than it saves (and its
 * spinning workers get in the way of the caller's next parallel step). */
#define MMD_PAR_WORK 3e7

/* Ties between the observed and a permuted statistic can differ by rounding
 * only (the two are computed by different formulas), so "perm >= observed"
 * allows this much slack; kernel averages are O(1). */
#define MMD_TIE_TOL 1e-12

/* Uniform in [0, bound) by the multiply-shift map (bias < bound / 2^64). */
static size_t mmd_below(uint64_t r, size_t bound)
{
    return (size_t)(((unsigned __int128)r * bound) >> 64);
}

static int mmd_threads(int want)
{
    return want > 0 ? want : omp_get_max_threads();
}

/* OpenBLAS (OpenMP build) sizes its team from omp_get_max_threads() unless
 * omp_in_parallel(), which is false in a team of one: with threads = 1 it
 * would thread each GEMM, and its threaded kernels round differently from the
 * serial ones.  Called inside our parallel regions, this sets the calling
 * task's own thread-count setting only, so every GEMM runs serially whatever
 * the team size. */
static void mmd_blas_serial(void)
{
    omp_set_num_threads(1);
}

/* ---- median heuristic -------------------------------------------------------- */

/* Four partial sums: a fixed order that does not wait on one add chain. */
static double mmd_dist2(const float *a, const float *b, int d)
{
    double s[4] = {0.0, 0.0, 0.0, 0.0};
    int t = 0;
    for (; t + 4 <= d; t += 4)
        for (int k = 0; k < 4; k++) {
            double u = (double)a[t + k] - (double)b[t + k];
            s[k] += u * u;
        }
    for (; t < d; t++) {
        double u = (double)a[t] - (double)b[t];
        s[0] += u * u;
    }
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static double mmd_sqnorm(const float *a, int d)
{
    double s = 0.0;
    for (int t = 0; t < d; t++)
        s += (double)a[t] * (double)a[t];
    return s;
}

/* Puts the k-th smallest of v[0..n) at v[k], smaller ones before it. */
static void mmd_select(double *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (hi > lo) {
        size_t mid = lo + (hi - lo) / 2, i = lo, j = hi;
        double a = v[lo], b = v[mid], c = v[hi], pivot;
        /* median of three keeps sorted or constant inputs linear */
        pivot = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                double t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return;
    }
}

ns_status ns_mmd_median_sigma(const float *x, size_t n, int d, size_t max_pairs, uint64_t seed,
                              double *sigma)
{
    double *d2 = NULL, med;
    size_t npairs, all;
    int every;
    ns_status st = NS_OK;

    if (!x || !sigma)
        return ns_error(NS_ERR_USAGE, "mmd median sigma: NULL argument");
    if (n < 2 || d < 1 || max_pairs < 1)
        return ns_error(NS_ERR_USAGE,
                        "mmd median sigma: need n >= 2, d >= 1, max_pairs >= 1 (n=%zu d=%d "
                        "max_pairs=%zu)",
                        n, d, max_pairs);
    /* n (n - 1) / 2 without overflow: past 2^32 rows, sampling is certain */
    every = n < ((size_t)1 << 32) && (all = n * (n - 1) / 2) <= max_pairs;
    npairs = every ? all : max_pairs;
    if (!(d2 = malloc(npairs * sizeof *d2))) {
        st = ns_error(NS_ERR_NOMEM, "mmd median sigma: cannot allocate %zu distances", npairs);
        goto done;
    }
    if (every) {
#pragma omp parallel for schedule(dynamic, 16) if (npairs * (size_t)d > 65536)
        for (size_t i = 0; i < n - 1; i++) {
            size_t base = i * (2 * n - i - 1) / 2; /* index of pair (i, i + 1) */
            for (size_t j = i + 1; j < n; j++)
                d2[base + j - i - 1] = mmd_dist2(x + i * (size_t)d, x + j * (size_t)d, d);
        }
    } else {
        /* pair k draws from its own point of the splitmix64 stream, so the
         * sample does not depend on how the loop is split among threads */
#pragma omp parallel for schedule(static) if (npairs * (size_t)d > 65536)
        for (size_t k = 0; k < npairs; k++) {
            size_t i = mmd_below(ns_sm64_mix(seed + (2 * (uint64_t)k + 1) * NS_SM64_GOLDEN), n);
            size_t j = mmd_below(ns_sm64_mix(seed + (2 * (uint64_t)k + 2) * NS_SM64_GOLDEN), n - 1);
            if (j >= i)
                j++;
            d2[k] = mmd_dist2(x + i * (size_t)d, x + j * (size_t)d, d);
        }
    }
    mmd_select(d2, npairs, npairs / 2);
    med = d2[npairs / 2];
    if (npairs % 2 == 0) {
        double below = d2[0]; /* the largest of the lower half */
        for (size_t k = 1; k < npairs / 2; k++)
            if (d2[k] > below)
                below = d2[k];
        med = 0.5 * (med + below);
    }
    if (!(med > 0.0)) {
        st = ns_error(NS_ERR_USAGE,
                      "mmd median sigma: median squared distance is 0 over %zu pairs of %zu "
                      "points (all points equal)",
                      npairs, n);
        goto done;
    }
    *sigma = sqrt(med / 2.0);
done:
    free(d2);
    return st;
}

/* ---- block sums --------------------------------------------------------------- */

typedef struct mmd_group {
    size_t r0, r1; /* rows */
    size_t a0;     /* first block (may be empty); blocks of rows r0.. follow */
} mmd_group;

typedef struct mmd_run {
    size_t b, lo, hi; /* columns [lo, hi) of the tile belong to block b */
} mmd_run;

typedef struct mmd_bs {
    const float *x;
    size_t n;
    int d;
    const size_t *off;
    size_t nb;
    float scale; /* -1 / (2 sigma^2) */
    const float *norm; /* (n) ||x_i||^2 */
    double *A;         /* (nb, nb) upper triangle, pairs i < j */
} mmd_bs;

/* Smallest b with off[b + 1] > col: the nonempty block holding column col. */
static size_t mmd_block_of(const size_t *off, size_t nb, size_t col)
{
    size_t lo = 0, hi = nb - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (off[mid + 1] > col)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static size_t mmd_tile_runs(const mmd_bs *p, size_t c0, size_t c1, mmd_run *runs)
{
    size_t nr = 0, b = mmd_block_of(p->off, p->nb, c0), c = c0;
    while (c < c1) {
        size_t hi = p->off[b + 1] < c1 ? p->off[b + 1] : c1;
        if (hi > c) {
            runs[nr].b = b;
            runs[nr].lo = c - c0;
            runs[nr].hi = hi - c0;
            nr++;
            c = hi;
        }
        b++;
    }
    return nr;
}

static int32_t mmd_f2i(float f)
{
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i;
}

static float mmd_i2f(int32_t i)
{
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

/* The kernel exp(v * scale) of a squared distance v, scale < 0: glibc's expf
 * is a call per element (its vector versions need -ffast-math), this is
 * straight-line code the compiler vectorises (Cephes' polynomial, relative
 * error < 1e-7).  The clamps work on the bits (nonnegative floats order like
 * their bit patterns), since float compares keep the loop from vectorising
 * under the default -ftrapping-math: v < 0 (GEMM rounding) counts as 0, and v
 * past vmax (where the kernel is below 1e-37) as vmax, keeping 2^n normal. */
static inline float mmd_kexp(float v, float scale, int32_t vmax_bits)
{
    const float round = 12582912.0f; /* 1.5 * 2^23: x + round - round rounds x */
    int32_t vb = mmd_f2i(v);
    float x, fn, r, p;
    vb &= ~(vb >> 31);
    vb = vb < vmax_bits ? vb : vmax_bits;
    x = mmd_i2f(vb) * scale; /* in [-87, 0] */
    fn = (x * 1.44269504088896341f + round) - round;
    r = x - fn * 0.693359375f; /* ln 2 in two parts: exact first product */
    r = r + fn * 2.12194440e-4f;
    p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    return p * mmd_i2f(((int32_t)fn + 127) << 23);
}

/* All pairs i < j with i in rows [s0, s1): one row band of the upper triangle. */
static void mmd_band(const mmd_bs *p, size_t s0, size_t s1, size_t a, float *K, mmd_run *runs)
{
    const int d = p->d;
    const size_t nb = p->nb;
    const float scale = p->scale;
    const int32_t vmax_bits = mmd_f2i(87.0f / -scale);
    for (size_t c0 = s0; c0 < p->n; c0 += MMD_TC) {
        size_t c1 = c0 + MMD_TC < p->n ? c0 + MMD_TC : p->n, nc = c1 - c0;
        size_t nr = mmd_tile_runs(p, c0, c1, runs), ab = a;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(s1 - s0), (int)nc, d, -2.0f,
                    p->x + s0 * (size_t)d, d, p->x + c0 * (size_t)d, d, 0.0f, K, (int)nc);
        for (size_t i = s0; i < s1; i++) {
            float *row = K + (i - s0) * nc;
            const float ni = p->norm[i];
            const float *nj = p->norm + c0;
            size_t jlo = i + 1 > c0 ? i + 1 - c0 : 0; /* tile-local first column */
            double *arow;
            if (jlo >= nc)
                continue;
            while (p->off[ab + 1] <= i)
                ab++;
            arow = p->A + ab * nb;
#pragma omp simd
            for (size_t j = jlo; j < nc; j++)
                row[j] = mmd_kexp(ni + nj[j] + row[j], scale, vmax_bits);
            for (size_t r = 0; r < nr; r++) {
                size_t lo = runs[r].lo > jlo ? runs[r].lo : jlo;
                double s = 0.0;
                if (runs[r].hi <= lo)
                    continue;
                for (size_t j = lo; j < runs[r].hi; j++)
                    s += row[j];
                arow[runs[r].b] += s;
            }
        }
    }
}

static ns_status mmd_check_blocks(const float *x, size_t n, int d, const size_t *off,
                                  size_t nblocks, double sigma, const double *S)
{
    if (!x || !off || !S)
        return ns_error(NS_ERR_USAGE, "mmd block sums: NULL argument");
    if (nblocks < 1 || d < 1)
        return ns_error(NS_ERR_USAGE, "mmd block sums: need nblocks >= 1 and d >= 1 "
                                      "(nblocks=%zu d=%d)",
                        nblocks, d);
    /* the kernel runs in float: 1 / (2 sigma^2) must be a finite float */
    if (!(sigma > 0.0) || !isfinite(sigma) || !isfinite((float)(0.5 / (sigma * sigma))))
        return ns_error(NS_ERR_USAGE,
                        "mmd block sums: kernel width must be positive and finite, and not "
                        "below 1e-19 (sigma=%g)",
                        sigma);
    if (off[0] != 0 || off[nblocks] != n)
        return ns_error(NS_ERR_USAGE,
                        "mmd block sums: offsets must run from 0 to n=%zu (got %zu..%zu)", n,
                        off[0], off[nblocks]);
    for (size_t a = 0; a < nblocks; a++)
        if (off[a + 1] < off[a])
            return ns_error(NS_ERR_USAGE, "mmd block sums: offsets decrease at block %zu", a);
    return NS_OK;
}

ns_status ns_mmd_block_sums(const float *x, size_t n, int d, const size_t *off, size_t nblocks,
                            double sigma, int threads, double *S)
{
    mmd_group *groups = NULL;
    float *norm = NULL, *tiles = NULL;
    mmd_run *runs = NULL;
    size_t ngroups = 0, tile_rows, tile_cols, tile_stride;
    mmd_bs p;
    ns_status st = mmd_check_blocks(x, n, d, off, nblocks, sigma, S);

    if (st != NS_OK)
        return st;
    threads = mmd_threads(threads);
    memset(S, 0, nblocks * nblocks * sizeof *S);
    tile_rows = n < MMD_TR ? n : MMD_TR;
    tile_cols = n < MMD_TC ? n : MMD_TC;
    groups = malloc((nblocks + 1) * sizeof *groups);
    norm = malloc((n ? n : 1) * sizeof *norm);
    /* 64-byte aligned tiles: the vectorised loop then splits every row the
     * same way whichever thread's tile holds it */
    tile_stride = (tile_rows * tile_cols + 16) & ~(size_t)15;
    tiles = aligned_alloc(64, (size_t)threads * tile_stride * sizeof *tiles);
    runs = malloc(((size_t)threads * tile_cols + 1) * sizeof *runs);
    if (!groups || !norm || !tiles || !runs) {
        st = ns_error(NS_ERR_NOMEM, "mmd block sums: cannot allocate workspace (%zu rows, "
                                    "%d threads)",
                      n, threads);
        goto done;
    }
    for (size_t a = 0; a < nblocks;) { /* whole blocks, up to MMD_TR rows */
        size_t b = a + 1;
        while (b < nblocks && off[b + 1] - off[a] <= MMD_TR)
            b++;
        if (off[b] > off[a])
            groups[ngroups++] = (mmd_group){.r0 = off[a], .r1 = off[b], .a0 = a};
        a = b;
    }
#pragma omp parallel for schedule(static) num_threads(threads) if (n * (size_t)d > 65536)
    for (size_t i = 0; i < n; i++)
        norm[i] = (float)mmd_sqnorm(x + i * (size_t)d, d);

    p = (mmd_bs){.x = x, .n = n, .d = d, .off = off, .nb = nblocks,
                 .scale = (float)(-1.0 / (2.0 * sigma * sigma)), .norm = norm, .A = S};
    /* groups come in decreasing work (more columns to the right): dynamic
     * hands the big ones out first */
#pragma omp parallel num_threads(threads) if (ngroups > 1 && (double)n * n * d > MMD_PAR_WORK)
    {
        int t = omp_get_thread_num();
        float *K = tiles + (size_t)t * tile_stride;
        mmd_run *rt = runs + (size_t)t * tile_cols;
        mmd_blas_serial();
#pragma omp for schedule(dynamic, 1)
        for (size_t gi = 0; gi < ngroups; gi++) {
            const mmd_group *g = &groups[gi];
            for (size_t s0 = g->r0; s0 < g->r1; s0 += MMD_TR) {
                size_t s1 = s0 + MMD_TR < g->r1 ? s0 + MMD_TR : g->r1;
                mmd_band(&p, s0, s1, g->a0, K, rt);
            }
        }
    }
    for (size_t a = 0; a < nblocks; a++) {
        S[a * nblocks + a] = 2.0 * S[a * nblocks + a] + (double)(off[a + 1] - off[a]);
        for (size_t b = a + 1; b < nblocks; b++)
            S[b * nblocks + a] = S[a * nblocks + b];
    }
done:
    free(groups);
    free(norm);
    free(tiles);
    free(runs);
    return st;
}

/* ---- statistics --------------------------------------------------------------- */

/* Unbiased MMD^2 from the X-X sum, the X-all sum g^T r and the total. */
static double mmd_stat(double sxx, double gr, double total, double m, double nn)
{
    double sxy = gr - sxx, syy = total - 2.0 * gr + sxx;
    return (sxx - m) / (m * (m - 1.0)) + (syy - nn) / (nn * (nn - 1.0)) - 2.0 * sxy / (m * nn);
}

double ns_mmd2_from_blocks(const double *S, const size_t *size, size_t nblocks, const uint8_t *g)
{
    double sxx = 0.0, syy = 0.0, sxy = 0.0, m = 0.0, nn = 0.0;
    if (!S || !size || !g)
        return NAN;
    for (size_t a = 0; a < nblocks; a++) {
        const double *row = S + a * nblocks;
        if (g[a]) {
            m += (double)size[a];
            for (size_t b = 0; b < nblocks; b++) {
                if (g[b])
                    sxx += row[b];
                else
                    sxy += row[b];
            }
        } else {
            nn += (double)size[a];
            for (size_t b = 0; b < nblocks; b++)
                if (!g[b])
                    syy += row[b];
        }
    }
    if (m < 2.0 || nn < 2.0)
        return NAN;
    /* k(x, x) = 1: the diagonal of the within sums is the frame count */
    return (sxx - m) / (m * (m - 1.0)) + (syy - nn) / (nn * (nn - 1.0)) - 2.0 * sxy / (m * nn);
}

/* Per-thread workspace of one permutation batch. */
typedef struct mmd_pw {
    double *G;    /* (nb, MMD_PB) 0/1 indicators, one column per permutation */
    double *SG;   /* (nb, MMD_PB) S G */
    size_t *pool; /* (nmove) the moving blocks, shuffled within their strata */
} mmd_pw;

typedef struct mmd_perm {
    const double *S;
    const size_t *size;
    size_t nb;
    const size_t *move;  /* (nmove) blocks of the moving strata: by stratum, ascending within */
    size_t nmove;
    const size_t *lo;    /* (nstrata + 1) where each moving stratum starts in move */
    const size_t *kx;    /* (nstrata) how many of its blocks go to X in every permutation */
    size_t nstrata;
    const size_t *fixed; /* (nfixed) X blocks of one-sided strata: X in every permutation */
    size_t nfixed;
    const double *r;     /* (nb) row sums of S */
    double total, frames;
    uint64_t seed;
} mmd_perm;

/* Statistics of permutations [p0, p0 + np) into stats. */
static void mmd_perm_batch(const mmd_perm *q, int p0, int np, const mmd_pw *w, double *stats)
{
    const size_t nb = q->nb;
    double gr[MMD_PB], m[MMD_PB];
    memset(w->G, 0, nb * MMD_PB * sizeof *w->G);
    for (int c = 0; c < np; c++) {
        /* a fresh stream per permutation index: thread-count independent */
        uint64_t s = ns_sm64_mix(q->seed + ((uint64_t)(p0 + c) + 1) * NS_SM64_GOLDEN);
        memcpy(w->pool, q->move, q->nmove * sizeof *w->pool);
        gr[c] = 0.0;
        m[c] = 0.0;
        for (size_t k = 0; k < q->nstrata; k++) {
            size_t *pool = w->pool + q->lo[k], nk = q->lo[k + 1] - q->lo[k];
            for (size_t t = 0; t < q->kx[k]; t++) { /* partial Fisher-Yates: first kx are X */
                size_t u = t + mmd_below(ns_sm64_next(&s), nk - t), a = pool[u];
                pool[u] = pool[t];
                pool[t] = a;
                w->G[a * MMD_PB + c] = 1.0;
            }
        }
        for (size_t f = 0; f < q->nfixed; f++)
            w->G[q->fixed[f] * MMD_PB + c] = 1.0;
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, np, (int)nb, 1.0, q->S,
                (int)nb, w->G, MMD_PB, 0.0, w->SG, MMD_PB);
    for (int c = 0; c < np; c++)
        stats[c] = 0.0;
    /* ascending block order, so each sum's order is fixed */
    for (size_t a = 0; a < nb; a++) {
        const double *grow = w->G + a * MMD_PB, *srow = w->SG + a * MMD_PB;
        for (int c = 0; c < np; c++)
            if (grow[c] != 0.0) {
                stats[c] += srow[c];
                gr[c] += q->r[a];
                m[c] += (double)q->size[a];
            }
    }
    for (int c = 0; c < np; c++)
        stats[c] = mmd_stat(stats[c], gr[c], q->total, m[c], q->frames - m[c]);
}

typedef struct mmd_key {
    int32_t stratum;
    size_t block;
} mmd_key;

static int mmd_key_cmp(const void *pa, const void *pb)
{
    const mmd_key *a = pa, *b = pb;
    if (a->stratum != b->stratum)
        return a->stratum < b->stratum ? -1 : 1;
    return (a->block > b->block) - (a->block < b->block);
}

/* Splits the nlive blocks with frames into moving strata (q->move, lo, kx)
 * and the X blocks of one-sided strata (q->fixed); key (nlive) is scratch,
 * idx (4 nlive + 1) holds the four lists.  Returns the number of strata. */
static size_t mmd_strata_plan(const size_t *size, size_t nblocks, const uint8_t *g,
                              const int32_t *stratum, mmd_key *key, size_t *idx, mmd_perm *q)
{
    size_t nlive = 0, nall = 0, *move = idx, *fixed, *lo, *kx;
    for (size_t a = 0; a < nblocks; a++)
        if (size[a])
            key[nlive++] = (mmd_key){.stratum = stratum ? stratum[a] : 0, .block = a};
    fixed = move + nlive;
    kx = fixed + nlive;
    lo = kx + nlive;
    if (stratum)
        qsort(key, nlive, sizeof *key, mmd_key_cmp);
    q->nmove = q->nfixed = q->nstrata = 0;
    for (size_t i = 0, j; i < nlive; i = j, nall++) {
        size_t x = 0;
        for (j = i; j < nlive && key[j].stratum == key[i].stratum; j++)
            x += g[key[j].block] != 0;
        if (x > 0 && x < j - i) {
            lo[q->nstrata] = q->nmove;
            kx[q->nstrata++] = x;
            for (size_t t = i; t < j; t++)
                move[q->nmove++] = key[t].block;
        } else if (x > 0) {
            for (size_t t = i; t < j; t++)
                fixed[q->nfixed++] = key[t].block;
        }
    }
    lo[q->nstrata] = q->nmove;
    q->move = move;
    q->fixed = fixed;
    q->lo = lo;
    q->kx = kx;
    return nall;
}

ns_status ns_mmd_perm_test(const double *S, const size_t *size, size_t nblocks, const uint8_t *g,
                           int n_perm, uint64_t seed, int threads, int keep_null,
                           ns_mmd_test *out)
{
    return ns_mmd_perm_test_strata(S, size, nblocks, g, NULL, n_perm, seed, threads, keep_null,
                                   out);
}

ns_status ns_mmd_perm_test_strata(const double *S, const size_t *size, size_t nblocks,
                                  const uint8_t *g, const int32_t *stratum, int n_perm,
                                  uint64_t seed, int threads, int keep_null, ns_mmd_test *out)
{
    size_t *idx = NULL, *pools = NULL, nx = 0, ny = 0, fx = 0, fy = 0, nall;
    double *r = NULL, *stats = NULL, *gbuf = NULL, total = 0.0, sum = 0.0, ss = 0.0, tol;
    mmd_key *key = NULL;
    int nbatch, ge = 0;
    mmd_perm q;
    ns_status st = NS_OK;

    if (out)
        memset(out, 0, sizeof *out);
    if (!S || !size || !g || !out)
        return ns_error(NS_ERR_USAGE, "mmd permutation test: NULL argument");
    if (n_perm < 1)
        return ns_error(NS_ERR_USAGE, "mmd permutation test: need n_perm >= 1 (got %d)", n_perm);
    /* blocks without frames add nothing to any sum: they stay out of the draw */
    for (size_t a = 0; a < nblocks; a++) {
        if (!size[a])
            continue;
        if (g[a]) {
            nx++;
            fx += size[a];
        } else {
            ny++;
            fy += size[a];
        }
    }
    if (nx < 2 || ny < 2)
        return ns_error(NS_ERR_USAGE,
                        "mmd permutation test: need at least 2 clips on each side, got %zu in X "
                        "(%zu frames) and %zu in Y (%zu frames) of %zu blocks",
                        nx, fx, ny, fy, nblocks);
    threads = mmd_threads(threads);
    nbatch = (n_perm + MMD_PB - 1) / MMD_PB;
    if (threads > nbatch)
        threads = nbatch;
    key = malloc((nx + ny) * sizeof *key);
    idx = malloc((4 * (nx + ny) + 1) * sizeof *idx);
    pools = malloc((size_t)threads * (nx + ny) * sizeof *pools);
    r = malloc(nblocks * sizeof *r);
    stats = malloc((size_t)n_perm * sizeof *stats);
    gbuf = malloc((size_t)threads * 2 * nblocks * MMD_PB * sizeof *gbuf);
    if (!key || !idx || !pools || !r || !stats || !gbuf) {
        st = ns_error(NS_ERR_NOMEM, "mmd permutation test: cannot allocate workspace (%zu blocks, "
                                    "%d permutations)",
                      nblocks, n_perm);
        goto done;
    }
    nall = mmd_strata_plan(size, nblocks, g, stratum, key, idx, &q);
    if (q.nstrata == 0) {
        st = ns_error(NS_ERR_USAGE,
                      "mmd permutation test: no camera has clips on both sides (%zu strata, "
                      "%zu X and %zu Y clips): no permutation would move anything",
                      nall, nx, ny);
        goto done;
    }
    for (size_t a = 0; a < nblocks; a++) {
        double s = 0.0;
        for (size_t b = 0; b < nblocks; b++)
            s += S[a * nblocks + b];
        r[a] = s;
        total += s;
    }
    q.S = S;
    q.size = size;
    q.nb = nblocks;
    q.r = r;
    q.total = total;
    q.frames = (double)(fx + fy);
    q.seed = seed;

#pragma omp parallel num_threads(threads) \
    if (nbatch > 1 && (double)nblocks * nblocks * n_perm > MMD_PAR_WORK)
    {
        int t = omp_get_thread_num();
        mmd_pw w = {.G = gbuf + (size_t)t * 2 * nblocks * MMD_PB,
                    .SG = gbuf + ((size_t)t * 2 + 1) * nblocks * MMD_PB,
                    .pool = pools + (size_t)t * (nx + ny)};
        mmd_blas_serial();
#pragma omp for schedule(dynamic, 1)
        for (int bi = 0; bi < nbatch; bi++) {
            int p0 = bi * MMD_PB, np = n_perm - p0 < MMD_PB ? n_perm - p0 : MMD_PB;
            mmd_perm_batch(&q, p0, np, &w, stats + p0);
        }
    }

    out->mmd2 = ns_mmd2_from_blocks(S, size, nblocks, g);
    tol = MMD_TIE_TOL * (1.0 + fabs(out->mmd2));
    for (int p = 0; p < n_perm; p++) {
        ge += stats[p] >= out->mmd2 - tol;
        sum += stats[p];
    }
    out->null_mean = sum / n_perm;
    for (int p = 0; p < n_perm; p++)
        ss += (stats[p] - out->null_mean) * (stats[p] - out->null_mean);
    out->null_sd = n_perm > 1 ? sqrt(ss / (n_perm - 1)) : 0.0;
    out->p_value = (1.0 + ge) / (1.0 + n_perm);
    out->n_perm = n_perm;
    out->blocks_x = nx;
    out->blocks_y = ny;
    out->n_x = fx;
    out->n_y = fy;
    if (keep_null) {
        out->null_stats = stats;
        stats = NULL;
    }
done:
    free(key);
    free(idx);
    free(pools);
    free(r);
    free(stats);
    free(gbuf);
    return st;
}
