/* fuzz_model_seeds.c -- writes the model target's seeds: the small graph of
 * tests/exec_graphs.h that holds nearly every operator, and a conv followed
 * by a BatchNormalization (the folding path).
 * Usage: fuzz_model_seeds DIR
 * The fixtures assert through Check, so the work runs as a one-test suite. */
#include <stdio.h>

#include "exec_graphs.h"

static const char *g_dir;

START_TEST(write_seeds)
{
    char path[4096];
    ns_model *m = NULL;
    const char *dir = g_dir;
    if (xg_build_mixed(&m) != NS_OK) {
        ck_abort_msg("fuzz_model_seeds: %s", ns_errmsg());
    }
    snprintf(path, sizeof path, "%s/mixed.h5", dir);
    if (ns_model_save(path, m) != NS_OK) {
        ck_abort_msg("fuzz_model_seeds: %s", ns_errmsg());
    }
    ns_model_free(m);
    m = NULL;

    static xgraph g;
    xg_begin(&g, 7, "bn", "fc", 8, 4, 1, 0.5f, 0.25f);
    xg_node(&g, "in", "Input", NULL, NULL);
    xg_conv(&g, "c1", "in", 3, 4, 3, 2, 1);
    ns_model_node_rec *bn = xg_node(&g, "bn1", "BatchNormalization", "c1", NULL);
    bn->fattr[NS_FA_EPS] = 1e-5f;
    xg_weight(&g, "gamma", 1, 4, 1, 1, 1, 1.0f);
    xg_weight(&g, "beta", 1, 4, 1, 1, 1, 0.1f);
    xg_weight(&g, "mean", 1, 4, 1, 1, 1, 0.1f);
    xg_weight(&g, "var", 1, 4, 1, 1, 1, 0.0f);
    for (int i = 0; i < 4; i++)
        g.pool[g.used - 1 - i] = 1.0f + 0.25f * (float)i; /* variances > 0 */
    xg_node(&g, "r1", "Relu", "bn1", NULL);
    xg_node(&g, "gap", "GlobalAveragePool", "r1", NULL);
    xg_node(&g, "flat", "Flatten", "gap", NULL)->iattr[NS_IA_AXIS] = 1;
    xg_node(&g, "fc", "Gemm", "flat", NULL);
    xg_weight(&g, "W", 2, 4, 4, 1, 1, 0.5f);
    xg_weight(&g, "B", 1, 4, 1, 1, 1, 0.1f);
    if (ns_model_build(&g.info, g.recs, g.n, g.w, g.nw, "bn-graph", &m) != NS_OK) {
        ck_abort_msg("fuzz_model_seeds: %s", ns_errmsg());
    }
    snprintf(path, sizeof path, "%s/bn.h5", dir);
    if (ns_model_save(path, m) != NS_OK) {
        ck_abort_msg("fuzz_model_seeds: %s", ns_errmsg());
    }
    ns_model_free(m);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    g_dir = argv[1];
    Suite *s = suite_create("fuzz_model_seeds");
    TCase *tc = tcase_create("seeds");
    tcase_add_test(tc, write_seeds);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
