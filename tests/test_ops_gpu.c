/* GPU suite for the embedding operators: every ns_cuda_* operator against its
 * ns_ref_* twin on random shapes (upload, run, download, compare).  Runs where
 * a CUDA device is present and exits 77 (skipped) elsewhere.
 *
 * Tolerance: |got - want| <= 1e-5 + 1e-4 * |want|.  The reference accumulates
 * in double, the device in float; weights are scaled by 1/sqrt(fan-in) so
 * outputs stay O(1) and float rounding stays far below the bound.
 * Preprocessing rounds to uint8 in both, so it agrees to float rounding too. */
#include <math.h>
#include <stdint.h>

#include "gpu_helpers.h"
#include "nightshift/ops.h"
#include "ns_cuda.h"

#define TOL_ABS 1e-5
#define TOL_REL 1e-4

static ns_cuda_ctx *g_ctx; /* one context for the whole run (CK_NOFORK) */
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}

/* Uniform integer in [lo, hi]. */
static int rnd_int(int lo, int hi) { return lo + (int)(rnd() % (uint32_t)(hi - lo + 1)); }

static float rnd_float(float lo, float hi)
{
    return lo + (hi - lo) * (float)(rnd() & 0xffffff) / (float)0x1000000;
}

static float *host_random(size_t n, float scale)
{
    float *h = malloc((n ? n : 1) * sizeof *h);
    ck_assert_ptr_nonnull(h);
    for (size_t i = 0; i < n; i++)
        h[i] = rnd_float(-scale, scale);
    return h;
}

static void *dev_alloc(size_t bytes)
{
    void *d = NULL;
    ck_assert_ns_ok(ns_cuda_malloc(&d, bytes));
    ck_assert_ptr_nonnull(d);
    return d;
}

static float *dev_from(const float *h, size_t n)
{
    float *d = dev_alloc(n * sizeof *d);
    ck_assert_ns_ok(ns_cuda_upload(g_ctx, d, h, n * sizeof *d));
    return d;
}

/* Downloads n floats from dev and compares them with want. */
static void expect_close(const float *dev, const float *want, size_t n, const char *what)
{
    float *got = malloc((n ? n : 1) * sizeof *got);
    ck_assert_ptr_nonnull(got);
    ck_assert_ns_ok(ns_cuda_download(g_ctx, got, dev, n * sizeof *got));
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        ck_assert_msg(d <= TOL_ABS + TOL_REL * fabs((double)want[i]),
                      "%s: element %zu of %zu: got %.9g, want %.9g", what, i, n, got[i],
                      want[i]);
    }
    free(got);
}

static ns_act random_act(void) { return ns_test_act(rnd_int(NS_ACT_NONE, NS_ACT_SILU)); }

/* ---- convolution ------------------------------------------------------------- */

static void check_conv(ns_conv_params p, int with_bias, ns_act act, const char *what)
{
    char msg[256];
    ck_assert_ns_ok(ns_conv_prepare(&p));
    size_t K = (size_t)(p.c_in / p.groups) * p.kh * p.kw;
    size_t nx = (size_t)p.n * p.c_in * p.h * p.w, nw = (size_t)p.c_out * K;
    size_t ny = (size_t)p.n * p.c_out * p.h_out * p.w_out;
    float *x = host_random(nx, 1.0f), *w = host_random(nw, 1.0f / sqrtf((float)K));
    float *b = with_bias ? host_random((size_t)p.c_out, 0.5f) : NULL;
    float *want = malloc(ny * sizeof *want);
    ck_assert_ptr_nonnull(want);
    ns_ref_conv2d(&p, x, w, b, act, want);

    float *dx = dev_from(x, nx), *dw = dev_from(w, nw), *db = b ? dev_from(b, (size_t)p.c_out) : NULL;
    float *dy = dev_alloc(ny * sizeof *dy), *ws = NULL;
    size_t wsf = ns_cuda_conv_workspace_floats(&p);
    if (wsf > 0)
        ws = dev_alloc(wsf * sizeof *ws);
    ck_assert_ns_ok(ns_cuda_conv2d(g_ctx, &p, dx, dw, db, act, dy, ws));
    snprintf(msg, sizeof msg,
             "%s: conv n%d c%d->%d %dx%d k%dx%d s%dx%d pad %d,%d,%d,%d dil %dx%d g%d act %d%s",
             what, p.n, p.c_in, p.c_out, p.h, p.w, p.kh, p.kw, p.stride_h, p.stride_w,
             p.pad_top, p.pad_left, p.pad_bottom, p.pad_right, p.dil_h, p.dil_w, p.groups,
             (int)act.kind, with_bias ? " bias" : "");
    expect_close(dy, want, ny, msg);
    ns_cuda_free(dx);
    ns_cuda_free(dw);
    ns_cuda_free(db);
    ns_cuda_free(dy);
    ns_cuda_free(ws);
    free(x);
    free(w);
    free(b);
    free(want);
}

