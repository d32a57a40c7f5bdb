/* test_gate.c -- the clip bootstrap, Holm, McNemar, the policy file and
 * every verdict path of the gate, on datasets built in memory. */
#include <math.h>
#include <omp.h>

#include "helpers.h"
#include "nightshift/bootstrap.h"
#include "nightshift/evalset.h"
#include "nightshift/evaluate.h"
#include "nightshift/evalreport.h"
#include "nightshift/gate.h"
#include "nightshift/metrics.h"

/* ---- fixtures ---------------------------------------------------------------- */

typedef struct fx {
    ns_dataset ds;
    float *pc, *pp; /* (n, K) candidate and production probabilities */
    int K;
    size_t n;
} fx;

/* clips[c] frames each; camera of clip c from cams[c]; every label 0 unless
 * set later. */
static void fx_make(fx *f, size_t n_clips, const int *frames, const char *const *cams, int K)
{
    size_t n = 0, r = 0;
    for (size_t c = 0; c < n_clips; c++)
        n += (size_t)frames[c];
    memset(f, 0, sizeof *f);
    ck_assert_ns_ok(ns_dataset_alloc(&f->ds, n, 2, (size_t)K));
    f->K = K;
    f->n = n;
    snprintf(f->ds.split_by, sizeof f->ds.split_by, "none");
    for (int k = 0; k < K; k++)
        snprintf(f->ds.classes[k], sizeof f->ds.classes[k], "class%d", k);
    for (size_t c = 0; c < n_clips; c++)
        for (int i = 0; i < frames[c]; i++, r++) {
            snprintf(f->ds.clip[r], sizeof f->ds.clip[r], "%064zx", c + 1);
            snprintf(f->ds.camera[r], sizeof f->ds.camera[r], "%s", cams[c]);
            snprintf(f->ds.night[r], sizeof f->ds.night[r], "2026-01-0%zu", 1 + c % 3);
            f->ds.index[r] = (uint32_t)i;
            f->ds.label[r] = 0;
        }
    f->pc = calloc(n * (size_t)K, sizeof *f->pc);
    f->pp = calloc(n * (size_t)K, sizeof *f->pp);
    ck_assert_ptr_nonnull(f->pc);
    ck_assert_ptr_nonnull(f->pp);
}

/* Row r of p: the top class is the label when correct, else the next class,
 * with probability conf; the rest spread evenly. */
static void fx_set(const fx *f, float *p, size_t r, int correct, float conf)
{
    int lab = f->ds.label[r], top = correct ? lab : (lab + 1) % f->K;
    for (int k = 0; k < f->K; k++)
        p[r * (size_t)f->K + (size_t)k] = (1.0f - conf) / (float)(f->K - 1);
    p[r * (size_t)f->K + (size_t)top] = conf;
}

/* n_clips clips of fpc frames, even clips on camera ca, odd ones on cb. */
static void fx_make_even(fx *f, int n_clips, int fpc, int K, const char *ca, const char *cb)
{
    int frames[64];
    const char *cams[64];
    ck_assert_int_le(n_clips, 64);
    for (int c = 0; c < n_clips; c++) {
        frames[c] = fpc;
        cams[c] = c % 2 ? cb : ca;
    }
    fx_make(f, (size_t)n_clips, frames, cams, K);
}

static void fx_free(fx *f)
{
    ns_dataset_release(&f->ds);
    free(f->pc);
    free(f->pp);
}

typedef struct run {
    ns_eval_set es;
    ns_eval_pred c, p;
    ns_gate_result g;
} run;

static void fx_gate(const fx *f, const ns_gate_policy *pol, run *r, int prod_classes)
{
    char (*cls)[NS_LABEL_LEN] = f->ds.classes;
    ck_assert_ns_ok(ns_eval_set_build(&f->ds, pol->subsets, pol->n_subsets, &r->es));
    ck_assert_ns_ok(ns_eval_pred_from_probs(&r->es, &f->ds, f->pc, f->K,
                                            (const char(*)[NS_LABEL_LEN])cls, &r->c));
    ck_assert_ns_ok(ns_eval_pred_from_probs(&r->es, &f->ds, f->pp, prod_classes,
                                            (const char(*)[NS_LABEL_LEN])cls, &r->p));
    ck_assert_ns_ok(ns_gate_run(&r->es, &f->ds, &r->c, &r->p, pol, 2, &r->g));
}

static void run_free(run *r)
{
    ns_gate_result_release(&r->g);
    ns_eval_pred_release(&r->c);
    ns_eval_pred_release(&r->p);
    ns_eval_set_release(&r->es);
}

static const ns_gate_check *find_check(const run *r, ns_slice_kind kind, const char *name,
                                       ns_gate_metric m)
{
    for (size_t i = 0; i < r->g.n_checks; i++) {
        const ns_gate_check *c = &r->g.checks[i];
        const ns_slice *s = &r->es.slices[c->slice];
        if (s->kind == kind && strcmp(s->name, name) == 0 && c->metric == m)
            return c;
    }
    ck_abort_msg("no check %s/%s", ns_slice_kind_names[kind], name);
    return NULL;
}

static void fast_policy(ns_gate_policy *p)
{
    ns_gate_default_policy(p);
    p->n_rep = 2000;
}

/* ---- the bootstrap ------------------------------------------------------------ */

