/* test_precision.c -- what of the reduced GEMM precisions runs without a GPU:
 * the plain C fp32 -> bf16 conversion (the reference the CUDA kernel is held
 * to in test_exec_gpu.c), the precision names, and the CPU and reference
 * executors refusing anything but fp32. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "helpers.h"
#include "nightshift/exec.h"
#include "nightshift/model.h"
#include "ns_cuda.h"

static uint16_t bf16_of_bits(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return ns_ref_f32_to_bf16(x);
}

START_TEST(test_bf16_known_values)
{
    static const struct { uint32_t in; uint16_t want; } cases[] = {
        {0x3f800000u, 0x3f80}, /* 1 */
        {0xbfc00000u, 0xbfc0}, /* -1.5 */
        {0x00000000u, 0x0000}, {0x80000000u, 0x8000}, /* +-0 */
        {0x3f807fffu, 0x3f80}, /* below half an ulp: down */
        {0x3f808000u, 0x3f80}, /* a tie, kept part even: stays */
        {0x3f808001u, 0x3f81}, /* above the tie: up */
        {0x3f818000u, 0x3f82}, /* a tie, kept part odd: up to even */
        {0xbf818000u, 0xbf82}, /* the same, negative */
        {0x3fffffffu, 0x4000}, /* mantissa carry bumps the exponent */
        {0x7f7fffffu, 0x7f80}, /* FLT_MAX rounds to infinity */
        {0x7f7f7fffu, 0x7f7f}, /* the largest finite bf16 stays */
        {0x7f800000u, 0x7f80}, {0xff800000u, 0xff80}, /* +-inf */
        {0x00000001u, 0x0000}, /* smallest subnormal: down */
        {0x00018000u, 0x0002}, /* subnormal tie, odd: up */
        {0x00008000u, 0x0000}, /* subnormal tie, even: stays */
        {0x7fc00000u, 0x7fc0}, /* quiet NaN */
        {0x7f800001u, 0x7fc0}, /* signalling NaN becomes quiet, not infinity */
        {0xffc12345u, 0xffc1}, /* sign and payload top kept */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(bf16_of_bits(cases[i].in) == cases[i].want, "0x%08x -> 0x%04x, want 0x%04x",
                      cases[i].in, bf16_of_bits(cases[i].in), cases[i].want);
    ck_assert(ns_ref_bf16_to_f32(0x3f80) == 1.0f);
    ck_assert(ns_ref_bf16_to_f32(0xc0a0) == -5.0f);
    ck_assert(isnan(ns_ref_bf16_to_f32(bf16_of_bits(0x7f800001u))));
}
END_TEST

/* Against an independent rounding: of the two bf16 neighbours of x, the
 * nearer in double, ties to the even one, on random bit patterns. */
START_TEST(test_bf16_nearest_even_random)
{
    uint64_t s = 99;
    float xs[4096];
    uint16_t got[4096];
    for (int round = 0; round < 64; round++) {
        for (int i = 0; i < 4096; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            uint32_t u = (uint32_t)(s >> 32);
            if ((u & 0x7f800000u) == 0x7f800000u)
                u &= 0xbfffffffu; /* no inf/NaN here: the known values cover them */
            if (i % 7 == 0)
                u = (u & 0xffff0000u) | 0x8000u; /* many exact ties */
            memcpy(&xs[i], &u, sizeof u);
        }
        ns_ref_f32_to_bf16_array(xs, got, 4096);
        for (int i = 0; i < 4096; i++) {
            uint32_t u;
            memcpy(&u, &xs[i], sizeof u);
            uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
            double x = xs[i], dl = fabs(x - ns_ref_bf16_to_f32(lo));
            /* Past the largest finite bf16, hi stands for 2^128 (IEEE rounds as if the
             * exponent were unbounded, then overflows to the infinity hi encodes). */
            double hv = (hi & 0x7f80) == 0x7f80 ? copysign(0x1p128, x) : ns_ref_bf16_to_f32(hi);
            double dh = fabs(x - hv);
            uint16_t want = dl < dh ? lo : dh < dl ? hi : (lo & 1) ? hi : lo;
            ck_assert_msg(got[i] == want, "0x%08x -> 0x%04x, want 0x%04x", u, got[i], want);
            if (isfinite(ns_ref_bf16_to_f32(got[i])) && fabs(x) >= 0x1p-126) /* normal */
                ck_assert(fabs(ns_ref_bf16_to_f32(got[i]) - x) <= ldexp(fabs(x), -8));
        }
    }
}
END_TEST

