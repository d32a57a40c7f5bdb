/* test_train_gpu.c -- the training kernels (kernels/train.cu) against the
 * plain C references of src/train/loss.c, and whole heads trained on the
 * GPU against the CPU.  Exits 77 without a CUDA device. */
#include <math.h>
#include <string.h>

#include "../src/train/train_internal.h"
#include "detect_fixtures.h"
#include "gpu_helpers.h"
#include "nightshift/train.h"

static void *dev_copy(ns_cuda_ctx *ctx, const void *host, size_t bytes)
{
    void *d = NULL;
    ck_assert_ns_ok(ns_cuda_malloc(&d, bytes ? bytes : 4));
    if (host && bytes)
        ck_assert_ns_ok(ns_cuda_upload(ctx, d, host, bytes));
    return d;
}

static void host_copy(ns_cuda_ctx *ctx, void *host, const void *dev, size_t bytes)
{
    ck_assert_ns_ok(ns_cuda_download(ctx, host, dev, bytes));
}

/* Softmax objective: loss and gradient within float tolerance of the
 * double-precision reference, at several sizes. */
static void sm_case(ns_cuda_ctx *ctx, size_t n, int d, int C)
{
    uint64_t s = 1000 + n;
    float *x = malloc(n * (size_t)d * sizeof *x), *sw = malloc(n * sizeof *sw);
    int32_t *y = malloc(n * sizeof *y);
    size_t *rows = malloc(n * sizeof *rows), nw = (size_t)C * d;
    double cw[8], norm = 0, *th = malloc((nw + C) * sizeof *th), *g = malloc((nw + C) * 8);
    float *wf = malloc((nw + C) * sizeof *wf), *hloss = malloc(n * 4), *hgw = malloc(nw * 4),
          *hgb = malloc((size_t)C * 4);
    for (int c = 0; c < C; c++)
        cw[c] = 0.5 + c;
    for (size_t i = 0; i < n * (size_t)d; i++)
        x[i] = ns_test_rng_unif(&s);
    for (size_t i = 0; i < n; i++) {
        y[i] = (int32_t)(ns_test_rng_next(&s) % (uint64_t)C);
        rows[i] = i;
        norm += cw[y[i]];
    }
    for (size_t i = 0; i < n; i++)
        sw[i] = (float)(cw[y[i]] / norm);
    for (size_t k = 0; k < nw + C; k++)
        wf[k] = (float)(th[k] = 0.3 * ns_test_rng_unif(&s));
    ns_tr_rows r = {x, d, C, rows, n, y, cw, norm};
    double want = ns_sm_objective_ref(&r, 0.0, th, g);
    float *dx = dev_copy(ctx, x, n * d * 4), *dsw = dev_copy(ctx, sw, n * 4),
          *dw = dev_copy(ctx, wf, nw * 4), *db = dev_copy(ctx, wf + nw, (size_t)C * 4),
          *dz = dev_copy(ctx, NULL, n * C * 4), *dl = dev_copy(ctx, NULL, n * 4),
          *dgw = dev_copy(ctx, NULL, nw * 4), *dgb = dev_copy(ctx, NULL, (size_t)C * 4);
    int32_t *dy = dev_copy(ctx, y, n * 4);
    ck_assert_ns_ok(ns_cuda_sm_objective(ctx, dx, dy, dsw, n, d, C, dw, db, dz, dl, dgw, dgb));
    host_copy(ctx, hloss, dl, n * 4);
    host_copy(ctx, hgw, dgw, nw * 4);
    host_copy(ctx, hgb, dgb, (size_t)C * 4);
    double got = 0;
    for (size_t i = 0; i < n; i++)
        got += hloss[i];
    /* float logits over d terms, a weighted mean loss: 1e-5 relative. */
    ck_assert_msg(fabs(got - want) < 1e-5 * (1 + fabs(want)), "n=%zu: loss %g vs %g", n, got,
                  want);
    for (size_t k = 0; k < nw; k++)
        ck_assert_msg(fabs(hgw[k] - g[k]) < 2e-5, "n=%zu gw[%zu] %g vs %g", n, k,
                      (double)hgw[k], g[k]);
    for (int c = 0; c < C; c++)
        ck_assert_msg(fabs(hgb[c] - g[nw + c]) < 2e-5, "gb[%d]", c);
    void *all[] = {dx, dsw, dw, db, dz, dl, dgw, dgb, dy};
    for (size_t i = 0; i < 9; i++)
        ns_cuda_free(all[i]);
    free(x); free(sw); free(y); free(rows); free(th); free(g); free(wf); free(hloss);
    free(hgw); free(hgb);
}