START_TEST(boot_gemm_matches_reference)
{
    static const size_t clips[] = {1, 2, 7, 64, 301};
    static const int qs[] = {1, 3, 9, 50}; /* both sides of the gather/GEMM switch */
    static const int reps[] = {1, 63, 64, 130};
    for (size_t a = 0; a < 5; a++)
        for (size_t b = 0; b < 4; b++)
            for (size_t c = 0; c < 4; c++) {
                size_t n = clips[a];
                int q = qs[b], B = reps[c];
                double *st = malloc(sizeof *st * n * (size_t)q);
                double *o1 = malloc(sizeof *o1 * (size_t)B * (size_t)q);
                double *o2 = malloc(sizeof *o2 * (size_t)B * (size_t)q);
                double *o3 = malloc(sizeof *o3 * (size_t)B * (size_t)q);
                for (size_t i = 0; i < n * (size_t)q; i++)
                    st[i] = (double)((i * 2654435761u) % 1000) / 7.0;
                ns_boot_clip_sums_ref(st, n, q, B, 42, 3, o1, 0);
                ck_assert_ns_ok(ns_boot_clip_sums(st, n, q, B, 42, 3, 1, o2));
                ck_assert_ns_ok(ns_boot_clip_sums(st, n, q, B, 42, 3, 2, o3));
                for (size_t i = 0; i < (size_t)B * (size_t)q; i++) {
                    /* the GEMM sums in another order: tolerance 1e-12 relative */
                    ck_assert_msg(fabs(o1[i] - o2[i]) <= 1e-12 * fmax(1.0, fabs(o1[i])),
                                  "n=%zu q=%d B=%d [%zu]: %g vs %g", n, q, B, i, o1[i], o2[i]);
                    ck_assert(o2[i] == o3[i]); /* thread count never changes the bits */
                }
                free(st);
                free(o1);
                free(o2);
                free(o3);
            }
    ck_assert_ns_status(ns_boot_clip_sums(NULL, 0, 3, 10, 1, 1, 1, NULL), NS_ERR_USAGE);
}
END_TEST

/* The paired clip bootstrap through sufficient statistics equals a naive
 * resampling that walks the frames of the drawn clips, replicate by
 * replicate, with the same draws. */
START_TEST(paired_bootstrap_matches_naive)
{
    static const int frames[] = {3, 8, 1, 5, 12, 4};
    static const char *const cams[] = {"a", "a", "b", "b", "a", "b"};
    fx f;
    ns_eval_set es;
    ns_eval_pred c, p;
    const ns_eval_pred *pr[2];
    int B = 500, q1, q;
    fx_make(&f, 6, frames, cams, 3);
    for (size_t r = 0; r < f.n; r++) {
        f.ds.label[r] = (int)(r % 3);
        fx_set(&f, f.pc, r, (r * 7) % 5 != 0, 0.5f + (float)(r % 4) * 0.1f);
        fx_set(&f, f.pp, r, (r * 3) % 4 == 0, 0.6f);
    }
    ck_assert_ns_ok(ns_eval_set_build(&f.ds, NULL, 0, &es));
    ck_assert_uint_eq(es.n_clips, 6);
    ck_assert_ns_ok(ns_eval_pred_from_probs(&es, &f.ds, f.pc, 3,
                                            (const char(*)[NS_LABEL_LEN])f.ds.classes, &c));
    ck_assert_ns_ok(ns_eval_pred_from_probs(&es, &f.ds, f.pp, 3,
                                            (const char(*)[NS_LABEL_LEN])f.ds.classes, &p));
    pr[0] = &c;
    pr[1] = &p;
    q1 = ns_ev_q(3);
    q = 2 * q1;
    for (size_t s = 0; s < es.n_slices; s++) {
        const ns_slice *sl = &es.slices[s];
        double *st = malloc(sizeof *st * sl->n_clips * (size_t)q);
        double *sums = malloc(sizeof *sums * (size_t)B * (size_t)q);
        uint32_t *map = malloc(sizeof *map * es.n_clips);
        uint32_t *local = malloc(sizeof *local * sl->n_clips); /* local index -> clip */
        size_t nl = 0;
        ns_eval_slice_stats(&es, &f.ds, sl, pr, 2, map, st);
        /* the clip order the statistics use: first appearance in the slice */
        for (size_t i = 0; i < sl->n_rows; i++) {
            uint32_t k = es.clip[sl->rows[i]];
            int seen = 0;
            for (size_t t = 0; t < nl; t++)
                seen |= local[t] == k;
            if (!seen)
                local[nl++] = k;
        }
        ck_assert_uint_eq(nl, sl->n_clips);
        ck_assert_ns_ok(ns_boot_clip_sums(st, sl->n_clips, q, B, 9, s, 2, sums));
        for (int b = 0; b < B; b++) {
            ns_boot_stream rs;
            double n = 0, okc = 0, okp = 0, nll = 0, conf = 0;
            ns_boot_stream_init(&rs, 9, s, (uint64_t)b, sl->n_clips);
            for (size_t j = 0; j < sl->n_clips; j++) {
                uint32_t k = local[ns_boot_stream_next(&rs)];
                for (size_t i = 0; i < sl->n_rows; i++) {
                    uint32_t row = sl->rows[i];
                    int lab = f.ds.label[es.ds_row[row]];
                    if (es.clip[row] != k)
                        continue;
                    n += 1;
                    okc += c.pred[row] == lab;
                    okp += p.pred[row] == lab;
                    nll -= log(c.p_true[row]);
                    conf += c.conf[row];
                }
            }
            const double *sb = sums + (size_t)b * (size_t)q;
            ck_assert_double_eq_tol(ns_ev_accuracy(sb) - ns_ev_accuracy(sb + q1),
                                    (okc - okp) / n, 1e-12);
            ck_assert_double_eq_tol(ns_ev_log_loss(sb), nll / n, 1e-9);
            ck_assert_double_eq_tol(ns_ev_expected_accuracy(sb), conf / n, 1e-6);
        }
        free(st);
        free(sums);
        free(map);
        free(local);
    }
    ns_eval_pred_release(&c);
    ns_eval_pred_release(&p);
    ns_eval_set_release(&es);
    fx_free(&f);
}
END_TEST

