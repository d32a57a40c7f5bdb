/* test_kmeans.c -- k-means against the plain C reference (on the AVX-512
 * kernel and on the sgemm path), the distance kernel against double dot
 * products, determinism across seeds and thread counts, monotone inertia,
 * empty-cluster repair, blobs; mini-batch k-means against full Lloyd, its
 * determinism and its errors. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "../src/detect/kmeans_gemm.h"
#include "detect_fixtures.h"
#include "helpers.h"
#include "nightshift/kmeans.h"

/* The GEMM paths of ns_kmeans_*: the kernel where the CPU has it (else the
 * sgemm again), and the sgemm forced. */
static const char *const gemm_paths[] = {"auto", "blas"};

static double dist2_d(const float *a, const float *b, int d)
{
    double s = 0.0;
    for (int t = 0; t < d; t++)
        s += ((double)a[t] - b[t]) * ((double)a[t] - b[t]);
    return s;
}

/* Fast assign vs reference, on both GEMM paths: indices equal unless the two
 * centroids are within 1e-5 relative of each other (a tie in float); dist2
 * within 1e-5. */
START_TEST(test_assign_matches_ref)
{
    static const struct { size_t n; int d, k; } sz[] = {
        {1, 1, 1}, {7, 2, 7}, {100, 3, 5}, {5000, 17, 10}, {9000, 64, 33}, {3000, 200, 70}};
    setenv("NS_KMEANS_GEMM", gemm_paths[_i], 1);
    for (size_t s = 0; s < sizeof sz / sizeof sz[0]; s++) {
        size_t n = sz[s].n;
        int d = sz[s].d, k = sz[s].k, ties = 0;
        float *x = ns_test_rand_mat(n, d, 11 + s), *c = ns_test_rand_mat((size_t)k, d, 97 + s);
        int *a = malloc(n * sizeof *a), *ar = malloc(n * sizeof *ar);
        float *dd = malloc(n * sizeof *dd), *dr = malloc(n * sizeof *dr);
        ck_assert_ns_ok(ns_kmeans_assign(x, n, d, c, k, a, dd));
        ck_assert_ns_ok(ns_ref_kmeans_assign(x, n, d, c, k, ar, dr));
        for (size_t i = 0; i < n; i++) {
            ck_assert_msg(fabsf(dd[i] - dr[i]) <= 1e-5f * (1.0f + dr[i]),
                          "n=%zu row %zu dist %g vs ref %g", n, i, dd[i], dr[i]);
            if (a[i] != ar[i]) {
                double da = dist2_d(x + i * d, c + (size_t)a[i] * d, d);
                double db = dist2_d(x + i * d, c + (size_t)ar[i] * d, d);
                ck_assert_msg(fabs(da - db) <= 1e-5 * (1.0 + db), "n=%zu row %zu: %d vs ref %d",
                              n, i, a[i], ar[i]);
                ties++;
            }
        }
        ck_assert_int_le(ties, (int)(n / 1000) + 1);
        free(x), free(c), free(a), free(ar), free(dd), free(dr);
    }
}
END_TEST

/* One Lloyd iteration from given centres equals the naive step (both paths). */
START_TEST(test_lloyd_step_matches_ref)
{
    size_t n = 6000;
    int d = 24, k = 9;
    float *x = ns_test_rand_mat(n, d, 5), *cref = malloc((size_t)k * d * sizeof *cref);
    int *ar = malloc(n * sizeof *ar);
    ns_kmeans_opts o = ns_kmeans_default_opts();
    ns_kmeans_result r;
    setenv("NS_KMEANS_GEMM", gemm_paths[_i], 1);
    o.k = k;
    o.init = x; /* the first k points: every cluster keeps at least its seed */
    o.max_iter = 1;
    o.tol = 0.0;
    ck_assert_ns_ok(ns_kmeans_fit(x, n, d, &o, &r));
    ck_assert_int_eq(r.iterations, 1);
    ck_assert_ns_ok(ns_ref_kmeans_step(x, n, d, x, k, ar, cref));
    for (size_t i = 0; i < (size_t)k * d; i++)
        ck_assert_msg(fabsf(r.centroids[i] - cref[i]) <= 1e-5f, "centroid value %zu: %g vs %g", i,
                      r.centroids[i], cref[i]);
    /* Reported assignment is to the final centres. */
    ck_assert_ns_ok(ns_ref_kmeans_assign(x, n, d, r.centroids, k, ar, NULL));
    {
        size_t diff = 0, sum = 0;
        double inertia = 0.0;
        for (size_t i = 0; i < n; i++) {
            diff += r.assign[i] != ar[i];
            inertia += dist2_d(x + i * d, r.centroids + (size_t)r.assign[i] * d, d);
        }
        for (int j = 0; j < k; j++)
            sum += r.counts[j];
        ck_assert_uint_le(diff, 2);
        ck_assert_uint_eq(sum, n);
        ck_assert_msg(fabs(inertia - r.inertia) <= 1e-9 * inertia, "inertia %g vs %g", r.inertia,
                      inertia);
    }
    ns_kmeans_result_release(&r);
    free(x), free(cref), free(ar);
}
END_TEST

