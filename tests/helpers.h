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

#endif
