/* gpu_helpers.h -- shared by the *_gpu Check suites. */
#ifndef NIGHTSHIFT_TESTS_GPU_HELPERS_H
#define NIGHTSHIFT_TESTS_GPU_HELPERS_H

#include "helpers.h"
#include "ns_cuda.h"

/* Returns 1 when a CUDA device answers; otherwise prints why the suite is
 * skipped (the caller then exits 77, CTest's SKIP_RETURN_CODE). */
static inline int ns_test_gpu_present(const char *suite)
{
    ns_cuda_device devs[NS_CUDA_MAX_DEVICES];
    int n = 0;
    if (ns_cuda_devices(devs, NS_CUDA_MAX_DEVICES, &n) == NS_OK && n > 0)
        return 1;
    printf("%s: skipped: %s\n", suite, ns_errmsg());
    return 0;
}

/* Runs a suite in this process: CUDA state does not survive Check's fork. */
static inline int ns_test_run_nofork(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

#endif
