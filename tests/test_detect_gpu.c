/* Detect-stage GPU suite: runs where a CUDA device is present, exits 77
 * (skipped) elsewhere.  ns_cuda_kmeans_assign, ns_cuda_kmeans_fit,
 * ns_cuda_knn_search and ns_cuda_mmd_block_sums against the plain C
 * references (and the CPU fit, which has no reference) on random inputs at
 * several sizes, including sizes that cross the GPU's tile boundaries.
 *
 * Tolerances: the GPU ranks by fp32 GEMM-form distances and the references
 * by exact double ones, so an assignment or neighbour may differ only at a
 * near-tie: the two candidates' exact squared distances within TIE_REL of
 * each other, and at most a handful per run.  Reported distances are
 * recomputed exactly, so they match to DIST_REL.  Centroids match the
 * CPU's to CENT_REL (relative to the data's scale); MMD block sums to
 * MMD_REL (exp of fp32 GEMM-form distances summed in double). */
#include <math.h>
#include <stdint.h>

#include "detect_fixtures.h"
#include "gpu_helpers.h"
#include "nightshift/kmeans.h"
#include "nightshift/knn.h"
#include "nightshift/mmd.h"

#define TIE_REL 1e-5
#define DIST_REL 1e-5
#define CENT_REL 1e-4
#define MMD_REL 1e-5

/* k well-separated blobs (centres in [-8, 8)^d, points within 1 of them). */
static float *blobs(size_t n, int d, int k, uint64_t seed)
{
    float *centres = ns_test_rand_mat((size_t)k, d, seed ^ 0xb10b);
    float *x = ns_test_rand_mat(n, d, seed);
    for (size_t i = 0; i < n; i++)
        for (int t = 0; t < d; t++)
            x[i * d + t] += 8.0f * centres[(i % (size_t)k) * d + t];
    free(centres);
    return x;
}

static double dist2(const float *a, const float *b, int d)
{
    double s = 0.0;
    for (int t = 0; t < d; t++) {
        double u = (double)a[t] - b[t];
        s += u * u;
    }
    return s;
}

/* ---- k-means assignment ------------------------------------------------------ */

static void check_assign(size_t n, int d, int k, uint64_t seed, int dup)
{
    float *x = ns_test_rand_mat(n, d, seed), *c = ns_test_rand_mat((size_t)k, d, seed + 1);
    int *ga = malloc(n * sizeof *ga), *ra = malloc(n * sizeof *ra);
    float *gd = malloc(n * sizeof *gd), *rd = malloc(n * sizeof *rd);
    int ties = 0;
    ck_assert(ga && ra && gd && rd);
    if (dup) /* every odd centroid repeats the one before: ties go to the lower index */
        for (int j = 1; j < k; j += 2)
            memcpy(c + (size_t)j * d, c + (size_t)(j - 1) * d, (size_t)d * sizeof *c);
    ck_assert_ns_ok(ns_cuda_kmeans_assign(x, n, d, c, k, ga, gd));
    ck_assert_ns_ok(ns_ref_kmeans_assign(x, n, d, c, k, ra, rd));
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * d;
        ck_assert_int_ge(ga[i], 0);
        ck_assert_int_lt(ga[i], k);
        if (dup)
            ck_assert_msg(ga[i] % 2 == 0, "row %zu: duplicate centroid %d chosen over %d", i,
                          ga[i], ga[i] - 1);
        double want = dist2(xi, c + (size_t)ga[i] * d, d);
        ck_assert_msg(fabs(gd[i] - want) <= DIST_REL * want + 1e-30,
                      "n=%zu d=%d k=%d row %zu: dist2 %g, exact %g", n, d, k, i, gd[i], want);
        if (ga[i] != ra[i]) {
            double other = dist2(xi, c + (size_t)ra[i] * d, d);
            ties++;
            ck_assert_msg(fabs(want - other) <= TIE_REL * other,
                          "n=%zu d=%d k=%d row %zu: %d (%.9g) vs reference %d (%.9g)", n, d, k,
                          i, ga[i], want, ra[i], other);
        }
    }
    ck_assert_int_le(ties, (int)(n / 1000) + 1);
    free(x);
    free(c);
    free(ga);
    free(ra);
    free(gd);
    free(rd);
}

