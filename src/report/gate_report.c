/* gate_report.c -- gate's files: checks.csv, changed.csv, policy.txt,
 * report.html, then summary.json (last).  Formats in evalreport.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval_internal.h"
#include "nightshift/csv.h"
#include "nightshift/metrics.h"

#define NS_GATE_CHANGED_THUMBS 24 /* per kind (fixed, broken) on the page */

static const char *slice_label(const ns_eval_set *es, const ns_gate_check *c)
{
    return ns_slice_kind_names[es->slices[c->slice].kind];
}

static void checks_csv(ns_strbuf *b, const ns_eval_set *es, const ns_gate_result *g)
{
    ns_strbuf_printf(b, "kind,name,metric,frames,clips,candidate,production,delta,ci_low,"
                        "ci_high,level,ci95_low,ci95_high,margin,p_noninferior,p_inferior,p,"
                        "p_holm,mcnemar_p,fixed,broken,decision,more_clips,new_class,note\r\n");
    for (size_t i = 0; i < g->n_checks; i++) {
        const ns_gate_check *c = &g->checks[i];
        const double v[] = {c->cand, c->prod, c->delta, c->lo, c->hi, c->level, c->lo95,
                            c->hi95, c->margin, c->p_noninf, c->p_inf, c->p, c->p_holm,
                            c->mcnemar_p};
        ns_strbuf_printf(b, "%s,", slice_label(es, c));
        ns_csv_cell(b, es->slices[c->slice].name);
        ns_strbuf_printf(b, ",%s,%zu,%zu", ns_gate_metric_names[c->metric], c->n_frames,
                         c->n_clips);
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
            ns_strbuf_append(b, ",", 1);
            ns_evrep_csv_num(b, v[k]);
        }
        ns_strbuf_printf(b, ",%llu,%llu,%s,", (unsigned long long)c->fixed,
                         (unsigned long long)c->broken, ns_gate_decision_names[c->decision]);
        if (c->more_clips >= 0)
            ns_strbuf_printf(b, "%ld", c->more_clips);
        ns_strbuf_printf(b, ",%d,", c->new_class);
        ns_csv_cell(b, c->why ? c->why : "");
        ns_strbuf_printf(b, "\r\n");
    }
}

static int changed(const ns_dataset *ds, const ns_eval_set *es, const ns_eval_pred *pc,
                   const ns_eval_pred *pp, size_t i)
{
    int lab = ds->label[es->ds_row[i]], okc = pc->pred[i] == lab, okp = pp->pred[i] == lab;
    return okc && !okp ? 1 : okp && !okc ? -1 : 0;
}

static const char *pred_name(const ns_dataset *ds, int k)
{
    return k >= 0 ? ds->classes[k] : "(a class not in the dataset)";
}

static void changed_csv(ns_strbuf *b, const ns_dataset *ds, const ns_eval_set *es,
                        const ns_eval_pred *pc, const ns_eval_pred *pp)
{
    ns_strbuf_printf(b, "clip,member,index,camera,night,label,candidate,production,change\r\n");
    for (size_t i = 0; i < es->n; i++) {
        size_t r = es->ds_row[i];
        int ch = changed(ds, es, pc, pp, i);
        if (!ch)
            continue;
        ns_csv_cell(b, ds->clip[r]);
        ns_strbuf_append(b, ",", 1);
        ns_csv_cell(b, ds->member[r]);
        ns_strbuf_printf(b, ",%u,", ds->index[r]);
        ns_csv_cell(b, ds->camera[r]);
        ns_strbuf_append(b, ",", 1);
        ns_csv_cell(b, ds->night[r]);
        ns_strbuf_append(b, ",", 1);
        ns_csv_cell(b, ds->classes[ds->label[r]]);
        ns_strbuf_append(b, ",", 1);
        ns_csv_cell(b, pred_name(ds, pc->pred[i]));
        ns_strbuf_append(b, ",", 1);
        ns_csv_cell(b, pred_name(ds, pp->pred[i]));
        ns_strbuf_printf(b, ",%s\r\n", ch > 0 ? "fixed" : "broken");
    }
}