/* Why clips: 20 clips whose frames agree within the clip.  A frame
 * bootstrap's interval is several times too narrow; the clip bootstrap's
 * matches the spread of the clip means. */
START_TEST(clip_bootstrap_wider_than_frames)
{
    fx f;
    ns_gate_policy pol;
    run r;
    fx_make_even(&f, 20, 25, 2, "a", "a");
    for (size_t i = 0; i < f.n; i++) {
        size_t clip = i / 25;
        fx_set(&f, f.pc, i, clip % 2 == 0, 0.8f); /* half the clips all right */
        fx_set(&f, f.pp, i, clip % 4 == 0, 0.8f); /* a quarter */
    }
    fast_policy(&pol);
    fx_gate(&f, &pol, &r, 2);
    const ns_gate_check *all = find_check(&r, NS_SLICE_ALL, "all", NS_GATE_ACCURACY);
    /* clip-level deltas are 0 or 1 (p = 0.25): sd of the mean sqrt(.25*.75/20) */
    ck_assert_double_eq_tol(all->delta, 0.25, 1e-12);
    ck_assert_double_eq_tol(all->se, sqrt(0.25 * 0.75 / 20), 0.012);
    /* a frame bootstrap would give sqrt(.25*.75/500) = 0.019 */
    ck_assert(all->se > 3 * sqrt(0.25 * 0.75 / 500));
    run_free(&r);
    fx_free(&f);
}
END_TEST

/* ---- Holm, McNemar, the normal quantile ------------------------------------- */

START_TEST(holm_known_values)
{
    double p[] = {0.01, 0.04, 0.03, 0.005}, adj[4];
    size_t rank[4];
    ns_gate_holm(p, 4, adj, rank);
    /* sorted 0.005*4 = .02, 0.01*3 = .03, 0.03*2 = .06, 0.04*1 -> max .06 */
    ck_assert_double_eq_tol(adj[3], 0.02, 1e-15);
    ck_assert_double_eq_tol(adj[0], 0.03, 1e-15);
    ck_assert_double_eq_tol(adj[2], 0.06, 1e-15);
    ck_assert_double_eq_tol(adj[1], 0.06, 1e-15);
    ck_assert_uint_eq(rank[3], 0);
    ck_assert_uint_eq(rank[0], 1);
    ck_assert_uint_eq(rank[2], 2);
    ck_assert_uint_eq(rank[1], 3);
    double q[] = {0.5, 0.9}, qa[2];
    size_t qr[2];
    ns_gate_holm(q, 2, qa, qr);
    ck_assert_double_eq_tol(qa[0], 1.0, 1e-15); /* capped at 1 */
    ck_assert_double_eq_tol(qa[1], 1.0, 1e-15);
}
END_TEST

START_TEST(mcnemar_known_values)
{
    /* exact: 2 * (C(12,0)+C(12,1)+C(12,2)) / 2^12 */
    ck_assert_double_eq_tol(ns_gate_mcnemar(10, 2), 2.0 * 79.0 / 4096.0, 1e-12);
    ck_assert_double_eq_tol(ns_gate_mcnemar(2, 10), 2.0 * 79.0 / 4096.0, 1e-12);
    ck_assert(ns_gate_mcnemar(0, 0) == 1.0);
    ck_assert_double_eq_tol(ns_gate_mcnemar(5, 5), 1.0, 1e-12);
    /* chi-square, continuity-corrected: (|40-20|-1)^2/60 = 6.0167, p = 0.014178 */
    ck_assert_double_eq_tol(ns_gate_mcnemar(40, 20), 0.0141714, 1e-6);
    ck_assert_double_eq_tol(ns_gate_norm_quantile(0.975), 1.959963985, 1e-8);
    ck_assert_double_eq_tol(ns_gate_norm_quantile(0.001), -3.090232306, 1e-8);
    ck_assert_double_eq_tol(ns_gate_norm_quantile(0.5), 0.0, 1e-12);
}
END_TEST

/* ---- verdicts ----------------------------------------------------------------- */

/* 30 clips on two cameras: the candidate is right more often everywhere. */
START_TEST(verdict_promote)
{
    fx f;
    ns_gate_policy pol;
    run r;
    fx_make_even(&f, 30, 20, 2, "cam-a", "cam-b");
    for (size_t i = 0; i < f.n; i++) {
        f.ds.label[i] = (int)(i / 20) % 3 == 0;
        fx_set(&f, f.pc, i, i % 20 < 19, 0.95f);
        fx_set(&f, f.pp, i, i % 20 < 16, 0.8f);
    }
    fast_policy(&pol);
    fx_gate(&f, &pol, &r, 2);
    ck_assert_int_eq(r.g.verdict, NS_GATE_PROMOTE);
    for (size_t i = 0; i < r.g.n_checks; i++)
        ck_assert_msg(r.g.checks[i].decision == NS_GATE_NONINFERIOR ||
                          r.g.checks[i].decision == NS_GATE_REPORTED,
                      "check %zu: %s", i, ns_gate_decision_names[r.g.checks[i].decision]);
    const ns_gate_check *a = find_check(&r, NS_SLICE_ALL, "all", NS_GATE_ACCURACY);
    ck_assert(a->primary);
    ck_assert_double_eq_tol(a->delta, 0.15, 1e-12);
    ck_assert(a->lo > 0.1 && a->hi < 0.2);
    ck_assert_uint_eq(a->fixed, 90);
    ck_assert_uint_eq(a->broken, 0);
    ck_assert(a->mcnemar_p < 1e-10);
    run_free(&r);
    fx_free(&f);
}
END_TEST

