/* test_train.c -- training heads: gradients against finite differences, the
 * fast losses against their references, L-BFGS, the softmax head against
 * plain gradient descent, temperature scaling, --init, early stopping,
 * class weights and determinism. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "../src/train/train_internal.h"
#include "detect_fixtures.h"
#include "helpers.h"
#include "nightshift/train.h"

/* A Gaussian mixture: class c centred at mu_c (spread `sep`), unit noise;
 * split by row: 70% train, 15% val, 15% test.  counts NULL: balanced. */
static void mixture(ns_dataset *ds, size_t n, int d, int C, double sep, const double *share,
                    uint64_t seed)
{
    ck_assert_ns_ok(ns_dataset_alloc(ds, n, d, (size_t)C));
    double *mu = malloc((size_t)C * d * sizeof *mu);
    uint64_t s = seed;
    for (int k = 0; k < C * d; k++)
        mu[k] = sep * ns_test_rng_gauss(&s);
    for (int c = 0; c < C; c++)
        snprintf(ds->classes[c], NS_LABEL_LEN, "class_%c", 'a' + c);
    for (size_t i = 0; i < n; i++) {
        int c = (int)(i % (size_t)C);
        if (share) { /* class by cumulative share */
            double u = (double)(ns_test_rng_next(&s) >> 11) * 0x1.0p-53, acc = 0;
            for (c = 0; c < C - 1 && u >= (acc += share[c]); c++)
                ;
        }
        ds->label[i] = c;
        for (int k = 0; k < d; k++)
            ds->emb[i * (size_t)d + k] = (float)(mu[c * d + k] + ns_test_rng_gauss(&s));
        size_t r = i % 20;
        ds->split[i] = r < 14 ? NS_SPLIT_TRAIN : r < 17 ? NS_SPLIT_VAL : NS_SPLIT_TEST;
    }
    memset(ds->model_id, 'a', NS_SHA256_HEX - 1);
    ns_dataset_content_id(ds, ds->dataset_id);
    free(ds->label_sets);
    ds->label_sets = strdup("gen@000001");
    free(mu);
}

static double accuracy(const ns_head *h, const ns_dataset *ds, int split, int cls)
{
    float *p = malloc(ds->n * (size_t)h->n_classes * sizeof *p);
    int32_t *top = malloc(ds->n * sizeof *top);
    ck_assert_ns_ok(ns_head_predict(h, ds->emb, ds->n, p));
    ns_head_top(p, ds->n, h->n_classes, top, NULL, NULL);
    size_t right = 0, all = 0;
    for (size_t i = 0; i < ds->n; i++)
        if (ds->split[i] == split && (cls < 0 || ds->label[i] == cls)) {
            all++;
            right += strcmp(h->classes[top[i]], ds->classes[ds->label[i]]) == 0;
        }
    free(p);
    free(top);
    return all ? (double)right / (double)all : NAN;
}

/* ---- gradients ---------------------------------------------------------------- */

typedef struct rows_fixture {
    float *x;
    int32_t *y;
    size_t *rows;
    double cw[5];
    ns_tr_rows r;
} rows_fixture;

static void rows_make(rows_fixture *f, size_t n, int d, int C, int gappy, uint64_t seed)
{
    size_t total = gappy ? 2 * n + 3 : n;
    f->x = malloc(total * (size_t)d * sizeof *f->x);
    f->y = malloc(total * sizeof *f->y);
    f->rows = malloc(n * sizeof *f->rows);
    for (size_t i = 0; i < total * (size_t)d; i++)
        f->x[i] = ns_test_rng_unif(&seed);
    double norm = 0;
    for (int c = 0; c < C; c++)
        f->cw[c] = 0.5 + c;
    for (size_t i = 0; i < total; i++)
        f->y[i] = (int32_t)(ns_test_rng_next(&seed) % (uint64_t)C);
    for (size_t i = 0; i < n; i++) {
        /* Runs of contiguous rows broken by gaps: both gather paths. */
        f->rows[i] = gappy ? i + (i / 300) + (i % 7 == 3) * (n / 2) : i;
        if (f->rows[i] >= total)
            f->rows[i] = total - 1;
        norm += f->cw[f->y[f->rows[i]]];
    }
    f->r = (ns_tr_rows){f->x, d, C, f->rows, n, f->y, f->cw, norm};
}

