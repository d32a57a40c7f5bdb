/* test_knn.c -- GEMM-tiled kNN against the plain C reference (tile edges,
 * base chunks, exclusion groups, exact ties), bit-identical results across
 * thread counts, short neighbour lists, and the empirical p-value. */
#include <math.h>
#include <omp.h>
#include <stdint.h>

#include "detect_fixtures.h"
#include "helpers.h"
#include "nightshift/knn.h"

/* Small integers: GEMM sums are exact, so distances tie exactly and often. */
static float *int_mat(size_t rows, int cols, int levels, uint64_t seed)
{
    float *m = malloc((rows * (size_t)cols + 1) * sizeof *m);
    ck_assert_ptr_nonnull(m);
    for (size_t i = 0; i < rows * (size_t)cols; i++)
        m[i] = (float)(ns_test_rng_next(&seed) % (uint64_t)levels);
    return m;
}

static double dist_d(const float *a, const float *b, int d)
{
    double s = 0.0;
    for (int t = 0; t < d; t++)
        s += ((double)a[t] - b[t]) * ((double)a[t] - b[t]);
    return sqrt(s);
}

typedef struct knn_out {
    float *dist;  /* (nq, k) */
    int64_t *idx; /* (nq, k) */
} knn_out;

static knn_out out_alloc(size_t nq, int k)
{
    knn_out o = {malloc((nq * (size_t)k + 1) * sizeof(float)),
                 malloc((nq * (size_t)k + 1) * sizeof(int64_t))};
    ck_assert_ptr_nonnull(o.dist);
    ck_assert_ptr_nonnull(o.idx);
    return o;
}

static void out_free(knn_out *o)
{
    free(o->dist);
    free(o->idx);
}

#define REL_TOL 1e-5 /* distances: direct double recompute, so far tighter than float GEMM */

/* Compares fast (k) with a reference run at k+1.  Distances within REL_TOL
 * everywhere; the index at a position must match where the reference
 * distance there is separated by more than 1e-4 relative from every other
 * of the k+1 reference distances (no float near-tie).  Every returned
 * distance must also be the direct distance to the returned point. */
static void check_vs_ref(const float *q, size_t nq, const float *b, int d, int k,
                         const int64_t *qg, const int64_t *bg, const knn_out *f,
                         const knn_out *r /* k+1 wide */)
{
    for (size_t i = 0; i < nq; i++) {
        const float *fd = f->dist + i * (size_t)k, *rd = r->dist + i * (size_t)(k + 1);
        const int64_t *fi = f->idx + i * (size_t)k, *ri = r->idx + i * (size_t)(k + 1);
        for (int a = 0; a < k; a++) {
            int clear = 1;
            if (isinf(rd[a])) {
                ck_assert_msg(isinf(fd[a]) && fi[a] == -1, "q%zu slot %d: want empty, got %g/%lld",
                              i, a, fd[a], (long long)fi[a]);
                continue;
            }
            ck_assert_msg(fabs(fd[a] - rd[a]) <= REL_TOL * rd[a] + 1e-6,
                          "q%zu slot %d: dist %.9g vs ref %.9g", i, a, fd[a], rd[a]);
            ck_assert_msg(fi[a] >= 0, "q%zu slot %d: no index", i, a);
            ck_assert_msg(fabs(fd[a] - dist_d(q + i * (size_t)d, b + (size_t)fi[a] * d, d)) <=
                              1e-6 * (1.0 + fd[a]),
                          "q%zu slot %d: dist is not the distance to idx %lld", i, a,
                          (long long)fi[a]);
            if (qg)
                ck_assert_msg(bg[fi[a]] != qg[i], "q%zu slot %d: neighbour %lld in own group", i,
                              a, (long long)fi[a]);
            for (int c = 0; c <= k; c++)
                if (c != a && !isinf(rd[c]) && fabs(rd[c] - rd[a]) <= 1e-4 * rd[a] + 1e-6)
                    clear = 0;
            if (clear)
                ck_assert_msg(fi[a] == ri[a], "q%zu slot %d: idx %lld vs ref %lld (d %.9g)", i, a,
                              (long long)fi[a], (long long)ri[a], rd[a]);
        }
        for (int a = 1; a < k; a++)
            ck_assert_msg(fd[a - 1] <= fd[a] || isinf(fd[a]), "q%zu: not ascending at %d", i, a);
    }
}

/* Sizes straddle the 512 x 2048 tiles: smaller than one, not multiples, and
 * few query tiles over many base tiles (the chunked path). */