/* macro-F1 as the primary metric: all frames carry three checks, the
 * accuracy one reported beside it. */
START_TEST(primary_macro_f1)
{
    fx f;
    ns_gate_policy pol;
    run r;
    fx_make_even(&f, 30, 20, 2, "cam-a", "cam-b");
    for (size_t i = 0; i < f.n; i++) {
        f.ds.label[i] = (int)(i / 20) % 3 == 0;
        fx_set(&f, f.pc, i, i % 20 < 19, 0.95f);
        fx_set(&f, f.pp, i, i % 20 < 16, 0.8f);
    }
    fast_policy(&pol);
    pol.primary = NS_GATE_MACRO_F1;
    fx_gate(&f, &pol, &r, 2);
    const ns_gate_check *m = find_check(&r, NS_SLICE_ALL, "all", NS_GATE_MACRO_F1);
    const ns_gate_check *a = find_check(&r, NS_SLICE_ALL, "all", NS_GATE_ACCURACY);
    ck_assert(m->primary && !a->primary);
    ck_assert_int_eq(a->decision, NS_GATE_REPORTED);
    ck_assert(m->delta > 0.1 && m->lo > 0);
    ck_assert_int_eq(m->decision, NS_GATE_NONINFERIOR);
    ck_assert_int_eq(r.g.verdict, NS_GATE_PROMOTE);
    run_free(&r);
    fx_free(&f);
}
END_TEST

/* The candidate breaks camera b: the slice is inferior, with its CI. */
START_TEST(verdict_reject)
{
    fx f;
    ns_gate_policy pol;
    run r;
    fx_make_even(&f, 40, 20, 2, "cam-a", "cam-b");
    for (size_t i = 0; i < f.n; i++) {
        int camb = (i / 20) % 2;
        fx_set(&f, f.pc, i, camb ? i % 20 < 12 : i % 20 < 19, 0.9f);
        fx_set(&f, f.pp, i, i % 20 < 18, 0.9f);
    }
    fast_policy(&pol);
    fx_gate(&f, &pol, &r, 2);
    ck_assert_int_eq(r.g.verdict, NS_GATE_REJECT);
    const ns_gate_check *b = find_check(&r, NS_SLICE_CAMERA, "cam-b", NS_GATE_ACCURACY);
    ck_assert_int_eq(b->decision, NS_GATE_INFERIOR);
    ck_assert(b->hi < -b->margin);
    ck_assert_double_eq_tol(b->delta, -0.3, 1e-12);
    const ns_gate_check *a = find_check(&r, NS_SLICE_CAMERA, "cam-a", NS_GATE_ACCURACY);
    ck_assert_int_eq(a->decision, NS_GATE_NONINFERIOR);
    run_free(&r);
    fx_free(&f);
}
END_TEST

/* The example: 40 clips, delta -0.005 +- 0.03, is not decided. */
START_TEST(verdict_insufficient)
{
    fx f;
    ns_gate_policy pol;
    run r;
    fx_make_even(&f, 40, 20, 2, "cam-a", "cam-a");
    for (size_t i = 0; i < f.n; i++) {
        size_t c = i / 20;
        /* per-clip candidate counts 14 or 18 around production's 16, two at 16:
         * mean delta -4 frames / 800 = -0.005, clip sd 0.1, se 0.016 */
        int off = c < 20 ? -2 : c < 38 ? 2 : 0;
        fx_set(&f, f.pc, i, (int)(i % 20) < 16 + off, 0.8f);
        fx_set(&f, f.pp, i, i % 20 < 16, 0.8f);
    }
    fast_policy(&pol);
    fx_gate(&f, &pol, &r, 2);
    ck_assert_int_eq(r.g.verdict, NS_GATE_INSUFFICIENT);
    const ns_gate_check *a = find_check(&r, NS_SLICE_ALL, "all", NS_GATE_ACCURACY);
    ck_assert_double_eq_tol(a->delta, -0.005, 1e-12);
    ck_assert_double_eq_tol(a->se, 0.1 / sqrt(40), 0.004);
    ck_assert_int_eq(a->decision, NS_GATE_UNDECIDED);
    ck_assert(a->lo < -0.01 && a->hi > -0.01);
    /* |delta + margin| = 0.005 against se 0.016: hundreds more clips */
    ck_assert(a->more_clips > 100);
    for (size_t i = 0; i < r.g.n_checks; i++)
        ck_assert(r.g.checks[i].decision != NS_GATE_INFERIOR);
    run_free(&r);
    fx_free(&f);
}
END_TEST

/* A 10-frame evaluation set never promotes, even when both heads agree on
 * every frame (a bootstrap over ties has width 0). */
START_TEST(ten_frames_insufficient)
{
    fx f;
    ns_gate_policy pol;
    run r;
    fx_make_even(&f, 2, 5, 2, "cam-a", "cam-b");
    for (size_t i = 0; i < f.n; i++) {
        fx_set(&f, f.pc, i, 1, 0.9f);
        fx_set(&f, f.pp, i, 1, 0.9f);
    }
    fast_policy(&pol);
    fx_gate(&f, &pol, &r, 2);
    ck_assert_int_eq(r.g.verdict, NS_GATE_INSUFFICIENT);
    const ns_gate_check *a = find_check(&r, NS_SLICE_ALL, "all", NS_GATE_ACCURACY);
    ck_assert_int_eq(a->decision, NS_GATE_REPORTED);
    ck_assert_str_eq(a->why, "fewer frames than min_frames");
    ck_assert_int_eq(a->more_clips, 4); /* 20 more frames at 5 per clip */
    ck_assert_uint_eq(r.g.n_deciding, 0);
    run_free(&r);
    fx_free(&f);
}
END_TEST

