/* evalreport.h -- the files evaluate and gate write.
 *
 * evaluate, in OUT (each written atomically; summary.json last):
 *   metrics.csv   metric,class,value,ci_low,ci_high: accuracy, macro_f1,
 *                 log_loss, ece, expected_accuracy on all frames, then
 *                 precision, recall, f1 and support per class
 *   slices.csv    kind,name,frames,clips and per metric value,ci_low,ci_high
 *                 (accuracy, macro_f1, log_loss, ece, expected_accuracy),
 *                 then cbpe_error = expected_accuracy - accuracy
 *   confusion.csv label,<each class>,(other): counts
 *   summary.json  {"format":"nightshift-evaluate-summary","version":1, head_id,
 *                 dataset_id, model_id, frames, clips, split, replicates,
 *                 level, metrics {name: {value, ci_low, ci_high}}, classes
 *                 [...], slices [...], cbpe {mean_abs_error, max_abs_error,
 *                 slices}, files {...}}
 *   report.html   one self-contained page, as detect's: headline metrics,
 *                 reliability diagram and confusion matrix (SVG), slices,
 *                 label-free expected accuracy beside true accuracy, the most
 *                 confident mistakes with thumbnails when a store is given.
 * gate, in OUT:
 *   checks.csv    one row per check: kind, name, metric, frames, clips,
 *                 candidate, production, delta, ci_low, ci_high, level,
 *                 ci95_low, ci95_high, margin, p_noninferior, p_inferior, p,
 *                 p_holm, mcnemar_p, fixed, broken, decision, more_clips,
 *                 new_class, note
 *   changed.csv   the frames whose correctness changed: clip, member, index,
 *                 camera, night, label, candidate, production, change
 *                 (fixed|broken)
 *   policy.txt    the policy in force, in the policy file syntax
 *   summary.json  {"format":"nightshift-gate-summary","version":1, verdict
 *                 ("promote"|"reject"|"insufficient"), exit_code, candidate
 *                 {head_id, path, kind, temperature, dataset_id, label_sets,
 *                 model_id (its training lineage), accuracy, ece}, production
 *                 {...}, dataset_id (the evaluation set), replicates,
 *                 checks [{kind, name, metric, delta, ci_low, ci_high, level,
 *                 margin, p_value, p_holm, mcnemar_p, decision, more_clips,
 *                 new_class, ...}], new_classes [...], files {...}}
 *   report.html   verdict at the top, forest plot of per-slice deltas with
 *                 their intervals against the margins, the changed frames
 *                 (fixed, broken) with thumbnails, both heads' calibration.
 */
#ifndef NIGHTSHIFT_EVALREPORT_H
#define NIGHTSHIFT_EVALREPORT_H

#include "nightshift/evaluate.h"
#include "nightshift/gate.h"
#include "nightshift/report.h"
#include "nightshift/store.h"

/* What the reports say about a head (the CLI fills it from the head file). */
typedef struct ns_evrep_head {
    const char *path;    /* as given (untrusted text) */
    const char *head_id;
    const char *kind;    /* "softmax", "mlp" */
    double temperature;
    int n_classes;       /* the head's own */
    const int *known;    /* (dataset classes) 1 where the head can predict it */
    /* lineage, for the registry (may be NULL): what the head was trained on */
    const char *train_dataset_id, *label_sets, *model_id;
} ns_evrep_head;

/* s may be NULL: no thumbnails. */
ns_status ns_evaluate_report_write(ns_store *s, const ns_dataset *ds, const ns_eval_set *es,
                                   const ns_eval_pred *p, const ns_eval_result *r,
                                   const ns_evrep_head *h, const ns_report_opts *o,
                                   const char *out_dir);

ns_status ns_gate_report_write(ns_store *s, const ns_dataset *ds, const ns_eval_set *es,
                               const ns_gate_policy *pol, const ns_gate_result *g,
                               const ns_eval_pred *pc, const ns_eval_pred *pp,
                               const ns_eval_result *rc, const ns_eval_result *rp,
                               const ns_evrep_head *hc, const ns_evrep_head *hpr,
                               const ns_report_opts *o, const char *out_dir);

/* The exit code a verdict maps to: 0 promote, 3 reject, 4 insufficient. */
int ns_gate_exit_code(ns_gate_verdict v);

#endif