/* The AVX-512 distance kernel, g = -2 x c^T, on shapes that hit every tail
 * (rows not a multiple of the micro-kernel's 6, centroids not a multiple of
 * 16 or 64, d shorter than, equal to and longer than a chunk), x at an
 * unaligned address:
 *  - against double dot products: |g - ref| <= gamma_d * sum_t |2 x c|,
 *    gamma_d = d u / (1 - d u), u = 2^-24: the bound for d rounded
 *    additions of exact products (each FMA rounds once);
 *  - bit for bit against the summation order kmeans_gemm.h promises (one
 *    fmaf chain over t), whatever the chunk size: what makes k-means results
 *    independent of tiles and threads;
 *  - nothing written past g's m x k values. */
START_TEST(test_gemm_kernel_matches_ref)
{
    static const int ms[] = {1, 5, 7, 512}, ks[] = {1, 3, 16, 17, 64, 100};
    static const int ds[] = {1, 7, 16, 130, 512}, kcs[] = {0, 3, 16, 200};
    const float guard = 12345.0f;
    if (!ns_kmeans_gemm_supported())
        return; /* no AVX-512F here: k-means keeps the sgemm, tested above */
    for (size_t di = 0; di < sizeof ds / sizeof ds[0]; di++)
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
            for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++) {
                int m = ms[mi], k = ks[ki], d = ds[di];
                uint64_t seed = 1000 + 100 * di + 10 * ki + mi;
                float *xbuf = ns_test_rand_mat((size_t)m * d + 1, 1, seed), *x = xbuf + 1;
                float *c = ns_test_rand_mat((size_t)k, d, seed + 7);
                float *ct = aligned_alloc(64, ns_kmeans_gemm_floats(k, d) * sizeof *ct);
                float *g = malloc(((size_t)m * k + 16) * sizeof *g);
                float *chain = malloc((size_t)m * k * sizeof *chain);
                double *ref = malloc((size_t)m * k * sizeof *ref);
                double *mag = malloc((size_t)m * k * sizeof *mag);
                double gamma = d * 0x1.0p-24 / (1.0 - d * 0x1.0p-24);
                ck_assert(ct && g && chain && ref && mag);
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < k; j++) {
                        const float *xi = x + (size_t)i * d, *cj = c + (size_t)j * d;
                        size_t e = (size_t)i * k + j;
                        ref[e] = mag[e] = 0.0;
                        chain[e] = 0.0f;
                        for (int t = 0; t < d; t++) {
                            ref[e] += -2.0 * xi[t] * cj[t];
                            mag[e] += fabs(2.0 * xi[t] * cj[t]);
                            chain[e] = fmaf(xi[t], -2.0f * cj[t], chain[e]);
                        }
                    }
                ns_kmeans_gemm_pack(c, k, d, ct);
                for (size_t kci = 0; kci < sizeof kcs / sizeof kcs[0]; kci++) {
                    size_t bad = SIZE_MAX, inexact = SIZE_MAX; /* first failures */
                    int overrun = 0;
                    for (int e = 0; e < 16; e++)
                        g[(size_t)m * k + e] = guard;
                    ns_kmeans_gemm(ct, k, d, x, m, g, kcs[kci]);
                    for (int e = 0; e < 16; e++)
                        overrun |= g[(size_t)m * k + e] != guard;
                    for (size_t e = (size_t)m * k; e-- > 0;) {
                        if (!(fabs(g[e] - ref[e]) <= gamma * mag[e]))
                            bad = e;
                        if (g[e] != chain[e])
                            inexact = e;
                    }
                    /* One assertion per case: Check reports each one to the
                     * parent through a pipe, too slow per value. */
                    ck_assert_msg(!overrun, "m=%d k=%d d=%d kc=%d: wrote past g", m, k, d,
                                  kcs[kci]);
                    ck_assert_msg(bad == SIZE_MAX,
                                  "m=%d k=%d d=%d kc=%d g[%zu][%zu] = %.9g, ref %.9g", m, k, d,
                                  kcs[kci], bad / k, bad % k, g[bad], ref[bad]);
                    ck_assert_msg(inexact == SIZE_MAX,
                                  "m=%d k=%d d=%d kc=%d g[%zu][%zu] = %.9g, fma chain %.9g", m, k,
                                  d, kcs[kci], inexact / k, inexact % k, g[inexact],
                                  chain[inexact]);
                }
                free(xbuf), free(c), free(ct), free(g), free(chain), free(ref), free(mag);
            }
}
END_TEST