/* The other example: a camera of 2 clips, candidate right on 85%
 * of its frames and production on none, is decided; a 1-clip camera is
 * reported but cannot decide. */
START_TEST(two_clip_slice_decides)
{
    int frames[43];
    const char *cams[43];
    fx f;
    ns_gate_policy pol;
    run r;
    for (int c = 0; c < 43; c++) {
        frames[c] = 20;
        cams[c] = c < 40 ? "main" : c < 42 ? "two" : "one";
    }
    fx_make(&f, 43, frames, cams, 2);
    for (size_t i = 0; i < f.n; i++) {
        size_t c = i / 20;
        int ok = c < 40 ? i % 20 < 18 : i % 20 < 17;
        fx_set(&f, f.pc, i, ok, 0.9f);
        fx_set(&f, f.pp, i, c < 40 ? ok : 0, c < 40 ? 0.9f : 0.6f);
    }
    fast_policy(&pol);
    fx_gate(&f, &pol, &r, 2);
    const ns_gate_check *two = find_check(&r, NS_SLICE_CAMERA, "two", NS_GATE_ACCURACY);
    ck_assert_uint_eq(two->n_clips, 2);
    ck_assert_double_eq_tol(two->delta, 0.85, 1e-12);
    ck_assert_int_eq(two->decision, NS_GATE_NONINFERIOR);
    const ns_gate_check *one = find_check(&r, NS_SLICE_CAMERA, "one", NS_GATE_ACCURACY);
    ck_assert_int_eq(one->decision, NS_GATE_REPORTED);
    ck_assert_int_eq(one->more_clips, 1);
    ck_assert_int_eq(r.g.verdict, NS_GATE_PROMOTE);
    run_free(&r);
    fx_free(&f);
}
END_TEST

/* Calibration: the candidate is as accurate but overconfident. */
START_TEST(verdict_reject_on_ece)
{
    fx f;
    ns_gate_policy pol;
    run r;
    fx_make_even(&f, 30, 20, 2, "cam-a", "cam-a");
    for (size_t i = 0; i < f.n; i++) {
        fx_set(&f, f.pc, i, i % 20 < 14, 0.99f);
        fx_set(&f, f.pp, i, i % 20 < 14, 0.7f);
    }
    fast_policy(&pol);
    fx_gate(&f, &pol, &r, 2);
    const ns_gate_check *e = find_check(&r, NS_SLICE_ALL, "all", NS_GATE_ECE);
    ck_assert_double_eq_tol(e->cand, 0.29, 1e-6);
    ck_assert_double_eq_tol(e->prod, 0.0, 1e-6);
    ck_assert_int_eq(e->decision, NS_GATE_INFERIOR);
    ck_assert_int_eq(r.g.verdict, NS_GATE_REJECT);
    run_free(&r);
    fx_free(&f);
}
END_TEST

/* A class new in the candidate: production scores 0 there; its own slice. */
START_TEST(new_class_slice)
{
    fx f;
    ns_gate_policy pol;
    run r;
    fx_make_even(&f, 20, 10, 3, "cam-a", "cam-a");
    for (size_t i = 0; i < f.n; i++) {
        f.ds.label[i] = (i / 10) % 4 == 3 ? 2 : (int)(i / 10) % 2;
        fx_set(&f, f.pc, i, 1, 0.99f); /* calibrated: its ECE cannot decide against it */
    }
    /* production knows classes 0 and 1 only: rows of 2 probabilities */
    for (size_t i = 0; i < f.n; i++) {
        int lab = f.ds.label[i];
        f.pp[i * 2 + 0] = lab == 0 ? 0.9f : 0.1f;
        f.pp[i * 2 + 1] = lab == 0 ? 0.1f : 0.9f;
    }
    fast_policy(&pol);
    fx_gate(&f, &pol, &r, 2);
    const ns_gate_check *n = find_check(&r, NS_SLICE_CLASS, "class2", NS_GATE_ACCURACY);
    ck_assert(n->new_class);
    ck_assert(n->prod == 0.0);
    ck_assert(n->cand == 1.0);
    ck_assert_int_eq(n->decision, NS_GATE_NONINFERIOR);
    for (size_t i = 0; i < r.g.n_checks; i++) {
        const ns_gate_check *c = &r.g.checks[i];
        if (getenv("GATE_DEBUG"))
            fprintf(stderr, "%s/%s %s d=%g [%g,%g] m=%g %s\n", ns_slice_kind_names[r.es.slices[c->slice].kind], r.es.slices[c->slice].name, ns_gate_metric_names[c->metric], c->delta, c->lo, c->hi, c->margin, ns_gate_decision_names[c->decision]);
    }
    const ns_gate_check *o = find_check(&r, NS_SLICE_CLASS, "class0", NS_GATE_ACCURACY);
    ck_assert(!o->new_class);
    ck_assert_int_eq(r.g.verdict, NS_GATE_PROMOTE);
    run_free(&r);
    fx_free(&f);
}
END_TEST

