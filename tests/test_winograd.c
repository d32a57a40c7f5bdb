/* test_winograd.c -- the Winograd F(2x2, 3x3) algorithm of the CUDA conv path
 * (kernels/wino.h, ns_ref_conv2d_winograd in kernels/ref.c) against direct
 * convolution (ns_ref_conv2d), on the CPU: odd sizes (partial edge tiles),
 * asymmetric and zero padding, bias, every activation.  The CUDA kernels
 * apply the same transforms; test_ops_gpu holds them to ns_ref_conv2d. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "helpers.h"
#include "nightshift/ops.h"
#include "ns_cuda.h"

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(g_rng >> 33);
}

static int rnd_int(int lo, int hi) { return lo + (int)(rnd() % (uint32_t)(hi - lo + 1)); }

static float *rand_floats(size_t n, float scale)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < n; i++)
        x[i] = scale * ((float)(rnd() % 2000001u) / 1000000.0f - 1.0f);
    return x;
}

static void check(ns_conv_params p, int with_bias, ns_act act)
{
    ck_assert_ns_ok(ns_conv_prepare(&p));
    ck_assert(ns_conv_winograd_ok(&p));
    size_t nx = (size_t)p.n * p.c_in * p.h * p.w, nw = (size_t)p.c_out * p.c_in * 9;
    size_t ny = (size_t)p.n * p.c_out * p.h_out * p.w_out;
    float *x = rand_floats(nx, 1.0f), *w = rand_floats(nw, 1.0f / sqrtf(9.0f * (float)p.c_in));
    float *b = with_bias ? rand_floats((size_t)p.c_out, 0.5f) : NULL;
    float *want = malloc(ny * sizeof *want), *got = malloc(ny * sizeof *got);
    ck_assert(want && got);
    ns_ref_conv2d(&p, x, w, b, act, want);
    ck_assert_ns_ok(ns_ref_conv2d_winograd(&p, x, w, b, act, got));
    double scale = 0.0, err = 0.0;
    for (size_t i = 0; i < ny; i++) {
        scale = fmax(scale, fabs(want[i]));
        err = fmax(err, fabs((double)got[i] - want[i]));
    }
    if (getenv("NS_WINO_VERBOSE"))
        printf("c%d->%d %dx%d: max abs error %.3g, max |y| %.3g\n", p.c_in, p.c_out, p.h, p.w,
               err, scale);
    ck_assert_msg(err <= 1e-5 * fmax(scale, 1e-3),
                  "n%d c%d->%d %dx%d pad %d,%d,%d,%d act %d: max error %g of %g", p.n, p.c_in,
                  p.c_out, p.h, p.w, p.pad_top, p.pad_left, p.pad_bottom, p.pad_right,
                  (int)act.kind, err, scale);
    free(x), free(w), free(b), free(want), free(got);
}

static ns_conv_params conv3(int n, int c_in, int h, int w, int c_out, int pt, int pl, int pb,
                            int pr)
{
    ns_conv_params p = ns_test_conv(n, c_in, h, w, c_out, 3, 1, 0, 1);
    p.pad_top = pt;
    p.pad_left = pl;
    p.pad_bottom = pb;
    p.pad_right = pr;
    return p;
}

START_TEST(test_winograd_fixed_shapes)
{
    ns_act relu = {NS_ACT_RELU, 0, 0}, none = {NS_ACT_NONE, 0, 0};
    check(conv3(2, 16, 14, 14, 24, 1, 1, 1, 1), 1, relu);  /* resnet-like, even */
    check(conv3(1, 5, 7, 7, 3, 1, 1, 1, 1), 0, none);      /* 7x7: a partial tile row */
    check(conv3(3, 4, 9, 12, 6, 0, 0, 0, 0), 1, none);     /* no padding: 7x10 out */
    check(conv3(1, 3, 5, 6, 2, 2, 1, 0, 2), 1, relu);      /* asymmetric padding */
    check(conv3(1, 1, 3, 3, 1, 0, 0, 0, 0), 0, none);      /* one output */
    check(conv3(1, 2, 1, 1, 2, 1, 1, 1, 1), 1, none);      /* a 1x1 input, padded */
    check(conv3(3, 64, 28, 28, 64, 1, 1, 1, 1), 1, none);  /* as test_ops_gpu's resnet layer */
    check(conv3(1, 256, 14, 14, 32, 1, 1, 1, 1), 0, none); /* deep: 2304 terms per output */
}
END_TEST

START_TEST(test_winograd_random_shapes)
{
    for (int it = 0; it < 60; it++) {
        ns_conv_params p = conv3(rnd_int(1, 3), rnd_int(1, 20), rnd_int(1, 17), rnd_int(1, 17),
                                 rnd_int(1, 20), rnd_int(0, 2), rnd_int(0, 2), rnd_int(0, 2),
                                 rnd_int(0, 2));
        if (p.h + p.pad_top + p.pad_bottom < 3 || p.w + p.pad_left + p.pad_right < 3)
            continue;
        check(p, (int)(rnd() & 1), ns_test_act(rnd_int(NS_ACT_NONE, NS_ACT_SILU)));
    }
}
END_TEST

START_TEST(test_winograd_refuses_other_convs)
{
    ns_act none = {NS_ACT_NONE, 0, 0};
    float x[4 * 8 * 8] = {0}, w[4 * 4 * 9] = {0}, y[4 * 8 * 8];
    ns_conv_params p = conv3(1, 4, 8, 8, 4, 1, 1, 1, 1);
    p.stride_h = p.stride_w = 2;
    ck_assert_ns_ok(ns_conv_prepare(&p));
    ck_assert(!ns_conv_winograd_ok(&p));
    ck_assert_ns_status(ns_ref_conv2d_winograd(&p, x, w, NULL, none, y), NS_ERR_USAGE);
    p = conv3(1, 4, 8, 8, 4, 1, 1, 1, 1);
    p.groups = 2;
    ck_assert_ns_ok(ns_conv_prepare(&p));
    ck_assert(!ns_conv_winograd_ok(&p));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("winograd");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_winograd_fixed_shapes);
    tcase_add_test(tc, test_winograd_random_shapes);
    tcase_add_test(tc, test_winograd_refuses_other_convs);
    suite_add_tcase(s, tc);
    return ns_test_run(s);
}