static void rows_free(rows_fixture *f)
{
    free(f->x);
    free(f->y);
    free(f->rows);
}

START_TEST(test_softmax_gradient_fd)
{
    rows_fixture f;
    const int d = 6, C = 4;
    const size_t np = (size_t)C * d + C;
    rows_make(&f, 40, d, C, 0, 3);
    double th[28], g[28], gp[28];
    uint64_t s = 9;
    for (size_t k = 0; k < np; k++)
        th[k] = 0.5 * ns_test_rng_unif(&s);
    ns_sm_objective_ref(&f.r, 0.3, th, g);
    for (size_t k = 0; k < np; k++) {
        const double h = 1e-6, t0 = th[k];
        th[k] = t0 + h;
        double fp = ns_sm_objective_ref(&f.r, 0.3, th, gp);
        th[k] = t0 - h;
        double fm = ns_sm_objective_ref(&f.r, 0.3, th, gp);
        th[k] = t0;
        double fd = (fp - fm) / (2 * h);
        ck_assert_msg(fabs(fd - g[k]) < 1e-7 + 1e-6 * fabs(fd), "param %zu: %g vs fd %g", k,
                      g[k], fd);
    }
    rows_free(&f);
}
END_TEST

static void fast_vs_ref(size_t n, int d, int C, int gappy, int threads)
{
    rows_fixture f;
    ns_sm_work w;
    const size_t np = (size_t)C * d + C;
    rows_make(&f, n, d, C, gappy, 17 + n);
    double *th = malloc(np * sizeof *th), *g1 = malloc(np * sizeof *g1),
           *g2 = malloc(np * sizeof *g2);
    uint64_t s = 5;
    for (size_t k = 0; k < np; k++)
        th[k] = 0.3 * ns_test_rng_unif(&s);
    ck_assert_ns_ok(ns_sm_work_init(&w, d, C, threads));
    double a = ns_sm_objective(&f.r, 0.01, &w, th, g1), b = ns_sm_objective_ref(&f.r, 0.01, th, g2);
    /* float GEMMs over d terms: about 1e-6 relative; the loss is a mean. */
    ck_assert_msg(fabs(a - b) < 1e-5 * (1 + fabs(b)), "n=%zu d=%d: loss %g vs %g", n, d, a, b);
    for (size_t k = 0; k < np; k++)
        ck_assert_msg(fabs(g1[k] - g2[k]) < 2e-5, "n=%zu d=%d param %zu: %g vs %g", n, d, k,
                      g1[k], g2[k]);
    ns_sm_work_release(&w);
    free(th);
    free(g1);
    free(g2);
    rows_free(&f);
}

START_TEST(test_softmax_fast_matches_ref)
{
    fast_vs_ref(1, 1, 2, 0, 1);
    fast_vs_ref(37, 5, 3, 0, 2);
    fast_vs_ref(700, 33, 5, 1, 2);
    fast_vs_ref(9000, 8, 3, 1, 2); /* more blocks than partial sums */
}
END_TEST

/* Same bits at 1 and 2 threads. */
START_TEST(test_softmax_objective_thread_independent)
{
    rows_fixture f;
    ns_sm_work w1, w2;
    const int d = 16, C = 3;
    const size_t np = (size_t)C * d + C;
    rows_make(&f, 5000, d, C, 1, 4);
    double th[51], g1[51], g2[51];
    for (size_t k = 0; k < np; k++)
        th[k] = 0.01 * (double)k;
    ck_assert_ns_ok(ns_sm_work_init(&w1, d, C, 1));
    ck_assert_ns_ok(ns_sm_work_init(&w2, d, C, 2));
    double a = ns_sm_objective(&f.r, 0.1, &w1, th, g1), b = ns_sm_objective(&f.r, 0.1, &w2, th, g2);
    ck_assert(a == b);
    ck_assert(memcmp(g1, g2, sizeof g1) == 0);
    ns_sm_work_release(&w1);
    ns_sm_work_release(&w2);
    rows_free(&f);
}
END_TEST