START_TEST(test_matches_ref)
{
    static const struct { size_t nq, nb; int d, k; } sz[] = {
        {1, 1, 1, 1},      {3, 5, 2, 3},       {17, 300, 7, 5},     {520, 2100, 33, 5},
        {513, 4099, 16, 8}, {5, 9000, 24, 5}, {1100, 2049, 12, 1}, {40, 700, 64, 40}};
    for (size_t s = 0; s < sizeof sz / sizeof sz[0]; s++) {
        size_t nq = sz[s].nq, nb = sz[s].nb;
        int d = sz[s].d, k = sz[s].k;
        float *q = ns_test_rand_mat(nq, d, 10 + s), *b = ns_test_rand_mat(nb, d, 100 + s);
        knn_out f = out_alloc(nq, k), r = out_alloc(nq, k + 1);
        float *dn = malloc(nq * (size_t)k * sizeof *dn);
        ck_assert_ptr_nonnull(dn);
        ck_assert_ns_ok(ns_knn_search(q, nq, b, nb, d, k, NULL, NULL, 2, f.dist, f.idx));
        ck_assert_ns_ok(ns_ref_knn_search(q, nq, b, nb, d, k + 1, NULL, NULL, r.dist, r.idx));
        check_vs_ref(q, nq, b, d, k, NULL, NULL, &f, &r);
        /* idx is optional and changes nothing */
        ck_assert_ns_ok(ns_knn_search(q, nq, b, nb, d, k, NULL, NULL, 2, dn, NULL));
        ck_assert_mem_eq(dn, f.dist, nq * (size_t)k * sizeof *dn);
        free(dn);
        free(q);
        free(b);
        out_free(&f);
        out_free(&r);
    }
}
END_TEST

/* With exact ties everywhere the lower base index must win, exactly as in
 * the reference: every bit equal.  Queries on the grid (distance-0 copies)
 * and between grid points (ties among corners, met in random base order). */
START_TEST(test_exact_ties_lower_index)
{
    static const struct { size_t nq, nb; int d, levels, k, threads; float shift; } sz[] = {
        {50, 400, 3, 3, 6, 2, 0.0f},     {600, 4500, 4, 3, 5, 2, 0.0f},
        {3, 6000, 3, 3, 7, 1, 0.0f},     {3, 6000, 3, 3, 7, 2, 0.0f},
        {300, 400, 3, 6, 6, 2, 0.5f},    {530, 5000, 4, 5, 9, 2, 0.5f},
        {4, 7000, 3, 8, 6, 2, 0.5f},     {4, 7000, 3, 8, 6, 1, 0.5f}};
    for (size_t s = 0; s < sizeof sz / sizeof sz[0]; s++) {
        size_t nq = sz[s].nq, nb = sz[s].nb;
        int d = sz[s].d, k = sz[s].k;
        float *q = int_mat(nq, d, sz[s].levels, 7 + s), *b = int_mat(nb, d, sz[s].levels, 70 + s);
        knn_out f = out_alloc(nq, k), r = out_alloc(nq, k);
        for (size_t i = 0; i < nq * (size_t)d; i++)
            q[i] += sz[s].shift;
        ck_assert_ns_ok(
            ns_knn_search(q, nq, b, nb, d, k, NULL, NULL, sz[s].threads, f.dist, f.idx));
        ck_assert_ns_ok(ns_ref_knn_search(q, nq, b, nb, d, k, NULL, NULL, r.dist, r.idx));
        ck_assert_mem_eq(f.dist, r.dist, nq * (size_t)k * sizeof *f.dist);
        ck_assert_mem_eq(f.idx, r.idx, nq * (size_t)k * sizeof *f.idx);
        free(q);
        free(b);
        out_free(&f);
        out_free(&r);
    }
}
END_TEST

/* Ties the GEMM form cannot see: b[2i] = q_i - e_i and b[2i+1] = q_i + e_i
 * are exactly equidistant from q_i (every value dyadic, every difference
 * exact), but ||b||^2 - 2 q.b rounds differently for the two.  The direct
 * distances tie, so the lower index must come first. */
