/* kmeans_kernel_bench.c -- the k-means distance GEMM, tile by tile: our
 * AVX-512 kernel (src/detect/kmeans_gemm.c) against serial cblas_sgemm.
 *
 *   nightshift-bench-kmeans-kernel [--n N] [--d D] [--k K] [--tile M] [--reps R]
 *                                  [--threads T] [--kc KC] [--hot]
 *
 * x (N [100000], D [512]) and c (K [64], D) uniform in [-1, 1), fixed seed.
 * One repetition of a method: T [2] OpenMP threads (all busy) share the
 * N / M tiles of M [512] rows (schedule dynamic, as km_pass), each computing
 * G (M, K) = -2 x_tile c^T into its own buffer:
 *   ours   ns_kmeans_gemm on c packed once per repetition (the packing is
 *          inside the clock, as it is once per pass in km_pass);
 *   blas   cblas_sgemm(RowMajor, NoTrans, Trans, M, K, D, -2, ...), one
 *          OpenBLAS thread per OpenMP thread (as km_pass).
 * With --hot every thread works on the same M rows over and over (the tile
 * stays in cache: the kernel alone); otherwise the tiles stream through x as
 * in a Lloyd pass.  R [9] repetitions, the two methods alternating (which
 * goes first alternates too), so that noise from other work on the machine
 * hits both.  Prints GFLOP/s (2 N D K / median time) of each, the median of
 * the per-repetition ratios, and the largest relative difference of the two
 * results (both are float sums of the same products); and GFLOP/s per
 * CPU-second of the threads (less diluted by other work on the machine).
 * (km_pass hands the kernel 128 rows at a time and the sgemm 512: --tile.)
 * Exits 77 where the CPU has no AVX-512F. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../src/detect/detect_util.h"
#include "../../src/detect/kmeans_gemm.h"

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static float unif(uint64_t *s) /* [-1, 1) */
{
    return (float)((double)(ns_sm64_next(s) >> 11) * 0x1.0p-52 - 1.0);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, ns_cmp_double);
    return v[(n - 1) / 2];
}

typedef struct run {
    const float *x, *c;
    float *ct, *g; /* g: (threads, tile, k) */
    size_t n;
    int d, k, tile, threads, kc, hot;
} run;

/* One pass of a method over the tiles; returns wall seconds, and the CPU
 * seconds of all threads in *cpu. */
static double pass(const run *p, int ours, double *cpu)
{
    size_t tiles = (p->n + (size_t)p->tile - 1) / (size_t)p->tile;
    double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), t0 = clock_s(CLOCK_MONOTONIC);
    if (ours)
        ns_kmeans_gemm_pack(p->c, p->k, p->d, p->ct);
#pragma omp parallel num_threads(p->threads)
    {
        float *g = p->g + (size_t)omp_get_thread_num() * p->tile * (size_t)p->k;
        omp_set_num_threads(1);
#pragma omp for schedule(dynamic, 1)
        for (size_t ti = 0; ti < tiles; ti++) {
            size_t r0 = p->hot ? 0 : ti * (size_t)p->tile;
            int m = p->n - ti * (size_t)p->tile < (size_t)p->tile ? (int)(p->n - ti * p->tile)
                                                                 : p->tile;
            const float *xt = p->x + r0 * (size_t)p->d;
            if (ours)
                ns_kmeans_gemm(p->ct, p->k, p->d, xt, m, g, p->kc);
            else
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, p->k, p->d, -2.0f, xt,
                            p->d, p->c, p->d, 0.0f, g, p->k);
        }
    }
    *cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    return clock_s(CLOCK_MONOTONIC) - t0;
}

/* Largest |ours - blas| / (sum_t |2 x c| + tiny) over the first tile. */
static double compare(const run *p)
{
    int m = p->n < (size_t)p->tile ? (int)p->n : p->tile;
    float *a = malloc((size_t)m * p->k * sizeof *a), *b = malloc((size_t)m * p->k * sizeof *b);
    double worst = -1.0;
    if (!a || !b)
        goto done;
    ns_kmeans_gemm_pack(p->c, p->k, p->d, p->ct);
    ns_kmeans_gemm(p->ct, p->k, p->d, p->x, m, a, p->kc);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, p->k, p->d, -2.0f, p->x, p->d, p->c,
                p->d, 0.0f, b, p->k);
    worst = 0.0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < p->k; j++) {
            double s = 1e-30;
            for (int t = 0; t < p->d; t++)
                s += fabs(2.0 * p->x[(size_t)i * p->d + t] * p->c[(size_t)j * p->d + t]);
            s = fabs((double)a[(size_t)i * p->k + j] - b[(size_t)i * p->k + j]) / s;
            if (s > worst)
                worst = s;
        }