static void mlp_alloc(ns_mlp_params *p, int d, int H, int C)
{
    *p = (ns_mlp_params){d, H, C, calloc((size_t)H * d, 4), calloc((size_t)H, 4),
                         calloc((size_t)C * H, 4), calloc((size_t)C, 4)};
}

static void mlp_free(ns_mlp_params *p)
{
    free(p->w1);
    free(p->b1);
    free(p->w);
    free(p->b);
}

static float *mlp_param(ns_mlp_params *p, size_t k)
{
    size_t n1 = (size_t)p->hidden * p->d, n2 = (size_t)p->hidden, n3 = (size_t)p->C * p->hidden;
    if (k < n1)
        return p->w1 + k;
    if ((k -= n1) < n2)
        return p->b1 + k;
    if ((k -= n2) < n3)
        return p->w + k;
    return p->b + (k - n3);
}

START_TEST(test_mlp_gradient_fd_and_fast)
{
    const int d = 5, H = 7, C = 3, B = 9;
    ns_mlp_params p, g, g2;
    mlp_alloc(&p, d, H, C);
    mlp_alloc(&g, d, H, C);
    mlp_alloc(&g2, d, H, C);
    const size_t np = (size_t)H * d + H + (size_t)C * H + C;
    uint64_t s = 77;
    for (size_t k = 0; k < np; k++)
        *mlp_param(&p, k) = ns_test_rng_unif(&s);
    float xb[45], sw[9], hb[63], dh[63], z[27];
    double gbs[3];
    int32_t yb[9];
    for (int i = 0; i < B * d; i++)
        xb[i] = ns_test_rng_unif(&s);
    for (int i = 0; i < B; i++) {
        yb[i] = i % C;
        sw[i] = (float)(1.0 + i) / 45.0f;
    }
    ns_mlp_batch_grad_ref(&p, xb, yb, sw, B, &g);
    for (size_t k = 0; k < np; k++) {
        float *q = mlp_param(&p, k), q0 = *q;
        const float h = 1e-3f;
        *q = q0 + h;
        double fp = ns_mlp_batch_grad_ref(&p, xb, yb, sw, B, &g2);
        *q = q0 - h;
        double fm = ns_mlp_batch_grad_ref(&p, xb, yb, sw, B, &g2);
        *q = q0;
        double fd = (fp - fm) / (2.0 * h);
        /* float parameters and ReLU kinks: a looser bound than the softmax's. */
        ck_assert_msg(fabs(fd - *mlp_param(&g, k)) < 2e-3 + 1e-2 * fabs(fd),
                      "param %zu: %g vs fd %g", k, (double)*mlp_param(&g, k), fd);
    }
    double a = ns_mlp_batch_grad(&p, xb, yb, sw, B, hb, dh, z, gbs, &g2);
    double b = ns_mlp_batch_grad_ref(&p, xb, yb, sw, B, &g);
    ck_assert(fabs(a - b) < 1e-5);
    for (size_t k = 0; k < np; k++)
        ck_assert_msg(fabs(*mlp_param(&g, k) - *mlp_param(&g2, k)) < 1e-5, "param %zu", k);
    mlp_free(&p);
    mlp_free(&g);
    mlp_free(&g2);
}
END_TEST

/* ---- L-BFGS ------------------------------------------------------------------- */

static double rosenbrock(void *ctx, const double *x, double *g)
{
    (void)ctx;
    double f = 0;
    g[0] = g[1] = g[2] = 0;
    for (int i = 0; i < 2; i++) {
        double a = x[i + 1] - x[i] * x[i], b = 1 - x[i];
        f += 100 * a * a + b * b;
        g[i] += -400 * a * x[i] - 2 * b;
        g[i + 1] += 200 * a;
    }
    return f;
}