START_TEST(test_conv_fixed_shapes)
{
    ns_act relu = {NS_ACT_RELU, 0, 0}, none = {NS_ACT_NONE, 0, 0};
    ns_act hswish = {NS_ACT_HARDSWISH, 0, 0};
    /* Stem, pointwise (no im2col), depthwise, depthwise with multiplier 2, grouped. */
    check_conv(ns_test_conv(2, 3, 32, 32, 16, 3, 2, 1, 1), 1, relu, "stem");
    check_conv(ns_test_conv(2, 24, 9, 11, 40, 1, 1, 0, 1), 1, none, "pointwise");
    check_conv(ns_test_conv(1, 24, 9, 11, 40, 1, 2, 0, 1), 0, none, "strided 1x1");
    check_conv(ns_test_conv(2, 32, 15, 15, 32, 3, 1, 1, 32), 1, hswish, "depthwise");
    check_conv(ns_test_conv(1, 16, 14, 13, 16, 5, 2, 2, 16), 1, relu, "depthwise 5x5 s2");
    check_conv(ns_test_conv(1, 8, 10, 10, 16, 3, 1, 1, 8), 1, none, "depthwise x2");
    check_conv(ns_test_conv(2, 12, 10, 10, 18, 3, 1, 1, 3), 1, relu, "grouped");
    ns_conv_params asym = ns_test_conv(1, 5, 12, 9, 7, 3, 1, 0, 1);
    asym.kh = 3;
    asym.kw = 2;
    asym.pad_top = 2;
    asym.pad_right = 1;
    asym.dil_h = 2;
    asym.stride_w = 2;
    check_conv(asym, 0, relu, "asymmetric");
    /* 3x3 stride 1 ungrouped: Winograd when the context has it (below). */
    check_conv(ns_test_conv(2, 16, 13, 14, 24, 3, 1, 1, 1), 1, relu, "3x3 s1, odd sizes");
    check_conv(ns_test_conv(3, 64, 28, 28, 64, 3, 1, 1, 1), 1, none, "3x3 s1, resnet layer");
    ns_conv_params apad = ns_test_conv(1, 7, 9, 6, 5, 3, 1, 0, 1);
    apad.pad_top = 2;
    apad.pad_right = 1;
    check_conv(apad, 0, relu, "3x3 s1, asymmetric padding");
    /* The implicit GEMM's tiles (kernels/conv_implicit.cu), when the context has
     * it: a resnet-like stem (64 outputs: the 64 x 256 tile; K = 147, not a
     * multiple of 8), 130 outputs (a partial second 128-row tile), 7x7 maps
     * (P = 49: scalar stores), columns ending mid-tile, and a 1x1 stride-2. */
    check_conv(ns_test_conv(2, 3, 45, 45, 64, 7, 2, 3, 1), 1, relu, "stem 7x7 s2");
    check_conv(ns_test_conv(3, 20, 7, 7, 130, 3, 1, 1, 1), 1, relu, "130 outputs, 7x7 maps");
    check_conv(ns_test_conv(5, 33, 8, 8, 65, 3, 2, 1, 1), 0, none, "3x3 s2, 65 outputs");
    check_conv(ns_test_conv(2, 64, 14, 14, 128, 1, 2, 0, 1), 1, none, "1x1 s2 downsample");
    check_conv(ns_test_conv(1, 16, 3, 3, 8, 3, 1, 1, 1), 1, relu, "tiny");
}
END_TEST