START_TEST(test_kmeans_assign_vs_ref)
{
    static const struct { size_t n; int d, k; } sz[] = {
        {1, 1, 1}, {37, 3, 5}, {1000, 64, 17}, {700, 33, 40}, {5000, 512, 64}, {3000, 8, 300}};
    for (size_t s = 0; s < sizeof sz / sizeof sz[0]; s++)
        check_assign(sz[s].n, sz[s].d, sz[s].k, 100 + s, 0);
    check_assign(500, 16, 9, 7, 1);
}
END_TEST

/* ---- k-means fit -------------------------------------------------------------- */

/* Max |a - b| over the centroids relative to the largest |b|. */
static double cent_err(const float *a, const float *b, size_t kd)
{
    double e = 0.0, m = 1e-30;
    for (size_t i = 0; i < kd; i++) {
        e = fmax(e, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return e / m;
}

static void check_fit_vs_cpu(size_t n, int d, int k, const ns_kmeans_opts *o, const float *x)
{
    ns_kmeans_result g = {0}, c = {0};
    size_t diff = 0;
    ck_assert_ns_ok(ns_cuda_kmeans_fit(x, n, d, o, &g));
    ck_assert_ns_ok(ns_kmeans_fit(x, n, d, o, &c));
    ck_assert_int_eq(g.k, k);
    ck_assert_int_eq(g.d, d);
    ck_assert_uint_eq(g.n, n);
    ck_assert_int_eq(g.iterations, c.iterations);
    ck_assert_msg(cent_err(g.centroids, c.centroids, (size_t)k * d) <= CENT_REL,
                  "n=%zu d=%d k=%d: centroids off by %g", n, d, k,
                  cent_err(g.centroids, c.centroids, (size_t)k * d));
    for (size_t i = 0; i < n; i++)
        diff += g.assign[i] != c.assign[i];
    ck_assert_uint_eq(diff, 0);
    for (int j = 0; j < k; j++)
        ck_assert_uint_eq(g.counts[j], c.counts[j]);
    ck_assert_msg(fabs(g.inertia - c.inertia) <= 1e-5 * c.inertia, "inertia %.12g vs %.12g",
                  g.inertia, c.inertia);
    ns_kmeans_result_release(&g);
    ns_kmeans_result_release(&c);
}

START_TEST(test_kmeans_fit_vs_cpu)
{
    static const struct { size_t n; int d, k; } sz[] = {{10, 2, 1}, {300, 5, 4}, {4000, 64, 16},
                                                        {20000, 128, 40}};
    for (size_t s = 0; s < sizeof sz / sizeof sz[0]; s++) {
        float *x = blobs(sz[s].n, sz[s].d, sz[s].k, 40 + s);
        ns_kmeans_opts o = ns_kmeans_default_opts();
        o.k = sz[s].k;
        o.seed = 5 + s;
        o.max_iter = 30;
        o.tol = 0.0;
        /* The small cases take the CPU's k-means++ seeds; the big ones start
         * from one point per blob (rows 0..k-1), so that no two seeds share a
         * blob and split it along a boundary full of near-ties. */
        o.init = s < 2 ? NULL : x;
        check_fit_vs_cpu(sz[s].n, sz[s].d, sz[s].k, &o, x);
        o.tol = 1e-4; /* the tolerance rule stops both at the same iteration */
        check_fit_vs_cpu(sz[s].n, sz[s].d, sz[s].k, &o, x);
        free(x);
    }
}
END_TEST

/* The default update sums each cluster's rows from a list;
 * NS_CUDA_KMEANS_UPDATE=scan scans the assignments per cluster instead, in
 * the same order: the same bits.
 * With tol > 0 the column sums without assignments (the variance) run too. */
START_TEST(test_kmeans_sorted_update_same_bits)
{
    static const struct { size_t n; int d, k; } sz[] = {{300, 5, 4}, {20000, 128, 40},
                                                        {150000, 64, 100}};
    for (size_t s = 0; s < sizeof sz / sizeof sz[0]; s++) {
        float *x = blobs(sz[s].n, sz[s].d, sz[s].k, 90 + s);
        ns_kmeans_opts o = ns_kmeans_default_opts();
        ns_kmeans_result a = {0}, b = {0};
        o.k = sz[s].k;
        o.max_iter = 12;
        o.tol = s == 1 ? 1e-4 : 0.0;
        o.init = x;
        setenv("NS_CUDA_KMEANS_UPDATE", "scan", 1);
        ck_assert_ns_ok(ns_cuda_kmeans_fit(x, sz[s].n, sz[s].d, &o, &a));
        unsetenv("NS_CUDA_KMEANS_UPDATE");
        ck_assert_ns_ok(ns_cuda_kmeans_fit(x, sz[s].n, sz[s].d, &o, &b));
        unsetenv("NS_CUDA_KMEANS_UPDATE");
        ck_assert_int_eq(a.iterations, b.iterations);
        ck_assert(a.inertia == b.inertia);
        ck_assert(memcmp(a.centroids, b.centroids, (size_t)o.k * sz[s].d * sizeof(float)) == 0);
        ck_assert(memcmp(a.assign, b.assign, sz[s].n * sizeof(int)) == 0);
        ns_kmeans_result_release(&a);
        ns_kmeans_result_release(&b);
        free(x);
    }
}
END_TEST

/* One Lloyd step from given centres equals the reference step. */
START_TEST(test_kmeans_one_step_vs_ref)
{
    size_t n = 3000;
    int d = 48, k = 12;
    float *x = blobs(n, d, k, 77), *c = x + (size_t)k * d, *want = NULL; /* a point per blob */
    int *ra = malloc(n * sizeof *ra);
    ns_kmeans_result g = {0};
    ns_kmeans_opts o = ns_kmeans_default_opts();
    want = malloc((size_t)k * d * sizeof *want);
    ck_assert(ra && want);
    o.k = k;
    o.max_iter = 1;
    o.tol = 0.0;
    o.init = c;
    ck_assert_ns_ok(ns_cuda_kmeans_fit(x, n, d, &o, &g));
    ck_assert_ns_ok(ns_ref_kmeans_step(x, n, d, c, k, ra, want));
    ck_assert_int_eq(g.iterations, 1);
    ck_assert_msg(cent_err(g.centroids, want, (size_t)k * d) <= CENT_REL, "off by %g",
                  cent_err(g.centroids, want, (size_t)k * d));
    ns_kmeans_result_release(&g);
    free(x);
    free(ra);
    free(want);
}
END_TEST

/* A centre far from all data empties at once: the GPU repairs it as the CPU. */
START_TEST(test_kmeans_fit_empty_cluster)
{
    size_t n = 2000;
    int d = 16, k = 6;
    float *x = blobs(n, d, 5, 91), *init = malloc((size_t)k * d * sizeof *init);
    ns_kmeans_opts o = ns_kmeans_default_opts();
    ck_assert_ptr_nonnull(init);
    for (int j = 0; j < k - 1; j++)
        memcpy(init + (size_t)j * d, x + (size_t)j * d, (size_t)d * sizeof *init);
    for (int t = 0; t < d; t++)
        init[(size_t)(k - 1) * d + t] = 1e4f;
    o.k = k;
    o.max_iter = 20;
    o.tol = 0.0;
    o.init = init;
    check_fit_vs_cpu(n, d, k, &o, x);
    free(x);
    free(init);
}
END_TEST

START_TEST(test_kmeans_bad_args)
{
    float x[4] = {0};
    ns_kmeans_result r;
    ns_kmeans_opts o = ns_kmeans_default_opts();
    int a[2];
    memset(&r, 0xab, sizeof r); /* fit must zero it on failure */
    o.k = 3;
    ck_assert_ns_status(ns_cuda_kmeans_fit(x, 2, 2, &o, &r), NS_ERR_USAGE);
    ck_assert_ptr_null(r.centroids);
    ck_assert_ns_status(ns_cuda_kmeans_assign(x, 2, 0, x, 1, a, NULL), NS_ERR_USAGE);
    ck_assert_ns_status(ns_cuda_kmeans_assign(NULL, 2, 2, x, 1, a, NULL), NS_ERR_USAGE);
}
END_TEST

/* ---- kNN ------------------------------------------------------------------------ */

static void check_knn(size_t nq, size_t nb, int d, int k, int groups, int dup, uint64_t seed)
{
    float *q = ns_test_rand_mat(nq, d, seed), *b = groups ? q : ns_test_rand_mat(nb, d, seed + 1);
    size_t nk = nq * (size_t)k;
    float *gd = malloc((nk ? nk : 1) * sizeof *gd), *rd = malloc((nk ? nk : 1) * sizeof *rd);
    int64_t *gi = malloc((nk ? nk : 1) * sizeof *gi), *ri = malloc((nk ? nk : 1) * sizeof *ri);
    int64_t *grp = NULL;
    size_t ties = 0;
    ck_assert(gd && rd && gi && ri);
    if (groups) { /* leave-one-clip-out on the reference itself: clips of 7 frames */
        nb = nq;
        grp = malloc(nq * sizeof *grp);
        ck_assert_ptr_nonnull(grp);
        for (size_t i = 0; i < nq; i++)
            grp[i] = (int64_t)(i / 7);
    }
    if (dup) /* every odd base row repeats the one before */
        for (size_t j = 1; j < nb; j += 2)
            memcpy(b + j * d, b + (j - 1) * d, (size_t)d * sizeof *b);
    ck_assert_ns_ok(ns_cuda_knn_search(q, nq, b, nb, d, k, grp, grp, 0, gd, gi));
    ck_assert_ns_ok(ns_ref_knn_search(q, nq, b, nb, d, k, grp, grp, rd, ri));
    for (size_t i = 0; i < nq; i++)
        for (int s = 0; s < k; s++) {
            size_t e = i * k + s;
            if (ri[e] < 0) {
                ck_assert_msg(gi[e] == -1 && isinf(gd[e]), "query %zu slot %d: want empty", i, s);
                continue;
            }
            ck_assert_msg(gi[e] >= 0 && (size_t)gi[e] < nb, "query %zu slot %d: idx %lld", i, s,
                          (long long)gi[e]);
            if (grp)
                ck_assert_int_ne(grp[gi[e]], grp[i]);
            if (s > 0)
                ck_assert(gd[e] > gd[e - 1] || (gd[e] == gd[e - 1] && gi[e] > gi[e - 1]));
            double exact = sqrt(dist2(q + i * d, b + (size_t)gi[e] * d, d));
            ck_assert_msg(fabs(gd[e] - exact) <= DIST_REL * exact + 1e-7,
                          "query %zu slot %d: dist %g, exact %g", i, s, gd[e], exact);
            ck_assert_msg(fabs((double)gd[e] - rd[e]) <= TIE_REL * rd[e] + 1e-6,
                          "nq=%zu nb=%zu d=%d k=%d query %zu slot %d: %g (idx %lld) vs "
                          "reference %g (idx %lld)", nq, nb, d, k, i, s, gd[e],
                          (long long)gi[e], rd[e], (long long)ri[e]);
            ties += gi[e] != ri[e];
        }
    ck_assert_msg(ties <= nk / 1000 + 1, "%zu neighbours differ from the reference", ties);
    if (!groups)
        free(b);
    free(q);
    free(grp);
    free(gd);
    free(rd);
    free(gi);
    free(ri);
}

START_TEST(test_knn_vs_ref)
{
    check_knn(1, 1, 1, 1, 0, 0, 1);
    check_knn(50, 37, 8, 5, 0, 0, 2);
    check_knn(20, 3, 4, 5, 0, 0, 3);   /* k > nb: INFINITY / -1 slots */
    check_knn(300, 1000, 64, 10, 0, 0, 4);
    check_knn(200, 700, 33, 40, 0, 0, 5);  /* k above a warp */
    check_knn(1000, 2000, 512, 5, 0, 0, 6);
    check_knn(64, 20000, 16, 7, 0, 0, 7);  /* two base tiles */
    check_knn(4500, 17000, 4, 3, 0, 0, 8); /* two query tiles, two base tiles */
    check_knn(100, 300, 16, 6, 0, 1, 9);   /* duplicate pairs: lower index first */
}
END_TEST

START_TEST(test_knn_groups_vs_ref)
{
    check_knn(500, 0, 32, 5, 1, 0, 11);
    check_knn(30, 0, 8, 30, 1, 0, 12); /* fewer eligible than k */
}
END_TEST

START_TEST(test_knn_edges)
{
    float q[4] = {1, 2, 3, 4}, dist[3];
    int64_t idx[3];
    ck_assert_ns_ok(ns_cuda_knn_search(NULL, 0, NULL, 0, 4, 3, NULL, NULL, 0, NULL, NULL));
    ck_assert_ns_ok(ns_cuda_knn_search(q, 1, NULL, 0, 4, 3, NULL, NULL, 0, dist, idx));
    for (int s = 0; s < 3; s++) {
        ck_assert(isinf(dist[s]));
        ck_assert_int_eq(idx[s], -1);
    }
    ck_assert_ns_status(ns_cuda_knn_search(q, 1, q, 1, 4, 0, NULL, NULL, 0, dist, idx),
                        NS_ERR_USAGE);
    ck_assert_ns_status(ns_cuda_knn_search(q, 1, q, 1, 4, 1, idx, NULL, 0, dist, idx),
                        NS_ERR_USAGE);
}
END_TEST

/* ---- MMD block sums ----------------------------------------------------------------- */

static void check_mmd(size_t n, int d, const size_t *sizes, size_t nblocks, double sigma,
                      uint64_t seed)
{
    float *x = ns_test_rand_mat(n, d, seed);
    size_t *off = malloc((nblocks + 1) * sizeof *off);
    double *gs = malloc(nblocks * nblocks * sizeof *gs), *rs = malloc(nblocks * nblocks * sizeof *rs);
    ck_assert(off && gs && rs);
    off[0] = 0;
    for (size_t a = 0; a < nblocks; a++)
        off[a + 1] = off[a] + sizes[a];
    ck_assert_uint_eq(off[nblocks], n);
    ck_assert_ns_ok(ns_cuda_mmd_block_sums(x, n, d, off, nblocks, sigma, 0, gs));
    ck_assert_ns_ok(ns_ref_mmd_block_sums(x, n, d, off, nblocks, sigma, rs));
    for (size_t a = 0; a < nblocks; a++)
        for (size_t b = 0; b < nblocks; b++) {
            double g = gs[a * nblocks + b], r = rs[a * nblocks + b];
            double scale = (double)sizes[a] * sizes[b] * 1e-9;
            ck_assert_msg(fabs(g - r) <= MMD_REL * fabs(r) + scale,
                          "n=%zu d=%d S[%zu][%zu] %.12g vs reference %.12g", n, d, a, b, g, r);
            ck_assert_msg(g == gs[b * nblocks + a], "S not symmetric at %zu, %zu", a, b);
        }
    free(x);
    free(off);
    free(gs);
    free(rs);
}

START_TEST(test_mmd_block_sums_vs_ref)
{
    static const size_t one[] = {1}, mixed[] = {5, 0, 12, 1, 0, 20, 7, 5};
    size_t *sz = malloc(200 * sizeof *sz);
    ck_assert_ptr_nonnull(sz);
    check_mmd(1, 3, one, 1, 1.0, 1);
    check_mmd(50, 8, mixed, 8, 1.5, 2);
    for (int i = 0; i < 12; i++)
        sz[i] = 50;
    check_mmd(600, 32, sz, 12, 3.0, 3);
    for (int i = 0; i < 200; i++) /* frame-level: one frame per block */
        sz[i] = 1;
    check_mmd(200, 16, sz, 200, 2.0, 4);
    for (int i = 0; i < 50; i++) /* 100-frame clips: one straddles the 4096-row tile edge */
        sz[i] = 100;
    check_mmd(5000, 16, sz, 50, 2.0, 5);
    sz[0] = 1000; /* one clip longer than a tile and one spanning the edge */
    sz[1] = 4500;
    sz[2] = 300;
    check_mmd(5800, 8, sz, 3, 1.5, 6);
    free(sz);
}
END_TEST

START_TEST(test_mmd_bad_args)
{
    float x[4] = {0};
    size_t off[3] = {0, 1, 2}, bad[3] = {0, 2, 1};
    double S[4];
    ck_assert_ns_status(ns_cuda_mmd_block_sums(x, 2, 2, off, 2, 0.0, 0, S), NS_ERR_USAGE);
    ck_assert_ns_status(ns_cuda_mmd_block_sums(x, 2, 2, bad, 2, 1.0, 0, S), NS_ERR_USAGE);
    ck_assert_ns_status(ns_cuda_mmd_block_sums(x, 3, 2, off, 2, 1.0, 0, S), NS_ERR_USAGE);
}
END_TEST

/* Deterministic: the same call twice gives the same bits. */
START_TEST(test_repeatable)
{
    size_t n = 3000, sizes[30];
    int d = 64;
    float *x = ns_test_rand_mat(n, d, 321), d1[3000 * 3], d2[3000 * 3];
    size_t off[31];
    double *s1 = malloc(900 * sizeof *s1), *s2 = malloc(900 * sizeof *s2);
    ck_assert(s1 && s2);
    off[0] = 0;
    for (int a = 0; a < 30; a++) {
        sizes[a] = 100;
        off[a + 1] = off[a] + sizes[a];
    }
    ck_assert_ns_ok(ns_cuda_mmd_block_sums(x, n, d, off, 30, 4.0, 0, s1));
    ns_cuda_detect_release(); /* fresh handle and buffers: still the same bits */
    ck_assert_ns_ok(ns_cuda_mmd_block_sums(x, n, d, off, 30, 4.0, 0, s2));
    ck_assert_mem_eq(s1, s2, 900 * sizeof *s1);
    ck_assert_ns_ok(ns_cuda_knn_search(x, 1000, x, n, d, 3, NULL, NULL, 0, d1, NULL));
    ck_assert_ns_ok(ns_cuda_knn_search(x, 1000, x, n, d, 3, NULL, NULL, 0, d2, NULL));
    ck_assert_mem_eq(d1, d2, 3000 * sizeof *d1);
    free(x);
    free(s1);
    free(s2);
}
END_TEST

int main(void)
{
    if (!ns_test_gpu_present("test_detect_gpu"))
        return 77;
    Suite *s = suite_create("detect_gpu");
    TCase *tc = tcase_create("detect");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_kmeans_assign_vs_ref);
    tcase_add_test(tc, test_kmeans_fit_vs_cpu);
    tcase_add_test(tc, test_kmeans_sorted_update_same_bits);
    tcase_add_test(tc, test_kmeans_one_step_vs_ref);
    tcase_add_test(tc, test_kmeans_fit_empty_cluster);
    tcase_add_test(tc, test_kmeans_bad_args);
    tcase_add_test(tc, test_knn_vs_ref);
    tcase_add_test(tc, test_knn_groups_vs_ref);
    tcase_add_test(tc, test_knn_edges);
    tcase_add_test(tc, test_mmd_block_sums_vs_ref);
    tcase_add_test(tc, test_mmd_bad_args);
    tcase_add_test(tc, test_repeatable);
    suite_add_tcase(s, tc);
    return ns_test_run_nofork(s);
}