static void assert_same(const ns_kmeans_result *a, const ns_kmeans_result *b)
{
    ck_assert_int_eq(a->iterations, b->iterations);
    ck_assert(a->inertia == b->inertia);
    ck_assert(memcmp(a->centroids, b->centroids, (size_t)a->k * a->d * sizeof(float)) == 0);
    ck_assert(memcmp(a->assign, b->assign, a->n * sizeof(int)) == 0);
    ck_assert(memcmp(a->counts, b->counts, (size_t)a->k * sizeof(size_t)) == 0);
}

START_TEST(test_same_seed_identical)
{
    size_t n = 3000;
    int d = 16;
    float *x = ns_test_rand_mat(n, d, 21);
    ns_kmeans_opts o = ns_kmeans_default_opts();
    ns_kmeans_result a, b, c;
    o.k = 12;
    o.seed = 1234;
    ck_assert_ns_ok(ns_kmeans_fit(x, n, d, &o, &a));
    ck_assert_ns_ok(ns_kmeans_fit(x, n, d, &o, &b));
    assert_same(&a, &b);
    o.seed = 99;
    ck_assert_ns_ok(ns_kmeans_fit(x, n, d, &o, &c));
    ck_assert(memcmp(a.centroids, c.centroids, (size_t)o.k * d * sizeof(float)) != 0);
    ns_kmeans_result_release(&a);
    ns_kmeans_result_release(&b);
    ns_kmeans_result_release(&c);
    ns_kmeans_result_release(&c); /* idempotent */
    free(x);
}
END_TEST

START_TEST(test_threads_identical)
{
    size_t n = 10000; /* three row tiles */
    int d = 130, k = 20; /* three column blocks */
    float *x = ns_test_rand_mat(n, d, 31);
    ns_kmeans_opts o = ns_kmeans_default_opts();
    ns_kmeans_result r1, rt;
    o.k = k;
    o.max_iter = 15;
    o.threads = 1;
    ck_assert_ns_ok(ns_kmeans_fit(x, n, d, &o, &r1));
    for (int t = 2; t <= 4; t++) {
        o.threads = t;
        ck_assert_ns_ok(ns_kmeans_fit(x, n, d, &o, &rt));
        assert_same(&r1, &rt);
        ns_kmeans_result_release(&rt);
    }
    ns_kmeans_result_release(&r1);
    free(x);
}
END_TEST

START_TEST(test_inertia_monotone)
{
    size_t n = 4000;
    int d = 8;
    float *x = ns_test_rand_mat(n, d, 41);
    ns_kmeans_opts o = ns_kmeans_default_opts();
    double prev = INFINITY;
    o.k = 15;
    o.tol = 0.0;
    for (int it = 0; it <= 12; it++) {
        ns_kmeans_result r;
        o.max_iter = it;
        ck_assert_ns_ok(ns_kmeans_fit(x, n, d, &o, &r));
        ck_assert_msg(r.inertia <= prev * (1.0 + 1e-9), "iteration %d: inertia %g after %g", it,
                      r.inertia, prev);
        if (it == 12)
            ck_assert_msg(r.inertia < 0.9 * (double)n * d / 3.0, "inertia %g barely fell",
                          r.inertia);
        prev = r.inertia;
        ns_kmeans_result_release(&r);
    }
    free(x);
}
END_TEST