/* NS_CUDA_CONV_IMPLICIT=0|1|all (tools/gpu_check.sh) must really switch it;
 * unset means all. */
START_TEST(test_implicit_switch)
{
    const char *ig = getenv("NS_CUDA_CONV_IMPLICIT");
    int want = ig && strcmp(ig, "0") == 0 ? 0 : ig && strcmp(ig, "1") == 0 ? 1 : 2;
    ck_assert_int_eq(ns_cuda_ctx_implicit(g_ctx), want);
}
END_TEST

/* NS_CUDA_CONV_WINOGRAD=0 (as tools/gpu_check.sh sets for a second run of
 * this suite) must really switch Winograd off, or that run would test it
 * twice; unset means on. */
START_TEST(test_winograd_switch)
{
    const char *wg = getenv("NS_CUDA_CONV_WINOGRAD");
    ck_assert_int_eq(ns_cuda_ctx_winograd(g_ctx), !(wg && strcmp(wg, "0") == 0));
}
END_TEST

START_TEST(test_conv_random_shapes)
{
    int done = 0;
    while (done < 40) {
        ns_conv_params p = {0};
        int mode = rnd_int(0, 2); /* 0 dense, 1 depthwise, 2 grouped */
        int g = mode == 0 ? 1 : mode == 1 ? rnd_int(2, 12) : rnd_int(2, 4);
        p.n = rnd_int(1, 3);
        p.c_in = mode == 1 ? g : g * rnd_int(1, 6);
        p.c_out = mode == 1 ? g * rnd_int(1, 2) : g * rnd_int(1, 6);
        p.groups = g;
        p.h = rnd_int(1, 17);
        p.w = rnd_int(1, 17);
        p.kh = rnd_int(1, 5);
        p.kw = rnd_int(1, 5);
        p.stride_h = rnd_int(1, 3);
        p.stride_w = rnd_int(1, 3);
        p.pad_top = rnd_int(0, 2);
        p.pad_left = rnd_int(0, 2);
        p.pad_bottom = rnd_int(0, 2);
        p.pad_right = rnd_int(0, 2);
        p.dil_h = rnd_int(1, 2);
        p.dil_w = rnd_int(1, 2);
        ns_conv_params q = p;
        if (ns_conv_prepare(&q) != NS_OK)
            continue; /* kernel larger than the padded input: draw again */
        check_conv(p, (int)(rnd() & 1), random_act(), "random");
        done++;
    }
}
END_TEST

START_TEST(test_conv_without_workspace_is_usage_error)
{
    ns_conv_params p = ns_test_conv(1, 4, 8, 8, 4, 3, 1, 1, 1);
    ns_act none = {NS_ACT_NONE, 0, 0};
    ck_assert_ns_ok(ns_conv_prepare(&p));
    ck_assert_uint_gt(ns_cuda_conv_workspace_floats(&p), 0);
    float *dx = dev_alloc(4 * 8 * 8 * sizeof(float)), *dw = dev_alloc(4 * 4 * 9 * sizeof(float));
    float *dy = dev_alloc(4 * 8 * 8 * sizeof(float));
    ck_assert_ns_status(ns_cuda_conv2d(g_ctx, &p, dx, dw, NULL, none, dy, NULL), NS_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "workspace"));
    ns_cuda_free(dx);
    ns_cuda_free(dw);
    ns_cuda_free(dy);
}
END_TEST

/* ---- pooling ------------------------------------------------------------------- */