static void verdict_box(ns_strbuf *sb, const ns_gate_result *g, const ns_eval_set *es)
{
    static const char *const big[3] = {"PROMOTE", "REJECT", "INSUFFICIENT EVIDENCE"};
    size_t ninf = 0, nund = 0, nok = 0;
    for (size_t i = 0; i < g->n_checks; i++) {
        ninf += g->checks[i].decision == NS_GATE_INFERIOR;
        nund += g->checks[i].decision == NS_GATE_UNDECIDED;
        nok += g->checks[i].decision == NS_GATE_NONINFERIOR;
    }
    ns_strbuf_printf(sb, "<section class=\"verdict %s\">\n<div class=\"big\">%s</div>\n<p>",
                     ns_gate_verdict_names[g->verdict], big[g->verdict]);
    ns_strbuf_printf(sb, "%zu deciding checks: %zu non-inferior, %zu inferior, %zu undecided "
                         "(exit %d).", g->n_deciding, nok, ninf, nund,
                     ns_gate_exit_code(g->verdict));
    if (g->verdict == NS_GATE_INSUFFICIENT) {
        ns_strbuf_printf(sb, " More evaluation clips needed:");
        for (size_t i = 0, k = 0; i < g->n_checks && k < 8; i++) {
            const ns_gate_check *c = &g->checks[i];
            if (c->decision != NS_GATE_UNDECIDED)
                continue;
            ns_strbuf_printf(sb, "%s %s ", k++ ? ";" : "", slice_label(es, c));
            ns_report_html_escape(sb, es->slices[c->slice].name);
            if (c->more_clips >= 0)
                ns_strbuf_printf(sb, " about %ld more", c->more_clips);
            else
                ns_strbuf_printf(sb, " (no estimate: the delta sits on the margin)");
        }
        ns_strbuf_printf(sb, ".");
    }
    ns_strbuf_printf(sb, "</p>\n</section>\n");
}

static void checks_table(ns_strbuf *sb, const ns_eval_set *es, const ns_gate_result *g)
{
    size_t n = g->n_checks < NS_EVREP_MAX_SLICE_ROWS ? g->n_checks : NS_EVREP_MAX_SLICE_ROWS;
    ns_strbuf_printf(sb, "<table class=\"data\">\n<tr><th>Slice</th><th>Metric</th><th>Clips</th>"
                         "<th>Candidate</th><th>Production</th><th>Delta [deciding interval]</th>"
                         "<th>Margin</th><th>p (Holm)</th><th>McNemar p (frames)</th>"
                         "<th>Fixed / broken</th><th>Decision</th></tr>\n");
    for (size_t i = 0; i < n; i++) {
        const ns_gate_check *c = &g->checks[i];
        ns_ci d = {c->delta, c->lo, c->hi};
        ns_strbuf_printf(sb, "<tr><td>%s ", slice_label(es, c));
        if (es->slices[c->slice].kind != NS_SLICE_ALL)
            ns_report_html_escape(sb, es->slices[c->slice].name);
        if (c->new_class)
            ns_strbuf_printf(sb, " <span class=\"muted\">(new in the candidate: production "
                                 "cannot predict it and scores 0)</span>");
        ns_strbuf_printf(sb, "</td><td>%s%s</td><td class=\"num\">%zu</td><td class=\"num\">",
                         ns_gate_metric_names[c->metric], c->primary ? " (primary)" : "",
                         c->n_clips);
        ns_evrep_num(sb, "%.3f", c->cand);
        ns_strbuf_printf(sb, "</td><td class=\"num\">");
        ns_evrep_num(sb, "%.3f", c->prod);
        ns_strbuf_printf(sb, "</td><td class=\"num\">");
        ns_evrep_ci(sb, &d, "%+.3f");
        ns_strbuf_printf(sb, "</td><td class=\"num\">");
        if (isfinite(c->margin))
            ns_evrep_num(sb, "%.3f", c->margin);
        else
            ns_strbuf_printf(sb, "&ndash;");
        ns_strbuf_printf(sb, "</td><td class=\"num\">");
        ns_evrep_num(sb, "%.3g", c->decision == NS_GATE_REPORTED ? c->p : c->p_holm);
        ns_strbuf_printf(sb, "</td><td class=\"num\">");
        ns_evrep_num(sb, "%.3g", c->mcnemar_p);
        ns_strbuf_printf(sb, "</td><td class=\"num\">%llu / %llu</td><td>%s",
                         (unsigned long long)c->fixed, (unsigned long long)c->broken,
                         ns_gate_decision_names[c->decision]);
        if (c->why)
            ns_strbuf_printf(sb, " <span class=\"muted\">(%s)</span>", c->why);
        if (c->decision == NS_GATE_UNDECIDED && c->more_clips >= 0)
            ns_strbuf_printf(sb, " <span class=\"muted\">(about %ld more clips)</span>",
                             c->more_clips);
        ns_strbuf_printf(sb, "</td></tr>\n");
    }
    ns_strbuf_printf(sb, "</table>\n");
    if (n < g->n_checks)
        ns_strbuf_printf(sb, "<p class=\"note\">Showing %zu of %zu checks; checks.csv holds "
                             "them all.</p>\n", n, g->n_checks);
}

