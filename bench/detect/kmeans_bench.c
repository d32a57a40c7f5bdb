/* kmeans_bench.c -- Lloyd k-means time per iteration next to its GEMM floor.
 *
 *   nightshift-bench-kmeans [--n N] [--d D] [--k K] [--iters I] [--reps R]
 *                           [--seed S] [--data-out FILE] [--init-out FILE]
 *                           [--data-in FILE --init-in FILE] [--minibatch B]
 *
 * Generates x (N [100000], D [512]) float32: points around 2K random centres
 * drawn from U(-0.3, 0.3)^D, plus U(-1, 1)^D noise (structure to find, but
 * noisy enough that 20 Lloyd iterations do not converge), deterministic for
 * --seed [1].  The starting centroids are our k-means++
 * seeding (ns_kmeans_fit with max_iter = 0), so every implementation starts
 * from the same K [64] centres: --data-out and --init-out write x and them
 * as raw float32 (row-major) for the peers; --data-in and --init-in read
 * them back instead of generating them again.
 *
 * Then, --reps [3] times each, median kept:
 *   sgemm_ms        one cblas_sgemm of x (N, D) by c^T (D, K): the distance
 *                   GEMM of one iteration, on all of OpenBLAS's threads;
 *   ours_ms_per_iter ns_kmeans_fit from those centres, max_iter = I [20],
 *                   tol = 0, wall time divided by the iterations run (the
 *                   final assignment pass is inside the clock).
 * Prints `key value` lines, the last fit's inertia among them.  With
 * --minibatch B it also times one ns_kmeans_fit_minibatch from the same
 * centres (batches of B rows copied from memory by the callback, default
 * epochs; the whole call, final pass included) and prints its inertia.
 * Threads come from OMP_NUM_THREADS as for the library.
 */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nightshift/kmeans.h"