/* A centre far from all data empties at once; repair must give it a point. */
START_TEST(test_empty_cluster_repair)
{
    size_t n = 400;
    int d = 2, k = 3;
    uint64_t s = 7;
    float *x = malloc(n * d * sizeof *x);
    float init[6] = {-5.0f, 0.0f, 5.0f, 0.0f, 1000.0f, 1000.0f};
    ns_kmeans_opts o = ns_kmeans_default_opts();
    ns_kmeans_result r;
    for (size_t i = 0; i < n; i++) {
        x[i * d] = (i % 2 ? 5.0f : -5.0f) + (float)ns_test_rng_gauss(&s);
        x[i * d + 1] = (float)ns_test_rng_gauss(&s);
    }
    o.k = k;
    o.init = init;
    ck_assert_ns_ok(ns_kmeans_fit(x, n, d, &o, &r));
    for (int j = 0; j < k; j++) {
        ck_assert_uint_gt(r.counts[j], 0);
        ck_assert(fabsf(r.centroids[j * d]) < 20.0f && fabsf(r.centroids[j * d + 1]) < 20.0f);
    }
    ns_kmeans_result_release(&r);
    free(x);
}
END_TEST

/* 3 distinct points, 10 copies each, k = 5: two clusters must stay empty;
 * the fit still succeeds with finite centres and zero inertia. */
START_TEST(test_duplicates_more_clusters_than_points)
{
    size_t n = 30;
    int d = 4, k = 5;
    float *x = malloc(n * d * sizeof *x);
    ns_kmeans_opts o = ns_kmeans_default_opts();
    ns_kmeans_result r;
    size_t sum = 0, nonempty = 0;
    for (size_t i = 0; i < n; i++)
        for (int t = 0; t < d; t++)
            x[i * d + t] = (float)((i % 3) * 10 + t);
    o.k = k;
    o.seed = 3;
    ck_assert_ns_ok(ns_kmeans_fit(x, n, d, &o, &r));
    ck_assert(r.inertia == 0.0);
    for (int j = 0; j < k; j++) {
        sum += r.counts[j];
        nonempty += r.counts[j] > 0;
        for (int t = 0; t < d; t++)
            ck_assert(isfinite(r.centroids[j * d + t]));
    }
    ck_assert_uint_eq(sum, n);
    ck_assert_uint_eq(nonempty, 3);
    ns_kmeans_result_release(&r);
    free(x);
}
END_TEST

START_TEST(test_blobs_recovered)
{
    enum { B = 6, PER = 300, D = 10 };
    size_t n = B * PER;
    uint64_t s = 17;
    float *x = malloc(n * D * sizeof *x);
    int *label = malloc(n * sizeof *label);
    int map[B];
    ns_kmeans_opts o = ns_kmeans_default_opts();
    ns_kmeans_result r;
    for (size_t i = 0; i < n; i++) {
        label[i] = (int)(ns_test_rng_next(&s) % B);
        for (int t = 0; t < D; t++)
            x[i * D + t] = (t == label[i] ? 20.0f : 0.0f) + 0.3f * (float)ns_test_rng_gauss(&s);
    }
    o.k = B;
    o.seed = 5;
    ck_assert_ns_ok(ns_kmeans_fit(x, n, D, &o, &r));
    for (int b = 0; b < B; b++)
        map[b] = -1;
    for (size_t i = 0; i < n; i++) {
        if (map[label[i]] < 0)
            map[label[i]] = r.assign[i];
        ck_assert_int_eq(r.assign[i], map[label[i]]);
    }
    for (int a = 0; a < B; a++)
        for (int b = a + 1; b < B; b++)
            ck_assert_int_ne(map[a], map[b]);
    for (int b = 0; b < B; b++)
        ck_assert(fabsf(r.centroids[map[b] * D + b] - 20.0f) < 0.2f);
    ns_kmeans_result_release(&r);
    free(x), free(label);
}
END_TEST

