/* test_ops.c -- parity of the CPU operators (ns_cpu_*) with the reference
 * (ns_ref_*) on random inputs, the shape checks, and BatchNorm folding.
 *
 * Tolerances: |cpu - ref| <= ATOL + RTOL * |ref| with RTOL 1e-4, ATOL 1e-5
 * for the float32 GEMM/accumulation paths (the reference accumulates in
 * double); inputs are in [-1, 1] and reductions short enough (K <= ~600)
 * that float32 rounding stays well inside that.  Copies, concat and
 * same-size preprocessing are exact up to one float rounding.
 *
 * Check forks a child per test, so OpenMP/OpenBLAS threads are started
 * inside the test bodies (use_threads), never in the runner.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "helpers.h"
#include "nightshift/image.h"
#include "nightshift/ops.h"

#define RTOL 1e-4
#define ATOL 1e-5

/* ---- fixtures ------------------------------------------------------------ */

static uint32_t rng_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* n floats uniform in [lo, hi). */
static float *rand_floats(size_t n, float lo, float hi, uint32_t seed)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    uint32_t s = seed | 1u;
    for (size_t i = 0; i < n; i++)
        p[i] = lo + (hi - lo) * (float)(rng_next(&s) >> 8) / 16777216.0f;
    return p;
}

/* Output buffers start as NaN so an element the operator forgot fails. */
static float *nan_floats(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        p[i] = NAN;
    return p;
}

static void use_threads(int t)
{
    omp_set_num_threads(t);
    openblas_set_num_threads(t);
}

static void assert_close(const float *got, const float *want, size_t n, double rtol, double atol,
                         const char *what)
{
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        /* Not ck_assert per element: each passing Check assertion is a write(2). */
        if (!(d <= atol + rtol * fabs(want[i])))
            ck_abort_msg("%s: element %zu: got %.8g, want %.8g", what, i, got[i], want[i]);
    }
}

static const ns_act all_acts[] = {
    {NS_ACT_NONE, 0, 0},        {NS_ACT_RELU, 0, 0},        {NS_ACT_CLIP, 0.f, 6.f},
    {NS_ACT_CLIP, -0.5f, 0.25f}, {NS_ACT_SIGMOID, 0, 0},     {NS_ACT_HARDSIGMOID, 0.2f, 0.5f},
    {NS_ACT_HARDSWISH, 0, 0},   {NS_ACT_SILU, 0, 0},
};
#define N_ACTS ((int)(sizeof all_acts / sizeof all_acts[0]))

/* ---- convolution ----------------------------------------------------------- */

typedef struct conv_case {
    int n, c_in, h, w, c_out, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, groups;
} conv_case;

static const conv_case conv_cases[] = {
    {1, 3, 9, 11, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},     /* plain 3x3 */
    {3, 5, 13, 10, 6, 3, 3, 2, 2, 1, 0, 2, 1, 1, 1, 1},    /* stride 2, asymmetric pads */
    {2, 4, 12, 12, 5, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1},    /* dilation 2 */
    {3, 4, 9, 9, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2},      /* groups 2 */
    {2, 8, 11, 9, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 8},     /* depthwise 3x3 s1 */
    {3, 6, 12, 13, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 6},    /* depthwise 3x3 s2 */
    {1, 4, 15, 14, 4, 5, 5, 2, 2, 2, 3, 4, 1, 2, 2, 4},    /* depthwise 5x5 s2 dil 2 */
    {3, 16, 7, 5, 8, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},     /* 1x1 straight to sgemm */
    {2, 8, 6, 6, 4, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 2},      /* 1x1 grouped */
    {1, 8, 9, 9, 16, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1},     /* 1x1 stride 2 (im2col) */
    {3, 3, 32, 30, 8, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1},    /* resnet stem */
    {1, 7, 5, 3, 3, 3, 1, 1, 1, 1, 0, 1, 0, 1, 1, 1},      /* 3x1, odd sizes */
    {2, 6, 8, 8, 4, 2, 3, 3, 1, 0, 1, 1, 0, 1, 3, 1},      /* mixed strides and dilations */
    {3, 12, 10, 10, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3},  /* groups 3 of 4 channels */
};

static ns_conv_params conv_params(const conv_case *c)
{
    ns_conv_params p = {.n = c->n, .c_in = c->c_in, .h = c->h, .w = c->w, .c_out = c->c_out,
                        .kh = c->kh, .kw = c->kw, .stride_h = c->sh, .stride_w = c->sw,
                        .pad_top = c->pt, .pad_left = c->pl, .pad_bottom = c->pb,
                        .pad_right = c->pr, .dil_h = c->dh, .dil_w = c->dw,
                        .groups = c->groups};
    ck_assert_ns_ok(ns_conv_prepare(&p));
    return p;
}