static ns_status changed_frames(ns_strbuf *sb, ns_thumbs *t, const ns_dataset *ds,
                                const ns_eval_set *es, const ns_eval_pred *pc,
                                const ns_eval_pred *pp)
{
    ns_status st = NS_OK;
    for (int want = 1; want >= -1 && st == NS_OK; want -= 2) {
        size_t total = 0, shown = 0;
        for (size_t i = 0; i < es->n; i++)
            total += changed(ds, es, pc, pp, i) == want;
        ns_strbuf_printf(sb, "<h3>%s: %zu frames</h3>\n", want > 0 ? "Fixed (production wrong, "
                         "candidate right)" : "Broken (production right, candidate wrong)", total);
        if (!total)
            continue;
        ns_strbuf_printf(sb, "<div class=\"thumbs\">\n");
        /* spread the thumbnails over the clips: at most 2 frames per clip */
        for (size_t i = 0, per = 0, last = SIZE_MAX; i < es->n && shown < NS_GATE_CHANGED_THUMBS &&
                                                     st == NS_OK; i++) {
            size_t r = es->ds_row[i];
            char cap[3 * NS_LABEL_LEN];
            if (changed(ds, es, pc, pp, i) != want)
                continue;
            per = es->clip[i] == last ? per + 1 : 0;
            last = es->clip[i];
            if (per >= 2)
                continue;
            snprintf(cap, sizeof cap, "%s: candidate %s, production %s", ds->classes[ds->label[r]],
                     pred_name(ds, pc->pred[i]), pred_name(ds, pp->pred[i]));
            st = ns_evrep_frame(sb, t, ds, r, cap);
            shown++;
        }
        ns_strbuf_printf(sb, "</div>\n");
        if (shown < total)
            ns_strbuf_printf(sb, "<p class=\"note\">Showing %zu of %zu; changed.csv lists them "
                                 "all.</p>\n", shown, total);
    }
    return st;
}

static void head_json(ns_strbuf *b, const ns_evrep_head *h, const ns_eval_result *r)
{
    ns_strbuf_printf(b, "{\"head_id\":");
    ns_strbuf_json_str(b, h->head_id);
    ns_strbuf_printf(b, ",\"path\":");
    ns_strbuf_json_str(b, h->path);
    ns_strbuf_printf(b, ",\"kind\":");
    ns_strbuf_json_str(b, h->kind);
    ns_strbuf_printf(b, ",\"temperature\":");
    ns_strbuf_json_num(b, h->temperature);
    ns_strbuf_printf(b, ",\"dataset_id\":");
    ns_strbuf_json_str(b, h->train_dataset_id ? h->train_dataset_id : "");
    ns_strbuf_printf(b, ",\"label_sets\":");
    ns_strbuf_json_str(b, h->label_sets ? h->label_sets : "");
    ns_strbuf_printf(b, ",\"model_id\":");
    ns_strbuf_json_str(b, h->model_id ? h->model_id : "");
    ns_strbuf_printf(b, ",\"accuracy\":");
    ns_evrep_json_ci(b, &r->slice[0].accuracy);
    ns_strbuf_printf(b, ",\"ece\":");
    ns_evrep_json_ci(b, &r->slice[0].ece);
    ns_strbuf_printf(b, "}");
}

