/* test_kcenter.c -- exact k-center greedy against the naive recomputation:
 * identical picks and gains on clustered data (where pruning skips most
 * rows), uniform data, duplicates (ties), seeds and allow masks, and thread
 * counts. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "detect_fixtures.h"
#include "helpers.h"
#include "nightshift/kcenter.h"

/* n points around n_clusters centres (spread 1), jitter sigma; dup > 0
 * copies every dup-th row from its predecessor (exact ties). */
static float *make_points(uint64_t seed, size_t n, int d, int n_clusters, float sigma, int dup)
{
    float *c = ns_test_xmalloc((size_t)n_clusters * (size_t)d * sizeof *c);
    float *x = ns_test_xmalloc(n * (size_t)d * sizeof *x);
    for (size_t i = 0; i < (size_t)n_clusters * (size_t)d; i++)
        c[i] = ns_test_rng_unif(&seed);
    for (size_t i = 0; i < n; i++) {
        size_t k = ns_test_rng_next(&seed) % (uint64_t)n_clusters;
        for (int t = 0; t < d; t++)
            x[i * (size_t)d + t] = c[k * (size_t)d + t] + sigma * (float)ns_test_rng_gauss(&seed);
        if (dup > 0 && i > 0 && i % (size_t)dup == 0)
            memcpy(x + i * (size_t)d, x + (i - 1) * (size_t)d, (size_t)d * sizeof *x);
    }
    free(c);
    return x;
}

static void compare(const float *x, size_t n, int d, const size_t *seeds, size_t n_seeds,
                    const uint8_t *allow, size_t budget, size_t want_picked)
{
    size_t *p1 = ns_test_xmalloc(budget * sizeof *p1), *p2 = ns_test_xmalloc(budget * sizeof *p2);
    float *g1 = ns_test_xmalloc(budget * sizeof *g1), *g2 = ns_test_xmalloc(budget * sizeof *g2);
    size_t n1 = 0, n2 = 0;
    ck_assert_int_eq(ns_kcenter_greedy(x, n, d, seeds, n_seeds, allow, budget, p1, g1, &n1),
                     NS_OK);
    ck_assert_int_eq(ns_kcenter_ref(x, n, d, seeds, n_seeds, allow, budget, p2, g2, &n2), NS_OK);
    ck_assert_uint_eq(n1, n2);
    ck_assert_uint_eq(n1, want_picked);
    for (size_t b = 0; b < n1; b++) {
        ck_assert_msg(p1[b] == p2[b], "step %zu: fast picked %zu, ref %zu", b, p1[b], p2[b]);
        ck_assert_msg(g1[b] == g2[b] || (isinf(g1[b]) && isinf(g2[b])),
                      "step %zu: gain %.9g vs %.9g", b, g1[b], g2[b]);
        if (allow)
            ck_assert(allow[p1[b]]);
        for (size_t s = 0; s < n_seeds; s++)
            ck_assert_uint_ne(p1[b], seeds[s]);
        if (b > 1 && !isinf(g1[b - 1]))
            ck_assert(g1[b] <= g1[b - 1]); /* greedy radii never grow */
    }
    free(p1);
    free(p2);
    free(g1);
    free(g2);
}

START_TEST(test_kcenter_matches_naive)
{
    static const struct { size_t n; int d, clusters; float sigma; int dup; size_t budget; } cases[] = {
        {1, 3, 1, 0.1f, 0, 1},      {7, 5, 2, 0.1f, 0, 7},      {300, 17, 12, 0.05f, 0, 60},
        {500, 64, 40, 0.02f, 3, 120}, {400, 33, 1, 1.0f, 0, 80}, {800, 130, 25, 0.01f, 7, 90},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float *x = make_points(100 + c, cases[c].n, cases[c].d, cases[c].clusters, cases[c].sigma,
                               cases[c].dup);
        size_t budget = cases[c].budget;
        compare(x, cases[c].n, cases[c].d, NULL, 0, NULL, budget, budget);
        free(x);
    }
}
END_TEST

/* Seeds (labelled frames) are never picked, masks are held, and the state
 * with seeds equals the naive one. */
START_TEST(test_kcenter_seeds_and_masks)
{
    size_t n = 600;
    int d = 48;
    float *x = make_points(7, n, d, 30, 0.03f, 5);
    size_t seeds[] = {3, 77, 500, 501};
    uint8_t *allow = ns_test_xmalloc(n);
    size_t n_allow = 0;
    uint64_t r = 99;
    for (size_t i = 0; i < n; i++) {
        allow[i] = ns_test_rng_next(&r) % 3 != 0;
        n_allow += allow[i];
    }
    compare(x, n, d, seeds, 4, NULL, 100, 100);
    compare(x, n, d, seeds, 4, allow, 90, 90);
    /* more budget than allowed rows: stops when none is left */
    size_t left = n_allow;
    for (size_t s = 0; s < 4; s++)
        left -= allow[seeds[s]];
    compare(x, n, d, seeds, 4, allow, n_allow + 5, left);
    free(allow);
    free(x);
}
END_TEST

/* Pruning does its job on clustered data, and threads change nothing. */
START_TEST(test_kcenter_pruning_and_threads)
{
    size_t n = 20000, budget = 200;
    int d = 64;
    float *x = make_points(11, n, d, 50, 0.02f, 0);
    size_t *p1 = ns_test_xmalloc(budget * sizeof *p1), *p2 = ns_test_xmalloc(budget * sizeof *p2);
    size_t n1, n2;
    omp_set_num_threads(1);
    ck_assert_int_eq(ns_kcenter_greedy(x, n, d, NULL, 0, NULL, budget, p1, NULL, &n1), NS_OK);
    omp_set_num_threads(2);
    ck_assert_int_eq(ns_kcenter_greedy(x, n, d, NULL, 0, NULL, budget, p2, NULL, &n2), NS_OK);
    ck_assert_uint_eq(n1, n2);
    ck_assert_mem_eq(p1, p2, n1 * sizeof *p1);
    ns_kcenter *k = NULL;
    ck_assert_int_eq(ns_kcenter_create(x, n, d, budget, &k), NS_OK);
    for (size_t b = 0; b < budget; b++)
        ck_assert_int_eq(ns_kcenter_add(k, p1[b]), NS_OK);
    uint64_t ev = ns_kcenter_evaluated(k);
    /* 50 clusters: once each has a center, a new one only touches its own */
    ck_assert_msg(ev < (uint64_t)n * budget / 4, "evaluated %llu of %llu", (unsigned long long)ev,
                  (unsigned long long)n * budget);
    ck_assert_int_eq(ns_kcenter_add(k, 0), NS_ERR_LIMIT);
    ck_assert_int_eq(ns_kcenter_add(k, n), NS_ERR_USAGE);
    ns_kcenter_free(k);
    free(p1);
    free(p2);
    free(x);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kcenter");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_kcenter_matches_naive);
    tcase_add_test(tc, test_kcenter_seeds_and_masks);
    tcase_add_test(tc, test_kcenter_pruning_and_threads);
    suite_add_tcase(s, tc);
    return ns_test_run(s);
}