static void check_conv(const ns_conv_params *p, int with_bias, ns_act act, uint32_t seed,
                       const char *what)
{
    size_t nx = (size_t)p->n * p->c_in * p->h * p->w;
    size_t nw = (size_t)p->c_out * (p->c_in / p->groups) * p->kh * p->kw;
    size_t ny = (size_t)p->n * p->c_out * p->h_out * p->w_out;
    float *x = rand_floats(nx, -1, 1, seed), *w = rand_floats(nw, -1, 1, seed + 1);
    float *b = with_bias ? rand_floats((size_t)p->c_out, -1, 1, seed + 2) : NULL;
    float *want = nan_floats(ny), *got = nan_floats(ny);
    /* Exactly the advertised size: ASan catches any overrun. */
    size_t nws = ns_conv_workspace_floats(p, omp_get_max_threads());
    float *ws = nws ? malloc(nws * sizeof *ws) : NULL;
    ck_assert(nws == 0 || ws != NULL);
    ns_ref_conv2d(p, x, w, b, act, want);
    ns_cpu_conv2d(p, x, w, b, act, got, ws);
    assert_close(got, want, ny, RTOL, ATOL, what);
    free(x), free(w), free(b), free(want), free(got), free(ws);
}

START_TEST(test_conv_parity)
{
    use_threads(2);
    for (int i = 0; i < (int)(sizeof conv_cases / sizeof conv_cases[0]); i++) {
        ns_conv_params p = conv_params(&conv_cases[i]);
        char what[64];
        snprintf(what, sizeof what, "conv case %d", i);
        check_conv(&p, i % 2 == 0, all_acts[i % 3], 100u + (uint32_t)i, what);
        /* Batch 1 runs the images-in-turn path with threaded sgemm. */
        p.n = 1;
        snprintf(what, sizeof what, "conv case %d, batch 1", i);
        check_conv(&p, i % 2 == 1, all_acts[1], 200u + (uint32_t)i, what);
    }
}
END_TEST

START_TEST(test_conv_one_thread)
{
    use_threads(1);
    for (int i = 0; i < (int)(sizeof conv_cases / sizeof conv_cases[0]); i++) {
        ns_conv_params p = conv_params(&conv_cases[i]);
        check_conv(&p, 1, all_acts[0], 300u + (uint32_t)i, "conv, one thread");
    }
}
END_TEST

START_TEST(test_conv_every_act)
{
    use_threads(2);
    const conv_case dense = {3, 4, 7, 8, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    const conv_case depthwise = {2, 5, 7, 6, 5, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 5};
    for (int a = 0; a < N_ACTS; a++) {
        ns_conv_params p = conv_params(&dense), q = conv_params(&depthwise);
        check_conv(&p, 1, all_acts[a], 400u + (uint32_t)a, "conv act");
        check_conv(&q, 1, all_acts[a], 500u + (uint32_t)a, "depthwise act");
    }
}
END_TEST

START_TEST(test_conv_prepare)
{
    ns_conv_params p = {.n = 1, .c_in = 3, .h = 224, .w = 224, .c_out = 64, .kh = 7, .kw = 7,
                        .stride_h = 2, .stride_w = 2, .pad_top = 3, .pad_left = 3,
                        .pad_bottom = 3, .pad_right = 3, .dil_h = 1, .dil_w = 1, .groups = 1};
    ck_assert_ns_ok(ns_conv_prepare(&p));
    ck_assert_int_eq(p.h_out, 112);
    ck_assert_int_eq(p.w_out, 112);
    ns_conv_params q = {.n = 1, .c_in = 2, .h = 7, .w = 6, .c_out = 2, .kh = 3, .kw = 3,
                        .stride_h = 1, .stride_w = 2, .dil_h = 2, .dil_w = 1, .groups = 1,
                        .pad_right = 1};
    ck_assert_ns_ok(ns_conv_prepare(&q));
    ck_assert_int_eq(q.h_out, 3); /* (7 - 5) / 1 + 1 */
    ck_assert_int_eq(q.w_out, 3); /* (6 + 1 - 3) / 2 + 1 */

    ns_conv_params bad;
    bad = p, bad.groups = 2; /* does not divide c_in 3 */
    ck_assert_ns_status(ns_conv_prepare(&bad), NS_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "groups"));
    bad = p, bad.c_in = 4, bad.groups = 4, bad.c_out = 6; /* does not divide c_out */
    ck_assert_ns_status(ns_conv_prepare(&bad), NS_ERR_USAGE);
    bad = q, bad.h = 4; /* dilated kernel 5 > 4 */
    ck_assert_ns_status(ns_conv_prepare(&bad), NS_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "larger"));
    bad = p, bad.stride_w = 0;
    ck_assert_ns_status(ns_conv_prepare(&bad), NS_ERR_USAGE);
    bad = p, bad.dil_h = 0;
    ck_assert_ns_status(ns_conv_prepare(&bad), NS_ERR_USAGE);
    bad = p, bad.pad_left = -1;
    ck_assert_ns_status(ns_conv_prepare(&bad), NS_ERR_USAGE);
    bad = p, bad.groups = 0;
    ck_assert_ns_status(ns_conv_prepare(&bad), NS_ERR_USAGE);
    bad = p, bad.n = 0;
    ck_assert_ns_status(ns_conv_prepare(&bad), NS_ERR_USAGE);
    bad = p, bad.dil_h = 1 << 30; /* must not overflow into a fitting kernel */
    ck_assert_ns_status(ns_conv_prepare(&bad), NS_ERR_USAGE);
}
END_TEST

