/* test_whiten.c -- the whitening transform: the SYRK/SGEMM paths against the
 * plain C references at several sizes, the defining property W C W^T = I
 * (checked through the whitened sample's covariance when no shrinkage is
 * needed), in-place application, the skip mask, and degenerate samples
 * (fewer rows than dimensions, identical rows) that shrinkage must keep
 * positive definite. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "detect_fixtures.h"
#include "helpers.h"
#include "nightshift/whiten.h"

/* Rows with a few dominant directions, as embeddings have: column j scaled
 * by 1 / (1 + j). */
static float *skewed(size_t n, int d, uint64_t seed)
{
    float *x = ns_test_rand_mat(n, d, seed);
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++)
            x[i * (size_t)d + (size_t)j] = x[i * (size_t)d + (size_t)j] / (1.0f + (float)j) + 0.3f;
    return x;
}

START_TEST(test_fit_matches_reference)
{
    static const int dims[] = {1, 7, 33, 130};
    static const size_t rows[] = {2, 50, 700, 1100};
    for (int t = 0; t < 4; t++) {
        int d = dims[t];
        size_t n = rows[t];
        float *x = skewed(n, d, 11 + (uint64_t)t);
        uint8_t *skip = calloc(n, 1);
        ns_whiten a, b;
        ck_assert_ptr_nonnull(skip);
        for (size_t i = 0; i < n; i += 3)
            skip[i] = n > 2;
        ck_assert_ns_ok(ns_whiten_fit(x, n, d, skip, &a));
        ck_assert_ns_ok(ns_whiten_fit_ref(x, n, d, skip, &b));
        ck_assert_int_eq(a.d, d);
        /* Same math, different summation order: tolerance 1e-4 relative. */
        ck_assert_msg(fabs(a.shrinkage - b.shrinkage) <= 1e-6 + 1e-4 * b.shrinkage,
                      "d %d: shrinkage %g vs %g", d, a.shrinkage, b.shrinkage);
        for (int j = 0; j < d; j++)
            ck_assert(fabsf(a.mean[j] - b.mean[j]) <= 1e-6f);
        for (size_t i = 0; i < (size_t)d * (size_t)d; i++)
            ck_assert_msg(fabsf(a.W[i] - b.W[i]) <= 1e-3f * (1.0f + fabsf(b.W[i])),
                          "d %d: W[%zu] %g vs %g", d, i, a.W[i], b.W[i]);
        for (int r = 0; r < d; r++) /* lower triangular */
            for (int c = r + 1; c < d; c++)
                ck_assert(a.W[(size_t)r * d + c] == 0.0f);
        /* apply: fast vs reference, then in place */
        float *za = malloc(n * (size_t)d * sizeof *za), *zb = malloc(n * (size_t)d * sizeof *zb);
        ck_assert(za && zb);
        ck_assert_ns_ok(ns_whiten_apply(&a, x, n, za));
        ck_assert_ns_ok(ns_whiten_apply_ref(&a, x, n, zb));
        for (size_t i = 0; i < n * (size_t)d; i++)
            ck_assert_msg(fabsf(za[i] - zb[i]) <= 1e-4f * (1.0f + fabsf(zb[i])), "z[%zu]", i);
        ck_assert_ns_ok(ns_whiten_apply(&a, x, n, x));
        ck_assert_int_eq(memcmp(x, za, n * (size_t)d * sizeof *x), 0);
        free(za);
        free(zb);
        free(skip);
        free(x);
        ns_whiten_release(&a);
        ns_whiten_release(&b);
        ns_whiten_release(&b); /* idempotent */
    }
}
END_TEST

/* Many rows, few dimensions: hardly any shrinkage, so the whitened sample's
 * covariance is close to the identity. */
START_TEST(test_identity_covariance)
{
    const int d = 6;
    const size_t n = 20000;
    float *x = skewed(n, d, 5), *z = malloc(n * (size_t)d * sizeof *z);
    double C[36] = {0}, m[6] = {0};
    ns_whiten w;
    ck_assert_ptr_nonnull(z);
    ck_assert_ns_ok(ns_whiten_fit(x, n, d, NULL, &w));
    ck_assert_msg(w.shrinkage < 0.01, "shrinkage %g", w.shrinkage);
    ck_assert_ns_ok(ns_whiten_apply(&w, x, n, z));
    for (size_t i = 0; i < n; i++)
        for (int a = 0; a < d; a++)
            m[a] += z[i * d + a] / (double)n;
    for (size_t i = 0; i < n; i++)
        for (int a = 0; a < d; a++)
            for (int b = 0; b < d; b++)
                C[a * d + b] += (z[i * d + a] - m[a]) * (z[i * d + b] - m[b]) / (double)n;
    for (int a = 0; a < d; a++) {
        ck_assert(fabs(m[a]) < 1e-3);
        for (int b = 0; b < d; b++)
            ck_assert_msg(fabs(C[a * d + b] - (a == b)) < 0.02, "C[%d][%d] = %g", a, b,
                          C[a * d + b]);
    }
    free(x);
    free(z);
    ns_whiten_release(&w);
}
END_TEST

