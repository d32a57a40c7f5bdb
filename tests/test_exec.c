/* Executor suite: the CPU executor against the reference executor on the
 * default backbone and on a graph touching every operator, batch handling,
 * and the errors of ns_exec_create. */
#include "exec_graphs.h"
#include "ns_cuda.h"

/* Relative L2 error per embedding, CPU vs the plain C reference (float32
 * accumulation orders differ; 1e-4 leaves two orders of margin). */
#define TOL 1e-4

START_TEST(test_default_backbone_cpu_vs_ref)
{
    ns_model *m = NULL;
    static const int bs[] = {3, 1, 4, 0};
    ck_assert_ns_ok(ns_model_default(112, 11, &m));
    /* 224 frames into a 112 model: the downsizing preprocessing path. */
    xg_compare(m, NS_DEVICE_CPU, 4, 224, bs, TOL, 100);
    ns_model_free(m);
}
END_TEST

START_TEST(test_mixed_graph_cpu_vs_ref)
{
    ns_model *m = NULL;
    static const int bs[] = {1, 3, 5, 2, 0};
    ck_assert_ns_ok(xg_build_mixed(&m));
    xg_compare(m, NS_DEVICE_CPU, 5, 24, bs, TOL, 200);
    /* Frames the size of the model input: no resize. */
    xg_compare(m, NS_DEVICE_CPU, 5, 16, bs, TOL, 300);
    ns_model_free(m);
}
END_TEST

/* A sample's embedding does not depend on its batch or what ran before. */
START_TEST(test_batch_independent)
{
    ns_model *m = NULL;
    ns_exec *e = NULL;
    const int S = 24, max = 6;
    ck_assert_ns_ok(xg_build_mixed(&m));
    ck_assert_ns_ok(ns_exec_create(m, NS_DEVICE_CPU, max, S, &e));
    int d = ns_exec_dim(e);
    uint8_t *frames = xg_frames(max, S, 7);
    float *all = malloc((size_t)max * d * sizeof *all), *one = malloc((size_t)d * sizeof *one);
    ck_assert(all && one);
    ck_assert_ns_ok(ns_exec_run(e, frames, max, all));
    for (int i = max - 1; i >= 0; i--) {
        ck_assert_ns_ok(ns_exec_run(e, frames + (size_t)i * S * S * 3, 1, one));
        ck_assert_msg(xg_max_rel_err(one, all + (size_t)i * d, 1, d) < 1e-6,
                      "sample %d alone differs from its batch", i);
    }
    ck_assert_ns_status(ns_exec_run(e, frames, 0, one), NS_ERR_USAGE);
    ck_assert_ns_status(ns_exec_run(e, frames, max + 1, all), NS_ERR_USAGE);
    free(frames);
    free(all);
    free(one);
    ns_exec_free(e);
    ns_model_free(m);
}
END_TEST

START_TEST(test_profile_lists_nodes)
{
    ns_model *m = NULL;
    ns_exec *e = NULL;
    ns_strbuf sb = {0};
    ck_assert_ns_ok(ns_model_default(112, 1, &m));
    ck_assert_ns_ok(ns_exec_create(m, NS_DEVICE_CPU, 2, 112, &e));
    uint8_t *frames = xg_frames(2, 112, 3);
    float emb[2 * NS_MODEL_DEFAULT_DIM];
    ck_assert_ns_ok(ns_exec_run(e, frames, 2, emb));
    ck_assert_ns_ok(ns_exec_profile(e, &sb));
    ck_assert_ptr_nonnull(sb.data);
    /* Relu fused into each conv, Flatten a view, conv rates in GFLOP/s. */
    ck_assert_msg(strstr(sb.data, "conv1+relu1") && strstr(sb.data, "conv5+relu5"),
                  "profile:\n%s", sb.data);
    ck_assert_msg(strstr(sb.data, "GFLOP/s") && strstr(sb.data, "embedding"), "%s", sb.data);
    ck_assert_msg(!strstr(sb.data, "flatten"), "Flatten is a view:\n%s", sb.data);
    ck_assert_msg(strstr(sb.data, "1 runs, 2 samples"), "%s", sb.data);
    ns_strbuf_release(&sb);
    free(frames);
    ns_exec_free(e);
    ns_model_free(m);
}
END_TEST