/* Conv + BN computed directly vs the folded conv (reference and CPU). */
START_TEST(test_fold_batchnorm)
{
    use_threads(2);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        const conv_case cc = {2, 6, 9, 8, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
        ns_conv_params p = conv_params(&cc);
        const float eps = 1e-5f;
        int co = p.c_out;
        size_t k = (size_t)p.c_in * p.kh * p.kw, nx = (size_t)p.n * p.c_in * p.h * p.w;
        size_t hw = (size_t)p.h_out * p.w_out, ny = (size_t)p.n * co * hw;
        float *x = rand_floats(nx, -1, 1, 11), *w = rand_floats((size_t)co * k, -1, 1, 12);
        float *b = with_bias ? rand_floats((size_t)co, -1, 1, 13) : calloc((size_t)co, 4);
        float *gamma = rand_floats((size_t)co, 0.5f, 2, 14), *beta = rand_floats(co, -1, 1, 15);
        float *mean = rand_floats((size_t)co, -1, 1, 16), *var = rand_floats(co, 0.1f, 3, 17);
        float *want = nan_floats(ny), *got = nan_floats(ny), *got_ref = nan_floats(ny);
        float *ws = malloc((ns_conv_workspace_floats(&p, omp_get_max_threads()) + 1) * 4);
        ck_assert_ptr_nonnull(b);
        ck_assert_ptr_nonnull(ws);
        ns_act relu = {NS_ACT_RELU, 0, 0}, none = {NS_ACT_NONE, 0, 0};

        ns_ref_conv2d(&p, x, w, with_bias ? b : NULL, none, want);
        for (int n = 0; n < p.n; n++)
            for (int c = 0; c < co; c++)
                for (size_t i = 0; i < hw; i++) {
                    float *v = &want[((size_t)n * co + c) * hw + i];
                    double t = (*v - mean[c]) / sqrt((double)var[c] + eps) * gamma[c] + beta[c];
                    *v = (float)(t > 0 ? t : 0);
                }
        ns_fold_batchnorm(w, b, co, k, gamma, beta, mean, var, eps);
        ns_ref_conv2d(&p, x, w, b, relu, got_ref);
        ns_cpu_conv2d(&p, x, w, b, relu, got, ws);
        assert_close(got_ref, want, ny, RTOL, ATOL, "folded reference conv");
        assert_close(got, want, ny, RTOL, ATOL, "folded cpu conv");
        free(x), free(w), free(b), free(gamma), free(beta), free(mean), free(var);
        free(want), free(got), free(got_ref), free(ws);
    }
}
END_TEST

/* ---- pooling ------------------------------------------------------------------- */

static ns_pool_params pool(int n, int c, int h, int w, int k, int s, int pad, int cip, int ceil)
{
    ns_pool_params p = {.n = n, .c = c, .h = h, .w = w, .kh = k, .kw = k, .stride_h = s,
                        .stride_w = s, .pad_top = pad, .pad_left = pad, .pad_bottom = pad,
                        .pad_right = pad, .count_include_pad = cip, .ceil_mode = ceil};
    ck_assert_ns_ok(ns_pool_prepare(&p));
    return p;
}

static void check_pool(const ns_pool_params *p, int avg, uint32_t seed)
{
    size_t nx = (size_t)p->n * p->c * p->h * p->w, ny = (size_t)p->n * p->c * p->h_out * p->w_out;
    float *x = rand_floats(nx, -1, 1, seed), *want = nan_floats(ny), *got = nan_floats(ny);
    if (avg) {
        ns_ref_avgpool(p, x, want);
        ns_cpu_avgpool(p, x, got);
    } else {
        ns_ref_maxpool(p, x, want);
        ns_cpu_maxpool(p, x, got);
    }
    assert_close(got, want, ny, RTOL, ATOL, avg ? "avgpool" : "maxpool");
    free(x), free(want), free(got);
}

