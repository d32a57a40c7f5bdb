/* eval_internal.h -- shared by the evaluate and gate reports in src/report
 * (eval_report.c, gate_report.c, eval_html.c, svg_eval.c). */
#ifndef NIGHTSHIFT_EVAL_INTERNAL_H
#define NIGHTSHIFT_EVAL_INTERNAL_H

#include "nightshift/evalreport.h"
#include "report_internal.h"

#define NS_EVREP_MAX_SLICE_ROWS 200 /* rows of a slice table */
#define NS_EVREP_MAX_CM 30          /* classes drawn in the confusion matrix */
#define NS_EVREP_MAX_FOREST 60      /* checks in the forest plot */

/* Reliability diagram: accuracy against confidence per bin of the sums
 * (metrics.h) of one or two heads (b may be NULL). */
void ns_svg_reliability(ns_strbuf *sb, const double *a, const char *name_a, const double *b,
                        const char *name_b);
/* Confusion matrix (K, K + 1) of counts, cells shaded by their row share. */
void ns_svg_confusion(ns_strbuf *sb, const uint64_t *cm, int K,
                      const char (*classes)[NS_LABEL_LEN]);
/* Forest plot of the gate's checks: paired delta with its deciding
 * interval, the -margin line per row, zero. */
void ns_svg_forest(ns_strbuf *sb, const ns_gate_result *g, const ns_eval_set *es);

/* Page pieces shared by both reports (eval_html.c). */
void ns_evrep_page_open(ns_strbuf *sb, const char *title, const char *subtitle_html);
void ns_evrep_page_close(ns_strbuf *sb);
void ns_evrep_num(ns_strbuf *sb, const char *fmt, double v);
/* "0.912 [0.880, 0.941]" */
void ns_evrep_ci(ns_strbuf *sb, const ns_ci *c, const char *fmt);
/* The per-slice table of one evaluation (kinds: all slice kinds). */
void ns_evrep_slice_table(ns_strbuf *sb, const ns_eval_set *es, const ns_eval_result *r);
/* Per-class precision/recall/F1 table. */
void ns_evrep_class_table(ns_strbuf *sb, const ns_dataset *ds, const ns_eval_result *r,
                          const int *known);
/* The CBPE table: expected vs true accuracy per camera and condition. */
void ns_evrep_cbpe_table(ns_strbuf *sb, const ns_eval_set *es, const ns_eval_result *r);
/* A thumbnail with a caption (label, prediction, confidence). */
ns_status ns_evrep_frame(ns_strbuf *sb, ns_thumbs *t, const ns_dataset *ds, size_t ds_row,
                         const char *caption);

/* CSV and JSON pieces (eval_report.c). */
void ns_evrep_csv_num(ns_strbuf *b, double v);
void ns_evrep_json_ci(ns_strbuf *b, const ns_ci *c);
/* Writes a directory's file through a temp name (ns_write_file_atomic). */
ns_status ns_evrep_put(const char *dir, const char *name, const ns_strbuf *b);

#endif
