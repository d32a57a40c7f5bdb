/* evaluate.h -- one head on an evaluation set, per slice, with clip
 * bootstrap intervals.
 *
 * For every slice of the set (evalset.h): accuracy, macro-F1, log loss,
 * ECE and the label-free expected accuracy (CBPE: the mean temperature-
 * scaled max probability, what the head believes its accuracy is), each
 * with a percentile interval from resampling whole clips.  On all frames
 * also per-class precision, recall and F1 with intervals, the confusion
 * matrix and the reliability bins (metrics.h's sums of the "all" slice).
 */
#ifndef NIGHTSHIFT_EVALUATE_H
#define NIGHTSHIFT_EVALUATE_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/evalset.h"
#include "nightshift/status.h"

typedef struct ns_ci {
    double est, lo, hi; /* point estimate; interval (NaN where undefined) */
} ns_ci;

typedef struct ns_eval_slice_metrics {
    ns_ci accuracy, macro_f1, log_loss, ece, expected_accuracy;
    const double *sums; /* (ns_ev_q(n_classes)) the slice's sums */
} ns_eval_slice_metrics;

typedef struct ns_eval_result {
    int n_classes;
    int n_rep;
    double level;                 /* interval coverage, 0.95 */
    uint64_t seed;
    size_t n_slices;
    ns_eval_slice_metrics *slice; /* (n_slices), in the set's order */
    double *sums;                 /* (n_slices, q) backing slice[].sums */
    ns_ci *precision, *recall, *f1; /* (n_classes) on all frames */
    uint64_t *confusion;          /* (n_classes, n_classes + 1): row = label, column =
                                     prediction; the last column counts predictions of a
                                     head class the dataset does not have */
    double seconds;
} ns_eval_result;

/* n_rep >= 1 replicates; level in (0, 1). */
ns_status ns_eval_run(const ns_eval_set *es, const ns_dataset *ds, const ns_eval_pred *p,
                      int n_rep, double level, uint64_t seed, int threads, ns_eval_result *out);
void ns_eval_result_release(ns_eval_result *r); /* NULL-safe, idempotent */

/* How well the label-free estimate tracked true accuracy over the camera
 * and condition slices with at least min_frames frames: mean and largest
 * |expected - true|, and how many slices.  NaN (n 0) when none. */
void ns_eval_cbpe_error(const ns_eval_set *es, const ns_eval_result *r, size_t min_frames,
                        double *mean_abs, double *max_abs, size_t *n);

#endif