START_TEST(test_pool_parity)
{
    use_threads(2);
    ns_pool_params mp = pool(3, 4, 11, 12, 3, 2, 1, 0, 0); /* resnet's maxpool */
    ck_assert_int_eq(mp.h_out, 6);
    ck_assert_int_eq(mp.w_out, 6);
    check_pool(&mp, 0, 1);
    ns_pool_params mpc = pool(2, 3, 10, 9, 3, 2, 1, 0, 1);
    check_pool(&mpc, 0, 2);
    for (int cip = 0; cip < 2; cip++)
        for (int ceil = 0; ceil < 2; ceil++) {
            ns_pool_params a = pool(2, 3, 11, 10, 3, 2, 1, cip, ceil);
            check_pool(&a, 1, 3u + (uint32_t)(2 * cip + ceil));
            ns_pool_params b = pool(1, 2, 7, 7, 2, 2, 1, cip, ceil);
            check_pool(&b, 1, 9u + (uint32_t)(2 * cip + ceil));
        }
    /* Asymmetric padding, rectangular kernel. */
    ns_pool_params r = {.n = 2, .c = 2, .h = 9, .w = 8, .kh = 3, .kw = 2, .stride_h = 2,
                        .stride_w = 1, .pad_top = 0, .pad_left = 1, .pad_bottom = 2,
                        .pad_right = 0, .count_include_pad = 1, .ceil_mode = 1};
    ck_assert_ns_ok(ns_pool_prepare(&r));
    check_pool(&r, 1, 20);
    check_pool(&r, 0, 21);
}
END_TEST

START_TEST(test_pool_known_values)
{
    /* 3x3 ones, kernel 3, stride 1, pad 1: corners average 4 ones. */
    float x[9], y[9];
    for (int i = 0; i < 9; i++)
        x[i] = 1.f;
    ns_pool_params p = pool(1, 1, 3, 3, 3, 1, 1, 1, 0);
    ns_cpu_avgpool(&p, x, y);
    ck_assert_float_eq_tol(y[0], 4.f / 9.f, 1e-6f);
    ck_assert_float_eq_tol(y[1], 6.f / 9.f, 1e-6f);
    ck_assert_float_eq_tol(y[4], 1.f, 1e-6f);
    p.count_include_pad = 0;
    ns_cpu_avgpool(&p, x, y);
    for (int i = 0; i < 9; i++)
        ck_assert_float_eq_tol(y[i], 1.f, 1e-6f);
    /* Ceil mode: floor((5 - 2) / 2) + 1 = 2 vs 3. */
    ck_assert_int_eq(pool(1, 1, 5, 5, 2, 2, 0, 0, 0).h_out, 2);
    ck_assert_int_eq(pool(1, 1, 5, 5, 2, 2, 0, 0, 1).h_out, 3);
    /* ... and the window that would start in the padding is dropped. */
    ck_assert_int_eq(pool(1, 1, 5, 5, 2, 2, 1, 0, 1).h_out, 3);
    ck_assert_int_eq(pool(1, 1, 6, 6, 3, 2, 1, 0, 1).h_out, 4);
}
END_TEST

START_TEST(test_pool_prepare_errors)
{
    ns_pool_params p = {.n = 1, .c = 1, .h = 4, .w = 4, .kh = 3, .kw = 3, .stride_h = 1,
                        .stride_w = 1};
    ns_pool_params bad;
    bad = p, bad.kh = 5; /* larger than the input */
    ck_assert_ns_status(ns_pool_prepare(&bad), NS_ERR_USAGE);
    bad = p, bad.pad_top = 3; /* pad not smaller than the kernel */
    ck_assert_ns_status(ns_pool_prepare(&bad), NS_ERR_USAGE);
    bad = p, bad.stride_w = 0;
    ck_assert_ns_status(ns_pool_prepare(&bad), NS_ERR_USAGE);
    bad = p, bad.c = 0;
    ck_assert_ns_status(ns_pool_prepare(&bad), NS_ERR_USAGE);
    ck_assert_str_ne(ns_errmsg(), "");
}
END_TEST