START_TEST(test_ties_hidden_by_rounding)
{
    const size_t nq = 400;
    const int d = 16, k = 2;
    uint64_t seed = 77;
    float *q = malloc(nq * d * sizeof *q), *b = malloc(2 * nq * d * sizeof *b);
    knn_out f = out_alloc(nq, k);
    ck_assert_ptr_nonnull(q);
    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < nq; i++)
        for (int t = 0; t < d; t++) {
            float v = 1.0f + (float)(ns_test_rng_next(&seed) % 65536) * 0x1.0p-16f;
            float e = (float)((int)(ns_test_rng_next(&seed) % 3) - 1) * 0x1.0p-4f;
            q[i * d + t] = v;
            b[2 * i * d + t] = v - e;
            b[(2 * i + 1) * d + t] = v + e;
        }
    for (size_t i = 0; i < nq; i++) /* no zero offset: the pair must differ from q */
        b[2 * i * d] = q[i * d] - 0x1.0p-4f, b[(2 * i + 1) * d] = q[i * d] + 0x1.0p-4f;
    ck_assert_ns_ok(ns_knn_search(q, nq, b, 2 * nq, d, k, NULL, NULL, 2, f.dist, f.idx));
    for (size_t i = 0; i < nq; i++) {
        ck_assert_int_eq(f.idx[i * k], (int64_t)(2 * i));
        ck_assert_int_eq(f.idx[i * k + 1], (int64_t)(2 * i + 1));
        ck_assert(f.dist[i * k] == f.dist[i * k + 1]);
    }
    free(q);
    free(b);
    out_free(&f);
}
END_TEST

/* Leave-one-clip-out: q == b with one group array; clips of 1..12 frames. */
START_TEST(test_groups_leave_one_clip_out)
{
    const size_t n = 2600;
    const int d = 20, k = 5;
    uint64_t seed = 5;
    float *x = ns_test_rand_mat(n, d, 3);
    int64_t *g = malloc(n * sizeof *g);
    knn_out f = out_alloc(n, k), r = out_alloc(n, k + 1), self = out_alloc(n, k);
    ck_assert_ptr_nonnull(g);
    for (size_t i = 0, clip = 0; i < n; clip++) {
        size_t len = 1 + ns_test_rng_next(&seed) % 12;
        for (size_t t = 0; t < len && i < n; t++)
            g[i++] = (int64_t)(1000 + 3 * clip); /* arbitrary, non-contiguous ids */
    }
    ck_assert_ns_ok(ns_knn_search(x, n, x, n, d, k, g, g, 2, f.dist, f.idx));
    ck_assert_ns_ok(ns_ref_knn_search(x, n, x, n, d, k + 1, g, g, r.dist, r.idx));
    check_vs_ref(x, n, x, d, k, g, g, &f, &r);
    for (size_t i = 0; i < n * (size_t)k; i++)
        ck_assert(f.dist[i] > 0.0f); /* never itself, never a clip mate */

    /* without groups each point finds itself first, at exactly 0 */
    ck_assert_ns_ok(ns_knn_search(x, n, x, n, d, k, NULL, NULL, 2, self.dist, self.idx));
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(self.idx[i * (size_t)k], (int64_t)i);
        ck_assert(self.dist[i * (size_t)k] == 0.0f);
    }
    free(x);
    free(g);
    out_free(&f);
    out_free(&r);
    out_free(&self);
}
END_TEST

/* Near-duplicates of unit-norm 512-d points: the GEMM form alone would
 * cancel to ~1e-3; the returned distance is the direct one. */
START_TEST(test_duplicates_exact_zero)
{
    const size_t nq = 20, nb = 3000;
    const int d = 512, k = 3;
    float *q = ns_test_rand_mat(nq, d, 41), *b = ns_test_rand_mat(nb, d, 42);
    knn_out f = out_alloc(nq, k);
    for (size_t i = 0; i < nb; i++) {
        double s = 0.0;
        for (int t = 0; t < d; t++)
            s += (double)b[i * d + t] * b[i * d + t];
        for (int t = 0; t < d; t++)
            b[i * d + t] = (float)(b[i * d + t] / sqrt(s));
    }
    for (size_t i = 0; i < nq; i++)
        memcpy(q + i * d, b + (100 * i + 7) * d, d * sizeof *q);
    ck_assert_ns_ok(ns_knn_search(q, nq, b, nb, d, k, NULL, NULL, 2, f.dist, f.idx));
    for (size_t i = 0; i < nq; i++) {
        ck_assert_int_eq(f.idx[i * k], (int64_t)(100 * i + 7));
        ck_assert(f.dist[i * k] == 0.0f);
        ck_assert(f.dist[i * k + 1] > 0.5f);
    }
    free(q);
    free(b);
    out_free(&f);
}
END_TEST

