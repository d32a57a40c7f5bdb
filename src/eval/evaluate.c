/* evaluate.c -- per-slice metrics of one head with clip-bootstrap intervals. */
#include "nightshift/evaluate.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nightshift/bootstrap.h"
#include "nightshift/metrics.h"

void ns_eval_result_release(ns_eval_result *r)
{
    if (!r)
        return;
    free(r->slice);
    free(r->sums);
    free(r->precision);
    free(r->recall);
    free(r->f1);
    free(r->confusion);
    memset(r, 0, sizeof *r);
}

/* The metrics with intervals; class metrics take the class as arg. */
enum { M_ACC, M_F1, M_LL, M_ECE, M_EXP, M_PREC, M_REC, M_CF1 };

static double metric(int which, const double *s, int K, int k)
{
    switch (which) {
    case M_ACC: return ns_ev_accuracy(s);
    case M_F1: return ns_ev_macro_f1(s, K);
    case M_LL: return ns_ev_log_loss(s);
    case M_ECE: return ns_ev_ece(s);
    case M_EXP: return ns_ev_expected_accuracy(s);
    case M_PREC: return ns_ev_precision(s, k);
    case M_REC: return ns_ev_recall(s, k);
    default: return ns_ev_f1(s, k);
    }
}

/* Point estimate on sum and percentile interval over the replicates' sums
 * (scratch: n_rep doubles). */
static ns_ci interval(int which, const double *sum, const double *reps, int q, int n_rep,
                      double level, int K, int k, double *scratch)
{
    ns_ci c = {metric(which, sum, K, k), NAN, NAN};
    size_t nf;
    for (int b = 0; b < n_rep; b++)
        scratch[b] = metric(which, reps + (size_t)b * (size_t)q, K, k);
    nf = ns_boot_sort(scratch, (size_t)n_rep);
    c.lo = ns_boot_quantile_sorted(scratch, nf, (1 - level) / 2);
    c.hi = ns_boot_quantile_sorted(scratch, nf, 1 - (1 - level) / 2);
    return c;
}

ns_status ns_eval_run(const ns_eval_set *es, const ns_dataset *ds, const ns_eval_pred *p,
                      int n_rep, double level, uint64_t seed, int threads, ns_eval_result *out)
{
    ns_status st = NS_OK;
    ns_eval_result r;
    int K = es->n_classes, q = ns_ev_q(K);
    size_t max_clips = 1;
    double *stats = NULL, *reps = NULL, *scratch = NULL;
    uint32_t *clip_map = NULL;
    const ns_eval_pred *preds[1] = {p};
    double t0 = omp_get_wtime();
    memset(&r, 0, sizeof r);
    memset(out, 0, sizeof *out);
    if (n_rep < 1 || !(level > 0 && level < 1))
        return ns_error(NS_ERR_USAGE, "evaluate: %d replicates at level %g", n_rep, level);
    r.n_classes = K;
    r.n_rep = n_rep;
    r.level = level;
    r.seed = seed;
    r.n_slices = es->n_slices;
    for (size_t s = 0; s < es->n_slices; s++)
        max_clips = es->slices[s].n_clips > max_clips ? es->slices[s].n_clips : max_clips;
    r.slice = calloc(es->n_slices, sizeof *r.slice);
    r.sums = calloc(es->n_slices * (size_t)q, sizeof *r.sums);
    r.precision = malloc(sizeof *r.precision * (size_t)K);
    r.recall = malloc(sizeof *r.recall * (size_t)K);
    r.f1 = malloc(sizeof *r.f1 * (size_t)K);
    r.confusion = calloc((size_t)K * (size_t)(K + 1), sizeof *r.confusion);
    stats = malloc(sizeof *stats * max_clips * (size_t)q);
    reps = malloc(sizeof *reps * (size_t)n_rep * (size_t)q);
    scratch = malloc(sizeof *scratch * (size_t)n_rep);
    clip_map = malloc(sizeof *clip_map * (es->n_clips ? es->n_clips : 1));
    if (!r.slice || !r.sums || !r.precision || !r.recall || !r.f1 || !r.confusion || !stats ||
        !reps || !scratch || !clip_map) {
        st = ns_error(NS_ERR_NOMEM, "out of memory evaluating %zu slices", es->n_slices);
        goto done;
    }
    for (size_t s = 0; s < es->n_slices; s++) {
        const ns_slice *sl = &es->slices[s];
        ns_eval_slice_metrics *m = &r.slice[s];
        double *sum = r.sums + s * (size_t)q;
        ns_ci *cis[5] = {&m->accuracy, &m->macro_f1, &m->log_loss, &m->ece,
                         &m->expected_accuracy};
        m->sums = sum;
        if (sl->n_rows == 0) {
            for (int k = 0; k < 5; k++)
                *cis[k] = (ns_ci){NAN, NAN, NAN};
            continue;
        }
        ns_eval_slice_stats(es, ds, sl, preds, 1, clip_map, stats);
        for (size_t c = 0; c < sl->n_clips; c++)
            for (int t = 0; t < q; t++)
                sum[t] += stats[c * (size_t)q + (size_t)t];
        st = ns_boot_clip_sums(stats, sl->n_clips, q, n_rep, seed, (uint64_t)s, threads, reps);
        if (st != NS_OK)
            goto done;
        for (int k = 0; k < 5; k++)
            *cis[k] = interval(M_ACC + k, sum, reps, q, n_rep, level, K, 0, scratch);
        if (s == 0)
            for (int k = 0; k < K; k++) {
                r.precision[k] = interval(M_PREC, sum, reps, q, n_rep, level, K, k, scratch);
                r.recall[k] = interval(M_REC, sum, reps, q, n_rep, level, K, k, scratch);
                r.f1[k] = interval(M_CF1, sum, reps, q, n_rep, level, K, k, scratch);
            }
    }
    for (size_t i = 0; i < es->n; i++) {
        int lab = ds->label[es->ds_row[i]], pr = p->pred[i];
        r.confusion[(size_t)lab * (size_t)(K + 1) + (size_t)(pr >= 0 ? pr : K)]++;
    }
    r.seconds = omp_get_wtime() - t0;
done:
    free(stats);
    free(reps);
    free(scratch);
    free(clip_map);
    if (st != NS_OK)
        ns_eval_result_release(&r);
    else
        *out = r;
    return st;
}

void ns_eval_cbpe_error(const ns_eval_set *es, const ns_eval_result *r, size_t min_frames,
                        double *mean_abs, double *max_abs, size_t *n)
{
    double s = 0, mx = 0;
    size_t k = 0;
    for (size_t i = 0; i < es->n_slices; i++) {
        const ns_slice *sl = &es->slices[i];
        double e;
        if ((sl->kind != NS_SLICE_CAMERA && sl->kind != NS_SLICE_CONDITION) ||
            sl->n_rows < min_frames)
            continue;
        e = fabs(r->slice[i].expected_accuracy.est - r->slice[i].accuracy.est);
        if (!isfinite(e))
            continue;
        s += e;
        mx = e > mx ? e : mx;
        k++;
    }
    *n = k;
    *mean_abs = k ? s / (double)k : NAN;
    *max_abs = k ? mx : NAN;
}
