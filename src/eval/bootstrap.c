/* bootstrap.c -- the clip bootstrap: draw counts times per-clip sums.
 *
 * A block of NS_BOOT_RB replicates fills a (RB, n_clips) matrix of draw
 * counts (each row sums to n_clips), then one dgemm with the (n_clips, q)
 * rows gives the block's sums.  Doubles keep counts and sums of up to 2^53
 * exact, so the GEMM and the reference agree to rounding of the conf sums.
 * Blocks run in parallel, each GEMM serial.
 */
#include "nightshift/bootstrap.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "../detect/detect_util.h"

/* Replicates per GEMM: enough rows to amortise the call, few enough that
 * the count rows of all threads stay in L2 for modest clip counts. */
#define NS_BOOT_RB 64
/* Up to this many sums per clip the drawn rows are added directly. */
#define NS_BOOT_GATHER_Q 8

void ns_boot_stream_init(ns_boot_stream *r, uint64_t seed, uint64_t stream, uint64_t rep,
                         size_t n_clips)
{
    r->state = ns_sm64_mix(seed ^ ns_sm64_mix(stream * NS_SM64_GOLDEN + 0x51ED27ull)) ^
               ns_sm64_mix(rep + 1);
    r->n = n_clips;
}

size_t ns_boot_stream_next(ns_boot_stream *r)
{
    /* Lemire's multiply-shift: bias below n / 2^64, far under any Monte
     * Carlo error we report. */
    unsigned __int128 m = (unsigned __int128)ns_sm64_next(&r->state) * r->n;
    return (size_t)(m >> 64);
}

void ns_boot_clip_sums_ref(const double *stats, size_t n_clips, int q, int n_rep,
                           uint64_t seed, uint64_t stream, double *out, uint64_t first_rep)
{
    for (int b = 0; b < n_rep; b++) {
        ns_boot_stream r;
        double *o = out + (size_t)b * (size_t)q;
        memset(o, 0, sizeof *o * (size_t)q);
        ns_boot_stream_init(&r, seed, stream, first_rep + (uint64_t)b, n_clips);
        for (size_t j = 0; j < n_clips; j++) {
            const double *s = stats + ns_boot_stream_next(&r) * (size_t)q;
            for (int t = 0; t < q; t++)
                o[t] += s[t];
        }
    }
}

ns_status ns_boot_clip_sums(const double *stats, size_t n_clips, int q, int n_rep,
                            uint64_t seed, uint64_t stream, int threads, double *out)
{
    int nblocks, nt;
    double *counts;
    if (n_clips == 0 || q <= 0 || n_rep < 0)
        return ns_error(NS_ERR_USAGE, "bootstrap over %zu clips with %d sums per clip",
                        n_clips, q);
    if (n_rep == 0)
        return NS_OK;
    if (q <= NS_BOOT_GATHER_Q) {
        /* A few sums per clip: adding the drawn rows costs less than
         * writing and reading a count matrix, and is the reference order. */
        nt = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int b = 0; b < n_rep; b++) {
            if (q == 3) {
                /* the gate's per-slice accuracy rows: unrolled, same order */
                ns_boot_stream r;
                double s0 = 0, s1 = 0, s2 = 0;
                ns_boot_stream_init(&r, seed, stream, (uint64_t)b, n_clips);
                for (size_t j = 0; j < n_clips; j++) {
                    const double *v = stats + ns_boot_stream_next(&r) * 3;
                    s0 += v[0];
                    s1 += v[1];
                    s2 += v[2];
                }
                out[(size_t)b * 3] = s0;
                out[(size_t)b * 3 + 1] = s1;
                out[(size_t)b * 3 + 2] = s2;
            } else {
                ns_boot_clip_sums_ref(stats, n_clips, q, 1, seed, stream,
                                      out + (size_t)b * (size_t)q, (uint64_t)b);
            }
        }
        return NS_OK;
    }
    nblocks = (n_rep + NS_BOOT_RB - 1) / NS_BOOT_RB;
    nt = threads > 0 ? threads : omp_get_max_threads();
    if (nt > nblocks)
        nt = nblocks;
    counts = malloc(sizeof *counts * (size_t)nt * NS_BOOT_RB * n_clips);
    if (!counts)
        return ns_error(NS_ERR_NOMEM, "out of memory for %d x %zu bootstrap counts",
                        NS_BOOT_RB, n_clips);
#pragma omp parallel num_threads(nt)
    {
        double *cnt = counts + (size_t)omp_get_thread_num() * NS_BOOT_RB * n_clips;
        /* A team of one is not "in parallel" to OpenBLAS, which would then
         * thread the GEMM and round differently; this task's own setting
         * keeps every GEMM serial, so the bits never depend on threads. */
        omp_set_num_threads(1);
#pragma omp for schedule(dynamic, 1)
        for (int blk = 0; blk < nblocks; blk++) {
            int b0 = blk * NS_BOOT_RB;
            int rb = n_rep - b0 < NS_BOOT_RB ? n_rep - b0 : NS_BOOT_RB;
            memset(cnt, 0, sizeof *cnt * (size_t)rb * n_clips);
            for (int i = 0; i < rb; i++) {
                ns_boot_stream r;
                double *row = cnt + (size_t)i * n_clips;
                ns_boot_stream_init(&r, seed, stream, (uint64_t)(b0 + i), n_clips);
                for (size_t j = 0; j < n_clips; j++)
                    row[ns_boot_stream_next(&r)] += 1.0;
            }
            if (q == 1)
                cblas_dgemv(CblasRowMajor, CblasNoTrans, rb, (int)n_clips, 1.0, cnt,
                            (int)n_clips, stats, 1, 0.0, out + (size_t)b0, 1);
            else
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rb, q, (int)n_clips, 1.0,
                            cnt, (int)n_clips, stats, q, 0.0, out + (size_t)b0 * (size_t)q, q);
        }
    }
    free(counts);
    return NS_OK;
}

static int cmp_nan_last(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    int nx = isnan(x), ny = isnan(y);
    if (nx || ny)
        return nx - ny;
    return (x > y) - (x < y);
}

size_t ns_boot_sort(double *v, size_t n)
{
    size_t k = 0;
    qsort(v, n, sizeof *v, cmp_nan_last);
    while (k < n && !isnan(v[k]))
        k++;
    return k;
}

double ns_boot_quantile_sorted(const double *sorted, size_t n, double p)
{
    double h, lo;
    size_t i;
    if (n == 0)
        return NAN;
    p = p < 0 ? 0 : p > 1 ? 1 : p;
    h = p * (double)(n - 1);
    lo = floor(h);
    i = (size_t)lo;
    if (i + 1 >= n)
        return sorted[n - 1];
    return sorted[i] + (h - lo) * (sorted[i + 1] - sorted[i]);
}

void ns_boot_moments(const double *v, size_t n, double *mean, double *sd)
{
    double s = 0, ss = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i])) {
            s += v[i];
            k++;
        }
    *mean = k ? s / (double)k : NAN;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i]))
            ss += (v[i] - *mean) * (v[i] - *mean);
    *sd = k > 1 ? sqrt(ss / (double)(k - 1)) : NAN;
}