START_TEST(test_global_avgpool)
{
    use_threads(2);
    int shapes[][3] = {{1, 3, 49}, {3, 17, 13}, {16, 64, 49}};
    for (int s = 0; s < 3; s++) {
        int n = shapes[s][0], c = shapes[s][1], hw = shapes[s][2];
        float *x = rand_floats((size_t)n * c * hw, -1, 1, 30u + (uint32_t)s);
        float *want = nan_floats((size_t)n * c), *got = nan_floats((size_t)n * c);
        ns_ref_global_avgpool(x, n, c, hw, want);
        ns_cpu_global_avgpool(x, n, c, hw, got);
        assert_close(got, want, (size_t)n * c, RTOL, ATOL, "global avgpool");
        free(x), free(want), free(got);
    }
}
END_TEST

/* ---- elementwise --------------------------------------------------------- */

START_TEST(test_act_add_mul)
{
    use_threads(2);
    const size_t sizes[] = {1, 37, 100003};
    for (int si = 0; si < 3; si++) {
        size_t n = sizes[si];
        for (int a = 0; a < N_ACTS; a++) {
            float *x = rand_floats(n, -8, 8, 40u + (uint32_t)a);
            float *b = rand_floats(n, -4, 4, 50u + (uint32_t)a);
            float *want = malloc(n * 4), *got = malloc(n * 4);
            ck_assert_ptr_nonnull(want);
            ck_assert_ptr_nonnull(got);
            memcpy(want, x, n * 4);
            memcpy(got, x, n * 4);
            ns_ref_act(all_acts[a], want, n);
            ns_cpu_act(all_acts[a], got, n);
            assert_close(got, want, n, RTOL, ATOL, "act");
            ns_ref_add(x, b, want, n, all_acts[a]);
            memcpy(got, x, n * 4);
            ns_cpu_add(got, b, got, n, all_acts[a]); /* y aliases a */
            assert_close(got, want, n, RTOL, ATOL, "add");
            free(x), free(b), free(want), free(got);
        }
    }
    /* Spot values. */
    float v[4] = {-4.f, -1.f, 0.5f, 7.f};
    ns_cpu_act((ns_act){NS_ACT_CLIP, 0.f, 6.f}, v, 4);
    ck_assert_float_eq(v[0], 0.f);
    ck_assert_float_eq(v[2], 0.5f);
    ck_assert_float_eq(v[3], 6.f);
    float h[3] = {-3.f, 0.f, 3.f};
    ns_cpu_act((ns_act){NS_ACT_HARDSWISH, 0, 0}, h, 3);
    ck_assert_float_eq_tol(h[0], 0.f, 1e-7f);
    ck_assert_float_eq_tol(h[2], 3.f, 1e-6f);

    int n = 3, c = 5, hw = 29;
    float *x = rand_floats((size_t)n * c * hw, -1, 1, 60), *s = rand_floats((size_t)n * c, 0, 1, 61);
    float *want = nan_floats((size_t)n * c * hw), *got = nan_floats((size_t)n * c * hw);
    ns_ref_mul_channel(x, s, want, n, c, hw);
    ns_cpu_mul_channel(x, s, got, n, c, hw);
    assert_close(got, want, (size_t)n * c * hw, 0, 0, "mul_channel");
    free(x), free(s), free(want), free(got);
}
END_TEST

/* ---- dense ------------------------------------------------------------------- */

START_TEST(test_gemm)
{
    use_threads(2);
    int shapes[][3] = {{1, 8, 3}, {5, 37, 11}, {16, 512, 40}};
    for (int s = 0; s < 3; s++)
        for (int with_bias = 0; with_bias < 2; with_bias++)
            for (int a = 0; a < N_ACTS; a++) {
                int n = shapes[s][0], k = shapes[s][1], m = shapes[s][2];
                uint32_t seed = 70u + (uint32_t)(s * 100 + with_bias * 10 + a);
                float *x = rand_floats((size_t)n * k, -1, 1, seed);
                float *w = rand_floats((size_t)m * k, -1, 1, seed + 1);
                float *b = with_bias ? rand_floats((size_t)m, -1, 1, seed + 2) : NULL;
                float *want = nan_floats((size_t)n * m), *got = nan_floats((size_t)n * m);
                ns_ref_gemm(x, w, b, want, n, k, m, all_acts[a]);
                ns_cpu_gemm(x, w, b, got, n, k, m, all_acts[a]);
                assert_close(got, want, (size_t)n * m, RTOL, ATOL, "gemm");
                free(x), free(w), free(b), free(want), free(got);
            }
}
END_TEST