START_TEST(test_precision_names)
{
    ns_precision p = NS_PREC_BF16;
    ck_assert_ns_ok(ns_precision_parse("fp32", &p));
    ck_assert_int_eq(p, NS_PREC_FP32);
    ck_assert_ns_ok(ns_precision_parse("tf32", &p));
    ck_assert_int_eq(p, NS_PREC_TF32);
    ck_assert_ns_ok(ns_precision_parse("bf16", &p));
    ck_assert_int_eq(p, NS_PREC_BF16);
    ck_assert_ns_status(ns_precision_parse("fp16", &p), NS_ERR_USAGE);
    ck_assert_ns_status(ns_precision_parse(NULL, &p), NS_ERR_USAGE);
    ck_assert_str_eq(ns_precision_name(NS_PREC_FP32), "fp32");
    ck_assert_str_eq(ns_precision_name(NS_PREC_TF32), "tf32");
    ck_assert_str_eq(ns_precision_name(NS_PREC_BF16), "bf16");
    ck_assert_str_eq(ns_precision_name((ns_precision)7), "?");
}
END_TEST

START_TEST(test_host_executors_are_fp32_only)
{
    ns_model *m = NULL;
    ns_exec *e = NULL;
    ck_assert_ns_ok(ns_model_default(112, 1, &m));
    static const ns_device devs[] = {NS_DEVICE_CPU, NS_DEVICE_REF};
    for (int d = 0; d < 2; d++) {
        ns_exec_opts o = {.device = devs[d], .precision = NS_PREC_TF32};
        ck_assert_ns_status(ns_exec_create_opts(m, &o, 2, 112, &e), NS_ERR_UNSUPPORTED);
        ck_assert_ptr_null(e);
        ck_assert_msg(strstr(ns_errmsg(), "precision tf32 needs --device cuda"), "%s",
                      ns_errmsg());
        o.precision = NS_PREC_BF16;
        ck_assert_ns_status(ns_exec_create_opts(m, &o, 2, 112, &e), NS_ERR_UNSUPPORTED);
        o.precision = NS_PREC_FP32;
        ck_assert_ns_ok(ns_exec_create_opts(m, &o, 2, 112, &e));
        ck_assert_int_eq(ns_exec_device(e), devs[d]);
        ck_assert_int_eq(ns_exec_precision(e), NS_PREC_FP32);
        ns_exec_free(e);
        e = NULL;
    }
    /* Without CUDA, auto resolves to the CPU, which is fp32 only. */
    if (!ns_cuda_built()) {
        ns_exec_opts o = {.device = NS_DEVICE_AUTO, .precision = NS_PREC_BF16};
        ck_assert_ns_status(ns_exec_create_opts(m, &o, 2, 112, &e), NS_ERR_UNSUPPORTED);
    }
    /* The plain create is fp32. */
    ck_assert_ns_ok(ns_exec_create(m, NS_DEVICE_REF, 1, 112, &e));
    ck_assert_int_eq(ns_exec_precision(e), NS_PREC_FP32);
    ns_exec_free(e);
    ns_model_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("precision");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_bf16_known_values);
    tcase_add_test(tc, test_bf16_nearest_even_random);
    tcase_add_test(tc, test_precision_names);
    tcase_add_test(tc, test_host_executors_are_fp32_only);
    suite_add_tcase(s, tc);
    return ns_test_run(s);
}