ns_status ns_gate_report_write(ns_store *s, const ns_dataset *ds, const ns_eval_set *es,
                               const ns_gate_policy *pol, const ns_gate_result *g,
                               const ns_eval_pred *pc, const ns_eval_pred *pp,
                               const ns_eval_result *rc, const ns_eval_result *rp,
                               const ns_evrep_head *hc, const ns_evrep_head *hpr,
                               const ns_report_opts *o, const char *out_dir)
{
    ns_status st;
    ns_strbuf b = {0};
    ns_thumbs *t = NULL;
    char sub[1024];
    size_t n_new = 0;
    checks_csv(&b, es, g);
    if ((st = ns_evrep_put(out_dir, "checks.csv", &b)) != NS_OK)
        goto done;
    b.len = 0;
    changed_csv(&b, ds, es, pc, pp);
    if ((st = ns_evrep_put(out_dir, "changed.csv", &b)) != NS_OK)
        goto done;
    b.len = 0;
    ns_strbuf_printf(&b, "# the gate policy this verdict was reached under\n");
    ns_gate_policy_format(pol, &b);
    if ((st = ns_evrep_put(out_dir, "policy.txt", &b)) != NS_OK)
        goto done;

    b.len = 0;
    snprintf(sub, sizeof sub, "Candidate <code>%.12s</code> against production <code>%.12s</code> "
             "on dataset <code>%.12s</code>: %zu frames in %zu clips; paired clip bootstrap, %d "
             "resamples, Holm over %zu deciding checks at &alpha; = %g.", hc->head_id,
             hpr->head_id, ds->dataset_id, es->n, es->n_clips, g->n_rep, g->n_deciding,
             pol->alpha);
    ns_evrep_page_open(&b, "nightshift gate", sub);
    verdict_box(&b, g, es);
    ns_strbuf_printf(&b, "<section>\n<h2>Per-slice deltas</h2>\n<figure>\n");
    ns_svg_forest(&b, g, es);
    ns_strbuf_printf(&b, "<figcaption>Each check&#39;s paired delta (candidate better to the "
                         "right) with the interval that decides it, at its Holm level; the "
                         "dashed line is &minus;margin.  Green: non-inferior, red: inferior, "
                         "amber: undecided, grey: reported only.</figcaption>\n</figure>\n");
    checks_table(&b, es, g);
    for (size_t i = 0; i < g->n_checks; i++)
        n_new += g->checks[i].new_class;
    if (n_new)
        ns_strbuf_printf(&b, "<p class=\"note warn\">%zu class%s new in the candidate: the "
                             "production head cannot predict %s, so it scores 0 there.</p>\n",
                         n_new, n_new == 1 ? " is" : "es are", n_new == 1 ? "it" : "them");
    ns_strbuf_printf(&b, "<p class=\"note\">Decisions come from the clip bootstrap; McNemar&#39;s "
                         "test treats frames as independent and is shown for comparison "
                         "only.</p>\n</section>\n<section>\n<h2>Frames whose prediction "
                         "changed</h2>\n");
    if ((st = ns_thumbs_create(s, o->thumb_size, o->jpeg_quality, o->max_thumbs, &t)) != NS_OK)
        goto done;
    if ((st = changed_frames(&b, t, ds, es, pc, pp)) != NS_OK)
        goto done;
    ns_strbuf_printf(&b, "</section>\n<section>\n<h2>Calibration of both heads</h2>\n"
                         "<table class=\"facts\">\n<tr><th>Candidate ECE</th><td>");
    ns_evrep_ci(&b, &rc->slice[0].ece, "%.3f");
    ns_strbuf_printf(&b, " (temperature %.3g)</td></tr>\n<tr><th>Production ECE</th><td>",
                     hc->temperature);
    ns_evrep_ci(&b, &rp->slice[0].ece, "%.3f");
    ns_strbuf_printf(&b, " (temperature %.3g)</td></tr>\n</table>\n<figure>\n", hpr->temperature);
    ns_svg_reliability(&b, rc->slice[0].sums, "candidate", rp->slice[0].sums, "production");
    ns_strbuf_printf(&b, "<figcaption>Reliability of both heads on the same frames.</figcaption>\n"
                         "</figure>\n</section>\n<section>\n<h2>The policy</h2>\n<pre>");
    {
        ns_strbuf pt = {0};
        ns_gate_policy_format(pol, &pt);
        ns_report_html_escape(&b, pt.data ? pt.data : "");
        ns_strbuf_release(&pt);
    }
    ns_strbuf_printf(&b, "</pre>\n</section>\n");
    ns_evrep_page_close(&b);
    if ((st = ns_evrep_put(out_dir, "report.html", &b)) != NS_OK)
        goto done;

    b.len = 0;
    ns_strbuf_printf(&b, "{\"format\":\"nightshift-gate-summary\",\"version\":1,\"verdict\":\"%s\","
                         "\"exit_code\":%d,\"candidate\":",
                     ns_gate_verdict_names[g->verdict], ns_gate_exit_code(g->verdict));
    head_json(&b, hc, rc);
    ns_strbuf_printf(&b, ",\"production\":");
    head_json(&b, hpr, rp);
    ns_strbuf_printf(&b, ",\"dataset_id\":");
    ns_strbuf_json_str(&b, ds->dataset_id);
    ns_strbuf_printf(&b, ",\"frames\":%zu,\"clips\":%zu,\"replicates\":%d,\"alpha\":", es->n,
                     es->n_clips, g->n_rep);
    ns_strbuf_json_num(&b, pol->alpha);
    ns_strbuf_printf(&b, ",\"deciding_checks\":%zu,\"checks\":[", g->n_deciding);
    for (size_t i = 0; i < g->n_checks; i++) {
        const ns_gate_check *c = &g->checks[i];
        const char *kn[] = {"candidate", "production", "delta", "ci_low", "ci_high", "level",
                            "ci95_low", "ci95_high", "margin", "se", "p_noninferior",
                            "p_inferior", "p_value", "p_holm", "mcnemar_p"};
        const double v[] = {c->cand, c->prod, c->delta, c->lo, c->hi, c->level, c->lo95,
                            c->hi95, c->margin, c->se, c->p_noninf, c->p_inf, c->p, c->p_holm,
                            c->mcnemar_p};
        ns_strbuf_printf(&b, "%s{\"kind\":\"%s\",\"name\":", i ? "," : "", slice_label(es, c));
        ns_strbuf_json_str(&b, es->slices[c->slice].name);
        ns_strbuf_printf(&b, ",\"metric\":\"%s\",\"primary\":%s,\"frames\":%zu,\"clips\":%zu",
                         ns_gate_metric_names[c->metric], c->primary ? "true" : "false",
                         c->n_frames, c->n_clips);
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
            ns_strbuf_printf(&b, ",\"%s\":", kn[k]);
            ns_strbuf_json_num(&b, v[k]);
        }
        ns_strbuf_printf(&b, ",\"fixed\":%llu,\"broken\":%llu,\"decision\":\"%s\",\"more_clips\":",
                         (unsigned long long)c->fixed, (unsigned long long)c->broken,
                         ns_gate_decision_names[c->decision]);
        if (c->more_clips >= 0)
            ns_strbuf_printf(&b, "%ld", c->more_clips);
        else
            ns_strbuf_printf(&b, "null");
        ns_strbuf_printf(&b, ",\"new_class\":%s,\"note\":", c->new_class ? "true" : "false");
        ns_strbuf_json_str(&b, c->why ? c->why : "");
        ns_strbuf_printf(&b, "}");
    }
    ns_strbuf_printf(&b, "],\"new_classes\":[");
    for (size_t i = 0, k = 0; i < g->n_checks; i++)
        if (g->checks[i].new_class) {
            ns_strbuf_printf(&b, "%s", k++ ? "," : "");
            ns_strbuf_json_str(&b, es->slices[g->checks[i].slice].name);
        }
    ns_strbuf_printf(&b, "],\"files\":{\"checks\":\"checks.csv\",\"changed\":\"changed.csv\","
                         "\"policy\":\"policy.txt\",\"report\":\"report.html\"}}\n");
    st = ns_evrep_put(out_dir, "summary.json", &b);
done:
    ns_thumbs_free(t);
    ns_strbuf_release(&b);
    return st;
}
