/* gate.c -- the paired clip-bootstrap comparison, Holm, McNemar, verdict. */
#include "nightshift/gate.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nightshift/bootstrap.h"
#include "nightshift/metrics.h"

const char *const ns_gate_metric_names[3] = {"accuracy", "macro_f1", "ece"};
const char *const ns_gate_decision_names[4] = {"non-inferior", "inferior", "undecided",
                                               "reported"};
const char *const ns_gate_verdict_names[3] = {"promote", "reject", "insufficient"};

double ns_gate_norm_quantile(double p)
{
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                               -2.759285104469687e+02, 1.383577518672690e+02,
                               -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                               -1.556989798598866e+02, 6.680131188771972e+01,
                               -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                               -2.400758277161838e+00, -2.549732539343734e+00,
                               4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                               2.445134137142996e+00, 3.754408661907416e+00};
    double q, r;
    if (!(p > 0))
        return -INFINITY;
    if (!(p < 1))
        return INFINITY;
    if (p < 0.02425) {
        q = sqrt(-2 * log(p));
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
               ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    }
    if (p > 1 - 0.02425)
        return -ns_gate_norm_quantile(1 - p);
    q = p - 0.5;
    r = q * q;
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
           (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

double ns_gate_mcnemar(uint64_t b, uint64_t c)
{
    uint64_t n = b + c, k = b < c ? b : c;
    double p = 0;
    if (n == 0)
        return 1.0;
    if (n <= 50) {
        for (uint64_t i = 0; i <= k; i++)
            p += exp(lgamma((double)n + 1) - lgamma((double)i + 1) - lgamma((double)(n - i) + 1) -
                     (double)n * log(2.0));
        p *= 2;
    } else {
        double dd = fabs((double)b - (double)c) - 1;
        double x = dd > 0 ? dd * dd / (double)n : 0;
        p = erfc(sqrt(x / 2));
    }
    return p > 1 ? 1 : p;
}

typedef struct pidx {
    double p;
    size_t i;
} pidx;

static int cmp_pidx(const void *a, const void *b)
{
    const pidx *x = a, *y = b;
    if (x->p != y->p)
        return x->p < y->p ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

void ns_gate_holm(const double *p, size_t n, double *p_adj, size_t *rank)
{
    pidx *v = malloc(sizeof *v * (n ? n : 1));
    double run = 0;
    if (!v) { /* Bonferroni is Holm's conservative bound: still valid */
        for (size_t i = 0; i < n; i++) {
            p_adj[i] = fmin(1.0, p[i] * (double)n);
            rank[i] = 0;
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        v[i].p = isnan(p[i]) ? 1.0 : p[i];
        v[i].i = i;
    }
    qsort(v, n, sizeof *v, cmp_pidx);
    for (size_t k = 0; k < n; k++) {
        double a = fmin(1.0, (double)(n - k) * v[k].p);
        run = a > run ? a : run;
        p_adj[v[k].i] = run;
        rank[v[k].i] = k;
    }
    free(v);
}

void ns_gate_check_from_reps(ns_gate_check *c, double *reps, int n_rep)
{
    size_t nf = ns_boot_sort(reps, (size_t)n_rep), le = 0, ge = 0;
    double mean, thr = isfinite(c->margin) ? -c->margin : 0.0;
    ns_boot_moments(reps, nf, &mean, &c->se);
    c->lo95 = ns_boot_quantile_sorted(reps, nf, 0.025);
    c->hi95 = ns_boot_quantile_sorted(reps, nf, 0.975);
    for (size_t i = 0; i < nf; i++) {
        le += reps[i] <= thr;
        ge += reps[i] >= thr;
    }
    c->p_noninf = nf ? (1.0 + (double)le) / (1.0 + (double)nf) : 1.0;
    c->p_inf = nf ? (1.0 + (double)ge) / (1.0 + (double)nf) : 1.0;
    c->p = fmin(1.0, 2 * fmin(c->p_noninf, c->p_inf));
    c->lo = c->lo95;
    c->hi = c->hi95;
    c->level = 0.05;
}

ns_gate_verdict ns_gate_decide(const ns_gate_policy *pol, ns_gate_check *checks, size_t n,
                               double *const *sorted_reps, int n_rep)
{
    size_t m = 0, *rank = NULL, *idx = NULL;
    double *p = NULL, *adj = NULL;
    int any_inf = 0, all_ok = 1, primary_ok = 0;
    double z;
    for (size_t i = 0; i < n; i++)
        m += checks[i].decision != NS_GATE_REPORTED;
    p = malloc(sizeof *p * (m + 1));
    adj = malloc(sizeof *adj * (m + 1));
    rank = malloc(sizeof *rank * (m + 1));
    idx = malloc(sizeof *idx * (m + 1));
    if (!p || !adj || !rank || !idx) {
        /* Nothing can be decided without memory: say so, never promote. */
        for (size_t i = 0; i < n; i++)
            if (checks[i].decision != NS_GATE_REPORTED)
                checks[i].decision = NS_GATE_UNDECIDED;
        free(p);
        free(adj);
        free(rank);
        free(idx);
        return NS_GATE_INSUFFICIENT;
    }
    for (size_t i = 0, j = 0; i < n; i++)
        if (checks[i].decision != NS_GATE_REPORTED) {
            p[j] = checks[i].p;
            idx[j++] = i;
        }
    ns_gate_holm(p, m, adj, rank);
    z = ns_gate_norm_quantile(1 - pol->alpha / (2.0 * (double)(m ? m : 1))) +
        ns_gate_norm_quantile(pol->power);
    for (size_t j = 0; j < m; j++) {
        ns_gate_check *c = &checks[idx[j]];
        const double *r = sorted_reps[idx[j]];
        size_t nf = 0;
        while (nf < (size_t)n_rep && !isnan(r[nf]))
            nf++;
        c->p_holm = adj[j];
        c->level = pol->alpha / (double)(m - rank[j]);
        c->lo = ns_boot_quantile_sorted(r, nf, c->level / 2);
        c->hi = ns_boot_quantile_sorted(r, nf, 1 - c->level / 2);
        c->more_clips = -1;
        if (c->p_holm <= pol->alpha && c->lo > -c->margin)
            c->decision = NS_GATE_NONINFERIOR;
        else if (c->p_holm <= pol->alpha && c->hi < -c->margin)
            c->decision = NS_GATE_INFERIOR;
        else {
            double gap = fabs(c->delta + c->margin);
            c->decision = NS_GATE_UNDECIDED;
            /* The clip bootstrap's standard error shrinks as 1/sqrt(clips):
             * clips needed so the Bonferroni-level interval clears the
             * margin with the policy's power, if the delta stays put. */
            if (c->se > 0 && gap > 1e-12 && isfinite(z)) {
                double need = (double)c->n_clips * (z * c->se / gap) * (z * c->se / gap);
                double more = ceil(need - (double)c->n_clips);
                c->more_clips = more < 1 ? 1 : more > 1e9 ? 1000000000L : (long)more;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        const ns_gate_check *c = &checks[i];
        if (c->decision == NS_GATE_REPORTED)
            continue;
        any_inf |= c->decision == NS_GATE_INFERIOR;
        all_ok &= c->decision == NS_GATE_NONINFERIOR;
        if (c->primary && c->decision == NS_GATE_NONINFERIOR)
            primary_ok = 1;
    }
    free(p);
    free(adj);
    free(rank);
    free(idx);
    if (any_inf)
        return NS_GATE_REJECT;
    if (m > 0 && all_ok && primary_ok)
        return NS_GATE_PROMOTE;
    return NS_GATE_INSUFFICIENT;
}

void ns_gate_result_release(ns_gate_result *r)
{
    if (!r)
        return;
    free(r->checks);
    memset(r, 0, sizeof *r);
}

static double metric_of(ns_gate_metric m, const double *s, int K)
{
    switch (m) {
    case NS_GATE_ACCURACY: return ns_ev_accuracy(s);
    case NS_GATE_MACRO_F1: return ns_ev_macro_f1(s, K);
    case NS_GATE_ECE: return ns_ev_ece(s);
    }
    return NAN;
}

/* Candidate better is positive: for ECE, lower is better. */
static double delta_of(ns_gate_metric m, const double *sc, const double *sp, int K)
{
    double c = metric_of(m, sc, K), p = metric_of(m, sp, K);
    return m == NS_GATE_ECE ? p - c : c - p;
}

/* Per-clip (frames, candidate correct, production correct) of a slice: all
 * a per-slice accuracy check needs, so its bootstrap adds 3 sums, not the
 * full rows (metrics.h) the "all" slice's calibration check needs. */
enum { ACC_Q = 3 };

static void accuracy_stats(const ns_eval_set *es, const ns_dataset *ds, const ns_slice *sl,
                           const ns_eval_pred *cand, const ns_eval_pred *prod,
                           uint32_t *clip_map, double *stats)
{
    memset(stats, 0, sizeof *stats * sl->n_clips * ACC_Q);
    ns_eval_slice_local_clips(es, sl, clip_map);
    for (size_t i = 0; i < sl->n_rows; i++) {
        uint32_t r = sl->rows[i];
        int lab = ds->label[es->ds_row[r]];
        double *row = stats + (size_t)clip_map[es->clip[r]] * ACC_Q;
        row[0] += 1;
        row[1] += cand->pred[r] == lab;
        row[2] += prod->pred[r] == lab;
    }
}

static double acc_delta(const double *s)
{
    return s[0] > 0 ? (s[1] - s[2]) / s[0] : NAN;
}

static void check_init(ns_gate_check *c, const ns_eval_set *es, size_t s, ns_gate_metric m,
                       double margin)
{
    memset(c, 0, sizeof *c);
    c->slice = s;
    c->metric = m;
    c->margin = margin;
    c->n_frames = es->slices[s].n_rows;
    c->n_clips = es->slices[s].n_clips;
    c->more_clips = -1;
    c->decision = NS_GATE_UNDECIDED;
}

ns_status ns_gate_run(const ns_eval_set *es, const ns_dataset *ds, const ns_eval_pred *cand,
                      const ns_eval_pred *prod, const ns_gate_policy *pol, int threads,
                      ns_gate_result *out)
{
    ns_status st = NS_OK;
    int K = es->n_classes, q1 = ns_ev_q(K), q = 2 * q1, qs, B = pol->n_rep;
    size_t max_clips = 1, cap = es->n_slices + 2, n = 0;
    const ns_eval_pred *preds[2] = {cand, prod};
    ns_gate_check *checks = NULL;
    double *stats = NULL, *sums = NULL, *point = NULL, *reps = NULL, **rp = NULL;
    uint32_t *clip_map = NULL;
    double t0 = omp_get_wtime();
    memset(out, 0, sizeof *out);
    if (B < 100)
        return ns_error(NS_ERR_USAGE, "the gate needs at least 100 bootstrap replicates, not %d",
                        B);
    for (size_t s = 0; s < es->n_slices; s++)
        max_clips = es->slices[s].n_clips > max_clips ? es->slices[s].n_clips : max_clips;
    checks = calloc(cap, sizeof *checks);
    stats = malloc(sizeof *stats * max_clips * (size_t)q);
    sums = malloc(sizeof *sums * (size_t)B * (size_t)q);
    point = malloc(sizeof *point * (size_t)q);
    reps = malloc(sizeof *reps * cap * (size_t)B);
    rp = malloc(sizeof *rp * cap);
    clip_map = malloc(sizeof *clip_map * (es->n_clips ? es->n_clips : 1));
    if (!checks || !stats || !sums || !point || !reps || !rp || !clip_map) {
        st = ns_error(NS_ERR_NOMEM, "out of memory for the gate's bootstrap (%d replicates)", B);
        goto done;
    }
    for (size_t j = 0; j < cap; j++)
        rp[j] = reps + j * (size_t)B;
    for (size_t s = 0; s < es->n_slices; s++) {
        const ns_slice *sl = &es->slices[s];
        size_t first = n;
        double margin;
        /* The checks of this slice: the "all" slice carries the primary
         * metric and calibration; every slice its accuracy. */
        if (s == 0) {
            check_init(&checks[n], es, s, pol->primary, -pol->primary_min_delta);
            checks[n++].primary = 1;
            check_init(&checks[n++], es, s, NS_GATE_ECE, pol->ece_margin);
            if (pol->primary != NS_GATE_ACCURACY)
                check_init(&checks[n++], es, s, NS_GATE_ACCURACY, NAN);
        } else {
            margin = ns_gate_policy_margin(pol, sl);
            check_init(&checks[n++], es, s, NS_GATE_ACCURACY, margin);
        }
        for (size_t j = first; j < n; j++) {
            ns_gate_check *c = &checks[j];
            if (!isfinite(c->margin)) {
                c->decision = NS_GATE_REPORTED;
                c->why = s == 0 ? "reported beside the primary metric" : "this kind does not decide";
            } else if (sl->n_clips < (size_t)pol->min_clips) {
                c->decision = NS_GATE_REPORTED;
                c->why = "fewer clips than min_clips";
                c->more_clips = (long)pol->min_clips - (long)sl->n_clips;
            } else if (sl->n_rows < (size_t)pol->min_frames) {
                /* A handful of frames has too few distinct outcomes for the
                 * bootstrap to see its own variance: ten tied frames would
                 * give an interval of width 0. */
                size_t per = sl->n_clips ? (sl->n_rows + sl->n_clips - 1) / sl->n_clips : 1;
                c->decision = NS_GATE_REPORTED;
                c->why = "fewer frames than min_frames";
                c->more_clips = (long)(((size_t)pol->min_frames - sl->n_rows + per - 1) / per);
            }
            if (sl->kind == NS_SLICE_CLASS && sl->cls >= 0)
                c->new_class = !prod->known[sl->cls] && cand->known[sl->cls];
        }
        if (sl->n_rows == 0) {
            for (size_t j = first; j < n; j++) {
                checks[j].decision = NS_GATE_REPORTED;
                checks[j].why = "no frames";
                checks[j].cand = checks[j].prod = checks[j].delta = NAN;
                for (int b = 0; b < B; b++)
                    rp[j][b] = NAN;
                ns_gate_check_from_reps(&checks[j], rp[j], B);
            }
            continue;
        }
        if (s == 0) {
            ns_eval_slice_stats(es, ds, sl, preds, 2, clip_map, stats);
            qs = q;
        } else {
            accuracy_stats(es, ds, sl, cand, prod, clip_map, stats);
            qs = ACC_Q;
        }
        memset(point, 0, sizeof *point * (size_t)q);
        for (size_t c = 0; c < sl->n_clips; c++)
            for (int t = 0; t < qs; t++)
                point[t] += stats[c * (size_t)qs + (size_t)t];
        st = ns_boot_clip_sums(stats, sl->n_clips, qs, B, pol->seed, (uint64_t)s, threads, sums);
        if (st != NS_OK)
            goto done;
        for (size_t j = first; j < n; j++) {
            ns_gate_check *c = &checks[j];
            if (s == 0) {
                c->cand = metric_of(c->metric, point, K);
                c->prod = metric_of(c->metric, point + q1, K);
                c->delta = delta_of(c->metric, point, point + q1, K);
                for (int b = 0; b < B; b++) {
                    const double *sb = sums + (size_t)b * (size_t)q;
                    rp[j][b] = delta_of(c->metric, sb, sb + q1, K);
                }
            } else {
                c->cand = point[1] / point[0];
                c->prod = point[2] / point[0];
                c->delta = acc_delta(point);
                for (int b = 0; b < B; b++)
                    rp[j][b] = acc_delta(sums + (size_t)b * ACC_Q);
            }
            for (size_t i = 0; i < sl->n_rows; i++) {
                uint32_t r = sl->rows[i];
                int lab = ds->label[es->ds_row[r]];
                int okc = cand->pred[r] == lab, okp = prod->pred[r] == lab;
                c->fixed += okc && !okp;
                c->broken += okp && !okc;
            }
            /* McNemar compares correctness, so only beside accuracy */
            c->mcnemar_p = c->metric == NS_GATE_ACCURACY ? ns_gate_mcnemar(c->fixed, c->broken)
                                                         : NAN;
            ns_gate_check_from_reps(c, rp[j], B);
        }
    }
    out->verdict = ns_gate_decide(pol, checks, n, rp, B);
    out->n_checks = n;
    out->checks = checks;
    out->n_rep = B;
    for (size_t j = 0; j < n; j++)
        out->n_deciding += checks[j].decision != NS_GATE_REPORTED;
    checks = NULL;
    out->seconds_bootstrap = omp_get_wtime() - t0;
done:
    free(checks);
    free(stats);
    free(sums);
    free(point);
    free(reps);
    free(rp);
    free(clip_map);
    return st;
}