/* A golden subset from the policy decides with its own margin. */
START_TEST(subset_slice)
{
    fx f;
    ns_gate_policy pol;
    run r;
    fx_make_even(&f, 24, 10, 2, "cam-a", "cam-b");
    for (size_t i = 0; i < f.n; i++) {
        f.ds.label[i] = (i / 20) % 2;
        fx_set(&f, f.pc, i, 1, 0.9f);
        fx_set(&f, f.pp, i, 1, 0.9f);
    }
    fast_policy(&pol);
    snprintf(pol.subsets[0].name, sizeof pol.subsets[0].name, "b-ones");
    ck_assert_ns_ok(ns_subset_parse("camera=cam-b, class=class1", &pol.subsets[0]));
    pol.n_subsets = 1;
    fx_gate(&f, &pol, &r, 2);
    const ns_gate_check *s = find_check(&r, NS_SLICE_SUBSET, "b-ones", NS_GATE_ACCURACY);
    ck_assert_uint_eq(s->n_frames, 60);
    ck_assert_double_eq_tol(s->margin, 0.01, 1e-15);
    ck_assert_int_eq(s->decision, NS_GATE_NONINFERIOR);
    ck_assert_int_eq(r.g.verdict, NS_GATE_PROMOTE);
    run_free(&r);
    fx_free(&f);
}
END_TEST

/* ---- the policy file ---------------------------------------------------------- */

START_TEST(policy_file)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    ns_gate_policy p, q;
    ns_strbuf sb = {0};
    ns_test_tmpdir(dir, sizeof dir, "gate-policy");
    snprintf(path, sizeof path, "%s/p.txt", dir);
    ns_test_write_text(path, "# release policy\n"
                             "primary_metric = macro_f1\n"
                             "primary_min_delta = 0.005   # a real gain\n"
                             "\n"
                             "margin.camera = 0.03\n"
                             "margin.night = 0.05\n"
                             "margin.class = off\n"
                             "margin.class.black_glove = 0.01\n"
                             "ece_margin = 0.01\n"
                             "min_clips = 5\n"
                             "min_frames = 12\n"
                             "alpha = 0.1\n"
                             "replicates = 500\n"
                             "seed = 7\n"
                             "subset.night_shift = night=2026-01-02 camera=cam3\n");
    ns_gate_default_policy(&p);
    ck_assert_ns_ok(ns_gate_policy_load(path, &p));
    ck_assert_int_eq(p.primary, NS_GATE_MACRO_F1);
    ck_assert(p.primary_min_delta == 0.005);
    ck_assert(p.margin[NS_SLICE_CAMERA] == 0.03);
    ck_assert(isnan(p.margin[NS_SLICE_CLASS]));
    ck_assert_uint_eq(p.n_overrides, 1);
    ck_assert_int_eq(p.min_clips, 5);
    ck_assert_int_eq(p.min_frames, 12);
    ck_assert_int_eq(p.n_rep, 500);
    ck_assert_uint_eq(p.n_subsets, 1);
    ck_assert_int_eq(p.subsets[0].n_terms, 2);
    ns_slice s = {.kind = NS_SLICE_CLASS};
    snprintf(s.name, sizeof s.name, "black_glove");
    ck_assert(ns_gate_policy_margin(&p, &s) == 0.01);
    snprintf(s.name, sizeof s.name, "gray_glove");
    ck_assert(isnan(ns_gate_policy_margin(&p, &s)));
    /* the formatted policy reads back to the same policy */
    ns_gate_policy_format(&p, &sb);
    snprintf(path, sizeof path, "%s/round.txt", dir);
    ns_test_write_text(path, sb.data);
    ns_gate_default_policy(&q);
    ck_assert_ns_ok(ns_gate_policy_load(path, &q));
    ns_strbuf sb2 = {0};
    ns_gate_policy_format(&q, &sb2);
    ck_assert_str_eq(sb.data, sb2.data);
    ns_strbuf_release(&sb);
    ns_strbuf_release(&sb2);

    static const char *const bad[][2] = {
        {"alpah = 0.05\n", "p.txt:1: key 'alpah': unknown key"},
        {"\nmin_clips = two\n", "p.txt:2: key 'min_clips'"},
        {"margin.colour = 0.1\n", "unknown slice kind"},
        {"margin.camera = 2\n", "margin in [0, 1)"},
        {"just words\n", "expected 'key = value'"},
        {"subset.x = lens=wide\n", "unknown field 'lens'"},
        {"primary_metric = auc\n", "accuracy or macro_f1"},
        /* Found by tests/fuzz/fuzz_policy: control bytes reached the message raw. */
        {"alp\x15h\x1b[2J = 0.05\n", "key 'alp\\x15h\\x1b[2J': unknown key"},
        {"wo\x07rds\n", "got 'wo\\x07rds'"},
        {"subset.n\x01 = ni\x7fght=x\n", "subset 'n\\x01': unknown field 'ni\\x7fght'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(path, sizeof path, "%s/p.txt", dir);
        ns_test_write_text(path, bad[i][0]);
        ns_gate_default_policy(&p);
        ck_assert_ns_status(ns_gate_policy_load(path, &p), NS_ERR_USAGE);
        ck_assert_msg(strstr(ns_errmsg(), bad[i][1]) != NULL, "'%s' -> '%s'", bad[i][0],
                      ns_errmsg());
    }
    snprintf(path, sizeof path, "%s/missing.txt", dir);
    ck_assert_ns_status(ns_gate_policy_load(path, &p), NS_ERR_IO);
}
END_TEST

START_TEST(no_test_rows_is_an_error)
{
    int frames[] = {5};
    const char *cams[] = {"a"};
    fx f;
    ns_eval_set es;
    fx_make(&f, 1, frames, cams, 2);
    snprintf(f.ds.split_by, sizeof f.ds.split_by, "clip");
    ck_assert_ns_status(ns_eval_set_build(&f.ds, NULL, 0, &es), NS_ERR_USAGE);
    ck_assert(strstr(ns_errmsg(), "--split-by none") != NULL);
    fx_free(&f);
}
END_TEST

