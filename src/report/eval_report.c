/* eval_report.c -- evaluate's files: metrics.csv, slices.csv, confusion.csv,
 * report.html, then summary.json (last: its presence means the set is
 * complete).  Formats in include/nightshift/evalreport.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval_internal.h"
#include "nightshift/csv.h"
#include "nightshift/fsutil.h"
#include "nightshift/metrics.h"

int ns_gate_exit_code(ns_gate_verdict v)
{
    return v == NS_GATE_PROMOTE ? 0 : v == NS_GATE_REJECT ? 3 : 4;
}

void ns_evrep_csv_num(ns_strbuf *b, double v)
{
    char t[64];
    if (isfinite(v))
        ns_csv_cell(b, ns_rep_num(t, sizeof t, "%.6g", v));
}

void ns_evrep_json_ci(ns_strbuf *b, const ns_ci *c)
{
    ns_strbuf_printf(b, "{\"value\":");
    ns_strbuf_json_num(b, c->est);
    ns_strbuf_printf(b, ",\"ci_low\":");
    ns_strbuf_json_num(b, c->lo);
    ns_strbuf_printf(b, ",\"ci_high\":");
    ns_strbuf_json_num(b, c->hi);
    ns_strbuf_printf(b, "}");
}

ns_status ns_evrep_put(const char *dir, const char *name, const ns_strbuf *b)
{
    char path[4096];
    ns_status st = ns_strbuf_status(b);
    if (st != NS_OK)
        return ns_error(st, "out of memory building %s", name);
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return ns_error(NS_ERR_USAGE, "output path too long: '%s/%s'", dir, name);
    return ns_write_file_atomic(path, b->data ? b->data : "", b->len);
}

static const char *const metric_names[5] = {"accuracy", "macro_f1", "log_loss", "ece",
                                            "expected_accuracy"};

static const ns_ci *slice_ci(const ns_eval_slice_metrics *m, int k)
{
    const ns_ci *v[5] = {&m->accuracy, &m->macro_f1, &m->log_loss, &m->ece,
                         &m->expected_accuracy};
    return v[k];
}

static void csv_ci(ns_strbuf *b, const ns_ci *c)
{
    ns_strbuf_append(b, ",", 1);
    ns_evrep_csv_num(b, c->est);
    ns_strbuf_append(b, ",", 1);
    ns_evrep_csv_num(b, c->lo);
    ns_strbuf_append(b, ",", 1);
    ns_evrep_csv_num(b, c->hi);
}

static void metrics_csv(ns_strbuf *b, const ns_dataset *ds, const ns_eval_result *r)
{
    const double *all = r->slice[0].sums;
    ns_strbuf_printf(b, "metric,class,value,ci_low,ci_high\r\n");
    for (int k = 0; k < 5; k++) {
        ns_strbuf_printf(b, "%s,", metric_names[k]);
        csv_ci(b, slice_ci(&r->slice[0], k));
        ns_strbuf_printf(b, "\r\n");
    }
    for (int k = 0; k < r->n_classes; k++) {
        const ns_ci *v[3] = {&r->precision[k], &r->recall[k], &r->f1[k]};
        static const char *const nm[3] = {"precision", "recall", "f1"};
        for (int j = 0; j < 3; j++) {
            ns_strbuf_printf(b, "%s,", nm[j]);
            ns_csv_cell(b, ds->classes[k]);
            csv_ci(b, v[j]);
            ns_strbuf_printf(b, "\r\n");
        }
        ns_strbuf_printf(b, "support,");
        ns_csv_cell(b, ds->classes[k]);
        ns_strbuf_printf(b, ",%.0f,,\r\n", all[ns_ev_class(k) + 1]);
    }
}

static void slices_csv(ns_strbuf *b, const ns_eval_set *es, const ns_eval_result *r)
{
    ns_strbuf_printf(b, "kind,name,frames,clips");
    for (int k = 0; k < 5; k++)
        ns_strbuf_printf(b, ",%s,%s_ci_low,%s_ci_high", metric_names[k], metric_names[k],
                         metric_names[k]);
    ns_strbuf_printf(b, ",cbpe_error\r\n");
    for (size_t i = 0; i < es->n_slices; i++) {
        const ns_slice *s = &es->slices[i];
        const ns_eval_slice_metrics *m = &r->slice[i];
        ns_strbuf_printf(b, "%s,", ns_slice_kind_names[s->kind]);
        ns_csv_cell(b, s->name);
        ns_strbuf_printf(b, ",%zu,%zu", s->n_rows, s->n_clips);
        for (int k = 0; k < 5; k++)
            csv_ci(b, slice_ci(m, k));
        ns_strbuf_append(b, ",", 1);
        ns_evrep_csv_num(b, m->expected_accuracy.est - m->accuracy.est);
        ns_strbuf_printf(b, "\r\n");
    }
}

static void confusion_csv(ns_strbuf *b, const ns_dataset *ds, const ns_eval_result *r)
{
    int K = r->n_classes;
    ns_strbuf_printf(b, "label");
    for (int k = 0; k < K; k++) {
        ns_strbuf_append(b, ",", 1);
        ns_csv_cell(b, ds->classes[k]);
    }
    ns_strbuf_printf(b, ",(other)\r\n");
    for (int i = 0; i < K; i++) {
        ns_csv_cell(b, ds->classes[i]);
        for (int j = 0; j <= K; j++)
            ns_strbuf_printf(b, ",%llu",
                             (unsigned long long)r->confusion[(size_t)i * (size_t)(K + 1) + (size_t)j]);
        ns_strbuf_printf(b, "\r\n");
    }
}

/* The most confident mistakes: what a labeler should look at first. */
static ns_status mistakes(ns_strbuf *sb, ns_thumbs *t, const ns_dataset *ds,
                          const ns_eval_set *es, const ns_eval_pred *p)
{
    enum { TOP = 16 };
    size_t best[TOP], nb = 0;
    ns_status st = NS_OK;
    for (size_t i = 0; i < es->n; i++) {
        size_t j;
        if (p->pred[i] == ds->label[es->ds_row[i]])
            continue;
        /* insertion into the top list, highest confidence first */
        for (j = nb; j > 0 && p->conf[best[j - 1]] < p->conf[i]; j--)
            if (j < TOP)
                best[j] = best[j - 1];
        if (j < TOP) {
            best[j] = i;
            if (nb < TOP)
                nb++;
        }
    }
    ns_strbuf_printf(sb, "<section>\n<h2>The most confident mistakes</h2>\n");
    if (nb == 0) {
        ns_strbuf_printf(sb, "<p class=\"muted\">No frame is misclassified.</p>\n</section>\n");
        return NS_OK;
    }
    ns_strbuf_printf(sb, "<div class=\"thumbs\">\n");
    for (size_t j = 0; j < nb && st == NS_OK; j++) {
        size_t i = best[j], r = es->ds_row[i];
        char cap[2 * NS_LABEL_LEN + 64], c[32];
        snprintf(cap, sizeof cap, "%s as %s (%s)", ds->classes[ds->label[r]],
                 p->pred[i] >= 0 ? ds->classes[p->pred[i]] : "a class not in the dataset", ns_rep_num(c, sizeof c, "%.2f", p->conf[i]));
        st = ns_evrep_frame(sb, t, ds, r, cap);
    }
    ns_strbuf_printf(sb, "</div>\n</section>\n");
    return st;
}

