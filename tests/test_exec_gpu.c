/* GPU executor suite: runs where a CUDA device is present, exits 77 (skipped)
 * elsewhere.  The CUDA executor against the reference executor on the same
 * models as test_exec.c. */
#include "exec_graphs.h"
#include "gpu_helpers.h"

/* Relative L2 error per embedding, CUDA vs the plain C reference: cuBLAS may
 * use other summation orders (and TF32 would be far above this: it must
 * stay off). */
#define TOL 1e-4

START_TEST(test_default_backbone_cuda_vs_ref)
{
    ns_model *m = NULL;
    static const int bs[] = {3, 1, 4, 0};
    ck_assert_ns_ok(ns_model_default(112, 11, &m));
    xg_compare(m, NS_DEVICE_CUDA, 4, 224, bs, TOL, 100);
    ns_model_free(m);
}
END_TEST

START_TEST(test_mixed_graph_cuda_vs_ref)
{
    ns_model *m = NULL;
    static const int bs[] = {1, 3, 5, 2, 0};
    ck_assert_ns_ok(xg_build_mixed(&m));
    xg_compare(m, NS_DEVICE_CUDA, 5, 24, bs, TOL, 200);
    xg_compare(m, NS_DEVICE_CUDA, 5, 16, bs, TOL, 300);
    ns_model_free(m);
}
END_TEST

START_TEST(test_auto_picks_cuda_and_profiles)
{
    ns_model *m = NULL;
    ns_exec *e = NULL;
    ns_strbuf sb = {0};
    ck_assert_ns_ok(ns_model_default(112, 1, &m));
    ck_assert_ns_ok(ns_exec_create(m, NS_DEVICE_AUTO, 64, 224, &e));
    ck_assert_int_eq(ns_exec_device(e), NS_DEVICE_CUDA);
    uint8_t *frames = xg_frames(64, 224, 9);
    float *emb = malloc((size_t)64 * NS_MODEL_DEFAULT_DIM * sizeof *emb);
    ck_assert_ptr_nonnull(emb);
    for (int i = 0; i < 5; i++)
        ck_assert_ns_ok(ns_exec_run(e, frames, 64, emb));
    ck_assert_ns_ok(ns_exec_profile(e, &sb));
    printf("%s", sb.data);
    ck_assert_msg(strstr(sb.data, "(upload frames)") && strstr(sb.data, "conv1+relu1"), "%s",
                  sb.data);
    ns_strbuf_release(&sb);
    free(emb);
    free(frames);
    ns_exec_free(e);
    ns_model_free(m);
}
END_TEST

int main(void)
{
    if (!ns_test_gpu_present("test_exec_gpu"))
        return 77;
    Suite *s = suite_create("exec_gpu");
    TCase *tc = tcase_create("exec");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_default_backbone_cuda_vs_ref);
    tcase_add_test(tc, test_mixed_graph_cuda_vs_ref);
    tcase_add_test(tc, test_auto_picks_cuda_and_profiles);
    suite_add_tcase(s, tc);
    return ns_test_run_nofork(s);
}