START_TEST(test_degenerate)
{
    const int d = 40;
    float *x = skewed(10, d, 9), same[3 * 40];
    ns_whiten w;
    /* fewer rows than dimensions: shrinkage keeps C invertible */
    ck_assert_ns_ok(ns_whiten_fit(x, 10, d, NULL, &w));
    ck_assert(w.shrinkage > 0);
    for (int i = 0; i < d * d; i++)
        ck_assert(isfinite(w.W[i]));
    ns_whiten_release(&w);
    /* identical rows: S = 0, the identity (scaled) remains */
    for (int i = 0; i < 3; i++)
        memcpy(same + i * d, x, (size_t)d * sizeof *x);
    ck_assert_ns_ok(ns_whiten_fit(same, 3, d, NULL, &w));
    for (int i = 0; i < d * d; i++)
        ck_assert(isfinite(w.W[i]));
    ns_whiten_release(&w);
    /* one row kept: an error, not a division by zero */
    uint8_t skip[10] = {0, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    ck_assert_ns_status(ns_whiten_fit(x, 10, d, skip, &w), NS_ERR_USAGE);
    ck_assert_ptr_null(w.W);
    free(x);
}
END_TEST

/* The one-pass cross-fitting: each fold's transform, and the whole sample's,
 * equal the plain fit with that fold skipped (tolerances as above), on
 * folds of uneven sizes, with rows offset from zero so the pivot matters. */
START_TEST(test_folds_match_skip_fits)
{
    static const int dims[] = {1, 9, 64};
    static const size_t rows[] = {12, 300, 900};
    static const int n_folds[] = {2, 3, 5};
    for (int t = 0; t < 3; t++) {
        int d = dims[t], F = n_folds[t];
        size_t n = rows[t];
        float *x = skewed(n, d, 41 + (uint64_t)t);
        int *fold = malloc(n * sizeof *fold);
        uint8_t *skip = malloc(n);
        ns_whiten *w = calloc((size_t)F, sizeof *w), all, ref;
        ck_assert(fold && skip && w);
        for (size_t i = 0; i < n; i++)
            fold[i] = (int)((7 * i + i / 3) % (size_t)F); /* uneven */
        ck_assert_ns_ok(ns_whiten_fit_folds(x, n, d, fold, F, w, &all));
        for (int g = 0; g <= F; g++) {
            const ns_whiten *a = g < F ? &w[g] : &all;
            for (size_t i = 0; i < n; i++)
                skip[i] = g < F && fold[i] == g;
            ck_assert_ns_ok(ns_whiten_fit_ref(x, n, d, skip, &ref));
            ck_assert_int_eq(a->d, d);
            ck_assert_msg(fabs(a->shrinkage - ref.shrinkage) <= 1e-6 + 1e-4 * ref.shrinkage,
                          "d %d fold %d: shrinkage %g vs %g", d, g, a->shrinkage, ref.shrinkage);
            for (int j = 0; j < d; j++)
                ck_assert_msg(fabsf(a->mean[j] - ref.mean[j]) <= 1e-5f, "d %d fold %d: mean[%d]",
                              d, g, j);
            for (size_t i = 0; i < (size_t)d * (size_t)d; i++)
                ck_assert_msg(fabsf(a->W[i] - ref.W[i]) <= 1e-3f * (1.0f + fabsf(ref.W[i])),
                              "d %d fold %d: W[%zu] %g vs %g", d, g, i, a->W[i], ref.W[i]);
            ns_whiten_release(&ref);
        }
        for (int g = 0; g < F; g++)
            ns_whiten_release(&w[g]);
        ns_whiten_release(&all);
        /* A fold holding every row leaves fewer than 2 for its complement;
         * nothing is left allocated in out. */
        for (size_t i = 0; i < n; i++)
            fold[i] = 0;
        ck_assert_ns_status(ns_whiten_fit_folds(x, n, d, fold, 2, w, NULL), NS_ERR_USAGE);
        ck_assert(w[0].W == NULL && w[1].W == NULL);
        free(w);
        free(fold);
        free(skip);
        free(x);
    }
}
END_TEST

static Suite *whiten_suite(void)
{
    Suite *s = suite_create("whiten");
    TCase *tc = tcase_create("whiten");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fit_matches_reference);
    tcase_add_test(tc, test_identity_covariance);
    tcase_add_test(tc, test_degenerate);
    tcase_add_test(tc, test_folds_match_skip_fits);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ns_test_run(whiten_suite());
}