/* Fewer eligible base points than k: INFINITY / -1 in the tail. */
START_TEST(test_short_lists)
{
    const int d = 4, k = 5;
    float *q = ns_test_rand_mat(6, d, 1), *b = ns_test_rand_mat(10, d, 2);
    int64_t qg[6] = {0, 1, 2, 3, 3, 9}, bg[10] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 2};
    knn_out f = out_alloc(6, k), r = out_alloc(6, k + 1);

    /* nb = 3 < k */
    ck_assert_ns_ok(ns_knn_search(q, 6, b, 3, d, k, NULL, NULL, 2, f.dist, f.idx));
    for (size_t i = 0; i < 6; i++)
        for (int a = 0; a < k; a++) {
            ck_assert(a < 3 ? f.idx[i * k + a] >= 0 : f.idx[i * k + a] == -1);
            ck_assert(a < 3 ? isfinite(f.dist[i * k + a]) : isinf(f.dist[i * k + a]));
        }
    /* groups: query 0 sees 2 points, queries 1 and 2 see 9, 3 to 5 all 10 */
    ck_assert_ns_ok(ns_knn_search(q, 6, b, 10, d, k, qg, bg, 2, f.dist, f.idx));
    ck_assert_ns_ok(ns_ref_knn_search(q, 6, b, 10, d, k + 1, qg, bg, r.dist, r.idx));
    check_vs_ref(q, 6, b, d, k, qg, bg, &f, &r);
    ck_assert_int_eq(f.idx[2], -1);
    ck_assert(isinf(f.dist[4]));
    ck_assert_int_ge(f.idx[1 * k + 4], 0); /* query 1 sees 9 */

    /* nb = 0: all empty; nq = 0: nothing to do, NULL is fine */
    ck_assert_ns_ok(ns_knn_search(q, 6, NULL, 0, d, k, NULL, NULL, 2, f.dist, f.idx));
    for (size_t i = 0; i < 6 * (size_t)k; i++)
        ck_assert(isinf(f.dist[i]) && f.idx[i] == -1);
    ck_assert_ns_ok(ns_knn_search(NULL, 0, b, 10, d, k, NULL, NULL, 2, NULL, NULL));
    ck_assert_ns_ok(ns_ref_knn_search(q, 6, NULL, 0, d, k, NULL, NULL, r.dist, r.idx));
    ck_assert(isinf(r.dist[0]) && r.idx[0] == -1);
    free(q);
    free(b);
    out_free(&f);
    out_free(&r);
}
END_TEST

/* 1, 2 and 3 threads give the same bits: many query tiles, and one query
 * tile spread over base chunks (the chunk count follows the thread count). */
START_TEST(test_threads_identical)
{
    static const struct { size_t nq, nb; int d, k; } sz[] = {{1100, 5000, 24, 5},
                                                            {10, 9000, 32, 6}};
    for (size_t s = 0; s < sizeof sz / sizeof sz[0]; s++) {
        size_t nq = sz[s].nq, nb = sz[s].nb;
        int d = sz[s].d, k = sz[s].k;
        float *q = ns_test_rand_mat(nq, d, 20 + s), *b = ns_test_rand_mat(nb, d, 200 + s);
        int64_t *qg = malloc(nq * sizeof *qg), *bg = malloc(nb * sizeof *bg);
        ck_assert_ptr_nonnull(qg);
        ck_assert_ptr_nonnull(bg);
        for (size_t i = 0; i < nq; i++)
            qg[i] = (int64_t)(i % 13);
        for (size_t j = 0; j < nb; j++)
            bg[j] = (int64_t)(j % 17);
        for (int grp = 0; grp < 2; grp++) {
            knn_out o[3];
            for (int t = 0; t < 3; t++) {
                o[t] = out_alloc(nq, k);
                ck_assert_ns_ok(ns_knn_search(q, nq, b, nb, d, k, grp ? qg : NULL,
                                              grp ? bg : NULL, t + 1, o[t].dist, o[t].idx));
            }
            for (int t = 1; t < 3; t++) {
                ck_assert_mem_eq(o[t].dist, o[0].dist, nq * (size_t)k * sizeof(float));
                ck_assert_mem_eq(o[t].idx, o[0].idx, nq * (size_t)k * sizeof(int64_t));
            }
            for (int t = 0; t < 3; t++)
                out_free(&o[t]);
        }
        free(q);
        free(b);
        free(qg);
        free(bg);
    }
}
END_TEST

/* The per-thread BLAS setting inside the search must not leak out. */
START_TEST(test_caller_threads_untouched)
{
    float *q = ns_test_rand_mat(30, 8, 1), *b = ns_test_rand_mat(300, 8, 2);
    knn_out f = out_alloc(30, 5);
    int before;
    omp_set_num_threads(2);
    before = omp_get_max_threads();
    ck_assert_ns_ok(ns_knn_search(q, 30, b, 300, 8, 5, NULL, NULL, 1, f.dist, f.idx));
    ck_assert_int_eq(omp_get_max_threads(), before);
    ck_assert_ns_ok(ns_knn_search(q, 30, b, 300, 8, 5, NULL, NULL, 2, f.dist, f.idx));
    ck_assert_int_eq(omp_get_max_threads(), before);
    free(q);
    free(b);
    out_free(&f);
}
END_TEST