START_TEST(test_bad_args)
{
    float x[12] = {0};
    int a[6];
    ns_kmeans_opts o = ns_kmeans_default_opts();
    ns_kmeans_result r;
    o.k = 0;
    ck_assert_ns_status(ns_kmeans_fit(x, 6, 2, &o, &r), NS_ERR_USAGE);
    ck_assert_ptr_null(r.centroids);
    o.k = 7;
    ck_assert_ns_status(ns_kmeans_fit(x, 6, 2, &o, &r), NS_ERR_USAGE);
    o.k = 2;
    ck_assert_ns_status(ns_kmeans_fit(x, 6, 0, &o, &r), NS_ERR_USAGE);
    ck_assert_ns_status(ns_kmeans_fit(x, 0, 2, &o, &r), NS_ERR_USAGE);
    ck_assert_ns_status(ns_kmeans_fit(NULL, 6, 2, &o, &r), NS_ERR_USAGE);
    ck_assert_ns_status(ns_kmeans_fit(x, 6, 2, NULL, &r), NS_ERR_USAGE);
    o.max_iter = -1;
    ck_assert_ns_status(ns_kmeans_fit(x, 6, 2, &o, &r), NS_ERR_USAGE);
    o.max_iter = 10;
    o.tol = -1.0;
    ck_assert_ns_status(ns_kmeans_fit(x, 6, 2, &o, &r), NS_ERR_USAGE);
    o.tol = NAN;
    ck_assert_ns_status(ns_kmeans_fit(x, 6, 2, &o, &r), NS_ERR_USAGE);
    ck_assert_ns_status(ns_kmeans_assign(x, 6, 2, x, 0, a, NULL), NS_ERR_USAGE);
    ck_assert_ns_status(ns_kmeans_assign(x, 6, 0, x, 2, a, NULL), NS_ERR_USAGE);
    ck_assert_ns_status(ns_kmeans_assign(x, 6, 2, x, 2, NULL, NULL), NS_ERR_USAGE);
    ck_assert_ns_status(ns_ref_kmeans_assign(x, 6, 2, x, 0, a, NULL), NS_ERR_USAGE);
    /* k == n is fine. */
    o.k = 6;
    o.tol = 0.0;
    ck_assert_ns_ok(ns_kmeans_fit(x, 6, 2, &o, &r));
    ns_kmeans_result_release(&r);
}
END_TEST

/* ---- mini-batch ------------------------------------------------------------------ */

/* A set in memory served at most `chunk` rows per call (fewer than asked, as
 * a reader at a file boundary would), optionally failing or changing. */
typedef struct src {
    const float *x;
    size_t n, pos, chunk;
    int d, rewinds, fail_at_rewind; /* fail_at_rewind: that rewind() fails (0: never) */
    size_t shrink_at;               /* from the 3rd rewind on, the set ends there (0: never) */
} src;

static ns_status src_next(void *ctx, float *buf, size_t cap, size_t *got)
{
    src *s = ctx;
    size_t end = s->shrink_at && s->rewinds >= 3 ? s->shrink_at : s->n;
    size_t m = end - s->pos < cap ? end - s->pos : cap;
    if (m > s->chunk)
        m = s->chunk;
    memcpy(buf, s->x + s->pos * s->d, m * s->d * sizeof *buf);
    s->pos += m;
    *got = m;
    return NS_OK;
}

static ns_status src_rewind(void *ctx)
{
    src *s = ctx;
    s->rewinds++;
    if (s->fail_at_rewind && s->rewinds == s->fail_at_rewind)
        return ns_error(NS_ERR_IO, "test source: rewind %d fails", s->rewinds);
    s->pos = 0;
    return NS_OK;
}

/* B well-separated blobs in D dimensions, rows in random order. */
static float *blobs(size_t n, int D, int B, uint64_t seed, int *label)
{
    float *x = malloc(n * D * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < n; i++) {
        label[i] = (int)(ns_test_rng_next(&seed) % (uint64_t)B);
        for (int t = 0; t < D; t++)
            x[i * D + t] = (t % B == label[i] ? 10.0f : 0.0f) + 0.5f * (float)ns_test_rng_gauss(&seed);
    }
    return x;
}

/* Same partition as full Lloyd up to a permutation of labels, inertia within
 * 2 %, and every point counted. */