START_TEST(test_pool_random_shapes)
{
    int done = 0;
    while (done < 60) {
        ns_pool_params p = {0};
        p.n = rnd_int(1, 2);
        p.c = rnd_int(1, 5);
        p.h = rnd_int(1, 16);
        p.w = rnd_int(1, 16);
        p.kh = rnd_int(1, 4);
        p.kw = rnd_int(1, 4);
        p.stride_h = rnd_int(1, 3);
        p.stride_w = rnd_int(1, 3);
        p.pad_top = rnd_int(0, p.kh - 1);
        p.pad_left = rnd_int(0, p.kw - 1);
        p.pad_bottom = rnd_int(0, p.kh - 1);
        p.pad_right = rnd_int(0, p.kw - 1);
        p.count_include_pad = (int)(rnd() & 1);
        p.ceil_mode = (int)(rnd() & 1);
        if (ns_pool_prepare(&p) != NS_OK)
            continue;
        size_t nx = (size_t)p.n * p.c * p.h * p.w, ny = (size_t)p.n * p.c * p.h_out * p.w_out;
        float *x = host_random(nx, 2.0f), *want = malloc(ny * sizeof *want);
        ck_assert_ptr_nonnull(want);
        float *dx = dev_from(x, nx), *dy = dev_alloc(ny * sizeof *dy);
        char msg[200];
        snprintf(msg, sizeof msg, "pool %dx%d k%dx%d s%dx%d pad %d,%d,%d,%d ceil %d incl %d",
                 p.h, p.w, p.kh, p.kw, p.stride_h, p.stride_w, p.pad_top, p.pad_left,
                 p.pad_bottom, p.pad_right, p.ceil_mode, p.count_include_pad);
        ns_ref_maxpool(&p, x, want);
        ck_assert_ns_ok(ns_cuda_maxpool(g_ctx, &p, dx, dy));
        expect_close(dy, want, ny, msg);
        ns_ref_avgpool(&p, x, want);
        ck_assert_ns_ok(ns_cuda_avgpool(g_ctx, &p, dx, dy));
        expect_close(dy, want, ny, msg);
        ns_cuda_free(dx);
        ns_cuda_free(dy);
        free(x);
        free(want);
        done++;
    }
}
END_TEST

START_TEST(test_global_avgpool)
{
    /* hw around the block size and one large plane. */
    int hws[] = {1, 7, 49, 255, 256, 257, 3136};
    for (size_t t = 0; t < sizeof hws / sizeof hws[0]; t++) {
        int n = 2, c = 5, hw = hws[t];
        size_t nx = (size_t)n * c * hw;
        float *x = host_random(nx, 1.0f), want[10];
        float *dx = dev_from(x, nx), *dy = dev_alloc(10 * sizeof *dy);
        ns_ref_global_avgpool(x, n, c, hw, want);
        ck_assert_ns_ok(ns_cuda_global_avgpool(g_ctx, dx, n, c, hw, dy));
        expect_close(dy, want, 10, "global_avgpool");
        ns_cuda_free(dx);
        ns_cuda_free(dy);
        free(x);
    }
}
END_TEST

/* ---- elementwise --------------------------------------------------------------- */

START_TEST(test_act_every_kind)
{
    size_t n = 100003; /* several blocks and a ragged tail */
    for (int k = NS_ACT_NONE; k <= NS_ACT_SILU; k++) {
        ns_act act = {(ns_act_kind)k, k == NS_ACT_CLIP ? -0.5f : 0.2f,
                      k == NS_ACT_CLIP ? 0.5f : 0.5f};
        float *x = host_random(n, 8.0f);
        float *dx = dev_from(x, n);
        ns_ref_act(act, x, n);
        ck_assert_ns_ok(ns_cuda_act(g_ctx, act, dx, n));
        expect_close(dx, x, n, "act");
        ns_cuda_free(dx);
        free(x);
    }
}
END_TEST