START_TEST(test_concat)
{
    use_threads(2);
    const int c[3] = {2, 3, 1}, n = 2, hw = 5;
    float *x[3];
    for (int i = 0; i < 3; i++)
        x[i] = rand_floats((size_t)n * c[i] * hw, -1, 1, 80u + (uint32_t)i);
    size_t ny = (size_t)n * 6 * hw;
    float *want = nan_floats(ny), *got = nan_floats(ny);
    ns_ref_concat((const float *const *)x, c, 3, n, hw, want);
    ns_cpu_concat((const float *const *)x, c, 3, n, hw, got);
    assert_close(got, want, ny, 0, 0, "concat");
    /* Image 1, channel 2 is the second input's channel 0 of image 1. */
    ck_assert_float_eq(got[(1 * 6 + 2) * hw + 4], x[1][(1 * 3 + 0) * hw + 4]);
    ck_assert_float_eq(got[(1 * 6 + 5) * hw + 0], x[2][1 * hw + 0]);
    for (int i = 0; i < 3; i++)
        free(x[i]);
    free(want), free(got);
}
END_TEST

START_TEST(test_l2norm)
{
    use_threads(2);
    const int n = 4, d = 513;
    float *want = rand_floats((size_t)n * d, -1, 1, 90), *got = malloc((size_t)n * d * 4);
    ck_assert_ptr_nonnull(got);
    memset(want + 2 * d, 0, (size_t)d * 4); /* a zero row stays zero */
    memcpy(got, want, (size_t)n * d * 4);
    ns_ref_l2norm(want, n, d);
    ns_cpu_l2norm(got, n, d);
    assert_close(got, want, (size_t)n * d, RTOL, ATOL, "l2norm");
    for (int i = 0; i < n; i++) {
        double ss = 0;
        for (int j = 0; j < d; j++) {
            ss += (double)got[(size_t)i * d + j] * got[(size_t)i * d + j];
        }
        ck_assert_double_eq_tol(ss, i == 2 ? 0.0 : 1.0, 1e-5);
    }
    free(want), free(got);
}
END_TEST

/* ---- preprocessing ----------------------------------------------------------- */

static uint8_t *rand_bytes(size_t n, uint32_t seed)
{
    uint8_t *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    uint32_t s = seed | 1u;
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(rng_next(&s) >> 24);
    return p;
}

START_TEST(test_preprocess)
{
    use_threads(2);
    const ns_preproc pps[2] = {
        {.size = 0, .bgr = 0, .mean = {0.485f, 0.456f, 0.406f}, .std = {0.229f, 0.224f, 0.225f}},
        {.size = 0, .bgr = 1, .mean = {0.5f, 0.25f, 0.f}, .std = {1.f, 0.5f, 2.f}},
    };
    const int n = 3, S = 37;
    uint8_t *frames = rand_bytes((size_t)n * S * S * 3, 99);
    for (int v = 0; v < 2; v++) {
        const int sizes[3] = {S, 16, 36};
        for (int si = 0; si < 3; si++) {
            ns_preproc pp = pps[v];
            pp.size = sizes[si];
            size_t ny = (size_t)n * 3 * pp.size * pp.size;
            float *want = nan_floats(ny), *got = nan_floats(ny);
            ns_ref_preprocess(&pp, frames, n, S, want);
            ns_cpu_preprocess(&pp, frames, n, S, got);
            if (pp.size == S) {
                assert_close(got, want, ny, 1e-6, 1e-6, "preprocess, same size");
                /* Pixel (0, 0) of image 1, model channel 0, by hand. */
                int ch = pp.bgr ? 2 : 0;
                float x = frames[(size_t)S * S * 3 + ch] / 255.f;
                ck_assert_float_eq_tol(got[3 * (size_t)S * S], (x - pp.mean[0]) / pp.std[0],
                                       1e-5f);
                free(want), free(got);
                continue;
            }
            /* The reference resizes by the definition in double; the CPU path
             * uses ns_resize_area's float weights, so a value exactly half-way
             * may round the other way: one uint8 step at most. */
            float step = 1.f / (255.f * fminf(pp.std[0], fminf(pp.std[1], pp.std[2])));
            assert_close(got, want, ny, 0, step + 1e-5, "preprocess, resized vs reference");
            /* Exact against ns_resize_area then same-size preprocessing. */
            uint8_t *small = malloc((size_t)n * pp.size * pp.size * 3);
            float *exact = nan_floats(ny);
            ck_assert_ptr_nonnull(small);
            for (int b = 0; b < n; b++)
                ns_resize_area(frames + (size_t)b * S * S * 3, S, S, (size_t)S * 3,
                               small + (size_t)b * pp.size * pp.size * 3, pp.size, pp.size,
                               (size_t)pp.size * 3);
            ns_ref_preprocess(&pp, small, n, pp.size, exact);
            assert_close(got, exact, ny, 1e-6, 1e-6, "preprocess, resized vs ns_resize_area");
            size_t off = 0;
            for (size_t i = 0; i < ny; i++)
                off += got[i] != want[i] && fabsf(got[i] - want[i]) > 1e-5f;
            ck_assert_msg(off * 100 < ny, "%zu of %zu resized values off by a step", off, ny);
            free(small), free(exact), free(want), free(got);
        }
    }
    free(frames);
}
END_TEST