done:
    free(a), free(b);
    return worst;
}

static int usage(void)
{
    fprintf(stderr, "usage: nightshift-bench-kmeans-kernel [--n N] [--d D] [--k K] [--tile M]\n"
                    "       [--reps R] [--threads T] [--kc KC] [--hot]\n");
    return 2;
}

int main(int argc, char **argv)
{
    run p = {.n = 100000, .d = 512, .k = 64, .tile = 512, .threads = 2, .kc = 0, .hot = 0};
    int reps = 9, rc = 1;
    float *x = NULL, *c = NULL;
    double *t = NULL, *t_ours, *t_blas, *c_ours, *c_blas, *ratio, flop, to, tb;
    uint64_t s = 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--hot")) {
            p.hot = 1;
            continue;
        }
        if (!v)
            return usage();
        if (!strcmp(a, "--n"))
            p.n = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--d"))
            p.d = atoi(v);
        else if (!strcmp(a, "--k"))
            p.k = atoi(v);
        else if (!strcmp(a, "--tile"))
            p.tile = atoi(v);
        else if (!strcmp(a, "--reps"))
            reps = atoi(v);
        else if (!strcmp(a, "--threads"))
            p.threads = atoi(v);
        else if (!strcmp(a, "--kc"))
            p.kc = atoi(v);
        else
            return usage();
        i++;
    }
    if (p.n < 1 || p.d < 1 || p.k < 1 || p.tile < 1 || reps < 1 || p.threads < 1 || p.kc < 0)
        return usage();
    if (!ns_kmeans_gemm_supported()) {
        fprintf(stderr, "kmeans_kernel_bench: this CPU has no AVX-512F: nothing to compare\n");
        return 77;
    }
    x = malloc(p.n * (size_t)p.d * sizeof *x);
    c = malloc((size_t)p.k * p.d * sizeof *c);
    p.ct = aligned_alloc(64, (ns_kmeans_gemm_floats(p.k, p.d) * sizeof(float) + 63) / 64 * 64);
    p.g = malloc((size_t)p.threads * p.tile * (size_t)p.k * sizeof *p.g);
    t = malloc(5 * (size_t)reps * sizeof *t);
    if (!x || !c || !p.ct || !p.g || !t) {
        fprintf(stderr, "kmeans_kernel_bench: out of memory\n");
        goto done;
    }
    for (size_t i = 0; i < p.n * (size_t)p.d; i++)
        x[i] = unif(&s);
    for (size_t i = 0; i < (size_t)p.k * p.d; i++)
        c[i] = unif(&s);
    memset(p.g, 0, (size_t)p.threads * p.tile * (size_t)p.k * sizeof *p.g);
    p.x = x;
    p.c = c;

    t_ours = t, t_blas = t + reps, c_ours = t + 2 * reps, c_blas = t + 3 * reps;
    ratio = t + 4 * reps;
    pass(&p, 1, c_ours); /* warm-up: threads started, pages touched */
    pass(&p, 0, c_blas);
    for (int r = 0; r < reps; r++) {
        if (r % 2) {
            t_blas[r] = pass(&p, 0, c_blas + r);
            t_ours[r] = pass(&p, 1, c_ours + r);
        } else {
            t_ours[r] = pass(&p, 1, c_ours + r);
            t_blas[r] = pass(&p, 0, c_blas + r);
        }
        ratio[r] = t_blas[r] / t_ours[r];
    }
    flop = 2.0 * (double)p.n * p.d * p.k;
    to = median(t_ours, reps);
    tb = median(t_blas, reps);
    printf("shape n=%zu d=%d k=%d tile=%d threads=%d kc=%d %s, %d reps\n", p.n, p.d, p.k, p.tile,
           p.threads, p.kc, p.hot ? "hot" : "streaming", reps);
    printf("ours_gflops %.1f\nblas_gflops %.1f\nours_ms %.3f\nblas_ms %.3f\n", flop / to * 1e-9,
           flop / tb * 1e-9, to * 1e3, tb * 1e3);
    printf("speedup_median %.3f\n", median(ratio, reps));
    /* Per CPU-second of all threads: what time-slicing with other work on the
     * machine does not dilute (OpenMP's spinning at the end counts). */
    printf("ours_gflops_per_core %.1f\nblas_gflops_per_core %.1f\n",
           flop / median(c_ours, reps) * 1e-9, flop / median(c_blas, reps) * 1e-9);
    printf("max_rel_diff %.3g\n", compare(&p));
    rc = 0;
done:
    free(x), free(c), free(p.ct), free(p.g), free(t);
    return rc;
}