START_TEST(test_input_larger_than_frames)
{
    ns_model *m = NULL;
    ns_exec *e = NULL;
    ck_assert_ns_ok(ns_model_default(128, 1, &m));
    ck_assert_ns_status(ns_exec_create(m, NS_DEVICE_CPU, 4, 112, &e), NS_ERR_USAGE);
    ck_assert_ptr_null(e);
    ck_assert_msg(strstr(ns_errmsg(), "128") != NULL, "message: %s", ns_errmsg());
    ck_assert_ns_status(ns_exec_create(m, NS_DEVICE_CPU, 0, 128, &e), NS_ERR_USAGE);
    ck_assert_ns_ok(ns_exec_create(m, NS_DEVICE_REF, 1, 128, &e));
    ns_exec_free(e);
    ns_model_free(m);
}
END_TEST

START_TEST(test_devices)
{
    ns_model *m = NULL;
    ns_exec *e = NULL;
    ns_device d;
    ns_cuda_device devs[NS_CUDA_MAX_DEVICES];
    int count = 0;
    int have_gpu = ns_cuda_devices(devs, NS_CUDA_MAX_DEVICES, &count) == NS_OK && count > 0;
    ck_assert_ns_ok(ns_device_parse("cuda", &d));
    ck_assert_int_eq(d, NS_DEVICE_CUDA);
    ck_assert_ns_ok(ns_device_parse("ref", &d));
    ck_assert_int_eq(d, NS_DEVICE_REF);
    ck_assert_ns_status(ns_device_parse("gpu", &d), NS_ERR_USAGE);
    ck_assert_str_eq(ns_device_name(NS_DEVICE_AUTO), "auto");
    ck_assert_str_eq(ns_device_name(NS_DEVICE_CPU), "cpu");
    ck_assert_ns_ok(ns_model_default(112, 1, &m));
    ck_assert_ns_ok(ns_exec_create(m, NS_DEVICE_AUTO, 2, 112, &e));
    ck_assert_int_eq(ns_exec_device(e), have_gpu ? NS_DEVICE_CUDA : NS_DEVICE_CPU);
    ns_exec_free(e);
    e = NULL;
    if (!have_gpu) {
        ck_assert_ns_status(ns_exec_create(m, NS_DEVICE_CUDA, 2, 112, &e), NS_ERR_NODEV);
        ck_assert_ptr_null(e);
        ck_assert_msg(strstr(ns_errmsg(), "cuda") != NULL, "message: %s", ns_errmsg());
    }
    ns_model_free(m);
}
END_TEST

START_TEST(test_unfolded_batchnorm_unsupported)
{
    static xgraph g;
    ns_model *m = NULL;
    ns_exec *e = NULL;
    memset(&g, 0, sizeof g);
    g.rng = 5;
    snprintf(g.info.output, sizeof g.info.output, "flat");
    g.info.input_size = 8;
    g.info.embed_dim = 4;
    for (int c = 0; c < 3; c++)
        g.info.std[c] = 1.0f;
    xg_node(&g, "in", "Input", NULL, NULL);
    xg_conv(&g, "conv", "in", 3, 4, 1, 1, 1);
    xg_node(&g, "bn", "BatchNormalization", "conv", NULL)->fattr[NS_FA_EPS] = 1e-5f;
    xg_weight(&g, "gamma", 1, 4, 1, 1, 1, 1.0f);
    xg_weight(&g, "beta", 1, 4, 1, 1, 1, 1.0f);
    xg_weight(&g, "mean", 1, 4, 1, 1, 1, 1.0f);
    xg_weight(&g, "var", 1, 4, 1, 1, 1, 0.0f);
    xg_node(&g, "gap", "GlobalAveragePool", "bn", NULL);
    xg_node(&g, "flat", "Flatten", "gap", NULL)->iattr[NS_IA_AXIS] = 1;
    ck_assert_ns_ok(ns_model_build(&g.info, g.recs, g.n, g.w, g.nw, "bn", &m));
    ck_assert_ns_status(ns_exec_create(m, NS_DEVICE_CPU, 1, 8, &e), NS_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(ns_errmsg(), "'bn'") != NULL, "message: %s", ns_errmsg());
    ns_model_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("exec");
    TCase *tc = tcase_create("exec");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_default_backbone_cpu_vs_ref);
    tcase_add_test(tc, test_mixed_graph_cpu_vs_ref);
    tcase_add_test(tc, test_batch_independent);
    tcase_add_test(tc, test_profile_lists_nodes);
    tcase_add_test(tc, test_input_larger_than_frames);
    tcase_add_test(tc, test_devices);
    tcase_add_test(tc, test_unfolded_batchnorm_unsupported);
    suite_add_tcase(s, tc);
    return ns_test_run(s);
}