/* ---- executor fast paths (ops_cpu.c) ------------------------------------------ */

/* Small output planes batched several images to a GEMM (with uneven units
 * and every thread count), stride-2 convs through the de-interleaved input
 * (odd widths, every left pad, kw 3/5/7), pointwise convs batched, and the
 * im2col tiles of huge planes (two tiles, the second partial). */
START_TEST(test_conv_fast_paths)
{
    static const conv_case cases[] = {
        {37, 6, 7, 7, 10, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},   /* 4x4 out: batched units */
        {5, 4, 3, 5, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},     /* 15 px out, 5 images */
        {9, 16, 5, 5, 8, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},    /* pointwise, batched */
        {2, 3, 13, 17, 5, 3, 3, 2, 2, 1, 0, 1, 2, 1, 1, 1},   /* s2, odd width, pad 0/2 */
        {2, 3, 12, 15, 4, 5, 5, 2, 2, 2, 1, 2, 2, 1, 1, 1},   /* s2 5x5, pad 1 */
        {1, 3, 23, 21, 6, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1},   /* stem-like, odd width */
        {3, 2, 9, 10, 3, 4, 3, 1, 2, 0, 2, 1, 0, 1, 1, 1},    /* s2 only across, pad 2 */
        {2, 5, 33, 31, 4, 3, 5, 2, 2, 1, 2, 1, 2, 1, 1, 1},   /* 16x16 out: one per GEMM */
        {70, 2, 3, 3, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},    /* 2x2 out, more than 64 images */
    };
    for (int t = 1; t <= 3; t++) {
        use_threads(t);
        for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
            ns_conv_params p = conv_params(&cases[i]);
            char what[96];
            snprintf(what, sizeof what, "fast-path conv case %d, %d threads", i, t);
            check_conv(&p, (i + t) % 2, all_acts[(i + t) % N_ACTS], 600u + (uint32_t)(10 * i + t),
                       what);
            p.n = 1;
            snprintf(what, sizeof what, "fast-path conv case %d, batch 1, %d threads", i, t);
            check_conv(&p, 1, all_acts[1], 700u + (uint32_t)(10 * i + t), what);
        }
    }
    /* A plane big enough to be tiled: 3 x 420 x 420 -> 3x3 taps over 176,400 pixels. */
    const conv_case big = {2, 3, 420, 420, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    for (int t = 1; t <= 2; t++) {
        use_threads(t);
        ns_conv_params p = conv_params(&big);
        check_conv(&p, 1, all_acts[1], 800u + (uint32_t)t, "tiled conv");
        p.n = 1;
        check_conv(&p, 0, all_acts[0], 810u + (uint32_t)t, "tiled conv, batch 1");
    }
}
END_TEST

/* Dense conv run at a smaller batch than the workspace was sized for (the
 * executor plans for max_batch and runs partial batches). */
START_TEST(test_conv_partial_batch)
{
    use_threads(2);
    const conv_case cc = {40, 8, 7, 7, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1};
    ns_conv_params plan = conv_params(&cc);
    size_t nws = ns_conv_workspace_floats(&plan, 2);
    float *ws = malloc(nws * sizeof *ws);
    ck_assert_ptr_nonnull(ws);
    for (int n = 1; n <= 40; n += 3) {
        ns_conv_params p = plan;
        p.n = n;
        size_t nx = (size_t)n * p.c_in * p.h * p.w, ny = (size_t)n * p.c_out * p.h_out * p.w_out;
        float *x = rand_floats(nx, -1, 1, 900u + (uint32_t)n);
        float *w = rand_floats((size_t)p.c_out * p.c_in * 9, -1, 1, 950u + (uint32_t)n);
        float *want = nan_floats(ny), *got = nan_floats(ny);
        ns_ref_conv2d(&p, x, w, NULL, all_acts[1], want);
        ns_cpu_conv2d(&p, x, w, NULL, all_acts[1], got, ws);
        assert_close(got, want, ny, RTOL, ATOL, "conv, partial batch");
        free(x), free(w), free(want), free(got);
    }
    free(ws);
}
END_TEST

/* The separable max pool: odd and even widths, every pad, windows cut by
 * ceil mode, a global 4x4/4 pool, rectangular windows, and rows too wide
 * for it (the generic loop). */