START_TEST(test_minibatch_matches_lloyd)
{
    enum { B = 8, D = 24 };
    size_t n = 20000;
    int *label = malloc(n * sizeof *label), map[B], used[B] = {0};
    float *x = blobs(n, D, B, 23, label);
    src s = {.x = x, .n = n, .chunk = 700, .d = D};
    ns_kmeans_opts o = ns_kmeans_default_opts();
    ns_kmeans_mb_opts mo = ns_kmeans_mb_default_opts();
    ns_kmeans_result full, mb;
    size_t sum = 0;
    o.k = mo.k = B;
    o.seed = mo.seed = 4;
    mo.batch = 1024;
    mo.epochs = 2;
    ck_assert_ns_ok(ns_kmeans_fit(x, n, D, &o, &full));
    ck_assert_ns_ok(ns_kmeans_fit_minibatch(src_next, src_rewind, &s, D, &mo, &mb));
    ck_assert_uint_eq(mb.n, n);
    ck_assert_int_eq(mb.k, B);
    ck_assert_int_eq(mb.d, D);
    ck_assert_int_eq(mb.iterations, 2 * 20); /* ceil(20000 / 1024) batches per epoch */
    ck_assert_int_eq(s.rewinds, 4);           /* seeding, two epochs, the final pass */
    for (int j = 0; j < B; j++)
        map[j] = -1;
    for (size_t i = 0; i < n; i++) {
        int a = full.assign[i];
        if (map[a] < 0) {
            ck_assert_int_eq(used[mb.assign[i]], 0);
            used[mb.assign[i]] = 1;
            map[a] = mb.assign[i];
        }
        ck_assert_int_eq(mb.assign[i], map[a]);
    }
    for (int j = 0; j < B; j++)
        sum += mb.counts[j];
    ck_assert_uint_eq(sum, n);
    ck_assert_msg(fabs(mb.inertia - full.inertia) <= 0.02 * full.inertia, "inertia %g vs Lloyd %g",
                  mb.inertia, full.inertia);
    {
        double inertia = 0.0;
        for (size_t i = 0; i < n; i++)
            inertia += dist2_d(x + i * D, mb.centroids + (size_t)mb.assign[i] * D, D);
        ck_assert_msg(fabs(inertia - mb.inertia) <= 1e-9 * inertia, "inertia %g vs %g",
                      mb.inertia, inertia);
    }
    ns_kmeans_result_release(&full);
    ns_kmeans_result_release(&mb);
    free(x), free(label);
}
END_TEST

/* Deterministic for the seed, whatever the thread count or the chunking of
 * the source; another seed gives other centroids. */
START_TEST(test_minibatch_deterministic)
{
    size_t n = 6000;
    int D = 40;
    float *x = ns_test_rand_mat(n, D, 77);
    ns_kmeans_mb_opts mo = ns_kmeans_mb_default_opts();
    ns_kmeans_result a, b;
    mo.k = 17;
    mo.batch = 1500;
    mo.seed = 8;
    mo.threads = 1;
    {
        src s = {.x = x, .n = n, .chunk = n, .d = D};
        ck_assert_ns_ok(ns_kmeans_fit_minibatch(src_next, src_rewind, &s, D, &mo, &a));
    }
    for (int t = 2; t <= 3; t++) {
        src s = {.x = x, .n = n, .chunk = 333, .d = D};
        mo.threads = t;
        ck_assert_ns_ok(ns_kmeans_fit_minibatch(src_next, src_rewind, &s, D, &mo, &b));
        assert_same(&a, &b);
        ns_kmeans_result_release(&b);
    }
    {
        src s = {.x = x, .n = n, .chunk = n, .d = D};
        mo.seed = 9;
        ck_assert_ns_ok(ns_kmeans_fit_minibatch(src_next, src_rewind, &s, D, &mo, &b));
        ck_assert(memcmp(a.centroids, b.centroids, (size_t)mo.k * D * sizeof(float)) != 0);
        ns_kmeans_result_release(&b);
    }
    /* Given starting centres: the first batch's means (weight of the start 0). */
    {
        src s = {.x = x, .n = n, .chunk = n, .d = D};
        float *cref = malloc((size_t)mo.k * D * sizeof *cref);
        int *ar = malloc(n * sizeof *ar);
        mo.init = x + 100 * D;
        mo.epochs = 1;
        mo.batch = n; /* one batch: exactly one Lloyd step */
        ck_assert_ns_ok(ns_kmeans_fit_minibatch(src_next, src_rewind, &s, D, &mo, &b));
        ck_assert_ns_ok(ns_ref_kmeans_step(x, n, D, mo.init, mo.k, ar, cref));
        ck_assert_int_eq(b.iterations, 1);
        for (size_t i = 0; i < (size_t)mo.k * D; i++)
            ck_assert_msg(fabsf(b.centroids[i] - cref[i]) <= 1e-5f, "centroid value %zu: %g vs %g",
                          i, b.centroids[i], cref[i]);
        ns_kmeans_result_release(&b);
        free(cref), free(ar);
    }
    ns_kmeans_result_release(&a);
    free(x);
}
END_TEST