START_TEST(test_add_and_mul_channel)
{
    size_t n = 3 * 17 * 61;
    ns_act act = {NS_ACT_RELU, 0, 0};
    float *a = host_random(n, 1.0f), *b = host_random(n, 1.0f);
    float *want = malloc(n * sizeof *want);
    ck_assert_ptr_nonnull(want);
    float *da = dev_from(a, n), *db = dev_from(b, n), *dy = dev_alloc(n * sizeof *dy);
    ns_ref_add(a, b, want, n, act);
    ck_assert_ns_ok(ns_cuda_add(g_ctx, da, db, dy, n, act));
    expect_close(dy, want, n, "add");
    /* y aliasing a, as residual blocks use it. */
    ck_assert_ns_ok(ns_cuda_add(g_ctx, da, db, da, n, act));
    expect_close(da, want, n, "add in place");

    float *s = host_random(3 * 17, 1.0f);
    float *ds = dev_from(s, 3 * 17);
    ns_ref_mul_channel(b, s, want, 3, 17, 61);
    ck_assert_ns_ok(ns_cuda_mul_channel(g_ctx, db, ds, dy, 3, 17, 61));
    expect_close(dy, want, n, "mul_channel");
    ns_cuda_free(da);
    ns_cuda_free(db);
    ns_cuda_free(dy);
    ns_cuda_free(ds);
    free(a);
    free(b);
    free(s);
    free(want);
}
END_TEST

/* ---- dense ----------------------------------------------------------------------- */

START_TEST(test_gemm_random_shapes)
{
    for (int t = 0; t < 20; t++) {
        int n = rnd_int(1, 9), k = rnd_int(1, 300), m = rnd_int(1, 70);
        int with_bias = t % 2;
        ns_act act = random_act();
        float *x = host_random((size_t)n * k, 1.0f);
        float *w = host_random((size_t)m * k, 1.0f / sqrtf((float)k));
        float *b = with_bias ? host_random((size_t)m, 0.5f) : NULL;
        float *want = malloc((size_t)n * m * sizeof *want);
        ck_assert_ptr_nonnull(want);
        ns_ref_gemm(x, w, b, want, n, k, m, act);
        float *dx = dev_from(x, (size_t)n * k), *dw = dev_from(w, (size_t)m * k);
        float *db = b ? dev_from(b, (size_t)m) : NULL, *dy = dev_alloc((size_t)n * m * 4);
        ck_assert_ns_ok(ns_cuda_gemm(g_ctx, dx, dw, db, dy, n, k, m, act));
        char msg[96];
        snprintf(msg, sizeof msg, "gemm n%d k%d m%d act %d%s", n, k, m, (int)act.kind,
                 with_bias ? " bias" : "");
        expect_close(dy, want, (size_t)n * m, msg);
        ns_cuda_free(dx);
        ns_cuda_free(dw);
        ns_cuda_free(db);
        ns_cuda_free(dy);
        free(x);
        free(w);
        free(b);
        free(want);
    }
}
END_TEST

START_TEST(test_concat)
{
    int c[3] = {3, 1, 5}, n = 2, hw = 37, total = 9;
    float *hx[3], *dx[3];
    for (int i = 0; i < 3; i++) {
        hx[i] = host_random((size_t)n * c[i] * hw, 1.0f);
        dx[i] = dev_from(hx[i], (size_t)n * c[i] * hw);
    }
    size_t ny = (size_t)n * total * hw;
    float *want = malloc(ny * sizeof *want), *dy = dev_alloc(ny * sizeof *dy);
    ck_assert_ptr_nonnull(want);
    ns_ref_concat((const float *const *)hx, c, 3, n, hw, want);
    ck_assert_ns_ok(ns_cuda_concat(g_ctx, (const float *const *)dx, c, 3, n, hw, dy));
    expect_close(dy, want, ny, "concat");
    for (int i = 0; i < 3; i++) {
        ns_cuda_free(dx[i]);
        free(hx[i]);
    }
    ns_cuda_free(dy);
    free(want);
}
END_TEST

START_TEST(test_l2norm_with_zero_row)
{
    int ds[] = {1, 31, 256, 1000};
    for (size_t t = 0; t < sizeof ds / sizeof ds[0]; t++) {
        int n = 4, d = ds[t];
        float *x = host_random((size_t)n * d, 3.0f);
        memset(x + d, 0, (size_t)d * sizeof *x); /* row 1 is zero and must stay zero */
        float *dx = dev_from(x, (size_t)n * d);
        ns_ref_l2norm(x, n, d);
        ck_assert_ns_ok(ns_cuda_l2norm(g_ctx, dx, n, d));
        expect_close(dx, x, (size_t)n * d, "l2norm");
        ns_cuda_free(dx);
        free(x);
    }
}
END_TEST