#include "nightshift/status.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint64_t next_u64(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float unif(uint64_t *s) /* [-1, 1) */
{
    return (float)((double)(next_u64(s) >> 11) * 0x1.0p-52 - 1.0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[(n - 1) / 2];
}

static ns_status write_raw(const char *path, const void *p, size_t bytes)
{
    FILE *f = fopen(path, "wb");
    size_t w;
    if (!f)
        return ns_error(NS_ERR_IO, "cannot create '%s'", path);
    w = fwrite(p, 1, bytes, f);
    if (fclose(f) != 0 || w != bytes)
        return ns_error(NS_ERR_IO, "cannot write '%s'", path);
    return NS_OK;
}

/* The mini-batch callback's view of x: batches served from memory in order. */
typedef struct mem_src {
    const float *x;
    size_t n, pos;
    int d;
} mem_src;

static ns_status mem_next(void *ctx, float *buf, size_t cap, size_t *got)
{
    mem_src *m = ctx;
    size_t take = m->n - m->pos < cap ? m->n - m->pos : cap;
    memcpy(buf, m->x + m->pos * (size_t)m->d, take * (size_t)m->d * sizeof *buf);
    m->pos += take;
    *got = take;
    return NS_OK;
}

static ns_status mem_rewind(void *ctx)
{
    ((mem_src *)ctx)->pos = 0;
    return NS_OK;
}

static ns_status read_raw(const char *path, void *p, size_t bytes)
{
    FILE *f = fopen(path, "rb");
    size_t got;
    if (!f)
        return ns_error(NS_ERR_IO, "cannot open '%s'", path);
    got = fread(p, 1, bytes, f);
    fclose(f);
    if (got != bytes)
        return ns_error(NS_ERR_IO, "'%s': %zu bytes, want %zu", path, got, bytes);
    return NS_OK;
}

static int usage(void)
{
    fprintf(stderr, "usage: nightshift-bench-kmeans [--n N] [--d D] [--k K] [--iters I] [--reps R]\n"
                    "       [--seed S] [--data-out FILE] [--init-out FILE]\n"
                    "       [--data-in FILE --init-in FILE] [--minibatch B]\n");
    return 2;
}

int main(int argc, char **argv)
{
    size_t n = 100000;
    int d = 512, k = 64, iters = 20, reps = 3, mb = 0, rc = 1, nc;
    uint64_t seed = 1;
    const char *data_out = NULL, *init_out = NULL, *data_in = NULL, *init_in = NULL;
    float *x = NULL, *init = NULL, *centres = NULL, *g = NULL;
    double *t = NULL, inertia = 0.0;
    ns_kmeans_result r = {0};
    ns_kmeans_opts o = ns_kmeans_default_opts();
    ns_status st = NS_OK;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage();
        if (!strcmp(a, "--n"))
            n = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--d"))
            d = atoi(v);
        else if (!strcmp(a, "--k"))
            k = atoi(v);
        else if (!strcmp(a, "--iters"))
            iters = atoi(v);
        else if (!strcmp(a, "--reps"))
            reps = atoi(v);
        else if (!strcmp(a, "--seed"))
            seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--data-out"))
            data_out = v;
        else if (!strcmp(a, "--init-out"))
            init_out = v;
        else if (!strcmp(a, "--data-in"))
            data_in = v;
        else if (!strcmp(a, "--init-in"))
            init_in = v;
        else if (!strcmp(a, "--minibatch"))
            mb = atoi(v);
        else
            return usage();
        i++;
    }
    if (n < 1 || d < 1 || k < 1 || (size_t)k > n || iters < 1 || reps < 1 || mb < 0 ||
        !data_in != !init_in)
        return usage();
    nc = 2 * k;
    x = malloc(n * (size_t)d * sizeof *x);
    init = malloc((size_t)k * d * sizeof *init);
    centres = malloc((size_t)nc * d * sizeof *centres);
    g = malloc(n * (size_t)k * sizeof *g);
    t = malloc((size_t)reps * sizeof *t);
    if (!x || !init || !centres || !g || !t) {
        fprintf(stderr, "kmeans_bench: out of memory\n");
        goto done;
    }
    if (data_in) {
        if ((st = read_raw(data_in, x, n * (size_t)d * sizeof *x)) != NS_OK ||
            (st = read_raw(init_in, init, (size_t)k * d * sizeof *init)) != NS_OK)
            goto done;
    } else {
        uint64_t s = seed;
        for (size_t i = 0; i < (size_t)nc * d; i++)
            centres[i] = 0.3f * unif(&s);
        for (size_t i = 0; i < n; i++) {
            const float *ci = centres + (next_u64(&s) % (uint64_t)nc) * (size_t)d;
            for (int j = 0; j < d; j++)
                x[i * (size_t)d + j] = ci[j] + unif(&s);
        }
        o.k = k;
        o.seed = seed;
        o.max_iter = 0;
        if ((st = ns_kmeans_fit(x, n, d, &o, &r)) != NS_OK)
            goto done;
        memcpy(init, r.centroids, (size_t)k * d * sizeof *init);
        ns_kmeans_result_release(&r);
    }
    if (data_out && (st = write_raw(data_out, x, n * (size_t)d * sizeof *x)) != NS_OK)
        goto done;
    if (init_out && (st = write_raw(init_out, init, (size_t)k * d * sizeof *init)) != NS_OK)
        goto done;

    /* The floor: one warm-up call faults g in, then the median of reps + 2. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, k, d, -2.0f, x, d, init, d, 0.0f,
                g, k);
    {
        double ts[16];
        int m = reps + 2 < 16 ? reps + 2 : 16;
        for (int i = 0; i < m; i++) {
            double t0 = now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, k, d, -2.0f, x, d, init,
                        d, 0.0f, g, k);
            ts[i] = now() - t0;
        }
        printf("sgemm_ms %.3f\n", 1e3 * median(ts, m));
    }

    o.k = k;
    o.init = init;
    o.max_iter = iters;
    o.tol = 0.0;
    for (int i = 0; i < reps; i++) {
        double t0 = now();
        if ((st = ns_kmeans_fit(x, n, d, &o, &r)) != NS_OK)
            goto done;
        t[i] = (now() - t0) / r.iterations;
        inertia = r.inertia;
        if (i + 1 < reps)
            ns_kmeans_result_release(&r);
    }
    printf("ours_ms_per_iter %.3f\n", 1e3 * median(t, reps));
    printf("ours_iterations %d\n", r.iterations);
    printf("ours_inertia %.10g\n", inertia);
    ns_kmeans_result_release(&r);

    if (mb > 0) {
        mem_src src = {.x = x, .n = n, .pos = 0, .d = d};
        ns_kmeans_mb_opts mo = ns_kmeans_mb_default_opts();
        double t0;
        mo.k = k;
        mo.batch = (size_t)mb;
        mo.seed = seed;
        mo.init = init;
        t0 = now();
        if ((st = ns_kmeans_fit_minibatch(mem_next, mem_rewind, &src, d, &mo, &r)) != NS_OK)
            goto done;
        printf("minibatch_s %.3f\n", now() - t0);
        printf("minibatch_batches %d\n", r.iterations);
        printf("minibatch_inertia %.10g\n", r.inertia);
        ns_kmeans_result_release(&r);
    }
    rc = 0;
done:
    if (st != NS_OK)
        fprintf(stderr, "kmeans_bench: %s: %s\n", ns_strerror(st), ns_errmsg());
    ns_kmeans_result_release(&r);
    free(x), free(init), free(centres), free(g), free(t);
    return rc;
}