START_TEST(test_sm_objective_parity)
{
    ns_cuda_ctx *ctx = NULL;
    ck_assert_ns_ok(ns_cuda_ctx_create(0, &ctx));
    sm_case(ctx, 1, 1, 2);
    sm_case(ctx, 300, 17, 3);
    sm_case(ctx, 5000, 512, 8);
    ns_cuda_ctx_free(ctx);
}
END_TEST

START_TEST(test_mlp_grad_and_adam_parity)
{
    ns_cuda_ctx *ctx = NULL;
    const int B = 37, d = 29, H = 19, C = 4;
    const size_t n1 = (size_t)H * d, n2 = (size_t)C * H, np = n1 + H + n2 + C;
    uint64_t s = 5;
    float *p = malloc(np * 4), *gref = malloc(np * 4), *ggpu = malloc(np * 4);
    float *x = malloc((size_t)B * d * 4), sw[37], loss[37];
    int32_t y[37];
    ck_assert_ns_ok(ns_cuda_ctx_create(0, &ctx));
    for (size_t k = 0; k < np; k++)
        p[k] = 0.5f * ns_test_rng_unif(&s);
    for (int i = 0; i < B * d; i++)
        x[i] = ns_test_rng_unif(&s);
    for (int i = 0; i < B; i++) {
        y[i] = i % C;
        sw[i] = 1.0f / B;
    }
    ns_mlp_params P = {d, H, C, p, p + n1, p + n1 + H, p + n1 + H + n2};
    ns_mlp_params G = {d, H, C, gref, gref + n1, gref + n1 + H, gref + n1 + H + n2};
    double want = ns_mlp_batch_grad_ref(&P, x, y, sw, B, &G);
    float *dp = dev_copy(ctx, p, np * 4), *dg = dev_copy(ctx, NULL, np * 4),
          *dx = dev_copy(ctx, x, (size_t)B * d * 4), *dsw = dev_copy(ctx, sw, sizeof sw),
          *dh = dev_copy(ctx, NULL, (size_t)B * H * 4), *ddh = dev_copy(ctx, NULL, (size_t)B * H * 4),
          *dz = dev_copy(ctx, NULL, (size_t)B * C * 4), *dl = dev_copy(ctx, NULL, sizeof loss);
    int32_t *dy = dev_copy(ctx, y, sizeof y);
    ck_assert_ns_ok(ns_cuda_mlp_grad(ctx, dx, dy, dsw, B, d, H, C, dp, dp + n1, dp + n1 + H,
                                     dp + n1 + H + n2, dh, ddh, dz, dl, dg, dg + n1, dg + n1 + H,
                                     dg + n1 + H + n2));
    host_copy(ctx, ggpu, dg, np * 4);
    host_copy(ctx, loss, dl, sizeof loss);
    double got = 0;
    for (int i = 0; i < B; i++)
        got += loss[i];
    ck_assert_msg(fabs(got - want) < 1e-5, "loss %g vs %g", got, want);
    for (size_t k = 0; k < np; k++)
        ck_assert_msg(fabs(ggpu[k] - gref[k]) < 1e-5, "grad[%zu] %g vs %g", k, (double)ggpu[k],
                      (double)gref[k]);

    /* Three Adam steps against the formula in double. */
    float *m0 = calloc(np, 4), *dm = dev_copy(ctx, m0, np * 4), *dv = dev_copy(ctx, m0, np * 4);
    double *pm = calloc(np, 8), *pv = calloc(np, 8), *pp = malloc(np * 8);
    for (size_t k = 0; k < np; k++)
        pp[k] = p[k];
    for (int t = 1; t <= 3; t++) {
        double lr_t = 1e-2 / (1 - pow(0.9, t)), vc = sqrt(1 - pow(0.999, t));
        ck_assert_ns_ok(ns_cuda_adam(ctx, dp, dg, dm, dv, np, 0.1f, lr_t, vc));
        for (size_t k = 0; k < np; k++) {
            double g = ggpu[k] + 0.1 * (float)pp[k];
            pm[k] = 0.9 * pm[k] + 0.1 * g;
            pv[k] = 0.999 * pv[k] + 0.001 * g * g;
            pp[k] -= lr_t * pm[k] / (sqrt(pv[k]) / vc + 1e-8);
        }
    }
    host_copy(ctx, p, dp, np * 4);
    for (size_t k = 0; k < np; k++)
        ck_assert_msg(fabs(p[k] - pp[k]) < 1e-5, "adam p[%zu] %g vs %g", k, (double)p[k], pp[k]);

    /* Gather. */
    int32_t idx[3] = {5, 0, 36};
    float got_rows[3 * 29];
    int32_t *didx = dev_copy(ctx, idx, sizeof idx);
    float *dout = dev_copy(ctx, NULL, sizeof got_rows);
    ck_assert_ns_ok(ns_cuda_gather_rows(ctx, dx, didx, 3, d, dout));
    host_copy(ctx, got_rows, dout, sizeof got_rows);
    for (int i = 0; i < 3; i++)
        ck_assert(memcmp(got_rows + i * d, x + idx[i] * d, (size_t)d * 4) == 0);
    void *all[] = {dp, dg, dx, dsw, dh, ddh, dz, dl, dy, dm, dv, didx, dout};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        ns_cuda_free(all[i]);
    free(p); free(gref); free(ggpu); free(x); free(m0); free(pm); free(pv); free(pp);
    ns_cuda_ctx_free(ctx);
}
END_TEST

