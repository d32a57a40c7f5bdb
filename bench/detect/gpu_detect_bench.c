/* gpu_detect_bench.c -- times the detect stage's CUDA kernels (kernels/ns_cuda.h)
 * on the sizes nightshift meets, for bench/detect/gpu_detect.py to stand next to.
 *
 *   nightshift-bench-detect [--reps R] [--iters I] [--scale F]
 *
 * Workloads (random L2-normalised float32 rows, fixed seed; F scales every row
 * count, e.g. 0.1 for a quick look):
 *   kmeans  ns_cuda_kmeans_fit, n 100000 x d 512, k 64, init = the first k rows,
 *           tol 0: run with max_iter 1 and 1 + I; ms_per_iter is the difference
 *           over I, setup the max_iter 1 run (upload, two assignment passes).
 *   knn     ns_cuda_knn_search, 50000 queries x 20000 base x 512, k 5, no groups.
 *   mmd     ns_cuda_mmd_block_sums, 30000 x 512 in 300 blocks of 100 rows,
 *           sigma 1.
 * Every figure is the best of R runs after one warm-up, host arrays in and out
 * (uploads and downloads included, as callers see them).  Prints one line per
 * figure, `<name> <value>`, then a table.  Exit 77 without a GPU.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ns_cuda.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static float *embeddings(size_t rows, int d, uint64_t s)
{
    float *x = malloc(rows * (size_t)d * sizeof *x);
    if (!x)
        return NULL;
    for (size_t i = 0; i < rows; i++) {
        float *r = x + i * (size_t)d;
        double norm = 0.0;
        for (int t = 0; t < d; t++) {
            uint64_t z = (s += 0x9E3779B97F4A7C15ull);
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            z ^= z >> 31;
            r[t] = (float)((double)(z >> 11) * 0x1.0p-52 - 1.0);
            norm += (double)r[t] * r[t];
        }
        for (int t = 0; t < d; t++)
            r[t] = (float)(r[t] / sqrt(norm));
    }
    return x;
}

static int fail(const char *what, ns_status st)
{
    fprintf(stderr, "nightshift-bench-detect: %s: %s: %s\n", what, ns_strerror(st), ns_errmsg());
    return st == NS_ERR_NODEV ? 77 : 1;
}

static double fit_ms(const float *x, size_t n, int d, int k, int iters, ns_status *st)
{
    ns_kmeans_opts o = ns_kmeans_default_opts();
    ns_kmeans_result r = {0};
    double t0;
    o.k = k;
    o.max_iter = iters;
    o.tol = 0.0;
    o.init = x;
    t0 = now_ms();
    *st = ns_cuda_kmeans_fit(x, n, d, &o, &r);
    t0 = now_ms() - t0;
    ns_kmeans_result_release(&r);
    return t0;
}

int main(int argc, char **argv)
{
    int reps = 3, iters = 20, d = 512, k = 64, knn_k = 5, rc = 0;
    double scale = 1.0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
            iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--scale") && i + 1 < argc)
            scale = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--reps R] [--iters I] [--scale F]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1 || iters < 1 || !(scale > 0.0)) {
        fprintf(stderr, "nightshift-bench-detect: need reps >= 1, iters >= 1, scale > 0\n");
        return 2;
    }
    size_t n_km = (size_t)(100000 * scale), nq = (size_t)(50000 * scale);
    size_t nb = (size_t)(20000 * scale), nblocks = (size_t)(300 * scale);
    size_t n_mmd = nblocks * 100;
    if (n_km < (size_t)k || nb < (size_t)knn_k || nq < 1 || nblocks < 2) {
        fprintf(stderr, "nightshift-bench-detect: --scale %g is too small\n", scale);
        return 2;
    }

    ns_cuda_device dev[NS_CUDA_MAX_DEVICES];
    int ndev = 0;
    ns_status st = ns_cuda_devices(dev, NS_CUDA_MAX_DEVICES, &ndev);
    if (st != NS_OK)
        return fail("devices", st);
    printf("device %s\n", dev[0].name);

    float *x = embeddings(n_km, d, 1), *b = embeddings(nb, d, 2);
    float *dist = malloc(nq * (size_t)knn_k * sizeof *dist);
    int64_t *idx = malloc(nq * (size_t)knn_k * sizeof *idx);
    size_t *off = malloc((nblocks + 1) * sizeof *off);
    double *S = malloc(nblocks * nblocks * sizeof *S);
    double km_setup = INFINITY, km_long = INFINITY, knn = INFINITY, mmd = INFINITY;
    if (!x || !b || !dist || !idx || !off || !S) {
        fprintf(stderr, "nightshift-bench-detect: out of memory\n");
        rc = 1;
        goto done;
    }
    for (size_t a = 0; a <= nblocks; a++)
        off[a] = a * 100;

    /* Warm-up: context, cuBLAS handle, buffers at full size. */
    fit_ms(x, n_km, d, k, 1, &st);
    if (st != NS_OK) {
        rc = fail("kmeans warm-up", st);
        goto done;
    }
    for (int r = 0; r < reps; r++) {
        double t1 = fit_ms(x, n_km, d, k, 1, &st);
        double t2 = st == NS_OK ? fit_ms(x, n_km, d, k, 1 + iters, &st) : 0.0;
        if (st != NS_OK) {
            rc = fail("kmeans", st);
            goto done;
        }
        km_setup = fmin(km_setup, t1);
        km_long = fmin(km_long, t2);
    }
    /* q: the first nq rows of the k-means data (n_km >= nq). */
    for (int r = 0; r <= reps; r++) {
        double t0 = now_ms();
        if ((st = ns_cuda_knn_search(x, nq, b, nb, d, knn_k, NULL, NULL, 0, dist, idx)) != NS_OK) {
            rc = fail("knn", st);
            goto done;
        }
        if (r > 0)
            knn = fmin(knn, now_ms() - t0);
    }
    for (int r = 0; r <= reps; r++) {
        double t0 = now_ms();
        if ((st = ns_cuda_mmd_block_sums(x, n_mmd, d, off, nblocks, 1.0, 0, S)) != NS_OK) {
            rc = fail("mmd", st);
            goto done;
        }
        if (r > 0)
            mmd = fmin(mmd, now_ms() - t0);
    }

    printf("kmeans_setup_ms %.3f\n", km_setup);
    printf("kmeans_ms_per_iter %.4f\n", (km_long - km_setup) / iters);
    printf("knn_ms %.3f\n", knn);
    printf("mmd_ms %.3f\n", mmd);
    {
        char w[4][96];
        double ms[4] = {(km_long - km_setup) / iters, km_setup, knn, mmd};
        static const char *name[4] = {"kmeans", "kmeans", "knn", "mmd"};
        snprintf(w[0], sizeof w[0], "%zu x %d, k %d: one Lloyd iteration", n_km, d, k);
        snprintf(w[1], sizeof w[1], "setup: upload, 2 assignment passes");
        snprintf(w[2], sizeof w[2], "%zu q x %zu base x %d, k %d", nq, nb, d, knn_k);
        snprintf(w[3], sizeof w[3], "%zu x %d, %zu blocks of 100", n_mmd, d, nblocks);
        printf("\n%-8s %-44s %12s\n", "kernel", "workload", "ms");
        for (int i = 0; i < 4; i++)
            printf("%-8s %-44s %12.3f\n", name[i], w[i], ms[i]);
    }
    printf("checksums: knn dist[0] %.6f idx[0] %lld; S[0][1] %.6f\n", dist[0], (long long)idx[0],
           S[1]);
done:
    ns_cuda_detect_release();
    free(x);
    free(b);
    free(dist);
    free(idx);
    free(off);
    free(S);
    return rc;
}