/* ---- preprocessing ----------------------------------------------------------------- */

START_TEST(test_preprocess_sizes)
{
    /* Identity, integer factor, and ragged area factors (the reference is
     * O(S^2) per output pixel, so frames stay small). */
    int cases[][2] = {{16, 16}, {32, 16}, {17, 5}, {33, 32}, {64, 24}};
    ns_preproc pp = {0, 0, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++)
        for (int bgr = 0; bgr <= 1; bgr++) {
            int S = cases[t][0], n = 2;
            pp.size = cases[t][1];
            pp.bgr = bgr;
            size_t nf = (size_t)n * S * S * 3, ny = (size_t)n * 3 * pp.size * pp.size;
            uint8_t *f = malloc(nf);
            float *want = malloc(ny * sizeof *want);
            ck_assert_ptr_nonnull(f);
            ck_assert_ptr_nonnull(want);
            for (size_t i = 0; i < nf; i++)
                f[i] = (uint8_t)(rnd() & 0xff);
            uint8_t *df = dev_alloc(nf);
            float *dy = dev_alloc(ny * sizeof *dy);
            ck_assert_ns_ok(ns_cuda_upload(g_ctx, df, f, nf));
            ns_ref_preprocess(&pp, f, n, S, want);
            ck_assert_ns_ok(ns_cuda_preprocess(g_ctx, &pp, df, n, S, dy));
            char msg[64];
            snprintf(msg, sizeof msg, "preprocess %d -> %d bgr %d", S, pp.size, bgr);
            expect_close(dy, want, ny, msg);
            ns_cuda_free(df);
            ns_cuda_free(dy);
            free(f);
            free(want);
        }
}
END_TEST

START_TEST(test_pinned_roundtrip)
{
    size_t n = 1 << 20;
    float *h = NULL;
    ck_assert_ns_ok(ns_cuda_host_alloc((void **)&h, n * sizeof *h));
    for (size_t i = 0; i < n; i++)
        h[i] = (float)i;
    float *d = dev_from(h, n);
    /* From pinned memory the upload is truly asynchronous (ns_cuda.h): h must
     * stay as it is until the stream has caught up. */
    ck_assert_ns_ok(ns_cuda_ctx_sync(g_ctx));
    memset(h, 0, n * sizeof *h);
    ck_assert_ns_ok(ns_cuda_download(g_ctx, h, d, n * sizeof *h));
    for (size_t i = 0; i < n; i++)
        ck_assert_float_eq(h[i], (float)i);
    ns_cuda_free(d);
    ns_cuda_host_free(h);
}
END_TEST

int main(void)
{
    if (!ns_test_gpu_present("test_ops_gpu"))
        return 77;
    if (ns_cuda_ctx_create(0, &g_ctx) != NS_OK) {
        printf("test_ops_gpu: cannot create a CUDA context: %s\n", ns_errmsg());
        return 1;
    }
    Suite *s = suite_create("ops_gpu");
    TCase *tc = tcase_create("parity");
    tcase_add_test(tc, test_conv_fixed_shapes);
    tcase_add_test(tc, test_winograd_switch);
    tcase_add_test(tc, test_implicit_switch);
    tcase_add_test(tc, test_conv_random_shapes);
    tcase_add_test(tc, test_conv_without_workspace_is_usage_error);
    tcase_add_test(tc, test_pool_random_shapes);
    tcase_add_test(tc, test_global_avgpool);
    tcase_add_test(tc, test_act_every_kind);
    tcase_add_test(tc, test_add_and_mul_channel);
    tcase_add_test(tc, test_gemm_random_shapes);
    tcase_add_test(tc, test_concat);
    tcase_add_test(tc, test_l2norm_with_zero_row);
    tcase_add_test(tc, test_preprocess_sizes);
    tcase_add_test(tc, test_pinned_roundtrip);
    suite_add_tcase(s, tc);
    int rc = ns_test_run_nofork(s);
    ns_cuda_ctx_free(g_ctx);
    return rc;
}