/* A head trained on the GPU predicts as the CPU's does. */
START_TEST(test_train_cuda_vs_cpu)
{
    ns_dataset ds;
    ns_train_opts o;
    const int d = 24, C = 4;
    const size_t n = 4000;
    uint64_t s = 3;
    ck_assert_ns_ok(ns_dataset_alloc(&ds, n, d, (size_t)C));
    float mu[4 * 24];
    for (int k = 0; k < C * d; k++)
        mu[k] = 0.7f * (float)ns_test_rng_gauss(&s);
    for (int c = 0; c < C; c++)
        snprintf(ds.classes[c], NS_LABEL_LEN, "c%d", c);
    for (size_t i = 0; i < n; i++) {
        ds.label[i] = (int32_t)(i % C);
        ds.split[i] = i % 10 < 7 ? NS_SPLIT_TRAIN : i % 10 < 9 ? NS_SPLIT_VAL : NS_SPLIT_TEST;
        for (int k = 0; k < d; k++)
            ds.emb[i * d + k] = mu[ds.label[i] * d + k] + (float)ns_test_rng_gauss(&s);
    }
    memset(ds.model_id, 'a', NS_SHA256_HEX - 1);
    for (int kind = 0; kind < 2; kind++) {
        ns_head cpu, gpu;
        ns_train_default_opts(&o);
        o.kind = kind ? NS_HEAD_MLP : NS_HEAD_SOFTMAX;
        o.hidden = 32;
        o.epochs = kind ? 8 : 100;
        o.patience = -1;
        o.device = NS_DEVICE_CPU;
        ck_assert_ns_ok(ns_train(&ds, &o, NULL, NULL, NULL, &cpu));
        o.device = NS_DEVICE_CUDA;
        ck_assert_ns_ok(ns_train(&ds, &o, NULL, NULL, NULL, &gpu));
        ck_assert_ptr_nonnull(strstr(gpu.options, "device=cuda"));
        float *pc = malloc(n * C * 4), *pg = malloc(n * C * 4);
        ck_assert_ns_ok(ns_head_predict(&cpu, ds.emb, n, pc));
        ck_assert_ns_ok(ns_head_predict(&gpu, ds.emb, n, pg));
        size_t agree = 0;
        int32_t tc[4000], tg[4000];
        ns_head_top(pc, n, C, tc, NULL, NULL);
        ns_head_top(pg, n, C, tg, NULL, NULL);
        for (size_t i = 0; i < n; i++)
            agree += tc[i] == tg[i];
        /* Same data, start and batch order; float sums differ in order only. */
        ck_assert_msg(agree >= n * 99 / 100, "%s: %zu of %zu top classes agree",
                      kind ? "mlp" : "softmax", agree, n);
        free(pc);
        free(pg);
        ns_head_release(&cpu);
        ns_head_release(&gpu);
    }
    ns_dataset_release(&ds);
}
END_TEST

int main(void)
{
    if (!ns_test_gpu_present("test_train_gpu"))
        return 77;
    Suite *s = suite_create("train_gpu");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_sm_objective_parity);
    tcase_add_test(tc, test_mlp_grad_and_adam_parity);
    tcase_add_test(tc, test_train_cuda_vs_cpu);
    suite_add_tcase(s, tc);
    return ns_test_run_nofork(s);
}