START_TEST(test_maxpool_fast_path)
{
    for (int t = 1; t <= 2; t++) {
        use_threads(t);
        for (int w = 1; w <= 9; w++)
            for (int pad = 0; pad <= 1; pad++)
                for (int ceil = 0; ceil <= 1; ceil++) {
                    if (w + 2 * pad < 3)
                        continue;
                    ns_pool_params p = pool(2, 3, 5 + w % 3, w, 3, 2, pad, 0, ceil);
                    check_pool(&p, 0, 1000u + (uint32_t)(w * 4 + pad * 2 + ceil));
                }
        ns_pool_params g = pool(5, 7, 4, 4, 4, 4, 0, 0, 0); /* the default backbone's */
        ck_assert_int_eq(g.h_out * g.w_out, 1);
        check_pool(&g, 0, 1100);
        ns_pool_params k2 = pool(2, 2, 6, 7, 2, 1, 0, 0, 0);
        check_pool(&k2, 0, 1101);
        ns_pool_params r = {.n = 2, .c = 3, .h = 8, .w = 11, .kh = 2, .kw = 3, .stride_h = 1,
                            .stride_w = 2, .pad_top = 1, .pad_left = 2, .pad_bottom = 0,
                            .pad_right = 1, .ceil_mode = 1};
        ck_assert_ns_ok(ns_pool_prepare(&r));
        check_pool(&r, 0, 1102);
        ns_pool_params wide = pool(1, 2, 3, 2100, 3, 2, 1, 0, 0);
        check_pool(&wide, 0, 1103);
    }
}
END_TEST

/* Halving (S = 2 size): the 2x2 mean path, exact against ns_resize_area then
 * same-size preprocessing, both channel orders, odd output size. */
START_TEST(test_preprocess_half)
{
    use_threads(2);
    const int n = 3;
    const int sizes[2] = {19, 8};
    for (int si = 0; si < 2; si++)
        for (int bgr = 0; bgr < 2; bgr++) {
            const int sz = sizes[si], S = 2 * sz;
            ns_preproc pp = {.size = sz, .bgr = bgr, .mean = {0.485f, 0.456f, 0.406f},
                             .std = {0.229f, 0.224f, 0.225f}};
            uint8_t *frames = rand_bytes((size_t)n * S * S * 3, 1200u + (uint32_t)(si + 2 * bgr));
            /* Half-way sums (4k + 2) must round up: plant some. */
            for (int i = 0; i < 6; i++)
                frames[(size_t)i * 6] = frames[(size_t)i * 6 + 3] = 1,
                frames[(size_t)S * 3 + (size_t)i * 6] = frames[(size_t)S * 3 + (size_t)i * 6 + 3] = 0;
            size_t ny = (size_t)n * 3 * sz * sz;
            uint8_t *small = malloc((size_t)n * sz * sz * 3);
            float *got = nan_floats(ny), *exact = nan_floats(ny), *want = nan_floats(ny);
            ck_assert_ptr_nonnull(small);
            for (int b = 0; b < n; b++)
                ns_resize_area(frames + (size_t)b * S * S * 3, S, S, (size_t)S * 3,
                               small + (size_t)b * sz * sz * 3, sz, sz, (size_t)sz * 3);
            ns_ref_preprocess(&pp, small, n, sz, exact);
            ns_cpu_preprocess(&pp, frames, n, S, got);
            assert_close(got, exact, ny, 1e-6, 1e-6, "halving preprocess vs ns_resize_area");
            ns_ref_preprocess(&pp, frames, n, S, want);
            assert_close(got, want, ny, 1e-6, 1e-6, "halving preprocess vs reference");
            free(frames), free(small), free(got), free(exact), free(want);
        }
}
END_TEST

static Suite *ops_suite(void)
{
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_conv_parity);
    tcase_add_test(tc, test_conv_one_thread);
    tcase_add_test(tc, test_conv_every_act);
    tcase_add_test(tc, test_conv_prepare);
    tcase_add_test(tc, test_fold_batchnorm);
    tcase_add_test(tc, test_pool_parity);
    tcase_add_test(tc, test_pool_known_values);
    tcase_add_test(tc, test_pool_prepare_errors);
    tcase_add_test(tc, test_global_avgpool);
    tcase_add_test(tc, test_act_add_mul);
    tcase_add_test(tc, test_gemm);
    tcase_add_test(tc, test_concat);
    tcase_add_test(tc, test_l2norm);
    tcase_add_test(tc, test_preprocess);
    tcase_add_test(tc, test_conv_fast_paths);
    tcase_add_test(tc, test_conv_partial_batch);
    tcase_add_test(tc, test_maxpool_fast_path);
    tcase_add_test(tc, test_preprocess_half);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ns_test_run(ops_suite()); }
