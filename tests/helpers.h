/* helpers.h -- shared assertions and fixtures for the Check suites. */
#ifndef NIGHTSHIFT_TESTS_HELPERS_H
#define NIGHTSHIFT_TESTS_HELPERS_H

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nightshift/ops.h"
#include "nightshift/status.h"

/* Asserts a status is NS_OK and shows the recorded message otherwise. */
#define ck_assert_ns_ok(expr)                                                             \
    do {                                                                                  \
        ns_status st_ = (expr);                                                           \
        ck_assert_msg(st_ == NS_OK, "%s -> %s: %s", #expr, ns_strerror(st_), ns_errmsg()); \
    } while (0)

#define ck_assert_ns_status(expr, want)                                                   \
    do {                                                                                  \
        ns_status st_ = (expr);                                                           \
        ck_assert_msg(st_ == (want), "%s -> %s (want %s): %s", #expr, ns_strerror(st_),   \
                      ns_strerror(want), ns_errmsg());                                    \
    } while (0)

/* Makes a fresh temporary directory under $NS_TEST_TMP (or /tmp) and returns
 * its path in buf.  Each call gives a new directory. */
static inline const char *ns_test_tmpdir(char *buf, size_t cap, const char *tag)
{
    const char *base = getenv("NS_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0755);
    snprintf(buf, cap, "%s/%s-XXXXXX", base, tag);
    ck_assert_ptr_nonnull(mkdtemp(buf));
    return buf;
}

/* Writes text to path (test fixtures), failing the test when it cannot. */
static inline void ns_test_write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create '%s'", path);
    fputs(text, f);
    fclose(f);
}

/* Runs one suite and returns the process exit code. */
static inline int ns_test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Activation kind k with the parameters the parity tests use: Clip to
 * [-0.5, 0.5], HardSigmoid 0.2 x + 0.5, the others parameter-free. */
static inline ns_act ns_test_act(int k)
{
    ns_act a = {(ns_act_kind)k, 0.0f, 0.0f};
    if (a.kind == NS_ACT_CLIP) {
        a.a = -0.5f;
        a.b = 0.5f;
    } else if (a.kind == NS_ACT_HARDSIGMOID) {
        a.a = 0.2f;
        a.b = 0.5f;
    }
    return a;
}

/* A square k x k convolution with the same stride and padding on every side,
 * not yet prepared (ns_conv_prepare). */
static inline ns_conv_params ns_test_conv(int n, int c_in, int h, int w, int c_out, int k,
                                          int stride, int pad, int groups)
{
    ns_conv_params p = {0};
    p.n = n;
    p.c_in = c_in;
    p.h = h;
    p.w = w;
    p.c_out = c_out;
    p.kh = p.kw = k;
    p.stride_h = p.stride_w = stride;
    p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = pad;
    p.dil_h = p.dil_w = 1;
    p.groups = groups;
    return p;
}

#endif