/* ---- evaluate ------------------------------------------------------------------ */

/* Six frames, two clips, three classes: every metric by hand. */
START_TEST(evaluate_by_hand)
{
    static const int frames[] = {3, 3};
    static const char *const cams[] = {"a", "b"};
    static const int lab[] = {0, 0, 1, 1, 2, 2}, ok[] = {1, 0, 1, 1, 1, 0};
    static const float conf[] = {0.9f, 0.6f, 0.8f, 0.7f, 0.95f, 0.5f};
    fx f;
    ns_eval_set es;
    ns_eval_pred p;
    ns_eval_result r;
    fx_make(&f, 2, frames, cams, 3);
    for (size_t i = 0; i < 6; i++) {
        f.ds.label[i] = lab[i];
        fx_set(&f, f.pc, i, ok[i], conf[i]);
        f.ds.condition[i] = i < 3 ? 4 : -1;
    }
    ck_assert_ns_ok(ns_eval_set_build(&f.ds, NULL, 0, &es));
    ck_assert_ns_ok(ns_eval_pred_from_probs(&es, &f.ds, f.pc, 3,
                                            (const char(*)[NS_LABEL_LEN])f.ds.classes, &p));
    ck_assert_ns_ok(ns_eval_run(&es, &f.ds, &p, 200, 0.95, 1, 2, &r));
    const ns_eval_slice_metrics *a = &r.slice[0];
    ck_assert_double_eq_tol(a->accuracy.est, 4.0 / 6, 1e-12);
    ck_assert(a->accuracy.lo <= a->accuracy.est && a->accuracy.est <= a->accuracy.hi);
    /* the two clips score 2/3 and 1: every replicate lies between */
    ck_assert(a->accuracy.lo >= 2.0 / 3 - 1e-12 && a->accuracy.hi <= 1 + 1e-12);
    ck_assert_double_eq_tol(r.precision[0].est, 0.5, 1e-12);
    ck_assert_double_eq_tol(r.precision[1].est, 2.0 / 3, 1e-12);
    ck_assert_double_eq_tol(r.precision[2].est, 1.0, 1e-12);
    ck_assert_double_eq_tol(r.recall[0].est, 0.5, 1e-12);
    ck_assert_double_eq_tol(r.recall[1].est, 1.0, 1e-12);
    ck_assert_double_eq_tol(r.recall[2].est, 0.5, 1e-12);
    ck_assert_double_eq_tol(r.f1[1].est, 0.8, 1e-12);
    ck_assert_double_eq_tol(a->macro_f1.est, (0.5 + 0.8 + 2.0 / 3) / 3, 1e-12);
    /* each frame has a bin of its own: ECE is the mean |conf - correct| */
    ck_assert_double_eq_tol(a->ece.est, (0.1 + 0.6 + 0.2 + 0.3 + 0.05 + 0.5) / 6, 1e-6);
    ck_assert_double_eq_tol(a->expected_accuracy.est, 4.45 / 6, 1e-6);
    ck_assert_double_eq_tol(a->log_loss.est,
                            -(log(0.9) + log(0.2) + log(0.8) + log(0.7) + log(0.95) + log(0.25)) /
                                6,
                            1e-6);
    static const uint64_t cm[3][4] = {{1, 1, 0, 0}, {0, 2, 0, 0}, {1, 0, 1, 0}};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            ck_assert_uint_eq(r.confusion[i * 4 + j], cm[i][j]);
    /* slices: all, 2 cameras, 3 nights (clip c on night c % 3), condition 4, 3 classes */
    ck_assert_uint_eq(es.n_slices, 1 + 2 + 2 + 1 + 3);
    for (size_t s = 0; s < es.n_slices; s++)
        if (es.slices[s].kind == NS_SLICE_CONDITION) {
            ck_assert_str_eq(es.slices[s].name, "4");
            ck_assert_uint_eq(es.slices[s].n_rows, 3);
            /* one clip: the interval collapses onto the estimate */
            ck_assert_double_eq_tol(r.slice[s].accuracy.lo, 2.0 / 3, 1e-12);
            ck_assert_double_eq_tol(r.slice[s].accuracy.hi, 2.0 / 3, 1e-12);
        }
    double mean, mx;
    size_t n;
    ns_eval_cbpe_error(&es, &r, 1, &mean, &mx, &n);
    ck_assert_uint_eq(n, 3); /* two cameras, one condition */
    ck_assert(mean > 0 && mx >= mean);
    ns_eval_result_release(&r);
    ns_eval_pred_release(&p);
    ns_eval_set_release(&es);
    fx_free(&f);
}
END_TEST

/* A head class the dataset lacks is a wrong prediction of no dataset class. */
START_TEST(evaluate_foreign_head_class)
{
    static const int frames[] = {2};
    static const char *const cams[] = {"a"};
    char hc[3][NS_LABEL_LEN] = {"class0", "ghost", "class1"};
    float prob[] = {0.1f, 0.8f, 0.1f, 0.7f, 0.1f, 0.2f};
    fx f;
    ns_eval_set es;
    ns_eval_pred p;
    ns_eval_result r;
    fx_make(&f, 1, frames, cams, 2);
    ck_assert_ns_ok(ns_eval_set_build(&f.ds, NULL, 0, &es));
    ck_assert_ns_ok(
        ns_eval_pred_from_probs(&es, &f.ds, prob, 3, (const char(*)[NS_LABEL_LEN])hc, &p));
    ck_assert_int_eq(p.pred[0], -1);
    ck_assert_int_eq(p.pred[1], 0);
    ck_assert(p.known[0] && p.known[1]);
    ck_assert_ns_ok(ns_eval_run(&es, &f.ds, &p, 10, 0.95, 1, 1, &r));
    ck_assert_double_eq_tol(r.slice[0].accuracy.est, 0.5, 1e-12);
    ck_assert_uint_eq(r.confusion[0 * 3 + 2], 1); /* the "other" column */
    ns_eval_result_release(&r);
    ns_eval_pred_release(&p);
    ns_eval_set_release(&es);
    fx_free(&f);
}
END_TEST

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    long n;
    char *s;
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    s = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