START_TEST(test_minibatch_errors)
{
    size_t n = 500;
    int D = 4;
    float *x = ns_test_rand_mat(n, D, 3);
    ns_kmeans_mb_opts mo = ns_kmeans_mb_default_opts();
    ns_kmeans_result r;
    src s = {.x = x, .n = n, .chunk = n, .d = D};
    mo.k = 3;
    mo.batch = 64;
    ck_assert_ns_status(ns_kmeans_fit_minibatch(NULL, src_rewind, &s, D, &mo, &r), NS_ERR_USAGE);
    ck_assert_ptr_null(r.centroids);
    ck_assert_ns_status(ns_kmeans_fit_minibatch(src_next, src_rewind, &s, 0, &mo, &r),
                        NS_ERR_USAGE);
    ck_assert_ns_status(ns_kmeans_fit_minibatch(src_next, src_rewind, &s, D, NULL, &r),
                        NS_ERR_USAGE);
    mo.batch = 0;
    ck_assert_ns_status(ns_kmeans_fit_minibatch(src_next, src_rewind, &s, D, &mo, &r),
                        NS_ERR_USAGE);
    mo.batch = 64;
    mo.epochs = 0;
    ck_assert_ns_status(ns_kmeans_fit_minibatch(src_next, src_rewind, &s, D, &mo, &r),
                        NS_ERR_USAGE);
    mo.epochs = 2;
    /* Fewer rows than clusters to seed from. */
    mo.k = 10;
    mo.init_rows = 5;
    ck_assert_ns_status(ns_kmeans_fit_minibatch(src_next, src_rewind, &s, D, &mo, &r),
                        NS_ERR_USAGE);
    mo.k = 3;
    mo.init_rows = 0;
    /* The source's failure comes back as it is, r released. */
    s.fail_at_rewind = 3;
    ck_assert_ns_status(ns_kmeans_fit_minibatch(src_next, src_rewind, &s, D, &mo, &r), NS_ERR_IO);
    ck_assert_ptr_null(r.centroids);
    ck_assert_ptr_null(r.assign);
    /* A set that shrinks between passes. */
    s.fail_at_rewind = 0;
    s.rewinds = 0;
    s.shrink_at = 400;
    ck_assert_ns_status(ns_kmeans_fit_minibatch(src_next, src_rewind, &s, D, &mo, &r),
                        NS_ERR_CORRUPT);
    /* An empty set. */
    s.shrink_at = 0;
    s.n = 0;
    mo.init = x;
    ck_assert_ns_status(ns_kmeans_fit_minibatch(src_next, src_rewind, &s, D, &mo, &r),
                        NS_ERR_USAGE);
    free(x);
}
END_TEST

static Suite *kmeans_suite(void)
{
    Suite *s = suite_create("kmeans");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_assign_matches_ref, 0, 2);
    tcase_add_loop_test(tc, test_lloyd_step_matches_ref, 0, 2);
    tcase_add_test(tc, test_gemm_kernel_matches_ref);
    tcase_add_test(tc, test_same_seed_identical);
    tcase_add_test(tc, test_threads_identical);
    tcase_add_test(tc, test_inertia_monotone);
    tcase_add_test(tc, test_empty_cluster_repair);
    tcase_add_test(tc, test_duplicates_more_clusters_than_points);
    tcase_add_test(tc, test_blobs_recovered);
    tcase_add_test(tc, test_bad_args);
    tcase_add_test(tc, test_minibatch_matches_lloyd);
    tcase_add_test(tc, test_minibatch_deterministic);
    tcase_add_test(tc, test_minibatch_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ns_test_run(kmeans_suite());
}
