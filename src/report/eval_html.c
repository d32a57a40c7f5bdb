/* eval_html.c -- page pieces the evaluate and gate reports share: the page
 * frame (detect's stylesheet and Content-Security-Policy), number and
 * interval cells, the slice, class and label-free accuracy tables, framed
 * thumbnails.  Every name from a dataset is escaped; tables are capped. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "eval_internal.h"
#include "nightshift/metrics.h"
#include "report_css.h"

void ns_evrep_page_open(ns_strbuf *sb, const char *title, const char *subtitle_html)
{
    ns_strbuf_printf(sb, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                         "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src "
                         "'none'; img-src data:; style-src 'unsafe-inline'\">\n"
                         "<meta name=\"viewport\" content=\"width=device-width, "
                         "initial-scale=1\">\n<title>");
    ns_report_html_escape(sb, title);
    ns_strbuf_printf(sb, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<main>\n<header>\n<h1>",
                     ns_report_css);
    ns_report_html_escape(sb, title);
    ns_strbuf_printf(sb, "</h1>\n<p class=\"sub\">%s</p>\n</header>\n", subtitle_html);
}

void ns_evrep_page_close(ns_strbuf *sb)
{
    ns_strbuf_printf(sb, "<footer>nightshift %s</footer>\n</main>\n</body>\n</html>\n",
                     NS_VERSION);
}

void ns_evrep_num(ns_strbuf *sb, const char *fmt, double v)
{
    char t[64];
    ns_strbuf_printf(sb, "%s", ns_rep_num(t, sizeof t, fmt, v));
}

void ns_evrep_ci(ns_strbuf *sb, const ns_ci *c, const char *fmt)
{
    ns_evrep_num(sb, fmt, c->est);
    if (isfinite(c->lo) && isfinite(c->hi)) {
        ns_strbuf_printf(sb, " <span class=\"muted\">[");
        ns_evrep_num(sb, fmt, c->lo);
        ns_strbuf_printf(sb, ", ");
        ns_evrep_num(sb, fmt, c->hi);
        ns_strbuf_printf(sb, "]</span>");
    }
}

static void ci_cell(ns_strbuf *sb, const ns_ci *c, const char *fmt)
{
    ns_strbuf_printf(sb, "<td class=\"num\">");
    ns_evrep_ci(sb, c, fmt);
    ns_strbuf_printf(sb, "</td>");
}

void ns_evrep_slice_table(ns_strbuf *sb, const ns_eval_set *es, const ns_eval_result *r)
{
    size_t shown = 0;
    ns_strbuf_printf(sb, "<table class=\"data\">\n<tr><th>Slice</th><th>Frames</th><th>Clips</th>"
                         "<th>Accuracy</th><th>Macro-F1</th><th>Log loss</th><th>ECE</th>"
                         "<th>Expected accuracy (no labels)</th></tr>\n");
    for (size_t i = 0; i < es->n_slices && shown < NS_EVREP_MAX_SLICE_ROWS; i++, shown++) {
        const ns_slice *s = &es->slices[i];
        const ns_eval_slice_metrics *m = &r->slice[i];
        ns_strbuf_printf(sb, "<tr><td>%s ", ns_slice_kind_names[s->kind]);
        if (s->kind != NS_SLICE_ALL)
            ns_report_html_escape(sb, s->name);
        ns_strbuf_printf(sb, "</td><td class=\"num\">%zu</td><td class=\"num\">%zu</td>",
                         s->n_rows, s->n_clips);
        ci_cell(sb, &m->accuracy, "%.3f");
        ci_cell(sb, &m->macro_f1, "%.3f");
        ci_cell(sb, &m->log_loss, "%.3f");
        ci_cell(sb, &m->ece, "%.3f");
        ci_cell(sb, &m->expected_accuracy, "%.3f");
        ns_strbuf_printf(sb, "</tr>\n");
    }
    ns_strbuf_printf(sb, "</table>\n");
    if (shown < es->n_slices)
        ns_strbuf_printf(sb, "<p class=\"note\">Showing %zu of %zu slices; slices.csv holds them "
                             "all.</p>\n", shown, es->n_slices);
}

void ns_evrep_class_table(ns_strbuf *sb, const ns_dataset *ds, const ns_eval_result *r,
                          const int *known)
{
    int K = r->n_classes, shown = K > NS_EVREP_MAX_SLICE_ROWS ? NS_EVREP_MAX_SLICE_ROWS : K;
    const double *all = r->slice[0].sums;
    ns_strbuf_printf(sb, "<table class=\"data\">\n<tr><th>Class</th><th>Frames</th>"
                         "<th>Precision</th><th>Recall</th><th>F1</th></tr>\n");
    for (int k = 0; k < shown; k++) {
        ns_strbuf_printf(sb, "<tr><td>");
        ns_report_html_escape(sb, ds->classes[k]);
        if (known && !known[k])
            ns_strbuf_printf(sb, " <span class=\"muted\">(the head has no such class: it "
                                 "scores 0 here)</span>");
        ns_strbuf_printf(sb, "</td><td class=\"num\">%.0f</td>", all[ns_ev_class(k) + 1]);
        ci_cell(sb, &r->precision[k], "%.3f");
        ci_cell(sb, &r->recall[k], "%.3f");
        ci_cell(sb, &r->f1[k], "%.3f");
        ns_strbuf_printf(sb, "</tr>\n");
    }
    ns_strbuf_printf(sb, "</table>\n");
    if (shown < K)
        ns_strbuf_printf(sb, "<p class=\"note\">Showing %d of %d classes; metrics.csv holds "
                             "them all.</p>\n", shown, K);
}

void ns_evrep_cbpe_table(ns_strbuf *sb, const ns_eval_set *es, const ns_eval_result *r)
{
    size_t shown = 0;
    ns_strbuf_printf(sb, "<table class=\"data\">\n<tr><th>Slice</th><th>Frames</th>"
                         "<th>Expected accuracy (no labels)</th><th>True accuracy</th>"
                         "<th>Expected &minus; true</th></tr>\n");
    for (size_t i = 0; i < es->n_slices && shown < NS_EVREP_MAX_SLICE_ROWS; i++) {
        const ns_slice *s = &es->slices[i];
        const ns_eval_slice_metrics *m = &r->slice[i];
        if (s->kind != NS_SLICE_ALL && s->kind != NS_SLICE_CAMERA &&
            s->kind != NS_SLICE_CONDITION)
            continue;
        shown++;
        ns_strbuf_printf(sb, "<tr><td>%s ", ns_slice_kind_names[s->kind]);
        if (s->kind != NS_SLICE_ALL)
            ns_report_html_escape(sb, s->name);
        ns_strbuf_printf(sb, "</td><td class=\"num\">%zu</td>", s->n_rows);
        ci_cell(sb, &m->expected_accuracy, "%.3f");
        ci_cell(sb, &m->accuracy, "%.3f");
        ns_strbuf_printf(sb, "<td class=\"num\">");
        ns_evrep_num(sb, "%+.3f", m->expected_accuracy.est - m->accuracy.est);
        ns_strbuf_printf(sb, "</td></tr>\n");
    }
    ns_strbuf_printf(sb, "</table>\n");
}

ns_status ns_evrep_frame(ns_strbuf *sb, ns_thumbs *t, const ns_dataset *ds, size_t ds_row,
                         const char *caption)
{
    ns_status st;
    char alt[NS_MEMBER_LEN + 32];
    snprintf(alt, sizeof alt, "%s #%u", ds->member[ds_row], ds->index[ds_row]);
    ns_strbuf_printf(sb, "<figure class=\"th\">");
    if ((st = ns_thumbs_img(t, ds->view_row[ds_row], alt, sb)) != NS_OK)
        return st;
    ns_strbuf_printf(sb, "<figcaption>");
    ns_report_html_escape(sb, caption);
    ns_strbuf_printf(sb, "<br><span class=\"src\" title=\"");
    ns_report_html_escape(sb, ds->member[ds_row]);
    ns_strbuf_printf(sb, "\">");
    ns_report_html_escape(sb, ds->camera[ds_row]);
    ns_strbuf_printf(sb, " ");
    ns_report_html_escape(sb, ds->night[ds_row]);
    ns_strbuf_printf(sb, "</span></figcaption></figure>\n");
    return ns_strbuf_status(sb);
}