ns_status ns_evaluate_report_write(ns_store *s, const ns_dataset *ds, const ns_eval_set *es,
                                   const ns_eval_pred *p, const ns_eval_result *r,
                                   const ns_evrep_head *h, const ns_report_opts *o,
                                   const char *out_dir)
{
    ns_status st;
    ns_strbuf b = {0};
    ns_thumbs *t = NULL;
    double cb_mean, cb_max;
    size_t cb_n;
    char sub[1024], id[16];
    ns_eval_cbpe_error(es, r, 20, &cb_mean, &cb_max, &cb_n);
    metrics_csv(&b, ds, r);
    if ((st = ns_evrep_put(out_dir, "metrics.csv", &b)) != NS_OK)
        goto done;
    b.len = 0;
    slices_csv(&b, es, r);
    if ((st = ns_evrep_put(out_dir, "slices.csv", &b)) != NS_OK)
        goto done;
    b.len = 0;
    confusion_csv(&b, ds, r);
    if ((st = ns_evrep_put(out_dir, "confusion.csv", &b)) != NS_OK)
        goto done;

    /* the page */
    b.len = 0;
    snprintf(id, sizeof id, "%.12s", h->head_id);
    snprintf(sub, sizeof sub, "Head <code>%s</code> (%s, temperature %.3g) on dataset <code>%.12s</code>: "
             "%zu frames in %zu clips (%s)", id, h->kind, h->temperature, ds->dataset_id, es->n,
             es->n_clips, es->all_rows ? "every frame: an evaluation set" : "the test split");
    ns_evrep_page_open(&b, "nightshift evaluate", sub);
    {
        const ns_eval_slice_metrics *a = &r->slice[0];
        ns_strbuf_printf(&b, "<section>\n<h2>On all frames</h2>\n<table class=\"facts\">\n");
        ns_strbuf_printf(&b, "<tr><th>Accuracy</th><td>");
        ns_evrep_ci(&b, &a->accuracy, "%.3f");
        ns_strbuf_printf(&b, "</td></tr>\n<tr><th>Macro-F1</th><td>");
        ns_evrep_ci(&b, &a->macro_f1, "%.3f");
        ns_strbuf_printf(&b, "</td></tr>\n<tr><th>Log loss</th><td>");
        ns_evrep_ci(&b, &a->log_loss, "%.3f");
        ns_strbuf_printf(&b, "</td></tr>\n<tr><th>ECE (%d bins)</th><td>", NS_EV_BINS);
        ns_evrep_ci(&b, &a->ece, "%.3f");
        ns_strbuf_printf(&b, "</td></tr>\n<tr><th>Expected accuracy, from confidences alone</th><td>");
        ns_evrep_ci(&b, &a->expected_accuracy, "%.3f");
        ns_strbuf_printf(&b, "</td></tr>\n</table>\n<p class=\"note\">Intervals: %.0f%% percentile "
                             "bootstrap over %d resamples of whole clips (frames of a clip are "
                             "correlated; resampling frames would make them falsely narrow).</p>\n",
                         100 * r->level, r->n_rep);
        ns_strbuf_printf(&b, "<div class=\"charts\">\n<figure>\n");
        ns_svg_reliability(&b, a->sums, "this head", NULL, NULL);
        ns_strbuf_printf(&b, "<figcaption>Reliability: accuracy of the frames in each confidence "
                             "bin; dot area is the bin&#39;s share of frames.</figcaption>\n"
                             "</figure>\n<figure>\n");
        ns_svg_confusion(&b, r->confusion, r->n_classes, (const char(*)[NS_LABEL_LEN])ds->classes);
        ns_strbuf_printf(&b, "<figcaption>Confusion matrix (all frames).</figcaption>\n</figure>\n"
                             "</div>\n</section>\n");
    }
    ns_strbuf_printf(&b, "<section>\n<h2>Classes</h2>\n");
    ns_evrep_class_table(&b, ds, r, h->known);
    ns_strbuf_printf(&b, "</section>\n<section>\n<h2>Label-free expected accuracy</h2>\n"
                         "<p>What the head expects from its own temperature-scaled confidences, "
                         "with no labels (CBPE), beside the true accuracy.  Over the camera and "
                         "condition slices of at least 20 frames it was off by ");
    ns_evrep_num(&b, "%.3f", cb_mean);
    ns_strbuf_printf(&b, " on average (largest ");
    ns_evrep_num(&b, "%.3f", cb_max);
    ns_strbuf_printf(&b, ", %zu slices).</p>\n", cb_n);
    ns_evrep_cbpe_table(&b, es, r);
    ns_strbuf_printf(&b, "</section>\n<section>\n<h2>Slices</h2>\n");
    ns_evrep_slice_table(&b, es, r);
    ns_strbuf_printf(&b, "</section>\n");
    if ((st = ns_thumbs_create(s, o->thumb_size, o->jpeg_quality, o->max_thumbs, &t)) != NS_OK)
        goto done;
    if ((st = mistakes(&b, t, ds, es, p)) != NS_OK)
        goto done;
    ns_evrep_page_close(&b);
    if ((st = ns_evrep_put(out_dir, "report.html", &b)) != NS_OK)
        goto done;

    /* summary.json, last */
    b.len = 0;
    ns_strbuf_printf(&b, "{\"format\":\"nightshift-evaluate-summary\",\"version\":1,\"head_id\":");
    ns_strbuf_json_str(&b, h->head_id);
    ns_strbuf_printf(&b, ",\"head_path\":");
    ns_strbuf_json_str(&b, h->path);
    ns_strbuf_printf(&b, ",\"dataset_id\":");
    ns_strbuf_json_str(&b, ds->dataset_id);
    ns_strbuf_printf(&b, ",\"model_id\":");
    ns_strbuf_json_str(&b, ds->model_id);
    ns_strbuf_printf(&b, ",\"split\":\"%s\",\"frames\":%zu,\"clips\":%zu,\"replicates\":%d,"
                         "\"level\":",
                     es->all_rows ? "all" : "test", es->n, es->n_clips, r->n_rep);
    ns_strbuf_json_num(&b, r->level);
    ns_strbuf_printf(&b, ",\"metrics\":{");
    for (int k = 0; k < 5; k++) {
        ns_strbuf_printf(&b, "%s\"%s\":", k ? "," : "", metric_names[k]);
        ns_evrep_json_ci(&b, slice_ci(&r->slice[0], k));
    }
    ns_strbuf_printf(&b, "},\"classes\":[");
    for (int k = 0; k < r->n_classes; k++) {
        ns_strbuf_printf(&b, "%s{\"name\":", k ? "," : "");
        ns_strbuf_json_str(&b, ds->classes[k]);
        ns_strbuf_printf(&b, ",\"support\":%.0f,\"head_knows\":%s,\"precision\":",
                         r->slice[0].sums[ns_ev_class(k) + 1],
                         h->known && !h->known[k] ? "false" : "true");
        ns_evrep_json_ci(&b, &r->precision[k]);
        ns_strbuf_printf(&b, ",\"recall\":");
        ns_evrep_json_ci(&b, &r->recall[k]);
        ns_strbuf_printf(&b, ",\"f1\":");
        ns_evrep_json_ci(&b, &r->f1[k]);
        ns_strbuf_printf(&b, "}");
    }
    ns_strbuf_printf(&b, "],\"slices\":[");
    for (size_t i = 0; i < es->n_slices; i++) {
        const ns_slice *sl = &es->slices[i];
        ns_strbuf_printf(&b, "%s{\"kind\":\"%s\",\"name\":", i ? "," : "",
                         ns_slice_kind_names[sl->kind]);
        ns_strbuf_json_str(&b, sl->name);
        ns_strbuf_printf(&b, ",\"frames\":%zu,\"clips\":%zu", sl->n_rows, sl->n_clips);
        for (int k = 0; k < 5; k++) {
            ns_strbuf_printf(&b, ",\"%s\":", metric_names[k]);
            ns_evrep_json_ci(&b, slice_ci(&r->slice[i], k));
        }
        ns_strbuf_printf(&b, "}");
    }
    ns_strbuf_printf(&b, "],\"cbpe\":{\"mean_abs_error\":");
    ns_strbuf_json_num(&b, cb_mean);
    ns_strbuf_printf(&b, ",\"max_abs_error\":");
    ns_strbuf_json_num(&b, cb_max);
    ns_strbuf_printf(&b, ",\"slices\":%zu,\"min_frames\":20},\"files\":{\"metrics\":\"metrics.csv\","
                         "\"slices\":\"slices.csv\",\"confusion\":\"confusion.csv\","
                         "\"report\":\"report.html\"}}\n", cb_n);
    st = ns_evrep_put(out_dir, "summary.json", &b);
done:
    ns_thumbs_free(t);
    ns_strbuf_release(&b);
    return st;
}