START_TEST(test_lbfgs_rosenbrock)
{
    double x[3] = {-1.2, 1.0, -0.5};
    ns_lbfgs_opts o = {10, 500, 1e-9, 0};
    int it = 0;
    ck_assert_ns_ok(ns_lbfgs(rosenbrock, NULL, NULL, x, 3, &o, &it));
    for (int i = 0; i < 3; i++)
        ck_assert_msg(fabs(x[i] - 1) < 1e-5, "x[%d] = %g after %d iterations", i, x[i], it);
    ck_assert_int_lt(it, 200);
}
END_TEST

/* ---- whole heads ------------------------------------------------------------- */

static void no_val(ns_dataset *ds)
{
    for (size_t i = 0; i < ds->n; i++)
        if (ds->split[i] == NS_SPLIT_VAL)
            ds->split[i] = NS_SPLIT_TEST;
}

/* The trained softmax head is the optimum that plain full-batch gradient
 * descent on the reference objective reaches. */
START_TEST(test_softmax_head_vs_gradient_descent)
{
    ns_dataset ds;
    ns_head h;
    ns_train_opts o;
    const int d = 4, C = 3;
    mixture(&ds, 600, d, C, 1.0, NULL, 7);
    no_val(&ds);
    ns_train_default_opts(&o);
    o.l2 = 0.05; /* strongly convex: gradient descent converges in a few thousand steps */
    o.tol = 1e-9;
    ck_assert_ns_ok(ns_train(&ds, &o, NULL, NULL, NULL, &h));
    ck_assert(h.temperature == 1.0f); /* no val split: no temperature */

    size_t *rows = malloc(ds.n * sizeof *rows), n = 0, cnt[3] = {0};
    for (size_t i = 0; i < ds.n; i++)
        if (ds.split[i] == NS_SPLIT_TRAIN) {
            rows[n++] = i;
            cnt[ds.label[i]]++;
        }
    double cw[3], norm = 0;
    for (int c = 0; c < C; c++) {
        cw[c] = (double)n / (C * (double)cnt[c]);
        norm += cw[c] * cnt[c];
    }
    ns_tr_rows r = {ds.emb, d, C, rows, n, ds.label, cw, norm};
    double th[15] = {0}, g[15];
    for (int it = 0; it < 20000; it++) {
        ns_sm_objective_ref(&r, o.l2, th, g);
        for (int k = 0; k < 15; k++)
            th[k] -= 0.5 * g[k];
    }
    for (int c = 0; c < C; c++) {
        for (int k = 0; k < d; k++)
            ck_assert_msg(fabs(h.w[c * d + k] - th[c * d + k]) < 1e-4, "W[%d][%d] %g vs %g", c, k,
                          (double)h.w[c * d + k], th[c * d + k]);
        ck_assert_msg(fabs(h.b[c] - th[12 + c]) < 1e-4, "b[%d] %g vs %g", c, (double)h.b[c],
                      th[12 + c]);
    }
    ck_assert_str_eq(h.dataset_id, ds.dataset_id);
    ck_assert_str_eq(h.model_id, ds.model_id);
    ck_assert_str_eq(h.label_sets, "gen@000001");
    ck_assert_uint_gt(h.n_epochs, 2);
    ck_assert(isnan(h.epochs[0].val_loss));
    free(rows);
    ns_head_release(&h);
    ns_dataset_release(&ds);
}
END_TEST