START_TEST(test_pvalue)
{
    static const float c[] = {1.0f, 2.0f, 2.0f, 3.0f};
    uint64_t seed = 9;
    float cal[101];
    ck_assert(ns_knn_pvalue(NULL, 0, 5.0f) == 1.0);
    ck_assert(ns_knn_pvalue(c, 4, 0.5f) == 1.0);         /* below all */
    ck_assert(ns_knn_pvalue(c, 4, 1.0f) == 1.0);         /* equal to the lowest */
    ck_assert(ns_knn_pvalue(c, 4, 2.0f) == 4.0 / 5.0);   /* equal to a repeated value */
    ck_assert(ns_knn_pvalue(c, 4, 2.5f) == 2.0 / 5.0);
    ck_assert(ns_knn_pvalue(c, 4, 3.0f) == 2.0 / 5.0);   /* equal to the highest */
    ck_assert(ns_knn_pvalue(c, 4, 3.5f) == 1.0 / 5.0);   /* above all */
    ck_assert(ns_knn_pvalue(c, 4, INFINITY) == 1.0 / 5.0);
    ck_assert(ns_knn_pvalue(c, 4, NAN) == 1.0);          /* no evidence either way */
    ck_assert(ns_knn_pvalue(c, 1, 1.0f) == 1.0);
    ck_assert(ns_knn_pvalue(c, 1, 1.5f) == 0.5);
    /* against a plain count on a sorted sample with repeats */
    cal[0] = 0.0f;
    for (int i = 1; i < 101; i++)
        cal[i] = cal[i - 1] + (float)(ns_test_rng_next(&seed) % 3);
    for (int t = -2; t < 420; t++) {
        float s = (float)t * 0.5f;
        int cnt = 0;
        for (int i = 0; i < 101; i++)
            cnt += cal[i] >= s;
        ck_assert(ns_knn_pvalue(cal, 101, s) == (double)(1 + cnt) / 102.0);
    }
}
END_TEST

START_TEST(test_bad_args)
{
    float q[8] = {0}, b[8] = {0}, dist[8];
    int64_t idx[8], g[2] = {0, 1};
    ck_assert_ns_status(ns_knn_search(q, 2, b, 2, 4, 0, NULL, NULL, 1, dist, idx), NS_ERR_USAGE);
    ck_assert_ns_status(ns_knn_search(q, 2, b, 2, 0, 1, NULL, NULL, 1, dist, idx), NS_ERR_USAGE);
    ck_assert_ns_status(ns_knn_search(q, 2, b, 2, 4, 257, NULL, NULL, 1, dist, idx), NS_ERR_USAGE);
    ck_assert_ns_status(ns_knn_search(q, 2, b, 2, 4, 1, g, NULL, 1, dist, idx), NS_ERR_USAGE);
    ck_assert_ns_status(ns_knn_search(NULL, 2, b, 2, 4, 1, NULL, NULL, 1, dist, idx), NS_ERR_USAGE);
    ck_assert_ns_status(ns_knn_search(q, 2, NULL, 2, 4, 1, NULL, NULL, 1, dist, idx), NS_ERR_USAGE);
    ck_assert_ns_status(ns_knn_search(q, 2, b, 2, 4, 1, NULL, NULL, 1, NULL, idx), NS_ERR_USAGE);
    ck_assert_ns_status(ns_ref_knn_search(q, 2, b, 2, 4, 1, NULL, g, dist, idx), NS_ERR_USAGE);
    ck_assert_ns_status(ns_ref_knn_search(q, 2, b, 2, 4, 0, NULL, NULL, dist, idx), NS_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "knn"));
}
END_TEST

static Suite *knn_suite(void)
{
    Suite *s = suite_create("knn");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_matches_ref);
    tcase_add_test(tc, test_exact_ties_lower_index);
    tcase_add_test(tc, test_ties_hidden_by_rounding);
    tcase_add_test(tc, test_groups_leave_one_clip_out);
    tcase_add_test(tc, test_duplicates_exact_zero);
    tcase_add_test(tc, test_short_lists);
    tcase_add_test(tc, test_threads_identical);
    tcase_add_test(tc, test_caller_threads_untouched);
    tcase_add_test(tc, test_pvalue);
    tcase_add_test(tc, test_bad_args);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ns_test_run(knn_suite());
}
