/* GPU suite: runs where a CUDA device is present, exits 77 (skipped) elsewhere.
 * Every kernel is compared with its plain C reference. */
#include "gpu_helpers.h"
#include "ns_cuda.h"

START_TEST(test_devices_listed_and_self_test)
{
    ns_cuda_device devs[NS_CUDA_MAX_DEVICES];
    int n = 0;
    ck_assert_ns_ok(ns_cuda_devices(devs, NS_CUDA_MAX_DEVICES, &n));
    ck_assert_int_ge(n, 1);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(devs[i].index, i);
        ck_assert_int_ge(devs[i].cc_major, 7);
        ck_assert_uint_gt(devs[i].total_mem, 1u << 30);
        ck_assert_int_eq(devs[i].kernel_ok, 1);
    }
}
END_TEST

START_TEST(test_iota_affine_matches_reference)
{
    /* Sizes around block boundaries and one past 2^24 elements. */
    size_t sizes[] = {1, 255, 256, 257, 100000, (1u << 24) + 3};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        uint32_t *got = malloc(n * sizeof *got), *want = malloc(n * sizeof *want);
        ck_assert_ptr_nonnull(got);
        ck_assert_ptr_nonnull(want);
        ns_ref_iota_affine(want, n, 2654435761u, 12345u);
        ck_assert_ns_ok(ns_cuda_iota_affine(0, got, n, 2654435761u, 12345u));
        ck_assert_mem_eq(got, want, n * sizeof *got); /* integer kernel: exact */
        free(got);
        free(want);
    }
}
END_TEST

int main(void)
{
    if (!ns_test_gpu_present("test_cuda_gpu"))
        return 77;
    Suite *s = suite_create("cuda_gpu");
    TCase *tc = tcase_create("kernels");
    tcase_add_test(tc, test_devices_listed_and_self_test);
    tcase_add_test(tc, test_iota_affine_matches_reference);
    suite_add_tcase(s, tc);
    return ns_test_run_nofork(s);
}