START_TEST(test_temperature_recovers_known)
{
    /* Labels drawn from softmax(z / 2.5): the fitted temperature is 2.5. */
    const size_t n = 20000;
    const int C = 4;
    float *z = malloc(n * C * sizeof *z);
    int32_t *y = malloc(n * sizeof *y);
    uint64_t s = 123;
    for (size_t i = 0; i < n; i++) {
        double p[4], sum = 0, u, acc = 0;
        for (int c = 0; c < C; c++) {
            z[i * C + c] = (float)(4.0 * ns_test_rng_gauss(&s));
            sum += (p[c] = exp(z[i * C + c] / 2.5));
        }
        u = (double)(ns_test_rng_next(&s) >> 11) * 0x1.0p-53 * sum;
        int c = 0;
        while (c < C - 1 && u >= (acc += p[c]))
            c++;
        y[i] = c;
    }
    float T = ns_train_fit_temperature(z, y, n, C);
    ck_assert_msg(fabs(T - 2.5) < 0.1, "T = %g", (double)T);
    ck_assert(ns_train_fit_temperature(z, y, 0, C) == 1.0f);
    free(z);
    free(y);
}
END_TEST

/* On overlapping classes the val split gets a temperature that lowers its
 * log loss, and the head's mean confidence tracks its accuracy. */
START_TEST(test_temperature_calibrates)
{
    ns_dataset ds;
    ns_head h;
    ns_train_opts o;
    mixture(&ds, 1000, 16, 4, 0.45, NULL, 8);
    ns_train_default_opts(&o);
    o.kind = NS_HEAD_MLP;
    o.hidden = 128;
    o.epochs = 60;
    o.lr = 3e-3;
    o.patience = -1; /* overfit on purpose: overconfident before scaling */
    o.l2 = 0;
    ck_assert_ns_ok(ns_train(&ds, &o, NULL, NULL, NULL, &h));
    ck_assert_msg(h.temperature > 1.05f, "T = %g", (double)h.temperature);
    float *p = malloc(ds.n * 4 * sizeof *p), *q = malloc(ds.n * sizeof *q);
    ck_assert_ns_ok(ns_head_predict(&h, ds.emb, ds.n, p));
    ns_head_top(p, ds.n, 4, NULL, q, NULL);
    double conf = 0;
    size_t nt = 0;
    for (size_t i = 0; i < ds.n; i++)
        if (ds.split[i] == NS_SPLIT_TEST) {
            conf += q[i];
            nt++;
        }
    double acc = accuracy(&h, &ds, NS_SPLIT_TEST, -1);
    ck_assert_msg(fabs(conf / nt - acc) < 0.06, "confidence %g vs accuracy %g", conf / nt, acc);
    free(p);
    free(q);
    ns_head_release(&h);
    ns_dataset_release(&ds);
}
END_TEST

START_TEST(test_mlp_learns_and_is_deterministic)
{
    ns_dataset ds;
    ns_head a, b, c;
    ns_train_opts o;
    mixture(&ds, 2000, 12, 5, 0.8, NULL, 9);
    ns_train_default_opts(&o);
    o.kind = NS_HEAD_MLP;
    o.hidden = 32;
    o.epochs = 15;
    ck_assert_ns_ok(ns_train(&ds, &o, NULL, NULL, NULL, &a));
    ck_assert_ns_ok(ns_train(&ds, &o, NULL, NULL, NULL, &b));
    ck_assert_str_eq(a.head_id, b.head_id);
    o.seed = 2;
    ck_assert_ns_ok(ns_train(&ds, &o, NULL, NULL, NULL, &c));
    ck_assert_str_ne(a.head_id, c.head_id);
    ck_assert_int_eq(a.hidden, 32);
    double acc = accuracy(&a, &ds, NS_SPLIT_TEST, -1);
    ck_assert_msg(acc > 0.8, "MLP test accuracy %g", acc);
    ck_assert_ptr_nonnull(strstr(a.options, "head=mlp"));
    ns_head_release(&a);
    ns_head_release(&b);
    ns_head_release(&c);
    ns_dataset_release(&ds);
}
END_TEST

static int count_cb(void *ctx, const ns_head_epoch *e, int max)
{
    int *n = ctx;
    ck_assert_int_le(e->epoch, max);
    ck_assert(e->val_accuracy >= 0 && e->val_accuracy <= 1);
    (*n)++;
    return 0;
}