/* Both reports from a dataset whose names are hostile: escaped in HTML,
 * quoted in CSV, valid in JSON; the verdict is in summary.json. */
START_TEST(reports_escape_and_carry_the_verdict)
{
    char dir[PATH_MAX], path[PATH_MAX + 32];
    fx f;
    ns_gate_policy pol;
    run r;
    ns_eval_result rc, rp;
    ns_report_opts o;
    int known[2] = {1, 1};
    ns_evrep_head hc = {"cand.h5", "c0ffee", "softmax", 1.5, 2, known, "d1", "glove@1", "m1"};
    ns_evrep_head hp = {"<prod>.h5", "beef00", "mlp", 1.0, 2, known, NULL, NULL, NULL};
    fx_make_even(&f, 30, 20, 2, "<script>alert(1)</script>", "=cmd|calc");
    snprintf(f.ds.classes[1], sizeof f.ds.classes[1], "glove\"<b>");
    for (size_t i = 0; i < f.n; i++) {
        f.ds.label[i] = (int)(i / 20) % 3 == 0;
        fx_set(&f, f.pc, i, i % 20 < 19, 0.95f);
        fx_set(&f, f.pp, i, i % 20 < 16, 0.8f);
    }
    fast_policy(&pol);
    fx_gate(&f, &pol, &r, 2);
    ck_assert_ns_ok(ns_eval_run(&r.es, &f.ds, &r.c, 200, 0.95, 1, 2, &rc));
    ck_assert_ns_ok(ns_eval_run(&r.es, &f.ds, &r.p, 200, 0.95, 1, 2, &rp));
    ns_report_default_opts(&o);
    ns_test_tmpdir(dir, sizeof dir, "gate-report");
    ck_assert_ns_ok(ns_gate_report_write(NULL, &f.ds, &r.es, &pol, &r.g, &r.c, &r.p, &rc, &rp,
                                         &hc, &hp, &o, dir));
    snprintf(path, sizeof path, "%s/report.html", dir);
    char *html = slurp(path);
    ck_assert(strstr(html, "<script>") == NULL);
    ck_assert(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;") != NULL);
    ck_assert(strstr(html, "glove&quot;&lt;b&gt;") != NULL);
    ck_assert(strstr(html, "PROMOTE") != NULL);
    ck_assert(strstr(html, "<svg") != NULL);
    free(html);
    snprintf(path, sizeof path, "%s/summary.json", dir);
    char *js = slurp(path);
    ck_assert(strstr(js, "\"verdict\":\"promote\"") != NULL);
    ck_assert(strstr(js, "\"head_id\":\"c0ffee\"") != NULL);
    ck_assert(strstr(js, "\"name\":\"glove\\\"<b>\"") != NULL);
    free(js);
    snprintf(path, sizeof path, "%s/checks.csv", dir);
    char *csv = slurp(path);
    ck_assert(strstr(csv, ",\"'=cmd|calc\",") != NULL); /* no formula for a spreadsheet */
    free(csv);
    ck_assert_ns_ok(ns_evaluate_report_write(NULL, &f.ds, &r.es, &r.c, &rc, &hc, &o, dir));
    snprintf(path, sizeof path, "%s/report.html", dir);
    html = slurp(path);
    ck_assert(strstr(html, "<script>") == NULL);
    ck_assert(strstr(html, "Label-free expected accuracy") != NULL);
    free(html);
    snprintf(path, sizeof path, "%s/slices.csv", dir);
    csv = slurp(path);
    ck_assert(strstr(csv, "camera,<script>alert(1)</script>,300,15,") != NULL);
    free(csv);
    ns_eval_result_release(&rc);
    ns_eval_result_release(&rp);
    run_free(&r);
    fx_free(&f);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("gate");
    TCase *t = tcase_create("core");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, boot_gemm_matches_reference);
    tcase_add_test(t, paired_bootstrap_matches_naive);
    tcase_add_test(t, clip_bootstrap_wider_than_frames);
    tcase_add_test(t, holm_known_values);
    tcase_add_test(t, mcnemar_known_values);
    tcase_add_test(t, verdict_promote);
    tcase_add_test(t, verdict_reject);
    tcase_add_test(t, primary_macro_f1);
    tcase_add_test(t, verdict_insufficient);
    tcase_add_test(t, two_clip_slice_decides);
    tcase_add_test(t, ten_frames_insufficient);
    tcase_add_test(t, verdict_reject_on_ece);
    tcase_add_test(t, new_class_slice);
    tcase_add_test(t, subset_slice);
    tcase_add_test(t, policy_file);
    tcase_add_test(t, no_test_rows_is_an_error);
    tcase_add_test(t, evaluate_by_hand);
    tcase_add_test(t, evaluate_foreign_head_class);
    tcase_add_test(t, reports_escape_and_carry_the_verdict);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return ns_test_run(suite());
}