/* Noisy labels overfit: val loss turns up, training stops and keeps the best. */
START_TEST(test_early_stopping)
{
    ns_dataset ds;
    ns_head h;
    ns_train_opts o;
    int calls = 0;
    mixture(&ds, 1500, 20, 3, 0.3, NULL, 10);
    ns_train_default_opts(&o);
    o.kind = NS_HEAD_MLP;
    o.hidden = 128;
    o.epochs = 200;
    o.patience = 3;
    o.l2 = 0;
    o.lr = 3e-3;
    ck_assert_ns_ok(ns_train(&ds, &o, NULL, count_cb, &calls, &h));
    ck_assert_int_lt(h.n_epochs, 200);
    ck_assert_int_eq(calls, (int)h.n_epochs);
    size_t best = 0;
    for (size_t e = 1; e < h.n_epochs; e++)
        if (h.epochs[e].val_loss < h.epochs[best].val_loss)
            best = e;
    ck_assert_uint_eq(best, h.n_epochs - 1 - 3); /* stopped 3 epochs after the best */
    /* The head returned is the best epoch's (the temperature keeps the argmax). */
    ck_assert(fabs(accuracy(&h, &ds, NS_SPLIT_VAL, -1) - h.epochs[best].val_accuracy) < 1e-12);
    ns_head_release(&h);
    ns_dataset_release(&ds);
}
END_TEST

START_TEST(test_balanced_weights_help_minority)
{
    ns_dataset ds;
    ns_head hb, hn;
    ns_train_opts o;
    const double share[3] = {0.9, 0.07, 0.03};
    mixture(&ds, 6000, 6, 3, 0.6, share, 11);
    ns_train_default_opts(&o);
    ck_assert_ns_ok(ns_train(&ds, &o, NULL, NULL, NULL, &hb));
    o.balanced = 0;
    ck_assert_ns_ok(ns_train(&ds, &o, NULL, NULL, NULL, &hn));
    double rb = accuracy(&hb, &ds, NS_SPLIT_TEST, 2), rn = accuracy(&hn, &ds, NS_SPLIT_TEST, 2);
    ck_assert_msg(rb > rn + 0.1, "minority recall balanced %g, unweighted %g", rb, rn);
    ck_assert_ptr_nonnull(strstr(hb.options, "class_weight=balanced"));
    ns_head_release(&hb);
    ns_head_release(&hn);
    ns_dataset_release(&ds);
}
END_TEST

START_TEST(test_init_fine_tune)
{
    ns_dataset old, nw;
    ns_head prod, cand, bad;
    ns_train_opts o;
    ns_train_default_opts(&o);
    /* Production knows classes a, b; the new dataset adds c and lists it first. */
    mixture(&old, 2000, 8, 3, 1.0, NULL, 12);
    ns_dataset sub;
    ck_assert_ns_ok(ns_dataset_alloc(&sub, 0, 8, 2));
    size_t k = 0;
    for (size_t i = 0; i < old.n; i++)
        k += old.label[i] < 2;
    ns_dataset_release(&sub);
    ck_assert_ns_ok(ns_dataset_alloc(&sub, k, 8, 2));
    snprintf(sub.classes[0], NS_LABEL_LEN, "class_a");
    snprintf(sub.classes[1], NS_LABEL_LEN, "class_b");
    k = 0;
    for (size_t i = 0; i < old.n; i++)
        if (old.label[i] < 2) {
            memcpy(sub.emb + k * 8, old.emb + i * 8, 8 * sizeof(float));
            sub.label[k] = old.label[i];
            sub.split[k++] = old.split[i];
        }
    memcpy(sub.model_id, old.model_id, sizeof sub.model_id);
    ck_assert_ns_ok(ns_train(&sub, &o, NULL, NULL, NULL, &prod));

    ck_assert_ns_ok(ns_dataset_alloc(&nw, old.n, 8, 3));
    const int map[3] = {1, 2, 0}; /* old class -> new row: c, a, b */
    snprintf(nw.classes[0], NS_LABEL_LEN, "class_c");
    snprintf(nw.classes[1], NS_LABEL_LEN, "class_a");
    snprintf(nw.classes[2], NS_LABEL_LEN, "class_b");
    memcpy(nw.emb, old.emb, old.n * 8 * sizeof(float));
    memcpy(nw.split, old.split, old.n);
    for (size_t i = 0; i < old.n; i++)
        nw.label[i] = map[old.label[i]];
    memcpy(nw.model_id, old.model_id, sizeof nw.model_id);

    /* One iteration from the production head keeps its rows where they belong. */
    o.epochs = 1;
    ck_assert_ns_ok(ns_train(&nw, &o, &prod, NULL, NULL, &cand));
    ck_assert_str_eq(cand.classes[0], "class_c");
    double da = 0, dz = 0;
    for (int j = 0; j < 8; j++) {
        da += fabs(cand.w[1 * 8 + j] - prod.w[0 * 8 + j]);
        dz += fabs(cand.w[0 * 8 + j]);
    }
    ck_assert_msg(da < dz, "row a moved %g, new row c is %g from zero", da, dz);
    ck_assert_ptr_nonnull(strstr(cand.options, prod.head_id));
    ns_head_release(&cand);
    /* Trained fully, the new class is learnt. */
    o.epochs = 0;
    ck_assert_ns_ok(ns_train(&nw, &o, &prod, NULL, NULL, &cand));
    ck_assert_msg(accuracy(&cand, &nw, NS_SPLIT_TEST, 0) > 0.8, "new class recall");
    ns_head_release(&cand);

    /* Refusals: production class missing, another model, another kind. */
    ck_assert_ns_status(ns_train(&sub, &o, &cand, NULL, NULL, &bad), NS_ERR_USAGE);
    snprintf(nw.classes[2], NS_LABEL_LEN, "class_z");
    ck_assert_ns_status(ns_train(&nw, &o, &prod, NULL, NULL, &bad), NS_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "class_b"));
    snprintf(nw.classes[2], NS_LABEL_LEN, "class_b");
    nw.model_id[0] = 'f';
    ck_assert_ns_status(ns_train(&nw, &o, &prod, NULL, NULL, &bad), NS_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "model"));
    nw.model_id[0] = 'a';
    o.kind = NS_HEAD_MLP;
    ck_assert_ns_status(ns_train(&nw, &o, &prod, NULL, NULL, &bad), NS_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "softmax"));
    ns_head_release(&prod);
    ns_dataset_release(&old);
    ns_dataset_release(&sub);
    ns_dataset_release(&nw);
}
END_TEST

START_TEST(test_bad_datasets)
{
    ns_dataset ds;
    ns_head h;
    ns_train_opts o;
    ns_train_default_opts(&o);
    mixture(&ds, 100, 3, 2, 1.0, NULL, 13);
    memset(ds.split, NS_SPLIT_TEST, ds.n);
    ck_assert_ns_status(ns_train(&ds, &o, NULL, NULL, NULL, &h), NS_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "train split"));
    ns_dataset_release(&ds);
    o.batch = 0;
    mixture(&ds, 100, 3, 2, 1.0, NULL, 13);
    ck_assert_ns_status(ns_train(&ds, &o, NULL, NULL, NULL, &h), NS_ERR_USAGE);
    ns_dataset_release(&ds);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_softmax_gradient_fd);
    tcase_add_test(tc, test_softmax_fast_matches_ref);
    tcase_add_test(tc, test_softmax_objective_thread_independent);
    tcase_add_test(tc, test_mlp_gradient_fd_and_fast);
    tcase_add_test(tc, test_lbfgs_rosenbrock);
    tcase_add_test(tc, test_softmax_head_vs_gradient_descent);
    tcase_add_test(tc, test_temperature_recovers_known);
    tcase_add_test(tc, test_temperature_calibrates);
    tcase_add_test(tc, test_mlp_learns_and_is_deterministic);
    tcase_add_test(tc, test_early_stopping);
    tcase_add_test(tc, test_balanced_weights_help_minority);
    tcase_add_test(tc, test_init_fine_tune);
    tcase_add_test(tc, test_bad_datasets);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ns_test_run(suite());
}
